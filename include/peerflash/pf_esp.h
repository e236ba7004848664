/* The ESP ROM serial loader driver (`--target esp`) and its chip table.
 *
 * Speaks to the mask-ROM loader of ESP8266 and the ESP32 family over SLIP
 * (esptool's serial protocol), without uploading any stub: every command is
 * answered by the ROM before the next is sent. Speed comes from compressing
 * on the fly (FLASH_DEFL_*, zlib), a faster line rate after sync and never
 * waiting idle. The rate: cfg.fast_baud (--baud) pins it; 0 climbs down the
 * ladder 921600, 460800, 230400 with CHANGE_BAUDRATE and keeps the first rung
 * the link and the ROM carry (a READ_REG answered), else the connect rate. A
 * link without a rate of its own (TCP bridge) stays at the connect rate; an
 * RFC 2217 link forwards the change and climbs like a tty.
 *
 * cfg.reset (pf_target_config): NULL or "auto" alternates the two reset
 * circuits below between attempts; "classic" drives DTR and RTS one call at a
 * time (the usual two-transistor auto-reset: DTR -> IO0, RTS -> EN); "tight"
 * sets both lines in one call per step (adapters that glitch between two
 * ioctls); "none" assumes the chip already waits in download mode. Missing
 * modem lines (a pty, a TCP bridge) are not an error. */
#ifndef PEERFLASH_PF_ESP_H
#define PEERFLASH_PF_ESP_H

#include <stdint.h>

#include "pf_target.h"

#ifdef __cplusplus
extern "C" {
#endif

/* One chip of the family as the ROM loader presents it. */
typedef struct pf_esp_chip {
    const char *name;          /* "ESP32-S3" */
    const char *key;           /* "esp32s3": the --chip word */
    uint16_t image_chip_id;    /* chip id in the app image's extended header; 0xFFFF = none (ESP8266) */
    uint32_t security_chip_id; /* chip id in GET_SECURITY_INFO; 0 = not reported there */
    uint8_t security_info_len; /* GET_SECURITY_INFO payload bytes: 0 (absent), 12 (S2), 20 */
    uint32_t magic[4];         /* READ_REG 0x40001000 values; 0 ends the list */
    uint8_t status_len;        /* status bytes at the end of ROM responses: 2 or 4 */
    uint8_t rom_deflate;       /* ROM implements FLASH_DEFL_* and SPI_FLASH_MD5 */
    uint8_t begin_encrypt_word;/* ROM FLASH_BEGIN / FLASH_DEFL_BEGIN take a 5th word */
    uint8_t needs_spi_attach;  /* ROM wants SPI_ATTACH before flash commands */
    uint32_t bootloader_addr;  /* flash offset of the 2nd-stage bootloader */
    /* SPI0 registers for a user command (flash id): base and offsets */
    uint32_t spi_base, spi_usr, spi_usr1, spi_usr2, spi_w0, spi_mosi_dlen, spi_miso_dlen;
    /* What the ROM's data path takes (sources in esp_chips.c): */
    uint16_t rom_block;        /* FLASH_DATA / FLASH_DEFL_DATA block size the ROM takes */
    uint16_t rx_fifo;          /* UART RX FIFO bytes; the ROM polls it and does not read it while a
                                * command runs; 0 = unknown: nothing is sent ahead of an answer */
} pf_esp_chip;

#define PF_ESP_MAGIC_REG 0x40001000u

/* The table, ended by an entry with name == NULL. */
extern const pf_esp_chip pf_esp_chips[];
/* Lookups; NULL when nothing matches. Names match case-insensitively with
 * or without the dash ("ESP32-S3", "esp32s3", "esp32-s3"). */
const pf_esp_chip *pf_esp_chip_by_name(const char *name);
const pf_esp_chip *pf_esp_chip_by_security_id(uint32_t chip_id);
const pf_esp_chip *pf_esp_chip_by_magic(uint32_t magic);
const pf_esp_chip *pf_esp_chip_by_image_id(uint16_t image_chip_id);

/* The driver. ctx_size is large (deflate state and a 32 KiB segment, ~185 KiB):
 * allocate it, or on an MCU place it statically. */
extern const pf_target_ops pf_target_esp;

/* Driver options, set between open() and connect(). */
typedef struct pf_esp_options {
    int compress;          /* use FLASH_DEFL_* where the ROM has it (default 1) */
    int level;             /* zlib level 1..9 (default 9) */
    uint32_t flash_size;   /* bytes; 0 = detect from the flash id (default) */
    unsigned sync_attempts;/* reset+sync rounds before giving up (default 4) */
    int ahead;             /* bytes of the next data frame sent before the previous block's answer:
                            * -1 (default) = half the chip's UART RX FIFO, 0 = none;
                            * a larger value is a too-eager host (tests) */
    int method;            /* host builds, compressed writes (`--compress`): PF_ESP_Z_AUTO (default),
                            * PF_ESP_Z_FAST (zlib -9, window 2^15) or PF_ESP_Z_BEST (zopfli); the
                            * compression runs on a thread ahead of the line. MCU builds: zlib in line */
} pf_esp_options;

#define PF_ESP_Z_FAST 0
#define PF_ESP_Z_BEST 1
#define PF_ESP_Z_AUTO 2 /* zopfli for a 32 KiB segment only when the data waiting for the line lasts twice its expected time */

#define PF_ESP_OPTIONS_DEFAULT() \
    { .compress = 1, .level = 9, .flash_size = 0, .sync_attempts = 4, .ahead = -1, .method = PF_ESP_Z_AUTO }

int pf_esp_set_options(void *self, const pf_esp_options *opt);

/* What the last run sent, for benchmarks and tests. */
typedef struct pf_esp_stats {
    uint32_t raw_bytes;     /* bytes given to write() */
    uint32_t sent_bytes;    /* data bytes in FLASH_DATA / FLASH_DEFL_DATA blocks */
    uint32_t blocks;        /* data commands sent */
    uint32_t baud;          /* current line rate */
    uint32_t retries;       /* fresh starts of a 32 KiB segment after a block was damaged on the line */
    uint32_t rate_fallbacks;/* rungs of the rate ladder tried and left because the link did not carry them */
    uint32_t spoiled;       /* blocks sent ahead of an answer that said the previous one was damaged: their
                             * rest went with a wrong checksum so the ROM refused them */
    uint32_t zsegs_fast;    /* host builds: 32 KiB segments compressed by zlib / by zopfli on the */
    uint32_t zsegs_best;    /* compressor thread */
    uint32_t zwait_ms;      /* time the line waited for that thread */
    uint32_t erase_skipped; /* bytes the job found erased, so no BEGIN erased them */
} pf_esp_stats;
void pf_esp_get_stats(const void *self, pf_esp_stats *st);

/* The chip found by connect (NULL before). */
const pf_esp_chip *pf_esp_connected_chip(const void *self);

#ifdef __cplusplus
}
#endif
#endif
