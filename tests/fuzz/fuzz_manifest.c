/* libFuzzer: the update manifest (src/host/manifest.c) on arbitrary bytes,
 * as a web server or anyone on the path may send them. The payload parser
 * must either refuse with a message or give entries whose strings end
 * within their fields; the envelope check must refuse anything not signed
 * by the key (a fixed key here, so nothing the fuzzer makes can pass); URL
 * resolution must stay within its output. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "peerflash/pf_manifest.h"

/* A P-256 public key (DER SubjectPublicKeyInfo) made once with peerflash keygen. */
static const uint8_t pub[91] = {
    0x30, 0x59, 0x30, 0x13, 0x06, 0x07, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01, 0x06, 0x08, 0x2a, 0x86, 0x48, 0xce,
    0x3d, 0x03, 0x01, 0x07, 0x03, 0x42, 0x00, 0x04, 0x5b, 0x2e, 0x39, 0x6e, 0x41, 0x3a, 0x0d, 0x3c, 0x3e, 0x1b, 0x66,
    0x6b, 0x41, 0x45, 0x6c, 0x6f, 0x4f, 0x25, 0x1d, 0x0c, 0x12, 0x17, 0x1e, 0x3a, 0x6b, 0x70, 0x2d, 0x3f, 0x0b, 0x72,
    0x23, 0x61, 0x66, 0x2f, 0x33, 0x18, 0x1c, 0x73, 0x57, 0x4d, 0x51, 0x5e, 0x0d, 0x39, 0x64, 0x57, 0x02, 0x40, 0x21,
    0x0f, 0x63, 0x1b, 0x2b, 0x35, 0x08, 0x17, 0x74, 0x45, 0x4f, 0x49, 0x05};

static void check_entries(const pf_manifest *m)
{
    if (m->n_images == 0 || m->n_images > PF_MANIFEST_MAX_IMAGES || !m->images)
        abort();
    for (unsigned i = 0; i < m->n_images; i++) {
        const pf_manifest_image *im = &m->images[i];
        if (!memchr(im->target, 0, sizeof im->target) || !memchr(im->chip, 0, sizeof im->chip) ||
            !memchr(im->board, 0, sizeof im->board) || !memchr(im->url, 0, sizeof im->url) || !im->target[0] ||
            !im->url[0] || im->size == 0 || im->size > 0xFFFFFFFFu)
            abort();
        char out[512];
        if (pf_manifest_resolve_url("http://h/a/b/m.json", im->url, out, sizeof out) == 0 &&
            strlen(out) >= sizeof out)
            abort();
    }
    pf_diag d;
    const pf_manifest_image *im0;
    int r = pf_manifest_select(m, m->images[0].target, m->images[0].chip, NULL, &im0, &d);
    if ((r == PF_OK) != (im0 != NULL))
        abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    pf_diag d;
    pf_manifest m;
    if (pf_manifest_parse_payload((const char *)data, size, &m, &d) == PF_OK) {
        check_entries(&m);
        pf_manifest_free(&m);
    } else if (m.images || m.n_images || !d.text[0])
        abort();
    if (pf_manifest_load(data, size, pub, sizeof pub, &m, &d) == PF_OK)
        abort(); /* nothing here is signed by that key */
    if (m.images || m.n_images || !d.text[0])
        abort();
    /* the input as a relative reference */
    char ref[256], out[64];
    size_t n = size < sizeof ref - 1 ? size : sizeof ref - 1;
    memcpy(ref, data, n);
    ref[n] = 0;
    if (pf_manifest_resolve_url("https://host/dir/sub/m.json", ref, out, sizeof out) == 0 && !memchr(out, 0, sizeof out))
        abort();
    return 0;
}
