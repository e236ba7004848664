/* A simulated ESP32-family chip in its ROM serial loader (download mode),
 * byte for byte as the real ROM answers, over a pty or a TCP socket:
 *
 *  - SYNC answered 8 times; every ROM response carries the value of the last
 *    READ_REG in `val`; 4 status bytes (2 on the ESP8266); a command the ROM
 *    lacks is answered with the PREVIOUS response's op and val and status 01 05;
 *  - FLASH_BEGIN/FLASH_DEFL_BEGIN erase up front (--erase-ms-per-4k), each
 *    data block is checked (checksum, sequence, size) and written before the
 *    answer (--write-us-per-kb); FLASH_DEFL_DATA is inflated by zlib; flash
 *    has NOR semantics (programming only clears bits);
 *  - SPI_FLASH_MD5 hashes the flash file; READ_FLASH_SLOW; CHANGE_BAUDRATE
 *    answers at the old rate, then re-sets the port's line rate (a pty's
 *    termios, so `peerflash wire --baud follow` sees it);
 *  - a RAM upload that ends with MEM_END(entry) is taken as the flasher stub:
 *    the sim then sends "OHAI" and plays the stub's part (2 status bytes,
 *    16 KiB blocks, ERASE_FLASH/ERASE_REGION, READ_FLASH with acks, raw MD5).
 * One command at a time: nothing is read while a command is being handled. */
#ifndef PEERFLASH_SIM_ESP32_H
#define PEERFLASH_SIM_ESP32_H

#include <signal.h>
#include <stdint.h>

#include "peerflash/pf_err.h"
#include "peerflash/pf_esp.h"
#include "peerflash/pf_posix.h"

typedef struct pf_sim_esp32_config {
    const char *port;          /* endpoint spec (pty:PATH, PATH, tcp-listen://PORT, ...) */
    const char *flash_path;    /* flash contents file (created/extended with FF); NULL = in memory */
    const char *chip;          /* "esp32" (default), "esp32s3", ... */
    uint32_t flash_size;       /* bytes (default 4 MiB) */
    uint32_t erase_ms_per_4k;  /* sector erase time (default 20) */
    uint32_t write_us_per_kb;  /* program time per KiB (default 1500) */
    int verbose;               /* 1: log each command to stderr */
    int exit_on_close;         /* TCP: stop when the peer disconnects (default 1) */
    int reset_on_open;         /* pty: an open of the port resets the chip into the ROM loader,
                                * standing in for the DTR/RTS reset a pty cannot carry (default 1) */
} pf_sim_esp32_config;

#define PF_SIM_ESP32_CONFIG_DEFAULT() \
    { NULL, NULL, "esp32", 4u << 20, 20, 1500, 0, 1, 1 }

typedef struct pf_sim_esp32_stats {
    uint32_t commands;      /* requests handled */
    uint32_t bad_frames;    /* frames that were not requests */
    uint32_t sectors_erased;
    uint32_t bytes_written; /* bytes programmed into flash */
    uint32_t baud;          /* current line rate */
    uint32_t baud_changes;
    int stub;               /* 1 once a stub was "uploaded" */
    int app_running;        /* 1 after FLASH_END / RUN_USER_CODE left the loader */
    uint32_t resets;        /* resets into the loader because the port was opened */
    uint8_t last_error;     /* last error byte sent */
    uint32_t rx_lost;       /* bytes lost: they arrived while a command ran and the UART FIFO was full */
    uint32_t bad_checksums; /* data blocks refused for their checksum */
} pf_sim_esp32_stats;

typedef struct pf_sim_esp32 pf_sim_esp32;

/* The simulators' shape (sim/README.md): open / run(stop flag) / close.
 * Opens the port and the flash file; the port exists when this returns.
 * A pf_err with the cause in diag on failure (*out NULL). */
int pf_sim_esp32_open(pf_sim_esp32 **out, const pf_sim_esp32_config *cfg, pf_diag *diag);
/* Serves requests until *stop becomes nonzero (checked every 50 ms; a
 * signal handler may set it) or, for TCP with exit_on_close, the peer goes
 * away. Returns 0 or a pf_err. */
int pf_sim_esp32_run(pf_sim_esp32 *sim, volatile sig_atomic_t *stop);
void pf_sim_esp32_get_stats(const pf_sim_esp32 *sim, pf_sim_esp32_stats *st);
/* The flash contents (flash_size bytes), for tests. */
uint8_t *pf_sim_esp32_flash(pf_sim_esp32 *sim);
void pf_sim_esp32_close(pf_sim_esp32 *sim);

/* `peerflash sim esp32 ...` */
int pf_sim_esp32_main(int argc, char **argv);

#endif
