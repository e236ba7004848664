/* The telnet byte layer and RFC 2217 messages (src/codec/telnet.c): 0xFF in
 * data both ways, commands and IAC IAC split at every byte, subnegotiations
 * with doubled 0xFF, the option answers, and the COM-PORT messages' bytes
 * (RFC 2217 section 3). */
#include <string.h>

#include "codec/telnet.h"
#include "pf_test.h"

/* Feeds in[] in pieces of `step` bytes; collects data and up to 8 events. */
typedef struct result {
    uint8_t data[256];
    size_t len;
    pf_telnet_event ev[8];
    uint8_t sb[8][PF_TELNET_SB_MAX];
    size_t nev;
} result;

static void feed(const uint8_t *in, size_t n, size_t step, result *r)
{
    memset(r, 0, sizeof *r);
    pf_telnet t;
    pf_telnet_init(&t);
    for (size_t at = 0; at < n;) {
        size_t piece = n - at < step ? n - at : step, off = 0;
        while (off < piece) {
            pf_telnet_event ev;
            size_t got;
            off += pf_telnet_decode(&t, in + at + off, piece - off, r->data + r->len, &got, &ev);
            r->len += got;
            if (ev.kind != PF_TELNET_NONE && r->nev < 8) {
                if (ev.kind == PF_TELNET_SUBNEG) {
                    memcpy(r->sb[r->nev], ev.payload, ev.len);
                    ev.payload = r->sb[r->nev];
                }
                r->ev[r->nev++] = ev;
            }
        }
        at += piece;
    }
}

static void test_data_with_iac_every_split(void)
{
    /* data: 41 FF 42 FF FF 43 -> on the wire 41 FF FF 42 FF FF FF FF 43 */
    const uint8_t data[] = {0x41, 0xFF, 0x42, 0xFF, 0xFF, 0x43};
    uint8_t wire[16];
    size_t used;
    size_t n = pf_telnet_escape(data, sizeof data, wire, sizeof wire, &used);
    const uint8_t expect[] = {0x41, 0xFF, 0xFF, 0x42, 0xFF, 0xFF, 0xFF, 0xFF, 0x43};
    REQUIRE(n == sizeof expect);
    CHECK_EQ(used, sizeof data);
    CHECK(memcmp(wire, expect, n) == 0);
    for (size_t step = 1; step <= n; step++) {
        result r;
        feed(wire, n, step, &r);
        CHECK_EQ(r.len, sizeof data);
        CHECK(memcmp(r.data, data, sizeof data) == 0);
        CHECK_EQ(r.nev, 0);
    }
}

static void test_escape_stops_at_whole_bytes(void)
{
    const uint8_t data[] = {0x01, 0xFF, 0x02};
    uint8_t out[2];
    size_t used;
    /* 01 fits, FF needs two bytes and only one is left: stop before it */
    CHECK_EQ(pf_telnet_escape(data, 3, out, 2, &used), 1);
    CHECK_EQ(used, 1);
}

static void test_negotiation_and_command_split(void)
{
    /* x IAC DO 44 y IAC NOP z IAC WILL 0 */
    const uint8_t in[] = {'x', 0xFF, 0xFD, 44, 'y', 0xFF, 241, 'z', 0xFF, 0xFB, 0};
    for (size_t step = 1; step <= sizeof in; step++) {
        result r;
        feed(in, sizeof in, step, &r);
        CHECK_EQ(r.len, 3);
        CHECK(memcmp(r.data, "xyz", 3) == 0);
        REQUIRE(r.nev == 3);
        CHECK_EQ(r.ev[0].kind, PF_TELNET_NEGOTIATE);
        CHECK_EQ(r.ev[0].verb, PF_TELNET_DO);
        CHECK_EQ(r.ev[0].option, 44);
        CHECK_EQ(r.ev[1].kind, PF_TELNET_COMMAND);
        CHECK_EQ(r.ev[1].verb, 241);
        CHECK_EQ(r.ev[2].kind, PF_TELNET_NEGOTIATE);
        CHECK_EQ(r.ev[2].verb, PF_TELNET_WILL);
        CHECK_EQ(r.ev[2].option, 0);
    }
}

