/*
 * ratelimit.c - rate-limited repetition of a log line (ota/ratelimit.h).
 */
#include "ota/ratelimit.h"

#include "ota/util.h"

#define ARMED 0x80000000u
#define COUNT 0x7FFFFFFFu

bool ota_ratelimit_allow(ota_ratelimit_t *rl, uint32_t now_ms, uint32_t interval_ms)
{
    if ((rl->suppressed & ARMED) == 0) { /* quiet so far: log it, start an interval */
        rl->suppressed = ARMED;
        rl->since_ms = now_ms;
        return true;
    }
    if ((rl->suppressed & COUNT) == 0 && ota_elapsed_ms(now_ms, rl->since_ms) >= interval_ms) {
        rl->since_ms = now_ms; /* the interval passed without a repeat */
        return true;
    }
    if ((rl->suppressed & COUNT) != COUNT)
        rl->suppressed++;
    return false;
}

uint32_t ota_ratelimit_due(ota_ratelimit_t *rl, uint32_t now_ms, uint32_t interval_ms)
{
    if ((rl->suppressed & ARMED) == 0 || ota_elapsed_ms(now_ms, rl->since_ms) < interval_ms)
        return 0;
    uint32_t n = rl->suppressed & COUNT;
    /* nothing counted: quiet again, the next occurrence is logged in full */
    rl->suppressed = n == 0 ? 0 : ARMED;
    rl->since_ms = now_ms;
    return n;
}
