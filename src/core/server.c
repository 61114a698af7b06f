/*
 * server.c - the device side of the native OTA protocol (PROTOCOL.md section 1).
 *
 * A pool of sessions runs the handshake side by side; the first one to
 * authenticate (or, with no password, to announce its size) takes the single
 * update lock and streams the image into the inactive slot. Everything is driven
 * by ota_server_poll(): no call waits for the peer, the clock comes from the
 * caller, and every buffer lives in ota_server_t. The steps, the lock and the
 * timeouts are drawn in docs/design.md.
 */
#include "ota/server.h"

#include <string.h>

#include "ota/auth.h"
#include "ota/util.h"
#include "server_internal.h"

_Static_assert(2 + OTA_SALTED_CHALLENGE_LEN <= OTA_SESSION_TX_MAX, "tx too small for salted");
_Static_assert(1 + OTA_SALTED_KEY_LEN <= OTA_SESSION_TX_MAX, "tx too small for AUTH_OK + sig");
_Static_assert(OTA_SALTED_REPLY_LEN <= OTA_SESSION_RX_MAX, "rx too small for salted reply");
_Static_assert(OTA_SALTED_NONCE_LEN <= OTA_SHA256_HEX_LEN, "nonce storage too small");

#define NO_SESSION (-1)
#define ACCEPTS_PER_POLL 16
#define ACK_BURST 64

/* ------------------------------------------------------------------ logging */

static void log_line(const ota_server_t *s, ota_log_level_t lvl, const ota_strbuf_t *sb)
{
    if (s->port->log != NULL)
        s->port->log(s->user, lvl, sb->buf);
}

/* Start a log line "<peer>: " in line (OTA_CFG_LOG_LINE_MAX bytes). */
static void peer_line(ota_strbuf_t *sb, char *line, const char *peer)
{
    ota_sb_init(sb, line, OTA_CFG_LOG_LINE_MAX);
    ota_sb_str(sb, peer);
    ota_sb_str(sb, ": ");
}

/* "<peer>: <msg>[: <strerror(err)>]" */
static void log_peer(const ota_server_t *s, ota_log_level_t lvl, const ota_session_t *ss,
                     const char *msg, int err)
{
    char line[OTA_CFG_LOG_LINE_MAX];
    ota_strbuf_t sb;
    peer_line(&sb, line, ss->peer);
    ota_sb_str(&sb, msg);
    if (err != OTA_OK) {
        ota_sb_str(&sb, ": ");
        ota_sb_str(&sb, ota_strerror(err));
    }
    log_line(s, lvl, &sb);
}

/* ---------------------------------------------------- repeated log lines */

/* What a summary of each kind of repeated line says: "<head>N<tail>". */
static const struct {
    const char *head, *tail;
    ota_log_level_t lvl;
} repeats[OTA_SRV_RL_COUNT] = {
    [OTA_SRV_RL_DROP] = {"handshake pool full: ", " more dropped", OTA_LOG_WARN},
    [OTA_SRV_RL_BUSY] = {"update in progress: ", " more connections refused", OTA_LOG_WARN},
    [OTA_SRV_RL_HANDSHAKE] = {"failed handshakes: ", " more", OTA_LOG_WARN},
    [OTA_SRV_RL_CONNECT] = {"connections: ", " more", OTA_LOG_DEBUG},
    [OTA_SRV_RL_WAIT] = {"brute-force back-off: ", " more attempts delayed", OTA_LOG_INFO},
    [OTA_SRV_RL_UDP] = {"ArduinoOTA: ", " more datagrams ignored or refused", OTA_LOG_WARN},
};

bool ota_srv_log_allowed(ota_server_t *s, int kind)
{
    return ota_ratelimit_allow(&s->rl[kind], s->now_ms, OTA_CFG_LOG_REPEAT_MS);
}

void ota_srv_log_repeat(ota_server_t *s, int kind, ota_log_level_t lvl, const char *peer,
                        const char *msg)
{
    if (ota_srv_log_allowed(s, kind))
        ota_srv_log(s, lvl, peer, msg);
}

/* Once per poll: the summaries that are due. */
static void log_repeat_summaries(ota_server_t *s)
{
    for (int k = 0; k < OTA_SRV_RL_COUNT; k++) {
        uint32_t n = ota_ratelimit_due(&s->rl[k], s->now_ms, OTA_CFG_LOG_REPEAT_MS);
        if (n == 0)
            continue;
        char line[OTA_CFG_LOG_LINE_MAX];
        ota_strbuf_t sb;
        ota_sb_init(&sb, line, sizeof line);
        ota_sb_str(&sb, repeats[k].head);
        ota_sb_u32(&sb, n);
        ota_sb_str(&sb, repeats[k].tail);
        ota_sb_str(&sb, " in the last ");
        ota_sb_u32(&sb, OTA_CFG_LOG_REPEAT_MS / 1000u);
        ota_sb_str(&sb, " s");
        log_line(s, repeats[k].lvl, &sb);
    }
}

/* log_peer, but as one of a kind of repeated line */
static void log_peer_repeat(ota_server_t *s, int kind, ota_log_level_t lvl,
                            const ota_session_t *ss, const char *msg, int err)
{
    if (ota_srv_log_allowed(s, kind))
        log_peer(s, lvl, ss, msg, err);
}

static const char *step_name(uint8_t step)
{
    switch (step) {
    case OTA_STEP_MAGIC: return "magic";
    case OTA_STEP_FEATURES: return "features";
    case OTA_STEP_AUTH_WAIT: return "auth back-off";
    case OTA_STEP_AUTH_REPLY: return "authentication";
    case OTA_STEP_UPDATE_TYPE: return "update type";
    case OTA_STEP_SIZE: return "size";
    case OTA_STEP_PREPARE: return "prepare";
    case OTA_STEP_MD5: return "md5";
    case OTA_STEP_DATA: return "data";
    case OTA_STEP_FINISH: return "finish";
    case OTA_STEP_FINAL_ACK: return "final ack";
    case OTA_STEP_CLOSING: return "closing";
    default: return "?";
    }
}

/* ------------------------------------------------------------ configuration */

void ota_server_config_default(ota_server_config_t *cfg)
{
    memset(cfg, 0, sizeof *cfg);
    cfg->version = OTA_PROTOCOL_VERSION_2;
    cfg->password = NULL;
    cfg->allow_sha256 = true;
    cfg->allow_md5 = false;
    cfg->compression = true;
    cfg->auth_backoff_free = 3;
    cfg->auth_backoff_base_ms = 1000u;
    cfg->auth_backoff_max_ms = 30000u;
    cfg->auth_guesses_per_min = 30u;
    cfg->handshake_timeout_ms = OTA_CFG_HANDSHAKE_TIMEOUT_MS;
    cfg->data_timeout_ms = OTA_CFG_DATA_TIMEOUT_MS;
    cfg->final_ack_timeout_ms = 2000u;
}

static bool has_password(const ota_server_t *s)
{
    return s->cfg.password != NULL && s->cfg.password[0] != '\0';
}

static bool auth_required(const ota_server_t *s)
{
    return has_password(s) || s->has_verifier;
}

static bool accepts_gzip(const ota_server_t *s)
{
#if OTA_CFG_ENABLE_COMPRESSION
    return s->cfg.compression && s->port->inflate_begin != NULL;
#else
    (void)s;
    return false;
#endif
}

void ota_server_init(ota_server_t *srv)
{
    if (srv == NULL)
        return;
    memset(srv, 0, sizeof *srv);
    for (int i = 0; i < OTA_CFG_MAX_SESSIONS; i++)
        srv->sessions[i].conn = -1;
    srv->update.session = NO_SESSION;
    srv->arduino.conn = -1;
}

