/* The avr driver against a scripted STK500v1 bootloader (in-process, virtual
 * time): what simavr cannot show with its ATmega328P. Parts over 128 KiB
 * (ATmega2560) get the Universal "load extended address" command exactly
 * when bits 17+ of the address change; 256-byte pages; a bootloader answer
 * other than INSYNC/OK fails with its byte quoted; a --chip mismatch names
 * both parts before anything is written. */
#include <string.h>

#include "codec/stk500.h"
#include "peerflash/peerflash.h"
#include "peerflash/pf_avr.h"
#include "targets/avr_state.h" /* white-box: the driver's private state */
#include "pf_test.h"

#define MEM_SIZE (256u * 1024u)

typedef struct fake_boot {
    uint8_t sig[3];
    uint8_t mem[MEM_SIZE];
    uint8_t in[512];
    size_t in_len;
    uint8_t out[1024];
    size_t out_head, out_len;
    uint8_t ext;
    uint16_t word;
    unsigned ext_cmds, pages_written, reads, loads;
    unsigned sig_flips;  /* the next answers to Read Signature arrive with a bit flipped */
    unsigned sig_reads;
    uint8_t fail_cmd;    /* answer this command with fail_byte instead of INSYNC */
    uint8_t fail_byte;
    uint32_t now;
    int lines_supported;
    int line_calls;
    int dtr[4], rts[4];
    uint32_t line_at[4];
} fake_boot;

static void reply(fake_boot *f, const uint8_t *b, size_t n)
{
    for (size_t i = 0; i < n && f->out_len < sizeof f->out; i++)
        f->out[(f->out_head + f->out_len++) % sizeof f->out] = b[i];
}

static void ok(fake_boot *f, const uint8_t *payload, size_t n)
{
    uint8_t b = PF_STK_INSYNC;
    reply(f, &b, 1);
    reply(f, payload, n);
    b = PF_STK_OK;
    reply(f, &b, 1);
}

static uint32_t byte_addr(const fake_boot *f)
{
    return ((uint32_t)f->ext << 17) | ((uint32_t)f->word << 1);
}

/* Length of the command at the start of in[], 0 if not complete yet. */
static size_t cmd_len(const fake_boot *f)
{
    if (!f->in_len)
        return 0;
    size_t need;
    switch (f->in[0]) {
    case PF_STK_GET_PARAMETER: need = 3; break;
    case PF_STK_LOAD_ADDRESS: need = 4; break;
    case PF_STK_UNIVERSAL: need = 6; break;
    case PF_STK_READ_PAGE: need = 5; break;
    case PF_STK_PROG_PAGE:
        if (f->in_len < 3)
            return 0;
        need = 5u + (size_t)((f->in[1] << 8) | f->in[2]);
        break;
    default: need = 2; break;
    }
    return f->in_len >= need ? need : 0;
}

static void run_cmd(fake_boot *f, size_t n)
{
    const uint8_t *c = f->in;
    if (c[n - 1] != PF_STK_CRC_EOP) {
        uint8_t b = PF_STK_NOSYNC;
        reply(f, &b, 1);
        return;
    }
    if (f->fail_cmd && c[0] == f->fail_cmd) {
        reply(f, &f->fail_byte, 1);
        return;
    }
    switch (c[0]) {
    case PF_STK_GET_PARAMETER: {
        uint8_t v = c[1] == PF_STK_PARAM_SW_MAJOR ? 8 : c[1] == PF_STK_PARAM_SW_MINOR ? 3 : 3;
        ok(f, &v, 1);
        break;
    }
    case PF_STK_READ_SIGN: {
        uint8_t sig[3] = {f->sig[0], f->sig[1], f->sig[2]};
        f->sig_reads++;
        if (f->sig_flips) { /* each corrupted answer differs from the last */
            sig[2] ^= (uint8_t)(1u << (f->sig_flips % 8));
            f->sig_flips--;
        }
        ok(f, sig, 3);
        break;
    }
    case PF_STK_LOAD_ADDRESS:
        f->word = (uint16_t)(c[1] | (c[2] << 8));
        f->loads++;
        ok(f, NULL, 0);
        break;
    case PF_STK_UNIVERSAL: {
        uint8_t v = 0;
        if (c[1] == 0x4D) {
            f->ext = c[3];
            f->ext_cmds++;
        }
        ok(f, &v, 1);
        break;
    }
    case PF_STK_PROG_PAGE: {
        size_t len = (size_t)((c[1] << 8) | c[2]);
        memcpy(f->mem + byte_addr(f), c + 4, len);
        f->pages_written++;
        ok(f, NULL, 0);
        break;
    }
    case PF_STK_READ_PAGE: {
        size_t len = (size_t)((c[1] << 8) | c[2]);
        f->reads++;
        ok(f, f->mem + byte_addr(f), len);
        /* Like Optiboot: the 16-bit address register steps per byte read. */
        f->word = (uint16_t)(((uint32_t)f->word * 2u + len) / 2u);
        break;
    }
    default: ok(f, NULL, 0); break;
    }
}

