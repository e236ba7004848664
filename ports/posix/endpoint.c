/* POSIX endpoints (see endpoint.h): one grammar, one pty maker, one raw
 * termios setting and one rate table for the port and the link emulator. */
#include "endpoint.h"

#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <termios.h>
#include <unistd.h>

/* ---- grammar ------------------------------------------------------------------ */

static int parse_port_number(const char *s, pf_diag *diag, const char *spec)
{
    if (!*s)
        return pf_diag_set(diag, PF_ERR_ARG, "%s: missing port number after ':'", spec);
    unsigned long v = 0;
    for (const char *c = s; *c; c++) {
        if (*c < '0' || *c > '9')
            return pf_diag_set(diag, PF_ERR_ARG, "%s: port '%s' is not a decimal number", spec, s);
        v = v * 10 + (unsigned long)(*c - '0');
        if (v > 65535)
            break;
    }
    if (v == 0 || v > 65535)
        return pf_diag_set(diag, PF_ERR_ARG, "%s: port %s is outside 1..65535", spec, s);
    return PF_OK;
}

int pf_endpoint_split_host(const char *spec, const char *scheme, char *host, size_t host_size, char *port,
                           size_t port_size, pf_diag *diag)
{
    const char *hp = spec + strlen(scheme);
    const char *host_start = hp, *host_end, *colon;
    if (*hp == '[') {
        host_start = hp + 1;
        host_end = strchr(host_start, ']');
        if (!host_end)
            return pf_diag_set(diag, PF_ERR_ARG, "%s: missing ']' after the IPv6 address", spec);
        colon = host_end + 1;
        if (*colon != ':')
            return pf_diag_set(diag, PF_ERR_ARG, "%s: expected %s[ADDRESS]:PORT", spec, scheme);
    } else {
        colon = strrchr(hp, ':');
        if (!colon)
            return pf_diag_set(diag, PF_ERR_ARG, "%s: missing ':PORT' (expected %sHOST:PORT)", spec, scheme);
        host_end = colon;
        if (memchr(hp, ':', (size_t)(colon - hp)))
            return pf_diag_set(diag, PF_ERR_ARG, "%s: write an IPv6 address in brackets: %s[ADDRESS]:PORT", spec,
                               scheme);
    }
    if (host_end == host_start)
        return pf_diag_set(diag, PF_ERR_ARG, "%s: missing host (expected %sHOST:PORT)", spec, scheme);
    if ((size_t)(host_end - host_start) >= host_size)
        return pf_diag_set(diag, PF_ERR_ARG, "%s: host name too long", spec);
    if (memchr(host_start, '/', (size_t)(host_end - host_start)) || strchr(colon + 1, '/'))
        return pf_diag_set(diag, PF_ERR_ARG, "%s: expected %sHOST:PORT with nothing after the port", spec, scheme);
    int rc = parse_port_number(colon + 1, diag, spec);
    if (rc)
        return rc;
    memcpy(host, host_start, (size_t)(host_end - host_start));
    host[host_end - host_start] = '\0';
    snprintf(port, port_size, "%s", colon + 1);
    return PF_OK;
}

static const char *const k_schemes[] = {"tcp://", "rfc2217://", "tcp-listen://"};

/* The network part of the grammar; kind PATH for anything without a scheme. */
static int parse_scheme(pf_endpoint *ep, const char *spec, pf_diag *diag)
{
    if (!spec || !*spec)
        return pf_diag_set(diag, PF_ERR_ARG, "empty port spec");
    if (strlen(spec) >= sizeof ep->spec)
        return pf_diag_set(diag, PF_ERR_ARG, "port spec too long: %.64s...", spec);
    memset(ep, 0, sizeof *ep);
    snprintf(ep->spec, sizeof ep->spec, "%s", spec);
    for (size_t i = 0; i < sizeof k_schemes / sizeof k_schemes[0]; i++) {
        size_t n = strlen(k_schemes[i]);
        if (strncmp(spec, k_schemes[i], n))
            continue;
        if (i == 2) {
            int rc = parse_port_number(spec + n, diag, spec);
            if (rc)
                return rc;
            ep->kind = PF_ENDPOINT_LISTEN;
            snprintf(ep->port, sizeof ep->port, "%s", spec + n);
        } else {
            int rc = pf_endpoint_split_host(spec, k_schemes[i], ep->host, sizeof ep->host, ep->port,
                                            sizeof ep->port, diag);
            if (rc)
                return rc;
            ep->kind = i == 0 ? PF_ENDPOINT_TCP : PF_ENDPOINT_RFC2217;
        }
        ep->port_number = (uint16_t)strtoul(ep->port, NULL, 10);
        return PF_OK;
    }
    if (strstr(spec, "://"))
        return pf_diag_set(diag, PF_ERR_ARG,
                           "%s: unknown scheme (a port is a device path, pty:PATH, tcp://HOST:PORT, "
                           "rfc2217://HOST:PORT or tcp-listen://PORT)",
                           spec);
    ep->kind = PF_ENDPOINT_PATH;
    return PF_OK;
}

