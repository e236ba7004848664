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
#include <stdatomic.h>
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

/* CPU seconds (user + system) of process pid so far, from /proc/PID/stat. */
static double proc_cpu_s(pid_t pid)
{
    char path[64], text[1024];
    snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
    FILE *f = fopen(path, "r");
    if (!f)
        return NAN;
    size_t n = fread(text, 1, sizeof text - 1, f);
    fclose(f);
    text[n] = '\0';
    const char *p = strrchr(text, ')'); /* the command name may hold spaces */
    unsigned long long ut = 0, st = 0;
    if (!p || sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu", &ut, &st) != 2)
        return NAN;
    return (double)(ut + st) / (double)sysconf(_SC_CLK_TCK);
}

static double thread_cpu_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

/* A client polling GET url on one keep-alive connection until told to stop:
 * flat out (rate 0), or at a fixed rate on an absolute schedule (no drift). */
typedef struct {
    const char *url;
    double rate;
    atomic_int stop;
    long n, failed;
    double cpu_s, wall_s; /* this thread's own CPU time and wall time while polling */
} poller;

static void *poll_thread(void *arg)
{
    poller *p = arg;
    CURL *h = curl_easy_init();
    reply r = {0};
    double c0 = thread_cpu_s(), t0 = pf_bench_now_s();
    while (h && !atomic_load(&p->stop)) {
        if (request(h, p->url, NULL, 0, &r, NULL) == 0 && r.len > 0)
            p->n++;
        else
            p->failed++;
        if (p->rate > 0) {
            double next = t0 + (double)(p->n + p->failed) / p->rate, now = pf_bench_now_s();
            if (next > now)
                usleep((useconds_t)((next - now) * 1e6));
        }
    }
    p->cpu_s = thread_cpu_s() - c0;
    p->wall_s = pf_bench_now_s() - t0;
    free(r.data);
    if (h)
        curl_easy_cleanup(h);
    return NULL;
}

/* One flash of a new random image through the daemon, with the status endpoint
 * polled meanwhile at rate (0 = flat out; < 0 = no polling). Fills the upload
 * time, the requests, the poller's and the daemon's CPU seconds. */
typedef struct {
    double secs, req_rate, poller_cpu, daemon_cpu;
    long n;
} polled_flash;

static int flash_polled(CURL *h, const char *flash_url, const char *state_url, pid_t serve, unsigned char *img,
                        size_t len, unsigned seed, double rate, polled_flash *out)
{
    random_image(img, len, seed);
    poller p = {.url = state_url, .rate = rate};
    pthread_t th;
    int polling = rate >= 0 && pthread_create(&th, NULL, poll_thread, &p) == 0;
    if (rate >= 0 && !polling)
        return -1;
    reply r = {0};
    double d0 = proc_cpu_s(serve);
    int ok = request(h, flash_url, img, len, &r, &out->secs) == 0 && strstr(r.data, "\"ok\":true");
    double d1 = proc_cpu_s(serve);
    free(r.data);
    if (polling) {
        atomic_store(&p.stop, 1);
        pthread_join(th, NULL);
    }
    out->n = p.n;
    out->req_rate = polling && p.wall_s > 0 ? (double)p.n / p.wall_s : 0;
    out->poller_cpu = polling ? p.cpu_s : 0;
    out->daemon_cpu = d1 - d0;
    return ok && !p.failed ? 0 : -1;
}

static double min_of(const double *v, int n)
{
    double m = v[0];
    for (int i = 1; i < n; i++)
        m = v[i] < m ? v[i] : m;
    return m;
}

static double max_of(const double *v, int n)
{
    double m = v[0];
    for (int i = 1; i < n; i++)
        m = v[i] > m ? v[i] : m;
    return m;
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
    double cli_s[3], srv_s[3];
    int done = 0;
    /* the polling rounds; PF_BENCH_SERVE_RATE and PF_BENCH_SERVE_POLL (a path)
     * change the fixed rate and the polled URL for diagnosis */
    enum { MAX_ROUNDS = 9 };
    int rounds = b->quick ? 1 : 5, rounds_done = 0;
    const char *env_rate = getenv("PF_BENCH_SERVE_RATE"), *env_path = getenv("PF_BENCH_SERVE_POLL");
    double fixed_rate = env_rate ? atof(env_rate) : 200;
    const char *poll_path = env_path ? env_path : "/api/targets/stm32";
    double quiet_s[MAX_ROUNDS], fixed_s[MAX_ROUNDS], flat_s[MAX_ROUNDS], fixed_ratio[MAX_ROUNDS], flat_ratio[MAX_ROUNDS],
        fixed_rate_got[MAX_ROUNDS], flat_rate[MAX_ROUNDS], flat_poller_core[MAX_ROUNDS],
        fixed_poller_core[MAX_ROUNDS], flat_us_per_req[MAX_ROUNDS], fixed_us_per_req[MAX_ROUNDS];
    if (getenv("PF_BENCH_SERVE_ROUNDS"))
        rounds = atoi(getenv("PF_BENCH_SERVE_ROUNDS"));
    if (rounds < 1 || rounds > MAX_ROUNDS)
        rounds = 5;
    if (serve > 0 && h && wait_ready(log, url, sizeof url) == 0) {
        snprintf(flash_url, sizeof flash_url, "%s/api/targets/stm32/flash", url);
        snprintf(state_url, sizeof state_url, "%s%s", url, poll_path);
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
        free(r.data);
        /* The status endpoint polled while a flash runs, three ways in each
         * round, the order rotated from round to round so that a drift of the
         * machine's load falls on every way alike: no polling; one client at a
         * fixed rate (bounded: its own CPU is small, what is left is the
         * daemon's cost); one client flat out (it takes a core of its own on a
         * 2-core machine: that slowdown is mostly the client's, the CPU
         * figures say how much). Each polled flash is compared with the quiet
         * one of its own round. */
        for (int round = 0; done == runs && rounds_done < rounds; round++) {
            polled_flash f[3];
            int good = 1;
            for (int k = 0; k < 3 && good; k++) {
                int way = (round + k) % 3;
                double rate = way == 0 ? -1 : way == 1 ? fixed_rate : 0;
                good = flash_polled(h, flash_url, state_url, serve, img, len, 1000u + 3u * (unsigned)round + (unsigned)k,
                                    rate, &f[way]) == 0;
            }
            if (!good)
                break;
            quiet_s[rounds_done] = f[0].secs;
            fixed_ratio[rounds_done] = f[1].secs / f[0].secs;
            flat_ratio[rounds_done] = f[2].secs / f[0].secs;
            fixed_s[rounds_done] = f[1].secs;
            flat_s[rounds_done] = f[2].secs;
            fixed_rate_got[rounds_done] = f[1].req_rate;
            flat_rate[rounds_done] = f[2].req_rate;
            flat_poller_core[rounds_done] = f[2].poller_cpu / f[2].secs;
            fixed_poller_core[rounds_done] = f[1].poller_cpu / f[1].secs;
            /* the daemon's CPU for the requests: its CPU in the polled flash
             * beyond the quiet one's, per request */
            flat_us_per_req[rounds_done] = f[2].n ? (f[2].daemon_cpu - f[0].daemon_cpu) / (double)f[2].n * 1e6 : NAN;
            fixed_us_per_req[rounds_done] = f[1].n ? (f[1].daemon_cpu - f[0].daemon_cpu) / (double)f[1].n * 1e6 : NAN;
            rounds_done++;
        }
    }
    if (h)
        curl_easy_cleanup(h);
    pf_bench_stop(serve);
    pf_bench_stop(sim);
    char what[96], note[300];
    snprintf(what, sizeof what, "%zu KiB to STM32 through serve (HTTP upload)", len / 1024);
    int all = done == runs;
    snprintf(note, sizeof note,
             "median of %d (serve %.3f..%.3f s, flash %.3f..%.3f s); peer column = peerflash flash, same sim, 115200; "
             "upload to verified; goal <= 1.05x",
             runs, all ? min_of(srv_s, runs) : NAN, all ? max_of(srv_s, runs) : NAN, all ? min_of(cli_s, runs) : NAN,
             all ? max_of(cli_s, runs) : NAN);
    pf_bench_row(b, "serve", what, all ? median(srv_s, runs) : NAN, "s", all ? median(cli_s, runs) : NAN, note);
    int nr = rounds_done;
    int have = nr == rounds;
    double q = have ? median(quiet_s, nr) : NAN;
    snprintf(what, sizeof what, "flash while polled at %.0f req/s", fixed_rate);
    snprintf(note, sizeof note,
             "GET %s, one keep-alive client at a fixed rate (its CPU: %.1f%% of a core); %d rounds, ratio to the "
             "quiet flash of the same round: median %.3fx, %.3fx..%.3fx; daemon CPU %.0f us/request; goal <= 1.02x",
             poll_path, have ? 100 * median(fixed_poller_core, nr) : NAN, nr, have ? median(fixed_ratio, nr) : NAN,
             have ? min_of(fixed_ratio, nr) : NAN, have ? max_of(fixed_ratio, nr) : NAN,
             have ? median(fixed_us_per_req, nr) : NAN);
    pf_bench_row(b, "serve", what, have ? median(fixed_s, nr) : NAN, "s", q, note);
    (void)fixed_rate_got;
    snprintf(note, sizeof note,
             "one keep-alive client polling flat out while a flash runs, median of %d (%.0f..%.0f); daemon CPU %.0f "
             "us/request",
             nr, have ? min_of(flat_rate, nr) : NAN, have ? max_of(flat_rate, nr) : NAN,
             have ? median(flat_us_per_req, nr) : NAN);
    pf_bench_row(b, "serve", "status requests while a flash runs", have ? median(flat_rate, nr) : NAN, "req/s", NAN,
                 note);
    snprintf(note, sizeof note,
             "the flat-out client takes %.0f%% of a core itself on the shared 2 cores; ratio to the quiet flash of the "
             "same round: median %.3fx, %.3fx..%.3fx; not the goal's measure (see docs/SERVE.md)",
             have ? 100 * median(flat_poller_core, nr) : NAN, have ? median(flat_ratio, nr) : NAN,
             have ? min_of(flat_ratio, nr) : NAN, have ? max_of(flat_ratio, nr) : NAN);
    pf_bench_row(b, "serve", "flash while polled flat out", have ? median(flat_s, nr) : NAN, "s", q, note);
    free(img);
    char cmd[200];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    if (system(cmd) != 0) {
    }
}
