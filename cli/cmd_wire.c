/* `peerflash wire`: the link emulator as a command (engine in sim/wire.c). */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "sim_command.h"
#include "wire.h"


static void usage(FILE *f)
{
    fprintf(f,
            "usage: peerflash wire --a SPEC --b SPEC [options]\n"
            "\n"
            "Joins two endpoints like a serial cable between two UARTs: bytes take their real\n"
            "line time, each direction on its own, with optional latency and seeded faults.\n"
            "\n"
            "SPEC:\n"
            "  pty:PATH           create a pty and symlink its slave at PATH (removed at exit)\n"
            "  PATH               an existing tty/pty is opened (raw); if PATH does not exist,\n"
            "                     same as pty:PATH\n"
            "  tcp-listen://PORT  listen on 127.0.0.1:PORT, one peer at a time\n"
            "  tcp://HOST:PORT    connect (reconnects every 0.5 s if dropped)\n"
            "  rfc2217://HOST:PORT\n"
            "                     connect to an RFC 2217 server (ser2net...): --baud and --frame\n"
            "                     are set on its port (follow: left as they are); reconnects\n"
            "                     like tcp://, and an open of the other side reconnects it (the\n"
            "                     server reopens its port: DTR on a real one, reset on a sim)\n"
            "A pty side nobody holds open is closed: bytes for it are discarded, as on a real\n"
            "port nobody has open; programs may open and close it any number of times. A new\n"
            "pty starts raw at the --baud rate with reads timing out after 0.5 s (VTIME 5),\n"
            "for tools that skip port setup (stm32flash -b 0).\n"
            "\n");
    fprintf(f, /* in parts: C11 compilers need only take 4095-character literals */
            "options:\n"
            "  --baud N|follow    line rate in bit/s (default 115200): the link's own UARTs run\n"
            "                     at N (a pinned USB-UART bridge, ESP-Link, a radio link). A side\n"
            "                     whose program set another rate with termios is out of step: the\n"
            "                     line samples what it sends at N, it samples what it is sent at\n"
            "                     its rate, and reads framing garbage (a 921600 side behind a\n"
            "                     115200 line reads only 0x80s). A side without termios (TCP,\n"
            "                     rfc2217) or whose program never set a rate runs at N.\n"
            "                     follow: no line rate of its own; each side's rate is what its\n"
            "                     program set; while the two differ, the receiver samples the\n"
            "                     sender's waveform at its own rate and reads framing garbage,\n"
            "                     and delivery runs at the sender's rate. A side without termios\n"
            "                     (TCP) takes the other side's rate. Bytes sent out of step are\n"
            "                     counted (rate_mismatch). (Parity is not observable on a pty:\n"
            "                     it comes from --frame.)\n"
            "  --autobaud a|b|both\n"
            "                     with --baud follow: that side detects the rate like an STM32\n"
            "                     bootloader: after each (re)open of the side, or an open\n"
            "                     propagated to it, the first byte sent to it sets its rate\n"
            "                     (written into its termios, where its program can read it); the\n"
            "                     rate then stays locked until the next (re)open\n"
            "  --frame 8N1|8E1    bits per byte on the line: 10 or 11 (default 8N1)\n"
            "  --latency-ms N     one-way latency added to every byte (also --latency-us N)\n"
            "  --flip RATE        probability that a data bit is inverted (8 per byte)\n"
            "  --drop RATE        probability that a byte is lost (it still takes its line time)\n"
            "  --burst EVERY:LEN  on average every EVERY bytes, replace LEN consecutive bytes\n"
            "                     with random ones\n"
            "  --cut-after N      after N bytes in total have passed (counted in --cut-dir, dropped\n"
            "                     ones included), cut the cable: those N are delivered, nothing\n"
            "                     more in those directions\n"
            "  --cut-mode M       silent (default): endpoints stay open; close: once the N bytes\n"
            "                     are delivered and read (0.2-2 s), close both endpoints\n"
            "                     (programs see hang-up/EOF) and exit\n"
            "  --cut-dir D        a2b, b2a or both (default)\n"
            "  --seed S           seed of every fault (default 1); same seed, same faults at the\n"
            "                     same byte/bit positions\n"
            "  --no-open-propagation\n"
            "                     by default, when a program opens side A (a pty we created, or a\n"
            "                     peer connects to tcp-listen) and side B is a path we opened\n"
            "                     (e.g. a simulator's pty), B is closed and reopened, so a\n"
            "                     reset-on-open simulator resets as an Arduino does when the host\n"
            "                     opens its port (DTR auto-reset; a pty has no DTR); and the same\n"
            "                     from B to A. Bytes sent to B while it is closed for this wait\n"
            "                     for the reopen (counted as held_reopening), never discarded.\n"
            "                     This option turns that off.\n");
    fprintf(f,
            "  --reopen-gap-ms N  how long the reopened side stays closed (default 50)\n"
            "  --queue N          bytes accepted ahead of the line per direction, bytes in latency\n"
            "                     not counted (default: 250 ms of line time, at least 4096);\n"
            "                     beyond, the sender is held back (its writes block)\n"
            "  --duration S       exit after S seconds (default: run until SIGINT/SIGTERM)\n"
            "  --stats FILE       write statistics as JSON at exit ('-' for stdout)\n"
            "  --quiet            no ready line, events or summary on stderr\n"
            "  --verbose          log opens, closes, reopens and the cut on stderr\n"
            "\n"
            "Once both endpoints exist it prints 'wire: ready ...' on stderr. At exit it prints\n"
            "per direction: bytes in/out, dropped, flipped bits, garbled, rate-mismatch bytes and\n"
            "framing errors, bytes discarded for a closed side, bytes cut, achieved byte rate\n"
            "(bytes out / time from first byte in to last byte out), busy periods of the line,\n"
            "and the worst lateness of a delivery (CPU load shows there, not as rate drift).\n"
            "Exit status: 0 after a signal, --duration or a cut in close mode; 2 usage; 4 an\n"
            "endpoint could not be opened.\n");
}

