/* The ArduinoOTA / espota front end of `peerflash serve` (--ota-port N per
 * target): a UDP invitation (with the optional nonce challenge), then
 * the daemon connects back over TCP, takes the whole image, checks its MD5,
 * parses it like an upload, and runs the same job as the HTTP API. One
 * thread per port; the protocol's messages are parsed in ota_proto.c. */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <unistd.h>

#include "cli.h"
#include "ota_proto.h"
#include "serve.h"

#define AUTH_WAIT_US 10000000u /* an answer to the challenge must come within 10 s */

static void udp_reply(int fd, const struct sockaddr_in *to, const char *text)
{
    (void)sendto(fd, text, strlen(text), 0, (const struct sockaddr *)to, sizeof *to);
}

static void tcp_text(int fd, const char *text)
{
    (void)send(fd, text, strlen(text), MSG_NOSIGNAL);
}

/* Connects to the host's TCP port, within timeout_ms; -1 on failure. */
static int connect_back(const struct sockaddr_in *host, uint16_t port, int timeout_ms)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -1;
    struct sockaddr_in a = *host;
    a.sin_port = htons(port);
    if (connect(fd, (struct sockaddr *)&a, sizeof a) < 0 && errno != EINPROGRESS) {
        close(fd);
        return -1;
    }
    struct pollfd p = {fd, POLLOUT, 0};
    int err = 0;
    socklen_t el = sizeof err;
    if (poll(&p, 1, timeout_ms) != 1 || getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &el) < 0 || err) {
        close(fd);
        return -1;
    }
    fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) & ~O_NONBLOCK);
    return fd;
}

/* Takes the image after an accepted invitation and runs the job. */
static void transfer(serve_daemon *d, serve_target *t, int udp, const struct sockaddr_in *from,
                     const pf_ota_invitation *inv)
{
    char ip[INET_ADDRSTRLEN], source[80];
    inet_ntop(AF_INET, &from->sin_addr, ip, sizeof ip);
    snprintf(source, sizeof source, "ota %s", ip);
    udp_reply(udp, from, "OK");
    int fd = connect_back(from, inv->port, 5000);
    if (fd < 0) {
        serve_log(d, "refused", t, NULL, "espota from %s: cannot connect back to port %u: %s", ip, inv->port,
                  strerror(errno));
        return;
    }
    uint8_t *img = malloc(inv->size);
    uint32_t got = 0;
    uint64_t t0 = pf_posix_now_us();
    const char *cut = NULL;
    while (img && got < inv->size) {
        struct pollfd p = {fd, POLLIN, 0};
        int idle_ms = (int)(d->cfg.idle_timeout_s ? d->cfg.idle_timeout_s * 1000u : 30000u);
        if (poll(&p, 1, idle_ms) != 1) {
            cut = "the host sent nothing for the idle timeout";
            break;
        }
        ssize_t r = recv(fd, img + got, inv->size - got, 0);
        if (r <= 0) {
            cut = "the host closed the connection";
            break;
        }
        got += (uint32_t)r;
        char ack[24]; /* a long in decimal */
        snprintf(ack, sizeof ack, "%ld", (long)r); /* the protocol's acknowledgement of each piece */
        tcp_text(fd, ack);
        if (d->cfg.upload_timeout_s && pf_posix_now_us() - t0 > (uint64_t)d->cfg.upload_timeout_s * 1000000u) {
            cut = "the upload took longer than --upload-timeout";
            break;
        }
    }
    char msg[PF_DIAG_MAX + 120];
    if (!img || cut) {
        snprintf(msg, sizeof msg, "ERR: %s after %lu of %lu bytes; nothing was written",
                 img ? cut : "out of memory", (unsigned long)got, (unsigned long)inv->size);
        serve_log(d, "refused", t, NULL, "espota from %s: %s", ip, msg + 5);
        tcp_text(fd, msg);
        free(img);
        close(fd);
        return;
    }
    char md5[33];
    pf_ota_md5_hex(img, inv->size, md5);
    if (!pf_ota_equal(md5, inv->md5)) {
        snprintf(msg, sizeof msg, "ERR: MD5 mismatch: the image has %s, the invitation said %s; nothing was written",
                 md5, inv->md5);
        serve_log(d, "refused", t, NULL, "espota from %s: %s", ip, msg + 5);
        tcp_text(fd, msg);
        free(img);
        close(fd);
        return;
    }
    pf_image_set set;
    pf_image_set_init(&set);
    pf_diag diag = {0};
    int r = serve_load_image(d, t, img, inv->size, "ota upload", NULL, 0, 0, &set, &diag);
    free(img);
    char busy_with[120];
    int cl = r < 0 ? 0 : serve_claim(d, t, SERVE_JOB_FLASH, source, busy_with, sizeof busy_with);
    if (r < 0 || cl < 0) {
        if (r < 0)
            snprintf(msg, sizeof msg, "ERR: %s; nothing was written", diag.text);
        else
            snprintf(msg, sizeof msg, "ERR: %s", cl == -1 ? "busy: another job runs on this target" : "stopping");
        serve_log(d, "refused", t, NULL, "espota from %s: %s", ip, msg + 5);
        tcp_text(fd, msg);
        pf_image_set_free(&set);
        close(fd);
        return;
    }
    serve_job job = {SERVE_JOB_FLASH, &set, source, "ota upload"};
    serve_result res;
    serve_run_job(d, t, &job, &res);
    pf_image_set_free(&set);
    if (res.exit_code == 0) {
        tcp_text(fd, "OK");
    } else {
        /* the error field of the result, for the IDE's console */
        const char *e = res.json ? strstr(res.json, "\"error\":\"") : NULL;
        snprintf(msg, sizeof msg, "ERR: flash failed (exit %d)%s%.*s", res.exit_code, e ? ": " : "",
                 e ? (int)strcspn(e + 9, "\"") : 0, e ? e + 9 : "");
        tcp_text(fd, msg);
    }
    free(res.json);
    shutdown(fd, SHUT_WR);
    close(fd);
}

