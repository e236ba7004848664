/* Shared by the libFuzzer targets of the image readers: a sink that checks
 * every record and folds it into a digest, a splitter that cuts the input
 * into slices chosen from the input itself, and a hard assertion. */
#ifndef PF_FUZZ_COMMON_H
#define PF_FUZZ_COMMON_H

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "peerflash/pf_image.h"

#define FUZZ_ASSERT(c)                                                               \
    do {                                                                             \
        if (!(c)) {                                                                  \
            fprintf(stderr, "%s:%d: invariant failed: %s\n", __FILE__, __LINE__, #c); \
            abort();                                                                 \
        }                                                                            \
    } while (0)

typedef struct fz_rec {
    uint64_t digest; /* FNV-1a over (addr, len, bytes) of every record */
    uint64_t bytes;
    uint32_t records;
    const uint8_t *lo, *hi; /* when set, data must point inside [lo, hi) (ELF) */
} fz_rec;

static inline void fz_mix(uint64_t *h, const void *p, size_t n)
{
    const uint8_t *b = p;
    for (size_t i = 0; i < n; i++) {
        *h ^= b[i];
        *h *= 1099511628211ull;
    }
}

static inline int fz_sink(void *user, uint32_t addr, const uint8_t *data, size_t len)
{
    fz_rec *r = user;
    FUZZ_ASSERT(len > 0);                                 /* readers never send empty records */
    FUZZ_ASSERT((uint64_t)addr + len <= 0x100000000ull); /* inside the 32-bit address space */
    FUZZ_ASSERT(data != NULL);
    if (r->lo)
        FUZZ_ASSERT(data >= r->lo && data + len <= r->hi);
    fz_mix(&r->digest, &addr, sizeof addr);
    fz_mix(&r->digest, &len, sizeof len);
    fz_mix(&r->digest, data, len);
    r->bytes += len;
    r->records++;
    return 0;
}

/* Next slice length: 0..31 bytes drawn from a generator seeded by the input. */
static inline size_t fz_next(uint32_t *rng, size_t left)
{
    *rng = *rng * 1103515245u + 12345u;
    size_t k = (*rng >> 16) % 32;
    return k < left ? k : left;
}

static inline uint32_t fz_seed(const uint8_t *data, size_t size)
{
    uint64_t h = 14695981039346656037ull;
    fz_mix(&h, data, size < 64 ? size : 64);
    return (uint32_t)(h ^ (h >> 32)) | 1u;
}

#endif
