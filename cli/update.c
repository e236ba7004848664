/* peerflash update: manifest, image and running version (update.h). */
#include "update.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "peerflash/pf_digest.h"
#include "peerflash/pf_sign.h"

/* A whole local file, at most max bytes; -1 with errno. */
static int read_file(const char *path, uint64_t max, uint8_t **data, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return -1;
    size_t cap = 65536, n = 0;
    uint8_t *buf = malloc(cap + 1);
    while (buf) {
        if (n == cap) {
            uint8_t *b = realloc(buf, cap * 2 + 1);
            if (!b) {
                free(buf);
                buf = NULL;
                break;
            }
            buf = b;
            cap *= 2;
        }
        size_t k = fread(buf + n, 1, cap - n, f);
        if (k == 0)
            break;
        n += k;
        if (n > max) {
            free(buf);
            fclose(f);
            errno = EFBIG;
            return -1;
        }
    }
    int err = ferror(f);
    fclose(f);
    if (!buf || err) {
        free(buf);
        errno = buf ? EIO : ENOMEM;
        return -1;
    }
    buf[n] = 0;
    *data = buf;
    *len = n;
    return 0;
}

static int fetch(const char *src, const pf_http_options *http, uint64_t max, uint8_t **data, size_t *len,
                 const char *what, pf_diag *d)
{
    if (pf_http_is_url(src)) {
        pf_http_options o = *http;
        if (o.max_bytes > max)
            o.max_bytes = max;
        int r = pf_http_fetch(src, &o, data, len, d);
        if (r < 0)
            pf_diag_prefix(d, what);
        return r;
    }
    if (read_file(src, max, data, len) < 0)
        return pf_diag_set(d, errno == EFBIG ? PF_ERR_FORMAT : PF_ERR_IO, "%s %s: %s", what, src,
                           errno == EFBIG ? "larger than the size limit" : strerror(errno));
    return PF_OK;
}

int pf_cli_update_load(pf_cli_update *u, const pf_http_options *http, pf_diag *d)
{
    memset(&u->manifest, 0, sizeof u->manifest);
    uint8_t *key = NULL;
    size_t key_len = 0;
    if (read_file(u->key_path, 65536, &key, &key_len) < 0)
        return pf_diag_set(d, PF_ERR_ARG, "--key %s: %s", u->key_path, strerror(errno));
    uint8_t der[200];
    int der_len;
    if (key_len > 10 && !memcmp(key, "-----BEGIN", 10)) {
        der_len = pf_sign_pubkey_der((const char *)key, der, sizeof der, d);
        if (der_len < 0)
            pf_diag_prefix(d, u->key_path);
    } else if (key_len <= sizeof der) { /* the DER public key `keygen --pub` writes */
        memcpy(der, key, key_len);
        der_len = (int)key_len;
    } else {
        der_len = pf_diag_set(d, PF_ERR_FORMAT, "%s: not a PEM key nor a DER public key", u->key_path);
    }
    free(key);
    if (der_len < 0)
        return PF_ERR_ARG;
    uint8_t *text = NULL;
    size_t len = 0;
    int r = fetch(u->manifest_src, http, PF_MANIFEST_MAX_BYTES, &text, &len, "manifest", d);
    if (r < 0)
        return r;
    r = pf_manifest_load(text, len, der, (size_t)der_len, &u->manifest, d);
    free(text);
    if (r < 0)
        pf_diag_prefix(d, u->manifest_src);
    return r;
}

