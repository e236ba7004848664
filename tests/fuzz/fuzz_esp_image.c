/* libFuzzer target: the ESP app image reader. Invariants: it never reads
 * outside the input, an accepted image lies within the input, its segments
 * lie inside the image in order, and a chip check never crashes. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include "peerflash/pf_esp_image.h"

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
        if (pf_esp_image_parse(buf, size, chips[c], &info, &d) == PF_OK) {
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
