/* `peerflash sim agent`: the agent and the bootloader over simulated NOR
 * flash (file-backed), on a pty or socket endpoint, with simulated resets. */
#ifndef PEERFLASH_SIM_AGENT_H
#define PEERFLASH_SIM_AGENT_H

#include <signal.h>
#include <stdint.h>
#include <stdio.h>

#include "peerflash/pf_err.h"

typedef struct pf_sim_agent_config {
    const char *port;       /* endpoint spec (pf_posix_open) */
    const char *flash_path; /* NULL = memory only */
    uint32_t slot_size;     /* bytes, multiple of 4 KiB (default 256 KiB) */
    const char *key_path;   /* PEM public or private key: images must be signed; NULL = hash only */
    uint32_t prog_us_per_kib; /* simulated program time (default 2800: SPI NOR, 0.7 ms per 256 B page) */
    uint32_t erase_ms;      /* simulated 4 KiB sector erase (default 45 ms, SPI NOR typical) */
    unsigned window;        /* DATA frames in flight the device buffers (default 8) */
    unsigned payload;       /* data bytes per frame (default 1024) */
    int allow_downgrade;
    int verbose;
    FILE *log;              /* event lines; NULL = stderr */
    const char *factory;    /* optional image file written into primary if it holds none */
    const char *power_cuts; /* "N[,N...]": cut power at these flash operations (counted
                             * from start; prog+erase), then reboot */
    uint32_t rx_ring;       /* bytes the UART (DMA ring) holds while the CPU is busy with
                             * flash; more is lost (default 12288; 0 = unlimited) */
    unsigned deflate_bits;  /* inflate window the device offers (9..15; default 12, 0 = none) */
} pf_sim_agent_config;

#define PF_SIM_AGENT_CONFIG_DEFAULT() \
    { NULL, NULL, 256u * 1024u, NULL, 2800, 45, 8, 1024, 0, 0, NULL, NULL, NULL, 12288, 12 }

typedef struct pf_sim_agent pf_sim_agent; /* one per process: the UART model is static */

/* The simulators' shape (sim/README.md): open / run(stop flag) / close.
 * Opens the flash file and the port (the port exists when this returns);
 * a pf_err with the cause in diag on failure. */
int pf_sim_agent_open(pf_sim_agent **out, const pf_sim_agent_config *cfg, pf_diag *diag);
/* Boots and serves until *stop becomes nonzero (checked every 50 ms; a
 * signal handler may set it). Returns 0 or a pf_err. */
int pf_sim_agent_run(pf_sim_agent *sim, volatile sig_atomic_t *stop);
void pf_sim_agent_close(pf_sim_agent *sim);
/* The `peerflash sim agent` command. */
int pf_sim_agent_main(int argc, char **argv);

#endif
