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

/* A caller-owned buffer for the one-line explanation of the last failure.
 * Functions that take a pf_diag* accept NULL (no detail wanted). Room for the
 * longest message a driver writes with a job's "write at 0x...: " prefix and
 * a file path; a text that still does not fit ends in "..." (never cut
 * silently). */
#define PF_DIAG_MAX 512
typedef struct pf_diag {
    char text[PF_DIAG_MAX];
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
/* Prepends "prefix: " to the existing text (e.g. the file name). */
void pf_diag_prefix(pf_diag *d, const char *prefix);
void pf_diag_clear(pf_diag *d);

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
