/* End to end through the command line and the link emulator:
 *   peerflash sim agent  <-pty->  peerflash wire (faults)  <-pty->  peerflash flash --target agent
 * - bit flips and drops from a seed: the flash completes and the new image runs;
 * - the link cut at about 50% of the image: the flash fails cleanly (link
 *   error), the next run resumes and sends only the rest;
 * - bursts of random bytes: the flash completes;
 * - delta (--delta-from) through bit flips; a patch for another base refused
 *   (exit 5) with the device untouched; a plain-body delta cut half way and
 *   resumed; then automatic delta from the image cache.
 * Skipped (exit 77) while `peerflash wire` is not built. Every child process
 * is killed at the end, also on failure. */
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "pf_test.h"

#ifndef PF_CLI
#error "PF_CLI (path of build/peerflash) must be defined"
#endif

static char dir[64];
static pid_t kids[8];
static int nkids;

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

static void kill_kid(pid_t pid)
{
    if (pid <= 0)
        return;
    kill(pid, SIGTERM);
    double end = now_s() + 3;
    while (now_s() < end) {
        if (waitpid(pid, NULL, WNOHANG) == pid)
            return;
        usleep(10000);
    }
    kill(pid, SIGKILL);
    waitpid(pid, NULL, 0);
}

static void kill_all(void)
{
    for (int i = 0; i < nkids; i++)
        kill_kid(kids[i]);
    nkids = 0;
}

static pid_t spawn(const char *out, char *const argv[])
{
    pid_t pid = fork();
    if (pid == 0) {
        int fd = open(out, O_WRONLY | O_CREAT | O_APPEND, 0644);
        if (fd >= 0) {
            dup2(fd, 1);
            dup2(fd, 2);
            close(fd);
        }
        execv(argv[0], argv);
        _exit(127);
    }
    if (pid > 0 && nkids < 8)
        kids[nkids++] = pid;
    return pid;
}

static void forget(pid_t pid)
{
    for (int i = 0; i < nkids; i++)
        if (kids[i] == pid)
            kids[i] = kids[--nkids];
}

/* Runs a command to completion (bounded); returns its exit status or -1. */
static int run(const char *out, char *const argv[], double timeout_s)
{
    pid_t pid = spawn(out, argv);
    double end = now_s() + timeout_s;
    int st;
    while (now_s() < end) {
        if (waitpid(pid, &st, WNOHANG) == pid) {
            forget(pid);
            return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
        }
        usleep(10000);
    }
    kill_kid(pid);
    forget(pid);
    return -1;
}

static int wait_path(const char *path, double timeout_s)
{
    double end = now_s() + timeout_s;
    while (now_s() < end) {
        if (access(path, F_OK) == 0)
            return 0;
        usleep(5000);
    }
    return -1;
}

static long count_in_file(const char *path, const char *needle, long *last_number_after)
{
    FILE *f = fopen(path, "r");
    if (!f)
        return 0;
    char line[512];
    long n = 0;
    while (fgets(line, sizeof line, f)) {
        char *p = strstr(line, needle);
        if (p) {
            n++;
            if (last_number_after)
                *last_number_after = atol(p + strlen(needle));
        }
    }
    fclose(f);
    return n;
}

static char P[16][256];
static const char *path(int i, const char *name)
{
    snprintf(P[i], sizeof P[i], "%s/%s", dir, name);
    return P[i];
}

static pid_t start_wire(const char *extra_name, const char *extra_value, const char *seed)
{
    char *argv[20];
    int n = 0;
    argv[n++] = PF_CLI;
    argv[n++] = "wire";
    argv[n++] = "--a";
    argv[n++] = (char *)path(0, "host");
    argv[n++] = "--b";
    argv[n++] = (char *)path(1, "dev");
    argv[n++] = "--baud";
    argv[n++] = "921600";
    argv[n++] = "--seed";
    argv[n++] = (char *)seed;
    if (extra_name) {
        argv[n++] = (char *)extra_name;
        argv[n++] = (char *)extra_value;
    }
    argv[n] = NULL;
    unlink(path(0, "host"));
    pid_t pid = spawn(path(2, "wire.log"), argv);
    if (wait_path(path(0, "host"), 5) < 0)
        return -1;
    return pid;
}

/* flash, with up to two extra options (NULL: none) */
static int flash_image_opts(const char *img, const char *json_out, const char *o1, const char *o2, const char *o3)
{
    char arg[300];
    snprintf(arg, sizeof arg, "%s@0", img);
    char *argv[16] = {PF_CLI, "flash", "--target", "agent", "--port", (char *)path(0, "host"), "--baud", "921600",
                      "--json", "-q"};
    int n = 10;
    if (o1)
        argv[n++] = (char *)o1;
    if (o2)
        argv[n++] = (char *)o2;
    if (o3)
        argv[n++] = (char *)o3;
    argv[n++] = arg;
    argv[n] = NULL;
    unlink(json_out);
    double t0 = now_s();
    int st = run(json_out, argv, 90);
    fprintf(stderr, "  flash %s: exit %d after %.1f s\n", strrchr(img, '/') + 1, st, now_s() - t0);
    return st;
}

