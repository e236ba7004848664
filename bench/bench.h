/* `make bench`: one program that measures and prints a table. Each component
 * adds bench/bench_<name>.c with one function and one line in main.c. A row
 * holds our figure, the third-party peer's figure measured in the same run
 * (NAN when there is none), and their ratio. */
#ifndef PEERFLASH_BENCH_H
#define PEERFLASH_BENCH_H

#include <math.h>

typedef struct pf_bench {
    const char *exe_dir; /* folder of pf-bench, where build/peerflash is */
    int quick;           /* --quick: smaller sizes (CI smoke run) */
    int rows;
} pf_bench;

/* Prints one row: group, what was measured, our value and unit, the peer's
 * value (or NAN), and a note saying how it was measured. */
void pf_bench_row(pf_bench *b, const char *group, const char *what, double value, const char *unit,
                  double peer, const char *note);

/* The agent+bootloader firmware for Cortex-M0+ (bench_agent's code size
 * program) as one compile command into cmd: writes its main and crypto
 * glue into dir; agent/sig select the parts, defs are extra flags (e.g.
 * -DWITH_TABLE: the main includes dir/table.h, a constant table), proto_c
 * replaces src/agent/proto.c when not NULL. -1 with *why when arm-none-eabi-gcc
 * or the Debian sources (fetched by the firmware build) are missing. */
#include <stddef.h>
int pf_bench_agent_fw_cmd(const pf_bench *b, const char *dir, int agent, int sig, const char *defs,
                          const char *proto_c, const char *out_elf, char *cmd, size_t cap, const char **why);

/* bench/proc.c: wall clock in seconds; a process with stdout and stderr
 * into out_path (NULL: /dev/null); SIGTERM, then SIGKILL after 2 s. */
#include <sys/types.h>
double pf_bench_now_s(void);
pid_t pf_bench_spawn(char *const argv[], const char *out_path);
void pf_bench_stop(pid_t pid);

/* Path of build/peerflash next to pf-bench. */
const char *pf_bench_cli(const pf_bench *b);

#endif
