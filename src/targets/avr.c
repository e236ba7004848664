/* The AVR driver: STK500v1 (Optiboot, ATmegaBOOT) over a byte link.
 *
 * One command at a time: the next command is sent only after the reply to the
 * previous one has ended with STK_OK. Optiboot does not read the UART while it
 * erases and writes a page, and the ATmega's receiver holds two bytes plus
 * the shift register, so anything sent ahead of the reply could be lost on a
 * board. Speed comes from what is safe instead: no fixed sleeps where the
 * protocol gives a signal (the reply), no redundant commands, 256-byte reads
 * (the protocol's largest block) served to the job's page-sized reads from a
 * cache, and optional read-compare that skips pages already holding the data.
 */
#include <string.h>

#include "codec/stk500.h"
#include "avr_state.h"

#define DEFAULT_BAUD 115200u
#define CMD_TIMEOUT_MS 1000u     /* one command and its reply (a page write is ~5 ms + 12 ms of bytes) */
#define SYNC_INTERVAL_MS 100u   /* one sync try per interval while the bootloader starts */
#define NEXT_SYNC_WAIT_MS 400u
/* settle() must tell the answer to its own CRC_EOP from a late answer to an
 * earlier try: both waits cover the round trip through a bridge or a loaded
 * host, not just the chip (Optiboot answers in microseconds). With 30/60 ms,
 * test_avr_faults through `peerflash wire` on a loaded machine took a late
 * INSYNC OK for the answer to the first EOP, sent Read Signature while
 * Optiboot still waited for an EOP, and Optiboot reset into the application
 * (seen: 2 INSYNC OK came back for 18 bytes sent, then a watchdog reset). */
#define SETTLE_QUIET_MS 150u     /* late answers to earlier sync tries have arrived */
#define SETTLE_DRAIN_MAX_MS 600u
#define SETTLE_WAIT_MS 300u      /* below Optiboot's 1 s watchdog between two bytes */
#define RESET_RELEASE_MS 100u    /* lines released: the reset capacitor recharges */
#define RESET_SETTLE_MS 50u      /* after the pulse: the chip leaves reset (RC circuit, no signal) */

static pf_avr *me(void *self)
{
    return (pf_avr *)self;
}

static const pf_port *port_of(const pf_avr *a)
{
    return a->cfg.port;
}

static int avr_open(void *self, const pf_target_config *cfg)
{
    if (!self || !cfg || !cfg->port || !cfg->port->read || !cfg->port->write || !cfg->port->now_ms)
        return PF_ERR_ARG;
    pf_avr *a = me(self);
    int rc = a->read_compare; /* may have been set before open */
    memset(a, 0, sizeof *a);
    a->cfg = *cfg;
    a->read_compare = rc;
    return PF_OK;
}

void pf_avr_set_read_compare(void *self, int on)
{
    pf_avr *avr = self;
    if (avr)
        avr->read_compare = on ? 1 : 0;
}

static int link_failed(pf_avr *a, int r, const char *what, uint32_t addr, size_t got, size_t want)
{
    if (r == PF_ERR_TIMEOUT)
        return pf_diag_set(a->cfg.diag, PF_ERR_TIMEOUT,
                           "no answer from the bootloader to %s at 0x%05lx (%zu of %zu reply bytes arrived)", what,
                           (unsigned long)addr, got, want);
    if (r == PF_ERR_CLOSED)
        return pf_diag_set(a->cfg.diag, PF_ERR_CLOSED, "the link closed during %s at 0x%05lx", what,
                           (unsigned long)addr);
    return pf_diag_set(a->cfg.diag, r, "%s at 0x%05lx: %s", what, (unsigned long)addr, pf_strerror(r));
}

