/* The flash job against an in-memory NOR target: planning, erase of touched
 * units only, skip-unchanged, fill, protected ranges, verify, failures. */
#include <stdlib.h>

#include "fake_target.h"
#include "pf_test.h"

static fake_target ft;
static pf_target tgt;
static uint8_t jobbuf[4096];
static pf_segment segs[64];
static uint8_t arena[70000];
static pf_memmap map;
static pf_diag diag;

static void setup(pf_erase_style style, uint32_t unit, int digest, int can_read)
{
    fake_init(&ft, style, unit, digest, can_read);
    tgt.ops = &fake_ops;
    tgt.self = &ft;
    fake_ops.connect(&ft, &tgt.info);
    pf_memmap_init(&map, segs, 64, arena, sizeof arena);
    pf_diag_clear(&diag);
}

static void add(uint32_t addr, uint32_t len, uint8_t seed)
{
    uint8_t tmp[8192];
    for (uint32_t i = 0; i < len; i++)
        tmp[i] = (uint8_t)(seed + i * 7);
    pf_memmap_add(&map, addr, tmp, len, NULL);
}

static pf_job_config config(void)
{
    pf_job_config c = PF_JOB_CONFIG_DEFAULT();
    c.buf = jobbuf;
    c.buf_size = sizeof jobbuf;
    c.diag = &diag;
    return c;
}

/* Every image byte is in flash. */
static int flash_holds_image(void)
{
    for (size_t i = 0; i < map.count; i++)
        if (memcmp(ft.flash + map.segs[i].addr, map.segs[i].data, map.segs[i].len))
            return 0;
    return 1;
}

static void test_explicit_erase_touches_only_needed_units(void)
{
    setup(PF_ERASE_EXPLICIT, 1024, 1, 1);
    memset(ft.flash + 8192, 0x5A, 1024); /* old data in a unit the image does not touch */
    memset(ft.flash + 1024, 0x00, 1024); /* old data the image overwrites: must be erased first */
    add(1024 + 100, 300, 1);
    add(20000, 50, 2);
    REQUIRE(pf_memmap_finish(&map, NULL) == PF_OK);
    pf_job_config c = config();
    pf_job_result res;
    CHECK_EQ(pf_job_flash(&tgt, &map, &c, &res), PF_OK);
    CHECK(flash_holds_image());
    CHECK_EQ(res.erased_bytes, 2048); /* units 1 and 19 */
    CHECK_EQ(ft.flash[8192], 0x5A);
    CHECK_EQ(ft.flash[8192 + 1023], 0x5A);
    CHECK_EQ(res.runs, 2);
    CHECK(res.verified);
    CHECK_STR_CONTAINS(res.verify_method, "MD5");
}

static void test_skip_unchanged(void)
{
    setup(PF_ERASE_EXPLICIT, 1024, 1, 1);
    add(0, 5000, 3);
    REQUIRE(pf_memmap_finish(&map, NULL) == PF_OK);
    pf_job_config c = config();
    pf_job_result res;
    CHECK_EQ(pf_job_flash(&tgt, &map, &c, &res), PF_OK);
    CHECK_EQ(res.skipped_bytes, 0);
    int writes = ft.write_calls, erases = ft.erase_calls;
    CHECK_EQ(pf_job_flash(&tgt, &map, &c, &res), PF_OK);
    CHECK_EQ(res.skipped_bytes, 5000);
    CHECK_EQ(res.written_bytes, 0);
    CHECK_EQ(ft.write_calls, writes);
    CHECK_EQ(ft.erase_calls, erases);
    /* Change one byte in the third unit: only that unit is erased and rewritten. */
    ((uint8_t *)map.segs[0].data)[2500] ^= 0xFF;
    CHECK_EQ(pf_job_flash(&tgt, &map, &c, &res), PF_OK);
    CHECK_EQ(res.written_bytes, 1024);
    CHECK_EQ(res.erased_bytes, 1024);
    CHECK_EQ(res.skipped_bytes, 5000 - 1024);
    CHECK(flash_holds_image());
}

/* The skip-unchanged check asks the target for one digest over a span of
 * touching pieces first: all unchanged, or erased flash (then only the
 * image's non-erased pieces are written, with no digest per piece); only a
 * span that is neither is asked piece by piece. */
