/*
 * ota/native.h - the ESPHome native OTA protocol on the device (docs/protocol.md#native): a small pool of TCP sessions runs the handshake side by side; the
 * first to authenticate (or, with no password, to announce its size) takes the
 * update lock of the pipeline (ota/update.h) and streams the image into it.
 * Admission rules keep a flood of connections from locking the owner out; the
 * brute-force guard (ota/guard.h) delays password guessing.
 *
 * Tables used: TCP (accept, recv, send, close), crypto (hash, random; HMAC with a
 * salted verifier). Usually run through ota/server.h, which assembles the modules.
 */
#ifndef OTA_NATIVE_H
#define OTA_NATIVE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "ota/auth.h"
#include "ota/guard.h"
#include "ota/log.h"
#include "ota/opts.h"
#include "ota/port.h"
#include "ota/protocol.h"
#include "ota/update.h"

/** Settings of the native listener (the matching fields of ota_server_config_t). */
typedef struct ota_native_config {
    uint8_t version;      /**< protocol version announced: 1 or 2 */
    const char *verifier; /**< salted verifier text, or NULL */
    const char *password; /**< plain password for the legacy methods, or NULL */
    bool allow_sha256;
    bool allow_md5;
    bool compression; /**< accept gzip when the pipeline can inflate */
    uint32_t handshake_timeout_ms;
    uint32_t data_timeout_ms;
    uint32_t final_ack_timeout_ms;
#if OTA_CFG_ENABLE_PULL
    void (*on_pull_now)(void *arg); /**< the "pull now" command (ota/server.h) */
    void *on_pull_now_arg;
#endif
} ota_native_config_t;

/* Internal: the step a session is at, in wire order (docs/design.md). */
typedef enum ota_session_step {
    OTA_STEP_FREE = 0,
    OTA_STEP_MAGIC,
    OTA_STEP_FEATURES,
    OTA_STEP_AUTH_WAIT,
    OTA_STEP_AUTH_REPLY,
    OTA_STEP_UPDATE_TYPE,
    OTA_STEP_SIZE,
    OTA_STEP_PREPARE,
    OTA_STEP_MD5,
    OTA_STEP_DATA,
    OTA_STEP_FINISH,
    OTA_STEP_FINAL_ACK,
    OTA_STEP_CLOSING
} ota_session_step_t;

/** Longest handshake message a session buffers (SHA-256 cnonce + response). */
#define OTA_SESSION_RX_MAX (2 * OTA_SHA256_HEX_LEN)
/** Longest burst of handshake bytes a session queues for sending (feature reply +
 *  the longest challenge). */
#define OTA_SESSION_TX_MAX (2 + 1 + OTA_SHA256_HEX_LEN + 6)

/** One connection in the handshake pool. Treat as opaque. */
typedef struct ota_session {
    ota_conn_t conn;
    uint8_t step;          /* ota_session_step_t */
    uint8_t features;      /* client feature byte */
    uint8_t auth_method;   /* response code of the challenge sent, 0 if none */
    bool late_md5;         /* the MD5 follows the data (docs/protocol.md#native-late-md5) */
    bool close_after_send; /* close once tx is drained */
    int close_err;         /* why it closes (for the log), 0 if clean */
    uint32_t last_rx_ms;   /* time of the last byte received */
    uint32_t opened_ms;
    bool prompt;      /* got past magic + features within OTA_CFG_HANDSHAKE_PROMPT_MS */
    uint16_t rx_len;  /* bytes in rx */
    uint16_t rx_need; /* bytes the current step waits for */
    uint8_t tx_len, tx_off;
    uint8_t rx[OTA_SESSION_RX_MAX];
    uint8_t tx[OTA_SESSION_TX_MAX];
    /* challenge sent: hex for the legacy methods, raw bytes for the salted one */
    char nonce[OTA_SHA256_HEX_LEN];
    char peer[OTA_CFG_PEER_MAX];
} ota_session_t;

/** The native listener. Treat as opaque. */
typedef struct ota_native {
    const ota_tcp_port_t *tcp;
    const ota_crypto_port_t *crypto;
    ota_logger_t *log;
    ota_update_t *update;
    ota_guard_t *guard;
    ota_native_config_t cfg;
    ota_verifier_t verifier; /* parsed cfg.verifier, wiped by ota_native_free */
    bool has_verifier;
    bool reboot_due; /* the uploader is done with us: the firmware reboots */
    uint32_t now_ms;
    uint32_t accept_ms;    /* last time connections were taken from the listener */
    uint32_t size;         /* image size the lock holder announced */
    uint32_t acked;        /* v2: chunk acks counted * OTA_CHUNK_SIZE */
    uint32_t pending_acks; /* acks still to send */
    ota_session_t sessions[OTA_CFG_MAX_SESSIONS];
} ota_native_t;

/** Bind the listener to its tables and the shared pipeline, guard and logger
 *  (borrowed; log may be NULL). The configuration is copied, its strings borrowed.
 *  \return 0; OTA_ERR_INVALID_ARG for a missing table or function, a version other
 *  than 1 or 2, a password with no legacy method allowed (or legacy auth compiled
 *  out), or a verifier that does not parse (or no crypto->hmac_sha256). */
int ota_native_setup(ota_native_t *n, const ota_tcp_port_t *tcp, const ota_crypto_port_t *crypto,
                     ota_logger_t *log, ota_update_t *update, ota_guard_t *guard,
                     const ota_native_config_t *cfg);

/** Accept, advance every session, enforce timeouts; never blocks. */
void ota_native_poll(ota_native_t *n, uint32_t now_ms);

/** true while any session is open. */
bool ota_native_active(const ota_native_t *n);

/** true once an update completed and its uploader has let go (final ack, close or
 *  timeout): the firmware should reboot now. */
bool ota_native_reboot_due(const ota_native_t *n);

/** Close every session (aborting an update one holds) and wipe the secrets. Safe to
 *  call twice. */
void ota_native_free(ota_native_t *n);

#endif /* OTA_NATIVE_H */
