/* The agent over a real pty link: host driver <-> simulated device (agent +
 * bootloader over simulated NOR flash, in a thread), with a fault-injecting
 * port on the host side (bit flips, dropped bytes, a cut link, from a seed).
 * Proves: the transfer completes or fails cleanly, a corrupt image is never
 * accepted, a transfer cut at 50% resumes and sends only the rest, the new
 * image runs on trial and is confirmed, and the agent refuses bad images. */
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "agent_fixture.h"
#include "agent_sim.h"
#include "peerflash/pf_agent_host.h"
#include "peerflash/pf_posix.h"
#include "peerflash/pf_target.h"
#include "fault_port.h"
#include "pf_test.h"

/* ---- the device in a thread ------------------------------------------------ */
static pf_sim_agent *sim;
static volatile sig_atomic_t sim_stop;
static char dir[64], dev[96], keyfile[96], logfile[96];

static void *sim_thread(void *arg)
{
    (void)arg;
    if (sim)
        pf_sim_agent_run(sim, &sim_stop);
    return NULL;
}

static fx F; /* for the key and images */

typedef struct host {
    pf_posix_link link;
    pf_port port;
    fault_port fault;
    const pf_target_ops *ops;
    void *self;
    pf_diag diag;
    pf_target_info info;
} host;

static int host_deflate = 1; /* the driver's default: deflate when the agent offers it */

static int host_open(host *h, uint32_t seed, uint32_t flip_ppm, uint32_t drop_ppm, uint64_t cut_after)
{
    memset(&h->diag, 0, sizeof h->diag);
    int r = pf_posix_open(&h->link, dev, &h->diag);
    if (r < 0)
        return r;
    pf_posix_port(&h->link, &h->port);
    h->link.log_level = getenv("PF_TEST_LOG") ? 3 : -1;
    fault_port_init(&h->fault, &h->port, seed * 2654435761u + 1);
    h->fault.flip_ppm = flip_ppm;
    h->fault.drop_ppm = drop_ppm;
    h->fault.cut_after = cut_after ? (int64_t)cut_after : -1;
    h->fault.flush_quiet_ms = 20; /* bytes of a retransmission may still be on their way */
    h->ops = pf_target_find("agent");
    if (!h->ops)
        return PF_ERR_UNSUPPORTED;
    h->self = calloc(1, h->ops->ctx_size);
    pf_target_config c = PF_TARGET_CONFIG_DEFAULT();
    c.port = &h->fault.port;
    c.diag = &h->diag;
    c.baud = 921600; /* retransmission timer sized for this rate */
    if ((r = h->ops->open(h->self, &c)) < 0)
        return r;
    pf_agent_host_options ho = PF_AGENT_HOST_OPTIONS_DEFAULT();
    ho.deflate = host_deflate;
    if ((r = pf_agent_host_set_options(h->self, &ho)) < 0)
        return r;
    return h->ops->connect(h->self, &h->info);
}

static void host_close(host *h)
{
    if (h->self) {
        h->ops->close(h->self);
        free(h->self);
        h->self = NULL;
    }
    pf_posix_close(&h->link);
}

static int host_flash(host *h, const fx_image *im)
{
    int r = h->ops->write_begin(h->self, 0, (uint32_t)im->len);
    if (r >= 0)
        r = h->ops->write(h->self, 0, im->data, (uint32_t)im->len);
    if (r >= 0)
        r = h->ops->write_end(h->self);
    return r;
}

/* The device's running image version after a reset (major number). */
static int running_major(host *h)
{
    const char *p = strstr(h->info.bootloader, "image ");
    return p ? atoi(p + 6) : -1;
}

