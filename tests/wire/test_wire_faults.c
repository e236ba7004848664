/* Faults: seeded and positional (same seed, same faults), rates roughly as
 * configured, drop, burst, cut, follow mode's garbling while the two sides'
 * rates differ, and fixed mode's while a side is out of step with the line. */
#include <math.h>

#include "pf_test.h"
#include "wire_util.h"

static char dir[64], pa[128], pb[128];

static pf_wire *start_wire(pf_wire_config *cfg, int *fa, int *fb, uint32_t rate_a, uint32_t rate_b)
{
    snprintf(pa, sizeof pa, "%s/a", dir);
    snprintf(pb, sizeof pb, "%s/b", dir);
    pf_wire *w = tw_start(cfg, pa, pb);
    if (w) {
        *fa = tw_open(pa, rate_a);
        *fb = tw_open(pb, rate_b);
    }
    return w;
}

static void stop_wire(pf_wire *w, int fa, int fb)
{
    if (fa >= 0)
        close(fa);
    if (fb >= 0)
        close(fb);
    pf_wire_close(w);
}

static int a2b_in_at_least(const pf_wire_stats *st, long n)
{
    return st->dir[PF_WIRE_A2B].bytes_in >= (uint64_t)n;
}

/* Sends tx A->B through a wire with cfg; fills rx with what arrived (all of
 * it: the count is known from the statistics once every byte was taken). */
static size_t through(pf_wire_config *cfg, const uint8_t *tx, size_t n, uint8_t *rx, pf_wire_stats *st)
{
    int fa, fb;
    pf_wire *w = start_wire(cfg, &fa, &fb, cfg->baud, cfg->baud);
    if (!w || fa < 0 || fb < 0) {
        CHECK(!"wire did not start");
        return 0;
    }
    double deadline = tw_now() + 30;
    tw_writer wr;
    tw_writer_start(&wr, fa, tx, n, deadline);
    size_t got = 0;
    /* read while the writer runs, until the wire took all n and delivered the rest */
    for (;;) {
        got += tw_read_n(fb, rx + got, n - got, tw_now() + 0.05, NULL);
        pf_wire_get_stats(w, st);
        const pf_wire_dir_stats *d = &st->dir[PF_WIRE_A2B];
        uint64_t expect = d->bytes_in - d->dropped - d->cut;
        if ((d->bytes_in == n && got >= expect) || tw_now() > deadline || got == n)
            break;
    }
    tw_writer_join(&wr);
    CHECK_EQ(wr.written, n);
    /* nothing more arrives */
    uint8_t extra[64];
    CHECK_EQ(tw_read_n(fb, extra, sizeof extra, tw_now() + 0.1, NULL), 0);
    pf_wire_get_stats(w, st);
    stop_wire(w, fa, fb);
    return got;
}

static size_t count_bit_diffs(const uint8_t *a, const uint8_t *b, size_t n)
{
    size_t c = 0;
    for (size_t i = 0; i < n; i++)
        c += (size_t)__builtin_popcount((unsigned)(a[i] ^ b[i]));
    return c;
}

static void test_flip_seeded(void)
{
    enum { N = 65536 };
    static uint8_t tx[N], rx1[N], rx2[N], rx3[N];
    tw_pattern(tx, N, 7);
    pf_wire_config cfg = PF_WIRE_CONFIG_DEFAULT();
    cfg.baud = 2000000;
    cfg.flip_rate = 1e-3;
    cfg.seed = 42;
    pf_wire_stats st;
    REQUIRE(through(&cfg, tx, N, rx1, &st) == N);
    size_t flips = count_bit_diffs(tx, rx1, N);
    fprintf(stderr, "  flip 1e-3 over %d bits: %zu flipped (stats %llu), expected %.0f\n", N * 8, flips,
            (unsigned long long)st.dir[PF_WIRE_A2B].flipped_bits, N * 8 * 1e-3);
    CHECK_EQ(flips, st.dir[PF_WIRE_A2B].flipped_bits);
    CHECK(fabs((double)flips - N * 8 * 1e-3) < N * 8 * 1e-3 * 0.2);
    REQUIRE(through(&cfg, tx, N, rx2, &st) == N);
    CHECK(memcmp(rx1, rx2, N) == 0); /* same seed: the same bits flipped */
    cfg.seed = 43;
    REQUIRE(through(&cfg, tx, N, rx3, &st) == N);
    CHECK(memcmp(rx1, rx3, N) != 0);
    CHECK(fabs((double)count_bit_diffs(tx, rx3, N) - N * 8 * 1e-3) < N * 8 * 1e-3 * 0.2);
}

