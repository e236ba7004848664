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
#include "peerflash/pf_avr.h"
#include "peerflash/pf_esp.h"
#include "peerflash/pf_stm32.h"

/* A name the user may give, and the table entry it stands for. */
typedef struct chip_name {
    const char *name;
    const char *entry;
} chip_name;

/* STM32 parts whose flash size the ROM cannot tell from the table's entry
 * (same product ID): the table keeps the largest, these are the smaller
 * sizes (RM0008 and the datasheets: low/medium/high/XL density F1 lines,
 * F401 xB/xC and xD/xE, F411 xC/xE, G07x/G08x 8/B, G03x/G04x 6/8, L47x E/G). */
static const chip_name stm32_aliases[] = {
    {"STM32F103x4", "STM32F103x6"}, {"STM32F103x8", "STM32F103xB"}, {"STM32F103xC", "STM32F103xE"},
    {"STM32F103xD", "STM32F103xE"}, {"STM32F103xF", "STM32F103xG"}, {"STM32F401xB", "STM32F401xC"},
    {"STM32F401xD", "STM32F401xE"}, {"STM32F411xC", "STM32F411xE"}, {"STM32G07xx8", "STM32G07xxB"},
    {"STM32G03xx6", "STM32G03xx8"}, {"STM32L47xxE", "STM32L47xxG"},
};

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

/* The names --chip takes for a target; 0 when the target has no chip table. */
static int names_for(const char *target, name_list *l)
{
    memset(l, 0, sizeof *l);
    if (!strcmp(target, "stm32")) {
        for (unsigned i = 0; i < pf_stm32_n_chips; i++)
            add(l, pf_stm32_chips[i].name, pf_stm32_chips[i].name);
        for (size_t i = 0; i < sizeof stm32_aliases / sizeof stm32_aliases[0]; i++)
            add(l, stm32_aliases[i].name, stm32_aliases[i].entry);
        l->suffix_any = 1;
        return 1;
    }
    if (!strcmp(target, "avr")) { /* a suffix only after '-': ATmega328PB is another chip */
        for (const pf_avr_chip *c = pf_avr_chips; c->name; c++) {
            add(l, c->name, c->name);
            add(l, c->alias, c->name);
        }
        return 1;
    }
    if (!strcmp(target, "esp")) {
        for (const pf_esp_chip *c = pf_esp_chips; c->name; c++) {
            add(l, c->name, c->name);
            add(l, c->key, c->name);
        }
        l->suffix_any = 1; /* ESP8266EX, ESP32D0WDQ6 */
        return 1;
    }
    return 0;
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
    /* AN2606 "USART bootloader": the ROM measures 0x7F at 1200..115200 bit/s */
    if (!strcmp(target, "stm32") && (baud < 1200 || baud > 115200)) {
        snprintf(why, n, "%s %lu: the STM32 bootloader runs at 1200..115200 bit/s (ST AN2606)", opt,
                 (unsigned long)baud);
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
    if (!strcmp(target, "stm32")) {
        if (pf_stm32_reset_valid(reset))
            return 0;
        snprintf(why, n,
                 "--reset %s: for stm32 give auto, none, or ENTRY[:EXIT] steps separated by commas: dtr, -dtr, "
                 "rts, -rts (assert/release), or a wait in milliseconds (e.g. rts,dtr,20,-dtr,50:-rts,dtr,20,-dtr)",
                 reset);
        return -1;
    }
    if (!strcmp(target, "esp")) {
        if (!strcmp(reset, "auto") || !strcmp(reset, "none") || !strcmp(reset, "tight") || !strcmp(reset, "classic"))
            return 0;
        snprintf(why, n, "--reset %s: for esp give auto, none, tight or classic", reset);
        return -1;
    }
    if (!strcmp(reset, "auto") || !strcmp(reset, "none"))
        return 0;
    snprintf(why, n, "--reset %s: for %s give auto (the DTR/RTS reset circuit) or none", reset, target);
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
    if (!strcmp(target, "stm32")) {
        const pf_stm32_chip *want = chip && strcmp(chip, "auto") ? pf_stm32_chip_by_name(chip) : NULL;
        for (unsigned i = 0; i < pf_stm32_n_chips; i++) {
            const pf_stm32_chip *c = &pf_stm32_chips[i];
            if (want && c != want)
                continue;
            if (c->flash_start < *lo)
                *lo = c->flash_start;
            if ((uint64_t)c->flash_start + c->flash_size > *hi)
                *hi = (uint64_t)c->flash_start + c->flash_size;
        }
        return 1;
    }
    if (!strcmp(target, "avr")) {
        const pf_avr_chip *want = chip && strcmp(chip, "auto") ? pf_avr_chip_by_name(chip) : NULL;
        *lo = 0;
        for (const pf_avr_chip *c = pf_avr_chips; c->name; c++)
            if ((!want || c == want) && c->flash_size > *hi)
                *hi = c->flash_size;
        return 1;
    }
    return 0;
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
    static const char *const targets[] = {"stm32", "avr", "esp"};
    const char *found = NULL;
    for (size_t i = 0; i < sizeof targets / sizeof targets[0]; i++) {
        const char *entry;
        char why[512];
        if (resolve_chip(targets[i], chip, &entry, why, sizeof why) == 0) {
            if (found)
                return NULL;
            found = targets[i];
        }
    }
    return found;
}
