/* The Arduino scenario (issue 15): two AVRs in one libsimavr process.
 *
 *   host (this test) -> ATmega2560 UART0       the Peerflash example sketch
 *                       (SerialHexUpdater), built by arduino-builder
 *   ATmega2560 UART1 <-> ATmega328P UART0       the REAL Optiboot (built from
 *                       Debian's arduino-core-avr source, as for tests/avr)
 *   ATmega2560 PB0 (Mega pin 53) -> 328P RESET  held in reset while low
 *
 * The test plays the PC / WiFi module: it sends an Intel HEX file to the
 * 2560 twice under the sketch's credit flow control (one XON = 16 bytes),
 * reads the sketch's "PF ..." lines, and reads the 328P's own UART, where
 * the flashed program (tests/avr/app/app.c) prints a CRC of its own flash.
 *
 * Both cores run in lock-step quanta of simulated time, each until its own
 * cycle count reaches the quantum's end. Host bytes reach the 2560 at the
 * line rate and are LOST when three wait unread (2-byte receive FIFO plus
 * the shift register, as on silicon): nothing here paces the host by the
 * sketch's reading except the sketch's own credit. (The pace is the line
 * rate or simavr's own per-byte receive time, whichever is slower.)
 *
 * The 2560's RAM above .data/.bss is painted before it starts; the lowest
 * overwritten byte gives the stack's high-water mark (printed).
 *
 * Scenarios:
 *   flash    a 30 KB program through the 2560 into the 328P
 *   corrupt  a 682-byte program, then a file with a bad line and one that
 *            reaches into Optiboot: both refused before the 328P is touched;
 *            the old program still runs
 *   nocredit a host that ignores the credit loses bytes while the sketch
 *            writes pages (the sketch says FAIL); a session with credit then
 *            flashes the 328P (its bootloader was never at risk)
 *   corrupt2 the first copy is good, the second has a bad line in its middle:
 *            the sketch stops there (written > 0: the pages before it are in
 *            flash), and the next session flashes the whole program
 *   info     SKETCH.elf is the TargetInfo example: it resets the 328P, syncs
 *            with Optiboot and prints the chip and bootloader
 *   pty SENDER  the host is a real program: the 2560's UART0 is bridged to a
 *            pty and SENDER (arduino/extras/send-hex.py, run with
 *            /usr/bin/python3) sends app_small.hex through it; the harness
 *            feeds its bytes at the line rate whatever the credit (a sender
 *            that ignored it would lose bytes), and runs in real time while
 *            no host byte waits, so that the sender's own timing is real.
 *            Opening the pty resets the 2560, as opening a Mega's USB port
 *            does (DTR through the auto-reset capacitor); the open is seen
 *            as the master's POLLHUP going away (nobody holds the slave
 *            before), and output while nobody listens is dropped
 *
 * usage: test_mcu_twoavr SKETCH.elf OPTIBOOT.hex AVR_APP_DIR flash|corrupt|corrupt2|nocredit|info|pty [SENDER] */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <signal.h>
#include <sys/wait.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#include <avr_ioport.h>
#include <avr_uart.h>
#include <sim_avr.h>
#include <sim_elf.h>
#include <sim_irq.h>

#include "peerflash/pf_image.h"
#include "pf_test.h"

#define F_CPU 16000000u
#define HOST_BAUD 115200u
#define CREDIT_PER_XON 16
#define PAGE 128u
#define PAINT 0xA5
#define M2560_RAMEND 0x21FFu

typedef struct core {
    const char *name;
    avr_t *avr;
    uint64_t base; /* keeps time monotonic across avr_reset() */
    int halted;    /* held in reset, or stopped (erased flash, the app's final sleep) */
    int in_reset;  /* the reset pin is low */
} core;

static core mega = {"atmega2560", NULL, 0, 0, 0}, uno = {"atmega328p", NULL, 0, 0, 0};
static avr_uart_t *mega_u0;
static uint32_t paint_from;

