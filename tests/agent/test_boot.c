/* Bootloader core and agent store: image checks, signatures, downgrade,
 * trial / confirm / rollback, resume, journal wrap-around. */
#include <stdio.h>

#include "agent_fixture.h"
#include "peerflash/pf_bytes.h"
#include "pf_test.h"

static fx F;
static char other_key[512];

static void setup(void)
{
    pf_nor_free(&F.nor);
    memset(&F.diag, 0, sizeof F.diag);
    pf_nor_init(&F.nor, FX_FLASH, 1, 8, FX_E, 0xFF, NULL);
}

static void test_image_checks(void)
{
    fx_image a, unsigned_a, foreign;
    REQUIRE(fx_make_image(&a, F.key, 1, 0, 5000, 1) == 0);
    REQUIRE(fx_make_image(&unsigned_a, NULL, 1, 0, 5000, 1) == 0);
    REQUIRE(fx_make_image(&foreign, other_key, 1, 0, 5000, 1) == 0);
    pf_boot_result res;

    setup();
    fx_factory(&F, &a);
    REQUIRE(fx_open_boot(&F, 1) == PF_OK);
    CHECK_EQ(pf_boot_run(&F.boot, &res), PF_OK);
    CHECK_EQ(res.image.signature_ok, 1);
    CHECK_EQ(res.image.version.major, 1);
    CHECK_EQ(res.image.total_size, a.len);
    CHECK_EQ(res.trial, 0);

    /* one flipped bit in the body */
    F.nor.mem[FX_PRIMARY + 1000] ^= 0x10;
    CHECK_EQ(pf_boot_run(&F.boot, &res), PF_ERR_AUTH);
    CHECK_STR_CONTAINS(F.diag.text, "SHA-256 does not match");

    /* unsigned: refused with a key, accepted without */
    setup();
    fx_factory(&F, &unsigned_a);
    REQUIRE(fx_open_boot(&F, 1) == PF_OK);
    CHECK_EQ(pf_boot_run(&F.boot, &res), PF_ERR_AUTH);
    CHECK_STR_CONTAINS(F.diag.text, "not signed");
    REQUIRE(fx_open_boot(&F, 0) == PF_OK);
    CHECK_EQ(pf_boot_run(&F.boot, &res), PF_OK);
    CHECK_EQ(res.image.signature_ok, 0);

    /* signed with another key */
    setup();
    fx_factory(&F, &foreign);
    REQUIRE(fx_open_boot(&F, 1) == PF_OK);
    CHECK_EQ(pf_boot_run(&F.boot, &res), PF_ERR_AUTH);

    /* a forged signature TLV (right key hash, bytes of the signature changed) */
    setup();
    fx_factory(&F, &a);
    F.nor.mem[FX_PRIMARY + a.len - 10] ^= 0x01;
    REQUIRE(fx_open_boot(&F, 1) == PF_OK);
    CHECK(pf_boot_run(&F.boot, &res) < 0);

    /* a signature padded with zeros (imgtool --pad-sig pads to 72 bytes;
     * here always 2 zeros, as the DER length varies from run to run) */
    {
        uint8_t *pd = malloc(a.len + 8);
        memcpy(pd, a.data, a.len);
        uint32_t tlv = 32 + 5000, tot = pf_get_le16(pd + tlv + 2);
        uint32_t sig_hdr = tlv + 4 + 36 + 36; /* SHA-256, key hash, then the signature */
        REQUIRE(pf_get_le16(pd + sig_hdr) == PF_MCUBOOT_TLV_ECDSA_SIG);
        uint16_t sl = pf_get_le16(pd + sig_hdr + 2);
        REQUIRE(tot == 4u + 36 + 36 + 4 + sl);
        memset(pd + sig_hdr + 4 + sl, 0, 2);
        pf_put_le16(pd + sig_hdr + 2, (uint16_t)(sl + 2));
        pf_put_le16(pd + tlv + 2, (uint16_t)(tot + 2));
        setup();
        memcpy(F.nor.mem + FX_PRIMARY, pd, a.len + 2);
        REQUIRE(fx_open_boot(&F, 1) == PF_OK);
        CHECK_EQ(pf_boot_run(&F.boot, &res), PF_OK);
        CHECK_EQ(res.image.signature_ok, 1);
        free(pd);
    }

    /* no image at all */
    setup();
    REQUIRE(fx_open_boot(&F, 1) == PF_OK);
    CHECK_EQ(pf_boot_run(&F.boot, &res), PF_ERR_FORMAT);
    CHECK_STR_CONTAINS(F.diag.text, "magic");
    free(a.data);
    free(unsigned_a.data);
    free(foreign.data);
}

static int store(const fx_image *im, int permanent)
{
    uint32_t resume = 1;
    int r = pf_agent_recv_begin(&F.agent, im->file_hash, (uint32_t)im->len, &resume);
    if (r < 0)
        return r;
    if ((r = fx_send(&F, im, resume, 333)) < 0)
        return r;
    return pf_agent_recv_end(&F.agent, permanent);
}

