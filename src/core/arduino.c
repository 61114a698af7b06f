/*
 * arduino.c - the ArduinoOTA protocol on the device (docs/protocol.md#arduino;
 * ota/arduino.h), the one espota.py from the Arduino ESP8266/ESP32 cores speaks:
 *
 * Filesystem images (command 100) go to the pipeline's data store when it has one.
 *
 *   IDLE --invitation "<cmd> <port> <size> <md5>"--> no auth: "OK", CONNECT
 *                                                   auth:    "AUTH <nonce>", an offer
 *   offer --"200 <cnonce> <response>"--> MD5 variant: check; SHA-256 variant: HASH
 *
 * Offers (challenges sent, not answered yet) are kept per source address, up to
 * OTA_CFG_ARDUINO_OFFERS side by side: an invitation from another address takes a
 * free offer or the oldest one, never cancels the challenge of an uploader that is
 * busy answering, so one datagram every few seconds from a squatter does not keep the
 * owner out. Wrong answers count in the brute-force guard (ota/guard.h, shared with
 * the native protocol): they delay that address only.
 *   HASH (PBKDF2, OTA_ARDUINO_PBKDF2_ITERATIONS, a slice per poll) --> check
 *        right: "OK", CONNECT     wrong: OTA_ARDUINO_REPLY_AUTH_FAILED, IDLE
 *   CONNECT (to the uploader's TCP port) --> DATA: every read goes into the update
 *        pipeline and is answered with the cumulative byte count; all in: the
 *        pipeline verifies and activates, "OK\n" (or an error text), close, reboot.
 *
 * The pipeline's lock makes it one update at a time across every transport.
 * Nothing here waits: every state resumes on the next poll.
 */
#include "ota/arduino.h"
#include "ota/arduino_proto.h"

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "ota/auth.h"
#include "ota/util.h"

#if OTA_CFG_ENABLE_ARDUINO

enum { AR_IDLE = 0, AR_HASH, AR_PREPARE, AR_DATA, AR_CLOSING };
/* how long the store may take to prepare (erasing) before the invitation fails:
 * espota.py waits 10 s for the answer to its invitation */
#define AR_PREPARE_MAX_MS 8000u

#define AR_ITERATIONS_PER_POLL 500u
#define AR_AUTH_TIMEOUT_MS 15000u  /* from the challenge to the answer */
#define AR_DATGRAM_MAX 160
/* An invitation that must wait this long or less (back-off) is not answered: the
 * uploader resends it every second for about ten, and the resend gets its challenge. */
#define AR_QUIET_WAIT_MS 5000u

int ota_arduino_setup(ota_arduino_t *a, const ota_udp_port_t *udp, const ota_tcp_port_t *tcp,
                      const ota_crypto_port_t *crypto, ota_logger_t *log, ota_update_t *update,
                      ota_guard_t *guard, const ota_arduino_config_t *cfg)
{
    if (a == NULL || udp == NULL || tcp == NULL || crypto == NULL || update == NULL ||
        guard == NULL || cfg == NULL)
        return OTA_ERR_INVALID_ARG;
    if (udp->recv == NULL || udp->send == NULL || tcp->connect == NULL || tcp->recv == NULL ||
        tcp->send == NULL || tcp->close == NULL || crypto->random == NULL)
        return OTA_ERR_INVALID_ARG;
    if (cfg->auth != OTA_ARDUINO_AUTH_NONE) {
        size_t want = cfg->auth == OTA_ARDUINO_AUTH_MD5      ? OTA_MD5_HEX_LEN
                      : cfg->auth == OTA_ARDUINO_AUTH_SHA256 ? OTA_SHA256_HEX_LEN
                                                             : 0;
        uint8_t raw[OTA_SHA256_LEN];
        if (want == 0 || cfg->hash == NULL || strlen(cfg->hash) != want ||
            ota_hex_decode(cfg->hash, want / 2, raw) != 0)
            return OTA_ERR_INVALID_ARG;
        for (size_t i = 0; i < want; i++) /* uploaders hash the lowercase digest */
            if (cfg->hash[i] >= 'A' && cfg->hash[i] <= 'F')
                return OTA_ERR_INVALID_ARG;
        if (cfg->auth == OTA_ARDUINO_AUTH_SHA256 && crypto->hmac_sha256 == NULL)
            return OTA_ERR_INVALID_ARG;
    }
    memset(a, 0, sizeof *a);
    a->udp = udp;
    a->tcp = tcp;
    a->crypto = crypto;
    a->log = log;
    a->update = update;
    a->guard = guard;
    a->cfg = *cfg;
    a->conn = -1;
    return OTA_OK;
}

