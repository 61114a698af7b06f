/*
 * fuzz_http.c - libFuzzer target for the HTTP client (src/core/http.c).
 *
 * The input is split at each "\n~~\n": the first part is the request (its first byte
 * picks the piece sizes the fake network hands out and whether a Range is asked,
 * the rest is the URL; empty: "http://h/x"), every further part is what the server
 * answers on the next connection the client opens (so redirects are followed into
 * fuzzed answers too). After its answer a connection reads as closed.
 *
 * Checked: the client ends (a result other than WOULD_BLOCK) within a bound set by
 * the input's size; a successful answer is a 200 or a 206 that starts at the offset
 * asked; no read returns more than it was asked for, nor more body bytes than the
 * server sent; a body with a Content-Length that ends well has exactly that many
 * bytes; at most 1 + OTA_CFG_HTTP_MAX_REDIRECTS connections are opened, only one
 * at a time, and each is closed exactly once. Any violation aborts.
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "ota/errors.h"
#include "ota/http.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define MAX_PARTS 8

typedef struct net {
    const uint8_t *part[MAX_PARTS];
    size_t part_len[MAX_PARTS];
    size_t parts;
    size_t off;      /* into the current connection's answer */
    int opened;      /* connections so far */
    int open_now;    /* connections not closed yet */
    bool closed[MAX_PARTS];
    uint8_t pieces;  /* from the first byte */
    uint32_t turn;
} net_t;

static int n_connect(void *ctx, const char *host, uint16_t port, ota_conn_t *conn)
{
    net_t *n = ctx;
    (void)port;
    if (host == NULL || host[0] == '\0')
        abort();
    if (n->open_now != 0 || n->opened >= MAX_PARTS)
        abort(); /* one connection at a time; the redirect limit bounds them */
    *conn = n->opened++;
    n->open_now++;
    n->off = 0;
    return OTA_OK;
}

static const uint8_t *answer(const net_t *n, ota_conn_t c, size_t *len)
{
    size_t i = (size_t)c + 1; /* part 0 is the request */
    *len = i < n->parts ? n->part_len[i] : 0;
    return i < n->parts ? n->part[i] : NULL;
}

static int n_recv(void *ctx, ota_conn_t conn, uint8_t *buf, size_t len)
{
    net_t *n = ctx;
    if (conn != n->opened - 1 || n->closed[conn])
        abort();
    if (len == 0)
        abort();
    n->turn++;
    if ((n->pieces & 0x80) && n->turn % 3 == 0)
        return OTA_ERR_WOULD_BLOCK;
    size_t total;
    const uint8_t *a = answer(n, conn, &total);
    if (n->off >= total)
        return OTA_ERR_CLOSED;
    size_t piece = 1 + (size_t)(n->pieces & 0x3f) * (1 + n->turn % 7);
    if (piece > len)
        piece = len;
    if (piece > total - n->off)
        piece = total - n->off;
    memcpy(buf, a + n->off, piece);
    n->off += piece;
    return (int)piece;
}

static int n_send(void *ctx, ota_conn_t conn, const uint8_t *buf, size_t len)
{
    net_t *n = ctx;
    if (conn != n->opened - 1 || n->closed[conn] || buf == NULL || len == 0)
        abort();
    return (int)(len > 100 ? 100 : len);
}

static void n_close(void *ctx, ota_conn_t conn)
{
    net_t *n = ctx;
    if (conn < 0 || conn >= n->opened || n->closed[conn])
        abort();
    n->closed[conn] = true;
    n->open_now--;
}

