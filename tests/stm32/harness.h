/* Test harness for the stm32 driver: a simulated ROM on a pty in a thread,
 * the driver on the pty's other end, and a port wrapper that cuts the link
 * or flips bits (seeded) between them. */
#ifndef PF_TEST_STM32_HARNESS_H
#define PF_TEST_STM32_HARNESS_H

#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "peerflash/peerflash.h"
#include "peerflash/pf_posix.h"
#include "peerflash/pf_stm32.h"
#include "targets/stm32_state.h" /* white-box: the driver's private state */
#include "stm32.h"

typedef struct sim_h {
    char dir[128];
    char dev[160];
    char flash[160];
    pf_posix_link link;
    pf_sim_stm32 *sim;
    pthread_t th;
    volatile sig_atomic_t stop;
    int running;
} sim_h;

static void *sim_thread(void *arg)
{
    sim_h *h = arg;
    pf_sim_stm32_run(h->sim, &h->stop);
    return NULL;
}

/* Starts a simulator; fill (if >= 0) pre-fills the flash file with that byte. */
static int sim_start(sim_h *h, const pf_sim_stm32_config *cfg0, int fill)
{
    memset(h, 0, sizeof *h);
    snprintf(h->dir, sizeof h->dir, "/tmp/pf-stm32-test-XXXXXX");
    if (!mkdtemp(h->dir))
        return -1;
    snprintf(h->dev, sizeof h->dev, "%s/dev", h->dir);
    snprintf(h->flash, sizeof h->flash, "%s/flash.bin", h->dir);
    if (fill >= 0) {
        FILE *f = fopen(h->flash, "wb");
        for (uint32_t i = 0; i < cfg0->chip->flash_size; i++)
            fputc(fill, f);
        fclose(f);
    }
    char spec[200];
    snprintf(spec, sizeof spec, "pty:%s", h->dev);
    pf_diag d = {0};
    if (pf_posix_open(&h->link, spec, &d) < 0) {
        fprintf(stderr, "%s\n", d.text);
        return -1;
    }
    pf_sim_stm32_config cfg = *cfg0;
    cfg.flash_path = h->flash;
    if (pf_sim_stm32_open(&h->sim, &cfg, h->link.fd, &d) < 0) {
        fprintf(stderr, "%s\n", d.text);
        return -1;
    }
    if (pthread_create(&h->th, NULL, sim_thread, h) != 0)
        return -1;
    h->running = 1;
    return 0;
}

static void sim_stop(sim_h *h)
{
    if (h->running) {
        h->stop = 1;
        pthread_join(h->th, NULL);
        h->running = 0;
    }
    pf_sim_stm32_close(h->sim);
    h->sim = NULL;
    pf_posix_close(&h->link);
    unlink(h->flash);
    rmdir(h->dir);
}

/* A port wrapper: after cut_after bytes written, everything fails with
 * PF_ERR_CLOSED; bits of written/read bytes flip with probability 1/flip_one_in. */
typedef struct fault_port {
    pf_port inner;
    pf_port port;
    long cut_after; /* -1: never */
    long written;
    uint32_t flip_one_in; /* 0: never */
    uint64_t rng;
    uint32_t flips;
    long flip_read_at; /* flip bit 0 of this received byte (counted from 0); -1: never */
    long received;
} fault_port;

/* flip_read_at of the next fault_port_init (for targeted flips). */
static long g_flip_read_at = -1;

static uint32_t fp_rand(fault_port *f)
{
    f->rng ^= f->rng << 13;
    f->rng ^= f->rng >> 7;
    f->rng ^= f->rng << 17;
    return (uint32_t)(f->rng >> 11);
}

static void fp_flip(fault_port *f, uint8_t *b, size_t n)
{
    if (!f->flip_one_in)
        return;
    for (size_t i = 0; i < n; i++)
        if (fp_rand(f) % f->flip_one_in == 0) {
            b[i] ^= (uint8_t)(1u << (fp_rand(f) % 8));
            f->flips++;
        }
}

static int fp_read(void *ctx, uint8_t *buf, size_t n, uint32_t t)
{
    fault_port *f = ctx;
    if (f->cut_after >= 0 && f->written >= f->cut_after)
        return PF_ERR_CLOSED;
    int r = f->inner.read(f->inner.ctx, buf, n, t);
    if (r > 0) {
        fp_flip(f, buf, (size_t)r);
        if (f->flip_read_at >= f->received && f->flip_read_at < f->received + r) {
            buf[f->flip_read_at - f->received] ^= 1;
            f->flips++;
        }
        f->received += r;
    }
    return r;
}

