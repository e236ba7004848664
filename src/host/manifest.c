/* Signed update manifests: envelope check, payload parsing (json-c),
 * selection of the entry for a chip, and relative URLs (pf_manifest.h). */
#include <json-c/json.h>
#include <mbedtls/base64.h>
#include <mbedtls/sha256.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "image/text.h"
#include "peerflash/pf_manifest.h"
#include "peerflash/pf_sign.h"

#define SIG_MAX 80 /* DER ECDSA-P256: at most 72 bytes */

void pf_manifest_free(pf_manifest *m)
{
    if (!m)
        return;
    free(m->images);
    memset(m, 0, sizeof *m);
}

int pf_manifest_parse_version(const char *s, pf_manifest_version *v)
{
    uint32_t part[4] = {0, 0, 0, 0};
    unsigned i = 0;
    const char *p = s;
    if (!s || !*s)
        return -1;
    for (;;) {
        if (*p < '0' || *p > '9')
            return -1;
        uint64_t x = 0;
        while (*p >= '0' && *p <= '9') {
            x = x * 10 + (uint64_t)(*p++ - '0');
            if (x > 0xFFFFFFFFu)
                return -1;
        }
        part[i++] = (uint32_t)x;
        if (!*p)
            break;
        /* dots up to REVISION, then '+' for BUILD */
        if (*p == '.' && i < 3)
            p++;
        else if (*p == '+' && i <= 3) {
            p++;
            i = 3;
        } else
            return -1;
    }
    v->major = part[0];
    v->minor = part[1];
    v->revision = part[2];
    v->build = part[3];
    return 0;
}

int pf_manifest_version_cmp(const pf_manifest_version *a, const pf_manifest_version *b)
{
    const uint32_t x[4] = {a->major, a->minor, a->revision, a->build};
    const uint32_t y[4] = {b->major, b->minor, b->revision, b->build};
    for (int i = 0; i < 4; i++)
        if (x[i] != y[i])
            return x[i] < y[i] ? -1 : 1;
    return 0;
}

static int parse_hex(const char *s, uint8_t *out, size_t n)
{
    if (strlen(s) != 2 * n)
        return -1;
    for (size_t i = 0; i < n; i++) {
        int hi = pf_text_hexval(s[2 * i]), lo = pf_text_hexval(s[2 * i + 1]);
        if (hi < 0 || lo < 0)
            return -1;
        out[i] = (uint8_t)(hi << 4 | lo);
    }
    return 0;
}

/* A string member that fits in cap (with its NUL); optional ones may be
 * absent (then ""). */
static int get_string(struct json_object *o, const char *key, int required, char *out, size_t cap, unsigned idx,
                      pf_diag *d)
{
    struct json_object *v;
    out[0] = 0;
    if (!json_object_object_get_ex(o, key, &v) || json_object_is_type(v, json_type_null)) {
        if (required)
            return pf_diag_set(d, PF_ERR_FORMAT, "manifest image %u: \"%s\" is missing", idx, key);
        return PF_OK;
    }
    if (!json_object_is_type(v, json_type_string))
        return pf_diag_set(d, PF_ERR_FORMAT, "manifest image %u: \"%s\" must be a string", idx, key);
    const char *s = json_object_get_string(v);
    size_t n = (size_t)json_object_get_string_len(v);
    if (n != strlen(s))
        return pf_diag_set(d, PF_ERR_FORMAT, "manifest image %u: \"%s\" holds a NUL byte", idx, key);
    if (n >= cap)
        return pf_diag_set(d, PF_ERR_FORMAT, "manifest image %u: \"%s\" is longer than %zu characters", idx, key,
                           cap - 1);
    if (required && n == 0)
        return pf_diag_set(d, PF_ERR_FORMAT, "manifest image %u: \"%s\" is empty", idx, key);
    memcpy(out, s, n + 1);
    return PF_OK;
}

