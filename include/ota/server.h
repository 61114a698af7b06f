/*
 * ota/server.h - the OTA component a firmware runs: it assembles the modules of the
 * core (the update pipeline ota/update.h, the native protocol ota/native.h, the
 * optional ArduinoOTA listener ota/arduino.h, the brute-force guard ota/guard.h and
 * the logger ota/log.h) over the port's tables (ota/port.h). Non-blocking and
 * poll-driven; the caller owns all memory, the core allocates nothing:
 *
 *     static ota_server_t ota;
 *     ota_server_config_t cfg;
 *     ota_server_config_default(&cfg);
 *     cfg.verifier = "SCRAM-SHA-256$...";            // optional
 *     ota_server_ports_t ports = {.tcp = &tcp, .slot = &slot, .boot = &boot,
 *                                 .crypto = &crypto, .log = &log};
 *     ota_server_init(&ota);
 *     if (ota_server_setup(&ota, &ports, &cfg) != OTA_OK) ...;
 *     for (;;) { ota_server_poll(&ota, millis()); other_work(); }
 *     ota_server_free(&ota);
 *
 * The module graph and the state machine of one session are drawn in
 * docs/design.md.
 */
#ifndef OTA_SERVER_H
#define OTA_SERVER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "ota/arduino.h"
#include "ota/errors.h"
#include "ota/guard.h"
#include "ota/log.h"
#include "ota/native.h"
#include "ota/opts.h"
#include "ota/port.h"
#include "ota/update.h"

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
    /** ArduinoOTA listener (docs/protocol.md#arduino; needs the udp table and tcp->connect):
     *  off by default. arduino_auth is OTA_ARDUINO_AUTH_NONE, _MD5 or _SHA256 and
     *  arduino_hash the credential that variant stores: MD5hex(password) or
     *  SHA256hex(password) (lowercase hex), never the password. */
    bool arduino_enabled;
    uint8_t arduino_auth;
    const char *arduino_hash;
    /** Accept gzip uploads when the port can inflate (default true). */
    bool compression;
    /** Inactivity limits (default 20 s / 105 s, docs/protocol.md#native-timeouts). */
    uint32_t handshake_timeout_ms;
    uint32_t data_timeout_ms;
    /** After UPDATE_END_OK, wait this long for the client's final ack before
     *  rebooting anyway (default 2000 ms). */
    uint32_t final_ack_timeout_ms;
    /** Optional progress callback and its argument. */
    ota_state_cb_t on_state;
    void *on_state_arg;
#if OTA_CFG_ENABLE_SIGNED
    /** Signed images (docs/protocol.md#signed-images): with 1 to 3 trusted keys (key
     *  digests as eFuses hold them, or full keys; borrowed), a firmware image over any
     *  transport is activated only when a signature block by one of them verifies;
     *  otherwise the update fails (native: ERROR_SIGNATURE_INVALID) and the running
     *  image and boot state stay as they are. 0 keys: unsigned images are taken. */
    const ota_sig_trusted_t *trusted_keys;
    size_t n_trusted_keys;
#endif
#if OTA_CFG_ENABLE_PULL
    /** A node that pulls its updates (ota/pull.h): an authenticated peer asked for a
     *  check now (update type OTA_UPDATE_TYPE_PULL_NOW, docs/protocol.md#native-pull-now);
     *  typically ota_pull_check_now(). NULL: the request is refused as an unsupported
     *  update type (0x8E). */
    void (*on_pull_now)(void *arg);
    void *on_pull_now_arg;
#endif
} ota_server_config_t;

/** The port's tables the server uses (borrowed: they must outlive it). */
typedef struct ota_server_ports {
    const ota_tcp_port_t *tcp;         /**< required (connect only for ArduinoOTA) */
    const ota_store_port_t *slot;      /**< required: the inactive firmware slot */
    const ota_boot_port_t *boot;       /**< required: reboot (load/store not used here) */
    const ota_crypto_port_t *crypto;   /**< required: hashes, random; HMAC for a verifier */
    const ota_log_port_t *log;         /**< optional: no logging */
    const ota_inflate_port_t *inflate; /**< optional: no gzip uploads */
    const ota_udp_port_t *udp;         /**< optional: needed for ArduinoOTA */
    const ota_store_port_t *data;      /**< optional: ArduinoOTA filesystem images */
} ota_server_ports_t;

typedef struct ota_server {
    ota_server_ports_t ports;
    bool set_up;
    bool arduino_on;
    bool reboot_requested; /* ports.boot->reboot() was called */
    ota_logger_t log;
    ota_guard_t guard;
    ota_update_t update;
    ota_native_t native;
#if OTA_CFG_ENABLE_ARDUINO
    ota_arduino_t arduino;
#endif
} ota_server_t;

/** Fill cfg with the defaults listed in ota_server_config_t. cfg must not be NULL. */
void ota_server_config_default(ota_server_config_t *cfg);

/** Zero the server; call once before setup. Never fails. */
void ota_server_init(ota_server_t *srv);

/** Bind the server to the port's tables and a configuration (copied; its strings
 *  are borrowed; the verifier is parsed here). \return 0; OTA_ERR_INVALID_ARG for a
 *  NULL argument, a missing required table or function, a version other than 1 or
 *  2, a password set with no legacy method allowed, a verifier that does not parse
 *  (or no crypto->hmac_sha256), or ArduinoOTA asked for without its tables;
 *  OTA_ERR_BUSY on a server that is set up (free it first: nothing of it is touched). */
int ota_server_setup(ota_server_t *srv, const ota_server_ports_t *ports,
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
