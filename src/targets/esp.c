/* The ESP ROM serial loader driver (see include/peerflash/pf_esp.h).
 *
 * One command at a time: a request frame goes out, then frames are read until
 * the response with the same op arrives, all within one deadline per command
 * (each read is given what remains of it). Writes stream: write_begin opens a
 * run with FLASH_BEGIN or FLASH_DEFL_BEGIN, write() feeds raw bytes that are
 * cut into 1 KiB blocks (plain) or compressed by zlib into 1 KiB blocks on
 * the fly (deflate), write_end flushes the last block. zlib allocates from an
 * arena inside the driver state, never from the heap. */
#include <stddef.h>
#include <string.h>
#include <zlib.h>

#include "codec/esp_cmd.h"
#include "codec/slip.h"
#include "peerflash/pf_bytes.h"
#include "peerflash/pf_esp.h"
#include "peerflash/pf_esp_image.h"
#include "peerflash/pf_image.h"
#include "peerflash/pf_zarena.h"
#if PF_ESP_ZPIPE
#include <stdlib.h>

#include "host/zpipe.h"
#define ZPIPE_DEPTH 8u /* 32 KiB segments held ahead of the line: 256 KiB raw + their compressed bytes */
#endif

#define DEFAULT_TIMEOUT_MS 3000u
#define SYNC_TIMEOUT_MS 100u
#define ERASE_MS_PER_MB 30000u /* FLASH_BEGIN erases up front */
#define WRITE_MS_PER_MB 40000u /* a deflate block may expand to much more */
#define MD5_MS_PER_MB 8000u
/* Build-time sizes (the state is sizeof(esp_state): pf_session_state_size).
 * The defaults are the host's; the small-MCU updater (firmware/CMakeLists.txt,
 * Cortex-M0+) sets smaller ones, measured in docs/MCU.md:
 *   PF_ESP_ZWINDOW_BITS  deflate window, 9..15 (14). The ROM inflates any
 *                        window up to 32 KiB; a smaller one costs compression.
 *   PF_ESP_ZMEM_LEVEL    deflate hash chains and symbol buffer, 1..9 (7)
 *   PF_ESP_ZSTATE        arena bytes for deflate's own state beyond its window
 *                        and chains (16384; 5,828 B is deflate_state on a
 *                        32-bit MCU, plus 16-byte alignment of 5 blocks).
 *                        zlib allocates only from this arena, in the state.
 *   PF_ESP_BLOCK         data block buffer, 64..1024 (PF_ESP_ROM_BLOCK):
 *                        compressed blocks are cut at this size; plain
 *                        blocks (--no-compress, chips without deflate) are
 *                        the chip's ROM block and need it that large (a
 *                        write says so when it is not)
 *   PF_ESP_TX_BUF        frame buffer: 0 (default) holds a whole SLIP frame
 *                        (2x a block, the worst case of escaping); n > 0:
 *                        frames are encoded and sent through n bytes
 *   PF_ESP_RX_MAX        largest answer frame kept (READ_FLASH_SLOW's 64
 *                        bytes + header and status; default with room)
 *   PF_ESP_STREAM        0: the current 32 KiB segment's raw bytes are kept
 *                        for a fresh start after line damage; 1: they are
 *                        read again from the job's image source (the map
 *                        given to check_image, which an updater may read
 *                        again from its SD card), through PF_ESP_REREAD bytes */
#ifndef PF_ESP_ZWINDOW_BITS
#define PF_ESP_ZWINDOW_BITS 14
#endif
#ifndef PF_ESP_ZMEM_LEVEL
#define PF_ESP_ZMEM_LEVEL 7 /* 8 would not leave room for the 32 KiB segment in a 240 KiB MCU context */
#endif
#ifndef PF_ESP_ZSTATE
#define PF_ESP_ZSTATE 16384u
#endif
#ifndef PF_ESP_BLOCK
#define PF_ESP_BLOCK PF_ESP_ROM_BLOCK
#endif
#ifndef PF_ESP_TX_BUF
#define PF_ESP_TX_BUF 0
#endif
#ifndef PF_ESP_RX_MAX
#define PF_ESP_RX_MAX (PF_ESP_HDR + 2 * PF_ESP_SLOW_READ_MAX + 64)
#endif
#ifndef PF_ESP_STREAM
#define PF_ESP_STREAM 0
#endif
#ifndef PF_ESP_KNOWN_ERASED
#define PF_ESP_KNOWN_ERASED 4u /* erased ranges the job can tell the driver (8 bytes each) */
#endif
#if PF_ESP_KNOWN_ERASED < 1
#error "PF_ESP_KNOWN_ERASED must be at least 1"
#endif
#define PF_ESP_REREAD 64
#if PF_ESP_ZWINDOW_BITS < 9 || PF_ESP_ZWINDOW_BITS > 15 || PF_ESP_ZMEM_LEVEL < 1 || PF_ESP_ZMEM_LEVEL > 9
#error "PF_ESP_ZWINDOW_BITS must be 9..15 and PF_ESP_ZMEM_LEVEL 1..9"
#endif
#if PF_ESP_BLOCK < 64 || PF_ESP_BLOCK > PF_ESP_ROM_BLOCK
#error "PF_ESP_BLOCK must be 64..PF_ESP_ROM_BLOCK"
#endif
#if PF_ESP_TX_BUF != 0 && PF_ESP_TX_BUF < 32
#error "PF_ESP_TX_BUF must be 0 (whole frames) or at least 32"
#endif
#if PF_ESP_RX_MAX < PF_ESP_HDR + PF_ESP_SLOW_READ_MAX + 4
#error "PF_ESP_RX_MAX must hold a READ_FLASH_SLOW answer"
#endif
/* the job's writes: 4 KiB on the host; a block on a streamed build, whose
 * job buffer is small */
#define WRITE_MAX (PF_ESP_STREAM ? (uint32_t)PF_ESP_BLOCK : 0x1000u)
#define ZWINDOW_BITS PF_ESP_ZWINDOW_BITS
#define ZMEM_LEVEL PF_ESP_ZMEM_LEVEL
/* deflate needs (1 << (wbits + 2)) + (1 << (memLevel + 9)) plus its state */
#define ZARENA_SIZE ((1u << (ZWINDOW_BITS + 2)) + (1u << (ZMEM_LEVEL + 9)) + PF_ESP_ZSTATE)
#define RX_MAX PF_ESP_RX_MAX
#define TX_MAX (PF_ESP_TX_BUF ? PF_ESP_TX_BUF : PF_ESP_FRAME_MAX(PF_ESP_DATA_HDR + PF_ESP_BLOCK + 4))
#define SECTOR 4096u            /* the ROM's erase unit; BEGIN offsets are multiples */
#define SEGMENT 0x8000u         /* the ROM's inflate buffer: written when full */
#define MAX_RESTARTS 8u         /* fresh starts in a row without progress (the emulated ROM
                                * under load needed 4 in one 32 KiB segment) */
#define ESP_RESTART (-1000)     /* internal: the block was damaged, start the segment again */
#define KNOWN_ERASED PF_ESP_KNOWN_ERASED /* ranges the job found erased (known_erased) */

typedef struct esp_state {
    pf_target_config cfg;
    pf_esp_options opt;
    const pf_esp_chip *chip;
    uint8_t status_len;
    uint32_t flash_size;
    uint32_t baud;
    int connected;
    /* last response */
    uint32_t val;
    uint8_t status, err;
    size_t rlen;               /* payload bytes before the status */
    uint16_t last_size;
    uint32_t sync_val;         /* val of the SYNC answer: 0 from a flasher stub */
    const uint8_t *rdata;
    /* the current run */
    int in_run, deflating;
    uint32_t run_addr, run_len, run_fed, seq, num_blocks;
    uint32_t seg_off, seg_fill;  /* the current segment: run offset, bytes held */
    uint32_t stream_off;         /* run offset of the current BEGIN */
    uint32_t restart_off;        /* run offset of the last fresh start */
    unsigned restarts;           /* fresh starts at restart_off without progress */
    int seg_plain;               /* this segment went uncompressed after damage */
    uint32_t failed_seq;         /* the last damaged block and what the ROM said */
    uint8_t failed_status, failed_err;
    int failed_code;
    uLong z_in_sent;           /* raw bytes consumed by the blocks sent so far */
    size_t fill;
    uint32_t bs;                 /* data block size: the chip's ROM block (<= PF_ESP_ROM_BLOCK) */
    /* the answer to the last data block is read when the next block has
     * been partly sent (send-ahead) or when the segment ends */
    int pending;
    uint8_t pending_op;
    uint32_t pending_seq, pending_deadline, pending_len;
    size_t ahead;                /* frame bytes sent before the previous block's answer */
    size_t ahead_now;            /* the same for this run: 0 after the line damaged a block */
    uint32_t zbs;                /* compressed block size: bs, at most the block buffer */
    uint8_t block[PF_ESP_BLOCK];
#if PF_ESP_STREAM
    const pf_memmap *map;        /* the job's image (check_image): a fresh start reads it again */
    uint8_t reread[PF_ESP_REREAD];
#else
    uint8_t seg[SEGMENT];        /* raw bytes of the current segment, for a fresh start */
#if PF_ESP_ZPIPE
    /* host: compressed writes go through a compressor thread (host/zpipe.h);
     * s->seg is then the segment being filled and cur the one being sent */
    pf_zpipe *zp;
    int zrun;                    /* this run's compressed segments go through zp */
    int zp_method;               /* the method zp was made for */
    const uint8_t *cur;          /* raw bytes of the segment being sent (in zp) */
    pf_zp_seg zseg;              /* its compressed form */
    uint32_t fill_off, fill_len; /* the segment being filled: run offset, bytes */
    uLong adler;                 /* of the stream's raw bytes up to the segment being sent */
#endif
#endif
    pf_esp_stats stats;
    /* ranges the job found erased and the driver has not written into yet:
     * a run inside one erases only its first sector at BEGIN */
    uint32_t known_lo[KNOWN_ERASED], known_hi[KNOWN_ERASED];
    /* zlib and its arena */
    z_stream z;
    int z_ready;
    pf_zarena za;        /* zlib's allocator on zarena */
    unsigned char zarena[ZARENA_SIZE]; /* pf_zarena aligns each block itself */
    /* frames */
    pf_slip_decoder dec;
    uint8_t rx[RX_MAX];
    uint8_t tx[TX_MAX];
    struct {                     /* the request frame being sent (frame_build) */
        uint8_t op;
        uint32_t chk;
        const uint8_t *a, *b;
        size_t an, bn, len;
    } fr;
} esp_state;

static pf_diag *diag(esp_state *s)
{
    return s->cfg.diag;
}

static const pf_port *port(esp_state *s)
{
    return s->cfg.port;
}

/* ---- frames and commands --------------------------------------------------- */

static uint32_t per_mb(uint32_t ms_per_mb, uint32_t bytes)
{
    uint64_t t = (uint64_t)ms_per_mb * bytes / 1000000u;
    return t < DEFAULT_TIMEOUT_MS ? DEFAULT_TIMEOUT_MS : (uint32_t)t;
}

/* The request frame of op with a then b as its data: its length (0 when it
 * does not fit). With whole-frame buffering (PF_ESP_TX_BUF 0, the host) it
 * is built in tx here; a small tx (PF_ESP_TX_BUF n) encodes it again in
 * frame_write, so a and b must stay as they are until then. */
