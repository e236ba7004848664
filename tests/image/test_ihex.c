/* Intel HEX reader: valid files of every record type and addressing mode,
 * each parsed under several input splits, and malformed files whose errors
 * must name the line and the cause. */
#include "image_test.h"

static uint8_t pat[512];

static void test_simple_contiguous(void)
{
    char f[4096] = "";
    t_ihex_rec(f, 0, 0x0000, pat, 16);
    t_ihex_rec(f, 0, 0x0010, pat + 16, 16);
    t_ihex_rec(f, 0, 0x0020, pat + 32, 3);
    t_ihex_rec(f, 1, 0, NULL, 0);
    const t_result *r = t_parse_str(T_IHEX, f);
    REQUIRE(r->rc == 0);
    CHECK_EQ(r->map.count, 1); /* continuing records join into one segment */
    CHECK_EQ(r->map.segs[0].addr, 0);
    CHECK_EQ(r->map.segs[0].len, 35);
    CHECK(t_map_has(&r->map, 0, pat, 35));
    CHECK_EQ(r->has_start, 0);
}

static void test_extended_linear_multi_segment(void)
{
    char f[4096] = "";
    uint8_t hi[2] = {0x08, 0x00};
    t_ihex_rec(f, 4, 0, hi, 2);
    t_ihex_rec(f, 0, 0x0000, pat, 16);
    t_ihex_rec(f, 0, 0x0100, pat + 16, 8); /* gap: second segment */
    hi[1] = 0x01;
    t_ihex_rec(f, 4, 0, hi, 2);
    t_ihex_rec(f, 0, 0x0000, pat + 24, 4); /* 0x08010000 */
    uint8_t start[4] = {0x08, 0x00, 0x01, 0xC1};
    t_ihex_rec(f, 5, 0, start, 4);
    t_ihex_rec(f, 1, 0, NULL, 0);
    const t_result *r = t_parse_str(T_IHEX, f);
    REQUIRE(r->rc == 0);
    REQUIRE(r->map.count == 3);
    CHECK_EQ(r->map.segs[0].addr, 0x08000000);
    CHECK_EQ(r->map.segs[1].addr, 0x08000100);
    CHECK_EQ(r->map.segs[2].addr, 0x08010000);
    CHECK(t_map_has(&r->map, 0x08000000, pat, 16));
    CHECK(t_map_has(&r->map, 0x08000100, pat + 16, 8));
    CHECK(t_map_has(&r->map, 0x08010000, pat + 24, 4));
    CHECK_EQ(r->has_start, 1);
    CHECK_EQ(r->start_addr, 0x080001C1);
}

static void test_out_of_order_records(void)
{
    char f[4096] = "";
    t_ihex_rec(f, 0, 0x0200, pat + 100, 4);
    t_ihex_rec(f, 0, 0x0100, pat, 4);
    t_ihex_rec(f, 1, 0, NULL, 0);
    const t_result *r = t_parse_str(T_IHEX, f);
    REQUIRE(r->rc == 0);
    REQUIRE(r->map.count == 2);
    CHECK_EQ(r->map.segs[0].addr, 0x100);
    CHECK(t_map_has(&r->map, 0x100, pat, 4));
    CHECK(t_map_has(&r->map, 0x200, pat + 100, 4));
}

static void test_extended_segment_and_wrap(void)
{
    char f[4096] = "";
    uint8_t seg[2] = {0x10, 0x00}; /* segment 0x1000 -> base 0x10000 */
    t_ihex_rec(f, 2, 0, seg, 2);
    t_ihex_rec(f, 0, 0x0100, pat, 4);
    /* 16 bytes from offset 0xFFF8: 8 at 0x1FFF8, then the offset wraps to 0 */
    t_ihex_rec(f, 0, 0xFFF8, pat + 16, 16);
    uint8_t cs_ip[4] = {0x12, 0x34, 0x00, 0x10};
    t_ihex_rec(f, 3, 0, cs_ip, 4);
    t_ihex_rec(f, 1, 0, NULL, 0);
    const t_result *r = t_parse_str(T_IHEX, f);
    REQUIRE(r->rc == 0);
    CHECK(t_map_has(&r->map, 0x1FFF8, pat + 16, 8));
    CHECK(t_map_has(&r->map, 0x10000, pat + 24, 8));
    CHECK(t_map_has(&r->map, 0x10100, pat, 4));
    CHECK_EQ(r->map.count, 3);
    CHECK_EQ(r->has_start, 1);
    CHECK_EQ(r->start_addr, 0x12340 + 0x10);
}

