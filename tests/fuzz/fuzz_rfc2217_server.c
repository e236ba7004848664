/* libFuzzer: the RFC 2217 server session of `peerflash serve --rfc2217-port`
 * (src/serve/rfc2217_server.c) on arbitrary client bytes, split at a point
 * the input chooses, over a port whose set_line/set_lines succeed, have no
 * such thing or fail, as the first input byte says. Checks that the data the
 * port receives is exactly the telnet data of the input (decoded on its own),
 * and that everything sent back to the client is well-formed telnet with no
 * data: negotiation answers and COM-PORT-OPTION answers (codes >= 100). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "serve/rfc2217_server.h"

typedef struct fake {
    int line_rc, lines_rc;
    uint8_t wrote[8192];
    size_t wrote_len;
    pf_telnet reply_dec;
    size_t replies;
} fake;

static int port_write(void *ctx, const uint8_t *buf, size_t n)
{
    fake *f = ctx;
    if (f->wrote_len + n > sizeof f->wrote)
        abort(); /* more data than the input held */
    memcpy(f->wrote + f->wrote_len, buf, n);
    f->wrote_len += n;
    return (int)n;
}

static int port_set_line(void *ctx, uint32_t baud, pf_frame frame)
{
    (void)baud;
    (void)frame;
    return ((fake *)ctx)->line_rc;
}

static int port_set_lines(void *ctx, int dtr, int rts)
{
    (void)dtr;
    (void)rts;
    return ((fake *)ctx)->lines_rc;
}

static int to_client(void *ctx, const uint8_t *buf, size_t n)
{
    fake *f = ctx;
    size_t at = 0;
    while (at < n) {
        uint8_t data[64];
        size_t got, part = n - at < sizeof data ? n - at : sizeof data;
        pf_telnet_event ev;
        at += pf_telnet_decode(&f->reply_dec, buf + at, part, data, &got, &ev);
        if (got)
            abort(); /* the server's answers carry no data */
        if (ev.kind == PF_TELNET_SUBNEG &&
            (ev.option != PF_TELNET_OPT_COM_PORT || ev.len < 1 || ev.payload[0] < PF_RFC2217_SERVER_OFFSET))
            abort();
        if (ev.kind == PF_TELNET_COMMAND)
            abort();
        f->replies += ev.kind != PF_TELNET_NONE;
    }
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *in, size_t n)
{
    if (n < 2 || n > 4096)
        return 0;
    static const int rcs[] = {PF_OK, PF_ERR_UNSUPPORTED, PF_ERR_IO};
    static fake f;
    memset(&f, 0, sizeof f);
    pf_telnet_init(&f.reply_dec);
    f.line_rc = rcs[in[0] % 3];
    f.lines_rc = rcs[in[0] / 3 % 3];
    size_t split = in[1] % (n - 1);
    in += 2;
    n -= 2;
    pf_port port;
    memset(&port, 0, sizeof port);
    port.ctx = &f;
    port.write = port_write;
    port.set_line = port_set_line;
    port.set_lines = port_set_lines;
    serve_rfc2217_io io = {&f, to_client, NULL};
    serve_rfc2217 s;
    serve_rfc2217_begin(&s, &io, &port, 115200, PF_FRAME_8N1);
    if (serve_rfc2217_from_client(&s, in, split) < 0 || serve_rfc2217_from_client(&s, in + split, n - split) < 0)
        abort(); /* the port and the client never fail here */
    /* the data alone, by the codec in one piece */
    static uint8_t want[4096];
    size_t want_len = 0, at = 0;
    pf_telnet t;
    pf_telnet_init(&t);
    while (at < n) {
        size_t got;
        pf_telnet_event ev;
        at += pf_telnet_decode(&t, in + at, n - at, want + want_len, &got, &ev);
        want_len += got;
    }
    if (want_len != f.wrote_len || memcmp(want, f.wrote, want_len) != 0)
        abort();
    return 0;
}
