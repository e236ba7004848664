/* Bad input and faults on the AVR path, against the real Optiboot in simavr:
 *  - an image reaching into the bootloader section, or past flash, is refused
 *    before anything is written (the flash dump shows nothing changed);
 *  - a --chip that differs from the signature is refused, naming both;
 *  - no sync (nobody on the port, wrong baud) fails with the hint;
 *  - a link cut mid-write reports where it stopped, and a re-run completes;
 *  - bit flips on the link never end in success with an unverified image. */
#include "avr_sim_util.h"
#include "pf_test.h"

static uint8_t *g_small, *g_big;
static long g_small_n, g_big_n;

static void check_nothing_written(avr_sim *s)
{
    CHECK_EQ(sim_stop(s), 0);
    uint8_t *dump = NULL;
    long dn = read_dump(s, &dump);
    REQUIRE(dn == AVR_FLASH_SIZE);
    size_t erased = 0;
    for (size_t i = 0; i < AVR_BOOT_START; i++)
        erased += dump[i] == 0xFF;
    CHECK_EQ(erased, AVR_BOOT_START);
}

static void test_refused_before_writing(void)
{
    avr_sim s;
    REQUIRE(sim_start(&s, "range", NULL) == 0);
    flash_opts o = FLASH_OPTS_DEFAULT();
    flash_outcome out;
    /* 682 bytes at 0x7C00 end at 0x7EA9: into Optiboot's section at 0x7E00. */
    o.addr = 0x7C00;
    int r = flash_retry(s.port, g_small, (size_t)g_small_n, &o, &out, 3);
    CHECK_EQ(r, PF_ERR_RANGE);
    CHECK(out.connected);
    CHECK_EQ(out.res.written_bytes, 0);
    CHECK_STR_CONTAINS(out.diag.text, "bootloader section");
    CHECK_STR_CONTAINS(out.diag.text, "0x00007e00");
    /* Past the end of flash. */
    o.addr = 0x8000;
    r = flash_retry(s.port, g_small, (size_t)g_small_n, &o, &out, 3);
    CHECK_EQ(r, PF_ERR_RANGE);
    CHECK_EQ(out.res.written_bytes, 0);
    fprintf(stderr, "  refused: %s\n", out.diag.text);
    check_nothing_written(&s);
    sim_cleanup(&s);
}

static void test_wrong_chip(void)
{
    avr_sim s;
    REQUIRE(sim_start(&s, "chip", NULL) == 0);
    flash_opts o = FLASH_OPTS_DEFAULT();
    o.chip = "ATmega168";
    flash_outcome out;
    int r = flash_retry(s.port, g_small, (size_t)g_small_n, &o, &out, 3);
    CHECK_EQ(r, PF_ERR_CHIP);
    CHECK_STR_CONTAINS(out.diag.text, "ATmega328P");
    CHECK_STR_CONTAINS(out.diag.text, "ATmega168");
    CHECK_STR_CONTAINS(out.diag.text, "1e 95 0f");
    fprintf(stderr, "  refused: %s\n", out.diag.text);
    o.chip = "ATmega999";
    r = flash_retry(s.port, g_small, (size_t)g_small_n, &o, &out, 3);
    CHECK_EQ(r, PF_ERR_CHIP);
    CHECK_STR_CONTAINS(out.diag.text, "ATmega999");
    check_nothing_written(&s);
    sim_cleanup(&s);
}

