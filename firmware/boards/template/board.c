/* TEMPLATE: what a new MCU port fills in to run the peerflash updater.
 *
 * Copy this folder to firmware/boards/<your-board>/, fill in every TODO, add
 * a linker script and a start-up file (vector table with at least SysTick
 * and your UART's RX interrupt), and name the part and the linker script in
 * its board.cmake: the firmware build then links updater-<your-board>.elf
 * with the freestanding check. firmware/boards/mps2-an385/ is a complete
 * example of every piece.
 *
 * The updater (firmware/updater/updater.c) needs five things from the board,
 * all in pf_board (firmware/updater/pf_board.h):
 *
 *  1. A clock: monotonic milliseconds (now_ms) and a delay. A 1 kHz SysTick
 *     interrupt incrementing a counter is enough. All protocol deadlines come
 *     from it, so it must never run fast; running slow only stretches them.
 *
 *  2. The link: a pf_port (include/peerflash/pf_port.h) on the UART wired to
 *     the target's RX/TX.
 *     - read(buf, n, timeout_ms): return as soon as at least one byte is there
 *       (up to n), or 0 when timeout_ms passes with nothing. Move bytes from
 *       the UART into a ring buffer in the RX interrupt: at 115200 baud a byte
 *       arrives every 87 us, and many UARTs hold only one or two.
 *     - write(buf, n): may block until every byte is in the TX FIFO.
 *     - drain: wait until the last byte has left the shift register (needed
 *       before a baud change or a reset pulse).
 *     - set_line(baud, frame): program the divider; PF_FRAME_8E1 (STM32's
 *       bootloader) needs a UART with parity, else return PF_ERR_UNSUPPORTED.
 *     - set_lines(dtr, rts): if GPIOs drive the target's RESET and BOOT/IO0
 *       pins, map them here the way the USB-serial circuits do (DTR -> RESET
 *       for Arduino; DTR/RTS -> EN/IO0 for ESP32, see docs of each driver).
 *       Without such wiring return PF_ERR_UNSUPPORTED: the drivers then rely
 *       on the target already being in its bootloader.
 *
 *  3. Storage: a pf_storage (firmware/updater/pf_storage.h) for the image
 *     files; for FatFs on an SD card the four functions are f_open/f_read/
 *     f_size/f_close on a FIL kept in ctx.
 *
 *  4. A console for progress and the result: a debug UART, RTT, a display.
 *
 *  5. The job: the CLI's words, "flash --target avr --image /app.hex". A real
 *     board may read them from a file on the card (job.txt) or build them
 *     from a button and a fixed image name.
 *
 * RAM: the updater's buffers are static (sizes PF_UPDATER_* in updater.c:
 * the image arena, the driver's state, the job's work buffer). Build with
 * smaller values (-DPF_UPDATER_ARENA=...) for a small part; a driver whose
 * state does not fit is refused at run time with the sizes named. */
#include <stdint.h>

#include "pf_board.h"

/* ---- 1. clock ------------------------------------------------------------------------ */
static volatile uint32_t ticks_ms;

void board_systick_isr(void); /* TODO: put this in the vector table's SysTick slot */
void board_systick_isr(void)
{
    ticks_ms++;
}

static uint32_t clock_now(void *ctx)
{
    (void)ctx;
    return ticks_ms;
}

static void clock_delay(void *ctx, uint32_t ms)
{
    uint32_t t0 = clock_now(ctx);
    while (clock_now(ctx) - t0 < ms) {
        /* TODO: __WFI() to sleep until the next tick */
    }
}

/* ---- 2. link --------------------------------------------------------------------------- */
#define RING 1024u
static volatile uint8_t ring[RING];
static volatile uint32_t ring_head, ring_tail;

void board_uart_rx_isr(void); /* TODO: the target UART's RX interrupt vector */
void board_uart_rx_isr(void)
{
    /* TODO: while the UART has a byte: b = UART->DATA; clear the interrupt. */
    /* if (ring_head - ring_tail < RING) ring[ring_head++ % RING] = b; else count an overrun */
}