static size_t frame_build(esp_state *s, uint8_t op, uint32_t chk, const uint8_t *a, size_t an, const uint8_t *b,
                          size_t bn)
{
    s->fr.op = op;
    s->fr.chk = chk;
    s->fr.a = a;
    s->fr.an = an;
    s->fr.b = b;
    s->fr.bn = bn;
#if PF_ESP_TX_BUF
    size_t n = 0;
    if (an + bn <= 0xFFFF) {
        uint8_t h[PF_ESP_HDR] = {0x00, op};
        pf_put_le16(h + 2, (uint16_t)(an + bn));
        pf_put_le32(h + 4, chk);
        n = 2 + pf_slip_escaped_len(h, sizeof h) + (an ? pf_slip_escaped_len(a, an) : 0) +
            (bn ? pf_slip_escaped_len(b, bn) : 0);
    }
#else
    size_t n = pf_esp_request_frame(op, chk, a, an, b, bn, s->tx, sizeof s->tx);
#endif
    s->fr.len = n;
    return n;
}

#if PF_ESP_TX_BUF
/* One encoded byte at frame position *pos: kept when in [from, to), tx sent
 * when full. */
static int tx_put(esp_state *s, uint8_t c, size_t *pos, size_t *o, size_t from, size_t to)
{
    if (*pos >= from && *pos < to) {
        s->tx[(*o)++] = c;
        if (*o == sizeof s->tx) {
            int r = pf_port_write_all(port(s), s->tx, *o);
            *o = 0;
            if (r < 0)
                return r;
        }
    }
    (*pos)++;
    return PF_OK;
}

static int tx_escaped(esp_state *s, const uint8_t *p, size_t n, size_t *pos, size_t *o, size_t from, size_t to)
{
    int r = PF_OK;
    for (size_t i = 0; i < n && r == PF_OK && *pos < to; i++) {
        if (p[i] == PF_SLIP_END || p[i] == PF_SLIP_ESC) {
            r = tx_put(s, PF_SLIP_ESC, pos, o, from, to);
            if (r == PF_OK)
                r = tx_put(s, p[i] == PF_SLIP_END ? PF_SLIP_ESC_END : PF_SLIP_ESC_ESC, pos, o, from, to);
        } else {
            r = tx_put(s, p[i], pos, o, from, to);
        }
    }
    return r;
}
#endif

/* Writes bytes [from, to) of the frame frame_build made. */
static int frame_write(esp_state *s, size_t from, size_t to)
{
    if (to > s->fr.len)
        to = s->fr.len;
    if (from >= to)
        return PF_OK;
#if PF_ESP_TX_BUF
    uint8_t h[PF_ESP_HDR] = {0x00, s->fr.op};
    pf_put_le16(h + 2, (uint16_t)(s->fr.an + s->fr.bn));
    pf_put_le32(h + 4, s->fr.chk);
    size_t pos = 0, o = 0;
    int r = tx_put(s, PF_SLIP_END, &pos, &o, from, to);
    if (r == PF_OK)
        r = tx_escaped(s, h, sizeof h, &pos, &o, from, to);
    if (r == PF_OK)
        r = tx_escaped(s, s->fr.a, s->fr.an, &pos, &o, from, to);
    if (r == PF_OK)
        r = tx_escaped(s, s->fr.b, s->fr.bn, &pos, &o, from, to);
    if (r == PF_OK)
        r = tx_put(s, PF_SLIP_END, &pos, &o, from, to);
    if (r == PF_OK && o)
        r = pf_port_write_all(port(s), s->tx, o);
    return r < 0 ? r : PF_OK;
#else
    int r = pf_port_write_all(port(s), s->tx + from, to - from);
    return r < 0 ? r : PF_OK;
#endif
}

static int send_request(esp_state *s, uint8_t op, uint32_t chk, const uint8_t *a, size_t an, const uint8_t *b,
                        size_t bn)
{
    size_t n = frame_build(s, op, chk, a, an, b, bn);
    if (!n)
        return pf_diag_set(diag(s), PF_ERR_ARG, "ESP %s request of %zu bytes does not fit", pf_esp_op_name(op),
                           an + bn);
    int r = frame_write(s, 0, n);
    if (r < 0)
        return pf_diag_set(diag(s), r, "sending %s to the ESP failed: %s", pf_esp_op_name(op), pf_strerror(r));
    return PF_OK;
}

/* Reads frames until a response to op arrives, before the deadline.
 * Returns PF_OK with the response in s->val / s->rdata / s->rlen and the
 * status bytes checked, or an error explained in diag. */
static int read_response(esp_state *s, uint8_t op, uint32_t deadline, int quiet_timeout)
{
    uint8_t chunk[1];
    for (;;) {
        uint32_t left = pf_remaining(port(s), deadline);
        int r = port(s)->read(port(s)->ctx, chunk, 1, left);
        if (r < 0)
            return pf_diag_set(diag(s), r, "link failed while waiting for the answer to %s: %s", pf_esp_op_name(op),
                               pf_strerror(r));
        if (r == 0) {
            if (left == 0 || pf_remaining(port(s), deadline) == 0) {
                if (quiet_timeout)
                    return PF_ERR_TIMEOUT;
                return pf_diag_set(diag(s), PF_ERR_TIMEOUT, "no answer from the ESP ROM to %s", pf_esp_op_name(op));
            }
            continue;
        }
        pf_slip_event ev = pf_slip_feed(&s->dec, chunk[0]);
        if (ev != PF_SLIP_FRAME)
            continue; /* garbage, a dropped bad frame, or more to come */
        pf_esp_packet p;
        if (pf_esp_packet_parse(s->dec.buf, s->dec.len, &p) != 0 || p.dir != 1)
            continue; /* not a response (e.g. our own echo or line noise) */
        size_t sl = s->status_len ? s->status_len : (p.size >= 4 ? 4u : 2u);
        if (p.op != op) {
            /* The ROM answers an unsupported command with the previous op
             * and status 01 05. */
            if (p.size >= 2 && p.data[0] != 0 && p.data[1] == PF_ESP_ERR_INVALID_MSG) {
                s->status = p.data[0];
                s->err = p.data[1];
                pf_diag_set(diag(s), PF_ERR_UNSUPPORTED, "the ESP ROM does not support %s (status %02x %02x)",
                            pf_esp_op_name(op), p.data[0], p.data[1]);
                pf_diag_code(diag(s), op, (uint32_t)s->status << 8 | s->err);
                return PF_ERR_UNSUPPORTED;
            }
            continue;
        }
        if (p.size < sl)
            return pf_diag_set(diag(s), PF_ERR_PROTOCOL, "ESP answer to %s has %u data bytes, no status",
                               pf_esp_op_name(op), (unsigned)p.size);
        s->last_size = p.size;
        s->val = p.word;
        s->rdata = p.data;
        s->rlen = p.size - sl;
        s->status = p.data[s->rlen];
        s->err = p.data[s->rlen + 1];
        if (s->status == 0)
            return PF_OK;
        /* Status 1 is a refusal; any other value is no status the ROM sends:
         * the answer was damaged on the line. So is a request the ROM saw
         * with a bad checksum. */
        int code = s->status != 1                        ? PF_ERR_PROTOCOL
                   : s->err == PF_ESP_ERR_INVALID_CRC ? PF_ERR_CRC
                   : s->err == PF_ESP_ERR_INVALID_MSG ? PF_ERR_UNSUPPORTED
                                                      : PF_ERR_TARGET;
        if (s->status != 1)
            pf_diag_set(diag(s), PF_ERR_PROTOCOL, "garbled answer from the ESP ROM to %s: status %02x %02x (a line fault)",
                        pf_esp_op_name(op), s->status, s->err);
        else
            pf_diag_set(diag(s), code, "ESP ROM refused %s: status %02x %02x (%s)", pf_esp_op_name(op), s->status,
                        s->err, pf_esp_err_name(s->err));
        pf_diag_code(diag(s), op, (uint32_t)s->status << 8 | s->err);
        return code;
    }
}

static int command2(esp_state *s, uint8_t op, const uint8_t *a, size_t an, const uint8_t *b, size_t bn, uint32_t chk,
                    uint32_t timeout_ms)
{
    uint32_t deadline = pf_deadline(port(s), timeout_ms);
    int r = send_request(s, op, chk, a, an, b, bn);
    if (r < 0)
        return r;
    r = read_response(s, op, deadline, 0);
    if (s->cfg.verbose >= 3)
        pf_port_logf(port(s), 3, "esp: %s (%zu bytes) -> %s, val 0x%08lx", pf_esp_op_name(op), an + bn,
                     r == PF_OK ? "ok" : pf_strerror(r), (unsigned long)s->val);
    return r;
}

static int command(esp_state *s, uint8_t op, const uint8_t *a, size_t an, uint32_t timeout_ms)
{
    return command2(s, op, a, an, NULL, 0, 0, timeout_ms);
}

static int read_reg(esp_state *s, uint32_t addr, uint32_t *val)
{
    uint8_t p[4];
    pf_put_le32(p, addr);
    int r = command(s, PF_ESP_READ_REG, p, 4, DEFAULT_TIMEOUT_MS);
    if (r == PF_OK)
        *val = s->val;
    return r;
}

static int write_reg(esp_state *s, uint32_t addr, uint32_t value)
{
    uint8_t p[16];
    pf_put_le32(p, addr);
    pf_put_le32(p + 4, value);
    pf_put_le32(p + 8, 0xFFFFFFFFu);
    pf_put_le32(p + 12, 0);
    return command(s, PF_ESP_WRITE_REG, p, 16, DEFAULT_TIMEOUT_MS);
}

/* ---- connect ---------------------------------------------------------------- */

static void reset_into_download(esp_state *s, int tight)
{
    const pf_port *p = port(s);
    /* Asserted DTR pulls IO0 low, asserted RTS pulls EN low. */
    if (tight) {
        pf_port_set_lines(p, PF_LINE_RELEASE, PF_LINE_RELEASE);
        pf_port_set_lines(p, PF_LINE_ASSERT, PF_LINE_ASSERT);
        pf_port_set_lines(p, PF_LINE_RELEASE, PF_LINE_ASSERT); /* EN low, IO0 high */
        pf_port_delay(p, 100);
        pf_port_set_lines(p, PF_LINE_ASSERT, PF_LINE_RELEASE); /* EN high, IO0 low */
        pf_port_delay(p, 50);
        pf_port_set_lines(p, PF_LINE_RELEASE, PF_LINE_RELEASE);
    } else {
        pf_port_set_lines(p, PF_LINE_RELEASE, PF_LINE_KEEP);
        pf_port_set_lines(p, PF_LINE_KEEP, PF_LINE_ASSERT); /* chip in reset */
        pf_port_delay(p, 100);
        pf_port_set_lines(p, PF_LINE_ASSERT, PF_LINE_KEEP); /* IO0 low */
        pf_port_set_lines(p, PF_LINE_KEEP, PF_LINE_RELEASE); /* out of reset: samples IO0 */
        pf_port_delay(p, 50);
        pf_port_set_lines(p, PF_LINE_RELEASE, PF_LINE_KEEP);
    }
}

/* One SYNC: the ROM answers 8 times; read them all so none is left over to
 * be mistaken for the answer to the next command. */
