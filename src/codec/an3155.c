/* AN3155 framing: see an3155.h. */
#include "codec/an3155.h"

#include "peerflash/pf_bytes.h"

const char *pf_an3155_op_name(uint8_t op)
{
    switch (op) {
    case PF_AN3155_GET: return "Get";
    case PF_AN3155_GET_VERSION: return "Get Version";
    case PF_AN3155_GET_ID: return "Get ID";
    case PF_AN3155_READ: return "Read Memory";
    case PF_AN3155_GO: return "Go";
    case PF_AN3155_WRITE: return "Write Memory";
    case PF_AN3155_ERASE: return "Erase";
    case PF_AN3155_EXT_ERASE: return "Extended Erase";
    case PF_AN3155_WRITE_PROTECT: return "Write Protect";
    case PF_AN3155_WRITE_UNPROTECT: return "Write Unprotect";
    case PF_AN3155_READOUT_PROTECT: return "Readout Protect";
    case PF_AN3155_READOUT_UNPROTECT: return "Readout Unprotect";
    case PF_AN3155_GET_CHECKSUM: return "Get Checksum";
    case PF_AN3155_SYNC: return "sync (0x7F)";
    default: return "an unknown command";
    }
}

uint8_t pf_an3155_xor(const uint8_t *p, size_t n)
{
    uint8_t x = 0;
    for (size_t i = 0; i < n; i++)
        x ^= p[i];
    return x;
}

size_t pf_an3155_cmd(uint8_t out[2], uint8_t op)
{
    out[0] = op;
    out[1] = (uint8_t)~op;
    return 2;
}

size_t pf_an3155_u32(uint8_t out[5], uint32_t v)
{
    pf_put_be32(out, v);
    out[4] = pf_an3155_xor(out, 4);
    return 5;
}

size_t pf_an3155_data(uint8_t *out, const uint8_t *data, size_t len)
{
    if (len == 0 || len > PF_AN3155_BLOCK_MAX)
        return 0;
    size_t padded = (len + 3) & ~(size_t)3;
    out[0] = (uint8_t)(padded - 1);
    for (size_t i = 0; i < padded; i++)
        out[1 + i] = i < len ? data[i] : 0xFF;
    out[1 + padded] = pf_an3155_xor(out, 1 + padded);
    return padded + 2;
}

size_t pf_an3155_read_len(uint8_t out[2], unsigned n)
{
    if (n == 0 || n > PF_AN3155_BLOCK_MAX)
        return 0;
    out[0] = (uint8_t)(n - 1);
    out[1] = (uint8_t)~out[0];
    return 2;
}

size_t pf_an3155_erase_pages(uint8_t *out, size_t cap, int extended, uint32_t first, uint32_t count)
{
    if (count == 0)
        return 0;
    size_t n = 0;
    if (extended) {
        if (count > PF_AN3155_ERASE_BATCH || first + count > 0xFFF0u || cap < 3 + 2 * (size_t)count)
            return 0;
        pf_put_be16(out, (uint16_t)(count - 1));
        n = 2;
        for (uint32_t p = first; p < first + count; p++, n += 2)
            pf_put_be16(out + n, (uint16_t)p);
    } else {
        if (count > 255 || first + count > 256 || cap < 2 + (size_t)count)
            return 0;
        out[n++] = (uint8_t)(count - 1);
        for (uint32_t p = first; p < first + count; p++)
            out[n++] = (uint8_t)p;
    }
    out[n] = pf_an3155_xor(out, n);
    return n + 1;
}

size_t pf_an3155_mass_erase(uint8_t out[3], int extended)
{
    if (extended) {
        out[0] = 0xFF;
        out[1] = 0xFF;
        out[2] = 0x00;
        return 3;
    }
    out[0] = 0xFF;
    out[1] = 0x00;
    return 2;
}

int pf_an3155_cmd_ok(const uint8_t in[2]) { return (uint8_t)(in[0] ^ in[1]) == 0xFF; }

int pf_an3155_frame_ok(const uint8_t *in, size_t n) { return n > 0 && pf_an3155_xor(in, n) == 0; }

uint32_t pf_an3155_get_u32(const uint8_t in[5]) { return pf_get_be32(in); }

int pf_an3155_parse_get(const uint8_t *in, size_t n, pf_an3155_get_reply *out)
{
    if (n < 2 || (size_t)in[0] + 2 != n || in[0] > sizeof out->ops)
        return -1;
    out->version = in[1];
    out->n_ops = in[0];
    for (unsigned i = 0; i < out->n_ops; i++)
        out->ops[i] = in[2 + i];
    return 0;
}

int pf_an3155_has_op(const pf_an3155_get_reply *g, uint8_t op)
{
    for (unsigned i = 0; i < g->n_ops; i++)
        if (g->ops[i] == op)
            return 1;
    return 0;
}