static void test_trial_confirm_rollback(void)
{
    fx_image a, b;
    REQUIRE(fx_make_image(&a, F.key, 1, 0, 9000, 2) == 0);
    REQUIRE(fx_make_image(&b, F.key, 2, 0, 13000, 3) == 0);
    pf_boot_result res;
    setup();
    fx_factory(&F, &a);
    REQUIRE(fx_open_boot(&F, 1) == PF_OK);
    REQUIRE(fx_open_agent(&F) == PF_OK);
    CHECK_EQ(store(&b, 0), PF_OK);
    CHECK_EQ(F.boot.rec.state, PF_BOOT_PENDING);
    CHECK(fx_slot_is(&F, FX_PRIMARY, &a)); /* nothing moved before the reset */

    /* reset: the bootloader swaps, B runs on trial */
    REQUIRE(fx_open_boot(&F, 1) == PF_OK);
    CHECK_EQ(pf_boot_run(&F.boot, &res), PF_OK);
    CHECK_EQ(res.trial, 1);
    CHECK_EQ(res.swapped, 1);
    CHECK_EQ(res.image.version.major, 2);
    CHECK(fx_slot_is(&F, FX_PRIMARY, &b));
    CHECK(fx_slot_is(&F, FX_SECONDARY, &a));
    /* a new transfer is refused while B is on trial */
    REQUIRE(fx_open_agent(&F) == PF_OK);
    CHECK_EQ(store(&a, 0), PF_ERR_STATE);

    /* reset without confirmation: rollback to A */
    REQUIRE(fx_open_boot(&F, 1) == PF_OK);
    CHECK_EQ(pf_boot_run(&F.boot, &res), PF_OK);
    CHECK_EQ(res.trial, 0);
    CHECK_EQ(res.reverted, 1);
    CHECK_EQ(res.image.version.major, 1);
    CHECK(fx_slot_is(&F, FX_PRIMARY, &a));
    CHECK(fx_slot_is(&F, FX_SECONDARY, &b));

    /* again, and this time the application confirms */
    REQUIRE(fx_open_agent(&F) == PF_OK);
    CHECK_EQ(store(&b, 0), PF_OK);
    REQUIRE(fx_open_boot(&F, 1) == PF_OK);
    CHECK_EQ(pf_boot_run(&F.boot, &res), PF_OK);
    CHECK_EQ(res.trial, 1);
    CHECK_EQ(pf_boot_confirm(&F.boot), PF_OK);
    REQUIRE(fx_open_boot(&F, 1) == PF_OK);
    CHECK_EQ(pf_boot_run(&F.boot, &res), PF_OK);
    CHECK_EQ(res.trial, 0);
    CHECK_EQ(res.reverted, 0);
    CHECK_EQ(res.image.version.major, 2);
    CHECK(fx_slot_is(&F, FX_PRIMARY, &b));

    /* downgrade to A refused, unless allowed; permanent install has no trial */
    REQUIRE(fx_open_agent(&F) == PF_OK);
    CHECK_EQ(store(&a, 0), PF_ERR_AUTH);
    CHECK_STR_CONTAINS(F.diag.text, "downgrade");
    CHECK_EQ(F.boot.rec.state, PF_BOOT_IDLE);
    F.agent.cfg.allow_downgrade = 1;
    CHECK_EQ(store(&a, 1), PF_OK);
    REQUIRE(fx_open_boot(&F, 1) == PF_OK);
    CHECK_EQ(pf_boot_run(&F.boot, &res), PF_OK);
    CHECK_EQ(res.trial, 0);
    CHECK_EQ(res.image.version.major, 1);
    CHECK_EQ(F.boot.rec.state, PF_BOOT_IDLE);
    free(a.data);
    free(b.data);
}

