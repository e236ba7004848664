/* ESP ROM loader benchmark: a 1 MiB image (half code-like, half
 * compressible) written by `--target esp` into the ROM simulator through
 * the link emulator (sim/wire.h, follow mode: each side's termios rate, 8N1),
 * plain and compressed, at 115200 and after a switch to 921600. The simulated flash erases 4 KiB in 10 ms and programs 1 KiB in
 * 2 ms. Effective rate = image bits / (write + verify time), connect excluded.
 * The peer column holds esptool's published figures (QUOTED anchors, not
 * measured here) and, where npm's esptool-js is installed in the build tree
 * (by the esptool-js tests), esptool-js measured in the same run on the same
 * link emulator and simulator over TCP at 115200 (stub uploaded, compressed). */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../tests/esp/esp_harness.h"
#include "bench.h"
#include "wire.h"

#define ERASE_MS_4K 10
#define WRITE_US_KB 2000

static esp_simthread *sim_start(const char *tag, uint32_t size)
{
    static esp_simthread st;
    memset(&st, 0, sizeof st);
    snprintf(st.path, sizeof st.path, "/tmp/pf-bench-esp-%s-%d", tag, (int)getpid());
    char spec[160];
    snprintf(spec, sizeof spec, "pty:%s", st.path);
    pf_sim_esp32_config cfg = PF_SIM_ESP32_CONFIG_DEFAULT();
    cfg.port = spec;
    cfg.flash_size = size;
    cfg.erase_ms_per_4k = ERASE_MS_4K;
    cfg.write_us_per_kb = WRITE_US_KB;
    cfg.verbose = getenv("PF_ESP_SIM_VERBOSE") != NULL;
    pf_diag d = {0};
    pf_sim_esp32_open(&st.sim, &cfg, &d);
    if (!st.sim) {
        fprintf(stderr, "bench esp: %s\n", d.text);
        return NULL;
    }
    pthread_create(&st.th, NULL, esp_sim_thread_fn, &st);
    return &st;
}

/* One write of the image; returns effective kbit/s or NAN. */
static double run_ours(const uint8_t *img, uint32_t len, uint32_t fast_baud, int compress, double *ratio_sent)
{
    esp_simthread *st = sim_start("ours", 4u << 20);
    if (!st)
        return NAN;
    char host[128], aspec[160];
    snprintf(host, sizeof host, "/tmp/pf-bench-esp-host-%d", (int)getpid());
    snprintf(aspec, sizeof aspec, "pty:%s", host);
    pf_wire_config wc = PF_WIRE_CONFIG_DEFAULT();
    wc.a = aspec;
    wc.b = st->path;
    wc.follow = 1;
    pf_wire *w = NULL;
    pf_diag wd = {0};
    double kbps = NAN;
    if (pf_wire_open(&w, &wc, &wd) == 0 && pf_wire_start(w) == 0) {
        esp_host h;
        int r = esp_host_open(&h, host, fast_baud, NULL, compress);
        if (r == 0) {
            static pf_segment segs[4];
            pf_memmap map;
            pf_memmap_init(&map, segs, 4, (uint8_t *)malloc(len), len);
            pf_memmap_add(&map, 0x10000, img, len, NULL);
            pf_memmap_finish(&map, NULL);
            static uint8_t work[8192];
            pf_job_config jc = PF_JOB_CONFIG_DEFAULT();
            jc.skip_unchanged = 0;
            jc.buf = work;
            jc.buf_size = sizeof work;
            jc.diag = &h.diag;
            jc.clock = &h.port;
            pf_job_result res;
            r = pf_job_flash(&h.t, &map, &jc, &res);
            if (r == 0 && res.verified) {
                double secs = (res.ms_write + res.ms_verify) / 1000.0;
                kbps = len * 8.0 / secs / 1000.0;
                pf_esp_stats es;
                pf_esp_get_stats(h.self, &es);
                *ratio_sent = (double)es.sent_bytes / es.raw_bytes;
            } else {
                fprintf(stderr, "bench esp: job failed: %s\n", h.diag.text);
            }
            free(map._arena);
        } else {
            fprintf(stderr, "bench esp: connect failed: %s\n", h.diag.text);
        }
        esp_host_close(&h);
    } else {
        fprintf(stderr, "bench esp: wire: %s\n", wd.text);
    }
    if (w)
        pf_wire_close(w);
    esp_sim_stop(st);
    return kbps;
}

/* esptool-js (npm) on the same simulator through the same link emulator, TCP host
 * side at 115200; returns effective kbit/s (write + MD5 verify) or NAN. */
