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

static pid_t start_sim(const pf_bench *b, const char *port, int realtime)
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
            execl(cli, cli, "sim", "avr", "--port", port, "--page-write-ms", "4.5", "--realtime", (char *)NULL);
        else
            execl(cli, cli, "sim", "avr", "--port", port, "--page-write-ms", "4.5", (char *)NULL);
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
        double t = now_s() - t0;
        if (WIFEXITED(st) && WEXITSTATUS(st) == 0)
            return t;
    }
    return NAN;
}

static void run_mode(pf_bench *b, int realtime, int reps)
{
    char port[96], hex[4096], ours[8192], theirs[8192];
    snprintf(port, sizeof port, "/tmp/pf-bench-avr-%d", (int)getpid());
    snprintf(hex, sizeof hex, "%s/avr/app_big.hex", b->exe_dir);
    if (access(hex, R_OK) != 0) {
        pf_bench_row(b, "avr", "30 KB write+verify (Optiboot in simavr)", NAN, "s", NAN,
                     "skipped: build/avr/app_big.hex missing (built with the tests)");
        return;
    }
    pid_t sim = start_sim(b, port, realtime);
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
    stop_sim(sim);
    unlink(port);
    char note[200];
    snprintf(note, sizeof note,
             "best of %d; whole command (connect+write+verify+run); peer: avrdude -c arduino; %s, page write 4.5 ms",
             reps, realtime ? "harness in real time" : "harness real time when idle, unthrottled while bytes move");
    pf_bench_row(b, "avr", realtime ? "30 KB write+verify, Optiboot in simavr (realtime)"
                                    : "30 KB write+verify, Optiboot in simavr (turbo)",
                 best_ours, "s", best_theirs, note);
}

void pf_bench_avr(pf_bench *b)
{
    run_mode(b, 0, b->quick ? 1 : 3);
    if (!b->quick)
        run_mode(b, 1, 2);
}
