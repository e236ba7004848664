/* Real-time clock for the POSIX port (CLOCK_MONOTONIC). */
#include <time.h>

#include "peerflash/pf_posix.h"

uint64_t pf_posix_now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

uint32_t pf_posix_now_ms(void)
{
    return (uint32_t)(pf_posix_now_us() / 1000u);
}

void pf_posix_sleep_ms(uint32_t ms)
{
    struct timespec ts = {(time_t)(ms / 1000u), (long)(ms % 1000u) * 1000000L};
    while (nanosleep(&ts, &ts) != 0) {
    }
}
