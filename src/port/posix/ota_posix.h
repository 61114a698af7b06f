/*
 * ota_posix.h - the POSIX (Linux) port of the OTA core.
 *
 * crypto_mbedtls.c: hashing, HMAC, PBKDF2, random, signature checks (used by the node
 * and the host tool).
 * The node side (network, slots, boot state, inflate) is declared below them.
 */
#ifndef OTA_PORT_POSIX_OTA_POSIX_H
#define OTA_PORT_POSIX_OTA_POSIX_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "clock.h"
#include "log.h"
#include "ota/auth.h"
#include "ota/port.h"
#include "ota/log_proto.h"
#include "ota/server.h"

/* ---- crypto_mbedtls.c ---- */
int ota_posix_hash_start(void *user, ota_hash_ctx_t *ctx, ota_hash_alg_t alg);
int ota_posix_hash_update(void *user, ota_hash_ctx_t *ctx, const uint8_t *data, size_t len);
int ota_posix_hash_finish(void *user, ota_hash_ctx_t *ctx, uint8_t *out);
int ota_posix_random(void *user, uint8_t *buf, size_t len);
int ota_posix_hmac_sha256(void *user, const uint8_t *key, size_t key_len, const uint8_t *msg,
                          size_t msg_len, uint8_t *out);
/** PBKDF2-HMAC-SHA256 (host side only: the uploader and `ota hash-password`).
 *  \return 0, OTA_ERR_CRYPTO. */
int ota_posix_pbkdf2_sha256(const char *password, size_t password_len, const uint8_t *salt,
                            size_t salt_len, uint32_t iterations, uint8_t *out, size_t out_len);
/** Signature checks of signed images (ota/port.h's verify hooks, mbedTLS): ECDSA
 *  P-256 over a SHA-256 digest, RSASSA-PSS with SHA-256, MGF1-SHA-256, 32-byte salt.
 *  \return 0, OTA_ERR_BAD_SIGNATURE, OTA_ERR_CRYPTO. */
int ota_posix_verify_ecdsa_p256(void *user, const uint8_t *pubkey_xy, const uint8_t digest[32],
                                const uint8_t *sig_rs);
int ota_posix_verify_rsa3072_pss(void *user, const uint8_t *n, uint32_t e, const uint8_t digest[32],
                                 const uint8_t *sig);

#if OTA_CFG_ENABLE_SIGNED
/** The key digest (ota/signature.h) of a PEM key file: public or unencrypted private,
 *  RSA-3072 or EC P-256 (as `openssl genpkey`, `ota keygen` or `espsecure
 *  generate_signing_key` write them), for a node's or ota-boot's trusted keys.
 *  \return 0; -1 with an English reason in err, without the path (unreadable, not a
 *  key, another kind or size of key, encrypted). */
int ota_posix_key_digest_from_pem(const char *path, uint8_t digest[32], char *err, size_t cap);
#endif
/** The crypto table of the functions above (they keep no state: ctx is NULL). */
extern const ota_crypto_port_t ota_posix_crypto;

/* ======================================================================
 * The node side of the POSIX port: a firmware process (demo-node) run by
 * ota-boot from a slot in a state directory.
 *   net.c          non-blocking TCP listener and connections
 *   connect_host.c outbound connections by host name (the HTTP client's connect_host)
 *   tls_mbedtls.c  TLS client connections over the TCP table (https, ports.tls)
 *   slots.c        the inactive slot file: begin/write/finish/activate/abort
 *   bootstate.c    the boot state file (shared with ota-boot)
 *   inflate_zlib.c gzip inflation
 *   mdns_posix.c   UDP port 5353 for the mDNS responder (ota/mdns.h), over mcast.c
 *   mcast.c        mDNS multicast sockets + the interface rule (mcast.h; also the tool's)
 *   log.c          log lines to stdout and the log viewers (log.h)
 *   clock.c        the millisecond clock (clock.h)
 *   port.c         assembles the tables: boot record hooks, reboot, wait
 * ====================================================================== */

