/* Link emulator: how closely the delivered byte rate matches the configured
 * line rate (8N1: baud / 10 bytes per second), measured end to end through
 * two ptys, from the first byte written to the last byte read. */
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#include "bench.h"
#include "wire.h"

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

static int open_raw(const char *path)
{
    int fd = open(path, O_RDWR | O_NOCTTY | O_NONBLOCK | O_CLOEXEC);
    if (fd < 0)
        return -1;
    struct termios t;
    tcgetattr(fd, &t);
    cfmakeraw(&t);
    tcsetattr(fd, TCSANOW, &t);
    return fd;
}

typedef struct writer {
    int fd;
    const uint8_t *buf;
    size_t n;
    double t_first, deadline;
} writer;

static void *write_all(void *arg)
{
    writer *wr = arg;
    size_t done = 0;
    wr->t_first = now_s();
    while (done < wr->n && now_s() < wr->deadline) {
        ssize_t r = write(wr->fd, wr->buf + done, wr->n - done);
        if (r > 0) {
            done += (size_t)r;
            continue;
        }
        struct pollfd p = {wr->fd, POLLOUT, 0};
        poll(&p, 1, 20);
    }
    return NULL;
}

/* Seconds for n bytes A->B at baud, or -1. */
static double measure(uint32_t baud, size_t n)
{
    char dir[] = "/tmp/pfwire-bench-XXXXXX", pa[64], pb[64];
    if (!mkdtemp(dir))
        return -1;
    snprintf(pa, sizeof pa, "%s/a", dir);
    snprintf(pb, sizeof pb, "%s/b", dir);
    pf_wire_config cfg = PF_WIRE_CONFIG_DEFAULT();
    cfg.a = pa;
    cfg.b = pb;
    cfg.baud = baud;
    pf_wire *w = NULL;
    double result = -1;
    if (pf_wire_open(&w, &cfg, NULL) != 0 || pf_wire_start(w) != 0) {
        pf_wire_close(w);
        rmdir(dir);
        return -1;
    }
    int fa = open_raw(pa), fb = open_raw(pb);
    uint8_t *tx = malloc(n), *rx = malloc(n);
    if (fa >= 0 && fb >= 0 && tx && rx) {
        for (size_t i = 0; i < n; i++)
            tx[i] = (uint8_t)(i * 31 + 7);
        double expect = (double)n * 10 / baud;
        writer wr = {fa, tx, n, 0, now_s() + expect * 3 + 10};
        pthread_t th;
        pthread_create(&th, NULL, write_all, &wr);
        size_t got = 0;
        double t_last = 0;
        while (got < n && now_s() < wr.deadline) {
            struct pollfd p = {fb, POLLIN, 0};
            if (poll(&p, 1, 100) <= 0)
                continue;
            ssize_t r = read(fb, rx + got, n - got);
            if (r > 0) {
                got += (size_t)r;
                t_last = now_s();
            }
        }
        pthread_join(th, NULL);
        if (got == n && !memcmp(tx, rx, n))
            result = t_last - wr.t_first;
    }
    free(tx);
    free(rx);
    if (fa >= 0)
        close(fa);
    if (fb >= 0)
        close(fb);
    pf_wire_close(w);
    rmdir(dir);
    return result;
}

void pf_bench_wire(pf_bench *b)
{
    static const struct {
        uint32_t baud;
        size_t n, quick_n;
    } runs[] = {{115200, 65536, 16384}, {921600, 524288, 131072}};
    for (size_t i = 0; i < sizeof runs / sizeof runs[0]; i++) {
        size_t n = b->quick ? runs[i].quick_n : runs[i].n;
        double line = runs[i].baud / 10.0;
        double t = measure(runs[i].baud, n);
        char what[64], note[160];
        snprintf(what, sizeof what, "byte rate at %u 8N1, %zu KiB A->B", runs[i].baud, n / 1024);
        if (t <= 0) {
            pf_bench_row(b, "wire", what, NAN, "B/s", NAN, "transfer failed");
            continue;
        }
        double rate = n / t;
        double err = (rate - line) / line * 100;
        snprintf(note, sizeof note, "line rate %.0f B/s; first byte written to last read, two ptys", line);
        pf_bench_row(b, "wire", what, rate, "B/s", NAN, note);
        snprintf(what, sizeof what, "rate error at %u 8N1", runs[i].baud);
        snprintf(note, sizeof note, "(achieved - line) / line; %.4f s for %zu bytes", t, n);
        pf_bench_row(b, "wire", what, err, "%", NAN, note);
    }
}
