/* Host image loader: PATH[@ADDR] -> detected reader -> heap memory map.
 *
 * The file is read whole, then parsed twice: a first pass with a counting
 * sink finds every format error and the exact number of bytes and segments
 * the memory map will need; the second pass stores into storage of exactly
 * that size. Parsing is far cheaper than the flash it feeds, and this keeps
 * the readers free of any allocation. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "peerflash/pf_image_file.h"

/* ---- spec ------------------------------------------------------------- */

int pf_image_spec_parse(const char *spec, char *path, size_t path_size, uint32_t *addr, int *has_addr,
                        pf_diag *diag)
{
    if (!spec || !path || !path_size || !addr || !has_addr)
        return PF_ERR_ARG;
    *has_addr = 0;
    *addr = 0;
    size_t len = strlen(spec);
    const char *at = strrchr(spec, '@');
    if (at && (at[1] == '\0' || (at[1] >= '0' && at[1] <= '9'))) {
        const char *a = at + 1;
        if (*a == '\0')
            return pf_diag_set(diag, PF_ERR_ARG, "%s: missing load address after '@'", spec);
        int hex = a[0] == '0' && (a[1] == 'x' || a[1] == 'X');
        const char *digits = hex ? a + 2 : a;
        unsigned long long v = 0;
        int ok = *digits != '\0';
        for (const char *c = digits; ok && *c; c++) {
            int d = *c >= '0' && *c <= '9'                 ? *c - '0'
                    : hex && *c >= 'a' && *c <= 'f'       ? *c - 'a' + 10
                    : hex && *c >= 'A' && *c <= 'F'       ? *c - 'A' + 10
                                                          : -1;
            if (d < 0)
                ok = 0;
            else if ((v = v * (hex ? 16u : 10u) + (unsigned)d) > 0xFFFFFFFFull)
                return pf_diag_set(diag, PF_ERR_ARG, "%s: load address %s is beyond the 4 GiB address space", spec, a);
        }
        if (!ok)
            return pf_diag_set(diag, PF_ERR_ARG, "%s: bad load address '%s' (write 0x08000000 or a decimal number)",
                               spec, a);
        *addr = (uint32_t)v;
        *has_addr = 1;
        len = (size_t)(at - spec);
    }
    if (len == 0)
        return pf_diag_set(diag, PF_ERR_ARG, "%s: empty file name", spec);
    if (len >= path_size)
        return pf_diag_set(diag, PF_ERR_ARG, "%s: file name too long", spec);
    memcpy(path, spec, len);
    path[len] = '\0';
    return PF_OK;
}

/* ---- reading and parsing ------------------------------------------------ */

/* Largest file read (a HEX file of a 256 MiB flash is about 700 MB); also
 * stops a device such as /dev/zero given by mistake. */
#define PF_IMAGE_FILE_MAX ((size_t)1 << 30)

static int read_all(const char *path, uint8_t **out, size_t *size, pf_diag *diag)
{
    *out = NULL;
    *size = 0;
    FILE *fp = fopen(path, "rb");
    if (!fp)
        return pf_diag_set(diag, PF_ERR_IO, "cannot open: %s", strerror(errno));
    size_t cap = 0, n = 0;
    uint8_t *buf = NULL;
    for (;;) {
        if (n == cap) {
            if (cap >= PF_IMAGE_FILE_MAX) {
                free(buf);
                fclose(fp);
                return pf_diag_set(diag, PF_ERR_FORMAT, "file larger than %u MiB: not a firmware image",
                                   (unsigned)(PF_IMAGE_FILE_MAX >> 20));
            }
            size_t ncap = cap ? cap * 2 : 64 * 1024;
            uint8_t *nb = ncap > cap ? realloc(buf, ncap) : NULL;
            if (!nb) {
                free(buf);
                fclose(fp);
                return pf_diag_set(diag, PF_ERR_NOMEM, "out of memory after %zu bytes", n);
            }
            buf = nb;
            cap = ncap;
        }
        size_t got = fread(buf + n, 1, cap - n, fp);
        n += got;
        if (got == 0)
            break;
    }
    int err = ferror(fp);
    int saved = errno;
    fclose(fp);
    if (err) {
        free(buf);
        return pf_diag_set(diag, PF_ERR_IO, "cannot read: %s", strerror(saved));
    }
    *out = buf;
    *size = n;
    return PF_OK;
}

/* Counts what a pf_memmap would need for the records it is given: bytes, and
 * a new segment for every record that does not continue the previous one. */
typedef struct counter {
    uint64_t bytes;
    size_t segs;
    uint64_t end;
} counter;

static int count_sink(void *user, uint32_t addr, const uint8_t *data, size_t len)
{
    (void)data;
    counter *c = user;
    if (len == 0)
        return PF_OK;
    if (c->segs == 0 || c->end != addr)
        c->segs++;
    c->bytes += len;
    c->end = (uint64_t)addr + len;
    return PF_OK;
}

