/* SLIP framing (RFC 1055 as the ESP ROM loader and the agent protocol use
 * it): a frame is C0 <payload with C0 -> DB DC, DB -> DB DD> C0. Pure code,
 * no I/O. Public because the agent's frame decoder (pf_agent_proto.h), which
 * the device embeds in its state, is one of these plus a CRC check. */
#ifndef PEERFLASH_PF_SLIP_H
#define PEERFLASH_PF_SLIP_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define PF_SLIP_END 0xC0
#define PF_SLIP_ESC 0xDB
#define PF_SLIP_ESC_END 0xDC
#define PF_SLIP_ESC_ESC 0xDD

/* Bytes the escaped form of data takes, without the two C0 delimiters. */
size_t pf_slip_escaped_len(const uint8_t *data, size_t n);

/* Escapes n bytes of data into out (no delimiters). Returns the bytes written,
 * or 0 when out_size is too small (nothing useful was written then). */
size_t pf_slip_escape(const uint8_t *data, size_t n, uint8_t *out, size_t out_size);

/* Encodes a whole frame C0 escaped(data) C0 into out; 0 if it does not fit. */
size_t pf_slip_encode(const uint8_t *data, size_t n, uint8_t *out, size_t out_size);

/* Streaming decoder over a caller buffer. Bytes outside a frame are skipped
 * (counted in `garbage`); an empty frame (C0 C0) is not reported, so a C0
 * that ends one frame may also start the next. */
typedef enum pf_slip_event {
    PF_SLIP_MORE = 0,      /* keep feeding */
    PF_SLIP_FRAME = 1,     /* a complete frame is in buf[0..len) */
    PF_SLIP_OVERFLOW = -1, /* the frame was longer than the buffer: dropped */
    PF_SLIP_BAD_ESCAPE = -2, /* DB followed by something other than DC/DD: dropped */
} pf_slip_event;

typedef struct pf_slip_decoder {
    uint8_t *buf;
    size_t cap;
    size_t len;       /* bytes of the current (or just completed) frame */
    uint32_t garbage; /* bytes seen outside any frame */
    int _in_frame;
    int _esc;
    int _bad;         /* current frame is being dropped */
} pf_slip_decoder;

void pf_slip_decoder_init(pf_slip_decoder *d, uint8_t *buf, size_t cap);
/* As if a C0 had just been seen: bytes before the first delimiter make a
 * frame (which a protocol with a checksum drops and counts as damaged)
 * instead of being skipped as garbage. For a receiver that must notice a
 * frame whose opening C0 was lost. */
void pf_slip_decoder_start_in_frame(pf_slip_decoder *d);
/* Feeds one byte. After PF_SLIP_FRAME the caller uses buf[0..len) before
 * feeding the next byte. */
pf_slip_event pf_slip_feed(pf_slip_decoder *d, uint8_t byte);
/* Forgets any partial frame (e.g. after a baud change). */
void pf_slip_decoder_reset(pf_slip_decoder *d);

#ifdef __cplusplus
}
#endif
#endif
