/* The state journal, the swap-move upgrade and the boot decision.
 * Byte layouts and the reasoning for power-loss safety: docs/BOOTLOADER.md. */
#include <string.h>

#include "boot_internal.h"
#include "peerflash/pf_bytes.h"
#include "peerflash/pf_digest.h"

const char *pf_boot_state_name(int state)
{
    switch (state) {
    case PF_BOOT_IDLE: return "idle";
    case PF_BOOT_RECEIVING: return "receiving";
    case PF_BOOT_PENDING: return "pending";
    case PF_BOOT_SWAPPING: return "swapping";
    case PF_BOOT_TRIAL: return "trial";
    case PF_BOOT_REVERTING: return "reverting";
    default: return "?";
    }
}

/* ---- journal records ------------------------------------------------------ */

static void rec_encode(const pf_boot_record *r, uint8_t *p, uint32_t rec_size)
{
    memset(p, 0, rec_size);
    pf_put_le32(p + 0, PF_BOOT_RECORD_MAGIC);
    pf_put_le32(p + 4, r->seq);
    p[8] = r->state;
    p[9] = r->flags;
    pf_put_le16(p + 10, r->step);
    pf_put_le16(p + 12, r->nsec);
    pf_put_le32(p + 16, r->size);
    pf_put_le32(p + 20, r->received);
    memcpy(p + 24, r->hash, 32);
    pf_put_le32(p + 60, pf_crc32(0, p, 60));
}

static int rec_decode(const uint8_t *p, pf_boot_record *r)
{
    if (pf_get_le32(p) != PF_BOOT_RECORD_MAGIC || pf_get_le32(p + 60) != pf_crc32(0, p, 60))
        return 0;
    r->seq = pf_get_le32(p + 4);
    r->state = p[8];
    r->flags = p[9];
    r->step = pf_get_le16(p + 10);
    r->nsec = pf_get_le16(p + 12);
    r->size = pf_get_le32(p + 16);
    r->received = pf_get_le32(p + 20);
    memcpy(r->hash, p + 24, 32);
    return r->state >= PF_BOOT_IDLE && r->state <= PF_BOOT_REVERTING;
}

static int is_erased(const uint8_t *p, uint32_t n, uint8_t ev)
{
    for (uint32_t i = 0; i < n; i++)
        if (p[i] != ev)
            return 0;
    return 1;
}

static uint32_t rec_off(const pf_boot *b, int unit, uint32_t idx)
{
    return b->cfg.state_off + (uint32_t)unit * b->cfg.flash->erase_size + idx * b->_rec_size;
}

static int sync_flash(const pf_boot *b)
{
    const pf_flash *f = b->cfg.flash;
    return f->sync ? f->sync(f->ctx) : PF_OK;
}

int pf_boot_write_record(pf_boot *b, const pf_boot_record *rec)
{
    const pf_flash *f = b->cfg.flash;
    pf_boot_record r = *rec;
    r.seq = b->rec.seq + 1;
    int unit = b->_active;
    uint32_t idx = b->_next;
    if (unit < 0 || idx >= b->_per_unit) {
        /* start the other unit: erase it, then the record goes first. The
         * current unit keeps the newest valid record until this one lands. */
        unit = unit < 0 ? 0 : 1 - unit;
        idx = 0;
        int e = f->erase(f->ctx, rec_off(b, unit, 0));
        if (e < 0)
            return pf_diag_set(b->cfg.diag, e, "state journal: erase failed");
    }
    rec_encode(&r, b->cfg.buf, b->_rec_size);
    int e = f->prog(f->ctx, rec_off(b, unit, idx), b->cfg.buf, b->_rec_size);
    if (e < 0)
        return pf_diag_set(b->cfg.diag, e, "state journal: program failed");
    e = sync_flash(b);
    if (e < 0)
        return e;
    b->_active = unit;
    b->_next = idx + 1;
    b->rec = r;
    return PF_OK;
}

