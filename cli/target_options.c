/* The target options checked before anything is opened (exit 2 naming the
 * option): --chip against the target's chip table, with real part numbers
 * (STM32F103C8T6, ATmega328P-PU, ESP32-WROOM-32) mapped to the table entry
 * and an ambiguous prefix refused with the candidates; --reset against what
 * the driver does; --baud/--connect-baud against what the target's
 * bootloader and a serial port can run at. */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "peerflash/pf_target.h"

/* A name the user may give, and the table entry it stands for. */
typedef struct chip_name {
    const char *name;
    const char *entry;
} chip_name;

#define MAX_NAMES 128
typedef struct name_list {
    chip_name v[MAX_NAMES];
    unsigned n;
    int suffix_any; /* a part number may go on after the name without a '-' (STM32F103C8T6) */
} name_list;

static void add(name_list *l, const char *name, const char *entry)
{
    if (name && l->n < MAX_NAMES)
        l->v[l->n++] = (chip_name){name, entry};
}

/* The names --chip takes for a target, from its driver (ops->chip); 0 when
 * the driver has no chip table. */
static int names_for(const char *target, name_list *l)
{
    memset(l, 0, sizeof *l);
    const pf_target_ops *ops = pf_target_find(target);
    if (!ops || !ops->chip)
        return 0;
    pf_target_chip c;
    for (unsigned i = 0; ops->chip(i, &c); i++)
        add(l, c.name, c.entry);
    l->suffix_any = (ops->chip_flags & PF_CHIPS_SUFFIX_ANY) != 0;
    return 1;
}

/* How many characters of `given` the table name covers: its full length
 * when given starts with it (case-insensitive; an 'x' in the table stands
 * for any letter or digit, as in "STM32F103xB"), else 0. A name shorter than
 * the table's "STM32" prefix is matched without it. */
static size_t covers(const char *table, const char *given)
{
    if (!strncmp(table, "STM32", 5) && strncasecmp(given, "STM32", 5))
        table += 5;
    size_t i = 0;
    for (; table[i]; i++) {
        unsigned char t = (unsigned char)table[i], g = (unsigned char)given[i];
        if (!g)
            return 0;
        if (t == 'x' ? !isalnum(g) : tolower(t) != tolower(g))
            return 0;
    }
    return i;
}

/* given is a strict prefix of the table name (same rules as covers). */
static int starts(const char *table, const char *given)
{
    if (!strncmp(table, "STM32", 5) && strncasecmp(given, "STM32", 5))
        table += 5;
    size_t i = 0;
    for (; given[i]; i++) {
        unsigned char t = (unsigned char)table[i], g = (unsigned char)given[i];
        if (!t || (t == 'x' ? !isalnum(g) : tolower(t) != tolower(g)))
            return 0;
    }
    return table[i] != '\0';
}

/* Appends the distinct entries of hits, at most `max` of them. */
static void list_entries(char *out, size_t n, const chip_name *const *hits, unsigned nhits, unsigned max)
{
    size_t len = strlen(out);
    unsigned shown = 0;
    for (unsigned i = 0; i < nhits && len + 2 < n; i++) {
        int dup = 0;
        for (unsigned k = 0; k < i; k++)
            dup |= !strcmp(hits[k]->entry, hits[i]->entry);
        if (dup)
            continue;
        if (shown++ == max) {
            snprintf(out + len, n - len, ", ...");
            return;
        }
        len += (size_t)snprintf(out + len, n - len, "%s%s", out[len - 1] != ' ' ? ", " : "", hits[i]->entry);
        if (len >= n)
            return;
    }
}

/* Resolves --chip for target: *entry is the table's name for it. Returns
 * 0, or -1 with the reason in why. "auto" and targets without a table pass
 * through unchanged. */
