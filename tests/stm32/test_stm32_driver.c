/* The stm32 driver against the simulated AN3155 ROM over a pty pair at
 * 115200 8E1 (the simulator models line rate, program and erase times and
 * the one-register USART). */
#include "harness.h"
#include "pf_test.h"

#include "codec/an3155.h"

static uint8_t img[160 * 1024];

static pf_sim_stm32_config sim_cfg(const char *chip)
{
    pf_sim_stm32_config c = PF_SIM_STM32_CONFIG_DEFAULT();
    c.chip = pf_stm32_chip_by_name(chip);
    c.program_us_per_256 = 1000; /* fast, but not instant: the ROM is still busy while programming */
    c.erase_ms_per_page = 2;
    return c;
}

/* F1: classic Erase (0x43), no Get Checksum: write, read-back verify, only touched pages erased. */
static void test_f103_write_verify_read(void)
{
    sim_h s;
    pf_sim_stm32_config c = sim_cfg("F103xB");
    REQUIRE(sim_start(&s, &c, 0xA5) == 0);
    host_h h;
    int r = host_connect(&h, s.dev, "F103xB", -1, 0, 0);
    CHECK_EQ(r, 0);
    if (r < 0)
        fprintf(stderr, "%s\n", h.diag.text);
    CHECK_EQ(h.t.info.chip_id, 0x410);
    CHECK_STR_CONTAINS(h.t.info.chip, "F103");
    CHECK_STR_CONTAINS(h.t.info.bootloader, "v2.2");
    CHECK(!(h.t.info.caps & PF_CAP_DIGEST));
    /* 3001 bytes at 0x08000C10 (to 0x080017C8): touches pages 3..5 (1 KiB pages); odd length gets FF padding */
    fill_random(img, 3001, 7);
    pf_job_result res;
    r = host_flash(&h, 0x08000C10, img, 3001, PF_ERASE_TOUCHED, 1, &res);
    if (r < 0)
        fprintf(stderr, "%s\n", h.diag.text);
    CHECK_EQ(r, 0);
    CHECK(res.verified);
    CHECK_STR_CONTAINS(res.verify_method, "read-back");
    CHECK_EQ(res.erased_bytes, 3 * 1024);
    const uint8_t *fl = pf_sim_stm32_flash(s.sim);
    CHECK(memcmp(fl + 0xC10, img, 3001) == 0);
    CHECK_EQ(fl[0xC00], 0xFF);            /* erased page, not in the image */
    CHECK_EQ(fl[0xC10 + 3001], 0xFF);     /* padding */
    CHECK_EQ(fl[0xBFF], 0xA5);            /* page 2 untouched */
    CHECK_EQ(fl[0x17FF], 0xFF);           /* end of page 5: erased */
    CHECK_EQ(fl[0x1800], 0xA5);           /* page 6 untouched */
    uint8_t back[3001];
    CHECK_EQ(pf_target_stm32.read(&h.drv, 0x08000C10, back, sizeof back), 0);
    CHECK(memcmp(back, img, sizeof back) == 0);
    CHECK_EQ(h.drv.stats.resyncs, 0);
    pf_sim_stm32_stats st;
    pf_sim_stm32_get_stats(s.sim, &st);
    CHECK_EQ(st.overruns, 0);
    CHECK_EQ(st.erased_units, 3);
    host_close(&h);

    /* Erase everything: mass erase. */
    r = host_connect(&h, s.dev, NULL, -1, 0, 0);
    CHECK_EQ(r, 0);
    CHECK_EQ(pf_target_stm32.erase_all(&h.drv), 0);
    int all_ff = 1;
    for (uint32_t i = 0; i < c.chip->flash_size; i++)
        all_ff &= fl[i] == 0xFF;
    CHECK(all_ff);
    host_close(&h);
    sim_stop(&s);
}

