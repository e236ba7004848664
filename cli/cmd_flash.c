/* flash, verify, read, erase, info: one option parser and one connect path
 * for every target driver; the work itself is the library's flash job. */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "agent_delta.h"
#include "cli.h"
#include "peerflash/pf_esp_image.h"
#include "peerflash/pf_image_file.h"
#include "peerflash/pf_posix.h"
#include "peerflash/pf_agent_host.h"
#include "peerflash/pf_avr.h"
#include "peerflash/pf_stm32.h"

typedef struct opts {
    const char *cmd;
    const char *target;
    const char *port;
    const char *chip;
    const char *reset;
    uint32_t baud, connect_baud;
    int verify, skip, run, erase_all, json, quiet, verbose, all;
    int unprotect_read, unprotect_write;
    int no_compress, read_compare;
    const char *delta_from; /* agent: patch against this image (--delta-from) */
    int no_delta;           /* agent: never a patch against a cached image (--no-delta) */
} opts;

static void usage(const char *cmd, FILE *f)
{
    if (!strcmp(cmd, "flash"))
        fprintf(f, "usage: peerflash flash --target T --port PORT [options] IMAGE[@ADDR] ...\n\n"
                   "Writes the images, verifies them (by digest where the target can hash its flash,\n"
                   "else by reading back), then starts the application. Nothing is written unless every\n"
                   "image parses and fits the chip's flash outside its bootloader.\n");
    else if (!strcmp(cmd, "verify"))
        fprintf(f, "usage: peerflash verify --target T --port PORT [options] IMAGE[@ADDR] ...\n\n"
                   "Compares the target's flash with the images; exit status 6 when they differ.\n");
    else if (!strcmp(cmd, "read"))
        fprintf(f, "usage: peerflash read --target T --port PORT [options] ADDR LEN OUTFILE\n\n"
                   "Reads LEN bytes of flash from ADDR (decimal or 0x hex; LEN may end in K or M) to OUTFILE.\n");
    else if (!strcmp(cmd, "erase"))
        fprintf(f, "usage: peerflash erase --target T --port PORT [options] (ADDR LEN | --all)\n\n"
                   "Erases the erase units covering ADDR..ADDR+LEN, or the whole chip.\n");
    else
        fprintf(f, "usage: peerflash info --target T --port PORT [options]\n\n"
                   "Connects and prints the chip, its flash geometry and the bootloader.\n");
    fprintf(f, "\noptions:\n"
               "  --target T         protocol:");
    for (size_t i = 0; pf_target_drivers[i]; i++)
        fprintf(f, " %s", pf_target_drivers[i]->name);
    if (!pf_target_drivers[0])
        fprintf(f, " (none built)");
    fprintf(f, "\n"
               "  --port PORT        serial device or pty path, tcp://HOST:PORT (a TCP serial bridge), or\n"
               "                     tcp-listen://PORT (wait on 127.0.0.1 for a bridge that connects to us)\n"
               "  --baud N           line rate for the transfer (ESP: switched to after sync)\n"
               "  --connect-baud N   rate to sync at, where it differs (default: the protocol's)\n"
               "  --chip NAME        refuse any other chip (e.g. ATmega328P, ESP32, STM32F103xB)\n"
               "  --reset MODE       how to enter the bootloader: auto (DTR/RTS circuit), none, or a\n"
               "                     driver-specific sequence\n"
               "  --unprotect-read   stm32: remove readout protection first; THE CHIP ERASES ALL ITS FLASH\n"
               "  --unprotect-write  stm32: remove write protection first (flash content stays)\n");
    if (!strcmp(cmd, "flash"))
        fprintf(f, "  --no-verify        skip the verify step (not recommended)\n"
                   "  --erase touched|all  erase only what the image touches (default) or the whole chip\n"
                   "  --no-skip          rewrite erase units whose digest already matches\n"
                   "  --no-run           stay in the bootloader afterwards\n"
                   "  --no-compress      esp, agent: send the image uncompressed\n"
                   "  --delta-from OLD   agent: send a patch against OLD (the image the device runs)\n"
                   "  --no-delta         agent: send the image whole, never a patch against a cached one\n"
                   "  --read-compare     avr: read each page first and skip those that already hold the\n"
                   "                     image (pays off when most of the flash is unchanged)\n");
    fprintf(f, "  --json             print one JSON result object on stdout\n"
               "  -q, --quiet        no progress output\n"
               "  -v, --verbose      protocol trace on stderr (repeat for more)\n"
               "  -h, --help         this help\n"
               "\nexit status: 0 ok, 2 usage, 3 image, 4 link/no answer, 5 target refused, 6 verify mismatch\n");
}

