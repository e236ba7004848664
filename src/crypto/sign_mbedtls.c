/* MCUboot-layout image signing and ECDSA-P256 verification through mbedTLS. */
#include <mbedtls/ctr_drbg.h>
#include <mbedtls/ecp.h>
#include <mbedtls/entropy.h>
#include <mbedtls/pk.h>
#include <mbedtls/sha256.h>
#include <string.h>

#include "peerflash/pf_bytes.h"
#include "peerflash/pf_sign.h"

int pf_ecdsa_p256_verify(void *user, const uint8_t *pubkey, size_t pubkey_len, const uint8_t hash[32],
                         const uint8_t *sig, size_t sig_len)
{
    (void)user;
    mbedtls_pk_context pk;
    mbedtls_pk_init(&pk);
    int ok = mbedtls_pk_parse_public_key(&pk, pubkey, pubkey_len) == 0 && mbedtls_pk_can_do(&pk, MBEDTLS_PK_ECDSA) &&
             mbedtls_pk_get_bitlen(&pk) == 256 &&
             mbedtls_pk_verify(&pk, MBEDTLS_MD_SHA256, hash, 32, sig, sig_len) == 0;
    mbedtls_pk_free(&pk);
    return ok ? PF_OK : PF_ERR_AUTH;
}

typedef struct rng {
    mbedtls_entropy_context ent;
    mbedtls_ctr_drbg_context drbg;
} rng;

static int rng_init(rng *r)
{
    mbedtls_entropy_init(&r->ent);
    mbedtls_ctr_drbg_init(&r->drbg);
    static const unsigned char pers[] = "peerflash-sign";
    return mbedtls_ctr_drbg_seed(&r->drbg, mbedtls_entropy_func, &r->ent, pers, sizeof pers - 1) ? PF_ERR_IO : PF_OK;
}

static void rng_free(rng *r)
{
    mbedtls_ctr_drbg_free(&r->drbg);
    mbedtls_entropy_free(&r->ent);
}

int pf_sign_keygen(char *pem, size_t cap, pf_diag *diag)
{
    rng r;
    mbedtls_pk_context pk;
    mbedtls_pk_init(&pk);
    int err = rng_init(&r);
    if (err == PF_OK && (mbedtls_pk_setup(&pk, mbedtls_pk_info_from_type(MBEDTLS_PK_ECKEY)) ||
                         mbedtls_ecp_gen_key(MBEDTLS_ECP_DP_SECP256R1, mbedtls_pk_ec(pk), mbedtls_ctr_drbg_random,
                                             &r.drbg)))
        err = pf_diag_set(diag, PF_ERR_IO, "ECDSA-P256 key generation failed");
    if (err == PF_OK && mbedtls_pk_write_key_pem(&pk, (unsigned char *)pem, cap))
        err = pf_diag_set(diag, PF_ERR_NOMEM, "PEM buffer too small");
    mbedtls_pk_free(&pk);
    rng_free(&r);
    return err;
}

static int load_key(mbedtls_pk_context *pk, const char *pem, int *is_private, pf_diag *diag)
{
    size_t len = strlen(pem) + 1;
    *is_private = 1;
    if (mbedtls_pk_parse_key(pk, (const unsigned char *)pem, len, NULL, 0) != 0) {
        mbedtls_pk_free(pk);
        mbedtls_pk_init(pk);
        *is_private = 0;
        if (mbedtls_pk_parse_public_key(pk, (const unsigned char *)pem, len) != 0)
            return pf_diag_set(diag, PF_ERR_FORMAT, "not a PEM EC key");
    }
    if (!mbedtls_pk_can_do(pk, MBEDTLS_PK_ECDSA) || mbedtls_pk_get_bitlen(pk) != 256 ||
        mbedtls_pk_ec(*pk)->grp.id != MBEDTLS_ECP_DP_SECP256R1)
        return pf_diag_set(diag, PF_ERR_FORMAT, "key is not ECDSA-P256");
    return PF_OK;
}

int pf_sign_pubkey_der(const char *pem, uint8_t *der, size_t cap, pf_diag *diag)
{
    mbedtls_pk_context pk;
    mbedtls_pk_init(&pk);
    int priv, err = load_key(&pk, pem, &priv, diag);
    if (err == PF_OK) {
        unsigned char tmp[200];
        int n = mbedtls_pk_write_pubkey_der(&pk, tmp, sizeof tmp);
        if (n <= 0 || (size_t)n > cap)
            err = pf_diag_set(diag, PF_ERR_NOMEM, "public key does not fit");
        else {
            memcpy(der, tmp + sizeof tmp - (size_t)n, (size_t)n);
            err = n;
        }
    }
    mbedtls_pk_free(&pk);
    return err;
}

size_t pf_sign_image_size_max(const pf_sign_params *p, size_t body_len)
{
    size_t hdr = p->hdr_size ? p->hdr_size : PF_MCUBOOT_HEADER_SIZE;
    return hdr + body_len + 4 + (4 + 32) + (4 + 32) + (4 + MBEDTLS_ECDSA_MAX_LEN);
}

