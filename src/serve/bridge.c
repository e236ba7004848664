/* The TCP serial bridges of `peerflash serve`, one listener each per target:
 *  - raw (--bridge-port N), the ESP-Link way: a client that connects gets the
 *    target's serial port byte for byte, and the port is opened (and the
 *    target reset, DTR/RTS pulsed where the port has the lines, as the
 *    target's `reset` does for a job) on connect, so `avrdude -c arduino -P
 *    net:HOST:N` reaches Optiboot;
 *  - RFC 2217 (--rfc2217-port N): the same, in telnet with COM-PORT-OPTION
 *    (rfc2217_server.c): the client sets rate, frame and DTR/RTS itself, so
 *    there is no reset on connect.
 * Neither protocol authenticates: off unless asked for, on the daemon's
 * listen address only. While a client is connected the target is busy. */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "rfc2217_server.h"
#include "serve.h"

/* DTR/RTS pulse as an Uno's auto-reset circuit sees it; ptys and sockets
 * lack the lines (the simulated Uno resets when its pty is opened). */
static int reset_target(pf_port *p)
{
    /* PF_ERR_UNSUPPORTED: no lines (pty, raw TCP): nothing pulsed, the caller logs it */
    int r = pf_port_set_lines(p, PF_LINE_ASSERT, PF_LINE_ASSERT);
    if (r < 0)
        return r;
    pf_port_delay(p, 50);
    return pf_port_set_lines(p, PF_LINE_RELEASE, PF_LINE_RELEASE);
}

/* The RFC 2217 session's answers go to the client's socket, its events to the log. */
typedef struct rfc2217_sink {
    serve_daemon *d;
    serve_target *t;
    const char *peer;
    int client;
} rfc2217_sink;

static int sink_send(void *ctx, const uint8_t *buf, size_t n)
{
    rfc2217_sink *k = ctx;
    while (n) {
        ssize_t w = send(k->client, buf, n, MSG_NOSIGNAL);
        if (w <= 0)
            return -1;
        buf += w;
        n -= (size_t)w;
    }
    return 0;
}

static void sink_note(void *ctx, const char *extra, const char *text)
{
    rfc2217_sink *k = ctx;
    serve_log(k->d, "rfc2217", k->t, extra, "client %s: %s", k->peer, text);
}

static const char *kind_name(const serve_bridge *b)
{
    return b->rfc2217 ? "rfc2217 bridge" : "bridge";
}

