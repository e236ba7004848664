/* A firmware image as sorted, non-overlapping segments of bytes at addresses.
 *
 * Image readers append records to a memory map; the flash job reads from it.
 * All storage is the caller's: an array of segment descriptors and an arena
 * for the bytes. Records that continue the previous one (the common case in
 * HEX and S-record files) extend it in place, so a contiguous image uses one
 * segment however many records it has. */
#ifndef PEERFLASH_PF_MEMMAP_H
#define PEERFLASH_PF_MEMMAP_H

#include <stddef.h>
#include <stdint.h>

#include "pf_err.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct pf_segment {
    uint32_t addr;
    uint32_t len;
    const uint8_t *data;
} pf_segment;

typedef struct pf_memmap {
    pf_segment *segs; /* caller's array, sorted by address after finish */
    size_t count;
    size_t _max;
    uint8_t *_arena; /* caller's byte storage */
    size_t _used;
    size_t _cap;
    int _sorted;
} pf_memmap;

void pf_memmap_init(pf_memmap *map, pf_segment *segs, size_t max_segs, uint8_t *arena, size_t arena_size);
/* Appends len bytes at addr (copied into the arena). PF_ERR_NOMEM when the
 * arena or segment array is full, PF_ERR_RANGE when addr+len passes 4 GiB. */
int pf_memmap_add(pf_memmap *map, uint32_t addr, const uint8_t *data, size_t len, pf_diag *diag);
/* Sorts the segments, joins touching ones, and reports the first overlap
 * (PF_ERR_OVERLAP naming both address ranges). Call once, after the last add. */
int pf_memmap_finish(pf_memmap *map, pf_diag *diag);
/* Checks that every byte lies in [start, start+size); PF_ERR_RANGE names the
 * first segment that does not. */
int pf_memmap_check_range(const pf_memmap *map, uint32_t start, uint32_t size, pf_diag *diag);
/* Total bytes of data (not counting gaps). */
uint32_t pf_memmap_bytes(const pf_memmap *map);
/* Lowest address and one past the highest; 0,0 for an empty map. */
void pf_memmap_bounds(const pf_memmap *map, uint32_t *lo, uint32_t *hi);
/* Copies [addr, addr+len) into out, filling bytes no segment covers with
 * fill. Returns the number of bytes that came from the image (0 = all fill). */
size_t pf_memmap_read(const pf_memmap *map, uint32_t addr, uint8_t *out, size_t len, uint8_t fill);

#ifdef __cplusplus
}
#endif
#endif
