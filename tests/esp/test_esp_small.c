/* The ESP driver built with the small-MCU sizes (as firmware/CMakeLists.txt
 * builds it for Cortex-M0+: PF_ESP_STREAM, 256-byte blocks, frames through
 * 64 bytes, a 512-byte deflate window; tests/esp/CMakeLists.txt compiles
 * src/targets/esp.c into this test with them), on the host under ASan,
 * against the ROM simulator: the job's image comes from a map that holds no
 * bytes (pf_memmap_init_source), as on the microbit, whose card is read
 * again for every access. Checked: a compressed write ends verified and
 * byte for byte in flash; a block damaged on the line is recovered from a
 * fresh start whose bytes are read again from the source (no copy in RAM);
 * plain writes, which need a 1 KiB block buffer, are refused in check_image
 * naming PF_ESP_BLOCK; a write without check_image has no source and says
 * so; the state is small. */
#include "esp_harness.h"
#include "esp_relay.h"
#include "pf_test.h"

#define FLASH_4M (4u << 20)
#define BASE 0x10000u

/* The image source: bytes from memory, counted. */
typedef struct card {
    const uint8_t *img;
    uint32_t len;
    uint64_t bytes_read;
    unsigned reads;
} card;

static int card_read(void *user, uint32_t addr, uint8_t *out, size_t len, size_t expect)
{
    card *c = user;
    (void)expect;
    c->reads++;
    for (size_t i = 0; i < len; i++) {
        uint32_t a = addr + (uint32_t)i;
        if (a >= BASE && a - BASE < c->len) {
            out[i] = c->img[a - BASE];
            c->bytes_read++;
        }
    }
    return PF_OK;
}

typedef struct streamed {
    card c;
    pf_memmap_source src;
    pf_segment segs[4];
    pf_memmap map;
    uint8_t work[512]; /* the microbit's job buffer */
} streamed;

static void streamed_init(streamed *s, const uint8_t *img, uint32_t len)
{
    memset(s, 0, sizeof *s);
    s->c.img = img;
    s->c.len = len;
    s->src.read = card_read;
    s->src.user = &s->c;
    pf_memmap_init_source(&s->map, s->segs, 4, &s->src);
    /* the readers hand the map their record's bytes; a source map keeps only the range */
    REQUIRE(pf_memmap_add(&s->map, BASE, img, len, NULL) == PF_OK);
    REQUIRE(pf_memmap_finish(&s->map, NULL) == PF_OK);
}

static int run_job(esp_host *h, streamed *s, pf_job_result *res)
{
    pf_job_config jc = PF_JOB_CONFIG_DEFAULT();
    jc.verify = 1;
    jc.buf = s->work;
    jc.buf_size = sizeof s->work;
    jc.diag = &h->diag;
    return pf_job_flash(&h->t, &s->map, &jc, res);
}

/* One job through an optional damaging relay; returns the job's result. */
static int job(const char *tag, uint32_t len, int compress, int check, esp_relay *rl, int *matches,
               pf_esp_stats *es, card *cout, char *why, size_t why_size)
{
    esp_simthread st;
    if (esp_sim_start(&st, tag, "esp32", FLASH_4M) != 0)
        return -100;
    char host[128];
    snprintf(host, sizeof host, "%s", st.path);
    if (rl) {
        snprintf(host, sizeof host, "/tmp/pf-esp-%s-host-%d", tag, (int)getpid());
        if (esp_relay_start(rl, host, st.path) != 0) {
            esp_sim_stop(&st);
            return -101;
        }
    }
    uint8_t *img = malloc(len);
    esp_fill(img, len, 15);
    static streamed s;
    streamed_init(&s, img, len);
    esp_host h;
    int r = esp_host_open(&h, host, 0, NULL, compress);
    if (r == 0 && check)
        r = pf_target_esp.check_image(h.self, &s.map);
    if (r == 0) {
        pf_job_result res;
        r = run_job(&h, &s, &res);
    }
    snprintf(why, why_size, "%s", h.diag.text);
    memset(es, 0, sizeof *es);
    if (h.self)
        pf_esp_get_stats(h.self, es);
    *matches = memcmp(pf_sim_esp32_flash(st.sim) + BASE, img, len) == 0;
    *cout = s.c;
    esp_host_close(&h);
    if (rl)
        esp_relay_stop(rl);
    esp_sim_stop(&st);
    free(img);
    return r;
}

