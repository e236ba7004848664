/* The ESP ROM loader driver against the ROM simulator, in-process over a pty
 * pair: identification, plain and compressed writes through the flash job,
 * MD5 verify, read back, baud switch, several images, and faults. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>

#include "codec/esp_cmd.h"
#include "codec/slip.h"
#include "esp_harness.h"
#include "peerflash/pf_session.h"
#include "esp_relay.h"
#include "pf_test.h"
#include "wire.h"

#define FLASH_4M (4u << 20)

typedef struct job_buf {
    pf_segment segs[16];
    uint8_t *arena;
    pf_memmap map;
    uint8_t work[2 * 4096];
} job_buf;

static void map_init(job_buf *j, size_t arena)
{
    j->arena = malloc(arena);
    pf_memmap_init(&j->map, j->segs, 16, j->arena, arena);
}

static int run_job(esp_host *h, pf_memmap *map, int verify, pf_job_result *res, uint8_t *work, size_t wn)
{
    pf_job_config jc = PF_JOB_CONFIG_DEFAULT();
    jc.verify = verify;
    jc.buf = work;
    jc.buf_size = wn;
    jc.diag = &h->diag;
    return pf_job_flash(&h->t, map, &jc, res);
}

static void test_identify(void)
{
    static const struct {
        const char *chip, *name;
        uint32_t size;
        uint32_t caps_digest;
    } cases[] = {
        {"esp32", "ESP32", 4u << 20, 1},   {"esp32s3", "ESP32-S3", 8u << 20, 1}, {"esp32c3", "ESP32-C3", 2u << 20, 1},
        {"esp32s2", "ESP32-S2", 4u << 20, 1}, {"esp32c6", "ESP32-C6", 4u << 20, 1}, {"esp32h2", "ESP32-H2", 4u << 20, 1},
        {"esp8266", "ESP8266", 1u << 20, 0},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        esp_simthread st;
        REQUIRE(esp_sim_start(&st, "id", cases[i].chip, cases[i].size) == 0);
        esp_host h;
        int r = esp_host_open(&h, st.path, 0, NULL, 1);
        if (r < 0)
            fprintf(stderr, "  %s: %s\n", cases[i].chip, h.diag.text);
        CHECK_EQ(r, 0);
        CHECK(strcmp(h.t.info.chip, cases[i].name) == 0);
        /* ESP8266 has no SPI data-length registers: its size is not probed */
        CHECK_EQ(h.t.info.geom.flash_size, cases[i].chip[3] == '8' ? 4u << 20 : cases[i].size);
        CHECK_EQ(!!(h.t.info.caps & PF_CAP_DIGEST), cases[i].caps_digest);
        esp_host_close(&h);
        esp_sim_stop(&st);
    }
}

static void write_and_check(int compress, uint32_t fast_baud)
{
    esp_simthread st;
    REQUIRE(esp_sim_start(&st, "wr", "esp32", FLASH_4M) == 0);
    esp_host h;
    int r = esp_host_open(&h, st.path, fast_baud, "esp32", compress);
    if (r < 0)
        fprintf(stderr, "  connect: %s\n", h.diag.text);
    REQUIRE(r == 0);
    job_buf j;
    map_init(&j, 1u << 20);
    /* three images as an ESP32 project has them */
    static uint8_t boot[0x5200], part[0xC00], app[0x31234];
    esp_fill(boot, sizeof boot, 1);
    esp_fill(part, sizeof part, 2);
    esp_fill(app, sizeof app, 3);
    REQUIRE(pf_memmap_add(&j.map, 0x1000, boot, sizeof boot, NULL) == 0);
    REQUIRE(pf_memmap_add(&j.map, 0x8000, part, sizeof part, NULL) == 0);
    REQUIRE(pf_memmap_add(&j.map, 0x10000, app, sizeof app, NULL) == 0);
    REQUIRE(pf_memmap_finish(&j.map, NULL) == 0);
    pf_job_result res;
    r = run_job(&h, &j.map, 1, &res, j.work, sizeof j.work);
    if (r < 0)
        fprintf(stderr, "  job: %s\n", h.diag.text);
    CHECK_EQ(r, 0);
    CHECK_EQ(res.verified, 1);
    CHECK(res.verify_method && strcmp(res.verify_method, "digest MD5") == 0);
    uint8_t *fl = pf_sim_esp32_flash(st.sim);
    CHECK(memcmp(fl + 0x1000, boot, sizeof boot) == 0);
    CHECK(memcmp(fl + 0x8000, part, sizeof part) == 0);
    CHECK(memcmp(fl + 0x10000, app, sizeof app) == 0);
    for (size_t i = 0; i < sizeof app; i++)
        if (fl[0x10000 + i] != app[i]) {
            fprintf(stderr, "  first difference at 0x%zx: 0x%02x vs 0x%02x\n", 0x10000 + i, fl[0x10000 + i], app[i]);
            break;
        }
    CHECK_EQ(fl[0x1000 + sizeof boot], 0xFF);
    CHECK_EQ(fl[0x0FFF], 0xFF);
    pf_esp_stats es;
    pf_esp_get_stats(h.self, &es);
    if (compress)
        CHECK(es.sent_bytes < es.raw_bytes * 3 / 4); /* half the data compresses well */
    else
        CHECK(es.sent_bytes >= es.raw_bytes);
    pf_sim_esp32_stats ss;
    pf_sim_esp32_get_stats(st.sim, &ss);
    if (fast_baud) {
        CHECK_EQ(ss.baud, fast_baud);
        CHECK_EQ(es.baud, fast_baud);
        CHECK_EQ(ss.baud_changes, 1);
    }
    /* read back byte-exact through READ_FLASH_SLOW */
    static uint8_t back[0xC00];
    r = pf_target_esp.read(h.self, 0x8000, back, sizeof back);
    CHECK_EQ(r, (int)sizeof back);
    CHECK(memcmp(back, part, sizeof part) == 0);
    /* a second run of the same job finds everything unchanged */
    r = run_job(&h, &j.map, 1, &res, j.work, sizeof j.work);
    CHECK_EQ(r, 0);
    CHECK_EQ(res.written_bytes, 0);
    CHECK(res.skipped_bytes >= sizeof boot + sizeof part + sizeof app);
    esp_host_close(&h);
    esp_sim_stop(&st);
    free(j.arena);
}

