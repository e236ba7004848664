/* Delta patches for the agent (docs/DELTA.md is the byte-by-byte format).
 *
 * A patch turns a base image file (the image the device runs) into a new
 * image file. Its body is a sequence of records, each
 *   u32 new_pos | u32 old_pos | u32 diff_len | u32 extra_len
 *   | diff[diff_len]   (new byte = base[old_pos + i] + diff[i], mod 256)
 *   | extra[extra_len] (new bytes as they are)
 * producing new[new_pos .. new_pos + diff_len + extra_len). Records are in
 * output order and each starts where the previous ended, so a transfer cut
 * at output offset R resumes with the body from the record that covers R
 * (pf_patch_body_seek): no state needs to survive but the stored bytes.
 *
 * This file is freestanding (no malloc, no stdio): the applier runs on the
 * device, reading the base through a callback and handing the output to
 * another, with a fixed-size state (sizeof(pf_patch_applier): 68 bytes on Cortex-M0+)
 * plus PF_PATCH_CHUNK bytes of stack. The host-side diff is pf_delta.h. */
#ifndef PEERFLASH_PF_PATCH_H
#define PEERFLASH_PF_PATCH_H

#include <stddef.h>
#include <stdint.h>

#include "pf_err.h"

#ifdef __cplusplus
extern "C" {
#endif

#define PF_PATCH_MAGIC 0x50444650u /* "PFDP" as little-endian bytes */
#define PF_PATCH_VERSION 1u
#define PF_PATCH_HEADER_SIZE 104u
#define PF_PATCH_RECORD_SIZE 16u
#define PF_PATCH_F_DEFLATE 0x01u /* file: the body is stored as one zlib stream */
#define PF_PATCH_CHUNK 64u       /* applier: base bytes read (and stack used) per step */

/* The file header (all integers little-endian). */
typedef struct pf_patch_header {
    uint8_t version;
    uint8_t flags;          /* PF_PATCH_F_* */
    uint32_t base_size;     /* bytes of the base image file */
    uint32_t new_size;      /* bytes of the image file the patch produces */
    uint8_t base_sha256[32];/* SHA-256 of the whole base file */
    uint8_t new_sha256[32]; /* SHA-256 of the whole new file */
    uint32_t body_len;      /* bytes of the body (uncompressed) */
    uint32_t records;       /* records in the body */
    uint32_t stored_len;    /* bytes of the body as stored in the file (= body_len unless deflated) */
    uint32_t body_crc;      /* CRC-32 (pf_crc32) of the body as stored */
} pf_patch_header;

/* Writes the 104-byte header (its own CRC included). */
void pf_patch_header_encode(const pf_patch_header *h, uint8_t out[PF_PATCH_HEADER_SIZE]);
/* Parses and checks a header (magic, version, header size, flags, CRC). */
int pf_patch_header_parse(const uint8_t *in, size_t len, pf_patch_header *h, pf_diag *diag);

/* One record's fields. */
typedef struct pf_patch_record {
    uint32_t new_pos, old_pos, diff_len, extra_len;
} pf_patch_record;

void pf_patch_record_encode(const pf_patch_record *r, uint8_t out[PF_PATCH_RECORD_SIZE]);

/* Host: where to start sending a body so that the device gets new bytes
 * from output offset `at` on: the body offset of the record covering `at`
 * (body_len when at >= the output size). Checks the record chain as it
 * walks; PF_ERR_FORMAT if the body is malformed. */
int pf_patch_body_seek(const uint8_t *body, uint32_t body_len, uint32_t at, uint32_t *body_off, pf_diag *diag);

/* Streaming applier (device side). */
typedef int (*pf_patch_read_fn)(void *ctx, uint32_t off, uint8_t *buf, uint32_t len);
typedef int (*pf_patch_emit_fn)(void *ctx, const uint8_t *data, uint32_t len);

typedef struct pf_patch_applier {
    pf_patch_read_fn read_base; /* reads base bytes [off, off + len), len <= PF_PATCH_CHUNK */
    pf_patch_emit_fn emit;      /* takes the next output bytes (from output offset `resume` on) */
    void *ctx;
    pf_diag *diag;
    uint32_t base_size, new_size;
    uint32_t resume;    /* output below this is already stored: parsed, not emitted */
    uint32_t out;       /* output offset the patch has reached; UINT32_MAX before the first record */
    uint32_t in;        /* body bytes consumed */
    uint32_t old_pos, diff_left, extra_left;
    uint8_t rec[PF_PATCH_RECORD_SIZE];
    uint8_t rec_fill;
    uint8_t failed;
} pf_patch_applier;

/* Starts applying a body that continues the output at `resume` (0 for a
 * whole patch): its first record must start at or below resume. */
void pf_patch_apply_init(pf_patch_applier *p, uint32_t base_size, uint32_t new_size, uint32_t resume,
                         pf_patch_read_fn read_base, pf_patch_emit_fn emit, void *ctx, pf_diag *diag);
/* Feeds the next body bytes. PF_ERR_FORMAT (with the reason in diag) for a
 * malformed body: a record that does not continue the output, reads outside
 * the base, goes past new_size, is empty, or bytes after the last record;
 * errors of the callbacks are passed on. After a failure every call fails. */
int pf_patch_apply_feed(pf_patch_applier *p, const uint8_t *data, uint32_t len);
/* 1 when the output is complete (new_size reached at a record boundary). */
int pf_patch_apply_done(const pf_patch_applier *p);

#ifdef __cplusplus
}
#endif
#endif
