/* Real programs open the wire's ptys like serial ports, repeatedly: Debian's
 * avrdude and stm32flash; and open propagation reopens a simulator's pty when
 * a program opens the other side. */
#include <stdlib.h>
#include <sys/stat.h>

#include "pf_test.h"
#include "spawn_util.h"

static char dir[64], host[128], dev[128], sim[128], tool_log[160];

static pf_wire *start_wire(pf_wire_config *cfg, const char *a, const char *b)
{
    cfg->a = a;
    cfg->b = b;
    pf_wire *w = NULL;
    pf_diag d = {0};
    if (pf_wire_create(&w, cfg, &d) != 0) {
        fprintf(stderr, "pf_wire_create: %s\n", d.text);
        return NULL;
    }
    if (pf_wire_start(w) != 0) {
        pf_wire_destroy(w);
        return NULL;
    }
    return w;
}

/* Reads side B until pattern was seen or the child exits; returns 1 if seen. */
static int watch_for(int fd, const uint8_t *pat, size_t plen, pid_t child, double timeout_s)
{
    uint8_t buf[4096];
    size_t have = 0;
    double deadline = tw_now() + timeout_s;
    while (tw_now() < deadline && sp_running(child)) {
        size_t n = tw_read_n(fd, buf + have, sizeof buf - have, tw_now() + 0.05, NULL);
        have += n;
        for (size_t i = 0; i + plen <= have; i++)
            if (!memcmp(buf + i, pat, plen))
                return 1;
        if (have > sizeof buf - 64)
            have = 0;
    }
    return 0;
}

static int has_avrdude(void)
{
    return access("/usr/bin/avrdude", X_OK) == 0;
}

/* avrdude opens the pty, sends STK_GET_SYNC (0x30 0x20) through the wire,
 * gets no answer and says so; twice, to show that reopening works. One sync
 * attempt (-x attempts=1) takes ~6 s: avrdude waits 5 s for an answer. */
static void test_avrdude_opens(void)
{
    if (!has_avrdude()) {
        fprintf(stderr, "  avrdude not installed (scripts/deps/wire.txt): skipped\n");
        return;
    }
    pf_wire_config cfg = PF_WIRE_CONFIG_DEFAULT();
    cfg.baud = 115200;
    pf_wire *w = start_wire(&cfg, host, dev);
    REQUIRE(w);
    int fb = tw_open(dev, 115200);
    REQUIRE(fb >= 0);
    for (int round = 1; round <= 2; round++) {
        char *argv[] = {"timeout", "-s", "KILL", "40", "avrdude", "-c", "arduino", "-p", "m328p", "-P", host, "-b",
                        "115200", "-x", "attempts=1", NULL};
        pid_t pid = sp_start(argv, tool_log, NULL);
        REQUIRE(pid > 0);
        static const uint8_t sync[] = {0x30, 0x20};
        int seen = watch_for(fb, sync, 2, pid, 40);
        CHECK(seen);
        int st = sp_wait(pid, 45);
        const char *out = sp_slurp(tool_log);
        CHECK(st != 0 && st != -1 && st != 137); /* avrdude itself gave up, not timeout */
        CHECK(strstr(out, "not in sync") || strstr(out, "not responding"));
        CHECK(!strstr(out, "cannot open port"));
        if (st == 0 || !(strstr(out, "not in sync") || strstr(out, "not responding")))
            fprintf(stderr, "avrdude said (status %d):\n%s\n", st, out);
        pf_wire_stats s;
        pf_wire_get_stats(w, &s);
        CHECK(s.opens[PF_WIRE_A] >= (uint32_t)round);
        fprintf(stderr, "  avrdude run %d: exit %d, wire saw %u opens of A, %llu bytes A->B\n", round, st,
                s.opens[PF_WIRE_A], (unsigned long long)s.dir[PF_WIRE_A2B].bytes_in);
    }
    close(fb);
    pf_wire_destroy(w);
}