static void test_write_plain(void) { write_and_check(0, 0); }
static void test_write_compressed(void) { write_and_check(1, 0); }
static void test_write_fast_baud(void) { write_and_check(1, 921600); }

static void test_esp8266_plain_readback(void)
{
    esp_simthread st;
    REQUIRE(esp_sim_start(&st, "8266", "esp8266", FLASH_4M) == 0);
    esp_host h;
    REQUIRE(esp_host_open(&h, st.path, 0, NULL, 1) == 0);
    job_buf j;
    map_init(&j, 65536);
    static uint8_t img[3000];
    esp_fill(img, sizeof img, 9);
    REQUIRE(pf_memmap_add(&j.map, 0x0, img, sizeof img, NULL) == 0);
    REQUIRE(pf_memmap_finish(&j.map, NULL) == 0);
    pf_job_result res;
    int r = run_job(&h, &j.map, 1, &res, j.work, sizeof j.work);
    if (r < 0)
        fprintf(stderr, "  job: %s\n", h.diag.text);
    CHECK_EQ(r, 0);
    CHECK(strcmp(res.verify_method, "read-back") == 0);
    CHECK(memcmp(pf_sim_esp32_flash(st.sim), img, sizeof img) == 0);
    esp_host_close(&h);
    esp_sim_stop(&st);
    free(j.arena);
}

static void test_wrong_chip_and_range(void)
{
    esp_simthread st;
    REQUIRE(esp_sim_start(&st, "chip", "esp32", 1u << 20) == 0);
    esp_host h;
    int r = esp_host_open(&h, st.path, 0, "esp32s3", 1);
    CHECK_EQ(r, PF_ERR_CHIP);
    CHECK_STR_CONTAINS(h.diag.text, "ESP32-S3");
    CHECK_STR_CONTAINS(h.diag.text, "ESP32");
    esp_host_close(&h);
    r = esp_host_open(&h, st.path, 0, NULL, 1);
    REQUIRE(r == 0);
    CHECK_EQ(h.t.info.geom.flash_size, 1u << 20);
    job_buf j;
    map_init(&j, 65536);
    static uint8_t img[8192];
    esp_fill(img, sizeof img, 4);
    REQUIRE(pf_memmap_add(&j.map, 0x100000 - 4096, img, sizeof img, NULL) == 0);
    REQUIRE(pf_memmap_finish(&j.map, NULL) == 0);
    pf_job_result res;
    pf_sim_esp32_stats before, after;
    pf_sim_esp32_get_stats(st.sim, &before);
    r = run_job(&h, &j.map, 1, &res, j.work, sizeof j.work);
    CHECK_EQ(r, PF_ERR_RANGE);
    pf_sim_esp32_get_stats(st.sim, &after);
    CHECK_EQ(after.bytes_written, before.bytes_written); /* nothing touched */
    CHECK_EQ(after.sectors_erased, before.sectors_erased);
    /* the driver itself refuses too, should a caller skip the job's check */
    r = pf_target_esp.write_begin(h.self, 0x100000 - 4096, 8192);
    CHECK_EQ(r, PF_ERR_RANGE);
    esp_host_close(&h);
    esp_sim_stop(&st);
    free(j.arena);
}

static void test_md5_mismatch(void)
{
    esp_simthread st;
    REQUIRE(esp_sim_start(&st, "md5", "esp32", FLASH_4M) == 0);
    esp_host h;
    REQUIRE(esp_host_open(&h, st.path, 0, NULL, 1) == 0);
    job_buf j;
    map_init(&j, 65536);
    static uint8_t img[10000];
    esp_fill(img, sizeof img, 5);
    REQUIRE(pf_memmap_add(&j.map, 0x20000, img, sizeof img, NULL) == 0);
    REQUIRE(pf_memmap_finish(&j.map, NULL) == 0);
    pf_job_result res;
    REQUIRE(run_job(&h, &j.map, 1, &res, j.work, sizeof j.work) == 0);
    /* a bit goes bad in the flash after writing */
    pf_sim_esp32_flash(st.sim)[0x20000 + 7777] ^= 0x10;
    pf_job_config jc = PF_JOB_CONFIG_DEFAULT();
    jc.buf = j.work;
    jc.buf_size = sizeof j.work;
    jc.diag = &h.diag;
    int r = pf_job_verify(&h.t, &j.map, &jc, &res);
    CHECK_EQ(r, PF_ERR_VERIFY);
    /* the read-back names the byte */
    CHECK_EQ(res.mismatch_addr, 0x20000 + 7777);
    CHECK_STR_CONTAINS(h.diag.text, "0x00021e61");
    esp_host_close(&h);
    esp_sim_stop(&st);
    free(j.arena);
}