static void test_clean_update_and_refusals(void)
{
    fx_image v2, v1, unsigned_v3;
    REQUIRE(fx_make_image(&v2, F.key, 2, 0, 40000, 11) == 0);
    REQUIRE(fx_make_image(&v1, F.key, 1, 0, 30000, 12) == 0);
    REQUIRE(fx_make_image(&unsigned_v3, NULL, 3, 0, 30000, 13) == 0);
    host h;
    REQUIRE(host_open(&h, 1, 0, 0, 0) == PF_OK);
    CHECK_STR_CONTAINS(h.info.chip, "agent");
    CHECK_EQ(h.info.geom.flash_size, 64 * 1024);
    CHECK_EQ(host_flash(&h, &v2), PF_OK);
    uint8_t dg[32];
    CHECK_EQ(h.ops->digest(h.self, 0, (uint32_t)v2.len, dg), 32);
    CHECK(memcmp(dg, v2.file_hash, 32) == 0);
    CHECK_EQ(h.ops->run(h.self), PF_OK);
    host_close(&h);
    REQUIRE(host_open(&h, 2, 0, 0, 0) == PF_OK);
    CHECK_EQ(running_major(&h), 2);
    CHECK_STR_CONTAINS(h.info.bootloader, "idle"); /* confirmed */
    /* what runs hashes as the image: the job would skip it */
    CHECK_EQ(h.ops->digest(h.self, 0, (uint32_t)v2.len, dg), 32);
    CHECK(memcmp(dg, v2.file_hash, 32) == 0);
    /* downgrade and unsigned images are refused with the agent's reason */
    uint64_t w0 = h.fault.written;
    CHECK_EQ(host_flash(&h, &v1), PF_ERR_AUTH);
    CHECK_STR_CONTAINS(h.diag.text, "downgrade");
    CHECK(h.fault.written - w0 < 12 * 1024); /* refused at the header, not after 30 KB */
    /* a raw binary is refused before anything is sent */
    fx_image raw = v1;
    raw.data = malloc(v1.len);
    memset(raw.data, 0x5A, v1.len);
    w0 = h.fault.written;
    CHECK_EQ(host_flash(&h, &raw), PF_ERR_FORMAT);
    CHECK_STR_CONTAINS(h.diag.text, "peerflash sign");
    CHECK_EQ(h.fault.written - w0, 0);
    free(raw.data);
    CHECK_EQ(host_flash(&h, &unsigned_v3), PF_ERR_AUTH);
    CHECK_STR_CONTAINS(h.diag.text, "not signed");
    host_close(&h);
    free(v2.data);
    free(v1.data);
    free(unsigned_v3.data);
}

/* The host makes the device's END checks before sending a byte: a file
 * whose SHA-256 TLV does not match, or that is not signed with the key the
 * caller gave, fails in a moment with an image error and nothing sent. */
static void test_host_checks_image_before_sending(void)
{
    fx_image v3;
    REQUIRE(fx_make_image(&v3, F.key, 3, 0, 20000, 21) == 0);
    host h;
    REQUIRE(host_open(&h, 3, 0, 0, 0) == PF_OK);
    uint8_t *good = malloc(v3.len);
    memcpy(good, v3.data, v3.len);
    v3.data[PF_MCUBOOT_HEADER_SIZE + 100] ^= 0x01; /* one bit of the body */
    uint64_t w0 = h.fault.written;
    CHECK_EQ(host_flash(&h, &v3), PF_ERR_FORMAT);
    CHECK_STR_CONTAINS(h.diag.text, "does not match its TLV");
    CHECK_STR_CONTAINS(h.diag.text, "nothing was sent");
    CHECK_EQ(h.fault.written - w0, 0);
    memcpy(v3.data, good, v3.len);

    /* the right key passes the host check (the device then installs it),
     * another key fails it */
    char other[1024];
    uint8_t der[128], other_der[128];
    pf_diag d;
    int n = pf_sign_pubkey_der(F.key, der, sizeof der, &d);
    REQUIRE(n > 0);
    REQUIRE(pf_sign_keygen(other, sizeof other, &d) == PF_OK);
    int m = pf_sign_pubkey_der(other, other_der, sizeof other_der, &d);
    REQUIRE(m > 0);
    pf_agent_host_options ho = PF_AGENT_HOST_OPTIONS_DEFAULT();
    ho.deflate = host_deflate;
    ho.pubkey = other_der;
    ho.pubkey_len = (size_t)m;
    CHECK_EQ(pf_agent_host_set_options(h.self, &ho), PF_ERR_ARG); /* a key needs a verifier */
    ho.sig_verify = pf_ecdsa_p256_verify;
    REQUIRE(pf_agent_host_set_options(h.self, &ho) == PF_OK);
    w0 = h.fault.written;
    CHECK_EQ(host_flash(&h, &v3), PF_ERR_FORMAT);
    CHECK_STR_CONTAINS(h.diag.text, "not signed with the configured key");
    CHECK_EQ(h.fault.written - w0, 0);
    ho.pubkey = der;
    ho.pubkey_len = (size_t)n;
    REQUIRE(pf_agent_host_set_options(h.self, &ho) == PF_OK);
    CHECK_EQ(host_flash(&h, &v3), PF_OK);
    host_close(&h);
    free(good);
    free(v3.data);
}

