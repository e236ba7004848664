/* Agent benchmarks:
 *  - throughput of `peerflash flash --target agent` through `peerflash wire`
 *    at 115200 and 921600 baud, 0 and 20 ms one-way latency, into
 *    `peerflash sim agent` (SPI-NOR-like flash timing), as a fraction of the
 *    line rate (baud / 10 bytes per second, 8N1);
 *  - code size and static RAM of the bootloader and agent+bootloader built
 *    for Cortex-M0+ with arm-none-eabi-gcc -Os. */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "bench.h"
#include "peerflash/pf_sign.h"

/* Waits (bounded) until path exists or the process died. */
static int wait_path(const char *path, pid_t pid, double timeout_s)
{
    double end = pf_bench_now_s() + timeout_s;
    while (pf_bench_now_s() < end) {
        if (access(path, F_OK) == 0)
            return 0;
        if (waitpid(pid, NULL, WNOHANG) == pid)
            return -1;
        usleep(5000);
    }
    return -1;
}

static double json_number(const char *text, const char *key)
{
    const char *p = strstr(text, key);
    return p ? atof(p + strlen(key)) : NAN;
}

/* method: --compress fast|best|auto, or NULL for the default */
static void throughput(pf_bench *b, const char *dir, const char *img, size_t img_len, unsigned baud, unsigned lat_ms,
                       int fast_flash, int zbits, const char *method)
{
    char dev[300], host[300], flash[300], baud_s[16], lat_s[16], log[300], out[300], imgarg[320], what[128],
        note[400], key[300];
    snprintf(dev, sizeof dev, "%s/dev", dir);
    snprintf(host, sizeof host, "%s/host", dir);
    snprintf(flash, sizeof flash, "%s/flash.bin", dir);
    snprintf(log, sizeof log, "%s/sim.log", dir);
    snprintf(out, sizeof out, "%s/flash.json", dir);
    snprintf(key, sizeof key, "%s/key.pem", dir);
    snprintf(baud_s, sizeof baud_s, "%u", baud);
    snprintf(lat_s, sizeof lat_s, "%u", lat_ms);
    snprintf(imgarg, sizeof imgarg, "%s@0", img);
    char zb[8];
    snprintf(zb, sizeof zb, "%d", zbits < 0 ? 0 : zbits);
    char mtext[40] = "";
    if (method)
        snprintf(mtext, sizeof mtext, " 2^%d, --compress %s", zbits, method);
    snprintf(what, sizeof what, "%zu KiB at %u baud, %u ms latency%s%s%s", img_len / 1024, baud, lat_ms,
             fast_flash ? ", instant flash" : "",
             zbits > 0 ? ", compressible, deflate" : zbits == 0 ? ", compressible, deflate off" : "", mtext);
    unlink(flash);
    char *cli = (char *)pf_bench_cli(b);
    char *sim_argv[] = {cli, "sim", "agent", "--port", dev, "--flash", flash, "--slot-kib", "264", "--key", key,
                        "--log", log, "--deflate-bits", zb, fast_flash ? "--erase-ms" : NULL, "0",
                        "--prog-us-per-kib", "0", NULL};
    pid_t sim = pf_bench_spawn(sim_argv, NULL);
    pid_t wire = -1;
    if (wait_path(dev, sim, 5) < 0) {
        pf_bench_row(b, "agent", what, NAN, "x line", NAN, "sim agent did not start");
        pf_bench_stop(sim);
        return;
    }
    char *wire_argv[] = {cli, "wire", "--a", host, "--b", dev, "--baud", baud_s, "--latency-ms", lat_s, NULL};
    wire = pf_bench_spawn(wire_argv, NULL);
    if (wait_path(host, wire, 5) < 0) {
        pf_bench_row(b, "agent", what, NAN, "x line", NAN, "peerflash wire not available: not measured");
        pf_bench_stop(wire);
        pf_bench_stop(sim);
        return;
    }
    char *flash_argv[] = {cli,      "flash",  "--target", "agent", "--port", host, "--baud", baud_s, "--no-run",
                          "--json", "-q",     imgarg,     NULL,    NULL,     NULL};
    if (method) {
        flash_argv[11] = "--compress";
        flash_argv[12] = (char *)method;
        flash_argv[13] = imgarg;
    }
    double t0 = pf_bench_now_s();
    pid_t fl = pf_bench_spawn(flash_argv, out);
    int st = -1;
    while (pf_bench_now_s() - t0 < 300) {
        if (waitpid(fl, &st, WNOHANG) == fl)
            break;
        usleep(20000);
    }
    if (pf_bench_now_s() - t0 >= 300) {
        pf_bench_stop(fl);
        st = -1;
    }
    pf_bench_stop(wire);
    pf_bench_stop(sim);
    char text[2048] = "";
    FILE *f = fopen(out, "r");
    if (f) {
        size_t n = fread(text, 1, sizeof text - 1, f);
        text[n] = 0;
        fclose(f);
    }
    double secs = json_number(text, "\"seconds\":");
    if (st != 0 || !strstr(text, "\"ok\":true") || isnan(secs) || secs <= 0) {
        pf_bench_row(b, "agent", what, NAN, "x line", NAN, "flash failed (see sim.log)");
        return;
    }
    double frac = (double)img_len / secs / (baud / 10.0);
    char zlog[200] = "";
    if (zbits > 0 && method) /* the bytes of the stream (the JSON's wire_bytes): what the method saves */
        snprintf(zlog, sizeof zlog, "; deflate window %d bits, --compress %s: stream %.0f B (%.1f%% of the image)",
                 zbits, method, json_number(text, "\"wire_bytes\":"),
                 100.0 * json_number(text, "\"wire_bytes\":") / (double)img_len);
    else if (zbits > 0) /* what the host said about the stream (sim log has the device side) */
        snprintf(zlog, sizeof zlog, "; deflate window %d bits (2^%d = %d B on the device), level 9", zbits, zbits,
                 1 << zbits);
    snprintf(note, sizeof note,
             "%.1f s for connect+transfer+END checks+verify; line = baud/10 B/s (8N1); %s%s%s",
             secs, fast_flash ? "flash time 0" : "sim flash 2.8 ms/KiB program, 45 ms/4 KiB erase (SPI NOR)", zlog,
             zbits >= 0 ? "; firmware-like image (instruction-word vocabulary, 1 in 5 bytes random): zlib stream ~22% of it" : "");
    pf_bench_row(b, "agent", what, frac, "x line", NAN, note);
}