static void test_no_sync(void)
{
    /* a pty nobody answers on */
    pf_posix_link quiet;
    char spec[128], path[100];
    snprintf(path, sizeof path, "/tmp/pf-esp-quiet-%d", (int)getpid());
    snprintf(spec, sizeof spec, "pty:%s", path);
    REQUIRE(pf_posix_open(&quiet, spec, NULL) == 0);
    esp_host h;
    int r = esp_host_open(&h, path, 0, NULL, 1);
    CHECK_EQ(r, PF_ERR_NO_SYNC);
    CHECK_STR_CONTAINS(h.diag.text, "BOOT");
    CHECK_STR_CONTAINS(h.diag.text, "wiring");
    CHECK_STR_CONTAINS(h.diag.text, "baud");
    esp_host_close(&h);
    pf_posix_close(&quiet);
}

static pf_sim_esp32_stats relay_sim_stats; /* the simulator's counters after relay_job */
static pf_esp_stats relay_drv_stats;     /* the driver's */

/* A flash job of `len` bytes at 0x10000 through the relay; returns the job's result. */
static int relay_job(esp_relay *rl, const char *tag, uint32_t len, uint32_t fast_baud, int compress, uint32_t seed,
                     int *matches, char *why, size_t why_size, double *secs)
{
    esp_simthread st;
    if (esp_sim_start(&st, tag, "esp32", FLASH_4M) != 0)
        return -100;
    char host[128];
    snprintf(host, sizeof host, "/tmp/pf-esp-%s-host-%d", tag, (int)getpid());
    if (esp_relay_start(rl, host, st.path) != 0) {
        esp_sim_stop(&st);
        return -101;
    }
    uint8_t *img = malloc(len);
    esp_fill(img, len, seed);
    esp_host h;
    uint64_t t0 = esp_relay_now_us();
    int r = esp_host_open(&h, host, fast_baud, NULL, compress);
    job_buf j;
    map_init(&j, len + 4096);
    if (r == 0) {
        pf_memmap_add(&j.map, 0x10000, img, len, NULL);
        pf_memmap_finish(&j.map, NULL);
        pf_job_result res;
        r = run_job(&h, &j.map, 1, &res, j.work, sizeof j.work);
    }
    if (secs)
        *secs = (double)(esp_relay_now_us() - t0) / 1e6;
    snprintf(why, why_size, "%s", h.diag.text);
    if (h.self) {
        pf_esp_stats es;
        pf_esp_get_stats(h.self, &es);
        rl->seed = es.retries; /* handed back to the caller */
        relay_drv_stats = es;
    }
    *matches = memcmp(pf_sim_esp32_flash(st.sim) + 0x10000, img, len) == 0;
    pf_sim_esp32_get_stats(st.sim, &relay_sim_stats);
    esp_host_close(&h);
    esp_relay_stop(rl);
    esp_sim_stop(&st);
    free(j.arena);
    free(img);
    return r;
}

static void test_link_cut(void)
{
    esp_relay rl;
    memset(&rl, 0, sizeof rl);
    rl.cut_after = 30000; /* in the middle of the data blocks */
    int matches = 0;
    char why[PF_DIAG_MAX];
    int r = relay_job(&rl, "cut", 120000, 0, 0, 21, &matches, why, sizeof why, NULL);
    fprintf(stderr, "  cut after %llu bytes: %d %s\n", (unsigned long long)rl.cut_after, r, why);
    CHECK(r == PF_ERR_CLOSED || r == PF_ERR_TIMEOUT || r == PF_ERR_IO);
    CHECK(why[0] != '\0');
    CHECK(!matches);
}

static void test_bit_flips(void)
{
    /* Flips on both directions, several seeds: every run either fails with
     * an explanation or leaves exactly the image in flash. */
    int errors = 0, successes = 0;
    uint32_t flips = 0, retries = 0;
    for (uint32_t seed = 1; seed <= 6; seed++) {
        esp_relay rl;
        memset(&rl, 0, sizeof rl);
        rl.flip_rate = 4e-5;
        rl.seed = seed;
        int matches = 0;
        char why[PF_DIAG_MAX];
        int r = relay_job(&rl, "flip", 60000, 0, seed & 1, seed, &matches, why, sizeof why, NULL);
        flips += rl.h2d.flips + rl.d2h.flips;
        retries += rl.seed;
        fprintf(stderr, "  seed %u: %u+%u flips, %u block(s) resent -> %d %s\n", seed, rl.h2d.flips, rl.d2h.flips,
                rl.seed, r, r ? why : "ok");
        if (r == 0) {
            CHECK(matches); /* never a silent success */
            successes++;
        } else {
            CHECK(why[0] != '\0');
            errors++;
        }
    }
    CHECK(flips > 0);
    CHECK(errors + retries > 0); /* the flips were noticed, not absorbed */
    (void)successes;
}

/* Writes a seeded image of len bytes at 0x20000 into a fresh simulated
 * ESP32 whose flash holds 0x00 around the image's sectors (64 KiB after them,
 * and the sector before when guard_before), and checks that it lands whole,
 * verified, and that nothing around it was written. The driver's stats go to
 * *es when given. */
