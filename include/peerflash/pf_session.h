/* One connection set-up for every front end (the peerflash command, the
 * updater firmware, the network daemon): find the driver, check and apply
 * its options, open, connect, run what the options asked for after
 * connecting, check the image for the connected chip.
 *
 * Freestanding: no allocation, no stdio. The caller owns the session, the
 * port and the driver state (state_size bytes, at least
 * pf_session_state_size(target)); failures are explained in
 * target_cfg.diag, naming the option and the driver where one is wrong.
 *
 *     pf_session s;
 *     pf_session_config c = PF_SESSION_CONFIG_DEFAULT();
 *     c.target = "avr"; c.target_cfg.port = &port; c.target_cfg.diag = &diag;
 *     c.state = buf; c.state_size = sizeof buf;
 *     int r = pf_session_open(&s, &c);
 *     if (r == PF_OK) r = pf_session_connect(&s);
 *     if (r == PF_OK) r = pf_session_check_image(&s, &map);
 *     if (r == PF_OK) r = pf_job_flash(&s.target, &map, &job, &res);
 *     pf_session_close(&s);
 */
#ifndef PEERFLASH_PF_SESSION_H
#define PEERFLASH_PF_SESSION_H

#include <stddef.h>
#include <stdint.h>

#include "pf_err.h"
#include "pf_memmap.h"
#include "pf_target.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct pf_session_config {
    const char *target;          /* registry name ("avr", "esp", "stm32", "agent", ...) */
    pf_target_config target_cfg; /* port, diag, baud, fast_baud, chip, reset, verbose, progress */
    const char *const *options;  /* driver options, each "name" or "name=value", NULL-terminated; may be NULL */
    void *state;                 /* caller-owned driver state, state_size bytes, zeroed by pf_session_open */
    size_t state_size;           /* >= pf_session_state_size(target) */
    unsigned command;            /* PF_CMD_* the session is for: options not valid for it are refused;
                                  * 0 = do not check */
    /* Registry to search; NULL = pf_target_drivers (tests and products may
     * bring drivers of their own). */
    const pf_target_ops *const *drivers;
} pf_session_config;

#define PF_SESSION_CONFIG_DEFAULT() \
    { .target = NULL, .target_cfg = PF_TARGET_CONFIG_DEFAULT(), .options = NULL, .state = NULL, .state_size = 0, \
      .command = 0, .drivers = NULL }

typedef struct pf_session {
    pf_target target; /* ops, self, info (info filled by connect) */
    pf_diag *diag;
    int opened, connected;
} pf_session;

/* Bytes of state the driver needs; 0 when no such driver. */
size_t pf_session_state_size(const char *target);
/* The same, in a given registry (NULL = pf_target_drivers). */
size_t pf_session_state_size_in(const pf_target_ops *const *drivers, const char *target);

/* Finds the driver, checks the options (PF_ERR_ARG naming an unknown one,
 * one the driver does not take, or one not valid for the command), zeroes
 * the state, calls ops->open and hands each option to ops->set_option.
 * No I/O. On failure the session needs no close (but close is harmless). */
int pf_session_open(pf_session *s, const pf_session_config *c);
/* ops->connect, then what the options asked for after connecting
 * (ops->after_connect: STM32 unprotect). diag.op says which failed. */
int pf_session_connect(pf_session *s);
/* The driver's image check hook (ESP image header and chip id) on a
 * connected session; PF_OK when the driver has none. */
int pf_session_check_image(pf_session *s, const pf_memmap *map);
/* The driver's result statistics (all zero when it has no stats hook). */
void pf_session_stats(const pf_session *s, pf_target_stats *out);
/* "name: value" lines for `info`: info.details, then the driver's details
 * hook (which may talk to the target). out is NUL-terminated. */
int pf_session_details(pf_session *s, char *out, size_t n);
void pf_session_close(pf_session *s);

/* Checks option words against a driver's table without opening anything
 * (a front end refuses a bad command line before it opens the port):
 * PF_ERR_ARG naming the option and the driver, as pf_session_open does. */
int pf_target_check_options(const pf_target_ops *ops, const char *const *options, unsigned command,
                            pf_diag *diag);
/* The option of ops called name (the part of a word before '='), NULL if none. */
const pf_target_option *pf_target_option_find(const pf_target_ops *ops, const char *name, size_t name_len);
/* 1 when value is one an option with this arg takes: any value for a
 * metavar ("OLD"), one of the words of a choice list ("fast|best|auto"). */
int pf_target_option_value_ok(const char *arg, const char *value);
/* Short name of one PF_CMD_* bit ("flash", ...). */
const char *pf_command_name(unsigned command);

/* The drivers of a registry (NULL = pf_target_drivers) in listing order:
 * by probe rank, then those never probed in registry order. Returns the
 * count (at most max). */
size_t pf_target_list(const pf_target_ops *const *drivers, const pf_target_ops **out, size_t max);
/* Help lines for the driver options valid for command (PF_CMD_*), from the
 * drivers' own tables: "  --NAME ARG          drv, drv: help", wrapped
 * at about 100 columns. An option several drivers declare is listed once
 * (with the first one's help). Returns the length the text needs. */
size_t pf_target_options_help(const pf_target_ops *const *drivers, unsigned command, char *out, size_t n);

#ifdef __cplusplus
}
#endif
#endif
