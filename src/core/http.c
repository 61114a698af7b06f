/*
 * http.c - the non-blocking HTTP/1.1 GET client of ota/http.h (docs/protocol.md#http-pull).
 *
 * One buffer (io) serves the whole exchange: the request is built in it and sent from
 * it, then the answer is received into it and parsed line by line in place; a body
 * without chunks (or a chunk's data) goes straight into the reader's buffer once io
 * is drained, so the update pipeline's room takes it without a copy.
 *
 * The parser is strict where leniency would let a hostile or broken server confuse
 * the framing (RFC 9112 6.3, 11.2: request smuggling, truncation): Content-Length and
 * Transfer-Encoding together, two different Content-Lengths, a transfer coding other
 * than "chunked", whitespace before a colon, obsolete line folding, control bytes,
 * numbers that do not fit 64 bits are all errors. It is lenient only where nothing
 * can go wrong: a bare LF ends a line like CRLF, the reason phrase may be missing.
 */
#include "ota/http.h"

#if OTA_CFG_ENABLE_HTTP

#include <string.h>

#include "ota/util.h"

#define FRAME_LENGTH 1  /* Content-Length bytes */
#define FRAME_CHUNKED 2 /* Transfer-Encoding: chunked */
#define FRAME_CLOSE 3   /* everything up to the close (no length given) */

#define CHUNK_SIZE 0     /* waiting for a chunk-size line */
#define CHUNK_DATA 1     /* remaining bytes of chunk data */
#define CHUNK_DATA_END 2 /* the CRLF after the data */
#define CHUNK_TRAILER 3  /* trailer fields up to the empty line */

#define LOC_NONE 0
#define LOC_OK 1
#define LOC_TOO_LONG 2

/* ------------------------------------------------------------------ helpers */

static char lower(char c)
{
    return (c >= 'A' && c <= 'Z') ? (char)(c - 'A' + 'a') : c;
}

/* s[0..n) equals the lowercase literal lit, ignoring case */
static bool ieq(const char *s, size_t n, const char *lit)
{
    size_t l = strlen(lit);
    if (n != l)
        return false;
    for (size_t i = 0; i < n; i++)
        if (lower(s[i]) != lit[i])
            return false;
    return true;
}

static bool is_digit(char c)
{
    return c >= '0' && c <= '9';
}

static bool is_alpha(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

static int hexval(char c)
{
    if (is_digit(c))
        return c - '0';
    c = lower(c);
    return (c >= 'a' && c <= 'f') ? c - 'a' + 10 : -1;
}

/* RFC 9110 5.6.2 token characters (header names) */
static bool is_tchar(char c)
{
    if (is_alpha(c) || is_digit(c))
        return true;
    return c != '\0' && memchr("!#$%&'*+-.^_`|~", c, 15) != NULL;
}

static bool is_ows(char c)
{
    return c == ' ' || c == '\t';
}

/* All of s[0..n) decimal digits, at least one, value below OTA_HTTP_UNKNOWN. */
static bool parse_dec(const char *s, size_t n, uint64_t *out)
{
    uint64_t v = 0;
    if (n == 0)
        return false;
    for (size_t i = 0; i < n; i++) {
        if (!is_digit(s[i]))
            return false;
        uint64_t d = (uint64_t)(s[i] - '0');
        if (v > (UINT64_MAX - 1 - d) / 10)
            return false; /* would overflow (or reach the "unknown" marker) */
        v = v * 10 + d;
    }
    *out = v;
    return true;
}

/* Text without control characters (a value the caller puts into a header line). */
static bool printable(const char *s, bool space_ok)
{
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c < 0x20 || c == 0x7f || (c == ' ' && !space_ok))
            return false;
    }
    return true;
}

/* Bounded appends into a buffer; *ok turns false for good once something did not fit. */
typedef struct out {
    char *p;
    size_t cap, len;
    bool ok;
} out_t;

static void out_mem(out_t *o, const char *s, size_t n)
{
    if (!o->ok || n > o->cap - o->len) {
        o->ok = false;
        return;
    }
    memcpy(o->p + o->len, s, n);
    o->len += n;
}

static void out_str(out_t *o, const char *s)
{
    out_mem(o, s, strlen(s));
}

static void out_u64(out_t *o, uint64_t v)
{
    char d[20];
    size_t n = 0;
    do {
        d[sizeof d - 1 - n++] = (char)('0' + v % 10);
        v /= 10;
    } while (v != 0);
    out_mem(o, d + sizeof d - n, n);
}

/* Copy s[0..n) as a C string into dst (cap bytes); "" when it does not fit. */
static void keep(char *dst, size_t cap, const char *s, size_t n)
{
    if (n >= cap)
        n = 0;
    memcpy(dst, s, n);
    dst[n] = '\0';
}

/* Length of the prefix of s without any of the characters in stop (strcspn, which
 * the core does not take from the C library). */
static size_t span_until(const char *s, const char *stop)
{
    size_t n = 0;
    while (s[n] != '\0' && memchr(stop, s[n], strlen(stop)) == NULL)
        n++;
    return n;
}