static int flash_image(const char *img, const char *json_out) { return flash_image_opts(img, json_out, NULL, NULL, NULL); }

/* A new version of an image: its body with a few bytes changed, re-signed. */
static void derive_image(const char *from_bin, const char *bin, const char *img, const char *version, long at)
{
    FILE *in = fopen(from_bin, "rb"), *out = fopen(bin, "wb");
    int c;
    for (long i = 0; (c = fgetc(in)) != EOF; i++)
        fputc(i >= at && i < at + 24 ? (c ^ 0x5a) : c, out);
    fclose(in);
    fclose(out);
    char *argv[] = {PF_CLI, "sign", "--key", (char *)path(3, "key.pem"), "--version", (char *)version, (char *)bin,
                    (char *)img, NULL};
    run(path(4, "sign.log"), argv, 30);
}

static void make_image(const char *bin, const char *img, const char *version, long size, unsigned seed)
{
    FILE *f = fopen(bin, "wb");
    srand(seed);
    for (long i = 0; i < size; i++)
        fputc(rand() & 0xFF, f);
    fclose(f);
    char *argv[] = {PF_CLI, "sign", "--key", (char *)path(3, "key.pem"), "--version", (char *)version, (char *)bin,
                    (char *)img, NULL};
    run(path(4, "sign.log"), argv, 30);
}

