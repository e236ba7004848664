/* The agent's store: images into the secondary slot, with resume. */
#include <stdint.h>
#include <string.h>
#include <zlib.h> /* inflate only, on the caller's arena (Z_SOLO-compatible) */

#include "peerflash/pf_agent.h"
#include "peerflash/pf_digest.h"
#include "peerflash/pf_zarena.h"

/* ---- inflate on the caller's arena ------------------------------------------ */

/* A fresh inflate stream at the start of the arena. */
static int z_start(pf_agent *a)
{
    pf_zarena_init(&a->_zarena, a->cfg.zarena, a->cfg.zarena_size);
    a->_zs = NULL;
    z_stream *z = pf_zarena_alloc(&a->_zarena, 1, sizeof(z_stream));
    if (!z)
        return PF_ERR_NOMEM;
    memset(z, 0, sizeof *z);
    PF_ZARENA_ATTACH(z, &a->_zarena);
    /* zlib format: its header names the window (refused when larger than
     * ours), its trailer the Adler-32 of what it inflates to */
    if (inflateInit2(z, a->cfg.zbits) != Z_OK)
        return PF_ERR_NOMEM;
    a->_zs = z;
    return PF_OK;
}

int pf_agent_init(pf_agent *a, const pf_agent_config *cfg)
{
    if (!a || !cfg || !cfg->boot || !cfg->wbuf)
        return PF_ERR_ARG;
    memset(a, 0, sizeof *a);
    a->cfg = *cfg;
    const pf_flash *f = cfg->boot->cfg.flash;
    if (!cfg->wbuf_size || cfg->wbuf_size % f->prog_size || cfg->wbuf_size % f->read_size ||
        f->erase_size % cfg->wbuf_size)
        return pf_diag_set(cfg->diag, PF_ERR_ARG, "agent write buffer of %lu bytes must be a multiple of %lu dividing %lu",
                           (unsigned long)cfg->wbuf_size, (unsigned long)f->prog_size, (unsigned long)f->erase_size);
    if (a->cfg.window == 0)
        a->cfg.window = 1;
    if (cfg->zbits) {
        if (cfg->zbits < 9 || cfg->zbits > 15 || !cfg->zarena)
            return pf_diag_set(cfg->diag, PF_ERR_ARG, "agent deflate window bits %u: must be 9..15 with an arena",
                               (unsigned)cfg->zbits);
        /* measure: the stream and inflate state now, the window later */
        if (z_start(a) < 0 || (uint64_t)a->_zarena.used + 16u + (1u << cfg->zbits) > cfg->zarena_size)
            return pf_diag_set(cfg->diag, PF_ERR_ARG,
                               "agent inflate arena of %lu bytes too small for a %lu-byte window (needs %lu)",
                               (unsigned long)cfg->zarena_size, (unsigned long)(1u << cfg->zbits),
                               (unsigned long)(a->_zarena.used + 16u + (1u << cfg->zbits)));
        a->_zs = NULL;
        pf_zarena_reset(&a->_zarena);
    }
    return PF_OK;
}

uint32_t pf_agent_recv_zoffset(const pf_agent *a) { return a->_z ? a->_zin : 0; }

uint32_t pf_agent_recv_offset(const pf_agent *a) { return a->_stored + a->_fill; }

int pf_agent_recv_begin(pf_agent *a, const uint8_t hash[32], uint32_t size, uint32_t *resume)
{
    if (!a || !hash)
        return PF_ERR_ARG;
    pf_boot *b = a->cfg.boot;
    pf_diag *d = a->cfg.diag;
    const pf_boot_record *cur = &b->rec;
    if (cur->state == PF_BOOT_TRIAL || cur->state == PF_BOOT_SWAPPING || cur->state == PF_BOOT_REVERTING)
        return pf_diag_set(d, PF_ERR_STATE, "an upgrade runs on trial (state %s): confirm it or reset first",
                           pf_boot_state_name(cur->state));
    if (size < PF_MCUBOOT_HEADER_SIZE || size > b->cfg.slot_size)
        return pf_diag_set(d, PF_ERR_RANGE, "image of %lu bytes does not fit the %lu-byte slot",
                           (unsigned long)size, (unsigned long)b->cfg.slot_size);
    a->_open = 0;
    a->_fill = 0;
    a->_z = a->_zend = 0;
    a->_zin = 0;
    a->_delta = 0;
    a->_size = size;
    memcpy(a->_hash, hash, 32);
    if ((cur->state == PF_BOOT_RECEIVING || cur->state == PF_BOOT_PENDING) && cur->size == size &&
        memcmp(cur->hash, hash, 32) == 0) {
        a->_stored = cur->state == PF_BOOT_PENDING ? size : cur->received;
    } else {
        pf_boot_record nr = *cur;
        nr.state = PF_BOOT_RECEIVING;
        nr.flags = 0;
        nr.step = nr.nsec = 0;
        nr.size = size;
        nr.received = 0;
        memcpy(nr.hash, hash, 32);
        int r = pf_boot_write_record(b, &nr);
        if (r < 0)
            return r;
        a->_stored = 0;
    }
    a->_open = 1;
    if (resume)
        *resume = a->_stored;
    return PF_OK;
}

