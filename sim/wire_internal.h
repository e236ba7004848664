/* The link emulator's parts (not installed; the API is wire.h):
 *   wire.c         the front: create, threads, stop, statistics and their output
 *   wire_ends.c    the two endpoints (ports/posix/endpoint.h): open, close,
 *                  who holds a pty, open propagation, reconnects, autobaud
 *   wire_uart.c    the line: each direction's serializer on an absolute
 *                  schedule, and the bit model of a receiving UART at
 *                  another rate (framing errors)
 *   wire_faults.c  seeded fault streams: bit flips, drops, bursts, the cut
 *   wire_engine.c  the poll loop: read, give faults and a place on the line,
 *                  deliver when due
 *
 * Facts the engine relies on (Linux, checked on this machine):
 *  - tcgetattr() on a pty master returns the slave's termios (rate included);
 *    the pty driver forces CS8 and clears PARENB, so parity is unobservable.
 *  - A fresh master does not report POLLHUP until its slave has been opened
 *    and closed once; so the slave is opened and closed at creation.
 *  - With no slave open, the master reports POLLHUP forever (so it leaves the
 *    poll set and is checked every PF_WIRE_HUP_CHECK_NS), its reads give EIO,
 *    and bytes written to it wait in the slave's input for the next opener:
 *    we never write to a hung-up master and flush the slave's input (open,
 *    TCIFLUSH, close) when its program goes away. */
#ifndef PEERFLASH_SIM_WIRE_INTERNAL_H
#define PEERFLASH_SIM_WIRE_INTERNAL_H

#include <pthread.h>
#include <stddef.h>
#include <stdint.h>

#include "posix/endpoint.h"
#include "wire.h"
#include "wire_rfc2217.h"

#define PF_WIRE_QUANTUM_NS 500000LL      /* deliveries batched at most this often */
#define PF_WIRE_HUP_CHECK_NS 4000000LL   /* a closed pty is checked for an opener this often */
#define PF_WIRE_RETRY_NS 200000000LL     /* reopen a lost path side */
#define PF_WIRE_RECONNECT_NS 500000000LL /* reconnect a tcp:// side */
/* Cut in close mode: before closing, give the programs time to read what
 * passed (the kernel moves pty data to the reader in a worker: FIONREAD can
 * read 0 while bytes are still on their way), at least MIN, at most MAX. */
#define PF_WIRE_LINGER_MIN_NS 200000000LL
#define PF_WIRE_LINGER_MAX_NS 2000000000LL
#define NEVER INT64_MAX

/* ---- an endpoint (wire_ends.c) ---- */
typedef struct wire_end {
    pf_endpoint ep;   /* kind, spec, path, host, port */
    int fd;           /* pty master, opened path, connected socket; -1 if none */
    int listen_fd;    /* LISTEN */
    int open;         /* a program holds the pty slave / a peer is connected / the path is open */
    int connecting;   /* TCP: non-blocking connect in progress */
    int want_out;     /* a write was short: wait for POLLOUT */
    int64_t next_check; /* PTY hung up: next poll for an opener; PATH/TCP: next (re)open attempt */
    int64_t reopen_at;  /* PATH: open propagation reopens at this time (NEVER if none) */
    char pts[64];     /* PTY: /dev/pts/N */
    uint32_t opens, reopens;
    uint32_t ab_locked; /* autobaud: the rate this side locked to, 0 while detecting */
    pf_wire_rfc2217 *rfc; /* RFC2217: the bridge thread (wire_rfc2217.c) */
} wire_end;

/* ---- the line (wire_uart.c) ---- */
typedef struct out_ent {
    int64_t due;
    uint8_t byte;
} out_ent;

typedef struct gframe {
    double start, bit_ns;
    uint16_t levels; /* bit j = line level during bit j (start bit 0 ... stop bit 1) */
    uint8_t nbits;
} gframe;

/* A receiving UART at baud sampling a waveform sent at another rate: the
 * frames on the wire in time order, and where its sampling has got to. */
typedef struct uart_rx {
    int on;
    uint32_t baud;
    gframe *fr;
    size_t fcap, fhead, fn;
    double scan, edge;
    int have_edge, need_high;
} uart_rx;

/* ---- faults of one direction (wire_faults.c) ---- */
typedef struct wire_faults {
    uint64_t idx;                        /* bytes given a place on the line */
    uint64_t rng_flip, rng_drop, rng_burst, rng_data;
    uint64_t next_flip_bit, next_drop, next_burst;
    uint32_t burst_left;
} wire_faults;

