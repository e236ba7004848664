/* A new driver plugs in without touching cli/ or firmware/: a test-only
 * driver ("plug", the in-memory fake target with an option table) is put in
 * a registry of its own next to the built-in drivers; pf_session finds it,
 * checks and applies its option, connects, runs its image check, and the
 * flash job writes into it; the --help lines that the CLI prints (the same
 * pf_target_options_help call) list its option from its own table; a wrong
 * option is refused naming the option and the driver. Also: the range calls
 * behind `read` and `erase` (64-bit sums near 4 GiB) and the one exit-status
 * map. */
#include <string.h>

#include "fake_target.h"
#include "peerflash/pf_session.h"
#include "pf_test.h"

/* ---- the plug-in driver: the fake target plus what a real driver declares ---- */
typedef struct plug {
    fake_target fake; /* first: the fake's operations take the same pointer */
    int fill_zero;    /* option "fill-zero": erased value 0x00 (shows set_option reached the state) */
    int opened;
    uint32_t checked_segments; /* segments the image check looked at */
    int refuse_image;          /* option "refuse-image": the check refuses any image */
} plug;

static pf_diag *plug_diag;

static int plug_open(void *self, const pf_target_config *cfg)
{
    plug *p = self;
    fake_init(&p->fake, PF_ERASE_EXPLICIT, 1024, 1, 1);
    p->opened = 1;
    plug_diag = cfg->diag;
    return fake_ops.open(self, cfg);
}

static int plug_set_option(void *self, const char *name, const char *value)
{
    plug *p = self;
    if (!strcmp(name, "fill-zero"))
        p->fill_zero = 1;
    else if (!strcmp(name, "refuse-image"))
        p->refuse_image = 1;
    else if (!strcmp(name, "level")) {
        if (strcmp(value, "1") && strcmp(value, "2"))
            return pf_diag_set(plug_diag, PF_ERR_ARG, "option 'level' of the plug driver takes 1 or 2, not '%s'",
                               value);
    }
    return PF_OK;
}

static int plug_connect(void *self, pf_target_info *info)
{
    plug *p = self;
    int r = fake_ops.connect(self, info);
    if (p->fill_zero)
        info->details[0] = 'z'; /* a fact the test can see */
    return r;
}

static int plug_check_image(void *self, const pf_memmap *map)
{
    plug *p = self;
    p->checked_segments += (uint32_t)map->count;
    if (p->refuse_image) {
        pf_diag_set(plug_diag, PF_ERR_CHIP, "the plug refuses this image");
        pf_diag_hint(plug_diag, PF_HINT_CHIP);
        return PF_ERR_CHIP;
    }
    return PF_OK;
}

static void plug_stats(const void *self, pf_target_stats *out)
{
    const plug *p = self;
    out->unchanged_bytes = p->fake.write_calls ? 4 : 0;
}

static const pf_target_option plug_options[] = {
    {.name = "fill-zero", .arg = NULL, .help = "a flag the plug driver takes", .commands = PF_CMD_FLASH, .flags = 0},
    {.name = "refuse-image", .arg = NULL, .help = "make the image check fail", .commands = PF_CMD_FLASH, .flags = 0},
    {.name = "level", .arg = "N", .help = "an option with a value (1 or 2)", .commands = PF_CMD_ANY, .flags = 0},
    {.name = NULL},
};

static pf_target_ops plug_ops;
static const pf_target_ops *registry[8];

static void make_registry(void)
{
    plug_ops = fake_ops;
    plug_ops.name = "plug";
    plug_ops.summary = "a driver added by a test";
    plug_ops.ctx_size = sizeof(plug);
    plug_ops.open = plug_open;
    plug_ops.connect = plug_connect;
    plug_ops.options = plug_options;
    plug_ops.set_option = plug_set_option;
    plug_ops.check_image = plug_check_image;
    plug_ops.stats = plug_stats;
    plug_ops.probe_rank = 0;
    size_t n = 0;
    for (size_t i = 0; pf_target_drivers[i] && n < 6; i++)
        registry[n++] = pf_target_drivers[i];
    registry[n++] = &plug_ops;
    registry[n] = NULL;
}

