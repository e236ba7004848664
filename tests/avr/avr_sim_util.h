/* Helpers for the AVR tests: start and stop `peerflash sim avr` (the real
 * Optiboot in simavr), flash an image in-process with the avr driver and the
 * flash job, read the simulator's UART log and flash dump.
 *
 * Every wait has a deadline and a condition; nothing sleeps blindly. Under
 * load (2 shared cores) simavr may stall and miss Optiboot's 1 s window: the
 * helpers retry where a user would (re-open the port, which resets the chip). */
#ifndef PF_AVR_SIM_UTIL_H
#define PF_AVR_SIM_UTIL_H

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "peerflash/peerflash.h"
#include "peerflash/pf_avr.h"
#include "targets/avr_state.h" /* white-box: the driver's private state */
#include "peerflash/pf_posix.h"
#include "pf_test.h"

#ifndef PF_CLI
#error "PF_CLI (path of build/peerflash) must be defined"
#endif
#ifndef PF_AVR_DIR
#error "PF_AVR_DIR (build/avr, where Optiboot and the test apps are) must be defined"
#endif

#define AVR_FLASH_SIZE 32768u
#define AVR_BOOT_START 0x7E00u

typedef struct avr_sim {
    pid_t pid;
    char port[128];
    char uart_log[160];
    char dump[160];
    char err_log[160];
} avr_sim;

/* Every simulator started, so that none outlives the test (atexit), even
 * when a REQUIRE ends a test case early. The child also gets SIGTERM if the
 * test process dies (PR_SET_PDEATHSIG). */
static pid_t g_sim_pids[16];

static void sim_kill_all(void)
{
    for (int i = 0; i < 16; i++)
        if (g_sim_pids[i] > 0) {
            kill(g_sim_pids[i], SIGKILL);
            waitpid(g_sim_pids[i], NULL, 0);
            g_sim_pids[i] = 0;
        }
}

static void sim_track(pid_t pid, int add)
{
    static int registered;
    if (!registered) {
        atexit(sim_kill_all);
        registered = 1;
    }
    for (int i = 0; i < 16; i++)
        if (add ? g_sim_pids[i] == 0 : g_sim_pids[i] == pid) {
            g_sim_pids[i] = add ? pid : 0;
            return;
        }
}

