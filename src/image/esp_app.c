/* ESP app image reader/validator (see pf_esp_image.h). */
#include <string.h>

#include "peerflash/pf_bytes.h"
#include "peerflash/pf_digest.h"
#include "peerflash/pf_esp_image.h"

#define HDR 8
#define EXT 16

/* Parses with or without the extended header; `strict_ext` refuses an
 * extended header whose chip id is unknown (used when guessing). */
static int parse(const uint8_t *f, size_t size, int ext, int strict_ext, pf_esp_image_info *info, pf_diag *diag)
{
    memset(info, 0, sizeof *info);
    if (size < HDR + (ext ? EXT : 0) + 1)
        return pf_diag_set(diag, PF_ERR_FORMAT, "ESP image of %zu bytes is too short for its header", size);
    if (f[0] != PF_ESP_IMAGE_MAGIC)
        return pf_diag_set(diag, PF_ERR_FORMAT, "offset 0x0: magic 0x%02x, an ESP app image starts with 0xE9", f[0]);
    info->segments = f[1];
    info->flash_mode = f[2];
    info->flash_size = f[3] >> 4;
    info->flash_freq = f[3] & 0x0F;
    info->entry = pf_get_le32(f + 4);
    if (info->segments == 0 || info->segments > PF_ESP_IMAGE_MAX_SEGMENTS)
        return pf_diag_set(diag, PF_ERR_FORMAT, "offset 0x1: %u segments (1..%u allowed)", info->segments,
                           PF_ESP_IMAGE_MAX_SEGMENTS);
    if (info->flash_mode > 5)
        return pf_diag_set(diag, PF_ERR_FORMAT, "offset 0x2: flash mode %u is not one of QIO/QOUT/DIO/DOUT",
                           info->flash_mode);
    size_t at = HDR;
    info->chip_id = 0xFFFF;
    if (ext) {
        const uint8_t *e = f + HDR;
        info->extended = 1;
        info->chip_id = pf_get_le16(e + 4);
        info->min_rev = e[6];
        info->min_rev_full = pf_get_le16(e + 7);
        info->max_rev_full = pf_get_le16(e + 9);
        if (e[15] > 1)
            return pf_diag_set(diag, PF_ERR_FORMAT, "offset 0x17: hash_appended is %u, not 0 or 1", e[15]);
        info->hash_appended = e[15];
        if (strict_ext && (!pf_esp_chip_by_image_id(info->chip_id) || e[11] || e[12] || e[13] || e[14]))
            return pf_diag_set(diag, PF_ERR_FORMAT, "offset 0xc: unknown chip id %u in the extended header",
                               info->chip_id);
        at += EXT;
    }
    uint8_t sum = 0xEF;
    for (unsigned i = 0; i < info->segments; i++) {
        if (size - at < 8)
            return pf_diag_set(diag, PF_ERR_FORMAT, "offset 0x%zx: segment %u header is cut off (file ends at 0x%zx)",
                               at, i, size);
        uint32_t addr = pf_get_le32(f + at), len = pf_get_le32(f + at + 4);
        at += 8;
        if (len > size - at)
            return pf_diag_set(diag, PF_ERR_FORMAT,
                               "offset 0x%zx: segment %u (load 0x%08lx) claims %lu bytes, only %zu left in the file",
                               at - 4, i, (unsigned long)addr, (unsigned long)len, size - at);
        info->seg_addr[i] = addr;
        info->seg_len[i] = len;
        info->seg_offset[i] = (uint32_t)at;
        for (uint32_t k = 0; k < len; k++)
            sum ^= f[at + k];
        at += len;
    }
    /* the checksum is the last byte of a 16-byte block */
    size_t ck = (at + 16) / 16 * 16 - 1;
    if (ck >= size)
        return pf_diag_set(diag, PF_ERR_FORMAT, "offset 0x%zx: the file ends before the checksum byte", ck);
    for (size_t k = at; k < ck; k++)
        if (f[k] != 0)
            return pf_diag_set(diag, PF_ERR_FORMAT, "offset 0x%zx: padding byte 0x%02x before the checksum is not 0",
                               k, f[k]);
    info->checksum = f[ck];
    if (f[ck] != sum)
        return pf_diag_set(diag, PF_ERR_FORMAT, "offset 0x%zx: checksum 0x%02x, the segments give 0x%02x", ck, f[ck],
                           sum);
    at = ck + 1;
    if (info->hash_appended) {
        if (size - at < 32)
            return pf_diag_set(diag, PF_ERR_FORMAT, "offset 0x%zx: the appended SHA-256 is cut off", at);
        pf_digest d;
        uint8_t h[32];
        if (pf_digest_begin(&d, PF_DIGEST_SHA256) < 0)
            return pf_diag_set(diag, PF_ERR_UNSUPPORTED, "no SHA-256 backend to check the image hash");
        pf_digest_update(&d, f, at);
        pf_digest_finish(&d, h);
        if (memcmp(h, f + at, 32) != 0)
            return pf_diag_set(diag, PF_ERR_AUTH,
                               "offset 0x%zx: the appended SHA-256 does not match the image (damaged file)", at);
        at += 32;
    }
    info->length = (uint32_t)at;
    return PF_OK;
}

int pf_esp_image_parse(const uint8_t *file, size_t size, const pf_esp_chip *chip, pf_esp_image_info *info,
                       pf_diag *diag)
{
    if (!file || !info)
        return PF_ERR_ARG;
    if (chip)
        return parse(file, size, chip->image_chip_id != 0xFFFF, 0, info, diag);
    /* Guess: the ESP32 family layout if its extended header is plausible
     * and the whole image checks out that way, else the ESP8266 layout. */
    int r = parse(file, size, 1, 1, info, diag);
    if (r == PF_OK || r == PF_ERR_AUTH)
        return r;
    pf_diag d8 = {0};
    pf_esp_image_info i8;
    if (parse(file, size, 0, 0, &i8, &d8) == PF_OK) {
        *info = i8;
        return PF_OK;
    }
    return r; /* report what was wrong in the ESP32 layout */
}

int pf_esp_image_check_chip(const pf_esp_image_info *info, const pf_esp_chip *chip, pf_diag *diag)
{
    if (!info || !chip)
        return PF_ERR_ARG;
    if (info->chip_id == chip->image_chip_id)
        return PF_OK;
    const pf_esp_chip *built = pf_esp_chip_by_image_id(info->chip_id);
    if (built)
        return pf_diag_set(diag, PF_ERR_CHIP, "the image is built for %s, but the target is an %s", built->name,
                           chip->name);
    return pf_diag_set(diag, PF_ERR_CHIP, "the image is built for chip id %u, but the target is an %s (chip id %u)",
                       info->chip_id, chip->name, chip->image_chip_id);
}
