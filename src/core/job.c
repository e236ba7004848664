/* The flash job: check, plan, skip unchanged, erase, write, verify, run.
 *
 * The plan is never stored: runs are recomputed from the sorted memory map
 * (pf_job_next_run), and a run is cut into "pieces" at erase-unit boundaries
 * when unchanged units can be skipped. Which pieces are dirty is kept in a
 * fixed bitmap; an image with more pieces than it holds is done in windows. */
#include "peerflash/pf_job.h"

#include <string.h>

#define MAX_PIECES 2048u /* per window; 256 bytes of stack */

const char *pf_phase_name(pf_phase phase)
{
    switch (phase) {
    case PF_PHASE_CHECK: return "check";
    case PF_PHASE_ERASE: return "erase";
    case PF_PHASE_WRITE: return "write";
    case PF_PHASE_VERIFY: return "verify";
    case PF_PHASE_RUN: return "run";
    case PF_PHASE_READ: return "read";
    case PF_PHASE_REBOOT: return "reboot";
    case PF_PHASE_INSTALL: return "install";
    case PF_PHASE_TRIAL: return "trial";
    case PF_PHASE_CONFIRM: return "confirm";
    default: return "?";
    }
}

static uint32_t align_down(uint32_t v, uint32_t a) { return v / a * a; }
static uint64_t align_up64(uint64_t v, uint32_t a) { return (v + a - 1) / a * a; }
static uint32_t write_align(const pf_flash_geometry *g) { return g->write_align ? g->write_align : 1; }

static uint32_t elapsed_ms(const pf_port *clock, uint32_t since)
{
    return clock ? clock->now_ms(clock->ctx) - since : 0;
}
static uint32_t now_ms(const pf_port *clock) { return clock ? clock->now_ms(clock->ctx) : 0; }

int pf_job_check(const pf_memmap *map, const pf_flash_geometry *g, pf_diag *diag)
{
    if (map->count == 0)
        return pf_diag_set(diag, PF_ERR_FORMAT, "the image holds no data");
    int r = pf_memmap_check_range(map, g->flash_start, g->flash_size, diag);
    if (r < 0)
        return r;
    for (unsigned p = 0; p < g->n_protected; p++) {
        const pf_range *pr = &g->protected_ranges[p];
        uint64_t pr_end = (uint64_t)pr->start + pr->size;
        for (size_t i = 0; i < map->count; i++) {
            const pf_segment *s = &map->segs[i];
            uint64_t s_end = (uint64_t)s->addr + s->len;
            if (s->addr < pr_end && s_end > pr->start)
                return pf_diag_set(diag, PF_ERR_RANGE,
                                   "image data at 0x%08lx-0x%08lx reaches into the %s at 0x%08lx-0x%08lx",
                                   (unsigned long)s->addr, (unsigned long)(s_end - 1),
                                   pr->what ? pr->what : "protected range", (unsigned long)pr->start,
                                   (unsigned long)(pr_end - 1));
        }
    }
    return PF_OK;
}

static int crosses_protected(const pf_flash_geometry *g, uint64_t from, uint64_t to)
{
    for (unsigned p = 0; p < g->n_protected; p++) {
        uint64_t s = g->protected_ranges[p].start, e = s + g->protected_ranges[p].size;
        if (from < e && to > s)
            return 1;
    }
    return 0;
}

/* End of the erase unit holding addr, or addr+1 when none is known. */
static uint64_t unit_end(const pf_flash_geometry *g, uint32_t addr)
{
    uint32_t us, un;
    if (g->n_regions && pf_geometry_unit(g, addr, &us, &un))
        return (uint64_t)us + un;
    return (uint64_t)addr + 1;
}

