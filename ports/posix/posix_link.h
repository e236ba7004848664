/* Shared inside the POSIX port (not installed): the pieces link.c and
 * rfc2217.c both use. */
#ifndef PEERFLASH_POSIX_LINK_H
#define PEERFLASH_POSIX_LINK_H

#include <stddef.h>
#include <stdint.h>

#include "endpoint.h"
#include "peerflash/pf_posix.h"

#define PF_POSIX_WRITE_STALL_MS 5000u /* a link that takes no byte for this long is stuck */

/* Connects link to a tcp:// or rfc2217:// endpoint (a non-blocking
 * TCP_NODELAY socket); kind becomes PF_POSIX_TCP. */
int pf_posix_tcp_connect(pf_posix_link *link, const pf_endpoint *ep, pf_diag *diag);
/* Sends all n bytes on a socket or fd, waiting out a full buffer for at most
 * PF_POSIX_WRITE_STALL_MS without progress. Returns n or a pf_err. */
int pf_posix_send_all(pf_posix_link *link, const uint8_t *buf, size_t n);

/* The rfc2217:// link (rfc2217.c). */
int pf_rfc2217_open(pf_posix_link *link, const pf_endpoint *ep, pf_diag *diag);
void pf_rfc2217_close(pf_posix_link *link);
int pf_rfc2217_read(pf_posix_link *link, uint8_t *buf, size_t n, uint32_t timeout_ms);
int pf_rfc2217_write(pf_posix_link *link, const uint8_t *buf, size_t n);
int pf_rfc2217_flush_input(pf_posix_link *link);
int pf_rfc2217_set_line(pf_posix_link *link, uint32_t baud, pf_frame frame);
int pf_rfc2217_set_lines(pf_posix_link *link, int dtr, int rts);

#endif
