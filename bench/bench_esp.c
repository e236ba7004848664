/* ESP ROM loader benchmark, end to end as a user runs it: `peerflash sim
 * esp32` (erase 10 ms per 4 KiB, program 2 ms per KiB) behind `peerflash
 * wire --baud follow` (each side at the rate its program set, 8N1), and a
 * client on the wire's other side:
 *  - peerflash: `peerflash flash --target esp` on the wire's pty (ROM loader,
 *    no stub; FLASH_DEFL, compressed); wall time of the process, connect to
 *    verified;
 *  - esptool-js 0.7.0 (npm, installed in the build tree as the esptool-js
 *    tests do) through a Web-Serial-like port over TCP (the wire's TCP side
 *    takes the simulator's rate): connect, stub upload, compressed write,
 *    MD5 verify; its own connect + write time (node's start-up and the
 *    read-back the script does afterwards are not counted).
 * Each run starts a fresh simulator and wire; each run's flash file is
 * compared with the image (a row of a run that did not land says so).
 * Images: (a) the updater firmware for the MPS2 board that `make firmware`
 * builds (build/firmware/updater-mps2.elf, its load image by objcopy), (b)
 * half random bytes, half generated English-like text.
 * Rows: at 115200 on both sides (goal: peerflash <= 0.95x esptool-js's
 * time) and at both tools' defaults (peerflash: its rate ladder;
 * esptool-js: the rate its README's loader example sets, 115200; goal:
 * <= 0.35x). */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "bench.h"

#define SIM_ERASE_MS_4K "10"
#define SIM_WRITE_US_KB "2000"
#define ADDR 0x10000u

static char tmpdir[256];

static int wait_path(const char *path, int ms)
{
    struct stat sb;
    for (int i = 0; i < ms / 10; i++) {
        if (stat(path, &sb) == 0)
            return 0;
        usleep(10000);
    }
    return -1;
}

static int wait_listen(int port, int ms)
{
    for (int i = 0; i < ms / 10; i++) {
        int fd = socket(AF_INET, SOCK_STREAM, 0);
        struct sockaddr_in sa = {0};
        sa.sin_family = AF_INET;
        sa.sin_port = htons((uint16_t)port);
        sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        int ok = connect(fd, (struct sockaddr *)&sa, sizeof sa) == 0;
        close(fd);
        if (ok)
            return 0;
        usleep(10000);
    }
    return -1;
}

static int write_file(const char *path, const uint8_t *d, size_t n)
{
    FILE *f = fopen(path, "wb");
    if (!f)
        return -1;
    int ok = fwrite(d, 1, n, f) == n;
    return fclose(f) == 0 && ok ? 0 : -1;
}

static uint8_t *read_file(const char *path, size_t *n)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    fseek(f, 0, SEEK_END);
    long len = ftell(f);
    fseek(f, 0, SEEK_SET);
    uint8_t *d = len > 0 ? malloc((size_t)len) : NULL;
    if (d && fread(d, 1, (size_t)len, f) != (size_t)len) {
        free(d);
        d = NULL;
    }
    fclose(f);
    *n = d ? (size_t)len : 0;
    return d;
}

/* A simulator and a wire whose A side is aspec; returns 0 when both are up. */
typedef struct rig {
    pid_t sim, wire;
    char dev[300], flash[300];
} rig;

static int rig_start(const pf_bench *b, rig *g, const char *tag, const char *aspec, const char *await_path,
                     int await_port)
{
    memset(g, 0, sizeof *g);
    snprintf(g->dev, sizeof g->dev, "%s/%s.dev", tmpdir, tag);
    snprintf(g->flash, sizeof g->flash, "%s/%s.flash", tmpdir, tag);
    unlink(g->flash);
    char *cli = (char *)pf_bench_cli(b);
    char log[320];
    snprintf(log, sizeof log, "%s/%s.sim.log", tmpdir, tag);
    char *sargv[] = {cli, "sim", "esp32", "--port", g->dev, "--flash", g->flash, "--erase-ms-per-4k", SIM_ERASE_MS_4K,
                     "--write-us-per-kb", SIM_WRITE_US_KB, NULL};
    g->sim = pf_bench_spawn(sargv, log);
    if (wait_path(g->dev, 5000) < 0)
        return -1;
    snprintf(log, sizeof log, "%s/%s.wire.log", tmpdir, tag);
    char *wargv[] = {cli, "wire", "--a", (char *)aspec, "--b", g->dev, "--baud", "follow", NULL};
    g->wire = pf_bench_spawn(wargv, log);
    if (await_path)
        return wait_path(await_path, 5000);
    return wait_listen(await_port, 5000);
}

