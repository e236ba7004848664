/* The link emulator's line (see wire.h): each direction is a serializer on an
 * absolute schedule (a byte cannot arrive before the previous one has
 * finished, plus the one-way latency), and, while a receiver is out of step
 * with the waveform it samples (follow mode: the two sides' rates differ;
 * fixed mode: a side's rate differs from the line's), a bit-level model of
 * the receiving UART (mid-bit sampling, framing errors) turns the waveform
 * into what that receiver would read. Fixed mode can need two in a row: the
 * line's UART reading the sender, then the receiving side reading what the
 * line's UART sends on. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "wire_internal.h"

/* ---- direction queues ------------------------------------------------------ */

/* Doubles a ring of n elements of size elem (from first_cap), unrolled so
 * that it starts at index 0 again. */
static void ring_grow(void **ring, size_t elem, size_t *cap, size_t *head, size_t n, size_t first_cap)
{
    size_t ncap = *cap ? *cap * 2 : first_cap;
    unsigned char *nr = malloc(ncap * elem), *old = *ring;
    if (!nr)
        abort();
    for (size_t i = 0; i < n; i++)
        memcpy(nr + i * elem, old + ((*head + i) % *cap) * elem, elem);
    free(old);
    *ring = nr;
    *cap = ncap;
    *head = 0;
}

void wire_q_push(wire_dir *d, int64_t due, uint8_t byte)
{
    if (d->n == d->cap)
        ring_grow((void **)&d->q, sizeof *d->q, &d->cap, &d->head, d->n, 4096);
    /* Due times never go backwards: a byte cannot overtake the one before. */
    if (d->n) {
        int64_t last = d->q[(d->head + d->n - 1) % d->cap].due;
        if (due < last)
            due = last;
    }
    d->q[(d->head + d->n) % d->cap] = (out_ent){due, byte};
    d->n++;
}

static void f_push(uart_rx *r, gframe f)
{
    if (r->fn == r->fcap)
        ring_grow((void **)&r->fr, sizeof *r->fr, &r->fcap, &r->fhead, r->fn, 1024);
    r->fr[(r->fhead + r->fn) % r->fcap] = f;
    r->fn++;
}

static gframe *f_at(uart_rx *r, size_t i)
{
    return &r->fr[(r->fhead + i) % r->fcap];
}

static double f_end(const gframe *f)
{
    return f->start + f->nbits * f->bit_ns;
}

/* Line levels of one character: start 0, 8 data bits LSB first, even parity, stop 1. */
static gframe make_frame(double start, double bit_ns, uint8_t byte, unsigned bits)
{
    gframe f;
    f.start = start;
    f.bit_ns = bit_ns;
    f.nbits = (uint8_t)bits;
    uint16_t lv = (uint16_t)((unsigned)byte << 1); /* bit 0 (start) = 0 */
    unsigned pos = 9;
    if (bits == 11) {
        unsigned ones = 0;
        for (int i = 0; i < 8; i++)
            ones += (byte >> i) & 1u;
        lv |= (uint16_t)((ones & 1u) << pos);
        pos++;
    }
    lv |= (uint16_t)(1u << pos); /* stop */
    f.levels = lv;
    return f;
}

/* A frame for a receiver: in time order, never overlapping the one before
 * (only a change of rates can bring a frame sent on by the line's UART and
 * one straight from the sender together). */
static void rx_push(uart_rx *r, gframe f)
{
    if (r->fn) {
        double e = f_end(f_at(r, r->fn - 1));
        if (f.start < e)
            f.start = e;
    }
    f_push(r, f);
}

/* Line level at time t: 1 idle/high, 0 low, -1 not known yet (no frame
 * starting before `known` can still come: later times may be). */
static int level_at(uart_rx *r, double t, int64_t known, int flush)
{
    for (size_t i = 0; i < r->fn; i++) {
        gframe *f = f_at(r, i);
        if (t < f->start)
            return 1;
        double e = f_end(f);
        if (t < e) {
            int j = (int)((t - f->start) / f->bit_ns);
            if (j >= f->nbits)
                j = f->nbits - 1;
            return (f->levels >> j) & 1;
        }
    }
    return (flush || t < (double)known) ? 1 : -1;
}

/* What receiver `stage` read, complete at t_end: the line's UART (rx[0] in
 * fixed mode, with rx[1] on) sends it on at its own rate as soon as it has
 * it, as a bridge or a radio module does; otherwise it is delivered. */
