/*
 * ota/ratelimit.h - a log line that can repeat without flooding the log: the first
 * occurrence is logged in full, further ones within the interval are only counted,
 * and one summary line ("... 532 more in the last 10 s") is due per interval while
 * they keep coming. Eight bytes of state, no clock of its own (the caller passes
 * now_ms, wraparound is fine). Portable core: no allocation.
 *
 *     static ota_ratelimit_t rl;
 *     if (ota_ratelimit_allow(&rl, now, 10000)) log("peer: handshake pool full");
 *     ...once per poll:
 *     uint32_t n = ota_ratelimit_due(&rl, now, 10000);
 *     if (n > 0) log("handshake pool full: %u more dropped in the last 10 s", n);
 */
#ifndef OTA_RATELIMIT_H
#define OTA_RATELIMIT_H

#include <stdbool.h>
#include <stdint.h>

typedef struct ota_ratelimit {
    uint32_t since_ms;   /* start of the current interval */
    uint32_t suppressed; /* occurrences counted but not logged in it; bit 31: armed */
} ota_ratelimit_t;

/** One occurrence at now_ms. \return true when it is to be logged in full (the first
 *  one after a quiet interval), false when it was only counted. */
bool ota_ratelimit_allow(ota_ratelimit_t *rl, uint32_t now_ms, uint32_t interval_ms);

/** Call regularly (every poll). \return how many occurrences were counted but not
 *  logged in the interval that just ended (log a summary then), or 0: nothing due. */
uint32_t ota_ratelimit_due(ota_ratelimit_t *rl, uint32_t now_ms, uint32_t interval_ms);

#endif /* OTA_RATELIMIT_H */
