/* Helpers for the link emulator tests: temporary folders, raw pty slaves,
 * timed transfers through a wire running in a thread of the test. */
#ifndef PF_TESTS_WIRE_UTIL_H
#define PF_TESTS_WIRE_UTIL_H

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#include "posix/endpoint.h"
#include "wire.h"

/* Creates a wire between specs a and b and runs it in its thread; NULL
 * (with the reason on stderr) if either fails. */
static inline pf_wire *tw_start(pf_wire_config *cfg, const char *a, const char *b)
{
    cfg->a = a;
    cfg->b = b;
    pf_wire *w = NULL;
    pf_diag d = {0};
    if (pf_wire_open(&w, cfg, &d) != 0) {
        fprintf(stderr, "pf_wire_open: %s\n", d.text);
        return NULL;
    }
    if (pf_wire_start(w) != 0) {
        pf_wire_close(w);
        return NULL;
    }
    return w;
}

static inline double tw_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

/* A fresh folder for the symlinks, removed by tw_rmdir. */
static inline void tw_tmpdir(char *out, size_t size)
{
    snprintf(out, size, "/tmp/pfwire-XXXXXX");
    if (!mkdtemp(out)) {
        perror("mkdtemp");
        exit(2);
    }
}

static inline void tw_rmdir(const char *dir)
{
    rmdir(dir);
}

/* Opens a pty/tty path raw at the given rate (0: leave the rate), non-blocking. */
static inline int tw_open(const char *path, uint32_t baud)
{
    int fd = open(path, O_RDWR | O_NOCTTY | O_NONBLOCK | O_CLOEXEC);
    if (fd < 0)
        return -1;
    struct termios t;
    tcgetattr(fd, &t);
    cfmakeraw(&t);
    if (baud) {
        speed_t sp = (speed_t)pf_endpoint_baud_to_speed(baud);
        cfsetispeed(&t, sp);
        cfsetospeed(&t, sp);
    }
    tcsetattr(fd, TCSANOW, &t);
    return fd;
}

static inline int tw_set_rate(int fd, uint32_t baud)
{
    struct termios t;
    if (tcgetattr(fd, &t) != 0)
        return -1;
    speed_t sp = (speed_t)pf_endpoint_baud_to_speed(baud);
    cfsetispeed(&t, sp);
    cfsetospeed(&t, sp);
    return tcsetattr(fd, TCSANOW, &t);
}

/* Writes all of buf (polling), until the deadline. Returns bytes written. */
static inline size_t tw_write_all(int fd, const uint8_t *buf, size_t n, double deadline)
{
    size_t done = 0;
    while (done < n && tw_now() < deadline) {
        ssize_t r = write(fd, buf + done, n - done);
        if (r > 0) {
            done += (size_t)r;
            continue;
        }
        if (r < 0 && errno != EAGAIN && errno != EINTR)
            break;
        struct pollfd p = {fd, POLLOUT, 0};
        poll(&p, 1, 20);
    }
    return done;
}

/* Reads until n bytes arrived or the deadline; *t_last gets the time of the last byte. */
static inline size_t tw_read_n(int fd, uint8_t *buf, size_t n, double deadline, double *t_last)
{
    size_t got = 0;
    while (got < n) {
        double left = deadline - tw_now();
        if (left <= 0)
            break;
        struct pollfd p = {fd, POLLIN, 0};
        int ms = (int)(left * 1000) + 1;
        if (poll(&p, 1, ms > 100 ? 100 : ms) <= 0)
            continue;
        ssize_t r = read(fd, buf + got, n - got);
        if (r > 0) {
            got += (size_t)r;
            if (t_last)
                *t_last = tw_now();
        } else if (r == 0 || (errno != EAGAIN && errno != EINTR)) {
            break;
        }
    }
    return got;
}

/* Reads whatever arrives until the line has been quiet for quiet_s (or the deadline). */
static inline size_t tw_read_quiet(int fd, uint8_t *buf, size_t cap, double quiet_s, double deadline)
{
    size_t got = 0;
    double last = tw_now();
    while (tw_now() < deadline && tw_now() - last < quiet_s) {
        struct pollfd p = {fd, POLLIN, 0};
        if (poll(&p, 1, 10) <= 0)
            continue;
        ssize_t r = read(fd, buf + got, cap - got);
        if (r > 0) {
            got += (size_t)r;
            last = tw_now();
            if (got == cap)
                break;
        } else if (r == 0 || (errno != EAGAIN && errno != EINTR)) {
            break;
        }
    }
    return got;
}

typedef struct tw_writer {
    int fd;
    const uint8_t *buf;
    size_t n;
    double deadline;
    double t_first;
    size_t written;
    pthread_t th;
} tw_writer;

static inline void *tw_writer_main(void *arg)
{
    tw_writer *wr = arg;
    wr->t_first = tw_now();
    wr->written = tw_write_all(wr->fd, wr->buf, wr->n, wr->deadline);
    return NULL;
}

static inline void tw_writer_start(tw_writer *wr, int fd, const uint8_t *buf, size_t n, double deadline)
{
    wr->fd = fd;
    wr->buf = buf;
    wr->n = n;
    wr->deadline = deadline;
    wr->written = 0;
    pthread_create(&wr->th, NULL, tw_writer_main, wr);
}

static inline void tw_writer_join(tw_writer *wr)
{
    pthread_join(wr->th, NULL);
}

/* Waits (polling the statistics) until cond(st, arg) holds or the deadline. */
static inline int tw_wait_stats(pf_wire *w, int (*cond)(const pf_wire_stats *, long), long arg, double timeout_s)
{
    double deadline = tw_now() + timeout_s;
    pf_wire_stats st;
    for (;;) {
        pf_wire_get_stats(w, &st);
        if (cond(&st, arg))
            return 1;
        if (tw_now() > deadline)
            return 0;
        struct timespec ts = {0, 2000000};
        nanosleep(&ts, NULL);
    }
}

static inline void tw_pattern(uint8_t *buf, size_t n, uint32_t seed)
{
    uint32_t x = seed * 2654435761u + 1;
    for (size_t i = 0; i < n; i++) {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        buf[i] = (uint8_t)x;
    }
}

#endif
