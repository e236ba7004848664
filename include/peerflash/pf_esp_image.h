/* ESP app images (.bin as esptool elf2image writes them): reader/validator.
 *
 * Layout: header `E9, segment count, flash mode, size<<4 | freq, entry u32`;
 * on every chip after the ESP8266 a 16-byte extended header follows (chip id
 * u16 at its bytes 4-5, min/max revision, hash_appended at byte 15); then
 * the segments `load address u32, length u32, data`; zero padding so that the
 * checksum byte (0xEF XOR every segment data byte) is the last byte of a
 * 16-byte block; then, if hash_appended, the SHA-256 of everything before.
 * The image is flashed as it is: validating it tells the user early that a
 * file is damaged or built for another chip. No allocation. */
#ifndef PEERFLASH_PF_ESP_IMAGE_H
#define PEERFLASH_PF_ESP_IMAGE_H

#include <stddef.h>
#include <stdint.h>

#include "pf_err.h"
#include "pf_esp.h"

#ifdef __cplusplus
extern "C" {
#endif

#define PF_ESP_IMAGE_MAGIC 0xE9
#define PF_ESP_IMAGE_MAX_SEGMENTS 16

typedef struct pf_esp_image_info {
    uint8_t segments;
    uint8_t flash_mode;     /* 0 QIO, 1 QOUT, 2 DIO, 3 DOUT */
    uint8_t flash_size;     /* code: high nibble of byte 3 (0 = 1MB, 1 = 2MB, 2 = 4MB, ...) */
    uint8_t flash_freq;     /* code: low nibble of byte 3 */
    uint32_t entry;
    int extended;           /* 1 if the 16-byte extended header is present */
    uint16_t chip_id;       /* from the extended header; 0xFFFF without it (ESP8266) */
    uint8_t min_rev;
    uint16_t min_rev_full, max_rev_full;
    int hash_appended;
    uint8_t checksum;       /* the stored (and verified) checksum byte */
    uint32_t length;        /* bytes of the image proper, checksum and hash included */
    uint32_t seg_addr[PF_ESP_IMAGE_MAX_SEGMENTS];
    uint32_t seg_len[PF_ESP_IMAGE_MAX_SEGMENTS];
    uint32_t seg_offset[PF_ESP_IMAGE_MAX_SEGMENTS]; /* file offset of each segment's data */
} pf_esp_image_info;

/* Validates the image in file[0..size). `chip` says which layout to expect
 * (ESP8266: no extended header); NULL guesses it from the content. Errors
 * (PF_ERR_FORMAT, PF_ERR_AUTH for a SHA-256 mismatch) name the byte offset
 * and what was found, e.g. "offset 0x1234: checksum 0x5a, computed 0x3c". */
int pf_esp_image_parse(const uint8_t *file, size_t size, const pf_esp_chip *chip, pf_esp_image_info *info,
                       pf_diag *diag);

/* The same check of an image that is not in memory: read(ctx, off, dst, n)
 * fills dst with the image's bytes [off, off+n) (n <= 64) and returns PF_OK
 * or a negative pf_err (then returned as it is, the reader's diag saying
 * why). An MCU checks a file on its SD card this way, 64 bytes at a time. */
typedef int (*pf_esp_image_read_fn)(void *ctx, uint32_t off, uint8_t *dst, uint32_t n);
int pf_esp_image_parse_read(pf_esp_image_read_fn read, void *ctx, size_t size, const pf_esp_chip *chip,
                            pf_esp_image_info *info, pf_diag *diag);
/* Refuses (PF_ERR_CHIP) an image built for another chip than the one the
 * ROM identified, naming both. */
int pf_esp_image_check_chip(const pf_esp_image_info *info, const pf_esp_chip *chip, pf_diag *diag);

/* The esp driver checks every ESP app image of a map this way for the
 * connected chip (its check_image hook: pf_session_check_image). */

#ifdef __cplusplus
}
#endif
#endif
