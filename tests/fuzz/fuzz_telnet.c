/* libFuzzer: the telnet decoder (src/codec/telnet.c) on arbitrary bytes, as
 * a server or anyone on the path may send them. Checks that it never writes
 * more data than it read, that a split anywhere gives the same data and
 * events as one piece, and that escaping any data and decoding it gives the
 * data back with no event. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "codec/telnet.h"

typedef struct run {
    uint8_t data[4096];
    size_t len;
    uint32_t events, sum; /* count and a digest of kinds, verbs, options, payloads */
} run;

static void decode(const uint8_t *in, size_t n, size_t split, run *r)
{
    pf_telnet t;
    pf_telnet_init(&t);
    r->len = 0;
    r->events = r->sum = 0;
    const uint8_t *parts[2] = {in, in + split};
    size_t plen[2] = {split, n - split};
    for (int k = 0; k < 2; k++) {
        size_t at = 0;
        while (at < plen[k]) {
            pf_telnet_event ev;
            size_t got;
            size_t used = pf_telnet_decode(&t, parts[k] + at, plen[k] - at, r->data + r->len, &got, &ev);
            if (used == 0 || used > plen[k] - at || got > used)
                abort();
            at += used;
            r->len += got;
            if (ev.kind != PF_TELNET_NONE) {
                if (ev.kind == PF_TELNET_SUBNEG && ev.len > PF_TELNET_SB_MAX)
                    abort();
                r->events++;
                r->sum = r->sum * 31 + (uint32_t)ev.kind * 7 + ev.verb * 3 + ev.option + (uint32_t)ev.len;
                for (size_t i = 0; i < ev.len; i++)
                    r->sum = r->sum * 33 + ev.payload[i];
                uint8_t cmd;
                uint32_t value;
                pf_rfc2217_parse(&ev, &cmd, &value);
            }
        }
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *in, size_t n)
{
    if (n > 4096)
        return 0;
    static run a, b;
    decode(in, n, 0, &a);
    decode(in, n, n ? (size_t)in[0] % (n + 1) : 0, &b);
    if (a.len != b.len || a.events != b.events || a.sum != b.sum || memcmp(a.data, b.data, a.len) != 0)
        abort();
    /* escape -> decode is the identity on data */
    static uint8_t wire[8192];
    size_t used;
    size_t w = pf_telnet_escape(in, n, wire, sizeof wire, &used);
    if (used != n)
        abort();
    decode(wire, w, w / 2, &a);
    if (a.len != n || a.events != 0 || memcmp(a.data, in, n) != 0)
        abort();
    return 0;
}