static const char *size_main =
    "#include \"peerflash/pf_agent.h\"\n"
    "static int f_read(void *c, uint32_t o, void *b, uint32_t l) { (void)c; (void)o; (void)b; (void)l; return 0; }\n"
    "static int f_prog(void *c, uint32_t o, const void *b, uint32_t l) { (void)c; (void)o; (void)b; (void)l; return 0; }\n"
    "static int f_erase(void *c, uint32_t o) { (void)c; (void)o; return 0; }\n"
    "int pf_sig_ecdsa(void *u, const uint8_t *k, size_t kl, const uint8_t h[32], const uint8_t *s, size_t sl);\n"
    "static const uint8_t key[91] = {1};\nstatic uint8_t bbuf[256];\nstatic pf_boot boot;\n"
    "#ifdef WITH_TABLE\n#include \"table.h\" /* a constant table (bench_delta: one version changes it) */\n#endif\n"
    "#ifdef WITH_AGENT\n"
    "static int p_read(void *c, uint8_t *b, size_t n, uint32_t t) { (void)c; (void)b; (void)n; (void)t; return 0; }\n"
    "static int p_write(void *c, const uint8_t *b, size_t n) { (void)c; (void)b; return (int)n; }\n"
    "static uint32_t p_now(void *c) { (void)c; return 0; }\n"
    "static uint8_t wbuf[256], rx[1036], tx[320], zarena[PF_AGENT_ZARENA_SIZE(10)];\nstatic pf_agent agent;\n#endif\n"
    "int main(void) {\n"
    "  pf_flash f = {0, f_read, f_prog, f_erase, 0, 1, 8, 4096, 1 << 20, 0xFF};\n"
    "  pf_boot_config c = PF_BOOT_CONFIG_DEFAULT();\n"
    "  c.flash = &f; c.primary_off = 0; c.secondary_off = 0x44000; c.slot_size = 0x40000; c.state_off = 0x88000;\n"
    "#ifdef WITH_SIG\n"
    "  c.pubkey = key; c.pubkey_len = sizeof key; c.sig_verify = pf_sig_ecdsa;\n"
    "#endif\n"
    "  c.buf = bbuf; c.buf_size = sizeof bbuf;\n"
    "  if (pf_boot_open(&boot, &c) < 0) return 1;\n"
    "  pf_boot_result r; if (pf_boot_run(&boot, &r) < 0) return 2;\n"
    "#ifdef WITH_AGENT\n"
    "  pf_port port = {0}; port.read = p_read; port.write = p_write; port.now_ms = p_now;\n"
    "  pf_agent_config ac = PF_AGENT_CONFIG_DEFAULT();\n"
    "  ac.boot = &boot; ac.port = &port; ac.wbuf = wbuf; ac.wbuf_size = sizeof wbuf;\n"
    "  ac.rxbuf = rx; ac.rxbuf_size = sizeof rx; ac.txbuf = tx; ac.txbuf_size = sizeof tx;\n"
    "  ac.zbits = 10; ac.zarena = zarena; ac.zarena_size = sizeof zarena;\n"
    "  if (pf_agent_init(&agent, &ac) < 0) return 3;\n"
    "  pf_agent_announce(&agent);\n"
    "  for (;;) { int rb = 0; pf_agent_poll(&agent, 10, &rb); if (rb) break; }\n"
    "  pf_boot_confirm(&boot);\n"
    "#endif\n"
    "#ifdef WITH_TABLE\n  return pf_cal_table[boot.rec.seq % (sizeof pf_cal_table / sizeof pf_cal_table[0])];\n#endif\n"
    "  return 0;\n}\n";

