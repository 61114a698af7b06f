/*
 * ota/port.h - everything the portable core needs from the outside world, as small
 * tables in the manner of lwIP's netif and mbedTLS's I/O callbacks: network (TCP,
 * UDP), image store (the firmware slot and the data slot are two instances of one
 * shape), boot record, crypto, inflate, mDNS datagrams, log. A port (src/port/<os>/)
 * fills the ones it has; each module's setup takes only the tables it uses, so a
 * native-only firmware provides four (TCP, slot, boot, crypto) and nothing else.
 * docs/porting.md describes each table and what a minimal port must provide.
 *
 * Every function receives its table's `ctx` back; the core keeps no global state,
 * so several servers (a fleet of nodes in one test binary) run side by side.
 *
 * Conventions (ota/errors.h): 0 or a positive count on success, negative OTA_ERR_*
 * on failure. OTA_ERR_WOULD_BLOCK means "cannot finish now, nothing was consumed";
 * the core retries the same call on its next poll. No function may block for long:
 * the firmware's main loop runs through the modules' poll functions.
 */
#ifndef OTA_PORT_H
#define OTA_PORT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "ota/opts.h"

/** Storage for one hash computation; the port casts it to its own context type. */
typedef struct ota_hash_ctx {
    union {
        uint64_t align;
        void *align_ptr;
        uint8_t bytes[OTA_CFG_HASH_CTX_SIZE];
    } u;
} ota_hash_ctx_t;

typedef enum ota_hash_alg {
    OTA_HASH_MD5 = 1,   /**< 16-byte digest */
    OTA_HASH_SHA256 = 2 /**< 32-byte digest */
} ota_hash_alg_t;

#define OTA_MD5_LEN 16
#define OTA_SHA256_LEN 32

typedef enum ota_log_level {
    OTA_LOG_ERROR = 0,
    OTA_LOG_WARN = 1,
    OTA_LOG_INFO = 2,
    OTA_LOG_DEBUG = 3
} ota_log_level_t;

/** What the core keeps across reboots (safe mode, rollback): RTC memory or NVS on a
 *  microcontroller, the boot-state file on Linux. The port may keep more (which slot
 *  is active, which one is confirmed); the core only needs these. */
typedef struct ota_boot_record {
    uint32_t boot_attempts;  /**< boots in a row that have not proven themselves */
    bool pending;            /**< the active image came from an update, unconfirmed */
    bool safe_mode_request;  /**< manual entry: the next boot is a safe-mode boot */
    bool safe_mode;          /**< the current boot runs in safe mode */
    /** Anti-rollback: the lowest image secure_version (ota/app_desc.h) the node
     *  takes; it rises when an image with a higher one is confirmed. 0: none. */
    uint32_t min_secure_version;
#if OTA_CFG_ENABLE_PULL
    /** A pull download under way (ota/pull.h), so it resumes after a reboot:
     *  pull_offset bytes of the image identified by pull_id (a digest of URL, size,
     *  SHA-256 and ETag) are durably in the inactive slot. pull_offset 0: none. */
    uint32_t pull_offset;
    uint8_t pull_id[16];
    /** The server's ETag of that image, for If-Range ("" when it sent none). */
    char pull_etag[OTA_CFG_PULL_ETAG_MAX];
    /** The newest signed manifest accepted ("published", ota/manifest.h): an older one
     *  is a replay and is refused. It only rises. */
    uint32_t pull_published;
#endif
} ota_boot_record_t;

/** An IP address with the interface it belongs to (mDNS). */
typedef struct ota_ip {
    uint8_t family;    /**< 4 or 6 */
    uint8_t addr[16];  /**< 4 bytes for IPv4, 16 for IPv6, network order */
    uint32_t ifindex;  /**< the port's interface number (0: unknown / any) */
} ota_ip_t;

/** What the port knows of how one received mDNS datagram reached the node, for the
 *  responder's on-link rule (RFC 6762 11, ota/mdns.h). All zero = nothing known
 *  (the responder then trusts the datagram, as ports without mdns_recv_meta get). */
typedef struct ota_mdns_rx_meta {
    uint8_t on_link;   /**< OTA_MDNS_LINK_UNKNOWN (0), _ON or _OFF: is the source
                            address on one of the arrival interface's subnets? */
    bool ttl_known;    /**< the port could read the IP header's TTL / hop limit */
    uint8_t ttl;       /**< IPv4 TTL / IPv6 hop limit as received (ttl_known) */
} ota_mdns_rx_meta_t;

