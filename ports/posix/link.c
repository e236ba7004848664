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

static int starts_with(const char *s, const char *prefix)
{
    return strncmp(s, prefix, strlen(prefix)) == 0;
}

static int os_error(pf_diag *diag, const char *what, const char *spec, int err)
{
    const char *hint = "";
    if (err == ENOENT)
        hint = " (is the board plugged in? `peerflash ports` lists serial ports)";
    else if (err == EACCES || err == EPERM)
        hint = " (add your user to the 'dialout' group, or check the file's permissions)";
    else if (err == EBUSY)
        hint = " (another program has the port open)";
    else if (err == ECONNREFUSED)
        hint = " (is the bridge or simulator listening?)";
    return pf_diag_set(diag, PF_ERR_IO, "cannot %s %s: %s%s", what, spec, strerror(err), hint);
}

static speed_t speed_constant(uint32_t baud)
{
    switch (baud) {
    case 1200: return B1200;
    case 2400: return B2400;
    case 4800: return B4800;
    case 9600: return B9600;
    case 19200: return B19200;
    case 38400: return B38400;
    case 57600: return B57600;
    case 115200: return B115200;
    case 230400: return B230400;
    case 460800: return B460800;
    case 500000: return B500000;
    case 576000: return B576000;
    case 921600: return B921600;
    case 1000000: return B1000000;
    case 1152000: return B1152000;
    case 1500000: return B1500000;
    case 2000000: return B2000000;
    case 3000000: return B3000000;
    default: return 0;
    }
}

/* Raw bytes: no echo, no line discipline, no flow control, reads never block
 * in the kernel (poll decides when to read). */
static int make_raw(int fd)
{
    struct termios t;
    if (tcgetattr(fd, &t) != 0)
        return -1;
    cfmakeraw(&t);
    t.c_cflag |= CLOCAL | CREAD;
    t.c_cflag &= ~(CRTSCTS | CSTOPB);
    t.c_iflag &= ~(IXON | IXOFF | IXANY);
    t.c_cc[VMIN] = 0;
    t.c_cc[VTIME] = 0;
    return tcsetattr(fd, TCSANOW, &t);
}

/* A blocking read() by such a tool on the slave waits up to 0.5 s for data
 * instead of returning 0 at once (which tools read as a dead port). */
static int set_read_timeout(int fd)
{
    struct termios t;
    if (tcgetattr(fd, &t) != 0)
        return -1;
    t.c_cc[VMIN] = 0;
    t.c_cc[VTIME] = 5;
    return tcsetattr(fd, TCSANOW, &t);
}

static int set_nonblock(int fd)
{
    int fl = fcntl(fd, F_GETFL);
    return fl < 0 ? -1 : fcntl(fd, F_SETFL, fl | O_NONBLOCK);
}

static int open_pty(pf_posix_link *link, const char *path, const char *spec, pf_diag *diag)
{
    int m = posix_openpt(O_RDWR | O_NOCTTY);
    if (m < 0)
        return os_error(diag, "create a pty for", spec, errno);
    if (grantpt(m) || unlockpt(m) || ptsname_r(m, link->slave, sizeof link->slave)) {
        int e = errno;
        close(m);
        return os_error(diag, "set up the pty for", spec, e);
    }
    /* A tool that skips port setup (stm32flash -b 0) must find the slave raw,
     * not cooked with echo: configure it once; the setting stays with the pty. */
    int s = open(link->slave, O_RDWR | O_NOCTTY);
    if (s < 0 || make_raw(s) != 0 || set_read_timeout(s) != 0) {
        int e = errno;
        if (s >= 0)
            close(s);
        close(m);
        return os_error(diag, "configure the pty for", spec, e);
    }
    close(s);
    make_raw(m);
    set_nonblock(m);
    struct stat st;
    if (lstat(path, &st) == 0 && S_ISLNK(st.st_mode))
        unlink(path); /* a stale link from an earlier run */
    if (symlink(link->slave, path) != 0) {
        int e = errno;
        close(m);
        return os_error(diag, "create the link", path, e);
    }
    snprintf(link->path, sizeof link->path, "%s", path);
    link->fd = m;
    link->kind = PF_POSIX_PTY_MASTER;
    return PF_OK;
}