static int resolve_chip(const char *target, const char *given, const char **entry, char *why, size_t n)
{
    name_list l;
    *entry = given;
    if (!given || !strcmp(given, "auto") || !names_for(target, &l))
        return 0;
    const chip_name *hits[MAX_NAMES];
    unsigned nh = 0;
    size_t glen = strlen(given);
    /* 1. the whole name */
    for (unsigned i = 0; i < l.n; i++)
        if (covers(l.v[i].name, given) == glen)
            hits[nh++] = &l.v[i];
    /* 2. the start of one or more names: unique, or ambiguous */
    if (!nh)
        for (unsigned i = 0; i < l.n; i++)
            if (starts(l.v[i].name, given))
                hits[nh++] = &l.v[i];
    /* 3. a part number: a name, then a package/temperature suffix (STM32) or
     *    "-" and a package or module (ATmega328P-PU, ESP32-WROOM-32); the
     *    longest name wins (ESP32-S3-WROOM-1 is an ESP32-S3) */
    if (!nh) {
        size_t best = 0;
        for (unsigned i = 0; i < l.n; i++) {
            size_t c = covers(l.v[i].name, given);
            if (c && c < glen && (l.suffix_any || given[c] == '-') && c >= best) {
                if (c > best)
                    nh = 0;
                best = c;
                hits[nh++] = &l.v[i];
            }
        }
    }
    int distinct = 0;
    for (unsigned i = 0; i < nh; i++) {
        int dup = 0;
        for (unsigned k = 0; k < i; k++)
            dup |= !strcmp(hits[k]->entry, hits[i]->entry);
        distinct += !dup;
    }
    if (distinct == 1) {
        *entry = hits[0]->entry;
        return 0;
    }
    if (distinct > 1) {
        snprintf(why, n, "--chip %s is ambiguous for --target %s: it could be ", given, target);
        list_entries(why, n, hits, nh, 64);
        return -1;
    }
    /* close matches: names sharing the first characters of given */
    for (size_t keep = glen > 6 ? 6 : glen; keep >= 3 && !nh; keep--) {
        char head[8];
        memcpy(head, given, keep);
        head[keep] = '\0';
        for (unsigned i = 0; i < l.n; i++)
            if (starts(l.v[i].name, head) || covers(l.v[i].name, head) == keep)
                hits[nh++] = &l.v[i];
    }
    snprintf(why, n, "--chip %s is not a chip of --target %s%s", given, target, nh ? "; close matches: " : "");
    if (nh)
        list_entries(why, n, hits, nh, 8);
    else {
        snprintf(why + strlen(why), n - strlen(why), "; it knows ");
        for (unsigned i = 0; i < l.n; i++)
            hits[i] = &l.v[i];
        list_entries(why, n, hits, l.n, 64);
    }
    return -1;
}

/* The rates ports/posix sets on a serial device (its speed_constant). */
static int port_rate(uint32_t baud)
{
    static const uint32_t rates[] = {1200,   2400,   4800,   9600,    19200,   38400,   57600,   115200, 230400,
                                     460800, 500000, 576000, 921600, 1000000, 1152000, 1500000, 2000000, 3000000};
    for (size_t i = 0; i < sizeof rates / sizeof rates[0]; i++)
        if (rates[i] == baud)
            return 1;
    return 0;
}

static int check_baud(const char *target, const char *opt, uint32_t baud, const char *port, char *why, size_t n)
{
    if (!baud)
        return 0;
    /* the rates the bootloader can sync at, as its driver declares them */
    const pf_target_ops *ops = pf_target_find(target);
    if (ops && ((ops->baud_min && baud < ops->baud_min) || (ops->baud_max && baud > ops->baud_max))) {
        if (ops->baud_note)
            snprintf(why, n, "%s %lu: %s", opt, (unsigned long)baud, ops->baud_note);
        else
            snprintf(why, n, "%s %lu: the %s bootloader runs at %lu..%lu bit/s", opt, (unsigned long)baud, target,
                     (unsigned long)ops->baud_min, (unsigned long)ops->baud_max);
        return -1;
    }
    int tcp = !strncmp(port, "tcp://", 6) || !strncmp(port, "tcp-listen://", 13);
    if (!tcp && !port_rate(baud)) {
        snprintf(why, n,
                 "%s %lu: a serial port here runs at 1200, 2400, 4800, 9600, 19200, 38400, 57600, 115200, "
                 "230400, 460800, 500000, 576000, 921600, 1000000, 1152000, 1500000, 2000000 or 3000000 bit/s",
                 opt, (unsigned long)baud);
        return -1;
    }
    return 0;
}