static int parse_image(struct json_object *o, unsigned idx, pf_manifest_image *im, pf_diag *d)
{
    if (!json_object_is_type(o, json_type_object))
        return pf_diag_set(d, PF_ERR_FORMAT, "manifest image %u is not an object", idx);
    char sha[80], addr[24];
    int r;
    if ((r = get_string(o, "target", 1, im->target, sizeof im->target, idx, d)) < 0 ||
        (r = get_string(o, "chip", 0, im->chip, sizeof im->chip, idx, d)) < 0 ||
        (r = get_string(o, "board", 0, im->board, sizeof im->board, idx, d)) < 0 ||
        (r = get_string(o, "version", 1, im->version, sizeof im->version, idx, d)) < 0 ||
        (r = get_string(o, "sha256", 1, sha, sizeof sha, idx, d)) < 0 ||
        (r = get_string(o, "url", 1, im->url, sizeof im->url, idx, d)) < 0 ||
        (r = get_string(o, "address", 0, addr, sizeof addr, idx, d)) < 0)
        return r;
    if (pf_manifest_parse_version(im->version, &im->ver) < 0)
        return pf_diag_set(d, PF_ERR_FORMAT, "manifest image %u: version \"%s\" is not MAJOR[.MINOR[.REVISION]][+BUILD]",
                           idx, im->version);
    if (parse_hex(sha, im->sha256, 32) < 0)
        return pf_diag_set(d, PF_ERR_FORMAT, "manifest image %u: sha256 must be 64 hex digits", idx);
    struct json_object *v;
    if (!json_object_object_get_ex(o, "size", &v) || !json_object_is_type(v, json_type_int))
        return pf_diag_set(d, PF_ERR_FORMAT, "manifest image %u: \"size\" must be a whole number of bytes", idx);
    int64_t size = json_object_get_int64(v);
    if (size <= 0 || size > 0xFFFFFFFFll)
        return pf_diag_set(d, PF_ERR_FORMAT, "manifest image %u: size %ld is out of range (1 to 4 GiB)", idx,
                           (long)size);
    im->size = (uint64_t)size;
    if (addr[0]) {
        char *end = NULL;
        unsigned long long a = strtoull(addr, &end, 0);
        if (!end || *end || end == addr || a > 0xFFFFFFFFull || addr[0] == '-')
            return pf_diag_set(d, PF_ERR_FORMAT, "manifest image %u: address \"%s\" is not a 32-bit number", idx,
                               addr);
        im->have_address = 1;
        im->address = (uint32_t)a;
    }
    return PF_OK;
}

int pf_manifest_parse_payload(const char *text, size_t len, pf_manifest *m, pf_diag *diag)
{
    memset(m, 0, sizeof *m);
    if (len > PF_MANIFEST_MAX_BYTES)
        return pf_diag_set(diag, PF_ERR_FORMAT, "manifest of %zu bytes is over the %u-byte limit", len,
                           PF_MANIFEST_MAX_BYTES);
    if (memchr(text, 0, len))
        return pf_diag_set(diag, PF_ERR_FORMAT, "manifest holds a NUL byte: not JSON text");
    struct json_tokener *tok = json_tokener_new();
    if (!tok)
        return pf_diag_set(diag, PF_ERR_NOMEM, "out of memory");
    json_tokener_set_flags(tok, JSON_TOKENER_STRICT);
    struct json_object *root = json_tokener_parse_ex(tok, text, (int)len);
    enum json_tokener_error jerr = json_tokener_get_error(tok);
    size_t used = tok->char_offset;
    json_tokener_free(tok);
    int err = PF_OK;
    if (!root || jerr != json_tokener_success) {
        err = pf_diag_set(diag, PF_ERR_FORMAT, "manifest is not JSON: %s at byte %zu",
                          jerr == json_tokener_continue ? "it ends too early" : json_tokener_error_desc(jerr), used);
        goto out;
    }
    for (size_t i = used; i < len; i++)
        if (text[i] != ' ' && text[i] != '\n' && text[i] != '\r' && text[i] != '\t') {
            err = pf_diag_set(diag, PF_ERR_FORMAT, "manifest has data after its JSON object (byte %zu)", i);
            goto out;
        }
    struct json_object *v, *images;
    if (!json_object_is_type(root, json_type_object)) {
        err = pf_diag_set(diag, PF_ERR_FORMAT, "manifest is not a JSON object");
        goto out;
    }
    if (!json_object_object_get_ex(root, "manifest", &v) || !json_object_is_type(v, json_type_int) ||
        json_object_get_int64(v) != PF_MANIFEST_FORMAT) {
        err = pf_diag_set(diag, PF_ERR_FORMAT, "manifest lacks \"manifest\": %d (the format version this "
                                               "peerflash reads)", PF_MANIFEST_FORMAT);
        goto out;
    }
    if (json_object_object_get_ex(root, "name", &v)) {
        if (!json_object_is_type(v, json_type_string) || json_object_get_string_len(v) >= (int)sizeof m->name) {
            err = pf_diag_set(diag, PF_ERR_FORMAT, "manifest \"name\" must be a string of at most %zu characters",
                              sizeof m->name - 1);
            goto out;
        }
        strcpy(m->name, json_object_get_string(v));
    }
    if (!json_object_object_get_ex(root, "images", &images) || !json_object_is_type(images, json_type_array)) {
        err = pf_diag_set(diag, PF_ERR_FORMAT, "manifest lacks an \"images\" array");
        goto out;
    }
    size_t n = json_object_array_length(images);
    if (n == 0 || n > PF_MANIFEST_MAX_IMAGES) {
        err = pf_diag_set(diag, PF_ERR_FORMAT, "manifest lists %zu images (1 to %u allowed)", n,
                          PF_MANIFEST_MAX_IMAGES);
        goto out;
    }
    m->images = calloc(n, sizeof *m->images);
    if (!m->images) {
        err = pf_diag_set(diag, PF_ERR_NOMEM, "out of memory");
        goto out;
    }
    for (size_t i = 0; i < n; i++) {
        err = parse_image(json_object_array_get_idx(images, i), (unsigned)i, &m->images[i], diag);
        if (err < 0)
            goto out;
        m->n_images = (unsigned)i + 1;
    }
out:
    json_object_put(root);
    if (err < 0)
        pf_manifest_free(m);
    return err;
}

