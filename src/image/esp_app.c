/* ESP app image reader/validator (see pf_esp_image.h). */
#include <string.h>

#include "peerflash/pf_bytes.h"
#include "peerflash/pf_digest.h"
#include "peerflash/pf_esp_image.h"

#define HDR 8
#define EXT 16

/* The image's bytes: in memory, or through the caller's reader (a file on
 * an MCU's SD card, read again). view() gives n bytes at off, pointing into
 * the memory or into buf after a read; NULL when the reader failed. */
typedef struct src {
    const uint8_t *mem;
    pf_esp_image_read_fn read;
    void *ctx;
    int err;
} src;

static const uint8_t *view(src *in, size_t off, uint8_t *buf, size_t n)
{
    if (in->mem)
        return in->mem + off;
    int r = in->read(in->ctx, (uint32_t)off, buf, (uint32_t)n);
    if (r < 0) {
        in->err = r;
        return NULL;
    }
    return buf;
}

#define CHUNK 64u /* bytes per read through a reader */

/* Parses with or without the extended header; `strict_ext` refuses an
 * extended header whose chip id is unknown (used when guessing). */
static int parse(src *in, size_t size, int ext, int strict_ext, pf_esp_image_info *info, pf_diag *diag)
{
    uint8_t buf[CHUNK];
    memset(info, 0, sizeof *info);
    if (size < HDR + (ext ? EXT : 0) + 1)
        return pf_diag_set(diag, PF_ERR_FORMAT, "ESP image of %zu bytes is too short for its header", size);
    const uint8_t *f = view(in, 0, buf, HDR + (ext ? EXT : 0));
    if (!f)
        return in->err;
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
        const uint8_t *sh = view(in, at, buf, 8);
        if (!sh)
            return in->err;
        uint32_t addr = pf_get_le32(sh), len = pf_get_le32(sh + 4);
        at += 8;
        if (len > size - at)
            return pf_diag_set(diag, PF_ERR_FORMAT,
                               "offset 0x%zx: segment %u (load 0x%08lx) claims %lu bytes, only %zu left in the file",
                               at - 4, i, (unsigned long)addr, (unsigned long)len, size - at);
        info->seg_addr[i] = addr;
        info->seg_offset[i] = (uint32_t)at;
        info->seg_len[i] = len;
        for (uint32_t k = 0; k < len;) {
            uint32_t n = in->mem || len - k < CHUNK ? len - k : CHUNK;
            const uint8_t *d = view(in, at + k, buf, n);
            if (!d)
                return in->err;
            for (uint32_t j = 0; j < n; j++)
                sum ^= d[j];
            k += n;
        }
        at += len;
    }
    /* the checksum is the last byte of a 16-byte block */
    size_t ck = (at + 16) / 16 * 16 - 1;
    if (ck >= size)
        return pf_diag_set(diag, PF_ERR_FORMAT, "offset 0x%zx: the file ends before the checksum byte", ck);
    const uint8_t *pad = view(in, at, buf, ck + 1 - at); /* at most 16 bytes */
    if (!pad)
        return in->err;
    for (size_t k = at; k < ck; k++)
        if (pad[k - at] != 0)
            return pf_diag_set(diag, PF_ERR_FORMAT, "offset 0x%zx: padding byte 0x%02x before the checksum is not 0",
                               k, pad[k - at]);
    info->checksum = pad[ck - at];
    if (info->checksum != sum)
        return pf_diag_set(diag, PF_ERR_FORMAT, "offset 0x%zx: checksum 0x%02x, the segments give 0x%02x", ck,
                           info->checksum, sum);
    at = ck + 1;
    if (info->hash_appended) {
        if (size - at < 32)
            return pf_diag_set(diag, PF_ERR_FORMAT, "offset 0x%zx: the appended SHA-256 is cut off", at);
        pf_digest d;
        uint8_t h[32];
        if (pf_digest_begin(&d, PF_DIGEST_SHA256) < 0)
            return pf_diag_set(diag, PF_ERR_UNSUPPORTED, "no SHA-256 backend to check the image hash");
        for (size_t k = 0; k < at;) {
            size_t n = in->mem || at - k < CHUNK ? at - k : CHUNK;
            const uint8_t *p = view(in, k, buf, n);
            if (!p)
                return in->err;
            pf_digest_update(&d, p, n);
            k += n;
        }
        pf_digest_finish(&d, h);
        const uint8_t *want = view(in, at, buf, 32);
        if (!want)
            return in->err;
        if (memcmp(h, want, 32) != 0)
            return pf_diag_set(diag, PF_ERR_AUTH,
                               "offset 0x%zx: the appended SHA-256 does not match the image (damaged file)", at);
        at += 32;
    }
    info->length = (uint32_t)at;
    return PF_OK;
}

static int parse_guess(src *in, size_t size, const pf_esp_chip *chip, pf_esp_image_info *info, pf_diag *diag)
{
    if (chip)
        return parse(in, size, chip->image_chip_id != 0xFFFF, 0, info, diag);
    /* Guess: the ESP32 family layout if its extended header is plausible
     * and the whole image checks out that way, else the ESP8266 layout. */
    int r = parse(in, size, 1, 1, info, diag);
    if (r == PF_OK || r == PF_ERR_AUTH || (in->err && r == in->err))
        return r;
    pf_diag d8 = {0};
    pf_esp_image_info i8;
    if (parse(in, size, 0, 0, &i8, &d8) == PF_OK) {
        *info = i8;
        return PF_OK;
    }
    return r; /* report what was wrong in the ESP32 layout */
}

int pf_esp_image_parse_read(pf_esp_image_read_fn read, void *ctx, size_t size, const pf_esp_chip *chip,
                            pf_esp_image_info *info, pf_diag *diag)
{
    if (!read || !info)
        return PF_ERR_ARG;
    src in = {NULL, read, ctx, 0};
    return parse_guess(&in, size, chip, info, diag);
}

int pf_esp_image_parse(const uint8_t *file, size_t size, const pf_esp_chip *chip, pf_esp_image_info *info,
                       pf_diag *diag)
{
    if (!file || !info)
        return PF_ERR_ARG;
    src in = {file, NULL, NULL, 0};
    return parse_guess(&in, size, chip, info, diag);
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
