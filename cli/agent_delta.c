/* Delta updates from the command line (docs/AGENT.md, "Delta updates").
 *
 * The host finds the base of a patch in a cache of the images it sent:
 * files named after the image's SHA-256 TLV (the hash of header, body and
 * protected TLVs), which is what the agent reports in HELLO as its running
 * image. The key is content, so an entry is never stale: adding every image
 * written (whether or not the flash then succeeded) cannot mislead; a base
 * whose file differs (the same binary signed twice) is refused by the
 * device at BEGIN, and the driver then sends the image whole. */
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <zlib.h>

#include "agent_delta.h"
#include "cli.h"
#include "peerflash/pf_agent_host.h"
#include "peerflash/pf_boot.h"
#include "peerflash/pf_bytes.h"
#include "peerflash/pf_delta.h"
#include "peerflash/pf_digest.h"

int pf_cli_read_file(const char *path, uint8_t **data, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return -1;
    size_t cap = 65536, n = 0;
    uint8_t *buf = malloc(cap);
    for (;;) {
        if (!buf) {
            fclose(f);
            errno = ENOMEM;
            return -1;
        }
        size_t k = fread(buf + n, 1, cap - n, f);
        n += k;
        if (k == 0)
            break;
        if (n == cap) {
            uint8_t *nb = realloc(buf, cap * 2);
            if (!nb)
                free(buf);
            buf = nb;
            cap *= 2;
        }
    }
    int err = ferror(f);
    fclose(f);
    if (err) {
        free(buf);
        errno = EIO;
        return -1;
    }
    *data = buf;
    *len = n;
    return 0;
}

int pf_cli_cache_dir(char *out, size_t cap)
{
    const char *e = getenv("PEERFLASH_CACHE_DIR"), *x = getenv("XDG_CACHE_HOME"), *home = getenv("HOME");
    int n;
    if (e && *e)
        n = snprintf(out, cap, "%s", e);
    else if (x && *x)
        n = snprintf(out, cap, "%s/peerflash/images", x);
    else if (home && *home)
        n = snprintf(out, cap, "%s/.cache/peerflash/images", home);
    else
        return -1;
    return n > 0 && (size_t)n < cap ? 0 : -1;
}

/* The key: SHA-256 over header, body and protected TLVs (the hash TLV a
 * valid image carries). -1 for a file that is not an MCUboot image. */
static int image_key(const uint8_t *img, size_t len, char hex[65])
{
    if (len < PF_MCUBOOT_HEADER_SIZE || pf_get_le32(img) != PF_MCUBOOT_MAGIC)
        return -1;
    uint64_t covered = (uint64_t)pf_get_le16(img + 8) + pf_get_le32(img + 12) + pf_get_le16(img + 10);
    if (covered > len)
        return -1;
    uint8_t h[32];
    pf_digest dg;
    pf_digest_begin(&dg, PF_DIGEST_SHA256);
    pf_digest_update(&dg, img, (size_t)covered);
    pf_digest_finish(&dg, h);
    for (int i = 0; i < 32; i++)
        snprintf(hex + 2 * i, 3, "%02x", h[i]);
    return 0;
}

static int mkdirs(const char *path)
{
    char p[1024];
    if (snprintf(p, sizeof p, "%s", path) >= (int)sizeof p)
        return -1;
    for (char *s = p + 1; *s; s++)
        if (*s == '/') {
            *s = 0;
            if (mkdir(p, 0755) < 0 && errno != EEXIST)
                return -1;
            *s = '/';
        }
    return mkdir(p, 0755) < 0 && errno != EEXIST ? -1 : 0;
}

/* Keeps the cache at PF_CACHE_MAX images: the least recently written go. */
#define PF_CACHE_MAX 32
static void cache_trim(const char *dir)
{
    DIR *d = opendir(dir);
    if (!d)
        return;
    char names[PF_CACHE_MAX + 1][80];
    time_t when[PF_CACHE_MAX + 1];
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        size_t len = strlen(e->d_name);
        if (len != 68 || strcmp(e->d_name + 64, ".img"))
            continue; /* only <64 hex>.img: nothing else is ours */
        char p[1024];
        struct stat st;
        snprintf(p, sizeof p, "%s/%s", dir, e->d_name);
        if (stat(p, &st) < 0)
            continue;
        /* keep the newest PF_CACHE_MAX; an older one than all kept is removed at once */
        int at = n;
        while (at > 0 && when[at - 1] < st.st_mtime)
            at--;
        if (n == PF_CACHE_MAX + 1) {
            if (at == n) { /* older than every kept one */
                unlink(p);
                continue;
            }
            char q[1024];
            snprintf(q, sizeof q, "%s/%s", dir, names[n - 1]);
            unlink(q);
            n--;
        }
        memmove(names + at + 1, names + at, sizeof names[0] * (size_t)(n - at));
        memmove(when + at + 1, when + at, sizeof when[0] * (size_t)(n - at));
        snprintf(names[at], sizeof names[at], "%s", e->d_name);
        when[at] = st.st_mtime;
        n++;
    }
    closedir(d);
    if (n == PF_CACHE_MAX + 1) {
        char q[1024];
        snprintf(q, sizeof q, "%s/%s", dir, names[n - 1]);
        unlink(q);
    }
}

/* Adds an image to the cache (written under a temporary name, then
 * renamed: a reader never sees half a file). Failures only cost a delta. */
