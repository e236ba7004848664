/* MD5 and SHA-256 for pf_digest through mbedTLS (Debian libmbedtls-dev). */
#include <mbedtls/md5.h>
#include <mbedtls/sha256.h>

#include "core/digest_backend.h"
#include "peerflash/pf_err.h"

_Static_assert(sizeof(mbedtls_md5_context) <= sizeof(((pf_digest *)0)->_state), "pf_digest state too small for MD5");
_Static_assert(sizeof(mbedtls_sha256_context) <= sizeof(((pf_digest *)0)->_state),
               "pf_digest state too small for SHA-256");

int pf_digest_backend_begin(pf_digest *d)
{
    if (d->kind == PF_DIGEST_MD5) {
        mbedtls_md5_context *c = (mbedtls_md5_context *)(void *)d->_state.bytes;
        mbedtls_md5_init(c);
        return mbedtls_md5_starts_ret(c) ? PF_ERR_IO : PF_OK;
    }
    mbedtls_sha256_context *c = (mbedtls_sha256_context *)(void *)d->_state.bytes;
    mbedtls_sha256_init(c);
    return mbedtls_sha256_starts_ret(c, 0) ? PF_ERR_IO : PF_OK;
}

void pf_digest_backend_update(pf_digest *d, const uint8_t *data, size_t len)
{
    if (d->kind == PF_DIGEST_MD5)
        mbedtls_md5_update_ret((mbedtls_md5_context *)(void *)d->_state.bytes, data, len);
    else
        mbedtls_sha256_update_ret((mbedtls_sha256_context *)(void *)d->_state.bytes, data, len);
}

int pf_digest_backend_finish(pf_digest *d, uint8_t *out)
{
    int r;
    if (d->kind == PF_DIGEST_MD5) {
        mbedtls_md5_context *c = (mbedtls_md5_context *)(void *)d->_state.bytes;
        r = mbedtls_md5_finish_ret(c, out);
        mbedtls_md5_free(c);
    } else {
        mbedtls_sha256_context *c = (mbedtls_sha256_context *)(void *)d->_state.bytes;
        r = mbedtls_sha256_finish_ret(c, out);
        mbedtls_sha256_free(c);
    }
    return r ? PF_ERR_IO : PF_OK;
}
