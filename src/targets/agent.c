/* Host driver for the peerflash agent (docs/PROTOCOL.md).
 *
 * The target's "flash" as the job sees it is the image file: address 0 is
 * the first byte of a signed MCUboot image, flash_size the slot size, and
 * write_max the slot size, so the job hands the whole image to one write().
 * That write hashes it (SHA-256: the resume key), sends BEGIN, learns where
 * to resume, streams DATA frames through a sliding window with cumulative
 * ACKs and go-back-N retransmission, and ends with END: the agent checks
 * the file hash, the image hash TLV, the signature and the version, and marks
 * the image for installation. digest() hashes what runs (primary) or what
 * is pending (secondary), so an image that already runs is skipped; right
 * after END it reports the hash END verified on the device (the device
 * re-read the whole stored file), without another round trip; run()
 * resets the device, waits for it to come back on trial and confirms it.
 *
 * Built with PF_AGENT_HOST_STREAM=1 (the small-MCU updater, firmware/), the
 * driver holds no image and no window: the job's image source (the memory
 * map given to check_image, whose bytes an updater may read again from its
 * SD card) is read for the hash, for the MCUboot checks and for every DATA
 * frame, sent or sent again after a loss; write_max is then one frame, so
 * the job's buffer stays small, and the transfer runs at write_end. */
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <zlib.h>

#include "peerflash/pf_agent_host.h"
#include "peerflash/pf_job.h"
#include "peerflash/pf_agent_proto.h"
#include "peerflash/pf_boot.h" /* state numbers and MCUboot magic only: no link dependency */
#include "peerflash/pf_bytes.h"
#include "peerflash/pf_digest.h"
#include "peerflash/pf_mcuboot.h"
#include "peerflash/pf_patch.h"
#include "peerflash/pf_target.h"
#include "peerflash/pf_zarena.h"
#if PF_AGENT_ZPIPE
#include "host/zpipe.h"
#endif

/* Build-time sizes (the state is sizeof(agent_host), pf_session_state_size):
 *   PF_AGENT_HOST_STREAM   0: the job hands the whole image to one write
 *                          (host); 1: frames are re-read from the job's image
 *                          source (small MCUs)
 *   PF_AGENT_HOST_PAYLOAD  largest DATA frame payload sent (4096; the agent's
 *                          HELLO may lower it): the frame buffers are ~3x it
 *   PF_AGENT_HOST_DEFLATE  1: compress when the agent inflates (the window
 *                          arena and 48 KiB of compressed stream kept for
 *                          retransmission, ~150 KiB); 0: never compress
 *   PF_AGENT_HOST_RXBUF    largest frame received (HELLO's answer is 108)
 *   PF_AGENT_HOST_ZBITS    largest deflate window used, 9..15 bits (the
 *                          agent's may be smaller): 12 keeps the state
 *                          ~150 KiB for the MCU updater's 240 KiB; the host
 *                          build sets 15 (its arena is then ~204 KiB)
 *   PF_AGENT_ZPIPE         1 (host builds, set by CMakeLists.txt): `--compress
 *                          best|auto` through the compressor thread of
 *                          host/zpipe.h (zopfli); 0: zlib in line only */
#ifndef PF_AGENT_HOST_STREAM
#define PF_AGENT_HOST_STREAM 0
#endif
#ifndef PF_AGENT_HOST_PAYLOAD
#define PF_AGENT_HOST_PAYLOAD PF_AP_MAX_PAYLOAD
#endif
#ifndef PF_AGENT_HOST_DEFLATE
#define PF_AGENT_HOST_DEFLATE (!PF_AGENT_HOST_STREAM)
#endif
#ifndef PF_AGENT_HOST_RXBUF
#define PF_AGENT_HOST_RXBUF 512u
#endif
#ifndef PF_AGENT_HOST_ZBITS
#define PF_AGENT_HOST_ZBITS 12
#endif
#ifndef PF_AGENT_ZPIPE
#define PF_AGENT_ZPIPE 0
#endif
#if PF_AGENT_HOST_ZBITS < 9 || PF_AGENT_HOST_ZBITS > 15
#error "PF_AGENT_HOST_ZBITS must be 9..15"
#endif
#if PF_AGENT_ZPIPE && !PF_AGENT_HOST_DEFLATE
#error "PF_AGENT_ZPIPE compresses: build it with PF_AGENT_HOST_DEFLATE=1"
#endif
#if PF_AGENT_HOST_PAYLOAD < 128 || PF_AGENT_HOST_PAYLOAD > PF_AP_MAX_PAYLOAD
#error "PF_AGENT_HOST_PAYLOAD must be 128..PF_AP_MAX_PAYLOAD"
#endif
#if PF_AGENT_HOST_STREAM && PF_AGENT_HOST_DEFLATE
#error "PF_AGENT_HOST_STREAM re-reads plain frames: build it with PF_AGENT_HOST_DEFLATE=0"
#endif
#define HOST_RXBUF PF_AGENT_HOST_RXBUF
#define TEXT_MAX 160u
/* deflate: the largest window the host uses (the agent's may be smaller),
 * hash chains of memLevel 7; the arena holds what deflateInit2 allocates:
 * 2^(bits+2) + 2^(memLevel+9) + its state */
#define ZBITS_MAX PF_AGENT_HOST_ZBITS
#define ZMEM_LEVEL 7
#if PF_AGENT_HOST_DEFLATE
#define ZARENA_SIZE ((1u << (ZBITS_MAX + 2)) + (1u << (ZMEM_LEVEL + 9)) + 12288u)
/* compressed bytes kept for retransmission: bounds the bytes in flight */
#define ZBUF_SIZE (48u * 1024u)
/* best/auto: 32 KiB segments the thread holds ahead of the line (256 KiB
 * raw at most, and their compressed bytes) */
#define ZP_DEPTH 8u
#else
#define ZARENA_SIZE 1u /* never used: zbits stays 0 */
#define ZBUF_SIZE 1u
#endif

typedef struct agent_host {
    pf_target_config cfg;
    uint8_t seq;
    pf_ap_decoder dec;
    uint8_t rxbuf[HOST_RXBUF];
    uint8_t in[PF_AGENT_HOST_STREAM ? 64 : 512];
    size_t in_len, in_pos;
    uint8_t tx[PF_AP_WIRE_MAX(PF_AGENT_HOST_PAYLOAD)];
    uint8_t payload[PF_AGENT_HOST_PAYLOAD];
    const pf_memmap *map; /* the job's image (check_image), read in stream mode */
    uint32_t src_len;     /* stream mode: its length and SHA-256, found by check_image */
    uint8_t src_hash[PF_AGENT_HOST_STREAM ? 32 : 1];
    /* from HELLO */
    uint16_t max_payload;
    uint8_t window, caps, state, flags;
    uint32_t slot_size, erase_size, device_id;
    uint8_t version[4];
    uint32_t rx_received;  /* HELLO: bytes durably stored of the transfer in progress */
    uint8_t rx_hash[32];   /* HELLO: its file hash (or the pending image's) */
    uint32_t run_len;
    uint8_t ended_hash[32]; /* file SHA-256 the agent confirmed at END */
    uint32_t ended_len;     /* its length; 0 = none */
    uint32_t resumed_from; /* offset the last transfer resumed at */
    uint32_t retransmits, timeouts;
    pf_agent_host_options opt;
    pf_agent_host_stats stats;
    uint8_t zbits;          /* HELLO: the agent's inflate window (0 = no deflate) */
    uint8_t run_hash[32];   /* HELLO: SHA-256 TLV of the running image (zeros if none) */
    pf_agent_delta_fn delta_fn; /* patch provider (NULL: always whole images) */
    void *delta_user;
    /* the compressed stream of the current transfer: bytes [zbase, zbase +
     * zlen) of it are in zbuf (from the oldest unacknowledged on); made by
     * zlib in line (z is set up) or by the compressor thread (zpon) */
    int zon, zdone;
#if PF_AGENT_ZPIPE
    int zmethod;          /* --compress: PF_ZP_FAST, _BEST or _AUTO (the default) */
    pf_zpipe *zp;         /* made at the first best/auto transfer, kept for the session */
    int zp_method;        /* the method zp was made for */
    int zpon;             /* this transfer's stream comes from zp */
    const uint8_t *zsrc;  /* the bytes compressed (image or patch body from the resume point) */
    uint32_t zsrc_len;
    uint32_t zput;        /* of them, handed to zp */
    uint32_t zraw_done;   /* of them, whose compressed bytes are all in zbuf */
    uint32_t zraw_part;   /* and the share of the next segment in zbuf (progress) */
    size_t zseg_pos;      /* compressed bytes of zp's oldest segment copied to zbuf */
    uint32_t zadler;      /* Adler-32 of zsrc, the stream's trailer */
#endif
    uint32_t zbase, zlen;
    z_stream z;
    pf_zarena za;        /* zlib's allocator on zarena */
    unsigned char zarena[ZARENA_SIZE]; /* pf_zarena aligns each block itself */
    uint8_t zbuf[ZBUF_SIZE];
} agent_host;