static int parse_u32(const char *s, uint32_t *out)
{
    char *end = NULL;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 0);
    if (end && (*end == 'k' || *end == 'K')) {
        v *= 1024;
        end++;
    } else if (end && (*end == 'm' || *end == 'M')) {
        v *= 1024 * 1024;
        end++;
    }
    if (errno || !end || end == s || *end || v > 0xFFFFFFFFull)
        return -1;
    *out = (uint32_t)v;
    return 0;
}

typedef struct session {
    pf_posix_link link;
    pf_port port;
    pf_target target;
    void *state;
    pf_diag diag;
    int connected;
} session;

static void close_session(session *s)
{
    if (s->target.ops && s->target.ops->close && s->state)
        s->target.ops->close(s->state);
    free(s->state);
    s->state = NULL;
    pf_posix_close(&s->link);
}

/* The few options that only some drivers have, set between open and connect. */
static int apply_driver_options(const opts *o, const pf_target_ops *ops, void *state, pf_diag *diag)
{
    if (!strcmp(ops->name, "agent") && !strcmp(o->cmd, "flash")) {
        int r = pf_cli_agent_delta_setup(state, o->delta_from, !o->no_delta, o->quiet, diag);
        if (r < 0)
            return r;
    }
    if (o->no_compress) {
        if (ops == &pf_target_esp) {
            pf_esp_options eo = PF_ESP_OPTIONS_DEFAULT();
            eo.compress = 0;
            return pf_esp_set_options(state, &eo);
        }
        if (!strcmp(ops->name, "agent")) {
            pf_agent_host_options ao = PF_AGENT_HOST_OPTIONS_DEFAULT();
            ao.deflate = 0;
            return pf_agent_host_set_options(state, &ao);
        }
        return pf_diag_set(diag, PF_ERR_ARG, "--no-compress is for --target esp and agent");
    }
    if (o->read_compare && !strcmp(ops->name, "avr"))
        pf_avr_set_read_compare(state, 1);
    return PF_OK;
}

