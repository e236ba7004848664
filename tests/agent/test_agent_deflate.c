/* Deflate in the agent (docs/PROTOCOL.md, "Compression"), at the store and
 * protocol-engine level over the simulated NOR flash: a zlib stream inflates
 * to the byte-exact image; resume restarts a fresh stream at the last erase
 * unit stored; corrupt streams (flipped bytes, a window larger than offered,
 * a bad Adler-32, truncation, trailing bytes) are refused and never become a
 * pending image; the arena is measured; BEGIN with the deflate flag is
 * refused by an agent that does not offer it. */
#include <stdio.h>
#include <zlib.h>

#include "agent_fixture.h"
#include "peerflash/pf_agent_proto.h"
#include "peerflash/pf_bytes.h"
#include "pf_test.h"

#define ZBITS 10

static fx F;
static uint8_t zarena[PF_AGENT_ZARENA_SIZE(ZBITS)];

static int make_image(fx_image *im, uint8_t major, size_t body_len, uint32_t seed)
{
    return fx_make_compressible(im, F.key, major, body_len, seed);
}

/* zlib stream of data[from..len) with a 2^bits window (malloc'd). */
static uint8_t *zcompress(const fx_image *im, uint32_t from, int bits, size_t *zlen)
{
    z_stream z;
    memset(&z, 0, sizeof z);
    if (deflateInit2(&z, 9, Z_DEFLATED, bits, 8, Z_DEFAULT_STRATEGY) != Z_OK)
        return NULL;
    size_t cap = deflateBound(&z, (uLong)(im->len - from));
    uint8_t *out = malloc(cap);
    z.next_in = im->data + from;
    z.avail_in = (uInt)(im->len - from);
    z.next_out = out;
    z.avail_out = (uInt)cap;
    int r = deflate(&z, Z_FINISH);
    *zlen = cap - z.avail_out;
    deflateEnd(&z);
    if (r != Z_STREAM_END) {
        free(out);
        return NULL;
    }
    return out;
}

static void setup(uint8_t zbits)
{
    pf_nor_free(&F.nor);
    REQUIRE(pf_nor_init(&F.nor, FX_FLASH, 1, 8, FX_E, 0xFF, NULL) == 0);
    memset(&F.diag, 0, sizeof F.diag);
    REQUIRE(fx_open_boot(&F, 1) == 0);
    pf_agent_config c = PF_AGENT_CONFIG_DEFAULT();
    c.boot = &F.boot;
    c.wbuf = F.wbuf;
    c.wbuf_size = sizeof F.wbuf;
    c.diag = &F.diag;
    c.zbits = zbits;
    c.zarena = zarena;
    c.zarena_size = sizeof zarena;
    REQUIRE(pf_agent_init(&F.agent, &c) == 0);
}

/* BEGIN + deflate + the stream in chunks; returns the first error. */
static int send_z(const fx_image *im, const uint8_t *z, size_t zlen, uint32_t chunk, uint32_t *resume)
{
    uint32_t rs;
    int r = pf_agent_recv_begin(&F.agent, im->file_hash, (uint32_t)im->len, resume ? resume : &rs);
    if (r < 0)
        return r;
    if ((r = pf_agent_recv_deflate(&F.agent)) < 0)
        return r;
    for (uint32_t o = 0; o < zlen;) {
        uint32_t n = (uint32_t)zlen - o < chunk ? (uint32_t)zlen - o : chunk;
        if ((r = pf_agent_recv_zdata(&F.agent, o, z + o, n)) < 0)
            return r;
        CHECK_EQ(pf_agent_recv_zoffset(&F.agent), o + n); /* every byte taken */
        o += n;
    }
    return PF_OK;
}

static void test_exact(void)
{
    fx_image im;
    REQUIRE(make_image(&im, 2, 14000, 1) == 0);
    setup(ZBITS);
    size_t zlen;
    uint8_t *z = zcompress(&im, 0, ZBITS, &zlen);
    REQUIRE(z);
    fprintf(stderr, "  %lu-byte image as a %lu-byte stream (window %u bytes)\n", (unsigned long)im.len,
            (unsigned long)zlen, 1u << ZBITS);
    CHECK(zlen < im.len / 2); /* the test image really is compressible */
    for (uint32_t chunk = 1; chunk <= 4096; chunk *= 64) { /* 1, 64, 4096 bytes per DATA */
        setup(ZBITS);
        CHECK_EQ(send_z(&im, z, zlen, chunk, NULL), PF_OK);
        CHECK_EQ(pf_agent_recv_end(&F.agent, 0), PF_OK);
        CHECK_EQ(F.boot.rec.state, PF_BOOT_PENDING);
        CHECK(fx_slot_is(&F, FX_SECONDARY, &im)); /* byte for byte */
    }
    free(z);
    free(im.data);
}

