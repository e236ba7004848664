/* libFuzzer: the delta patch readers on arbitrary bytes. Input: u16 base
 * length, u16 new size, u8 resume / 16, the base, then a patch. The rest is
 * read (1) as a patch file
 * (header, CRCs, zlib body; applied to the base when it parses) and (2) as
 * a raw body by the device's streaming applier, fed whole and in two
 * pieces: it must never read outside the base or write past the image,
 * and both feedings must give the same output and verdict; the host's
 * resume seek walks the same body. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "peerflash/pf_bytes.h"
#include "peerflash/pf_delta.h"

#define OUT_MAX 8192u

typedef struct run {
    const uint8_t *base;
    uint32_t base_len;
    uint8_t out[OUT_MAX];
    uint32_t at;
} run;

static int rd(void *ctx, uint32_t off, uint8_t *buf, uint32_t len)
{
    run *r = ctx;
    if ((uint64_t)off + len > r->base_len || len > PF_PATCH_CHUNK)
        abort(); /* the applier checked the record: this must not happen */
    memcpy(buf, r->base + off, len);
    return PF_OK;
}

static int emit(void *ctx, const uint8_t *data, uint32_t len)
{
    run *r = ctx;
    if ((uint64_t)r->at + len > OUT_MAX)
        abort(); /* past new_size */
    memcpy(r->out + r->at, data, len);
    r->at += len;
    return PF_OK;
}

static int apply(run *r, const uint8_t *body, size_t n, size_t split, uint32_t new_size, uint32_t resume)
{
    pf_patch_applier ap;
    r->at = 0;
    pf_patch_apply_init(&ap, r->base_len, new_size, resume, rd, emit, r, NULL);
    int e = pf_patch_apply_feed(&ap, body, (uint32_t)split);
    if (e >= 0)
        e = pf_patch_apply_feed(&ap, body + split, (uint32_t)(n - split));
    if (e >= 0 && pf_patch_apply_done(&ap) && r->at != new_size - (resume < new_size ? resume : new_size))
        abort(); /* done, yet not every byte from resume on came out */
    return e < 0 ? e : pf_patch_apply_done(&ap);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 5)
        return 0;
    uint32_t bl = pf_get_le16(data);
    uint32_t new_size = pf_get_le16(data + 2) % (OUT_MAX + 1);
    uint32_t resume = (uint32_t)data[4] * 16u;
    data += 3;
    size -= 3;
    if (bl > size - 2)
        bl = (uint32_t)(size - 2);
    const uint8_t *rest = data + 2 + bl;
    size_t n = size - 2 - bl;

    /* (1) a patch file */
    pf_delta d;
    if (pf_delta_decode_file(rest, n, &d, NULL) == PF_OK) {
        uint8_t *res = NULL;
        if (d.hdr.new_size <= OUT_MAX && pf_delta_apply(&d, data + 2, bl, &res, NULL) == PF_OK)
            free(res);
        pf_delta_free(&d);
    }

    /* (2) a raw body */
    static run a, b;
    a.base = b.base = data + 2;
    a.base_len = b.base_len = bl;
    int ea = apply(&a, rest, n, n, new_size, resume);
    int eb = apply(&b, rest, n, n / 2, new_size, resume);
    if (ea != eb || a.at != b.at || memcmp(a.out, b.out, a.at))
        abort();
    uint32_t off;
    (void)pf_patch_body_seek(rest, (uint32_t)n, resume, &off, NULL);
    return 0;
}