static void test_noise(void)
{
    for (uint32_t seed = 1; seed <= 3; seed++) {
        fx_image im;
        REQUIRE(fx_make_image(&im, F.key, (uint8_t)(10 + seed), 0, 50000, 20 + seed) == 0);
        host h;
        int r = host_open(&h, seed, 0, 0, 0);
        REQUIRE(r == PF_OK);
        /* ~1 error per 5 KB each way: flips and drops */
        h.fault.flip_ppm = 100;
        h.fault.drop_ppm = 100;
        r = host_flash(&h, &im);
        h.fault.flip_ppm = h.fault.drop_ppm = 0;
        fprintf(stderr, "  seed %u: %s, %lu flips, %lu drops\n", (unsigned)seed, r == PF_OK ? "ok" : h.diag.text,
                (unsigned long)h.fault.flips, (unsigned long)h.fault.drops);
        CHECK(h.fault.flips + h.fault.drops > 0);
        CHECK_EQ(r, PF_OK);
        if (r == PF_OK)
            CHECK_EQ(h.ops->run(h.self), PF_OK);
        host_close(&h);
        REQUIRE(host_open(&h, 100 + seed, 0, 0, 0) == PF_OK);
        CHECK_EQ(running_major(&h), 10 + (int)seed);
        host_close(&h);
        free(im.data);
    }
}

static void test_heavy_noise_never_accepts_garbage(void)
{
    /* so much noise that the transfer may fail: then it must fail cleanly
     * and the device must keep running its image */
    fx_image im;
    REQUIRE(fx_make_image(&im, F.key, 20, 0, 6000, 30) == 0);
    host h;
    REQUIRE(host_open(&h, 7, 0, 0, 0) == PF_OK);
    int before = running_major(&h);
    /* a corrupt or lost byte every ~250 each way: most long frames die */
    h.fault.flip_ppm = 2000;
    h.fault.drop_ppm = 2000;
    int r = host_flash(&h, &im);
    h.fault.flip_ppm = h.fault.drop_ppm = 0;
    fprintf(stderr, "  heavy noise: %s\n", r == PF_OK ? "completed" : h.diag.text);
    if (r == PF_OK)
        CHECK_EQ(h.ops->run(h.self), PF_OK);
    host_close(&h);
    REQUIRE(host_open(&h, 8, 0, 0, 0) == PF_OK);
    CHECK_EQ(running_major(&h), r == PF_OK ? 20 : before);
    host_close(&h);
    free(im.data);
}

