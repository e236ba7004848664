/* Motorola S-record reader: a push parser that keeps at most one line.
 *
 * Same shape as the Intel HEX reader: bytes are collected up to each '\n',
 * early checks (first character, anything after the end record) are made as
 * bytes arrive, the rest when the line is complete. A record is
 *   'S' type count address data checksum
 * where count is the number of bytes after it and the checksum is the ones'
 * complement of the low byte of the sum of count, address and data. */
#include <string.h>

#include "peerflash/pf_image.h"
#include "text.h"

void pf_srec_init(pf_srec *p, pf_image_sink sink, void *user, pf_diag *diag)
{
    memset(p, 0, sizeof *p);
    p->_sink = sink;
    p->_user = user;
    p->_diag = diag;
    p->line = 1;
}

static int fail(pf_srec *p, int err)
{
    p->_err = err;
    return err;
}

/* Address bytes per record type S0..S9 (S4 is reserved: 0). */
static const unsigned addr_len[10] = {2, 2, 3, 4, 0, 2, 3, 4, 3, 2};

static int srec_line(pf_srec *p)
{
    unsigned long ln = p->line;
    size_t n = pf_text_trim(p->_buf, p->_len);
    if (n == 0)
        return PF_OK;
    char d[12];
    if (p->_buf[0] != 'S')
        return pf_diag_set(p->_diag, PF_ERR_FORMAT, "line %lu: record does not start with 'S' (found %s)", ln,
                           pf_text_describe(p->_buf[0], d));
    if (n < 2)
        return pf_diag_set(p->_diag, PF_ERR_FORMAT, "line %lu: record too short (no record type after 'S')", ln);
    char tc = p->_buf[1];
    if (tc < '0' || tc > '9' || tc == '4')
        return pf_diag_set(p->_diag, PF_ERR_FORMAT, "line %lu: record type S%s unknown", ln,
                           tc == '4' ? "4 (reserved)" : pf_text_describe(tc, d));
    unsigned type = (unsigned)(tc - '0');
    uint8_t *rec = (uint8_t *)p->_buf; /* decoded in place */
    int rc = pf_text_decode(p->_buf + 2, n - 2, rec, ln, 3, p->_diag);
    if (rc)
        return rc;
    size_t nbytes = (n - 2) / 2;
    unsigned alen = addr_len[type];
    if (nbytes < 2)
        return pf_diag_set(p->_diag, PF_ERR_FORMAT, "line %lu: record too short (%zu bytes; needs count and checksum)",
                           ln, nbytes);
    unsigned count = rec[0];
    if (count != nbytes - 1)
        return pf_diag_set(p->_diag, PF_ERR_FORMAT,
                           "line %lu: byte count %u does not match line length (%zu bytes follow it)", ln, count,
                           nbytes - 1);
    if (count < alen + 1)
        return pf_diag_set(p->_diag, PF_ERR_FORMAT,
                           "line %lu: byte count %u too small for an S%u record (%u address bytes and a checksum)", ln,
                           count, type, alen);
    unsigned sum = 0;
    for (size_t i = 0; i + 1 < nbytes; i++)
        sum += rec[i];
    unsigned expected = ~sum & 0xFFu;
    if (rec[nbytes - 1] != expected)
        return pf_diag_set(p->_diag, PF_ERR_FORMAT, "line %lu: bad checksum 0x%02X, expected 0x%02X", ln,
                           (unsigned)rec[nbytes - 1], expected);
    uint32_t addr = 0;
    for (unsigned i = 0; i < alen; i++)
        addr = addr << 8 | rec[1 + i];
    const uint8_t *data = rec + 1 + alen;
    unsigned dlen = count - alen - 1;
    switch (type) {
    case 0: return PF_OK; /* header: free text, not part of the image */
    case 1:
    case 2:
    case 3:
        p->data_records++;
        if ((uint64_t)addr + dlen > 0x100000000ull)
            return pf_diag_set(p->_diag, PF_ERR_FORMAT,
                               "line %lu: %u data bytes at 0x%08lx run past the 4 GiB address space", ln, dlen,
                               (unsigned long)addr);
        return pf_text_emit(p->_sink, p->_user, addr, data, dlen, ln, p->_diag);
    case 5:
    case 6:
        if (dlen)
            return pf_diag_set(p->_diag, PF_ERR_FORMAT, "line %lu: S%u count record has %u bytes after the count, expected none",
                               ln, type, dlen);
        if (addr != p->data_records)
            return pf_diag_set(p->_diag, PF_ERR_FORMAT,
                               "line %lu: S%u record count %lu does not match the %lu data records before it", ln, type,
                               (unsigned long)addr, (unsigned long)p->data_records);
        return PF_OK;
    default: /* 7, 8, 9 */
        if (dlen)
            return pf_diag_set(p->_diag, PF_ERR_FORMAT,
                               "line %lu: S%u end record has %u bytes after the start address, expected none", ln, type,
                               dlen);
        p->start_addr = addr;
        p->has_start = 1;
        p->_end = (int)type;
        return PF_OK;
    }
}

/* The shared line machinery, with the end record's name ("end record (S9)")
 * kept up to date for the message about data after it. */
typedef struct srec_lines {
    pf_srec *p;
    char end_name[24];
    pf_text_lines t;
} srec_lines;

static int srec_line_cb(void *parser)
{
    srec_lines *l = parser;
    int rc = srec_line(l->p);
    if (l->p->_end)
        pf_format(l->end_name, sizeof l->end_name, "end record (S%d)", l->p->_end);
    return rc;
}

static void srec_lines_init(srec_lines *l, pf_srec *p)
{
    l->p = p;
    pf_format(l->end_name, sizeof l->end_name, "end record (S%d)", p->_end);
    pf_text_lines t = {p->_buf, sizeof p->_buf, &p->_len, &p->line, &p->_end, 'S', l->end_name,
                       p->_diag, srec_line_cb, l};
    l->t = t;
}

int pf_srec_feed(pf_srec *p, const uint8_t *data, size_t n)
{
    if (!p || (!data && n))
        return PF_ERR_ARG;
    if (p->_err)
        return p->_err;
    srec_lines l;
    srec_lines_init(&l, p);
    int rc = pf_text_feed(&l.t, data, n);
    return rc ? fail(p, rc) : PF_OK;
}

int pf_srec_finish(pf_srec *p)
{
    if (!p)
        return PF_ERR_ARG;
    if (p->_err)
        return p->_err;
    srec_lines l;
    srec_lines_init(&l, p);
    int rc = pf_text_finish(&l.t);
    if (rc)
        return fail(p, rc);
    if (!p->_end)
        return fail(p, pf_diag_set(p->_diag, PF_ERR_FORMAT, "missing end record (S7, S8 or S9) at end of input"));
    return PF_OK;
}
