/*
 * ota/http.h - a small non-blocking HTTP/1.1 client (GET only) for pulling updates
 * from ordinary web servers (OTA_CFG_ENABLE_HTTP; docs/protocol.md#http-pull).
 *
 *     ota_http_init(h, tcp, tls)            bind the tables (tls may be NULL: no https)
 *     ota_http_get(h, &req, now)            start: connect, send the request
 *     ota_http_poll(h, now)                 every loop: WOULD_BLOCK until the answer's
 *                                           headers are in, then 0; or an error
 *     ota_http_status / _content_length / _etag / _range_start / _total_size ...
 *     ota_http_read(h, buf, len)            body bytes; 0 at its end
 *     ota_http_close(h)                     done (or give up); h can start again
 *
 * No heap, no globals: the caller owns ota_http_t (its size follows the
 * OTA_CFG_HTTP_* options). The connection goes through the port's TCP table
 * (connect_host, or connect for a numeric address) or, for https://, its TLS table.
 *
 * What the client does on its own: up to OTA_CFG_HTTP_MAX_REDIRECTS redirects (301,
 * 302, 303, 307, 308; a relative Location is resolved against the current URL; a
 * redirect from https to http is refused), interim 1xx answers are skipped,
 * Content-Length and chunked bodies (extensions and trailers read and ignored),
 * a body cut short is an error, never a short end. Hostile answers fail cleanly:
 * overlong lines and header blocks, bad or overflowing numbers, Content-Length
 * together with Transfer-Encoding, contradictory Content-Range, obsolete line folding.
 *
 * Timeouts come from the now_ms the caller passes to ota_http_poll (a free-running
 * 32-bit millisecond counter, wraparound safe): connect_timeout_ms from the start of
 * each connection until the request could be sent (name resolution, TCP and TLS
 * handshakes included), idle_timeout_ms while the client waits for bytes that do not
 * come. Call ota_http_poll on every loop, also while reading the body: a reader that
 * does not read (its store is busy) is not counted as idle.
 */
#ifndef OTA_HTTP_H
#define OTA_HTTP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "ota/errors.h"
#include "ota/opts.h"
#include "ota/port.h"

#if OTA_CFG_ENABLE_HTTP

/** "unknown" for ota_http_content_length and ota_http_total_size. */
#define OTA_HTTP_UNKNOWN UINT64_MAX

/** One GET. Strings are copied by ota_http_get: they need not outlive the call. */
typedef struct ota_http_request {
    const char *url;          /**< http://host[:port]/path?query or https://...; host may
                                   be a name, an IPv4 address or [an IPv6 address] */
    uint64_t range_start;     /**< > 0: ask for the rest from this byte (Range: bytes=N-) */
    const char *if_range;     /**< with range_start: the ETag (quoted, strong) or
                                   Last-Modified date of the copy the first bytes came
                                   from (If-Range), so a changed file comes whole (200);
                                   NULL: none */
    const char *user_agent;   /**< NULL: "ota-http" */
    uint32_t connect_timeout_ms; /**< 0: OTA_CFG_HTTP_CONNECT_TIMEOUT_MS */
    uint32_t idle_timeout_ms;    /**< 0: OTA_CFG_HTTP_IDLE_TIMEOUT_MS */
} ota_http_request_t;

/** Where the client is (ota_http_t.state). */
#define OTA_HTTP_IDLE 0       /* nothing started, or closed */
#define OTA_HTTP_CONNECTING 1 /* waiting for the connection (the first byte sent) */
#define OTA_HTTP_SENDING 2    /* the rest of the request */
#define OTA_HTTP_HEADERS 3    /* status line and headers */
#define OTA_HTTP_BODY 4       /* the body may be read */
#define OTA_HTTP_DONE 5       /* the whole body was read */
#define OTA_HTTP_FAILED 6     /* err says why; sticky until close / a new get */