int ota_server_setup(ota_server_t *srv, const ota_port_t *port, void *user,
                     const ota_server_config_t *cfg)
{
    if (srv == NULL || port == NULL || cfg == NULL)
        return OTA_ERR_INVALID_ARG;
    if (port->net_accept == NULL || port->net_recv == NULL || port->net_send == NULL ||
        port->net_close == NULL || port->slot_begin == NULL || port->slot_write == NULL ||
        port->slot_finish == NULL || port->slot_activate == NULL || port->slot_abort == NULL ||
        port->reboot == NULL || port->random == NULL || port->hash_start == NULL ||
        port->hash_update == NULL || port->hash_finish == NULL)
        return OTA_ERR_INVALID_ARG;
    /* inflation is all or nothing */
    if ((port->inflate_begin == NULL) != (port->inflate_run == NULL) ||
        (port->inflate_begin == NULL) != (port->inflate_end == NULL))
        return OTA_ERR_INVALID_ARG;
    if (cfg->version != OTA_PROTOCOL_VERSION_1 && cfg->version != OTA_PROTOCOL_VERSION_2)
        return OTA_ERR_INVALID_ARG;
    if (cfg->password != NULL && cfg->password[0] != '\0') {
#if OTA_CFG_ENABLE_LEGACY_AUTH
        if (!cfg->allow_sha256 && !cfg->allow_md5)
            return OTA_ERR_INVALID_ARG;
#else
        return OTA_ERR_INVALID_ARG;
#endif
    }
    if (cfg->arduino_enabled && ota_arduino_check_config(port, cfg) != OTA_OK)
        return OTA_ERR_INVALID_ARG;
    ota_verifier_t v;
    bool has_verifier = false;
    if (cfg->verifier != NULL && cfg->verifier[0] != '\0') {
        if (port->hmac_sha256 == NULL || ota_verifier_parse(cfg->verifier, &v) != OTA_OK)
            return OTA_ERR_INVALID_ARG;
        has_verifier = true;
    }
    ota_server_init(srv);
    srv->port = port;
    srv->user = user;
    srv->cfg = *cfg;
    if (has_verifier) {
        srv->verifier = v;
        srv->has_verifier = true;
        ota_wipe(&v, sizeof v);
    }
    return OTA_OK;
}

/* ------------------------------------------------------------------ helpers */

void ota_srv_notify(ota_server_t *s, ota_state_t st, int err)
{
    if (s->cfg.on_state != NULL)
        s->cfg.on_state(s->cfg.on_state_arg, st, s->update.received, s->update.size, err);
}

static void queue(ota_session_t *ss, const uint8_t *bytes, size_t n)
{
    /* Callers never queue more than OTA_SESSION_TX_MAX in one step; the pool of
     * handshake replies is sized for the longest (feature reply + challenge). */
    if ((size_t)ss->tx_len + n > sizeof ss->tx)
        n = sizeof ss->tx - ss->tx_len;
    if (n == 0)
        return;
    memcpy(ss->tx + ss->tx_len, bytes, n);
    ss->tx_len = (uint8_t)(ss->tx_len + n);
}

static void queue1(ota_session_t *ss, uint8_t b)
{
    queue(ss, &b, 1);
}

static void expect(ota_session_t *ss, uint8_t step, uint16_t need)
{
    ss->step = step;
    ss->rx_len = 0;
    ss->rx_need = need;
}

/* Abort the update this session holds (if any): the slot is discarded, the
 * running image and the boot state are untouched. */
void ota_srv_release_update(ota_server_t *s, int idx, int err)
{
    ota_update_t *u = &s->update;
    if (u->session != idx)
        return;
#if OTA_CFG_ENABLE_COMPRESSION
    if (u->inflating)
        s->port->inflate_end(s->user);
#endif
    if (u->slot_open)
        s->port->slot_abort(s->user);
    bool started = u->slot_open;
    u->inflating = false;
    u->slot_open = false;
    u->session = NO_SESSION;
    ota_wipe(&u->md5_ctx, sizeof u->md5_ctx);
    if (started)
        ota_srv_notify(s, OTA_STATE_ERROR, err);
}

static void close_session(ota_server_t *s, int idx, int err)
{
    ota_session_t *ss = &s->sessions[idx];
    if (ss->step == OTA_STEP_FREE)
        return;
    ota_srv_release_update(s, idx, err == OTA_OK ? OTA_ERR_CLOSED : err);
    s->port->net_close(s->user, ss->conn);
    ota_wipe(ss, sizeof *ss);
    ss->conn = -1;
    ss->step = OTA_STEP_FREE;
}

/* Answer an error code, then close once it is sent. */
static void fail(ota_server_t *s, int idx, int err, const char *what)
{
    ota_session_t *ss = &s->sessions[idx];
    if (ss->step <= OTA_STEP_FEATURES) /* garbage before the handshake: floods do that */
        log_peer_repeat(s, OTA_SRV_RL_HANDSHAKE, OTA_LOG_WARN, ss, what, err);
    else
        log_peer(s, OTA_LOG_WARN, ss, what, err);
    ota_srv_release_update(s, idx, err);
    queue1(ss, ota_protocol_response_for_error(err));
    ss->close_after_send = true;
    ss->close_err = err;
    ss->step = OTA_STEP_CLOSING;
}

/* Take the update lock for this session; false (after answering BUSY) if another
 * peer holds it. */
static bool take_lock(ota_server_t *s, int idx)
{
    ota_update_t *u = &s->update;
    if (u->session != NO_SESSION || s->reboot_pending) {
        ota_session_t *ss = &s->sessions[idx];
        log_peer_repeat(s, OTA_SRV_RL_BUSY, OTA_LOG_WARN, ss,
                        "refused, another update is in progress", OTA_OK);
        queue1(ss, OTA_RESP_ERROR_BUSY);
        ss->close_after_send = true;
        ss->step = OTA_STEP_CLOSING;
        return false;
    }
    memset(u, 0, sizeof *u);
    u->session = idx;
    return true;
}

/* Send pending chunk acks first, then queued handshake bytes. */
static int flush(ota_server_t *s, int idx)
{
    ota_session_t *ss = &s->sessions[idx];
    ota_update_t *u = &s->update;
    if (u->session == idx) {
        while (u->pending_acks > 0) {
            uint8_t acks[ACK_BURST];
            size_t n = u->pending_acks < ACK_BURST ? u->pending_acks : ACK_BURST;
            memset(acks, OTA_RESP_CHUNK_OK, n);
            int rc = s->port->net_send(s->user, ss->conn, acks, n);
            if (rc < 0)
                return rc;
            u->pending_acks -= (uint32_t)rc;
            if ((size_t)rc < n)
                return OTA_ERR_WOULD_BLOCK;
        }
    }
    while (ss->tx_off < ss->tx_len) {
        int rc = s->port->net_send(s->user, ss->conn, ss->tx + ss->tx_off,
                                   (size_t)(ss->tx_len - ss->tx_off));
        if (rc < 0)
            return rc;
        ss->tx_off = (uint8_t)(ss->tx_off + rc);
    }
    ss->tx_off = ss->tx_len = 0;
    return OTA_OK;
}

/* --------------------------------------------------------------- handshake */

/* ------------------------------------------------------------ brute force */