/* stm32flash -b 0 (no port setup) opens the pty and sends its 0x7F. */
static void test_stm32flash_opens(void)
{
    if (access("/usr/bin/stm32flash", X_OK) != 0) {
        fprintf(stderr, "  stm32flash not installed (scripts/deps/wire.txt): skipped\n");
        return;
    }
    pf_wire_config cfg = PF_WIRE_CONFIG_DEFAULT();
    cfg.baud = 57600;
    cfg.frame = PF_FRAME_8E1;
    pf_wire *w = start_wire(&cfg, host, dev);
    REQUIRE(w);
    int fb = tw_open(dev, 57600);
    REQUIRE(fb >= 0);
    for (int round = 1; round <= 2; round++) {
        char *argv[] = {"timeout", "-s", "KILL", "30", "stm32flash", "-b", "0", host, NULL};
        pid_t pid = sp_start(argv, tool_log, NULL);
        REQUIRE(pid > 0);
        static const uint8_t init[] = {0x7F};
        CHECK(watch_for(fb, init, 1, pid, 30));
        int st = sp_wait(pid, 35);
        const char *out = sp_slurp(tool_log);
        CHECK(st != 0 && st != -1 && st != 137);
        CHECK(strstr(out, "Failed to init device") != NULL);
        if (!strstr(out, "Failed to init device"))
            fprintf(stderr, "stm32flash said (status %d):\n%s\n", st, out);
    }
    close(fb);
    pf_wire_destroy(w);
}

/* A stand-in for a simulator: it makes its own pty (linked at sim) and watches
 * POLLHUP on its master to see whether anyone holds the slave. */
typedef struct fake_sim {
    int master;
    char pts[64];
} fake_sim;

static int fake_sim_make(fake_sim *s)
{
    s->master = posix_openpt(O_RDWR | O_NOCTTY | O_NONBLOCK);
    if (s->master < 0 || grantpt(s->master) || unlockpt(s->master) || ptsname_r(s->master, s->pts, sizeof s->pts))
        return -1;
    int sl = tw_open(s->pts, 115200); /* raw; closing it arms POLLHUP */
    if (sl < 0)
        return -1;
    close(sl);
    unlink(sim);
    return symlink(s->pts, sim);
}

static int held(const fake_sim *s)
{
    struct pollfd p = {s->master, POLLIN, 0};
    poll(&p, 1, 0);
    return !(p.revents & POLLHUP);
}

/* Waits until held(s) == want; returns 1 if it happened before the timeout. */
static int wait_held(const fake_sim *s, int want, double timeout_s)
{
    double deadline = tw_now() + timeout_s;
    while (tw_now() < deadline) {
        if (held(s) == want)
            return 1;
        struct timespec ts = {0, 500000};
        nanosleep(&ts, NULL);
    }
    return 0;
}

