/* Deadline-based helpers over a pf_port: each read gets what remains of one
 * deadline per command, so a slow trickle of bytes cannot stretch a timeout. */
#include "peerflash/pf_port.h"

#include <stdarg.h>

#include "peerflash/pf_err.h"

unsigned pf_frame_bits(pf_frame frame)
{
    return frame == PF_FRAME_8E1 ? 11u : 10u;
}

uint32_t pf_deadline(const pf_port *port, uint32_t timeout_ms)
{
    return port->now_ms(port->ctx) + timeout_ms;
}

uint32_t pf_remaining(const pf_port *port, uint32_t deadline)
{
    int32_t left = (int32_t)(deadline - port->now_ms(port->ctx));
    return left > 0 ? (uint32_t)left : 0;
}

int pf_port_read_exact(const pf_port *port, uint8_t *buf, size_t n, uint32_t deadline, size_t *got)
{
    size_t have = 0;
    for (;;) {
        if (have == n)
            break;
        uint32_t left = pf_remaining(port, deadline);
        int r = port->read(port->ctx, buf + have, n - have, left);
        if (r < 0) {
            if (got)
                *got = have;
            return r;
        }
        have += (size_t)r;
        if (have < n && left == 0) {
            if (got)
                *got = have;
            return PF_ERR_TIMEOUT;
        }
    }
    if (got)
        *got = have;
    return (int)n;
}

int pf_port_write_all(const pf_port *port, const uint8_t *buf, size_t n)
{
    size_t done = 0;
    while (done < n) {
        int r = port->write(port->ctx, buf + done, n - done);
        if (r < 0)
            return r;
        if (r == 0)
            return PF_ERR_IO;
        done += (size_t)r;
    }
    return (int)n;
}

int pf_port_drain_input(const pf_port *port, uint32_t quiet_ms, uint32_t deadline)
{
    uint8_t scratch[64];
    int total = 0;
    for (;;) {
        uint32_t left = pf_remaining(port, deadline);
        uint32_t wait = left < quiet_ms ? left : quiet_ms;
        int r = port->read(port->ctx, scratch, sizeof scratch, wait);
        if (r < 0)
            return r;
        total += r;
        if (r == 0 || left == 0)
            return total;
    }
}

int pf_port_set_line(const pf_port *port, uint32_t baud, pf_frame frame)
{
    if (!port->set_line)
        return PF_OK;
    int r = port->set_line(port->ctx, baud, frame);
    return r == PF_ERR_UNSUPPORTED ? PF_OK : r;
}

int pf_port_set_lines(const pf_port *port, int dtr, int rts)
{
    /* honest: a port without DTR/RTS (a pty, raw TCP, an RFC 2217 server
     * that leaves SET-CONTROL unanswered) says so; the caller decides
     * whether a missing reset line matters (every caller today goes on) */
    if (!port->set_lines) {
        pf_port_logf(port, 2, "the port has no DTR/RTS lines: not driven");
        return PF_ERR_UNSUPPORTED;
    }
    return port->set_lines(port->ctx, dtr, rts);
}

void pf_port_delay(const pf_port *port, uint32_t ms)
{
    if (port->delay_ms)
        port->delay_ms(port->ctx, ms);
}

void pf_port_logf(const pf_port *port, int level, const char *fmt, ...)
{
    if (!port || !port->log)
        return;
    char line[256];
    va_list ap;
    va_start(ap, fmt);
    pf_vformat(line, sizeof line, fmt, ap);
    va_end(ap);
    port->log(port->ctx, level, line);
}
