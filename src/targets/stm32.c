/* The STM32 system-memory bootloader driver (ST AN3155 over USART, 8E1).
 *
 * Every command waits for the ROM's ACK before the next byte goes out: the
 * ROM's USART has one data register and no FIFO, and it does not read it
 * while programming, erasing or transmitting, so anything sent ahead of an
 * ACK can be lost on silicon. Speed therefore comes from sending fewer
 * commands: no Get Version (Get already tells the version), protection found
 * from the NACK of the first command that needs it, erase of only the touched
 * pages in as few Erase commands as the format allows, 256-byte reads, and
 * verification by Get Checksum where the ROM has it. Waits are bounded by
 * deadlines, never idle sleeps.
 *
 * A lost or corrupted byte leaves the ROM waiting for more input or sends it
 * back to its command loop with a NACK. On a timeout or an unexpected byte the
 * driver re-synchronises (resync) and retries the command; a Write Memory
 * whose ACK was lost is checked by reading the block back before it is
 * written again (flash cannot be programmed twice). */
#include <string.h>

#include "codec/an3155.h"
#include "peerflash/pf_bytes.h"
#include "stm32_state.h"

#define ACK_MS 1000u       /* answer to a command byte, an address */
#define WRITE_MS 1500u     /* programming of one 256-byte block */
#define SYNC_MS 300u       /* answer to 0x7F */
#define PROBE_MS 100u      /* answer during resync */
#define RESET_MS 30u       /* chip restart after an option-byte command */
#define MAX_ATTEMPTS 5

typedef pf_stm32 S;

/* Stages of a command, for messages. */
enum { ST_CMD = 0, ST_ADDR, ST_ARG, ST_DATA, ST_RESULT };

static const pf_port *P(const S *s) { return s->_cfg.port; }

static void trace(const S *s, int level, const char *fmt, const char *what, unsigned long v)
{
    if (s->_cfg.verbose >= level)
        pf_port_logf(P(s), level, fmt, what, v);
}

static int send(S *s, const uint8_t *b, size_t n)
{
    int r = pf_port_write_all(P(s), b, n);
    return r < 0 ? r : PF_OK;
}

/* Waits for one reply byte: PF_OK on ACK, PF_ERR_TARGET on NACK,
 * PF_ERR_PROTOCOL (byte in *got) on anything else, PF_ERR_TIMEOUT. */
static int wait_ack(S *s, uint32_t timeout_ms, uint8_t *got)
{
    uint8_t b = 0;
    s->stats.replies++;
    int r = pf_port_read_exact(P(s), &b, 1, pf_deadline(P(s), timeout_ms), NULL);
    if (got)
        *got = b;
    if (r < 0)
        return r;
    if (b == PF_AN3155_ACK)
        return PF_OK;
    if (b == PF_AN3155_NACK) {
        s->stats.nacks++;
        return PF_ERR_TARGET;
    }
    return PF_ERR_PROTOCOL;
}

static const char *stage_name(int stage)
{
    switch (stage) {
    case ST_CMD: return "the command byte";
    case ST_ADDR: return "the address";
    case ST_ARG: return "the length";
    case ST_DATA: return "the data";
    default: return "the result";
    }
}

/* Explains a failed exchange in the diag, naming the command, where it
 * failed and, for a NACK, the ROM's byte. */
static int explain_text(S *s, int r, uint8_t op, int has_addr, uint32_t addr, int stage, uint8_t got)
{
    pf_diag *d = s->_cfg.diag;
    char where[40] = "";
    if (has_addr)
        pf_format(where, sizeof where, " at 0x%08lx", (unsigned long)addr);
    const char *name = pf_an3155_op_name(op);
    switch (r) {
    case PF_ERR_TARGET:
        s->last_nack_op = op;
        if (stage == ST_CMD && s->_unprotected)
            return pf_diag_set(d, PF_ERR_CRC,
                               "NACK (0x1F) to the command byte of %s%s on each try, though the ROM took such "
                               "commands earlier in this session (so it is not read-protected): the line "
                               "corrupts data; check the cable and ground, or lower --baud",
                               name, where);
        if (stage == ST_CMD && s->_n_ops && op != PF_AN3155_READOUT_UNPROTECT && op != PF_AN3155_GET &&
            op != PF_AN3155_GET_ID && op != PF_AN3155_GET_VERSION)
            return pf_diag_set(d, PF_ERR_PROTECTED,
                               "target answered NACK (0x1F) to %s%s: the chip is read-protected (RDP); "
                               "--unprotect-read removes the protection and ERASES THE WHOLE FLASH",
                               name, where);
        if (stage == ST_DATA && (op == PF_AN3155_WRITE || op == PF_AN3155_ERASE || op == PF_AN3155_EXT_ERASE))
            return pf_diag_set(d, PF_ERR_TARGET,
                               "target answered NACK (0x1F) to %s%s after %s on %u of %u tries: the flash is "
                               "write-protected%s (--unprotect-write removes write protection; the content stays)",
                               name, where, stage_name(stage), (unsigned)(s->_data_nacks ? s->_data_nacks : 1),
                               (unsigned)(s->_tries ? s->_tries : 1), op == PF_AN3155_WRITE ? " or not erased" : "");
        return pf_diag_set(d, PF_ERR_TARGET, "target answered NACK (0x1F) to %s%s (refused %s)", name, where,
                           stage_name(stage));
    case PF_ERR_TIMEOUT:
        return pf_diag_set(d, r, "no answer from the STM32 bootloader to %s%s (waiting after %s)", name, where,
                           stage_name(stage));
    case PF_ERR_PROTOCOL:
        return pf_diag_set(d, r, "unexpected byte 0x%02x instead of ACK (0x79) to %s%s after %s", got, name, where,
                           stage_name(stage));
    case PF_ERR_CRC:
        if (stage == ST_DATA && got == PF_AN3155_NACK)
            return pf_diag_set(d, r,
                               "%s%s failed on the link on all %u tries (the last ended in a NACK (0x1F) after "
                               "the data, the ROM's answer to a frame corrupted on the way): check the cable and "
                               "ground, or lower --baud",
                               name, where, (unsigned)s->_tries);
        return pf_diag_set(d, r, "checksum of the answer to %s%s is wrong (line noise?)", name, where);
    case PF_ERR_CLOSED: return pf_diag_set(d, r, "the link closed during %s%s", name, where);
    default: return pf_diag_set(d, r, "%s%s failed: %s", name, where, pf_strerror(r));
    }
}

/* The explanation, and as data: the ROM's answer and the command it
 * answered, and what the text advises. */
