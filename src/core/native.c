/*
 * native.c - the device side of ESPHome's native OTA protocol (docs/protocol.md#native;
 * ota/native.h).
 *
 * A pool of sessions runs the handshake side by side. step() advances one session
 * by one message; its cases follow the wire order, each saying what is read and
 * what is answered. The first session to authenticate (or, with no password, to
 * announce its size) takes the update lock of the pipeline (ota/update.h) and
 * streams the image into it. Nothing waits for the peer: the clock comes from the
 * caller, and every buffer lives in ota_native_t or the pipeline. The steps, the
 * lock and the timeouts are drawn in docs/design.md.
 */
#include "ota/native.h"

#include <string.h>

#include "ota/util.h"

_Static_assert(2 + OTA_SALTED_CHALLENGE_LEN <= OTA_SESSION_TX_MAX, "tx too small for salted");
_Static_assert(1 + OTA_SALTED_KEY_LEN <= OTA_SESSION_TX_MAX, "tx too small for AUTH_OK + sig");
_Static_assert(OTA_SALTED_REPLY_LEN <= OTA_SESSION_RX_MAX, "rx too small for salted reply");
_Static_assert(OTA_SALTED_NONCE_LEN <= OTA_SHA256_HEX_LEN, "nonce storage too small");
_Static_assert(OTA_CFG_MAX_SESSIONS < OTA_UPDATE_HOLDER_ARDUINO, "holder numbers overlap");

#define NO_SESSION (-1)
#define ACCEPTS_PER_POLL 16
#define ACK_BURST 64

/* ------------------------------------------------------------------ logging */

/* "<peer>: <msg>[: <strerror(err)>]" */
static void log_peer(const ota_native_t *n, ota_log_level_t lvl, const ota_session_t *ss,
                     const char *msg, int err)
{
    ota_log_peer(n->log, lvl, ss->peer, msg, err);
}

/* log_peer, but as one of a kind of repeated line */
static void log_peer_repeat(ota_native_t *n, int kind, ota_log_level_t lvl, const ota_session_t *ss,
                            const char *msg, int err)
{
    ota_log_peer_repeat(n->log, kind, n->now_ms, lvl, ss->peer, msg, err);
}

#if OTA_CFG_ENABLE_LOG_STRINGS
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
#endif

/* ------------------------------------------------------------------ setup */

static bool has_password(const ota_native_t *n)
{
    return n->cfg.password != NULL && n->cfg.password[0] != '\0';
}

static bool auth_required(const ota_native_t *n)
{
    return has_password(n) || n->has_verifier;
}

static bool accepts_gzip(const ota_native_t *n)
{
    return n->cfg.compression && ota_update_can_inflate(n->update);
}

int ota_native_setup(ota_native_t *n, const ota_tcp_port_t *tcp, const ota_crypto_port_t *crypto,
                     ota_logger_t *log, ota_update_t *update, ota_guard_t *guard,
                     const ota_native_config_t *cfg)
{
    if (n == NULL || tcp == NULL || crypto == NULL || update == NULL || guard == NULL ||
        cfg == NULL)
        return OTA_ERR_INVALID_ARG;
    if (tcp->accept == NULL || tcp->recv == NULL || tcp->send == NULL || tcp->close == NULL ||
        crypto->random == NULL || crypto->hash_start == NULL || crypto->hash_update == NULL ||
        crypto->hash_finish == NULL)
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
    ota_verifier_t v;
    bool has_verifier = false;
    if (cfg->verifier != NULL && cfg->verifier[0] != '\0') {
        if (crypto->hmac_sha256 == NULL || ota_verifier_parse(cfg->verifier, &v) != OTA_OK)
            return OTA_ERR_INVALID_ARG;
        has_verifier = true;
    }
    memset(n, 0, sizeof *n);
    for (int i = 0; i < OTA_CFG_MAX_SESSIONS; i++)
        n->sessions[i].conn = -1;
    n->tcp = tcp;
    n->crypto = crypto;
    n->log = log;
    n->update = update;
    n->guard = guard;
    n->cfg = *cfg;
    if (has_verifier) {
        n->verifier = v;
        n->has_verifier = true;
        ota_wipe(&v, sizeof v);
    }
    return OTA_OK;
}

/* ------------------------------------------------------------------ helpers */

