/* MCUboot image checks over any storage (pf_mcuboot.h): header, bounds,
 * TLVs, SHA-256, key hash and signature (through the caller's
 * pf_sig_verify_fn). One implementation for the bootloader's slots and the
 * host's images in memory. */
#include <string.h>

#include "peerflash/pf_bytes.h"
#include "peerflash/pf_digest.h"
#include "peerflash/pf_mcuboot.h"

#define SIG_MAX 128u /* largest signature TLV */

int pf_mcuboot_parse_header(const uint8_t hdr[32], pf_mcuboot_info *out, pf_diag *diag)
{
    if (!hdr || !out)
        return PF_ERR_ARG;
    memset(out, 0, sizeof *out);
    uint32_t magic = pf_get_le32(hdr);
    if (magic != PF_MCUBOOT_MAGIC)
        return pf_diag_set(diag, PF_ERR_FORMAT, "no image: header magic is 0x%08lx, not 0x96f3b83d",
                           (unsigned long)magic);
    out->load_addr = pf_get_le32(hdr + 4);
    out->hdr_size = pf_get_le16(hdr + 8);
    out->protect_tlv_size = pf_get_le16(hdr + 10);
    out->img_size = pf_get_le32(hdr + 12);
    out->flags = pf_get_le32(hdr + 16);
    out->version.major = hdr[20];
    out->version.minor = hdr[21];
    out->version.revision = pf_get_le16(hdr + 22);
    out->version.build = pf_get_le32(hdr + 24);
    if (out->hdr_size < PF_MCUBOOT_HEADER_SIZE)
        return pf_diag_set(diag, PF_ERR_FORMAT, "image header size %u is below 32", (unsigned)out->hdr_size);
    return PF_OK;
}

int pf_mcuboot_version_cmp(const pf_mcuboot_version *a, const pf_mcuboot_version *b)
{
    if (a->major != b->major)
        return a->major < b->major ? -1 : 1;
    if (a->minor != b->minor)
        return a->minor < b->minor ? -1 : 1;
    if (a->revision != b->revision)
        return a->revision < b->revision ? -1 : 1;
    return 0;
}

int pf_mcuboot_bounds(const pf_mcuboot_check_config *c, pf_mcuboot_info *info, uint32_t *hashed)
{
    if (!c || !c->read || !info || !hashed)
        return PF_ERR_ARG;
    pf_diag *d = c->diag;
    uint8_t hdr[PF_MCUBOOT_HEADER_SIZE], t[4];
    if (c->limit < PF_MCUBOOT_HEADER_SIZE)
        return pf_diag_set(d, PF_ERR_FORMAT, "%lu bytes are too few for an image header (32)",
                           (unsigned long)c->limit);
    int r = c->read(c->ctx, 0, hdr, sizeof hdr);
    if (r < 0)
        return r;
    r = pf_mcuboot_parse_header(hdr, info, d);
    if (r < 0)
        return r;
    uint64_t h = (uint64_t)info->hdr_size + info->img_size + info->protect_tlv_size;
    if (h + 4 > c->limit)
        return pf_diag_set(d, PF_ERR_FORMAT, "image of %lu bytes does not fit the %lu-byte slot",
                           (unsigned long)(h + 4), (unsigned long)c->limit);
    if (info->protect_tlv_size) {
        if (info->protect_tlv_size < 4)
            return pf_diag_set(d, PF_ERR_FORMAT, "protected TLV size %u too small", (unsigned)info->protect_tlv_size);
        r = c->read(c->ctx, info->hdr_size + info->img_size, t, 4);
        if (r < 0)
            return r;
        if (pf_get_le16(t) != PF_MCUBOOT_TLV_PROT_INFO_MAGIC || pf_get_le16(t + 2) != info->protect_tlv_size)
            return pf_diag_set(d, PF_ERR_FORMAT, "protected TLV area header is %04x/%u, want 6908/%u",
                               (unsigned)pf_get_le16(t), (unsigned)pf_get_le16(t + 2),
                               (unsigned)info->protect_tlv_size);
    }
    r = c->read(c->ctx, (uint32_t)h, t, 4);
    if (r < 0)
        return r;
    if (pf_get_le16(t) != PF_MCUBOOT_TLV_INFO_MAGIC)
        return pf_diag_set(d, PF_ERR_FORMAT, "no TLV area after the image body (magic 0x%04x at offset %lu)",
                           (unsigned)pf_get_le16(t), (unsigned long)h);
    uint32_t tot = pf_get_le16(t + 2);
    if (tot < 4 || h + tot > c->limit)
        return pf_diag_set(d, PF_ERR_FORMAT, "TLV area of %lu bytes overruns the slot", (unsigned long)tot);
    info->total_size = (uint32_t)h + tot;
    *hashed = (uint32_t)h;
    return PF_OK;
}