static const pf_port *P(agent_host *h) { return h->cfg.port; }
static int image_read(agent_host *h, uint32_t off, uint8_t *dst, uint32_t len);
static uint32_t line_rate(const agent_host *h);

/* ---- zlib on the arena in the driver state ---------------------------------------- */

#if PF_AGENT_ZPIPE
/* best/auto: the stream from the compressor thread, 32 KiB segments of raw
 * deflate (each with the one before as its window, sync-flushed, the last
 * one final) between a zlib header and the Adler-32 of the data: one zlib
 * stream as zlib would make it, so the agent needs no change. Only for an
 * agent that inflates with a 2^15 window (zopfli's distances reach 32 KiB);
 * 0 when it cannot be used (the caller compresses in line then). */
static int zp_begin(agent_host *h, const uint8_t *data, uint32_t len, uint32_t from)
{
    if (h->zmethod == PF_ZP_FAST || h->zbits != 15 || !pf_zp_available(h->zmethod))
        return 0;
    if (h->zp && h->zp_method != h->zmethod) {
        pf_zpipe_free(h->zp);
        h->zp = NULL;
    }
    if (!h->zp) {
        h->zp = pf_zpipe_new(h->zmethod, ZP_DEPTH);
        h->zp_method = h->zmethod;
        if (!h->zp) {
            pf_port_logf(P(h), 1, "agent: no compressor thread (out of memory?): zlib in line");
            return 0;
        }
    }
    pf_zpipe_clear(h->zp);
    /* compressed bytes per second the line takes: 10 bits a byte, ~3% frame overhead */
    pf_zpipe_set_rate(h->zp, line_rate(h) / 10u * 97u / 100u);
    h->zsrc = data + from;
    h->zsrc_len = len - from;
    h->zput = h->zraw_done = h->zraw_part = 0;
    h->zseg_pos = 0;
    h->zadler = (uint32_t)adler32(adler32(0L, Z_NULL, 0), h->zsrc, h->zsrc_len);
    /* the zlib header (RFC 1950): CM 8, CINFO 7 (2^15), FLEVEL 3, FCHECK */
    h->zbuf[0] = 0x78;
    h->zbuf[1] = 0xDA;
    h->zlen = 2;
    h->zpon = 1;
    return 1;
}

/* z_fill from the thread: segments handed over as far as the thread holds
 * them, the oldest copied to zbuf (waiting for the thread if need be), then
 * the trailer. */
static int zp_fill(agent_host *h, uint32_t want)
{
    while (!h->zdone && h->zbase + h->zlen < want && h->zlen < ZBUF_SIZE) {
        while (h->zput < h->zsrc_len && pf_zpipe_held(h->zp) < pf_zpipe_depth(h->zp)) {
            uint32_t n = h->zsrc_len - h->zput < PF_ZP_SEG_MAX ? h->zsrc_len - h->zput : PF_ZP_SEG_MAX;
            if (pf_zpipe_put(h->zp, h->zsrc + h->zput, n, h->zput, h->zput != 0, h->zput + n == h->zsrc_len) < 0)
                return pf_diag_set(h->cfg.diag, PF_ERR_STATE, "agent: the compressor thread refused a segment");
            h->zput += n;
        }
        if (!pf_zpipe_held(h->zp)) {
            if (ZBUF_SIZE - h->zlen < 4)
                break;
            pf_put_be32(h->zbuf + h->zlen, h->zadler);
            h->zlen += 4;
            h->zdone = 1;
            break;
        }
        pf_zp_seg seg;
        if (pf_zpipe_oldest(h->zp, &seg) < 0)
            return pf_diag_set(h->cfg.diag, PF_ERR_NOMEM, "agent: no memory to compress the segment at %lu",
                               (unsigned long)seg.tag);
        size_t n = seg.out_len - h->zseg_pos;
        if (n > ZBUF_SIZE - h->zlen)
            n = ZBUF_SIZE - h->zlen;
        memcpy(h->zbuf + h->zlen, seg.out + h->zseg_pos, n);
        h->zlen += (uint32_t)n;
        h->zseg_pos += n;
        if (h->zseg_pos == seg.out_len) {
            h->zraw_done += (uint32_t)seg.raw_len;
            h->zraw_part = 0;
            h->zseg_pos = 0;
            pf_zpipe_release(h->zp);
        } else {
            h->zraw_part = (uint32_t)((uint64_t)seg.raw_len * h->zseg_pos / seg.out_len);
            pf_zpipe_progress(h->zp, h->zseg_pos);
        }
    }
    return PF_OK;
}
#endif

/* A fresh compressed stream of image[from..len): the compressor thread
 * (best/auto, host builds, 2^15 agents) or zlib with the agent's window. */
static void z_end(agent_host *h);
static int z_begin(agent_host *h, const uint8_t *data, uint32_t len, uint32_t from)
{
    z_end(h);
    h->zdone = 0;
    h->zbase = h->zlen = 0;
#if PF_AGENT_ZPIPE
    h->zpon = 0;
    if (zp_begin(h, data, len, from)) {
        h->zon = 1;
        return PF_OK;
    }
#endif
    pf_zarena_init(&h->za, h->zarena, sizeof h->zarena);
    memset(&h->z, 0, sizeof h->z);
    PF_ZARENA_ATTACH(&h->z, &h->za);
    int level = h->opt.level >= 1 && h->opt.level <= 9 ? h->opt.level : 9;
    if (deflateInit2(&h->z, level, Z_DEFLATED, h->zbits, ZMEM_LEVEL, Z_DEFAULT_STRATEGY) != Z_OK)
        return pf_diag_set(h->cfg.diag, PF_ERR_NOMEM, "zlib deflateInit2 (window %u bits) failed in its %u-byte arena",
                           (unsigned)h->zbits, (unsigned)ZARENA_SIZE);
    h->z.next_in = (z_const Bytef *)(data + from);
    h->z.avail_in = len - from;
    h->zon = 1;
    return PF_OK;
}

/* Ends the stream (after the transfer, or at close). */
static void z_end(agent_host *h)
{
#if PF_AGENT_ZPIPE
    if (h->zpon) {
        pf_zpipe_clear(h->zp);
        h->zpon = h->zon = 0;
    }
#endif
    if (h->zon)
        deflateEnd(&h->z);
    h->zon = 0;
}

/* Image (or patch) bytes behind the stream bytes made so far. */
static uint32_t z_total_in(const agent_host *h)
{
#if PF_AGENT_ZPIPE
    if (h->zpon)
        return h->zraw_done + h->zraw_part;
#endif
    return (uint32_t)h->z.total_in;
}

