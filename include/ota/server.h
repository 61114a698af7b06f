/*
 * ota/server.h - the device side of the native OTA protocol: a non-blocking,
 * poll-driven server that accepts firmware over TCP and writes it to the inactive
 * slot through the port (ota/port.h).
 *
 * Lifecycle (the caller owns all memory; the core allocates nothing):
 *
 *     static ota_server_t ota;
 *     ota_server_config_t cfg;
 *     ota_server_config_default(&cfg);
 *     cfg.password = "...";                          // optional
 *     ota_server_init(&ota);
 *     if (ota_server_setup(&ota, &my_port, my_port_ctx, &cfg) != OTA_OK) ...;
 *     for (;;) { ota_server_poll(&ota, millis()); other_work(); }
 *     ota_server_free(&ota);
 *
 * The state machine of one session is drawn in docs/design.md.
 */
#ifndef OTA_SERVER_H
#define OTA_SERVER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "ota/auth.h"
#include "ota/errors.h"
#include "ota/opts.h"
#include "ota/port.h"
#include "ota/protocol.h"
#include "ota/ratelimit.h"

/** What the firmware is told about an update (e.g. to pause other work, or show
 *  progress). */
typedef enum ota_state {
    OTA_STATE_STARTED = 0,     /**< a peer took the update lock; slot prepared */
    OTA_STATE_IN_PROGRESS = 1, /**< bytes arrived (received/total are set) */
    OTA_STATE_COMPLETED = 2,   /**< image verified and activated; reboot follows */
    OTA_STATE_ERROR = 3        /**< the update failed (err is set); nothing changed */
} ota_state_t;

typedef void (*ota_state_cb_t)(void *arg, ota_state_t state, uint32_t received,
                               uint32_t total, int err);

/** Runtime settings; start from ota_server_config_default(). The strings are
 *  borrowed: they must outlive the server. */
typedef struct ota_server_config {
    /** Protocol version announced in the handshake: 2 (chunk acks, default) or 1. */
    uint8_t version;
    /** Salted verifier (the text `ota hash-password` prints), or NULL. The recommended
     *  way to set a password: the device keeps nothing that lets anyone authenticate,
     *  and the uploader checks the device knows it. Needs port->hmac_sha256. */
    const char *verifier;
    /** Plain password for the legacy challenge methods (SHA-256, MD5), or NULL / "".
     *  Only for uploaders that do not speak the salted method (stock ESPHome): it puts
     *  the password itself in the firmware. */
    const char *password;
    /** With a password: offer SHA-256 challenge auth (default true). */
    bool allow_sha256;
    /** With a password: offer MD5 challenge auth (default false: MD5 is weak; switch it
     *  on only for uploaders that know nothing else). */
    bool allow_md5;
    /** Brute-force back-off, per source address (the peer's IP, any port; both
     *  protocols share it): after auth_backoff_free failed authentications in a row
     *  from one address, each new attempt from that address waits
     *  auth_backoff_base_ms, doubling per further failure up to auth_backoff_max_ms,
     *  before it gets its challenge (at most one attempt per wait: parallel
     *  connections do not multiply it). A success from that address resets it; other
     *  addresses are never delayed by it. Defaults 3, 1000 ms, 30000 ms;
     *  auth_backoff_base_ms = 0 turns it off. The table holds OTA_CFG_AUTH_SOURCES
     *  addresses (the least recently used is forgotten first).
     *
     *  Guess rates with the defaults: one address gets 3 guesses at once, then 1 after
     *  1 s, 2 s, 4 s, 8 s, 16 s, then one per 30 s: about 2 per minute, 2900 per day.
     *  All addresses together (an attacker with many, e.g. an IPv6 prefix) get at most
     *  auth_guesses_per_min per clock minute of the node (a fixed window: 30 by
     *  default, 43200 per day), whatever the per-address state. */
    uint8_t auth_backoff_free;
    uint32_t auth_backoff_base_ms;
    uint32_t auth_backoff_max_ms;
    /** Global ceiling: challenges handed out (= password guesses, both protocols)
     *  per 60 s window, from all addresses together (default 30, 0 = no ceiling).
     *  When it is reached, a native session waits for the next window (it is not
     *  refused: the owner with the right password gets in when the window rolls);
     *  an ArduinoOTA invitation goes unanswered while the wait is short (espota resends
     *  it), else is answered "ERR: ... retry in N s". Answers already under way when
     *  the ceiling is reached still count: at most OTA_CFG_MAX_SESSIONS +
     *  OTA_CFG_ARDUINO_OFFERS guesses over it per window. */
    uint32_t auth_guesses_per_min;
    /** ArduinoOTA listener (PROTOCOL.md 2; needs port->udp_recv, udp_send, net_connect):
     *  off by default. arduino_auth is OTA_ARDUINO_AUTH_NONE, _MD5 or _SHA256 and
     *  arduino_hash the credential that variant stores: MD5hex(password) or
     *  SHA256hex(password) (lowercase hex), never the password. */
    bool arduino_enabled;
    uint8_t arduino_auth;
    const char *arduino_hash;
    /** Accept gzip uploads when the port can inflate (default true). */
    bool compression;
    /** Inactivity limits (default 20 s / 105 s, PROTOCOL.md "Timeouts"). */
    uint32_t handshake_timeout_ms;
    uint32_t data_timeout_ms;
    /** After UPDATE_END_OK, wait this long for the client's final ack before
     *  rebooting anyway (default 2000 ms). */
    uint32_t final_ack_timeout_ms;
    /** Optional progress callback and its argument. */
    ota_state_cb_t on_state;
    void *on_state_arg;
} ota_server_config_t;