static int journal_load(pf_boot *b)
{
    const pf_flash *f = b->cfg.flash;
    int best_unit = -1;
    uint32_t used[2] = {0, 0};
    pf_boot_record best;
    memset(&best, 0, sizeof best);
    for (int u = 0; u < 2; u++) {
        for (uint32_t i = 0; i < b->_per_unit; i++) {
            int r = f->read(f->ctx, rec_off(b, u, i), b->cfg.buf, b->_rec_size);
            if (r < 0)
                return r;
            if (is_erased(b->cfg.buf, b->_rec_size, f->erase_value))
                continue;
            used[u] = i + 1;
            pf_boot_record rec;
            if (rec_decode(b->cfg.buf, &rec) && (best_unit < 0 || rec.seq > best.seq)) {
                best = rec;
                best_unit = u;
            }
        }
    }
    if (best_unit < 0) {
        memset(&b->rec, 0, sizeof b->rec);
        b->rec.state = PF_BOOT_IDLE;
        b->_active = -1;
        b->_next = 0;
    } else {
        b->rec = best;
        b->_active = best_unit;
        b->_next = used[best_unit];
    }
    return PF_OK;
}

int pf_boot_open(pf_boot *b, const pf_boot_config *cfg)
{
    if (!b || !cfg || !cfg->flash || !cfg->buf)
        return PF_ERR_ARG;
    memset(b, 0, sizeof *b);
    b->cfg = *cfg;
    const pf_flash *f = cfg->flash;
    pf_diag *d = cfg->diag;
    uint32_t E = f->erase_size;
    if (!f->read || !f->prog || !f->erase || !f->prog_size || !f->read_size || !E || E % f->prog_size ||
        f->read_size > PF_BOOT_MAX_READ_SIZE)
        return pf_diag_set(d, PF_ERR_ARG, "flash geometry unusable (read %lu, prog %lu, erase %lu)",
                           (unsigned long)f->read_size, (unsigned long)f->prog_size, (unsigned long)E);
    uint32_t rs = PF_BOOT_RECORD_SIZE;
    while (rs % f->prog_size || rs % f->read_size)
        rs += PF_BOOT_RECORD_SIZE;
    b->_rec_size = rs;
    b->_per_unit = E / rs;
    if (cfg->buf_size < rs || cfg->buf_size % f->prog_size || cfg->buf_size % f->read_size || E % cfg->buf_size)
        return pf_diag_set(d, PF_ERR_ARG, "work buffer of %lu bytes: need >= %lu, a multiple of %lu dividing %lu",
                           (unsigned long)cfg->buf_size, (unsigned long)rs, (unsigned long)f->prog_size,
                           (unsigned long)E);
    if (!cfg->slot_size || cfg->slot_size % E || cfg->primary_off % E || cfg->secondary_off % E ||
        cfg->state_off % E || (uint64_t)cfg->primary_off + cfg->slot_size + E > f->size ||
        (uint64_t)cfg->secondary_off + cfg->slot_size > f->size || (uint64_t)cfg->state_off + 2 * E > f->size ||
        cfg->slot_size / E > 0x5555u)
        return pf_diag_set(d, PF_ERR_ARG, "slot layout does not fit the flash or is not erase-aligned");
    /* the three areas must not overlap */
    uint64_t a0 = cfg->primary_off, a1 = a0 + cfg->slot_size + E;
    uint64_t s0 = cfg->secondary_off, s1 = s0 + cfg->slot_size;
    uint64_t j0 = cfg->state_off, j1 = j0 + 2 * (uint64_t)E;
    if ((a0 < s1 && s0 < a1) || (a0 < j1 && j0 < a1) || (s0 < j1 && j0 < s1))
        return pf_diag_set(d, PF_ERR_ARG, "primary, secondary and state areas overlap");
    if (cfg->pubkey) {
        if (!cfg->sig_verify)
            return pf_diag_set(d, PF_ERR_ARG, "a public key needs a sig_verify function");
        pf_digest dg;
        int r = pf_digest_begin(&dg, PF_DIGEST_SHA256);
        if (r < 0)
            return r;
        pf_digest_update(&dg, cfg->pubkey, cfg->pubkey_len);
        pf_digest_finish(&dg, b->_key_hash);
    }
    return journal_load(b);
}

/* ---- swap-move -------------------------------------------------------------- */

/* Erases the unit at dst and copies the unit at src into it. Idempotent as
 * long as src is unchanged: the step order guarantees that. */
