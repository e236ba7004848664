/* Telnet (RFC 854/855) byte layer and the RFC 2217 COM-PORT-OPTION messages,
 * as a serial-over-TCP client needs them. Pure code, no I/O, no allocation.
 *
 * In the data stream 0xFF (IAC) starts a command; a data byte 0xFF is sent as
 * IAC IAC. Commands: IAC WILL|WONT|DO|DONT OPT (negotiation), IAC SB OPT ...
 * IAC SE (subnegotiation; a 0xFF inside is doubled too), IAC <other> (NOP,
 * GA...: ignored). The decoder keeps its state between calls, so a command
 * or an IAC IAC pair may be split across reads at any byte. */
#ifndef PEERFLASH_CODEC_TELNET_H
#define PEERFLASH_CODEC_TELNET_H

#include <stddef.h>
#include <stdint.h>

#define PF_TELNET_IAC 255
#define PF_TELNET_DONT 254
#define PF_TELNET_DO 253
#define PF_TELNET_WONT 252
#define PF_TELNET_WILL 251
#define PF_TELNET_SB 250
#define PF_TELNET_SE 240

#define PF_TELNET_OPT_BINARY 0
#define PF_TELNET_OPT_SGA 3
#define PF_TELNET_OPT_COM_PORT 44 /* RFC 2217 */

/* RFC 2217 client-to-server commands; the server answers with code + 100. */
#define PF_RFC2217_SIGNATURE 0
#define PF_RFC2217_SET_BAUDRATE 1
#define PF_RFC2217_SET_DATASIZE 2
#define PF_RFC2217_SET_PARITY 3
#define PF_RFC2217_SET_STOPSIZE 4
#define PF_RFC2217_SET_CONTROL 5
#define PF_RFC2217_NOTIFY_LINESTATE 6
#define PF_RFC2217_NOTIFY_MODEMSTATE 7
#define PF_RFC2217_FLOWCONTROL_SUSPEND 8
#define PF_RFC2217_FLOWCONTROL_RESUME 9
#define PF_RFC2217_SET_LINESTATE_MASK 10
#define PF_RFC2217_SET_MODEMSTATE_MASK 11
#define PF_RFC2217_PURGE_DATA 12
#define PF_RFC2217_SERVER_OFFSET 100

/* SET-PARITY, SET-STOPSIZE and SET-CONTROL values (RFC 2217 section 3); a
 * value 0 in SET-BAUDRATE/DATASIZE/PARITY/STOPSIZE asks for the current one. */
#define PF_RFC2217_PARITY_NONE 1
#define PF_RFC2217_PARITY_ODD 2
#define PF_RFC2217_PARITY_EVEN 3
#define PF_RFC2217_STOPSIZE_1 1
#define PF_RFC2217_CONTROL_FLOW_REQUEST 0
#define PF_RFC2217_CONTROL_NO_FLOW 1
#define PF_RFC2217_CONTROL_BREAK_REQUEST 4
#define PF_RFC2217_CONTROL_BREAK_OFF 6
#define PF_RFC2217_CONTROL_DTR_REQUEST 7
#define PF_RFC2217_CONTROL_DTR_ON 8
#define PF_RFC2217_CONTROL_DTR_OFF 9
#define PF_RFC2217_CONTROL_RTS_REQUEST 10
#define PF_RFC2217_CONTROL_RTS_ON 11
#define PF_RFC2217_CONTROL_RTS_OFF 12
#define PF_RFC2217_CONTROL_INBOUND_FLOW_REQUEST 13
#define PF_RFC2217_CONTROL_INBOUND_NO_FLOW 14
#define PF_RFC2217_CONTROL_INBOUND_HW_FLOW 16

/* Longest subnegotiation payload kept (RFC 2217's longest is SIGNATURE text);
 * longer ones are reported truncated. */
#define PF_TELNET_SB_MAX 64