int pf_job_next_run(const pf_memmap *map, const pf_flash_geometry *g, uint32_t fill_gap_max, uint32_t from,
                    pf_run *run)
{
    uint32_t a = write_align(g);
    size_t i = 0;
    while (i < map->count && (uint64_t)map->segs[i].addr + map->segs[i].len <= from)
        i++;
    if (i == map->count)
        return 0;
    uint32_t start = map->segs[i].addr > from ? map->segs[i].addr : from;
    start = align_down(start, a);
    if (start < from) /* the previous run's aligned end covers this start */
        start = from;
    uint64_t end = align_up64((uint64_t)map->segs[i].addr + map->segs[i].len, a);
    for (i++; i < map->count; i++) {
        uint64_t next = align_down(map->segs[i].addr, a);
        int close = next <= end + fill_gap_max;
        int same_unit = next < unit_end(g, (uint32_t)(end - 1));
        if (!(close || same_unit) || crosses_protected(g, end, next))
            break;
        uint64_t next_end = align_up64((uint64_t)map->segs[i].addr + map->segs[i].len, a);
        if (next_end > end)
            end = next_end;
    }
    run->addr = start;
    run->len = (uint32_t)(end - start);
    return 1;
}

/* A piece of a run: the run cut at erase-unit boundaries when skipping. */
static int next_piece(const pf_flash_geometry *g, const pf_run *run, uint32_t at, int split, pf_run *piece)
{
    uint64_t run_end = (uint64_t)run->addr + run->len;
    if (at >= run_end)
        return 0;
    uint64_t end = run_end;
    if (split) {
        uint64_t ue = unit_end(g, at);
        if (g->n_regions && ue < end)
            end = ue;
    }
    piece->addr = at;
    piece->len = (uint32_t)(end - at);
    return 1;
}

typedef struct job_state {
    pf_target *t;
    const pf_memmap *map;
    const pf_job_config *cfg;
    pf_job_result *res;
    uint8_t bits[MAX_PIECES / 8];
    pf_run win_first; /* first piece of the window */
    unsigned n;       /* pieces in the window */
    int split;
    uint32_t chunk;   /* bytes per write/read call */
} job_state;

static int dirty(const job_state *s, unsigned i) { return (s->bits[i / 8] >> (i % 8)) & 1; }
static void set_dirty(job_state *s, unsigned i) { s->bits[i / 8] |= (uint8_t)(1u << (i % 8)); }

static void progress(const job_state *s, pf_phase ph, uint32_t done, uint32_t total)
{
    if (s->cfg->progress)
        s->cfg->progress(s->cfg->progress_user, ph, done, total);
}

/* Iterates the pieces of the job starting at `from`: the first call gets
 * the piece at or after from; callers step by piece end. */
static int piece_at(const job_state *s, uint32_t from, pf_run *piece)
{
    pf_run run;
    if (!pf_job_next_run(s->map, &s->t->info.geom, s->cfg->fill_gap_max, from, &run))
        return 0;
    return next_piece(&s->t->info.geom, &run, run.addr > from ? run.addr : from, s->split, piece);
}

/* Local digest of [addr, addr+len) of the image with fill. */
static int local_digest(const job_state *s, uint32_t addr, uint32_t len, uint8_t *out)
{
    pf_digest d;
    int r = pf_digest_begin(&d, s->t->info.digest);
    if (r < 0)
        return r;
    uint8_t fill = s->t->info.geom.erased_value;
    while (len) {
        uint32_t n = len < s->cfg->buf_size ? len : (uint32_t)s->cfg->buf_size;
        pf_memmap_read(s->map, addr, s->cfg->buf, n, fill);
        if (pf_memmap_error(s->map) < 0)
            return pf_memmap_error(s->map); /* the image source failed: its diag says why */
        pf_digest_update(&d, s->cfg->buf, n);
        addr += n;
        len -= n;
    }
    return pf_digest_finish(&d, out);
}

static int target_failed(const job_state *s, int r, const char *what, uint32_t addr)
{
    /* Keep the driver's explanation; add where the job was when it failed. */
    pf_diag *d = s->cfg->diag;
    if (d && d->text[0]) {
        char where[64];
        pf_format(where, sizeof where, "%s at 0x%08lx", what, (unsigned long)addr);
        pf_diag_prefix(d, where);
    } else {
        pf_diag_set(d, r, "%s at 0x%08lx failed: %s", what, (unsigned long)addr, pf_strerror(r));
    }
    pf_diag_op(d, what[0] == 'c' && what[1] == 'h' ? "erase" : what); /* "chip erase" is an erase */
    return r;
}

typedef struct walk {
    uint32_t done, total;
} walk;

/* Finds the first differing byte of [addr, addr+len) by reading back;
 * reports verify progress per chunk when w is given. */