static void *ota_thread(void *arg)
{
    serve_target *t = arg;
    serve_daemon *d = t->daemon;
    int fd = t->ota_fd;
    int waiting = 0;
    pf_ota_invitation inv, pending;
    struct sockaddr_in pending_from = {0};
    char nonce[65] = "";
    uint64_t since = 0;
    while (!atomic_load(&d->stopping)) {
        struct pollfd p = {fd, POLLIN, 0};
        if (poll(&p, 1, 200) != 1)
            continue;
        char buf[PF_OTA_MSG_MAX + 1];
        struct sockaddr_in from;
        socklen_t fl = sizeof from;
        ssize_t n = recvfrom(fd, buf, sizeof buf, 0, (struct sockaddr *)&from, &fl);
        if (n < 0 || fl != sizeof from || from.sin_family != AF_INET)
            continue;
        char ip[INET_ADDRSTRLEN], why[120];
        inet_ntop(AF_INET, &from.sin_addr, ip, sizeof ip);
        /* The answer to the challenge comes from the invited host, not always
         * from the invitation's port: espota.py 3.3.1+ sends it from a new
         * socket. Anything else from that host is taken as a new invitation. */
        int same_host = waiting && from.sin_addr.s_addr == pending_from.sin_addr.s_addr;
        int is_answer = n >= 4 && !memcmp(buf, "200 ", 4);
        if (same_host && is_answer && pf_posix_now_us() - since < AUTH_WAIT_US) {
            waiting = 0;
            char cnonce[PF_OTA_HEX_MAX], response[PF_OTA_HEX_MAX];
            if (pf_ota_parse_auth(buf, (size_t)n, cnonce, response, why, sizeof why) < 0) {
                serve_log(d, "refused", t, NULL, "espota from %s: %s", ip, why);
                udp_reply(fd, &from, "Authentication Failed");
                continue;
            }
            pf_ota_auth scheme = pf_ota_check_answer(d->cfg.ota_password_md5, d->cfg.ota_password_sha256, nonce,
                                                     cnonce, response);
            if (scheme == PF_OTA_AUTH_REFUSED) {
                serve_log(d, "refused", t, NULL, "espota from %s: wrong password (%s scheme)", ip,
                          strlen(response) == 64 ? "PBKDF2-HMAC-SHA256" : "MD5");
                udp_reply(fd, &from, "Authentication Failed");
                continue;
            }
            serve_log(d, "auth", t, NULL, "espota from %s: password checked (%s)", ip, pf_ota_auth_name(scheme));
            transfer(d, t, fd, &from, &pending);
            continue;
        }
        waiting = 0;
        if (pf_ota_parse_invitation(buf, (size_t)n, &inv, why, sizeof why) < 0) {
            /* not the protocol: ignored (no answer, so no reflection), but logged */
            serve_log(d, "refused", t, NULL, "espota from %s: %zd bytes that are not an invitation (%s)", ip, n, why);
            continue;
        }
        if (inv.cmd != PF_OTA_CMD_FLASH) {
            udp_reply(fd, &from, "ERR: only firmware images (not filesystem images) go to this target");
            continue;
        }
        if (inv.size > d->cfg.max_body) {
            char m[120];
            snprintf(m, sizeof m, "ERR: the image (%lu bytes) is larger than the limit of %zu bytes",
                     (unsigned long)inv.size, d->cfg.max_body);
            serve_log(d, "refused", t, NULL, "espota from %s: %s", ip, m + 5);
            udp_reply(fd, &from, m);
            continue;
        }
        pthread_mutex_lock(&t->lock);
        int busy = t->busy;
        pthread_mutex_unlock(&t->lock);
        if (busy) {
            serve_log(d, "refused", t, NULL, "espota from %s: busy", ip);
            udp_reply(fd, &from, "ERR: busy: another job runs on this target");
            continue;
        }
        if (d->cfg.ota_password_md5[0]) {
            /* 64 digits: espota.py 3.3.1+ then answers with PBKDF2-HMAC-SHA256 */
            uint8_t rnd[32];
            if (getrandom(rnd, sizeof rnd, 0) != (ssize_t)sizeof rnd)
                continue;
            pf_ota_sha256_hex(rnd, sizeof rnd, nonce);
            char m[72];
            snprintf(m, sizeof m, "AUTH %s", nonce);
            udp_reply(fd, &from, m);
            waiting = 1;
            pending = inv;
            pending_from = from;
            since = pf_posix_now_us();
            continue;
        }
        transfer(d, t, fd, &from, &inv);
    }
    return NULL;
}

