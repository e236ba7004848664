/* peerflash serve: the command line of the network daemon (src/serve/).
 * Only option parsing lives here; the daemon is serve_main(). */
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "cli.h"
#include "peerflash/pf_session.h"
#include "ota_proto.h"
#include "serve.h"

static void usage(FILE *f)
{
    fprintf(f,
            "usage: peerflash serve --target T --port PORT [--name N] [target options]\n"
            "                       [--target T --port PORT ...] [daemon options]\n\n"
            "A daemon that owns the targets and flashes what arrives over the network: an HTTP API\n"
            "with a progress stream, and an upload page at http://ADDR:PORT/. Each upload is buffered\n"
            "and parsed whole before anything is written; then the same job as `peerflash flash`\n"
            "runs (range checks, write, verify, run). One job at a time per target (another request\n"
            "gets HTTP 409 busy); different targets work in parallel.\n\n"
            "SECURITY: by default the daemon listens on 127.0.0.1 only. Listening on another address\n"
            "exposes a flasher to the network: that must be deliberate, and needs --token-file\n"
            "(every /api/ request then needs \"Authorization: Bearer TOKEN\"). Without --tls-cert the\n"
            "API, the token and the images travel in clear: to cross an untrusted network give\n"
            "--tls-cert/--tls-key (HTTPS), or use an SSH tunnel. TLS covers the HTTP API and the page\n"
            "only: espota and the serial bridges stay unencrypted.\n\n"
            "target options (after each --target, for that target):\n"
            "  --target T         protocol:");
    for (size_t i = 0; pf_target_drivers[i]; i++)
        fprintf(f, " %s", pf_target_drivers[i]->name);
    fprintf(f,
            "\n"
            "  --port PORT        serial device, pty path, tcp://HOST:PORT or rfc2217://HOST:PORT; opened\n"
            "                     for each job only\n"
            "  --name N           the name in the API and the page (default: the target word, numbered\n"
            "                     when repeated: avr, avr2)\n"
            "  --baud N, --connect-baud N, --chip NAME, --reset MODE   as for `peerflash flash`\n"
            "  --ota-port N       ArduinoOTA/espota: UDP port for the IDE's invitation (the IDE's usual\n"
            "                     is 8266; one port per target); a raw binary goes to the application\n"
            "                     address below\n"
            "  --bridge-port N    raw TCP serial bridge (ESP-Link style): a client gets the serial port\n"
            "                     byte for byte, the target reset on connect (avrdude -c arduino -P\n"
            "                     net:HOST:N). NO AUTHENTICATION: off unless given, on the --listen\n"
            "                     address only; the target is busy while a client is connected\n"
            "  --rfc2217-port N   RFC 2217 serial bridge (telnet COM-PORT-OPTION, as ser2net): pyserial's\n"
            "                     and esptool's rfc2217://HOST:N clients get the serial port and set its\n"
            "                     rate, frame (8N1/8E1) and DTR/RTS. NO AUTHENTICATION: off unless given,\n"
            "                     on the --listen address only; the target is busy while a client is\n"
            "                     connected\n"
            "  --arduino-ota      serve the Arduino IDE's arduinoOTA tool (the network upload of Arduino's\n"
            "                     AVR core): advertised over mDNS with the HTTP port and the endpoints\n"
            "                     POST /api/targets/NAME/arduino/upload (the .hex), .../sync, .../reset.\n"
            "                     The tool waits 10 s: a longer job is answered 202 and goes on. With\n"
            "                     --token-file the tool must send the token as its -password (Basic\n"
            "                     auth), which the AVR core's stock pattern does not: see docs/SERVE.md.\n"
            "                     Not with --ota-port (that advertises espota for the ESP cores)\n"
            "  --board NAME       the \"board\" the mDNS record tells the Arduino IDE (default: the target)\n"
            "  --no-verify, --no-run, --no-skip, --erase touched|all   as for `peerflash flash`\n"
            "  and the driver's own options (e.g. --no-compress for esp and agent, --read-compare\n"
            "                     for avr; see peerflash flash --help)\n\n");
    fprintf(f,
            "daemon options:\n"
            "  --listen ADDR:PORT HTTP address (default 127.0.0.1:8080; port 0 = any free port, shown\n"
            "                     in the \"ready\" log line)\n"
            "  --token-file F     the API token (first line of F); required to listen beyond loopback\n"
            "  --tls-cert FILE, --tls-key FILE  serve HTTPS (libmicrohttpd's GnuTLS backend) with this PEM\n"
            "                     certificate (chain) and its unencrypted PEM private key; both or\n"
            "                     neither. Checked at start-up: a missing, unreadable or non-PEM file, a\n"
            "                     key that is not the certificate's, or a certificate outside its\n"
            "                     validity period exits 2 before anything listens; a libmicrohttpd\n"
            "                     without TLS exits 1\n"
            "  --ota-password-file F  espota password (first line of F): the IDE must answer the nonce\n"
            "                     challenge (PBKDF2-HMAC-SHA256 from espota 3.3.1+, MD5 from older\n"
            "                     clients); without it any host that reaches the port can flash\n"
            "  --no-mdns          do not advertise the --ota-port and --arduino-ota targets as\n"
            "                     _arduino._tcp (by default they are, through avahi-daemon, when it runs)\n"
            "  --max-body N       largest upload in bytes (K, M suffixes; default 16M)\n"
            "  --max-connections N  simultaneous connections (default 32)\n"
            "  --idle-timeout S   close a connection silent for S seconds, headers included (default 30)\n"
            "  --upload-timeout S a whole upload must arrive within S seconds (default 300)\n"
            "  --grace S          on SIGINT/SIGTERM, running jobs get S seconds to finish before they are\n"
            "                     cancelled (default 30; a second signal cancels at once)\n"
            "  --json-log         log one JSON object per line instead of text\n"
            "  -v, --verbose      protocol trace of the jobs in the log\n"
            "  -h, --help         this help\n\n"
            "API: GET /api/targets; POST /api/targets/NAME/flash|verify (body: the image, raw or\n"
            "multipart field \"image\"; ?address=0x...&format=auto|bin|hex|srec|elf), POST .../run,\n"
            ".../info; GET .../events (Server-Sent Events). A raw binary without an address goes to\n"
            "the target's application address (avr 0, stm32 0x08000000, esp 0x10000, agent 0).\n"
            "Results carry the fields of `peerflash flash --json`. See docs/SERVE.md.\n");
}

