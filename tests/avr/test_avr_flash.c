/* The avr driver and the flash job against the REAL Optiboot in simavr:
 * the flashed application runs and prints a CRC over its own flash that
 * matches the image; a ~30 KB image writes and verifies; read-compare skips
 * unchanged pages; the flash dump holds exactly the image, the bootloader is
 * untouched; and `peerflash flash --target avr` does the same from the CLI. */
#include "avr_sim_util.h"
#include "pf_test.h"

static uint8_t optiboot[512];

/* The Optiboot image as built, to check the boot section stays intact. */
static int load_optiboot(void)
{
    char path[256];
    snprintf(path, sizeof path, "%s/optiboot_atmega328.hex", PF_AVR_DIR);
    uint8_t *text = NULL;
    long n = read_file(path, &text);
    if (n <= 0)
        return -1;
    static pf_segment segs[8];
    static uint8_t arena[1024];
    pf_memmap map;
    pf_memmap_init(&map, segs, 8, arena, sizeof arena);
    pf_ihex p;
    pf_diag d = {0};
    pf_ihex_init(&p, pf_memmap_sink, &map, &d);
    int r = pf_ihex_feed(&p, text, (size_t)n);
    if (r == 0)
        r = pf_ihex_finish(&p);
    if (r == 0)
        r = pf_memmap_finish(&map, &d);
    free(text);
    if (r != 0) {
        fprintf(stderr, "optiboot hex: %s\n", d.text);
        return -1;
    }
    pf_memmap_read(&map, AVR_BOOT_START, optiboot, sizeof optiboot, 0xFF);
    return 0;
}

/* Stops the simulator and checks its flash: the image at 0, erased up to
 * the boot section (pages the image touches are padded with 0xFF), Optiboot
 * intact. */
static void check_dump(avr_sim *s, const uint8_t *img, size_t n)
{
    CHECK_EQ(sim_stop(s), 0);
    uint8_t *dump = NULL;
    long dn = read_dump(s, &dump);
    REQUIRE(dn == AVR_FLASH_SIZE);
    CHECK(memcmp(dump, img, n) == 0);
    size_t erased = 0;
    for (size_t i = n; i < AVR_BOOT_START; i++)
        erased += dump[i] == 0xFF;
    CHECK_EQ(erased, AVR_BOOT_START - n);
    CHECK(memcmp(dump + AVR_BOOT_START, optiboot, sizeof optiboot) == 0);
}

static void test_small_app_runs(void)
{
    uint8_t *img = NULL;
    long n = load_app("app_small", &img);
    REQUIRE(n > 0);
    avr_sim s;
    REQUIRE(sim_start(&s, "small", NULL) == 0);
    flash_opts o = FLASH_OPTS_DEFAULT();
    o.chip = "ATmega328P";
    flash_outcome out;
    int r = flash_retry(s.port, img, (size_t)n, &o, &out, 3);
    if (r)
        fprintf(stderr, "flash: %s\n", out.diag.text);
    CHECK_EQ(r, PF_OK);
    CHECK_STR_CONTAINS(out.info.chip, "ATmega328P");
    CHECK_STR_CONTAINS(out.info.bootloader, "Optiboot 4.4");
    CHECK_EQ(out.info.chip_id, 0x1E950F);
    CHECK_EQ(out.info.geom.protected_ranges[0].start, AVR_BOOT_START);
    CHECK_EQ(out.info.geom.protected_ranges[0].size, 512);
    CHECK_EQ(out.info.geom.flash_size, AVR_FLASH_SIZE);
    CHECK_EQ(out.info.geom.write_align, 128);
    CHECK_EQ(out.info.geom.write_max, 128);
    CHECK_EQ(out.info.geom.erase_style, PF_ERASE_BY_WRITE);
    CHECK_EQ(out.info.geom.n_regions, 1);
    CHECK_EQ(out.info.geom.regions[0].size, AVR_FLASH_SIZE);
    CHECK_EQ(out.info.geom.regions[0].unit, 128);
    CHECK_EQ(out.info.caps, PF_CAP_READ | PF_CAP_RUN);
    CHECK(out.res.verified);
    CHECK_STR_CONTAINS(out.res.verify_method, "read-back");
    CHECK_EQ(out.res.written_bytes, ((size_t)n + 127) / 128 * 128);
    char want[80], last[120] = "";
    expected_line(img, (size_t)n, 3, want, sizeof want);
    int seen = wait_uart_line(&s, want, 5000, last, sizeof last);
    if (!seen)
        fprintf(stderr, "UART log: wanted \"%s\", last line \"%s\"\n", want, last);
    CHECK(seen);
    check_dump(&s, img, (size_t)n);
    sim_cleanup(&s);
}

