/* The link emulator engine (see wire.h for the model).
 *
 * One thread, one poll loop. Per direction: bytes read from the sending side
 * are given faults (by position, from seeded streams), a place on the line
 * (absolute schedule) and a due time; due bytes are written to the receiving
 * side in batches (at most every PF_WIRE_QUANTUM_NS, so bytes are never
 * early and at most that much late). In follow mode with differing rates,
 * a bit-level model of the receiving UART turns the sender's waveform into
 * what the receiver would read.
 *
 * Facts this relies on (Linux, checked on this machine):
 *  - tcgetattr() on a pty master returns the slave's termios (rate included);
 *    the pty driver forces CS8 and clears PARENB, so parity is unobservable.
 *  - A fresh master does not report POLLHUP until its slave has been opened
 *    and closed once; so we open and close the slave at creation.
 *  - With no slave open, the master reports POLLHUP forever (so it leaves the
 *    poll set and is checked every PF_WIRE_HUP_CHECK_NS), its reads give EIO,
 *    and bytes written to it wait in the slave's input for the next opener:
 *    we never write to a hung-up master and flush the slave's input (open,
 *    TCIFLUSH, close) when its program goes away. */
#include "wire.h"
#include "wire_rfc2217.h"
#include "peerflash/pf_posix.h"

#include "host/json.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

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

enum { END_PTY, END_PATH, END_TCP, END_LISTEN, END_RFC2217 };

typedef struct wire_end {
    int kind;
    int fd;           /* pty master, opened path, connected socket; -1 if none */
    int listen_fd;    /* END_LISTEN */
    int open;         /* a program holds the pty slave / a peer is connected / the path is open */
    int connecting;   /* END_TCP: non-blocking connect in progress */
    int want_out;     /* a write was short: wait for POLLOUT */
    int64_t next_check; /* PTY hung up: next poll for an opener; PATH/TCP: next (re)open attempt */
    int64_t reopen_at;  /* PATH: open propagation reopens at this time (NEVER if none) */
    char spec[256];
    char path[256];   /* PTY: symlink; PATH: the path */
    char pts[64];     /* PTY: /dev/pts/N */
    char host[128];
    int port;
    uint32_t opens, reopens;
    uint32_t ab_locked; /* autobaud: the rate this side locked to, 0 while detecting */
    pf_wire_rfc2217 *rfc; /* END_RFC2217: the bridge thread (wire_rfc2217.c) */
} wire_end;

typedef struct out_ent {
    int64_t due;
    uint8_t byte;
} out_ent;

typedef struct gframe {
    double start, bit_ns;
    uint16_t levels; /* bit j = line level during bit j (start bit 0 ... stop bit 1) */
    uint8_t nbits;
} gframe;

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
    /* faults */
    uint64_t idx;                        /* bytes given a place on the line */
    uint64_t rng_flip, rng_drop, rng_burst, rng_data;
    uint64_t next_flip_bit, next_drop, next_burst;
    uint32_t burst_left;
    /* follow mode: receiver model */
    int garbling;
    gframe *fr;
    size_t fcap, fhead, fn;
    double scan, edge;
    int have_edge, need_high;
    uint32_t rx_baud;
    pf_wire_dir_stats st;
} wire_dir;

