/*
 * arduino.c - the ArduinoOTA protocol on the device (PROTOCOL.md section 2), the one
 * espota.py from the Arduino ESP8266/ESP32 cores speaks:
 *
 * Filesystem images (command 100) go to the port's data slot when it has one.
 *
 *   IDLE --invitation "<cmd> <port> <size> <md5>"--> no auth: "OK", CONNECT
 *                                                   auth:    "AUTH <nonce>", an offer
 *   offer --"200 <cnonce> <response>"--> MD5 variant: check; SHA-256 variant: HASH
 *
 * Offers (challenges sent, not answered yet) are kept per source address, up to
 * OTA_CFG_ARDUINO_OFFERS side by side: an invitation from another address takes a
 * free offer or the oldest one, never cancels the challenge of an uploader that is
 * busy answering, so one datagram every few seconds from a squatter does not keep the
 * owner out. Wrong answers count in the per-address back-off (shared with the native
 * protocol, server.c): they delay that address only.
 *   HASH (PBKDF2, 10000 iterations, a slice per poll) --> check
 *        right: "OK", CONNECT     wrong: "Authentication Failed", IDLE
 *   CONNECT (to the uploader's TCP port) --> DATA: every read is hashed, written and
 *        answered with the cumulative byte count; all in: MD5, format check,
 *        activation, "OK\n" (or an error text), close, reboot.
 *
 * It shares the server's update lock, slot and buffers: one update at a time across
 * both protocols. Nothing here waits: every state resumes on the next poll.
 */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "ota/auth.h"
#include "ota/util.h"
#include "server_internal.h"

#if OTA_CFG_ENABLE_ARDUINO

enum { AR_IDLE = 0, AR_HASH, AR_DATA, AR_CLOSING };

#define AR_ITERATIONS 10000u       /* PBKDF2 of the SHA-256 variant */
#define AR_ITERATIONS_PER_POLL 500u
#define AR_AUTH_TIMEOUT_MS 15000u  /* from the challenge to the answer */
#define AR_CONNECT_TIMEOUT_MS 10000u
#define AR_DATGRAM_MAX 160
/* An invitation that must wait this long or less (back-off) is not answered: the
 * uploader resends it every second for about ten, and the resend gets its challenge. */
#define AR_QUIET_WAIT_MS 5000u

int ota_arduino_check_config(const ota_port_t *port, const ota_server_config_t *cfg)
{
    if (port->udp_recv == NULL || port->udp_send == NULL || port->net_connect == NULL)
        return OTA_ERR_INVALID_ARG;
    if (cfg->arduino_auth == OTA_ARDUINO_AUTH_NONE)
        return OTA_OK;
    size_t want = cfg->arduino_auth == OTA_ARDUINO_AUTH_MD5 ? OTA_MD5_HEX_LEN
                  : cfg->arduino_auth == OTA_ARDUINO_AUTH_SHA256 ? OTA_SHA256_HEX_LEN
                                                                 : 0;
    uint8_t raw[OTA_SHA256_LEN];
    if (want == 0 || cfg->arduino_hash == NULL || strlen(cfg->arduino_hash) != want ||
        ota_hex_decode(cfg->arduino_hash, want / 2, raw) != 0)
        return OTA_ERR_INVALID_ARG;
    if (cfg->arduino_auth == OTA_ARDUINO_AUTH_SHA256 && port->hmac_sha256 == NULL)
        return OTA_ERR_INVALID_ARG;
    return OTA_OK;
}

static void reply(ota_server_t *s, const char *ip, uint16_t port, const char *text)
{
    (void)s->port->udp_send(s->user, ip, port, (const uint8_t *)text, strlen(text));
}

/* "AUTH <nonce>" */
static void send_challenge(ota_server_t *s, const char *ip, uint16_t port, const char *nonce)
{
    char msg[80];
    ota_strbuf_t sb;
    ota_sb_init(&sb, msg, sizeof msg);
    ota_sb_str(&sb, "AUTH ");
    ota_sb_str(&sb, nonce);
    reply(s, ip, port, msg);
}

