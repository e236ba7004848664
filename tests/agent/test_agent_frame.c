/* The agent frame codec: round trips, escapes at every position, resync
 * after garbage, corrupt frames dropped, split input. */
#include <stdlib.h>

#include "peerflash/pf_agent_proto.h"
#include "peerflash/pf_bytes.h"
#include "pf_test.h"

static uint32_t rs = 12345;
static uint32_t rnd(void)
{
    rs ^= rs << 13;
    rs ^= rs >> 17;
    rs ^= rs << 5;
    return rs;
}

static void test_round_trip(void)
{
    static uint8_t payload[PF_AP_MAX_PAYLOAD], wire[PF_AP_WIRE_MAX(PF_AP_MAX_PAYLOAD)],
        buf[PF_AP_MAX_PAYLOAD + PF_AP_OVERHEAD];
    for (int k = 0; k < 300; k++) {
        size_t len = k < 10 ? (size_t)k : rnd() % (k % 3 ? 40 : PF_AP_MAX_PAYLOAD + 1);
        for (size_t i = 0; i < len; i++) /* many delimiters and escapes, at the edges too */
            payload[i] = (uint8_t)(rnd() % 4 == 0 ? 0xC0 : rnd() % 4 == 0 ? 0xDB : rnd());
        uint8_t type = (uint8_t)rnd(), seq = (uint8_t)rnd();
        size_t w = pf_ap_encode(wire, sizeof wire, type, seq, payload, len);
        REQUIRE(w >= len + PF_AP_OVERHEAD + 2);
        CHECK_EQ(wire[0], 0xC0);
        CHECK_EQ(wire[w - 1], 0xC0);
        int inner_c0 = 0;
        for (size_t i = 1; i + 1 < w; i++)
            inner_c0 += wire[i] == 0xC0;
        CHECK_EQ(inner_c0, 0);
        pf_ap_decoder d;
        pf_ap_decoder_init(&d, buf, sizeof buf);
        pf_ap_frame f;
        int got = 0;
        size_t at = 0;
        /* byte by byte for some, whole for others */
        while (!got && at < w)
            at += pf_ap_decode(&d, wire + at, k % 2 ? 1 : w - at, &f, &got);
        REQUIRE(got);
        CHECK_EQ(at, w);
        CHECK_EQ(f.type, type);
        CHECK_EQ(f.seq, seq);
        CHECK_EQ(f.len, len);
        CHECK(memcmp(f.payload, payload, len) == 0);
    }
    /* too small an output buffer */
    CHECK_EQ(pf_ap_encode(wire, 10, 1, 1, payload, 100), 0);
    CHECK_EQ(pf_ap_encode(wire, sizeof wire, 1, 1, payload, PF_AP_MAX_PAYLOAD + 1), 0);
}

static void test_resync_and_corruption(void)
{
    uint8_t wire[600], stream[2000], buf[300];
    uint8_t payload[100];
    for (int i = 0; i < 100; i++)
        payload[i] = (uint8_t)i;
    size_t at = 0;
    /* garbage, frame 1, frame 2 with a flipped bit, frame 3 */
    for (int i = 0; i < 50; i++)
        stream[at++] = (uint8_t)(rnd() | 1);
    size_t w = pf_ap_encode(wire, sizeof wire, PF_AP_DATA, 1, payload, 100);
    memcpy(stream + at, wire, w);
    at += w;
    w = pf_ap_encode(wire, sizeof wire, PF_AP_DATA, 2, payload, 100);
    wire[40] ^= 0x04;
    memcpy(stream + at, wire, w);
    at += w;
    w = pf_ap_encode(wire, sizeof wire, PF_AP_DATA, 3, payload, 50);
    memcpy(stream + at, wire, w);
    at += w;
    /* a frame truncated by a cut link, then a good one */
    w = pf_ap_encode(wire, sizeof wire, PF_AP_DATA, 4, payload, 90);
    memcpy(stream + at, wire, w / 2);
    at += w / 2;
    w = pf_ap_encode(wire, sizeof wire, PF_AP_END, 5, payload, 1);
    memcpy(stream + at, wire, w);
    at += w;

    pf_ap_decoder d;
    pf_ap_decoder_init(&d, buf, sizeof buf);
    uint8_t seqs[8];
    int n = 0;
    for (size_t p = 0; p < at;) {
        pf_ap_frame f;
        int got;
        p += pf_ap_decode(&d, stream + p, at - p, &f, &got);
        if (got && n < 8)
            seqs[n++] = f.seq;
    }
    CHECK_EQ(n, 3);
    CHECK_EQ(seqs[0], 1);
    CHECK_EQ(seqs[1], 3);
    CHECK_EQ(seqs[2], 5);
    CHECK(d.dropped >= 3); /* garbage, bad CRC, truncated */

    /* a frame larger than the buffer is dropped, the next one decodes */
    uint8_t big[400];
    memset(big, 0x55, sizeof big);
    size_t w1 = pf_ap_encode(wire, sizeof wire, 9, 9, big, 295); /* 303-byte body, 300-byte buffer */
    size_t w2 = pf_ap_encode(wire + w1, sizeof wire - w1, 7, 7, big, 10);
    pf_ap_frame f;
    int got;
    pf_ap_decoder_init(&d, buf, sizeof buf);
    size_t p = pf_ap_decode(&d, wire, w1 + w2, &f, &got);
    CHECK(got);
    CHECK_EQ(f.seq, 7);
    CHECK_EQ(p, w1 + w2);
    /* bad escape */
    uint8_t esc[] = {0xC0, 0x01, 0xDB, 0x00, 0xC0};
    pf_ap_decoder_init(&d, buf, sizeof buf);
    pf_ap_decode(&d, esc, sizeof esc, &f, &got);
    CHECK(!got);
    CHECK_EQ(d.dropped, 1);
    /* parse alone: length field disagreeing with the body */
    uint8_t body[12] = {1, 2, 5, 0};
    CHECK_EQ(pf_ap_parse(body, sizeof body, &f), 0);
}

int main(void)
{
    RUN(test_round_trip);
    RUN(test_resync_and_corruption);
    return pf_test_summary();
}
