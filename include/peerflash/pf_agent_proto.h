/* The native protocol of the peerflash agent: constants and the frame codec
 * (pure functions, no I/O). The full specification is docs/PROTOCOL.md.
 *
 * A frame on the wire is SLIP-delimited (0xC0 ... 0xC0, 0xC0 -> DB DC,
 * 0xDB -> DB DD) around
 *   u8 type | u8 seq | u16 len (LE) | payload[len] | u32 CRC-32 (LE)
 * where the CRC (pf_crc32, IEEE as zlib) covers type..payload. A receiver
 * drops anything whose length or CRC is wrong and re-synchronises at the
 * next 0xC0. */
#ifndef PEERFLASH_PF_AGENT_PROTO_H
#define PEERFLASH_PF_AGENT_PROTO_H

#include <stddef.h>
#include <stdint.h>

#include "pf_slip.h"

#ifdef __cplusplus
extern "C" {
#endif

#define PF_AP_VERSION 1
#define PF_AP_SLIP_END PF_SLIP_END /* the SLIP bytes (pf_slip.h) */
#define PF_AP_SLIP_ESC PF_SLIP_ESC
#define PF_AP_SLIP_ESC_END PF_SLIP_ESC_END
#define PF_AP_SLIP_ESC_ESC PF_SLIP_ESC_ESC
#define PF_AP_HDR 4u          /* type, seq, len */
#define PF_AP_OVERHEAD 8u     /* header + CRC */
#define PF_AP_MAX_PAYLOAD 4096u
/* Largest encoded frame for a payload of n bytes (every byte escaped). */
#define PF_AP_WIRE_MAX(n) (2u * ((n) + PF_AP_OVERHEAD) + 2u)

/* Requests (host -> agent); the answer has the same type | 0x80 and seq. */
enum pf_ap_type {
    PF_AP_HELLO = 0x01,   /* u8 version, u16 host max payload -> capabilities */
    PF_AP_BEGIN = 0x02,   /* u32 size, u8 flags, u8[32] SHA-256 of the file -> u32 resume offset */
    PF_AP_DATA = 0x03,    /* u32 offset, data -> ACK (no other answer) */
    PF_AP_END = 0x04,     /* u8 flags -> status (+ text) */
    PF_AP_RESET = 0x05,   /* -> status, then the device resets */
    PF_AP_CONFIRM = 0x06, /* -> status: the image on trial becomes permanent */
    PF_AP_HASH = 0x07,    /* u8 slot, u32 offset, u32 len -> u8[32] SHA-256 */
    PF_AP_ACK = 0x83,     /* agent: u8 status, u32 next expected offset, u8 session [, reason] */
    PF_AP_NACK = 0x84,    /* agent: u32 next expected offset, u8 session; it dropped a corrupt frame */
};
#define PF_AP_RESPONSE 0x80u

/* BEGIN / END flags */
#define PF_AP_F_PERMANENT 0x01u /* END: install without trial */
#define PF_AP_F_DEFLATE 0x02u   /* BEGIN: DATA carries a zlib stream of the image from the
                                 * resume offset on; DATA/ACK/NACK offsets count its bytes */
#define PF_AP_F_DELTA 0x04u     /* BEGIN: + u32 base size, u8[32] base SHA-256; DATA carries a
                                 * patch body (docs/DELTA.md) continuing the image at the
                                 * resume offset; offsets count body bytes (or, with
                                 * deflate, compressed bytes) */
#define PF_AP_BEGIN_DELTA_LEN 73u

/* HELLO answer capability bits */
#define PF_AP_CAP_SHA256 0x01u
#define PF_AP_CAP_SIGNED 0x02u   /* images must carry an ECDSA-P256 signature */
#define PF_AP_CAP_RESUME 0x04u
#define PF_AP_CAP_DEFLATE 0x08u  /* inflates zlib streams; window bits in HELLO byte 99 */
#define PF_AP_CAP_DELTA 0x10u    /* applies patches against the running image (BEGIN flag 0x04) */
#define PF_AP_HELLO_LEN 100u     /* HELLO answer bytes after the status byte (v1 agents
                                  * without deflate may send 99) */

/* Status byte of every answer: 0 or the negated pf_err the agent hit
 * (e.g. 17 = PF_ERR_AUTH: bad hash, signature or downgrade); after it, an
 * error answer may carry a short UTF-8 explanation. */

typedef struct pf_ap_frame {
    uint8_t type;
    uint8_t seq;
    uint16_t len;
    const uint8_t *payload; /* points into the decoder's buffer */
} pf_ap_frame;

/* Encodes one frame (delimiters included) into out; returns the byte count,
 * or 0 if cap is too small or len > PF_AP_MAX_PAYLOAD. */
size_t pf_ap_encode(uint8_t *out, size_t cap, uint8_t type, uint8_t seq, const uint8_t *payload, size_t len);

/* Streaming decoder over a caller buffer (>= largest payload + 8): SLIP
 * (pf_slip.h) started inside a frame, so that bytes before the first 0xC0
 * count as a damaged frame, then the header and CRC check. */
typedef struct pf_ap_decoder {
    uint8_t *buf;     /* the caller's buffer (the SLIP decoder's) */
    pf_slip_decoder _slip;
    uint32_t dropped; /* frames dropped: bad CRC, length, escape, overflow */
} pf_ap_decoder;

void pf_ap_decoder_init(pf_ap_decoder *d, uint8_t *buf, size_t cap);
/* Feeds bytes; returns the count consumed. Stops after a complete valid
 * frame (then *frame is filled, valid until the next call, and *got = 1). */
size_t pf_ap_decode(pf_ap_decoder *d, const uint8_t *in, size_t n, pf_ap_frame *frame, int *got);
/* Validates one unescaped frame body (header, length, CRC). 1 if valid. */
int pf_ap_parse(const uint8_t *body, size_t len, pf_ap_frame *frame);

#ifdef __cplusplus
}
#endif
#endif
