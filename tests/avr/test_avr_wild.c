/* A wild application must not kill the simulated board (regression: cli_json
 * flashed a random image, the random "application" wrote above RAMEND, and
 * libsimavr 1.6 indexed its data array out of bounds after logging the bad
 * write: the simulator died mid-sync about one run in three).
 *
 * Silicon has no bus fault: a runaway program runs on until a reset, and the
 * reset brings Optiboot back. So after each wild application below has run
 * (the simulator's log shows its wild accesses), the port is opened again
 * (reset) and a known application is flashed and prints its CRC line. */
#include "avr_sim_util.h"
#include "pf_test.h"

static uint8_t *g_small;
static long g_small_n;

/* Hand-assembled AVR code (opcode encodings from the AVR Instruction Set
 * Manual), little-endian words: every access the core cannot map. */
static const uint16_t wild_code[] = {
    0x9200, 0xFFFF, /* sts 0xFFFF, r0          write at the top of the 64 KiB data space */
    0x9200, 0x0900, /* sts 0x0900, r0          the first address above RAMEND (0x08FF) */
    0xEFE0,         /* ldi r30, 0xF0 */
    0xEFFF,         /* ldi r31, 0xFF           Z = 0xFFF0 */
    0x8100,         /* ld r16, Z               read far above RAMEND */
    0x95C8,         /* lpm                     r0 = flash[0xFFF0]: past the 32 KiB flash */
    0xE8E0,         /* ldi r30, 0x80           Z = 0xFF80 */
    0xE003,         /* ldi r16, 0x03           PGERS | SPMEN */
    0xBF07,         /* out SPMCSR (0x37), r16 */
    0x95E8,         /* spm                     page erase at 0xFF80: past the flash */
    0xBFFE,         /* out SPH (0x3E), r31 */
    0xBFFD,         /* out SPL (0x3D), r31     SP = 0xFFFF */
    0x920F,         /* push r0                 a push far above RAMEND */
    0x920F,         /* push r0 */
    0xEFEF,         /* ldi r30, 0xFF */
    0xE7FF,         /* ldi r31, 0x7F           Z = word 0x7FFF */
    0x9409,         /* ijmp                    into the last word: runs off the end of flash */
};

/* Flashes img and runs it; waits (deadline) until the simulator's log shows
 * `evidence` (what the wild code did); then a reset and a flash of the known
 * application must work, and the application prints its line. */
static void wild_then_recover(avr_sim *s, const char *what, const uint8_t *img, size_t n, const char *evidence)
{
    flash_opts o = FLASH_OPTS_DEFAULT();
    flash_outcome out;
    int r = flash_retry(s->port, img, n, &o, &out, 3);
    if (r)
        fprintf(stderr, "  %s: %s\n", what, out.diag.text);
    CHECK_EQ(r, PF_OK);
    int seen = 0;
    for (int waited = 0; evidence && waited < 10000 && !seen; waited += 20) {
        uint8_t *log = NULL;
        long ln = read_file(s->err_log, &log);
        if (ln > 0) {
            log = realloc(log, (size_t)ln + 1);
            log[ln] = '\0';
            seen = strstr((char *)log, evidence) != NULL;
        }
        free(log);
        if (!seen)
            msleep(20);
    }
    if (evidence)
        CHECK(seen);
    int status;
    CHECK(waitpid(s->pid, &status, WNOHANG) == 0); /* the board is still there */

    /* Reset (open the port) and flash the known application. */
    FILE *f = fopen(s->uart_log, "w");
    if (f)
        fclose(f);
    r = flash_retry(s->port, g_small, (size_t)g_small_n, &o, &out, 3);
    if (r)
        fprintf(stderr, "  after %s: %s\n", what, out.diag.text);
    CHECK_EQ(r, PF_OK);
    char want[80], last[120] = "";
    expected_line(g_small, (size_t)g_small_n, 3, want, sizeof want);
    int line = r == PF_OK && wait_uart_line(s, want, 5000, last, sizeof last);
    CHECK(line);
    if (line)
        fprintf(stderr, "  %s: ran%s; after a reset Optiboot answered and the known application runs\n", what,
                seen ? " (its wild accesses logged)" : "");
}

static void test_wild_code(void)
{
    avr_sim s;
    const char *more[] = {"-v", NULL}; /* -vv: the simulator logs each wild access it runs past */
    REQUIRE(sim_start(&s, "wild", more) == 0);
    uint8_t img[sizeof wild_code];
    for (size_t i = 0; i < sizeof wild_code / 2; i++) {
        img[2 * i] = (uint8_t)wild_code[i];
        img[2 * i + 1] = (uint8_t)(wild_code[i] >> 8);
    }
    wild_then_recover(&s, "wild code", img, sizeof img, "Invalid write address");
    CHECK_EQ(sim_stop(&s), 0); /* and it exits cleanly, dumping its flash */
    sim_cleanup(&s);
}

/* Random images, as cli_json flashes: whatever they do, the board survives. */
static void test_random_images(void)
{
    avr_sim s;
    REQUIRE(sim_start(&s, "random", NULL) == 0);
    static uint8_t img[8192];
    for (uint32_t seed = 1; seed <= 4; seed++) {
        uint32_t x = seed * 2654435761u;
        for (size_t i = 0; i < sizeof img; i++) {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            img[i] = (uint8_t)x;
        }
        char what[32];
        snprintf(what, sizeof what, "random image seed %u", (unsigned)seed);
        wild_then_recover(&s, what, img, sizeof img, NULL);
    }
    CHECK_EQ(sim_stop(&s), 0);
    sim_cleanup(&s);
}

int main(void)
{
    signal(SIGPIPE, SIG_IGN);
    g_small_n = load_app("app_small", &g_small);
    if (g_small_n <= 0)
        return 1;
    RUN(test_wild_code);
    RUN(test_random_images);
    return pf_test_summary();
}
