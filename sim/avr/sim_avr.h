/* `peerflash sim avr`: real Optiboot on a simulated ATmega328P (libsimavr). */
#ifndef PEERFLASH_SIM_AVR_H
#define PEERFLASH_SIM_AVR_H

#include <signal.h>
#include <stdint.h>

#include "peerflash/pf_err.h"

typedef struct pf_sim_avr_config {
    const char *port;       /* the pty to create (pty:PATH or a new PATH); the chip resets
                             * when it is opened (reset_on_open), as an Uno does */
    const char *bootloader; /* Intel HEX (NULL: the Optiboot built with peerflash) */
    const char *flash_dump; /* the whole flash is written here when run ends (NULL: none) */
    const char *uart_log;   /* what the application prints on UART0 is appended here */
    int reset_on_open;      /* default 1 */
    int realtime;           /* pace in real time even while bytes move (default 0) */
    int verbose;
    double page_write_ms;   /* one page erase and one page write (default 4.5) */
    double startup_ms;      /* held in reset after a reset, UART off (default 65) */
    uint32_t baud;          /* the UART's line rate (default 115200) */
} pf_sim_avr_config;

#define PF_SIM_AVR_CONFIG_DEFAULT() {NULL, NULL, NULL, NULL, 1, 0, 0, 4.5, 65.0, 115200u}

typedef struct pf_sim_avr pf_sim_avr; /* one per process (libsimavr's flash hook has no context) */

/* The simulators' shape (sim/README.md): open / run(stop flag) / close.
 * Loads the bootloader, creates the pty (it exists when this returns) and
 * powers the chip on. A pf_err with the cause in diag (or on stderr). */
int pf_sim_avr_open(pf_sim_avr **out, const pf_sim_avr_config *cfg, pf_diag *diag);
/* Runs the chip until *stop becomes nonzero (a signal handler may set it),
 * then writes the flash dump. 0 or a pf_err. */
int pf_sim_avr_run(pf_sim_avr *sim, volatile sig_atomic_t *stop);
void pf_sim_avr_close(pf_sim_avr *sim);

/* The command's entry point: argv[0] is "avr". Returns an exit status.
 * SIGUSR1 resets the chip (the reset button). */
int pf_sim_avr_main(int argc, char **argv);

#endif
