/* A deflate pipeline on a worker thread (host only): a writer hands over
 * fixed-size segments of one stream in order; the worker compresses each
 * into raw deflate data that ends on a byte (sync flush; the final segment
 * ends the stream), using the previous segment as its dictionary, while the
 * writer sends the ones already done. Bounded: at most `depth` segments are
 * held. The zlib wrapper (header, Adler-32) is the caller's.
 *
 * Methods: fast = zlib level 9, window 2^15; best = zopfli (Debian's
 * libzopfli, when built with it); auto = best for a segment only when the
 * compressed data already waiting for the line takes longer to send than
 * zopfli is expected to take on it (measured on the segments before), else
 * fast (twice its expected time, as it varies with data and load). */
#ifndef PF_HOST_ZPIPE_H
#define PF_HOST_ZPIPE_H

#include <stddef.h>
#include <stdint.h>

#include "peerflash/pf_err.h"
#include "peerflash/pf_target.h"

typedef enum { PF_ZP_FAST = 0, PF_ZP_BEST = 1, PF_ZP_AUTO = 2 } pf_zp_method;

#define PF_ZP_SEG_MAX 0x8000u /* largest segment (and dictionary) */

/* "fast", "best" or "auto" -> method; -1 when unknown. */
int pf_zp_method_parse(const char *name);
const char *pf_zp_method_name(int method);
/* 1 when the method can be used in this build (best needs libzopfli). */
int pf_zp_available(int method);

/* The --compress option of the drivers that compress through this pipeline
 * (esp, agent): its table entry, and its value read as set_option gets it:
 * the method, or PF_ERR_ARG (not a method) / PF_ERR_UNSUPPORTED (best in a
 * build without zopfli) with diag saying why. */
#define PF_ZP_COMPRESS_OPTION                                                                                \
    {.name = "compress",                                                                                     \
     .arg = "fast|best|auto",                                                                                \
     .help = "deflate by zlib (fast), by zopfli (best: 2-4% fewer bytes, much more CPU) or, the default, "  \
             "zopfli only for segments the line will not wait for (auto); on a second thread",             \
     .commands = PF_CMD_FLASH,                                                                               \
     .flags = 0}
int pf_zp_method_option(const char *value, pf_diag *diag);

/* Compresses raw[0, len) in the calling thread with dict[0, dict_len) as
 * the window before it: raw deflate ending on a byte; non-final: a sync
 * flush (empty stored block) at the end; final: the last block. *out is
 * malloc()ed. Returns 0 or -1 (no memory). */
int pf_zp_compress(int best, const uint8_t *dict, size_t dict_len, const uint8_t *raw, size_t len, int final,
                   uint8_t **out, size_t *out_len);

typedef struct pf_zpipe pf_zpipe;

typedef struct pf_zp_seg {
    const uint8_t *raw;
    size_t raw_len;
    uint32_t tag;      /* the writer's (the segment's run offset) */
    int dict, final;   /* as handed over */
    int best;          /* compressed by zopfli */
    const uint8_t *out;
    size_t out_len;
} pf_zp_seg;

typedef struct pf_zp_stats {
    uint32_t segs_fast, segs_best;
    uint64_t raw_bytes, out_bytes;
    uint32_t waits;    /* times the writer waited for the worker */
    uint32_t wait_ms;  /* and for how long in all */
    uint32_t cpu_ms;   /* the worker's compression time (wall, per segment summed) */
} pf_zp_stats;

/* NULL when out of memory or the thread cannot start. */
pf_zpipe *pf_zpipe_new(int method, unsigned depth);
void pf_zpipe_free(pf_zpipe *z);
/* Line rate for auto, bytes per second of compressed data. */
void pf_zpipe_set_rate(pf_zpipe *z, uint32_t bytes_per_s);
/* Segments held (handed over, not released). */
unsigned pf_zpipe_held(const pf_zpipe *z);
unsigned pf_zpipe_depth(const pf_zpipe *z);
/* Hands over a segment (copied); dict: the previous segment handed over is
 * its window. -1 when depth segments are held. */
int pf_zpipe_put(pf_zpipe *z, const uint8_t *raw, size_t len, uint32_t tag, int dict, int final);
/* The oldest held segment, compressed (waits for the worker). -1 when none
 * is held or its compression failed (no memory). */
int pf_zpipe_oldest(pf_zpipe *z, pf_zp_seg *seg);
/* How much of the oldest segment's data the writer has sent (for auto). */
void pf_zpipe_progress(pf_zpipe *z, size_t sent);
/* Drops the oldest segment. */
void pf_zpipe_release(pf_zpipe *z);
/* Drops every held segment (after the worker finished the one it is on). */
void pf_zpipe_clear(pf_zpipe *z);
void pf_zpipe_stats(const pf_zpipe *z, pf_zp_stats *st);

#endif
