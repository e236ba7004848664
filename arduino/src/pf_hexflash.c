/* Two-pass HEX streaming into a target page by page (pf_hexflash.h). */
#include "pf_hexflash.h"

#include <string.h>

uint16_t pf_hexflash_crc16(uint16_t crc, const uint8_t *data, size_t n)
{
    while (n--) {
        crc ^= (uint16_t)((uint16_t)*data++ << 8);
        for (uint8_t i = 0; i < 8; i++)
            crc = (crc & 0x8000u) ? (uint16_t)((crc << 1) ^ 0x1021u) : (uint16_t)(crc << 1);
    }
    return crc;
}

uint32_t pf_hexflash_crc32(uint32_t crc, const uint8_t *data, size_t n)
{
    crc = ~crc;
    while (n--) {
        crc ^= *data++;
        for (uint8_t i = 0; i < 8; i++)
            crc = (crc & 1u) ? (crc >> 1) ^ 0xEDB88320ul : crc >> 1;
    }
    return ~crc;
}

int pf_hexflash_init(pf_hexflash *h, uint16_t page_size, uint32_t limit, uint16_t *table, uint16_t max_pages,
                     pf_diag *diag)
{
    if (!h || !table || !max_pages || !page_size || page_size > PF_HEXFLASH_PAGE_MAX)
        return PF_ERR_ARG;
    memset(h, 0, sizeof *h);
    h->page_size = page_size;
    h->limit = limit;
    h->table = table;
    h->max_pages = max_pages;
    h->diag = diag;
    return PF_OK;
}

/* Page number of the i-th recorded page, from the runs. */
static uint16_t page_number(const pf_hexflash *h, uint16_t i)
{
    for (uint8_t k = 0; k < h->runs; k++) {
        if (i < h->run[k].count)
            return (uint16_t)(h->run[k].first + i);
        i = (uint16_t)(i - h->run[k].count);
    }
    return 0xFFFFu;
}

/* A complete page: pass 1 records it, pass 2 checks it against the record
 * and writes it. Messages are short: on an AVR they take RAM. */
static int close_page(pf_hexflash *h)
{
    h->_page_open = 0;
    uint16_t number = (uint16_t)(h->_page_addr / h->page_size);
    uint16_t crc = pf_hexflash_crc16(0xFFFFu, h->_page, h->page_size);
    if (h->_pass == PF_HEXFLASH_CHECK) {
        if (h->_done == h->max_pages)
            return pf_diag_set(h->diag, PF_ERR_NOMEM, "image over %u pages (the table's size)", (unsigned)h->max_pages);
        pf_hexflash_run *last = h->runs ? &h->run[h->runs - 1] : NULL;
        if (last && last->first + last->count == number) {
            last->count++;
        } else {
            if (h->runs == PF_HEXFLASH_RUNS)
                return pf_diag_set(h->diag, PF_ERR_NOMEM, "image in over %u separate ranges", (unsigned)PF_HEXFLASH_RUNS);
            h->run[h->runs].first = number;
            h->run[h->runs].count = 1;
            h->runs++;
        }
        h->table[h->_done] = crc;
        h->crc32 = pf_hexflash_crc32(h->crc32, h->_page, h->page_size);
        h->_done++;
        return PF_OK;
    }
    if (h->_done >= h->pages || page_number(h, h->_done) != number || h->table[h->_done] != crc)
        return pf_diag_set(h->diag, PF_ERR_VERIFY, "page 0x%05lx differs from the check pass", (unsigned long)h->_page_addr);
    int r = h->_ops->write(h->_self, h->_page_addr, h->_page, h->page_size);
    if (r < 0)
        return r;
    h->_done++;
    h->written = h->_done;
    return PF_OK;
}

