/* POSIX endpoints, written once for the port (link.c) and the link emulator
 * (sim/wire*.c): the spec grammar, pty creation, raw termios, the table of
 * line rates termios knows, TCP connect, listen and accept.
 *
 *   /dev/ttyUSB0, /tmp/dev   an existing tty or pty path
 *   pty:PATH                 a new pty whose slave is symlinked at PATH; a bare
 *                            PATH that does not exist (or a dangling link) too
 *   tcp://HOST:PORT          a TCP connection (HOST a name, IPv4 or [IPv6])
 *   rfc2217://HOST:PORT      the same, speaking telnet COM-PORT-OPTION
 *   tcp-listen://PORT        listens on 127.0.0.1:PORT
 * PORT is 1..65535 in decimal. Not installed: the port's public face is
 * pf_posix.h. Every function here is blocking-free unless it says so; file
 * descriptors it makes are non-blocking and close-on-exec. */
#ifndef PEERFLASH_POSIX_ENDPOINT_H
#define PEERFLASH_POSIX_ENDPOINT_H

#include <stddef.h>
#include <stdint.h>

#include "peerflash/pf_err.h"
#include "peerflash/pf_port.h"

typedef enum pf_endpoint_kind {
    PF_ENDPOINT_PATH = 0, /* an existing tty/pty path */
    PF_ENDPOINT_PTY,      /* a pty we create, linked at path */
    PF_ENDPOINT_TCP,      /* tcp://HOST:PORT */
    PF_ENDPOINT_RFC2217,  /* rfc2217://HOST:PORT */
    PF_ENDPOINT_LISTEN,   /* tcp-listen://PORT */
} pf_endpoint_kind;

typedef struct pf_endpoint {
    pf_endpoint_kind kind;
    char spec[256];
    char path[256];  /* PATH, PTY */
    char host[256];  /* TCP, RFC2217 (without the IPv6 brackets) */
    char port[8];    /* TCP, RFC2217, LISTEN: decimal */
    uint16_t port_number;
} pf_endpoint;

/* The grammar only (no file system access): PF_ERR_ARG naming the spec and
 * what is wrong. Paths are not checked (opening them says what is wrong). */
int pf_endpoint_check(const char *spec, pf_diag *diag);
/* Grammar, then for a path: PTY for pty:PATH or a PATH that does not exist,
 * else PATH. */
int pf_endpoint_parse(pf_endpoint *ep, const char *spec, pf_diag *diag);
/* Splits HOST:PORT (HOST may be [IPv6]) after scheme. */
int pf_endpoint_split_host(const char *spec, const char *scheme, char *host, size_t host_size, char *port,
                           size_t port_size, pf_diag *diag);

/* Line rates: bit/s <-> termios speed_t, 0 when termios has no constant. */
unsigned pf_endpoint_baud_to_speed(uint32_t baud);
uint32_t pf_endpoint_speed_to_baud(unsigned speed);
/* The output rate set on a tty/pty (the slave's, through a master), 0 if unknown. */
uint32_t pf_endpoint_tty_rate(int fd);
/* Sets the rate of fd (both directions); PF_ERR_UNSUPPORTED for a rate
 * termios cannot name, PF_ERR_IO when tcsetattr fails. */
int pf_endpoint_set_rate(int fd, uint32_t baud);

/* Raw bytes: no echo, no line discipline, no flow control, 1 stop bit,
 * VMIN 0 and VTIME vtime_ds (a blocking read by a program that skips port
 * setup returns after vtime_ds tenths of a second). baud 0 keeps the rate
 * and frame; otherwise both are set. -1 with errno on failure. */
int pf_endpoint_make_raw(int fd, uint8_t vtime_ds, uint32_t baud, pf_frame frame);

/* Creates a pty, makes its slave raw (pf_endpoint_make_raw with vtime_ds,
 * baud, frame), closes the slave again (from then on the master reports
 * POLLHUP while nobody holds the slave) and links the slave at path,
 * atomically replacing a stale link. A path that exists and is not a link
 * is refused. *master: non-blocking, close-on-exec. */
int pf_endpoint_pty_create(const char *path, const char *spec, uint8_t vtime_ds, uint32_t baud, pf_frame frame,
                           int *master, char *slave, size_t slave_size, pf_diag *diag);
/* Removes the link at path if it still points at slave. */
void pf_endpoint_pty_unlink(const char *path, const char *slave);

/* Opens an existing tty/pty path (non-blocking); refuses anything that is
 * not a terminal. The caller sets it raw. */
int pf_endpoint_tty_open(const char *path, int *fd, pf_diag *diag);

/* Connects to host:port (TCP_NODELAY). wait = 1: tries every address until
 * one connects (blocking), *pending = 0. wait = 0: starts a non-blocking
 * connect to the first address; *pending = 1 while it is in progress
 * (finish with pf_endpoint_connect_finish). *fd is non-blocking either way. */
int pf_endpoint_tcp_connect(const char *host, const char *port, const char *spec, int wait, int *fd, int *pending,
                            pf_diag *diag);
/* 1 connected, 0 still in progress after timeout_ms, -1 failed (errno). */
int pf_endpoint_connect_finish(int fd, int timeout_ms);
/* Listens on 127.0.0.1:port (SO_REUSEADDR, backlog). */
int pf_endpoint_listen(uint16_t port, int backlog, const char *spec, int *fd, pf_diag *diag);
/* Accepts one peer: a non-blocking TCP_NODELAY socket, or -1 (errno). */
int pf_endpoint_accept(int listen_fd);

/* "cannot WHAT SPEC: strerror (hint)" as PF_ERR_IO, with a hint for the
 * usual causes (missing device, permissions, busy, nobody listening). */
int pf_endpoint_os_error(pf_diag *diag, const char *what, const char *spec, int err);

#endif
