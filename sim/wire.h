/* The link emulator ("wire"): joins two endpoints and moves bytes between
 * them the way a serial cable between two UARTs would.
 *
 *  - Line rate: each direction is an independent serializer. A byte occupies
 *    frame_bits / baud seconds on the line (8N1 = 10 bits, 8E1 = 11) and
 *    cannot arrive before the previous one has finished, plus a one-way
 *    latency. Delivery follows an absolute schedule (epoch + k * byte time),
 *    so CPU load adds jitter (bytes late by the stall) but no rate drift;
 *    bytes that waited in the sender's OS buffer while the engine was not
 *    scheduled keep their place right after the previous byte.
 *  - Faults from a seeded PRNG, one independent stream per direction and per
 *    fault kind, indexed by byte (or bit) position: the same seed gives the
 *    same faults at the same positions, whatever the timing.
 *  - Follow mode: each side's rate is the one the program on that side set
 *    with termios on its pty/tty. While the two differ, the receiver samples
 *    the sender's waveform at its own rate (start bit, mid-bit samples, stop
 *    bit): it sees framing garbage, as on a real wire. An autobaud side
 *    (config.autobaud) instead locks to the rate of the first byte sent to it
 *    after each (re)open, like an STM32 bootloader.
 *    Caveat for simulators: tcdrain() on a pty returns at once, so a program
 *    that writes a reply and then changes its rate (ESP CHANGE_BAUDRATE) must
 *    wait the reply's line time first, as real firmware waits for its UART.
 *  - Fixed mode (--baud N): the link has UARTs of its own pinned at N, as a
 *    USB-UART bridge, ESP-Link or a radio link between two UARTs does. Each
 *    side's rate is still the one its program set with termios; a side
 *    without termios (TCP, rfc2217: its server's port is set to N) runs at N,
 *    and so does one whose program never set a rate: the wire creates its
 *    ptys at N and sets N on a path it opens (at every (re)open), so "never
 *    set" reads N, and 38400 (a fresh pty's default) is never mistaken for a
 *    choice. A side at another rate is out of step with the line: the line's
 *    UART samples what it sends at N, and what the line's UART sends it at N
 *    is sampled at its rate, both with the bit model above. When both sides
 *    are out of step (a host and an ESP after CHANGE_BAUDRATE to 921600 over
 *    a 115200 link) the two steps are chained: each character the line's
 *    UART reads is sent on at N as a whole frame once read (no earlier than
 *    the line's previous frame ends), as a bridge forwards what its UART
 *    received, and that waveform is what the receiving side samples. Facts
 *    that follow, checked by test_wire_faults: 0xFF at 921600 is low for an
 *    eighth of a 115200 bit, so a 115200 receiver's mid-start-bit sample is
 *    high (a glitch) and it reads nothing; a 921600 receiver takes its start
 *    and first seven data samples in a 115200 start bit (low), the eighth and
 *    the stop sample in the next bit, so it can read only 0x80 (or a framing
 *    error): a chip stranded at 921600
 *    behind a 115200 link cannot be spoken to at all, only reset. A real
 *    pinned USB-UART adapter ignores the host's rate (the host is not a
 *    UART there); a pty host set to another rate is garbled here on the way
 *    in too, which changes which garbage arrives but not whether it does.
 *    Frame (8N1 vs 8E1) mismatches are not modelled: a pty's termios cannot
 *    carry parity (see wire_internal.h), so both sides use --frame.
 *  - Endpoints (spec strings):
 *      pty:PATH          a new pty whose slave is symlinked at PATH (replaced
 *                        if a stale link is there; removed at destroy)
 *      PATH              an existing tty/pty: opened (raw); a PATH that does
 *                        not exist means pty:PATH
 *      tcp-listen://PORT listens on 127.0.0.1:PORT, one peer at a time
 *      tcp://HOST:PORT   connects (reconnects every 500 ms when dropped)
 *    A pty nobody holds open is "closed": bytes for it are discarded, as on a
 *    real port nobody has open, and it is polled until someone opens it.
 *  - Open propagation (on by default): when a program opens side X (a pty we
 *    created, or a peer connects to tcp-listen), and the other side Y is a
 *    path we opened (e.g. a simulator's pty), Y is closed and reopened after
 *    reopen_gap_ms, so a reset-on-open simulator on Y resets as an Arduino
 *    does when the host opens its port (DTR auto-reset; a pty has no DTR).
 *
 * The simulators' shape (sim/README.md): pf_wire_open / pf_wire_run(stop
 * flag) / pf_wire_close. pf_wire_run() runs the engine in the calling thread
 * until *stop becomes nonzero (a signal handler may set it; checked at least
 * every 50 ms), pf_wire_stop() (thread-safe, wakes it at once), the
 * duration, or a cut in close mode. pf_wire_start() runs it in a new thread;
 * pf_wire_join() waits for it. pf_wire_get_stats() may be called from any
 * thread. */