static int parse_num(const char *s, unsigned long long max, unsigned long long *out)
{
    char *end = NULL;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 0);
    if (end && (*end == 'k' || *end == 'K'))
        v *= 1024, end++;
    else if (end && (*end == 'm' || *end == 'M'))
        v *= 1024 * 1024, end++;
    if (errno || !end || end == s || *end || *s == '-' || v > max)
        return -1;
    *out = v;
    return 0;
}

static int read_token(const char *path, char *out, size_t n, const char *opt, size_t min)
{
    FILE *f = fopen(path, "r");
    if (!f) {
        pf_cli_error("%s %s: %s", opt, path, strerror(errno));
        return -1;
    }
    struct stat sb;
    if (fstat(fileno(f), &sb) == 0 && (sb.st_mode & 077))
        fprintf(stderr, "peerflash: warning: %s %s can be read by other users (chmod 600 it)\n", opt, path);
    char line[512];
    if (!fgets(line, sizeof line, f))
        line[0] = 0;
    fclose(f);
    size_t len = strlen(line);
    while (len && isspace((unsigned char)line[len - 1]))
        line[--len] = 0;
    if (len < min || len >= n) {
        pf_cli_error("%s %s: the secret on its first line must have %zu to %zu characters", opt, path, min, n - 1);
        return -1;
    }
    for (size_t i = 0; i < len; i++)
        if (!isgraph((unsigned char)line[i])) {
            pf_cli_error("%s %s: the secret may not contain spaces or control characters", opt, path);
            return -1;
        }
    memcpy(out, line, len + 1);
    return 0;
}

static int is_loopback(const char *addr)
{
    return !strncmp(addr, "127.", 4) || !strcmp(addr, "::1") || !strcmp(addr, "localhost");
}

