/* Simulated STM32 system-memory bootloader (AN3155 over USART): see stm32.h. */
#include "stm32.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#include "codec/an3155.h"
#include "peerflash/pf_bytes.h"
#include "peerflash/pf_digest.h"
#include "peerflash/pf_posix.h"

#define RXQ 16384u
#define TXQ 16384u

typedef struct rx_item {
    uint8_t b;
    uint64_t t; /* arrival (end of its stop bit) on the modelled line, us */
} rx_item;

struct pf_sim_stm32 {
    pf_sim_stm32_config cfg;
    const pf_stm32_chip *chip;
    int fd;
    int flash_fd;
    uint8_t *flash;
    uint8_t *ram;
    int rdp, wrp, synced, has_crc;
    uint8_t ob[64];      /* option bytes as Read Memory returns them (stm32_options.c layouts) */
    uint32_t ob_addr, ob_len;
    uint64_t char_us;
    rx_item rxq[RXQ];
    unsigned rx_pos, rx_len;
    uint64_t last_arrival;
    uint8_t txb[TXQ];
    uint64_t txt[TXQ];
    unsigned tx_pos, tx_len;
    uint64_t tx_line_free;
    uint64_t rom_t; /* the ROM's own time (us): it reacts to a byte when the byte arrives */
    const char *busy_what;
    volatile sig_atomic_t *stop;
    pf_sim_stm32_stats st;
};

static uint64_t now_us(void) { return pf_posix_now_us(); }

static void logf_(const pf_sim_stm32 *s, int level, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void logf_(const pf_sim_stm32 *s, int level, const char *fmt, ...)
{
    if (level > s->cfg.verbose)
        return;
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "sim stm32: ");
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
}

/* --- the modelled line ------------------------------------------------------ */

static void tx_flush_due(pf_sim_stm32 *s)
{
    uint64_t now = now_us();
    unsigned n = 0;
    while (s->tx_pos + n < s->tx_len && s->txt[s->tx_pos + n] <= now)
        n++;
    if (!n)
        return;
    ssize_t w = write(s->fd, s->txb + s->tx_pos, n);
    if (s->cfg.verbose >= 2)
        fprintf(stderr, "sim stm32: %llu: tx %u byte(s) first 0x%02x -> %zd%s\n", (unsigned long long)now, n,
                s->txb[s->tx_pos], w, w < 0 ? strerror(errno) : "");
    if (w > 0)
        s->tx_pos += (unsigned)w;
    else if (w < 0 && errno != EAGAIN && errno != EINTR)
        s->tx_pos += n; /* nobody holds the other end: the bytes go nowhere */
    if (s->tx_pos == s->tx_len)
        s->tx_pos = s->tx_len = 0;
}

static void rx_store(pf_sim_stm32 *s, const uint8_t *b, size_t n)
{
    uint64_t now = now_us();
    for (size_t i = 0; i < n; i++) {
        uint64_t t = s->last_arrival + s->char_us;
        if (t < now)
            t = now;
        s->last_arrival = t;
        if (s->rx_len == RXQ && s->rx_pos) {
            memmove(s->rxq, s->rxq + s->rx_pos, (s->rx_len - s->rx_pos) * sizeof s->rxq[0]);
            s->rx_len -= s->rx_pos;
            s->rx_pos = 0;
        }
        if (s->rx_len == RXQ) {
            s->st.overruns++;
            continue;
        }
        s->rxq[s->rx_len].b = b[i];
        s->rxq[s->rx_len].t = t;
        s->rx_len++;
        if (s->cfg.verbose >= 2)
            fprintf(stderr, "sim stm32: %llu: rx 0x%02x stamped %llu\n", (unsigned long long)now, b[i],
                    (unsigned long long)t);
    }
}

/* Moves bytes between the pty and the queues until `until` (us); returns
 * early when want_rx and a byte is queued. -1 when asked to stop. */
static int pump(pf_sim_stm32 *s, uint64_t until, int want_rx)
{
    for (;;) {
        if (s->stop && *s->stop)
            return -1;
        tx_flush_due(s);
        uint64_t now = now_us();
        if (want_rx && s->rx_pos < s->rx_len)
            return 0;
        if (now >= until)
            return 0;
        uint64_t wake = until;
        if (s->tx_pos < s->tx_len && s->txt[s->tx_pos] < wake)
            wake = s->txt[s->tx_pos];
        int ms = wake > now ? (int)((wake - now + 999) / 1000) : 0;
        if (ms > 50)
            ms = 50;
        struct pollfd p = {s->fd, POLLIN, 0};
        int pr = poll(&p, 1, ms);
        if (pr < 0 && errno != EINTR)
            return -1;
        if (pr > 0 && (p.revents & POLLIN)) {
            uint8_t buf[512];
            ssize_t r = read(s->fd, buf, sizeof buf);
            if (r > 0)
                rx_store(s, buf, (size_t)r);
        } else if (pr > 0) {
            /* HUP: no host has the pty open; wait for one. */
            struct timespec ts = {0, 2 * 1000 * 1000};
            nanosleep(&ts, NULL);
        }
    }
}

