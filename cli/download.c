/* Progress of an image download (http:// or https:// IMAGE) on stderr: a
 * redrawn line on a terminal, else a line at each tenth (or each MiB while
 * the size is unknown). */
#include <stdio.h>
#include <unistd.h>

#include "cli.h"
#include "peerflash/pf_posix.h"

void pf_cli_download_progress(void *user, uint64_t done, uint64_t total)
{
    pf_cli_download *d = user;
    if (d->quiet)
        return;
    uint64_t now = pf_posix_now_us();
    if (!d->started) {
        d->started = 1;
        d->tty = isatty(STDERR_FILENO);
        d->t0_us = now;
        d->last_mark = -1;
    }
    double secs = (double)(now - d->t0_us) / 1e6;
    int finished = total && done == total;
    if (d->tty) {
        if (finished || now - d->last_draw_us > 100000) {
            fprintf(stderr, "\rdownload: %llu/%llu bytes %.1f s", (unsigned long long)done,
                    (unsigned long long)total, secs);
            if (finished)
                fputc('\n', stderr);
            d->last_draw_us = now;
        }
        return;
    }
    long long mark = total ? (long long)(done * 10 / total) : (long long)(done >> 20);
    if (mark != d->last_mark) {
        d->last_mark = mark;
        if (total)
            fprintf(stderr, "download: %llu/%llu bytes (%lld%%) %.1f s\n", (unsigned long long)done,
                    (unsigned long long)total, mark * 10, secs);
        else
            fprintf(stderr, "download: %llu bytes %.1f s\n", (unsigned long long)done, secs);
    }
}
