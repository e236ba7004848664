/* ARM semihosting calls: r0 = operation, r1 = argument (a pointer to a block
 * of words for most), bkpt 0xAB traps to the debugger or QEMU, r0 = result. */
#include "semihost.h"

#include <string.h>

enum {
    SYS_OPEN = 0x01,
    SYS_CLOSE = 0x02,
    SYS_WRITE0 = 0x04,
    SYS_READ = 0x06,
    SYS_FLEN = 0x0C,
    SYS_ERRNO = 0x13,
    SYS_GET_CMDLINE = 0x15,
    SYS_EXIT_EXTENDED = 0x20,
    SYS_ELAPSED = 0x30,
    SYS_TICKFREQ = 0x31,
};
#define ADP_STOPPED_APPLICATION_EXIT 0x20026u

static int sh_call(uint32_t op, const void *arg)
{
    register uint32_t r0 __asm__("r0") = op;
    register const void *r1 __asm__("r1") = arg;
    __asm__ volatile("bkpt 0xAB" : "+r"(r0) : "r"(r1) : "memory");
    return (int)r0;
}

int pf_sh_open_read(const char *path)
{
    /* mode 1 = "rb" in the semihosting mode table */
    uint32_t args[3] = { (uint32_t)(uintptr_t)path, 1u, (uint32_t)strlen(path) };
    return sh_call(SYS_OPEN, args);
}

int pf_sh_read(int handle, void *buf, size_t n)
{
    uint32_t args[3] = { (uint32_t)handle, (uint32_t)(uintptr_t)buf, (uint32_t)n };
    int left = sh_call(SYS_READ, args); /* bytes NOT read */
    if (left < 0 || (size_t)left > n)
        return -1;
    return (int)(n - (size_t)left);
}

long pf_sh_flen(int handle)
{
    uint32_t args[1] = { (uint32_t)handle };
    return sh_call(SYS_FLEN, args);
}

int pf_sh_close(int handle)
{
    uint32_t args[1] = { (uint32_t)handle };
    return sh_call(SYS_CLOSE, args);
}

int pf_sh_errno(void)
{
    return sh_call(SYS_ERRNO, NULL);
}

void pf_sh_write0(const char *s)
{
    sh_call(SYS_WRITE0, s);
}

int pf_sh_cmdline(char *buf, size_t size)
{
    if (size < 2)
        return -1;
    uint32_t args[2] = { (uint32_t)(uintptr_t)buf, (uint32_t)(size - 1) };
    if (sh_call(SYS_GET_CMDLINE, args) != 0)
        return -1;
    size_t n = args[1] < size - 1 ? args[1] : size - 1;
    buf[n] = '\0';
    return (int)n;
}

uint32_t pf_sh_elapsed_ms(void)
{
    uint32_t ticks[2] = { 0, 0 }; /* 64-bit count, low word first */
    int freq = sh_call(SYS_TICKFREQ, NULL);
    if (freq <= 0 || sh_call(SYS_ELAPSED, ticks) != 0)
        return 0;
    uint64_t t = ((uint64_t)ticks[1] << 32) | ticks[0];
    return (uint32_t)(t / ((uint64_t)freq / 1000u ? (uint64_t)freq / 1000u : 1u));
}

void pf_sh_exit(int status)
{
    uint32_t args[2] = { ADP_STOPPED_APPLICATION_EXIT, (uint32_t)status };
    sh_call(SYS_EXIT_EXTENDED, args);
    for (;;) {
    }
}