static int open_session(session *s, const opts *o)
{
    memset(s, 0, sizeof *s);
    s->link.fd = s->link.listen_fd = -1;
    const pf_target_ops *ops = pf_target_find(o->target);
    if (!ops) {
        pf_diag_set(&s->diag, PF_ERR_ARG, "unknown target '%s' (see peerflash %s --help)", o->target, o->cmd);
        return PF_ERR_ARG;
    }
    /* A host command never creates a pty: a port that does not exist is a
     * missing board, not an endpoint to make. */
    struct stat st;
    if (strncmp(o->port, "pty:", 4) == 0)
        return pf_diag_set(&s->diag, PF_ERR_ARG, "--port takes an existing port; pty:PATH (a new pty) is for "
                                                 "`peerflash sim` and `peerflash wire`");
    if (strncmp(o->port, "tcp://", 6) != 0 && strncmp(o->port, "tcp-listen://", 13) != 0 && stat(o->port, &st) != 0)
        return pf_diag_set(&s->diag, PF_ERR_IO, "cannot open %s: %s (is the board plugged in? `peerflash ports` "
                                                "lists serial ports)", o->port, strerror(errno));
    int r = pf_posix_open(&s->link, o->port, &s->diag);
    if (r < 0)
        return r;
    s->link.log_level = o->verbose;
    pf_posix_port(&s->link, &s->port);
    s->state = calloc(1, ops->ctx_size ? ops->ctx_size : 1);
    if (!s->state)
        return pf_diag_set(&s->diag, PF_ERR_NOMEM, "out of memory");
    s->target.ops = ops;
    s->target.self = s->state;
    pf_target_config cfg = PF_TARGET_CONFIG_DEFAULT();
    cfg.port = &s->port;
    cfg.diag = &s->diag;
    cfg.baud = o->connect_baud;
    cfg.fast_baud = o->baud;
    cfg.chip = o->chip;
    cfg.reset = o->reset;
    cfg.verbose = o->verbose;
    r = ops->open(s->state, &cfg);
    if (r < 0)
        return r;
    r = apply_driver_options(o, ops, s->state, &s->diag);
    if (r < 0)
        return r;
    if (!o->quiet)
        fprintf(stderr, "connecting to %s on %s...\n", ops->name, o->port);
    r = ops->connect(s->state, &s->target.info);
    if (r < 0)
        return r;
    s->connected = 1;
    if (o->unprotect_read || o->unprotect_write) { /* stm32 only: checked with the options */
        if (o->unprotect_read) {
            if (!o->quiet)
                fprintf(stderr, "removing readout protection: the chip erases its whole flash...\n");
            r = pf_stm32_readout_unprotect(s->state);
            if (r < 0)
                return r;
        }
        if (o->unprotect_write) {
            if (!o->quiet)
                fprintf(stderr, "removing write protection...\n");
            r = pf_stm32_write_unprotect(s->state);
            if (r < 0)
                return r;
        }
    }
    if (!o->quiet && strcmp(o->cmd, "info") != 0) { /* info prints all of it on stdout */
        const pf_target_info *in = &s->target.info;
        fprintf(stderr, "chip: %s (id 0x%lx), bootloader: %s, flash: %lu KiB at 0x%08lx\n", in->chip,
                (unsigned long)in->chip_id, in->bootloader[0] ? in->bootloader : "?",
                (unsigned long)(in->geom.flash_size / 1024), (unsigned long)in->geom.flash_start);
    }
    return PF_OK;
}

/* exit_code: the status the process returns, so the object and $? agree. */
static void json_result(const opts *o, const session *s, int err, int exit_code, const char *errtext,
                        const pf_job_result *res, double secs)
{
    if (!o->json)
        return;
    printf("{\"command\":");
    pf_json_string(stdout, o->cmd);
    printf(",\"ok\":%s,\"exit_code\":%d,\"target\":", err ? "false" : "true", exit_code);
    pf_json_string(stdout, o->target);
    if (s && s->connected) {
        printf(",\"chip\":");
        pf_json_string(stdout, s->target.info.chip);
        printf(",\"chip_id\":%lu,\"bootloader\":", (unsigned long)s->target.info.chip_id);
        pf_json_string(stdout, s->target.info.bootloader);
        printf(",\"flash_start\":%lu,\"flash_size\":%lu", (unsigned long)s->target.info.geom.flash_start,
               (unsigned long)s->target.info.geom.flash_size);
    }
    if (res)
        printf(",\"image_bytes\":%lu,\"written_bytes\":%lu,\"skipped_bytes\":%lu,\"erased_bytes\":%lu,"
               "\"runs\":%lu,\"verified\":%s,\"verify_method\":\"%s\"",
               (unsigned long)res->image_bytes, (unsigned long)res->written_bytes, (unsigned long)res->skipped_bytes,
               (unsigned long)res->erased_bytes, (unsigned long)res->runs, res->verified ? "true" : "false",
               res->verify_method ? res->verify_method : "none");
    printf(",\"seconds\":%.3f,\"error\":", secs);
    if (err)
        pf_json_string(stdout, errtext && *errtext ? errtext : pf_strerror(err));
    else
        printf("null");
    printf("}\n");
}