/* Makes stream bytes up to `want` available (as far as the buffer allows:
 * bytes below `acked` are dropped to make room). */
static int z_fill(agent_host *h, uint32_t acked, uint32_t want)
{
    if (want - h->zbase > ZBUF_SIZE && acked > h->zbase) {
        uint32_t drop = acked - h->zbase;
        memmove(h->zbuf, h->zbuf + drop, h->zlen - drop);
        h->zbase += drop;
        h->zlen -= drop;
    }
#if PF_AGENT_ZPIPE
    if (h->zpon)
        return zp_fill(h, want);
#endif
    while (!h->zdone && h->zbase + h->zlen < want && h->zlen < ZBUF_SIZE) {
        h->z.next_out = h->zbuf + h->zlen;
        h->z.avail_out = ZBUF_SIZE - h->zlen;
        int zr = deflate(&h->z, Z_FINISH);
        h->zlen = ZBUF_SIZE - h->z.avail_out;
        if (zr == Z_STREAM_END)
            h->zdone = 1;
        else if (zr != Z_OK && zr != Z_BUF_ERROR)
            return pf_diag_set(h->cfg.diag, PF_ERR_IO, "zlib deflate failed (%d)", zr);
    }
    return PF_OK;
}

/* The device's state names (docs/PROTOCOL.md); the driver does not link the
 * bootloader library. */
static const char *state_name(int s)
{
    static const char *const names[] = {"?", "idle", "receiving", "pending", "swapping", "trial", "reverting"};
    return s >= 1 && s <= 6 ? names[s] : "?";
}

static int send_frame(agent_host *h, uint8_t type, uint8_t seq, const uint8_t *p, size_t n)
{
    size_t w = pf_ap_encode(h->tx, sizeof h->tx, type, seq, p, n);
    if (!w)
        return PF_ERR_ARG;
    return pf_port_write_all(P(h), h->tx, w) < 0 ? PF_ERR_IO : PF_OK;
}

/* Next valid frame before the deadline; PF_ERR_TIMEOUT if none. */
static int next_frame(agent_host *h, uint32_t deadline, pf_ap_frame *f)
{
    for (;;) {
        while (h->in_pos < h->in_len) {
            int got;
            h->in_pos += pf_ap_decode(&h->dec, h->in + h->in_pos, h->in_len - h->in_pos, f, &got);
            if (got)
                return PF_OK;
        }
        uint32_t left = pf_remaining(P(h), deadline);
        if (left == 0)
            return PF_ERR_TIMEOUT;
        int n = P(h)->read(P(h)->ctx, h->in, sizeof h->in, left);
        if (n < 0)
            return n;
        h->in_len = (size_t)n;
        h->in_pos = 0;
    }
}

/* Target error from an answer's status byte and text. */
static int refused(agent_host *h, const char *what, const pf_ap_frame *f)
{
    int st = f->len ? f->payload[0] : 0;
    char text[TEXT_MAX + 1];
    size_t t = f->len > 1 ? f->len - 1u : 0;
    if (t > TEXT_MAX)
        t = TEXT_MAX;
    memcpy(text, f->payload + 1, t);
    text[t] = 0;
    for (size_t i = 0; i < t; i++)
        if ((unsigned char)text[i] < 0x20 || (unsigned char)text[i] > 0x7e)
            text[i] = '?';
    int err = st >= 1 && st <= 18 ? -st : PF_ERR_TARGET;
    pf_diag_set(h->cfg.diag, err, "agent refused %s: %s (status %d)%s%s", what, pf_strerror(-st), st, t ? ": " : "",
                text);
    pf_diag_code(h->cfg.diag, (uint32_t)(f->type & ~PF_AP_RESPONSE), (uint32_t)st);
    return err;
}

/* Sends a request and waits for its answer (retrying on silence). */
static int request(agent_host *h, uint8_t type, const uint8_t *p, size_t n, uint32_t timeout_ms, int tries,
                   pf_ap_frame *ans)
{
    for (int k = 0; k < tries; k++) {
        uint8_t seq = ++h->seq;
        int r = send_frame(h, type, seq, p, n);
        if (r < 0)
            return r;
        uint32_t deadline = pf_deadline(P(h), timeout_ms);
        for (;;) {
            r = next_frame(h, deadline, ans);
            if (r == PF_ERR_TIMEOUT)
                break;
            if (r < 0)
                return r;
            if (ans->type == (type | PF_AP_RESPONSE) && ans->seq == seq && ans->len >= 1)
                return PF_OK;
        }
    }
    return pf_diag_set(h->cfg.diag, PF_ERR_TIMEOUT, "no answer from the agent to request 0x%02x after %d tries",
                       (unsigned)type, tries);
}

static int parse_hello(agent_host *h, const pf_ap_frame *f, pf_target_info *info)
{
    const uint8_t *p = f->payload + 1;
    if (f->len < 1 + 99)
        return pf_diag_set(h->cfg.diag, PF_ERR_PROTOCOL, "HELLO answer of %u bytes is too short", (unsigned)f->len);
    if (p[0] != PF_AP_VERSION)
        return pf_diag_set(h->cfg.diag, PF_ERR_PROTOCOL, "agent speaks protocol version %u, we speak %u",
                           (unsigned)p[0], (unsigned)PF_AP_VERSION);
    h->max_payload = pf_get_le16(p + 1);
    h->window = p[3] ? p[3] : 1;
    h->caps = p[4];
    h->state = p[5];
    h->flags = p[6];
    h->slot_size = pf_get_le32(p + 7);
    h->erase_size = pf_get_le32(p + 11);
    h->device_id = pf_get_le32(p + 19);
    memcpy(h->version, p + 23, 4);
    h->rx_received = pf_get_le32(p + 63);
    memcpy(h->rx_hash, p + 67, 32);
    memcpy(h->run_hash, p + 31, 32);
    /* deflate when both sides have it: the agent's window, capped at ours */
    h->zbits = 0;
    if (PF_AGENT_HOST_DEFLATE && (h->caps & PF_AP_CAP_DEFLATE) && f->len >= 1 + PF_AP_HELLO_LEN && p[99] >= 9 &&
        h->opt.deflate)
        h->zbits = p[99] < ZBITS_MAX ? p[99] : ZBITS_MAX;
    if (h->max_payload < 8 || h->max_payload > PF_AP_MAX_PAYLOAD)
        return pf_diag_set(h->cfg.diag, PF_ERR_PROTOCOL, "agent max payload %u unusable", (unsigned)h->max_payload);
    if (info) {
        memset(info, 0, sizeof *info);
        pf_format(info->chip, sizeof info->chip, "agent %08lx", (unsigned long)h->device_id);
        pf_format(info->bootloader, sizeof info->bootloader, "peerflash agent v%u, image %u.%u.%u, %s",
                  (unsigned)p[0], (unsigned)p[23], (unsigned)p[24], (unsigned)pf_get_le16(p + 25),
                  state_name(h->state));
        info->chip_id = h->device_id;
        info->caps = PF_CAP_DIGEST | PF_CAP_RUN;
        info->digest = PF_DIGEST_SHA256;
        info->geom.flash_start = 0;
        info->geom.flash_size = h->slot_size;
        info->geom.write_align = 1;
        /* stream mode: the job's writes are one frame each, the transfer
         * reads the image source itself (write_end) */
        info->geom.write_max = PF_AGENT_HOST_STREAM ? PF_AGENT_HOST_PAYLOAD : h->slot_size;
        info->geom.erased_value = 0xFF;
        info->geom.erase_style = PF_ERASE_BY_WRITE;
        /* what the device runs, for `info` and for `update` (which skips the
         * version it already runs and refuses an older one) */
        int have_image = 0;
        for (int i = 0; i < 32; i++)
            have_image |= h->run_hash[i];
        if (have_image) {
            size_t n = pf_format(info->details, sizeof info->details, "image version: %u.%u.%u\nimage sha256: ",
                                 (unsigned)p[23], (unsigned)p[24], (unsigned)pf_get_le16(p + 25));
            for (int i = 0; i < 32 && n + 3 < sizeof info->details; i++)
                n += pf_format(info->details + n, sizeof info->details - n, "%02x", (unsigned)h->run_hash[i]);
            pf_format(info->details + n, sizeof info->details - n, "\n");
        }
    }
    return PF_OK;
}