static int parse_u32(const char *s, uint32_t *out)
{
    char *end;
    errno = 0;
    unsigned long v = strtoul(s, &end, 0);
    if (errno || end == s || *end || v > 0xFFFFFFFFul || s[0] == '-')
        return -1;
    *out = (uint32_t)v;
    return 0;
}

static int parse_rate(const char *s, double *out)
{
    char *end;
    double v = strtod(s, &end);
    if (end == s || *end || !(v >= 0 && v <= 1))
        return -1;
    *out = v;
    return 0;
}

static void log_stderr(void *user, const char *msg)
{
    (void)user;
    fprintf(stderr, "wire: %s\n", msg);
}

int pf_cmd_wire(int argc, char **argv)
{
    pf_wire_config cfg = PF_WIRE_CONFIG_DEFAULT();
    const char *stats_file = NULL;
    int quiet = 0, verbose = 0;
    double duration = 0;
    for (int i = 1; i < argc; i++) {
        const char *o = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        int takes = 1;
        if (!strcmp(o, "--help") || !strcmp(o, "-h")) {
            usage(stdout);
            return PF_EXIT_OK;
        } else if (!strcmp(o, "--quiet") || !strcmp(o, "-q")) {
            quiet = 1;
            takes = 0;
        } else if (!strcmp(o, "--verbose") || !strcmp(o, "-v")) {
            verbose = 1;
            takes = 0;
        } else if (!strcmp(o, "--no-open-propagation")) {
            cfg.open_propagation = 0;
            takes = 0;
        }
        if (!takes)
            continue;
        if (!v) {
            pf_cli_error("wire: %s needs a value (see peerflash wire --help)", o);
            return PF_EXIT_USAGE;
        }
        int bad = 0;
        uint32_t u = 0;
        if (!strcmp(o, "--a"))
            cfg.a = v;
        else if (!strcmp(o, "--b"))
            cfg.b = v;
        else if (!strcmp(o, "--baud")) {
            if (!strcmp(v, "follow"))
                cfg.follow = 1;
            else if (parse_u32(v, &cfg.baud) || !cfg.baud)
                bad = 1;
        } else if (!strcmp(o, "--frame"))
            bad = pf_wire_parse_frame(v, &cfg.frame) != 0;
        else if (!strcmp(o, "--latency-ms")) {
            bad = parse_u32(v, &u) || u > 3600000u;
            cfg.latency_us = u * 1000u;
        } else if (!strcmp(o, "--latency-us"))
            bad = parse_u32(v, &cfg.latency_us);
        else if (!strcmp(o, "--flip"))
            bad = parse_rate(v, &cfg.flip_rate);
        else if (!strcmp(o, "--drop"))
            bad = parse_rate(v, &cfg.drop_rate);
        else if (!strcmp(o, "--burst")) {
            unsigned every, len;
            char tail;
            bad = sscanf(v, "%u:%u%c", &every, &len, &tail) != 2 || !every || !len;
            cfg.burst_every = every;
            cfg.burst_len = len;
        } else if (!strcmp(o, "--cut-after")) {
            char *end;
            long long n = strtoll(v, &end, 0);
            bad = end == v || *end || n < 0;
            cfg.cut_after = n;
        } else if (!strcmp(o, "--cut-mode")) {
            if (!strcmp(v, "silent"))
                cfg.cut_mode = PF_WIRE_CUT_SILENT;
            else if (!strcmp(v, "close"))
                cfg.cut_mode = PF_WIRE_CUT_CLOSE;
            else
                bad = 1;
        } else if (!strcmp(o, "--cut-dir")) {
            if (!strcmp(v, "a2b"))
                cfg.cut_dirs = PF_WIRE_DIR_A2B;
            else if (!strcmp(v, "b2a"))
                cfg.cut_dirs = PF_WIRE_DIR_B2A;
            else if (!strcmp(v, "both"))
                cfg.cut_dirs = PF_WIRE_DIR_BOTH;
            else
                bad = 1;
        } else if (!strcmp(o, "--autobaud")) {
            if (!strcmp(v, "a"))
                cfg.autobaud = 1u;
            else if (!strcmp(v, "b"))
                cfg.autobaud = 2u;
            else if (!strcmp(v, "both"))
                cfg.autobaud = 3u;
            else
                bad = 1;
        } else if (!strcmp(o, "--seed")) {
            char *end;
            cfg.seed = strtoull(v, &end, 0);
            bad = end == v || *end;
        } else if (!strcmp(o, "--reopen-gap-ms"))
            bad = parse_u32(v, &cfg.reopen_gap_ms);
        else if (!strcmp(o, "--queue"))
            bad = parse_u32(v, &cfg.queue_bytes);
        else if (!strcmp(o, "--duration")) {
            char *end;
            duration = strtod(v, &end);
            bad = end == v || *end || !(duration > 0 && duration < 4e6);
            cfg.duration_ms = (uint32_t)(duration * 1000.0 + 0.5);
            if (!cfg.duration_ms)
                cfg.duration_ms = 1;
        } else if (!strcmp(o, "--stats"))
            stats_file = v;
        else {
            pf_cli_error("wire: unknown option '%s' (see peerflash wire --help)", o);
            return PF_EXIT_USAGE;
        }
        if (bad) {
            pf_cli_error("wire: bad value '%s' for %s (see peerflash wire --help)", v, o);
            return PF_EXIT_USAGE;
        }
        i++;
    }
    if (cfg.autobaud && !cfg.follow) {
        pf_cli_error("wire: --autobaud needs --baud follow");
        return PF_EXIT_USAGE;
    }
    if (!cfg.a || !cfg.b) {
        pf_cli_error("wire: --a and --b are required (see peerflash wire --help)");
        return PF_EXIT_USAGE;
    }
    if (verbose && !quiet)
        cfg.log = log_stderr;

    signal(SIGPIPE, SIG_IGN);
    pf_diag diag = {0};
    volatile sig_atomic_t *stop = pf_sim_command_signals();
    pf_wire *w = NULL;
    int rc = pf_wire_open(&w, &cfg, &diag);
    if (rc != 0) {
        pf_cli_error("wire: %s", diag.text[0] ? diag.text : pf_strerror(rc));
        return rc == PF_ERR_ARG ? PF_EXIT_USAGE : PF_EXIT_LINK;
    }

    if (!quiet) {
        /* one write, so that a reader never sees half the line */
        char rate[32], line[900];
        if (cfg.follow)
            snprintf(rate, sizeof rate, "baud follow");
        else
            snprintf(rate, sizeof rate, "%u baud", cfg.baud);
        snprintf(line, sizeof line, "wire: ready: A=%s%s%s B=%s%s%s, %s %s\n", cfg.a,
                 *pf_wire_pty_name(w, 0) ? " -> " : "", pf_wire_pty_name(w, 0), cfg.b,
                 *pf_wire_pty_name(w, 1) ? " -> " : "", pf_wire_pty_name(w, 1), rate,
                 cfg.frame == PF_FRAME_8E1 ? "8E1" : "8N1");
        fputs(line, stderr);
        fflush(stderr);
    }
    rc = pf_wire_run(w, stop);
    pf_wire_stats st;
    pf_wire_get_stats(w, &st);
    if (!quiet)
        pf_wire_stats_text(w, &st, stderr);
    int ex = rc == 0 ? PF_EXIT_OK : PF_EXIT_LINK;
    if (stats_file) {
        FILE *f = strcmp(stats_file, "-") ? fopen(stats_file, "w") : stdout;
        if (!f) {
            pf_cli_error("wire: cannot write %s: %s", stats_file, strerror(errno));
            ex = PF_EXIT_FAIL;
        } else {
            pf_wire_stats_json(w, &st, f);
            if (f != stdout && fclose(f) != 0) {
                pf_cli_error("wire: cannot write %s: %s", stats_file, strerror(errno));
                ex = PF_EXIT_FAIL;
            }
        }
    }
    pf_wire_close(w);
    return ex;
}