static double run_esptool_js(const pf_bench *b, const uint8_t *img, uint32_t len)
{
    char npm[600], cmd[1600], imgpath[128], out[128];
    snprintf(npm, sizeof npm, "%s/tests/esp/npm", b->exe_dir);
    char probe[700];
    snprintf(probe, sizeof probe, "%s/node_modules/esptool-js/package.json", npm);
    struct stat sb;
    if (stat(probe, &sb) != 0) {
        fprintf(stderr, "bench esp: esptool-js not installed in %s (run the esptool-js tests first)\n", npm);
        return NAN;
    }
    snprintf(imgpath, sizeof imgpath, "/tmp/pf-bench-esp-img-%d.bin", (int)getpid());
    snprintf(out, sizeof out, "/tmp/pf-bench-esp-js-%d.log", (int)getpid());
    FILE *f = fopen(imgpath, "wb");
    if (!f || fwrite(img, 1, len, f) != len) {
        if (f)
            fclose(f);
        return NAN;
    }
    fclose(f);
    esp_simthread *st = sim_start("js", 4u << 20);
    if (!st)
        return NAN;
    int port = 20000 + (int)(getpid() % 20000);
    char spec[64];
    snprintf(spec, sizeof spec, "tcp-listen://%d", port);
    pf_wire_config wc = PF_WIRE_CONFIG_DEFAULT();
    wc.a = spec;
    wc.b = st->path;
    wc.follow = 1;
    wc.baud = 115200; /* the TCP side's rate: esptool-js stays at 115200 */
    pf_wire *w = NULL;
    pf_diag wd = {0};
    double kbps = NAN;
    if (pf_wire_open(&w, &wc, &wd) == 0 && pf_wire_start(w) == 0) {
        snprintf(cmd, sizeof cmd, "cd %s && timeout 600 node esptool_js_flash.mjs %d %s 0x10000 115200 > %s 2>&1", npm,
                 port, imgpath, out);
        int rc = system(cmd);
        FILE *o = fopen(out, "r");
        char line[1024];
        while (o && fgets(line, sizeof line, o)) {
            const char *wm = strstr(line, "\"write_ms\":");
            if (!strncmp(line, "RESULT ", 7) && wm && strstr(line, "\"verified\":true"))
                kbps = len * 8.0 / (atof(wm + 11) / 1000.0) / 1000.0;
        }
        if (o)
            fclose(o);
        if (rc != 0 || isnan(kbps))
            fprintf(stderr, "bench esp: esptool-js run failed (see %s)\n", out);
        else
            unlink(out);
    } else {
        fprintf(stderr, "bench esp: wire: %s\n", wd.text);
    }
    if (w)
        pf_wire_close(w);
    esp_sim_stop(st);
    unlink(imgpath);
    return kbps;
}

void pf_bench_esp(pf_bench *b)
{
    signal(SIGPIPE, SIG_IGN);
    uint32_t len = b->quick ? 128u * 1024u : 1024u * 1024u;
    uint8_t *img = malloc(len);
    esp_fill(img, len, 42);
    const char *size = b->quick ? "128 KiB" : "1 MiB";
    char what[96], note[256];
    static const struct {
        uint32_t baud;
        double anchor; /* esptool's published plain figure at this rate, kbit/s */
    } rates[] = {{115200, 84.0}, {921600, 451.0}};
    /* PF_BENCH_ESP_ONLY=plain|compressed runs only those rows, without esptool-js */
    const char *only = getenv("PF_BENCH_ESP_ONLY");
    double js = only ? NAN : run_esptool_js(b, img, len);
    for (size_t i = 0; i < 2; i++) {
        uint32_t baud = rates[i].baud;
        for (int compress = 0; compress < 2; compress++) {
            if (only && strcmp(only, compress ? "compressed" : "plain") != 0)
                continue;
            double sent = 0;
            double kbps = run_ours(img, len, baud, compress, &sent); /* pinned: no --baud would climb to 921600 */
            snprintf(what, sizeof what, "%s %s @%lu: effective", size, compress ? "compressed" : "plain",
                     (unsigned long)baud);
            if (!compress) {
                snprintf(note, sizeof note,
                         "through wire --baud follow + ROM sim; peer = esptool's QUOTED %.0f kbit/s plain (not measured "
                         "here); %.2f of line rate",
                         rates[i].anchor, kbps * 1000.0 / baud);
                pf_bench_row(b, "esp", what, kbps, "kbit/s", rates[i].anchor, note);
            } else if (baud == 115200) {
                snprintf(note, sizeof note,
                         "deflate on the fly, sent %.0f%% of the bytes; %.2f of line rate; peer = esptool-js 0.7.0 "
                         "(stub, compressed) measured now, same wire and sim",
                         sent * 100.0, kbps * 1000.0 / baud);
                pf_bench_row(b, "esp", what, kbps, "kbit/s", js, note);
            } else {
                snprintf(note, sizeof note,
                         "deflate on the fly, sent %.0f%% of the bytes; %.2f of line rate; peer = esptool's QUOTED "
                         "513 kbit/s (stub+compression at 460800), not measured here",
                         sent * 100.0, kbps * 1000.0 / baud);
                pf_bench_row(b, "esp", what, kbps, "kbit/s", 513.0, note);
            }
        }
    }
    free(img);
}
