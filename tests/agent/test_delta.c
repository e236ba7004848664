/* The delta patch: host diff (pf_delta_make) and the streaming applier
 * (pf_patch_apply_*): round trips on random and firmware-like pairs, fed in
 * odd-sized pieces; resume from any output offset (pf_patch_body_seek);
 * every malformed body refused; patch files (header CRC, body CRC). */
#include <stdlib.h>
#include <string.h>

#include "peerflash/pf_bytes.h"
#include "peerflash/pf_delta.h"
#include "pf_test.h"

static uint32_t rng = 12345;
static uint32_t rnd(void)
{
    rng ^= rng << 13;
    rng ^= rng >> 17;
    rng ^= rng << 5;
    return rng;
}

typedef struct sink {
    const uint8_t *old;
    uint32_t old_len;
    uint8_t *out;
    uint32_t at, cap;
    uint32_t reads;
} sink;

static int s_read(void *ctx, uint32_t off, uint8_t *buf, uint32_t len)
{
    sink *s = ctx;
    if ((uint64_t)off + len > s->old_len || len > PF_PATCH_CHUNK)
        return PF_ERR_RANGE; /* the applier must never ask for this */
    memcpy(buf, s->old + off, len);
    s->reads++;
    return PF_OK;
}

static int s_emit(void *ctx, const uint8_t *data, uint32_t len)
{
    sink *s = ctx;
    if ((uint64_t)s->at + len > s->cap)
        return PF_ERR_RANGE;
    memcpy(s->out + s->at, data, len);
    s->at += len;
    return PF_OK;
}

/* Applies body (from body offset boff) continuing at output `resume`, fed in
 * random pieces; returns the applier's result, output in s. */
static int apply_from(const pf_delta *d, const uint8_t *old, uint32_t boff, uint32_t resume, sink *s, pf_diag *diag)
{
    memset(s, 0, sizeof *s);
    s->old = old;
    s->old_len = d->hdr.base_size;
    s->cap = d->hdr.new_size;
    s->out = malloc(s->cap + 1);
    s->at = 0;
    pf_patch_applier ap;
    pf_patch_apply_init(&ap, d->hdr.base_size, d->hdr.new_size, resume, s_read, s_emit, s, diag);
    uint32_t at = boff;
    while (at < d->body_len) {
        uint32_t n = 1 + rnd() % 300;
        if (n > d->body_len - at)
            n = d->body_len - at;
        int r = pf_patch_apply_feed(&ap, d->body + at, n);
        if (r < 0)
            return r;
        at += n;
    }
    return pf_patch_apply_done(&ap) ? PF_OK : PF_ERR_STATE;
}

static void round_trip(const uint8_t *old, uint32_t ol, const uint8_t *neu, uint32_t nl, uint32_t *body_len)
{
    pf_delta d;
    pf_diag diag = {0};
    REQUIRE(pf_delta_make(old, ol, neu, nl, &d, &diag) == PF_OK);
    sink s;
    CHECK_EQ(apply_from(&d, old, 0, 0, &s, &diag), PF_OK);
    CHECK_EQ(s.at, nl);
    CHECK(memcmp(s.out, neu, nl) == 0);
    free(s.out);
    /* resume: from a few output offsets, the body from the record covering it */
    for (int k = 0; k < 6 && nl; k++) {
        uint32_t R = k == 0 ? nl : rnd() % nl, boff = 0;
        REQUIRE(pf_patch_body_seek(d.body, d.body_len, R, &boff, &diag) == PF_OK);
        CHECK_EQ(apply_from(&d, old, boff, R, &s, &diag), PF_OK);
        CHECK_EQ(s.at, nl - R);
        CHECK(memcmp(s.out, neu + R, nl - R) == 0);
        free(s.out);
    }
    /* and through the file format */
    uint8_t *file, *res = NULL;
    size_t flen;
    REQUIRE(pf_delta_encode_file(&d, &file, &flen, &diag) == PF_OK);
    pf_delta back;
    CHECK_EQ(pf_delta_decode_file(file, flen, &back, &diag), PF_OK);
    CHECK_EQ(pf_delta_apply(&back, old, ol, &res, &diag), PF_OK);
    CHECK(res && memcmp(res, neu, nl) == 0);
    free(res);
    pf_delta_free(&back);
    free(file);
    if (body_len)
        *body_len = d.body_len;
    pf_delta_free(&d);
}