/* The ROM has not read the data register during [since, until): of the bytes
 * that arrived before until and are still unread, the first waits in the
 * register, every later one was lost to an overrun. */
static void overrun_rule(pf_sim_stm32 *s, uint64_t until)
{
    unsigned k = 0;
    while (s->rx_pos + k < s->rx_len && s->rxq[s->rx_pos + k].t < until)
        k++;
    if (k <= 1)
        return;
    unsigned lost = k - 1;
    s->st.overruns += lost;
    fprintf(stderr, "sim stm32: overrun: %u byte(s) lost (first 0x%02x) arriving while the ROM was busy %s\n", lost,
            s->rxq[s->rx_pos + 1].b, s->busy_what ? s->busy_what : "");
    memmove(&s->rxq[s->rx_pos + 1], &s->rxq[s->rx_pos + k], (s->rx_len - s->rx_pos - k) * sizeof s->rxq[0]);
    s->rx_len -= lost;
}

/* The ROM does something other than reading the USART for us microseconds. */
static int busy(pf_sim_stm32 *s, uint64_t us, const char *what)
{
    uint64_t until = s->rom_t + us;
    s->busy_what = what;
    if (pump(s, until, 0) < 0)
        return -1;
    overrun_rule(s, until);
    s->rom_t = until;
    return 0;
}

/* Takes the next byte. The ROM's clock moves to the byte's arrival on the
 * modelled line, which may be ahead of the wall clock while a burst is still
 * "on the wire": the ROM works on modelled time, and only its answers (and
 * its busy periods, during which arrivals must be observed) wait for the
 * wall clock. */
static int rx(pf_sim_stm32 *s, uint8_t *b)
{
    for (;;) {
        if (s->rx_pos < s->rx_len) {
            uint64_t t = s->rxq[s->rx_pos].t;
            if (t > s->rom_t)
                s->rom_t = t;
            *b = s->rxq[s->rx_pos++].b;
            if (s->rx_pos == s->rx_len)
                s->rx_pos = s->rx_len = 0;
            return 0;
        }
        if (pump(s, now_us() + 50000, 1) < 0)
            return -1;
    }
}

static int rxn(pf_sim_stm32 *s, uint8_t *b, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (rx(s, b + i) < 0)
            return -1;
    return 0;
}

/* Transmits n bytes; the ROM is busy until the last stop bit has left. */
static int tx(pf_sim_stm32 *s, const uint8_t *b, size_t n)
{
    uint64_t now = s->rom_t;
    if (s->tx_line_free < now)
        s->tx_line_free = now;
    if (s->tx_pos && s->tx_len + n > TXQ) {
        memmove(s->txb, s->txb + s->tx_pos, s->tx_len - s->tx_pos);
        memmove(s->txt, s->txt + s->tx_pos, (s->tx_len - s->tx_pos) * sizeof s->txt[0]);
        s->tx_len -= s->tx_pos;
        s->tx_pos = 0;
    }
    for (size_t i = 0; i < n && s->tx_len < TXQ; i++) {
        s->tx_line_free += s->char_us;
        s->txb[s->tx_len] = b[i];
        s->txt[s->tx_len] = s->tx_line_free + (uint64_t)s->cfg.reply_latency_ms * 1000u;
        s->tx_len++;
    }
    uint64_t until = s->tx_line_free;
    return busy(s, until > now ? until - now : 0, "transmitting");
}

static int tx1(pf_sim_stm32 *s, uint8_t b)
{
    if (b == PF_AN3155_ACK)
        s->st.acks++;
    else if (b == PF_AN3155_NACK)
        s->st.nacks++;
    return tx(s, &b, 1);
}
#define ACK() tx1(s, PF_AN3155_ACK)
#define NACK() tx1(s, PF_AN3155_NACK)

/* --- memory ----------------------------------------------------------------- */

static int in_flash(const pf_sim_stm32 *s, uint32_t a, uint32_t n)
{
    return a >= s->chip->flash_start && (uint64_t)a + n <= (uint64_t)s->chip->flash_start + s->chip->flash_size;
}
static int in_ram(const pf_sim_stm32 *s, uint32_t a, uint32_t n)
{
    return a >= s->chip->ram_start && (uint64_t)a + n <= (uint64_t)s->chip->ram_start + s->chip->ram_size;
}