static int link_read(void *ctx, uint8_t *buf, size_t n, uint32_t timeout_ms)
{
    uint32_t t0 = clock_now(ctx);
    size_t got = 0;
    while (got < n) {
        if (ring_head != ring_tail) {
            buf[got++] = ring[ring_tail % RING];
            ring_tail++;
        } else if (got || clock_now(ctx) - t0 >= timeout_ms) {
            break;
        }
        /* TODO: sleep until an interrupt (WFI with interrupts masked around the check) */
    }
    return (int)got;
}

static int link_write(void *ctx, const uint8_t *buf, size_t n)
{
    (void)ctx;
    (void)buf;
    /* TODO: for each byte: wait for TX space, write the data register */
    return (int)n;
}

static int link_drain(void *ctx)
{
    (void)ctx;
    /* TODO: wait for "transmission complete" */
    return PF_OK;
}

static int link_flush_input(void *ctx)
{
    (void)ctx;
    ring_tail = ring_head;
    return PF_OK;
}

static int link_set_line(void *ctx, uint32_t baud, pf_frame frame)
{
    (void)ctx;
    (void)baud;
    (void)frame;
    /* TODO: divider = peripheral clock / baud (check the error is < 2 %); parity for 8E1 */
    return PF_ERR_UNSUPPORTED;
}

static int link_set_lines(void *ctx, int dtr, int rts)
{
    (void)ctx;
    (void)dtr;
    (void)rts;
    /* TODO: drive the RESET / BOOT GPIOs if wired (PF_LINE_KEEP leaves a line alone) */
    return PF_ERR_UNSUPPORTED;
}

static void link_log(void *ctx, int level, const char *msg)
{
    (void)ctx;
    (void)level;
    (void)msg;
    /* TODO: the console, or nothing */
}

static const pf_port board_link = {
    NULL, link_read, link_write, link_drain, link_flush_input, link_set_line, link_set_lines,
    clock_now, clock_delay, link_log,
};

/* ---- 3. storage ------------------------------------------------------------------------ */
static int st_open(void *ctx, const char *path, pf_diag *diag)
{
    (void)ctx;
    /* TODO: FatFs: FRESULT fr = f_open(&fil, path, FA_READ); */
    return pf_diag_set(diag, PF_ERR_IO, "%s: no storage in this template", path);
}

static int st_read(void *ctx, uint8_t *buf, size_t n)
{
    (void)ctx;
    (void)buf;
    (void)n;
    /* TODO: FatFs: UINT br; f_read(&fil, buf, n, &br) == FR_OK ? (int)br : PF_ERR_IO */
    return PF_ERR_IO;
}

static long st_size(void *ctx)
{
    (void)ctx;
    /* TODO: FatFs: (long)f_size(&fil) */
    return PF_ERR_IO;
}

static void st_close(void *ctx)
{
    (void)ctx;
    /* TODO: FatFs: f_close(&fil) */
}

static const pf_storage board_storage = { NULL, st_open, st_read, st_size, st_close };

/* ---- 4. console, 5. job ---------------------------------------------------------------- */
static void console(const char *line)
{
    (void)line;
    /* TODO: print line + newline on a debug UART or RTT */
}

static int job(char *buf, size_t size)
{
    /* TODO: read job.txt from the card, or build the words from a button */
    static const char fixed[] = "flash --target avr --image /app.hex";
    if (size < sizeof fixed)
        return PF_ERR_NOMEM;
    for (size_t i = 0; i < sizeof fixed; i++)
        buf[i] = fixed[i];
    return (int)sizeof fixed - 1;
}

int pf_board_init(pf_board *b)
{
    /* TODO: clocks, SysTick at 1 kHz, UART pins and RX interrupt, SD card + f_mount */
    b->name = "template";
    b->link = &board_link;
    b->storage = &board_storage;
    b->console = console;
    b->job = job;
    b->reference_ms = NULL; /* optional: an independent clock (RTC) for the link self-test */
    return PF_OK;
}

void pf_board_exit(int status)
{
    (void)status;
    /* TODO: show the status (LED), then reset the board or sleep */
    for (;;) {
    }
}

int main(void)
{
    pf_board b;
    int r = pf_board_init(&b);
    pf_board_exit(r < 0 ? 1 : pf_updater_run(&b));
}