/* Runs the reader for fmt over the whole buffer. */
static int parse(pf_image_format fmt, const uint8_t *buf, size_t size, uint32_t base, pf_image_sink sink, void *user,
                 pf_image_file *f, pf_diag *diag)
{
    int rc;
    switch (fmt) {
    case PF_IMAGE_IHEX: {
        pf_ihex p;
        pf_ihex_init(&p, sink, user, diag);
        rc = pf_ihex_feed(&p, buf, size);
        if (rc == 0)
            rc = pf_ihex_finish(&p);
        f->has_start = p.has_start;
        f->start_addr = p.start_addr;
        return rc;
    }
    case PF_IMAGE_SREC: {
        pf_srec p;
        pf_srec_init(&p, sink, user, diag);
        rc = pf_srec_feed(&p, buf, size);
        if (rc == 0)
            rc = pf_srec_finish(&p);
        f->has_start = p.has_start;
        f->start_addr = p.start_addr;
        return rc;
    }
    case PF_IMAGE_ELF: return pf_elf_parse(buf, size, sink, user, diag);
    default: {
        pf_bin p;
        pf_bin_init(&p, base, sink, user, diag);
        rc = pf_bin_feed(&p, buf, size);
        if (rc == 0)
            rc = pf_bin_finish(&p);
        return rc;
    }
    }
}

static int carries_addresses(pf_image_format f) { return f == PF_IMAGE_IHEX || f == PF_IMAGE_SREC || f == PF_IMAGE_ELF; }

void pf_image_file_free(pf_image_file *f)
{
    if (!f)
        return;
    free(f->path);
    free(f->spec);
    free(f->_segs);
    free(f->_arena);
    memset(f, 0, sizeof *f);
}

static int load(pf_image_file *f, const char *spec, const pf_http_options *http, pf_diag *diag)
{
    size_t slen = strlen(spec);
    f->spec = malloc(slen + 1);
    f->path = malloc(slen + 1);
    if (!f->spec || !f->path)
        return pf_diag_set(diag, PF_ERR_NOMEM, "%s: out of memory", spec);
    memcpy(f->spec, spec, slen + 1);
    int rc = pf_image_spec_parse(spec, f->path, slen + 1, &f->addr, &f->has_addr, diag);
    if (rc)
        return rc;
    const char *path = f->path;

    uint8_t *buf;
    size_t size;
    if (pf_http_is_url(path)) {
        rc = pf_http_fetch(path, http, &buf, &size, diag); /* its messages name the URL */
        if (rc)
            return rc;
    } else if ((rc = read_all(path, &buf, &size, diag)) != 0) {
        pf_diag_prefix(diag, path);
        return rc;
    }
    f->file_size = size;
    f->format = pf_image_detect(buf, size < 4096 ? size : 4096, path);
    const char *fname = pf_image_format_name(f->format);
    if (f->format == PF_IMAGE_UNKNOWN) {
        rc = pf_diag_set(diag, PF_ERR_FORMAT, "%s: file is empty", path);
    } else if (carries_addresses(f->format) && f->has_addr) {
        rc = pf_diag_set(diag, PF_ERR_ARG,
                         "%s: %s file carries its own addresses; drop the @%s (a load address is only for raw binaries)",
                         path, fname, strrchr(spec, '@') + 1);
    } else if (!carries_addresses(f->format) && !f->has_addr) {
        const char *example = f->format == PF_IMAGE_ESP       ? "0x10000"
                              : f->format == PF_IMAGE_MCUBOOT ? "SLOT_ADDRESS"
                                                              : "0x08000000";
        rc = pf_diag_set(diag, PF_ERR_ARG, "%s: %s needs a load address: %s@%s", path, fname, path, example);
    }
    if (rc) {
        free(buf);
        return rc;
    }

    counter c = {0, 0, 0};
    rc = parse(f->format, buf, size, f->addr, count_sink, &c, f, diag);
    if (rc == 0 && c.bytes == 0)
        rc = pf_diag_set(diag, PF_ERR_FORMAT, "no data records: the image is empty");
    if (rc == 0 && c.bytes > 0xFFFFFFFFull)
        rc = pf_diag_set(diag, PF_ERR_FORMAT, "more than 4 GiB of data");
    if (rc == 0) {
        f->_segs = malloc(c.segs * sizeof *f->_segs);
        f->_arena = malloc((size_t)c.bytes);
        if (!f->_segs || !f->_arena)
            rc = pf_diag_set(diag, PF_ERR_NOMEM, "out of memory for %llu bytes", (unsigned long long)c.bytes);
    }
    if (rc == 0) {
        pf_memmap_init(&f->map, f->_segs, c.segs, f->_arena, (size_t)c.bytes);
        pf_memmap_dest dest = {&f->map, diag};
        rc = parse(f->format, buf, size, f->addr, pf_memmap_dest_sink, &dest, f, diag);
    }
    if (rc == 0)
        rc = pf_memmap_finish(&f->map, diag);
    free(buf);
    if (rc) {
        pf_diag_prefix(diag, path);
        return rc;
    }
    f->bytes = (uint32_t)c.bytes;
    f->lo = f->map.segs[0].addr;
    const pf_segment *l = &f->map.segs[f->map.count - 1];
    f->last = l->addr + (l->len - 1);
    return PF_OK;
}