/* rx must be tx with some bytes left out: returns how many, or -1. */
static long subsequence_gaps(const uint8_t *tx, size_t n, const uint8_t *rx, size_t m)
{
    size_t j = 0;
    for (size_t i = 0; i < n && j < m; i++)
        if (tx[i] == rx[j])
            j++;
    return j == m ? (long)(n - m) : -1;
}

static void test_drop(void)
{
    enum { N = 32768 };
    static uint8_t tx[N], rx1[N], rx2[N];
    for (size_t i = 0; i < N; i++)
        tx[i] = (uint8_t)(i * 7 + (i >> 8)); /* bytes that make drops visible */
    pf_wire_config cfg = PF_WIRE_CONFIG_DEFAULT();
    cfg.baud = 2000000;
    cfg.drop_rate = 0.01;
    cfg.seed = 5;
    pf_wire_stats st;
    size_t m1 = through(&cfg, tx, N, rx1, &st);
    fprintf(stderr, "  drop 0.01 over %d bytes: %zu arrived, %llu dropped, expected %.0f dropped\n", N, m1,
            (unsigned long long)st.dir[PF_WIRE_A2B].dropped, N * 0.01);
    CHECK_EQ(N - m1, st.dir[PF_WIRE_A2B].dropped);
    CHECK(fabs((double)(N - m1) - N * 0.01) < N * 0.01 * 0.25);
    CHECK_EQ(subsequence_gaps(tx, N, rx1, m1), (long)(N - m1));
    size_t m2 = through(&cfg, tx, N, rx2, &st);
    CHECK_EQ(m1, m2);
    CHECK(m1 == m2 && memcmp(rx1, rx2, m1) == 0);
}

static void test_burst(void)
{
    enum { N = 32768, LEN = 4 };
    static uint8_t tx[N], rx1[N], rx2[N];
    tw_pattern(tx, N, 11);
    pf_wire_config cfg = PF_WIRE_CONFIG_DEFAULT();
    cfg.baud = 2000000;
    cfg.burst_every = 500;
    cfg.burst_len = LEN;
    cfg.seed = 9;
    pf_wire_stats st;
    REQUIRE(through(&cfg, tx, N, rx1, &st) == N);
    size_t bad = 0, runs = 0, run = 0, bad_runs = 0;
    for (size_t i = 0; i <= N; i++) {
        if (i < N && tx[i] != rx1[i]) {
            bad++;
            run++;
        } else if (run) {
            runs++;
            if (run % LEN)
                bad_runs++; /* a burst garbles LEN consecutive bytes (bursts may touch) */
            run = 0;
        }
    }
    fprintf(stderr, "  burst 500:%d over %d bytes: %zu garbled bytes in %zu runs (stats %llu)\n", LEN, N, bad, runs,
            (unsigned long long)st.dir[PF_WIRE_A2B].garbled);
    CHECK_EQ(bad, st.dir[PF_WIRE_A2B].garbled);
    CHECK_EQ(bad_runs, 0);
    CHECK(bad / LEN > 35 && bad / LEN < 100); /* ~65 bursts expected */
    REQUIRE(through(&cfg, tx, N, rx2, &st) == N);
    CHECK(memcmp(rx1, rx2, N) == 0);
}

static int b2a_taken(const pf_wire_stats *st, long n)
{
    return st->dir[PF_WIRE_B2A].bytes_in >= (uint64_t)n;
}