/* ---- the host: sends HEX under credit, reads the sketch's lines ---------- */
typedef struct host {
    const char *text;
    size_t len, pos;
    int pass;     /* 0 waiting for READY, 1 first copy, 2 second copy, 3 finished */
    long credit;  /* bytes the sketch allows */
    char line[600];
    size_t line_len;
    char last[8][600]; /* the latest PF lines by kind */
    unsigned long overruns, sent;
    int session;  /* 1 while a session is wanted */
    int ignore_credit; /* the nocredit scenario: a host without flow control */
    int pty;           /* the pty scenario: bytes come from / go to a pty */
    char text_lines[2048]; /* lines that are not "PF ..." */
    const char *second;    /* when set: the text of the second copy (corrupt2) */
} host;
static host H;
enum { L_READY, L_CHECKED, L_CONNECTED, L_DONE, L_FAIL };

/* The 328P's console (its UART0 output, read directly: not through the sketch). */
static char app_line[200];
static size_t app_len;
static char app_last[200];
static unsigned long app_lines;
static unsigned long bytes_to_328, resets_328;

static uint64_t now_cycles(const core *c) { return c->base + c->avr->cycle; }

static void no_sleep(avr_t *avr, avr_cycle_count_t how_long)
{
    (void)avr;
    (void)how_long;
}

static void no_stdio(avr_t *avr, char uart)
{
    uint32_t f = 0; /* no poll-sleep (usleep on idle reads), no stdio echo */
    avr_ioctl(avr, AVR_IOCTL_UART_SET_FLAGS(uart), &f);
}

static void host_line(void)
{
    H.line[H.line_len] = '\0';
    if (H.line_len && H.line[H.line_len - 1] == '\r')
        H.line[--H.line_len] = '\0';
    if (strncmp(H.line, "PF ", 3) != 0) {
        if (H.line_len) { /* other text: the TargetInfo example's lines */
            printf("2560: %s\n", H.line);
            snprintf(H.text_lines + strlen(H.text_lines), sizeof H.text_lines - strlen(H.text_lines), "%s\n", H.line);
        }
        return;
    }
    printf("2560: %s\n", H.line);
    static const char *kinds[] = {"PF READY", "PF CHECKED", "PF CONNECTED", "PF DONE", "PF FAIL"};
    for (int k = 0; k < 5; k++)
        if (!strncmp(H.line, kinds[k], strlen(kinds[k])))
            snprintf(H.last[k], sizeof H.last[k], "%s", H.line);
    if (H.pty)
        return; /* the sender keeps its own state */
    if (!strncmp(H.line, "PF READY", 8)) {
        H.credit = 0; /* XONs after this line are for a new session */
    } else if (!strncmp(H.line, "PF CHECKED", 10)) {
        H.credit = 0; /* credit starts again for the second copy */
        if (H.pass == 1) {
            H.pass = 2;
            H.pos = 0;
            if (H.second)
                H.text = H.second;
        }
    } else if (!strncmp(H.line, "PF DONE", 7) || !strncmp(H.line, "PF FAIL", 7)) {
        H.pass = 3;
        H.session = 0;
    }
}

static int pty_fd = -1;
static uint8_t to_pty[65536];
static size_t to_pty_len;

static void mega_u0_out(struct avr_irq_t *irq, uint32_t value, void *param)
{
    (void)irq;
    (void)param;
    if (H.pty && to_pty_len < sizeof to_pty)
        to_pty[to_pty_len++] = (uint8_t)value;
    if (value == 0x11) {
        H.credit += CREDIT_PER_XON;
        return;
    }
    if (value == '\n') {
        host_line();
        H.line_len = 0;
    } else if (H.line_len + 1 < sizeof H.line) {
        H.line[H.line_len++] = (char)value;
    }
}

static unsigned rx_waiting(void)
{
    const uart_fifo_t *f = &mega_u0->input;
    return (unsigned)((uint16_t)(f->write - f->read) & (uart_fifo_fifo_size - 1));
}

/* One host byte per character time, when the sketch's credit allows it. */
static avr_cycle_count_t feed_tick(avr_t *avr, avr_cycle_count_t when, void *param)
{
    (void)param;
    if ((H.pass == 1 || H.pass == 2) && H.pos < H.len && (H.credit > 0 || H.ignore_credit)) {
        uint8_t b = (uint8_t)H.text[H.pos++];
        H.credit--;
        H.sent++;
        if (rx_waiting() >= 3)
            H.overruns++; /* silicon: data overrun, the byte is lost */
        else
            avr_raise_irq(avr_io_getirq(avr, AVR_IOCTL_UART_GETIRQ('0'), UART_IRQ_INPUT), b);
    }
    /* simavr moves a received byte to UDR once per its own frame time (11
     * bit times at the UART's UBRR setting): never feed faster than that. */
    avr_cycle_count_t frame = F_CPU * 10u / HOST_BAUD;
    if (mega_u0->cycles_per_byte > frame)
        frame = mega_u0->cycles_per_byte;
    return when + frame;
}