static int explain(S *s, int r, uint8_t op, int has_addr, uint32_t addr, int stage, uint8_t got)
{
    int unprotected = s->_unprotected;
    int e = explain_text(s, r, op, has_addr, addr, stage, got);
    pf_diag *d = s->_cfg.diag;
    if (r == PF_ERR_TARGET || (r == PF_ERR_CRC && stage == ST_DATA && got == PF_AN3155_NACK))
        pf_diag_code(d, op, PF_AN3155_NACK);
    else if (r == PF_ERR_PROTOCOL)
        pf_diag_code(d, op, got);
    if (e == PF_ERR_PROTECTED || (e == PF_ERR_TARGET && stage == ST_DATA &&
                                  (op == PF_AN3155_WRITE || op == PF_AN3155_ERASE || op == PF_AN3155_EXT_ERASE)))
        pf_diag_hint(d, PF_HINT_UNPROTECT);
    if ((r == PF_ERR_TARGET && e == PF_ERR_CRC && stage == ST_CMD && unprotected) ||
        (r == PF_ERR_CRC && stage == ST_DATA && got == PF_AN3155_NACK))
        pf_diag_hint(d, PF_HINT_WIRING | PF_HINT_BAUD);
    return e;
}

/* Sends the opcode pair and waits for ACK. */
static int send_cmd(S *s, uint8_t op, uint8_t *got)
{
    uint8_t b[2];
    pf_an3155_cmd(b, op);
    s->stats.commands++;
    trace(s, 3, "stm32: %s (0x%02lx)", pf_an3155_op_name(op), op);
    int r = send(s, b, 2);
    r = r < 0 ? r : wait_ack(s, ACK_MS, got);
    /* the ROM took a command that readout protection refuses: this session
     * is not read-protected (RDP changes only through a reset) */
    if (r == PF_OK && (op == PF_AN3155_READ || op == PF_AN3155_WRITE || op == PF_AN3155_ERASE ||
                       op == PF_AN3155_EXT_ERASE))
        s->_unprotected = 1;
    return r;
}

static int send_u32(S *s, uint32_t v, uint32_t timeout_ms, uint8_t *got)
{
    uint8_t b[5];
    pf_an3155_u32(b, v);
    int r = send(s, b, 5);
    return r < 0 ? r : wait_ack(s, timeout_ms, got);
}

/* --- synchronisation ---------------------------------------------------------- */

/* Sends 0x7F: PF_OK when the ROM answered ACK (fresh autobaud) or NACK (it was
 * already synchronised and took 0x7F as a bad complement). */
static int sync_7f(S *s, int *answered)
{
    uint8_t b = PF_AN3155_SYNC, got = 0;
    int r = send(s, &b, 1);
    if (r < 0)
        return r;
    r = wait_ack(s, SYNC_MS, &got);
    *answered = r != PF_ERR_TIMEOUT;
    if (r == PF_OK || r == PF_ERR_TARGET)
        return PF_OK;
    return r;
}

/* Brings the ROM back to its command loop from an unknown state: 0xFF bytes
 * complete whatever it waits for, and each pair of them is an invalid command
 * answered by NACK; a final probe makes sure no half command is pending. */
static int resync(S *s)
{
    const pf_port *p = P(s);
    s->stats.resyncs++;
    trace(s, 2, "stm32: %s%lu", "resync #", s->stats.resyncs);
    pf_port_drain_input(p, 20, pf_deadline(p, 300));
    uint8_t ff[16];
    memset(ff, 0xFF, sizeof ff);
    int answered = 0;
    for (unsigned i = 0; i < 48 && !answered; i++) {
        int r = send(s, ff, sizeof ff);
        if (r < 0)
            return r;
        uint8_t b;
        r = pf_port_read_exact(p, &b, 1, pf_deadline(p, PROBE_MS), NULL);
        if (r == PF_ERR_CLOSED || r == PF_ERR_IO)
            return r;
        if (r == 1 && (b == PF_AN3155_NACK || b == PF_AN3155_ACK))
            answered = 1;
        if (i == 3 && !answered) {
            /* Nothing answers: perhaps a chip that reset and waits for autobaud. */
            int a = 0;
            r = sync_7f(s, &a);
            if (r == PF_ERR_CLOSED || r == PF_ERR_IO)
                return r;
            if (a)
                answered = 1;
        }
    }
    if (!answered)
        return PF_ERR_NO_SYNC;
    pf_port_drain_input(p, 30, pf_deadline(p, 1000));
    /* Probe: 0xFF is either the complement the ROM waits for (-> NACK) or
     * a new first byte (no answer; a second 0xFF then gets the NACK). */
    for (int i = 0; i < 3; i++) {
        uint8_t b = 0xFF, got = 0;
        int r = send(s, &b, 1);
        if (r < 0)
            return r;
        r = wait_ack(s, PROBE_MS, &got);
        if (r == PF_ERR_TARGET) {
            pf_port_drain_input(p, 5, pf_deadline(p, 50));
            return PF_OK;
        }
        if (r == PF_ERR_CLOSED || r == PF_ERR_IO)
            return r;
    }
    return PF_ERR_NO_SYNC;
}

/* --- reset lines ------------------------------------------------------------------ */

/* Runs the steps of seq[0..len); with s NULL only checks them (no I/O). */
static int run_sequence(S *s, const char *seq, size_t len)
{
    const pf_port *p = s ? P(s) : NULL;
    size_t i = 0;
    while (i < len) {
        size_t j = i;
        while (j < len && seq[j] != ',')
            j++;
        const char *w = seq + i;
        size_t n = j - i;
        int neg = n && w[0] == '-';
        if (neg) {
            w++;
            n--;
        }
        if (!s) {
            int ok = (n == 3 && (!memcmp(w, "dtr", 3) || !memcmp(w, "rts", 3))) || n == 0;
            if (!neg && n) {
                ok = 1;
                for (size_t k = 0; k < n; k++)
                    ok &= w[k] >= '0' && w[k] <= '9';
                ok |= n == 3 && (!memcmp(w, "dtr", 3) || !memcmp(w, "rts", 3));
                ok &= n < 6; /* at most 99999 ms */
            }
            if (!ok)
                return PF_ERR_ARG;
        } else if (n == 3 && (!memcmp(w, "dtr", 3) || !memcmp(w, "rts", 3))) {
            int v = neg ? PF_LINE_RELEASE : PF_LINE_ASSERT;
            int r = p->set_lines ? p->set_lines(p->ctx, w[0] == 'd' ? v : PF_LINE_KEEP, w[0] == 'r' ? v : PF_LINE_KEEP)
                                 : PF_ERR_UNSUPPORTED;
            if (r == PF_ERR_UNSUPPORTED)
                return PF_OK; /* no modem lines: nothing to drive, nothing to wait for */
            if (r < 0)
                return pf_diag_set(s->_cfg.diag, r, "cannot drive the %s line: %s", w[0] == 'd' ? "DTR" : "RTS",
                                   pf_strerror(r));
            s->_lines = 1;
        } else if (n && !neg && w[0] >= '0' && w[0] <= '9') {
            uint32_t ms = 0;
            for (size_t k = 0; k < n && w[k] >= '0' && w[k] <= '9'; k++)
                ms = ms * 10 + (uint32_t)(w[k] - '0');
            if (s->_lines)
                pf_port_delay(p, ms);
        } else if (n) {
            return pf_diag_set(s->_cfg.diag, PF_ERR_ARG,
                               "bad reset sequence step in \"%s\" (use dtr, -dtr, rts, -rts, or milliseconds)", seq);
        }
        i = j + 1;
    }
    return PF_OK;
}