/* The MCU's crypto: SHA-256 behind pf_digest and an ECDSA-P256 verify, from
 * Debian's mbedTLS source (what the firmware build fetched). */
static const char *crypto_c =
    "#include <stddef.h>\n#include <stdint.h>\n"
    "#include \"mbedtls/sha256.h\"\n#include \"peerflash/pf_digest.h\"\n#include \"core/digest_backend.h\"\n"
    "#ifdef WITH_SIG\n#include \"mbedtls/ecdsa.h\"\n#endif\n"
    "int pf_digest_backend_begin(pf_digest *d) { mbedtls_sha256_init((void *)d->_state.bytes);\n"
    "  return mbedtls_sha256_starts_ret((void *)d->_state.bytes, 0) ? -3 : 0; }\n"
    "void pf_digest_backend_update(pf_digest *d, const uint8_t *p, size_t n)\n"
    "{ mbedtls_sha256_update_ret((void *)d->_state.bytes, p, n); }\n"
    "int pf_digest_backend_finish(pf_digest *d, uint8_t *o)\n"
    "{ return mbedtls_sha256_finish_ret((void *)d->_state.bytes, o) ? -3 : 0; }\n"
    "int pf_sig_ecdsa(void *u, const uint8_t *k, size_t kl, const uint8_t h[32], const uint8_t *s, size_t sl) {\n"
    "  (void)u;\n#ifdef WITH_SIG\n"
    "  mbedtls_ecdsa_context c; mbedtls_ecdsa_init(&c);\n"
    "  int r = kl < 65 || mbedtls_ecp_group_load(&c.grp, MBEDTLS_ECP_DP_SECP256R1) ||\n"
    "          mbedtls_ecp_point_read_binary(&c.grp, &c.Q, k + kl - 65, 65) ||\n"
    "          mbedtls_ecdsa_read_signature(&c, h, 32, s, sl);\n"
    "  mbedtls_ecdsa_free(&c); return r ? -17 : 0;\n"
    "#else\n  (void)k; (void)kl; (void)h; (void)s; (void)sl; return -17;\n#endif\n}\n";