static void persist(pf_sim_stm32 *s, uint32_t off, uint32_t n)
{
    if (s->flash_fd < 0)
        return;
    if (pwrite(s->flash_fd, s->flash + off, n, off) != (ssize_t)n)
        fprintf(stderr, "sim stm32: cannot write the flash file: %s\n", strerror(errno));
}

static uint32_t unit_erase_us(const pf_sim_stm32 *s, uint32_t unit)
{
    uint64_t per = (uint64_t)s->cfg.erase_ms_per_page * 1000u;
    uint64_t k = unit / 2048u;
    return (uint32_t)(per * (k ? k : 1));
}

/* Erases unit number idx; 0 ok, -1 invalid, -2 write-protected. */
static int erase_unit(pf_sim_stm32 *s, unsigned idx, uint64_t *us)
{
    unsigned base = 0;
    for (unsigned i = 0; i < s->chip->n_regions; i++) {
        const pf_erase_region *r = &s->chip->regions[i];
        unsigned n = r->size / r->unit;
        if (idx < base + n) {
            if (s->wrp)
                return -2;
            uint32_t off = r->start - s->chip->flash_start + (idx - base) * r->unit;
            memset(s->flash + off, 0xFF, r->unit);
            persist(s, off, r->unit);
            *us += unit_erase_us(s, r->unit);
            s->st.erased_units++;
            return 0;
        }
        base += n;
    }
    return -1;
}

static void mass_erase(pf_sim_stm32 *s)
{
    memset(s->flash, 0xFF, s->chip->flash_size);
    persist(s, 0, s->chip->flash_size);
    s->st.mass_erases++;
}

static uint32_t mass_erase_ms(const pf_sim_stm32 *s)
{
    return s->cfg.mass_erase_ms ? s->cfg.mass_erase_ms : 10u * s->cfg.erase_ms_per_page;
}

/* --- commands ----------------------------------------------------------------- */

static void reset_chip(pf_sim_stm32 *s, const char *why)
{
    logf_(s, 1, "chip reset (%s): waiting for 0x7F", why);
    s->synced = 0;
}

static int cmd_get(pf_sim_stm32 *s)
{
    uint8_t b[20];
    size_t n = 0;
    static const uint8_t base_ops[] = {0x00, 0x01, 0x02, 0x11, 0x21, 0x31};
    b[n++] = PF_AN3155_ACK;
    b[n++] = 0; /* N, set below */
    b[n++] = s->chip->bl_version;
    for (size_t i = 0; i < sizeof base_ops; i++)
        b[n++] = base_ops[i];
    b[n++] = s->chip->erase_op;
    b[n++] = 0x63;
    b[n++] = 0x73;
    b[n++] = 0x82;
    b[n++] = 0x92;
    if (s->has_crc)
        b[n++] = PF_AN3155_GET_CHECKSUM;
    b[1] = (uint8_t)(n - 3);
    b[n++] = PF_AN3155_ACK;
    s->st.acks += 2;
    return tx(s, b, n);
}

static int rx_addr(pf_sim_stm32 *s, uint32_t *addr, int *ok)
{
    uint8_t a[5];
    if (rxn(s, a, 5) < 0)
        return -1;
    *ok = pf_an3155_frame_ok(a, 5);
    *addr = pf_an3155_get_u32(a);
    return 0;
}

/* The start that Read, Go, Write and Get Checksum share: NACK while
 * read-protected (or when the command is not offered), else ACK, then an
 * address with its XOR check that `valid` accepts. Returns 1 with *addr once
 * the address is ACKed, 0 after a NACK, -1 on a link error. */
static int begin_addressed(pf_sim_stm32 *s, int offered, int (*valid)(pf_sim_stm32 *, uint32_t), uint32_t *addr)
{
    if (!offered || s->rdp)
        return NACK() < 0 ? -1 : 0;
    if (ACK() < 0)
        return -1;
    int ok;
    if (rx_addr(s, addr, &ok) < 0)
        return -1;
    if (!ok || !valid(s, *addr))
        return NACK() < 0 ? -1 : 0;
    return ACK() < 0 ? -1 : 1;
}

/* The option bytes, where the family's layout is known (RM0008 2.5 and
 * the others cited in stm32_options.c); they follow the WRP state. */
static int in_options(pf_sim_stm32 *s, uint32_t a, uint32_t n)
{
    if (!s->ob_len)
        return 0;
    pf_stm32_ob_factory(s->chip, s->wrp, s->ob);
    return a >= s->ob_addr && (uint64_t)a + n <= (uint64_t)s->ob_addr + s->ob_len;
}

static int readable(pf_sim_stm32 *s, uint32_t a) { return in_flash(s, a, 1) || in_ram(s, a, 1) || in_options(s, a, 1); }
static int runnable(pf_sim_stm32 *s, uint32_t a) { return in_flash(s, a, 4) || in_ram(s, a, 4); }
static int writable(pf_sim_stm32 *s, uint32_t a) { return in_flash(s, a, 1) ? !(a & 3) : in_ram(s, a, 1); }
static int summable(pf_sim_stm32 *s, uint32_t a) { return !(a & 3) && in_flash(s, a, 4); }