static int a_open(void *self, const pf_target_config *cfg)
{
    agent_host *h = self;
    if (!cfg || !cfg->port)
        return PF_ERR_ARG;
    memset(h, 0, offsetof(agent_host, zarena));
    h->cfg = *cfg;
    h->opt = (pf_agent_host_options)PF_AGENT_HOST_OPTIONS_DEFAULT();
#if PF_AGENT_ZPIPE
    h->zmethod = PF_ZP_AUTO;
#endif
    pf_ap_decoder_init(&h->dec, h->rxbuf, sizeof h->rxbuf);
    /* start numbering where a previous session (whose answers may still be
     * on the way) probably did not */
    if (cfg->port->now_ms) {
        uint32_t t = cfg->port->now_ms(cfg->port->ctx);
        h->seq = (uint8_t)(t ^ (t >> 8) ^ (t >> 16));
    }
    return PF_OK;
}

static uint32_t line_rate(const agent_host *h)
{
    return h->cfg.fast_baud ? h->cfg.fast_baud : h->cfg.baud ? h->cfg.baud : 115200;
}

static int a_connect(void *self, pf_target_info *info)
{
    agent_host *h = self;
    pf_port_set_line(P(h), line_rate(h), PF_FRAME_8N1);
    if (P(h)->flush_input)
        P(h)->flush_input(P(h)->ctx);
    uint8_t p[3] = {PF_AP_VERSION, 0, 0};
    pf_put_le16(p + 1, HOST_RXBUF - PF_AP_OVERHEAD);
    pf_ap_frame f;
    /* short first waits: a link that was just opened (a bridge, a wire
     * reopening the device's side) often loses the first HELLO */
    static const uint16_t waits[] = {60, 120, 250, 500, 500, 1000, 1000, 1000};
    int r = PF_ERR_TIMEOUT;
    for (size_t k = 0; k < sizeof waits / sizeof waits[0] && r < 0; k++) {
        r = request(h, PF_AP_HELLO, p, sizeof p, waits[k], 1, &f);
        if (r < 0 && r != PF_ERR_TIMEOUT)
            return r;
    }
    if (r < 0)
        return pf_diag_set(h->cfg.diag, PF_ERR_NO_SYNC, "no peerflash agent answered HELLO (8 tries, 4.4 s)");
    if (f.payload[0])
        return refused(h, "HELLO", &f);
    return parse_hello(h, &f, info);
}

static int a_write_begin(void *self, uint32_t addr, uint32_t len)
{
    agent_host *h = self;
    if (addr != 0)
        return pf_diag_set(h->cfg.diag, PF_ERR_RANGE,
                           "the agent takes a whole signed image at address 0, not data at 0x%08lx",
                           (unsigned long)addr);
    h->run_len = len;
    return PF_OK;
}

/* The line rate: the agent has no rate switch, so --baud (fast_baud) or the
 * connect rate is the rate of the whole session. */
static uint32_t frame_ms(agent_host *h, uint32_t bytes)
{
    uint32_t baud = line_rate(h);
    return (uint32_t)((uint64_t)bytes * 10u * 1000u / baud) + 1;
}

/* A loss: go back to the acknowledged offset, halve window and frames. */
static void lost(agent_host *h, uint32_t *next, uint32_t acked, uint32_t *cwnd, uint32_t *chunk, uint32_t *clean)
{
    h->retransmits++;
    *next = acked;
    *cwnd = *cwnd > 1 ? *cwnd / 2 : 1;
    *chunk = *chunk > 128 ? *chunk / 2 : *chunk;
    *clean = 0;
}

/* Progress of the image while it flows (the job only sees the one write()
 * return): image bytes acknowledged; with deflate, the image bytes behind
 * the acknowledged part of the stream, estimated from deflate's ratio so far. */
static void report_sent(agent_host *h, uint32_t acked, uint32_t size)
{
    if (!h->cfg.progress)
        return;
    uint32_t image = h->stats.image_bytes, done = acked;
    if (h->zon) {
        uint32_t produced = h->zbase + h->zlen;
        uint64_t in = z_total_in(h);
        done = h->resumed_from + (uint32_t)(produced ? in * (acked < produced ? acked : produced) / produced : 0);
    } else if (size != UINT32_MAX && size < image) {
        done = image - size + acked;
    }
    h->cfg.progress(h->cfg.progress_user, PF_PHASE_WRITE, done < image ? done : image, image);
}

static void step(agent_host *h, int phase, uint32_t done)
{
    if (h->cfg.progress)
        h->cfg.progress(h->cfg.progress_user, phase, done, 1);
}

/* "offset N of SIZE" for messages; while deflate has not finished, the
 * compressed size is not known (size is UINT32_MAX then) and is not printed. */
static const char *offset_text(char *buf, size_t n, uint32_t off, uint32_t size)
{
    if (size == UINT32_MAX)
        pf_format(buf, n, "offset %lu of the compressed stream", (unsigned long)off);
    else
        pf_format(buf, n, "offset %lu of %lu", (unsigned long)off, (unsigned long)size);
    return buf;
}

/* Sends data[from..size) windowed, or with h->zon the compressed stream
 * (offsets in the stream, size found when deflate ends; data, size and from
 * unused). begin_seq: the BEGIN sent just before without waiting for its
 * answer (0 = none): its answer (a refusal, or the resume offset) is taken
 * here; the first ACK would say the same. */
