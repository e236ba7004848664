/* The HTTP front end of `peerflash serve`, on Debian's libmicrohttpd (one
 * thread per connection, so a job or a progress stream may block in its own
 * thread). No HTTP parsing of our own: headers, chunked bodies and
 * multipart/form-data are the library's.
 *
 *   GET  /                              the upload page (and /app.js, /app.css)
 *   GET  /api/targets                   every target: state, chip, progress, last result
 *   GET  /api/targets/NAME              one of them
 *   GET  /api/targets/NAME/events       Server-Sent Events: state, progress, log, result
 *   POST /api/targets/NAME/flash        body: the image (raw, or multipart field "image")
 *   POST /api/targets/NAME/verify       ?address=0x..&format=auto|bin|hex|srec|elf
 *   POST /api/targets/NAME/run          reset into the bootloader, start the application
 *   POST /api/targets/NAME/info         connect and identify the chip
 *   GET|POST .../arduino/sync, POST .../arduino/upload, .../arduino/reset
 *                                       the arduinoOTA tool (--arduino-ota; arduino_ota.c)
 * Every /api/ request needs "Authorization: Bearer TOKEN" when a token is set
 * (arduino/upload also takes it as a Basic auth password; arduino/sync and
 * arduino/reset, which change nothing, need none: the tool sends none). */
#include <arpa/inet.h>
#include <errno.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

#include "arduino_hex.h"
#include "cli.h"
#include "serve.h"

/* The page, embedded at build time (serve_page.c, made by embed.cmake). */
extern const unsigned char serve_page_html[], serve_page_js[], serve_page_css[];
extern const size_t serve_page_html_len, serve_page_js_len, serve_page_css_len;

typedef struct request {
    serve_daemon *d;
    serve_target *t;
    serve_job_kind kind;
    int has_kind;         /* a job request (flash, verify, run, info): refusals name it */
    int is_upload;        /* flash/verify: a body is expected */
    int too_big;
    uint64_t started_us;
    uint8_t *body;        /* the image as it arrives (raw body or the multipart file) */
    size_t len, cap;
    size_t received;      /* raw bytes received (multipart framing included) */
    struct MHD_PostProcessor *pp;
    char filename[128];
    char form_address[32], form_format[16];
    int form_error;
    char peer[64];
    int ran_job;
    int got_file;         /* multipart: the "image" field was there */
    int arduino;          /* an arduinoOTA upload: its own deadline and HEX */
} request;

/* ---- responses ----------------------------------------------------------------- */

static enum MHD_Result reply(struct MHD_Connection *c, unsigned code, const char *type, const void *data, size_t n,
                             int copy)
{
    struct MHD_Response *r =
        MHD_create_response_from_buffer(n, (void *)data, copy ? MHD_RESPMEM_MUST_COPY : MHD_RESPMEM_PERSISTENT);
    if (!r)
        return MHD_NO;
    MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, type);
    MHD_add_response_header(r, MHD_HTTP_HEADER_CACHE_CONTROL, "no-store");
    MHD_add_response_header(r, "X-Content-Type-Options", "nosniff");
    if (!strncmp(type, "text/html", 9))
        MHD_add_response_header(r, "Content-Security-Policy",
                                "default-src 'self'; connect-src 'self'; img-src 'self' data:; frame-ancestors 'none'");
    if (code == MHD_HTTP_UNAUTHORIZED)
        MHD_add_response_header(r, MHD_HTTP_HEADER_WWW_AUTHENTICATE, "Bearer realm=\"peerflash\"");
    enum MHD_Result ret = MHD_queue_response(c, code, r);
    MHD_destroy_response(r);
    return ret;
}

/* A JSON body we own (malloc'd string). */
static enum MHD_Result reply_json(struct MHD_Connection *c, unsigned code, char *json)
{
    if (!json)
        return reply(c, MHD_HTTP_INTERNAL_SERVER_ERROR, "application/json", "{\"error\":\"out of memory\"}\n", 26, 0);
    size_t n = strlen(json);
    char *body = realloc(json, n + 2);
    if (!body) {
        free(json);
        return MHD_NO;
    }
    body[n] = '\n';
    body[n + 1] = 0;
    struct MHD_Response *r = MHD_create_response_from_buffer(n + 1, body, MHD_RESPMEM_MUST_FREE);
    if (!r) {
        free(body);
        return MHD_NO;
    }
    MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, "application/json");
    MHD_add_response_header(r, MHD_HTTP_HEADER_CACHE_CONTROL, "no-store");
    if (code == MHD_HTTP_UNAUTHORIZED)
        MHD_add_response_header(r, MHD_HTTP_HEADER_WWW_AUTHENTICATE, "Bearer realm=\"peerflash\"");
    enum MHD_Result ret = MHD_queue_response(c, code, r);
    MHD_destroy_response(r);
    return ret;
}

