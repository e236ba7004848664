/* The link emulator's line (see wire.h): each direction is a serializer on an
 * absolute schedule (a byte cannot arrive before the previous one has
 * finished, plus the one-way latency), and, while the two sides' rates
 * differ, a bit-level model of the receiving UART (mid-bit sampling, framing
 * errors) turns the sender's waveform into what the receiver would read. */
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

static void f_push(wire_dir *d, gframe f)
{
    if (d->fn == d->fcap)
        ring_grow((void **)&d->fr, sizeof *d->fr, &d->fcap, &d->fhead, d->fn, 1024);
    d->fr[(d->fhead + d->fn) % d->fcap] = f;
    d->fn++;
}

static gframe *f_at(wire_dir *d, size_t i)
{
    return &d->fr[(d->fhead + i) % d->fcap];
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

/* Line level at time t: 1 idle/high, 0 low, -1 not known yet. */
static int level_at(wire_dir *d, double t, int64_t now, int flush)
{
    for (size_t i = 0; i < d->fn; i++) {
        gframe *f = f_at(d, i);
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
    return (flush || t < (double)now) ? 1 : -1;
}

/* Runs the receiving UART model over the frames queued so far. Emits what it
 * reads; returns the time at which it can make progress again (NEVER if it
 * waits for more frames). */
int64_t wire_uart_process(pf_wire *w, wire_dir *d, int64_t now, int flush)
{
    unsigned nr = pf_frame_bits(w->cfg.frame);
    for (;;) {
        if (!d->rx_baud)
            return NEVER;
        double tr = 1e9 / d->rx_baud;
        /* drop frames the receiver has passed */
        while (d->fn && f_end(f_at(d, 0)) <= d->scan) {
            d->fhead = (d->fhead + 1) % d->fcap;
            d->fn--;
        }
        if (!d->have_edge) {
            double t = d->scan;
            int found = 0;
            for (size_t i = 0; i < d->fn && !found; i++) {
                gframe *f = f_at(d, i);
                if (f_end(f) <= t)
                    continue;
                if (t < f->start) { /* idle gap before this frame: high, then its start bit */
                    d->need_high = 0;
                    d->edge = f->start;
                    found = 1;
                    break;
                }
                int j = (int)((t - f->start) / f->bit_ns);
                for (; j < f->nbits; j++) {
                    int lv = (f->levels >> j) & 1;
                    if (d->need_high) {
                        if (lv)
                            d->need_high = 0;
                    } else if (!lv) {
                        double bt = f->start + j * f->bit_ns;
                        d->edge = bt > t ? bt : t;
                        found = 1;
                        break;
                    }
                }
                t = f_end(f);
            }
            if (!found) {
                double last = d->fn ? f_end(f_at(d, d->fn - 1)) : d->scan;
                if (last > d->scan)
                    d->scan = last;
                if (d->need_high && (flush || last < (double)now))
                    d->need_high = 0;
                return NEVER;
            }
            d->have_edge = 1;
        }
        double s_last = d->edge + (nr - 0.5) * tr;
        if (level_at(d, s_last, now, flush) < 0)
            return (int64_t)ceil(s_last) + 1;
        if (level_at(d, d->edge + 0.5 * tr, now, flush) == 1) { /* glitch, not a start bit */
            d->have_edge = 0;
            d->scan = d->edge + 0.5 * tr;
            continue;
        }
        uint8_t byte = 0;
        for (int k = 1; k <= 8; k++)
            if (level_at(d, d->edge + (k + 0.5) * tr, now, flush) == 1)
                byte |= (uint8_t)(1u << (k - 1));
        int stop = level_at(d, s_last, now, flush);
        if (stop != 1) {
            d->st.framing_errors++;
            d->need_high = 1;
        }
        wire_q_push(d, (int64_t)(d->edge + nr * tr) + (int64_t)w->cfg.latency_us * 1000, byte);
        d->have_edge = 0;
        d->scan = s_last;
    }
}

/* Leaves garbling: whatever the receiver can still read, assuming an idle line after. */
void wire_uart_flush(pf_wire *w, wire_dir *d, int64_t now)
{
    wire_uart_process(w, d, now, 1);
    d->fn = 0;
    d->fhead = 0;
    d->have_edge = 0;
    d->need_high = 0;
    d->garbling = 0;
}

void wire_line_put(pf_wire *w, wire_dir *d, uint8_t byte, int dropped, int64_t t_read, uint32_t tx_baud,
                   uint32_t rx_baud)
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

    int mismatch = rx_baud && rx_baud != tx_baud;
    if (mismatch) {
        d->st.rate_mismatch++;
        if (!d->garbling || d->rx_baud != rx_baud) {
            if (d->garbling)
                wire_uart_flush(w, d, t_read);
            d->garbling = 1;
            d->rx_baud = rx_baud;
            d->scan = (double)start;
            d->have_edge = 0;
            d->need_high = 0;
        }
        if (!dropped)
            f_push(d, make_frame((double)start, (double)(end - start) / bits, byte, bits));
        return;
    }
    if (d->garbling)
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