static void test_resume_and_bad_transfer(void)
{
    fx_image a, b;
    REQUIRE(fx_make_image(&a, F.key, 1, 0, 9000, 4) == 0);
    REQUIRE(fx_make_image(&b, F.key, 1, 1, 15000, 5) == 0);
    setup();
    fx_factory(&F, &a);
    REQUIRE(fx_open_boot(&F, 1) == PF_OK);
    REQUIRE(fx_open_agent(&F) == PF_OK);
    uint32_t resume = 99;
    CHECK_EQ(pf_agent_recv_begin(&F.agent, b.file_hash, (uint32_t)b.len, &resume), PF_OK);
    CHECK_EQ(resume, 0);
    CHECK_EQ(pf_agent_recv_data(&F.agent, 0, b.data, 10000), PF_OK);
    CHECK_EQ(pf_agent_recv_data(&F.agent, 5, b.data, 10), PF_ERR_STATE); /* out of order */
    /* "disconnect": a new session (and a reboot) resumes from what is durable */
    REQUIRE(fx_open_boot(&F, 1) == PF_OK);
    REQUIRE(fx_open_agent(&F) == PF_OK);
    uint64_t progs_before = F.nor.progs;
    CHECK_EQ(pf_agent_recv_begin(&F.agent, b.file_hash, (uint32_t)b.len, &resume), PF_OK);
    CHECK_EQ(resume, 2 * FX_E); /* 10000 bytes sent: two whole units durable */
    CHECK_EQ(fx_send(&F, &b, resume, 700), 0);
    CHECK_EQ(pf_agent_recv_end(&F.agent, 0), PF_OK);
    CHECK(F.nor.progs - progs_before < (b.len - 2 * FX_E) / 8 + 20); /* only the rest was written */
    CHECK_EQ(F.boot.rec.state, PF_BOOT_PENDING);
    /* a different image restarts from 0 */
    fx_image c;
    REQUIRE(fx_make_image(&c, F.key, 1, 2, 7000, 6) == 0);
    CHECK_EQ(pf_agent_recv_begin(&F.agent, c.file_hash, (uint32_t)c.len, &resume), PF_OK);
    CHECK_EQ(resume, 0);
    /* a lie about the file hash is caught at the end */
    uint8_t wrong[32];
    memcpy(wrong, c.file_hash, 32);
    wrong[0] ^= 1;
    CHECK_EQ(pf_agent_recv_begin(&F.agent, wrong, (uint32_t)c.len, &resume), PF_OK);
    CHECK_EQ(fx_send(&F, &c, 0, 1000), 0);
    CHECK_EQ(pf_agent_recv_end(&F.agent, 0), PF_ERR_VERIFY);
    CHECK_EQ(F.boot.rec.state, PF_BOOT_IDLE);
    /* a corrupt image (body changed, hash TLV stale) with a matching file hash */
    fx_image bad = c;
    bad.data = malloc(c.len);
    memcpy(bad.data, c.data, c.len);
    bad.data[100] ^= 0xFF;
    fx_file_hash(&bad);
    CHECK_EQ(pf_agent_recv_begin(&F.agent, bad.file_hash, (uint32_t)bad.len, &resume), PF_OK);
    CHECK_EQ(fx_send(&F, &bad, 0, 1000), 0);
    CHECK_EQ(pf_agent_recv_end(&F.agent, 0), PF_ERR_AUTH);
    CHECK_EQ(F.boot.rec.state, PF_BOOT_IDLE);
    pf_boot_result res;
    REQUIRE(fx_open_boot(&F, 1) == PF_OK);
    CHECK_EQ(pf_boot_run(&F.boot, &res), PF_OK);
    CHECK(fx_slot_is(&F, FX_PRIMARY, &a));
    /* too big for the slot */
    CHECK_EQ(pf_agent_recv_begin(&F.agent, c.file_hash, FX_SLOT + 1, &resume), PF_ERR_RANGE);
    free(a.data);
    free(b.data);
    free(c.data);
    free(bad.data);
}

static void test_journal_wraps(void)
{
    /* 40 upgrades: ~20 records each, the 64-record units wrap many times */
    fx_image im[2];
    REQUIRE(fx_make_image(&im[0], F.key, 1, 0, 3000, 7) == 0);
    REQUIRE(fx_make_image(&im[1], F.key, 1, 0, 3500, 8) == 0);
    setup();
    fx_factory(&F, &im[0]);
    pf_boot_result res;
    for (int k = 1; k <= 40; k++) {
        const fx_image *next = &im[k % 2];
        REQUIRE(fx_open_boot(&F, 1) == PF_OK);
        REQUIRE(fx_open_agent(&F) == PF_OK);
        REQUIRE(store(next, 0) == PF_OK);
        REQUIRE(fx_open_boot(&F, 1) == PF_OK);
        REQUIRE(pf_boot_run(&F.boot, &res) == PF_OK);
        REQUIRE(res.trial == 1);
        REQUIRE(pf_boot_confirm(&F.boot) == PF_OK);
        REQUIRE(fx_slot_is(&F, FX_PRIMARY, next));
    }
    CHECK(F.boot.rec.seq > 2 * (FX_E / PF_BOOT_RECORD_SIZE));
    free(im[0].data);
    free(im[1].data);
}

int main(void)
{
    pf_diag d;
    if (pf_sign_keygen(F.key, sizeof F.key, &d) < 0 || pf_sign_keygen(other_key, sizeof other_key, &d) < 0) {
        fprintf(stderr, "keygen: %s\n", d.text);
        return 1;
    }
    F.pub_len = pf_sign_pubkey_der(F.key, F.pub, sizeof F.pub, &d);
    if (F.pub_len != 91) {
        fprintf(stderr, "public key: %d\n", F.pub_len);
        return 1;
    }
    RUN(test_image_checks);
    RUN(test_trial_confirm_rollback);
    RUN(test_resume_and_bad_transfer);
    RUN(test_journal_wraps);
    pf_nor_free(&F.nor);
    return pf_test_summary();
}