/* Programs the staged buffer (len bytes, a multiple of prog_size). */
static int flush(pf_agent *a, uint32_t len)
{
    pf_boot *b = a->cfg.boot;
    const pf_flash *f = b->cfg.flash;
    uint32_t E = f->erase_size, at = b->cfg.secondary_off + a->_stored;
    int r;
    if (a->_stored % E == 0 && (r = f->erase(f->ctx, at)) < 0)
        return pf_diag_set(a->cfg.diag, r, "erase of secondary at 0x%lx failed", (unsigned long)at);
    if ((r = f->prog(f->ctx, at, a->cfg.wbuf, len)) < 0)
        return pf_diag_set(a->cfg.diag, r, "program of secondary at 0x%lx failed", (unsigned long)at);
    a->_stored += len;
    a->_fill = 0;
    if (a->_stored % E == 0 || a->_stored >= a->_size) {
        if (f->sync && (r = f->sync(f->ctx)) < 0)
            return r;
        pf_boot_record nr = b->rec;
        nr.received = a->_stored < a->_size ? a->_stored : a->_size;
        return pf_boot_write_record(b, &nr);
    }
    return PF_OK;
}

/* As soon as the header is in: refuse what END would refuse anyway (not
 * an image, too big, a downgrade) before the rest is sent. */
static int early_check(pf_agent *a)
{
    pf_boot *b = a->cfg.boot;
    const pf_flash *f = b->cfg.flash;
    pf_diag *d = a->cfg.diag;
    pf_mcuboot_info neu, cur;
    int r = pf_mcuboot_parse_header(a->cfg.wbuf, &neu, d);
    if (r < 0)
        return pf_diag_set(d, r, "not an MCUboot image (magic 0x%08lx): sign it first",
                           (unsigned long)(a->cfg.wbuf[0] | (uint32_t)a->cfg.wbuf[1] << 8 |
                                           (uint32_t)a->cfg.wbuf[2] << 16 | (uint32_t)a->cfg.wbuf[3] << 24));
    if ((uint64_t)neu.hdr_size + neu.img_size + neu.protect_tlv_size + 4 > a->_size)
        return pf_diag_set(d, PF_ERR_FORMAT, "image header says %lu bytes of body, the file has %lu in all",
                           (unsigned long)neu.img_size, (unsigned long)a->_size);
    if (a->cfg.allow_downgrade)
        return PF_OK;
    uint8_t hdr[PF_MCUBOOT_HEADER_SIZE + 32];
    uint32_t n = (PF_MCUBOOT_HEADER_SIZE + f->read_size - 1) / f->read_size * f->read_size;
    if (n > sizeof hdr || f->read(f->ctx, b->cfg.primary_off, hdr, n) < 0 || pf_mcuboot_parse_header(hdr, &cur, NULL) < 0)
        return PF_OK; /* no readable running image: nothing to compare with */
    if (pf_mcuboot_version_cmp(&neu.version, &cur.version) < 0)
        return pf_diag_set(d, PF_ERR_AUTH, "downgrade refused: new image is %u.%u.%u, running %u.%u.%u",
                           (unsigned)neu.version.major, (unsigned)neu.version.minor, (unsigned)neu.version.revision,
                           (unsigned)cur.version.major, (unsigned)cur.version.minor, (unsigned)cur.version.revision);
    return PF_OK;
}

/* Puts the next len image bytes into the write buffer, programming it when
 * full; checks the header as soon as it is complete. */
