/* flash, verify, read, erase, info: one option parser and one connect path
 * for every target driver; the work itself is the library's flash job. */
#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <getopt.h>
#include <glob.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "agent_delta.h"
#include "cli.h"
#include "update.h"
#include "peerflash/pf_image_file.h"
#include "peerflash/pf_posix.h"
#include "peerflash/pf_session.h"

#define MAX_DRIVER_OPTS 32

typedef struct opts {
    const char *cmd;
    const char *target;
    const char *port;          /* the port (the first of ports) */
    const char *const *ports;  /* every --port, globs expanded (flash, verify: one job each) */
    int nports;
    const char *chip;
    const char *reset;
    uint32_t baud, connect_baud;
    int verify, skip, run, erase_all, json, quiet, verbose, all;
    unsigned command;       /* PF_CMD_* of cmd */
    pf_http_options http; /* URL images: --cacert, --http-timeout, --max-image-size */
    /* driver options as the drivers declare them ("no-compress", "delta-from=OLD"), for the session */
    const char *driver_opts[MAX_DRIVER_OPTS + 1];
    int n_driver_opts;
    /* the two the host carries out (PF_OPT_HOST) for a driver with a set_delta hook */
    const char *delta_from; /* patch against this image (--delta-from) */
    int no_delta;           /* never a patch against a cached image (--no-delta) */
    pf_cli_update *upd;     /* update: the manifest and its options */
} opts;

/* The driver options of every built-in driver, each name once: the long
 * options of the command line and the lines of --help come from these. */
static const pf_target_option *driver_option_list[64];
static size_t n_driver_option_list;

static void collect_driver_options(void)
{
    if (n_driver_option_list)
        return;
    const pf_target_ops *list[32];
    size_t nd = pf_target_list(NULL, list, 32);
    for (size_t d = 0; d < nd; d++)
        for (const pf_target_option *o = list[d]->options; o && o->name; o++) {
            int seen = 0;
            for (size_t k = 0; k < n_driver_option_list && !seen; k++)
                seen = !strcmp(driver_option_list[k]->name, o->name);
            if (!seen && n_driver_option_list < sizeof driver_option_list / sizeof driver_option_list[0])
                driver_option_list[n_driver_option_list++] = o;
        }
}

/* "a", "a and b", "a, b and c": the drivers in listing order that declare option name. */
static void drivers_with_option(const char *name, char *out, size_t n)
{
    const pf_target_ops *list[32], *with[32];
    size_t nd = pf_target_list(NULL, list, 32), nw = 0;
    for (size_t d = 0; d < nd; d++)
        if (pf_target_option_find(list[d], name, strlen(name)))
            with[nw++] = list[d];
    out[0] = 0;
    for (size_t i = 0; i < nw; i++)
        snprintf(out + strlen(out), n - strlen(out), "%s%s", i == 0 ? "" : i + 1 == nw ? " and " : ", ",
                 with[i]->name);
}

/* The commands an option is for: "flash", "flash and verify". */
static void commands_of(unsigned commands, char *out, size_t n)
{
    out[0] = 0;
    unsigned bits[] = {PF_CMD_FLASH, PF_CMD_VERIFY, PF_CMD_READ, PF_CMD_ERASE, PF_CMD_INFO}, total = 0, done = 0;
    for (size_t i = 0; i < 5; i++)
        total += (commands & bits[i]) != 0;
    for (size_t i = 0; i < 5; i++)
        if (commands & bits[i]) {
            done++;
            snprintf(out + strlen(out), n - strlen(out), "%s%s", done == 1 ? "" : done == total ? " and " : ", ",
                     pf_command_name(bits[i]));
        }
}

static unsigned command_bit(const char *cmd)
{
    /* update flashes: the drivers' flash options apply */
    return !strcmp(cmd, "flash") || !strcmp(cmd, "update") ? PF_CMD_FLASH : !strcmp(cmd, "verify") ? PF_CMD_VERIFY
           : !strcmp(cmd, "read") ? PF_CMD_READ : !strcmp(cmd, "erase") ? PF_CMD_ERASE : PF_CMD_INFO;
}

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
    else if (!strcmp(cmd, "update"))
        fprintf(f, "usage: peerflash update --manifest URL|FILE --key KEY --target T --port PORT [options]\n\n"
                   "Reads a signed manifest (docs/MANIFEST.md), checks its signature with KEY (the PEM key\n"
                   "or the DER public key of `peerflash keygen`), connects, picks the image for the chip,\n"
                   "and flashes it as `flash` does, unless the target already runs it: the agent reports\n"
                   "its version (the same is skipped, an older one refused); other targets are compared\n"
                   "with the image first (by digest or read-back) and skipped when identical. The image\n"
                   "must match the manifest's size and SHA-256, or nothing is written.\n");
    else if (!strcmp(cmd, "read"))
        fprintf(f, "usage: peerflash read --target T --port PORT [options] ADDR LEN OUTFILE\n\n"
                   "Reads LEN bytes of flash from ADDR (decimal or 0x hex; LEN may end in K or M) to OUTFILE.\n");
    else if (!strcmp(cmd, "erase"))
        fprintf(f, "usage: peerflash erase --target T --port PORT [options] (ADDR LEN | --all)\n\n"
                   "Erases the erase units covering ADDR..ADDR+LEN, or the whole chip.\n");
    else
        fprintf(f, "usage: peerflash info --target T --port PORT [options]\n\n"
                   "Connects and prints the chip, its flash geometry and the bootloader.\n");
    const pf_target_ops *list[32];
    size_t nd = pf_target_list(NULL, list, 32);
    fprintf(f, "\noptions:\n"
               "  --target T         protocol (or auto: probe");
    size_t nranked = 0;
    for (size_t i = 0; i < nd; i++)
        nranked += list[i]->probe_rank != 0;
    for (size_t i = 0, k = 0; i < nd; i++)
        if (list[i]->probe_rank)
            fprintf(f, "%s %s", k++ ? "," : "", list[i]->name);
    fprintf(f, "%s in turn, each after its\n"
               "                     reset, and use the one that answers):", nranked ? "" : " nothing");
    for (size_t i = 0; pf_target_drivers[i]; i++)
        fprintf(f, " %s", pf_target_drivers[i]->name);
    if (!pf_target_drivers[0])
        fprintf(f, " (none built)");
    fprintf(f, "\n"
               "  --port PORT        serial device or pty path, tcp://HOST:PORT (a raw TCP serial bridge),\n"
               "                     rfc2217://HOST:PORT (an RFC 2217 server: rate, frame, DTR/RTS go\n"
               "                     to its port), or tcp-listen://PORT (wait on 127.0.0.1 for a bridge\n"
               "                     that connects to us)\n"
               "  --baud N           line rate for the transfer (ESP: switched to after sync; without\n"
               "                     it ESP tries 921600, 460800, 230400 and keeps the first that\n"
               "                     answers, else the connect rate; none over tcp://)\n"
               "  --connect-baud N   rate to sync at, where it differs (default: the protocol's)\n"
               "  --chip NAME        refuse any other chip (e.g. ATmega328P, ESP32, STM32F103xB)\n"
               "  --reset MODE       how to enter the bootloader: auto (DTR/RTS circuit), none, or a\n"
               "                     driver-specific sequence\n");
    if (!strcmp(cmd, "update"))
        fprintf(f, "  --manifest SRC     the signed manifest: http(s):// URL or file\n"
                   "  --key KEY          the key the manifest must be signed with\n"
                   "  --board NAME       the manifest entry for this board, when a chip has several\n"
                   "  --allow-downgrade  flash an older version than the target runs\n"
                   "  --force            flash even when the target already runs the image\n");
    if (!strcmp(cmd, "flash") || !strcmp(cmd, "update"))
        fprintf(f, "  --no-verify        skip the verify step (not recommended)\n"
                   "  --erase touched|all  erase only what the image touches (default) or the whole chip\n"
                   "  --no-skip          rewrite erase units whose digest already matches\n"
                   "  --no-run           stay in the bootloader afterwards\n");

    if (!strcmp(cmd, "flash") || !strcmp(cmd, "verify") || !strcmp(cmd, "update"))
        fprintf(f, "  IMAGE may be an http:// or https:// URL: downloaded whole (resumed if the\n"
                   "  connection breaks) before the port is opened\n"
                   "  --port again       flash/verify several targets at once (a quoted glob such as\n"
                   "                     '/dev/ttyUSB*' is expanded); exit status: the worst of them\n"
                   "  --cacert FILE      trust only the CAs in this PEM file for https:// images\n"
                   "                     (default: the system CA store)\n"
                   "  --http-timeout S   give up a download after S seconds (default 120)\n"
                   "  --max-image-size N refuse a downloaded image larger than N bytes (K, M; default 64M)\n");
    fprintf(f, "  --json             print one JSON result object on stdout\n"
               "  -q, --quiet        no progress output\n"
               "  -v, --verbose      protocol trace on stderr (repeat for more)\n"
               "  -h, --help         this help\n");
    /* the drivers' own options, from their tables */
    char help[4096];
    pf_target_options_help(NULL, command_bit(cmd), help, sizeof help);
    if (help[0])
        fprintf(f, "driver options (only with the drivers named):\n%s", help);
    fprintf(f,
               "\nexit status: 0 ok, 2 usage, 3 image, 4 link/no answer, 5 target refused, 6 verify mismatch,\n"
               "130/143 interrupted by SIGINT/SIGTERM (it stops cleanly and says where)\n");
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
    pf_port raw_port; /* the link as pf_posix gives it */
    pf_port port;     /* the same, stopping at SIGINT/SIGTERM: what drivers use */
    pf_session ps;    /* the driver, its state and what connect found */
    void *state;
    pf_diag diag;
} session;