#define AUTO_SEQ "rts,dtr,20,-dtr,50:-rts,dtr,20,-dtr"

int pf_stm32_reset_valid(const char *spec)
{
    if (!spec || !strcmp(spec, "auto") || !strcmp(spec, "none"))
        return 1;
    const char *colon = strchr(spec, ':');
    if (colon && strchr(colon + 1, ':'))
        return 0;
    size_t entry = colon ? (size_t)(colon - spec) : strlen(spec);
    if (entry == 0 || run_sequence(NULL, spec, entry) < 0)
        return 0;
    return !colon || run_sequence(NULL, colon + 1, strlen(colon + 1)) == PF_OK;
}

static const char *reset_spec(const S *s)
{
    const char *r = s->_cfg.reset;
    return (!r || !strcmp(r, "auto")) ? AUTO_SEQ : r;
}

static int entry_sequence(S *s)
{
    const char *r = reset_spec(s);
    if (!strcmp(r, "none"))
        return PF_OK;
    const char *colon = strchr(r, ':');
    return run_sequence(s, r, colon ? (size_t)(colon - r) : strlen(r));
}

static int exit_sequence(S *s)
{
    const char *r = reset_spec(s);
    const char *colon = strchr(r, ':');
    if (!strcmp(r, "none") || !colon)
        return PF_OK;
    return run_sequence(s, colon + 1, strlen(colon + 1));
}

/* --- identification ------------------------------------------------------------------ */

static int cmd_get(S *s)
{
    uint8_t got = 0;
    int r = send_cmd(s, PF_AN3155_GET, &got);
    if (r < 0)
        return explain(s, r, PF_AN3155_GET, 0, 0, ST_CMD, got);
    uint8_t buf[40];
    const pf_port *p = P(s);
    r = pf_port_read_exact(p, buf, 1, pf_deadline(p, ACK_MS), NULL);
    if (r < 0 || buf[0] + 3u > sizeof buf)
        return explain(s, r < 0 ? r : PF_ERR_PROTOCOL, PF_AN3155_GET, 0, 0, ST_RESULT, buf[0]);
    /* version, N opcodes, ACK */
    r = pf_port_read_exact(p, buf + 1, (size_t)buf[0] + 2, pf_deadline(p, ACK_MS), NULL);
    if (r < 0)
        return explain(s, r, PF_AN3155_GET, 0, 0, ST_RESULT, 0);
    pf_an3155_get_reply g;
    if (buf[buf[0] + 2] != PF_AN3155_ACK || pf_an3155_parse_get(buf, (size_t)buf[0] + 2, &g) < 0)
        return explain(s, PF_ERR_PROTOCOL, PF_AN3155_GET, 0, 0, ST_RESULT, buf[buf[0] + 2]);
    s->bl_version = g.version;
    s->_n_ops = g.n_ops;
    memcpy(s->_ops, g.ops, g.n_ops);
    s->_erase_op = pf_an3155_has_op(&g, PF_AN3155_EXT_ERASE) ? PF_AN3155_EXT_ERASE
                   : pf_an3155_has_op(&g, PF_AN3155_ERASE)   ? PF_AN3155_ERASE
                                                              : 0;
    s->_has_crc = (uint8_t)pf_an3155_has_op(&g, PF_AN3155_GET_CHECKSUM);
    return PF_OK;
}

static int cmd_get_id(S *s, uint16_t *pid)
{
    uint8_t got = 0;
    int r = send_cmd(s, PF_AN3155_GET_ID, &got);
    if (r < 0)
        return explain(s, r, PF_AN3155_GET_ID, 0, 0, ST_CMD, got);
    uint8_t buf[8];
    const pf_port *p = P(s);
    r = pf_port_read_exact(p, buf, 1, pf_deadline(p, ACK_MS), NULL);
    if (r < 0 || buf[0] < 1 || buf[0] > 4)
        return explain(s, r < 0 ? r : PF_ERR_PROTOCOL, PF_AN3155_GET_ID, 0, 0, ST_RESULT, buf[0]);
    r = pf_port_read_exact(p, buf + 1, (size_t)buf[0] + 2, pf_deadline(p, ACK_MS), NULL);
    if (r < 0)
        return explain(s, r, PF_AN3155_GET_ID, 0, 0, ST_RESULT, 0);
    if (buf[buf[0] + 2] != PF_AN3155_ACK)
        return explain(s, PF_ERR_PROTOCOL, PF_AN3155_GET_ID, 0, 0, ST_RESULT, buf[buf[0] + 2]);
    *pid = pf_get_be16(buf + 1);
    return PF_OK;
}