static int cmd_read(pf_sim_stm32 *s)
{
    uint32_t addr;
    int r = begin_addressed(s, 1, readable, &addr);
    if (r <= 0)
        return r;
    uint8_t l[2];
    if (rxn(s, l, 2) < 0)
        return -1;
    uint32_t n = (uint32_t)l[0] + 1;
    if (!pf_an3155_cmd_ok(l) || !(in_flash(s, addr, n) || in_ram(s, addr, n) || in_options(s, addr, n)))
        return NACK();
    uint8_t out[1 + 256];
    out[0] = PF_AN3155_ACK;
    s->st.acks++;
    const uint8_t *src = in_flash(s, addr, n)     ? s->flash + (addr - s->chip->flash_start)
                         : in_options(s, addr, n) ? s->ob + (addr - s->ob_addr)
                                                  : s->ram + (addr - s->chip->ram_start);
    memcpy(out + 1, src, n);
    logf_(s, 1, "Read Memory 0x%08x +%u", addr, n);
    return tx(s, out, 1 + n);
}

static int cmd_go(pf_sim_stm32 *s)
{
    uint32_t addr;
    int r = begin_addressed(s, 1, runnable, &addr);
    if (r <= 0)
        return r;
    fprintf(stderr, "sim stm32: Go 0x%08x: the application runs\n", addr);
    reset_chip(s, "Go; a pty has no reset line, so the board is back in its bootloader");
    return 0;
}

static int cmd_write(pf_sim_stm32 *s)
{
    uint32_t addr;
    int r = begin_addressed(s, 1, writable, &addr);
    if (r <= 0)
        return r;
    int flash = in_flash(s, addr, 1);
    uint8_t f[1 + 256 + 1];
    if (rx(s, &f[0]) < 0)
        return -1;
    uint32_t n = (uint32_t)f[0] + 1;
    if (rxn(s, f + 1, n + 1) < 0)
        return -1;
    if (!pf_an3155_frame_ok(f, n + 2)) {
        logf_(s, 0, "Write Memory 0x%08x: data checksum wrong: NACK", addr);
        return NACK();
    }
    if (flash) {
        if ((n & 3) || !in_flash(s, addr, n))
            return NACK();
        if (s->wrp) {
            logf_(s, 0, "Write Memory 0x%08x: write-protected: NACK", addr);
            return NACK();
        }
        uint32_t off = addr - s->chip->flash_start;
        int err = 0;
        for (uint32_t i = 0; i < n; i += 4) {
            uint32_t cur = pf_get_le32(s->flash + off + i), val = pf_get_le32(f + 1 + i);
            if (val == 0xFFFFFFFFu)
                continue;
            if (cur != 0xFFFFFFFFu) { /* programming a word that is not erased */
                err = 1;
                break;
            }
            pf_put_le32(s->flash + off + i, val);
        }
        persist(s, off, n);
        s->st.programmed_bytes += n;
        if (busy(s, (uint64_t)s->cfg.program_us_per_256 * n / 256u, "programming") < 0)
            return -1;
        if (err) {
            logf_(s, 0, "Write Memory 0x%08x: flash not erased (programming error): NACK", addr);
            return NACK();
        }
    } else {
        if (!in_ram(s, addr, n))
            return NACK();
        memcpy(s->ram + (addr - s->chip->ram_start), f + 1, n);
    }
    logf_(s, 1, "Write Memory 0x%08x +%u", addr, n);
    return ACK();
}

static int erase_list(pf_sim_stm32 *s, const uint16_t *pages, unsigned n)
{
    uint64_t us = 0;
    unsigned total = pf_stm32_unit_count(s->chip);
    for (unsigned i = 0; i < n; i++)
        if (pages[i] >= total) {
            logf_(s, 0, "erase: page %u does not exist (%u pages): NACK", pages[i], total);
            return NACK();
        }
    for (unsigned i = 0; i < n; i++) {
        int r = erase_unit(s, pages[i], &us);
        if (r == -2) {
            if (busy(s, us, "erasing") < 0)
                return -1;
            logf_(s, 0, "erase: page %u is write-protected: NACK", pages[i]);
            return NACK();
        }
    }
    logf_(s, 1, "erased %u page(s) from %u", n, n ? pages[0] : 0);
    if (busy(s, us, "erasing") < 0)
        return -1;
    return ACK();
}

