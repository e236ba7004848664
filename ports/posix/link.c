/* The POSIX port: ttys and ptys through termios, TCP sockets, as pf_port links.
 * libserialport is used only for listing (list.c): it refuses ptys, which
 * every simulator and test here uses (shared/notes/serial-ports.md). */
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <termios.h>
#include <unistd.h>

#include "posix_link.h"

#define WRITE_STALL_MS PF_POSIX_WRITE_STALL_MS

static int open_pty(pf_posix_link *link, const char *path, const char *spec, pf_diag *diag)
{
    /* VTIME 0: blocking reads on the slave return at once, as this port's ptys
     * always had them (the link emulator's wait 0.5 s). */
    int rc = pf_endpoint_pty_create(path, spec, 0, 0, PF_FRAME_8N1, &link->fd, link->slave, sizeof link->slave, diag);
    if (rc)
        return rc;
    snprintf(link->path, sizeof link->path, "%s", path);
    link->kind = PF_POSIX_PTY_MASTER;
    return PF_OK;
}

static int open_tty(pf_posix_link *link, const char *path, pf_diag *diag)
{
    int fd, rc = pf_endpoint_tty_open(path, &fd, diag);
    if (rc)
        return rc;
    if (pf_endpoint_make_raw(fd, 0, 0, PF_FRAME_8N1) != 0) {
        int e = errno;
        close(fd);
        return pf_endpoint_os_error(diag, "configure", path, e);
    }
    link->fd = fd;
    link->kind = PF_POSIX_TTY;
    return PF_OK;
}

int pf_posix_tcp_connect(pf_posix_link *link, const pf_endpoint *ep, pf_diag *diag)
{
    int rc = pf_endpoint_tcp_connect(ep->host, ep->port, ep->spec, 1, &link->fd, NULL, diag);
    if (rc == 0)
        link->kind = PF_POSIX_TCP;
    return rc;
}

int pf_posix_spec_check(const char *spec, pf_diag *diag)
{
    return pf_endpoint_check(spec, diag);
}

int pf_posix_open(pf_posix_link *link, const char *spec, pf_diag *diag)
{
    if (!link || !spec || !*spec)
        return PF_ERR_ARG;
    memset(link, 0, sizeof *link);
    link->fd = -1;
    link->listen_fd = -1;
    link->log_level = -1;
    pf_endpoint ep;
    int rc = pf_endpoint_parse(&ep, spec, diag);
    if (rc)
        return rc;
    switch (ep.kind) {
    case PF_ENDPOINT_TCP: return pf_posix_tcp_connect(link, &ep, diag);
    case PF_ENDPOINT_RFC2217: return pf_rfc2217_open(link, &ep, diag);
    case PF_ENDPOINT_LISTEN:
        rc = pf_endpoint_listen(ep.port_number, 1, spec, &link->listen_fd, diag);
        if (rc == 0)
            link->kind = PF_POSIX_TCP_LISTEN;
        return rc;
    case PF_ENDPOINT_PTY: return open_pty(link, ep.path, spec, diag);
    case PF_ENDPOINT_PATH: break;
    }
    return open_tty(link, ep.path, diag);
}

void pf_posix_close(pf_posix_link *link)
{
    if (!link)
        return;
    pf_rfc2217_close(link);
    if (link->fd >= 0)
        close(link->fd);
    if (link->listen_fd >= 0)
        close(link->listen_fd);
    if (link->kind == PF_POSIX_PTY_MASTER)
        pf_endpoint_pty_unlink(link->path, link->slave);
    link->fd = link->listen_fd = -1;
    link->path[0] = '\0';
}

int pf_posix_accept(pf_posix_link *link, uint32_t timeout_ms)
{
    if (link->kind != PF_POSIX_TCP_LISTEN)
        return link->fd >= 0 ? PF_OK : PF_ERR_CLOSED;
    struct pollfd p = {link->listen_fd, POLLIN, 0};
    int n = poll(&p, 1, (int)timeout_ms);
    if (n <= 0)
        return n == 0 ? PF_ERR_TIMEOUT : PF_ERR_IO;
    int fd = pf_endpoint_accept(link->listen_fd);
    if (fd < 0)
        return PF_ERR_IO;
    link->fd = fd;
    link->kind = PF_POSIX_TCP;
    return PF_OK;
}

