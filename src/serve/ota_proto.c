/* ArduinoOTA / espota messages (ota_proto.h): strict parsing of what arrives
 * in a UDP datagram from anyone on the network. */
#include "ota_proto.h"

#include <stdio.h>
#include <string.h>

#include <mbedtls/md.h>
#include <mbedtls/pkcs5.h>

#include "peerflash/pf_digest.h"

/* Reads a decimal number of at most max from s[*at..len); no sign, no
 * leading '+', at least one digit. */
static int number(const char *s, size_t len, size_t *at, uint64_t max, uint64_t *out)
{
    uint64_t v = 0;
    size_t start = *at;
    while (*at < len && s[*at] >= '0' && s[*at] <= '9') {
        v = v * 10 + (uint64_t)(s[*at] - '0');
        if (v > max)
            return -1;
        (*at)++;
    }
    if (*at == start)
        return -1;
    *out = v;
    return 0;
}

static int spaces(const char *s, size_t len, size_t *at)
{
    size_t start = *at;
    while (*at < len && s[*at] == ' ')
        (*at)++;
    return *at > start ? 0 : -1;
}

/* Exactly digits hex digits (followed by no further hex digit), copied
 * lower-case into out. */
static int hexn(const char *s, size_t len, size_t *at, size_t digits, char *out)
{
    if (len - *at < digits)
        return -1;
    for (size_t i = 0; i < digits; i++) {
        char c = s[*at + (size_t)i];
        if (c >= 'A' && c <= 'F')
            c = (char)(c - 'A' + 'a');
        if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f')))
            return -1;
        out[i] = c;
    }
    out[digits] = 0;
    *at += digits;
    return 0;
}

static int hex32(const char *s, size_t len, size_t *at, char out[33])
{
    return hexn(s, len, at, 32, out);
}

/* 64 or 32 hex digits: the number taken, or 0. */
static size_t hex_either(const char *s, size_t len, size_t *at, char out[PF_OTA_HEX_MAX])
{
    size_t save = *at;
    if (hexn(s, len, at, 64, out) == 0)
        return 64;
    *at = save;
    if (hexn(s, len, at, 32, out) == 0)
        return 32;
    *at = save;
    return 0;
}

/* The end: optional CR, LF, then nothing (a NUL pad is tolerated). */
static int end_of_message(const char *s, size_t len, size_t at)
{
    if (at < len && s[at] == '\r')
        at++;
    if (at < len && s[at] == '\n')
        at++;
    while (at < len && s[at] == 0)
        at++;
    return at == len ? 0 : -1;
}

static int bad(char *why, size_t n, const char *text)
{
    if (why && n)
        snprintf(why, n, "%s", text);
    return -1;
}

int pf_ota_parse_invitation(const char *msg, size_t len, pf_ota_invitation *out, char *why, size_t n)
{
    if (!msg || !out || len > PF_OTA_MSG_MAX)
        return bad(why, n, "datagram too long");
    size_t at = 0;
    uint64_t cmd, port, size;
    if (number(msg, len, &at, 999, &cmd) < 0 || spaces(msg, len, &at) < 0)
        return bad(why, n, "no command number");
    if (cmd != PF_OTA_CMD_FLASH && cmd != PF_OTA_CMD_FS)
        return bad(why, n, "unknown command");
    if (number(msg, len, &at, 65535, &port) < 0 || port == 0 || spaces(msg, len, &at) < 0)
        return bad(why, n, "bad TCP port");
    if (number(msg, len, &at, 0xFFFFFFFFu, &size) < 0 || size == 0 || spaces(msg, len, &at) < 0)
        return bad(why, n, "bad image size");
    if (hex32(msg, len, &at, out->md5) < 0)
        return bad(why, n, "the MD5 is not 32 hex digits");
    if (end_of_message(msg, len, at) < 0)
        return bad(why, n, "text after the MD5");
    out->cmd = (int)cmd;
    out->port = (uint16_t)port;
    out->size = (uint32_t)size;
    return 0;
}

int pf_ota_parse_auth(const char *msg, size_t len, char cnonce[PF_OTA_HEX_MAX], char response[PF_OTA_HEX_MAX],
                      char *why, size_t n)
{
    if (!msg || len > PF_OTA_MSG_MAX)
        return bad(why, n, "datagram too long");
    size_t at = 0;
    uint64_t cmd;
    if (number(msg, len, &at, 999, &cmd) < 0 || cmd != PF_OTA_CMD_AUTH || spaces(msg, len, &at) < 0)
        return bad(why, n, "not an answer to the challenge");
    size_t a = hex_either(msg, len, &at, cnonce);
    if (!a || spaces(msg, len, &at) < 0 || hex_either(msg, len, &at, response) != a)
        return bad(why, n, "the challenge answer is not two hex strings of 32 or of 64 digits");
    if (end_of_message(msg, len, at) < 0)
        return bad(why, n, "text after the challenge answer");
    return 0;
}

