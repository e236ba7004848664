/* Telnet byte layer and RFC 2217 messages (see telnet.h). */
#include "codec/telnet.h"

#include <string.h>

enum { S_DATA, S_IAC, S_VERB, S_SB_OPT, S_SB_DATA, S_SB_IAC };

void pf_telnet_init(pf_telnet *t)
{
    memset(t, 0, sizeof *t);
    t->_state = S_DATA;
}

static void sb_put(pf_telnet *t, uint8_t b)
{
    if (t->_sb_len < sizeof t->_sb)
        t->_sb[t->_sb_len++] = b;
    else
        t->_sb_over = 1;
}

size_t pf_telnet_decode(pf_telnet *t, const uint8_t *in, size_t n, uint8_t *data, size_t *data_len,
                        pf_telnet_event *ev)
{
    memset(ev, 0, sizeof *ev);
    size_t out = 0, i = 0;
    while (i < n && ev->kind == PF_TELNET_NONE) {
        uint8_t b = in[i++];
        switch (t->_state) {
        case S_DATA:
            if (b == PF_TELNET_IAC)
                t->_state = S_IAC;
            else
                data[out++] = b;
            break;
        case S_IAC:
            t->_state = S_DATA;
            if (b == PF_TELNET_IAC) {
                data[out++] = b;
            } else if (b >= PF_TELNET_WILL && b <= PF_TELNET_DONT) {
                t->_verb = b;
                t->_state = S_VERB;
            } else if (b == PF_TELNET_SB) {
                t->_state = S_SB_OPT;
            } else {
                ev->kind = PF_TELNET_COMMAND;
                ev->verb = b;
            }
            break;
        case S_VERB:
            t->_state = S_DATA;
            ev->kind = PF_TELNET_NEGOTIATE;
            ev->verb = t->_verb;
            ev->option = b;
            break;
        case S_SB_OPT:
            t->_sb_opt = b;
            t->_sb_len = 0;
            t->_sb_over = 0;
            t->_state = S_SB_DATA;
            break;
        case S_SB_DATA:
            if (b == PF_TELNET_IAC)
                t->_state = S_SB_IAC;
            else
                sb_put(t, b);
            break;
        case S_SB_IAC:
            if (b == PF_TELNET_IAC) {
                sb_put(t, b);
                t->_state = S_SB_DATA;
                break;
            }
            /* IAC SE ends it; any other IAC x inside a subnegotiation is a
             * peer's error: end the subnegotiation there and drop x. */
            t->_state = S_DATA;
            ev->kind = PF_TELNET_SUBNEG;
            ev->option = t->_sb_opt;
            ev->payload = t->_sb;
            ev->len = t->_sb_len;
            ev->truncated = t->_sb_over;
            break;
        }
    }
    *data_len = out;
    return i;
}

size_t pf_telnet_escape(const uint8_t *in, size_t n, uint8_t *out, size_t out_size, size_t *used)
{
    size_t o = 0, i = 0;
    for (; i < n; i++) {
        size_t need = in[i] == PF_TELNET_IAC ? 2 : 1;
        if (o + need > out_size)
            break;
        out[o++] = in[i];
        if (need == 2)
            out[o++] = PF_TELNET_IAC;
    }
    *used = i;
    return o;
}

size_t pf_telnet_negotiation(uint8_t out[3], uint8_t verb, uint8_t option)
{
    out[0] = PF_TELNET_IAC;
    out[1] = verb;
    out[2] = option;
    return 3;
}

size_t pf_rfc2217_message(uint8_t out[PF_RFC2217_MSG_MAX], uint8_t cmd, uint32_t value, size_t value_len)
{
    size_t o = 0;
    out[o++] = PF_TELNET_IAC;
    out[o++] = PF_TELNET_SB;
    out[o++] = PF_TELNET_OPT_COM_PORT;
    out[o++] = cmd;
    if (value_len != 1 && value_len != 4)
        value_len = 1;
    for (size_t k = value_len; k-- > 0;) {
        uint8_t b = (uint8_t)(value >> (8 * k));
        out[o++] = b;
        if (b == PF_TELNET_IAC)
            out[o++] = PF_TELNET_IAC;
    }
    out[o++] = PF_TELNET_IAC;
    out[o++] = PF_TELNET_SE;
    return o;
}