/** Exit status of a firmware that asks ota-boot to boot again (after an update). */
#define OTA_POSIX_EXIT_REBOOT 42

#define OTA_POSIX_MAX_CONNS 64
#define OTA_POSIX_MAX_VIEWERS 4
/* With a password, one slot more than that: a pending viewer while all 4 are
 * authenticated (the owner's 5th; it evicts the oldest one once it passes the auth). */
#define OTA_POSIX_VIEWER_SLOTS (OTA_POSIX_MAX_VIEWERS + 1)
/* Unauthenticated viewers one source address may hold at once: its newer connection
 * replaces its older pending one (a legitimate viewer makes one connection). */
#ifndef OTA_POSIX_LOG_PENDING_PER_ADDR
#define OTA_POSIX_LOG_PENDING_PER_ADDR 1
#endif
/* Source addresses whose recent connection rate the log server remembers (net.c). */
#define OTA_POSIX_LOG_SOURCES 16
#define OTA_POSIX_MDNS_MAX_IFS 32 /* interfaces served per address family */
#define OTA_POSIX_MDNS_MAX_NETS 64 /* subnets known for the on-link check */

/** A subnet of an interface mDNS serves (mdns_posix.c): sources in it are on the link. */
typedef struct ota_posix_mdns_net {
    uint32_t ifindex;
    uint8_t family; /* 4 or 6 */
    uint8_t plen;   /* prefix length */
    uint8_t addr[16];
} ota_posix_mdns_net_t;

/** How long a log viewer has to answer the password challenge (net.c). */
#define OTA_POSIX_LOG_AUTH_MS 5000u
/** The first lines of a boot are kept (up to OTA_POSIX_LOG_BACKLOG bytes) and a viewer
 *  that connects within OTA_POSIX_LOG_BACKLOG_MS of the start gets them after the
 *  hello: so `ota logs` reconnecting after a reboot shows the new boot from its first
 *  line, not from whenever it got back in (net.c). */
#define OTA_POSIX_LOG_BACKLOG 4096u
#define OTA_POSIX_LOG_BACKLOG_MS 30000u

/** What the log server knows of one viewer slot (net.c); the fd is viewers[i]. */
typedef struct ota_posix_viewer {
    uint8_t state;      /* OTA_POSIX_VIEWER_* */
    uint32_t seq;       /* accept order: the oldest is evicted first */
    uint32_t since_ms;  /* when the challenge went out (the auth deadline) */
    uint8_t nonce[OTA_SALTED_NONCE_LEN]; /* server nonce of the challenge */
    char rx[160];       /* the viewer's answer line, as it arrives */
    uint8_t rx_len;
    uint8_t family;     /* its source address: 4 or 6 */
    uint8_t addr[16];
} ota_posix_viewer_t;
#define OTA_POSIX_VIEWER_FREE 0
#define OTA_POSIX_VIEWER_WAIT 1 /* accepted; the challenge waits for the back-off */
#define OTA_POSIX_VIEWER_AUTH 2 /* challenged, no answer yet */
#define OTA_POSIX_VIEWER_LIVE 3 /* gets the log lines */

/** A source address of log viewers and how many connections it opened lately
 *  (net.c): a flooding address ranks first for eviction and cannot evict others. */
typedef struct ota_posix_log_source {
    uint8_t family;     /* 0: unused entry */
    uint8_t addr[16];
    uint32_t score;     /* connections x 16, halved every second */
    uint32_t at_ms;     /* when score was last decayed */
    uint32_t failures;  /* failed auths in a row from it (its own back-off) */
    uint32_t backoff_start_ms, backoff_ms;
} ota_posix_log_source_t;

/** One interface mDNS runs on, per address family (mdns_posix.c). */
typedef struct ota_posix_mdns_if {
    uint32_t ifindex;
    char name[16]; /* IF_NAMESIZE, for the log */
    bool joined; /* the group is joined on it */
    bool warned; /* a failed join was logged (it is retried quietly) */
} ota_posix_mdns_if_t;