struct pf_wire {
    pf_wire_config cfg;
    char spec_a[256], spec_b[256];
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

/* ---- time, PRNG ------------------------------------------------------------ */

static int64_t mono_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static int64_t now_rel(const pf_wire *w)
{
    return mono_ns() - w->t0_abs;
}

static uint64_t splitmix64(uint64_t *s)
{
    uint64_t z = (*s += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

/* Uniform in (0, 1]. */
static double uniform(uint64_t *s)
{
    return ((double)(splitmix64(s) >> 11) + 1.0) * (1.0 / 9007199254740992.0);
}

/* Trials before the next event of probability p (geometric); UINT64_MAX if p <= 0. */
static uint64_t geometric(uint64_t *s, double p)
{
    if (p <= 0)
        return UINT64_MAX;
    if (p >= 1)
        return 0;
    double g = floor(log(uniform(s)) / log1p(-p));
    return g >= 1.8e19 ? UINT64_MAX : (uint64_t)g;
}

static uint64_t add_sat(uint64_t a, uint64_t b)
{
    return a > UINT64_MAX - b ? UINT64_MAX : a + b;
}

static void wlog(pf_wire *w, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void wlog(pf_wire *w, const char *fmt, ...)
{
    if (!w->cfg.log)
        return;
    char msg[400];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    w->cfg.log(w->cfg.log_user, msg);
}

/* ---- termios rates -------------------------------------------------------- */

static const struct {
    speed_t sp;
    uint32_t baud;
} speeds[] = {
    {B50, 50},         {B75, 75},           {B110, 110},         {B134, 134},         {B150, 150},
    {B200, 200},       {B300, 300},         {B600, 600},         {B1200, 1200},       {B1800, 1800},
    {B2400, 2400},     {B4800, 4800},       {B9600, 9600},       {B19200, 19200},     {B38400, 38400},
    {B57600, 57600},   {B115200, 115200},   {B230400, 230400},   {B460800, 460800},   {B500000, 500000},
    {B576000, 576000}, {B921600, 921600},   {B1000000, 1000000}, {B1152000, 1152000}, {B1500000, 1500000},
    {B2000000, 2000000}, {B2500000, 2500000}, {B3000000, 3000000}, {B3500000, 3500000}, {B4000000, 4000000},
};

uint32_t pf_wire_speed_to_baud(unsigned speed)
{
    for (size_t i = 0; i < sizeof speeds / sizeof speeds[0]; i++)
        if (speeds[i].sp == (speed_t)speed)
            return speeds[i].baud;
    return 0;
}

unsigned pf_wire_baud_to_speed(uint32_t baud)
{
    for (size_t i = 0; i < sizeof speeds / sizeof speeds[0]; i++)
        if (speeds[i].baud == baud)
            return (unsigned)speeds[i].sp;
    return 0;
}

int pf_wire_parse_frame(const char *s, pf_frame *frame)
{
    if (!strcmp(s, "8N1") || !strcmp(s, "8n1"))
        *frame = PF_FRAME_8N1;
    else if (!strcmp(s, "8E1") || !strcmp(s, "8e1"))
        *frame = PF_FRAME_8E1;
    else
        return PF_ERR_ARG;
    return PF_OK;
}

/* The rate the program on this side set (tty/pty), 0 if none or unknown. */
static uint32_t side_rate(const wire_end *e)
{
    if ((e->kind != END_PTY && e->kind != END_PATH) || e->fd < 0)
        return 0;
    struct termios t;
    if (tcgetattr(e->fd, &t) != 0)
        return 0;
    return pf_wire_speed_to_baud((unsigned)cfgetospeed(&t));
}

/* Raw mode; the rate and parity only when given (fixed mode). */
static void set_raw(int fd, uint32_t baud, pf_frame frame)
{
    struct termios t;
    if (tcgetattr(fd, &t) != 0)
        return;
    cfmakeraw(&t);
    t.c_cflag |= CLOCAL | CREAD;
    /* A blocking read returns after 0.5 s without data: tools that skip port
     * setup (stm32flash -b 0) inherit this and time out instead of hanging. */
    t.c_cc[VMIN] = 0;
    t.c_cc[VTIME] = 5;
    if (baud) {
        unsigned sp = pf_wire_baud_to_speed(baud);
        if (sp) {
            cfsetispeed(&t, (speed_t)sp);
            cfsetospeed(&t, (speed_t)sp);
        }
        t.c_cflag &= ~(tcflag_t)(PARENB | PARODD);
        if (frame == PF_FRAME_8E1)
            t.c_cflag |= PARENB;
    }
    tcsetattr(fd, TCSANOW, &t);
}

/* ---- endpoints -------------------------------------------------------------- */

static int pty_create(pf_wire *w, wire_end *e, pf_diag *diag)
{
    int fd = posix_openpt(O_RDWR | O_NOCTTY | O_NONBLOCK);
    if (fd < 0)
        return pf_diag_set(diag, PF_ERR_IO, "%s: cannot create a pty: %s", e->spec, strerror(errno));
    if (grantpt(fd) != 0 || unlockpt(fd) != 0 || ptsname_r(fd, e->pts, sizeof e->pts) != 0) {
        int err = errno;
        close(fd);
        return pf_diag_set(diag, PF_ERR_IO, "%s: cannot set up the pty: %s", e->spec, strerror(err));
    }
    fcntl(fd, F_SETFD, FD_CLOEXEC);
    /* Open the slave once: raw, the configured rate; closing it puts the master
     * in the hung-up state that tells us nobody has the port open. */
    int s = open(e->pts, O_RDWR | O_NOCTTY | O_NONBLOCK | O_CLOEXEC);
    if (s < 0) {
        int err = errno;
        close(fd);
        return pf_diag_set(diag, PF_ERR_IO, "%s: cannot open %s: %s", e->spec, e->pts, strerror(err));
    }
    set_raw(s, w->cfg.baud, w->cfg.frame);
    close(s);
    /* Atomically replace whatever link is there (a stale one from a killed run). */
    char tmp[300];
    snprintf(tmp, sizeof tmp, "%s.wire%ld", e->path, (long)getpid());
    unlink(tmp);
    if (symlink(e->pts, tmp) != 0 || rename(tmp, e->path) != 0) {
        int err = errno;
        unlink(tmp);
        close(fd);
        return pf_diag_set(diag, PF_ERR_IO, "%s: cannot link %s to %s: %s", e->spec, e->path, e->pts,
                           strerror(err));
    }
    e->fd = fd;
    e->open = 0;
    e->next_check = 0;
    return PF_OK;
}

static int path_open(pf_wire *w, wire_end *e, pf_diag *diag)
{
    int fd = open(e->path, O_RDWR | O_NOCTTY | O_NONBLOCK | O_CLOEXEC);
    if (fd < 0)
        return pf_diag_set(diag, PF_ERR_IO, "%s: cannot open: %s%s", e->spec, strerror(errno),
                           errno == EACCES ? " (permissions: are you in the dialout group?)" : "");
    if (!isatty(fd)) {
        close(fd);
        return pf_diag_set(diag, PF_ERR_ARG, "%s: not a tty or pty", e->spec);
    }
    set_raw(fd, w->cfg.follow ? 0 : w->cfg.baud, w->cfg.frame);
    e->fd = fd;
    e->open = 1;
    return PF_OK;
}

static int tcp_listen(wire_end *e, pf_diag *diag)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return pf_diag_set(diag, PF_ERR_IO, "%s: socket: %s", e->spec, strerror(errno));
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    struct sockaddr_in sa;
    memset(&sa, 0, sizeof sa);
    sa.sin_family = AF_INET;
    sa.sin_port = htons((uint16_t)e->port);
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (bind(fd, (struct sockaddr *)&sa, sizeof sa) != 0 || listen(fd, 4) != 0) {
        int err = errno;
        close(fd);
        return pf_diag_set(diag, PF_ERR_IO, "%s: cannot listen on 127.0.0.1:%d: %s", e->spec, e->port,
                           strerror(err));
    }
    e->listen_fd = fd;
    return PF_OK;
}

/* Starts a non-blocking connect; the socket is e->fd with e->connecting set. */
static int tcp_connect_start(wire_end *e, pf_diag *diag)
{
    struct addrinfo hints, *res = NULL;
    memset(&hints, 0, sizeof hints);
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    char port[16];
    snprintf(port, sizeof port, "%d", e->port);
    int rc = getaddrinfo(e->host, port, &hints, &res);
    if (rc != 0)
        return pf_diag_set(diag, PF_ERR_IO, "%s: cannot resolve %s: %s", e->spec, e->host, gai_strerror(rc));
    int fd = socket(res->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        freeaddrinfo(res);
        return pf_diag_set(diag, PF_ERR_IO, "%s: socket: %s", e->spec, strerror(errno));
    }
    rc = connect(fd, res->ai_addr, res->ai_addrlen);
    freeaddrinfo(res);
    if (rc != 0 && errno != EINPROGRESS) {
        int err = errno;
        close(fd);
        return pf_diag_set(diag, PF_ERR_IO, "%s: cannot connect: %s", e->spec, strerror(err));
    }
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    e->fd = fd;
    e->connecting = rc != 0;
    e->open = rc == 0;
    return PF_OK;
}

/* Finishes a connect in progress: 1 connected, 0 still waiting, <0 failed. */
static int tcp_connect_finish(wire_end *e, int timeout_ms)
{
    struct pollfd p = {e->fd, POLLOUT, 0};
    if (poll(&p, 1, timeout_ms) <= 0)
        return 0;
    int err = 0;
    socklen_t len = sizeof err;
    getsockopt(e->fd, SOL_SOCKET, SO_ERROR, &err, &len);
    if (err) {
        errno = err;
        return -1;
    }
    e->connecting = 0;
    e->open = 1;
    return 1;
}

static int parse_spec(wire_end *e, const char *spec, pf_diag *diag)
{
    memset(e, 0, sizeof *e);
    e->fd = -1;
    e->listen_fd = -1;
    e->reopen_at = NEVER;
    if (!spec || !*spec)
        return pf_diag_set(diag, PF_ERR_ARG, "missing endpoint spec");
    if (strlen(spec) >= sizeof e->spec)
        return pf_diag_set(diag, PF_ERR_ARG, "endpoint spec too long: %s", spec);
    strcpy(e->spec, spec);
    if (!strncmp(spec, "tcp-listen://", 13)) {
        char *end;
        long p = strtol(spec + 13, &end, 10);
        if (*end || p <= 0 || p > 65535)
            return pf_diag_set(diag, PF_ERR_ARG, "%s: expected tcp-listen://PORT", spec);
        e->kind = END_LISTEN;
        e->port = (int)p;
        return PF_OK;
    }
    if (!strncmp(spec, "rfc2217://", 10)) {
        int rc = pf_posix_spec_check(spec, diag);
        if (rc)
            return rc;
        e->kind = END_RFC2217;
        return PF_OK;
    }
    if (!strncmp(spec, "tcp://", 6)) {
        const char *hp = spec + 6, *colon = strrchr(hp, ':');
        char *end;
        long p = colon ? strtol(colon + 1, &end, 10) : 0;
        if (!colon || colon == hp || *end || p <= 0 || p > 65535 || (size_t)(colon - hp) >= sizeof e->host)
            return pf_diag_set(diag, PF_ERR_ARG, "%s: expected tcp://HOST:PORT", spec);
        memcpy(e->host, hp, (size_t)(colon - hp));
        e->host[colon - hp] = '\0';
        e->kind = END_TCP;
        e->port = (int)p;
        return PF_OK;
    }
    const char *path = spec;
    int want_pty = 0;
    if (!strncmp(spec, "pty:", 4)) {
        path = spec + 4;
        want_pty = 1;
    }
    if (!*path)
        return pf_diag_set(diag, PF_ERR_ARG, "%s: empty path", spec);
    strcpy(e->path, path);
    struct stat st, lst;
    if (!want_pty && stat(path, &st) == 0) {
        e->kind = END_PATH;
        return PF_OK;
    }
    if (lstat(path, &lst) == 0 && !S_ISLNK(lst.st_mode))
        return pf_diag_set(diag, PF_ERR_ARG, "%s: %s exists and is not a symlink; refusing to replace it", spec,
                           path);
    e->kind = END_PTY;
    return PF_OK;
}

static int end_open(pf_wire *w, wire_end *e, pf_diag *diag)
{
    switch (e->kind) {
    case END_PTY: return pty_create(w, e, diag);
    case END_PATH: return path_open(w, e, diag);
    case END_LISTEN: return tcp_listen(e, diag);
    case END_RFC2217: {
        /* a fixed rate goes to the server's port; in follow mode it takes
         * the other side's rate, as a TCP side does */
        int rc = pf_wire_rfc2217_start(&e->rfc, e->spec, w->cfg.follow ? 0 : w->cfg.baud, w->cfg.frame, &e->fd, diag);
        if (rc == 0)
            e->open = 1;
        return rc;
    }
    default: {
        int rc = tcp_connect_start(e, diag);
        if (rc == 0 && e->connecting) {
            rc = tcp_connect_finish(e, 5000);
            if (rc <= 0) {
                int err = rc < 0 ? errno : ETIMEDOUT;
                close(e->fd);
                e->fd = -1;
                return pf_diag_set(diag, PF_ERR_IO, "%s: cannot connect: %s", e->spec, strerror(err));
            }
            rc = 0;
        }
        return rc;
    }
    }
}

static void end_close(wire_end *e)
{
    if (e->rfc) {
        pf_wire_rfc2217_stop(e->rfc, e->fd);
        e->rfc = NULL;
    }
    if (e->fd >= 0)
        close(e->fd);
    e->fd = -1;
    if (e->listen_fd >= 0)
        close(e->listen_fd);
    e->listen_fd = -1;
    e->open = 0;
    if (e->kind == END_PTY && e->path[0]) {
        char buf[64];
        ssize_t n = readlink(e->path, buf, sizeof buf - 1);
        if (n > 0) {
            buf[n] = '\0';
            if (!strcmp(buf, e->pts))
                unlink(e->path);
        }
    }
}

/* ---- direction queues ------------------------------------------------------ */

static void q_push(wire_dir *d, int64_t due, uint8_t byte)
{
    if (d->n == d->cap) {
        size_t ncap = d->cap ? d->cap * 2 : 4096;
        out_ent *nq = malloc(ncap * sizeof *nq);
        if (!nq)
            abort();
        for (size_t i = 0; i < d->n; i++)
            nq[i] = d->q[(d->head + i) % d->cap];
        free(d->q);
        d->q = nq;
        d->cap = ncap;
        d->head = 0;
    }
    /* Due times never go backwards: a byte cannot overtake the one before. */
    if (d->n) {
        int64_t last = d->q[(d->head + d->n - 1) % d->cap].due;
        if (due < last)
            due = last;
    }
    d->q[(d->head + d->n) % d->cap] = (out_ent){due, byte};
    d->n++;
}

static void f_push(wire_dir *d, gframe f)
{
    if (d->fn == d->fcap) {
        size_t ncap = d->fcap ? d->fcap * 2 : 1024;
        gframe *nf = malloc(ncap * sizeof *nf);
        if (!nf)
            abort();
        for (size_t i = 0; i < d->fn; i++)
            nf[i] = d->fr[(d->fhead + i) % d->fcap];
        free(d->fr);
        d->fr = nf;
        d->fcap = ncap;
        d->fhead = 0;
    }
    d->fr[(d->fhead + d->fn) % d->fcap] = f;
    d->fn++;
}

static gframe *f_at(wire_dir *d, size_t i)
{
    return &d->fr[(d->fhead + i) % d->fcap];
}

static double f_end(const gframe *f)
{
    return f->start + f->nbits * f->bit_ns;
}

/* Line levels of one character: start 0, 8 data bits LSB first, even parity, stop 1. */
static gframe make_frame(double start, double bit_ns, uint8_t byte, unsigned bits)
{
    gframe f;
    f.start = start;
    f.bit_ns = bit_ns;
    f.nbits = (uint8_t)bits;
    uint16_t lv = (uint16_t)((unsigned)byte << 1); /* bit 0 (start) = 0 */
    unsigned pos = 9;
    if (bits == 11) {
        unsigned ones = 0;
        for (int i = 0; i < 8; i++)
            ones += (byte >> i) & 1u;
        lv |= (uint16_t)((ones & 1u) << pos);
        pos++;
    }
    lv |= (uint16_t)(1u << pos); /* stop */
    f.levels = lv;
    return f;
}

/* Line level at time t: 1 idle/high, 0 low, -1 not known yet. */
static int level_at(wire_dir *d, double t, int64_t now, int flush)
{
    for (size_t i = 0; i < d->fn; i++) {
        gframe *f = f_at(d, i);
        if (t < f->start)
            return 1;
        double e = f_end(f);
        if (t < e) {
            int j = (int)((t - f->start) / f->bit_ns);
            if (j >= f->nbits)
                j = f->nbits - 1;
            return (f->levels >> j) & 1;
        }
    }
    return (flush || t < (double)now) ? 1 : -1;
}

/* Runs the receiving UART model over the frames queued so far. Emits what it
 * reads; returns the time at which it can make progress again (NEVER if it
 * waits for more frames). */
static int64_t garble_process(pf_wire *w, wire_dir *d, int64_t now, int flush)
{
    unsigned nr = pf_frame_bits(w->cfg.frame);
    for (;;) {
        if (!d->rx_baud)
            return NEVER;
        double tr = 1e9 / d->rx_baud;
        /* drop frames the receiver has passed */
        while (d->fn && f_end(f_at(d, 0)) <= d->scan) {
            d->fhead = (d->fhead + 1) % d->fcap;
            d->fn--;
        }
        if (!d->have_edge) {
            double t = d->scan;
            int found = 0;
            for (size_t i = 0; i < d->fn && !found; i++) {
                gframe *f = f_at(d, i);
                if (f_end(f) <= t)
                    continue;
                if (t < f->start) { /* idle gap before this frame: high, then its start bit */
                    d->need_high = 0;
                    d->edge = f->start;
                    found = 1;
                    break;
                }
                int j = (int)((t - f->start) / f->bit_ns);
                for (; j < f->nbits; j++) {
                    int lv = (f->levels >> j) & 1;
                    if (d->need_high) {
                        if (lv)
                            d->need_high = 0;
                    } else if (!lv) {
                        double bt = f->start + j * f->bit_ns;
                        d->edge = bt > t ? bt : t;
                        found = 1;
                        break;
                    }
                }
                t = f_end(f);
            }
            if (!found) {
                double last = d->fn ? f_end(f_at(d, d->fn - 1)) : d->scan;
                if (last > d->scan)
                    d->scan = last;
                if (d->need_high && (flush || last < (double)now))
                    d->need_high = 0;
                return NEVER;
            }
            d->have_edge = 1;
        }
        double s_last = d->edge + (nr - 0.5) * tr;
        if (level_at(d, s_last, now, flush) < 0)
            return (int64_t)ceil(s_last) + 1;
        if (level_at(d, d->edge + 0.5 * tr, now, flush) == 1) { /* glitch, not a start bit */
            d->have_edge = 0;
            d->scan = d->edge + 0.5 * tr;
            continue;
        }
        uint8_t byte = 0;
        for (int k = 1; k <= 8; k++)
            if (level_at(d, d->edge + (k + 0.5) * tr, now, flush) == 1)
                byte |= (uint8_t)(1u << (k - 1));
        int stop = level_at(d, s_last, now, flush);
        if (stop != 1) {
            d->st.framing_errors++;
            d->need_high = 1;
        }
        q_push(d, (int64_t)(d->edge + nr * tr) + (int64_t)w->cfg.latency_us * 1000, byte);
        d->have_edge = 0;
        d->scan = s_last;
    }
}

/* Leaves garbling: whatever the receiver can still read, assuming an idle line after. */
static void garble_flush(pf_wire *w, wire_dir *d, int64_t now)
{
    garble_process(w, d, now, 1);
    d->fn = 0;
    d->fhead = 0;
    d->have_edge = 0;
    d->need_high = 0;
    d->garbling = 0;
}

/* A byte taken from the sender at t_read: faults, then its place on the line. */
static void accept_byte(pf_wire *w, wire_dir *d, uint8_t byte, int64_t t_read, uint32_t tx_baud, uint32_t rx_baud)
{
    const pf_wire_config *c = &w->cfg;
    unsigned bits = pf_frame_bits(c->frame);
    uint64_t i = d->idx++;
    int dropped = 0;
    if (i == d->next_drop) {
        dropped = 1;
        d->st.dropped++;
        d->next_drop = add_sat(d->next_drop, 1 + geometric(&d->rng_drop, c->drop_rate));
    }
    if (c->burst_every && c->burst_len) {
        if (!d->burst_left && i == d->next_burst) {
            d->burst_left = c->burst_len;
            d->next_burst = add_sat(i + c->burst_len, geometric(&d->rng_burst, 1.0 / c->burst_every));
        }
        if (d->burst_left) {
            d->burst_left--;
            uint8_t g = (uint8_t)splitmix64(&d->rng_data);
            if (g == byte)
                g ^= 0x55;
            byte = g;
            d->st.garbled++;
        }
    }
    while (d->next_flip_bit < (i + 1) * 8) {
        byte ^= (uint8_t)(1u << (d->next_flip_bit - i * 8));
        d->st.flipped_bits++;
        d->next_flip_bit = add_sat(d->next_flip_bit, 1 + geometric(&d->rng_flip, c->flip_rate));
    }
    /* the serializer: absolute schedule from the start of a busy period */
    if (d->line_end <= t_read) {
        d->st.idle_starts++;
        d->epoch = t_read;
        d->k = 0;
        d->cur_baud = tx_baud;
        d->cur_bits = bits;
    } else if (tx_baud != d->cur_baud || bits != d->cur_bits) {
        d->epoch = d->line_end;
        d->k = 0;
        d->cur_baud = tx_baud;
        d->cur_bits = bits;
    }
    int64_t start = d->line_end > t_read ? d->line_end : t_read;
    d->k++;
    int64_t end = d->epoch + (int64_t)llround((double)d->k * bits * 1e9 / tx_baud);
    d->line_end = end;
    d->st.last_baud = tx_baud;

    int mismatch = rx_baud && rx_baud != tx_baud;
    if (mismatch) {
        d->st.rate_mismatch++;
        if (!d->garbling || d->rx_baud != rx_baud) {
            if (d->garbling)
                garble_flush(w, d, t_read);
            d->garbling = 1;
            d->rx_baud = rx_baud;
            d->scan = (double)start;
            d->have_edge = 0;
            d->need_high = 0;
        }
        if (!dropped)
            f_push(d, make_frame((double)start, (double)(end - start) / bits, byte, bits));
        return;
    }
    if (d->garbling)
        garble_flush(w, d, t_read);
    if (!dropped)
        q_push(d, end + (int64_t)c->latency_us * 1000, byte);
}

/* ---- state of a side ---------------------------------------------------------- */

static void propagate_open(pf_wire *w, int side, int64_t now)
{
    wire_end *o = &w->end[1 - side];
    if (w->cfg.open_propagation && o->kind == END_RFC2217 && o->fd >= 0) {
        /* the server reopens its port when we reconnect (a real serial
         * device asserts DTR on open; a simulator resets on open) */
        end_close(o);
        o->ab_locked = 0;
        o->next_check = now + (int64_t)w->cfg.reopen_gap_ms * 1000000LL;
        o->reopens++;
        wlog(w, "side %c opened: reconnecting side %c (%s) after %u ms to propagate the open", 'A' + side,
             'A' + (1 - side), o->spec, w->cfg.reopen_gap_ms);
        return;
    }
    if (!w->cfg.open_propagation || o->kind != END_PATH || o->fd < 0)
        return;
    close(o->fd);
    o->fd = -1;
    o->open = 0;
    o->ab_locked = 0;
    o->reopen_at = now + (int64_t)w->cfg.reopen_gap_ms * 1000000LL;
    o->reopens++;
    wlog(w, "side %c opened: closing side %c (%s) for %u ms to propagate the open", 'A' + side, 'A' + (1 - side),
         o->path, w->cfg.reopen_gap_ms);
}

static void flush_slave_input(wire_end *e)
{
    int s = open(e->pts, O_RDWR | O_NOCTTY | O_NONBLOCK | O_CLOEXEC);
    if (s >= 0) {
        tcflush(s, TCIFLUSH);
        close(s);
    }
}

static void read_side(pf_wire *w, int side, int64_t now);

/* For a pty we created: is a program holding the slave? Handles transitions. */
static int pty_check(pf_wire *w, int side, int64_t now)
{
    wire_end *e = &w->end[side];
    if (e->fd < 0)
        return 0;
    struct pollfd p = {e->fd, POLLIN, 0};
    poll(&p, 1, 0);
    int hup = (p.revents & POLLHUP) != 0;
    if (hup && !e->open && (p.revents & POLLIN)) {
        /* a program opened, wrote and closed between two checks */
        e->open = 1;
        e->opens++;
        e->ab_locked = 0;
        wlog(w, "side %c (%s) opened by a program", 'A' + side, e->path);
        propagate_open(w, side, now);
    }
    if (hup && e->open) {
        if (p.revents & POLLIN)
            read_side(w, side, now); /* what the program wrote before it went away */
        e->open = 0;
        flush_slave_input(e);
        wlog(w, "side %c (%s) closed by its program", 'A' + side, e->path);
    } else if (!hup && !e->open) {
        e->open = 1;
        e->opens++;
        e->ab_locked = 0;
        wlog(w, "side %c (%s) opened by a program", 'A' + side, e->path);
        propagate_open(w, side, now);
    }
    e->next_check = now + PF_WIRE_HUP_CHECK_NS;
    return e->open;
}

static void side_lost(pf_wire *w, int side, int64_t now)
{
    wire_end *e = &w->end[side];
    switch (e->kind) {
    case END_PTY: pty_check(w, side, now); break;
    case END_PATH:
        if (e->fd >= 0)
            close(e->fd);
        e->fd = -1;
        e->open = 0;
        e->next_check = now + PF_WIRE_RETRY_NS;
        wlog(w, "side %c (%s) hung up; reopening", 'A' + side, e->path);
        break;
    case END_RFC2217:
    case END_LISTEN:
    case END_TCP:
        if (e->rfc) {
            pf_wire_rfc2217_stop(e->rfc, e->fd);
            e->rfc = NULL;
        }
        if (e->fd >= 0)
            close(e->fd);
        e->fd = -1;
        e->open = 0;
        e->connecting = 0;
        e->next_check = now + PF_WIRE_RECONNECT_NS;
        wlog(w, "side %c (%s): peer disconnected", 'A' + side, e->spec);
        break;
    }
}

/* Can bytes be written to this side now? */
static int side_ready(pf_wire *w, int side, int64_t now)
{
    wire_end *e = &w->end[side];
    if (e->kind == END_PTY)
        return pty_check(w, side, now);
    return e->fd >= 0 && e->open && !e->connecting;
}

/* ---- reading and delivering --------------------------------------------------- */

/* How many more bytes the sender may put ahead: the queue limit counts the
 * bytes still waiting for the line (latency does not hold the sender back). */
static size_t dir_room(const pf_wire *w, const wire_dir *d, int64_t now)
{
    int64_t backlog_ns = d->line_end - now;
    if (backlog_ns <= 0)
        return w->queue_bytes;
    uint32_t baud = d->cur_baud ? d->cur_baud : w->cfg.baud;
    unsigned bits = d->cur_bits ? d->cur_bits : pf_frame_bits(w->cfg.frame);
    double backlog = (double)backlog_ns * baud / (bits * 1e9);
    return backlog >= w->queue_bytes ? 0 : (size_t)(w->queue_bytes - backlog);
}

/* An autobaud side locks to the rate of the first byte sent to it. */
static uint32_t autobaud_lock(pf_wire *w, int side, uint32_t baud)
{
    wire_end *e = &w->end[side];
    struct termios t;
    unsigned sp = pf_wire_baud_to_speed(baud);
    if (sp && tcgetattr(e->fd, &t) == 0) {
        cfsetispeed(&t, (speed_t)sp);
        cfsetospeed(&t, (speed_t)sp);
        tcsetattr(e->fd, TCSANOW, &t);
    }
    e->ab_locked = baud;
    wlog(w, "side %c autobaud: locked to %u baud", 'A' + side, baud);
    return baud;
}

static void read_side(pf_wire *w, int side, int64_t now)
{
    wire_end *e = &w->end[side];
    wire_dir *d = &w->dir[side]; /* side A sends A2B = dir 0 */
    uint8_t buf[4096];
    unsigned mask = side == PF_WIRE_A ? PF_WIRE_DIR_A2B : PF_WIRE_DIR_B2A;
    for (;;) {
        if (e->fd < 0 || e->connecting)
            return;
        size_t room = dir_room(w, d, now);
        if (!room) {
            /* does the sender have more waiting in its OS buffer? */
            int avail = 0;
            d->src_waiting = ioctl(e->fd, FIONREAD, &avail) == 0 && avail > 0;
            return;
        }
        if (room > sizeof buf)
            room = sizeof buf;
        ssize_t r = read(e->fd, buf, room);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            d->src_waiting = 0;
            return;
        }
        /* Bytes that were already waiting when we last had to stop reading
         * would have kept a real UART busy: they follow the previous byte on
         * the line even if this thread was scheduled late (no rate drift
         * under CPU load, only jitter). */
        int64_t t_avail = now;
        if (r > 0 && d->src_waiting && d->line_end < now)
            t_avail = d->line_end;
        if (r <= 0) {
            if (e->kind == END_PTY) {
                /* EIO: nobody holds the slave (checked by the caller's state logic) */
                e->next_check = now;
                return;
            }
            side_lost(w, side, now);
            return;
        }
        if (e->kind == END_PTY && !e->open) {
            e->open = 1; /* data from the slave: someone has it open */
            e->opens++;
            e->ab_locked = 0;
            wlog(w, "side %c (%s) opened by a program", 'A' + side, e->path);
            propagate_open(w, side, now);
        }
        uint32_t tx = w->cfg.baud, rx = 0;
        if (w->cfg.follow) {
            wire_end *o = &w->end[1 - side];
            uint32_t ts = side_rate(e), rs = side_rate(o);
            tx = ts ? ts : (rs ? rs : w->cfg.baud);
            if ((w->cfg.autobaud & (1u << (1 - side))) && !o->ab_locked && o->fd >= 0 && o->open)
                rs = autobaud_lock(w, 1 - side, tx);
            rx = rs ? rs : tx;
        }
        if (d->st.first_in_s < 0)
            d->st.first_in_s = (double)now / 1e9;
        for (ssize_t i = 0; i < r; i++) {
            d->st.bytes_in++;
            if (w->cfg.cut_after >= 0 && (w->cfg.cut_dirs & mask)) {
                if (w->cut_done) {
                    d->st.cut++;
                    continue;
                }
                if (++w->cut_count >= w->cfg.cut_after) {
                    w->cut_done = 1;
                    wlog(w, "cable cut after %lld bytes", (long long)w->cut_count);
                }
            }
            accept_byte(w, d, buf[i], t_avail, tx, rx);
        }
    }
}

/* Writes the bytes that are due; returns the next due time. */
static int64_t deliver(pf_wire *w, int di, int64_t now)
{
    wire_dir *d = &w->dir[di];
    wire_end *e = &w->end[d->dst];
    int64_t wake = NEVER;
    if (d->garbling)
        wake = garble_process(w, d, now, 0);
    if (d->n == 0)
        return wake;
    int64_t head_due = d->q[d->head].due;
    if (head_due > now)
        return head_due < wake ? head_due : wake;
    /* batch: a byte due within the quantum after a delivery waits for the next one */
    if (now - d->last_flush < PF_WIRE_QUANTUM_NS && head_due > d->last_flush) {
        int64_t t = d->last_flush + PF_WIRE_QUANTUM_NS;
        return t < wake ? t : wake;
    }
    /* The other side is closed only for a moment to propagate an open (a
     * stand-in for a DTR pulse): what is sent meanwhile waits for the reopen,
     * as in a USB-serial adapter's buffer, instead of being thrown away (the
     * board decides what a reset does to it). Counted once per byte. */
    if (e->kind == END_PATH && e->fd < 0 && e->reopen_at != NEVER) {
        size_t due = 0;
        while (due < d->n && d->q[(d->head + due) % d->cap].due <= now)
            due++;
        if (due > d->held_counted) {
            d->st.held_reopening += due - d->held_counted;
            d->held_counted = due;
        }
        return e->reopen_at < wake ? e->reopen_at : wake;
    }
    uint8_t buf[8192];
    size_t cnt = 0;
    while (cnt < d->n && cnt < sizeof buf) {
        out_ent *o = &d->q[(d->head + cnt) % d->cap];
        if (o->due > now)
            break;
        buf[cnt++] = o->byte;
    }
    d->last_flush = now;
    double late = d->held_counted ? 0.0 : (double)(now - head_due) / 1e6; /* held is not CPU lateness */
    if (late > d->st.max_late_ms)
        d->st.max_late_ms = late;
    if (late >= 10.0)
        d->st.stalls++;
    size_t done = 0;
    if (!side_ready(w, d->dst, now)) {
        d->st.discarded_closed += cnt;
        done = cnt;
    } else {
        ssize_t r = e->kind == END_PTY || e->kind == END_PATH ? write(e->fd, buf, cnt)
                                                              : send(e->fd, buf, cnt, MSG_NOSIGNAL);
        if (r > 0) {
            done = (size_t)r;
            d->st.bytes_out += done;
            d->st.last_out_s = (double)now / 1e9;
            e->want_out = done < cnt;
        } else if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)) {
            e->want_out = 1;
        } else {
            d->st.discarded_closed += cnt;
            done = cnt;
            side_lost(w, d->dst, now);
        }
    }
    d->head = (d->head + done) % d->cap;
    d->n -= done;
    d->held_counted = d->held_counted > done ? d->held_counted - done : 0;
    if (d->n == 0)
        return wake;
    int64_t nd = d->q[d->head].due;
    if (nd <= now)
        nd = e->want_out ? now + PF_WIRE_QUANTUM_NS : now;
    return nd < wake ? nd : wake;
}