static void say(ota_server_t *s, ota_log_level_t lvl, const char *ip, const char *msg)
{
    char peer[64];
    ota_strbuf_t sb;
    ota_sb_init(&sb, peer, sizeof peer);
    ota_sb_str(&sb, ip);
    ota_sb_str(&sb, " (ArduinoOTA)");
    ota_srv_log(s, lvl, peer, msg);
}

/* ------------------------------------------------------------ parsing */

/* Split text (NUL-terminated, modified) at spaces into at most max fields. */
static int split(char *text, char **fields, int max)
{
    int n = 0;
    char *p = text;
    while (*p) {
        while (*p == ' ')
            *p++ = '\0';
        if (!*p)
            break;
        if (n == max)
            return max + 1; /* too many fields */
        fields[n++] = p;
        while (*p && *p != ' ')
            p++;
    }
    return n;
}

static int parse_u32(const char *t, uint32_t max, uint32_t *out)
{
    uint64_t v = 0;
    if (*t == '\0')
        return -1;
    for (; *t; t++) {
        if (*t < '0' || *t > '9')
            return -1;
        v = v * 10u + (uint64_t)(*t - '0');
        if (v > max)
            return -1;
    }
    *out = (uint32_t)v;
    return 0;
}

static bool is_hex(const char *t, size_t len)
{
    uint8_t tmp;
    if (strlen(t) != len)
        return false;
    for (size_t i = 0; i < len; i += 2)
        if (ota_hex_decode(t + i, 1, &tmp) != 0)
            return false;
    return true;
}

/* ------------------------------------------------------------ auth */

static int hash_hex(ota_server_t *s, ota_hash_alg_t alg, const char *const *parts, int n,
                    char *out_hex)
{
    ota_hash_ctx_t ctx;
    uint8_t d[OTA_SHA256_LEN];
    int rc = s->port->hash_start(s->user, &ctx, alg);
    for (int i = 0; i < n && rc == OTA_OK; i++)
        rc = s->port->hash_update(s->user, &ctx, (const uint8_t *)parts[i], strlen(parts[i]));
    if (rc == OTA_OK)
        rc = s->port->hash_finish(s->user, &ctx, d);
    if (rc == OTA_OK)
        ota_hex_encode(d, alg == OTA_HASH_MD5 ? OTA_MD5_LEN : OTA_SHA256_LEN, out_hex);
    ota_wipe(&ctx, sizeof ctx);
    ota_wipe(d, sizeof d);
    return rc;
}

/* One slice of PBKDF2-HMAC-SHA256(key = stored hash, salt = nonce ":" cnonce), one
 * 32-byte block. Returns true when all iterations are done (result in a->t). */
static bool pbkdf2_slice(ota_server_t *s, ota_arduino_t *a)
{
    const uint8_t *key = (const uint8_t *)s->cfg.arduino_hash;
    size_t key_len = OTA_SHA256_HEX_LEN;
    if (a->iter == 0) {
        uint8_t salt[2 * OTA_SHA256_HEX_LEN + 1 + 4];
        size_t n = strlen(a->nonce), m = strlen(a->cnonce);
        memcpy(salt, a->nonce, n);
        salt[n] = ':';
        memcpy(salt + n + 1, a->cnonce, m);
        static const uint8_t one[4] = {0, 0, 0, 1};
        memcpy(salt + n + 1 + m, one, 4);
        if (s->port->hmac_sha256(s->user, key, key_len, salt, n + 1 + m + 4, a->u) != OTA_OK)
            return false;
        memcpy(a->t, a->u, sizeof a->t);
        a->iter = 1;
    }
    for (uint32_t k = 0; k < AR_ITERATIONS_PER_POLL && a->iter < AR_ITERATIONS; k++) {
        if (s->port->hmac_sha256(s->user, key, key_len, a->u, sizeof a->u, a->u) != OTA_OK)
            return false;
        for (size_t i = 0; i < sizeof a->t; i++)
            a->t[i] ^= a->u[i];
        a->iter++;
    }
    return a->iter >= AR_ITERATIONS;
}

