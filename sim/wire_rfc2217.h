/* An rfc2217:// side of the link emulator: the POSIX port's RFC 2217 link
 * (ports/posix/rfc2217.c) run by a thread that moves bytes between it and
 * one end of a socket pair; the engine polls the other end like a TCP side. */
#ifndef PEERFLASH_SIM_WIRE_RFC2217_H
#define PEERFLASH_SIM_WIRE_RFC2217_H

#include <stdint.h>

#include "peerflash/pf_err.h"
#include "peerflash/pf_port.h"

typedef struct pf_wire_rfc2217 pf_wire_rfc2217;

/* Connects to spec, sets the remote line to baud/frame (baud 0: leaves it),
 * and starts the thread. *engine_fd is the engine's end (non-blocking). */
int pf_wire_rfc2217_start(pf_wire_rfc2217 **out, const char *spec, uint32_t baud, pf_frame frame, int *engine_fd,
                          pf_diag *diag);
/* Closes the engine's end (if still open), stops the thread, closes the link. */
void pf_wire_rfc2217_stop(pf_wire_rfc2217 *b, int engine_fd);

#endif
