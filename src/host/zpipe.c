/* The deflate pipeline (see zpipe.h). */
#include "host/zpipe.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <zlib.h>

#if PF_HAVE_ZOPFLI
#include <zopfli/deflate.h>
#endif

#define ZP_DEPTH_MAX 16u
#define ZOPFLI_ITERATIONS 1 /* 97.2% of zlib -9 on our firmware against 97.0% for 15, at a sixth of the time */
/* zopfli's pace before one is measured: one 32 KiB segment of our firmware
 * with the 32 KiB before it as its window took 1.29 s (39 us a byte) on the
 * 2-core development machine with the simulator and the wire running */
#define ZOPFLI_US_PER_KB0 40000u

int pf_zp_method_parse(const char *name)
{
    if (!name)
        return -1;
    if (!strcmp(name, "fast"))
        return PF_ZP_FAST;
    if (!strcmp(name, "best"))
        return PF_ZP_BEST;
    if (!strcmp(name, "auto"))
        return PF_ZP_AUTO;
    return -1;
}

int pf_zp_method_option(const char *value, pf_diag *diag)
{
    int m = pf_zp_method_parse(value);
    if (m < 0)
        return pf_diag_set(diag, PF_ERR_ARG, "--compress takes fast, best or auto, not '%s'", value ? value : "");
    if (!pf_zp_available(m))
        return pf_diag_set(diag, PF_ERR_UNSUPPORTED,
                           "--compress %s needs zopfli, and this peerflash was built without it "
                           "(libzopfli-dev; -DPF_ZOPFLI=ON): use fast or auto",
                           value);
    return m;
}

const char *pf_zp_method_name(int method)
{
    return method == PF_ZP_BEST ? "best" : method == PF_ZP_AUTO ? "auto" : "fast";
}

int pf_zp_available(int method)
{
#if PF_HAVE_ZOPFLI
    return method >= PF_ZP_FAST && method <= PF_ZP_AUTO;
#else
    return method == PF_ZP_FAST || method == PF_ZP_AUTO; /* auto without zopfli: always zlib */
#endif
}

static int zlib_part(const uint8_t *dict, size_t dict_len, const uint8_t *raw, size_t len, int final, uint8_t **out,
                     size_t *out_len)
{
    z_stream z;
    memset(&z, 0, sizeof z);
    if (deflateInit2(&z, 9, Z_DEFLATED, -15, 8, Z_DEFAULT_STRATEGY) != Z_OK)
        return -1;
    if (dict_len && deflateSetDictionary(&z, dict, (uInt)dict_len) != Z_OK) {
        deflateEnd(&z);
        return -1;
    }
    size_t cap = deflateBound(&z, len) + 16u;
    uint8_t *o = malloc(cap);
    if (!o) {
        deflateEnd(&z);
        return -1;
    }
    z.next_in = (Bytef *)(uintptr_t)raw;
    z.avail_in = (uInt)len;
    z.next_out = o;
    z.avail_out = (uInt)cap;
    int zr = deflate(&z, final ? Z_FINISH : Z_SYNC_FLUSH);
    int ok = final ? zr == Z_STREAM_END : zr == Z_OK && z.avail_in == 0;
    *out_len = cap - z.avail_out;
    deflateEnd(&z);
    if (!ok) {
        free(o);
        return -1;
    }
    *out = o;
    return 0;
}

