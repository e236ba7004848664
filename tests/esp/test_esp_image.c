/* ESP app image reader: images built here by our own writer, then damaged
 * one way at a time; every damage is an error that names the offset. */
#include <stdlib.h>
#include <string.h>

#include "esp_image_build.h"
#include "peerflash/pf_esp_image.h"
#include "pf_test.h"

static uint8_t code[5000], rodata[776], img[8192];

static size_t build(uint16_t chip_id, int hash)
{
    uint32_t x = 2463534242u;
    for (size_t i = 0; i < sizeof code; i++) {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        code[i] = (uint8_t)x;
    }
    for (size_t i = 0; i < sizeof rodata; i++)
        rodata[i] = (uint8_t)(i ^ 0x5A);
    esp_test_seg s[2] = {{0x3F400020u, rodata, sizeof rodata}, {0x400D0020u, code, sizeof code}};
    return esp_image_build(img, sizeof img, chip_id, hash, s, 2, 0x400D1234u);
}

static void test_valid(void)
{
    pf_diag d = {0};
    pf_esp_image_info info;
    size_t n = build(0, 1);
    REQUIRE(n > 0);
    CHECK_EQ(n % 16, 0); /* header..checksum is a multiple of 16, then 32 bytes of hash */
    CHECK_EQ(pf_esp_image_parse(img, n, NULL, &info, &d), 0);
    CHECK_EQ(info.segments, 2);
    CHECK_EQ(info.chip_id, 0);
    CHECK_EQ(info.hash_appended, 1);
    CHECK_EQ(info.entry, 0x400D1234u);
    CHECK_EQ(info.length, n);
    CHECK_EQ(info.seg_addr[1], 0x400D0020u);
    CHECK_EQ(info.seg_len[1], sizeof code);
    CHECK_EQ(pf_esp_image_check_chip(&info, pf_esp_chip_by_name("esp32"), &d), 0);
    /* trailing bytes after the image (a padded file) are accepted */
    CHECK_EQ(pf_esp_image_parse(img, n + 100 < sizeof img ? n + 100 : n, pf_esp_chip_by_name("esp32"), &info, &d), 0);
    /* S3 image, no hash */
    n = build(9, 0);
    CHECK_EQ(pf_esp_image_parse(img, n, NULL, &info, &d), 0);
    CHECK_EQ(info.chip_id, 9);
    CHECK_EQ(info.hash_appended, 0);
    CHECK_EQ(info.length, n);
    /* ESP8266 layout, guessed and told */
    n = build(0xFFFF, 0);
    CHECK_EQ(pf_esp_image_parse(img, n, NULL, &info, &d), 0);
    CHECK_EQ(info.extended, 0);
    CHECK_EQ(pf_esp_image_parse(img, n, pf_esp_chip_by_name("esp8266"), &info, &d), 0);
}

static void test_wrong_chip(void)
{
    pf_diag d = {0};
    pf_esp_image_info info;
    size_t n = build(9, 1); /* ESP32-S3 */
    REQUIRE(pf_esp_image_parse(img, n, NULL, &info, &d) == 0);
    CHECK_EQ(pf_esp_image_check_chip(&info, pf_esp_chip_by_name("esp32"), &d), PF_ERR_CHIP);
    CHECK_STR_CONTAINS(d.text, "ESP32-S3");
    CHECK_STR_CONTAINS(d.text, "target is an ESP32");
}

/* The reader form (pf_esp_image_parse_read): the image read 64 bytes at
 * most at a time, as an MCU reads its SD card; fail_at makes the read that
 * touches that offset fail. */
typedef struct reader {
    size_t size, fail_at;
    uint32_t reads, largest;
} reader;

static int read_img(void *ctx, uint32_t off, uint8_t *dst, uint32_t n)
{
    reader *r = ctx;
    r->reads++;
    if (n > r->largest)
        r->largest = n;
    if (off + n > r->size)
        return PF_ERR_RANGE;
    if (r->fail_at >= off && r->fail_at < off + n)
        return PF_ERR_IO;
    memcpy(dst, img + off, n);
    return PF_OK;
}

static void expect_bad(size_t n, int err, const char *what)
{
    pf_diag d = {0}, d2 = {0};
    pf_esp_image_info info;
    int r = pf_esp_image_parse(img, n, NULL, &info, &d);
    CHECK_EQ(r, err);
    CHECK_STR_CONTAINS(d.text, what);
    /* the reader form says the same */
    reader rd = {n, (size_t)-1, 0, 0};
    CHECK_EQ(pf_esp_image_parse_read(read_img, &rd, n, NULL, &info, &d2), err);
    CHECK(strcmp(d2.text, d.text) == 0);
}