/* dotted-quad IPv4 (the only form the tcp table's plain connect is sure to take) */
static bool is_ipv4(const char *s)
{
    int parts = 0;
    while (parts < 4) {
        size_t n = 0;
        unsigned v = 0;
        while (is_digit(s[n]) && n < 3)
            v = v * 10 + (unsigned)(s[n++] - '0');
        if (n == 0 || v > 255)
            return false;
        s += n;
        parts++;
        if (parts < 4 && *s++ != '.')
            return false;
    }
    return *s == '\0';
}

/* ------------------------------------------------------------------ URLs */

/* Parse url (a C string) into h: url[], https, host, port, path_off. The fragment
 * is dropped (it is never sent). */
static int parse_url(ota_http_t *h, const char *url)
{
    size_t n = 0;
    while (url[n] != '\0' && url[n] != '#')
        n++;
    if (n >= sizeof h->url)
        return OTA_ERR_TOO_LONG;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)url[i];
        if (c <= 0x20 || c >= 0x7f) /* spaces, controls, non-ASCII: must be %-encoded */
            return OTA_ERR_MALFORMED;
    }
    size_t s = 0;
    while (s < n && (is_alpha(url[s]) || (s > 0 && (is_digit(url[s]) || url[s] == '+' ||
                                                    url[s] == '-' || url[s] == '.'))))
        s++;
    if (s == 0 || s >= n || url[s] != ':')
        return OTA_ERR_MALFORMED;
    bool https;
    if (ieq(url, s, "http"))
        https = false;
    else if (ieq(url, s, "https"))
        https = true;
    else
        return OTA_ERR_UNSUPPORTED;
    if (n < s + 3 || url[s + 1] != '/' || url[s + 2] != '/')
        return OTA_ERR_MALFORMED;
    size_t a = s + 3, e = a; /* authority: url[a..e) */
    while (e < n && url[e] != '/' && url[e] != '?')
        e++;
    if (memchr(url + a, '@', e - a) != NULL)
        return OTA_ERR_UNSUPPORTED; /* user info: credentials do not belong in a URL */
    size_t hs, he, p; /* host url[hs..he), then the port part from p */
    bool v6 = false;
    if (a < e && url[a] == '[') {
        const char *close = memchr(url + a, ']', e - a);
        if (close == NULL)
            return OTA_ERR_MALFORMED;
        hs = a + 1;
        he = (size_t)(close - url);
        bool colon = false;
        for (size_t i = hs; i < he; i++) {
            colon |= url[i] == ':';
            if (hexval(url[i]) < 0 && url[i] != ':' && url[i] != '.')
                return OTA_ERR_MALFORMED; /* zone identifiers are not supported either */
        }
        if (!colon)
            return OTA_ERR_MALFORMED;
        v6 = true;
        p = he + 1;
    } else {
        hs = a;
        he = a;
        while (he < e && url[he] != ':') {
            char c = url[he];
            if (!is_alpha(c) && !is_digit(c) && c != '-' && c != '.' && c != '_')
                return OTA_ERR_MALFORMED;
            he++;
        }
        p = he;
    }
    if (he == hs)
        return OTA_ERR_MALFORMED;
    if (he - hs >= sizeof h->host)
        return OTA_ERR_TOO_LONG;
    uint64_t port = https ? 443 : 80;
    if (p < e) {
        if (url[p] != ':')
            return OTA_ERR_MALFORMED;
        if (p + 1 < e && (!parse_dec(url + p + 1, e - p - 1, &port) || port == 0 ||
                          port > 65535 || e - p - 1 > 5))
            return OTA_ERR_MALFORMED;
    }
    /* all checked: commit */
    memmove(h->url, url, n); /* url may be h->io */
    h->url[n] = '\0';
    memcpy(h->host, h->url + hs, he - hs);
    h->host[he - hs] = '\0';
    h->host_v6 = v6;
    h->https = https;
    h->port = (uint16_t)port;
    h->path_off = (uint16_t)e;
    return OTA_OK;
}

/* RFC 3986 5.2.4 on the path p[0..n) (it starts with '/'), in place: the output is
 * never longer than what has been read. \return the new length. */
static size_t remove_dots(char *p, size_t n)
{
    size_t r = 0, w = 0;
    while (r < n) { /* p[r] == '/' */
        size_t s = r + 1, e = s;
        while (e < n && p[e] != '/')
            e++;
        bool last = e >= n;
        if (e - s == 1 && p[s] == '.') {
            if (last)
                p[w++] = '/';
        } else if (e - s == 2 && p[s] == '.' && p[s + 1] == '.') {
            while (w > 0 && p[w - 1] != '/')
                w--;
            if (w > 0)
                w--;
            if (last)
                p[w++] = '/';
        } else {
            memmove(p + w, p + r, e - r);
            w += e - r;
        }
        r = e;
    }
    if (w == 0)
        p[w++] = '/';
    return w;
}

/* The Location ref resolved against the current URL (RFC 3986 5.2) into out, a C
 * string. \return 0, OTA_ERR_TOO_LONG. */
