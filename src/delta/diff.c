/* The host-side diff: a bsdiff-class algorithm (C. Percival, "Naive
 * differences of executable code", 2003) written for peerflash's streaming
 * record format. Executables change in two ways: inserted or changed code
 * (new bytes), and code that moved, where most bytes are equal but every
 * address in it changed by a small amount. So instead of exact copies the
 * patch has approximate ones: new = base + diff, where diff is mostly zeros
 * and compresses to almost nothing. Matches come from a suffix array of the
 * base (libdivsufsort); an alignment is kept as long as it explains the new
 * bytes nearly as well as the best exact match found. */
#include <divsufsort.h>
#include <stdlib.h>
#include <string.h>

#include "peerflash/pf_delta.h"
#include "peerflash/pf_digest.h"

typedef struct body_buf {
    uint8_t *p;
    size_t len, cap;
    uint32_t records;
    int oom;
} body_buf;

static void put_bytes(body_buf *b, const uint8_t *src, size_t n)
{
    if (b->oom)
        return;
    if (b->len + n > b->cap) {
        size_t cap = b->cap ? b->cap : 4096;
        while (cap < b->len + n)
            cap *= 2;
        uint8_t *np = realloc(b->p, cap);
        if (!np) {
            b->oom = 1;
            return;
        }
        b->p = np;
        b->cap = cap;
    }
    memcpy(b->p + b->len, src, n);
    b->len += n;
}

/* One record: new[new_pos, + diff_len) against old[old_pos, ...), then
 * extra_len bytes of new as they are. */
static void put_record(body_buf *b, const uint8_t *old, const uint8_t *neu, uint32_t new_pos, uint32_t old_pos,
                       uint32_t diff_len, uint32_t extra_len)
{
    if (!diff_len && !extra_len)
        return;
    if (!diff_len)
        old_pos = 0;
    pf_patch_record r = {new_pos, old_pos, diff_len, extra_len};
    uint8_t hdr[PF_PATCH_RECORD_SIZE];
    pf_patch_record_encode(&r, hdr);
    put_bytes(b, hdr, sizeof hdr);
    uint8_t chunk[1024];
    for (uint32_t i = 0; i < diff_len;) {
        uint32_t n = diff_len - i < sizeof chunk ? diff_len - i : (uint32_t)sizeof chunk;
        for (uint32_t k = 0; k < n; k++)
            chunk[k] = (uint8_t)(neu[new_pos + i + k] - old[old_pos + i + k]);
        put_bytes(b, chunk, n);
        i += n;
    }
    put_bytes(b, neu + new_pos + diff_len, extra_len);
    b->records++;
}

static uint32_t common_prefix(const uint8_t *a, uint32_t an, const uint8_t *b, uint32_t bn)
{
    uint32_t n = an < bn ? an : bn, i = 0;
    while (i < n && a[i] == b[i])
        i++;
    return i;
}

/* Longest prefix of needle that occurs in old: binary search over the
 * suffix array for where needle would sort, then the better neighbour. */
static uint32_t longest_match(const uint8_t *old, uint32_t old_len, const saidx_t *sa, const uint8_t *needle,
                              uint32_t nlen, uint32_t *pos)
{
    uint32_t lo = 0, hi = old_len - 1;
    while (hi - lo > 1) {
        uint32_t mid = lo + (hi - lo) / 2, at = (uint32_t)sa[mid];
        uint32_t n = old_len - at < nlen ? old_len - at : nlen;
        if (memcmp(old + at, needle, n) < 0)
            lo = mid;
        else
            hi = mid;
    }
    uint32_t a = (uint32_t)sa[lo], b = (uint32_t)sa[hi];
    uint32_t la = common_prefix(old + a, old_len - a, needle, nlen), lb = common_prefix(old + b, old_len - b, needle, nlen);
    *pos = la >= lb ? a : b;
    return la >= lb ? la : lb;
}

static int in_old(int64_t i, uint32_t old_len) { return i >= 0 && i < (int64_t)old_len; }