/* One place that turns a failure into a message with a next step. */
static int fail(const opts *o, session *s, int err, const char *text, double secs)
{
    const char *hint = "";
    /* Drivers that know their board give a specific hint; add the generic
     * one only where the message has none. */
    int has_hint = text && (strstr(text, "wiring") || strstr(text, "check ") || strstr(text, "press"));
    if (has_hint)
        hint = "";
    else if (err == PF_ERR_NO_SYNC || err == PF_ERR_TIMEOUT)
        hint = "\n  check the wiring (TX<->RX), the baud rate (--baud), and that the chip is in its bootloader";
    else if (err == PF_ERR_VERIFY)
        hint = "\n  the flash does not hold the image: run the command again; if it persists the link is "
               "corrupting data or the flash is worn";
    else if (err == PF_ERR_CLOSED)
        hint = "\n  the link went away: check the cable or bridge, then run the same command again";
    pf_cli_error("%s%s", text && *text ? text : pf_strerror(err), hint);
    json_result(o, s, err, pf_cli_exit_code(err), text, NULL, secs);
    return pf_cli_exit_code(err);
}

static double since(uint64_t t0)
{
    return (double)(pf_posix_now_us() - t0) / 1e6;
}

/* Image problems are found before the port is opened, so a bad image never
 * touches the target. A wrong @ADDR is a usage error; the rest are image errors. */
static int image_exit(int err)
{
    return err == PF_ERR_ARG ? PF_EXIT_USAGE : PF_EXIT_IMAGE;
}

static int do_flash_or_verify(const opts *o, int nimg, char **imgs)
{
    uint64_t t0 = pf_posix_now_us();
    pf_image_set images;
    pf_image_set_init(&images);
    pf_diag d = {{0}};
    int r = PF_OK;
    for (int i = 0; i < nimg && r == PF_OK; i++)
        r = pf_image_set_add(&images, imgs[i], &d);
    if (r == PF_OK)
        r = pf_image_set_finish(&images, &d);
    if (r < 0) {
        pf_cli_error("%s", d.text[0] ? d.text : pf_strerror(r));
        json_result(o, NULL, r, image_exit(r), d.text, NULL, since(t0));
        pf_image_set_free(&images);
        return image_exit(r);
    }
    uint32_t lo, hi;
    pf_memmap_bounds(&images.map, &lo, &hi);
    if (!o->quiet)
        fprintf(stderr, "image: %lu bytes in %zu segment(s) at 0x%08lx-0x%08lx\n",
                (unsigned long)pf_memmap_bytes(&images.map), images.map.count, (unsigned long)lo,
                (unsigned long)(hi - 1));
    session s;
    r = open_session(&s, o);
    if (r < 0) {
        r = fail(o, &s, r, s.diag.text, since(t0));
        close_session(&s);
        pf_image_set_free(&images);
        return r;
    }
    /* ESP app images: checked for the chip the ROM identified (issue 4) */
    if (s.target.ops == &pf_target_esp &&
        (r = pf_esp_check_image_set(&images, pf_esp_connected_chip(s.state), &s.diag)) < 0) {
        r = fail(o, &s, r, s.diag.text, since(t0));
        close_session(&s);
        pf_image_set_free(&images);
        return r;
    }
    pf_cli_progress prog;
    pf_cli_progress_init(&prog, o->quiet);
    size_t bufsize = 2u * (s.target.info.geom.write_max ? s.target.info.geom.write_max : 4096u);
    if (bufsize < 8192)
        bufsize = 8192;
    uint8_t *buf = malloc(bufsize);
    pf_job_config cfg = PF_JOB_CONFIG_DEFAULT();
    cfg.erase = o->erase_all ? PF_ERASE_ALL : PF_ERASE_TOUCHED;
    cfg.verify = o->verify;
    cfg.skip_unchanged = o->skip;
    cfg.run_after = o->run && (s.target.info.caps & PF_CAP_RUN);
    cfg.progress = pf_cli_progress_cb;
    cfg.progress_user = &prog;
    cfg.buf = buf;
    cfg.buf_size = bufsize;
    cfg.diag = &s.diag;
    cfg.clock = &s.port;
    pf_job_result res;
    pf_diag_clear(&s.diag);
    int is_verify = !strcmp(o->cmd, "verify");
    r = buf ? (is_verify ? pf_job_verify(&s.target, &images.map, &cfg, &res)
                         : pf_job_flash(&s.target, &images.map, &cfg, &res))
            : PF_ERR_NOMEM;
    pf_cli_progress_end(&prog);
    double secs = since(t0);
    if (r < 0) {
        r = fail(o, &s, r, s.diag.text, secs);
    } else {
        if (!o->quiet) {
            if (is_verify)
                fprintf(stderr, "verified %lu bytes (%s): flash matches the image\n",
                        (unsigned long)res.image_bytes, res.verify_method);
            else {
                fprintf(stderr, "wrote %lu bytes", (unsigned long)res.written_bytes);
                if (res.skipped_bytes)
                    fprintf(stderr, ", skipped %lu unchanged", (unsigned long)res.skipped_bytes);
                fprintf(stderr, " in %.2f s", secs);
                if (res.verified)
                    fprintf(stderr, ", verified (%s)", res.verify_method);
                else
                    fprintf(stderr, ", NOT verified (%s)",
                            o->verify ? "this target can neither read nor hash its flash" : "--no-verify");
                fprintf(stderr, "%s\n", cfg.run_after ? "; application started" : "");
            }
        }
        json_result(o, &s, PF_OK, PF_EXIT_OK, NULL, &res, secs);
        r = PF_EXIT_OK;
    }
    free(buf);
    close_session(&s);
    pf_image_set_free(&images);
    return r;
}