static void test_cut_and_resume(void)
{
    host_deflate = 0; /* random data does not compress: the plain protocol */
    fx_image im;
    REQUIRE(fx_make_image(&im, F.key, 30, 0, 60000, 40) == 0);
    host h;
    REQUIRE(host_open(&h, 9, 0, 0, im.len / 2) == PF_OK);
    uint64_t before = h.fault.written;
    CHECK(host_flash(&h, &im) < 0); /* the link is cut half way */
    CHECK(h.fault.cut);
    host_close(&h);
    REQUIRE(host_open(&h, 10, 0, 0, 0) == PF_OK);
    before = h.fault.written;
    CHECK_EQ(host_flash(&h, &im), PF_OK);
    uint64_t sent = h.fault.written - before;
    pf_agent_host_stats st;
    pf_agent_host_get_stats(h.self, &st);
    fprintf(stderr, "  resume: second session sent %lu of %lu bytes (resumed at %lu, stream %lu, window bits %u)\n",
            (unsigned long)sent, (unsigned long)im.len, (unsigned long)st.resumed_from, (unsigned long)st.stream_bytes,
            (unsigned)st.deflate_bits);
    CHECK(sent < im.len * 6 / 10); /* only the rest (plus framing) */
    CHECK(sent > im.len * 4 / 10 - 8192);
    CHECK_EQ(h.ops->run(h.self), PF_OK);
    host_close(&h);
    REQUIRE(host_open(&h, 11, 0, 0, 0) == PF_OK);
    CHECK_EQ(running_major(&h), 30);
    host_close(&h);
    free(im.data);
    host_deflate = 1;
}

/* A firmware-like image (a small vocabulary of instruction words and some
 * literals): compresses to about a third. */
static int make_compressible(fx_image *im, uint8_t major, size_t body_len, uint32_t seed)
{
    return fx_make_compressible(im, F.key, major, body_len, seed);
}

static uint64_t deflate_wire; /* bytes one compressed 56 KB image took */

/* The same kind of image plain and compressed: the compressed one arrives
 * byte-exact (END's whole-file SHA-256 on the device, then the running
 * image's hash) with far fewer bytes on the wire. */
static void test_deflate_fewer_bytes(void)
{
    fx_image plain, comp;
    REQUIRE(make_compressible(&plain, 60, 56000, 61) == 0);
    REQUIRE(make_compressible(&comp, 61, 56000, 62) == 0);
    host h;
    host_deflate = 0;
    REQUIRE(host_open(&h, 30, 0, 0, 0) == PF_OK);
    uint64_t w0 = h.fault.written;
    CHECK_EQ(host_flash(&h, &plain), PF_OK);
    uint64_t w_plain = h.fault.written - w0;
    pf_agent_host_stats st;
    pf_agent_host_get_stats(h.self, &st);
    CHECK_EQ(st.deflate_bits, 0);
    host_close(&h);
    host_deflate = 1;
    REQUIRE(host_open(&h, 31, 0, 0, 0) == PF_OK);
    w0 = h.fault.written;
    CHECK_EQ(host_flash(&h, &comp), PF_OK);
    uint64_t w_comp = h.fault.written - w0;
    pf_agent_host_get_stats(h.self, &st);
    fprintf(stderr, "  plain %lu wire bytes, deflate (window %u bits) %lu wire bytes for %lu-byte images (stream %lu)\n",
            (unsigned long)w_plain, (unsigned)st.deflate_bits, (unsigned long)w_comp, (unsigned long)comp.len,
            (unsigned long)st.stream_bytes);
    CHECK_EQ(st.deflate_bits, 12); /* what the simulated device offers */
    CHECK(w_plain > comp.len);
    CHECK(w_comp < w_plain / 2);
    CHECK(st.stream_bytes < comp.len / 2);
    deflate_wire = w_comp;
    CHECK_EQ(h.ops->run(h.self), PF_OK);
    host_close(&h);
    REQUIRE(host_open(&h, 32, 0, 0, 0) == PF_OK);
    CHECK_EQ(running_major(&h), 61);
    uint8_t dg[32];
    CHECK_EQ(h.ops->digest(h.self, 0, (uint32_t)comp.len, dg), 32); /* the running image, hashed by the device */
    CHECK(memcmp(dg, comp.file_hash, 32) == 0);
    host_close(&h);
    free(plain.data);
    free(comp.data);
}

/* Compressed, cut at half way: the next session resumes at an erase unit
 * with a fresh stream and sends only the rest. */
