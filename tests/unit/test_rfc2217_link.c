/* The rfc2217:// link (ports/posix/rfc2217.c) against a scripted server on
 * 127.0.0.1 in a thread: the client's offers, refusing an option we do not
 * do, data that arrives while a line change waits for its answer (kept, with
 * an IAC IAC pair split across two TCP segments), 0xFF both ways, and a
 * server that leaves SET-CONTROL unanswered (then the link has no modem
 * lines, as a pty, and does not wait again). */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "codec/telnet.h"
#include "peerflash/pf_posix.h"
#include "pf_test.h"

typedef struct server {
    int listen_fd, port;
    int answer_control; /* 0: leave SET-CONTROL unanswered */
    uint8_t hello[PF_TELNET_HELLO_MAX];
    size_t hello_len;
    int got_dont_echo;
    uint8_t cmds[32]; /* the RFC 2217 commands received, in order */
    uint32_t values[32];
    size_t ncmds;
    uint8_t data[64]; /* data bytes received (unescaped) */
    size_t ndata;
} server;

static void send_all(int fd, const void *p, size_t n)
{
    if (send(fd, p, n, MSG_NOSIGNAL) != (ssize_t)n)
        fprintf(stderr, "server: short send\n");
}

static void *serve(void *arg)
{
    server *s = arg;
    int fd = accept(s->listen_fd, NULL, NULL);
    if (fd < 0)
        return NULL;
    /* the client's offers */
    while (s->hello_len < PF_TELNET_HELLO_MAX) {
        ssize_t r = recv(fd, s->hello + s->hello_len, PF_TELNET_HELLO_MAX - s->hello_len, 0);
        if (r <= 0)
            goto out;
        s->hello_len += (size_t)r;
    }
    const uint8_t agree[] = {0xFF, PF_TELNET_DO, 44, 0xFF, PF_TELNET_WILL, 1 /* ECHO: to be refused */};
    send_all(fd, agree, sizeof agree);
    pf_telnet t;
    pf_telnet_init(&t);
    int injected = 0;
    for (;;) {
        uint8_t raw[256], data[256];
        ssize_t r = recv(fd, raw, sizeof raw, 0);
        if (r <= 0)
            break;
        for (size_t at = 0; at < (size_t)r;) {
            pf_telnet_event ev;
            size_t got;
            at += pf_telnet_decode(&t, raw + at, (size_t)r - at, data, &got, &ev);
            for (size_t i = 0; i < got && s->ndata < sizeof s->data; i++)
                s->data[s->ndata++] = data[i];
            if (got) { /* echo data back, escaped */
                uint8_t esc[512];
                size_t used;
                send_all(fd, esc, pf_telnet_escape(data, got, esc, sizeof esc, &used));
            }
            if (ev.kind == PF_TELNET_NEGOTIATE && ev.verb == PF_TELNET_DONT && ev.option == 1)
                s->got_dont_echo = 1;
            uint8_t cmd;
            uint32_t value;
            if (pf_rfc2217_parse(&ev, &cmd, &value) != 0)
                continue;
            if (s->ncmds < 32) {
                s->cmds[s->ncmds] = cmd;
                s->values[s->ncmds++] = value;
            }
            if (!injected) {
                /* data while the client waits for its first answer: x FF y,
                 * the IAC IAC pair split across two segments */
                send_all(fd, "x\xff", 2);
                usleep(20000);
                send_all(fd, "\xffy", 2);
                usleep(20000);
                injected = 1;
            }
            if (cmd == PF_RFC2217_SET_CONTROL && !s->answer_control)
                continue;
            uint8_t msg[PF_RFC2217_MSG_MAX];
            send_all(fd, msg,
                     pf_rfc2217_message(msg, cmd + PF_RFC2217_SERVER_OFFSET, value,
                                        cmd == PF_RFC2217_SET_BAUDRATE ? 4 : 1));
        }
    }
out:
    close(fd);
    return NULL;
}

static int start_server(server *s, pthread_t *th)
{
    s->listen_fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {0};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof a;
    if (bind(s->listen_fd, (struct sockaddr *)&a, sizeof a) != 0 || listen(s->listen_fd, 1) != 0 ||
        getsockname(s->listen_fd, (struct sockaddr *)&a, &len) != 0)
        return -1;
    s->port = ntohs(a.sin_port);
    return pthread_create(th, NULL, serve, s);
}

