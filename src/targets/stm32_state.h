/* The STM32 driver's state: private to src/targets/stm32.c (and white-box
 * tests). Callers see ctx_size bytes of opaque storage. */
#ifndef PEERFLASH_TARGETS_STM32_STATE_H
#define PEERFLASH_TARGETS_STM32_STATE_H

#include <stdint.h>

#include "peerflash/pf_stm32.h"

/* Zeroed before open(). */
typedef struct pf_stm32 {
    pf_target_config _cfg;
    const pf_stm32_chip *chip;  /* after connect */
    uint8_t bl_version;
    uint8_t _ops[32];
    uint8_t _n_ops;
    uint8_t _erase_op;          /* 0x43 / 0x44 / 0 none */
    uint8_t _has_crc;
    uint8_t _connected;
    uint8_t _lines;             /* the link has modem lines */
    uint8_t last_nack_op;       /* opcode of the command that got the last NACK */
    uint8_t _tries;             /* tries of the last exchange, and how many of */
    uint8_t _data_nacks;        /* them ended in a NACK after the data frame */
    uint8_t _unprotected;       /* Read/Write/Erase was ACKed this session: no RDP */
    uint8_t _want_unprotect_read;  /* options: run after connect */
    uint8_t _want_unprotect_write;
    pf_stm32_stats stats;
    uint8_t _buf[1040]; /* erase frames: 2 + 2*512 + 1 bytes */
} pf_stm32;

#endif
