/* Digests the flash job uses to compare flash with an image without reading
 * it back (ESP SPI_FLASH_MD5, the agent's SHA-256, CRC-32). Streaming, no
 * allocation; the hash functions themselves come from a crypto backend
 * (mbedTLS on the host, see src/crypto/digest_mbedtls.c). */
#ifndef PEERFLASH_PF_DIGEST_H
#define PEERFLASH_PF_DIGEST_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef enum pf_digest_kind {
    PF_DIGEST_NONE = 0,
    PF_DIGEST_MD5,    /* 16 bytes */
    PF_DIGEST_SHA256, /* 32 bytes */
    PF_DIGEST_CRC32,  /* 4 bytes, little-endian; IEEE 802.3 (zlib's crc32) */
    PF_DIGEST_CRC32_STM32, /* 4 bytes, big-endian; the STM32 CRC unit as the AN3155
                            * Get Checksum command computes it (see pf_crc32_stm32) */
} pf_digest_kind;

#define PF_DIGEST_MAX 32

typedef struct pf_digest {
    pf_digest_kind kind;
    uint32_t _crc;
    /* backend state; the backend checks at compile time that it fits */
    union {
        unsigned char bytes[256];
        long long align_ll;
        void *align_ptr;
    } _state;
} pf_digest;

/* Digest length in bytes, 0 for PF_DIGEST_NONE. */
size_t pf_digest_size(pf_digest_kind kind);
const char *pf_digest_name(pf_digest_kind kind);
int pf_digest_begin(pf_digest *d, pf_digest_kind kind);
void pf_digest_update(pf_digest *d, const uint8_t *data, size_t len);
/* Writes pf_digest_size(kind) bytes to out; returns that length. */
int pf_digest_finish(pf_digest *d, uint8_t *out);

/* CRC-32 (IEEE, reflected, as zlib and Ethernet): crc = pf_crc32(0, p, n). */
uint32_t pf_crc32(uint32_t crc, const uint8_t *data, size_t len);

/* CRC-32 of the STM32 CRC peripheral (AN3155 Get Checksum): polynomial
 * 0x04C11DB7 shifted MSB first, no reflection, no final XOR, fed one 32-bit
 * little-endian word at a time. Start with 0xFFFFFFFF; len must be a
 * multiple of 4 (pf_digest handles partial words across updates). */
uint32_t pf_crc32_stm32(uint32_t crc, const uint8_t *data, size_t len);

#ifdef __cplusplus
}
#endif
#endif