/** The mDNS state of a node process (mdns_posix.c). */
typedef struct ota_posix_mdns {
    int fd4, fd6;              /* UDP port 5353 sockets, -1 when off */
    uint8_t bind_family;       /* 0: any address; 4/6: only the address bind_addr */
    uint8_t bind_addr[16];
    ota_posix_mdns_if_t ifs4[OTA_POSIX_MDNS_MAX_IFS], ifs6[OTA_POSIX_MDNS_MAX_IFS];
    size_t n_ifs4, n_ifs6;     /* the interfaces in use (datagrams from others dropped) */
    uint32_t mcast_if4, mcast_if6; /* IP_MULTICAST_IF / IPV6_MULTICAST_IF set last */
    bool turn6;                /* recv takes turns between the sockets */
    bool errors_logged;        /* send errors: one log line a minute at most */
    uint32_t err_logged_at, errors_quiet;
    ota_posix_mdns_net_t nets[OTA_POSIX_MDNS_MAX_NETS]; /* re-read with the addresses */
    size_t n_nets;
} ota_posix_mdns_t;

/** Outbound connections by host name (connect_host.c): resolved in the background
 *  (getaddrinfo_a), then each address tried in turn. The handle is given out at once
 *  and stays the same file descriptor throughout (each attempt's socket is dup3'ed
 *  onto it). */
#ifndef OTA_POSIX_MAX_OUTBOUND /* connects under way at once (entries free when connected) */
#define OTA_POSIX_MAX_OUTBOUND 8
#endif
#define OTA_POSIX_OUT_FREE 0
#define OTA_POSIX_OUT_RESOLVING 1 /* the name is being looked up */
#define OTA_POSIX_OUT_CONNECTING 2 /* a TCP connect to one address is under way */
#define OTA_POSIX_OUT_FAILED 3    /* err says why (recv/send report it) */
#define OTA_POSIX_OUT_ORPHAN 4    /* closed while resolving: reaped once the lookup ends */
/** An address whose connect has not answered after this long gives way to the next
 *  one (when there is a next one: the HTTP client's connect timeout covers the rest). */
#define OTA_POSIX_OUT_ATTEMPT_MS 2000u
typedef struct ota_posix_outbound {
    int fd;              /* the handle given out (-1 when free or orphaned) */
    uint8_t state;       /* OTA_POSIX_OUT_* */
    int err;             /* with FAILED */
    void *req;           /* RESOLVING / ORPHAN: the getaddrinfo_a request (heap) */
    void *res;           /* the addresses (struct addrinfo list), once resolved */
    void *next;          /* the next one to try */
    bool tried;          /* an address was tried: a failure is "refused", not "no name" */
    uint32_t attempt_ms; /* when the current address was tried */
} ota_posix_outbound_t;

typedef struct ota_posix_options {
    const char *state_dir; /**< the node's state directory (slots + boot state) */
    const char *bind_addr; /**< IPv4/IPv6 address to listen on, e.g. "0.0.0.0", "::1" */
    uint16_t port;         /**< OTA TCP port */
    uint64_t slot_size;    /**< capacity of each slot in bytes */
    uint16_t arduino_port; /**< ArduinoOTA UDP port, 0 = no ArduinoOTA listener */
    bool data_slot;        /**< accept ArduinoOTA filesystem images into DIR/data.bin */
    /** https:// trusted CAs (PEM file); NULL: the system bundle,
     *  OTA_POSIX_TLS_SYSTEM_CA. Read at the first https connection. */
    const char *tls_ca_file;
} ota_posix_options_t;

/** The port's tables of a node process (filled by ota_posix_init; each points back
 *  at the ota_posix_t). server holds what ota_server_setup() takes: the optional
 *  tables are NULL when the node has none (no UDP socket, no data slot). */