static void close_session(session *s)
{
    pf_session_close(&s->ps);
    free(s->state);
    s->state = NULL;
    pf_posix_close(&s->link);
}

/* What the command learnt so far, for the result line and the JSON object:
 * one command runs per process, so one place holds it. */
struct cmd_state {
    pf_cli_progress prog;
    int have_image;
    uint32_t image_bytes;
    const pf_job_result *job;   /* flash/verify after the job returned */
    int have_read;
    uint32_t read_bytes;
    int have_resume;            /* the target can resume (PF_STATS_RESUME): fields below set */
    uint32_t resumed_from, wire_bytes;
    const char *found_target;   /* --target auto: the target that answered (or is being tried) */
    unsigned n_details;         /* info: facts beyond pf_target_info, per target */
    struct {
        const char *key;
        char value[200];
    } details[8];
    char detail_keys[8][24]; /* keys taken from the driver's own "name: value" lines */
    unsigned n_driver_details;  /* the first ones: printed as the driver wrote them */
    const char *update_action;  /* update: "flashed", "up-to-date", "refused"; NULL before deciding */
    const char *update_version; /* update: the manifest's version for this target */
    char running_version[40];   /* update: what the target said it runs ("" = it cannot tell) */
};
static struct cmd_state st;

/* The target in use: the one given, or the one --target auto found. */
static const char *target_name(const opts *o) { return st.found_target ? st.found_target : o->target; }

static void driver_progress(void *user, int phase, uint32_t done, uint32_t total)
{
    pf_cli_progress_cb(user, (pf_phase)phase, done, total);
}

/* A step an option asked for ("removing readout protection..."); user is
 * the progress display (progress_user), which knows --quiet. */
static void driver_notice(void *user, const char *line)
{
    const pf_cli_progress *p = user;
    if (!p->quiet)
        fprintf(stderr, "%s\n", line);
}

static int open_session(session *s, const opts *o)
{
    memset(s, 0, sizeof *s);
    s->link.fd = s->link.listen_fd = -1;
    s->ps.diag = &s->diag;
    const pf_target_ops *ops = pf_target_find(target_name(o));
    if (!ops) {
        pf_diag_set(&s->diag, PF_ERR_ARG, "unknown target '%s' (see peerflash %s --help)", target_name(o), o->cmd);
        return PF_ERR_ARG;
    }
    /* A host command never creates a pty: a port that does not exist is a
     * missing board, not an endpoint to make. */
    struct stat sb;
    if (strncmp(o->port, "pty:", 4) == 0)
        return pf_diag_set(&s->diag, PF_ERR_ARG, "--port takes an existing port; pty:PATH (a new pty) is for "
                                                 "`peerflash sim` and `peerflash wire`");
    if (!strstr(o->port, "://") && stat(o->port, &sb) != 0)
        return pf_diag_set(&s->diag, PF_ERR_IO, "cannot open %s: %s (is the board plugged in? `peerflash ports` "
                                                "lists serial ports)", o->port, strerror(errno));
    int r = pf_posix_open(&s->link, o->port, &s->diag);
    if (r < 0)
        return r;
    s->link.log_level = o->verbose;
    pf_posix_port(&s->link, &s->raw_port);
    pf_cli_interrupt_wrap(&s->raw_port, &s->port);
    size_t size = pf_session_state_size(ops->name);
    s->state = calloc(1, size);
    if (!s->state)
        return pf_diag_set(&s->diag, PF_ERR_NOMEM, "out of memory");
    pf_session_config c = PF_SESSION_CONFIG_DEFAULT();
    c.target = ops->name;
    c.target_cfg.port = &s->port;
    c.target_cfg.diag = &s->diag;
    c.target_cfg.baud = o->connect_baud;
    c.target_cfg.fast_baud = o->baud;
    c.target_cfg.chip = o->chip;
    c.target_cfg.reset = o->reset;
    c.target_cfg.verbose = o->verbose;
    c.target_cfg.progress = driver_progress;
    c.target_cfg.progress_user = &st.prog;
    c.target_cfg.notice = driver_notice;
    c.options = o->driver_opts;
    c.state = s->state;
    c.state_size = size;
    c.command = o->command;
    r = pf_session_open(&s->ps, &c);
    if (r < 0)
        return r;
    /* a driver that takes patches against the running image: the host
     * makes them (a diff, an image cache) */
    if (ops->set_delta && o->command == PF_CMD_FLASH) {
        r = pf_cli_agent_delta_setup(ops, s->state, o->delta_from, !o->no_delta, o->quiet, &s->diag);
        if (r < 0)
            return r;
    }
    if (!o->quiet)
        fprintf(stderr, "connecting to %s on %s...\n", ops->name, o->port);
    r = pf_session_connect(&s->ps);
    if (r < 0)
        return r;
    if (!o->quiet && strcmp(o->cmd, "info") != 0) { /* info prints all of it on stdout */
        const pf_target_info *in = &s->ps.target.info;
        fprintf(stderr, "chip: %s (id 0x%lx), bootloader: %s, flash: %lu KiB at 0x%08lx\n", in->chip,
                (unsigned long)in->chip_id, in->bootloader[0] ? in->bootloader : "?",
                (unsigned long)(in->geom.flash_size / 1024), (unsigned long)in->geom.flash_start);
    }
    return PF_OK;
}