static void test_skip_check_one_digest_per_span(void)
{
    setup(PF_ERASE_EXPLICIT, 1024, 1, 1);
    add(0, 8192, 3);
    memset((uint8_t *)map.segs[0].data + 3072, 0xFF, 1024); /* an erased-looking piece */
    REQUIRE(pf_memmap_finish(&map, NULL) == PF_OK);
    pf_job_config c = config();
    c.verify = 0;
    pf_job_result res;
    /* erased target: one digest, the 0xFF piece skipped, the other 7 written */
    int d0 = ft.digest_calls;
    CHECK_EQ(pf_job_flash(&tgt, &map, &c, &res), PF_OK);
    CHECK_EQ(ft.digest_calls - d0, 1);
    CHECK_EQ(res.skipped_bytes, 1024);
    CHECK_EQ(res.written_bytes, 7 * 1024);
    CHECK_EQ(ft.known_erased_calls, 1); /* the driver is told: its write need not erase */
    CHECK_EQ(ft.known_erased_addr, 0);
    CHECK_EQ(ft.known_erased_len, 8192);
    CHECK(flash_holds_image());
    /* unchanged: one digest, nothing written */
    d0 = ft.digest_calls;
    int writes = ft.write_calls;
    CHECK_EQ(pf_job_flash(&tgt, &map, &c, &res), PF_OK);
    CHECK_EQ(ft.digest_calls - d0, 1);
    CHECK_EQ(res.skipped_bytes, 8192);
    CHECK_EQ(ft.write_calls, writes);
    /* one piece changed: the span's digest, then one per piece; only that piece is written */
    ((uint8_t *)map.segs[0].data)[5000] ^= 0x55;
    d0 = ft.digest_calls;
    CHECK_EQ(pf_job_flash(&tgt, &map, &c, &res), PF_OK);
    CHECK_EQ(ft.digest_calls - d0, 1 + 8);
    CHECK_EQ(ft.known_erased_calls, 1); /* neither unchanged nor erased: no hint */
    CHECK_EQ(res.written_bytes, 1024);
    CHECK_EQ(res.skipped_bytes, 7 * 1024);
    CHECK(flash_holds_image());
}

static void test_protected_range_refused_before_writing(void)
{
    setup(PF_ERASE_BY_WRITE, 0, 0, 1);
    tgt.info.geom.n_protected = 1;
    tgt.info.geom.protected_ranges[0] = (pf_range){0x7E00, 0x200, "Optiboot boot section"};
    add(0x7000, 0xE01, 4);
    REQUIRE(pf_memmap_finish(&map, NULL) == PF_OK);
    pf_job_config c = config();
    pf_job_result res;
    CHECK_EQ(pf_job_flash(&tgt, &map, &c, &res), PF_ERR_RANGE);
    CHECK_STR_CONTAINS(diag.text, "Optiboot boot section");
    CHECK_STR_CONTAINS(diag.text, "0x00007e00");
    CHECK_EQ(ft.write_calls + ft.erase_calls + ft.begin_calls, 0);
}

static void test_outside_flash_refused(void)
{
    setup(PF_ERASE_EXPLICIT, 1024, 1, 1);
    add(65536 - 16, 32, 5);
    REQUIRE(pf_memmap_finish(&map, NULL) == PF_OK);
    pf_job_config c = config();
    pf_job_result res;
    CHECK_EQ(pf_job_flash(&tgt, &map, &c, &res), PF_ERR_RANGE);
    CHECK_STR_CONTAINS(diag.text, "outside flash");
    CHECK_EQ(ft.write_calls + ft.erase_calls, 0);
}

static void test_digest_mismatch_narrowed_by_read_back(void)
{
    setup(PF_ERASE_EXPLICIT, 1024, 1, 1);
    ft.corrupt_addr = 777;
    add(0, 2000, 6);
    REQUIRE(pf_memmap_finish(&map, NULL) == PF_OK);
    pf_job_config c = config();
    pf_job_result res;
    CHECK_EQ(pf_job_flash(&tgt, &map, &c, &res), PF_ERR_VERIFY);
    CHECK_EQ(res.mismatch_addr, 777);
    CHECK_STR_CONTAINS(diag.text, "0x00000309");
}