static uint64_t state_words[(sizeof(plug) + 7) / 8];
static pf_diag diag;
static pf_port no_port; /* the fake target does no I/O */

static pf_session_config config(const char *const *options)
{
    pf_session_config c = PF_SESSION_CONFIG_DEFAULT();
    c.target = "plug";
    c.target_cfg.port = &no_port;
    c.target_cfg.diag = &diag;
    c.options = options;
    c.state = state_words;
    c.state_size = sizeof state_words;
    c.command = PF_CMD_FLASH;
    c.drivers = registry;
    return c;
}

static void test_new_driver_is_opened_flashed_and_listed(void)
{
    make_registry();
    CHECK_EQ(pf_session_state_size_in(registry, "plug"), sizeof(plug));
    CHECK_EQ(pf_session_state_size_in(registry, "nothing"), 0);

    const char *const options[] = {"fill-zero", "level=2", NULL};
    pf_session s;
    pf_session_config c = config(options);
    REQUIRE(pf_session_open(&s, &c) == PF_OK);
    plug *p = (plug *)state_words;
    CHECK(p->opened);
    CHECK(p->fill_zero); /* set_option reached the driver's state */
    REQUIRE(pf_session_connect(&s) == PF_OK);
    CHECK(s.connected);
    CHECK_EQ(s.target.info.details[0], 'z');

    /* an image, checked by the driver's hook, then flashed by the job */
    static pf_segment segs[8];
    static uint8_t arena[8192], buf[4096];
    pf_memmap map;
    pf_memmap_init(&map, segs, 8, arena, sizeof arena);
    uint8_t data[3000];
    for (size_t i = 0; i < sizeof data; i++)
        data[i] = (uint8_t)(i * 13 + 1);
    REQUIRE(pf_memmap_add(&map, 0x1000, data, sizeof data, &diag) == PF_OK);
    REQUIRE(pf_memmap_finish(&map, &diag) == PF_OK);
    CHECK_EQ(pf_session_check_image(&s, &map), PF_OK);
    CHECK_EQ(p->checked_segments, 1);
    pf_job_config jc = PF_JOB_CONFIG_DEFAULT();
    jc.buf = buf;
    jc.buf_size = sizeof buf;
    jc.diag = &diag;
    pf_job_result res;
    REQUIRE(pf_job_flash(&s.target, &map, &jc, &res) == PF_OK);
    CHECK(res.verified);
    CHECK(memcmp(p->fake.flash + 0x1000, data, sizeof data) == 0);
    pf_target_stats ts;
    pf_session_stats(&s, &ts);
    CHECK_EQ(ts.unchanged_bytes, 4);
    pf_session_close(&s);
    CHECK(!s.opened);

    /* the help text the CLI prints comes from the tables: the plug's options are there */
    char help[8192];
    size_t need = pf_target_options_help(registry, PF_CMD_FLASH, help, sizeof help);
    CHECK(need < sizeof help);
    CHECK_STR_CONTAINS(help, "  --fill-zero        plug: a flag the plug driver takes\n");
    CHECK_STR_CONTAINS(help, "  --level N          plug: an option with a value (1 or 2)\n");
    CHECK_STR_CONTAINS(help, "--no-compress      esp, agent: send the image uncompressed\n");
    CHECK_STR_CONTAINS(help, "--read-compare     avr: read each page first");
    /* for another command only the options for it */
    pf_target_options_help(registry, PF_CMD_INFO, help, sizeof help);
    CHECK(strstr(help, "--fill-zero") == NULL);
    CHECK_STR_CONTAINS(help, "--level N");
    CHECK_STR_CONTAINS(help, "--unprotect-read   stm32:");
    /* the built-in registry does not know it */
    CHECK(pf_target_find("plug") == NULL);
}