typedef struct ota_posix_ports {
    ota_tcp_port_t tcp;
    ota_udp_port_t udp;
    ota_store_port_t slot;
    ota_store_port_t data;
    ota_boot_port_t boot;
    ota_crypto_port_t crypto;
    ota_inflate_port_t inflate;
    ota_mdns_port_t mdns; /* set by ota_posix_mdns_open */
    ota_log_port_t log;
    ota_server_ports_t server;
    ota_tls_port_t tls;   /* https for the HTTP client (tls_mbedtls.c over tcp) */
} ota_posix_ports_t;

typedef struct ota_posix {
    ota_posix_ports_t ports; /* filled by ota_posix_init: pass &ctx->ports.server etc. */
    char state_dir[4096];
    char active;   /* slot this process runs from */
    char inactive; /* slot an update writes */
    uint64_t slot_size;
    int listen_fd;
    /* The core may leave a waiting connection in the accept queue for a while (a
     * flood: OTA_CFG_ACCEPT_PAUSE_MS): ota_posix_wait then leaves the listener out of
     * poll() for that long instead of waking at once, again and again. */
    uint32_t accept_calls;     /* ota_posix_net_accept calls so far */
    uint32_t accept_calls_seen; /* ... at the last wait */
    bool listen_ready;         /* the last wait found the listener readable */
    int conns[OTA_POSIX_MAX_CONNS];
    int tmp_fd;            /* the inactive slot's temp file while an update runs */
    uint64_t tmp_flushed;  /* bytes of it whose writeback was started (sync_file_range) */
    char tmp_path[4200];
    bool finished;         /* slot_finish passed */
    bool reboot;           /* port->reboot() was called */
    void *zstream;         /* z_stream while inflating */
    char bound[80];        /* "addr:port" actually bound */
    int udp_fd;            /* ArduinoOTA invitations, -1 when off */
    int udp_family;        /* its address family (AF_INET6: dual-stack, maps IPv4) */
    int log_fd;            /* log viewers' listener, -1 when off */
    int viewers[OTA_POSIX_VIEWER_SLOTS]; /* -1: free (the spare one only while logs on) */
    ota_posix_viewer_t viewer[OTA_POSIX_VIEWER_SLOTS]; /* their state */
    ota_posix_log_source_t log_sources[OTA_POSIX_LOG_SOURCES];
    char log_hello[OTA_LOG_HELLO_MAX + 1]; /* first line a viewer gets, with its newline */
    bool log_auth;         /* viewers must prove the password (log_verifier) */
    ota_verifier_t log_verifier;
    uint32_t log_seq;      /* accept counter */
    /* brute force: back-off per source (log_sources), plus a ceiling for all together */
    uint32_t log_guesses;  /* failed viewer auths in the current minute, all sources */
    uint32_t log_window_ms; /* start of that minute */
    uint32_t log_dropped;  /* viewers dropped since the last report (rate-limited) */
    uint32_t log_refused;  /* wrong passwords / missed deadlines since the last report */
    uint32_t log_busy;     /* turned away (every slot busy) since the last report */
    uint32_t log_report_ms;
    char log_backlog[OTA_POSIX_LOG_BACKLOG]; /* the boot's first lines */
    size_t log_backlog_len;
    bool log_backlog_done;  /* full, or the window is over: nothing more is kept */
    uint32_t log_boot_ms;   /* ota_posix_init: the start of the window */
    bool log_reported;
    ota_posix_mdns_t mdns; /* mDNS sockets (mdns_posix.c) */
    ota_posix_outbound_t outbound[OTA_POSIX_MAX_OUTBOUND]; /* connect_host.c */
    struct ota_posix_tls *tls; /* the TLS client state behind ports.tls (heap) */
} ota_posix_t;

/** Open the listener and read the boot state. The active slot is $OTA_BOOT_SLOT when
 *  set (ota-boot sets it), else the boot state's. On failure err says what to do.
 *  \return 0; OTA_ERR_INVALID_ARG (no or no such state directory, bind address not an
 *  address), OTA_ERR_IO (the state directory cannot be resolved, a socket cannot be
 *  bound: e.g. the port is taken). */
