/* `peerflash wire` and `peerflash ports` as programs: the ready line, a
 * transfer, statistics as valid JSON at SIGTERM, --duration, --help, usage
 * errors; `ports` and `ports --json`. */
#include <signal.h>
#include <stdlib.h>

#include "pf_test.h"
#include "spawn_util.h"

#ifndef PF_CLI_PATH
#error "PF_CLI_PATH must name build/peerflash"
#endif

static char dir[64], pa[128], pb[128], stats[160], out[160];

/* Reads the child's stderr until a line containing want, or the deadline. */
static int wait_line(int fd, const char *want, double timeout_s, char *log, size_t cap)
{
    size_t have = strlen(log);
    double deadline = tw_now() + timeout_s;
    while (tw_now() < deadline) {
        if (strstr(log, want))
            return 1;
        struct pollfd p = {fd, POLLIN, 0};
        if (poll(&p, 1, 50) <= 0)
            continue;
        ssize_t r = read(fd, log + have, cap - 1 - have);
        if (r <= 0)
            break;
        have += (size_t)r;
        log[have] = '\0';
    }
    return strstr(log, want) != NULL;
}

static int run_status(char *const argv[], const char *outfile)
{
    pid_t pid = sp_start(argv, outfile, NULL);
    return pid > 0 ? sp_wait(pid, 30) : -1;
}

static void test_wire_process(void)
{
    char *argv[] = {PF_CLI_PATH, "wire", "--a", pa, "--b", pb, "--baud", "230400", "--latency-ms", "5", "--seed",
                    "3", "--stats", stats, NULL};
    int err_fd = -1;
    pid_t pid = sp_start(argv, NULL, &err_fd);
    REQUIRE(pid > 0);
    static char log[8192];
    log[0] = '\0';
    int ready = wait_line(err_fd, "8N1\n", 10, log, sizeof log); /* the end of the ready line */
    CHECK(ready);
    if (!ready) {
        fprintf(stderr, "wire said: %s\n", log);
        kill(pid, SIGKILL);
        sp_wait(pid, 5);
        close(err_fd);
        return;
    }
    CHECK_STR_CONTAINS(log, "wire: ready: A=");
    CHECK_STR_CONTAINS(log, "230400 baud 8N1");
    int fa = tw_open(pa, 230400), fb = tw_open(pb, 230400);
    CHECK(fa >= 0 && fb >= 0);
    enum { N = 2048 };
    static uint8_t tx[N], rx[N];
    tw_pattern(tx, N, 12);
    CHECK_EQ(tw_write_all(fa, tx, N, tw_now() + 10), N);
    CHECK_EQ(tw_read_n(fb, rx, N, tw_now() + 10, NULL), N);
    CHECK(memcmp(tx, rx, N) == 0);
    CHECK_EQ(write(fb, "ok", 2), 2);
    CHECK_EQ(tw_read_n(fa, rx, 2, tw_now() + 5, NULL), 2);
    close(fa);
    close(fb);
    CHECK_EQ(kill(pid, SIGTERM), 0);
    int st = sp_wait(pid, 10);
    CHECK_EQ(st, 0);
    wait_line(err_fd, "B->A", 2, log, sizeof log);
    close(err_fd);
    CHECK_STR_CONTAINS(log, "A->B: in 2048, out 2048");
    CHECK(access(pa, F_OK) != 0 && access(pb, F_OK) != 0); /* links removed at exit */
    /* the statistics file is valid JSON with the figures of this run */
    char *chk[] = {"python3", "-m", "json.tool", stats, NULL};
    CHECK_EQ(run_status(chk, out), 0);
    const char *js = sp_slurp(stats);
    CHECK_STR_CONTAINS(js, "\"a2b\": {\"bytes_in\": 2048, \"bytes_out\": 2048");
    CHECK_STR_CONTAINS(js, "\"b2a\": {\"bytes_in\": 2, \"bytes_out\": 2");
    CHECK_STR_CONTAINS(js, "\"baud\": 230400");
    CHECK_STR_CONTAINS(js, "\"latency_us\": 5000");
    CHECK_STR_CONTAINS(js, "\"opens\": {\"a\": 1, \"b\": 1}");
    unlink(stats);
}