static int f_write(void *ctx, const uint8_t *buf, size_t n)
{
    fake_boot *f = ctx;
    for (size_t i = 0; i < n; i++) {
        f->in[f->in_len++] = buf[i];
        size_t len = cmd_len(f);
        if (len) {
            run_cmd(f, len);
            f->in_len = 0;
        }
    }
    return (int)n;
}

static int f_read(void *ctx, uint8_t *buf, size_t n, uint32_t timeout_ms)
{
    fake_boot *f = ctx;
    size_t k = 0;
    while (k < n && f->out_len) {
        buf[k++] = f->out[f->out_head];
        f->out_head = (f->out_head + 1) % sizeof f->out;
        f->out_len--;
    }
    if (!k)
        f->now += timeout_ms; /* nothing will come: let the time pass */
    return (int)k;
}

static uint32_t f_now(void *ctx)
{
    return ((fake_boot *)ctx)->now;
}

static void f_delay(void *ctx, uint32_t ms)
{
    ((fake_boot *)ctx)->now += ms;
}

static int f_set_lines(void *ctx, int dtr, int rts)
{
    fake_boot *f = ctx;
    if (!f->lines_supported) {
        f->line_calls++;
        return PF_ERR_UNSUPPORTED;
    }
    if (f->line_calls < 4) {
        f->dtr[f->line_calls] = dtr;
        f->rts[f->line_calls] = rts;
        f->line_at[f->line_calls] = f->now;
    }
    f->line_calls++;
    return PF_OK;
}

static fake_boot g_boot;

static pf_port fake_port(fake_boot *f)
{
    pf_port p;
    memset(&p, 0, sizeof p);
    p.ctx = f;
    p.read = f_read;
    p.write = f_write;
    p.now_ms = f_now;
    p.delay_ms = f_delay;
    p.set_lines = f_set_lines;
    return p;
}

static int connect_reset(pf_avr *avr, pf_target *t, const pf_port *port, pf_diag *d, const char *chip,
                         const char *reset)
{
    memset(avr, 0, sizeof *avr);
    memset(t, 0, sizeof *t);
    pf_target_config cfg = PF_TARGET_CONFIG_DEFAULT();
    cfg.port = port;
    cfg.diag = d;
    cfg.chip = chip;
    cfg.reset = reset;
    t->ops = &pf_target_avr;
    t->self = avr;
    int r = pf_target_avr.open(avr, &cfg);
    return r ? r : pf_target_avr.connect(avr, &t->info);
}

static int connect(pf_avr *avr, pf_target *t, const pf_port *port, pf_diag *d, const char *chip)
{
    return connect_reset(avr, t, port, d, chip, NULL);
}

/* On a port with modem lines, connect pulses the Arduino auto-reset: DTR and
 * RTS released (the capacitor charges), then asserted (the falling edge of
 * DTR# resets the chip), before the first sync; "none" leaves them alone; a
 * link without lines (pty, TCP) costs no waiting at all. */
