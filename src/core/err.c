/* Error names, and the small formatter behind pf_diag (no libc stdio, so the
 * core stays freestanding on an MCU). */
#include "peerflash/pf_err.h"

#include <stdint.h>

const char *pf_strerror(int err)
{
    switch (err) {
    case PF_OK: return "success";
    case PF_ERR_ARG: return "invalid argument (a bug in the caller)";
    case PF_ERR_NOMEM: return "buffer too small";
    case PF_ERR_IO: return "input/output error";
    case PF_ERR_TIMEOUT: return "timed out";
    case PF_ERR_CLOSED: return "link closed";
    case PF_ERR_NO_SYNC: return "no answer from the bootloader";
    case PF_ERR_PROTOCOL: return "protocol error";
    case PF_ERR_TARGET: return "target refused the command";
    case PF_ERR_UNSUPPORTED: return "not supported by this target";
    case PF_ERR_FORMAT: return "malformed image";
    case PF_ERR_RANGE: return "address out of range";
    case PF_ERR_OVERLAP: return "image segments overlap";
    case PF_ERR_CHIP: return "wrong chip";
    case PF_ERR_PROTECTED: return "target is protected";
    case PF_ERR_VERIFY: return "verify failed";
    case PF_ERR_CRC: return "checksum error on the link";
    case PF_ERR_AUTH: return "hash or signature check failed";
    case PF_ERR_STATE: return "invalid state";
    default: return "unknown error";
    }
}

int pf_exit_status(int err)
{
    switch (err) {
    case PF_OK: return PF_EXIT_OK;
    case PF_ERR_ARG: return PF_EXIT_USAGE; /* in a front end, only the command line or job can be wrong this way */
    case PF_ERR_FORMAT:
    case PF_ERR_RANGE:
    case PF_ERR_OVERLAP:
    case PF_ERR_NOMEM: return PF_EXIT_IMAGE;
    case PF_ERR_IO:
    case PF_ERR_TIMEOUT:
    case PF_ERR_CLOSED:
    case PF_ERR_NO_SYNC:
    case PF_ERR_CRC:
    case PF_ERR_PROTOCOL: return PF_EXIT_LINK;
    case PF_ERR_TARGET:
    case PF_ERR_UNSUPPORTED:
    case PF_ERR_CHIP:
    case PF_ERR_PROTECTED:
    case PF_ERR_AUTH:
    case PF_ERR_STATE: return PF_EXIT_TARGET;
    case PF_ERR_VERIFY: return PF_EXIT_VERIFY;
    default: return PF_EXIT_FAIL;
    }
}

struct sink {
    char *out;
    size_t size;
    size_t len;
};

static void put(struct sink *s, char c)
{
    if (s->size && s->len + 1 < s->size)
        s->out[s->len] = c;
    s->len++;
}

static void put_num(struct sink *s, unsigned long long v, unsigned base, int upper, int neg, int width, char pad)
{
    char tmp[24];
    int n = 0;
    const char *digits = upper ? "0123456789ABCDEF" : "0123456789abcdef";
    do {
        tmp[n++] = digits[v % base];
        v /= base;
    } while (v && n < (int)sizeof tmp);
    int total = n + (neg ? 1 : 0);
    if (neg && pad == '0')
        put(s, '-');
    for (; total < width; total++)
        put(s, pad);
    if (neg && pad != '0')
        put(s, '-');
    while (n)
        put(s, tmp[--n]);
}

/* Formats into out (NUL-terminated when size > 0); returns the length the
 * whole text needs, which exceeds size - 1 when it was cut. */