static void land_image(const char *tag, uint32_t len, int compress, int guard_before, pf_esp_stats *es)
{
    uint32_t at = 0x20000;
    uint32_t end = (at + len + 4095u) / 4096u * 4096u;
    esp_simthread st;
    REQUIRE(esp_sim_start(&st, tag, "esp32", FLASH_4M) == 0);
    uint8_t *fl = pf_sim_esp32_flash(st.sim);
    memset(fl + end, 0x00, 0x10000); /* what lies past the image: any write shows */
    if (guard_before)
        memset(fl + at - 0x1000, 0x00, 0x1000);
    esp_host h;
    REQUIRE(esp_host_open(&h, st.path, 0, NULL, compress) == 0);
    job_buf j;
    map_init(&j, len + 4096);
    uint8_t *img = malloc(len);
    esp_fill(img, len, len);
    REQUIRE(pf_memmap_add(&j.map, at, img, len, NULL) == 0);
    REQUIRE(pf_memmap_finish(&j.map, NULL) == 0);
    pf_job_result res;
    int r = run_job(&h, &j.map, 1, &res, j.work, sizeof j.work);
    if (r < 0)
        fprintf(stderr, "  %s, %u bytes%s: %s\n", tag, len, compress ? " compressed" : "", h.diag.text);
    CHECK_EQ(r, 0);
    CHECK_EQ(res.verified, 1);
    CHECK(memcmp(fl + at, img, len) == 0);
    int untouched = 1;
    for (uint32_t k = 0; k < 0x10000; k++)
        untouched &= fl[end + k] == 0x00;
    for (uint32_t k = 0; guard_before && k < 0x1000; k++)
        untouched &= fl[at - 0x1000 + k] == 0x00;
    CHECK(untouched);
    if (es)
        pf_esp_get_stats(h.self, es);
    esp_host_close(&h);
    esp_sim_stop(&st);
    free(j.arena);
    free(img);
}

/* Image sizes that are not multiples of the ROM's 32 KiB inflate buffer land
 * whole, and the bytes past the image's sectors stay as they were (the
 * strict simulator writes the buffer only when full or at the last
 * announced block, stale bytes included, as the real ROM does). */
static void test_odd_sizes(void)
{
    static const uint32_t sizes[] = {40 * 1024, 60 * 1024, 100 * 1024, 100 * 1024 + 123, 64 * 1024, 4096};
    for (int compress = 1; compress >= 0; compress--)
        for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++)
            land_image("odd", sizes[i], compress, 1, NULL);
}

/* An image that starts inside a sector: the ROM refuses an unaligned BEGIN
 * (01 06), so the write starts at the sector (whose head the ROM erases
 * anyway) and verifies. */
static void test_unaligned_start(void)
{
    esp_simthread st;
    REQUIRE(esp_sim_start(&st, "unal", "esp32", FLASH_4M) == 0);
    esp_host h;
    REQUIRE(esp_host_open(&h, st.path, 0, NULL, 1) == 0);
    job_buf j;
    map_init(&j, 65536);
    static uint8_t img[5000];
    esp_fill(img, sizeof img, 11);
    REQUIRE(pf_memmap_add(&j.map, 0x10010, img, sizeof img, NULL) == 0);
    REQUIRE(pf_memmap_finish(&j.map, NULL) == 0);
    pf_job_result res;
    int r = run_job(&h, &j.map, 1, &res, j.work, sizeof j.work);
    if (r < 0)
        fprintf(stderr, "  job: %s\n", h.diag.text);
    CHECK_EQ(r, 0);
    CHECK(memcmp(pf_sim_esp32_flash(st.sim) + 0x10010, img, sizeof img) == 0);
    esp_host_close(&h);
    esp_sim_stop(&st);
    free(j.arena);
}

/* One data block damaged on the line (a bit of its payload flipped): the
 * ROM answers 01 07 and then wants the next sequence number, so the driver
 * starts that segment again with a new BEGIN; the image lands and verifies. */
static void test_checksum_error_recovered(void)
{
    for (int compress = 1; compress >= 0; compress--) {
        esp_relay rl;
        memset(&rl, 0, sizeof rl);
        rl.flip_at = 45000; /* inside the data blocks of the second segment */
        int matches = 0;
        char why[PF_DIAG_MAX];
        int r = relay_job(&rl, "crc", 100 * 1024 + 77, 0, compress, 5, &matches, why, sizeof why, NULL);
        fprintf(stderr, "  %s: %u flip, %u bad checksum(s) at the ROM, %u fresh start(s) -> %d %s\n",
                compress ? "compressed" : "plain", rl.h2d.flips, relay_sim_stats.bad_checksums, rl.seed, r,
                r ? why : "ok");
        CHECK_EQ(rl.h2d.flips, 1);
        /* the damaged block, and the one sent ahead of its answer (spoiled on purpose) */
        CHECK(relay_drv_stats.spoiled <= 1);
        CHECK_EQ(relay_sim_stats.bad_checksums, 1 + relay_drv_stats.spoiled);
        CHECK_EQ(r, 0);
        CHECK(matches);
        CHECK_EQ(rl.seed, 1); /* one fresh start */
        if (!compress) /* only the damaged block's sector again: at most 3 blocks before it */
            CHECK(relay_drv_stats.blocks >= 104 && relay_drv_stats.blocks <= 104 + 3);
    }
}

/* --compress: the option is the driver's (its table and set_option, not the
 * CLI's); best (zopfli, when built in) writes odd-sized images exactly
 * through the strict simulator, verifies by MD5, recovers from a damaged
 * block (the segment is compressed again without a window for the fresh
 * start) and sends fewer bytes than fast. */
