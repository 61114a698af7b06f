/*
 * log_lwip.c - stdout and the log viewers of the lwIP node (log_lwip.h).
 */
#include "log_lwip.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "ota/errors.h"
#include "ota/util.h"

#define V_AUTH 1
#define V_LIVE 2

static const char level_char[] = {'E', 'W', 'I', 'D'};

/* All of buf now, or false: a viewer never holds up the node. */
static bool send_all(ota_lwip_log_t *lg, ota_conn_t conn, const char *buf, size_t len)
{
    int n = lg->tcp->send(lg->tcp->ctx, conn, (const uint8_t *)buf, len);
    return n >= 0 && (size_t)n == len;
}

static void viewer_close(ota_lwip_log_t *lg, ota_lwip_viewer_t *v)
{
    if (v->conn >= 0)
        lg->tcp->close(lg->tcp->ctx, v->conn);
    memset(v, 0, sizeof *v);
    v->conn = -1;
}

static void broadcast(ota_lwip_log_t *lg, const char *line, size_t len)
{
    if (lg == NULL || lg->tcp == NULL)
        return;
    for (size_t i = 0; i < OTA_LWIP_LOG_VIEWERS; i++) {
        ota_lwip_viewer_t *v = &lg->viewers[i];
        if (v->conn >= 0 && v->state == V_LIVE && !send_all(lg, v->conn, line, len)) {
            lg->dropped++;
            viewer_close(lg, v);
        }
    }
}

static void vlog(ota_lwip_log_t *lg, ota_log_level_t level, const char *tag, const char *fmt,
                 va_list ap) __attribute__((format(printf, 4, 0)));

static void vlog(ota_lwip_log_t *lg, ota_log_level_t level, const char *tag, const char *fmt,
                 va_list ap)
{
    char text[512], full[600];
    vsnprintf(text, sizeof text, fmt, ap);
    int n = snprintf(full, sizeof full, "[%c][%s] %s\n", level_char[(unsigned)level & 3u], tag,
                     text);
    if (n < 0)
        return;
    size_t len = (size_t)n < sizeof full ? (size_t)n : sizeof full - 1;
    fwrite(full, 1, len, stdout);
    fflush(stdout);
    broadcast(lg, full, len);
}

void ota_lwip_logf(ota_lwip_log_t *lg, ota_log_level_t level, const char *tag, const char *fmt,
                   ...)
{
    va_list ap;
    va_start(ap, fmt);
    vlog(lg, level, tag, fmt, ap);
    va_end(ap);
}

/* The core's log table: the mDNS responder's lines ("mdns: ...") get their own tag. */
static void port_line(void *ctx, ota_log_level_t level, const char *line)
{
    if (strncmp(line, "mdns: ", 6) == 0)
        ota_lwip_logf(ctx, level, "mdns", "%s", line + 6);
    else
        ota_lwip_logf(ctx, level, "ota", "%s", line);
}

void ota_lwip_log_init(ota_lwip_log_t *lg)
{
    memset(lg, 0, sizeof *lg);
    for (size_t i = 0; i < OTA_LWIP_LOG_VIEWERS; i++)
        lg->viewers[i].conn = -1;
    lg->port = (ota_log_port_t){.line = port_line, .ctx = lg};
}

int ota_lwip_log_serve(ota_lwip_log_t *lg, const ota_tcp_port_t *tcp,
                       const ota_crypto_port_t *crypto, const char *hello, const char *verifier)
{
    if (verifier != NULL && verifier[0] != '\0') {
        if (ota_verifier_parse(verifier, &lg->verifier) != 0)
            return OTA_ERR_INVALID_ARG;
        lg->auth = true;
    }
    snprintf(lg->hello, sizeof lg->hello, "%s\n", hello);
    lg->crypto = crypto;
    lg->tcp = tcp;
    return 0;
}

static void challenge(ota_lwip_log_t *lg, ota_lwip_viewer_t *v, uint32_t now)
{
    char salt[2 * OTA_SALT_LEN + 1], nonce[2 * OTA_SALTED_NONCE_LEN + 1], line[200];
    if (lg->crypto->random(lg->crypto->ctx, v->nonce, sizeof v->nonce) != 0) {
        viewer_close(lg, v);
        return;
    }
    ota_hex_encode(lg->verifier.salt, OTA_SALT_LEN, salt);
    salt[sizeof salt - 1] = '\0';
    ota_hex_encode(v->nonce, OTA_SALTED_NONCE_LEN, nonce);
    nonce[sizeof nonce - 1] = '\0';
    int n = snprintf(line, sizeof line, OTA_LOG_AUTH_CHALLENGE "salt=%s iterations=%lu nonce=%s\n",
                     salt, (unsigned long)lg->verifier.iterations, nonce);
    if (n < 0 || !send_all(lg, v->conn, line, (size_t)n)) {
        viewer_close(lg, v);
        return;
    }
    v->state = V_AUTH;
    v->since_ms = now;
}