static size_t format_full(char *out, size_t size, const char *fmt, va_list ap)
{
    struct sink s = {out, size, 0};
    for (const char *p = fmt; *p; p++) {
        if (*p != '%') {
            put(&s, *p);
            continue;
        }
        p++;
        char pad = ' ';
        int width = 0;
        if (*p == '0') {
            pad = '0';
            p++;
        }
        while (*p >= '0' && *p <= '9')
            width = width * 10 + (*p++ - '0');
        int lng = 0, sz = 0;
        if (*p == 'l') {
            lng = 1;
            p++;
            if (*p == 'l') {
                lng = 2;
                p++;
            }
        } else if (*p == 'z') {
            sz = 1;
            p++;
        }
        switch (*p) {
        case 's': {
            const char *str = va_arg(ap, const char *);
            if (!str)
                str = "(null)";
            size_t n = 0;
            while (str[n])
                n++;
            for (; (int)n < width; width--)
                put(&s, ' ');
            while (*str)
                put(&s, *str++);
            break;
        }
        case 'c': put(&s, (char)va_arg(ap, int)); break;
        case 'd':
        case 'i': {
            long long v = lng == 2 ? va_arg(ap, long long) : lng ? va_arg(ap, long) : sz ? (long long)va_arg(ap, size_t) : va_arg(ap, int);
            unsigned long long mag = v < 0 ? 0ULL - (unsigned long long)v : (unsigned long long)v;
            put_num(&s, mag, 10, 0, v < 0, width, pad);
            break;
        }
        case 'u':
        case 'x':
        case 'X': {
            unsigned long long v = lng == 2 ? va_arg(ap, unsigned long long)
                                   : lng   ? va_arg(ap, unsigned long)
                                   : sz    ? va_arg(ap, size_t)
                                           : va_arg(ap, unsigned);
            put_num(&s, v, *p == 'u' ? 10 : 16, *p == 'X', 0, width, pad);
            break;
        }
        case '%': put(&s, '%'); break;
        case '\0': p--; break;
        default:
            put(&s, '%');
            put(&s, *p);
            break;
        }
    }
    if (size)
        out[s.len < size ? s.len : size - 1] = '\0';
    return s.len;
}

size_t pf_vformat(char *out, size_t size, const char *fmt, va_list ap)
{
    size_t n = format_full(out, size, fmt, ap);
    return n < size ? n : (size ? size - 1 : 0);
}

size_t pf_format(char *out, size_t size, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    size_t n = pf_vformat(out, size, fmt, ap);
    va_end(ap);
    return n;
}

/* A text cut at the end of the buffer says so: it ends in "...". */
static void mark_if_cut(pf_diag *d, size_t wanted)
{
    if (wanted + 1 > sizeof d->text)
        for (size_t i = sizeof d->text - 4; i < sizeof d->text - 1; i++)
            d->text[i] = '.';
}

static void diag_fresh(pf_diag *d)
{
    d->op = NULL;
    d->has_code = d->has_command = 0;
    d->code = d->command = 0;
    d->hints = 0;
}

int pf_diag_set(pf_diag *d, int err, const char *fmt, ...)
{
    if (d) {
        diag_fresh(d);
        va_list ap;
        va_start(ap, fmt);
        mark_if_cut(d, format_full(d->text, sizeof d->text, fmt, ap));
        va_end(ap);
    }
    return err;
}

static size_t diag_format(pf_diag *d, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    size_t n = format_full(d->text, sizeof d->text, fmt, ap);
    va_end(ap);
    return n;
}

void pf_diag_prefix(pf_diag *d, const char *prefix)
{
    if (!d || !prefix)
        return;
    char old[PF_DIAG_MAX];
    size_t i = 0;
    for (; d->text[i] && i + 1 < sizeof old; i++)
        old[i] = d->text[i];
    old[i] = '\0';
    if (old[0])
        mark_if_cut(d, diag_format(d, "%s: %s", prefix, old));
    else
        mark_if_cut(d, diag_format(d, "%s", prefix));
}

void pf_diag_clear(pf_diag *d)
{
    if (d) {
        d->text[0] = '\0';
        diag_fresh(d);
    }
}

void pf_diag_code(pf_diag *d, uint32_t command, uint32_t code)
{
    if (!d)
        return;
    d->has_code = d->has_command = 1;
    d->command = command;
    d->code = code;
}

void pf_diag_hint(pf_diag *d, unsigned hints)
{
    if (d)
        d->hints |= hints;
}

void pf_diag_op(pf_diag *d, const char *op)
{
    if (d && !d->op)
        d->op = op;
}

const char *pf_hint_name(unsigned hint)
{
    switch (hint) {
    case PF_HINT_WIRING: return "wiring";
    case PF_HINT_RESET: return "reset";
    case PF_HINT_BAUD: return "baud";
    case PF_HINT_BOOT_MODE: return "boot_mode";
    case PF_HINT_UNPROTECT: return "unprotect";
    case PF_HINT_CHIP: return "chip";
    case PF_HINT_IMAGE: return "image";
    default: return NULL;
    }
}