static int copy_unit(pf_boot *b, uint32_t dst, uint32_t src)
{
    const pf_flash *f = b->cfg.flash;
    uint32_t E = f->erase_size;
    int r = f->erase(f->ctx, dst);
    if (r < 0)
        return r;
    for (uint32_t o = 0; o < E; o += b->cfg.buf_size) {
        r = f->read(f->ctx, src + o, b->cfg.buf, b->cfg.buf_size);
        if (r < 0)
            return r;
        if (is_erased(b->cfg.buf, b->cfg.buf_size, f->erase_value))
            continue; /* already erased: programming it would change nothing */
        r = f->prog(f->ctx, dst + o, b->cfg.buf, b->cfg.buf_size);
        if (r < 0)
            return r;
    }
    return sync_flash(b);
}

/* Step k of 3n: k < n moves primary unit n-1-k up by one; then for each unit
 * i, 2i copies secondary[i] to primary[i] and 2i+1 copies the old image's
 * unit i (now at primary[i+1]) to secondary[i]. */
static int swap_step(pf_boot *b, uint32_t k, uint32_t n)
{
    uint32_t E = b->cfg.flash->erase_size, P = b->cfg.primary_off, S = b->cfg.secondary_off;
    if (k < n) {
        uint32_t i = n - 1 - k;
        return copy_unit(b, P + (i + 1) * E, P + i * E);
    }
    k -= n;
    uint32_t i = k / 2;
    if (k % 2 == 0)
        return copy_unit(b, P + i * E, S + i * E);
    return copy_unit(b, S + i * E, P + (i + 1) * E);
}

static int run_swap(pf_boot *b)
{
    uint32_t n = b->rec.nsec;
    if (n == 0 || n > b->cfg.slot_size / b->cfg.flash->erase_size)
        return pf_diag_set(b->cfg.diag, PF_ERR_STATE, "state journal: swap of %lu units is impossible",
                           (unsigned long)n);
    while (b->rec.step < 3 * n) {
        int r = swap_step(b, b->rec.step, n);
        if (r < 0)
            return pf_diag_set(b->cfg.diag, r, "swap step %u of %lu: flash failed", (unsigned)b->rec.step + 1,
                               (unsigned long)(3 * n));
        pf_boot_record nr = b->rec;
        nr.step++;
        r = pf_boot_write_record(b, &nr);
        if (r < 0)
            return r;
    }
    return PF_OK;
}

/* Units the swap must cover: both images (the larger), or the whole slot
 * when primary holds no parsable image. */
static uint32_t swap_units(pf_boot *b, uint32_t new_total)
{
    uint32_t E = b->cfg.flash->erase_size, hlen, tlv;
    pf_mcuboot_info old;
    uint32_t old_total = b->cfg.slot_size;
    pf_diag *saved = b->cfg.diag;
    b->cfg.diag = NULL;
    if (pf_boot_image_bounds(b, b->cfg.primary_off, &old, &hlen, &tlv) == PF_OK)
        old_total = old.total_size;
    b->cfg.diag = saved;
    uint32_t t = old_total > new_total ? old_total : new_total;
    return (t + E - 1) / E;
}

