/* STM32 (AN3155): 64 KiB write+verify at 115200 8E1 into the simulated ROM
 * through the link emulator (peerflash wire --baud 115200 --frame 8E1),
 * peerflash's driver and job against Debian's stm32flash, same simulator
 * settings, same run. The simulator models programming (7 ms per 256 bytes),
 * page erase (20 ms per 2 KiB) and, for the latency rows, a USB-serial
 * adapter's 16 ms latency timer on every byte it sends to the host; the
 * wire gives both directions their line time (11 bits per byte). */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "bench.h"
#include "peerflash/peerflash.h"
#include "peerflash/pf_posix.h"
#include "peerflash/pf_stm32.h"
#include "targets/stm32_state.h" /* white-box: the driver's private state */

static double now_s(void) { return (double)pf_posix_now_us() / 1e6; }

typedef struct bsim {
    pid_t pid, wire;
    char dir[64], dev[96], host[96], flash[96], wlog[96];
} bsim;

static int bsim_start(pf_bench *b, bsim *s, const char *chip, unsigned latency_ms)
{
    snprintf(s->dir, sizeof s->dir, "/tmp/pf-bench-stm32-XXXXXX");
    if (!mkdtemp(s->dir))
        return -1;
    snprintf(s->dev, sizeof s->dev, "%s/dev", s->dir);
    snprintf(s->flash, sizeof s->flash, "%s/flash.bin", s->dir);
    snprintf(s->host, sizeof s->host, "%s/host", s->dir);
    snprintf(s->wlog, sizeof s->wlog, "%s/wire.log", s->dir);
    s->wire = 0;
    char lat[16];
    snprintf(lat, sizeof lat, "%u", latency_ms);
    s->pid = fork();
    if (s->pid == 0) {
        int null = open("/dev/null", O_WRONLY);
        dup2(null, 2);
        execl(pf_bench_cli(b), "peerflash", "sim", "stm32", "--port", s->dev, "--chip", chip, "--flash", s->flash,
              "--program-us-per-256", "7000", "--erase-ms-per-page", "20", "--reply-latency-ms", lat, (char *)NULL);
        _exit(127);
    }
    int up = 0;
    for (int i = 0; i < 200 && !up; i++) {
        up = access(s->dev, F_OK) == 0;
        struct timespec ts = {0, 20 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
    if (!up)
        return -1;
    char a[120];
    snprintf(a, sizeof a, "pty:%s", s->host);
    s->wire = fork();
    if (s->wire == 0) {
        int log = open(s->wlog, O_WRONLY | O_CREAT | O_TRUNC, 0644);
        dup2(log, 2);
        execl(pf_bench_cli(b), "peerflash", "wire", "--a", a, "--b", s->dev, "--baud", "115200", "--frame", "8E1",
              "--no-open-propagation", (char *)NULL);
        _exit(127);
    }
    for (int i = 0; i < 200; i++) {
        if (access(s->host, F_OK) == 0)
            return 0;
        struct timespec ts = {0, 20 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
    return -1;
}

static void bsim_stop(bsim *s)
{
    if (s->wire > 0) {
        kill(s->wire, SIGTERM);
        waitpid(s->wire, NULL, 0);
    }
    if (s->pid > 0) {
        kill(s->pid, SIGTERM);
        waitpid(s->pid, NULL, 0);
    }
    unlink(s->flash);
    unlink(s->dev);
    unlink(s->host);
    unlink(s->wlog);
    rmdir(s->dir);
}

static int same_as(const char *path, const uint8_t *img, size_t n)
{
    static uint8_t buf[256 * 1024];
    FILE *f = fopen(path, "rb");
    if (!f)
        return 0;
    size_t got = fread(buf, 1, n, f);
    fclose(f);
    return got == n && memcmp(buf, img, n) == 0;
}

/* peerflash: connect, flash with the job's defaults (erase touched, verify). */
static double run_peerflash(const char *dev, const uint8_t *img, size_t n, char *method, size_t msz)
{
    static pf_segment segs[2];
    static uint8_t arena[256 * 1024];
    static uint8_t buf[1024];
    pf_posix_link link;
    pf_diag d = {0};
    double t0 = now_s();
    if (pf_posix_open(&link, dev, &d) < 0)
        return -1;
    pf_port port;
    pf_posix_port(&link, &port);
    pf_stm32 drv;
    pf_target_config tc = PF_TARGET_CONFIG_DEFAULT();
    tc.port = &port;
    tc.diag = &d;
    tc.baud = 115200;
    tc.reset = "none";
    pf_target t;
    memset(&t, 0, sizeof t);
    t.ops = &pf_target_stm32;
    t.self = &drv;
    int r = pf_target_stm32.open(&drv, &tc);
    if (r == 0)
        r = pf_target_stm32.connect(&drv, &t.info);
    pf_memmap map;
    pf_memmap_init(&map, segs, 2, arena, sizeof arena);
    if (r == 0)
        r = pf_memmap_add(&map, 0x08000000, img, n, &d);
    if (r == 0)
        r = pf_memmap_finish(&map, &d);
    pf_job_config jc = PF_JOB_CONFIG_DEFAULT();
    jc.buf = buf;
    jc.buf_size = sizeof buf;
    jc.diag = &d;
    pf_job_result res;
    if (r == 0)
        r = pf_job_flash(&t, &map, &jc, &res);
    double dt = now_s() - t0;
    pf_target_stm32.close(&drv);
    pf_posix_close(&link);
    if (r < 0) {
        fprintf(stderr, "bench stm32: peerflash failed: %s\n", d.text);
        return -1;
    }
    snprintf(method, msz, "%s", res.verify_method);
    return dt;
}

static double run_stm32flash(const char *dev, const char *fw)
{
    double t0 = now_s();
    pid_t p = fork();
    if (p == 0) {
        int null = open("/dev/null", O_WRONLY);
        dup2(null, 1);
        dup2(null, 2);
        execlp("timeout", "timeout", "300", "stm32flash", "-b", "0", "-w", fw, "-v", dev, (char *)NULL);
        _exit(127);
    }
    int st = 0;
    waitpid(p, &st, 0);
    double dt = now_s() - t0;
    return WIFEXITED(st) && WEXITSTATUS(st) == 0 ? dt : -1;
}

static void one(pf_bench *b, const char *chip, unsigned latency_ms, const uint8_t *img, size_t n, const char *fw)
{
    bsim s;
    char method[32] = "?";
    double ours = -1, peer = -1;
    if (bsim_start(b, &s, chip, latency_ms) == 0) {
        ours = run_peerflash(s.host, img, n, method, sizeof method);
        if (ours > 0 && !same_as(s.flash, img, n))
            ours = -1;
    }
    bsim_stop(&s);
    if (bsim_start(b, &s, chip, latency_ms) == 0) {
        peer = run_stm32flash(s.host, fw);
        if (peer > 0 && !same_as(s.flash, img, n))
            peer = -1;
    }
    bsim_stop(&s);
    char what[96], note[200];
    snprintf(what, sizeof what, "%zu KiB write+verify, %s, %u ms reply latency", n / 1024, chip, latency_ms);
    snprintf(note, sizeof note,
             "peerflash wire 115200 8E1; sim: 7 ms/256 B program, 20 ms/2 KiB erase, latency on replies; "
             "ours: verify by %s; peer: stm32flash -b 0 -w -v",
             method);
    if (ours < 0 || peer < 0)
        snprintf(note, sizeof note, "FAILED (%s)", ours < 0 ? "peerflash" : "stm32flash");
    pf_bench_row(b, "stm32", what, ours < 0 ? NAN : ours, "s", peer < 0 ? NAN : peer, note);
}

void pf_bench_stm32(pf_bench *b)
{
    size_t n = b->quick ? 16 * 1024 : 64 * 1024;
    static uint8_t img[64 * 1024];
    uint32_t x = 12345;
    for (size_t i = 0; i < n; i++) {
        x = x * 1103515245u + 12345u;
        img[i] = (uint8_t)(x >> 16);
    }
    char fw[] = "/tmp/pf-bench-stm32-fw-XXXXXX";
    int fd = mkstemp(fw);
    if (fd < 0 || write(fd, img, n) != (ssize_t)n) {
        fprintf(stderr, "bench stm32: cannot write %s\n", fw);
        return;
    }
    close(fd);
    /* G0: the ROM has Get Checksum, verify needs no read-back. */
    one(b, "G07xxB", 0, img, n, fw);
    one(b, "G07xxB", 16, img, n, fw);
    /* F1: no Get Checksum, both tools read back. */
    one(b, "F103xB", 0, img, n, fw);
    if (!b->quick)
        one(b, "F103xB", 16, img, n, fw);
    unlink(fw);
}