static void test_wrap_overlap_is_reported(void)
{
    /* The wrapped half lands on data written before: an overlap in one file. */
    char f[4096] = "";
    uint8_t seg[2] = {0x10, 0x00};
    t_ihex_rec(f, 2, 0, seg, 2);
    t_ihex_rec(f, 0, 0x0004, pat, 4);
    t_ihex_rec(f, 0, 0xFFF8, pat + 16, 16);
    t_ihex_rec(f, 1, 0, NULL, 0);
    T_EXPECT_ERR(T_IHEX, f, PF_ERR_OVERLAP, "0x00010004", "overlaps");
}

static void test_linear_crosses_64k(void)
{
    char f[4096] = "";
    t_ihex_rec(f, 0, 0xFFF8, pat, 16); /* no 04 record: linear, base 0 */
    t_ihex_rec(f, 1, 0, NULL, 0);
    const t_result *r = t_parse_str(T_IHEX, f);
    REQUIRE(r->rc == 0);
    CHECK_EQ(r->map.count, 1);
    CHECK(t_map_has(&r->map, 0xFFF8, pat, 16));
}

static void test_top_of_address_space(void)
{
    char f[4096] = "";
    uint8_t hi[2] = {0xFF, 0xFF};
    t_ihex_rec(f, 4, 0, hi, 2);
    t_ihex_rec(f, 0, 0xFFF0, pat, 16); /* ends exactly at 4 GiB: fine */
    t_ihex_rec(f, 1, 0, NULL, 0);
    const t_result *r = t_parse_str(T_IHEX, f);
    REQUIRE(r->rc == 0);
    CHECK(t_map_has(&r->map, 0xFFFFFFF0u, pat, 16));

    char g[4096] = "";
    t_ihex_rec(g, 4, 0, hi, 2);
    t_ihex_rec(g, 0, 0xFFF8, pat, 16);
    t_ihex_rec(g, 1, 0, NULL, 0);
    T_EXPECT_ERR(T_IHEX, g, PF_ERR_FORMAT, "line 2:", "16 data bytes at 0xfffffff8", "4 GiB");
}

static void test_line_endings_and_space(void)
{
    /* CRLF, trailing blanks and tabs, blank lines, lower-case digits,
     * white space after the EOF record, and no final newline. */
    char lf[4096] = "";
    t_ihex_rec(lf, 0, 0x1234, pat, 5);
    t_ihex_rec(lf, 0, 0x1239, pat + 5, 7);
    t_ihex_rec(lf, 1, 0, NULL, 0);
    char crlf[8192] = "\r\n\n";
    for (const char *s = lf; *s; s++) {
        size_t k = strlen(crlf);
        if (*s == '\n') {
            strcpy(crlf + k, " \t\r\n\r\n");
        } else {
            crlf[k] = (*s >= 'A' && *s <= 'F') ? (char)(*s + 32) : *s;
            crlf[k + 1] = '\0';
        }
    }
    strcat(crlf, "   \r\n\t\n");
    const t_result *r = t_parse_str(T_IHEX, crlf);
    REQUIRE(r->rc == 0);
    CHECK(t_map_has(&r->map, 0x1234, pat, 12));

    char nofinal[4096];
    strcpy(nofinal, lf);
    nofinal[strlen(nofinal) - 1] = '\0';
    r = t_parse_str(T_IHEX, nofinal);
    CHECK_EQ(r->rc, 0);
    CHECK(t_map_has(&r->map, 0x1234, pat, 12));
}

static void test_full_255_byte_record(void)
{
    char f[4096] = "";
    t_ihex_rec(f, 0, 0x4000, pat, 255);
    t_ihex_rec(f, 1, 0, NULL, 0);
    const t_result *r = t_parse_str(T_IHEX, f);
    REQUIRE(r->rc == 0);
    CHECK(t_map_has(&r->map, 0x4000, pat, 255));
}

