/* The ESP chips the ROM loader driver knows: how each identifies itself
 * (GET_SECURITY_INFO chip id, or the magic word at 0x40001000 on the chips
 * whose ROM lacks that command) and what its ROM expects. Facts from
 * esptool's serial-protocol documentation and chip definitions. */
#include <stddef.h>

#include "peerflash/pf_esp.h"

#define SPI_ESP32 0x3FF42000u, 0x1C, 0x20, 0x24, 0x80, 0x28, 0x2C
#define SPI_NEW(base) base, 0x18, 0x1C, 0x20, 0x58, 0x24, 0x28

/* The ROM's data path, per chip:
 *  - block: the FLASH_DATA / FLASH_DEFL_DATA block size. 0x400 for every ROM:
 *    esptool's ROM loader classes (FLASH_WRITE_SIZE = 0x400; only its stub
 *    takes 0x4000) and esptool-js's ROM targets (FLASH_WRITE_SIZE = 0x400)
 *    never send more to a ROM, and no larger size was tried on the real ROM
 *    here, so none is assumed.
 *  - fifo: the UART RX FIFO the ROM loader polls (it reads nothing while a
 *    command runs; esptool's flasher stub exists partly to receive by
 *    interrupt instead). 128 bytes: ESP-IDF soc_caps.h SOC_UART_FIFO_LEN for
 *    the ESP32, S2, S3, C3, C2, C6 and H2 (the TRMs' UART chapters: 128 bytes
 *    of RX FIFO per UART by default); ESP8266: its Technical Reference, UART
 *    chapter (128-byte RX and TX FIFOs per UART). Over a chip's USB-Serial-JTAG
 *    port USB flow control loses nothing; the UART figure is the safe one. */
#define ROM_DATA(block, fifo) block, fifo

const pf_esp_chip pf_esp_chips[] = {
    /* name, key, image id, security id, sec len, magic, status, defl, enc word, attach, boot */
    {"ESP8266", "esp8266", 0xFFFF, 0, 0, {0xFFF0C101u, 0, 0, 0}, 2, 0, 0, 0, 0x0000,
     0x60000200u, 0x1C, 0x20, 0x24, 0x40, 0, 0, ROM_DATA(0x400, 128)},
    {"ESP32", "esp32", 0, 0, 0, {0x00F01D83u, 0, 0, 0}, 4, 1, 0, 1, 0x1000, SPI_ESP32, ROM_DATA(0x400, 128)},
    {"ESP32-S2", "esp32s2", 2, 0, 12, {0x000007C6u, 0, 0, 0}, 4, 1, 1, 1, 0x1000, SPI_NEW(0x3F402000u), ROM_DATA(0x400, 128)},
    {"ESP32-S3", "esp32s3", 9, 9, 20, {0x00000009u, 0, 0, 0}, 4, 1, 1, 1, 0x0000, SPI_NEW(0x60002000u), ROM_DATA(0x400, 128)},
    {"ESP32-C3", "esp32c3", 5, 5, 20, {0x6921506Fu, 0x1B31506Fu, 0x4881606Fu, 0x4361606Fu}, 4, 1, 1, 1, 0x0000,
     SPI_NEW(0x60002000u), ROM_DATA(0x400, 128)},
    {"ESP32-C2", "esp32c2", 12, 12, 20, {0x6F51306Fu, 0x7C41A06Fu, 0, 0}, 4, 1, 1, 1, 0x0000, SPI_NEW(0x60002000u), ROM_DATA(0x400, 128)},
    {"ESP32-C6", "esp32c6", 13, 13, 20, {0x2CE0806Fu, 0, 0, 0}, 4, 1, 1, 1, 0x0000, SPI_NEW(0x60003000u), ROM_DATA(0x400, 128)},
    {"ESP32-H2", "esp32h2", 16, 16, 20, {0xD7B73E80u, 0, 0, 0}, 4, 1, 1, 1, 0x0000, SPI_NEW(0x60003000u), ROM_DATA(0x400, 128)},
    {NULL, NULL, 0, 0, 0, {0, 0, 0, 0}, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0},
};

static int lower(int c)
{
    return (c >= 'A' && c <= 'Z') ? c - 'A' + 'a' : c;
}

/* Compares ignoring case, '-' and '_'. */
static int same_name(const char *a, const char *b)
{
    for (;;) {
        while (*a == '-' || *a == '_')
            a++;
        while (*b == '-' || *b == '_')
            b++;
        if (lower((unsigned char)*a) != lower((unsigned char)*b))
            return 0;
        if (!*a)
            return 1;
        a++;
        b++;
    }
}

const pf_esp_chip *pf_esp_chip_by_name(const char *name)
{
    if (!name)
        return NULL;
    for (const pf_esp_chip *c = pf_esp_chips; c->name; c++)
        if (same_name(name, c->name) || same_name(name, c->key))
            return c;
    return NULL;
}

const pf_esp_chip *pf_esp_chip_by_security_id(uint32_t chip_id)
{
    for (const pf_esp_chip *c = pf_esp_chips; c->name; c++)
        if (c->security_chip_id && c->security_chip_id == chip_id)
            return c;
    return NULL;
}

const pf_esp_chip *pf_esp_chip_by_magic(uint32_t magic)
{
    for (const pf_esp_chip *c = pf_esp_chips; c->name; c++)
        for (int i = 0; i < 4 && c->magic[i]; i++)
            if (c->magic[i] == magic)
                return c;
    return NULL;
}

const pf_esp_chip *pf_esp_chip_by_image_id(uint16_t image_chip_id)
{
    for (const pf_esp_chip *c = pf_esp_chips; c->name; c++)
        if (c->image_chip_id == image_chip_id)
            return c;
    return NULL;
}
