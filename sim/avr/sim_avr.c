/* `peerflash sim avr`: the REAL Optiboot running on a simulated ATmega328P
 * (libsimavr), with UART0 bridged to a pty.
 *
 * Facts this harness is built on (shared/notes/avr-optiboot-simavr.md):
 *  - simavr has no fuses: the reset vector is set to the boot section
 *    (BOOTRST, 512-byte boot section at 0x7E00).
 *  - Optiboot stays in the bootloader only after an external reset (MCUSR
 *    EXTRF); every reset this harness makes sets EXTRF. Power-on (PORF) at
 *    start jumps to the application as on a board.
 *  - A pty has no DTR: the Arduino auto-reset is modelled by watching the pty
 *    master. POLLHUP means nobody holds the slave; when that ends, someone
 *    opened the port and the chip is reset (--no-reset-on-open turns it off;
 *    SIGUSR1 resets at any time, like the reset button).
 *  - Pacing: real time while the UART is idle (Optiboot's 1 s watchdog and the
 *    host's own timers must see real time), unthrottled while bytes are in
 *    flight or moved in the last 4 ms of simulated time (--realtime: always
 *    real time). A simulator that falls behind never sprints to catch up.
 *  - Silicon limits kept: host bytes reach the AVR no faster than the line
 *    rate (and no faster than simavr's own per-byte receive pacing), and at
 *    most 3 wait unread (2-byte receive FIFO + shift register); a byte that
 *    arrives when 3 are waiting is lost (data overrun), as on a board while
 *    Optiboot busy-waits on a page write. The page erase and page write time
 *    (--page-write-ms, 4.5 ms by default, 0 = simavr's instant SPM) keeps
 *    SPMEN set in SPMCSR so Optiboot's busy-wait lasts as long as on silicon.
 *  - A host whose line rate differs from the simulated UART's (the pty's
 *    termios speed) gets garbled bytes both ways, as with a wrong baud rate.
 *  - Any application code runs, as on silicon (a random image included). The
 *    AVR core has no bus fault: a program that reads or writes above RAMEND,
 *    runs off the end of the flash or jumps into nowhere runs on until a
 *    reset. simavr 1.6 instead calls crash() on a data access above RAMEND
 *    and then still indexes avr->data (malloc'd RAMEND+1 bytes in avr_init)
 *    with the 16-bit address, and LPM/SPM index avr->flash (FLASHEND+4 bytes)
 *    with the 16-bit Z: out of bounds, which killed this process. Both arrays
 *    get a full 64 KiB backing (widen_memories), and a cpu_Crashed core is
 *    set running again (a PC past the flash was already wrapped to 0 by
 *    avr_callback_run_raw). A core that sleeps with interrupts off (cpu_Done)
 *    waits for the next reset, as silicon would.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/inotify.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#include <avr_flash.h>
#include <avr_uart.h>
#include <sim_avr.h>
#include <sim_io.h>
#include <sim_irq.h>
#include <sim_time.h>

#include "peerflash/pf_image.h"
#include "peerflash/pf_memmap.h"
#include "peerflash/pf_posix.h"
#include "posix/endpoint.h"
#include "sim_avr.h"
#include "sim_command.h"

#ifndef PF_OPTIBOOT_HEX
#define PF_OPTIBOOT_HEX ""
#endif
#ifndef PF_INSTALL_DATADIR_REL /* the data dir relative to the installed executable */
#define PF_INSTALL_DATADIR_REL "../share/peerflash"
#endif

/* The Optiboot the simulator runs by default: after `cmake --install` the
 * copy next to the installed peerflash (BINDIR/../share/peerflash, so any
 * --prefix works, and the build tree may be gone), else the one this build
 * made. */
static const char *default_bootloader(void)
{
    static char installed[4096];
    char exe[3000];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
    if (n > 0) {
        exe[n] = '\0';
        char *slash = strrchr(exe, '/');
        if (slash) {
            *slash = '\0';
            snprintf(installed, sizeof installed, "%s/" PF_INSTALL_DATADIR_REL "/optiboot_atmega328.hex", exe);
            if (access(installed, R_OK) == 0)
                return installed;
        }
    }
    return PF_OPTIBOOT_HEX;
}

#define MCU_NAME "atmega328p"
#define MCU_FREQ 16000000u
#define BOOT_SIZE 512u
#define MCUSR_ADDR 0x54 /* data address of MCUSR on the ATmega328P */
#define MCUSR_PORF 0x01
#define MCUSR_EXTRF 0x02
#define RX_DEPTH 3u         /* 2-byte receive FIFO + the shift register */
#define BUSY_WINDOW_US 4000 /* unthrottled while the UART moved bytes this recently */
#define MAX_LAG_US 20000    /* behind wall time by more: re-anchor, never sprint */
#define SLICE_US 1000       /* simulated time between I/O checks */
#define QUEUE_SIZE 65536u