/* Sends one command frame and reads INSYNC, plen payload bytes, OK. */
static int command(pf_avr *a, const uint8_t *frame, size_t n, uint8_t *payload, size_t plen, const char *what,
                   uint32_t addr)
{
    const pf_port *p = port_of(a);
    int r = pf_port_write_all(p, frame, n);
    if (r < 0)
        return link_failed(a, r, what, addr, 0, plen + 2);
    uint32_t deadline = pf_deadline(p, CMD_TIMEOUT_MS);
    uint8_t status;
    size_t got = 0;
    r = pf_port_read_exact(p, &status, 1, deadline, &got);
    if (r < 0)
        return link_failed(a, r, what, addr, got, plen + 2);
    if (status != PF_STK_INSYNC) {
        a->last_bad = status;
        a->have_bad = 1;
        a->ext_valid = 0;
        a->addr_valid = 0;
        uint8_t reply[2] = {status, PF_STK_OK};
        r = pf_stk_check_reply(reply, 2, what, NULL, a->cfg.diag);
        pf_diag_code(a->cfg.diag, frame[0], status);
        return r;
    }
    if (plen) {
        r = pf_port_read_exact(p, payload, plen, deadline, &got);
        if (r < 0)
            return link_failed(a, r, what, addr, got + 1, plen + 2);
    }
    uint8_t end;
    r = pf_port_read_exact(p, &end, 1, deadline, &got);
    if (r < 0)
        return link_failed(a, r, what, addr, plen + 1, plen + 2);
    if (end != PF_STK_OK) {
        a->last_bad = end;
        a->have_bad = 1;
        a->ext_valid = 0;
        a->addr_valid = 0;
        uint8_t reply[2] = {PF_STK_INSYNC, end};
        r = pf_stk_check_reply(reply, 2, what, NULL, a->cfg.diag);
        pf_diag_code(a->cfg.diag, frame[0], end);
        return r;
    }
    return PF_OK;
}

/* The Arduino auto-reset: released lines let the capacitor charge, asserting
 * them pulls DTR#/RTS# low and the edge resets the chip. Links without modem
 * lines (pty, TCP) skip this without waiting. */
static void pulse_reset(pf_avr *a)
{
    const pf_port *p = port_of(a);
    const char *how = a->cfg.reset;
    if (how && !strcmp(how, "none"))
        return;
    if (!p->set_lines || p->set_lines(p->ctx, PF_LINE_RELEASE, PF_LINE_RELEASE) != PF_OK) {
        pf_port_logf(p, 2, "avr: no modem lines on this link; relying on the port or bridge to reset the target");
        return;
    }
    pf_port_delay(p, RESET_RELEASE_MS);
    p->set_lines(p->ctx, PF_LINE_ASSERT, PF_LINE_ASSERT);
    pf_port_delay(p, RESET_SETTLE_MS);
}

/* Waits for one "INSYNC OK" within wait_ms. Returns 1 when it came, 0 on
 * timeout, negative on a link error; counts other bytes in *junk. */
static int await_sync_reply(pf_avr *a, uint32_t wait_ms, unsigned *junk, uint8_t first_junk[4])
{
    const pf_port *p = port_of(a);
    uint32_t deadline = pf_deadline(p, wait_ms);
    int have_insync = 0;
    for (;;) {
        uint8_t b;
        size_t got = 0;
        int r = pf_port_read_exact(p, &b, 1, deadline, &got);
        if (r == PF_ERR_TIMEOUT)
            return 0;
        if (r < 0)
            return r;
        if (have_insync && b == PF_STK_OK)
            return 1;
        if (b == PF_STK_INSYNC) {
            have_insync = 1;
            continue;
        }
        have_insync = 0;
        if (*junk < 4)
            first_junk[*junk] = b;
        (*junk)++;
        a->last_bad = b;
        a->have_bad = 1;
    }
}

static int no_sync(pf_avr *a, unsigned tries, unsigned junk, const uint8_t first_junk[4], uint32_t baud)
{
    char seen[64];
    if (junk) {
        unsigned n = junk < 4 ? junk : 4;
        size_t at = pf_format(seen, sizeof seen, "; it sent %u other bytes (", junk);
        for (unsigned i = 0; i < n; i++)
            at += pf_format(seen + at, sizeof seen - at, "%s0x%02x", i ? " " : "", first_junk[i]);
        pf_format(seen + at, sizeof seen - at, "%s)", junk > 4 ? " ..." : "");
    } else {
        pf_format(seen, sizeof seen, "; nothing came back");
    }
    pf_diag_set(a->cfg.diag, PF_ERR_NO_SYNC,
                "no STK500v1 bootloader answered %u sync tries at %lu baud%s. Wrong baud (Optiboot: 115200, "
                "older Arduinos: 57600)? No bootloader? A sketch running (press reset just before)?",
                tries, (unsigned long)baud, seen);
    if (junk)
        pf_diag_code(a->cfg.diag, PF_STK_GET_SYNC, first_junk[0]);
    pf_diag_hint(a->cfg.diag, PF_HINT_BAUD | PF_HINT_RESET | PF_HINT_BOOT_MODE);
    return PF_ERR_NO_SYNC;
}

