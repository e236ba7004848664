/* The POSIX port over a real pty pair: pty:PATH creation, opening the slave
 * path like a serial port, partial reads at the deadline, hang-up. */
#include <stdio.h>
#include <unistd.h>

#include "peerflash/pf_posix.h"
#include "pf_test.h"

static char path[64];

static void test_pty_roundtrip(void)
{
    pf_posix_link sim, host;
    pf_port sp, hp;
    pf_diag d = {0};
    char spec[80];
    snprintf(spec, sizeof spec, "pty:%s", path);
    REQUIRE(pf_posix_open(&sim, spec, &d) == PF_OK);
    CHECK(access(path, F_OK) == 0);
    REQUIRE(pf_posix_open(&host, path, &d) == PF_OK);
    CHECK_EQ(host.kind, PF_POSIX_TTY);
    pf_posix_port(&sim, &sp);
    pf_posix_port(&host, &hp);
    CHECK_EQ(pf_port_set_line(&hp, 115200, PF_FRAME_8E1), PF_OK);
    CHECK_EQ(pf_port_set_lines(&hp, PF_LINE_ASSERT, PF_LINE_RELEASE), PF_ERR_UNSUPPORTED); /* a pty has no lines */

    const uint8_t msg[] = {0x7f, 0x00, 0xc0, 0xdb, '\n', '\r', 0x11, 0x13};
    CHECK_EQ(pf_port_write_all(&hp, msg, sizeof msg), (int)sizeof msg);
    uint8_t buf[16];
    size_t got = 0;
    CHECK_EQ(pf_port_read_exact(&sp, buf, sizeof msg, pf_deadline(&sp, 2000), &got), (int)sizeof msg);
    CHECK(memcmp(buf, msg, sizeof msg) == 0); /* raw: no CR/LF mapping, no XON/XOFF */

    /* Two bytes arrive, four are asked for: the read returns what came at the deadline. */
    CHECK_EQ(pf_port_write_all(&sp, msg, 2), 2);
    uint32_t t0 = sp.now_ms(sp.ctx);
    int r = pf_port_read_exact(&hp, buf, 4, pf_deadline(&hp, 200), &got);
    uint32_t took = hp.now_ms(hp.ctx) - t0;
    CHECK_EQ(r, PF_ERR_TIMEOUT);
    CHECK_EQ(got, 2);
    CHECK(took >= 190);

    /* The simulator side sees no data (not an error) while the host is away. */
    pf_posix_close(&host);
    CHECK_EQ(sp.read(sp.ctx, buf, 1, 50), 0);
    pf_posix_close(&sim);
    CHECK(access(path, F_OK) != 0); /* the link is removed with the pty */
}

static void test_host_sees_hangup(void)
{
    pf_posix_link sim, host;
    pf_port hp;
    REQUIRE(pf_posix_open(&sim, path, NULL) == PF_OK); /* bare new path = pty */
    CHECK_EQ(sim.kind, PF_POSIX_PTY_MASTER);
    REQUIRE(pf_posix_open(&host, path, NULL) == PF_OK);
    pf_posix_port(&host, &hp);
    pf_posix_close(&sim);
    uint8_t b;
    CHECK_EQ(hp.read(hp.ctx, &b, 1, 1000), PF_ERR_CLOSED);
    pf_posix_close(&host);
}

static void test_errors_explain(void)
{
    pf_posix_link l;
    pf_diag d = {0};
    CHECK_EQ(pf_posix_open(&l, "/dev/null", &d), PF_ERR_IO);
    CHECK_STR_CONTAINS(d.text, "not a serial port");
    CHECK_EQ(pf_posix_open(&l, "tcp://nohostport", &d), PF_ERR_ARG);
    CHECK_STR_CONTAINS(d.text, "tcp://HOST:PORT");
    CHECK_EQ(pf_posix_open(&l, "tcp://127.0.0.1:1", &d), PF_ERR_IO);
    CHECK_STR_CONTAINS(d.text, "Connection refused");
}

static void test_tcp_pair(void)
{
    pf_posix_link srv, cli;
    pf_port s, c;
    /* Find a free port by trying a few; the test needs no fixed port. */
    int port = 0;
    for (int p = 47000 + (int)(getpid() % 1000); p < 49000; p += 7) {
        char spec[40];
        snprintf(spec, sizeof spec, "tcp-listen://%d", p);
        if (pf_posix_open(&srv, spec, NULL) == PF_OK) {
            port = p;
            break;
        }
    }
    REQUIRE(port != 0);
    char spec[40];
    snprintf(spec, sizeof spec, "tcp://127.0.0.1:%d", port);
    REQUIRE(pf_posix_open(&cli, spec, NULL) == PF_OK);
    pf_posix_port(&srv, &s);
    pf_posix_port(&cli, &c);
    CHECK_EQ(pf_port_set_line(&c, 921600, PF_FRAME_8N1), PF_OK); /* no rate on TCP: not an error */
    CHECK_EQ(pf_port_write_all(&c, (const uint8_t *)"hello", 5), 5);
    uint8_t buf[8];
    CHECK_EQ(pf_port_read_exact(&s, buf, 5, pf_deadline(&s, 2000), NULL), 5);
    CHECK(memcmp(buf, "hello", 5) == 0);
    pf_posix_close(&cli);
    CHECK_EQ(s.read(s.ctx, buf, 1, 1000), PF_ERR_CLOSED);
    pf_posix_close(&srv);
}

/* pf_port_set_lines says when the lines were not driven (it once said PF_OK) */
static int fake_lines_rc, fake_lines_calls;
static int fake_set_lines(void *ctx, int dtr, int rts)
{
    (void)ctx, (void)dtr, (void)rts;
    fake_lines_calls++;
    return fake_lines_rc;
}
static void test_set_lines_honest(void)
{
    pf_port p = {0};
    CHECK_EQ(pf_port_set_lines(&p, PF_LINE_ASSERT, PF_LINE_ASSERT), PF_ERR_UNSUPPORTED); /* no function */
    p.set_lines = fake_set_lines;
    fake_lines_rc = PF_OK;
    CHECK_EQ(pf_port_set_lines(&p, PF_LINE_ASSERT, PF_LINE_RELEASE), PF_OK);
    fake_lines_rc = PF_ERR_UNSUPPORTED;
    CHECK_EQ(pf_port_set_lines(&p, PF_LINE_ASSERT, PF_LINE_RELEASE), PF_ERR_UNSUPPORTED);
    fake_lines_rc = PF_ERR_IO;
    CHECK_EQ(pf_port_set_lines(&p, PF_LINE_KEEP, PF_LINE_RELEASE), PF_ERR_IO);
    CHECK_EQ(fake_lines_calls, 3);
    /* a raw TCP port has no line rate: set_line still succeeds (the far end's rate) */
}

int main(void)
{
    snprintf(path, sizeof path, "/tmp/pf-test-link-%d", (int)getpid());
    RUN(test_set_lines_honest);
    RUN(test_pty_roundtrip);
    RUN(test_host_sees_hangup);
    RUN(test_errors_explain);
    RUN(test_tcp_pair);
    return pf_test_summary();
}
