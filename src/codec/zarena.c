/* zlib's allocator on a caller arena (see pf_zarena.h). */
#include <stdint.h>

#include "peerflash/pf_zarena.h"

void pf_zarena_init(pf_zarena *a, void *mem, size_t size)
{
    a->base = mem;
    a->size = mem ? size : 0;
    a->used = 0;
}

void pf_zarena_reset(pf_zarena *a)
{
    a->used = 0;
}

void *pf_zarena_alloc(void *arena, unsigned items, unsigned size)
{
    pf_zarena *a = arena;
    uintptr_t base = (uintptr_t)a->base, at = (base + a->used + 15u) & ~(uintptr_t)15u;
    uint64_t n = (uint64_t)items * size;
    if (at - base > a->size || n > a->size - (at - base))
        return NULL;
    a->used = (size_t)(at - base + n);
    return (void *)at;
}

void pf_zarena_free(void *arena, void *block)
{
    (void)arena;
    (void)block; /* the arena is reset as a whole for the next stream */
}
