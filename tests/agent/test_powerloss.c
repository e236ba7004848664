/* Power-loss sweep: cut power at EVERY flash program/erase operation of
 * receive (plain, deflate, delta, delta through deflate), install (swap),
 * confirm and rollback, reboot, and check that the
 * bootloader starts a complete, verified image: the old or the new one, as
 * the journal says, byte for byte, with the other slot intact where the
 * state needs it. Then random runs with several cuts per upgrade.
 *
 * Every failure prints an id; PF_REPLAY=scenario:i:seed runs just that case
 * (PF_REPLAY=random:0:seed for a random run). */
#include <stdio.h>
#include <stdlib.h>
#include <zlib.h>

#include "agent_fixture.h"
#include "peerflash/pf_delta.h"
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

enum { SC_RECEIVE, SC_RECEIVE_Z, SC_RECEIVE_DELTA, SC_RECEIVE_DELTA_Z, SC_INSTALL, SC_CONFIRM, SC_ROLLBACK, SC_COUNT };
static const char *const sc_names[SC_COUNT] = {"receive",       "receive-deflate", "receive-delta", "receive-delta-deflate",
                                               "install",       "confirm",         "rollback"};
static int is_receive(int sc) { return sc <= SC_RECEIVE_DELTA_Z; }

/* How an image travels: plain, deflated, as a patch against what runs, or
 * a deflated patch (the four receive paths of the agent). */
enum { M_PLAIN, M_DEFLATE, M_DELTA, M_DELTA_Z };
static int mode_of(int sc) { return is_receive(sc) ? sc - SC_RECEIVE : M_PLAIN; }

static uint8_t zarena[PF_AGENT_ZARENA_SIZE(10)];

static int open_agent(void)
{
    pf_agent_config c = PF_AGENT_CONFIG_DEFAULT();
    c.boot = &F.boot;
    c.wbuf = F.wbuf;
    c.wbuf_size = sizeof F.wbuf;
    c.diag = &F.diag;
    c.zbits = 10;
    c.zarena = zarena;
    c.zarena_size = sizeof zarena;
    return pf_agent_init(&F.agent, &c);
}

/* Feeds a stream (image, patch body, or their zlib stream) in chunks;
 * offsets from `base` (image offsets for a plain image, else 0). */
static int feed(const uint8_t *p, uint32_t n, uint32_t chunk, int z, uint32_t base)
{
    for (uint32_t o = 0; o < n;) {
        uint32_t k = n - o < chunk ? n - o : chunk;
        int r = z ? pf_agent_recv_zdata(&F.agent, o, p + o, k) : pf_agent_recv_data(&F.agent, base + o, p + o, k);
        if (r < 0)
            return r;
        o += k;
    }
    return PF_OK;
}

/* Stores im the way `mode` says, resuming where the agent says; a delta is
 * made against base (what primary holds), as the host would. */
static int store_mode(const fx_image *im, const fx_image *base, uint32_t chunk, int mode)
{
    uint32_t resume;
    int r, delta = mode == M_DELTA || mode == M_DELTA_Z, z = mode == M_DEFLATE || mode == M_DELTA_Z;
    pf_delta patch = {0};
    if (delta) {
        if (pf_delta_make(base->data, (uint32_t)base->len, im->data, (uint32_t)im->len, &patch, NULL) < 0)
            return PF_ERR_NOMEM;
        if ((r = pf_agent_delta_check_base(&F.agent, patch.hdr.base_size, patch.hdr.base_sha256)) < 0)
            goto out;
    }
    if ((r = pf_agent_recv_begin(&F.agent, im->file_hash, (uint32_t)im->len, &resume)) < 0)
        goto out;
    if (z && (r = pf_agent_recv_deflate(&F.agent)) < 0)
        goto out;
    if (delta && (r = pf_agent_recv_delta(&F.agent, patch.hdr.base_size)) < 0)
        goto out;
    const uint8_t *src = im->data + resume;
    uint32_t n = (uint32_t)im->len - resume;
    if (delta && resume < im->len) {
        uint32_t boff;
        if ((r = pf_patch_body_seek(patch.body, patch.body_len, resume, &boff, NULL)) < 0)
            goto out;
        src = patch.body + boff;
        n = patch.body_len - boff;
    }
    if (resume >= im->len) {
        r = PF_OK;
    } else if (z) {
        z_stream zs;
        memset(&zs, 0, sizeof zs);
        deflateInit2(&zs, 9, Z_DEFLATED, 10, 8, Z_DEFAULT_STRATEGY);
        uLongf zn = deflateBound(&zs, n);
        uint8_t *zb = malloc(zn);
        zs.next_in = (Bytef *)src;
        zs.avail_in = n;
        zs.next_out = zb;
        zs.avail_out = (uInt)zn;
        r = deflate(&zs, Z_FINISH) == Z_STREAM_END ? PF_OK : PF_ERR_NOMEM;
        zn = zs.total_out;
        deflateEnd(&zs);
        if (r == PF_OK)
            r = feed(zb, (uint32_t)zn, chunk, 1, 0);
        free(zb);
    } else {
        r = feed(src, n, chunk, 0, delta ? 0 : resume);
    }
    if (r >= 0)
        r = pf_agent_recv_end(&F.agent, 0);
out:
    pf_delta_free(&patch);
    return r;
}

static int store(const fx_image *im, uint32_t chunk) { return store_mode(im, &A, chunk, M_PLAIN); }

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
    if (!is_receive(sc) && store(&B, 300) < 0)
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
    if (is_receive(sc)) {
        if ((r = open_agent()) < 0)
            return r;
        return store_mode(&B, &A, 300, mode_of(sc));
    }
    switch (sc) {
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
    switch (is_receive(sc) ? SC_RECEIVE : sc) {
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

    /* receive: the transfer resumes after the power loss (the same way:
     * a delta against the same base, a fresh zlib stream from the resume
     * offset) and completes */
    if (is_receive(sc) && want == &A) {
        if (open_agent() < 0)
            return fail_case(name, i, seed, "cannot open the agent after the cut");
        if (store_mode(&B, &A, 300, mode_of(sc)) < 0)
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
    if (is_receive(sc))
        CHECK(F.agent._delta == (mode_of(sc) == M_DELTA || mode_of(sc) == M_DELTA_Z)); /* the path it claims */
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
                if (open_agent() >= 0 && store_mode(cand, old, 1 + rnd() % 900, (int)(rnd() % 4)) == PF_OK)
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
    /* B shares most of A (so a delta is a real patch): its body is A's with
     * a stretch replaced and more appended, re-signed */
    {
        uint8_t *body = malloc(13000);
        memcpy(body, A.data + 32, 9000);
        memcpy(body + 4000, B.data + 32 + 4000, 300);
        memcpy(body + 9000, B.data + 32 + 9000, 4000);
        pf_sign_params p = PF_SIGN_PARAMS_DEFAULT();
        p.version.major = 2;
        p.key_pem = F.key;
        size_t cap = pf_sign_image_size_max(&p, 13000);
        free(B.data);
        B.data = malloc(cap);
        int n = pf_sign_image(&p, body, 13000, B.data, cap, NULL);
        free(body);
        if (n < 0)
            return 1;
        B.len = (size_t)n;
        fx_file_hash(&B);
    }
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
