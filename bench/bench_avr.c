/* AVR benchmark: write + verify of the ~30 KB test application through the
 * real Optiboot running in simavr (`peerflash sim avr`), with peerflash and
 * with avrdude (-c arduino) in the same run and the same harness. Wall time
 * of the whole command (connect, write, verify, start), best of N runs.
 *
 * Modes of the harness (each row says which):
 *  - turbo: real time while the UART is idle, unthrottled while bytes move;
 *  - realtime: real time throughout (closest to a board's wall time).
 * Both model Optiboot's page erase/write time (4.5 ms each, as on silicon). */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "bench.h"
#include "peerflash/peerflash.h"
#include "peerflash/pf_avr.h"
#include "targets/avr_state.h" /* white-box: the driver's private state */
#include "peerflash/pf_posix.h"

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void sleep_ms(unsigned ms)
{
    struct timespec ts = {(time_t)(ms / 1000), (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

static pid_t start_sim(const pf_bench *b, const char *port, int realtime, const char *page_ms)
{
    char cli[4096];
    snprintf(cli, sizeof cli, "%s", pf_bench_cli(b));
    unlink(port);
    fflush(NULL); /* or the child's freopen would write our buffered table again */
    pid_t pid = fork();
    if (pid < 0)
        return -1;
    if (pid == 0) {
        prctl(PR_SET_PDEATHSIG, SIGTERM);
        if (!freopen("/dev/null", "w", stderr) || !freopen("/dev/null", "w", stdout))
            _exit(126);
        if (realtime)
            execl(cli, cli, "sim", "avr", "--port", port, "--page-write-ms", page_ms, "--realtime", (char *)NULL);
        else
            execl(cli, cli, "sim", "avr", "--port", port, "--page-write-ms", page_ms, (char *)NULL);
        _exit(127);
    }
    for (int i = 0; i < 1000; i++) { /* the pty link appears when it is ready */
        struct stat st;
        if (lstat(port, &st) == 0)
            return pid;
        if (waitpid(pid, NULL, WNOHANG) == pid)
            return -1;
        sleep_ms(10);
    }
    kill(pid, SIGKILL);
    waitpid(pid, NULL, 0);
    return -1;
}

static void stop_sim(pid_t pid)
{
    if (pid <= 0)
        return;
    kill(pid, SIGTERM);
    for (int i = 0; i < 500; i++) {
        if (waitpid(pid, NULL, WNOHANG) == pid)
            return;
        sleep_ms(10);
    }
    kill(pid, SIGKILL);
    waitpid(pid, NULL, 0);
}

/* Runs a shell command; returns its wall time in seconds, or NAN if it failed
 * (one retry: under load the simulator may stall and miss Optiboot's 1 s). */
static double timed(const char *cmd)
{
    for (int attempt = 0; attempt < 2; attempt++) {
        double t0 = now_s();
        int st = system(cmd);
        double secs = now_s() - t0;
        if (WIFEXITED(st) && WEXITSTATUS(st) == 0)
            return secs;
    }
    return NAN;
}

/* In-process (the CLI has no switch for it yet): the same image again with
 * the driver's read-compare, which reads each page and skips the write when
 * the flash already holds it. Returns the wall time or NAN. */
static double reflash_read_compare(const char *port, const char *bin_path, uint32_t *skipped, uint32_t *pages)
{
    static uint8_t img[32768];
    FILE *f = fopen(bin_path, "rb");
    if (!f)
        return NAN;
    size_t n = fread(img, 1, sizeof img, f);
    fclose(f);
    static pf_segment segs[2];
    static uint8_t arena[32768];
    static uint8_t buf[1024];
    for (int attempt = 0; attempt < 2; attempt++) {
        double t0 = now_s();
        pf_diag d = {0};
        pf_memmap map;
        pf_memmap_init(&map, segs, 2, arena, sizeof arena);
        if (pf_memmap_add(&map, 0, img, n, &d) || pf_memmap_finish(&map, &d))
            return NAN;
        pf_posix_link link;
        if (pf_posix_open(&link, port, &d) != 0)
            return NAN;
        pf_port p;
        pf_posix_port(&link, &p);
        static pf_avr avr;
        memset(&avr, 0, sizeof avr);
        pf_target_config cfg = PF_TARGET_CONFIG_DEFAULT();
        cfg.port = &p;
        cfg.diag = &d;
        pf_target t;
        memset(&t, 0, sizeof t);
        t.ops = &pf_target_avr;
        t.self = &avr;
        int r = pf_target_avr.open(&avr, &cfg);
        if (r == 0) {
            pf_avr_set_read_compare(&avr, 1);
            r = pf_target_avr.connect(&avr, &t.info);
        }
        pf_job_result res;
        if (r == 0) {
            pf_job_config jc = PF_JOB_CONFIG_DEFAULT();
            jc.buf = buf;
            jc.buf_size = sizeof buf;
            jc.diag = &d;
            jc.run_after = 1;
            r = pf_job_flash(&t, &map, &jc, &res);
        }
        pf_posix_close(&link);
        double secs = now_s() - t0;
        if (r == 0) {
            *skipped = avr.skipped_pages;
            *pages = (uint32_t)((n + 127) / 128);
            return secs;
        }
    }
    return NAN;
}

static void run_mode(pf_bench *b, int realtime, const char *page_ms, int reps)
{
    char port[96], hex[4096], ours[8192], theirs[8192];
    snprintf(port, sizeof port, "/tmp/pf-bench-avr-%d", (int)getpid());
    snprintf(hex, sizeof hex, "%s/avr/app_big.hex", b->exe_dir);
    if (access(hex, R_OK) != 0) {
        pf_bench_row(b, "avr", "30 KB write+verify (Optiboot in simavr)", NAN, "s", NAN,
                     "skipped: build/avr/app_big.hex missing (built with the tests)");
        return;
    }
    pid_t sim = start_sim(b, port, realtime, page_ms);
    if (sim < 0) {
        pf_bench_row(b, "avr", "30 KB write+verify (Optiboot in simavr)", NAN, "s", NAN,
                     "skipped: `peerflash sim avr` did not start");
        return;
    }
    snprintf(ours, sizeof ours, "timeout 120 %s flash --target avr --port %s -q %s >/dev/null 2>&1", pf_bench_cli(b),
             port, hex);
    snprintf(theirs, sizeof theirs,
             "timeout 120 avrdude -q -q -c arduino -p m328p -P %s -b 115200 -U flash:w:%s:i >/dev/null 2>&1", port,
             hex);
    double best_ours = NAN, best_theirs = NAN;
    for (int i = 0; i < reps; i++) { /* alternate, so both see the same load */
        double t = timed(ours);
        if (!isnan(t) && (isnan(best_ours) || t < best_ours))
            best_ours = t;
        t = timed(theirs);
        if (!isnan(t) && (isnan(best_theirs) || t < best_theirs))
            best_theirs = t;
    }
    uint32_t skipped = 0, pages = 0;
    double same = NAN;
    int page_model = strcmp(page_ms, "0") != 0;
    if (!realtime && page_model) {
        char bin[4096];
        snprintf(bin, sizeof bin, "%s/avr/app_big.bin", b->exe_dir);
        same = reflash_read_compare(port, bin, &skipped, &pages);
    }
    stop_sim(sim);
    unlink(port);
    char note[200];
    snprintf(note, sizeof note,
             "best of %d; whole command (connect+write+verify+run); peer: avrdude -c arduino; %s, page write %s",
             reps, realtime ? "harness in real time" : "harness real time when idle, unthrottled while bytes move",
             page_model ? "4.5 ms (as silicon)" : "instant (simavr's SPM)");
    char what[96];
    snprintf(what, sizeof what, "30 KB write+verify, Optiboot in simavr (%s%s)", realtime ? "realtime" : "turbo",
             page_model ? "" : ", no page time");
    pf_bench_row(b, "avr", what, best_ours, "s", best_theirs, note);
    if (!realtime && page_model) {
        snprintf(note, sizeof note,
                 "in-process driver with read-compare (%u of %u pages skipped), verify included; peer: avrdude, "
                 "which rewrites every page",
                 skipped, pages);
        pf_bench_row(b, "avr", "30 KB again, unchanged, read-compare (turbo)", same, "s", best_theirs, note);
    }
}

void pf_bench_avr(pf_bench *b)
{
    run_mode(b, 0, "4.5", b->quick ? 1 : 3);
    if (!b->quick) {
        run_mode(b, 0, "0", 2);
        run_mode(b, 1, "4.5", 2);
    }
}