int ota_posix_init(ota_posix_t *ctx, const ota_posix_options_t *opts, char *err, size_t err_cap);

/** Close everything (connections, listener, an unfinished slot file). Safe twice. */
void ota_posix_free(ota_posix_t *ctx);

/** Sleep until the listener or a connection is readable, or timeout_ms passes
 *  (the main loop's idle wait). Outbound connections (connect_host) wake it once
 *  connected; while a name is being looked up it sleeps at most 10 ms, and not at all
 *  while TLS holds bytes already received. \return 0, OTA_ERR_IO (poll failed; EINTR
 *  is 0). */
int ota_posix_wait(ota_posix_t *ctx, int timeout_ms);

/** Serve this process's log lines to up to OTA_POSIX_MAX_VIEWERS TCP viewers
 *  (`ota logs`) on port, same address as the OTA listener. Without a verifier (NULL
 *  or "") a viewer first gets hello (one line), then every line logged for ctx
 *  (ota_posix_logf(ctx, ...), the core's log hook). With one (the text `ota
 *  hash-password` prints) a viewer must first pass the salted exchange of
 *  docs/protocol.md#logs-auth within
 *  OTA_POSIX_LOG_AUTH_MS, and gets nothing of the log before. A viewer that does not
 *  keep up is dropped, never waited for. Without a password, when every slot is taken
 *  a new viewer evicts the oldest one. With one, a source address holds at most
 *  OTA_POSIX_LOG_PENDING_PER_ADDR unauthenticated slots (its newer connection replaces
 *  its older one); when every slot is taken a newcomer evicts an unauthenticated viewer
 *  of the address that holds the most of them and connects the most, unless its own
 *  address connects more (then it is turned away); an authenticated viewer is evicted
 *  only by one that has just authenticated, when all are.
 *  \return 0; OTA_ERR_INVALID_ARG (an invalid verifier or address), OTA_ERR_IO (the
 *  port cannot be bound); err says why. */
int ota_posix_log_listen(ota_posix_t *ctx, const char *addr, uint16_t port,
                         const char *hello, const char *verifier, char *err, size_t err_cap);

/** Accept waiting viewers, run their auth, drop the late ones (call from the main
 *  loop; one HMAC check per answer, never blocks). */
void ota_posix_log_poll(ota_posix_t *ctx);
struct pollfd;
/** The viewer sockets ota_posix_wait() sleeps on: up to max into fds. \return count. */
size_t ota_posix_log_pollfds(const ota_posix_t *ctx, struct pollfd *fds, size_t max);
/** Internal to the port: send one log line to every viewer of ctx (log.c calls it);
 *  close the viewers. */
void ota_posix_log_broadcast(ota_posix_t *ctx, const char *line, size_t len);
void ota_posix_log_close(ota_posix_t *ctx);

/** true once the core asked for a reboot (exit with OTA_POSIX_EXIT_REBOOT). */
bool ota_posix_reboot_requested(const ota_posix_t *ctx);

/* ---- mdns_posix.c: the mdns_* hooks for the responder of ota/mdns.h ---- */

/** Open UDP port 5353 (IPv4 and IPv6, shared with Avahi or another node of the
 *  host: SO_REUSEADDR + SO_REUSEPORT) and set the mdns_* hooks of ctx->port. The
 *  interfaces follow bind_addr (the OTA listener's): any address ("0.0.0.0", "::") =
 *  every interface of the rule in mcast.h (up, running, multicast-capable, not
 *  loopback, with an address to send from); a
 *  specific address = the interface holding it, and that address alone is
 *  advertised; a loopback address = none: mDNS stays off, no socket is opened, so
 *  nodes on 127.0.0.1 never talk on the real LAN. The groups are joined on each
 *  interface as it appears (in mdns_addrs, which the responder calls every second).
 *  The sockets are part of ota_posix_wait(); ota_posix_free() closes them.
 *  ctx must come from ota_posix_init().
 *  \return a status by design, not 0 = success: OTA_POSIX_MDNS_ON (1);
 *  OTA_POSIX_MDNS_OFF (0), off by design (why says so: "off: bound to loopback ...");
 *  negative, an error, off (why says it): OTA_ERR_INVALID_ARG (bind_addr is not an
 *  address), OTA_ERR_IO (no socket could be bound). */
