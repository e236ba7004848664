/* Power-loss sweep: cut power at EVERY flash program/erase operation of
 * receive, install (swap), confirm and rollback, reboot, and check that the
 * bootloader starts a complete, verified image: the old or the new one, as
 * the journal says, byte for byte, with the other slot intact where the
 * state needs it. Then random runs with several cuts per upgrade.
 *
 * Every failure prints an id; PF_REPLAY=scenario:i:seed runs just that case
 * (PF_REPLAY=random:0:seed for a random run). */
#include <stdio.h>
#include <stdlib.h>

#include "agent_fixture.h"
#include "pf_test.h"

static fx F;
static fx_image A, B;
static uint8_t snapshot[FX_FLASH];
static int replay_mode;

/* flash geometries: program granule, read unit, erased value */
static const struct geo {
    uint32_t read, prog;
    uint8_t ev;
    const char *tag;
    int key; /* verify signatures (the slow part); the geometry variants check hashes only */
} geos[] = {{1, 8, 0xFF, "", 1}, {16, 16, 0xFF, "@r16p16", 0}, {4, 4, 0x00, "@r4p4e00", 0}};
#define N_GEO (sizeof geos / sizeof geos[0])
static const struct geo *G = &geos[0];

enum { SC_RECEIVE, SC_INSTALL, SC_CONFIRM, SC_ROLLBACK, SC_COUNT };
static const char *const sc_names[SC_COUNT] = {"receive", "install", "confirm", "rollback"};

static int store(const fx_image *im, uint32_t chunk)
{
    uint32_t resume;
    int r = pf_agent_recv_begin(&F.agent, im->file_hash, (uint32_t)im->len, &resume);
    if (r < 0)
        return r;
    if ((r = fx_send(&F, im, resume, chunk)) < 0)
        return r;
    return pf_agent_recv_end(&F.agent, 0);
}

/* Fills the journal so that it changes unit in the middle of the scenario. */
static int prefill_journal(int records)
{
    for (int i = 0; i < records; i++) {
        pf_boot_record r = F.boot.rec;
        int e = pf_boot_write_record(&F.boot, &r);
        if (e < 0)
            return e;
    }
    return 0;
}

static int setup(int sc, int wrap)
{
    pf_nor_free(&F.nor);
    if (pf_nor_init(&F.nor, FX_FLASH, G->read, G->prog, FX_E, G->ev, NULL) < 0)
        return -1;
    fx_factory(&F, &A);
    if (fx_open_boot(&F, G->key) < 0 || fx_open_agent(&F) < 0)
        return -1;
    pf_boot_result res;
    if (sc != SC_RECEIVE && store(&B, 300) < 0)
        return -1;
    if ((sc == SC_CONFIRM || sc == SC_ROLLBACK) && (fx_open_boot(&F, G->key) < 0 || pf_boot_run(&F.boot, &res) < 0))
        return -1;
    /* leave 2 free records in the active unit: the scenario's third record
     * (or for confirm the first) goes to a freshly erased unit */
    if (wrap && prefill_journal((int)(F.boot._per_unit - F.boot._next) - (sc == SC_CONFIRM ? 0 : 2)) < 0)
        return -1;
    memcpy(snapshot, F.nor.mem, FX_FLASH);
    return 0;
}

static int action(int sc)
{
    pf_boot_result res;
    int r = fx_open_boot(&F, G->key);
    if (r < 0)
        return r;
    switch (sc) {
    case SC_RECEIVE:
        if ((r = fx_open_agent(&F)) < 0)
            return r;
        return store(&B, 300);
    case SC_INSTALL:
    case SC_ROLLBACK: return pf_boot_run(&F.boot, &res);
    default: return pf_boot_confirm(&F.boot);
    }
}

static int fail_case(const char *sc, unsigned i, unsigned seed, const char *what)
{
    pf_test_failed++;
    fprintf(stderr, "FAIL PF_REPLAY=%s:%u:%u  %s (journal: %s seq %lu step %u; diag: %s)\n", sc, i, seed, what,
            pf_boot_state_name(F.boot.rec.state), (unsigned long)F.boot.rec.seq, (unsigned)F.boot.rec.step,
            F.diag.text);
    return 0;
}

