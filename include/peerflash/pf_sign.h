/* Host-side image signing and signature checking for the agent (MCUboot
 * layout, ECDSA-P256 with SHA-256), through mbedTLS. Not for MCUs: they pass
 * their own pf_sig_verify_fn to the bootloader (pf_boot.h). */
#ifndef PEERFLASH_PF_SIGN_H
#define PEERFLASH_PF_SIGN_H

#include <stddef.h>
#include <stdint.h>

#include "pf_boot.h"
#include "pf_err.h"

#ifdef __cplusplus
extern "C" {
#endif

/* pf_sig_verify_fn over mbedTLS (user unused). */
int pf_ecdsa_p256_verify(void *user, const uint8_t *pubkey, size_t pubkey_len, const uint8_t hash[32],
                         const uint8_t *sig, size_t sig_len);

/* Writes a new ECDSA-P256 private key as PEM (NUL-terminated) to pem. */
int pf_sign_keygen(char *pem, size_t cap, pf_diag *diag);
/* The public key (DER SubjectPublicKeyInfo, 91 bytes for P-256) of a PEM
 * private or public key; returns its length. */
int pf_sign_pubkey_der(const char *pem, uint8_t *der, size_t cap, pf_diag *diag);

typedef struct pf_sign_params {
    pf_mcuboot_version version;
    uint32_t load_addr;
    uint16_t hdr_size;      /* 0 = 32; the body starts here (vector table alignment) */
    const char *key_pem;    /* NULL = unsigned (SHA-256 TLV only) */
    uint32_t flags;
} pf_sign_params;

#define PF_SIGN_PARAMS_DEFAULT() \
    { .version = {0, 0, 0, 0}, .load_addr = 0, .hdr_size = 0, .key_pem = NULL, .flags = 0 }

/* Signs a SHA-256 digest with a PEM private key: the DER signature goes to
 * sig (72 bytes are always enough); returns its length. */
int pf_sign_digest(const char *key_pem, const uint8_t hash[32], uint8_t *sig, size_t cap, pf_diag *diag);

/* Builds header + body + TLVs (SHA-256, and with a key: key hash and
 * ECDSA-P256 signature) into out; returns the image length. */
int pf_sign_image(const pf_sign_params *p, const uint8_t *body, size_t body_len, uint8_t *out, size_t cap,
                  pf_diag *diag);
/* Bytes pf_sign_image needs for a body of body_len. */
size_t pf_sign_image_size_max(const pf_sign_params *p, size_t body_len);

#ifdef __cplusplus
}
#endif
#endif