static void test_read_back_verify_without_digest(void)
{
    setup(PF_ERASE_BY_WRITE, 0, 0, 1);
    ft.corrupt_addr = 300;
    add(256, 512, 7);
    REQUIRE(pf_memmap_finish(&map, NULL) == PF_OK);
    pf_job_config c = config();
    pf_job_result res;
    CHECK_EQ(pf_job_flash(&tgt, &map, &c, &res), PF_ERR_VERIFY);
    CHECK_EQ(res.mismatch_addr, 300);
    ft.corrupt_addr = 0;
    CHECK_EQ(pf_job_flash(&tgt, &map, &c, &res), PF_OK); /* a re-run completes */
    CHECK_STR_CONTAINS(res.verify_method, "read-back");
    CHECK(flash_holds_image());
}

static void test_no_verify_possible_is_reported(void)
{
    setup(PF_ERASE_BY_WRITE, 0, 0, 0);
    add(0, 128, 8);
    REQUIRE(pf_memmap_finish(&map, NULL) == PF_OK);
    pf_job_config c = config();
    pf_job_result res;
    CHECK_EQ(pf_job_flash(&tgt, &map, &c, &res), PF_OK);
    CHECK_EQ(res.verified, 0); /* never claims a verify it could not do */
    CHECK_EQ(pf_job_verify(&tgt, &map, &c, &res), PF_ERR_UNSUPPORTED);
}

static void test_write_failure_names_address(void)
{
    setup(PF_ERASE_BY_WRITE, 0, 0, 1);
    ft.fail_write_at = 3;
    add(0, 1024, 9);
    REQUIRE(pf_memmap_finish(&map, NULL) == PF_OK);
    pf_job_config c = config();
    pf_job_result res;
    CHECK_EQ(pf_job_flash(&tgt, &map, &c, &res), PF_ERR_TARGET);
    CHECK_STR_CONTAINS(diag.text, "write at 0x00000100");
}

static void test_page_fill_and_alignment(void)
{
    setup(PF_ERASE_BY_WRITE, 0, 0, 1); /* AVR-like: 128-byte pages, page write erases */
    memset(ft.flash, 0x11, sizeof ft.flash);
    add(130, 10, 10); /* mid-page: the page 128..255 is written whole, filled */
    REQUIRE(pf_memmap_finish(&map, NULL) == PF_OK);
    pf_job_config c = config();
    pf_job_result res;
    CHECK_EQ(pf_job_flash(&tgt, &map, &c, &res), PF_OK);
    CHECK(flash_holds_image());
    CHECK_EQ(ft.flash[128], 0xFF);  /* fill inside the written page */
    CHECK_EQ(ft.flash[127], 0x11);  /* the page before is untouched */
    CHECK_EQ(ft.flash[256], 0x11);  /* and the page after */
    CHECK_EQ(res.written_bytes, 128);
}

static void test_runs_sharing_an_erase_unit_are_joined(void)
{
    /* ESP-like: write_begin erases the 4 KiB sectors of its run. Two pieces of
     * one sector far apart must be one run, or the second erase would wipe
     * the first piece. */
    setup(PF_ERASE_BY_WRITE, 4096, 1, 1);
    add(4096 + 8, 16, 11);
    add(4096 + 3000, 16, 12);
    REQUIRE(pf_memmap_finish(&map, NULL) == PF_OK);
    pf_job_config c = config();
    c.skip_unchanged = 0;
    pf_job_result res;
    CHECK_EQ(pf_job_flash(&tgt, &map, &c, &res), PF_OK);
    CHECK_EQ(res.runs, 1);
    CHECK(flash_holds_image());
}

static void test_erase_all_and_run(void)
{
    setup(PF_ERASE_EXPLICIT, 1024, 1, 1);
    memset(ft.flash + 30000, 0, 100);
    add(0, 100, 13);
    REQUIRE(pf_memmap_finish(&map, NULL) == PF_OK);
    pf_job_config c = config();
    c.erase = PF_ERASE_ALL;
    c.run_after = 1;
    pf_job_result res;
    CHECK_EQ(pf_job_flash(&tgt, &map, &c, &res), PF_OK);
    CHECK_EQ(ft.flash[30000], 0xFF);
    CHECK(ft.ran);
    CHECK(flash_holds_image());
}

static void test_empty_image(void)
{
    setup(PF_ERASE_EXPLICIT, 1024, 1, 1);
    REQUIRE(pf_memmap_finish(&map, NULL) == PF_OK);
    pf_job_config c = config();
    pf_job_result res;
    CHECK_EQ(pf_job_flash(&tgt, &map, &c, &res), PF_ERR_FORMAT);
    CHECK_STR_CONTAINS(diag.text, "no data");
}

