/* The updater firmware: reads a firmware image from storage (an SD card, or
 * semihosting in QEMU) and writes it into a target MCU over the board's UART,
 * with the same core, drivers and flash job as the peerflash command.
 *
 * The job is the CLI's words (from QEMU's -append on mps2-an385):
 *   flash --target avr|esp|stm32|... --image PATH[@ADDR] [--image ...]
 *         [--baud N] [--connect-baud N] [--chip NAME] [--reset MODE]
 *         [--erase touched|all] [--no-skip] [--no-run] [-v]
 *         [--DRIVER-OPTION [VALUE]] ...   (the target driver's own options,
 *                                          e.g. --no-compress, --read-compare)
 * A leading program name (QEMU puts the kernel file name first) is skipped.
 * The connection is set up by pf_session (pf_session.h), as in the CLI.
 *
 * Memory is static and bounded (no heap): the image is read from storage
 * 512 bytes at a time through the HEX / S-record / raw-binary reader. With
 * an image arena (PF_UPDATER_ARENA > 0, the default) the memory map holds the
 * image's data; with PF_UPDATER_ARENA=0 (small boards) the first read only
 * records the address ranges, and the job's reads parse the file again on
 * demand ("streaming": forward from where the last read stopped, from the
 * start when the job goes back), so the image may be larger than the RAM.
 * The driver's state and the job's work buffer are static too. The limits
 * (PF_UPDATER_*) are printed by the firmware when an image or driver does
 * not fit.
 *
 * Exit status, the CLI's map (pf_exit_status, pf_err.h): 0 written AND
 * verified, 1 other failure, 2 usage, 3 image, 4 link / no answer, 5 target
 * refused, 6 verify mismatch or a target that can neither hash nor read back
 * its flash (written, not verified). */
#include <stdarg.h>
#include <stdint.h>
#include <string.h>

#include "peerflash/pf_digest.h"
#include "peerflash/pf_image.h"
#include "peerflash/pf_job.h"
#include "peerflash/pf_memmap.h"
#include "peerflash/pf_session.h"
#include "peerflash/pf_target.h"
#include "pf_board.h"

#ifndef PF_UPDATER_ARENA
#define PF_UPDATER_ARENA (256u * 1024u) /* image data bytes (all files together); 0: streamed from storage */
#endif
#define PF_UPDATER_STREAM (PF_UPDATER_ARENA == 0)
#ifndef PF_UPDATER_SEGMENTS
#define PF_UPDATER_SEGMENTS 32u /* separate address ranges in the image */
#endif
#ifndef PF_UPDATER_CTX
#define PF_UPDATER_CTX (240u * 1024u) /* driver state (ESP: deflate window and hash chains) */
#endif
#ifndef PF_UPDATER_WORK
#define PF_UPDATER_WORK (32u * 1024u) /* job work buffer: 2 x write_max for read-back verify */
#endif
#define PF_UPDATER_MAX_IMAGES 4
#ifndef PF_UPDATER_MAX_OPTIONS
#define PF_UPDATER_MAX_OPTIONS 8 /* driver options in one job */
#endif
#ifndef PF_UPDATER_OPTION_WORD
#define PF_UPDATER_OPTION_WORD 64 /* bytes of one "name=value" driver option */
#endif
#ifndef PF_UPDATER_PATH
#define PF_UPDATER_PATH 256 /* bytes of an image path, with its NUL */
#endif
#ifndef PF_UPDATER_LINE
#define PF_UPDATER_LINE (PF_DIAG_MAX + 80) /* console line while a job runs (longer ones are cut) */
#endif
#ifndef PF_UPDATER_CHUNK
#define PF_UPDATER_CHUNK 512u /* bytes per storage read (one SD sector) */
#endif
#ifndef PF_UPDATER_JOBLINE
#define PF_UPDATER_JOBLINE 512 /* the job's command line, with its NUL */
#endif

typedef struct job_opts {
    const char *target;
    const char *images[PF_UPDATER_MAX_IMAGES];
    int n_images;
    uint32_t baud, connect_baud;
    const char *chip, *reset;
    int erase_all, skip, run, verbose;
    const char *options[PF_UPDATER_MAX_OPTIONS + 1]; /* driver options, "name" or "name=value", NULL-ended */
    int n_options;
} job_opts;

static char option_words[PF_UPDATER_MAX_OPTIONS][PF_UPDATER_OPTION_WORD];

