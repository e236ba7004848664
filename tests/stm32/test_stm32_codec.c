/* AN3155 framing and the STM32 CRC, byte for byte. */
#include "codec/an3155.h"
#include "peerflash/pf_digest.h"
#include "peerflash/pf_stm32.h"
#include "pf_test.h"

static void test_frames(void)
{
    uint8_t b[600];
    CHECK_EQ(pf_an3155_cmd(b, PF_AN3155_WRITE), 2);
    CHECK_EQ(b[0], 0x31);
    CHECK_EQ(b[1], 0xCE);
    CHECK(pf_an3155_cmd_ok(b));
    b[1] ^= 1;
    CHECK(!pf_an3155_cmd_ok(b));
    CHECK_EQ(pf_an3155_u32(b, 0x08004000), 5);
    CHECK_EQ(b[0], 0x08);
    CHECK_EQ(b[1], 0x00);
    CHECK_EQ(b[2], 0x40);
    CHECK_EQ(b[3], 0x00);
    CHECK_EQ(b[4], 0x48);
    CHECK(pf_an3155_frame_ok(b, 5));
    CHECK_EQ(pf_an3155_get_u32(b), 0x08004000);
    /* 5 data bytes: padded to 8 with FF, N-1 = 7 */
    uint8_t d[5] = {1, 2, 3, 4, 5};
    CHECK_EQ(pf_an3155_data(b, d, 5), 10);
    CHECK_EQ(b[0], 7);
    CHECK_EQ(b[6], 0xFF);
    CHECK_EQ(b[8], 0xFF);
    CHECK_EQ(b[9], (uint8_t)(7 ^ 1 ^ 2 ^ 3 ^ 4 ^ 5 ^ 0xFF ^ 0xFF ^ 0xFF));
    CHECK(pf_an3155_frame_ok(b, 10));
    CHECK_EQ(pf_an3155_data(b, d, 0), 0);
    CHECK_EQ(pf_an3155_read_len(b, 256), 2);
    CHECK_EQ(b[0], 0xFF);
    CHECK_EQ(b[1], 0x00);
    CHECK_EQ(pf_an3155_read_len(b, 257), 0);
    /* Extended Erase of pages 3..5: 00 02 00 03 00 04 00 05 xor */
    CHECK_EQ(pf_an3155_erase_pages(b, sizeof b, 1, 3, 3), 9);
    CHECK_EQ(b[1], 2);
    CHECK_EQ(b[3], 3);
    CHECK_EQ(b[7], 5);
    CHECK_EQ(b[8], (uint8_t)(2 ^ 3 ^ 4 ^ 5));
    CHECK_EQ(pf_an3155_erase_pages(b, sizeof b, 1, 0, 513), 0); /* over the batch cap */
    /* Classic Erase of pages 254..255, and page 256 is not expressible */
    CHECK_EQ(pf_an3155_erase_pages(b, sizeof b, 0, 254, 2), 4);
    CHECK_EQ(b[0], 1);
    CHECK_EQ(b[3], (uint8_t)(1 ^ 254 ^ 255));
    CHECK_EQ(pf_an3155_erase_pages(b, sizeof b, 0, 255, 2), 0);
    CHECK_EQ(pf_an3155_mass_erase(b, 1), 3);
    CHECK_EQ(b[0] + b[1] + b[2], 0x1FE);
    CHECK_EQ(pf_an3155_mass_erase(b, 0), 2);
}

static void test_get_reply(void)
{
    const uint8_t r[] = {11, 0x22, 0x00, 0x01, 0x02, 0x11, 0x21, 0x31, 0x43, 0x63, 0x73, 0x82, 0x92};
    pf_an3155_get_reply g;
    CHECK_EQ(pf_an3155_parse_get(r, sizeof r, &g), 0);
    CHECK_EQ(g.version, 0x22);
    CHECK_EQ(g.n_ops, 11);
    CHECK(pf_an3155_has_op(&g, 0x43));
    CHECK(!pf_an3155_has_op(&g, 0x44));
    CHECK(!pf_an3155_has_op(&g, 0xA1));
    CHECK_EQ(pf_an3155_parse_get(r, sizeof r - 1, &g), -1);
}

