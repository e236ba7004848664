/* Image readers: streaming parsers that turn a file's bytes into
 * (address, bytes) records.
 *
 * Each text parser is a push state machine: feed it any slice of the input
 * (one byte or the whole file) and it calls the sink for every data record.
 * Memory is bounded by the parser struct (one line at most), so the same code
 * streams an image from an SD card on an MCU. Errors name the line (text
 * formats) or the byte offset (binary formats) and the cause in the pf_diag,
 * e.g. "line 17: bad checksum 0x3D, expected 0x3C". */
#ifndef PEERFLASH_PF_IMAGE_H
#define PEERFLASH_PF_IMAGE_H

#include <stddef.h>
#include <stdint.h>

#include "pf_err.h"
#include "pf_memmap.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Receives one data record (len > 0, addr + len <= 4 GiB); a negative
 * return stops the parser with that error, which then stays (sticky). The
 * readers clear their diag before each call and, if the sink fails, prefix
 * the sink's message with the place ("line 40: ...", "offset 0x40: ...",
 * "ELF: segment 2: ...") or, if it left none, say what could not be stored. */
typedef int (*pf_image_sink)(void *user, uint32_t addr, const uint8_t *data, size_t len);

/* A sink that appends to a pf_memmap (user = the pf_memmap*). */
int pf_memmap_sink(void *user, uint32_t addr, const uint8_t *data, size_t len);

/* The same with the memory map's own explanation kept (user = a
 * pf_memmap_dest*): "line 40: image has more than 8 separate segments"
 * instead of "line 40: cannot store 16 bytes at 0x08001000: buffer too small".
 * Give it the diag that the parser writes to. */
typedef struct pf_memmap_dest {
    pf_memmap *map;
    pf_diag *diag;
} pf_memmap_dest;
int pf_memmap_dest_sink(void *user, uint32_t addr, const uint8_t *data, size_t len);

typedef enum pf_image_format {
    PF_IMAGE_UNKNOWN = 0,
    PF_IMAGE_BIN,     /* raw bytes, needs a base address */
    PF_IMAGE_IHEX,    /* Intel HEX */
    PF_IMAGE_SREC,    /* Motorola S-record */
    PF_IMAGE_ELF,     /* ELF executable: PT_LOAD segments */
    PF_IMAGE_ESP,     /* ESP app image (magic 0xE9) */
    PF_IMAGE_MCUBOOT, /* MCUboot signed image (magic 0x96f3b83d) */
} pf_image_format;

/* Guesses the format from the first bytes of the file (content first; the
 * file name's extension, which may be NULL, only breaks ties such as a raw
 * binary that starts with ':'). ELF and MCUboot magics win; then a text
 * file whose first record line is well-formed HEX or S-record; then printable
 * text that starts with ':' or 'S'+digit (so that the reader names the bad
 * line) unless the name ends in .bin or .img; then 0xE9 as an ESP app image
 * if the name ends in .bin/.img or the header is plausible (1-16 segments,
 * SPI mode <= 5, entry 0x4xxxxxxx); else raw binary. UNKNOWN only for an
 * empty head. A head of a few KiB is plenty. */
pf_image_format pf_image_detect(const uint8_t *head, size_t n, const char *name);
const char *pf_image_format_name(pf_image_format f);

/* Longest text line the HEX and S-record parsers accept (record + CR LF). */
#define PF_IMAGE_LINE_MAX 600

/* Intel HEX: record types 00 data, 01 EOF, 02 extended segment address,
 * 03 start segment address, 04 extended linear address, 05 start linear
 * address. Anything after the EOF record except white space is an error.
 * After a 02 record, data addresses are base + (offset mod 64 KiB) as in
 * the 8086 segment model (a record that crosses the 64 KiB boundary wraps);
 * after a 04 record (or none) they are linear, base + offset, and must stay
 * below 4 GiB. start_addr from 03 is the physical address CS*16 + IP.
 * Hex digits may be upper or lower case; lines end in LF or CR LF; white
 * space at the end of a line and blank lines are ignored. */
typedef struct pf_ihex {
    pf_image_sink _sink;
    void *_user;
    pf_diag *_diag;
    uint32_t line;         /* current line number, 1-based */
    uint32_t base;         /* from record 02 or 04 */
    uint32_t start_addr;   /* from record 03 or 05 */
    int has_start;
    int _eof;              /* EOF record seen */
    int _err;              /* sticky error */
    int _segmode;          /* base came from record 02: offsets wrap at 64 KiB */
    size_t _len;
    char _buf[PF_IMAGE_LINE_MAX];
} pf_ihex;

void pf_ihex_init(pf_ihex *p, pf_image_sink sink, void *user, pf_diag *diag);
int pf_ihex_feed(pf_ihex *p, const uint8_t *data, size_t n);
/* Ends the input: PF_ERR_FORMAT if the EOF record is missing. */
int pf_ihex_finish(pf_ihex *p);

/* Motorola S-record: S0 header, S1/S2/S3 data (16/24/32-bit address), S5/S6
 * record counts (checked against the data records before them), S7/S8/S9
 * start address (ends the file; finish fails without one). S4 is reserved
 * and rejected. Same line rules as Intel HEX. */
typedef struct pf_srec {
    pf_image_sink _sink;
    void *_user;
    pf_diag *_diag;
    uint32_t line;
    uint32_t data_records; /* S1/S2/S3 seen, to check S5/S6 */
    uint32_t start_addr;
    int has_start;
    int _end;
    int _err;
    size_t _len;
    char _buf[PF_IMAGE_LINE_MAX];
} pf_srec;

void pf_srec_init(pf_srec *p, pf_image_sink sink, void *user, pf_diag *diag);
int pf_srec_feed(pf_srec *p, const uint8_t *data, size_t n);
int pf_srec_finish(pf_srec *p);

/* Raw binary: every byte fed goes to base + offset; bytes beyond 4 GiB are
 * an error naming the file offset. finish fails on an empty input. */
typedef struct pf_bin {
    pf_image_sink _sink;
    void *_user;
    pf_diag *_diag;
    uint32_t base;
    uint32_t offset;
    int _err;
    int _full; /* the last byte fed sits at 0xFFFFFFFF */
} pf_bin;

void pf_bin_init(pf_bin *p, uint32_t base, pf_image_sink sink, void *user, pf_diag *diag);
int pf_bin_feed(pf_bin *p, const uint8_t *data, size_t n);
int pf_bin_finish(pf_bin *p);

/* ELF (host only, through libelf): every PT_LOAD segment with file bytes,
 * at its physical address (p_paddr, the load address in flash). Reads from
 * a whole file in memory; offsets in errors are file offsets. ELF32 and
 * ELF64, either byte order; a segment beyond 4 GiB, one that runs past the
 * end of the file, a relocatable object or a file without PT_LOAD data is
 * PF_ERR_FORMAT. The file bytes are only read. */
int pf_elf_parse(const uint8_t *file, size_t size, pf_image_sink sink, void *user, pf_diag *diag);

#ifdef __cplusplus
}
#endif
#endif
