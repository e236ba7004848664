/* Optional TLS of the HTTP API (--tls-cert, --tls-key). The TLS itself is
 * libmicrohttpd's own GnuTLS backend (http.c passes the PEM text to
 * MHD_OPTION_HTTPS_MEM_CERT/KEY); this file only reads the two files and
 * checks them with GnuTLS, the library libmicrohttpd uses, before anything
 * listens, so that a wrong file is named in a clear start-up error rather than
 * in a handshake failure later. */
#include <errno.h>
#include <gnutls/gnutls.h>
#include <gnutls/x509.h>
#include <microhttpd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "serve.h"

#define TLS_FILE_MAX (1u << 20) /* a PEM chain or key is a few KiB */

/* The whole file as a NUL-terminated string (PEM is text); NULL + why. */
static char *read_pem(const char *path, const char *opt, size_t *len, char *why, size_t n)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        snprintf(why, n, "%s %s: %s", opt, path, strerror(errno));
        return NULL;
    }
    char *buf = malloc(TLS_FILE_MAX + 1);
    size_t got = buf ? fread(buf, 1, TLS_FILE_MAX + 1, f) : 0;
    int err = ferror(f);
    fclose(f);
    if (!buf || err || got > TLS_FILE_MAX || got == 0) {
        snprintf(why, n, "%s %s: %s", opt, path,
                 !buf  ? "out of memory"
                 : err ? "cannot be read"
                 : got ? "larger than 1 MiB: not a PEM file"
                       : "the file is empty");
        free(buf);
        return NULL;
    }
    buf[got] = 0;
    if (strlen(buf) != got) {
        snprintf(why, n, "%s %s: binary data (DER?); give the PEM text (-----BEGIN ...)", opt, path);
        free(buf);
        return NULL;
    }
    *len = got;
    return buf;
}

int serve_tls_load(serve_config *cfg, char *why, size_t n)
{
    if (!cfg->tls_cert_path && !cfg->tls_key_path)
        return PF_EXIT_OK;
    if (!cfg->tls_cert_path || !cfg->tls_key_path) {
        snprintf(why, n, "%s needs %s as well: TLS takes a certificate and its private key",
                 cfg->tls_cert_path ? "--tls-cert" : "--tls-key", cfg->tls_cert_path ? "--tls-key" : "--tls-cert");
        return PF_EXIT_USAGE;
    }
    if (MHD_is_feature_supported(MHD_FEATURE_TLS) != MHD_YES) {
        snprintf(why, n, "--tls-cert: this libmicrohttpd (%s) was built without TLS support; HTTPS is not available",
                 MHD_get_version());
        return PF_EXIT_FAIL;
    }
    size_t clen = 0, klen = 0;
    char *cert = read_pem(cfg->tls_cert_path, "--tls-cert", &clen, why, n);
    if (!cert)
        return PF_EXIT_USAGE;
    char *key = read_pem(cfg->tls_key_path, "--tls-key", &klen, why, n);
    if (!key) {
        free(cert);
        return PF_EXIT_USAGE;
    }
    int code = PF_EXIT_USAGE;
    gnutls_datum_t cd = {(unsigned char *)cert, (unsigned)clen}, kd = {(unsigned char *)key, (unsigned)klen};
    gnutls_x509_crt_t *crts = NULL;
    unsigned ncrts = 0;
    gnutls_x509_privkey_t pk = NULL;
    gnutls_certificate_credentials_t cred = NULL;
    int r = gnutls_x509_crt_list_import2(&crts, &ncrts, &cd, GNUTLS_X509_FMT_PEM, 0);
    if (r < 0 || ncrts == 0) {
        snprintf(why, n, "--tls-cert %s: not a PEM certificate (%s)", cfg->tls_cert_path,
                 r < 0 ? gnutls_strerror(r) : "no certificate in it");
        goto out;
    }
    if ((r = gnutls_x509_privkey_init(&pk)) < 0 ||
        (r = gnutls_x509_privkey_import2(pk, &kd, GNUTLS_X509_FMT_PEM, NULL, GNUTLS_PKCS_PLAIN)) < 0) {
        snprintf(why, n, "--tls-key %s: not an unencrypted PEM private key (%s)%s", cfg->tls_key_path,
                 gnutls_strerror(r),
                 r == GNUTLS_E_DECRYPTION_FAILED ? "; a key with a passphrase is not supported: decrypt it with "
                                                   "`openssl pkey -in KEY -out KEY.plain`"
                                                 : "");
        goto out;
    }
    /* the pairing check of the library libmicrohttpd hands the files to */
    if ((r = gnutls_certificate_allocate_credentials(&cred)) < 0 ||
        (r = gnutls_certificate_set_x509_key_mem2(cred, &cd, &kd, GNUTLS_X509_FMT_PEM, NULL, 0)) < 0) {
        if (r == GNUTLS_E_CERTIFICATE_KEY_MISMATCH)
            snprintf(why, n, "--tls-key %s is not the private key of the certificate in --tls-cert %s",
                     cfg->tls_key_path, cfg->tls_cert_path);
        else
            snprintf(why, n, "--tls-cert %s with --tls-key %s: %s", cfg->tls_cert_path, cfg->tls_key_path,
                     gnutls_strerror(r));
        goto out;
    }
    time_t now = time(NULL), until = gnutls_x509_crt_get_expiration_time(crts[0]),
           from = gnutls_x509_crt_get_activation_time(crts[0]);
    if (until != (time_t)-1 && until < now) {
        snprintf(why, n, "--tls-cert %s expired %.0f days ago: clients would refuse it", cfg->tls_cert_path,
                 difftime(now, until) / 86400);
        goto out;
    }
    if (from != (time_t)-1 && from > now + 300) {
        snprintf(why, n, "--tls-cert %s is not valid yet (check the clock): clients would refuse it",
                 cfg->tls_cert_path);
        goto out;
    }
    cfg->tls_cert = cert;
    cfg->tls_key = key;
    cert = key = NULL;
    code = PF_EXIT_OK;
out:
    if (cred)
        gnutls_certificate_free_credentials(cred);
    if (pk)
        gnutls_x509_privkey_deinit(pk);
    for (unsigned i = 0; i < ncrts; i++)
        gnutls_x509_crt_deinit(crts[i]);
    gnutls_free(crts);
    free(cert);
    if (key)
        memset(key, 0, klen);
    free(key);
    return code;
}