static void test_compress_option(void)
{
    const pf_target_option *o = pf_target_option_find(&pf_target_esp, "compress", 8);
    REQUIRE(o != NULL);
    CHECK(o->arg && strcmp(o->arg, "fast|best|auto") == 0);
    CHECK(o->commands & PF_CMD_FLASH);
    void *self = calloc(1, pf_target_esp.ctx_size);
    pf_diag d = {0};
    pf_port p = {0};
    pf_target_config cfg = PF_TARGET_CONFIG_DEFAULT();
    cfg.port = &p;
    cfg.diag = &d;
    p.read = (int (*)(void *, uint8_t *, size_t, uint32_t))1; /* open() only checks they are there */
    p.write = (int (*)(void *, const uint8_t *, size_t))1;
    p.now_ms = (uint32_t (*)(void *))1;
    REQUIRE(pf_target_esp.open(self, &cfg) == PF_OK);
    CHECK_EQ(pf_target_esp.set_option(self, "compress", "fast"), PF_OK);
    CHECK_EQ(pf_target_esp.set_option(self, "compress", "auto"), PF_OK);
    CHECK_EQ(pf_target_esp.set_option(self, "compress", "fastest"), PF_ERR_ARG);
    CHECK_STR_CONTAINS(d.text, "--compress takes fast, best or auto, not 'fastest'");
    int best = pf_target_esp.set_option(self, "compress", "best");
#if PF_TEST_HAVE_ZOPFLI
    CHECK_EQ(best, PF_OK);
#else
    CHECK_EQ(best, PF_ERR_UNSUPPORTED);
    CHECK_STR_CONTAINS(d.text, "built without it");
#endif
    free(self);
}

static void test_compress_best(void)
{
#if !PF_TEST_HAVE_ZOPFLI
    fprintf(stderr, "  built without zopfli: nothing to write with best\n");
    return;
#else
    static const uint32_t sizes[] = {40 * 1024, 100 * 1024 + 123};
    uint32_t sent[2][2];
    for (int m = 0; m < 2; m++)
        for (size_t i = 0; i < 2; i++) {
            esp_harness_method = m ? PF_ESP_Z_BEST : PF_ESP_Z_FAST;
            pf_esp_stats es;
            land_image(m ? "best" : "fast", sizes[i], 1, 0, &es);
            sent[m][i] = es.sent_bytes;
            fprintf(stderr, "  %u bytes %s: %u sent, %u segments by zlib, %u by zopfli\n", sizes[i],
                    m ? "best" : "fast", es.sent_bytes, es.zsegs_fast, es.zsegs_best);
            CHECK_EQ(m ? es.zsegs_fast : es.zsegs_best, 0);
            CHECK(m ? es.zsegs_best > 0 : es.zsegs_fast > 0);
        }
    for (size_t i = 0; i < 2; i++)
        CHECK(sent[1][i] < sent[0][i]);
    /* a damaged block of the second segment: a fresh start there */
    esp_harness_method = PF_ESP_Z_BEST;
    esp_relay rl;
    memset(&rl, 0, sizeof rl);
    rl.flip_at = 45000;
    int matches = 0;
    char why[PF_DIAG_MAX];
    int r = relay_job(&rl, "bestcrc", 100 * 1024 + 77, 0, 1, 5, &matches, why, sizeof why, NULL);
    fprintf(stderr, "  best, 1 flip: %u fresh start(s) -> %d %s\n", rl.seed, r, r ? why : "ok");
    CHECK_EQ(r, 0);
    CHECK(matches);
    CHECK_EQ(rl.seed, 1);
    esp_harness_method = PF_ESP_Z_AUTO;
#endif
}

/* The job's check finds the target range erased: the run's BEGIN erases only
 * its first sector (the rest is erased already; the ROM writes past a
 * BEGIN's erase size); where the range holds old data, the BEGIN erases all
 * of it and the image lands over it. */
static void test_known_erased_skips_erase(void)
{
    for (int old = 0; old <= 1; old++) {
        esp_simthread st;
        REQUIRE(esp_sim_start(&st, "kerase", "esp32", FLASH_4M) == 0);
        uint8_t *fl = pf_sim_esp32_flash(st.sim);
        uint32_t at = 0x20000, len = 200 * 1024 + 5;
        if (old)
            memset(fl + at, 0x00, len); /* old data: every bit must be erased back */
        esp_host h;
        REQUIRE(esp_host_open(&h, st.path, 0, NULL, 1) == 0);
        job_buf j;
        map_init(&j, len + 4096);
        uint8_t *img = malloc(len);
        esp_fill(img, len, 5);
        REQUIRE(pf_memmap_add(&j.map, at, img, len, NULL) == 0);
        REQUIRE(pf_memmap_finish(&j.map, NULL) == 0);
        pf_job_result res;
        int r = run_job(&h, &j.map, 1, &res, j.work, sizeof j.work);
        CHECK_EQ(r, 0);
        CHECK(memcmp(fl + at, img, len) == 0);
        pf_sim_esp32_stats ss;
        pf_sim_esp32_get_stats(st.sim, &ss);
        pf_esp_stats es;
        pf_esp_get_stats(h.self, &es);
        fprintf(stderr, "  %s: %u sectors erased, %u bytes not erased again\n", old ? "old data" : "erased",
                ss.sectors_erased, es.erase_skipped);
        if (old) {
            CHECK(ss.sectors_erased >= len / 4096); /* the whole range (the sim counts per BEGIN) */
            CHECK_EQ(es.erase_skipped, 0);
        } else {
            CHECK_EQ(ss.sectors_erased, 1);
            CHECK(es.erase_skipped > 0);
        }
        /* a changed image over the same range: the range is no longer known
         * erased, so the changed sectors are erased before they are written */
        uint8_t *md = (uint8_t *)j.map.segs[0].data;
        for (uint32_t k = 0; k < len; k += 1000)
            md[k] ^= 0x5A;
        r = run_job(&h, &j.map, 1, &res, j.work, sizeof j.work);
        CHECK_EQ(r, 0);
        CHECK(memcmp(fl + at, md, len) == 0);
        esp_host_close(&h);
        esp_sim_stop(&st);
        free(j.arena);
        free(img);
    }
}

