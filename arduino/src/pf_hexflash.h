/* Streams an Intel HEX image into a target page by page, in a few hundred
 * bytes of RAM, so that an 8-bit MCU with 8 KiB (an ATmega2560) can flash a
 * 32 KiB program it never holds whole.
 *
 * The HEX text is sent twice:
 *   pass 1, check: every line is parsed and checked (marker, hex digits,
 *     length, checksum, record type), every data byte must lie below `limit`
 *     (the target's bootloader section) in ascending address order, and each
 *     page the image touches is recorded as {page number, CRC-16}. Nothing
 *     is sent to the target: a corrupt line stops here, before the first
 *     write.
 *   pass 2, write: the same text again, parsed the same way; each page, once
 *     complete, must match its pass-1 record before it is written. finish()
 *     then reads every page back and compares its CRC with the record.
 * A pass-2 difference (a line corrupted on the second transfer) stops at the
 * page that differs; the pages before it are written (`written` says how
 * many), the bootloader is untouched, and the session can simply be rerun.
 *
 * Records must come in ascending address order (avr-objcopy and the Arduino
 * IDE write them so): a page is complete when data for a later page starts.
 * Gaps inside a page are filled with 0xFF (erased flash).
 *
 * Memory: this struct (the HEX parser's 600-byte line, one page buffer of
 * PF_HEXFLASH_PAGE_MAX bytes, PF_HEXFLASH_RUNS runs of consecutive pages)
 * plus the caller's table of one CRC-16 per page of the image (252 entries,
 * 504 bytes, cover an ATmega328P below Optiboot). */
#ifndef PF_HEXFLASH_H
#define PF_HEXFLASH_H

#include <stddef.h>
#include <stdint.h>

#include "peerflash/pf_err.h"
#include "peerflash/pf_image.h"
#include "peerflash/pf_target.h"

#ifdef __cplusplus
extern "C" {
#endif

#ifndef PF_HEXFLASH_PAGE_MAX
#define PF_HEXFLASH_PAGE_MAX 256u /* largest target page (ATmega2560/1280/644: 256) */
#endif

#ifndef PF_HEXFLASH_RUNS
#define PF_HEXFLASH_RUNS 8u /* separate runs of pages an image may have (a usual AVR image has 1) */
#endif

/* Consecutive pages of the image: which pages the CRC table describes. */
typedef struct pf_hexflash_run {
    uint16_t first; /* page number (address / page size) */
    uint16_t count;
} pf_hexflash_run;

typedef enum pf_hexflash_pass {
    PF_HEXFLASH_IDLE = 0,
    PF_HEXFLASH_CHECK = 1,
    PF_HEXFLASH_WRITE = 2,
} pf_hexflash_pass;

typedef struct pf_hexflash {
    /* set by init */
    uint16_t page_size;
    uint32_t limit;            /* data must lie in [0, limit) */
    uint16_t *table;           /* caller's: CRC-16/CCITT-FALSE of each page (0xFF where no data) */
    uint16_t max_pages;
    pf_diag *diag;
    /* results */
    uint16_t pages;            /* pages recorded by pass 1 */
    uint8_t runs;              /* runs of consecutive pages among them */
    pf_hexflash_run run[PF_HEXFLASH_RUNS];
    uint32_t data_bytes;       /* data bytes in the image (pass 1) */
    uint32_t crc32;            /* CRC-32 (IEEE) of the recorded pages in order (pass 1) */
    uint16_t written;          /* pages written in pass 2 */
    uint16_t verified;         /* pages read back and found equal (pass 2 finish) */
    /* state */
    pf_hexflash_pass _pass;
    const pf_target_ops *_ops;
    void *_self;
    uint16_t _done;            /* pages completed in this pass */
    int _page_open;
    uint32_t _page_addr;
    uint32_t _next_min;        /* the next record must start at or after this */
    pf_ihex _hex;
    uint8_t _page[PF_HEXFLASH_PAGE_MAX];
} pf_hexflash;

/* page_size: the target's page (1..PF_HEXFLASH_PAGE_MAX); limit: first
 * address the image must not reach (the bootloader section's start). */
int pf_hexflash_init(pf_hexflash *h, uint16_t page_size, uint32_t limit, uint16_t *table, uint16_t max_pages,
                     pf_diag *diag);
/* Starts pass 1. */
int pf_hexflash_begin_check(pf_hexflash *h);
/* Starts pass 2 on a connected target (ops and its state) whose page size
 * (geometry write_align) is the one given to init; the caller checks that.
 * Needs a successful pass 1. */
int pf_hexflash_begin_write(pf_hexflash *h, const pf_target_ops *ops, void *self);
/* Feeds any slice of the HEX text. Returns 1 when this slice ended with
 * the end-of-file record's line ('\n' included) — the pass's text is
 * complete and finish() comes next — 0 when more is wanted, or a negative
 * pf_err (explained in diag). Feed at most up to the end of that line:
 * bytes after it belong to the next pass; *used says how many were taken. */
int pf_hexflash_feed(pf_hexflash *h, const uint8_t *data, size_t n, size_t *used);
/* Ends the pass. Pass 1: closes the last page, fills pages/data_bytes/crc32.
 * Pass 2: writes the last page, checks the page count against pass 1, reads
 * every page back (verified), and leaves the target in the bootloader (the
 * caller runs the application with the driver's run()). */
int pf_hexflash_finish(pf_hexflash *h);

/* The HEX parser's storage, unused between finish() and the next begin_*():
 * the caller may borrow it there (e.g. for the pf_target_info of connect,
 * instead of 400 bytes of stack). Returns its address; *size its bytes. */
void *pf_hexflash_scratch(pf_hexflash *h, size_t *size);

/* The checksums, exported for hosts and tests. */
uint16_t pf_hexflash_crc16(uint16_t crc, const uint8_t *data, size_t n); /* start 0xFFFF */
uint32_t pf_hexflash_crc32(uint32_t crc, const uint8_t *data, size_t n); /* start 0 */

#ifdef __cplusplus
}
#endif
#endif
