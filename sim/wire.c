/* The link emulator (see wire.h for the model; wire_internal.h for its
 * parts): creation, the engine thread, stop, statistics and their output. */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "host/json.h"
#include "wire_internal.h"

static int64_t mono_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

int64_t pf_wire_now(const pf_wire *w)
{
    return mono_ns() - w->t0_abs;
}

void pf_wire_log(pf_wire *w, const char *fmt, ...)
{
    if (!w->cfg.log)
        return;
    char msg[400];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    w->cfg.log(w->cfg.log_user, msg);
}

int pf_wire_parse_frame(const char *s, pf_frame *frame)
{
    if (!strcmp(s, "8N1") || !strcmp(s, "8n1"))
        *frame = PF_FRAME_8N1;
    else if (!strcmp(s, "8E1") || !strcmp(s, "8e1"))
        *frame = PF_FRAME_8E1;
    else
        return PF_ERR_ARG;
    return PF_OK;
}

/* ---- lifecycle ------------------------------------------------------------------- */

int pf_wire_open(pf_wire **out, const pf_wire_config *cfg, pf_diag *diag)
{
    if (!out || !cfg)
        return PF_ERR_ARG;
    *out = NULL;
    if (!cfg->baud && !cfg->follow)
        return pf_diag_set(diag, PF_ERR_ARG, "line rate must be > 0");
    if (cfg->flip_rate < 0 || cfg->flip_rate > 1 || cfg->drop_rate < 0 || cfg->drop_rate > 1)
        return pf_diag_set(diag, PF_ERR_ARG, "fault rates are probabilities in [0, 1]");
    pf_wire *w = calloc(1, sizeof *w);
    if (!w)
        return pf_diag_set(diag, PF_ERR_NOMEM, "out of memory");
    w->cfg = *cfg;
    if (!w->cfg.baud)
        w->cfg.baud = 115200;
    if (!w->cfg.cut_dirs)
        w->cfg.cut_dirs = PF_WIRE_DIR_BOTH;
    pthread_mutex_init(&w->mu, NULL);
    w->stop_pipe[0] = w->stop_pipe[1] = -1;
    w->end[0].fd = w->end[1].fd = w->end[0].listen_fd = w->end[1].listen_fd = -1;
    uint32_t qb = cfg->queue_bytes;
    if (!qb) {
        qb = w->cfg.baud / pf_frame_bits(w->cfg.frame) / 4;
        if (qb < 4096)
            qb = 4096;
    }
    w->queue_bytes = qb;
    w->cut_done = cfg->cut_after == 0;
    w->closing_since = -1;
    w->t0_abs = mono_ns();
    int rc = wire_end_parse(&w->end[0], cfg->a, diag);
    if (rc == 0)
        rc = wire_end_parse(&w->end[1], cfg->b, diag);
    if (rc == 0 && w->end[0].ep.path[0] && !strcmp(w->end[0].ep.path, w->end[1].ep.path))
        rc = pf_diag_set(diag, PF_ERR_ARG, "sides A and B are the same path %s", w->end[0].ep.path);
    if (rc == 0 && pipe2(w->stop_pipe, O_NONBLOCK | O_CLOEXEC) != 0)
        rc = pf_diag_set(diag, PF_ERR_IO, "pipe: %s", strerror(errno));
    if (rc == 0)
        rc = wire_end_open(w, &w->end[0], diag);
    if (rc == 0)
        rc = wire_end_open(w, &w->end[1], diag);
    if (rc != 0) {
        pf_wire_close(w);
        return rc;
    }
    for (int i = 0; i < 2; i++) {
        wire_dir *d = &w->dir[i];
        d->src = i;
        d->dst = 1 - i;
        d->last_flush = -PF_WIRE_QUANTUM_NS;
        wire_faults_init(&d->faults, cfg, i);
        d->st.first_in_s = d->st.last_out_s = -1;
    }
    w->end[0].next_check = w->end[1].next_check = 0;
    *out = w;
    return PF_OK;
}

