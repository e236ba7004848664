/* peerflash: the command-line front end. Dispatches to one subcommand. */
#include <stdio.h>
#include <string.h>

#include "cli.h"

int pf_cmd_sign(int argc, char **argv); /* cmd_sign.c: sign and keygen */
int pf_cmd_diff(int argc, char **argv); /* cmd_diff.c */
int pf_cmd_serve(int argc, char **argv); /* cmd_serve.c: the network daemon (src/serve/) */
static const pf_cli_command commands[] = {
    {"flash", pf_cmd_flash, "write images to a target, verify, optionally run"},
    {"verify", pf_cmd_flash, "compare a target's flash with images"},
    {"update", pf_cmd_flash, "update targets from a signed manifest (skips those already up to date)"},
    {"read", pf_cmd_flash, "read target flash to a file"},
    {"erase", pf_cmd_flash, "erase a range or the whole chip"},
    {"info", pf_cmd_flash, "identify the chip, flash size and bootloader"},
    {"ports", pf_cmd_ports, "list serial ports with USB VID:PID and serial number"},
    {"wire", pf_cmd_wire, "link emulator: join two endpoints at a real line rate, with faults"},
    {"sim", pf_cmd_sim, "run a simulated target (bootloader) on a pty or socket"},
    {"sign", pf_cmd_sign, "make an MCUboot-layout image for the agent (SHA-256, ECDSA-P256)"},
    {"keygen", pf_cmd_sign, "new ECDSA-P256 signing key for the agent's images"},
    {"serve", pf_cmd_serve, "network daemon: HTTP API and upload page that flash the targets it owns"},
    {"diff", pf_cmd_diff, "delta patch from one agent image to the next (what --delta-from sends)"},
};

static void usage(FILE *f)
{
    fprintf(f, "peerflash %s: program a microcontroller's flash from this machine\n\n", PEERFLASH_VERSION);
    fprintf(f, "usage: peerflash COMMAND [OPTIONS]   (peerflash help COMMAND, or COMMAND --help, for each)\n"
               "       peerflash -V | --version\n\ncommands:\n");
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
        fprintf(f, "  %-8s %s\n", commands[i].name, commands[i].summary);
    fprintf(f, "\ntargets (--target):");
    for (size_t i = 0; pf_target_drivers[i]; i++)
        fprintf(f, " %s", pf_target_drivers[i]->name);
    fprintf(f, "\nports (--port): /dev/ttyUSB0, a pty path, tcp://HOST:PORT, rfc2217://HOST:PORT,\n"
               "tcp-listen://PORT\n"
               "(sim and wire endpoints also take pty:PATH: a new pty linked at PATH)\n");
    fprintf(f, "\nexit status: 0 success, 1 other failure, 2 usage, 3 image (unreadable, malformed,\n"
               "out of range), 4 link (cannot open, no answer, lost), 5 target refused (wrong chip,\n"
               "protected, unsupported), 6 verify mismatch, 130/143 interrupted (SIGINT/SIGTERM)\n");
}

int main(int argc, char **argv)
{
    if (argc >= 3 && !strcmp(argv[1], "help")) { /* peerflash help COMMAND = peerflash COMMAND --help */
        for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
            if (!strcmp(argv[2], commands[i].name)) {
                char *help_argv[] = {argv[2], "--help", NULL};
                return commands[i].fn(2, help_argv);
            }
        pf_cli_error("no command '%s' to explain (see peerflash --help)", argv[2]);
        return PF_EXIT_USAGE;
    }
    if (argc < 2 || !strcmp(argv[1], "--help") || !strcmp(argv[1], "-h") || !strcmp(argv[1], "help")) {
        usage(stdout);
        return argc < 2 ? PF_EXIT_USAGE : PF_EXIT_OK;
    }
    if (!strcmp(argv[1], "--version") || !strcmp(argv[1], "-V")) {
        printf("peerflash %s\n", PEERFLASH_VERSION);
        return PF_EXIT_OK;
    }
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
        if (!strcmp(argv[1], commands[i].name))
            return commands[i].fn(argc - 1, argv + 1);
    pf_cli_error("unknown command '%s' (see peerflash --help)", argv[1]);
    return PF_EXIT_USAGE;
}
