/* STM32 device table: product ID (Get ID), flash map and erase geometry,
 * keyed as the bootloader reports them. Sizes are those of the largest part
 * sharing a PID (the ROM cannot tell an F103x8 from an F103xB); page and
 * sector numbers are counted from the flash start across all regions, as the
 * Erase/Extended Erase commands count them.
 *
 * bl_version / erase_op / has_checksum describe what the simulated ROM offers;
 * the driver never trusts them and reads the real command list from Get.
 * Get Checksum (0xA1) is listed only for the newest families here, as an
 * assumption: ST documents it as "not available on all products". */
#include <ctype.h>
#include <string.h>

#include "codec/an3155.h"
#include "peerflash/pf_stm32.h"

#define K 1024u
#define FL 0x08000000u
#define E43 PF_AN3155_ERASE
#define E44 PF_AN3155_EXT_ERASE

/* F2/F4 single bank: 4x16K, 1x64K, then 128K sectors. */
#define F4_SECTORS(n128)                                                                         \
    3, {{FL, 64 * K, 16 * K}, {FL + 64 * K, 64 * K, 64 * K}, {FL + 128 * K, (n128) * 128 * K, 128 * K}}

const pf_stm32_chip pf_stm32_chips[] = {
    /* F0 */
    {"STM32F030x8", "F0", 0x440, FL, 64 * K, 1, {{FL, 64 * K, 1 * K}}, 0x20000000u, 8 * K, 0x31, E44, 0, 0},
    {"STM32F03xx4", "F0", 0x444, FL, 32 * K, 1, {{FL, 32 * K, 1 * K}}, 0x20000000u, 4 * K, 0x10, E44, 0, 0},
    {"STM32F04xx6", "F0", 0x445, FL, 32 * K, 1, {{FL, 32 * K, 1 * K}}, 0x20000000u, 6 * K, 0x31, E44, 0, 0},
    {"STM32F07xxB", "F0", 0x448, FL, 128 * K, 1, {{FL, 128 * K, 2 * K}}, 0x20000000u, 16 * K, 0x31, E44, 0, 0},
    {"STM32F09xxC", "F0", 0x442, FL, 256 * K, 1, {{FL, 256 * K, 2 * K}}, 0x20000000u, 32 * K, 0x31, E44, 0, 0},
    /* F1 */
    {"STM32F103x6", "F1", 0x412, FL, 32 * K, 1, {{FL, 32 * K, 1 * K}}, 0x20000000u, 10 * K, 0x22, E43, 0, 0},
    {"STM32F103xB", "F1", 0x410, FL, 128 * K, 1, {{FL, 128 * K, 1 * K}}, 0x20000000u, 20 * K, 0x22, E43, 0, 0},
    {"STM32F103xE", "F1", 0x414, FL, 512 * K, 1, {{FL, 512 * K, 2 * K}}, 0x20000000u, 64 * K, 0x22, E43, 0, 0},
    {"STM32F103xG", "F1", 0x430, FL, 1024 * K, 1, {{FL, 1024 * K, 2 * K}}, 0x20000000u, 96 * K, 0x21, E44, 0, 0},
    {"STM32F105xC", "F1", 0x418, FL, 256 * K, 1, {{FL, 256 * K, 2 * K}}, 0x20000000u, 64 * K, 0x22, E43, 0, 0},
    {"STM32F100xB", "F1", 0x420, FL, 128 * K, 1, {{FL, 128 * K, 1 * K}}, 0x20000000u, 8 * K, 0x22, E43, 0, 0},
    /* F2 */
    {"STM32F2xxxG", "F2", 0x411, FL, 1024 * K, F4_SECTORS(7), 0x20000000u, 128 * K, 0x31, E44, 0, 0},
    /* F3 */
    {"STM32F303xC", "F3", 0x422, FL, 256 * K, 1, {{FL, 256 * K, 2 * K}}, 0x20000000u, 40 * K, 0x31, E44, 0, 0},
    {"STM32F37xxC", "F3", 0x432, FL, 256 * K, 1, {{FL, 256 * K, 2 * K}}, 0x20000000u, 32 * K, 0x31, E44, 0, 0},
    {"STM32F303x8", "F3", 0x438, FL, 64 * K, 1, {{FL, 64 * K, 2 * K}}, 0x20000000u, 12 * K, 0x31, E44, 0, 0},
    {"STM32F302x8", "F3", 0x439, FL, 64 * K, 1, {{FL, 64 * K, 2 * K}}, 0x20000000u, 16 * K, 0x31, E44, 0, 0},
    {"STM32F303xE", "F3", 0x446, FL, 512 * K, 1, {{FL, 512 * K, 2 * K}}, 0x20000000u, 64 * K, 0x31, E44, 0, 0},
    /* F4 */
    {"STM32F40xxG", "F4", 0x413, FL, 1024 * K, F4_SECTORS(7), 0x20000000u, 128 * K, 0x31, E44, 0, 0},
    /* dual bank: bank 2 repeats the layout at 1 MiB, sectors 12..23 */
    {"STM32F42xxI", "F4", 0x419, FL, 2048 * K, 6,
     {{FL, 64 * K, 16 * K}, {FL + 64 * K, 64 * K, 64 * K}, {FL + 128 * K, 896 * K, 128 * K},
      {FL + 1024 * K, 64 * K, 16 * K}, {FL + 1088 * K, 64 * K, 64 * K}, {FL + 1152 * K, 896 * K, 128 * K}},
     0x20000000u, 192 * K, 0x31, E44, 0, 0},
    {"STM32F401xC", "F4", 0x423, FL, 256 * K, F4_SECTORS(1), 0x20000000u, 64 * K, 0x31, E44, 0, 0},
    {"STM32F401xE", "F4", 0x433, FL, 512 * K, F4_SECTORS(3), 0x20000000u, 96 * K, 0x31, E44, 0, 0},
    {"STM32F411xE", "F4", 0x431, FL, 512 * K, F4_SECTORS(3), 0x20000000u, 128 * K, 0x31, E44, 0, 0},
    {"STM32F446xE", "F4", 0x421, FL, 512 * K, F4_SECTORS(3), 0x20000000u, 128 * K, 0x31, E44, 0, 0},
    /* F7: 4x32K, 1x128K, then 256K sectors */
    {"STM32F74xxG", "F7", 0x449, FL, 1024 * K, 3,
     {{FL, 128 * K, 32 * K}, {FL + 128 * K, 128 * K, 128 * K}, {FL + 256 * K, 768 * K, 256 * K}}, 0x20000000u,
     320 * K, 0x70, E44, 0, 0},
    {"STM32F72xxE", "F7", 0x452, FL, 512 * K, 3,
     {{FL, 64 * K, 16 * K}, {FL + 64 * K, 64 * K, 64 * K}, {FL + 128 * K, 384 * K, 128 * K}}, 0x20000000u,
     256 * K, 0x90, E44, 0, 0},
    /* G0 */
    {"STM32G07xxB", "G0", 0x460, FL, 128 * K, 1, {{FL, 128 * K, 2 * K}}, 0x20000000u, 36 * K, 0xB3, E44, 1, 0},
    {"STM32G03xx8", "G0", 0x466, FL, 64 * K, 1, {{FL, 64 * K, 2 * K}}, 0x20000000u, 8 * K, 0xB1, E44, 1, 0},
    /* G4 */
    {"STM32G43xxB", "G4", 0x468, FL, 128 * K, 1, {{FL, 128 * K, 2 * K}}, 0x20000000u, 32 * K, 0xD4, E44, 1, 0},
    {"STM32G47xxE", "G4", 0x469, FL, 512 * K, 1, {{FL, 512 * K, 4 * K}}, 0x20000000u, 128 * K, 0xD5, E44, 1, 0},
    /* L0: 128-byte pages; the ROM refuses mass erase */
    {"STM32L05xx8", "L0", 0x417, FL, 64 * K, 1, {{FL, 64 * K, 128}}, 0x20000000u, 8 * K, 0xC0, E44, 0, 1},
    {"STM32L07xxZ", "L0", 0x447, FL, 192 * K, 1, {{FL, 192 * K, 128}}, 0x20000000u, 20 * K, 0xC1, E44, 0, 1},
    /* L1: 256-byte pages; the ROM refuses mass erase */
    {"STM32L15xxB", "L1", 0x416, FL, 128 * K, 1, {{FL, 128 * K, 256}}, 0x20000000u, 16 * K, 0x20, E44, 0, 1},
    {"STM32L15xxC", "L1", 0x429, FL, 256 * K, 1, {{FL, 256 * K, 256}}, 0x20000000u, 32 * K, 0x20, E44, 0, 1},
    /* L4 */
    {"STM32L47xxG", "L4", 0x415, FL, 1024 * K, 1, {{FL, 1024 * K, 2 * K}}, 0x20000000u, 96 * K, 0xA3, E44, 0, 0},
    {"STM32L43xxC", "L4", 0x435, FL, 256 * K, 1, {{FL, 256 * K, 2 * K}}, 0x20000000u, 48 * K, 0x91, E44, 0, 0},
    /* H7: 128 KiB sectors, two banks */
    {"STM32H74xxI", "H7", 0x450, FL, 2048 * K, 1, {{FL, 2048 * K, 128 * K}}, 0x24000000u, 512 * K, 0x90, E44, 1, 0},
    {"STM32H72xxG", "H7", 0x483, FL, 1024 * K, 1, {{FL, 1024 * K, 128 * K}}, 0x24000000u, 320 * K, 0x90, E44, 1, 0},
};
const unsigned pf_stm32_n_chips = sizeof pf_stm32_chips / sizeof pf_stm32_chips[0];