static int transfer(agent_host *h, const uint8_t *data, uint32_t size, uint32_t from, uint8_t begin_seq)
{
    if (h->zon) {
        size = UINT32_MAX;
        from = 0;
    }
    const pf_port *pt = P(h);
    char where[64];
    const uint32_t max_chunk = h->max_payload - 4u < PF_AGENT_HOST_PAYLOAD - 4u ? h->max_payload - 4u
                                                                                 : PF_AGENT_HOST_PAYLOAD - 4u;
    uint32_t chunk = max_chunk;
    uint32_t win = h->window;
    /* In flight: cwnd frames of chunk bytes. After a loss the window halves
     * (a device whose UART overflowed while erasing is not flooded again at
     * once) and frames halve (on a noisy line a short frame gets through
     * where a long one would not); clean ACKs grow the window back first,
     * then the frames (AIMD). */
    uint32_t cwnd = win, clean = 0;
    uint32_t acked = from, next = from, sent_max = from;
    /* Sequence numbers tell which DATA frame an ACK answers: ACKs of frames
     * sent before this transfer are stale, and a repeated ACK for a frame
     * sent before the last go-back says nothing new (one loss, one go-back). */
    uint8_t mark = begin_seq ? begin_seq : h->seq;
    /* Retransmission timer from measured round trips (one frame timed at a
     * time, never a retransmitted one: Karn), between half and all of
     * (2 x the time for a whole window + 400 ms), where it starts: a device
     * pauses for flash erases, and a spurious timeout costs a whole window;
     * losses are mostly caught sooner by NACKs and repeated ACKs. */
    const uint32_t rto_max = 2u * frame_ms(h, win * (max_chunk + 16u)) + 400u;
    uint32_t rto = rto_max, srtt = 0, rttvar = 0;
    uint32_t timed_end = 0, timed_at = 0;
    int timing = 0;
    uint32_t give_up = 8u * rto_max > 5000u ? 8u * rto_max : 5000u; /* ms without progress */
    uint32_t last_progress = pt->now_ms(pt->ctx), last_goback = 0, t_start = last_progress;
    int r0;
    while (acked < size) {
        while (next < size && next - acked < cwnd * chunk) {
            uint32_t n;
            const uint8_t *src;
            if (h->zon) {
                /* the compressed stream: its length is known once deflate
                 * has finished; bytes from `acked` on stay for go-back */
                uint32_t t_fill = pt->now_ms(pt->ctx);
                int zr = z_fill(h, acked, next + chunk);
                if (zr < 0)
                    return zr;
                t_fill = pt->now_ms(pt->ctx) - t_fill;
                if (t_fill > 20u) {
                    /* the compressor thread kept us (best: seconds a segment
                     * on a slow machine): not a stalled line, and no round
                     * trip to measure */
                    last_progress += t_fill;
                    timing = 0;
                }
                uint32_t have = h->zbase + h->zlen;
                if (h->zdone)
                    size = have;
                if (next >= have)
                    break;
                n = have - next < chunk ? have - next : chunk;
                src = h->zbuf + (next - h->zbase);
            } else {
                n = size - next < chunk ? size - next : chunk;
                src = data ? data + next : NULL;
            }
            pf_put_le32(h->payload, next);
            if (src)
                memcpy(h->payload + 4, src, n);
            else if ((r0 = image_read(h, next, h->payload + 4, n)) < 0)
                return r0; /* stream mode: the frame read again from the image source */
            h->stats.data_sent += n;
            int r = send_frame(h, PF_AP_DATA, ++h->seq, h->payload, n + 4u);
            if (r < 0)
                return pf_diag_set(h->cfg.diag, r, "link write failed at offset %lu", (unsigned long)next);
            if (!timing && next >= sent_max) {
                timing = 1;
                timed_end = next + n;
                timed_at = pt->now_ms(pt->ctx);
            }
            next += n;
            if (next > sent_max)
                sent_max = next;
        }
        pf_ap_frame f;
        int r = next_frame(h, pf_deadline(pt, rto), &f);
        uint32_t now = pt->now_ms(pt->ctx);
        /* checked on every frame: NACKs and stale ACKs keep arriving on a
         * line too noisy to make progress, so timeouts alone never come */
        if (now - last_progress > give_up)
            return pf_diag_set(h->cfg.diag, PF_ERR_TIMEOUT,
                               "transfer stalled at %s: no progress for %lu s despite retransmissions",
                               offset_text(where, sizeof where, acked, size), (unsigned long)(give_up / 1000));
        if (r == PF_ERR_TIMEOUT) {
            h->timeouts++;
            lost(h, &next, acked, &cwnd, &chunk, &clean);
            mark = h->seq;
            timing = 0;
            rto = 2 * rto < rto_max ? 2 * rto : rto_max; /* back off */
            last_goback = now;
            continue;
        }
        if (r < 0)
            return pf_diag_set(h->cfg.diag, r, "link lost at %s", offset_text(where, sizeof where, acked, size));
        if (begin_seq && f.type == (PF_AP_BEGIN | PF_AP_RESPONSE) && f.seq == begin_seq && f.len >= 1) {
            if (f.payload[0])
                return refused(h, "BEGIN", &f);
            uint32_t resume = f.len >= 5 ? pf_get_le32(f.payload + 1) : 0;
            if (resume > size)
                return pf_diag_set(h->cfg.diag, PF_ERR_PROTOCOL, "agent resumes at %s",
                                   offset_text(where, sizeof where, resume, size));
            h->resumed_from = resume;
            if (resume)
                pf_port_logf(pt, 1, "agent: resuming at %s", offset_text(where, sizeof where, resume, size));
            if (resume > acked) {
                acked = resume;
                last_progress = now;
                if (next < acked) {
                    next = acked;
                    mark = h->seq; /* frames sent below it will be answered with repeats */
                }
            }
            continue;
        }
        if (f.type == PF_AP_NACK && f.len >= 5 && (!begin_seq || f.payload[4] == begin_seq)) {
            /* the agent dropped a corrupt frame: resend from what it has,
             * at most once per round trip (one corruption, one go-back) */
            if (next > acked && now - last_goback >= (srtt ? srtt : rto / 2)) {
                lost(h, &next, acked, &cwnd, &chunk, &clean);
                mark = h->seq;
                timing = 0;
                last_goback = now;
            }
            continue;
        }
        if (f.type != PF_AP_ACK || f.len < 6)
            continue; /* a late answer to something else */
        /* seq numbers wrap every 256 frames: an ACK answers one of the last
         * 128 frames sent (the window is far smaller) */
        uint8_t behind = (uint8_t)(h->seq - f.seq), after_mark = (uint8_t)(f.seq - mark);
        /* session 0 with status "state": the agent has no transfer open (it
         * restarted, or our BEGIN was lost); believed only for a frame sent
         * after our BEGIN, not for leftovers of an earlier refused transfer */
        uint8_t after_begin = (uint8_t)(f.seq - begin_seq);
        int no_session = f.payload[5] == 0 && f.payload[0] == (uint8_t)-PF_ERR_STATE && after_begin >= 1 &&
                         after_begin < 128;
        int other_session = begin_seq && f.payload[5] != begin_seq && !no_session;
        if (other_session || behind >= 128)
            continue; /* answers a frame of an earlier transfer or session */
        uint32_t off = pf_get_le32(f.payload + 1);
        if (f.payload[0] == (uint8_t)-PF_ERR_STATE)
            return pf_diag_set(h->cfg.diag, PF_ERR_STATE,
                               "the agent lost the transfer at offset %lu (did the device reset?)",
                               (unsigned long)acked);
        if (f.payload[0]) {
            char text[TEXT_MAX + 1];
            size_t t = f.len > 6 ? f.len - 6u : 0;
            if (t > TEXT_MAX)
                t = TEXT_MAX;
            for (size_t i = 0; i < t; i++)
                text[i] = f.payload[6 + i] >= 0x20 && f.payload[6 + i] <= 0x7e ? (char)f.payload[6 + i] : '?';
            text[t] = 0;
            pf_diag_set(h->cfg.diag, -(int)f.payload[0], "agent refused data at offset %lu: %s (status %u)%s%s",
                        (unsigned long)off, pf_strerror(-(int)f.payload[0]), (unsigned)f.payload[0], t ? ": " : "",
                        text);
            pf_diag_code(h->cfg.diag, PF_AP_DATA, f.payload[0]);
            return -(int)f.payload[0];
        }
        if (off > size)
            return pf_diag_set(h->cfg.diag, PF_ERR_PROTOCOL, "agent acknowledged %s, beyond its end",
                               offset_text(where, sizeof where, off, size));
        if (off > acked) {
            acked = off;
            last_progress = now;
            report_sent(h, acked, size);
            if (next < acked) { /* the agent is further on (resume) */
                next = acked;
                mark = h->seq;
            }
            if (timing && acked >= timed_end) {
                uint32_t sample = now - timed_at;
                if (!srtt) {
                    srtt = sample;
                    rttvar = sample / 2;
                } else {
                    uint32_t dev = sample > srtt ? sample - srtt : srtt - sample;
                    rttvar = (3 * rttvar + dev) / 4;
                    srtt = (7 * srtt + sample) / 8;
                }
                rto = srtt + 4 * rttvar + frame_ms(h, cwnd * (chunk + 16u));
                rto = rto < rto_max / 2 ? rto_max / 2 : rto > rto_max ? rto_max : rto;
                timing = 0;
            }
            if (++clean >= cwnd && (cwnd < win || chunk < max_chunk)) {
                if (cwnd < win)
                    cwnd++;
                else
                    chunk = 2 * chunk < max_chunk ? 2 * chunk : max_chunk;
                clean = 0;
            }
        } else if (off == acked && next > acked && after_mark >= 1 && after_mark < 128) {
            /* the agent saw a later frame: one was lost or corrupt */
            lost(h, &next, acked, &cwnd, &chunk, &clean);
            mark = h->seq;
            timing = 0;
            last_goback = now;
        }
    }
    if (h->zon)
        pf_port_logf(pt, 1, "agent: deflate (window %u bits): %lu image bytes as %lu", (unsigned)h->zbits,
                     (unsigned long)z_total_in(h), (unsigned long)size);
#if PF_AGENT_ZPIPE
    if (h->zpon) {
        pf_zp_stats z;
        pf_zpipe_stats(h->zp, &z);
        h->stats.zsegs_fast = (uint16_t)(z.segs_fast < 0xFFFFu ? z.segs_fast : 0xFFFFu);
        h->stats.zsegs_best = (uint16_t)(z.segs_best < 0xFFFFu ? z.segs_best : 0xFFFFu);
        pf_port_logf(pt, 1, "agent: compressor thread (%s): %lu segments by zlib, %lu by zopfli, %lu -> %lu bytes, "
                     "%lu ms of compression, the line waited %lu ms", pf_zp_method_name(h->zp_method),
                     (unsigned long)z.segs_fast, (unsigned long)z.segs_best, (unsigned long)z.raw_bytes,
                     (unsigned long)z.out_bytes, (unsigned long)z.cpu_ms, (unsigned long)z.wait_ms);
    }
#endif
    pf_port_logf(pt, 1,
                 "agent: %lu bytes in %lu ms: %lu go-backs (%lu on timeout), rto %lu ms, srtt %lu ms, last frame %lu B",
                 (unsigned long)(size - from), (unsigned long)(pt->now_ms(pt->ctx) - t_start),
                 (unsigned long)h->retransmits, (unsigned long)h->timeouts, (unsigned long)rto, (unsigned long)srtt,
                 (unsigned long)chunk);
    return PF_OK;
}