#ifndef PEERFLASH_SIM_WIRE_H
#define PEERFLASH_SIM_WIRE_H

#include <signal.h>
#include <stdint.h>
#include <stdio.h>

#include "peerflash/pf_err.h"
#include "peerflash/pf_port.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Sides and directions. */
enum { PF_WIRE_A = 0, PF_WIRE_B = 1 };
enum { PF_WIRE_A2B = 0, PF_WIRE_B2A = 1 };
/* Bit mask of directions for cut_dirs. */
#define PF_WIRE_DIR_A2B 1u
#define PF_WIRE_DIR_B2A 2u
#define PF_WIRE_DIR_BOTH 3u

typedef enum pf_wire_cut_mode {
    PF_WIRE_CUT_SILENT = 0, /* after the cut nothing is delivered; endpoints stay open */
    PF_WIRE_CUT_CLOSE = 1,  /* after the cut both endpoints are closed (hang-up/EOF) and run() returns */
} pf_wire_cut_mode;

typedef struct pf_wire_config {
    const char *a, *b;        /* endpoint specs (see above); required */
    uint32_t baud;            /* line rate in bit/s (the link's own UARTs); in follow mode the rate of a
                                 side without termios (TCP) */
    int follow;               /* 1: the sides' UARTs talk directly (no line rate of its own) */
    pf_frame frame;           /* 8N1 (10 bits per byte) or 8E1 (11) */
    uint32_t latency_us;      /* one-way latency added to every byte */
    double flip_rate;         /* probability that a data bit is inverted (per bit, 8 per byte) */
    double drop_rate;         /* probability that a byte is lost (per byte; it still takes line time) */
    uint32_t burst_every;     /* a burst starts on average every burst_every bytes (0 = never) */
    uint32_t burst_len;       /* a burst replaces this many consecutive bytes with random ones */
    int64_t cut_after;        /* cut the cable after this many bytes have passed (-1 = never) */
    unsigned cut_dirs;        /* PF_WIRE_DIR_* counted and cut (default both) */
    pf_wire_cut_mode cut_mode;
    uint64_t seed;            /* PRNG seed for every fault */
    int open_propagation;     /* 1 (default): reopen a path side when the other side is opened */
    uint32_t reopen_gap_ms;   /* how long the reopened side stays closed (default 50 ms: long
                                 enough for a simulator polling its master to see it) */
    uint32_t queue_bytes;     /* bytes accepted ahead of the line per direction, not counting bytes
                                 in latency (0 = auto: 250 ms of line time, >= 4096); beyond,
                                 the sender is held back (its writes block, as on a UART) */
    uint32_t duration_ms;     /* run() returns after this long (0 = until stopped) */
    /* Follow mode: sides (bit 0 = A, bit 1 = B) whose receiver detects the rate
     * like an STM32 bootloader: after each (re)open of that side, or an open
     * propagated to it, the first byte sent to it sets its rate (written into its
     * termios, so its program can read it); then it stays locked. */
    unsigned autobaud;
    /* Optional log of events (opens, reopens, cut, autobaud); NULL for silence. */
    void (*log)(void *user, const char *msg);
    void *log_user;
} pf_wire_config;

#define PF_WIRE_CONFIG_DEFAULT()                                                                         \
    {                                                                                                   \
        NULL, NULL, 115200u, 0, PF_FRAME_8N1, 0u, 0.0, 0.0, 0u, 0u, -1, PF_WIRE_DIR_BOTH, PF_WIRE_CUT_SILENT, \
            1u, 1, 50u, 0u, 0u, 0u, NULL, NULL                                                          \
    }

