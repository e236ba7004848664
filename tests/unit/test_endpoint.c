/* The POSIX endpoint module (ports/posix/endpoint.c) that the port and the
 * link emulator share: the spec grammar, the line-rate table, pty creation
 * (raw slave, atomic link, refusal to replace a file) and TCP. */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <termios.h>
#include <unistd.h>

#include "pf_test.h"
#include "pf_test_net.h"
#include "posix/endpoint.h"

static char dir[64];

static void test_grammar(void)
{
    pf_endpoint ep;
    pf_diag d = {0};
    REQUIRE(pf_endpoint_parse(&ep, "tcp://localhost:2217", &d) == PF_OK);
    CHECK_EQ(ep.kind, PF_ENDPOINT_TCP);
    CHECK(!strcmp(ep.host, "localhost") && !strcmp(ep.port, "2217") && ep.port_number == 2217);
    REQUIRE(pf_endpoint_parse(&ep, "rfc2217://[::1]:4000", &d) == PF_OK);
    CHECK_EQ(ep.kind, PF_ENDPOINT_RFC2217);
    CHECK(!strcmp(ep.host, "::1") && ep.port_number == 4000);
    REQUIRE(pf_endpoint_parse(&ep, "tcp-listen://65535", &d) == PF_OK);
    CHECK_EQ(ep.kind, PF_ENDPOINT_LISTEN);
    CHECK_EQ(ep.port_number, 65535);
    REQUIRE(pf_endpoint_parse(&ep, "/dev/null", &d) == PF_OK);
    CHECK_EQ(ep.kind, PF_ENDPOINT_PATH);
    char missing[96];
    snprintf(missing, sizeof missing, "%s/none", dir);
    REQUIRE(pf_endpoint_parse(&ep, missing, &d) == PF_OK);
    CHECK_EQ(ep.kind, PF_ENDPOINT_PTY); /* a path that does not exist becomes a new pty */
    REQUIRE(pf_endpoint_parse(&ep, "pty:/dev/null", &d) == PF_OK);
    CHECK_EQ(ep.kind, PF_ENDPOINT_PTY);
    CHECK(!strcmp(ep.path, "/dev/null"));

    static const struct {
        const char *spec, *why;
    } bad[] = {
        {"tcp://:2217", "missing host"},           {"tcp://h:0", "outside 1..65535"},
        {"tcp://h:70000", "outside 1..65535"},     {"tcp://h:22x", "not a decimal number"},
        {"tcp://h", "missing ':PORT'"},            {"tcp://::1:80", "IPv6 address in brackets"},
        {"tcp://[::1:80", "missing ']'"},          {"tcp://h:80/x", "nothing after the port"},
        {"tcp-listen://0", "outside 1..65535"},    {"telnet://h:23", "unknown scheme"},
        {"pty:", "empty path"},                    {"", "empty port spec"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        d.text[0] = 0;
        CHECK_EQ(pf_endpoint_parse(&ep, bad[i].spec, &d), PF_ERR_ARG);
        CHECK_STR_CONTAINS(d.text, bad[i].why);
    }
    /* the check alone touches no file: a missing path is fine there */
    CHECK_EQ(pf_endpoint_check(missing, &d), PF_OK);
    CHECK_EQ(pf_endpoint_check("tcp://h:0", &d), PF_ERR_ARG);
}

static void test_rates(void)
{
    CHECK_EQ(pf_endpoint_baud_to_speed(115200), B115200);
    CHECK_EQ(pf_endpoint_baud_to_speed(921600), B921600);
    CHECK_EQ(pf_endpoint_speed_to_baud(B2000000), 2000000);
    CHECK_EQ(pf_endpoint_baud_to_speed(123456), 0);
    CHECK_EQ(pf_endpoint_speed_to_baud(0xFFFFu), 0);
    static const uint32_t rates[] = {50, 300, 1200, 9600, 57600, 230400, 500000, 1000000, 1500000, 3000000, 4000000};
    for (size_t i = 0; i < sizeof rates / sizeof rates[0]; i++)
        CHECK_EQ(pf_endpoint_speed_to_baud(pf_endpoint_baud_to_speed(rates[i])), rates[i]);
}

static void test_pty(void)
{
    char link[96], slave[64], target[64];
    pf_diag d = {0};
    snprintf(link, sizeof link, "%s/dev", dir);
    /* a stale link from an earlier run is replaced */
    REQUIRE(symlink("/nonexistent/pts", link) == 0);
    int m = -1;
    REQUIRE(pf_endpoint_pty_create(link, "pty:test", 5, 57600, PF_FRAME_8N1, &m, slave, sizeof slave, &d) == PF_OK);
    ssize_t n = readlink(link, target, sizeof target - 1);
    REQUIRE(n > 0);
    target[n] = 0;
    CHECK(!strcmp(target, slave));
    CHECK(fcntl(m, F_GETFL) & O_NONBLOCK);
    CHECK(fcntl(m, F_GETFD) & FD_CLOEXEC);
    /* the slave is raw, with the asked read timeout and rate, for tools that skip port setup */
    int s = -1, rc = pf_endpoint_tty_open(link, &s, &d);
    REQUIRE(rc == PF_OK);
    struct termios t;
    REQUIRE(tcgetattr(s, &t) == 0);
    CHECK(!(t.c_lflag & (ICANON | ECHO)));
    CHECK_EQ(t.c_cc[VMIN], 0);
    CHECK_EQ(t.c_cc[VTIME], 5);
    CHECK_EQ(pf_endpoint_tty_rate(s), 57600);
    CHECK_EQ(pf_endpoint_tty_rate(m), 57600); /* through the master: the slave's termios */
    CHECK_EQ(pf_endpoint_set_rate(s, 230400), PF_OK);
    CHECK_EQ(pf_endpoint_tty_rate(m), 230400);
    CHECK_EQ(pf_endpoint_set_rate(s, 123456), PF_ERR_UNSUPPORTED);
    /* bytes pass both ways */
    CHECK_EQ(write(s, "ab", 2), 2);
    char buf[8];
    struct pollfd p = {m, POLLIN, 0};
    CHECK(poll(&p, 1, 2000) == 1 && read(m, buf, sizeof buf) == 2 && !memcmp(buf, "ab", 2));
    close(s);
    /* the link goes only while it still points at our slave */
    pf_endpoint_pty_unlink(link, "/dev/pts/nothing");
    CHECK(access(link, F_OK) == 0);
    pf_endpoint_pty_unlink(link, slave);
    CHECK(access(link, F_OK) != 0);
    close(m);

    /* a regular file is never replaced */
    char file[96];
    snprintf(file, sizeof file, "%s/file", dir);
    FILE *f = fopen(file, "w");
    REQUIRE(f);
    fclose(f);
    d.text[0] = 0;
    CHECK_EQ(pf_endpoint_pty_create(file, "pty:file", 0, 0, PF_FRAME_8N1, &m, slave, sizeof slave, &d), PF_ERR_ARG);
    CHECK_STR_CONTAINS(d.text, "not a symlink");
    unlink(file);
    /* not a terminal */
    d.text[0] = 0;
    CHECK_EQ(pf_endpoint_tty_open("/dev/null", &s, &d), PF_ERR_IO);
    CHECK_STR_CONTAINS(d.text, "not a serial port or pty");
    CHECK_EQ(pf_endpoint_tty_open("/nonexistent/tty", &s, &d), PF_ERR_IO);
    CHECK_STR_CONTAINS(d.text, "is the board plugged in?");
}

static void test_tcp(void)
{
    pf_diag d = {0};
    int free = pf_test_free_port();
    REQUIRE(free > 0);
    uint16_t port = (uint16_t)free;
    char spec[48], num[8];
    snprintf(spec, sizeof spec, "tcp-listen://%u", (unsigned)port);
    snprintf(num, sizeof num, "%u", (unsigned)port);
    int l = -1;
    REQUIRE(pf_endpoint_listen(port, 1, spec, &l, &d) == PF_OK);
    for (int wait = 1; wait >= 0; wait--) {
        int c = -1, pending = -1;
        REQUIRE(pf_endpoint_tcp_connect("127.0.0.1", num, spec, wait, &c, &pending, &d) == PF_OK);
        if (wait)
            CHECK_EQ(pending, 0);
        else if (pending)
            CHECK_EQ(pf_endpoint_connect_finish(c, 2000), 1);
        struct pollfd p = {l, POLLIN, 0};
        REQUIRE(poll(&p, 1, 2000) == 1);
        int a = pf_endpoint_accept(l);
        REQUIRE(a >= 0);
        CHECK(fcntl(a, F_GETFL) & O_NONBLOCK);
        CHECK_EQ(send(c, "x", 1, 0), 1);
        char b = 0;
        struct pollfd q = {a, POLLIN, 0};
        CHECK(poll(&q, 1, 2000) == 1 && recv(a, &b, 1, 0) == 1 && b == 'x');
        close(a);
        close(c);
    }
    close(l);
    /* nobody listening: the hint names the likely cause */
    d.text[0] = 0;
    int c = -1;
    CHECK_EQ(pf_endpoint_tcp_connect("127.0.0.1", num, "tcp://127.0.0.1:x", 1, &c, NULL, &d), PF_ERR_IO);
    CHECK_STR_CONTAINS(d.text, "is the bridge or simulator listening?");
}

int main(void)
{
    snprintf(dir, sizeof dir, "/tmp/pf-endpoint-XXXXXX");
    if (!mkdtemp(dir)) {
        perror("mkdtemp");
        return 1;
    }
    RUN(test_grammar);
    RUN(test_rates);
    RUN(test_pty);
    RUN(test_tcp);
    char p[96];
    snprintf(p, sizeof p, "%s/dev", dir);
    unlink(p);
    rmdir(dir);
    return pf_test_summary();
}