int pf_boot_run(pf_boot *b, pf_boot_result *res)
{
    if (!b || !res)
        return PF_ERR_ARG;
    memset(res, 0, sizeof *res);
    int first_trial = b->rec.state == PF_BOOT_TRIAL; /* reset during trial: revert */
    for (int guard = 0; guard < 16; guard++) {
        pf_boot_record nr = b->rec;
        int r;
        switch (b->rec.state) {
        case PF_BOOT_PENDING: {
            pf_mcuboot_info info;
            r = pf_boot_check_slot(b, 1, &info);
            if (r == PF_ERR_IO)
                return r;
            if (r < 0) { /* not installable after all: forget it */
                nr.state = PF_BOOT_IDLE;
                nr.flags = 0;
            } else {
                nr.state = PF_BOOT_SWAPPING;
                nr.step = 0;
                nr.nsec = (uint16_t)swap_units(b, info.total_size);
            }
            r = pf_boot_write_record(b, &nr);
            if (r < 0)
                return r;
            continue;
        }
        case PF_BOOT_SWAPPING:
        case PF_BOOT_REVERTING:
            r = run_swap(b);
            if (r < 0)
                return r;
            res->swapped = 1;
            nr = b->rec;
            if (b->rec.state == PF_BOOT_SWAPPING) {
                nr.state = (nr.flags & PF_BOOT_F_PERMANENT) ? PF_BOOT_IDLE : PF_BOOT_TRIAL;
                nr.flags = 0;
            } else {
                nr.state = PF_BOOT_IDLE;
                nr.flags = PF_BOOT_F_REVERTED;
                res->reverted = 1;
            }
            r = pf_boot_write_record(b, &nr);
            if (r < 0)
                return r;
            continue;
        case PF_BOOT_TRIAL:
            if (!first_trial) {
                r = pf_boot_check_slot(b, 0, &res->image);
                if (r == PF_OK) {
                    res->trial = 1;
                    return PF_OK;
                }
                if (r == PF_ERR_IO)
                    return r;
            }
            /* not confirmed before this reset, or the new image is bad: undo */
            first_trial = 0;
            nr.state = PF_BOOT_REVERTING;
            nr.step = 0;
            r = pf_boot_write_record(b, &nr);
            if (r < 0)
                return r;
            continue;
        default: /* IDLE, RECEIVING: primary is what runs */
            r = pf_boot_check_slot(b, 0, &res->image);
            if (r < 0)
                return r;
            if (b->rec.flags & PF_BOOT_F_REVERTED)
                res->reverted = 1;
            return PF_OK;
        }
    }
    return pf_diag_set(b->cfg.diag, PF_ERR_STATE, "bootloader made no progress (state %s)",
                       pf_boot_state_name(b->rec.state));
}

int pf_boot_confirm(pf_boot *b)
{
    if (!b)
        return PF_ERR_ARG;
    if (b->rec.state == PF_BOOT_IDLE || b->rec.state == PF_BOOT_RECEIVING || b->rec.state == PF_BOOT_PENDING)
        return PF_OK; /* the running image is already permanent */
    if (b->rec.state != PF_BOOT_TRIAL)
        return pf_diag_set(b->cfg.diag, PF_ERR_STATE, "cannot confirm in state %s",
                           pf_boot_state_name(b->rec.state));
    pf_boot_record nr = b->rec;
    nr.state = PF_BOOT_IDLE;
    nr.flags = 0;
    return pf_boot_write_record(b, &nr);
}

int pf_boot_request_install(pf_boot *b, int permanent, int allow_downgrade)
{
    if (!b)
        return PF_ERR_ARG;
    pf_diag *d = b->cfg.diag;
    int st = b->rec.state;
    if (st == PF_BOOT_TRIAL || st == PF_BOOT_SWAPPING || st == PF_BOOT_REVERTING)
        return pf_diag_set(d, PF_ERR_STATE, "an upgrade is in progress (state %s): confirm or reset first",
                           pf_boot_state_name(st));
    pf_mcuboot_info neu, cur;
    int r = pf_boot_check_slot(b, 1, &neu);
    if (r < 0)
        return r;
    pf_diag *saved = b->cfg.diag;
    b->cfg.diag = NULL;
    int have_cur = pf_boot_check_slot(b, 0, &cur) == PF_OK;
    b->cfg.diag = saved;
    if (have_cur && !allow_downgrade && pf_mcuboot_version_cmp(&neu.version, &cur.version) < 0)
        return pf_diag_set(d, PF_ERR_AUTH, "downgrade refused: new image is %u.%u.%u, running %u.%u.%u",
                           (unsigned)neu.version.major, (unsigned)neu.version.minor, (unsigned)neu.version.revision,
                           (unsigned)cur.version.major, (unsigned)cur.version.minor,
                           (unsigned)cur.version.revision);
    pf_boot_record nr = b->rec;
    if (st != PF_BOOT_RECEIVING && st != PF_BOOT_PENDING)
        memset(nr.hash, 0, sizeof nr.hash);
    nr.state = PF_BOOT_PENDING;
    nr.flags = permanent ? PF_BOOT_F_PERMANENT : 0;
    nr.step = 0;
    nr.nsec = 0;
    nr.size = neu.total_size;
    nr.received = nr.received > neu.total_size ? nr.received : neu.total_size;
    return pf_boot_write_record(b, &nr);
}