static int do_mass_erase(pf_sim_stm32 *s)
{
    if (s->chip->no_mass_erase) {
        logf_(s, 0, "mass erase is not supported by this ROM: NACK");
        return NACK();
    }
    if (s->wrp) {
        logf_(s, 0, "mass erase: write-protected: NACK");
        return NACK();
    }
    mass_erase(s);
    logf_(s, 1, "mass erase");
    if (busy(s, (uint64_t)mass_erase_ms(s) * 1000u, "mass erasing") < 0)
        return -1;
    return ACK();
}

static int cmd_erase(pf_sim_stm32 *s)
{
    if (s->rdp)
        return NACK();
    if (ACK() < 0)
        return -1;
    uint8_t f[2 + 256];
    if (rx(s, &f[0]) < 0)
        return -1;
    if (f[0] == 0xFF) {
        if (rx(s, &f[1]) < 0)
            return -1;
        if (f[1] != 0x00)
            return NACK();
        return do_mass_erase(s);
    }
    unsigned n = f[0] + 1u;
    if (rxn(s, f + 1, n + 1) < 0)
        return -1;
    if (!pf_an3155_frame_ok(f, n + 2))
        return NACK();
    uint16_t pages[256];
    for (unsigned i = 0; i < n; i++)
        pages[i] = f[1 + i];
    return erase_list(s, pages, n);
}

static int cmd_ext_erase(pf_sim_stm32 *s)
{
    if (s->rdp)
        return NACK();
    if (ACK() < 0)
        return -1;
    uint8_t h[2];
    if (rxn(s, h, 2) < 0)
        return -1;
    uint16_t code = pf_get_be16(h);
    if (code >= 0xFFF0) {
        uint8_t c;
        if (rx(s, &c) < 0)
            return -1;
        if ((uint8_t)(h[0] ^ h[1]) != c)
            return NACK();
        if (code == 0xFFFF || code == 0xFFFE || code == 0xFFFD)
            return do_mass_erase(s); /* bank erase: the simulated parts are treated as one bank */
        return NACK();
    }
    unsigned n = code + 1u;
    static uint8_t f[2 + 2 * 65536 + 1];
    f[0] = h[0];
    f[1] = h[1];
    if (rxn(s, f + 2, 2 * (size_t)n + 1) < 0)
        return -1;
    if (!pf_an3155_frame_ok(f, 2 + 2 * (size_t)n + 1))
        return NACK();
    static uint16_t pages[65536];
    for (unsigned i = 0; i < n; i++)
        pages[i] = pf_get_be16(f + 2 + 2 * i);
    return erase_list(s, pages, n);
}

static int cmd_checksum(pf_sim_stm32 *s)
{
    uint32_t addr, len;
    int r = begin_addressed(s, s->has_crc, summable, &addr);
    if (r <= 0)
        return r;
    int ok;
    if (rx_addr(s, &len, &ok) < 0)
        return -1;
    if (!ok || (len & 3) || len == 0 || !in_flash(s, addr, len))
        return NACK();
    if (ACK() < 0)
        return -1;
    uint32_t crc = pf_crc32_stm32(0xFFFFFFFFu, s->flash + (addr - s->chip->flash_start), len);
    /* The CRC unit takes about one bus cycle per word: ~16 us per KiB at 64 MHz. */
    if (busy(s, 16u * (len / 1024u) + 10u, "computing a checksum") < 0)
        return -1;
    uint8_t out[6];
    out[0] = PF_AN3155_ACK;
    pf_an3155_u32(out + 1, crc);
    s->st.acks++;
    logf_(s, 1, "Get Checksum 0x%08x +%u = 0x%08x", addr, len, crc);
    return tx(s, out, 6);
}

static int cmd_protect(pf_sim_stm32 *s, uint8_t op)
{
    if (s->rdp && op != PF_AN3155_READOUT_UNPROTECT && op != PF_AN3155_READOUT_PROTECT)
        return NACK();
    if (ACK() < 0)
        return -1;
    switch (op) {
    case PF_AN3155_WRITE_PROTECT: {
        uint8_t f[2 + 256];
        if (rx(s, &f[0]) < 0)
            return -1;
        unsigned n = f[0] + 1u;
        if (rxn(s, f + 1, n + 1) < 0)
            return -1;
        if (!pf_an3155_frame_ok(f, n + 2))
            return NACK();
        s->wrp = 1;
        if (ACK() < 0)
            return -1;
        reset_chip(s, "Write Protect");
        return 0;
    }
    case PF_AN3155_WRITE_UNPROTECT:
        s->wrp = 0;
        if (busy(s, 20000, "writing option bytes") < 0 || ACK() < 0)
            return -1;
        reset_chip(s, "Write Unprotect");
        return 0;
    case PF_AN3155_READOUT_PROTECT:
        s->rdp = 1;
        if (busy(s, 20000, "writing option bytes") < 0 || ACK() < 0)
            return -1;
        reset_chip(s, "Readout Protect");
        return 0;
    default: /* READOUT_UNPROTECT: mass erase, then lift RDP */
        memset(s->flash, 0xFF, s->chip->flash_size);
        persist(s, 0, s->chip->flash_size);
        s->st.mass_erases++;
        s->rdp = 0;
        s->wrp = 0;
        fprintf(stderr, "sim stm32: Readout Unprotect: flash mass-erased, protection removed\n");
        if (busy(s, (uint64_t)mass_erase_ms(s) * 1000u, "mass erasing") < 0 || ACK() < 0)
            return -1;
        reset_chip(s, "Readout Unprotect");
        return 0;
    }
}

