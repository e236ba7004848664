/* The ArduinoOTA / espota protocol's messages, parsed and built without I/O
 * (the daemon's UDP side is ota.c). What the Arduino IDE, PlatformIO and
 * espota.py send, as ArduinoOTA answers it:
 *
 *   host -> device, UDP:  "<cmd> <host_tcp_port> <size> <md5 hex>\n"
 *                         cmd 0 = flash (100 = filesystem image: refused here)
 *   device -> host, UDP:  "OK", or "AUTH <nonce>" when a password is set,
 *                         or "ERR: <why>"
 *   host -> device, UDP:  "200 <cnonce> <response>\n", two schemes told apart
 *                         by the nonce's length (espota.py of arduino-esp32
 *                         3.3.1+, 2025-09):
 *     64 hex digits (3.3.1+): cnonce = SHA256hex(...), response =
 *       SHA256hex(hex(PBKDF2-HMAC-SHA256(P, nonce ":" cnonce, 10000, 32 bytes))
 *                 ":" nonce ":" cnonce), P = SHA256hex(password) (or, with
 *       espota's --md5-target and on its retry, MD5hex(password));
 *     32 hex digits (older espota, ESP8266 core): cnonce = MD5hex(...),
 *       response = MD5hex(MD5hex(password) ":" nonce ":" cnonce).
 *     The daemon sends a 64-digit nonce. Older clients answer with the MD5
 *     scheme: espota.py of the ESP8266 core reads the whole datagram (the
 *     nonce's 64 digits), arduino-esp32's before 3.3.1 reads 37 bytes
 *     ("AUTH " and the nonce's first 32 digits); both are accepted.
 *   device -> host, UDP:  "OK" or "Authentication Failed"
 *   device -> host, TCP:  connects to the sender's address, host_tcp_port;
 *                         the host sends size bytes; the device answers each
 *                         piece it read with its length in decimal, and at
 *                         the end "OK" (image written) or an error text.
 * Hex digests are 32 (MD5) or 64 (SHA-256) lower- or upper-case hex digits. */
#ifndef PEERFLASH_SERVE_OTA_PROTO_H
#define PEERFLASH_SERVE_OTA_PROTO_H

#include <stddef.h>
#include <stdint.h>

#define PF_OTA_CMD_FLASH 0
#define PF_OTA_CMD_FS 100
#define PF_OTA_CMD_AUTH 200
#define PF_OTA_MSG_MAX 256 /* longer datagrams are refused */

typedef struct pf_ota_invitation {
    int cmd;            /* PF_OTA_CMD_FLASH or PF_OTA_CMD_FS */
    uint16_t port;      /* the host's TCP port to connect back to */
    uint32_t size;      /* image bytes */
    char md5[33];       /* lower-case hex, NUL-terminated */
} pf_ota_invitation;

/* 0 and *out, or -1 with the reason in why (n bytes). */
int pf_ota_parse_invitation(const char *msg, size_t len, pf_ota_invitation *out, char *why, size_t n);
#define PF_OTA_HEX_MAX 65 /* 64 hex digits and NUL */
#define PF_OTA_PBKDF2_ROUNDS 10000u /* espota.py 3.3.1+ */

/* "200 <cnonce> <response>": 0 with both (lower-case hex, both 32 or both 64
 * digits), or -1. */
int pf_ota_parse_auth(const char *msg, size_t len, char cnonce[PF_OTA_HEX_MAX], char response[PF_OTA_HEX_MAX],
                      char *why, size_t n);
/* MD5 / SHA-256 of data as lower-case hex plus NUL. */
void pf_ota_md5_hex(const void *data, size_t len, char out[33]);
void pf_ota_sha256_hex(const void *data, size_t len, char out[65]);
/* The MD5-scheme response for a password hash (hex), nonce and cnonce. */
void pf_ota_md5_response(const char *password_md5_hex, const char *nonce, const char *cnonce, char out[33]);
/* The SHA-256-scheme response: 0, or -1 when the KDF failed. */
int pf_ota_sha256_response(const char *password_hash_hex, const char *nonce, const char *cnonce, char out[65]);

/* Which scheme an accepted answer used. */
typedef enum pf_ota_auth {
    PF_OTA_AUTH_REFUSED = 0,
    PF_OTA_AUTH_SHA256,        /* PBKDF2 over SHA256hex(password) */
    PF_OTA_AUTH_SHA256_MD5_PW, /* PBKDF2 over MD5hex(password) (espota --md5-target / its retry) */
    PF_OTA_AUTH_MD5,           /* the pre-3.3.1 MD5 scheme, whole nonce */
    PF_OTA_AUTH_MD5_SHORT,     /* the MD5 scheme over the nonce's first 32 digits */
} pf_ota_auth;
/* Checks an answer (cnonce, response as parsed) to nonce (64 hex digits)
 * for the password whose MD5 and SHA-256 hex are given. */
pf_ota_auth pf_ota_check_answer(const char *password_md5_hex, const char *password_sha256_hex, const char *nonce,
                                const char *cnonce, const char *response);
const char *pf_ota_auth_name(pf_ota_auth a);
/* Compares two NUL-terminated strings in time independent of where they differ. */
int pf_ota_equal(const char *a, const char *b);

#endif
