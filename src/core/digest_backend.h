/* The crypto backend behind pf_digest: MD5 and SHA-256. The host build uses
 * mbedTLS (digest_mbedtls.c); an MCU build links its own implementation. */
#ifndef PEERFLASH_CORE_DIGEST_BACKEND_H
#define PEERFLASH_CORE_DIGEST_BACKEND_H

#include "peerflash/pf_digest.h"

int pf_digest_backend_begin(pf_digest *d);
void pf_digest_backend_update(pf_digest *d, const uint8_t *data, size_t len);
int pf_digest_backend_finish(pf_digest *d, uint8_t *out);

#endif
