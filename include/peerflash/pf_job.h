/* The flash job: one implementation of "put this image into that target"
 * for every driver.
 *
 * Given a memory map and the connected target's geometry, the job
 *  1. checks every byte lies in flash and outside protected ranges (before
 *     anything is written, so a bad image never touches the target);
 *  2. plans runs: the image's extents aligned to the write block, small gaps
 *     filled with the erased value so each run is written in one go;
 *  3. skips erase units whose target-side digest already matches (when the
 *     target can hash), erases the touched units (explicit-erase targets),
 *     writes; all checks, then all erases, then all writes, so an erase can
 *     never wipe what an earlier write of the same job put there;
 *  4. verifies every run by digest, or by read-back where there is none;
 *  5. optionally starts the application.
 * It reports progress through a callback and allocates nothing: the caller
 * passes a work buffer of at least geometry.write_max bytes. */
#ifndef PEERFLASH_PF_JOB_H
#define PEERFLASH_PF_JOB_H

#include <stddef.h>
#include <stdint.h>

#include "pf_err.h"
#include "pf_memmap.h"
#include "pf_target.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef enum pf_erase_mode {
    PF_ERASE_TOUCHED = 0, /* only the erase units the image touches */
    PF_ERASE_ALL = 1,     /* the whole chip first */
} pf_erase_mode;

typedef enum pf_phase {
    PF_PHASE_CHECK = 0, /* comparing digests to skip unchanged runs */
    PF_PHASE_ERASE,
    PF_PHASE_WRITE,
    PF_PHASE_VERIFY,
    PF_PHASE_RUN,
    PF_PHASE_READ,      /* reading flash to a file (the CLI's read command) */
    PF_PHASE_REBOOT,    /* steps of a target's run() (the agent): restart asked for */
    PF_PHASE_INSTALL,   /* the bootloader installs the new image; the device comes back */
    PF_PHASE_TRIAL,     /* the new image runs on trial and answered */
    PF_PHASE_CONFIRM,   /* made permanent */
} pf_phase;

const char *pf_phase_name(pf_phase phase);

/* done/total in bytes of the phase; called at least once at 0 and once at total. */
typedef void (*pf_progress_fn)(void *user, pf_phase phase, uint32_t done, uint32_t total);

typedef struct pf_job_config {
    pf_erase_mode erase;
    int verify;             /* verify after writing (default 1) */
    int skip_unchanged;     /* skip runs the target's digest shows unchanged (default 1) */
    int run_after;          /* start the application at the end (default 0) */
    uint32_t fill_gap_max;  /* gaps up to this many bytes inside a run are filled (default 256) */
    pf_progress_fn progress;
    void *progress_user;
    uint8_t *buf;           /* work buffer: >= write_max, and 2x for read-back verify */
    size_t buf_size;
    pf_diag *diag;
    const pf_port *clock;   /* for the phase timings in the result; may be NULL */
} pf_job_config;

#define PF_JOB_CONFIG_DEFAULT() \
    { .erase = PF_ERASE_TOUCHED, .verify = 1, .skip_unchanged = 1, .run_after = 0, .fill_gap_max = 256, \
      .progress = NULL, .progress_user = NULL, .buf = NULL, .buf_size = 0, .diag = NULL, .clock = NULL }

typedef struct pf_job_result {
    uint32_t image_bytes;   /* bytes of data in the image */
    uint32_t written_bytes; /* bytes sent to write(), fill included */
    uint32_t skipped_bytes; /* bytes of runs found unchanged */
    uint32_t erased_bytes;  /* bytes erased by explicit erase() calls */
    uint32_t runs;          /* write runs planned */
    int verified;           /* 1 when every written byte was verified */
    const char *verify_method; /* "digest MD5", "read-back", "none" */
    uint32_t mismatch_addr; /* first differing address (read-back) or run start (digest) */
    uint32_t ms_erase, ms_write, ms_verify;
} pf_job_result;

/* A write run: [addr, addr+len), aligned to write_align. */
typedef struct pf_run {
    uint32_t addr;
    uint32_t len;
} pf_run;

/* Checks the map against the geometry (flash range, protected ranges). */
int pf_job_check(const pf_memmap *map, const pf_flash_geometry *geom, pf_diag *diag);
/* The first run at or after `from`; returns 1 and fills *run, or 0 when none
 * is left. Segments closer than fill_gap_max, or sharing an erase unit, are
 * joined into one run; a run never crosses a protected range. */
int pf_job_next_run(const pf_memmap *map, const pf_flash_geometry *geom, uint32_t fill_gap_max,
                    uint32_t from, pf_run *run);

/* The work buffer a host with memory to spare gives the job for this target:
 * twice the largest write (read-back verify compares two blocks), at least
 * 8 KiB. Small MCUs size theirs at build time instead. */
size_t pf_job_buf_size_for(const pf_target_info *info);

/* Runs the whole job on a connected target (t->info filled by connect). */
int pf_job_flash(pf_target *t, const pf_memmap *map, const pf_job_config *cfg, pf_job_result *res);
/* Only compares the target's flash with the image (digest or read-back). */
int pf_job_verify(pf_target *t, const pf_memmap *map, const pf_job_config *cfg, pf_job_result *res);

/* The read command: [addr, addr+len) into out, write_max bytes per read,
 * with PF_PHASE_READ progress. PF_ERR_UNSUPPORTED for a target that cannot
 * read, PF_ERR_RANGE for a range outside flash (sums in 64 bits: a range
 * that passes 4 GiB is outside). Only cfg's progress and diag are used. */
int pf_job_read_range(pf_target *t, uint32_t addr, uint8_t *out, uint32_t len, const pf_job_config *cfg);
/* The checks of pf_job_read_range alone (before the caller allocates out). */
int pf_job_read_check(const pf_target *t, uint32_t addr, uint32_t len, pf_diag *diag);
/* The erase command: the erase units covering [addr, addr+len) (whole
 * units; *erased, if given, says which), refused with PF_ERR_RANGE when the
 * range leaves flash or touches a protected range, PF_ERR_UNSUPPORTED for a
 * target that erases only as it writes. */
int pf_job_erase_range(pf_target *t, uint32_t addr, uint32_t len, const pf_job_config *cfg, pf_run *erased);
/* The whole chip (PF_CAP_ERASE_ALL), PF_ERR_UNSUPPORTED otherwise. */
int pf_job_erase_chip(pf_target *t, const pf_job_config *cfg);

#ifdef __cplusplus
}
#endif
#endif
