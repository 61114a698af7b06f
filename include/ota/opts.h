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

/** One source address (the peer's IP, whatever its port) may hold at most this many
 *  of the handshake sessions: a newcomer from a source at its limit replaces that
 *  source's own least useful session, so a flood from one address cannot fill the
 *  pool. Default: half the pool, rounded up. */
#ifndef OTA_CFG_MAX_SESSIONS_PER_SOURCE
#define OTA_CFG_MAX_SESSIONS_PER_SOURCE ((OTA_CFG_MAX_SESSIONS + 1) / 2)
#endif

/** Handshake pool policy (server.c, "admission"). A real uploader sends the magic and
 *  feature bytes as soon as it is connected and answers a challenge within
 *  milliseconds: a session still in those first steps after HANDSHAKE_PROMPT_MS is
 *  "slow" and the first to be replaced; one that got past them within that time is
 *  protected from eviction until it falls silent for HANDSHAKE_STALE_MS. */
#ifndef OTA_CFG_HANDSHAKE_PROMPT_MS
#define OTA_CFG_HANDSHAKE_PROMPT_MS 1000u
#endif
#ifndef OTA_CFG_HANDSHAKE_STALE_MS
#define OTA_CFG_HANDSHAKE_STALE_MS 3000u
#endif

/** While a newcomer that has sent nothing yet would meet random early drop (below),
 *  new connections are taken from the listener only this often: they wait in the
 *  accept queue, where a real uploader's first bytes arrive and tell it from a flood. */
#ifndef OTA_CFG_ACCEPT_PAUSE_MS
#define OTA_CFG_ACCEPT_PAUSE_MS 30u
#endif

/** Random early drop (OpenSSH's MaxStartups start:rate:full): once RED_START sessions
 *  are in the handshake pool, a newcomer that has not sent its magic yet is refused
 *  with probability RED_RATE_PCT percent, rising linearly to 100 % when the pool is
 *  full (then it may only replace a slow session). Newcomers whose magic bytes are
 *  already there when they are accepted skip the draw. */
#ifndef OTA_CFG_RED_START
#define OTA_CFG_RED_START ((OTA_CFG_MAX_SESSIONS + 1) / 2)
#endif
#ifndef OTA_CFG_RED_RATE_PCT
#define OTA_CFG_RED_RATE_PCT 30
#endif

/** Brute-force back-off is kept per source address in a table of this many entries
 *  (about 60 bytes each; the least recently used entry is reused). */
#ifndef OTA_CFG_AUTH_SOURCES
#define OTA_CFG_AUTH_SOURCES 8
#endif

/** Longest source address kept (text, NUL included; an IPv6 address fits in 46). */
#ifndef OTA_CFG_ADDR_MAX
#define OTA_CFG_ADDR_MAX 46
#endif

/** ArduinoOTA challenges kept open side by side, one per source address (about 150
 *  bytes each): an invitation from another address does not cancel a challenge. */
#ifndef OTA_CFG_ARDUINO_OFFERS
#define OTA_CFG_ARDUINO_OFFERS 2
#endif

/** Repeated events (dropped connections, failed handshakes, refusals) log their first
 *  occurrence, then at most one summary line per this interval. */
#ifndef OTA_CFG_LOG_REPEAT_MS
#define OTA_CFG_LOG_REPEAT_MS 10000u
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

/** 1: the core writes log lines (through the port's log table). 0 drops every log
 *  string and the code that formats them (about a third of a small build): for a
 *  firmware with no log output or no room for the text. */
#ifndef OTA_CFG_ENABLE_LOG_STRINGS
#define OTA_CFG_ENABLE_LOG_STRINGS 1
#endif

/** 1: accept gzip-compressed uploads when the port can inflate. */
#ifndef OTA_CFG_ENABLE_COMPRESSION
#define OTA_CFG_ENABLE_COMPRESSION 1
#endif

/** 1: the late digest (docs/protocol.md#native-late-md5): a client that asks
 *  (OTA_FEATURE_LATE_MD5) sends the MD5 after the data, so both ends hash at once.
 *  0 leaves it out: every client then gets the stock order. */
#ifndef OTA_CFG_ENABLE_LATE_MD5
#define OTA_CFG_ENABLE_LATE_MD5 1
#endif

/** 1: compile the legacy challenge methods (need the plain password on the device). */
#ifndef OTA_CFG_ENABLE_LEGACY_AUTH
#define OTA_CFG_ENABLE_LEGACY_AUTH 1
#endif

/** 1: compile the ArduinoOTA front end (src/core/arduino.c, about 5 KB of code). */
#ifndef OTA_CFG_ENABLE_ARDUINO
#define OTA_CFG_ENABLE_ARDUINO 1
#endif

