/* libFuzzer target: the ESP app image reader. Invariants: it never reads
 * outside the input, an accepted image lies within the input, its segments
 * lie inside the image in order, and a chip check never crashes. The reader
 * form (pf_esp_image_parse_read, how an MCU checks a file on its card)
 * gives the same result and info, and asks only for bytes inside the input,
 * at most 64 at a time. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "peerflash/pf_esp_image.h"

typedef struct src {
    const uint8_t *buf;
    size_t size;
} src;

static int read_src(void *ctx, uint32_t off, uint8_t *dst, uint32_t n)
{
    const src *s = ctx;
    if (n > 64 || off > s->size || n > s->size - off)
        abort();
    memcpy(dst, s->buf + off, n);
    return PF_OK;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    /* a copy of exactly `size` bytes so ASan sees any read past the end */
    uint8_t *buf = malloc(size ? size : 1);
    if (!buf)
        return 0;
    for (size_t i = 0; i < size; i++)
        buf[i] = data[i];
    pf_diag d;
    pf_esp_image_info info;
    const pf_esp_chip *chips[3] = {NULL, pf_esp_chip_by_name("esp32"), pf_esp_chip_by_name("esp8266")};
    for (int c = 0; c < 3; c++) {
        int r = pf_esp_image_parse(buf, size, chips[c], &info, &d);
        pf_diag d2;
        pf_esp_image_info info2;
        src s = {buf, size};
        if (pf_esp_image_parse_read(read_src, &s, size, chips[c], &info2, &d2) != r ||
            (r == PF_OK && memcmp(&info, &info2, sizeof info) != 0))
            abort();
        if (r == PF_OK) {
            if (info.length > size || info.segments == 0 || info.segments > PF_ESP_IMAGE_MAX_SEGMENTS)
                abort();
            uint64_t prev_end = 0;
            for (unsigned i = 0; i < info.segments; i++) {
                uint64_t end = (uint64_t)info.seg_offset[i] + info.seg_len[i];
                if (info.seg_offset[i] < prev_end || end > info.length)
                    abort();
                prev_end = end;
            }
            pf_esp_image_check_chip(&info, pf_esp_chip_by_name("esp32s3"), &d);
        }
    }
    free(buf);
    return 0;
}
