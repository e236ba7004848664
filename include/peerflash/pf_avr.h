/* The AVR driver (`--target avr`): STK500 version 1, as Optiboot and the
 * older Arduino bootloaders (ATmegaBOOT) speak it over a UART.
 *
 * State: opaque, ctx_size bytes of the caller's (an MCU places a static
 * buffer of that size), as for every driver.
 *
 * Reset into the bootloader (pf_target_config.reset):
 *   NULL/"auto"  the Arduino auto-reset circuit: DTR and RTS are released,
 *                then asserted (the falling edge of DTR#/RTS# pulses RESET
 *                through the board's 100 nF capacitor). On a link without
 *                modem lines (a pty, a TCP bridge) this is skipped, not fatal.
 *   "none"       no pulse: the bootloader is already waiting (reset by hand,
 *                by the simulator when the port opens, or by a bridge).
 * Over tcp:// bridges (ESP-Link and the like) there are no lines to pulse:
 * the bridge resets the AVR itself (ESP-Link pulses its reset GPIO when it
 * sees the STK500 sync bytes, or on its /console/reset URL), or press reset
 * just before running peerflash; Optiboot waits about 1 s after a reset.
 *
 * Verify: STK500v1 has no digest, so the job reads back (PF_CAP_READ).
 * Reads are fetched 256 bytes at a time (the protocol's largest block) and
 * served to the job's page-sized reads from a small cache.
 * Optional read-compare (pf_avr_set_read_compare): before writing a page,
 * read it and skip the write when the flash already holds the data. */
#ifndef PEERFLASH_PF_AVR_H
#define PEERFLASH_PF_AVR_H

#include <stdint.h>

#include "pf_target.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct pf_avr_chip {
    const char *name;   /* "ATmega328P" */
    const char *alias;  /* avrdude's part id: "m328p" */
    uint8_t sig[3];     /* device signature, as STK_READ_SIGN returns it */
    uint32_t flash_size;
    uint16_t page_size;
    uint16_t boot_size; /* the bootloader section of the usual STK500v1 bootloader */
} pf_avr_chip;

/* The chip table, terminated by an entry with name == NULL. */
extern const pf_avr_chip pf_avr_chips[];
const pf_avr_chip *pf_avr_chip_by_sig(const uint8_t sig[3]);
/* Case-insensitive; takes "ATmega328P", "atmega328p" or "m328p". */
const pf_avr_chip *pf_avr_chip_by_name(const char *name);

#define PF_AVR_SYNC_TIMEOUT_MS 3000u /* how long connect looks for the bootloader */

/* The driver's state is opaque: pf_target_avr.ctx_size bytes of the
 * caller's, zeroed (pf_session_state_size("avr")). */

extern const pf_target_ops pf_target_avr;

/* Turns read-compare on or off (after open, before or after connect);
 * self is the state given to open. The CLI's --read-compare. */
void pf_avr_set_read_compare(void *self, int on);

#ifdef __cplusplus
}
#endif
#endif