static void json_u32(const char *key, int have, uint32_t v)
{
    if (have)
        printf(",\"%s\":%lu", key, (unsigned long)v);
    else
        printf(",\"%s\":null", key);
}

static void json_str(const char *key, const char *v)
{
    printf(",\"%s\":", key);
    if (v)
        pf_json_string(stdout, v);
    else
        printf("null");
}

/* --target auto: the bootloaders are probed one after the other, each
 * with its own reset first (DTR/RTS, or on a link without modem lines the
 * reopen of the port, which resets an Arduino or a simulator), in the order
 * of the drivers' probe_rank, the one order that cannot leave a bootloader
 * upset for its own probe (docs/ARCHITECTURE.md, "--target auto"): an
 * autobaud ROM first (STM32 takes the first byte after reset as 0x7F),
 * SLIP protocols with checksums next, and last the bootloader that starts
 * the application on any foreign byte (Optiboot).
 * The first that answers is used; the others are never tried. */
#define PROBE_MS 2500u

static void close_session(session *s);

static int open_any(session *s, const opts *o)
{
    if (strcmp(o->target, "auto"))
        return open_session(s, o);
    char tried[128] = "";
    int r = PF_ERR_NO_SYNC;
    const pf_target_ops *list[32], *probe_order[32];
    size_t nd = pf_target_list(NULL, list, 32), np = 0;
    for (size_t i = 0; i < nd; i++)
        if (list[i]->probe_rank)
            probe_order[np++] = list[i];
    for (size_t i = 0; i < np; i++) {
        st.found_target = probe_order[i]->name;
        if (!o->quiet)
            fprintf(stderr, "auto: trying %s...\n", st.found_target);
        /* a bootloader that is there answers its sync within a second or two
         * (an ESP after two reset variants); the last probe has no bound */
        pf_cli_port_deadline(i + 1 < np ? PROBE_MS : 0);
        r = open_session(s, o);
        pf_cli_port_deadline(0);
        if (r == PF_OK) {
            if (!o->quiet)
                fprintf(stderr, "auto: found the %s bootloader (%s)%s%s\n", st.found_target, s->ps.target.info.chip,
                        tried[0] ? "; no answer from " : "", tried);
            return PF_OK;
        }
        /* silence or garble means "not this one" (another bootloader's bytes
         * can make a driver's read fail); a port that cannot be opened, a
         * refusal or an interruption ends the search */
        if (o->verbose)
            fprintf(stderr, "auto: %s: %s (%d)\n", st.found_target, pf_strerror(r), r);
        int opened = s->link.fd >= 0;
        if (pf_cli_interrupted() || !opened ||
            (r != PF_ERR_NO_SYNC && r != PF_ERR_TIMEOUT && r != PF_ERR_PROTOCOL && r != PF_ERR_CRC &&
             r != PF_ERR_CHIP && r != PF_ERR_IO && r != PF_ERR_FORMAT))
            return r;
        snprintf(tried + strlen(tried), sizeof tried - strlen(tried), "%s%s", tried[0] ? ", " : "", st.found_target);
        close_session(s);
    }
    st.found_target = NULL;
    memset(s, 0, sizeof *s);
    s->link.fd = s->link.listen_fd = -1;
    pf_diag_set(&s->diag, PF_ERR_NO_SYNC,
                "--target auto: no bootloader answered (tried %s, in that order, each after its reset): "
                "check the wiring and that the chip is in its bootloader, or name the target",
                tried);
    pf_diag_hint(&s->diag, PF_HINT_WIRING | PF_HINT_BOOT_MODE);
    pf_diag_op(&s->diag, "connect");
    return PF_ERR_NO_SYNC;
}

/* The one JSON object (schema in docs/CLI.md): every field is always
 * present, null where this run does not know it. exit_code is the status the
 * process returns, so the object and $? agree. */
#define PF_JSON_SCHEMA 1
static void json_result(const opts *o, const session *s, int exit_code, const char *errtext, double secs)
{
    if (!o->json)
        return;
    int sig = pf_cli_interrupted();
    printf("{\"schema\":%d", PF_JSON_SCHEMA);
    json_str("command", o->cmd);
    printf(",\"ok\":%s,\"exit_code\":%d", exit_code ? "false" : "true", exit_code);
    json_str("error", exit_code ? (errtext && *errtext ? errtext : "failed") : NULL);
    json_str("interrupted", sig ? pf_cli_signal_name(sig) : NULL);
    printf(",\"stopped_at\":");
    if (exit_code && st.prog.started)
        printf("{\"phase\":\"%s\",\"done\":%lu,\"total\":%lu}", pf_phase_name(st.prog.phase),
               (unsigned long)st.prog.done, (unsigned long)st.prog.total);
    else
        printf("null");
    json_str("target", target_name(o));
    json_str("port", o->port);
    int on = s && s->ps.connected;
    const pf_target_info *in = on ? &s->ps.target.info : NULL;
    json_str("chip", on ? in->chip : NULL);
    json_u32("chip_id", on, on ? in->chip_id : 0);
    json_str("bootloader", on ? in->bootloader : NULL);
    json_u32("flash_start", on, on ? in->geom.flash_start : 0);
    json_u32("flash_size", on, on ? in->geom.flash_size : 0);
    const pf_job_result *res = st.job;
    json_u32("image_bytes", st.have_image, st.image_bytes);
    json_u32("written_bytes", res != NULL, res ? res->written_bytes : 0);
    json_u32("skipped_bytes", res != NULL, res ? res->skipped_bytes : 0);
    json_u32("erased_bytes", res != NULL, res ? res->erased_bytes : 0);
    json_u32("resumed_from", st.have_resume, st.resumed_from);
    json_u32("wire_bytes", st.have_resume, st.wire_bytes);
    json_u32("runs", res != NULL, res ? res->runs : 0);
    printf(",\"verified\":%s", res ? (res->verified ? "true" : "false") : "null");
    json_str("verify_method", res ? (res->verify_method ? res->verify_method : "none") : NULL);
    json_u32("read_bytes", st.have_read, st.read_bytes);
    /* the failure as data (docs/CLI.md): the operation, the target's own
     * answer and the command it answered, and what the message advises */
    const pf_diag *d = exit_code && s ? &s->diag : NULL;
    json_str("failed_op", d ? d->op : NULL);
    json_u32("target_code", d && d->has_code, d ? d->code : 0);
    json_u32("target_command", d && d->has_command, d ? d->command : 0);
    printf(",\"hints\":");
    if (d) {
        printf("[");
        int n = 0;
        for (unsigned bit = 1; bit; bit <<= 1)
            if ((d->hints & bit) && pf_hint_name(bit))
                printf("%s\"%s\"", n++ ? "," : "", pf_hint_name(bit));
        printf("]");
    } else {
        printf("null");
    }
    printf(",\"details\":");
    if (!strcmp(o->cmd, "info") && on) {
        printf("{");
        for (unsigned i = 0; i < st.n_details; i++) {
            printf("%s\"%s\":", i ? "," : "", st.details[i].key);
            pf_json_string(stdout, st.details[i].value);
        }
        printf("}");
    } else {
        printf("null");
    }
    if (!strcmp(o->cmd, "update")) {
        printf(",\"update\":{\"manifest\":");
        pf_json_string(stdout, o->upd ? o->upd->manifest_src : "");
        json_str("action", st.update_action);
        json_str("version", st.update_version);
        json_str("running_version", st.running_version[0] ? st.running_version : NULL);
        printf("}");
    }
    printf(",\"seconds\":%.3f}\n", secs);
    fflush(stdout);
}

