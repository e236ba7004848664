/* The agent's protocol engine: frames in, store operations, answers out.
 * docs/PROTOCOL.md is the specification. */
#include <string.h>

#include "peerflash/pf_agent.h"
#include "peerflash/pf_bytes.h"
#include "peerflash/pf_digest.h"

#define TEXT_MAX 140u

static int send(pf_agent *a, uint8_t type, uint8_t seq, const uint8_t *p, size_t n)
{
    const pf_port *port = a->cfg.port;
    size_t w = pf_ap_encode(a->cfg.txbuf, a->cfg.txbuf_size, type, seq, p, n);
    if (!w)
        return PF_ERR_NOMEM;
    int r = port->write(port->ctx, a->cfg.txbuf, w);
    return r < 0 ? r : PF_OK;
}

/* An answer: status byte, then either `extra` (success) or the diag text. */
static int answer(pf_agent *a, const pf_ap_frame *f, int err, const uint8_t *extra, size_t n)
{
    uint8_t p[1 + TEXT_MAX];
    size_t len = 1;
    p[0] = (uint8_t)(err < 0 ? -err : 0);
    if (err >= 0 && extra && n <= TEXT_MAX) {
        memcpy(p + 1, extra, n);
        len += n;
    } else if (err < 0 && a->cfg.diag) {
        size_t t = strlen(a->cfg.diag->text);
        if (t > TEXT_MAX)
            t = TEXT_MAX;
        memcpy(p + 1, a->cfg.diag->text, t);
        len += t;
    }
    return send(a, (uint8_t)(f->type | PF_AP_RESPONSE), f->seq, p, len);
}

static int hello(pf_agent *a, const pf_ap_frame *f)
{
    pf_boot *b = a->cfg.boot;
    const pf_flash *fl = b->cfg.flash;
    uint8_t p[100];
    memset(p, 0, sizeof p);
    p[0] = PF_AP_VERSION;
    pf_put_le16(p + 1, a->_max_payload);
    p[3] = (uint8_t)a->cfg.window;
    p[4] = PF_AP_CAP_SHA256 | PF_AP_CAP_RESUME | (b->cfg.pubkey ? PF_AP_CAP_SIGNED : 0) |
           (a->cfg.zbits ? PF_AP_CAP_DEFLATE : 0) | (pf_agent_delta_capable(a) ? PF_AP_CAP_DELTA : 0);
    p[5] = b->rec.state;
    p[6] = b->rec.flags;
    pf_put_le32(p + 7, b->cfg.slot_size);
    pf_put_le32(p + 11, fl->erase_size);
    pf_put_le32(p + 15, fl->prog_size);
    pf_put_le32(p + 19, a->cfg.device_id);
    pf_mcuboot_info cur;
    pf_diag *saved = b->cfg.diag;
    b->cfg.diag = NULL;
    if (pf_boot_check_slot(b, 0, &cur) == PF_OK) {
        p[23] = cur.version.major;
        p[24] = cur.version.minor;
        pf_put_le16(p + 25, cur.version.revision);
        pf_put_le32(p + 27, cur.version.build);
        memcpy(p + 31, cur.hash, 32);
    }
    b->cfg.diag = saved;
    pf_put_le32(p + 63, b->rec.state == PF_BOOT_RECEIVING ? b->rec.received : 0);
    memcpy(p + 67, b->rec.hash, 32);
    p[99] = a->cfg.zbits; /* largest deflate window (bits) the agent inflates with; 0 = none */
    return answer(a, f, PF_OK, p, sizeof p);
}

/* Where the next DATA must start: in the image, or in the compressed stream. */
static uint32_t next_offset(const pf_agent *a)
{
    return a->_z ? pf_agent_recv_zoffset(a) : a->_delta ? pf_agent_recv_poffset(a) : pf_agent_recv_offset(a);
}

static int ack(pf_agent *a, uint8_t seq, int err)
{
    uint8_t p[6 + TEXT_MAX];
    size_t len = 6;
    p[0] = (uint8_t)(err < 0 ? -err : 0);
    pf_put_le32(p + 1, next_offset(a));
    /* which BEGIN this answers to, so stale ACKs are recognisable; 0 when
     * no transfer is open (the host must BEGIN) */
    p[5] = a->_open || (err < 0 && err != PF_ERR_STATE) ? a->_session : 0;
    if (err < 0 && a->cfg.diag) { /* a refusal says why */
        size_t t = strlen(a->cfg.diag->text);
        if (t > TEXT_MAX)
            t = TEXT_MAX;
        memcpy(p + 6, a->cfg.diag->text, t);
        len += t;
    }
    return send(a, PF_AP_ACK, seq, p, len);
}

