/* The flash port of the target-side libraries (agent, bootloader): the flash
 * the agent stores images in and the bootloader swaps, shaped like littlefs'
 * struct lfs_config: four callbacks on the caller's context plus geometry.
 *
 * Offsets are bytes from the start of this flash device (not CPU addresses).
 * Every callback returns 0 (PF_OK) or a negative pf_err; PF_ERR_IO means the
 * device failed (or lost power) and the caller must stop using it. */
#ifndef PEERFLASH_PF_FLASH_H
#define PEERFLASH_PF_FLASH_H

#include <stdint.h>

#include "pf_err.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct pf_flash {
    void *ctx; /* the implementation's state, passed back to every call */

    /* Reads len bytes at off. off and len are multiples of read_size. */
    int (*read)(void *ctx, uint32_t off, void *buf, uint32_t len);
    /* Programs len bytes at off; off and len are multiples of prog_size and the
     * bytes must be erased (reading erase_value) before: NOR can only move bits
     * away from the erased state. Callers never program a byte twice. */
    int (*prog)(void *ctx, uint32_t off, const void *buf, uint32_t len);
    /* Erases the erase unit that starts at off (a multiple of erase_size):
     * afterwards every byte of it reads erase_value. */
    int (*erase)(void *ctx, uint32_t off);
    /* Waits until every prog/erase so far is durable; may be NULL. */
    int (*sync)(void *ctx);

    uint32_t read_size;  /* smallest read, bytes (1 for memory-mapped NOR) */
    uint32_t prog_size;  /* program granule, bytes (1..256; 4 or 8 on most MCUs) */
    uint32_t erase_size; /* erase unit ("sector"), bytes, a multiple of prog_size */
    uint32_t size;       /* device size, bytes, a multiple of erase_size */
    uint8_t erase_value; /* value of an erased byte: 0xFF for NOR */
} pf_flash;

#ifdef __cplusplus
}
#endif
#endif
