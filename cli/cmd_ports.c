/* `peerflash ports`: not built yet (see issue 2). */
#include "cli.h"

int pf_cmd_ports(int argc, char **argv)
{
    (void)argc;
    (void)argv;
    pf_cli_error("'ports' is not built yet");
    return PF_EXIT_FAIL;
}
