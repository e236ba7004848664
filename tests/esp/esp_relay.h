/* A small byte relay between two ptys for the ESP tests and benchmark, used
 * while the link emulator (`peerflash wire`) is not on main: it delivers
 * each direction at the line rate the SENDING side's termios holds (so a
 * CHANGE_BAUDRATE is followed, like `wire --baud follow`), 10 bits per byte
 * (8N1), and injects faults from a seed: bit flips at a rate, or a cut of
 * the link after N bytes from the host, or loses what is sent above a rate
 * (a cable or level shifter that cannot carry it). One thread per direction. */
#ifndef PEERFLASH_TEST_ESP_RELAY_H
#define PEERFLASH_TEST_ESP_RELAY_H

#include <poll.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#include "peerflash/pf_posix.h"
#include "posix/endpoint.h"

typedef struct esp_relay_dir {
    struct esp_relay *r;
    int from_fd, to_fd;
    int rate_fd;          /* whose termios gives the rate */
    uint64_t bytes;
    uint32_t flips;
    pthread_t th;
} esp_relay_dir;

typedef struct esp_relay {
    pf_posix_link host;   /* pty:PATH the host opens */
    pf_posix_link dev;    /* the simulator's pty path, opened */
    int rate_model;       /* 0: as fast as the ptys go */
    double flip_rate;     /* probability per byte of one flipped bit (both directions) */
    int flip_host_only;   /* flip_rate applies to host->device bytes only */
    uint64_t cut_after;   /* host->device bytes after which the link is cut (0 = never) */
    uint64_t flip_at;     /* host->device: flip bit 0 of the byte at this count (1-based), or of the
                           * next one that stays clear of SLIP's C0/DB, to damage one frame's data */
    uint64_t flip_every;  /* then again every this many host->device bytes (0 = once) */
    uint32_t seed;
    uint32_t fixed_baud;  /* host side on TCP: this rate both ways (no termios there) */
    uint32_t max_baud;    /* a link that cannot carry more: bytes sent faster than this are lost ... */
    unsigned max_dirs;    /* ... in these directions (bit 0 host->device, bit 1 device->host) */
    volatile int stop;
    volatile int cut;
    esp_relay_dir h2d, d2h;
    char path[128];
} esp_relay;

static inline uint64_t esp_relay_now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

static inline uint32_t esp_relay_baud(int fd)
{
    uint32_t baud = pf_endpoint_tty_rate(fd);
    return baud ? baud : 115200;
}

