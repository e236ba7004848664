/* Ctrl-C and SIGTERM during a command: the signal only sets a flag; the port
 * the driver talks through is wrapped so that every read, write and wait
 * returns PF_ERR_CLOSED once the flag is set (within 100 ms, since reads and
 * waits are sliced), the driver's failure path runs as for a lost link, and
 * the command ends the normal way: port closed and its settings restored,
 * progress line ended, one message (and the JSON object) saying where it
 * stopped. A second signal ends the process at once. */
#include <signal.h>
#include <string.h>

#include "cli.h"
#include "peerflash/pf_posix.h"

#define SLICE_MS 100u

static volatile sig_atomic_t caught;
static uint64_t deadline_us; /* 0: none; else calls fail with PF_ERR_TIMEOUT after it */

void pf_cli_port_deadline(uint32_t ms) { deadline_us = ms ? pf_posix_now_us() + (uint64_t)ms * 1000u : 0; }

/* PF_ERR_CLOSED after a signal, PF_ERR_TIMEOUT past the deadline, else 0. */
static int stopped(void)
{
    if (caught)
        return PF_ERR_CLOSED;
    if (deadline_us && pf_posix_now_us() > deadline_us)
        return PF_ERR_TIMEOUT;
    return 0;
}

static void on_signal(int sig)
{
    if (caught) { /* asked twice: stop now */
        signal(sig, SIG_DFL);
        raise(sig);
        return;
    }
    caught = sig;
}

void pf_cli_interrupt_install(void)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = 0; /* no SA_RESTART: a blocking poll returns at once */
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
}

int pf_cli_interrupted(void) { return caught; }

const char *pf_cli_signal_name(int sig) { return sig == SIGINT ? "SIGINT" : sig == SIGTERM ? "SIGTERM" : "signal"; }

static uint32_t min_u32(uint32_t a, uint32_t b) { return a < b ? a : b; }

static int guarded_read(void *ctx, uint8_t *buf, size_t n, uint32_t timeout_ms)
{
    const pf_port *inner = ctx;
    uint32_t start = inner->now_ms(inner->ctx);
    for (;;) {
        int stop = stopped();
        if (stop)
            return stop;
        uint32_t spent = inner->now_ms(inner->ctx) - start;
        uint32_t left = spent < timeout_ms ? timeout_ms - spent : 0;
        int r = inner->read(inner->ctx, buf, n, min_u32(left, SLICE_MS));
        if (r != 0 || left <= SLICE_MS)
            return r <= 0 && (stop = stopped()) ? stop : r;
    }
}

static int guarded_write(void *ctx, const uint8_t *buf, size_t n)
{
    const pf_port *inner = ctx;
    int stop = stopped();
    return stop ? stop : inner->write(inner->ctx, buf, n);
}

static int guarded_drain(void *ctx)
{
    const pf_port *inner = ctx;
    int stop = stopped();
    return stop ? stop : inner->drain(inner->ctx);
}

static int guarded_flush(void *ctx)
{
    const pf_port *inner = ctx;
    return inner->flush_input(inner->ctx);
}

static int guarded_set_line(void *ctx, uint32_t baud, pf_frame frame)
{
    const pf_port *inner = ctx;
    int stop = stopped();
    return stop ? stop : inner->set_line(inner->ctx, baud, frame);
}

static int guarded_set_lines(void *ctx, int dtr, int rts)
{
    const pf_port *inner = ctx;
    return inner->set_lines(inner->ctx, dtr, rts);
}

static uint32_t guarded_now(void *ctx)
{
    const pf_port *inner = ctx;
    return inner->now_ms(inner->ctx);
}

static void guarded_delay(void *ctx, uint32_t ms)
{
    const pf_port *inner = ctx;
    while (ms && !stopped()) {
        uint32_t step = min_u32(ms, SLICE_MS);
        inner->delay_ms(inner->ctx, step);
        ms -= step;
    }
}

static void guarded_log(void *ctx, int level, const char *msg)
{
    const pf_port *inner = ctx;
    inner->log(inner->ctx, level, msg);
}

void pf_cli_interrupt_wrap(const pf_port *inner, pf_port *out)
{
    memset(out, 0, sizeof *out);
    out->ctx = (void *)inner;
    out->read = guarded_read;
    out->write = guarded_write;
    out->drain = inner->drain ? guarded_drain : NULL;
    out->flush_input = inner->flush_input ? guarded_flush : NULL;
    out->set_line = inner->set_line ? guarded_set_line : NULL;
    out->set_lines = inner->set_lines ? guarded_set_lines : NULL;
    out->now_ms = guarded_now;
    out->delay_ms = guarded_delay;
    out->log = inner->log ? guarded_log : NULL;
}