static int read_compare(const job_state *s, uint32_t addr, uint32_t len, uint32_t *mismatch, walk *w)
{
    uint32_t half = (uint32_t)(s->cfg->buf_size / 2);
    uint32_t chunk = half < s->chunk ? half : s->chunk;
    uint8_t *want = s->cfg->buf, *got = s->cfg->buf + half;
    uint8_t fill = s->t->info.geom.erased_value;
    while (len) {
        uint32_t n = len < chunk ? len : chunk;
        pf_memmap_read(s->map, addr, want, n, fill);
        if (pf_memmap_error(s->map) < 0)
            return pf_memmap_error(s->map);
        int r = s->t->ops->read(s->t->self, addr, got, n);
        if (r < 0)
            return target_failed(s, r, "read", addr);
        for (uint32_t i = 0; i < n; i++)
            if (want[i] != got[i]) {
                *mismatch = addr + i;
                return pf_diag_set(s->cfg->diag, PF_ERR_VERIFY,
                                   "verify failed at 0x%08lx: flash holds 0x%02x, image has 0x%02x",
                                   (unsigned long)(addr + i), got[i], want[i]);
            }
        addr += n;
        len -= n;
        if (w) {
            w->done += n;
            progress(s, PF_PHASE_VERIFY, w->done, w->total);
        }
    }
    return PF_OK;
}

static int verify_range(job_state *s, uint32_t addr, uint32_t len, walk *w)
{
    const pf_target_info *info = &s->t->info;
    if ((info->caps & PF_CAP_DIGEST) && s->t->ops->digest) {
        uint8_t want[PF_DIGEST_MAX], got[PF_DIGEST_MAX];
        int wl = local_digest(s, addr, len, want);
        if (wl < 0)
            return wl;
        int gl = s->t->ops->digest(s->t->self, addr, len, got);
        if (gl < 0)
            return target_failed(s, gl, "digest", addr);
        if (gl == wl && memcmp(want, got, (size_t)wl) == 0) {
            if (w) {
                w->done += len;
                progress(s, PF_PHASE_VERIFY, w->done, w->total);
            }
            return PF_OK;
        }
        s->res->mismatch_addr = addr;
        if ((info->caps & PF_CAP_READ) && s->t->ops->read &&
            read_compare(s, addr, len, &s->res->mismatch_addr, NULL) == PF_ERR_VERIFY)
            return PF_ERR_VERIFY;
        return pf_diag_set(s->cfg->diag, PF_ERR_VERIFY, "verify failed: %s of 0x%08lx-0x%08lx differs from the image",
                           pf_digest_name(info->digest), (unsigned long)addr, (unsigned long)(addr + len - 1));
    }
    return read_compare(s, addr, len, &s->res->mismatch_addr, w);
}

static int can_verify(const pf_target *t)
{
    return ((t->info.caps & PF_CAP_DIGEST) && t->ops->digest) || ((t->info.caps & PF_CAP_READ) && t->ops->read);
}

/* 1 when [addr, addr+len) of the image (with fill) is all erased_value. */
static int image_erased(const job_state *s, uint32_t addr, uint32_t len, int *erased)
{
    uint8_t fill = s->t->info.geom.erased_value;
    *erased = 1;
    while (len) {
        uint32_t n = len < s->cfg->buf_size ? len : (uint32_t)s->cfg->buf_size;
        pf_memmap_read(s->map, addr, s->cfg->buf, n, fill);
        if (pf_memmap_error(s->map) < 0)
            return pf_memmap_error(s->map);
        for (uint32_t k = 0; k < n; k++)
            if (s->cfg->buf[k] != fill) {
                *erased = 0;
                return PF_OK;
            }
        addr += n;
        len -= n;
    }
    return PF_OK;
}

/* The skip-unchanged check of the span of touching pieces that starts with
 * piece i (p): one target digest over the whole span first. When it matches
 * the image, every piece is unchanged; when it matches erased flash (all
 * erased_value), a piece is unchanged exactly when the image has only
 * erased_value there, which the host sees without asking the target. Only
 * otherwise (some of the span differs, the rest is not erased) each piece
 * is asked for on its own. *span_end: the piece after the span. Returns 1
 * when the span is decided, 0 when its pieces are to be asked one by one
 * (always for a span of one piece), or an error. Each per-piece digest is a round trip on a slow
 * link (an ESP ROM at 115200: 128 of them for 512 KiB, 0.9 s), the span's
 * is one. */
