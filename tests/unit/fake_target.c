#include "fake_target.h"

#include <string.h>

static int f_open(void *self, const pf_target_config *cfg)
{
    (void)self;
    (void)cfg;
    return PF_OK;
}
static int f_connect(void *self, pf_target_info *info)
{
    fake_target *f = self;
    *info = f->info;
    return PF_OK;
}
static int f_erase(void *self, uint32_t addr, uint32_t len)
{
    fake_target *f = self;
    f->erase_calls++;
    f->erased_bytes += len;
    memset(f->flash + addr, 0xFF, len);
    return PF_OK;
}
static int f_erase_all(void *self)
{
    fake_target *f = self;
    f->erase_calls++;
    memset(f->flash, 0xFF, sizeof f->flash);
    return PF_OK;
}
static int f_begin(void *self, uint32_t addr, uint32_t len)
{
    fake_target *f = self;
    f->begin_calls++;
    f->in_run_end = addr + len;
    if (f->info.geom.erase_style == PF_ERASE_BY_WRITE && f->info.geom.n_regions) {
        /* like ESP FLASH_BEGIN: erase every unit the run touches */
        uint32_t u = f->info.geom.regions[0].unit;
        uint32_t s = addr / u * u, e = (addr + len + u - 1) / u * u;
        memset(f->flash + s, 0xFF, e - s);
        f->erased_bytes += e - s;
    }
    return PF_OK;
}
static int f_write(void *self, uint32_t addr, const uint8_t *data, uint32_t len)
{
    fake_target *f = self;
    f->write_calls++;
    if (f->fail_write_at && f->write_calls == f->fail_write_at)
        return PF_ERR_TARGET;
    if (addr % f->info.geom.write_align || len % f->info.geom.write_align || len > f->info.geom.write_max)
        return PF_ERR_ARG;
    if (addr + len > f->in_run_end)
        return PF_ERR_ARG;
    for (uint32_t i = 0; i < len; i++) {
        uint8_t v = data[i];
        if (f->corrupt_addr && addr + i == f->corrupt_addr)
            v ^= 0x10;
        if (f->info.geom.erase_style == PF_ERASE_BY_WRITE && !f->info.geom.n_regions)
            f->flash[addr + i] = v; /* page write erases itself (AVR) */
        else
            f->flash[addr + i] &= v; /* NOR: programming only clears bits */
    }
    return PF_OK;
}
static int f_end(void *self)
{
    fake_target *f = self;
    f->in_run_end = 0;
    return PF_OK;
}
static int f_read(void *self, uint32_t addr, uint8_t *buf, uint32_t len)
{
    fake_target *f = self;
    f->read_calls++;
    memcpy(buf, f->flash + addr, len);
    return (int)len;
}
static int f_digest(void *self, uint32_t addr, uint32_t len, uint8_t *out)
{
    fake_target *f = self;
    f->digest_calls++;
    pf_digest d;
    pf_digest_begin(&d, f->info.digest);
    pf_digest_update(&d, f->flash + addr, len);
    return pf_digest_finish(&d, out);
}
static int f_run(void *self)
{
    ((fake_target *)self)->ran = 1;
    return PF_OK;
}

static void f_known_erased(void *self, uint32_t addr, uint32_t len)
{
    fake_target *f = self;
    f->known_erased_calls++;
    f->known_erased_addr = addr;
    f->known_erased_len = len;
}

const pf_target_ops fake_ops = {
    .name = "fake",
    .summary = "in-memory test target",
    .ctx_size = sizeof(fake_target),
    .open = f_open,
    .connect = f_connect,
    .erase = f_erase,
    .erase_all = f_erase_all,
    .write_begin = f_begin,
    .write = f_write,
    .write_end = f_end,
    .read = f_read,
    .digest = f_digest,
    .known_erased = f_known_erased,
    .run = f_run,
};

void fake_init(fake_target *f, pf_erase_style style, uint32_t erase_unit, int digest, int can_read)
{
    memset(f, 0, sizeof *f);
    memset(f->flash, 0xFF, sizeof f->flash);
    pf_target_info *in = &f->info;
    strcpy(in->chip, "fake");
    in->geom.flash_start = 0;
    in->geom.flash_size = sizeof f->flash;
    in->geom.erased_value = 0xFF;
    in->geom.erase_style = style;
    in->geom.write_align = style == PF_ERASE_BY_WRITE && !erase_unit ? 128 : 4;
    in->geom.write_max = style == PF_ERASE_BY_WRITE && !erase_unit ? 128 : 256;
    if (erase_unit) {
        in->geom.n_regions = 1;
        in->geom.regions[0] = (pf_erase_region){0, sizeof f->flash, erase_unit};
    }
    in->caps = PF_CAP_RUN | PF_CAP_ERASE_ALL | (can_read ? PF_CAP_READ : 0) | (digest ? PF_CAP_DIGEST : 0);
    in->digest = digest ? PF_DIGEST_MD5 : PF_DIGEST_NONE;
}
