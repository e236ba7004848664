/* peerflash error model.
 *
 * Every function that can fail returns int: 0 (PF_OK) on success, a negative
 * pf_err on failure, and where it says so a positive count (bytes read, ...).
 * PF_ERR_ARG always means a caller bug (NULL pointer, impossible size); every
 * other code describes something in the world: the image, the link, the target.
 * Human-readable detail ("line 17: bad checksum") travels in a pf_diag. */
#ifndef PEERFLASH_PF_ERR_H
#define PEERFLASH_PF_ERR_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef enum pf_err {
    PF_OK = 0,
    PF_ERR_ARG = -1,         /* caller bug: bad argument */
    PF_ERR_NOMEM = -2,       /* a caller-supplied buffer is too small */
    PF_ERR_IO = -3,          /* the OS or port failed (errno-like) */
    PF_ERR_TIMEOUT = -4,     /* no (complete) answer before the deadline */
    PF_ERR_CLOSED = -5,      /* the link was closed or cut */
    PF_ERR_NO_SYNC = -6,     /* the bootloader never answered the sync */
    PF_ERR_PROTOCOL = -7,    /* malformed or unexpected answer from the target */
    PF_ERR_TARGET = -8,      /* the target refused a command (see pf_diag) */
    PF_ERR_UNSUPPORTED = -9, /* the target or driver cannot do this */
    PF_ERR_FORMAT = -10,     /* the image is malformed (see pf_diag) */
    PF_ERR_RANGE = -11,      /* an address is outside flash or protected */
    PF_ERR_OVERLAP = -12,    /* two image segments overlap */
    PF_ERR_CHIP = -13,       /* wrong chip for this image or --chip */
    PF_ERR_PROTECTED = -14,  /* the target is read- or write-protected */
    PF_ERR_VERIFY = -15,     /* flash content differs from the image */
    PF_ERR_CRC = -16,        /* a checksum on the link did not match */
    PF_ERR_AUTH = -17,       /* hash or signature check failed */
    PF_ERR_STATE = -18,      /* operation not valid in the current state */
} pf_err;

/* Short English description of an error code; never NULL. */
const char *pf_strerror(int err);

/* The exit status of a front end (the peerflash command, the updater
 * firmware, the daemon's job result) for each cause: one map for all. */
enum pf_exit {
    PF_EXIT_OK = 0,
    PF_EXIT_FAIL = 1,   /* anything not listed below */
    PF_EXIT_USAGE = 2,  /* bad command line or job (PF_ERR_ARG) */
    PF_EXIT_IMAGE = 3,  /* image file unreadable, malformed, out of range */
    PF_EXIT_LINK = 4,   /* port cannot be opened, no answer, link lost */
    PF_EXIT_TARGET = 5, /* target refused, wrong chip, protected, unsupported */
    PF_EXIT_VERIFY = 6, /* flash differs from the image after writing */
};
/* Maps a pf_err to the exit status for that cause. */
int pf_exit_status(int err);

/* A caller-owned buffer for the one-line explanation of the last failure.
 * Functions that take a pf_diag* accept NULL (no detail wanted). Room for the
 * longest message a driver writes with a job's "write at 0x...: " prefix and
 * a file path; a text that still does not fit ends in "..." (never cut
 * silently). */
#define PF_DIAG_MAX 512

/* What the message advises (pf_diag.hints): the driver knows its board and
 * names the next step itself; a front end adds a generic one only when this
 * is 0, and a program can act on it without reading the text. */
#define PF_HINT_WIRING (1u << 0)    /* check TX/RX wiring, the cable or the bridge */
#define PF_HINT_RESET (1u << 1)     /* the reset into the bootloader (circuit, button, --reset) */
#define PF_HINT_BAUD (1u << 2)      /* the line rate (--baud, --connect-baud) */
#define PF_HINT_BOOT_MODE (1u << 3) /* the chip is not in its bootloader (BOOT0, IO0, a running app) */
#define PF_HINT_UNPROTECT (1u << 4) /* protection: a driver option removes it (--unprotect-*) */
#define PF_HINT_CHIP (1u << 5)      /* --chip or the image names another chip */
#define PF_HINT_IMAGE (1u << 6)     /* the image itself (build it for this chip/slot, sign it) */

typedef struct pf_diag {
    char text[PF_DIAG_MAX];
    /* Structured, for programs (the CLI's --json): set by pf_diag_set to
     * "unknown", then filled by whoever knows. */
    const char *op;      /* operation that failed: "connect", "erase", "write", "read", "verify",
                          * "digest", "run", "unprotect", "check", "info"; NULL = not known */
    int has_code;        /* 1: code is the target's own answer */
    uint32_t code;       /* ESP: status<<8 | error byte; STM32: the NACK (0x1F) or reply byte;
                          * STK500: the reply byte; agent: its status code */
    int has_command;     /* 1: command is the protocol command that got the answer */
    uint32_t command;    /* ESP opcode, AN3155 command byte, STK500 command, agent frame type */
    unsigned hints;      /* PF_HINT_* the text gives */
} pf_diag;

/* Sets the explanation with a small printf subset that needs no libc stdio
 * (so the core stays freestanding): %s %c %d %u %x %X %lu %lx %ld %zu %%,
 * with optional '0' flag and width (e.g. %08lx). Returns err, so a failing
 * path can be written `return pf_diag_set(d, PF_ERR_FORMAT, "...", ...)`. */
int pf_diag_set(pf_diag *d, int err, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 3, 4)))
#endif
    ;
/* Prepends "prefix: " to the existing text (e.g. the file name); the
 * structured fields stay. */
void pf_diag_prefix(pf_diag *d, const char *prefix);
void pf_diag_clear(pf_diag *d);
/* The target's own answer to a command (after pf_diag_set). */
void pf_diag_code(pf_diag *d, uint32_t command, uint32_t code);
/* Adds PF_HINT_* bits (after pf_diag_set). */
void pf_diag_hint(pf_diag *d, unsigned hints);
/* Names the operation, unless a deeper layer already did. */
void pf_diag_op(pf_diag *d, const char *op);
/* Short name of one PF_HINT_* bit ("wiring", "reset", ...); NULL if unknown. */
const char *pf_hint_name(unsigned hint);

/* The formatter behind pf_diag_set, for other fixed buffers. Always
 * NUL-terminates when size > 0; returns the length written. */
size_t pf_vformat(char *out, size_t size, const char *fmt, va_list ap);
size_t pf_format(char *out, size_t size, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 3, 4)))
#endif
    ;

#ifdef __cplusplus
}
#endif
#endif
