/* Shared by the agent/bootloader tests: a small flash layout over the
 * simulated NOR flash, a signing key and signed images. */
#ifndef PEERFLASH_TEST_AGENT_FIXTURE_H
#define PEERFLASH_TEST_AGENT_FIXTURE_H

#include <stdlib.h>
#include <string.h>

#include "nor_flash.h"
#include "peerflash/pf_agent.h"
#include "peerflash/pf_boot.h"
#include "peerflash/pf_digest.h"
#include "peerflash/pf_sign.h"

/* 4 KiB erase units, 16 KiB slots: primary 20 KiB (+1 unit for swap-move),
 * secondary 16 KiB, journal 8 KiB. */
#define FX_E 4096u
#define FX_SLOT (4 * FX_E)
#define FX_PRIMARY 0u
#define FX_SECONDARY (FX_SLOT + FX_E)
#define FX_STATE (FX_SECONDARY + FX_SLOT)
#define FX_FLASH (FX_STATE + 2 * FX_E)

/* A fixed test key (made with `peerflash keygen`, for tests only): with
 * deterministic ECDSA (RFC 6979, as mbedTLS signs) the test images are the
 * same bytes on every run, so a replayed power-cut case is exact. */
#define FX_TEST_KEY                                                        \
    "-----BEGIN EC PRIVATE KEY-----\n"                                    \
    "MHcCAQEEIDQ6MfPIG1tN6ReEKYDka0zUnpklufNEqT1qbRffxp2aoAoGCCqGSM49\n"  \
    "AwEHoUQDQgAEqRzCGqkXmz+lOHxoaqwEgNdt2nWFJxB9qr1vSYpcmQ3VcTc1h0kC\n"  \
    "6CAd/pseciwHshnrW6vsdC0xaCPON+N2Ig==\n"                              \
    "-----END EC PRIVATE KEY-----\n"

typedef struct fx_image {
    uint8_t *data;
    size_t len;
    uint8_t file_hash[32]; /* SHA-256 of the whole file (what the agent is told) */
} fx_image;

typedef struct fx {
    pf_nor nor;
    pf_boot boot;
    pf_agent agent;
    pf_diag diag;
    uint8_t bbuf[256], wbuf[512];
    uint8_t pub[128];
    int pub_len;
    char key[512];
} fx;

/* A firmware-like body: instructions from a small vocabulary, some
 * literals: compresses to roughly a third. */
static inline uint8_t *fx_compressible_body(size_t n, uint32_t seed)
{
    static const char *const words[] = {"\x10\xb5\x04\x46", "\x00\x28\x02\xd0", "\xfe\xe7", "\x70\x47",
                                        "\x08\x68\x01\x30", "\xbd\xe8\xf0\x81", "ldr r0, [pc, #12]", "\x00\xbf"};
    uint8_t *b = malloc(n);
    uint32_t x = seed * 2654435761u + 3;
    for (size_t i = 0; i < n;) {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        if (x % 5 == 0) {
            b[i++] = (uint8_t)(x >> 8);
            continue;
        }
        const char *w = words[(x >> 4) % 8];
        size_t l = strlen(w);
        for (size_t k = 0; k < l && i < n; k++)
            b[i++] = (uint8_t)w[k];
    }
    return b;
}

static inline void fx_file_hash(fx_image *im)
{
    pf_digest d;
    pf_digest_begin(&d, PF_DIGEST_SHA256);
    pf_digest_update(&d, im->data, im->len);
    pf_digest_finish(&d, im->file_hash);
}

/* Signs body (freed here) as image major.minor into im. */
static inline int fx_sign(fx_image *im, const char *key_pem, uint8_t major, uint8_t minor, uint8_t *body,
                          size_t body_len)
{
    pf_sign_params p = PF_SIGN_PARAMS_DEFAULT();
    p.version.major = major;
    p.version.minor = minor;
    p.key_pem = key_pem;
    size_t cap = pf_sign_image_size_max(&p, body_len);
    im->data = malloc(cap);
    int n = pf_sign_image(&p, body, body_len, im->data, cap, NULL);
    free(body);
    if (n < 0)
        return n;
    im->len = (size_t)n;
    fx_file_hash(im);
    return 0;
}

/* A signed image whose body is fx_compressible_body. */
static inline int fx_make_compressible(fx_image *im, const char *key_pem, uint8_t major, size_t body_len, uint32_t seed)
{
    return fx_sign(im, key_pem, major, 0, fx_compressible_body(body_len, seed), body_len);
}

/* A signed image with a pseudo-random body of body_len bytes. */
static inline int fx_make_image(fx_image *im, const char *key_pem, uint8_t major, uint8_t minor, size_t body_len,
                                uint32_t seed)
{
    uint8_t *body = malloc(body_len);
    uint32_t x = seed * 2654435761u + 7;
    for (size_t i = 0; i < body_len; i++) {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        body[i] = (uint8_t)x;
    }
    return fx_sign(im, key_pem, major, minor, body, body_len);
}

static inline int fx_open_boot(fx *f, int with_key)
{
    pf_boot_config c = PF_BOOT_CONFIG_DEFAULT();
    c.flash = &f->nor.flash;
    c.primary_off = FX_PRIMARY;
    c.secondary_off = FX_SECONDARY;
    c.slot_size = FX_SLOT;
    c.state_off = FX_STATE;
    if (with_key) {
        c.pubkey = f->pub;
        c.pubkey_len = (size_t)f->pub_len;
        c.sig_verify = pf_ecdsa_p256_verify;
    }
    c.buf = f->bbuf;
    c.buf_size = sizeof f->bbuf;
    c.diag = &f->diag;
    return pf_boot_open(&f->boot, &c);
}

static inline int fx_open_agent(fx *f)
{
    pf_agent_config c = PF_AGENT_CONFIG_DEFAULT();
    c.boot = &f->boot;
    c.wbuf = f->wbuf;
    c.wbuf_size = sizeof f->wbuf;
    c.diag = &f->diag;
    return pf_agent_init(&f->agent, &c);
}

/* Puts an image into primary directly (factory programming). */
static inline void fx_factory(fx *f, const fx_image *im)
{
    memset(f->nor.mem + FX_PRIMARY, f->nor.flash.erase_value, FX_SLOT + FX_E);
    memcpy(f->nor.mem + FX_PRIMARY, im->data, im->len);
}

/* Stores im through the agent from offset `from` in chunks of `chunk`. */
static inline int fx_send(fx *f, const fx_image *im, uint32_t from, uint32_t chunk)
{
    for (uint32_t o = from; o < im->len;) {
        uint32_t n = (uint32_t)im->len - o < chunk ? (uint32_t)im->len - o : chunk;
        int r = pf_agent_recv_data(&f->agent, o, im->data + o, n);
        if (r < 0)
            return r;
        o += n;
    }
    return 0;
}

static inline int fx_slot_is(fx *f, uint32_t off, const fx_image *im)
{
    return memcmp(f->nor.mem + off, im->data, im->len) == 0;
}

#endif
