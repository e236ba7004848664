/* STM32 option bytes as the bootloader's Read Memory sees them: where each
 * family keeps them and how readout (RDP) and write protection (WRP) are
 * coded there. Sources: RM0008 (F1) 2.5 "Option byte description"; RM0091
 * (F0) and RM0316 (F3) 4.1 (RDP 0xAA level 0, 0xCC level 2); RM0444 (G0),
 * RM0440 (G4), RM0351 (L4): FLASH_OPTR at 0x1FFF7800, WRP1AR/WRP1BR at
 * +0x18/+0x20 (start and end page; an area with start > end protects
 * nothing). Other families are not decoded. */
#include <string.h>

#include "peerflash/pf_bytes.h"
#include "peerflash/pf_stm32.h"

enum { STYLE_F1 = 1, STYLE_F0F3, STYLE_G0 };

static int style_of(const pf_stm32_chip *chip)
{
    if (!chip)
        return 0;
    const char *f = chip->family;
    if (!strcmp(f, "F1"))
        return STYLE_F1;
    if (!strcmp(f, "F0") || !strcmp(f, "F3"))
        return STYLE_F0F3;
    if (!strcmp(f, "G0") || !strcmp(f, "G4") || !strcmp(f, "L4"))
        return STYLE_G0;
    return 0;
}

int pf_stm32_ob_where(const pf_stm32_chip *chip, uint32_t *addr, uint32_t *len)
{
    switch (style_of(chip)) {
    case STYLE_F1:
    case STYLE_F0F3: *addr = 0x1FFFF800u; *len = 16; return 1;
    case STYLE_G0: *addr = 0x1FFF7800u; *len = 0x28; return 1;
    default: return 0;
    }
}

void pf_stm32_ob_factory(const pf_stm32_chip *chip, int wrp, uint8_t *out)
{
    uint32_t addr, len;
    if (!pf_stm32_ob_where(chip, &addr, &len))
        return;
    memset(out, 0xFF, len);
    switch (style_of(chip)) {
    case STYLE_F1:
    case STYLE_F0F3:
        out[0] = style_of(chip) == STYLE_F1 ? 0xA5 : 0xAA;
        out[1] = (uint8_t)~out[0];
        out[3] = 0x00; /* nUSER */
        out[5] = out[7] = 0x00;
        for (int i = 8; i < 16; i += 2) { /* WRPn: a 0 bit protects its pages */
            out[i] = wrp ? 0x00 : 0xFF;
            out[i + 1] = (uint8_t)~out[i];
        }
        break;
    case STYLE_G0:
        pf_put_le32(out, 0xDFFFE1AAu); /* FLASH_OPTR reset value, RDP level 0 */
        pf_put_le32(out + 0x18, wrp ? 0x007F0000u : 0x000000FFu); /* WRP1AR: pages 0..127, or none */
        pf_put_le32(out + 0x20, 0x000000FFu);                    /* WRP1BR: none */
        break;
    }
}

static const char *level(uint8_t rdp, uint8_t level0)
{
    return rdp == level0 ? "level 0 (not protected)" : rdp == 0xCC ? "level 2 (protected for good)" : "level 1 (read-protected)";
}

void pf_stm32_ob_describe(const pf_stm32_chip *chip, const uint8_t *ob, char *rdp, size_t rn, char *wrp, size_t wn)
{
    switch (style_of(chip)) {
    case STYLE_F1:
    case STYLE_F0F3: {
        pf_format(rdp, rn, "%s, RDP byte 0x%02x", level(ob[0], style_of(chip) == STYLE_F1 ? 0xA5 : 0xAA), ob[0]);
        int any = (ob[8] & ob[10] & ob[12] & ob[14]) != 0xFF;
        pf_format(wrp, wn, "%s (WRP0..3 = 0x%02x 0x%02x 0x%02x 0x%02x; a 0 bit protects its pages)",
                  any ? "some pages write-protected" : "none", ob[8], ob[10], ob[12], ob[14]);
        break;
    }
    case STYLE_G0: {
        uint32_t optr = pf_get_le32(ob);
        pf_format(rdp, rn, "%s, FLASH_OPTR 0x%08lx", level((uint8_t)optr, 0xAA), (unsigned long)optr);
        uint32_t a = pf_get_le32(ob + 0x18), b = pf_get_le32(ob + 0x20);
        unsigned as = a & 0x7F, ae = (a >> 16) & 0x7F, bs = b & 0x7F, be = (b >> 16) & 0x7F;
        if (as > ae && bs > be)
            pf_format(wrp, wn, "none (WRP1AR 0x%08lx, WRP1BR 0x%08lx)", (unsigned long)a, (unsigned long)b);
        else
            pf_format(wrp, wn, "pages %u..%u%s (WRP1AR 0x%08lx, WRP1BR 0x%08lx)", as <= ae ? as : bs,
                      as <= ae ? ae : be, as <= ae && bs <= be ? " and more" : "", (unsigned long)a,
                      (unsigned long)b);
        break;
    }
    default:
        pf_format(rdp, rn, "not decoded for this family");
        pf_format(wrp, wn, "not decoded for this family");
    }
}
