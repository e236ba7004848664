/* The update agent (target side; portable C, no malloc, caller buffers).
 *
 * Two layers:
 *  - the store: pf_agent_recv_begin / _data / _end put an image into the
 *    secondary slot of a pf_boot, recording progress in the state journal so
 *    that a transfer of the same image (same SHA-256) resumes after a
 *    disconnect or power loss; _end checks the whole-file hash, the image
 *    (hash TLV, signature, downgrade) and marks it for installation;
 *  - the protocol engine: pf_agent_poll reads frames of the native protocol
 *    (docs/PROTOCOL.md) from a pf_port and answers them, driving the store.
 */
#ifndef PEERFLASH_PF_AGENT_H
#define PEERFLASH_PF_AGENT_H

#include <stddef.h>
#include <stdint.h>

#include "pf_agent_proto.h"
#include "pf_boot.h"
#include "pf_err.h"
#include "pf_patch.h"
#include "pf_port.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct pf_agent_config {
    pf_boot *boot;        /* opened (pf_boot_open) by the caller; shares its journal */
    const pf_port *port;  /* the link for pf_agent_poll; NULL for store-only use */
    /* Program staging buffer: a multiple of prog_size that divides erase_size. */
    uint8_t *wbuf;
    uint32_t wbuf_size;
    /* Frame buffers for the protocol engine: rxbuf holds one unescaped frame
     * (its size - 8 is the largest payload the agent accepts, at most 4096;
     * >= 64), txbuf one encoded answer (>= PF_AGENT_TXBUF_MIN). */
    uint8_t *rxbuf, *txbuf;
    uint32_t rxbuf_size, txbuf_size;
    uint16_t window;      /* DATA frames the host may have in flight (1..255): the
                           * receive buffering (UART DMA ring) the device has */
    int allow_downgrade;
    uint32_t device_id;   /* reported in HELLO */
    pf_diag *diag;
    /* Optional deflate (docs/PROTOCOL.md, "Compression"): zbits = the largest
     * zlib window the device inflates with (9..15, e.g. 10..12 for a small
     * device; 0 = not offered), zarena = the memory inflate allocates from
     * (z_stream, inflate state and the 2^zbits window; never malloc). It
     * needs about PF_AGENT_ZARENA_SIZE(zbits) bytes; pf_agent_init measures
     * and refuses a smaller one. */
    uint8_t zbits;
    uint8_t *zarena;
    uint32_t zarena_size;
} pf_agent_config;

/* Arena for inflate with a 2^bits window: the window, zlib's inflate state
 * (about 7.2 KB on 64-bit hosts, 7.1 KB on Cortex-M) and the z_stream. */
#define PF_AGENT_ZARENA_SIZE(bits) ((1u << (bits)) + 7680u)

#define PF_AGENT_TXBUF_MIN 320u

#define PF_AGENT_CONFIG_DEFAULT() \
    { .boot = NULL, .port = NULL, .wbuf = NULL, .wbuf_size = 0, .rxbuf = NULL, .txbuf = NULL, .rxbuf_size = 0, \
      .txbuf_size = 0, .window = 8, .allow_downgrade = 0, .device_id = 0, .diag = NULL, .zbits = 0, .zarena = NULL, \
      .zarena_size = 0 }

typedef struct pf_agent {
    pf_agent_config cfg;
    uint32_t _size;   /* image bytes announced by begin */
    uint32_t _stored; /* bytes programmed into secondary */
    uint32_t _fill;   /* bytes waiting in wbuf */
    uint8_t _hash[32];
    int _open;        /* a transfer is in progress */
    /* protocol engine */
    pf_ap_decoder _dec;
    uint16_t _max_payload;
    uint32_t frames_in, frames_bad, acks_dup; /* counters for diagnostics */
    uint32_t _nacked;  /* decoder drops already reported by NACK */
    uint8_t _session;  /* seq of the BEGIN that opened the transfer (in ACK/NACK) */
    /* deflate: the transfer's data is a zlib stream (BEGIN flag) */
    int _z;            /* this transfer is compressed */
    int _zend;         /* the stream ended (its Adler-32 checked) */
    uint32_t _zin;     /* compressed bytes consumed: the next expected DATA offset */
    uint32_t _zused;   /* arena bytes in use */
    void *_zs;         /* the z_stream, in the arena */
    /* delta: the transfer's data (after inflate, if compressed) is a patch
     * body against the running image (docs/DELTA.md); RAM: the applier and
     * one PF_PATCH_CHUNK of base bytes, 140 bytes in all on Cortex-M0+ */
    int _delta;
    pf_patch_applier _patch;
    uint32_t _pbase_off;   /* flash offset _pbase holds; UINT32_MAX = nothing */
    uint8_t _pbase[PF_PATCH_CHUNK];
} pf_agent;