/* ---- the wire between the AVRs ------------------------------------------------- */
static void count_to_328(struct avr_irq_t *irq, uint32_t v, void *p)
{
    (void)irq;
    (void)v;
    (void)p;
    bytes_to_328++;
}

static void app_out(struct avr_irq_t *irq, uint32_t v, void *p)
{
    (void)irq;
    (void)p;
    if (v == '\n' || v == '\r') {
        app_line[app_len] = '\0';
        const char *text = strstr(app_line, "PFAPP"); /* the program's line, not bootloader replies */
        if (text) {
            printf("328P: %s\n", text);
            snprintf(app_last, sizeof app_last, "%s", text);
            app_lines++;
        }
        app_len = 0;
    } else if (app_len + 1 < sizeof app_line && v >= 0x20 && v < 0x7F) {
        app_line[app_len++] = (char)v;
    } else {
        app_len = 0; /* bootloader bytes (STK500 replies) are not console text */
    }
}

static void reset_328(uint8_t mcusr)
{
    uint64_t t = now_cycles(&uno);
    avr_reset(uno.avr);
    uno.base = t - uno.avr->cycle;
    uno.avr->data[0x54] = mcusr; /* MCUSR: EXTRF (0x02) after the pin, PORF (0x01) at power-on */
    uno.halted = 0;
    resets_328++;
}

/* 2560 PB0 -> 328P RESET (active low). */
static void reset_pin(struct avr_irq_t *irq, uint32_t value, void *param)
{
    (void)irq;
    (void)param;
    if (!value && !uno.in_reset) {
        uno.in_reset = 1;
    } else if (value && uno.in_reset) {
        uno.in_reset = 0;
        reset_328(0x02);
    }
}

/* ---- set-up and the lock-step loop ----------------------------------------------- */
static int load_mega(const char *elf)
{
    static elf_firmware_t fw; /* large */
    memset(&fw, 0, sizeof fw);
    if (elf_read_firmware(elf, &fw) != 0) {
        fprintf(stderr, "cannot read %s\n", elf);
        return -1;
    }
    mega.avr = avr_make_mcu_by_name(mega.name);
    if (!mega.avr)
        return -1;
    avr_init(mega.avr);
    fw.frequency = F_CPU;
    avr_load_firmware(mega.avr, &fw);
    mega.avr->frequency = F_CPU;
    mega.avr->sleep = no_sleep;
    mega.avr->log = LOG_ERROR;
    /* Paint the RAM above .data and .bss: the stack's high-water mark. */
    paint_from = 0x200u + fw.datasize + fw.bsssize;
    for (uint32_t a = paint_from; a <= M2560_RAMEND; a++)
        mega.avr->data[a] = PAINT;
    return 0;
}

static char *slurp(const char *path, size_t *len);

/* Optiboot's HEX goes into the 512-byte boot section, nowhere else. */
static int boot_sink(void *user, uint32_t addr, const uint8_t *data, size_t len)
{
    (void)user;
    if (addr < 0x7E00 || addr + len > 0x8000)
        return PF_ERR_RANGE;
    memcpy(uno.avr->flash + addr, data, len);
    return PF_OK;
}

static int load_uno(const char *optiboot_hex)
{
    uno.avr = avr_make_mcu_by_name(uno.name);
    if (!uno.avr)
        return -1;
    avr_init(uno.avr);
    uno.avr->frequency = F_CPU;
    uno.avr->sleep = no_sleep;
    uno.avr->log = LOG_ERROR;
    memset(uno.avr->flash, 0xFF, 0x8000); /* erased: no application yet */
    size_t len = 0;
    char *text = slurp(optiboot_hex, &len);
    pf_diag d = {0};
    pf_ihex p;
    pf_ihex_init(&p, boot_sink, NULL, &d);
    int r = text ? pf_ihex_feed(&p, (const uint8_t *)text, len) : PF_ERR_IO;
    if (r == PF_OK)
        r = pf_ihex_finish(&p);
    free(text);
    if (r != PF_OK) {
        fprintf(stderr, "%s: %s\n", optiboot_hex, d.text[0] ? d.text : "cannot read");
        return -1;
    }
    uno.avr->codeend = 0x7FFF;
    uno.avr->reset_pc = 0x7E00; /* BOOTRST fuse: 512-byte boot section */
    uno.avr->pc = 0x7E00;
    uno.avr->data[0x54] = 0x01; /* power-on: Optiboot starts the application */
    return 0;
}

