/* Shared pieces of the peerflash command: subcommand entry points, exit
 * codes, progress display, image loading from files. */
#ifndef PEERFLASH_CLI_H
#define PEERFLASH_CLI_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "host/json.h"
#include "peerflash/peerflash.h"

/* Exit status (enum pf_exit, pf_exit_status() in pf_err.h: the same map
 * as the updater firmware's), documented in `peerflash --help` and docs/CLI.md. */

/* Every subcommand: argv[0] is the subcommand name. */
typedef int (*pf_cli_fn)(int argc, char **argv);
typedef struct pf_cli_command {
    const char *name;
    pf_cli_fn fn;
    const char *summary;
} pf_cli_command;

int pf_cmd_flash(int argc, char **argv);  /* flash, verify, read, erase, info */
int pf_cmd_ports(int argc, char **argv);
int pf_cmd_wire(int argc, char **argv);
int pf_cmd_sim(int argc, char **argv);

/* Prints "peerflash: <msg>" to stderr. */
void pf_cli_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Progress on stderr: a redrawn bar on a terminal, plain lines otherwise
 * (one per phase start, every 10%, and at the end). */
typedef struct pf_cli_progress {
    int tty;
    int quiet;
    int started;         /* a phase was reported: the fields below are set */
    pf_phase phase;      /* where the command is (or stopped) */
    uint32_t done, total;
    int last_phase;
    int last_decile;
    uint64_t phase_start_us;
    uint64_t last_draw_us;
} pf_cli_progress;
void pf_cli_progress_init(pf_cli_progress *p, int quiet);
void pf_cli_progress_cb(void *user, pf_phase phase, uint32_t done, uint32_t total);
void pf_cli_progress_end(pf_cli_progress *p);

/* Download progress for URL images (cli/download.c): a pf_http_progress_fn
 * whose user is a zeroed pf_cli_download with quiet set. */
typedef struct pf_cli_download {
    int quiet, started, tty;
    long long last_mark;
    uint64_t t0_us, last_draw_us;
} pf_cli_download;
void pf_cli_download_progress(void *user, uint64_t done, uint64_t total);

/* Runs run(user, port) for each of the n ports at once, each in its own
 * process (cli/multi.c); shows their output per port, a summary table, and
 * with json one object with an entry per target. Returns the worst status. */
int pf_cli_run_many(const char *const *ports, int n, const char *cmd, int json, int quiet,
                    int (*run)(void *user, const char *port), void *user);

/* Checks --chip, --reset, --baud and --connect-baud for a target before
 * anything is opened (cli/target_options.c). *chip_entry: the chip table's
 * name for a part number ("STM32F103C8T6" -> "STM32F103xB"). Returns 0, or
 * -1 with the reason, naming the option, in why. */
int pf_cli_check_target_options(const char *target, const char *chip, const char *reset, uint32_t baud,
                                uint32_t connect_baud, const char *port, const char **chip_entry, char *why,
                                size_t n);

/* The one target whose chip table knows chip (a name, alias or part
 * number), or NULL when none or several do: --target auto then probes. */
const char *pf_cli_target_of_chip(const char *chip);

/* An IMAGE@ADDR whose ADDR lies outside the flash of every chip of the
 * target (or of --chip): -1 with the reason in why; 0 otherwise. */
int pf_cli_check_load_address(const char *target, const char *chip, const char *spec, char *why, size_t n);

/* SIGINT/SIGTERM (cli/interrupt.c): install once; pf_cli_interrupted() is
 * the signal number caught, 0 if none. A port wrapped by
 * pf_cli_interrupt_wrap fails every call with PF_ERR_CLOSED once a signal
 * came, so a driver stops within 100 ms and the command ends normally. */
void pf_cli_interrupt_install(void);
int pf_cli_interrupted(void);
const char *pf_cli_signal_name(int sig);
void pf_cli_interrupt_wrap(const pf_port *inner, pf_port *out);
/* After ms milliseconds (0: never) every call of a wrapped port fails with
 * PF_ERR_TIMEOUT: a bound on one probe of --target auto. */
void pf_cli_port_deadline(uint32_t ms);
/* Exit status after a signal: 128 + its number (130 SIGINT, 143 SIGTERM). */
#define PF_EXIT_SIGNAL_BASE 128


#endif