/* After a reply, bytes of other sync tries may still sit in the bootloader:
 * "30 20 30" fits the ATmega's receiver (two bytes plus the shift register)
 * while Optiboot flashes its LED. Optiboot then waits for the CRC_EOP of the
 * last 0x30, and the next real command would be taken as a bad EOP (Optiboot
 * resets into the application). A lone CRC_EOP settles both states without
 * a reset: if Optiboot waits for an EOP it answers INSYNC OK; if it waits for
 * a command it takes 0x20 as an unknown command, and a second 0x20 completes
 * that one with INSYNC OK. */
static int settle(pf_avr *a, unsigned *junk, uint8_t first_junk[4])
{
    const pf_port *p = port_of(a);
    const uint8_t eop = PF_STK_CRC_EOP;
    int r = pf_port_drain_input(p, SETTLE_QUIET_MS, pf_deadline(p, SETTLE_DRAIN_MAX_MS));
    if (r < 0)
        return r;
    for (int i = 0; i < 2; i++) {
        r = pf_port_write_all(p, &eop, 1);
        if (r < 0)
            return r;
        r = await_sync_reply(a, i == 0 ? SETTLE_WAIT_MS : NEXT_SYNC_WAIT_MS, junk, first_junk);
        if (r != 0)
            return r;
    }
    return 0;
}

/* Finds the bootloader. The first try is the standard GET_SYNC ("0 "),
 * which every STK500v1 bootloader answers. Later tries are two CRC_EOPs
 * ("  "): the chip may still be starting (an Uno's start-up time, then
 * Optiboot's LED flashes) while tries pile up in its receiver, and parts of
 * them get lost. Any run of 0x20 bytes is safe in every state Optiboot can be
 * in (each either ends a pending command or is an unknown command that the
 * next 0x20 ends, each answered INSYNC OK), whereas a second GET_SYNC that
 * lands while Optiboot waits for the EOP of a half-received first one makes
 * it reset into the application. settle() then leaves it idle. */
static int sync_bootloader(pf_avr *a, uint32_t baud)
{
    const pf_port *p = port_of(a);
    uint32_t total = a->sync_timeout_ms ? a->sync_timeout_ms : PF_AVR_SYNC_TIMEOUT_MS;
    uint32_t deadline = pf_deadline(p, total);
    /* Whatever arrived before (a sketch's output, an earlier session's
     * replies) is not an answer to us. */
    if (p->flush_input)
        p->flush_input(p->ctx);
    int r = pf_port_drain_input(p, 2, pf_deadline(p, 20));
    if (r < 0)
        return link_failed(a, r, "sync", 0, 0, 2);
    unsigned tries = 0, junk = 0;
    uint8_t first_junk[4] = {0, 0, 0, 0};
    uint8_t frame[2];
    const uint8_t probe[2] = {PF_STK_CRC_EOP, PF_STK_CRC_EOP};
    size_t n = pf_stk_get_sync(frame);
    while (pf_remaining(p, deadline) > 0) {
        r = pf_port_write_all(p, tries == 0 ? frame : probe, tries == 0 ? n : sizeof probe);
        if (r < 0)
            return link_failed(a, r, "sync", 0, 0, 2);
        tries++;
        uint32_t left = pf_remaining(p, deadline);
        r = await_sync_reply(a, SYNC_INTERVAL_MS < left ? SYNC_INTERVAL_MS : left, &junk, first_junk);
        if (r < 0)
            return link_failed(a, r, "sync", 0, 0, 2);
        if (r == 0)
            continue;
        if (tries == 1 && junk == 0) {
            pf_port_logf(p, 2, "avr: in sync");
            return PF_OK;
        }
        r = settle(a, &junk, first_junk);
        if (r < 0)
            return link_failed(a, r, "sync", 0, 0, 2);
        if (r == 1) {
            pf_port_logf(p, 2, "avr: in sync after %u tries", tries);
            return PF_OK;
        }
    }
    return no_sync(a, tries, junk, first_junk, baud);
}