/* --cut-after 1000 (both directions): exactly 1000 bytes pass, then nothing. */
static void test_cut_silent(void)
{
    pf_wire_config cfg = PF_WIRE_CONFIG_DEFAULT();
    cfg.baud = 115200;
    cfg.cut_after = 1000;
    int fa, fb;
    pf_wire *w = start_wire(&cfg, &fa, &fb, 115200, 115200);
    REQUIRE(w && fa >= 0 && fb >= 0);
    static uint8_t tx[600], tx2[600], rx[700];
    tw_pattern(tx, sizeof tx, 1);
    tw_pattern(tx2, sizeof tx2, 2);
    CHECK_EQ(tw_write_all(fa, tx, 600, tw_now() + 5), 600);
    CHECK_EQ(tw_read_n(fb, rx, 600, tw_now() + 5, NULL), 600);
    CHECK(memcmp(rx, tx, 600) == 0);
    CHECK_EQ(tw_write_all(fb, tx2, 600, tw_now() + 5), 600);
    CHECK_EQ(tw_read_n(fa, rx, 600, tw_now() + 2, NULL), 400); /* the 400 before the cut, then nothing */
    CHECK(memcmp(rx, tx2, 400) == 0);
    CHECK(tw_wait_stats(w, b2a_taken, 600, 5));
    CHECK_EQ(tw_write_all(fa, tx, 500, tw_now() + 5), 500);
    CHECK(tw_wait_stats(w, a2b_in_at_least, 1100, 5));
    CHECK_EQ(tw_read_n(fb, rx, 1, tw_now() + 0.2, NULL), 0);
    CHECK_EQ(tw_read_n(fa, rx, 1, tw_now() + 0.05, NULL), 0);
    pf_wire_stats st;
    pf_wire_get_stats(w, &st);
    CHECK_EQ(st.dir[PF_WIRE_A2B].bytes_out, 600);
    CHECK_EQ(st.dir[PF_WIRE_B2A].bytes_out, 400);
    CHECK_EQ(st.dir[PF_WIRE_A2B].cut + st.dir[PF_WIRE_B2A].cut, 700);
    CHECK(st.cut_done);
    stop_wire(w, fa, fb);
}

/* --cut-mode close --cut-dir a2b: 100 bytes arrive, then the side sees hang-up. */
static void test_cut_close(void)
{
    pf_wire_config cfg = PF_WIRE_CONFIG_DEFAULT();
    cfg.baud = 115200;
    cfg.cut_after = 100;
    cfg.cut_dirs = PF_WIRE_DIR_A2B;
    cfg.cut_mode = PF_WIRE_CUT_CLOSE;
    int fa, fb;
    pf_wire *w = start_wire(&cfg, &fa, &fb, 115200, 115200);
    REQUIRE(w && fa >= 0 && fb >= 0);
    uint8_t tx[300], rx[300];
    tw_pattern(tx, sizeof tx, 3);
    tw_write_all(fa, tx, sizeof tx, tw_now() + 5);
    size_t got = tw_read_n(fb, rx, sizeof rx, tw_now() + 3, NULL);
    CHECK_EQ(got, 100);
    CHECK(memcmp(rx, tx, 100) == 0);
    /* the wire ended its run and closed both masters: the slaves hang up */
    CHECK_EQ(pf_wire_join(w), 0);
    struct pollfd p = {fb, POLLIN, 0};
    CHECK_EQ(poll(&p, 1, 2000), 1);
    CHECK(p.revents & POLLHUP);
    ssize_t r = read(fb, rx, 1);
    CHECK(r == 0 || (r < 0 && errno == EIO));
    CHECK(access(pa, F_OK) != 0); /* the symlinks are gone */
    stop_wire(w, fa, fb);
}