static uint32_t now_cb(void *ctx)
{
    (void)ctx;
    return pf_posix_now_ms();
}

static void delay_cb(void *ctx, uint32_t ms)
{
    (void)ctx;
    pf_posix_sleep_ms(ms);
}

static int link_read(void *ctx, uint8_t *buf, size_t n, uint32_t timeout_ms)
{
    pf_posix_link *l = ctx;
    if (l->kind == PF_POSIX_RFC2217)
        return pf_rfc2217_read(l, buf, n, timeout_ms);
    uint32_t deadline = pf_posix_now_ms() + timeout_ms;
    if (l->kind == PF_POSIX_TCP_LISTEN) {
        int r = pf_posix_accept(l, timeout_ms);
        if (r == PF_ERR_TIMEOUT)
            return 0;
        if (r < 0)
            return r;
    }
    size_t got = 0;
    while (got < n) {
        int32_t left = (int32_t)(deadline - pf_posix_now_ms());
        if (left < 0)
            left = 0;
        struct pollfd p = {l->fd, POLLIN, 0};
        int pr = poll(&p, 1, got ? 0 : left);
        if (pr < 0 && errno == EINTR)
            continue;
        if (pr < 0)
            return PF_ERR_IO;
        if (pr == 0) {
            if (got || left == 0)
                break;
            continue;
        }
        if (!(p.revents & POLLIN) && (p.revents & (POLLHUP | POLLERR))) {
            if (l->kind == PF_POSIX_PTY_MASTER) {
                /* Nobody has the other end open yet: not an error, just no
                 * data. Poll reports HUP at once, so wait a little. */
                if (got || left == 0)
                    break;
                pf_posix_sleep_ms(left < 5 ? (uint32_t)left : 5u);
                continue;
            }
            return got ? (int)got : PF_ERR_CLOSED;
        }
        ssize_t r = read(l->fd, buf + got, n - got);
        if (r > 0) {
            got += (size_t)r;
            continue;
        }
        if (r < 0 && (errno == EAGAIN || errno == EINTR))
            continue;
        if (r < 0 && errno == EIO && l->kind == PF_POSIX_PTY_MASTER)
            continue;
        return got ? (int)got : PF_ERR_CLOSED; /* EOF or a dead device */
    }
    return (int)got;
}

int pf_posix_send_all(pf_posix_link *l, const uint8_t *buf, size_t n)
{
    int is_socket = l->kind == PF_POSIX_TCP || l->kind == PF_POSIX_RFC2217;
    size_t done = 0;
    uint32_t deadline = pf_posix_now_ms() + WRITE_STALL_MS;
    while (done < n) {
        ssize_t r = is_socket ? send(l->fd, buf + done, n - done, MSG_NOSIGNAL) : write(l->fd, buf + done, n - done);
        if (r > 0) {
            done += (size_t)r;
            deadline = pf_posix_now_ms() + WRITE_STALL_MS;
            continue;
        }
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0 && errno != EAGAIN)
            return (errno == EPIPE || errno == ECONNRESET || errno == EIO) ? PF_ERR_CLOSED : PF_ERR_IO;
        int32_t left = (int32_t)(deadline - pf_posix_now_ms());
        if (left <= 0)
            return PF_ERR_TIMEOUT;
        struct pollfd p = {l->fd, POLLOUT, 0};
        poll(&p, 1, left);
    }
    return (int)n;
}

static int link_write(void *ctx, const uint8_t *buf, size_t n)
{
    pf_posix_link *l = ctx;
    if (l->kind == PF_POSIX_RFC2217)
        return pf_rfc2217_write(l, buf, n);
    if (l->kind == PF_POSIX_TCP_LISTEN) {
        int r = pf_posix_accept(l, WRITE_STALL_MS);
        if (r < 0)
            return r == PF_ERR_TIMEOUT ? PF_ERR_CLOSED : r;
    }
    return pf_posix_send_all(l, buf, n);
}