/* Sync + Get + Get ID, with one resync and retry. */
static int identify(S *s, uint16_t *pid)
{
    int r = PF_OK;
    for (int attempt = 0; attempt < MAX_ATTEMPTS; attempt++) {
        if (attempt) {
            s->stats.retries++;
            r = resync(s);
            if (r == PF_ERR_CLOSED || r == PF_ERR_IO)
                break;
        } else {
            int answered = 0;
            r = sync_7f(s, &answered);
            if (r == PF_ERR_CLOSED || r == PF_ERR_IO)
                break;
            if (!answered)
                r = resync(s);
        }
        if (r < 0)
            continue;
        r = cmd_get(s);
        if (r == PF_OK)
            r = cmd_get_id(s, pid);
        /* Get ID's answer has no checksum: a bit flipped on the line would
         * read as another chip (exit "target refused"). Two answers must
         * agree; one that differs counts as a failed attempt. */
        uint16_t again = 0;
        if (r == PF_OK && (r = cmd_get_id(s, &again)) == PF_OK && again != *pid)
        {
            r = pf_diag_set(s->_cfg.diag, PF_ERR_CRC,
                            "Get ID answered 0x%03x, then 0x%03x: the line corrupts data; check the cable and "
                            "ground, or lower --baud",
                            *pid, again);
            pf_diag_hint(s->_cfg.diag, PF_HINT_WIRING | PF_HINT_BAUD);
        }
        if (r == PF_OK || r == PF_ERR_CLOSED || r == PF_ERR_IO)
            break;
    }
    if (r == PF_ERR_NO_SYNC || r == PF_ERR_TIMEOUT)
        return pf_diag_set(s->_cfg.diag, PF_ERR_NO_SYNC,
                           "the STM32 bootloader does not answer 0x7F at %lu baud 8E1: is BOOT0 high and the chip "
                           "reset (reset sequence \"%s\")? are TX/RX crossed?",
                           (unsigned long)(s->_cfg.baud ? s->_cfg.baud : 115200), reset_spec(s));
    return r;
}

/* --- target operations ------------------------------------------------------------------- */

static int stm32_open(void *self, const pf_target_config *cfg)
{
    S *s = self;
    if (!s || !cfg || !cfg->port || !cfg->port->read || !cfg->port->write)
        return PF_ERR_ARG;
    memset(s, 0, sizeof *s);
    s->_cfg = *cfg;
    return PF_OK;
}

static int stm32_connect(void *self, pf_target_info *info)
{
    S *s = self;
    const pf_port *p = P(s);
    uint32_t baud = s->_cfg.baud ? s->_cfg.baud : s->_cfg.fast_baud ? s->_cfg.fast_baud : 115200;
    s->_cfg.baud = baud;
    const pf_stm32_chip *want = NULL;
    if (s->_cfg.chip && s->_cfg.chip[0] && strcmp(s->_cfg.chip, "auto")) {
        want = pf_stm32_chip_by_name(s->_cfg.chip);
        if (!want)
            return pf_diag_set(s->_cfg.diag, PF_ERR_CHIP,
                               "unknown STM32 chip name \"%s\" (known: F030x8, F103xB, F401xE, F40xxG, G07xxB, "
                               "L47xxG, H74xxI, ... see `peerflash sim stm32 --chip list`)",
                               s->_cfg.chip);
    }
    int r = pf_port_set_line(p, baud, PF_FRAME_8E1);
    if (r < 0)
        return pf_diag_set(s->_cfg.diag, r, "cannot set the port to %lu baud 8E1: %s", (unsigned long)baud,
                           pf_strerror(r));
    r = entry_sequence(s);
    if (r < 0)
        return r;
    if (p->flush_input)
        p->flush_input(p->ctx);
    uint16_t pid = 0;
    r = identify(s, &pid);
    if (r < 0)
        return r;
    const pf_stm32_chip *chip = pf_stm32_chip_by_pid(pid);
    if (!chip)
        return pf_diag_set(s->_cfg.diag, PF_ERR_CHIP,
                           "unknown STM32 product ID 0x%03x (bootloader v%u.%u): not in the device table "
                           "(src/targets/stm32_chips.c)",
                           pid, s->bl_version >> 4, s->bl_version & 15);
    if (want && want->pid != chip->pid)
        return pf_diag_set(s->_cfg.diag, PF_ERR_CHIP, "--chip %s (PID 0x%03x) expected, but the target is %s (PID 0x%03x)",
                           s->_cfg.chip, want->pid, chip->name, chip->pid);
    s->chip = chip;
    s->_connected = 1;
    if (info) {
        memset(info, 0, sizeof *info);
        pf_format(info->chip, sizeof info->chip, "%s", chip->name);
        pf_format(info->bootloader, sizeof info->bootloader, "AN3155 v%u.%u", s->bl_version >> 4, s->bl_version & 15);
        info->chip_id = pid;
        info->caps = PF_CAP_READ | PF_CAP_RUN | (s->_erase_op ? PF_CAP_ERASE_ALL : 0) |
                     (s->_has_crc ? PF_CAP_DIGEST : 0);
        info->digest = s->_has_crc ? PF_DIGEST_CRC32_STM32 : PF_DIGEST_NONE;
        pf_flash_geometry *g = &info->geom;
        g->flash_start = chip->flash_start;
        g->flash_size = chip->flash_size;
        g->write_align = 4;
        g->write_max = PF_AN3155_BLOCK_MAX;
        g->erased_value = 0xFF;
        g->erase_style = PF_ERASE_EXPLICIT;
        g->n_regions = chip->n_regions;
        for (unsigned i = 0; i < chip->n_regions && i < PF_MAX_ERASE_REGIONS; i++)
            g->regions[i] = chip->regions[i];
    }
    return PF_OK;
}

static int need(S *s)
{
    if (!s->_connected)
        return pf_diag_set(s->_cfg.diag, PF_ERR_STATE, "stm32: not connected");
    return PF_OK;
}

static int retryable(int r) { return r == PF_ERR_TIMEOUT || r == PF_ERR_PROTOCOL || r == PF_ERR_CRC; }

/* Whether to try a command again after result r at stage, on attempt
 * (0-based) that just failed. Link trouble (no answer, garbage, a bad
 * checksum) and a NACK after the command byte (a frame corrupted on the way)
 * are tried up to MAX_ATTEMPTS times in all. A NACK of the command byte
 * itself is tried once more: a stale NACK left by line noise must not be
 * mistaken for read protection. */
static int again(int r, int stage, int attempt)
{
    if (r == PF_ERR_TARGET && stage == ST_CMD)
        return attempt == 0;
    return (r == PF_ERR_TARGET || retryable(r)) && attempt + 1 < MAX_ATTEMPTS;
}

/* Before a retry: whatever went wrong, the ROM may be in the middle of a
 * command (a corrupted length byte makes it wait for more or fewer bytes, the
 * rest of our frame then reads as commands and draws NACKs): resynchronise,
 * which also discards stale answers. Only error paths pay for it. */
static int before_retry(S *s, int last)
{
    (void)last;
    s->stats.retries++;
    return resync(s);
}

/* One attempt of an exchange; sets *stage as it goes and *got to the last
 * answer byte, for explain(). */
typedef int (*attempt_fn)(S *s, void *arg, int *stage, uint8_t *got);
/* Runs before a retry, after the resync: returns 0 to try again, or a
 * result that ends the exchange (PF_OK included). */