static const char *crypto_cfg =
    "#define MBEDTLS_SHA256_C\n#define MBEDTLS_SHA256_SMALLER\n"
    "#ifdef WITH_SIG\n#define MBEDTLS_BIGNUM_C\n#define MBEDTLS_ECP_C\n#define MBEDTLS_ECP_DP_SECP256R1_ENABLED\n"
    "#define MBEDTLS_ECDSA_C\n#define MBEDTLS_ECP_NO_INTERNAL_RNG\n#define MBEDTLS_ASN1_PARSE_C\n"
    "#define MBEDTLS_ASN1_WRITE_C\n#endif\n#include \"mbedtls/check_config.h\"\n";

/* text and data+bss of an ELF from arm-none-eabi-size; -1 on failure */
static int arm_size(const char *elf, long *text, long *ram)
{
    char cmd[600];
    snprintf(cmd, sizeof cmd, "timeout 60 arm-none-eabi-size %s 2>/dev/null", elf);
    FILE *p = popen(cmd, "r");
    if (!p)
        return -1;
    char line[256];
    long t = -1, d = 0, bss = 0;
    if (fgets(line, sizeof line, p) && fgets(line, sizeof line, p))
        sscanf(line, "%ld %ld %ld", &t, &d, &bss);
    pclose(p);
    if (t < 0)
        return -1;
    *text = t;
    *ram = d + bss;
    return 0;
}

static void write_text(const char *dir, const char *name, const char *text)
{
    char path[600];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "w");
    if (f) {
        fputs(text, f);
        fclose(f);
    }
}

