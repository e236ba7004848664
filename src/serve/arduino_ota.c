/* The Arduino IDE's arduinoOTA tool against `peerflash serve` (--arduino-ota).
 *
 * Arduino's AVR core uploads to a network port with arduinoOTA, not espota
 * (arduino:avr platform.txt, tools.arduino_ota.upload.pattern). What the tool
 * does (arduino/arduinoOTA main.go, 1.1.1 to 1.4.1, read for the facts):
 *   POST {endpoint_sync}   must answer the status code of sync_return
 *                          ("200:SYNC"), else "Failed to reset the board";
 *   GET  {endpoint_sync}   repeated up to 10 times, 1 s apart, until the body
 *                          contains "SYNC" (then it goes on regardless);
 *   POST {endpoint_upload} the .hex with every line break removed, as
 *                          application/x-www-form-urlencoded (with -b: the
 *                          raw .bin as application/octet-stream); Basic auth
 *                          only when -username and -password are given;
 *                          200 is success, anything else prints the body;
 *   POST {endpoint_reset}  after a success; a failure only prints "reset
 *                          manually".
 * Every request gives up after 10 s (http.Client Timeout; -t from 1.4.0, which
 * the AVR pattern does not pass). The endpoints, the HTTP port and the sync
 * answer come from the port's mDNS TXT keys (arduino/mdns-discovery: the SRV
 * port becomes "port", each TXT key=value a property), published by mdns.c.
 *
 * This file: putting the HEX's lines back, and a job the HTTP thread waits
 * for only until the client's deadline (the job goes on after that; its
 * result is the target's last_result). */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "serve.h"

typedef struct timed_job {
    serve_daemon *d;
    serve_target *t;
    serve_job_kind kind;
    pf_image_set *set;
    char source[80], name[96];
    pthread_mutex_t m;
    pthread_cond_t cv;
    int done, abandoned;
    serve_result res;
} timed_job;

static void timed_free(timed_job *j)
{
    if (j->set) {
        pf_image_set_free(j->set);
        free(j->set);
    }
    free(j->res.json);
    pthread_mutex_destroy(&j->m);
    pthread_cond_destroy(&j->cv);
    free(j);
}

static void *timed_main(void *arg)
{
    timed_job *j = arg;
    serve_job job = {j->kind, j->set, j->source, j->name[0] ? j->name : NULL};
    serve_result res;
    serve_run_job(j->d, j->t, &job, &res);
    pthread_mutex_lock(&j->m);
    j->res = res;
    j->done = 1;
    int abandoned = j->abandoned;
    pthread_cond_signal(&j->cv);
    pthread_mutex_unlock(&j->m);
    if (abandoned) /* the client was answered already: the result stays in last_result */
        timed_free(j);
    return NULL;
}

int serve_run_job_until(serve_daemon *d, serve_target *t, serve_job_kind kind, pf_image_set *set, const char *source,
                        const char *name, uint64_t deadline_us, serve_result *out)
{
    timed_job *j = calloc(1, sizeof *j);
    if (!j) {
        pf_image_set_free(set);
        free(set);
        serve_release(t);
        return -1;
    }
    j->d = d;
    j->t = t;
    j->kind = kind;
    j->set = set;
    snprintf(j->source, sizeof j->source, "%s", source ? source : "?");
    snprintf(j->name, sizeof j->name, "%s", name ? name : "");
    pthread_mutex_init(&j->m, NULL);
    pthread_condattr_t ca; /* waits on the monotonic clock, as the deadline */
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&j->cv, &ca);
    pthread_condattr_destroy(&ca);
    pthread_attr_t attr;
    pthread_t th;
    pthread_attr_init(&attr);
    pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    int rc = pthread_create(&th, &attr, timed_main, j);
    pthread_attr_destroy(&attr);
    if (rc) { /* no thread: run it here, the client may time out */
        serve_job job = {kind, set, j->source, j->name[0] ? j->name : NULL};
        serve_run_job(d, t, &job, out);
        j->res.json = NULL;
        timed_free(j);
        return 1;
    }
    pthread_mutex_lock(&j->m);
    while (!j->done) {
        if (pf_posix_now_us() >= deadline_us)
            break;
        struct timespec ts = {(time_t)(deadline_us / 1000000u), (long)(deadline_us % 1000000u) * 1000L};
        pthread_cond_timedwait(&j->cv, &j->m, &ts);
    }
    int done = j->done;
    if (done) {
        *out = j->res;
        j->res.json = NULL;
    } else {
        j->abandoned = 1;
    }
    pthread_mutex_unlock(&j->m);
    if (done)
        timed_free(j);
    return done;
}