#if PF_HAVE_ZOPFLI
static int zopfli_part(const uint8_t *dict, size_t dict_len, const uint8_t *raw, size_t len, int final, uint8_t **out,
                       size_t *out_len)
{
    uint8_t *in = malloc(dict_len + len);
    if (!in)
        return -1;
    if (dict_len)
        memcpy(in, dict, dict_len);
    memcpy(in + dict_len, raw, len);
    ZopfliOptions o;
    ZopfliInitOptions(&o);
    o.numiterations = ZOPFLI_ITERATIONS;
    unsigned char bp = 0, *d = NULL;
    size_t n = 0;
    ZopfliDeflatePart(&o, 2, final, in, dict_len, dict_len + len, &bp, &d, &n);
    free(in);
    if (!d)
        return -1;
    size_t tail = final ? 0 : 5;
    uint8_t *r = realloc(d, n + tail);
    if (!r) {
        free(d);
        return -1;
    }
    if (!final) {
        /* a sync flush: an empty stored block (3 zero header bits, zero bits
         * to the byte, LEN 0000 NLEN FFFF). bp is how many bits of the last
         * byte are used (0: none, a new byte starts); unused bits are 0. */
        if (bp == 0 || bp > 5)
            r[n++] = 0;
        r[n++] = 0x00;
        r[n++] = 0x00;
        r[n++] = 0xFF;
        r[n++] = 0xFF;
    }
    *out = r;
    *out_len = n;
    return 0;
}
#endif

int pf_zp_compress(int best, const uint8_t *dict, size_t dict_len, const uint8_t *raw, size_t len, int final,
                   uint8_t **out, size_t *out_len)
{
    if (dict_len > PF_ZP_SEG_MAX) {
        dict += dict_len - PF_ZP_SEG_MAX;
        dict_len = PF_ZP_SEG_MAX;
    }
#if PF_HAVE_ZOPFLI
    if (best)
        return zopfli_part(dict, dict_len, raw, len, final, out, out_len);
#else
    if (best)
        return -1;
#endif
    return zlib_part(dict, dict_len, raw, len, final, out, out_len);
}

/* ---- the pipeline ------------------------------------------------------------- */

enum { SLOT_FREE, SLOT_QUEUED, SLOT_WORKING, SLOT_DONE, SLOT_FAILED };

typedef struct zp_slot {
    uint8_t *raw;
    size_t raw_len;
    uint32_t tag;
    int dict, final, best, state;
    uint8_t *out;
    size_t out_len;
} zp_slot;

struct pf_zpipe {
    pthread_t th;
    pthread_mutex_t mu;
    pthread_cond_t cv_work, cv_done;
    int method, stop, started;
    unsigned depth, head, held, worked; /* held slots from head; worked: of them, taken by the worker */
    zp_slot slot[ZP_DEPTH_MAX];
    uint8_t *dict;                      /* the worker's copy of the previous segment */
    size_t dict_len;
    uint32_t line_bps;
    size_t sent;                        /* of the oldest segment's data */
    uint32_t zopfli_us_per_kb;          /* measured pace of zopfli */
    pf_zp_stats st;
};

static uint64_t now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

/* auto: zopfli for this segment when the compressed data waiting for the
 * line (done, not yet sent) lasts twice zopfli's expected time on it (its
 * pace varies with the data and the machine's load: a segment the line
 * waits for costs far more than zopfli saves). Called with the lock held. */
static int choose_best(pf_zpipe *z, const zp_slot *sl)
{
    if (z->method != PF_ZP_AUTO)
        return z->method == PF_ZP_BEST;
    if (!pf_zp_available(PF_ZP_BEST) || !z->line_bps)
        return 0;
    uint64_t waiting = 0;
    for (unsigned i = 0; i < z->held; i++) {
        const zp_slot *o = &z->slot[(z->head + i) % z->depth];
        if (o->state == SLOT_DONE)
            waiting += o->out_len;
    }
    if (z->slot[z->head].state == SLOT_DONE)
        waiting -= z->sent < z->slot[z->head].out_len ? z->sent : z->slot[z->head].out_len;
    uint64_t line_us = waiting * 1000000u / z->line_bps;
    uint64_t zop_us = (uint64_t)sl->raw_len * z->zopfli_us_per_kb / 1024u;
    return 2u * zop_us < line_us;
}