int pf_image_file_load(pf_image_file *f, const char *spec, pf_diag *diag)
{
    return pf_image_file_load_from(f, spec, NULL, diag);
}

int pf_image_file_load_from(pf_image_file *f, const char *spec, const pf_http_options *http, pf_diag *diag)
{
    if (!f || !spec)
        return PF_ERR_ARG;
    memset(f, 0, sizeof *f);
    int rc = load(f, spec, http, diag);
    if (rc)
        pf_image_file_free(f);
    return rc;
}

/* ---- several files ------------------------------------------------------ */

void pf_image_set_init(pf_image_set *set)
{
    memset(set, 0, sizeof *set);
    pf_memmap_init(&set->map, NULL, 0, NULL, 0);
}

int pf_image_set_add(pf_image_set *set, const char *spec, pf_diag *diag)
{
    if (!set || !spec)
        return PF_ERR_ARG;
    if (set->count == set->_files_cap) {
        size_t ncap = set->_files_cap ? set->_files_cap * 2 : 4;
        pf_image_file *nf = realloc(set->files, ncap * sizeof *nf);
        if (!nf)
            return pf_diag_set(diag, PF_ERR_NOMEM, "%s: out of memory", spec);
        set->files = nf;
        set->_files_cap = ncap;
    }
    pf_image_file *f = &set->files[set->count];
    int rc = pf_image_file_load_from(f, spec, set->http, diag);
    if (rc)
        return rc;
    size_t total = set->map.count + f->map.count;
    pf_segment *segs = realloc(set->_segs, total * sizeof *segs);
    if (!segs) {
        pf_image_file_free(f);
        return pf_diag_set(diag, PF_ERR_NOMEM, "%s: out of memory", spec);
    }
    memcpy(segs + set->map.count, f->map.segs, f->map.count * sizeof *segs);
    set->_segs = segs;
    /* The segments point into each file's own arena, so the set's map needs
     * no arena of its own: it is only sorted and checked, never added to. */
    pf_memmap_init(&set->map, segs, total, NULL, 0);
    set->map.count = total;
    set->count++;
    return PF_OK;
}

/* Which file holds the segment that starts at addr with this data pointer. */
static const pf_image_file *owner(const pf_image_set *set, const pf_segment *s)
{
    for (size_t i = 0; i < set->count; i++) {
        const pf_image_file *f = &set->files[i];
        for (size_t k = 0; k < f->map.count; k++)
            if (f->map.segs[k].data == s->data)
                return f;
    }
    return NULL;
}

static int cmp_seg(const void *a, const void *b)
{
    const pf_segment *x = a, *y = b;
    return x->addr < y->addr ? -1 : x->addr > y->addr;
}

int pf_image_set_finish(pf_image_set *set, pf_diag *diag)
{
    if (!set)
        return PF_ERR_ARG;
    if (set->count == 0)
        return pf_diag_set(diag, PF_ERR_ARG, "no image files given");
    /* Overlaps inside one file were refused when it was loaded, so any
     * overlap now is between two files: find it here to name them. */
    size_t n = set->map.count;
    qsort(set->map.segs, n, sizeof *set->map.segs, cmp_seg);
    size_t far = 0; /* the segment reaching furthest so far */
    for (size_t i = 1; i < n; i++) {
        const pf_segment *a = &set->map.segs[far], *b = &set->map.segs[i];
        uint64_t a_end = (uint64_t)a->addr + a->len;
        if (b->addr < a_end) {
            const pf_image_file *fa = owner(set, a), *fb = owner(set, b);
            uint64_t b_end = (uint64_t)b->addr + b->len;
            uint64_t lo = b->addr, hi = a_end < b_end ? a_end : b_end;
            return pf_diag_set(diag, PF_ERR_OVERLAP,
                               "%s (0x%08lx-0x%08lx) and %s (0x%08lx-0x%08lx) overlap at 0x%08lx-0x%08lx",
                               fa ? fa->spec : "?", (unsigned long)a->addr, (unsigned long)(a_end - 1),
                               fb ? fb->spec : "?", (unsigned long)b->addr, (unsigned long)(b_end - 1),
                               (unsigned long)lo, (unsigned long)(hi - 1));
        }
        if ((uint64_t)b->addr + b->len > a_end)
            far = i;
    }
    return pf_memmap_finish(&set->map, diag);
}

void pf_image_set_free(pf_image_set *set)
{
    if (!set)
        return;
    for (size_t i = 0; i < set->count; i++)
        pf_image_file_free(&set->files[i]);
    free(set->files);
    free(set->_segs);
    memset(set, 0, sizeof *set);
}
