/* Raw binary reader and format detection. */
#include "image_test.h"

static void test_bin(void)
{
    uint8_t data[1000];
    for (size_t i = 0; i < sizeof data; i++)
        data[i] = (uint8_t)(i ^ (i >> 3));
    static const unsigned modes[] = {0, 1, 5, 99};
    t_result whole;
    memset(&whole, 0, sizeof whole);
    t_run(T_BIN, data, sizeof data, 0, 0x08000000, &whole);
    REQUIRE(whole.rc == 0);
    CHECK_EQ(whole.map.count, 1);
    CHECK(t_map_has(&whole.map, 0x08000000, data, sizeof data));
    for (size_t m = 0; m < 4; m++) {
        t_run(T_BIN, data, sizeof data, modes[m], 0x08000000, &t_scratch);
        CHECK_EQ(t_scratch.rc, 0);
        CHECK(t_same_map(&whole.map, &t_scratch.map));
    }
    free(whole.arena);

    /* Exactly up to 4 GiB is fine; one byte more names the offset. */
    t_run(T_BIN, data, 16, 0, 0xFFFFFFF0u, &t_scratch);
    CHECK_EQ(t_scratch.rc, 0);
    CHECK(t_map_has(&t_scratch.map, 0xFFFFFFF0u, data, 16));
    for (size_t m = 0; m < 4; m++) {
        t_run(T_BIN, data, 17, modes[m], 0xFFFFFFF0u, &t_scratch);
        CHECK_EQ(t_scratch.rc, PF_ERR_FORMAT);
        CHECK_STR_CONTAINS(t_scratch.diag, "offset 0x10: data loaded at 0xfffffff0 runs past the 4 GiB address space");
    }
    /* Empty input. */
    t_run(T_BIN, data, 0, 0, 0x1000, &t_scratch);
    CHECK_EQ(t_scratch.rc, PF_ERR_FORMAT);
    CHECK_STR_CONTAINS(t_scratch.diag, "empty");

    /* A full arena: the map's explanation with the file offset. */
    pf_segment segs[1];
    uint8_t arena[100];
    pf_memmap map;
    pf_diag d = {0};
    pf_memmap_init(&map, segs, 1, arena, sizeof arena);
    pf_memmap_dest dest = {&map, &d};
    pf_bin b;
    pf_bin_init(&b, 0x2000, pf_memmap_dest_sink, &dest, &d);
    CHECK_EQ(pf_bin_feed(&b, data, 64), 0);
    CHECK_EQ(pf_bin_feed(&b, data, 64), PF_ERR_NOMEM);
    CHECK_STR_CONTAINS(d.text, "offset 0x40: image larger than the 100-byte buffer");
    CHECK_EQ(pf_bin_feed(&b, data, 1), PF_ERR_NOMEM); /* sticky */
    CHECK_EQ(pf_bin_finish(&b), PF_ERR_NOMEM);
}

