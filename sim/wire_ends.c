/* The link emulator's endpoints (see wire.h): opened through the POSIX
 * endpoint module, watched for programs that open and close them, reopened
 * or reconnected when lost, and reopened to propagate an open (a stand-in
 * for the DTR pulse a pty cannot carry). */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <string.h>
#include <sys/ioctl.h>
#include <termios.h>
#include <unistd.h>

#include "wire_internal.h"

#define SIDE(s) ('A' + (s))

int wire_end_parse(wire_end *e, const char *spec, pf_diag *diag)
{
    memset(e, 0, sizeof *e);
    e->fd = -1;
    e->listen_fd = -1;
    e->reopen_at = NEVER;
    if (!spec || !*spec)
        return pf_diag_set(diag, PF_ERR_ARG, "missing endpoint spec");
    return pf_endpoint_parse(&e->ep, spec, diag);
}

/* The rate the program on this side set (tty/pty), 0 if none or unknown. */
uint32_t wire_end_rate(const wire_end *e)
{
    if (e->ep.kind != PF_ENDPOINT_PTY && e->ep.kind != PF_ENDPOINT_PATH)
        return 0;
    return pf_endpoint_tty_rate(e->fd);
}

/* Raw, 0.5 s VTIME (tools that skip port setup, such as stm32flash -b 0,
 * inherit it and time out instead of hanging); the rate and parity only in
 * fixed mode. */
static int path_open(pf_wire *w, wire_end *e, pf_diag *diag)
{
    int fd, rc = pf_endpoint_tty_open(e->ep.path, &fd, diag);
    if (rc)
        return rc;
    pf_endpoint_make_raw(fd, 5, w->cfg.follow ? 0 : w->cfg.baud, w->cfg.frame);
    e->fd = fd;
    e->open = 1;
    return PF_OK;
}

int wire_end_open(pf_wire *w, wire_end *e, pf_diag *diag)
{
    switch (e->ep.kind) {
    case PF_ENDPOINT_PTY: {
        int rc = pf_endpoint_pty_create(e->ep.path, e->ep.spec, 5, w->cfg.baud, w->cfg.frame, &e->fd, e->pts,
                                        sizeof e->pts, diag);
        e->open = 0;
        e->next_check = 0;
        return rc;
    }
    case PF_ENDPOINT_PATH: return path_open(w, e, diag);
    case PF_ENDPOINT_LISTEN: return pf_endpoint_listen(e->ep.port_number, 4, e->ep.spec, &e->listen_fd, diag);
    case PF_ENDPOINT_RFC2217: {
        /* a fixed rate goes to the server's port; in follow mode it takes
         * the other side's rate, as a TCP side does */
        int rc = pf_wire_rfc2217_start(&e->rfc, e->ep.spec, w->cfg.follow ? 0 : w->cfg.baud, w->cfg.frame, &e->fd,
                                       diag);
        if (rc == 0)
            e->open = 1;
        return rc;
    }
    case PF_ENDPOINT_TCP: {
        int rc = pf_endpoint_tcp_connect(e->ep.host, e->ep.port, e->ep.spec, 0, &e->fd, &e->connecting, diag);
        if (rc == 0 && e->connecting) {
            rc = pf_endpoint_connect_finish(e->fd, 5000);
            if (rc <= 0) {
                int err = rc < 0 ? errno : ETIMEDOUT;
                close(e->fd);
                e->fd = -1;
                e->connecting = 0;
                return pf_endpoint_os_error(diag, "connect to", e->ep.spec, err);
            }
            e->connecting = 0;
            rc = 0;
        }
        e->open = rc == 0;
        return rc;
    }
    }
    return PF_ERR_ARG;
}

/* Closes the connection or device (a listener keeps listening). */
static void drop_fd(wire_end *e)
{
    if (e->rfc) {
        pf_wire_rfc2217_stop(e->rfc, e->fd);
        e->rfc = NULL;
    }
    if (e->fd >= 0)
        close(e->fd);
    e->fd = -1;
    e->open = 0;
}

void wire_end_close(wire_end *e)
{
    drop_fd(e);
    if (e->listen_fd >= 0)
        close(e->listen_fd);
    e->listen_fd = -1;
    e->open = 0;
    if (e->ep.kind == PF_ENDPOINT_PTY)
        pf_endpoint_pty_unlink(e->ep.path, e->pts);
}