static void cache_store(const uint8_t *img, size_t len)
{
    char dir[900], hex[65], path[1024], tmp[1100];
    struct stat st;
    if (pf_cli_cache_dir(dir, sizeof dir) < 0 || image_key(img, len, hex) < 0)
        return;
    snprintf(path, sizeof path, "%s/%s.img", dir, hex);
    if (stat(path, &st) == 0 && (size_t)st.st_size == len)
        return;
    if (mkdirs(dir) < 0)
        return;
    snprintf(tmp, sizeof tmp, "%s.%ld.tmp", path, (long)getpid());
    FILE *f = fopen(tmp, "wb");
    if (!f)
        return;
    int ok = fwrite(img, 1, len, f) == len;
    ok = fclose(f) == 0 && ok;
    if (!ok || rename(tmp, path) != 0)
        unlink(tmp);
    else
        cache_trim(dir);
}

/* Bytes of p after zlib (level 6): to compare a patch with its image. */
static unsigned long deflated_size(const uint8_t *p, uint32_t n)
{
    uLongf out = compressBound(n);
    uint8_t *buf = malloc(out);
    if (!buf || compress2(buf, &out, p, n, 6) != Z_OK)
        out = n;
    free(buf);
    return (unsigned long)out;
}

typedef struct cli_delta {
    const char *from_path; /* --delta-from, or NULL */
    uint8_t *from;         /* its content */
    size_t from_len;
    int use_cache, quiet; /* use_cache: patch against a cached running image (not --no-delta) */
    pf_delta patch;
} cli_delta;

static cli_delta the_delta; /* one flash per process */

static int provide(void *user, const uint8_t running_hash[32], const uint8_t *image, uint32_t len,
                   pf_agent_delta_patch *out)
{
    cli_delta *c = user;
    cache_store(image, len); /* content-addressed: harmless even if this flash fails */
    if (!c->from_path && !c->use_cache)
        return 0; /* --no-delta: the image goes whole */
    const uint8_t *base = c->from;
    size_t base_len = c->from_len;
    uint8_t *cached = NULL;
    const char *what = c->from_path;
    char path[1024];
    if (!base) {
        static const uint8_t none[32];
        char dir[900];
        if (!c->use_cache || !memcmp(running_hash, none, 32) || pf_cli_cache_dir(dir, sizeof dir) < 0)
            return 0;
        int n = snprintf(path, sizeof path, "%s/", dir);
        for (int i = 0; i < 32 && n > 0; i++)
            n += snprintf(path + n, sizeof path - (size_t)n, "%02x", running_hash[i]);
        snprintf(path + n, sizeof path - (size_t)n, ".img");
        if (pf_cli_read_file(path, &cached, &base_len) < 0)
            return 0; /* not in the cache: the image goes whole */
        base = cached;
        what = "the cached running image";
    }
    if (base_len == len && !memcmp(base, image, len)) {
        free(cached);
        return 0;
    }
    pf_diag d = {0};
    pf_delta_free(&c->patch);
    int r = pf_delta_make(base, (uint32_t)base_len, image, len, &c->patch, &d);
    free(cached);
    if (r < 0) {
        pf_cli_error("delta: %s (sending the image whole)", d.text);
        return 0;
    }
    /* the body is about as long as the image (mostly zero differences): what
     * counts is how small it compresses, against the image itself */
    unsigned long zpatch = deflated_size(c->patch.body, c->patch.body_len), zimage = deflated_size(image, len);
    if (zpatch >= zimage && !c->from_path) {
        pf_delta_free(&c->patch); /* nothing in common worth a patch */
        return 0;
    }
    if (!c->quiet)
        fprintf(stderr, "delta against %s: patch of %lu bytes (%lu records; ~%lu deflated, the image ~%lu)\n", what,
                (unsigned long)c->patch.body_len, (unsigned long)c->patch.hdr.records, zpatch, zimage);
    out->body = c->patch.body;
    out->body_len = c->patch.body_len;
    out->base_size = c->patch.hdr.base_size;
    memcpy(out->base_sha256, c->patch.hdr.base_sha256, 32);
    out->fallback = c->from_path == NULL;
    return 1;
}

int pf_cli_agent_delta_setup(const pf_target_ops *ops, void *state, const char *delta_from, int use_cache, int quiet,
                             pf_diag *diag)
{
    cli_delta *c = &the_delta;
    memset(c, 0, sizeof *c);
    c->from_path = delta_from;
    c->use_cache = use_cache;
    c->quiet = quiet;
    if (delta_from) {
        if (pf_cli_read_file(delta_from, &c->from, &c->from_len) < 0)
            return pf_diag_set(diag, PF_ERR_FORMAT, "--delta-from %s: %s", delta_from, strerror(errno));
        if (c->from_len < PF_MCUBOOT_HEADER_SIZE || pf_get_le32(c->from) != PF_MCUBOOT_MAGIC)
            return pf_diag_set(diag, PF_ERR_FORMAT,
                               "--delta-from %s is not an MCUboot image (the signed image the device runs)",
                               delta_from);
        if (c->from_len > PF_DELTA_MAX_SIZE)
            return pf_diag_set(diag, PF_ERR_RANGE, "--delta-from %s is larger than %lu MiB", delta_from,
                               (unsigned long)(PF_DELTA_MAX_SIZE >> 20));
    }
    return ops->set_delta(state, provide, c);
}
