/* Error printing, progress display and JSON helpers. */
#include <stdarg.h>
#include <stdio.h>
#include <unistd.h>

#include "cli.h"
#include "peerflash/pf_posix.h"

void pf_cli_error(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fputs("peerflash: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
}

void pf_cli_progress_init(pf_cli_progress *p, int quiet)
{
    p->tty = isatty(STDERR_FILENO);
    p->quiet = quiet;
    p->started = 0;
    p->last_phase = -1;
    p->last_decile = -1;
    p->phase_start_us = pf_posix_now_us();
    p->last_draw_us = 0;
}

static void draw_bar(pf_phase phase, uint32_t done, uint32_t total, double secs)
{
    const int width = 30;
    int fill = total ? (int)((uint64_t)done * width / total) : width;
    char bar[64];
    for (int i = 0; i < width; i++)
        bar[i] = i < fill ? '#' : '.';
    bar[width] = '\0';
    double rate = secs > 0 ? done / secs / 1024.0 : 0;
    fprintf(stderr, "\r%-7s [%s] %3u%% %8u/%u B %7.1f KiB/s", pf_phase_name(phase), bar,
            total ? (unsigned)((uint64_t)done * 100 / total) : 100u, done, total, rate);
    fflush(stderr);
}

void pf_cli_progress_cb(void *user, pf_phase phase, uint32_t done, uint32_t total)
{
    pf_cli_progress *p = user;
    p->started = 1;
    p->phase = phase;
    p->done = done;
    p->total = total;
    if (p->quiet)
        return;
    uint64_t now = pf_posix_now_us();
    if ((int)phase != p->last_phase) {
        if (p->tty && p->last_phase >= 0)
            fputc('\n', stderr);
        p->last_phase = (int)phase;
        p->last_decile = -1;
        p->phase_start_us = now;
        p->last_draw_us = 0;
    }
    double secs = (double)(now - p->phase_start_us) / 1e6;
    if (phase >= PF_PHASE_REBOOT) { /* steps of the agent's run(): one line each */
        const char *line = NULL;
        if (phase == PF_PHASE_REBOOT && done == 0)
            line = "reboot: asking the device to restart";
        else if (phase == PF_PHASE_INSTALL && done == 0)
            line = "install: the bootloader checks and installs the new image...";
        else if (phase == PF_PHASE_INSTALL)
            fprintf(stderr, "install: done, the device is back after %.1f s\n", secs);
        else if (phase == PF_PHASE_TRIAL)
            line = "trial: the new image runs on trial and answers";
        else if (phase == PF_PHASE_CONFIRM && done == total)
            line = "confirm: the new image is permanent";
        if (line)
            fprintf(stderr, "%s\n", line);
        if (done == total)
            p->last_phase = -1;
        return;
    }
    if (phase == PF_PHASE_RUN) {
        if (done == 0)
            fprintf(stderr, "run: starting the application\n");
        p->last_phase = -1; /* nothing to redraw */
        return;
    }
    if (p->tty) {
        if (done == total || now - p->last_draw_us > 100000) {
            draw_bar(phase, done, total, secs);
            p->last_draw_us = now;
        }
        return;
    }
    int decile = total ? (int)((uint64_t)done * 10 / total) : 10;
    if (decile != p->last_decile) {
        p->last_decile = decile;
        fprintf(stderr, "%s: %u/%u bytes (%d%%) %.1f s\n", pf_phase_name(phase), done, total, decile * 10, secs);
    }
}

void pf_cli_progress_end(pf_cli_progress *p)
{
    if (!p->quiet && p->tty && p->last_phase >= 0)
        fputc('\n', stderr);
    p->last_phase = -1;
}
