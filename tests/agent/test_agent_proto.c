/* The agent's protocol engine over an in-memory link: requests in, answers
 * out, no timing involved. Covers the edge cases a real link rarely shows:
 * repeated END and RESET, DATA without BEGIN, HASH in the middle of a
 * transfer, unknown requests, garbage between frames; delta: a wrong base
 * refused at BEGIN before any flash operation, a patch applied byte-exact,
 * a corrupt patch refused and never pending. */
#include "agent_fixture.h"
#include "peerflash/pf_agent_proto.h"
#include "peerflash/pf_delta.h"
#include "peerflash/pf_bytes.h"
#include "pf_test.h"

typedef struct mem_link {
    uint8_t in[65536];
    size_t in_len, in_pos;
    uint8_t out[65536];
    size_t out_len;
} mem_link;

static int ml_read(void *ctx, uint8_t *buf, size_t n, uint32_t t)
{
    (void)t;
    mem_link *m = ctx;
    size_t k = m->in_len - m->in_pos < n ? m->in_len - m->in_pos : n;
    memcpy(buf, m->in + m->in_pos, k);
    m->in_pos += k;
    return (int)k;
}

static int ml_write(void *ctx, const uint8_t *buf, size_t n)
{
    mem_link *m = ctx;
    if (m->out_len + n > sizeof m->out)
        return PF_ERR_IO;
    memcpy(m->out + m->out_len, buf, n);
    m->out_len += n;
    return (int)n;
}

static uint32_t ml_now(void *ctx)
{
    (void)ctx;
    return 0;
}

static fx F;
static mem_link L;
static pf_port port;
static uint8_t rxbuf[1100], txbuf[512];
static uint8_t seqno, begin_seq;

static void req(uint8_t type, const uint8_t *p, size_t n)
{
    L.in_len = L.in_pos = 0;
    L.out_len = 0;
    L.in_len = pf_ap_encode(L.in, sizeof L.in, type, ++seqno, p, n);
}

/* Runs the engine over the queued input; returns the first answer frame. */
static int poll_answer(pf_ap_frame *f, int *reboot, uint8_t *keep, size_t keep_cap)
{
    int rb = 0;
    while (L.in_pos < L.in_len)
        if (pf_agent_poll(&F.agent, 0, &rb) < 0)
            return -1;
    if (reboot)
        *reboot = rb;
    static uint8_t dbuf[1100];
    pf_ap_decoder d;
    pf_ap_decoder_init(&d, dbuf, sizeof dbuf);
    int got = 0;
    pf_ap_decode(&d, L.out, L.out_len, f, &got);
    if (got && keep) { /* copy out: the decoder buffer is static */
        size_t n = f->len < keep_cap ? f->len : keep_cap;
        memcpy(keep, f->payload, n);
        f->payload = keep;
    }
    return got;
}

static void setup(void)
{
    pf_nor_free(&F.nor);
    pf_nor_init(&F.nor, FX_FLASH, 1, 8, FX_E, 0xFF, NULL);
    memset(&F.diag, 0, sizeof F.diag);
    fx_open_boot(&F, 1);
    port.ctx = &L;
    port.read = ml_read;
    port.write = ml_write;
    port.now_ms = ml_now;
    pf_agent_config c = PF_AGENT_CONFIG_DEFAULT();
    c.boot = &F.boot;
    c.port = &port;
    c.wbuf = F.wbuf;
    c.wbuf_size = sizeof F.wbuf;
    c.rxbuf = rxbuf;
    c.rxbuf_size = sizeof rxbuf;
    c.txbuf = txbuf;
    c.txbuf_size = sizeof txbuf;
    c.diag = &F.diag;
    pf_agent_init(&F.agent, &c);
}