static void test_no_sync(void)
{
    /* Nobody answers: a pty whose other side never speaks. */
    char path[96];
    snprintf(path, sizeof path, "/tmp/pf-avr-silent-%d", (int)getpid());
    pf_posix_link silent;
    pf_diag d = {0};
    REQUIRE(pf_posix_open(&silent, path, &d) == 0);
    flash_opts o = FLASH_OPTS_DEFAULT();
    o.sync_timeout_ms = 1500;
    flash_outcome out;
    int r = flash_once(path, g_small, (size_t)g_small_n, &o, &out);
    CHECK_EQ(r, PF_ERR_NO_SYNC);
    CHECK_STR_CONTAINS(out.diag.text, "nothing came back");
    CHECK_STR_CONTAINS(out.diag.text, "Wrong baud");
    CHECK_STR_CONTAINS(out.diag.text, "No bootloader");
    CHECK_STR_CONTAINS(out.diag.text, "sketch running");
    fprintf(stderr, "  %s\n", out.diag.text);
    /* What the driver sent while trying: one GET_SYNC, then pairs of
     * CRC_EOPs (safe whatever state the bootloader is in). */
    uint8_t got[256];
    int n = silent.fd >= 0 ? (int)read(silent.fd, got, sizeof got) : -1;
    CHECK(n >= 4 && n % 2 == 0);
    CHECK(n > 0 && got[0] == 0x30 && got[1] == 0x20);
    for (int i = 2; n > 0 && i < n; i++)
        CHECK(got[i] == 0x20);
    pf_posix_close(&silent);

    /* Wrong baud against the simulator: the UART sees garbage, Optiboot
     * never syncs. */
    avr_sim s;
    REQUIRE(sim_start(&s, "baud", NULL) == 0);
    o.baud = 57600;
    r = flash_once(s.port, g_small, (size_t)g_small_n, &o, &out);
    CHECK_EQ(r, PF_ERR_NO_SYNC);
    CHECK_STR_CONTAINS(out.diag.text, "57600 baud");
    fprintf(stderr, "  %s\n", out.diag.text);
    /* The right baud then works (each open resets the chip). */
    o.baud = 115200;
    r = flash_retry(s.port, g_small, (size_t)g_small_n, &o, &out, 3);
    CHECK_EQ(r, PF_OK);
    sim_cleanup(&s);
}

static void test_cut_and_rerun(void)
{
    avr_sim s;
    REQUIRE(sim_start(&s, "cut", NULL) == 0);
    flash_opts o = FLASH_OPTS_DEFAULT();
    o.cut_after = 12000; /* bytes sent: about 85 pages into the image */
    flash_outcome out;
    int r = PF_OK;
    for (int i = 0; i < 3; i++) {
        r = flash_once(s.port, g_big, (size_t)g_big_n, &o, &out);
        if (r != PF_ERR_NO_SYNC && r != PF_ERR_TIMEOUT)
            break;
    }
    CHECK_EQ(r, PF_ERR_CLOSED);
    fprintf(stderr, "  cut: %s\n", out.diag.text);
    CHECK_STR_CONTAINS(out.diag.text, "write at 0x");
    CHECK_STR_CONTAINS(out.diag.text, "Program Page at 0x");
    /* It says where: the address of the page being sent when the link went. */
    const char *at = strstr(out.diag.text, "Program Page at 0x");
    unsigned long where = at ? strtoul(at + strlen("Program Page at 0x"), NULL, 16) : 0;
    CHECK(where > 0x2000 && where < 0x3800);
    CHECK(out.res.written_bytes > 0x2000 && out.res.written_bytes < 0x3800);
    CHECK(!out.res.verified);

    /* The same command again completes, and the application runs. */
    o.cut_after = 0;
    r = flash_retry(s.port, g_big, (size_t)g_big_n, &o, &out, 3);
    if (r)
        fprintf(stderr, "re-run: %s\n", out.diag.text);
    CHECK_EQ(r, PF_OK);
    char want[80], last[120] = "";
    expected_line(g_big, (size_t)g_big_n, 7, want, sizeof want);
    CHECK(wait_uart_line(&s, want, 5000, last, sizeof last));
    sim_cleanup(&s);
}

/* The same through the link emulator: `peerflash wire --cut-after` cuts the
 * cable mid-write under `peerflash flash`; the CLI says where it stopped and
 * exits 4 (link); with the cable back, the same command completes. */