/* One command (or the autobaud byte). -1 when asked to stop. */
static int rom_step(pf_sim_stm32 *s)
{
    uint8_t c[2];
    if (!s->synced) {
        if (rx(s, &c[0]) < 0)
            return -1;
        if (c[0] != PF_AN3155_SYNC) {
            logf_(s, 1, "autobaud: ignoring 0x%02x before 0x7F", c[0]);
            return 0;
        }
        s->synced = 1;
        s->st.syncs++;
        logf_(s, 1, "autobaud: 0x7F, %u baud", s->cfg.baud);
        return ACK();
    }
    if (rx(s, &c[0]) < 0 || rx(s, &c[1]) < 0)
        return -1;
    if (!pf_an3155_cmd_ok(c)) {
        logf_(s, 1, "command 0x%02x 0x%02x: complement wrong: NACK", c[0], c[1]);
        return NACK();
    }
    s->st.commands++;
    logf_(s, 2, "command 0x%02x (%s)", c[0], pf_an3155_op_name(c[0]));
    switch (c[0]) {
    case PF_AN3155_GET: return cmd_get(s);
    case PF_AN3155_GET_VERSION: {
        uint8_t b[5] = {PF_AN3155_ACK, s->chip->bl_version, 0x00, 0x00, PF_AN3155_ACK};
        s->st.acks += 2;
        return tx(s, b, 5);
    }
    case PF_AN3155_GET_ID: {
        uint8_t b[5] = {PF_AN3155_ACK, 0x01, (uint8_t)(s->chip->pid >> 8), (uint8_t)s->chip->pid, PF_AN3155_ACK};
        s->st.acks += 2;
        return tx(s, b, 5);
    }
    case PF_AN3155_READ: return cmd_read(s);
    case PF_AN3155_GO: return cmd_go(s);
    case PF_AN3155_WRITE: return cmd_write(s);
    case PF_AN3155_ERASE: return s->chip->erase_op == PF_AN3155_ERASE ? cmd_erase(s) : NACK();
    case PF_AN3155_EXT_ERASE: return s->chip->erase_op == PF_AN3155_EXT_ERASE ? cmd_ext_erase(s) : NACK();
    case PF_AN3155_WRITE_PROTECT:
    case PF_AN3155_WRITE_UNPROTECT:
    case PF_AN3155_READOUT_PROTECT:
    case PF_AN3155_READOUT_UNPROTECT: return cmd_protect(s, c[0]);
    case PF_AN3155_GET_CHECKSUM: return cmd_checksum(s);
    default: return NACK();
    }
}

/* --- life cycle ---------------------------------------------------------------- */

int pf_sim_stm32_open(pf_sim_stm32 **out, const pf_sim_stm32_config *cfg, int fd, pf_diag *diag)
{
    if (!out || !cfg || !cfg->chip)
        return pf_diag_set(diag, PF_ERR_ARG, "sim stm32: no chip given");
    pf_sim_stm32 *s = calloc(1, sizeof *s);
    if (!s)
        return pf_diag_set(diag, PF_ERR_NOMEM, "sim stm32: out of memory");
    s->cfg = *cfg;
    if (!s->cfg.baud)
        s->cfg.baud = 115200;
    s->chip = cfg->chip;
    s->fd = fd;
    s->flash_fd = -1;
    s->rdp = cfg->rdp;
    s->wrp = cfg->wrp;
    if (!pf_stm32_ob_where(s->chip, &s->ob_addr, &s->ob_len))
        s->ob_len = 0;
    s->has_crc = cfg->checksum < 0 ? cfg->chip->has_checksum : cfg->checksum;
    s->char_us = (11u * 1000000u + s->cfg.baud - 1) / s->cfg.baud; /* 8E1: start, 8 data, parity, stop */
    s->rom_t = now_us();
    s->flash = malloc(s->chip->flash_size);
    s->ram = calloc(1, s->chip->ram_size);
    if (!s->flash || !s->ram) {
        pf_sim_stm32_close(s);
        return pf_diag_set(diag, PF_ERR_NOMEM, "sim stm32: out of memory");
    }
    memset(s->flash, 0xFF, s->chip->flash_size);
    if (cfg->flash_path) {
        s->flash_fd = open(cfg->flash_path, O_RDWR | O_CREAT, 0644);
        if (s->flash_fd < 0) {
            int e = errno;
            pf_sim_stm32_close(s);
            return pf_diag_set(diag, PF_ERR_IO, "sim stm32: cannot open flash file %s: %s", cfg->flash_path,
                               strerror(e));
        }
        ssize_t r = pread(s->flash_fd, s->flash, s->chip->flash_size, 0);
        if (r < 0)
            r = 0;
        if ((uint32_t)r < s->chip->flash_size) {
            memset(s->flash + r, 0xFF, s->chip->flash_size - (uint32_t)r);
            persist(s, (uint32_t)r, s->chip->flash_size - (uint32_t)r);
        }
    }
    *out = s;
    return PF_OK;
}