static int put(pf_agent *a, const uint8_t *data, uint32_t len)
{
    if ((uint64_t)pf_agent_recv_offset(a) + len > a->_size)
        return pf_diag_set(a->cfg.diag, PF_ERR_RANGE, "data beyond the announced image size %lu",
                           (unsigned long)a->_size);
    while (len) {
        uint32_t n = a->cfg.wbuf_size - a->_fill;
        if (n > len)
            n = len;
        memcpy(a->cfg.wbuf + a->_fill, data, n);
        uint32_t before = a->_fill;
        a->_fill += n;
        data += n;
        len -= n;
        if (a->_stored == 0 && before < PF_MCUBOOT_HEADER_SIZE && a->_fill >= PF_MCUBOOT_HEADER_SIZE) {
            int r = early_check(a);
            if (r < 0) { /* forget the transfer, keep the reason */
                a->_open = 0;
                a->_fill = 0;
                pf_boot *b = a->cfg.boot;
                pf_boot_record nr = b->rec;
                nr.state = PF_BOOT_IDLE;
                nr.received = 0;
                memset(nr.hash, 0, sizeof nr.hash);
                pf_diag saved;
                if (a->cfg.diag)
                    saved = *a->cfg.diag;
                pf_boot_write_record(b, &nr);
                if (a->cfg.diag)
                    *a->cfg.diag = saved;
                return r;
            }
        }
        if (a->_fill == a->cfg.wbuf_size) {
            int r = flush(a, a->_fill);
            if (r < 0) {
                a->_open = 0;
                return r;
            }
        }
    }
    return PF_OK;
}

/* ---- delta: a patch against the running image ----------------------------------- */

int pf_agent_delta_capable(const pf_agent *a)
{
    const pf_flash *f = a->cfg.boot->cfg.flash;
    /* base reads go through one PF_PATCH_CHUNK-aligned cache block */
    return f->read_size && PF_PATCH_CHUNK % f->read_size == 0 && f->erase_size % PF_PATCH_CHUNK == 0;
}

uint32_t pf_agent_recv_poffset(const pf_agent *a) { return a->_delta ? a->_patch.in : 0; }

int pf_agent_delta_check_base(pf_agent *a, uint32_t base_size, const uint8_t base_hash[32])
{
    pf_boot *b = a->cfg.boot;
    const pf_flash *f = b->cfg.flash;
    pf_diag *d = a->cfg.diag;
    if (!pf_agent_delta_capable(a))
        return pf_diag_set(d, PF_ERR_UNSUPPORTED, "this agent cannot apply patches (flash read size %lu)",
                           (unsigned long)f->read_size);
    if (base_size > b->cfg.slot_size)
        return pf_diag_set(d, PF_ERR_VERIFY, "patch base of %lu bytes is larger than the %lu-byte slot",
                           (unsigned long)base_size, (unsigned long)b->cfg.slot_size);
    /* the whole base file as the running slot holds it (the work buffer is
     * free between journal writes) */
    pf_digest dg;
    uint8_t h[32];
    int r = pf_digest_begin(&dg, PF_DIGEST_SHA256);
    if (r < 0)
        return r;
    for (uint32_t o = 0; o < base_size && r >= 0; o += b->cfg.buf_size) {
        uint32_t n = base_size - o < b->cfg.buf_size ? base_size - o : b->cfg.buf_size;
        uint32_t rn = (n + f->read_size - 1) / f->read_size * f->read_size;
        if ((r = f->read(f->ctx, b->cfg.primary_off + o, b->cfg.buf, rn)) >= 0)
            pf_digest_update(&dg, b->cfg.buf, n);
    }
    pf_digest_finish(&dg, h);
    if (r < 0)
        return pf_diag_set(d, r, "flash read of the running image failed");
    if (memcmp(h, base_hash, 32) != 0)
        return pf_diag_set(d, PF_ERR_VERIFY,
                           "patch base differs from the running image (base %lu bytes, SHA-256 %02x%02x%02x%02x..; "
                           "running slot: %02x%02x%02x%02x..)",
                           (unsigned long)base_size, base_hash[0], base_hash[1], base_hash[2], base_hash[3], h[0], h[1],
                           h[2], h[3]);
    return PF_OK;
}

/* Base bytes for the applier: through a PF_PATCH_CHUNK-aligned block of
 * the running slot (reads stay aligned to read_size). */
static int patch_read_base(void *ctx, uint32_t off, uint8_t *buf, uint32_t len)
{
    pf_agent *a = ctx;
    pf_boot *b = a->cfg.boot;
    const pf_flash *f = b->cfg.flash;
    while (len) {
        uint32_t at = b->cfg.primary_off + off, blk = at / PF_PATCH_CHUNK * PF_PATCH_CHUNK;
        if (a->_pbase_off != blk) {
            a->_pbase_off = UINT32_MAX;
            int r = f->read(f->ctx, blk, a->_pbase, PF_PATCH_CHUNK);
            if (r < 0)
                return pf_diag_set(a->cfg.diag, r, "flash read of the patch base at 0x%lx failed", (unsigned long)blk);
            a->_pbase_off = blk;
        }
        uint32_t n = blk + PF_PATCH_CHUNK - at;
        if (n > len)
            n = len;
        memcpy(buf, a->_pbase + (at - blk), n);
        buf += n;
        off += n;
        len -= n;
    }
    return PF_OK;
}