/* G0: Extended Erase and Get Checksum: digest verify, unchanged runs skipped. */
static void test_g0_digest_and_skip(void)
{
    sim_h s;
    pf_sim_stm32_config c = sim_cfg("G07xxB");
    REQUIRE(sim_start(&s, &c, -1) == 0);
    host_h h;
    int r = host_connect(&h, s.dev, "STM32G07xxB", -1, 0, 0);
    REQUIRE(r == 0);
    CHECK(h.t.info.caps & PF_CAP_DIGEST);
    CHECK_EQ(h.t.info.digest, PF_DIGEST_CRC32_STM32);
    fill_random(img, 20000, 11);
    pf_job_result res;
    r = host_flash(&h, 0x08002000, img, 20000, PF_ERASE_TOUCHED, 1, &res);
    if (r < 0)
        fprintf(stderr, "%s\n", h.diag.text);
    CHECK_EQ(r, 0);
    CHECK_STR_CONTAINS(res.verify_method, "digest");
    CHECK(memcmp(pf_sim_stm32_flash(s.sim) + 0x2000, img, 20000) == 0);
    uint32_t reads_before = h.drv.stats.commands;
    /* Same image again: every page's checksum matches, nothing is written. */
    r = host_flash(&h, 0x08002000, img, 20000, PF_ERASE_TOUCHED, 1, &res);
    CHECK_EQ(r, 0);
    CHECK_EQ(res.written_bytes, 0);
    CHECK(res.skipped_bytes >= 20000);
    CHECK(h.drv.stats.commands - reads_before < 20);
    /* One byte changed: only its page is erased and written again. */
    img[5000] ^= 0x5A;
    r = host_flash(&h, 0x08002000, img, 20000, PF_ERASE_TOUCHED, 1, &res);
    CHECK_EQ(r, 0);
    CHECK_EQ(res.erased_bytes, 2048);
    CHECK(memcmp(pf_sim_stm32_flash(s.sim) + 0x2000, img, 20000) == 0);
    /* The digest the driver reads is the ROM's CRC of flash. */
    uint8_t d[4];
    CHECK_EQ(pf_target_stm32.digest(&h.drv, 0x08002000, 20000, d), 4);
    uint32_t crc = pf_crc32_stm32(0xFFFFFFFFu, pf_sim_stm32_flash(s.sim) + 0x2000, 20000);
    CHECK_EQ(pf_get_be32(d), crc);
    host_close(&h);
    sim_stop(&s);
}

/* F4: mixed 16/64/128 KiB sectors: only the sectors an image touches are erased. */
static void test_f4_sectors(void)
{
    sim_h s;
    pf_sim_stm32_config c = sim_cfg("F401xE");
    c.erase_ms_per_page = 1;
    REQUIRE(sim_start(&s, &c, 0x00) == 0);
    host_h h;
    int r = host_connect(&h, s.dev, NULL, -1, 0, 0);
    REQUIRE(r == 0);
    CHECK_EQ(h.t.info.geom.n_regions, 3);
    uint32_t us, un;
    CHECK_EQ(pf_stm32_unit_index(h.drv.chip, 0x08010000, &us, &un), 4);
    CHECK_EQ(un, 64 * 1024);
    CHECK_EQ(pf_stm32_unit_index(h.drv.chip, 0x08020000, &us, &un), 5);
    CHECK_EQ(un, 128 * 1024);
    /* 512 bytes across the boundary of sector 3 (16 KiB) and sector 4 (64 KiB) */
    fill_random(img, 512, 3);
    pf_job_result res;
    r = host_flash(&h, 0x0800FF00, img, 512, PF_ERASE_TOUCHED, 1, &res);
    if (r < 0)
        fprintf(stderr, "%s\n", h.diag.text);
    CHECK_EQ(r, 0);
    CHECK_EQ(res.erased_bytes, 80 * 1024);
    const uint8_t *fl = pf_sim_stm32_flash(s.sim);
    CHECK(memcmp(fl + 0xFF00, img, 512) == 0);
    CHECK_EQ(fl[0xBFFF], 0x00);          /* sector 2 untouched */
    CHECK_EQ(fl[0xC000], 0xFF);          /* sector 3 erased */
    CHECK_EQ(fl[0x1FFFF], 0xFF);         /* end of sector 4 erased */
    CHECK_EQ(fl[0x20000], 0x00);         /* sector 5 untouched */
    pf_sim_stm32_stats st;
    pf_sim_stm32_get_stats(s.sim, &st);
    CHECK_EQ(st.erased_units, 2);
    host_close(&h);
    sim_stop(&s);
}