/** 1: signed images (ota/signature.h, src/core/signature.c): ESP-IDF Secure Boot V2
 *  signature sectors, RSA-3072-PSS and ECDSA P-256 through the crypto table's verify
 *  hooks, and ota_server_config_t's trusted_keys to require them. Costs the 4096-byte
 *  tail of the streaming check in ota_update_t (make footprint's "signed" line).
 *  0 (default) leaves them out (their functions do not exist then). */
#ifndef OTA_CFG_ENABLE_SIGNED
#define OTA_CFG_ENABLE_SIGNED 0
#endif

/** Pull updates (ota/pull.h): the node fetches a manifest and its image from a web
 *  server, resumably. Adds the store's resume hooks to the pipeline, a whole-image
 *  SHA-256 check and the download's identity in the boot record. */
#ifndef OTA_CFG_ENABLE_PULL
#define OTA_CFG_ENABLE_PULL 0
#endif

/** Longest ETag (with its quotes) a resumable download remembers; a longer one is
 *  not remembered and the download then resumes only by size + SHA-256. */
#ifndef OTA_CFG_PULL_ETAG_MAX
#define OTA_CFG_PULL_ETAG_MAX 72
#endif

/** The largest manifest.json a node takes (it is read whole into ota_pull_t). */
#ifndef OTA_CFG_PULL_MANIFEST_MAX
#define OTA_CFG_PULL_MANIFEST_MAX 4096u
#endif

/** A pull download records a resume point (slot synced, boot record written) every
 *  this many bytes: smaller loses less to a power cut, larger writes the record less. */
#ifndef OTA_CFG_PULL_SYNC_BYTES
#define OTA_CFG_PULL_SYNC_BYTES (256u * 1024u)
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

/** The update manifest of pull updates (ota/manifest.h, src/core/manifest.c; with
 *  OTA_CFG_ENABLE_PULL): its buffers in bytes, NUL included. The text fields that are
 *  only shown (name, summary, release_url) are cut to them; a version or path that
 *  does not fit is refused. MAX_DEPTH: the deepest nesting of JSON arrays and objects
 *  the parser follows, the top object included (a manifest needs 4, ESP Web Tools'
 *  parts 5); the parser recurses once per level, about 150 bytes of stack each on a
 *  32-bit microcontroller (1.2 KiB at 8). */
#ifndef OTA_CFG_MANIFEST_NAME_MAX
#define OTA_CFG_MANIFEST_NAME_MAX 64
#endif
#ifndef OTA_CFG_MANIFEST_VERSION_MAX
#define OTA_CFG_MANIFEST_VERSION_MAX 32 /* esp_app_desc_t's version field */
#endif
#ifndef OTA_CFG_MANIFEST_PATH_MAX
#define OTA_CFG_MANIFEST_PATH_MAX 256
#endif
#ifndef OTA_CFG_MANIFEST_TEXT_MAX
#define OTA_CFG_MANIFEST_TEXT_MAX 128 /* summary, release_url */
#endif
#ifndef OTA_CFG_MANIFEST_MAX_DEPTH
#define OTA_CFG_MANIFEST_MAX_DEPTH 8
#endif

/** HTTP(S) pull client (ota/http.h, src/core/http.c): 0 (default) compiles it out,
 *  so a node that only takes pushed updates pays nothing. Then its sizes: the longest
 *  URL (a pre-signed object-store URL can take 1-2 KiB), host name (without port),
 *  validator (ETag or Last-Modified, with its quotes), user agent and media type it
 *  keeps, and its I/O buffer, which holds the request and then each header line (so
 *  it bounds the longest line, and must hold a Location of OTA_CFG_HTTP_URL_MAX).
 *  HEADERS_MAX bounds one whole header block (all lines of one answer). */
#ifndef OTA_CFG_ENABLE_HTTP
#define OTA_CFG_ENABLE_HTTP 0
#endif
#ifndef OTA_CFG_HTTP_URL_MAX
#define OTA_CFG_HTTP_URL_MAX 256
#endif
#ifndef OTA_CFG_HTTP_HOST_MAX
#define OTA_CFG_HTTP_HOST_MAX 64
#endif
#ifndef OTA_CFG_HTTP_VALIDATOR_MAX
#define OTA_CFG_HTTP_VALIDATOR_MAX 80
#endif
#ifndef OTA_CFG_HTTP_UA_MAX
#define OTA_CFG_HTTP_UA_MAX 48
#endif
#ifndef OTA_CFG_HTTP_CTYPE_MAX
#define OTA_CFG_HTTP_CTYPE_MAX 48
#endif
#ifndef OTA_CFG_HTTP_BUF_SIZE
#define OTA_CFG_HTTP_BUF_SIZE 768
#endif
#ifndef OTA_CFG_HTTP_HEADERS_MAX
#define OTA_CFG_HTTP_HEADERS_MAX 16384u
#endif
#ifndef OTA_CFG_HTTP_MAX_REDIRECTS
#define OTA_CFG_HTTP_MAX_REDIRECTS 3
#endif
#ifndef OTA_CFG_HTTP_CONNECT_TIMEOUT_MS
#define OTA_CFG_HTTP_CONNECT_TIMEOUT_MS 15000u
#endif
#ifndef OTA_CFG_HTTP_IDLE_TIMEOUT_MS
#define OTA_CFG_HTTP_IDLE_TIMEOUT_MS 30000u
#endif