typedef enum pf_telnet_event_kind {
    PF_TELNET_NONE = 0,   /* only data (or nothing) came out */
    PF_TELNET_NEGOTIATE,  /* IAC WILL/WONT/DO/DONT opt: verb, option */
    PF_TELNET_SUBNEG,     /* IAC SB opt ... IAC SE: option, payload[0..len) */
    PF_TELNET_COMMAND,    /* another two-byte command (verb): NOP, GA, ... */
} pf_telnet_event_kind;

typedef struct pf_telnet_event {
    pf_telnet_event_kind kind;
    uint8_t verb;    /* WILL/WONT/DO/DONT, or the command byte */
    uint8_t option;
    const uint8_t *payload; /* SUBNEG: points into the decoder (valid until the next call) */
    size_t len;
    int truncated;   /* SUBNEG longer than PF_TELNET_SB_MAX: payload holds the start */
} pf_telnet_event;

typedef struct pf_telnet {
    int _state;
    uint8_t _verb;
    uint8_t _sb_opt;
    uint8_t _sb[PF_TELNET_SB_MAX];
    size_t _sb_len;
    int _sb_over;
} pf_telnet;

void pf_telnet_init(pf_telnet *t);

/* Decodes in[0..n) until the end or the first complete command. Data bytes
 * (IAC IAC unescaped) go to data (which must hold n bytes: data never grows),
 * their count to *data_len. Returns the input bytes consumed; when ev->kind is
 * not PF_TELNET_NONE a command ended at the last consumed byte: handle it and
 * call again with the rest. */
size_t pf_telnet_decode(pf_telnet *t, const uint8_t *in, size_t n, uint8_t *data, size_t *data_len,
                        pf_telnet_event *ev);

/* Escapes data for sending (0xFF -> FF FF). Writes whole bytes only; returns
 * the bytes written to out and the input consumed in *used (less than n when
 * out is full). */
size_t pf_telnet_escape(const uint8_t *in, size_t n, uint8_t *out, size_t out_size, size_t *used);

/* IAC verb option: 3 bytes. */
size_t pf_telnet_negotiation(uint8_t out[3], uint8_t verb, uint8_t option);

/* IAC SB COM-PORT-OPTION cmd value IAC SE, value big-endian in value_len
 * (1 or 4) bytes, each 0xFF doubled. Returns the bytes written (at most 14). */
#define PF_RFC2217_MSG_MAX 14
size_t pf_rfc2217_message(uint8_t out[PF_RFC2217_MSG_MAX], uint8_t cmd, uint32_t value, size_t value_len);

/* Reads a server's RFC 2217 answer from a SUBNEG event on COM-PORT-OPTION:
 * its command code (client code + 100) and value (big-endian, 1 or 4 bytes;
 * 0 if none). Returns 0, or -1 if the payload is empty. */
int pf_rfc2217_parse(const pf_telnet_event *ev, uint8_t *cmd, uint32_t *value);

/* Option negotiation (RFC 1143's rule, simplified: answer only a change of
 * state, so two peers never loop). Both roles want BINARY and SGA both ways;
 * COM-PORT-OPTION is done by the client (WILL) and accepted by the server
 * (DO). Every other option is refused. */
typedef struct pf_telnet_options {
    uint8_t us[256];   /* we do the option (agreed or asked by us) */
    uint8_t them[256]; /* the peer does it */
    uint8_t server;    /* our role: 1 = the RFC 2217 access server */
} pf_telnet_options;

/* A server's options before any negotiation: it asks for nothing and answers
 * the client's requests (pyserial's and our client open with them). */
void pf_telnet_server_init(pf_telnet_options *o);

/* Fills out with the requests a client sends on connect; returns the length
 * (at most 15) and marks the options as asked. */
#define PF_TELNET_HELLO_MAX 15
size_t pf_telnet_client_hello(pf_telnet_options *o, uint8_t out[PF_TELNET_HELLO_MAX]);

/* The reply (0 or 3 bytes into out) to a peer's negotiation. */
size_t pf_telnet_answer(pf_telnet_options *o, uint8_t verb, uint8_t option, uint8_t out[3]);

#endif