static int hash_range(pf_agent *a, const pf_ap_frame *f)
{
    pf_boot *b = a->cfg.boot;
    const pf_flash *fl = b->cfg.flash;
    if (f->len < 9)
        return answer(a, f, pf_diag_set(a->cfg.diag, PF_ERR_PROTOCOL, "HASH needs 9 bytes"), NULL, 0);
    int slot = f->payload[0];
    uint32_t off = pf_get_le32(f->payload + 1), len = pf_get_le32(f->payload + 5);
    if (slot > 1 || off > b->cfg.slot_size || len > b->cfg.slot_size - off)
        return answer(a, f, pf_diag_set(a->cfg.diag, PF_ERR_RANGE, "HASH range outside the slot"), NULL, 0);
    uint32_t base = pf_boot_slot_off(b, slot) + off, rs = fl->read_size;
    pf_digest dg;
    uint8_t h[32];
    int r = pf_digest_begin(&dg, PF_DIGEST_SHA256);
    if (r < 0)
        return answer(a, f, r, NULL, 0);
    /* the range need not be aligned to read_size: read whole units around it */
    uint32_t at = base / rs * rs, end = base + len;
    while (at < end) {
        /* the bootloader's work buffer: wbuf may hold data of a transfer */
        uint32_t n = b->cfg.buf_size;
        if (n > fl->size - at)
            n = fl->size - at;
        if ((r = fl->read(fl->ctx, at, b->cfg.buf, n)) < 0)
            break;
        uint32_t from = at < base ? base - at : 0, to = end - at < n ? end - at : n;
        pf_digest_update(&dg, b->cfg.buf + from, to - from);
        at += n;
    }
    pf_digest_finish(&dg, h);
    if (r < 0)
        return answer(a, f, pf_diag_set(a->cfg.diag, r, "flash read failed"), NULL, 0);
    return answer(a, f, PF_OK, h, 32);
}

static int handle(pf_agent *a, const pf_ap_frame *f, int *reboot)
{
    const uint8_t *p = f->payload;
    pf_diag *d = a->cfg.diag;
    int r;
    a->frames_in++;
    switch (f->type) {
    case PF_AP_HELLO: return hello(a, f);
    case PF_AP_BEGIN: {
        if (f->len < 37)
            return answer(a, f, pf_diag_set(d, PF_ERR_PROTOCOL, "BEGIN needs 37 bytes"), NULL, 0);
        uint32_t resume = 0;
        uint8_t flags = p[4];
        if (flags & ~(PF_AP_F_DEFLATE | PF_AP_F_DELTA))
            return answer(a, f, pf_diag_set(d, PF_ERR_UNSUPPORTED, "unknown BEGIN flags 0x%02x", (unsigned)flags), NULL,
                          0);
        if ((flags & PF_AP_F_DEFLATE) && !a->cfg.zbits)
            return answer(a, f, pf_diag_set(d, PF_ERR_UNSUPPORTED, "deflate requested, this agent does not inflate"),
                          NULL, 0);
        uint32_t base_size = 0;
        if (flags & PF_AP_F_DELTA) {
            if (f->len < PF_AP_BEGIN_DELTA_LEN)
                return answer(a, f, pf_diag_set(d, PF_ERR_PROTOCOL, "BEGIN with delta needs %u bytes",
                                                (unsigned)PF_AP_BEGIN_DELTA_LEN), NULL, 0);
            base_size = pf_get_le32(p + 37);
            /* the base is checked before anything is written (not even the
             * journal): a wrong base leaves the device as it was */
            a->_open = 0;
            r = pf_agent_delta_check_base(a, base_size, p + 41);
            if (r < 0) {
                a->_session = 0;
                pf_port_logf(a->cfg.port, 1, "agent: BEGIN (delta) refused: %s", d ? d->text : pf_strerror(r));
                return answer(a, f, r, NULL, 0);
            }
        }
        r = pf_agent_recv_begin(a, p + 5, pf_get_le32(p), &resume);
        if (r >= 0 && (flags & PF_AP_F_DEFLATE))
            r = pf_agent_recv_deflate(a);
        if (r >= 0 && (flags & PF_AP_F_DELTA))
            r = pf_agent_recv_delta(a, base_size);
        a->_session = r < 0 ? 0 : f->seq;
        if (r < 0)
            pf_port_logf(a->cfg.port, 1, "agent: BEGIN of %lu bytes refused: %s", (unsigned long)pf_get_le32(p),
                         d ? d->text : pf_strerror(r));
        else
            pf_port_logf(a->cfg.port, 1, "agent: BEGIN of %lu bytes%s, resume at %lu", (unsigned long)pf_get_le32(p),
                         a->_delta ? (a->_z ? " (delta, deflate)" : " (delta)") : a->_z ? " (deflate)" : "",
                         (unsigned long)resume);
        uint8_t out[4];
        pf_put_le32(out, resume);
        return answer(a, f, r, out, 4);
    }
    case PF_AP_DATA: {
        if (f->len < 4)
            return ack(a, f->seq, PF_ERR_PROTOCOL);
        if (!a->_open)
            return ack(a, f->seq, pf_diag_set(d, PF_ERR_STATE, "no transfer in progress (BEGIN first)"));
        uint32_t off = pf_get_le32(p);
        if (off != next_offset(a)) {
            a->acks_dup++;
            return ack(a, f->seq, PF_OK); /* lost or repeated frame: say where we are */
        }
        r = a->_z ? pf_agent_recv_zdata(a, off, p + 4, (uint32_t)f->len - 4)
                  : pf_agent_recv_data(a, off, p + 4, (uint32_t)f->len - 4);
        if (r < 0)
            pf_port_logf(a->cfg.port, 1, "agent: data at %lu refused: %s", (unsigned long)off, d ? d->text : "");
        return ack(a, f->seq, r);
    }
    case PF_AP_END:
        /* a repeated END (its answer was lost): the image is already pending */
        if (!a->_open && a->cfg.boot->rec.state == PF_BOOT_PENDING && a->_size &&
            memcmp(a->cfg.boot->rec.hash, a->_hash, 32) == 0)
            return answer(a, f, PF_OK, NULL, 0);
        r = pf_agent_recv_end(a, f->len >= 1 && (p[0] & PF_AP_F_PERMANENT));
        pf_port_logf(a->cfg.port, 1, "agent: END: %s%s%s (%lu frames, %lu bad, %lu out of order)",
                     r < 0 ? "refused: " : "image accepted, installs at next reset", r < 0 && d ? d->text : "",
                     r < 0 && !d ? pf_strerror(r) : "", (unsigned long)a->frames_in, (unsigned long)a->_dec.dropped,
                     (unsigned long)a->acks_dup);
        return answer(a, f, r, NULL, 0);
    case PF_AP_RESET:
        /* optional guard: reset only in the state the host expects, so a
         * repeated RESET cannot hit the new image on trial (= rollback) */
        if (f->len >= 1 && p[0] && p[0] != a->cfg.boot->rec.state)
            return answer(a, f,
                          pf_diag_set(d, PF_ERR_STATE, "not resetting: state is %s, the host expected %s",
                                      pf_boot_state_name(a->cfg.boot->rec.state), pf_boot_state_name(p[0])),
                          NULL, 0);
        r = answer(a, f, PF_OK, NULL, 0);
        if (a->cfg.port->drain)
            a->cfg.port->drain(a->cfg.port->ctx);
        *reboot = 1;
        return r;
    case PF_AP_CONFIRM:
        r = pf_boot_confirm(a->cfg.boot);
        pf_port_logf(a->cfg.port, 1, "agent: CONFIRM: %s", r < 0 ? pf_strerror(r) : "image permanent");
        return answer(a, f, r, NULL, 0);
    case PF_AP_HASH: return hash_range(a, f);
    default:
        return answer(a, f, pf_diag_set(d, PF_ERR_UNSUPPORTED, "unknown request type 0x%02x", (unsigned)f->type),
                      NULL, 0);
    }
}

