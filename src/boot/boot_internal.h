/* Shared between the files of the bootloader core (not public). */
#ifndef PEERFLASH_BOOT_INTERNAL_H
#define PEERFLASH_BOOT_INTERNAL_H

#include "peerflash/pf_boot.h"

#define PF_BOOT_MAX_READ_SIZE 32u /* largest read_size supported */
#define PF_BOOT_RECORD_MAGIC 0x54534650u /* "PFST" */

/* Reads len bytes at any offset (handles read_size alignment). */
int pf_boot_read_any(pf_boot *b, uint32_t off, uint8_t *dst, uint32_t len);
/* Header + TLV info without hashing: info (total_size set), hashed length. */
int pf_boot_image_bounds(pf_boot *b, uint32_t base, pf_mcuboot_info *info, uint32_t *hlen, uint32_t *tlv_off);

#endif
