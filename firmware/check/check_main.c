/* The link check for the freestanding core (core-check-<cpu>.elf).
 *
 * This program is never run. It calls every entry point an updater uses
 * (image detection and readers, memory map, every built-in driver through
 * the flash job, the digests), so that the linker pulls in everything the
 * core needs from newlib-nano and libgcc; check-freestanding.cmake then fails
 * the build if any of that is heap or stdio code. The port is left NULL:
 * only what is linked matters here. */
#include <stdint.h>

#include "peerflash/pf_digest.h"
#include "peerflash/pf_image.h"
#include "peerflash/pf_job.h"
#include "peerflash/pf_memmap.h"
#include "peerflash/pf_target.h"

extern uint32_t __stack_top;
void pf_check_reset(void);
int main(void);

/* Initial stack pointer and reset vector: all a Cortex-M needs to start. */
__attribute__((section(".vectors"), used)) static const struct {
    const void *sp;
    void (*reset)(void);
} vectors = { &__stack_top, pf_check_reset };

static pf_segment segs[16];
static uint8_t arena[4096];
static uint8_t work[8192];
static uint64_t ctx[1024];
static pf_diag diag;
static pf_memmap map;

static int feed(const uint8_t *img, size_t n)
{
    pf_memmap_init(&map, segs, 16, arena, sizeof arena);
    pf_memmap_dest dest = { &map, &diag };
    int r = PF_ERR_FORMAT;
    switch (pf_image_detect(img, n, "x.hex")) {
    case PF_IMAGE_IHEX: {
        static pf_ihex p;
        pf_ihex_init(&p, pf_memmap_dest_sink, &dest, &diag);
        r = pf_ihex_feed(&p, img, n);
        if (r >= 0)
            r = pf_ihex_finish(&p);
        break;
    }
    case PF_IMAGE_SREC: {
        static pf_srec p;
        pf_srec_init(&p, pf_memmap_dest_sink, &dest, &diag);
        r = pf_srec_feed(&p, img, n);
        if (r >= 0)
            r = pf_srec_finish(&p);
        break;
    }
    default: {
        pf_bin p;
        pf_bin_init(&p, 0, pf_memmap_sink, &map, &diag);
        r = pf_bin_feed(&p, img, n);
        if (r >= 0)
            r = pf_bin_finish(&p);
        break;
    }
    }
    return r < 0 ? r : pf_memmap_finish(&map, &diag);
}

int main(void)
{
    static const uint8_t img[] = ":00000001FF\n";
    int r = feed(img, sizeof img - 1);
    uint8_t out[PF_DIGEST_MAX];
    pf_digest d;
    for (int k = PF_DIGEST_MD5; k <= PF_DIGEST_CRC32; k++) {
        pf_digest_begin(&d, (pf_digest_kind)k);
        pf_digest_update(&d, img, sizeof img);
        r += pf_digest_finish(&d, out);
    }
    for (unsigned i = 0; pf_target_drivers[i]; i++) {
        const pf_target_ops *ops = pf_target_drivers[i];
        pf_target_config cfg = PF_TARGET_CONFIG_DEFAULT();
        cfg.diag = &diag;
        if (ops->ctx_size > sizeof ctx || ops->open(ctx, &cfg) < 0)
            continue;
        pf_target t = { ops, ctx, { { 0 }, { 0 }, 0, 0, PF_DIGEST_NONE, { 0 }, { 0 } } };
        if (ops->connect(ctx, &t.info) == 0) {
            pf_job_config jc = PF_JOB_CONFIG_DEFAULT();
            pf_job_result res;
            jc.buf = work;
            jc.buf_size = sizeof work;
            jc.diag = &diag;
            r += pf_job_flash(&t, &map, &jc, &res);
            r += pf_job_verify(&t, &map, &jc, &res);
        }
        ops->close(ctx);
    }
    return r + (int)pf_strerror(r)[0];
}

void pf_check_reset(void)
{
    (void)main();
    for (;;) {
    }
}