/* Read protection: a clear message naming the flag; unprotect wipes the chip. */
static void test_rdp(void)
{
    sim_h s;
    pf_sim_stm32_config c = sim_cfg("F030x8");
    c.rdp = 1;
    REQUIRE(sim_start(&s, &c, 0x42) == 0);
    host_h h;
    int r = host_connect(&h, s.dev, NULL, -1, 0, 0);
    REQUIRE(r == 0); /* Get and Get ID work under RDP */
    fill_random(img, 1024, 5);
    pf_job_result res;
    r = host_flash(&h, 0x08000000, img, 1024, PF_ERASE_TOUCHED, 1, &res);
    CHECK_EQ(r, PF_ERR_PROTECTED);
    CHECK_STR_CONTAINS(h.diag.text, "NACK (0x1F)");
    CHECK_STR_CONTAINS(h.diag.text, "read-protected");
    CHECK_STR_CONTAINS(h.diag.text, "--unprotect-read");
    CHECK_STR_CONTAINS(h.diag.text, "ERASES THE WHOLE FLASH");
    CHECK_EQ(pf_sim_stm32_flash(s.sim)[0], 0x42); /* nothing touched */
    r = pf_stm32_readout_unprotect(&h.drv);
    if (r < 0)
        fprintf(stderr, "%s\n", h.diag.text);
    CHECK_EQ(r, 0);
    CHECK(!pf_sim_stm32_rdp(s.sim));
    CHECK_EQ(pf_sim_stm32_flash(s.sim)[0], 0xFF); /* wiped */
    r = host_flash(&h, 0x08000000, img, 1024, PF_ERASE_TOUCHED, 1, &res);
    CHECK_EQ(r, 0);
    CHECK(memcmp(pf_sim_stm32_flash(s.sim), img, 1024) == 0);
    /* Protect again through the driver, reconnect: refused again. */
    CHECK_EQ(pf_stm32_readout_protect(&h.drv), 0);
    CHECK(pf_sim_stm32_rdp(s.sim));
    uint8_t b[4];
    CHECK_EQ(pf_target_stm32.read(&h.drv, 0x08000000, b, 4), PF_ERR_PROTECTED);
    host_close(&h);
    sim_stop(&s);
}

/* Write protection: NACK after the data, message names the flag; unprotect keeps the content. */
static void test_wrp(void)
{
    sim_h s;
    pf_sim_stm32_config c = sim_cfg("F303xC");
    c.wrp = 1;
    REQUIRE(sim_start(&s, &c, 0x33) == 0);
    host_h h;
    REQUIRE(host_connect(&h, s.dev, NULL, -1, 0, 0) == 0);
    fill_random(img, 4096, 9);
    pf_job_result res;
    int r = host_flash(&h, 0x08001000, img, 4096, PF_ERASE_TOUCHED, 1, &res);
    CHECK_EQ(r, PF_ERR_TARGET);
    CHECK_STR_CONTAINS(h.diag.text, "NACK (0x1F) to Extended Erase at 0x08001000");
    CHECK_STR_CONTAINS(h.diag.text, "--unprotect-write");
    CHECK_EQ(pf_sim_stm32_flash(s.sim)[0x1000], 0x33);
    CHECK_EQ(pf_stm32_write_unprotect(&h.drv), 0);
    CHECK(!pf_sim_stm32_wrp(s.sim));
    CHECK_EQ(pf_sim_stm32_flash(s.sim)[0], 0x33); /* content stays */
    r = host_flash(&h, 0x08001000, img, 4096, PF_ERASE_TOUCHED, 1, &res);
    CHECK_EQ(r, 0);
    CHECK(memcmp(pf_sim_stm32_flash(s.sim) + 0x1000, img, 4096) == 0);
    /* A write over programmed flash (no erase) is refused with the command and address. */
    uint8_t w[8] = {1, 2, 3, 4, 5, 6, 7, 8};
    r = pf_target_stm32.write(&h.drv, 0x08001000, w, 8);
    CHECK_EQ(r, PF_ERR_TARGET);
    CHECK_STR_CONTAINS(h.diag.text, "NACK (0x1F) to Write Memory at 0x08001000");
    host_close(&h);
    sim_stop(&s);
}

/* Bad input: an image outside flash is refused before anything is sent. */
static void test_outside_flash(void)
{
    sim_h s;
    pf_sim_stm32_config c = sim_cfg("F103xB");
    REQUIRE(sim_start(&s, &c, -1) == 0);
    host_h h;
    REQUIRE(host_connect(&h, s.dev, NULL, -1, 0, 0) == 0);
    fill_random(img, 4096, 1);
    pf_job_result res;
    int r = host_flash(&h, 0x0801F000, img, 8192, PF_ERASE_TOUCHED, 1, &res); /* ends past 128 KiB */
    CHECK_EQ(r, PF_ERR_RANGE);
    CHECK(h.diag.text[0] != 0);
    pf_sim_stm32_stats st;
    pf_sim_stm32_get_stats(s.sim, &st);
    CHECK_EQ(st.programmed_bytes, 0);
    CHECK_EQ(st.erased_units, 0);
    host_close(&h);
    /* --chip that is not the chip answering */
    r = host_connect(&h, s.dev, "F401xE", -1, 0, 0);
    CHECK_EQ(r, PF_ERR_CHIP);
    CHECK_STR_CONTAINS(h.diag.text, "0x410");
    host_close(&h);
    sim_stop(&s);
}