static int do_read(const opts *o, int argc, char **argv)
{
    uint32_t addr, len;
    if (argc != 3 || parse_u32(argv[0], &addr) || parse_u32(argv[1], &len) || len == 0) {
        pf_cli_error("read takes ADDR LEN OUTFILE (e.g. 0x0 32K flash.bin)");
        return PF_EXIT_USAGE;
    }
    uint64_t t0 = pf_posix_now_us();
    session s;
    int r = open_session(&s, o);
    uint8_t *data = NULL;
    if (r == PF_OK && (!(s.target.info.caps & PF_CAP_READ) || !s.target.ops->read))
        r = pf_diag_set(&s.diag, PF_ERR_UNSUPPORTED, "the %s target cannot read its flash", o->target);
    if (r == PF_OK && ((uint64_t)addr + len > (uint64_t)s.target.info.geom.flash_start + s.target.info.geom.flash_size ||
                       addr < s.target.info.geom.flash_start))
        r = pf_diag_set(&s.diag, PF_ERR_RANGE, "0x%08lx+%lu is outside flash (0x%08lx, %lu bytes)",
                        (unsigned long)addr, (unsigned long)len, (unsigned long)s.target.info.geom.flash_start,
                        (unsigned long)s.target.info.geom.flash_size);
    if (r == PF_OK && !(data = malloc(len)))
        r = PF_ERR_NOMEM;
    pf_cli_progress prog;
    pf_cli_progress_init(&prog, o->quiet);
    uint32_t chunk = s.target.info.geom.write_max ? s.target.info.geom.write_max : 256;
    for (uint32_t done = 0; r == PF_OK && done < len;) {
        uint32_t n = len - done < chunk ? len - done : chunk;
        r = s.target.ops->read(s.state, addr + done, data + done, n);
        if (r < 0)
            break;
        r = PF_OK;
        done += n;
        pf_cli_progress_cb(&prog, PF_PHASE_VERIFY, done, len);
    }
    pf_cli_progress_end(&prog);
    if (r == PF_OK) {
        FILE *f = fopen(argv[2], "wb");
        if (!f || fwrite(data, 1, len, f) != len || fclose(f) != 0)
            r = pf_diag_set(&s.diag, PF_ERR_IO, "cannot write %s: %s", argv[2], strerror(errno));
    }
    free(data);
    double secs = since(t0);
    if (r < 0) {
        r = fail(o, &s, r, s.diag.text, secs);
    } else {
        if (!o->quiet)
            fprintf(stderr, "read %lu bytes from 0x%08lx to %s in %.2f s\n", (unsigned long)len, (unsigned long)addr,
                    argv[2], secs);
        json_result(o, &s, PF_OK, PF_EXIT_OK, NULL, NULL, secs);
    }
    close_session(&s);
    return r;
}

