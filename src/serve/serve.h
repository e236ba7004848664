/* peerflash serve: the daemon that owns targets and flashes what arrives
 * over the network (HTTP API, upload page).
 *
 * Layering: cli/cmd_serve.c parses the command line into a serve_config;
 * daemon.c owns the targets (one job at a time each, a thread per job,
 * progress, events, the log, stop on SIGINT/SIGTERM); http.c is the front end
 * on libmicrohttpd. A job is the same library job as `peerflash flash`
 * (pf_job_flash / pf_job_verify) on a port opened for that job only.
 * Host only: this code allocates and uses threads. */
#ifndef PEERFLASH_SERVE_H
#define PEERFLASH_SERVE_H

#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "peerflash/peerflash.h"
#include "peerflash/pf_image_file.h"
#include "peerflash/pf_posix.h"

#define SERVE_MAX_TARGETS 16
#define SERVE_MAX_OPTIONS 8
#define SERVE_EVENTS 64 /* events kept per target for late stream readers */

/* One --target stanza of the command line. */
typedef struct serve_target_cfg {
    const char *name;   /* --name, or the driver name (+ a number when repeated) */
    const char *driver; /* --target: avr, esp, stm32, agent */
    const char *port;   /* --port */
    uint32_t baud, connect_baud;
    const char *chip, *reset;
    int verify, run, erase_all, skip;
    const char *options[SERVE_MAX_OPTIONS + 1]; /* driver options, "name" or "name=value", NULL-terminated */
    int noptions;
    uint16_t ota_port;  /* --ota-port: the espota UDP port; 0 = none */
    uint16_t bridge_port; /* --bridge-port: raw TCP serial bridge; 0 = none */
    uint16_t rfc2217_port; /* --rfc2217-port: RFC 2217 serial bridge; 0 = none */
    const char *board;  /* --board: the mDNS TXT "board" (default: the driver name) */
    int arduino_ota;    /* --arduino-ota: advertised for the IDE's arduinoOTA tool (HTTP) */
} serve_target_cfg;

typedef struct serve_config {
    serve_target_cfg targets[SERVE_MAX_TARGETS];
    int ntargets;
    const char *listen_addr;   /* "127.0.0.1" */
    uint16_t listen_port;      /* 8080; 0 = any free port (printed in the ready line) */
    char token[256];           /* Bearer token from --token-file; "" = no authentication */
    size_t max_body;           /* bytes of one upload */
    unsigned max_connections;
    unsigned idle_timeout_s;   /* a connection silent this long is closed (headers included) */
    unsigned upload_timeout_s; /* a whole upload must arrive within this */
    unsigned grace_s;          /* on SIGINT/SIGTERM, running jobs get this long to finish */
    int json_log;
    int verbose;
    int mdns;                  /* advertise the espota ports over mDNS (avahi) */
    char ota_password_md5[33]; /* MD5 hex of --ota-password-file's password; "" = none */
    char ota_password_sha256[65]; /* its SHA-256 hex (espota 3.3.1+) */
    const char *tls_cert_path, *tls_key_path; /* --tls-cert, --tls-key; NULL = plain HTTP */
    char *tls_cert, *tls_key;  /* their PEM text once serve_tls_load checked them; NULL = plain HTTP */
} serve_config;

typedef enum serve_job_kind {
    SERVE_JOB_FLASH = 0,
    SERVE_JOB_VERIFY,
    SERVE_JOB_RUN,  /* reset into the bootloader and start the application */
    SERVE_JOB_INFO, /* connect and identify the chip */
    SERVE_JOB_BRIDGE, /* a bridge client (raw or RFC 2217) holds the port */
} serve_job_kind;

const char *serve_job_name(serve_job_kind k);

typedef struct serve_event {
    uint64_t seq;
    char type[12]; /* "state", "log", "result" */
    char *data;    /* JSON object (owned) */
} serve_event;

