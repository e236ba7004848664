/* Image readers: parsing throughput in MB/s of input file (MB = 10^6 bytes),
 * wall clock (CLOCK_MONOTONIC), median of several repetitions.
 *
 * The test image is 1 MiB of random bytes at 0x08000000 (256 KiB with
 * --quick), written as Intel HEX and S-record by objcopy (binutils) and as
 * an ELF32 executable by objcopy + ld, in the same run. Our figure parses
 * the file already in memory into a pf_memmap (parse + store). The peer is
 * `objcopy -I <fmt> -O binary` on the same file: a real tool doing the same
 * conversion, but its time includes process start-up and reading and
 * writing files, so the ratio overstates our advantage on small files. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "bench.h"
#include "peerflash/pf_image.h"
#include "peerflash/pf_image_file.h"

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static int cmp_d(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static double median(double *v, int n)
{
    qsort(v, (size_t)n, sizeof *v, cmp_d);
    return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

static int sh(const char *cmd)
{
    int st = system(cmd);
    return WIFEXITED(st) && WEXITSTATUS(st) == 0 ? 0 : -1;
}

static uint8_t *slurp(const char *path, size_t *n)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    fseek(f, 0, SEEK_END);
    long len = ftell(f);
    fseek(f, 0, SEEK_SET);
    uint8_t *buf = malloc(len > 0 ? (size_t)len : 1);
    *n = buf ? fread(buf, 1, (size_t)len, f) : 0;
    fclose(f);
    return buf;
}

enum { F_IHEX, F_SREC, F_ELF, F_BIN };

static pf_segment segs[64];

/* One parse of the whole file, fed in slices of `chunk` bytes (0 = all at once). */
static int parse_once(int fmt, const uint8_t *buf, size_t n, size_t chunk, uint8_t *arena, size_t arena_size)
{
    pf_memmap map;
    pf_memmap_init(&map, segs, 64, arena, arena_size);
    pf_diag d = {0};
    pf_memmap_dest dest = {&map, &d};
    int rc = 0;
    if (fmt == F_ELF)
        return pf_elf_parse(buf, n, pf_memmap_dest_sink, &dest, &d);
    pf_ihex ih;
    pf_srec sr;
    pf_bin bn;
    pf_ihex_init(&ih, pf_memmap_dest_sink, &dest, &d);
    pf_srec_init(&sr, pf_memmap_dest_sink, &dest, &d);
    pf_bin_init(&bn, 0x08000000, pf_memmap_dest_sink, &dest, &d);
    size_t step = chunk ? chunk : n;
    for (size_t pos = 0; pos < n && rc == 0; pos += step) {
        size_t k = n - pos < step ? n - pos : step;
        rc = fmt == F_IHEX ? pf_ihex_feed(&ih, buf + pos, k)
             : fmt == F_SREC ? pf_srec_feed(&sr, buf + pos, k)
                             : pf_bin_feed(&bn, buf + pos, k);
    }
    if (rc == 0)
        rc = fmt == F_IHEX ? pf_ihex_finish(&ih) : fmt == F_SREC ? pf_srec_finish(&sr) : pf_bin_finish(&bn);
    if (rc)
        fprintf(stderr, "bench_image: parse failed: %s\n", d.text);
    return rc;
}

/* Median MB/s of input over reps parses. */
static double our_rate(int fmt, const uint8_t *buf, size_t n, size_t chunk, uint8_t *arena, size_t arena_size, int reps)
{
    double t[16];
    if (parse_once(fmt, buf, n, chunk, arena, arena_size)) /* warm-up: arena pages, caches */
        return NAN;
    for (int r = 0; r < reps; r++) {
        double t0 = now_s();
        if (parse_once(fmt, buf, n, chunk, arena, arena_size))
            return NAN;
        t[r] = now_s() - t0;
    }
    return (double)n / median(t, reps) / 1e6;
}

/* Median MB/s of input for a command run reps times (fork + exec + wait). */
static double peer_rate(const char *cmd, size_t n, int reps)
{
    double t[16];
    for (int r = 0; r < reps; r++) {
        double t0 = now_s();
        if (sh(cmd))
            return NAN;
        t[r] = now_s() - t0;
    }
    return (double)n / median(t, reps) / 1e6;
}