#define OTA_MDNS_LINK_UNKNOWN 0u
#define OTA_MDNS_LINK_ON 1u  /**< on a subnet of the interface, or link-local
                                  (169.254/16, fe80::/10) */
#define OTA_MDNS_LINK_OFF 2u /**< from elsewhere: the responder ignores it */

/** A connection handle of the port (a file descriptor on POSIX, an index elsewhere).
 *  Negative values are never valid handles. */
typedef int ota_conn_t;

/*
 * The tables. Each is a struct of function pointers plus the `ctx` pointer every one
 * of them receives back; a module's setup takes only the tables it uses (see
 * docs/porting.md for what a minimal port must provide, table by table).
 */

/** Network, TCP: the OTA listener, and the back-connection of ArduinoOTA. */
typedef struct ota_tcp_port {
    /** Accept one pending connection, non-blocking.
     *  On success store the handle in *conn, write the peer's address as a
     *  NUL-terminated string into peer (at most peer_len bytes incl. NUL) and return 0.
     *  \return 0, OTA_ERR_WOULD_BLOCK when nobody is waiting, OTA_ERR_IO. */
    int (*accept)(void *ctx, ota_conn_t *conn, char *peer, size_t peer_len);

    /** Read up to len bytes, non-blocking.
     *  \return bytes read (> 0), OTA_ERR_WOULD_BLOCK, OTA_ERR_CLOSED (orderly close by
     *  the peer), OTA_ERR_IO. */
    int (*recv)(void *ctx, ota_conn_t conn, uint8_t *buf, size_t len);

    /** Send up to len bytes, non-blocking; a short count is allowed.
     *  \return bytes sent (> 0), OTA_ERR_WOULD_BLOCK, OTA_ERR_CLOSED, OTA_ERR_IO. */
    int (*send)(void *ctx, ota_conn_t conn, const uint8_t *buf, size_t len);

    /** Close a connection. Never fails; the handle is invalid afterwards. */
    void (*close)(void *ctx, ota_conn_t conn);

    /** Optional (ArduinoOTA only): start a TCP connection to ip:port without waiting
     *  for it (the uploader's back-connection). The handle works with recv/send/close;
     *  until the connection is up they answer OTA_ERR_WOULD_BLOCK, and a refused
     *  connection shows as OTA_ERR_CLOSED or OTA_ERR_IO there. \return 0, OTA_ERR_IO. */
    int (*connect)(void *ctx, const char *ip, uint16_t port, ota_conn_t *conn);

    void *ctx;

    /* Optional hooks after ctx, so that a table written positionally before they
     * existed still means what it meant (what it does not name is NULL). */

    /** Optional (the HTTP client, ota/http.h): start a TCP connection to host:port
     *  without waiting, where host is a DNS name or a numeric IPv4 / IPv6 address
     *  (without brackets). Name resolution must not block either: it runs in the
     *  background (a resolver thread, the stack's asynchronous DNS). The handle
     *  works with recv/send/close at once; until the connection is up they answer
     *  OTA_ERR_WOULD_BLOCK, and a failure shows there: OTA_ERR_RESOLVE (no such
     *  name, or no address of it answered), OTA_ERR_CLOSED (refused), OTA_ERR_IO.
     *  NULL: the HTTP client reaches numeric addresses only, through connect.
     *  \return 0, OTA_ERR_IO (no handle free), OTA_ERR_INVALID_ARG. */
    int (*connect_host)(void *ctx, const char *host, uint16_t port, ota_conn_t *conn);
} ota_tcp_port_t;

/** TLS client connections for https:// (ota/http.h; optional as a whole). Shaped like
 *  the TCP table: the port runs the TLS handshake inside the calls, non-blocking, and
 *  verifies the server's certificate chain against its trusted CAs and its name
 *  against host (SNI carries host too). */
