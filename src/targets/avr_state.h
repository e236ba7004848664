/* The AVR driver's state: private to src/targets/avr.c (and white-box
 * tests). Callers see ctx_size bytes of opaque storage. */
#ifndef PEERFLASH_TARGETS_AVR_STATE_H
#define PEERFLASH_TARGETS_AVR_STATE_H

#include <stdint.h>

#include "peerflash/pf_avr.h"

#define PF_AVR_READ_BLOCK 256u

typedef struct pf_avr {
    pf_target_config cfg;
    const pf_avr_chip *chip;
    int connected;
    int read_compare;          /* skip pages that already hold the data */
    uint32_t sync_timeout_ms;  /* 0 = PF_AVR_SYNC_TIMEOUT_MS */
    uint8_t sw_major, sw_minor;
    uint8_t last_bad;          /* the last unexpected byte the bootloader sent */
    int have_bad;
    int ext_valid;             /* ext_addr holds what the bootloader has */
    int addr_valid;            /* addr_reg is the bootloader's address register */
    uint32_t addr_reg;         /* byte address its next Read Page starts at */
    uint8_t ext_addr;
    uint32_t skipped_pages;    /* pages read-compare found unchanged */
    uint32_t cache_addr;       /* read cache: [cache_addr, cache_addr+cache_len) */
    uint32_t cache_len;
    uint8_t cache[PF_AVR_READ_BLOCK];
    uint8_t frame[4 + 256 + 1]; /* one command frame */
} pf_avr;

#endif