static void bootloader_name(pf_avr *a, pf_target_info *info)
{
    /* Optiboot reports major version 4 and up as "software version";
     * the STK500 firmware and ATmegaBOOT report 1 or 2. */
    if (a->sw_major >= 4 && a->sw_major < 20)
        pf_format(info->bootloader, sizeof info->bootloader, "Optiboot %u.%u", a->sw_major, a->sw_minor);
    else
        pf_format(info->bootloader, sizeof info->bootloader, "STK500v1 bootloader %u.%u", a->sw_major, a->sw_minor);
}

static void chip_list(char *out, size_t size)
{
    size_t at = 0;
    out[0] = '\0';
    for (const pf_avr_chip *c = pf_avr_chips; c->name && at + 1 < size; c++)
        at += pf_format(out + at, size - at, "%s%s", at ? " " : "", c->name);
}

static int avr_connect(void *self, pf_target_info *info)
{
    pf_avr *a = me(self);
    if (!info)
        return PF_ERR_ARG;
    const pf_port *p = port_of(a);
    const pf_avr_chip *want = NULL;
    if (a->cfg.chip && a->cfg.chip[0] && strcmp(a->cfg.chip, "auto") != 0) {
        want = pf_avr_chip_by_name(a->cfg.chip);
        if (!want) {
            char list[160];
            chip_list(list, sizeof list);
            return pf_diag_set(a->cfg.diag, PF_ERR_CHIP, "unknown AVR chip '%s' (known: %s)", a->cfg.chip, list);
        }
    }
    /* STK500v1 cannot change its rate: --baud (fast_baud) is the rate, as
     * for every target; --connect-baud (baud) still wins when given. */
    uint32_t baud = a->cfg.baud ? a->cfg.baud : a->cfg.fast_baud ? a->cfg.fast_baud : DEFAULT_BAUD;
    int r = pf_port_set_line(p, baud, PF_FRAME_8N1);
    if (r < 0)
        return pf_diag_set(a->cfg.diag, r, "cannot set the line to %lu baud 8N1", (unsigned long)baud);
    a->connected = 0;
    a->ext_valid = 0;
    a->addr_valid = 0;
    a->cache_len = 0;
    a->have_bad = 0;
    pulse_reset(a);
    r = sync_bootloader(a, baud);
    if (r < 0)
        return r;

    /* STK500v1 answers carry no checksum: a bit flipped on the line would
     * read as another chip (exit "target refused"). Read the signature until
     * two answers in a row agree; answers that keep differing are noise. */
    uint8_t sig[3], again[3];
    size_t n = pf_stk_read_sign(a->frame);
    r = command(a, a->frame, n, sig, 3, "Read Signature", 0);
    for (int tries = 0; r == PF_OK; tries++) {
        n = pf_stk_read_sign(a->frame);
        r = command(a, a->frame, n, again, 3, "Read Signature", 0);
        if (r < 0 || !memcmp(sig, again, 3))
            break;
        if (tries == 3) {
            pf_diag_set(a->cfg.diag, PF_ERR_CRC,
                        "the signature read back differently each time (last %02x %02x %02x, then %02x %02x "
                        "%02x): the line corrupts data; check the cable, or lower --baud",
                        sig[0], sig[1], sig[2], again[0], again[1], again[2]);
            pf_diag_hint(a->cfg.diag, PF_HINT_WIRING | PF_HINT_BAUD);
            return PF_ERR_CRC;
        }
        memcpy(sig, again, 3);
    }
    if (r < 0)
        return r;
    const pf_avr_chip *chip = pf_avr_chip_by_sig(sig);
    if (want && (!chip || chip != want))
        return pf_diag_set(a->cfg.diag, PF_ERR_CHIP,
                           "the target is %s (signature %02x %02x %02x), not the %s (%02x %02x %02x) that --chip asks for",
                           chip ? chip->name : "an unknown AVR", sig[0], sig[1], sig[2], want->name, want->sig[0],
                           want->sig[1], want->sig[2]);
    if (!chip) {
        char list[160];
        chip_list(list, sizeof list);
        return pf_diag_set(a->cfg.diag, PF_ERR_CHIP, "unknown AVR signature %02x %02x %02x (known: %s)", sig[0], sig[1],
                           sig[2], list);
    }
    a->chip = chip;

    n = pf_stk_get_parameter(a->frame, PF_STK_PARAM_SW_MAJOR);
    r = command(a, a->frame, n, &a->sw_major, 1, "Get Parameter (software major)", 0);
    if (r < 0)
        return r;
    n = pf_stk_get_parameter(a->frame, PF_STK_PARAM_SW_MINOR);
    r = command(a, a->frame, n, &a->sw_minor, 1, "Get Parameter (software minor)", 0);
    if (r < 0)
        return r;
    n = pf_stk_enter_progmode(a->frame);
    r = command(a, a->frame, n, NULL, 0, "Enter Programming Mode", 0);
    if (r < 0)
        return r;

    memset(info, 0, sizeof *info);
    pf_format(info->chip, sizeof info->chip, "%s", chip->name);
    bootloader_name(a, info);
    info->chip_id = ((uint32_t)sig[0] << 16) | ((uint32_t)sig[1] << 8) | sig[2];
    info->caps = PF_CAP_READ | PF_CAP_RUN;
    info->digest = PF_DIGEST_NONE;
    pf_flash_geometry *g = &info->geom;
    g->flash_start = 0;
    g->flash_size = chip->flash_size;
    g->write_align = chip->page_size;
    g->write_max = chip->page_size;
    g->erased_value = 0xFF;
    g->erase_style = PF_ERASE_BY_WRITE;
    g->n_regions = 1;
    g->regions[0].start = 0;
    g->regions[0].size = chip->flash_size; /* bytes, in page-sized erase units */
    g->regions[0].unit = chip->page_size;
    g->n_protected = 1;
    g->protected_ranges[0].start = chip->flash_size - chip->boot_size;
    g->protected_ranges[0].size = chip->boot_size;
    g->protected_ranges[0].what = "bootloader section";
    a->connected = 1;
    pf_port_logf(p, 1, "avr: %s, %s", info->chip, info->bootloader);
    return PF_OK;
}

