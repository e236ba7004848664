/* Pulling an image over HTTP(S) on a host (libcurl): the whole image into
 * memory, where the image readers take it as they take a file's content.
 *
 * A broken transfer is resumed with a Range request from the byte it
 * reached (with If-Range on the first answer's ETag, so a file that changed
 * meanwhile is fetched again from the start instead of spliced); redirects
 * are followed (http and https only, at most 5); TLS checks the server
 * against the system CA store, or against only the CAs in `cacert`. The
 * whole download, resumes included, must finish within timeout_ms; an image
 * larger than max_bytes (announced or received) is refused.
 *
 * Every failure is PF_ERR_IO (no connection, HTTP error, TLS, broken beyond
 * resuming), PF_ERR_TIMEOUT or PF_ERR_FORMAT (larger than max_bytes), with a
 * message naming the URL, the byte count reached and the cause. */
#ifndef PEERFLASH_PF_HTTP_H
#define PEERFLASH_PF_HTTP_H

#include <stddef.h>
#include <stdint.h>

#include "pf_err.h"

#ifdef __cplusplus
extern "C" {
#endif

/* done and total in bytes; total is 0 while unknown. */
typedef void (*pf_http_progress_fn)(void *user, uint64_t done, uint64_t total);

typedef struct pf_http_options {
    const char *cacert;          /* PEM file of the CAs to trust; NULL: the system store */
    uint32_t timeout_ms;         /* the whole download, resumes included */
    uint32_t connect_timeout_ms; /* each connection */
    uint64_t max_bytes;          /* largest image accepted */
    unsigned max_resumes;        /* Range requests after broken transfers */
    pf_http_progress_fn progress;
    void *progress_user;
} pf_http_options;

#define PF_HTTP_MAX_BYTES_DEFAULT ((uint64_t)64 << 20)
#define PF_HTTP_OPTIONS_DEFAULT() \
    { .cacert = NULL, .timeout_ms = 120000u, .connect_timeout_ms = 10000u, .max_bytes = PF_HTTP_MAX_BYTES_DEFAULT, \
      .max_resumes = 5u, .progress = NULL, .progress_user = NULL }

/* 1 if s starts with http:// or https:// (any case). */
int pf_http_is_url(const char *s);

/* Downloads url into a new heap buffer (*out, free() it) of *size bytes.
 * o may be NULL for the defaults. */
int pf_http_fetch(const char *url, const pf_http_options *o, uint8_t **out, size_t *size, pf_diag *diag);

#ifdef __cplusplus
}
#endif
#endif