void ota_srv_addr_key(const char *peer, char key[OTA_CFG_ADDR_MAX])
{
    /* "1.2.3.4:port" -> "1.2.3.4", "[v6]:port" -> "v6"; no port, or a bare IPv6
     * address (more than one colon, as ArduinoOTA datagrams name their sender): as is */
    const char *p = peer;
    size_t n = strlen(peer);
    if (p[0] == '[') {
        p++;
        const char *end = memchr(p, ']', n - 1);
        n = end != NULL ? (size_t)(end - p) : n - 1;
    } else {
        const char *colon = NULL;
        int colons = 0;
        for (const char *q = p; *q; q++)
            if (*q == ':') {
                colon = q;
                colons++;
            }
        if (colons == 1)
            n = (size_t)(colon - p);
    }
    if (n > OTA_CFG_ADDR_MAX - 1)
        n = OTA_CFG_ADDR_MAX - 1;
    memcpy(key, p, n);
    key[n] = '\0';
}

static ota_auth_source_t *source_find(ota_server_t *s, const char *key)
{
    for (int i = 0; i < OTA_CFG_AUTH_SOURCES; i++)
        if (s->auth_sources[i].addr[0] != '\0' && strcmp(s->auth_sources[i].addr, key) == 0)
            return &s->auth_sources[i];
    return NULL;
}

/* The entry of key, made (in a free entry, else the least recently used one). */
static ota_auth_source_t *source_get(ota_server_t *s, const char *key)
{
    ota_auth_source_t *e = source_find(s, key);
    if (e != NULL)
        return e;
    e = &s->auth_sources[0];
    for (int i = 0; i < OTA_CFG_AUTH_SOURCES; i++) {
        ota_auth_source_t *c = &s->auth_sources[i];
        if (c->addr[0] == '\0') {
            e = c;
            break;
        }
        if (ota_elapsed_ms(s->now_ms, c->used_ms) > ota_elapsed_ms(s->now_ms, e->used_ms))
            e = c;
    }
    memset(e, 0, sizeof *e);
    size_t n = strlen(key);
    memcpy(e->addr, key, n + 1);
    return e;
}

/* The wait after n + 1 failures in a row: 0 for the free ones, then base ms,
 * doubling per failure up to max ms. */
static uint32_t backoff_delay(const ota_server_t *s, uint32_t failures)
{
    return ota_backoff_ms(failures + 1u, s->cfg.auth_backoff_free, s->cfg.auth_backoff_base_ms,
                          s->cfg.auth_backoff_max_ms);
}

#define GUESS_WINDOW_MS 60000u

uint32_t ota_srv_source_wait(const ota_server_t *s, const char *key)
{
    for (int i = 0; i < OTA_CFG_AUTH_SOURCES; i++) {
        const ota_auth_source_t *e = &s->auth_sources[i];
        if (e->addr[0] == '\0' || strcmp(e->addr, key) != 0)
            continue;
        uint32_t gone = ota_elapsed_ms(s->now_ms, e->wait_start_ms);
        return gone < e->wait_ms ? e->wait_ms - gone : 0;
    }
    return 0;
}

uint32_t ota_srv_global_wait(const ota_server_t *s)
{
    if (s->cfg.auth_guesses_per_min == 0 || s->guesses < s->cfg.auth_guesses_per_min)
        return 0;
    uint32_t gone = ota_elapsed_ms(s->now_ms, s->guess_window_ms);
    return gone < GUESS_WINDOW_MS ? GUESS_WINDOW_MS - gone : 0;
}

uint32_t ota_srv_auth_wait(const ota_server_t *s, const char *key)
{
    uint32_t a = ota_srv_source_wait(s, key), b = ota_srv_global_wait(s);
    return a > b ? a : b;
}

/* One answer was checked: a guess against the global ceiling. */
static void count_guess(ota_server_t *s)
{
    if (ota_elapsed_ms(s->now_ms, s->guess_window_ms) >= GUESS_WINDOW_MS || s->guesses == 0) {
        s->guess_window_ms = s->now_ms;
        s->guesses = 0;
    }
    if (s->guesses < UINT32_MAX)
        s->guesses++;
}

void ota_srv_auth_begin(ota_server_t *s, const char *key)
{
    ota_auth_source_t *e = source_find(s, key);
    if (e == NULL)
        return;
    e->used_ms = s->now_ms;
    /* in back-off, one attempt per wait: a second connection waits for this one */
    uint32_t delay = e->failures > 0 ? backoff_delay(s, (uint32_t)e->failures - 1u) : 0;
    if (delay > 0) {
        e->wait_start_ms = s->now_ms;
        e->wait_ms = delay;
    }
}

void ota_srv_auth_failed(ota_server_t *s, const char *peer)
{
    char key[OTA_CFG_ADDR_MAX];
    ota_srv_addr_key(peer, key);
    count_guess(s);
    ota_auth_source_t *e = source_get(s, key);
    if (e->failures < UINT8_MAX)
        e->failures++;
    e->used_ms = s->now_ms;
    uint32_t delay = backoff_delay(s, (uint32_t)e->failures - 1u);
    e->wait_start_ms = s->now_ms;
    e->wait_ms = delay;
    if (delay == 0)
        return;
    char line[OTA_CFG_LOG_LINE_MAX];
    ota_strbuf_t sb;
    ota_sb_init(&sb, line, sizeof line);
    ota_sb_u32(&sb, e->failures);
    ota_sb_str(&sb, " failed authentications in a row from this address; its next attempt "
                    "waits ");
    ota_sb_u32(&sb, delay);
    ota_sb_str(&sb, " ms");
    ota_srv_log(s, OTA_LOG_WARN, peer, line);
}

void ota_srv_auth_ok(ota_server_t *s, const char *peer)
{
    char key[OTA_CFG_ADDR_MAX];
    ota_srv_addr_key(peer, key);
    count_guess(s);
    ota_auth_source_t *e = source_find(s, key);
    if (e != NULL)
        memset(e, 0, sizeof *e);
}

void ota_srv_log(const ota_server_t *s, ota_log_level_t lvl, const char *peer, const char *msg)
{
    char line[OTA_CFG_LOG_LINE_MAX];
    ota_strbuf_t sb;
    peer_line(&sb, line, peer);
    ota_sb_str(&sb, msg);
    log_line(s, lvl, &sb);
}

/* --------------------------------------------------------------- handshake */

static void after_auth_ok(ota_server_t *s, int idx, const uint8_t *extra, size_t extra_len)
{
    ota_session_t *ss = &s->sessions[idx];
    ota_srv_auth_ok(s, ss->peer);
    if (!take_lock(s, idx))
        return;
    log_peer(s, OTA_LOG_INFO, ss, "authenticated", OTA_OK);
    queue1(ss, OTA_RESP_AUTH_OK);
    queue(ss, extra, extra_len);
    bool ext = (ss->features & OTA_FEATURE_EXTENDED) != 0;
    expect(ss, ext ? OTA_STEP_UPDATE_TYPE : OTA_STEP_SIZE, ext ? 1 : 4);
}

static uint8_t pick_method(const ota_server_t *s, uint8_t features)
{
    if (s->has_verifier && (features & OTA_FEATURE_SALTED_AUTH))
        return OTA_RESP_REQUEST_AUTH_SALTED;
#if OTA_CFG_ENABLE_LEGACY_AUTH
    if (has_password(s)) {
        if ((features & OTA_FEATURE_SHA256_AUTH) && s->cfg.allow_sha256)
            return OTA_RESP_REQUEST_AUTH_SHA256;
        if (s->cfg.allow_md5)
            return OTA_RESP_REQUEST_AUTH_MD5;
    }
#endif
    return 0;
}

