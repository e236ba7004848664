/* Delta benchmark (issue 16): a real firmware pair, the agent+bootloader
 * program for Cortex-M0+ (bench_agent's code-size build) in three builds:
 * the base, one with one changed function (a check added to the agent's
 * HASH handler: code and strings after it move), one with a changed
 * constant table (48 of 512 calibration entries). Each new image goes to a
 * `peerflash sim agent` running the base through `peerflash wire` at
 * 115200 baud three ways: whole, deflated, as a delta (--delta-from): bytes
 * on the wire (host to device, from the wire's statistics) and seconds. The
 * same pairs through Debian's bsdiff and xdelta3 give the reference patch
 * sizes. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "bench.h"

/* One measurement: start the device with a copy of the base's flash, the
 * wire, flash; prints "<a2b bytes> <seconds> <exit>". */
static const char *measure_sh =
    "#!/usr/bin/env bash\n"
    "# measure.sh CLI DIR IMG [flash options...]\n"
    "cli=$1 d=$2 img=$3; shift 3\n"
    "export PEERFLASH_CACHE_DIR=\"$d/cache\"\n"
    "cp \"$d/base.flash\" \"$d/run.flash\"; rm -f \"$d/dev\" \"$d/host\" \"$d/stats.json\" \"$d/flash.json\"\n"
    "\"$cli\" sim agent --port \"$d/dev\" --flash \"$d/run.flash\" --slot-kib 64 --key \"$d/key.pem\" --log \"$d/sim.log\" "
    ">/dev/null 2>&1 & sim=$!\n"
    "for i in $(seq 200); do [ -e \"$d/dev\" ] && break; sleep 0.02; done\n"
    "\"$cli\" wire --a \"$d/host\" --b \"$d/dev\" --baud 115200 --stats \"$d/stats.json\" >/dev/null 2>&1 & wire=$!\n"
    "for i in $(seq 200); do [ -e \"$d/host\" ] && break; sleep 0.02; done\n"
    "timeout 300 \"$cli\" flash --target agent --port \"$d/host\" --baud 115200 --no-run --json -q \"$@\" \"$img@0\" "
    ">\"$d/flash.json\" 2>/dev/null; st=$?\n"
    "kill $wire; wait $wire 2>/dev/null; kill $sim; wait $sim 2>/dev/null\n"
    "a2b=$(grep -o '\"a2b\": {\"bytes_in\": [0-9]*' \"$d/stats.json\" | grep -o '[0-9]*$')\n"
    "secs=$(grep -o '\"seconds\":[0-9.]*' \"$d/flash.json\" | head -1 | cut -d: -f2)\n"
    "echo \"${a2b:-0} ${secs:-0} $st\"\n";

static int sh(const char *cmd) { return system(cmd) == 0 ? 0 : -1; }

static long file_size(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 ? (long)st.st_size : -1;
}

static void write_file(const char *dir, const char *name, const char *text)
{
    char p[600];
    snprintf(p, sizeof p, "%s/%s", dir, name);
    FILE *f = fopen(p, "w");
    if (f) {
        fputs(text, f);
        fclose(f);
    }
}

/* A calibration-like table: 512 smooth entries; `changed` of them altered. */
static void write_table(const char *dir, int changed)
{
    char p[600];
    snprintf(p, sizeof p, "%s/table.h", dir);
    FILE *f = fopen(p, "w");
    if (!f)
        return;
    fprintf(f, "static const unsigned short pf_cal_table[512] = {\n");
    for (int i = 0; i < 512; i++) {
        unsigned v = (unsigned)(1000 + i * 37 + (i * i) % 97);
        if (changed && i >= 200 && i < 200 + changed)
            v += 5 + (unsigned)i % 7;
        fprintf(f, "%u,%s", v & 0xffff, i % 16 == 15 ? "\n" : "");
    }
    fprintf(f, "};\n");
    fclose(f);
}

/* The base with one function changed: the agent's HASH handler gets one
 * more check (and its message). */
