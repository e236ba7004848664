/* Motorola S-record reader: S0-S9 under several input splits, counts in
 * S5/S6 checked, and malformed files whose errors name line and cause. */
#include "image_test.h"

static uint8_t pat[512];

static void test_s1_s5_s9(void)
{
    char f[4096] = "";
    t_srec_rec(f, 0, 2, 0, (const uint8_t *)"hello", 5);
    t_srec_rec(f, 1, 2, 0x7AF0, pat, 16);
    t_srec_rec(f, 1, 2, 0x7B00, pat + 16, 16);
    t_srec_rec(f, 5, 2, 2, NULL, 0);
    t_srec_rec(f, 9, 2, 0x7AF0, NULL, 0);
    const t_result *r = t_parse_str(T_SREC, f);
    REQUIRE(r->rc == 0);
    CHECK_EQ(r->map.count, 1);
    CHECK(t_map_has(&r->map, 0x7AF0, pat, 32));
    CHECK_EQ(r->has_start, 1);
    CHECK_EQ(r->start_addr, 0x7AF0);
    /* A known-good record from the format's documentation. */
    CHECK_EQ(t_parse_str(T_SREC, "S00F000068656C6C6F202020202000003C\nS1137AF00A0A0D0000000000000000000000000061\n"
                                 "S9030000FC\n")
                 ->rc,
             0);
}

static void test_s2_s8_and_s3_s7_multi_segment(void)
{
    char f[4096] = "";
    t_srec_rec(f, 2, 3, 0x123456, pat, 10);
    t_srec_rec(f, 2, 3, 0x200000, pat + 10, 20);
    t_srec_rec(f, 8, 3, 0x123456, NULL, 0);
    const t_result *r = t_parse_str(T_SREC, f);
    REQUIRE(r->rc == 0);
    REQUIRE(r->map.count == 2);
    CHECK(t_map_has(&r->map, 0x123456, pat, 10));
    CHECK(t_map_has(&r->map, 0x200000, pat + 10, 20));
    CHECK_EQ(r->start_addr, 0x123456);

    char g[8192] = "";
    t_srec_rec(g, 0, 2, 0, NULL, 0);
    t_srec_rec(g, 3, 4, 0x08000000, pat, 32);
    t_srec_rec(g, 3, 4, 0x08000020, pat + 32, 32);
    t_srec_rec(g, 3, 4, 0x20000000, pat + 64, 250); /* 255 = count maximum: 4 + 250 + 1 */
    t_srec_rec(g, 3, 4, 0xFFFFFFF0u, pat, 16);      /* ends exactly at 4 GiB */
    t_srec_rec(g, 7, 4, 0x08000101, NULL, 0);
    r = t_parse_str(T_SREC, g);
    REQUIRE(r->rc == 0);
    REQUIRE(r->map.count == 3);
    CHECK(t_map_has(&r->map, 0x08000000, pat, 64));
    CHECK(t_map_has(&r->map, 0x20000000, pat + 64, 250));
    CHECK(t_map_has(&r->map, 0xFFFFFFF0u, pat, 16));
    CHECK_EQ(r->start_addr, 0x08000101);
}

static void test_s6_count_and_crlf(void)
{
    char f[4096] = "";
    t_srec_rec(f, 1, 2, 0x0000, pat, 4);
    t_srec_rec(f, 1, 2, 0x0004, pat + 4, 4);
    t_srec_rec(f, 1, 2, 0x0008, pat + 8, 4);
    t_srec_rec(f, 6, 3, 3, NULL, 0);
    t_srec_rec(f, 9, 2, 0, NULL, 0);
    char crlf[8192] = "\r\n";
    for (const char *s = f; *s; s++) {
        size_t k = strlen(crlf);
        if (*s == '\n')
            strcpy(crlf + k, "  \r\n");
        else {
            crlf[k] = (*s >= 'A' && *s <= 'F') ? (char)(*s + 32) : *s;
            crlf[k + 1] = '\0';
        }
    }
    crlf[strlen(crlf) - 2] = '\0'; /* no line end after the last record */
    const t_result *r = t_parse_str(T_SREC, crlf);
    REQUIRE(r->rc == 0);
    CHECK(t_map_has(&r->map, 0, pat, 12));
}