static int check_span(job_state *s, unsigned i, pf_run p, unsigned *span_end, uint32_t *checked, uint32_t total)
{
    unsigned j = i + 1;
    uint32_t len = p.len, at = p.addr + p.len;
    pf_run q;
    while (j < s->n && piece_at(s, at, &q) && q.addr == at) {
        len += q.len;
        at = q.addr + q.len;
        j++;
        if (at == 0)
            break;
    }
    *span_end = j;
    if (j == i + 1)
        return 0;
    uint8_t want[PF_DIGEST_MAX], got[PF_DIGEST_MAX], erased[PF_DIGEST_MAX];
    int wl = local_digest(s, p.addr, len, want);
    if (wl < 0)
        return wl;
    int gl = s->t->ops->digest(s->t->self, p.addr, len, got);
    if (gl < 0)
        return target_failed(s, gl, "digest", p.addr);
    int same = gl == wl && memcmp(want, got, (size_t)wl) == 0;
    if (!same) {
        /* the digest of erased flash over the span */
        pf_digest d;
        int r = pf_digest_begin(&d, s->t->info.digest);
        if (r < 0)
            return r;
        size_t bn = s->cfg->buf_size;
        memset(s->cfg->buf, s->t->info.geom.erased_value, bn);
        for (uint32_t left = len; left;) {
            uint32_t n = left < bn ? left : (uint32_t)bn;
            pf_digest_update(&d, s->cfg->buf, n);
            left -= n;
        }
        int el = pf_digest_finish(&d, erased);
        if (el < 0)
            return el;
        if (el != gl || memcmp(erased, got, (size_t)el) != 0)
            return 0; /* neither: piece by piece */
        if (s->t->ops->known_erased) /* the driver's write need not erase it again */
            s->t->ops->known_erased(s->t->self, p.addr, len);
    }
    at = p.addr;
    for (unsigned k = i; k < j; k++) {
        piece_at(s, at, &q);
        at = q.addr + q.len;
        int clean = 1;
        if (!same) {
            int r = image_erased(s, q.addr, q.len, &clean);
            if (r < 0)
                return r;
        }
        if (clean)
            s->res->skipped_bytes += q.len;
        else
            set_dirty(s, k);
        *checked += q.len;
    }
    progress(s, PF_PHASE_CHECK, *checked, total);
    return 1;
}

/* Collects the window of pieces starting at *from; all dirty unless checked. */
static int plan_window(job_state *s, uint32_t from, int check, uint32_t *next_from)
{
    memset(s->bits, 0, sizeof s->bits);
    s->n = 0;
    pf_run p = {0, 0};
    uint32_t at = from;
    uint32_t total = 0, checked = 0;
    /* First pass: count pieces and bytes for progress. */
    while (s->n < MAX_PIECES && piece_at(s, at, &p)) {
        if (s->n == 0)
            s->win_first = p;
        total += p.len;
        s->n++;
        at = p.addr + p.len;
        if (at == 0) /* wrapped at 4 GiB */
            break;
    }
    *next_from = at;
    if (check && total) /* nothing to compare: no "check: 0/0" */
        progress(s, PF_PHASE_CHECK, 0, total);
    at = from;
    unsigned span_end = 0; /* the piece after the current span of touching pieces */
    int decided = 0;       /* the current span was decided by its one digest */
    for (unsigned i = 0; i < s->n; i++) {
        piece_at(s, at, &p);
        at = p.addr + p.len;
        if (!check) {
            set_dirty(s, i);
            continue;
        }
        if (i >= span_end) {
            decided = check_span(s, i, p, &span_end, &checked, total);
            if (decided < 0)
                return decided;
        }
        if (decided)
            continue;
        uint8_t want[PF_DIGEST_MAX], got[PF_DIGEST_MAX];
        int wl = local_digest(s, p.addr, p.len, want);
        if (wl < 0)
            return wl;
        int gl = s->t->ops->digest(s->t->self, p.addr, p.len, got);
        if (gl < 0)
            return target_failed(s, gl, "digest", p.addr);
        if (gl == wl && memcmp(want, got, (size_t)wl) == 0)
            s->res->skipped_bytes += p.len;
        else
            set_dirty(s, i);
        checked += p.len;
        progress(s, PF_PHASE_CHECK, checked, total);
    }
    return PF_OK;
}

