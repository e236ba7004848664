/* MCUboot image checks over a pf_flash slot: header, bounds, TLVs, SHA-256,
 * key hash and signature (through the caller's pf_sig_verify_fn). */
#include <string.h>

#include "boot_internal.h"
#include "peerflash/pf_bytes.h"
#include "peerflash/pf_digest.h"

int pf_image_parse_header(const uint8_t hdr[32], pf_image_info *out, pf_diag *diag)
{
    if (!hdr || !out)
        return PF_ERR_ARG;
    memset(out, 0, sizeof *out);
    uint32_t magic = pf_get_le32(hdr);
    if (magic != PF_IMAGE_MAGIC)
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
    if (out->hdr_size < PF_IMAGE_HEADER_SIZE)
        return pf_diag_set(diag, PF_ERR_FORMAT, "image header size %u is below 32", (unsigned)out->hdr_size);
    return PF_OK;
}

int pf_image_version_cmp(const pf_image_version *a, const pf_image_version *b)
{
    if (a->major != b->major)
        return a->major < b->major ? -1 : 1;
    if (a->minor != b->minor)
        return a->minor < b->minor ? -1 : 1;
    if (a->revision != b->revision)
        return a->revision < b->revision ? -1 : 1;
    return 0;
}

int pf_boot_read_any(pf_boot *b, uint32_t off, uint8_t *dst, uint32_t len)
{
    const pf_flash *f = b->cfg.flash;
    uint32_t rs = f->read_size;
    if (rs <= 1)
        return f->read(f->ctx, off, dst, len);
    uint8_t bounce[PF_BOOT_MAX_READ_SIZE];
    while (len) {
        uint32_t base = off / rs * rs, skip = off - base;
        uint32_t n = rs - skip < len ? rs - skip : len;
        if (skip == 0 && len >= rs) { /* aligned middle: read directly */
            n = len / rs * rs;
            int r = f->read(f->ctx, off, dst, n);
            if (r < 0)
                return r;
        } else {
            int r = f->read(f->ctx, base, bounce, rs);
            if (r < 0)
                return r;
            memcpy(dst, bounce + skip, n);
        }
        off += n;
        dst += n;
        len -= n;
    }
    return PF_OK;
}

/* Reads the header and TLV info: fills info (without hash check), *hlen
 * (bytes covered by the hash) and *tlv_off. */
int pf_boot_image_bounds(pf_boot *b, uint32_t base, pf_image_info *info, uint32_t *hlen, uint32_t *tlv_off)
{
    pf_diag *d = b->cfg.diag;
    uint8_t hdr[PF_IMAGE_HEADER_SIZE], t[4];
    int r = pf_boot_read_any(b, base, hdr, sizeof hdr);
    if (r < 0)
        return r;
    r = pf_image_parse_header(hdr, info, d);
    if (r < 0)
        return r;
    uint64_t h = (uint64_t)info->hdr_size + info->img_size + info->protect_tlv_size;
    if (h + 4 > b->cfg.slot_size)
        return pf_diag_set(d, PF_ERR_FORMAT, "image of %lu bytes does not fit the %lu-byte slot",
                           (unsigned long)(h + 4), (unsigned long)b->cfg.slot_size);
    if (info->protect_tlv_size) {
        if (info->protect_tlv_size < 4)
            return pf_diag_set(d, PF_ERR_FORMAT, "protected TLV size %u too small", (unsigned)info->protect_tlv_size);
        r = pf_boot_read_any(b, base + info->hdr_size + info->img_size, t, 4);
        if (r < 0)
            return r;
        if (pf_get_le16(t) != PF_IMAGE_TLV_PROT_INFO_MAGIC || pf_get_le16(t + 2) != info->protect_tlv_size)
            return pf_diag_set(d, PF_ERR_FORMAT, "protected TLV area header is %04x/%u, want 6908/%u",
                               (unsigned)pf_get_le16(t), (unsigned)pf_get_le16(t + 2),
                               (unsigned)info->protect_tlv_size);
    }
    r = pf_boot_read_any(b, base + (uint32_t)h, t, 4);
    if (r < 0)
        return r;
    if (pf_get_le16(t) != PF_IMAGE_TLV_INFO_MAGIC)
        return pf_diag_set(d, PF_ERR_FORMAT, "no TLV area after the image body (magic 0x%04x at offset %lu)",
                           (unsigned)pf_get_le16(t), (unsigned long)h);
    uint32_t tot = pf_get_le16(t + 2);
    if (tot < 4 || h + tot > b->cfg.slot_size)
        return pf_diag_set(d, PF_ERR_FORMAT, "TLV area of %lu bytes overruns the slot", (unsigned long)tot);
    info->total_size = (uint32_t)h + tot;
    *hlen = (uint32_t)h;
    *tlv_off = (uint32_t)h;
    return PF_OK;
}