static int read_mem(void *ctx, uint32_t off, uint8_t *dst, uint32_t len)
{
    const uint8_t *img = ctx;
    memcpy(dst, img + off, len); /* pf_mcuboot_check stays within its limit */
    return PF_OK;
}

/* Stream mode: bytes [off, off+len) of the image from the job's source. */
static int image_read(agent_host *h, uint32_t off, uint8_t *dst, uint32_t len)
{
    if (!h->map)
        return pf_diag_set(h->cfg.diag, PF_ERR_ARG, "agent (stream build): no image source (check_image not called)");
    pf_memmap_read(h->map, off, dst, len, 0xFF);
    int r = pf_memmap_error(h->map);
    return r < 0 ? r : PF_OK;
}

static int read_source(void *ctx, uint32_t off, uint8_t *dst, uint32_t len)
{
    return image_read(ctx, off, dst, len);
}

/* The checks the device makes at END (the SHA-256 TLV, and the signature
 * when the caller gave the key), made on the host first: a corrupt or
 * wrongly signed file fails before a byte of it is sent, not after a full
 * transfer. A failure is the file's fault: PF_ERR_FORMAT. */
static int check_image(agent_host *h, const uint8_t *data, uint32_t len)
{
    pf_mcuboot_check_config c = PF_MCUBOOT_CHECK_CONFIG_DEFAULT();
    c.read = data ? read_mem : read_source;
    c.ctx = data ? (void *)(uintptr_t)data : (void *)h;
    c.limit = len;
    c.pubkey = h->opt.pubkey;
    c.pubkey_len = h->opt.pubkey_len;
    c.sig_verify = h->opt.sig_verify;
    c.sig_user = h->opt.sig_user;
    c.buf = h->payload; /* free until BEGIN */
    c.buf_size = sizeof h->payload;
    c.diag = h->cfg.diag;
    pf_mcuboot_info info;
    int r = pf_mcuboot_check(&c, &info);
    if (r == PF_ERR_AUTH || r == PF_ERR_FORMAT) {
        pf_diag_prefix(h->cfg.diag, "image file (checked before sending; nothing was sent)");
        return PF_ERR_FORMAT;
    }
    return r;
}

#if defined(__GNUC__)
#define NOINLINE __attribute__((noinline))
#else
#define NOINLINE
#endif

/* The checks before a byte is sent (layout, SHA-256 TLV, signature) and the
 * file's SHA-256 (the resume key): data in memory, or NULL to read the job's
 * image source. Its own frame (not inlined): in stream mode it runs from
 * check_image, so that its stack and the transfer's do not add up. */
static NOINLINE int prepare_image(agent_host *h, const uint8_t *data, uint32_t len, uint8_t *sha256)
{
    uint8_t head[4] = {0, 0, 0, 0};
    int r;
    if (len >= 4) {
        if (data)
            memcpy(head, data, 4);
        else if ((r = image_read(h, 0, head, 4)) < 0)
            return r;
    }
    if (len < PF_MCUBOOT_HEADER_SIZE || pf_get_le32(head) != PF_MCUBOOT_MAGIC)
        return pf_diag_set(h->cfg.diag, PF_ERR_FORMAT,
                           "the agent installs MCUboot-layout images (magic 0x96f3b83d); this one starts with "
                           "0x%08lx: make one with `peerflash sign`",
                           (unsigned long)pf_get_le32(head));
    r = check_image(h, data, len);
    if (r < 0)
        return r;
    pf_digest dg;
    pf_digest_begin(&dg, PF_DIGEST_SHA256);
    if (data) {
        pf_digest_update(&dg, data, len);
    } else {
        /* the payload buffer is free until BEGIN */
        for (uint32_t off = 0; off < len;) {
            uint32_t n = len - off < sizeof h->payload ? len - off : (uint32_t)sizeof h->payload;
            if ((r = image_read(h, off, h->payload, n)) < 0)
                return r;
            pf_digest_update(&dg, h->payload, n);
            off += n;
        }
    }
    pf_digest_finish(&dg, sha256);
    return PF_OK;
}

/* The whole transfer of the image: data in memory (host), or NULL in stream
 * mode (checked and hashed by check_image already, sent from the source). */
