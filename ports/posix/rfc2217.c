/* rfc2217://HOST:PORT: a serial port behind a telnet COM-PORT-OPTION server
 * (RFC 2217), such as ser2net's telnet(rfc2217) accepter or pyserial's
 * PortManager. The telnet byte layer is the codec in src/codec/telnet.c;
 * this file does the I/O: it connects, negotiates, escapes what is written,
 * and keeps received data apart from the server's answers.
 *
 * Every line change (rate, frame, DTR, RTS) waits for the server's answer:
 * a reset sequence's delays must run after the line really changed, and the
 * data after a rate change must go at the new rate. Data arriving meanwhile
 * is kept for the next read.
 *
 * ser2net in front of a pty never answers SET-CONTROL (a pty has no modem
 * lines: TIOCMSET fails there, shared/notes/network/02-ser2net-rfc2217-pty.md),
 * so an unanswered line change makes the link a "no modem lines" link, as a
 * pty is: later calls return PF_ERR_UNSUPPORTED at once. */
#include <errno.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "codec/telnet.h"
#include "posix_link.h"

#define NEGOTIATE_MS 3000u  /* the server's answer to WILL COM-PORT-OPTION */
#define LINE_ANSWER_MS 3000u /* rate, frame: a server that speaks RFC 2217 answers these */
#define CONTROL_ANSWER_MS 1000u /* DTR/RTS: unanswered in front of a pty (see above) */
#define PENDING_MAX 65536u

typedef struct pf_rfc2217_session {
    pf_telnet dec;
    pf_telnet_options opts;
    int accepted;      /* the server said DO COM-PORT-OPTION */
    int refused;       /* ... or DONT */
    int control_mute;  /* SET-CONTROL went unanswered once */
    uint8_t answered[16]; /* server answer seen, by client command code */
    uint32_t answer[16];
    size_t len;        /* received data not yet read */
    uint8_t pending[PENDING_MAX];
    char spec[sizeof ((pf_endpoint *)0)->spec]; /* as given by the user */
} pf_rfc2217_session;

static void say(pf_posix_link *l, int level, const char *fmt, ...)
{
    if (level > l->log_level)
        return;
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "peerflash[%d]: rfc2217: ", level);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
}

static void handle_event(pf_posix_link *l, const pf_telnet_event *ev)
{
    pf_rfc2217_session *s = l->rfc2217;
    if (ev->kind == PF_TELNET_NEGOTIATE) {
        if (ev->option == PF_TELNET_OPT_COM_PORT && ev->verb == PF_TELNET_DO)
            s->accepted = 1;
        if (ev->option == PF_TELNET_OPT_COM_PORT && ev->verb == PF_TELNET_DONT)
            s->refused = 1;
        uint8_t reply[3];
        size_t n = pf_telnet_answer(&s->opts, ev->verb, ev->option, reply);
        if (n)
            pf_posix_send_all(l, reply, n);
        return;
    }
    uint8_t cmd;
    uint32_t value;
    if (ev->kind == PF_TELNET_SUBNEG && pf_rfc2217_parse(ev, &cmd, &value) == 0 &&
        cmd > PF_RFC2217_SERVER_OFFSET && cmd < PF_RFC2217_SERVER_OFFSET + 16) {
        s->answered[cmd - PF_RFC2217_SERVER_OFFSET] = 1;
        s->answer[cmd - PF_RFC2217_SERVER_OFFSET] = value;
        say(l, 3, "server answer %u = %lu", (unsigned)cmd, (unsigned long)value);
    }
}

/* Reads what the socket has within wait_ms, decodes it into pending and
 * handles commands. Returns the raw bytes read (0: nothing in time), or
 * PF_ERR_CLOSED / PF_ERR_IO. */
