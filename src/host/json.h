/* Writing JSON string literals (host only): the CLI's --json results and the
 * link emulator's statistics share this one escaper. */
#ifndef PEERFLASH_HOST_JSON_H
#define PEERFLASH_HOST_JSON_H

#include <stdio.h>

/* Writes s as a JSON string literal, quotes included; NULL writes "". */
void pf_json_string(FILE *f, const char *s);

#endif
