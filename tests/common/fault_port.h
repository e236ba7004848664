/* A pf_port wrapper that injects faults between a driver and its real port,
 * from a seed, for the driver tests of every target:
 *   - a cut: once cut_after bytes have been written the link is gone; the
 *     write that reaches the count passes the bytes up to it and fails with
 *     PF_ERR_CLOSED, as does every read and write after it;
 *   - bit flips, both directions: one bit of a byte with probability
 *     1/flip_one_in, or flip_ppm per million bytes; one chosen received byte
 *     (flip_read_at) for a targeted flip;
 *   - drops, both directions: drop_ppm per million bytes;
 *   - with record set, what the driver wrote (before any fault) is kept in
 *     sent[0..sent_len) (malloc'd: the caller frees it).
 * Per byte the order of the draws is drop, flip_ppm, flip_one_in, each only
 * when enabled, so a seed gives the same faults at the same byte positions.
 * Everything else (rates, modem lines, clock, log) goes to the real port.
 *
 *   fault_port fp;
 *   fault_port_init(&fp, &real, seed);
 *   fp.cut_after = 12000;   // then hand &fp.port to the driver
 */
#ifndef PEERFLASH_TEST_FAULT_PORT_H
#define PEERFLASH_TEST_FAULT_PORT_H

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "peerflash/pf_port.h"

typedef struct fault_port {
    pf_port port;          /* the faulty view */
    pf_port inner;         /* the real port */
    /* what to inject (set after fault_port_init) */
    int64_t cut_after;     /* bytes written before the cut; -1 = never */
    uint32_t flip_one_in;  /* 0 = never */
    uint32_t flip_ppm, drop_ppm;
    int64_t flip_read_at;  /* flip bit 0 of this received byte (counted from 0); -1 = never */
    /* flush_input waits until the line was quiet this long (at most 10 times
     * as long) instead of calling the real port's: bytes may still be on
     * their way through a simulated line. 0 = the real port's flush. */
    uint32_t flush_quiet_ms;
    int record;            /* keep what the driver writes in sent */
    /* what happened */
    uint8_t *sent;
    size_t sent_len, sent_cap;
    uint64_t written, received;
    uint32_t flips, drops;
    int cut;
    uint32_t rng;
} fault_port;

static inline uint32_t fault_port_rand(fault_port *f)
{
    f->rng ^= f->rng << 13;
    f->rng ^= f->rng >> 17;
    f->rng ^= f->rng << 5;
    return f->rng;
}

/* Applies drops and flips to b[0..n) in place; returns the bytes kept. */
static inline size_t fault_port_mangle(fault_port *f, uint8_t *b, size_t n)
{
    size_t out = 0;
    for (size_t i = 0; i < n; i++) {
        if (f->drop_ppm && fault_port_rand(f) % 1000000u < f->drop_ppm) {
            f->drops++;
            continue;
        }
        uint8_t c = b[i];
        if (f->flip_ppm && fault_port_rand(f) % 1000000u < f->flip_ppm) {
            c ^= (uint8_t)(1u << (fault_port_rand(f) % 8));
            f->flips++;
        }
        if (f->flip_one_in && fault_port_rand(f) % f->flip_one_in == 0) {
            c ^= (uint8_t)(1u << (fault_port_rand(f) % 8));
            f->flips++;
        }
        b[out++] = c;
    }
    return out;
}

static int fault_port_read(void *ctx, uint8_t *buf, size_t n, uint32_t timeout_ms)
{
    fault_port *f = ctx;
    if (f->cut)
        return PF_ERR_CLOSED;
    int r = f->inner.read(f->inner.ctx, buf, n, timeout_ms);
    if (r <= 0)
        return r;
    if (f->flip_read_at >= 0 && (uint64_t)f->flip_read_at >= f->received &&
        (uint64_t)f->flip_read_at < f->received + (uint64_t)r) {
        buf[f->flip_read_at - (int64_t)f->received] ^= 1;
        f->flips++;
    }
    f->received += (uint64_t)r;
    return (int)fault_port_mangle(f, buf, (size_t)r);
}