/* One cut at operation i of scenario sc, reboot, check. Returns 1 if ok. */
static int one_cut(int sc, int wrap, unsigned i, unsigned seed)
{
    char name[48];
    snprintf(name, sizeof name, "%s%s%s", sc_names[sc], wrap ? "+wrap" : "", G->tag);
    memcpy(F.nor.mem, snapshot, FX_FLASH);
    F.diag.text[0] = 0;
    pf_nor_cut_after(&F.nor, i, seed);
    int r = action(sc);
    if (r >= 0 || F.nor.powered)
        return fail_case(name, i, seed, "the operation completed although power was cut");
    pf_nor_reboot(&F.nor);

    /* power on: the bootloader */
    if (fx_open_boot(&F, G->key) < 0)
        return fail_case(name, i, seed, "journal unreadable after the cut");
    int st = F.boot.rec.state;
    const fx_image *want, *other = NULL;
    int want_trial;
    switch (sc) {
    case SC_RECEIVE:
        want = st == PF_BOOT_PENDING ? &B : &A;
        want_trial = st == PF_BOOT_PENDING;
        other = st == PF_BOOT_PENDING ? &A : NULL;
        break;
    case SC_INSTALL: want = &B, other = &A, want_trial = 1; break;
    case SC_CONFIRM:
        want = st == PF_BOOT_IDLE ? &B : &A;
        other = want == &B ? &A : &B;
        want_trial = 0;
        break;
    default: want = &A, other = &B, want_trial = 0; break;
    }
    pf_boot_result res;
    r = pf_boot_run(&F.boot, &res);
    if (r < 0)
        return fail_case(name, i, seed, "no bootable image after the cut");
    if (res.trial != want_trial)
        return fail_case(name, i, seed, want_trial ? "new image should run on trial" : "unexpected trial");
    if (res.image.total_size != want->len || !fx_slot_is(&F, FX_PRIMARY, want))
        return fail_case(name, i, seed, "primary does not hold the expected image byte for byte");
    if (other && !fx_slot_is(&F, FX_SECONDARY, other))
        return fail_case(name, i, seed, "secondary lost the other image (no rollback possible)");

    /* receive: the transfer resumes after the power loss and completes */
    if (sc == SC_RECEIVE && want == &A) {
        uint32_t resume;
        if (fx_open_agent(&F) < 0 || pf_agent_recv_begin(&F.agent, B.file_hash, (uint32_t)B.len, &resume) < 0)
            return fail_case(name, i, seed, "cannot begin again after the cut");
        if (fx_send(&F, &B, resume, 300) < 0 || pf_agent_recv_end(&F.agent, 0) < 0)
            return fail_case(name, i, seed, "resumed transfer failed");
        if (fx_open_boot(&F, G->key) < 0 || pf_boot_run(&F.boot, &res) < 0 || !res.trial || !fx_slot_is(&F, FX_PRIMARY, &B))
            return fail_case(name, i, seed, "resumed image does not boot");
    }
    /* whatever runs on trial can be confirmed and stays */
    if (res.trial) {
        if (pf_boot_confirm(&F.boot) < 0 || fx_open_boot(&F, G->key) < 0 || pf_boot_run(&F.boot, &res) < 0 || res.trial ||
            !fx_slot_is(&F, FX_PRIMARY, &B))
            return fail_case(name, i, seed, "confirm after recovery failed");
    }
    pf_test_passed++;
    return 1;
}

static void sweep(int sc, int wrap, unsigned seed)
{
    REQUIRE(setup(sc, wrap) == 0);
    memcpy(F.nor.mem, snapshot, FX_FLASH);
    uint64_t ops0 = F.nor.ops;
    REQUIRE(action(sc) == PF_OK);
    unsigned n = (unsigned)(F.nor.ops - ops0);
    unsigned bad = 0;
    for (unsigned i = 1; i <= n; i++)
        bad += !one_cut(sc, wrap, i, seed + i);
    fprintf(stderr, "  %s%s%s: %u flash operations, %u cut points, %u failed\n", sc_names[sc], wrap ? "+wrap" : "",
            G->tag, n, n, bad);
    CHECK(n >= (sc == SC_CONFIRM ? 1u : 10u));
}

/* ---- random runs: several upgrades, each with random power cuts ------------ */
static uint32_t rnd_state;
static uint32_t rnd(void)
{
    rnd_state ^= rnd_state << 13;
    rnd_state ^= rnd_state >> 17;
    rnd_state ^= rnd_state << 5;
    return rnd_state;
}