static const char *no_method_reason(const ota_server_t *s, uint8_t features)
{
    if (!has_password(s))
        return "auth refused: the client does not speak salted auth and this node keeps "
               "no legacy password (a stock uploader? see the legacy auth option)";
    if (features & OTA_FEATURE_SHA256_AUTH)
        return "auth refused: the client offers no method this node allows";
    return "auth refused: the client knows only MD5, which this node does not allow";
}

static void begin_auth(ota_server_t *s, int idx)
{
    ota_session_t *ss = &s->sessions[idx];
    bool ext = (ss->features & OTA_FEATURE_EXTENDED) != 0;
    if (!auth_required(s)) {
        queue1(ss, OTA_RESP_AUTH_OK);
        expect(ss, ext ? OTA_STEP_UPDATE_TYPE : OTA_STEP_SIZE, ext ? 1 : 4);
        return;
    }
    char key[OTA_CFG_ADDR_MAX];
    ota_srv_addr_key(ss->peer, key);
    if (ota_srv_auth_wait(s, key) > 0) {
        if (ss->step != OTA_STEP_AUTH_WAIT)
            log_peer_repeat(s, OTA_SRV_RL_WAIT, OTA_LOG_INFO, ss,
                            ota_srv_source_wait(s, key) > 0
                                ? "auth delayed by the brute-force back-off"
                                : "auth delayed by the brute-force back-off (the node's "
                                  "ceiling of guesses per minute is reached)",
                            OTA_OK);
        ss->step = OTA_STEP_AUTH_WAIT;
        return;
    }
    uint8_t method = pick_method(s, ss->features);
    if (method == 0) {
        fail(s, idx, OTA_ERR_NO_AUTH_METHOD, no_method_reason(s, ss->features));
        return;
    }
    ota_srv_auth_begin(s, key);
    ss->auth_method = method;
    queue1(ss, method);
    if (method == OTA_RESP_REQUEST_AUTH_SALTED) {
        uint8_t it[4];
        if (s->port->random(s->user, (uint8_t *)ss->nonce, OTA_SALTED_NONCE_LEN) != OTA_OK) {
            fail(s, idx, OTA_ERR_CRYPTO, "no random nonce");
            return;
        }
        ota_be32_put(it, s->verifier.iterations);
        queue(ss, s->verifier.salt, OTA_SALT_LEN);
        queue(ss, it, sizeof it);
        queue(ss, (const uint8_t *)ss->nonce, OTA_SALTED_NONCE_LEN);
        expect(ss, OTA_STEP_AUTH_REPLY, OTA_SALTED_REPLY_LEN);
        return;
    }
    size_t hex = ota_auth_hex_len(method);
    if (ota_auth_random_hex(s->port, s->user, ss->nonce, hex) != OTA_OK) {
        fail(s, idx, OTA_ERR_CRYPTO, "no random nonce");
        return;
    }
    queue(ss, (const uint8_t *)ss->nonce, hex);
    expect(ss, OTA_STEP_AUTH_REPLY, (uint16_t)(2 * hex));
}

static void check_auth(ota_server_t *s, int idx)
{
    ota_session_t *ss = &s->sessions[idx];
    int rc;
    const char *what;
    if (ss->auth_method == OTA_RESP_REQUEST_AUTH_SALTED) {
        uint8_t msg[OTA_SALTED_AUTH_MESSAGE_LEN];
        uint8_t sig[OTA_SALTED_KEY_LEN];
        ota_salted_auth_message((const uint8_t *)ss->nonce, ss->rx, s->verifier.salt,
                                s->verifier.iterations, msg);
        rc = ota_salted_verify(s->port, s->user, &s->verifier, msg,
                               ss->rx + OTA_SALTED_NONCE_LEN, sig);
        ota_wipe(ss->nonce, sizeof ss->nonce);
        if (rc == OTA_OK) {
            after_auth_ok(s, idx, sig, sizeof sig);
            ota_wipe(sig, sizeof sig);
            return;
        }
        what = "wrong password (salted method)";
    } else {
        size_t hex = ota_auth_hex_len(ss->auth_method);
        char expected[OTA_SHA256_HEX_LEN];
        const char *cnonce = (const char *)ss->rx;
        const char *answer = (const char *)ss->rx + hex;
        rc = ota_auth_challenge_response(s->port, s->user, ss->auth_method, s->cfg.password,
                                         ss->nonce, cnonce, expected);
        if (rc == OTA_OK && !ota_ct_equal(expected, answer, hex))
            rc = OTA_ERR_AUTH;
        ota_wipe(expected, sizeof expected);
        ota_wipe(ss->nonce, sizeof ss->nonce);
        if (rc == OTA_OK) {
            after_auth_ok(s, idx, NULL, 0);
            return;
        }
        what = ss->auth_method == OTA_RESP_REQUEST_AUTH_MD5
                   ? "wrong password (MD5 method)"
                   : "wrong password (SHA-256 method)";
    }
    fail(s, idx, rc, what);
    if (rc == OTA_ERR_AUTH)
        ota_srv_auth_failed(s, ss->peer);
}

static void prepare(ota_server_t *s, int idx)
{
    ota_session_t *ss = &s->sessions[idx];
    ota_update_t *u = &s->update;
    int rc = s->port->slot_begin(s->user, u->size);
    if (rc == OTA_ERR_WOULD_BLOCK)
        return;
    if (rc != OTA_OK) {
        fail(s, idx, rc, "cannot prepare the update slot");
        return;
    }
    u->slot_open = true;
    if (s->port->hash_start(s->user, &u->md5_ctx, OTA_HASH_MD5) != OTA_OK) {
        fail(s, idx, OTA_ERR_CRYPTO, "cannot start MD5");
        return;
    }
    {
        char line[OTA_CFG_LOG_LINE_MAX];
        ota_strbuf_t sb;
        peer_line(&sb, line, ss->peer);
        ota_sb_str(&sb, "update started, ");
        ota_sb_u32(&sb, u->size);
        ota_sb_str(&sb, " bytes");
        log_line(s, OTA_LOG_INFO, &sb);
    }
    ota_srv_notify(s, OTA_STATE_STARTED, OTA_OK);
    queue1(ss, OTA_RESP_UPDATE_PREPARE_OK);
    expect(ss, OTA_STEP_MD5, OTA_MD5_HEX_LEN);
}