/* A scripted ROM on a pty: answers SYNC 8 times, then answers the next
 * command with the given status bytes (a reply damaged on the line). */
typedef struct fake_rom {
    pf_posix_link link;
    pf_port port;
    uint8_t status[4];
    volatile int stop;
    pthread_t th;
    char path[100];
} fake_rom;

static void *fake_rom_run(void *arg)
{
    fake_rom *f = arg;
    static uint8_t rx[2048], tx[256];
    pf_slip_decoder dec;
    pf_slip_decoder_init(&dec, rx, sizeof rx);
    int synced = 0;
    while (!f->stop) {
        uint8_t b;
        if (f->port.read(f->port.ctx, &b, 1, 20) != 1 || pf_slip_feed(&dec, b) != PF_SLIP_FRAME)
            continue;
        pf_esp_packet p;
        if (pf_esp_packet_parse(dec.buf, dec.len, &p) != 0 || p.dir != 0)
            continue;
        static const uint8_t ok[4] = {0, 0, 0, 0};
        int n = p.op == PF_ESP_SYNC ? 8 : 1;
        for (int i = 0; i < n; i++) {
            size_t len = pf_esp_response_frame(p.op, 0x11, NULL, 0, p.op == PF_ESP_SYNC || !synced ? ok : f->status, 4,
                                               tx, sizeof tx);
            pf_port_write_all(&f->port, tx, len);
        }
        if (p.op == PF_ESP_SYNC)
            synced = 1;
    }
    return NULL;
}

/* The exit cause of a damaged answer is the link (4), never "target
 * refused" (5): a status byte the ROM never sends, and 01 07 (the ROM saw a
 * bad checksum), each on the first command after sync. */
