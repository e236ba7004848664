/* Delta patch format and the streaming applier (docs/DELTA.md).
 * Freestanding: runs on the device inside the agent. */
#include <string.h>

#include "peerflash/pf_bytes.h"
#include "peerflash/pf_digest.h"
#include "peerflash/pf_patch.h"

void pf_patch_header_encode(const pf_patch_header *h, uint8_t out[PF_PATCH_HEADER_SIZE])
{
    memset(out, 0, PF_PATCH_HEADER_SIZE);
    pf_put_le32(out, PF_PATCH_MAGIC);
    out[4] = h->version ? h->version : PF_PATCH_VERSION;
    out[5] = h->flags;
    pf_put_le16(out + 6, PF_PATCH_HEADER_SIZE);
    pf_put_le32(out + 8, h->base_size);
    pf_put_le32(out + 12, h->new_size);
    memcpy(out + 16, h->base_sha256, 32);
    memcpy(out + 48, h->new_sha256, 32);
    pf_put_le32(out + 80, h->body_len);
    pf_put_le32(out + 84, h->records);
    pf_put_le32(out + 88, h->stored_len);
    pf_put_le32(out + 92, h->body_crc);
    /* 96..99 reserved, zero */
    pf_put_le32(out + 100, pf_crc32(0, out, 100));
}

int pf_patch_header_parse(const uint8_t *in, size_t len, pf_patch_header *h, pf_diag *diag)
{
    if (len < PF_PATCH_HEADER_SIZE)
        return pf_diag_set(diag, PF_ERR_FORMAT, "patch of %zu bytes is shorter than its %u-byte header", len,
                           (unsigned)PF_PATCH_HEADER_SIZE);
    if (pf_get_le32(in) != PF_PATCH_MAGIC)
        return pf_diag_set(diag, PF_ERR_FORMAT, "not a peerflash patch (magic 0x%08lx, expected 0x%08lx)",
                           (unsigned long)pf_get_le32(in), (unsigned long)PF_PATCH_MAGIC);
    if (in[4] != PF_PATCH_VERSION)
        return pf_diag_set(diag, PF_ERR_FORMAT, "patch format version %u, this peerflash reads %u", (unsigned)in[4],
                           (unsigned)PF_PATCH_VERSION);
    if (pf_get_le16(in + 6) != PF_PATCH_HEADER_SIZE)
        return pf_diag_set(diag, PF_ERR_FORMAT, "patch header size %u, expected %u", (unsigned)pf_get_le16(in + 6),
                           (unsigned)PF_PATCH_HEADER_SIZE);
    if (pf_get_le32(in + 100) != pf_crc32(0, in, 100))
        return pf_diag_set(diag, PF_ERR_FORMAT, "patch header CRC mismatch (corrupt file)");
    if (in[5] & ~PF_PATCH_F_DEFLATE)
        return pf_diag_set(diag, PF_ERR_FORMAT, "unknown patch flags 0x%02x", (unsigned)in[5]);
    if (pf_get_le32(in + 96))
        return pf_diag_set(diag, PF_ERR_FORMAT, "patch header: reserved field is not zero");
    memset(h, 0, sizeof *h);
    h->version = in[4];
    h->flags = in[5];
    h->base_size = pf_get_le32(in + 8);
    h->new_size = pf_get_le32(in + 12);
    memcpy(h->base_sha256, in + 16, 32);
    memcpy(h->new_sha256, in + 48, 32);
    h->body_len = pf_get_le32(in + 80);
    h->records = pf_get_le32(in + 84);
    h->stored_len = pf_get_le32(in + 88);
    h->body_crc = pf_get_le32(in + 92);
    if (!(h->flags & PF_PATCH_F_DEFLATE) && h->stored_len != h->body_len)
        return pf_diag_set(diag, PF_ERR_FORMAT, "patch body stored as %lu bytes, header says %lu",
                           (unsigned long)h->stored_len, (unsigned long)h->body_len);
    if ((uint64_t)h->records * PF_PATCH_RECORD_SIZE > h->body_len)
        return pf_diag_set(diag, PF_ERR_FORMAT, "patch says %lu records in a %lu-byte body",
                           (unsigned long)h->records, (unsigned long)h->body_len);
    return PF_OK;
}

void pf_patch_record_encode(const pf_patch_record *r, uint8_t out[PF_PATCH_RECORD_SIZE])
{
    pf_put_le32(out, r->new_pos);
    pf_put_le32(out + 4, r->old_pos);
    pf_put_le32(out + 8, r->diff_len);
    pf_put_le32(out + 12, r->extra_len);
}

static void record_decode(const uint8_t *in, pf_patch_record *r)
{
    r->new_pos = pf_get_le32(in);
    r->old_pos = pf_get_le32(in + 4);
    r->diff_len = pf_get_le32(in + 8);
    r->extra_len = pf_get_le32(in + 12);
}

int pf_patch_body_seek(const uint8_t *body, uint32_t body_len, uint32_t at, uint32_t *body_off, pf_diag *diag)
{
    uint32_t off = 0, out = 0;
    while (off < body_len) {
        pf_patch_record r;
        if (body_len - off < PF_PATCH_RECORD_SIZE)
            return pf_diag_set(diag, PF_ERR_FORMAT, "patch body ends inside a record at %lu", (unsigned long)off);
        record_decode(body + off, &r);
        uint64_t len = (uint64_t)r.diff_len + r.extra_len;
        if (r.new_pos != out || len > body_len - off - PF_PATCH_RECORD_SIZE)
            return pf_diag_set(diag, PF_ERR_FORMAT, "patch record at body offset %lu is malformed",
                               (unsigned long)off);
        if (at < out + len) {
            *body_off = off;
            return PF_OK;
        }
        out += (uint32_t)len;
        off += PF_PATCH_RECORD_SIZE + (uint32_t)len;
    }
    *body_off = body_len;
    return PF_OK;
}

