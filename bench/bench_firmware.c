/* Code size and static RAM of the freestanding core on Cortex-M (issue 7).
 *
 * Reads <build>/firmware/parts.txt (written by the firmware build: one
 * NAME=FILE per library or ELF) and measures each with arm-none-eabi-size:
 * flash = text + data (initialisers live in flash), static RAM = data + bss.
 * Libraries are measured before --gc-sections (every function they hold);
 * the linked ELFs (core-check-<cpu>: core, every driver, MD5/SHA-256 and
 * deflate, all reachable from the updater's entry points; updater-mps2: the
 * QEMU updater firmware with its static buffers) after it.
 *
 * Then the RAM budgets of issue 15 (static RAM from each microbit updater's
 * map + the stack high-water mark of the jobs it runs in QEMU, per
 * configuration, with the budget and PASS/FAIL) and what the microbit's
 * small deflate window costs on a real firmware image. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zlib.h>

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
    else if (!strcmp(name, "updater-microbit-esp"))
        snprintf(out, n, "updater firmware microbit, with esp");
    else
        snprintf(out, n, "%.40s", name);
}

/* .data + .bss of a linked ELF, from its linker map (the output section
 * lines: ".data  0xADDR  0xSIZE ..."). -1 when the map cannot be read. */
static long map_static_ram(const char *map_path)
{
    FILE *f = fopen(map_path, "r");
    if (!f)
        return -1;
    char line[1024];
    long total = 0;
    int found = 0;
    while (fgets(line, sizeof line, f)) {
        char name[64];
        unsigned long addr, size;
        if (line[0] == '.' && sscanf(line, "%63s 0x%lx 0x%lx", name, &addr, &size) == 3 &&
            (!strcmp(name, ".data") || !strcmp(name, ".bss"))) {
            total += (long)size;
            found++;
        }
    }
    fclose(f);
    return found == 2 ? total : -1;
}

/* The RAM budgets of issue 15 on the 16 KiB microbit: per configuration
 * (one updater ELF each, every driver linked into both), static RAM from
 * the map plus the stack's high-water mark over the jobs it runs against
 * the simulators (bench/firmware_ram.sh: QEMU, the painted stack). */
static const struct {
    const char *elf, *drivers, *what;
    long budget;
} ram_configs[] = {
    {"updater-microbit", "avr,stm32,agent", "AVR + STM32 + agent, no compression", 8192},
    {"updater-microbit-esp", "avr,stm32,agent,esp", "plus ESP with deflate", 16384},
};

static void ram_table(pf_bench *b)
{
    char cmd[8800], fwdir[4200];
    snprintf(fwdir, sizeof fwdir, "%s/firmware", b->exe_dir);
    /* the script next to this file: <src>/bench/firmware_ram.sh */
    char script[512];
    snprintf(script, sizeof script, "%s", __FILE__);
    char *slash = strrchr(script, '/');
    snprintf(slash ? slash + 1 : script, sizeof script - (size_t)(slash ? slash + 1 - script : 0), "firmware_ram.sh");
    int n = snprintf(cmd, sizeof cmd, "bash '%s' '%s'", script, b->exe_dir);
    for (size_t i = 0; i < sizeof ram_configs / sizeof ram_configs[0] && n > 0 && (size_t)n < sizeof cmd; i++)
        n += snprintf(cmd + n, sizeof cmd - (size_t)n, " %s:%s", ram_configs[i].elf, ram_configs[i].drivers);
    long stack[2] = {-1, -1};
    char detail[2][160] = {"", ""};
    int failed_jobs[2] = {0, 0};
    FILE *p = popen(cmd, "r");
    if (p) {
        char line[512];
        while (fgets(line, sizeof line, p)) {
            char elf[128], drv[32];
            long used, reserved;
            int rc;
            if (sscanf(line, "stack %127s %31s %ld %ld %d", elf, drv, &used, &reserved, &rc) != 5)
                continue;
            for (size_t i = 0; i < 2; i++) {
                if (strcmp(elf, ram_configs[i].elf))
                    continue;
                size_t dl = strlen(detail[i]);
                if (rc != 0 || used < 0) {
                    failed_jobs[i]++;
                    snprintf(detail[i] + dl, sizeof detail[i] - dl, "%s%s failed (exit %d)", dl ? ", " : "", drv, rc);
                    continue;
                }
                snprintf(detail[i] + dl, sizeof detail[i] - dl, "%s%s %ld", dl ? ", " : "", drv, used);
                if (used > stack[i])
                    stack[i] = used;
            }
        }
        pclose(p);
    }
    for (size_t i = 0; i < 2; i++) {
        char map[4400], what[96], note[480];
        snprintf(map, sizeof map, "%s/%s.map", fwdir, ram_configs[i].elf);
        long st = map_static_ram(map);
        snprintf(what, sizeof what, "RAM microbit: %s", ram_configs[i].what);
        if (st < 0 || stack[i] < 0 || failed_jobs[i]) {
            snprintf(note, sizeof note, "not measured: %s%s", st < 0 ? "no map file (make firmware) " : "",
                     detail[i][0] ? detail[i] : "no QEMU run (qemu-system-arm, simulators)");
            pf_bench_row(b, "firmware", what, NAN, "bytes", NAN, note);
            continue;
        }
        long total = st + stack[i];
        snprintf(note, sizeof note,
                 "%s.map .data+.bss %ld B + stack high-water %ld B (painted; jobs in QEMU: %s); budget %ld B: %s",
                 ram_configs[i].elf, st, stack[i], detail[i], ram_configs[i].budget,
                 total <= ram_configs[i].budget ? "PASS" : "FAIL");
        pf_bench_row(b, "firmware", what, (double)total / 1024.0, "KiB", NAN, note);
    }
}