static int resolve(const ota_http_t *h, const char *ref, char *out, size_t cap)
{
    out_t o = {out, cap - 1, 0, true};
    const char *base = h->url;
    size_t origin = h->path_off; /* scheme://authority */
    size_t i = 0;
    while (is_alpha(ref[i]) || (i > 0 && (is_digit(ref[i]) || ref[i] == '+' || ref[i] == '-' ||
                                          ref[i] == '.')))
        i++;
    size_t path_at = 0; /* where the path to clean starts in out (0: nothing to clean) */
    if (i > 0 && ref[i] == ':') {
        out_str(&o, ref); /* absolute */
    } else if (ref[0] == '/' && ref[1] == '/') {
        out_str(&o, h->https ? "https:" : "http:"); /* network-path reference */
        out_str(&o, ref);
    } else {
        out_mem(&o, base, origin);
        path_at = o.len;
        const char *bpath = base + origin; /* "", "/...", "?..." */
        size_t bq = span_until(bpath, "?"); /* the base path without its query */
        if (ref[0] == '/') {
            out_str(&o, ref);
        } else if (ref[0] == '?') {
            if (bq == 0)
                out_str(&o, "/");
            out_mem(&o, bpath, bq);
            out_str(&o, ref);
        } else if (ref[0] == '\0' || ref[0] == '#') {
            out_str(&o, bq == 0 ? "/" : "");
            out_str(&o, bpath);
        } else {
            size_t dir = bq;
            while (dir > 0 && bpath[dir - 1] != '/')
                dir--;
            if (dir == 0)
                out_str(&o, "/");
            out_mem(&o, bpath, dir);
            out_str(&o, ref);
        }
    }
    if (!o.ok)
        return OTA_ERR_TOO_LONG;
    out[o.len] = '\0';
    if (path_at > 0) {
        char *path = out + path_at;
        size_t pn = span_until(path, "?#");
        size_t tail = strlen(path + pn);
        size_t nn = remove_dots(path, pn);
        memmove(path + nn, path + pn, tail + 1);
    }
    return OTA_OK;
}

/* ------------------------------------------------------------------ connection */

static void close_conn(ota_http_t *h)
{
    if (h->conn >= 0 && h->close_fn != NULL)
        h->close_fn(h->io_ctx, h->conn);
    h->conn = -1;
}

static int fail(ota_http_t *h, int err)
{
    close_conn(h);
    h->state = OTA_HTTP_FAILED;
    h->err = err;
    return err;
}

static void reset_response(ota_http_t *h)
{
    h->status = 0;
    h->framing = 0;
    h->chunk_state = CHUNK_SIZE;
    h->have_length = h->have_te = h->have_range = h->bad_range = h->http10 = false;
    h->location_state = LOC_NONE;
    h->content_length = OTA_HTTP_UNKNOWN;
    h->remaining = 0;
    h->range_first = h->range_last = 0;
    h->range_total = OTA_HTTP_UNKNOWN;
    h->etag[0] = h->last_modified[0] = h->content_type[0] = h->location[0] = '\0';
}

/* The request for the current URL into io. \return 0, OTA_ERR_TOO_LONG. */
static int build_request(ota_http_t *h)
{
    out_t o = {(char *)h->io, sizeof h->io, 0, true};
    const char *path = h->url + h->path_off;
    out_str(&o, "GET ");
    if (path[0] != '/')
        out_str(&o, "/");
    out_str(&o, path);
    out_str(&o, " HTTP/1.1\r\nHost: ");
    if (h->host_v6)
        out_str(&o, "[");
    out_str(&o, h->host);
    if (h->host_v6)
        out_str(&o, "]");
    if (h->port != (h->https ? 443 : 80)) {
        out_str(&o, ":");
        out_u64(&o, h->port);
    }
    out_str(&o, "\r\nUser-Agent: ");
    out_str(&o, h->user_agent);
    /* identity: the bytes must be the file's, for its hashes and for Range offsets */
    out_str(&o, "\r\nAccept: */*\r\nAccept-Encoding: identity\r\nConnection: close\r\n");
    if (h->range_start > 0) {
        out_str(&o, "Range: bytes=");
        out_u64(&o, h->range_start);
        out_str(&o, "-\r\n");
        if (h->if_range[0] != '\0') {
            out_str(&o, "If-Range: ");
            out_str(&o, h->if_range);
            out_str(&o, "\r\n");
        }
    }
    out_str(&o, "\r\n");
    if (!o.ok)
        return OTA_ERR_TOO_LONG;
    h->tx_len = (uint16_t)o.len;
    return OTA_OK;
}