static void rx_emit(pf_wire *w, wire_dir *d, int stage, double t_end, uint8_t byte)
{
    if (stage == 0 && d->rx[1].on) {
        unsigned nr = pf_frame_bits(w->cfg.frame);
        double bit = 1e9 / d->rx[0].baud, start = t_end > d->relay_end ? t_end : d->relay_end;
        rx_push(&d->rx[1], make_frame(start, bit, byte, nr));
        d->relay_end = start + nr * bit;
        return;
    }
    wire_q_push(d, (int64_t)t_end + (int64_t)w->cfg.latency_us * 1000, byte);
}

/* Runs the receiving UART model of one stage over the frames queued so far
 * (no frame can still come that starts before `known`). Emits what it reads;
 * returns the time at which it can make progress again (NEVER if it waits for
 * more frames). */
static int64_t rx_process(pf_wire *w, wire_dir *d, int stage, int64_t known, int flush)
{
    uart_rx *r = &d->rx[stage];
    unsigned nr = pf_frame_bits(w->cfg.frame);
    for (;;) {
        if (!r->baud)
            return NEVER;
        double tr = 1e9 / r->baud;
        /* drop frames the receiver has passed */
        while (r->fn && f_end(f_at(r, 0)) <= r->scan) {
            r->fhead = (r->fhead + 1) % r->fcap;
            r->fn--;
        }
        if (!r->have_edge) {
            double t = r->scan;
            int found = 0;
            for (size_t i = 0; i < r->fn && !found; i++) {
                gframe *f = f_at(r, i);
                if (f_end(f) <= t)
                    continue;
                if (t < f->start) { /* idle gap before this frame: high, then its start bit */
                    r->need_high = 0;
                    r->edge = f->start;
                    found = 1;
                    break;
                }
                int j = (int)((t - f->start) / f->bit_ns);
                for (; j < f->nbits; j++) {
                    int lv = (f->levels >> j) & 1;
                    if (r->need_high) {
                        if (lv)
                            r->need_high = 0;
                    } else if (!lv) {
                        double bt = f->start + j * f->bit_ns;
                        r->edge = bt > t ? bt : t;
                        found = 1;
                        break;
                    }
                }
                t = f_end(f);
            }
            if (!found) {
                double last = r->fn ? f_end(f_at(r, r->fn - 1)) : r->scan;
                if (last > r->scan)
                    r->scan = last;
                if (r->need_high && (flush || last < (double)known))
                    r->need_high = 0;
                return NEVER;
            }
            r->have_edge = 1;
        }
        double s_last = r->edge + (nr - 0.5) * tr;
        if (level_at(r, s_last, known, flush) < 0)
            return (int64_t)ceil(s_last) + 1;
        if (level_at(r, r->edge + 0.5 * tr, known, flush) == 1) { /* glitch, not a start bit */
            r->have_edge = 0;
            r->scan = r->edge + 0.5 * tr;
            continue;
        }
        uint8_t byte = 0;
        for (int k = 1; k <= 8; k++)
            if (level_at(r, r->edge + (k + 0.5) * tr, known, flush) == 1)
                byte |= (uint8_t)(1u << (k - 1));
        int stop = level_at(r, s_last, known, flush);
        if (stop != 1) {
            d->st.framing_errors++;
            r->need_high = 1;
        }
        rx_emit(w, d, stage, r->edge + nr * tr, byte);
        r->have_edge = 0;
        r->scan = s_last;
    }
}

static int64_t uart_run(pf_wire *w, wire_dir *d, int64_t now, int flush)
{
    int64_t wake = NEVER;
    if (d->rx[0].on || d->rx[0].fn)
        wake = rx_process(w, d, 0, now, flush);
    if (!d->rx[1].on && !d->rx[1].fn)
        return wake;
    /* rx[1] reads what the line's UART sends on: fed by rx[0], nothing can
     * still start on it before rx[0]'s next character is complete (its start
     * edge is no earlier than where rx[0] has got to, or than now) */
    int64_t known = now, lag = 0;
    if (d->rx[0].on && !flush) {
        uart_rx *r0 = &d->rx[0];
        double edge = r0->have_edge ? r0->edge : (r0->scan > (double)now ? r0->scan : (double)now);
        double lb = edge + pf_frame_bits(w->cfg.frame) * 1e9 / r0->baud;
        if (d->relay_end > lb)
            lb = d->relay_end;
        known = (int64_t)floor(lb);
        lag = known - now;
    }
    int64_t t = rx_process(w, d, 1, known, flush);
    if (t != NEVER && !(d->rx[0].on && d->rx[0].have_edge)) {
        /* rx[1] goes on once `known` has passed its sample: now + lag */
        t -= lag;
        if (t <= now)
            t = now + 1;
        if (t < wake)
            wake = t;
    }
    return wake;
}

