/* The agent driver's compression methods (`--compress fast|best|auto`,
 * docs/PROTOCOL.md "Compression") against agents that offer every inflate
 * window from 2^9 to 2^15: the host driver talks to the simulated device
 * (agent + bootloader over simulated NOR flash, in a thread) over a pty,
 * through a port that records what the host writes. For each window and
 * method:
 *   - the transfer lands (the device inflated it and END's whole-file
 *     SHA-256 matched);
 *   - the DATA stream, put together from the recorded frames, inflates with
 *     exactly the agent's windowBits (zlib inflateInit2(bits)) to the image,
 *     in 16-byte output steps, so that a distance beyond the 2^bits window
 *     is an error ("invalid distance too far back") and not served from the
 *     output buffer;
 *   - best and auto send zopfli segments only to a 2^15 agent; below that
 *     they send one zlib stream at the agent's window;
 *   - the write's progress never passes the image and ends at all of it.
 * A check that can fail: the 2^15 best stream does not inflate with 14 bits. */
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>
#include <zlib.h>

#include "agent_fixture.h"
#include "fault_port.h"
#include "agent_sim.h"
#include "peerflash/pf_agent_host.h"
#include "peerflash/pf_agent_proto.h"
#include "peerflash/pf_bytes.h"
#include "peerflash/pf_job.h"
#include "peerflash/pf_posix.h"
#include "peerflash/pf_target.h"
#include "pf_test.h"

static pf_sim_agent *sim;
static volatile sig_atomic_t sim_stop;
static char dir[64], dev[96], keyfile[96], logfile[96];
static fx F;

static void *sim_thread(void *arg)
{
    (void)arg;
    if (sim)
        pf_sim_agent_run(sim, &sim_stop);
    return NULL;
}

static pthread_t start_sim(FILE *log, unsigned bits)
{
    pf_sim_agent_config o = PF_SIM_AGENT_CONFIG_DEFAULT();
    o.port = dev;
    o.slot_size = 128 * 1024;
    o.key_path = keyfile;
    o.prog_us_per_kib = 0; /* flash timing is not what this test is about */
    o.erase_ms = 0;
    o.log = log;
    o.deflate_bits = bits;
    pf_diag d = {0};
    if (pf_sim_agent_open(&sim, &o, &d) < 0)
        fprintf(stderr, "sim agent: %s\n", d.text);
    sim_stop = 0;
    pthread_t t;
    pthread_create(&t, NULL, sim_thread, NULL);
    for (int i = 0; i < 300 && access(dev, F_OK) != 0; i++) /* bounded wait for its pty */
        pf_posix_sleep_ms(10);
    return t;
}

static void stop_sim(pthread_t t)
{
    sim_stop = 1;
    pthread_join(t, NULL);
    pf_sim_agent_close(sim);
    sim = NULL;
    unlink(dev);
}

/* The DATA stream of the last transfer in what the host wrote: the
 * payloads after its last BEGIN, each at its offset (a retransmission
 * writes the same bytes again). Returns its length; *out malloc'd. */
static size_t stream_of(const fault_port *t, uint8_t **out)
{
    static uint8_t rx[PF_AP_WIRE_MAX(PF_AP_MAX_PAYLOAD)];
    pf_ap_decoder d;
    pf_ap_decoder_init(&d, rx, sizeof rx);
    size_t cap = 1u << 20, len = 0;
    uint8_t *s = calloc(1, cap);
    for (size_t pos = 0; pos < t->sent_len;) {
        pf_ap_frame f;
        int got = 0;
        pos += pf_ap_decode(&d, t->sent + pos, t->sent_len - pos, &f, &got);
        if (!got)
            continue;
        if (f.type == PF_AP_BEGIN) {
            len = 0;
        } else if (f.type == PF_AP_DATA && f.len >= 4) {
            uint32_t off = pf_get_le32(f.payload), n = f.len - 4u;
            if (off + n <= cap) {
                memcpy(s + off, f.payload + 4, n);
                if (off + n > len)
                    len = off + n;
            }
        }
    }
    *out = s;
    return len;
}

/* 0 when z[0, zlen) is a zlib stream that inflateInit2(bits) inflates to
 * exactly want[0, want_len), 16 output bytes per call (each distance then
 * reaches into zlib's 2^bits window, not into the output buffer). */
static int inflates_to(const uint8_t *z, size_t zlen, int bits, const uint8_t *want, size_t want_len, char *why,
                       size_t why_n)
{
    z_stream s;
    memset(&s, 0, sizeof s);
    if (inflateInit2(&s, bits) != Z_OK)
        return -1;
    uint8_t *out = malloc(want_len + 16);
    s.next_in = (Bytef *)(uintptr_t)z;
    s.avail_in = (uInt)zlen;
    size_t have = 0;
    int r = Z_OK;
    while (r == Z_OK) {
        s.next_out = out + have;
        s.avail_out = 16;
        r = inflate(&s, Z_NO_FLUSH);
        have = (size_t)(s.next_out - out);
        if (have > want_len)
            break;
    }
    snprintf(why, why_n, "inflate: %d (%s) after %lu bytes", r, s.msg ? s.msg : "-", (unsigned long)have);
    int ok = r == Z_STREAM_END && s.avail_in == 0 && have == want_len && memcmp(out, want, want_len) == 0;
    inflateEnd(&s);
    free(out);
    return ok ? 0 : -1;
}

/* Progress of the write the driver reports: never past the image, and
 * the whole image at the end. */
typedef struct prog {
    uint32_t calls, last, total, over;
} prog;