void pf_wire_stop(pf_wire *w)
{
    if (w && w->stop_pipe[1] >= 0) {
        ssize_t r = write(w->stop_pipe[1], "x", 1);
        (void)r;
    }
}

static void *wire_thread(void *arg)
{
    pf_wire *w = arg;
    w->run_result = pf_wire_run(w, NULL);
    return NULL;
}

int pf_wire_start(pf_wire *w)
{
    if (!w || w->thread_started)
        return PF_ERR_ARG;
    /* the engine thread takes no signals: the process's handlers stay in control */
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    int rc = pthread_create(&w->thread, NULL, wire_thread, w);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (rc != 0)
        return PF_ERR_IO;
    w->thread_started = 1;
    return PF_OK;
}

int pf_wire_join(pf_wire *w)
{
    if (!w || !w->thread_started)
        return PF_ERR_ARG;
    pthread_join(w->thread, NULL);
    w->thread_started = 0;
    return w->run_result;
}

void pf_wire_get_stats(pf_wire *w, pf_wire_stats *st)
{
    memset(st, 0, sizeof *st);
    if (!w)
        return;
    pthread_mutex_lock(&w->mu);
    for (int i = 0; i < 2; i++) {
        st->dir[i] = w->dir[i].st;
        pf_wire_dir_stats *ds = &st->dir[i];
        double span = ds->last_out_s - ds->first_in_s;
        ds->achieved_Bps = (ds->bytes_out && span > 0) ? (double)ds->bytes_out / span : 0;
        st->opens[i] = w->end[i].opens;
        st->reopens[i] = w->end[i].reopens;
        st->open[i] = w->end[i].open;
        st->autobaud_locked[i] = w->end[i].ab_locked;
    }
    st->cut_done = w->cut_done;
    st->seconds = (double)pf_wire_now(w) / 1e9;
    pthread_mutex_unlock(&w->mu);
}

const char *pf_wire_pty_name(const pf_wire *w, int side)
{
    if (!w || side < 0 || side > 1 || w->end[side].ep.kind != PF_ENDPOINT_PTY)
        return "";
    return w->end[side].pts;
}

void pf_wire_close(pf_wire *w)
{
    if (!w)
        return;
    if (w->thread_started) {
        pf_wire_stop(w);
        pf_wire_join(w);
    }
    for (int s = 0; s < 2; s++)
        wire_end_close(&w->end[s]);
    for (int i = 0; i < 2; i++) {
        free(w->dir[i].q);
        free(w->dir[i].rx[0].fr);
        free(w->dir[i].rx[1].fr);
    }
    if (w->stop_pipe[0] >= 0)
        close(w->stop_pipe[0]);
    if (w->stop_pipe[1] >= 0)
        close(w->stop_pipe[1]);
    pthread_mutex_destroy(&w->mu);
    free(w);
}

/* ---- statistics output -------------------------------------------------------------- */