int pf_rfc2217_parse(const pf_telnet_event *ev, uint8_t *cmd, uint32_t *value)
{
    if (ev->kind != PF_TELNET_SUBNEG || ev->option != PF_TELNET_OPT_COM_PORT || ev->len < 1)
        return -1;
    *cmd = ev->payload[0];
    uint32_t v = 0;
    size_t vlen = ev->len - 1;
    if (vlen > 4)
        vlen = 4; /* SIGNATURE and other text answers: the value is meaningless */
    for (size_t k = 0; k < vlen; k++)
        v = v << 8 | ev->payload[1 + k];
    *value = v;
    return 0;
}

/* The COM-PORT-OPTION is done by the client and accepted by the server. */
static int want_us(const pf_telnet_options *o, uint8_t option)
{
    return option == PF_TELNET_OPT_BINARY || option == PF_TELNET_OPT_SGA ||
           (option == PF_TELNET_OPT_COM_PORT && !o->server);
}

static int want_them(const pf_telnet_options *o, uint8_t option)
{
    return option == PF_TELNET_OPT_BINARY || option == PF_TELNET_OPT_SGA ||
           (option == PF_TELNET_OPT_COM_PORT && o->server);
}

void pf_telnet_server_init(pf_telnet_options *o)
{
    memset(o, 0, sizeof *o);
    o->server = 1;
}

size_t pf_telnet_client_hello(pf_telnet_options *o, uint8_t out[PF_TELNET_HELLO_MAX])
{
    memset(o, 0, sizeof *o);
    size_t n = 0;
    n += pf_telnet_negotiation(out + n, PF_TELNET_WILL, PF_TELNET_OPT_COM_PORT);
    n += pf_telnet_negotiation(out + n, PF_TELNET_WILL, PF_TELNET_OPT_BINARY);
    n += pf_telnet_negotiation(out + n, PF_TELNET_DO, PF_TELNET_OPT_BINARY);
    n += pf_telnet_negotiation(out + n, PF_TELNET_WILL, PF_TELNET_OPT_SGA);
    n += pf_telnet_negotiation(out + n, PF_TELNET_DO, PF_TELNET_OPT_SGA);
    o->us[PF_TELNET_OPT_COM_PORT] = o->us[PF_TELNET_OPT_BINARY] = o->us[PF_TELNET_OPT_SGA] = 1;
    o->them[PF_TELNET_OPT_BINARY] = o->them[PF_TELNET_OPT_SGA] = 1;
    return n;
}

size_t pf_telnet_answer(pf_telnet_options *o, uint8_t verb, uint8_t option, uint8_t out[3])
{
    switch (verb) {
    case PF_TELNET_WILL:
        if (!want_them(o, option))
            return pf_telnet_negotiation(out, PF_TELNET_DONT, option);
        if (o->them[option])
            return 0;
        o->them[option] = 1;
        return pf_telnet_negotiation(out, PF_TELNET_DO, option);
    case PF_TELNET_WONT:
        if (!o->them[option])
            return 0;
        o->them[option] = 0;
        return pf_telnet_negotiation(out, PF_TELNET_DONT, option);
    case PF_TELNET_DO:
        if (!want_us(o, option))
            return pf_telnet_negotiation(out, PF_TELNET_WONT, option);
        if (o->us[option])
            return 0;
        o->us[option] = 1;
        return pf_telnet_negotiation(out, PF_TELNET_WILL, option);
    case PF_TELNET_DONT:
        if (!o->us[option])
            return 0;
        o->us[option] = 0;
        return pf_telnet_negotiation(out, PF_TELNET_WONT, option);
    default: return 0;
    }
}