static void test_line_changes_keep_data(void)
{
    static server s;
    memset(&s, 0, sizeof s);
    s.answer_control = 1;
    pthread_t th;
    REQUIRE(start_server(&s, &th) == 0);
    char spec[64];
    snprintf(spec, sizeof spec, "rfc2217://127.0.0.1:%d", s.port);
    pf_posix_link l;
    pf_port p;
    pf_diag d = {0};
    REQUIRE(pf_posix_open(&l, spec, &d) == PF_OK);
    CHECK_EQ(l.kind, PF_POSIX_RFC2217);
    pf_posix_port(&l, &p);
    CHECK_EQ(p.set_line(p.ctx, 115200, PF_FRAME_8E1), PF_OK);
    CHECK_EQ(p.set_lines(p.ctx, PF_LINE_ASSERT, PF_LINE_RELEASE), PF_OK);
    /* the data that came while set_line waited: x FF y */
    uint8_t buf[8];
    CHECK_EQ(pf_port_read_exact(&p, buf, 3, pf_deadline(&p, 2000), NULL), 3);
    CHECK(buf[0] == 'x' && buf[1] == 0xFF && buf[2] == 'y');
    /* 0xFF both ways: escaped on the way out, echoed back */
    const uint8_t out[] = {0xFF, 0x00, 0xFF, 0xFF, 0x0D};
    CHECK_EQ(pf_port_write_all(&p, out, sizeof out), (int)sizeof out);
    CHECK_EQ(pf_port_read_exact(&p, buf, sizeof out, pf_deadline(&p, 2000), NULL), (int)sizeof out);
    CHECK(memcmp(buf, out, sizeof out) == 0);
    pf_posix_close(&l);
    pthread_join(th, NULL);
    close(s.listen_fd);
    uint8_t want_hello[PF_TELNET_HELLO_MAX];
    pf_telnet_options o;
    CHECK_EQ(s.hello_len, pf_telnet_client_hello(&o, want_hello));
    CHECK(memcmp(s.hello, want_hello, s.hello_len) == 0);
    CHECK(s.got_dont_echo);
    /* rate, size, parity EVEN, 1 stop bit, then DTR on and RTS off, in order */
    const uint8_t cmds[] = {1, 2, 3, 4, 5, 5};
    const uint32_t values[] = {115200, 8, PF_RFC2217_PARITY_EVEN, 1, PF_RFC2217_CONTROL_DTR_ON,
                               PF_RFC2217_CONTROL_RTS_OFF};
    REQUIRE(s.ncmds == 6);
    for (size_t i = 0; i < 6; i++) {
        CHECK_EQ(s.cmds[i], cmds[i]);
        CHECK_EQ(s.values[i], values[i]);
    }
    CHECK_EQ(s.ndata, sizeof out);
    CHECK(memcmp(s.data, out, sizeof out) == 0);
}

static void test_unanswered_control_means_no_modem_lines(void)
{
    static server s;
    memset(&s, 0, sizeof s);
    pthread_t th;
    REQUIRE(start_server(&s, &th) == 0);
    char spec[64];
    snprintf(spec, sizeof spec, "rfc2217://127.0.0.1:%d", s.port);
    pf_posix_link l;
    pf_port p;
    REQUIRE(pf_posix_open(&l, spec, NULL) == PF_OK);
    pf_posix_port(&l, &p);
    uint32_t t0 = pf_posix_now_ms();
    CHECK_EQ(p.set_lines(p.ctx, PF_LINE_ASSERT, PF_LINE_KEEP), PF_ERR_UNSUPPORTED);
    uint32_t waited = pf_posix_now_ms() - t0;
    CHECK(waited >= 900 && waited < 3000);
    t0 = pf_posix_now_ms();
    CHECK_EQ(p.set_lines(p.ctx, PF_LINE_RELEASE, PF_LINE_ASSERT), PF_ERR_UNSUPPORTED);
    CHECK(pf_posix_now_ms() - t0 < 100); /* known now: no second wait */
    CHECK_EQ(pf_port_set_lines(&p, PF_LINE_ASSERT, PF_LINE_ASSERT), PF_ERR_UNSUPPORTED); /* said, not hidden */
    pf_posix_close(&l);
    pthread_join(th, NULL);
    close(s.listen_fd);
}

int main(void)
{
    RUN(test_line_changes_keep_data);
    RUN(test_unanswered_control_means_no_modem_lines);
    return pf_test_summary();
}