static int write_changed_proto(const char *dir, char *out, size_t cap)
{
    char src[512];
    snprintf(src, sizeof src, "%s", __FILE__);
    for (int k = 0; k < 2; k++) {
        char *slash = strrchr(src, '/');
        if (slash)
            *slash = 0;
    }
    snprintf(out, cap, "%s/proto_changed.c", dir);
    char cmd[2000];
    snprintf(cmd, sizeof cmd,
             "sed 's|    uint32_t base = pf_boot_slot_off(b, slot) + off, rs = fl->read_size;|"
             "    if (len == 0)\\n        return answer(a, f, pf_diag_set(a->cfg.diag, PF_ERR_RANGE, \"HASH of nothing\"), "
             "NULL, 0);\\n&|' %s/src/agent/proto.c > %s && grep -q 'HASH of nothing' %s",
             src, out, out);
    return sh(cmd);
}

static int build(pf_bench *b, const char *dir, const char *proto, const char *name, const char **why)
{
    char cmd[12000], elf[64];
    snprintf(elf, sizeof elf, "%s.elf", name);
    if (pf_bench_agent_fw_cmd(b, dir, 1, 1, "-DWITH_TABLE", proto, elf, cmd, sizeof cmd - 100, why) < 0)
        return -1;
    strcat(cmd, " 2>/dev/null");
    if (sh(cmd) < 0) {
        *why = "cross build failed";
        return -1;
    }
    snprintf(cmd, sizeof cmd,
             "cd %s && arm-none-eabi-objcopy -O binary %s.elf %s.bin && %s sign --key key.pem --version 1.0.%d %s.bin "
             "%s.img >/dev/null 2>&1",
             dir, name, name, pf_bench_cli(b), name[0] - 'a', name, name);
    if (sh(cmd) < 0) {
        *why = "objcopy or sign failed";
        return -1;
    }
    return 0;
}

/* Runs measure.sh; returns exit status of the flash, bytes and seconds. */
static int measure(pf_bench *b, const char *dir, const char *img, const char *opts, long *bytes, double *secs)
{
    char cmd[1500];
    snprintf(cmd, sizeof cmd, "bash %s/measure.sh %s %s %s/%s %s", dir, pf_bench_cli(b), dir, dir, img, opts);
    FILE *p = popen(cmd, "r");
    int st = -1;
    *bytes = 0;
    *secs = 0;
    if (p) {
        if (fscanf(p, "%ld %lf %d", bytes, secs, &st) != 3)
            st = -1;
        pclose(p);
    }
    return st;
}

