/* The port: the only interface between the portable core and the world.
 *
 * A port is a table of function pointers plus the caller's context, owned by
 * the caller (no globals). The POSIX implementation is in pf_posix.h; an MCU
 * port fills in the same table (see firmware/boards/template). Time is part of the port
 * so that simulations and tests can run the core on virtual time. */
#ifndef PEERFLASH_PF_PORT_H
#define PEERFLASH_PF_PORT_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Character frame on the wire. Bits per byte on the wire: 8N1 = 10, 8E1 = 11. */
typedef enum pf_frame {
    PF_FRAME_8N1 = 0,
    PF_FRAME_8E1 = 1,
} pf_frame;

/* Bits a character occupies on the wire (start + data + parity + stop). */
unsigned pf_frame_bits(pf_frame frame);

/* Modem/control line request for set_lines: leave a line as it is, or drive it.
 * "Asserted" is the logical (RS-232 active) state: DTR asserted pulls the
 * adapter's DTR# pin low, which on the ESP/Arduino circuits pulls IO0/RESET low. */
typedef enum pf_line {
    PF_LINE_KEEP = -1,
    PF_LINE_RELEASE = 0,
    PF_LINE_ASSERT = 1,
} pf_line;

typedef struct pf_port {
    void *ctx; /* the implementation's state, passed back to every call */

    /* Reads up to n bytes, waiting at most timeout_ms for the first and
     * following bytes. Returns the count read (0..n; fewer than n when the
     * time ran out) or a negative pf_err (PF_ERR_CLOSED when the peer went away). */
    int (*read)(void *ctx, uint8_t *buf, size_t n, uint32_t timeout_ms);
    /* Queues all n bytes for sending; returns n or a negative pf_err. */
    int (*write)(void *ctx, const uint8_t *buf, size_t n);
    /* Waits until queued output has left (tcdrain); may be NULL. */
    int (*drain)(void *ctx);
    /* Discards received but unread input; may be NULL. */
    int (*flush_input)(void *ctx);
    /* Sets the line rate and frame. PF_ERR_UNSUPPORTED if the link has no
     * rate (a TCP bridge): callers treat that as success. May be NULL. */
    int (*set_line)(void *ctx, uint32_t baud, pf_frame frame);
    /* Drives DTR and RTS (pf_line values). A link without modem lines (a pty,
     * a TCP bridge) returns PF_ERR_UNSUPPORTED, never a fatal error. May be NULL. */
    int (*set_lines)(void *ctx, int dtr, int rts);

    /* Monotonic milliseconds (wraps after 49 days: compare by difference). */
    uint32_t (*now_ms)(void *ctx);
    /* Sleeps (or advances virtual time) for ms milliseconds. */
    void (*delay_ms)(void *ctx, uint32_t ms);
    /* Optional debug log sink; may be NULL. level: 0 error .. 3 trace. */
    void (*log)(void *ctx, int level, const char *msg);
} pf_port;

/* Helpers over a port (pf_port.c); all take an absolute deadline from
 * pf_deadline() and give each read only the time that remains. */
uint32_t pf_deadline(const pf_port *port, uint32_t timeout_ms);
uint32_t pf_remaining(const pf_port *port, uint32_t deadline);
/* Reads exactly n bytes before the deadline. Returns n, or PF_ERR_TIMEOUT
 * (with *got, if not NULL, set to the count that did arrive), or an error. */
int pf_port_read_exact(const pf_port *port, uint8_t *buf, size_t n, uint32_t deadline, size_t *got);
int pf_port_write_all(const pf_port *port, const uint8_t *buf, size_t n);
/* Reads and discards input until the line has been quiet for quiet_ms or the
 * deadline passes; returns the number of bytes discarded. */
int pf_port_drain_input(const pf_port *port, uint32_t quiet_ms, uint32_t deadline);
/* Sets rate and frame; a port without a line rate (raw TCP: the far end's
 * rate applies) counts as success, as the drivers expect. */
int pf_port_set_line(const pf_port *port, uint32_t baud, pf_frame frame);
/* Drives DTR/RTS: PF_OK, or PF_ERR_UNSUPPORTED when the port has no such
 * lines (missing function or its own PF_ERR_UNSUPPORTED), or the port's error.
 * Callers that reset through the lines go on without them (logged). */
int pf_port_set_lines(const pf_port *port, int dtr, int rts);
void pf_port_delay(const pf_port *port, uint32_t ms);
void pf_port_logf(const pf_port *port, int level, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 3, 4)))
#endif
    ;

#ifdef __cplusplus
}
#endif
#endif