void pf_patch_apply_init(pf_patch_applier *p, uint32_t base_size, uint32_t new_size, uint32_t resume,
                         pf_patch_read_fn read_base, pf_patch_emit_fn emit, void *ctx, pf_diag *diag)
{
    memset(p, 0, sizeof *p);
    p->read_base = read_base;
    p->emit = emit;
    p->ctx = ctx;
    p->diag = diag;
    p->base_size = base_size;
    p->new_size = new_size;
    p->resume = resume;
    p->out = UINT32_MAX;
}

int pf_patch_apply_done(const pf_patch_applier *p)
{
    return !p->failed && p->rec_fill == 0 && !p->diff_left && !p->extra_left &&
           (p->out == p->new_size || (p->out == UINT32_MAX && p->resume >= p->new_size));
}

static int fail(pf_patch_applier *p, int err)
{
    p->failed = 1;
    return err;
}

/* A complete record header: check that it continues the output and stays
 * inside base and result. */
static int start_record(pf_patch_applier *p)
{
    pf_patch_record r;
    record_decode(p->rec, &r);
    uint32_t at = p->in - PF_PATCH_RECORD_SIZE;
    uint64_t len = (uint64_t)r.diff_len + r.extra_len;
    if (p->out == UINT32_MAX) {
        /* the first record of this stream: where the output continues */
        if (r.new_pos > p->resume)
            return fail(p, pf_diag_set(p->diag, PF_ERR_FORMAT,
                                       "patch starts at output offset %lu, the device needs it from %lu",
                                       (unsigned long)r.new_pos, (unsigned long)p->resume));
        p->out = r.new_pos;
    } else if (r.new_pos != p->out) {
        return fail(p, pf_diag_set(p->diag, PF_ERR_FORMAT,
                                   "patch record at body offset %lu is for output offset %lu, expected %lu",
                                   (unsigned long)at, (unsigned long)r.new_pos, (unsigned long)p->out));
    }
    if (len == 0)
        return fail(p, pf_diag_set(p->diag, PF_ERR_FORMAT, "empty patch record at body offset %lu",
                                   (unsigned long)at));
    if (p->out > p->new_size || len > p->new_size - p->out)
        return fail(p, pf_diag_set(p->diag, PF_ERR_FORMAT,
                                   "patch record at body offset %lu writes past the %lu-byte image",
                                   (unsigned long)at, (unsigned long)p->new_size));
    if (r.old_pos > p->base_size || r.diff_len > p->base_size - r.old_pos)
        return fail(p, pf_diag_set(p->diag, PF_ERR_FORMAT,
                                   "patch record at body offset %lu reads base bytes %lu+%lu beyond its %lu bytes",
                                   (unsigned long)at, (unsigned long)r.old_pos, (unsigned long)r.diff_len,
                                   (unsigned long)p->base_size));
    p->old_pos = r.old_pos;
    p->diff_left = r.diff_len;
    p->extra_left = r.extra_len;
    return PF_OK;
}

/* Output bytes [p->out, p->out + n) computed in buf: the part at or above
 * resume goes to emit. */
static int produce(pf_patch_applier *p, const uint8_t *buf, uint32_t n)
{
    uint32_t skip = p->out < p->resume ? p->resume - p->out : 0;
    int r = PF_OK;
    if (skip < n)
        r = p->emit(p->ctx, buf + skip, n - skip);
    p->out += n;
    return r < 0 ? fail(p, r) : PF_OK;
}

int pf_patch_apply_feed(pf_patch_applier *p, const uint8_t *data, uint32_t len)
{
    if (p->failed)
        return PF_ERR_STATE;
    while (len) {
        if (p->diff_left) {
            uint8_t buf[PF_PATCH_CHUNK];
            uint32_t n = p->diff_left < len ? p->diff_left : len;
            if (n > PF_PATCH_CHUNK)
                n = PF_PATCH_CHUNK;
            if ((uint64_t)p->out + n <= p->resume) {
                p->out += n; /* already stored: no need to read the base */
            } else {
                int r = p->read_base(p->ctx, p->old_pos, buf, n);
                if (r < 0)
                    return fail(p, r);
                for (uint32_t i = 0; i < n; i++)
                    buf[i] = (uint8_t)(buf[i] + data[i]);
                if ((r = produce(p, buf, n)) < 0)
                    return r;
            }
            p->old_pos += n;
            p->diff_left -= n;
            data += n;
            len -= n;
            p->in += n;
        } else if (p->extra_left) {
            uint32_t n = p->extra_left < len ? p->extra_left : len;
            int r = produce(p, data, n);
            if (r < 0)
                return r;
            p->extra_left -= n;
            data += n;
            len -= n;
            p->in += n;
        } else {
            if (p->rec_fill == 0 && p->out == p->new_size)
                return fail(p, pf_diag_set(p->diag, PF_ERR_FORMAT,
                                           "%lu bytes after the end of the patch (body offset %lu)",
                                           (unsigned long)len, (unsigned long)p->in));
            uint32_t n = PF_PATCH_RECORD_SIZE - p->rec_fill;
            if (n > len)
                n = len;
            memcpy(p->rec + p->rec_fill, data, n);
            p->rec_fill = (uint8_t)(p->rec_fill + n);
            data += n;
            len -= n;
            p->in += n;
            if (p->rec_fill == PF_PATCH_RECORD_SIZE) {
                p->rec_fill = 0;
                int r = start_record(p);
                if (r < 0)
                    return r;
            }
        }
    }
    return PF_OK;
}
