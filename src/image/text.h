/* Shared helpers of the line-oriented readers (Intel HEX, S-record).
 * Internal to src/image/, not a public interface. */
#ifndef PF_IMAGE_TEXT_H
#define PF_IMAGE_TEXT_H

#include <stddef.h>
#include <stdint.h>

#include "peerflash/pf_err.h"
#include "peerflash/pf_image.h"

#include <string.h>

/* Value of each byte as a hex digit (both cases), or -1. */
#define PF_TEXT_X16 -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1
static const int8_t pf_text_hex_tab[256] = {
    PF_TEXT_X16, PF_TEXT_X16, PF_TEXT_X16,                           /* 0x00-0x2F */
    0, 1, 2, 3, 4, 5, 6, 7, 8, 9, -1, -1, -1, -1, -1, -1,           /* 0x30 */
    -1, 10, 11, 12, 13, 14, 15, -1, -1, -1, -1, -1, -1, -1, -1, -1, /* 0x40 */
    PF_TEXT_X16,                                                     /* 0x50 */
    -1, 10, 11, 12, 13, 14, 15, -1, -1, -1, -1, -1, -1, -1, -1, -1, /* 0x60 */
    PF_TEXT_X16, PF_TEXT_X16, PF_TEXT_X16, PF_TEXT_X16, PF_TEXT_X16, /* 0x70-0xBF */
    PF_TEXT_X16, PF_TEXT_X16, PF_TEXT_X16, PF_TEXT_X16,              /* 0xC0-0xFF */
};
#undef PF_TEXT_X16

static inline int pf_text_hexval(char c) { return pf_text_hex_tab[(unsigned char)c]; }

/* White space tolerated at the end of a line and on blank lines (the '\n'
 * that ends a line is handled by the caller). */
static inline int pf_text_space(char c) { return c == ' ' || c == '\t' || c == '\r' || c == '\v' || c == '\f'; }

/* Length of the line without trailing white space. */
static inline size_t pf_text_trim(const char *s, size_t n)
{
    while (n && pf_text_space(s[n - 1]))
        n--;
    return n;
}

/* Describes a byte for an error message: 'G' for printable ASCII, else
 * "byte 0x00". Writes into out (at least 12 bytes). */
static inline const char *pf_text_describe(char c, char out[12])
{
    unsigned char u = (unsigned char)c;
    if (u >= 0x21 && u < 0x7F)
        pf_format(out, 12, "'%c'", c);
    else
        pf_format(out, 12, "byte 0x%02X", (unsigned)u);
    return out;
}

/* Checks and decodes the record body s[0..n) after its marker: only hex
 * digits, an even count. Writes n/2 bytes to out, which may be s itself
 * (byte i/2 is written after digits i and i+1 are read). Returns 0 or
 * PF_ERR_FORMAT with the cause in diag; col0 is the 1-based column of s[0]. */
static inline int pf_text_decode(const char *s, size_t n, uint8_t *out, unsigned long line, size_t col0, pf_diag *diag)
{
    size_t i = 0;
    for (; i + 1 < n; i += 2) {
        int hi = pf_text_hexval(s[i]), lo = pf_text_hexval(s[i + 1]);
        if ((hi | lo) < 0)
            break;
        out[i / 2] = (uint8_t)(hi << 4 | lo);
    }
    for (; i < n; i++) {
        if (pf_text_hexval(s[i]) < 0) {
            char d[12];
            return pf_diag_set(diag, PF_ERR_FORMAT, "line %lu: invalid character %s in column %zu, expected a hex digit",
                               line, pf_text_describe(s[i], d), col0 + i);
        }
    }
    if (n % 2)
        return pf_diag_set(diag, PF_ERR_FORMAT, "line %lu: odd number of hex digits (%zu)", line, n);
    return PF_OK;
}

/* Calls a sink and, when it fails, names the line in the diag: the sink's
 * own explanation if it gave one, otherwise the error and the address. */
static inline int pf_text_emit(int (*sink)(void *, uint32_t, const uint8_t *, size_t), void *user, uint32_t addr,
                               const uint8_t *data, size_t len, unsigned long line, pf_diag *diag)
{
    if (len == 0)
        return PF_OK;
    if (diag)
        diag->text[0] = '\0';
    int rc = sink(user, addr, data, len);
    if (rc >= 0)
        return PF_OK;
    if (diag && diag->text[0]) {
        char where[24];
        pf_format(where, sizeof where, "line %lu", line);
        pf_diag_prefix(diag, where);
    } else {
        pf_diag_set(diag, rc, "line %lu: cannot store %zu bytes at 0x%08lx: %s", line, len, (unsigned long)addr,
                    pf_strerror(rc));
    }
    return rc;
}

/* The line machinery the text formats share. A parser keeps one line in its
 * own buffer; this splits the input at '\n', checks each line's first
 * character, hands complete lines to the parser, and after the end record
 * accepts only white space. */
typedef struct pf_text_lines {
    char *buf;               /* the parser's line buffer ... */
    size_t cap;              /* ... and its size */
    size_t *len;             /* bytes of the current line */
    uint32_t *line;          /* current line number */
    const int *ended;        /* nonzero once the end record was seen */
    char lead;               /* the character every record starts with */
    const char *end_name;    /* "end-of-file record", "end record (S9)" */
    pf_diag *diag;
    int (*on_line)(void *parser); /* parses buf[0..*len) */
    void *parser;
} pf_text_lines;

static inline int pf_text_append(const pf_text_lines *t, const uint8_t *s, size_t n)
{
    if (n == 0)
        return PF_OK;
    if (*t->ended) {
        for (size_t i = 0; i < n; i++)
            if (!pf_text_space((char)s[i]))
                return pf_diag_set(t->diag, PF_ERR_FORMAT, "data after %s on line %lu", t->end_name,
                                   (unsigned long)*t->line);
        return PF_OK;
    }
    if (*t->len == 0 && s[0] != t->lead && !pf_text_space((char)s[0])) {
        char d[12];
        return pf_diag_set(t->diag, PF_ERR_FORMAT, "line %lu: record does not start with '%c' (found %s)",
                           (unsigned long)*t->line, t->lead, pf_text_describe((char)s[0], d));
    }
    if (n > t->cap - *t->len)
        return pf_diag_set(t->diag, PF_ERR_FORMAT, "line %lu: longer than %d characters", (unsigned long)*t->line,
                           PF_IMAGE_LINE_MAX);
    memcpy(t->buf + *t->len, s, n);
    *t->len += n;
    return PF_OK;
}

/* Feeds any slice of the input; returns 0 or the first error. */
static inline int pf_text_feed(const pf_text_lines *t, const uint8_t *data, size_t n)
{
    while (n) {
        const uint8_t *nl = memchr(data, '\n', n);
        size_t take = nl ? (size_t)(nl - data) : n;
        int rc = pf_text_append(t, data, take);
        if (rc)
            return rc;
        if (!nl)
            break;
        if (!*t->ended) {
            rc = t->on_line(t->parser);
            if (rc)
                return rc;
        }
        *t->len = 0;
        (*t->line)++;
        data += take + 1;
        n -= take + 1;
    }
    return PF_OK;
}

/* The input ended: parses a last line that had no '\n'. */
static inline int pf_text_finish(const pf_text_lines *t)
{
    if (*t->len && !*t->ended) {
        int rc = t->on_line(t->parser);
        *t->len = 0;
        return rc;
    }
    return PF_OK;
}

#endif
