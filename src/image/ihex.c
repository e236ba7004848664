/* Intel HEX reader: a push parser that keeps at most one line.
 *
 * Bytes are collected up to each '\n'; the line is then checked (marker,
 * hex digits, length, byte count, checksum) and decoded in place. Checks
 * that can be made early (the first character of a line, anything after the
 * EOF record) are made as the bytes arrive, so a binary file fed by mistake
 * fails at its first byte rather than at "line too long". Every decision
 * depends only on the bytes, never on how they were split across calls. */
#include <string.h>

#include "peerflash/pf_image.h"
#include "text.h"

void pf_ihex_init(pf_ihex *p, pf_image_sink sink, void *user, pf_diag *diag)
{
    memset(p, 0, sizeof *p);
    p->_sink = sink;
    p->_user = user;
    p->_diag = diag;
    p->line = 1;
}

static int fail(pf_ihex *p, int err)
{
    p->_err = err;
    return err;
}

static const char *type_name(unsigned type)
{
    switch (type) {
    case 1: return "end-of-file";
    case 2: return "extended segment address";
    case 3: return "start segment address";
    case 4: return "extended linear address";
    default: return "start linear address";
    }
}

/* One complete line (without its '\n'). */
static int ihex_line(pf_ihex *p)
{
    unsigned long ln = p->line;
    size_t n = pf_text_trim(p->_buf, p->_len);
    if (n == 0)
        return PF_OK; /* blank line */
    if (p->_buf[0] != ':') {
        char d[12];
        return pf_diag_set(p->_diag, PF_ERR_FORMAT, "line %lu: record does not start with ':' (found %s)", ln,
                           pf_text_describe(p->_buf[0], d));
    }
    uint8_t *rec = (uint8_t *)p->_buf; /* decoded in place */
    int rc = pf_text_decode(p->_buf + 1, n - 1, rec, ln, 2, p->_diag);
    if (rc)
        return rc;
    size_t nbytes = (n - 1) / 2;
    if (nbytes < 5)
        return pf_diag_set(p->_diag, PF_ERR_FORMAT,
                           "line %lu: record too short (%zu bytes; count, address, type and checksum need 5)", ln,
                           nbytes);
    unsigned count = rec[0];
    if (count != nbytes - 5)
        return pf_diag_set(p->_diag, PF_ERR_FORMAT, "line %lu: byte count %u does not match line length (%zu data bytes)",
                           ln, count, nbytes - 5);
    unsigned sum = 0;
    for (size_t i = 0; i + 1 < nbytes; i++)
        sum += rec[i];
    unsigned expected = (0x100u - (sum & 0xFFu)) & 0xFFu;
    if (rec[nbytes - 1] != expected)
        return pf_diag_set(p->_diag, PF_ERR_FORMAT, "line %lu: bad checksum 0x%02X, expected 0x%02X", ln,
                           (unsigned)rec[nbytes - 1], expected);
    unsigned off = (unsigned)rec[1] << 8 | rec[2];
    unsigned type = rec[3];
    const uint8_t *data = rec + 4;
    static const unsigned want[6] = {0, 0, 2, 4, 2, 4};
    if (type > 5) {
        return pf_diag_set(p->_diag, PF_ERR_FORMAT, "line %lu: record type %02X unknown", ln, type);
    }
    if (type != 0 && count != want[type])
        return pf_diag_set(p->_diag, PF_ERR_FORMAT, "line %lu: %s record (type %02X) has %u data bytes, expected %u",
                           ln, type_name(type), type, count, want[type]);
    switch (type) {
    case 0:
        if (p->_segmode) {
            /* 8086 segments: the offset wraps inside the 64 KiB segment. */
            unsigned first = count < 0x10000u - off ? count : 0x10000u - off;
            rc = pf_text_emit(p->_sink, p->_user, p->base + off, data, first, ln, p->_diag);
            if (rc == 0)
                rc = pf_text_emit(p->_sink, p->_user, p->base, data + first, count - first, ln, p->_diag);
            return rc;
        }
        if ((uint64_t)p->base + off + count > 0x100000000ull)
            return pf_diag_set(p->_diag, PF_ERR_FORMAT,
                               "line %lu: %u data bytes at 0x%08lx run past the 4 GiB address space", ln, count,
                               (unsigned long)(p->base + off));
        return pf_text_emit(p->_sink, p->_user, p->base + off, data, count, ln, p->_diag);
    case 1: p->_eof = 1; return PF_OK;
    case 2:
        p->base = ((uint32_t)data[0] << 8 | data[1]) << 4;
        p->_segmode = 1;
        return PF_OK;
    case 3:
        p->start_addr = (((uint32_t)data[0] << 8 | data[1]) << 4) + ((uint32_t)data[2] << 8 | data[3]);
        p->has_start = 1;
        return PF_OK;
    case 4:
        p->base = ((uint32_t)data[0] << 8 | data[1]) << 16;
        p->_segmode = 0;
        return PF_OK;
    default:
        p->start_addr = (uint32_t)data[0] << 24 | (uint32_t)data[1] << 16 | (uint32_t)data[2] << 8 | data[3];
        p->has_start = 1;
        return PF_OK;
    }
}

static int ihex_line_cb(void *parser)
{
    return ihex_line(parser);
}

static pf_text_lines ihex_lines(pf_ihex *p)
{
    pf_text_lines t = {p->_buf, sizeof p->_buf, &p->_len, &p->line, &p->_eof, ':', "end-of-file record",
                       p->_diag, ihex_line_cb, p};
    return t;
}

int pf_ihex_feed(pf_ihex *p, const uint8_t *data, size_t n)
{
    if (!p || (!data && n))
        return PF_ERR_ARG;
    if (p->_err)
        return p->_err;
    pf_text_lines t = ihex_lines(p);
    int rc = pf_text_feed(&t, data, n);
    return rc ? fail(p, rc) : PF_OK;
}

int pf_ihex_finish(pf_ihex *p)
{
    if (!p)
        return PF_ERR_ARG;
    if (p->_err)
        return p->_err;
    pf_text_lines t = ihex_lines(p);
    int rc = pf_text_finish(&t);
    if (rc)
        return fail(p, rc);
    if (!p->_eof)
        return fail(p, pf_diag_set(p->_diag, PF_ERR_FORMAT, "missing end-of-file record (type 01) at end of input"));
    return PF_OK;
}
