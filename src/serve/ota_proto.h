/* The ArduinoOTA / espota protocol's messages, parsed and built without I/O
 * (the daemon's UDP side is ota.c). What the Arduino IDE, PlatformIO and
 * espota.py send, as ArduinoOTA answers it:
 *
 *   host -> device, UDP:  "<cmd> <host_tcp_port> <size> <md5 hex>\n"
 *                         cmd 0 = flash (100 = filesystem image: refused here)
 *   device -> host, UDP:  "OK", or "AUTH <nonce>" when a password is set,
 *                         or "ERR: <why>"
 *   host -> device, UDP:  "200 <cnonce> <response>\n" with
 *                         response = MD5hex(MD5hex(password) ":" nonce ":" cnonce)
 *   device -> host, UDP:  "OK" or "Authentication Failed"
 *   device -> host, TCP:  connects to the sender's address, host_tcp_port;
 *                         the host sends size bytes; the device answers each
 *                         piece it read with its length in decimal, and at
 *                         the end "OK" (image written) or an error text.
 * Hex digests are 32 lower- or upper-case hex digits. */
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
/* "200 <cnonce> <response>": 0 with both (lower-case hex), or -1. */
int pf_ota_parse_auth(const char *msg, size_t len, char cnonce[33], char response[33], char *why, size_t n);
/* MD5 of data as 32 lower-case hex digits plus NUL. */
void pf_ota_md5_hex(const void *data, size_t len, char out[33]);
/* The response a client with password_md5_hex must send for nonce and cnonce. */
void pf_ota_expected_response(const char *password_md5_hex, const char *nonce, const char *cnonce, char out[33]);
/* Compares two NUL-terminated strings in time independent of where they differ. */
int pf_ota_equal(const char *a, const char *b);

#endif
