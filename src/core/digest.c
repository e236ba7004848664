/* Digest front end: CRC-32 here, MD5 and SHA-256 from the crypto backend. */
#include "peerflash/pf_digest.h"

#include "core/digest_backend.h"
#include "peerflash/pf_err.h"

size_t pf_digest_size(pf_digest_kind kind)
{
    switch (kind) {
    case PF_DIGEST_MD5: return 16;
    case PF_DIGEST_SHA256: return 32;
    case PF_DIGEST_CRC32: return 4;
    case PF_DIGEST_CRC32_STM32: return 4;
    default: return 0;
    }
}

const char *pf_digest_name(pf_digest_kind kind)
{
    switch (kind) {
    case PF_DIGEST_MD5: return "MD5";
    case PF_DIGEST_SHA256: return "SHA-256";
    case PF_DIGEST_CRC32: return "CRC-32";
    case PF_DIGEST_CRC32_STM32: return "STM32 CRC-32";
    default: return "none";
    }
}

uint32_t pf_crc32(uint32_t crc, const uint8_t *data, size_t len)
{
    /* Bitwise with a nibble table: 64 bytes of table, fast enough for link
     * frames and verify on an MCU, no 1 KiB table in RAM or flash. */
    static const uint32_t nibble[16] = {
        0x00000000, 0x1DB71064, 0x3B6E20C8, 0x26D930AC, 0x76DC4190, 0x6B6B51F4, 0x4DB26158, 0x5005713C,
        0xEDB88320, 0xF00F9344, 0xD6D6A3E8, 0xCB61B38C, 0x9B64C2B0, 0x86D3D2D4, 0xA00AE278, 0xBDBDF21C,
    };
    crc = ~crc;
    for (size_t i = 0; i < len; i++) {
        crc ^= data[i];
        crc = (crc >> 4) ^ nibble[crc & 15];
        crc = (crc >> 4) ^ nibble[crc & 15];
    }
    return ~crc;
}

uint32_t pf_crc32_stm32(uint32_t crc, const uint8_t *data, size_t len)
{
    for (size_t i = 0; i + 4 <= len; i += 4) {
        crc ^= (uint32_t)data[i] | ((uint32_t)data[i + 1] << 8) | ((uint32_t)data[i + 2] << 16) |
               ((uint32_t)data[i + 3] << 24);
        for (int b = 0; b < 32; b++)
            crc = (crc & 0x80000000u) ? (crc << 1) ^ 0x04C11DB7u : crc << 1;
    }
    return crc;
}

/* STM32 CRC state: _crc, and up to 3 bytes of a partial word in _state. */
static void stm32_crc_update(pf_digest *d, const uint8_t *data, size_t len)
{
    uint8_t *pend = d->_state.bytes; /* [0] = count, [1..3] = bytes */
    while (len && pend[0]) {
        pend[1 + pend[0]++] = *data++;
        len--;
        if (pend[0] == 4) {
            uint8_t w[4] = {pend[1], pend[2], pend[3], pend[4]};
            d->_crc = pf_crc32_stm32(d->_crc, w, 4);
            pend[0] = 0;
        }
    }
    size_t whole = len & ~(size_t)3;
    d->_crc = pf_crc32_stm32(d->_crc, data, whole);
    for (size_t i = whole; i < len; i++)
        pend[1 + pend[0]++] = data[i];
}

int pf_digest_begin(pf_digest *d, pf_digest_kind kind)
{
    if (!d)
        return PF_ERR_ARG;
    d->kind = kind;
    d->_crc = 0;
    switch (kind) {
    case PF_DIGEST_CRC32: return PF_OK;
    case PF_DIGEST_CRC32_STM32:
        d->_crc = 0xFFFFFFFFu;
        d->_state.bytes[0] = 0;
        return PF_OK;
    case PF_DIGEST_MD5:
    case PF_DIGEST_SHA256: return pf_digest_backend_begin(d);
    default: return PF_ERR_UNSUPPORTED;
    }
}

void pf_digest_update(pf_digest *d, const uint8_t *data, size_t len)
{
    if (d->kind == PF_DIGEST_CRC32)
        d->_crc = pf_crc32(d->_crc, data, len);
    else if (d->kind == PF_DIGEST_CRC32_STM32)
        stm32_crc_update(d, data, len);
    else
        pf_digest_backend_update(d, data, len);
}

int pf_digest_finish(pf_digest *d, uint8_t *out)
{
    if (d->kind == PF_DIGEST_CRC32_STM32) {
        /* A trailing partial word is padded with 0xFF (erased flash). */
        while (d->_state.bytes[0]) {
            uint8_t ff = 0xFF;
            stm32_crc_update(d, &ff, 1);
        }
        out[0] = (uint8_t)(d->_crc >> 24);
        out[1] = (uint8_t)(d->_crc >> 16);
        out[2] = (uint8_t)(d->_crc >> 8);
        out[3] = (uint8_t)d->_crc;
        return 4;
    }
    if (d->kind == PF_DIGEST_CRC32) {
        out[0] = (uint8_t)d->_crc;
        out[1] = (uint8_t)(d->_crc >> 8);
        out[2] = (uint8_t)(d->_crc >> 16);
        out[3] = (uint8_t)(d->_crc >> 24);
        return 4;
    }
    int r = pf_digest_backend_finish(d, out);
    return r < 0 ? r : (int)pf_digest_size(d->kind);
}