/* Connect to the current URL and prepare its request. */
static int start_conn(ota_http_t *h, uint32_t now_ms)
{
    int rc = build_request(h);
    if (rc != OTA_OK)
        return rc;
    int (*connect_fn)(void *, const char *, uint16_t, ota_conn_t *);
    if (h->https) {
        if (h->tls == NULL || h->tls->connect_host == NULL || h->tls->recv == NULL ||
            h->tls->send == NULL || h->tls->close == NULL)
            return OTA_ERR_UNSUPPORTED;
        connect_fn = h->tls->connect_host;
        h->recv_fn = h->tls->recv;
        h->send_fn = h->tls->send;
        h->close_fn = h->tls->close;
        h->io_ctx = h->tls->ctx;
    } else {
        connect_fn = h->tcp->connect_host;
        if (connect_fn == NULL) {
            /* a port without name resolution still reaches numeric addresses */
            if (h->tcp->connect == NULL || !(h->host_v6 || is_ipv4(h->host)))
                return OTA_ERR_UNSUPPORTED;
            connect_fn = h->tcp->connect;
        }
        h->recv_fn = h->tcp->recv;
        h->send_fn = h->tcp->send;
        h->close_fn = h->tcp->close;
        h->io_ctx = h->tcp->ctx;
    }
    ota_conn_t c = -1;
    rc = connect_fn(h->io_ctx, h->host, h->port, &c);
    if (rc != OTA_OK)
        return rc < 0 ? rc : OTA_ERR_IO;
    if (c < 0)
        return OTA_ERR_IO;
    h->conn = c;
    h->state = OTA_HTTP_CONNECTING;
    h->conn_start_ms = now_ms;
    h->last_ms = now_ms;
    h->starved = false;
    h->progress_seen = h->progress;
    h->io_off = 0;
    h->io_len = 0;
    h->header_bytes = 0;
    h->body_read = 0;
    reset_response(h);
    return OTA_OK;
}

int ota_http_init(ota_http_t *h, const ota_tcp_port_t *tcp, const ota_tls_port_t *tls)
{
    if (h == NULL)
        return OTA_ERR_INVALID_ARG;
    memset(h, 0, sizeof *h);
    h->conn = -1;
    h->content_length = OTA_HTTP_UNKNOWN;
    h->range_total = OTA_HTTP_UNKNOWN;
    if (tcp == NULL || tcp->recv == NULL || tcp->send == NULL || tcp->close == NULL)
        return OTA_ERR_INVALID_ARG;
    h->tcp = tcp;
    h->tls = tls;
    return OTA_OK;
}

int ota_http_get(ota_http_t *h, const ota_http_request_t *req, uint32_t now_ms)
{
    if (h == NULL || h->tcp == NULL || req == NULL || req->url == NULL)
        return OTA_ERR_INVALID_ARG;
    ota_http_close(h);
    h->state = OTA_HTTP_IDLE;
    h->err = 0;
    h->redirects = 0;
    reset_response(h);
    const char *ua = req->user_agent != NULL ? req->user_agent : "ota-http";
    const char *ir = (req->range_start > 0 && req->if_range != NULL) ? req->if_range : "";
    if (!printable(ua, true) || !printable(ir, true))
        return OTA_ERR_INVALID_ARG; /* a CR or LF would inject header lines */
    if (strlen(ua) >= sizeof h->user_agent || strlen(ir) >= sizeof h->if_range)
        return OTA_ERR_TOO_LONG;
    memcpy(h->user_agent, ua, strlen(ua) + 1);
    memcpy(h->if_range, ir, strlen(ir) + 1);
    h->range_start = req->range_start;
    h->connect_timeout_ms =
        req->connect_timeout_ms ? req->connect_timeout_ms : OTA_CFG_HTTP_CONNECT_TIMEOUT_MS;
    h->idle_timeout_ms = req->idle_timeout_ms ? req->idle_timeout_ms : OTA_CFG_HTTP_IDLE_TIMEOUT_MS;
    int rc = parse_url(h, req->url);
    if (rc != OTA_OK)
        return rc;
    return start_conn(h, now_ms);
}

void ota_http_close(ota_http_t *h)
{
    if (h == NULL)
        return;
    close_conn(h);
    if (h->state != OTA_HTTP_DONE && h->state != OTA_HTTP_FAILED)
        h->state = OTA_HTTP_IDLE;
}

/* ------------------------------------------------------------------ receiving */

/* More bytes into io. \return > 0, OTA_ERR_WOULD_BLOCK, or the port's error. */
static int recv_more(ota_http_t *h)
{
    if (h->io_off > 0) { /* compact: what is left moves to the front */
        memmove(h->io, h->io + h->io_off, (size_t)(h->io_len - h->io_off));
        h->io_len = (uint16_t)(h->io_len - h->io_off);
        h->io_off = 0;
    }
    if (h->io_len >= sizeof h->io)
        return OTA_ERR_TOO_LONG; /* a line longer than the buffer */
    int rc = h->recv_fn(h->io_ctx, h->conn, h->io + h->io_len, sizeof h->io - h->io_len);
    if (rc > 0) {
        if ((size_t)rc > sizeof h->io - h->io_len)
            return OTA_ERR_IO; /* the port broke its contract */
        h->io_len = (uint16_t)(h->io_len + rc);
        h->progress++;
        return rc;
    }
    if (rc == OTA_ERR_WOULD_BLOCK) {
        h->starved = true;
        return rc;
    }
    return rc < 0 ? rc : OTA_ERR_IO; /* 0 is no valid answer of recv */
}

/* The next line in io (its end, LF or CRLF, not included). counted: it belongs to a
 * header block (limit OTA_CFG_HTTP_HEADERS_MAX). \return 1 (a line), 0 (need more
 * bytes), OTA_ERR_MALFORMED (control bytes), OTA_ERR_TOO_LONG. */