/* An unknown product ID is reported with its value. */
static void test_unknown_pid(void)
{
    static pf_stm32_chip odd;
    odd = *pf_stm32_chip_by_name("F103xB");
    odd.pid = 0x4FE;
    odd.name = "STM32 from the future";
    sim_h s;
    pf_sim_stm32_config c = sim_cfg("F103xB");
    c.chip = &odd;
    REQUIRE(sim_start(&s, &c, -1) == 0);
    host_h h;
    int r = host_connect(&h, s.dev, NULL, -1, 0, 0);
    CHECK_EQ(r, PF_ERR_CHIP);
    CHECK_STR_CONTAINS(h.diag.text, "unknown STM32 product ID 0x4fe");
    host_close(&h);
    sim_stop(&s);
}

/* issue 10: one bit flipped in any byte the ROM sends while connecting
 * (sync, Get, Get ID) never reads as another chip: Get ID's answer has no
 * checksum, so a flipped product ID used to end in "unknown STM32 product
 * ID 0x510" (byte 26) or "the target is STM32F2xxxG" (byte 27), target
 * refused. Now the connection either recovers with the right chip or fails
 * as a link problem. */
static void test_flipped_answer_is_not_another_chip(void)
{
    sim_h s;
    pf_sim_stm32_config c = sim_cfg("F103xB");
    REQUIRE(sim_start(&s, &c, -1) == 0);
    for (long at = 0; at < 36; at++) { /* sync, Get (23 bytes), Get ID twice (5 each) */
        host_h h;
        g_flip_read_at = at;
        int r = host_connect(&h, s.dev, "STM32F103xB", -1, 0, 0);
        g_flip_read_at = -1;
        if (r != 0)
            fprintf(stderr, "  flip at received byte %ld: %s\n", at, h.diag.text);
        CHECK(r != PF_ERR_CHIP && r != PF_ERR_TARGET && r != PF_ERR_PROTECTED);
        if (r == 0)
            CHECK_EQ(h.t.info.chip_id, 0x410);
        host_close(&h);
    }
    sim_stop(&s);
}

/* Link cut mid-write: a clean link error; a new session completes the job. */
static void test_link_cut_then_rerun(void)
{
    sim_h s;
    pf_sim_stm32_config c = sim_cfg("G07xxB");
    REQUIRE(sim_start(&s, &c, -1) == 0);
    fill_random(img, 8 * 1024, 21);
    for (long cut = 1500; cut <= 1503; cut++) { /* cut inside data, address and command bytes */
        host_h h;
        int r = host_connect(&h, s.dev, NULL, cut, 0, 0);
        CHECK_EQ(r, 0);
        pf_job_result res;
        r = host_flash(&h, 0x08000000, img, 8 * 1024, PF_ERASE_TOUCHED, 1, &res);
        CHECK_EQ(r, PF_ERR_CLOSED);
        CHECK_STR_CONTAINS(h.diag.text, "closed");
        host_close(&h);
        /* the ROM is left in the middle of a command: the next session resyncs and finishes */
        r = host_connect(&h, s.dev, NULL, -1, 0, 0);
        CHECK_EQ(r, 0);
        r = host_flash(&h, 0x08000000, img, 8 * 1024, PF_ERASE_TOUCHED, 1, &res);
        if (r < 0)
            fprintf(stderr, "rerun after cut at %ld: %s\n", cut, h.diag.text);
        CHECK_EQ(r, 0);
        CHECK(memcmp(pf_sim_stm32_flash(s.sim), img, 8 * 1024) == 0);
        host_close(&h);
        img[cut] ^= 0xFF; /* change the image so that the next round writes again */
    }
    sim_stop(&s);
}

/* Bit flips in both directions (seeded): either the job recovers (resync,
 * retries) and the flash is right, or it fails with a clean error; a clean
 * re-run always completes. */