typedef int (*recheck_fn)(S *s, void *arg, int last, int stage, uint8_t got);

/* The retry discipline every command shares: an attempt, and after a failure
 * that again() allows, a resync and (optionally) a look at what the failed
 * attempt left behind, then the next attempt. */
static int with_retries(S *s, attempt_fn attempt, recheck_fn recheck, void *arg, int *stage, uint8_t *got)
{
    int r = PF_OK;
    *stage = ST_CMD;
    uint8_t tries = 0, data_nacks = 0; /* locals: a recheck runs exchanges of its own */
    for (int n = 0; n < MAX_ATTEMPTS; n++) {
        if (n) {
            int q = before_retry(s, r);
            if (q < 0)
                return q;
            if (recheck && (q = recheck(s, arg, r, *stage, *got)) != 0)
                return q;
        }
        r = attempt(s, arg, stage, got);
        tries++;
        if (r == PF_ERR_TARGET && *stage == ST_DATA)
            data_nacks++;
        if (r == PF_OK || !again(r, *stage, n))
            break;
    }
    /* A NACK after the data is what the ROM answers to a data frame whose
     * checksum does not match, as well as to a write-protected page. A
     * refusal repeats on every try; when other tries of the same exchange
     * failed on the link (no answer, garbage, a NACK elsewhere), the last
     * NACK is line noise too: a link error, not the target's refusal. */
    s->_tries = tries;
    s->_data_nacks = data_nacks;
    if (r == PF_ERR_TARGET && *stage == ST_DATA && data_nacks < tries)
        r = PF_ERR_CRC;
    return r;
}

/* One Read Memory of n <= 256 bytes. */
static int read_once(S *s, uint32_t addr, uint8_t *buf, uint32_t n, int *stage, uint8_t *got)
{
    *stage = ST_CMD;
    int r = send_cmd(s, PF_AN3155_READ, got);
    if (r < 0)
        return r;
    *stage = ST_ADDR;
    r = send_u32(s, addr, ACK_MS, got);
    if (r < 0)
        return r;
    *stage = ST_ARG;
    uint8_t l[2];
    pf_an3155_read_len(l, n);
    r = send(s, l, 2);
    if (r < 0)
        return r;
    r = wait_ack(s, ACK_MS, got);
    if (r < 0)
        return r;
    *stage = ST_RESULT;
    r = pf_port_read_exact(P(s), buf, n, pf_deadline(P(s), ACK_MS + n), NULL);
    return r < 0 ? r : PF_OK;
}

typedef struct read_args {
    uint32_t addr;
    uint8_t *buf;
    uint32_t n;
} read_args;

static int read_attempt(S *s, void *arg, int *stage, uint8_t *got)
{
    read_args *a = arg;
    return read_once(s, a->addr, a->buf, a->n, stage, got);
}

static int read_block(S *s, uint32_t addr, uint8_t *buf, uint32_t n)
{
    read_args a = {addr, buf, n};
    int stage;
    uint8_t got = 0;
    int r = with_retries(s, read_attempt, NULL, &a, &stage, &got);
    return r == PF_OK ? PF_OK : explain(s, r, PF_AN3155_READ, 1, addr, stage, got);
}

int pf_stm32_read_option_bytes(void *self, uint8_t *out, uint32_t *len)
{
    S *s = self;
    uint32_t addr, n;
    int r = need(s);
    if (r < 0)
        return r;
    if (!pf_stm32_ob_where(s->chip, &addr, &n))
        return PF_ERR_UNSUPPORTED;
    int stage;
    uint8_t got = 0;
    read_args a = {addr, out, n};
    r = with_retries(s, read_attempt, NULL, &a, &stage, &got);
    if (r == PF_ERR_TARGET && stage == ST_CMD)
        return PF_ERR_PROTECTED; /* the ROM refuses Read Memory itself: RDP */
    if (r == PF_ERR_TARGET)
        return PF_ERR_UNSUPPORTED;
    if (r < 0)
        return explain(s, r, PF_AN3155_READ, 1, addr, stage, got);
    *len = n;
    return PF_OK;
}

static int stm32_read(void *self, uint32_t addr, uint8_t *buf, uint32_t len)
{
    S *s = self;
    int r = need(s);
    while (r == PF_OK && len) {
        uint32_t n = len < PF_AN3155_BLOCK_MAX ? len : PF_AN3155_BLOCK_MAX;
        r = read_block(s, addr, buf, n);
        addr += n;
        buf += n;
        len -= n;
    }
    return r;
}

static int write_once(S *s, uint32_t addr, const uint8_t *data, uint32_t len, int *stage, uint8_t *got)
{
    *stage = ST_CMD;
    int r = send_cmd(s, PF_AN3155_WRITE, got);
    if (r < 0)
        return r;
    *stage = ST_ADDR;
    r = send_u32(s, addr, ACK_MS, got);
    if (r < 0)
        return r;
    *stage = ST_DATA;
    uint8_t frame[PF_AN3155_BLOCK_MAX + 2];
    size_t n = pf_an3155_data(frame, data, len);
    r = send(s, frame, n);
    if (r < 0)
        return r;
    return wait_ack(s, WRITE_MS, got);
}

static int stm32_digest(void *self, uint32_t addr, uint32_t len, uint8_t *out);

enum { BLOCK_SAME = 1, BLOCK_ERASED = 2, BLOCK_OTHER = 3 };

/* What flash holds where a write may or may not have happened: the block,
 * erased flash, or something else. Uses Get Checksum where the ROM has it
 * (its answer is XOR-checked); otherwise reads back, twice if the first read
 * says "something else" (Read Memory answers carry no checksum: line noise
 * must not pass for a half-programmed block). */
static int block_state(S *s, uint32_t addr, const uint8_t *data, uint32_t len)
{
    uint32_t padded = (len + 3) & ~3u;
    uint8_t want[PF_AN3155_BLOCK_MAX];
    memset(want, 0xFF, sizeof want);
    memcpy(want, data, len);
    if (s->_has_crc) {
        uint8_t d[4];
        int r = stm32_digest(s, addr, padded, d);
        if (r < 0)
            return r;
        uint32_t got = pf_get_be32(d);
        if (got == pf_crc32_stm32(0xFFFFFFFFu, want, padded))
            return BLOCK_SAME;
        memset(want, 0xFF, sizeof want);
        return got == pf_crc32_stm32(0xFFFFFFFFu, want, padded) ? BLOCK_ERASED : BLOCK_OTHER;
    }
    int state = BLOCK_OTHER;
    for (int i = 0; i < 2 && state == BLOCK_OTHER; i++) {
        uint8_t back[PF_AN3155_BLOCK_MAX];
        int r = read_block(s, addr, back, padded);
        if (r < 0)
            return r;
        int erased = 1;
        for (uint32_t k = 0; k < padded; k++)
            erased &= back[k] == 0xFF;
        state = !memcmp(back, want, padded) ? BLOCK_SAME : erased ? BLOCK_ERASED : BLOCK_OTHER;
    }
    return state;
}