int serve_ota_start(serve_daemon *d, serve_target *t, char *why, size_t n)
{
    t->daemon = d;
    int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in a;
    memset(&a, 0, sizeof a);
    a.sin_family = AF_INET;
    a.sin_port = htons(t->cfg.ota_port);
    if (fd < 0 || inet_pton(AF_INET, d->cfg.listen_addr, &a.sin_addr) != 1 ||
        bind(fd, (struct sockaddr *)&a, sizeof a) < 0) {
        snprintf(why, n, "--ota-port %u for %s: cannot listen on %s: %s", t->cfg.ota_port, t->cfg.name,
                 d->cfg.listen_addr, fd < 0 ? strerror(errno) : errno ? strerror(errno) : "an IPv4 address is needed");
        if (fd >= 0)
            close(fd);
        return -1;
    }
    t->ota_fd = fd;
    if (pthread_create(&t->ota_thread, NULL, ota_thread, t) != 0) {
        close(fd);
        t->ota_fd = -1;
        snprintf(why, n, "cannot start the espota thread");
        return -1;
    }
    return 0;
}

void serve_ota_stop(serve_target *t)
{
    if (t->ota_fd < 0)
        return;
    pthread_join(t->ota_thread, NULL); /* it sees d->stopping within 200 ms, or after its transfer */
    close(t->ota_fd);
    t->ota_fd = -1;
}
