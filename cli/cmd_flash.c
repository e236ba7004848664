/* flash, verify, read, erase, info: not built yet (see issue 2). */
#include "cli.h"

int pf_cmd_flash(int argc, char **argv)
{
    (void)argc;
    pf_cli_error("'%s' is not built yet", argv[0]);
    return PF_EXIT_FAIL;
}