typedef struct pf_wire_dir_stats {
    uint64_t bytes_in;        /* bytes read from the sending side */
    uint64_t bytes_out;       /* bytes written to the receiving side */
    uint64_t dropped;         /* lost by --drop */
    uint64_t flipped_bits;    /* data bits inverted by --flip */
    uint64_t garbled;         /* bytes replaced by --burst */
    uint64_t rate_mismatch;   /* bytes sent out of step: while the two sides' rates differed (follow
                                 mode), or while either side's differed from the line's (fixed mode) */
    uint64_t framing_errors;  /* frames a receiver out of step sampled with a bad stop bit (the
                                 receiving side's, or in fixed mode also the line's UART) */
    uint64_t discarded_closed;/* bytes for a side nobody had open */
    uint64_t held_reopening;  /* bytes that waited while an open was propagated (delivered after) */
    uint64_t cut;             /* bytes that arrived after the cable was cut */
    uint64_t idle_starts;     /* times the line went idle and a new busy period began */
    double max_late_ms;       /* worst delay of a delivery behind its due time (CPU load) */
    uint64_t stalls;          /* deliveries 10 ms or more behind their due time */
    uint32_t last_baud;       /* sender's rate used for the last byte (fixed mode: its own, which
                                 is --baud unless it is out of step) */
    double first_in_s;        /* time of the first byte in, seconds since start (-1 none) */
    double last_out_s;        /* time of the last byte out (-1 none) */
    double achieved_Bps;      /* bytes_out / (last_out - first_in) */
} pf_wire_dir_stats;

typedef struct pf_wire_stats {
    pf_wire_dir_stats dir[2]; /* PF_WIRE_A2B, PF_WIRE_B2A */
    uint32_t opens[2];        /* times a program opened side A / B (pty) or a peer connected */
    uint32_t reopens[2];      /* times side A / B was closed and reopened by open propagation */
    int open[2];              /* 1 if side A / B currently has a program (or connection) on it */
    uint32_t autobaud_locked[2]; /* rate an autobaud side locked to (0 = not locked) */
    int cut_done;             /* 1 once the cable has been cut */
    double seconds;           /* time since the wire was created */
} pf_wire_stats;

typedef struct pf_wire pf_wire;

/* Opens both endpoints (pty symlinks exist, listeners listen, connections
 * are made) and returns the engine, ready to run. Errors name the spec. */
int pf_wire_open(pf_wire **out, const pf_wire_config *cfg, pf_diag *diag);
/* Runs until *stop (NULL: no flag), pf_wire_stop, the duration, or a cut in
 * close mode. Returns 0 or an error. */
int pf_wire_run(pf_wire *w, volatile sig_atomic_t *stop);
/* Asks run() to return at once; async-signal-safe, callable from any thread. */
void pf_wire_stop(pf_wire *w);
/* run() in a new thread / wait for that thread (returns run()'s result). */
int pf_wire_start(pf_wire *w);
int pf_wire_join(pf_wire *w);
/* A consistent snapshot of the statistics (any thread). */
void pf_wire_get_stats(pf_wire *w, pf_wire_stats *st);
/* The /dev/pts/N name behind side (0 = A, 1 = B) when it is a pty we created, else "". */
const char *pf_wire_pty_name(const pf_wire *w, int side);
/* Closes endpoints, removes symlinks, frees. Stops and joins a started thread first. */
void pf_wire_close(pf_wire *w);

/* Statistics as one JSON object (config echo, per-direction figures). */
void pf_wire_stats_json(const pf_wire *w, const pf_wire_stats *st, FILE *f);
/* Human-readable summary, a few lines. */
void pf_wire_stats_text(const pf_wire *w, const pf_wire_stats *st, FILE *f);

/* "8N1" / "8E1" (either case) for the CLI. Line rates <-> termios constants:
 * pf_endpoint_baud_to_speed and pf_endpoint_speed_to_baud (posix/endpoint.h). */
int pf_wire_parse_frame(const char *s, pf_frame *frame);

#ifdef __cplusplus
}
#endif
#endif