/** Default timeouts of the spec (docs/protocol.md#native-timeouts); runtime-configurable. */
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
#if OTA_CFG_MAX_SESSIONS_PER_SOURCE < 1 || OTA_CFG_MAX_SESSIONS_PER_SOURCE > OTA_CFG_MAX_SESSIONS
#error "OTA_CFG_MAX_SESSIONS_PER_SOURCE must be between 1 and OTA_CFG_MAX_SESSIONS"
#endif
#if OTA_CFG_RED_START < 0 || OTA_CFG_RED_START > OTA_CFG_MAX_SESSIONS || OTA_CFG_RED_RATE_PCT < 0 || OTA_CFG_RED_RATE_PCT > 100
#error "OTA_CFG_RED_START must be 0 to OTA_CFG_MAX_SESSIONS, OTA_CFG_RED_RATE_PCT 0 to 100"
#endif
#if OTA_CFG_AUTH_SOURCES < 1 || OTA_CFG_AUTH_SOURCES > 64
#error "OTA_CFG_AUTH_SOURCES must be 1 to 64"
#endif
#if OTA_CFG_ADDR_MAX < 16 || OTA_CFG_ADDR_MAX > 64
#error "OTA_CFG_ADDR_MAX must be 16 to 64"
#endif
#if OTA_CFG_ARDUINO_OFFERS < 1 || OTA_CFG_ARDUINO_OFFERS > 8
#error "OTA_CFG_ARDUINO_OFFERS must be 1 to 8"
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
#if OTA_CFG_MANIFEST_NAME_MAX < 8 || OTA_CFG_MANIFEST_VERSION_MAX < 8 || \
    OTA_CFG_MANIFEST_PATH_MAX < 16 || OTA_CFG_MANIFEST_TEXT_MAX < 8
#error "OTA_CFG_MANIFEST_NAME_MAX, _VERSION_MAX, _TEXT_MAX must be at least 8, _PATH_MAX 16"
#endif
#if OTA_CFG_MANIFEST_NAME_MAX > 65535 || OTA_CFG_MANIFEST_VERSION_MAX > 65535 || \
    OTA_CFG_MANIFEST_PATH_MAX > 65535 || OTA_CFG_MANIFEST_TEXT_MAX > 65535
#error "OTA_CFG_MANIFEST_*_MAX must be at most 65535"
#endif
#if OTA_CFG_MANIFEST_MAX_DEPTH < 4 || OTA_CFG_MANIFEST_MAX_DEPTH > 64
#error "OTA_CFG_MANIFEST_MAX_DEPTH must be 4 to 64 (a manifest needs 4: top, builds, build, ota)"
#endif
#if OTA_CFG_POLL_BUDGET < OTA_CFG_DATA_BUF_SIZE
#error "OTA_CFG_POLL_BUDGET must be at least OTA_CFG_DATA_BUF_SIZE"
#endif

#if OTA_CFG_ENABLE_HTTP
#if OTA_CFG_HTTP_URL_MAX < 32 || OTA_CFG_HTTP_HOST_MAX < 16 || OTA_CFG_HTTP_HOST_MAX > 256 ||     \
    OTA_CFG_HTTP_VALIDATOR_MAX < 32 || OTA_CFG_HTTP_UA_MAX < 16 || OTA_CFG_HTTP_CTYPE_MAX < 16
#error "OTA_CFG_HTTP_*: URL_MAX >= 32, HOST_MAX 16-256, VALIDATOR_MAX >= 32, UA/CTYPE_MAX >= 16"
#endif
/* the request (path, host, If-Range, user agent and ~160 bytes of fixed text) and a
 * Location line of the longest URL must fit the I/O buffer */
#if OTA_CFG_HTTP_BUF_SIZE <                                                                        \
        OTA_CFG_HTTP_URL_MAX + OTA_CFG_HTTP_VALIDATOR_MAX + OTA_CFG_HTTP_UA_MAX + 192 ||          \
    OTA_CFG_HTTP_BUF_SIZE > 60000
#error "OTA_CFG_HTTP_BUF_SIZE: URL_MAX + VALIDATOR_MAX + UA_MAX + 192 at least, 60000 at most"
#endif
#if OTA_CFG_HTTP_HEADERS_MAX < OTA_CFG_HTTP_BUF_SIZE || OTA_CFG_HTTP_MAX_REDIRECTS < 0 ||          \
    OTA_CFG_HTTP_MAX_REDIRECTS > 10
#error "OTA_CFG_HTTP_HEADERS_MAX must be >= OTA_CFG_HTTP_BUF_SIZE, _MAX_REDIRECTS 0 to 10"
#endif
#endif

#endif /* OTA_OPTS_H */