/* A bad command line: the message on stderr, and with --json the object. */
static int usage_fail(const opts *o, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int usage_fail(const opts *o, const char *fmt, ...)
{
    char text[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(text, sizeof text, fmt, ap);
    va_end(ap);
    pf_cli_error("%s", text);
    json_result(o, NULL, PF_EXIT_USAGE, text, 0.0);
    return PF_EXIT_USAGE;
}

/* One place that turns a failure into a message with a next step. */
static int fail(const opts *o, session *s, int err, const char *text, double secs)
{
    int sig = pf_cli_interrupted();
    if (sig) {
        char where[160] = "";
        if (st.prog.started)
            snprintf(where, sizeof where, " during %s at %lu of %lu bytes", pf_phase_name(st.prog.phase),
                     (unsigned long)st.prog.done, (unsigned long)st.prog.total);
        else
            snprintf(where, sizeof where, " %s", s && s->ps.connected ? "before the transfer" : "while connecting");
        char msg[320];
        snprintf(msg, sizeof msg, "interrupted by %s%s%s", pf_cli_signal_name(sig), where,
                 st.prog.started && (st.prog.phase == PF_PHASE_WRITE || st.prog.phase == PF_PHASE_ERASE)
                     ? "; the flash holds part of the image: run the command again"
                     : "");
        pf_cli_error("%s", msg);
        json_result(o, s, PF_EXIT_SIGNAL_BASE + sig, msg, secs);
        return PF_EXIT_SIGNAL_BASE + sig;
    }
    const char *hint = "";
    /* Drivers that know their board give a specific hint (pf_diag.hints);
     * add the generic one only where the message has none. */
    int has_hint = s && s->diag.hints;
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
    json_result(o, s, pf_exit_status(err), text && *text ? text : pf_strerror(err), secs);
    return pf_exit_status(err);
}

static double since(uint64_t t0)
{
    return (double)(pf_posix_now_us() - t0) / 1e6;
}

/* Connects (open_any); a failure is reported (message, JSON) and the
 * session closed. Returns 0, or the exit status of the failure. */
static int connect_or_report(session *s, const opts *o, uint64_t t0)
{
    int r = open_any(s, o);
    if (r >= 0)
        return 0;
    r = fail(o, s, r, s->diag.text, since(t0));
    close_session(s);
    return r;
}

/* Image problems are found before the port is opened, so a bad image never
 * touches the target. A wrong @ADDR is a usage error; the rest are image errors. */
static int image_exit(int err)
{
    return err == PF_ERR_ARG ? PF_EXIT_USAGE : PF_EXIT_IMAGE;
}

/* The job counts what it handed to write(); a driver that skips part of it
 * itself (pages that already held the data, a resumed transfer) knows better. */
static void count_what_was_sent(const session *s, pf_job_result *res)
{
    pf_target_stats ts;
    pf_session_stats(&s->ps, &ts);
    uint32_t kept = ts.unchanged_bytes + ts.resumed_from;
    if (kept > res->written_bytes)
        kept = res->written_bytes;
    res->written_bytes -= kept;
    res->skipped_bytes += kept;
    if (ts.flags & PF_STATS_RESUME) {
        st.have_resume = 1;
        st.resumed_from = ts.resumed_from;
        st.wire_bytes = ts.wire_bytes;
    }
}

/* The job on a connected session: the driver's image check, then flash
 * (or only verify), the result line and the JSON object; the exit status. */
static int job_on_session(const opts *o, session *s, const pf_image_set *images, int verify_only, uint64_t t0)
{
    int r;
    /* each file checked for the connected chip by the driver's own image
     * check (ESP: app image header and chip id), before anything is written */
    for (size_t i = 0; i < images->count; i++)
        if ((r = pf_session_check_image(&s->ps, &images->files[i].map)) < 0) {
            pf_diag_prefix(&s->diag, images->files[i].path);
            r = fail(o, s, r, s->diag.text, since(t0));
            return r;
        }
    pf_cli_progress *prog = &st.prog;
    size_t bufsize = pf_job_buf_size_for(&s->ps.target.info);
    uint8_t *buf = malloc(bufsize);
    pf_job_config cfg = PF_JOB_CONFIG_DEFAULT();
    cfg.erase = o->erase_all ? PF_ERASE_ALL : PF_ERASE_TOUCHED;
    cfg.verify = o->verify;
    cfg.skip_unchanged = o->skip;
    cfg.run_after = o->run && (s->ps.target.info.caps & PF_CAP_RUN);
    cfg.progress = pf_cli_progress_cb;
    cfg.progress_user = prog;
    cfg.buf = buf;
    cfg.buf_size = bufsize;
    cfg.diag = &s->diag;
    cfg.clock = &s->port;
    pf_job_result res;
    pf_diag_clear(&s->diag);
    int is_verify = verify_only;
    r = buf ? (is_verify ? pf_job_verify(&s->ps.target, &images->map, &cfg, &res)
                         : pf_job_flash(&s->ps.target, &images->map, &cfg, &res))
            : PF_ERR_NOMEM;
    pf_cli_progress_end(prog);
    double secs = since(t0);
    if (r >= 0 && !is_verify)
        count_what_was_sent(s, &res);
    if (r < 0) {
        r = fail(o, s, r, s->diag.text, secs);
    } else {
        st.job = &res;
        if (!o->quiet) {
            if (is_verify)
                fprintf(stderr, "verified %lu bytes (%s): flash matches the image\n",
                        (unsigned long)res.image_bytes, res.verify_method);
            else {
                fprintf(stderr, "wrote %lu bytes", (unsigned long)res.written_bytes);
                if (st.have_resume && st.resumed_from)
                    fprintf(stderr, " (resumed at %lu, where the cut transfer had stopped; sent %lu bytes on the "
                            "wire)", (unsigned long)st.resumed_from, (unsigned long)st.wire_bytes);
                uint32_t unchanged = res.skipped_bytes - (st.have_resume ? st.resumed_from : 0);
                if (unchanged)
                    fprintf(stderr, ", skipped %lu unchanged", (unsigned long)unchanged);
                fprintf(stderr, " in %.2f s", secs);
                if (res.verified)
                    fprintf(stderr, ", verified (%s)", res.verify_method);
                else
                    fprintf(stderr, ", NOT verified (%s)",
                            o->verify ? "this target can neither read nor hash its flash" : "--no-verify");
                fprintf(stderr, "%s\n", cfg.run_after ? "; application started" : "");
            }
        }
        json_result(o, s, PF_EXIT_OK, NULL, secs);
        r = PF_EXIT_OK;
    }
    free(buf);
    return r;
}

/* Flashes or verifies the loaded images on o->port; returns the exit status. */
static int flash_images_on_port(const opts *o, const pf_image_set *images, uint64_t t0)
{
    session s;
    pf_cli_progress_init(&st.prog, o->quiet);
    int r = open_any(&s, o);
    if (r < 0)
        r = fail(o, &s, r, s.diag.text, since(t0));
    else
        r = job_on_session(o, &s, images, !strcmp(o->cmd, "verify"), t0);
    close_session(&s);
    return r;
}


typedef struct run_one_ctx {
    const opts *o;
    const pf_image_set *images;
    uint64_t t0;
} run_one_ctx;

/* In a child of pf_cli_run_many: the same work on one of the ports. */
static int run_one_port(void *user, const char *port)
{
    const run_one_ctx *c = user;
    opts one = *c->o;
    one.port = port;
    one.nports = 1;
    return flash_images_on_port(&one, c->images, pf_posix_now_us());
}

static int do_flash_or_verify(const opts *o, int nimg, char **imgs)
{
    uint64_t t0 = pf_posix_now_us();
    pf_image_set images;
    pf_image_set_init(&images);
    pf_cli_download dl = {0};
    dl.quiet = o->quiet;
    pf_http_options http = o->http;
    http.progress = pf_cli_download_progress;
    http.progress_user = &dl;
    images.http = &http;
    pf_diag d = {0};
    int r = PF_OK;
    for (int i = 0; i < nimg && r == PF_OK; i++)
        r = pf_image_set_add(&images, imgs[i], &d);
    if (r == PF_OK)
        r = pf_image_set_finish(&images, &d);
    if (r < 0) {
        pf_cli_error("%s", d.text[0] ? d.text : pf_strerror(r));
        json_result(o, NULL, image_exit(r), d.text[0] ? d.text : pf_strerror(r), since(t0));
        pf_image_set_free(&images);
        return image_exit(r);
    }
    char why[512];
    for (int i = 0; i < nimg; i++)
        if (pf_cli_check_load_address(o->target, o->chip, imgs[i], why, sizeof why) < 0) {
            pf_image_set_free(&images);
            return usage_fail(o, "%s", why);
        }
    st.have_image = 1;
    st.image_bytes = (uint32_t)pf_memmap_bytes(&images.map);
    uint32_t lo, hi;
    pf_memmap_bounds(&images.map, &lo, &hi);
    if (!o->quiet)
        fprintf(stderr, "image: %lu bytes in %zu segment(s) at 0x%08lx-0x%08lx\n",
                (unsigned long)pf_memmap_bytes(&images.map), images.map.count, (unsigned long)lo,
                (unsigned long)(hi - 1));
    if (o->nports > 1) {
        /* many targets: one process per port, the images parsed once here */
        r = pf_cli_run_many(o->ports, o->nports, o->cmd, o->json, o->quiet, run_one_port, &(run_one_ctx){o, &images, t0});
    } else {
        r = flash_images_on_port(o, &images, t0);
    }
    pf_image_set_free(&images);
    return r;
}

/* Does the target hold the images already? PF_OK, PF_ERR_VERIFY, or the
 * failure of the compare; *method says how it compared. */
static int compare_on_session(session *s, const pf_image_set *images, const char **method)
{
    int r = PF_OK;
    for (size_t i = 0; i < images->count && r == PF_OK; i++)
        r = pf_session_check_image(&s->ps, &images->files[i].map);
    if (r < 0)
        return r;
    size_t bufsize = pf_job_buf_size_for(&s->ps.target.info);
    uint8_t *buf = malloc(bufsize);
    if (!buf)
        return pf_diag_set(&s->diag, PF_ERR_NOMEM, "out of memory");
    pf_job_config cfg = PF_JOB_CONFIG_DEFAULT();
    cfg.progress = pf_cli_progress_cb;
    cfg.progress_user = &st.prog;
    cfg.buf = buf;
    cfg.buf_size = bufsize;
    cfg.diag = &s->diag;
    cfg.clock = &s->port;
    pf_job_result res;
    memset(&res, 0, sizeof res);
    r = pf_job_verify(&s->ps.target, &images->map, &cfg, &res);
    pf_cli_progress_end(&st.prog);
    *method = res.verify_method;
    free(buf);
    return r;
}

/* update on o->port: connect, pick the manifest's image for the chip,
 * decide whether the target needs it, then the same job as flash. */
static int update_on_port(const opts *o, uint64_t t0)
{
    const pf_cli_update *u = o->upd;
    session s;
    pf_cli_progress_init(&st.prog, o->quiet);
    int r = connect_or_report(&s, o, t0);
    if (r)
        return r;
    const pf_manifest_image *im;
    r = pf_manifest_select(&u->manifest, target_name(o), s.ps.target.info.chip, u->board, &im, &s.diag);
    if (r < 0) {
        r = fail(o, &s, r, s.diag.text, since(t0));
        close_session(&s);
        return r;
    }
    st.update_version = im->version;
    /* what the target runs, where it can say (the agent) */
    static char det[2048];
    pf_manifest_version running;
    int knows = pf_session_details(&s.ps, det, sizeof det) == PF_OK && pf_cli_update_running_version(det, &running);
    if (knows)
        snprintf(st.running_version, sizeof st.running_version, "%lu.%lu.%lu", (unsigned long)running.major,
                 (unsigned long)running.minor, (unsigned long)running.revision);
    if (knows && !u->force) {
        int cmp = pf_manifest_version_cmp(&im->ver, &running);
        if (cmp == 0) {
            st.update_action = "up-to-date";
            if (!o->quiet)
                fprintf(stderr, "already runs version %s: nothing to do\n", st.running_version);
            json_result(o, &s, PF_EXIT_OK, NULL, since(t0));
            close_session(&s);
            return PF_EXIT_OK;
        }
        if (cmp < 0 && !u->allow_downgrade) {
            st.update_action = "refused";
            pf_diag_set(&s.diag, PF_ERR_STATE, "the manifest's version %s is older than the running %s: refusing a "
                                               "downgrade (--allow-downgrade allows it)", im->version,
                        st.running_version);
            pf_diag_op(&s.diag, "check");
            r = fail(o, &s, PF_ERR_STATE, s.diag.text, since(t0));
            close_session(&s);
            return r;
        }
    }
    if (!o->quiet)
        fprintf(stderr, "manifest: version %s for %s %s%s%s: %s\n", im->version, im->target,
                s.ps.target.info.chip, knows ? ", running " : "", knows ? st.running_version : "", im->url);
    pf_image_set images;
    pf_image_set_init(&images);
    pf_cli_download dl = {0};
    dl.quiet = o->quiet;
    pf_http_options http = o->http;
    http.progress = pf_cli_download_progress;
    http.progress_user = &dl;
    pf_diag_clear(&s.diag);
    r = pf_cli_update_fetch(u, im, s.ps.target.ops->app_address, &http, &images, &s.diag);
    if (r < 0) {
        /* an image that cannot be had, or differs from the signed manifest,
         * is an image failure (3), whatever the cause */
        st.update_action = "refused";
        r = fail(o, &s, PF_ERR_FORMAT, s.diag.text, since(t0));
        pf_image_set_free(&images);
        close_session(&s);
        return r;
    }
    st.have_image = 1;
    st.image_bytes = (uint32_t)pf_memmap_bytes(&images.map);
    if (!knows && !u->force) {
        /* no version to go by: the flash content decides (digest or read-back) */
        const char *method = NULL;
        int v = compare_on_session(&s, &images, &method);
        if (v == PF_OK) {
            st.update_action = "up-to-date";
            if (!o->quiet)
                fprintf(stderr, "already holds this image (version %s, compared by %s): nothing to do\n", im->version,
                        method ? method : "read-back");
            json_result(o, &s, PF_EXIT_OK, NULL, since(t0));
            pf_image_set_free(&images);
            close_session(&s);
            return PF_EXIT_OK;
        }
        if (v != PF_ERR_VERIFY) {
            r = fail(o, &s, v, s.diag.text, since(t0));
            pf_image_set_free(&images);
            close_session(&s);
            return r;
        }
        pf_diag_clear(&s.diag);
        pf_cli_progress_init(&st.prog, o->quiet);
    }
    st.update_action = "flashed";
    r = job_on_session(o, &s, &images, 0, t0);
    if (r != PF_EXIT_OK)
        st.update_action = NULL;
    pf_image_set_free(&images);
    close_session(&s);
    return r;
}

static int run_one_update(void *user, const char *port)
{
    opts one = *(const opts *)user;
    one.port = port;
    one.nports = 1;
    return update_on_port(&one, pf_posix_now_us());
}

static int do_update(const opts *o)
{
    uint64_t t0 = pf_posix_now_us();
    pf_diag d = {0};
    pf_http_options http = o->http;
    /* the manifest is checked before any port is opened */
    int r = pf_cli_update_load(o->upd, &http, &d);
    if (r < 0) {
        int code = r == PF_ERR_ARG ? PF_EXIT_USAGE : PF_EXIT_IMAGE;
        pf_cli_error("%s", d.text[0] ? d.text : pf_strerror(r));
        json_result(o, NULL, code, d.text[0] ? d.text : pf_strerror(r), since(t0));
        return code;
    }
    if (!o->quiet)
        fprintf(stderr, "manifest%s%s: %u image%s, signature good\n", o->upd->manifest.name[0] ? " " : "",
                o->upd->manifest.name, o->upd->manifest.n_images, o->upd->manifest.n_images == 1 ? "" : "s");
    r = o->nports > 1 ? pf_cli_run_many(o->ports, o->nports, o->cmd, o->json, o->quiet, run_one_update, (void *)o)
                      : update_on_port(o, t0);
    pf_cli_update_free(o->upd);
    return r;
}

static int do_read(const opts *o, int argc, char **argv)
{
    uint32_t addr, len;
    if (argc != 3 || parse_u32(argv[0], &addr) || parse_u32(argv[1], &len) || len == 0)
        return usage_fail(o, "read takes ADDR LEN OUTFILE (e.g. 0x0 32K flash.bin)");
    uint64_t t0 = pf_posix_now_us();
    session s;
    pf_cli_progress_init(&st.prog, o->quiet);
    int r = open_any(&s, o);
    uint8_t *data = NULL;
    if (r == PF_OK)
        r = pf_job_read_check(&s.ps.target, addr, len, &s.diag);
    if (r == PF_OK && !(data = malloc(len)))
        r = PF_ERR_NOMEM;
    pf_cli_progress *prog = &st.prog;
    pf_job_config cfg = PF_JOB_CONFIG_DEFAULT();
    cfg.progress = pf_cli_progress_cb;
    cfg.progress_user = prog;
    cfg.diag = &s.diag;
    if (r == PF_OK)
        r = pf_job_read_range(&s.ps.target, addr, data, len, &cfg);
    pf_cli_progress_end(prog);
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
        st.have_read = 1;
        st.read_bytes = len;
        json_result(o, &s, PF_EXIT_OK, NULL, secs);
    }
    close_session(&s);
    return r;
}

static int do_erase(const opts *o, int argc, char **argv)
{
    uint32_t addr = 0, len = 0;
    if (!o->all && (argc != 2 || parse_u32(argv[0], &addr) || parse_u32(argv[1], &len) || len == 0))
        return usage_fail(o, "erase takes ADDR LEN, or --all");
    if (o->all && argc)
        return usage_fail(o, "erase --all takes no ADDR LEN");
    uint64_t t0 = pf_posix_now_us();
    session s;
    pf_cli_progress_init(&st.prog, o->quiet);
    int r = open_any(&s, o);
    pf_job_config cfg = PF_JOB_CONFIG_DEFAULT();
    cfg.diag = &s.diag;
    if (r == PF_OK && o->all) {
        if (!o->quiet)
            fprintf(stderr, "erase: the whole chip...\n");
        r = pf_job_erase_chip(&s.ps.target, &cfg);
        if (r == PF_OK && !o->quiet)
            fprintf(stderr, "erased the whole chip: %lu bytes at 0x%08lx in %.2f s\n",
                    (unsigned long)s.ps.target.info.geom.flash_size, (unsigned long)s.ps.target.info.geom.flash_start,
                    since(t0));
    } else if (r == PF_OK) {
        pf_run erased;
        r = pf_job_erase_range(&s.ps.target, addr, len, &cfg, &erased);
        if (r == PF_OK && !o->quiet)
            fprintf(stderr, "erased 0x%08lx-0x%08lx\n", (unsigned long)erased.addr,
                    (unsigned long)(erased.addr + erased.len - 1));
    }
    double secs = since(t0);
    if (r < 0)
        r = fail(o, &s, r, s.diag.text, secs);
    else
        json_result(o, &s, PF_EXIT_OK, NULL, secs);
    close_session(&s);
    return r;
}

static void detail(const char *key, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void detail(const char *key, const char *fmt, ...)
{
    if (st.n_details >= sizeof st.details / sizeof st.details[0])
        return;
    st.details[st.n_details].key = key;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(st.details[st.n_details].value, sizeof st.details[0].value, fmt, ap);
    va_end(ap);
    st.n_details++;
}

/* Takes "name: value" lines into details: key "flash id" becomes flash_id. */
static void parse_details(const char *d)
{
    while (*d && st.n_details < 8) {
        const char *nl = strchr(d, '\n'), *end = nl ? nl : d + strlen(d), *colon = memchr(d, ':', (size_t)(end - d));
        if (colon) {
            char *key = st.detail_keys[st.n_details];
            size_t k = 0;
            for (const char *c = d; c < colon && k + 1 < sizeof st.detail_keys[0]; c++)
                key[k++] = *c == ' ' ? '_' : (char)tolower((unsigned char)*c);
            key[k] = 0;
            const char *v = colon + 1;
            while (v < end && *v == ' ')
                v++;
            detail(key, "%.*s", (int)(end - v), v);
        }
        d = nl ? nl + 1 : end;
    }
}

/* What info can say beyond the chip and its geometry: the driver's facts
 * from connect (pf_target_info.details, printed as the driver wrote them),
 * then those its details hook reads (STM32 option bytes, what an AVR
 * bootloader cannot read). Returns a failure of the link. */
static int collect_details(session *s)
{
    parse_details(s->ps.target.info.details);
    st.n_driver_details = st.n_details;
    static char all[2048];
    int r = pf_session_details(&s->ps, all, sizeof all);
    if (r < 0)
        return r;
    size_t skip = strlen(s->ps.target.info.details);
    if (skip && all[skip] == '\n')
        skip++;
    parse_details(all + (skip < strlen(all) ? skip : strlen(all)));
    return PF_OK;
}

static int do_info(const opts *o)
{
    uint64_t t0 = pf_posix_now_us();
    session s;
    pf_cli_progress_init(&st.prog, o->quiet);
    int r = connect_or_report(&s, o, t0);
    if (r)
        return r;
    if ((r = collect_details(&s)) < 0) {
        r = fail(o, &s, r, s.diag.text, since(t0));
        close_session(&s);
        return r;
    }
    const pf_target_info *in = &s.ps.target.info;
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
        fputs(in->details, stdout); /* the driver's facts, as it wrote them */
        for (unsigned i = st.n_driver_details; i < st.n_details; i++)
            printf("%-12s %s\n", st.details[i].key, st.details[i].value);
    }
    json_result(o, &s, PF_EXIT_OK, NULL, since(t0));
    close_session(&s);
    return PF_EXIT_OK;
}

/* Every --port given; a pattern with * ? or [ is expanded (glob) here, so a
 * quoted '/dev/ttyUSB*' works. The strings live until the process ends. */
#define MAX_PORTS 64
static const char *g_ports[MAX_PORTS];
static int g_nports;

static int add_port(const char *p)
{
    for (int i = 0; i < g_nports; i++)
        if (!strcmp(g_ports[i], p))
            return 1; /* the same port twice would be two jobs fighting over one board */
    if (g_nports == MAX_PORTS) {
        pf_cli_error("--port: more than %d ports", MAX_PORTS);
        return -1;
    }
    g_ports[g_nports++] = p;
    return 0;
}

static int add_ports(const char *arg)
{
    if (strstr(arg, "://") || !strpbrk(arg, "*?["))
        return add_port(arg) < 0 ? -1 : 0;
    glob_t g;
    int rc = glob(arg, 0, NULL, &g);
    if (rc == GLOB_NOMATCH || (rc == 0 && g.gl_pathc == 0)) {
        pf_cli_error("--port '%s' matches no port (is the board plugged in? `peerflash ports` lists serial ports)", arg);
        return -2;
    }
    if (rc != 0) {
        pf_cli_error("--port '%s': cannot expand the pattern", arg);
        return -1;
    }
    for (size_t i = 0; i < g.gl_pathc; i++) {
        char *p = strdup(g.gl_pathv[i]);
        int r = p ? add_port(p) : -1;
        if (r != 0)
            free(p);
        if (r < 0) {
            globfree(&g);
            return -1;
        }
    }
    globfree(&g);
    return 0;
}

int pf_cmd_flash(int argc, char **argv)
{
    opts o = {0};
    static pf_cli_update upd;
    int update_opts = 0; /* an update-only option was given */
    o.cmd = argv[0];
    o.upd = &upd;
    o.verify = o.skip = o.run = 1;
    o.http = (pf_http_options)PF_HTTP_OPTIONS_DEFAULT();
    o.command = command_bit(o.cmd);
    enum { OPT_BAUD = 256, OPT_CBAUD, OPT_CHIP, OPT_RESET, OPT_NOVERIFY, OPT_ERASE, OPT_NOSKIP, OPT_NORUN, OPT_JSON,
           OPT_ALL, OPT_TARGET, OPT_PORT, OPT_CACERT, OPT_HTTP_TIMEOUT, OPT_MAX_IMAGE, OPT_MANIFEST, OPT_KEY, OPT_BOARD,
           OPT_DOWNGRADE, OPT_FORCE, OPT_DRIVER = 1000 };
    static const struct option fixed_opts[] = {
        {"target", required_argument, 0, OPT_TARGET}, {"port", required_argument, 0, OPT_PORT},
        {"baud", required_argument, 0, OPT_BAUD},     {"connect-baud", required_argument, 0, OPT_CBAUD},
        {"chip", required_argument, 0, OPT_CHIP},     {"reset", required_argument, 0, OPT_RESET},
        {"no-verify", no_argument, 0, OPT_NOVERIFY},  {"erase", required_argument, 0, OPT_ERASE},
        {"no-skip", no_argument, 0, OPT_NOSKIP},      {"no-run", no_argument, 0, OPT_NORUN},
        {"json", no_argument, 0, OPT_JSON},           {"all", no_argument, 0, OPT_ALL},
        {"quiet", no_argument, 0, 'q'},               {"verbose", no_argument, 0, 'v'},
        {"cacert", required_argument, 0, OPT_CACERT}, {"http-timeout", required_argument, 0, OPT_HTTP_TIMEOUT},
        {"max-image-size", required_argument, 0, OPT_MAX_IMAGE},
        {"manifest", required_argument, 0, OPT_MANIFEST},  {"key", required_argument, 0, OPT_KEY},
        {"board", required_argument, 0, OPT_BOARD},        {"allow-downgrade", no_argument, 0, OPT_DOWNGRADE},
        {"force", no_argument, 0, OPT_FORCE},
        {"help", no_argument, 0, 'h'},
    };
    /* the drivers' options (--no-compress, --read-compare, ...) from their tables */
    collect_driver_options();
    static struct option longopts[sizeof fixed_opts / sizeof fixed_opts[0] + 64 + 1];
    size_t nl = 0;
    for (; nl < sizeof fixed_opts / sizeof fixed_opts[0]; nl++)
        longopts[nl] = fixed_opts[nl];
    for (size_t i = 0; i < n_driver_option_list; i++)
        longopts[nl++] = (struct option){driver_option_list[i]->name,
                                         driver_option_list[i]->arg ? required_argument : no_argument, 0,
                                         OPT_DRIVER + (int)i};
    longopts[nl] = (struct option){0, 0, 0, 0};
    static char driver_words[MAX_DRIVER_OPTS][256];
    /* --json is honoured even when the command line around it is wrong */
    for (int i = 1; i < argc && strcmp(argv[i], "--"); i++)
        if (!strcmp(argv[i], "--json"))
            o.json = 1;
    optind = 1;
    opterr = 0; /* our own messages, with --json as one object */
    int c;
    while ((c = getopt_long(argc, argv, ":qvh", longopts, NULL)) != -1) {
        switch (c) {
        case OPT_TARGET: o.target = optarg; break;
        case OPT_PORT: {
            int r = add_ports(optarg);
            if (r < 0)
                return r == -2 ? PF_EXIT_LINK : PF_EXIT_USAGE; /* a pattern matching no board: as a missing board */
            break;
        }
        case OPT_BAUD:
        case OPT_CBAUD:
            if (parse_u32(optarg, c == OPT_BAUD ? &o.baud : &o.connect_baud) ||
                !(c == OPT_BAUD ? o.baud : o.connect_baud))
                return usage_fail(&o, "--%s takes a line rate in bit/s, not '%s'",
                                  c == OPT_BAUD ? "baud" : "connect-baud", optarg);
            break;
        case OPT_CHIP: o.chip = optarg; break;
        case OPT_RESET: o.reset = optarg; break;
        case OPT_NOVERIFY: o.verify = 0; break;
        case OPT_ERASE:
            if (strcmp(optarg, "touched") && strcmp(optarg, "all"))
                return usage_fail(&o, "--erase takes 'touched' or 'all', not '%s'", optarg);
            o.erase_all = !strcmp(optarg, "all");
            break;
        case OPT_NOSKIP: o.skip = 0; break;
        case OPT_NORUN: o.run = 0; break;
        case OPT_JSON: o.json = 1; break;
        case OPT_ALL: o.all = 1; break;
        case OPT_CACERT: o.http.cacert = optarg; break;
        case OPT_HTTP_TIMEOUT: {
            uint32_t secs;
            if (parse_u32(optarg, &secs) || secs == 0 || secs > 86400) {
                pf_cli_error("--http-timeout takes seconds (1..86400), not '%s'", optarg);
                return PF_EXIT_USAGE;
            }
            o.http.timeout_ms = secs * 1000u;
            break;
        }
        case OPT_MAX_IMAGE: {
            uint32_t max;
            if (parse_u32(optarg, &max) || max == 0) {
                pf_cli_error("--max-image-size takes a size in bytes (K, M allowed), not '%s'", optarg);
                return PF_EXIT_USAGE;
            }
            o.http.max_bytes = max;
            break;
        }
        case OPT_MANIFEST: upd.manifest_src = optarg; update_opts = 1; break;
        case OPT_KEY: upd.key_path = optarg; update_opts = 1; break;
        case OPT_BOARD: upd.board = optarg; update_opts = 1; break;
        case OPT_DOWNGRADE: upd.allow_downgrade = 1; update_opts = 1; break;
        case OPT_FORCE: upd.force = 1; update_opts = 1; break;
        case 'q': o.quiet = 1; break;
        case 'v': o.verbose++; break;
        case 'h': usage(o.cmd, stdout); return PF_EXIT_OK;
        case ':':
            return usage_fail(&o, "%s needs a value (see peerflash %s --help)", argv[optind - 1], o.cmd);
        default:
            if (c >= OPT_DRIVER && c < OPT_DRIVER + (int)n_driver_option_list) {
                const pf_target_option *dopt = driver_option_list[c - OPT_DRIVER];
                if (dopt->arg && !pf_target_option_value_ok(dopt->arg, optarg))
                    return usage_fail(&o, "--%s takes %s, not '%s'", dopt->name, dopt->arg, optarg);
                if (o.n_driver_opts == MAX_DRIVER_OPTS)
                    return usage_fail(&o, "more than %d driver options", MAX_DRIVER_OPTS);
                char *w = driver_words[o.n_driver_opts];
                snprintf(w, sizeof driver_words[0], "%s%s%s", dopt->name, dopt->arg ? "=" : "",
                         dopt->arg ? optarg : "");
                o.driver_opts[o.n_driver_opts++] = w;
                /* the two the host carries out for a driver that takes patches */
                if (!strcmp(dopt->name, "delta-from"))
                    o.delta_from = optarg;
                else if (!strcmp(dopt->name, "no-delta"))
                    o.no_delta = 1;
                break;
            }
            if (optopt)
                return usage_fail(&o, "unknown option '-%c' (see peerflash %s --help)", optopt, o.cmd);
            return usage_fail(&o, "unknown option '%s' (see peerflash %s --help)", argv[optind - 1], o.cmd);
        }
    }
    o.ports = g_ports;
    o.nports = g_nports;
    o.port = g_nports ? g_ports[0] : NULL;
    if (!o.target || !o.port)
        return usage_fail(&o, "%s needs --target and --port (see peerflash %s --help)", o.cmd, o.cmd);
    int auto_target = !strcmp(o.target, "auto");
    if (!auto_target && !pf_target_find(o.target))
        return usage_fail(&o, "unknown target '%s' (see peerflash %s --help for the list)", o.target, o.cmd);
    if (auto_target && o.chip) { /* a chip known to one target only names the target: nothing to probe */
        const char *only_target = pf_cli_target_of_chip(o.chip);
        if (only_target) {
            o.target = only_target;
            auto_target = 0;
        }
    }
    if (auto_target && o.n_driver_opts) {
        char given[256] = "";
        for (int i = 0; i < o.n_driver_opts; i++)
            snprintf(given + strlen(given), sizeof given - strlen(given), "%s--%.*s", i ? ", " : "",
                     (int)strcspn(o.driver_opts[i], "="), o.driver_opts[i]);
        return usage_fail(&o, "--target auto cannot take target-specific options (%s): name the target", given);
    }
    for (int i = 0; i < o.nports; i++) {
        pf_diag spec_diag = {0};
        if (pf_posix_spec_check(o.ports[i], &spec_diag) < 0)
            return usage_fail(&o, "--port %s", spec_diag.text);
    }
    if (o.nports > 1 && strcmp(o.cmd, "flash") && strcmp(o.cmd, "verify") && strcmp(o.cmd, "update"))
        return usage_fail(&o, "%s takes one --port (flash, verify and update take several)", o.cmd);
    int is_update = !strcmp(o.cmd, "update");
    if (update_opts && !is_update)
        return usage_fail(&o, "--manifest, --key, --board, --allow-downgrade and --force are for update");
    if (is_update && (!upd.manifest_src || !upd.key_path))
        return usage_fail(&o, "update needs --manifest URL|FILE and --key KEY (see peerflash update --help)");
    /* Options that belong to some drivers or commands only: refused before
     * anything is opened, from the drivers' own tables. */
    o.driver_opts[o.n_driver_opts] = NULL;
    const pf_target_ops *tops = auto_target ? NULL : pf_target_find(o.target);
    for (int i = 0; tops && i < o.n_driver_opts; i++) {
        size_t nlen = strcspn(o.driver_opts[i], "=");
        const pf_target_option *mine = pf_target_option_find(tops, o.driver_opts[i], nlen);
        char list[160];
        if (!mine) {
            char name[64];
            snprintf(name, sizeof name, "%.*s", (int)nlen, o.driver_opts[i]);
            drivers_with_option(name, list, sizeof list);
            return usage_fail(&o, "--%s is for --target %s (not %s; see peerflash %s --help)", name, list, o.target,
                              o.cmd);
        }
        if (!(mine->commands & o.command)) {
            commands_of(mine->commands, list, sizeof list);
            return usage_fail(&o, "--%s is for %s --target %s (not %s)", mine->name, list, o.target, o.cmd);
        }
    }
    if (o.delta_from && o.no_delta)
        return usage_fail(&o, "--delta-from and --no-delta exclude each other");
    char why[512];
    if (pf_cli_check_target_options(o.target, o.chip, o.reset, o.baud, o.connect_baud, o.port, &o.chip, why,
                                    sizeof why) < 0)
        return usage_fail(&o, "%s", why);
    int nargs = argc - optind;
    char **args = argv + optind;
    pf_cli_interrupt_install();
    if (!strcmp(o.cmd, "flash") || !strcmp(o.cmd, "verify")) {
        if (nargs < 1)
            return usage_fail(&o, "%s needs at least one IMAGE[@ADDR]", o.cmd);
        return do_flash_or_verify(&o, nargs, args);
    }
    if (is_update) {
        if (nargs)
            return usage_fail(&o, "update takes no IMAGE: the manifest names it");
        return do_update(&o);
    }
    if (!strcmp(o.cmd, "read"))
        return do_read(&o, nargs, args);
    if (!strcmp(o.cmd, "erase"))
        return do_erase(&o, nargs, args);
    if (nargs)
        return usage_fail(&o, "info takes no arguments");
    return do_info(&o);
}
