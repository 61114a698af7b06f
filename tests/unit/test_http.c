/*
 * test_http.c - the HTTP/1.1 client of the core (src/core/http.c) against a scripted
 * fake server: each connection the client opens gets the next scripted answer,
 * handed out in random small pieces with random "would block"s in between (a fixed
 * seed per test, so a failure repeats). The fake records what the client sent and
 * where it connected (host, port, TCP or TLS table).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include <mbedtls/md5.h>

#include "fake_port.h"
#include "ota/errors.h"
#include "ota/http.h"
#include "ota/update.h"

#define MAX_CONNS 8

typedef struct fconn {
    char host[300];
    uint16_t port;
    bool tls;
    bool closed;       /* the client closed it */
    char req[4096];    /* what the client sent */
    size_t req_len;
    const char *resp;  /* the scripted answer */
    size_t resp_len, off;
    bool hang;         /* after the answer: WOULD_BLOCK forever instead of a close */
} fconn_t;

typedef struct fake {
    const char *script[MAX_CONNS]; /* answer of the n-th connection (NULL: none) */
    size_t script_len[MAX_CONNS];  /* 0: strlen */
    bool hang[MAX_CONNS];
    fconn_t c[MAX_CONNS];
    int n;                /* connections opened */
    uint32_t rnd;
    size_t max_piece;     /* largest piece one recv hands out */
    int send_blocks;      /* sends answer WOULD_BLOCK this many times first (connecting) */
    bool never_connect;   /* every send blocks */
    int recv_error;       /* recv fails with this once the answer is out (0: CLOSED) */
    int connect_error;    /* connect_host fails with this */
    int numeric_connects; /* calls of the plain connect */
    ota_tcp_port_t tcp;
    ota_tls_port_t tls;
} fake_t;

static uint32_t rnd(fake_t *f)
{
    f->rnd = f->rnd * 1103515245u + 12345u;
    return (f->rnd >> 8) & 0xffffffu;
}

static int f_connect_any(fake_t *f, const char *host, uint16_t port, ota_conn_t *conn, bool tls)
{
    if (f->connect_error)
        return f->connect_error;
    if (f->n >= MAX_CONNS)
        return OTA_ERR_IO;
    fconn_t *c = &f->c[f->n];
    memset(c, 0, sizeof *c);
    snprintf(c->host, sizeof c->host, "%s", host);
    c->port = port;
    c->tls = tls;
    c->resp = f->script[f->n];
    c->resp_len = c->resp ? (f->script_len[f->n] ? f->script_len[f->n] : strlen(c->resp)) : 0;
    c->hang = f->hang[f->n];
    *conn = f->n++;
    return OTA_OK;
}

static int f_connect_host(void *ctx, const char *host, uint16_t port, ota_conn_t *conn)
{
    return f_connect_any(ctx, host, port, conn, false);
}

static int f_connect_ip(void *ctx, const char *ip, uint16_t port, ota_conn_t *conn)
{
    ((fake_t *)ctx)->numeric_connects++;
    return f_connect_any(ctx, ip, port, conn, false);
}

static int f_tls_connect(void *ctx, const char *host, uint16_t port, ota_conn_t *conn)
{
    return f_connect_any(ctx, host, port, conn, true);
}

static int f_recv(void *ctx, ota_conn_t conn, uint8_t *buf, size_t len)
{
    fake_t *f = ctx;
    fconn_t *c = &f->c[conn];
    assert_false(c->closed);
    if (rnd(f) % 3 == 0)
        return OTA_ERR_WOULD_BLOCK;
    if (c->off >= c->resp_len) {
        if (c->hang)
            return OTA_ERR_WOULD_BLOCK;
        return f->recv_error ? f->recv_error : OTA_ERR_CLOSED;
    }
    size_t n = 1 + rnd(f) % f->max_piece;
    if (n > len)
        n = len;
    if (n > c->resp_len - c->off)
        n = c->resp_len - c->off;
    memcpy(buf, c->resp + c->off, n);
    c->off += n;
    return (int)n;
}

static int f_send(void *ctx, ota_conn_t conn, const uint8_t *buf, size_t len)
{
    fake_t *f = ctx;
    fconn_t *c = &f->c[conn];
    assert_false(c->closed);
    if (f->never_connect)
        return OTA_ERR_WOULD_BLOCK;
    if (f->send_blocks > 0) {
        f->send_blocks--;
        return OTA_ERR_WOULD_BLOCK;
    }
    size_t n = 1 + rnd(f) % 64;
    if (n > len)
        n = len;
    assert_true(c->req_len + n < sizeof c->req);
    memcpy(c->req + c->req_len, buf, n);
    c->req_len += n;
    c->req[c->req_len] = '\0';
    return (int)n;
}

static void f_close(void *ctx, ota_conn_t conn)
{
    fake_t *f = ctx;
    assert_true(conn >= 0 && conn < f->n);
    assert_false(f->c[conn].closed); /* never twice */
    f->c[conn].closed = true;
}

static fake_t *fake_new(uint32_t seed)
{
    fake_t *f = calloc(1, sizeof *f);
    assert_non_null(f);
    f->rnd = seed;
    f->max_piece = 7;
    f->tcp = (ota_tcp_port_t){.recv = f_recv,
                              .send = f_send,
                              .close = f_close,
                              .connect = f_connect_ip,
                              .ctx = f,
                              .connect_host = f_connect_host};
    f->tls = (ota_tls_port_t){.connect_host = f_tls_connect,
                              .recv = f_recv,
                              .send = f_send,
                              .close = f_close,
                              .ctx = f};
    return f;
}

static ota_http_t *client(fake_t *f)
{
    ota_http_t *h = calloc(1, sizeof *h);
    assert_non_null(h);
    assert_int_equal(ota_http_init(h, &f->tcp, &f->tls), 0);
    return h;
}

/* Poll until the headers are in or the exchange failed; each round is 1 ms. */
static int wait_headers(ota_http_t *h, uint32_t *now)
{
    for (int i = 0; i < 200000; i++) {
        int rc = ota_http_poll(h, (*now)++);
        if (rc != OTA_ERR_WOULD_BLOCK)
            return rc;
    }
    fail_msg("the headers never came");
    return -1000;
}

/* Read the whole body (polling in between); returns 0 or the error. */
static int read_all(ota_http_t *h, uint32_t *now, uint8_t *out, size_t cap, size_t *len)
{
    *len = 0;
    for (int i = 0; i < 400000; i++) {
        uint8_t piece[100];
        size_t want = 1 + (size_t)(i * 7919) % sizeof piece;
        int rc = ota_http_read(h, piece, want);
        if (rc > 0) {
            assert_true((size_t)rc <= want);
            assert_true(*len + (size_t)rc <= cap);
            memcpy(out + *len, piece, (size_t)rc);
            *len += (size_t)rc;
            continue;
        }
        if (rc != OTA_ERR_WOULD_BLOCK)
            return rc;
        rc = ota_http_poll(h, (*now)++);
        if (rc != OTA_OK)
            return rc;
    }
    fail_msg("the body never ended");
    return -1000;
}

