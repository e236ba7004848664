/* libFuzzer target: what the loader does with an unknown file, in memory.
 * The first input byte picks a file name (none, .bin, .hex, .elf) and a
 * load address; the rest is the file. Detect the format, run its reader in
 * random slices into a small pf_memmap, finish the map. Invariants: the
 * format is a known one, errors come with a message, a finished map is
 * sorted, non-overlapping, inside the 32-bit space, and its byte count is
 * the sum of its segments. */
#include "fuzz_common.h"

static const char *names[4] = {NULL, "fw.bin", "fw.hex", "fw.elf"};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    uint8_t sel = data[0];
    data++;
    size--;
    static const uint32_t bases[4] = {0, 0x08000000, 0xFFFFFF00u, 0x10000};
    uint32_t base = bases[(sel >> 2) & 3];
    pf_image_format f = pf_image_detect(data, size, names[sel & 3]);
    FUZZ_ASSERT(f >= PF_IMAGE_UNKNOWN && f <= PF_IMAGE_MCUBOOT);
    FUZZ_ASSERT(strcmp(pf_image_format_name(f), "unknown") != 0 || f == PF_IMAGE_UNKNOWN);
    if (f == PF_IMAGE_UNKNOWN) {
        FUZZ_ASSERT(size == 0);
        return 0;
    }
    static pf_segment segs[16];
    static uint8_t arena[1 << 14];
    pf_memmap map;
    pf_memmap_init(&map, segs, 16, arena, sizeof arena);
    pf_diag diag = {0};
    pf_memmap_dest dest = {&map, &diag};
    uint32_t rng = fz_seed(data, size);
    int rc = 0;
    size_t pos = 0;
    if (f == PF_IMAGE_ELF) {
        rc = pf_elf_parse(data, size, pf_memmap_dest_sink, &dest, &diag);
    } else if (f == PF_IMAGE_IHEX || f == PF_IMAGE_SREC) {
        pf_ihex ih;
        pf_srec sr;
        pf_ihex_init(&ih, pf_memmap_dest_sink, &dest, &diag);
        pf_srec_init(&sr, pf_memmap_dest_sink, &dest, &diag);
        while (pos < size && rc == 0) {
            size_t k = fz_next(&rng, size - pos);
            rc = f == PF_IMAGE_IHEX ? pf_ihex_feed(&ih, data + pos, k) : pf_srec_feed(&sr, data + pos, k);
            pos += k;
        }
        if (rc == 0)
            rc = f == PF_IMAGE_IHEX ? pf_ihex_finish(&ih) : pf_srec_finish(&sr);
    } else {
        pf_bin bn;
        pf_bin_init(&bn, base, pf_memmap_dest_sink, &dest, &diag);
        while (pos < size && rc == 0) {
            size_t k = fz_next(&rng, size - pos);
            rc = pf_bin_feed(&bn, data + pos, k);
            pos += k;
        }
        if (rc == 0)
            rc = pf_bin_finish(&bn);
    }
    if (rc == 0)
        rc = pf_memmap_finish(&map, &diag);
    FUZZ_ASSERT(rc == 0 || rc == PF_ERR_FORMAT || rc == PF_ERR_NOMEM || rc == PF_ERR_OVERLAP);
    if (rc) {
        FUZZ_ASSERT(diag.text[0] != '\0');
        return 0;
    }
    uint64_t total = 0;
    for (size_t i = 0; i < map.count; i++) {
        FUZZ_ASSERT(map.segs[i].len > 0);
        FUZZ_ASSERT((uint64_t)map.segs[i].addr + map.segs[i].len <= 0x100000000ull);
        if (i)
            FUZZ_ASSERT((uint64_t)map.segs[i - 1].addr + map.segs[i - 1].len <= map.segs[i].addr);
        total += map.segs[i].len;
    }
    FUZZ_ASSERT(total == pf_memmap_bytes(&map));
    return 0;
}