/* Calls fn for every maximal group of consecutive dirty, touching pieces. */
typedef int (*group_fn)(job_state *s, uint32_t addr, uint32_t len, void *arg);
static int for_each_group(job_state *s, group_fn fn, void *arg)
{
    pf_run p = {0, 0};
    uint32_t at = s->win_first.addr;
    uint32_t g_addr = 0;
    uint64_t g_end = 0;
    int open = 0;
    for (unsigned i = 0; i < s->n; i++) {
        piece_at(s, at, &p);
        at = p.addr + p.len;
        if (dirty(s, i) && open && g_end == p.addr) {
            g_end = (uint64_t)p.addr + p.len;
            continue;
        }
        if (open) {
            int r = fn(s, g_addr, (uint32_t)(g_end - g_addr), arg);
            if (r < 0)
                return r;
            open = 0;
        }
        if (dirty(s, i)) {
            g_addr = p.addr;
            g_end = (uint64_t)p.addr + p.len;
            open = 1;
        }
    }
    return open ? fn(s, g_addr, (uint32_t)(g_end - g_addr), arg) : PF_OK;
}

static int sum_group(job_state *s, uint32_t addr, uint32_t len, void *arg)
{
    (void)s;
    (void)addr;
    *(uint32_t *)arg += len;
    return PF_OK;
}

/* Erase units of the dirty groups, each unit once, merged into ranges. */
typedef struct erase_walk {
    uint64_t erased_end; /* units below this are already erased */
    uint32_t done, total;
    int count_only;
} erase_walk;

static int erase_group(job_state *s, uint32_t addr, uint32_t len, void *arg)
{
    erase_walk *w = arg;
    const pf_flash_geometry *g = &s->t->info.geom;
    uint32_t us, un;
    if (!pf_geometry_unit(g, addr, &us, &un))
        return pf_diag_set(s->cfg->diag, PF_ERR_RANGE, "0x%08lx is outside flash", (unsigned long)addr);
    uint64_t start = us;
    uint64_t end = (uint64_t)addr + len;
    uint32_t last_s, last_n;
    if (!pf_geometry_unit(g, (uint32_t)(end - 1), &last_s, &last_n))
        return pf_diag_set(s->cfg->diag, PF_ERR_RANGE, "0x%08lx is outside flash", (unsigned long)(end - 1));
    end = (uint64_t)last_s + last_n;
    if (start < w->erased_end)
        start = w->erased_end;
    if (start >= end)
        return PF_OK;
    uint32_t n = (uint32_t)(end - start);
    if (w->count_only) {
        w->total += n;
    } else {
        int r = s->t->ops->erase(s->t->self, (uint32_t)start, n);
        if (r < 0)
            return target_failed(s, r, "erase", (uint32_t)start);
        w->done += n;
        s->res->erased_bytes += n;
        progress(s, PF_PHASE_ERASE, w->done, w->total);
    }
    w->erased_end = end;
    return PF_OK;
}

static int write_group(job_state *s, uint32_t addr, uint32_t len, void *arg)
{
    walk *w = arg;
    const pf_target_ops *ops = s->t->ops;
    int r = ops->write_begin ? ops->write_begin(s->t->self, addr, len) : PF_OK;
    if (r < 0)
        return target_failed(s, r, "write", addr);
    uint8_t fill = s->t->info.geom.erased_value;
    uint32_t at = addr, left = len;
    while (left) {
        uint32_t n = left < s->chunk ? left : s->chunk;
        pf_memmap_read(s->map, at, s->cfg->buf, n, fill);
        if (pf_memmap_error(s->map) < 0)
            return pf_memmap_error(s->map);
        r = ops->write(s->t->self, at, s->cfg->buf, n);
        if (r < 0)
            return target_failed(s, r, "write", at);
        at += n;
        left -= n;
        w->done += n;
        s->res->written_bytes += n;
        progress(s, PF_PHASE_WRITE, w->done, w->total);
    }
    r = ops->write_end ? ops->write_end(s->t->self) : PF_OK;
    return r < 0 ? target_failed(s, r, "write", addr) : PF_OK;
}