void pf_wire_stats_json(const pf_wire *w, const pf_wire_stats *st, FILE *f)
{
    const pf_wire_config *c = &w->cfg;
    fprintf(f, "{\n  \"a\": ");
    pf_json_string(f, w->end[0].ep.spec);
    fprintf(f, ",\n  \"b\": ");
    pf_json_string(f, w->end[1].ep.spec);
    if (c->follow)
        fprintf(f, ",\n  \"baud\": \"follow\"");
    else
        fprintf(f, ",\n  \"baud\": %u", c->baud);
    fprintf(f, ",\n  \"frame\": \"%s\",\n  \"bits_per_byte\": %u,\n  \"latency_us\": %u,\n  \"seed\": %llu",
            c->frame == PF_FRAME_8E1 ? "8E1" : "8N1", pf_frame_bits(c->frame), c->latency_us,
            (unsigned long long)c->seed);
    fprintf(f, ",\n  \"flip_rate\": %.9g,\n  \"drop_rate\": %.9g,\n  \"burst_every\": %u,\n  \"burst_len\": %u",
            c->flip_rate, c->drop_rate, c->burst_every, c->burst_len);
    fprintf(f, ",\n  \"cut_after\": %lld,\n  \"cut_done\": %s,\n  \"seconds\": %.6f", (long long)c->cut_after,
            st->cut_done ? "true" : "false", st->seconds);
    fprintf(f, ",\n  \"opens\": {\"a\": %u, \"b\": %u},\n  \"reopens\": {\"a\": %u, \"b\": %u}", st->opens[0],
            st->opens[1], st->reopens[0], st->reopens[1]);
    fprintf(f, ",\n  \"autobaud_locked\": {\"a\": %u, \"b\": %u}", st->autobaud_locked[0], st->autobaud_locked[1]);
    for (int i = 0; i < 2; i++) {
        const pf_wire_dir_stats *d = &st->dir[i];
        double line = d->last_baud ? (double)d->last_baud / pf_frame_bits(c->frame) : 0;
        fprintf(f,
                ",\n  \"%s\": {\"bytes_in\": %llu, \"bytes_out\": %llu, \"dropped\": %llu, \"flipped_bits\": %llu, "
                "\"garbled\": %llu, \"rate_mismatch\": %llu, \"framing_errors\": %llu, \"discarded_closed\": %llu, "
                "\"held_reopening\": %llu, \"cut\": %llu, \"idle_starts\": %llu, \"max_late_ms\": %.3f, \"stalls\": %llu, \"line_Bps\": %.3f, "
                "\"achieved_Bps\": %.3f}",
                i == 0 ? "a2b" : "b2a", (unsigned long long)d->bytes_in, (unsigned long long)d->bytes_out,
                (unsigned long long)d->dropped, (unsigned long long)d->flipped_bits, (unsigned long long)d->garbled,
                (unsigned long long)d->rate_mismatch, (unsigned long long)d->framing_errors,
                (unsigned long long)d->discarded_closed, (unsigned long long)d->held_reopening,
                (unsigned long long)d->cut, (unsigned long long)d->idle_starts, d->max_late_ms, (unsigned long long)d->stalls, line,
                d->achieved_Bps);
    }
    fprintf(f, "\n}\n");
}

void pf_wire_stats_text(const pf_wire *w, const pf_wire_stats *st, FILE *f)
{
    fprintf(f, "wire: %.3f s, opens A %u B %u, reopens A %u B %u%s\n", st->seconds, st->opens[0], st->opens[1],
            st->reopens[0], st->reopens[1], st->cut_done ? ", cable cut" : "");
    for (int i = 0; i < 2; i++) {
        const pf_wire_dir_stats *d = &st->dir[i];
        double line = d->last_baud ? (double)d->last_baud / pf_frame_bits(w->cfg.frame) : 0;
        fprintf(f,
                "  %s: in %llu, out %llu, dropped %llu, flipped bits %llu, garbled %llu, rate mismatch %llu "
                "(framing errors %llu), discarded (side closed) %llu, held while reopening %llu, cut %llu; %.1f B/s achieved, line %.1f B/s; "
                "%llu busy periods, worst delivery %.2f ms late\n",
                i == 0 ? "A->B" : "B->A", (unsigned long long)d->bytes_in, (unsigned long long)d->bytes_out,
                (unsigned long long)d->dropped, (unsigned long long)d->flipped_bits, (unsigned long long)d->garbled,
                (unsigned long long)d->rate_mismatch, (unsigned long long)d->framing_errors,
                (unsigned long long)d->discarded_closed, (unsigned long long)d->held_reopening,
                (unsigned long long)d->cut, d->achieved_Bps, line,
                (unsigned long long)d->idle_starts, d->max_late_ms);
    }
}