static void test_subnegotiation_with_ff_value(void)
{
    /* the server's answer to SET-BAUDRATE 0x0001C2FF (115455): FF doubled inside SB */
    uint8_t msg[PF_RFC2217_MSG_MAX];
    size_t n = pf_rfc2217_message(msg, PF_RFC2217_SET_BAUDRATE + PF_RFC2217_SERVER_OFFSET, 0x0001C2FFu, 4);
    const uint8_t expect[] = {0xFF, 0xFA, 44, 101, 0x00, 0x01, 0xC2, 0xFF, 0xFF, 0xFF, 0xF0};
    REQUIRE(n == sizeof expect);
    CHECK(memcmp(msg, expect, n) == 0);
    uint8_t in[32];
    memcpy(in, "ab", 2);
    memcpy(in + 2, msg, n);
    in[2 + n] = 0xFF;
    in[3 + n] = 0xFF; /* a data 0xFF right after */
    for (size_t step = 1; step <= n + 4; step++) {
        result r;
        feed(in, n + 4, step, &r);
        CHECK_EQ(r.len, 3);
        CHECK(r.data[0] == 'a' && r.data[1] == 'b' && r.data[2] == 0xFF);
        REQUIRE(r.nev == 1);
        CHECK_EQ(r.ev[0].kind, PF_TELNET_SUBNEG);
        CHECK_EQ(r.ev[0].option, 44);
        uint8_t cmd = 0;
        uint32_t value = 0;
        CHECK_EQ(pf_rfc2217_parse(&r.ev[0], &cmd, &value), 0);
        CHECK_EQ(cmd, 101);
        CHECK_EQ(value, 0x0001C2FFu);
    }
}

static void test_rfc2217_messages(void)
{
    uint8_t m[PF_RFC2217_MSG_MAX];
    /* SET-BAUDRATE 115200 = 0x0001C200 */
    const uint8_t baud[] = {0xFF, 0xFA, 44, 1, 0x00, 0x01, 0xC2, 0x00, 0xFF, 0xF0};
    CHECK_EQ(pf_rfc2217_message(m, PF_RFC2217_SET_BAUDRATE, 115200, 4), sizeof baud);
    CHECK(memcmp(m, baud, sizeof baud) == 0);
    /* SET-PARITY EVEN (3), SET-CONTROL DTR ON (8) */
    const uint8_t par[] = {0xFF, 0xFA, 44, 3, 3, 0xFF, 0xF0};
    CHECK_EQ(pf_rfc2217_message(m, PF_RFC2217_SET_PARITY, PF_RFC2217_PARITY_EVEN, 1), sizeof par);
    CHECK(memcmp(m, par, sizeof par) == 0);
    const uint8_t dtr[] = {0xFF, 0xFA, 44, 5, 8, 0xFF, 0xF0};
    CHECK_EQ(pf_rfc2217_message(m, PF_RFC2217_SET_CONTROL, PF_RFC2217_CONTROL_DTR_ON, 1), sizeof dtr);
    CHECK(memcmp(m, dtr, sizeof dtr) == 0);
    /* the longest: every value byte 0xFF */
    CHECK_EQ(pf_rfc2217_message(m, 1, 0xFFFFFFFFu, 4), PF_RFC2217_MSG_MAX);
}

static void test_long_subnegotiation_truncated(void)
{
    uint8_t in[PF_TELNET_SB_MAX + 16];
    size_t n = 0;
    in[n++] = 0xFF;
    in[n++] = 0xFA;
    in[n++] = 44;
    for (int i = 0; i < PF_TELNET_SB_MAX + 8; i++)
        in[n++] = 'S';
    in[n++] = 0xFF;
    in[n++] = 0xF0;
    in[n++] = 'd';
    result r;
    feed(in, n, 5, &r);
    REQUIRE(r.nev == 1);
    CHECK(r.ev[0].truncated);
    CHECK_EQ(r.ev[0].len, PF_TELNET_SB_MAX);
    CHECK_EQ(r.len, 1);
    CHECK_EQ(r.data[0], 'd');
}

