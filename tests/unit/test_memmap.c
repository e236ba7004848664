/* Memory map: joining, sorting, overlap and range errors, fill on read. */
#include "peerflash/peerflash.h"
#include "pf_test.h"

static pf_segment segs[8];
static uint8_t arena[256];

static void test_contiguous_records_join(void)
{
    pf_memmap m;
    pf_memmap_init(&m, segs, 8, arena, sizeof arena);
    uint8_t a[16] = {1}, b[16] = {2};
    CHECK_EQ(pf_memmap_add(&m, 0x100, a, 16, NULL), PF_OK);
    CHECK_EQ(pf_memmap_add(&m, 0x110, b, 16, NULL), PF_OK);
    CHECK_EQ(m.count, 1);
    CHECK_EQ(m.segs[0].len, 32);
    CHECK_EQ(pf_memmap_finish(&m, NULL), PF_OK);
    CHECK_EQ(pf_memmap_bytes(&m), 32);
}

static void test_out_of_order_sorted_and_joined(void)
{
    pf_memmap m;
    pf_memmap_init(&m, segs, 8, arena, sizeof arena);
    uint8_t d[8] = {0};
    pf_memmap_add(&m, 0x200, d, 8, NULL);
    pf_memmap_add(&m, 0x100, d, 8, NULL);
    pf_memmap_add(&m, 0x300, d, 8, NULL);
    CHECK_EQ(pf_memmap_finish(&m, NULL), PF_OK);
    CHECK_EQ(m.count, 3);
    CHECK_EQ(m.segs[0].addr, 0x100);
    CHECK_EQ(m.segs[2].addr, 0x300);
    uint32_t lo, hi;
    pf_memmap_bounds(&m, &lo, &hi);
    CHECK_EQ(lo, 0x100);
    CHECK_EQ(hi, 0x308);
}

static void test_overlap_named(void)
{
    pf_memmap m;
    pf_diag d = {0};
    pf_memmap_init(&m, segs, 8, arena, sizeof arena);
    uint8_t x[16] = {0};
    pf_memmap_add(&m, 0x1000, x, 16, NULL);
    pf_memmap_add(&m, 0x1008, x, 16, NULL);
    CHECK_EQ(pf_memmap_finish(&m, &d), PF_ERR_OVERLAP);
    CHECK_STR_CONTAINS(d.text, "0x00001008-0x00001017 overlaps data at 0x00001000-0x0000100f");
}

static void test_limits(void)
{
    pf_memmap m;
    pf_diag d = {0};
    uint8_t x[200] = {0};
    pf_memmap_init(&m, segs, 2, arena, 100);
    CHECK_EQ(pf_memmap_add(&m, 0, x, 200, &d), PF_ERR_NOMEM);
    CHECK_STR_CONTAINS(d.text, "100-byte buffer");
    CHECK_EQ(pf_memmap_add(&m, 0xFFFFFFF0u, x, 32, &d), PF_ERR_RANGE);
    CHECK_STR_CONTAINS(d.text, "4 GiB");
    pf_memmap_add(&m, 0, x, 1, NULL);
    pf_memmap_add(&m, 10, x, 1, NULL);
    CHECK_EQ(pf_memmap_add(&m, 20, x, 1, &d), PF_ERR_NOMEM);
    CHECK_STR_CONTAINS(d.text, "more than 2 separate segments");
    CHECK_EQ(pf_memmap_add(NULL, 0, x, 1, NULL), PF_ERR_ARG);
}

