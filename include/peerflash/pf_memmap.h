/* A firmware image as sorted, non-overlapping segments of bytes at addresses.
 *
 * Image readers append records to a memory map; the flash job reads from it.
 * All storage is the caller's: an array of segment descriptors and an arena
 * for the bytes. Records that continue the previous one (the common case in
 * HEX and S-record files) extend it in place, so a contiguous image uses one
 * segment however many records it has.
 *
 * A map may instead hold no bytes at all (pf_memmap_init_source): the readers
 * still append their records, but only the address ranges are kept, and
 * pf_memmap_read fetches the bytes from the caller's source (a file on an SD
 * card read again) each time the job asks. An updater with a few KiB of RAM
 * uses this to flash images larger than its memory. */
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

/* Where a map without an arena gets its bytes. read fills out[0..len) with
 * the image's bytes for [addr, addr+len); it need write only the bytes some
 * segment covers, and `expect` says how many those are (the source can stop
 * reading once it has found them). It returns PF_OK or a negative pf_err
 * with the cause in the source's own diag; the first error sticks in err. */
typedef struct pf_memmap_source {
    int (*read)(void *user, uint32_t addr, uint8_t *out, size_t len, size_t expect);
    void *user;
    int err; /* first error a read returned, 0 while none */
} pf_memmap_source;

typedef struct pf_memmap {
    pf_segment *segs; /* caller's array, sorted by address after finish */
    size_t count;
    size_t _max;
    uint8_t *_arena; /* caller's byte storage */
    size_t _used;
    size_t _cap;
    int _sorted;
    pf_memmap_source *_src; /* NULL: the bytes are in the arena */
} pf_memmap;

void pf_memmap_init(pf_memmap *map, pf_segment *segs, size_t max_segs, uint8_t *arena, size_t arena_size);
/* A map that keeps only address ranges (segment data stays NULL) and reads
 * its bytes from src on demand; src stays the caller's. */
void pf_memmap_init_source(pf_memmap *map, pf_segment *segs, size_t max_segs, pf_memmap_source *src);
/* The first error the source returned (PF_OK for a map with an arena or a
 * source that never failed). A job checks it after its reads. */
int pf_memmap_error(const pf_memmap *map);
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
 * fill. Returns the number of bytes that came from the image (0 = all fill).
 * With a source that fails, out is left as fill, 0 is returned and the error
 * is kept for pf_memmap_error. */
size_t pf_memmap_read(const pf_memmap *map, uint32_t addr, uint8_t *out, size_t len, uint8_t fill);

#ifdef __cplusplus
}
#endif
#endif