/* Follow mode: rates from each side's termios; differing rates garble. */
static void test_follow(void)
{
    pf_wire_config cfg = PF_WIRE_CONFIG_DEFAULT();
    cfg.follow = 1;
    int fa, fb;
    pf_wire *w = start_wire(&cfg, &fa, &fb, 115200, 57600);
    REQUIRE(w && fa >= 0 && fb >= 0);
    uint8_t tx[200], rx[4096];
    tw_pattern(tx, sizeof tx, 4);
    CHECK_EQ(tw_write_all(fa, tx, sizeof tx, tw_now() + 5), sizeof tx);
    size_t got = tw_read_quiet(fb, rx, sizeof rx, 0.3, tw_now() + 5);
    pf_wire_stats st;
    pf_wire_get_stats(w, &st);
    fprintf(stderr, "  115200 -> 57600: 200 bytes sent, %zu read, %llu framing errors\n", got,
            (unsigned long long)st.dir[PF_WIRE_A2B].framing_errors);
    CHECK(got != sizeof tx || memcmp(rx, tx, sizeof tx) != 0);
    CHECK(got < sizeof tx); /* a slower receiver reads fewer characters */
    CHECK_EQ(st.dir[PF_WIRE_A2B].rate_mismatch, 200);
    CHECK(st.dir[PF_WIRE_A2B].framing_errors > 0);
    CHECK_EQ(st.dir[PF_WIRE_A2B].last_baud, 115200);
    /* the other way garbles too */
    CHECK_EQ(tw_write_all(fb, tx, 50, tw_now() + 5), 50);
    got = tw_read_quiet(fa, rx, sizeof rx, 0.3, tw_now() + 5);
    CHECK(got != 50 || memcmp(rx, tx, 50) != 0);
    pf_wire_get_stats(w, &st);
    CHECK_EQ(st.dir[PF_WIRE_B2A].rate_mismatch, 50);

    /* B agrees: clean, and paced at the common rate (57600); a measurement
     * disturbed by a stall of this process (wire stats) is repeated */
    CHECK_EQ(tw_set_rate(fa, 57600), 0);
    enum { N = 2048 };
    static uint8_t big[N], bigrx[N];
    tw_pattern(big, N, 5);
    int paced = 0;
    for (int attempt = 1; attempt <= 4 && !paced; attempt++) {
        pf_wire_get_stats(w, &st);
        uint64_t stalls0 = st.dir[PF_WIRE_A2B].stalls;
        tw_writer wr;
        double t_last = 0;
        tw_writer_start(&wr, fa, big, N, tw_now() + 10);
        got = tw_read_n(fb, bigrx, N, tw_now() + 10, &t_last);
        tw_writer_join(&wr);
        CHECK_EQ(got, N);
        CHECK(memcmp(big, bigrx, N) == 0);
        double t = t_last - wr.t_first, expect = N * 10.0 / 57600;
        fprintf(stderr, "  57600 both sides: %d bytes in %.4f s, expected %.4f s\n", N, t, expect);
        paced = fabs(t - expect) / expect < 0.05;
        pf_wire_get_stats(w, &st);
        if (st.dir[PF_WIRE_A2B].stalls == stalls0)
            break;
    }
    CHECK(paced);

    /* the UART model, bit by bit: 0xFF sent at 9600 and sampled at 19200 reads
     * 0xFE (the start bit lasts two receiver bits); 0x00 sent at 19200 and
     * sampled at 9600 reads 0xF8 (the stop bit lands in data bit 3). */
    CHECK_EQ(tw_set_rate(fa, 9600), 0);
    CHECK_EQ(tw_set_rate(fb, 19200), 0);
    uint8_t c = 0xFF;
    CHECK_EQ(write(fa, &c, 1), 1);
    got = tw_read_quiet(fb, rx, sizeof rx, 0.2, tw_now() + 3);
    CHECK_EQ(got, 1);
    CHECK_EQ(rx[0], 0xFE);
    c = 0x00;
    CHECK_EQ(write(fb, &c, 1), 1);
    got = tw_read_quiet(fa, rx, sizeof rx, 0.2, tw_now() + 3);
    CHECK_EQ(got, 1);
    CHECK_EQ(rx[0], 0xF8);
    stop_wire(w, fa, fb);
}

/* Fixed --baud: the line's own UARTs run at --baud (a bridge, a radio link).
 * A side whose program set another rate is out of step: what it sends is
 * sampled at the line's rate, what it is sent is sampled at its own. The old
 * fixed mode carried every byte intact whatever the sides had set. */
