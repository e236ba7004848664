/* Loading firmware image files on a host (Linux): PATH[@ADDR] -> memory map.
 *
 * This is the host side of the image readers in pf_image.h: it reads a file,
 * detects its format from the content (pf_image_detect), runs the matching
 * reader and stores the data in heap storage that it owns. Host code only
 * (it allocates); an MCU updater streams through the readers instead.
 *
 * A spec is PATH or PATH@ADDR; PATH may be an http:// or https:// URL, which
 * is downloaded whole first (pf_http.h) and then read like a file. ADDR is hex with 0x (0x08000000) or decimal,
 * below 4 GiB. A raw binary (and, for now, an ESP app image or an MCUboot
 * image, which are loaded as raw bytes) needs @ADDR; Intel HEX, S-record
 * and ELF carry their own addresses and refuse one. An '@' whose suffix
 * does not start with a digit belongs to the path (user@host/fw.hex).
 *
 * Errors: every failure names the path first, then the cause:
 *   "fw.hex: line 17: bad checksum 0x3D, expected 0x3C"   PF_ERR_FORMAT
 *   "fw.bin: raw binary needs a load address: fw.bin@0x08000000"  PF_ERR_ARG
 *   "fw.hex: cannot open: No such file or directory"      PF_ERR_IO
 * PF_ERR_ARG here means the spec (the user's command line) is wrong: a
 * missing, malformed or refused @ADDR. PF_ERR_OVERLAP names both files.
 *
 * Several files make one image (boot.bin@0x1000 part.bin@0x8000
 * app.bin@0x10000):
 *
 *     pf_image_set set;
 *     pf_image_set_init(&set);
 *     for (each spec)
 *         if ((rc = pf_image_set_add(&set, spec, &diag)) < 0) goto fail;
 *     if ((rc = pf_image_set_finish(&set, &diag)) < 0) goto fail;
 *     ... use set.map (sorted, non-overlapping) and set.files[i] ...
 *   fail:
 *     pf_image_set_free(&set);
 *
 * set.map is valid after every add (in load order), so a caller may also
 * call pf_memmap_finish(&set.map, ...) itself; pf_image_set_finish does the
 * same and, on overlap, names the two files. */
#ifndef PEERFLASH_PF_IMAGE_FILE_H
#define PEERFLASH_PF_IMAGE_FILE_H

#include <stddef.h>
#include <stdint.h>

#include "pf_err.h"
#include "pf_http.h"
#include "pf_image.h"
#include "pf_memmap.h"

#ifdef __cplusplus
extern "C" {
#endif

/* One loaded file. */
typedef struct pf_image_file {
    char *path;             /* PATH part of the spec (owned copy) */
    char *spec;             /* the whole spec as given (owned copy) */
    pf_image_format format; /* detected from content */
    int has_addr;           /* @ADDR was given ... */
    uint32_t addr;          /* ... and this is it */
    size_t file_size;       /* bytes in the file */
    uint32_t bytes;         /* image bytes (not counting gaps) */
    uint32_t lo, last;      /* lowest and highest address holding data */
    int has_start;          /* start address from HEX 03/05 or S7/S8/S9 */
    uint32_t start_addr;
    pf_memmap map;          /* this file's data, finished (sorted, joined) */
    pf_segment *_segs;
    uint8_t *_arena;
} pf_image_file;

/* Loads one file into f (which it initialises; f's old content is not
 * freed). On failure f holds nothing to free, but pf_image_file_free is
 * harmless. */
int pf_image_file_load(pf_image_file *f, const char *spec, pf_diag *diag);
/* The same, with the download options for a URL (NULL: the defaults). */
int pf_image_file_load_from(pf_image_file *f, const char *spec, const pf_http_options *http, pf_diag *diag);
void pf_image_file_free(pf_image_file *f);

/* Splits a spec into its path (copied into path, NUL-terminated) and
 * address; *has_addr says whether there was one. PF_ERR_ARG with the cause
 * for a malformed address or a path longer than path_size - 1. */
int pf_image_spec_parse(const char *spec, char *path, size_t path_size, uint32_t *addr, int *has_addr,
                        pf_diag *diag);

/* Several files loaded into one map. */
typedef struct pf_image_set {
    pf_memmap map;          /* every file's segments; sorted and checked by finish */
    pf_image_file *files;   /* the files, in the order added */
    size_t count;
    const pf_http_options *http; /* for URL specs; NULL: the defaults (set before adding) */
    pf_segment *_segs;
    size_t _files_cap;
} pf_image_set;

void pf_image_set_init(pf_image_set *set);
/* Loads one more file and appends its segments to set->map. On failure the
 * set is unchanged (the file is not added). */
int pf_image_set_add(pf_image_set *set, const char *spec, pf_diag *diag);
/* Sorts set->map and checks it: PF_ERR_OVERLAP names the two files and
 * their address ranges. Call once, after the last add. */
int pf_image_set_finish(pf_image_set *set, pf_diag *diag);
void pf_image_set_free(pf_image_set *set);

#ifdef __cplusplus
}
#endif
#endif