static void key_id_of(const uint8_t *der, size_t len, uint8_t id[8])
{
    uint8_t h[32];
    mbedtls_sha256_ret(der, len, h, 0);
    memcpy(id, h, 8);
}

int pf_manifest_load(const uint8_t *data, size_t len, const uint8_t *pubkey_der, size_t pubkey_len, pf_manifest *m,
                     pf_diag *diag)
{
    memset(m, 0, sizeof *m);
    if (len > PF_MANIFEST_MAX_BYTES)
        return pf_diag_set(diag, PF_ERR_FORMAT, "manifest file of %zu bytes is over the %u-byte limit", len,
                           PF_MANIFEST_MAX_BYTES);
    if (memchr(data, 0, len))
        return pf_diag_set(diag, PF_ERR_FORMAT, "manifest file holds a NUL byte: not a signed manifest");
    struct json_tokener *tok = json_tokener_new();
    if (!tok)
        return pf_diag_set(diag, PF_ERR_NOMEM, "out of memory");
    json_tokener_set_flags(tok, JSON_TOKENER_STRICT);
    struct json_object *root = json_tokener_parse_ex(tok, (const char *)data, (int)len);
    enum json_tokener_error jerr = json_tokener_get_error(tok);
    json_tokener_free(tok);
    int err = PF_OK;
    struct json_object *fmt, *payload, *sig, *kid;
    if (!root || jerr != json_tokener_success || !json_object_is_type(root, json_type_object)) {
        err = pf_diag_set(diag, PF_ERR_FORMAT, "not a signed manifest: the file is not a JSON object (%s)",
                          jerr == json_tokener_success ? "another JSON value" : json_tokener_error_desc(jerr));
        goto out;
    }
    if (!json_object_object_get_ex(root, "peerflash_manifest", &fmt) || !json_object_is_type(fmt, json_type_int) ||
        json_object_get_int64(fmt) != PF_MANIFEST_FORMAT || !json_object_object_get_ex(root, "payload", &payload) ||
        !json_object_is_type(payload, json_type_string) || !json_object_object_get_ex(root, "signature", &sig) ||
        !json_object_is_type(sig, json_type_string)) {
        err = pf_diag_set(diag, PF_ERR_FORMAT, "not a signed manifest: it needs \"peerflash_manifest\": %d, "
                                               "\"payload\" and \"signature\" (made by peerflash sign --manifest)",
                          PF_MANIFEST_FORMAT);
        goto out;
    }
    uint8_t want_id[8];
    key_id_of(pubkey_der, pubkey_len, want_id);
    if (json_object_object_get_ex(root, "key_id", &kid)) {
        uint8_t id[8];
        if (!json_object_is_type(kid, json_type_string) || parse_hex(json_object_get_string(kid), id, 8) < 0) {
            err = pf_diag_set(diag, PF_ERR_FORMAT, "manifest \"key_id\" must be 16 hex digits");
            goto out;
        }
        if (memcmp(id, want_id, 8)) {
            err = pf_diag_set(diag, PF_ERR_AUTH,
                              "manifest is signed by key %02x%02x%02x%02x%02x%02x%02x%02x, not by the key given "
                              "(%02x%02x%02x%02x%02x%02x%02x%02x)",
                              id[0], id[1], id[2], id[3], id[4], id[5], id[6], id[7], want_id[0], want_id[1],
                              want_id[2], want_id[3], want_id[4], want_id[5], want_id[6], want_id[7]);
            goto out;
        }
    }
    uint8_t der[SIG_MAX];
    size_t der_len = 0;
    const char *b64 = json_object_get_string(sig);
    if (mbedtls_base64_decode(der, sizeof der, &der_len, (const unsigned char *)b64, strlen(b64)) != 0 ||
        der_len == 0) {
        err = pf_diag_set(diag, PF_ERR_AUTH, "manifest signature is not base64 of an ECDSA signature");
        goto out;
    }
    const char *text = json_object_get_string(payload);
    size_t text_len = (size_t)json_object_get_string_len(payload);
    uint8_t hash[32];
    mbedtls_sha256_ret((const unsigned char *)text, text_len, hash, 0);
    if (pf_ecdsa_p256_verify(NULL, pubkey_der, pubkey_len, hash, der, der_len) != PF_OK) {
        err = pf_diag_set(diag, PF_ERR_AUTH, "manifest signature does not match its content and the key given: "
                                             "the manifest was changed after signing, or signed by another key");
        goto out;
    }
    err = pf_manifest_parse_payload(text, text_len, m, diag);
    if (err == PF_OK)
        memcpy(m->key_id, want_id, 8);
out:
    json_object_put(root);
    return err;
}

