/* Many targets at once: one child process per port, all started together
 * after the images were read and parsed once (the children inherit them).
 * A process per target keeps one target's failure, hang or crash from
 * touching the others, and gives each its own CPU time (wait4).
 *
 * Output: the children's stderr lines are shown prefixed with their port
 * (plain lines), or as one line per target redrawn in place on a terminal;
 * then a summary table on stderr; with --json one object on stdout with an
 * entry per target (holding the child's own JSON object). The exit status is
 * the worst (highest) of the targets'. */
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cli.h"
#include "peerflash/pf_posix.h"

typedef struct child {
    const char *port;
    pid_t pid;
    int out_fd, err_fd;     /* the child's stdout (JSON) and stderr (progress, messages) */
    char line[256];         /* stderr line being assembled */
    size_t line_len;
    char last[256];         /* the last complete stderr line */
    char *json;             /* everything the child wrote on stdout */
    size_t json_len, json_cap;
    int status;             /* exit status, or 1 for a crash */
    double seconds, cpu;
} child;

static void drop_fd(int *fd)
{
    if (*fd >= 0)
        close(*fd);
    *fd = -1;
}

static void append_json(child *c, const char *data, size_t n)
{
    if (c->json_len + n + 1 > c->json_cap) {
        size_t cap = c->json_cap ? c->json_cap * 2 : 1024;
        while (cap < c->json_len + n + 1)
            cap *= 2;
        char *nb = realloc(c->json, cap);
        if (!nb)
            return;
        c->json = nb;
        c->json_cap = cap;
    }
    memcpy(c->json + c->json_len, data, n);
    c->json_len += n;
    c->json[c->json_len] = '\0';
}

static void redraw(child *cs, int n, int width, int first)
{
    if (!first)
        fprintf(stderr, "\033[%dA", n);
    for (int i = 0; i < n; i++)
        fprintf(stderr, "\r\033[K%-*s %.100s\n", width, cs[i].port, cs[i].last);
    fflush(stderr);
}

/* A complete stderr line from child i: shown prefixed (plain) or kept for the redraw. */
static void on_line(child *c, int tty, int quiet, int width)
{
    c->line[c->line_len] = '\0';
    /* a terminal's progress bar redraws with \r: keep what follows the last one */
    const char *text = strrchr(c->line, '\r') ? strrchr(c->line, '\r') + 1 : c->line;
    if (*text)
        snprintf(c->last, sizeof c->last, "%s", text);
    if (!tty && !quiet && *text)
        fprintf(stderr, "%-*s %s\n", width, c->port, text);
    c->line_len = 0;
}

static void on_stderr(child *c, const char *data, size_t n, int tty, int quiet, int width)
{
    for (size_t i = 0; i < n; i++) {
        if (data[i] == '\n') {
            on_line(c, tty, quiet, width);
        } else if (c->line_len < sizeof c->line - 1) {
            c->line[c->line_len++] = data[i];
        }
    }
}

