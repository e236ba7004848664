/* Code size and static RAM of the freestanding core on Cortex-M (issue 7).
 *
 * Reads <build>/firmware/parts.txt (written by the firmware build: one
 * NAME=FILE per library or ELF) and measures each with arm-none-eabi-size:
 * flash = text + data (initialisers live in flash), static RAM = data + bss.
 * Libraries are measured before --gc-sections (every function they hold);
 * the linked ELFs (core-check-<cpu>: core, every driver, MD5/SHA-256 and
 * deflate, all reachable from the updater's entry points; updater-mps2: the
 * QEMU updater firmware with its static buffers) after it. */
#include <stdio.h>
#include <string.h>

#include "bench.h"

static int measure(const char *file, unsigned long *text, unsigned long *data, unsigned long *bss)
{
    char cmd[4200];
    snprintf(cmd, sizeof cmd, "arm-none-eabi-size -B -t '%s' 2>/dev/null", file);
    FILE *p = popen(cmd, "r");
    if (!p)
        return -1;
    char line[4096];
    int ok = -1;
    while (fgets(line, sizeof line, p)) {
        unsigned long t, d, b;
        /* the last numeric line is the (TOTALS) line for an archive, the only one for an ELF */
        if (sscanf(line, " %lu %lu %lu", &t, &d, &b) == 3) {
            *text = t;
            *data = d;
            *bss = b;
            ok = 0;
        }
    }
    return pclose(p) == 0 ? ok : -1;
}

static const char *cpu_name(const char *name)
{
    if (strstr(name, "cortex-m0plus"))
        return "Cortex-M0+";
    if (strstr(name, "microbit"))
        return "Cortex-M0";
    if (strstr(name, "cortex-m3") || strstr(name, "mps2"))
        return "Cortex-M3";
    return "?";
}

/* "pf_drv_avr_cortex-m3" -> "avr driver"; "pf_core_cortex-m3" -> "core" ... */
static void part_label(const char *name, char *out, size_t n)
{
    if (!strncmp(name, "pf_drv_", 7)) {
        const char *end = strstr(name, "_cortex");
        snprintf(out, n, "%.*s driver", (int)(end ? end - (name + 7) : (long)strlen(name + 7)), name + 7);
    } else if (!strncmp(name, "pf_core_", 8))
        snprintf(out, n, "core (job, image readers, codecs)");
    else if (!strncmp(name, "pf_mbedtls_", 11))
        snprintf(out, n, "MD5+SHA-256 (mbedTLS)");
    else if (!strncmp(name, "pf_zlib_", 8))
        snprintf(out, n, "deflate (zlib)");
    else if (!strncmp(name, "core-check", 10))
        snprintf(out, n, "linked: core+drivers+crypto+deflate");
    else if (!strcmp(name, "updater-mps2"))
        snprintf(out, n, "updater firmware mps2-an385");
    else if (!strcmp(name, "updater-microbit"))
        snprintf(out, n, "updater firmware microbit (nRF51822)");
    else
        snprintf(out, n, "%.40s", name);
}

void pf_bench_firmware(pf_bench *b);
void pf_bench_firmware(pf_bench *b)
{
    char path[4200];
    snprintf(path, sizeof path, "%s/firmware/parts.txt", b->exe_dir);
    FILE *f = fopen(path, "r");
    if (!f) {
        pf_bench_row(b, "firmware", "not built (make firmware)", NAN, "", NAN, path);
        return;
    }
    char line[4400];
    while (fgets(line, sizeof line, f)) {
        line[strcspn(line, "\r\n")] = '\0';
        char *eq = strchr(line, '=');
        if (!eq)
            continue;
        *eq = '\0';
        const char *name = line, *file = eq + 1;
        unsigned long text, data, bss;
        char what[96], label[64], note[160];
        part_label(name, label, sizeof label);
        int linked = strstr(file, ".elf") != NULL;
        if (measure(file, &text, &data, &bss) < 0) {
            snprintf(what, sizeof what, "%s, %s", label, cpu_name(name));
            pf_bench_row(b, "firmware", what, NAN, "KiB", NAN, "arm-none-eabi-size failed (make firmware?)");
            continue;
        }
        int harness = !strncmp(name, "core-check", 10);
        snprintf(what, sizeof what, "%s, %s: flash", label, cpu_name(name));
        snprintf(note, sizeof note, "text+data, -Os, newlib-nano, %s%s (%lu B)",
                 linked ? "linked with --gc-sections" : "whole library",
                 harness ? ", only the drivers built in" : "", text + data);
        pf_bench_row(b, "firmware", what, (double)(text + data) / 1024.0, "KiB", NAN, note);
        if (harness)
            continue; /* its RAM is the link check's own buffers, not the core's */
        snprintf(what, sizeof what, "%s, %s: static RAM", label, cpu_name(name));
        snprintf(note, sizeof note, "data+bss%s",
                 !strcmp(name, "updater-mps2")       ? ": image arena 256 KiB, driver state 240 KiB, work 32 KiB, stack not counted"
                 : !strcmp(name, "updater-microbit") ? ": image arena 7 KiB, driver state 1152 B, work 512 B; plus a 3 KiB "
                                                       "stack, of 16 KiB"
                                                     : "");
        unsigned long ram = data + bss;
        if (ram < 10240)
            pf_bench_row(b, "firmware", what, (double)ram, "bytes", NAN, note);
        else
            pf_bench_row(b, "firmware", what, (double)ram / 1024.0, "KiB", NAN, note);
    }
    fclose(f);
}