typedef struct write_args {
    uint32_t addr;
    const uint8_t *data;
    uint32_t len;
    int explained; /* the recheck already put the reason in the diag */
} write_args;

#define WRITE_DONE 1 /* the recheck found the block already in flash */

static int write_attempt(S *s, void *arg, int *stage, uint8_t *got)
{
    write_args *a = arg;
    return write_once(s, a->addr, a->data, a->len, stage, got);
}

/* Before writing a block again after its data went out: the block may be in
 * flash already (an answer lost or garbled after programming). */
static int write_recheck(S *s, void *arg, int last, int stage, uint8_t got)
{
    write_args *a = arg;
    if (stage != ST_DATA)
        return 0;
    int q = block_state(s, a->addr, a->data, a->len);
    if (q == BLOCK_SAME)
        return WRITE_DONE;
    a->explained = 1;
    if (q == BLOCK_OTHER && last == PF_ERR_TARGET) /* refused: not erased or protected */
        return explain(s, last, PF_AN3155_WRITE, 1, a->addr, stage, got);
    if (q == BLOCK_OTHER)
        return pf_diag_set(s->_cfg.diag, PF_ERR_TARGET,
                           "Write Memory at 0x%08lx was interrupted and the block is now partly "
                           "programmed; erase it and run again",
                           (unsigned long)a->addr);
    if (q < 0)
        return q;
    a->explained = 0;
    return 0; /* erased: write it again */
}

/* Every try of a block ended in a NACK after its data: a write-protected
 * page, or a line so noisy that each 256-byte frame arrived corrupted. A
 * 4-byte write of the block's first word tells them apart (its 6-byte frame
 * rarely meets noise): the ROM takes it unless the page is protected. */
static int refused_or_noise(S *s, uint32_t addr, const uint8_t *data)
{
    uint8_t tries = s->_tries, nacks = s->_data_nacks;
    int r = PF_OK, stage = ST_CMD;
    uint8_t got = 0;
    for (int n = 0; n < 2; n++) {
        if (n && (r = resync(s)) < 0)
            break;
        r = write_once(s, addr, data, 4, &stage, &got);
        if (r == PF_OK || (r == PF_ERR_TARGET && stage == ST_DATA && n == 1))
            break;
    }
    s->_tries = tries;
    s->_data_nacks = nacks;
    if (r == PF_OK) {
        pf_diag_set(s->_cfg.diag, PF_ERR_CRC,
                    "Write Memory at 0x%08lx: the ROM answered NACK (0x1F) after the 256-byte data frame on "
                    "all %u tries but took a 4-byte write at the same address: the frames were corrupted "
                    "on the line (the page is not protected); check the cable and ground, or lower --baud",
                    (unsigned long)addr, (unsigned)tries);
        pf_diag_code(s->_cfg.diag, PF_AN3155_WRITE, PF_AN3155_NACK);
        pf_diag_hint(s->_cfg.diag, PF_HINT_WIRING | PF_HINT_BAUD);
        return PF_ERR_CRC;
    }
    if (r == PF_ERR_TARGET && stage == ST_DATA) {
        s->last_nack_op = PF_AN3155_WRITE;
        pf_diag_set(s->_cfg.diag, PF_ERR_TARGET,
                    "target answered NACK (0x1F) to Write Memory at 0x%08lx after the data on all %u tries, "
                    "and to a 4-byte write there too, while the block reads erased: the page is "
                    "write-protected (--unprotect-write removes write protection; the content stays)",
                    (unsigned long)addr, (unsigned)tries);
        pf_diag_code(s->_cfg.diag, PF_AN3155_WRITE, PF_AN3155_NACK);
        pf_diag_hint(s->_cfg.diag, PF_HINT_UNPROTECT);
        return PF_ERR_TARGET;
    }
    if (r == PF_ERR_CLOSED || r == PF_ERR_IO)
        return explain(s, r, PF_AN3155_WRITE, 1, addr, stage, got);
    pf_diag_set(s->_cfg.diag, PF_ERR_CRC,
                "Write Memory at 0x%08lx: NACK (0x1F) after the data on all %u tries, and a 4-byte probe "
                "write failed on the link too (%s after %s): the line is too noisy; check the cable and "
                "ground, or lower --baud",
                (unsigned long)addr, (unsigned)tries, pf_strerror(r), stage_name(stage));
    pf_diag_code(s->_cfg.diag, PF_AN3155_WRITE, PF_AN3155_NACK);
    pf_diag_hint(s->_cfg.diag, PF_HINT_WIRING | PF_HINT_BAUD);
    return PF_ERR_CRC;
}

static int stm32_write(void *self, uint32_t addr, const uint8_t *data, uint32_t len)
{
    S *s = self;
    int r = need(s);
    if (r < 0)
        return r;
    if (len == 0 || len > PF_AN3155_BLOCK_MAX || (addr & 3))
        return pf_diag_set(s->_cfg.diag, PF_ERR_ARG, "stm32: write of %lu bytes at 0x%08lx: 1..256 bytes at a "
                           "4-byte aligned address", (unsigned long)len, (unsigned long)addr);
    write_args a = {addr, data, len, 0};
    int stage;
    uint8_t got = 0;
    r = with_retries(s, write_attempt, write_recheck, &a, &stage, &got);
    if (r == WRITE_DONE || r == PF_OK)
        return PF_OK;
    if (r == PF_ERR_TARGET && stage == ST_DATA && !a.explained)
        return refused_or_noise(s, addr, data);
    return a.explained ? r : explain(s, r, PF_AN3155_WRITE, 1, addr, stage, got);
}

/* A command with one data frame and a final ACK (Erase, Extended Erase). */
typedef struct frame_args {
    uint8_t op;
    const uint8_t *frame;
    size_t len;
    uint32_t ack_ms;
} frame_args;

static int frame_attempt(S *s, void *arg, int *stage, uint8_t *got)
{
    frame_args *a = arg;
    *stage = ST_CMD;
    int r = send_cmd(s, a->op, got);
    if (r < 0)
        return r;
    *stage = ST_DATA;
    r = send(s, a->frame, a->len);
    if (r < 0)
        return r;
    return wait_ack(s, a->ack_ms, got);
}