static int verify_group(job_state *s, uint32_t addr, uint32_t len, void *arg)
{
    return verify_range(s, addr, len, arg);
}

static int setup(job_state *s, pf_target *t, const pf_memmap *map, const pf_job_config *cfg, pf_job_result *res)
{
    if (!t || !t->ops || !map || !cfg || !res || !cfg->buf)
        return PF_ERR_ARG;
    memset(res, 0, sizeof *res);
    memset(s, 0, sizeof *s);
    s->t = t;
    s->map = map;
    s->cfg = cfg;
    s->res = res;
    const pf_flash_geometry *g = &t->info.geom;
    s->chunk = g->write_max ? g->write_max : write_align(g);
    if (cfg->buf_size < s->chunk)
        return pf_diag_set(cfg->diag, PF_ERR_ARG, "job buffer of %zu bytes is smaller than a %lu-byte write",
                           cfg->buf_size, (unsigned long)s->chunk);
    res->image_bytes = pf_memmap_bytes(map);
    res->verify_method = "none";
    pf_run run;
    for (uint32_t at = 0; pf_job_next_run(map, g, cfg->fill_gap_max, at, &run); at = run.addr + run.len) {
        res->runs++;
        if (run.addr + run.len == 0)
            break;
    }
    return pf_job_check(map, g, cfg->diag);
}

static const char *verify_method(const pf_target *t)
{
    if ((t->info.caps & PF_CAP_DIGEST) && t->ops->digest) {
        switch (t->info.digest) {
        case PF_DIGEST_MD5: return "digest MD5";
        case PF_DIGEST_SHA256: return "digest SHA-256";
        case PF_DIGEST_CRC32: return "digest CRC-32";
        case PF_DIGEST_CRC32_STM32: return "digest STM32 CRC-32";
        default: return "digest";
        }
    }
    return "read-back";
}

static int job_flash(pf_target *t, const pf_memmap *map, const pf_job_config *cfg, pf_job_result *res)
{
    job_state s;
    int r = setup(&s, t, map, cfg, res);
    if (r < 0)
        return r;
    const pf_target_info *info = &t->info;
    const pf_flash_geometry *g = &info->geom;
    if (!t->ops->write)
        return pf_diag_set(cfg->diag, PF_ERR_UNSUPPORTED, "the %s driver cannot write", t->ops->name);
    int can_digest = (info->caps & PF_CAP_DIGEST) && t->ops->digest && info->digest != PF_DIGEST_NONE;
    int check = cfg->skip_unchanged && can_digest && cfg->erase != PF_ERASE_ALL;
    s.split = check;

    uint32_t t0 = now_ms(cfg->clock);
    if (cfg->erase == PF_ERASE_ALL) {
        if (!(info->caps & PF_CAP_ERASE_ALL) || !t->ops->erase_all)
            return pf_diag_set(cfg->diag, PF_ERR_UNSUPPORTED, "the %s target cannot erase the whole chip",
                               t->ops->name);
        progress(&s, PF_PHASE_ERASE, 0, g->flash_size);
        r = t->ops->erase_all(t->self);
        if (r < 0)
            return target_failed(&s, r, "chip erase", g->flash_start);
        res->erased_bytes = g->flash_size;
        progress(&s, PF_PHASE_ERASE, g->flash_size, g->flash_size);
    }
    res->ms_erase = elapsed_ms(cfg->clock, t0);

    int verify = cfg->verify && can_verify(t);
    uint32_t from = 0, next_from = 0;
    for (;;) {
        r = plan_window(&s, from, check, &next_from);
        if (r < 0)
            return r;
        if (s.n == 0)
            break;
        if (g->erase_style == PF_ERASE_EXPLICIT && cfg->erase != PF_ERASE_ALL) {
            if (!t->ops->erase)
                return pf_diag_set(cfg->diag, PF_ERR_UNSUPPORTED, "the %s driver cannot erase", t->ops->name);
            t0 = now_ms(cfg->clock);
            erase_walk ew = {0, 0, 0, 1};
            for_each_group(&s, erase_group, &ew);
            ew.erased_end = 0;
            ew.count_only = 0;
            progress(&s, PF_PHASE_ERASE, 0, ew.total);
            r = for_each_group(&s, erase_group, &ew);
            res->ms_erase += elapsed_ms(cfg->clock, t0);
            if (r < 0)
                return r;
        }
        walk w = {0, 0};
        for_each_group(&s, sum_group, &w.total);
        t0 = now_ms(cfg->clock);
        progress(&s, PF_PHASE_WRITE, 0, w.total);
        r = for_each_group(&s, write_group, &w);
        res->ms_write += elapsed_ms(cfg->clock, t0);
        if (r < 0)
            return r;
        if (verify) {
            walk v = {0, w.total};
            t0 = now_ms(cfg->clock);
            progress(&s, PF_PHASE_VERIFY, 0, v.total);
            r = for_each_group(&s, verify_group, &v);
            res->ms_verify += elapsed_ms(cfg->clock, t0);
            if (r < 0)
                return r;
        }
        if (next_from == 0 || next_from == from)
            break;
        from = next_from;
    }
    if (verify) {
        res->verified = 1;
        res->verify_method = verify_method(t);
    }
    if (cfg->run_after) {
        if (!(info->caps & PF_CAP_RUN) || !t->ops->run)
            return pf_diag_set(cfg->diag, PF_ERR_UNSUPPORTED, "the %s target cannot start the application",
                               t->ops->name);
        progress(&s, PF_PHASE_RUN, 0, 1);
        r = t->ops->run(t->self);
        if (r < 0)
            return target_failed(&s, r, "run", 0);
        progress(&s, PF_PHASE_RUN, 1, 1);
    }
    return PF_OK;
}