static void test_state_is_small(void)
{
    fprintf(stderr, "  esp state with the small sizes: %zu bytes\n", pf_target_esp.ctx_size);
    CHECK(pf_target_esp.ctx_size < 12 * 1024); /* no 32 KiB segment, no 64 KiB window */
}

static void test_streamed_compressed_write(void)
{
    int matches = 0;
    pf_esp_stats es;
    card c;
    char why[PF_DIAG_MAX];
    uint32_t len = 100 * 1024 + 77;
    int r = job("sm-wr", len, 1, 1, NULL, &matches, &es, &c, why, sizeof why);
    fprintf(stderr, "  %u blocks, %lu bytes sent for %lu, source read %llu bytes in %u reads -> %d %s\n", es.blocks,
            (unsigned long)es.sent_bytes, (unsigned long)es.raw_bytes, (unsigned long long)c.bytes_read, c.reads, r,
            r ? why : "ok");
    CHECK_EQ(r, 0);
    CHECK(matches);
    CHECK(es.sent_bytes < es.raw_bytes * 3 / 4); /* half the data compresses well */
    CHECK(es.blocks * 256u >= es.sent_bytes);    /* compressed blocks of 256 bytes at most */
    CHECK_EQ(es.retries, 0);
}

static void test_fresh_start_reads_the_source_again(void)
{
    esp_relay rl;
    memset(&rl, 0, sizeof rl);
    rl.flip_at = 45000; /* inside the data blocks of the second segment */
    int matches = 0;
    pf_esp_stats es;
    card c;
    char why[PF_DIAG_MAX];
    uint32_t len = 100 * 1024 + 77;
    int r = job("sm-crc", len, 1, 1, &rl, &matches, &es, &c, why, sizeof why);
    fprintf(stderr, "  %u flip, %u fresh start(s), source read %llu bytes for a %lu-byte image -> %d %s\n",
            rl.h2d.flips, es.retries, (unsigned long long)c.bytes_read, (unsigned long)len, r, r ? why : "ok");
    CHECK_EQ(rl.h2d.flips, 1);
    CHECK_EQ(r, 0);
    CHECK(matches);
    CHECK_EQ(es.retries, 1);
    /* the job reads the image for the writes and the MD5 verify; the fresh
     * start read part of one segment again */
    CHECK(c.bytes_read > 2u * len);
}

static void test_plain_refused_naming_the_buffer(void)
{
    int matches = 0;
    pf_esp_stats es;
    card c;
    char why[PF_DIAG_MAX];
    int r = job("sm-plain", 8192, 0, 1, NULL, &matches, &es, &c, why, sizeof why);
    CHECK_EQ(r, PF_ERR_UNSUPPORTED);
    CHECK_STR_CONTAINS(why, "block buffer (PF_ESP_BLOCK) has 256 bytes: it must be 1024");
    CHECK_EQ(es.blocks, 0);
}

static void test_write_without_check_image(void)
{
    int matches = 0;
    pf_esp_stats es;
    card c;
    char why[PF_DIAG_MAX];
    int r = job("sm-nochk", 8192, 1, 0, NULL, &matches, &es, &c, why, sizeof why);
    CHECK_EQ(r, PF_ERR_STATE);
    CHECK_STR_CONTAINS(why, "check_image");
    CHECK_EQ(es.blocks, 0);
}

int main(void)
{
    RUN(test_state_is_small);
    RUN(test_streamed_compressed_write);
    RUN(test_fresh_start_reads_the_source_again);
    RUN(test_plain_refused_naming_the_buffer);
    RUN(test_write_without_check_image);
    return pf_test_summary();
}
