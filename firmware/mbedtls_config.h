/* mbedTLS configuration for the MCU build: only the two hashes pf_digest
 * needs (MD5 for the ESP ROM's SPI_FLASH_MD5, SHA-256 for the agent), the
 * smaller SHA-256 (a loop instead of 64 unrolled rounds) and nothing that
 * touches a platform layer, files, time or threads. */
#ifndef PF_FIRMWARE_MBEDTLS_CONFIG_H
#define PF_FIRMWARE_MBEDTLS_CONFIG_H

#define MBEDTLS_MD5_C
#define MBEDTLS_SHA256_C
#define MBEDTLS_SHA256_SMALLER

#include "mbedtls/check_config.h"

#endif