static int sync_once(esp_state *s)
{
    uint8_t d[36] = {0x07, 0x07, 0x12, 0x20};
    memset(d + 4, 0x55, 32);
    uint32_t deadline = pf_deadline(port(s), SYNC_TIMEOUT_MS);
    int r = send_request(s, PF_ESP_SYNC, 0, d, sizeof d, NULL, 0);
    if (r < 0)
        return r;
    s->status_len = 0;
    r = read_response(s, PF_ESP_SYNC, deadline, 1);
    if (r < 0)
        return r;
    /* a SYNC answer carries only status bytes: their count tells 2 or 4 */
    s->status_len = (uint8_t)(s->last_size == 2 ? 2 : 4);
    s->sync_val = s->val;
    for (int i = 1; i < 8; i++) {
        deadline = pf_deadline(port(s), SYNC_TIMEOUT_MS);
        if (read_response(s, PF_ESP_SYNC, deadline, 1) < 0)
            break;
    }
    return PF_OK;
}

static int do_sync(esp_state *s)
{
    const char *mode = s->cfg.reset;
    int none = mode && !strcmp(mode, "none");
    unsigned attempts = s->opt.sync_attempts ? s->opt.sync_attempts : 4;
    for (unsigned a = 0; a < attempts; a++) {
        if (!none) {
            int tight = mode && !strcmp(mode, "tight") ? 1 : (mode && !strcmp(mode, "classic")) ? 0 : (int)(a & 1);
            reset_into_download(s, tight);
        }
        pf_port_drain_input(port(s), 20, pf_deadline(port(s), 200));
        if (port(s)->flush_input)
            port(s)->flush_input(port(s)->ctx);
        pf_slip_decoder_reset(&s->dec);
        for (int i = 0; i < 5; i++) {
            int r = sync_once(s);
            if (r == PF_OK) {
                pf_port_logf(port(s), 2, "esp: synced (attempt %u)", a + 1);
                return PF_OK;
            }
            /* a SYNC damaged on the line is answered 01 05 or garbled: try again */
            if (r == PF_ERR_CLOSED || r == PF_ERR_IO)
                return r;
        }
    }
    s->status_len = 0;
    pf_diag_set(diag(s), PF_ERR_NO_SYNC,
                "no answer from the ESP ROM loader at %lu baud: hold BOOT (GPIO0) low while resetting, "
                "check TX/RX wiring and the baud rate",
                (unsigned long)(s->baud));
    pf_diag_hint(diag(s), PF_HINT_BOOT_MODE | PF_HINT_RESET | PF_HINT_WIRING | PF_HINT_BAUD);
    return PF_ERR_NO_SYNC;
}

static int identify(esp_state *s)
{
    s->chip = NULL;
    int r = command(s, PF_ESP_GET_SECURITY_INFO, NULL, 0, DEFAULT_TIMEOUT_MS);
    if (r == PF_OK) {
        if (s->rlen >= 20) {
            uint32_t id = pf_get_le32(s->rdata + 12);
            s->chip = pf_esp_chip_by_security_id(id);
            if (!s->chip)
                return pf_diag_set(diag(s), PF_ERR_CHIP, "unknown ESP chip id %lu in GET_SECURITY_INFO",
                                   (unsigned long)id);
            return PF_OK;
        }
        /* 12 bytes: ESP32-S2; confirm by its magic word below */
    } else if (r != PF_ERR_UNSUPPORTED) {
        return r;
    }
    /* the unsupported-command answer may be repeated: let it settle */
    pf_port_drain_input(port(s), 10, pf_deadline(port(s), 100));
    pf_slip_decoder_reset(&s->dec);
    uint32_t magic = 0;
    r = read_reg(s, PF_ESP_MAGIC_REG, &magic);
    if (r < 0)
        return r;
    s->chip = pf_esp_chip_by_magic(magic);
    if (!s->chip)
        return pf_diag_set(diag(s), PF_ERR_CHIP, "unknown ESP chip: magic word 0x%08lx at 0x%08lx",
                           (unsigned long)magic, (unsigned long)PF_ESP_MAGIC_REG);
    return PF_OK;
}

/* RDID (0x9F) through the SPI0 user-command registers, as esptool does. */
static int flash_id(esp_state *s, uint32_t *id)
{
    const pf_esp_chip *c = s->chip;
    if (!c->spi_mosi_dlen)
        return PF_ERR_UNSUPPORTED;
    uint32_t base = c->spi_base, old_usr = 0, old_usr2 = 0, v = 0;
    int r;
    if ((r = read_reg(s, base + c->spi_usr, &old_usr)) < 0 || (r = read_reg(s, base + c->spi_usr2, &old_usr2)) < 0)
        return r;
    if ((r = write_reg(s, base + c->spi_miso_dlen, 24 - 1)) < 0 ||
        (r = write_reg(s, base + c->spi_usr, (1u << 31) | (1u << 28))) < 0 ||
        (r = write_reg(s, base + c->spi_usr2, (7u << 28) | 0x9Fu)) < 0 || (r = write_reg(s, base + c->spi_w0, 0)) < 0 ||
        (r = write_reg(s, base, 1u << 18)) < 0)
        return r;
    int i;
    for (i = 0; i < 10; i++) {
        if ((r = read_reg(s, base, &v)) < 0)
            return r;
        if (!(v & (1u << 18)))
            break;
    }
    if (i == 10)
        return pf_diag_set(diag(s), PF_ERR_TARGET, "the ESP's SPI flash did not finish the RDID command");
    if ((r = read_reg(s, base + c->spi_w0, id)) < 0)
        return r;
    *id &= 0xFFFFFFu;
    if ((r = write_reg(s, base + c->spi_usr, old_usr)) < 0 || (r = write_reg(s, base + c->spi_usr2, old_usr2)) < 0)
        return r;
    return PF_OK;
}

/* The factory MAC from eFuse BLOCK0 words 1 and 2 (ESP32: EFUSE_RD_REG_BASE
 * 0x3FF5A000; esptool's read_mac packs word 2 then word 1 big-endian and takes
 * bytes 2..7). Other chips keep it elsewhere: not read here. */
static int read_mac(esp_state *s, uint8_t mac[6])
{
    if (strcmp(s->chip->key, "esp32") != 0)
        return PF_ERR_UNSUPPORTED;
    uint32_t w1 = 0, w2 = 0;
    int r;
    if ((r = read_reg(s, 0x3FF5A004u, &w1)) < 0 || (r = read_reg(s, 0x3FF5A008u, &w2)) < 0)
        return r;
    mac[0] = (uint8_t)(w2 >> 8);
    mac[1] = (uint8_t)w2;
    mac[2] = (uint8_t)(w1 >> 24);
    mac[3] = (uint8_t)(w1 >> 16);
    mac[4] = (uint8_t)(w1 >> 8);
    mac[5] = (uint8_t)w1;
    return PF_OK;
}

/* CHANGE_BAUDRATE as the ROM takes it: the new rate, then 0 (the old rate is
 * only for the flasher stub). The ROM answers at the old rate, then switches;
 * the host follows, waits 50 ms and drops what the switch garbled (esptool's
 * change_baud). quiet: a lost answer is PF_ERR_TIMEOUT without a message. */
static int change_baud(esp_state *s, uint32_t baud, uint32_t timeout_ms, int quiet)
{
    uint8_t p[8];
    pf_put_le32(p, baud);
    pf_put_le32(p + 4, 0); /* 0: we talk to the ROM, not a stub */
    uint32_t deadline = pf_deadline(port(s), timeout_ms);
    int r = send_request(s, PF_ESP_CHANGE_BAUDRATE, 0, p, 8, NULL, 0);
    if (r == PF_OK)
        r = read_response(s, PF_ESP_CHANGE_BAUDRATE, deadline, quiet);
    if (r < 0 && !(quiet && r == PF_ERR_TIMEOUT))
        return r;
    if (port(s)->drain)
        port(s)->drain(port(s)->ctx);
    int lr = pf_port_set_line(port(s), baud, PF_FRAME_8N1);
    if (lr < 0)
        return pf_diag_set(diag(s), lr, "the port cannot run at %lu baud", (unsigned long)baud);
    pf_port_delay(port(s), 50);
    if (port(s)->flush_input)
        port(s)->flush_input(port(s)->ctx);
    pf_slip_decoder_reset(&s->dec);
    s->baud = baud;
    s->stats.baud = baud;
    return r;
}

/* ---- fast by default ---------------------------------------------------------
 * Without --baud the driver climbs down a ladder of rates after sync: it asks
 * the ROM for each rung and keeps the first one at which a READ_REG comes
 * back. The ROM cannot be asked before it switches, so a rung the link does
 * not carry is left the way it was entered: CHANGE_BAUDRATE back to the
 * connect rate, sent at the failed rate (a link that loses only the chip's
 * answers still carries it), then, if the chip is still deaf, a reset into
 * the loader through DTR/RTS and a new sync. A link without a rate of its own
 * (a TCP bridge: set_line says PF_ERR_UNSUPPORTED) keeps the connect rate:
 * the chip would switch and the bridge's far UART would not. */
static const uint32_t rate_ladder[] = {921600u, 460800u, 230400u};
#define FIRST_EXCHANGE_MS 300u /* per try, two tries: a READ_REG takes < 1 ms at these rates */

/* 1 when the host side can run at baud (and is back at the connect rate). */
static int port_takes_rate(esp_state *s, uint32_t baud, uint32_t connect)
{
    if (!port(s)->set_line)
        return 0;
    int r = port(s)->set_line(port(s)->ctx, baud, PF_FRAME_8N1);
    port(s)->set_line(port(s)->ctx, connect, PF_FRAME_8N1);
    return r == PF_OK;
}

/* The first exchange at a new rate: a READ_REG answered (two tries). */
static int rate_works(esp_state *s)
{
    for (int i = 0; i < 2; i++) {
        uint8_t p[4];
        pf_put_le32(p, PF_ESP_MAGIC_REG);
        uint32_t deadline = pf_deadline(port(s), FIRST_EXCHANGE_MS);
        if (send_request(s, PF_ESP_READ_REG, 0, p, 4, NULL, 0) < 0)
            return 0;
        if (read_response(s, PF_ESP_READ_REG, deadline, 1) == PF_OK)
            return 1;
        pf_slip_decoder_reset(&s->dec);
    }
    return 0;
}

/* Back to the connect rate after a rung failed; PF_OK when the ROM answers
 * SYNC there again. */
static int back_to_connect_rate(esp_state *s, uint32_t failed, uint32_t connect)
{
    uint8_t status_len = s->status_len;
    change_baud(s, connect, FIRST_EXCHANGE_MS, 1); /* sent at the failed rate; its answer may be lost */
    for (int i = 0; i < 3; i++) {
        if (sync_once(s) == PF_OK) {
            s->status_len = status_len;
            return PF_OK;
        }
    }
    /* still deaf: a reset brings the ROM back to its default rate */
    pf_port_logf(port(s), 1, "esp: no answer at %lu baud after leaving %lu: resetting into the loader",
                 (unsigned long)connect, (unsigned long)failed);
    int r = do_sync(s);
    s->status_len = status_len;
    if (r < 0)
        return pf_diag_set(diag(s), PF_ERR_NO_SYNC,
                           "the ESP ROM switched to %lu baud, the link did not carry it, and it answered neither "
                           "at %lu baud nor after a reset (no DTR/RTS reset circuit?): reset the board into its "
                           "loader and pin the rate with --baud %lu",
                           (unsigned long)failed, (unsigned long)connect, (unsigned long)connect);
    return PF_OK;
}