static void queue(ota_session_t *ss, const uint8_t *bytes, size_t len)
{
    /* Callers never queue more than OTA_SESSION_TX_MAX in one step; the pool of
     * handshake replies is sized for the longest (feature reply + challenge). */
    if ((size_t)ss->tx_len + len > sizeof ss->tx)
        len = sizeof ss->tx - ss->tx_len;
    if (len == 0)
        return;
    memcpy(ss->tx + ss->tx_len, bytes, len);
    ss->tx_len = (uint8_t)(ss->tx_len + len);
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

/* Give up the update this session holds (if any): the slot is discarded, the
 * running image and the boot state are untouched. */
static void release_update(ota_native_t *n, int idx, int err)
{
    ota_update_abort(n->update, OTA_UPDATE_HOLDER_NATIVE(idx), err);
}

static bool holds_update(const ota_native_t *n, int idx)
{
    return ota_update_held_by(n->update, OTA_UPDATE_HOLDER_NATIVE(idx));
}

static void close_session(ota_native_t *n, int idx, int err)
{
    ota_session_t *ss = &n->sessions[idx];
    if (ss->step == OTA_STEP_FREE)
        return;
    release_update(n, idx, err == OTA_OK ? OTA_ERR_CLOSED : err);
    n->tcp->close(n->tcp->ctx, ss->conn);
    ota_wipe(ss, sizeof *ss);
    ss->conn = -1;
    ss->step = OTA_STEP_FREE;
}

/* Answer an error code, then close once it is sent. */
static void fail(ota_native_t *n, int idx, int err, const char *what)
{
    ota_session_t *ss = &n->sessions[idx];
    if (ss->step <= OTA_STEP_FEATURES) /* garbage before the handshake: floods do that */
        log_peer_repeat(n, OTA_LOG_REPEAT_HANDSHAKE, OTA_LOG_WARN, ss, what, err);
    else
        log_peer(n, OTA_LOG_WARN, ss, what, err);
    release_update(n, idx, err);
    queue1(ss, ota_protocol_response_for_error(err));
    ss->close_after_send = true;
    ss->close_err = err;
    ss->step = OTA_STEP_CLOSING;
}

/* Take the update lock for this session; false (after answering BUSY) if another
 * peer holds it. */
static bool take_lock(ota_native_t *n, int idx)
{
    if (ota_update_lock(n->update, OTA_UPDATE_HOLDER_NATIVE(idx)) != OTA_OK) {
        ota_session_t *ss = &n->sessions[idx];
        log_peer_repeat(n, OTA_LOG_REPEAT_BUSY, OTA_LOG_WARN, ss,
                        "refused, another update is in progress", OTA_OK);
        queue1(ss, OTA_RESP_ERROR_BUSY);
        ss->close_after_send = true;
        ss->step = OTA_STEP_CLOSING;
        return false;
    }
    n->acked = 0;
    n->pending_acks = 0;
    return true;
}

/* Send pending chunk acks first, then queued handshake bytes. */
static int flush(ota_native_t *n, int idx)
{
    ota_session_t *ss = &n->sessions[idx];
    if (holds_update(n, idx)) {
        while (n->pending_acks > 0) {
            uint8_t acks[ACK_BURST];
            size_t k = n->pending_acks < ACK_BURST ? n->pending_acks : ACK_BURST;
            memset(acks, OTA_RESP_CHUNK_OK, k);
            int rc = n->tcp->send(n->tcp->ctx, ss->conn, acks, k);
            if (rc < 0)
                return rc;
            n->pending_acks -= (uint32_t)rc;
            if ((size_t)rc < k)
                return OTA_ERR_WOULD_BLOCK;
        }
    }
    while (ss->tx_off < ss->tx_len) {
        int rc = n->tcp->send(n->tcp->ctx, ss->conn, ss->tx + ss->tx_off,
                              (size_t)(ss->tx_len - ss->tx_off));
        if (rc < 0)
            return rc;
        ss->tx_off = (uint8_t)(ss->tx_off + rc);
    }
    ss->tx_off = ss->tx_len = 0;
    return OTA_OK;
}

static void source_key(const ota_session_t *ss, char key[OTA_CFG_ADDR_MAX])
{
    ota_guard_addr_key(ss->peer, key);
}

/* --------------------------------------------------------------- handshake */

static void after_auth_ok(ota_native_t *n, int idx, const uint8_t *extra, size_t extra_len)
{
    ota_session_t *ss = &n->sessions[idx];
    ota_guard_ok(n->guard, ss->peer, n->now_ms);
    if (!take_lock(n, idx))
        return;
    log_peer(n, OTA_LOG_INFO, ss, "authenticated", OTA_OK);
    queue1(ss, OTA_RESP_AUTH_OK);
    queue(ss, extra, extra_len);
    bool ext = (ss->features & OTA_FEATURE_EXTENDED) != 0;
    expect(ss, ext ? OTA_STEP_UPDATE_TYPE : OTA_STEP_SIZE, ext ? 1 : 4);
}

static uint8_t pick_method(const ota_native_t *n, uint8_t features)
{
    if (n->has_verifier && (features & OTA_FEATURE_SALTED_AUTH))
        return OTA_RESP_REQUEST_AUTH_SALTED;
#if OTA_CFG_ENABLE_LEGACY_AUTH
    if (has_password(n)) {
        if ((features & OTA_FEATURE_SHA256_AUTH) && n->cfg.allow_sha256)
            return OTA_RESP_REQUEST_AUTH_SHA256;
        if (n->cfg.allow_md5)
            return OTA_RESP_REQUEST_AUTH_MD5;
    }
#endif
    return 0;
}

static const char *no_method_reason(const ota_native_t *n, uint8_t features)
{
    if (!has_password(n))
        return "auth refused: the client does not speak salted auth and this node keeps "
               "no legacy password (a stock uploader? see the legacy auth option)";
    if (features & OTA_FEATURE_SHA256_AUTH)
        return "auth refused: the client offers no method this node allows";
    return "auth refused: the client knows only MD5, which this node does not allow";
}

/* After the features reply: no password, AUTH_OK at once; else (unless the guard
 * makes it wait) the challenge of the best method both sides know. */
static void begin_auth(ota_native_t *n, int idx)
{
    ota_session_t *ss = &n->sessions[idx];
    bool ext = (ss->features & OTA_FEATURE_EXTENDED) != 0;
    if (!auth_required(n)) {
        queue1(ss, OTA_RESP_AUTH_OK);
        expect(ss, ext ? OTA_STEP_UPDATE_TYPE : OTA_STEP_SIZE, ext ? 1 : 4);
        return;
    }
    char key[OTA_CFG_ADDR_MAX];
    source_key(ss, key);
    if (ota_guard_wait(n->guard, key, n->now_ms) > 0) {
        if (ss->step != OTA_STEP_AUTH_WAIT)
            log_peer_repeat(n, OTA_LOG_REPEAT_WAIT, OTA_LOG_INFO, ss,
                            ota_guard_source_wait(n->guard, key, n->now_ms) > 0
                                ? "auth delayed by the brute-force back-off"
                                : "auth delayed by the brute-force back-off (the node's "
                                  "ceiling of guesses per minute is reached)",
                            OTA_OK);
        ss->step = OTA_STEP_AUTH_WAIT;
        return;
    }
    uint8_t method = pick_method(n, ss->features);
    if (method == 0) {
        fail(n, idx, OTA_ERR_NO_AUTH_METHOD, no_method_reason(n, ss->features));
        return;
    }
    ota_guard_attempt(n->guard, key, n->now_ms);
    ss->auth_method = method;
    queue1(ss, method);
    if (method == OTA_RESP_REQUEST_AUTH_SALTED) {
        uint8_t it[4];
        if (n->crypto->random(n->crypto->ctx, (uint8_t *)ss->nonce, OTA_SALTED_NONCE_LEN) !=
            OTA_OK) {
            fail(n, idx, OTA_ERR_CRYPTO, "no random nonce");
            return;
        }
        ota_be32_put(it, n->verifier.iterations);
        queue(ss, n->verifier.salt, OTA_SALT_LEN);
        queue(ss, it, sizeof it);
        queue(ss, (const uint8_t *)ss->nonce, OTA_SALTED_NONCE_LEN);
        expect(ss, OTA_STEP_AUTH_REPLY, OTA_SALTED_REPLY_LEN);
        return;
    }
    size_t hex = ota_auth_hex_len(method);
    if (ota_auth_random_hex(n->crypto, ss->nonce, hex) != OTA_OK) {
        fail(n, idx, OTA_ERR_CRYPTO, "no random nonce");
        return;
    }
    queue(ss, (const uint8_t *)ss->nonce, hex);
    expect(ss, OTA_STEP_AUTH_REPLY, (uint16_t)(2 * hex));
}

static void check_auth(ota_native_t *n, int idx)
{
    ota_session_t *ss = &n->sessions[idx];
    int rc;
    const char *what;
    if (ss->auth_method == OTA_RESP_REQUEST_AUTH_SALTED) {
        uint8_t msg[OTA_SALTED_AUTH_MESSAGE_LEN];
        uint8_t sig[OTA_SALTED_KEY_LEN];
        ota_salted_auth_message((const uint8_t *)ss->nonce, ss->rx, n->verifier.salt,
                                n->verifier.iterations, msg);
        rc = ota_salted_verify(n->crypto, &n->verifier, msg, ss->rx + OTA_SALTED_NONCE_LEN, sig);
        ota_wipe(ss->nonce, sizeof ss->nonce);
        if (rc == OTA_OK) {
            after_auth_ok(n, idx, sig, sizeof sig);
            ota_wipe(sig, sizeof sig);
            return;
        }
        what = "wrong password (salted method)";
    } else {
#if OTA_CFG_ENABLE_LEGACY_AUTH
        size_t hex = ota_auth_hex_len(ss->auth_method);
        char expected[OTA_SHA256_HEX_LEN];
        const char *cnonce = (const char *)ss->rx;
        const char *answer = (const char *)ss->rx + hex;
        rc = ota_auth_challenge_response(n->crypto, ss->auth_method, n->cfg.password, ss->nonce,
                                         cnonce, expected);
        if (rc == OTA_OK && !ota_ct_equal(expected, answer, hex))
            rc = OTA_ERR_AUTH;
        ota_wipe(expected, sizeof expected);
        ota_wipe(ss->nonce, sizeof ss->nonce);
        if (rc == OTA_OK) {
            after_auth_ok(n, idx, NULL, 0);
            return;
        }
        what = ss->auth_method == OTA_RESP_REQUEST_AUTH_MD5 ? "wrong password (MD5 method)"
                                                            : "wrong password (SHA-256 method)";
#else
        rc = OTA_ERR_AUTH; /* no legacy challenge is ever sent */
        what = "wrong password";
#endif
    }
    fail(n, idx, rc, what);
    if (rc == OTA_ERR_AUTH)
        ota_guard_failed(n->guard, ss->peer, n->now_ms);
}

/* The pipeline prepares the slot (may take several polls while flash erases). */
static void prepare(ota_native_t *n, int idx)
{
    ota_session_t *ss = &n->sessions[idx];
    ota_update_t *u = n->update;
    bool ext_gzip = (ss->features & OTA_FEATURE_COMPRESSION) && accepts_gzip(n);
    int rc = ota_update_begin(u, n->size, NULL, ext_gzip ? OTA_UPDATE_F_GZIP : 0);
    if (rc == OTA_ERR_WOULD_BLOCK)
        return;
    if (rc == OTA_ERR_CRYPTO) {
        fail(n, idx, OTA_ERR_CRYPTO, "cannot start MD5");
        return;
    }
    if (rc != OTA_OK) {
        fail(n, idx, rc, "cannot prepare the update slot");
        return;
    }
#if OTA_CFG_ENABLE_LOG_STRINGS
    ota_logline_t l;
    ota_logline_begin(&l, ss->peer);
    ota_logline_str(&l, "update started, ");
    ota_logline_u32(&l, n->size);
    ota_logline_str(&l, " bytes");
    ota_logline_emit(n->log, OTA_LOG_INFO, &l);
#endif
    queue1(ss, OTA_RESP_UPDATE_PREPARE_OK);
    /* late digest: the data comes first, the MD5 after it (data_phase) */
    if (ss->late_md5)
        expect(ss, OTA_STEP_DATA, 0);
    else
        expect(ss, OTA_STEP_MD5, OTA_MD5_HEX_LEN);
}

/* ----------------------------------------------------------------- reading */

/* Read toward the message the step waits for (rx_need bytes). true when it is
 * complete in rx; false when more must come (or the peer went away: the session is
 * closed then). */
static bool read_message(ota_native_t *n, int idx)
{
    ota_session_t *ss = &n->sessions[idx];
    if (ss->rx_len >= ss->rx_need)
        return true;
    int got = n->tcp->recv(n->tcp->ctx, ss->conn, ss->rx + ss->rx_len,
                           (size_t)(ss->rx_need - ss->rx_len));
    if (got == OTA_ERR_WOULD_BLOCK)
        return false;
    if (got <= 0) {
        if (ss->step == OTA_STEP_FINAL_ACK) {
            log_peer(n, OTA_LOG_INFO, ss, "closed without final ack, rebooting", OTA_OK);
            n->reboot_due = true;
        } else {
#if OTA_CFG_ENABLE_LOG_STRINGS
            ota_logline_t l;
            ota_logline_begin(&l, NULL);
            ota_logline_str(&l, "connection closed during ");
            ota_logline_str(&l, step_name(ss->step));
            /* a bare connect-and-close (port probe) is not worth a warning */
            if (ss->step == OTA_STEP_MAGIC && ss->rx_len == 0)
                log_peer_repeat(n, OTA_LOG_REPEAT_CONNECT, OTA_LOG_DEBUG, ss, l.buf, OTA_OK);
            else if (ss->step < OTA_STEP_PREPARE)
                log_peer_repeat(n, OTA_LOG_REPEAT_HANDSHAKE, OTA_LOG_WARN, ss, l.buf, OTA_OK);
            else
                log_peer(n, OTA_LOG_WARN, ss, l.buf, OTA_OK);
#endif
        }
        close_session(n, idx, got == 0 ? OTA_ERR_CLOSED : got);
        return false;
    }
    ss->last_rx_ms = n->now_ms;
    ss->rx_len = (uint16_t)(ss->rx_len + got);
    return ss->rx_len == ss->rx_need;
}

/* -------------------------------------------------------------- data phase */

/* After bytes are written: the version-2 ack rule (docs/protocol.md#native-acks). */
static void count_acks(ota_native_t *n)
{
    const ota_update_t *u = n->update;
    if (n->cfg.version != OTA_PROTOCOL_VERSION_2)
        return;
    while (n->acked + OTA_CHUNK_SIZE <= u->received ||
           (u->received == u->size && n->acked < u->size)) {
        n->pending_acks++;
        n->acked += OTA_CHUNK_SIZE;
    }
}

static const char *write_error(int rc)
{
    return rc == OTA_ERR_INFLATE ? "corrupt gzip upload" : "writing the image failed";
}

/* Read firmware bytes into the pipeline, let it write them, count acks. Returns
 * when the socket has nothing more, the slot would block, the poll budget is spent,
 * or every byte is in (step becomes FINISH). */
static void data_phase(ota_native_t *n, int idx)
{
    ota_session_t *ss = &n->sessions[idx];
    ota_update_t *u = n->update;
    uint32_t budget = OTA_CFG_POLL_BUDGET;
    for (;;) {
        int rc = ota_update_pump(u);
        if (rc == OTA_ERR_WOULD_BLOCK)
            return;
        if (rc != OTA_OK) {
            fail(n, idx, rc, write_error(rc));
            return;
        }
        count_acks(n);
        if (ota_update_complete(u)) {
            /* late digest: every byte is in and hashed; the MD5 to compare comes now,
             * and nothing is verified or activated before it (step MD5) */
            if (ss->late_md5)
                expect(ss, OTA_STEP_MD5, OTA_MD5_HEX_LEN);
            else
                ss->step = OTA_STEP_FINISH;
            return;
        }
        if (budget == 0)
            return;
        uint8_t *buf;
        size_t want = ota_update_room(u, &buf);
        if (want > budget)
            want = budget;
        int got = n->tcp->recv(n->tcp->ctx, ss->conn, buf, want);
        if (got == OTA_ERR_WOULD_BLOCK)
            return;
        if (got <= 0) {
#if OTA_CFG_ENABLE_LOG_STRINGS
            ota_logline_t l;
            ota_logline_begin(&l, ss->peer);
            ota_logline_str(&l, "connection lost after ");
            ota_logline_u32(&l, u->received);
            ota_logline_str(&l, " of ");
            ota_logline_u32(&l, u->size);
            ota_logline_str(&l, " bytes; update abandoned");
            ota_logline_emit(n->log, OTA_LOG_WARN, &l);
#endif
            close_session(n, idx, got == 0 ? OTA_ERR_CLOSED : got);
            return;
        }
        ss->last_rx_ms = n->now_ms;
        budget -= (uint32_t)got;
        rc = ota_update_received(u, (size_t)got);
        if (rc != OTA_OK) {
            fail(n, idx, rc, rc == OTA_ERR_CRYPTO ? "MD5 update failed" : "cannot start inflating");
            return;
        }
    }
}

/* Every byte is in: answer RECEIVE_OK, let the pipeline verify and activate,
 * answer UPDATE_END_OK. */
static void finish(ota_native_t *n, int idx)
{
    ota_session_t *ss = &n->sessions[idx];
    ota_update_t *u = n->update;
    queue1(ss, OTA_RESP_RECEIVE_OK);
    int rc = ota_update_finish(u);
    switch (rc) {
    case OTA_OK: break;
    case OTA_ERR_CRYPTO: fail(n, idx, rc, "MD5 finish failed"); return;
    case OTA_ERR_MD5_MISMATCH:
        fail(n, idx, rc, "received image does not match the announced MD5");
        return;
    case OTA_ERR_INFLATE: fail(n, idx, rc, "gzip stream ended early"); return;
    case OTA_ERR_ACTIVATE: fail(n, idx, rc, "cannot activate the new image"); return;
#if OTA_CFG_ENABLE_SIGNED /* (these errors exist only then) */
    case OTA_ERR_ROLLBACK:
        fail(n, idx, rc, "image refused: its security version is below the node's minimum");
        return;
    case OTA_ERR_NOT_SIGNED:
    case OTA_ERR_UNTRUSTED_KEY:
    case OTA_ERR_BAD_SIGNATURE:
        /* the words say which: unsigned, another key, altered (ota_error_str) */
        fail(n, idx, rc, "image refused: not signed by a trusted key");
        return;
#endif
    default: fail(n, idx, rc, "image rejected"); return;
    }
#if OTA_CFG_ENABLE_LOG_STRINGS
    ota_logline_t l;
    ota_logline_begin(&l, ss->peer);
    ota_logline_str(&l, "update complete, ");
    ota_logline_u32(&l, u->written);
    ota_logline_str(&l, u->compressed ? " bytes (inflated from " : " bytes (");
    ota_logline_u32(&l, u->size);
    ota_logline_str(&l, u->compressed ? " gzip bytes), activated" : " on the wire), activated");
    ota_logline_emit(n->log, OTA_LOG_INFO, &l);
#endif
    queue1(ss, OTA_RESP_UPDATE_END_OK);
    expect(ss, OTA_STEP_FINAL_ACK, 1);
}

/* ------------------------------------------------------------------- step */

/* Advance session idx by one message, in wire order. true: progress was made (its
 * answer may be queued): flush and call again; false: wait for the next poll. */
static bool step(ota_native_t *n, int idx)
{
    ota_session_t *ss = &n->sessions[idx];
    switch (ss->step) {
    case OTA_STEP_MAGIC:
        /* read: the 5 magic bytes; write: OK, the protocol version */
        if (!read_message(n, idx))
            return false;
        if (!ota_ct_equal(ss->rx, ota_protocol_magic, OTA_MAGIC_LEN)) {
            fail(n, idx, OTA_ERR_BAD_MAGIC, "wrong magic bytes");
            return true;
        }
        queue1(ss, OTA_RESP_OK);
        queue1(ss, n->cfg.version);
        expect(ss, OTA_STEP_FEATURES, 1);
        return true;

    case OTA_STEP_FEATURES:
        /* read: the client's feature byte; write: FEATURE_FLAGS + ours (extended
         * clients), SUPPORTS_COMPRESSION or HEADER_OK, then the auth request */
        if (!read_message(n, idx))
            return false;
        ss->features = ss->rx[0];
        ss->prompt = ota_elapsed_ms(n->now_ms, ss->opened_ms) <= OTA_CFG_HANDSHAKE_PROMPT_MS;
        if (ss->features & OTA_FEATURE_EXTENDED) {
            uint8_t flags = accepts_gzip(n) ? OTA_SERVER_FLAG_COMPRESSION : 0;
#if OTA_CFG_ENABLE_LATE_MD5
            /* only to a client that asked: a stock one never sees our flag */
            if (ss->features & OTA_FEATURE_LATE_MD5) {
                flags |= OTA_SERVER_FLAG_LATE_MD5;
                ss->late_md5 = true;
            }
#endif
            queue1(ss, OTA_RESP_FEATURE_FLAGS);
            queue1(ss, flags);
        } else if ((ss->features & OTA_FEATURE_COMPRESSION) && accepts_gzip(n)) {
            queue1(ss, OTA_RESP_SUPPORTS_COMPRESSION);
        } else {
            queue1(ss, OTA_RESP_HEADER_OK);
        }
        begin_auth(n, idx);
        return true;

    case OTA_STEP_AUTH_WAIT: {
        /* read: nothing; the brute-force guard holds the challenge back */
        char key[OTA_CFG_ADDR_MAX];
        source_key(ss, key);
        if (ota_guard_wait(n->guard, key, n->now_ms) > 0)
            return false;
        ss->last_rx_ms = n->now_ms; /* the wait was ours, not the peer's */
        begin_auth(n, idx);
        return true;
    }

    case OTA_STEP_AUTH_REPLY:
        /* read: cnonce + response (legacy) or client nonce + ClientProof (salted);
         * write: AUTH_OK (+ ServerSignature, salted), or an error and close */
        if (!read_message(n, idx))
            return false;
        check_auth(n, idx);
        return true;

    case OTA_STEP_UPDATE_TYPE:
        /* read: the update type (extended clients only); write: nothing */
        if (!read_message(n, idx))
            return false;
#if OTA_CFG_ENABLE_PULL
        /* "pull now" (ours): authenticated like an upload; no image follows */
        if (ss->rx[0] == OTA_UPDATE_TYPE_PULL_NOW && n->cfg.on_pull_now != NULL) {
            log_peer(n, OTA_LOG_INFO, ss, "asked for an update check now", OTA_OK);
            release_update(n, idx, OTA_OK);
            n->cfg.on_pull_now(n->cfg.on_pull_now_arg);
            queue1(ss, OTA_RESP_OK);
            ss->close_after_send = true;
            ss->step = OTA_STEP_CLOSING;
            return true;
        }
#endif
        if (ss->rx[0] != OTA_UPDATE_TYPE_APP) {
            fail(n, idx, OTA_ERR_UNSUPPORTED, "unsupported update type requested");
            return true;
        }
        expect(ss, OTA_STEP_SIZE, 4);
        return true;

    case OTA_STEP_SIZE: {
        /* read: the image size, 4 bytes big-endian; write: nothing yet (PREPARE) */
        if (!read_message(n, idx))
            return false;
        uint32_t size = ota_be32_get(ss->rx);
        /* without auth the lock is taken here; after auth this session holds it */
        if (!holds_update(n, idx) && !take_lock(n, idx))
            return true;
        if (size == 0) {
            fail(n, idx, OTA_ERR_PREPARE, "announced an empty image");
            return true;
        }
        n->size = size;
        expect(ss, OTA_STEP_PREPARE, 0);
        prepare(n, idx);
        return true;
    }

    case OTA_STEP_PREPARE:
        /* read: nothing; the slot is being prepared; write: UPDATE_PREPARE_OK */
        prepare(n, idx);
        return ss->step != OTA_STEP_PREPARE;

    case OTA_STEP_MD5:
        /* read: the image's MD5, 32 hex characters; write: BIN_MD5_OK (stock order,
         * before the data), or nothing (late digest, after the data: FINISH compares) */
        if (!read_message(n, idx))
            return false;
        {
            uint8_t md5[OTA_MD5_LEN];
            if (ota_hex_decode((const char *)ss->rx, OTA_MD5_LEN, md5) != 0) {
                fail(n, idx, OTA_ERR_PROTOCOL, "announced MD5 is not hex");
                return true;
            }
            ota_update_expect_md5(n->update, md5);
        }
        if (ss->late_md5) {
            ss->step = OTA_STEP_FINISH;
            return true;
        }
        queue1(ss, OTA_RESP_BIN_MD5_OK);
        expect(ss, OTA_STEP_DATA, 0);
        return true;

    case OTA_STEP_DATA:
        /* read: the image; write: a CHUNK_OK per 8 KiB written (version 2) */
        data_phase(n, idx);
        if (ss->step == OTA_STEP_DATA) {
            int rc = flush(n, idx); /* chunk acks */
            if (rc < 0 && rc != OTA_ERR_WOULD_BLOCK) {
                log_peer(n, OTA_LOG_WARN, ss, "connection lost during upload", rc);
                close_session(n, idx, rc);
            }
            return false;
        }
        return true;

    case OTA_STEP_FINISH:
        /* read: nothing; write: RECEIVE_OK, then UPDATE_END_OK once activated */
        finish(n, idx);
        return true;

    case OTA_STEP_FINAL_ACK:
        /* read: the client's final ack byte; write: nothing; then reboot */
        if (!read_message(n, idx))
            return false;
        log_peer(n, OTA_LOG_INFO, ss, "final ack received, rebooting", OTA_OK);
        n->reboot_due = true;
        ss->close_after_send = true;
        ss->step = OTA_STEP_CLOSING;
        return true;

    default: /* CLOSING waits for its answer to drain (run_session) */ return false;
    }
}

static void run_session(ota_native_t *n, int idx)
{
    ota_session_t *ss = &n->sessions[idx];
    /* Each pass either finishes a step or returns; the bound only guards against
     * a port that reports progress without making any. */
    for (int pass = 0; pass < 32 && ss->step != OTA_STEP_FREE; pass++) {
        int rc = flush(n, idx);
        if (rc == OTA_ERR_WOULD_BLOCK)
            return;
        if (rc < 0) {
            if (ss->step == OTA_STEP_FINAL_ACK)
                n->reboot_due = true;
            else if (!ss->close_after_send && ss->step < OTA_STEP_PREPARE)
                log_peer_repeat(n, OTA_LOG_REPEAT_HANDSHAKE, OTA_LOG_WARN, ss,
                                "connection lost while answering", rc);
            else if (!ss->close_after_send)
                log_peer(n, OTA_LOG_WARN, ss, "connection lost while answering", rc);
            close_session(n, idx, rc);
            return;
        }
        if (ss->close_after_send) {
            close_session(n, idx, ss->close_err);
            return;
        }
        if (!step(n, idx))
            return;
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

enum {
    RANK_KEEP = -1,
    RANK_YOUNG_TALKING = 1,
    RANK_YOUNG_SILENT = 2,
    RANK_OWN_BACKOFF = 3,
    RANK_STALLED = 4,
    RANK_SLOW_EARLY = 5,
    RANK_CLOSING = 6
};

static bool same_source(const ota_session_t *ss, const char *key)
{
    char k[OTA_CFG_ADDR_MAX];
    source_key(ss, k);
    return strcmp(k, key) == 0;
}

/* How readily session i gives its place to a newcomer (higher: sooner). */
static int evict_rank(const ota_native_t *n, int i)
{
    const ota_session_t *ss = &n->sessions[i];
    if (holds_update(n, i))
        return RANK_KEEP;
    uint32_t age = ota_elapsed_ms(n->now_ms, ss->opened_ms);
    uint32_t idle = ota_elapsed_ms(n->now_ms, ss->last_rx_ms);
    switch (ss->step) {
    case OTA_STEP_MAGIC:
    case OTA_STEP_FEATURES:
        if (age > OTA_CFG_HANDSHAKE_PROMPT_MS)
            return RANK_SLOW_EARLY;
        return ss->step == OTA_STEP_MAGIC && ss->rx_len == 0 ? RANK_YOUNG_SILENT
                                                             : RANK_YOUNG_TALKING;
    case OTA_STEP_AUTH_WAIT: {
        char key[OTA_CFG_ADDR_MAX];
        source_key(ss, key);
        /* delayed by its own failures: an attacker's; by the global ceiling only: keep */
        return (!ss->prompt || ota_guard_source_wait(n->guard, key, n->now_ms) > 0)
                   ? RANK_OWN_BACKOFF
                   : RANK_KEEP;
    }
    case OTA_STEP_AUTH_REPLY:
    case OTA_STEP_UPDATE_TYPE:
    case OTA_STEP_SIZE:
        return (!ss->prompt || idle >= OTA_CFG_HANDSHAKE_STALE_MS) ? RANK_STALLED : RANK_KEEP;
    case OTA_STEP_CLOSING: return ss->close_after_send ? RANK_CLOSING : RANK_KEEP;
    default: return RANK_KEEP;
    }
}

static int source_count(const ota_native_t *n, const char *key)
{
    int c = 0;
    for (int i = 0; i < OTA_CFG_MAX_SESSIONS; i++)
        if (n->sessions[i].step != OTA_STEP_FREE && same_source(&n->sessions[i], key))
            c++;
    return c;
}

/* The session to replace: rank at least min_rank, from key's source only when key is
 * given; NO_SESSION if there is none. */
static int pick_victim(const ota_native_t *n, const char *key, int min_rank)
{
    int best = NO_SESSION, best_rank = 0, best_src = 0;
    uint32_t best_idle = 0;
    for (int i = 0; i < OTA_CFG_MAX_SESSIONS; i++) {
        const ota_session_t *ss = &n->sessions[i];
        if (ss->step == OTA_STEP_FREE)
            continue;
        if (key != NULL && !same_source(ss, key))
            continue;
        int r = evict_rank(n, i);
        if (r < min_rank)
            continue;
        char k[OTA_CFG_ADDR_MAX];
        source_key(ss, k);
        int src = source_count(n, k);
        uint32_t idle = ota_elapsed_ms(n->now_ms, ss->last_rx_ms);
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
static bool early_drop(ota_native_t *n, int used)
{
    if (used < OTA_CFG_RED_START)
        return false;
    uint32_t pct = 100;
#if OTA_CFG_MAX_SESSIONS > OTA_CFG_RED_START
    if (used < OTA_CFG_MAX_SESSIONS)
        pct = (uint32_t)OTA_CFG_RED_RATE_PCT +
              (uint32_t)(100 - OTA_CFG_RED_RATE_PCT) * (uint32_t)(used - OTA_CFG_RED_START) /
                  (uint32_t)(OTA_CFG_MAX_SESSIONS - OTA_CFG_RED_START);
#endif
    uint8_t r[2];
    if (n->crypto->random(n->crypto->ctx, r, sizeof r) != OTA_OK)
        return true;
    return (uint32_t)((r[0] << 8) | r[1]) % 100u < pct;
}

static void evict(ota_native_t *n, int idx, const char *why)
{
    log_peer_repeat(n, OTA_LOG_REPEAT_DROP, OTA_LOG_WARN, &n->sessions[idx], why, OTA_OK);
    close_session(n, idx, OTA_ERR_BUSY);
}

/* A place for a newcomer from key (eager: its first bytes are the magic's), or
 * NO_SESSION: refuse it. */
static int admit(ota_native_t *n, const char *key, bool eager)
{
    if (source_count(n, key) >= OTA_CFG_MAX_SESSIONS_PER_SOURCE) {
        int v = pick_victim(n, key, eager ? RANK_YOUNG_TALKING : RANK_YOUNG_SILENT);
        if (v != NO_SESSION)
            evict(n, v, "too many connections from this address, dropping its oldest");
        return v;
    }
    /* places taken for real: slow sessions count as free */
    int free_idx = NO_SESSION, used = 0;
    for (int i = 0; i < OTA_CFG_MAX_SESSIONS; i++) {
        if (n->sessions[i].step == OTA_STEP_FREE) {
            if (free_idx == NO_SESSION)
                free_idx = i;
        } else if (evict_rank(n, i) < RANK_OWN_BACKOFF) {
            used++;
        }
    }
    if (!eager && early_drop(n, used))
        return NO_SESSION;
    if (free_idx != NO_SESSION)
        return free_idx;
    /* a slow session gives way to anyone, a young silent one only to an eager newcomer */
    int v = pick_victim(n, NULL, eager ? RANK_YOUNG_SILENT : RANK_OWN_BACKOFF);
    if (v != NO_SESSION)
        evict(n, v,
              evict_rank(n, v) >= RANK_OWN_BACKOFF
                  ? "handshake pool full, dropping this slow connection"
                  : "handshake pool full, dropping this silent connection");
    return v;
}

/* Refuse a connection before it has a session. */
static void refuse(ota_native_t *n, ota_conn_t conn, const char *peer, int kind,
                   ota_log_level_t lvl, const char *why, int code)
{
    if (code >= 0) {
        uint8_t b = (uint8_t)code;
        (void)n->tcp->send(n->tcp->ctx, conn, &b, 1);
    }
    n->tcp->close(n->tcp->ctx, conn);
    ota_log_peer_repeat(n->log, kind, n->now_ms, lvl, peer, why, OTA_OK);
}

/* true when a newcomer that has sent nothing yet would meet early drop (or find no
 * place at all). */
static bool under_pressure(const ota_native_t *n)
{
    int used = 0;
    for (int i = 0; i < OTA_CFG_MAX_SESSIONS; i++)
        if (n->sessions[i].step != OTA_STEP_FREE && evict_rank(n, i) < RANK_OWN_BACKOFF)
            used++;
    return used >= OTA_CFG_RED_START;
}

static void accept_new(ota_native_t *n)
{
    /* Under pressure (a newcomer that has sent nothing would meet early drop): take
     * connections from the listener only every OTA_CFG_ACCEPT_PAUSE_MS. Meanwhile they
     * wait in the port's accept queue, where a real uploader's magic bytes arrive: so
     * it is told from the sitters when it is accepted; a full queue slows the flood. */
    bool pressed = under_pressure(n);
    if (!ota_update_busy(n->update) && pressed &&
        ota_elapsed_ms(n->now_ms, n->accept_ms) < OTA_CFG_ACCEPT_PAUSE_MS)
        return;
    n->accept_ms = n->now_ms;
    for (int k = 0; k < ACCEPTS_PER_POLL; k++) {
        /* the pressure began in this batch: the rest waits for the next one */
        if (!pressed && k > 0 && under_pressure(n))
            return;
        ota_conn_t conn = -1;
        char peer[OTA_CFG_PEER_MAX];
        peer[0] = '\0';
        if (n->tcp->accept(n->tcp->ctx, &conn, peer, sizeof peer) != OTA_OK)
            return;
        peer[sizeof peer - 1] = '\0';
        if (ota_update_busy(n->update)) {
            /* One update at a time: tell the newcomer at once, leave the update be. */
            refuse(n, conn, peer, OTA_LOG_REPEAT_BUSY, OTA_LOG_WARN,
                   "refused, an update is in progress", OTA_RESP_ERROR_BUSY);
            continue;
        }
        /* what it has sent already tells an uploader from garbage and from a sitter */
        uint8_t head[OTA_MAGIC_LEN];
        int got = n->tcp->recv(n->tcp->ctx, conn, head, sizeof head);
        if (got == OTA_ERR_WOULD_BLOCK) {
            got = 0;
        } else if (got <= 0) {
            refuse(n, conn, peer, OTA_LOG_REPEAT_CONNECT, OTA_LOG_DEBUG, "closed at once", -1);
            continue;
        }
        if (got > 0 && memcmp(head, ota_protocol_magic, (size_t)got) != 0) {
            refuse(n, conn, peer, OTA_LOG_REPEAT_HANDSHAKE, OTA_LOG_WARN,
                   "wrong magic bytes: bad protocol magic", OTA_RESP_ERROR_MAGIC);
            continue;
        }
        char key[OTA_CFG_ADDR_MAX];
        ota_guard_addr_key(peer, key);
        int idx = admit(n, key, got > 0);
        if (idx == NO_SESSION) {
            refuse(n, conn, peer, OTA_LOG_REPEAT_DROP, OTA_LOG_WARN,
                   "handshake pool full, connection refused", -1);
            continue;
        }
        ota_session_t *ss = &n->sessions[idx];
        memset(ss, 0, sizeof *ss);
        ss->conn = conn;
        memcpy(ss->peer, peer, sizeof ss->peer);
        ss->opened_ms = ss->last_rx_ms = n->now_ms;
        expect(ss, OTA_STEP_MAGIC, OTA_MAGIC_LEN);
        memcpy(ss->rx, head, (size_t)got);
        ss->rx_len = (uint16_t)got;
        log_peer_repeat(n, OTA_LOG_REPEAT_CONNECT, OTA_LOG_DEBUG, ss, "connected", OTA_OK);
        if (ss->rx_len == ss->rx_need)
            (void)step(n, idx); /* the magic is all there: answer it */
    }
}

/* --------------------------------------------------------------- timeouts */

static uint32_t step_timeout(const ota_native_t *n, uint8_t st)
{
    switch (st) {
    case OTA_STEP_PREPARE:
    case OTA_STEP_MD5:
    case OTA_STEP_DATA:
    case OTA_STEP_FINISH: return n->cfg.data_timeout_ms;
    case OTA_STEP_FINAL_ACK: return n->cfg.final_ack_timeout_ms;
    default: return n->cfg.handshake_timeout_ms;
    }
}

static void check_timeouts(ota_native_t *n)
{
    for (int i = 0; i < OTA_CFG_MAX_SESSIONS; i++) {
        ota_session_t *ss = &n->sessions[i];
        if (ss->step == OTA_STEP_FREE || ss->step == OTA_STEP_AUTH_WAIT)
            continue;
        if (ota_elapsed_ms(n->now_ms, ss->last_rx_ms) < step_timeout(n, ss->step))
            continue;
        if (ss->step == OTA_STEP_FINAL_ACK) {
            log_peer(n, OTA_LOG_INFO, ss, "no final ack, rebooting anyway", OTA_OK);
            n->reboot_due = true;
            close_session(n, i, OTA_OK);
            continue;
        }
#if OTA_CFG_ENABLE_LOG_STRINGS
        ota_logline_t l;
        ota_logline_begin(&l, NULL);
        ota_logline_str(&l, "silent for ");
        ota_logline_u32(&l, ota_elapsed_ms(n->now_ms, ss->last_rx_ms));
        ota_logline_str(&l, " ms during ");
        ota_logline_str(&l, step_name(ss->step));
        ota_logline_str(&l, ", closing");
        if (ss->step < OTA_STEP_PREPARE) /* idle connections of a flood time out here */
            log_peer_repeat(n, OTA_LOG_REPEAT_HANDSHAKE, OTA_LOG_WARN, ss, l.buf, OTA_OK);
        else
            log_peer(n, OTA_LOG_WARN, ss, l.buf, OTA_OK);
#endif
        close_session(n, i, OTA_ERR_TIMEOUT);
    }
}

/* --------------------------------------------------------------- public API */

void ota_native_poll(ota_native_t *n, uint32_t now_ms)
{
    n->now_ms = now_ms;
    accept_new(n);
    for (int i = 0; i < OTA_CFG_MAX_SESSIONS; i++)
        if (n->sessions[i].step != OTA_STEP_FREE)
            run_session(n, i);
    check_timeouts(n);
}

bool ota_native_active(const ota_native_t *n)
{
    for (int i = 0; i < OTA_CFG_MAX_SESSIONS; i++)
        if (n->sessions[i].step != OTA_STEP_FREE)
            return true;
    return false;
}

bool ota_native_reboot_due(const ota_native_t *n)
{
    return n->reboot_due;
}

void ota_native_free(ota_native_t *n)
{
    if (n->tcp != NULL)
        for (int i = 0; i < OTA_CFG_MAX_SESSIONS; i++)
            close_session(n, i, OTA_ERR_CLOSED);
    ota_wipe(&n->verifier, sizeof n->verifier);
    n->has_verifier = false;
}
