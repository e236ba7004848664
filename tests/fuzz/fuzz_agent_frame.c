/* libFuzzer: the agent frame decoder on arbitrary bytes. Checks that it never
 * reads or writes outside its buffer, that every frame it accepts re-encodes
 * to a frame that decodes to the same content, and that feeding the input in
 * two pieces gives the same frames as in one. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "peerflash/pf_agent_proto.h"

static size_t collect(const uint8_t *data, size_t size, size_t split, uint8_t out[][PF_AP_HDR + 256 + 4], size_t *lens,
                      size_t max)
{
    uint8_t buf[256 + PF_AP_OVERHEAD];
    pf_ap_decoder d;
    pf_ap_decoder_init(&d, buf, sizeof buf);
    size_t count = 0;
    const uint8_t *parts[2] = {data, data + split};
    size_t plen[2] = {split, size - split};
    for (int k = 0; k < 2; k++) {
        size_t at = 0;
        while (at < plen[k]) {
            pf_ap_frame f;
            int got;
            at += pf_ap_decode(&d, parts[k] + at, plen[k] - at, &f, &got);
            if (got) {
                if (f.len > 256)
                    abort();
                if (count < max) {
                    out[count][0] = f.type;
                    out[count][1] = f.seq;
                    memcpy(out[count] + 2, f.payload, f.len);
                    lens[count] = f.len;
                }
                count++;
            }
        }
    }
    return count;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static uint8_t a[16][PF_AP_HDR + 256 + 4], b[16][PF_AP_HDR + 256 + 4];
    size_t la[16], lb[16];
    size_t na = collect(data, size, size, a, la, 16);
    size_t nb = collect(data, size, size / 2, b, lb, 16);
    if (na != nb)
        abort();
    for (size_t i = 0; i < na && i < 16; i++) {
        if (la[i] != lb[i] || memcmp(a[i], b[i], la[i] + 2) != 0)
            abort();
        /* round trip */
        uint8_t wire[PF_AP_WIRE_MAX(256)], buf[256 + PF_AP_OVERHEAD];
        size_t w = pf_ap_encode(wire, sizeof wire, a[i][0], a[i][1], a[i] + 2, la[i]);
        if (!w)
            abort();
        pf_ap_decoder d;
        pf_ap_decoder_init(&d, buf, sizeof buf);
        pf_ap_frame f;
        int got;
        pf_ap_decode(&d, wire, w, &f, &got);
        if (!got || f.type != a[i][0] || f.seq != a[i][1] || f.len != la[i] || memcmp(f.payload, a[i] + 2, la[i]))
            abort();
    }
    return 0;
}