static void send_all(const fx_image *im, uint32_t from, uint32_t to, int with_hash_in_middle)
{
    uint8_t p[1028];
    pf_ap_frame f;
    uint8_t keep[200];
    for (uint32_t o = from; o < to;) {
        uint32_t n = to - o < 300 ? to - o : 300;
        pf_put_le32(p, o);
        memcpy(p + 4, im->data + o, n);
        req(PF_AP_DATA, p, n + 4);
        REQUIRE(poll_answer(&f, NULL, keep, sizeof keep) == 1);
        REQUIRE(f.type == PF_AP_ACK && f.payload[0] == 0);
        REQUIRE(pf_get_le32(f.payload + 1) == o + n);
        REQUIRE(f.payload[5] == begin_seq); /* the session: the BEGIN's seq */
        o += n;
        if (with_hash_in_middle && o == 600) {
            uint8_t h[9] = {0};
            pf_put_le32(h + 5, 4096);
            req(PF_AP_HASH, h, sizeof h);
            REQUIRE(poll_answer(&f, NULL, keep, sizeof keep) == 1);
            CHECK_EQ(f.payload[0], 0);
            CHECK_EQ(f.len, 33);
        }
    }
}

static void test_engine(void)
{
    fx_image a, b;
    REQUIRE(fx_make_image(&a, F.key, 1, 0, 6000, 1) == 0);
    REQUIRE(fx_make_image(&b, F.key, 2, 0, 9000, 2) == 0);
    setup();
    fx_factory(&F, &a);
    pf_ap_frame f;
    uint8_t keep[200];

    /* HELLO, with garbage in front */
    uint8_t hp[3] = {1, 0, 2};
    req(PF_AP_HELLO, hp, 3);
    memmove(L.in + 5, L.in, L.in_len);
    memcpy(L.in, "\x01\xdb\x55\xc0\x99", 5);
    L.in_len += 5;
    REQUIRE(poll_answer(&f, NULL, keep, sizeof keep) == 1);
    CHECK_EQ(f.type, PF_AP_HELLO | PF_AP_RESPONSE);
    CHECK_EQ(f.len, 1 + PF_AP_HELLO_LEN);
    CHECK_EQ(f.payload[1], PF_AP_VERSION);
    CHECK_EQ(pf_get_le16(f.payload + 2), sizeof rxbuf - PF_AP_OVERHEAD);
    CHECK_EQ(f.payload[6], PF_BOOT_IDLE);
    CHECK_EQ(f.payload[24], 1); /* running version 1.x */
    CHECK(f.payload[5] & PF_AP_CAP_SIGNED);

    /* DATA without BEGIN: refused with a reason */
    uint8_t d0[8] = {0};
    req(PF_AP_DATA, d0, sizeof d0);
    REQUIRE(poll_answer(&f, NULL, keep, sizeof keep) == 1);
    CHECK_EQ(f.type, PF_AP_ACK);
    CHECK_EQ(f.payload[0], (uint8_t)-PF_ERR_STATE);
    CHECK(f.len > 6);
    CHECK_EQ(f.payload[5], 0); /* no session: BEGIN first */

    /* BEGIN, DATA with a HASH in the middle, END twice */
    uint8_t bp[37];
    pf_put_le32(bp, (uint32_t)b.len);
    bp[4] = 0;
    memcpy(bp + 5, b.file_hash, 32);
    req(PF_AP_BEGIN, bp, sizeof bp);
    begin_seq = seqno;
    REQUIRE(poll_answer(&f, NULL, keep, sizeof keep) == 1);
    CHECK_EQ(f.payload[0], 0);
    CHECK_EQ(pf_get_le32(f.payload + 1), 0);
    send_all(&b, 0, (uint32_t)b.len, 1);
    uint8_t fl = 0;
    req(PF_AP_END, &fl, 1);
    REQUIRE(poll_answer(&f, NULL, keep, sizeof keep) == 1);
    CHECK_EQ(f.payload[0], 0);
    req(PF_AP_END, &fl, 1);
    REQUIRE(poll_answer(&f, NULL, keep, sizeof keep) == 1);
    CHECK_EQ(f.payload[0], 0); /* idempotent */
    CHECK_EQ(F.boot.rec.state, PF_BOOT_PENDING);

    /* RESET guarded by the expected state */
    uint8_t ex = PF_BOOT_TRIAL;
    int rb = 0;
    req(PF_AP_RESET, &ex, 1);
    REQUIRE(poll_answer(&f, &rb, keep, sizeof keep) == 1);
    CHECK_EQ(f.payload[0], (uint8_t)-PF_ERR_STATE);
    CHECK_EQ(rb, 0);
    ex = PF_BOOT_PENDING;
    req(PF_AP_RESET, &ex, 1);
    REQUIRE(poll_answer(&f, &rb, keep, sizeof keep) == 1);
    CHECK_EQ(f.payload[0], 0);
    CHECK_EQ(rb, 1);

    /* the reset: bootloader swaps, a repeated RESET(pending) is refused */
    pf_boot_result res;
    REQUIRE(fx_open_boot(&F, 1) == PF_OK);
    REQUIRE(pf_boot_run(&F.boot, &res) == PF_OK);
    CHECK_EQ(res.trial, 1);
    req(PF_AP_RESET, &ex, 1);
    REQUIRE(poll_answer(&f, &rb, keep, sizeof keep) == 1);
    CHECK_EQ(f.payload[0], (uint8_t)-PF_ERR_STATE);
    CHECK_EQ(rb, 0);
    /* CONFIRM, twice */
    req(PF_AP_CONFIRM, NULL, 0);
    REQUIRE(poll_answer(&f, NULL, keep, sizeof keep) == 1);
    CHECK_EQ(f.payload[0], 0);
    req(PF_AP_CONFIRM, NULL, 0);
    REQUIRE(poll_answer(&f, NULL, keep, sizeof keep) == 1);
    CHECK_EQ(f.payload[0], 0);
    CHECK_EQ(F.boot.rec.state, PF_BOOT_IDLE);
    CHECK(fx_slot_is(&F, FX_PRIMARY, &b));

    /* HASH of the running image equals its file hash; out of range refused */
    uint8_t hq[9] = {0};
    pf_put_le32(hq + 5, (uint32_t)b.len);
    req(PF_AP_HASH, hq, sizeof hq);
    REQUIRE(poll_answer(&f, NULL, keep, sizeof keep) == 1);
    CHECK_EQ(f.payload[0], 0);
    CHECK(memcmp(f.payload + 1, b.file_hash, 32) == 0);
    pf_put_le32(hq + 5, FX_SLOT + 1);
    req(PF_AP_HASH, hq, sizeof hq);
    REQUIRE(poll_answer(&f, NULL, keep, sizeof keep) == 1);
    CHECK_EQ(f.payload[0], (uint8_t)-PF_ERR_RANGE);

    /* unknown request, short BEGIN */
    req(0x55, NULL, 0);
    REQUIRE(poll_answer(&f, NULL, keep, sizeof keep) == 1);
    CHECK_EQ(f.type, 0x55 | PF_AP_RESPONSE);
    CHECK_EQ(f.payload[0], (uint8_t)-PF_ERR_UNSUPPORTED);
    req(PF_AP_BEGIN, bp, 10);
    REQUIRE(poll_answer(&f, NULL, keep, sizeof keep) == 1);
    CHECK_EQ(f.payload[0], (uint8_t)-PF_ERR_PROTOCOL);
    free(a.data);
    free(b.data);
}

