/* Raw TCP serial bridge of `peerflash serve` (--bridge-port N per target),
 * the ESP-Link way: a client that connects gets the target's serial port
 * byte for byte, and the port is opened (and the target reset, DTR/RTS
 * pulsed where the port has the lines, as the target's `reset` does for a
 * job) on connect, so `avrdude -c arduino -P net:HOST:N` reaches Optiboot.
 * No authentication in this protocol: off unless asked for, on the daemon's
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

#include "serve.h"

/* DTR/RTS pulse as an Uno's auto-reset circuit sees it; ptys and sockets
 * lack the lines (the simulated Uno resets when its pty is opened). */
static void reset_target(pf_port *p)
{
    if (pf_port_set_lines(p, PF_LINE_ASSERT, PF_LINE_ASSERT) == PF_ERR_UNSUPPORTED)
        return;
    pf_port_delay(p, 50);
    pf_port_set_lines(p, PF_LINE_RELEASE, PF_LINE_RELEASE);
}

static void serve_client(serve_daemon *d, serve_target *t, int client, const char *peer)
{
    char busy_with[120], source[80];
    snprintf(source, sizeof source, "bridge %s", peer);
    int cl = serve_claim(d, t, SERVE_JOB_BRIDGE, source, busy_with, sizeof busy_with);
    if (cl < 0) {
        serve_log(d, "refused", t, NULL, "bridge client %s: %s", peer,
                  cl == -1 ? busy_with : "the daemon is stopping");
        return; /* the connection closes: the protocol has no way to say why */
    }
    pf_posix_link link;
    memset(&link, 0, sizeof link);
    link.fd = link.listen_fd = -1;
    pf_diag diag = {0};
    int r = pf_posix_open(&link, t->cfg.port, &diag);
    if (r < 0) {
        serve_log(d, "failed", t, NULL, "bridge client %s: %s", peer, diag.text);
        serve_release(t);
        return;
    }
    pf_port port;
    pf_posix_port(&link, &port);
    uint32_t baud = t->cfg.baud ? t->cfg.baud : t->cfg.connect_baud ? t->cfg.connect_baud : 115200;
    pf_port_set_line(&port, baud, PF_FRAME_8N1);
    reset_target(&port);
    serve_log(d, "bridge", t, NULL, "client %s connected to %s at %lu baud (target reset)", peer, t->cfg.port,
              (unsigned long)baud);
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
        if (n <= 0)
            continue;
        if (p[0].revents & (POLLIN | POLLHUP | POLLERR)) {
            ssize_t k = recv(client, buf, sizeof buf, 0);
            if (k <= 0)
                break;
            if (pf_port_write_all(&port, buf, (size_t)k) < 0) {
                why = "the serial port failed";
                break;
            }
            up += (unsigned long)k;
        }
        if (p[1].revents & (POLLIN | POLLHUP | POLLERR)) {
            ssize_t k = read(link.fd, buf, sizeof buf);
            if (k < 0 && (errno == EAGAIN || errno == EINTR))
                continue;
            if (k <= 0) {
                why = "the serial port closed";
                break;
            }
            if (send(client, buf, (size_t)k, MSG_NOSIGNAL) != k) {
                why = "the client went away";
                break;
            }
            down += (unsigned long)k;
        }
    }
    if (atomic_load(&d->stopping))
        why = "the daemon is stopping";
    pf_posix_close(&link);
    serve_log(d, "bridge", t, NULL, "client %s disconnected (%s): %lu bytes to the target, %lu from it", peer, why, up,
              down);
    serve_release(t);
}

static void *bridge_thread(void *arg)
{
    serve_target *t = arg;
    serve_daemon *d = t->daemon;
    while (!atomic_load(&d->stopping)) {
        struct pollfd p = {t->bridge_fd, POLLIN, 0};
        if (poll(&p, 1, 200) != 1)
            continue;
        struct sockaddr_in from;
        socklen_t fl = sizeof from;
        int c = accept4(t->bridge_fd, (struct sockaddr *)&from, &fl, SOCK_CLOEXEC);
        if (c < 0)
            continue;
        char ip[INET_ADDRSTRLEN] = "?";
        inet_ntop(AF_INET, &from.sin_addr, ip, sizeof ip);
        serve_client(d, t, c, ip); /* one client at a time: the target is one board */
        close(c);
    }
    return NULL;
}

int serve_bridge_start(serve_daemon *d, serve_target *t, char *why, size_t n)
{
    t->daemon = d;
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    int one = 1;
    struct sockaddr_in a;
    memset(&a, 0, sizeof a);
    a.sin_family = AF_INET;
    a.sin_port = htons(t->cfg.bridge_port);
    if (fd >= 0)
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (fd < 0 || inet_pton(AF_INET, d->cfg.listen_addr, &a.sin_addr) != 1 ||
        bind(fd, (struct sockaddr *)&a, sizeof a) < 0 || listen(fd, 4) < 0) {
        snprintf(why, n, "--bridge-port %u for %s: cannot listen on %s: %s", t->cfg.bridge_port, t->cfg.name,
                 d->cfg.listen_addr, errno ? strerror(errno) : "an IPv4 address is needed");
        if (fd >= 0)
            close(fd);
        return -1;
    }
    t->bridge_fd = fd;
    if (pthread_create(&t->bridge_thread, NULL, bridge_thread, t) != 0) {
        close(fd);
        t->bridge_fd = -1;
        snprintf(why, n, "cannot start the bridge thread");
        return -1;
    }
    return 0;
}

void serve_bridge_stop(serve_target *t)
{
    if (t->bridge_fd < 0)
        return;
    pthread_join(t->bridge_thread, NULL);
    close(t->bridge_fd);
    t->bridge_fd = -1;
}