static unsigned flips_on(const char *chip, unsigned seeds)
{
    sim_h s;
    pf_sim_stm32_config c = sim_cfg(chip);
    if (sim_start(&s, &c, -1) != 0) {
        CHECK(0);
        return 0;
    }
    fill_random(img, 4 * 1024, 33);
    unsigned recovered = 0;
    for (uint64_t seed = 1; seed <= seeds; seed++) {
        uint32_t at = 0x08000000 + (uint32_t)seed * 0x2000;
        host_h h;
        int r = host_connect(&h, s.dev, NULL, -1, 1500, seed * 7919);
        if (r == 0) {
            pf_job_result res;
            r = host_flash(&h, at, img, 4 * 1024, PF_ERASE_TOUCHED, 1, &res);
        }
        fprintf(stderr, "  %s seed %lu: %u flips, %u resyncs, %u retries: %s\n", chip, (unsigned long)seed,
                h.fp.flips, h.drv.stats.resyncs, h.drv.stats.retries, r == 0 ? "ok" : h.diag.text);
        CHECK(r == 0 || h.diag.text[0] != 0);
        if (r == 0) {
            recovered++;
            CHECK(memcmp(pf_sim_stm32_flash(s.sim) + (at - 0x08000000), img, 4 * 1024) == 0);
        }
        host_close(&h);
        r = host_connect(&h, s.dev, NULL, -1, 0, 0);
        CHECK_EQ(r, 0);
        pf_job_result res;
        r = host_flash(&h, at, img, 4 * 1024, PF_ERASE_TOUCHED, 1, &res);
        if (r < 0)
            fprintf(stderr, "clean rerun: %s\n", h.diag.text);
        CHECK_EQ(r, 0);
        CHECK(memcmp(pf_sim_stm32_flash(s.sim) + (at - 0x08000000), img, 4 * 1024) == 0);
        host_close(&h);
    }
    sim_stop(&s);
    return recovered;
}

/* Bit flips in both directions (seeded): either the job recovers (resync,
 * retries) and the flash is right, or it fails with a clean error; a clean
 * re-run always completes. Read Memory answers carry no checksum, so a flip
 * in read-back data is a verify error on F1; with Get Checksum (G0) the
 * answers are XOR-checked and the job recovers. */
static void test_bit_flips(void)
{
    flips_on("F103xB", 3);
    unsigned g0 = flips_on("G07xxB", 3);
    CHECK(g0 >= 1);
}

/* The simulator is no more forgiving than silicon: a host that sends the
 * next command before the ACK of a Write Memory loses bytes (overrun). */
static void test_pipelining_overruns(void)
{
    sim_h s;
    pf_sim_stm32_config c = sim_cfg("F103xB");
    c.program_us_per_256 = 7000;
    REQUIRE(sim_start(&s, &c, -1) == 0);
    pf_posix_link l;
    pf_diag d = {0};
    REQUIRE(pf_posix_open(&l, s.dev, &d) == 0);
    pf_port p;
    pf_posix_port(&l, &p);
    uint8_t b = 0x7F, a = 0;
    pf_port_write_all(&p, &b, 1);
    CHECK_EQ(pf_port_read_exact(&p, &a, 1, pf_deadline(&p, 1000), NULL), 1);
    CHECK_EQ(a, PF_AN3155_ACK);
    /* Two Write Memory commands back to back, without waiting for any ACK. */
    uint8_t burst[2 * (2 + 5 + 258)];
    size_t n = 0;
    uint8_t data[256];
    fill_random(data, sizeof data, 2);
    for (int k = 0; k < 2; k++) {
        n += pf_an3155_cmd(burst + n, PF_AN3155_WRITE);
        n += pf_an3155_u32(burst + n, 0x08000000u + 256u * (uint32_t)k);
        n += pf_an3155_data(burst + n, data, 256);
    }
    pf_port_write_all(&p, burst, n);
    /* collect answers for a while */
    uint8_t ans[64];
    size_t got = 0;
    pf_port_read_exact(&p, ans, sizeof ans, pf_deadline(&p, 600), &got);
    pf_sim_stm32_stats st;
    pf_sim_stm32_get_stats(s.sim, &st);
    CHECK(st.overruns >= 1);
    CHECK(memcmp(pf_sim_stm32_flash(s.sim), data, 256) == 0);           /* the first block made it */
    CHECK(memcmp(pf_sim_stm32_flash(s.sim) + 256, data, 256) != 0);     /* the second did not */
    fprintf(stderr, "  pipelined: %u overruns, %zu answer bytes\n", st.overruns, got);
    pf_posix_close(&l);
    sim_stop(&s);
}

int main(void)
{
    signal(SIGPIPE, SIG_IGN);
    RUN(test_f103_write_verify_read);
    RUN(test_g0_digest_and_skip);
    RUN(test_f4_sectors);
    RUN(test_rdp);
    RUN(test_wrp);
    RUN(test_outside_flash);
    RUN(test_unknown_pid);
    RUN(test_flipped_answer_is_not_another_chip);
    RUN(test_link_cut_then_rerun);
    RUN(test_bit_flips);
    RUN(test_pipelining_overruns);
    return pf_test_summary();
}