static int patch_emit(void *ctx, const uint8_t *data, uint32_t len)
{
    pf_agent *a = ctx;
    return put(a, data, len);
}

int pf_agent_recv_delta(pf_agent *a, uint32_t base_size)
{
    if (!a)
        return PF_ERR_ARG;
    if (!a->_open)
        return pf_diag_set(a->cfg.diag, PF_ERR_STATE, "delta without a begun transfer");
    if (!pf_agent_delta_capable(a))
        return pf_diag_set(a->cfg.diag, PF_ERR_UNSUPPORTED, "this agent cannot apply patches");
    a->_delta = 1;
    a->_pbase_off = UINT32_MAX;
    pf_patch_apply_init(&a->_patch, base_size, a->_size, pf_agent_recv_offset(a), patch_read_base, patch_emit, a,
                        a->cfg.diag);
    return PF_OK;
}

/* Patch body bytes in; image bytes out to put(). A malformed patch closes
 * the transfer (what is stored stays: END's whole-file hash decides). */
static int patch_feed(pf_agent *a, const uint8_t *data, uint32_t len)
{
    int r = pf_patch_apply_feed(&a->_patch, data, len);
    if (r < 0)
        a->_open = 0;
    return r;
}

int pf_agent_recv_data(pf_agent *a, uint32_t off, const uint8_t *data, uint32_t len)
{
    if (!a || (!data && len))
        return PF_ERR_ARG;
    if (!a->_open)
        return pf_diag_set(a->cfg.diag, PF_ERR_STATE, "data without a begun transfer");
    if (a->_z)
        return pf_diag_set(a->cfg.diag, PF_ERR_STATE, "plain data in a compressed transfer");
    if (a->_delta) {
        if (off != a->_patch.in)
            return pf_diag_set(a->cfg.diag, PF_ERR_STATE, "patch data at offset %lu, expected %lu",
                               (unsigned long)off, (unsigned long)a->_patch.in);
        return patch_feed(a, data, len);
    }
    if (off != pf_agent_recv_offset(a))
        return pf_diag_set(a->cfg.diag, PF_ERR_STATE, "data at offset %lu, expected %lu", (unsigned long)off,
                           (unsigned long)pf_agent_recv_offset(a));
    return put(a, data, len);
}

int pf_agent_recv_deflate(pf_agent *a)
{
    if (!a)
        return PF_ERR_ARG;
    if (!a->_open)
        return pf_diag_set(a->cfg.diag, PF_ERR_STATE, "deflate without a begun transfer");
    if (!a->cfg.zbits)
        return pf_diag_set(a->cfg.diag, PF_ERR_UNSUPPORTED, "this agent does not inflate (no deflate capability)");
    int r = z_start(a);
    if (r < 0)
        return pf_diag_set(a->cfg.diag, r, "inflate does not fit its arena");
    a->_z = 1;
    a->_zin = 0;
    /* resuming a complete image: nothing is left to inflate */
    a->_zend = pf_agent_recv_offset(a) >= a->_size;
    return PF_OK;
}

/* A corrupt stream: the transfer is over (what is durably stored stays:
 * END's whole-file SHA-256 decides about it, and BEGIN resumes from it). */
static int z_fail(pf_agent *a, const char *what)
{
    z_stream *z = a->_zs;
    a->_open = 0;
    return pf_diag_set(a->cfg.diag, PF_ERR_FORMAT, "corrupt compressed data at stream offset %lu (image offset %lu): %s",
                       (unsigned long)a->_zin, (unsigned long)pf_agent_recv_offset(a),
                       what ? what : z && z->msg ? z->msg : "inflate error");
}