static int take_line(ota_http_t *h, const char **line, size_t *len, bool counted)
{
    const uint8_t *p = h->io + h->io_off;
    size_t avail = (size_t)(h->io_len - h->io_off);
    const uint8_t *lf = memchr(p, '\n', avail);
    size_t used = lf != NULL ? (size_t)(lf - p) + 1 : avail;
    if (counted && h->header_bytes + used > OTA_CFG_HTTP_HEADERS_MAX)
        return OTA_ERR_TOO_LONG;
    if (lf == NULL)
        return 0;
    size_t n = used - 1;
    if (n > 0 && p[n - 1] == '\r')
        n--;
    for (size_t i = 0; i < n; i++)
        if ((p[i] < 0x20 && p[i] != '\t') || p[i] == 0x7f)
            return OTA_ERR_MALFORMED; /* a bare CR, NUL, ... */
    if (counted)
        h->header_bytes += (uint32_t)used;
    h->io_off = (uint16_t)(h->io_off + used);
    *line = (const char *)p;
    *len = n;
    return 1;
}

/* "bytes first-last/total"; total may be "*" (unknown). */
static bool parse_content_range(ota_http_t *h, const char *v, size_t n)
{
    if (n < 6 || !ieq(v, 5, "bytes") || v[5] != ' ')
        return false;
    size_t i = 6;
    while (i < n && v[i] == ' ')
        i++;
    const char *dash = memchr(v + i, '-', n - i);
    const char *slash = memchr(v + i, '/', n - i);
    if (dash == NULL || slash == NULL || dash > slash)
        return false;
    size_t d = (size_t)(dash - v), s = (size_t)(slash - v);
    uint64_t first, last, total = OTA_HTTP_UNKNOWN;
    if (!parse_dec(v + i, d - i, &first) || !parse_dec(v + d + 1, s - d - 1, &last))
        return false;
    if (!(s + 2 == n && v[s + 1] == '*') && !parse_dec(v + s + 1, n - s - 1, &total))
        return false;
    if (first > last || (total != OTA_HTTP_UNKNOWN && last >= total))
        return false;
    h->range_first = first;
    h->range_last = last;
    h->range_total = total;
    return true;
}

/* One header field line (not empty). */
static int header_line(ota_http_t *h, const char *l, size_t n)
{
    size_t c = 0;
    while (c < n && is_tchar(l[c]))
        c++;
    if (c == 0 || c >= n || l[c] != ':')
        return OTA_ERR_MALFORMED; /* also: obs-fold, whitespace before the colon */
    size_t vs = c + 1, ve = n;
    while (vs < ve && is_ows(l[vs]))
        vs++;
    while (ve > vs && is_ows(l[ve - 1]))
        ve--;
    const char *v = l + vs;
    size_t vn = ve - vs;
    if (ieq(l, c, "content-length")) {
        uint64_t len;
        if (!parse_dec(v, vn, &len))
            return OTA_ERR_MALFORMED;
        if (h->have_length && len != h->content_length)
            return OTA_ERR_PROTOCOL; /* two lengths: which one frames the body? */
        h->have_length = true;
        h->content_length = len;
    } else if (ieq(l, c, "transfer-encoding")) {
        if (h->have_te)
            return OTA_ERR_PROTOCOL; /* chunked twice, or chunked plus another coding */
        if (!ieq(v, vn, "chunked"))
            return OTA_ERR_UNSUPPORTED;
        h->have_te = true;
    } else if (ieq(l, c, "content-encoding")) {
        if (!ieq(v, vn, "identity"))
            return OTA_ERR_UNSUPPORTED; /* we asked for identity: hashes need the bytes */
    } else if (ieq(l, c, "location")) {
        if (vn >= sizeof h->location) {
            h->location_state = LOC_TOO_LONG;
        } else {
            memcpy(h->location, v, vn);
            h->location[vn] = '\0';
            h->location_state = LOC_OK;
        }
    } else if (ieq(l, c, "etag")) {
        keep(h->etag, sizeof h->etag, v, vn);
    } else if (ieq(l, c, "last-modified")) {
        keep(h->last_modified, sizeof h->last_modified, v, vn);
    } else if (ieq(l, c, "content-type")) {
        size_t t = 0;
        while (t < vn && v[t] != ';' && !is_ows(v[t]))
            t++;
        keep(h->content_type, sizeof h->content_type, v, t);
        for (char *p = h->content_type; *p; p++)
            *p = lower(*p);
    } else if (ieq(l, c, "content-range")) {
        if (h->have_range || h->bad_range || !parse_content_range(h, v, vn))
            h->bad_range = true;
        else
            h->have_range = true;
    }
    return OTA_OK;
}