static void diff_body(const uint8_t *old, uint32_t old_len, const saidx_t *sa, const uint8_t *neu, uint32_t new_len,
                      body_buf *b)
{
    uint32_t scan = 0, len = 0, pos = 0;
    uint32_t last_scan = 0, last_pos = 0;
    int64_t last_off = 0; /* old position - new position of the current alignment */
    while (scan < new_len) {
        /* find where a new alignment beats the current one by more than 8
         * bytes (or explains exactly as much, when that is everything) */
        uint32_t old_score = 0;
        scan += len;
        uint32_t counted = scan;
        for (; scan < new_len; scan++) {
            len = longest_match(old, old_len, sa, neu + scan, new_len - scan, &pos);
            for (; counted < scan + len; counted++)
                if (in_old(counted + last_off, old_len) && old[counted + last_off] == neu[counted])
                    old_score++;
            if ((len == old_score && len != 0) || len > old_score + 8)
                break;
            if (in_old(scan + last_off, old_len) && old[scan + last_off] == neu[scan])
                old_score--;
        }
        if (len == old_score && scan != new_len)
            continue;
        /* the current alignment explains new bytes from last_scan on for
         * lenf bytes (most matches per byte); the new one, backwards from
         * scan, lenb bytes */
        uint32_t lenf = 0, lenb = 0;
        {
            int64_t s = 0, best = 0;
            for (uint32_t i = 0; last_scan + i < scan && last_pos + i < old_len; i++) {
                if (old[last_pos + i] == neu[last_scan + i])
                    s++;
                if (s * 2 - (int64_t)(i + 1) > best * 2 - (int64_t)lenf) {
                    best = s;
                    lenf = i + 1;
                }
            }
        }
        if (scan < new_len) {
            int64_t s = 0, best = 0;
            for (uint32_t i = 1; scan >= last_scan + i && pos >= i; i++) {
                if (old[pos - i] == neu[scan - i])
                    s++;
                if (s * 2 - (int64_t)i > best * 2 - (int64_t)lenb) {
                    best = s;
                    lenb = i;
                }
            }
        }
        if (last_scan + lenf > scan - lenb) {
            /* the two extensions overlap: split where the sum is best */
            uint32_t overlap = last_scan + lenf - (scan - lenb), cut = 0;
            int64_t s = 0, best = 0;
            for (uint32_t i = 0; i < overlap; i++) {
                if (neu[last_scan + lenf - overlap + i] == old[last_pos + lenf - overlap + i])
                    s++;
                if (neu[scan - lenb + i] == old[pos - lenb + i])
                    s--;
                if (s > best) {
                    best = s;
                    cut = i + 1;
                }
            }
            lenf = lenf + cut - overlap;
            lenb -= cut;
        }
        put_record(b, old, neu, last_scan, last_pos, lenf, (scan - lenb) - (last_scan + lenf));
        last_scan = scan - lenb;
        last_pos = pos - lenb;
        last_off = (int64_t)pos - scan;
    }
}

static void sha256(const uint8_t *p, uint32_t n, uint8_t out[32])
{
    pf_digest dg;
    pf_digest_begin(&dg, PF_DIGEST_SHA256);
    pf_digest_update(&dg, p, n);
    pf_digest_finish(&dg, out);
}

int pf_delta_make(const uint8_t *old, uint32_t old_len, const uint8_t *neu, uint32_t new_len, pf_delta *out,
                  pf_diag *diag)
{
    if (!out || (!old && old_len) || (!neu && new_len))
        return PF_ERR_ARG;
    memset(out, 0, sizeof *out);
    if (old_len > PF_DELTA_MAX_SIZE || new_len > PF_DELTA_MAX_SIZE)
        return pf_diag_set(diag, PF_ERR_RANGE, "delta of images over %lu MiB is not supported",
                           (unsigned long)(PF_DELTA_MAX_SIZE >> 20));
    body_buf b = {0};
    if (old_len < 2) {
        put_record(&b, old, neu, 0, 0, 0, new_len); /* nothing to match against */
    } else {
        saidx_t *sa = malloc((size_t)old_len * sizeof *sa);
        if (!sa)
            return pf_diag_set(diag, PF_ERR_NOMEM, "no memory for the suffix array of %lu bytes",
                               (unsigned long)old_len);
        if (divsufsort(old, sa, (saidx_t)old_len) != 0) {
            free(sa);
            return pf_diag_set(diag, PF_ERR_NOMEM, "divsufsort failed on %lu bytes", (unsigned long)old_len);
        }
        diff_body(old, old_len, sa, neu, new_len, &b);
        free(sa);
    }
    if (b.oom || b.len > UINT32_MAX) {
        free(b.p);
        return pf_diag_set(diag, PF_ERR_NOMEM, "no memory for the patch");
    }
    out->body = b.p;
    out->body_len = (uint32_t)b.len;
    out->hdr.version = PF_PATCH_VERSION;
    out->hdr.base_size = old_len;
    out->hdr.new_size = new_len;
    sha256(old, old_len, out->hdr.base_sha256);
    sha256(neu, new_len, out->hdr.new_sha256);
    out->hdr.body_len = out->body_len;
    out->hdr.records = b.records;
    out->hdr.stored_len = out->body_len;
    out->hdr.body_crc = pf_crc32(0, out->body, out->body_len);
    return PF_OK;
}