typedef struct progress_log {
    int calls[5];
    uint32_t last_done[5], last_total[5];
    int backwards;
} progress_log;

static void record_progress(void *user, pf_phase phase, uint32_t done, uint32_t total)
{
    progress_log *l = user;
    if (l->calls[phase] && done < l->last_done[phase])
        l->backwards = 1;
    l->calls[phase]++;
    l->last_done[phase] = done;
    l->last_total[phase] = total;
}

static void test_progress_is_monotonic_and_complete(void)
{
    setup(PF_ERASE_BY_WRITE, 0, 0, 1); /* read-back verify: progress per chunk */
    add(0, 8192, 14);
    REQUIRE(pf_memmap_finish(&map, NULL) == PF_OK);
    pf_job_config c = config();
    progress_log log = {{0}, {0}, {0}, 0};
    c.progress = record_progress;
    c.progress_user = &log;
    pf_job_result res;
    CHECK_EQ(pf_job_flash(&tgt, &map, &c, &res), PF_OK);
    CHECK(!log.backwards);
    CHECK_EQ(log.last_done[PF_PHASE_WRITE], 8192);
    CHECK_EQ(log.last_total[PF_PHASE_WRITE], 8192);
    CHECK_EQ(log.last_done[PF_PHASE_VERIFY], 8192);
    CHECK(log.calls[PF_PHASE_VERIFY] >= 8); /* not only 0% and 100% */
    CHECK_EQ(log.calls[PF_PHASE_ERASE], 0); /* nothing to erase on a by-write target */
}

/* Property: for random images on random geometries, the job leaves every image
 * byte in flash and every erase unit the image does not touch as it was. */
static void test_random_images_property(void)
{
    unsigned seed = 12345;
    for (int iter = 0; iter < 300; iter++) {
        srand(seed + (unsigned)iter);
        int kind = rand() % 3;
        uint32_t unit = kind == 0 ? 1024u : kind == 1 ? 4096u : 0u;
        setup(kind == 0 ? PF_ERASE_EXPLICIT : PF_ERASE_BY_WRITE, unit, rand() % 2, 1);
        static uint8_t before[65536];
        for (size_t i = 0; i < sizeof before; i++)
            before[i] = (uint8_t)rand();
        memcpy(ft.flash, before, sizeof before);
        int nseg = 1 + rand() % 6;
        uint32_t at = (uint32_t)(rand() % 4096);
        for (int s = 0; s < nseg && at < 60000; s++) {
            uint32_t len = 1 + (uint32_t)(rand() % 3000);
            if (at + len > 65536)
                break;
            add(at, len, (uint8_t)rand());
            at += len + (uint32_t)(rand() % 6000);
        }
        if (pf_memmap_finish(&map, NULL) != PF_OK || map.count == 0)
            continue;
        pf_job_config c = config();
        c.fill_gap_max = (uint32_t)(rand() % 512);
        pf_job_result res;
        int r = pf_job_flash(&tgt, &map, &c, &res);
        if (r != PF_OK) {
            fprintf(stderr, "iteration %d (seed %u): %s\n", iter, seed + (unsigned)iter, diag.text);
            CHECK_EQ(r, PF_OK);
            return;
        }
        CHECK(flash_holds_image());
        /* untouched units keep their old bytes */
        uint32_t u = unit ? unit : 128;
        for (uint32_t base = 0; base < 65536; base += u) {
            int touched = 0;
            for (size_t i = 0; i < map.count; i++)
                if (map.segs[i].addr < base + u && map.segs[i].addr + map.segs[i].len > base)
                    touched = 1;
            /* fill between nearby segments may touch a unit with no image data */
            if (!touched && memcmp(ft.flash + base, before + base, u) != 0) {
                int inside_run = 0;
                pf_run run;
                for (uint32_t f = 0; pf_job_next_run(&map, &tgt.info.geom, c.fill_gap_max, f, &run);
                     f = run.addr + run.len)
                    if (run.addr < base + u && run.addr + run.len > base)
                        inside_run = 1;
                if (!inside_run) {
                    fprintf(stderr, "iteration %d: unit 0x%x changed though untouched\n", iter, base);
                    CHECK(0);
                    return;
                }
            }
        }
    }
}