/* A refusal before any target was touched: the same JSON fields as a job's
 * result, with exit_code the CLI would give for that cause. */
static enum MHD_Result refuse(request *q, struct MHD_Connection *c, unsigned code, int exit_code, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));
static enum MHD_Result refuse(request *q, struct MHD_Connection *c, unsigned code, int exit_code, const char *fmt, ...)
{
    char msg[PF_DIAG_MAX + 100];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    char extra[96];
    snprintf(extra, sizeof extra, "\"status\":%u,\"peer\":\"%s\"", code, q ? q->peer : "?");
    if (q)
        serve_log(q->d, "refused", q->t, extra, "HTTP %u to %s: %s", code, q->peer, msg);
    return reply_json(c, code, serve_error_json(q ? q->t : NULL, q && q->has_kind ? serve_job_name(q->kind) : NULL, exit_code, msg));
}

static unsigned status_of_exit(int exit_code)
{
    switch (exit_code) {
    case PF_EXIT_OK: return MHD_HTTP_OK;
    case PF_EXIT_USAGE: return MHD_HTTP_BAD_REQUEST;
    case PF_EXIT_IMAGE: return MHD_HTTP_UNPROCESSABLE_CONTENT;
    case PF_EXIT_LINK:
    case PF_EXIT_TARGET:
    case PF_EXIT_VERIFY: return MHD_HTTP_BAD_GATEWAY; /* the target, behind us, failed */
    default: return exit_code >= PF_EXIT_SIGNAL_BASE ? MHD_HTTP_SERVICE_UNAVAILABLE : MHD_HTTP_INTERNAL_SERVER_ERROR;
    }
}

/* ---- the event stream ---------------------------------------------------------- */

typedef struct stream {
    serve_daemon *d;
    serve_target *t;
    uint64_t ev_seen, prog_seen;
    char *pending;
    size_t plen, poff;
    int hello_sent;
} stream;

static void stream_add(stream *s, const char *type, const char *data)
{
    size_t need = strlen(type) + strlen(data) + 20;
    char *p = realloc(s->pending, s->plen + need);
    if (!p)
        return;
    s->pending = p;
    s->plen += (size_t)snprintf(p + s->plen, need, "event: %s\ndata: %s\n\n", type, data);
}

static ssize_t stream_read(void *cls, uint64_t pos, char *buf, size_t max)
{
    (void)pos;
    stream *s = cls;
    serve_target *t = s->t;
    if (!s->hello_sent) {
        s->hello_sent = 1;
        char *j = serve_target_json(t);
        stream_add(s, "target", j ? j : "{}");
        free(j);
        pthread_mutex_lock(&t->lock);
        s->ev_seen = t->ev_seq;
        s->prog_seen = t->prog_seq;
        pthread_mutex_unlock(&t->lock);
    }
    while (s->poff == s->plen) {
        s->poff = s->plen = 0;
        if (atomic_load(&s->d->stopping))
            return MHD_CONTENT_READER_END_OF_STREAM;
        pthread_mutex_lock(&t->lock);
        if (t->ev_seq == s->ev_seen && t->prog_seq == s->prog_seen) {
            struct timespec until;
            clock_gettime(CLOCK_REALTIME, &until);
            until.tv_sec += 10;
            if (pthread_cond_timedwait(&t->changed, &t->lock, &until) == ETIMEDOUT &&
                t->ev_seq == s->ev_seen && t->prog_seq == s->prog_seen) {
                pthread_mutex_unlock(&t->lock);
                stream_add(s, "ping", "{}"); /* finds a reader that went away */
                continue;
            }
        }
        if (t->ev_seq - s->ev_seen > SERVE_EVENTS) /* this reader fell behind: the oldest kept */
            s->ev_seen = t->ev_seq - SERVE_EVENTS;
        int edge_sent = 0; /* a progress edge is newer than the snapshot step */
        for (; s->ev_seen < t->ev_seq; s->ev_seen++) {
            serve_event *e = &t->events[(s->ev_seen) % SERVE_EVENTS];
            stream_add(s, e->type, e->data ? e->data : "{}");
            edge_sent |= !strcmp(e->type, "progress");
        }
        if (t->prog_seq != s->prog_seen) {
            s->prog_seen = t->prog_seq;
            serve_progress pr;
            serve_progress_read(&t->prog, &pr);
            if (t->busy && pr.started && !edge_sent) {
                char p[128];
                snprintf(p, sizeof p, "{\"phase\":\"%s\",\"done\":%lu,\"total\":%lu}", pf_phase_name(pr.phase),
                         (unsigned long)pr.done, (unsigned long)pr.total);
                stream_add(s, "progress", p);
            }
        }
        pthread_mutex_unlock(&t->lock);
    }
    size_t n = s->plen - s->poff < max ? s->plen - s->poff : max;
    memcpy(buf, s->pending + s->poff, n);
    s->poff += n;
    return (ssize_t)n;
}