typedef struct byte_queue {
    uint8_t buf[QUEUE_SIZE];
    size_t head, len;
} byte_queue;

static int q_push(byte_queue *q, uint8_t b)
{
    if (q->len == QUEUE_SIZE)
        return 0;
    q->buf[(q->head + q->len) % QUEUE_SIZE] = b;
    q->len++;
    return 1;
}

static uint8_t q_pop(byte_queue *q)
{
    uint8_t b = q->buf[q->head];
    q->head = (q->head + 1) % QUEUE_SIZE;
    q->len--;
    return b;
}

typedef struct pf_sim_avr {
    /* options */
    const char *port_spec;
    const char *flash_dump;
    const char *uart_log_path;
    const char *bootloader;
    int reset_on_open;
    int realtime;
    int verbose;
    double page_write_ms;
    double startup_ms;  /* held in reset after a reset: the Uno's fuses give 16K CK + 65 ms */
    uint32_t baud;
    uint64_t startup_until_us; /* wall time the chip leaves start-up */

    avr_t *avr;
    avr_uart_t *uart;
    avr_flash_t *flash;
    int (*flash_ioctl)(struct avr_io_t *io, uint32_t ctl, void *param);
    void (*core_reset)(avr_t *avr); /* the core's own reset hook, which ours wraps */
    int reset_seen;    /* a reset happened (ours or the watchdog's): re-arm, re-anchor */
    uint32_t boot_start;

    pf_posix_link link;
    int held;          /* someone holds the pty slave open */
    int notify_fd;     /* inotify on the slave: every open, even a quick close+open */
    byte_queue to_avr;   /* host bytes on the wire, not yet arrived */
    byte_queue to_host;  /* AVR bytes not yet written to the pty */
    int feeding;       /* the line-rate feed timer is armed */
    avr_cycle_count_t frame_cycles; /* one character at the host's line rate */
    avr_cycle_count_t last_io_cycle;
    avr_cycle_count_t spm_busy_until;
    int garble;        /* host line rate differs from the UART's */
    FILE *uart_log;
    int log_at_line_start;

    uint64_t anchor_wall_us;
    uint64_t anchor_sim_us;

    unsigned long resets, overruns, pages_written, crashes;
} avr_harness;

static volatile sig_atomic_t g_reset; /* SIGUSR1: the reset button */
static avr_harness *g_h; /* for the flash ioctl wrapper, which gets no context */

static void on_reset(int sig)
{
    (void)sig;
    g_reset = 1;
}

static void say(const avr_harness *h, int level, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void say(const avr_harness *h, int level, const char *fmt, ...)
{
    if (level > h->verbose)
        return;
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "sim avr: ");
    vfprintf(stderr, fmt, ap);
    fprintf(stderr, "\n");
    va_end(ap);
}

static int g_simavr_log_level;
static void simavr_logger(avr_t *avr, const int level, const char *fmt, va_list ap)
{
    (void)avr;
    if (level > g_simavr_log_level)
        return;
    fprintf(stderr, "simavr: ");
    vfprintf(stderr, fmt, ap);
}

static uint64_t sim_us(const avr_harness *h)
{
    return h->avr->cycle * 1000000ull / h->avr->frequency;
}

static void anchor(avr_harness *h)
{
    h->anchor_wall_us = pf_posix_now_us();
    h->anchor_sim_us = sim_us(h);
}

/* The wrong-baud model: what a UART sampling at another rate makes of a byte.
 * Never 0x20 or 0x30 (CRC_EOP, GET_SYNC), so nothing garbled syncs. */
static uint8_t garbled(uint8_t b)
{
    return (uint8_t)(0x80 | (b >> 1) | (b & 1));
}

/* ---- AVR side ------------------------------------------------------------ */

static unsigned rx_waiting(const avr_harness *h)
{
    const uart_fifo_t *f = &h->uart->input;
    return (unsigned)((uint16_t)(f->write - f->read) & (uart_fifo_fifo_size - 1));
}