static void test_auto_reset_lines(void)
{
    fake_boot *f = &g_boot;
    memset(f, 0, sizeof *f);
    const uint8_t sig[3] = {0x1E, 0x95, 0x0F};
    memcpy(f->sig, sig, 3);
    f->lines_supported = 1;
    pf_port port = fake_port(f);
    static pf_avr avr;
    pf_target t;
    pf_diag d = {0};
    REQUIRE(connect(&avr, &t, &port, &d, NULL) == PF_OK);
    CHECK_EQ(f->line_calls, 2);
    CHECK(f->dtr[0] == PF_LINE_RELEASE && f->rts[0] == PF_LINE_RELEASE);
    CHECK(f->dtr[1] == PF_LINE_ASSERT && f->rts[1] == PF_LINE_ASSERT);
    CHECK(f->line_at[1] - f->line_at[0] >= 50); /* released long enough to recharge */
    uint32_t with_lines = f->now;

    memset(f, 0, sizeof *f);
    memcpy(f->sig, sig, 3);
    f->lines_supported = 1;
    REQUIRE(connect_reset(&avr, &t, &port, &d, NULL, "none") == PF_OK);
    CHECK_EQ(f->line_calls, 0);

    memset(f, 0, sizeof *f);
    memcpy(f->sig, sig, 3);
    REQUIRE(connect(&avr, &t, &port, &d, NULL) == PF_OK);
    CHECK_EQ(f->line_calls, 1); /* tried, unsupported, no delay */
    CHECK(f->now + 100 <= with_lines);
}

static void test_2560_extended_addressing(void)
{
    fake_boot *f = &g_boot;
    memset(f, 0, sizeof *f);
    memset(f->mem, 0xFF, sizeof f->mem);
    const uint8_t sig[3] = {0x1E, 0x98, 0x01};
    memcpy(f->sig, sig, 3);
    pf_port port = fake_port(f);
    static pf_avr avr;
    pf_target t;
    pf_diag d = {0};
    REQUIRE(connect(&avr, &t, &port, &d, "m2560") == PF_OK);
    CHECK_STR_CONTAINS(t.info.chip, "ATmega2560");
    CHECK_STR_CONTAINS(t.info.bootloader, "Optiboot 8.3");
    CHECK_EQ(t.info.geom.write_align, 256);
    CHECK_EQ(t.info.geom.protected_ranges[0].start, MEM_SIZE - 1024);

    /* 2 KiB across the 128 KiB line (0x1FC00-0x203FF). */
    static uint8_t img[2048];
    for (size_t i = 0; i < sizeof img; i++)
        img[i] = (uint8_t)(i * 13 + 5);
    static pf_segment segs[2];
    static uint8_t arena[4096];
    pf_memmap map;
    pf_memmap_init(&map, segs, 2, arena, sizeof arena);
    REQUIRE(pf_memmap_add(&map, 0x1FC00, img, sizeof img, &d) == PF_OK);
    REQUIRE(pf_memmap_finish(&map, &d) == PF_OK);
    static uint8_t buf[1024];
    pf_job_config jc = PF_JOB_CONFIG_DEFAULT();
    jc.buf = buf;
    jc.buf_size = sizeof buf;
    jc.diag = &d;
    jc.run_after = 1;
    pf_job_result res;
    int r = pf_job_flash(&t, &map, &jc, &res);
    if (r)
        fprintf(stderr, "%s\n", d.text);
    CHECK_EQ(r, PF_OK);
    CHECK(res.verified);
    CHECK(memcmp(f->mem + 0x1FC00, img, sizeof img) == 0);
    CHECK_EQ(f->pages_written, 8);
    /* ext 0 for the first 4 pages, ext 1 after the line; the verify reads
     * switch back to 0 and to 1 again: 4 switches, not one per command. */
    CHECK_EQ(f->ext_cmds, 4);
    CHECK_EQ(f->reads, 8); /* 256-byte blocks */
    /* 8 page writes each load their address; the reads load it only where
     * a run starts or the 16-bit register wraps (0x1FC00 and 0x20000). */
    CHECK_EQ(f->loads, 8 + 2);
}