int pf_manifest_sign(const char *payload, size_t len, const char *key_pem, char **out, size_t *out_len,
                     pf_diag *diag)
{
    *out = NULL;
    *out_len = 0;
    pf_manifest check;
    int err = pf_manifest_parse_payload(payload, len, &check, diag);
    if (err < 0)
        return err;
    pf_manifest_free(&check);
    uint8_t der[200];
    int dl = pf_sign_pubkey_der(key_pem, der, sizeof der, diag);
    if (dl < 0)
        return dl;
    uint8_t hash[32], sig[SIG_MAX];
    mbedtls_sha256_ret((const unsigned char *)payload, len, hash, 0);
    int sl = pf_sign_digest(key_pem, hash, sig, sizeof sig, diag);
    if (sl < 0)
        return sl;
    unsigned char b64[2 * SIG_MAX];
    size_t b64_len = 0;
    if (mbedtls_base64_encode(b64, sizeof b64, &b64_len, sig, (size_t)sl) != 0)
        return pf_diag_set(diag, PF_ERR_NOMEM, "signature does not fit");
    uint8_t id[8];
    key_id_of(der, (size_t)dl, id);
    char idhex[17];
    for (int i = 0; i < 8; i++) {
        idhex[2 * i] = "0123456789abcdef"[id[i] >> 4];
        idhex[2 * i + 1] = "0123456789abcdef"[id[i] & 15];
    }
    idhex[16] = 0;
    struct json_object *root = json_object_new_object();
    if (!root)
        return pf_diag_set(diag, PF_ERR_NOMEM, "out of memory");
    json_object_object_add(root, "peerflash_manifest", json_object_new_int(PF_MANIFEST_FORMAT));
    json_object_object_add(root, "key_id", json_object_new_string(idhex));
    json_object_object_add(root, "signature", json_object_new_string_len((const char *)b64, (int)b64_len));
    json_object_object_add(root, "payload", json_object_new_string_len(payload, (int)len));
    size_t n = 0;
    const char *s = json_object_to_json_string_length(root, JSON_C_TO_STRING_PRETTY | JSON_C_TO_STRING_NOSLASHESCAPE,
                                                      &n);
    char *copy = s ? malloc(n + 2) : NULL;
    if (copy) {
        memcpy(copy, s, n);
        copy[n] = '\n';
        copy[n + 1] = 0;
        *out = copy;
        *out_len = n + 1;
    }
    json_object_put(root);
    return copy ? PF_OK : pf_diag_set(diag, PF_ERR_NOMEM, "out of memory");
}