static int sink(void *user, uint32_t addr, const uint8_t *data, size_t len)
{
    pf_hexflash *h = (pf_hexflash *)user;
    if (addr < h->_next_min)
        return pf_diag_set(h->diag, PF_ERR_FORMAT, "data at 0x%05lx not in ascending order", (unsigned long)addr);
    if (addr >= h->limit || len > h->limit - addr)
        return pf_diag_set(h->diag, PF_ERR_RANGE, "data at 0x%05lx reaches the bootloader at 0x%05lx",
                           (unsigned long)addr, (unsigned long)h->limit);
    h->_next_min = addr + len;
    if (h->_pass == PF_HEXFLASH_CHECK)
        h->data_bytes += (uint32_t)len;
    while (len) {
        uint32_t page_addr = addr - addr % h->page_size;
        if (!h->_page_open || page_addr != h->_page_addr) {
            if (h->_page_open) {
                int r = close_page(h);
                if (r < 0)
                    return r;
            }
            memset(h->_page, 0xFF, h->page_size);
            h->_page_addr = page_addr;
            h->_page_open = 1;
        }
        uint32_t off = addr - page_addr;
        uint32_t n = h->page_size - off;
        if (n > len)
            n = (uint32_t)len;
        memcpy(h->_page + off, data, (size_t)n);
        addr += n;
        data += n;
        len -= (size_t)n;
    }
    return PF_OK;
}

static void begin_pass(pf_hexflash *h, pf_hexflash_pass pass)
{
    h->_pass = pass;
    h->_done = 0;
    h->_page_open = 0;
    h->_next_min = 0;
    pf_ihex_init(&h->_hex, sink, h, h->diag);
}

int pf_hexflash_begin_check(pf_hexflash *h)
{
    if (!h || !h->table)
        return PF_ERR_ARG;
    h->pages = 0;
    h->runs = 0;
    h->data_bytes = 0;
    h->crc32 = 0;
    h->written = 0;
    h->verified = 0;
    h->_ops = NULL;
    begin_pass(h, PF_HEXFLASH_CHECK);
    return PF_OK;
}

int pf_hexflash_begin_write(pf_hexflash *h, const pf_target_ops *ops, void *self)
{
    if (!h || !ops || !ops->write || !ops->read)
        return PF_ERR_ARG;
    if (!h->pages)
        return pf_diag_set(h->diag, PF_ERR_STATE, "no check pass");
    h->written = 0;
    h->verified = 0;
    h->_ops = ops;
    h->_self = self;
    begin_pass(h, PF_HEXFLASH_WRITE);
    return PF_OK;
}

int pf_hexflash_feed(pf_hexflash *h, const uint8_t *data, size_t n, size_t *used)
{
    size_t taken = 0;
    int r = PF_OK;
    if (!h || (!data && n) || h->_pass == PF_HEXFLASH_IDLE) {
        r = PF_ERR_ARG;
    } else {
        while (taken < n) {
            const uint8_t *nl = (const uint8_t *)memchr(data + taken, '\n', n - taken);
            size_t take = nl ? (size_t)(nl - (data + taken)) + 1 : n - taken;
            r = pf_ihex_feed(&h->_hex, data + taken, take);
            if (r < 0)
                break;
            taken += take;
            if (nl && h->_hex._eof) {
                r = 1;
                break;
            }
        }
    }
    if (used)
        *used = taken;
    return r;
}

void *pf_hexflash_scratch(pf_hexflash *h, size_t *size)
{
    if (size)
        *size = sizeof h->_hex;
    return &h->_hex;
}

int pf_hexflash_finish(pf_hexflash *h)
{
    if (!h || h->_pass == PF_HEXFLASH_IDLE)
        return PF_ERR_ARG;
    pf_hexflash_pass pass = h->_pass;
    int r = pf_ihex_finish(&h->_hex);
    if (r == PF_OK && h->_page_open)
        r = close_page(h);
    h->_pass = PF_HEXFLASH_IDLE;
    if (r < 0)
        return r;
    if (pass == PF_HEXFLASH_CHECK) {
        if (!h->_done)
            return pf_diag_set(h->diag, PF_ERR_FORMAT, "no data in the image");
        h->pages = h->_done;
        return PF_OK;
    }
    if (h->_done != h->pages)
        return pf_diag_set(h->diag, PF_ERR_VERIFY, "write pass: %u of %u pages", (unsigned)h->_done,
                           (unsigned)h->pages);
    /* Read back every page and compare with what pass 1 recorded. */
    for (uint16_t i = 0; i < h->pages; i++) {
        uint32_t addr = (uint32_t)page_number(h, i) * h->page_size;
        r = h->_ops->read(h->_self, addr, h->_page, h->page_size);
        if (r < 0)
            return r;
        uint16_t crc = pf_hexflash_crc16(0xFFFFu, h->_page, h->page_size);
        if (crc != h->table[i])
            return pf_diag_set(h->diag, PF_ERR_VERIFY, "page 0x%05lx reads back different", (unsigned long)addr);
        h->verified = (uint16_t)(i + 1);
    }
    return PF_OK;
}