int pf_cli_update_fetch(const pf_cli_update *u, const pf_manifest_image *im, uint32_t app_address,
                        const pf_http_options *http, pf_image_set *set, pf_diag *d)
{
    char url[2048];
    if (pf_manifest_resolve_url(u->manifest_src, im->url, url, sizeof url) < 0)
        return pf_diag_set(d, PF_ERR_FORMAT, "image URL '%s' cannot be resolved against %s", im->url,
                           u->manifest_src);
    uint8_t *data = NULL;
    size_t len = 0;
    /* a server may send more than the manifest says; never more than that is taken */
    int r = fetch(url, http, im->size, &data, &len, "image", d);
    if (r < 0)
        return r;
    if (len != im->size) {
        free(data);
        return pf_diag_set(d, PF_ERR_AUTH, "image %s is %zu bytes, the signed manifest says %lu: refused, nothing "
                                           "written", url, len, (unsigned long)im->size);
    }
    uint8_t h[32];
    pf_digest dg;
    pf_digest_begin(&dg, PF_DIGEST_SHA256);
    pf_digest_update(&dg, data, len);
    pf_digest_finish(&dg, h);
    if (memcmp(h, im->sha256, 32)) {
        free(data);
        return pf_diag_set(d, PF_ERR_AUTH, "image %s: its SHA-256 differs from the signed manifest's: refused, "
                                           "nothing written", url);
    }
    /* the readers take a path: a private temporary file, gone once loaded */
    const char *tmpdir = getenv("TMPDIR");
    char path[512];
    snprintf(path, sizeof path, "%s/peerflash-update-XXXXXX", tmpdir && *tmpdir ? tmpdir : "/tmp");
    int fd = mkstemp(path);
    if (fd < 0) {
        free(data);
        return pf_diag_set(d, PF_ERR_IO, "cannot make a temporary file in %s: %s", tmpdir ? tmpdir : "/tmp",
                           strerror(errno));
    }
    size_t off = 0;
    while (off < len) {
        ssize_t w = write(fd, data + off, len - off);
        if (w <= 0)
            break;
        off += (size_t)w;
    }
    close(fd);
    if (off != len) {
        free(data);
        unlink(path);
        return pf_diag_set(d, PF_ERR_IO, "cannot write the temporary file %s", path);
    }
    /* a format without an address of its own goes where the manifest says,
     * else to the target's application address */
    pf_image_format fmt = pf_image_detect(data, len < 4096 ? len : 4096, im->url);
    char spec[600];
    if (im->have_address || fmt == PF_IMAGE_BIN || fmt == PF_IMAGE_MCUBOOT)
        snprintf(spec, sizeof spec, "%s@0x%lx", path, (unsigned long)(im->have_address ? im->address : app_address));
    else
        snprintf(spec, sizeof spec, "%s", path);
    free(data);
    r = pf_image_set_add(set, spec, d);
    unlink(path);
    if (r == PF_OK)
        r = pf_image_set_finish(set, d);
    if (r < 0) {
        /* name the URL, not the temporary file */
        const char *t = strstr(d->text, path);
        char rest[PF_DIAG_MAX];
        snprintf(rest, sizeof rest, "%s", t ? t + strlen(path) : d->text);
        while (rest[0] == ':' || rest[0] == ' ')
            memmove(rest, rest + 1, strlen(rest));
        pf_diag_set(d, r, "image %s: %s", url, rest);
    }
    return r;
}

int pf_cli_update_running_version(const char *details, pf_manifest_version *v)
{
    static const char key[] = "image version:";
    for (const char *p = details; p && *p;) {
        const char *nl = strchr(p, '\n');
        size_t n = nl ? (size_t)(nl - p) : strlen(p);
        if (n > sizeof key - 1 && !strncmp(p, key, sizeof key - 1)) {
            char val[40];
            const char *s = p + sizeof key - 1;
            while (*s == ' ')
                s++;
            size_t vn = n - (size_t)(s - p);
            if (vn < sizeof val) {
                memcpy(val, s, vn);
                val[vn] = 0;
                if (pf_manifest_parse_version(val, v) == 0)
                    return 1;
            }
        }
        p = nl ? nl + 1 : p + n;
    }
    return 0;
}

void pf_cli_update_free(pf_cli_update *u)
{
    pf_manifest_free(&u->manifest);
}