static void test_fixed_out_of_step(void)
{
    pf_wire_config cfg = PF_WIRE_CONFIG_DEFAULT();
    cfg.baud = 115200;
    int fa, fb;
    pf_wire *w = start_wire(&cfg, &fa, &fb, 115200, 115200);
    REQUIRE(w && fa >= 0 && fb >= 0);
    uint8_t tx[200], rx[4096];
    tw_pattern(tx, sizeof tx, 7);
    pf_wire_stats st;

    /* both sides at the line's rate: intact */
    CHECK_EQ(tw_write_all(fa, tx, sizeof tx, tw_now() + 5), sizeof tx);
    CHECK_EQ(tw_read_n(fb, rx, sizeof tx, tw_now() + 5, NULL), sizeof tx);
    CHECK(memcmp(rx, tx, sizeof tx) == 0);
    pf_wire_get_stats(w, &st);
    CHECK_EQ(st.dir[PF_WIRE_A2B].rate_mismatch, 0);

    /* A at 921600 over the 115200 line: the line's UART reads garbage */
    CHECK_EQ(tw_set_rate(fa, 921600), 0);
    CHECK_EQ(tw_write_all(fa, tx, sizeof tx, tw_now() + 5), sizeof tx);
    size_t got = tw_read_quiet(fb, rx, sizeof rx, 0.3, tw_now() + 5);
    pf_wire_get_stats(w, &st);
    fprintf(stderr, "  921600 over a 115200 line to 115200: 200 bytes sent, %zu read, %llu framing errors\n", got,
            (unsigned long long)st.dir[PF_WIRE_A2B].framing_errors);
    CHECK(got < sizeof tx); /* a slower receiver reads fewer characters */
    CHECK(got != sizeof tx || memcmp(rx, tx, sizeof tx) != 0);
    CHECK_EQ(st.dir[PF_WIRE_A2B].rate_mismatch, 200);
    CHECK_EQ(st.dir[PF_WIRE_A2B].last_baud, 921600); /* the sender's UART paces its bytes */
    /* bit by bit: 0xFF at 921600 is low for one eighth of a 115200 bit; the
     * mid-start-bit sample sees high again, a glitch: nothing is read */
    uint64_t out0 = st.dir[PF_WIRE_A2B].bytes_out;
    uint8_t c = 0xFF;
    CHECK_EQ(write(fa, &c, 1), 1);
    CHECK_EQ(tw_read_quiet(fb, rx, sizeof rx, 0.2, tw_now() + 3), 0);
    pf_wire_get_stats(w, &st);
    CHECK_EQ(st.dir[PF_WIRE_A2B].rate_mismatch, 201);
    CHECK_EQ(st.dir[PF_WIRE_A2B].bytes_out, out0);

    /* the other way: the line sends at 115200 to a 921600 receiver; its
     * 8 samples fall in one line bit (the start bit): only 0x80 and framing
     * errors can come of it */
    CHECK_EQ(tw_write_all(fb, tx, 50, tw_now() + 5), 50);
    got = tw_read_quiet(fa, rx, sizeof rx, 0.3, tw_now() + 5);
    pf_wire_get_stats(w, &st);
    CHECK(got > 0);
    size_t odd = 0;
    for (size_t i = 0; i < got; i++)
        odd += rx[i] != 0x80 && rx[i] != 0x00;
    fprintf(stderr, "  115200 line to 921600: 50 bytes sent, %zu read, %zu not 0x80/0x00, %llu framing errors\n", got,
            odd, (unsigned long long)st.dir[PF_WIRE_B2A].framing_errors);
    CHECK_EQ(odd, 0);
    CHECK(st.dir[PF_WIRE_B2A].framing_errors > 0);
    CHECK_EQ(st.dir[PF_WIRE_B2A].rate_mismatch, 50);

    /* both sides at 921600 (a host and a chip after CHANGE_BAUDRATE) over
     * the 115200 line: garbled on the way in and again on the way out; in
     * follow mode (or the old fixed mode) this arrived intact */
    CHECK_EQ(tw_set_rate(fb, 921600), 0);
    CHECK_EQ(tw_write_all(fa, tx, sizeof tx, tw_now() + 5), sizeof tx);
    got = tw_read_quiet(fb, rx, sizeof rx, 0.3, tw_now() + 5);
    fprintf(stderr, "  921600 to 921600 over a 115200 line: 200 bytes sent, %zu read\n", got);
    CHECK(got != sizeof tx || memcmp(rx, tx, sizeof tx) != 0);
    /* the one byte that survives: 0x80 at 921600 is read by the line as 0xFF
     * (sampled after its end: idle), which a 921600 receiver reads as 0x80 */
    c = 0x80;
    CHECK_EQ(write(fa, &c, 1), 1);
    got = tw_read_quiet(fb, rx, sizeof rx, 0.2, tw_now() + 3);
    CHECK_EQ(got, 1);
    CHECK_EQ(rx[0], 0x80);
    pf_wire_get_stats(w, &st);
    CHECK_EQ(st.dir[PF_WIRE_A2B].rate_mismatch, 402);

    /* back in step: intact again */
    CHECK_EQ(tw_set_rate(fa, 115200), 0);
    CHECK_EQ(tw_set_rate(fb, 115200), 0);
    CHECK_EQ(tw_write_all(fa, tx, sizeof tx, tw_now() + 5), sizeof tx);
    CHECK_EQ(tw_read_n(fb, rx, sizeof tx, tw_now() + 5, NULL), sizeof tx);
    CHECK(memcmp(rx, tx, sizeof tx) == 0);
    pf_wire_get_stats(w, &st);
    CHECK_EQ(st.dir[PF_WIRE_A2B].rate_mismatch, 402);
    stop_wire(w, fa, fb);
}