/* ---- the loop ------------------------------------------------------------------ */

static void service_ends(pf_wire *w, int64_t now)
{
    for (int s = 0; s < 2; s++) {
        wire_end *e = &w->end[s];
        switch (e->kind) {
        case END_PTY:
            if (!e->open && now >= e->next_check)
                pty_check(w, s, now);
            break;
        case END_PATH:
            if (e->fd < 0 && (now >= e->reopen_at || (e->reopen_at == NEVER && now >= e->next_check))) {
                pf_diag dg;
                if (path_open(w, e, &dg) == 0) {
                    e->ab_locked = 0;
                    if (e->reopen_at != NEVER)
                        wlog(w, "side %c (%s) reopened", 'A' + s, e->path);
                    e->reopen_at = NEVER;
                } else {
                    e->reopen_at = NEVER;
                    e->next_check = now + PF_WIRE_RETRY_NS;
                }
            }
            break;
        case END_RFC2217:
            if (e->fd < 0 && now >= e->next_check) {
                pf_diag dg;
                if (end_open(w, e, &dg) != 0) {
                    e->fd = -1;
                    e->next_check = now + PF_WIRE_RECONNECT_NS;
                } else {
                    e->opens++;
                    wlog(w, "side %c (%s): connected", 'A' + s, e->spec);
                }
            }
            break;
        case END_TCP:
            if (e->fd < 0 && now >= e->next_check) {
                if (tcp_connect_start(e, NULL) != 0)
                    e->next_check = now + PF_WIRE_RECONNECT_NS;
                else if (!e->connecting) {
                    e->opens++;
                    propagate_open(w, s, now);
                }
            }
            break;
        default: break;
        }
    }
}