static void test_crc(void)
{
    /* The STM32 CRC unit fed the word 0x12345678 gives 0xDF8A8A2B (ST's
     * reference value); in memory the word is 78 56 34 12. */
    const uint8_t w[4] = {0x78, 0x56, 0x34, 0x12};
    CHECK_EQ(pf_crc32_stm32(0xFFFFFFFFu, w, 4), 0xDF8A8A2Bu);
    /* The streaming digest equals the one-shot value whatever the split. */
    uint8_t data[1000];
    for (int i = 0; i < 1000; i++)
        data[i] = (uint8_t)(i * 7 + 3);
    uint32_t want = pf_crc32_stm32(0xFFFFFFFFu, data, 1000);
    for (size_t split = 1; split < 9; split++) {
        pf_digest d;
        CHECK_EQ(pf_digest_begin(&d, PF_DIGEST_CRC32_STM32), 0);
        size_t at = 0;
        while (at < 1000) {
            size_t n = 1000 - at < split ? 1000 - at : split;
            pf_digest_update(&d, data + at, n);
            at += n;
        }
        uint8_t out[4];
        CHECK_EQ(pf_digest_finish(&d, out), 4);
        CHECK_EQ(((uint32_t)out[0] << 24) | ((uint32_t)out[1] << 16) | ((uint32_t)out[2] << 8) | out[3], want);
    }
}

static void test_chip_table(void)
{
    CHECK(pf_stm32_n_chips >= 30);
    const char *families[] = {"F0", "F1", "F2", "F3", "F4", "F7", "G0", "G4", "L0", "L1", "L4", "H7"};
    for (size_t f = 0; f < sizeof families / sizeof families[0]; f++) {
        int found = 0;
        for (unsigned i = 0; i < pf_stm32_n_chips; i++)
            found |= !strcmp(pf_stm32_chips[i].family, families[f]);
        CHECK(found);
    }
    for (unsigned i = 0; i < pf_stm32_n_chips; i++) {
        const pf_stm32_chip *c = &pf_stm32_chips[i];
        uint32_t sum = 0;
        for (unsigned k = 0; k < c->n_regions; k++) {
            CHECK_EQ(c->regions[k].start, c->flash_start + sum);
            CHECK_EQ(c->regions[k].size % c->regions[k].unit, 0);
            sum += c->regions[k].size;
        }
        CHECK_EQ(sum, c->flash_size);
        CHECK(pf_stm32_chip_by_pid(c->pid) == c);
    }
    const pf_stm32_chip *f4 = pf_stm32_chip_by_name("stm32f40xxg");
    REQUIRE(f4 != NULL);
    CHECK_EQ(pf_stm32_unit_count(f4), 12);
    CHECK_EQ(pf_stm32_unit_index(f4, 0x0800C000, NULL, NULL), 3);
    CHECK_EQ(pf_stm32_unit_index(f4, 0x080E0000, NULL, NULL), 11);
    CHECK_EQ(pf_stm32_unit_index(f4, 0x08100000, NULL, NULL), -1);
    const pf_stm32_chip *f42 = pf_stm32_chip_by_pid(0x419);
    REQUIRE(f42 != NULL);
    CHECK_EQ(pf_stm32_unit_index(f42, 0x08100000, NULL, NULL), 12); /* bank 2 starts at sector 12 */
    CHECK(pf_stm32_chip_by_name("nonsense") == NULL);
}

int main(void)
{
    RUN(test_frames);
    RUN(test_get_reply);
    RUN(test_crc);
    RUN(test_chip_table);
    return pf_test_summary();
}
