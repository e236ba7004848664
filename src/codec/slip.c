/* SLIP framing for the ESP ROM loader and the agent protocol (see pf_slip.h). */
#include "codec/slip.h"

size_t pf_slip_escaped_len(const uint8_t *data, size_t n)
{
    size_t len = n;
    for (size_t i = 0; i < n; i++)
        if (data[i] == PF_SLIP_END || data[i] == PF_SLIP_ESC)
            len++;
    return len;
}

size_t pf_slip_escape(const uint8_t *data, size_t n, uint8_t *out, size_t out_size)
{
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        uint8_t b = data[i];
        if (b == PF_SLIP_END || b == PF_SLIP_ESC) {
            if (o + 2 > out_size)
                return 0;
            out[o++] = PF_SLIP_ESC;
            out[o++] = b == PF_SLIP_END ? PF_SLIP_ESC_END : PF_SLIP_ESC_ESC;
        } else {
            if (o + 1 > out_size)
                return 0;
            out[o++] = b;
        }
    }
    return o;
}

size_t pf_slip_encode(const uint8_t *data, size_t n, uint8_t *out, size_t out_size)
{
    if (out_size < 2)
        return 0;
    size_t e = 0;
    if (n) {
        e = pf_slip_escape(data, n, out + 1, out_size - 2);
        if (e == 0)
            return 0;
    }
    out[0] = PF_SLIP_END;
    out[e + 1] = PF_SLIP_END;
    return e + 2;
}

void pf_slip_decoder_init(pf_slip_decoder *d, uint8_t *buf, size_t cap)
{
    d->buf = buf;
    d->cap = cap;
    d->garbage = 0;
    pf_slip_decoder_reset(d);
}

void pf_slip_decoder_start_in_frame(pf_slip_decoder *d)
{
    pf_slip_decoder_reset(d);
    d->_in_frame = 1;
}

void pf_slip_decoder_reset(pf_slip_decoder *d)
{
    d->len = 0;
    d->_in_frame = 0;
    d->_esc = 0;
    d->_bad = 0;
}

pf_slip_event pf_slip_feed(pf_slip_decoder *d, uint8_t byte)
{
    if (byte == PF_SLIP_END) {
        if (!d->_in_frame) {
            d->_in_frame = 1;
            d->len = 0;
            d->_esc = 0;
            d->_bad = 0;
            return PF_SLIP_MORE;
        }
        if (d->_esc == -1) { /* C0 right after a delivered frame: between frames */
            d->_esc = 0;
            d->len = 0;
            return PF_SLIP_MORE;
        }
        /* End of a frame; this C0 may also open the next one. */
        int bad = d->_bad, esc = d->_esc;
        size_t len = d->len;
        d->_esc = 0;
        d->_bad = 0;
        if (bad || esc) {
            d->len = 0;
            return bad == 1 ? PF_SLIP_OVERFLOW : PF_SLIP_BAD_ESCAPE;
        }
        if (len == 0)
            return PF_SLIP_MORE; /* C0 C0: between frames */
        /* Report; the next byte starts afresh (len reset on first data byte). */
        d->_in_frame = 1;
        d->_esc = -1; /* marks "frame just delivered": len resets on next byte */
        return PF_SLIP_FRAME;
    }
    if (!d->_in_frame) {
        d->garbage++;
        return PF_SLIP_MORE;
    }
    if (d->_esc == -1) {
        d->_esc = 0;
        d->len = 0;
    }
    if (d->_bad)
        return PF_SLIP_MORE;
    if (d->_esc) {
        d->_esc = 0;
        if (byte == PF_SLIP_ESC_END)
            byte = PF_SLIP_END;
        else if (byte == PF_SLIP_ESC_ESC)
            byte = PF_SLIP_ESC;
        else {
            d->_bad = 2;
            return PF_SLIP_MORE;
        }
    } else if (byte == PF_SLIP_ESC) {
        d->_esc = 1;
        return PF_SLIP_MORE;
    }
    if (d->len >= d->cap) {
        d->_bad = 1;
        return PF_SLIP_MORE;
    }
    d->buf[d->len++] = byte;
    return PF_SLIP_MORE;
}