/* A consistent copy of a job's progress. */
typedef struct serve_progress {
    int started; /* 0 until the job reported its first step */
    pf_phase phase;
    uint32_t done, total;
} serve_progress;

/* Its shared cell: gen is odd while the one writer changes the fields. */
typedef struct serve_progress_cell {
    atomic_uint gen;
    atomic_int started, phase;
    atomic_uint done, total;
} serve_progress_cell;

/* The writer's side (one thread at a time) and the readers' (any thread, no lock). */
void serve_progress_write(serve_progress_cell *c, const serve_progress *p);
void serve_progress_read(serve_progress_cell *c, serve_progress *out);

/* A TCP serial bridge listener of one target (bridge.c). */
typedef struct serve_bridge {
    int fd;           /* listening socket, -1 if none */
    int rfc2217;      /* 0 raw, 1 RFC 2217 */
    uint16_t tcp_port;
    pthread_t thread;
    struct serve_target *target;
} serve_bridge;

typedef struct serve_target {
    serve_target_cfg cfg;
    int index;
    pthread_mutex_t lock;
    pthread_cond_t changed;
    /* under lock: */
    int busy;
    serve_job_kind job;
    char job_source[80];  /* "http 127.0.0.1" */
    uint64_t prog_seq;    /* bumped at each published progress step */
    uint64_t ev_seq;      /* sequence number of the newest event */
    serve_event events[SERVE_EVENTS];
    char chip[32];        /* "" until a job connected */
    char *last_result;    /* JSON object of the last job, or NULL */
    unsigned long jobs_ok, jobs_failed;
    /* The progress of the running job: written by the job's thread (and
     * reset by serve_claim before it runs), read by any thread through
     * serve_progress_read without t->lock (a sequence lock), so that status
     * requests never hold up the job and the job takes t->lock only at
     * phase edges and at the 100 ms publication steps. */
    serve_progress_cell prog;
    uint64_t last_pub_us; /* the job's thread only */
    /* set from other threads: the running job must stop now */
    atomic_int cancel;
    struct serve_daemon *daemon;
    int ota_fd;           /* espota UDP socket, -1 if none */
    pthread_t ota_thread;
    serve_bridge raw_bridge;     /* --bridge-port */
    serve_bridge rfc2217_bridge; /* --rfc2217-port */
} serve_target;

typedef struct serve_daemon serve_daemon;
struct serve_daemon {
    serve_config cfg;
    serve_target targets[SERVE_MAX_TARGETS];
    int ntargets;
    atomic_int stopping;  /* a signal came: no new jobs */
    atomic_int answering; /* requests whose job ran and whose answer is not sent yet */
    int stop_signal;
    char tmpdir[64];      /* private directory for uploaded images being parsed */
    atomic_uint upload_seq;
    pthread_mutex_t log_lock;
    struct MHD_Daemon *http;
    uint16_t http_port;
};

/* A job to run: the parsed image (flash, verify) and where it came from. */
typedef struct serve_job {
    serve_job_kind kind;
    const pf_image_set *images; /* flash, verify; NULL otherwise */
    const char *source;         /* "http 127.0.0.1", for the log */
    const char *image_name;     /* the client's file name, for the log */
} serve_job;

/* The outcome: the JSON object (same fields as `peerflash flash --json`)
 * and its exit_code (0 ok; the CLI's statuses). */
typedef struct serve_result {
    int exit_code;
    char *json; /* owned by the caller: free() */
} serve_result;

/* tls.c: reads --tls-cert and --tls-key into cfg->tls_cert/tls_key after
 * checking that this libmicrohttpd has TLS, that both are PEM, that the key
 * is the certificate's and that the certificate is in its validity period.
 * Returns PF_EXIT_OK (also when neither is given), else the exit status
 * (PF_EXIT_USAGE: a bad or missing file; PF_EXIT_FAIL: no TLS in the
 * library) with why saying which file and what is wrong. */
