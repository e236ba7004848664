/* QEMU's microbit (nRF51822, Cortex-M0, 16 KiB RAM) for the updater firmware.
 * Facts about QEMU 7.2's model: shared/notes/mcu/README.md.
 *
 *  - Clock: TIMER0 free-running at 1 MHz, 32 bits; now_ms reads it with
 *    TASKS_CAPTURE[0]/CC[0] and extends it past its 71-minute wrap. Not
 *    SysTick (the nRF51 has none on silicon; QEMU's loses ticks under host
 *    load) and not RTC0 (QEMU does not model it). Waits sleep in WFI; a
 *    one-shot TIMER0 compare (CC[1], IRQ 8) 1 ms ahead wakes them, so a
 *    deadline is seen within about 1 ms.
 *  - Link: UART0 (0x40002000, IRQ 2), QEMU's first -serial. RXDRDY moves
 *    bytes into a ring in the interrupt; the event is cleared BEFORE RXD is
 *    read, since QEMU raises it again inside that read when its 6-byte FIFO
 *    holds more. ENABLE must be 4 exactly. BAUDRATE gets the nRF51 code
 *    (QEMU ignores it); 8E1 sets CONFIG.PARITY (the nRF51 UART has even
 *    parity, no odd). No modem lines on the micro:bit's UART: set_lines
 *    reports PF_ERR_UNSUPPORTED, so the target must reset on its own (a
 *    board with a GPIO on RESET would drive it there).
 *  - Storage, console, job, exit: ARM semihosting (firmware/semihost/), as on
 *    mps2-an385. At exit the stack's high-water mark is printed. */
#include <stdint.h>
#include <string.h>

#include "pf_board.h"
#include "semihost.h"

#ifndef PF_MICROBIT_RING
#define PF_MICROBIT_RING 256u /* UART receive ring, a power of two */
#endif

/* ---- registers ---------------------------------------------------------------- */
#define REG(addr) (*(volatile uint32_t *)(addr))
#define NVIC_ISER0 REG(0xE000E100u)
#define NVIC_ICPR0 REG(0xE000E280u)

#define TIMER0_BASE 0x40008000u
#define TIMER0_IRQ 8u
#define T_START REG(TIMER0_BASE + 0x000u)
#define T_CLEAR REG(TIMER0_BASE + 0x00Cu)
#define T_CAPTURE0 REG(TIMER0_BASE + 0x040u)
#define T_COMPARE1 REG(TIMER0_BASE + 0x144u) /* EVENTS_COMPARE[1] */
#define T_INTENSET REG(TIMER0_BASE + 0x304u)
#define T_MODE REG(TIMER0_BASE + 0x504u)
#define T_BITMODE REG(TIMER0_BASE + 0x508u)
#define T_PRESCALER REG(TIMER0_BASE + 0x510u)
#define T_CC0 REG(TIMER0_BASE + 0x540u)
#define T_CC1 REG(TIMER0_BASE + 0x544u)
#define T_INT_COMPARE1 (1u << 17)

#define UART0_BASE 0x40002000u
#define UART0_IRQ 2u
#define U_STARTRX REG(UART0_BASE + 0x000u)
#define U_STARTTX REG(UART0_BASE + 0x008u)
#define U_RXDRDY REG(UART0_BASE + 0x108u)
#define U_TXDRDY REG(UART0_BASE + 0x11Cu)
#define U_ERROR REG(UART0_BASE + 0x124u)
#define U_INTENSET REG(UART0_BASE + 0x304u)
#define U_ENABLE REG(UART0_BASE + 0x500u)
#define U_PSELTXD REG(UART0_BASE + 0x50Cu)
#define U_PSELRXD REG(UART0_BASE + 0x514u)
#define U_RXD REG(UART0_BASE + 0x518u)
#define U_TXD REG(UART0_BASE + 0x51Cu)
#define U_BAUDRATE REG(UART0_BASE + 0x524u)
#define U_CONFIG REG(UART0_BASE + 0x56Cu)
#define U_INT_RXDRDY (1u << 2)
#define U_CONFIG_PARITY_EVEN (7u << 1)