static void test_errors(void)
{
    /* ":0300300002337A1E" is a well-formed record; each case below damages
     * one thing in it or around it. */
    CHECK_EQ(t_parse_str(T_IHEX, ":0300300002337A1E\n:00000001FF\n")->rc, 0);
    T_EXPECT_ERR(T_IHEX, ":0300300002337A1E\n:0300300002337A1F\n:00000001FF\n", PF_ERR_FORMAT,
                 "line 2: bad checksum 0x1F, expected 0x1E");
    T_EXPECT_ERR(T_IHEX, "\n\n:0300300002337A1E\n:00000001FE\n", PF_ERR_FORMAT,
                 "line 4: bad checksum 0xFE, expected 0xFF");
    T_EXPECT_ERR(T_IHEX, ":0300300002337A1E\n:00000006FA\n", PF_ERR_FORMAT, "line 2: record type 06 unknown");
    T_EXPECT_ERR(T_IHEX, ":000000FF01\n", PF_ERR_FORMAT, "line 1: record type FF unknown");
    T_EXPECT_ERR(T_IHEX, ":00000001FF\n:0300300002337A1\n", PF_ERR_FORMAT, "data after end-of-file record on line 2");
    T_EXPECT_ERR(T_IHEX, ":0300300002337A1E0\n:00000001FF\n", PF_ERR_FORMAT, "line 1: odd number of hex digits");
    T_EXPECT_ERR(T_IHEX, ":1000300002337A1E\n:00000001FF\n", PF_ERR_FORMAT,
                 "line 1: byte count 16 does not match line length (3 data bytes)");
    T_EXPECT_ERR(T_IHEX, ":0200300002337A1E\n", PF_ERR_FORMAT, "line 1: byte count 2 does not match");
    T_EXPECT_ERR(T_IHEX, ":0300300002G37A1E\n", PF_ERR_FORMAT, "line 1: invalid character 'G' in column 12");
    T_EXPECT_ERR(T_IHEX, ":00000001FF\n\n:00000001FF\n", PF_ERR_FORMAT, "data after end-of-file record on line 3");
    T_EXPECT_ERR(T_IHEX, ":00000001FF\nx", PF_ERR_FORMAT, "data after end-of-file record on line 2");
    T_EXPECT_ERR(T_IHEX, ":0300300002337A1E\n", PF_ERR_FORMAT, "missing end-of-file record");
    T_EXPECT_ERR(T_IHEX, "", PF_ERR_FORMAT, "missing end-of-file record");
    T_EXPECT_ERR(T_IHEX, "\r\n \n", PF_ERR_FORMAT, "missing end-of-file record");
    T_EXPECT_ERR(T_IHEX, "0300300002337A1E\n", PF_ERR_FORMAT, "line 1: record does not start with ':' (found '0')");
    T_EXPECT_ERR(T_IHEX, "\n  :0300300002337A1E\n", PF_ERR_FORMAT,
                 "line 2: record does not start with ':' (found byte 0x20)");
    T_EXPECT_ERR(T_IHEX, "\x7f" "ELF\x01\x01", PF_ERR_FORMAT, "line 1: record does not start with ':' (found byte 0x7F)");
    T_EXPECT_ERR(T_IHEX, ":00000001\n", PF_ERR_FORMAT, "line 1: record too short (4 bytes");
    T_EXPECT_ERR(T_IHEX, ":\n", PF_ERR_FORMAT, "line 1: record too short (0 bytes");
    T_EXPECT_ERR(T_IHEX, ":01000001AA54\n", PF_ERR_FORMAT,
                 "line 1: end-of-file record (type 01) has 1 data bytes, expected 0");
    T_EXPECT_ERR(T_IHEX, ":030000021234565F\n", PF_ERR_FORMAT,
                 "line 1: extended segment address record (type 02) has 3 data bytes, expected 2");
    T_EXPECT_ERR(T_IHEX, ":0100000408F3\n", PF_ERR_FORMAT,
                 "line 1: extended linear address record (type 04) has 1 data bytes, expected 2");
    T_EXPECT_ERR(T_IHEX, ":020000050800F1\n", PF_ERR_FORMAT, "line 1: start linear address record (type 05) has 2");
    T_EXPECT_ERR(T_IHEX, ":020000030800F3\n", PF_ERR_FORMAT, "line 1: start segment address record (type 03) has 2");
    /* CR alone is not a line end: the two records become one bad line. */
    T_EXPECT_ERR(T_IHEX, ":0300300002337A1E\r:00000001FF\r", PF_ERR_FORMAT,
                 "line 1: invalid character byte 0x0D in column 18");
    static const char nul[] = ":03003000\0002337A1E\n:00000001FF\n";
    const t_result *r = t_parse(T_IHEX, nul, sizeof nul - 1);
    CHECK_EQ(r->rc, PF_ERR_FORMAT);
    CHECK_STR_CONTAINS(r->diag, "line 1: invalid character byte 0x00 in column 10");
    T_EXPECT_ERR(T_IHEX, ":0300300002337A1E;comment\n", PF_ERR_FORMAT, "line 1: invalid character ';'");

    char longline[1200] = ":";
    memset(longline + 1, '0', 1000);
    longline[1001] = '\n';
    longline[1002] = '\0';
    T_EXPECT_ERR(T_IHEX, longline, PF_ERR_FORMAT, "line 1: longer than 600 characters");
    /* Trailing white space counts against the line limit too, but a long
     * run of blank lines is fine. */
    char blanks[3000];
    memset(blanks, '\n', 2000);
    strcpy(blanks + 2000, ":00000001FF\n");
    CHECK_EQ(t_parse_str(T_IHEX, blanks)->rc, 0);
    char late[3000];
    memset(late, '\n', 2000);
    strcpy(late + 2000, ":00000001FE\n");
    T_EXPECT_ERR(T_IHEX, late, PF_ERR_FORMAT, "line 2001: bad checksum 0xFE, expected 0xFF");
}