static void reply(ota_arduino_t *a, const char *ip, uint16_t port, const char *text)
{
    (void)a->udp->send(a->udp->ctx, ip, port, (const uint8_t *)text, strlen(text));
}

/* "AUTH <nonce>" */
static void send_challenge(ota_arduino_t *a, const char *ip, uint16_t port, const char *nonce)
{
    char msg[80];
    ota_strbuf_t sb;
    ota_sb_init(&sb, msg, sizeof msg);
    ota_sb_str(&sb, OTA_ARDUINO_REPLY_AUTH);
    ota_sb_str(&sb, nonce);
    reply(a, ip, port, msg);
}

static void say(ota_arduino_t *a, ota_log_level_t lvl, const char *ip, const char *msg)
{
#if OTA_CFG_ENABLE_LOG_STRINGS
    char peer[64];
    ota_strbuf_t sb;
    ota_sb_init(&sb, peer, sizeof peer);
    ota_sb_str(&sb, ip);
    ota_sb_str(&sb, " (ArduinoOTA)");
    ota_log_peer(a->log, lvl, peer, msg, OTA_OK);
#else
    (void)a;
    (void)lvl;
    (void)ip;
    (void)msg;
#endif
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

static int hash_hex(ota_arduino_t *a, ota_hash_alg_t alg, const char *const *parts, int n,
                    char *out_hex)
{
    ota_hash_ctx_t ctx;
    uint8_t d[OTA_SHA256_LEN];
    int rc = a->crypto->hash_start(a->crypto->ctx, &ctx, alg);
    for (int i = 0; i < n && rc == OTA_OK; i++)
        rc = a->crypto->hash_update(a->crypto->ctx, &ctx, (const uint8_t *)parts[i],
                                    strlen(parts[i]));
    if (rc == OTA_OK)
        rc = a->crypto->hash_finish(a->crypto->ctx, &ctx, d);
    if (rc == OTA_OK)
        ota_hex_encode(d, alg == OTA_HASH_MD5 ? OTA_MD5_LEN : OTA_SHA256_LEN, out_hex);
    ota_wipe(&ctx, sizeof ctx);
    ota_wipe(d, sizeof d);
    return rc;
}

/* One slice of PBKDF2-HMAC-SHA256(key = stored hash, salt = nonce ":" cnonce), one
 * 32-byte block. Returns true when all iterations are done (result in a->t). */
static bool pbkdf2_slice(ota_arduino_t *a)
{
    const uint8_t *key = (const uint8_t *)a->cfg.hash;
    size_t key_len = OTA_SHA256_HEX_LEN;
    if (a->iter == 0) {
        uint8_t salt[2 * OTA_SHA256_HEX_LEN + 1 + 4];
        size_t n = strlen(a->nonce), m = strlen(a->cnonce);
        memcpy(salt, a->nonce, n);
        salt[n] = ':';
        memcpy(salt + n + 1, a->cnonce, m);
        static const uint8_t one[4] = {0, 0, 0, 1};
        memcpy(salt + n + 1 + m, one, 4);
        if (a->crypto->hmac_sha256(a->crypto->ctx, key, key_len, salt, n + 1 + m + 4, a->u) !=
            OTA_OK)
            return false;
        memcpy(a->t, a->u, sizeof a->t);
        a->iter = 1;
    }
    for (uint32_t k = 0; k < AR_ITERATIONS_PER_POLL && a->iter < OTA_ARDUINO_PBKDF2_ITERATIONS; k++) {
        if (a->crypto->hmac_sha256(a->crypto->ctx, key, key_len, a->u, sizeof a->u, a->u) != OTA_OK)
            return false;
        for (size_t i = 0; i < sizeof a->t; i++)
            a->t[i] ^= a->u[i];
        a->iter++;
    }
    return a->iter >= OTA_ARDUINO_PBKDF2_ITERATIONS;
}

/* Give up the update this listener holds (slot or data slot), if any. */
static void release(ota_arduino_t *a, int err)
{
    ota_update_abort(a->update, OTA_UPDATE_HOLDER_ARDUINO, err);
}

static void to_idle(ota_arduino_t *a)
{
    ota_wipe(a->u, sizeof a->u);
    ota_wipe(a->t, sizeof a->t);
    ota_wipe(a->nonce, sizeof a->nonce);
    ota_wipe(a->response, sizeof a->response);
    a->state = AR_IDLE;
    a->iter = 0;
}

/* Take the update lock and the slot, answer "OK" and connect back. */
static void prepare_update(ota_arduino_t *a);

static void begin_update(ota_arduino_t *a)
{
    ota_update_t *u = a->update;
    if (ota_update_lock(u, OTA_UPDATE_HOLDER_ARDUINO) != OTA_OK) {
        reply(a, a->ip, a->udp_port, "ERR: another update is in progress");
        to_idle(a);
        return;
    }
    a->state = AR_PREPARE;
    a->prepare_ms = a->now_ms;
    prepare_update(a);
}

/* The store may answer WOULD_BLOCK while it erases (ota/port.h): try again on the
 * next polls, the invitation's answer waits until the slot is ready. */
static void prepare_update(ota_arduino_t *a)
{
    ota_update_t *u = a->update;
    int rc = ota_update_begin(u, a->size, a->md5, a->cmd == OTA_ARDUINO_CMD_SPIFFS ? OTA_UPDATE_F_DATA : 0);
    if (rc == OTA_ERR_WOULD_BLOCK) {
        if (ota_elapsed_ms(a->now_ms, a->prepare_ms) < AR_PREPARE_MAX_MS)
            return;
        rc = OTA_ERR_PREPARE;
    }
    if (rc != OTA_OK && rc != OTA_ERR_CRYPTO) {
        reply(a, a->ip, a->udp_port,
              rc == OTA_ERR_NO_SPACE ? "ERR: the image does not fit the update slot"
              /* the words of ESP8266's Updater for the same case */
              : rc == OTA_ERR_NO_SPACE_LAYOUT ? "ERR: Not Enough Space"
                                              : "ERR: cannot prepare the update slot");
        say(a, OTA_LOG_WARN, a->ip, "cannot prepare the update slot");
        release(a, rc);
        to_idle(a);
        return;
    }
    if (rc != OTA_OK || a->tcp->connect(a->tcp->ctx, a->ip, a->host_port, &a->conn) != OTA_OK) {
        reply(a, a->ip, a->udp_port, "ERR: cannot connect back to the uploader");
        release(a, OTA_ERR_IO);
        a->conn = -1;
        to_idle(a);
        return;
    }
    reply(a, a->ip, a->udp_port, OTA_ARDUINO_REPLY_OK);
    say(a, OTA_LOG_INFO, a->ip, "update started over ArduinoOTA");
    a->state = AR_DATA;
    a->state_ms = a->now_ms;
    a->tx_len = a->tx_off = 0;
}

static void check_response(ota_arduino_t *a)
{
    char expected[OTA_SHA256_HEX_LEN + 1];
    int rc;
    if (a->cfg.auth == OTA_ARDUINO_AUTH_MD5) {
        const char *parts[] = {a->cfg.hash, OTA_ARDUINO_SEPARATOR, a->nonce, OTA_ARDUINO_SEPARATOR, a->cnonce};
        rc = hash_hex(a, OTA_HASH_MD5, parts, 5, expected);
    } else {
        char dk[OTA_SHA256_HEX_LEN + 1];
        ota_hex_encode(a->t, sizeof a->t, dk);
        dk[OTA_SHA256_HEX_LEN] = '\0';
        const char *parts[] = {dk, OTA_ARDUINO_SEPARATOR, a->nonce, OTA_ARDUINO_SEPARATOR, a->cnonce};
        rc = hash_hex(a, OTA_HASH_SHA256, parts, 5, expected);
        ota_wipe(dk, sizeof dk);
    }
    size_t len = strlen(a->response);
    bool ok = rc == OTA_OK &&
              len == (a->cfg.auth == OTA_ARDUINO_AUTH_MD5 ? (size_t)OTA_MD5_HEX_LEN
                                                          : (size_t)OTA_SHA256_HEX_LEN) &&
              ota_ct_equal(expected, a->response, len);
    ota_wipe(expected, sizeof expected);
    if (!ok) {
        reply(a, a->ip, a->udp_port, OTA_ARDUINO_REPLY_AUTH_FAILED);
        say(a, OTA_LOG_WARN, a->ip, "wrong password (ArduinoOTA)");
        ota_guard_failed(a->guard, a->ip, a->now_ms);
        to_idle(a);
        return;
    }
    ota_guard_ok(a->guard, a->ip, a->now_ms);
    say(a, OTA_LOG_INFO, a->ip, "authenticated (ArduinoOTA)");
    begin_update(a);
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
static ota_arduino_offer_t *offer_take(ota_arduino_t *a, const char *ip)
{
    ota_arduino_offer_t *o = offer_find(a, ip);
    if (o != NULL)
        return o;
    o = &a->offers[0];
    for (int i = 0; i < OTA_CFG_ARDUINO_OFFERS; i++) {
        ota_arduino_offer_t *c = &a->offers[i];
        if (c->ip[0] == '\0')
            return c;
        if (ota_elapsed_ms(a->now_ms, c->sent_ms) > ota_elapsed_ms(a->now_ms, o->sent_ms))
            o = c;
    }
    return o;
}

/* An answer to the challenge of offer o: make it the exchange under way. */
static void on_answer(ota_arduino_t *a, ota_arduino_offer_t *o, char *cnonce, char *response,
                      uint16_t from_port)
{
    size_t hex = strlen(o->nonce);
    if (!is_hex(cnonce, hex) || !is_hex(response, hex)) {
        reply(a, o->ip, from_port, OTA_ARDUINO_REPLY_AUTH_FAILED);
        ota_guard_failed(a->guard, o->ip, a->now_ms);
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
    a->state_ms = a->now_ms;
    offer_clear(o);
    memcpy(a->cnonce, cnonce, hex + 1);
    memcpy(a->response, response, hex + 1);
    if (a->cfg.auth == OTA_ARDUINO_AUTH_MD5) {
        check_response(a);
    } else {
        a->state = AR_HASH;
        a->iter = 0;
    }
}

static void on_datagram(ota_arduino_t *a, char *text, const char *ip, uint16_t from_port)
{
    size_t n = strlen(text);
    while (n > 0 && (text[n - 1] == '\n' || text[n - 1] == '\r'))
        text[--n] = '\0';
    char *f[5];
    int nf = split(text, f, 4);
    bool busy = a->state != AR_IDLE || ota_update_busy(a->update);

    /* the answer to a challenge */
    uint32_t cmd, port, size;
    if (nf == 3 && parse_u32(f[0], 999, &cmd) == 0 && cmd == OTA_ARDUINO_CMD_AUTH) {
        ota_arduino_offer_t *o = offer_find(a, ip);
        if (o == NULL) {
            ota_log_peer_repeat(a->log, OTA_LOG_REPEAT_UDP, a->now_ms, OTA_LOG_DEBUG, ip,
                                "ignored an ArduinoOTA answer to no challenge", OTA_OK);
            return;
        }
        if (busy) { /* another exchange is under way; the offer stays for a retry */
            reply(a, ip, from_port, "ERR: another update is in progress");
            return;
        }
        on_answer(a, o, f[1], f[2], from_port);
        return;
    }
    /* an invitation: "<cmd> <host_port> <size> <md5>" */
    if (nf != 4 || parse_u32(f[0], 999, &cmd) != 0 || parse_u32(f[1], 65535, &port) != 0 ||
        port == 0 || parse_u32(f[2], 0xFFFFFFFFu, &size) != 0 || size == 0 ||
        !is_hex(f[3], OTA_MD5_HEX_LEN)) {
        ota_log_peer_repeat(a->log, OTA_LOG_REPEAT_UDP, a->now_ms, OTA_LOG_DEBUG, ip,
                            "ignored a malformed ArduinoOTA datagram", OTA_OK);
        return;
    }
    if (busy) {
        reply(a, ip, from_port, "ERR: another update is in progress");
        return;
    }
    bool fs_ok = cmd == OTA_ARDUINO_CMD_SPIFFS && ota_update_has_data_store(a->update);
    if (cmd != OTA_ARDUINO_CMD_FLASH && !fs_ok) {
        reply(a, ip, from_port,
              cmd == OTA_ARDUINO_CMD_SPIFFS ? "ERR: this node takes no filesystem images"
                         : "ERR: unknown update command");
        ota_log_peer_repeat(a->log, OTA_LOG_REPEAT_UDP, a->now_ms, OTA_LOG_WARN, ip,
                            "refused an ArduinoOTA filesystem or unknown command", OTA_OK);
        return;
    }
    size_t iplen = strlen(ip);
    if (iplen >= sizeof a->ip)
        return;
    if (a->cfg.auth == OTA_ARDUINO_AUTH_NONE) {
        memcpy(a->ip, ip, iplen + 1);
        a->udp_port = from_port;
        a->host_port = (uint16_t)port;
        a->size = size;
        a->cmd = (uint8_t)cmd;
        ota_hex_decode(f[3], OTA_MD5_LEN, a->md5);
        a->state_ms = a->now_ms;
        begin_update(a);
        return;
    }
    ota_arduino_offer_t *o = offer_find(a, ip);
    if (o != NULL && o->host_port == port && o->size == size) {
        send_challenge(a, ip, from_port, o->nonce); /* it did not get it: again */
        return;
    }
    uint32_t wait = ota_guard_wait(a->guard, ip, a->now_ms);
    if (wait > AR_QUIET_WAIT_MS) {
        char msg[96];
        ota_strbuf_t sb;
        ota_sb_init(&sb, msg, sizeof msg);
        ota_sb_str(&sb, ota_guard_source_wait(a->guard, ip, a->now_ms) > 0
                            ? "ERR: authentication is delayed after repeated failures; retry in "
                            : "ERR: too many login attempts on this node; retry in ");
        ota_sb_u32(&sb, (wait + 999u) / 1000u);
        ota_sb_str(&sb, " s");
        reply(a, ip, from_port, msg);
        ota_log_peer_repeat(a->log, OTA_LOG_REPEAT_WAIT, a->now_ms, OTA_LOG_INFO, ip,
                            "ArduinoOTA auth delayed by the brute-force back-off", OTA_OK);
        return;
    }
    if (wait > 0) { /* short: the uploader's next resend gets its challenge */
        ota_log_peer_repeat(a->log, OTA_LOG_REPEAT_WAIT, a->now_ms, OTA_LOG_INFO, ip,
                            "ArduinoOTA auth delayed by the brute-force back-off", OTA_OK);
        return;
    }
    size_t hex = a->cfg.auth == OTA_ARDUINO_AUTH_MD5 ? OTA_MD5_HEX_LEN : OTA_SHA256_HEX_LEN;
    o = offer_take(a, ip);
    offer_clear(o);
    if (ota_auth_random_hex(a->crypto, o->nonce, hex) != OTA_OK)
        return;
    o->nonce[hex] = '\0';
    memcpy(o->ip, ip, iplen + 1);
    o->udp_port = from_port;
    o->host_port = (uint16_t)port;
    o->size = size;
    o->cmd = (uint8_t)cmd;
    ota_hex_decode(f[3], OTA_MD5_LEN, o->md5);
    o->sent_ms = a->now_ms;
    ota_guard_attempt(a->guard, ip, a->now_ms);
    send_challenge(a, ip, from_port, o->nonce);
}

/* ------------------------------------------------------------ data */

static void finish_data(ota_arduino_t *a, const char *text, int err)
{
    size_t n = strlen(text);
    if (n > sizeof a->tx - 1)
        n = sizeof a->tx - 1;
    memcpy(a->tx, text, n);
    a->tx_len = (uint8_t)n;
    a->tx_off = 0;
    if (err != OTA_OK) {
        say(a, OTA_LOG_WARN, a->ip, text);
        release(a, err);
    }
    a->state = AR_CLOSING;
    a->state_ms = a->now_ms;
}

static bool flush_tx(ota_arduino_t *a)
{
    while (a->tx_off < a->tx_len) {
        int rc = a->tcp->send(a->tcp->ctx, a->conn, (const uint8_t *)a->tx + a->tx_off,
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

static void close_conn(ota_arduino_t *a)
{
    if (a->conn >= 0)
        a->tcp->close(a->tcp->ctx, a->conn);
    a->conn = -1;
    to_idle(a);
}

static void data_step(ota_arduino_t *a)
{
    ota_update_t *u = a->update;
    if (!flush_tx(a)) { /* the uploader reads each answer before sending more */
        uint32_t limit = u->received ? a->cfg.data_timeout_ms : OTA_ARDUINO_CONNECT_TIMEOUT_MS;
        if (ota_elapsed_ms(a->now_ms, a->state_ms) >= limit) { /* it stopped reading */
            say(a, OTA_LOG_WARN, a->ip, "uploader stopped reading; update abandoned");
            release(a, OTA_ERR_TIMEOUT);
            close_conn(a);
        }
        return;
    }
    if (u->data_len > 0) {
        int rc = ota_update_pump(u);
        if (rc == OTA_ERR_WOULD_BLOCK)
            return;
        if (rc != OTA_OK) {
            finish_data(a,
                        rc == OTA_ERR_NO_SPACE ? "ERR: the image does not fit the slot\n"
                                               : "ERR: writing the image failed\n",
                        rc);
            return;
        }
        /* every read is answered with the cumulative count, without batching */
        ota_strbuf_t sb;
        ota_sb_init(&sb, a->tx, sizeof a->tx);
        ota_sb_u32(&sb, u->written);
        ota_sb_str(&sb, "\n");
        a->tx_len = (uint8_t)sb.len;
        a->tx_off = 0;
        if (!flush_tx(a))
            return;
    }
    if (ota_update_complete(u)) {
        int rc = ota_update_finish(u);
        switch (rc) {
        case OTA_OK: break;
        case OTA_ERR_CRYPTO:
        case OTA_ERR_MD5_MISMATCH:
            finish_data(a, "ERR: MD5 mismatch\n", OTA_ERR_MD5_MISMATCH);
            return;
        case OTA_ERR_BAD_IMAGE: finish_data(a, "ERR: not a valid firmware image\n", rc); return;
        case OTA_ERR_ACTIVATE: finish_data(a, "ERR: cannot activate the image\n", rc); return;
#if OTA_CFG_ENABLE_SIGNED
        case OTA_ERR_ROLLBACK: finish_data(a, "ERR: security version too old\n", rc); return;
        case OTA_ERR_NOT_SIGNED:
        case OTA_ERR_UNTRUSTED_KEY:
        case OTA_ERR_BAD_SIGNATURE:
            finish_data(a, "ERR: image not signed by a trusted key\n", rc);
            return;
#endif
        default:
            finish_data(a,
                        a->cmd == OTA_ARDUINO_CMD_SPIFFS ? "ERR: writing the filesystem image failed\n"
                                      : "ERR: writing the image failed\n",
                        rc);
            return;
        }
        /* a filesystem image is live now: reboot to use it, as the Arduino cores do */
        say(a, OTA_LOG_INFO, a->ip,
            a->cmd == OTA_ARDUINO_CMD_SPIFFS ? "filesystem image written over ArduinoOTA"
                          : "update complete over ArduinoOTA, activated");
        finish_data(a, OTA_ARDUINO_DATA_OK, OTA_OK);
        return;
    }
    uint8_t *buf;
    size_t want = ota_update_room(u, &buf);
    int n = a->tcp->recv(a->tcp->ctx, a->conn, buf, want);
    if (n == OTA_ERR_WOULD_BLOCK) {
        uint32_t limit = u->received ? a->cfg.data_timeout_ms : OTA_ARDUINO_CONNECT_TIMEOUT_MS;
        if (ota_elapsed_ms(a->now_ms, a->state_ms) >= limit) {
            say(a, OTA_LOG_WARN, a->ip,
                u->received ? "uploader silent; update abandoned"
                            : "cannot connect back to the uploader");
            release(a, OTA_ERR_TIMEOUT);
            close_conn(a);
        }
        return;
    }
    if (n <= 0) {
        say(a, OTA_LOG_WARN, a->ip, "the uploader went away; update abandoned");
        release(a, OTA_ERR_CLOSED);
        close_conn(a);
        return;
    }
    a->state_ms = a->now_ms;
    if (ota_update_received(u, (size_t)n) != OTA_OK)
        finish_data(a, "ERR: MD5 mismatch\n", OTA_ERR_CRYPTO);
}

void ota_arduino_poll(ota_arduino_t *a, uint32_t now_ms)
{
    if (a->udp == NULL)
        return;
    a->now_ms = now_ms;
    /* datagrams (a bounded number per poll) */
    for (int k = 0; k < 8; k++) {
        uint8_t buf[AR_DATGRAM_MAX + 1];
        char ip[48];
        uint16_t from_port = 0;
        ip[0] = '\0';
        int n = a->udp->recv(a->udp->ctx, buf, AR_DATGRAM_MAX, ip, sizeof ip, &from_port);
        if (n < 0)
            break;
        ip[sizeof ip - 1] = '\0';
        buf[n] = '\0';
        if (memchr(buf, '\0', (size_t)n) != NULL)
            continue; /* binary garbage */
        on_datagram(a, (char *)buf, ip, from_port);
    }
    for (int i = 0; i < OTA_CFG_ARDUINO_OFFERS; i++) /* challenges never answered */
        if (a->offers[i].ip[0] != '\0' &&
            ota_elapsed_ms(a->now_ms, a->offers[i].sent_ms) >= AR_AUTH_TIMEOUT_MS)
            offer_clear(&a->offers[i]);
    switch (a->state) {
    case AR_HASH:
        if (pbkdf2_slice(a))
            check_response(a);
        break;
    case AR_PREPARE:
        prepare_update(a);
        break;
    case AR_DATA:
        for (int k = 0; k < 16 && a->state == AR_DATA; k++) {
            uint32_t before = a->update->received;
            uint8_t tx_before = a->tx_off;
            data_step(a);
            if (a->update->received == before && a->tx_off == tx_before)
                break; /* nothing moved: wait for the next poll */
        }
        break;
    case AR_CLOSING:
        if (flush_tx(a) || ota_elapsed_ms(a->now_ms, a->state_ms) > 2000u) {
            bool done = a->update->activated;
            release(a, OTA_OK); /* the lock, after a success */
            close_conn(a);
            if (done)
                a->reboot_due = true;
        }
        break;
    default:
        break;
    }
}

bool ota_arduino_active(const ota_arduino_t *a)
{
    return a->state != AR_IDLE;
}

bool ota_arduino_reboot_due(const ota_arduino_t *a)
{
    return a->reboot_due;
}

void ota_arduino_free(ota_arduino_t *a)
{
    if (a->udp == NULL)
        return;
    if (a->state == AR_DATA || a->state == AR_PREPARE)
        release(a, OTA_ERR_CLOSED);
    if (a->conn >= 0)
        close_conn(a);
    to_idle(a);
    for (int i = 0; i < OTA_CFG_ARDUINO_OFFERS; i++)
        offer_clear(&a->offers[i]);
}

#else /* !OTA_CFG_ENABLE_ARDUINO: a configuration asking for it is refused at setup */

int ota_arduino_setup(ota_arduino_t *a, const ota_udp_port_t *udp, const ota_tcp_port_t *tcp,
                      const ota_crypto_port_t *crypto, ota_logger_t *log, ota_update_t *update,
                      ota_guard_t *guard, const ota_arduino_config_t *cfg)
{
    (void)a;
    (void)udp;
    (void)tcp;
    (void)crypto;
    (void)log;
    (void)update;
    (void)guard;
    (void)cfg;
    return OTA_ERR_INVALID_ARG;
}

void ota_arduino_poll(ota_arduino_t *a, uint32_t now_ms)
{
    (void)a;
    (void)now_ms;
}

bool ota_arduino_active(const ota_arduino_t *a)
{
    (void)a;
    return false;
}

bool ota_arduino_reboot_due(const ota_arduino_t *a)
{
    (void)a;
    return false;
}

void ota_arduino_free(ota_arduino_t *a)
{
    (void)a;
}

#endif