typedef struct ota_tls_port {
    /** Start a TLS connection to host:port (name or numeric address, as
     *  ota_tcp_port_t.connect_host) without waiting. recv/send answer
     *  OTA_ERR_WOULD_BLOCK until the handshake is done, then move plaintext;
     *  failures show there: OTA_ERR_RESOLVE, OTA_ERR_CLOSED, OTA_ERR_IO as for TCP,
     *  OTA_ERR_TLS (handshake failed, untrusted or expired certificate, a name that
     *  does not match host). \return 0, OTA_ERR_IO (no handle free), OTA_ERR_TLS (no
     *  trusted CAs could be loaded), OTA_ERR_INVALID_ARG. */
    int (*connect_host)(void *ctx, const char *host, uint16_t port, ota_conn_t *conn);

    /** Plaintext bytes read, OTA_ERR_WOULD_BLOCK, OTA_ERR_CLOSED (the peer closed: with
     *  or without TLS close_notify, the HTTP framing tells a truncated body),
     *  OTA_ERR_IO, OTA_ERR_TLS. */
    int (*recv)(void *ctx, ota_conn_t conn, uint8_t *buf, size_t len);

    /** Plaintext bytes sent (> 0, a short count is allowed), OTA_ERR_WOULD_BLOCK (also
     *  while handshaking), OTA_ERR_CLOSED, OTA_ERR_IO, OTA_ERR_TLS. */
    int (*send)(void *ctx, ota_conn_t conn, const uint8_t *buf, size_t len);

    /** Close the connection (and free its TLS state). Never fails. */
    void (*close)(void *ctx, ota_conn_t conn);

    void *ctx;
} ota_tls_port_t;

/** Network, UDP: the ArduinoOTA invitation socket (optional as a whole). */
typedef struct ota_udp_port {
    /** Read one datagram, non-blocking. Write the sender's IP address (text, no port)
     *  into from and its UDP port into *from_port.
     *  \return the datagram's length (>= 0; a longer one is cut to len),
     *  OTA_ERR_WOULD_BLOCK, OTA_ERR_IO. */
    int (*recv)(void *ctx, uint8_t *buf, size_t len, char *from, size_t from_len,
                uint16_t *from_port);

    /** Send one datagram to ip:port from the same socket.
     *  \return 0, OTA_ERR_WOULD_BLOCK, OTA_ERR_IO. */
    int (*send)(void *ctx, const char *ip, uint16_t port, const uint8_t *buf, size_t len);

    void *ctx;
} ota_udp_port_t;

/** Image store: one shape for the inactive firmware slot and for the data
 *  (filesystem) slot of ArduinoOTA command 100. Nothing the running firmware or the
 *  boot state depends on may change before finish (data) or activate (slot). */
typedef struct ota_store_port {
    /** Prepare for an image of image_size bytes (the size on the wire; with
     *  compression the inflated image may be larger, and write reports
     *  OTA_ERR_NO_SPACE when it outgrows the store).
     *  \return 0, OTA_ERR_NO_SPACE (too big), OTA_ERR_NO_SLOT, OTA_ERR_PREPARE
     *  (storage busy/failed), OTA_ERR_WOULD_BLOCK (erase still running: call again). */
    int (*begin)(void *ctx, uint32_t image_size);

    /** Write len bytes at offset (offsets only grow, without gaps).
     *  \return 0, OTA_ERR_WOULD_BLOCK (nothing written, call again with the same
     *  bytes), OTA_ERR_NO_SPACE (beyond the store), OTA_ERR_WRITE. */
    int (*write)(void *ctx, uint32_t offset, const uint8_t *data, size_t len);

    /** All image_size bytes are written: make them durable and validate the image
     *  format. A firmware slot is still inactive afterwards; a data store makes the
     *  complete image the node's data here, atomically.
     *  \return 0, OTA_ERR_BAD_IMAGE (not a bootable image), OTA_ERR_WRITE. */
    int (*finish)(void *ctx, uint32_t image_size);

    /** Firmware slot: make the finished slot the one the next boot starts
     *  (atomically: after a power cut either the old or the new image boots,
     *  complete). \return 0, OTA_ERR_ACTIVATE. A data store leaves it NULL. */
    int (*activate)(void *ctx);

    /** Forget a begun, unfinished or failed image; the store may hold garbage
     *  afterwards but it is never used. Never fails; may be called after any of the
     *  functions above, or twice. */
    void (*abort)(void *ctx);

    void *ctx;

    /* Optional: resumable downloads (ota/pull.h). After ctx, so that tables written
     * before they existed keep their meaning; NULL = the store cannot resume (every
     * interrupted pull starts over). */

    /** Reopen the unfinished image of image_size bytes begun earlier, perhaps before
     *  a reboot, keeping its first offset bytes (the rest is dropped); writes go on
     *  at offset. \return 0, OTA_ERR_NO_SLOT (nothing to resume, or fewer than
     *  offset bytes: begin afresh), OTA_ERR_NO_SPACE, OTA_ERR_PREPARE. */
    int (*resume)(void *ctx, uint32_t image_size, uint32_t offset);

    /** Read back len bytes at offset of the unfinished image (the pipeline hashes
     *  what it kept). \return the bytes read (> 0), OTA_ERR_WOULD_BLOCK, OTA_ERR_IO. */
    int (*read)(void *ctx, uint32_t offset, uint8_t *buf, size_t len);

    /** Make every byte written so far durable (a resume point is recorded after it).
     *  \return 0, OTA_ERR_WRITE. */
    int (*sync)(void *ctx);
} ota_store_port_t;