#define OTA_POSIX_MDNS_ON 1
#define OTA_POSIX_MDNS_OFF 0
int ota_posix_mdns_open(ota_posix_t *ctx, const char *bind_addr, char *why, size_t why_cap);
/** Close the mDNS sockets and clear the hooks (ota_posix_free does it too). Safe
 *  twice. */
void ota_posix_mdns_close(ota_posix_t *ctx);
/** Internal to the port: the mDNS state of a fresh ctx (no sockets). */
void ota_posix_mdns_reset(ota_posix_t *ctx);

/** The hooks (ota/port.h), for tests that call them directly. recv drops datagrams
 *  that came in on an interface outside the selection, or without IP_PKTINFO. */
/** mdns_recv with the on-link facts (RFC 6762 11): is the source on a subnet of the
 *  arrival interface (getifaddrs, /proc/net/if_inet6; link-local always is), and
 *  the IP TTL / hop limit it arrived with (IP_RECVTTL, IPV6_RECVHOPLIMIT). */
int ota_posix_mdns_recv_meta(void *user, uint8_t *buf, size_t len, ota_ip_t *from,
                             uint16_t *from_port, ota_mdns_rx_meta_t *meta);
int ota_posix_mdns_recv(void *user, uint8_t *buf, size_t len, ota_ip_t *from,
                        uint16_t *from_port);
int ota_posix_mdns_send(void *user, const uint8_t *buf, size_t len, const ota_ip_t *to,
                        uint16_t to_port);
int ota_posix_mdns_addrs(void *user, ota_ip_t *out, size_t max);

/* ota_posix_now_ms(): clock.h; ota_posix_logf(): log.h */

/* the port functions, for tests that want to call them directly. net_listen and
 * udp_open (the listeners ota_posix_init opens) return 0, OTA_ERR_INVALID_ARG (addr is
 * not an IPv4/IPv6 address) or OTA_ERR_IO (socket/bind/listen failed), err says why;
 * the hooks return what ota/port.h says. */
int ota_posix_net_accept(void *user, ota_conn_t *conn, char *peer, size_t peer_len);
int ota_posix_net_recv(void *user, ota_conn_t conn, uint8_t *buf, size_t len);
int ota_posix_net_send(void *user, ota_conn_t conn, const uint8_t *buf, size_t len);
void ota_posix_net_close(void *user, ota_conn_t conn);
int ota_posix_net_listen(ota_posix_t *ctx, const char *addr, uint16_t port, char *err,
                         size_t err_cap);
int ota_posix_udp_open(ota_posix_t *ctx, const char *addr, uint16_t port, char *err,
                       size_t err_cap);
int ota_posix_udp_recv(void *user, uint8_t *buf, size_t len, char *from, size_t from_len,
                       uint16_t *from_port);
int ota_posix_udp_send(void *user, const char *ip, uint16_t port, const uint8_t *buf,
                       size_t len);
int ota_posix_net_connect(void *user, const char *ip, uint16_t port, ota_conn_t *conn);
int ota_posix_slot_begin(void *user, uint32_t size);
int ota_posix_slot_write(void *user, uint32_t offset, const uint8_t *data, size_t len);
int ota_posix_slot_finish(void *user, uint32_t size);
int ota_posix_slot_activate(void *user);
void ota_posix_slot_abort(void *user);
int ota_posix_slot_resume(void *user, uint32_t size, uint32_t offset);
int ota_posix_slot_read(void *user, uint32_t offset, uint8_t *buf, size_t len);
int ota_posix_slot_sync(void *user);
void ota_posix_slot_close(ota_posix_t *ctx);
int ota_posix_data_begin(void *user, uint32_t size);
int ota_posix_data_finish(void *user, uint32_t size);
int ota_posix_inflate_begin(void *user);
int ota_posix_inflate_run(void *user, const uint8_t *in, size_t in_len, size_t *in_used,
                          uint8_t *out, size_t out_len, size_t *out_made, bool *done);
