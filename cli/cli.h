/* Shared pieces of the peerflash command: subcommand entry points, exit
 * codes, progress display, image loading from files. */
#ifndef PEERFLASH_CLI_H
#define PEERFLASH_CLI_H

#include <stdint.h>
#include <stdio.h>

#include "host/json.h"
#include "peerflash/peerflash.h"

/* Exit status, documented in `peerflash --help` and docs/CLI.md. */
enum pf_exit {
    PF_EXIT_OK = 0,
    PF_EXIT_FAIL = 1,    /* anything not listed below */
    PF_EXIT_USAGE = 2,   /* bad command line */
    PF_EXIT_IMAGE = 3,   /* image file unreadable, malformed, out of range */
    PF_EXIT_LINK = 4,    /* port cannot be opened, no answer, link lost */
    PF_EXIT_TARGET = 5,  /* target refused, wrong chip, protected, unsupported */
    PF_EXIT_VERIFY = 6,  /* flash differs from the image after writing */
};

/* Maps a pf_err to the exit status for that cause. */
int pf_cli_exit_code(int err);

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


#endif