/* A map without an arena (pf_memmap_init_source): the job's reads come from
 * the source each time (an updater re-reading its SD card), the image is
 * written and verified; a source that fails stops the job with its error. */
typedef struct src_state {
    uint32_t base, len;
    int reads, fail_after; /* fail_after > 0: that read and all later fail */
    size_t expected;
} src_state;

static uint8_t src_byte(uint32_t addr) { return (uint8_t)(addr * 13u + 5u); }

static int src_read(void *user, uint32_t addr, uint8_t *out, size_t len, size_t expect)
{
    src_state *st = user;
    st->reads++;
    if (st->fail_after && st->reads >= st->fail_after)
        return pf_diag_set(&diag, PF_ERR_IO, "card removed");
    size_t n = 0;
    for (size_t i = 0; i < len; i++)
        if (addr + i >= st->base && addr + i < st->base + st->len) {
            out[i] = src_byte((uint32_t)(addr + i));
            n++;
        }
    st->expected += expect;
    CHECK_EQ(n, expect); /* expect is the count the segments cover */
    return PF_OK;
}

static void test_streamed_source(void)
{
    setup(PF_ERASE_EXPLICIT, 1024, 0, 1); /* read-back verify: the source is read twice */
    src_state st = { 1000, 9000, 0, 0, 0 };
    pf_memmap_source src = { src_read, &st, 0 };
    pf_memmap_init_source(&map, segs, 64, &src);
    uint8_t rec[100];
    for (uint32_t a = st.base; a < st.base + st.len; a += sizeof rec) /* records, as a reader adds them */
        REQUIRE(pf_memmap_add(&map, a, rec, sizeof rec, NULL) == PF_OK);
    CHECK_EQ(map.count, 1);
    CHECK(map.segs[0].data == NULL);
    REQUIRE(pf_memmap_finish(&map, NULL) == PF_OK);
    pf_job_config c = config();
    c.buf_size = 512;
    pf_job_result res;
    CHECK_EQ(pf_job_flash(&tgt, &map, &c, &res), PF_OK);
    for (uint32_t a = st.base; a < st.base + st.len; a++)
        if (ft.flash[a] != src_byte(a)) {
            CHECK_EQ(ft.flash[a], src_byte(a));
            break;
        }
    CHECK(res.verified);
    CHECK(st.reads > 2 * (int)(st.len / 512));
    CHECK_EQ(pf_memmap_error(&map), PF_OK);

    /* the card fails half way through the writes */
    setup(PF_ERASE_EXPLICIT, 1024, 0, 1);
    src_state bad = { 1000, 9000, 0, 5, 0 };
    pf_memmap_source src2 = { src_read, &bad, 0 };
    pf_memmap_init_source(&map, segs, 64, &src2);
    for (uint32_t a = bad.base; a < bad.base + bad.len; a += sizeof rec)
        REQUIRE(pf_memmap_add(&map, a, rec, sizeof rec, NULL) == PF_OK);
    REQUIRE(pf_memmap_finish(&map, NULL) == PF_OK);
    int writes_before = ft.write_calls;
    CHECK_EQ(pf_job_flash(&tgt, &map, &c, &res), PF_ERR_IO);
    CHECK_EQ(pf_memmap_error(&map), PF_ERR_IO);
    CHECK_STR_CONTAINS(diag.text, "card removed");
    CHECK_EQ(ft.write_calls - writes_before, 4); /* the four reads that worked were written, no more */
    CHECK(!res.verified);
}

int main(void)
{
    RUN(test_explicit_erase_touches_only_needed_units);
    RUN(test_skip_unchanged);
    RUN(test_protected_range_refused_before_writing);
    RUN(test_outside_flash_refused);
    RUN(test_skip_check_one_digest_per_span);
    RUN(test_digest_mismatch_narrowed_by_read_back);
    RUN(test_read_back_verify_without_digest);
    RUN(test_no_verify_possible_is_reported);
    RUN(test_write_failure_names_address);
    RUN(test_page_fill_and_alignment);
    RUN(test_runs_sharing_an_erase_unit_are_joined);
    RUN(test_erase_all_and_run);
    RUN(test_empty_image);
    RUN(test_progress_is_monotonic_and_complete);
    RUN(test_random_images_property);
    RUN(test_streamed_source);
    return pf_test_summary();
}