static void on_progress(void *user, int phase, uint32_t done, uint32_t total)
{
    prog *p = user;
    if (phase != PF_PHASE_WRITE)
        return;
    p->calls++;
    p->last = done;
    p->total = total;
    p->over += done > total;
}

enum { M_FAST, M_BEST, M_AUTO };
static const char *const names[] = {"fast", "best", "auto"};

typedef struct host {
    pf_posix_link link;
    fault_port t; /* no faults: it records what the host writes */
    pf_port real;
    const pf_target_ops *ops;
    void *self;
    pf_diag diag;
    pf_target_info info;
    prog progress;
} host;

static int host_open(host *h, int method)
{
    memset(h, 0, sizeof *h);
    int r = pf_posix_open(&h->link, dev, &h->diag);
    if (r < 0)
        return r;
    pf_posix_port(&h->link, &h->real);
    h->link.log_level = getenv("PF_TEST_LOG") ? 3 : -1;
    fault_port_init(&h->t, &h->real, 1);
    h->t.record = 1;
    h->ops = pf_target_find("agent");
    if (!h->ops)
        return PF_ERR_UNSUPPORTED;
    h->self = calloc(1, h->ops->ctx_size);
    pf_target_config c = PF_TARGET_CONFIG_DEFAULT();
    c.port = &h->t.port;
    c.diag = &h->diag;
    c.baud = 921600;
    c.progress = on_progress;
    c.progress_user = &h->progress;
    if ((r = h->ops->open(h->self, &c)) < 0)
        return r;
    if ((r = h->ops->set_option(h->self, "compress", names[method])) < 0) /* as --compress NAME */
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
    free(h->t.sent);
}

static uint8_t major = 1;

/* Flashes a fresh image with `method` to the running sim (offering `bits`)
 * and checks the stream. */
static void one(unsigned bits, int method)
{
    fx_image im;
    REQUIRE(fx_make_compressible(&im, F.key, major, 90000, 100u + major) == 0);
    major++;
    host h;
    int r = host_open(&h, method);
#if !PF_TEST_HAVE_ZOPFLI
    if (method == M_BEST) {
        CHECK_EQ(r, PF_ERR_UNSUPPORTED); /* refused when built without zopfli */
        host_close(&h);
        free(im.data);
        return;
    }
#endif
    REQUIRE(r == PF_OK);
    r = h.ops->write_begin(h.self, 0, (uint32_t)im.len);
    if (r >= 0)
        r = h.ops->write(h.self, 0, im.data, (uint32_t)im.len);
    CHECK_EQ(r, PF_OK);
    pf_agent_host_stats st;
    pf_agent_host_get_stats(h.self, &st);
    uint8_t *z = NULL;
    size_t zlen = stream_of(&h.t, &z);
    char why[160] = "";
    int ok = inflates_to(z, zlen, (int)bits, im.data, im.len, why, sizeof why);
    fprintf(stderr, "  2^%u %s: %s, stream %lu B (%lu by zlib, %lu by zopfli segments), window %u bits; %s\n", bits,
            names[method], r == PF_OK ? "landed" : h.diag.text, (unsigned long)zlen, (unsigned long)st.zsegs_fast,
            (unsigned long)st.zsegs_best, (unsigned)st.deflate_bits, why);
    CHECK_EQ(ok, 0);
    CHECK_EQ(st.deflate_bits, bits);
    CHECK_EQ(st.stream_bytes, zlen);
    CHECK(zlen < im.len / 2);
    CHECK_EQ(z[0] >> 4, bits - 8); /* the header names the agent's window */
    CHECK(h.progress.calls > 0);
    CHECK_EQ(h.progress.over, 0);
    CHECK_EQ(h.progress.total, im.len);
    CHECK_EQ(h.progress.last, im.len);
    if (bits < 15 || method == M_FAST) {
        CHECK_EQ(st.zsegs_best + st.zsegs_fast, 0); /* one zlib stream in line */
    } else {
        CHECK_EQ(st.zsegs_best + st.zsegs_fast, (im.len + 32767) / 32768);
        if (method == M_BEST) {
            CHECK_EQ(st.zsegs_fast, 0);
            /* the check can fail: this stream needs 15 bits */
            CHECK(inflates_to(z, zlen, 14, im.data, im.len, why, sizeof why) < 0);
        }
    }
    free(z);
    host_close(&h);
    free(im.data);
}

int main(void)
{
    signal(SIGPIPE, SIG_IGN);
    pf_diag d;
    if (pf_sign_keygen(F.key, sizeof F.key, &d) < 0)
        return 1;
    snprintf(dir, sizeof dir, "/tmp/pf_agent_zm_XXXXXX");
    if (!mkdtemp(dir))
        return 1;
    snprintf(dev, sizeof dev, "%s/dev", dir);
    snprintf(keyfile, sizeof keyfile, "%s/key.pem", dir);
    snprintf(logfile, sizeof logfile, "%s/sim.log", dir);
    FILE *k = fopen(keyfile, "w");
    fputs(F.key, k);
    fclose(k);
    FILE *log = fopen(logfile, "w");
    for (unsigned bits = 9; bits <= 15; bits++) {
        pthread_t t = start_sim(log, bits);
        for (int m = M_FAST; m <= M_AUTO; m++)
            one(bits, m);
        stop_sim(t);
    }
    fclose(log);
    int failed = pf_test_failed;
    if (failed) {
        fprintf(stderr, "sim log kept in %s\n", dir);
    } else {
        unlink(keyfile);
        unlink(logfile);
        rmdir(dir);
    }
    return pf_test_summary();
}
