/* The RFC 2217 side of a bridge client (--rfc2217-port): the telnet layer of
 * src/codec/telnet.c in the server role, the client's COM-PORT-OPTION
 * requests applied to the target's port through the port layer, and the
 * answers RFC 2217 asks for (the value now in effect). */
#ifndef PEERFLASH_SERVE_RFC2217_SERVER_H
#define PEERFLASH_SERVE_RFC2217_SERVER_H

#include "codec/telnet.h"
#include "peerflash/pf_err.h"
#include "peerflash/pf_port.h"

/* Where a session's answers and log lines go (bridge.c: the client's socket
 * and the daemon's log; the fuzzer: buffers). No I/O of its own, so the
 * request handling can be fuzzed (tests/fuzz/fuzz_rfc2217_server.c). */
typedef struct serve_rfc2217_io {
    void *ctx;
    int (*to_client)(void *ctx, const uint8_t *buf, size_t n); /* 0, or <0: the client is gone */
    /* one event: extra is a JSON fragment ("\"baud\":9600,..."), text the words */
    void (*note)(void *ctx, const char *extra, const char *text);
} serve_rfc2217_io;

typedef struct serve_rfc2217 {
    pf_telnet dec;
    pf_telnet_options opts;
    const pf_port *port;
    serve_rfc2217_io io;
    uint32_t baud;       /* in effect on the port */
    pf_frame frame;
    int dtr, rts;        /* last applied (1 on, 0 off) */
    int no_modem_lines;  /* the port said it has none: DTR/RTS requests go unanswered */
    unsigned long ignored; /* requests we do not act on (logged at the end) */
} serve_rfc2217;

/* Starts a session on a port already set to baud/frame. */
void serve_rfc2217_begin(serve_rfc2217 *s, const serve_rfc2217_io *io, const pf_port *port, uint32_t baud,
                         pf_frame frame);
/* Bytes from the client: data to the port (unescaped), requests handled.
 * Returns 0, -1 the port failed, -2 the client went away. */
int serve_rfc2217_from_client(serve_rfc2217 *s, const uint8_t *in, size_t n);
/* Bytes from the port to the client, IAC doubled. 0 or -2 (client gone). */
int serve_rfc2217_to_client(serve_rfc2217 *s, const uint8_t *in, size_t n);

#endif