static void test_wire_cut_and_rerun(void)
{
    avr_sim s;
    REQUIRE(sim_start(&s, "wirecut", NULL) == 0);
    char host[128], log[160], cmd[768], out[4096];
    snprintf(host, sizeof host, "/tmp/pf-avr-wirehost-%d", (int)getpid());
    snprintf(log, sizeof log, "/tmp/pf-avr-wire-%d.log", (int)getpid());
    unlink(log);
    const char *cut[] = {"--cut-after", "12000", "--cut-mode", "close", NULL};
    pid_t w = wire_start(host, s.port, cut, log);
    CHECK(w > 0);
    snprintf(cmd, sizeof cmd, "timeout 60 %s flash --target avr --port %s -q %s/app_big.hex 2>&1", PF_CLI, host,
             PF_AVR_DIR);
    int rc = w > 0 ? run_capture(cmd, out, sizeof out) : -1;
    fprintf(stderr, "  cut by wire: exit %d: %s", rc, out);
    CHECK_EQ(rc, 4);
    CHECK_STR_CONTAINS(out, "write at 0x");
    CHECK_STR_CONTAINS(out, "Program Page at 0x");
    const char *at = strstr(out, "Program Page at 0x");
    unsigned long where = at ? strtoul(at + strlen("Program Page at 0x"), NULL, 16) : 0;
    CHECK(where > 0x1800 && where < 0x3800); /* about 12000 bytes into the transfer */
    if (w > 0)
        CHECK_EQ(child_wait(w, 10000), 0); /* close mode: the wire exits after the cut */

    /* The cable is back: the same command completes (retried only when a
     * loaded machine stalls the simulator past Optiboot's window). */
    w = wire_start(host, s.port, NULL, log);
    CHECK(w > 0);
    rc = -1;
    for (int i = 0; w > 0 && i < 3 && rc != 0; i++) {
        rc = run_capture(cmd, out, sizeof out);
        if (rc)
            fprintf(stderr, "  re-run attempt %d: exit %d: %s", i + 1, rc, out);
    }
    CHECK_EQ(rc, 0);
    char want[80], last[120] = "";
    expected_line(g_big, (size_t)g_big_n, 7, want, sizeof want);
    CHECK(wait_uart_line(&s, want, 5000, last, sizeof last));
    if (w > 0) {
        kill(w, SIGTERM);
        child_wait(w, 5000);
    }
    if (pf_test_failed) {
        snprintf(cmd, sizeof cmd, "tail -n 20 %s >&2", log);
        if (system(cmd) != 0)
            fprintf(stderr, "(no wire log)\n");
    }
    unlink(log);
    sim_cleanup(&s);
}

static void test_bit_flips_never_pass_unverified(void)
{
    avr_sim s;
    REQUIRE(sim_start(&s, "flips", NULL) == 0);
    flash_opts o = FLASH_OPTS_DEFAULT();
    o.flip_every = 700; /* about one flipped bit per 700 bytes, both ways */
    unsigned failed = 0, passed = 0;
    char want[80], last[120] = "";
    expected_line(g_small, (size_t)g_small_n, 3, want, sizeof want);
    for (uint32_t seed = 1; seed <= 6; seed++) {
        o.seed = seed * 2654435761u;
        flash_outcome out;
        /* Start from a known state: an erased application area is not
         * needed, but the previous success must not hide this run's result:
         * write a different image first without faults. */
        flash_opts clean = FLASH_OPTS_DEFAULT();
        clean.run = 0;
        static uint8_t other[768];
        memset(other, (int)(0x11 * seed), sizeof other);
        REQUIRE(flash_retry(s.port, other, sizeof other, &clean, &out, 3) == PF_OK);
        int r = flash_once(s.port, g_small, (size_t)g_small_n, &o, &out);
        fprintf(stderr, "  seed %u: %lu flips, %s%s\n", seed, out.flips, r ? "failed: " : "ok",
                r ? out.diag.text : "");
        if (r == PF_OK) {
            passed++;
            /* Success must mean the image is in flash: the application's
             * own CRC over its flash says so. */
            CHECK(out.res.verified);
            CHECK(wait_uart_line(&s, want, 5000, last, sizeof last));
        } else {
            failed++;
            CHECK(!out.res.verified);
        }
    }
    CHECK(failed > 0); /* the flips did hit something */
    fprintf(stderr, "  %u runs failed (detected), %u passed (verified)\n", failed, passed);
    sim_cleanup(&s);
}

/* The simulator refuses a bootloader that does not fit the boot section:
 * one that starts below it, and Debian's prebuilt Optiboot (532 bytes, it
 * overruns the section and the end of flash). */
