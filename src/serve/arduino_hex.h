/* The HEX text arduinoOTA uploads, made readable again (arduino_hex.c). */
#ifndef PF_SERVE_ARDUINO_HEX_H
#define PF_SERVE_ARDUINO_HEX_H

#include <stddef.h>
#include <stdint.h>

/* A malloc'd copy of body with a line break before every ':' but the first
 * and one at the end, when body is such a HEX: it starts with ':' and holds
 * nothing but ':' and hex digits. NULL otherwise (a binary, a HEX that kept
 * its lines) or when out of memory. */
uint8_t *serve_arduino_hex_lines(const uint8_t *body, size_t len, size_t *out_len);

#endif