/* "HTTP/1.x 200 reason" */
static int status_line(ota_http_t *h, const char *l, size_t n)
{
    if (n < 12 || memcmp(l, "HTTP/1.", 7) != 0 || !is_digit(l[7]) || l[8] != ' ' ||
        !is_digit(l[9]) || !is_digit(l[10]) || !is_digit(l[11]) || (n > 12 && l[12] != ' '))
        return OTA_ERR_MALFORMED;
    int st = (l[9] - '0') * 100 + (l[10] - '0') * 10 + (l[11] - '0');
    if (st < 100 || st > 599)
        return OTA_ERR_MALFORMED;
    h->status = (uint16_t)st;
    h->http10 = l[7] == '0';
    return OTA_OK;
}

static bool is_redirect(int st)
{
    return st == 301 || st == 302 || st == 303 || st == 307 || st == 308;
}

static int follow_redirect(ota_http_t *h, uint32_t now_ms)
{
    if (h->location_state == LOC_TOO_LONG)
        return OTA_ERR_TOO_LONG;
    if (h->location_state != LOC_OK || h->location[0] == '\0')
        return OTA_ERR_REDIRECT;
    if (h->redirects >= OTA_CFG_HTTP_MAX_REDIRECTS)
        return OTA_ERR_REDIRECT;
    close_conn(h);
    /* io is free now (the rest of this answer is dropped with its connection) */
    char *next = (char *)h->io;
    int rc = resolve(h, h->location, next, sizeof h->io);
    if (rc != OTA_OK)
        return rc;
    bool was_https = h->https;
    rc = parse_url(h, next);
    if (rc != OTA_OK)
        return rc == OTA_ERR_TOO_LONG ? rc : OTA_ERR_REDIRECT;
    if (was_https && !h->https)
        return OTA_ERR_REDIRECT; /* a downgrade would drop the server's authentication */
    h->redirects++;
    return start_conn(h, now_ms);
}

/* The header block is complete: decide what the answer means. \return 0 (body
 * follows), OTA_ERR_WOULD_BLOCK (an interim answer or a redirect: keep polling), or
 * an error. */
static int headers_done(ota_http_t *h, uint32_t now_ms)
{
    int st = h->status;
    if (st >= 100 && st < 200) {
        if (st == 101)
            return OTA_ERR_PROTOCOL; /* we asked for no upgrade */
        reset_response(h); /* 100, 103: the real answer follows */
        return OTA_ERR_WOULD_BLOCK;
    }
    if (h->have_te && h->have_length)
        return OTA_ERR_PROTOCOL; /* RFC 9112 6.1: a smuggling vector; refuse it */
    if (is_redirect(st)) {
        int rc = follow_redirect(h, now_ms);
        return rc == OTA_OK ? OTA_ERR_WOULD_BLOCK : rc;
    }
    if (st == 206) {
        if (h->range_start == 0 || !h->have_range || h->bad_range ||
            h->range_first != h->range_start)
            return OTA_ERR_PROTOCOL; /* not the part we asked for (or multipart) */
        if (h->have_length && h->content_length != h->range_last - h->range_first + 1)
            return OTA_ERR_PROTOCOL;
    } else if (st != 200) {
        return OTA_ERR_HTTP_STATUS;
    }
    if (h->have_te) {
        h->framing = FRAME_CHUNKED;
        h->chunk_state = CHUNK_SIZE;
    } else if (h->have_length) {
        h->framing = FRAME_LENGTH;
        h->remaining = h->content_length;
    } else {
        h->framing = FRAME_CLOSE;
        h->remaining = UINT64_MAX;
    }
    h->state = OTA_HTTP_BODY;
    return OTA_OK;
}

static int read_headers(ota_http_t *h, uint32_t now_ms)
{
    for (;;) {
        const char *l;
        size_t n;
        int rc = take_line(h, &l, &n, true);
        if (rc == 0) {
            rc = recv_more(h);
            if (rc < 0)
                return rc; /* CLOSED: no (complete) answer */
            continue;
        }
        if (rc < 0)
            return rc;
        if (h->status == 0) {
            rc = status_line(h, l, n);
        } else if (n == 0) {
            rc = headers_done(h, now_ms);
            if (rc == OTA_ERR_WOULD_BLOCK && h->state != OTA_HTTP_HEADERS)
                return rc; /* redirected: a new connection */
            if (rc == OTA_ERR_WOULD_BLOCK)
                continue; /* interim answer: the next one follows */
            return rc;
        } else {
            rc = header_line(h, l, n);
        }
        if (rc != OTA_OK)
            return rc;
    }
}

/* Idle and connect timeouts, once the poll's I/O is done. */
static int check_timers(ota_http_t *h, uint32_t now_ms)
{
    if (h->state == OTA_HTTP_CONNECTING) {
        if (ota_elapsed_ms(now_ms, h->conn_start_ms) >= h->connect_timeout_ms)
            return fail(h, OTA_ERR_TIMEOUT);
        return OTA_OK;
    }
    /* only time spent waiting in vain counts: a reader that did not try to read
     * since the last poll (its store is busy) is not idle */
    if (h->progress != h->progress_seen || !h->starved) {
        h->progress_seen = h->progress;
        h->last_ms = now_ms;
    } else if (ota_elapsed_ms(now_ms, h->last_ms) >= h->idle_timeout_ms) {
        return fail(h, OTA_ERR_TIMEOUT);
    }
    h->starved = false;
    return OTA_OK;
}