int pf_endpoint_check(const char *spec, pf_diag *diag)
{
    pf_endpoint ep;
    return parse_scheme(&ep, spec, diag);
}

int pf_endpoint_parse(pf_endpoint *ep, const char *spec, pf_diag *diag)
{
    int rc = parse_scheme(ep, spec, diag);
    if (rc || ep->kind != PF_ENDPOINT_PATH)
        return rc;
    const char *path = spec;
    if (!strncmp(spec, "pty:", 4)) {
        path = spec + 4;
        ep->kind = PF_ENDPOINT_PTY;
    }
    if (!*path)
        return pf_diag_set(diag, PF_ERR_ARG, "%s: empty path", spec);
    snprintf(ep->path, sizeof ep->path, "%s", path);
    /* A bare path that does not exist yet, or a dangling link left by a
     * simulator that went away, becomes a new pty there. */
    struct stat st;
    if (ep->kind == PF_ENDPOINT_PATH && stat(path, &st) != 0 && errno == ENOENT)
        ep->kind = PF_ENDPOINT_PTY;
    return PF_OK;
}

/* ---- line rates and raw termios --------------------------------------------------- */

static const struct {
    speed_t sp;
    uint32_t baud;
} k_speeds[] = {
    {B50, 50},         {B75, 75},           {B110, 110},         {B134, 134},         {B150, 150},
    {B200, 200},       {B300, 300},         {B600, 600},         {B1200, 1200},       {B1800, 1800},
    {B2400, 2400},     {B4800, 4800},       {B9600, 9600},       {B19200, 19200},     {B38400, 38400},
    {B57600, 57600},   {B115200, 115200},   {B230400, 230400},   {B460800, 460800},   {B500000, 500000},
    {B576000, 576000}, {B921600, 921600},   {B1000000, 1000000}, {B1152000, 1152000}, {B1500000, 1500000},
    {B2000000, 2000000}, {B2500000, 2500000}, {B3000000, 3000000}, {B3500000, 3500000}, {B4000000, 4000000},
};

unsigned pf_endpoint_baud_to_speed(uint32_t baud)
{
    for (size_t i = 0; i < sizeof k_speeds / sizeof k_speeds[0]; i++)
        if (k_speeds[i].baud == baud)
            return (unsigned)k_speeds[i].sp;
    return 0;
}

uint32_t pf_endpoint_speed_to_baud(unsigned speed)
{
    for (size_t i = 0; i < sizeof k_speeds / sizeof k_speeds[0]; i++)
        if (k_speeds[i].sp == (speed_t)speed)
            return k_speeds[i].baud;
    return 0;
}

uint32_t pf_endpoint_tty_rate(int fd)
{
    struct termios t;
    if (fd < 0 || tcgetattr(fd, &t) != 0)
        return 0;
    return pf_endpoint_speed_to_baud((unsigned)cfgetospeed(&t));
}

int pf_endpoint_set_rate(int fd, uint32_t baud)
{
    speed_t sp = (speed_t)pf_endpoint_baud_to_speed(baud);
    if (!sp)
        return PF_ERR_UNSUPPORTED;
    struct termios t;
    if (tcgetattr(fd, &t) != 0)
        return PF_ERR_IO;
    cfsetispeed(&t, sp);
    cfsetospeed(&t, sp);
    return tcsetattr(fd, TCSANOW, &t) == 0 ? PF_OK : PF_ERR_IO;
}

int pf_endpoint_make_raw(int fd, uint8_t vtime_ds, uint32_t baud, pf_frame frame)
{
    struct termios t;
    if (tcgetattr(fd, &t) != 0)
        return -1;
    cfmakeraw(&t);
    t.c_cflag |= CLOCAL | CREAD;
    t.c_cflag &= ~(tcflag_t)(CRTSCTS | CSTOPB);
    t.c_iflag &= ~(tcflag_t)(IXON | IXOFF | IXANY);
    t.c_cc[VMIN] = 0;
    t.c_cc[VTIME] = vtime_ds;
    if (baud) {
        speed_t sp = (speed_t)pf_endpoint_baud_to_speed(baud);
        if (sp) {
            cfsetispeed(&t, sp);
            cfsetospeed(&t, sp);
        }
        t.c_cflag &= ~(tcflag_t)(PARENB | PARODD);
        if (frame == PF_FRAME_8E1)
            t.c_cflag |= PARENB;
    }
    return tcsetattr(fd, TCSANOW, &t);
}

/* ---- ptys and ttys ---------------------------------------------------------------- */

int pf_endpoint_os_error(pf_diag *diag, const char *what, const char *spec, int err)
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