/* One character time on the wire: the next host byte arrives at the AVR. */
static avr_cycle_count_t feed_tick(avr_t *avr, avr_cycle_count_t when, void *param)
{
    avr_harness *h = param;
    if (!h->to_avr.len) {
        h->feeding = 0;
        return 0;
    }
    uint8_t b = q_pop(&h->to_avr);
    h->last_io_cycle = avr->cycle;
    if (!avr_regbit_get(avr, h->uart->rxen)) {
        say(h, 2, "byte 0x%02x lost: the receiver is off", b);
    } else if (rx_waiting(h) >= RX_DEPTH) {
        h->overruns++;
        say(h, 1, "RX overrun: byte 0x%02x lost (%u bytes waiting unread, as on silicon)", b, rx_waiting(h));
    } else {
        say(h, 3, "host -> avr 0x%02x%s", b, h->garble ? " (garbled)" : "");
        avr_raise_irq(avr_io_getirq(avr, AVR_IOCTL_UART_GETIRQ('0'), UART_IRQ_INPUT), h->garble ? garbled(b) : b);
    }
    avr_cycle_count_t step = h->frame_cycles;
    if (h->uart->cycles_per_byte > step)
        step = h->uart->cycles_per_byte; /* simavr's own receive pacing is slower */
    if (!h->to_avr.len) {
        h->feeding = 0;
        return 0;
    }
    return when + step;
}

static void start_feed(avr_harness *h)
{
    if (h->feeding || !h->to_avr.len)
        return;
    h->feeding = 1;
    avr_cycle_timer_register(h->avr, h->frame_cycles, feed_tick, h);
}

static void uart_output(struct avr_irq_t *irq, uint32_t value, void *param)
{
    (void)irq;
    avr_harness *h = param;
    uint8_t b = (uint8_t)value;
    h->last_io_cycle = h->avr->cycle;
    say(h, 3, "avr -> host 0x%02x", b);
    if (h->uart_log && h->avr->pc < h->boot_start) { /* the application printed it */
        fputc(b, h->uart_log);
        if (b == '\n')
            fflush(h->uart_log);
    }
    if (h->held)
        q_push(&h->to_host, h->garble ? garbled(b) : b);
}

static void spm_timing_note(avr_harness *h)
{
    if (h->page_write_ms <= 0)
        return;
    avr_t *avr = h->avr;
    avr_flash_t *f = h->flash;
    if (avr_regbit_get(avr, f->selfprgen) && (avr_regbit_get(avr, f->pgers) || avr_regbit_get(avr, f->pgwrt))) {
        h->spm_busy_until = avr->cycle + (avr_cycle_count_t)(h->page_write_ms * avr->frequency / 1000.0);
        if (avr_regbit_get(avr, f->pgwrt))
            h->pages_written++;
    }
}

static int flash_ioctl_wrap(struct avr_io_t *io, uint32_t ctl, void *param)
{
    if (ctl == AVR_IOCTL_FLASH_SPM && g_h)
        spm_timing_note(g_h);
    return g_h->flash_ioctl(io, ctl, param);
}

/* SPMCSR as Optiboot's boot_spm_busy_wait() sees it: SPMEN stays set while a
 * page erase or write is in progress. */
static uint8_t spmcsr_read(avr_t *avr, avr_io_addr_t addr, void *param)
{
    avr_harness *h = param;
    /* simavr stores what this returns back into the register: set the busy
     * bits only while busy and clear them after, or they would stick. */
    uint8_t busy_bits = (uint8_t)(h->flash->selfprgen.mask << h->flash->selfprgen.bit);
    if (h->flash->rwwsb.reg == addr)
        busy_bits |= (uint8_t)(h->flash->rwwsb.mask << h->flash->rwwsb.bit);
    uint8_t v = avr->data[addr];
    if (avr->cycle < h->spm_busy_until)
        return (uint8_t)(v | busy_bits);
    if (h->spm_busy_until) {
        h->spm_busy_until = 0;
        v &= (uint8_t)~busy_bits;
    }
    return v;
}

/* Every reset goes through avr_reset(), ours and the watchdog's (Optiboot
 * leaves through a 16 ms watchdog reset; a framing error in a command makes
 * it reset too). avr_reset() cancels all cycle timers and sets the cycle
 * counter back to 0: forget what was timed against the old count. */
static void on_core_reset(avr_t *avr)
{
    if (g_h && g_h->core_reset)
        g_h->core_reset(avr);
    if (!g_h)
        return;
    g_h->feeding = 0;
    g_h->spm_busy_until = 0;
    g_h->last_io_cycle = 0;
    g_h->reset_seen = 1;
    /* Every reset source (external, watchdog) waits the start-up time. */
    g_h->startup_until_us = pf_posix_now_us() + (uint64_t)(g_h->startup_ms * 1000.0);
}

