/* Many targets at once (issue 14): one `peerflash flash` with 8 --port
 * against 8 simulated STM32s, each behind its own `peerflash wire` at
 * 115200 baud 8E1 (real line time), versus the same command with one port.
 * Rows: the time of one, the time of eight (ratio to one: the goal is
 * <= 1.2x), and the CPU time per target (user + system of each target's
 * process, from the JSON). */
#include <fcntl.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "bench.h"

#define TARGETS 8

static int wait_path(const char *path, double timeout_s)
{
    double end = pf_bench_now_s() + timeout_s;
    while (pf_bench_now_s() < end) {
        if (access(path, F_OK) == 0)
            return 0;
        usleep(5000);
    }
    return -1;
}

/* Runs one flash command; its stdout (JSON) into out. Returns seconds, or NAN. */
static double run(char **argv, const char *out)
{
    double t0 = pf_bench_now_s();
    pid_t p = fork();
    if (p == 0) {
        int fd = open(out, O_WRONLY | O_CREAT | O_TRUNC, 0644);
        int devnull = open("/dev/null", O_WRONLY);
        if (fd >= 0)
            dup2(fd, 1);
        if (devnull >= 0)
            dup2(devnull, 2);
        execv(argv[0], argv);
        _exit(127);
    }
    int st = -1;
    while (pf_bench_now_s() - t0 < 300 && waitpid(p, &st, WNOHANG) != p)
        usleep(10000);
    if (pf_bench_now_s() - t0 >= 300) {
        pf_bench_stop(p);
        return NAN;
    }
    return WIFEXITED(st) && WEXITSTATUS(st) == 0 ? pf_bench_now_s() - t0 : NAN;
}

void pf_bench_many(pf_bench *b)
{
    char dir[] = "/tmp/pf-bench-many-XXXXXX";
    if (!mkdtemp(dir))
        return;
    char *cli = (char *)pf_bench_cli(b);
    size_t img_len = b->quick ? 8 * 1024 : 32 * 1024;
    char img[128], imgarg[160], out[128];
    snprintf(img, sizeof img, "%s/fw.bin", dir);
    snprintf(imgarg, sizeof imgarg, "%s@0x08000000", img);
    snprintf(out, sizeof out, "%s/out.json", dir);
    FILE *f = fopen(img, "wb");
    srand(14);
    for (size_t i = 0; f && i < img_len; i++)
        fputc(rand() & 0xFF, f);
    if (f)
        fclose(f);
    pid_t sims[TARGETS], wires[TARGETS];
    static char dev[TARGETS][128], host[TARGETS][128], flash[TARGETS][128];
    int ok = 1;
    for (int i = 0; i < TARGETS; i++) {
        snprintf(dev[i], sizeof dev[i], "%s/dev%d", dir, i);
        snprintf(host[i], sizeof host[i], "%s/host%d", dir, i);
        snprintf(flash[i], sizeof flash[i], "%s/flash%d.bin", dir, i);
        char *sim_argv[] = {cli, "sim", "stm32", "--port", dev[i], "--flash", flash[i], "--chip", "G07xxB",
                            "--program-us-per-256", "1000", "--erase-ms-per-page", "2", NULL};
        sims[i] = pf_bench_spawn(sim_argv, NULL);
        ok &= wait_path(dev[i], 10) == 0;
        char *wire_argv[] = {cli, "wire", "--a", host[i], "--b", dev[i], "--baud", "115200", "--frame", "8E1",
                             "--quiet", NULL};
        wires[i] = pf_bench_spawn(wire_argv, NULL);
        ok &= wait_path(host[i], 10) == 0;
    }
    char what[96];
    snprintf(what, sizeof what, "%zu KiB to 1 STM32 at 115200 8E1", img_len / 1024);
    double one = NAN, eight = NAN, cpu = NAN;
    if (ok) {
        char *one_argv[] = {cli, "flash", "--target", "stm32", "--baud", "115200", "--no-skip", "--json", "-q",
                            "--port", host[0], imgarg, NULL};
        one = run(one_argv, out);
        char *argv[8 + 2 * TARGETS + 4];
        int n = 0;
        char *fixed[] = {cli, "flash", "--target", "stm32", "--baud", "115200", "--no-skip", "--json", "-q"};
        for (size_t k = 0; k < sizeof fixed / sizeof fixed[0]; k++)
            argv[n++] = fixed[k];
        for (int i = 0; i < TARGETS; i++) {
            argv[n++] = "--port";
            argv[n++] = host[i];
        }
        argv[n++] = imgarg;
        argv[n] = NULL;
        eight = run(argv, out);
        /* mean of the targets' cpu_seconds */
        char text[16384] = "";
        FILE *j = fopen(out, "r");
        if (j) {
            size_t got = fread(text, 1, sizeof text - 1, j);
            text[got] = '\0';
            fclose(j);
        }
        double sum = 0;
        int count = 0;
        for (const char *p = strstr(text, "\"cpu_seconds\":"); p; p = strstr(p + 1, "\"cpu_seconds\":")) {
            sum += atof(p + 14);
            count++;
        }
        if (count == TARGETS)
            cpu = sum / count;
    }
    for (int i = 0; i < TARGETS; i++) {
        pf_bench_stop(wires[i]);
        pf_bench_stop(sims[i]);
    }
    pf_bench_row(b, "many", what, one, "s", NAN, "flash --no-skip, one --port; each target behind its own peerflash wire");
    char what8[96], note[200];
    snprintf(what8, sizeof what8, "%zu KiB to %d STM32s at once (--port x%d)", img_len / 1024, TARGETS, TARGETS);
    snprintf(note, sizeof note, "peer column = one target; goal <= 1.2x; %ld cores", sysconf(_SC_NPROCESSORS_ONLN));
    pf_bench_row(b, "many", what8, eight, "s", one, note);
    pf_bench_row(b, "many", "CPU time per target (user+sys of its process)", cpu, "s", NAN,
                 "wait4 rusage of each target's process, mean of 8; sims and wires not counted");
    char cmd[200];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    if (system(cmd) != 0) {
    }
}