/* The fastest rung of the ladder the link and the ROM sustain, or the
 * connect rate. */
static int climb_rate_ladder(esp_state *s)
{
    uint32_t connect = s->baud;
    if (!port(s)->set_line || port(s)->set_line(port(s)->ctx, connect, PF_FRAME_8N1) == PF_ERR_UNSUPPORTED) {
        pf_port_logf(port(s), 2, "esp: the link has no line rate of its own (TCP bridge): staying at %lu baud",
                     (unsigned long)connect);
        return PF_OK;
    }
    for (size_t i = 0; i < sizeof rate_ladder / sizeof rate_ladder[0]; i++) {
        uint32_t rung = rate_ladder[i];
        if (rung <= connect)
            break;
        if (!port_takes_rate(s, rung, connect)) {
            pf_port_logf(port(s), 2, "esp: the port cannot run at %lu baud", (unsigned long)rung);
            continue;
        }
        int r = change_baud(s, rung, DEFAULT_TIMEOUT_MS, 1);
        if (r == PF_ERR_TARGET || r == PF_ERR_UNSUPPORTED) { /* refused at the connect rate: nothing changed */
            pf_port_logf(port(s), 1, "esp: the ROM refused %lu baud (%s)", (unsigned long)rung, pf_strerror(r));
            pf_diag_clear(diag(s));
            if (r == PF_ERR_UNSUPPORTED) { /* no CHANGE_BAUDRATE in this ROM: no rung will do */
                pf_port_drain_input(port(s), 10, pf_deadline(port(s), 100));
                pf_slip_decoder_reset(&s->dec);
                return PF_OK;
            }
            continue;
        }
        if (r == PF_OK && rate_works(s))
            return PF_OK;
        pf_port_logf(port(s), 1, "esp: no answer at %lu baud: back to %lu", (unsigned long)rung,
                     (unsigned long)connect);
        s->stats.rate_fallbacks++;
        if ((r = back_to_connect_rate(s, rung, connect)) < 0)
            return r;
    }
    return PF_OK;
}

static int esp_open(void *self, const pf_target_config *cfg)
{
    esp_state *s = self;
    if (!s || !cfg || !cfg->port || !cfg->port->read || !cfg->port->write || !cfg->port->now_ms)
        return PF_ERR_ARG;
    memset(s, 0, offsetof(esp_state, zarena));
    s->cfg = *cfg;
    pf_esp_options d = PF_ESP_OPTIONS_DEFAULT();
    s->opt = d;
    s->baud = cfg->baud ? cfg->baud : 115200u;
    s->stats.baud = s->baud;
    pf_slip_decoder_init(&s->dec, s->rx, sizeof s->rx);
    return PF_OK;
}

int pf_esp_set_options(void *self, const pf_esp_options *opt)
{
    esp_state *s = self;
    if (!s || !opt || (opt->level && (opt->level < 1 || opt->level > 9)) || opt->method < PF_ESP_Z_FAST ||
        opt->method > PF_ESP_Z_AUTO)
        return PF_ERR_ARG;
    s->opt = *opt;
    if (!s->opt.level)
        s->opt.level = 9;
    return PF_OK;
}

void pf_esp_get_stats(const void *self, pf_esp_stats *st)
{
    const esp_state *s = self;
    *st = s->stats;
}

const pf_esp_chip *pf_esp_connected_chip(const void *self)
{
    const esp_state *s = self;
    return s->connected ? s->chip : NULL;
}

static int esp_connect(void *self, pf_target_info *info)
{
    esp_state *s = self;
    if (!s || !info)
        return PF_ERR_ARG;
    s->connected = 0;
    int r = pf_port_set_line(port(s), s->baud, PF_FRAME_8N1);
    if (r < 0)
        return pf_diag_set(diag(s), r, "the port cannot run at %lu baud", (unsigned long)s->baud);
    if ((r = do_sync(s)) < 0)
        return r;
    if (s->sync_val == 0 && s->status_len == 2)
        return pf_diag_set(diag(s), PF_ERR_STATE,
                           "a flasher stub (not the ROM) answered: reset the chip into its ROM loader and try again");
    if ((r = identify(s)) < 0)
        return r;
    const pf_esp_chip *c = s->chip;
    s->status_len = c->status_len;
    if (s->cfg.chip && s->cfg.chip[0] && strcmp(s->cfg.chip, "auto") != 0) {
        const pf_esp_chip *want = pf_esp_chip_by_name(s->cfg.chip);
        if (!want)
            return pf_diag_set(diag(s), PF_ERR_ARG, "unknown ESP chip name '%s'", s->cfg.chip);
        if (want != c)
            return pf_diag_set(diag(s), PF_ERR_CHIP, "expected %s (--chip) but the ROM identifies an %s", want->name,
                               c->name);
    }
    if (s->cfg.fast_baud) { /* --baud pins the rate */
        if (s->cfg.fast_baud != s->baud && (r = change_baud(s, s->cfg.fast_baud, DEFAULT_TIMEOUT_MS, 0)) < 0)
            return r;
    } else if ((r = climb_rate_ladder(s)) < 0) {
        return r;
    }
    if (s->cfg.notice) {
        char line[96];
        pf_format(line, sizeof line, "line rate: %lu baud%s", (unsigned long)s->baud,
                  s->cfg.fast_baud ? " (--baud)" : s->stats.rate_fallbacks ? " (fell back: faster rates failed)" : "");
        s->cfg.notice(s->cfg.progress_user, line);
    }
    if (c->needs_spi_attach) {
        uint8_t p[8] = {0};
        if ((r = command(s, PF_ESP_SPI_ATTACH, p, 8, DEFAULT_TIMEOUT_MS)) < 0)
            return r;
    }
    uint32_t size = s->opt.flash_size, id = 0;
    if (!size) {
        r = flash_id(s, &id);
        if (r == PF_OK) {
            unsigned cap = (id >> 16) & 0xFF;
            if (cap >= 0x12 && cap <= 0x1A) /* 256 KiB .. 64 MiB */
                size = 1u << cap;
            else if (cap >= 0x32 && cap <= 0x34) /* some vendors code 1..4 MiB so */
                size = 1u << (cap - 0x20);
            else
                return pf_diag_set(diag(s), PF_ERR_TARGET,
                                   "the ESP's flash answered RDID with 0x%06lx: no flash size (is the flash wired?)",
                                   (unsigned long)id);
        } else if (r == PF_ERR_UNSUPPORTED) {
            size = 4u << 20;
        } else {
            return r;
        }
    }
    s->flash_size = size;
    /* data blocks and how far ahead of an answer the next may start (see
     * esp_chips.c for the sources) */
    s->bs = c->rom_block && c->rom_block <= PF_ESP_ROM_BLOCK ? c->rom_block : PF_ESP_ROM_BLOCK;
    s->zbs = s->bs < sizeof s->block ? s->bs : (uint32_t)sizeof s->block; /* compressed blocks: any length */
    if (s->opt.ahead >= 0)
        s->ahead = (size_t)s->opt.ahead;
    else
        s->ahead = c->rx_fifo / 2u; /* half: see docs/ESP.md "Less waiting" */
    s->pending = 0;
    uint8_t mac[6];
    int have_mac = read_mac(s, mac);
    if (have_mac < 0 && have_mac != PF_ERR_UNSUPPORTED)
        return have_mac;
    {
        uint8_t p[24];
        pf_put_le32(p, 0);
        pf_put_le32(p + 4, size);
        pf_put_le32(p + 8, 64u * 1024u);
        pf_put_le32(p + 12, 4096u);
        pf_put_le32(p + 16, 256u);
        pf_put_le32(p + 20, 0xFFFFu);
        if ((r = command(s, PF_ESP_SPI_SET_PARAMS, p, 24, DEFAULT_TIMEOUT_MS)) < 0)
            return r;
    }
    memset(info, 0, sizeof *info);
    pf_format(info->chip, sizeof info->chip, "%s", c->name);
    pf_format(info->bootloader, sizeof info->bootloader, "%s ROM loader", c->name);
    info->chip_id = c->security_chip_id ? c->security_chip_id : c->magic[0];
    info->caps = PF_CAP_READ | PF_CAP_RUN | PF_CAP_ERASE_ALL | (c->rom_deflate ? PF_CAP_DIGEST : 0);
    size_t dn = 0;
    if (have_mac == PF_OK)
        dn += pf_format(info->details + dn, sizeof info->details - dn, "MAC:         %02x:%02x:%02x:%02x:%02x:%02x\n",
                        mac[0], mac[1], mac[2], mac[3], mac[4], mac[5]);
    dn += pf_format(info->details + dn, sizeof info->details - dn, "line rate:   %lu baud\n", (unsigned long)s->baud);
    if (id)
        pf_format(info->details + dn, sizeof info->details - dn,
                  "flash id:    0x%06lx (manufacturer 0x%02lx, device 0x%04lx, %lu KiB)\n", (unsigned long)id,
                  (unsigned long)(id & 0xFF), (unsigned long)((id >> 8 & 0xFF) << 8 | (id >> 16 & 0xFF)),
                  (unsigned long)(size / 1024)); /* the device word as esptool prints it: memory type, capacity */
    info->digest = c->rom_deflate ? PF_DIGEST_MD5 : PF_DIGEST_NONE;
    pf_flash_geometry *g = &info->geom;
    g->flash_start = 0;
    g->flash_size = size;
    g->write_align = SECTOR; /* BEGIN erases whole sectors and needs an aligned offset */
    g->write_max = WRITE_MAX;
    g->erased_value = 0xFF;
    g->erase_style = PF_ERASE_BY_WRITE;
    g->n_regions = 1;
    g->regions[0].start = 0;
    g->regions[0].size = size;
    g->regions[0].unit = 4096u;
    s->connected = 1;
    return PF_OK;
}

/* ---- writing ------------------------------------------------------------------
 *
 * What the ESP32 ROM does (checked on the real mask ROM, see
 * docs/ESP.md "The ROM's write rules"):
 *  - FLASH_DEFL_DATA inflates into a 32 KiB buffer that is written to flash
 *    only when it is full or when the LAST ANNOUNCED block arrives (then the
 *    whole buffer, stale bytes included); FLASH_DEFL_END writes nothing.
 *  - After a block answered 01 07 (bad checksum) the ROM expects the NEXT
 *    sequence number; the same one again is refused 01 05.
 *  - FLASH_BEGIN / FLASH_DEFL_BEGIN erase up front and need a 4 KiB-aligned
 *    offset.
 * So a run is cut into 32 KiB segments. The compressed stream is
 * sync-flushed at each segment's end and the partial block sent: once that
 * block is answered, the ROM's buffer was exactly full and is in flash. The
 * last segment is padded with 0xFF to 32 KiB (programming 0xFF leaves NOR
 * flash as it is, also past the erased sectors), and the announced block
 * count is an upper bound that is never reached, so no stale buffer is ever
 * written. A block the ROM did not take cleanly (checksum, invalid message,
 * garbled or no answer) is not resent: the write starts again with a new
 * BEGIN at its segment (compressed) or its sector (plain), from the raw
 * bytes of the segment the driver keeps. */

