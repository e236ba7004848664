/* zlib on a caller arena (pf_zarena.h): blocks are 16-byte aligned and in
 * bounds, an arena too small makes zlib fail cleanly (Z_MEM_ERROR, no heap),
 * and a deflate/inflate round trip runs entirely inside two arenas. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "peerflash/pf_zarena.h"
#include "pf_test.h"

static void test_blocks(void)
{
    static unsigned char mem[1000];
    pf_zarena a;
    pf_zarena_init(&a, mem + 3, 900); /* a misaligned start */
    void *p = pf_zarena_alloc(&a, 1, 10), *q = pf_zarena_alloc(&a, 3, 7);
    REQUIRE(p && q);
    CHECK_EQ((uintptr_t)p % 16, 0);
    CHECK_EQ((uintptr_t)q % 16, 0);
    CHECK((unsigned char *)q >= (unsigned char *)p + 10);
    CHECK(pf_zarena_alloc(&a, 1, 900) == NULL); /* does not fit */
    CHECK(pf_zarena_alloc(&a, 0x10000u, 0x10000u) == NULL); /* items * size overflows 32 bits */
    unsigned char *r = pf_zarena_alloc(&a, 1, 800);
    REQUIRE(r);
    CHECK(r + 800 <= mem + 3 + 900);
    pf_zarena_free(&a, r); /* nothing */
    pf_zarena_reset(&a);
    CHECK(pf_zarena_alloc(&a, 1, 10) == p); /* everything is free again */
    pf_zarena none;
    pf_zarena_init(&none, NULL, 100);
    CHECK(pf_zarena_alloc(&none, 1, 1) == NULL);
}

static void test_roundtrip(void)
{
    static unsigned char dmem[200 * 1024], imem[48 * 1024], tiny[2048];
    enum { N = 100000 };
    uint8_t *src = malloc(N), *comp = malloc(N + 1024), *out = malloc(N);
    REQUIRE(src && comp && out);
    for (size_t i = 0; i < N; i++)
        src[i] = (uint8_t)((i * 7) ^ (i >> 5));

    pf_zarena da, ia, ta;
    z_stream z;
    memset(&z, 0, sizeof z);
    pf_zarena_init(&ta, tiny, sizeof tiny);
    PF_ZARENA_ATTACH(&z, &ta);
    CHECK_EQ(deflateInit2(&z, 9, Z_DEFLATED, 14, 7, Z_DEFAULT_STRATEGY), Z_MEM_ERROR);

    memset(&z, 0, sizeof z);
    pf_zarena_init(&da, dmem, sizeof dmem);
    PF_ZARENA_ATTACH(&z, &da);
    REQUIRE(deflateInit2(&z, 9, Z_DEFLATED, 14, 7, Z_DEFAULT_STRATEGY) == Z_OK);
    z.next_in = src;
    z.avail_in = N;
    z.next_out = comp;
    z.avail_out = N + 1024;
    CHECK_EQ(deflate(&z, Z_FINISH), Z_STREAM_END);
    size_t clen = z.total_out;
    deflateEnd(&z);
    CHECK(da.used > 0 && da.used <= sizeof dmem);

    memset(&z, 0, sizeof z);
    pf_zarena_init(&ia, imem, sizeof imem);
    PF_ZARENA_ATTACH(&z, &ia);
    REQUIRE(inflateInit2(&z, 14) == Z_OK);
    z.next_in = comp;
    z.avail_in = (uInt)clen;
    z.next_out = out;
    z.avail_out = N;
    CHECK_EQ(inflate(&z, Z_FINISH), Z_STREAM_END);
    CHECK_EQ(z.total_out, N);
    CHECK(memcmp(src, out, N) == 0);
    inflateEnd(&z);
    free(src);
    free(comp);
    free(out);
}

int main(void)
{
    RUN(test_blocks);
    RUN(test_roundtrip);
    return pf_test_summary();
}