/* ---- clock: TIMER0 at 1 MHz ------------------------------------------------------- */
static uint32_t last_us;  /* last TIMER0 reading */
static uint64_t total_us; /* extended past the 32-bit wrap */
static uint32_t backward_steps; /* readings behind the last one, reported at exit */

static void clock_init(void)
{
    T_MODE = 0;      /* timer */
    T_BITMODE = 3;   /* 32 bits */
    T_PRESCALER = 4; /* 16 MHz / 2^4 = 1 MHz */
    T_CLEAR = 1;
    T_START = 1;
    T_COMPARE1 = 0;
    T_INTENSET = T_INT_COMPARE1;
    NVIC_ICPR0 = 1u << TIMER0_IRQ;
    NVIC_ISER0 = 1u << TIMER0_IRQ;
}

static uint32_t timer_us(void)
{
    T_CAPTURE0 = 1;
    return T_CC0;
}

void pf_microbit_timer0_isr(void);
void pf_microbit_timer0_isr(void)
{
    T_COMPARE1 = 0; /* only the wake-up matters */
}

/* Milliseconds since start. A reading a little BEHIND the previous one is
 * ignored: taken as a forward step it would wrap to a 71-minute jump (seen
 * under host load: a sync deadline expired before its first try). Forward
 * steps are always far below 2^31 us here, since every wait reads the clock
 * at least once a millisecond. */
static uint32_t clock_ms(void)
{
    uint32_t t = timer_us();
    uint32_t step = t - last_us;
    if (step < 0x80000000u) {
        total_us += step;
        last_us = t;
    } else {
        backward_steps++;
    }
    return (uint32_t)(total_us / 1000u);
}

/* ---- UART0 with an interrupt-fed ring --------------------------------------------- */
typedef struct microbit_link {
    volatile uint8_t ring[PF_MICROBIT_RING];
    volatile uint32_t head; /* written by the ISR */
    volatile uint32_t tail; /* written by readers */
    volatile uint32_t overruns;
    uint32_t baud;
} microbit_link;

static microbit_link link0;

void pf_microbit_uart0_isr(void);
void pf_microbit_uart0_isr(void)
{
    while (U_RXDRDY) {
        U_RXDRDY = 0; /* before RXD: QEMU raises it again inside the read if more wait */
        uint8_t b = (uint8_t)U_RXD;
        uint32_t h = link0.head;
        if (h - link0.tail < PF_MICROBIT_RING) {
            link0.ring[h % PF_MICROBIT_RING] = b;
            link0.head = h + 1;
        } else {
            link0.overruns++;
        }
    }
}

static uint32_t link_now(void *ctx)
{
    (void)ctx;
    return clock_ms();
}

static int rx_ready(void)
{
    return link0.head != link0.tail;
}

static int never_ready(void)
{
    return 0;
}

/* Sleeps until an interrupt: a received byte, or the TIMER0 compare set 1 ms
 * ahead. Interrupts are masked around the check, so one arriving in between
 * still wakes WFI (it stays pending). */
static void wait_event(int (*ready)(void))
{
    __asm__ volatile("cpsid i" ::: "memory");
    if (!ready()) {
        T_CC1 = timer_us() + 1000u;
        __asm__ volatile("wfi" ::: "memory");
    }
    __asm__ volatile("cpsie i" ::: "memory");
}

static void link_delay(void *ctx, uint32_t ms)
{
    uint32_t t0 = link_now(ctx);
    while (link_now(ctx) - t0 < ms)
        wait_event(never_ready);
}

static int link_read(void *ctx, uint8_t *buf, size_t n, uint32_t timeout_ms)
{
    microbit_link *l = ctx;
    uint32_t t0 = link_now(ctx);
    size_t got = 0;
    while (got < n) {
        uint32_t tail = l->tail;
        if (l->head != tail) {
            buf[got++] = l->ring[tail % PF_MICROBIT_RING];
            l->tail = tail + 1;
            continue;
        }
        /* Like the POSIX port: hand over what has arrived rather than wait for all n. */
        if (got || link_now(ctx) - t0 >= timeout_ms)
            break;
        wait_event(rx_ready);
    }
    return (int)got;
}