int pf_bench_agent_fw_cmd(const pf_bench *b, const char *dir, int agent, int sig, const char *defs,
                          const char *proto_c, const char *out_elf, char *cmd, size_t cap, const char **why)
{
    /* the source tree: this file is <src>/bench/bench_agent.c */
    char src[512];
    snprintf(src, sizeof src, "%s", __FILE__);
    for (int k = 0; k < 2; k++) {
        char *slash = strrchr(src, '/');
        if (slash)
            *slash = 0;
    }
    if (system("command -v arm-none-eabi-gcc >/dev/null 2>&1") != 0) {
        *why = "arm-none-eabi-gcc not installed (scripts/deps/agent.txt)";
        return -1;
    }
    /* Debian's mbedTLS and zlib sources, as the firmware build (tests/firmware,
     * make firmware) fetched them */
    char mbed[600] = "", zsrc[600] = "", ls[1200];
    snprintf(ls, sizeof ls, "ls -d %s/firmware/debian-src/mbedtls-*/library 2>/dev/null | head -1", b->exe_dir);
    FILE *p = popen(ls, "r");
    if (p) {
        if (fgets(mbed, sizeof mbed, p))
            mbed[strcspn(mbed, "\n")] = 0;
        pclose(p);
    }
    if (!mbed[0]) {
        *why = "no mbedTLS source (build the firmware first: it fetches Debian's)";
        return -1;
    }
    mbed[strlen(mbed) - strlen("/library")] = 0;
    snprintf(ls, sizeof ls, "ls -d %s/firmware/debian-src/zlib-*/inflate.c 2>/dev/null | head -1", b->exe_dir);
    p = popen(ls, "r");
    if (p) {
        if (fgets(zsrc, sizeof zsrc, p))
            zsrc[strcspn(zsrc, "\n")] = 0;
        pclose(p);
    }
    if (!zsrc[0]) {
        *why = "no zlib source (build the firmware first: it fetches Debian's)";
        return -1;
    }
    zsrc[strlen(zsrc) - strlen("/inflate.c")] = 0;
    write_text(dir, "size_main.c", size_main);
    write_text(dir, "crypto.c", crypto_c);
    write_text(dir, "crypto_cfg.h", crypto_cfg);
    const char *cf = "-mcpu=cortex-m0plus -mthumb -Os -std=c11 -ffunction-sections -fdata-sections "
                     "-Wl,--gc-sections --specs=nano.specs --specs=nosys.specs";
    char ours[3000], mb_hash[1500], mb_sig[3000], inc[1500], agent_src[4000], proto[700];
    snprintf(ours, sizeof ours,
             "%s/src/boot/boot.c %s/src/boot/boot_image.c %s/src/core/digest.c %s/src/core/err.c "
             "%s/src/core/port.c",
             src, src, src, src, src);
    snprintf(mb_hash, sizeof mb_hash, "%s/library/sha256.c %s/library/platform_util.c", mbed, mbed);
    snprintf(mb_sig, sizeof mb_sig,
             "%s %s/library/bignum.c %s/library/ecp.c %s/library/ecp_curves.c %s/library/ecdsa.c "
             "%s/library/asn1parse.c %s/library/asn1write.c %s/library/constant_time.c",
             mb_hash, mbed, mbed, mbed, mbed, mbed, mbed, mbed);
    snprintf(inc, sizeof inc, "-I%s/include -I%s/src -I%s/include -I%s '-DMBEDTLS_CONFIG_FILE=\"crypto_cfg.h\"'", src,
             src, mbed, dir);
    snprintf(proto, sizeof proto, "%s/src/agent/proto.c", src);
    snprintf(agent_src, sizeof agent_src,
             "%s/src/agent/store.c %s %s/src/codec/agent_frame.c %s/src/codec/patch.c "
             "-DZ_SOLO -DNO_GZIP -I%s %s/inflate.c %s/inftrees.c %s/inffast.c %s/adler32.c %s/zutil.c",
             src, proto_c ? proto_c : proto, src, src, zsrc, zsrc, zsrc, zsrc, zsrc, zsrc);
    int n = snprintf(cmd, cap, "cd %s && timeout 300 arm-none-eabi-gcc %s %s %s %s%s size_main.c crypto.c %s %s %s -o %s",
                     dir, cf, inc, defs ? defs : "", agent ? "-DWITH_AGENT " : "", sig ? "-DWITH_SIG" : "", ours,
                     agent ? agent_src : "", sig ? mb_sig : mb_hash, out_elf);
    if (n < 0 || (size_t)n >= cap) {
        *why = "compile command too long";
        return -1;
    }
    return 0;
}

