/* Frame codec of the agent's native protocol (pf_agent_proto.h). Pure. */
#include "peerflash/pf_agent_proto.h"

#include "codec/slip.h"
#include "peerflash/pf_bytes.h"
#include "peerflash/pf_digest.h"

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
    /* C0 escaped(header) escaped(payload) escaped(CRC) C0 */
    const uint8_t *part[3] = {hdr, payload, crc};
    size_t part_len[3] = {sizeof hdr, len, sizeof crc};
    size_t at = 1;
    for (int i = 0; i < 3; i++) {
        if (!part_len[i])
            continue;
        if (at >= cap)
            return 0;
        size_t e = pf_slip_escape(part[i], part_len[i], out + at, cap - at);
        if (!e)
            return 0;
        at += e;
    }
    if (at + 1 > cap)
        return 0;
    out[0] = PF_SLIP_END;
    out[at++] = PF_SLIP_END;
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
    d->dropped = 0;
    pf_slip_decoder_init(&d->_slip, buf, cap);
    pf_slip_decoder_start_in_frame(&d->_slip);
}

size_t pf_ap_decode(pf_ap_decoder *d, const uint8_t *in, size_t n, pf_ap_frame *frame, int *got)
{
    *got = 0;
    for (size_t i = 0; i < n; i++) {
        pf_slip_event ev = pf_slip_feed(&d->_slip, in[i]);
        if (ev == PF_SLIP_MORE)
            continue;
        if (ev == PF_SLIP_FRAME && pf_ap_parse(d->buf, d->_slip.len, frame)) {
            *got = 1;
            return i + 1;
        }
        d->dropped++; /* bad CRC or length, bad escape, overflow */
    }
    return n;
}