/* Give up the update this listener holds (slot or data slot), if any. */
static void release(ota_server_t *s, int err)
{
    if (s->update.session != OTA_ARDUINO_HOLDER)
        return;
    if (s->arduino.cmd == 100 && s->port->data_abort != NULL)
        s->port->data_abort(s->user);
    ota_srv_release_update(s, OTA_ARDUINO_HOLDER, err);
}

static void to_idle(ota_server_t *s)
{
    ota_arduino_t *a = &s->arduino;
    ota_wipe(a->u, sizeof a->u);
    ota_wipe(a->t, sizeof a->t);
    ota_wipe(a->nonce, sizeof a->nonce);
    ota_wipe(a->response, sizeof a->response);
    a->state = AR_IDLE;
    a->iter = 0;
}

/* Take the update lock and the slot, answer "OK" and connect back. */
static void begin_update(ota_server_t *s)
{
    ota_arduino_t *a = &s->arduino;
    ota_update_t *u = &s->update;
    if (u->session != -1 || s->activated) {
        reply(s, a->ip, a->udp_port, "ERR: another update is in progress");
        to_idle(s);
        return;
    }
    bool fs = a->cmd == 100;
    int rc = fs ? s->port->data_begin(s->user, a->size) : s->port->slot_begin(s->user, a->size);
    if (rc != OTA_OK) {
        reply(s, a->ip, a->udp_port,
              rc == OTA_ERR_NO_SPACE ? "ERR: the image does not fit the update slot"
                                     : "ERR: cannot prepare the update slot");
        say(s, OTA_LOG_WARN, a->ip, "cannot prepare the update slot");
        to_idle(s);
        return;
    }
    memset(u, 0, sizeof *u);
    u->session = OTA_ARDUINO_HOLDER;
    u->size = a->size;
    u->slot_open = !fs; /* a data image is aborted here, not by the server */
    if (s->port->hash_start(s->user, &u->md5_ctx, OTA_HASH_MD5) != OTA_OK ||
        s->port->net_connect(s->user, a->ip, a->host_port, &a->conn) != OTA_OK) {
        reply(s, a->ip, a->udp_port, "ERR: cannot connect back to the uploader");
        release(s, OTA_ERR_IO);
        a->conn = -1;
        to_idle(s);
        return;
    }
    reply(s, a->ip, a->udp_port, "OK");
    say(s, OTA_LOG_INFO, a->ip, "update started over ArduinoOTA");
    ota_srv_notify(s, OTA_STATE_STARTED, OTA_OK);
    a->state = AR_DATA;
    a->state_ms = s->now_ms;
    a->tx_len = a->tx_off = 0;
}

static void check_response(ota_server_t *s)
{
    ota_arduino_t *a = &s->arduino;
    char expected[OTA_SHA256_HEX_LEN + 1];
    int rc;
    if (s->cfg.arduino_auth == OTA_ARDUINO_AUTH_MD5) {
        const char *parts[] = {s->cfg.arduino_hash, ":", a->nonce, ":", a->cnonce};
        rc = hash_hex(s, OTA_HASH_MD5, parts, 5, expected);
    } else {
        char dk[OTA_SHA256_HEX_LEN + 1];
        ota_hex_encode(a->t, sizeof a->t, dk);
        dk[OTA_SHA256_HEX_LEN] = '\0';
        const char *parts[] = {dk, ":", a->nonce, ":", a->cnonce};
        rc = hash_hex(s, OTA_HASH_SHA256, parts, 5, expected);
        ota_wipe(dk, sizeof dk);
    }
    size_t len = strlen(a->response);
    bool ok = rc == OTA_OK && len == (s->cfg.arduino_auth == OTA_ARDUINO_AUTH_MD5
                                          ? (size_t)OTA_MD5_HEX_LEN
                                          : (size_t)OTA_SHA256_HEX_LEN) &&
              ota_ct_equal(expected, a->response, len);
    ota_wipe(expected, sizeof expected);
    if (!ok) {
        reply(s, a->ip, a->udp_port, "Authentication Failed");
        say(s, OTA_LOG_WARN, a->ip, "wrong password (ArduinoOTA)");
        ota_srv_auth_failed(s, a->ip);
        to_idle(s);
        return;
    }
    ota_srv_auth_ok(s, a->ip);
    say(s, OTA_LOG_INFO, a->ip, "authenticated (ArduinoOTA)");
    begin_update(s);
}