/** Boot record and restart: what survives a reboot (RTC memory or NVS on a
 *  microcontroller, the boot-state file on Linux). */
typedef struct ota_boot_port {
    /** Read the boot record. A missing or corrupt record is not an error for the
     *  firmware: fill *rec with zeros and return 0 (the port logs it). Optional for
     *  the OTA server; ota/safe_mode.h needs it. \return 0, OTA_ERR_IO. */
    int (*load)(void *ctx, ota_boot_record_t *rec);

    /** Write the boot record atomically and durably (after a power cut either the
     *  old or the new record is read back, never a mix). Optional like load.
     *  \return 0, OTA_ERR_IO. */
    int (*store)(void *ctx, const ota_boot_record_t *rec);

    /** Restart into the activated image. On a microcontroller this does not return;
     *  on a hosted port it may return and leave the process soon after. */
    void (*reboot)(void *ctx);

    void *ctx;
} ota_boot_port_t;

/** Crypto: hashing (MD5, SHA-256), HMAC-SHA256, random bytes; optionally signature
 *  verification (ECDSA P-256, RSA-3072-PSS) for ota/signature.h. */
typedef struct ota_crypto_port {
    /** Start a hash. A started hash may be abandoned without hash_finish (a failed
     *  update), so it must hold no resource outside *h.
     *  \return 0, OTA_ERR_CRYPTO, OTA_ERR_UNSUPPORTED. */
    int (*hash_start)(void *ctx, ota_hash_ctx_t *h, ota_hash_alg_t alg);
    /** Feed bytes. \return 0, OTA_ERR_CRYPTO. */
    int (*hash_update)(void *ctx, ota_hash_ctx_t *h, const uint8_t *data, size_t len);
    /** Write the digest (16 or 32 bytes) to out; the context is spent afterwards.
     *  \return 0, OTA_ERR_CRYPTO. */
    int (*hash_finish)(void *ctx, ota_hash_ctx_t *h, uint8_t *out);

    /** HMAC-SHA256 of msg under key into out (32 bytes). Optional: needed for a
     *  salted verifier and ArduinoOTA's SHA-256 variant.
     *  \return 0, OTA_ERR_CRYPTO. */
    int (*hmac_sha256)(void *ctx, const uint8_t *key, size_t key_len, const uint8_t *msg,
                       size_t msg_len, uint8_t *out);

    /** Fill buf with len bytes from a cryptographic random source.
     *  \return 0, OTA_ERR_CRYPTO. */
    int (*random)(void *ctx, uint8_t *buf, size_t len);

    void *ctx;

    /* Optional: signature checks for signed images (ota/signature.h). They come after
     * ctx so that a table written positionally before they existed still means what
     * it meant (the hooks it does not name are NULL). NULL = the scheme is not
     * supported: its signature blocks count as unsupported, never as valid. Both take
     * the canonical big-endian forms; the core converts what ESP-IDF's signature
     * blocks store (little-endian) before the call. */

    /** ECDSA over NIST P-256 (SEC 1 4.1.4; ESP-IDF's "ecdsa256" scheme): does sig_rs
     *  (r || s, 32 bytes each, big-endian) sign digest (32 bytes, taken as the hash
     *  value itself: nothing is hashed again) under the public key pubkey_xy (X || Y,
     *  32 bytes each, big-endian: an uncompressed point without the 0x04 prefix)?
     *  \return 0 (it does), OTA_ERR_BAD_SIGNATURE (it does not, or the key is no point
     *  of the curve, or r or s is out of range), OTA_ERR_CRYPTO (the check could not
     *  run, e.g. out of memory). */
    int (*verify_ecdsa_p256)(void *ctx, const uint8_t *pubkey_xy, const uint8_t digest[32],
                             const uint8_t *sig_rs);

    /** RSASSA-PSS (RFC 8017 8.1.2) with SHA-256, MGF1 with SHA-256, a salt of exactly
     *  32 bytes and the 0xBC trailer (ESP-IDF's "rsa3072" scheme): does sig (384 bytes,
     *  big-endian) sign digest (32 bytes: the mHash of the RFC, nothing is hashed
     *  again) under the 3072-bit public key n (384 bytes, big-endian), e?
     *  \return 0 (it does), OTA_ERR_BAD_SIGNATURE (it does not, or n, e are no valid
     *  key), OTA_ERR_CRYPTO (the check could not run). */
    int (*verify_rsa3072_pss)(void *ctx, const uint8_t *n, uint32_t e, const uint8_t digest[32],
                              const uint8_t *sig);
} ota_crypto_port_t;