/* Plain blocks are the chip's ROM block (the ROM takes no other length):
 * whether the block buffer holds one, and the error when it does not. */
static int plain_fits(const esp_state *s)
{
    return s->bs <= sizeof s->block;
}

static int plain_too_small(esp_state *s, const char *why)
{
    return pf_diag_set(diag(s), PF_ERR_UNSUPPORTED,
                       "%s uncompressed, in the %s ROM's %lu-byte blocks, but this build's block buffer "
                       "(PF_ESP_BLOCK) has %lu bytes: it must be %lu",
                       why, s->chip->name, (unsigned long)s->bs, (unsigned long)sizeof s->block, (unsigned long)s->bs);
}

/* Where the damaged block's data belongs, and the run offset to start again
 * from: a compressed block's data is somewhere in its segment, which starts
 * again (the ROM's buffer fills from the BEGIN offset); a plain block is one
 * KiB at a known place and only its sector starts again. */
static uint32_t damaged_range(const esp_state *s, uint32_t *first, uint32_t *last)
{
    if (s->deflating) {
        *first = s->run_addr + s->seg_off;
        *last = *first + SEGMENT - 1;
        return s->seg_off;
    }
    uint32_t off = s->stream_off + s->failed_seq * s->bs;
    *first = s->run_addr + off;
    *last = *first + s->bs - 1;
    uint32_t from = off / SECTOR * SECTOR;
    return from < s->seg_off ? s->seg_off : from;
}

/* Whether a failed data command leaves the ROM in a state a new BEGIN
 * recovers from: the block (or its answer) was damaged on the line. */
static int line_damage(const esp_state *s, int r)
{
    if (r == PF_ERR_TIMEOUT || r == PF_ERR_PROTOCOL || r == PF_ERR_CRC)
        return 1;
    return r == PF_ERR_UNSUPPORTED && s->err == PF_ESP_ERR_INVALID_MSG;
}

/* Reads the answer to the data block still unanswered, if any. */
static int finish_pending(esp_state *s)
{
    if (!s->pending)
        return PF_OK;
    s->pending = 0;
    s->status = s->err = 0;
    int r = read_response(s, s->pending_op, s->pending_deadline, 0);
    if (s->cfg.verbose >= 3)
        pf_port_logf(port(s), 3, "esp: %s %lu (%lu bytes) -> %s", pf_esp_op_name(s->pending_op),
                     (unsigned long)s->pending_seq, (unsigned long)s->pending_len, r == PF_OK ? "ok" : pf_strerror(r));
    if (r < 0) {
        s->failed_seq = s->pending_seq;
        s->failed_status = s->status;
        s->failed_err = s->err;
        s->failed_code = r;
        return line_damage(s, r) ? ESP_RESTART : r;
    }
    s->stats.blocks++;
    s->stats.sent_bytes += s->pending_len;
    return PF_OK;
}

/* The previous block failed while k bytes of this one were already out: the
 * rest goes with its last data byte changed, so the ROM (whose UART FIFO
 * holds the start) refuses the block for its checksum instead of taking it
 * after the failed one; its answer is read and dropped. The bytes before k
 * do not change: k stops short of the last data byte's encoding. */
static void spoil_rest(esp_state *s, uint8_t op, const uint8_t *h, uint8_t *data, size_t n, uint32_t chk, size_t k)
{
    data[n - 1] ^= 0xFF; /* all 8 checksum bits change: one flip on the line cannot undo it */
    size_t fl = frame_build(s, op, chk, h, PF_ESP_DATA_HDR, data, n);
    int wr = fl > k ? frame_write(s, k, fl) : PF_ERR_ARG;
    data[n - 1] ^= 0xFF;
    s->stats.spoiled++;
    if (wr >= 0) {
        uint8_t status = s->status, err = s->err;
        /* its answer must not be left for the next block to read */
        read_response(s, op, pf_deadline(port(s), DEFAULT_TIMEOUT_MS), 1);
        s->status = status;
        s->err = err;
    }
    pf_port_drain_input(port(s), 10, pf_deadline(port(s), 100));
    pf_slip_decoder_reset(&s->dec);
}

/* Sends one data block. Its answer is read later (finish_pending): when
 * the next block's first `ahead` frame bytes are out, so they wait in the
 * chip's UART FIFO while the ROM inflates and writes this one, or at the
 * segment's end. */
static int send_block(esp_state *s, uint8_t *data, size_t n, uint32_t raw_bytes)
{
    uint8_t h[PF_ESP_DATA_HDR];
    pf_put_le32(h, (uint32_t)n);
    pf_put_le32(h + 4, s->seq);
    pf_put_le32(h + 8, 0);
    pf_put_le32(h + 12, 0);
    uint8_t op = s->deflating ? PF_ESP_FLASH_DEFL_DATA : PF_ESP_FLASH_DATA;
    uint32_t chk = pf_esp_checksum(data, n, PF_ESP_CHECKSUM_SEED);
    size_t fl = frame_build(s, op, chk, h, sizeof h, data, n);
    if (!fl || !n)
        return pf_diag_set(diag(s), PF_ERR_ARG, "ESP data block of %zu bytes does not fit", n);
    size_t k = 0;
    if (s->pending && s->ahead_now) {
        /* never up to the last data byte's encoding (at most 2 bytes before
         * the end mark): see spoil_rest */
        k = fl > 4 ? (s->ahead_now < fl - 4 ? s->ahead_now : fl - 4) : 0;
        int wr = frame_write(s, 0, k);
        if (wr < 0)
            return pf_diag_set(diag(s), wr, "sending %s to the ESP failed: %s", pf_esp_op_name(op), pf_strerror(wr));
    }
    int r = finish_pending(s);
    if (r < 0) {
        if (k)
            spoil_rest(s, op, h, data, n, chk, k);
        return r;
    }
    /* finish_pending sent nothing: the frame is still the one built above */
    int wr = frame_write(s, k, fl);
    if (wr < 0)
        return pf_diag_set(diag(s), wr, "sending %s to the ESP failed: %s", pf_esp_op_name(op), pf_strerror(wr));
    s->pending = 1;
    s->pending_op = op;
    s->pending_seq = s->seq;
    s->pending_len = (uint32_t)n;
    s->pending_deadline = pf_deadline(port(s), per_mb(WRITE_MS_PER_MB, raw_bytes));
    s->seq++;
    return PF_OK;
}

/* Opens a write stream at run offset off for the rest of the run; its BEGIN
 * erases [off, erase_end). The ROM writes data past a BEGIN's erase size (seen
 * on the real ROM), so a fresh start erases only what the failed attempt may
 * have written: the rest of the run was erased by the run's first BEGIN. */
static int begin_stream(esp_state *s, uint32_t off, uint32_t erase_end)
{
    uint32_t bs = s->bs;
    uint32_t left = s->run_len - off;
    s->pending = 0; /* the caller read every answer before a new BEGIN */
    uint32_t erase = (erase_end - off + bs - 1) / bs * bs; /* the ROM wants whole blocks */
    uint8_t p[20];
    uint8_t op;
    s->seq = 0;
    s->fill = 0;
    s->stream_off = off;
#if PF_ESP_ZPIPE
    if (s->deflating && s->zrun) {
        /* the compressor thread's segments: an upper bound as below */
        uint32_t padded = (left + SEGMENT - 1) / SEGMENT * SEGMENT;
        uint32_t segs = padded / SEGMENT;
        uLong bound = compressBound(padded) + 16u * segs + 64u;
        s->num_blocks = (uint32_t)((bound + bs - 1) / bs) + segs + 2u;
        op = PF_ESP_FLASH_DEFL_BEGIN;
    } else
#endif
    if (s->deflating) {
        if (s->z_ready) {
            deflateEnd(&s->z);
            s->z_ready = 0;
        }
        pf_zarena_init(&s->za, s->zarena, sizeof s->zarena);
        memset(&s->z, 0, sizeof s->z);
        PF_ZARENA_ATTACH(&s->z, &s->za);
        if (deflateInit2(&s->z, s->opt.level, Z_DEFLATED, ZWINDOW_BITS, ZMEM_LEVEL, Z_DEFAULT_STRATEGY) != Z_OK)
            return pf_diag_set(diag(s), PF_ERR_NOMEM, "zlib deflateInit2 failed in its %u-byte arena",
                               (unsigned)ZARENA_SIZE);
        s->z_ready = 1;
        s->z_in_sent = 0;
        /* An upper bound of the blocks that will be sent (the padded data,
         * a sync flush and one short block per segment): the ROM never sees
         * its last announced block, so it never writes a partial buffer. */
        uint32_t padded = (left + SEGMENT - 1) / SEGMENT * SEGMENT;
        uint32_t segs = padded / SEGMENT;
        uLong bound = deflateBound(&s->z, padded) + 16u * segs + 64u;
        s->num_blocks = (uint32_t)((bound + s->zbs - 1) / s->zbs) + segs + 2u;
        op = PF_ESP_FLASH_DEFL_BEGIN;
    } else {
        s->num_blocks = (left + bs - 1) / bs;
        op = PF_ESP_FLASH_BEGIN;
    }
    pf_put_le32(p, erase);
    pf_put_le32(p + 4, s->num_blocks);
    pf_put_le32(p + 8, bs);
    pf_put_le32(p + 12, s->run_addr + off);
    pf_put_le32(p + 16, 0); /* not encrypted */
    size_t pn = s->chip->begin_encrypt_word ? 20 : 16;
    int r = command(s, op, p, pn, per_mb(ERASE_MS_PER_MB, erase));
    if (r < 0) {
        char where[48];
        pf_format(where, sizeof where, "starting the write at 0x%08lx", (unsigned long)(s->run_addr + off));
        pf_diag_prefix(diag(s), where);
    }
    return r;
}

/* Runs deflate over input (flush = Z_NO_FLUSH, Z_SYNC_FLUSH or Z_FINISH),
 * sending every full 1 KiB block of output; with a flush, also the short
 * block that holds the rest. */
static int pump(esp_state *s, const uint8_t *data, uint32_t len, int flush)
{
    s->z.next_in = (Bytef *)(uintptr_t)data;
    s->z.avail_in = len;
    for (;;) {
        s->z.next_out = s->block + s->fill;
        s->z.avail_out = (uInt)(s->zbs - s->fill);
        int zr = deflate(&s->z, flush);
        if (zr == Z_STREAM_ERROR)
            return pf_diag_set(diag(s), PF_ERR_ARG, "zlib deflate failed");
        s->fill = s->zbs - s->z.avail_out;
        int done = flush == Z_FINISH ? zr == Z_STREAM_END : s->z.avail_in == 0 && s->z.avail_out != 0;
        if (s->fill == s->zbs || (done && flush != Z_NO_FLUSH && s->fill)) {
            int r = send_block(s, s->block, s->fill, (uint32_t)(s->z.total_in - s->z_in_sent));
            s->z_in_sent = s->z.total_in;
            if (r < 0)
                return r;
            s->fill = 0;
            if (!done)
                continue;
        }
        if (done)
            return PF_OK;
    }
}