/* Side `side` was opened: the other side, if it is a path we opened or an
 * rfc2217:// connection, is closed for reopen_gap_ms and then reopened (the
 * RFC 2217 server reopens its port when we reconnect: a real serial device
 * asserts DTR on open, a simulator resets on open). */
static void propagate_open(pf_wire *w, int side, int64_t now)
{
    wire_end *o = &w->end[1 - side];
    int rfc = o->ep.kind == PF_ENDPOINT_RFC2217;
    if (!w->cfg.open_propagation || (!rfc && o->ep.kind != PF_ENDPOINT_PATH) || o->fd < 0)
        return;
    int64_t at = now + (int64_t)w->cfg.reopen_gap_ms * 1000000LL;
    if (rfc) {
        wire_end_close(o);
        o->next_check = at;
    } else {
        drop_fd(o);
        o->reopen_at = at;
    }
    o->ab_locked = 0;
    o->reopens++;
    pf_wire_log(w, "side %c opened: %s side %c (%s) for %u ms to propagate the open", SIDE(side),
                rfc ? "reconnecting" : "closing", SIDE(1 - side), rfc ? o->ep.spec : o->ep.path,
                w->cfg.reopen_gap_ms);
}

void wire_end_opened(pf_wire *w, int side, int64_t now)
{
    wire_end *e = &w->end[side];
    e->open = 1;
    e->opens++;
    e->ab_locked = 0;
    pf_wire_log(w, "side %c (%s) opened by a program", SIDE(side), e->ep.path);
    propagate_open(w, side, now);
}

static void flush_slave_input(wire_end *e)
{
    int s = open(e->pts, O_RDWR | O_NOCTTY | O_NONBLOCK | O_CLOEXEC);
    if (s >= 0) {
        tcflush(s, TCIFLUSH);
        close(s);
    }
}

void wire_read_side(pf_wire *w, int side, int64_t now); /* wire_engine.c */

/* For a pty we created: is a program holding the slave? Handles transitions. */
int wire_end_pty_check(pf_wire *w, int side, int64_t now)
{
    wire_end *e = &w->end[side];
    if (e->fd < 0)
        return 0;
    struct pollfd p = {e->fd, POLLIN, 0};
    poll(&p, 1, 0);
    int hup = (p.revents & POLLHUP) != 0;
    if (hup && !e->open && (p.revents & POLLIN))
        wire_end_opened(w, side, now); /* a program opened, wrote and closed between two checks */
    if (hup && e->open) {
        if (p.revents & POLLIN)
            wire_read_side(w, side, now); /* what the program wrote before it went away */
        e->open = 0;
        flush_slave_input(e);
        pf_wire_log(w, "side %c (%s) closed by its program", SIDE(side), e->ep.path);
    } else if (!hup && !e->open) {
        wire_end_opened(w, side, now);
    }
    e->next_check = now + PF_WIRE_HUP_CHECK_NS;
    return e->open;
}

void wire_end_lost(pf_wire *w, int side, int64_t now)
{
    wire_end *e = &w->end[side];
    switch (e->ep.kind) {
    case PF_ENDPOINT_PTY: wire_end_pty_check(w, side, now); break;
    case PF_ENDPOINT_PATH:
        drop_fd(e);
        e->next_check = now + PF_WIRE_RETRY_NS;
        pf_wire_log(w, "side %c (%s) hung up; reopening", SIDE(side), e->ep.path);
        break;
    case PF_ENDPOINT_RFC2217:
    case PF_ENDPOINT_LISTEN:
    case PF_ENDPOINT_TCP:
        drop_fd(e);
        e->connecting = 0;
        e->next_check = now + PF_WIRE_RECONNECT_NS;
        pf_wire_log(w, "side %c (%s): peer disconnected", SIDE(side), e->ep.spec);
        break;
    }
}

/* Can bytes be written to this side now? */
int wire_end_ready(pf_wire *w, int side, int64_t now)
{
    wire_end *e = &w->end[side];
    if (e->ep.kind == PF_ENDPOINT_PTY)
        return wire_end_pty_check(w, side, now);
    return e->fd >= 0 && e->open && !e->connecting;
}

