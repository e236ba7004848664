/* The grammar of network endpoint specs (tcp://, rfc2217://, tcp-listen://),
 * checked without opening anything so a typo is a usage error (exit 2) found
 * before any port or image is touched. */
#include <stdio.h>
#include <string.h>

#include "posix_link.h"

static int parse_port_number(const char *s, pf_diag *diag, const char *spec)
{
    if (!*s)
        return pf_diag_set(diag, PF_ERR_ARG, "%s: missing port number after ':'", spec);
    unsigned long v = 0;
    for (const char *c = s; *c; c++) {
        if (*c < '0' || *c > '9')
            return pf_diag_set(diag, PF_ERR_ARG, "%s: port '%s' is not a decimal number", spec, s);
        v = v * 10 + (unsigned long)(*c - '0');
        if (v > 65535)
            break;
    }
    if (v == 0 || v > 65535)
        return pf_diag_set(diag, PF_ERR_ARG, "%s: port %s is outside 1..65535", spec, s);
    return PF_OK;
}

int pf_posix_split_endpoint(const char *spec, const char *scheme, char *host, size_t host_size, char *port,
                            size_t port_size, pf_diag *diag)
{
    const char *hp = spec + strlen(scheme);
    const char *host_start = hp, *host_end, *colon;
    if (*hp == '[') {
        host_start = hp + 1;
        host_end = strchr(host_start, ']');
        if (!host_end)
            return pf_diag_set(diag, PF_ERR_ARG, "%s: missing ']' after the IPv6 address", spec);
        colon = host_end + 1;
        if (*colon != ':')
            return pf_diag_set(diag, PF_ERR_ARG, "%s: expected %s[ADDRESS]:PORT", spec, scheme);
    } else {
        colon = strrchr(hp, ':');
        if (!colon)
            return pf_diag_set(diag, PF_ERR_ARG, "%s: missing ':PORT' (expected %sHOST:PORT)", spec, scheme);
        host_end = colon;
        if (memchr(hp, ':', (size_t)(colon - hp)))
            return pf_diag_set(diag, PF_ERR_ARG, "%s: write an IPv6 address in brackets: %s[ADDRESS]:PORT", spec,
                               scheme);
    }
    if (host_end == host_start)
        return pf_diag_set(diag, PF_ERR_ARG, "%s: missing host (expected %sHOST:PORT)", spec, scheme);
    if ((size_t)(host_end - host_start) >= host_size)
        return pf_diag_set(diag, PF_ERR_ARG, "%s: host name too long", spec);
    if (memchr(host_start, '/', (size_t)(host_end - host_start)) || strchr(colon + 1, '/'))
        return pf_diag_set(diag, PF_ERR_ARG, "%s: expected %sHOST:PORT with nothing after the port", spec, scheme);
    int rc = parse_port_number(colon + 1, diag, spec);
    if (rc)
        return rc;
    memcpy(host, host_start, (size_t)(host_end - host_start));
    host[host_end - host_start] = '\0';
    snprintf(port, port_size, "%s", colon + 1);
    return PF_OK;
}

int pf_posix_spec_check(const char *spec, pf_diag *diag)
{
    if (!spec || !*spec)
        return pf_diag_set(diag, PF_ERR_ARG, "empty port spec");
    char host[256], port[8];
    if (!strncmp(spec, "tcp://", 6))
        return pf_posix_split_endpoint(spec, "tcp://", host, sizeof host, port, sizeof port, diag);
    if (!strncmp(spec, "rfc2217://", 10))
        return pf_posix_split_endpoint(spec, "rfc2217://", host, sizeof host, port, sizeof port, diag);
    if (!strncmp(spec, "tcp-listen://", 13))
        return parse_port_number(spec + 13, diag, spec);
    if (strstr(spec, "://"))
        return pf_diag_set(diag, PF_ERR_ARG,
                           "%s: unknown scheme (a port is a device path, pty:PATH, tcp://HOST:PORT, "
                           "rfc2217://HOST:PORT or tcp-listen://PORT)",
                           spec);
    return PF_OK;
}
