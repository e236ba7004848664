/* The esp driver's deflate pipeline (src/host/zpipe.c): each method's
 * segments, joined, inflate back to the input with zlib (window 2^15, each
 * segment using the one before as its window); a non-final segment ends in
 * a sync flush; the thread keeps order and bounds; auto picks zopfli only on
 * a slow line. Built twice: as the library has it, and from the source
 * without zopfli (PF_ZPIPE_OWN_COPY), where best is refused and auto is
 * zlib only. */
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "host/zpipe.h"
#include "pf_test.h"

#if PF_ZPIPE_OWN_COPY || !PF_TEST_HAVE_ZOPFLI
#define HAVE_ZOPFLI 0 /* this copy of zpipe.c is compiled without PF_HAVE_ZOPFLI */
#else
#define HAVE_ZOPFLI 1
#endif

#define SEG 0x8000u
#define NSEG 5u

static uint8_t data[NSEG * SEG];

static void fill(uint32_t seed)
{
    uint32_t x = seed * 2654435761u + 1u;
    static const char *words[] = {"flash ", "sector ", "the ", "block ", "segment ", "of ", "a ", "write "};
    size_t i = 0;
    while (i < sizeof data) {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        if ((i / 3000) % 3 == 0) { /* random stretches */
            data[i++] = (uint8_t)x;
            continue;
        }
        const char *w = words[x % 8];
        for (size_t k = 0; w[k] && i < sizeof data; k++)
            data[i++] = (uint8_t)w[k];
    }
}

/* Inflates the raw deflate stream; 1 when it gives back data[0, n). */
static int inflates_to(const uint8_t *z, size_t zn, size_t n)
{
    static uint8_t out[NSEG * SEG + 16];
    z_stream s;
    memset(&s, 0, sizeof s);
    if (inflateInit2(&s, -15) != Z_OK)
        return 0;
    s.next_in = (Bytef *)(uintptr_t)z;
    s.avail_in = (uInt)zn;
    s.next_out = out;
    s.avail_out = sizeof out;
    int r = inflate(&s, Z_FINISH);
    size_t got = sizeof out - s.avail_out;
    inflateEnd(&s);
    return r == Z_STREAM_END && got == n && memcmp(out, data, n) == 0;
}

static void test_parts_join(void)
{
    for (int best = 0; best <= HAVE_ZOPFLI; best++) {
        /* segment lengths that end zopfli's last block at different bits */
        static const size_t lens[] = {SEG, SEG, 1000, 7, SEG};
        fill(best + 1);
        uint8_t *all = malloc(2 * sizeof data);
        size_t an = 0, at = 0;
        for (size_t i = 0; i < NSEG; i++) {
            uint8_t *o = NULL;
            size_t on = 0;
            int final = i + 1 == NSEG;
            REQUIRE(pf_zp_compress(best, data, at, data + at, lens[i], final, &o, &on) == 0);
            if (!final) /* a sync flush: an empty stored block ends it on a byte */
                CHECK(on >= 4 && memcmp(o + on - 4, "\x00\x00\xff\xff", 4) == 0);
            memcpy(all + an, o, on);
            an += on;
            at += lens[i];
            free(o);
        }
        CHECK(inflates_to(all, an, at));
        fprintf(stderr, "  %s: %zu -> %zu bytes\n", best ? "zopfli" : "zlib", at, an);
        free(all);
    }
}

/* Runs the pipeline over data; returns what it wrote, the stats in *st. */
static size_t pipe_run(int method, uint32_t rate, unsigned depth, uint8_t *all, pf_zp_stats *st)
{
    pf_zpipe *z = pf_zpipe_new(method, depth);
    CHECK(z != NULL);
    memset(st, 0, sizeof *st);
    if (!z)
        return 0;
    pf_zpipe_set_rate(z, rate);
    size_t an = 0;
    unsigned put = 0;
    uint32_t next_tag = 0;
    while (put < NSEG || pf_zpipe_held(z)) {
        if (put < NSEG && pf_zpipe_held(z) < pf_zpipe_depth(z)) {
            CHECK_EQ(pf_zpipe_put(z, data + put * SEG, SEG, put * SEG, put != 0, put + 1 == NSEG), 0);
            put++;
            continue;
        }
        if (put < NSEG) /* full: a put is refused */
            CHECK_EQ(pf_zpipe_put(z, data, SEG, 0, 0, 0), -1);
        pf_zp_seg g;
        int ok = pf_zpipe_oldest(z, &g) == 0;
        CHECK(ok);
        if (!ok)
            break;
        CHECK_EQ(g.tag, next_tag); /* in order */
        CHECK(g.raw_len == SEG && memcmp(g.raw, data + g.tag, SEG) == 0);
        memcpy(all + an, g.out, g.out_len);
        an += g.out_len;
        next_tag += SEG;
        pf_zpipe_progress(z, g.out_len);
        pf_zpipe_release(z);
    }
    pf_zpipe_stats(z, st);
    pf_zpipe_free(z);
    return an;
}

static void test_pipeline(void)
{
    fill(7);
    uint8_t *all = malloc(2 * sizeof data);
    pf_zp_stats st;
    size_t n = pipe_run(PF_ZP_FAST, 11520, 3, all, &st);
    CHECK(inflates_to(all, n, sizeof data));
    CHECK_EQ(st.segs_fast, NSEG);
    CHECK_EQ(st.segs_best, 0);
    /* auto on a slow line (1 KB/s): zopfli once a segment waits for the
     * line, when built in; on a fast one (100 MB/s): zlib only */
    n = pipe_run(PF_ZP_AUTO, 1000, 3, all, &st);
    CHECK(inflates_to(all, n, sizeof data));
    fprintf(stderr, "  auto, slow line: %u by zlib, %u by zopfli\n", st.segs_fast, st.segs_best);
    if (HAVE_ZOPFLI)
        CHECK(st.segs_best >= 1);
    else
        CHECK_EQ(st.segs_best, 0);
    CHECK(st.segs_fast >= 1); /* the first: nothing waits for the line yet */
    n = pipe_run(PF_ZP_AUTO, 100000000u, 3, all, &st);
    CHECK(inflates_to(all, n, sizeof data));
    CHECK_EQ(st.segs_best, 0);
    free(all);
}

static void test_best_available(void)
{
    CHECK_EQ(pf_zp_available(PF_ZP_FAST), 1);
    CHECK_EQ(pf_zp_available(PF_ZP_AUTO), 1);
    CHECK_EQ(pf_zp_available(PF_ZP_BEST), HAVE_ZOPFLI);
    CHECK_EQ(pf_zp_method_parse("best"), PF_ZP_BEST);
    CHECK_EQ(pf_zp_method_parse("zopfli"), -1);
    pf_zpipe *z = pf_zpipe_new(PF_ZP_BEST, 2);
    CHECK_EQ(z != NULL, HAVE_ZOPFLI);
    pf_zpipe_free(z);
    if (!HAVE_ZOPFLI) {
        uint8_t *o = NULL;
        size_t on = 0;
        CHECK_EQ(pf_zp_compress(1, NULL, 0, data, 100, 1, &o, &on), -1);
    }
}

int main(void)
{
    RUN(test_best_available);
    RUN(test_parts_join);
    RUN(test_pipeline);
    return pf_test_summary();
}