/* One GET of url; headers then body. \return what failed first (0: all well). */
static int fetch(ota_http_t *h, const char *url, uint64_t range, const char *if_range,
                 uint8_t *out, size_t cap, size_t *len)
{
    uint32_t now = 1000;
    ota_http_request_t req = {.url = url, .range_start = range, .if_range = if_range};
    int rc = ota_http_get(h, &req, now);
    if (rc != 0)
        return rc;
    rc = wait_headers(h, &now);
    *len = 0;
    if (rc != 0)
        return rc;
    return read_all(h, &now, out, cap, len);
}

static char *make_body(size_t n, unsigned seed)
{
    char *b = malloc(n + 1);
    assert_non_null(b);
    for (size_t i = 0; i < n; i++)
        b[i] = (char)('a' + (i * 31 + seed) % 26);
    b[n] = '\0';
    return b;
}

static char resp_buf[MAX_CONNS][70000];

/* A scripted answer: headers (lines joined with CRLF), then body bytes. */
static const char *answer(int slot, const char *head, const char *body, size_t body_len)
{
    size_t hn = strlen(head);
    assert_true(hn + body_len < sizeof resp_buf[slot]);
    memcpy(resp_buf[slot], head, hn);
    memcpy(resp_buf[slot] + hn, body, body_len);
    resp_buf[slot][hn + body_len] = '\0';
    return resp_buf[slot];
}

static void free_all(fake_t *f, ota_http_t *h)
{
    ota_http_close(h);
    for (int i = 0; i < f->n; i++)
        assert_true(f->c[i].closed); /* every connection the client opened is closed */
    free(h);
    free(f);
}

/* ------------------------------------------------------------------ bodies */

static void test_content_length(void **state)
{
    (void)state;
    fake_t *f = fake_new(1);
    char *body = make_body(5000, 3);
    char head[256];
    snprintf(head, sizeof head,
             "HTTP/1.1 200 OK\r\nServer: x\r\ncontent-LENGTH: 5000\r\nETag: \"abc-123\"\r\n"
             "Last-Modified: Tue, 01 Dec 2026 10:00:00 GMT\r\n"
             "Content-Type: Application/Octet-Stream; charset=binary\r\n\r\n");
    f->script[0] = answer(0, head, body, 5000);
    ota_http_t *h = client(f);
    static uint8_t out[70000];
    size_t n;
    assert_int_equal(fetch(h, "http://Example.com:8080/fw/a.bin?v=2#frag", 0, NULL, out,
                           sizeof out, &n), 0);
    assert_int_equal(n, 5000);
    assert_memory_equal(out, body, 5000);
    assert_int_equal(ota_http_status(h), 200);
    assert_true(ota_http_content_length(h) == 5000);
    assert_true(ota_http_total_size(h) == 5000);
    assert_true(ota_http_range_start(h) == 0);
    assert_true(ota_http_body_read(h) == 5000);
    assert_string_equal(ota_http_etag(h), "\"abc-123\"");
    assert_string_equal(ota_http_last_modified(h), "Tue, 01 Dec 2026 10:00:00 GMT");
    assert_string_equal(ota_http_content_type(h), "application/octet-stream");
    assert_int_equal(ota_http_read(h, out, 10), 0); /* the end stays the end */
    assert_int_equal(ota_http_poll(h, 5), 0);
    assert_string_equal(f->c[0].host, "Example.com");
    assert_int_equal(f->c[0].port, 8080);
    assert_false(f->c[0].tls);
    assert_true(f->c[0].closed); /* closed at the end of the body */
    assert_string_equal(f->c[0].req, "GET /fw/a.bin?v=2 HTTP/1.1\r\nHost: Example.com:8080\r\n"
                                     "User-Agent: ota-http\r\nAccept: */*\r\n"
                                     "Accept-Encoding: identity\r\nConnection: close\r\n\r\n");
    free(body);
    free_all(f, h);
}

static void test_empty_and_close_delimited(void **state)
{
    (void)state;
    fake_t *f = fake_new(2);
    f->script[0] = "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n";
    f->script[1] = "HTTP/1.0 200 OK\r\n\r\nall of it until the close";
    ota_http_t *h = client(f);
    static uint8_t out[1000];
    size_t n;
    assert_int_equal(fetch(h, "http://h/x", 0, NULL, out, sizeof out, &n), 0);
    assert_int_equal(n, 0);
    assert_int_equal(fetch(h, "http://h/x", 0, NULL, out, sizeof out, &n), 0);
    assert_int_equal(n, strlen("all of it until the close"));
    assert_memory_equal(out, "all of it until the close", n);
    assert_true(ota_http_content_length(h) == OTA_HTTP_UNKNOWN);
    free_all(f, h);
}

static void test_chunked(void **state)
{
    (void)state;
    fake_t *f = fake_new(3);
    f->script[0] = "HTTP/1.1 200 OK\r\nTransfer-Encoding: Chunked\r\n\r\n"
                   "5\r\nhello\r\n"
                   "0006;name=value;other=\"quoted\"\r\n world\r\n"
                   "A \r\n0123456789\r\n"
                   "1\n!\n" /* bare LF line ends are taken too */
                   "0\r\nX-Checksum: abc\r\nX-Other: d\r\n\r\n";
    ota_http_t *h = client(f);
    static uint8_t out[1000];
    size_t n;
    assert_int_equal(fetch(h, "http://h/x", 0, NULL, out, sizeof out, &n), 0);
    assert_int_equal(n, 22);
    assert_memory_equal(out, "hello world0123456789!", 22);
    assert_true(ota_http_content_length(h) == OTA_HTTP_UNKNOWN);
    free_all(f, h);
}

static void test_chunked_big(void **state)
{
    (void)state;
    fake_t *f = fake_new(4);
    f->max_piece = 3000;
    char *body = make_body(60000, 9);
    static char resp[70000];
    size_t len = (size_t)snprintf(resp, sizeof resp,
                                  "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n");
    size_t at = 0;
    unsigned k = 0;
    while (at < 60000) {
        size_t c = 1 + (k++ * 977) % 4000;
        if (c > 60000 - at)
            c = 60000 - at;
        len += (size_t)snprintf(resp + len, sizeof resp - len, "%zx\r\n", c);
        memcpy(resp + len, body + at, c);
        len += c;
        memcpy(resp + len, "\r\n", 2);
        len += 2;
        at += c;
    }
    len += (size_t)snprintf(resp + len, sizeof resp - len, "0\r\n\r\n");
    f->script[0] = resp;
    f->script_len[0] = len;
    ota_http_t *h = client(f);
    static uint8_t out[70000];
    size_t n;
    assert_int_equal(fetch(h, "http://h/x", 0, NULL, out, sizeof out, &n), 0);
    assert_int_equal(n, 60000);
    assert_memory_equal(out, body, 60000);
    free(body);
    free_all(f, h);
}

