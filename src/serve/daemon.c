/* The serve daemon's core: targets, one job at a time per target (run in the
 * thread of whoever asked: an HTTP connection's thread), progress and events
 * for stream readers, the event log, and the stop on SIGINT/SIGTERM. */
#include <errno.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"
#include "peerflash/pf_session.h"
#include "peerflash/pf_image_file.h"
#include "peerflash/pf_posix.h"
#include "serve.h"

const char *serve_job_name(serve_job_kind k)
{
    static const char *const names[] = {"flash", "verify", "run", "info", "bridge"};
    return (unsigned)k < 5 ? names[k] : "?";
}

/* ---- the log: one line per event ------------------------------------------ */

static void now_iso(char *out, size_t n)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    struct tm tm;
    gmtime_r(&ts.tv_sec, &tm);
    char s[24]; /* 2026-12-05T11:36:57 */
    strftime(s, sizeof s, "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(out, n, "%s.%03dZ", s, (int)(ts.tv_nsec / 1000000 % 1000));
}

void serve_log(serve_daemon *d, const char *event, const serve_target *t, const char *extra, const char *fmt, ...)
{
    char msg[1024], when[40];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    now_iso(when, sizeof when);
    pthread_mutex_lock(&d->log_lock);
    if (d->cfg.json_log) {
        fprintf(stderr, "{\"time\":\"%s\",\"event\":\"%s\",\"target\":", when, event);
        if (t)
            pf_json_string(stderr, t->cfg.name);
        else
            fputs("null", stderr);
        fputs(",\"message\":", stderr);
        pf_json_string(stderr, msg);
        if (extra && *extra)
            fprintf(stderr, ",%s", extra);
        fputs("}\n", stderr);
    } else {
        fprintf(stderr, "%s %s%s%s: %s\n", when, event, t ? " " : "", t ? t->cfg.name : "", msg);
    }
    fflush(stderr);
    pthread_mutex_unlock(&d->log_lock);
}

/* ---- events for stream readers ------------------------------------------- */

static void event_push_locked(serve_target *t, const char *type, const char *data)
{
    serve_event *e = &t->events[t->ev_seq % SERVE_EVENTS];
    free(e->data);
    e->seq = ++t->ev_seq;
    snprintf(e->type, sizeof e->type, "%s", type);
    e->data = strdup(data ? data : "{}");
    pthread_cond_broadcast(&t->changed);
}

void serve_event_push(serve_target *t, const char *type, const char *data)
{
    pthread_mutex_lock(&t->lock);
    event_push_locked(t, type, data);
    pthread_mutex_unlock(&t->lock);
}