static void test_deflate_cut_and_resume(void)
{
    fx_image im;
    REQUIRE(make_compressible(&im, 62, 56000, 63) == 0);
    REQUIRE(deflate_wire > 0);
    host h;
    REQUIRE(host_open(&h, 33, 0, 0, deflate_wire / 2) == PF_OK);
    CHECK(host_flash(&h, &im) < 0);
    CHECK(h.fault.cut);
    host_close(&h);
    REQUIRE(host_open(&h, 34, 0, 0, 0) == PF_OK);
    uint64_t w0 = h.fault.written;
    CHECK_EQ(host_flash(&h, &im), PF_OK);
    uint64_t sent = h.fault.written - w0;
    pf_agent_host_stats st;
    pf_agent_host_get_stats(h.self, &st);
    fprintf(stderr, "  deflate resume: at %lu of %lu, second session %lu wire bytes (a whole one: ~%lu)\n",
            (unsigned long)st.resumed_from, (unsigned long)im.len, (unsigned long)sent, (unsigned long)deflate_wire);
    CHECK(st.resumed_from > 0);
    CHECK_EQ(st.resumed_from % 4096, 0);
    CHECK(st.resumed_from > im.len / 4);
    CHECK_EQ(st.deflate_bits, 12);
    CHECK(sent < deflate_wire * 8 / 10);
    CHECK_EQ(h.ops->run(h.self), PF_OK);
    host_close(&h);
    REQUIRE(host_open(&h, 35, 0, 0, 0) == PF_OK);
    CHECK_EQ(running_major(&h), 62);
    host_close(&h);
    free(im.data);
}

/* A device that loses power during the transfer and during the swap: one
 * flash session still ends with the new image confirmed. */
static void test_power_cuts_during_session(void)
{
    fx_image im;
    REQUIRE(fx_make_image(&im, F.key, 40, 0, 50000, 50) == 0);
    host h;
    REQUIRE(host_open(&h, 12, 0, 0, 0) == PF_OK);
    CHECK_EQ(host_flash(&h, &im), PF_OK);
    CHECK_EQ(h.ops->run(h.self), PF_OK);
    host_close(&h);
    REQUIRE(host_open(&h, 13, 0, 0, 0) == PF_OK);
    CHECK_EQ(running_major(&h), 40);
    host_close(&h);
    free(im.data);
}

/* A device with a receive ring smaller than the host's window and slow
 * erases: bytes are lost while it erases; retransmission still delivers.
 * Small frames: more than 256 of them, so the 8-bit sequence numbers wrap
 * (a regression test: ACKs after the wrap were once taken for stale). */
static void test_small_rx_ring(void)
{
    fx_image im;
    /* 50 KB in frames of 128 bytes: ~400 frames, so sequence numbers wrap */
    REQUIRE(fx_make_image(&im, F.key, 50, 0, 50000, 60) == 0);
    host h;
    REQUIRE(host_open(&h, 14, 0, 0, 0) == PF_OK);
    CHECK_EQ(host_flash(&h, &im), PF_OK);
    CHECK_EQ(h.ops->run(h.self), PF_OK);
    host_close(&h);
    REQUIRE(host_open(&h, 15, 0, 0, 0) == PF_OK);
    CHECK_EQ(running_major(&h), 50);
    host_close(&h);
    free(im.data);
}

static uint32_t sim_erase_ms, sim_rx_ring, sim_payload;

static pthread_t start_sim(FILE *log, const char *cuts)
{
    pf_sim_agent_config o = PF_SIM_AGENT_CONFIG_DEFAULT();
    o.port = dev;
    o.slot_size = 64 * 1024;
    o.key_path = keyfile;
    o.prog_us_per_kib = 0; /* flash timing is not what this test measures */
    o.erase_ms = sim_erase_ms;
    o.rx_ring = sim_rx_ring;
    if (sim_payload)
        o.payload = sim_payload;
    o.log = log;
    o.power_cuts = cuts;
    pf_diag d = {0};
    if (pf_sim_agent_open(&sim, &o, &d) < 0)
        fprintf(stderr, "sim agent: %s\n", d.text);
    sim_stop = 0;
    pthread_t t;
    pthread_create(&t, NULL, sim_thread, NULL);
    /* wait (bounded) for the pty to appear */
    for (int i = 0; i < 300 && access(dev, F_OK) != 0; i++)
        pf_posix_sleep_ms(10);
    return t;
}

