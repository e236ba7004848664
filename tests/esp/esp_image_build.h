/* Builds ESP app images for tests (our own writer, independent of the
 * reader under test: it follows the layout in the header comment of
 * pf_esp_image.h byte by byte). */
#ifndef PEERFLASH_TEST_ESP_IMAGE_BUILD_H
#define PEERFLASH_TEST_ESP_IMAGE_BUILD_H

#include <stdint.h>
#include <string.h>

#include "peerflash/pf_digest.h"

typedef struct esp_test_seg {
    uint32_t addr;
    const uint8_t *data;
    uint32_t len;
} esp_test_seg;

/* chip_id 0xFFFF = ESP8266 layout (no extended header). Returns the size. */
static size_t esp_image_build(uint8_t *out, size_t cap, uint16_t chip_id, int hash, const esp_test_seg *segs,
                              unsigned n, uint32_t entry)
{
    size_t at = 0;
    if (cap < 64)
        return 0;
    out[0] = 0xE9;
    out[1] = (uint8_t)n;
    out[2] = 2;    /* DIO */
    out[3] = 0x20; /* 4MB, 40 MHz */
    out[4] = (uint8_t)entry;
    out[5] = (uint8_t)(entry >> 8);
    out[6] = (uint8_t)(entry >> 16);
    out[7] = (uint8_t)(entry >> 24);
    at = 8;
    if (chip_id != 0xFFFF) {
        memset(out + at, 0, 16);
        out[at] = 0xEE; /* wp pin: disabled */
        out[at + 4] = (uint8_t)chip_id;
        out[at + 5] = (uint8_t)(chip_id >> 8);
        out[at + 15] = (uint8_t)(hash ? 1 : 0);
        at += 16;
    }
    uint8_t sum = 0xEF;
    for (unsigned i = 0; i < n; i++) {
        if (at + 8 + segs[i].len > cap)
            return 0;
        for (int b = 0; b < 4; b++) {
            out[at + b] = (uint8_t)(segs[i].addr >> (8 * b));
            out[at + 4 + b] = (uint8_t)(segs[i].len >> (8 * b));
        }
        at += 8;
        memcpy(out + at, segs[i].data, segs[i].len);
        for (uint32_t k = 0; k < segs[i].len; k++)
            sum ^= segs[i].data[k];
        at += segs[i].len;
    }
    while (at % 16 != 15)
        out[at++] = 0;
    out[at++] = sum;
    if (hash && chip_id != 0xFFFF) {
        pf_digest d;
        pf_digest_begin(&d, PF_DIGEST_SHA256);
        pf_digest_update(&d, out, at);
        pf_digest_finish(&d, out + at);
        at += 32;
    }
    return at;
}

#endif