static void sim_sleep(avr_t *avr, avr_cycle_count_t how_long)
{
    (void)avr;
    (void)how_long; /* pacing is the harness's job */
}

static void chip_reset(avr_harness *h, uint8_t cause)
{
    avr_reset(h->avr);
    h->avr->pc = h->boot_start;
    h->avr->data[MCUSR_ADDR] = cause;
    h->avr->state = cpu_Running;
    h->resets++;
    say(h, 1, "reset (%s)", cause == MCUSR_EXTRF ? "external" : "power-on");
}

static int load_bootloader(avr_harness *h)
{
    FILE *f = fopen(h->bootloader, "rb");
    if (!f) {
        fprintf(stderr, "peerflash: sim avr: cannot read the bootloader hex '%s': %s%s\n", h->bootloader,
                strerror(errno),
                h->bootloader[0] ? "" : " (none built in: pass --bootloader, see scripts/avr/build-optiboot.sh)");
        return -1;
    }
    static uint8_t text[256 * 1024];
    size_t n = fread(text, 1, sizeof text, f);
    fclose(f);
    static pf_segment segs[16];
    static uint8_t arena[64 * 1024];
    pf_memmap map;
    pf_memmap_init(&map, segs, 16, arena, sizeof arena);
    pf_ihex p;
    pf_diag d = {0};
    pf_ihex_init(&p, pf_memmap_sink, &map, &d);
    int r = pf_ihex_feed(&p, text, n);
    if (r == 0)
        r = pf_ihex_finish(&p);
    if (r == 0)
        r = pf_memmap_finish(&map, &d);
    if (r != 0) {
        fprintf(stderr, "peerflash: sim avr: %s: %s\n", h->bootloader, d.text);
        return -1;
    }
    uint32_t flash_size = h->avr->flashend + 1;
    uint32_t lo, hi;
    pf_memmap_bounds(&map, &lo, &hi);
    if (map.count == 0 || lo < h->boot_start || hi > flash_size) {
        fprintf(stderr,
                "peerflash: sim avr: %s: data at 0x%04x-0x%04x does not fit the %u-byte boot section "
                "0x%04x-0x%04x of the %s (a broken or foreign bootloader)\n",
                h->bootloader, (unsigned)lo, (unsigned)(hi ? hi - 1 : 0), BOOT_SIZE, (unsigned)h->boot_start,
                (unsigned)(flash_size - 1), MCU_NAME);
        return -1;
    }
    for (size_t i = 0; i < map.count; i++)
        memcpy(h->avr->flash + map.segs[i].addr, map.segs[i].data, map.segs[i].len);
    return 0;
}

/* simavr's data and flash arrays are as large as the part's RAM and flash,
 * but its core indexes them with any 16-bit data address (LD/ST/PUSH, after
 * only logging "out of ram") and any 16-bit Z (LPM, SPM page erase/write).
 * Give both a 64 KiB backing so such accesses land in padding ("go
 * nowhere"): zeroed data above RAMEND, erased (0xFF) flash above FLASHEND,
 * keeping the overflow opcode avr_init puts right after FLASHEND.
 * avr_terminate() frees both with free(), so realloc() keeps ownership. */
#define AVR_ADDR_SPACE 0x10000u
static int widen_memories(avr_t *avr)
{
    size_t data_len = (size_t)avr->ramend + 1, flash_len = (size_t)avr->flashend + 4;
    uint8_t *data = realloc(avr->data, AVR_ADDR_SPACE);
    if (!data)
        return -1;
    avr->data = data;
    memset(data + data_len, 0, AVR_ADDR_SPACE - data_len);
    uint8_t *flash = realloc(avr->flash, AVR_ADDR_SPACE + 4); /* +4: a 32-bit opcode read at 0xFFFE */
    if (!flash)
        return -1;
    avr->flash = flash;
    memset(flash + flash_len, 0xFF, AVR_ADDR_SPACE + 4 - flash_len);
    return 0;
}

