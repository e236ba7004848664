/* arduinoOTA sends an Intel HEX file with every line break removed
 * (arduino/arduinoOTA main.go: regexp \r?\n replaced by ""): the records
 * follow each other on one line. Our HEX reader reads lines, so the lines
 * are put back; a ':' never occurs inside a record (hex digits only), so
 * each ':' starts one. Fuzzed by tests/fuzz/fuzz_arduino_hex.c. */
#include <ctype.h>
#include <stdlib.h>
#include <string.h>

#include "arduino_hex.h"

uint8_t *serve_arduino_hex_lines(const uint8_t *body, size_t len, size_t *out_len)
{
    if (!len || body[0] != ':')
        return NULL;
    size_t records = 0;
    for (size_t i = 0; i < len; i++) { /* records and nothing else: a line break or a byte of a binary says no */
        if (!isxdigit(body[i]) && body[i] != ':')
            return NULL;
        records += body[i] == ':';
    }
    /* ':' never occurs inside a record (hex digits only): each one starts a line */
    uint8_t *out = malloc(len + records + 1);
    if (!out)
        return NULL;
    size_t o = 0;
    for (size_t i = 0; i < len; i++) {
        if (body[i] == ':' && i)
            out[o++] = '\n';
        out[o++] = body[i];
    }
    out[o++] = '\n';
    *out_len = o;
    return out;
}