int pf_sign_image(const pf_sign_params *p, const uint8_t *body, size_t body_len, uint8_t *out, size_t cap,
                  pf_diag *diag)
{
    size_t hdr = p->hdr_size ? p->hdr_size : PF_MCUBOOT_HEADER_SIZE;
    if (hdr < PF_MCUBOOT_HEADER_SIZE || body_len > 0xFFFFFFFFu - hdr)
        return pf_diag_set(diag, PF_ERR_ARG, "header size %u below 32", (unsigned)hdr);
    if (cap < pf_sign_image_size_max(p, body_len))
        return pf_diag_set(diag, PF_ERR_NOMEM, "output buffer too small");
    memset(out, 0, hdr);
    pf_put_le32(out + 0, PF_MCUBOOT_MAGIC);
    pf_put_le32(out + 4, p->load_addr);
    pf_put_le16(out + 8, (uint16_t)hdr);
    pf_put_le16(out + 10, 0); /* no protected TLVs */
    pf_put_le32(out + 12, (uint32_t)body_len);
    pf_put_le32(out + 16, p->flags);
    out[20] = p->version.major;
    out[21] = p->version.minor;
    pf_put_le16(out + 22, p->version.revision);
    pf_put_le32(out + 24, p->version.build);
    memcpy(out + hdr, body, body_len);
    size_t n = hdr + body_len;
    uint8_t hash[32];
    mbedtls_sha256_ret(out, n, hash, 0);

    size_t tlv = n;
    n += 4;
    pf_put_le16(out + n, PF_MCUBOOT_TLV_SHA256);
    pf_put_le16(out + n + 2, 32);
    memcpy(out + n + 4, hash, 32);
    n += 36;
    int err = PF_OK;
    if (p->key_pem) {
        mbedtls_pk_context pk;
        mbedtls_pk_init(&pk);
        rng r;
        int priv;
        int ri = rng_init(&r);
        err = load_key(&pk, p->key_pem, &priv, diag);
        if (err == PF_OK && !priv)
            err = pf_diag_set(diag, PF_ERR_FORMAT, "signing needs the private key, this is a public key");
        if (err == PF_OK && ri != PF_OK)
            err = pf_diag_set(diag, PF_ERR_IO, "random generator failed");
        unsigned char der[200], sig[MBEDTLS_ECDSA_MAX_LEN];
        size_t siglen = 0;
        int dl = 0;
        if (err == PF_OK) {
            dl = mbedtls_pk_write_pubkey_der(&pk, der, sizeof der);
            if (dl <= 0)
                err = pf_diag_set(diag, PF_ERR_FORMAT, "cannot encode the public key");
        }
        if (err == PF_OK &&
            mbedtls_pk_sign(&pk, MBEDTLS_MD_SHA256, hash, 32, sig, &siglen, mbedtls_ctr_drbg_random, &r.drbg))
            err = pf_diag_set(diag, PF_ERR_IO, "ECDSA signing failed");
        if (err == PF_OK) {
            uint8_t kh[32];
            mbedtls_sha256_ret(der + sizeof der - dl, (size_t)dl, kh, 0);
            pf_put_le16(out + n, PF_MCUBOOT_TLV_KEYHASH);
            pf_put_le16(out + n + 2, 32);
            memcpy(out + n + 4, kh, 32);
            n += 36;
            pf_put_le16(out + n, PF_MCUBOOT_TLV_ECDSA_SIG);
            pf_put_le16(out + n + 2, (uint16_t)siglen);
            memcpy(out + n + 4, sig, siglen);
            n += 4 + siglen;
        }
        rng_free(&r);
        mbedtls_pk_free(&pk);
    }
    if (err < 0)
        return err;
    pf_put_le16(out + tlv, PF_MCUBOOT_TLV_INFO_MAGIC);
    pf_put_le16(out + tlv + 2, (uint16_t)(n - tlv));
    return (int)n;
}

int pf_sign_digest(const char *key_pem, const uint8_t hash[32], uint8_t *sig, size_t cap, pf_diag *diag)
{
    mbedtls_pk_context pk;
    mbedtls_pk_init(&pk);
    rng r;
    int priv, ri = rng_init(&r);
    int err = load_key(&pk, key_pem, &priv, diag);
    if (err == PF_OK && !priv)
        err = pf_diag_set(diag, PF_ERR_FORMAT, "signing needs the private key, this is a public key");
    if (err == PF_OK && ri != PF_OK)
        err = pf_diag_set(diag, PF_ERR_IO, "random generator failed");
    unsigned char tmp[MBEDTLS_ECDSA_MAX_LEN];
    size_t n = 0;
    if (err == PF_OK && mbedtls_pk_sign(&pk, MBEDTLS_MD_SHA256, hash, 32, tmp, &n, mbedtls_ctr_drbg_random, &r.drbg))
        err = pf_diag_set(diag, PF_ERR_IO, "ECDSA signing failed");
    if (err == PF_OK && n > cap)
        err = pf_diag_set(diag, PF_ERR_NOMEM, "signature buffer too small");
    if (err == PF_OK) {
        memcpy(sig, tmp, n);
        err = (int)n;
    }
    rng_free(&r);
    mbedtls_pk_free(&pk);
    return err;
}
