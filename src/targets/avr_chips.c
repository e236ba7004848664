/* AVR parts the STK500v1 driver knows: signature, flash, page, and the size
 * of the bootloader section that the usual STK500v1 bootloader (Optiboot)
 * is fused for. Sources: the ATmega datasheets (signature, flash, page size,
 * boot section sizes) and the Optiboot build targets (section in use). */
#include <stddef.h>

#include "peerflash/pf_avr.h"

const pf_avr_chip pf_avr_chips[] = {
    /* name          alias     signature           flash    page  boot */
    {"ATmega8", "m8", {0x1E, 0x93, 0x07}, 8192, 64, 512},
    {"ATmega168", "m168", {0x1E, 0x94, 0x06}, 16384, 128, 512},
    {"ATmega168P", "m168p", {0x1E, 0x94, 0x0B}, 16384, 128, 512},
    {"ATmega328P", "m328p", {0x1E, 0x95, 0x0F}, 32768, 128, 512},
    {"ATmega328", "m328", {0x1E, 0x95, 0x14}, 32768, 128, 512},
    {"ATmega328PB", "m328pb", {0x1E, 0x95, 0x16}, 32768, 128, 512},
    /* The 32U4's smallest boot section is 512 bytes, but its boards ship a
     * 4 KiB bootloader (Caterina): protect all of it. */
    {"ATmega32U4", "m32u4", {0x1E, 0x95, 0x87}, 32768, 128, 4096},
    {"ATmega644P", "m644p", {0x1E, 0x96, 0x0A}, 65536, 256, 1024},
    {"ATmega1280", "m1280", {0x1E, 0x97, 0x03}, 131072, 256, 1024},
    {"ATmega1284P", "m1284p", {0x1E, 0x97, 0x05}, 131072, 256, 1024},
    {"ATmega2560", "m2560", {0x1E, 0x98, 0x01}, 262144, 256, 1024},
    {NULL, NULL, {0, 0, 0}, 0, 0, 0},
};

static int lower(int c)
{
    return c >= 'A' && c <= 'Z' ? c + ('a' - 'A') : c;
}

static int same_word(const char *a, const char *b)
{
    while (*a && *b && lower(*a) == lower(*b)) {
        a++;
        b++;
    }
    return *a == '\0' && *b == '\0';
}

const pf_avr_chip *pf_avr_chip_by_sig(const uint8_t sig[3])
{
    for (const pf_avr_chip *c = pf_avr_chips; c->name; c++)
        if (c->sig[0] == sig[0] && c->sig[1] == sig[1] && c->sig[2] == sig[2])
            return c;
    return NULL;
}

const pf_avr_chip *pf_avr_chip_by_name(const char *name)
{
    if (!name)
        return NULL;
    for (const pf_avr_chip *c = pf_avr_chips; c->name; c++)
        if (same_word(name, c->name) || same_word(name, c->alias))
            return c;
    return NULL;
}
