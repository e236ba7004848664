/* Test harness for the ESP driver: the ROM simulator in a thread on a pty,
 * an optional in-test byte relay between two ptys that flips bits or cuts
 * the link at chosen byte counts, and a driver session opened on a path. */
#ifndef PEERFLASH_TEST_ESP_HARNESS_H
#define PEERFLASH_TEST_ESP_HARNESS_H

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "esp32.h"
#include "peerflash/peerflash.h"
#include "peerflash/pf_esp.h"
#include "peerflash/pf_posix.h"

typedef struct esp_simthread {
    pf_sim_esp32 *sim;
    pthread_t th;
    volatile sig_atomic_t stop;
    int rc;
    char path[128];
} esp_simthread;

static void *esp_sim_thread_fn(void *arg)
{
    esp_simthread *t = arg;
    t->rc = pf_sim_esp32_run(t->sim, &t->stop);
    return NULL;
}

/* Whether the next simulator resets into its loader when its port is opened
 * (the default, as `peerflash sim esp32`); a test that reopens the port to
 * meet the state it left (a running stub) turns it off. */
static int esp_harness_reset_on_open = 1;
/* The next simulator's program time per KiB (0: instant) and the next
 * host's send-ahead (-1: the driver's default for the chip). */
static uint32_t esp_harness_write_us_per_kb = 0;
static int esp_harness_ahead = -1;
/* The next host's --compress method (PF_ESP_Z_*). */
static int esp_harness_method = PF_ESP_Z_AUTO;

/* Starts a simulator on pty:<path>; returns 0 on success. */
static inline int esp_sim_start(esp_simthread *t, const char *tag, const char *chip, uint32_t flash_size)
{
    memset(t, 0, sizeof *t);
    snprintf(t->path, sizeof t->path, "/tmp/pf-esp-%s-%d", tag, (int)getpid());
    char spec[160];
    snprintf(spec, sizeof spec, "pty:%s", t->path);
    pf_sim_esp32_config cfg = PF_SIM_ESP32_CONFIG_DEFAULT();
    cfg.port = spec;
    cfg.chip = chip;
    cfg.flash_size = flash_size;
    cfg.erase_ms_per_4k = 0; /* timing is the benchmark's business */
    cfg.write_us_per_kb = esp_harness_write_us_per_kb;
    cfg.verbose = getenv("PF_ESP_SIM_VERBOSE") != NULL;
    cfg.reset_on_open = esp_harness_reset_on_open;
    pf_diag d = {0};
    pf_sim_esp32_open(&t->sim, &cfg, &d);
    if (!t->sim) {
        fprintf(stderr, "sim open failed: %s\n", d.text);
        return -1;
    }
    return pthread_create(&t->th, NULL, esp_sim_thread_fn, t);
}

static inline void esp_sim_stop(esp_simthread *t)
{
    if (!t->sim)
        return;
    t->stop = 1;
    pthread_join(t->th, NULL);
    pf_sim_esp32_close(t->sim);
    t->sim = NULL;
}

/* A driver session on a path. */
typedef struct esp_host {
    pf_posix_link link;
    pf_port port;
    pf_diag diag;
    pf_target t;
    void *self;
    int opened;
} esp_host;

static inline int esp_host_open(esp_host *h, const char *path, uint32_t fast_baud, const char *chip, int compress)
{
    memset(h, 0, sizeof *h);
    int r = pf_posix_open(&h->link, path, &h->diag);
    if (r < 0)
        return r;
    h->opened = 1;
    if (getenv("PF_ESP_DRIVER_VERBOSE"))
        h->link.log_level = 3; /* the driver's trace on stderr */
    pf_posix_port(&h->link, &h->port);
    h->self = calloc(1, pf_target_esp.ctx_size);
    pf_target_config cfg = PF_TARGET_CONFIG_DEFAULT();
    cfg.port = &h->port;
    cfg.diag = &h->diag;
    cfg.baud = 115200;
    cfg.fast_baud = fast_baud;
    cfg.chip = chip;
    cfg.reset = "auto";
    cfg.verbose = getenv("PF_ESP_DRIVER_VERBOSE") ? 3 : 0;
    r = pf_target_esp.open(h->self, &cfg);
    if (r < 0)
        return r;
    pf_esp_options o = PF_ESP_OPTIONS_DEFAULT();
    o.compress = compress;
    o.ahead = esp_harness_ahead;
    o.method = esp_harness_method;
    pf_esp_set_options(h->self, &o);
    h->t.ops = &pf_target_esp;
    h->t.self = h->self;
    return pf_target_esp.connect(h->self, &h->t.info);
}

static inline void esp_host_close(esp_host *h)
{
    if (h->self) {
        pf_target_esp.close(h->self);
        free(h->self);
        h->self = NULL;
    }
    if (h->opened)
        pf_posix_close(&h->link);
    h->opened = 0;
}

/* Deterministic test data: half code-like (pseudo-random), half compressible. */
static inline void esp_fill(uint8_t *p, size_t n, uint32_t seed)
{
    uint32_t x = seed * 2654435761u + 1;
    for (size_t i = 0; i < n; i++) {
        if (i < n / 2) {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            p[i] = (uint8_t)x;
        } else {
            p[i] = (uint8_t)((i / 64) % 7 == 0 ? (i & 0xFF) : 0x00);
        }
    }
}

#endif