static void serve_client(serve_daemon *d, serve_bridge *b, int client, const char *peer)
{
    serve_target *t = b->target;
    const char *kind = kind_name(b);
    char busy_with[120], source[80];
    snprintf(source, sizeof source, "%s %s", kind, peer);
    int cl = serve_claim(d, t, SERVE_JOB_BRIDGE, source, busy_with, sizeof busy_with);
    if (cl < 0) {
        serve_log(d, "refused", t, NULL, "%s client %s: %s", kind, peer,
                  cl == -1 ? busy_with : "the daemon is stopping");
        return; /* the connection closes: the protocols have no way to say why */
    }
    pf_posix_link link;
    memset(&link, 0, sizeof link);
    link.fd = link.listen_fd = -1;
    pf_diag diag = {0};
    int r = pf_posix_open(&link, t->cfg.port, &diag);
    if (r < 0) {
        serve_log(d, "failed", t, NULL, "%s client %s: %s", kind, peer, diag.text);
        serve_release(t);
        return;
    }
    pf_port port;
    pf_posix_port(&link, &port);
    uint32_t baud = t->cfg.baud ? t->cfg.baud : t->cfg.connect_baud ? t->cfg.connect_baud : 115200;
    pf_port_set_line(&port, baud, PF_FRAME_8N1);
    serve_rfc2217 session;
    rfc2217_sink sink = {d, t, peer, client};
    const serve_rfc2217_io io = {&sink, sink_send, sink_note};
    if (b->rfc2217)
        serve_rfc2217_begin(&session, &io, &port, baud, PF_FRAME_8N1);
    else if (reset_target(&port) < 0)
        serve_log(d, "bridge", t, NULL, "raw client %s: the port has no DTR/RTS lines: the target was not reset "
                  "through them (a simulated board resets when its pty is opened)", peer);
    const char *tag = b->rfc2217 ? "rfc2217 " : "";
    serve_log(d, "bridge", t, NULL, "%sclient %s connected to %s at %lu baud%s", tag, peer, t->cfg.port,
              (unsigned long)baud, b->rfc2217 ? "" : " (target reset)");
    int one = 1;
    setsockopt(client, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    unsigned long up = 0, down = 0;
    uint8_t buf[4096];
    const char *why = "the client closed the connection";
    while (!atomic_load(&t->cancel) && !atomic_load(&d->stopping)) {
        struct pollfd p[2] = {{client, POLLIN, 0}, {link.fd, POLLIN, 0}};
        int n = poll(p, 2, 200);
        if (n < 0 && errno != EINTR)
            break;
        int from_client = n > 0 && (p[0].revents & (POLLIN | POLLHUP | POLLERR));
        if (from_client) {
            ssize_t k = recv(client, buf, sizeof buf, 0);
            if (k <= 0)
                break;
            int rc = b->rfc2217 ? serve_rfc2217_from_client(&session, buf, (size_t)k)
                                : pf_port_write_all(&port, buf, (size_t)k) < 0 ? -1 : 0;
            if (rc < 0) {
                why = rc == -1 ? "the serial port failed" : "the client went away";
                break;
            }
            up += (unsigned long)k;
        }
        /* After a request an rfc2217:// port may hold data it read while
         * waiting for its server's answer: read the port then too. */
        if (from_client || (n > 0 && (p[1].revents & (POLLIN | POLLHUP | POLLERR)))) {
            int k = port.read(port.ctx, buf, sizeof buf, 0);
            if (k < 0) {
                why = "the serial port closed";
                break;
            }
            int rc = !k             ? 0
                     : b->rfc2217   ? serve_rfc2217_to_client(&session, buf, (size_t)k)
                     : send(client, buf, (size_t)k, MSG_NOSIGNAL) == k ? 0
                                                                          : -2;
            if (rc < 0) {
                why = "the client went away";
                break;
            }
            down += (unsigned long)k;
        }
    }
    if (atomic_load(&d->stopping))
        why = "the daemon is stopping";
    pf_posix_close(&link);
    if (b->rfc2217)
        serve_log(d, "bridge", t, NULL,
                  "%sclient %s disconnected (%s): %lu bytes from the client, %lu from the target, %lu telnet "
                  "requests ignored",
                  tag, peer, why, up, down, session.ignored);
    else
        serve_log(d, "bridge", t, NULL, "%sclient %s disconnected (%s): %lu bytes to the target, %lu from it", tag,
                  peer, why, up, down);
    serve_release(t);
}

static void *bridge_thread(void *arg)
{
    serve_bridge *b = arg;
    serve_daemon *d = b->target->daemon;
    while (!atomic_load(&d->stopping)) {
        struct pollfd p = {b->fd, POLLIN, 0};
        if (poll(&p, 1, 200) != 1)
            continue;
        struct sockaddr_in from;
        socklen_t fl = sizeof from;
        int c = accept4(b->fd, (struct sockaddr *)&from, &fl, SOCK_CLOEXEC);
        if (c < 0)
            continue;
        char ip[INET_ADDRSTRLEN] = "?";
        inet_ntop(AF_INET, &from.sin_addr, ip, sizeof ip);
        serve_client(d, b, c, ip); /* one client at a time: the target is one board */
        close(c);
    }
    return NULL;
}

int serve_bridge_start(serve_daemon *d, serve_target *t, serve_bridge *b, char *why, size_t n)
{
    t->daemon = d;
    b->target = t;
    const char *option = b->rfc2217 ? "--rfc2217-port" : "--bridge-port";
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    int one = 1;
    struct sockaddr_in a;
    memset(&a, 0, sizeof a);
    a.sin_family = AF_INET;
    a.sin_port = htons(b->tcp_port);
    if (fd >= 0)
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (fd < 0 || inet_pton(AF_INET, d->cfg.listen_addr, &a.sin_addr) != 1 ||
        bind(fd, (struct sockaddr *)&a, sizeof a) < 0 || listen(fd, 4) < 0) {
        snprintf(why, n, "%s %u for %s: cannot listen on %s: %s", option, b->tcp_port, t->cfg.name,
                 d->cfg.listen_addr, errno ? strerror(errno) : "an IPv4 address is needed");
        if (fd >= 0)
            close(fd);
        return -1;
    }
    b->fd = fd;
    if (pthread_create(&b->thread, NULL, bridge_thread, b) != 0) {
        close(fd);
        b->fd = -1;
        snprintf(why, n, "cannot start the %s thread", kind_name(b));
        return -1;
    }
    return 0;
}

void serve_bridge_stop(serve_bridge *b)
{
    if (b->fd < 0)
        return;
    pthread_join(b->thread, NULL);
    close(b->fd);
    b->fd = -1;
}