int pf_boot_check_slot(pf_boot *b, int slot, pf_image_info *info)
{
    if (!b || !info || (slot != 0 && slot != 1))
        return PF_ERR_ARG;
    pf_diag *d = b->cfg.diag;
    const char *sname = slot ? "secondary" : "primary";
    uint32_t base = pf_boot_slot_off(b, slot), hlen, tlv;
    int r = pf_boot_image_bounds(b, base, info, &hlen, &tlv);
    if (r < 0) {
        pf_diag_prefix(d, sname);
        return r;
    }
    /* hash what the SHA-256 TLV covers */
    pf_digest dg;
    uint8_t calc[32];
    r = pf_digest_begin(&dg, PF_DIGEST_SHA256);
    if (r < 0)
        return r;
    for (uint32_t off = 0; off < hlen;) {
        uint32_t n = hlen - off < b->cfg.buf_size ? hlen - off : b->cfg.buf_size;
        r = pf_boot_read_any(b, base + off, b->cfg.buf, n);
        if (r < 0) {
            pf_digest_finish(&dg, calc);
            return r;
        }
        pf_digest_update(&dg, b->cfg.buf, n);
        off += n;
    }
    pf_digest_finish(&dg, calc);

    /* walk the TLVs */
    int have_hash = 0, have_keyhash = 0, sig_checked = 0;
    uint8_t sig[PF_BOOT_MAX_SIG];
    uint32_t end = info->total_size;
    for (uint32_t p = tlv + 4; p < end;) {
        uint8_t e[4];
        if (end - p < 4)
            return pf_diag_set(d, PF_ERR_FORMAT, "%s: truncated TLV at offset %lu", sname, (unsigned long)p);
        r = pf_boot_read_any(b, base + p, e, 4);
        if (r < 0)
            return r;
        uint16_t type = pf_get_le16(e), len = pf_get_le16(e + 2);
        p += 4;
        if (len > end - p)
            return pf_diag_set(d, PF_ERR_FORMAT, "%s: TLV 0x%02x of %u bytes overruns the TLV area", sname,
                               (unsigned)type, (unsigned)len);
        if (type == PF_IMAGE_TLV_SHA256) {
            if (len != 32)
                return pf_diag_set(d, PF_ERR_FORMAT, "%s: SHA-256 TLV has %u bytes", sname, (unsigned)len);
            r = pf_boot_read_any(b, base + p, info->hash, 32);
            if (r < 0)
                return r;
            if (memcmp(info->hash, calc, 32) != 0)
                return pf_diag_set(d, PF_ERR_AUTH, "%s: image SHA-256 does not match its TLV (corrupt image)", sname);
            have_hash = 1;
        } else if (type == PF_IMAGE_TLV_KEYHASH && b->cfg.pubkey) {
            uint8_t kh[32];
            if (len == 32) {
                r = pf_boot_read_any(b, base + p, kh, 32);
                if (r < 0)
                    return r;
                have_keyhash |= memcmp(kh, b->_key_hash, 32) == 0;
            }
        } else if (type == PF_IMAGE_TLV_ECDSA_SIG && b->cfg.pubkey && have_hash && have_keyhash && !sig_checked) {
            if (len > sizeof sig)
                return pf_diag_set(d, PF_ERR_FORMAT, "%s: signature TLV of %u bytes", sname, (unsigned)len);
            r = pf_boot_read_any(b, base + p, sig, len);
            if (r < 0)
                return r;
            /* imgtool --pad-sig (MCUboot < 1.5) pads the DER signature
             * with zeros to 72 bytes: verify only the DER SEQUENCE */
            uint16_t slen = len;
            if (len >= 2 && sig[0] == 0x30 && sig[1] < 0x80 && (uint16_t)(sig[1] + 2) < len)
                slen = (uint16_t)(sig[1] + 2);
            r = b->cfg.sig_verify(b->cfg.sig_user, b->cfg.pubkey, b->cfg.pubkey_len, calc, sig, slen);
            if (r < 0)
                return pf_diag_set(d, PF_ERR_AUTH, "%s: bad signature (ECDSA-P256 check failed)", sname);
            sig_checked = 1;
        }
        p += len;
    }
    if (!have_hash)
        return pf_diag_set(d, PF_ERR_AUTH, "%s: image has no SHA-256 TLV", sname);
    if (b->cfg.pubkey && !sig_checked)
        return pf_diag_set(d, PF_ERR_AUTH, "%s: image is not signed with the configured key (%s)", sname,
                           have_keyhash ? "no ECDSA-P256 signature TLV" : "no matching key hash TLV");
    info->signature_ok = sig_checked;
    return PF_OK;
}