static void rig_stop(rig *g)
{
    pf_bench_stop(g->wire);
    pf_bench_stop(g->sim);
}

/* 1 when the rig's flash holds the image at ADDR. */
static int landed(const rig *g, const uint8_t *img, size_t len)
{
    size_t n = 0;
    uint8_t *f = read_file(g->flash, &n);
    int ok = f && n >= ADDR + len && !memcmp(f + ADDR, img, len);
    free(f);
    return ok;
}

/* peerflash's CLI through the wire; baud 0 = its default. Seconds or NAN. */
static const char *ours_client; /* the peerflash that flashes (NULL: this build's) */

static double run_ours(const pf_bench *b, const char *imgpath, const uint8_t *img, size_t len, uint32_t baud,
                       const char *compress, char *rate_out, size_t rate_cap)
{
    static int n;
    char tag[32], host[300], aspec[320], out[320], baud_s[16], imgarg[320];
    snprintf(tag, sizeof tag, "ours%d", n++);
    snprintf(host, sizeof host, "%s/%s.host", tmpdir, tag);
    snprintf(aspec, sizeof aspec, "pty:%s", host);
    snprintf(out, sizeof out, "%s/%s.out", tmpdir, tag);
    snprintf(baud_s, sizeof baud_s, "%lu", (unsigned long)baud);
    snprintf(imgarg, sizeof imgarg, "%s@0x%x", imgpath, ADDR);
    rig g;
    double secs = NAN;
    if (rig_start(b, &g, tag, aspec, host, 0) == 0) {
        char *argv[16];
        int k = 0;
        argv[k++] = (char *)(ours_client ? ours_client : pf_bench_cli(b));
        argv[k++] = "flash";
        argv[k++] = "--target";
        argv[k++] = "esp";
        argv[k++] = "--port";
        argv[k++] = host;
        argv[k++] = "--no-run";
        if (baud) {
            argv[k++] = "--baud";
            argv[k++] = baud_s;
        }
        if (compress) {
            argv[k++] = "--compress";
            argv[k++] = (char *)compress;
        }
        argv[k++] = imgarg;
        argv[k] = NULL;
        double t0 = pf_bench_now_s();
        pid_t pid = pf_bench_spawn(argv, out);
        int st = 0;
        waitpid(pid, &st, 0);
        double t = pf_bench_now_s() - t0;
        if (WIFEXITED(st) && WEXITSTATUS(st) == 0 && landed(&g, img, len))
            secs = t;
        else
            fprintf(stderr, "bench esp: peerflash run failed (status %d), see %s\n", st, out);
        size_t on = 0;
        char *o = (char *)read_file(out, &on);
        const char *lr = o ? strstr(o, "line rate: ") : NULL;
        if (lr && rate_out) {
            size_t m = strcspn(lr + 11, " \n");
            snprintf(rate_out, rate_cap, "%.*s", (int)m, lr + 11);
        }
        free(o);
    }
    rig_stop(&g);
    return secs;
}

/* The folder esptool-js is installed in; installs it there (as the
 * esptool-js tests do) when it is not. NULL when that fails. */