static int setup_avr(avr_harness *h)
{
    g_simavr_log_level = h->verbose >= 3 ? LOG_TRACE : h->verbose >= 1 ? LOG_ERROR : LOG_NONE;
    avr_global_logger_set(simavr_logger);
    h->avr = avr_make_mcu_by_name(MCU_NAME);
    if (!h->avr) {
        fprintf(stderr, "peerflash: sim avr: libsimavr has no %s core\n", MCU_NAME);
        return -1;
    }
    avr_init(h->avr);
    if (widen_memories(h->avr) != 0) {
        fprintf(stderr, "peerflash: sim avr: out of memory\n");
        return -1;
    }
    h->avr->frequency = MCU_FREQ;
    h->avr->log = (uint8_t)g_simavr_log_level;
    h->avr->sleep = sim_sleep;
    uint32_t flash_size = h->avr->flashend + 1;
    h->boot_start = flash_size - BOOT_SIZE;
    memset(h->avr->flash, 0xFF, flash_size);
    if (load_bootloader(h) != 0)
        return -1;
    h->avr->reset_pc = h->boot_start; /* BOOTRST */
    h->core_reset = h->avr->reset;
    h->avr->reset = on_core_reset;
    h->avr->codeend = h->avr->flashend;

    for (avr_io_t *io = h->avr->io_port; io; io = io->next) {
        if (!strcmp(io->kind, "uart") && ((avr_uart_t *)io)->name == '0')
            h->uart = (avr_uart_t *)io;
        else if (!strcmp(io->kind, "flash"))
            h->flash = (avr_flash_t *)io;
    }
    if (!h->uart || !h->flash) {
        fprintf(stderr, "peerflash: sim avr: libsimavr's %s has no UART0 or flash module\n", MCU_NAME);
        return -1;
    }
    uint32_t flags = 0; /* no poll-sleep (we pace), no stdio echo */
    avr_ioctl(h->avr, AVR_IOCTL_UART_SET_FLAGS('0'), &flags);
    avr_irq_register_notify(avr_io_getirq(h->avr, AVR_IOCTL_UART_GETIRQ('0'), UART_IRQ_OUTPUT), uart_output, h);
    h->flash_ioctl = h->flash->io.ioctl;
    h->flash->io.ioctl = flash_ioctl_wrap;
    avr_register_io_read(h->avr, h->flash->r_spm, spmcsr_read, h);
    h->frame_cycles = (avr_cycle_count_t)MCU_FREQ * 10u / h->baud;
    return 0;
}

/* ---- host side ----------------------------------------------------------- */

static void check_line_rate(avr_harness *h)
{
    struct termios t;
    if (tcgetattr(h->link.fd, &t) != 0)
        return;
    speed_t s = cfgetispeed(&t);
    int g = s != (speed_t)pf_endpoint_baud_to_speed(h->baud) && s != B0;
    if (g != h->garble)
        say(h, 1, "host line rate %s the UART's %lu baud", g ? "differs from" : "matches", (unsigned long)h->baud);
    h->garble = g;
}

static void discard_input(avr_harness *h)
{
    uint8_t buf[512];
    while (read(h->link.fd, buf, sizeof buf) > 0) {
    }
    h->to_avr.len = 0;
}

/* Opens of the pty slave, from inotify: a port that is closed and opened
 * again within microseconds (a retry) must still reset the chip, as the DTR
 * edge does on a board. Returns 1 if an open was seen. */
static int slave_opened(avr_harness *h)
{
    if (h->notify_fd < 0)
        return 0;
    int opened = 0;
    char buf[4096] __attribute__((aligned(__alignof__(struct inotify_event))));
    for (;;) {
        ssize_t n = read(h->notify_fd, buf, sizeof buf);
        if (n <= 0)
            break;
        for (char *p = buf; p < buf + n;) {
            const struct inotify_event *ev = (const struct inotify_event *)p;
            if (ev->mask & (IN_CLOSE_WRITE | IN_CLOSE_NOWRITE)) {
                say(h, 1, "port closed");
                discard_input(h); /* what the last session sent is gone with it */
                h->to_host.len = 0;
                opened = 0;
            }
            if (ev->mask & IN_OPEN)
                opened = 1;
            p += sizeof *ev + ev->len;
        }
    }
    return opened;
}

/* Notices opens and closes of the pty slave; reads host bytes. */
static void host_io(avr_harness *h)
{
    int opened = slave_opened(h);
    struct pollfd p = {h->link.fd, POLLIN | (h->to_host.len ? POLLOUT : 0), 0};
    if (poll(&p, 1, 0) < 0)
        return;
    int held = !(p.revents & POLLHUP);
    if (h->notify_fd < 0 && held && !h->held)
        opened = 1;
    if (!held && h->held) {
        say(h, 2, "nobody holds the port");
        h->to_host.len = 0;
    }
    h->held = held;
    if (opened) {
        say(h, 1, "port opened");
        h->to_avr.len = 0;
        h->to_host.len = 0;
        check_line_rate(h);
        if (h->reset_on_open)
            chip_reset(h, MCUSR_EXTRF);
    }
    if (!held)
        return;
    if (p.revents & POLLIN) {
        uint8_t buf[512];
        ssize_t n = read(h->link.fd, buf, sizeof buf);
        if (n > 0) {
            check_line_rate(h);
            for (ssize_t i = 0; i < n; i++)
                if (!q_push(&h->to_avr, buf[i]))
                    say(h, 1, "host queue full: byte dropped");
            h->last_io_cycle = h->avr->cycle;
            start_feed(h);
        }
    }
    while (h->to_host.len) {
        size_t run = QUEUE_SIZE - h->to_host.head;
        if (run > h->to_host.len)
            run = h->to_host.len;
        ssize_t n = write(h->link.fd, h->to_host.buf + h->to_host.head, run);
        if (n <= 0)
            break;
        h->to_host.head = (h->to_host.head + (size_t)n) % QUEUE_SIZE;
        h->to_host.len -= (size_t)n;
    }
}

