/* TCP endpoints: tcp-listen://PORT takes one peer at a time and takes the next
 * one after a disconnect; tcp://HOST:PORT connects (and reconnects). */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include "pf_test.h"
#include "pf_test_net.h"
#include "wire_util.h"

static char dir[64], pb[128];

static int connect_to(int port)
{
    int s = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in a = {0};
    a.sin_family = AF_INET;
    a.sin_port = htons((uint16_t)port);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (connect(s, (struct sockaddr *)&a, sizeof a) != 0) {
        close(s);
        return -1;
    }
    fcntl(s, F_SETFL, O_NONBLOCK);
    return s;
}

static int a_opens(const pf_wire_stats *st, long n)
{
    return st->opens[PF_WIRE_A] >= (uint32_t)n;
}

static int a_closed(const pf_wire_stats *st, long n)
{
    (void)n;
    return !st->open[PF_WIRE_A];
}

static void test_listen(void)
{
    /* A port found free can be taken before the wire binds it (another
     * test's listener or outgoing connection, from the same ephemeral range,
     * in a parallel run): then take another one. */
    int port = -1, r = -1;
    char spec[64];
    pf_wire_config cfg = PF_WIRE_CONFIG_DEFAULT();
    pf_wire *w = NULL;
    pf_diag d = {0};
    for (int attempt = 0; attempt < 5 && r != 0; attempt++) {
        port = pf_test_free_port();
        REQUIRE(port > 0);
        snprintf(spec, sizeof spec, "tcp-listen://%d", port);
        cfg.a = spec;
        cfg.b = pb;
        cfg.baud = 460800;
        r = pf_wire_open(&w, &cfg, &d);
        if (r != 0)
            fprintf(stderr, "  port %d: %s; another one\n", port, d.text);
    }
    REQUIRE(r == 0);
    REQUIRE(pf_wire_start(w) == 0);
    int fb = tw_open(pb, 460800);
    REQUIRE(fb >= 0);
    for (int round = 1; round <= 2; round++) {
        int s = connect_to(port);
        REQUIRE(s >= 0);
        CHECK(tw_wait_stats(w, a_opens, round, 5));
        uint8_t tx[1000], rx[1000];
        tw_pattern(tx, sizeof tx, (uint32_t)round);
        CHECK_EQ(tw_write_all(s, tx, sizeof tx, tw_now() + 5), sizeof tx);
        CHECK_EQ(tw_read_n(fb, rx, sizeof rx, tw_now() + 5, NULL), sizeof rx);
        CHECK(memcmp(tx, rx, sizeof tx) == 0);
        CHECK_EQ(tw_write_all(fb, tx, 100, tw_now() + 5), 100);
        CHECK_EQ(tw_read_n(s, rx, 100, tw_now() + 5, NULL), 100);
        CHECK(memcmp(tx, rx, 100) == 0);
        close(s);
        CHECK(tw_wait_stats(w, a_closed, 0, 5));
    }
    /* with nobody connected, bytes for A are discarded */
    CHECK_EQ(write(fb, "zz", 2), 2);
    double deadline = tw_now() + 5;
    pf_wire_stats st;
    do {
        pf_wire_get_stats(w, &st);
    } while (st.dir[PF_WIRE_B2A].discarded_closed < 2 && tw_now() < deadline);
    CHECK_EQ(st.dir[PF_WIRE_B2A].discarded_closed, 2);
    close(fb);
    pf_wire_close(w);
}

static void test_connect(void)
{
    int ls = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in a = {0};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof a;
    REQUIRE(bind(ls, (struct sockaddr *)&a, sizeof a) == 0 && listen(ls, 2) == 0);
    getsockname(ls, (struct sockaddr *)&a, &len);
    char spec[64];
    snprintf(spec, sizeof spec, "tcp://127.0.0.1:%d", ntohs(a.sin_port));
    pf_wire_config cfg = PF_WIRE_CONFIG_DEFAULT();
    cfg.a = pb;
    cfg.b = spec;
    cfg.baud = 460800;
    pf_wire *w = NULL;
    pf_diag d = {0};
    REQUIRE(pf_wire_open(&w, &cfg, &d) == 0);
    REQUIRE(pf_wire_start(w) == 0);
    int peer = accept(ls, NULL, NULL);
    REQUIRE(peer >= 0);
    int fa = tw_open(pb, 460800);
    REQUIRE(fa >= 0);
    uint8_t tx[500], rx[500];
    tw_pattern(tx, sizeof tx, 77);
    CHECK_EQ(tw_write_all(fa, tx, sizeof tx, tw_now() + 5), sizeof tx);
    CHECK_EQ(tw_read_n(peer, rx, sizeof rx, tw_now() + 5, NULL), sizeof rx);
    CHECK(memcmp(tx, rx, sizeof tx) == 0);
    /* the bridge drops the connection: the wire connects again */
    close(peer);
    struct pollfd p = {ls, POLLIN, 0};
    CHECK_EQ(poll(&p, 1, 5000), 1);
    peer = accept(ls, NULL, NULL);
    CHECK(peer >= 0);
    CHECK_EQ(write(peer, "hi", 2), 2);
    CHECK_EQ(tw_read_n(fa, rx, 2, tw_now() + 5, NULL), 2);
    CHECK(!memcmp(rx, "hi", 2));
    /* a TCP side has no rate of its own: it runs at the line's (460800), so a
     * pty side set to 921600 is out of step both ways (wire.h: fixed mode) */
    pf_wire_stats st;
    pf_wire_get_stats(w, &st);
    CHECK_EQ(st.dir[PF_WIRE_A2B].rate_mismatch + st.dir[PF_WIRE_B2A].rate_mismatch, 0);
    CHECK_EQ(tw_set_rate(fa, 921600), 0);
    CHECK_EQ(tw_write_all(fa, tx, 100, tw_now() + 5), 100);
    size_t got = tw_read_quiet(peer, rx, sizeof rx, 0.3, tw_now() + 5);
    CHECK(got != 100 || memcmp(rx, tx, 100) != 0);
    CHECK_EQ(write(peer, tx, 50), 50);
    got = tw_read_quiet(fa, rx, sizeof rx, 0.3, tw_now() + 5);
    CHECK(got != 50 || memcmp(rx, tx, 50) != 0);
    pf_wire_get_stats(w, &st);
    CHECK_EQ(st.dir[PF_WIRE_A2B].rate_mismatch, 100);
    CHECK_EQ(st.dir[PF_WIRE_B2A].rate_mismatch, 50);
    close(peer);
    close(fa);
    close(ls);
    pf_wire_close(w);
}

int main(void)
{
    tw_tmpdir(dir, sizeof dir);
    snprintf(pb, sizeof pb, "%s/b", dir);
    RUN(test_listen);
    RUN(test_connect);
    tw_rmdir(dir);
    return pf_test_summary();
}