static int fp_write(void *ctx, const uint8_t *buf, size_t n)
{
    fault_port *f = ctx;
    if (f->cut_after >= 0 && f->written + (long)n > f->cut_after) {
        long k = f->cut_after - f->written;
        if (k > 0)
            f->inner.write(f->inner.ctx, buf, (size_t)k);
        f->written = f->cut_after;
        return PF_ERR_CLOSED;
    }
    uint8_t tmp[2048];
    size_t done = 0;
    while (done < n) {
        size_t k = n - done < sizeof tmp ? n - done : sizeof tmp;
        memcpy(tmp, buf + done, k);
        fp_flip(f, tmp, k);
        int r = f->inner.write(f->inner.ctx, tmp, k);
        if (r < 0)
            return r;
        done += k;
    }
    f->written += (long)n;
    return (int)n;
}

static int fp_drain(void *ctx)
{
    fault_port *f = ctx;
    return f->inner.drain ? f->inner.drain(f->inner.ctx) : 0;
}
static int fp_flush(void *ctx)
{
    fault_port *f = ctx;
    return f->inner.flush_input ? f->inner.flush_input(f->inner.ctx) : 0;
}
static int fp_set_line(void *ctx, uint32_t b, pf_frame fr)
{
    fault_port *f = ctx;
    return f->inner.set_line ? f->inner.set_line(f->inner.ctx, b, fr) : PF_ERR_UNSUPPORTED;
}
static int fp_set_lines(void *ctx, int d, int r)
{
    fault_port *f = ctx;
    return f->inner.set_lines ? f->inner.set_lines(f->inner.ctx, d, r) : PF_ERR_UNSUPPORTED;
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

static void fault_port_init(fault_port *f, const pf_port *inner, long cut_after, uint32_t flip_one_in, uint64_t seed)
{
    memset(f, 0, sizeof *f);
    f->inner = *inner;
    f->cut_after = cut_after;
    f->flip_one_in = flip_one_in;
    f->rng = seed ? seed : 1;
    f->flip_read_at = g_flip_read_at;
    f->port = (pf_port){f, fp_read, fp_write, fp_drain, fp_flush, fp_set_line, fp_set_lines, fp_now, fp_delay, NULL};
}

/* A host session: the driver on the pty, optionally through faults. */
typedef struct host_h {
    pf_posix_link link;
    pf_port raw;
    fault_port fp;
    pf_stm32 drv;
    pf_target t;
    pf_diag diag;
    pf_target_config cfg;
} host_h;

static int host_connect(host_h *h, const char *dev, const char *chip, long cut_after, uint32_t flip_one_in,
                        uint64_t seed)
{
    memset(h, 0, sizeof *h);
    if (pf_posix_open(&h->link, dev, &h->diag) < 0) {
        fprintf(stderr, "open %s: %s\n", dev, h->diag.text);
        return PF_ERR_IO;
    }
    pf_posix_port(&h->link, &h->raw);
    fault_port_init(&h->fp, &h->raw, cut_after, flip_one_in, seed);
    pf_target_config c = PF_TARGET_CONFIG_DEFAULT();
    c.port = &h->fp.port;
    c.diag = &h->diag;
    c.baud = 115200;
    c.chip = chip;
    c.reset = "none";
    h->cfg = c;
    h->t.ops = &pf_target_stm32;
    h->t.self = &h->drv;
    int r = pf_target_stm32.open(&h->drv, &h->cfg);
    if (r < 0)
        return r;
    return pf_target_stm32.connect(&h->drv, &h->t.info);
}

static void host_close(host_h *h)
{
    pf_target_stm32.close(&h->drv);
    pf_posix_close(&h->link);
}

/* Runs the flash job for one binary image at addr. */
static int host_flash(host_h *h, uint32_t addr, const uint8_t *img, size_t len, pf_erase_mode erase, int verify,
                      pf_job_result *res)
{
    static pf_segment segs[4];
    static uint8_t arena[512 * 1024];
    static uint8_t buf[1024];
    pf_memmap map;
    pf_memmap_init(&map, segs, 4, arena, sizeof arena);
    int r = pf_memmap_add(&map, addr, img, len, &h->diag);
    if (r == 0)
        r = pf_memmap_finish(&map, &h->diag);
    if (r < 0)
        return r;
    pf_job_config jc = PF_JOB_CONFIG_DEFAULT();
    jc.erase = erase;
    jc.verify = verify;
    jc.buf = buf;
    jc.buf_size = sizeof buf;
    jc.diag = &h->diag;
    jc.clock = &h->raw;
    return pf_job_flash(&h->t, &map, &jc, res);
}

static void fill_random(uint8_t *p, size_t n, uint32_t seed)
{
    uint32_t x = seed ? seed : 1;
    for (size_t i = 0; i < n; i++) {
        x = x * 1103515245u + 12345u;
        p[i] = (uint8_t)(x >> 16);
    }
}

#endif