static void pair(pf_bench *b, const char *dir, const char *img, const char *label)
{
    char what[128], note[400], cmd[1500], path[600];
    long full_b = 0, z_b = 0, d_b = 0;
    double full_s = 0, z_s = 0, d_s = 0;
    int ok_full = measure(b, dir, img, "--no-compress --no-delta", &full_b, &full_s) == 0;
    int ok_z = measure(b, dir, img, "--no-delta", &z_b, &z_s) == 0;
    char opt[700];
    snprintf(opt, sizeof opt, "--delta-from %s/a.img", dir);
    int ok_d = measure(b, dir, img, opt, &d_b, &d_s) == 0;
    snprintf(path, sizeof path, "%s/%s", dir, img);
    long img_len = file_size(path);
    snprintf(what, sizeof what, "%s: whole image (%ld B), on the wire", label, img_len);
    snprintf(note, sizeof note, "host-to-device bytes through peerflash wire at 115200 (8N1), %.2f s (flash --no-run)",
             full_s);
    pf_bench_row(b, "delta", what, ok_full ? (double)full_b : NAN, "bytes", NAN, note);
    snprintf(what, sizeof what, "%s: deflate, on the wire", label);
    snprintf(note, sizeof note, "%.2f s; %.1f%% of the whole image's bytes", z_s, 100.0 * z_b / (full_b ? full_b : 1));
    pf_bench_row(b, "delta", what, ok_z ? (double)z_b : NAN, "bytes", NAN, note);
    snprintf(what, sizeof what, "%s: delta (deflated patch), on the wire", label);
    snprintf(note, sizeof note, "%.2f s; %.1f%% of the whole image's bytes (goal <= 10%% for one function)", d_s,
             100.0 * d_b / (full_b ? full_b : 1));
    pf_bench_row(b, "delta", what, ok_d ? (double)d_b : NAN, "bytes", NAN, note);
    /* patch files: ours (zlib, 32 KiB window), bsdiff (bzip2), xdelta3 -9 */
    snprintf(cmd, sizeof cmd,
             "cd %s && %s diff a.img %s ours.patch >/dev/null 2>&1; bsdiff a.img %s ref.bsdiff 2>/dev/null; "
             "xdelta3 -e -9 -f -s a.img %s ref.xd3 2>/dev/null; true",
             dir, pf_bench_cli(b), img, img, img);
    sh(cmd);
    snprintf(path, sizeof path, "%s/ours.patch", dir);
    long ours = file_size(path);
    snprintf(path, sizeof path, "%s/ref.bsdiff", dir);
    long bsd = file_size(path);
    snprintf(path, sizeof path, "%s/ref.xd3", dir);
    long xd = file_size(path);
    snprintf(what, sizeof what, "%s: patch size vs bsdiff", label);
    pf_bench_row(b, "delta", what, ours > 0 ? (double)ours : NAN, "bytes", bsd > 0 ? (double)bsd : NAN,
                 bsd > 0 ? "peerflash diff file (104-byte header + zlib body) vs Debian bsdiff 4.3 (bzip2); goal: "
                           "ratio <= 1.2"
                         : "bsdiff not installed (scripts/deps/delta.txt)");
    snprintf(what, sizeof what, "%s: patch size vs xdelta3", label);
    pf_bench_row(b, "delta", what, ours > 0 ? (double)ours : NAN, "bytes", xd > 0 ? (double)xd : NAN,
                 xd > 0 ? "peerflash diff file vs Debian xdelta3 3.0.11 -e -9 (VCDIFF)"
                        : "xdelta3 not installed (scripts/deps/delta.txt)");
}

void pf_bench_delta(pf_bench *b)
{
    char dir[] = "/tmp/pf_bench_delta_XXXXXX";
    if (!mkdtemp(dir))
        return;
    const char *why = NULL;
    char cmd[2000], proto[600];
    snprintf(cmd, sizeof cmd, "%s keygen -o %s/key.pem >/dev/null 2>&1", pf_bench_cli(b), dir);
    if (sh(cmd) < 0) {
        pf_bench_row(b, "delta", "firmware pair", NAN, "bytes", NAN, "peerflash keygen failed");
        return;
    }
    write_table(dir, 0);
    if (build(b, dir, NULL, "a", &why) < 0 || write_changed_proto(dir, proto, sizeof proto) < 0 ||
        build(b, dir, proto, "b", &why) < 0 || (write_table(dir, 48), build(b, dir, NULL, "c", &why)) < 0) {
        pf_bench_row(b, "delta", "firmware pair", NAN, "bytes", NAN, why ? why : "could not make the changed function");
        snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
        sh(cmd);
        return;
    }
    write_file(dir, "measure.sh", measure_sh);
    /* the device runs the base: flash it once (fast), keep that flash */
    snprintf(cmd, sizeof cmd,
             "cd %s && (%s sim agent --port dev --flash base.flash --slot-kib 64 --key key.pem --erase-ms 0 "
             "--prog-us-per-kib 0 >/dev/null 2>&1 & echo $! > sim.pid) && for i in $(seq 200); do [ -e dev ] && break; "
             "sleep 0.02; done && PEERFLASH_CACHE_DIR=%s/cache timeout 60 %s flash --target agent --port dev --no-delta -q a.img@0 >/dev/null 2>&1; "
             "st=$?; kill $(cat sim.pid); wait 2>/dev/null; exit $st",
             dir, pf_bench_cli(b), dir, pf_bench_cli(b));
    if (sh(cmd) < 0) {
        pf_bench_row(b, "delta", "firmware pair", NAN, "bytes", NAN, "could not flash the base image");
        return;
    }
    pair(b, dir, "b.img", "agent fw (M0+), one function changed");
    pair(b, dir, "c.img", "agent fw (M0+), constant table changed");
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    sh(cmd);
}