static void test_option_answers_do_not_loop(void)
{
    pf_telnet_options o;
    uint8_t hello[PF_TELNET_HELLO_MAX], out[3];
    CHECK_EQ(pf_telnet_client_hello(&o, hello), 15);
    CHECK(hello[0] == 0xFF && hello[1] == PF_TELNET_WILL && hello[2] == 44);
    /* the server agrees to what we asked: no answer (no loop) */
    CHECK_EQ(pf_telnet_answer(&o, PF_TELNET_DO, 44, out), 0);
    CHECK_EQ(pf_telnet_answer(&o, PF_TELNET_WILL, PF_TELNET_OPT_BINARY, out), 0);
    /* an option we do not do (ECHO = 1): refused, every time it is asked */
    CHECK_EQ(pf_telnet_answer(&o, PF_TELNET_WILL, 1, out), 3);
    CHECK(out[1] == PF_TELNET_DONT && out[2] == 1);
    CHECK_EQ(pf_telnet_answer(&o, PF_TELNET_DO, 24, out), 3);
    CHECK(out[1] == PF_TELNET_WONT && out[2] == 24);
    /* the server turns BINARY off: acknowledged once, then silence */
    CHECK_EQ(pf_telnet_answer(&o, PF_TELNET_WONT, PF_TELNET_OPT_BINARY, out), 3);
    CHECK(out[1] == PF_TELNET_DONT && out[2] == 0);
    CHECK_EQ(pf_telnet_answer(&o, PF_TELNET_WONT, PF_TELNET_OPT_BINARY, out), 0);
    /* and on again */
    CHECK_EQ(pf_telnet_answer(&o, PF_TELNET_WILL, PF_TELNET_OPT_BINARY, out), 3);
    CHECK(out[1] == PF_TELNET_DO && out[2] == 0);
    /* refusing COM-PORT: we say WONT once */
    CHECK_EQ(pf_telnet_answer(&o, PF_TELNET_DONT, 44, out), 3);
    CHECK(out[1] == PF_TELNET_WONT && out[2] == 44);
    CHECK_EQ(pf_telnet_answer(&o, PF_TELNET_DONT, 44, out), 0);
}

static void test_server_role_accepts_com_port(void)
{
    pf_telnet_options o;
    uint8_t out[3];
    pf_telnet_server_init(&o);
    /* pyserial's and our client's opening requests */
    CHECK_EQ(pf_telnet_answer(&o, PF_TELNET_WILL, PF_TELNET_OPT_COM_PORT, out), 3);
    CHECK(out[1] == PF_TELNET_DO && out[2] == 44);
    CHECK_EQ(pf_telnet_answer(&o, PF_TELNET_WILL, PF_TELNET_OPT_COM_PORT, out), 0); /* no loop */
    CHECK_EQ(pf_telnet_answer(&o, PF_TELNET_DO, PF_TELNET_OPT_BINARY, out), 3);
    CHECK(out[1] == PF_TELNET_WILL && out[2] == 0);
    /* the server does not do the client's half of COM-PORT, nor ECHO */
    CHECK_EQ(pf_telnet_answer(&o, PF_TELNET_DO, PF_TELNET_OPT_COM_PORT, out), 3);
    CHECK(out[1] == PF_TELNET_WONT && out[2] == 44);
    CHECK_EQ(pf_telnet_answer(&o, PF_TELNET_DO, 1, out), 3);
    CHECK(out[1] == PF_TELNET_WONT && out[2] == 1);
}

int main(void)
{
    RUN(test_data_with_iac_every_split);
    RUN(test_escape_stops_at_whole_bytes);
    RUN(test_negotiation_and_command_split);
    RUN(test_subnegotiation_with_ff_value);
    RUN(test_rfc2217_messages);
    RUN(test_long_subnegotiation_truncated);
    RUN(test_option_answers_do_not_loop);
    RUN(test_server_role_accepts_com_port);
    return pf_test_summary();
}