int serve_tls_load(serve_config *cfg, char *why, size_t n);

/* Entry point from the CLI: runs until SIGINT/SIGTERM; returns the exit status. */
int serve_main(const serve_config *cfg);

serve_target *serve_find_target(serve_daemon *d, const char *name);

/* Claims the target for one job: 0, or -1 busy (busy_with says with what),
 * or -2 the daemon is stopping. */
int serve_claim(serve_daemon *d, serve_target *t, serve_job_kind kind, const char *source, char *busy_with,
                size_t n);
/* Releases a claimed target without a job result (the bridge). */
void serve_release(serve_target *t);
/* Runs the job on a claimed target and releases it. */
void serve_run_job(serve_daemon *d, serve_target *t, const serve_job *job, serve_result *res);

/* Parses an uploaded image held in memory, exactly as `flash` reads a file
 * (content detection; a name hint or format breaks ties). A raw binary
 * without an address goes to the target's application address. On failure
 * the diag names the client's file name and the cause; PF_ERR_ARG = a bad
 * address or format parameter. */
int serve_load_image(serve_daemon *d, const serve_target *t, const uint8_t *data, size_t n, const char *name,
                     const char *format, int has_addr, uint32_t addr, pf_image_set *set, pf_diag *diag);
/* The application address a raw binary goes to when none is given. */
uint32_t serve_app_address(const char *driver);

/* The target's state as a JSON object (for GET /api/targets); malloc'd. */
char *serve_target_json(serve_target *t);
/* A JSON object for an error that never reached a target (same fields). */
char *serve_error_json(const serve_target *t, const char *command, int exit_code, const char *error);

/* One line per event on stderr (text, or JSON with --json-log).
 * target may be NULL; extra is a JSON fragment ("\"k\":1,...") or NULL. */
void serve_log(serve_daemon *d, const char *event, const serve_target *t, const char *extra, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));

/* Appends an event for stream readers (data: a JSON object, copied). */
void serve_event_push(serve_target *t, const char *type, const char *data);

/* http.c: starts and stops the front end. */
int serve_http_start(serve_daemon *d, char *why, size_t n);
void serve_http_stop(serve_daemon *d);

/* ota.c: the espota front end of one target (cfg.ota_port). */
int serve_ota_start(serve_daemon *d, serve_target *t, char *why, size_t n);
void serve_ota_stop(serve_target *t);
/* bridge.c: a TCP serial bridge of one target (raw: cfg.bridge_port,
 * RFC 2217: cfg.rfc2217_port); b is one of t's two, fd/rfc2217/tcp_port set. */
int serve_bridge_start(serve_daemon *d, serve_target *t, serve_bridge *b, char *why, size_t n);
void serve_bridge_stop(serve_bridge *b);
/* arduino_ota.c: the Arduino IDE's arduinoOTA tool (AVR boards' network
 * upload). Its HTTP client gives up after 10 s, the upload's body included. */
#define SERVE_ARDUINO_WAIT_US 9000000u /* answer an upload within this of its start */
/* Runs a job on a claimed target in its own thread and waits for it until
 * deadline_us (pf_posix_now_us). Takes set (malloc'd, may be NULL). 1: done,
 * *out is its result; 0: still running (it finishes on its own, its result
 * becomes the target's last_result); -1: no memory (the target released). */
int serve_run_job_until(serve_daemon *d, serve_target *t, serve_job_kind kind, pf_image_set *set, const char *source,
                        const char *name, uint64_t deadline_us, serve_result *out);

/* mdns.c: advertises the espota ports as _arduino._tcp through avahi-daemon. */
void serve_mdns_start(serve_daemon *d);
void serve_mdns_stop(serve_daemon *d);

/* Constant-time comparison of a presented token with ours. */
int serve_token_ok(const serve_daemon *d, const char *presented);

#endif