static void feed_start(void);

static void wire(void)
{
    no_stdio(mega.avr, '0');
    no_stdio(mega.avr, '1');
    no_stdio(uno.avr, '0');
    avr_irq_t *m1_out = avr_io_getirq(mega.avr, AVR_IOCTL_UART_GETIRQ('1'), UART_IRQ_OUTPUT);
    avr_irq_t *m1_in = avr_io_getirq(mega.avr, AVR_IOCTL_UART_GETIRQ('1'), UART_IRQ_INPUT);
    avr_irq_t *u0_out = avr_io_getirq(uno.avr, AVR_IOCTL_UART_GETIRQ('0'), UART_IRQ_OUTPUT);
    avr_irq_t *u0_in = avr_io_getirq(uno.avr, AVR_IOCTL_UART_GETIRQ('0'), UART_IRQ_INPUT);
    avr_connect_irq(m1_out, u0_in);
    avr_connect_irq(u0_out, m1_in);
    avr_irq_register_notify(m1_out, count_to_328, NULL);
    avr_irq_register_notify(u0_out, app_out, NULL);
    avr_irq_register_notify(avr_io_getirq(mega.avr, AVR_IOCTL_IOPORT_GETIRQ('B'), IOPORT_IRQ_PIN0), reset_pin, NULL);
    avr_irq_register_notify(avr_io_getirq(mega.avr, AVR_IOCTL_UART_GETIRQ('0'), UART_IRQ_OUTPUT), mega_u0_out, NULL);
    for (avr_io_t *io = mega.avr->io_port; io; io = io->next)
        if (!strcmp(io->kind, "uart") && ((avr_uart_t *)io)->name == '0')
            mega_u0 = (avr_uart_t *)io;
    feed_start();
}

static void feed_start(void)
{
    avr_cycle_timer_register(mega.avr, F_CPU * 10u / HOST_BAUD, feed_tick, NULL);
}

static uint64_t sim_ns;
static double wall0 = -1;

static double wall_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

/* pty scenario: moves bytes between the pty and the host queue; keeps the
 * simulation at real time while no host byte waits (never sprints to catch up). */
static char pty_in[262144];
static int pty_hup = 1; /* nobody has the slave open */

static void reset_mega(void)
{
    uint64_t t = now_cycles(&mega);
    avr_reset(mega.avr); /* cancels the cycle timers: the host feed starts again */
    mega.base = t - mega.avr->cycle;
    feed_start();
}

static void pty_service(void)
{
    if (pty_fd < 0)
        return;
    struct pollfd pfd = {pty_fd, POLLIN, 0};
    poll(&pfd, 1, 0);
    int hup = (pfd.revents & POLLHUP) != 0;
    if (pty_hup && !hup) { /* the sender opened the port */
        H.len = H.pos = 0;
        to_pty_len = 0;
        reset_mega();
    }
    pty_hup = hup;
    if (hup) {
        to_pty_len = 0; /* nobody listens */
    } else if (H.len < sizeof pty_in) {
        ssize_t n = read(pty_fd, pty_in + H.len, sizeof pty_in - H.len);
        if (n > 0)
            H.len += (size_t)n;
    }
    if (to_pty_len && !hup) {
        ssize_t n = write(pty_fd, to_pty, to_pty_len);
        if (n > 0) {
            memmove(to_pty, to_pty + n, to_pty_len - (size_t)n);
            to_pty_len -= (size_t)n;
        }
    }
    double now = wall_s();
    if (wall0 < 0)
        wall0 = now - sim_ns / 1e9;
    double ahead = sim_ns / 1e9 - (now - wall0);
    if (H.pos < H.len || ahead < 0) {
        wall0 = now - sim_ns / 1e9; /* busy, or behind: run free now, never sprint to catch up later */
    } else if (ahead > 0.0005) {
        struct timespec ts = {0, (long)(ahead * 1e9)};
        nanosleep(&ts, NULL);
    }
}

