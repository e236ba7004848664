/* ArduinoOTA / espota messages (ota_proto.h): strict parsing of what arrives
 * in a UDP datagram from anyone on the network. */
#include "ota_proto.h"

#include <stdio.h>
#include <string.h>

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

/* 32 hex digits, copied lower-case into out. */
static int hex32(const char *s, size_t len, size_t *at, char out[33])
{
    if (len - *at < 32)
        return -1;
    for (int i = 0; i < 32; i++) {
        char c = s[*at + (size_t)i];
        if (c >= 'A' && c <= 'F')
            c = (char)(c - 'A' + 'a');
        if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f')))
            return -1;
        out[i] = c;
    }
    out[32] = 0;
    *at += 32;
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

int pf_ota_parse_auth(const char *msg, size_t len, char cnonce[33], char response[33], char *why, size_t n)
{
    if (!msg || len > PF_OTA_MSG_MAX)
        return bad(why, n, "datagram too long");
    size_t at = 0;
    uint64_t cmd;
    if (number(msg, len, &at, 999, &cmd) < 0 || cmd != PF_OTA_CMD_AUTH || spaces(msg, len, &at) < 0)
        return bad(why, n, "not an answer to the challenge");
    if (hex32(msg, len, &at, cnonce) < 0 || spaces(msg, len, &at) < 0 || hex32(msg, len, &at, response) < 0)
        return bad(why, n, "the challenge answer is not two 32-digit hex strings");
    if (end_of_message(msg, len, at) < 0)
        return bad(why, n, "text after the challenge answer");
    return 0;
}

void pf_ota_md5_hex(const void *data, size_t len, char out[33])
{
    static const char digits[] = "0123456789abcdef";
    pf_digest d;
    uint8_t md[PF_DIGEST_MAX];
    pf_digest_begin(&d, PF_DIGEST_MD5);
    pf_digest_update(&d, data, len);
    pf_digest_finish(&d, md);
    for (int i = 0; i < 16; i++) {
        out[2 * i] = digits[md[i] >> 4];
        out[2 * i + 1] = digits[md[i] & 15];
    }
    out[32] = 0;
}

void pf_ota_expected_response(const char *password_md5_hex, const char *nonce, const char *cnonce, char out[33])
{
    char buf[32 + 1 + 64 + 1 + 64 + 1];
    int k = snprintf(buf, sizeof buf, "%s:%s:%s", password_md5_hex, nonce, cnonce);
    pf_ota_md5_hex(buf, k > 0 ? (size_t)k < sizeof buf ? (size_t)k : sizeof buf - 1 : 0, out);
}

int pf_ota_equal(const char *a, const char *b)
{
    size_t la = strlen(a), lb = strlen(b);
    unsigned diff = (unsigned)(la ^ lb);
    for (size_t i = 0; i < la; i++)
        diff |= (unsigned)(a[i] ^ (i < lb ? b[i] : 0));
    return diff == 0;
}