static void test_interim_answers(void **state)
{
    (void)state;
    fake_t *f = fake_new(5);
    f->script[0] = "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nLink: </x>\r\n\r\n"
                   "HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nabc";
    ota_http_t *h = client(f);
    uint8_t out[10];
    size_t n;
    assert_int_equal(fetch(h, "http://h/", 0, NULL, out, sizeof out, &n), 0);
    assert_int_equal(n, 3);
    assert_int_equal(ota_http_status(h), 200);
    free_all(f, h);
}

/* ------------------------------------------------------------------ ranges */

static void test_range_206(void **state)
{
    (void)state;
    fake_t *f = fake_new(6);
    char *body = make_body(1000, 1);
    f->script[0] = answer(0,
                          "HTTP/1.1 206 Partial Content\r\nContent-Range: bytes 3000-3999/4000\r\n"
                          "Content-Length: 1000\r\nETag: \"v1\"\r\n\r\n",
                          body, 1000);
    ota_http_t *h = client(f);
    static uint8_t out[2000];
    size_t n;
    assert_int_equal(fetch(h, "http://h/fw.bin", 3000, "\"v1\"", out, sizeof out, &n), 0);
    assert_int_equal(n, 1000);
    assert_memory_equal(out, body, 1000);
    assert_int_equal(ota_http_status(h), 206);
    assert_true(ota_http_range_start(h) == 3000);
    assert_true(ota_http_total_size(h) == 4000);
    assert_true(ota_http_content_length(h) == 1000);
    assert_non_null(strstr(f->c[0].req, "\r\nRange: bytes=3000-\r\nIf-Range: \"v1\"\r\n"));
    free(body);
    free_all(f, h);
}

static void test_range_answered_200(void **state)
{
    (void)state;
    fake_t *f = fake_new(7);
    char *body = make_body(4000, 2);
    f->script[0] = answer(0, "HTTP/1.1 200 OK\r\nContent-Length: 4000\r\nETag: \"v2\"\r\n\r\n",
                          body, 4000);
    ota_http_t *h = client(f);
    static uint8_t out[5000];
    size_t n;
    /* the file changed (If-Range did not match): the whole of it, from 0 */
    assert_int_equal(fetch(h, "http://h/fw.bin", 3000, "\"v1\"", out, sizeof out, &n), 0);
    assert_int_equal(ota_http_status(h), 200);
    assert_true(ota_http_range_start(h) == 0);
    assert_true(ota_http_total_size(h) == 4000);
    assert_string_equal(ota_http_etag(h), "\"v2\"");
    assert_int_equal(n, 4000);
    free(body);
    free_all(f, h);
}

static void test_range_bad_206(void **state)
{
    (void)state;
    static const struct {
        const char *resp;
        uint64_t range;
        int err;
    } cases[] = {
        /* a part we did not ask for */
        {"HTTP/1.1 206 P\r\nContent-Range: bytes 0-9/10\r\nContent-Length: 10\r\n\r\n", 5,
         OTA_ERR_PROTOCOL},
        /* no Range asked at all */
        {"HTTP/1.1 206 P\r\nContent-Range: bytes 0-9/10\r\nContent-Length: 10\r\n\r\n", 0,
         OTA_ERR_PROTOCOL},
        /* no Content-Range (e.g. multipart/byteranges) */
        {"HTTP/1.1 206 P\r\nContent-Type: multipart/byteranges; boundary=x\r\n\r\n", 5,
         OTA_ERR_PROTOCOL},
        /* length and range disagree */
        {"HTTP/1.1 206 P\r\nContent-Range: bytes 5-9/10\r\nContent-Length: 4\r\n\r\n", 5,
         OTA_ERR_PROTOCOL},
        /* last beyond the total, first after last, garbage, two ranges */
        {"HTTP/1.1 206 P\r\nContent-Range: bytes 5-10/10\r\n\r\n", 5, OTA_ERR_PROTOCOL},
        {"HTTP/1.1 206 P\r\nContent-Range: bytes 5-4/10\r\n\r\n", 5, OTA_ERR_PROTOCOL},
        {"HTTP/1.1 206 P\r\nContent-Range: bytes 5-x/10\r\n\r\n", 5, OTA_ERR_PROTOCOL},
        {"HTTP/1.1 206 P\r\nContent-Range: items 5-9/10\r\n\r\n", 5, OTA_ERR_PROTOCOL},
        {"HTTP/1.1 206 P\r\nContent-Range: bytes 5-9/10\r\nContent-Range: bytes 5-9/10\r\n\r\n",
         5, OTA_ERR_PROTOCOL},
        {"HTTP/1.1 206 P\r\nContent-Range: bytes 5-99999999999999999999999/*\r\n\r\n", 5,
         OTA_ERR_PROTOCOL},
        /* the file shrank below the offset */
        {"HTTP/1.1 416 Range Not Satisfiable\r\nContent-Range: bytes */3\r\n\r\n", 5,
         OTA_ERR_HTTP_STATUS},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        fake_t *f = fake_new(100 + (uint32_t)i);
        f->script[0] = cases[i].resp;
        f->hang[0] = true;
        ota_http_t *h = client(f);
        uint8_t out[100];
        size_t n;
        int rc = fetch(h, "http://h/x", cases[i].range, NULL, out, sizeof out, &n);
        if (rc != cases[i].err)
            fail_msg("case %zu: %d (%s), expected %d", i, rc, ota_strerror(rc), cases[i].err);
        free_all(f, h);
    }
    /* total unknown ("*") is fine */
    fake_t *f = fake_new(8);
    f->script[0] = "HTTP/1.1 206 P\r\nContent-Range: bytes 5-9/*\r\n\r\n56789";
    ota_http_t *h = client(f);
    uint8_t out[100];
    size_t n;
    assert_int_equal(fetch(h, "http://h/x", 5, NULL, out, sizeof out, &n), 0);
    assert_int_equal(n, 5);
    assert_true(ota_http_total_size(h) == OTA_HTTP_UNKNOWN);
    assert_true(ota_http_range_start(h) == 5);
    free_all(f, h);
}

/* ------------------------------------------------------------------ statuses */

static void test_error_statuses(void **state)
{
    (void)state;
    static const int statuses[] = {304, 404, 500, 204, 300, 403, 503};
    for (size_t i = 0; i < sizeof statuses / sizeof statuses[0]; i++) {
        fake_t *f = fake_new(200 + (uint32_t)i);
        char resp[128];
        snprintf(resp, sizeof resp, "HTTP/1.1 %d Whatever\r\nContent-Length: 5\r\n\r\nerror",
                 statuses[i]);
        f->script[0] = resp;
        ota_http_t *h = client(f);
        uint8_t out[100];
        size_t n;
        assert_int_equal(fetch(h, "http://h/x", 0, NULL, out, sizeof out, &n),
                         OTA_ERR_HTTP_STATUS);
        assert_int_equal(ota_http_status(h), statuses[i]);
        /* sticky */
        assert_int_equal(ota_http_poll(h, 1), OTA_ERR_HTTP_STATUS);
        assert_int_equal(ota_http_read(h, out, 10), OTA_ERR_HTTP_STATUS);
        assert_true(f->c[0].closed);
        free_all(f, h);
    }
}