static int busy(const avr_harness *h)
{
    if (h->realtime)
        return 0;
    if (h->to_avr.len || h->to_host.len)
        return 1;
    return h->avr->cycle - h->last_io_cycle < avr_usec_to_cycles(h->avr, BUSY_WINDOW_US);
}

static void wait_us(avr_harness *h, uint64_t us)
{
    if (us > 2000)
        us = 2000;
    struct pollfd p[2] = {{h->notify_fd, POLLIN, 0}, {h->link.fd, POLLIN, 0}};
    struct timespec ts = {0, (long)us * 1000};
    /* The pty reports HUP at once while nobody holds it: then wait only for
     * an open (inotify) or the time. */
    ppoll(p, h->held ? 2 : 1, &ts, NULL);
}

static int halted(const avr_harness *h)
{
    return h->avr->state == cpu_Done || h->avr->state == cpu_Crashed || h->avr->state == cpu_Stopped;
}

/* simavr's crash() (an access above RAMEND, a PC past the flash) stops the
 * core; silicon runs on. The access already landed in widen_memories'
 * padding and the instruction completed: continue where simavr left the PC. */
static void run_on_after_crash(avr_harness *h)
{
    if (h->avr->state != cpu_Crashed)
        return;
    unsigned long n = ++h->crashes;
    if ((n & (n - 1)) == 0) /* the 1st, 2nd, 4th, ...: a wild program crashes often */
        say(h, 2, "simavr stopped the core at pc 0x%04x (a wild access or jump); it runs on, as silicon does",
            (unsigned)h->avr->pc);
    h->avr->state = cpu_Running;
}

static void run(avr_harness *h, volatile sig_atomic_t *stop)
{
    int was_halted = 0;
    anchor(h);
    while (!(stop && *stop)) {
        if (g_reset) {
            g_reset = 0;
            chip_reset(h, MCUSR_EXTRF);
        }
        host_io(h);
        if (h->reset_seen) {
            h->reset_seen = 0;
            say(h, 2, "core reset: pc=0x%04x sp=0x%02x%02x mcusr=0x%02x", (unsigned)h->avr->pc, h->avr->data[R_SPH],
                h->avr->data[R_SPL], h->avr->data[MCUSR_ADDR]);
            start_feed(h);
            anchor(h);
        }
        if (h->startup_until_us) {
            uint64_t now = pf_posix_now_us();
            if (now < h->startup_until_us) {
                /* Start-up time: the oscillator settles, the UART is off,
                 * whatever the host sends now is lost. */
                if (h->to_avr.len)
                    say(h, 2, "%zu bytes lost: the chip is still starting up", h->to_avr.len);
                h->to_avr.len = 0;
                wait_us(h, h->startup_until_us - now);
                continue;
            }
            h->startup_until_us = 0;
            anchor(h);
        }
        run_on_after_crash(h);
        if (halted(h)) {
            if (!was_halted)
                say(h, 1, "core %s at pc 0x%04x; waiting for a reset",
                    h->avr->state == cpu_Done ? "asleep with interrupts off" : "stopped", (unsigned)h->avr->pc);
            was_halted = 1;
            h->to_avr.len = 0;
            wait_us(h, 2000);
            anchor(h);
            continue;
        }
        was_halted = 0;
        if (!busy(h)) {
            uint64_t wall = pf_posix_now_us() - h->anchor_wall_us;
            uint64_t sim = sim_us(h) - h->anchor_sim_us;
            if (sim > wall) {
                wait_us(h, sim - wall);
                continue;
            }
            if (wall - sim > MAX_LAG_US)
                anchor(h); /* fell behind (load): do not sprint to catch up */
        } else {
            anchor(h);
        }
        avr_cycle_count_t end = h->avr->cycle + avr_usec_to_cycles(h->avr, SLICE_US);
        while (h->avr->cycle < end && !halted(h) && !h->reset_seen) {
            avr_run(h->avr);
            run_on_after_crash(h);
        }
    }
}

