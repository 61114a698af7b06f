/*
 * clock.h - the clock of the POSIX port (clock.c): a leaf, no state, no other
 * part of the port needed.
 */
#ifndef OTA_PORT_POSIX_CLOCK_H
#define OTA_PORT_POSIX_CLOCK_H

#include <stdint.h>

/** A monotonic millisecond clock for ota_server_poll() (CLOCK_MONOTONIC; wraps
 *  after 49.7 days, which the core's ota_elapsed_ms() arithmetic expects). */
uint32_t ota_posix_now_ms(void);

#endif /* OTA_PORT_POSIX_CLOCK_H */