typedef struct wire_dir {
    int src, dst;
    /* output queue (due order) */
    out_ent *q;
    size_t cap, head, n;
    /* line schedule */
    int64_t epoch, line_end;
    uint64_t k;
    uint32_t cur_baud;
    unsigned cur_bits;
    int64_t last_flush;
    int src_waiting; /* we stopped reading the sender for lack of room, not because it was empty */
    size_t held_counted; /* queued bytes already counted in held_reopening */
    wire_faults faults;
    /* Receivers out of step with the waveform they sample (wire.h): rx[0]
     * samples the sender's waveform (follow mode: the receiving side; fixed
     * mode: the line's UART at --baud), rx[1] (fixed mode only) is the
     * receiving side sampling what the line's UART sends on at --baud;
     * relay_end is when that UART's last frame ends. */
    uart_rx rx[2];
    double relay_end;
    pf_wire_dir_stats st;
} wire_dir;

struct pf_wire {
    pf_wire_config cfg;
    wire_end end[2];
    wire_dir dir[2];
    int stop_pipe[2];
    int64_t t0_abs;
    int64_t cut_count;
    int cut_done;
    int finished;
    int64_t closing_since; /* cut in close mode: when everything was delivered (-1 before) */
    uint32_t queue_bytes;
    pthread_mutex_t mu;
    pthread_t thread;
    int thread_started;
    int run_result;
};

/* wire.c */
int64_t pf_wire_now(const pf_wire *w); /* ns since creation */
void pf_wire_log(pf_wire *w, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* wire_ends.c */
int wire_end_parse(wire_end *e, const char *spec, pf_diag *diag);
int wire_end_open(pf_wire *w, wire_end *e, pf_diag *diag);
void wire_end_close(wire_end *e);
uint32_t wire_end_rate(const wire_end *e);
uint32_t wire_end_autobaud_lock(pf_wire *w, int side, uint32_t baud);
void wire_end_opened(pf_wire *w, int side, int64_t now); /* counts an open and propagates it */
int wire_end_pty_check(pf_wire *w, int side, int64_t now);
void wire_end_lost(pf_wire *w, int side, int64_t now);
int wire_end_ready(pf_wire *w, int side, int64_t now);
void wire_ends_service(pf_wire *w, int64_t now);
void wire_end_accept(pf_wire *w, int side, int64_t now);
int wire_end_connected(pf_wire *w, int side, int64_t now);
int wire_ends_unread_input(pf_wire *w);

/* wire_uart.c */
void wire_q_push(wire_dir *d, int64_t due, uint8_t byte);
/* Gives a byte read at t_read its place on the sender's serializer at
 * tx_baud. The waveform is sampled at mid_baud (a receiver at another rate
 * reads what wire_uart.c's bit model gives), and what that receiver reads is
 * sent on at mid_baud and sampled at rx_baud. Follow mode: mid_baud =
 * rx_baud, the receiving side's rate; fixed mode: mid_baud is --baud, the
 * line's own UARTs, and tx_baud / rx_baud are the two sides' rates. dropped:
 * the byte takes line time but is not delivered. */
void wire_line_put(pf_wire *w, wire_dir *d, uint8_t byte, int dropped, int64_t t_read, uint32_t tx_baud,
                   uint32_t mid_baud, uint32_t rx_baud);
/* Runs the receivers out of step (if any) up to now; returns the time at
 * which they can make progress again (NEVER if they wait for more bytes). */
int64_t wire_uart_process(pf_wire *w, wire_dir *d, int64_t now);
/* 1 while a receiver out of step is on or still holds frames. */
int wire_uart_busy(const wire_dir *d);
/* Lets the receivers read what they can, assuming an idle line after; turns them off. */
void wire_uart_flush(pf_wire *w, wire_dir *d, int64_t now);
size_t wire_line_room(const pf_wire *w, const wire_dir *d, int64_t now);

/* wire_faults.c */
void wire_faults_init(wire_faults *f, const pf_wire_config *c, int dir);
/* The faults of the next byte: returns it (maybe changed); *dropped when lost. */
uint8_t wire_faults_apply(wire_faults *f, const pf_wire_config *c, pf_wire_dir_stats *st, uint8_t byte, int *dropped);
/* Counts a byte towards the cut; 1 if it arrived after the cut (discard). */
int wire_cut_count(pf_wire *w, wire_dir *d, unsigned mask);

#endif
