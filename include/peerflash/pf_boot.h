/* The bootloader core and slot manager (target side; portable C, no malloc).
 *
 * Flash layout on one pf_flash device (offsets in bytes, all multiples of
 * erase_size E; see docs/BOOTLOADER.md):
 *   primary   [primary_off, + slot_size + E)  the image that runs; one spare
 *             unit at the end for the swap-move upgrade
 *   secondary [secondary_off, + slot_size)    staging slot: new image, or the
 *             previous one after an upgrade (for rollback)
 *   state     [state_off, + 2E)               the state journal: 64-byte
 *             records appended, the newest valid one (highest seq) rules
 *
 * Images use the MCUboot layout (header magic 0x96f3b83d, TLVs with SHA-256,
 * key hash and ECDSA-P256 signature). The upgrade is a swap-move done in
 * idempotent steps, each recorded in the journal after it completed, so a
 * power cut at any flash operation leaves a state from which the next boot
 * finishes (or undoes) the work and starts a complete, verified image.
 *
 * A new image runs on trial: the bootloader swaps it in and starts it; the
 * application calls pf_boot_confirm(); a reset before that reverts the swap. */
#ifndef PEERFLASH_PF_BOOT_H
#define PEERFLASH_PF_BOOT_H

#include <stddef.h>
#include <stdint.h>

#include "pf_err.h"
#include "pf_flash.h"
#include "pf_mcuboot.h" /* the image format and its checks */

#ifdef __cplusplus
extern "C" {
#endif

/* ---- the state journal ------------------------------------------------- */
typedef enum pf_boot_state {
    PF_BOOT_IDLE = 1,      /* primary runs, nothing to do */
    PF_BOOT_RECEIVING = 2, /* the agent stores an image in secondary (size, received, hash) */
    PF_BOOT_PENDING = 3,   /* a verified image waits in secondary: swap at next boot */
    PF_BOOT_SWAPPING = 4,  /* swap-move in progress (step = steps done of 3*nsec) */
    PF_BOOT_TRIAL = 5,     /* the new image is in primary, not confirmed yet */
    PF_BOOT_REVERTING = 6, /* swapping back after a reset without confirmation */
} pf_boot_state;

#define PF_BOOT_F_PERMANENT 0x01u /* PENDING/SWAPPING: no trial, IDLE afterwards */
#define PF_BOOT_F_REVERTED 0x02u  /* IDLE: the last upgrade was rolled back */

#define PF_BOOT_RECORD_SIZE 64u

typedef struct pf_boot_record {
    uint32_t seq;
    uint8_t state; /* pf_boot_state */
    uint8_t flags;
    uint16_t step;
    uint16_t nsec;
    uint32_t size;     /* RECEIVING..: bytes of the image in secondary */
    uint32_t received; /* RECEIVING: bytes durably stored (erase-unit multiple or size) */
    uint8_t hash[32];  /* SHA-256 of the whole image file being received / installed */
} pf_boot_record;

const char *pf_boot_state_name(int state);

/* ---- configuration and session ----------------------------------------- */
typedef struct pf_boot_config {
    const pf_flash *flash;
    uint32_t primary_off;   /* primary slot: slot_size + one erase unit */
    uint32_t secondary_off; /* secondary slot: slot_size */
    uint32_t slot_size;     /* largest image, a multiple of erase_size */
    uint32_t state_off;     /* two erase units for the journal */
    /* Public key (DER SubjectPublicKeyInfo) images must be signed with; NULL =
     * accept unsigned images (SHA-256 still required). */
    const uint8_t *pubkey;
    size_t pubkey_len;
    pf_sig_verify_fn sig_verify;
    void *sig_user;
    /* Work buffer: >= 64 bytes and a multiple of prog_size and read_size that
     * divides erase_size. Bigger = fewer flash operations per copied unit. */
    uint8_t *buf;
    uint32_t buf_size;
    pf_diag *diag; /* failures explained here; may be NULL */
} pf_boot_config;

#define PF_BOOT_CONFIG_DEFAULT() \
    { .flash = NULL, .primary_off = 0, .secondary_off = 0, .slot_size = 0, .state_off = 0, .pubkey = NULL, \
      .pubkey_len = 0, .sig_verify = NULL, .sig_user = NULL, .buf = NULL, .buf_size = 0, .diag = NULL }

typedef struct pf_boot {
    pf_boot_config cfg;
    pf_boot_record rec; /* the current state (newest valid record) */
    uint8_t _key_hash[32];
    int _active;      /* journal unit holding rec, -1 = none yet */
    uint32_t _next;   /* next free record index in the active unit */
    uint32_t _rec_size;
    uint32_t _per_unit;
} pf_boot;

/* What pf_boot_run decided. */
typedef struct pf_boot_result {
    pf_mcuboot_info image; /* the verified image in primary to start */
    int trial;           /* 1: it runs on trial, must pf_boot_confirm() */
    int reverted;        /* 1: an unconfirmed upgrade was just rolled back */
    int swapped;         /* 1: this run did swap work */
} pf_boot_result;

/* Checks the layout and reads the journal (no writes). */
int pf_boot_open(pf_boot *b, const pf_boot_config *cfg);
/* The bootloader's work at reset: finishes or starts a pending swap, reverts
 * an unconfirmed trial, then verifies the primary image. Returns 0 with *res
 * filled when a verified image can start, else an error (no bootable image). */
int pf_boot_run(pf_boot *b, pf_boot_result *res);
/* The application accepts the image on trial (TRIAL -> IDLE). No-op if IDLE. */
int pf_boot_confirm(pf_boot *b);
/* Verifies the image in a slot (header, bounds, SHA-256, signature if a key
 * is configured). slot: 0 primary, 1 secondary. */
int pf_boot_check_slot(pf_boot *b, int slot, pf_mcuboot_info *info);
/* Marks the (verified) secondary image for installation at the next boot:
 * on trial, or permanent. Refuses a lower version than primary's unless
 * allow_downgrade. */
int pf_boot_request_install(pf_boot *b, int permanent, int allow_downgrade);
/* Appends a journal record (seq is set here) and makes it current. For the agent. */
int pf_boot_write_record(pf_boot *b, const pf_boot_record *rec);

/* Slot offsets for callers that store images. */
static inline uint32_t pf_boot_slot_off(const pf_boot *b, int slot)
{
    return slot ? b->cfg.secondary_off : b->cfg.primary_off;
}

#ifdef __cplusplus
}
#endif
#endif
