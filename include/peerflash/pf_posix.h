/* The POSIX port: serial devices, pseudo-terminals and TCP sockets as
 * pf_port links, opened from one endpoint spec:
 *
 *   /dev/ttyUSB0, /tmp/dev   an existing tty or pty path: opened, set raw (termios)
 *   pty:PATH                 creates a pty, links its slave at PATH (removed at close);
 *                            a bare PATH that does not exist yet means the same
 *   tcp://HOST:PORT          connects (a raw TCP serial bridge such as ESP-Link)
 *   rfc2217://HOST:PORT      connects to a telnet COM-PORT-OPTION server (RFC 2217:
 *                            ser2net, pyserial, esp-link's...): line rate, frame and
 *                            DTR/RTS travel to the server's serial port
 *   tcp-listen://PORT        listens on 127.0.0.1:PORT, accepts one peer at first I/O
 * HOST is a name, an IPv4 address or [IPv6]; PORT is 1..65535 in decimal.
 *
 * Missing modem lines (pty, TCP, an RFC 2217 server in front of a pty) and
 * missing line rates (TCP) are not errors. */
#ifndef PEERFLASH_PF_POSIX_H
#define PEERFLASH_PF_POSIX_H

#include <stdint.h>

#include "pf_err.h"
#include "pf_port.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef enum pf_posix_kind {
    PF_POSIX_TTY = 0,    /* a real serial device or a pty slave someone else made */
    PF_POSIX_PTY_MASTER, /* a pty we created (pty:PATH); fd is the master side */
    PF_POSIX_TCP,        /* a connected socket */
    PF_POSIX_TCP_LISTEN, /* a listening socket; becomes PF_POSIX_TCP on accept */
    PF_POSIX_RFC2217,    /* a connected socket speaking telnet + COM-PORT-OPTION */
} pf_posix_kind;

struct pf_rfc2217_session; /* ports/posix/rfc2217.c */

typedef struct pf_posix_link {
    int fd;            /* the descriptor to read/write (-1 when closed) */
    int listen_fd;     /* tcp-listen: the listening socket, else -1 */
    pf_posix_kind kind;
    char path[256];    /* the symlink made for pty:PATH, removed at close */
    char slave[64];    /* pty:PATH: the /dev/pts/N name */
    uint32_t baud;
    pf_frame frame;
    int log_level;     /* port->log prints messages up to this level to stderr (-1 = none) */
    struct pf_rfc2217_session *rfc2217; /* rfc2217:// only: telnet state, received data */
} pf_posix_link;

/* Checks the grammar of an endpoint spec without opening anything: a
 * tcp://, rfc2217:// or tcp-listen:// spec with a missing host or a port that
 * is not 1..65535 is PF_ERR_ARG naming the spec and what is wrong. Paths are
 * not checked here (opening them says what is wrong). */
int pf_posix_spec_check(const char *spec, pf_diag *diag);

/* Opens an endpoint from its spec (see above). Errors name the spec and the
 * OS reason in diag, with a hint (permissions, "is it plugged in?"). */
int pf_posix_open(pf_posix_link *link, const char *spec, pf_diag *diag);
void pf_posix_close(pf_posix_link *link);
/* Fills a pf_port table whose calls go to link (real time clock). */
void pf_posix_port(pf_posix_link *link, pf_port *port);
/* For tcp-listen: waits up to timeout_ms for the peer; PF_ERR_TIMEOUT if none. */
int pf_posix_accept(pf_posix_link *link, uint32_t timeout_ms);

/* Real-time clock helpers (CLOCK_MONOTONIC). */
uint32_t pf_posix_now_ms(void);
uint64_t pf_posix_now_us(void);
void pf_posix_sleep_ms(uint32_t ms);

/* Lists serial ports (through libserialport) to out, one per line:
 * "PATH  USB VID:PID  serial  description". Returns the count or an error. */
struct pf_port_listing {
    char path[128];
    char description[128];
    int usb;              /* 1 if a USB device with the fields below */
    unsigned vid, pid;
    char serial[64];
    char manufacturer[64];
};
int pf_posix_list_ports(struct pf_port_listing *out, int max, pf_diag *diag);

#ifdef __cplusplus
}
#endif
#endif