static int pump(pf_posix_link *l, uint32_t wait_ms)
{
    pf_rfc2217_session *s = l->rfc2217;
    size_t room = PENDING_MAX - s->len;
    if (room == 0)
        return 0;
    struct pollfd p = {l->fd, POLLIN, 0};
    int pr;
    do
        pr = poll(&p, 1, (int)wait_ms);
    while (pr < 0 && errno == EINTR);
    if (pr < 0)
        return PF_ERR_IO;
    if (pr == 0)
        return 0;
    uint8_t raw[4096];
    ssize_t r = recv(l->fd, raw, room < sizeof raw ? room : sizeof raw, 0);
    if (r < 0 && (errno == EAGAIN || errno == EINTR))
        return 0;
    if (r <= 0)
        return PF_ERR_CLOSED;
    size_t at = 0;
    while (at < (size_t)r) {
        pf_telnet_event ev;
        size_t got;
        at += pf_telnet_decode(&s->dec, raw + at, (size_t)r - at, s->pending + s->len, &got, &ev);
        s->len += got;
        if (ev.kind != PF_TELNET_NONE)
            handle_event(l, &ev);
    }
    return (int)r;
}

/* Sends an RFC 2217 command and waits for the server's answer to it. */
static int command(pf_posix_link *l, uint8_t cmd, uint32_t value, size_t value_len, uint32_t timeout_ms,
                   uint32_t *answer)
{
    pf_rfc2217_session *s = l->rfc2217;
    uint8_t msg[PF_RFC2217_MSG_MAX];
    s->answered[cmd] = 0;
    int rc = pf_posix_send_all(l, msg, pf_rfc2217_message(msg, cmd, value, value_len));
    if (rc < 0)
        return rc;
    uint32_t deadline = pf_posix_now_ms() + timeout_ms;
    while (!s->answered[cmd]) {
        int32_t left = (int32_t)(deadline - pf_posix_now_ms());
        if (left <= 0)
            return PF_ERR_TIMEOUT;
        if (s->len == PENDING_MAX) {
            say(l, 0, "%lu bytes of data arrived while waiting for an answer: giving up",
                (unsigned long)PENDING_MAX);
            return PF_ERR_IO;
        }
        rc = pump(l, (uint32_t)left);
        if (rc < 0)
            return rc;
    }
    if (answer)
        *answer = s->answer[cmd];
    return PF_OK;
}

int pf_rfc2217_open(pf_posix_link *l, const pf_endpoint *ep, pf_diag *diag)
{
    const char *spec = ep->spec;
    int rc = pf_posix_tcp_connect(l, ep, diag);
    if (rc)
        return rc;
    pf_rfc2217_session *s = calloc(1, sizeof *s);
    if (!s) {
        close(l->fd);
        l->fd = -1;
        return pf_diag_set(diag, PF_ERR_NOMEM, "%s: out of memory", spec);
    }
    l->rfc2217 = s;
    l->kind = PF_POSIX_RFC2217;
    snprintf(s->spec, sizeof s->spec, "%s", spec);
    pf_telnet_init(&s->dec);
    uint8_t hello[PF_TELNET_HELLO_MAX];
    rc = pf_posix_send_all(l, hello, pf_telnet_client_hello(&s->opts, hello));
    uint32_t deadline = pf_posix_now_ms() + NEGOTIATE_MS;
    while (rc >= 0 && !s->accepted && !s->refused) {
        int32_t left = (int32_t)(deadline - pf_posix_now_ms());
        if (left <= 0)
            break;
        rc = pump(l, (uint32_t)left);
    }
    if (rc < 0 || !s->accepted) {
        const char *why = rc == PF_ERR_CLOSED ? "the server closed the connection"
                          : rc < 0            ? "the connection failed"
                          : s->refused        ? "the server refused COM-PORT-OPTION (DONT 44)"
                                              : "no answer to WILL COM-PORT-OPTION within 3 s";
        pf_diag_set(diag, PF_ERR_IO,
                    "%s: not an RFC 2217 server: %s (for a raw TCP serial bridge use tcp://HOST:PORT)", spec,
                    why);
        pf_rfc2217_close(l);
        close(l->fd);
        l->fd = -1;
        return PF_ERR_IO;
    }
    say(l, 2, "%s: COM-PORT-OPTION agreed", spec);
    return PF_OK;
}

void pf_rfc2217_close(pf_posix_link *l)
{
    free(l->rfc2217);
    l->rfc2217 = NULL;
}