/* Runs both cores until done() holds or max_s of simulated time pass. */
static int run_until(int (*done)(void), double max_s)
{
    const uint64_t quantum_ns = 10000;
    uint64_t end = sim_ns + (uint64_t)(max_s * 1e9);
    while (sim_ns < end) {
        if (done())
            return 1;
        sim_ns += quantum_ns;
        if (pty_fd >= 0 && sim_ns % 100000 == 0)
            pty_service();
        core *cs[2] = {&mega, &uno};
        for (int k = 0; k < 2; k++) {
            core *c = cs[k];
            uint64_t target = sim_ns * F_CPU / 1000000000u;
            if (c->halted || c->in_reset) { /* time passes, the core does not run */
                if (now_cycles(c) < target)
                    c->base = target - c->avr->cycle;
                continue;
            }
            while (now_cycles(c) < target) {
                int st = avr_run(c->avr);
                if (st == cpu_Done || st == cpu_Crashed) {
                    if (c == &mega) {
                        fprintf(stderr, "the 2560 stopped (state %d) at pc 0x%x\n", st, c->avr->pc);
                        return 0;
                    }
                    c->halted = 1; /* erased flash or the app's final sleep: wait for a reset */
                    break;
                }
            }
        }
    }
    return done();
}

static int ready_seen(void) { return H.last[L_READY][0] != 0; }
/* Waits for the sketch's READY (at start, and after each session). */
static int wait_ready(double max_s)
{
    int ok = run_until(ready_seen, max_s);
    if (ok)
        memset(H.last[L_READY], 0, sizeof H.last[L_READY]);
    return ok;
}
static int session_over(void) { return H.pass == 3; }
static unsigned long app_lines_before;
static int app_spoke(void) { return app_lines > app_lines_before; }
static int never(void) { return 0; }

/* ---- helpers --------------------------------------------------------------------- */
static char *slurp(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *buf = malloc((size_t)n + 1);
    if (buf && fread(buf, 1, (size_t)n, f) != (size_t)n) {
        free(buf);
        buf = NULL;
    }
    fclose(f);
    if (buf) {
        buf[n] = '\0';
        *len = (size_t)n;
    }
    return buf;
}

static uint16_t crc16(const uint8_t *p, size_t n)
{
    uint16_t crc = 0xFFFF;
    while (n--) {
        crc ^= (uint16_t)(*p++ << 8);
        for (int i = 0; i < 8; i++)
            crc = (crc & 0x8000) ? (uint16_t)((crc << 1) ^ 0x1021) : (uint16_t)(crc << 1);
    }
    return crc;
}

static uint32_t crc32_pages(const uint8_t *p, size_t n)
{
    uint32_t crc = 0xFFFFFFFFu;
    size_t padded = (n + PAGE - 1) / PAGE * PAGE;
    for (size_t i = 0; i < padded; i++) {
        crc ^= i < n ? p[i] : 0xFF;
        for (int k = 0; k < 8; k++)
            crc = (crc & 1) ? (crc >> 1) ^ 0xEDB88320u : crc >> 1;
    }
    return ~crc;
}

typedef struct app {
    char hex_path[1024];
    char *hex;
    size_t hex_len;
    uint8_t *bin;
    size_t bin_len;
} app;

static int load_app(const char *dir, const char *name, app *a)
{
    char path[1024];
    snprintf(a->hex_path, sizeof a->hex_path, "%s/%s.hex", dir, name);
    a->hex = slurp(a->hex_path, &a->hex_len);
    snprintf(path, sizeof path, "%s/%s.bin", dir, name);
    a->bin = (uint8_t *)slurp(path, &a->bin_len);
    if (!a->hex || !a->bin) {
        fprintf(stderr, "cannot read %s/%s.{hex,bin}\n", dir, name);
        return -1;
    }
    return 0;
}

/* One session: the host sends text twice under credit; returns when the
 * sketch says DONE or FAIL. */