static int fault_port_write(void *ctx, const uint8_t *buf, size_t n)
{
    fault_port *f = ctx;
    if (f->cut)
        return PF_ERR_CLOSED;
    size_t pass = n;
    if (f->cut_after >= 0 && f->written + n >= (uint64_t)f->cut_after) {
        f->cut = 1;
        pass = (size_t)((uint64_t)f->cut_after - f->written);
    }
    if (f->record && pass) {
        if (f->sent_len + pass > f->sent_cap) {
            size_t cap = 2 * (f->sent_len + pass);
            uint8_t *grown = realloc(f->sent, cap);
            if (!grown)
                return PF_ERR_NOMEM;
            f->sent = grown;
            f->sent_cap = cap;
        }
        memcpy(f->sent + f->sent_len, buf, pass);
        f->sent_len += pass;
    }
    uint8_t tmp[4096];
    for (size_t done = 0; done < pass;) {
        size_t k = pass - done < sizeof tmp ? pass - done : sizeof tmp;
        memcpy(tmp, buf + done, k);
        int r = pf_port_write_all(&f->inner, tmp, fault_port_mangle(f, tmp, k));
        if (r < 0)
            return r;
        done += k;
    }
    f->written += pass;
    return f->cut ? PF_ERR_CLOSED : (int)n;
}

static int fault_port_drain(void *ctx)
{
    fault_port *f = ctx;
    return f->inner.drain ? f->inner.drain(f->inner.ctx) : PF_OK;
}

static int fault_port_flush(void *ctx)
{
    fault_port *f = ctx;
    if (f->flush_quiet_ms)
        return pf_port_drain_input(&f->inner, f->flush_quiet_ms, pf_deadline(&f->inner, 10 * f->flush_quiet_ms)) < 0
                   ? PF_ERR_IO
                   : PF_OK;
    return f->inner.flush_input ? f->inner.flush_input(f->inner.ctx) : PF_OK;
}

static int fault_port_set_line(void *ctx, uint32_t baud, pf_frame frame)
{
    fault_port *f = ctx;
    return f->inner.set_line ? f->inner.set_line(f->inner.ctx, baud, frame) : PF_ERR_UNSUPPORTED;
}

static int fault_port_set_lines(void *ctx, int dtr, int rts)
{
    fault_port *f = ctx;
    return f->inner.set_lines ? f->inner.set_lines(f->inner.ctx, dtr, rts) : PF_ERR_UNSUPPORTED;
}

static uint32_t fault_port_now(void *ctx)
{
    fault_port *f = ctx;
    return f->inner.now_ms(f->inner.ctx);
}

static void fault_port_delay(void *ctx, uint32_t ms)
{
    fault_port *f = ctx;
    f->inner.delay_ms(f->inner.ctx, ms);
}

static void fault_port_log(void *ctx, int level, const char *msg)
{
    fault_port *f = ctx;
    if (f->inner.log)
        f->inner.log(f->inner.ctx, level, msg);
}

/* No faults until the caller sets some. seed 0 counts as 1. */
static inline void fault_port_init(fault_port *f, const pf_port *inner, uint32_t seed)
{
    memset(f, 0, sizeof *f);
    f->inner = *inner;
    f->cut_after = -1;
    f->flip_read_at = -1;
    f->rng = seed ? seed : 1;
    f->port.ctx = f;
    f->port.read = fault_port_read;
    f->port.write = fault_port_write;
    f->port.drain = fault_port_drain;
    f->port.flush_input = fault_port_flush;
    f->port.set_line = fault_port_set_line;
    f->port.set_lines = fault_port_set_lines;
    f->port.now_ms = fault_port_now;
    f->port.delay_ms = fault_port_delay;
    f->port.log = fault_port_log;
}

#endif