static int job_verify(pf_target *t, const pf_memmap *map, const pf_job_config *cfg, pf_job_result *res)
{
    job_state s;
    int r = setup(&s, t, map, cfg, res);
    if (r < 0)
        return r;
    if (!can_verify(t))
        return pf_diag_set(cfg->diag, PF_ERR_UNSUPPORTED, "the %s target can neither read nor hash its flash",
                           t->ops->name);
    uint32_t from = 0, next_from = 0;
    uint32_t t0 = now_ms(cfg->clock);
    for (;;) {
        r = plan_window(&s, from, 0, &next_from);
        if (r < 0)
            return r;
        if (s.n == 0)
            break;
        walk v = {0, 0};
        for_each_group(&s, sum_group, &v.total);
        progress(&s, PF_PHASE_VERIFY, 0, v.total);
        r = for_each_group(&s, verify_group, &v);
        if (r < 0)
            return r;
        if (next_from == 0 || next_from == from)
            break;
        from = next_from;
    }
    res->ms_verify = elapsed_ms(cfg->clock, t0);
    res->verified = 1;
    res->verify_method = verify_method(t);
    return PF_OK;
}

/* The operation a failure of the job's own checks belongs to. */
static int name_op(const pf_job_config *cfg, int r)
{
    if (r < 0 && cfg && cfg->diag)
        pf_diag_op(cfg->diag, r == PF_ERR_VERIFY ? "verify" : "check");
    return r;
}

int pf_job_flash(pf_target *t, const pf_memmap *map, const pf_job_config *cfg, pf_job_result *res)
{
    return name_op(cfg, job_flash(t, map, cfg, res));
}

int pf_job_verify(pf_target *t, const pf_memmap *map, const pf_job_config *cfg, pf_job_result *res)
{
    return name_op(cfg, job_verify(t, map, cfg, res));
}

/* ---- ranges: the read and erase commands ---------------------------------- */
int pf_job_read_check(const pf_target *t, uint32_t addr, uint32_t len, pf_diag *d)
{
    if (!t || !t->ops || len == 0)
        return PF_ERR_ARG;
    const pf_flash_geometry *g = &t->info.geom;
    if (!(t->info.caps & PF_CAP_READ) || !t->ops->read)
        return pf_diag_set(d, PF_ERR_UNSUPPORTED, "the %s target cannot read its flash", t->ops->name);
    if ((uint64_t)addr + len > (uint64_t)g->flash_start + g->flash_size || addr < g->flash_start)
        return pf_diag_set(d, PF_ERR_RANGE, "0x%08lx+%lu is outside flash (0x%08lx, %lu bytes)", (unsigned long)addr,
                           (unsigned long)len, (unsigned long)g->flash_start, (unsigned long)g->flash_size);
    return PF_OK;
}