int pf_agent_recv_zdata(pf_agent *a, uint32_t zoff, const uint8_t *data, uint32_t len)
{
    if (!a || (!data && len))
        return PF_ERR_ARG;
    if (!a->_open)
        return pf_diag_set(a->cfg.diag, PF_ERR_STATE, "data without a begun transfer");
    if (!a->_z || !a->_zs)
        return pf_diag_set(a->cfg.diag, PF_ERR_STATE, "compressed data in a plain transfer");
    if (zoff != a->_zin)
        return pf_diag_set(a->cfg.diag, PF_ERR_STATE, "compressed data at offset %lu, expected %lu",
                           (unsigned long)zoff, (unsigned long)a->_zin);
    if (a->_zend && len)
        return z_fail(a, "data after the end of the stream");
    z_stream *z = a->_zs;
    z->next_in = (z_const Bytef *)data;
    z->avail_in = len;
    uint8_t out[256];
    while (!a->_zend) {
        z->next_out = out;
        z->avail_out = sizeof out;
        int zr = inflate(z, Z_NO_FLUSH);
        uint32_t n = (uint32_t)(sizeof out - z->avail_out);
        a->_zin = zoff + (len - z->avail_in);
        if (zr != Z_OK && zr != Z_STREAM_END && zr != Z_BUF_ERROR)
            return z_fail(a, zr == Z_MEM_ERROR ? "inflate arena exhausted" : NULL);
        if (n) {
            if (!a->_delta && (uint64_t)pf_agent_recv_offset(a) + n > a->_size)
                return z_fail(a, "it inflates to more than the announced image size");
            int r = a->_delta ? patch_feed(a, out, n) : put(a, out, n);
            if (r < 0)
                return r;
        }
        if (zr == Z_STREAM_END) {
            a->_zend = 1;
            if (a->_delta && !pf_patch_apply_done(&a->_patch))
                return z_fail(a, "the stream ends before the patch does");
            if (pf_agent_recv_offset(a) != a->_size)
                return z_fail(a, "the stream ends before the image does");
            if (z->avail_in)
                return z_fail(a, "data after the end of the stream");
            break;
        }
        if (!z->avail_in && z->avail_out) /* all taken, nothing pending */
            break;
    }
    return PF_OK;
}

int pf_agent_recv_end(pf_agent *a, int permanent)
{
    if (!a)
        return PF_ERR_ARG;
    pf_boot *b = a->cfg.boot;
    const pf_flash *f = b->cfg.flash;
    pf_diag *d = a->cfg.diag;
    if (!a->_open)
        return pf_diag_set(d, PF_ERR_STATE, "end without a begun transfer");
    if (pf_agent_recv_offset(a) != a->_size)
        return pf_diag_set(d, PF_ERR_STATE, "end after %lu of %lu bytes", (unsigned long)pf_agent_recv_offset(a),
                           (unsigned long)a->_size);
    if (a->_z && !a->_zend)
        return pf_diag_set(d, PF_ERR_STATE, "end before the compressed stream ended (after %lu of its bytes)",
                           (unsigned long)a->_zin);
    if (a->_delta && !pf_patch_apply_done(&a->_patch))
        return pf_diag_set(d, PF_ERR_STATE, "end inside a patch record (after %lu of its bytes)",
                           (unsigned long)a->_patch.in);
    int r;
    if (a->_fill) {
        uint32_t p = f->prog_size, len = (a->_fill + p - 1) / p * p;
        memset(a->cfg.wbuf + a->_fill, f->erase_value, len - a->_fill);
        if ((r = flush(a, len)) < 0)
            return r;
    }
    /* the whole file as stored, against the hash the host announced */
    pf_digest dg;
    uint8_t h[32];
    if ((r = pf_digest_begin(&dg, PF_DIGEST_SHA256)) < 0)
        return r;
    for (uint32_t o = 0; o < a->_size; o += a->cfg.wbuf_size) {
        uint32_t n = a->_size - o < a->cfg.wbuf_size ? a->_size - o : a->cfg.wbuf_size;
        uint32_t rn = (n + f->read_size - 1) / f->read_size * f->read_size;
        if ((r = f->read(f->ctx, b->cfg.secondary_off + o, a->cfg.wbuf, rn)) < 0) {
            pf_digest_finish(&dg, h);
            return r;
        }
        pf_digest_update(&dg, a->cfg.wbuf, n);
    }
    pf_digest_finish(&dg, h);
    a->_open = 0;
    if (memcmp(h, a->_hash, 32) != 0) {
        pf_boot_record nr = b->rec;
        nr.state = PF_BOOT_IDLE;
        nr.received = 0;
        pf_boot_write_record(b, &nr);
        return pf_diag_set(d, PF_ERR_VERIFY, "stored image SHA-256 differs from the announced one");
    }
    r = pf_boot_request_install(b, permanent, a->cfg.allow_downgrade);
    if (r < 0 && r != PF_ERR_IO) {
        /* refused (bad signature, downgrade, malformed): forget the transfer */
        pf_diag saved;
        if (d)
            saved = *d;
        pf_boot_record nr = b->rec;
        nr.state = PF_BOOT_IDLE;
        nr.received = 0;
        memset(nr.hash, 0, sizeof nr.hash);
        pf_boot_write_record(b, &nr);
        if (d)
            *d = saved;
    }
    return r;
}