/* ------------------------------------------------------------ datagrams */

static void offer_clear(ota_arduino_offer_t *o)
{
    ota_wipe(o, sizeof *o);
}

static ota_arduino_offer_t *offer_find(ota_arduino_t *a, const char *ip)
{
    for (int i = 0; i < OTA_CFG_ARDUINO_OFFERS; i++)
        if (a->offers[i].ip[0] != '\0' && strcmp(a->offers[i].ip, ip) == 0)
            return &a->offers[i];
    return NULL;
}

/* The offer of ip, else a free one, else the oldest. */
static ota_arduino_offer_t *offer_take(ota_server_t *s, const char *ip)
{
    ota_arduino_t *a = &s->arduino;
    ota_arduino_offer_t *o = offer_find(a, ip);
    if (o != NULL)
        return o;
    o = &a->offers[0];
    for (int i = 0; i < OTA_CFG_ARDUINO_OFFERS; i++) {
        ota_arduino_offer_t *c = &a->offers[i];
        if (c->ip[0] == '\0')
            return c;
        if (ota_elapsed_ms(s->now_ms, c->sent_ms) > ota_elapsed_ms(s->now_ms, o->sent_ms))
            o = c;
    }
    return o;
}

/* An answer to the challenge of offer o: make it the exchange under way. */
static void on_answer(ota_server_t *s, ota_arduino_offer_t *o, char *cnonce, char *response,
                      uint16_t from_port)
{
    ota_arduino_t *a = &s->arduino;
    size_t hex = strlen(o->nonce);
    if (!is_hex(cnonce, hex) || !is_hex(response, hex)) {
        reply(s, o->ip, from_port, "Authentication Failed");
        ota_srv_auth_failed(s, o->ip);
        offer_clear(o);
        return;
    }
    memcpy(a->ip, o->ip, sizeof a->ip);
    memcpy(a->nonce, o->nonce, sizeof a->nonce);
    memcpy(a->md5, o->md5, sizeof a->md5);
    a->cmd = o->cmd;
    a->host_port = o->host_port;
    a->size = o->size;
    a->udp_port = from_port;
    a->state_ms = s->now_ms;
    offer_clear(o);
    memcpy(a->cnonce, cnonce, hex + 1);
    memcpy(a->response, response, hex + 1);
    if (s->cfg.arduino_auth == OTA_ARDUINO_AUTH_MD5) {
        check_response(s);
    } else {
        a->state = AR_HASH;
        a->iter = 0;
    }
}