static void msleep(unsigned ms)
{
    struct timespec ts = {(time_t)(ms / 1000), (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

/* Starts the simulator with extra options (NULL-terminated list); waits
 * (deadline 15 s) for its pty link to appear. Returns 0 or -1. */
static int sim_start(avr_sim *s, const char *tag, const char *const *extra)
{
    memset(s, 0, sizeof *s);
    snprintf(s->port, sizeof s->port, "/tmp/pf-avr-%s-%d", tag, (int)getpid());
    snprintf(s->uart_log, sizeof s->uart_log, "/tmp/pf-avr-%s-%d.uart", tag, (int)getpid());
    snprintf(s->dump, sizeof s->dump, "/tmp/pf-avr-%s-%d.flash", tag, (int)getpid());
    snprintf(s->err_log, sizeof s->err_log, "/tmp/pf-avr-%s-%d.log", tag, (int)getpid());
    unlink(s->port);
    unlink(s->uart_log);
    unlink(s->dump);
    const char *argv[32];
    int n = 0;
    argv[n++] = PF_CLI;
    argv[n++] = "sim";
    argv[n++] = "avr";
    argv[n++] = "--port";
    argv[n++] = s->port;
    argv[n++] = "--uart-log";
    argv[n++] = s->uart_log;
    argv[n++] = "--flash-dump";
    argv[n++] = s->dump;
    argv[n++] = "-v";
    for (int i = 0; extra && extra[i] && n < 31; i++)
        argv[n++] = extra[i];
    argv[n] = NULL;
    pid_t pid = fork();
    if (pid < 0)
        return -1;
    if (pid == 0) {
        prctl(PR_SET_PDEATHSIG, SIGTERM);
        int fd = open(s->err_log, O_WRONLY | O_CREAT | O_TRUNC, 0644);
        if (fd >= 0) {
            dup2(fd, 1);
            dup2(fd, 2);
        }
        execv(PF_CLI, (char *const *)argv);
        _exit(127);
    }
    s->pid = pid;
    sim_track(pid, 1);
    for (int i = 0; i < 1500; i++) { /* 15 s */
        struct stat st;
        if (lstat(s->port, &st) == 0)
            return 0;
        int status;
        if (waitpid(pid, &status, WNOHANG) == pid) {
            sim_track(pid, 0);
            s->pid = 0;
            fprintf(stderr, "sim avr exited early (status %d); its log %s\n", status, s->err_log);
            return -1;
        }
        msleep(10);
    }
    fprintf(stderr, "sim avr did not create %s within 15 s\n", s->port);
    return -1;
}

/* Starts `peerflash wire --a host --b dev [extra...]` (the link emulator),
 * waits for its host-side pty; returns its pid or -1. */
static inline pid_t wire_start(const char *host, const char *dev, const char *const *extra, const char *log)
{
    const char *argv[32];
    int n = 0;
    argv[n++] = PF_CLI;
    argv[n++] = "wire";
    argv[n++] = "--a";
    argv[n++] = host;
    argv[n++] = "--b";
    argv[n++] = dev;
    for (int i = 0; extra && extra[i] && n < 31; i++)
        argv[n++] = extra[i];
    argv[n] = NULL;
    unlink(host);
    pid_t pid = fork();
    if (pid < 0)
        return -1;
    if (pid == 0) {
        prctl(PR_SET_PDEATHSIG, SIGTERM);
        int fd = open(log, O_WRONLY | O_CREAT | O_APPEND, 0644);
        if (fd >= 0) {
            dup2(fd, 1);
            dup2(fd, 2);
        }
        execv(PF_CLI, (char *const *)argv);
        _exit(127);
    }
    sim_track(pid, 1);
    for (int i = 0; i < 1000; i++) {
        struct stat st;
        if (lstat(host, &st) == 0)
            return pid;
        if (waitpid(pid, NULL, WNOHANG) == pid) {
            sim_track(pid, 0);
            return -1;
        }
        msleep(10);
    }
    return pid;
}

/* Waits up to ms for a child to exit (SIGKILL after); returns its status. */
static inline int child_wait(pid_t pid, unsigned ms)
{
    int status = -1;
    for (unsigned i = 0; i < ms / 10; i++) {
        if (waitpid(pid, &status, WNOHANG) == pid) {
            sim_track(pid, 0);
            return status;
        }
        msleep(10);
    }
    kill(pid, SIGKILL);
    waitpid(pid, &status, 0);
    sim_track(pid, 0);
    return -1;
}

/* Runs a shell command, captures up to size-1 bytes of its output; returns
 * its exit status (or -1). */
static inline int run_capture(const char *cmd, char *out, size_t size)
{
    FILE *p = popen(cmd, "r");
    if (!p)
        return -1;
    size_t n = fread(out, 1, size - 1, p);
    out[n] = '\0';
    int st = pclose(p);
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

/* Stops the simulator (SIGTERM, it dumps flash; SIGKILL after 10 s). */
static int sim_stop(avr_sim *s)
{
    if (!s->pid)
        return -1;
    kill(s->pid, SIGTERM);
    int status = 0;
    for (int i = 0; i < 1000; i++) {
        if (waitpid(s->pid, &status, WNOHANG) == s->pid) {
            sim_track(s->pid, 0);
            s->pid = 0;
            return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
        }
        msleep(10);
    }
    kill(s->pid, SIGKILL);
    waitpid(s->pid, &status, 0);
    sim_track(s->pid, 0);
    s->pid = 0;
    return -1;
}

/* Stops the simulator and removes its files; when the test has failures
 * so far, prints the simulator's log first. */
static void sim_cleanup(avr_sim *s)
{
    if (s->pid)
        sim_stop(s);
    if (pf_test_failed) {
        char cmd[256];
        snprintf(cmd, sizeof cmd, "tail -n 40 %s >&2", s->err_log);
        fprintf(stderr, "--- simulator log %s:\n", s->err_log);
        if (system(cmd) != 0)
            fprintf(stderr, "(no log)\n");
    }
    unlink(s->port);
    unlink(s->uart_log);
    unlink(s->dump);
    unlink(s->err_log);
}

/* Reads a whole file into a malloc'd buffer; returns its size or -1. */
static long read_file(const char *path, uint8_t **out)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return -1;
    size_t cap = 4096, len = 0;
    uint8_t *buf = malloc(cap);
    for (;;) {
        if (len == cap)
            buf = realloc(buf, cap *= 2);
        size_t n = fread(buf + len, 1, cap - len, f);
        if (n == 0)
            break;
        len += n;
    }
    fclose(f);
    *out = buf;
    return (long)len;
}

static uint16_t crc16_ccitt(const uint8_t *d, size_t n)
{
    uint16_t crc = 0xFFFF;
    for (size_t i = 0; i < n; i++) {
        crc ^= (uint16_t)(d[i] << 8);
        for (int b = 0; b < 8; b++)
            crc = (crc & 0x8000) ? (uint16_t)((crc << 1) ^ 0x1021) : (uint16_t)(crc << 1);
    }
    return crc;
}

/* The line the test application prints for this image. */
static void expected_line(const uint8_t *img, size_t n, unsigned seed, char *out, size_t size)
{
    snprintf(out, size, "PFAPP seed=%u len=%zu crc=%04X", seed, n, crc16_ccitt(img, n));
}

/* Waits (deadline ms) until the UART log holds `want` as the LAST PFAPP line
 * printed. Returns 1 when found; *last (if given) gets that last line. */
static inline int wait_uart_line(const avr_sim *s, const char *want, unsigned deadline_ms, char *last, size_t last_size)
{
    for (unsigned waited = 0;; waited += 20) {
        uint8_t *buf = NULL;
        long n = read_file(s->uart_log, &buf);
        int found = 0;
        if (n > 0) {
            buf = realloc(buf, (size_t)n + 1);
            buf[n] = '\0';
            char *line = NULL;
            for (char *p = (char *)buf; (p = strstr(p, "PFAPP")) != NULL; p++)
                line = p;
            if (line) {
                char *end = strpbrk(line, "\r\n");
                if (end) {
                    *end = '\0';
                    if (last)
                        snprintf(last, last_size, "%s", line);
                    found = strcmp(line, want) == 0;
                }
            }
        }
        free(buf);
        if (found)
            return 1;
        if (waited >= deadline_ms)
            return 0;
        msleep(20);
    }
}

/* A port wrapper that injects faults: a cut after `cut_after` bytes written
 * (the link closes: writes and reads fail), and bit flips at a rate of
 * 1 / flip_every bytes in both directions, from a seed. */
typedef struct fault_port {
    pf_port inner;
    pf_port outer;
    unsigned long cut_after; /* 0 = never */
    unsigned long written;
    unsigned flip_every;     /* 0 = never */
    uint32_t rng;
    unsigned long flips;
    int cut;
} fault_port;

static uint32_t fp_rand(fault_port *f)
{
    f->rng ^= f->rng << 13;
    f->rng ^= f->rng >> 17;
    f->rng ^= f->rng << 5;
    return f->rng;
}

static void fp_maybe_flip(fault_port *f, uint8_t *b, size_t n)
{
    if (!f->flip_every)
        return;
    for (size_t i = 0; i < n; i++)
        if (fp_rand(f) % f->flip_every == 0) {
            b[i] ^= (uint8_t)(1u << (fp_rand(f) % 8));
            f->flips++;
        }
}

static int fp_read(void *ctx, uint8_t *buf, size_t n, uint32_t timeout_ms)
{
    fault_port *f = ctx;
    if (f->cut)
        return PF_ERR_CLOSED;
    int r = f->inner.read(f->inner.ctx, buf, n, timeout_ms);
    if (r > 0)
        fp_maybe_flip(f, buf, (size_t)r);
    return r;
}

static int fp_write(void *ctx, const uint8_t *buf, size_t n)
{
    fault_port *f = ctx;
    if (f->cut)
        return PF_ERR_CLOSED;
    size_t allow = n;
    if (f->cut_after && f->written + n > f->cut_after)
        allow = f->cut_after - f->written;
    uint8_t tmp[512];
    size_t done = 0;
    while (done < allow) {
        size_t k = allow - done < sizeof tmp ? allow - done : sizeof tmp;
        memcpy(tmp, buf + done, k);
        fp_maybe_flip(f, tmp, k);
        int r = pf_port_write_all(&f->inner, tmp, k);
        if (r < 0)
            return r;
        done += k;
    }
    f->written += allow;
    if (allow < n) {
        f->cut = 1;
        return PF_ERR_CLOSED;
    }
    return (int)n;
}

static int fp_flush(void *ctx)
{
    fault_port *f = ctx;
    return f->inner.flush_input ? f->inner.flush_input(f->inner.ctx) : PF_OK;
}

static int fp_set_line(void *ctx, uint32_t baud, pf_frame frame)
{
    fault_port *f = ctx;
    return f->inner.set_line ? f->inner.set_line(f->inner.ctx, baud, frame) : PF_ERR_UNSUPPORTED;
}

static int fp_set_lines(void *ctx, int dtr, int rts)
{
    fault_port *f = ctx;
    return f->inner.set_lines ? f->inner.set_lines(f->inner.ctx, dtr, rts) : PF_ERR_UNSUPPORTED;
}

static uint32_t fp_now(void *ctx)
{
    fault_port *f = ctx;
    return f->inner.now_ms(f->inner.ctx);
}

static void fp_delay(void *ctx, uint32_t ms)
{
    fault_port *f = ctx;
    f->inner.delay_ms(f->inner.ctx, ms);
}

static void fault_port_init(fault_port *f, const pf_port *inner, unsigned long cut_after, unsigned flip_every,
                            uint32_t seed)
{
    memset(f, 0, sizeof *f);
    f->inner = *inner;
    f->cut_after = cut_after;
    f->flip_every = flip_every;
    f->rng = seed ? seed : 1;
    f->outer.ctx = f;
    f->outer.read = fp_read;
    f->outer.write = fp_write;
    f->outer.flush_input = fp_flush;
    f->outer.set_line = fp_set_line;
    f->outer.set_lines = fp_set_lines;
    f->outer.now_ms = fp_now;
    f->outer.delay_ms = fp_delay;
}

typedef struct flash_opts {
    const char *chip;
    uint32_t baud;
    int read_compare;
    int verify;
    int run;
    uint32_t addr;
    unsigned long cut_after; /* fault injection (0 = none) */
    unsigned flip_every;
    uint32_t seed;
    uint32_t sync_timeout_ms;
} flash_opts;

#define FLASH_OPTS_DEFAULT() {NULL, 0, 0, 1, 1, 0, 0, 0, 1, 0}

typedef struct flash_outcome {
    int rc;
    pf_diag diag;
    pf_job_result res;
    pf_target_info info;
    uint32_t skipped_pages;
    int connected;
    unsigned long flips;
    unsigned long written; /* bytes sent before a cut */
} flash_outcome;

/* One attempt: open the port (the simulator resets the chip), connect,
 * run the flash job over [addr, addr+n) of img. */
static int flash_once(const char *port_path, const uint8_t *img, size_t n, const flash_opts *o, flash_outcome *out)
{
    memset(out, 0, sizeof *out);
    pf_posix_link link;
    int r = pf_posix_open(&link, port_path, &out->diag);
    if (r < 0)
        return out->rc = r;
    pf_port real;
    pf_posix_port(&link, &real);
    fault_port fp;
    fault_port_init(&fp, &real, o->cut_after, o->flip_every, o->seed);
    const pf_port *port = (o->cut_after || o->flip_every) ? &fp.outer : &real;

    static pf_avr avr;
    memset(&avr, 0, sizeof avr);
    pf_target_config cfg = PF_TARGET_CONFIG_DEFAULT();
    cfg.port = port;
    cfg.diag = &out->diag;
    cfg.chip = o->chip;
    cfg.baud = o->baud;
    pf_target t;
    memset(&t, 0, sizeof t);
    t.ops = &pf_target_avr;
    t.self = &avr;
    r = pf_target_avr.open(&avr, &cfg);
    if (r == 0) {
        pf_avr_set_read_compare(&avr, o->read_compare);
        avr.sync_timeout_ms = o->sync_timeout_ms;
        r = pf_target_avr.connect(&avr, &t.info);
    }
    if (r == 0) {
        out->connected = 1;
        out->info = t.info;
        static pf_segment segs[4];
        static uint8_t arena[AVR_FLASH_SIZE];
        pf_memmap map;
        pf_memmap_init(&map, segs, 4, arena, sizeof arena);
        r = pf_memmap_add(&map, o->addr, img, n, &out->diag);
        if (r == 0)
            r = pf_memmap_finish(&map, &out->diag);
        static uint8_t buf[1024];
        pf_job_config jc = PF_JOB_CONFIG_DEFAULT();
        jc.verify = o->verify;
        jc.run_after = o->run;
        jc.buf = buf;
        jc.buf_size = sizeof buf;
        jc.diag = &out->diag;
        jc.clock = port;
        if (r == 0)
            r = pf_job_flash(&t, &map, &jc, &out->res);
    }
    out->skipped_pages = avr.skipped_pages;
    out->flips = fp.flips;
    out->written = fp.written;
    pf_target_avr.close(&avr);
    pf_posix_close(&link);
    return out->rc = r;
}

/* Retries (up to `tries`) failures a stalled simulator causes: no sync or a
 * timeout. Other failures are returned at once. */
static inline int flash_retry(const char *port_path, const uint8_t *img, size_t n, const flash_opts *o, flash_outcome *out,
                       int tries)
{
    int r = 0;
    for (int i = 0; i < tries; i++) {
        r = flash_once(port_path, img, n, o, out);
        if (r != PF_ERR_NO_SYNC && r != PF_ERR_TIMEOUT)
            return r;
        fprintf(stderr, "  (attempt %d: %s; retrying, as a user would)\n", i + 1, out->diag.text);
    }
    return r;
}

/* Reads a file into buf (at most cap bytes); returns its size or -1. No
 * allocation, so a REQUIRE that ends a test early leaks nothing. */
static long read_into(const char *path, uint8_t *buf, size_t cap)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return -1;
    size_t n = fread(buf, 1, cap, f);
    fclose(f);
    return (long)n;
}

/* Loads build/avr/<name>.bin into a static slot (valid until exit). */
static long load_app(const char *name, uint8_t **img)
{
    static struct {
        char name[32];
        long n;
        uint8_t data[AVR_FLASH_SIZE];
    } pool[4];
    for (int i = 0; i < 4; i++) {
        if (pool[i].name[0] && strcmp(pool[i].name, name) == 0) {
            *img = pool[i].data;
            return pool[i].n;
        }
        if (!pool[i].name[0]) {
            char path[256];
            snprintf(path, sizeof path, "%s/%s.bin", PF_AVR_DIR, name);
            long n = read_into(path, pool[i].data, sizeof pool[i].data);
            if (n <= 0) {
                fprintf(stderr, "cannot read %s (built by tests/avr/CMakeLists.txt)\n", path);
                return -1;
            }
            snprintf(pool[i].name, sizeof pool[i].name, "%s", name);
            pool[i].n = n;
            *img = pool[i].data;
            return n;
        }
    }
    return -1;
}

/* The simulator's flash dump, into a static buffer. */
static inline long read_dump(const avr_sim *s, uint8_t **dump)
{
    static uint8_t buf[AVR_FLASH_SIZE + 1];
    *dump = buf;
    return read_into(s->dump, buf, sizeof buf);
}

#endif