/* Plain FLASH_DATA: whole 1 KiB blocks; a short last one is padded with 0xFF. */
static int plain_feed(esp_state *s, const uint8_t *data, uint32_t len, int last)
{
    while (len || (last && s->fill)) {
        size_t n = s->bs - s->fill;
        if (n > len)
            n = len;
        memcpy(s->block + s->fill, data, n);
        s->fill += n;
        data += n;
        len -= (uint32_t)n;
        if (s->fill == s->bs || (last && !len)) {
            memset(s->block + s->fill, 0xFF, s->bs - s->fill);
            int r = send_block(s, s->block, s->bs, s->bs);
            if (r < 0)
                return r;
            s->fill = 0;
        }
    }
    return PF_OK;
}


#if PF_ESP_ZPIPE
/* The segment being sent, compressed on the thread, as FLASH_DEFL_DATA
 * blocks: the zlib header first when the stream starts here, the Adler-32
 * after the final segment. The thread compressed it with the previous
 * segment as its window, the run's first without one: when the stream
 * starts at another segment (a fresh start) it is compressed again here,
 * without a window. The short last block closes the segment (see pump). */
static int zfeed(esp_state *s, int close)
{
    const pf_zp_seg *g = &s->zseg;
    int fresh = s->stream_off == s->seg_off, final = close == 2;
    const uint8_t *out = g->out;
    size_t out_len = g->out_len;
    uint8_t *own = NULL;
    if (g->dict == fresh || g->final != final || !out) {
        if (pf_zp_compress(0, NULL, 0, s->cur, s->seg_fill, final, &own, &out_len) < 0)
            return pf_diag_set(diag(s), PF_ERR_NOMEM, "no memory to compress the segment at 0x%08lx",
                               (unsigned long)(s->run_addr + s->seg_off));
        out = own;
    }
    s->adler = adler32(fresh ? adler32(0L, Z_NULL, 0) : s->adler, s->cur, s->seg_fill);
    uint8_t head[2] = {0x78, 0xDA}, tail[4]; /* CMF: deflate, 2^15 window; FLG: level 9, check bits */
    pf_put_be32(tail, (uint32_t)s->adler);
    const uint8_t *part[3] = {head, out, tail};
    size_t plen[3] = {fresh ? 2u : 0u, out_len, final ? 4u : 0u};
    size_t total = plen[0] + plen[1] + plen[2], pos = 0;
    int r = PF_OK;
    while (pos < total && r >= 0) {
        size_t n = total - pos < s->bs ? total - pos : s->bs, k = 0, at = pos;
        for (int i = 0; i < 3 && k < n; i++) {
            if (at >= plen[i]) {
                at -= plen[i];
                continue;
            }
            size_t c = plen[i] - at < n - k ? plen[i] - at : n - k;
            memcpy(s->block + k, part[i] + at, c);
            k += c;
            at = 0;
        }
        r = send_block(s, s->block, n, s->seg_fill);
        pos += n;
        pf_zpipe_progress(s->zp, pos);
    }
    free(own);
    return r;
}
#endif

static int feed(esp_state *s, const uint8_t *data, uint32_t len, int close)
{
    if (!s->deflating)
        return plain_feed(s, data, len, close == 2);
#if PF_ESP_ZPIPE
    if (s->zrun)
        return zfeed(s, close);
#endif
    return pump(s, data, len, close == 2 ? Z_FINISH : close ? Z_SYNC_FLUSH : Z_NO_FLUSH);
}

/* After line damage: a new BEGIN where the damaged data starts again (see
 * damaged_range) and the bytes from there. Bounded: MAX_RESTARTS without
 * progress past the last restart point ends the run, naming what the ROM
 * said. Returns the segment offset to feed from, or an error. */
static int restart_segment(esp_state *s)
{
    uint32_t first, last;
    uint32_t from = damaged_range(s, &first, &last);
    if (from > s->restart_off)
        s->restarts = 0; /* progress since the last fresh start */
    s->restart_off = from;
    /* a damaged block costs the one sent ahead of its answer too: on a line
     * that damages data, one block at a time for the rest of the run */
    s->ahead_now = 0;
    const char *what = s->deflating ? "compressed block" : "block";
    unsigned long seq = s->failed_seq;
    for (;;) {
        char said[48];
        if (s->failed_status)
            pf_format(said, sizeof said, "answered %02x %02x (%s)", s->failed_status, s->failed_err,
                      s->failed_err == PF_ESP_ERR_INVALID_CRC ? "bad checksum" : "invalid message");
        else if (s->failed_code == PF_ERR_TIMEOUT)
            pf_format(said, sizeof said, "gave no answer to");
        else
            pf_format(said, sizeof said, "answered garbled");
        if (s->restarts >= MAX_RESTARTS && s->failed_code == PF_ERR_TIMEOUT) {
            pf_diag_set(diag(s), PF_ERR_TIMEOUT,
                        "%s %lu for flash 0x%08lx-0x%08lx: no answer from the ESP ROM, also after %u fresh "
                        "starts (link lost? check the cable and power)",
                        what, seq, (unsigned long)first, (unsigned long)last, (unsigned)s->restarts);
            pf_diag_hint(diag(s), PF_HINT_WIRING);
            return PF_ERR_TIMEOUT;
        }
        if (s->restarts >= MAX_RESTARTS)
            return pf_diag_set(diag(s), PF_ERR_CRC,
                               "%s %lu for flash 0x%08lx-0x%08lx: the ESP ROM %s, also after %u fresh starts; "
                               "the line damages data (lower --baud?)",
                               what, seq, (unsigned long)first, (unsigned long)last, said, (unsigned)s->restarts);
        s->restarts++;
        s->stats.retries++;
        pf_port_logf(port(s), 1, "esp: the ROM %s %s %lu (flash 0x%08lx-0x%08lx): writing again from 0x%08lx", said,
                     what, seq, (unsigned long)first, (unsigned long)last, (unsigned long)(s->run_addr + from));
        pf_slip_decoder_reset(&s->dec);
        /* A compressed segment that failed twice at the same point goes
         * plain (a damaged plain block costs only its sector), back to
         * compressed at the next segment. */
        if (s->deflating && s->restarts > 2 && plain_fits(s)) {
            s->deflating = 0;
            s->seg_plain = 1;
            if (s->seg_off + s->seg_fill > s->run_len) /* the last segment's 0xFF pad is not sent plain */
                s->seg_fill = s->run_len - s->seg_off;
            pf_port_logf(port(s), 1, "esp: segment 0x%08lx goes uncompressed", (unsigned long)(s->run_addr + from));
        }
        uint32_t seg_end = s->seg_off + SEGMENT < s->run_len ? s->seg_off + SEGMENT : s->run_len;
        s->status = s->err = 0;
        int r = begin_stream(s, from, seg_end);
        if (r >= 0)
            return (int)(from - s->seg_off);
        if (!line_damage(s, r))
            return r;
        /* the BEGIN itself was damaged: it counts as one more fresh start */
        what = s->deflating ? "FLASH_DEFL_BEGIN" : "FLASH_BEGIN";
        seq = 0;
        s->failed_status = s->status;
        s->failed_err = s->err;
        s->failed_code = r;
    }
}

#if !PF_ESP_STREAM
/* The raw bytes of the segment being sent. */
static const uint8_t *seg_raw(const esp_state *s)
{
#if PF_ESP_ZPIPE
    if (s->zrun)
        return s->cur;
#endif
    return s->seg;
}

#endif

/* Feeds bytes [from, seg_fill) of the current segment: data when given
 * (the job's buffer, streamed builds), else from the segment's copy, or, on
 * a streamed build, read again from the job's image source (the 0xFF pad
 * past the run's end is made here). */
static int feed_segment(esp_state *s, const uint8_t *data, uint32_t from, int close)
{
#if PF_ESP_STREAM
    if (data)
        return feed(s, data, s->seg_fill - from, close);
    if (!s->map)
        return pf_diag_set(diag(s), PF_ERR_STATE, "ESP (streamed build): no image source to read the segment again "
                                                  "from (check_image was not called)");
    for (;;) {
        uint32_t n = s->seg_fill - from, off = s->seg_off + from;
        if (n > sizeof s->reread)
            n = sizeof s->reread;
        uint32_t m = off >= s->run_len ? 0 : s->run_len - off < n ? s->run_len - off : n;
        if (m) {
            pf_memmap_read(s->map, s->run_addr + off, s->reread, m, 0xFF);
            int r = pf_memmap_error(s->map);
            if (r < 0)
                return r; /* the image source failed: its diag says why */
        }
        memset(s->reread + m, 0xFF, n - m);
        from += n;
        int last = from == s->seg_fill;
        int r = feed(s, s->reread, n, last ? close : 0);
        if (r != PF_OK || last)
            return r;
    }
#else
    (void)data;
    return feed(s, seg_raw(s) + from, s->seg_fill - from, close);
#endif
}

/* Feeds segment bytes [from, seg_fill) (see feed_segment), closing the
 * segment when close is 1 (segment full) or 2 (end of the run), and
 * recovers from line damage. */
static int segment_step(esp_state *s, const uint8_t *data, uint32_t from, int close)
{
    for (;;) {
        int r = feed_segment(s, data, from, close);
        /* a closed segment's raw bytes are about to go: its last answer first */
        if (r == PF_OK && close)
            r = finish_pending(s);
        if (r != ESP_RESTART)
            return r;
        if ((r = restart_segment(s)) < 0)
            return r;
        from = (uint32_t)r;
        data = NULL;
    }
}

#if PF_ESP_ZPIPE
/* A compressed run on the host: the thread for the chosen method (made once,
 * kept for the session; none when it cannot be made: zlib in line then). */
static void zpipe_start(esp_state *s)
{
    if (s->zp && s->zp_method != s->opt.method) {
        pf_zpipe_free(s->zp);
        s->zp = NULL;
    }
    if (!s->zp) {
        s->zp = pf_zpipe_new(s->opt.method, ZPIPE_DEPTH);
        s->zp_method = s->opt.method;
        if (!s->zp)
            pf_port_logf(port(s), 1, "esp: no compressor thread (out of memory?): compressing in line");
    }
    if (s->zp) {
        pf_zpipe_clear(s->zp);
        /* compressed bytes per second the line takes: 10 bits a byte, ~3% SLIP and frame */
        pf_zpipe_set_rate(s->zp, s->baud / 10u * 97u / 100u);
    }
    s->fill_off = 0;
    s->fill_len = 0;
    s->zrun = s->zp != NULL;
}

/* Sends the oldest segment the thread holds. */
static int zpipe_send_oldest(esp_state *s)
{
    if (pf_zpipe_oldest(s->zp, &s->zseg) < 0)
        s->zseg.out = NULL; /* the thread ran out of memory: compressed in line (zfeed), if memory allows */
    s->cur = s->zseg.raw;
    s->seg_off = s->zseg.tag;
    s->seg_fill = (uint32_t)s->zseg.raw_len;
    int final = s->zseg.final;
    int r = segment_step(s, NULL, 0, final ? 2 : 1);
    if (r >= 0 && !final && s->seg_plain) { /* back to compressed after a plain segment (its sector is erased) */
        s->seg_plain = 0;
        s->deflating = 1;
        r = begin_stream(s, s->seg_off + SEGMENT, s->seg_off + SEGMENT + SECTOR);
    }
    pf_zpipe_release(s->zp);
    return r;
}

/* Hands the segment being filled to the thread, sending the oldest first
 * when the thread holds as many as it may. */