/* ------------------------------------------------------------------ redirects */

static void test_redirects_resolved(void **state)
{
    (void)state;
    static const struct {
        const char *base, *location, *host, *req;
        uint16_t port;
    } cases[] = {
        {"http://a.example/d1/d2/fw.bin?x=1", "../other/fw2.bin", "a.example",
         "GET /d1/other/fw2.bin HTTP/1.1\r\nHost: a.example\r\n", 80},
        {"http://a.example/d1/fw.bin", "./x/./y/../z.bin?q#f", "a.example",
         "GET /d1/x/z.bin?q HTTP/1.1\r\n", 80},
        {"http://a.example:81/d1/fw.bin", "/abs/path", "a.example",
         "GET /abs/path HTTP/1.1\r\nHost: a.example:81\r\n", 81},
        {"http://a.example/d1/fw.bin?old", "?new=1", "a.example", "GET /d1/fw.bin?new=1 HTTP", 80},
        {"http://a.example/d1/fw.bin", "//cdn.example:8080/f", "cdn.example",
         "GET /f HTTP/1.1\r\nHost: cdn.example:8080\r\n", 8080},
        {"http://a.example/d1/fw.bin", "http://[::1]:9000/v6", "::1",
         "GET /v6 HTTP/1.1\r\nHost: [::1]:9000\r\n", 9000},
        {"http://a.example/d1/fw.bin", "https://secure.example/f", "secure.example",
         "GET /f HTTP/1.1\r\nHost: secure.example\r\n", 443},
        {"http://a.example", "fw.bin", "a.example", "GET /fw.bin HTTP", 80},
        {"http://a.example/a/b", "../../../../up", "a.example", "GET /up HTTP", 80},
        {"http://a.example/a/b/", "..", "a.example", "GET /a/ HTTP", 80},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        fake_t *f = fake_new(300 + (uint32_t)i);
        static const int codes[] = {301, 302, 303, 307, 308};
        char loc[300];
        snprintf(loc, sizeof loc, "HTTP/1.1 %d Moved\r\nLocation: %s\r\nContent-Length: 4\r\n"
                 "\r\nmove", codes[i % 5], cases[i].location);
        f->script[0] = loc;
        f->hang[0] = true; /* the redirect's connection is not read to its end */
        f->script[1] = "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok";
        ota_http_t *h = client(f);
        uint8_t out[100];
        size_t n;
        int rc = fetch(h, cases[i].base, 0, NULL, out, sizeof out, &n);
        if (rc != 0)
            fail_msg("case %zu: %s", i, ota_strerror(rc));
        assert_int_equal(f->n, 2);
        assert_true(f->c[0].closed);
        assert_string_equal(f->c[1].host, cases[i].host);
        assert_int_equal(f->c[1].port, cases[i].port);
        if (strncmp(f->c[1].req, cases[i].req, strlen(cases[i].req)) != 0)
            fail_msg("case %zu: sent %s", i, f->c[1].req);
        assert_int_equal(f->c[1].tls, strncmp(cases[i].location, "https:", 6) == 0);
        assert_int_equal(ota_http_redirects(h), 1);
        assert_memory_equal(out, "ok", 2);
        free_all(f, h);
    }
}