static void test_bad_options_are_refused_naming_option_and_driver(void)
{
    make_registry();
    pf_session s;
    const char *const unknown[] = {"no-compress", NULL};
    pf_session_config c = config(unknown);
    CHECK_EQ(pf_session_open(&s, &c), PF_ERR_ARG);
    CHECK_STR_CONTAINS(diag.text, "'no-compress' is not an option of the plug driver");
    CHECK(!s.opened);

    const char *const wrong_command[] = {"fill-zero", NULL};
    c = config(wrong_command);
    c.command = PF_CMD_READ;
    CHECK_EQ(pf_session_open(&s, &c), PF_ERR_ARG);
    CHECK_STR_CONTAINS(diag.text, "option 'fill-zero' of the plug driver is not for read");

    const char *const no_value[] = {"level", NULL};
    c = config(no_value);
    CHECK_EQ(pf_session_open(&s, &c), PF_ERR_ARG);
    CHECK_STR_CONTAINS(diag.text, "option 'level' of the plug driver needs a value (N)");

    const char *const extra_value[] = {"fill-zero=1", NULL};
    c = config(extra_value);
    CHECK_EQ(pf_session_open(&s, &c), PF_ERR_ARG);
    CHECK_STR_CONTAINS(diag.text, "option 'fill-zero' of the plug driver takes no value");

    const char *const bad_value[] = {"level=7", NULL};
    c = config(bad_value);
    CHECK_EQ(pf_session_open(&s, &c), PF_ERR_ARG);
    CHECK_STR_CONTAINS(diag.text, "takes 1 or 2, not '7'");
    CHECK_STR_CONTAINS(diag.op ? diag.op : "", "option");
    pf_session_close(&s);

    c = config(NULL);
    c.state_size = 8;
    CHECK_EQ(pf_session_open(&s, &c), PF_ERR_NOMEM);
    CHECK_STR_CONTAINS(diag.text, "the plug driver needs");

    c = config(NULL);
    c.target = "nothing";
    CHECK_EQ(pf_session_open(&s, &c), PF_ERR_ARG);
    CHECK_STR_CONTAINS(diag.text, "unknown target 'nothing'");

    /* the same checks without opening anything (a front end's command line) */
    CHECK_EQ(pf_target_check_options(&plug_ops, unknown, PF_CMD_FLASH, &diag), PF_ERR_ARG);
    CHECK_EQ(pf_target_check_options(pf_target_find("esp"), unknown, PF_CMD_FLASH, &diag), PF_OK);
    CHECK_EQ(pf_target_check_options(pf_target_find("esp"), unknown, PF_CMD_VERIFY, &diag), PF_ERR_ARG);
    CHECK_STR_CONTAINS(diag.text, "option 'no-compress' of the esp driver is not for verify");
    /* a choice list ("fast|best|auto") is checked here too, before a port is opened */
    const char *const bad_choice[] = {"compress=fastest", NULL};
    const char *const good_choice[] = {"compress=best", NULL};
    if (pf_target_option_find(pf_target_find("esp"), "compress", 8)) { /* host builds */
        CHECK_EQ(pf_target_check_options(pf_target_find("esp"), bad_choice, PF_CMD_FLASH, &diag), PF_ERR_ARG);
        CHECK_STR_CONTAINS(diag.text, "option 'compress' of the esp driver takes fast|best|auto, not 'fastest'");
        CHECK_EQ(pf_target_check_options(pf_target_find("esp"), good_choice, PF_CMD_FLASH, &diag), PF_OK);
    }
    CHECK_EQ(pf_target_option_value_ok("fast|best|auto", "auto"), 1);
    CHECK_EQ(pf_target_option_value_ok("fast|best|auto", "fas"), 0);
    CHECK_EQ(pf_target_option_value_ok("fast|best|auto", "fast|best"), 0);
    CHECK_EQ(pf_target_option_value_ok("fast|best|auto", ""), 0);
    CHECK_EQ(pf_target_option_value_ok("OLD", "anything"), 1);
}

