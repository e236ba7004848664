/* pf-bench: runs every benchmark and prints one table (Markdown, so that it
 * can be pasted into docs/BENCHMARKS.md). `pf-bench --quick` runs smaller
 * sizes; `pf-bench NAME` runs only the named group. */
#include <libgen.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bench.h"

typedef void (*bench_fn)(pf_bench *b);
void pf_bench_agent(pf_bench *b);
void pf_bench_avr(pf_bench *b);
void pf_bench_image(pf_bench *b);
void pf_bench_wire(pf_bench *b);
void pf_bench_firmware(pf_bench *b);
void pf_bench_stm32(pf_bench *b);
void pf_bench_esp(pf_bench *b);
void pf_bench_esp4m(pf_bench *b);
void pf_bench_many(pf_bench *b);
void pf_bench_delta(pf_bench *b);
void pf_bench_serve(pf_bench *b);
/* Each benchmark file defines one of these; add a line below for a new one. */
static const struct {
    const char *name;
    bench_fn fn;
} benches[] = {
    {"agent", pf_bench_agent},
    {"avr", pf_bench_avr},
    {"image", pf_bench_image},
    {"wire", pf_bench_wire},
    {"firmware", pf_bench_firmware},
    {"stm32", pf_bench_stm32},
    {"esp", pf_bench_esp},
    {"many", pf_bench_many},
    {"delta", pf_bench_delta},
    {"serve", pf_bench_serve},
    {NULL, NULL},
};
/* Run only when named (`pf-bench esp4m`): too long for every `make bench`. */
static const struct {
    const char *name;
    bench_fn fn;
} named_only[] = {
    {"esp4m", pf_bench_esp4m},
    {NULL, NULL},
};

static char cli_path[PATH_MAX];

const char *pf_bench_cli(const pf_bench *b)
{
    snprintf(cli_path, sizeof cli_path, "%s/peerflash", b->exe_dir);
    return cli_path;
}

void pf_bench_row(pf_bench *b, const char *group, const char *what, double value, const char *unit, double peer,
                  const char *note)
{
    char peer_s[32] = "-", ratio_s[32] = "-";
    if (!isnan(peer)) {
        snprintf(peer_s, sizeof peer_s, "%.4g", peer);
        if (peer != 0)
            snprintf(ratio_s, sizeof ratio_s, "%.2fx", value / peer);
    }
    printf("| %-8s | %-44s | %10.4g %-8s | %10s | %7s | %s |\n", group, what, value, unit, peer_s, ratio_s,
           note ? note : "");
    fflush(stdout);
    b->rows++;
}

int main(int argc, char **argv)
{
    static char exe[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
    if (n <= 0) {
        perror("pf-bench: readlink /proc/self/exe");
        return 1;
    }
    exe[n] = '\0';
    pf_bench b = {dirname(exe), 0, 0};
    const char *only = NULL;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--quick"))
            b.quick = 1;
        else if (!strcmp(argv[i], "--help")) {
            printf("usage: pf-bench [--quick] [GROUP]\n(esp4m runs only when named)\n");
            return 0;
        } else
            only = argv[i];
    }
    printf("| group    | measured                                     | peerflash           | peer       | ratio   | how |\n");
    printf("|----------|----------------------------------------------|---------------------|------------|---------|-----|\n");
    for (size_t i = 0; benches[i].name; i++)
        if (!only || !strcmp(only, benches[i].name))
            benches[i].fn(&b);
    for (size_t i = 0; only && named_only[i].name; i++)
        if (!strcmp(only, named_only[i].name))
            named_only[i].fn(&b);
    if (b.rows == 0)
        printf("(no benchmarks built)\n");
    return 0;
}
