/* Patch files (header + zlib body) and applying a patch in memory: what
 * `peerflash diff` writes and the tests and the fuzzer read. */
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "peerflash/pf_delta.h"
#include "peerflash/pf_digest.h"

void pf_delta_free(pf_delta *d)
{
    if (!d)
        return;
    free(d->body);
    d->body = NULL;
    d->body_len = 0;
}

int pf_delta_encode_file(const pf_delta *d, uint8_t **out, size_t *out_len, pf_diag *diag)
{
    uLong bound = compressBound(d->body_len);
    uint8_t *f = malloc(PF_PATCH_HEADER_SIZE + bound);
    if (!f)
        return pf_diag_set(diag, PF_ERR_NOMEM, "no memory for the patch file");
    uLongf zlen = bound;
    if (compress2(f + PF_PATCH_HEADER_SIZE, &zlen, d->body, d->body_len, 9) != Z_OK) {
        free(f);
        return pf_diag_set(diag, PF_ERR_NOMEM, "zlib compress2 of the patch body failed");
    }
    pf_patch_header h = d->hdr;
    h.flags = PF_PATCH_F_DEFLATE;
    h.stored_len = (uint32_t)zlen;
    h.body_crc = pf_crc32(0, f + PF_PATCH_HEADER_SIZE, (size_t)zlen);
    pf_patch_header_encode(&h, f);
    *out = f;
    *out_len = PF_PATCH_HEADER_SIZE + (size_t)zlen;
    return PF_OK;
}

int pf_delta_decode_file(const uint8_t *file, size_t len, pf_delta *d, pf_diag *diag)
{
    memset(d, 0, sizeof *d);
    int r = pf_patch_header_parse(file, len, &d->hdr, diag);
    if (r < 0)
        return r;
    const uint8_t *stored = file + PF_PATCH_HEADER_SIZE;
    if (len - PF_PATCH_HEADER_SIZE != d->hdr.stored_len)
        return pf_diag_set(diag, PF_ERR_FORMAT, "patch body is %zu bytes, the header says %lu",
                           len - PF_PATCH_HEADER_SIZE, (unsigned long)d->hdr.stored_len);
    if (pf_crc32(0, stored, d->hdr.stored_len) != d->hdr.body_crc)
        return pf_diag_set(diag, PF_ERR_FORMAT, "patch body CRC mismatch (corrupt file)");
    if (d->hdr.body_len > PF_DELTA_MAX_SIZE * 2u)
        return pf_diag_set(diag, PF_ERR_FORMAT, "patch body of %lu bytes is implausibly large",
                           (unsigned long)d->hdr.body_len);
    d->body = malloc(d->hdr.body_len ? d->hdr.body_len : 1);
    if (!d->body)
        return pf_diag_set(diag, PF_ERR_NOMEM, "no memory for a %lu-byte patch body", (unsigned long)d->hdr.body_len);
    d->body_len = d->hdr.body_len;
    if (d->hdr.flags & PF_PATCH_F_DEFLATE) {
        uLongf n = d->body_len;
        int zr = uncompress(d->body, &n, stored, d->hdr.stored_len);
        if (zr != Z_OK || n != d->body_len) {
            pf_delta_free(d);
            return pf_diag_set(diag, PF_ERR_FORMAT, "patch body does not inflate to the %lu bytes announced",
                               (unsigned long)d->hdr.body_len);
        }
    } else {
        memcpy(d->body, stored, d->body_len);
    }
    return PF_OK;
}

typedef struct mem_apply {
    const uint8_t *old;
    uint8_t *out;
    uint32_t at;
} mem_apply;

static int mem_read(void *ctx, uint32_t off, uint8_t *buf, uint32_t len)
{
    mem_apply *m = ctx;
    memcpy(buf, m->old + off, len);
    return PF_OK;
}

static int mem_emit(void *ctx, const uint8_t *data, uint32_t len)
{
    mem_apply *m = ctx;
    memcpy(m->out + m->at, data, len);
    m->at += len;
    return PF_OK;
}

int pf_delta_apply(const pf_delta *d, const uint8_t *old, uint32_t old_len, uint8_t **out, pf_diag *diag)
{
    uint8_t h[32];
    pf_digest dg;
    if (old_len != d->hdr.base_size)
        return pf_diag_set(diag, PF_ERR_VERIFY, "base is %lu bytes, the patch was made against %lu",
                           (unsigned long)old_len, (unsigned long)d->hdr.base_size);
    pf_digest_begin(&dg, PF_DIGEST_SHA256);
    pf_digest_update(&dg, old, old_len);
    pf_digest_finish(&dg, h);
    if (memcmp(h, d->hdr.base_sha256, 32))
        return pf_diag_set(diag, PF_ERR_VERIFY, "base SHA-256 differs from the one the patch was made against");
    mem_apply m = {old, malloc(d->hdr.new_size ? d->hdr.new_size : 1), 0};
    if (!m.out)
        return pf_diag_set(diag, PF_ERR_NOMEM, "no memory for a %lu-byte result", (unsigned long)d->hdr.new_size);
    pf_patch_applier ap;
    pf_patch_apply_init(&ap, old_len, d->hdr.new_size, 0, mem_read, mem_emit, &m, diag);
    int r = pf_patch_apply_feed(&ap, d->body, d->body_len);
    if (r == PF_OK && !pf_patch_apply_done(&ap))
        r = pf_diag_set(diag, PF_ERR_FORMAT, "patch body ends after %lu of %lu output bytes",
                        (unsigned long)(ap.out == UINT32_MAX ? 0 : ap.out), (unsigned long)d->hdr.new_size);
    if (r == PF_OK) {
        pf_digest_begin(&dg, PF_DIGEST_SHA256);
        pf_digest_update(&dg, m.out, d->hdr.new_size);
        pf_digest_finish(&dg, h);
        if (memcmp(h, d->hdr.new_sha256, 32))
            r = pf_diag_set(diag, PF_ERR_VERIFY, "patched result's SHA-256 differs from the patch header's");
    }
    if (r < 0) {
        free(m.out);
        return r;
    }
    *out = m.out;
    return PF_OK;
}