static int need_connected(pf_avr *a)
{
    if (!a->connected || !a->chip)
        return pf_diag_set(a->cfg.diag, PF_ERR_STATE, "the AVR target is not connected");
    return PF_OK;
}

/* Sets the bootloader's address register to byte address addr. A read
 * leaves the register just past what it sent (Optiboot and ATmegaBOOT both
 * step it per byte), so a read that continues the previous one needs no Load
 * Address; after a page write the bootloaders differ (Optiboot keeps the
 * page's address), so writes always load it. */
static int load_address(pf_avr *a, uint32_t addr, int for_read)
{
    if (for_read && a->addr_valid && a->addr_reg == addr)
        return PF_OK;
    a->addr_valid = 0;
    if (a->chip->flash_size > 0x20000u) {
        uint8_t ext = (uint8_t)(addr >> 17);
        if (!a->ext_valid || a->ext_addr != ext) {
            uint8_t ignored;
            size_t n = pf_stk_load_ext_address(a->frame, ext);
            int r = command(a, a->frame, n, &ignored, 1, "Universal (load extended address)", addr);
            if (r < 0)
                return r;
            a->ext_addr = ext;
            a->ext_valid = 1;
        }
    }
    size_t n = pf_stk_load_address(a->frame, (uint16_t)(addr >> 1));
    int r = command(a, a->frame, n, NULL, 0, "Load Address", addr);
    if (r == PF_OK) {
        a->addr_reg = addr;
        a->addr_valid = 1;
    }
    return r;
}

static int in_flash(pf_avr *a, uint32_t addr, uint32_t len)
{
    if ((uint64_t)addr + len > a->chip->flash_size)
        return pf_diag_set(a->cfg.diag, PF_ERR_RANGE, "0x%05lx+%lu is outside the %s's %lu bytes of flash",
                           (unsigned long)addr, (unsigned long)len, a->chip->name,
                           (unsigned long)a->chip->flash_size);
    return PF_OK;
}