static void test_sim_refuses_oversized_bootloader(void)
{
    char hex[96], cmd[512];
    snprintf(hex, sizeof hex, "/tmp/pf-avr-bigboot-%d.hex", (int)getpid());
    FILE *f = fopen(hex, "w");
    REQUIRE(f != NULL);
    /* 16 bytes at 0x7DF8: 8 below the boot section at 0x7E00. */
    unsigned sum = 0x10 + 0x7D + 0xF8;
    fprintf(f, ":107DF800");
    for (int i = 0; i < 16; i++) {
        fprintf(f, "%02X", 0xAA);
        sum += 0xAA;
    }
    fprintf(f, "%02X\n:00000001FF\n", (unsigned)(-sum & 0xFF));
    fclose(f);
    snprintf(cmd, sizeof cmd, "timeout 20 %s sim avr --port /tmp/pf-avr-never-%d --bootloader %s 2>&1 | grep -q 'does not fit the 512-byte boot section'",
             PF_CLI, (int)getpid(), hex);
    CHECK_EQ(system(cmd), 0);
    unlink(hex);
    const char *debian = "/usr/share/arduino/hardware/arduino/avr/bootloaders/optiboot/optiboot_atmega328.hex";
    if (access(debian, R_OK) == 0) {
        snprintf(cmd, sizeof cmd, "timeout 20 %s sim avr --port /tmp/pf-avr-never-%d --bootloader %s >/dev/null 2>&1",
                 PF_CLI, (int)getpid(), debian);
        int st = system(cmd);
        CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 1);
    }
}

/* Bit flips through the link emulator under `peerflash flash`: whatever
 * the seed, the command either fails (non-zero exit) or the image it
 * reports written is the one in flash (the application's CRC line). */
static void test_wire_flips_never_pass_unverified(void)
{
    avr_sim s;
    REQUIRE(sim_start(&s, "wireflip", NULL) == 0);
    char host[128], log[160], cmd[768], out[4096], seed[16];
    snprintf(host, sizeof host, "/tmp/pf-avr-fliphost-%d", (int)getpid());
    snprintf(log, sizeof log, "/tmp/pf-avr-flipwire-%d.log", (int)getpid());
    char want[80], last[120] = "";
    expected_line(g_small, (size_t)g_small_n, 3, want, sizeof want);
    snprintf(cmd, sizeof cmd, "timeout 60 %s flash --target avr --port %s -q %s/app_small.hex 2>&1", PF_CLI, host,
             PF_AVR_DIR);
    unsigned failed = 0, passed = 0;
    for (int i = 1; i <= 4; i++) {
        snprintf(seed, sizeof seed, "%d", i);
        const char *flip[] = {"--flip", "0.0002", "--seed", seed, NULL};
        pid_t w = wire_start(host, s.port, flip, log);
        REQUIRE(w > 0);
        /* Clear the UART log so a line from an earlier run cannot count. */
        FILE *f = fopen(s.uart_log, "w");
        if (f)
            fclose(f);
        int rc = run_capture(cmd, out, sizeof out);
        fprintf(stderr, "  seed %d: exit %d %s", i, rc, rc ? out : "\n");
        if (rc == 0) {
            passed++;
            CHECK(wait_uart_line(&s, want, 5000, last, sizeof last));
        } else {
            failed++;
            CHECK(rc == 4 || rc == 5 || rc == 6);
        }
        kill(w, SIGTERM);
        child_wait(w, 5000);
    }
    fprintf(stderr, "  %u failed (detected), %u passed (verified by the application's CRC)\n", failed, passed);
    unlink(log);
    sim_cleanup(&s);
}

int main(void)
{
    signal(SIGPIPE, SIG_IGN);
    g_small_n = load_app("app_small", &g_small);
    g_big_n = load_app("app_big", &g_big);
    if (g_small_n <= 0 || g_big_n <= 0)
        return 1;
    RUN(test_sim_refuses_oversized_bootloader);
    RUN(test_refused_before_writing);
    RUN(test_wrong_chip);
    RUN(test_no_sync);
    RUN(test_cut_and_rerun);
    RUN(test_wire_cut_and_rerun);
    RUN(test_bit_flips_never_pass_unverified);
    RUN(test_wire_flips_never_pass_unverified);
    return pf_test_summary();
}