static void stream_free(void *cls)
{
    stream *s = cls;
    free(s->pending);
    free(s);
}

static enum MHD_Result start_stream(request *q, struct MHD_Connection *c)
{
    stream *s = calloc(1, sizeof *s);
    if (!s)
        return MHD_NO;
    s->d = q->d;
    s->t = q->t;
    struct MHD_Response *r = MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, 4096, stream_read, s, stream_free);
    if (!r) {
        free(s);
        return MHD_NO;
    }
    MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, "text/event-stream");
    MHD_add_response_header(r, MHD_HTTP_HEADER_CACHE_CONTROL, "no-store");
    enum MHD_Result ret = MHD_queue_response(c, MHD_HTTP_OK, r);
    MHD_destroy_response(r);
    return ret;
}

/* ---- uploads --------------------------------------------------------------------- */

static int body_append(request *q, const char *data, size_t n)
{
    if (q->len + n > q->d->cfg.max_body) {
        q->too_big = 1;
        return -1;
    }
    if (q->len + n > q->cap) {
        size_t cap = q->cap ? q->cap : 65536;
        while (cap < q->len + n)
            cap *= 2;
        if (cap > q->d->cfg.max_body)
            cap = q->d->cfg.max_body;
        uint8_t *b = realloc(q->body, cap);
        if (!b) {
            q->too_big = 1;
            return -1;
        }
        q->body = b;
        q->cap = cap;
    }
    memcpy(q->body + q->len, data, n);
    q->len += n;
    return 0;
}

static enum MHD_Result form_field(void *cls, enum MHD_ValueKind kind, const char *key, const char *filename,
                                  const char *content_type, const char *transfer_encoding, const char *data,
                                  uint64_t off, size_t size)
{
    (void)kind, (void)content_type, (void)transfer_encoding;
    request *q = cls;
    if (!strcmp(key, "image") || !strcmp(key, "file")) {
        q->got_file = 1;
        if (filename && !q->filename[0])
            snprintf(q->filename, sizeof q->filename, "%s", filename);
        if (size && body_append(q, data, size) < 0)
            return MHD_NO;
    } else if (!strcmp(key, "address") || !strcmp(key, "format")) {
        char *dst = key[0] == 'a' ? q->form_address : q->form_format;
        size_t cap = key[0] == 'a' ? sizeof q->form_address : sizeof q->form_format;
        if (off + size >= cap) {
            q->form_error = 1;
            return MHD_YES;
        }
        memcpy(dst + off, data, size);
        dst[off + size] = 0;
    }
    return MHD_YES;
}

static int parse_address(const char *s, uint32_t *out)
{
    char *end = NULL;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 0);
    if (errno || end == s || *end || v > 0xFFFFFFFFull || *s == '-')
        return -1;
    *out = (uint32_t)v;
    return 0;
}

/* ---- arduinoOTA (arduino_ota.c has the protocol facts) ------------------------- */

/* The upload outlasted the client's 10 s: not 200 (the IDE would say
 * "uploaded successfully"); the body, which the tool prints, says where the
 * result will be. */
static enum MHD_Result arduino_still_running(request *q, struct MHD_Connection *c)
{
    char *state = serve_target_json(q->t);
    size_t n = (state ? strlen(state) : 4) + 400;
    char *body = malloc(n);
    if (body)
        snprintf(body, n,
                 "{\"message\":\"peerflash: the %s of '%s' is still running after %u s (arduinoOTA waits 10 s): "
                 "its result will be in GET /api/targets/%s (last_result) and the daemon's log\",\"target\":%s}",
                 serve_job_name(q->kind), q->t->cfg.name, SERVE_ARDUINO_WAIT_US / 1000000u, q->t->cfg.name,
                 state ? state : "null");
    free(state);
    serve_log(q->d, "arduino", q->t, NULL, "%s from %s still running at the arduinoOTA deadline: answered 202",
              serve_job_name(q->kind), q->peer);
    return reply_json(c, MHD_HTTP_ACCEPTED, body);
}