static void test_wire_duration_and_usage(void)
{
    char *dur[] = {PF_CLI_PATH, "wire", "--a", pa, "--b", pb, "--duration", "0.3", "--quiet", NULL};
    double t0 = tw_now();
    CHECK_EQ(run_status(dur, out), 0);
    double t = tw_now() - t0;
    CHECK(t >= 0.3 && t < 10);
    CHECK_EQ(strlen(sp_slurp(out)), 0); /* --quiet */

    char *help[] = {PF_CLI_PATH, "wire", "--help", NULL};
    CHECK_EQ(run_status(help, out), 0);
    const char *h = sp_slurp(out);
    const char *opts[] = {"--a SPEC", "--baud N|follow", "--frame", "--latency-ms", "--flip", "--drop", "--burst",
                          "--cut-after", "--cut-mode", "--cut-dir", "--seed", "--no-open-propagation", "--autobaud",
                          "--stats", "--quiet", "--duration", "tcp-listen://PORT", "pty:PATH"};
    for (size_t i = 0; i < sizeof opts / sizeof opts[0]; i++)
        CHECK_STR_CONTAINS(h, opts[i]);

    char *bad1[] = {PF_CLI_PATH, "wire", "--a", pa, NULL};
    CHECK_EQ(run_status(bad1, out), 2);
    char *bad2[] = {PF_CLI_PATH, "wire", "--a", pa, "--b", pb, "--frame", "7O2", NULL};
    CHECK_EQ(run_status(bad2, out), 2);
    CHECK_STR_CONTAINS(sp_slurp(out), "--frame");
    char *bad3[] = {PF_CLI_PATH, "wire", "--a", pa, "--b", pb, "--burst", "100", NULL};
    CHECK_EQ(run_status(bad3, out), 2);
    char *bad4[] = {PF_CLI_PATH, "wire", "--a", pa, "--b", "tcp://127.0.0.1:1", NULL};
    CHECK_EQ(run_status(bad4, out), 4); /* nothing listens on port 1 */
    CHECK(access(pa, F_OK) != 0);       /* and side A's link was not left behind */
}

static void test_ports(void)
{
    char *ports[] = {PF_CLI_PATH, "ports", NULL};
    CHECK_EQ(run_status(ports, out), 0);
    CHECK(strlen(sp_slurp(out)) > 0); /* a list, or "no serial ports found" */
    snprintf(stats, sizeof stats, "%s/ports.json", dir);
    char *pj[] = {PF_CLI_PATH, "ports", "--json", NULL};
    CHECK_EQ(run_status(pj, stats), 0);
    CHECK_STR_CONTAINS(sp_slurp(stats), "\"ports\": [");
    char *chk[] = {"python3", "-m", "json.tool", stats, NULL};
    CHECK_EQ(run_status(chk, out), 0);
    char *bad[] = {PF_CLI_PATH, "ports", "--bogus", NULL};
    CHECK_EQ(run_status(bad, out), 2);
    unlink(stats);
}

int main(void)
{
    tw_tmpdir(dir, sizeof dir);
    snprintf(pa, sizeof pa, "%s/a", dir);
    snprintf(pb, sizeof pb, "%s/b", dir);
    snprintf(stats, sizeof stats, "%s/stats.json", dir);
    snprintf(out, sizeof out, "%s/out.txt", dir);
    signal(SIGPIPE, SIG_IGN);
    RUN(test_wire_process);
    RUN(test_wire_duration_and_usage);
    RUN(test_ports);
    unlink(stats);
    unlink(out);
    tw_rmdir(dir);
    return pf_test_summary();
}
