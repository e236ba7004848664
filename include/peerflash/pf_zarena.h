/* zlib's memory on a caller arena, never the heap: a bump allocator whose
 * two functions have zlib's alloc_func/free_func signatures (voidpf is
 * void *, uInt is unsigned int), so a z_stream takes them as they are:
 *
 *   pf_zarena_init(&arena, mem, sizeof mem);
 *   PF_ZARENA_ATTACH(&z, &arena);   (z.zalloc, z.zfree, z.opaque)
 *
 * Blocks start 16-byte aligned; freeing one does nothing; pf_zarena_reset
 * frees everything for the next stream. Pure code: the firmware and the
 * agent use it without linking zlib here. */
#ifndef PEERFLASH_PF_ZARENA_H
#define PEERFLASH_PF_ZARENA_H

#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct pf_zarena {
    unsigned char *base;
    size_t size;
    size_t used; /* bytes from base to the end of the last block */
} pf_zarena;

void pf_zarena_init(pf_zarena *a, void *mem, size_t size);
void pf_zarena_reset(pf_zarena *a);
/* items * size bytes, or NULL (Z_NULL) when the arena has no room. */
void *pf_zarena_alloc(void *arena, unsigned items, unsigned size);
void pf_zarena_free(void *arena, void *block);
/* Points a z_stream's allocator at arena a (a macro: this header does not
 * include zlib.h). */
#define PF_ZARENA_ATTACH(zs, a) ((zs)->zalloc = pf_zarena_alloc, (zs)->zfree = pf_zarena_free, (zs)->opaque = (a))

#ifdef __cplusplus
}
#endif
#endif
