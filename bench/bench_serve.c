/* `peerflash serve` (issue 13): the daemon's overhead against `peerflash
 * flash` on the same simulated STM32 (the simulator's default program and
 * erase times, 115200 baud, no wire) with images of the same size, runs
 * interleaved; then requests per second of GET /api/targets/NAME from one
 * keep-alive client polling flat out while a flash runs, and that flash's
 * time against a quiet one. The serve time is libcurl's total time of the
 * upload (first byte sent to the JSON answer: received, parsed, written,
 * verified); the CLI's is the wall time of the process (start to exit). */
#include <curl/curl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "bench.h"

typedef struct {
    char *data;
    size_t len;
} reply;

static size_t keep(char *p, size_t size, size_t n, void *user)
{
    reply *r = user;
    size_t add = size * n;
    char *grown = realloc(r->data, r->len + add + 1);
    if (!grown)
        return 0;
    memcpy(grown + r->len, p, add);
    r->len += add;
    grown[r->len] = '\0';
    r->data = grown;
    return add;
}

/* One request on handle h (reused: keep-alive); the body into *out. */
static int request(CURL *h, const char *url, const void *body, size_t body_len, reply *out, double *secs)
{
    out->len = 0;
    curl_easy_setopt(h, CURLOPT_URL, url);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, keep);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, out);
    curl_easy_setopt(h, CURLOPT_TIMEOUT, 300L);
    if (body) {
        curl_easy_setopt(h, CURLOPT_POSTFIELDS, body);
        curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)body_len);
    } else {
        curl_easy_setopt(h, CURLOPT_HTTPGET, 1L);
    }
    if (curl_easy_perform(h) != CURLE_OK)
        return -1;
    if (secs)
        curl_easy_getinfo(h, CURLINFO_TOTAL_TIME, secs);
    return out->data ? 0 : -1;
}

static void random_image(unsigned char *img, size_t len, unsigned seed)
{
    srand(seed);
    for (size_t i = 0; i < len; i++)
        img[i] = (unsigned char)(rand() & 0xFF);
}

/* The daemon's URL from its "ready" log line; a deadline, no fixed sleep. */
static int wait_ready(const char *log, char *url, size_t cap)
{
    double end = pf_bench_now_s() + 20;
    while (pf_bench_now_s() < end) {
        char text[4096] = "";
        FILE *f = fopen(log, "r");
        if (f) {
            text[fread(text, 1, sizeof text - 1, f)] = '\0';
            fclose(f);
        }
        const char *p = strstr(text, "listening on http://");
        if (p) {
            unsigned port = 0;
            if (sscanf(p, "listening on http://127.0.0.1:%u/", &port) == 1 && port) {
                snprintf(url, cap, "http://127.0.0.1:%u", port);
                return 0;
            }
        }
        usleep(10000);
    }
    return -1;
}