int pf_sim_stm32_run(pf_sim_stm32 *s, volatile sig_atomic_t *stop)
{
    s->stop = stop;
    while (rom_step(s) >= 0) {
    }
    /* let queued answers leave */
    uint64_t end = now_us() + 200000;
    while (s->tx_pos < s->tx_len && now_us() < end) {
        tx_flush_due(s);
        struct timespec ts = {0, 1000000};
        nanosleep(&ts, NULL);
    }
    return PF_OK;
}

void pf_sim_stm32_get_stats(const pf_sim_stm32 *s, pf_sim_stm32_stats *out) { *out = s->st; }
const uint8_t *pf_sim_stm32_flash(const pf_sim_stm32 *s) { return s->flash; }
int pf_sim_stm32_rdp(const pf_sim_stm32 *s) { return s->rdp; }
int pf_sim_stm32_wrp(const pf_sim_stm32 *s) { return s->wrp; }

void pf_sim_stm32_close(pf_sim_stm32 *s)
{
    if (!s)
        return;
    if (s->flash_fd >= 0)
        close(s->flash_fd);
    free(s->flash);
    free(s->ram);
    free(s);
}

/* --- peerflash sim stm32 ------------------------------------------------------------- */

static volatile sig_atomic_t sim_stop;
static void on_signal(int sig)
{
    (void)sig;
    sim_stop = 1;
}

static void usage(FILE *f)
{
    fprintf(f,
            "usage: peerflash sim stm32 --port PATH --chip NAME [--flash FILE]\n"
            "           [--program-us-per-256 N] [--erase-ms-per-page N] [--mass-erase-ms N]\n"
            "           [--rdp] [--wrp] [--checksum on|off] [--baud N] [--reply-latency-ms N] [-v]\n"
            "A simulated STM32 system-memory bootloader (AN3155, USART 8E1) on a pty.\n"
            "As on a real board (opening a port drives neither BOOT0 nor NRST), opening the\n"
            "port does not reset the chip; Go and the (un)protect commands do.\n"
            "  --port PATH            pty:PATH (created; a bare PATH means the same) or a tty\n"
            "  --chip NAME            e.g. F103xB, F401xE, G07xxB, L47xxG, H74xxI (--chip list)\n"
            "  --flash FILE           flash content, kept across runs (default: erased, in memory)\n"
            "  --program-us-per-256 N programming time of 256 bytes (default 7000)\n"
            "  --erase-ms-per-page N  erase time per 2 KiB of a page/sector, >= one per unit (default 20)\n"
            "  --mass-erase-ms N      mass erase time (default 10 x erase-ms-per-page)\n"
            "  --rdp / --wrp          start read-protected / write-protected\n"
            "  --checksum on|off      offer Get Checksum (0xA1) (default: the chip table's)\n"
            "  --baud N               line rate modelled for byte timing (default 115200)\n"
            "  --reply-latency-ms N   delay every byte to the host (a USB-serial latency timer)\n");
}

