/*
 * ota/guard.h - the brute-force guard every login path of the device shares (native
 * OTA and ArduinoOTA): a per-address back-off after failed authentications and a
 * global ceiling of guesses per minute, so that neither one address nor many can
 * try passwords quickly, while the owner on another address is never delayed by an
 * attacker's failures. The rates are described at ota_server_config_t.
 * No clock of its own: every call takes now_ms.
 */
#ifndef OTA_GUARD_H
#define OTA_GUARD_H

#include <stdbool.h>
#include <stdint.h>

#include "ota/log.h"
#include "ota/opts.h"

/* Brute-force state of one source address. Treat as opaque. */
typedef struct ota_auth_source {
    char addr[OTA_CFG_ADDR_MAX]; /* "" = free */
    uint8_t failures;            /* failed authentications in a row (saturates) */
    uint32_t used_ms;            /* last attempt (least recently used is reused) */
    uint32_t wait_start_ms;      /* the next attempt waits until wait_start + wait_ms */
    uint32_t wait_ms;
} ota_auth_source_t;

typedef struct ota_guard {
    ota_logger_t *log;
    uint8_t backoff_free;     /* failures in a row before the back-off starts */
    uint32_t backoff_base_ms; /* first wait (0: no back-off), doubling up to max */
    uint32_t backoff_max_ms;
    uint32_t guesses_per_min; /* global ceiling, 0: none */
    ota_auth_source_t sources[OTA_CFG_AUTH_SOURCES];
    uint32_t window_ms; /* start of the current ceiling window */
    uint32_t guesses;   /* guesses counted in it */
} ota_guard_t;

/** Reset the guard with its settings; log may be NULL. Never fails. */
void ota_guard_setup(ota_guard_t *g, ota_logger_t *log, uint8_t backoff_free,
                     uint32_t backoff_base_ms, uint32_t backoff_max_ms, uint32_t guesses_per_min);

/** The key of a peer ("ip:port", "[v6]:port" or a bare address) in the per-source
 *  tables: its address part, cut to OTA_CFG_ADDR_MAX - 1 characters. */
void ota_guard_addr_key(const char *peer, char key[OTA_CFG_ADDR_MAX]);

/** Milliseconds an authentication attempt from key must still wait: its own
 *  back-off, the global ceiling, or the longer of both (0: go ahead). */
uint32_t ota_guard_source_wait(const ota_guard_t *g, const char *key, uint32_t now_ms);
uint32_t ota_guard_global_wait(const ota_guard_t *g, uint32_t now_ms);
uint32_t ota_guard_wait(const ota_guard_t *g, const char *key, uint32_t now_ms);

/** A challenge goes to key: in back-off, this starts the wait of key's next attempt
 *  (one attempt per wait, however many connections it opens). */
void ota_guard_attempt(ota_guard_t *g, const char *key, uint32_t now_ms);

/** A failed authentication from peer (may start its back-off, which is logged).
 *  This and ota_guard_ok count one guess against the global ceiling. */
void ota_guard_failed(ota_guard_t *g, const char *peer, uint32_t now_ms);

/** A successful authentication from peer forgets its failures. */
void ota_guard_ok(ota_guard_t *g, const char *peer, uint32_t now_ms);

#endif /* OTA_GUARD_H */