static const char *esptool_js_dir(const pf_bench *b)
{
    static char npm[600];
    char probe[700];
    snprintf(npm, sizeof npm, "%s/tests/esp/npm", b->exe_dir);
    snprintf(probe, sizeof probe, "%s/node_modules/esptool-js/package.json", npm);
    struct stat sb;
    if (stat(probe, &sb) == 0)
        return npm;
    /* the source folder, from the build tree's cache */
    char cache[700], line[1024], src[600] = "";
    snprintf(cache, sizeof cache, "%s/CMakeCache.txt", b->exe_dir);
    FILE *f = fopen(cache, "r");
    while (f && fgets(line, sizeof line, f))
        if (!strncmp(line, "CMAKE_HOME_DIRECTORY:INTERNAL=", 30)) {
            snprintf(src, sizeof src, "%.*s", (int)strcspn(line + 30, "\n"), line + 30);
            break;
        }
    if (f)
        fclose(f);
    if (!src[0])
        return NULL;
    char cmd[2000];
    snprintf(cmd, sizeof cmd, "src='%s/tests/esp' npm_dir='%s' bash -c '. \"$src/npm_setup.sh\"' >&2", src, npm);
    if (system(cmd) != 0 || stat(probe, &sb) != 0)
        return NULL;
    return npm;
}

/* esptool-js through the wire at baud (its stub, compressed). Seconds or NAN. */
static double run_esptool_js(const pf_bench *b, const char *imgpath, const uint8_t *img, size_t len, uint32_t baud)
{
    const char *npm = esptool_js_dir(b);
    if (!npm) {
        fprintf(stderr, "bench esp: esptool-js is not installed and npm could not install it\n");
        return NAN;
    }
    static int n;
    char tag[32], aspec[64], out[320], cmd[2000];
    snprintf(tag, sizeof tag, "js%d", n++);
    int port = 20000 + (int)((getpid() * 7 + n) % 20000);
    snprintf(aspec, sizeof aspec, "tcp-listen://%d", port);
    snprintf(out, sizeof out, "%s/%s.out", tmpdir, tag);
    rig g;
    double secs = NAN;
    if (rig_start(b, &g, tag, aspec, NULL, port) == 0) {
        snprintf(cmd, sizeof cmd, "cd '%s' && timeout 900 node esptool_js_flash.mjs %d '%s' 0x%x %lu > '%s' 2>&1", npm,
                 port, imgpath, ADDR, (unsigned long)baud, out);
        int rc = system(cmd);
        FILE *o = fopen(out, "r");
        char line[2048];
        double ms = NAN;
        while (o && fgets(line, sizeof line, o)) {
            const char *cm = strstr(line, "\"connect_ms\":"), *wm = strstr(line, "\"write_ms\":");
            if (!strncmp(line, "RESULT ", 7) && cm && wm && strstr(line, "\"stub\":true") &&
                strstr(line, "\"verified\":true"))
                ms = atof(cm + 13) + atof(wm + 11);
        }
        if (o)
            fclose(o);
        if (rc == 0 && !isnan(ms) && landed(&g, img, len))
            secs = ms / 1000.0;
        else
            fprintf(stderr, "bench esp: esptool-js run failed (see %s)\n", out);
    }
    rig_stop(&g);
    return secs;
}

/* (b): half random, half text of generated words. */
static void fill_mixed(uint8_t *d, size_t len)
{
    static const char *const words[] = {
        "the",   "flash", "of",     "a",     "chip",   "is",    "written", "in",    "sectors", "and",   "each",
        "block", "must",  "answer", "before", "next",  "one",   "loader",  "serial", "line",   "rate",  "image",
        "boot",  "with",  "to",     "from",  "data",   "when",  "error",   "bytes", "after",   "reset", "mode",
        "this",  "that",  "it",     "for",   "not",    "on",    "at",      "by",    "are",     "be",    "time"};
    uint64_t x = 0x9E3779B97F4A7C15ull;
    size_t half = len / 2, i = 0;
    for (; i < half; i++) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        d[i] = (uint8_t)(x >> 24);
    }
    size_t col = 0;
    while (i < len) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        const char *w = words[(x >> 20) % (sizeof words / sizeof words[0])];
        for (const char *c = w; *c && i < len; c++)
            d[i++] = (uint8_t)*c;
        col += strlen(w) + 1;
        if (i < len)
            d[i++] = (uint8_t)(col > 70 ? '\n' : ((x >> 40) % 11 == 0 ? ',' : ' '));
        if (col > 70)
            col = 0;
    }
}