static void stop_sim(pthread_t t)
{
    sim_stop = 1;
    pthread_join(t, NULL);
    pf_sim_agent_close(sim);
    sim = NULL;
}

/* RUN with the time each case took (the test must stay well under 2 min) */
#define RUN_T(fn)                                                                          \
    do {                                                                                   \
        uint32_t t0_ = pf_posix_now_ms();                                                  \
        RUN(fn);                                                                           \
        fprintf(stderr, "  (%s: %.1f s)\n", #fn, (pf_posix_now_ms() - t0_) / 1000.0);      \
    } while (0)

int main(void)
{
    signal(SIGPIPE, SIG_IGN);
    pf_diag d;
    if (pf_sign_keygen(F.key, sizeof F.key, &d) < 0)
        return 1;
    snprintf(dir, sizeof dir, "/tmp/pf_agent_link_XXXXXX");
    if (!mkdtemp(dir))
        return 1;
    snprintf(dev, sizeof dev, "%s/dev", dir);
    snprintf(keyfile, sizeof keyfile, "%s/key.pem", dir);
    snprintf(logfile, sizeof logfile, "%s/sim.log", dir);
    FILE *k = fopen(keyfile, "w");
    fputs(F.key, k);
    fclose(k);
    FILE *log = fopen(logfile, "w");
    pthread_t t = start_sim(log, NULL);
    RUN_T(test_clean_update_and_refusals);
    RUN_T(test_host_checks_image_before_sending);
    RUN_T(test_noise);
    RUN_T(test_heavy_noise_never_accepts_garbage);
    RUN_T(test_cut_and_resume);
    RUN_T(test_deflate_fewer_bytes);
    RUN_T(test_deflate_cut_and_resume);
    stop_sim(t);
    /* a fresh device (empty flash) that loses power at flash operations 30
     * (receiving) and 150 (swapping) */
    t = start_sim(log, "30,150");
    RUN_T(test_power_cuts_during_session);
    stop_sim(t);
    /* 20 ms erases, a 512-byte receive ring, a window of 8 frames of 128 bytes */
    sim_erase_ms = 20;
    sim_rx_ring = 512;
    sim_payload = 128;
    t = start_sim(log, NULL);
    RUN_T(test_small_rx_ring);
    stop_sim(t);
    fflush(log);
    long lost = 0;
    {
        char ln[300];
        FILE *lf = fopen(logfile, "r");
        while (lf && fgets(ln, sizeof ln, lf)) {
            char *q = strstr(ln, "uart: ");
            if (q)
                lost = atol(q + 6);
        }
        if (lf)
            fclose(lf);
    }
    fprintf(stderr, "  small ring: %ld bytes lost on the device side, transfer completed\n", lost);
    CHECK(lost > 0); /* the ring really overflowed */
    int cuts_seen = 0;
    char line[300];
    FILE *l = fopen(logfile, "r");
    while (l && fgets(line, sizeof line, l))
        cuts_seen += strstr(line, "power cut at flash operation") != NULL;
    if (l)
        fclose(l);
    CHECK_EQ(cuts_seen, 2);
    fclose(log);
    if (pf_test_failed) {
        fprintf(stderr, "device log (%s):\n", logfile);
        l = fopen(logfile, "r");
        while (l && fgets(line, sizeof line, l))
            fputs(line, stderr);
        if (l)
            fclose(l);
    }
    unlink(keyfile);
    unlink(logfile);
    rmdir(dir);
    return pf_test_summary();
}
