/* The link emulator's engine (see wire.h for the model): one thread, one
 * poll loop. Per direction: bytes read from the sending side are given
 * faults (wire_faults.c), a place on the line and a due time (wire_uart.c);
 * due bytes are written to the receiving side in batches (at most every
 * PF_WIRE_QUANTUM_NS, so bytes are never early and at most that much late).
 * Each direction keeps its statistics as it goes. */
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "wire_internal.h"

/* ---- reading and delivering --------------------------------------------------- */

void wire_read_side(pf_wire *w, int side, int64_t now)
{
    wire_end *e = &w->end[side];
    wire_dir *d = &w->dir[side]; /* side A sends A2B = dir 0 */
    uint8_t buf[4096];
    unsigned mask = side == PF_WIRE_A ? PF_WIRE_DIR_A2B : PF_WIRE_DIR_B2A;
    for (;;) {
        if (e->fd < 0 || e->connecting)
            return;
        size_t room = wire_line_room(w, d, now);
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
            if (e->ep.kind == PF_ENDPOINT_PTY) {
                /* EIO: nobody holds the slave (checked by the caller's state logic) */
                e->next_check = now;
                return;
            }
            wire_end_lost(w, side, now);
            return;
        }
        if (e->ep.kind == PF_ENDPOINT_PTY && !e->open)
            wire_end_opened(w, side, now); /* data from the slave: someone has it open */
        /* Rates (wire.h): a side without termios (0: TCP, rfc2217) takes
         * the other side's rate in follow mode and the line's in fixed mode. */
        wire_end *o = &w->end[1 - side];
        uint32_t ts = wire_end_rate(e), rs = wire_end_rate(o), tx, mid, rx;
        if (w->cfg.follow) {
            tx = ts ? ts : (rs ? rs : w->cfg.baud);
            if ((w->cfg.autobaud & (1u << (1 - side))) && !o->ab_locked && o->fd >= 0 && o->open)
                rs = wire_end_autobaud_lock(w, 1 - side, tx);
            rx = rs ? rs : tx;
            mid = rx; /* the receiving side samples the sender directly */
        } else {
            mid = w->cfg.baud; /* the line's own UARTs */
            tx = ts ? ts : mid;
            rx = rs ? rs : mid;
        }
        if (d->st.first_in_s < 0)
            d->st.first_in_s = (double)now / 1e9;
        for (ssize_t i = 0; i < r; i++) {
            d->st.bytes_in++;
            if (wire_cut_count(w, d, mask))
                continue;
            int dropped;
            uint8_t b = wire_faults_apply(&d->faults, &w->cfg, &d->st, buf[i], &dropped);
            wire_line_put(w, d, b, dropped, t_avail, tx, mid, rx);
        }
    }
}

/* Writes the bytes that are due; returns the next due time. */
static int64_t deliver(pf_wire *w, int di, int64_t now)
{
    wire_dir *d = &w->dir[di];
    wire_end *e = &w->end[d->dst];
    int64_t wake = NEVER;
    if (wire_uart_busy(d))
        wake = wire_uart_process(w, d, now);
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
    if (e->ep.kind == PF_ENDPOINT_PATH && e->fd < 0 && e->reopen_at != NEVER) {
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
    if (!wire_end_ready(w, d->dst, now)) {
        d->st.discarded_closed += cnt;
        done = cnt;
    } else {
        ssize_t r = e->ep.kind == PF_ENDPOINT_PTY || e->ep.kind == PF_ENDPOINT_PATH ? write(e->fd, buf, cnt)
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
            wire_end_lost(w, d->dst, now);
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

static int all_delivered(pf_wire *w)
{
    for (int i = 0; i < 2; i++) {
        wire_dir *d = &w->dir[i];
        if (!(w->cfg.cut_dirs & (1u << i)))
            continue;
        if (d->n || wire_uart_busy(d))
            return 0;
    }
    return 1;
}

int pf_wire_run(pf_wire *w, volatile sig_atomic_t *stop)
{
    if (!w)
        return PF_ERR_ARG;
    int64_t end_at = w->cfg.duration_ms ? pf_wire_now(w) + (int64_t)w->cfg.duration_ms * 1000000LL : NEVER;
    pthread_mutex_lock(&w->mu);
    while (!w->finished && !(stop && *stop)) {
        int64_t now = pf_wire_now(w);
        if (now >= end_at)
            break;
        wire_ends_service(w, now);
        int64_t wake = end_at;
        for (int di = 0; di < 2; di++) {
            int64_t t = deliver(w, di, now);
            if (t < wake)
                wake = t;
        }
        if (w->cut_done && w->cfg.cut_mode == PF_WIRE_CUT_CLOSE) {
            for (int di = 0; di < 2; di++)
                if (wire_uart_busy(&w->dir[di]) && (w->cfg.cut_dirs & (1u << di)))
                    wire_uart_flush(w, &w->dir[di], now);
            /* Closing a pty master throws away what its program has not read
             * yet: let the programs read the bytes that passed before the cut. */
            if (all_delivered(w) && w->closing_since < 0)
                w->closing_since = now;
            int64_t lingered = w->closing_since >= 0 ? now - w->closing_since : -1;
            if (lingered > PF_WIRE_LINGER_MAX_NS || (lingered >= PF_WIRE_LINGER_MIN_NS && !wire_ends_unread_input(w))) {
                pf_wire_log(w, "cable cut: closing both sides");
                for (int s = 0; s < 2; s++)
                    wire_end_close(&w->end[s]);
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
            if (e->ep.kind == PF_ENDPOINT_PTY && !e->open) {
                if (e->next_check < wake)
                    wake = e->next_check;
                continue;
            }
            if (e->ep.kind == PF_ENDPOINT_PATH && e->fd < 0) {
                int64_t t = e->reopen_at != NEVER ? e->reopen_at : e->next_check;
                if (t < wake)
                    wake = t;
                continue;
            }
            if ((e->ep.kind == PF_ENDPOINT_TCP || e->ep.kind == PF_ENDPOINT_LISTEN || e->ep.kind == PF_ENDPOINT_RFC2217) && e->fd < 0) {
                if (e->ep.kind == PF_ENDPOINT_LISTEN) {
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
                if (wire_line_room(w, d, now))
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
        int64_t dt_max = stop ? 50000000LL : 1000000000LL; /* a flag is looked at every 50 ms */
        if (dt > dt_max)
            dt = dt_max;
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
        now = pf_wire_now(w);
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
                wire_end_accept(w, who[i] - 2, now);
                continue;
            }
            int s = who[i];
            wire_end *e = &w->end[s];
            if (e->connecting) {
                wire_end_connected(w, s, now);
                continue;
            }
            if (re & POLLOUT)
                e->want_out = 0;
            if (re & POLLIN)
                wire_read_side(w, s, now);
            if (e->fd >= 0 && (re & (POLLHUP | POLLERR | POLLNVAL))) {
                if (e->ep.kind == PF_ENDPOINT_PTY) {
                    wire_end_pty_check(w, s, now);
                } else if (!(re & POLLIN)) {
                    wire_end_lost(w, s, now);
                }
            }
        }
    }
    int rc = w->run_result;
    pthread_mutex_unlock(&w->mu);
    return rc;
}
