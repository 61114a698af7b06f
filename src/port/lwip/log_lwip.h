/*
 * log_lwip.h - the lwIP node's log: one line "[L][tag] text" to stdout, and the log
 * viewers of `ota logs` served over the port's tcp table (docs/protocol.md#logs: the
 * hello line, then every line; with a verifier, the salted exchange first).
 *
 * Smaller than the POSIX port's log server (src/port/posix/net.c): a fixed number of
 * viewers, a newcomer evicts the oldest when all are taken, a viewer whose send buffer
 * is full is dropped, a wrong password closes the connection. No per-address back-off
 * and no boot backlog (see docs/lwip-port.md).
 */
#ifndef OTA_PORT_LWIP_LOG_LWIP_H
#define OTA_PORT_LWIP_LOG_LWIP_H

#include <stdbool.h>
#include <stdint.h>

#include "ota/auth.h"
#include "ota/log_proto.h"
#include "ota/port.h"

#define OTA_LWIP_LOG_VIEWERS 3
#define OTA_LWIP_LOG_AUTH_MS 5000u

typedef struct ota_lwip_viewer {
    ota_conn_t conn;   /* -1: free */
    uint8_t state;     /* log_lwip.c: AUTH (challenged) or LIVE */
    uint32_t seq, since_ms;
    uint8_t nonce[OTA_SALTED_NONCE_LEN];
    char rx[160];      /* the answer line as it arrives */
    uint8_t rx_len;
} ota_lwip_viewer_t;

typedef struct ota_lwip_log {
    const ota_tcp_port_t *tcp;  /* the log port's listener; NULL: no viewers */
    const ota_crypto_port_t *crypto;
    ota_lwip_viewer_t viewers[OTA_LWIP_LOG_VIEWERS];
    uint32_t seq;
    char hello[OTA_LOG_HELLO_MAX + 1]; /* with its "\n" */
    bool auth;
    ota_verifier_t verifier;
    uint32_t dropped;          /* viewers dropped for not keeping up */
    ota_log_port_t port;       /* the core's log table: ctx = this */
} ota_lwip_log_t;

/** A log without viewers (lines go to stdout). */
void ota_lwip_log_init(ota_lwip_log_t *lg);
/** Serve viewers on the listener tcp. verifier NULL or "": no password.
 *  \return 0, OTA_ERR_INVALID_ARG (not a verifier). */
int ota_lwip_log_serve(ota_lwip_log_t *lg, const ota_tcp_port_t *tcp,
                       const ota_crypto_port_t *crypto, const char *hello, const char *verifier);
/** Accept viewers, run their auth, drop the late ones (main loop). */
void ota_lwip_log_poll(ota_lwip_log_t *lg, uint32_t now_ms);
/** Close every viewer. */
void ota_lwip_log_close(ota_lwip_log_t *lg);

void ota_lwip_logf(ota_lwip_log_t *lg, ota_log_level_t level, const char *tag, const char *fmt,
                   ...) __attribute__((format(printf, 4, 5)));

#endif /* OTA_PORT_LWIP_LOG_LWIP_H */