static int link_drain(void *ctx)
{
    pf_posix_link *l = ctx;
    if (l->kind == PF_POSIX_TTY)
        tcdrain(l->fd);
    return PF_OK;
}

static int link_flush_input(void *ctx)
{
    pf_posix_link *l = ctx;
    if (l->kind == PF_POSIX_RFC2217)
        return pf_rfc2217_flush_input(l);
    if (l->kind == PF_POSIX_TTY || l->kind == PF_POSIX_PTY_MASTER) {
        tcflush(l->fd, TCIFLUSH);
        return PF_OK;
    }
    if (l->fd < 0)
        return PF_OK;
    uint8_t scratch[256];
    while (recv(l->fd, scratch, sizeof scratch, MSG_DONTWAIT) > 0) {
    }
    return PF_OK;
}

static int link_set_line(void *ctx, uint32_t baud, pf_frame frame)
{
    pf_posix_link *l = ctx;
    if (l->kind == PF_POSIX_RFC2217)
        return pf_rfc2217_set_line(l, baud, frame);
    if (l->kind == PF_POSIX_TCP || l->kind == PF_POSIX_TCP_LISTEN)
        return PF_ERR_UNSUPPORTED;
    speed_t sp = (speed_t)pf_endpoint_baud_to_speed(baud);
    if (!sp)
        return PF_ERR_UNSUPPORTED;
    struct termios t;
    if (tcgetattr(l->fd, &t) != 0)
        return PF_ERR_IO;
    cfsetispeed(&t, sp);
    cfsetospeed(&t, sp);
    t.c_cflag &= ~(CSIZE | PARENB | PARODD | CSTOPB);
    t.c_cflag |= CS8;
    if (frame == PF_FRAME_8E1)
        t.c_cflag |= PARENB;
    if (tcsetattr(l->fd, TCSADRAIN, &t) != 0) {
        /* POSIX: EINVAL when none of the changes could be made. A pty keeps no
         * parity bit, so asking again for the rate it already has fails: accept
         * it when the rate and size are in place. */
        struct termios now;
        if (l->kind != PF_POSIX_PTY_MASTER &&
            !(tcgetattr(l->fd, &now) == 0 && cfgetospeed(&now) == sp && (now.c_cflag & CSIZE) == CS8))
            return PF_ERR_IO;
    }
    l->baud = baud;
    l->frame = frame;
    return PF_OK;
}

static int link_set_lines(void *ctx, int dtr, int rts)
{
    pf_posix_link *l = ctx;
    if (l->kind == PF_POSIX_RFC2217)
        return pf_rfc2217_set_lines(l, dtr, rts);
    if (l->kind != PF_POSIX_TTY)
        return PF_ERR_UNSUPPORTED;
    int bits;
    if (ioctl(l->fd, TIOCMGET, &bits) != 0)
        return PF_ERR_UNSUPPORTED; /* a pty has no modem lines */
    if (dtr == PF_LINE_ASSERT)
        bits |= TIOCM_DTR;
    else if (dtr == PF_LINE_RELEASE)
        bits &= ~TIOCM_DTR;
    if (rts == PF_LINE_ASSERT)
        bits |= TIOCM_RTS;
    else if (rts == PF_LINE_RELEASE)
        bits &= ~TIOCM_RTS;
    return ioctl(l->fd, TIOCMSET, &bits) == 0 ? PF_OK : PF_ERR_UNSUPPORTED;
}

static void log_cb(void *ctx, int level, const char *msg)
{
    pf_posix_link *l = ctx;
    if (level <= l->log_level)
        fprintf(stderr, "peerflash[%d]: %s\n", level, msg);
}

void pf_posix_port(pf_posix_link *link, pf_port *port)
{
    port->ctx = link;
    port->read = link_read;
    port->write = link_write;
    port->drain = link_drain;
    port->flush_input = link_flush_input;
    port->set_line = link_set_line;
    port->set_lines = link_set_lines;
    port->now_ms = now_cb;
    port->delay_ms = delay_cb;
    port->log = log_cb;
}
