/* The MCUboot image format (header magic 0x96f3b83d, TLVs with SHA-256, key
 * hash and ECDSA-P256 signature; docs/BOOTLOADER.md) and its checks, over
 * any storage: the bootloader checks slots in flash with them, the host
 * checks an image in memory before it sends a byte of it. Portable C, no
 * malloc: the caller gives the hashing buffer. */
#ifndef PEERFLASH_PF_MCUBOOT_H
#define PEERFLASH_PF_MCUBOOT_H

#include <stddef.h>
#include <stdint.h>

#include "pf_err.h"

#ifdef __cplusplus
extern "C" {
#endif

#define PF_MCUBOOT_MAGIC 0x96f3b83du
#define PF_MCUBOOT_HEADER_SIZE 32u
#define PF_MCUBOOT_TLV_INFO_MAGIC 0x6907u
#define PF_MCUBOOT_TLV_PROT_INFO_MAGIC 0x6908u
#define PF_MCUBOOT_TLV_KEYHASH 0x01u
#define PF_MCUBOOT_TLV_PUBKEY 0x02u
#define PF_MCUBOOT_TLV_SHA256 0x10u
#define PF_MCUBOOT_TLV_ECDSA_SIG 0x22u

typedef struct pf_mcuboot_version {
    uint8_t major, minor;
    uint16_t revision;
    uint32_t build;
} pf_mcuboot_version;

typedef struct pf_mcuboot_info {
    uint32_t load_addr;
    uint16_t hdr_size;
    uint16_t protect_tlv_size;
    uint32_t img_size;   /* body bytes after the header */
    uint32_t flags;
    pf_mcuboot_version version;
    uint32_t total_size; /* header + body + protected TLVs + TLVs */
    uint8_t hash[32];    /* the SHA-256 TLV (checked against the content) */
    int signature_ok;    /* 1 when a configured key verified the signature */
} pf_mcuboot_info;

/* Parses the 32-byte header; checks the magic and that hdr_size >= 32. */
int pf_mcuboot_parse_header(const uint8_t hdr[32], pf_mcuboot_info *out, pf_diag *diag);
/* <0, 0, >0 like memcmp, over (major, minor, revision); build is ignored as in MCUboot. */
int pf_mcuboot_version_cmp(const pf_mcuboot_version *a, const pf_mcuboot_version *b);

/* Signature check hook: verifies an ECDSA-P256 signature (DER, as in the
 * 0x22 TLV) of the 32-byte SHA-256 hash with the public key (DER
 * SubjectPublicKeyInfo, as MCUboot embeds it). Returns 0 when valid,
 * PF_ERR_AUTH when not. The host provides pf_ecdsa_p256_verify (pf_sign.h,
 * mbedTLS); an MCU passes its own crypto. */
typedef int (*pf_sig_verify_fn)(void *user, const uint8_t *pubkey, size_t pubkey_len, const uint8_t hash[32],
                                const uint8_t *sig, size_t sig_len);

/* Where an image is read from: len bytes at off (from the image's start).
 * Returns 0 or a negative pf_err. */
typedef int (*pf_mcuboot_read_fn)(void *ctx, uint32_t off, uint8_t *dst, uint32_t len);

typedef struct pf_mcuboot_check_config {
    pf_mcuboot_read_fn read;
    void *ctx;
    uint32_t limit;              /* bytes the image may occupy (the slot, or the file) */
    const uint8_t *pubkey;       /* DER key the image must be signed with; NULL = SHA-256 only */
    size_t pubkey_len;
    const uint8_t *key_hash;     /* SHA-256 of pubkey when the caller has it; NULL = computed */
    pf_sig_verify_fn sig_verify; /* needed with pubkey */
    void *sig_user;
    uint8_t *buf;                /* hashing buffer (any size >= 1; bigger = fewer reads) */
    uint32_t buf_size;
    const char *name;            /* names the image in messages ("primary"); NULL = "image" */
    pf_diag *diag;
} pf_mcuboot_check_config;

#define PF_MCUBOOT_CHECK_CONFIG_DEFAULT() \
    { .read = NULL, .ctx = NULL, .limit = 0, .pubkey = NULL, .pubkey_len = 0, .key_hash = NULL, \
      .sig_verify = NULL, .sig_user = NULL, .buf = NULL, .buf_size = 0, .name = NULL, .diag = NULL }

/* Header and TLV area bounds, without hashing: fills info (total_size set)
 * and *hashed (header + body + protected TLVs: what the SHA-256 covers). */
int pf_mcuboot_bounds(const pf_mcuboot_check_config *c, pf_mcuboot_info *info, uint32_t *hashed);
/* The whole check: bounds, the SHA-256 TLV against the content, and with a
 * key the key hash and the ECDSA-P256 signature. PF_ERR_FORMAT for a
 * malformed image, PF_ERR_AUTH for a hash or signature that does not match. */
int pf_mcuboot_check(const pf_mcuboot_check_config *c, pf_mcuboot_info *info);

#ifdef __cplusplus
}
#endif
#endif