int pf_job_read_range(pf_target *t, uint32_t addr, uint8_t *out, uint32_t len, const pf_job_config *cfg)
{
    if (!t || !t->ops || !out || !cfg || len == 0)
        return PF_ERR_ARG;
    pf_diag *d = cfg->diag;
    const pf_flash_geometry *g = &t->info.geom;
    int rc = pf_job_read_check(t, addr, len, d);
    if (rc < 0)
        return rc;
    uint32_t chunk = g->write_max ? g->write_max : 256;
    if (cfg->progress)
        cfg->progress(cfg->progress_user, PF_PHASE_READ, 0, len);
    for (uint32_t done = 0; done < len;) {
        uint32_t n = len - done < chunk ? len - done : chunk;
        int r = t->ops->read(t->self, addr + done, out + done, n);
        if (r < 0) {
            pf_diag_op(d, "read");
            return r;
        }
        done += n;
        if (cfg->progress)
            cfg->progress(cfg->progress_user, PF_PHASE_READ, done, len);
    }
    return PF_OK;
}

int pf_job_erase_range(pf_target *t, uint32_t addr, uint32_t len, const pf_job_config *cfg, pf_run *erased)
{
    if (!t || !t->ops || !cfg || len == 0)
        return PF_ERR_ARG;
    pf_diag *d = cfg->diag;
    const pf_flash_geometry *g = &t->info.geom;
    uint32_t first_start, first_size, last_start, last_size;
    uint64_t end = (uint64_t)addr + len; /* one past the last byte: may be 2^32 */
    if (end > (uint64_t)g->flash_start + g->flash_size || !pf_geometry_unit(g, addr, &first_start, &first_size) ||
        !pf_geometry_unit(g, (uint32_t)(end - 1), &last_start, &last_size))
        return pf_diag_set(d, PF_ERR_RANGE, "0x%08lx+%lu is outside flash", (unsigned long)addr, (unsigned long)len);
    if (!t->ops->erase)
        return pf_diag_set(d, PF_ERR_UNSUPPORTED, "the %s target erases as it writes; it has no separate erase",
                           t->ops->name);
    uint64_t from = first_start, to = (uint64_t)last_start + last_size;
    for (unsigned p = 0; p < g->n_protected; p++) {
        uint64_t ps = g->protected_ranges[p].start, pe = ps + g->protected_ranges[p].size;
        if (from < pe && to > ps)
            return pf_diag_set(d, PF_ERR_RANGE, "0x%08lx-0x%08lx would erase the %s", (unsigned long)from,
                               (unsigned long)(to - 1),
                               g->protected_ranges[p].what ? g->protected_ranges[p].what : "protected range");
    }
    if (to - from > 0xFFFFFFFFu)
        return pf_diag_set(d, PF_ERR_RANGE, "0x%08lx+%lu is outside flash", (unsigned long)addr, (unsigned long)len);
    int r = t->ops->erase(t->self, (uint32_t)from, (uint32_t)(to - from));
    if (r < 0) {
        pf_diag_op(d, "erase");
        return r;
    }
    if (erased) {
        erased->addr = (uint32_t)from;
        erased->len = (uint32_t)(to - from);
    }
    return PF_OK;
}

int pf_job_erase_chip(pf_target *t, const pf_job_config *cfg)
{
    if (!t || !t->ops || !cfg)
        return PF_ERR_ARG;
    if (!(t->info.caps & PF_CAP_ERASE_ALL) || !t->ops->erase_all)
        return pf_diag_set(cfg->diag, PF_ERR_UNSUPPORTED, "the %s target cannot erase the whole chip", t->ops->name);
    int r = t->ops->erase_all(t->self);
    if (r < 0)
        pf_diag_op(cfg->diag, "erase");
    return r;
}

size_t pf_job_buf_size_for(const pf_target_info *info)
{
    size_t write_max = info->geom.write_max ? info->geom.write_max : 4096u;
    return 2u * write_max < 8192u ? 8192u : 2u * write_max;
}