static void on_datagram(ota_server_t *s, char *text, const char *ip, uint16_t from_port)
{
    ota_arduino_t *a = &s->arduino;
    size_t n = strlen(text);
    while (n > 0 && (text[n - 1] == '\n' || text[n - 1] == '\r'))
        text[--n] = '\0';
    char *f[5];
    int nf = split(text, f, 4);
    bool busy = a->state != AR_IDLE || s->update.session != -1 || s->activated;

    /* the answer to a challenge */
    if (nf == 3 && strcmp(f[0], "200") == 0) {
        ota_arduino_offer_t *o = offer_find(a, ip);
        if (o == NULL) {
            ota_srv_log_repeat(s, OTA_SRV_RL_UDP, OTA_LOG_DEBUG, ip,
                               "ignored an ArduinoOTA answer to no challenge");
            return;
        }
        if (busy) { /* another exchange is under way; the offer stays for a retry */
            reply(s, ip, from_port, "ERR: another update is in progress");
            return;
        }
        on_answer(s, o, f[1], f[2], from_port);
        return;
    }
    /* an invitation: "<cmd> <host_port> <size> <md5>" */
    uint32_t cmd, port, size;
    if (nf != 4 || parse_u32(f[0], 999, &cmd) != 0 || parse_u32(f[1], 65535, &port) != 0 ||
        port == 0 || parse_u32(f[2], 0xFFFFFFFFu, &size) != 0 || size == 0 ||
        !is_hex(f[3], OTA_MD5_HEX_LEN)) {
        ota_srv_log_repeat(s, OTA_SRV_RL_UDP, OTA_LOG_DEBUG, ip,
                           "ignored a malformed ArduinoOTA datagram");
        return;
    }
    if (busy) {
        reply(s, ip, from_port, "ERR: another update is in progress");
        return;
    }
    bool fs_ok = cmd == 100 && s->port->data_begin != NULL && s->port->data_write != NULL &&
                 s->port->data_finish != NULL && s->port->data_abort != NULL;
    if (cmd != 0 && !fs_ok) {
        reply(s, ip, from_port, cmd == 100 ? "ERR: this node takes no filesystem images"
                                           : "ERR: unknown update command");
        ota_srv_log_repeat(s, OTA_SRV_RL_UDP, OTA_LOG_WARN, ip,
                           "refused an ArduinoOTA filesystem or unknown command");
        return;
    }
    size_t iplen = strlen(ip);
    if (iplen >= sizeof a->ip)
        return;
    if (s->cfg.arduino_auth == OTA_ARDUINO_AUTH_NONE) {
        memcpy(a->ip, ip, iplen + 1);
        a->udp_port = from_port;
        a->host_port = (uint16_t)port;
        a->size = size;
        a->cmd = (uint8_t)cmd;
        ota_hex_decode(f[3], OTA_MD5_LEN, a->md5);
        a->state_ms = s->now_ms;
        begin_update(s);
        return;
    }
    ota_arduino_offer_t *o = offer_find(a, ip);
    if (o != NULL && o->host_port == port && o->size == size) {
        send_challenge(s, ip, from_port, o->nonce); /* it did not get it: again */
        return;
    }
    uint32_t wait = ota_srv_auth_wait(s, ip);
    if (wait > AR_QUIET_WAIT_MS) {
        char msg[96];
        ota_strbuf_t sb;
        ota_sb_init(&sb, msg, sizeof msg);
        ota_sb_str(&sb, ota_srv_source_wait(s, ip) > 0
                            ? "ERR: authentication is delayed after repeated failures; retry in "
                            : "ERR: too many login attempts on this node; retry in ");
        ota_sb_u32(&sb, (wait + 999u) / 1000u);
        ota_sb_str(&sb, " s");
        reply(s, ip, from_port, msg);
        ota_srv_log_repeat(s, OTA_SRV_RL_WAIT, OTA_LOG_INFO, ip,
                           "ArduinoOTA auth delayed by the brute-force back-off");
        return;
    }
    if (wait > 0) { /* short: the uploader's next resend gets its challenge */
        ota_srv_log_repeat(s, OTA_SRV_RL_WAIT, OTA_LOG_INFO, ip,
                           "ArduinoOTA auth delayed by the brute-force back-off");
        return;
    }
    size_t hex = s->cfg.arduino_auth == OTA_ARDUINO_AUTH_MD5 ? OTA_MD5_HEX_LEN
                                                             : OTA_SHA256_HEX_LEN;
    o = offer_take(s, ip);
    offer_clear(o);
    if (ota_auth_random_hex(s->port, s->user, o->nonce, hex) != OTA_OK)
        return;
    o->nonce[hex] = '\0';
    memcpy(o->ip, ip, iplen + 1);
    o->udp_port = from_port;
    o->host_port = (uint16_t)port;
    o->size = size;
    o->cmd = (uint8_t)cmd;
    ota_hex_decode(f[3], OTA_MD5_LEN, o->md5);
    o->sent_ms = s->now_ms;
    ota_srv_auth_begin(s, ip);
    send_challenge(s, ip, from_port, o->nonce);
}

/* ------------------------------------------------------------ data */

