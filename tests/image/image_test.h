/* Helpers for the image reader tests: run a reader over an input split in
 * several ways (whole, byte by byte, random slices from a seed) and insist
 * that every split gives the same result; build records with correct
 * checksums so that a test can then break exactly one thing. */
#ifndef PF_IMAGE_TEST_H
#define PF_IMAGE_TEST_H

#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "peerflash/pf_image.h"
#include "pf_test.h"

enum { T_IHEX, T_SREC, T_BIN };

#define T_ARENA (1u << 20)
#define T_SEGS 64

typedef struct t_result {
    int rc;        /* first error from feed, else finish's result */
    int rc_again;  /* what feed returns after that (sticky check) */
    int parser_failed; /* the error came from the reader, not pf_memmap_finish */
    char diag[PF_DIAG_MAX];
    pf_segment segs[T_SEGS];
    uint8_t *arena;
    pf_memmap map;
    uint32_t start_addr;
    int has_start;
} t_result;

/* Feeds text[0..n) to a fresh reader in slices given by mode: 0 whole,
 * 1 byte by byte, otherwise random slice lengths 0..17 drawn from seed
 * mode. The map is finished when the reader succeeded. */
static inline void t_run(int fmt, const void *text, size_t n, unsigned mode, uint32_t bin_base, t_result *r)
{
    const uint8_t *in = text;
    memset(r->diag, 0, sizeof r->diag);
    if (!r->arena)
        r->arena = malloc(T_ARENA);
    pf_memmap_init(&r->map, r->segs, T_SEGS, r->arena, T_ARENA);
    pf_diag diag = {0};
    pf_memmap_dest dest = {&r->map, &diag};
    pf_ihex ih;
    pf_srec sr;
    pf_bin bn;
    if (fmt == T_IHEX)
        pf_ihex_init(&ih, pf_memmap_dest_sink, &dest, &diag);
    else if (fmt == T_SREC)
        pf_srec_init(&sr, pf_memmap_dest_sink, &dest, &diag);
    else
        pf_bin_init(&bn, bin_base, pf_memmap_dest_sink, &dest, &diag);
    uint32_t rng = mode * 2654435761u + 1;
    size_t pos = 0;
    int rc = 0;
    while (pos < n && rc == 0) {
        size_t k = n - pos;
        if (mode == 1)
            k = 1;
        else if (mode > 1) {
            rng = rng * 1103515245u + 12345u;
            size_t want = (rng >> 16) % 18;
            if (want < k)
                k = want;
        }
        rc = fmt == T_IHEX ? pf_ihex_feed(&ih, in + pos, k)
             : fmt == T_SREC ? pf_srec_feed(&sr, in + pos, k)
                             : pf_bin_feed(&bn, in + pos, k);
        pos += k;
    }
    if (rc == 0)
        rc = fmt == T_IHEX ? pf_ihex_finish(&ih) : fmt == T_SREC ? pf_srec_finish(&sr) : pf_bin_finish(&bn);
    memcpy(r->diag, diag.text, sizeof r->diag);
    r->rc = rc;
    r->parser_failed = rc != 0;
    /* Errors are sticky: more (valid-looking) input, and finish, repeat it. */
    static const uint8_t more[] = ":00000001FF\nS9030000FC\n";
    r->rc_again = fmt == T_IHEX ? pf_ihex_feed(&ih, more, sizeof more - 1)
                  : fmt == T_SREC ? pf_srec_feed(&sr, more, sizeof more - 1)
                                  : pf_bin_feed(&bn, more, 0);
    if (rc && fmt != T_BIN) {
        int fin = fmt == T_IHEX ? pf_ihex_finish(&ih) : pf_srec_finish(&sr);
        if (fin != rc)
            r->rc_again = fin;
    }
    r->has_start = fmt == T_IHEX ? ih.has_start : fmt == T_SREC ? sr.has_start : 0;
    r->start_addr = fmt == T_IHEX ? ih.start_addr : fmt == T_SREC ? sr.start_addr : 0;
    if (rc == 0) {
        int frc = pf_memmap_finish(&r->map, &diag);
        if (frc) {
            r->rc = frc;
            memcpy(r->diag, diag.text, sizeof r->diag);
        }
    }
}

