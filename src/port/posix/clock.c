/*
 * clock.c - the monotonic millisecond clock of the POSIX port (clock.h).
 */
#include "clock.h"

#include <time.h>

uint32_t ota_posix_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint32_t)((uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u);
}
