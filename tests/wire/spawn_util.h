/* Child processes for the wire tests: spawn with output to a file, wait
 * with a deadline, and always kill what is left. */
#ifndef PF_TESTS_SPAWN_UTIL_H
#define PF_TESTS_SPAWN_UTIL_H

#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>

#include "wire_util.h"

extern char **environ;

/* Starts argv with stdin from /dev/null and stdout+stderr to out_path (or a
 * pipe whose read end goes to *pipe_rd when out_path is NULL). */
static inline pid_t sp_start(char *const argv[], const char *out_path, int *pipe_rd)
{
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
    int p[2] = {-1, -1};
    if (out_path) {
        posix_spawn_file_actions_addopen(&fa, 1, out_path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
        posix_spawn_file_actions_adddup2(&fa, 1, 2);
    } else {
        if (pipe2(p, O_CLOEXEC) != 0)
            return -1;
        posix_spawn_file_actions_adddup2(&fa, p[1], 2);
        posix_spawn_file_actions_addopen(&fa, 1, "/dev/null", O_WRONLY, 0);
    }
    pid_t pid = -1;
    if (posix_spawnp(&pid, argv[0], &fa, NULL, argv, environ) != 0)
        pid = -1;
    posix_spawn_file_actions_destroy(&fa);
    if (!out_path) {
        close(p[1]);
        if (pid < 0)
            close(p[0]);
        else
            *pipe_rd = p[0];
    }
    return pid;
}

/* Waits up to timeout_s; kills (SIGKILL) and reaps a child still running.
 * Returns the exit status, 128+signal, or -1 if it had to be killed. */
static inline int sp_wait(pid_t pid, double timeout_s)
{
    double deadline = tw_now() + timeout_s;
    int status = 0;
    for (;;) {
        pid_t r = waitpid(pid, &status, WNOHANG);
        if (r == pid)
            return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
        if (r < 0)
            return -1;
        if (tw_now() > deadline) {
            kill(pid, SIGKILL);
            waitpid(pid, &status, 0);
            return -1;
        }
        struct timespec ts = {0, 5000000};
        nanosleep(&ts, NULL);
    }
}

static inline int sp_running(pid_t pid)
{
    int status;
    return waitpid(pid, &status, WNOHANG) == 0;
}

/* The whole file as a NUL-terminated string (static buffer). */
static inline const char *sp_slurp(const char *path)
{
    static char buf[65536];
    buf[0] = '\0';
    FILE *f = fopen(path, "r");
    if (!f)
        return buf;
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    buf[n] = '\0';
    fclose(f);
    return buf;
}

#endif