/* (a): the MPS2 updater's load image; NULL with a reason when it is not built. */
static uint8_t *firmware_image(const pf_bench *b, const char *binpath, size_t *len, const char **why)
{
    char elf[600], cmd[1400];
    snprintf(elf, sizeof elf, "%s/firmware/updater-mps2.elf", b->exe_dir);
    struct stat sb;
    if (stat(elf, &sb) != 0) {
        *why = "build/firmware/updater-mps2.elf is not built (make firmware)";
        return NULL;
    }
    snprintf(cmd, sizeof cmd, "arm-none-eabi-objcopy -O binary '%s' '%s'", elf, binpath);
    if (system(cmd) != 0) {
        *why = "arm-none-eabi-objcopy failed (Debian binutils-arm-none-eabi)";
        return NULL;
    }
    return read_file(binpath, len);
}

static void goal_note(char *note, size_t cap, double ours, double peer, double goal, const char *how)
{
    const char *verdict = isnan(ours) || isnan(peer) ? "goal not measured" : ours / peer <= goal ? "goal met" : "goal MISSED";
    snprintf(note, cap, "%s (<= %.2fx); %s", verdict, goal, how);
}

static void bench_image(pf_bench *b, const char *name, const char *imgpath, const uint8_t *img, size_t len)
{
    char what[96], note[512], how[400], rate[32] = "?";
    double js = run_esptool_js(b, imgpath, img, len, 115200);
    double ours = run_ours(b, imgpath, img, len, 115200, NULL, NULL, 0);
    snprintf(what, sizeof what, "%s @115200: time", name);
    snprintf(how, sizeof how,
             "peerflash ROM (no stub), deflate, 1 KiB blocks, 64 B sent ahead, --baud 115200, connect to verified; peer esptool-js "
             "0.7.0 stub, compressed (pako), 115200, connect+stub+write+MD5");
    goal_note(note, sizeof note, ours, js, 0.95, how);
    pf_bench_row(b, "esp", what, ours, "s", js, note);

    double dflt = run_ours(b, imgpath, img, len, 0, NULL, rate, sizeof rate);
    snprintf(what, sizeof what, "%s defaults: time", name);
    snprintf(how, sizeof how,
             "peerflash defaults: ROM, deflate, rate ladder chose %s baud; peer esptool-js 0.7.0 at 115200 (its "
             "README's ESPLoader baudrate; the library has no default), stub, compressed; same run as above",
             rate);
    goal_note(note, sizeof note, dflt, js, 0.35, how);
    pf_bench_row(b, "esp", what, dflt, "s", js, note);
}

/* (c) 4 MB (4,000,000 bytes) of mixed content: 2 MB of machine code (the
 * 1 MiB into Debian's libcrypto.so.3: its code, not its ELF header, which
 * would make the file an ELF image), 1 MB of generated text, 1 MB of
 * xorshift bytes. NULL when the library is not there. */
static uint8_t *mixed_4mb(size_t *len)
{
    size_t n = 0;
    uint8_t *code = read_file("/usr/lib/x86_64-linux-gnu/libcrypto.so.3", &n);
    if (!code || n < 0x100000u + 2000000u) {
        free(code);
        return NULL;
    }
    uint8_t *d = malloc(4000000u);
    uint8_t *tr = malloc(2000000u);
    memcpy(d, code + 0x100000u, 2000000u);
    fill_mixed(tr, 2000000u); /* first half random, second text */
    memcpy(d + 2000000u, tr + 1000000u, 1000000u);
    memcpy(d + 3000000u, tr, 1000000u);
    free(tr);
    free(code);
    *len = 4000000u;
    return d;
}

/* `--compress` on a 4 MB image: best and auto against fast, at 115200 and
 * at the rate ladder's choice, through the same wire; with
 * PF_BENCH_ESP_BASELINE=/path/to/an/older/peerflash also that binary's
 * default against this one's (auto). Not part of `esp`: about 15 minutes. */