static int b_closed(const pf_wire_stats *st, long n)
{
    (void)n;
    return !st->open[PF_WIRE_B];
}

static int b_opens(const pf_wire_stats *st, long n)
{
    return st->opens[PF_WIRE_B] >= (uint32_t)n;
}

static uint32_t rate_of(int fd)
{
    return pf_endpoint_tty_rate(fd);
}

/* --autobaud b: B locks to the rate of the first byte it is sent, until it is reopened. */
static void test_autobaud(void)
{
    pf_wire_config cfg = PF_WIRE_CONFIG_DEFAULT();
    cfg.follow = 1;
    cfg.autobaud = 2u;
    int fa, fb;
    pf_wire *w = start_wire(&cfg, &fa, &fb, 57600, 9600);
    REQUIRE(w && fa >= 0 && fb >= 0);
    uint8_t c = 0x7F, rx[64];
    CHECK_EQ(write(fa, &c, 1), 1);
    CHECK_EQ(tw_read_quiet(fb, rx, sizeof rx, 0.2, tw_now() + 3), 1);
    CHECK_EQ(rx[0], 0x7F);
    CHECK_EQ(rate_of(fb), 57600); /* the program on B can see what was detected */
    c = 0x79;
    CHECK_EQ(write(fb, &c, 1), 1);
    CHECK_EQ(tw_read_quiet(fa, rx, sizeof rx, 0.2, tw_now() + 3), 1);
    CHECK_EQ(rx[0], 0x79);
    pf_wire_stats st;
    pf_wire_get_stats(w, &st);
    CHECK_EQ(st.autobaud_locked[PF_WIRE_B], 57600);
    CHECK_EQ(st.dir[PF_WIRE_A2B].rate_mismatch + st.dir[PF_WIRE_B2A].rate_mismatch, 0);
    /* locked: the host changing its rate now garbles */
    CHECK_EQ(tw_set_rate(fa, 115200), 0);
    uint8_t tx[20];
    tw_pattern(tx, sizeof tx, 6);
    CHECK_EQ(write(fa, tx, sizeof tx), (ssize_t)sizeof tx);
    size_t got = tw_read_quiet(fb, rx, sizeof rx, 0.2, tw_now() + 3);
    CHECK(got != sizeof tx || memcmp(rx, tx, sizeof tx) != 0);
    /* B's program reopens its port (a reset): it detects again */
    close(fb);
    CHECK(tw_wait_stats(w, b_closed, 0, 3));
    fb = tw_open(pb, 0);
    REQUIRE(fb >= 0);
    CHECK(tw_wait_stats(w, b_opens, 2, 3));
    c = 0x7F;
    CHECK_EQ(write(fa, &c, 1), 1);
    CHECK_EQ(tw_read_quiet(fb, rx, sizeof rx, 0.2, tw_now() + 3), 1);
    CHECK_EQ(rx[0], 0x7F);
    CHECK_EQ(rate_of(fb), 115200);
    stop_wire(w, fa, fb);
}

int main(void)
{
    tw_tmpdir(dir, sizeof dir);
    RUN(test_flip_seeded);
    RUN(test_drop);
    RUN(test_burst);
    RUN(test_cut_silent);
    RUN(test_cut_close);
    RUN(test_follow);
    RUN(test_fixed_out_of_step);
    RUN(test_autobaud);
    tw_rmdir(dir);
    return pf_test_summary();
}
