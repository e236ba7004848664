/* A simulated STM32 system-memory bootloader (ST AN3155, USART) on a pty.
 *
 * Byte for byte: autobaud on the first 0x7F, command + complement, XOR
 * checks, ACK 0x79 / NACK 0x1F, the device's memory map and erase geometry
 * (src/targets/stm32_chips.c), readout protection (NACKs while set; Readout
 * Unprotect mass-erases, then resets), write protection, program and erase
 * times, and the USART the ROM polls: ONE receive data register behind the
 * shift register, no FIFO. While the ROM programs, erases, computes or
 * transmits it does not read the register: the first byte arriving then
 * waits in it, every further byte is lost (overrun, logged and counted).
 *
 * Time: bytes from the host are stamped with their arrival on a modelled
 * line (one character = 11 bit times at `baud`, 8E1), bytes to the host are
 * released at the same rate, plus `reply_latency_ms` (a USB-serial adapter's
 * latency timer) if set. A pty has no reset line: after Go and after the
 * commands that reset the chip, the ROM waits for a new 0x7F. */
#ifndef PEERFLASH_SIM_STM32_H
#define PEERFLASH_SIM_STM32_H

#include <signal.h>
#include <stdint.h>

#include "peerflash/pf_err.h"
#include "peerflash/pf_stm32.h"

typedef struct pf_sim_stm32_config {
    const pf_stm32_chip *chip;
    const char *flash_path;       /* persisted flash image (NULL: in memory, erased) */
    uint32_t baud;                /* modelled line rate (default 115200) */
    uint32_t program_us_per_256;  /* Write Memory programming time per 256 bytes (default 7000) */
    uint32_t erase_ms_per_page;   /* erase time per 2 KiB of an erase unit, at least one per unit (default 20) */
    uint32_t mass_erase_ms;       /* mass erase time (default 10 x erase_ms_per_page) */
    uint32_t reply_latency_ms;    /* extra delay of every byte to the host (default 0) */
    int rdp;                      /* start read-protected */
    int wrp;                      /* start with all sectors write-protected */
    int checksum;                 /* Get Checksum: -1 chip default, 0 off, 1 on */
    int verbose;                  /* 0: overruns and errors only; 1: commands; 2: bytes */
    int fd;                       /* the host's side: an open non-blocking descriptor (a pty
                                   * master); the caller keeps and closes it */
} pf_sim_stm32_config;

#define PF_SIM_STM32_CONFIG_DEFAULT() {NULL, NULL, 115200, 7000, 20, 0, 0, 0, 0, -1, 0, -1}

typedef struct pf_sim_stm32_stats {
    uint32_t commands, acks, nacks, overruns, syncs;
    uint32_t programmed_bytes, erased_units, mass_erases;
} pf_sim_stm32_stats;

typedef struct pf_sim_stm32 pf_sim_stm32; /* opaque, allocated by open */

/* The simulators' shape (sim/README.md): open / run(stop flag) / close.
 * Creates the simulator on cfg->fd; loads or creates the flash file. */
int pf_sim_stm32_open(pf_sim_stm32 **out, const pf_sim_stm32_config *cfg, pf_diag *diag);
/* Serves the host until *stop becomes non-zero (checked at least every 50 ms). */
int pf_sim_stm32_run(pf_sim_stm32 *sim, volatile sig_atomic_t *stop);
void pf_sim_stm32_get_stats(const pf_sim_stm32 *sim, pf_sim_stm32_stats *out);
/* Current flash content (flash_size bytes) and protection state. */
const uint8_t *pf_sim_stm32_flash(const pf_sim_stm32 *sim);
int pf_sim_stm32_rdp(const pf_sim_stm32 *sim);
int pf_sim_stm32_wrp(const pf_sim_stm32 *sim);
void pf_sim_stm32_close(pf_sim_stm32 *sim);

/* `peerflash sim stm32 ...` */
int pf_sim_stm32_main(int argc, char **argv);

#endif