static void *esp_relay_run(void *arg)
{
    esp_relay_dir *d = arg;
    esp_relay *r = d->r;
    uint32_t x = r->seed ^ (d == &r->h2d ? 0x9E3779B9u : 0x7F4A7C15u);
    uint64_t busy_until = 0;
    uint8_t buf[64]; /* small chunks: delivery stays close to the byte timing */
    if (r->fixed_baud) { /* TCP host side: wait for the peer (h2d accepts) */
        while (!r->stop && r->host.fd < 0) {
            if (d == &r->h2d)
                pf_posix_accept(&r->host, 50);
            else
                usleep(5000);
        }
        if (d == &r->h2d)
            d->from_fd = r->host.fd;
        else
            d->to_fd = r->host.fd;
    }
    while (!r->stop && !r->cut) {
        struct pollfd p = {d->from_fd, POLLIN, 0};
        if (poll(&p, 1, 20) <= 0 || !(p.revents & POLLIN)) {
            if (p.revents & (POLLHUP | POLLERR))
                usleep(2000);
            continue;
        }
        ssize_t n = read(d->from_fd, buf, sizeof buf);
        if (n <= 0) {
            usleep(1000);
            continue;
        }
        if (d == &r->h2d && r->cut_after && d->bytes + (uint64_t)n >= r->cut_after) {
            n = (ssize_t)(r->cut_after - d->bytes);
            r->cut = 1;
        }
        for (ssize_t i = 0; d == &r->h2d && r->flip_at && i < n; i++) {
            uint64_t at = d->bytes + (uint64_t)i + 1;
            uint8_t b = buf[i], f = (uint8_t)(b ^ 1u);
            if (at >= r->flip_at && b != 0xC0 && b != 0xDB && b != 0xDC && b != 0xDD && f != 0xC0 && f != 0xDB &&
                f != 0xDC && f != 0xDD) {
                buf[i] = f;
                d->flips++;
                r->flip_at = r->flip_every ? at + r->flip_every : 0;
            }
        }
        for (ssize_t i = 0; i < n && r->flip_rate > 0 && (d == &r->h2d || !r->flip_host_only); i++) {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            if ((double)x / 4294967296.0 < r->flip_rate) {
                buf[i] ^= (uint8_t)(1u << (x >> 29));
                d->flips++;
            }
        }
        unsigned dir_bit = d == &r->h2d ? 1u : 2u;
        if (r->max_baud && (r->max_dirs & dir_bit) && !r->fixed_baud && esp_relay_baud(d->rate_fd) > r->max_baud) {
            d->bytes += (uint64_t)n; /* lost on the line */
            continue;
        }
        if (r->rate_model) {
            uint64_t now = esp_relay_now_us();
            uint32_t baud = r->fixed_baud ? r->fixed_baud : esp_relay_baud(d->rate_fd);
            /* Bytes that were waiting while the previous ones were on the
             * wire follow them back to back: a late wake-up of this thread
             * (up to 3 ms) must not stretch the line. */
            uint64_t start = (busy_until > now || now - busy_until < 3000u) ? busy_until : now;
            busy_until = start + (uint64_t)n * 10u * 1000000u / baud;
            if (busy_until > now)
                usleep((useconds_t)(busy_until - now));
        }
        ssize_t off = 0;
        while (off < n) {
            ssize_t w = write(d->to_fd, buf + off, (size_t)(n - off));
            if (w > 0)
                off += w;
            else
                usleep(500);
            if (r->stop)
                break;
        }
        d->bytes += (uint64_t)n;
    }
    if (r->cut && d == &r->h2d) {
        /* a cut cable: nothing more passes either way */
        pf_posix_close(&r->host);
        pf_posix_close(&r->dev);
    }
    return NULL;
}

/* Opens pty:host_path (or, given as "tcp-listen://PORT", a TCP listener
 * with r->fixed_baud set) and the device path; starts both directions. */
static inline int esp_relay_start(esp_relay *r, const char *host_path, const char *dev_path)
{
    char spec[160];
    snprintf(r->path, sizeof r->path, "%s", host_path);
    snprintf(spec, sizeof spec, strncmp(host_path, "tcp-listen://", 13) ? "pty:%s" : "%s", host_path);
    if (pf_posix_open(&r->host, spec, NULL) < 0)
        return -1;
    if (pf_posix_open(&r->dev, dev_path, NULL) < 0) {
        pf_posix_close(&r->host);
        return -1;
    }
    r->h2d.r = r->d2h.r = r;
    r->h2d.from_fd = r->host.fd;
    r->h2d.to_fd = r->dev.fd;
    r->h2d.rate_fd = r->host.fd;
    r->d2h.from_fd = r->dev.fd;
    r->d2h.to_fd = r->host.fd;
    r->d2h.rate_fd = r->dev.fd;
    pthread_create(&r->h2d.th, NULL, esp_relay_run, &r->h2d);
    pthread_create(&r->d2h.th, NULL, esp_relay_run, &r->d2h);
    return 0;
}

static inline void esp_relay_stop(esp_relay *r)
{
    r->stop = 1;
    pthread_join(r->h2d.th, NULL);
    pthread_join(r->d2h.th, NULL);
    if (!r->cut) {
        pf_posix_close(&r->host);
        pf_posix_close(&r->dev);
    }
}

#endif