int ota_http_poll(ota_http_t *h, uint32_t now_ms)
{
    if (h == NULL)
        return OTA_ERR_INVALID_ARG;
    switch (h->state) {
    case OTA_HTTP_IDLE:
        return OTA_ERR_INVALID_ARG;
    case OTA_HTTP_FAILED:
        return h->err;
    case OTA_HTTP_DONE:
        return OTA_OK;
    case OTA_HTTP_BODY: {
        int rc = check_timers(h, now_ms);
        return rc;
    }
    default:
        break;
    }
    int rc = OTA_ERR_WOULD_BLOCK;
    while (h->state == OTA_HTTP_CONNECTING || h->state == OTA_HTTP_SENDING) {
        rc = h->send_fn(h->io_ctx, h->conn, h->io + h->io_off, (size_t)(h->tx_len - h->io_off));
        if (rc == OTA_ERR_WOULD_BLOCK) {
            if (h->state == OTA_HTTP_SENDING)
                h->starved = true;
            break;
        }
        if (rc <= 0 || (size_t)rc > (size_t)(h->tx_len - h->io_off))
            return fail(h, rc < 0 ? rc : OTA_ERR_IO);
        if (h->state == OTA_HTTP_CONNECTING) { /* connected: the idle clock takes over */
            h->state = OTA_HTTP_SENDING;
            h->last_ms = now_ms;
            h->starved = false;
        }
        h->progress++;
        h->io_off = (uint16_t)(h->io_off + rc);
        if (h->io_off == h->tx_len) {
            h->state = OTA_HTTP_HEADERS;
            h->io_off = h->io_len = 0;
        }
    }
    if (h->state == OTA_HTTP_HEADERS) {
        rc = read_headers(h, now_ms);
        if (rc != OTA_OK && rc != OTA_ERR_WOULD_BLOCK)
            return fail(h, rc);
    }
    int trc = check_timers(h, now_ms);
    if (trc != OTA_OK)
        return trc;
    return h->state == OTA_HTTP_BODY ? OTA_OK : OTA_ERR_WOULD_BLOCK;
}

/* ------------------------------------------------------------------ the body */

static void body_done(ota_http_t *h)
{
    close_conn(h);
    h->state = OTA_HTTP_DONE;
}

/* chunk-size [ BWS ; ext ... ] */
static int chunk_size_line(ota_http_t *h, const char *l, size_t n)
{
    uint64_t v = 0;
    size_t i = 0;
    while (i < n && hexval(l[i]) >= 0) {
        if (v >> 60)
            return OTA_ERR_MALFORMED; /* more than 64 bits */
        v = (v << 4) | (uint64_t)hexval(l[i]);
        i++;
    }
    if (i == 0)
        return OTA_ERR_MALFORMED;
    while (i < n && is_ows(l[i]))
        i++;
    if (i < n && l[i] != ';')
        return OTA_ERR_MALFORMED; /* extensions (ignored) follow a ';' */
    h->remaining = v;
    if (v == 0) {
        h->chunk_state = CHUNK_TRAILER;
        h->header_bytes = 0; /* the trailer block has its own limit */
    } else {
        h->chunk_state = CHUNK_DATA;
    }
    return OTA_OK;
}

/* Chunk framing up to the next data (or the end). \return 1 (data may be read),
 * 0 (the body ended), OTA_ERR_WOULD_BLOCK, or an error. */
static int chunk_framing(ota_http_t *h)
{
    while (h->chunk_state != CHUNK_DATA) {
        const char *l;
        size_t n;
        int rc = take_line(h, &l, &n, h->chunk_state == CHUNK_TRAILER);
        if (rc == 0) {
            rc = recv_more(h);
            if (rc < 0)
                return rc; /* CLOSED: truncated */
            continue;
        }
        if (rc < 0)
            return rc;
        if (h->chunk_state == CHUNK_SIZE) {
            rc = chunk_size_line(h, l, n);
            if (rc != OTA_OK)
                return rc;
        } else if (h->chunk_state == CHUNK_DATA_END) {
            if (n != 0)
                return OTA_ERR_MALFORMED; /* data longer than its size */
            h->chunk_state = CHUNK_SIZE;
        } else { /* trailer fields: checked for form, then ignored */
            if (n == 0)
                return 0;
            size_t c = 0;
            while (c < n && is_tchar(l[c]))
                c++;
            if (c == 0 || c >= n || l[c] != ':')
                return OTA_ERR_MALFORMED;
        }
    }
    return 1;
}