static int zpipe_put(esp_state *s, int final)
{
    while (pf_zpipe_held(s->zp) >= pf_zpipe_depth(s->zp)) {
        int r = zpipe_send_oldest(s);
        if (r < 0)
            return r;
    }
    if (pf_zpipe_put(s->zp, s->seg, s->fill_len, s->fill_off, s->fill_off != 0, final) < 0)
        return pf_diag_set(diag(s), PF_ERR_STATE, "ESP compressor thread refused a segment");
    s->fill_off += s->fill_len;
    s->fill_len = 0;
    return PF_OK;
}

static int zpipe_drain(esp_state *s)
{
    while (pf_zpipe_held(s->zp)) {
        int r = zpipe_send_oldest(s);
        if (r < 0)
            return r;
    }
    return PF_OK;
}

/* write() of a compressed run with the thread: fill segments, hand over
 * each full one but the run's last (write_end closes that). */
static int zpipe_write(esp_state *s, const uint8_t *data, uint32_t len)
{
    while (len) {
        uint32_t n = SEGMENT - s->fill_len;
        if (n > len)
            n = len;
        memcpy(s->seg + s->fill_len, data, n);
        s->fill_len += n;
        data += n;
        len -= n;
        if (s->fill_len == SEGMENT && s->fill_off + SEGMENT < s->run_len) {
            int r = zpipe_put(s, 0);
            if (r < 0)
                return r;
        }
    }
    return PF_OK;
}

/* write_end of a compressed run with the thread: the last segment padded
 * with 0xFF to fill the ROM's buffer, or, near the end of flash, everything
 * before it and then the last segment uncompressed (as finish_compressed). */
static int zpipe_finish(esp_state *s)
{
    int r;
    if ((uint64_t)s->run_addr + s->fill_off + SEGMENT <= s->flash_size) {
        memset(s->seg + s->fill_len, 0xFF, SEGMENT - s->fill_len);
        s->fill_len = SEGMENT;
        if ((r = zpipe_put(s, 1)) < 0)
            return r;
        return zpipe_drain(s);
    }
    if ((r = zpipe_drain(s)) < 0)
        return r;
    s->deflating = 0;
    s->cur = s->seg;
    s->seg_off = s->fill_off;
    s->seg_fill = s->fill_len;
    r = begin_stream(s, s->seg_off, s->run_len);
    return r < 0 ? r : segment_step(s, NULL, 0, 2);
}

static void zpipe_stats(esp_state *s)
{
    pf_zp_stats z;
    pf_zpipe_stats(s->zp, &z);
    s->stats.zsegs_fast = z.segs_fast;
    s->stats.zsegs_best = z.segs_best;
    s->stats.zwait_ms = z.wait_ms;
    pf_port_logf(port(s), 2, "esp: compressor thread (%s): %lu segments by zlib, %lu by zopfli, %lu -> %lu bytes, "
                 "%lu ms of compression, the line waited %lu ms",
                 pf_zp_method_name(s->zp_method), (unsigned long)z.segs_fast, (unsigned long)z.segs_best,
                 (unsigned long)z.raw_bytes, (unsigned long)z.out_bytes, (unsigned long)z.cpu_ms,
                 (unsigned long)z.wait_ms);
}
#endif

/* The job found [addr, addr+len) erased (skip-unchanged check). */
static void esp_known_erased(void *self, uint32_t addr, uint32_t len)
{
    esp_state *s = self;
    for (unsigned i = 0; i < KNOWN_ERASED; i++)
        if (s->known_hi[i] == s->known_lo[i]) {
            s->known_lo[i] = addr;
            s->known_hi[i] = addr + len;
            return;
        }
}

/* 1 when the run [addr, addr+len) lies in a range found erased; the run is
 * cut out of every range (it is about to be written). A run the ROM must
 * not erase needs only the BEGIN's first sector erased: the ROM writes past
 * a BEGIN's erase size (seen on the real ROM, docs/ESP.md), and that sector
 * is erased already, so erasing it again changes nothing. */
static int take_known_erased(esp_state *s, uint32_t addr, uint32_t len)
{
    uint32_t end = addr + len;
    int inside = 0;
    for (unsigned i = 0; i < KNOWN_ERASED; i++) {
        uint32_t lo = s->known_lo[i], hi = s->known_hi[i];
        if (lo == hi || end <= lo || addr >= hi)
            continue;
        inside |= addr >= lo && end <= hi;
        /* keep what lies on either side of the run (the right part in a free slot, if any) */
        s->known_lo[i] = s->known_hi[i] = 0;
        if (lo < addr) {
            s->known_lo[i] = lo;
            s->known_hi[i] = addr;
        }
        if (end < hi) {
            if (s->known_lo[i] == s->known_hi[i]) {
                s->known_lo[i] = end;
                s->known_hi[i] = hi;
            } else {
                esp_known_erased(s, end, hi - end);
            }
        }
    }
    if (inside)
        s->stats.erase_skipped += len > SECTOR ? len - SECTOR : 0;
    return inside;
}

static int esp_write_begin(void *self, uint32_t addr, uint32_t len)
{
    esp_state *s = self;
    if (!s->connected)
        return pf_diag_set(diag(s), PF_ERR_STATE, "ESP write before connect");
    if (s->in_run)
        return pf_diag_set(diag(s), PF_ERR_STATE, "ESP write_begin inside a run");
    if (!len)
        return pf_diag_set(diag(s), PF_ERR_ARG, "ESP write of no bytes at 0x%08lx", (unsigned long)addr);
    if ((uint64_t)addr + len > s->flash_size)
        return pf_diag_set(diag(s), PF_ERR_RANGE, "0x%08lx-0x%08lx is past the end of the %lu KiB flash",
                           (unsigned long)addr, (unsigned long)(addr + len - 1), (unsigned long)(s->flash_size / 1024));
    if (addr % SECTOR)
        return pf_diag_set(diag(s), PF_ERR_ARG,
                           "the ESP ROM erases whole 4 KiB sectors: a write must start on one, 0x%08lx does not",
                           (unsigned long)addr);
    s->deflating = s->opt.compress && s->chip->rom_deflate;
    if (!s->deflating && !plain_fits(s))
        return plain_too_small(s, s->chip->rom_deflate ? "--no-compress sends the image"
                                                       : "this ROM has no deflate: it gets the image");
#if PF_ESP_STREAM
    if (!s->map)
        return pf_diag_set(diag(s), PF_ERR_STATE,
                           "ESP (streamed build): write before check_image gave the job's image source");
#endif
    s->run_addr = addr;
    s->run_len = len;
    s->run_fed = 0;
    s->seg_off = 0;
    s->seg_fill = 0;
    s->restarts = 0;
    s->restart_off = 0;
    s->seg_plain = 0;
    s->ahead_now = s->ahead;
    uint32_t erase_end = take_known_erased(s, addr, len) ? (len < SECTOR ? len : SECTOR) : len;
#if PF_ESP_ZPIPE
    s->zrun = 0;
    if (s->deflating)
        zpipe_start(s);
#endif
    int r = begin_stream(s, 0, erase_end);
    if (r < 0)
        return r;
    s->in_run = 1;
    return PF_OK;
}

static int esp_write(void *self, uint32_t addr, const uint8_t *data, uint32_t len)
{
    esp_state *s = self;
    if (!s->in_run)
        return pf_diag_set(diag(s), PF_ERR_STATE, "ESP write outside write_begin/write_end");
    if (addr != s->run_addr + s->run_fed || (uint64_t)s->run_fed + len > s->run_len)
        return pf_diag_set(diag(s), PF_ERR_ARG, "ESP write at 0x%08lx is not the next part of the run at 0x%08lx",
                           (unsigned long)addr, (unsigned long)s->run_addr);
    s->run_fed += len;
    s->stats.raw_bytes += len;
#if PF_ESP_ZPIPE
    if (s->zrun)
        return zpipe_write(s, data, len);
#endif
    while (len) {
        uint32_t n = SEGMENT - s->seg_fill;
        if (n > len)
            n = len;
        uint32_t from = s->seg_fill;
#if !PF_ESP_STREAM
        memcpy(s->seg + from, data, n);
#endif
        const uint8_t *part = data;
        s->seg_fill += n;
        data += n;
        len -= n;
        /* a full segment is closed unless it is the run's last: write_end does that */
        int full = s->seg_fill == SEGMENT && s->run_fed < s->run_len;
        int r = segment_step(s, part, from, full);
        if (r < 0)
            return r;
        if (full) {
            s->seg_off += SEGMENT;
            s->seg_fill = 0;
            if (s->seg_plain) { /* back to compressed after a plain segment (its sector is erased) */
                s->seg_plain = 0;
                s->deflating = 1;
                if ((r = begin_stream(s, s->seg_off, s->seg_off + SECTOR)) < 0)
                    return r;
            }
        }
    }
    return PF_OK;
}

/* The last, partial segment of a compressed run, padded with 0xFF to fill
 * the ROM's buffer; near the end of flash (no room for the pad) it goes
 * uncompressed with FLASH_BEGIN instead. */
static int finish_compressed(esp_state *s)
{
    uint32_t at = s->run_addr + s->seg_off;
    uint32_t from = s->seg_fill;
    if ((uint64_t)at + SEGMENT <= s->flash_size) {
#if !PF_ESP_STREAM
        memset(s->seg + from, 0xFF, SEGMENT - from);
#endif
        s->seg_fill = SEGMENT;
        return segment_step(s, NULL, from, 2);
    }
    if (!plain_fits(s))
        return plain_too_small(s, "the last segment is too close to the end of flash for its 0xFF pad and goes");
    s->deflating = 0;
    int r = finish_pending(s); /* this segment starts again plain anyway */
    if (r < 0 && r != ESP_RESTART)
        return r;
    r = begin_stream(s, s->seg_off, s->run_len);
    return r < 0 ? r : segment_step(s, NULL, 0, 2);
}

static int esp_write_end(void *self)
{
    esp_state *s = self;
    if (!s->in_run)
        return pf_diag_set(diag(s), PF_ERR_STATE, "ESP write_end without write_begin");
    s->in_run = 0;
    if (s->run_fed != s->run_len)
        return pf_diag_set(diag(s), PF_ERR_ARG, "ESP run at 0x%08lx got %lu of %lu bytes", (unsigned long)s->run_addr,
                           (unsigned long)s->run_fed, (unsigned long)s->run_len);
    int r;
#if PF_ESP_ZPIPE
    if (s->zrun) {
        r = zpipe_finish(s);
        zpipe_stats(s);
        pf_zpipe_clear(s->zp);
        s->zrun = 0;
    } else
#endif
    r = s->deflating ? finish_compressed(s) : segment_step(s, NULL, s->seg_fill, 2);
    if (s->z_ready) {
        deflateEnd(&s->z);
        s->z_ready = 0;
    }
    s->fill = 0;
    /* The ROM writes each block (plain) or each full buffer (compressed)
     * before it answers: nothing is left in flight. FLASH_END is not sent:
     * the ESP32 ROM's is unreliable and not needed. */
    return r;
}

/* ---- erase ---------------------------------------------------------------------
 * The ROM has no erase command (ERASE_FLASH / ERASE_REGION, 0xD0 / 0xD1, are
 * the flasher stub's); its FLASH_BEGIN erases the sectors it announces up
 * front, so a BEGIN with no data after it is the ROM's erase. */

