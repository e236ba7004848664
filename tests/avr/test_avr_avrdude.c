/* The harness is faithful enough for the unmodified Debian avrdude
 * (`avrdude -c arduino`, the STK500v1 programmer) to write and verify a
 * ~30 KB image through it; the application then runs and prints the CRC of
 * the flash it finds. avrdude runs under `timeout` (it spins forever when a
 * pty master disappears). */
#include "avr_sim_util.h"
#include "pf_test.h"

static void test_avrdude_writes_and_verifies(void)
{
    uint8_t *img = NULL;
    long n = load_app("app_big", &img);
    REQUIRE(n > 29000);
    avr_sim s;
    REQUIRE(sim_start(&s, "avrdude", NULL) == 0);
    char cmd[768];
    snprintf(cmd, sizeof cmd,
             "timeout 30 avrdude -q -q -c arduino -p m328p -P %s -b 115200 -U flash:w:%s/app_big.hex:i 2>&1",
             s.port, PF_AVR_DIR);
    int status = -1;
    for (int i = 0; i < 3; i++) {
        uint64_t t0 = pf_posix_now_us();
        status = system(cmd);
        fprintf(stderr, "  avrdude attempt %d: exit %d after %.2f s\n", i + 1,
                WIFEXITED(status) ? WEXITSTATUS(status) : -1, (double)(pf_posix_now_us() - t0) / 1e6);
        if (WIFEXITED(status) && WEXITSTATUS(status) == 0)
            break;
    }
    CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    char want[80], last[120] = "";
    expected_line(img, (size_t)n, 7, want, sizeof want);
    int seen = wait_uart_line(&s, want, 5000, last, sizeof last);
    if (!seen)
        fprintf(stderr, "UART log: wanted \"%s\", last line \"%s\"\n", want, last);
    CHECK(seen);
    CHECK_EQ(sim_stop(&s), 0);
    uint8_t *dump = NULL;
    long dn = read_dump(&s, &dump);
    CHECK_EQ(dn, AVR_FLASH_SIZE);
    CHECK(dn == AVR_FLASH_SIZE && memcmp(dump, img, (size_t)n) == 0);
    sim_cleanup(&s);
}

int main(void)
{
    RUN(test_avrdude_writes_and_verifies);
    return pf_test_summary();
}