/** The client. Treat as opaque; read it through the accessors. */
typedef struct ota_http {
    const ota_tcp_port_t *tcp;
    const ota_tls_port_t *tls;
    /* the port table of the current connection (tcp or tls), its functions */
    int (*recv_fn)(void *ctx, ota_conn_t conn, uint8_t *buf, size_t len);
    int (*send_fn)(void *ctx, ota_conn_t conn, const uint8_t *buf, size_t len);
    void (*close_fn)(void *ctx, ota_conn_t conn);
    void *io_ctx;
    ota_conn_t conn; /* -1: none */

    uint8_t state;    /* OTA_HTTP_* */
    int err;          /* with OTA_HTTP_FAILED */
    uint8_t redirects; /* followed so far */
    bool https;        /* the current URL's scheme */
    uint16_t port;
    uint16_t path_off; /* where the path starts in url */
    char url[OTA_CFG_HTTP_URL_MAX];   /* the current URL (after redirects) */
    char host[OTA_CFG_HTTP_HOST_MAX]; /* without brackets, NUL-terminated */
    bool host_v6;                     /* the host is an IPv6 literal */
    char if_range[OTA_CFG_HTTP_VALIDATOR_MAX];
    char user_agent[OTA_CFG_HTTP_UA_MAX];
    uint64_t range_start;
    uint32_t connect_timeout_ms, idle_timeout_ms;

    /* timers */
    uint32_t conn_start_ms; /* when the current connection was started */
    uint32_t last_ms;       /* the last time the client was not waiting in vain */
    uint32_t progress, progress_seen; /* bytes-arrived events, as of the last poll */
    bool starved;           /* since the last poll, a receive found nothing */

    /* the response */
    uint16_t status;
    uint8_t framing;        /* HTTP_FRAME_* (http.c) */
    uint8_t chunk_state;    /* HTTP_CHUNK_* (http.c) */
    bool have_length, have_te, have_range, bad_range, http10;
    uint8_t location_state; /* 0: no Location, 1: in location[], 2: too long */
    uint32_t header_bytes;  /* of the answer's header blocks so far (limit) */
    uint64_t content_length; /* OTA_HTTP_UNKNOWN when not given */
    uint64_t remaining;      /* body bytes (or chunk bytes) still to come */
    uint64_t range_first, range_last, range_total; /* Content-Range a-b/total */
    uint64_t body_read;      /* body bytes handed out */
    char etag[OTA_CFG_HTTP_VALIDATOR_MAX];
    char last_modified[OTA_CFG_HTTP_VALIDATOR_MAX];
    char content_type[OTA_CFG_HTTP_CTYPE_MAX];
    char location[OTA_CFG_HTTP_URL_MAX];

    /* the I/O buffer: the request while it is sent, then what was received and not
     * consumed yet (io[io_off..io_len)) */
    uint16_t io_off, io_len, tx_len;
    uint8_t io[OTA_CFG_HTTP_BUF_SIZE];
} ota_http_t;

/** Bind the client to its tables: tcp for http:// (its recv/send/close, and
 *  connect_host, or connect for numeric addresses only), tls for https:// (NULL: no
 *  https, OTA_ERR_UNSUPPORTED). Borrowed.
 *  \return 0, OTA_ERR_INVALID_ARG (no tcp table, or one without recv/send/close). */
int ota_http_init(ota_http_t *h, const ota_tcp_port_t *tcp, const ota_tls_port_t *tls);

/** Start a GET (closing whatever the client did before): parse the URL, start the
 *  connection. The request goes out from ota_http_poll.
 *  \return 0; OTA_ERR_INVALID_ARG (NULL request or URL, If-Range with control
 *  characters), OTA_ERR_MALFORMED (not a URL), OTA_ERR_UNSUPPORTED (another scheme,
 *  https without a TLS table, a host name without connect_host, user info in the
 *  URL), OTA_ERR_TOO_LONG (URL, host, If-Range or user agent longer than the
 *  options allow, or the request does not fit OTA_CFG_HTTP_BUF_SIZE), or the port's
 *  connect error. */
int ota_http_get(ota_http_t *h, const ota_http_request_t *req, uint32_t now_ms);

/** Drive the exchange: send the request, read the answer's headers, follow
 *  redirects, watch the timeouts.
 *  \return OTA_ERR_WOULD_BLOCK (not there yet: call again), 0 (the final answer's
 *  headers are in: 200, or 206 to a Range; read the body), or an error (sticky; the
 *  connection is closed): OTA_ERR_HTTP_STATUS (any other final status: see
 *  ota_http_status), OTA_ERR_REDIRECT (too many redirects, one without Location, or
 *  to http from https), OTA_ERR_TIMEOUT, OTA_ERR_PROTOCOL (a 206 that does not match
 *  the Range asked, Content-Length with chunked, ...), OTA_ERR_MALFORMED (an answer
 *  that is not HTTP), OTA_ERR_TOO_LONG (a line or header block over the limits),
 *  OTA_ERR_UNSUPPORTED (a transfer or content coding other than chunked/identity),
 *  and the port's OTA_ERR_CLOSED, OTA_ERR_IO, OTA_ERR_RESOLVE, OTA_ERR_TLS.
 *  In the body phase it returns 0 until a timeout, OTA_ERR_WOULD_BLOCK never. */