static void test_image_check_failure_is_data(void)
{
    make_registry();
    const char *const options[] = {"refuse-image", NULL};
    pf_session s;
    pf_session_config c = config(options);
    REQUIRE(pf_session_open(&s, &c) == PF_OK);
    CHECK_EQ(pf_session_check_image(&s, &(pf_memmap){0}), PF_ERR_STATE); /* not connected yet */
    REQUIRE(pf_session_connect(&s) == PF_OK);
    static pf_segment segs[2];
    static uint8_t arena[64];
    pf_memmap map;
    pf_memmap_init(&map, segs, 2, arena, sizeof arena);
    uint8_t one = 1;
    pf_memmap_add(&map, 0, &one, 1, &diag);
    pf_memmap_finish(&map, &diag);
    CHECK_EQ(pf_session_check_image(&s, &map), PF_ERR_CHIP);
    CHECK_STR_CONTAINS(diag.text, "the plug refuses this image");
    CHECK_STR_CONTAINS(diag.op ? diag.op : "", "check");
    CHECK_EQ(diag.hints, PF_HINT_CHIP);
    CHECK_STR_CONTAINS(pf_hint_name(PF_HINT_CHIP), "chip");
    pf_session_close(&s);
}

/* ---- read and erase ranges: the checks the CLI used to make itself ---------- */
static fake_target ft;
static pf_target tgt;
static pf_target_ops high_ops; /* the fake's memory is 64 KiB from 0: erase only records */
static uint32_t erased_at, erased_len;

static int record_erase(void *self, uint32_t addr, uint32_t len)
{
    ((fake_target *)self)->erase_calls++;
    erased_at = addr;
    erased_len = len;
    return PF_OK;
}

static void high_flash(void)
{
    /* a fake flash whose last unit ends exactly at 4 GiB, with a protected
     * range at the top: 32-bit sums (start + size) wrap to 0 there */
    fake_init(&ft, PF_ERASE_EXPLICIT, 1024, 0, 1);
    ft.info.geom.flash_start = 0xFFFF0000u;
    ft.info.geom.flash_size = 0x10000u;
    ft.info.geom.n_regions = 1;
    ft.info.geom.regions[0] = (pf_erase_region){0xFFFF0000u, 0x10000u, 1024};
    ft.info.geom.n_protected = 1;
    ft.info.geom.protected_ranges[0] = (pf_range){0xFFFFF000u, 0x1000u, "bootloader"};
    high_ops = fake_ops;
    high_ops.erase = record_erase;
    tgt.ops = &high_ops;
    tgt.self = &ft;
    tgt.info = ft.info;
}

static void test_erase_range_near_4gib_wrap(void)
{
    high_flash();
    pf_job_config jc = PF_JOB_CONFIG_DEFAULT();
    jc.diag = &diag;
    pf_run erased;
    /* the range reaches into the protected top: refused (a 32-bit sum of the
     * protected range's end is 0 and would have let it through) */
    CHECK_EQ(pf_job_erase_range(&tgt, 0xFFFFE000u, 0x2000u, &jc, &erased), PF_ERR_RANGE);
    CHECK_STR_CONTAINS(diag.text, "0xffffe000-0xffffffff would erase the bootloader");
    CHECK_EQ(ft.erase_calls, 0);
    /* a range that passes 4 GiB is outside flash, not a small address */
    CHECK_EQ(pf_job_erase_range(&tgt, 0xFFFFFC00u, 0x800u, &jc, &erased), PF_ERR_RANGE);
    CHECK_STR_CONTAINS(diag.text, "is outside flash");
    CHECK_EQ(ft.erase_calls, 0);
    /* just below the protected range: whole units, as asked */
    CHECK_EQ(pf_job_erase_range(&tgt, 0xFFFFE100u, 0x100u, &jc, &erased), PF_OK);
    CHECK_EQ(erased.addr, 0xFFFFE000u);
    CHECK_EQ(erased.len, 1024u);
    CHECK_EQ(ft.erase_calls, 1);
    CHECK_EQ(erased_at, 0xFFFFE000u);
    CHECK_EQ(erased_len, 1024u);
    /* the last unit below the protected range, ending at 0xFFFFF000 */
    CHECK_EQ(pf_job_erase_range(&tgt, 0xFFFFEC00u, 0x400u, &jc, &erased), PF_OK);
    CHECK_EQ(erased.addr + erased.len, 0xFFFFF000u);
    /* a target without a separate erase */
    high_ops.erase = NULL;
    CHECK_EQ(pf_job_erase_range(&tgt, 0xFFFF0000u, 0x400u, &jc, &erased), PF_ERR_UNSUPPORTED);
    CHECK_STR_CONTAINS(diag.text, "the fake target erases as it writes");
    CHECK_EQ(pf_job_erase_chip(&tgt, &jc), PF_OK);
    tgt.info.caps &= ~PF_CAP_ERASE_ALL;
    CHECK_EQ(pf_job_erase_chip(&tgt, &jc), PF_ERR_UNSUPPORTED);
    CHECK_STR_CONTAINS(diag.text, "the fake target cannot erase the whole chip");
}