static void test_damaged_answer_is_link_fault(void)
{
    static const struct {
        uint8_t status[4];
        int err;
        const char *says;
    } cases[] = {
        {{0x41, 0x07, 0, 0}, PF_ERR_PROTOCOL, "garbled answer from the ESP ROM"},
        {{0x01, 0x07, 0, 0}, PF_ERR_CRC, "status 01 07"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        fake_rom f;
        memset(&f, 0, sizeof f);
        snprintf(f.path, sizeof f.path, "/tmp/pf-esp-fake-%d", (int)getpid());
        char spec[128];
        snprintf(spec, sizeof spec, "pty:%s", f.path);
        REQUIRE(pf_posix_open(&f.link, spec, NULL) == 0);
        pf_posix_port(&f.link, &f.port);
        memcpy(f.status, cases[i].status, 4);
        pthread_create(&f.th, NULL, fake_rom_run, &f);
        esp_host h;
        int r = esp_host_open(&h, f.path, 0, NULL, 1);
        fprintf(stderr, "  status %02x %02x -> %d %s\n", cases[i].status[0], cases[i].status[1], r, h.diag.text);
        CHECK_EQ(r, cases[i].err);
        CHECK_STR_CONTAINS(h.diag.text, cases[i].says);
        esp_host_close(&h);
        f.stop = 1;
        pthread_join(f.th, NULL);
        pf_posix_close(&f.link);
    }
}

/* A line that damages every block: the driver gives up after its bounded
 * fresh starts with exit cause link (PF_ERR_CRC or a timeout), and the whole
 * message (the ROM's status, the block, the flash range) fits. */
static void test_gives_up_on_a_bad_line(void)
{
    esp_relay rl;
    memset(&rl, 0, sizeof rl);
    rl.flip_rate = 2e-3;
    rl.flip_host_only = 1;
    rl.seed = 3;
    int matches = 0;
    char why[PF_DIAG_MAX];
    int r = relay_job(&rl, "bad", 20000, 0, 1, 9, &matches, why, sizeof why, NULL);
    fprintf(stderr, "  %u flips -> %d %s\n", rl.h2d.flips, r, why);
    CHECK(r == PF_ERR_CRC || r == PF_ERR_TIMEOUT);
    /* not cut short; which of the two depends on what the last damaged
     * block's flip hit (a frame's end mark lost: no answer) */
    CHECK(strstr(why, "(lower --baud?)") != NULL || strstr(why, "(link lost? check the cable and power)") != NULL);
    CHECK_STR_CONTAINS(why, "also after 8 fresh starts");
    CHECK_STR_CONTAINS(why, " for flash 0x0001");
    CHECK(!matches);
}

/* A noisy line: one bit flipped every 5000 bytes, so every compressed
 * segment (some 17 KB on the line) is damaged on every attempt. A segment
 * that failed three times goes plain, where a damaged block costs only its
 * sector, so the image still lands. (The ROM's 8-bit checksum sees every
 * single flip.) */
/* Send-ahead within the UART FIFO: while the ROM programs a block (2 ms per
 * KiB here) the next block's first bytes wait in its 128-byte RX FIFO. Up to
 * 128 bytes ahead nothing is lost and nothing is sent twice; a host that
 * sends more ahead loses the excess in the simulator as on silicon: the
 * block is refused and its segment starts again (and the driver stops
 * sending ahead for the rest of the run). */
static void test_send_ahead_fifo(void)
{
    static const struct {
        int ahead;
        int too_eager;
    } cases[] = {{-1, 0}, {96, 0}, {160, 1}, {400, 1}};
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        for (int compress = 0; compress < 2; compress++) {
            esp_harness_write_us_per_kb = 2000;
            esp_harness_ahead = cases[i].ahead;
            esp_relay rl;
            memset(&rl, 0, sizeof rl);
            int matches = 0;
            char why[PF_DIAG_MAX];
            int r = relay_job(&rl, "ahead", 40 * 1024 + 99, 0, compress, 9, &matches, why, sizeof why, NULL);
            esp_harness_write_us_per_kb = 0;
            esp_harness_ahead = -1;
            fprintf(stderr, "  ahead %d %s: %u bytes lost in the FIFO, %u fresh start(s), %u bad frame(s) -> %d %s\n",
                    cases[i].ahead, compress ? "compressed" : "plain", relay_sim_stats.rx_lost, rl.seed,
                    relay_sim_stats.bad_frames, r, r ? why : "ok");
            if (cases[i].too_eager) {
                CHECK(relay_sim_stats.rx_lost > 0);
                CHECK(rl.seed > 0); /* the damaged block was noticed */
            } else {
                CHECK_EQ(relay_sim_stats.rx_lost, 0);
                CHECK_EQ(rl.seed, 0);
                CHECK_EQ(relay_drv_stats.spoiled, 0);
            }
            CHECK(r != 0 || matches); /* never a silent success */
        }
}

static void test_noisy_line_makes_progress(void)
{
    esp_relay rl;
    memset(&rl, 0, sizeof rl);
    rl.flip_at = 3000;
    rl.flip_every = 5000;
    int matches = 0;
    char why[PF_DIAG_MAX];
    int r = relay_job(&rl, "noisy", 200 * 1024, 0, 1, 12, &matches, why, sizeof why, NULL);
    fprintf(stderr, "  %u flips, %u fresh starts, %u bad checksums at the ROM -> %d %s\n", rl.h2d.flips, rl.seed,
            relay_sim_stats.bad_checksums, r, r ? why : "ok");
    CHECK(rl.h2d.flips > 20);
    CHECK_EQ(r, 0);
    CHECK(matches);
}

static void test_rate_follows_baud(void)
{
    /* With the line rate modelled, a switch to 921600 after sync makes the
     * job finish well inside the time the same bytes need at 115200. */
    esp_relay rl;
    memset(&rl, 0, sizeof rl);
    rl.rate_model = 1;
    int matches = 0;
    char why[PF_DIAG_MAX];
    double secs = 0;
    int r = relay_job(&rl, "rate", 64000, 921600, 0, 33, &matches, why, sizeof why, &secs);
    double at_115200 = (double)rl.h2d.bytes * 10 / 115200;
    fprintf(stderr, "  %llu bytes to the chip in %.2f s (%.2f s at 115200): %s\n", (unsigned long long)rl.h2d.bytes,
            secs, at_115200, r ? why : "ok");
    CHECK_EQ(r, 0);
    CHECK(matches);
    CHECK(secs < at_115200 * 0.6);
}

/* Fast by default (no --baud): the driver climbs down 921600, 460800, 230400
 * after sync and keeps the first rung at which the ROM still answers. Over a
 * link that loses the chip's bytes above max_baud (device->host only: the
 * host's CHANGE_BAUDRATE back still reaches the ROM), each rung above it is
 * left for the connect rate, and the job verifies at the rung that works. */
static void ladder_over_ceiling(uint32_t max_baud, uint32_t want_baud, uint32_t want_fallbacks)
{
    esp_relay rl;
    memset(&rl, 0, sizeof rl);
    rl.max_baud = max_baud;
    rl.max_dirs = 2;
    int matches = 0;
    char why[PF_DIAG_MAX];
    double secs = 0;
    int r = relay_job(&rl, "ladder", 40000, 0, 1, 44, &matches, why, sizeof why, &secs);
    fprintf(stderr, "  link carries up to %lu: ended at %lu baud after %u fallback(s), %.2f s: %s\n",
            (unsigned long)max_baud, (unsigned long)relay_drv_stats.baud, relay_drv_stats.rate_fallbacks, secs,
            r ? why : "ok");
    CHECK_EQ(r, 0);
    CHECK(matches);
    CHECK_EQ(relay_drv_stats.baud, want_baud);
    CHECK_EQ(relay_sim_stats.baud, want_baud);
    CHECK_EQ(relay_drv_stats.rate_fallbacks, want_fallbacks);
    CHECK(secs < 20.0); /* each failed rung costs about a second, never a hang */
}

static void test_ladder_top_rung(void) { ladder_over_ceiling(0, 921600, 0); }
static void test_ladder_falls_to_230400(void) { ladder_over_ceiling(230400, 230400, 2); }
static void test_ladder_falls_to_connect_rate(void) { ladder_over_ceiling(115200, 115200, 3); }

/* A link that carries nothing above 115200 either way and has no DTR/RTS to
 * reset the chip (a pty): the ROM stays at the rate it was given and cannot
 * be reached; the driver says so, with the way out, in bounded time. */
static void test_ladder_dead_link_fails_cleanly(void)
{
    esp_relay rl;
    memset(&rl, 0, sizeof rl);
    rl.max_baud = 115200;
    rl.max_dirs = 3;
    int matches = 0;
    char why[PF_DIAG_MAX];
    double secs = 0;
    int r = relay_job(&rl, "deadrate", 4096, 0, 1, 45, &matches, why, sizeof why, &secs);
    fprintf(stderr, "  -> %d in %.2f s: %s\n", r, secs, why);
    CHECK_EQ(r, PF_ERR_NO_SYNC);
    CHECK(strstr(why, "921600") != NULL && strstr(why, "--baud 115200") != NULL);
    CHECK(secs < 20.0);
}

/* --baud pins the rate: no ladder, exactly the rate asked for. */
static void test_baud_pins_rate(void)
{
    esp_relay rl;
    memset(&rl, 0, sizeof rl);
    int matches = 0;
    char why[PF_DIAG_MAX];
    int r = relay_job(&rl, "pin", 20000, 460800, 1, 46, &matches, why, sizeof why, NULL);
    CHECK_EQ(r, 0);
    CHECK(matches);
    CHECK_EQ(relay_drv_stats.baud, 460800);
    CHECK_EQ(relay_sim_stats.baud, 460800);
    CHECK_EQ(relay_sim_stats.baud_changes, 1);
    CHECK_EQ(relay_drv_stats.rate_fallbacks, 0);
}

/* A TCP bridge has no rate the host can change: the ladder is not tried
 * (the chip would switch and the bridge's far UART would not). Through the
 * link emulator in follow mode, the TCP side stays at 115200 and the chip's
 * side garbles if the chip ever switches. */
static void test_tcp_bridge_keeps_connect_rate(void)
{
    esp_simthread st;
    REQUIRE(esp_sim_start(&st, "tcpb", "esp32", FLASH_4M) == 0);
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a;
    memset(&a, 0, sizeof a);
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t al = sizeof a;
    REQUIRE(fd >= 0 && bind(fd, (struct sockaddr *)&a, sizeof a) == 0 &&
            getsockname(fd, (struct sockaddr *)&a, &al) == 0);
    int port = ntohs(a.sin_port);
    close(fd);
    char listen_spec[64], host[64];
    snprintf(listen_spec, sizeof listen_spec, "tcp-listen://%d", port);
    snprintf(host, sizeof host, "tcp://127.0.0.1:%d", port);
    pf_wire_config wc = PF_WIRE_CONFIG_DEFAULT();
    wc.a = listen_spec;
    wc.b = st.path;
    wc.follow = 1;
    wc.baud = 115200; /* the TCP side's rate */
    pf_wire *w = NULL;
    pf_diag wd = {0};
    REQUIRE(pf_wire_open(&w, &wc, &wd) == 0 && pf_wire_start(w) == 0);
    esp_host h;
    int r = esp_host_open(&h, host, 0, NULL, 1);
    if (r < 0)
        fprintf(stderr, "  connect: %s\n", h.diag.text);
    CHECK_EQ(r, 0);
    if (r == 0) {
        uint8_t img[8192];
        esp_fill(img, sizeof img, 47);
        job_buf j;
        map_init(&j, sizeof img + 4096);
        pf_memmap_add(&j.map, 0x10000, img, sizeof img, NULL);
        pf_memmap_finish(&j.map, NULL);
        pf_job_result res;
        r = run_job(&h, &j.map, 1, &res, j.work, sizeof j.work);
        CHECK_EQ(r, 0);
        CHECK_EQ(res.verified, 1);
        pf_esp_stats es;
        pf_esp_get_stats(h.self, &es);
        CHECK_EQ(es.baud, 115200);
        free(j.arena);
    }
    pf_sim_esp32_stats ss;
    pf_sim_esp32_get_stats(st.sim, &ss);
    CHECK_EQ(ss.baud_changes, 0);
    esp_host_close(&h);
    pf_wire_close(w);
    esp_sim_stop(&st);
}

int main(void)
{
    signal(SIGPIPE, SIG_IGN);
    RUN(test_identify);
    RUN(test_write_plain);
    RUN(test_write_compressed);
    RUN(test_write_fast_baud);
    RUN(test_esp8266_plain_readback);
    RUN(test_wrong_chip_and_range);
    RUN(test_md5_mismatch);
    RUN(test_no_sync);
    RUN(test_odd_sizes);
    RUN(test_unaligned_start);
    RUN(test_checksum_error_recovered);
    RUN(test_compress_option);
    RUN(test_compress_best);
    RUN(test_known_erased_skips_erase);
    RUN(test_damaged_answer_is_link_fault);
    RUN(test_gives_up_on_a_bad_line);
    RUN(test_send_ahead_fifo);
    RUN(test_noisy_line_makes_progress);
    RUN(test_link_cut);
    RUN(test_bit_flips);
    RUN(test_rate_follows_baud);
    RUN(test_ladder_top_rung);
    RUN(test_ladder_falls_to_230400);
    RUN(test_ladder_falls_to_connect_rate);
    RUN(test_ladder_dead_link_fails_cleanly);
    RUN(test_baud_pins_rate);
    RUN(test_tcp_bridge_keeps_connect_rate);
    return pf_test_summary();
}