/* A complete message of rx_need bytes is in rx: act on it. */
static void on_message(ota_server_t *s, int idx)
{
    ota_session_t *ss = &s->sessions[idx];
    switch (ss->step) {
    case OTA_STEP_MAGIC:
        if (!ota_ct_equal(ss->rx, ota_protocol_magic, OTA_MAGIC_LEN)) {
            fail(s, idx, OTA_ERR_BAD_MAGIC, "wrong magic bytes");
            return;
        }
        queue1(ss, OTA_RESP_OK);
        queue1(ss, s->cfg.version);
        expect(ss, OTA_STEP_FEATURES, 1);
        return;

    case OTA_STEP_FEATURES:
        ss->features = ss->rx[0];
        ss->prompt = ota_elapsed_ms(s->now_ms, ss->opened_ms) <= OTA_CFG_HANDSHAKE_PROMPT_MS;
        if (ss->features & OTA_FEATURE_EXTENDED) {
            queue1(ss, OTA_RESP_FEATURE_FLAGS);
            queue1(ss, accepts_gzip(s) ? OTA_SERVER_FLAG_COMPRESSION : 0);
        } else if ((ss->features & OTA_FEATURE_COMPRESSION) && accepts_gzip(s)) {
            queue1(ss, OTA_RESP_SUPPORTS_COMPRESSION);
        } else {
            queue1(ss, OTA_RESP_HEADER_OK);
        }
        begin_auth(s, idx);
        return;

    case OTA_STEP_AUTH_REPLY:
        check_auth(s, idx);
        return;

    case OTA_STEP_UPDATE_TYPE:
        if (ss->rx[0] != OTA_UPDATE_TYPE_APP) {
            fail(s, idx, OTA_ERR_UNSUPPORTED, "unsupported update type requested");
            return;
        }
        expect(ss, OTA_STEP_SIZE, 4);
        return;

    case OTA_STEP_SIZE: {
        uint32_t size = ota_be32_get(ss->rx);
        /* without auth the lock is taken here; after auth this session holds it */
        if (s->update.session != idx && !take_lock(s, idx))
            return;
        if (size == 0) {
            fail(s, idx, OTA_ERR_PREPARE, "announced an empty image");
            return;
        }
        s->update.size = size;
        expect(ss, OTA_STEP_PREPARE, 0);
        prepare(s, idx);
        return;
    }

    case OTA_STEP_MD5:
        if (ota_hex_decode((const char *)ss->rx, OTA_MD5_LEN, s->update.md5) != 0) {
            fail(s, idx, OTA_ERR_PROTOCOL, "announced MD5 is not hex");
            return;
        }
        queue1(ss, OTA_RESP_BIN_MD5_OK);
        expect(ss, OTA_STEP_DATA, 0);
        return;

    case OTA_STEP_FINAL_ACK:
        log_peer(s, OTA_LOG_INFO, ss, "final ack received, rebooting", OTA_OK);
        s->reboot_pending = true;
        ss->close_after_send = true;
        ss->step = OTA_STEP_CLOSING;
        return;

    default:
        return;
    }
}

/* -------------------------------------------------------------- data phase */

/* Write what is buffered (inflating it first when the upload is gzip). */
static int write_pending(ota_server_t *s)
{
    ota_update_t *u = &s->update;
    if (!u->compressed) {
        if (u->data_len == 0)
            return OTA_OK;
        int rc = s->port->slot_write(s->user, u->written, u->data + u->data_off, u->data_len);
        if (rc != OTA_OK)
            return rc;
        u->written += u->data_len;
        u->data_off = u->data_len = 0;
        return OTA_OK;
    }
#if OTA_CFG_ENABLE_COMPRESSION
    for (;;) {
        if (u->out_len > 0) {
            int rc = s->port->slot_write(s->user, u->written, u->out + u->out_off, u->out_len);
            if (rc != OTA_OK)
                return rc;
            u->written += u->out_len;
            bool was_full = u->out_off + u->out_len == sizeof u->out;
            u->out_off = u->out_len = 0;
            /* a full output buffer may leave more output inside the inflater */
            if (was_full && !u->inflate_done && u->data_len == 0) {
                size_t used = 0, made = 0;
                bool done = false;
                int irc = s->port->inflate_run(s->user, u->data, 0, &used, u->out,
                                               sizeof u->out, &made, &done);
                if (irc != OTA_OK)
                    return OTA_ERR_INFLATE;
                u->out_len = (uint32_t)made;
                u->inflate_done = done;
                continue;
            }
        }
        if (u->data_len == 0)
            return OTA_OK;
        if (u->inflate_done)
            return OTA_ERR_INFLATE; /* bytes after the end of the gzip stream */
        size_t used = 0, made = 0;
        bool done = false;
        int rc = s->port->inflate_run(s->user, u->data + u->data_off, u->data_len, &used,
                                      u->out, sizeof u->out, &made, &done);
        if (rc != OTA_OK || used > u->data_len || made > sizeof u->out ||
            (used == 0 && made == 0 && !done))
            return OTA_ERR_INFLATE;
        u->data_off += (uint32_t)used;
        u->data_len -= (uint32_t)used;
        if (u->data_len == 0)
            u->data_off = 0;
        u->out_len = (uint32_t)made;
        u->inflate_done = done;
    }
#else
    return OTA_ERR_INFLATE;
#endif
}

/* After bytes are written: the version-2 ack rule of PROTOCOL.md step 7. */
static void count_acks(ota_server_t *s)
{
    ota_update_t *u = &s->update;
    if (s->cfg.version != OTA_PROTOCOL_VERSION_2)
        return;
    while (u->acked + OTA_CHUNK_SIZE <= u->received ||
           (u->received == u->size && u->acked < u->size)) {
        u->pending_acks++;
        u->acked += OTA_CHUNK_SIZE;
    }
}

static void report_progress(ota_server_t *s)
{
    ota_update_t *u = &s->update;
    uint32_t step = u->size / 100u;
    if (step < OTA_CHUNK_SIZE)
        step = OTA_CHUNK_SIZE;
    if (u->received - u->reported >= step || u->received == u->size) {
        u->reported = u->received;
        ota_srv_notify(s, OTA_STATE_IN_PROGRESS, OTA_OK);
    }
}

static bool gzip_negotiated(const ota_server_t *s, const ota_session_t *ss)
{
    return (ss->features & OTA_FEATURE_COMPRESSION) && accepts_gzip(s);
}

/* Read firmware bytes, hash them, write them (inflated when gzip), count acks.
 * Returns when the socket has nothing more, the slot would block, the poll budget
 * is spent, or every byte is in (step becomes FINISH). */
static void data_phase(ota_server_t *s, int idx)
{
    ota_session_t *ss = &s->sessions[idx];
    ota_update_t *u = &s->update;
    uint32_t budget = OTA_CFG_POLL_BUDGET;
    for (;;) {
        if (u->decided) {
            int rc = write_pending(s);
            if (rc == OTA_ERR_WOULD_BLOCK)
                return;
            if (rc != OTA_OK) {
                fail(s, idx, rc, rc == OTA_ERR_INFLATE ? "corrupt gzip upload"
                                                       : "writing the image failed");
                return;
            }
            count_acks(s);
            if (u->received == u->size) {
                ss->step = OTA_STEP_FINISH;
                return;
            }
        }
        if (budget == 0)
            return;
        uint32_t want = u->size - u->received;
        uint32_t room = (uint32_t)sizeof u->data - u->data_len;
        if (want > room)
            want = room;
        if (want > budget)
            want = budget;
        int n = s->port->net_recv(s->user, ss->conn, u->data + u->data_len, want);
        if (n == OTA_ERR_WOULD_BLOCK)
            return;
        if (n <= 0) {
            char line[OTA_CFG_LOG_LINE_MAX];
            ota_strbuf_t sb;
            ota_sb_init(&sb, line, sizeof line);
            ota_sb_str(&sb, "connection lost after ");
            ota_sb_u32(&sb, u->received);
            ota_sb_str(&sb, " of ");
            ota_sb_u32(&sb, u->size);
            ota_sb_str(&sb, " bytes; update abandoned");
            log_peer(s, OTA_LOG_WARN, ss, line, OTA_OK);
            close_session(s, idx, n == 0 ? OTA_ERR_CLOSED : n);
            return;
        }
        ss->last_rx_ms = s->now_ms;
        if (s->port->hash_update(s->user, &u->md5_ctx, u->data + u->data_len, (size_t)n) !=
            OTA_OK) {
            fail(s, idx, OTA_ERR_CRYPTO, "MD5 update failed");
            return;
        }
        u->data_len += (uint32_t)n;
        u->received += (uint32_t)n;
        budget -= (uint32_t)n;
        report_progress(s);
        /* gzip or raw is told by the first two bytes (RFC 1952 magic 1f 8b) */
        if (!u->decided && (u->data_len >= 2 || u->received == u->size)) {
            u->decided = true;
            if (gzip_negotiated(s, ss) && u->data_len >= 2 && u->data[0] == 0x1f &&
                u->data[1] == 0x8b) {
#if OTA_CFG_ENABLE_COMPRESSION
                if (s->port->inflate_begin(s->user) != OTA_OK) {
                    fail(s, idx, OTA_ERR_INFLATE, "cannot start inflating");
                    return;
                }
                u->compressed = true;
                u->inflating = true;
#endif
            }
        }
    }
}

