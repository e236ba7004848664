/* ESP ROM loader request/response packets (see esp_cmd.h). */
#include "codec/esp_cmd.h"

#include "codec/slip.h"
#include "peerflash/pf_bytes.h"

uint8_t pf_esp_checksum(const uint8_t *data, size_t n, uint8_t seed)
{
    uint8_t c = seed;
    for (size_t i = 0; i < n; i++)
        c ^= data[i];
    return c;
}

const char *pf_esp_op_name(uint8_t op)
{
    switch (op) {
    case PF_ESP_FLASH_BEGIN: return "FLASH_BEGIN";
    case PF_ESP_FLASH_DATA: return "FLASH_DATA";
    case PF_ESP_FLASH_END: return "FLASH_END";
    case PF_ESP_MEM_BEGIN: return "MEM_BEGIN";
    case PF_ESP_MEM_END: return "MEM_END";
    case PF_ESP_MEM_DATA: return "MEM_DATA";
    case PF_ESP_SYNC: return "SYNC";
    case PF_ESP_WRITE_REG: return "WRITE_REG";
    case PF_ESP_READ_REG: return "READ_REG";
    case PF_ESP_SPI_SET_PARAMS: return "SPI_SET_PARAMS";
    case PF_ESP_SPI_ATTACH: return "SPI_ATTACH";
    case PF_ESP_READ_FLASH_SLOW: return "READ_FLASH_SLOW";
    case PF_ESP_CHANGE_BAUDRATE: return "CHANGE_BAUDRATE";
    case PF_ESP_FLASH_DEFL_BEGIN: return "FLASH_DEFL_BEGIN";
    case PF_ESP_FLASH_DEFL_DATA: return "FLASH_DEFL_DATA";
    case PF_ESP_FLASH_DEFL_END: return "FLASH_DEFL_END";
    case PF_ESP_SPI_FLASH_MD5: return "SPI_FLASH_MD5";
    case PF_ESP_GET_SECURITY_INFO: return "GET_SECURITY_INFO";
    case PF_ESP_ERASE_FLASH: return "ERASE_FLASH";
    case PF_ESP_ERASE_REGION: return "ERASE_REGION";
    case PF_ESP_READ_FLASH: return "READ_FLASH";
    case PF_ESP_RUN_USER_CODE: return "RUN_USER_CODE";
    default: return "unknown command";
    }
}

const char *pf_esp_err_name(uint8_t err)
{
    switch (err) {
    case PF_ESP_ERR_INVALID_MSG: return "invalid message / unsupported command";
    case PF_ESP_ERR_FAILED: return "failed to act on a received message";
    case PF_ESP_ERR_INVALID_CRC: return "invalid data checksum";
    case PF_ESP_ERR_FLASH_WRITE: return "flash write error";
    case PF_ESP_ERR_FLASH_READ: return "flash read error";
    case PF_ESP_ERR_FLASH_READ_LEN: return "flash read length error";
    case PF_ESP_ERR_DEFLATE: return "deflate error";
    case PF_ESP_ERR_DEFLATE_ADLER: return "deflate Adler-32 error";
    case PF_ESP_ERR_DEFLATE_PARAM: return "deflate parameter error";
    case PF_ESP_ERR_RAM_SIZE: return "invalid RAM size";
    case PF_ESP_ERR_RAM_ADDR: return "invalid RAM address";
    case 0xC0: return "stub: bad data length";
    case 0xC1: return "stub: bad data checksum";
    case 0xC2: return "stub: bad block size";
    case 0xC3: return "stub: invalid command";
    case 0xC4: return "stub: SPI operation failed";
    case 0xC5: return "stub: SPI unlock failed";
    case 0xC6: return "stub: not in flash mode";
    case 0xC7: return "stub: inflate error";
    case 0xC8: return "stub: not enough data";
    case 0xC9: return "stub: too much data";
    case PF_ESP_ERR_STUB_NOT_IMPLEMENTED: return "stub: command not implemented";
    default: return "unknown error";
    }
}

/* Appends the escaped bytes of p to out at *o; 0 on overflow. */
static int put_escaped(const uint8_t *p, size_t n, uint8_t *out, size_t cap, size_t *o)
{
    if (!n)
        return 1;
    size_t e = pf_slip_escape(p, n, out + *o, cap - *o);
    if (e == 0)
        return 0;
    *o += e;
    return 1;
}

static size_t frame(uint8_t dir, uint8_t op, uint32_t word, const uint8_t *a, size_t an, const uint8_t *b, size_t bn,
                    uint8_t *out, size_t out_size)
{
    if (an + bn > 0xFFFF || out_size < 2 + PF_ESP_HDR)
        return 0;
    uint8_t h[PF_ESP_HDR];
    h[0] = dir;
    h[1] = op;
    pf_put_le16(h + 2, (uint16_t)(an + bn));
    pf_put_le32(h + 4, word);
    size_t o = 0;
    size_t cap = out_size - 1; /* room for the closing C0 */
    out[o++] = PF_SLIP_END;
    if (!put_escaped(h, sizeof h, out, cap, &o) || !put_escaped(a, an, out, cap, &o) || !put_escaped(b, bn, out, cap, &o))
        return 0;
    out[o++] = PF_SLIP_END;
    return o;
}

size_t pf_esp_request_frame(uint8_t op, uint32_t chk, const uint8_t *a, size_t an, const uint8_t *b, size_t bn,
                            uint8_t *out, size_t out_size)
{
    return frame(0x00, op, chk, a, an, b, bn, out, out_size);
}

size_t pf_esp_response_frame(uint8_t op, uint32_t val, const uint8_t *payload, size_t pn, const uint8_t *status,
                             size_t status_len, uint8_t *out, size_t out_size)
{
    return frame(0x01, op, val, payload, pn, status, status_len, out, out_size);
}

int pf_esp_packet_parse(const uint8_t *f, size_t len, pf_esp_packet *p)
{
    if (len < PF_ESP_HDR)
        return -1;
    p->dir = f[0];
    p->op = f[1];
    p->size = pf_get_le16(f + 2);
    p->word = pf_get_le32(f + 4);
    p->data = f + PF_ESP_HDR;
    if ((size_t)p->size != len - PF_ESP_HDR)
        return -1;
    return 0;
}