static int random_run(unsigned seed, int verbose)
{
    char what[160];
    rnd_state = seed * 2654435761u + 99;
    fx_image img[5];
    int ok = 1;
    for (int k = 0; k < 5; k++)
        if (fx_make_image(&img[k], F.key, (uint8_t)(k + 1), 0, 2000 + rnd() % 13000, seed * 10 + (unsigned)k) < 0)
            return fail_case("random", 0, seed, "image");
    pf_nor_free(&F.nor);
    pf_nor_init(&F.nor, FX_FLASH, 1, 8, FX_E, 0xFF, NULL);
    fx_factory(&F, &img[0]);
    unsigned cuts = 0;
    const fx_image *old = &img[0];
    for (int c = 1; c < 5 && ok; c++) {
        const fx_image *cand = &img[c];
        int want_confirm = rnd() % 3 != 0, delivered = 0, confirmed = 0, confirm_tried = 0, done = 0;
        for (int it = 0; it < 400 && !done; it++) {
            if (rnd() % 10 < 6)
                pf_nor_cut_after(&F.nor, 1 + rnd() % 80, rnd());
            pf_boot_result res;
            int r = fx_open_boot(&F, G->key);
            if (r >= 0)
                r = pf_boot_run(&F.boot, &res);
            if (r < 0) {
                if (F.nor.powered) {
                    snprintf(what, sizeof what, "cycle %d: no bootable image", c);
                    ok = fail_case("random", 0, seed, what);
                    break;
                }
                pf_nor_reboot(&F.nor), cuts++;
                continue;
            }
            int is_cand = res.image.version.major == cand->data[20];
            const fx_image *running = is_cand ? cand : old;
            if ((!is_cand && res.image.version.major != old->data[20]) || !fx_slot_is(&F, FX_PRIMARY, running)) {
                snprintf(what, sizeof what, "cycle %d: primary holds neither image intact", c);
                ok = fail_case("random", 0, seed, what);
                break;
            }
            if (confirmed && (!is_cand || res.trial)) {
                snprintf(what, sizeof what, "cycle %d: confirmed image lost", c);
                ok = fail_case("random", 0, seed, what);
                break;
            }
            if (is_cand && !res.trial) {
                if (!confirm_tried) {
                    snprintf(what, sizeof what, "cycle %d: new image permanent without confirmation", c);
                    ok = fail_case("random", 0, seed, what);
                    break;
                }
                old = cand; /* accepted */
                done = 1;
            } else if (is_cand) { /* on trial */
                if (want_confirm) {
                    confirm_tried = 1;
                    if (pf_boot_confirm(&F.boot) == PF_OK)
                        confirmed = 1;
                }
            } else if (delivered && res.reverted) {
                done = 1; /* rolled back: old stays */
            } else if (!delivered || F.boot.rec.state == PF_BOOT_IDLE || F.boot.rec.state == PF_BOOT_RECEIVING) {
                if (fx_open_agent(&F) >= 0 && store(cand, 1 + rnd() % 900) == PF_OK)
                    delivered = 1;
            }
            if (!F.nor.powered)
                pf_nor_reboot(&F.nor), cuts++;
            pf_nor_cut_after(&F.nor, 0, 0);
        }
        if (ok && !done) {
            snprintf(what, sizeof what, "cycle %d: upgrade never finished", c);
            ok = fail_case("random", 0, seed, what);
        }
    }
    if (verbose)
        fprintf(stderr, "  random seed %u: %u cuts\n", seed, cuts);
    for (int k = 0; k < 5; k++)
        free(img[k].data);
    if (ok)
        pf_test_passed++;
    return ok;
}

int main(void)
{
    pf_diag d;
    snprintf(F.key, sizeof F.key, "%s", FX_TEST_KEY);
    F.pub_len = pf_sign_pubkey_der(F.key, F.pub, sizeof F.pub, &d);
    if (fx_make_image(&A, F.key, 1, 0, 9000, 1) < 0 || fx_make_image(&B, F.key, 2, 0, 13000, 2) < 0)
        return 1;
    const char *rep = getenv("PF_REPLAY");
    if (rep && *rep) {
        char sc[48];
        unsigned i, seed;
        replay_mode = 1;
        if (sscanf(rep, "%47[^:]:%u:%u", sc, &i, &seed) != 3) {
            fprintf(stderr, "PF_REPLAY=scenario:i:seed\n");
            return 2;
        }
        if (!strcmp(sc, "random"))
            random_run(seed, 1);
        for (size_t g = 0; g < N_GEO; g++)
            for (int s = 0; s < SC_COUNT; s++)
                for (int wrap = 0; wrap < 2; wrap++) {
                    char name[48];
                    G = &geos[g];
                    snprintf(name, sizeof name, "%s%s%s", sc_names[s], wrap ? "+wrap" : "", G->tag);
                    if (!strcmp(name, sc) && setup(s, wrap) == 0 && one_cut(s, wrap, i, seed))
                        fprintf(stderr, "%s:%u:%u passes\n", sc, i, seed);
                }
        G = &geos[0];
        return pf_test_summary();
    }
    unsigned base = 1;
    for (size_t g = 0; g < N_GEO; g++) {
        G = &geos[g];
        for (int s = 0; s < SC_COUNT; s++)
            for (int wrap = 0; wrap < 2; wrap++)
                sweep(s, wrap, base);
    }
    G = &geos[0];
    unsigned runs = getenv("PF_RANDOM_RUNS") ? (unsigned)atoi(getenv("PF_RANDOM_RUNS")) : 30;
    unsigned bad = 0;
    for (unsigned seed = 1; seed <= runs; seed++)
        bad += !random_run(seed, 0);
    fprintf(stderr, "  random: %u runs of 4 upgrades, %u failed\n", runs, bad);
    free(A.data);
    free(B.data);
    pf_nor_free(&F.nor);
    return pf_test_summary();
}