static size_t split(const uint8_t *data, size_t size, net_t *n)
{
    static const uint8_t sep[4] = {'\n', '~', '~', '\n'};
    size_t start = 0;
    n->parts = 0;
    for (size_t i = 0; n->parts < MAX_PARTS - 1 && i + 4 <= size; i++) {
        if (memcmp(data + i, sep, 4) == 0) {
            n->part[n->parts] = data + start;
            n->part_len[n->parts++] = i - start;
            start = i + 4;
            i += 3;
        }
    }
    n->part[n->parts] = data + start;
    n->part_len[n->parts++] = size - start;
    return n->parts;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static net_t n;
    static ota_http_t h;
    memset(&n, 0, sizeof n);
    split(data, size, &n);
    char url[OTA_CFG_HTTP_URL_MAX + 64];
    uint64_t range = 0;
    if (n.part_len[0] > 0) {
        n.pieces = n.part[0][0];
        if (n.pieces & 0x40)
            range = 1 + (n.pieces & 0x0f);
        size_t ul = n.part_len[0] - 1;
        if (ul > sizeof url - 1)
            ul = sizeof url - 1;
        memcpy(url, n.part[0] + 1, ul);
        url[ul] = '\0';
        if (ul == 0 || memchr(url, '\0', ul) != NULL)
            memcpy(url, "http://h/x", 11);
    } else {
        memcpy(url, "http://h/x", 11);
    }
    ota_tcp_port_t tcp = {.recv = n_recv,
                          .send = n_send,
                          .close = n_close,
                          .connect = NULL,
                          .ctx = &n,
                          .connect_host = n_connect};
    ota_tls_port_t tls = {.connect_host = n_connect,
                          .recv = n_recv,
                          .send = n_send,
                          .close = n_close,
                          .ctx = &n};
    if (ota_http_init(&h, &tcp, &tls) != 0)
        abort();
    ota_http_request_t req = {.url = url, .range_start = range, .if_range = "\"etag\""};
    uint32_t now = 0xFFFFFFF0u; /* the clock wraps on the way */
    int rc = ota_http_get(&h, &req, now);
    if (rc != 0) {
        if (n.opened != 0 || rc >= 0)
            abort();
        return 0;
    }
    /* every poll or read moves at least one byte or one would-block; would-blocks
     * are a third of the turns at most, so this bound is never reached by a client
     * that works */
    size_t budget = 64 + 8 * size + 200 * (size_t)MAX_PARTS;
    size_t steps = 0;
    while ((rc = ota_http_poll(&h, now++)) == OTA_ERR_WOULD_BLOCK)
        if (++steps > budget)
            abort();
    if (n.opened > 1 + OTA_CFG_HTTP_MAX_REDIRECTS)
        abort();
    if (rc == 0) {
        int st = ota_http_status(&h);
        if (st != 200 && st != 206)
            abort();
        if (st == 206 && (range == 0 || ota_http_range_start(&h) != range))
            abort();
        uint8_t buf[257];
        uint64_t body = 0;
        for (;;) {
            size_t want = 1 + (size_t)((body * 31 + steps) % 256);
            buf[want] = 0xA5;
            rc = ota_http_read(&h, buf, want);
            if (buf[want] != 0xA5)
                abort(); /* wrote past what it was given */
            if (rc > 0) {
                if ((size_t)rc > want)
                    abort();
                body += (uint64_t)rc;
                if (body > size)
                    abort(); /* more body than the server sent */
                continue;
            }
            if (rc != OTA_ERR_WOULD_BLOCK)
                break;
            if (ota_http_poll(&h, now++) != 0 && ota_http_poll(&h, now) >= 0)
                abort();
            if (++steps > budget)
                abort();
        }
        if (rc == 0) {
            uint64_t cl = ota_http_content_length(&h);
            if (cl != OTA_HTTP_UNKNOWN && cl != body)
                abort();
            if (ota_http_read(&h, buf, 1) != 0)
                abort(); /* the end stays the end */
        } else if (rc > 0) {
            abort();
        }
        if (body != ota_http_body_read(&h))
            abort();
    } else if (rc > 0) {
        abort();
    }
    ota_http_close(&h);
    ota_http_close(&h);
    if (n.open_now != 0)
        abort();
    return 0;
}