static void test_detect(void)
{
    static const uint8_t elf[] = {0x7F, 'E', 'L', 'F', 1, 1, 1, 0};
    static const uint8_t mcuboot[] = {0x3D, 0xB8, 0xF3, 0x96, 0, 0, 0, 0, 0x20, 0};
    /* A plausible ESP32 app header: 3 segments, DIO, 4 MB / 40 MHz, entry 0x40080000 */
    static const uint8_t esp[] = {0xE9, 0x03, 0x02, 0x20, 0x00, 0x00, 0x08, 0x40, 0xEE, 0, 0, 0};
    /* 0xE9 then nonsense (an x86 jump, say) */
    static const uint8_t e9_junk[] = {0xE9, 0x00, 0x10, 0xFF, 0x12, 0x34, 0x56, 0x78};
    static const uint8_t arm_bin[] = {0x00, 0x50, 0x00, 0x20, 0xC1, 0x01, 0x00, 0x08};
#define D(buf, n, name) pf_image_detect((const uint8_t *)(buf), (n), (name))
#define DS(str, name) D(str, strlen(str), name)
    CHECK_EQ(D(elf, sizeof elf, NULL), PF_IMAGE_ELF);
    CHECK_EQ(D(elf, sizeof elf, "fw.bin"), PF_IMAGE_ELF);
    CHECK_EQ(D(elf, 3, NULL), PF_IMAGE_BIN); /* too short to be sure */
    CHECK_EQ(D(mcuboot, sizeof mcuboot, "signed.bin"), PF_IMAGE_MCUBOOT);
    CHECK_EQ(D(esp, sizeof esp, NULL), PF_IMAGE_ESP);
    CHECK_EQ(D(esp, sizeof esp, "app.elf.bin"), PF_IMAGE_ESP);
    CHECK_EQ(D(e9_junk, sizeof e9_junk, NULL), PF_IMAGE_BIN);
    CHECK_EQ(D(e9_junk, sizeof e9_junk, "firmware.img"), PF_IMAGE_ESP);
    CHECK_EQ(D(e9_junk, sizeof e9_junk, "x.BIN"), PF_IMAGE_ESP);
    CHECK_EQ(D(e9_junk, sizeof e9_junk, "x.dat"), PF_IMAGE_BIN);
    CHECK_EQ(D(arm_bin, sizeof arm_bin, "fw.bin"), PF_IMAGE_BIN);
    CHECK_EQ(D(arm_bin, 0, "fw.bin"), PF_IMAGE_UNKNOWN);
    CHECK_EQ(D(NULL, 0, NULL), PF_IMAGE_UNKNOWN);

    CHECK_EQ(DS(":100000000C9434000C9446000C9446000C9446006A\n:00000001FF\n", NULL), PF_IMAGE_IHEX);
    CHECK_EQ(DS("\r\n\r\n:100000000C9434000C9446000C9446000C9446006A\r\n", "a.bin"), PF_IMAGE_IHEX);
    CHECK_EQ(DS(":00000001FF", NULL), PF_IMAGE_IHEX);
    CHECK_EQ(DS(":1000000", NULL), PF_IMAGE_IHEX);     /* head ends early: text, weak */
    CHECK_EQ(DS(":1000000", "x.bin"), PF_IMAGE_BIN);   /* ... and the .bin name wins */
    CHECK_EQ(DS(":10000G00C943\n", NULL), PF_IMAGE_IHEX); /* broken text: the HEX reader will name the line */
    CHECK_EQ(DS(":10000G00C943\n", "x.bin"), PF_IMAGE_BIN);
    CHECK_EQ(DS("S00F000068656C6C6F202020202000003C\nS9030000FC\n", NULL), PF_IMAGE_SREC);
    CHECK_EQ(DS("S9030000FC", "fw.bin"), PF_IMAGE_SREC);
    CHECK_EQ(DS("S1130000zz\n", NULL), PF_IMAGE_SREC);
    CHECK_EQ(DS("Some text\n", NULL), PF_IMAGE_BIN);
    CHECK_EQ(DS("hello\n", NULL), PF_IMAGE_BIN);
    /* Starts like HEX but contains binary: not text. */
    static const uint8_t colon_bin[] = {':', '1', 0x00, 0xFF, 0x80, '\n'};
    CHECK_EQ(D(colon_bin, sizeof colon_bin, NULL), PF_IMAGE_BIN);

    CHECK(!strcmp(pf_image_format_name(PF_IMAGE_IHEX), "Intel HEX"));
    CHECK(!strcmp(pf_image_format_name(PF_IMAGE_SREC), "Motorola S-record"));
    CHECK(!strcmp(pf_image_format_name(PF_IMAGE_BIN), "raw binary"));
    CHECK(!strcmp(pf_image_format_name(PF_IMAGE_ELF), "ELF"));
    CHECK(!strcmp(pf_image_format_name(PF_IMAGE_ESP), "ESP app image"));
    CHECK(!strcmp(pf_image_format_name(PF_IMAGE_MCUBOOT), "MCUboot image"));
    CHECK(!strcmp(pf_image_format_name((pf_image_format)99), "unknown"));
}

int main(void)
{
    RUN(test_bin);
    RUN(test_detect);
    free(t_res.arena);
    free(t_scratch.arena);
    return pf_test_summary();
}