static void to_hex(const uint8_t *md, size_t bytes, char *out)
{
    static const char digits[] = "0123456789abcdef";
    for (size_t i = 0; i < bytes; i++) {
        out[2 * i] = digits[md[i] >> 4];
        out[2 * i + 1] = digits[md[i] & 15];
    }
    out[2 * bytes] = 0;
}

static void digest_hex(pf_digest_kind kind, const void *data, size_t len, char *out)
{
    pf_digest d;
    uint8_t md[PF_DIGEST_MAX];
    pf_digest_begin(&d, kind);
    pf_digest_update(&d, data, len);
    pf_digest_finish(&d, md);
    to_hex(md, pf_digest_size(kind), out);
}

void pf_ota_md5_hex(const void *data, size_t len, char out[33])
{
    digest_hex(PF_DIGEST_MD5, data, len, out);
}

void pf_ota_sha256_hex(const void *data, size_t len, char out[65])
{
    digest_hex(PF_DIGEST_SHA256, data, len, out);
}

void pf_ota_md5_response(const char *password_md5_hex, const char *nonce, const char *cnonce, char out[33])
{
    char buf[64 + 1 + 64 + 1 + 64 + 1];
    int k = snprintf(buf, sizeof buf, "%s:%s:%s", password_md5_hex, nonce, cnonce);
    pf_ota_md5_hex(buf, k > 0 ? (size_t)k < sizeof buf ? (size_t)k : sizeof buf - 1 : 0, out);
}

int pf_ota_sha256_response(const char *password_hash_hex, const char *nonce, const char *cnonce, char out[65])
{
    char salt[64 + 1 + 64 + 1], buf[64 + 1 + 64 + 1 + 64 + 1], key_hex[65];
    int k = snprintf(salt, sizeof salt, "%s:%s", nonce, cnonce);
    if (k <= 0 || (size_t)k >= sizeof salt)
        return -1;
    /* PBKDF2 from Debian's mbedtls (2.28 API: the caller sets up an HMAC context) */
    uint8_t key[32];
    mbedtls_md_context_t md;
    mbedtls_md_init(&md);
    int rc = mbedtls_md_setup(&md, mbedtls_md_info_from_type(MBEDTLS_MD_SHA256), 1);
    if (rc == 0)
        rc = mbedtls_pkcs5_pbkdf2_hmac(&md, (const unsigned char *)password_hash_hex, strlen(password_hash_hex),
                                       (const unsigned char *)salt, (size_t)k, PF_OTA_PBKDF2_ROUNDS, sizeof key, key);
    mbedtls_md_free(&md);
    if (rc != 0)
        return -1;
    to_hex(key, sizeof key, key_hex);
    k = snprintf(buf, sizeof buf, "%s:%s:%s", key_hex, nonce, cnonce);
    if (k <= 0 || (size_t)k >= sizeof buf)
        return -1;
    pf_ota_sha256_hex(buf, (size_t)k, out);
    return 0;
}

pf_ota_auth pf_ota_check_answer(const char *password_md5_hex, const char *password_sha256_hex, const char *nonce,
                                const char *cnonce, const char *response)
{
    char expect[65];
    if (strlen(response) == 64) {
        if (pf_ota_sha256_response(password_sha256_hex, nonce, cnonce, expect) == 0 &&
            pf_ota_equal(expect, response))
            return PF_OTA_AUTH_SHA256;
        if (pf_ota_sha256_response(password_md5_hex, nonce, cnonce, expect) == 0 && pf_ota_equal(expect, response))
            return PF_OTA_AUTH_SHA256_MD5_PW;
        return PF_OTA_AUTH_REFUSED;
    }
    pf_ota_md5_response(password_md5_hex, nonce, cnonce, expect);
    if (pf_ota_equal(expect, response))
        return PF_OTA_AUTH_MD5;
    char shortened[33];
    snprintf(shortened, sizeof shortened, "%s", nonce);
    pf_ota_md5_response(password_md5_hex, shortened, cnonce, expect);
    if (pf_ota_equal(expect, response))
        return PF_OTA_AUTH_MD5_SHORT;
    return PF_OTA_AUTH_REFUSED;
}

const char *pf_ota_auth_name(pf_ota_auth a)
{
    switch (a) {
    case PF_OTA_AUTH_SHA256: return "PBKDF2-HMAC-SHA256";
    case PF_OTA_AUTH_SHA256_MD5_PW: return "PBKDF2-HMAC-SHA256 over the MD5 password hash";
    case PF_OTA_AUTH_MD5: return "MD5 (pre-3.3.1 espota)";
    case PF_OTA_AUTH_MD5_SHORT: return "MD5 over the nonce's first 32 digits (espota before 3.3.1)";
    default: return "refused";
    }
}

int pf_ota_equal(const char *a, const char *b)
{
    size_t la = strlen(a), lb = strlen(b);
    unsigned diff = (unsigned)(la ^ lb);
    for (size_t i = 0; i < la; i++)
        diff |= (unsigned)(a[i] ^ (i < lb ? b[i] : 0));
    return diff == 0;
}