/* sync: "SYNC" when the target is free for an upload, else what it is busy
 * with (the tool asks again, 10 times, 1 s apart). Always 200: the tool
 * requires sync_return's code from the POST. Unauthenticated (the tool sends
 * no credentials here): it tells the state only, not who is flashing. */
static enum MHD_Result arduino_sync(request *q, struct MHD_Connection *c)
{
    char text[200];
    pthread_mutex_lock(&q->t->lock);
    if (q->t->busy)
        snprintf(text, sizeof text, "BUSY: target '%s' is running a %s job\n", q->t->cfg.name,
                 serve_job_name(q->t->job));
    else
        snprintf(text, sizeof text, "SYNC\n");
    pthread_mutex_unlock(&q->t->lock);
    if (atomic_load(&q->d->stopping))
        snprintf(text, sizeof text, "STOPPING: the daemon is stopping\n");
    return reply(c, MHD_HTTP_OK, "text/plain; charset=utf-8", text, strlen(text), 1);
}

static enum MHD_Result run_upload(request *q, struct MHD_Connection *c)
{
    if (q->too_big)
        return refuse(q, c, MHD_HTTP_CONTENT_TOO_LARGE, PF_EXIT_IMAGE,
                      "the image is larger than the limit of %zu bytes (--max-body); nothing was written",
                      q->d->cfg.max_body);
    if (q->pp) {
        /* the library says whether the form ended properly (closing boundary) */
        int complete = MHD_destroy_post_processor(q->pp) == MHD_YES;
        q->pp = NULL;
        if (!complete && !q->form_error)
            q->form_error = 2;
        if (!q->form_error && !q->got_file)
            return refuse(q, c, MHD_HTTP_BAD_REQUEST, PF_EXIT_USAGE,
                          "the form has no file field named \"image\"; nothing was written");
    }
    if (q->form_error)
        return refuse(q, c, MHD_HTTP_BAD_REQUEST, PF_EXIT_USAGE, "%s",
                      q->form_error == 2 ? "the multipart/form-data body is malformed"
                                         : "a form field (address or format) is too long");
    const char *addr_s = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, "address");
    const char *format = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, "format");
    const char *name = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, "filename");
    if ((!addr_s || !*addr_s) && q->form_address[0])
        addr_s = q->form_address;
    if ((!format || !*format) && q->form_format[0])
        format = q->form_format;
    if (!name || !*name)
        name = q->filename[0] ? q->filename : NULL;
    uint32_t addr = 0;
    int has_addr = addr_s && *addr_s;
    if (has_addr && parse_address(addr_s, &addr) < 0)
        return refuse(q, c, MHD_HTTP_BAD_REQUEST, PF_EXIT_USAGE,
                      "address '%.40s' is not a number below 4 GiB (hex with 0x, or decimal)", addr_s);
    if (q->arduino) {
        /* arduinoOTA sent the .hex without its line breaks */
        size_t fixed_len = 0;
        uint8_t *fixed = serve_arduino_hex_lines(q->body, q->len, &fixed_len);
        if (fixed) {
            free(q->body);
            q->body = fixed;
            q->len = fixed_len;
        }
        if (!name)
            name = fixed ? "sketch.hex" : "sketch.bin";
    }
    pf_image_set *set = malloc(sizeof *set);
    if (!set)
        return MHD_NO;
    pf_image_set_init(set);
    pf_diag diag = {0};
    int r = serve_load_image(q->d, q->t, q->body, q->len, name, format, has_addr, addr, set, &diag);
    free(q->body);
    q->body = NULL;
    if (r < 0) {
        pf_image_set_free(set);
        free(set);
        if (r == PF_ERR_ARG)
            return refuse(q, c, MHD_HTTP_BAD_REQUEST, PF_EXIT_USAGE, "%s", diag.text);
        return refuse(q, c, MHD_HTTP_UNPROCESSABLE_CONTENT, PF_EXIT_IMAGE, "%s; nothing was written", diag.text);
    }
    char busy_with[120];
    int cl = serve_claim(q->d, q->t, q->kind, q->peer, busy_with, sizeof busy_with);
    if (cl < 0) {
        pf_image_set_free(set);
        free(set);
        return cl == -1 ? refuse(q, c, MHD_HTTP_CONFLICT, PF_EXIT_FAIL, "busy: target '%s' is running a %s",
                                 q->t->cfg.name, busy_with)
                        : refuse(q, c, MHD_HTTP_SERVICE_UNAVAILABLE, PF_EXIT_FAIL, "the daemon is stopping");
    }
    q->ran_job = 1;
    atomic_fetch_add(&q->d->answering, 1);
    serve_result res;
    if (q->arduino) {
        int done = serve_run_job_until(q->d, q->t, q->kind, set, q->peer, name,
                                       q->started_us + SERVE_ARDUINO_WAIT_US, &res);
        if (done < 0)
            return MHD_NO;
        if (!done)
            return arduino_still_running(q, c);
        return reply_json(c, status_of_exit(res.exit_code), res.json);
    }
    serve_job job = {q->kind, set, q->peer, name};
    serve_run_job(q->d, q->t, &job, &res);
    pf_image_set_free(set);
    free(set);
    return reply_json(c, status_of_exit(res.exit_code), res.json);
}

