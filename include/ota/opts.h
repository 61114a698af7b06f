/*
 * ota/opts.h - compile-time options of the portable OTA core.
 *
 * Define OTA_CFG_USER_FILE (e.g. -DOTA_CFG_USER_FILE='"my_ota_opts.h"') to pull in
 * your own settings first; every option below is only defaulted when it is not
 * already defined. 0/1 switches are tested with #if so -Wundef catches typos.
 * Runtime settings (password, timeouts, protocol version) live in
 * ota_server_config_t; the options here size the memory the core reserves.
 */
#ifndef OTA_OPTS_H
#define OTA_OPTS_H

#ifdef OTA_CFG_USER_FILE
#include OTA_CFG_USER_FILE
#endif

/** Handshakes that may run side by side before one of them takes the update lock.
 *  Each costs one ota_session_t (about 300 bytes). */
#ifndef OTA_CFG_MAX_SESSIONS
#define OTA_CFG_MAX_SESSIONS 4
#endif

/** Receive buffer of the (single) update in progress: firmware bytes are read into
 *  it and written to the slot from it. Bigger is faster, 1 KiB works. */
#ifndef OTA_CFG_DATA_BUF_SIZE
#define OTA_CFG_DATA_BUF_SIZE 4096
#endif

/** Output buffer for gzip inflation (only with OTA_CFG_ENABLE_COMPRESSION). */
#ifndef OTA_CFG_INFLATE_BUF_SIZE
#define OTA_CFG_INFLATE_BUF_SIZE 4096
#endif

/** Bytes reserved for one hash context of the port (MD5 or SHA-256).
 *  The port checks its own context fits at setup. */
#ifndef OTA_CFG_HASH_CTX_SIZE
#define OTA_CFG_HASH_CTX_SIZE 256
#endif

/** Longest peer address string kept for log lines (an IPv6 address with port fits). */
#ifndef OTA_CFG_PEER_MAX
#define OTA_CFG_PEER_MAX 56
#endif

/** Longest formatted log line, including the terminating NUL. */
#ifndef OTA_CFG_LOG_LINE_MAX
#define OTA_CFG_LOG_LINE_MAX 160
#endif

/** Most bytes of firmware one ota_server_poll() call moves before returning, so a
 *  fast peer cannot starve the rest of the main loop. */
#ifndef OTA_CFG_POLL_BUDGET
#define OTA_CFG_POLL_BUDGET (64u * 1024u)
#endif

/** 1: accept gzip-compressed uploads when the port can inflate. */
#ifndef OTA_CFG_ENABLE_COMPRESSION
#define OTA_CFG_ENABLE_COMPRESSION 1
#endif

/** 1: compile the legacy challenge methods (need the plain password on the device). */
#ifndef OTA_CFG_ENABLE_LEGACY_AUTH
#define OTA_CFG_ENABLE_LEGACY_AUTH 1
#endif

/** 1: compile the ArduinoOTA front end (src/core/arduino.c, about 5 KB of code). */
#ifndef OTA_CFG_ENABLE_ARDUINO
#define OTA_CFG_ENABLE_ARDUINO 1
#endif

/** mDNS responder (ota/mdns.h, src/core/mdns.c, about 10 KB of code on ESP8266):
 *  0 compiles it out. Then buffers and limits: a received datagram longer than the
 *  receive buffer is cut (its questions, which come first, still count). */
#ifndef OTA_CFG_ENABLE_MDNS
#define OTA_CFG_ENABLE_MDNS 1
#endif
#ifndef OTA_CFG_MDNS_RX_SIZE
#define OTA_CFG_MDNS_RX_SIZE 1024
#endif
#ifndef OTA_CFG_MDNS_TX_SIZE
#define OTA_CFG_MDNS_TX_SIZE 768
#endif
#ifndef OTA_CFG_MDNS_MAX_SERVICES
#define OTA_CFG_MDNS_MAX_SERVICES 2
#endif
#ifndef OTA_CFG_MDNS_MAX_ADDRS
#define OTA_CFG_MDNS_MAX_ADDRS 4
#endif
/** Bytes of one service's TXT record data (all its "key=value" strings with their
 *  length bytes); the responder keeps it ready to send and to compare. */
#ifndef OTA_CFG_MDNS_TXT_SIZE
#define OTA_CFG_MDNS_TXT_SIZE 160
#endif

/** Default timeouts of the spec (PROTOCOL.md 1, "Timeouts"); runtime-configurable. */
#ifndef OTA_CFG_HANDSHAKE_TIMEOUT_MS
#define OTA_CFG_HANDSHAKE_TIMEOUT_MS 20000u
#endif
#ifndef OTA_CFG_DATA_TIMEOUT_MS
#define OTA_CFG_DATA_TIMEOUT_MS 105000u
#endif

/* ---- sanity checks: each names the option to fix ---- */
#if OTA_CFG_MAX_SESSIONS < 1 || OTA_CFG_MAX_SESSIONS > 32
#error "OTA_CFG_MAX_SESSIONS must be between 1 and 32"
#endif
#if OTA_CFG_DATA_BUF_SIZE < 256
#error "OTA_CFG_DATA_BUF_SIZE must be at least 256"
#endif
#if OTA_CFG_ENABLE_COMPRESSION && OTA_CFG_INFLATE_BUF_SIZE < 256
#error "OTA_CFG_INFLATE_BUF_SIZE must be at least 256 when OTA_CFG_ENABLE_COMPRESSION is 1"
#endif
#if OTA_CFG_HASH_CTX_SIZE < 64
#error "OTA_CFG_HASH_CTX_SIZE must be at least 64"
#endif
#if OTA_CFG_LOG_LINE_MAX < 48
#error "OTA_CFG_LOG_LINE_MAX must be at least 48"
#endif
#if OTA_CFG_MDNS_MAX_SERVICES < 1 || OTA_CFG_MDNS_MAX_SERVICES > 3
#error "OTA_CFG_MDNS_MAX_SERVICES must be 1 to 3"
#endif
#if OTA_CFG_MDNS_RX_SIZE < 512 || OTA_CFG_MDNS_TX_SIZE < 512 || OTA_CFG_MDNS_TX_SIZE > 9000
#error "OTA_CFG_MDNS_RX_SIZE and OTA_CFG_MDNS_TX_SIZE must be 512 to 9000"
#endif
#if OTA_CFG_MDNS_MAX_ADDRS < 1 || OTA_CFG_MDNS_MAX_ADDRS > 16
#error "OTA_CFG_MDNS_MAX_ADDRS must be 1 to 16"
#endif
#if OTA_CFG_MDNS_TXT_SIZE < 1 || OTA_CFG_MDNS_TXT_SIZE > 1024
#error "OTA_CFG_MDNS_TXT_SIZE must be 1 to 1024"
#endif
#if OTA_CFG_POLL_BUDGET < OTA_CFG_DATA_BUF_SIZE
#error "OTA_CFG_POLL_BUDGET must be at least OTA_CFG_DATA_BUF_SIZE"
#endif

#endif /* OTA_OPTS_H */