static void test_resume(void)
{
    fx_image im;
    REQUIRE(make_image(&im, 3, 15000, 2) == 0);
    setup(ZBITS);
    size_t zlen;
    uint8_t *z = zcompress(&im, 0, ZBITS, &zlen);
    REQUIRE(z);
    /* the link dies after 70% of the stream */
    uint32_t resume;
    REQUIRE(pf_agent_recv_begin(&F.agent, im.file_hash, (uint32_t)im.len, &resume) == 0);
    REQUIRE(pf_agent_recv_deflate(&F.agent) == 0);
    CHECK_EQ(pf_agent_recv_zdata(&F.agent, 0, z, (uint32_t)(zlen * 7 / 10)), PF_OK);
    uint32_t got = pf_agent_recv_offset(&F.agent);
    free(z);
    /* the device restarts: a new agent, BEGIN of the same image resumes at
     * the last erase unit stored, from where the host starts a new stream */
    REQUIRE(fx_open_boot(&F, 1) == 0);
    pf_agent_config c = F.agent.cfg;
    REQUIRE(pf_agent_init(&F.agent, &c) == 0);
    REQUIRE(pf_agent_recv_begin(&F.agent, im.file_hash, (uint32_t)im.len, &resume) == 0);
    fprintf(stderr, "  cut after %lu image bytes inflated: resume at %lu\n", (unsigned long)got, (unsigned long)resume);
    CHECK(resume > 0);
    CHECK_EQ(resume % FX_E, 0);
    CHECK(resume <= got);
    CHECK(got - resume < FX_E + sizeof F.wbuf);
    z = zcompress(&im, resume, ZBITS, &zlen);
    REQUIRE(z);
    REQUIRE(pf_agent_recv_deflate(&F.agent) == 0);
    CHECK_EQ(pf_agent_recv_zdata(&F.agent, 0, z, (uint32_t)zlen), PF_OK);
    CHECK_EQ(pf_agent_recv_end(&F.agent, 0), PF_OK);
    CHECK(fx_slot_is(&F, FX_SECONDARY, &im));
    /* an image already complete: resume = size, nothing to inflate, END ok */
    REQUIRE(fx_open_boot(&F, 1) == 0);
    REQUIRE(pf_agent_init(&F.agent, &c) == 0);
    REQUIRE(pf_agent_recv_begin(&F.agent, im.file_hash, (uint32_t)im.len, &resume) == 0);
    CHECK_EQ(resume, im.len);
    REQUIRE(pf_agent_recv_deflate(&F.agent) == 0);
    CHECK_EQ(pf_agent_recv_end(&F.agent, 0), PF_OK);
    free(z);
    free(im.data);
}

/* Never pending afterwards, whatever went wrong. */
static int refused_everywhere(const fx_image *im, const uint8_t *z, size_t zlen)
{
    setup(ZBITS);
    int r = send_z(im, z, zlen, 97, NULL);
    if (r >= 0)
        r = pf_agent_recv_end(&F.agent, 0);
    CHECK(r < 0);
    CHECK(F.boot.rec.state != PF_BOOT_PENDING);
    return r;
}

