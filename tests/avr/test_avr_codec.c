/* STK500v1 encoders and reply checks, and the AVR chip table. */
#include "codec/stk500.h"
#include "peerflash/pf_avr.h"
#include "pf_test.h"

static void test_simple_commands(void)
{
    uint8_t b[8];
    CHECK_EQ(pf_stk_get_sync(b), 2);
    CHECK(b[0] == 0x30 && b[1] == 0x20);
    CHECK_EQ(pf_stk_read_sign(b), 2);
    CHECK(b[0] == 0x75 && b[1] == 0x20);
    CHECK_EQ(pf_stk_enter_progmode(b), 2);
    CHECK(b[0] == 0x50 && b[1] == 0x20);
    CHECK_EQ(pf_stk_leave_progmode(b), 2);
    CHECK(b[0] == 0x51 && b[1] == 0x20);
    CHECK_EQ(pf_stk_get_parameter(b, 0x82), 3);
    CHECK(b[0] == 0x41 && b[1] == 0x82 && b[2] == 0x20);
}

static void test_addresses(void)
{
    uint8_t b[8];
    /* Byte address 0x7C80 is word 0x3E40: little-endian on the wire. */
    CHECK_EQ(pf_stk_load_address(b, (uint16_t)(0x7C80 >> 1)), 4);
    CHECK(b[0] == 0x55 && b[1] == 0x40 && b[2] == 0x3E && b[3] == 0x20);
    CHECK_EQ(pf_stk_load_ext_address(b, 1), 6);
    CHECK(b[0] == 0x56 && b[1] == 0x4D && b[2] == 0x00 && b[3] == 0x01 && b[4] == 0x00 && b[5] == 0x20);
}

static void test_pages(void)
{
    uint8_t data[256], f[PF_STK_MAX_FRAME];
    for (int i = 0; i < 256; i++)
        data[i] = (uint8_t)(i * 7);
    size_t n = pf_stk_prog_page(f, PF_STK_MEM_FLASH, data, 128);
    CHECK_EQ(n, 133);
    CHECK(f[0] == 0x64 && f[1] == 0x00 && f[2] == 0x80 && f[3] == 'F');
    CHECK(memcmp(f + 4, data, 128) == 0);
    CHECK_EQ(f[132], 0x20);
    /* 256 bytes: the length is big-endian 0x0100. */
    n = pf_stk_prog_page(f, PF_STK_MEM_FLASH, data, 256);
    CHECK_EQ(n, 261);
    CHECK(f[1] == 0x01 && f[2] == 0x00 && f[260] == 0x20);
    CHECK_EQ(pf_stk_prog_page(f, PF_STK_MEM_FLASH, data, 0), 0);
    CHECK_EQ(pf_stk_prog_page(f, PF_STK_MEM_FLASH, data, 257), 0);
    n = pf_stk_read_page(f, PF_STK_MEM_FLASH, 256);
    CHECK_EQ(n, 5);
    CHECK(f[0] == 0x74 && f[1] == 0x01 && f[2] == 0x00 && f[3] == 'F' && f[4] == 0x20);
    CHECK_EQ(pf_stk_read_page(f, PF_STK_MEM_FLASH, 0), 0);
}

static void test_replies(void)
{
    pf_diag d = {0};
    uint8_t bad = 0;
    const uint8_t ok[] = {0x14, 0x1E, 0x95, 0x0F, 0x10};
    CHECK_EQ(pf_stk_check_reply(ok, sizeof ok, "Read Signature", &bad, &d), PF_OK);
    const uint8_t nosync[] = {0x15, 0x10};
    CHECK_EQ(pf_stk_check_reply(nosync, 2, "Load Address", &bad, &d), PF_ERR_PROTOCOL);
    CHECK_EQ(bad, 0x15);
    CHECK_STR_CONTAINS(d.text, "0x15 (NOSYNC)");
    CHECK_STR_CONTAINS(d.text, "Load Address");
    const uint8_t failed[] = {0x14, 0x11};
    CHECK_EQ(pf_stk_check_reply(failed, 2, "Program Page", &bad, &d), PF_ERR_PROTOCOL);
    CHECK_EQ(bad, 0x11);
    CHECK_STR_CONTAINS(d.text, "FAILED");
    CHECK_STR_CONTAINS(d.text, "Program Page");
    CHECK_EQ(pf_stk_check_reply(ok, 1, "x", NULL, NULL), PF_ERR_ARG);
    CHECK(pf_stk_status_name(0x42) == NULL);
}

static void test_chip_table(void)
{
    const uint8_t s328[3] = {0x1E, 0x95, 0x0F};
    const pf_avr_chip *c = pf_avr_chip_by_sig(s328);
    REQUIRE(c != NULL);
    CHECK_STR_CONTAINS(c->name, "ATmega328P");
    CHECK_EQ(c->flash_size, 32768);
    CHECK_EQ(c->page_size, 128);
    CHECK_EQ(c->boot_size, 512);
    CHECK(pf_avr_chip_by_name("atmega328p") == c);
    CHECK(pf_avr_chip_by_name("m328p") == c);
    CHECK(pf_avr_chip_by_name("ATmega328") != c);
    CHECK(pf_avr_chip_by_name("ATmega328PX") == NULL);
    const char *need[] = {"ATmega328P", "ATmega168", "ATmega32U4", "ATmega1284P", "ATmega2560"};
    for (size_t i = 0; i < sizeof need / sizeof need[0]; i++) {
        const pf_avr_chip *x = pf_avr_chip_by_name(need[i]);
        REQUIRE(x != NULL);
        CHECK(pf_avr_chip_by_sig(x->sig) == x); /* signatures are unique */
        CHECK(x->flash_size % x->page_size == 0);
        CHECK(x->boot_size % x->page_size == 0);
        CHECK(x->boot_size < x->flash_size);
    }
    CHECK_EQ(pf_avr_chip_by_name("ATmega2560")->flash_size, 262144);
    CHECK_EQ(pf_avr_chip_by_name("ATmega1284P")->page_size, 256);
    const uint8_t unknown[3] = {0x1E, 0x00, 0x00};
    CHECK(pf_avr_chip_by_sig(unknown) == NULL);
}

int main(void)
{
    RUN(test_simple_commands);
    RUN(test_addresses);
    RUN(test_pages);
    RUN(test_replies);
    RUN(test_chip_table);
    return pf_test_summary();
}