int main(void)
{
    signal(SIGPIPE, SIG_IGN);
    atexit(kill_all);
    /* is the link emulator built? */
    snprintf(dir, sizeof dir, "/tmp/pf_agent_wire_XXXXXX");
    if (!mkdtemp(dir))
        return 1;
    char *help[] = {PF_CLI, "wire", "--help", NULL};
    if (run(path(5, "help.log"), help, 10) != 0) {
        printf("SKIP: `peerflash wire` is not built yet\n");
        unlink(path(5, "help.log"));
        rmdir(dir);
        return 77;
    }
    /* the CLI's image cache for automatic delta: in the test's directory */
    char cache[128];
    snprintf(cache, sizeof cache, "%s/image-cache", dir);
    setenv("PEERFLASH_CACHE_DIR", cache, 1);
    char *kg[] = {PF_CLI, "keygen", "-o", (char *)path(3, "key.pem"), NULL};
    if (run(path(4, "sign.log"), kg, 30) != 0)
        return 1;
    make_image(path(6, "a.bin"), path(7, "a.img"), "1.0.0", 40000, 1);
    make_image(path(8, "b.bin"), path(9, "b.img"), "2.0.0", 60000, 2);

    char *sim[] = {PF_CLI, "sim", "agent", "--port", (char *)path(1, "dev"), "--flash", (char *)path(10, "flash.bin"),
                   "--slot-kib", "64", "--key", (char *)path(3, "key.pem"), "--erase-ms", "0", "--prog-us-per-kib",
                   "0", "--log", (char *)path(11, "sim.log"), NULL};
    spawn(path(12, "sim.out"), sim);
    if (wait_path(path(1, "dev"), 5) < 0) {
        fprintf(stderr, "sim agent did not create its pty\n");
        return 1;
    }

    /* 1. noise: flips and drops from a seed */
    pid_t w = start_wire("--flip", "0.0001", "7");
    CHECK(w > 0);
    int st = flash_image(path(7, "a.img"), path(13, "flash1.json"));
    CHECK_EQ(st, 0);
    CHECK_EQ(count_in_file(path(13, "flash1.json"), "\"ok\":true", NULL), 1);
    kill_kid(w);
    forget(w);
    w = start_wire("--drop", "0.0001", "8");
    st = flash_image(path(9, "b.img"), path(13, "flash2.json"));
    CHECK_EQ(st, 0);
    kill_kid(w);
    forget(w);
    CHECK_EQ(count_in_file(path(11, "sim.log"), "image 2.0.0 on trial", NULL), 1);

    /* 2. the link cut half way, then a second run resumes */
    make_image(path(6, "c.bin"), path(7, "c.img"), "3.0.0", 60000, 3);
    w = start_wire("--cut-after", "30000", "9");
    st = flash_image(path(7, "c.img"), path(13, "flash3.json"));
    CHECK(st != 0); /* failed cleanly: a link error, not success */
    CHECK_EQ(count_in_file(path(13, "flash3.json"), "\"ok\":false", NULL), 1);
    kill_kid(w);
    forget(w);
    w = start_wire(NULL, NULL, "10");
    st = flash_image(path(7, "c.img"), path(13, "flash4.json"));
    CHECK_EQ(st, 0);
    kill_kid(w);
    forget(w);
    long resume = -1;
    CHECK(count_in_file(path(11, "sim.log"), "resume at ", &resume) >= 2);
    fprintf(stderr, "second run resumed at %ld of ~60000 bytes\n", resume);
    CHECK(resume >= 16384); /* at least the durable units before the cut */
    CHECK_EQ(count_in_file(path(11, "sim.log"), "image 3.0.0 on trial", NULL), 1);

    /* 3. bursts of garbage (on average every 20000 bytes, 16 random bytes) */
    make_image(path(6, "d.bin"), path(7, "d.img"), "4.0.0", 50000, 4);
    w = start_wire("--burst", "20000:16", "11");
    st = flash_image(path(7, "d.img"), path(13, "flash5.json"));
    CHECK_EQ(st, 0);
    kill_kid(w);
    forget(w);
    CHECK_EQ(count_in_file(path(11, "sim.log"), "image 4.0.0 on trial", NULL), 1);

    /* 4. delta: d runs; e is d with 24 bytes changed, sent as a patch
     * through bit flips */
    derive_image(path(6, "d.bin"), path(14, "e.bin"), path(15, "e.img"), "5.0.0", 20000);
    w = start_wire("--flip", "0.0001", "12");
    st = flash_image_opts(path(15, "e.img"), path(13, "flash6.json"), "--delta-from", path(7, "d.img"), NULL);
    CHECK_EQ(st, 0);
    kill_kid(w);
    forget(w);
    CHECK_EQ(count_in_file(path(11, "sim.log"), "(delta, deflate), resume at 0", NULL), 1);
    CHECK_EQ(count_in_file(path(11, "sim.log"), "image 5.0.0 on trial", NULL), 1);
    /* a patch against another base (c, not e): refused at BEGIN, exit 5,
     * the device keeps running e and nothing was received */
    derive_image(path(14, "e.bin"), path(6, "f.bin"), path(8, "f.img"), "6.0.0", 40000);
    w = start_wire(NULL, NULL, "13");
    st = flash_image_opts(path(8, "f.img"), path(13, "flash7.json"), "--delta-from", path(7, "c.img"), NULL);
    CHECK_EQ(st, 5);
    CHECK_EQ(count_in_file(path(13, "flash7.json"), "\"ok\":false", NULL), 1);
    CHECK(count_in_file(path(13, "flash7.json"), "patch base differs from the running image", NULL) >= 1);
    CHECK_EQ(count_in_file(path(11, "sim.log"), "BEGIN (delta) refused", NULL), 1);
    kill_kid(w);
    forget(w);
    /* the patch body sent plain (no deflate: ~50 KB of mostly zeros), the
     * link cut half way, resumed by the next run at an erase unit */
    w = start_wire("--cut-after", "30000", "14");
    st = flash_image_opts(path(8, "f.img"), path(13, "flash8.json"), "--delta-from", path(15, "e.img"),
                          "--no-compress");
    CHECK(st != 0);
    kill_kid(w);
    forget(w);
    w = start_wire(NULL, NULL, "15");
    st = flash_image_opts(path(8, "f.img"), path(13, "flash9.json"), "--delta-from", path(15, "e.img"),
                          "--no-compress");
    CHECK_EQ(st, 0);
    kill_kid(w);
    forget(w);
    resume = -1;
    CHECK_EQ(count_in_file(path(11, "sim.log"), "(delta), resume at ", &resume), 2);
    fprintf(stderr, "delta resumed at %ld of ~50000 bytes\n", resume);
    CHECK(resume >= 16384);
    CHECK_EQ(count_in_file(path(11, "sim.log"), "image 6.0.0 on trial", NULL), 1);
    /* automatic: f runs and is in the cache (every image flashed went
     * there), so g goes as a patch without being told */
    derive_image(path(6, "f.bin"), path(14, "g.bin"), path(15, "g.img"), "7.0.0", 100);
    w = start_wire(NULL, NULL, "16");
    st = flash_image(path(15, "g.img"), path(13, "flash10.json"));
    CHECK_EQ(st, 0);
    kill_kid(w);
    forget(w);
    CHECK_EQ(count_in_file(path(11, "sim.log"), "(delta, deflate), resume at 0", NULL), 2);
    CHECK_EQ(count_in_file(path(11, "sim.log"), "image 7.0.0 on trial", NULL), 1);

    kill_all();
    int failed = pf_test_failed;
    if (failed) {
        fprintf(stderr, "logs kept in %s\n", dir);
    } else {
        char cmd[128];
        snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
        if (system(cmd) != 0)
            fprintf(stderr, "could not remove %s\n", dir);
    }
    return pf_test_summary();
}