static void finish_data(ota_server_t *s, const char *text, int err)
{
    ota_arduino_t *a = &s->arduino;
    size_t n = strlen(text);
    if (n > sizeof a->tx - 1)
        n = sizeof a->tx - 1;
    memcpy(a->tx, text, n);
    a->tx_len = (uint8_t)n;
    a->tx_off = 0;
    if (err != OTA_OK) {
        say(s, OTA_LOG_WARN, a->ip, text);
        release(s, err);
    }
    a->state = AR_CLOSING;
    a->state_ms = s->now_ms;
}

static bool flush_tx(ota_server_t *s)
{
    ota_arduino_t *a = &s->arduino;
    while (a->tx_off < a->tx_len) {
        int rc = s->port->net_send(s->user, a->conn, (const uint8_t *)a->tx + a->tx_off,
                                   (size_t)(a->tx_len - a->tx_off));
        if (rc == OTA_ERR_WOULD_BLOCK)
            return false;
        if (rc < 0) {
            a->tx_off = a->tx_len;
            return true;
        }
        a->tx_off = (uint8_t)(a->tx_off + rc);
    }
    return true;
}

static void close_conn(ota_server_t *s)
{
    ota_arduino_t *a = &s->arduino;
    if (a->conn >= 0)
        s->port->net_close(s->user, a->conn);
    a->conn = -1;
    to_idle(s);
}

static void data_step(ota_server_t *s)
{
    ota_arduino_t *a = &s->arduino;
    ota_update_t *u = &s->update;
    if (!flush_tx(s))
        return; /* the uploader reads each answer before sending more */
    if (u->data_len > 0) {
        int rc = a->cmd == 100 ? s->port->data_write(s->user, u->written, u->data, u->data_len)
                               : s->port->slot_write(s->user, u->written, u->data, u->data_len);
        if (rc == OTA_ERR_WOULD_BLOCK)
            return;
        if (rc != OTA_OK) {
            finish_data(s, rc == OTA_ERR_NO_SPACE ? "ERR: the image does not fit the slot\n"
                                                  : "ERR: writing the image failed\n", rc);
            return;
        }
        u->written += u->data_len;
        u->data_len = 0;
        /* every read is answered with the cumulative count, without batching */
        ota_strbuf_t sb;
        ota_sb_init(&sb, a->tx, sizeof a->tx);
        ota_sb_u32(&sb, u->written);
        ota_sb_str(&sb, "\n");
        a->tx_len = (uint8_t)sb.len;
        a->tx_off = 0;
        if (!flush_tx(s))
            return;
    }
    if (u->received == u->size) {
        uint8_t digest[OTA_MD5_LEN];
        if (s->port->hash_finish(s->user, &u->md5_ctx, digest) != OTA_OK ||
            !ota_ct_equal(digest, a->md5, OTA_MD5_LEN)) {
            finish_data(s, "ERR: MD5 mismatch\n", OTA_ERR_MD5_MISMATCH);
            return;
        }
        if (a->cmd == 100) {
            if (s->port->data_finish(s->user, u->written) != OTA_OK) {
                finish_data(s, "ERR: writing the filesystem image failed\n", OTA_ERR_WRITE);
                return;
            }
            u->session = -1; /* nothing to abort any more */
            s->activated = true; /* reboot to use it, as the Arduino cores do */
            say(s, OTA_LOG_INFO, a->ip, "filesystem image written over ArduinoOTA");
            ota_srv_notify(s, OTA_STATE_COMPLETED, OTA_OK);
            finish_data(s, "OK\n", OTA_OK);
            return;
        }
        int rc = s->port->slot_finish(s->user, u->written);
        if (rc != OTA_OK) {
            finish_data(s, rc == OTA_ERR_BAD_IMAGE ? "ERR: not a valid firmware image\n"
                                                   : "ERR: writing the image failed\n", rc);
            return;
        }
        if (s->port->slot_activate(s->user) != OTA_OK) {
            finish_data(s, "ERR: cannot activate the image\n", OTA_ERR_ACTIVATE);
            return;
        }
        u->slot_open = false;
        s->activated = true;
        say(s, OTA_LOG_INFO, a->ip, "update complete over ArduinoOTA, activated");
        ota_srv_notify(s, OTA_STATE_COMPLETED, OTA_OK);
        finish_data(s, "OK\n", OTA_OK);
        return;
    }
    uint32_t want = u->size - u->received;
    if (want > sizeof u->data)
        want = (uint32_t)sizeof u->data;
    int n = s->port->net_recv(s->user, a->conn, u->data, want);
    if (n == OTA_ERR_WOULD_BLOCK) {
        uint32_t limit = u->received ? s->cfg.data_timeout_ms : AR_CONNECT_TIMEOUT_MS;
        if (ota_elapsed_ms(s->now_ms, a->state_ms) >= limit) {
            say(s, OTA_LOG_WARN, a->ip, u->received ? "uploader silent; update abandoned"
                                                    : "cannot connect back to the uploader");
            release(s, OTA_ERR_TIMEOUT);
            close_conn(s);
        }
        return;
    }
    if (n <= 0) {
        say(s, OTA_LOG_WARN, a->ip, "the uploader went away; update abandoned");
        release(s, OTA_ERR_CLOSED);
        close_conn(s);
        return;
    }
    a->state_ms = s->now_ms;
    s->port->hash_update(s->user, &u->md5_ctx, u->data, (size_t)n);
    u->data_len = (uint32_t)n;
    u->received += (uint32_t)n;
    ota_srv_notify(s, OTA_STATE_IN_PROGRESS, OTA_OK);
}