static int by_value(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static double median(double *v, int n)
{
    qsort(v, (size_t)n, sizeof *v, by_value);
    return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

typedef struct {
    const char *url;
    const unsigned char *img;
    size_t len;
    double secs;
    int ok;
} upload;

static void *upload_thread(void *arg)
{
    upload *u = arg;
    CURL *h = curl_easy_init();
    reply r = {0};
    u->ok = h && request(h, u->url, u->img, u->len, &r, &u->secs) == 0 && strstr(r.data, "\"ok\":true");
    free(r.data);
    if (h)
        curl_easy_cleanup(h);
    return NULL;
}

void pf_bench_serve(pf_bench *b)
{
    char dir[] = "/tmp/pf-bench-serve-XXXXXX";
    if (!mkdtemp(dir))
        return;
    char *cli = (char *)pf_bench_cli(b);
    int runs = b->quick ? 1 : 3;
    size_t len = b->quick ? 16 * 1024 : 64 * 1024;
    char dev[128], flash[128], img_path[128], imgarg[160], log[128], url[64] = "", flash_url[128], state_url[128];
    snprintf(dev, sizeof dev, "%s/stm", dir);
    snprintf(flash, sizeof flash, "%s/stm.flash", dir);
    snprintf(img_path, sizeof img_path, "%s/fw.bin", dir);
    snprintf(imgarg, sizeof imgarg, "%s@0x08000000", img_path);
    snprintf(log, sizeof log, "%s/serve.log", dir);
    unsigned char *img = malloc(len);
    char *sim_argv[] = {cli, "sim", "stm32", "--port", dev, "--flash", flash, "--chip", "G07xxB", NULL};
    pid_t sim = pf_bench_spawn(sim_argv, NULL), serve = -1;
    double end = pf_bench_now_s() + 10;
    while (access(dev, F_OK) != 0 && pf_bench_now_s() < end)
        usleep(5000);
    char *serve_argv[] = {cli, "serve", "--listen", "127.0.0.1:0", "--target", "stm32", "--port", dev,
                          "--baud", "115200", NULL};
    if (img && access(dev, F_OK) == 0)
        serve = pf_bench_spawn(serve_argv, log);
    CURL *h = curl_easy_init();
    double cli_s[3], srv_s[3], quiet = NAN, busy = NAN, rate = NAN;
    int done = 0;
    if (serve > 0 && h && wait_ready(log, url, sizeof url) == 0) {
        snprintf(flash_url, sizeof flash_url, "%s/api/targets/stm32/flash", url);
        snprintf(state_url, sizeof state_url, "%s/api/targets/stm32", url);
        reply r = {0};
        for (; done < runs; done++) {
            /* a new image each time: nothing is skipped as unchanged */
            random_image(img, len, 100u + (unsigned)done);
            FILE *f = fopen(img_path, "wb");
            if (!f || fwrite(img, 1, len, f) != len) {
                if (f)
                    fclose(f);
                break;
            }
            fclose(f);
            char *flash_argv[] = {cli, "flash", "--json", "-q", "--target", "stm32", "--port", dev, "--baud",
                                  "115200", imgarg, NULL};
            double t0 = pf_bench_now_s();
            pid_t p = pf_bench_spawn(flash_argv, NULL);
            int st = -1;
            if (waitpid(p, &st, 0) != p || !WIFEXITED(st) || WEXITSTATUS(st) != 0)
                break;
            cli_s[done] = pf_bench_now_s() - t0;
            random_image(img, len, 200u + (unsigned)done);
            if (request(h, flash_url, img, len, &r, &srv_s[done]) < 0 || !strstr(r.data, "\"ok\":true"))
                break;
        }
        /* the status endpoint polled flat out by one keep-alive client while a flash runs */
        random_image(img, len, 7);
        if (done == runs && request(h, flash_url, img, len, &r, &quiet) == 0 && strstr(r.data, "\"ok\":true")) {
            random_image(img, len, 8);
            upload u = {flash_url, img, len, NAN, 0};
            pthread_t th;
            if (pthread_create(&th, NULL, upload_thread, &u) == 0) {
                int seen_busy = 0;
                long n = 0;
                double t0 = 0, stop = pf_bench_now_s() + 300;
                while (pf_bench_now_s() < stop && request(h, state_url, NULL, 0, &r, NULL) == 0) {
                    int is_busy = strstr(r.data, "\"state\":\"busy\"") != NULL;
                    if (!seen_busy && is_busy) {
                        seen_busy = 1;
                        t0 = pf_bench_now_s();
                    } else if (seen_busy && !is_busy) {
                        break;
                    }
                    n += seen_busy;
                }
                if (seen_busy && pf_bench_now_s() > t0)
                    rate = (double)n / (pf_bench_now_s() - t0);
                pthread_join(th, NULL);
                if (u.ok)
                    busy = u.secs;
            }
        }
        free(r.data);
    }
    if (h)
        curl_easy_cleanup(h);
    pf_bench_stop(serve);
    pf_bench_stop(sim);
    char what[96], note[200];
    snprintf(what, sizeof what, "%zu KiB to STM32 through serve (HTTP upload)", len / 1024);
    snprintf(note, sizeof note,
             "median of %d; peer column = peerflash flash, same sim, 115200; upload to verified; goal <= 1.05x",
             runs);
    int all = done == runs;
    pf_bench_row(b, "serve", what, all ? median(srv_s, runs) : NAN, "s", all ? median(cli_s, runs) : NAN, note);
    pf_bench_row(b, "serve", "status requests while a flash runs", rate, "req/s", NAN,
                 "GET /api/targets/stm32, one keep-alive client polling flat out on the same cores");
    pf_bench_row(b, "serve", "flash under that polling", busy, "s", quiet,
                 "peer column = the same flash with no polling; goal <= 1.02x");
    free(img);
    char cmd[200];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    if (system(cmd) != 0) {
    }
}
