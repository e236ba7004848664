/* Flash geometry queries shared by the job and the drivers. */
#include "peerflash/pf_target.h"

int pf_geometry_unit(const pf_flash_geometry *g, uint32_t addr, uint32_t *unit_start, uint32_t *unit_size)
{
    if ((uint64_t)addr >= (uint64_t)g->flash_start + g->flash_size || addr < g->flash_start)
        return 0;
    for (unsigned i = 0; i < g->n_regions; i++) {
        const pf_erase_region *r = &g->regions[i];
        if (addr >= r->start && (uint64_t)addr < (uint64_t)r->start + r->size && r->unit) {
            *unit_size = r->unit;
            *unit_start = r->start + (addr - r->start) / r->unit * r->unit;
            return 1;
        }
    }
    uint32_t unit = g->write_align ? g->write_align : 1;
    *unit_size = unit;
    *unit_start = g->flash_start + (addr - g->flash_start) / unit * unit;
    return 1;
}