static int dump_flash(const avr_harness *h)
{
    FILE *f = fopen(h->flash_dump, "wb");
    if (!f || fwrite(h->avr->flash, 1, h->avr->flashend + 1, f) != h->avr->flashend + 1 || fclose(f) != 0) {
        fprintf(stderr, "peerflash: sim avr: cannot write the flash dump %s: %s\n", h->flash_dump, strerror(errno));
        return -1;
    }
    say(h, 1, "flash dumped to %s", h->flash_dump);
    return 0;
}

static void usage(FILE *f)
{
    fprintf(f,
            "usage: peerflash sim avr --port PATH [options]\n"
            "Runs the real Optiboot on a simulated ATmega328P (libsimavr), UART0 on a pty.\n"
            "  --port PATH          pty to create (pty:PATH or a new path); the chip resets when it is\n"
            "                       opened, as an Uno does through its DTR auto-reset capacitor\n"
            "  --bootloader HEX     bootloader image (default: the Optiboot built with peerflash:\n"
            "                       %s)\n"
            "  --flash-dump FILE    write the whole flash (32 KiB) to FILE at exit\n"
            "  --uart-log FILE      append what the application prints on UART0 to FILE\n"
            "  --no-reset-on-open   do not reset when the port is opened (SIGUSR1 still resets)\n"
            "  --page-write-ms MS   time of one page erase and of one page write (default 4.5; 0 = instant)\n"
            "  --baud N             the line rate the host must use (default 115200)\n"
            "  --startup-ms MS      start-up time after a reset, UART off (default 65: an Uno's fuses)\n"
            "  --realtime           pace in real time even while bytes move (default: unthrottled then)\n"
            "  -v, --verbose        more messages on stderr (repeat for more)\n"
            "Signals: SIGUSR1 resets the chip (reset button), SIGTERM/SIGINT dump the flash and exit.\n",
            default_bootloader()[0] ? default_bootloader() : "(none built)");
}

int pf_sim_avr_open(pf_sim_avr **out, const pf_sim_avr_config *cfg, pf_diag *diag)
{
    if (!out || !cfg || !cfg->port)
        return pf_diag_set(diag, PF_ERR_ARG, "no port given");
    *out = NULL;
    if (g_h)
        return pf_diag_set(diag, PF_ERR_STATE, "one AVR simulator per process");
    /* Static, as libsimavr's flash hook has no context anyway: large queues
     * stay off the stack, and what libsimavr allocates stays reachable from
     * here after avr_terminate, as it always was (LeakSanitizer). */
    static avr_harness harness;
    avr_harness *h = &harness;
    memset(h, 0, sizeof *h);
    h->port_spec = cfg->port;
    h->flash_dump = cfg->flash_dump;
    h->uart_log_path = cfg->uart_log;
    h->bootloader = cfg->bootloader ? cfg->bootloader : default_bootloader();
    h->reset_on_open = cfg->reset_on_open;
    h->realtime = cfg->realtime;
    h->verbose = cfg->verbose;
    h->page_write_ms = cfg->page_write_ms;
    h->startup_ms = cfg->startup_ms;
    h->baud = cfg->baud ? cfg->baud : 115200;
    h->link.fd = h->link.listen_fd = h->notify_fd = -1;
    if (setup_avr(h) != 0)
        return PF_ERR_UNSUPPORTED; /* setup_avr said why */
    g_h = h;
    if (h->uart_log_path) {
        h->uart_log = fopen(h->uart_log_path, "a");
        if (!h->uart_log) {
            int e = errno;
            pf_sim_avr_close(h);
            return pf_diag_set(diag, PF_ERR_ARG, "cannot open %s: %s", cfg->uart_log, strerror(e));
        }
    }
    char spec[300];
    if (strncmp(h->port_spec, "pty:", 4) != 0)
        snprintf(spec, sizeof spec, "pty:%s", h->port_spec);
    else
        snprintf(spec, sizeof spec, "%s", h->port_spec);
    int r = pf_posix_open(&h->link, spec, diag);
    if (r != 0) {
        h->link.fd = h->link.listen_fd = -1;
        pf_sim_avr_close(h);
        return r == PF_ERR_ARG ? r : PF_ERR_IO;
    }
    h->notify_fd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
    if (h->notify_fd >= 0 && inotify_add_watch(h->notify_fd, h->link.slave, IN_OPEN | IN_CLOSE) < 0) {
        close(h->notify_fd);
        h->notify_fd = -1;
    }
    if (h->notify_fd < 0)
        say(h, 0, "no inotify on %s: a port closed and reopened at once may not reset the chip", h->link.slave);
    /* Power-on: Optiboot sees PORF and starts the application (if any). */
    chip_reset(h, MCUSR_PORF);
    h->resets = 0;
    *out = h;
    return PF_OK;
}

