/* `peerflash wire`: not built yet (see issue 2). */
#include "cli.h"

int pf_cmd_wire(int argc, char **argv)
{
    (void)argc;
    (void)argv;
    pf_cli_error("'wire' is not built yet");
    return PF_EXIT_FAIL;
}
