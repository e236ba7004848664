/* The RFC 2217 server session of a bridge client (see rfc2217_server.h).
 *
 * RFC 2217 section 3: the server answers each SET-* with code + 100 and the
 * value now in effect; a value 0 asks for the current one. The port layer
 * has two frames, 8N1 and 8E1, so a request for another data size, parity
 * or stop size is answered with what stays in effect (pyserial then reports
 * "Remote rejected value"). A port without modem lines (a pty) cannot do
 * DTR/RTS: those requests go unanswered, as ser2net does in front of a pty
 * (shared/notes/network/02-ser2net-rfc2217-pty.md), which our own
 * rfc2217:// client reads as "no modem lines". */
#include "rfc2217_server.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

static int send_all(serve_rfc2217 *s, const uint8_t *buf, size_t n)
{
    return s->io.to_client(s->io.ctx, buf, n) < 0 ? -2 : 0;
}

static void note(serve_rfc2217 *s, const char *extra, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void note(serve_rfc2217 *s, const char *extra, const char *fmt, ...)
{
    char text[200];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(text, sizeof text, fmt, ap);
    va_end(ap);
    if (s->io.note)
        s->io.note(s->io.ctx, extra, text);
}

static int answer(serve_rfc2217 *s, uint8_t cmd, uint32_t value, size_t len)
{
    uint8_t msg[PF_RFC2217_MSG_MAX];
    return send_all(s, msg, pf_rfc2217_message(msg, (uint8_t)(cmd + PF_RFC2217_SERVER_OFFSET), value, len));
}

/* The port's own answers: pf_port_set_line(s) report a missing rate or
 * missing modem lines as success, and the client must learn the truth. */
static int port_set_line(const pf_port *p, uint32_t baud, pf_frame frame)
{
    return p->set_line ? p->set_line(p->ctx, baud, frame) : PF_ERR_UNSUPPORTED;
}

static int port_set_lines(const pf_port *p, int dtr, int rts)
{
    return p->set_lines ? p->set_lines(p->ctx, dtr, rts) : PF_ERR_UNSUPPORTED;
}

static const char *frame_name(pf_frame f)
{
    return f == PF_FRAME_8E1 ? "8E1" : "8N1";
}

/* Applies baud/frame to the port; on success they become the current ones. */
static void apply_line(serve_rfc2217 *s, uint32_t baud, pf_frame frame)
{
    if (baud == s->baud && frame == s->frame)
        return;
    int rc = port_set_line(s->port, baud, frame);
    char extra[80];
    snprintf(extra, sizeof extra, "\"baud\":%lu,\"frame\":\"%s\",\"applied\":%s", (unsigned long)baud,
             frame_name(frame), rc == PF_OK || rc == PF_ERR_UNSUPPORTED ? "true" : "false");
    if (rc == PF_OK || rc == PF_ERR_UNSUPPORTED) {
        s->baud = baud;
        s->frame = frame;
        note(s, extra, "line %lu %s%s", (unsigned long)baud, frame_name(frame),
             rc == PF_ERR_UNSUPPORTED ? " (the port has no line rate: a TCP link)" : " applied");
    } else {
        note(s, extra, "the port refused line %lu %s (%s); %lu %s stays", (unsigned long)baud, frame_name(frame),
             pf_strerror(rc), (unsigned long)s->baud, frame_name(s->frame));
    }
}

/* DTR (dtr = 1) or RTS (dtr = 0) on/off. Returns 1 if applied (answer it). */
static int apply_control_line(serve_rfc2217 *s, int dtr, int on)
{
    const char *name = dtr ? "DTR" : "RTS";
    if (!s->no_modem_lines) {
        int level = on ? PF_LINE_ASSERT : PF_LINE_RELEASE;
        int rc = port_set_lines(s->port, dtr ? level : PF_LINE_KEEP, dtr ? PF_LINE_KEEP : level);
        char extra[64];
        snprintf(extra, sizeof extra, "\"line\":\"%s\",\"on\":%s,\"applied\":%s", name, on ? "true" : "false",
                 rc == PF_OK ? "true" : "false");
        if (rc == PF_OK) {
            *(dtr ? &s->dtr : &s->rts) = on;
            note(s, extra, "%s %s applied", name, on ? "on" : "off");
            return 1;
        }
        if (rc == PF_ERR_UNSUPPORTED)
            s->no_modem_lines = 1;
        note(s, extra, "%s %s not applied: %s; DTR/RTS requests are not answered", name, on ? "on" : "off",
             rc == PF_ERR_UNSUPPORTED ? "the port has no modem lines (a pty or TCP link)" : pf_strerror(rc));
    }
    return 0;
}

static int handle_control(serve_rfc2217 *s, uint32_t v)
{
    switch (v) {
    case PF_RFC2217_CONTROL_FLOW_REQUEST:
    case PF_RFC2217_CONTROL_NO_FLOW:
    case 2: /* XON/XOFF */
    case 3: /* hardware: the port layer has no flow control; no flow is what stays */
        return answer(s, PF_RFC2217_SET_CONTROL, PF_RFC2217_CONTROL_NO_FLOW, 1);
    case PF_RFC2217_CONTROL_INBOUND_FLOW_REQUEST:
    case PF_RFC2217_CONTROL_INBOUND_NO_FLOW:
    case 15:
    case PF_RFC2217_CONTROL_INBOUND_HW_FLOW:
        return answer(s, PF_RFC2217_SET_CONTROL, PF_RFC2217_CONTROL_INBOUND_NO_FLOW, 1);
    case PF_RFC2217_CONTROL_BREAK_REQUEST:
    case 5: /* BREAK on: the port layer cannot send a break */
    case PF_RFC2217_CONTROL_BREAK_OFF:
        return answer(s, PF_RFC2217_SET_CONTROL, PF_RFC2217_CONTROL_BREAK_OFF, 1);
    case PF_RFC2217_CONTROL_DTR_REQUEST:
        return s->no_modem_lines ? 0
                                 : answer(s, PF_RFC2217_SET_CONTROL,
                                          s->dtr ? PF_RFC2217_CONTROL_DTR_ON : PF_RFC2217_CONTROL_DTR_OFF, 1);
    case PF_RFC2217_CONTROL_RTS_REQUEST:
        return s->no_modem_lines ? 0
                                 : answer(s, PF_RFC2217_SET_CONTROL,
                                          s->rts ? PF_RFC2217_CONTROL_RTS_ON : PF_RFC2217_CONTROL_RTS_OFF, 1);
    case PF_RFC2217_CONTROL_DTR_ON:
    case PF_RFC2217_CONTROL_DTR_OFF:
    case PF_RFC2217_CONTROL_RTS_ON:
    case PF_RFC2217_CONTROL_RTS_OFF: {
        int dtr = v == PF_RFC2217_CONTROL_DTR_ON || v == PF_RFC2217_CONTROL_DTR_OFF;
        int on = v == PF_RFC2217_CONTROL_DTR_ON || v == PF_RFC2217_CONTROL_RTS_ON;
        return apply_control_line(s, dtr, on) ? answer(s, PF_RFC2217_SET_CONTROL, v, 1) : 0;
    }
    default: s->ignored++; return 0;
    }
}

/* One COM-PORT-OPTION request from the client. */
static int handle_request(serve_rfc2217 *s, const pf_telnet_event *ev)
{
    uint8_t cmd;
    uint32_t v;
    if (pf_rfc2217_parse(ev, &cmd, &v) < 0) {
        s->ignored++;
        return 0;
    }
    /* RFC 2217 values are 4 bytes for the rate and 1 for the others: a
     * request of another length is a client's error, not a value */
    int sized = (cmd >= PF_RFC2217_SET_BAUDRATE && cmd <= PF_RFC2217_SET_CONTROL) ||
                (cmd >= PF_RFC2217_SET_LINESTATE_MASK && cmd <= PF_RFC2217_PURGE_DATA);
    if (sized && ev->len != (cmd == PF_RFC2217_SET_BAUDRATE ? 5u : 2u)) {
        s->ignored++;
        return 0;
    }
    switch (cmd) {
    case PF_RFC2217_SIGNATURE: {
        static const uint8_t sig[] = {PF_TELNET_IAC, PF_TELNET_SB, PF_TELNET_OPT_COM_PORT, PF_RFC2217_SERVER_OFFSET,
                                      'p', 'e', 'e', 'r', 'f', 'l', 'a', 's', 'h', PF_TELNET_IAC, PF_TELNET_SE};
        return ev->len == 1 ? send_all(s, sig, sizeof sig) : 0; /* a client's own signature: nothing to do */
    }
    case PF_RFC2217_SET_BAUDRATE:
        if (v)
            apply_line(s, v, s->frame);
        return answer(s, cmd, s->baud, 4);
    case PF_RFC2217_SET_DATASIZE: return answer(s, cmd, 8, 1); /* both frames have 8 data bits */
    case PF_RFC2217_SET_PARITY:
        if (v == PF_RFC2217_PARITY_NONE || v == PF_RFC2217_PARITY_EVEN)
            apply_line(s, s->baud, v == PF_RFC2217_PARITY_EVEN ? PF_FRAME_8E1 : PF_FRAME_8N1);
        return answer(s, cmd, s->frame == PF_FRAME_8E1 ? PF_RFC2217_PARITY_EVEN : PF_RFC2217_PARITY_NONE, 1);
    case PF_RFC2217_SET_STOPSIZE: return answer(s, cmd, PF_RFC2217_STOPSIZE_1, 1);
    case PF_RFC2217_SET_CONTROL: return handle_control(s, v);
    case PF_RFC2217_SET_LINESTATE_MASK:
    case PF_RFC2217_SET_MODEMSTATE_MASK:
        return answer(s, cmd, v & 0xFF, 1); /* accepted; we send no notifications */
    case PF_RFC2217_PURGE_DATA:
        if ((v == 1 || v == 3) && s->port->flush_input)
            s->port->flush_input(s->port->ctx);
        return answer(s, cmd, v & 0xFF, 1);
    default: s->ignored++; return 0; /* FLOWCONTROL-SUSPEND/RESUME, server codes, unknown */
    }
}

void serve_rfc2217_begin(serve_rfc2217 *s, const serve_rfc2217_io *io, const pf_port *port, uint32_t baud,
                         pf_frame frame)
{
    memset(s, 0, sizeof *s);
    pf_telnet_init(&s->dec);
    pf_telnet_server_init(&s->opts);
    s->io = *io;
    s->port = port;
    s->baud = baud;
    s->frame = frame;
    s->dtr = s->rts = 1; /* Linux raises both when a tty is opened */
}

int serve_rfc2217_from_client(serve_rfc2217 *s, const uint8_t *in, size_t n)
{
    uint8_t data[4096];
    size_t at = 0;
    while (at < n) {
        size_t part = n - at < sizeof data ? n - at : sizeof data, got;
        pf_telnet_event ev;
        at += pf_telnet_decode(&s->dec, in + at, part, data, &got, &ev);
        if (got && pf_port_write_all(s->port, data, got) < 0)
            return -1;
        int rc = 0;
        if (ev.kind == PF_TELNET_NEGOTIATE) {
            uint8_t reply[3];
            size_t len = pf_telnet_answer(&s->opts, ev.verb, ev.option, reply);
            if (len)
                rc = send_all(s, reply, len);
        } else if (ev.kind == PF_TELNET_SUBNEG && ev.option == PF_TELNET_OPT_COM_PORT && !ev.truncated) {
            rc = handle_request(s, &ev);
        } else if (ev.kind != PF_TELNET_NONE) {
            s->ignored++;
        }
        if (rc < 0)
            return rc;
    }
    return 0;
}

int serve_rfc2217_to_client(serve_rfc2217 *s, const uint8_t *in, size_t n)
{
    uint8_t out[8192];
    while (n) {
        size_t used;
        size_t len = pf_telnet_escape(in, n, out, sizeof out, &used);
        if (send_all(s, out, len) < 0)
            return -2;
        in += used;
        n -= used;
    }
    return 0;
}
