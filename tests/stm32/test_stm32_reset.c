/* Entry sequences on DTR/RTS (pf_target_config.reset) and the no-answer
 * path of connect, on a fake port with modem lines and a virtual clock. */
#include <stdio.h>
#include <string.h>

#include "peerflash/pf_stm32.h"
#include "targets/stm32_state.h" /* white-box: the driver's private state */
#include "pf_test.h"

typedef struct fake {
    uint32_t now;
    int has_lines;
    char log[512];
    unsigned writes;
} fake;

static void note(fake *f, const char *s)
{
    size_t n = strlen(f->log);
    snprintf(f->log + n, sizeof f->log - n, "%s%s", n ? " " : "", s);
}
static int f_read(void *ctx, uint8_t *b, size_t n, uint32_t t)
{
    (void)b;
    (void)n;
    fake *f = ctx;
    f->now += t; /* silence: the whole timeout passes */
    return 0;
}
static int f_write(void *ctx, const uint8_t *b, size_t n)
{
    (void)b;
    fake *f = ctx;
    f->writes++;
    return (int)n;
}
static int f_lines(void *ctx, int dtr, int rts)
{
    fake *f = ctx;
    if (!f->has_lines)
        return PF_ERR_UNSUPPORTED;
    char s[16];
    if (dtr != PF_LINE_KEEP)
        snprintf(s, sizeof s, "%sdtr", dtr == PF_LINE_ASSERT ? "+" : "-");
    else
        snprintf(s, sizeof s, "%srts", rts == PF_LINE_ASSERT ? "+" : "-");
    note(f, s);
    return PF_OK;
}
static uint32_t f_now(void *ctx) { return ((fake *)ctx)->now; }
static void f_delay(void *ctx, uint32_t ms)
{
    fake *f = ctx;
    char s[16];
    snprintf(s, sizeof s, "%ums", (unsigned)ms);
    note(f, s);
    f->now += ms;
}

static int connect_with(fake *f, const char *reset, pf_diag *d)
{
    pf_port p = {f, f_read, f_write, NULL, NULL, NULL, f_lines, f_now, f_delay, NULL};
    pf_target_config c = PF_TARGET_CONFIG_DEFAULT();
    c.port = &p;
    c.diag = d;
    c.reset = reset;
    static pf_stm32 s;
    pf_target_info info;
    int r = pf_target_stm32.open(&s, &c);
    if (r < 0)
        return r;
    return pf_target_stm32.connect(&s, &info);
}

static void test_auto_sequence(void)
{
    fake f = {0, 1, "", 0};
    pf_diag d = {0};
    int r = connect_with(&f, NULL, &d);
    CHECK_EQ(r, PF_ERR_NO_SYNC);
    /* auto: BOOT0 high (RTS), reset pulse on DTR, wait for the ROM */
    CHECK(strncmp(f.log, "+rts +dtr 20ms -dtr 50ms", 24) == 0);
    CHECK_STR_CONTAINS(d.text, "does not answer 0x7F");
    CHECK_STR_CONTAINS(d.text, "BOOT0");
    CHECK(f.writes > 0);
    /* it gives up within a bounded (virtual) time */
    CHECK(f.now < 60000);
}

static void test_custom_and_none(void)
{
    fake f = {0, 1, "", 0};
    pf_diag d = {0};
    connect_with(&f, "-dtr,dtr,5,-rts:rts", &d);
    CHECK(strncmp(f.log, "-dtr +dtr 5ms -rts", 18) == 0);
    fake g = {0, 1, "", 0};
    connect_with(&g, "none", &d);
    CHECK(strstr(g.log, "dtr") == NULL && strstr(g.log, "rts") == NULL);
    /* no modem lines (pty, TCP): no line changes and no waits for them */
    fake h = {0, 0, "", 0};
    connect_with(&h, "auto", &d);
    CHECK(strstr(h.log, "20ms") == NULL);
    /* a bad step is a caller error naming the sequence */
    fake k = {0, 1, "", 0};
    CHECK_EQ(connect_with(&k, "rts,boot0", &d), PF_ERR_ARG);
    CHECK_STR_CONTAINS(d.text, "rts,boot0");
}

int main(void)
{
    RUN(test_auto_sequence);
    RUN(test_custom_and_none);
    return pf_test_summary();
}