/* An autobaud side locks to the rate of the first byte sent to it. */
uint32_t wire_end_autobaud_lock(pf_wire *w, int side, uint32_t baud)
{
    wire_end *e = &w->end[side];
    pf_endpoint_set_rate(e->fd, baud);
    e->ab_locked = baud;
    pf_wire_log(w, "side %c autobaud: locked to %u baud", SIDE(side), baud);
    return baud;
}

/* A listener has a peer waiting: accept it. */
void wire_end_accept(pf_wire *w, int side, int64_t now)
{
    wire_end *e = &w->end[side];
    int fd = pf_endpoint_accept(e->listen_fd);
    if (fd < 0)
        return;
    e->fd = fd;
    e->open = 1;
    e->opens++;
    pf_wire_log(w, "side %c (%s): peer connected", SIDE(side), e->ep.spec);
    propagate_open(w, side, now);
}

/* A connect in progress became writable: 1 connected, 0 waiting, <0 lost. */
int wire_end_connected(pf_wire *w, int side, int64_t now)
{
    wire_end *e = &w->end[side];
    int r = pf_endpoint_connect_finish(e->fd, 0);
    if (r > 0) {
        e->connecting = 0;
        e->open = 1;
        e->opens++;
        pf_wire_log(w, "side %c (%s): connected", SIDE(side), e->ep.spec);
        propagate_open(w, side, now);
    } else if (r < 0) {
        wire_end_lost(w, side, now);
    }
    return r;
}

/* Reopens, reconnects and pty checks that are due. */
void wire_ends_service(pf_wire *w, int64_t now)
{
    for (int s = 0; s < 2; s++) {
        wire_end *e = &w->end[s];
        switch (e->ep.kind) {
        case PF_ENDPOINT_PTY:
            if (!e->open && now >= e->next_check)
                wire_end_pty_check(w, s, now);
            break;
        case PF_ENDPOINT_PATH:
            if (e->fd < 0 && (now >= e->reopen_at || (e->reopen_at == NEVER && now >= e->next_check))) {
                pf_diag dg;
                if (path_open(w, e, &dg) == 0) {
                    e->ab_locked = 0;
                    if (e->reopen_at != NEVER)
                        pf_wire_log(w, "side %c (%s) reopened", SIDE(s), e->ep.path);
                    e->reopen_at = NEVER;
                } else {
                    e->reopen_at = NEVER;
                    e->next_check = now + PF_WIRE_RETRY_NS;
                }
            }
            break;
        case PF_ENDPOINT_RFC2217:
            if (e->fd < 0 && now >= e->next_check) {
                pf_diag dg;
                if (wire_end_open(w, e, &dg) != 0) {
                    e->fd = -1;
                    e->next_check = now + PF_WIRE_RECONNECT_NS;
                } else {
                    e->opens++;
                    pf_wire_log(w, "side %c (%s): connected", SIDE(s), e->ep.spec);
                }
            }
            break;
        case PF_ENDPOINT_TCP:
            if (e->fd < 0 && now >= e->next_check) {
                if (pf_endpoint_tcp_connect(e->ep.host, e->ep.port, e->ep.spec, 0, &e->fd, &e->connecting, NULL) != 0)
                    e->next_check = now + PF_WIRE_RECONNECT_NS;
                else if (!e->connecting) {
                    e->open = 1;
                    e->opens++;
                    propagate_open(w, s, now);
                }
            }
            break;
        case PF_ENDPOINT_LISTEN: break;
        }
    }
}

/* 1 if a program has not read all we delivered to its pty yet. */
int wire_ends_unread_input(pf_wire *w)
{
    for (int i = 0; i < 2; i++) {
        wire_end *e = &w->end[i];
        if (e->ep.kind != PF_ENDPOINT_PTY || e->fd < 0 || !e->open)
            continue;
        int s = open(e->pts, O_RDWR | O_NOCTTY | O_NONBLOCK | O_CLOEXEC);
        if (s < 0)
            continue;
        int n = 0;
        ioctl(s, FIONREAD, &n);
        close(s);
        if (n > 0)
            return 1;
    }
    return 0;
}
