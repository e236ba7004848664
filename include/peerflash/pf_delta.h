/* Host-side delta: computes a patch (pf_patch.h, docs/DELTA.md) from a base
 * image file to a new one, and reads/writes patch files. Uses malloc and
 * libdivsufsort (suffix sorting); the device never needs this, only the
 * applier in pf_patch.h. */
#ifndef PEERFLASH_PF_DELTA_H
#define PEERFLASH_PF_DELTA_H

#include <stddef.h>
#include <stdint.h>

#include "pf_err.h"
#include "pf_patch.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct pf_delta {
    pf_patch_header hdr; /* base/new sizes and SHA-256s, body length, records */
    uint8_t *body;       /* the records (uncompressed), malloc'd */
    uint32_t body_len;
} pf_delta;

/* Largest base or new image the diff takes (the suffix array is 4 bytes a
 * base byte): 64 MiB. */
#define PF_DELTA_MAX_SIZE (64u * 1024u * 1024u)

/* Computes the patch that turns old into neu (copy-with-differences and
 * inserts over a suffix array of old, as bsdiff does). */
int pf_delta_make(const uint8_t *old, uint32_t old_len, const uint8_t *neu, uint32_t new_len, pf_delta *out,
                  pf_diag *diag);
void pf_delta_free(pf_delta *d);

/* The patch file: header, then the body as one zlib stream (level 9,
 * 32 KiB window). *out is malloc'd. */
int pf_delta_encode_file(const pf_delta *d, uint8_t **out, size_t *out_len, pf_diag *diag);
/* Reads a patch file (checks header, body CRC, inflates) into *d. */
int pf_delta_decode_file(const uint8_t *file, size_t len, pf_delta *d, pf_diag *diag);
/* Applies d to old into a malloc'd *out of d->hdr.new_size bytes, checking
 * the base's and the result's SHA-256 against the header. */
int pf_delta_apply(const pf_delta *d, const uint8_t *old, uint32_t old_len, uint8_t **out, pf_diag *diag);

#ifdef __cplusplus
}
#endif
#endif