int pf_endpoint_pty_create(const char *path, const char *spec, uint8_t vtime_ds, uint32_t baud, pf_frame frame,
                           int *master, char *slave, size_t slave_size, pf_diag *diag)
{
    struct stat lst;
    if (lstat(path, &lst) == 0 && !S_ISLNK(lst.st_mode))
        return pf_diag_set(diag, PF_ERR_ARG, "%s: %s exists and is not a symlink; refusing to replace it", spec,
                           path);
    int m = posix_openpt(O_RDWR | O_NOCTTY | O_NONBLOCK);
    if (m < 0)
        return pf_endpoint_os_error(diag, "create a pty for", spec, errno);
    fcntl(m, F_SETFD, FD_CLOEXEC);
    if (grantpt(m) || unlockpt(m) || ptsname_r(m, slave, slave_size)) {
        int e = errno;
        close(m);
        return pf_endpoint_os_error(diag, "set up the pty for", spec, e);
    }
    /* A tool that skips port setup (stm32flash -b 0) must find the slave raw,
     * not cooked with echo: configure it once; the setting stays with the pty.
     * Closing it again puts the master in the hung-up state that says nobody
     * has the port open (a fresh master does not report POLLHUP before its
     * slave was opened and closed once). */
    int s = open(slave, O_RDWR | O_NOCTTY | O_NONBLOCK | O_CLOEXEC);
    if (s < 0 || pf_endpoint_make_raw(s, vtime_ds, baud, frame) != 0) {
        int e = errno;
        if (s >= 0)
            close(s);
        close(m);
        return pf_endpoint_os_error(diag, "configure the pty for", spec, e);
    }
    close(s);
    /* Atomically replace whatever link is there (a stale one from a killed run). */
    char tmp[300];
    snprintf(tmp, sizeof tmp, "%s.pty%ld", path, (long)getpid());
    unlink(tmp);
    if (symlink(slave, tmp) != 0 || rename(tmp, path) != 0) {
        int e = errno;
        unlink(tmp);
        close(m);
        return pf_endpoint_os_error(diag, "create the link", path, e);
    }
    *master = m;
    return PF_OK;
}

void pf_endpoint_pty_unlink(const char *path, const char *slave)
{
    char buf[256];
    ssize_t n = path[0] ? readlink(path, buf, sizeof buf - 1) : -1;
    if (n > 0) {
        buf[n] = '\0';
        if (!strcmp(buf, slave))
            unlink(path);
    }
}

int pf_endpoint_tty_open(const char *path, int *fd, pf_diag *diag)
{
    int f = open(path, O_RDWR | O_NOCTTY | O_NONBLOCK | O_CLOEXEC);
    if (f < 0)
        return pf_endpoint_os_error(diag, "open", path, errno);
    if (!isatty(f)) {
        close(f);
        return pf_diag_set(diag, PF_ERR_IO, "%s is not a serial port or pty", path);
    }
    *fd = f;
    return PF_OK;
}

/* ---- TCP ---------------------------------------------------------------------------- */

static void tcp_tune(int fd)
{
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    int fl = fcntl(fd, F_GETFL);
    if (fl >= 0)
        fcntl(fd, F_SETFL, fl | O_NONBLOCK);
}

int pf_endpoint_tcp_connect(const char *host, const char *port, const char *spec, int wait, int *fd, int *pending,
                            pf_diag *diag)
{
    struct addrinfo hints = {0}, *res = NULL;
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    int gai = getaddrinfo(host, port, &hints, &res);
    if (gai != 0)
        return pf_diag_set(diag, PF_ERR_IO, "cannot resolve %s: %s", spec, gai_strerror(gai));
    int s = -1, err = 0, in_progress = 0;
    for (struct addrinfo *ai = res; ai; ai = ai->ai_next) {
        s = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC | (wait ? 0 : SOCK_NONBLOCK), ai->ai_protocol);
        if (s < 0) {
            err = errno;
            continue;
        }
        if (connect(s, ai->ai_addr, ai->ai_addrlen) == 0)
            break;
        err = errno;
        if (!wait && err == EINPROGRESS) {
            in_progress = 1;
            break;
        }
        close(s);
        s = -1;
        if (!wait)
            break; /* a non-blocking attempt tries the first address only; the caller retries */
    }
    freeaddrinfo(res);
    if (s < 0)
        return pf_endpoint_os_error(diag, "connect to", spec, err);
    tcp_tune(s);
    *fd = s;
    if (pending)
        *pending = in_progress;
    return PF_OK;
}

int pf_endpoint_connect_finish(int fd, int timeout_ms)
{
    struct pollfd p = {fd, POLLOUT, 0};
    if (poll(&p, 1, timeout_ms) <= 0)
        return 0;
    int err = 0;
    socklen_t len = sizeof err;
    getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len);
    if (err) {
        errno = err;
        return -1;
    }
    return 1;
}

int pf_endpoint_listen(uint16_t port, int backlog, const char *spec, int *fd, pf_diag *diag)
{
    int s = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (s < 0)
        return pf_endpoint_os_error(diag, "create a socket for", spec, errno);
    int one = 1;
    setsockopt(s, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    struct sockaddr_in a;
    memset(&a, 0, sizeof a);
    a.sin_family = AF_INET;
    a.sin_port = htons(port);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (bind(s, (struct sockaddr *)&a, sizeof a) != 0 || listen(s, backlog) != 0) {
        int e = errno;
        close(s);
        return pf_endpoint_os_error(diag, "listen on", spec, e);
    }
    *fd = s;
    return PF_OK;
}

int pf_endpoint_accept(int listen_fd)
{
    int s = accept4(listen_fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (s >= 0)
        tcp_tune(s);
    return s;
}
