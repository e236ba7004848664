/* Image download over HTTP(S) through libcurl (see pf_http.h). */
#include <curl/curl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "peerflash/pf_http.h"

int pf_http_is_url(const char *s)
{
    return s && (!strncasecmp(s, "http://", 7) || !strncasecmp(s, "https://", 8));
}

typedef struct download {
    const pf_http_options *o;
    uint8_t *buf;
    size_t len, cap;
    uint64_t attempt_start; /* bytes held when this attempt began */
    uint64_t total;         /* the whole size, once a response told it; 0 = unknown */
    int too_big;
    int nomem;
} download;

static size_t on_data(char *data, size_t one, size_t n, void *user)
{
    download *d = user;
    size_t len = one * n;
    if ((uint64_t)d->len + len > d->o->max_bytes) {
        d->too_big = 1;
        return 0; /* makes curl stop with CURLE_WRITE_ERROR */
    }
    if (d->len + len > d->cap) {
        size_t ncap = d->cap ? d->cap : 64 * 1024;
        while (ncap < d->len + len)
            ncap *= 2;
        uint8_t *nb = realloc(d->buf, ncap);
        if (!nb) {
            d->nomem = 1;
            return 0;
        }
        d->buf = nb;
        d->cap = ncap;
    }
    memcpy(d->buf + d->len, data, len);
    d->len += len;
    return len;
}

static int on_progress(void *user, curl_off_t dltotal, curl_off_t dlnow, curl_off_t ultotal, curl_off_t ulnow)
{
    (void)dlnow;
    (void)ultotal;
    (void)ulnow;
    download *d = user;
    /* during a redirect dltotal is the redirect's own body: show it only
     * when it can be this file's */
    uint64_t total = d->total;
    if (!total && dltotal > 0 && d->attempt_start + (uint64_t)dltotal >= d->len)
        total = d->attempt_start + (uint64_t)dltotal;
    if (d->o->progress)
        d->o->progress(d->o->progress_user, d->len, total);
    return 0;
}

/* Transfers that broke off and may go on from where they stopped. */
static int resumable(CURLcode c)
{
    return c == CURLE_PARTIAL_FILE || c == CURLE_RECV_ERROR || c == CURLE_GOT_NOTHING || c == CURLE_SEND_ERROR ||
           c == CURLE_HTTP2 || c == CURLE_HTTP2_STREAM;
}

static uint32_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint32_t)((uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u);
}

static int init_curl_once(void)
{
    static int done;
    if (!done && curl_global_init(CURL_GLOBAL_DEFAULT) == CURLE_OK)
        done = 1;
    return done ? 0 : -1;
}