static void test_big_image_and_read_compare(void)
{
    uint8_t *big = NULL, *big2 = NULL;
    long n = load_app("app_big", &big);
    long n2 = load_app("app_big2", &big2);
    REQUIRE(n > 29000 && n2 > 29000);
    /* Same program, other seed: same length, so the flash dump after big2
     * can be checked for erased bytes past the image. */
    REQUIRE(n2 == n);
    avr_sim s;
    REQUIRE(sim_start(&s, "big", NULL) == 0);
    flash_opts o = FLASH_OPTS_DEFAULT();
    flash_outcome out;
    uint64_t t0 = pf_posix_now_us();
    int r = flash_retry(s.port, big, (size_t)n, &o, &out, 3);
    double secs = (double)(pf_posix_now_us() - t0) / 1e6;
    if (r)
        fprintf(stderr, "flash: %s\n", out.diag.text);
    REQUIRE(r == PF_OK);
    fprintf(stderr, "  %ld bytes written and verified in %.2f s (write %u ms, verify %u ms)\n", n, secs,
            out.res.ms_write, out.res.ms_verify);
    CHECK(out.res.verified);
    char want[80], last[120] = "";
    expected_line(big, (size_t)n, 7, want, sizeof want);
    CHECK(wait_uart_line(&s, want, 5000, last, sizeof last));

    /* The same image again with read-compare: every page is skipped. */
    o.read_compare = 1;
    r = flash_retry(s.port, big, (size_t)n, &o, &out, 3);
    if (r)
        fprintf(stderr, "flash: %s\n", out.diag.text);
    CHECK_EQ(r, PF_OK);
    CHECK_EQ(out.skipped_pages, ((size_t)n + 127) / 128);
    CHECK(out.res.verified);

    /* A different image with read-compare: the pages that differ are written. */
    r = flash_retry(s.port, big2, (size_t)n2, &o, &out, 3);
    if (r)
        fprintf(stderr, "flash: %s\n", out.diag.text);
    CHECK_EQ(r, PF_OK);
    CHECK(out.skipped_pages < ((size_t)n2 + 127) / 128 / 2);
    expected_line(big2, (size_t)n2, 11, want, sizeof want);
    int seen = wait_uart_line(&s, want, 5000, last, sizeof last);
    if (!seen)
        fprintf(stderr, "UART log: wanted \"%s\", last line \"%s\"\n", want, last);
    CHECK(seen);
    check_dump(&s, big2, (size_t)n2);
    sim_cleanup(&s);
}

/* `peerflash flash --target avr --port PATH app.hex`, as a user types it. */
static void test_cli_flash(void)
{
    uint8_t *img = NULL;
    long n = load_app("app_small", &img);
    REQUIRE(n > 0);
    avr_sim s;
    REQUIRE(sim_start(&s, "cli", NULL) == 0);
    char cmd[768];
    snprintf(cmd, sizeof cmd, "timeout 60 %s flash --target avr --chip ATmega328P --port %s %s/app_small.hex -q",
             PF_CLI, s.port, PF_AVR_DIR);
    int status = -1;
    for (int i = 0; i < 3; i++) {
        status = system(cmd);
        if (!(WIFEXITED(status) && WEXITSTATUS(status) == 4)) /* 4: no answer (a stalled simulator): retry */
            break;
        fprintf(stderr, "  (CLI attempt %d: link/no answer; retrying)\n", i + 1);
    }
    CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    char want[80], last[120] = "";
    expected_line(img, (size_t)n, 3, want, sizeof want);
    CHECK(wait_uart_line(&s, want, 5000, last, sizeof last));

    /* --chip naming another part: refused with exit status 5 (target). */
    snprintf(cmd, sizeof cmd, "timeout 60 %s flash --target avr --chip ATmega2560 --port %s %s/app_small.hex -q",
             PF_CLI, s.port, PF_AVR_DIR);
    for (int i = 0; i < 3; i++) {
        status = system(cmd);
        if (!(WIFEXITED(status) && WEXITSTATUS(status) == 4))
            break;
    }
    CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 5);
    sim_cleanup(&s);
}

int main(void)
{
    signal(SIGPIPE, SIG_IGN);
    if (load_optiboot() != 0) {
        fprintf(stderr, "cannot load the built Optiboot\n");
        return 1;
    }
    RUN(test_small_app_runs);
    RUN(test_big_image_and_read_compare);
    RUN(test_cli_flash);
    return pf_test_summary();
}