static void test_open_propagation(void)
{
    fake_sim s;
    REQUIRE(fake_sim_make(&s) == 0);
    CHECK(!held(&s));
    pf_wire_config cfg = PF_WIRE_CONFIG_DEFAULT();
    cfg.reopen_gap_ms = 100;
    pf_wire *w = start_wire(&cfg, host, sim);
    REQUIRE(w);
    CHECK(held(&s)); /* the wire opened the simulator's port */
    for (int round = 1; round <= 3; round++) {
        int fa = tw_open(host, 115200); /* a program opens side A ... */
        REQUIRE(fa >= 0);
        /* ... so the simulator sees its port closed, then opened again */
        double t0 = tw_now();
        CHECK(wait_held(&s, 0, 3));
        double t1 = tw_now();
        CHECK(wait_held(&s, 1, 3));
        double t2 = tw_now();
        fprintf(stderr, "  open %d: simulator's port closed after %.1f ms for %.1f ms\n", round, (t1 - t0) * 1e3,
                (t2 - t1) * 1e3);
        CHECK(t2 - t1 >= 0.050); /* the wire keeps it closed for 100 ms */
        pf_wire_stats st;
        pf_wire_get_stats(w, &st);
        CHECK_EQ(st.reopens[PF_WIRE_B], round);
        CHECK_EQ(st.opens[PF_WIRE_A], round);
        /* bytes flow both ways after the reopen */
        uint8_t c = (uint8_t)(0x40 + round), r = 0;
        CHECK_EQ(write(fa, &c, 1), 1);
        CHECK_EQ(tw_read_n(s.master, &r, 1, tw_now() + 2, NULL), 1);
        CHECK_EQ(r, c);
        c ^= 0xFF;
        CHECK_EQ(write(s.master, &c, 1), 1);
        CHECK_EQ(tw_read_n(fa, &r, 1, tw_now() + 2, NULL), 1);
        CHECK_EQ(r, c);
        close(fa);
        /* wait until the wire saw the close, so the next open is a new one */
        double deadline = tw_now() + 3;
        do {
            pf_wire_get_stats(w, &st);
        } while (st.open[PF_WIRE_A] && tw_now() < deadline);
        CHECK(!st.open[PF_WIRE_A]);
    }
    pf_wire_destroy(w);

    /* --no-open-propagation: opening A leaves the simulator's port alone */
    cfg.open_propagation = 0;
    w = start_wire(&cfg, host, sim);
    REQUIRE(w);
    CHECK(wait_held(&s, 1, 2));
    int fa = tw_open(host, 115200);
    CHECK(fa >= 0);
    uint8_t c = 0x99, r = 0;
    CHECK_EQ(write(fa, &c, 1), 1); /* once this arrived, the wire has seen the open */
    CHECK_EQ(tw_read_n(s.master, &r, 1, tw_now() + 2, NULL), 1);
    CHECK(!wait_held(&s, 0, 0.3));
    pf_wire_stats st;
    pf_wire_get_stats(w, &st);
    CHECK_EQ(st.reopens[PF_WIRE_B], 0);
    CHECK_EQ(st.opens[PF_WIRE_A], 1);
    close(fa);
    pf_wire_destroy(w);
    close(s.master);
    unlink(sim);
}

/* Bytes for a side nobody holds open are discarded, not kept for the next opener. */
static void test_closed_side_discards(void)
{
    pf_wire_config cfg = PF_WIRE_CONFIG_DEFAULT();
    cfg.baud = 921600;
    pf_wire *w = start_wire(&cfg, host, dev);
    REQUIRE(w);
    int fa = tw_open(host, 921600);
    REQUIRE(fa >= 0);
    uint8_t buf[500];
    tw_pattern(buf, sizeof buf, 8);
    CHECK_EQ(tw_write_all(fa, buf, sizeof buf, tw_now() + 5), sizeof buf);
    double deadline = tw_now() + 5;
    pf_wire_stats st;
    do {
        pf_wire_get_stats(w, &st);
    } while (st.dir[PF_WIRE_A2B].discarded_closed < sizeof buf && tw_now() < deadline);
    CHECK_EQ(st.dir[PF_WIRE_A2B].discarded_closed, sizeof buf);
    int fb = tw_open(dev, 921600);
    REQUIRE(fb >= 0);
    CHECK_EQ(tw_read_n(fb, buf, 1, tw_now() + 0.2, NULL), 0); /* nothing stale */
    uint8_t c = 0x42, r = 0;
    CHECK_EQ(write(fa, &c, 1), 1);
    CHECK_EQ(tw_read_n(fb, &r, 1, tw_now() + 2, NULL), 1);
    CHECK_EQ(r, c);
    close(fa);
    close(fb);
    pf_wire_destroy(w);
}

int main(void)
{
    tw_tmpdir(dir, sizeof dir);
    snprintf(host, sizeof host, "%s/host", dir);
    snprintf(dev, sizeof dev, "%s/dev", dir);
    snprintf(sim, sizeof sim, "%s/sim", dir);
    snprintf(tool_log, sizeof tool_log, "%s/tool.log", dir);
    RUN(test_closed_side_discards);
    RUN(test_open_propagation);
    RUN(test_stm32flash_opens);
    RUN(test_avrdude_opens);
    unlink(tool_log);
    tw_rmdir(dir);
    return pf_test_summary();
}