static int send_image(agent_host *h, const uint8_t *data, uint32_t len)
{
    int r;
    uint8_t begin[PF_AP_BEGIN_DELTA_LEN];
    if (data) {
        r = prepare_image(h, data, len, begin + 5);
        if (r < 0)
            return r;
    } else {
        if (!h->src_len || h->src_len != len)
            return pf_diag_set(h->cfg.diag, PF_ERR_ARG, "agent (stream build): the job writes %lu bytes, the image "
                               "checked before has %lu", (unsigned long)len, (unsigned long)h->src_len);
        memcpy(begin + 5, h->src_hash, 32);
    }
    pf_put_le32(begin, len);
    begin[4] = 0;
    /* BEGIN, and the first window right behind it (the link keeps order, so
     * the agent has begun when the data arrives): no round trip lost. When
     * it resumes further on, its first ACK moves the window there. A device
     * that resets mid-transfer (power loss, watchdog) forgets the session
     * but not what it stored: BEGIN again and go on from there. */
    pf_ap_frame f;
    /* where the agent will resume, as far as its HELLO told: the first
     * window goes there (BEGIN's answer confirms or moves it) */
    uint32_t from = 0;
    if (memcmp(h->rx_hash, begin + 5, 32) == 0) {
        if (h->state == PF_BOOT_RECEIVING && h->rx_received <= len)
            from = h->rx_received;
        else if (h->state == PF_BOOT_PENDING)
            from = len;
    }
    memset(&h->stats, 0, sizeof h->stats);
    h->stats.image_bytes = len;
    h->resumed_from = 0;
    /* delta: a patch against the running image, if the caller has one
     * (the device checks the base at BEGIN, before it writes anything) */
    pf_agent_delta_patch dp;
    int delta = 0;
    memset(&dp, 0, sizeof dp);
    if (data && h->delta_fn && (h->caps & PF_AP_CAP_DELTA) && h->max_payload >= PF_AP_BEGIN_DELTA_LEN) {
        r = h->delta_fn(h->delta_user, h->run_hash, data, len, &dp);
        if (r < 0)
            return r;
        delta = r > 0 && dp.body;
    }
#if PF_AGENT_ZPIPE
    /* best asked for: said at -v; auto (the default): at -vv */
    if (h->zbits && h->zbits < 15 && h->zmethod != PF_ZP_FAST)
        pf_port_logf(P(h), h->zmethod == PF_ZP_BEST ? 1 : 2,
                     "agent: --compress %s: the agent inflates with a %u-bit window (%u B) and zopfli needs 15 bits: "
                     "zlib at %u bits instead",
                     pf_zp_method_name(h->zmethod), (unsigned)h->zbits, 1u << h->zbits, (unsigned)h->zbits);
#endif
    for (int attempt = 0;; attempt++) {
        if (h->zbits || delta) {
            /* compressed or a patch: the stream starts at the resume
             * offset, so BEGIN's answer comes first (one round trip) */
            size_t blen = 37;
            begin[4] = (uint8_t)((h->zbits ? PF_AP_F_DEFLATE : 0) | (delta ? PF_AP_F_DELTA : 0));
            if (delta) {
                pf_put_le32(begin + 37, dp.base_size);
                memcpy(begin + 41, dp.base_sha256, 32);
                blen = PF_AP_BEGIN_DELTA_LEN;
            }
            r = request(h, PF_AP_BEGIN, begin, blen, 2000, 3, &f);
            if (r < 0)
                return r;
            if (f.payload[0] && delta && f.payload[0] == (uint8_t)-PF_ERR_VERIFY && dp.fallback) {
                pf_port_logf(P(h), 1, "agent: the device does not run the cached delta base: sending the image whole");
                delta = 0;
                continue;
            }
            if (f.payload[0]) {
                r = refused(h, delta ? "the delta" : "BEGIN", &f);
                if (delta && r == PF_ERR_VERIFY) /* the device runs another image than the base */
                    r = PF_ERR_TARGET;
            } else {
                uint32_t resume = f.len >= 5 ? pf_get_le32(f.payload + 1) : 0;
                if (resume > len)
                    return pf_diag_set(h->cfg.diag, PF_ERR_PROTOCOL, "agent resumes at %lu of %lu",
                                       (unsigned long)resume, (unsigned long)len);
                h->resumed_from = resume;
                if (resume)
                    pf_port_logf(P(h), 1, "agent: resuming at offset %lu of %lu", (unsigned long)resume,
                                 (unsigned long)len);
                r = PF_OK;
                const uint8_t *src = data;
                uint32_t src_len = len, src_from = resume, plain_len = len - resume;
                if (delta && resume < len) {
                    /* the body from the record that covers the resume offset */
                    uint32_t boff = 0;
                    r = pf_patch_body_seek(dp.body, dp.body_len, resume, &boff, h->cfg.diag);
                    src = dp.body + boff;
                    src_len = plain_len = dp.body_len - boff;
                    src_from = 0;
                    h->stats.patch_bytes = src_len;
                    pf_port_logf(P(h), 1, "agent: delta: %lu patch bytes for image bytes %lu..%lu",
                                 (unsigned long)src_len, (unsigned long)resume, (unsigned long)len);
                }
                if (r >= 0 && resume < len) {
                    if (h->zbits) {
                        if ((r = z_begin(h, src, src_len, src_from)) >= 0)
                            r = transfer(h, NULL, 0, 0, f.seq);
                    } else {
                        r = transfer(h, src, src_len, 0, f.seq);
                    }
                }
                h->stats.stream_bytes = h->zon ? h->zbase + h->zlen : h->zbits ? 0 : plain_len;
                z_end(h);
            }
        } else {
            begin[4] = 0;
            uint8_t bseq = ++h->seq;
            r = send_frame(h, PF_AP_BEGIN, bseq, begin, 37);
            if (r < 0)
                return r;
            r = transfer(h, data, len, attempt ? 0 : from, bseq);
            h->stats.stream_bytes = len - h->resumed_from;
        }
        h->stats.resumed_from = h->resumed_from;
        h->stats.delta = (uint8_t)delta;
        h->stats.deflate_bits = h->zbits;
        h->stats.retransmits = h->retransmits;
        if (r != PF_ERR_STATE || attempt >= 5)
            break;
        pf_port_logf(P(h), 1, "agent: the device has no transfer open (BEGIN lost, or it restarted): BEGIN again");
    }
    if (r < 0)
        return r;
    uint8_t fl = 0;
    /* END: hash, image and signature checks take a moment on the device (an
     * ECDSA check is seconds on a small MCU); a repeated END is answered
     * like the first, so a lost answer costs one retry */
    r = request(h, PF_AP_END, &fl, 1, 3000, 5, &f);
    if (r < 0)
        return r;
    if (f.payload[0])
        return refused(h, "the image", &f);
    h->state = PF_BOOT_PENDING;
    /* END succeeded: the agent re-read the stored file and found this
     * SHA-256, so a digest of exactly that range needs no round trip */
    memcpy(h->ended_hash, begin + 5, 32);
    h->ended_len = len;
    return PF_OK;
}

static int a_write(void *self, uint32_t addr, const uint8_t *data, uint32_t len)
{
    agent_host *h = self;
    if (PF_AGENT_HOST_STREAM) {
        /* one frame's worth of the job's run: the transfer reads the image
         * source itself at write_end */
        if ((uint64_t)addr + len > h->run_len)
            return pf_diag_set(h->cfg.diag, PF_ERR_ARG, "agent write of %lu bytes at 0x%lx: past the %lu-byte image",
                               (unsigned long)len, (unsigned long)addr, (unsigned long)h->run_len);
        return PF_OK;
    }
    if (addr != 0 || len != h->run_len)
        return pf_diag_set(h->cfg.diag, PF_ERR_ARG, "agent write of %lu bytes at 0x%lx: expected the whole image",
                           (unsigned long)len, (unsigned long)addr);
    return send_image(h, data, len);
}

static int a_write_end(void *self)
{
    agent_host *h = self;
    return PF_AGENT_HOST_STREAM ? send_image(h, NULL, h->run_len) : PF_OK;
}

static int a_check_image(void *self, const pf_memmap *map)
{
    agent_host *h = self;
    h->map = map;
    if (!PF_AGENT_HOST_STREAM)
        return PF_OK; /* the job's write() brings the image, checked there */
    /* stream mode: the image is checked and hashed here, before the job */
    uint32_t lo, hi;
    pf_memmap_bounds(map, &lo, &hi);
    if (map->count != 1 || lo != 0)
        return pf_diag_set(h->cfg.diag, PF_ERR_RANGE, "the agent takes one whole signed image at address 0, not "
                           "%u range(s) from 0x%08lx", (unsigned)map->count, (unsigned long)lo);
    h->src_len = 0;
    int r = prepare_image(h, NULL, hi, h->src_hash);
    if (r < 0)
        return r;
    h->src_len = hi;
    return PF_OK;
}

