/* The target driver interface: one per bootloader protocol (esp, avr, stm32,
 * agent), one shape for all, so that the flash job (pf_job.h) is written once.
 *
 * A driver is a const table of operations plus a state struct that the caller
 * provides (ctx_size bytes; an MCU caller uses the driver's own struct type).
 * Operations a protocol lacks are NULL or return PF_ERR_UNSUPPORTED; the job
 * adapts (digest-verify where the target can hash, read-back where it cannot).
 * Every failure leaves a one-line explanation in cfg->diag, quoting what the
 * target said: "target answered NACK (0x1F) to Write Memory at 0x08004000". */
#ifndef PEERFLASH_PF_TARGET_H
#define PEERFLASH_PF_TARGET_H

#include <stddef.h>
#include <stdint.h>

#include "pf_digest.h"
#include "pf_err.h"
#include "pf_port.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Who erases flash before it is programmed. */
typedef enum pf_erase_style {
    PF_ERASE_EXPLICIT = 0, /* the job calls erase() on every touched unit first (STM32) */
    PF_ERASE_BY_WRITE = 1, /* write_begin/write erase what they program (ESP FLASH_BEGIN, AVR page write) */
} pf_erase_style;

/* A run of equal erase units: [start, start+size) in units of `unit` bytes. */
typedef struct pf_erase_region {
    uint32_t start;
    uint32_t size;
    uint32_t unit;
} pf_erase_region;

typedef struct pf_range {
    uint32_t start;
    uint32_t size;
    const char *what; /* e.g. "Optiboot boot section" */
} pf_range;

#define PF_MAX_ERASE_REGIONS 8
#define PF_MAX_PROTECTED 4

typedef struct pf_flash_geometry {
    uint32_t flash_start;   /* first address of flash as the protocol addresses it */
    uint32_t flash_size;    /* bytes */
    uint32_t write_align;   /* writes start and end on multiples of this (AVR: page size) */
    uint32_t write_max;     /* largest single write() the driver accepts (multiple of write_align) */
    uint8_t erased_value;   /* value of erased flash, used as fill (0xFF) */
    pf_erase_style erase_style;
    unsigned n_regions;     /* 0 = no erase geometry known (then unit = write_align) */
    pf_erase_region regions[PF_MAX_ERASE_REGIONS];
    unsigned n_protected;   /* ranges the job must never touch (bootloader sections) */
    pf_range protected_ranges[PF_MAX_PROTECTED];
} pf_flash_geometry;

/* Capabilities (pf_target_info.caps). */
#define PF_CAP_READ (1u << 0)      /* read() works */
#define PF_CAP_ERASE_ALL (1u << 1) /* erase_all() works */
#define PF_CAP_DIGEST (1u << 2)    /* digest() works, of kind info.digest */
#define PF_CAP_RUN (1u << 3)       /* run() starts the application */

typedef struct pf_target_info {
    char chip[32];       /* "ATmega328P", "ESP32-S3", "STM32F103xB" */
    char bootloader[48]; /* "Optiboot 4.4", "ESP32 ROM", "AN3155 v3.1" */
    uint32_t chip_id;    /* signature / PID / chip magic as the target reports it */
    uint32_t caps;
    pf_digest_kind digest;
    pf_flash_geometry geom;
    char details[160];   /* more facts for `info`, "name: value" lines (ESP: MAC, flash ID); "" = none */
} pf_target_info;

typedef struct pf_target_config {
    const pf_port *port; /* the link; the caller keeps it open */
    pf_diag *diag;       /* where failures are explained; may be NULL */
    uint32_t baud;       /* rate to connect (sync) at; 0 = the protocol's default */
    uint32_t fast_baud;  /* the user's --baud: the rate for the transfer. A driver whose
                          * protocol can switch rates (ESP CHANGE_BAUDRATE) syncs at `baud`
                          * and then switches to it; a driver that cannot (AVR, STM32)
                          * uses it as its only rate when `baud` is 0. 0 = not given. */
    const char *chip;    /* chip the user expects (--chip), NULL = accept what answers */
    const char *reset;   /* how to enter the bootloader: NULL/"auto" = the usual circuit
                          * for this target, "none" = already in the bootloader, or a
                          * driver-specific sequence (documented per driver) */
    int verbose;         /* 0 quiet .. 3 trace (through port->log) */
    /* Optional: progress inside one operation, for drivers whose single
     * write() sends a whole image (agent) or whose run() has steps of its
     * own (reboot, install, trial, confirm); phase is a pf_phase (pf_job.h),
     * done/total in bytes, or 0/1 and 1/1 for a step. May be NULL. */
    void (*progress)(void *user, int phase, uint32_t done, uint32_t total);
    void *progress_user;
} pf_target_config;

#define PF_TARGET_CONFIG_DEFAULT() \
    { NULL, NULL, 0, 0, NULL, NULL, 0, NULL, NULL }

typedef struct pf_target_ops {
    const char *name;    /* the --target word */
    const char *summary; /* one line for --help */
    size_t ctx_size;     /* bytes of state the caller provides for `self` */

    /* Prepares self (zeroed by the caller) for use with cfg; no I/O. */
    int (*open)(void *self, const pf_target_config *cfg);
    /* Enters the bootloader, synchronises, identifies the chip and fills info.
     * Refuses (PF_ERR_CHIP) a chip that differs from cfg->chip, naming both. */
    int (*connect)(void *self, pf_target_info *info);
    /* Erases [addr, addr+len): whole erase units (PF_ERASE_EXPLICIT style). */
    int (*erase)(void *self, uint32_t addr, uint32_t len);
    int (*erase_all)(void *self);
    /* A run of writes covering [addr, addr+len) follows, in address order. */
    int (*write_begin)(void *self, uint32_t addr, uint32_t len);
    /* Writes len bytes (<= write_max, aligned to write_align) at addr. */
    int (*write)(void *self, uint32_t addr, const uint8_t *data, uint32_t len);
    /* Ends the run: everything written is in flash when this returns. */
    int (*write_end)(void *self);
    int (*read)(void *self, uint32_t addr, uint8_t *buf, uint32_t len);
    /* Computes the target-side digest (kind info.digest) of [addr, addr+len);
     * returns the digest length written to out (<= PF_DIGEST_MAX). */
    int (*digest)(void *self, uint32_t addr, uint32_t len, uint8_t *out);
    /* Leaves the bootloader and starts the application. */
    int (*run)(void *self);
    /* Releases the session (no I/O needed); safe after a failed connect. */
    void (*close)(void *self);
} pf_target_ops;

/* A driver bound to its state: what the job works on. */
typedef struct pf_target {
    const pf_target_ops *ops;
    void *self;
    pf_target_info info; /* filled by connect */
} pf_target;

/* All drivers built into this library, NULL-terminated, and lookup by name. */
extern const pf_target_ops *const pf_target_drivers[];
const pf_target_ops *pf_target_find(const char *name);

/* The erase unit that contains addr (its start and size), from the geometry;
 * write_align when no erase regions are given. Returns 0 if addr is outside. */
int pf_geometry_unit(const pf_flash_geometry *g, uint32_t addr, uint32_t *unit_start, uint32_t *unit_size);

#ifdef __cplusplus
}
#endif
#endif