int ota_http_read(ota_http_t *h, uint8_t *buf, size_t len)
{
    if (h == NULL || buf == NULL || len == 0)
        return OTA_ERR_INVALID_ARG;
    if (h->state == OTA_HTTP_FAILED)
        return h->err;
    if (h->state == OTA_HTTP_DONE)
        return 0;
    if (h->state != OTA_HTTP_BODY)
        return h->state == OTA_HTTP_IDLE ? OTA_ERR_INVALID_ARG : OTA_ERR_WOULD_BLOCK;
    if (len > 0x40000000u)
        len = 0x40000000u; /* the count must fit the int result */
    size_t got = 0;
    int rc = OTA_OK;
    while (got < len) {
        if (h->framing == FRAME_CHUNKED && h->chunk_state != CHUNK_DATA) {
            rc = chunk_framing(h);
            if (rc == 0) {
                body_done(h);
                break;
            }
            if (rc < 0)
                break;
        }
        if (h->remaining == 0) {
            if (h->framing == FRAME_CHUNKED) {
                h->chunk_state = CHUNK_DATA_END;
                continue;
            }
            body_done(h); /* every Content-Length byte is in */
            break;
        }
        size_t want = len - got;
        if (want > h->remaining)
            want = (size_t)h->remaining;
        size_t avail = (size_t)(h->io_len - h->io_off);
        if (avail > 0) {
            size_t n = want < avail ? want : avail;
            memcpy(buf + got, h->io + h->io_off, n);
            h->io_off = (uint16_t)(h->io_off + n);
            got += n;
            h->remaining -= n;
            continue;
        }
        h->io_off = h->io_len = 0;
        rc = h->recv_fn(h->io_ctx, h->conn, buf + got, want);
        if (rc > 0) {
            if ((size_t)rc > want) {
                rc = OTA_ERR_IO;
                break;
            }
            h->progress++;
            got += (size_t)rc;
            h->remaining -= (uint64_t)rc;
            continue;
        }
        if (rc == OTA_ERR_WOULD_BLOCK) {
            h->starved = true;
            break;
        }
        if (rc == OTA_ERR_CLOSED && h->framing == FRAME_CLOSE) {
            body_done(h); /* a body without length ends with the connection */
            rc = OTA_OK;
            break;
        }
        if (rc == 0)
            rc = OTA_ERR_IO;
        break; /* CLOSED before the end: truncated */
    }
    if (h->framing == FRAME_CLOSE && h->state == OTA_HTTP_BODY)
        h->remaining = UINT64_MAX; /* "unlimited" stays so */
    if (h->framing == FRAME_LENGTH && h->state == OTA_HTTP_BODY && h->remaining == 0 && rc >= 0)
        body_done(h); /* the last byte is out: done now, not at the next call */
    h->body_read += got;
    if (rc < 0 && rc != OTA_ERR_WOULD_BLOCK) {
        fail(h, rc);
        if (got == 0)
            return rc;
    }
    if (got > 0)
        return (int)got;
    if (h->state == OTA_HTTP_DONE)
        return 0;
    return OTA_ERR_WOULD_BLOCK;
}

int ota_http_read_body(ota_http_t *h, uint8_t *buf, size_t cap, size_t *len)
{
    if (h == NULL || buf == NULL || len == NULL || *len > cap)
        return OTA_ERR_INVALID_ARG;
    if (h->state == OTA_HTTP_BODY && h->content_length != OTA_HTTP_UNKNOWN &&
        h->content_length > cap) {
        close_conn(h);
        return fail(h, OTA_ERR_TOO_LONG); /* known to be too big: do not even start */
    }
    for (;;) {
        int rc;
        if (*len < cap) {
            rc = ota_http_read(h, buf + *len, cap - *len);
        } else {
            uint8_t probe; /* full: one more byte means it is too big */
            rc = ota_http_read(h, &probe, 1);
            if (rc > 0)
                return fail(h, OTA_ERR_TOO_LONG);
        }
        if (rc > 0) {
            *len += (size_t)rc;
            continue;
        }
        if (rc == 0 && *len < cap)
            buf[*len] = 0;
        return rc;
    }
}

/* ------------------------------------------------------------------ accessors */

int ota_http_status(const ota_http_t *h)
{
    return h->status;
}

uint64_t ota_http_content_length(const ota_http_t *h)
{
    return h->have_length ? h->content_length : OTA_HTTP_UNKNOWN;
}

uint64_t ota_http_range_start(const ota_http_t *h)
{
    return h->status == 206 ? h->range_first : 0;
}

uint64_t ota_http_total_size(const ota_http_t *h)
{
    if (h->status == 206)
        return h->range_total;
    return h->have_length ? h->content_length : OTA_HTTP_UNKNOWN;
}

const char *ota_http_etag(const ota_http_t *h)
{
    return h->etag;
}

const char *ota_http_last_modified(const ota_http_t *h)
{
    return h->last_modified;
}

const char *ota_http_content_type(const ota_http_t *h)
{
    return h->content_type;
}

const char *ota_http_url(const ota_http_t *h)
{
    return h->url;
}

int ota_http_resolve(const ota_http_t *h, const char *ref, char *out, size_t cap)
{
    if (h == NULL || ref == NULL || out == NULL || cap == 0 || h->url[0] == '\0')
        return OTA_ERR_INVALID_ARG;
    return resolve(h, ref, out, cap);
}

unsigned ota_http_redirects(const ota_http_t *h)
{
    return h->redirects;
}

uint64_t ota_http_body_read(const ota_http_t *h)
{
    return h->body_read;
}

#else  /* OTA_CFG_ENABLE_HTTP */
typedef int ota_http_compiled_out_t; /* ISO C wants something in a translation unit */
#endif /* OTA_CFG_ENABLE_HTTP */
