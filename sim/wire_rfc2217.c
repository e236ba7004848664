/* The link emulator's rfc2217:// side (see wire_rfc2217.h). */
#include "wire_rfc2217.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <unistd.h>

#include "peerflash/pf_posix.h"

struct pf_wire_rfc2217 {
    pf_posix_link link;
    pf_port port;
    int fd; /* the thread's end of the socket pair */
    pthread_t thread;
};

static int write_all_fd(int fd, const uint8_t *buf, size_t n)
{
    while (n) {
        ssize_t w = write(fd, buf, n);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return -1;
        buf += w;
        n -= (size_t)w;
    }
    return 0;
}

/* Until either side closes: engine -> server (escaped by the link), server
 * -> engine (decoded by the link). Then closes its end, so the engine sees
 * the side hang up. */
static void *bridge(void *arg)
{
    pf_wire_rfc2217 *b = arg;
    static const size_t chunk = 65536;
    uint8_t *buf = malloc(chunk);
    for (;;) {
        if (!buf)
            break;
        struct pollfd p[2] = {{b->fd, POLLIN, 0}, {b->link.fd, POLLIN, 0}};
        int pr = poll(p, 2, 200);
        if (pr < 0 && errno != EINTR)
            break;
        if (p[0].revents & (POLLIN | POLLHUP | POLLERR)) {
            ssize_t r = read(b->fd, buf, chunk);
            if (r == 0 || (r < 0 && errno != EINTR && errno != EAGAIN))
                break;
            if (r > 0 && pf_port_write_all(&b->port, buf, (size_t)r) < 0)
                break;
        }
        if (p[1].revents & (POLLIN | POLLHUP | POLLERR)) {
            int r = b->port.read(b->port.ctx, buf, chunk, 0);
            if (r < 0)
                break;
            if (r > 0 && write_all_fd(b->fd, buf, (size_t)r) < 0)
                break;
        }
    }
    free(buf);
    shutdown(b->fd, SHUT_RDWR);
    return NULL;
}

int pf_wire_rfc2217_start(pf_wire_rfc2217 **out, const char *spec, uint32_t baud, pf_frame frame, int *engine_fd,
                          pf_diag *diag)
{
    pf_wire_rfc2217 *b = calloc(1, sizeof *b);
    if (!b)
        return pf_diag_set(diag, PF_ERR_NOMEM, "%s: out of memory", spec);
    int rc = pf_posix_open(&b->link, spec, diag);
    if (rc < 0) {
        free(b);
        return rc;
    }
    pf_posix_port(&b->link, &b->port);
    if (baud && (rc = b->port.set_line(b->port.ctx, baud, frame)) < 0) {
        pf_posix_close(&b->link);
        free(b);
        return pf_diag_set(diag, rc, "%s: the server did not set %lu baud %s", spec, (unsigned long)baud,
                           frame == PF_FRAME_8E1 ? "8E1" : "8N1");
    }
    int sp[2];
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sp) != 0) {
        pf_posix_close(&b->link);
        free(b);
        return pf_diag_set(diag, PF_ERR_IO, "%s: cannot make a socket pair", spec);
    }
    b->fd = sp[1];
    if (pthread_create(&b->thread, NULL, bridge, b) != 0) {
        close(sp[0]);
        close(sp[1]);
        pf_posix_close(&b->link);
        free(b);
        return pf_diag_set(diag, PF_ERR_IO, "%s: cannot start a thread", spec);
    }
    fcntl(sp[0], F_SETFL, fcntl(sp[0], F_GETFL) | O_NONBLOCK);
    *engine_fd = sp[0];
    *out = b;
    return PF_OK;
}

void pf_wire_rfc2217_stop(pf_wire_rfc2217 *b, int engine_fd)
{
    if (!b)
        return;
    if (engine_fd >= 0)
        shutdown(engine_fd, SHUT_RDWR); /* the thread reads EOF and ends */
    pthread_join(b->thread, NULL);
    close(b->fd);
    pf_posix_close(&b->link);
    free(b);
}