static inline int t_same_map(const pf_memmap *a, const pf_memmap *b)
{
    if (a->count != b->count)
        return 0;
    for (size_t i = 0; i < a->count; i++)
        if (a->segs[i].addr != b->segs[i].addr || a->segs[i].len != b->segs[i].len ||
            memcmp(a->segs[i].data, b->segs[i].data, a->segs[i].len) != 0)
            return 0;
    return 1;
}

/* Runs every split; checks they agree and that an error is sticky and
 * explained. Returns the whole-input result in *r (r2 is scratch). */
static t_result t_res, t_scratch;
static inline const t_result *t_parse(int fmt, const void *text, size_t n)
{
    t_run(fmt, text, n, 0, 0, &t_res);
    static const unsigned modes[] = {1, 2, 3, 7, 1234};
    for (size_t m = 0; m < sizeof modes / sizeof modes[0]; m++) {
        t_run(fmt, text, n, modes[m], 0, &t_scratch);
        int same = t_scratch.rc == t_res.rc && !strcmp(t_scratch.diag, t_res.diag) &&
                   t_scratch.has_start == t_res.has_start && t_scratch.start_addr == t_res.start_addr &&
                   (t_res.rc || t_same_map(&t_res.map, &t_scratch.map));
        if (!same)
            fprintf(stderr, "split mode %u differs: rc %d vs %d, diag \"%s\" vs \"%s\"\n", modes[m], t_scratch.rc,
                    t_res.rc, t_scratch.diag, t_res.diag);
        CHECK(same);
    }
    if (t_res.rc)
        CHECK(t_res.diag[0] != '\0');
    if (t_res.parser_failed)
        CHECK_EQ(t_res.rc_again, t_res.rc);
    return &t_res;
}

static inline const t_result *t_parse_str(int fmt, const char *text) { return t_parse(fmt, text, strlen(text)); }

/* Expects an error: the code, and every fragment in the message. */
#define T_EXPECT_ERR(fmt, text, code, ...)                                   \
    do {                                                                     \
        const t_result *r_ = t_parse_str(fmt, text);                         \
        CHECK_EQ(r_->rc, code);                                              \
        const char *frags_[] = {__VA_ARGS__};                                \
        for (size_t i_ = 0; i_ < sizeof frags_ / sizeof frags_[0]; i_++)     \
            CHECK_STR_CONTAINS(r_->diag, frags_[i_]);                        \
    } while (0)

/* Appends one Intel HEX record with a correct checksum to out. */
static inline void t_ihex_rec(char *out, unsigned type, unsigned addr, const uint8_t *data, unsigned n)
{
    char *p = out + strlen(out);
    unsigned sum = n + (addr >> 8) + (addr & 0xFF) + type;
    p += sprintf(p, ":%02X%04X%02X", n, addr & 0xFFFF, type);
    for (unsigned i = 0; i < n; i++) {
        p += sprintf(p, "%02X", data[i]);
        sum += data[i];
    }
    sprintf(p, "%02X\n", (0x100 - (sum & 0xFF)) & 0xFF);
}

/* Appends one S-record (type 0..9) with alen address bytes and a correct checksum. */
static inline void t_srec_rec(char *out, unsigned type, unsigned alen, uint32_t addr, const uint8_t *data, unsigned n)
{
    char *p = out + strlen(out);
    unsigned count = alen + n + 1, sum = count;
    p += sprintf(p, "S%u%02X", type, count);
    for (unsigned i = alen; i-- > 0;) {
        unsigned b = (addr >> (8 * i)) & 0xFF;
        p += sprintf(p, "%02X", b);
        sum += b;
    }
    for (unsigned i = 0; i < n; i++) {
        p += sprintf(p, "%02X", data[i]);
        sum += data[i];
    }
    sprintf(p, "%02X\n", ~sum & 0xFF);
}

/* Reads back [addr, addr+n) of a finished map and compares with want. */
static inline int t_map_has(const pf_memmap *m, uint32_t addr, const uint8_t *want, size_t n)
{
    uint8_t *buf = malloc(n ? n : 1);
    size_t got = pf_memmap_read(m, addr, buf, n, 0xA5);
    int ok = got == n && memcmp(buf, want, n) == 0;
    free(buf);
    return ok;
}

#endif