int pf_rfc2217_read(pf_posix_link *l, uint8_t *buf, size_t n, uint32_t timeout_ms)
{
    pf_rfc2217_session *s = l->rfc2217;
    uint32_t deadline = pf_posix_now_ms() + timeout_ms;
    size_t got = 0;
    for (;;) {
        size_t take = s->len < n - got ? s->len : n - got;
        if (take) {
            memcpy(buf + got, s->pending, take);
            memmove(s->pending, s->pending + take, s->len - take);
            s->len -= take;
            got += take;
        }
        if (got == n)
            return (int)got;
        int32_t left = (int32_t)(deadline - pf_posix_now_ms());
        if (left < 0)
            left = 0;
        /* like the other links: wait for the first byte, then take only
         * what is already there */
        int rc = pump(l, got ? 0u : (uint32_t)left);
        if (rc < 0)
            return got ? (int)got : rc;
        if (rc == 0 && (got || left == 0))
            return (int)got;
    }
}

int pf_rfc2217_write(pf_posix_link *l, const uint8_t *buf, size_t n)
{
    uint8_t out[4096];
    size_t done = 0;
    while (done < n) {
        size_t used;
        size_t len = pf_telnet_escape(buf + done, n - done, out, sizeof out, &used);
        int rc = pf_posix_send_all(l, out, len);
        if (rc < 0)
            return rc;
        done += used;
    }
    return (int)n;
}

int pf_rfc2217_flush_input(pf_posix_link *l)
{
    pf_rfc2217_session *s = l->rfc2217;
    s->len = 0;
    while (pump(l, 0) > 0)
        s->len = 0;
    s->len = 0;
    return PF_OK;
}

int pf_rfc2217_set_line(pf_posix_link *l, uint32_t baud, pf_frame frame)
{
    uint32_t want_parity = frame == PF_FRAME_8E1 ? PF_RFC2217_PARITY_EVEN : PF_RFC2217_PARITY_NONE;
    const struct {
        uint8_t cmd;
        uint32_t value;
        size_t len;
        const char *what;
    } steps[] = {
        {PF_RFC2217_SET_BAUDRATE, baud, 4, "line rate"},
        {PF_RFC2217_SET_DATASIZE, 8, 1, "data bits"},
        {PF_RFC2217_SET_PARITY, want_parity, 1, "parity"},
        {PF_RFC2217_SET_STOPSIZE, 1, 1, "stop bits"},
    };
    for (size_t i = 0; i < sizeof steps / sizeof steps[0]; i++) {
        uint32_t got = 0;
        int rc = command(l, steps[i].cmd, steps[i].value, steps[i].len, LINE_ANSWER_MS, &got);
        if (rc < 0) {
            say(l, 0, "%s: no answer to setting the %s", l->rfc2217->spec, steps[i].what);
            return rc == PF_ERR_TIMEOUT ? PF_ERR_IO : rc;
        }
        if (got != steps[i].value) {
            say(l, 0, "%s: asked for %s %lu, the server set %lu", l->rfc2217->spec, steps[i].what,
                (unsigned long)steps[i].value, (unsigned long)got);
            return PF_ERR_IO;
        }
    }
    l->baud = baud;
    l->frame = frame;
    return PF_OK;
}

static int control(pf_posix_link *l, int value)
{
    pf_rfc2217_session *s = l->rfc2217;
    if (s->control_mute)
        return PF_ERR_UNSUPPORTED;
    int rc = command(l, PF_RFC2217_SET_CONTROL, (uint32_t)value, 1, CONTROL_ANSWER_MS, NULL);
    if (rc == PF_ERR_TIMEOUT) {
        s->control_mute = 1;
        say(l, 1, "%s: no answer to DTR/RTS (a server in front of a pty has no modem lines); going on without them",
            s->spec);
        return PF_ERR_UNSUPPORTED;
    }
    return rc;
}

int pf_rfc2217_set_lines(pf_posix_link *l, int dtr, int rts)
{
    int rc = PF_OK;
    if (dtr != PF_LINE_KEEP)
        rc = control(l, dtr == PF_LINE_ASSERT ? PF_RFC2217_CONTROL_DTR_ON : PF_RFC2217_CONTROL_DTR_OFF);
    if (rc == PF_OK && rts != PF_LINE_KEEP)
        rc = control(l, rts == PF_LINE_ASSERT ? PF_RFC2217_CONTROL_RTS_ON : PF_RFC2217_CONTROL_RTS_OFF);
    return rc;
}