/* A log line both in the daemon's log and in the target's event stream. */
static void target_log(serve_daemon *d, serve_target *t, const char *event, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static void target_log(serve_daemon *d, serve_target *t, const char *event, const char *fmt, ...)
{
    char msg[900];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    serve_log(d, event, t, NULL, "%s", msg);
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    if (!f)
        return;
    fprintf(f, "{\"event\":\"%s\",\"message\":", event);
    pf_json_string(f, msg);
    fputs("}", f);
    fclose(f);
    serve_event_push(t, "log", buf);
    free(buf);
}

/* ---- JSON of a target and of a result ------------------------------------- */

static void json_str(FILE *f, const char *key, const char *v)
{
    fprintf(f, ",\"%s\":", key);
    if (v)
        pf_json_string(f, v);
    else
        fputs("null", f);
}

static void json_u32(FILE *f, const char *key, int have, uint32_t v)
{
    if (have)
        fprintf(f, ",\"%s\":%lu", key, (unsigned long)v);
    else
        fprintf(f, ",\"%s\":null", key);
}

/* ---- progress: a sequence lock (one writer, readers that never block it) ---- */

void serve_progress_write(serve_progress_cell *c, const serve_progress *p)
{
    unsigned g = atomic_load_explicit(&c->gen, memory_order_relaxed);
    atomic_store_explicit(&c->gen, g + 1, memory_order_relaxed);
    atomic_thread_fence(memory_order_release); /* the odd gen is seen before any new field */
    atomic_store_explicit(&c->started, p->started, memory_order_relaxed);
    atomic_store_explicit(&c->phase, (int)p->phase, memory_order_relaxed);
    atomic_store_explicit(&c->done, p->done, memory_order_relaxed);
    atomic_store_explicit(&c->total, p->total, memory_order_relaxed);
    atomic_store_explicit(&c->gen, g + 2, memory_order_release);
}

void serve_progress_read(serve_progress_cell *c, serve_progress *out)
{
    for (;;) {
        unsigned g0 = atomic_load_explicit(&c->gen, memory_order_acquire);
        out->started = atomic_load_explicit(&c->started, memory_order_relaxed);
        out->phase = (pf_phase)atomic_load_explicit(&c->phase, memory_order_relaxed);
        out->done = atomic_load_explicit(&c->done, memory_order_relaxed);
        out->total = atomic_load_explicit(&c->total, memory_order_relaxed);
        atomic_thread_fence(memory_order_acquire); /* the fields are read before gen again */
        if (!(g0 & 1) && atomic_load_explicit(&c->gen, memory_order_relaxed) == g0)
            return;
        sched_yield(); /* the writer is between its two stores: a few instructions */
    }
}

/* The state of a target for GET /api/targets: what changes at job edges is
 * copied under t->lock (a short hold: no formatting inside), the progress
 * read from its sequence lock; the JSON is built with no lock held. */
char *serve_target_json(serve_target *t)
{
    int busy;
    serve_job_kind job;
    char chip[sizeof t->chip];
    unsigned long ok, failed;
    pthread_mutex_lock(&t->lock);
    busy = t->busy;
    job = t->job;
    memcpy(chip, t->chip, sizeof chip);
    ok = t->jobs_ok;
    failed = t->jobs_failed;
    char *last = t->last_result ? strdup(t->last_result) : NULL;
    int last_lost = t->last_result && !last;
    pthread_mutex_unlock(&t->lock);
    serve_progress p;
    serve_progress_read(&t->prog, &p);
    char *buf = NULL;
    size_t len = 0;
    FILE *f = last_lost ? NULL : open_memstream(&buf, &len);
    if (!f) {
        free(last);
        return NULL;
    }
    fputs("{\"name\":", f);
    pf_json_string(f, t->cfg.name);
    json_str(f, "target", t->cfg.driver);
    json_str(f, "port", t->cfg.port);
    json_str(f, "state", busy ? "busy" : "idle");
    json_str(f, "job", busy ? serve_job_name(job) : NULL);
    json_str(f, "chip", chip[0] ? chip : NULL);
    fputs(",\"progress\":", f);
    if (busy && p.started)
        fprintf(f, "{\"phase\":\"%s\",\"done\":%lu,\"total\":%lu}", pf_phase_name(p.phase), (unsigned long)p.done,
                (unsigned long)p.total);
    else
        fputs("null", f);
    fprintf(f, ",\"jobs_ok\":%lu,\"jobs_failed\":%lu", ok, failed);
    fprintf(f, ",\"app_address\":%lu", (unsigned long)serve_app_address(t->cfg.driver));
    fprintf(f, ",\"last_result\":%s}", last ? last : "null");
    fclose(f);
    free(last);
    return buf;
}

/* What one job learnt, for its JSON object (the fields of `flash --json`). */
typedef struct job_facts {
    const char *command;
    int exit_code;
    const char *error;
    int interrupted_sig;
    int prog_started;
    pf_phase phase;
    uint32_t done, total;
    const pf_target_info *info; /* NULL unless connected */
    int have_image;
    uint32_t image_bytes;
    const pf_job_result *res;
    int have_resume;
    uint32_t resumed_from, wire_bytes;
    double seconds;
} job_facts;

static char *result_json(const serve_target *t, const job_facts *j)
{
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    if (!f)
        return NULL;
    fprintf(f, "{\"schema\":1");
    json_str(f, "command", j->command);
    fprintf(f, ",\"ok\":%s,\"exit_code\":%d", j->exit_code ? "false" : "true", j->exit_code);
    json_str(f, "error", j->exit_code ? (j->error && *j->error ? j->error : "failed") : NULL);
    json_str(f, "interrupted", j->interrupted_sig ? pf_cli_signal_name(j->interrupted_sig) : NULL);
    fputs(",\"stopped_at\":", f);
    if (j->exit_code && j->prog_started)
        fprintf(f, "{\"phase\":\"%s\",\"done\":%lu,\"total\":%lu}", pf_phase_name(j->phase), (unsigned long)j->done,
                (unsigned long)j->total);
    else
        fputs("null", f);
    json_str(f, "target", t->cfg.driver);
    json_str(f, "port", t->cfg.port);
    const pf_target_info *in = j->info;
    json_str(f, "chip", in ? in->chip : NULL);
    json_u32(f, "chip_id", in != NULL, in ? in->chip_id : 0);
    json_str(f, "bootloader", in ? in->bootloader : NULL);
    json_u32(f, "flash_start", in != NULL, in ? in->geom.flash_start : 0);
    json_u32(f, "flash_size", in != NULL, in ? in->geom.flash_size : 0);
    const pf_job_result *res = j->res;
    json_u32(f, "image_bytes", j->have_image, j->image_bytes);
    json_u32(f, "written_bytes", res != NULL, res ? res->written_bytes : 0);
    json_u32(f, "skipped_bytes", res != NULL, res ? res->skipped_bytes : 0);
    json_u32(f, "erased_bytes", res != NULL, res ? res->erased_bytes : 0);
    json_u32(f, "resumed_from", j->have_resume, j->resumed_from);
    json_u32(f, "wire_bytes", j->have_resume, j->wire_bytes);
    json_u32(f, "runs", res != NULL, res ? res->runs : 0);
    fprintf(f, ",\"verified\":%s", res ? (res->verified ? "true" : "false") : "null");
    json_str(f, "verify_method", res ? (res->verify_method ? res->verify_method : "none") : NULL);
    fputs(",\"read_bytes\":null,\"details\":null", f);
    fprintf(f, ",\"seconds\":%.3f", j->seconds);
    json_str(f, "name", t->cfg.name); /* serve: which of the daemon's targets */
    fputs("}", f);
    fclose(f);
    return buf;
}

char *serve_error_json(const serve_target *t, const char *command, int exit_code, const char *error)
{
    static const serve_target none = {.cfg = {.name = NULL, .driver = NULL, .port = NULL}};
    job_facts j = {0};
    j.command = command;
    j.exit_code = exit_code;
    j.error = error;
    return result_json(t ? t : &none, &j);
}

/* ---- claiming a target ---------------------------------------------------- */

serve_target *serve_find_target(serve_daemon *d, const char *name)
{
    for (int i = 0; i < d->ntargets; i++)
        if (!strcmp(d->targets[i].cfg.name, name))
            return &d->targets[i];
    return NULL;
}

int serve_claim(serve_daemon *d, serve_target *t, serve_job_kind kind, const char *source, char *busy_with,
                size_t n)
{
    if (atomic_load(&d->stopping))
        return -2;
    pthread_mutex_lock(&t->lock);
    if (t->busy) {
        if (busy_with)
            snprintf(busy_with, n, "%s job from %s", serve_job_name(t->job), t->job_source);
        pthread_mutex_unlock(&t->lock);
        return -1;
    }
    t->busy = 1;
    t->job = kind;
    snprintf(t->job_source, sizeof t->job_source, "%s", source ? source : "?");
    serve_progress_write(&t->prog, &(serve_progress){0, PF_PHASE_CHECK, 0, 0});
    atomic_store(&t->cancel, 0);
    char ev[200];
    snprintf(ev, sizeof ev, "{\"state\":\"busy\",\"job\":\"%s\"}", serve_job_name(kind));
    event_push_locked(t, "state", ev);
    pthread_mutex_unlock(&t->lock);
    return 0;
}

void serve_release(serve_target *t)
{
    pthread_mutex_lock(&t->lock);
    t->busy = 0;
    event_push_locked(t, "state", "{\"state\":\"idle\",\"job\":null}");
    pthread_mutex_unlock(&t->lock);
}

/* ---- a port that stops when the job is cancelled --------------------------- */

typedef struct guard {
    const pf_port *inner;
    serve_target *t;
} guard;

static int g_read(void *ctx, uint8_t *buf, size_t n, uint32_t timeout_ms)
{
    guard *g = ctx;
    /* in slices, so a cancel is seen within 100 ms even inside a long wait */
    uint32_t start = g->inner->now_ms(g->inner->ctx);
    for (;;) {
        if (atomic_load(&g->t->cancel))
            return PF_ERR_CLOSED;
        uint32_t spent = g->inner->now_ms(g->inner->ctx) - start;
        uint32_t left = spent >= timeout_ms ? 0 : timeout_ms - spent;
        uint32_t slice = left < 100 ? left : 100;
        int r = g->inner->read(g->inner->ctx, buf, n, slice);
        if (r != 0 || left <= slice)
            return r;
    }
}
static int g_write(void *ctx, const uint8_t *buf, size_t n)
{
    guard *g = ctx;
    return atomic_load(&g->t->cancel) ? PF_ERR_CLOSED : g->inner->write(g->inner->ctx, buf, n);
}
static int g_drain(void *ctx)
{
    guard *g = ctx;
    return g->inner->drain ? g->inner->drain(g->inner->ctx) : PF_OK;
}
static int g_flush(void *ctx)
{
    guard *g = ctx;
    return g->inner->flush_input ? g->inner->flush_input(g->inner->ctx) : PF_OK;
}
static int g_set_line(void *ctx, uint32_t baud, pf_frame frame)
{
    guard *g = ctx;
    return g->inner->set_line ? g->inner->set_line(g->inner->ctx, baud, frame) : PF_ERR_UNSUPPORTED;
}
static int g_set_lines(void *ctx, int dtr, int rts)
{
    guard *g = ctx;
    return g->inner->set_lines ? g->inner->set_lines(g->inner->ctx, dtr, rts) : PF_ERR_UNSUPPORTED;
}
static uint32_t g_now(void *ctx)
{
    guard *g = ctx;
    return g->inner->now_ms(g->inner->ctx);
}
static void g_delay(void *ctx, uint32_t ms)
{
    guard *g = ctx;
    while (ms && !atomic_load(&g->t->cancel)) {
        uint32_t s = ms < 50 ? ms : 50;
        g->inner->delay_ms(g->inner->ctx, s);
        ms -= s;
    }
}
static void g_log(void *ctx, int level, const char *msg)
{
    guard *g = ctx;
    if (g->inner->log)
        g->inner->log(g->inner->ctx, level, msg);
}

/* ---- running a job ---------------------------------------------------------- */

typedef struct job_ctx {
    serve_daemon *d;
    serve_target *t;
} job_ctx;

/* Progress from the job and the driver: kept for GET /api/targets, and
 * published to stream readers at most every 100 ms and at each phase edge. */
static void on_progress(void *user, pf_phase phase, uint32_t done, uint32_t total)
{
    job_ctx *c = user;
    serve_target *t = c->t;
    uint64_t now = pf_posix_now_us();
    serve_progress was;
    serve_progress_read(&t->prog, &was); /* this thread is the writer: no retry */
    int edge = !was.started || phase != was.phase || done == total || done == 0;
    serve_progress_write(&t->prog, &(serve_progress){1, phase, done, total});
    if (edge) {
        /* phase edges go into the event ring, so that no reader misses the
         * end of a phase; the steps between are a snapshot a reader samples */
        char ev[128];
        snprintf(ev, sizeof ev, "{\"phase\":\"%s\",\"done\":%lu,\"total\":%lu}", pf_phase_name(phase),
                 (unsigned long)done, (unsigned long)total);
        t->last_pub_us = now;
        pthread_mutex_lock(&t->lock);
        event_push_locked(t, "progress", ev);
        pthread_mutex_unlock(&t->lock);
    } else if (now - t->last_pub_us >= 100000) {
        /* the lock only to wake stream readers, at most ten times a second */
        t->last_pub_us = now;
        pthread_mutex_lock(&t->lock);
        t->prog_seq++;
        pthread_cond_broadcast(&t->changed);
        pthread_mutex_unlock(&t->lock);
    }
}

static void on_driver_progress(void *user, int phase, uint32_t done, uint32_t total)
{
    on_progress(user, (pf_phase)phase, done, total);
}

uint32_t serve_app_address(const char *driver)
{
    /* the driver says where its application starts (pf_target_ops.app_address) */
    const pf_target_ops *ops = pf_target_find(driver);
    return ops ? ops->app_address : 0;
}

void serve_run_job(serve_daemon *d, serve_target *t, const serve_job *job, serve_result *out)
{
    uint64_t t0 = pf_posix_now_us();
    const serve_target_cfg *c = &t->cfg;
    job_ctx jc = {d, t};
    job_facts j = {0};
    j.command = serve_job_name(job->kind);
    pf_diag diag = {0};
    pf_posix_link link;
    memset(&link, 0, sizeof link);
    link.fd = link.listen_fd = -1;
    pf_port raw, port;
    guard g = {&raw, t};
    void *state = NULL;
    pf_session sess;
    memset(&sess, 0, sizeof sess);
    pf_job_result res;
    uint8_t *buf = NULL;
    int connected = 0, r;
    static const unsigned command_of[] = {PF_CMD_FLASH, PF_CMD_VERIFY, PF_CMD_INFO, PF_CMD_INFO};
    unsigned command = command_of[job->kind];
    if (job->images) {
        j.have_image = 1;
        j.image_bytes = (uint32_t)pf_memmap_bytes(&job->images->map);
        target_log(d, t, "job", "%s started from %s: %s, %lu bytes", j.command, job->source,
                   job->image_name ? job->image_name : "image", (unsigned long)j.image_bytes);
    } else {
        target_log(d, t, "job", "%s started from %s", j.command, job->source);
    }
    size_t state_size = pf_session_state_size(c->driver);
    if (!state_size) {
        r = pf_diag_set(&diag, PF_ERR_ARG, "unknown target '%s'", c->driver);
        goto done;
    }
    r = pf_posix_open(&link, c->port, &diag);
    if (r < 0)
        goto done;
    link.log_level = d->cfg.verbose;
    pf_posix_port(&link, &raw);
    port = (pf_port){&g, g_read, g_write, g_drain, g_flush, g_set_line, g_set_lines, g_now, g_delay, g_log};
    state = calloc(1, state_size);
    if (!state) {
        r = pf_diag_set(&diag, PF_ERR_NOMEM, "out of memory");
        goto done;
    }
    /* the target's driver options that apply to this job (no-compress is
     * for flash only; checked against the driver's table at start-up) */
    const char *opts[SERVE_MAX_OPTIONS + 1];
    size_t nopt = 0;
    const pf_target_ops *ops = pf_target_find(c->driver);
    for (int i = 0; i < c->noptions && ops; i++) {
        const char *w = c->options[i];
        const pf_target_option *o = pf_target_option_find(ops, w, strcspn(w, "="));
        if (o && (o->commands & command))
            opts[nopt++] = w;
    }
    opts[nopt] = NULL;
    pf_session_config sc = PF_SESSION_CONFIG_DEFAULT();
    sc.target = c->driver;
    sc.target_cfg.port = &port;
    sc.target_cfg.diag = &diag;
    sc.target_cfg.baud = c->connect_baud;
    sc.target_cfg.fast_baud = c->baud;
    sc.target_cfg.chip = c->chip;
    sc.target_cfg.reset = c->reset;
    sc.target_cfg.verbose = d->cfg.verbose;
    sc.target_cfg.progress = on_driver_progress;
    sc.target_cfg.progress_user = &jc;
    sc.options = opts;
    sc.state = state;
    sc.state_size = state_size;
    sc.command = command;
    if ((r = pf_session_open(&sess, &sc)) < 0 || (r = pf_session_connect(&sess)) < 0)
        goto done;
    connected = 1;
    const pf_target_info *info = &sess.target.info;
    pthread_mutex_lock(&t->lock);
    snprintf(t->chip, sizeof t->chip, "%s", info->chip);
    pthread_mutex_unlock(&t->lock);
    target_log(d, t, "connect", "chip %s, bootloader %s, flash %lu KiB at 0x%08lx", info->chip,
               info->bootloader[0] ? info->bootloader : "?", (unsigned long)(info->geom.flash_size / 1024),
               (unsigned long)info->geom.flash_start);
    if (job->kind == SERVE_JOB_INFO) {
        r = PF_OK;
    } else if (job->kind == SERVE_JOB_RUN) {
        r = (info->caps & PF_CAP_RUN) && sess.target.ops->run
                ? sess.target.ops->run(sess.target.self)
                : pf_diag_set(&diag, PF_ERR_UNSUPPORTED, "the %s target cannot start its application", c->driver);
    } else {
        if ((r = pf_session_check_image(&sess, &job->images->map)) < 0)
            goto done;
        size_t bufsize = pf_job_buf_size_for(info);
        buf = malloc(bufsize);
        if (!buf) {
            r = pf_diag_set(&diag, PF_ERR_NOMEM, "out of memory");
            goto done;
        }
        pf_job_config cfg = PF_JOB_CONFIG_DEFAULT();
        cfg.erase = c->erase_all ? PF_ERASE_ALL : PF_ERASE_TOUCHED;
        cfg.verify = c->verify;
        cfg.skip_unchanged = c->skip;
        cfg.run_after = c->run && (info->caps & PF_CAP_RUN);
        cfg.progress = on_progress;
        cfg.progress_user = &jc;
        cfg.buf = buf;
        cfg.buf_size = bufsize;
        cfg.diag = &diag;
        cfg.clock = &port;
        pf_diag_clear(&diag);
        r = job->kind == SERVE_JOB_VERIFY ? pf_job_verify(&sess.target, &job->images->map, &cfg, &res)
                                          : pf_job_flash(&sess.target, &job->images->map, &cfg, &res);
        if (r >= 0 && job->kind == SERVE_JOB_FLASH) {
            /* what the driver itself did not send (AVR read-compare, agent resume) */
            pf_target_stats ts;
            pf_session_stats(&sess, &ts);
            uint32_t kept = ts.unchanged_bytes + ((ts.flags & PF_STATS_RESUME) ? ts.resumed_from : 0);
            kept = kept > res.written_bytes ? res.written_bytes : kept;
            res.written_bytes -= kept;
            res.skipped_bytes += kept;
            if (ts.flags & PF_STATS_RESUME) {
                j.have_resume = 1;
                j.resumed_from = ts.resumed_from;
                j.wire_bytes = ts.wire_bytes;
            }
        }
        if (r >= 0)
            j.res = &res;
    }
done:
    j.seconds = (double)(pf_posix_now_us() - t0) / 1e6;
    j.info = connected ? &sess.target.info : NULL;
    serve_progress pr;
    serve_progress_read(&t->prog, &pr);
    j.prog_started = pr.started;
    j.phase = pr.phase;
    j.done = pr.done;
    j.total = pr.total;
    char errtext[PF_DIAG_MAX + 200] = "";
    int cancelled = atomic_load(&t->cancel);
    if (r < 0 && cancelled) {
        j.interrupted_sig = d->stop_signal ? d->stop_signal : SIGTERM;
        char where[160];
        if (j.prog_started)
            snprintf(where, sizeof where, " during %s at %lu of %lu bytes", pf_phase_name(j.phase),
                     (unsigned long)j.done, (unsigned long)j.total);
        else
            snprintf(where, sizeof where, " %s", connected ? "before the transfer" : "while connecting");
        snprintf(errtext, sizeof errtext, "interrupted: the daemon is stopping (%s)%s%s",
                 pf_cli_signal_name(j.interrupted_sig), where,
                 j.prog_started && (j.phase == PF_PHASE_WRITE || j.phase == PF_PHASE_ERASE)
                     ? "; the flash holds part of the image: upload it again"
                     : "");
        j.exit_code = PF_EXIT_SIGNAL_BASE + j.interrupted_sig;
    } else if (r < 0) {
        snprintf(errtext, sizeof errtext, "%s", diag.text[0] ? diag.text : pf_strerror(r));
        j.exit_code = pf_exit_status(r);
    }
    j.error = errtext;
    char *json = result_json(t, &j);
    pf_session_close(&sess);
    free(state);
    free(buf);
    pf_posix_close(&link);
    if (j.exit_code == 0) {
        if (job->kind == SERVE_JOB_FLASH && j.res)
            target_log(d, t, "done", "flash ok: wrote %lu bytes in %.2f s, %s%s", (unsigned long)j.res->written_bytes,
                       j.seconds, j.res->verified ? "verified by " : "NOT verified",
                       j.res->verified ? j.res->verify_method : "");
        else
            target_log(d, t, "done", "%s ok in %.2f s", j.command, j.seconds);
    } else {
        target_log(d, t, "failed", "%s failed (exit %d): %s", j.command, j.exit_code, errtext);
    }
    pthread_mutex_lock(&t->lock);
    free(t->last_result);
    t->last_result = json ? strdup(json) : NULL;
    if (j.exit_code == 0)
        t->jobs_ok++;
    else
        t->jobs_failed++;
    event_push_locked(t, "result", json ? json : "{}");
    t->busy = 0;
    event_push_locked(t, "state", "{\"state\":\"idle\",\"job\":null}");
    pthread_mutex_unlock(&t->lock);
    out->exit_code = j.exit_code;
    out->json = json;
}

/* ---- images from memory ------------------------------------------------------ */

int serve_load_image(serve_daemon *d, const serve_target *t, const uint8_t *data, size_t n, const char *name,
                     const char *format, int has_addr, uint32_t addr, pf_image_set *set, pf_diag *diag)
{
    /* The format word is the file name extension the readers' detection
     * uses to break ties; content still decides otherwise, as for `flash`. */
    static const char *const formats[][2] = {{"bin", ".bin"}, {"hex", ".hex"}, {"ihex", ".hex"},
                                             {"srec", ".srec"}, {"elf", ".elf"}, {"auto", ""}};
    const char *ext = "";
    if (format && *format) {
        size_t i;
        for (i = 0; i < sizeof formats / sizeof formats[0]; i++)
            if (!strcmp(format, formats[i][0]))
                break;
        if (i == sizeof formats / sizeof formats[0])
            return pf_diag_set(diag, PF_ERR_ARG, "format '%s' is not one of auto, bin, hex, srec, elf", format);
        ext = formats[i][1];
    } else if (name) {
        const char *dot = strrchr(name, '.');
        static const char *const known[] = {".bin", ".img", ".hex", ".ihex", ".srec", ".s19", ".s28", ".s37", ".elf"};
        for (size_t i = 0; dot && i < sizeof known / sizeof known[0]; i++)
            if (!strcasecmp(dot, known[i]))
                ext = known[i];
    }
    const char *shown = name && *name ? name : "upload";
    if (n == 0)
        return pf_diag_set(diag, PF_ERR_FORMAT, "%s: the image is empty", shown);
    pf_image_format fmt = pf_image_detect(data, n < 4096 ? n : 4096, *ext ? ext : NULL);
    static const pf_image_format wanted_of[] = {PF_IMAGE_BIN, PF_IMAGE_IHEX, PF_IMAGE_IHEX, PF_IMAGE_SREC, PF_IMAGE_ELF};
    if (format && *format && strcmp(format, "auto")) {
        /* an explicit format is a statement about the content: check it */
        size_t i = 0;
        while (strcmp(format, formats[i][0]))
            i++;
        pf_image_format want = wanted_of[i];
        int bin_like = fmt == PF_IMAGE_BIN || fmt == PF_IMAGE_ESP || fmt == PF_IMAGE_MCUBOOT;
        if (want == PF_IMAGE_BIN ? !bin_like : fmt != want)
            return pf_diag_set(diag, PF_ERR_FORMAT, "%s: format=%s, but the content is %s", shown, format,
                               fmt == PF_IMAGE_BIN ? "not of that format (it reads as a raw binary)"
                                                   : pf_image_format_name(fmt));
    }
    int carries = fmt == PF_IMAGE_IHEX || fmt == PF_IMAGE_SREC || fmt == PF_IMAGE_ELF;
    if (carries && has_addr)
        return pf_diag_set(diag, PF_ERR_ARG, "%s: a %s image carries its own addresses; leave out address=", shown,
                           pf_image_format_name(fmt));
    char path[160], spec[200];
    snprintf(path, sizeof path, "%s/upload-%u%s", d->tmpdir, atomic_fetch_add(&d->upload_seq, 1), ext);
    FILE *f = fopen(path, "wb");
    if (!f)
        return pf_diag_set(diag, PF_ERR_IO, "cannot store the upload: %s", strerror(errno));
    int ok = fwrite(data, 1, n, f) == n;
    ok = fclose(f) == 0 && ok;
    if (!ok) {
        unlink(path);
        return pf_diag_set(diag, PF_ERR_IO, "cannot store the upload: %s", strerror(errno));
    }
    if (!carries)
        snprintf(spec, sizeof spec, "%s@0x%08lx", path,
                 (unsigned long)(has_addr ? addr : serve_app_address(t->cfg.driver)));
    else
        snprintf(spec, sizeof spec, "%s", path);
    pf_diag_clear(diag);
    int r = pf_image_set_add(set, spec, diag);
    if (r == PF_OK)
        r = pf_image_set_finish(set, diag);
    unlink(path);
    if (r < 0) {
        /* the readers name our temporary path: name the client's file instead */
        char rest[PF_DIAG_MAX]; /* a copy: pf_diag_set rewrites diag->text */
        const char *from = diag->text;
        if (!strncmp(from, path, strlen(path))) {
            from += strlen(path);
            if (*from == '@')
                from += strcspn(from, ":");
        }
        snprintf(rest, sizeof rest, "%s", from);
        pf_diag_set(diag, r, "%s%s", shown, rest);
        return r;
    }
    char why[512];
    if (has_addr && !carries) {
        snprintf(spec, sizeof spec, "%s@0x%08lx", shown, (unsigned long)addr);
        if (pf_cli_check_load_address(t->cfg.driver, t->cfg.chip, spec, why, sizeof why) < 0)
            return pf_diag_set(diag, PF_ERR_RANGE, "%s", why);
    }
    return PF_OK;
}

/* ---- authentication -------------------------------------------------------- */

int serve_token_ok(const serve_daemon *d, const char *presented)
{
    if (!d->cfg.token[0])
        return 1;
    if (!presented)
        return 0;
    size_t a = strlen(d->cfg.token), b = strlen(presented);
    unsigned diff = (unsigned)(a ^ b);
    for (size_t i = 0; i < a; i++)
        diff |= (unsigned)(d->cfg.token[i] ^ (i < b ? presented[i] : 0));
    return diff == 0;
}

/* ---- the daemon's life -------------------------------------------------------- */

static int any_busy(serve_daemon *d)
{
    int n = 0;
    for (int i = 0; i < d->ntargets; i++) {
        pthread_mutex_lock(&d->targets[i].lock);
        n += d->targets[i].busy;
        pthread_mutex_unlock(&d->targets[i].lock);
    }
    return n;
}

int serve_main(const serve_config *cfg)
{
    static serve_daemon daemon_state; /* one per process; large (event rings) */
    serve_daemon *d = &daemon_state;
    d->cfg = *cfg;
    d->ntargets = cfg->ntargets;
    pthread_mutex_init(&d->log_lock, NULL);
    for (int i = 0; i < d->ntargets; i++) {
        serve_target *t = &d->targets[i];
        t->cfg = cfg->targets[i];
        t->index = i;
        pthread_mutex_init(&t->lock, NULL);
        pthread_cond_init(&t->changed, NULL);
        t->ota_fd = -1;
        t->raw_bridge = (serve_bridge){.fd = -1, .rfc2217 = 0, .tcp_port = t->cfg.bridge_port};
        t->rfc2217_bridge = (serve_bridge){.fd = -1, .rfc2217 = 1, .tcp_port = t->cfg.rfc2217_port};
        t->daemon = d;
    }
    /* Signals go to this thread only, taken with sigtimedwait: no handler
     * runs inside a job or libmicrohttpd. Threads inherit the mask. */
    sigset_t sigs;
    sigemptyset(&sigs);
    sigaddset(&sigs, SIGINT);
    sigaddset(&sigs, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &sigs, NULL);
    signal(SIGPIPE, SIG_IGN);
    const char *tmp = getenv("TMPDIR");
    snprintf(d->tmpdir, sizeof d->tmpdir, "%s/peerflash-serve-XXXXXX", tmp && strlen(tmp) < 30 ? tmp : "/tmp");
    if (!mkdtemp(d->tmpdir)) {
        serve_log(d, "error", NULL, NULL, "cannot make a private directory for uploads: %s", strerror(errno));
        return PF_EXIT_FAIL;
    }
    char why[300];
    if (serve_http_start(d, why, sizeof why) < 0) {
        serve_log(d, "error", NULL, NULL, "%s", why);
        rmdir(d->tmpdir);
        return PF_EXIT_LINK;
    }
    for (int i = 0; i < d->ntargets; i++) {
        serve_target *t = &d->targets[i];
        if ((t->cfg.ota_port && serve_ota_start(d, t, why, sizeof why) < 0) ||
            (t->cfg.bridge_port && serve_bridge_start(d, t, &t->raw_bridge, why, sizeof why) < 0) ||
            (t->cfg.rfc2217_port && serve_bridge_start(d, t, &t->rfc2217_bridge, why, sizeof why) < 0)) {
            serve_log(d, "error", NULL, NULL, "%s", why);
            atomic_store(&d->stopping, 1);
            for (int k = 0; k <= i; k++) {
                serve_ota_stop(&d->targets[k]);
                serve_bridge_stop(&d->targets[k].raw_bridge);
                serve_bridge_stop(&d->targets[k].rfc2217_bridge);
            }
            serve_http_stop(d);
            rmdir(d->tmpdir);
            return PF_EXIT_LINK;
        }
    }
    serve_mdns_start(d);
    char extra[300];
    snprintf(extra, sizeof extra,
             "\"listen\":\"%s:%u\",\"targets\":%d,\"auth\":%s,\"max_body\":%zu,\"max_connections\":%u,"
             "\"idle_timeout_s\":%u,\"upload_timeout_s\":%u,\"tls\":%s",
             cfg->listen_addr, (unsigned)d->http_port, d->ntargets, cfg->token[0] ? "true" : "false", cfg->max_body,
             cfg->max_connections, cfg->idle_timeout_s, cfg->upload_timeout_s, cfg->tls_cert ? "true" : "false");
    for (int i = 0; i < d->ntargets; i++) {
        const serve_target_cfg *tc = &d->targets[i].cfg;
        char ota[80] = "", bridge[80] = "", rfc2217[80] = "";
        if (tc->ota_port)
            snprintf(ota, sizeof ota, ", espota on udp %s:%u%s", cfg->listen_addr, (unsigned)tc->ota_port,
                     cfg->ota_password_md5[0] ? " (password)" : "");
        else if (tc->arduino_ota)
            snprintf(ota, sizeof ota, ", arduinoOTA on the HTTP port%s", cfg->token[0] ? " (token as password)" : "");
        if (tc->bridge_port)
            snprintf(bridge, sizeof bridge, ", raw bridge on tcp %s:%u (no authentication)", cfg->listen_addr,
                     (unsigned)tc->bridge_port);
        if (tc->rfc2217_port)
            snprintf(rfc2217, sizeof rfc2217, ", RFC 2217 bridge on tcp %s:%u (no authentication)",
                     cfg->listen_addr, (unsigned)tc->rfc2217_port);
        serve_log(d, "target", &d->targets[i], NULL, "%s on %s%s%s%s", tc->driver, tc->port, ota, bridge, rfc2217);
    }
    serve_log(d, "ready", NULL, extra, "listening on %s://%s:%u/ (%d target%s, %s%s)", cfg->tls_cert ? "https" : "http",
              cfg->listen_addr, (unsigned)d->http_port, d->ntargets, d->ntargets == 1 ? "" : "s",
              cfg->token[0] ? "token required" : "no token: loopback use only",
              cfg->tls_cert ? ", TLS" : "");
    int sig;
    for (;;) {
        sig = sigwaitinfo(&sigs, NULL);
        if (sig == SIGINT || sig == SIGTERM)
            break;
    }
    d->stop_signal = sig;
    atomic_store(&d->stopping, 1);
    int busy = any_busy(d);
    serve_log(d, "stopping", NULL, NULL, "%s: no new jobs; %d running job%s get %u s to finish",
              pf_cli_signal_name(sig), busy, busy == 1 ? "" : "s", cfg->grace_s);
    /* running jobs finish within the grace time (a second signal cuts it
     * short); then they are cancelled and fail with a clear status */
    uint64_t until = pf_posix_now_us() + (uint64_t)cfg->grace_s * 1000000u;
    struct timespec slice = {0, 100 * 1000000};
    while (any_busy(d) && pf_posix_now_us() < until) {
        int s2 = sigtimedwait(&sigs, NULL, &slice);
        if (s2 == SIGINT || s2 == SIGTERM) {
            serve_log(d, "stopping", NULL, NULL, "%s again: cancelling the running jobs", pf_cli_signal_name(s2));
            break;
        }
    }
    for (int i = 0; i < d->ntargets; i++)
        atomic_store(&d->targets[i].cancel, 1);
    for (int i = 0; i < d->ntargets; i++) {
        pthread_mutex_lock(&d->targets[i].lock);
        pthread_cond_broadcast(&d->targets[i].changed); /* wakes stream readers: they end */
        pthread_mutex_unlock(&d->targets[i].lock);
    }
    /* the cancelled jobs end within a second or so; their answers (with the
     * status saying where each stopped) are sent before connections close */
    uint64_t bound = pf_posix_now_us() + 10000000u;
    while ((any_busy(d) || atomic_load(&d->answering)) && pf_posix_now_us() < bound)
        nanosleep(&slice, NULL);
    serve_mdns_stop(d);
    serve_http_stop(d); /* waits for every connection thread */
    for (int i = 0; i < d->ntargets; i++) {
        serve_ota_stop(&d->targets[i]);
        serve_bridge_stop(&d->targets[i].raw_bridge);
        serve_bridge_stop(&d->targets[i].rfc2217_bridge);
    }
    rmdir(d->tmpdir);
    serve_log(d, "stopped", NULL, NULL, "stopped by %s", pf_cli_signal_name(sig));
    if (d->cfg.tls_key)
        memset(d->cfg.tls_key, 0, strlen(d->cfg.tls_key));
    for (int i = 0; i < d->ntargets; i++) {
        serve_target *t = &d->targets[i];
        free(t->last_result);
        for (int e = 0; e < SERVE_EVENTS; e++)
            free(t->events[e].data);
    }
    return PF_EXIT_OK;
}