/* Erases units [first, first+count) in as few commands as the format allows. */
static int erase_units(S *s, uint32_t first, uint32_t count, uint32_t addr, uint32_t ms_per_unit)
{
    int ext = s->_erase_op == PF_AN3155_EXT_ERASE;
    uint32_t batch = ext ? PF_AN3155_ERASE_BATCH : 255u;
    while (count) {
        uint32_t n = count < batch ? count : batch;
        size_t fl = pf_an3155_erase_pages(s->_buf, sizeof s->_buf, ext, first, n);
        if (!fl)
            return pf_diag_set(s->_cfg.diag, PF_ERR_UNSUPPORTED,
                               "page %lu cannot be named by the Erase (0x43) command of this bootloader",
                               (unsigned long)(first + n - 1));
        /* Erasing twice is harmless: retry whatever went wrong on the link. */
        frame_args a = {s->_erase_op, s->_buf, fl, 2000u + n * ms_per_unit};
        int stage;
        uint8_t got = 0;
        int r = with_retries(s, frame_attempt, NULL, &a, &stage, &got);
        if (r < 0)
            return explain(s, r, s->_erase_op, 1, addr, stage, got);
        first += n;
        count -= n;
    }
    return PF_OK;
}

static int stm32_erase(void *self, uint32_t addr, uint32_t len)
{
    S *s = self;
    int r = need(s);
    if (r < 0)
        return r;
    if (!s->_erase_op)
        return pf_diag_set(s->_cfg.diag, PF_ERR_UNSUPPORTED, "this STM32 bootloader lists no erase command");
    if (!len)
        return PF_OK;
    uint32_t us, un, ls, ln;
    int first = pf_stm32_unit_index(s->chip, addr, &us, &un);
    int last = pf_stm32_unit_index(s->chip, addr + len - 1, &ls, &ln);
    if (first < 0 || last < 0)
        return pf_diag_set(s->_cfg.diag, PF_ERR_RANGE, "erase 0x%08lx-0x%08lx is outside the flash of the %s",
                           (unsigned long)addr, (unsigned long)(addr + len - 1), s->chip->name);
    /* Time budget per unit: ~40 ms per KiB covers F4 128 KiB sectors (max 4 s). */
    uint32_t biggest = 0;
    for (unsigned i = 0; i < s->chip->n_regions; i++)
        if (s->chip->regions[i].unit > biggest)
            biggest = s->chip->regions[i].unit;
    return erase_units(s, (uint32_t)first, (uint32_t)(last - first + 1), us, 100u + biggest / 1024u * 40u);
}

static int stm32_erase_all(void *self)
{
    S *s = self;
    int r = need(s);
    if (r < 0)
        return r;
    if (!s->_erase_op)
        return pf_diag_set(s->_cfg.diag, PF_ERR_UNSUPPORTED, "this STM32 bootloader lists no erase command");
    if (!s->chip->no_mass_erase) {
        uint8_t f[3], got = 0;
        size_t fl = pf_an3155_mass_erase(f, s->_erase_op == PF_AN3155_EXT_ERASE);
        frame_args a = {s->_erase_op, f, fl, 40000u}; /* mass erase: up to 35 s on big parts */
        int stage;
        r = with_retries(s, frame_attempt, NULL, &a, &stage, &got);
        return r == PF_OK ? PF_OK : explain(s, r, s->_erase_op, 0, 0, stage, got);
    }
    /* ROMs without mass erase (L0, L1): every page, in batches. */
    return erase_units(s, 0, pf_stm32_unit_count(s->chip), s->chip->flash_start, 100u);
}

typedef struct checksum_args {
    uint32_t addr, len;
    uint8_t *out;
} checksum_args;

/* Get Checksum: address, length, ACK, then the CRC and its XOR check. */
static int checksum_attempt(S *s, void *arg, int *stage, uint8_t *got)
{
    checksum_args *a = arg;
    *stage = ST_CMD;
    int r = send_cmd(s, PF_AN3155_GET_CHECKSUM, got);
    if (r < 0)
        return r;
    *stage = ST_ADDR;
    r = send_u32(s, a->addr, ACK_MS, got);
    if (r < 0)
        return r;
    *stage = ST_ARG;
    r = send_u32(s, a->len, ACK_MS, got);
    if (r < 0)
        return r;
    *stage = ST_RESULT;
    r = wait_ack(s, ACK_MS + a->len / 1024u, got);
    if (r < 0)
        return r;
    uint8_t c[5];
    r = pf_port_read_exact(P(s), c, 5, pf_deadline(P(s), ACK_MS), NULL);
    if (r < 0)
        return r;
    memcpy(a->out, c, 4); /* big-endian, as pf_digest_finish writes PF_DIGEST_CRC32_STM32 */
    return pf_an3155_frame_ok(c, 5) ? PF_OK : PF_ERR_CRC;
}

static int stm32_digest(void *self, uint32_t addr, uint32_t len, uint8_t *out)
{
    S *s = self;
    int r = need(s);
    if (r < 0)
        return r;
    if (!s->_has_crc)
        return pf_diag_set(s->_cfg.diag, PF_ERR_UNSUPPORTED, "this STM32 bootloader has no Get Checksum command");
    if ((addr & 3) || (len & 3) || !len)
        return pf_diag_set(s->_cfg.diag, PF_ERR_ARG, "Get Checksum needs 4-byte aligned address and length");
    checksum_args a = {addr, len, out};
    int stage;
    uint8_t got = 0;
    r = with_retries(s, checksum_attempt, NULL, &a, &stage, &got);
    return r == PF_OK ? 4 : explain(s, r, PF_AN3155_GET_CHECKSUM, 1, addr, stage, got);
}

static int stm32_run(void *self)
{
    S *s = self;
    int r = need(s);
    if (r < 0)
        return r;
    uint8_t got = 0;
    int stage = ST_CMD;
    r = send_cmd(s, PF_AN3155_GO, &got);
    if (r == PF_OK) {
        stage = ST_ADDR;
        r = send_u32(s, s->chip->flash_start, ACK_MS, &got);
    }
    if (r < 0)
        return explain(s, r, PF_AN3155_GO, 1, s->chip->flash_start, stage, got);
    s->_connected = 0;
    return exit_sequence(s);
}

static void stm32_close(void *self)
{
    S *s = self;
    if (s)
        s->_connected = 0;
}