static void test_random_pairs(void)
{
    for (int t = 0; t < 40; t++) {
        uint32_t ol = rnd() % 5000, nl = rnd() % 5000;
        uint8_t *o = malloc(ol + 1), *n = malloc(nl + 1);
        for (uint32_t i = 0; i < ol; i++)
            o[i] = (uint8_t)(t & 1 ? rnd() % 4 : rnd()); /* small alphabets make long repeats */
        for (uint32_t i = 0; i < nl; i++)
            n[i] = (uint8_t)(t & 1 ? rnd() % 4 : rnd());
        /* half of them: new is old with edits */
        if (t % 3 == 0 && ol) {
            for (uint32_t i = 0; i < nl; i++)
                n[i] = o[i % ol];
            for (int e = 0; e < 5 && nl; e++)
                n[rnd() % nl] ^= 0x5a;
        }
        round_trip(o, ol, n, nl, NULL);
        free(o);
        free(n);
    }
}

/* Something like a firmware image: 32-bit "instructions", some of them
 * absolute addresses into the image. */
static uint8_t *firmware(uint32_t len, uint32_t insert_at, uint32_t insert_len, uint32_t seed)
{
    uint8_t *p = malloc(len + insert_len);
    uint32_t save = rng;
    rng = seed;
    uint32_t o = 0;
    for (uint32_t i = 0; i < len; i += 4) {
        if (i == insert_at)
            for (uint32_t k = 0; k < insert_len; k++)
                p[o++] = (uint8_t)rnd();
        uint32_t w = rnd();
        if ((w & 7) == 0) { /* an address: shifts with the code after the insert */
            uint32_t target = 0x08000000u + (rnd() % len & ~3u);
            if ((target & 0xffffff) >= insert_at)
                target += insert_len;
            w = target;
        } else if ((w & 7) < 5) {
            w &= 0x0000ffffu; /* short, repetitive opcodes */
            w |= 0x4600u;
        }
        pf_put_le32(p + o, w);
        o += 4;
    }
    rng = save;
    return p;
}

static void test_firmware_like(void)
{
    uint32_t len = 64 * 1024, ins = 256, body = 0;
    uint8_t *old = firmware(len, UINT32_MAX, 0, 99);
    uint8_t *neu = firmware(len, 20000, ins, 99);
    round_trip(old, len, neu, len + ins, &body);
    /* most of the change is address shifts: the body is mostly zero diff
     * bytes, which is what the compressed patch sends */
    pf_delta d;
    REQUIRE(pf_delta_make(old, len, neu, len + ins, &d, NULL) == PF_OK);
    uint8_t *file;
    size_t flen;
    REQUIRE(pf_delta_encode_file(&d, &file, &flen, NULL) == PF_OK);
    fprintf(stderr, "  64 KiB firmware-like, %u bytes inserted: body %u, file %zu bytes\n", (unsigned)ins,
            (unsigned)d.body_len, flen);
    CHECK(flen < (len + ins) / 10);
    free(file);
    pf_delta_free(&d);
    free(old);
    free(neu);
}

static void test_identical_and_empty(void)
{
    uint8_t a[1000];
    for (unsigned i = 0; i < sizeof a; i++)
        a[i] = (uint8_t)rnd();
    uint32_t body;
    round_trip(a, sizeof a, a, sizeof a, &body);
    CHECK(body <= PF_PATCH_RECORD_SIZE + sizeof a); /* one record of zero diffs */
    round_trip(a, sizeof a, a, 0, NULL);
    round_trip(NULL, 0, a, sizeof a, NULL);
}

/* A body built by hand, record by record. */
static uint32_t rec(uint8_t *at, uint32_t np, uint32_t op, uint32_t dl, uint32_t el)
{
    pf_patch_record r = {np, op, dl, el};
    pf_patch_record_encode(&r, at);
    memset(at + PF_PATCH_RECORD_SIZE, 0, dl + el);
    return PF_PATCH_RECORD_SIZE + dl + el;
}

static int feed_all(const uint8_t *body, uint32_t n, uint32_t base, uint32_t size, uint32_t resume, pf_diag *diag)
{
    static uint8_t old[256], out[256];
    sink s = {old, base, out, 0, sizeof out, 0};
    pf_patch_applier ap;
    pf_patch_apply_init(&ap, base, size, resume, s_read, s_emit, &s, diag);
    int r = pf_patch_apply_feed(&ap, body, n);
    if (r < 0)
        return r;
    return pf_patch_apply_done(&ap) ? PF_OK : PF_ERR_STATE;
}