static int fetch(pf_avr *a, uint32_t addr)
{
    uint32_t n = PF_AVR_READ_BLOCK;
    if (n > a->chip->flash_size - addr)
        n = a->chip->flash_size - addr;
    uint32_t to_64k = 0x10000u - (addr & 0xFFFFu); /* the bootloader's address register is 16 bits */
    if (n > to_64k)
        n = to_64k;
    a->cache_len = 0;
    int r = load_address(a, addr, 1);
    if (r < 0)
        return r;
    size_t fl = pf_stk_read_page(a->frame, PF_STK_MEM_FLASH, n);
    a->addr_valid = 0;
    r = command(a, a->frame, fl, a->cache, n, "Read Page", addr);
    if (r < 0)
        return r;
    /* The register is 16 bits of (word) address: past a 64 KiB line it
     * wraps, so only a read that stays below the line can be continued. */
    a->addr_reg = addr + n;
    a->addr_valid = ((addr + n) & 0xFFFFu) != 0;
    a->cache_addr = addr;
    a->cache_len = n;
    return PF_OK;
}

static int avr_read(void *self, uint32_t addr, uint8_t *buf, uint32_t len)
{
    pf_avr *a = me(self);
    int r = need_connected(a);
    if (r < 0)
        return r;
    if (!buf)
        return PF_ERR_ARG;
    r = in_flash(a, addr, len);
    if (r < 0)
        return r;
    while (len) {
        if (!(a->cache_len && addr >= a->cache_addr && addr < a->cache_addr + a->cache_len)) {
            r = fetch(a, addr);
            if (r < 0)
                return r;
        }
        uint32_t off = addr - a->cache_addr;
        uint32_t n = a->cache_len - off;
        if (n > len)
            n = len;
        memcpy(buf, a->cache + off, n);
        buf += n;
        addr += n;
        len -= n;
    }
    return PF_OK;
}

static int avr_write(void *self, uint32_t addr, const uint8_t *data, uint32_t len)
{
    pf_avr *a = me(self);
    int r = need_connected(a);
    if (r < 0)
        return r;
    uint32_t page = a->chip->page_size;
    if (!data || addr % page || len % page || !len)
        return pf_diag_set(a->cfg.diag, PF_ERR_ARG, "AVR writes are whole %lu-byte pages (got 0x%05lx+%lu)",
                           (unsigned long)page, (unsigned long)addr, (unsigned long)len);
    r = in_flash(a, addr, len);
    if (r < 0)
        return r;
    uint32_t boot = a->chip->flash_size - a->chip->boot_size;
    if (addr + len > boot)
        return pf_diag_set(a->cfg.diag, PF_ERR_RANGE, "0x%05lx+%lu reaches into the bootloader section at 0x%05lx",
                           (unsigned long)addr, (unsigned long)len, (unsigned long)boot);
    for (uint32_t off = 0; off < len; off += page) {
        uint32_t at = addr + off;
        if (a->read_compare) {
            /* Compare against the cache: one 256-byte read covers two
             * 128-byte pages, and no page-sized buffer is needed here. */
            if (!(a->cache_len && at >= a->cache_addr && at + page <= a->cache_addr + a->cache_len)) {
                r = fetch(a, at);
                if (r < 0)
                    return r;
            }
            if (at + page <= a->cache_addr + a->cache_len &&
                memcmp(a->cache + (at - a->cache_addr), data + off, page) == 0) {
                a->skipped_pages++;
                continue;
            }
        }
        if (a->cache_len && at < a->cache_addr + a->cache_len && at + page > a->cache_addr)
            a->cache_len = 0;
        r = load_address(a, at, 0);
        if (r < 0)
            return r;
        size_t n = pf_stk_prog_page(a->frame, PF_STK_MEM_FLASH, data + off, page);
        a->addr_valid = 0;
        r = command(a, a->frame, n, NULL, 0, "Program Page", at);
        if (r < 0)
            return r;
    }
    return PF_OK;
}