/* Every byte is in: answer RECEIVE_OK, verify, activate, answer UPDATE_END_OK. */
static void finish(ota_server_t *s, int idx)
{
    ota_session_t *ss = &s->sessions[idx];
    ota_update_t *u = &s->update;
    uint8_t digest[OTA_MD5_LEN];
    queue1(ss, OTA_RESP_RECEIVE_OK);
    if (s->port->hash_finish(s->user, &u->md5_ctx, digest) != OTA_OK) {
        fail(s, idx, OTA_ERR_CRYPTO, "MD5 finish failed");
        return;
    }
    if (!ota_ct_equal(digest, u->md5, OTA_MD5_LEN)) {
        fail(s, idx, OTA_ERR_MD5_MISMATCH, "received image does not match the announced MD5");
        return;
    }
#if OTA_CFG_ENABLE_COMPRESSION
    if (u->compressed) {
        if (!u->inflate_done) {
            fail(s, idx, OTA_ERR_INFLATE, "gzip stream ended early");
            return;
        }
        s->port->inflate_end(s->user);
        u->inflating = false;
    }
#endif
    int rc = s->port->slot_finish(s->user, u->written);
    if (rc != OTA_OK) {
        fail(s, idx, rc == OTA_ERR_BAD_IMAGE ? rc : OTA_ERR_WRITE, "image rejected");
        return;
    }
    rc = s->port->slot_activate(s->user);
    if (rc != OTA_OK) {
        fail(s, idx, OTA_ERR_ACTIVATE, "cannot activate the new image");
        return;
    }
    u->slot_open = false; /* activated: nothing to abort any more */
    s->activated = true;
    {
        char line[OTA_CFG_LOG_LINE_MAX];
        ota_strbuf_t sb;
        peer_line(&sb, line, ss->peer);
        ota_sb_str(&sb, "update complete, ");
        ota_sb_u32(&sb, u->written);
        ota_sb_str(&sb, u->compressed ? " bytes (inflated from " : " bytes (");
        ota_sb_u32(&sb, u->size);
        ota_sb_str(&sb, u->compressed ? " gzip bytes), activated" : " on the wire), activated");
        log_line(s, OTA_LOG_INFO, &sb);
    }
    ota_srv_notify(s, OTA_STATE_COMPLETED, OTA_OK);
    queue1(ss, OTA_RESP_UPDATE_END_OK);
    expect(ss, OTA_STEP_FINAL_ACK, 1);
}

/* ----------------------------------------------------------------- sessions */

static void run_session(ota_server_t *s, int idx)
{
    ota_session_t *ss = &s->sessions[idx];
    /* Each pass either finishes a step or returns; the bound only guards against
     * a port that reports progress without making any. */
    for (int pass = 0; pass < 32 && ss->step != OTA_STEP_FREE; pass++) {
        int rc = flush(s, idx);
        if (rc == OTA_ERR_WOULD_BLOCK)
            return;
        if (rc < 0) {
            if (ss->step == OTA_STEP_FINAL_ACK)
                s->reboot_pending = true;
            else if (!ss->close_after_send && ss->step < OTA_STEP_PREPARE)
                log_peer_repeat(s, OTA_SRV_RL_HANDSHAKE, OTA_LOG_WARN, ss,
                                "connection lost while answering", rc);
            else if (!ss->close_after_send)
                log_peer(s, OTA_LOG_WARN, ss, "connection lost while answering", rc);
            close_session(s, idx, rc);
            return;
        }
        if (ss->close_after_send) {
            close_session(s, idx, ss->close_err);
            return;
        }
        switch (ss->step) {
        case OTA_STEP_AUTH_WAIT: {
            char key[OTA_CFG_ADDR_MAX];
            ota_srv_addr_key(ss->peer, key);
            if (ota_srv_auth_wait(s, key) > 0)
                return;
            ss->last_rx_ms = s->now_ms; /* the wait was ours, not the peer's */
            begin_auth(s, idx);
            continue;
        }
        case OTA_STEP_PREPARE:
            prepare(s, idx);
            if (ss->step == OTA_STEP_PREPARE)
                return;
            continue;
        case OTA_STEP_DATA:
            data_phase(s, idx);
            if (ss->step == OTA_STEP_DATA) {
                rc = flush(s, idx); /* chunk acks */
                if (rc < 0 && rc != OTA_ERR_WOULD_BLOCK) {
                    log_peer(s, OTA_LOG_WARN, ss, "connection lost during upload", rc);
                    close_session(s, idx, rc);
                }
                return;
            }
            continue;
        case OTA_STEP_FINISH:
            finish(s, idx);
            continue;
        default:
            break;
        }
        int n = s->port->net_recv(s->user, ss->conn, ss->rx + ss->rx_len,
                                  (size_t)(ss->rx_need - ss->rx_len));
        if (n == OTA_ERR_WOULD_BLOCK)
            return;
        if (n <= 0) {
            if (ss->step == OTA_STEP_FINAL_ACK) {
                log_peer(s, OTA_LOG_INFO, ss, "closed without final ack, rebooting", OTA_OK);
                s->reboot_pending = true;
            } else {
                char line[OTA_CFG_LOG_LINE_MAX];
                ota_strbuf_t sb;
                ota_sb_init(&sb, line, sizeof line);
                ota_sb_str(&sb, "connection closed during ");
                ota_sb_str(&sb, step_name(ss->step));
                /* a bare connect-and-close (port probe) is not worth a warning */
                if (ss->step == OTA_STEP_MAGIC && ss->rx_len == 0)
                    log_peer_repeat(s, OTA_SRV_RL_CONNECT, OTA_LOG_DEBUG, ss, line, OTA_OK);
                else if (ss->step < OTA_STEP_PREPARE)
                    log_peer_repeat(s, OTA_SRV_RL_HANDSHAKE, OTA_LOG_WARN, ss, line, OTA_OK);
                else
                    log_peer(s, OTA_LOG_WARN, ss, line, OTA_OK);
            }
            close_session(s, idx, n == 0 ? OTA_ERR_CLOSED : n);
            return;
        }
        ss->last_rx_ms = s->now_ms;
        ss->rx_len = (uint16_t)(ss->rx_len + n);
        if (ss->rx_len == ss->rx_need)
            on_message(s, idx);
    }
}