const pf_stm32_chip *pf_stm32_chip_by_pid(uint16_t pid)
{
    for (unsigned i = 0; i < pf_stm32_n_chips; i++)
        if (pf_stm32_chips[i].pid == pid)
            return &pf_stm32_chips[i];
    return NULL;
}

static int prefix_ci(const char *s, const char *pre)
{
    for (; *pre; s++, pre++)
        if (tolower((unsigned char)*s) != tolower((unsigned char)*pre))
            return 0;
    return 1;
}

const pf_stm32_chip *pf_stm32_chip_by_name(const char *name)
{
    if (!name || !*name)
        return NULL;
    if (prefix_ci(name, "stm32"))
        name += 5;
    for (unsigned i = 0; i < pf_stm32_n_chips; i++)
        if (prefix_ci(pf_stm32_chips[i].name + 5, name) && strlen(pf_stm32_chips[i].name + 5) == strlen(name))
            return &pf_stm32_chips[i];
    for (unsigned i = 0; i < pf_stm32_n_chips; i++)
        if (prefix_ci(pf_stm32_chips[i].name + 5, name))
            return &pf_stm32_chips[i];
    return NULL;
}

int pf_stm32_unit_index(const pf_stm32_chip *chip, uint32_t addr, uint32_t *start, uint32_t *size)
{
    int index = 0;
    for (unsigned i = 0; i < chip->n_regions; i++) {
        const pf_erase_region *r = &chip->regions[i];
        if (addr >= r->start && (uint64_t)addr < (uint64_t)r->start + r->size) {
            uint32_t k = (addr - r->start) / r->unit;
            if (start)
                *start = r->start + k * r->unit;
            if (size)
                *size = r->unit;
            return index + (int)k;
        }
        index += (int)(r->size / r->unit);
    }
    return -1;
}