static void test_bootloader_failure_byte(void)
{
    fake_boot *f = &g_boot;
    memset(f, 0, sizeof *f);
    const uint8_t sig[3] = {0x1E, 0x95, 0x0F};
    memcpy(f->sig, sig, 3);
    f->fail_cmd = PF_STK_PROG_PAGE;
    f->fail_byte = PF_STK_FAILED;
    pf_port port = fake_port(f);
    static pf_avr avr;
    pf_target t;
    pf_diag d = {0};
    REQUIRE(connect(&avr, &t, &port, &d, NULL) == PF_OK);
    uint8_t page[128];
    memset(page, 0x5A, sizeof page);
    int r = pf_target_avr.write(&avr, 0x100, page, sizeof page);
    CHECK_EQ(r, PF_ERR_PROTOCOL);
    CHECK_STR_CONTAINS(d.text, "0x11 (FAILED)");
    CHECK_STR_CONTAINS(d.text, "Program Page");
    CHECK_EQ(avr.last_bad, 0x11);
    /* Writes into the boot section are refused by the driver as well. */
    r = pf_target_avr.write(&avr, 0x7E00, page, sizeof page);
    CHECK_EQ(r, PF_ERR_RANGE);
    CHECK_STR_CONTAINS(d.text, "bootloader section");
}

static void test_chip_mismatch_names_both(void)
{
    fake_boot *f = &g_boot;
    memset(f, 0, sizeof *f);
    const uint8_t sig[3] = {0x1E, 0x97, 0x05};
    memcpy(f->sig, sig, 3);
    pf_port port = fake_port(f);
    static pf_avr avr;
    pf_target t;
    pf_diag d = {0};
    CHECK_EQ(connect(&avr, &t, &port, &d, "ATmega328P"), PF_ERR_CHIP);
    CHECK_STR_CONTAINS(d.text, "ATmega1284P");
    CHECK_STR_CONTAINS(d.text, "ATmega328P");
    CHECK_EQ(f->pages_written, 0);
    /* The right name connects, with 256-byte pages and a 1 KiB boot section. */
    CHECK_EQ(connect(&avr, &t, &port, &d, "atmega1284p"), PF_OK);
    CHECK_EQ(t.info.geom.write_max, 256);
    CHECK_EQ(t.info.geom.protected_ranges[0].size, 1024);
}

/* issue 10: a signature corrupted on the line is not another chip (exit 5):
 * one flipped answer is outvoted, answers that never agree are a link error. */
static void test_signature_noise_is_not_a_chip(void)
{
    fake_boot *f = &g_boot;
    memset(f, 0, sizeof *f);
    const uint8_t sig[3] = {0x1E, 0x95, 0x0F};
    memcpy(f->sig, sig, 3);
    pf_port port = fake_port(f);
    static pf_avr avr;
    pf_target t;
    pf_diag d = {0};
    f->sig_flips = 1; /* 1E 95 0D: not in the table, was "unknown AVR signature" */
    CHECK_EQ(connect(&avr, &t, &port, &d, NULL), PF_OK);
    CHECK(strcmp(t.info.chip, "ATmega328P") == 0);
    f->sig_flips = 1; /* with --chip: was "the target is ..., not the ATmega328P" */
    CHECK_EQ(connect(&avr, &t, &port, &d, "ATmega328P"), PF_OK);
    f->sig_flips = 20;
    f->sig_reads = 0;
    CHECK_EQ(connect(&avr, &t, &port, &d, NULL), PF_ERR_CRC);
    CHECK_STR_CONTAINS(d.text, "the line corrupts data");
    CHECK_EQ(f->sig_reads, 5);
}

int main(void)
{
    RUN(test_auto_reset_lines);
    RUN(test_2560_extended_addressing);
    RUN(test_bootloader_failure_byte);
    RUN(test_chip_mismatch_names_both);
    RUN(test_signature_noise_is_not_a_chip);
    return pf_test_summary();
}