static void test_corrupt(void)
{
    fx_image im;
    REQUIRE(make_image(&im, 4, 12000, 3) == 0);
    size_t zlen;
    uint8_t *z = zcompress(&im, 0, ZBITS, &zlen);
    REQUIRE(z);
    uint8_t *bad = malloc(zlen + 8);
    /* flipped bits all over the stream (the frame CRC would catch these on
     * a link: this is a host sending a broken stream) */
    uint32_t x = 99;
    int by_inflate = 0;
    for (int k = 0; k < 24; k++) {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        memcpy(bad, z, zlen);
        size_t at = k == 0 ? zlen - 1 : x % zlen; /* k = 0: the Adler-32 */
        bad[at] ^= (uint8_t)(1u << (x >> 24) % 8);
        int r = refused_everywhere(&im, bad, zlen);
        by_inflate += r == PF_ERR_FORMAT;
        if (k == 0) {
            CHECK_EQ(r, PF_ERR_FORMAT);
            CHECK_STR_CONTAINS(F.diag.text, "incorrect data check");
        }
    }
    fprintf(stderr, "  24 corrupt streams refused, %d of them by inflate itself\n", by_inflate);
    CHECK(by_inflate >= 12);
    /* truncated: END refuses (the stream did not end) */
    setup(ZBITS);
    CHECK_EQ(send_z(&im, z, zlen - 5, 500, NULL), PF_OK);
    CHECK_EQ(pf_agent_recv_end(&F.agent, 0), PF_ERR_STATE);
    CHECK(F.boot.rec.state != PF_BOOT_PENDING);
    /* bytes after the end of the stream */
    memcpy(bad, z, zlen);
    memcpy(bad + zlen, "garbage!", 8);
    CHECK_EQ(refused_everywhere(&im, bad, zlen + 8), PF_ERR_FORMAT);
    CHECK_STR_CONTAINS(F.diag.text, "after the end");
    free(z);
    /* a window larger than the agent offered */
    z = zcompress(&im, 0, 15, &zlen);
    REQUIRE(z);
    CHECK_EQ(refused_everywhere(&im, z, zlen), PF_ERR_FORMAT);
    CHECK_STR_CONTAINS(F.diag.text, "window");
    free(z);
    /* a stream that inflates to more than the announced image */
    fx_image longer = im;
    longer.len = im.len + 100;
    longer.data = malloc(longer.len);
    memcpy(longer.data, im.data, im.len);
    memset(longer.data + im.len, 0x77, 100);
    z = zcompress(&longer, 0, ZBITS, &zlen);
    REQUIRE(z);
    CHECK_EQ(refused_everywhere(&im, z, zlen), PF_ERR_FORMAT);
    CHECK_STR_CONTAINS(F.diag.text, "more than the announced");
    free(z);
    free(longer.data);
    free(bad);
    free(im.data);
}

static void test_config(void)
{
    pf_nor_free(&F.nor);
    REQUIRE(pf_nor_init(&F.nor, FX_FLASH, 1, 8, FX_E, 0xFF, NULL) == 0);
    REQUIRE(fx_open_boot(&F, 1) == 0);
    pf_agent_config c = PF_AGENT_CONFIG_DEFAULT();
    c.boot = &F.boot;
    c.wbuf = F.wbuf;
    c.wbuf_size = sizeof F.wbuf;
    c.diag = &F.diag;
    c.zbits = 12; /* a 4 KiB window does not fit an arena sized for 1 KiB */
    c.zarena = zarena;
    c.zarena_size = sizeof zarena;
    CHECK_EQ(pf_agent_init(&F.agent, &c), PF_ERR_ARG);
    CHECK_STR_CONTAINS(F.diag.text, "arena");
    c.zbits = 8;
    CHECK_EQ(pf_agent_init(&F.agent, &c), PF_ERR_ARG);
    /* without deflate: the store refuses a compressed transfer */
    c.zbits = 0;
    REQUIRE(pf_agent_init(&F.agent, &c) == 0);
    fx_image im;
    REQUIRE(make_image(&im, 5, 3000, 5) == 0);
    uint32_t rs;
    REQUIRE(pf_agent_recv_begin(&F.agent, im.file_hash, (uint32_t)im.len, &rs) == 0);
    CHECK_EQ(pf_agent_recv_deflate(&F.agent), PF_ERR_UNSUPPORTED);
    free(im.data);
}

int main(void)
{
    pf_diag d;
    snprintf(F.key, sizeof F.key, "%s", FX_TEST_KEY);
    F.pub_len = pf_sign_pubkey_der(F.key, F.pub, sizeof F.pub, &d);
    if (F.pub_len < 0)
        return 1;
    RUN(test_exact);
    RUN(test_resume);
    RUN(test_corrupt);
    RUN(test_config);
    pf_nor_free(&F.nor);
    return pf_test_summary();
}
