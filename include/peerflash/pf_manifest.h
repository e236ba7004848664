/* Signed update manifests (host side): which image each board or chip
 * should run, with its version, size, SHA-256 and URL (docs/MANIFEST.md).
 *
 * The file is a JSON envelope whose "payload" member holds the manifest's
 * own JSON text as a string and whose "signature" is an ECDSA-P256
 * signature (DER, base64) over the SHA-256 of exactly those payload bytes:
 * the signed bytes are never re-serialised, so no JSON canonical form is
 * needed. The key is the same as for agent images (peerflash keygen). */
#ifndef PEERFLASH_PF_MANIFEST_H
#define PEERFLASH_PF_MANIFEST_H

#include <stddef.h>
#include <stdint.h>

#include "pf_err.h"

#ifdef __cplusplus
extern "C" {
#endif

#define PF_MANIFEST_FORMAT 1
#define PF_MANIFEST_MAX_BYTES (1u << 20) /* larger files are refused before parsing */
#define PF_MANIFEST_MAX_IMAGES 256

/* A version "MAJOR.MINOR.REVISION+BUILD" (missing parts are 0), as in the
 * agent's image header; compared part by part. */
typedef struct pf_manifest_version {
    uint32_t major, minor, revision, build;
} pf_manifest_version;

typedef struct pf_manifest_image {
    char target[16];   /* driver ("avr", "esp", "stm32", "agent") */
    char chip[32];     /* chip name as the target reports it ("ATmega328P"); "" = any of the target */
    char board[32];    /* board name for --board ("uno"); "" = none */
    char version[32];  /* as written */
    pf_manifest_version ver;
    uint64_t size;     /* bytes of the image file */
    uint8_t sha256[32];/* of the image file */
    char url[1024];    /* as written: absolute, or relative to the manifest's URL */
    int have_address;  /* raw binaries: where the image goes */
    uint32_t address;
} pf_manifest_image;

typedef struct pf_manifest {
    char name[64];            /* optional "name" */
    uint8_t key_id[8];        /* first bytes of SHA-256 of the signer's public key (DER) */
    unsigned n_images;
    pf_manifest_image *images; /* malloc'd by pf_manifest_load; pf_manifest_free releases */
} pf_manifest;

/* Checks the envelope's signature with the public key (DER
 * SubjectPublicKeyInfo, from pf_sign_pubkey_der) and only then parses the
 * payload. Any failure (not JSON, wrong format, bad signature, a field of
 * the wrong type or out of range) is PF_ERR_AUTH for the signature and
 * PF_ERR_FORMAT for the rest, with the reason in diag; *m is then empty. */
int pf_manifest_load(const uint8_t *data, size_t len, const uint8_t *pubkey_der, size_t pubkey_len, pf_manifest *m,
                     pf_diag *diag);
void pf_manifest_free(pf_manifest *m);

/* Parses and checks a payload (unsigned manifest text) without a
 * signature: what `peerflash sign --manifest` checks before signing. */
int pf_manifest_parse_payload(const char *text, size_t len, pf_manifest *m, pf_diag *diag);

/* Signs payload (the manifest text) with a PEM private key; *out is a
 * malloc'd NUL-terminated envelope of *out_len bytes. */
int pf_manifest_sign(const char *payload, size_t len, const char *key_pem, char **out, size_t *out_len,
                     pf_diag *diag);

/* The entry for this target and chip (case-insensitive), narrowed to board
 * when board is not NULL, in *out. PF_ERR_CHIP when none matches, PF_ERR_ARG
 * when several do (a --board is needed); diag then lists what the manifest
 * offers. */
int pf_manifest_select(const pf_manifest *m, const char *target, const char *chip, const char *board,
                       const pf_manifest_image **out, pf_diag *diag);

/* Parses "1.2.3+4"; -1 when malformed. */
int pf_manifest_parse_version(const char *s, pf_manifest_version *v);
/* <0, 0, >0 as a is older than, the same as, newer than b. */
int pf_manifest_version_cmp(const pf_manifest_version *a, const pf_manifest_version *b);

/* Resolves ref against the manifest's URL as a browser does for a link
 * (absolute URL, "/path", or a relative path with ./ and ../). Returns 0,
 * or -1 when out is too small or base is not an http(s)/file URL or path. */
int pf_manifest_resolve_url(const char *base, const char *ref, char *out, size_t n);

#ifdef __cplusplus
}
#endif
#endif
