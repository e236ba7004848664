/* Memory map: segments in caller storage, joined when records continue each
 * other, sorted and checked for overlap once at the end. */
#include "peerflash/pf_memmap.h"

#include <string.h>

void pf_memmap_init(pf_memmap *map, pf_segment *segs, size_t max_segs, uint8_t *arena, size_t arena_size)
{
    map->segs = segs;
    map->count = 0;
    map->_max = max_segs;
    map->_arena = arena;
    map->_used = 0;
    map->_cap = arena_size;
    map->_sorted = 0;
    map->_src = NULL;
}

void pf_memmap_init_source(pf_memmap *map, pf_segment *segs, size_t max_segs, pf_memmap_source *src)
{
    pf_memmap_init(map, segs, max_segs, NULL, 0);
    map->_src = src;
    if (src)
        src->err = PF_OK;
}

int pf_memmap_error(const pf_memmap *map)
{
    return map && map->_src ? map->_src->err : PF_OK;
}

/* Whether segment b continues segment a in the address space and in the
 * arena (a map with a source keeps no bytes: the addresses decide). */
static int continues(const pf_memmap *map, const pf_segment *a, uint32_t addr, const uint8_t *data)
{
    if ((uint64_t)a->addr + a->len != addr)
        return 0;
    return map->_src ? 1 : a->data + a->len == data;
}

int pf_memmap_add(pf_memmap *map, uint32_t addr, const uint8_t *data, size_t len, pf_diag *diag)
{
    if (!map || (!data && len))
        return PF_ERR_ARG;
    if (len == 0)
        return PF_OK;
    if ((uint64_t)addr + len > 0x100000000ull)
        return pf_diag_set(diag, PF_ERR_RANGE, "%zu bytes at 0x%08lx run past the 4 GiB address space", len,
                           (unsigned long)addr);
    uint8_t *dst = NULL;
    if (!map->_src) {
        if (map->_cap - map->_used < len)
            return pf_diag_set(diag, PF_ERR_NOMEM, "image larger than the %zu-byte buffer", map->_cap);
        dst = map->_arena + map->_used;
        memcpy(dst, data, len);
        map->_used += len;
    }
    map->_sorted = 0;
    if (map->count) {
        pf_segment *last = &map->segs[map->count - 1];
        /* The common case: this record continues the previous one, in the
         * address space and in the arena, so the segment just grows. */
        if (continues(map, last, addr, dst)) {
            last->len += (uint32_t)len;
            return PF_OK;
        }
    }
    if (map->count == map->_max)
        return pf_diag_set(diag, PF_ERR_NOMEM, "image has more than %zu separate segments", map->_max);
    map->segs[map->count].addr = addr;
    map->segs[map->count].len = (uint32_t)len;
    map->segs[map->count].data = dst;
    map->count++;
    return PF_OK;
}

int pf_memmap_finish(pf_memmap *map, pf_diag *diag)
{
    /* Insertion sort: images are nearly always in order already, so this is
     * linear in practice and needs no allocation or libc qsort. */
    for (size_t i = 1; i < map->count; i++) {
        pf_segment s = map->segs[i];
        size_t j = i;
        while (j > 0 && map->segs[j - 1].addr > s.addr) {
            map->segs[j] = map->segs[j - 1];
            j--;
        }
        map->segs[j] = s;
    }
    size_t out = 0;
    for (size_t i = 0; i < map->count; i++) {
        pf_segment *s = &map->segs[i];
        if (out) {
            pf_segment *prev = &map->segs[out - 1];
            uint64_t prev_end = (uint64_t)prev->addr + prev->len;
            if (s->addr < prev_end)
                return pf_diag_set(diag, PF_ERR_OVERLAP,
                                   "data at 0x%08lx-0x%08lx overlaps data at 0x%08lx-0x%08lx",
                                   (unsigned long)s->addr, (unsigned long)(s->addr + s->len - 1),
                                   (unsigned long)prev->addr, (unsigned long)(prev_end - 1));
            if (continues(map, prev, s->addr, s->data)) {
                prev->len += s->len;
                continue;
            }
        }
        map->segs[out++] = *s;
    }
    map->count = out;
    map->_sorted = 1;
    return PF_OK;
}

int pf_memmap_check_range(const pf_memmap *map, uint32_t start, uint32_t size, pf_diag *diag)
{
    uint64_t end = (uint64_t)start + size;
    for (size_t i = 0; i < map->count; i++) {
        const pf_segment *s = &map->segs[i];
        uint64_t s_end = (uint64_t)s->addr + s->len;
        if (s->addr < start || s_end > end)
            return pf_diag_set(diag, PF_ERR_RANGE,
                               "image data at 0x%08lx-0x%08lx lies outside flash 0x%08lx-0x%08lx",
                               (unsigned long)s->addr, (unsigned long)(s_end - 1), (unsigned long)start,
                               (unsigned long)(end - 1));
    }
    return PF_OK;
}

uint32_t pf_memmap_bytes(const pf_memmap *map)
{
    uint32_t total = 0;
    for (size_t i = 0; i < map->count; i++)
        total += map->segs[i].len;
    return total;
}

void pf_memmap_bounds(const pf_memmap *map, uint32_t *lo, uint32_t *hi)
{
    uint32_t l = 0, h = 0;
    for (size_t i = 0; i < map->count; i++) {
        uint32_t a = map->segs[i].addr, e = a + map->segs[i].len;
        if (i == 0 || a < l)
            l = a;
        if (i == 0 || e > h)
            h = e;
    }
    *lo = l;
    *hi = h;
}

size_t pf_memmap_read(const pf_memmap *map, uint32_t addr, uint8_t *out, size_t len, uint8_t fill)
{
    memset(out, fill, len);
    size_t from_image = 0;
    uint64_t end = (uint64_t)addr + len;
    for (size_t i = 0; i < map->count; i++) {
        const pf_segment *s = &map->segs[i];
        uint64_t s_end = (uint64_t)s->addr + s->len;
        if (s_end <= addr || s->addr >= end)
            continue;
        uint32_t lo = s->addr > addr ? s->addr : addr;
        uint64_t hi = s_end < end ? s_end : end;
        if (!map->_src)
            memcpy(out + (lo - addr), s->data + (lo - s->addr), (size_t)(hi - lo));
        from_image += (size_t)(hi - lo);
    }
    if (map->_src && from_image) {
        pf_memmap_source *src = map->_src;
        int r = src->err ? src->err : src->read(src->user, addr, out, len, from_image);
        if (r < 0) {
            if (!src->err)
                src->err = r;
            memset(out, fill, len);
            return 0;
        }
    }
    return from_image;
}