int pf_cmd_serve(int argc, char **argv)
{
    static serve_config cfg;
    static char names[SERVE_MAX_TARGETS][40];
    static char listen_host[64];
    memset(&cfg, 0, sizeof cfg);
    cfg.listen_addr = "127.0.0.1";
    cfg.listen_port = 8080;
    cfg.max_body = 16u * 1024 * 1024;
    cfg.max_connections = 32;
    cfg.idle_timeout_s = 30;
    cfg.upload_timeout_s = 300;
    cfg.grace_s = 30;
    cfg.mdns = 1;
    serve_target_cfg *cur = NULL;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        unsigned long long num;
#define NEED_VALUE()                                                                                                   \
    do {                                                                                                               \
        if (!v) {                                                                                                      \
            pf_cli_error("%s needs a value (see peerflash serve --help)", a);                                          \
            return PF_EXIT_USAGE;                                                                                      \
        }                                                                                                              \
        i++;                                                                                                           \
    } while (0)
#define NEED_TARGET()                                                                                                  \
    do {                                                                                                               \
        if (!cur) {                                                                                                    \
            pf_cli_error("%s belongs to a target: give --target T --port PORT first", a);                             \
            return PF_EXIT_USAGE;                                                                                      \
        }                                                                                                              \
    } while (0)
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            usage(stdout);
            return PF_EXIT_OK;
        } else if (!strcmp(a, "--target")) {
            NEED_VALUE();
            if (cfg.ntargets == SERVE_MAX_TARGETS) {
                pf_cli_error("at most %d targets", SERVE_MAX_TARGETS);
                return PF_EXIT_USAGE;
            }
            if (!pf_target_find(v)) {
                pf_cli_error("--target: unknown target '%s' (see peerflash serve --help)", v);
                return PF_EXIT_USAGE;
            }
            cur = &cfg.targets[cfg.ntargets++];
            cur->driver = v;
            cur->verify = cur->run = cur->skip = 1;
        } else if (!strcmp(a, "--port")) {
            NEED_VALUE();
            NEED_TARGET();
            cur->port = v;
        } else if (!strcmp(a, "--name")) {
            NEED_VALUE();
            NEED_TARGET();
            size_t n = strlen(v);
            int okname = n > 0 && n < sizeof names[0];
            for (size_t k = 0; okname && k < n; k++)
                okname = isalnum((unsigned char)v[k]) || v[k] == '-' || v[k] == '_' || v[k] == '.';
            if (!okname) {
                pf_cli_error("--name '%s': use 1 to %zu letters, digits, '-', '_' or '.'", v, sizeof names[0] - 1);
                return PF_EXIT_USAGE;
            }
            cur->name = v;
        } else if (!strcmp(a, "--baud") || !strcmp(a, "--connect-baud")) {
            NEED_VALUE();
            NEED_TARGET();
            if (parse_num(v, 0xFFFFFFFFu, &num) || !num) {
                pf_cli_error("%s takes a line rate in bit/s, not '%s'", a, v);
                return PF_EXIT_USAGE;
            }
            *(a[2] == 'b' ? &cur->baud : &cur->connect_baud) = (uint32_t)num;
        } else if (!strcmp(a, "--chip")) {
            NEED_VALUE();
            NEED_TARGET();
            cur->chip = v;
        } else if (!strcmp(a, "--reset")) {
            NEED_VALUE();
            NEED_TARGET();
            cur->reset = v;
        } else if (!strcmp(a, "--erase")) {
            NEED_VALUE();
            NEED_TARGET();
            if (strcmp(v, "touched") && strcmp(v, "all")) {
                pf_cli_error("--erase takes 'touched' or 'all', not '%s'", v);
                return PF_EXIT_USAGE;
            }
            cur->erase_all = !strcmp(v, "all");
        } else if (!strcmp(a, "--no-verify") || !strcmp(a, "--no-run") || !strcmp(a, "--no-skip")) {
            NEED_TARGET();
            if (!strcmp(a, "--no-verify"))
                cur->verify = 0;
            else if (!strcmp(a, "--no-run"))
                cur->run = 0;
            else
                cur->skip = 0;
        } else if (!strcmp(a, "--ota-port")) {
            NEED_VALUE();
            NEED_TARGET();
            if (parse_num(v, 65535, &num) || !num) {
                pf_cli_error("--ota-port takes a UDP port number (1-65535), not '%s'", v);
                return PF_EXIT_USAGE;
            }
            cur->ota_port = (uint16_t)num;
        } else if (!strcmp(a, "--bridge-port")) {
            NEED_VALUE();
            NEED_TARGET();
            if (parse_num(v, 65535, &num) || !num) {
                pf_cli_error("--bridge-port takes a TCP port number (1-65535), not '%s'", v);
                return PF_EXIT_USAGE;
            }
            cur->bridge_port = (uint16_t)num;
        } else if (!strcmp(a, "--rfc2217-port")) {
            NEED_VALUE();
            NEED_TARGET();
            if (parse_num(v, 65535, &num) || !num) {
                pf_cli_error("--rfc2217-port takes a TCP port number (1-65535), not '%s'", v);
                return PF_EXIT_USAGE;
            }
            cur->rfc2217_port = (uint16_t)num;
        } else if (!strcmp(a, "--arduino-ota")) {
            NEED_TARGET();
            cur->arduino_ota = 1;
        } else if (!strcmp(a, "--board")) {
            NEED_VALUE();
            NEED_TARGET();
            cur->board = v;
        } else if (!strcmp(a, "--no-mdns")) {
            cfg.mdns = 0;
        } else if (!strcmp(a, "--ota-password-file")) {
            NEED_VALUE();
            char pw[256];
            if (read_token(v, pw, sizeof pw, "--ota-password-file", 1) < 0)
                return PF_EXIT_USAGE;
            /* the protocol works on hashes of the password, never the password */
            pf_ota_md5_hex(pw, strlen(pw), cfg.ota_password_md5);
            pf_ota_sha256_hex(pw, strlen(pw), cfg.ota_password_sha256);
            memset(pw, 0, sizeof pw);
        } else if (!strcmp(a, "--listen")) {
            NEED_VALUE();
            const char *colon = strrchr(v, ':');
            if (!colon || colon == v || (size_t)(colon - v) >= sizeof listen_host ||
                parse_num(colon + 1, 65535, &num)) {
                pf_cli_error("--listen takes ADDR:PORT (127.0.0.1:8080, [::1]:8080), not '%s'", v);
                return PF_EXIT_USAGE;
            }
            const char *h = v;
            size_t hl = (size_t)(colon - v);
            if (h[0] == '[' && hl > 2 && h[hl - 1] == ']')
                h++, hl -= 2;
            memcpy(listen_host, h, hl);
            listen_host[hl] = 0;
            cfg.listen_addr = listen_host;
            cfg.listen_port = (uint16_t)num;
        } else if (!strcmp(a, "--token-file")) {
            NEED_VALUE();
            if (read_token(v, cfg.token, sizeof cfg.token, "--token-file", 8) < 0)
                return PF_EXIT_USAGE;
        } else if (!strcmp(a, "--tls-cert") || !strcmp(a, "--tls-key")) {
            NEED_VALUE();
            *(a[6] == 'c' ? &cfg.tls_cert_path : &cfg.tls_key_path) = v;
        } else if (!strcmp(a, "--max-body")) {
            NEED_VALUE();
            if (parse_num(v, 1ull << 30, &num) || !num) {
                pf_cli_error("--max-body takes a size in bytes up to 1G (K, M suffixes), not '%s'", v);
                return PF_EXIT_USAGE;
            }
            cfg.max_body = (size_t)num;
        } else if (!strcmp(a, "--max-connections") || !strcmp(a, "--idle-timeout") ||
                   !strcmp(a, "--upload-timeout") || !strcmp(a, "--grace")) {
            NEED_VALUE();
            if (parse_num(v, 100000, &num) || (!num && strcmp(a, "--grace"))) {
                pf_cli_error("%s takes a positive number, not '%s'", a, v);
                return PF_EXIT_USAGE;
            }
            if (a[2] == 'm')
                cfg.max_connections = (unsigned)num;
            else if (a[2] == 'i')
                cfg.idle_timeout_s = (unsigned)num;
            else if (a[2] == 'u')
                cfg.upload_timeout_s = (unsigned)num;
            else
                cfg.grace_s = (unsigned)num;
        } else if (!strcmp(a, "--json-log")) {
            cfg.json_log = 1;
        } else if (!strcmp(a, "-v") || !strcmp(a, "--verbose")) {
            cfg.verbose++;
        } else if (cur && !strncmp(a, "--", 2) && a[2]) {
            /* the driver's own options (its table: --no-compress, --read-compare, ...) */
            const pf_target_ops *ops = pf_target_find(cur->driver);
            const pf_target_option *o = pf_target_option_find(ops, a + 2, strlen(a + 2));
            if (!o) {
                pf_cli_error("serve: unknown option '%s' (for --target %s; see peerflash serve --help)", a,
                             cur->driver);
                return PF_EXIT_USAGE;
            }
            if (o->flags & PF_OPT_HOST) {
                pf_cli_error("%s is not available in serve (it needs a file on this host per job)", a);
                return PF_EXIT_USAGE;
            }
            if (cur->noptions == SERVE_MAX_OPTIONS) {
                pf_cli_error("at most %d driver options per target", SERVE_MAX_OPTIONS);
                return PF_EXIT_USAGE;
            }
            char *word;
            if (o->arg) {
                NEED_VALUE();
                if (asprintf(&word, "%s=%s", o->name, v) < 0)
                    return PF_EXIT_FAIL;
            } else if (!(word = strdup(o->name))) {
                return PF_EXIT_FAIL;
            }
            cur->options[cur->noptions++] = word; /* lives as long as the daemon */
        } else {
            pf_cli_error("serve: unknown option '%s' (see peerflash serve --help)", a);
            return PF_EXIT_USAGE;
        }
    }
    if (!cfg.ntargets) {
        pf_cli_error("serve needs at least one --target T --port PORT");
        return PF_EXIT_USAGE;
    }
    for (int i = 0; i < cfg.ntargets; i++) {
        serve_target_cfg *t = &cfg.targets[i];
        if (!t->port) {
            pf_cli_error("--target %s (target %d) has no --port", t->driver, i + 1);
            return PF_EXIT_USAGE;
        }
        if (!strncmp(t->port, "pty:", 4) || !strncmp(t->port, "tcp-listen:", 11)) {
            pf_cli_error("--port %s: serve opens an existing port for each job (not pty: or tcp-listen:)", t->port);
            return PF_EXIT_USAGE;
        }
        char why[512];
        const char *entry = NULL;
        if (pf_cli_check_target_options(t->driver, t->chip, t->reset, t->baud, t->connect_baud, t->port, &entry, why,
                                        sizeof why) < 0) {
            pf_cli_error("target %d (%s): %s", i + 1, t->driver, why);
            return PF_EXIT_USAGE;
        }
        if (entry)
            t->chip = entry;
        pf_diag od = {0};
        if (pf_target_check_options(pf_target_find(t->driver), t->options, 0, &od) < 0) {
            pf_cli_error("target %d (%s): %s", i + 1, t->driver, od.text);
            return PF_EXIT_USAGE;
        }
        if (!t->name) {
            int k = 0;
            for (int j = 0; j < i; j++)
                k += !strcmp(cfg.targets[j].driver, t->driver);
            if (k)
                snprintf(names[i], sizeof names[i], "%s%d", t->driver, k + 1);
            else
                snprintf(names[i], sizeof names[i], "%s", t->driver);
            t->name = names[i];
        }
        for (int j = 0; j < i; j++) {
            if (!strcmp(cfg.targets[j].name, t->name)) {
                pf_cli_error("two targets are named '%s': give each its own --name", t->name);
                return PF_EXIT_USAGE;
            }
            if (!strcmp(cfg.targets[j].port, t->port)) {
                pf_cli_error("two targets on %s: one port is one board", t->port);
                return PF_EXIT_USAGE;
            }
        }
    }
    for (int i = 0; i < cfg.ntargets; i++)
        for (int j = 0; j < i && cfg.targets[i].ota_port; j++)
            if (cfg.targets[j].ota_port == cfg.targets[i].ota_port) {
                pf_cli_error("--ota-port %u is given to two targets: one port per target", cfg.targets[i].ota_port);
                return PF_EXIT_USAGE;
            }
    for (int i = 0; i < cfg.ntargets; i++) {
        if (cfg.targets[i].bridge_port && !strncmp(cfg.targets[i].port, "rfc2217://", 10)) {
            pf_cli_error("--bridge-port: the port of %s is an RFC 2217 server; a raw bridge needs a serial device, a "
                         "pty or tcp://", cfg.targets[i].name);
            return PF_EXIT_USAGE;
        }
        /* every bridge listener (raw and RFC 2217, all targets) needs its own TCP port */
        const serve_target_cfg *ti = &cfg.targets[i];
        if (ti->bridge_port && ti->bridge_port == ti->rfc2217_port) {
            pf_cli_error("--bridge-port and --rfc2217-port of %s are both %u: each bridge needs its own port", ti->name,
                         ti->bridge_port);
            return PF_EXIT_USAGE;
        }
        for (int j = 0; j < i; j++) {
            const serve_target_cfg *tj = &cfg.targets[j];
            uint16_t mine[2] = {ti->bridge_port, ti->rfc2217_port}, theirs[2] = {tj->bridge_port, tj->rfc2217_port};
            for (int a2 = 0; a2 < 2; a2++)
                for (int b2 = 0; b2 < 2; b2++)
                    if (mine[a2] && mine[a2] == theirs[b2]) {
                        pf_cli_error("TCP port %u is given to two bridges (%s of %s, %s of %s): one port per bridge",
                                     mine[a2], b2 ? "--rfc2217-port" : "--bridge-port", tj->name,
                                     a2 ? "--rfc2217-port" : "--bridge-port", ti->name);
                        return PF_EXIT_USAGE;
                    }
        }
    }
    for (int i = 0; i < cfg.ntargets; i++) {
        const serve_target_cfg *t = &cfg.targets[i];
        if (!t->arduino_ota)
            continue;
        if (t->ota_port) {
            pf_cli_error("%s: --arduino-ota and --ota-port both advertise the target to the Arduino IDE: give "
                         "--ota-port for boards of the ESP cores (espota), --arduino-ota for boards whose core uploads "
                         "with arduinoOTA (Arduino's AVR core)", t->name);
            return PF_EXIT_USAGE;
        }
        /* the name goes into URLs and mDNS TXT values the IDE splits on '=' and spaces */
        if (strspn(t->name, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._-") != strlen(t->name)) {
            pf_cli_error("--arduino-ota: the name '%s' must be letters, digits, '.', '_' and '-' only (it becomes "
                         "part of the upload URL the IDE reads from mDNS)", t->name);
            return PF_EXIT_USAGE;
        }
    }
    int any_ota = 0;
    for (int i = 0; i < cfg.ntargets; i++)
        any_ota |= cfg.targets[i].ota_port != 0;
    if (!is_loopback(cfg.listen_addr) && any_ota && !cfg.ota_password_md5[0]) {
        pf_cli_error("--listen %s with --ota-port: give --ota-password-file, or anyone on the network can flash",
                     cfg.listen_addr);
        return PF_EXIT_USAGE;
    }
    if (!is_loopback(cfg.listen_addr) && !cfg.token[0]) {
        pf_cli_error("--listen %s reaches beyond this machine: give --token-file so that only holders of the token "
                     "can flash (see peerflash serve --help)", cfg.listen_addr);
        return PF_EXIT_USAGE;
    }
    char why[600];
    int tr = serve_tls_load(&cfg, why, sizeof why);
    if (tr != PF_EXIT_OK) {
        pf_cli_error("%s", why);
        return tr;
    }
    for (int i = 0; i < cfg.ntargets; i++)
        if (cfg.targets[i].arduino_ota && cfg.tls_cert) {
            fprintf(stderr, "peerflash: warning: --arduino-ota with --tls-cert: the Arduino AVR core's arduinoOTA "
                            "pattern speaks plain http (it would need -ssl 1 and to trust the certificate)\n");
            break;
        }
    return serve_main(&cfg);
}