static int do_erase(const opts *o, int argc, char **argv)
{
    uint32_t addr = 0, len = 0;
    if (!o->all && (argc != 2 || parse_u32(argv[0], &addr) || parse_u32(argv[1], &len) || len == 0)) {
        pf_cli_error("erase takes ADDR LEN, or --all");
        return PF_EXIT_USAGE;
    }
    uint64_t t0 = pf_posix_now_us();
    session s;
    int r = open_session(&s, o);
    if (r == PF_OK && o->all) {
        r = (s.target.info.caps & PF_CAP_ERASE_ALL) && s.target.ops->erase_all
                ? s.target.ops->erase_all(s.state)
                : pf_diag_set(&s.diag, PF_ERR_UNSUPPORTED, "the %s target cannot erase the whole chip", o->target);
    } else if (r == PF_OK) {
        const pf_flash_geometry *g = &s.target.info.geom;
        uint32_t us, un, ls, ln;
        if (!pf_geometry_unit(g, addr, &us, &un) || !pf_geometry_unit(g, addr + len - 1, &ls, &ln))
            r = pf_diag_set(&s.diag, PF_ERR_RANGE, "0x%08lx+%lu is outside flash", (unsigned long)addr,
                            (unsigned long)len);
        else if (!s.target.ops->erase)
            r = pf_diag_set(&s.diag, PF_ERR_UNSUPPORTED,
                            "the %s target erases as it writes; it has no separate erase", o->target);
        else {
            for (unsigned p = 0; p < g->n_protected && r == PF_OK; p++)
                if (us < g->protected_ranges[p].start + g->protected_ranges[p].size &&
                    ls + ln > g->protected_ranges[p].start)
                    r = pf_diag_set(&s.diag, PF_ERR_RANGE, "0x%08lx-0x%08lx would erase the %s",
                                    (unsigned long)us, (unsigned long)(ls + ln - 1), g->protected_ranges[p].what);
            if (r == PF_OK)
                r = s.target.ops->erase(s.state, us, ls + ln - us);
            if (r == PF_OK && !o->quiet)
                fprintf(stderr, "erased 0x%08lx-0x%08lx\n", (unsigned long)us, (unsigned long)(ls + ln - 1));
        }
    }
    double secs = since(t0);
    if (r < 0)
        r = fail(o, &s, r, s.diag.text, secs);
    else
        json_result(o, &s, PF_OK, PF_EXIT_OK, NULL, NULL, secs);
    close_session(&s);
    return r;
}

