/* libFuzzer target for pf_hexflash (arduino/src): the HEX text an Arduino
 * receives from a host is untrusted.
 *
 * Input: byte 0 picks the page size (16..256) and byte 1 the limit; the
 * rest is the HEX text, fed in slices whose sizes come from the text's own
 * bytes. The check pass runs; when it succeeds, the same text is fed again
 * as the write pass into a flash held in memory (a pf_target_ops over an
 * array, standing in for the AVR driver), and then:
 *  - the write pass must succeed, write and read back every recorded page;
 *  - every byte outside the recorded pages must still be erased (0xFF);
 *  - the CRC-32 of the recorded pages, read from the flash, must be the
 *    check pass's crc32.
 * A corrupt copy (one byte flipped) in the write pass must either be
 * refused or give the same flash. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "pf_hexflash.h"

#define FLASH_MAX 8192u

typedef struct mem_target {
    uint8_t flash[FLASH_MAX];
    uint32_t size;
    uint32_t writes;
} mem_target;

static int mem_write(void *self, uint32_t addr, const uint8_t *data, uint32_t len)
{
    mem_target *m = self;
    if (addr + len > m->size)
        abort(); /* pf_hexflash wrote past its limit */
    memcpy(m->flash + addr, data, len);
    m->writes++;
    return PF_OK;
}

static int mem_read(void *self, uint32_t addr, uint8_t *buf, uint32_t len)
{
    mem_target *m = self;
    if (addr + len > m->size)
        abort();
    memcpy(buf, m->flash + addr, len);
    return PF_OK;
}

static const pf_target_ops mem_ops = {
    .name = "mem", .summary = "flash in memory", .ctx_size = sizeof(mem_target), .write = mem_write, .read = mem_read,
};

/* Feeds text in slices; returns the feed result (1 at the end-of-file line). */
static int feed(pf_hexflash *h, const uint8_t *text, size_t n)
{
    size_t at = 0;
    while (at < n) {
        size_t slice = 1 + text[at] % 37u;
        if (slice > n - at)
            slice = n - at;
        size_t used = 0;
        int r = pf_hexflash_feed(h, text + at, slice, &used);
        if (used > slice)
            abort();
        at += used;
        if (r != 0)
            return r;
    }
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 2)
        return 0;
    static const uint16_t page_sizes[] = {16, 32, 64, 128, 256};
    uint16_t page = page_sizes[data[0] % 5];
    uint32_t limit = (uint32_t)(data[1] % 33u) * 256u;
    const uint8_t *text = data + 2;
    size_t n = size - 2;

    static uint16_t table[64];
    static pf_hexflash h;
    static mem_target m, m2;
    static uint8_t copy[65536];
    pf_diag diag;
    if (pf_hexflash_init(&h, page, limit, table, 64, &diag) != PF_OK)
        abort();
    pf_hexflash_begin_check(&h);
    int r = feed(&h, text, n);
    if (r < 0)
        return 0;
    size_t text_len = n;
    if (pf_hexflash_finish(&h) != PF_OK)
        return 0;
    if (h.pages == 0 || h.pages > 64)
        abort();

    memset(m.flash, 0xFF, sizeof m.flash);
    m.size = FLASH_MAX;
    m.writes = 0;
    if (pf_hexflash_begin_write(&h, &mem_ops, &m) != PF_OK)
        abort();
    r = feed(&h, text, text_len);
    if (r < 0 || pf_hexflash_finish(&h) != PF_OK)
        abort(); /* the same text must pass the write pass */
    if (h.written != h.pages || h.verified != h.pages || m.writes != h.pages)
        abort();
    /* Recorded pages in order give the check pass's CRC-32; nothing else was touched. */
    uint32_t crc = 0, covered = 0;
    for (uint32_t a = 0; a < limit && a < FLASH_MAX; a += page) {
        int recorded = 0;
        uint16_t i = 0;
        for (uint8_t k = 0; k < h.runs; i = (uint16_t)(i + h.run[k].count), k++)
            if (a / page >= h.run[k].first && a / page < (uint32_t)h.run[k].first + h.run[k].count)
                recorded = 1;
        if (recorded) {
            crc = pf_hexflash_crc32(crc, m.flash + a, page);
            covered++;
        } else {
            for (uint32_t b = 0; b < page; b++)
                if (m.flash[a + b] != 0xFF)
                    abort();
        }
    }
    if (covered != h.pages || crc != h.crc32)
        abort();

    /* The second copy with one byte changed: refused, or the same flash
     * (a changed case of a hex digit, white space, bytes after the EOF line). */
    if (text_len == 0 || text_len > sizeof copy)
        return 0;
    memcpy(copy, text, text_len);
    size_t at = (size_t)data[0] * 257u % text_len;
    copy[at] ^= (uint8_t)(1u << (data[1] % 8u));
    memset(m2.flash, 0xFF, sizeof m2.flash);
    m2.size = FLASH_MAX;
    m2.writes = 0;
    if (pf_hexflash_begin_write(&h, &mem_ops, &m2) != PF_OK)
        abort();
    r = feed(&h, copy, text_len);
    if (r >= 0 && pf_hexflash_finish(&h) == PF_OK && memcmp(m.flash, m2.flash, sizeof m.flash) != 0)
        abort();
    return 0;
}