/* Internal: the step a session is at (see docs/design.md). */
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

#define OTA_ARDUINO_AUTH_NONE 0
#define OTA_ARDUINO_AUTH_MD5 1
#define OTA_ARDUINO_AUTH_SHA256 2

/** The update lock's holder when the update came over ArduinoOTA. */
#define OTA_ARDUINO_HOLDER OTA_CFG_MAX_SESSIONS

/* Internal: an ArduinoOTA challenge sent to one address and not answered yet. */
typedef struct ota_arduino_offer {
    uint8_t cmd;
    uint16_t host_port;
    uint16_t udp_port;
    uint32_t size;
    uint32_t sent_ms;       /* 0 with ip[0] == '\0': free */
    char ip[OTA_CFG_ADDR_MAX];
    char nonce[65];
    uint8_t md5[OTA_MD5_LEN];
} ota_arduino_offer_t;

/* Internal: the ArduinoOTA listener: open challenges, one per address, and the one
 * exchange (key derivation, data) under way. Treat as opaque. */
typedef struct ota_arduino {
    ota_arduino_offer_t offers[OTA_CFG_ARDUINO_OFFERS];
    uint8_t state;          /* see arduino.c */
    uint8_t cmd;            /* 0 application image, 100 filesystem image */
    uint16_t host_port;     /* the uploader's TCP port */
    uint16_t udp_port;      /* where its invitation came from */
    uint32_t size;
    uint32_t state_ms;
    uint32_t iter;          /* PBKDF2 iterations done (SHA-256 variant) */
    ota_conn_t conn;
    uint8_t tx_len, tx_off;
    char ip[OTA_CFG_ADDR_MAX];
    char nonce[65];
    char cnonce[65];
    char response[65];
    char tx[24];
    uint8_t md5[OTA_MD5_LEN];
    uint8_t u[OTA_SHA256_LEN], t[OTA_SHA256_LEN];
} ota_arduino_t;

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
    bool close_after_send; /* close once tx is drained */
    int close_err;         /* why it closes (for the log), 0 if clean */
    uint32_t last_rx_ms;   /* time of the last byte received */
    uint32_t opened_ms;
    bool prompt;           /* got past magic + features within OTA_CFG_HANDSHAKE_PROMPT_MS */
    uint16_t rx_len;       /* bytes in rx */
    uint16_t rx_need;      /* bytes the current step waits for */
    uint8_t tx_len, tx_off;
    uint8_t rx[OTA_SESSION_RX_MAX];
    uint8_t tx[OTA_SESSION_TX_MAX];
    /* challenge sent: hex for the legacy methods, raw bytes for the salted one */
    char nonce[OTA_SHA256_HEX_LEN];
    char peer[OTA_CFG_PEER_MAX];
} ota_session_t;