/* A BEGIN with the delta flag for `im` against base (size, hash). */
static void begin_delta(const fx_image *im, uint32_t base_size, const uint8_t base_hash[32])
{
    uint8_t bp[PF_AP_BEGIN_DELTA_LEN];
    pf_put_le32(bp, (uint32_t)im->len);
    bp[4] = PF_AP_F_DELTA;
    memcpy(bp + 5, im->file_hash, 32);
    pf_put_le32(bp + 37, base_size);
    memcpy(bp + 41, base_hash, 32);
    req(PF_AP_BEGIN, bp, sizeof bp);
    begin_seq = seqno;
}

/* DATA frames of a patch body; returns the first non-zero ACK status. */
static int send_body(const uint8_t *body, uint32_t n)
{
    uint8_t p[1028], keep[200];
    pf_ap_frame f;
    for (uint32_t o = 0; o < n;) {
        uint32_t k = n - o < 700 ? n - o : 700;
        pf_put_le32(p, o);
        memcpy(p + 4, body + o, k);
        req(PF_AP_DATA, p, k + 4);
        if (poll_answer(&f, NULL, keep, sizeof keep) != 1 || f.type != PF_AP_ACK)
            return -1;
        if (f.payload[0])
            return f.payload[0];
        if (pf_get_le32(f.payload + 1) != o + k)
            return -2;
        o += k;
    }
    return 0;
}