void pf_bench_esp4m(pf_bench *b)
{
    signal(SIGPIPE, SIG_IGN);
    snprintf(tmpdir, sizeof tmpdir, "/tmp/pf-bench-esp4m-%d", (int)getpid());
    mkdir(tmpdir, 0755);
    size_t len = 0;
    uint8_t *img = mixed_4mb(&len);
    if (!img) {
        pf_bench_row(b, "esp", "(c) 4 MB mixed: not measured", NAN, "s", NAN,
                     "/usr/lib/x86_64-linux-gnu/libcrypto.so.3 (Debian libssl3) missing");
        return;
    }
    char path[320], what[128], note[400], rate[32] = "?";
    snprintf(path, sizeof path, "%s/mixed4m.bin", tmpdir);
    if (write_file(path, img, len) != 0) {
        free(img);
        return;
    }
    static const uint32_t bauds[] = {115200, 0};
    for (size_t i = 0; i < 2; i++) {
        uint32_t baud = bauds[i];
        const char *at = baud ? "@115200" : "defaults";
        double t[3];
        static const char *m[3] = {"fast", "best", "auto"};
        for (int k = 0; k < 3; k++)
            t[k] = run_ours(b, path, img, len, baud, m[k], rate, sizeof rate);
        for (int k = 1; k < 3; k++) {
            snprintf(what, sizeof what, "(c) 4 MB mixed %s: --compress %s", at, m[k]);
            snprintf(note, sizeof note,
                     "peer: the same peerflash with --compress fast (zlib -9 on the thread); line %s baud; connect to "
                     "verified; 2 MB code (libcrypto.so.3), 1 MB text, 1 MB random at 0x10000",
                     baud ? "115200" : rate);
            pf_bench_row(b, "esp", what, t[k], "s", t[0], note);
        }
        const char *base = getenv("PF_BENCH_ESP_BASELINE");
        if (base) {
            ours_client = base;
            double old = run_ours(b, path, img, len, baud, NULL, NULL, 0);
            ours_client = NULL;
            snprintf(what, sizeof what, "(c) 4 MB mixed %s: default vs baseline", at);
            snprintf(note, sizeof note, "peer: %s with no --compress (its default); ours: --compress auto", base);
            pf_bench_row(b, "esp", what, t[2], "s", old, note);
        }
    }
    free(img);
    char cmd[400];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpdir);
    if (!getenv("PF_BENCH_KEEP") && system(cmd) != 0)
        fprintf(stderr, "bench esp: could not remove %s\n", tmpdir);
}

void pf_bench_esp(pf_bench *b)
{
    signal(SIGPIPE, SIG_IGN);
    snprintf(tmpdir, sizeof tmpdir, "/tmp/pf-bench-esp-%d", (int)getpid());
    mkdir(tmpdir, 0755);
    char path[320], name[96];

    snprintf(path, sizeof path, "%s/updater-mps2.bin", tmpdir);
    size_t flen = 0;
    const char *why = NULL;
    uint8_t *fw = firmware_image(b, path, &flen, &why);
    if (fw) {
        snprintf(name, sizeof name, "(a) updater-mps2.bin %zu B", flen);
        bench_image(b, name, path, fw, flen);
    } else {
        pf_bench_row(b, "esp", "(a) firmware image: not measured", NAN, "s", NAN, why);
    }
    free(fw);

    size_t mlen = b->quick ? 64u * 1024u : 512u * 1024u;
    uint8_t *mixed = malloc(mlen);
    fill_mixed(mixed, mlen);
    snprintf(path, sizeof path, "%s/mixed.bin", tmpdir);
    if (write_file(path, mixed, mlen) == 0) {
        snprintf(name, sizeof name, "(b) %zu KiB half random, half text", mlen / 1024);
        bench_image(b, name, path, mixed, mlen);
    }
    free(mixed);
    char cmd[400];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpdir);
    if (!getenv("PF_BENCH_KEEP") && system(cmd) != 0)
        fprintf(stderr, "bench esp: could not remove %s\n", tmpdir);
}