static int session(const char *text, size_t len, double max_s)
{
    memset(H.last[L_CHECKED], 0, sizeof H.last[0] * 4);
    H.text = text;
    H.len = len;
    H.pos = 0;
    H.session = 1;
    H.pass = 1; /* READY came already (wait_ready), with the first credit */
    return run_until(session_over, max_s);
}

/* The app prints "PFAPP seed=S len=L crc=XXXX": check it against the image. */
static void check_app_line(const app *a, const char *what)
{
    char want[80];
    snprintf(want, sizeof want, "len=%zu crc=%04X", a->bin_len, crc16(a->bin, a->bin_len));
    printf("expect (%s): %s\n", what, want);
    CHECK_STR_CONTAINS(app_last, want);
}

static void check_done(const app *a)
{
    unsigned pages = (unsigned)((a->bin_len + PAGE - 1) / PAGE);
    char want[80];
    snprintf(want, sizeof want, "PF CHECKED pages=%u data=%zu crc32=%08lx", pages, a->bin_len,
             (unsigned long)crc32_pages(a->bin, a->bin_len));
    CHECK_STR_CONTAINS(H.last[L_CHECKED], want);
    CHECK_STR_CONTAINS(H.last[L_CONNECTED], "chip=ATmega328P bootloader=Optiboot");
    snprintf(want, sizeof want, "PF DONE pages=%u written=%u verified=%u", pages, pages, pages);
    CHECK_STR_CONTAINS(H.last[L_DONE], want);
    CHECK(H.last[L_FAIL][0] == 0);
}

static void report_stack(void)
{
    uint32_t low = M2560_RAMEND + 1;
    for (uint32_t a = paint_from; a <= M2560_RAMEND; a++)
        if (mega.avr->data[a] != PAINT) {
            low = a;
            break;
        }
    uint32_t used = M2560_RAMEND + 1 - low, free_bytes = low - paint_from;
    printf("2560 RAM: static %lu bytes (.data+.bss), stack high-water %lu bytes, never touched %lu of 8192\n",
           (unsigned long)(paint_from - 0x200u), (unsigned long)used, (unsigned long)free_bytes);
    CHECK(free_bytes > 0);
}

static char pty_dir[] = "/tmp/pf-mcu-pty.XXXXXX";
static char pty_link[64];
static void remove_pty_dir(void)
{
    unlink(pty_link);
    rmdir(pty_dir);
}

static int info_printed(void) { return strstr(H.text_lines, "bootloader: ") != NULL && strstr(H.text_lines, "pages of") != NULL; }

