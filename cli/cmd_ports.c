/* `peerflash ports [--json]`: serial ports with USB VID:PID, serial number,
 * manufacturer and description. No ports is not an error. */
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "peerflash/pf_posix.h"

#define MAX_PORTS 256

int pf_cmd_ports(int argc, char **argv)
{
    int json = 0;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--json"))
            json = 1;
        else if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
            printf("usage: peerflash ports [--json]\n\n"
                   "Lists serial ports: path, USB VID:PID, serial number, manufacturer and\n"
                   "description (through libserialport). Pseudo-terminals are not listed.\n"
                   "--json prints one object {\"ports\": [...]} on stdout. Finding no port is not\n"
                   "an error (exit 0); exit 4 if the system cannot be asked.\n");
            return PF_EXIT_OK;
        } else {
            pf_cli_error("ports: unknown option '%s' (see peerflash ports --help)", argv[i]);
            return PF_EXIT_USAGE;
        }
    }
    static struct pf_port_listing ports[MAX_PORTS];
    pf_diag diag = {0};
    int n = pf_posix_list_ports(ports, MAX_PORTS, &diag);
    if (n < 0) {
        pf_cli_error("ports: %s", diag.text[0] ? diag.text : pf_strerror(n));
        return pf_exit_status(n);
    }
    if (json) {
        printf("{\"ports\": [");
        for (int i = 0; i < n; i++) {
            const struct pf_port_listing *p = &ports[i];
            printf("%s\n  {\"path\": ", i ? "," : "");
            pf_json_string(stdout, p->path);
            printf(", \"usb\": %s", p->usb ? "true" : "false");
            if (p->usb) {
                printf(", \"vid\": \"%04x\", \"pid\": \"%04x\", \"serial\": ", p->vid, p->pid);
                pf_json_string(stdout, p->serial);
                printf(", \"manufacturer\": ");
                pf_json_string(stdout, p->manufacturer);
            }
            printf(", \"description\": ");
            pf_json_string(stdout, p->description);
            printf("}");
        }
        printf("%s]}\n", n ? "\n" : "");
        return PF_EXIT_OK;
    }
    if (n == 0) {
        printf("no serial ports found\n");
        return PF_EXIT_OK;
    }
    for (int i = 0; i < n; i++) {
        const struct pf_port_listing *p = &ports[i];
        if (p->usb)
            printf("%-20s USB %04x:%04x  serial %-16s %s%s%s\n", p->path, p->vid, p->pid,
                   p->serial[0] ? p->serial : "-", p->manufacturer, p->manufacturer[0] ? " " : "", p->description);
        else
            printf("%-20s %s\n", p->path, p->description);
    }
    return PF_EXIT_OK;
}