int pf_sim_avr_run(pf_sim_avr *h, volatile sig_atomic_t *stop)
{
    fprintf(stderr, "sim avr: Optiboot on %s ready on %s (%s, page write %.1f ms, %s)\n", MCU_NAME,
            h->link.path, h->link.slave, h->page_write_ms, h->realtime ? "real time" : "real time when idle");
    run(h, stop);
    int rc = 0;
    if (h->flash_dump && dump_flash(h) != 0)
        rc = PF_ERR_IO;
    say(h, 0, "%lu resets, %lu pages written, %lu RX overruns, %lu wild accesses run past", h->resets,
        h->pages_written, h->overruns, h->crashes);
    return rc;
}

void pf_sim_avr_close(pf_sim_avr *h)
{
    if (!h)
        return;
    if (h->uart_log)
        fclose(h->uart_log);
    if (h->link.fd >= 0 || h->link.listen_fd >= 0)
        pf_posix_close(&h->link);
    if (h->notify_fd >= 0)
        close(h->notify_fd);
    avr_terminate(h->avr);
    if (g_h == h)
        g_h = NULL;
}

int pf_sim_avr_main(int argc, char **argv)
{
    pf_sim_avr_config h = PF_SIM_AVR_CONFIG_DEFAULT();
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            usage(stdout);
            return 0;
        } else if (!strcmp(a, "--port") && v) {
            h.port = v;
            i++;
        } else if (!strcmp(a, "--flash-dump") && v) {
            h.flash_dump = v;
            i++;
        } else if (!strcmp(a, "--uart-log") && v) {
            h.uart_log = v;
            i++;
        } else if (!strcmp(a, "--bootloader") && v) {
            h.bootloader = v;
            i++;
        } else if (!strcmp(a, "--page-write-ms") && v) {
            char *end;
            h.page_write_ms = strtod(v, &end);
            if (*end || h.page_write_ms < 0 || h.page_write_ms > 100) {
                fprintf(stderr, "peerflash: sim avr: --page-write-ms wants 0..100, not '%s'\n", v);
                return 2;
            }
            i++;
        } else if (!strcmp(a, "--startup-ms") && v) {
            char *end;
            h.startup_ms = strtod(v, &end);
            if (*end || h.startup_ms < 0 || h.startup_ms > 1000) {
                fprintf(stderr, "peerflash: sim avr: --startup-ms wants 0..1000, not '%s'\n", v);
                return 2;
            }
            i++;
        } else if (!strcmp(a, "--baud") && v) {
            h.baud = (uint32_t)strtoul(v, NULL, 10);
            /* the rates termios names from 9600 to 230400, as the UART model was checked at */
            if (h.baud < 9600 || h.baud > 230400 || !pf_endpoint_baud_to_speed(h.baud)) {
                fprintf(stderr, "peerflash: sim avr: unsupported --baud %s\n", v);
                return 2;
            }
            i++;
        } else if (!strcmp(a, "--no-reset-on-open")) {
            h.reset_on_open = 0;
        } else if (!strcmp(a, "--realtime")) {
            h.realtime = 1;
        } else if (!strcmp(a, "-v") || !strcmp(a, "--verbose")) {
            h.verbose++;
        } else {
            fprintf(stderr, "peerflash: sim avr: unknown or incomplete option '%s'\n", a);
            usage(stderr);
            return 2;
        }
    }
    if (!h.port) {
        usage(stderr);
        return 2;
    }
    pf_diag diag = {0};
    pf_sim_avr *sim;
    int r = pf_sim_avr_open(&sim, &h, &diag);
    if (r < 0) {
        if (diag.text[0])
            fprintf(stderr, "peerflash: sim avr: %s\n", diag.text);
        return r == PF_ERR_IO ? 4 : 1;
    }
    volatile sig_atomic_t *stop = pf_sim_command_signals();
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_reset;
    sigaction(SIGUSR1, &sa, NULL);
    r = pf_sim_avr_run(sim, stop);
    pf_sim_avr_close(sim);
    return r < 0 ? 1 : 0;
}