static int open_tty(pf_posix_link *link, const char *path, pf_diag *diag)
{
    int fd = open(path, O_RDWR | O_NOCTTY | O_NONBLOCK);
    if (fd < 0)
        return os_error(diag, "open", path, errno);
    if (!isatty(fd)) {
        close(fd);
        return pf_diag_set(diag, PF_ERR_IO, "%s is not a serial port or pty", path);
    }
    if (make_raw(fd) != 0) {
        int e = errno;
        close(fd);
        return os_error(diag, "configure", path, e);
    }
    link->fd = fd;
    link->kind = PF_POSIX_TTY;
    return PF_OK;
}

int pf_posix_tcp_connect(pf_posix_link *link, const char *spec, const char *scheme, pf_diag *diag)
{
    char host[256], port[8];
    int rc = pf_posix_split_endpoint(spec, scheme, host, sizeof host, port, sizeof port, diag);
    if (rc)
        return rc;
    struct addrinfo hints = {0}, *res = NULL;
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    int gai = getaddrinfo(host, port, &hints, &res);
    if (gai != 0)
        return pf_diag_set(diag, PF_ERR_IO, "cannot resolve %s: %s", spec, gai_strerror(gai));
    int fd = -1, err = 0;
    for (struct addrinfo *ai = res; ai; ai = ai->ai_next) {
        fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC, ai->ai_protocol);
        if (fd < 0) {
            err = errno;
            continue;
        }
        if (connect(fd, ai->ai_addr, ai->ai_addrlen) == 0)
            break;
        err = errno;
        close(fd);
        fd = -1;
    }
    freeaddrinfo(res);
    if (fd < 0)
        return os_error(diag, "connect to", spec, err);
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    set_nonblock(fd);
    link->fd = fd;
    link->kind = PF_POSIX_TCP;
    return PF_OK;
}

static int open_listen(pf_posix_link *link, const char *spec, pf_diag *diag)
{
    int rc = pf_posix_spec_check(spec, diag);
    if (rc)
        return rc;
    long port = strtol(spec + 13, NULL, 10);
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return os_error(diag, "create a socket for", spec, errno);
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    struct sockaddr_in a = {0};
    a.sin_family = AF_INET;
    a.sin_port = htons((uint16_t)port);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (bind(fd, (struct sockaddr *)&a, sizeof a) != 0 || listen(fd, 1) != 0) {
        int e = errno;
        close(fd);
        return os_error(diag, "listen on", spec, e);
    }
    link->listen_fd = fd;
    link->kind = PF_POSIX_TCP_LISTEN;
    return PF_OK;
}

int pf_posix_open(pf_posix_link *link, const char *spec, pf_diag *diag)
{
    if (!link || !spec || !*spec)
        return PF_ERR_ARG;
    memset(link, 0, sizeof *link);
    link->fd = -1;
    link->listen_fd = -1;
    link->log_level = -1;
    if (starts_with(spec, "tcp://"))
        return pf_posix_tcp_connect(link, spec, "tcp://", diag);
    if (starts_with(spec, "rfc2217://"))
        return pf_rfc2217_open(link, spec, diag);
    if (starts_with(spec, "tcp-listen://"))
        return open_listen(link, spec, diag);
    if (starts_with(spec, "pty:"))
        return open_pty(link, spec + 4, spec, diag);
    /* A bare path that does not exist yet, or a dangling link left by a
     * simulator that went away, becomes a new pty there. */
    struct stat st;
    if (stat(spec, &st) != 0 && errno == ENOENT)
        return open_pty(link, spec, spec, diag);
    return open_tty(link, spec, diag);
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
    if (link->kind == PF_POSIX_PTY_MASTER && link->path[0]) {
        struct stat st;
        if (lstat(link->path, &st) == 0 && S_ISLNK(st.st_mode))
            unlink(link->path);
    }
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
    int fd = accept4(link->listen_fd, NULL, NULL, SOCK_CLOEXEC);
    if (fd < 0)
        return PF_ERR_IO;
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    set_nonblock(fd);
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
    speed_t sp = speed_constant(baud);
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