int ota_http_poll(ota_http_t *h, uint32_t now_ms);

/** Read body bytes into buf (at most len; a body without chunks is received straight
 *  into buf, so ota_update_room's buffer takes it without a copy). A Content-Length
 *  body is complete (and its connection closed) as soon as its last byte is handed
 *  out; a chunked one only once its last chunk and trailers are read: a reader that
 *  has all the bytes it expects reads on (into any small buffer) until 0 here, and
 *  more bytes than expected are its error to report.
 *  \return the count (> 0), OTA_ERR_WOULD_BLOCK (none now; also before the headers
 *  are in), 0 (the body is complete: every Content-Length byte, the last chunk and
 *  trailers, or the close of a body without length), or an error: OTA_ERR_CLOSED
 *  (the connection ended early: a truncated body), OTA_ERR_MALFORMED (bad chunk
 *  framing), OTA_ERR_TOO_LONG, or the sticky error of ota_http_poll. */
int ota_http_read(ota_http_t *h, uint8_t *buf, size_t len);

/** A small body (a manifest) whole into buf[0..cap): call until it returns 0; *len
 *  (start it at 0) counts what is in. A NUL is written after the body when there is
 *  room (buf is then a C string, for cap > body length).
 *  \return OTA_ERR_WOULD_BLOCK, 0 (complete), OTA_ERR_TOO_LONG (more than cap bytes:
 *  the client is closed), or an error of ota_http_read. */
int ota_http_read_body(ota_http_t *h, uint8_t *buf, size_t cap, size_t *len);

/** Close the connection, keep the response's facts readable. Safe twice. */
void ota_http_close(ota_http_t *h);

/** The final status code (0 before the headers are in). After OTA_ERR_HTTP_STATUS it
 *  says which status it was (304, 404, 416, 500, ...). */
int ota_http_status(const ota_http_t *h);
/** Content-Length of the answer (of the part, for a 206), OTA_HTTP_UNKNOWN when the
 *  server gave none (chunked, or a body up to the close). */
uint64_t ota_http_content_length(const ota_http_t *h);
/** Where in the file the body starts: the first byte of Content-Range for a 206,
 *  0 for a 200 (also when a Range was asked: the server sends the whole file, and
 *  the caller must start over). */
uint64_t ota_http_range_start(const ota_http_t *h);
/** The size of the whole file: Content-Range's total for a 206 (OTA_HTTP_UNKNOWN for
 *  "*"), Content-Length for a 200 (OTA_HTTP_UNKNOWN without one). */
uint64_t ota_http_total_size(const ota_http_t *h);
/** The ETag as sent (quotes and a W/ prefix included), "" when none; Last-Modified
 *  the same. Validators longer than OTA_CFG_HTTP_VALIDATOR_MAX - 1 read as "". */
const char *ota_http_etag(const ota_http_t *h);
const char *ota_http_last_modified(const ota_http_t *h);
/** The media type of Content-Type, lowercase, without parameters ("" when none or
 *  too long). */
const char *ota_http_content_type(const ota_http_t *h);
/** The URL the answer came from (after redirects). */
const char *ota_http_url(const ota_http_t *h);
/** Resolve ref (e.g. a manifest's relative image path) against the URL of the last
 *  answer, ota_http_url(h) (RFC 3986 5.2: the base is where the document came from,
 *  after redirects) into out, a C string. Absolute references come back as they are;
 *  the result is checked when it is fetched.
 *  \return 0, OTA_ERR_TOO_LONG (does not fit cap), OTA_ERR_INVALID_ARG (no URL yet). */
int ota_http_resolve(const ota_http_t *h, const char *ref, char *out, size_t cap);
/** Redirects followed for the current request. */
unsigned ota_http_redirects(const ota_http_t *h);
/** Body bytes read so far. */
uint64_t ota_http_body_read(const ota_http_t *h);

#endif /* OTA_CFG_ENABLE_HTTP */

#endif /* OTA_HTTP_H */