static void *worker(void *arg)
{
    pf_zpipe *z = arg;
    pthread_mutex_lock(&z->mu);
    for (;;) {
        while (!z->stop && z->worked == z->held)
            pthread_cond_wait(&z->cv_work, &z->mu);
        if (z->stop)
            break;
        zp_slot *sl = &z->slot[(z->head + z->worked) % z->depth];
        sl->state = SLOT_WORKING;
        sl->best = choose_best(z, sl);
        pthread_mutex_unlock(&z->mu);

        uint64_t t0 = now_us();
        uint8_t *out = NULL;
        size_t out_len = 0;
        int r = pf_zp_compress(sl->best, z->dict, sl->dict ? z->dict_len : 0, sl->raw, sl->raw_len, sl->final, &out,
                               &out_len);
        uint64_t us = now_us() - t0;
        size_t keep = sl->raw_len < PF_ZP_SEG_MAX ? sl->raw_len : PF_ZP_SEG_MAX;
        memcpy(z->dict, sl->raw + sl->raw_len - keep, keep);
        z->dict_len = keep;

        pthread_mutex_lock(&z->mu);
        sl->out = out;
        sl->out_len = out_len;
        sl->state = r == 0 ? SLOT_DONE : SLOT_FAILED;
        if (sl->best && sl->raw_len >= 1024u) {
            uint32_t pace = (uint32_t)(us * 1024u / sl->raw_len);
            z->zopfli_us_per_kb = (z->zopfli_us_per_kb + pace + 1u) / 2u; /* weighs the last ones most */
        }
        if (sl->best)
            z->st.segs_best++;
        else
            z->st.segs_fast++;
        z->st.raw_bytes += sl->raw_len;
        z->st.out_bytes += out_len;
        z->st.cpu_ms += (uint32_t)(us / 1000u);
        z->worked++;
        pthread_cond_broadcast(&z->cv_done);
    }
    pthread_mutex_unlock(&z->mu);
    return NULL;
}

pf_zpipe *pf_zpipe_new(int method, unsigned depth)
{
    if (!pf_zp_available(method))
        return NULL;
    if (depth < 2)
        depth = 2;
    if (depth > ZP_DEPTH_MAX)
        depth = ZP_DEPTH_MAX;
    pf_zpipe *z = calloc(1, sizeof *z);
    if (!z)
        return NULL;
    z->method = method;
    z->depth = depth;
    z->zopfli_us_per_kb = ZOPFLI_US_PER_KB0;
    z->dict = malloc(PF_ZP_SEG_MAX);
    int ok = z->dict != NULL;
    for (unsigned i = 0; i < depth && ok; i++)
        ok = (z->slot[i].raw = malloc(PF_ZP_SEG_MAX)) != NULL;
    pthread_mutex_init(&z->mu, NULL);
    pthread_cond_init(&z->cv_work, NULL);
    pthread_cond_init(&z->cv_done, NULL);
    if (ok && pthread_create(&z->th, NULL, worker, z) == 0)
        z->started = 1;
    else
        ok = 0;
    if (!ok) {
        pf_zpipe_free(z);
        return NULL;
    }
    return z;
}

void pf_zpipe_free(pf_zpipe *z)
{
    if (!z)
        return;
    if (z->started) {
        pthread_mutex_lock(&z->mu);
        z->stop = 1;
        pthread_cond_broadcast(&z->cv_work);
        pthread_mutex_unlock(&z->mu);
        pthread_join(z->th, NULL);
    }
    for (unsigned i = 0; i < ZP_DEPTH_MAX; i++) {
        free(z->slot[i].raw);
        free(z->slot[i].out);
    }
    free(z->dict);
    pthread_cond_destroy(&z->cv_done);
    pthread_cond_destroy(&z->cv_work);
    pthread_mutex_destroy(&z->mu);
    free(z);
}

void pf_zpipe_set_rate(pf_zpipe *z, uint32_t bytes_per_s)
{
    pthread_mutex_lock(&z->mu);
    z->line_bps = bytes_per_s;
    pthread_mutex_unlock(&z->mu);
}

unsigned pf_zpipe_held(const pf_zpipe *z)
{
    return z->held; /* only the writer changes it */
}