static int link_write(void *ctx, const uint8_t *buf, size_t n)
{
    (void)ctx;
    for (size_t i = 0; i < n; i++) {
        U_TXDRDY = 0;
        U_TXD = buf[i];
        while (!U_TXDRDY) {
        }
    }
    return (int)n;
}

static int link_drain(void *ctx)
{
    (void)ctx;
    return PF_OK; /* link_write returns after TXDRDY: the last byte has left TXD */
}

static int link_flush_input(void *ctx)
{
    microbit_link *l = ctx;
    l->tail = l->head;
    return PF_OK;
}

/* nRF51 BAUDRATE: baud * 2^32 / 16 MHz with the low 12 bits cleared, which
 * gives the reference manual's table (115200 -> 0x01D7E000, 9600 -> 0x00275000). */
static uint32_t baud_code(uint32_t baud)
{
    uint64_t c = (((uint64_t)baud << 32) + 8000000u) / 16000000u;
    return (uint32_t)c & ~0xFFFu;
}

static int link_set_line(void *ctx, uint32_t baud, pf_frame frame)
{
    microbit_link *l = ctx;
    if (frame != PF_FRAME_8N1 && frame != PF_FRAME_8E1)
        return PF_ERR_UNSUPPORTED;
    if (baud < 1200u || baud > 1000000u)
        return PF_ERR_ARG; /* the nRF51 UART runs 1200 baud to 1 Mbaud */
    U_BAUDRATE = baud_code(baud);
    U_CONFIG = frame == PF_FRAME_8E1 ? U_CONFIG_PARITY_EVEN : 0u;
    l->baud = baud;
    return PF_OK;
}

static int link_set_lines(void *ctx, int dtr, int rts)
{
    (void)ctx;
    (void)dtr;
    (void)rts;
    return PF_ERR_UNSUPPORTED; /* no modem lines on the micro:bit's UART */
}

static void link_log(void *ctx, int level, const char *msg)
{
    (void)ctx;
    (void)level;
    pf_sh_write0("  ");
    pf_sh_write0(msg);
    pf_sh_write0("\n");
}

static void link_init(void)
{
    U_PSELTXD = 24; /* the micro:bit's interface-chip UART pins */
    U_PSELRXD = 25;
    U_BAUDRATE = baud_code(115200u);
    link0.baud = 115200u;
    U_ENABLE = 4; /* exactly 4: QEMU reads 0 from a UART enabled otherwise */
    U_STARTTX = 1;
    U_STARTRX = 1;
    U_INTENSET = U_INT_RXDRDY;
    NVIC_ICPR0 = 1u << UART0_IRQ;
    NVIC_ISER0 = 1u << UART0_IRQ;
}

static const pf_port microbit_port = {
    &link0, link_read, link_write, link_drain, link_flush_input, link_set_line, link_set_lines,
    link_now, link_delay, link_log,
};

int pf_board_init(pf_board *b)
{
    clock_init();
    link_init();
    b->name = "microbit";
    b->link = &microbit_port;
    pf_sh_board_services(b); /* storage, console, job, reference clock */
    return PF_OK;
}

uint32_t pf_microbit_stack_used(void);
uint32_t pf_microbit_stack_size(void);

void pf_board_exit(int status)
{
    char line[80];
    pf_format(line, sizeof line, "stack: %lu of %lu bytes used (high-water mark); clock: %lu backward readings\n",
              (unsigned long)pf_microbit_stack_used(), (unsigned long)pf_microbit_stack_size(),
              (unsigned long)backward_steps);
    pf_sh_write0(line);
    pf_sh_exit(status);
}

int main(void)
{
    pf_board b;
    int r = pf_board_init(&b);
    pf_board_exit(r < 0 ? 1 : pf_updater_run(&b));
}