/* Bytes of the deflate stream the esp driver makes of an image (32 KiB
 * segments, each sync-flushed, the last padded with 0xFF and finished: see
 * src/targets/esp.c), with a window and memLevel, at level 9. */
static long esp_deflated(const unsigned char *img, long n, int wbits, int mem)
{
    z_stream z;
    memset(&z, 0, sizeof z);
    if (deflateInit2(&z, 9, Z_DEFLATED, wbits, mem, Z_DEFAULT_STRATEGY) != Z_OK)
        return -1;
    static unsigned char seg[32768], out[65536];
    long total = 0;
    for (long off = 0; off < n; off += (long)sizeof seg) {
        long len = n - off < (long)sizeof seg ? n - off : (long)sizeof seg;
        memcpy(seg, img + off, (size_t)len);
        memset(seg + len, 0xFF, sizeof seg - (size_t)len);
        int last = off + (long)sizeof seg >= n;
        z.next_in = seg;
        z.avail_in = sizeof seg;
        int zr;
        do {
            z.next_out = out;
            z.avail_out = sizeof out;
            zr = deflate(&z, last ? Z_FINISH : Z_SYNC_FLUSH);
            total += (long)(sizeof out - z.avail_out);
        } while (z.avail_out == 0 || (last && zr != Z_STREAM_END));
    }
    deflateEnd(&z);
    return total;
}

/* What the microbit's small deflate window costs on a real firmware image:
 * the load image of updater-mps2.elf, at the esp driver's host setting
 * (window 2^14, memLevel 7) and the Cortex-M0+ build's (2^9, memLevel 1;
 * firmware/CMakeLists.txt). */
static void esp_window_cost(pf_bench *b)
{
    char elf[4300], bin[64] = "/tmp/pf-bench-fw-XXXXXX", cmd[4500];
    snprintf(elf, sizeof elf, "%s/firmware/updater-mps2.elf", b->exe_dir);
    int fd = mkstemp(bin);
    if (fd < 0)
        return;
    close(fd);
    snprintf(cmd, sizeof cmd, "arm-none-eabi-objcopy -O binary '%s' '%s' 2>/dev/null", elf, bin);
    long n = -1;
    unsigned char *img = NULL;
    if (system(cmd) == 0) {
        FILE *f = fopen(bin, "rb");
        if (f && fseek(f, 0, SEEK_END) == 0 && (n = ftell(f)) > 0 && fseek(f, 0, SEEK_SET) == 0 &&
            (img = malloc((size_t)n)) && fread(img, 1, (size_t)n, f) != (size_t)n)
            n = -1;
        if (f)
            fclose(f);
    }
    unlink(bin);
    long host = img && n > 0 ? esp_deflated(img, n, 14, 7) : -1;
    long mcu = img && n > 0 ? esp_deflated(img, n, 9, 1) : -1;
    free(img);
    char note[300];
    if (host <= 0 || mcu <= 0) {
        pf_bench_row(b, "firmware", "esp deflate, microbit window vs host", NAN, "", NAN,
                     "not measured: no updater-mps2.elf load image (make firmware)");
        return;
    }
    snprintf(note, sizeof note,
             "updater-mps2 load image %ld B, level 9, 32 KiB segments: host (window 2^14, memLevel 7) %ld B, "
             "microbit (2^9, memLevel 1) %ld B; zlib %s",
             n, host, mcu, zlibVersion());
    pf_bench_row(b, "firmware", "esp deflate, microbit window vs host", (double)mcu / 1024.0, "KiB",
                 (double)host / 1024.0, note);
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
                 !strcmp(name, "updater-mps2")           ? ": image arena 256 KiB, driver state 240 KiB, work 32 KiB, stack not counted"
                 : !strcmp(name, "updater-microbit")     ? ": no image arena (streamed), driver state for avr, stm32 and "
                                                           "agent; plus its stack (budget row below)"
                 : !strcmp(name, "updater-microbit-esp") ? ": no image arena (streamed), driver state for esp with deflate; "
                                                           "plus its stack (budget row below)"
                                                         : "");
        unsigned long ram = data + bss;
        if (ram < 10240)
            pf_bench_row(b, "firmware", what, (double)ram, "bytes", NAN, note);
        else
            pf_bench_row(b, "firmware", what, (double)ram / 1024.0, "KiB", NAN, note);
    }
    fclose(f);
    ram_table(b);
    esp_window_cost(b);
}
