/* What every `peerflash sim X` command and `peerflash wire` do around
 * pf_sim_X_run: a stop flag that SIGINT, SIGTERM and SIGHUP set (the run
 * then ends through its normal path, removing its pty link), and SIGPIPE
 * ignored (a peer that goes away is a closed link, not a dead process).
 * Header-only: each command file has its own flag. */
#ifndef PEERFLASH_SIM_COMMAND_H
#define PEERFLASH_SIM_COMMAND_H

#include <signal.h>
#include <string.h>

static volatile sig_atomic_t pf_sim_command_stop;

static void pf_sim_command_on_signal(int sig)
{
    (void)sig;
    pf_sim_command_stop = 1;
}

/* Installs the handlers; returns the flag to pass to pf_sim_X_run. */
static inline volatile sig_atomic_t *pf_sim_command_signals(void)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = pf_sim_command_on_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGHUP, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);
    return &pf_sim_command_stop;
}

#endif
