/* The AVR test application (ATmega328P, 16 MHz, 115200 baud on UART0).
 *
 * It proves that the image a driver wrote is the image that runs: at start
 * it computes a CRC-16/CCITT-FALSE over its own flash, from address 0 to the
 * end of the loaded image (__data_load_end: .text plus the .data initialisers,
 * exactly what `avr-objcopy -O binary -j .text -j .data` gives), prints
 *     PFAPP seed=<APP_SEED> len=<bytes> crc=<4 hex digits>
 * and stops (sleep with interrupts off, which simavr reports as done).
 * The host computes the same CRC over the .bin it flashed and compares.
 *
 * APP_PAD_KB adds that many KiB of pseudo-random constant data (derived from
 * APP_SEED) so that the same source gives a ~30 KB image for the write+verify
 * tests and benchmarks, and different seeds give different images. */
#include <avr/interrupt.h>
#include <avr/io.h>
#include <avr/pgmspace.h>
#include <avr/sleep.h>
#include <stdint.h>

#ifndef APP_SEED
#define APP_SEED 1
#endif
#ifndef APP_PAD_KB
#define APP_PAD_KB 0
#endif

extern char __data_load_end[];

/* Constant data: byte n of the pad is a hash of n and the seed. */
#define PV(n) (uint8_t)(((((uint32_t)(n)) + (uint32_t)APP_SEED * 7919u) * 2654435761u) >> 24)
#define P4(n) PV(n), PV((n) + 1), PV((n) + 2), PV((n) + 3)
#define P16(n) P4(n), P4((n) + 4), P4((n) + 8), P4((n) + 12)
#define P64(n) P16(n), P16((n) + 16), P16((n) + 32), P16((n) + 48)
#define P256(n) P64(n), P64((n) + 64), P64((n) + 128), P64((n) + 192)
#define P1K(k) P256((k) * 1024u), P256((k) * 1024u + 256), P256((k) * 1024u + 512), P256((k) * 1024u + 768)

#if APP_PAD_KB > 0
const uint8_t app_pad[APP_PAD_KB * 1024u] PROGMEM __attribute__((used)) = {
#if APP_PAD_KB > 0
    P1K(0),
#endif
#if APP_PAD_KB > 1
    P1K(1),
#endif
#if APP_PAD_KB > 2
    P1K(2),
#endif
#if APP_PAD_KB > 3
    P1K(3),
#endif
#if APP_PAD_KB > 4
    P1K(4),
#endif
#if APP_PAD_KB > 5
    P1K(5),
#endif
#if APP_PAD_KB > 6
    P1K(6),
#endif
#if APP_PAD_KB > 7
    P1K(7),
#endif
#if APP_PAD_KB > 8
    P1K(8),
#endif
#if APP_PAD_KB > 9
    P1K(9),
#endif
#if APP_PAD_KB > 10
    P1K(10),
#endif
#if APP_PAD_KB > 11
    P1K(11),
#endif
#if APP_PAD_KB > 12
    P1K(12),
#endif
#if APP_PAD_KB > 13
    P1K(13),
#endif
#if APP_PAD_KB > 14
    P1K(14),
#endif
#if APP_PAD_KB > 15
    P1K(15),
#endif
#if APP_PAD_KB > 16
    P1K(16),
#endif
#if APP_PAD_KB > 17
    P1K(17),
#endif
#if APP_PAD_KB > 18
    P1K(18),
#endif
#if APP_PAD_KB > 19
    P1K(19),
#endif
#if APP_PAD_KB > 20
    P1K(20),
#endif
#if APP_PAD_KB > 21
    P1K(21),
#endif
#if APP_PAD_KB > 22
    P1K(22),
#endif
#if APP_PAD_KB > 23
    P1K(23),
#endif
#if APP_PAD_KB > 24
    P1K(24),
#endif
#if APP_PAD_KB > 25
    P1K(25),
#endif
#if APP_PAD_KB > 26
    P1K(26),
#endif
#if APP_PAD_KB > 27
    P1K(27),
#endif
#if APP_PAD_KB > 28
    P1K(28),
#endif
#if APP_PAD_KB > 29
    P1K(29),
#endif
#if APP_PAD_KB > 30
#error "APP_PAD_KB: at most 30 (the ATmega328P has 31.5 KiB below Optiboot)"
#endif
};
#endif

static void uart_init(void)
{
    UCSR0A = _BV(U2X0);
    UBRR0H = 0;
    UBRR0L = (uint8_t)((F_CPU + 115200UL * 4) / (115200UL * 8) - 1);
    UCSR0C = _BV(UCSZ01) | _BV(UCSZ00);
    UCSR0B = _BV(TXEN0);
}

static void uart_put(char c)
{
    while (!(UCSR0A & _BV(UDRE0))) {
    }
    UDR0 = (uint8_t)c;
}

static void uart_puts(const char *s)
{
    while (*s)
        uart_put(*s++);
}

static void uart_dec(uint32_t v)
{
    char buf[11];
    uint8_t n = 0;
    do {
        buf[n++] = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    while (n)
        uart_put(buf[--n]);
}

static void uart_hex16(uint16_t v)
{
    for (int8_t s = 12; s >= 0; s -= 4)
        uart_put("0123456789ABCDEF"[(v >> s) & 0xF]);
}

static uint16_t crc16_ccitt(uint16_t crc, uint8_t b)
{
    crc ^= (uint16_t)b << 8;
    for (uint8_t i = 0; i < 8; i++)
        crc = (crc & 0x8000) ? (uint16_t)((crc << 1) ^ 0x1021) : (uint16_t)(crc << 1);
    return crc;
}

int main(void)
{
    uint16_t len = (uint16_t)(uintptr_t)__data_load_end;
    uint16_t crc = 0xFFFF;
    for (uint16_t a = 0; a < len; a++)
        crc = crc16_ccitt(crc, pgm_read_byte(a));
    uart_init();
    uart_puts("PFAPP seed=");
    uart_dec(APP_SEED);
    uart_puts(" len=");
    uart_dec(len);
    uart_puts(" crc=");
    uart_hex16(crc);
    uart_puts("\r\n");
    /* Let the last byte leave the shift register, then stop. */
    UCSR0A |= _BV(TXC0);
    uart_put(' ');
    while (!(UCSR0A & _BV(TXC0))) {
    }
    cli();
    set_sleep_mode(SLEEP_MODE_PWR_DOWN);
    sleep_enable();
    sleep_cpu();
    for (;;) {
    }
}