int pf_sim_stm32_main(int argc, char **argv)
{
    pf_sim_stm32_config cfg = PF_SIM_STM32_CONFIG_DEFAULT();
    const char *port = NULL, *chip = NULL;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
#define NEEDV()                                                              \
    do {                                                                     \
        if (!v) {                                                            \
            fprintf(stderr, "peerflash: sim stm32: %s needs a value\n", a); \
            return 2;                                                        \
        }                                                                    \
        i++;                                                                 \
    } while (0)
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            usage(stdout);
            return 0;
        } else if (!strcmp(a, "--port")) {
            NEEDV();
            port = v;
        } else if (!strcmp(a, "--chip")) {
            NEEDV();
            chip = v;
        } else if (!strcmp(a, "--flash")) {
            NEEDV();
            cfg.flash_path = v;
        } else if (!strcmp(a, "--program-us-per-256")) {
            NEEDV();
            cfg.program_us_per_256 = (uint32_t)strtoul(v, NULL, 0);
        } else if (!strcmp(a, "--erase-ms-per-page")) {
            NEEDV();
            cfg.erase_ms_per_page = (uint32_t)strtoul(v, NULL, 0);
        } else if (!strcmp(a, "--mass-erase-ms")) {
            NEEDV();
            cfg.mass_erase_ms = (uint32_t)strtoul(v, NULL, 0);
        } else if (!strcmp(a, "--baud")) {
            NEEDV();
            cfg.baud = (uint32_t)strtoul(v, NULL, 0);
        } else if (!strcmp(a, "--reply-latency-ms")) {
            NEEDV();
            cfg.reply_latency_ms = (uint32_t)strtoul(v, NULL, 0);
        } else if (!strcmp(a, "--checksum")) {
            NEEDV();
            cfg.checksum = !strcmp(v, "on") ? 1 : 0;
        } else if (!strcmp(a, "--rdp")) {
            cfg.rdp = 1;
        } else if (!strcmp(a, "--wrp")) {
            cfg.wrp = 1;
        } else if (!strcmp(a, "-v")) {
            cfg.verbose++;
        } else {
            fprintf(stderr, "peerflash: sim stm32: unknown option '%s'\n", a);
            usage(stderr);
            return 2;
        }
    }
    if (chip && !strcmp(chip, "list")) {
        for (unsigned i = 0; i < pf_stm32_n_chips; i++) {
            const pf_stm32_chip *c = &pf_stm32_chips[i];
            printf("%-14s %-3s PID 0x%03x  %5u KiB flash  bootloader v%u.%u  %s%s\n", c->name, c->family, c->pid,
                   c->flash_size / 1024, c->bl_version >> 4, c->bl_version & 15,
                   c->erase_op == PF_AN3155_EXT_ERASE ? "Extended Erase" : "Erase",
                   c->has_checksum ? ", Get Checksum" : "");
        }
        return 0;
    }
    if (!port || !chip) {
        fprintf(stderr, "peerflash: sim stm32: --port and --chip are required\n");
        usage(stderr);
        return 2;
    }
    cfg.chip = pf_stm32_chip_by_name(chip);
    if (!cfg.chip) {
        fprintf(stderr, "peerflash: sim stm32: unknown chip '%s' (see --chip list)\n", chip);
        return 2;
    }
    pf_diag d = {0};
    pf_posix_link link;
    char spec[300];
    if (strncmp(port, "pty:", 4) != 0 && access(port, F_OK) != 0)
        snprintf(spec, sizeof spec, "pty:%s", port);
    else
        snprintf(spec, sizeof spec, "%s", port);
    if (pf_posix_open(&link, spec, &d) < 0) {
        fprintf(stderr, "peerflash: sim stm32: %s\n", d.text);
        return 4;
    }
    if (link.kind == PF_POSIX_PTY_MASTER) {
        /* A tool that skips port setup (stm32flash -b 0) reads with the
         * slave's VMIN/VTIME: give it a 1 s read timeout (it sets 0.5 s on a
         * real port; the slack absorbs scheduling stalls of a loaded host). */
        int sl = open(link.slave, O_RDWR | O_NOCTTY);
        struct termios t;
        if (sl >= 0 && tcgetattr(sl, &t) == 0) {
            t.c_cc[VMIN] = 0;
            t.c_cc[VTIME] = 10;
            tcsetattr(sl, TCSANOW, &t);
        }
        if (sl >= 0)
            close(sl);
    }
    pf_sim_stm32 *s;
    if (pf_sim_stm32_open(&s, &cfg, link.fd, &d) < 0) {
        fprintf(stderr, "peerflash: %s\n", d.text);
        pf_posix_close(&link);
        return 1;
    }
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);
    fprintf(stderr, "sim stm32: %s (PID 0x%03x, %u KiB, bootloader v%u.%u%s%s%s) on %s\n", cfg.chip->name,
            cfg.chip->pid, cfg.chip->flash_size / 1024, cfg.chip->bl_version >> 4, cfg.chip->bl_version & 15,
            s->has_crc ? ", Get Checksum" : "", cfg.rdp ? ", read-protected" : "", cfg.wrp ? ", write-protected" : "",
            port);
    pf_sim_stm32_run(s, &sim_stop);
    pf_sim_stm32_stats st;
    pf_sim_stm32_get_stats(s, &st);
    fprintf(stderr,
            "sim stm32: %u commands, %u ACK, %u NACK, %u overruns, %u syncs, %u bytes programmed, %u units erased, %u "
            "mass erases\n",
            st.commands, st.acks, st.nacks, st.overruns, st.syncs, st.programmed_bytes, st.erased_units,
            st.mass_erases);
    pf_sim_stm32_close(s);
    pf_posix_close(&link);
    return 0;
}