unsigned pf_zpipe_depth(const pf_zpipe *z)
{
    return z->depth;
}

int pf_zpipe_put(pf_zpipe *z, const uint8_t *raw, size_t len, uint32_t tag, int dict, int final)
{
    if (len > PF_ZP_SEG_MAX || !len)
        return -1;
    pthread_mutex_lock(&z->mu);
    if (z->held == z->depth) {
        pthread_mutex_unlock(&z->mu);
        return -1;
    }
    zp_slot *sl = &z->slot[(z->head + z->held) % z->depth];
    pthread_mutex_unlock(&z->mu);
    /* the slot is free: the worker does not look at it until it is held */
    memcpy(sl->raw, raw, len);
    sl->raw_len = len;
    sl->tag = tag;
    sl->dict = dict;
    sl->final = final;
    sl->best = 0;
    free(sl->out);
    sl->out = NULL;
    sl->out_len = 0;
    pthread_mutex_lock(&z->mu);
    sl->state = SLOT_QUEUED;
    z->held++;
    pthread_cond_signal(&z->cv_work);
    pthread_mutex_unlock(&z->mu);
    return 0;
}

int pf_zpipe_oldest(pf_zpipe *z, pf_zp_seg *seg)
{
    pthread_mutex_lock(&z->mu);
    if (!z->held) {
        pthread_mutex_unlock(&z->mu);
        return -1;
    }
    zp_slot *sl = &z->slot[z->head];
    if (sl->state != SLOT_DONE && sl->state != SLOT_FAILED) {
        uint64_t t0 = now_us();
        while (sl->state != SLOT_DONE && sl->state != SLOT_FAILED)
            pthread_cond_wait(&z->cv_done, &z->mu);
        z->st.waits++;
        z->st.wait_ms += (uint32_t)((now_us() - t0) / 1000u);
    }
    int r = sl->state == SLOT_DONE ? 0 : -1;
    seg->raw = sl->raw;
    seg->raw_len = sl->raw_len;
    seg->tag = sl->tag;
    seg->dict = sl->dict;
    seg->final = sl->final;
    seg->best = sl->best;
    seg->out = sl->out;
    seg->out_len = sl->out_len;
    pthread_mutex_unlock(&z->mu);
    return r;
}

void pf_zpipe_progress(pf_zpipe *z, size_t sent)
{
    pthread_mutex_lock(&z->mu);
    z->sent = sent;
    pthread_mutex_unlock(&z->mu);
}

void pf_zpipe_release(pf_zpipe *z)
{
    pthread_mutex_lock(&z->mu);
    if (z->held && z->worked) {
        zp_slot *sl = &z->slot[z->head];
        free(sl->out);
        sl->out = NULL;
        sl->state = SLOT_FREE;
        z->head = (z->head + 1) % z->depth;
        z->held--;
        z->worked--;
        z->sent = 0;
    }
    pthread_mutex_unlock(&z->mu);
}

void pf_zpipe_clear(pf_zpipe *z)
{
    pthread_mutex_lock(&z->mu);
    while (z->worked < z->held && z->slot[(z->head + z->worked) % z->depth].state == SLOT_WORKING)
        pthread_cond_wait(&z->cv_done, &z->mu);
    for (unsigned i = 0; i < z->held; i++) {
        zp_slot *sl = &z->slot[(z->head + i) % z->depth];
        free(sl->out);
        sl->out = NULL;
        sl->state = SLOT_FREE;
    }
    z->head = (z->head + z->held) % z->depth;
    z->held = 0;
    z->worked = 0;
    z->sent = 0;
    pthread_mutex_unlock(&z->mu);
}

void pf_zpipe_stats(const pf_zpipe *z, pf_zp_stats *st)
{
    pthread_mutex_lock((pthread_mutex_t *)&z->mu);
    *st = z->st;
    pthread_mutex_unlock((pthread_mutex_t *)&z->mu);
}
