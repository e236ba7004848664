/* Raw binary reader: the bytes themselves, placed at a base address. */
#include <string.h>

#include "peerflash/pf_image.h"

void pf_bin_init(pf_bin *p, uint32_t base, pf_image_sink sink, void *user, pf_diag *diag)
{
    memset(p, 0, sizeof *p);
    p->base = base;
    p->_sink = sink;
    p->_user = user;
    p->_diag = diag;
}

int pf_bin_feed(pf_bin *p, const uint8_t *data, size_t n)
{
    if (!p || (!data && n))
        return PF_ERR_ARG;
    if (p->_err)
        return p->_err;
    if (n == 0)
        return PF_OK;
    uint64_t addr = (uint64_t)p->base + p->offset;
    if (p->_full || addr + n > 0x100000000ull) {
        if (p->_full)
            addr = 0x100000000ull;
        uint64_t fits = 0x100000000ull - addr; /* bytes still below 4 GiB */
        return p->_err = pf_diag_set(p->_diag, PF_ERR_FORMAT,
                                     "offset 0x%llx: data loaded at 0x%08lx runs past the 4 GiB address space",
                                     (unsigned long long)(addr - p->base + fits), (unsigned long)p->base);
    }
    if (p->_diag)
        p->_diag->text[0] = '\0';
    int rc = p->_sink(p->_user, (uint32_t)addr, data, n);
    if (rc < 0) {
        if (p->_diag && p->_diag->text[0]) {
            char where[32];
            pf_format(where, sizeof where, "offset 0x%lx", (unsigned long)p->offset);
            pf_diag_prefix(p->_diag, where);
        } else {
            pf_diag_set(p->_diag, rc, "offset 0x%lx: cannot store %zu bytes at 0x%08lx: %s", (unsigned long)p->offset,
                        n, (unsigned long)addr, pf_strerror(rc));
        }
        return p->_err = rc;
    }
    p->offset += (uint32_t)n;
    if (addr + n == 0x100000000ull)
        p->_full = 1; /* the next byte would be at 4 GiB */
    return PF_OK;
}

int pf_bin_finish(pf_bin *p)
{
    if (!p)
        return PF_ERR_ARG;
    if (p->_err)
        return p->_err;
    if (p->offset == 0)
        return p->_err = pf_diag_set(p->_diag, PF_ERR_FORMAT, "empty file: a raw binary needs at least one byte");
    return PF_OK;
}