/** The single update in progress (whoever holds the update lock). Treat as opaque. */
typedef struct ota_update {
    int session;          /* index in sessions[], -1 when nobody holds the lock */
    uint32_t size;        /* bytes announced on the wire */
    uint32_t received;    /* bytes received so far */
    uint32_t acked;       /* v2: chunk acks sent * 8192 */
    uint32_t pending_acks;/* acks still to send */
    uint32_t written;     /* bytes written to the slot (inflated when compressed) */
    uint32_t data_len;    /* bytes of data[] not yet written */
    uint32_t data_off;
    uint32_t reported;    /* received at the last progress callback */
    bool decided;         /* raw or gzip is known (first two bytes seen) */
    bool compressed;
    bool inflating;       /* inflate_begin was called */
    bool inflate_done;
    bool slot_open;       /* slot_begin succeeded */
    uint8_t md5[OTA_MD5_LEN];
    ota_hash_ctx_t md5_ctx;
    uint8_t data[OTA_CFG_DATA_BUF_SIZE];
#if OTA_CFG_ENABLE_COMPRESSION
    uint32_t out_len, out_off;
    uint8_t out[OTA_CFG_INFLATE_BUF_SIZE];
#endif
} ota_update_t;

/* Internal: brute-force state of one source address. Treat as opaque. */
typedef struct ota_auth_source {
    char addr[OTA_CFG_ADDR_MAX]; /* "" = free */
    uint8_t failures;            /* failed authentications in a row (saturates) */
    uint32_t used_ms;            /* last attempt (least recently used is reused) */
    uint32_t wait_start_ms;      /* the next attempt waits until wait_start + wait_ms */
    uint32_t wait_ms;
} ota_auth_source_t;

/* Internal: the kinds of repeated log line (server.c). */
enum { OTA_SRV_RL_DROP = 0, OTA_SRV_RL_BUSY, OTA_SRV_RL_HANDSHAKE, OTA_SRV_RL_CONNECT,
       OTA_SRV_RL_WAIT, OTA_SRV_RL_UDP, OTA_SRV_RL_COUNT };

typedef struct ota_server {
    const ota_port_t *port;
    void *user;
    ota_server_config_t cfg;
    ota_verifier_t verifier; /* parsed cfg.verifier, wiped by ota_server_free */
    bool has_verifier;
    ota_auth_source_t auth_sources[OTA_CFG_AUTH_SOURCES]; /* per-address back-off */
    uint32_t guess_window_ms; /* start of the current global ceiling window */
    uint32_t guesses;         /* challenges handed out in it */
    ota_ratelimit_t rl[OTA_SRV_RL_COUNT]; /* repeated log lines */
    uint32_t accept_ms;       /* last time connections were taken from the listener */
    uint32_t now_ms;
    bool activated;        /* a new image is active: refuse further updates */
    bool reboot_pending;   /* the updater is done with us: reboot */
    bool reboot_requested; /* port->reboot() was called */
    ota_session_t sessions[OTA_CFG_MAX_SESSIONS];
    ota_update_t update;
    ota_arduino_t arduino;
} ota_server_t;

/** Fill cfg with the defaults listed in ota_server_config_t. cfg must not be NULL. */
void ota_server_config_default(ota_server_config_t *cfg);

/** Zero the server; call once before setup. Never fails. */
void ota_server_init(ota_server_t *srv);

/** Bind the server to a port and a configuration (copied; its strings are
 *  borrowed; the verifier is parsed here). \return 0; OTA_ERR_INVALID_ARG for a NULL
 *  argument, a port missing a required function, a version other than 1 or 2, a
 *  password set with no legacy method allowed, or a verifier that does not parse (or
 *  with no port->hmac_sha256). */
int ota_server_setup(ota_server_t *srv, const ota_port_t *port, void *user,
                     const ota_server_config_t *cfg);

/** Do all the work that can be done now without waiting: accept connections,
 *  advance every session, move up to OTA_CFG_POLL_BUDGET firmware bytes, enforce
 *  timeouts. now_ms is any free-running millisecond clock (wraparound is fine).
 *  Never blocks. \return 0, or OTA_ERR_INVALID_ARG if the server is not set up. */
int ota_server_poll(ota_server_t *srv, uint32_t now_ms);

/** true while a peer holds the update lock. */
bool ota_server_update_in_progress(const ota_server_t *srv);

/** true while any connection is open or an ArduinoOTA exchange is under way: poll
 *  often then (the SHA-256 variant's key derivation runs a slice per poll). */
bool ota_server_active(const ota_server_t *srv);

/** Close every connection and abort an unfinished update. Safe on an initialised
 *  or already freed server; frees nothing it did not allocate (it allocates nothing). */
void ota_server_free(ota_server_t *srv);

#endif /* OTA_SERVER_H */
