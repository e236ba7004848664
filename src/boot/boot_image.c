/* The bootloader's reads of its flash, and the MCUboot image checks
 * (src/core/mcuboot.c) applied to its slots. */
#include <string.h>

#include "boot_internal.h"

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

/* pf_mcuboot_check's reader over one slot of the boot flash. */
typedef struct slot_reader {
    pf_boot *b;
    uint32_t base;
} slot_reader;

static int read_slot(void *ctx, uint32_t off, uint8_t *dst, uint32_t len)
{
    slot_reader *s = ctx;
    return pf_boot_read_any(s->b, s->base + off, dst, len);
}

static pf_mcuboot_check_config slot_check(pf_boot *b, slot_reader *s, const char *name)
{
    pf_mcuboot_check_config c = PF_MCUBOOT_CHECK_CONFIG_DEFAULT();
    c.read = read_slot;
    c.ctx = s;
    c.limit = b->cfg.slot_size;
    c.pubkey = b->cfg.pubkey;
    c.pubkey_len = b->cfg.pubkey_len;
    c.key_hash = b->cfg.pubkey ? b->_key_hash : NULL;
    c.sig_verify = b->cfg.sig_verify;
    c.sig_user = b->cfg.sig_user;
    c.buf = b->cfg.buf;
    c.buf_size = b->cfg.buf_size;
    c.name = name;
    c.diag = b->cfg.diag;
    return c;
}

int pf_boot_image_bounds(pf_boot *b, uint32_t base, pf_mcuboot_info *info, uint32_t *hlen, uint32_t *tlv_off)
{
    slot_reader s = {b, base};
    pf_mcuboot_check_config c = slot_check(b, &s, NULL);
    int r = pf_mcuboot_bounds(&c, info, hlen);
    if (r == PF_OK)
        *tlv_off = *hlen; /* the TLV area follows what the hash covers */
    return r;
}

int pf_boot_check_slot(pf_boot *b, int slot, pf_mcuboot_info *info)
{
    if (!b || !info || (slot != 0 && slot != 1))
        return PF_ERR_ARG;
    slot_reader s = {b, pf_boot_slot_off(b, slot)};
    pf_mcuboot_check_config c = slot_check(b, &s, slot ? "secondary" : "primary");
    return pf_mcuboot_check(&c, info);
}