static int hash_range(const pf_mcuboot_check_config *c, uint32_t len, uint8_t out[32])
{
    pf_digest dg;
    int r = pf_digest_begin(&dg, PF_DIGEST_SHA256);
    if (r < 0)
        return r;
    for (uint32_t off = 0; off < len;) {
        uint32_t n = len - off < c->buf_size ? len - off : c->buf_size;
        r = c->read(c->ctx, off, c->buf, n);
        if (r < 0) {
            pf_digest_finish(&dg, out);
            return r;
        }
        pf_digest_update(&dg, c->buf, n);
        off += n;
    }
    return pf_digest_finish(&dg, out);
}

int pf_mcuboot_check(const pf_mcuboot_check_config *c, pf_mcuboot_info *info)
{
    if (!c || !c->read || !info || !c->buf || !c->buf_size || (c->pubkey && !c->sig_verify))
        return PF_ERR_ARG;
    pf_diag *d = c->diag;
    const char *name = c->name ? c->name : "image";
    uint32_t hlen;
    int r = pf_mcuboot_bounds(c, info, &hlen);
    if (r < 0) {
        if (c->name)
            pf_diag_prefix(d, c->name);
        return r;
    }
    uint8_t calc[32], key_hash[32];
    r = hash_range(c, hlen, calc);
    if (r < 0)
        return r;
    if (c->pubkey && !c->key_hash) {
        pf_digest dg;
        if ((r = pf_digest_begin(&dg, PF_DIGEST_SHA256)) < 0)
            return r;
        pf_digest_update(&dg, c->pubkey, c->pubkey_len);
        pf_digest_finish(&dg, key_hash);
    } else if (c->pubkey) {
        memcpy(key_hash, c->key_hash, 32);
    }

    /* walk the TLVs */
    int have_hash = 0, have_keyhash = 0, sig_checked = 0;
    uint8_t sig[SIG_MAX];
    uint32_t end = info->total_size;
    for (uint32_t p = hlen + 4; p < end;) {
        uint8_t e[4];
        if (end - p < 4)
            return pf_diag_set(d, PF_ERR_FORMAT, "%s: truncated TLV at offset %lu", name, (unsigned long)p);
        if ((r = c->read(c->ctx, p, e, 4)) < 0)
            return r;
        uint16_t type = pf_get_le16(e), len = pf_get_le16(e + 2);
        p += 4;
        if (len > end - p)
            return pf_diag_set(d, PF_ERR_FORMAT, "%s: TLV 0x%02x of %u bytes overruns the TLV area", name,
                               (unsigned)type, (unsigned)len);
        if (type == PF_MCUBOOT_TLV_SHA256) {
            if (len != 32)
                return pf_diag_set(d, PF_ERR_FORMAT, "%s: SHA-256 TLV has %u bytes", name, (unsigned)len);
            if ((r = c->read(c->ctx, p, info->hash, 32)) < 0)
                return r;
            if (memcmp(info->hash, calc, 32) != 0)
                return pf_diag_set(d, PF_ERR_AUTH, "%s: image SHA-256 does not match its TLV (corrupt image)", name);
            have_hash = 1;
        } else if (type == PF_MCUBOOT_TLV_KEYHASH && c->pubkey) {
            uint8_t kh[32];
            if (len == 32) {
                if ((r = c->read(c->ctx, p, kh, 32)) < 0)
                    return r;
                have_keyhash |= memcmp(kh, key_hash, 32) == 0;
            }
        } else if (type == PF_MCUBOOT_TLV_ECDSA_SIG && c->pubkey && have_hash && have_keyhash && !sig_checked) {
            if (len > sizeof sig)
                return pf_diag_set(d, PF_ERR_FORMAT, "%s: signature TLV of %u bytes", name, (unsigned)len);
            if ((r = c->read(c->ctx, p, sig, len)) < 0)
                return r;
            /* imgtool --pad-sig (MCUboot < 1.5) pads the DER signature
             * with zeros to 72 bytes: verify only the DER SEQUENCE */
            uint16_t slen = len;
            if (len >= 2 && sig[0] == 0x30 && sig[1] < 0x80 && (uint16_t)(sig[1] + 2) < len)
                slen = (uint16_t)(sig[1] + 2);
            if (c->sig_verify(c->sig_user, c->pubkey, c->pubkey_len, calc, sig, slen) < 0)
                return pf_diag_set(d, PF_ERR_AUTH, "%s: bad signature (ECDSA-P256 check failed)", name);
            sig_checked = 1;
        }
        p += len;
    }
    if (!have_hash)
        return pf_diag_set(d, PF_ERR_AUTH, "%s: image has no SHA-256 TLV", name);
    if (c->pubkey && !sig_checked)
        return pf_diag_set(d, PF_ERR_AUTH, "%s: image is not signed with the configured key (%s)", name,
                           have_keyhash ? "no ECDSA-P256 signature TLV" : "no matching key hash TLV");
    info->signature_ok = sig_checked;
    return PF_OK;
}