/* --- option-byte commands ------------------------------------------------------------------ */

/* Sends a command answered by ACK, [work], ACK, after which the chip resets;
 * then synchronises again. */
static int option_command(S *s, uint8_t op, uint32_t work_ms)
{
    int r = need(s);
    if (r < 0)
        return r;
    s->_unprotected = 0; /* the chip resets with new option bytes: protection may change */
    uint8_t got = 0;
    r = send_cmd(s, op, &got);
    if (r < 0)
        return explain(s, r, op, 0, 0, ST_CMD, got);
    r = wait_ack(s, work_ms, &got);
    if (r < 0)
        return explain(s, r, op, 0, 0, ST_RESULT, got);
    /* The chip resets: wait for it, then autobaud again. */
    pf_port_delay(P(s), RESET_MS);
    uint16_t pid = 0;
    r = identify(s, &pid);
    if (r < 0)
        return r;
    return pid == s->chip->pid ? PF_OK : pf_diag_set(s->_cfg.diag, PF_ERR_CHIP, "after the reset a different chip (PID 0x%03x) answers", pid);
}

int pf_stm32_readout_unprotect(void *self) { return option_command(self, PF_AN3155_READOUT_UNPROTECT, 40000u); }
int pf_stm32_write_unprotect(void *self) { return option_command(self, PF_AN3155_WRITE_UNPROTECT, 5000u); }
int pf_stm32_readout_protect(void *self) { return option_command(self, PF_AN3155_READOUT_PROTECT, 5000u); }

void pf_stm32_get_stats(const void *self, pf_stm32_stats *out)
{
    *out = ((const S *)self)->stats;
}

const pf_stm32_chip *pf_stm32_connected_chip(const void *self)
{
    const S *s = self;
    return s->_connected ? s->chip : NULL;
}

/* ---- what the front ends ask of a driver (pf_target_ops, optional part) ---- */
static const pf_target_option stm32_options[] = {
    {.name = "unprotect-read",
     .arg = NULL,
     .help = "remove readout protection first; THE CHIP ERASES ALL ITS FLASH",
     .commands = PF_CMD_ANY,
     .flags = 0},
    {.name = "unprotect-write",
     .arg = NULL,
     .help = "remove write protection first (flash content stays)",
     .commands = PF_CMD_ANY,
     .flags = 0},
    {.name = NULL},
};

static int stm32_set_option(void *self, const char *name, const char *value)
{
    S *s = self;
    (void)value;
    if (!strcmp(name, "unprotect-read"))
        s->_want_unprotect_read = 1;
    else if (!strcmp(name, "unprotect-write"))
        s->_want_unprotect_write = 1;
    else
        return pf_diag_set(s->_cfg.diag, PF_ERR_ARG, "option '%s' is not an option of the stm32 driver", name);
    return PF_OK;
}

static void notice(S *s, const char *line)
{
    if (s->_cfg.notice)
        s->_cfg.notice(s->_cfg.progress_user, line);
}

static int stm32_after_connect(void *self)
{
    S *s = self;
    int r = PF_OK;
    if (s->_want_unprotect_read) {
        notice(s, "removing readout protection: the chip erases its whole flash...");
        r = pf_stm32_readout_unprotect(s);
    }
    if (r == PF_OK && s->_want_unprotect_write) {
        notice(s, "removing write protection...");
        r = pf_stm32_write_unprotect(s);
    }
    if (r < 0)
        pf_diag_op(s->_cfg.diag, "unprotect");
    return r;
}

/* info: readout and write protection from the option bytes. */
static int stm32_details(void *self, char *out, size_t n)
{
    S *s = self;
    uint8_t ob[64];
    uint32_t len = 0;
    int r = pf_stm32_read_option_bytes(s, ob, &len);
    if (r == PF_ERR_PROTECTED) {
        pf_format(out, n, "rdp: level 1 or 2 (read-protected: the bootloader refuses Read Memory)\n"
                          "wrp: unknown (readout protection hides the option bytes)\n");
        return PF_OK;
    }
    if (r == PF_ERR_UNSUPPORTED) {
        pf_format(out, n, "rdp: not read (the option bytes of the %s family are not decoded)\n", s->chip->family);
        return PF_OK;
    }
    if (r < 0)
        return r;
    char rdp[160], wrp[160], hex[2 * 64 + 1];
    uint32_t addr = 0, count = 0;
    pf_stm32_ob_where(s->chip, &addr, &count);
    pf_stm32_ob_describe(s->chip, ob, rdp, sizeof rdp, wrp, sizeof wrp);
    for (uint32_t i = 0; i < len && i < 64; i++)
        pf_format(hex + 2 * i, 3, "%02x", ob[i]);
    hex[2 * (len < 64 ? len : 64)] = '\0';
    pf_format(out, n, "rdp: %s\nwrp: %s\noption bytes: %s at 0x%08lx\n", rdp, wrp, hex, (unsigned long)addr);
    return PF_OK;
}

const pf_target_ops pf_target_stm32 = {
    .name = "stm32",
    .summary = "STM32 system-memory bootloader (ST AN3155, USART 8E1)",
    .ctx_size = sizeof(pf_stm32),
    .open = stm32_open,
    .connect = stm32_connect,
    .erase = stm32_erase,
    .erase_all = stm32_erase_all,
    .write_begin = NULL, /* nothing to announce */
    .write = stm32_write,
    .write_end = NULL,   /* each block is in flash when its ACK arrives */
    .read = stm32_read,
    .digest = stm32_digest,
    .run = stm32_run,
    .close = stm32_close,
    .options = stm32_options,
    .set_option = stm32_set_option,
    .after_connect = stm32_after_connect,
    .details = stm32_details,
    .chip = pf_stm32_chip_name,
    .chip_flags = PF_CHIPS_SUFFIX_ANY,
    .reset_valid = pf_stm32_reset_valid,
    .reset_help = "auto, none, or ENTRY[:EXIT] steps separated by commas: dtr, -dtr, rts, -rts (assert/release), "
                  "or a wait in milliseconds (e.g. rts,dtr,20,-dtr,50:-rts,dtr,20,-dtr)",
    /* AN2606 "USART bootloader": the ROM measures 0x7F at 1200..115200 bit/s */
    .baud_min = 1200,
    .baud_max = 115200,
    .baud_note = "the STM32 bootloader runs at 1200..115200 bit/s (ST AN2606)",
    .probe_rank = 1, /* first: the ROM takes the first byte after reset as its autobaud pattern */
    .app_address = 0x08000000, /* main flash: where every STM32 the driver knows boots from */
};