static void code_size(pf_bench *b, const char *dir)
{
    static const struct {
        const char *elf, *what;
        int agent, sig;
    } v[] = {
        {"boot_hash.elf", "bootloader, SHA-256 only", 0, 0},
        {"boot_sig.elf", "bootloader + ECDSA-P256 check", 0, 1},
        {"agent_hash.elf", "agent+bootloader, SHA-256 only", 1, 0},
        {"agent_sig.elf", "agent+bootloader + ECDSA-P256 check", 1, 1},
    };
    const char *why = NULL;
    char cmd[12000], path[600];
    if (pf_bench_agent_fw_cmd(b, dir, 0, 0, NULL, NULL, "x.elf", cmd, sizeof cmd, &why) < 0) {
        pf_bench_row(b, "agent", "Cortex-M0+ code size", NAN, "bytes", NAN, why);
        return;
    }
    write_text(dir, "base.c", "int main(void) { return 0; }\n");
    snprintf(cmd, sizeof cmd,
             "cd %s && timeout 120 arm-none-eabi-gcc -mcpu=cortex-m0plus -mthumb -Os -std=c11 -ffunction-sections "
             "-fdata-sections -Wl,--gc-sections --specs=nano.specs --specs=nosys.specs base.c -o base.elf",
             dir);
    long bt, br;
    snprintf(path, sizeof path, "%s/base.elf", dir);
    if (system(cmd) != 0 || arm_size(path, &bt, &br) < 0) {
        pf_bench_row(b, "agent", "Cortex-M0+ code size", NAN, "bytes", NAN, "cross build of an empty program failed");
        return;
    }
    for (size_t i = 0; i < sizeof v / sizeof v[0]; i++) {
        long t, r;
        char what[96], note[300];
        snprintf(what, sizeof what, "%s: code (Cortex-M0+)", v[i].what);
        snprintf(path, sizeof path, "%s/%s", dir, v[i].elf);
        if (pf_bench_agent_fw_cmd(b, dir, v[i].agent, v[i].sig, NULL, NULL, v[i].elf, cmd, sizeof cmd - 20, &why) < 0 ||
            (strcat(cmd, " 2>/dev/null"), system(cmd)) != 0 || arm_size(path, &t, &r) < 0) {
            pf_bench_row(b, "agent", what, NAN, "bytes", NAN, "cross build failed");
            continue;
        }
        snprintf(note, sizeof note,
                 "arm-none-eabi-gcc -Os, newlib-nano, minus an empty program; crypto: mbedTLS 2.28 from Debian's "
                 "source (SHA256_SMALLER%s)%s",
                 v[i].sig ? ", ECP/ECDSA/bignum/ASN.1 for P-256 verify, newlib malloc it pulls in" : "",
                 v[i].agent ? "; zlib 1.2.13 inflate (Debian source, Z_SOLO, NO_GZIP); delta applier" : "");
        pf_bench_row(b, "agent", what, (double)(t - bt), "bytes", NAN, note);
        snprintf(what, sizeof what, "%s: static RAM", v[i].what);
        snprintf(note, sizeof note, "state + work buffers (%s)%s; stack not counted",
                 v[i].agent ? "256 work, 256 write, 1036 frame rx, 320 tx, 8.7 KB inflate arena (2^10 window)"
                            : "256 work",
                 v[i].sig ? "; mbedTLS bignum heap not counted (P-256 verify needs a few KiB)" : "");
        pf_bench_row(b, "agent", what, (double)(r - br), "bytes", NAN, note);
    }
}

static int make_compressible(const char *dir, size_t target, const char *pem, char *path, size_t path_cap, int *len)
{
    static const char *const words[] = {"\x10\xb5\x04\x46", "\x00\x28\x02\xd0", "\xfe\xe7", "\x70\x47",
                                        "\x08\x68\x01\x30", "\xbd\xe8\xf0\x81", "ldr r0, [pc, #12]", "\x00\xbf"};
    size_t body_len = target - 32 - 4 - 36 - 36 - 80;
    uint8_t *body = malloc(body_len);
    uint32_t x = 777;
    for (size_t i = 0; i < body_len;) {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        if (x % 5 == 0) {
            body[i++] = (uint8_t)(x >> 8);
            continue;
        }
        const char *w = words[(x >> 4) % 8];
        for (size_t k = 0; w[k] && i < body_len; k++)
            body[i++] = (uint8_t)w[k];
    }
    pf_sign_params p = PF_SIGN_PARAMS_DEFAULT();
    p.version.major = 2;
    p.key_pem = pem;
    size_t cap = pf_sign_image_size_max(&p, body_len);
    uint8_t *img = malloc(cap);
    pf_diag d;
    int n = pf_sign_image(&p, body, body_len, img, cap, &d);
    free(body);
    snprintf(path, path_cap, "%s/image_z.bin", dir);
    FILE *f = n > 0 ? fopen(path, "wb") : NULL;
    if (f) {
        fwrite(img, 1, (size_t)n, f);
        fclose(f);
    }
    free(img);
    *len = n;
    return f ? 0 : -1;
}