int pf_http_fetch(const char *url, const pf_http_options *opts, uint8_t **out, size_t *size, pf_diag *diag)
{
    pf_http_options defaults = PF_HTTP_OPTIONS_DEFAULT();
    const pf_http_options *o = opts ? opts : &defaults;
    *out = NULL;
    *size = 0;
    if (init_curl_once() != 0)
        return pf_diag_set(diag, PF_ERR_IO, "%s: cannot start libcurl", url);
    CURL *c = curl_easy_init();
    if (!c)
        return pf_diag_set(diag, PF_ERR_IO, "%s: cannot start libcurl", url);
    download d = {o, NULL, 0, 0, 0, 0, 0, 0};
    char errbuf[CURL_ERROR_SIZE];
    char etag[256] = "", if_range[300];
    char *where = NULL; /* the URL after redirects: resumes go there directly */
    struct curl_slist *headers = NULL;
    uint32_t deadline = now_ms() + o->timeout_ms;
    unsigned resumes = 0, restarts = 0;
    int rc = PF_OK;
    for (;;) {
        int32_t left = (int32_t)(deadline - now_ms());
        if (left <= 0) {
            rc = pf_diag_set(diag, PF_ERR_TIMEOUT, "%s: download timed out after %u s with %zu bytes", url,
                             o->timeout_ms / 1000u, d.len);
            break;
        }
        curl_easy_reset(c);
        errbuf[0] = '\0';
        curl_easy_setopt(c, CURLOPT_URL, where ? where : url);
        curl_easy_setopt(c, CURLOPT_ERRORBUFFER, errbuf);
        curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
        curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, 1L);
        curl_easy_setopt(c, CURLOPT_MAXREDIRS, 5L);
        curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
        curl_easy_setopt(c, CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
        curl_easy_setopt(c, CURLOPT_FAILONERROR, 1L);
        curl_easy_setopt(c, CURLOPT_USERAGENT, "peerflash");
        curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, (long)o->connect_timeout_ms);
        curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, (long)left);
        curl_easy_setopt(c, CURLOPT_MAXFILESIZE_LARGE, (curl_off_t)(o->max_bytes - d.len));
        curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_data);
        curl_easy_setopt(c, CURLOPT_WRITEDATA, &d);
        curl_easy_setopt(c, CURLOPT_NOPROGRESS, 0L);
        curl_easy_setopt(c, CURLOPT_XFERINFOFUNCTION, on_progress);
        curl_easy_setopt(c, CURLOPT_XFERINFODATA, &d);
        if (o->cacert) {
            curl_easy_setopt(c, CURLOPT_CAINFO, o->cacert);
            curl_easy_setopt(c, CURLOPT_CAPATH, NULL); /* only the CAs given */
        }
        curl_slist_free_all(headers);
        headers = NULL;
        if (d.len) {
            curl_easy_setopt(c, CURLOPT_RESUME_FROM_LARGE, (curl_off_t)d.len);
            if (etag[0]) {
                snprintf(if_range, sizeof if_range, "If-Range: %s", etag);
                headers = curl_slist_append(headers, if_range);
                curl_easy_setopt(c, CURLOPT_HTTPHEADER, headers);
            }
        }
        d.attempt_start = d.len;
        size_t before = d.len;
        CURLcode cc = curl_easy_perform(c);
        long status = 0;
        curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
        curl_off_t announced = -1;
        if (!d.total && status >= 200 && status < 300 &&
            curl_easy_getinfo(c, CURLINFO_CONTENT_LENGTH_DOWNLOAD_T, &announced) == CURLE_OK && announced > 0)
            d.total = before + (uint64_t)announced;
        if (!where) {
            char *eff = NULL;
            if (curl_easy_getinfo(c, CURLINFO_EFFECTIVE_URL, &eff) == CURLE_OK && eff)
                where = strdup(eff);
        }
        struct curl_header *h = NULL;
        if (before == 0 && status >= 200 && status < 300 &&
            curl_easy_header(c, "ETag", 0, CURLH_HEADER, -1, &h) == CURLHE_OK && h && strlen(h->value) < sizeof etag &&
            strncmp(h->value, "W/", 2) != 0)
            snprintf(etag, sizeof etag, "%s", h->value); /* a weak ETag is not good enough for a range */
        if (cc == CURLE_OK) {
            if (d.total && d.len != d.total) {
                rc = pf_diag_set(diag, PF_ERR_IO, "%s: got %zu of the %llu bytes announced", url, d.len,
                                 (unsigned long long)d.total);
                break;
            }
            if (d.len == 0) {
                rc = pf_diag_set(diag, PF_ERR_FORMAT, "%s: the server sent an empty file (HTTP %ld)", url, status);
                break;
            }
            break;
        }
        if (d.nomem) {
            rc = pf_diag_set(diag, PF_ERR_NOMEM, "%s: out of memory after %zu bytes", url, d.len);
            break;
        }
        if (d.too_big || cc == CURLE_FILESIZE_EXCEEDED) {
            rc = pf_diag_set(diag, PF_ERR_FORMAT, "%s: larger than the %llu-byte limit (--max-image-size)", url,
                             (unsigned long long)o->max_bytes);
            break;
        }
        if (cc == CURLE_RANGE_ERROR && restarts == 0) {
            /* the server answered a resume with the whole file (200): no
             * ranges, or the file changed (If-Range): start again once */
            restarts++;
            d.len = 0;
            d.total = 0;
            etag[0] = '\0';
            continue;
        }
        if (cc == CURLE_OPERATION_TIMEDOUT) {
            rc = pf_diag_set(diag, PF_ERR_TIMEOUT, "%s: download timed out after %u s with %zu bytes (%s)", url,
                             o->timeout_ms / 1000u, d.len, errbuf[0] ? errbuf : curl_easy_strerror(cc));
            break;
        }
        if (cc == CURLE_HTTP_RETURNED_ERROR) {
            rc = pf_diag_set(diag, PF_ERR_IO, "%s: the server answered HTTP %ld%s", url, status,
                             status == 404   ? " (not found)"
                             : status == 416 ? " to a resume: it cannot send the rest (did the file change?)"
                                             : "");
            break;
        }
        if (resumable(cc) && d.len > 0) {
            if (d.len > before)
                resumes = 0; /* count only resumes that made no progress */
            if (resumes++ < o->max_resumes)
                continue;
            rc = pf_diag_set(diag, PF_ERR_IO,
                             "%s: the connection broke at byte %zu of %llu and %u resumes got no further (%s)", url,
                             d.len, (unsigned long long)d.total, o->max_resumes,
                             errbuf[0] ? errbuf : curl_easy_strerror(cc));
            break;
        }
        rc = pf_diag_set(diag, PF_ERR_IO, "%s: %s", url, errbuf[0] ? errbuf : curl_easy_strerror(cc));
        break;
    }
    curl_slist_free_all(headers);
    curl_easy_cleanup(c);
    free(where);
    if (rc < 0) {
        free(d.buf);
        return rc;
    }
    if (o->progress)
        o->progress(o->progress_user, d.len, d.len);
    *out = d.buf;
    *size = d.len;
    return PF_OK;
}