/* The answer line "auth <64 hex client nonce> <64 hex ClientProof>" is complete. */
static void check_answer(ota_lwip_log_t *lg, ota_lwip_viewer_t *v)
{
    const size_t al = sizeof OTA_LOG_AUTH_ANSWER - 1;
    size_t len = strcspn(v->rx, "\r\n");
    uint8_t cnonce[OTA_SALTED_NONCE_LEN], proof[OTA_SALTED_KEY_LEN], sig[OTA_SALTED_KEY_LEN];
    uint8_t msg[OTA_SALTED_AUTH_MESSAGE_LEN];
    bool ok = len == al + 2 * OTA_SALTED_NONCE_LEN + 1 + 2 * OTA_SALTED_KEY_LEN &&
              memcmp(v->rx, OTA_LOG_AUTH_ANSWER, al) == 0 &&
              v->rx[al + 2 * OTA_SALTED_NONCE_LEN] == ' ' &&
              ota_hex_decode(v->rx + al, OTA_SALTED_NONCE_LEN, cnonce) == 0 &&
              ota_hex_decode(v->rx + al + 1 + 2 * OTA_SALTED_NONCE_LEN, OTA_SALTED_KEY_LEN,
                             proof) == 0;
    if (ok) {
        /* the log port's AuthMessage carries its own label (docs/protocol.md#logs-auth) */
        ota_salted_auth_message(v->nonce, cnonce, lg->verifier.salt, lg->verifier.iterations,
                                msg);
        memcpy(msg, OTA_LOG_AUTH_LABEL, OTA_SALTED_LABEL_LEN);
        ok = ota_salted_verify(lg->crypto, &lg->verifier, msg, proof, sig) == 0;
    }
    if (!ok) {
        static const char failed[] = OTA_LOG_AUTH_FAILED "\n";
        (void)send_all(lg, v->conn, failed, sizeof failed - 1);
        viewer_close(lg, v);
        return;
    }
    const size_t ol = sizeof OTA_LOG_AUTH_OK - 1;
    char line[sizeof OTA_LOG_AUTH_OK + 2 * OTA_SALTED_KEY_LEN + 1 + sizeof lg->hello];
    memcpy(line, OTA_LOG_AUTH_OK, ol);
    ota_hex_encode(sig, sizeof sig, line + ol);
    size_t n = ol + 2 * sizeof sig;
    line[n++] = '\n';
    size_t hl = strlen(lg->hello);
    memcpy(line + n, lg->hello, hl);
    n += hl;
    ota_wipe(sig, sizeof sig);
    ota_wipe(msg, sizeof msg);
    if (!send_all(lg, v->conn, line, n)) {
        viewer_close(lg, v);
        return;
    }
    v->state = V_LIVE;
}

static void read_answer(ota_lwip_log_t *lg, ota_lwip_viewer_t *v, uint32_t now)
{
    for (;;) {
        uint8_t ch;
        int n = lg->tcp->recv(lg->tcp->ctx, v->conn, &ch, 1);
        if (n == OTA_ERR_WOULD_BLOCK)
            break;
        if (n <= 0) {
            viewer_close(lg, v);
            return;
        }
        if (v->rx_len + 1u >= sizeof v->rx) {
            viewer_close(lg, v); /* no answer is that long */
            return;
        }
        v->rx[v->rx_len++] = (char)ch;
        if (ch == '\n') {
            check_answer(lg, v);
            return;
        }
    }
    if (ota_elapsed_ms(now, v->since_ms) >= OTA_LWIP_LOG_AUTH_MS)
        viewer_close(lg, v);
}

/* A live viewer sends nothing; reading tells us when it has gone. */
static void watch_live(ota_lwip_log_t *lg, ota_lwip_viewer_t *v)
{
    uint8_t junk[64];
    int n;
    while ((n = lg->tcp->recv(lg->tcp->ctx, v->conn, junk, sizeof junk)) > 0) {
    }
    if (n != OTA_ERR_WOULD_BLOCK)
        viewer_close(lg, v);
}

void ota_lwip_log_poll(ota_lwip_log_t *lg, uint32_t now)
{
    if (lg->tcp == NULL)
        return;
    ota_conn_t conn;
    char peer[64];
    while (lg->tcp->accept(lg->tcp->ctx, &conn, peer, sizeof peer) == 0) {
        ota_lwip_viewer_t *slot = NULL, *oldest = NULL;
        for (size_t i = 0; i < OTA_LWIP_LOG_VIEWERS; i++) {
            ota_lwip_viewer_t *v = &lg->viewers[i];
            if (v->conn < 0) {
                slot = v;
                break;
            }
            if (oldest == NULL || (int32_t)(v->seq - oldest->seq) < 0)
                oldest = v;
        }
        if (slot == NULL) { /* the newest viewer wins, as on the POSIX node */
            static const char evicted[] = OTA_LOG_EVICTED "\n";
            (void)send_all(lg, oldest->conn, evicted, sizeof evicted - 1);
            viewer_close(lg, oldest);
            slot = oldest;
        }
        slot->conn = conn;
        slot->seq = ++lg->seq;
        if (lg->auth) {
            challenge(lg, slot, now);
        } else if (send_all(lg, conn, lg->hello, strlen(lg->hello))) {
            slot->state = V_LIVE;
        } else {
            viewer_close(lg, slot);
        }
    }
    for (size_t i = 0; i < OTA_LWIP_LOG_VIEWERS; i++) {
        ota_lwip_viewer_t *v = &lg->viewers[i];
        if (v->conn < 0)
            continue;
        if (v->state == V_AUTH)
            read_answer(lg, v, now);
        else
            watch_live(lg, v);
    }
}

void ota_lwip_log_close(ota_lwip_log_t *lg)
{
    for (size_t i = 0; i < OTA_LWIP_LOG_VIEWERS; i++)
        if (lg->tcp != NULL)
            viewer_close(lg, &lg->viewers[i]);
    lg->tcp = NULL;
}