static void test_malformed_bodies(void)
{
    uint8_t b[512];
    pf_diag d = {0};
    uint32_t n = rec(b, 0, 0, 10, 5);
    n += rec(b + n, 15, 20, 5, 0);
    CHECK_EQ(feed_all(b, n, 100, 20, 0, &d), PF_OK);
    /* a gap in the output */
    n = rec(b, 0, 0, 10, 0);
    n += rec(b + n, 11, 0, 9, 0);
    CHECK_EQ(feed_all(b, n, 100, 20, 0, &d), PF_ERR_FORMAT);
    CHECK_STR_CONTAINS(d.text, "expected 10");
    /* reads beyond the base */
    n = rec(b, 0, 95, 10, 0);
    CHECK_EQ(feed_all(b, n, 100, 10, 0, &d), PF_ERR_FORMAT);
    CHECK_STR_CONTAINS(d.text, "beyond its 100 bytes");
    n = rec(b, 0, 0xfffffff0u, 0x20, 0);
    CHECK_EQ(feed_all(b, n, 100, 0x20, 0, &d), PF_ERR_FORMAT);
    /* writes past the image */
    n = rec(b, 0, 0, 10, 11);
    CHECK_EQ(feed_all(b, n, 100, 20, 0, &d), PF_ERR_FORMAT);
    CHECK_STR_CONTAINS(d.text, "past the 20-byte image");
    pf_patch_record big = {0, 0, 0xffffffffu, 0xffffffffu};
    pf_patch_record_encode(&big, b);
    CHECK_EQ(feed_all(b, PF_PATCH_RECORD_SIZE, 100, 20, 0, &d), PF_ERR_FORMAT);
    /* empty record (no progress) */
    n = rec(b, 0, 0, 0, 0);
    CHECK_EQ(feed_all(b, n, 100, 20, 0, &d), PF_ERR_FORMAT);
    CHECK_STR_CONTAINS(d.text, "empty");
    /* bytes after the end */
    n = rec(b, 0, 0, 20, 0);
    b[n++] = 0;
    CHECK_EQ(feed_all(b, n, 100, 20, 0, &d), PF_ERR_FORMAT);
    CHECK_STR_CONTAINS(d.text, "after the end of the patch");
    /* ends early, or inside a record header */
    n = rec(b, 0, 0, 10, 0);
    CHECK_EQ(feed_all(b, n, 100, 20, 0, &d), PF_ERR_STATE);
    CHECK_EQ(feed_all(b, 7, 100, 20, 0, &d), PF_ERR_STATE);
    /* a resumed stream that starts after the resume point */
    n = rec(b, 10, 0, 10, 0);
    CHECK_EQ(feed_all(b, n, 100, 20, 5, &d), PF_ERR_FORMAT);
    CHECK_STR_CONTAINS(d.text, "needs it from 5");
    CHECK_EQ(feed_all(b, n, 100, 20, 10, &d), PF_OK);
    /* the seek walks the same chain */
    uint32_t off;
    n = rec(b, 0, 0, 10, 0);
    n += rec(b + n, 12, 0, 8, 0);
    CHECK_EQ(pf_patch_body_seek(b, n, 15, &off, &d), PF_ERR_FORMAT);
}

static void test_file_checks(void)
{
    uint8_t old[2000], neu[2000];
    for (unsigned i = 0; i < sizeof old; i++)
        old[i] = neu[i] = (uint8_t)rnd();
    neu[700] ^= 1;
    pf_delta d, back;
    pf_diag diag = {0};
    REQUIRE(pf_delta_make(old, sizeof old, neu, sizeof neu, &d, &diag) == PF_OK);
    uint8_t *file, *res = NULL;
    size_t flen;
    REQUIRE(pf_delta_encode_file(&d, &file, &flen, &diag) == PF_OK);
    file[50] ^= 1; /* header */
    CHECK_EQ(pf_delta_decode_file(file, flen, &back, &diag), PF_ERR_FORMAT);
    CHECK_STR_CONTAINS(diag.text, "header CRC");
    file[50] ^= 1;
    file[flen - 3] ^= 0x10; /* body */
    CHECK_EQ(pf_delta_decode_file(file, flen, &back, &diag), PF_ERR_FORMAT);
    CHECK_STR_CONTAINS(diag.text, "body CRC");
    file[flen - 3] ^= 0x10;
    CHECK_EQ(pf_delta_decode_file(file, flen - 1, &back, &diag), PF_ERR_FORMAT);
    REQUIRE(pf_delta_decode_file(file, flen, &back, &diag) == PF_OK);
    old[5] ^= 1; /* wrong base */
    CHECK_EQ(pf_delta_apply(&back, old, sizeof old, &res, &diag), PF_ERR_VERIFY);
    CHECK_STR_CONTAINS(diag.text, "base SHA-256");
    old[5] ^= 1;
    CHECK_EQ(pf_delta_apply(&back, old, sizeof old, &res, &diag), PF_OK);
    free(res);
    pf_delta_free(&back);
    pf_delta_free(&d);
    free(file);
}

int main(void)
{
    RUN(test_random_pairs);
    RUN(test_firmware_like);
    RUN(test_identical_and_empty);
    RUN(test_malformed_bodies);
    RUN(test_file_checks);
    return pf_test_summary();
}