/* --------------------------------------------------------------- admission
 *
 * The handshake pool is small (OTA_CFG_MAX_SESSIONS) and anyone can connect, so who
 * gets a place decides whether a flood of connections locks the owner out. A real
 * uploader sends the magic bytes as soon as it is connected (they are usually there
 * when the connection is accepted), the features byte one round trip later, and
 * answers a challenge within milliseconds. A flooder connects and sits, or sends
 * garbage. So:
 *  - garbage is refused before it takes a place (the first bytes are read at accept);
 *  - one source address holds at most OTA_CFG_MAX_SESSIONS_PER_SOURCE places: its
 *    newcomer replaces its own least useful session (or is refused);
 *  - a session that got past magic + features promptly, or is proving itself (auth
 *    exchange, responsive), or holds the update lock, is never replaced;
 *  - otherwise the first replaced are sessions slow in the early steps, then silent
 *    or stalled ones in the auth exchange, then ones waiting out their own back-off,
 *    then young silent ones; ties go to the source holding most places, then to the
 *    idlest;
 *  - a newcomer whose magic bytes are already there may replace a young silent
 *    session; one that has sent nothing yet meets random early drop (OpenSSH's
 *    MaxStartups): from OTA_CFG_RED_START sessions on, it is refused with a
 *    probability rising from OTA_CFG_RED_RATE_PCT % to 100 % at a full pool, where it
 *    may only replace a slow session. So the pool does not churn at the flood's rate
 *    and a young session has time to show what it is.
 */

enum { RANK_KEEP = -1, RANK_YOUNG_TALKING = 1, RANK_YOUNG_SILENT = 2, RANK_OWN_BACKOFF = 3,
       RANK_STALLED = 4, RANK_SLOW_EARLY = 5, RANK_CLOSING = 6 };

static bool same_source(const ota_session_t *ss, const char *key)
{
    char k[OTA_CFG_ADDR_MAX];
    ota_srv_addr_key(ss->peer, k);
    return strcmp(k, key) == 0;
}

/* How readily session i gives its place to a newcomer (higher: sooner). */
static int evict_rank(const ota_server_t *s, int i)
{
    const ota_session_t *ss = &s->sessions[i];
    if (s->update.session == i)
        return RANK_KEEP;
    uint32_t age = ota_elapsed_ms(s->now_ms, ss->opened_ms);
    uint32_t idle = ota_elapsed_ms(s->now_ms, ss->last_rx_ms);
    switch (ss->step) {
    case OTA_STEP_MAGIC:
    case OTA_STEP_FEATURES:
        if (age > OTA_CFG_HANDSHAKE_PROMPT_MS)
            return RANK_SLOW_EARLY;
        return ss->step == OTA_STEP_MAGIC && ss->rx_len == 0 ? RANK_YOUNG_SILENT
                                                             : RANK_YOUNG_TALKING;
    case OTA_STEP_AUTH_WAIT: {
        char key[OTA_CFG_ADDR_MAX];
        ota_srv_addr_key(ss->peer, key);
        /* delayed by its own failures: an attacker's; by the global ceiling only: keep */
        return (!ss->prompt || ota_srv_source_wait(s, key) > 0) ? RANK_OWN_BACKOFF
                                                                : RANK_KEEP;
    }
    case OTA_STEP_AUTH_REPLY:
    case OTA_STEP_UPDATE_TYPE:
    case OTA_STEP_SIZE:
        return (!ss->prompt || idle >= OTA_CFG_HANDSHAKE_STALE_MS) ? RANK_STALLED : RANK_KEEP;
    case OTA_STEP_CLOSING:
        return ss->close_after_send ? RANK_CLOSING : RANK_KEEP;
    default:
        return RANK_KEEP;
    }
}

static int source_count(const ota_server_t *s, const char *key)
{
    int n = 0;
    for (int i = 0; i < OTA_CFG_MAX_SESSIONS; i++)
        if (s->sessions[i].step != OTA_STEP_FREE && same_source(&s->sessions[i], key))
            n++;
    return n;
}

/* The session to replace: rank at least min_rank, from key's source only when key is
 * given; NO_SESSION if there is none. */
static int pick_victim(const ota_server_t *s, const char *key, int min_rank)
{
    int best = NO_SESSION, best_rank = 0, best_src = 0;
    uint32_t best_idle = 0;
    for (int i = 0; i < OTA_CFG_MAX_SESSIONS; i++) {
        const ota_session_t *ss = &s->sessions[i];
        if (ss->step == OTA_STEP_FREE)
            continue;
        if (key != NULL && !same_source(ss, key))
            continue;
        int r = evict_rank(s, i);
        if (r < min_rank)
            continue;
        char k[OTA_CFG_ADDR_MAX];
        ota_srv_addr_key(ss->peer, k);
        int src = source_count(s, k);
        uint32_t idle = ota_elapsed_ms(s->now_ms, ss->last_rx_ms);
        if (best == NO_SESSION || r > best_rank || (r == best_rank && src > best_src) ||
            (r == best_rank && src == best_src && idle > best_idle)) {
            best = i;
            best_rank = r;
            best_src = src;
            best_idle = idle;
        }
    }
    return best;
}

/* Random early drop of a newcomer that has sent nothing yet, with used sessions in
 * the pool (none of them replaceable as slow). */
static bool early_drop(ota_server_t *s, int used)
{
    if (used < OTA_CFG_RED_START)
        return false;
    uint32_t pct = 100;
    if (used < OTA_CFG_MAX_SESSIONS)
        pct = (uint32_t)OTA_CFG_RED_RATE_PCT +
              (uint32_t)(100 - OTA_CFG_RED_RATE_PCT) * (uint32_t)(used - OTA_CFG_RED_START) /
                  (uint32_t)(OTA_CFG_MAX_SESSIONS - OTA_CFG_RED_START);
    uint8_t r[2];
    if (s->port->random(s->user, r, sizeof r) != OTA_OK)
        return true;
    return (uint32_t)((r[0] << 8) | r[1]) % 100u < pct;
}

static void evict(ota_server_t *s, int idx, const char *why)
{
    log_peer_repeat(s, OTA_SRV_RL_DROP, OTA_LOG_WARN, &s->sessions[idx], why, OTA_OK);
    close_session(s, idx, OTA_ERR_BUSY);
}

/* A place for a newcomer from key (eager: its first bytes are the magic's), or
 * NO_SESSION: refuse it. */
static int admit(ota_server_t *s, const char *key, bool eager)
{
    if (source_count(s, key) >= OTA_CFG_MAX_SESSIONS_PER_SOURCE) {
        int v = pick_victim(s, key, eager ? RANK_YOUNG_TALKING : RANK_YOUNG_SILENT);
        if (v != NO_SESSION)
            evict(s, v, "too many connections from this address, dropping its oldest");
        return v;
    }
    /* places taken for real: slow sessions count as free */
    int free_idx = NO_SESSION, used = 0;
    for (int i = 0; i < OTA_CFG_MAX_SESSIONS; i++) {
        if (s->sessions[i].step == OTA_STEP_FREE) {
            if (free_idx == NO_SESSION)
                free_idx = i;
        } else if (evict_rank(s, i) < RANK_OWN_BACKOFF) {
            used++;
        }
    }
    if (!eager && early_drop(s, used))
        return NO_SESSION;
    if (free_idx != NO_SESSION)
        return free_idx;
    /* a slow session gives way to anyone, a young silent one only to an eager newcomer */
    int v = pick_victim(s, NULL, eager ? RANK_YOUNG_SILENT : RANK_OWN_BACKOFF);
    if (v != NO_SESSION)
        evict(s, v, evict_rank(s, v) >= RANK_OWN_BACKOFF
                        ? "handshake pool full, dropping this slow connection"
                        : "handshake pool full, dropping this silent connection");
    return v;
}

/* Refuse a connection before it has a session. */
static void refuse(ota_server_t *s, ota_conn_t conn, const char *peer, int kind,
                   ota_log_level_t lvl, const char *why, int code)
{
    if (code >= 0) {
        uint8_t b = (uint8_t)code;
        (void)s->port->net_send(s->user, conn, &b, 1);
    }
    s->port->net_close(s->user, conn);
    ota_srv_log_repeat(s, kind, lvl, peer, why);
}