static int engine_ready(pf_agent *a)
{
    if (!a->cfg.port || !a->cfg.rxbuf || a->cfg.rxbuf_size < 64 || !a->cfg.txbuf ||
        a->cfg.txbuf_size < PF_AGENT_TXBUF_MIN)
        return PF_ERR_ARG;
    if (a->_dec.buf != a->cfg.rxbuf) {
        pf_ap_decoder_init(&a->_dec, a->cfg.rxbuf, a->cfg.rxbuf_size);
        uint32_t mp = a->cfg.rxbuf_size - PF_AP_OVERHEAD;
        a->_max_payload = (uint16_t)(mp > PF_AP_MAX_PAYLOAD ? PF_AP_MAX_PAYLOAD : mp);
    }
    return PF_OK;
}

int pf_agent_announce(pf_agent *a)
{
    int r = engine_ready(a);
    if (r < 0)
        return r;
    pf_ap_frame f = {PF_AP_HELLO, 0, 0, NULL};
    return hello(a, &f);
}

int pf_agent_poll(pf_agent *a, uint32_t timeout_ms, int *reboot)
{
    int r = engine_ready(a);
    if (r < 0)
        return r;
    int rb = 0;
    uint8_t in[256];
    int n = a->cfg.port->read(a->cfg.port->ctx, in, sizeof in, timeout_ms);
    if (n < 0)
        return n;
    size_t at = 0;
    while (at < (size_t)n) {
        pf_ap_frame f;
        int got;
        at += pf_ap_decode(&a->_dec, in + at, (size_t)n - at, &f, &got);
        if (got) {
            r = handle(a, &f, &rb);
            if (r < 0)
                return r;
        }
    }
    a->frames_bad = a->_dec.dropped;
    if (a->_dec.dropped != a->_nacked) {
        /* something corrupt arrived: during a transfer, say at once where
         * we are, so the host need not wait for its timer */
        a->_nacked = a->_dec.dropped;
        if (a->_open) {
            uint8_t p[5];
            pf_put_le32(p, next_offset(a));
            p[4] = a->_session;
            r = send(a, PF_AP_NACK, 0, p, sizeof p);
            if (r < 0)
                return r;
        }
    }
    if (reboot)
        *reboot = rb;
    return PF_OK;
}