static void test_read_range_near_4gib_wrap(void)
{
    high_flash();
    pf_job_config jc = PF_JOB_CONFIG_DEFAULT();
    jc.diag = &diag;
    static uint8_t out[0x2000];
    /* 0xFFFFF000 + 0x2000 wraps to 0x1000 in 32 bits: outside, not "fits" */
    CHECK_EQ(pf_job_read_range(&tgt, 0xFFFFF000u, out, 0x2000u, &jc), PF_ERR_RANGE);
    CHECK_STR_CONTAINS(diag.text, "0xfffff000+8192 is outside flash (0xffff0000, 65536 bytes)");
    CHECK_EQ(ft.read_calls, 0);
    CHECK_EQ(pf_job_read_check(&tgt, 0xFFFF0000u, 0x10000u, &diag), PF_OK);
    /* the fake's memory is 64 KiB from 0: read its start through a low window */
    high_flash();
    tgt.info.geom.flash_start = 0;
    memset(ft.flash, 0x5A, 600);
    CHECK_EQ(pf_job_read_range(&tgt, 0, out, 600, &jc), PF_OK);
    CHECK_EQ(out[0], 0x5A);
    CHECK_EQ(out[599], 0x5A);
    CHECK_EQ(ft.read_calls, 3); /* write_max (256) per read */
    tgt.info.caps &= ~PF_CAP_READ;
    CHECK_EQ(pf_job_read_range(&tgt, 0, out, 16, &jc), PF_ERR_UNSUPPORTED);
    CHECK_STR_CONTAINS(diag.text, "the fake target cannot read its flash");
}

static void test_one_exit_status_map(void)
{
    CHECK_EQ(pf_exit_status(PF_OK), PF_EXIT_OK);
    CHECK_EQ(pf_exit_status(PF_ERR_ARG), PF_EXIT_USAGE);
    CHECK_EQ(pf_exit_status(PF_ERR_FORMAT), PF_EXIT_IMAGE);
    CHECK_EQ(pf_exit_status(PF_ERR_NO_SYNC), PF_EXIT_LINK);
    CHECK_EQ(pf_exit_status(PF_ERR_PROTECTED), PF_EXIT_TARGET);
    CHECK_EQ(pf_exit_status(PF_ERR_VERIFY), PF_EXIT_VERIFY);
    CHECK_EQ(pf_exit_status(-99), PF_EXIT_FAIL);
}

int main(void)
{
    RUN(test_new_driver_is_opened_flashed_and_listed);
    RUN(test_bad_options_are_refused_naming_option_and_driver);
    RUN(test_image_check_failure_is_data);
    RUN(test_erase_range_near_4gib_wrap);
    RUN(test_read_range_near_4gib_wrap);
    RUN(test_one_exit_status_map);
    return pf_test_summary();
}