static void test_reader(void)
{
    pf_diag d = {0};
    pf_esp_image_info a, b;
    size_t n = build(0, 1);
    REQUIRE(pf_esp_image_parse(img, n, NULL, &a, &d) == 0);
    reader rd = {n, (size_t)-1, 0, 0};
    CHECK_EQ(pf_esp_image_parse_read(read_img, &rd, n, pf_esp_chip_by_name("esp32"), &b, &d), 0);
    CHECK(memcmp(&a, &b, sizeof a) == 0);
    CHECK(rd.largest <= 64);
    CHECK(rd.reads > n / 64); /* the checksum and the hash each read it all */
    /* a read that fails (the card): its code, nothing else tried */
    for (size_t at = 0; at < n; at += 997) {
        reader bad = {n, at, 0, 0};
        pf_diag d2 = {0};
        CHECK_EQ(pf_esp_image_parse_read(read_img, &bad, n, NULL, &b, &d2), PF_ERR_IO);
    }
    CHECK_EQ(pf_esp_image_parse_read(NULL, &rd, n, NULL, &b, &d), PF_ERR_ARG);
}

static void test_damage(void)
{
    size_t n = build(0, 1);
    img[0] = 0xE8;
    expect_bad(n, PF_ERR_FORMAT, "magic 0xe8");
    n = build(0, 1);
    img[1] = 0;
    expect_bad(n, PF_ERR_FORMAT, "0 segments");
    n = build(0, 1);
    img[24 + 4 + 2] = 0x10; /* first segment length += 1 MiB */
    expect_bad(n, PF_ERR_FORMAT, "claims");
    n = build(0, 1);
    img[24 + 8 + 100] ^= 0x01; /* one bit in a segment: checksum (and hash) wrong */
    expect_bad(n, PF_ERR_FORMAT, "checksum");
    n = build(0, 1);
    img[n - 33] ^= 0xFF; /* the checksum byte itself */
    expect_bad(n, PF_ERR_FORMAT, "checksum");
    n = build(0, 1);
    img[n - 1] ^= 0x80; /* the hash */
    expect_bad(n, PF_ERR_AUTH, "SHA-256");
    n = build(0, 1);
    expect_bad(n - 10, PF_ERR_FORMAT, "cut off");
    expect_bad(20, PF_ERR_FORMAT, "");
    n = build(0, 0);
    expect_bad(n - 1, PF_ERR_FORMAT, "before the checksum");
}

/* Random single-byte damage anywhere in the image proper never passes. */
static void test_random_flips(void)
{
    size_t n = build(5, 1);
    uint32_t x = 12345;
    int passed = 0;
    for (int t = 0; t < 500; t++) {
        x = x * 1103515245u + 12345u;
        size_t pos = (x >> 8) % n;
        uint8_t flip = (uint8_t)(1u << ((x >> 4) & 7));
        /* bytes whose value the format leaves free: entry, flash params,
         * wp pin, drive strengths, revisions */
        if (pos == 2 || pos == 3 || (pos >= 4 && pos < 8) || (pos >= 8 && pos < 12) || (pos >= 14 && pos < 19))
            continue;
        img[pos] ^= flip;
        pf_diag d = {0};
        pf_esp_image_info info;
        if (pf_esp_image_parse(img, n, NULL, &info, &d) == 0)
            passed++;
        img[pos] ^= flip;
    }
    CHECK_EQ(passed, 0);
}

/* --write DIR: our images for the esptool-js cross-check;
 * --check FILE CHIP_ID: parse a file another producer wrote. */
static int tool(int argc, char **argv)
{
    if (argc == 3 && !strcmp(argv[1], "--write")) {
        char path[512];
        static const struct { const char *name; uint16_t id; } out[] = {{"ours-esp32.bin", 0}, {"ours-esp32s3.bin", 9}};
        for (int i = 0; i < 2; i++) {
            size_t n = build(out[i].id, 1);
            snprintf(path, sizeof path, "%s/%s", argv[2], out[i].name);
            FILE *f = fopen(path, "wb");
            if (!f || fwrite(img, 1, n, f) != n || fclose(f) != 0)
                return 1;
        }
        return 0;
    }
    if (argc == 4 && !strcmp(argv[1], "--check")) {
        static uint8_t file[1 << 20];
        FILE *f = fopen(argv[2], "rb");
        if (!f)
            return 1;
        size_t n = fread(file, 1, sizeof file, f);
        fclose(f);
        pf_diag d = {0};
        pf_esp_image_info info;
        int r = pf_esp_image_parse(file, n, NULL, &info, &d);
        printf("%s: %s (%u segments, chip id %u, hash %d, %lu of %zu bytes)\n", argv[2], r ? d.text : "valid",
               info.segments, info.chip_id, info.hash_appended, (unsigned long)info.length, n);
        size_t tail = r == 0 ? info.length : n;
        while (tail < n && file[tail] == 0) /* a producer's zero-filled buffer */
            tail++;
        return r == 0 && info.chip_id == (unsigned)atoi(argv[3]) && tail == n ? 0 : 1;
    }
    fprintf(stderr, "usage: test_esp_image [--write DIR | --check FILE CHIP_ID]\n");
    return 2;
}

int main(int argc, char **argv)
{
    if (argc > 1)
        return tool(argc, argv);
    RUN(test_valid);
    RUN(test_wrong_chip);
    RUN(test_damage);
    RUN(test_reader);
    RUN(test_random_flips);
    return pf_test_summary();
}