void ota_posix_inflate_end(void *user);

/* ---- connect_host.c: outbound connections by name (ota_tcp_port_t.connect_host) ---- */

/** Start a connection to host (a name, or a numeric IPv4/IPv6 address: no lookup
 *  then) port 'port', non-blocking: the name is resolved in the background
 *  (glibc's getaddrinfo_a) and its addresses are tried in the resolver's order, the
 *  next one when one refuses or stays silent for OTA_POSIX_OUT_ATTEMPT_MS.
 *  ota_posix_net_recv/send answer OTA_ERR_WOULD_BLOCK until it is up, then
 *  OTA_ERR_RESOLVE (no such name), OTA_ERR_CLOSED (every address refused) or bytes.
 *  \return 0, OTA_ERR_INVALID_ARG (empty host, or longer than 253), OTA_ERR_IO (no
 *  handle free). */
int ota_posix_net_connect_host(void *user, const char *host, uint16_t port, ota_conn_t *conn);
/** Internal to the port: move an outbound connection on (recv/send call it); 0 when
 *  conn is connected or no outbound connection, WOULD_BLOCK, or its error. */
int ota_posix_outbound_step(ota_posix_t *ctx, ota_conn_t conn);
/** Internal to the port: conn is being closed (forget it); everything at free. */
void ota_posix_outbound_forget(ota_posix_t *ctx, ota_conn_t conn);
void ota_posix_outbound_free(ota_posix_t *ctx);
/** Internal to the port: the poll events ota_posix_wait wants for conn (POLLIN, or
 *  POLLOUT while connecting, or 0 while resolving: then *resolving is set). */
short ota_posix_outbound_events(const ota_posix_t *ctx, ota_conn_t conn, bool *resolving);
/** Internal to the port: add or drop fd in the set ota_posix_wait sleeps on. */
void ota_posix_net_track(ota_posix_t *ctx, int fd, bool add);

/* ---- tls_mbedtls.c: TLS client connections (ota_tls_port_t) over a TCP table ---- */

/** The system's CA bundle (Debian's ca-certificates). */
#define OTA_POSIX_TLS_SYSTEM_CA "/etc/ssl/certs/ca-certificates.crt"
/** Connections one TLS context holds at once. */
#ifndef OTA_POSIX_TLS_MAX_CONNS
#define OTA_POSIX_TLS_MAX_CONNS 8
#endif

typedef struct ota_posix_tls ota_posix_tls_t;
/** A TLS client over tcp (borrowed: its connect_host, recv, send, close), trusting
 *  the CAs of ca_file (PEM; NULL: OTA_POSIX_TLS_SYSTEM_CA), read at the first
 *  connection. Certificates are verified (chain, dates, and the URL's host against
 *  the certificate's DNS names; SNI carries it too); mbedTLS 2.28 speaks TLS 1.2.
 *  \return the context, NULL when out of memory. */
ota_posix_tls_t *ota_posix_tls_new(const ota_tcp_port_t *tcp, const char *ca_file);
/** Close every connection and free the context (NULL is fine). */
void ota_posix_tls_delete(ota_posix_tls_t *t);
/** The table over t (ota/port.h's ota_tls_port_t, ctx = t). */
ota_tls_port_t ota_posix_tls_port(ota_posix_tls_t *t);
/** true when a connection of t holds bytes that no socket shows as readable (a
 *  record mbedTLS has read but not handed out yet): ota_posix_wait does not sleep
 *  then. */
bool ota_posix_tls_pending(const ota_posix_tls_t *t);
/** Why the last failed connection of t failed (mbedTLS's words, certificate
 *  verification flags included), "" when none did; for log lines. */
const char *ota_posix_tls_last_error(const ota_posix_tls_t *t);

#endif /* OTA_PORT_POSIX_OTA_POSIX_H */