static void test_range_check_and_read_fill(void)
{
    pf_memmap m;
    pf_diag d = {0};
    pf_memmap_init(&m, segs, 8, arena, sizeof arena);
    uint8_t x[4] = {0xA, 0xB, 0xC, 0xD};
    pf_memmap_add(&m, 0x10, x, 4, NULL);
    pf_memmap_add(&m, 0x20, x, 4, NULL);
    pf_memmap_finish(&m, NULL);
    CHECK_EQ(pf_memmap_check_range(&m, 0, 0x24, &d), PF_OK);
    CHECK_EQ(pf_memmap_check_range(&m, 0, 0x22, &d), PF_ERR_RANGE);
    CHECK_STR_CONTAINS(d.text, "0x00000020-0x00000023 lies outside flash 0x00000000-0x00000021");
    uint8_t out[24];
    CHECK_EQ(pf_memmap_read(&m, 0x0E, out, sizeof out, 0xFF), 8);
    CHECK_EQ(out[0], 0xFF);
    CHECK_EQ(out[2], 0xA);
    CHECK_EQ(out[6], 0xFF);
    CHECK_EQ(out[18], 0xA);
}

static void test_format(void)
{
    char b[64];
    pf_format(b, sizeof b, "%s %d %u %x %08lx %zu %c %%", "a", -42, 7u, 0xbeefu, 0x1234ul, (size_t)9, 'z');
    CHECK(strcmp(b, "a -42 7 beef 00001234 9 z %") == 0);
    pf_format(b, 6, "%s", "truncated");
    CHECK(strcmp(b, "trunc") == 0);
    pf_diag d;
    CHECK_EQ(pf_diag_set(&d, PF_ERR_FORMAT, "line %u: bad", 17u), PF_ERR_FORMAT);
    pf_diag_prefix(&d, "fw.hex");
    CHECK(strcmp(d.text, "fw.hex: line 17: bad") == 0);
    /* issue 10: a 215-character driver message with the job's prefix fits
     * whole (it stopped at 199); one that cannot fit ends in "..." */
    char longer[PF_DIAG_MAX + 50];
    memset(longer, 'x', sizeof longer - 1);
    longer[sizeof longer - 1] = '\0';
    longer[215] = '\0';
    pf_diag_set(&d, PF_ERR_TARGET, "%s", longer);
    pf_diag_prefix(&d, "write at 0x08002a00");
    CHECK_EQ(strlen(d.text), 215 + 21);
    CHECK(d.text[strlen(d.text) - 1] == 'x');
    longer[215] = 'x';
    pf_diag_set(&d, PF_ERR_TARGET, "%s!", longer);
    CHECK_EQ(strlen(d.text), PF_DIAG_MAX - 1);
    CHECK(strcmp(d.text + PF_DIAG_MAX - 4, "...") == 0);
    pf_diag_set(&d, PF_ERR_TARGET, "%s", "short");
    pf_diag_prefix(&d, longer);
    CHECK(strcmp(d.text + PF_DIAG_MAX - 4, "...") == 0);
    CHECK(strcmp(pf_strerror(PF_ERR_VERIFY), "verify failed") == 0);
    CHECK(strcmp(pf_strerror(-999), "unknown error") == 0);
}

static void test_digests(void)
{
    /* Known answers: CRC-32 and MD5 of "123456789" and of "abc" for SHA-256. */
    CHECK_EQ(pf_crc32(0, (const uint8_t *)"123456789", 9), 0xCBF43926u);
    pf_digest d;
    uint8_t out[32];
    CHECK_EQ(pf_digest_begin(&d, PF_DIGEST_MD5), PF_OK);
    pf_digest_update(&d, (const uint8_t *)"123456789", 9);
    CHECK_EQ(pf_digest_finish(&d, out), 16);
    CHECK(out[0] == 0x25 && out[1] == 0xf9 && out[15] == 0x0b);
    CHECK_EQ(pf_digest_begin(&d, PF_DIGEST_SHA256), PF_OK);
    pf_digest_update(&d, (const uint8_t *)"abc", 3);
    CHECK_EQ(pf_digest_finish(&d, out), 32);
    CHECK(out[0] == 0xba && out[1] == 0x78 && out[31] == 0xad);
}

int main(void)
{
    RUN(test_contiguous_records_join);
    RUN(test_out_of_order_sorted_and_joined);
    RUN(test_overlap_named);
    RUN(test_limits);
    RUN(test_range_check_and_read_fill);
    RUN(test_format);
    RUN(test_digests);
    return pf_test_summary();
}