/* 1 if a program has not read all we delivered to its pty yet. */
static int unread_input(pf_wire *w)
{
    for (int i = 0; i < 2; i++) {
        wire_end *e = &w->end[i];
        if (e->kind != END_PTY || e->fd < 0 || !e->open)
            continue;
        int s = open(e->pts, O_RDWR | O_NOCTTY | O_NONBLOCK | O_CLOEXEC);
        if (s < 0)
            continue;
        int n = 0;
        ioctl(s, FIONREAD, &n);
        close(s);
        if (n > 0)
            return 1;
    }
    return 0;
}

static int all_delivered(pf_wire *w)
{
    for (int i = 0; i < 2; i++) {
        wire_dir *d = &w->dir[i];
        if (!(w->cfg.cut_dirs & (1u << i)))
            continue;
        if (d->n || d->fn)
            return 0;
    }
    return 1;
}

int pf_wire_run(pf_wire *w)
{
    if (!w)
        return PF_ERR_ARG;
    int64_t end_at = w->cfg.duration_ms ? now_rel(w) + (int64_t)w->cfg.duration_ms * 1000000LL : NEVER;
    pthread_mutex_lock(&w->mu);
    while (!w->finished) {
        int64_t now = now_rel(w);
        if (now >= end_at)
            break;
        service_ends(w, now);
        int64_t wake = end_at;
        for (int di = 0; di < 2; di++) {
            int64_t t = deliver(w, di, now);
            if (t < wake)
                wake = t;
        }
        if (w->cut_done && w->cfg.cut_mode == PF_WIRE_CUT_CLOSE) {
            for (int di = 0; di < 2; di++)
                if (w->dir[di].garbling && (w->cfg.cut_dirs & (1u << di)))
                    garble_flush(w, &w->dir[di], now);
            /* Closing a pty master throws away what its program has not read
             * yet: let the programs read the bytes that passed before the cut. */
            if (all_delivered(w) && w->closing_since < 0)
                w->closing_since = now;
            int64_t lingered = w->closing_since >= 0 ? now - w->closing_since : -1;
            if (lingered > PF_WIRE_LINGER_MAX_NS || (lingered >= PF_WIRE_LINGER_MIN_NS && !unread_input(w))) {
                wlog(w, "cable cut: closing both sides");
                for (int s = 0; s < 2; s++)
                    end_close(&w->end[s]);
                w->finished = 1;
                break;
            }
            if (w->closing_since >= 0 && wake > now + PF_WIRE_HUP_CHECK_NS)
                wake = now + PF_WIRE_HUP_CHECK_NS;
        }
        struct pollfd pfd[5];
        int who[5];
        int np = 0;
        pfd[np] = (struct pollfd){w->stop_pipe[0], POLLIN, 0};
        who[np++] = -1;
        for (int s = 0; s < 2; s++) {
            wire_end *e = &w->end[s];
            wire_dir *d = &w->dir[s];
            if (e->kind == END_PTY && !e->open) {
                if (e->next_check < wake)
                    wake = e->next_check;
                continue;
            }
            if (e->kind == END_PATH && e->fd < 0) {
                int64_t t = e->reopen_at != NEVER ? e->reopen_at : e->next_check;
                if (t < wake)
                    wake = t;
                continue;
            }
            if ((e->kind == END_TCP || e->kind == END_LISTEN || e->kind == END_RFC2217) && e->fd < 0) {
                if (e->kind == END_LISTEN) {
                    pfd[np] = (struct pollfd){e->listen_fd, POLLIN, 0};
                    who[np++] = 2 + s;
                } else if (e->next_check < wake) {
                    wake = e->next_check;
                }
                continue;
            }
            short ev = 0;
            if (e->connecting)
                ev |= POLLOUT;
            else {
                if (dir_room(w, d, now))
                    ev |= POLLIN;
                else if (d->line_end - now > 0) {
                    /* full: look again when half the backlog has left the line */
                    int64_t t = now + (d->line_end - now) / 2;
                    if (t < wake)
                        wake = t;
                }
                if (e->want_out)
                    ev |= POLLOUT;
            }
            pfd[np] = (struct pollfd){e->fd, ev, 0};
            who[np++] = s;
        }
        int64_t dt = wake == NEVER ? 1000000000LL : wake - now;
        if (dt < 0)
            dt = 0;
        if (dt > 1000000000LL)
            dt = 1000000000LL;
        struct timespec ts = {(time_t)(dt / 1000000000LL), (long)(dt % 1000000000LL)};
        pthread_mutex_unlock(&w->mu);
        int pr = ppoll(pfd, (nfds_t)np, &ts, NULL);
        pthread_mutex_lock(&w->mu);
        if (pr < 0 && errno != EINTR) {
            w->run_result = PF_ERR_IO;
            break;
        }
        if (pr <= 0)
            continue;
        now = now_rel(w);
        for (int i = 0; i < np; i++) {
            short re = pfd[i].revents;
            if (!re)
                continue;
            if (who[i] == -1) {
                char junk[16];
                while (read(w->stop_pipe[0], junk, sizeof junk) > 0) {
                }
                w->finished = 1;
                continue;
            }
            if (who[i] >= 2) { /* a listener: accept one peer */
                int s = who[i] - 2;
                wire_end *e = &w->end[s];
                int fd = accept4(e->listen_fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
                if (fd >= 0) {
                    int one = 1;
                    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
                    e->fd = fd;
                    e->open = 1;
                    e->opens++;
                    wlog(w, "side %c (%s): peer connected", 'A' + s, e->spec);
                    propagate_open(w, s, now);
                }
                continue;
            }
            int s = who[i];
            wire_end *e = &w->end[s];
            if (e->connecting) {
                int r = tcp_connect_finish(e, 0);
                if (r > 0) {
                    e->opens++;
                    wlog(w, "side %c (%s): connected", 'A' + s, e->spec);
                    propagate_open(w, s, now);
                } else if (r < 0) {
                    side_lost(w, s, now);
                }
                continue;
            }
            if (re & POLLOUT)
                e->want_out = 0;
            if (re & POLLIN)
                read_side(w, s, now);
            if (e->fd >= 0 && (re & (POLLHUP | POLLERR | POLLNVAL))) {
                if (e->kind == END_PTY) {
                    pty_check(w, s, now);
                } else if (!(re & POLLIN)) {
                    side_lost(w, s, now);
                }
            }
        }
    }
    int rc = w->run_result;
    pthread_mutex_unlock(&w->mu);
    return rc;
}

/* ---- lifecycle ------------------------------------------------------------------- */

int pf_wire_create(pf_wire **out, const pf_wire_config *cfg, pf_diag *diag)
{
    if (!out || !cfg)
        return PF_ERR_ARG;
    *out = NULL;
    if (!cfg->baud && !cfg->follow)
        return pf_diag_set(diag, PF_ERR_ARG, "line rate must be > 0");
    if (cfg->flip_rate < 0 || cfg->flip_rate > 1 || cfg->drop_rate < 0 || cfg->drop_rate > 1)
        return pf_diag_set(diag, PF_ERR_ARG, "fault rates are probabilities in [0, 1]");
    pf_wire *w = calloc(1, sizeof *w);
    if (!w)
        return pf_diag_set(diag, PF_ERR_NOMEM, "out of memory");
    w->cfg = *cfg;
    if (!w->cfg.baud)
        w->cfg.baud = 115200;
    if (!w->cfg.cut_dirs)
        w->cfg.cut_dirs = PF_WIRE_DIR_BOTH;
    pthread_mutex_init(&w->mu, NULL);
    w->stop_pipe[0] = w->stop_pipe[1] = -1;
    w->end[0].fd = w->end[1].fd = w->end[0].listen_fd = w->end[1].listen_fd = -1;
    uint32_t qb = cfg->queue_bytes;
    if (!qb) {
        qb = w->cfg.baud / pf_frame_bits(w->cfg.frame) / 4;
        if (qb < 4096)
            qb = 4096;
    }
    w->queue_bytes = qb;
    w->cut_done = cfg->cut_after == 0;
    w->closing_since = -1;
    w->t0_abs = mono_ns();
    int rc = parse_spec(&w->end[0], cfg->a, diag);
    if (rc == 0)
        rc = parse_spec(&w->end[1], cfg->b, diag);
    if (rc == 0 && w->end[0].path[0] && !strcmp(w->end[0].path, w->end[1].path))
        rc = pf_diag_set(diag, PF_ERR_ARG, "sides A and B are the same path %s", w->end[0].path);
    if (rc == 0 && pipe2(w->stop_pipe, O_NONBLOCK | O_CLOEXEC) != 0)
        rc = pf_diag_set(diag, PF_ERR_IO, "pipe: %s", strerror(errno));
    if (rc == 0)
        rc = end_open(w, &w->end[0], diag);
    if (rc == 0)
        rc = end_open(w, &w->end[1], diag);
    if (rc != 0) {
        pf_wire_destroy(w);
        return rc;
    }
    for (int i = 0; i < 2; i++) {
        wire_dir *d = &w->dir[i];
        d->src = i;
        d->dst = 1 - i;
        d->last_flush = -PF_WIRE_QUANTUM_NS;
        uint64_t base = cfg->seed * 0x100000001B3ull + (uint64_t)i * 0x1000;
        d->rng_flip = base ^ 0x1111111111111111ull;
        d->rng_drop = base ^ 0x2222222222222222ull;
        d->rng_burst = base ^ 0x3333333333333333ull;
        d->rng_data = base ^ 0x4444444444444444ull;
        d->next_flip_bit = geometric(&d->rng_flip, cfg->flip_rate);
        d->next_drop = geometric(&d->rng_drop, cfg->drop_rate);
        d->next_burst = cfg->burst_every ? geometric(&d->rng_burst, 1.0 / cfg->burst_every) : UINT64_MAX;
        d->st.first_in_s = d->st.last_out_s = -1;
    }
    w->end[0].next_check = w->end[1].next_check = 0;
    *out = w;
    return PF_OK;
}

void pf_wire_stop(pf_wire *w)
{
    if (w && w->stop_pipe[1] >= 0) {
        ssize_t r = write(w->stop_pipe[1], "x", 1);
        (void)r;
    }
}

static void *wire_thread(void *arg)
{
    pf_wire *w = arg;
    w->run_result = pf_wire_run(w);
    return NULL;
}

int pf_wire_start(pf_wire *w)
{
    if (!w || w->thread_started)
        return PF_ERR_ARG;
    /* the engine thread takes no signals: the process's handlers stay in control */
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    int rc = pthread_create(&w->thread, NULL, wire_thread, w);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (rc != 0)
        return PF_ERR_IO;
    w->thread_started = 1;
    return PF_OK;
}

int pf_wire_join(pf_wire *w)
{
    if (!w || !w->thread_started)
        return PF_ERR_ARG;
    pthread_join(w->thread, NULL);
    w->thread_started = 0;
    return w->run_result;
}

void pf_wire_get_stats(pf_wire *w, pf_wire_stats *st)
{
    memset(st, 0, sizeof *st);
    if (!w)
        return;
    pthread_mutex_lock(&w->mu);
    for (int i = 0; i < 2; i++) {
        st->dir[i] = w->dir[i].st;
        pf_wire_dir_stats *ds = &st->dir[i];
        double span = ds->last_out_s - ds->first_in_s;
        ds->achieved_Bps = (ds->bytes_out && span > 0) ? (double)ds->bytes_out / span : 0;
        st->opens[i] = w->end[i].opens;
        st->reopens[i] = w->end[i].reopens;
        st->open[i] = w->end[i].open;
        st->autobaud_locked[i] = w->end[i].ab_locked;
    }
    st->cut_done = w->cut_done;
    st->seconds = (double)now_rel(w) / 1e9;
    pthread_mutex_unlock(&w->mu);
}

const char *pf_wire_pty_name(const pf_wire *w, int side)
{
    if (!w || side < 0 || side > 1 || w->end[side].kind != END_PTY)
        return "";
    return w->end[side].pts;
}

void pf_wire_destroy(pf_wire *w)
{
    if (!w)
        return;
    if (w->thread_started) {
        pf_wire_stop(w);
        pf_wire_join(w);
    }
    for (int s = 0; s < 2; s++)
        end_close(&w->end[s]);
    for (int i = 0; i < 2; i++) {
        free(w->dir[i].q);
        free(w->dir[i].fr);
    }
    if (w->stop_pipe[0] >= 0)
        close(w->stop_pipe[0]);
    if (w->stop_pipe[1] >= 0)
        close(w->stop_pipe[1]);
    pthread_mutex_destroy(&w->mu);
    free(w);
}

/* ---- statistics output -------------------------------------------------------------- */

void pf_wire_stats_json(const pf_wire *w, const pf_wire_stats *st, FILE *f)
{
    const pf_wire_config *c = &w->cfg;
    fprintf(f, "{\n  \"a\": ");
    pf_json_string(f, w->end[0].spec);
    fprintf(f, ",\n  \"b\": ");
    pf_json_string(f, w->end[1].spec);
    if (c->follow)
        fprintf(f, ",\n  \"baud\": \"follow\"");
    else
        fprintf(f, ",\n  \"baud\": %u", c->baud);
    fprintf(f, ",\n  \"frame\": \"%s\",\n  \"bits_per_byte\": %u,\n  \"latency_us\": %u,\n  \"seed\": %llu",
            c->frame == PF_FRAME_8E1 ? "8E1" : "8N1", pf_frame_bits(c->frame), c->latency_us,
            (unsigned long long)c->seed);
    fprintf(f, ",\n  \"flip_rate\": %.9g,\n  \"drop_rate\": %.9g,\n  \"burst_every\": %u,\n  \"burst_len\": %u",
            c->flip_rate, c->drop_rate, c->burst_every, c->burst_len);
    fprintf(f, ",\n  \"cut_after\": %lld,\n  \"cut_done\": %s,\n  \"seconds\": %.6f", (long long)c->cut_after,
            st->cut_done ? "true" : "false", st->seconds);
    fprintf(f, ",\n  \"opens\": {\"a\": %u, \"b\": %u},\n  \"reopens\": {\"a\": %u, \"b\": %u}", st->opens[0],
            st->opens[1], st->reopens[0], st->reopens[1]);
    fprintf(f, ",\n  \"autobaud_locked\": {\"a\": %u, \"b\": %u}", st->autobaud_locked[0], st->autobaud_locked[1]);
    for (int i = 0; i < 2; i++) {
        const pf_wire_dir_stats *d = &st->dir[i];
        double line = d->last_baud ? (double)d->last_baud / pf_frame_bits(c->frame) : 0;
        fprintf(f,
                ",\n  \"%s\": {\"bytes_in\": %llu, \"bytes_out\": %llu, \"dropped\": %llu, \"flipped_bits\": %llu, "
                "\"garbled\": %llu, \"rate_mismatch\": %llu, \"framing_errors\": %llu, \"discarded_closed\": %llu, "
                "\"held_reopening\": %llu, \"cut\": %llu, \"idle_starts\": %llu, \"max_late_ms\": %.3f, \"stalls\": %llu, \"line_Bps\": %.3f, "
                "\"achieved_Bps\": %.3f}",
                i == 0 ? "a2b" : "b2a", (unsigned long long)d->bytes_in, (unsigned long long)d->bytes_out,
                (unsigned long long)d->dropped, (unsigned long long)d->flipped_bits, (unsigned long long)d->garbled,
                (unsigned long long)d->rate_mismatch, (unsigned long long)d->framing_errors,
                (unsigned long long)d->discarded_closed, (unsigned long long)d->held_reopening,
                (unsigned long long)d->cut, (unsigned long long)d->idle_starts, d->max_late_ms, (unsigned long long)d->stalls, line,
                d->achieved_Bps);
    }
    fprintf(f, "\n}\n");
}

void pf_wire_stats_text(const pf_wire *w, const pf_wire_stats *st, FILE *f)
{
    fprintf(f, "wire: %.3f s, opens A %u B %u, reopens A %u B %u%s\n", st->seconds, st->opens[0], st->opens[1],
            st->reopens[0], st->reopens[1], st->cut_done ? ", cable cut" : "");
    for (int i = 0; i < 2; i++) {
        const pf_wire_dir_stats *d = &st->dir[i];
        double line = d->last_baud ? (double)d->last_baud / pf_frame_bits(w->cfg.frame) : 0;
        fprintf(f,
                "  %s: in %llu, out %llu, dropped %llu, flipped bits %llu, garbled %llu, rate mismatch %llu "
                "(framing errors %llu), discarded (side closed) %llu, held while reopening %llu, cut %llu; %.1f B/s achieved, line %.1f B/s; "
                "%llu busy periods, worst delivery %.2f ms late\n",
                i == 0 ? "A->B" : "B->A", (unsigned long long)d->bytes_in, (unsigned long long)d->bytes_out,
                (unsigned long long)d->dropped, (unsigned long long)d->flipped_bits, (unsigned long long)d->garbled,
                (unsigned long long)d->rate_mismatch, (unsigned long long)d->framing_errors,
                (unsigned long long)d->discarded_closed, (unsigned long long)d->held_reopening,
                (unsigned long long)d->cut, d->achieved_Bps, line,
                (unsigned long long)d->idle_starts, d->max_late_ms);
    }
}