/* ---- routing ------------------------------------------------------------------------ */

static void peer_of(serve_daemon *d, struct MHD_Connection *c, char *out, size_t n)
{
    const union MHD_ConnectionInfo *ci = MHD_get_connection_info(c, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
    const char *scheme = d->cfg.tls_cert ? "https" : "http";
    snprintf(out, n, "%s ?", scheme);
    if (!ci || !ci->client_addr)
        return;
    char ip[INET6_ADDRSTRLEN] = "?";
    if (ci->client_addr->sa_family == AF_INET)
        inet_ntop(AF_INET, &((const struct sockaddr_in *)ci->client_addr)->sin_addr, ip, sizeof ip);
    else if (ci->client_addr->sa_family == AF_INET6)
        inet_ntop(AF_INET6, &((const struct sockaddr_in6 *)ci->client_addr)->sin6_addr, ip, sizeof ip);
    snprintf(out, n, "%s %s", scheme, ip);
}

/* The token as "Bearer TOKEN"; on the arduinoOTA routes also as the
 * password of Basic auth (any user name), which is all that tool sends. */
static int authorized(serve_daemon *d, struct MHD_Connection *c, int basic_ok)
{
    if (!d->cfg.token[0])
        return 1;
    const char *h = MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_AUTHORIZATION);
    if (h && !strncasecmp(h, "Bearer ", 7))
        return serve_token_ok(d, h + 7);
    if (!h || !basic_ok || strncasecmp(h, "Basic ", 6))
        return 0;
    char *password = NULL;
    char *user = MHD_basic_auth_get_username_password(c, &password);
    int ok = password && serve_token_ok(d, password);
    if (password) {
        memset(password, 0, strlen(password));
        MHD_free(password);
    }
    if (user)
        MHD_free(user);
    return ok;
}