static int esp_erase(void *self, uint32_t addr, uint32_t len)
{
    esp_state *s = self;
    if (!s->connected)
        return pf_diag_set(diag(s), PF_ERR_STATE, "ESP erase before connect");
    if (addr % SECTOR || len % SECTOR || !len || (uint64_t)addr + len > s->flash_size)
        return pf_diag_set(diag(s), PF_ERR_RANGE,
                           "ESP erase of %lu bytes at 0x%08lx: whole 4 KiB sectors inside the %lu KiB flash only",
                           (unsigned long)len, (unsigned long)addr, (unsigned long)(s->flash_size / 1024));
    uint8_t p[20];
    pf_put_le32(p, len);
    pf_put_le32(p + 4, (len + PF_ESP_ROM_BLOCK - 1) / PF_ESP_ROM_BLOCK);
    pf_put_le32(p + 8, PF_ESP_ROM_BLOCK);
    pf_put_le32(p + 12, addr);
    pf_put_le32(p + 16, 0);
    int r = command(s, PF_ESP_FLASH_BEGIN, p, s->chip->begin_encrypt_word ? 20 : 16, per_mb(ERASE_MS_PER_MB, len));
    if (r < 0) {
        char where[48];
        pf_format(where, sizeof where, "erasing 0x%08lx-0x%08lx", (unsigned long)addr, (unsigned long)(addr + len - 1));
        pf_diag_prefix(diag(s), where);
    }
    return r;
}

static int esp_erase_all(void *self)
{
    esp_state *s = self;
    return esp_erase(self, 0, s->flash_size);
}

/* ---- reading, digest, run ------------------------------------------------- */

static int esp_read(void *self, uint32_t addr, uint8_t *buf, uint32_t len)
{
    esp_state *s = self;
    if (!s->connected)
        return pf_diag_set(diag(s), PF_ERR_STATE, "ESP read before connect");
    if ((uint64_t)addr + len > s->flash_size)
        return pf_diag_set(diag(s), PF_ERR_RANGE, "read 0x%08lx+%lu is past the end of the flash",
                           (unsigned long)addr, (unsigned long)len);
    uint32_t done = 0;
    while (done < len) {
        uint32_t n = len - done < PF_ESP_SLOW_READ_MAX ? len - done : PF_ESP_SLOW_READ_MAX;
        uint8_t p[8];
        pf_put_le32(p, addr + done);
        pf_put_le32(p + 4, n);
        int r = command(s, PF_ESP_READ_FLASH_SLOW, p, 8, DEFAULT_TIMEOUT_MS);
        if (r < 0)
            return r;
        if (s->rlen < n)
            return pf_diag_set(diag(s), PF_ERR_PROTOCOL, "READ_FLASH_SLOW at 0x%08lx returned %zu of %lu bytes",
                               (unsigned long)(addr + done), s->rlen, (unsigned long)n);
        memcpy(buf + done, s->rdata, n);
        done += n;
    }
    return (int)len;
}

static int hexval(uint8_t c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

static int esp_digest(void *self, uint32_t addr, uint32_t len, uint8_t *out)
{
    esp_state *s = self;
    if (!s->connected || !s->chip->rom_deflate)
        return PF_ERR_UNSUPPORTED;
    uint8_t p[16];
    pf_put_le32(p, addr);
    pf_put_le32(p + 4, len);
    pf_put_le32(p + 8, 0);
    pf_put_le32(p + 12, 0);
    int r = command(s, PF_ESP_SPI_FLASH_MD5, p, 16, per_mb(MD5_MS_PER_MB, len));
    if (r < 0)
        return r;
    if (s->rlen == 16) { /* raw form (stub) */
        memcpy(out, s->rdata, 16);
        return 16;
    }
    if (s->rlen != 32)
        return pf_diag_set(diag(s), PF_ERR_PROTOCOL, "SPI_FLASH_MD5 answered %zu bytes, expected 32 hex digits", s->rlen);
    for (int i = 0; i < 16; i++) {
        int hi = hexval(s->rdata[2 * i]), lo = hexval(s->rdata[2 * i + 1]);
        if (hi < 0 || lo < 0)
            return pf_diag_set(diag(s), PF_ERR_PROTOCOL, "SPI_FLASH_MD5 answer is not hex");
        out[i] = (uint8_t)(hi << 4 | lo);
    }
    return 16;
}

static int esp_run(void *self)
{
    esp_state *s = self;
    const pf_port *p = port(s);
    /* Hard reset: pulse EN (RTS) with IO0 (DTR) released. */
    int r1 = p->set_lines ? p->set_lines(p->ctx, PF_LINE_RELEASE, PF_LINE_ASSERT) : PF_ERR_UNSUPPORTED;
    if (r1 == PF_OK) {
        pf_port_delay(p, 100);
        p->set_lines(p->ctx, PF_LINE_KEEP, PF_LINE_RELEASE);
        return PF_OK;
    }
    /* No modem lines (pty, TCP bridge): ask the ROM to run the user code,
     * FLASH_BEGIN of nothing then FLASH_END(run). */
    if (!s->connected)
        return PF_ERR_STATE;
    uint8_t b[20] = {0};
    pf_put_le32(b + 8, PF_ESP_ROM_BLOCK); /* nothing to erase, nothing to write */
    int r = command(s, PF_ESP_FLASH_BEGIN, b, s->chip->begin_encrypt_word ? 20 : 16, DEFAULT_TIMEOUT_MS);
    if (r < 0)
        return r;
    uint8_t e[4];
    pf_put_le32(e, 1); /* 1 = run user code (0 would reboot) */
    r = command(s, PF_ESP_FLASH_END, e, 4, 500);
    if (r == PF_ERR_TIMEOUT)
        return PF_OK; /* the ROM may jump before answering */
    return r;
}

static void esp_close(void *self)
{
    esp_state *s = self;
    if (!s)
        return;
    if (s->z_ready) {
        deflateEnd(&s->z);
        s->z_ready = 0;
    }
#if PF_ESP_ZPIPE
    pf_zpipe_free(s->zp);
    s->zp = NULL;
#endif
    s->connected = 0;
    s->in_run = 0;
}

/* ---- what the front ends ask of a driver (pf_target_ops, optional part) ---- */
static const pf_target_option esp_options[] = {
    {.name = "no-compress", .arg = NULL, .help = "send the image uncompressed", .commands = PF_CMD_FLASH, .flags = 0},
#if PF_ESP_ZPIPE
    PF_ZP_COMPRESS_OPTION,
#endif
    {.name = NULL},
};

static int esp_set_option(void *self, const char *name, const char *value)
{
    esp_state *s = self;
    (void)value;
    if (!strcmp(name, "no-compress")) {
        s->opt.compress = 0;
        return PF_OK;
    }
#if PF_ESP_ZPIPE
    if (!strcmp(name, "compress")) {
        int m = pf_zp_method_option(value, diag(s));
        if (m < 0)
            return m;
        s->opt.method = m;
        s->opt.compress = 1;
        return PF_OK;
    }
#endif
    return pf_diag_set(diag(s), PF_ERR_ARG, "option '%s' is not an option of the esp driver", name);
}

/* Bytes of one segment of a map read through its source. */
typedef struct map_reader {
    const pf_memmap *map;
    uint32_t base;
} map_reader;

static int map_read(void *ctx, uint32_t off, uint8_t *dst, uint32_t n)
{
    const map_reader *mr = ctx;
    pf_memmap_read(mr->map, mr->base + off, dst, n, 0xFF);
    return pf_memmap_error(mr->map);
}

/* ESP app images in the map (a segment that starts with one: the bootloader,
 * an application) are checked for the chip the ROM identified (issue 4):
 * header, checksum, appended SHA-256 and the chip id, before anything is
 * written. */
static int esp_check_image(void *self, const pf_memmap *map)
{
    esp_state *s = self;
    if (!s->connected || !s->chip)
        return pf_diag_set(diag(s), PF_ERR_STATE, "the ESP target is not connected");
#if PF_ESP_STREAM
    s->map = map;
#endif
    /* a build that cannot write this chip plain says so before anything is written */
    if (!(s->opt.compress && s->chip->rom_deflate) && !plain_fits(s))
        return plain_too_small(s, s->chip->rom_deflate ? "--no-compress sends the image"
                                                       : "this ROM has no deflate: it gets the image");
    for (size_t i = 0; i < map->count; i++) {
        const pf_segment *seg = &map->segs[i];
        pf_esp_image_info info;
        int r;
        if (seg->data) {
            if (pf_image_detect(seg->data, seg->len, ".bin") != PF_IMAGE_ESP)
                continue;
            r = pf_esp_image_parse(seg->data, seg->len, s->chip, &info, diag(s));
        } else {
            /* a map whose bytes stay in the image source (an updater's SD
             * card): the head, then the whole check, read through it */
            uint8_t head[8];
            size_t hn = seg->len < sizeof head ? seg->len : sizeof head;
            pf_memmap_read(map, seg->addr, head, hn, 0xFF);
            if ((r = pf_memmap_error(map)) < 0)
                return r;
            if (pf_image_detect(head, hn, ".bin") != PF_IMAGE_ESP)
                continue;
            map_reader mr = {map, seg->addr};
            r = pf_esp_image_parse_read(map_read, &mr, seg->len, s->chip, &info, diag(s));
        }
        if (r == PF_OK)
            r = pf_esp_image_check_chip(&info, s->chip, diag(s));
        if (r < 0) {
            pf_diag_hint(diag(s), r == PF_ERR_CHIP ? PF_HINT_CHIP : PF_HINT_IMAGE);
            return r;
        }
    }
    return PF_OK;
}

/* --chip: each table name, then its esptool key ("esp32s3"). */
static int esp_chip(unsigned i, pf_target_chip *out)
{
    const pf_esp_chip *c = pf_esp_chips;
    for (unsigned k = 0; k < i / 2; k++, c++)
        if (!c->name)
            return 0;
    if (!c->name)
        return 0;
    out->name = i % 2 ? c->key : c->name;
    out->entry = c->name;
    out->flash_start = 0;
    out->flash_size = 0; /* the module decides, not the chip */
    return 1;
}

static int esp_reset_valid(const char *spec)
{
    return !strcmp(spec, "auto") || !strcmp(spec, "none") || !strcmp(spec, "tight") || !strcmp(spec, "classic");
}

const pf_target_ops pf_target_esp = {
    .name = "esp",
    .summary = "Espressif ESP8266/ESP32-family ROM serial loader (SLIP, deflate, MD5 verify)",
    .ctx_size = sizeof(esp_state),
    .open = esp_open,
    .connect = esp_connect,
    .erase = esp_erase, /* FLASH_BEGIN erases; the job needs no separate erase (erase_style BY_WRITE) */
    .erase_all = esp_erase_all,
    .write_begin = esp_write_begin,
    .write = esp_write,
    .write_end = esp_write_end,
    .read = esp_read,
    .digest = esp_digest,
    .run = esp_run,
    .close = esp_close,
    .options = esp_options,
    .set_option = esp_set_option,
    .known_erased = esp_known_erased,
    .check_image = esp_check_image,
    .chip = esp_chip,
    .chip_flags = PF_CHIPS_SUFFIX_ANY, /* ESP8266EX, ESP32D0WDQ6 */
    .reset_valid = esp_reset_valid,
    .reset_help = "auto, none, tight or classic",
    .probe_rank = 2,
    .app_address = 0x10000, /* the factory app partition of the default partition table */
};