static void run(int argc, char **argv)
{
    const char *scenario = argv[4];
    const char *sender = argc > 5 ? argv[5] : NULL;
    if (!strcmp(scenario, "info")) {
        REQUIRE(load_mega(argv[1]) == 0);
        REQUIRE(load_uno(argv[2]) == 0);
        wire();
        REQUIRE(run_until(info_printed, 5.0));
        CHECK_STR_CONTAINS(H.text_lines, "chip: ATmega328P\nbootloader: Optiboot 4.4\nflash: 32768 bytes, pages of 128\n");
        CHECK_EQ(resets_328, 1);
        report_stack();
        return;
    }
    /* pty: the sender must see the sketch's first READY, so the bridge is up before the 2560 starts. */
    if (!strcmp(scenario, "pty")) {
        REQUIRE(mkdtemp(pty_dir) != NULL);
        atexit(remove_pty_dir); /* also when a REQUIRE ends the test early */
        snprintf(pty_link, sizeof pty_link, "%s/mega", pty_dir);
        pty_fd = posix_openpt(O_RDWR | O_NOCTTY | O_NONBLOCK);
        REQUIRE(pty_fd >= 0 && grantpt(pty_fd) == 0 && unlockpt(pty_fd) == 0);
        struct termios t;
        tcgetattr(pty_fd, &t); /* raw from the start: no echo of the sketch's output back into it */
        cfmakeraw(&t);
        tcsetattr(pty_fd, TCSANOW, &t);
        /* A master whose slave was never opened reports no POLLHUP: open and close it once. */
        int once = open(ptsname(pty_fd), O_RDWR | O_NOCTTY);
        REQUIRE(once >= 0);
        close(once);
        REQUIRE(symlink(ptsname(pty_fd), pty_link) == 0);
        H.pty = 1;
        H.text = pty_in;
        H.len = H.pos = 0;
        H.pass = 1;
        H.ignore_credit = 1; /* the harness only moves bytes: the sender must honour the credit */
    }
    REQUIRE(load_mega(argv[1]) == 0);
    REQUIRE(load_uno(argv[2]) == 0);
    wire();
    REQUIRE(run_until(ready_seen, 3.0));
    CHECK_STR_CONTAINS(H.last[L_READY], "PF READY target=ATmega328P page=128 pages=252 window=48");
    REQUIRE(wait_ready(0));

    if (!strcmp(scenario, "flash")) {
        /* A 30 KB program (~84 KB of HEX text): nearly 4x the 2560's RAM. */
        app big;
        REQUIRE(load_app(argv[3], "app_big", &big) == 0);
        app_lines_before = app_lines;
        REQUIRE(session(big.hex, big.hex_len, 60.0));
        check_done(&big);
        REQUIRE(run_until(app_spoke, 3.0));
        check_app_line(&big, "the new program");
        free(big.hex);
        free(big.bin);
    } else if (!strcmp(scenario, "corrupt")) {
        app small, big2;
        REQUIRE(load_app(argv[3], "app_small", &small) == 0);
        REQUIRE(load_app(argv[3], "app_big2", &big2) == 0);
        /* The old program: flashed through the sketch first. */
        app_lines_before = app_lines;
        REQUIRE(session(small.hex, small.hex_len, 20.0));
        check_done(&small);
        REQUIRE(run_until(app_spoke, 3.0));
        check_app_line(&small, "the old program");

        /* A new program with one bad hex digit in a line near its end. */
        size_t lines = 0, at = 0;
        for (size_t i = 0; i < big2.hex_len; i++)
            lines += big2.hex[i] == '\n';
        size_t bad_line = lines - 20, n = 1;
        for (at = 0; at < big2.hex_len && n < bad_line; at++)
            n += big2.hex[at] == '\n';
        REQUIRE(big2.hex[at] == ':');
        big2.hex[at + 12] = big2.hex[at + 12] == '0' ? '1' : '0'; /* a data digit: the checksum no longer adds up */
        REQUIRE(wait_ready(2.0));
        unsigned long bytes_before = bytes_to_328, resets_before = resets_328;
        REQUIRE(session(big2.hex, big2.hex_len, 30.0));
        char want[80];
        snprintf(want, sizeof want, "PF FAIL phase=check written=0 error=-10: line %zu: bad checksum", bad_line);
        CHECK_STR_CONTAINS(H.last[L_FAIL], want);
        CHECK(H.last[L_CHECKED][0] == 0);
        CHECK_EQ(bytes_to_328 - bytes_before, 0); /* the 328P was not even reset */
        CHECK_EQ(resets_328 - resets_before, 0);

        /* Well-formed, but its second line would overwrite Optiboot (0x7E00). */
        static const char into_boot[] = ":020000040000FA\n"
                                        ":047D00000102030475\n"
                                        ":047E0000FFFFFFFF82\n"
                                        ":00000001FF\n";
        REQUIRE(wait_ready(2.0));
        REQUIRE(session(into_boot, strlen(into_boot), 10.0));
        CHECK_STR_CONTAINS(H.last[L_FAIL],
                           "PF FAIL phase=check written=0 error=-11: line 3: data at 0x07e00 reaches the bootloader");
        CHECK_EQ(bytes_to_328 - bytes_before, 0);
        CHECK_EQ(resets_328 - resets_before, 0);
        /* The old program still runs: power the 328P up again. */
        app_lines_before = app_lines;
        app_last[0] = '\0';
        reset_328(0x01);
        REQUIRE(run_until(app_spoke, 3.0));
        check_app_line(&small, "the old program after the refused one");
        /* And the sketch takes the next session. */
        REQUIRE(wait_ready(3.0));
        free(small.hex);
        free(small.bin);
        free(big2.hex);
        free(big2.bin);
    } else if (!strcmp(scenario, "corrupt2")) {
        app big;
        REQUIRE(load_app(argv[3], "app_big", &big) == 0);
        char *bad = malloc(big.hex_len + 1);
        REQUIRE(bad != NULL);
        memcpy(bad, big.hex, big.hex_len + 1);
        size_t n = 1, at = 0;
        for (at = 0; at < big.hex_len && n < 1000; at++)
            n += bad[at] == '\n';
        REQUIRE(bad[at] == ':');
        bad[at + 12] = bad[at + 12] == '0' ? '1' : '0';
        H.second = bad;
        REQUIRE(session(big.hex, big.hex_len, 60.0));
        H.second = NULL;
        CHECK_STR_CONTAINS(H.last[L_FAIL], "PF FAIL phase=write written=");
        CHECK_STR_CONTAINS(H.last[L_FAIL], "line 1000: bad checksum");
        CHECK(strstr(H.last[L_FAIL], "written=0 ") == NULL);
        printf("second copy refused at line 1000: %s\n", H.last[L_FAIL]);
        REQUIRE(wait_ready(3.0));
        app_lines_before = app_lines;
        REQUIRE(session(big.hex, big.hex_len, 60.0));
        check_done(&big);
        REQUIRE(run_until(app_spoke, 3.0));
        check_app_line(&big, "the program, sent again after the failed second copy");
        free(bad);
        free(big.hex);
        free(big.bin);
    } else if (!strcmp(scenario, "nocredit")) {
        app big;
        REQUIRE(load_app(argv[3], "app_big", &big) == 0);
        /* At the line rate the sketch keeps up with parsing, but not while it
         * writes a page to the 328P (~12 ms): its 64-byte receive ring overflows. */
        H.ignore_credit = 1;
        REQUIRE(session(big.hex, big.hex_len, 60.0));
        H.ignore_credit = 0;
        CHECK_STR_CONTAINS(H.last[L_FAIL], "PF FAIL phase=");
        CHECK(H.last[L_DONE][0] == 0);
        REQUIRE(wait_ready(3.0));
        app_lines_before = app_lines;
        REQUIRE(session(big.hex, big.hex_len, 60.0));
        check_done(&big);
        REQUIRE(run_until(app_spoke, 3.0));
        check_app_line(&big, "the program, sent again with credit");
        free(big.hex);
        free(big.bin);
    } else if (!strcmp(scenario, "pty")) {
        app small;
        REQUIRE(sender != NULL);
        REQUIRE(load_app(argv[3], "app_small", &small) == 0);
        pid_t child = fork();
        REQUIRE(child >= 0);
        if (child == 0) {
            execl("/usr/bin/python3", "python3", sender, "--port", pty_link, "--timeout", "20", small.hex_path, (char *)NULL);
            _exit(127);
        }
        int status = -1;
        double t0 = wall_s();
        while (wall_s() - t0 < 60) {
            run_until(never, 0.05);
            if (waitpid(child, &status, WNOHANG) == child)
                break;
        }
        if (waitpid(child, &status, WNOHANG) == 0) {
            kill(child, SIGTERM);
            waitpid(child, &status, 0);
        }
        printf("sender exit status %d\n", WIFEXITED(status) ? WEXITSTATUS(status) : -1);
        CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
        app_lines_before = 0;
        REQUIRE(run_until(app_spoke, 3.0));
        check_app_line(&small, "the program the sender sent");
        CHECK_STR_CONTAINS(H.last[L_DONE], "PF DONE pages=6 written=6 verified=6");
        close(pty_fd);
        pty_fd = -1;
        free(small.hex);
        free(small.bin);
    } else {
        fprintf(stderr, "unknown scenario '%s'\n", scenario);
        pf_test_failed++;
        return;
    }
    printf("host: %lu bytes sent to the 2560, %lu lost to overrun; %lu bytes 2560 -> 328P; %.2f s simulated\n",
           H.sent, H.overruns, bytes_to_328, sim_ns / 1e9);
    if (strcmp(scenario, "nocredit") != 0)
        CHECK_EQ(H.overruns, 0);
    report_stack();
}

int main(int argc, char **argv)
{
    if (argc != 5 && argc != 6) {
        fprintf(stderr, "usage: %s SKETCH.elf OPTIBOOT.hex AVR_APP_DIR flash|corrupt|corrupt2|nocredit|info|pty [SENDER]\n",
                argv[0]);
        return 2;
    }
    setvbuf(stdout, NULL, _IOLBF, 0);
    run(argc, argv);
    return pf_test_summary();
}