int pf_manifest_select(const pf_manifest *m, const char *target, const char *chip, const char *board,
                       const pf_manifest_image **out, pf_diag *diag)
{
    *out = NULL;
    const pf_manifest_image *found = NULL;
    unsigned matches = 0;
    for (unsigned i = 0; i < m->n_images; i++) {
        const pf_manifest_image *im = &m->images[i];
        if (strcasecmp(im->target, target) != 0)
            continue;
        if (im->chip[0] && chip && strcasecmp(im->chip, chip) != 0)
            continue;
        if (board && strcasecmp(im->board, board) != 0)
            continue;
        if (!found)
            found = im;
        matches++;
    }
    if (matches == 1) {
        *out = found;
        return PF_OK;
    }
    /* list what there is, so the user sees why nothing or too much matched */
    char offer[256];
    size_t o = 0;
    offer[0] = 0;
    for (unsigned i = 0; i < m->n_images && o + 2 < sizeof offer; i++) {
        const pf_manifest_image *im = &m->images[i];
        o += pf_format(offer + o, sizeof offer - o, "%s%s/%s%s%s", i ? ", " : "", im->target,
                       im->chip[0] ? im->chip : "any chip", im->board[0] ? " board " : "", im->board);
    }
    if (matches == 0)
        return pf_diag_set(diag, PF_ERR_CHIP, "the manifest has no image for %s %s%s%s (it has: %s)", target,
                    chip ? chip : "", board ? " board " : "", board ? board : "", offer);
    return pf_diag_set(diag, PF_ERR_ARG,
                    "the manifest has %u images for %s %s%s%s: give --board to choose (it has: %s)", matches,
                    target, chip ? chip : "", board ? " board " : "", board ? board : "", offer);
}

/* Length of "scheme://authority" at the start of s, 0 if s is not a URL. */
static size_t origin_len(const char *s)
{
    const char *p = strstr(s, "://");
    if (!p || p == s)
        return 0;
    for (const char *q = s; q < p; q++)
        if (!((*q >= 'a' && *q <= 'z') || (*q >= 'A' && *q <= 'Z') || (*q >= '0' && *q <= '9') || *q == '+' ||
              *q == '-' || *q == '.'))
            return 0;
    p += 3;
    while (*p && *p != '/' && *p != '?' && *p != '#')
        p++;
    return (size_t)(p - s);
}

int pf_manifest_resolve_url(const char *base, const char *ref, char *out, size_t n)
{
    if (!base || !ref || n == 0)
        return -1;
    if (origin_len(ref)) { /* absolute */
        if (strlen(ref) >= n)
            return -1;
        strcpy(out, ref);
        return 0;
    }
    size_t org = origin_len(base);
    /* the base's path, without query or fragment */
    const char *path = base + org;
    size_t path_len = strcspn(path, org ? "?#" : "");
    char buf[2048];
    size_t b;
    if (ref[0] == '/') {
        b = 0;
        buf[0] = 0;
    } else if (org && path_len == 0) { /* "http://host" is "http://host/" */
        b = 1;
        strcpy(buf, "/");
    } else {
        /* the base's directory: up to and including its last '/' */
        b = path_len;
        while (b > 0 && path[b - 1] != '/')
            b--;
        if (b >= sizeof buf)
            return -1;
        memcpy(buf, path, b);
        buf[b] = 0;
    }
    if (b + strlen(ref) >= sizeof buf)
        return -1;
    strcpy(buf + b, ref);
    /* remove "." and ".." segments in the path part (before any '?') */
    char seg_out[2048];
    size_t w = 0;
    size_t qpos = strcspn(buf, "?#");
    int absolute = buf[0] == '/';
    const char *p = buf;
    const char *end = buf + qpos;
    if (absolute)
        seg_out[w++] = '/', p++;
    while (p < end) {
        const char *slash = memchr(p, '/', (size_t)(end - p));
        size_t len = slash ? (size_t)(slash - p) : (size_t)(end - p);
        int last = !slash;
        if (len == 1 && p[0] == '.') {
            /* nothing */
        } else if (len == 2 && p[0] == '.' && p[1] == '.') {
            if (w > (size_t)absolute) { /* drop the previous segment */
                w--;
                while (w > (size_t)absolute && seg_out[w - 1] != '/')
                    w--;
            }
        } else {
            memcpy(seg_out + w, p, len);
            w += len;
            if (!last)
                seg_out[w++] = '/';
        }
        p += len + (slash ? 1 : 0);
    }
    size_t rest = strlen(buf + qpos);
    if (org + w + rest >= n)
        return -1;
    memcpy(out, base, org);
    memcpy(out + org, seg_out, w);
    memcpy(out + org + w, buf + qpos, rest + 1);
    return 0;
}