void ota_arduino_poll(ota_server_t *s)
{
    ota_arduino_t *a = &s->arduino;
    /* datagrams (a bounded number per poll) */
    for (int k = 0; k < 8; k++) {
        uint8_t buf[AR_DATGRAM_MAX + 1];
        char ip[48];
        uint16_t from_port = 0;
        ip[0] = '\0';
        int n = s->port->udp_recv(s->user, buf, AR_DATGRAM_MAX, ip, sizeof ip, &from_port);
        if (n < 0)
            break;
        ip[sizeof ip - 1] = '\0';
        buf[n] = '\0';
        if (memchr(buf, '\0', (size_t)n) != NULL)
            continue; /* binary garbage */
        on_datagram(s, (char *)buf, ip, from_port);
    }
    for (int i = 0; i < OTA_CFG_ARDUINO_OFFERS; i++) /* challenges never answered */
        if (a->offers[i].ip[0] != '\0' &&
            ota_elapsed_ms(s->now_ms, a->offers[i].sent_ms) >= AR_AUTH_TIMEOUT_MS)
            offer_clear(&a->offers[i]);
    switch (a->state) {
    case AR_HASH:
        if (pbkdf2_slice(s, a))
            check_response(s);
        break;
    case AR_DATA:
        for (int k = 0; k < 16 && a->state == AR_DATA; k++) {
            uint32_t before = s->update.received;
            uint8_t tx_before = a->tx_off;
            data_step(s);
            if (s->update.received == before && a->tx_off == tx_before)
                break; /* nothing moved: wait for the next poll */
        }
        break;
    case AR_CLOSING:
        if (flush_tx(s) || ota_elapsed_ms(s->now_ms, a->state_ms) > 2000u) {
            bool done = s->activated;
            close_conn(s);
            if (done)
                s->reboot_pending = true;
        }
        break;
    default:
        break;
    }
}

void ota_arduino_free(ota_server_t *s)
{
    if (s->arduino.state == AR_DATA)
        release(s, OTA_ERR_CLOSED);
    if (s->arduino.conn >= 0)
        close_conn(s);
    to_idle(s);
    for (int i = 0; i < OTA_CFG_ARDUINO_OFFERS; i++)
        offer_clear(&s->arduino.offers[i]);
}

#else /* !OTA_CFG_ENABLE_ARDUINO: a configuration asking for it is refused at setup */

int ota_arduino_check_config(const ota_port_t *port, const ota_server_config_t *cfg)
{
    (void)port;
    (void)cfg;
    return OTA_ERR_INVALID_ARG;
}

void ota_arduino_poll(ota_server_t *s)
{
    (void)s;
}

void ota_arduino_free(ota_server_t *s)
{
    (void)s;
}

#endif
