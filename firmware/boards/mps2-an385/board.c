/* The QEMU mps2-an385 board for the updater firmware.
 *
 *  - Clock: SysTick at 1 kHz from the 25 MHz processor clock; now_ms counts
 *    its interrupts. On a loaded host QEMU may lose ticks (deadlines then
 *    stretch, never shrink), like a real MCU whose clock is slower than hoped.
 *  - Link: CMSDK APB UART0 (0x40004000, IRQ 0 = RX), the first -serial of
 *    QEMU. Its receive buffer is ONE byte, so bytes move into a 1 KiB ring in
 *    the RX interrupt, as on a real MCU at 115200 baud (87 us per byte);
 *    reads wait with WFI until a byte or a tick arrives, so an idle updater
 *    does not spin the host CPU. Writes poll the TX-full flag. The CMSDK UART
 *    has no parity: 8E1 is refused (PF_ERR_UNSUPPORTED). No modem lines:
 *    set_lines reports PF_ERR_UNSUPPORTED, which drivers treat as "no reset
 *    circuit" (a board with GPIOs wired to RESET/BOOT would drive them here).
 *  - Storage: host files through semihosting, standing in for an SD card.
 *  - Console and exit status: semihosting SYS_WRITE0 and SYS_EXIT_EXTENDED.
 *  - Job: semihosting SYS_GET_CMDLINE, i.e. QEMU's -append. */
#include <stdint.h>
#include <string.h>

#include "pf_board.h"
#include "semihost.h"

/* ---- registers ---------------------------------------------------------------- */
#define REG(addr) (*(volatile uint32_t *)(addr))
#define SYST_CSR REG(0xE000E010u)
#define SYST_RVR REG(0xE000E014u)
#define SYST_CVR REG(0xE000E018u)
#define NVIC_ISER0 REG(0xE000E100u)
#define NVIC_ICPR0 REG(0xE000E280u)

#define UART0_BASE 0x40004000u
#define UART_DATA REG(UART0_BASE + 0x00u)
#define UART_STATE REG(UART0_BASE + 0x04u)
#define UART_CTRL REG(UART0_BASE + 0x08u)
#define UART_INT REG(UART0_BASE + 0x0Cu) /* read: INTSTATUS, write 1s: INTCLEAR */
#define UART_BAUDDIV REG(UART0_BASE + 0x10u)
#define STATE_TX_FULL (1u << 0)
#define STATE_RX_FULL (1u << 1)
#define STATE_RX_OVERRUN (1u << 3)
#define CTRL_TX_EN (1u << 0)
#define CTRL_RX_EN (1u << 1)
#define CTRL_RX_INT_EN (1u << 3)
#define INT_RX (1u << 1)
#define UART0_RX_IRQ 0u

#define PCLK_HZ 25000000u

/* ---- clock ------------------------------------------------------------------------ */
static volatile uint32_t ticks_ms;

void pf_mps2_systick_isr(void);
void pf_mps2_systick_isr(void)
{
    ticks_ms++;
}

static void clock_init(void)
{
    SYST_RVR = PCLK_HZ / 1000u - 1u;
    SYST_CVR = 0;
    SYST_CSR = 7u; /* processor clock, interrupt, enable */
}

/* ---- UART0 with an interrupt-fed ring --------------------------------------------- */
#define RING_SIZE 1024u /* power of two */

typedef struct mps2_link {
    volatile uint8_t ring[RING_SIZE];
    volatile uint32_t head; /* written by the ISR */
    volatile uint32_t tail; /* written by readers */
    volatile uint32_t overruns;
    uint32_t baud;
} mps2_link;

static mps2_link link0;

void pf_mps2_uart0_rx_isr(void);
void pf_mps2_uart0_rx_isr(void)
{
    /* Clear first: a byte that lands after the loop raises the interrupt again. */
    UART_INT = INT_RX;
    while (UART_STATE & STATE_RX_FULL) {
        uint8_t b = (uint8_t)UART_DATA;
        uint32_t h = link0.head;
        if (h - link0.tail < RING_SIZE) {
            link0.ring[h % RING_SIZE] = b;
            link0.head = h + 1;
        } else {
            link0.overruns++;
        }
    }
    if (UART_STATE & STATE_RX_OVERRUN) {
        link0.overruns++;
        UART_STATE = STATE_RX_OVERRUN; /* write 1 to clear */
    }
}