void pf_bench_agent(pf_bench *b)
{
    char dir[] = "/tmp/pf_bench_agent_XXXXXX";
    if (!mkdtemp(dir))
        return;
    /* the CLI's image cache (delta updates) with the bench's files, not in $HOME */
    char cache[64];
    snprintf(cache, sizeof cache, "%s/cache", dir);
    setenv("PEERFLASH_CACHE_DIR", cache, 1);
    code_size(b, dir);

    /* a signed image of 256 KiB (64 KiB with --quick) */
    char pem[1024], path[300];
    pf_diag d;
    if (pf_sign_keygen(pem, sizeof pem, &d) < 0)
        return;
    snprintf(path, sizeof path, "%s/key.pem", dir);
    FILE *f = fopen(path, "w");
    fputs(pem, f);
    fclose(f);
    size_t target = b->quick ? 64 * 1024 : 256 * 1024;
    size_t body_len = target - 32 - 4 - 36 - 36 - 80;
    uint8_t *body = malloc(body_len);
    uint32_t x = 12345;
    for (size_t i = 0; i < body_len; i++) {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        body[i] = (uint8_t)x;
    }
    pf_sign_params p = PF_SIGN_PARAMS_DEFAULT();
    p.version.major = 1;
    p.key_pem = pem;
    size_t cap = pf_sign_image_size_max(&p, body_len);
    uint8_t *img = malloc(cap);
    int n = pf_sign_image(&p, body, body_len, img, cap, &d);
    free(body);
    if (n < 0) {
        free(img);
        return;
    }
    char img_path[300];
    snprintf(img_path, sizeof img_path, "%s/image.bin", dir);
    f = fopen(img_path, "wb");
    fwrite(img, 1, (size_t)n, f);
    fclose(f);
    free(img);
    static const unsigned bauds[] = {115200, 921600};
    static const unsigned lats[] = {0, 20};
    for (int i = 0; i < 2; i++)
        for (int j = 0; j < 2; j++)
            if (!b->quick || j == 0)
                throughput(b, dir, img_path, (size_t)n, bauds[i], lats[j], 0, -1, NULL);
    throughput(b, dir, img_path, (size_t)n, 921600, 0, 1, -1, NULL);
    if (!b->quick)
        throughput(b, dir, img_path, (size_t)n, 921600, 20, 1, -1, NULL);
    /* a compressible image (firmware-like: a small vocabulary of instruction
     * words and some literals) at 115200, with and without deflate */
    if (make_compressible(dir, b->quick ? 64 * 1024 : 256 * 1024, pem, img_path, sizeof img_path, &n) == 0) {
        throughput(b, dir, img_path, (size_t)n, 115200, 0, 0, 12, NULL);
        throughput(b, dir, img_path, (size_t)n, 115200, 0, 0, 0, NULL);
        if (!b->quick)
            throughput(b, dir, img_path, (size_t)n, 115200, 20, 0, 12, NULL);
        /* --compress fast|best|auto against an agent that inflates with 2^15
         * (zopfli's window): bytes on the wire and time, at a slow and a fast
         * line (where zopfli may not keep up) */
        static const char *const methods[] = {"fast", "best", "auto"};
        static const unsigned mbauds[] = {115200, 921600};
        for (int i = 0; i < 2; i++)
            for (int k = 0; k < 3; k++)
                if (!b->quick || i == 0)
                    throughput(b, dir, img_path, (size_t)n, mbauds[i], 0, 0, 15, methods[k]);
    }
    char cmd[400];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    if (system(cmd) != 0)
        fprintf(stderr, "bench agent: could not remove %s\n", dir);
}