int pf_agent_init(pf_agent *a, const pf_agent_config *cfg);

/* Starts (or resumes) storing the image whose whole-file SHA-256 is hash.
 * *resume = the offset the data must continue from (0 for a new image, a
 * multiple of the erase size or the full size when resuming). Refused while
 * an upgrade runs on trial (PF_ERR_STATE). */
int pf_agent_recv_begin(pf_agent *a, const uint8_t hash[32], uint32_t size, uint32_t *resume);
/* After pf_agent_recv_begin: the data of this transfer comes as one zlib
 * stream (window <= 2^zbits) of the image from the resume offset on,
 * fed with pf_agent_recv_zdata. PF_ERR_UNSUPPORTED if zbits is 0. */
int pf_agent_recv_deflate(pf_agent *a);
/* Inflates the next len bytes of the stream: zoff must equal
 * pf_agent_recv_zoffset. A corrupt stream (bad code, window larger than
 * offered, Adler-32 mismatch, output beyond the image, data after its end)
 * fails with PF_ERR_FORMAT and closes the transfer. */
int pf_agent_recv_zdata(pf_agent *a, uint32_t zoff, const uint8_t *data, uint32_t len);
/* Compressed bytes consumed so far (0 when not compressed). */
uint32_t pf_agent_recv_zoffset(const pf_agent *a);
/* Delta (BEGIN flag 0x04, docs/PROTOCOL.md "Delta"). pf_agent_delta_capable:
 * 1 if this device can apply patches (its flash reads fit the base cache).
 * pf_agent_delta_check_base: the running image file (primary bytes
 * [0, base_size)) has SHA-256 base_hash; PF_ERR_VERIFY if not. Call it
 * before pf_agent_recv_begin: a wrong base is refused before anything is
 * written. pf_agent_recv_delta, after pf_agent_recv_begin (and
 * pf_agent_recv_deflate if compressed): the data is a patch body that
 * continues the image at the resume offset; plain DATA offsets then count
 * body bytes (pf_agent_recv_poffset). */
int pf_agent_delta_capable(const pf_agent *a);
int pf_agent_delta_check_base(pf_agent *a, uint32_t base_size, const uint8_t base_hash[32]);
int pf_agent_recv_delta(pf_agent *a, uint32_t base_size);
uint32_t pf_agent_recv_poffset(const pf_agent *a);
/* Stores the next len bytes: off must be the next expected offset. */
int pf_agent_recv_data(pf_agent *a, uint32_t off, const uint8_t *data, uint32_t len);
/* Bytes received so far (stored or buffered): the next expected offset. */
uint32_t pf_agent_recv_offset(const pf_agent *a);
/* Completes: every byte stored, file hash matches, image valid (signature,
 * no downgrade): marks it for install at the next boot (trial unless
 * permanent). */
int pf_agent_recv_end(pf_agent *a, int permanent);

/* Protocol engine: handles what has arrived on the port within timeout_ms.
 * Returns 0, or PF_ERR_CLOSED when the link closed; *reboot (if not NULL)
 * set to 1 when the host asked the device to reset. */
int pf_agent_poll(pf_agent *a, uint32_t timeout_ms, int *reboot);
/* Sends the greeting (HELLO) a device sends when it starts. */
int pf_agent_announce(pf_agent *a);

#ifdef __cplusplus
}
#endif
#endif