static uint32_t link_now(void *ctx)
{
    (void)ctx;
    return ticks_ms;
}

/* Sleeps until an interrupt (a received byte or the next tick). Interrupts are
 * masked around the check so that one arriving in between still wakes WFI. */
static void wait_event(int (*ready)(void))
{
    __asm__ volatile("cpsid i" ::: "memory");
    if (!ready())
        __asm__ volatile("wfi" ::: "memory");
    __asm__ volatile("cpsie i" ::: "memory");
}

static int never_ready(void)
{
    return 0;
}

static int rx_ready(void)
{
    return link0.head != link0.tail;
}

static void link_delay(void *ctx, uint32_t ms)
{
    uint32_t t0 = link_now(ctx);
    while (link_now(ctx) - t0 < ms)
        wait_event(never_ready);
}

static int link_read(void *ctx, uint8_t *buf, size_t n, uint32_t timeout_ms)
{
    mps2_link *l = ctx;
    uint32_t t0 = link_now(ctx);
    size_t got = 0;
    while (got < n) {
        uint32_t tail = l->tail;
        if (l->head != tail) {
            buf[got++] = l->ring[tail % RING_SIZE];
            l->tail = tail + 1;
            continue;
        }
        /* Like the POSIX port: hand over what has arrived rather than wait
         * for all n (a SLIP reader asks for more than one frame's worth). */
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
        while (UART_STATE & STATE_TX_FULL) {
        }
        UART_DATA = buf[i];
    }
    return (int)n;
}

static int link_drain(void *ctx)
{
    (void)ctx;
    while (UART_STATE & STATE_TX_FULL) {
    }
    return PF_OK;
}

static int link_flush_input(void *ctx)
{
    mps2_link *l = ctx;
    l->tail = l->head;
    return PF_OK;
}

static int link_set_line(void *ctx, uint32_t baud, pf_frame frame)
{
    mps2_link *l = ctx;
    if (frame != PF_FRAME_8N1)
        return PF_ERR_UNSUPPORTED; /* the CMSDK UART has no parity bit */
    uint32_t div = baud ? PCLK_HZ / baud : 0;
    if (div < 16u)
        return PF_ERR_ARG; /* the CMSDK UART needs BAUDDIV >= 16: at most 1.5625 Mbaud */
    UART_BAUDDIV = div;
    l->baud = baud;
    return PF_OK;
}

static int link_set_lines(void *ctx, int dtr, int rts)
{
    (void)ctx;
    (void)dtr;
    (void)rts;
    return PF_ERR_UNSUPPORTED; /* no modem lines wired on this board */
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
    UART_CTRL = 0;
    UART_BAUDDIV = PCLK_HZ / 115200u;
    link0.baud = 115200u;
    UART_CTRL = CTRL_TX_EN | CTRL_RX_EN | CTRL_RX_INT_EN;
    /* QEMU 7.2: after RX is enabled, one read of DATA is needed before
     * queued bytes are delivered. */
    (void)UART_DATA;
    UART_INT = INT_RX;
    NVIC_ICPR0 = 1u << UART0_RX_IRQ;
    NVIC_ISER0 = 1u << UART0_RX_IRQ;
}

static const pf_port mps2_port = {
    &link0, link_read, link_write, link_drain, link_flush_input, link_set_line, link_set_lines,
    link_now, link_delay, link_log,
};

int pf_board_init(pf_board *b)
{
    clock_init();
    link_init();
    b->name = "mps2-an385";
    b->link = &mps2_port;
    pf_sh_board_services(b); /* storage, console, job, reference clock */
    return PF_OK;
}

void pf_board_exit(int status)
{
    pf_sh_exit(status);
}

int main(void)
{
    pf_board b;
    int r = pf_board_init(&b);
    pf_board_exit(r < 0 ? 1 : pf_updater_run(&b));
}