/* The sink's own failure stops the parser with the line named. */
static void test_sink_errors(void)
{
    char f[4096] = "";
    t_ihex_rec(f, 0, 0x0000, pat, 16);
    t_ihex_rec(f, 0, 0x0100, pat, 16);
    t_ihex_rec(f, 0, 0x0200, pat, 16);
    t_ihex_rec(f, 1, 0, NULL, 0);

    pf_segment segs[2];
    uint8_t arena[64];
    pf_memmap map;
    pf_diag d = {0};
    pf_memmap_init(&map, segs, 2, arena, sizeof arena);
    pf_memmap_dest dest = {&map, &d};
    pf_ihex p;
    pf_ihex_init(&p, pf_memmap_dest_sink, &dest, &d);
    int rc = pf_ihex_feed(&p, (const uint8_t *)f, strlen(f));
    CHECK_EQ(rc, PF_ERR_NOMEM);
    CHECK_STR_CONTAINS(d.text, "line 3: ");
    CHECK_STR_CONTAINS(d.text, "more than 2 separate segments");
    CHECK_EQ(pf_ihex_finish(&p), PF_ERR_NOMEM);

    /* The plain pf_memmap_sink has no diag of its own: the reader says what failed. */
    pf_memmap_init(&map, segs, 2, arena, 20);
    pf_ihex_init(&p, pf_memmap_sink, &map, &d);
    rc = pf_ihex_feed(&p, (const uint8_t *)f, strlen(f));
    CHECK_EQ(rc, PF_ERR_NOMEM);
    CHECK_STR_CONTAINS(d.text, "line 2: cannot store 16 bytes at 0x00000100");

    /* NULL diag is allowed everywhere. */
    pf_ihex_init(&p, pf_memmap_sink, &map, NULL);
    CHECK_EQ(pf_ihex_feed(&p, (const uint8_t *)":0G\n", 4), PF_ERR_FORMAT);
    CHECK_EQ(pf_ihex_feed(NULL, (const uint8_t *)"x", 1), PF_ERR_ARG);
    CHECK_EQ(pf_ihex_feed(&p, NULL, 1), PF_ERR_ARG);
}

int main(void)
{
    for (int i = 0; i < (int)sizeof pat; i++)
        pat[i] = (uint8_t)(i * 37 + 11);
    RUN(test_simple_contiguous);
    RUN(test_extended_linear_multi_segment);
    RUN(test_out_of_order_records);
    RUN(test_extended_segment_and_wrap);
    RUN(test_wrap_overlap_is_reported);
    RUN(test_linear_crosses_64k);
    RUN(test_top_of_address_space);
    RUN(test_line_endings_and_space);
    RUN(test_full_255_byte_record);
    RUN(test_errors);
    RUN(test_sink_errors);
    free(t_res.arena);
    free(t_scratch.arena);
    return pf_test_summary();
}