static enum MHD_Result handle(void *cls, struct MHD_Connection *c, const char *url, const char *method,
                              const char *version, const char *upload_data, size_t *upload_data_size, void **con_cls)
{
    (void)version;
    serve_daemon *d = cls;
    request *q = *con_cls;
    if (q) { /* the body of an upload, then its end */
        if (q->d->cfg.upload_timeout_s &&
            pf_posix_now_us() - q->started_us > (uint64_t)q->d->cfg.upload_timeout_s * 1000000u) {
            serve_log(d, "refused", q->t, NULL, "upload from %s took longer than %u s: connection closed", q->peer,
                      q->d->cfg.upload_timeout_s);
            return MHD_NO;
        }
        if (*upload_data_size) {
            q->received += *upload_data_size;
            if (!q->too_big) {
                if (q->pp) {
                    if (q->received > q->d->cfg.max_body)
                        q->too_big = 1;
                    else if (MHD_post_process(q->pp, upload_data, *upload_data_size) != MHD_YES && !q->too_big)
                        q->form_error = 2; /* malformed multipart */
                } else {
                    body_append(q, upload_data, *upload_data_size);
                }
            }
            *upload_data_size = 0; /* consumed (or, past the limit, dropped) */
            return MHD_YES;
        }
        return run_upload(q, c);
    }
    q = calloc(1, sizeof *q);
    if (!q)
        return MHD_NO;
    *con_cls = q;
    q->d = d;
    q->started_us = pf_posix_now_us();
    peer_of(d, c, q->peer, sizeof q->peer);
    int get = !strcmp(method, MHD_HTTP_METHOD_GET) || !strcmp(method, MHD_HTTP_METHOD_HEAD);
    int post = !strcmp(method, MHD_HTTP_METHOD_POST);
    if (get && !strcmp(url, "/"))
        return reply(c, MHD_HTTP_OK, "text/html; charset=utf-8", serve_page_html, serve_page_html_len, 0);
    if (get && !strcmp(url, "/app.js"))
        return reply(c, MHD_HTTP_OK, "text/javascript; charset=utf-8", serve_page_js, serve_page_js_len, 0);
    if (get && !strcmp(url, "/app.css"))
        return reply(c, MHD_HTTP_OK, "text/css; charset=utf-8", serve_page_css, serve_page_css_len, 0);
    if (strncmp(url, "/api/", 5))
        return refuse(q, c, MHD_HTTP_NOT_FOUND, PF_EXIT_USAGE, "no such page: %.80s", url);
    /* arduinoOTA authenticates its upload only (Basic); its sync and reset
     * requests carry nothing, and those two routes change nothing */
    const char *ard = !strncmp(url, "/api/targets/", 13) ? strstr(url + 13, "/arduino/") : NULL;
    int ard_open = ard && (!strcmp(ard, "/arduino/sync") || !strcmp(ard, "/arduino/reset"));
    if (!ard_open && !authorized(d, c, ard != NULL))
        return refuse(q, c, MHD_HTTP_UNAUTHORIZED, PF_EXIT_USAGE, "%s",
                      ard ? "this daemon needs a token: give it to arduinoOTA as -password (Basic auth; see "
                            "docs/SERVE.md for the IDE), or send \"Authorization: Bearer TOKEN\""
                          : "this daemon needs a token: send the header \"Authorization: Bearer TOKEN\" (--token-file)");
    if (!strcmp(url, "/api/targets")) {
        if (!get)
            return refuse(q, c, MHD_HTTP_METHOD_NOT_ALLOWED, PF_EXIT_USAGE, "/api/targets takes GET");
        char *buf = NULL;
        size_t len = 0;
        FILE *f = open_memstream(&buf, &len);
        if (!f)
            return MHD_NO;
        fputs("{\"targets\":[", f);
        for (int i = 0; i < d->ntargets; i++) {
            char *j = serve_target_json(&d->targets[i]);
            fprintf(f, "%s%s", i ? "," : "", j ? j : "null");
            free(j);
        }
        fprintf(f, "],\"stopping\":%s}", atomic_load(&d->stopping) ? "true" : "false");
        fclose(f);
        return reply_json(c, MHD_HTTP_OK, buf);
    }
    if (strncmp(url, "/api/targets/", 13))
        return refuse(q, c, MHD_HTTP_NOT_FOUND, PF_EXIT_USAGE, "no such API: %.80s", url);
    char name[64];
    const char *rest = url + 13, *slash = strchr(rest, '/');
    size_t nl = slash ? (size_t)(slash - rest) : strlen(rest);
    if (nl == 0 || nl >= sizeof name)
        return refuse(q, c, MHD_HTTP_NOT_FOUND, PF_EXIT_USAGE, "no such target");
    memcpy(name, rest, nl);
    name[nl] = 0;
    q->t = serve_find_target(d, name);
    if (!q->t)
        return refuse(q, c, MHD_HTTP_NOT_FOUND, PF_EXIT_USAGE, "no target named '%.63s' (GET /api/targets lists them)",
                      name);
    const char *action = slash ? slash + 1 : "";
    if (!*action) {
        if (!get)
            return refuse(q, c, MHD_HTTP_METHOD_NOT_ALLOWED, PF_EXIT_USAGE, "/api/targets/NAME takes GET");
        return reply_json(c, MHD_HTTP_OK, serve_target_json(q->t));
    }
    if (!strcmp(action, "events")) {
        if (!get)
            return refuse(q, c, MHD_HTTP_METHOD_NOT_ALLOWED, PF_EXIT_USAGE, "events takes GET");
        return start_stream(q, c);
    }
    static const struct {
        const char *word;
        serve_job_kind kind;
        int upload;
    } actions[] = {{"flash", SERVE_JOB_FLASH, 1}, {"verify", SERVE_JOB_VERIFY, 1},
                   {"run", SERVE_JOB_RUN, 0},     {"reset", SERVE_JOB_RUN, 0},
                   {"info", SERVE_JOB_INFO, 0},   {"arduino/upload", SERVE_JOB_FLASH, 1}};
    if (!strncmp(action, "arduino/", 8)) {
        if (!q->t->cfg.arduino_ota)
            return refuse(q, c, MHD_HTTP_NOT_FOUND, PF_EXIT_USAGE,
                          "target '%s' is not served to arduinoOTA (give it --arduino-ota)", name);
        if (!strcmp(action, "arduino/sync")) {
            if (!get && !post)
                return refuse(q, c, MHD_HTTP_METHOD_NOT_ALLOWED, PF_EXIT_USAGE, "arduino/sync takes GET or POST");
            return arduino_sync(q, c);
        }
        if (!strcmp(action, "arduino/reset")) {
            if (!post)
                return refuse(q, c, MHD_HTTP_METHOD_NOT_ALLOWED, PF_EXIT_USAGE, "arduino/reset takes POST");
            /* the flash job starts the application itself (unless --no-run) */
            char text[160];
            snprintf(text, sizeof text,
                     q->t->cfg.run ? "the flash job started the application\n"
                                   : "--no-run: the application was not started (POST /api/targets/%s/run starts it)\n",
                     name);
            return reply(c, MHD_HTTP_OK, "text/plain; charset=utf-8", text, strlen(text), 1);
        }
        q->arduino = 1;
    }
    size_t i;
    for (i = 0; i < sizeof actions / sizeof actions[0]; i++)
        if (!strcmp(action, actions[i].word))
            break;
    if (i == sizeof actions / sizeof actions[0])
        return refuse(q, c, MHD_HTTP_NOT_FOUND, PF_EXIT_USAGE,
                      "no action '%.40s' (flash, verify, run, reset, info, events%s)", action,
                      q->t->cfg.arduino_ota ? "; arduino/sync, arduino/upload, arduino/reset" : "");
    q->kind = actions[i].kind;
    q->has_kind = 1;
    if (!post)
        return refuse(q, c, MHD_HTTP_METHOD_NOT_ALLOWED, PF_EXIT_USAGE, "%s takes POST", actions[i].word);
    if (atomic_load(&d->stopping))
        return refuse(q, c, MHD_HTTP_SERVICE_UNAVAILABLE, PF_EXIT_FAIL, "the daemon is stopping");
    /* a busy target is refused before its body is read */
    pthread_mutex_lock(&q->t->lock);
    int busy = q->t->busy;
    serve_job_kind running = q->t->job;
    char src[80];
    snprintf(src, sizeof src, "%s", q->t->job_source);
    pthread_mutex_unlock(&q->t->lock);
    if (busy)
        return refuse(q, c, MHD_HTTP_CONFLICT, PF_EXIT_FAIL, "busy: target '%s' is running a %s job from %s", name,
                      serve_job_name(running), src);
    if (!actions[i].upload) {
        char busy_with[120];
        int cl = serve_claim(d, q->t, q->kind, q->peer, busy_with, sizeof busy_with);
        if (cl < 0)
            return cl == -1 ? refuse(q, c, MHD_HTTP_CONFLICT, PF_EXIT_FAIL, "busy: target '%s' is running a %s", name,
                                     busy_with)
                            : refuse(q, c, MHD_HTTP_SERVICE_UNAVAILABLE, PF_EXIT_FAIL, "the daemon is stopping");
        q->ran_job = 1;
        atomic_fetch_add(&d->answering, 1);
        serve_job job = {q->kind, NULL, q->peer, NULL};
        serve_result res;
        serve_run_job(d, q->t, &job, &res);
        return reply_json(c, status_of_exit(res.exit_code), res.json);
    }
    q->is_upload = 1;
    const char *cl = MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_LENGTH);
    if (cl && strtoull(cl, NULL, 10) > d->cfg.max_body)
        return refuse(q, c, MHD_HTTP_CONTENT_TOO_LARGE, PF_EXIT_IMAGE,
                      "the image (%s bytes) is larger than the limit of %zu bytes (--max-body); nothing was written",
                      cl, d->cfg.max_body);
    const char *ct = MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_TYPE);
    if (ct && !strncasecmp(ct, "multipart/form-data", 19)) {
        q->pp = MHD_create_post_processor(c, 16384, form_field, q);
        if (!q->pp)
            return refuse(q, c, MHD_HTTP_BAD_REQUEST, PF_EXIT_USAGE, "a multipart body without a usable boundary");
    }
    return MHD_YES;
}