static int check_reset(const char *target, const char *reset, char *why, size_t n)
{
    if (!reset)
        return 0;
    const pf_target_ops *ops = pf_target_find(target);
    if (ops && ops->reset_valid ? ops->reset_valid(reset) : (!strcmp(reset, "auto") || !strcmp(reset, "none")))
        return 0;
    snprintf(why, n, "--reset %s: for %s give %s", reset, target,
             ops && ops->reset_help ? ops->reset_help : "auto (the DTR/RTS reset circuit) or none");
    return -1;
}

int pf_cli_check_target_options(const char *target, const char *chip, const char *reset, uint32_t baud,
                                uint32_t connect_baud, const char *port, const char **chip_entry, char *why,
                                size_t n)
{
    if (resolve_chip(target, chip, chip_entry, why, n) < 0 || check_reset(target, reset, why, n) < 0 ||
        check_baud(target, "--baud", baud, port, why, n) < 0 ||
        check_baud(target, "--connect-baud", connect_baud, port, why, n) < 0)
        return -1;
    return 0;
}

/* The flash a target's chips have between them (or the one --chip names):
 * 0 when the target has no table that says. */
static int flash_span(const char *target, const char *chip, uint32_t *lo, uint64_t *hi)
{
    *lo = UINT32_MAX;
    *hi = 0;
    const pf_target_ops *ops = pf_target_find(target);
    if (!ops || !ops->chip)
        return 0;
    int want = chip && strcmp(chip, "auto");
    pf_target_chip c;
    for (unsigned i = 0; ops->chip(i, &c); i++) {
        if (!c.name || !c.flash_size || strcmp(c.name, c.entry) || (want && strcasecmp(c.entry, chip)))
            continue; /* each table entry once (the entry names itself); --chip is resolved to an entry */
        if (c.flash_start < *lo)
            *lo = c.flash_start;
        if ((uint64_t)c.flash_start + c.flash_size > *hi)
            *hi = (uint64_t)c.flash_start + c.flash_size;
    }
    return *hi != 0;
}

int pf_cli_check_load_address(const char *target, const char *chip, const char *spec, char *why, size_t n)
{
    const char *at = strrchr(spec, '@');
    uint32_t lo;
    uint64_t hi;
    if (!at || !flash_span(target, chip, &lo, &hi))
        return 0;
    char *end = NULL;
    unsigned long long addr = strtoull(at + 1, &end, 0);
    if (!end || *end || end == at + 1)
        return 0; /* not an address: the image loader has said what it is */
    if (addr >= lo && addr < hi)
        return 0;
    snprintf(why, n, "%s: load address 0x%08llx is outside the flash of %s%s (0x%08lx-0x%08llx)", spec, addr,
             chip && strcmp(chip, "auto") ? chip : "any ", chip && strcmp(chip, "auto") ? "" : target,
             (unsigned long)lo, (unsigned long long)(hi - 1));
    return -1;
}

const char *pf_cli_target_of_chip(const char *chip)
{
    const char *found = NULL;
    for (size_t i = 0; pf_target_drivers[i]; i++) {
        const char *entry;
        char why[512];
        name_list l;
        if (!names_for(pf_target_drivers[i]->name, &l))
            continue; /* no chip table: it cannot say */
        if (resolve_chip(pf_target_drivers[i]->name, chip, &entry, why, sizeof why) == 0) {
            if (found)
                return NULL;
            found = pf_target_drivers[i]->name;
        }
    }
    return found;
}