int pf_cli_run_many(const char *const *ports, int n, const char *cmd, int json, int quiet,
                    int (*run)(void *user, const char *port), void *user)
{
    child *cs = calloc((size_t)n, sizeof *cs);
    struct pollfd *pfd = calloc((size_t)n * 2, sizeof *pfd);
    if (!cs || !pfd) {
        free(cs);
        free(pfd);
        pf_cli_error("out of memory");
        return PF_EXIT_FAIL;
    }
    int tty = isatty(STDERR_FILENO) && !quiet;
    int width = 4;
    for (int i = 0; i < n; i++)
        if ((int)strlen(ports[i]) > width)
            width = (int)strlen(ports[i]);
    uint64_t t0 = pf_posix_now_us();
    fflush(NULL); /* nothing buffered may be written twice by the children */
    for (int i = 0; i < n; i++) {
        child *c = &cs[i];
        c->port = ports[i];
        c->out_fd = c->err_fd = -1;
        snprintf(c->last, sizeof c->last, "starting");
        int po[2], pe[2];
        if (pipe(po) != 0 || pipe(pe) != 0) {
            snprintf(c->last, sizeof c->last, "cannot make a pipe: %s", strerror(errno));
            c->status = PF_EXIT_FAIL;
            c->pid = -1;
            continue;
        }
        c->pid = fork();
        if (c->pid == 0) {
            close(po[0]);
            close(pe[0]);
            dup2(po[1], STDOUT_FILENO);
            dup2(pe[1], STDERR_FILENO);
            close(po[1]);
            close(pe[1]);
            for (int k = 0; k < i; k++) { /* the other children's pipes are not ours */
                drop_fd(&cs[k].out_fd);
                drop_fd(&cs[k].err_fd);
            }
            int status = run(user, ports[i]);
            fflush(NULL);
            _exit(status);
        }
        close(po[1]);
        close(pe[1]);
        if (c->pid < 0) {
            close(po[0]);
            close(pe[0]);
            snprintf(c->last, sizeof c->last, "cannot start a process: %s", strerror(errno));
            c->status = PF_EXIT_FAIL;
            continue;
        }
        c->out_fd = po[0];
        c->err_fd = pe[0];
    }
    if (tty)
        redraw(cs, n, width, 1);
    uint64_t last_draw = 0;
    for (;;) {
        int np = 0;
        for (int i = 0; i < n; i++) {
            if (cs[i].out_fd >= 0)
                pfd[np++] = (struct pollfd){cs[i].out_fd, POLLIN, 0};
            if (cs[i].err_fd >= 0)
                pfd[np++] = (struct pollfd){cs[i].err_fd, POLLIN, 0};
        }
        if (np == 0)
            break;
        int pr = poll(pfd, (nfds_t)np, 100);
        if (pr < 0 && errno != EINTR)
            break;
        for (int k = 0; k < np && pr > 0; k++) {
            if (!pfd[k].revents)
                continue;
            for (int i = 0; i < n; i++) {
                child *c = &cs[i];
                int is_out = pfd[k].fd == c->out_fd, is_err = pfd[k].fd == c->err_fd;
                if (!is_out && !is_err)
                    continue;
                char buf[4096];
                ssize_t r = read(pfd[k].fd, buf, sizeof buf);
                if (r <= 0 && !(r < 0 && errno == EINTR)) {
                    if (is_err && c->line_len)
                        on_line(c, tty, quiet, width);
                    drop_fd(is_out ? &c->out_fd : &c->err_fd);
                    if (c->out_fd < 0 && c->err_fd < 0) {
                        int st = 0;
                        struct rusage ru;
                        memset(&ru, 0, sizeof ru);
                        if (wait4(c->pid, &st, 0, &ru) == c->pid) {
                            c->status = WIFEXITED(st) ? WEXITSTATUS(st) : PF_EXIT_FAIL;
                            if (WIFSIGNALED(st))
                                snprintf(c->last, sizeof c->last, "killed by signal %d", WTERMSIG(st));
                        }
                        c->seconds = (double)(pf_posix_now_us() - t0) / 1e6;
                        c->cpu = (double)ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6 + (double)ru.ru_stime.tv_sec +
                                 ru.ru_stime.tv_usec / 1e6;
                    }
                } else if (r > 0) {
                    if (is_out)
                        append_json(c, buf, (size_t)r);
                    else
                        on_stderr(c, buf, (size_t)r, tty, quiet, width);
                }
                break;
            }
        }
        uint64_t now = pf_posix_now_us();
        if (tty && now - last_draw > 100000) {
            redraw(cs, n, width, 0);
            last_draw = now;
        }
    }
    if (tty)
        redraw(cs, n, width, 0);
    int worst = PF_EXIT_OK, failed = 0;
    for (int i = 0; i < n; i++) {
        if (cs[i].status > worst)
            worst = cs[i].status;
        failed += cs[i].status != 0;
    }
    double total = (double)(pf_posix_now_us() - t0) / 1e6;
    if (!quiet) {
        fprintf(stderr, "\n%-*s  %-6s %4s %8s %8s  %s\n", width, "port", "result", "exit", "seconds", "cpu s", "last message");
        for (int i = 0; i < n; i++)
            fprintf(stderr, "%-*s  %-6s %4d %8.2f %8.2f  %.80s\n", width, cs[i].port, cs[i].status ? "FAILED" : "ok",
                    cs[i].status, cs[i].seconds, cs[i].cpu, cs[i].last);
        fprintf(stderr, "%d of %d targets ok in %.2f s\n", n - failed, n, total);
    }
    if (json) {
        printf("{\"command\":");
        pf_json_string(stdout, cmd);
        printf(",\"ok\":%s,\"exit_code\":%d,\"seconds\":%.3f,\"targets\":[", failed ? "false" : "true", worst, total);
        for (int i = 0; i < n; i++) {
            const child *c = &cs[i];
            printf("%s{\"port\":", i ? "," : "");
            pf_json_string(stdout, c->port);
            printf(",\"exit_code\":%d,\"seconds\":%.3f,\"cpu_seconds\":%.3f,\"result\":", c->status, c->seconds, c->cpu);
            /* the child's own object: one line starting with '{' */
            size_t len = c->json_len;
            while (len && (c->json[len - 1] == '\n' || c->json[len - 1] == ' '))
                len--;
            if (len && c->json[0] == '{' && c->json[len - 1] == '}')
                fwrite(c->json, 1, len, stdout);
            else
                printf("null");
            printf("}");
        }
        printf("]}\n");
    }
    for (int i = 0; i < n; i++)
        free(cs[i].json);
    free(cs);
    free(pfd);
    return worst;
}
