/* ESP app images in an image set, checked against the connected chip. */
#include <stdlib.h>
#include <string.h>

#include "peerflash/pf_esp_image.h"
#include "peerflash/pf_image_file.h"

int pf_esp_check_image_set(const pf_image_set *set, const pf_esp_chip *chip, pf_diag *diag)
{
    if (!set || !chip)
        return PF_ERR_ARG;
    for (size_t i = 0; i < set->count; i++) {
        const pf_image_file *f = &set->files[i];
        if (f->format != PF_IMAGE_ESP)
            continue;
        /* the file was loaded as raw bytes at its address: one segment */
        uint32_t lo = f->lo;
        size_t n = (size_t)f->last - lo + 1;
        uint8_t *buf = malloc(n);
        if (!buf)
            return pf_diag_set(diag, PF_ERR_NOMEM, "out of memory checking %s", f->path);
        pf_memmap_read(&f->map, lo, buf, n, 0xFF);
        pf_esp_image_info info;
        int r = pf_esp_image_parse(buf, n, chip, &info, diag);
        free(buf);
        if (r == PF_OK)
            r = pf_esp_image_check_chip(&info, chip, diag);
        if (r < 0) {
            pf_diag_prefix(diag, f->path);
            return r;
        }
    }
    return PF_OK;
}