static int avr_run(void *self)
{
    pf_avr *a = me(self);
    int r = need_connected(a);
    if (r < 0)
        return r;
    /* Optiboot answers, then lets its watchdog (16 ms) reset into the
     * application; other bootloaders jump to it when leaving. */
    size_t n = pf_stk_leave_progmode(a->frame);
    r = command(a, a->frame, n, NULL, 0, "Leave Programming Mode", 0);
    a->connected = 0;
    return r;
}

static void avr_close(void *self)
{
    pf_avr *a = me(self);
    if (a)
        a->connected = 0;
}

/* ---- what the front ends ask of a driver (pf_target_ops, optional part) ---- */
static const pf_target_option avr_options[] = {
    {.name = "read-compare",
     .arg = NULL,
     .help = PF_FRONT_END_TEXT_OR_NULL("read each page first and skip those that already hold the image (pays "
                                       "off when most of the flash is unchanged)"),
     .commands = PF_CMD_FLASH,
     .flags = 0},
    {.name = NULL},
};

static int avr_set_option(void *self, const char *name, const char *value)
{
    (void)value;
    if (!strcmp(name, "read-compare")) {
        pf_avr_set_read_compare(me(self), 1);
        return PF_OK;
    }
    return pf_diag_set(me(self)->cfg.diag, PF_ERR_ARG, "option '%s' is not an option of the avr driver", name);
}

static void avr_stats(const void *self, pf_target_stats *out)
{
    const pf_avr *a = self;
    out->unchanged_bytes = a->chip ? a->skipped_pages * a->chip->page_size : 0;
}

#ifndef PF_NO_FRONT_END_TEXT
static int avr_details(void *self, char *out, size_t n)
{
    pf_avr *a = me(self);
    /* optiboot.c: "UNIVERSAL command is ignored ... putch(0x00)"; and
     * STK_READ_SIGN answers the SIGNATURE_n constants it was built with */
    pf_format(out, n,
              "fuses: not readable through %s: STK500v1 reads fuses only with STK_UNIVERSAL, which Optiboot answers "
              "with 0x00 whatever the fuses are (an ISP programmer reads them)\n"
              "signature: as the bootloader reports it (Optiboot answers with the constants it was built for)\n",
              a->sw_major >= 4 && a->sw_major < 20 ? "Optiboot" : "this bootloader");
    return PF_OK;
}
#endif

/* --chip: each table name, then its avrdude part id (a suffix only after
 * '-': ATmega328PB is another chip). */
static int avr_chip(unsigned i, pf_target_chip *out)
{
    const pf_avr_chip *c = pf_avr_chips;
    for (unsigned k = 0; k < i / 2; k++, c++)
        if (!c->name)
            return 0;
    if (!c->name)
        return 0;
    out->name = i % 2 ? c->alias : c->name;
    out->entry = c->name;
    out->flash_start = 0;
    out->flash_size = c->flash_size;
    return 1;
}

const pf_target_ops pf_target_avr = {
    .name = "avr",
    .summary = PF_FRONT_END_TEXT_OR_NULL("AVR with an STK500v1 bootloader (Optiboot, Arduino Uno/Nano/Pro Mini)"),
    .ctx_size = sizeof(pf_avr),
    .open = avr_open,
    .connect = avr_connect,
    .erase = NULL,       /* every page write erases its page */
    .erase_all = NULL,   /* Optiboot has none */
    .write_begin = NULL,
    .write = avr_write,
    .write_end = NULL,   /* each page is in flash when its OK arrives */
    .read = avr_read,
    .digest = NULL,      /* STK500v1 has none; the job reads back */
    .run = avr_run,
    .close = avr_close,
    .options = avr_options,
    .set_option = avr_set_option,
    .stats = avr_stats,
    .details = PF_FRONT_END_TEXT_OR_NULL(avr_details),
    .chip = avr_chip,
    .reset_help = PF_FRONT_END_TEXT_OR_NULL("auto (the DTR/RTS reset circuit) or none"),
    .probe_rank = 4, /* last: Optiboot starts the application on any byte that is not STK500 */
    .app_address = 0, /* the AVR application starts at 0; Optiboot sits at the top */
};