unsigned pf_stm32_unit_count(const pf_stm32_chip *chip)
{
    unsigned n = 0;
    for (unsigned i = 0; i < chip->n_regions; i++)
        n += chip->regions[i].size / chip->regions[i].unit;
    return n;
}

/* STM32 parts whose flash size the ROM cannot tell from the table's entry
 * (same product ID): the table keeps the largest, these are the smaller
 * sizes (RM0008 and the datasheets: low/medium/high/XL density F1 lines,
 * F401 xB/xC and xD/xE, F411 xC/xE, G07x/G08x 8/B, G03x/G04x 6/8, L47x E/G). */
static const struct {
    const char *name, *entry;
} smaller_parts[] = {
    {"STM32F103x4", "STM32F103x6"}, {"STM32F103x8", "STM32F103xB"}, {"STM32F103xC", "STM32F103xE"},
    {"STM32F103xD", "STM32F103xE"}, {"STM32F103xF", "STM32F103xG"}, {"STM32F401xB", "STM32F401xC"},
    {"STM32F401xD", "STM32F401xE"}, {"STM32F411xC", "STM32F411xE"}, {"STM32G07xx8", "STM32G07xxB"},
    {"STM32G03xx6", "STM32G03xx8"}, {"STM32L47xxE", "STM32L47xxG"},
};

int pf_stm32_chip_name(unsigned i, pf_target_chip *out)
{
    const pf_stm32_chip *c;
    if (i < pf_stm32_n_chips) {
        c = &pf_stm32_chips[i];
        out->name = c->name;
    } else if (i - pf_stm32_n_chips < sizeof smaller_parts / sizeof smaller_parts[0]) {
        out->name = smaller_parts[i - pf_stm32_n_chips].name;
        c = pf_stm32_chip_by_name(smaller_parts[i - pf_stm32_n_chips].entry);
        if (!c)
            return 0;
    } else {
        return 0;
    }
    out->entry = c->name;
    out->flash_start = c->flash_start;
    out->flash_size = c->flash_size;
    return 1;
}
