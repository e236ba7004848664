/* libFuzzer: the espota messages (src/serve/ota_proto.c) on arbitrary
 * datagrams, as anyone who reaches the UDP port may send them. Checks that
 * an accepted invitation or challenge answer has the fields the daemon
 * relies on (port and size non-zero, 32 lower-case hex digits), and that
 * writing an accepted invitation back out and parsing it again gives the same. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "serve/ota_proto.h"

static void check_hex(const char *h)
{
    size_t n = strlen(h);
    if (n != 32 && n != 64)
        abort();
    for (size_t i = 0; i < n; i++)
        if (!((h[i] >= '0' && h[i] <= '9') || (h[i] >= 'a' && h[i] <= 'f')))
            abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *msg = (const char *)data;
    char why[120];
    pf_ota_invitation inv;
    if (pf_ota_parse_invitation(msg, size, &inv, why, sizeof why) == 0) {
        if (inv.port == 0 || inv.size == 0 || (inv.cmd != 0 && inv.cmd != 100) || size > PF_OTA_MSG_MAX)
            abort();
        check_hex(inv.md5);
        char again[128];
        int n = snprintf(again, sizeof again, "%d %u %lu %s\n", inv.cmd, (unsigned)inv.port, (unsigned long)inv.size,
                         inv.md5);
        pf_ota_invitation inv2;
        if (pf_ota_parse_invitation(again, (size_t)n, &inv2, why, sizeof why) != 0 || inv2.cmd != inv.cmd ||
            inv2.port != inv.port || inv2.size != inv.size || strcmp(inv2.md5, inv.md5))
            abort();
    } else if (!why[0]) {
        abort(); /* a refusal always says why */
    }
    char cnonce[PF_OTA_HEX_MAX], response[PF_OTA_HEX_MAX];
    if (pf_ota_parse_auth(msg, size, cnonce, response, why, sizeof why) == 0) {
        check_hex(cnonce);
        check_hex(response);
        if (strlen(cnonce) != strlen(response))
            abort();
        char expect[33];
        pf_ota_md5_response("0123456789abcdef0123456789abcdef", cnonce, cnonce, expect);
        check_hex(expect);
        if (!pf_ota_equal(expect, expect) || (pf_ota_equal(expect, cnonce) && strcmp(expect, cnonce)))
            abort();
        /* a random answer never passes (the nonce is the fuzzer's cnonce) */
        if (pf_ota_check_answer("0123456789abcdef0123456789abcdef",
                                "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef", cnonce, cnonce,
                                response) != PF_OTA_AUTH_REFUSED &&
            strlen(response) == 32 && strcmp(response, expect))
            abort();
    }
    return 0;
}