static void test_errors(void)
{
    char f[4096] = "", msg[200];
    t_srec_rec(f, 1, 2, 0x1000, pat, 8);
    /* corrupt the checksum of line 2 */
    char g[4096] = "S0030000FC\n";
    strcat(g, f);
    size_t k = strlen(g) - 3;
    unsigned right = (unsigned)strtoul(g + k, NULL, 16);
    unsigned wrong = (right + 1) & 0xFF;
    char hex[3];
    snprintf(hex, sizeof hex, "%02X", wrong);
    g[k] = hex[0];
    g[k + 1] = hex[1];
    strcat(g, "S9030000FC\n");
    snprintf(msg, sizeof msg, "line 2: bad checksum 0x%02X, expected 0x%02X", wrong, right);
    T_EXPECT_ERR(T_SREC, g, PF_ERR_FORMAT, msg);
    T_EXPECT_ERR(T_SREC, "S1137AF00A0A0D0000000000000000000000000062\n", PF_ERR_FORMAT,
                 "line 1: bad checksum 0x62, expected 0x61");

    T_EXPECT_ERR(T_SREC, "S0030000FC\nS4030000FC\n", PF_ERR_FORMAT, "line 2: record type S4 (reserved) unknown");
    T_EXPECT_ERR(T_SREC, "SX030000FC\n", PF_ERR_FORMAT, "line 1: record type S'X' unknown");
    T_EXPECT_ERR(T_SREC, "S\n", PF_ERR_FORMAT, "line 1: record too short (no record type");
    T_EXPECT_ERR(T_SREC, "S9\n", PF_ERR_FORMAT, "line 1: record too short (0 bytes");
    T_EXPECT_ERR(T_SREC, "S9030000FC0\n", PF_ERR_FORMAT, "line 1: odd number of hex digits");
    T_EXPECT_ERR(T_SREC, "S1137AF00A0A0D00000000000000000000000061\n", PF_ERR_FORMAT,
                 "line 1: byte count 19 does not match line length (18 bytes follow it)");
    T_EXPECT_ERR(T_SREC, "S1020000\n", PF_ERR_FORMAT,
                 "line 1: byte count 2 too small for an S1 record (2 address bytes and a checksum)");
    T_EXPECT_ERR(T_SREC, "S1137AF00A0A0D000000000000Z0000000000061\n", PF_ERR_FORMAT,
                 "line 1: invalid character 'Z' in column 27");
    T_EXPECT_ERR(T_SREC, "s9030000FC\n", PF_ERR_FORMAT, "line 1: record does not start with 'S' (found 's')");
    T_EXPECT_ERR(T_SREC, ":00000001FF\n", PF_ERR_FORMAT, "line 1: record does not start with 'S' (found ':')");
    T_EXPECT_ERR(T_SREC, "S0030000FC\n", PF_ERR_FORMAT, "missing end record (S7, S8 or S9)");
    T_EXPECT_ERR(T_SREC, "S9030000FC\nS9030000FC\n", PF_ERR_FORMAT, "data after end record (S9) on line 2");
    T_EXPECT_ERR(T_SREC, "S9030000FC\n\n \r\nS", PF_ERR_FORMAT, "data after end record (S9) on line 4");

    /* S5 / S6 counts must match the data records before them. */
    char h[4096] = "";
    t_srec_rec(h, 1, 2, 0x0000, pat, 4);
    t_srec_rec(h, 1, 2, 0x0004, pat, 4);
    t_srec_rec(h, 5, 2, 3, NULL, 0);
    t_srec_rec(h, 9, 2, 0, NULL, 0);
    T_EXPECT_ERR(T_SREC, h, PF_ERR_FORMAT, "line 3: S5 record count 3 does not match the 2 data records before it");
    char i6[4096] = "";
    t_srec_rec(i6, 3, 4, 0x0000, pat, 4);
    t_srec_rec(i6, 6, 3, 0x010001, NULL, 0);
    t_srec_rec(i6, 9, 2, 0, NULL, 0);
    T_EXPECT_ERR(T_SREC, i6, PF_ERR_FORMAT, "line 2: S6 record count 65537 does not match the 1 data records");
    char j[4096] = "";
    t_srec_rec(j, 5, 2, 0, pat, 1);
    T_EXPECT_ERR(T_SREC, j, PF_ERR_FORMAT, "line 1: S5 count record has 1 bytes after the count, expected none");
    char e[4096] = "";
    t_srec_rec(e, 9, 2, 0, pat, 2);
    T_EXPECT_ERR(T_SREC, e, PF_ERR_FORMAT, "line 1: S9 end record has 2 bytes after the start address");

    /* Past 4 GiB. */
    char top[4096] = "";
    t_srec_rec(top, 3, 4, 0xFFFFFFF8u, pat, 9);
    t_srec_rec(top, 7, 4, 0, NULL, 0);
    T_EXPECT_ERR(T_SREC, top, PF_ERR_FORMAT, "line 1: 9 data bytes at 0xfffffff8 run past the 4 GiB address space");

    /* Two records on the same address: an overlap within one file. */
    char ov[4096] = "";
    t_srec_rec(ov, 1, 2, 0x0100, pat, 8);
    t_srec_rec(ov, 1, 2, 0x0104, pat, 8);
    t_srec_rec(ov, 9, 2, 0, NULL, 0);
    T_EXPECT_ERR(T_SREC, ov, PF_ERR_OVERLAP, "overlaps");

    char longline[1200] = "S1";
    memset(longline + 2, 'F', 800);
    strcpy(longline + 802, "\n");
    T_EXPECT_ERR(T_SREC, longline, PF_ERR_FORMAT, "line 1: longer than 600 characters");
}

int main(void)
{
    for (int i = 0; i < (int)sizeof pat; i++)
        pat[i] = (uint8_t)(i * 53 + 7);
    RUN(test_s1_s5_s9);
    RUN(test_s2_s8_and_s3_s7_multi_segment);
    RUN(test_s6_count_and_crlf);
    RUN(test_errors);
    free(t_res.arena);
    free(t_scratch.arena);
    return pf_test_summary();
}