static int a_digest(void *self, uint32_t addr, uint32_t len, uint8_t *out)
{
    agent_host *h = self;
    uint8_t p[9];
    if (h->state == PF_BOOT_PENDING && h->ended_len && addr == 0 && len == h->ended_len) {
        memcpy(out, h->ended_hash, 32);
        return 32;
    }
    /* pending or partly received: the staging slot; else what runs */
    p[0] = (h->state == PF_BOOT_PENDING || h->state == PF_BOOT_RECEIVING) ? 1 : 0;
    pf_put_le32(p + 1, addr);
    pf_put_le32(p + 5, len);
    pf_ap_frame f;
    int r = request(h, PF_AP_HASH, p, sizeof p, 1000, 6, &f);
    if (r < 0)
        return r;
    if (f.payload[0])
        return refused(h, "HASH", &f);
    if (f.len < 33)
        return pf_diag_set(h->cfg.diag, PF_ERR_PROTOCOL, "short HASH answer");
    memcpy(out, f.payload + 1, 32);
    return 32;
}

static int a_run(void *self)
{
    agent_host *h = self;
    int was_pending = h->state == PF_BOOT_PENDING;
    pf_ap_frame f;
    /* RESET names the state we expect (pending, or idle when nothing is to
     * install): a RESET repeated after a lost answer then cannot reset the
     * new image on trial, which would roll it back */
    uint8_t expect = h->state;
    int r;
    step(h, PF_PHASE_REBOOT, 0);
    for (int k = 0;; k++) {
        r = request(h, PF_AP_RESET, &expect, 1, 1000, 1, &f);
        if (r == PF_OK && f.payload[0] == 0)
            break;
        if (r == PF_OK && k > 0 && f.payload[0] == (uint8_t)-PF_ERR_STATE)
            break; /* an earlier RESET got through: the device already restarted */
        if (r == PF_OK)
            return refused(h, "RESET", &f);
        if (k >= 2)
            return r;
    }
    /* the device resets, the bootloader swaps (seconds for big images), the
     * agent greets with an unsolicited HELLO answer */
    step(h, PF_PHASE_REBOOT, 1);
    if (was_pending)
        step(h, PF_PHASE_INSTALL, 0);
    uint32_t deadline = pf_deadline(P(h), 60000);
    uint8_t hello_seq = 0, hp[3] = {PF_AP_VERSION, 0, 0};
    pf_put_le16(hp + 1, HOST_RXBUF - PF_AP_OVERHEAD);
    for (;;) {
        /* its greeting may be lost on a noisy line: ask every second too
         * (a device busy swapping does not hear it, and that is fine) */
        uint32_t left = pf_remaining(P(h), deadline);
        if (left == 0)
            return pf_diag_set(h->cfg.diag, PF_ERR_TIMEOUT, "the device did not come back within 60 s after reset");
        r = next_frame(h, pf_deadline(P(h), left < 1000 ? left : 1000), &f);
        if (r == PF_ERR_TIMEOUT) {
            hello_seq = ++h->seq;
            if (hello_seq == 0)
                hello_seq = ++h->seq;
            if ((r = send_frame(h, PF_AP_HELLO, hello_seq, hp, sizeof hp)) < 0)
                return r;
            continue;
        }
        if (r < 0)
            return r;
        if (f.type == (PF_AP_HELLO | PF_AP_RESPONSE) && f.len >= 100 && f.payload[0] == 0 &&
            (f.seq == 0 || f.seq == hello_seq))
            break;
    }
    r = parse_hello(h, &f, NULL);
    h->ended_len = 0;
    if (r < 0)
        return r;
    if (!was_pending)
        return PF_OK;
    if (h->state != PF_BOOT_TRIAL)
        return pf_diag_set(h->cfg.diag, PF_ERR_TARGET,
                           "the new image did not start: the device is back in state %s%s",
                           state_name(h->state), (h->flags & PF_BOOT_F_REVERTED) ? " (rolled back)" : "");
    step(h, PF_PHASE_INSTALL, 1);
    step(h, PF_PHASE_TRIAL, 1); /* it runs on trial and answered */
    /* it runs and talks: make it permanent */
    step(h, PF_PHASE_CONFIRM, 0);
    r = request(h, PF_AP_CONFIRM, NULL, 0, 500, 8, &f);
    if (r < 0)
        return r;
    if (f.payload[0])
        return refused(h, "CONFIRM", &f);
    h->state = PF_BOOT_IDLE;
    h->ended_len = 0;
    step(h, PF_PHASE_CONFIRM, 1);
    return PF_OK;
}

static void a_close(void *self)
{
    agent_host *h = self;
    z_end(h);
#if PF_AGENT_ZPIPE
    pf_zpipe_free(h->zp);
    h->zp = NULL;
#endif
}

int pf_agent_host_set_options(void *self, const pf_agent_host_options *opt)
{
    agent_host *h = self;
    if (!h || !opt || opt->level < 0 || opt->level > 9 || (opt->pubkey && !opt->sig_verify))
        return PF_ERR_ARG;
    h->opt = *opt;
    if (!opt->deflate)
        h->zbits = 0;
    return PF_OK;
}

int pf_agent_host_set_delta(void *self, pf_agent_delta_fn fn, void *user)
{
    agent_host *h = self;
    if (!h)
        return PF_ERR_ARG;
    h->delta_fn = fn;
    h->delta_user = user;
    return PF_OK;
}

void pf_agent_host_get_stats(const void *self, pf_agent_host_stats *st)
{
    const agent_host *h = self;
    *st = h->stats;
}

/* ---- what the front ends ask of a driver (pf_target_ops, optional part) ---- */
static const pf_target_option agent_options[] = {
    {.name = "no-compress", .arg = NULL, .help = "send the image uncompressed", .commands = PF_CMD_FLASH, .flags = 0},
#if PF_AGENT_ZPIPE
    PF_ZP_COMPRESS_OPTION,
#endif
    /* the patch itself is the host's (a diff, an image cache): set_delta */
    {.name = "delta-from",
     .arg = "OLD",
     .help = "send a patch against OLD (the image the device runs)",
     .commands = PF_CMD_FLASH,
     .flags = PF_OPT_HOST},
    {.name = "no-delta",
     .arg = NULL,
     .help = "send the image whole, never a patch against a cached one",
     .commands = PF_CMD_FLASH,
     .flags = PF_OPT_HOST},
    {.name = NULL},
};

static int a_set_option(void *self, const char *name, const char *value)
{
    agent_host *h = self;
    (void)value;
    if (!strcmp(name, "no-compress")) {
        h->opt.deflate = 0;
        h->zbits = 0;
        return PF_OK;
    }
#if PF_AGENT_ZPIPE
    if (!strcmp(name, "compress")) {
        int m = pf_zp_method_option(value, h->cfg.diag);
        if (m < 0)
            return m;
        h->zmethod = m;
        h->opt.deflate = 1;
        return PF_OK;
    }
#endif
    return pf_diag_set(h->cfg.diag, PF_ERR_ARG, "option '%s' is not an option of the agent driver", name);
}

static void a_stats(const void *self, pf_target_stats *out)
{
    const agent_host *h = self;
    out->flags = PF_STATS_RESUME;
    out->resumed_from = h->stats.resumed_from;
    out->wire_bytes = h->stats.stream_bytes;
}

const pf_target_ops pf_target_agent = {
    .name = "agent",
    .summary = "peerflash update agent: windowed, resumable transfer of signed MCUboot images",
    .ctx_size = sizeof(agent_host),
    .open = a_open,
    .connect = a_connect,
    .erase = NULL, /* the agent erases what it stores */
    .erase_all = NULL,
    .write_begin = a_write_begin,
    .write = a_write,
    .write_end = a_write_end,
    .read = NULL, /* not exposed, digest instead */
    .digest = a_digest,
    .run = a_run,
    .close = a_close,
    .options = agent_options,
    .set_option = a_set_option,
    .stats = a_stats,
    .check_image = a_check_image,
    .set_delta = pf_agent_host_set_delta,
    .probe_rank = 3,
    .app_address = 0, /* the slot: the device places the image */
};