static int do_info(const opts *o)
{
    uint64_t t0 = pf_posix_now_us();
    session s;
    int r = open_session(&s, o);
    if (r < 0) {
        r = fail(o, &s, r, s.diag.text, since(t0));
        close_session(&s);
        return r;
    }
    const pf_target_info *in = &s.target.info;
    if (!o->json) {
        printf("chip:        %s\nchip id:     0x%lx\nbootloader:  %s\n", in->chip, (unsigned long)in->chip_id,
               in->bootloader);
        printf("flash:       %lu bytes at 0x%08lx\n", (unsigned long)in->geom.flash_size,
               (unsigned long)in->geom.flash_start);
        printf("write block: %lu bytes (max %lu per command)\n", (unsigned long)in->geom.write_align,
               (unsigned long)in->geom.write_max);
        for (unsigned i = 0; i < in->geom.n_regions; i++)
            printf("erase units: %lu x %lu bytes from 0x%08lx\n",
                   (unsigned long)(in->geom.regions[i].unit ? in->geom.regions[i].size / in->geom.regions[i].unit : 0),
                   (unsigned long)in->geom.regions[i].unit, (unsigned long)in->geom.regions[i].start);
        for (unsigned i = 0; i < in->geom.n_protected; i++)
            printf("protected:   0x%08lx-0x%08lx (%s)\n", (unsigned long)in->geom.protected_ranges[i].start,
                   (unsigned long)(in->geom.protected_ranges[i].start + in->geom.protected_ranges[i].size - 1),
                   in->geom.protected_ranges[i].what);
        printf("can:         %s%s%s%s\n", in->caps & PF_CAP_READ ? "read " : "",
               in->caps & PF_CAP_DIGEST ? pf_digest_name(in->digest) : "", in->caps & PF_CAP_DIGEST ? " " : "",
               in->caps & PF_CAP_ERASE_ALL ? "erase-all" : "");
    }
    json_result(o, &s, PF_OK, PF_EXIT_OK, NULL, NULL, since(t0));
    close_session(&s);
    return PF_EXIT_OK;
}