static void test_delta_engine(void)
{
    fx_image a, b;
    REQUIRE(fx_make_image(&a, F.key, 1, 0, 9000, 1) == 0);
    /* b: a's body with a changed stretch, re-signed as 2.0 */
    uint8_t *body = malloc(9000);
    memcpy(body, a.data + 32, 9000);
    memset(body + 3000, 0x42, 100);
    pf_sign_params sp = PF_SIGN_PARAMS_DEFAULT();
    sp.version.major = 2;
    sp.key_pem = F.key;
    b.data = malloc(pf_sign_image_size_max(&sp, 9000));
    int n = pf_sign_image(&sp, body, 9000, b.data, pf_sign_image_size_max(&sp, 9000), NULL);
    free(body);
    REQUIRE(n > 0);
    b.len = (size_t)n;
    fx_file_hash(&b);
    pf_delta patch;
    REQUIRE(pf_delta_make(a.data, (uint32_t)a.len, b.data, (uint32_t)b.len, &patch, NULL) == 0);

    setup();
    fx_factory(&F, &a);
    pf_ap_frame f;
    uint8_t keep[200];
    uint8_t hp[3] = {1, 0, 2};
    req(PF_AP_HELLO, hp, 3);
    REQUIRE(poll_answer(&f, NULL, keep, sizeof keep) == 1);
    CHECK(f.payload[5] & PF_AP_CAP_DELTA);

    /* a patch for another base: refused at BEGIN, before any flash operation */
    uint8_t wrong[32];
    memcpy(wrong, patch.hdr.base_sha256, 32);
    wrong[0] ^= 1;
    uint64_t ops = F.nor.ops;
    uint32_t seq0 = F.boot.rec.seq;
    begin_delta(&b, patch.hdr.base_size, wrong);
    REQUIRE(poll_answer(&f, NULL, keep, sizeof keep) == 1);
    CHECK_EQ(f.payload[0], (uint8_t)-PF_ERR_VERIFY);
    keep[f.len < sizeof keep ? f.len : sizeof keep - 1] = 0;
    CHECK_STR_CONTAINS((const char *)keep + 1, "patch base differs from the running image");
    CHECK_EQ(F.nor.ops, ops); /* nothing written, not even the journal */
    CHECK_EQ(F.boot.rec.seq, seq0);
    begin_delta(&b, patch.hdr.base_size + 1, patch.hdr.base_sha256); /* right hash, wrong length */
    REQUIRE(poll_answer(&f, NULL, keep, sizeof keep) == 1);
    CHECK_EQ(f.payload[0], (uint8_t)-PF_ERR_VERIFY);
    CHECK_EQ(F.nor.ops, ops);
    /* DATA after the refused BEGIN: no transfer open */
    CHECK_EQ(send_body(patch.body, 100), (uint8_t)-PF_ERR_STATE);
    uint8_t short_begin[40] = {0};
    short_begin[4] = PF_AP_F_DELTA;
    req(PF_AP_BEGIN, short_begin, sizeof short_begin);
    REQUIRE(poll_answer(&f, NULL, keep, sizeof keep) == 1);
    CHECK_EQ(f.payload[0], (uint8_t)-PF_ERR_PROTOCOL);

    /* a corrupt patch (a record that does not start the output): refused
     * by the ACK, END refused, nothing pending, a still boots */
    uint8_t *bad = malloc(patch.body_len);
    memcpy(bad, patch.body, patch.body_len);
    pf_put_le32(bad, 7); /* the first record's new_pos: a gap at the start */
    begin_delta(&b, patch.hdr.base_size, patch.hdr.base_sha256);
    REQUIRE(poll_answer(&f, NULL, keep, sizeof keep) == 1);
    CHECK_EQ(f.payload[0], 0);
    CHECK_EQ(send_body(bad, patch.body_len), (uint8_t)-PF_ERR_FORMAT);
    uint8_t fl = 0;
    req(PF_AP_END, &fl, 1);
    REQUIRE(poll_answer(&f, NULL, keep, sizeof keep) == 1);
    CHECK(f.payload[0] != 0);
    CHECK(F.boot.rec.state != PF_BOOT_PENDING);
    pf_boot_result res;
    REQUIRE(fx_open_boot(&F, 1) == PF_OK);
    CHECK_EQ(pf_boot_run(&F.boot, &res), PF_OK);
    CHECK(fx_slot_is(&F, FX_PRIMARY, &a));
    CHECK_EQ(res.image.version.major, 1);
    /* garbage diff bytes (records intact): stored, but END's whole-file hash refuses it */
    memcpy(bad, patch.body, patch.body_len);
    uint32_t at = 0, flipped = 0;
    while (at < patch.body_len && !flipped) { /* inside the diff bytes of a record past the header */
        uint32_t np = pf_get_le32(bad + at), dl = pf_get_le32(bad + at + 8), el = pf_get_le32(bad + at + 12);
        if (np + 100 >= 64 && dl >= 200) { /* output past the 32-byte header */
            for (uint32_t i = 100; i < 140; i++)
                bad[at + PF_PATCH_RECORD_SIZE + i] ^= 0x11;
            flipped = 1;
        }
        at += PF_PATCH_RECORD_SIZE + dl + el;
    }
    CHECK(flipped);
    setup();
    fx_factory(&F, &a);
    begin_delta(&b, patch.hdr.base_size, patch.hdr.base_sha256);
    REQUIRE(poll_answer(&f, NULL, keep, sizeof keep) == 1);
    CHECK_EQ(send_body(bad, patch.body_len), 0);
    req(PF_AP_END, &fl, 1);
    REQUIRE(poll_answer(&f, NULL, keep, sizeof keep) == 1);
    CHECK_EQ(f.payload[0], (uint8_t)-PF_ERR_VERIFY);
    CHECK(F.boot.rec.state != PF_BOOT_PENDING);
    free(bad);

    /* the right patch: byte-exact in the staging slot, pending */
    setup();
    fx_factory(&F, &a);
    begin_delta(&b, patch.hdr.base_size, patch.hdr.base_sha256);
    REQUIRE(poll_answer(&f, NULL, keep, sizeof keep) == 1);
    CHECK_EQ(f.payload[0], 0);
    CHECK_EQ(pf_get_le32(f.payload + 1), 0);
    CHECK_EQ(send_body(patch.body, patch.body_len), 0);
    req(PF_AP_END, &fl, 1);
    REQUIRE(poll_answer(&f, NULL, keep, sizeof keep) == 1);
    CHECK_EQ(f.payload[0], 0);
    CHECK_EQ(F.boot.rec.state, PF_BOOT_PENDING);
    CHECK(fx_slot_is(&F, FX_SECONDARY, &b));
    pf_delta_free(&patch);
    free(a.data);
    free(b.data);
}

int main(void)
{
    snprintf(F.key, sizeof F.key, "%s", FX_TEST_KEY);
    pf_diag d;
    F.pub_len = pf_sign_pubkey_der(F.key, F.pub, sizeof F.pub, &d);
    RUN(test_engine);
    RUN(test_delta_engine);
    pf_nor_free(&F.nor);
    return pf_test_summary();
}