/* true when a newcomer that has sent nothing yet would meet early drop (or find no
 * place at all). */
static bool under_pressure(const ota_server_t *s)
{
    int used = 0;
    for (int i = 0; i < OTA_CFG_MAX_SESSIONS; i++)
        if (s->sessions[i].step != OTA_STEP_FREE && evict_rank(s, i) < RANK_OWN_BACKOFF)
            used++;
    return used >= OTA_CFG_RED_START;
}

static void accept_new(ota_server_t *s)
{
    /* Under pressure (a newcomer that has sent nothing would meet early drop): take
     * connections from the listener only every OTA_CFG_ACCEPT_PAUSE_MS. Meanwhile they
     * wait in the port's accept queue, where a real uploader's magic bytes arrive: so
     * it is told from the sitters when it is accepted; a full queue slows the flood. */
    bool pressed = under_pressure(s);
    if (s->update.session == NO_SESSION && !s->activated && pressed &&
        ota_elapsed_ms(s->now_ms, s->accept_ms) < OTA_CFG_ACCEPT_PAUSE_MS)
        return;
    s->accept_ms = s->now_ms;
    for (int k = 0; k < ACCEPTS_PER_POLL; k++) {
        /* the pressure began in this batch: the rest waits for the next one */
        if (!pressed && k > 0 && under_pressure(s))
            return;
        ota_conn_t conn = -1;
        char peer[OTA_CFG_PEER_MAX];
        peer[0] = '\0';
        if (s->port->net_accept(s->user, &conn, peer, sizeof peer) != OTA_OK)
            return;
        peer[sizeof peer - 1] = '\0';
        if (s->update.session != NO_SESSION || s->activated) {
            /* One update at a time: tell the newcomer at once, leave the update be. */
            refuse(s, conn, peer, OTA_SRV_RL_BUSY, OTA_LOG_WARN,
                   "refused, an update is in progress", OTA_RESP_ERROR_BUSY);
            continue;
        }
        /* what it has sent already tells an uploader from garbage and from a sitter */
        uint8_t head[OTA_MAGIC_LEN];
        int got = s->port->net_recv(s->user, conn, head, sizeof head);
        if (got == OTA_ERR_WOULD_BLOCK) {
            got = 0;
        } else if (got <= 0) {
            refuse(s, conn, peer, OTA_SRV_RL_CONNECT, OTA_LOG_DEBUG, "closed at once", -1);
            continue;
        }
        if (got > 0 && memcmp(head, ota_protocol_magic, (size_t)got) != 0) {
            refuse(s, conn, peer, OTA_SRV_RL_HANDSHAKE, OTA_LOG_WARN,
                   "wrong magic bytes: bad protocol magic", OTA_RESP_ERROR_MAGIC);
            continue;
        }
        char key[OTA_CFG_ADDR_MAX];
        ota_srv_addr_key(peer, key);
        int idx = admit(s, key, got > 0);
        if (idx == NO_SESSION) {
            refuse(s, conn, peer, OTA_SRV_RL_DROP, OTA_LOG_WARN,
                   "handshake pool full, connection refused", -1);
            continue;
        }
        ota_session_t *ss = &s->sessions[idx];
        memset(ss, 0, sizeof *ss);
        ss->conn = conn;
        memcpy(ss->peer, peer, sizeof ss->peer);
        ss->opened_ms = ss->last_rx_ms = s->now_ms;
        expect(ss, OTA_STEP_MAGIC, OTA_MAGIC_LEN);
        memcpy(ss->rx, head, (size_t)got);
        ss->rx_len = (uint16_t)got;
        log_peer_repeat(s, OTA_SRV_RL_CONNECT, OTA_LOG_DEBUG, ss, "connected", OTA_OK);
        if (ss->rx_len == ss->rx_need)
            on_message(s, idx);
    }
}

static uint32_t step_timeout(const ota_server_t *s, uint8_t step)
{
    switch (step) {
    case OTA_STEP_PREPARE:
    case OTA_STEP_MD5:
    case OTA_STEP_DATA:
    case OTA_STEP_FINISH: return s->cfg.data_timeout_ms;
    case OTA_STEP_FINAL_ACK: return s->cfg.final_ack_timeout_ms;
    default: return s->cfg.handshake_timeout_ms;
    }
}

static void check_timeouts(ota_server_t *s)
{
    for (int i = 0; i < OTA_CFG_MAX_SESSIONS; i++) {
        ota_session_t *ss = &s->sessions[i];
        if (ss->step == OTA_STEP_FREE || ss->step == OTA_STEP_AUTH_WAIT)
            continue;
        if (ota_elapsed_ms(s->now_ms, ss->last_rx_ms) < step_timeout(s, ss->step))
            continue;
        if (ss->step == OTA_STEP_FINAL_ACK) {
            log_peer(s, OTA_LOG_INFO, ss, "no final ack, rebooting anyway", OTA_OK);
            s->reboot_pending = true;
            close_session(s, i, OTA_OK);
            continue;
        }
        char line[OTA_CFG_LOG_LINE_MAX];
        ota_strbuf_t sb;
        ota_sb_init(&sb, line, sizeof line);
        ota_sb_str(&sb, "silent for ");
        ota_sb_u32(&sb, ota_elapsed_ms(s->now_ms, ss->last_rx_ms));
        ota_sb_str(&sb, " ms during ");
        ota_sb_str(&sb, step_name(ss->step));
        ota_sb_str(&sb, ", closing");
        if (ss->step < OTA_STEP_PREPARE) /* idle connections of a flood time out here */
            log_peer_repeat(s, OTA_SRV_RL_HANDSHAKE, OTA_LOG_WARN, ss, line, OTA_OK);
        else
            log_peer(s, OTA_LOG_WARN, ss, line, OTA_OK);
        close_session(s, i, OTA_ERR_TIMEOUT);
    }
}

/* --------------------------------------------------------------- public API */

int ota_server_poll(ota_server_t *srv, uint32_t now_ms)
{
    if (srv == NULL || srv->port == NULL)
        return OTA_ERR_INVALID_ARG;
    srv->now_ms = now_ms;
    accept_new(srv);
    for (int i = 0; i < OTA_CFG_MAX_SESSIONS; i++)
        if (srv->sessions[i].step != OTA_STEP_FREE)
            run_session(srv, i);
    check_timeouts(srv);
    if (srv->cfg.arduino_enabled)
        ota_arduino_poll(srv);
    log_repeat_summaries(srv);
    if (srv->reboot_pending && !srv->reboot_requested) {
        srv->reboot_requested = true;
        srv->port->reboot(srv->user);
    }
    return OTA_OK;
}

bool ota_server_update_in_progress(const ota_server_t *srv)
{
    return srv != NULL && (srv->update.session != NO_SESSION || srv->activated);
}

bool ota_server_active(const ota_server_t *srv)
{
    if (srv == NULL)
        return false;
    if (srv->arduino.state != 0) /* an ArduinoOTA key derivation or upload is under way */
        return true;
    for (int i = 0; i < OTA_CFG_MAX_SESSIONS; i++)
        if (srv->sessions[i].step != OTA_STEP_FREE)
            return true;
    return false;
}

void ota_server_free(ota_server_t *srv)
{
    if (srv == NULL || srv->port == NULL)
        return;
    for (int i = 0; i < OTA_CFG_MAX_SESSIONS; i++)
        close_session(srv, i, OTA_ERR_CLOSED);
    ota_arduino_free(srv);
    ota_wipe(&srv->verifier, sizeof srv->verifier);
    srv->has_verifier = false;
    srv->port = NULL;
}
