/* Sinks that store parsed records in a pf_memmap. */
#include "peerflash/pf_image.h"

int pf_memmap_sink(void *user, uint32_t addr, const uint8_t *data, size_t len)
{
    return pf_memmap_add((pf_memmap *)user, addr, data, len, NULL);
}

int pf_memmap_dest_sink(void *user, uint32_t addr, const uint8_t *data, size_t len)
{
    pf_memmap_dest *d = user;
    return pf_memmap_add(d->map, addr, data, len, d->diag);
}