int64_t wire_uart_process(pf_wire *w, wire_dir *d, int64_t now)
{
    return uart_run(w, d, now, 0);
}

int wire_uart_busy(const wire_dir *d)
{
    return d->rx[0].on || d->rx[1].on || d->rx[0].fn || d->rx[1].fn;
}

static void rx_reset(uart_rx *r)
{
    r->on = 0;
    r->fn = 0;
    r->fhead = 0;
    r->have_edge = 0;
    r->need_high = 0;
}

void wire_uart_flush(pf_wire *w, wire_dir *d, int64_t now)
{
    uart_run(w, d, now, 1);
    rx_reset(&d->rx[0]);
    rx_reset(&d->rx[1]);
}

void wire_line_put(pf_wire *w, wire_dir *d, uint8_t byte, int dropped, int64_t t_read, uint32_t tx_baud,
                   uint32_t mid_baud, uint32_t rx_baud)
{
    unsigned bits = pf_frame_bits(w->cfg.frame);
    /* the serializer: absolute schedule from the start of a busy period */
    if (d->line_end <= t_read) {
        d->st.idle_starts++;
        d->epoch = t_read;
        d->k = 0;
        d->cur_baud = tx_baud;
        d->cur_bits = bits;
    } else if (tx_baud != d->cur_baud || bits != d->cur_bits) {
        d->epoch = d->line_end;
        d->k = 0;
        d->cur_baud = tx_baud;
        d->cur_bits = bits;
    }
    int64_t start = d->line_end > t_read ? d->line_end : t_read;
    d->k++;
    int64_t end = d->epoch + (int64_t)llround((double)d->k * bits * 1e9 / tx_baud);
    d->line_end = end;
    d->st.last_baud = tx_baud;

    /* receivers out of step: the first one to sample at a rate other than
     * the waveform's, and (fixed mode) the receiving side behind the line */
    int on0 = mid_baud && mid_baud != tx_baud;
    int on1 = rx_baud && mid_baud && rx_baud != mid_baud;
    if (on0 || on1) {
        d->st.rate_mismatch++;
        if (on0 != d->rx[0].on || on1 != d->rx[1].on || (on0 && d->rx[0].baud != mid_baud) ||
            (on1 && d->rx[1].baud != rx_baud)) {
            if (wire_uart_busy(d))
                wire_uart_flush(w, d, t_read);
            d->rx[0].on = on0;
            d->rx[0].baud = mid_baud;
            d->rx[1].on = on1;
            d->rx[1].baud = rx_baud;
            for (int i = 0; i < 2; i++) {
                d->rx[i].scan = (double)start;
                d->rx[i].have_edge = 0;
                d->rx[i].need_high = 0;
            }
            d->relay_end = (double)start;
        }
        if (!dropped)
            rx_push(&d->rx[on0 ? 0 : 1], make_frame((double)start, (double)(end - start) / bits, byte, bits));
        return;
    }
    if (wire_uart_busy(d))
        wire_uart_flush(w, d, t_read);
    if (!dropped)
        wire_q_push(d, end + (int64_t)w->cfg.latency_us * 1000, byte);
}

/* How many more bytes the sender may put ahead: the queue limit counts the
 * bytes still waiting for the line (latency does not hold the sender back). */
size_t wire_line_room(const pf_wire *w, const wire_dir *d, int64_t now)
{
    int64_t backlog_ns = d->line_end - now;
    if (backlog_ns <= 0)
        return w->queue_bytes;
    uint32_t baud = d->cur_baud ? d->cur_baud : w->cfg.baud;
    unsigned bits = d->cur_bits ? d->cur_bits : pf_frame_bits(w->cfg.frame);
    double backlog = (double)backlog_ns * baud / (bits * 1e9);
    return backlog >= w->queue_bytes ? 0 : (size_t)(w->queue_bytes - backlog);
}