#if !PF_UPDATER_STREAM
static uint8_t arena[PF_UPDATER_ARENA];
#endif
static pf_segment segments[PF_UPDATER_SEGMENTS];
static uint64_t driver_ctx[PF_UPDATER_CTX / sizeof(uint64_t)];
static uint8_t work[PF_UPDATER_WORK];
static uint8_t chunk[PF_UPDATER_CHUNK];
static char jobline[PF_UPDATER_JOBLINE];
static union {
    pf_ihex ihex;
    pf_srec srec;
    pf_bin bin;
} parser;

/* ---- output ------------------------------------------------------------------------ */
static const pf_board *board;

/* A console line. say() runs deep in the job (progress, from inside a
 * driver's transfer): its buffer is PF_UPDATER_LINE bytes of stack, smaller
 * on small boards; say_long() is for the lines around the job (the job line
 * and the final error with the whole diag text), when the stack is shallow. */
static void say(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void say(const char *fmt, ...)
{
    char line[PF_UPDATER_LINE];
    va_list ap;
    va_start(ap, fmt);
    pf_vformat(line, sizeof line, fmt, ap);
    va_end(ap);
    board->console(line);
}

static void say_long(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void say_long(const char *fmt, ...)
{
    char line[PF_UPDATER_JOBLINE + PF_DIAG_MAX + 80];
    va_list ap;
    va_start(ap, fmt);
    pf_vformat(line, sizeof line, fmt, ap);
    va_end(ap);
    board->console(line);
}

static uint32_t now(void)
{
    return board->link->now_ms(board->link->ctx);
}

/* "12.34" seconds from milliseconds, for messages. */
static const char *secs(uint32_t ms, char *buf, size_t n)
{
    pf_format(buf, n, "%lu.%02lu", (unsigned long)(ms / 1000u), (unsigned long)(ms % 1000u / 10u));
    return buf;
}

typedef struct progress {
    pf_phase phase;
    int last_tenth;
    uint32_t t0;
} progress;

static void on_progress(void *user, pf_phase phase, uint32_t done, uint32_t total)
{
    progress *p = user;
    if (phase == PF_PHASE_RUN) {
        if (done == 0)
            say("run: starting the application");
        return;
    }
    if (phase != p->phase || done == 0) {
        p->phase = phase;
        p->last_tenth = -1;
        p->t0 = now();
    }
    int tenth = total ? (int)((uint64_t)done * 10u / total) : 10;
    if (tenth == p->last_tenth)
        return;
    p->last_tenth = tenth;
    char s[16];
    say("%s: %lu/%lu bytes (%d%%) %s s", pf_phase_name(phase), (unsigned long)done, (unsigned long)total,
        tenth * 10, secs(now() - p->t0, s, sizeof s));
}

/* ---- the job line --------------------------------------------------------------------- */
static int parse_u32(const char *s, uint32_t *out)
{
    uint32_t base = 10, v = 0;
    if (s[0] == '0' && (s[1] == 'x' || s[1] == 'X')) {
        base = 16;
        s += 2;
    }
    if (!*s)
        return -1;
    for (; *s; s++) {
        uint32_t d;
        if (*s >= '0' && *s <= '9')
            d = (uint32_t)(*s - '0');
        else if (base == 16 && *s >= 'a' && *s <= 'f')
            d = (uint32_t)(*s - 'a' + 10);
        else if (base == 16 && *s >= 'A' && *s <= 'F')
            d = (uint32_t)(*s - 'A' + 10);
        else
            return -1;
        if (v > (0xFFFFFFFFu - d) / base)
            return -1;
        v = v * base + d;
    }
    *out = v;
    return 0;
}

/* Splits the line into words in place; returns the count. */
static int split(char *line, char **argv, int max)
{
    int n = 0;
    for (char *p = line; *p;) {
        while (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r')
            *p++ = '\0';
        if (!*p)
            break;
        if (n == max)
            return -1;
        argv[n++] = p;
        while (*p && *p != ' ' && *p != '\t' && *p != '\n' && *p != '\r')
            p++;
    }
    return n;
}

static int parse_job(char *line, job_opts *o, pf_diag *d)
{
    char *argv[32];
    int argc = split(line, argv, 32);
    if (argc < 0)
        return pf_diag_set(d, PF_ERR_ARG, "job has more than 32 words");
    int i = 0;
    if (argc > 0 && strcmp(argv[0], "flash") != 0)
        i = 1; /* QEMU passes the kernel file name first */
    if (i >= argc || strcmp(argv[i], "flash") != 0)
        return pf_diag_set(d, PF_ERR_ARG, "job must start with 'flash' (got '%s')", i < argc ? argv[i] : "");
    memset(o, 0, sizeof *o);
    o->skip = o->run = 1;
    for (i++; i < argc; i++) {
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        int takes = 1;
        if (!strcmp(a, "--target") && v)
            o->target = v;
        else if (!strcmp(a, "--image") && v) {
            if (o->n_images == PF_UPDATER_MAX_IMAGES)
                return pf_diag_set(d, PF_ERR_ARG, "at most %d --image", PF_UPDATER_MAX_IMAGES);
            o->images[o->n_images++] = v;
        } else if ((!strcmp(a, "--baud") || !strcmp(a, "--connect-baud")) && v) {
            uint32_t *dst = a[2] == 'b' ? &o->baud : &o->connect_baud;
            if (parse_u32(v, dst) || *dst == 0)
                return pf_diag_set(d, PF_ERR_ARG, "%s needs a rate in baud, got '%s'", a, v);
        } else if (!strcmp(a, "--chip") && v)
            o->chip = v;
        else if (!strcmp(a, "--reset") && v)
            o->reset = v;
        else if (!strcmp(a, "--erase") && v && (!strcmp(v, "all") || !strcmp(v, "touched")))
            o->erase_all = !strcmp(v, "all");
        else {
            takes = 0;
            if (!strcmp(a, "--no-skip"))
                o->skip = 0;
            else if (!strcmp(a, "--no-run"))
                o->run = 0;
            else if (!strcmp(a, "-v") || !strcmp(a, "--verbose"))
                o->verbose++;
            else if (a[0] == '-' && a[1] == '-' && a[2]) {
                /* a driver's option: whether it takes a value, any driver's
                 * table says; pf_session_open checks it against the target's */
                const pf_target_option *opt = NULL;
                for (size_t k = 0; pf_target_drivers[k] && !opt; k++)
                    opt = pf_target_option_find(pf_target_drivers[k], a + 2, strlen(a + 2));
                if (!opt)
                    return pf_diag_set(d, PF_ERR_ARG, "unknown or incomplete option '%s'", a);
                if (opt->flags & PF_OPT_HOST)
                    return pf_diag_set(d, PF_ERR_ARG, "%s needs the host (a patch made on a computer); the updater "
                                                      "sends whole images", a);
                if (opt->arg && !v)
                    return pf_diag_set(d, PF_ERR_ARG, "%s needs a value (%s)", a, opt->arg);
                if (o->n_options == PF_UPDATER_MAX_OPTIONS)
                    return pf_diag_set(d, PF_ERR_ARG, "at most %d driver options", PF_UPDATER_MAX_OPTIONS);
                char *w = option_words[o->n_options];
                size_t need = strlen(opt->name) + (opt->arg ? 1 + strlen(v) : 0);
                if (need >= sizeof option_words[0])
                    return pf_diag_set(d, PF_ERR_ARG, "%s %s: longer than the updater's %u-byte option buffer "
                                       "(PF_UPDATER_OPTION_WORD)", a, opt->arg ? v : "", (unsigned)PF_UPDATER_OPTION_WORD);
                pf_format(w, sizeof option_words[0], "%s%s%s", opt->name, opt->arg ? "=" : "", opt->arg ? v : "");
                o->options[o->n_options++] = w;
                takes = opt->arg ? 1 : 0;
            } else
                return pf_diag_set(d, PF_ERR_ARG, "unknown or incomplete option '%s'", a);
        }
        i += takes;
    }
    if (!o->target)
        return pf_diag_set(d, PF_ERR_ARG, "--target is missing");
    if (!o->n_images)
        return pf_diag_set(d, PF_ERR_ARG, "--image is missing");
    return PF_OK;
}

/* ---- the image: storage -> reader -> memory map --------------------------------------- */
static char path[PF_UPDATER_PATH];

/* PATH[@ADDR] into path (static) and the address: the last '@' followed by a
 * digit starts the address. */
static int split_spec(const char *spec, uint32_t *addr, int *has_addr, pf_diag *d)
{
    size_t n = strlen(spec);
    if (n >= sizeof path)
        return pf_diag_set(d, PF_ERR_ARG, "image path longer than %u characters (PF_UPDATER_PATH)",
                           (unsigned)sizeof path - 1);
    memcpy(path, spec, n + 1);
    *addr = 0;
    *has_addr = 0;
    char *at = strrchr(path, '@');
    if (at && at[1] >= '0' && at[1] <= '9') {
        if (parse_u32(at + 1, addr))
            return pf_diag_set(d, PF_ERR_ARG, "%s: bad load address '%s'", spec, at + 1);
        *at = '\0';
        *has_addr = 1;
    }
    return PF_OK;
}

#if PF_UPDATER_STREAM
/* ---- streaming: the image read again from storage when the job asks ---------------------- */
#define STREAM_PIECE 256u /* bytes fed to the reader at a time: one record at most per piece */

typedef struct stream_range {
    uint32_t addr, len;
    uint8_t file; /* index in the job's --image list */
} stream_range;

static struct {
    const job_opts *job;
    pf_diag *diag;
    pf_image_format fmt[PF_UPDATER_MAX_IMAGES];
    stream_range ranges[PF_UPDATER_SEGMENTS]; /* which file holds which addresses */
    unsigned n_ranges;
    pf_memmap_dest *index_dest; /* first pass: into the map as well */
    int file;                   /* open file, -1 when none */
    size_t pos, len;            /* unread bytes: chunk[pos, len) */
    int eof;
    /* the read being served */
    uint32_t req_addr;
    uint8_t *req_out;
    size_t req_len, filled;
    /* the last record's bytes past the read (the next read usually starts there) */
    uint32_t carry_addr;
    size_t carry_len;
    uint8_t carry[STREAM_PIECE];
    uint8_t indexing_file;
} stream;

/* First pass: the file's address ranges, then the map's segments. */
static int stream_index_sink(void *user, uint32_t addr, const uint8_t *data, size_t len)
{
    (void)user;
    if (stream.n_ranges) {
        stream_range *last = &stream.ranges[stream.n_ranges - 1];
        if (last->file == stream.indexing_file && (uint64_t)last->addr + last->len == addr) {
            last->len += (uint32_t)len;
            return pf_memmap_dest_sink(stream.index_dest, addr, data, len);
        }
    }
    if (stream.n_ranges == PF_UPDATER_SEGMENTS)
        return pf_diag_set(stream.diag, PF_ERR_NOMEM, "image has more than %u separate address ranges "
                           "(PF_UPDATER_SEGMENTS)", (unsigned)PF_UPDATER_SEGMENTS);
    stream.ranges[stream.n_ranges++] = (stream_range){ addr, (uint32_t)len, stream.indexing_file };
    return pf_memmap_dest_sink(stream.index_dest, addr, data, len);
}

/* Bytes of [addr, addr+len) inside [lo, lo+n). */
static size_t overlap(uint32_t addr, size_t len, uint32_t lo, size_t n, uint32_t *from)
{
    uint64_t a = addr > lo ? addr : lo;
    uint64_t e1 = (uint64_t)addr + len, e2 = (uint64_t)lo + n;
    uint64_t e = e1 < e2 ? e1 : e2;
    *from = (uint32_t)a;
    return e > a ? (size_t)(e - a) : 0;
}

static void stream_take(uint32_t addr, const uint8_t *data, size_t len)
{
    uint32_t at;
    size_t n = overlap(stream.req_addr, stream.req_len, addr, len, &at);
    if (n) {
        memcpy(stream.req_out + (at - stream.req_addr), data + (at - addr), n);
        stream.filled += n;
    }
}

/* Second pass: the records the job's read wants go to it; what a record
 * holds past the read is kept for the next one. */
static int stream_sink(void *user, uint32_t addr, const uint8_t *data, size_t len)
{
    (void)user;
    stream_take(addr, data, len);
    uint64_t req_end = (uint64_t)stream.req_addr + stream.req_len, end = (uint64_t)addr + len;
    if (end > req_end) {
        uint32_t from = addr > req_end ? addr : (uint32_t)req_end;
        size_t n = (size_t)(end - from);
        stream.carry_addr = from;
        stream.carry_len = n < sizeof stream.carry ? n : sizeof stream.carry;
        memcpy(stream.carry, data + (from - addr), stream.carry_len);
    }
    return PF_OK;
}

static void stream_close(void)
{
    if (stream.file >= 0)
        board->storage->close(board->storage->ctx);
    stream.file = -1;
}

static int stream_open(int file)
{
    stream_close();
    uint32_t addr;
    int has_addr;
    int r = split_spec(stream.job->images[file], &addr, &has_addr, stream.diag);
    if (r < 0)
        return r;
    const pf_storage *st = board->storage;
    r = st->open(st->ctx, path, stream.diag);
    if (r < 0)
        return r;
    stream.file = file;
    stream.pos = stream.len = 0;
    stream.eof = 0;
    stream.carry_len = 0;
    switch (stream.fmt[file]) {
    case PF_IMAGE_IHEX: pf_ihex_init(&parser.ihex, stream_sink, NULL, stream.diag); break;
    case PF_IMAGE_SREC: pf_srec_init(&parser.srec, stream_sink, NULL, stream.diag); break;
    default: pf_bin_init(&parser.bin, addr, stream_sink, NULL, stream.diag); break;
    }
    return PF_OK;
}

/* Feeds the reader until `expect` bytes of the read were found or the file
 * ends (returns 1 then). */
static int stream_feed(size_t expect)
{
    const pf_storage *st = board->storage;
    pf_image_format fmt = stream.fmt[stream.file];
    while (stream.filled < expect) {
        int r;
        if (stream.pos == stream.len) {
            if (stream.eof)
                return 1;
            int got = st->read(st->ctx, chunk, sizeof chunk);
            if (got < 0)
                return pf_diag_set(stream.diag, PF_ERR_IO, "%s: read error", stream.job->images[stream.file]);
            if (got == 0) {
                stream.eof = 1;
                r = fmt == PF_IMAGE_IHEX   ? pf_ihex_finish(&parser.ihex)
                    : fmt == PF_IMAGE_SREC ? pf_srec_finish(&parser.srec)
                                           : pf_bin_finish(&parser.bin);
                if (r < 0)
                    return r;
                continue;
            }
            stream.pos = 0;
            stream.len = (size_t)got;
        }
        /* one line (text) or STREAM_PIECE bytes at most, so that a piece
         * ends at most one record past the read */
        size_t n = stream.len - stream.pos;
        if (n > STREAM_PIECE)
            n = STREAM_PIECE;
        if (fmt == PF_IMAGE_IHEX || fmt == PF_IMAGE_SREC) {
            const uint8_t *nl = memchr(chunk + stream.pos, '\n', n);
            if (nl)
                n = (size_t)(nl - (chunk + stream.pos)) + 1;
        }
        const uint8_t *p = chunk + stream.pos;
        stream.pos += n;
        r = fmt == PF_IMAGE_IHEX   ? pf_ihex_feed(&parser.ihex, p, n)
            : fmt == PF_IMAGE_SREC ? pf_srec_feed(&parser.srec, p, n)
                                   : pf_bin_feed(&parser.bin, p, n);
        if (r < 0)
            return r;
    }
    return 0;
}

/* pf_memmap_source.read: the bytes of [addr, addr+len) from each file that
 * holds some of them. */
static int stream_read(void *user, uint32_t addr, uint8_t *out, size_t len, size_t expect_all)
{
    (void)user;
    (void)expect_all;
    for (int f = 0; f < stream.job->n_images; f++) {
        size_t expect = 0;
        uint32_t at;
        for (unsigned i = 0; i < stream.n_ranges; i++)
            if (stream.ranges[i].file == f)
                expect += overlap(addr, len, stream.ranges[i].addr, stream.ranges[i].len, &at);
        if (!expect)
            continue;
        stream.req_addr = addr;
        stream.req_out = out;
        stream.req_len = len;
        stream.filled = 0;
        int r = PF_OK;
        if (stream.file != f)
            r = stream_open(f);
        else if (stream.carry_len)
            stream_take(stream.carry_addr, stream.carry, stream.carry_len);
        for (int pass = 0; r == PF_OK; pass++) {
            r = stream_feed(expect);
            if (r <= 0)
                break;
            /* the file ended first: the job went back; read it from the start */
            if (pass == 1) {
                r = pf_diag_set(stream.diag, PF_ERR_IO, "%s: changed on the card (data at 0x%08lx missing)",
                                stream.job->images[f], (unsigned long)addr);
                break;
            }
            stream.filled = 0;
            r = stream_open(f);
        }
        if (r < 0) {
            pf_diag_op(stream.diag, "image");
            stream_close();
            return r;
        }
    }
    return PF_OK;
}

static pf_memmap_source stream_source = { stream_read, NULL, 0 };
#endif

static int load_image(int index, const char *spec, pf_memmap *map, pf_diag *d)
{
    uint32_t addr;
    int has_addr;
    int r = split_spec(spec, &addr, &has_addr, d);
    if (r < 0)
        return r;
    const pf_storage *st = board->storage;
    r = st->open(st->ctx, path, d);
    if (r < 0)
        return r;
    long size = st->size(st->ctx);
    int got = st->read(st->ctx, chunk, sizeof chunk);
    if (size < 0 || got < 0) {
        st->close(st->ctx);
        return pf_diag_set(d, PF_ERR_IO, "%s: read error", path);
    }
    if (got == 0) {
        st->close(st->ctx);
        return pf_diag_set(d, PF_ERR_FORMAT, "%s: empty file", path);
    }
    pf_image_format fmt = pf_image_detect(chunk, (size_t)got, path);
    size_t before = map->count;
    uint32_t bytes_before = pf_memmap_bytes(map);
    pf_memmap_dest dest = { map, d };
    pf_image_sink sink = pf_memmap_dest_sink;
    void *sink_user = &dest;
#if PF_UPDATER_STREAM
    stream.fmt[index] = fmt;
    stream.indexing_file = (uint8_t)index;
    stream.index_dest = &dest;
    sink = stream_index_sink;
#else
    (void)index;
#endif
    switch (fmt) {
    case PF_IMAGE_IHEX: pf_ihex_init(&parser.ihex, sink, sink_user, d); break;
    case PF_IMAGE_SREC: pf_srec_init(&parser.srec, sink, sink_user, d); break;
    case PF_IMAGE_ELF:
        st->close(st->ctx);
        return pf_diag_set(d, PF_ERR_FORMAT,
                           "%s: ELF is read on the host only; convert it (objcopy -O ihex) for the updater", path);
    default: /* raw binary, and ESP / MCUboot images loaded as raw bytes */
        if (!has_addr) {
            st->close(st->ctx);
            return pf_diag_set(d, PF_ERR_ARG, "%s: %s image needs a load address: %s@0x...", path,
                               pf_image_format_name(fmt), path);
        }
        pf_bin_init(&parser.bin, addr, sink, sink_user, d);
        break;
    }
    if ((fmt == PF_IMAGE_IHEX || fmt == PF_IMAGE_SREC) && has_addr) {
        st->close(st->ctx);
        return pf_diag_set(d, PF_ERR_ARG, "%s: a %s file carries its own addresses; drop @0x%lx", path,
                           pf_image_format_name(fmt), (unsigned long)addr);
    }
    for (;;) {
        if (fmt == PF_IMAGE_IHEX)
            r = pf_ihex_feed(&parser.ihex, chunk, (size_t)got);
        else if (fmt == PF_IMAGE_SREC)
            r = pf_srec_feed(&parser.srec, chunk, (size_t)got);
        else
            r = pf_bin_feed(&parser.bin, chunk, (size_t)got);
        if (r < 0)
            break;
        got = st->read(st->ctx, chunk, sizeof chunk);
        if (got < 0) {
            r = pf_diag_set(d, PF_ERR_IO, "read error");
            break;
        }
        if (got == 0) {
            r = fmt == PF_IMAGE_IHEX   ? pf_ihex_finish(&parser.ihex)
                : fmt == PF_IMAGE_SREC ? pf_srec_finish(&parser.srec)
                                       : pf_bin_finish(&parser.bin);
            break;
        }
    }
    st->close(st->ctx);
    if (r < 0) {
#if !PF_UPDATER_STREAM
        if (r == PF_ERR_NOMEM)
            pf_format(d->text, sizeof d->text, "image larger than the updater's memory (%lu bytes in %u segments)",
                      (unsigned long)PF_UPDATER_ARENA, (unsigned)PF_UPDATER_SEGMENTS);
#endif
        pf_diag_prefix(d, path);
        return r;
    }
    say("image: %s (%s, %ld bytes): %lu bytes of data in %u segment(s)", path, pf_image_format_name(fmt), size,
        (unsigned long)(pf_memmap_bytes(map) - bytes_before), (unsigned)(map->count - before));
    return PF_OK;
}

/* ---- the job ---------------------------------------------------------------------------- */
static int run_job(const job_opts *o, pf_diag *d, int *status)
{
    pf_memmap map;
#if PF_UPDATER_STREAM
    memset(&stream, 0, sizeof stream);
    stream.job = o;
    stream.diag = d;
    stream.file = -1;
    pf_memmap_init_source(&map, segments, PF_UPDATER_SEGMENTS, &stream_source);
#else
    pf_memmap_init(&map, segments, PF_UPDATER_SEGMENTS, arena, sizeof arena);
#endif
    int r = PF_OK;
    for (int i = 0; i < o->n_images && r == PF_OK; i++)
        r = load_image(i, o->images[i], &map, d);
    if (r == PF_OK)
        r = pf_memmap_finish(&map, d);
    if (r < 0) {
        *status = r == PF_ERR_ARG ? PF_EXIT_USAGE : PF_EXIT_IMAGE;
        return r;
    }
    uint32_t lo, hi;
    pf_memmap_bounds(&map, &lo, &hi);
    say("image: %lu bytes in %u segment(s) at 0x%08lx-0x%08lx", (unsigned long)pf_memmap_bytes(&map),
        (unsigned)map.count, (unsigned long)lo, (unsigned long)(hi - 1));

    if (!pf_target_find(o->target)) {
        char names[96] = "";
        size_t n = 0;
        for (size_t i = 0; pf_target_drivers[i]; i++)
            n += pf_format(names + n, sizeof names - n, " %s", pf_target_drivers[i]->name);
        *status = PF_EXIT_USAGE;
        return pf_diag_set(d, PF_ERR_ARG, "unknown target '%s' (built in:%s)", o->target, n ? names : " none");
    }
    size_t need = pf_session_state_size(o->target);
    if (need > sizeof driver_ctx) {
        *status = PF_EXIT_FAIL;
        return pf_diag_set(d, PF_ERR_NOMEM, "driver %s needs %lu bytes of state, the updater has %lu (PF_UPDATER_CTX)", o->target,
                           (unsigned long)need, (unsigned long)sizeof driver_ctx);
    }
    pf_session_config c = PF_SESSION_CONFIG_DEFAULT();
    c.target = o->target;
    c.target_cfg.port = board->link;
    c.target_cfg.diag = d;
    c.target_cfg.baud = o->connect_baud;
    c.target_cfg.fast_baud = o->baud;
    c.target_cfg.chip = o->chip;
    c.target_cfg.reset = o->reset;
    c.target_cfg.verbose = o->verbose;
    c.options = o->options;
    c.state = driver_ctx;
    c.state_size = sizeof driver_ctx;
    c.command = PF_CMD_FLASH;
    static pf_session session;
    pf_session *ses = &session;
    uint32_t t0 = now();
    r = pf_session_open(ses, &c);
    if (r == PF_OK) {
        say("connecting to %s on UART0...", o->target);
        r = pf_session_connect(ses);
    }
    if (r == PF_OK)
        r = pf_session_check_image(ses, &map);
    if (r < 0) {
        pf_session_close(ses);
        *status = pf_exit_status(r);
        return r;
    }
    pf_target *t = &ses->target;
    say("chip: %s (id 0x%lx), bootloader: %s, flash: %lu KiB at 0x%08lx", t->info.chip, (unsigned long)t->info.chip_id,
        t->info.bootloader[0] ? t->info.bootloader : "?", (unsigned long)(t->info.geom.flash_size / 1024u),
        (unsigned long)t->info.geom.flash_start);

    progress prog = { PF_PHASE_CHECK, -1, now() };
    pf_job_config jc = PF_JOB_CONFIG_DEFAULT();
    jc.erase = o->erase_all ? PF_ERASE_ALL : PF_ERASE_TOUCHED;
    jc.skip_unchanged = o->skip;
    jc.run_after = o->run && (t->info.caps & PF_CAP_RUN);
    jc.progress = on_progress;
    jc.progress_user = &prog;
    jc.buf = work;
    jc.buf_size = sizeof work;
    jc.diag = d;
    jc.clock = board->link;
    pf_job_result res;
    memset(&res, 0, sizeof res);
    r = pf_job_flash(t, &map, &jc, &res);
#if PF_UPDATER_STREAM
    stream_close();
#endif
    uint32_t ms = now() - t0;
    pf_target_stats ts;
    pf_session_stats(ses, &ts);
    pf_session_close(ses);
    char s[16];
    if (r < 0) {
        *status = pf_exit_status(r);
        return r;
    }
    /* what the driver kept unchanged or resumed was not written (as the CLI counts it) */
    uint32_t kept = ts.unchanged_bytes + ts.resumed_from;
    if (kept > res.written_bytes)
        kept = res.written_bytes;
    res.written_bytes -= kept;
    res.skipped_bytes += kept;
    say("wrote %lu bytes%s in %s s, %s (%s)%s", (unsigned long)res.written_bytes,
        res.skipped_bytes ? " (some unchanged, skipped)" : "", secs(ms, s, sizeof s),
        res.verified ? "verified" : "NOT verified", res.verify_method ? res.verify_method : "none",
        jc.run_after ? "; application started" : "");
    say("result: written=%lu skipped=%lu image=%lu verified=%d method=%s ms=%lu", (unsigned long)res.written_bytes,
        (unsigned long)res.skipped_bytes, (unsigned long)res.image_bytes, res.verified,
        res.verify_method ? res.verify_method : "none", (unsigned long)ms);
    if (!res.verified) {
        *status = PF_EXIT_VERIFY;
        return pf_diag_set(d, PF_ERR_VERIFY, "the %s target can neither hash nor read back its flash: not verified",
                           o->target);
    }
    *status = PF_EXIT_OK;
    return PF_OK;
}

/* "link-test --count N --timeout MS": a check of the board's link for the
 * port tests (tests/firmware/test_port.sh), no target involved. Echoes N
 * bytes, each XOR 0x5A (so a wire that merely loops back is caught), then
 * reads once more with the timeout and reports how long the board's clock
 * waited: a port whose deadline expires early (a clock that runs fast) or
 * that loses bytes shows up here. */
static int link_test(char *line, pf_diag *d)
{
    char *argv[8];
    int argc = split(line, argv, 8);
    int i = argc > 0 && strcmp(argv[0], "link-test") ? 1 : 0;
    uint32_t count = 0, timeout = 0;
    for (i++; i + 1 < argc; i += 2) {
        if (!strcmp(argv[i], "--count") && !parse_u32(argv[i + 1], &count))
            continue;
        if (!strcmp(argv[i], "--timeout") && !parse_u32(argv[i + 1], &timeout))
            continue;
        return pf_diag_set(d, PF_ERR_ARG, "link-test takes --count N --timeout MS");
    }
    const pf_port *p = board->link;
    pf_port_set_line(p, 115200, PF_FRAME_8N1);
    say("link-test: ready for %lu bytes", (unsigned long)count);
    uint32_t done = 0, t0 = now();
    while (done < count) {
        uint8_t buf[64];
        size_t want = count - done < sizeof buf ? count - done : sizeof buf;
        int n = p->read(p->ctx, buf, want, timeout);
        if (n < 0)
            return pf_diag_set(d, n, "link-test: read failed after %lu bytes", (unsigned long)done);
        if (n == 0)
            return pf_diag_set(d, PF_ERR_TIMEOUT, "link-test: nothing for %lu ms after %lu bytes",
                               (unsigned long)timeout, (unsigned long)done);
        for (int k = 0; k < n; k++)
            buf[k] ^= 0x5A;
        int w = pf_port_write_all(p, buf, (size_t)n);
        if (w < 0)
            return pf_diag_set(d, w, "link-test: write failed");
        done += (uint32_t)n;
    }
    uint32_t t1 = now();
    uint32_t r1 = board->reference_ms ? board->reference_ms() : 0;
    uint8_t extra;
    int n = p->read(p->ctx, &extra, 1, timeout);
    uint32_t waited = now() - t1;
    uint32_t ref = board->reference_ms ? board->reference_ms() - r1 : 0;
    say("link-test: echoed=%lu in %lu ms; idle read returned %d after %lu ms (timeout %lu ms); reference clock %s%lu ms",
        (unsigned long)done, (unsigned long)(t1 - t0), n, (unsigned long)waited, (unsigned long)timeout,
        board->reference_ms ? "" : "none ", (unsigned long)ref);
    return n == 0 ? PF_OK : pf_diag_set(d, PF_ERR_PROTOCOL, "link-test: unexpected extra byte 0x%02x", extra);
}

int pf_updater_run(const pf_board *b)
{
    board = b;
    static pf_diag diag;
    pf_diag_clear(&diag);
    int n = b->job(jobline, sizeof jobline);
    say_long("peerflash updater on %s: %s", b->name, n > 0 ? jobline : "(no job)");
    job_opts o;
    int status = PF_EXIT_USAGE;
    if (n > 0 && strstr(jobline, "link-test")) {
        int r = link_test(jobline, &diag);
        if (r < 0)
            say_long("updater: error: %s", diag.text);
        return r < 0 ? pf_exit_status(r) : PF_EXIT_OK;
    }
    int r = n < 0 ? pf_diag_set(&diag, PF_ERR_ARG, "no job (QEMU: -append \"flash --target ... --image ...\")")
                  : parse_job(jobline, &o, &diag);
    if (r == PF_OK)
        r = run_job(&o, &diag, &status);
    if (r < 0)
        say_long("updater: error: %s (exit %d)", diag.text[0] ? diag.text : pf_strerror(r), status);
    else
        say("updater: ok (exit 0)");
    return status;
}