static void test_resolve_reference(void **state)
{
    (void)state;
    /* the base is the URL the answer came from: after the redirect */
    fake_t *f = fake_new(17);
    f->script[0] = "HTTP/1.1 302 F\r\nLocation: https://cdn.example/fw/v2/manifest.json\r\n\r\n";
    f->script[1] = "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}";
    ota_http_t *h = client(f);
    char out[OTA_CFG_HTTP_URL_MAX];
    assert_int_equal(ota_http_resolve(h, "x.bin", out, sizeof out), OTA_ERR_INVALID_ARG);
    uint8_t body[10];
    size_t n;
    assert_int_equal(fetch(h, "http://h/manifest.json", 0, NULL, body, sizeof body, &n), 0);
    static const struct {
        const char *ref, *want;
    } cases[] = {
        {"firmware.ota.bin", "https://cdn.example/fw/v2/firmware.ota.bin"},
        {"../v1/old.bin", "https://cdn.example/fw/v1/old.bin"},
        {"/root.bin", "https://cdn.example/root.bin"},
        {"//mirror.example/a.bin", "https://mirror.example/a.bin"},
        {"http://other.example/b.bin", "http://other.example/b.bin"},
        {"?v=3", "https://cdn.example/fw/v2/manifest.json?v=3"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        assert_int_equal(ota_http_resolve(h, cases[i].ref, out, sizeof out), 0);
        assert_string_equal(out, cases[i].want);
    }
    assert_int_equal(ota_http_resolve(h, "firmware.ota.bin", out, 20), OTA_ERR_TOO_LONG);
    free_all(f, h);
}

static void test_redirect_limit(void **state)
{
    (void)state;
    for (int hops = 3; hops <= 4; hops++) {
        fake_t *f = fake_new(400 + (uint32_t)hops);
        for (int i = 0; i < hops; i++)
            f->script[i] = "HTTP/1.1 302 Found\r\nLocation: /next\r\n\r\n";
        f->script[hops] = "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok";
        ota_http_t *h = client(f);
        uint8_t out[100];
        size_t n;
        int rc = fetch(h, "http://h/start", 0, NULL, out, sizeof out, &n);
        if (hops == 3) {
            assert_int_equal(rc, 0);
            assert_int_equal(ota_http_redirects(h), 3);
            assert_string_equal(ota_http_url(h), "http://h/next");
        } else {
            assert_int_equal(rc, OTA_ERR_REDIRECT);
            assert_int_equal(f->n, 4); /* the fourth redirect was not followed */
        }
        free_all(f, h);
    }
}

static void test_redirect_refused(void **state)
{
    (void)state;
    static const struct {
        const char *base, *resp;
        int err; /* 0: followed, over TLS */
    } cases[] = {
        {"https://s.example/fw", "HTTP/1.1 301 M\r\nLocation: http://s.example/fw\r\n\r\n",
         OTA_ERR_REDIRECT}, /* downgrade */
        {"https://s.example/fw", "HTTP/1.1 301 M\r\nLocation: //plain.example/fw\r\n\r\n",
         0}, /* a network-path reference keeps https */
        {"http://s.example/fw", "HTTP/1.1 302 M\r\n\r\n", OTA_ERR_REDIRECT}, /* no Location */
        {"http://s.example/fw", "HTTP/1.1 302 M\r\nLocation: ftp://x/y\r\n\r\n",
         OTA_ERR_REDIRECT},
        {"http://s.example/fw", "HTTP/1.1 302 M\r\nLocation: http://bad host/\r\n\r\n",
         OTA_ERR_REDIRECT},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        fake_t *f = fake_new(500 + (uint32_t)i);
        f->script[0] = cases[i].resp;
        f->hang[0] = true;
        f->script[1] = "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok";
        ota_http_t *h = client(f);
        uint8_t out[100];
        size_t n;
        int rc = fetch(h, cases[i].base, 0, NULL, out, sizeof out, &n);
        if (cases[i].err == 0) {
            assert_int_equal(rc, 0);
            assert_true(f->c[1].tls);
        } else {
            assert_int_equal(rc, cases[i].err);
            assert_int_equal(f->n, 1);
        }
        free_all(f, h);
    }
    /* a Location longer than the URL limit */
    fake_t *f = fake_new(9);
    static char resp[OTA_CFG_HTTP_URL_MAX + 200];
    int len = snprintf(resp, sizeof resp, "HTTP/1.1 302 M\r\nLocation: http://h/");
    while (len < OTA_CFG_HTTP_URL_MAX + 60)
        resp[len++] = 'a';
    snprintf(resp + len, sizeof resp - (size_t)len, "\r\n\r\n");
    f->script[0] = resp;
    f->hang[0] = true;
    ota_http_t *h = client(f);
    uint8_t out[100];
    size_t n;
    assert_int_equal(fetch(h, "http://h/x", 0, NULL, out, sizeof out, &n), OTA_ERR_TOO_LONG);
    free_all(f, h);
}

static void test_redirect_keeps_range(void **state)
{
    (void)state;
    fake_t *f = fake_new(10);
    f->script[0] = "HTTP/1.1 307 T\r\nLocation: http://mirror/fw\r\n\r\n";
    f->script[1] = "HTTP/1.1 206 P\r\nContent-Range: bytes 2-3/4\r\nContent-Length: 2\r\n\r\ncd";
    ota_http_t *h = client(f);
    uint8_t out[100];
    size_t n;
    assert_int_equal(fetch(h, "http://h/fw", 2, "\"e\"", out, sizeof out, &n), 0);
    assert_non_null(strstr(f->c[1].req, "Range: bytes=2-\r\nIf-Range: \"e\"\r\n"));
    assert_memory_equal(out, "cd", 2);
    free_all(f, h);
}

/* ------------------------------------------------------------------ timeouts */

static void test_connect_timeout(void **state)
{
    (void)state;
    fake_t *f = fake_new(11);
    f->never_connect = true;
    ota_http_t *h = client(f);
    uint32_t t0 = 0xFFFFF000u; /* the clock wraps during the wait */
    ota_http_request_t req = {.url = "http://h/x", .connect_timeout_ms = 5000};
    assert_int_equal(ota_http_get(h, &req, t0), 0);
    assert_int_equal(ota_http_poll(h, t0 + 4999), OTA_ERR_WOULD_BLOCK);
    assert_int_equal(ota_http_poll(h, t0 + 5000), OTA_ERR_TIMEOUT);
    assert_true(f->c[0].closed);
    free_all(f, h);
}

static void test_idle_timeout(void **state)
{
    (void)state;
    /* the answer never comes */
    fake_t *f = fake_new(12);
    f->script[0] = "HTTP/1.1 200 OK\r\n";
    f->hang[0] = true;
    ota_http_t *h = client(f);
    uint32_t now = 0xFFFFFF00u;
    ota_http_request_t req = {.url = "http://h/x", .idle_timeout_ms = 3000};
    assert_int_equal(ota_http_get(h, &req, now), 0);
    int rc;
    uint32_t start = now;
    while ((rc = ota_http_poll(h, now)) == OTA_ERR_WOULD_BLOCK)
        now += 10;
    assert_int_equal(rc, OTA_ERR_TIMEOUT);
    assert_true(now - start >= 3000 && now - start < 3300);
    free_all(f, h);

    /* silence in the middle of the body; a reader that stops reading is not idle */
    f = fake_new(13);
    f->script[0] = "HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nsome";
    f->hang[0] = true;
    h = client(f);
    now = 50;
    assert_int_equal(ota_http_get(h, &req, now), 0);
    assert_int_equal(wait_headers(h, &now), 0);
    for (int i = 0; i < 100; i++) /* no reads for a long time: no timeout */
        assert_int_equal(ota_http_poll(h, now += 1000), 0);
    uint8_t buf[100];
    size_t got = 0;
    start = now;
    for (;;) {
        rc = ota_http_read(h, buf + got, sizeof buf - got);
        if (rc > 0) {
            got += (size_t)rc;
            continue;
        }
        assert_int_equal(rc, OTA_ERR_WOULD_BLOCK);
        rc = ota_http_poll(h, now += 100);
        if (rc != 0)
            break;
    }
    assert_int_equal(rc, OTA_ERR_TIMEOUT);
    assert_int_equal(got, 4);
    assert_true(now - start <= 3200);
    assert_int_equal(ota_http_read(h, buf, 10), OTA_ERR_TIMEOUT);
    free_all(f, h);
}

/* ------------------------------------------------------------------ broken answers */

static void test_truncated(void **state)
{
    (void)state;
    static const char *const cases[] = {
        "HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\nonly a little",
        "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n10\r\nabc",
        "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n",
        "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n",
        "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\nX-T: 1\r\n",
        "HTTP/1.1 200 OK\r\nContent-Le",
        "",
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        fake_t *f = fake_new(600 + (uint32_t)i);
        f->script[0] = cases[i];
        ota_http_t *h = client(f);
        uint8_t out[2000];
        size_t n;
        int rc = fetch(h, "http://h/x", 0, NULL, out, sizeof out, &n);
        if (rc != OTA_ERR_CLOSED)
            fail_msg("case %zu: %d (%s)", i, rc, ota_strerror(rc));
        free_all(f, h);
    }
    /* the port's own errors come through as they are */
    fake_t *f = fake_new(14);
    f->script[0] = "HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc";
    f->recv_error = OTA_ERR_TLS;
    ota_http_t *h = client(f);
    uint8_t out[100];
    size_t n;
    assert_int_equal(fetch(h, "http://h/x", 0, NULL, out, sizeof out, &n), OTA_ERR_TLS);
    free_all(f, h);
}

static char long_resp[3][OTA_CFG_HTTP_HEADERS_MAX + 4096];

static void test_malformed(void **state)
{
    (void)state;
    /* a line longer than the buffer; a header block over the limit in small lines */
    int n0 = snprintf(long_resp[0], sizeof long_resp[0], "HTTP/1.1 200 OK\r\nX-Long: ");
    memset(long_resp[0] + n0, 'x', OTA_CFG_HTTP_BUF_SIZE);
    strcpy(long_resp[0] + n0 + OTA_CFG_HTTP_BUF_SIZE, "\r\n\r\n");
    size_t n1 = (size_t)snprintf(long_resp[1], sizeof long_resp[1], "HTTP/1.1 200 OK\r\n");
    while (n1 < OTA_CFG_HTTP_HEADERS_MAX + 100)
        n1 += (size_t)snprintf(long_resp[1] + n1, sizeof long_resp[1] - n1, "X-A: b\r\n");
    strcpy(long_resp[1] + n1, "\r\n");
    /* an overlong chunk-size line (extensions without end) */
    int n2 = snprintf(long_resp[2], sizeof long_resp[2],
                      "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5;ext=");
    memset(long_resp[2] + n2, 'e', OTA_CFG_HTTP_BUF_SIZE + 10);
    strcpy(long_resp[2] + n2 + OTA_CFG_HTTP_BUF_SIZE + 10, "\r\nhello\r\n0\r\n\r\n");
    static const struct {
        const char *resp;
        int err;
    } cases[] = {
        {"HTTP/2 200 OK\r\n\r\n", OTA_ERR_MALFORMED},
        {"HTTP/2.0 200 OK\r\n\r\n", OTA_ERR_MALFORMED},
        {"SSH-2.0-OpenSSH_9.2\r\n", OTA_ERR_MALFORMED},
        {"HTTP/1.1 20 OK\r\n\r\n", OTA_ERR_MALFORMED},
        {"HTTP/1.1 999 What\r\n\r\n", OTA_ERR_MALFORMED},
        {"HTTP/1.1 200OK\r\n\r\n", OTA_ERR_MALFORMED},
        {"HTTP/1.1 101 Switching Protocols\r\nUpgrade: h2c\r\n\r\n", OTA_ERR_PROTOCOL},
        {"HTTP/1.1 200 OK\r\nContent-Length: 3\r\n folded\r\n\r\nabc", OTA_ERR_MALFORMED},
        {"HTTP/1.1 200 OK\r\nContent-Length : 3\r\n\r\nabc", OTA_ERR_MALFORMED},
        {"HTTP/1.1 200 OK\r\n: empty name\r\n\r\n", OTA_ERR_MALFORMED},
        {"HTTP/1.1 200 OK\r\nNo colon here\r\n\r\n", OTA_ERR_MALFORMED},
        {"HTTP/1.1 200 OK\r\nX: a\rb\r\n\r\n", OTA_ERR_MALFORMED},
        {"HTTP/1.1 200 OK\r\nContent-Length: abc\r\n\r\n", OTA_ERR_MALFORMED},
        {"HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n", OTA_ERR_MALFORMED},
        {"HTTP/1.1 200 OK\r\nContent-Length: 1 2\r\n\r\n", OTA_ERR_MALFORMED},
        {"HTTP/1.1 200 OK\r\nContent-Length: 3, 3\r\n\r\n", OTA_ERR_MALFORMED},
        {"HTTP/1.1 200 OK\r\nContent-Length: \r\n\r\n", OTA_ERR_MALFORMED},
        {"HTTP/1.1 200 OK\r\nContent-Length: 18446744073709551616\r\n\r\n", OTA_ERR_MALFORMED},
        {"HTTP/1.1 200 OK\r\nContent-Length: 18446744073709551615\r\n\r\n", OTA_ERR_MALFORMED},
        {"HTTP/1.1 200 OK\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\nabcd",
         OTA_ERR_PROTOCOL},
        {"HTTP/1.1 200 OK\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc",
         OTA_ERR_PROTOCOL},
        {"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n3\r\nabc",
         OTA_ERR_PROTOCOL},
        {"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n",
         OTA_ERR_PROTOCOL},
        {"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n", OTA_ERR_UNSUPPORTED},
        {"HTTP/1.1 200 OK\r\nTransfer-Encoding: identity\r\n\r\n", OTA_ERR_UNSUPPORTED},
        {"HTTP/1.1 200 OK\r\nContent-Encoding: gzip\r\n\r\n", OTA_ERR_UNSUPPORTED},
        {"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n", OTA_ERR_MALFORMED},
        {"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n\r\n", OTA_ERR_MALFORMED},
        {"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n-5\r\n", OTA_ERR_MALFORMED},
        {"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5x\r\n", OTA_ERR_MALFORMED},
        {"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n10000000000000000\r\n",
         OTA_ERR_MALFORMED},
        {"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabcd\r\n0\r\n\r\n",
         OTA_ERR_MALFORMED},
        {"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n0\r\nbad trailer\r\n\r\n",
         OTA_ERR_MALFORMED},
        {"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\nX: \0\r\n\r\n",
         OTA_ERR_MALFORMED},
        {long_resp[0], OTA_ERR_TOO_LONG},
        {long_resp[1], OTA_ERR_TOO_LONG},
        {long_resp[2], OTA_ERR_TOO_LONG},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        fake_t *f = fake_new(700 + (uint32_t)i);
        f->max_piece = 200;
        f->script[0] = cases[i].resp;
        /* the NUL case: the whole literal */
        if (strstr(cases[i].resp, "X: ") != NULL && strstr(cases[i].resp, "0\r\nX: ") != NULL)
            f->script_len[0] = strlen(cases[i].resp) + 5;
        f->hang[0] = true;
        ota_http_t *h = client(f);
        static uint8_t out[1000];
        size_t n;
        int rc = fetch(h, "http://h/x", 0, NULL, out, sizeof out, &n);
        if (rc != cases[i].err)
            fail_msg("case %zu: %d (%s), expected %d (%s)", i, rc, ota_strerror(rc),
                     cases[i].err, ota_strerror(cases[i].err));
        assert_true(f->c[0].closed);
        free_all(f, h);
    }
}

/* ------------------------------------------------------------------ requests, URLs */

static void test_url_errors(void **state)
{
    (void)state;
    static char long_url[OTA_CFG_HTTP_URL_MAX + 10];
    memcpy(long_url, "http://h/", 9);
    memset(long_url + 9, 'a', sizeof long_url - 10);
    static char long_host[OTA_CFG_HTTP_HOST_MAX + 20];
    memcpy(long_host, "http://", 7);
    memset(long_host + 7, 'h', OTA_CFG_HTTP_HOST_MAX + 5);
    static const struct {
        const char *url;
        int err;
    } cases[] = {
        {"ftp://h/x", OTA_ERR_UNSUPPORTED},
        {"file:///etc/passwd", OTA_ERR_UNSUPPORTED},
        {"http//h/x", OTA_ERR_MALFORMED},
        {"http:/h/x", OTA_ERR_MALFORMED},
        {"http://", OTA_ERR_MALFORMED},
        {"http:///x", OTA_ERR_MALFORMED},
        {"://h/x", OTA_ERR_MALFORMED},
        {"h/x", OTA_ERR_MALFORMED},
        {"", OTA_ERR_MALFORMED},
        {"http://a b/x", OTA_ERR_MALFORMED},
        {"http://h/a b", OTA_ERR_MALFORMED},
        {"http://h/a\r\nX-Injected: 1", OTA_ERR_MALFORMED},
        {"http://h/\xc3\xa4", OTA_ERR_MALFORMED},
        {"http://user:pw@h/x", OTA_ERR_UNSUPPORTED},
        {"http://h:0/x", OTA_ERR_MALFORMED},
        {"http://h:65536/x", OTA_ERR_MALFORMED},
        {"http://h:8x/x", OTA_ERR_MALFORMED},
        {"http://h:000080/x", OTA_ERR_MALFORMED},
        {"http://[::1/x", OTA_ERR_MALFORMED},
        {"http://[]/x", OTA_ERR_MALFORMED},
        {"http://[fe80::1%25eth0]/x", OTA_ERR_MALFORMED},
        {"http://[1.2.3.4]/x", OTA_ERR_MALFORMED},
        {"http://[::1]x/y", OTA_ERR_MALFORMED},
        {"http://h!/x", OTA_ERR_MALFORMED},
        {long_url, OTA_ERR_TOO_LONG},
        {long_host, OTA_ERR_TOO_LONG},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        fake_t *f = fake_new(800);
        ota_http_t *h = client(f);
        ota_http_request_t req = {.url = cases[i].url};
        int rc = ota_http_get(h, &req, 0);
        if (rc != cases[i].err)
            fail_msg("case %zu (%s): %d (%s)", i, cases[i].url, rc, ota_strerror(rc));
        assert_int_equal(f->n, 0);
        assert_int_equal(ota_http_poll(h, 1), OTA_ERR_INVALID_ARG); /* nothing started */
        free_all(f, h);
    }
    /* header injection through the caller's strings */
    fake_t *f = fake_new(801);
    ota_http_t *h = client(f);
    ota_http_request_t req = {.url = "http://h/", .user_agent = "x\r\nEvil: 1"};
    assert_int_equal(ota_http_get(h, &req, 0), OTA_ERR_INVALID_ARG);
    req = (ota_http_request_t){.url = "http://h/", .range_start = 5, .if_range = "\"a\"\nB: c"};
    assert_int_equal(ota_http_get(h, &req, 0), OTA_ERR_INVALID_ARG);
    req = (ota_http_request_t){.url = NULL};
    assert_int_equal(ota_http_get(h, &req, 0), OTA_ERR_INVALID_ARG);
    assert_int_equal(ota_http_get(h, NULL, 0), OTA_ERR_INVALID_ARG);
    /* https without a TLS table */
    ota_http_t *plain = calloc(1, sizeof *plain);
    assert_int_equal(ota_http_init(plain, &f->tcp, NULL), 0);
    req = (ota_http_request_t){.url = "https://h/"};
    assert_int_equal(ota_http_get(plain, &req, 0), OTA_ERR_UNSUPPORTED);
    assert_int_equal(ota_http_init(plain, NULL, NULL), OTA_ERR_INVALID_ARG);
    free(plain);
    /* the port's connect error */
    f->connect_error = OTA_ERR_IO;
    req = (ota_http_request_t){.url = "http://h/"};
    assert_int_equal(ota_http_get(h, &req, 0), OTA_ERR_IO);
    free_all(f, h);
}

static void test_request_forms(void **state)
{
    (void)state;
    static const struct {
        const char *url, *host, *req;
        uint16_t port;
        bool tls;
    } cases[] = {
        {"http://h", "h", "GET / HTTP/1.1\r\nHost: h\r\n", 80, false},
        {"HTTP://h?q=1", "h", "GET /?q=1 HTTP/1.1\r\nHost: h\r\n", 80, false},
        {"http://h:80/x", "h", "GET /x HTTP/1.1\r\nHost: h\r\n", 80, false},
        {"http://h:/x", "h", "GET /x HTTP/1.1\r\nHost: h\r\n", 80, false},
        {"https://h/x", "h", "GET /x HTTP/1.1\r\nHost: h\r\n", 443, true},
        {"https://h:8443/x", "h", "GET /x HTTP/1.1\r\nHost: h:8443\r\n", 8443, true},
        {"http://[::1]/x", "::1", "GET /x HTTP/1.1\r\nHost: [::1]\r\n", 80, false},
        {"http://[2001:db8::7]:8080/x%20y", "2001:db8::7",
         "GET /x%20y HTTP/1.1\r\nHost: [2001:db8::7]:8080\r\n", 8080, false},
        {"http://10.0.0.1:81/", "10.0.0.1", "GET / HTTP/1.1\r\nHost: 10.0.0.1:81\r\n", 81, false},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        fake_t *f = fake_new(900 + (uint32_t)i);
        f->script[0] = "HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\n!";
        ota_http_t *h = client(f);
        uint8_t out[10];
        size_t n;
        assert_int_equal(fetch(h, cases[i].url, 0, NULL, out, sizeof out, &n), 0);
        assert_string_equal(f->c[0].host, cases[i].host);
        assert_int_equal(f->c[0].port, cases[i].port);
        assert_int_equal(f->c[0].tls, cases[i].tls);
        if (strncmp(f->c[0].req, cases[i].req, strlen(cases[i].req)) != 0)
            fail_msg("case %zu: sent %s", i, f->c[0].req);
        free_all(f, h);
    }
    /* a user agent of the caller's; a port without connect_host reaches numeric
     * addresses through connect, and no names */
    fake_t *f = fake_new(950);
    f->tcp.connect_host = NULL;
    f->script[0] = "HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\n!";
    ota_http_t *h = client(f);
    uint32_t now = 0;
    ota_http_request_t req = {.url = "http://192.168.1.20:8000/fw", .user_agent = "node/1.2"};
    assert_int_equal(ota_http_get(h, &req, now), 0);
    assert_int_equal(wait_headers(h, &now), 0);
    assert_int_equal(f->numeric_connects, 1);
    assert_non_null(strstr(f->c[0].req, "\r\nUser-Agent: node/1.2\r\n"));
    req.url = "http://name.example/fw";
    assert_int_equal(ota_http_get(h, &req, now), OTA_ERR_UNSUPPORTED);
    req.url = "http://1.2.3/fw"; /* not a dotted quad: a name */
    assert_int_equal(ota_http_get(h, &req, now), OTA_ERR_UNSUPPORTED);
    free_all(f, h);
}

static void test_connecting_then_sending(void **state)
{
    (void)state;
    /* sends block while the port connects: no request byte is lost, no timeout */
    fake_t *f = fake_new(15);
    f->send_blocks = 500;
    f->script[0] = "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok";
    ota_http_t *h = client(f);
    uint8_t out[10];
    size_t n;
    assert_int_equal(fetch(h, "http://h/x", 0, NULL, out, sizeof out, &n), 0);
    assert_int_equal(n, 2);
    assert_non_null(strstr(f->c[0].req, "GET /x HTTP/1.1\r\n"));
    free_all(f, h);
}

/* ------------------------------------------------------------------ small bodies */

static void test_read_body(void **state)
{
    (void)state;
    fake_t *f = fake_new(16);
    f->script[0] = "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                   "Transfer-Encoding: chunked\r\n\r\n4\r\n{\"a\"\r\n3\r\n:1}\r\n0\r\n\r\n";
    f->script[1] = "HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n";
    f->script[2] = "HTTP/1.1 200 OK\r\n\r\n0123456789abcdef";
    f->script[3] = "HTTP/1.1 200 OK\r\n\r\n0123456789";
    f->hang[1] = true;
    ota_http_t *h = client(f);
    uint32_t now = 0;
    char buf[16];
    size_t len = 0;
    ota_http_request_t req = {.url = "http://h/manifest.json"};
    assert_int_equal(ota_http_get(h, &req, now), 0);
    assert_int_equal(wait_headers(h, &now), 0);
    int rc;
    while ((rc = ota_http_read_body(h, (uint8_t *)buf, sizeof buf, &len)) == OTA_ERR_WOULD_BLOCK)
        assert_int_equal(ota_http_poll(h, now++), 0);
    assert_int_equal(rc, 0);
    assert_string_equal(buf, "{\"a\":1}");
    assert_string_equal(ota_http_content_type(h), "application/json");
    /* announced as too big: refused at once */
    assert_int_equal(ota_http_get(h, &req, now), 0);
    assert_int_equal(wait_headers(h, &now), 0);
    len = 0;
    assert_int_equal(ota_http_read_body(h, (uint8_t *)buf, sizeof buf, &len), OTA_ERR_TOO_LONG);
    assert_true(f->c[1].closed);
    /* too big without a length: found out when it overflows */
    assert_int_equal(ota_http_get(h, &req, now), 0);
    assert_int_equal(wait_headers(h, &now), 0);
    len = 0;
    while ((rc = ota_http_read_body(h, (uint8_t *)buf, 10, &len)) == OTA_ERR_WOULD_BLOCK)
        assert_int_equal(ota_http_poll(h, now++), 0);
    assert_int_equal(rc, OTA_ERR_TOO_LONG);
    /* exactly the buffer's size: fine (no room for the NUL then) */
    assert_int_equal(ota_http_get(h, &req, now), 0);
    assert_int_equal(wait_headers(h, &now), 0);
    len = 0;
    while ((rc = ota_http_read_body(h, (uint8_t *)buf, 10, &len)) == OTA_ERR_WOULD_BLOCK)
        assert_int_equal(ota_http_poll(h, now++), 0);
    assert_int_equal(rc, 0);
    assert_int_equal(len, 10);
    assert_memory_equal(buf, "0123456789", 10);
    free_all(f, h);
}

/* ------------------------------------------------------------------ into the pipeline */

/* A body streamed into the update pipeline the way the pull client does it: received
 * straight into ota_update_room's buffer, pumped, finished (MD5 checked). */
static void test_stream_into_update(void **state)
{
    (void)state;
    for (int chunked = 0; chunked < 2; chunked++) {
        enum { N = 50000 };
        char *body = make_body(N, 5);
        static char resp[N + 4096];
        size_t len;
        if (!chunked) {
            len = (size_t)snprintf(resp, sizeof resp,
                                   "HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n", N);
            memcpy(resp + len, body, N);
            len += N;
        } else {
            len = (size_t)snprintf(resp, sizeof resp,
                                   "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n");
            for (size_t at = 0; at < N; at += 7000) {
                size_t c = N - at < 7000 ? N - at : 7000;
                len += (size_t)snprintf(resp + len, sizeof resp - len, "%zx\r\n", c);
                memcpy(resp + len, body + at, c);
                len += c;
                memcpy(resp + len, "\r\n", 2);
                len += 2;
            }
            len += (size_t)snprintf(resp + len, sizeof resp - len, "0\r\n\r\n");
        }
        fake_t *f = fake_new(20 + (uint32_t)chunked);
        f->max_piece = 5000;
        f->script[0] = resp;
        f->script_len[0] = len;
        static fake_port_t fp;
        static ota_update_t up;
        fake_init(&fp, 1u << 20);
        fake_tables(&fp, FAKE_DEFAULT);
        fp.write_would_block_every_other = true; /* a slow store: the reader waits */
        assert_int_equal(ota_update_setup(&up, &fp.t.slot, NULL, &fp.t.crypto, NULL, NULL, NULL),
                         0);
        uint8_t md5[16];
        assert_int_equal(mbedtls_md5_ret((const uint8_t *)body, N, md5), 0);
        ota_http_t *h = client(f);
        uint32_t now = 0;
        ota_http_request_t req = {.url = "http://h/fw.bin"};
        assert_int_equal(ota_http_get(h, &req, now), 0);
        assert_int_equal(wait_headers(h, &now), 0);
        assert_int_equal(ota_update_lock(&up, 300), 0);
        /* the size comes from the manifest for a chunked body */
        assert_int_equal(ota_update_begin(&up, N, md5, 0), 0);
        bool end = false;
        for (int i = 0; i < 1000000 && !(end && ota_update_complete(&up)); i++) {
            uint8_t *room;
            size_t n = ota_update_room(&up, &room);
            if (!end && n > 0) {
                int got = ota_http_read(h, room, n);
                if (got > 0)
                    assert_int_equal(ota_update_received(&up, (size_t)got), 0);
                else if (got == 0)
                    end = true;
                else
                    assert_int_equal(got, OTA_ERR_WOULD_BLOCK);
            } else if (!end && up.received == N) {
                /* every byte the pipeline wants is in: the body must end here (the
                 * last chunk and trailers of a chunked body are still to be read) */
                uint8_t extra[16];
                int got = ota_http_read(h, extra, sizeof extra);
                assert_true(got == 0 || got == OTA_ERR_WOULD_BLOCK);
                end = got == 0;
            }
            int rc = ota_update_pump(&up);
            assert_true(rc == 0 || rc == OTA_ERR_WOULD_BLOCK);
            assert_int_equal(ota_http_poll(h, now++), 0);
        }
        assert_true(end);
        assert_int_equal(ota_update_finish(&up), 0);
        assert_true(fp.activated);
        assert_memory_equal(fp.slot, body, N);
        assert_true(ota_http_body_read(h) == N);
        ota_update_abort(&up, 300, 0);
        fake_free(&fp);
        free(body);
        free_all(f, h);
    }
}

static void test_strerror(void **state)
{
    (void)state;
    static const int codes[] = {OTA_ERR_HTTP_STATUS, OTA_ERR_REDIRECT, OTA_ERR_RESOLVE,
                                OTA_ERR_TLS};
    for (size_t i = 0; i < 4; i++)
        assert_string_not_equal(ota_strerror(codes[i]), "unknown error");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_content_length),
        cmocka_unit_test(test_empty_and_close_delimited),
        cmocka_unit_test(test_chunked),
        cmocka_unit_test(test_chunked_big),
        cmocka_unit_test(test_interim_answers),
        cmocka_unit_test(test_range_206),
        cmocka_unit_test(test_range_answered_200),
        cmocka_unit_test(test_range_bad_206),
        cmocka_unit_test(test_error_statuses),
        cmocka_unit_test(test_redirects_resolved),
        cmocka_unit_test(test_resolve_reference),
        cmocka_unit_test(test_redirect_limit),
        cmocka_unit_test(test_redirect_refused),
        cmocka_unit_test(test_redirect_keeps_range),
        cmocka_unit_test(test_connect_timeout),
        cmocka_unit_test(test_idle_timeout),
        cmocka_unit_test(test_truncated),
        cmocka_unit_test(test_malformed),
        cmocka_unit_test(test_url_errors),
        cmocka_unit_test(test_request_forms),
        cmocka_unit_test(test_connecting_then_sending),
        cmocka_unit_test(test_read_body),
        cmocka_unit_test(test_stream_into_update),
        cmocka_unit_test(test_strerror),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