static void completed(void *cls, struct MHD_Connection *c, void **con_cls, enum MHD_RequestTerminationCode why)
{
    (void)c;
    serve_daemon *d = cls;
    request *q = *con_cls;
    if (!q)
        return;
    if (q->is_upload && why != MHD_REQUEST_TERMINATED_COMPLETED_OK && q->body)
        serve_log(d, "refused", q->t, NULL, "upload from %s ended after %zu bytes (the client went away or timed "
                  "out): nothing was written", q->peer, q->received);
    if (q->ran_job)
        atomic_fetch_sub(&d->answering, 1);
    if (q->pp)
        MHD_destroy_post_processor(q->pp);
    free(q->body);
    free(q);
    *con_cls = NULL;
}

static void mhd_log(void *cls, const char *fmt, va_list ap)
{
    serve_daemon *d = cls;
    char msg[400];
    vsnprintf(msg, sizeof msg, fmt, ap);
    size_t n = strlen(msg);
    while (n && (msg[n - 1] == '\n' || msg[n - 1] == '\r'))
        msg[--n] = 0;
    serve_log(d, "http", NULL, NULL, "%s", msg);
}

int serve_http_start(serve_daemon *d, char *why, size_t n)
{
    struct sockaddr_storage ss;
    memset(&ss, 0, sizeof ss);
    socklen_t sl;
    unsigned flags = MHD_USE_THREAD_PER_CONNECTION | MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_ERROR_LOG;
    struct sockaddr_in *s4 = (struct sockaddr_in *)&ss;
    struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&ss;
    if (inet_pton(AF_INET, d->cfg.listen_addr, &s4->sin_addr) == 1) {
        s4->sin_family = AF_INET;
        s4->sin_port = htons(d->cfg.listen_port);
        sl = sizeof *s4;
    } else if (inet_pton(AF_INET6, d->cfg.listen_addr, &s6->sin6_addr) == 1) {
        s6->sin6_family = AF_INET6;
        s6->sin6_port = htons(d->cfg.listen_port);
        sl = sizeof *s6;
        flags |= MHD_USE_IPv6;
    } else {
        snprintf(why, n, "--listen: '%s' is not an IPv4 or IPv6 address", d->cfg.listen_addr);
        return -1;
    }
    (void)sl;
    /* TLS: the library's own GnuTLS backend with the PEM text serve_tls_load
     * checked; without TLS the option array is empty */
    int tls = d->cfg.tls_cert != NULL;
    struct MHD_OptionItem tls_opts[] = {{MHD_OPTION_HTTPS_MEM_CERT, 0, d->cfg.tls_cert},
                                        {MHD_OPTION_HTTPS_MEM_KEY, 0, d->cfg.tls_key},
                                        {MHD_OPTION_END, 0, NULL}};
    if (tls)
        flags |= MHD_USE_TLS;
    else
        tls_opts[0].option = MHD_OPTION_END;
    d->http = MHD_start_daemon(flags, d->cfg.listen_port, NULL, NULL, handle, d,
                               MHD_OPTION_EXTERNAL_LOGGER, mhd_log, d, /* first, so every message comes here */
                               MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&ss,
                               MHD_OPTION_ARRAY, tls_opts,
                               /* past the cap the library stops accepting: a new
                                * connection waits in the listen queue until one closes */
                               MHD_OPTION_CONNECTION_LIMIT, d->cfg.max_connections,
                               MHD_OPTION_CONNECTION_TIMEOUT, d->cfg.idle_timeout_s,
                               MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)32768, /* request line + headers */
                               MHD_OPTION_NOTIFY_COMPLETED, completed, d,
                               MHD_OPTION_END);
    if (!d->http) {
        snprintf(why, n, "cannot listen on %s:%u%s: %s", d->cfg.listen_addr, (unsigned)d->cfg.listen_port,
                 tls ? " (HTTPS)" : "", errno ? strerror(errno) : "libmicrohttpd refused to start");
        return -1;
    }
    const union MHD_DaemonInfo *di = MHD_get_daemon_info(d->http, MHD_DAEMON_INFO_BIND_PORT);
    d->http_port = di ? di->port : d->cfg.listen_port;
    return 0;
}

void serve_http_stop(serve_daemon *d)
{
    if (!d->http)
        return;
    MHD_stop_daemon(d->http);
    d->http = NULL;
}