void pf_bench_image(pf_bench *b);
void pf_bench_image(pf_bench *b)
{
    size_t data_size = b->quick ? 256 * 1024 : 1024 * 1024;
    int reps = b->quick ? 3 : 7;
    char dir[] = "/tmp/pf-bench-image-XXXXXX";
    if (!mkdtemp(dir)) {
        perror("bench_image: mkdtemp");
        return;
    }
    char path[256], cmd[1024];
    uint8_t *data = malloc(data_size), *arena = malloc(data_size);
    uint32_t s = 12345;
    for (size_t i = 0; i < data_size; i++) {
        s = s * 1664525u + 1013904223u;
        data[i] = (uint8_t)(s >> 24);
    }
    snprintf(path, sizeof path, "%s/fw.bin", dir);
    FILE *f = fopen(path, "wb");
    if (!f || fwrite(data, 1, data_size, f) != data_size) {
        fprintf(stderr, "bench_image: cannot write %s\n", path);
        if (f)
            fclose(f);
        goto out;
    }
    fclose(f);
    snprintf(cmd, sizeof cmd,
             "cd %s && timeout 120 objcopy -I binary -O ihex --change-addresses 0x08000000 fw.bin fw.hex && "
             "timeout 120 objcopy -I binary -O srec --change-addresses 0x08000000 fw.bin fw.srec && "
             "timeout 120 objcopy -I binary -O elf32-i386 -B i386 fw.bin fw.o && "
             "timeout 120 ld -m elf_i386 -N -e 0x08000000 --section-start=.data=0x08000000 -o fw.elf fw.o",
             dir);
    if (sh(cmd)) {
        fprintf(stderr, "bench_image: objcopy/ld (binutils) failed; no image rows\n");
        goto out;
    }
    static const struct {
        int fmt;
        const char *file, *what, *peer_in;
    } rows[] = {
        {F_IHEX, "fw.hex", "Intel HEX parse (objcopy-made, 16-byte records)", "-I ihex"},
        {F_SREC, "fw.srec", "S-record parse (objcopy-made, S3)", "-I srec"},
        {F_ELF, "fw.elf", "ELF32 parse (libelf, one PT_LOAD)", ""},
        {F_BIN, "fw.bin", "raw binary", "-I binary"},
    };
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
        size_t n;
        snprintf(path, sizeof path, "%s/%s", dir, rows[i].file);
        uint8_t *buf = slurp(path, &n);
        if (!buf)
            continue;
        double ours = our_rate(rows[i].fmt, buf, n, 0, arena, data_size, reps);
        snprintf(cmd, sizeof cmd, "cd %s && timeout 120 objcopy %s -O binary %s out.bin", dir, rows[i].peer_in,
                 rows[i].file);
        /* ELF and raw binary are a header walk and a memcpy for us, so a
         * peer process would only measure its own start-up: no peer there. */
        int text = rows[i].fmt == F_IHEX || rows[i].fmt == F_SREC;
        double peer = text ? peer_rate(cmd, n, reps) : NAN;
        char what[96], note[160];
        snprintf(what, sizeof what, "%s, %zu KB file", rows[i].what, n / 1000);
        if (text)
            snprintf(note, sizeof note, "median of %d, in memory into pf_memmap; peer: objcopy %s -O binary (process)",
                     reps, rows[i].peer_in);
        else
            snprintf(note, sizeof note, "median of %d, in memory into pf_memmap (bounds checks + memcpy)", reps);
        pf_bench_row(b, "image", what, ours, "MB/s", peer, note);
        if (rows[i].fmt == F_IHEX) {
            /* Streaming as an MCU would from an SD card: 512-byte slices. */
            double sliced = our_rate(F_IHEX, buf, n, 512, arena, data_size, reps);
            pf_bench_row(b, "image", "Intel HEX fed in 512-byte slices", sliced, "MB/s", ours,
                         "peer column = same parse in one slice");
        }
        free(buf);
    }
    /* The host loader end to end: read the file, detect, two passes, store. */
    {
        double t[16];
        size_t n = 0;
        snprintf(path, sizeof path, "%s/fw.hex", dir);
        int ok = 1;
        for (int r = 0; r < reps && ok; r++) {
            pf_image_file img;
            pf_diag d = {0};
            double t0 = now_s();
            ok = pf_image_file_load(&img, path, &d) == 0;
            t[r] = now_s() - t0;
            n = img.file_size;
            pf_image_file_free(&img);
        }
        if (ok)
            pf_bench_row(b, "image", "pf_image_file_load of the .hex (read+detect+2 passes)",
                         (double)n / median(t, reps) / 1e6, "MB/s", NAN, "median, file in page cache");
    }
out:
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    sh(cmd);
    free(data);
    free(arena);
}
