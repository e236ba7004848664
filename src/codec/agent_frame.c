/* Frame codec of the agent's native protocol (pf_agent_proto.h). Pure. */
#include "peerflash/pf_agent_proto.h"

#include "peerflash/pf_bytes.h"
#include "peerflash/pf_digest.h"

static size_t put_esc(uint8_t *out, size_t cap, size_t at, uint8_t b)
{
    if (b == PF_AP_SLIP_END || b == PF_AP_SLIP_ESC) {
        if (at + 2 > cap)
            return 0;
        out[at] = PF_AP_SLIP_ESC;
        out[at + 1] = b == PF_AP_SLIP_END ? PF_AP_SLIP_ESC_END : PF_AP_SLIP_ESC_ESC;
        return at + 2;
    }
    if (at + 1 > cap)
        return 0;
    out[at] = b;
    return at + 1;
}

size_t pf_ap_encode(uint8_t *out, size_t cap, uint8_t type, uint8_t seq, const uint8_t *payload, size_t len)
{
    if (!out || len > PF_AP_MAX_PAYLOAD || (len && !payload) || cap < 2)
        return 0;
    uint8_t hdr[PF_AP_HDR], crc[4];
    hdr[0] = type;
    hdr[1] = seq;
    pf_put_le16(hdr + 2, (uint16_t)len);
    uint32_t c = pf_crc32(0, hdr, sizeof hdr);
    c = pf_crc32(c, payload, len);
    pf_put_le32(crc, c);
    size_t at = 0;
    out[at++] = PF_AP_SLIP_END;
    for (size_t i = 0; i < sizeof hdr; i++)
        if (!(at = put_esc(out, cap, at, hdr[i])))
            return 0;
    for (size_t i = 0; i < len; i++)
        if (!(at = put_esc(out, cap, at, payload[i])))
            return 0;
    for (size_t i = 0; i < 4; i++)
        if (!(at = put_esc(out, cap, at, crc[i])))
            return 0;
    if (at + 1 > cap)
        return 0;
    out[at++] = PF_AP_SLIP_END;
    return at;
}

int pf_ap_parse(const uint8_t *body, size_t len, pf_ap_frame *frame)
{
    if (!body || len < PF_AP_OVERHEAD)
        return 0;
    uint16_t plen = pf_get_le16(body + 2);
    if ((size_t)plen + PF_AP_OVERHEAD != len)
        return 0;
    if (pf_crc32(0, body, len - 4) != pf_get_le32(body + len - 4))
        return 0;
    frame->type = body[0];
    frame->seq = body[1];
    frame->len = plen;
    frame->payload = body + PF_AP_HDR;
    return 1;
}

void pf_ap_decoder_init(pf_ap_decoder *d, uint8_t *buf, size_t cap)
{
    d->buf = buf;
    d->cap = cap;
    d->len = 0;
    d->esc = 0;
    d->overflow = 0;
    d->dropped = 0;
}

size_t pf_ap_decode(pf_ap_decoder *d, const uint8_t *in, size_t n, pf_ap_frame *frame, int *got)
{
    *got = 0;
    for (size_t i = 0; i < n; i++) {
        uint8_t b = in[i];
        if (b == PF_AP_SLIP_END) {
            int bad = d->overflow || d->esc;
            size_t len = d->len;
            d->len = 0;
            d->esc = 0;
            d->overflow = 0;
            if (len == 0 && !bad)
                continue; /* idle delimiter between frames */
            if (!bad && pf_ap_parse(d->buf, len, frame)) {
                *got = 1;
                return i + 1;
            }
            d->dropped++;
            continue;
        }
        if (d->overflow)
            continue;
        if (d->esc) {
            d->esc = 0;
            if (b == PF_AP_SLIP_ESC_END)
                b = PF_AP_SLIP_END;
            else if (b == PF_AP_SLIP_ESC_ESC)
                b = PF_AP_SLIP_ESC;
            else {
                d->overflow = 1; /* invalid escape: drop the frame */
                continue;
            }
        } else if (b == PF_AP_SLIP_ESC) {
            d->esc = 1;
            continue;
        }
        if (d->len >= d->cap) {
            d->overflow = 1;
            continue;
        }
        d->buf[d->len++] = b;
    }
    return n;
}