int pf_cmd_flash(int argc, char **argv)
{
    opts o = {0};
    o.cmd = argv[0];
    o.verify = o.skip = o.run = 1;
    enum { OPT_BAUD = 256, OPT_CBAUD, OPT_CHIP, OPT_RESET, OPT_NOVERIFY, OPT_ERASE, OPT_NOSKIP, OPT_NORUN, OPT_JSON,
           OPT_ALL, OPT_TARGET, OPT_PORT, OPT_UNPROT_R, OPT_UNPROT_W, OPT_NOCOMP, OPT_READCMP, OPT_DELTA_FROM,
           OPT_NO_DELTA };
    static const struct option longopts[] = {
        {"target", required_argument, 0, OPT_TARGET}, {"port", required_argument, 0, OPT_PORT},
        {"baud", required_argument, 0, OPT_BAUD},     {"connect-baud", required_argument, 0, OPT_CBAUD},
        {"chip", required_argument, 0, OPT_CHIP},     {"reset", required_argument, 0, OPT_RESET},
        {"no-verify", no_argument, 0, OPT_NOVERIFY},  {"erase", required_argument, 0, OPT_ERASE},
        {"no-skip", no_argument, 0, OPT_NOSKIP},      {"no-run", no_argument, 0, OPT_NORUN},
        {"json", no_argument, 0, OPT_JSON},           {"all", no_argument, 0, OPT_ALL},
        {"quiet", no_argument, 0, 'q'},               {"verbose", no_argument, 0, 'v'},
        {"unprotect-read", no_argument, 0, OPT_UNPROT_R}, {"unprotect-write", no_argument, 0, OPT_UNPROT_W},
        {"no-compress", no_argument, 0, OPT_NOCOMP},  {"read-compare", no_argument, 0, OPT_READCMP},
        {"delta-from", required_argument, 0, OPT_DELTA_FROM}, {"no-delta", no_argument, 0, OPT_NO_DELTA},
        {"help", no_argument, 0, 'h'},                {0, 0, 0, 0},
    };
    optind = 1;
    int c;
    while ((c = getopt_long(argc, argv, "qvh", longopts, NULL)) != -1) {
        switch (c) {
        case OPT_TARGET: o.target = optarg; break;
        case OPT_PORT: o.port = optarg; break;
        case OPT_BAUD:
        case OPT_CBAUD:
            if (parse_u32(optarg, c == OPT_BAUD ? &o.baud : &o.connect_baud)) {
                pf_cli_error("--%s takes a number, not '%s'", c == OPT_BAUD ? "baud" : "connect-baud", optarg);
                return PF_EXIT_USAGE;
            }
            break;
        case OPT_CHIP: o.chip = optarg; break;
        case OPT_RESET: o.reset = optarg; break;
        case OPT_NOVERIFY: o.verify = 0; break;
        case OPT_ERASE:
            if (strcmp(optarg, "touched") && strcmp(optarg, "all")) {
                pf_cli_error("--erase takes 'touched' or 'all', not '%s'", optarg);
                return PF_EXIT_USAGE;
            }
            o.erase_all = !strcmp(optarg, "all");
            break;
        case OPT_NOSKIP: o.skip = 0; break;
        case OPT_NORUN: o.run = 0; break;
        case OPT_JSON: o.json = 1; break;
        case OPT_ALL: o.all = 1; break;
        case OPT_UNPROT_R: o.unprotect_read = 1; break;
        case OPT_UNPROT_W: o.unprotect_write = 1; break;
        case OPT_NOCOMP: o.no_compress = 1; break;
        case OPT_READCMP: o.read_compare = 1; break;
        case OPT_DELTA_FROM: o.delta_from = optarg; break;
        case OPT_NO_DELTA: o.no_delta = 1; break;
        case 'q': o.quiet = 1; break;
        case 'v': o.verbose++; break;
        case 'h': usage(o.cmd, stdout); return PF_EXIT_OK;
        default: usage(o.cmd, stderr); return PF_EXIT_USAGE;
        }
    }
    if (!o.target || !o.port) {
        pf_cli_error("%s needs --target and --port (see peerflash %s --help)", o.cmd, o.cmd);
        return PF_EXIT_USAGE;
    }
    if (!pf_target_find(o.target)) {
        pf_cli_error("unknown target '%s' (see peerflash %s --help for the list)", o.target, o.cmd);
        return PF_EXIT_USAGE;
    }
    /* Options that belong to some targets only: refused before anything is opened. */
    const char *only = NULL;
    if (o.no_compress && strcmp(o.target, "esp") && strcmp(o.target, "agent"))
        only = "--no-compress is for --target esp and agent (the others never compress)";
    else if ((o.delta_from || o.no_delta) && (strcmp(o.target, "agent") || strcmp(o.cmd, "flash")))
        only = "--delta-from/--no-delta are for flash --target agent";
    else if (o.delta_from && o.no_delta)
        only = "--delta-from and --no-delta exclude each other";
    else if (o.read_compare && strcmp(o.target, "avr"))
        only = "--read-compare is for --target avr (the others compare by digest)";
    else if ((o.unprotect_read || o.unprotect_write) && strcmp(o.target, "stm32"))
        only = "--unprotect-read/--unprotect-write are for --target stm32";
    if (only) {
        pf_cli_error("%s", only);
        return PF_EXIT_USAGE;
    }
    int nargs = argc - optind;
    char **args = argv + optind;
    if (!strcmp(o.cmd, "flash") || !strcmp(o.cmd, "verify")) {
        if (nargs < 1) {
            pf_cli_error("%s needs at least one IMAGE[@ADDR]", o.cmd);
            return PF_EXIT_USAGE;
        }
        return do_flash_or_verify(&o, nargs, args);
    }
    if (!strcmp(o.cmd, "read"))
        return do_read(&o, nargs, args);
    if (!strcmp(o.cmd, "erase"))
        return do_erase(&o, nargs, args);
    if (nargs) {
        pf_cli_error("info takes no arguments");
        return PF_EXIT_USAGE;
    }
    return do_info(&o);
}