/** gzip inflation (optional as a whole: no table = no compressed uploads). */
typedef struct ota_inflate_port {
    /** Start inflating one RFC 1952 gzip stream. \return 0, OTA_ERR_INFLATE. */
    int (*begin)(void *ctx);

    /** Inflate from in[0..in_len) into out[0..out_len). Sets *in_used and
     *  *out_made, and *done once the gzip trailer has been read and checked.
     *  \return 0, OTA_ERR_INFLATE (corrupt stream). */
    int (*run)(void *ctx, const uint8_t *in, size_t in_len, size_t *in_used, uint8_t *out,
               size_t out_len, size_t *out_made, bool *done);

    /** Release whatever begin took. Safe to call twice. */
    void (*end)(void *ctx);

    void *ctx;
} ota_inflate_port_t;

/** mDNS datagrams on UDP port 5353 (ota/mdns.h). */
typedef struct ota_mdns_port {
    /** Read one datagram that arrived on UDP port 5353 (multicast to 224.0.0.251 or
     *  ff02::fb, or unicast), non-blocking. Fill *from with the sender's address and
     *  from->ifindex with the interface it came in on, *from_port with its port.
     *  \return the datagram's length (a longer one is cut to len), OTA_ERR_WOULD_BLOCK,
     *  OTA_ERR_IO. */
    int (*recv)(void *ctx, uint8_t *buf, size_t len, ota_ip_t *from, uint16_t *from_port);

    /** Send one datagram from UDP port 5353 to to:to_port on the interface
     *  to->ifindex (to is the group 224.0.0.251 / ff02::fb, or a querier's unicast
     *  address). \return 0, OTA_ERR_WOULD_BLOCK (dropped: mDNS tolerates loss),
     *  OTA_ERR_IO. */
    int (*send)(void *ctx, const uint8_t *buf, size_t len, const ota_ip_t *to, uint16_t to_port);

    /** The node's current addresses on the interfaces where mDNS runs (up,
     *  multicast-capable), each with its interface number; called about once a
     *  second, so an interface that comes up late (Wi-Fi joining) is found.
     *  \return how many were written to out (at most max, 0 = no network yet). */
    int (*addrs)(void *ctx, ota_ip_t *out, size_t max);

    /** Optional (NULL: the responder uses recv and knows nothing more): recv that
     *  also fills *meta, which the responder zeroes before the call, with what the
     *  port knows of the datagram's source and TTL. */
    int (*recv_meta)(void *ctx, uint8_t *buf, size_t len, ota_ip_t *from, uint16_t *from_port,
                     ota_mdns_rx_meta_t *meta);

    void *ctx;
} ota_mdns_port_t;

/** Log output. The clock is not a table: the firmware passes now_ms to every poll. */
typedef struct ota_log_port {
    /** Emit one log line (no trailing newline). May be NULL: no logging. */
    void (*line)(void *ctx, ota_log_level_t level, const char *line);
    void *ctx;
} ota_log_port_t;

#endif /* OTA_PORT_H */
