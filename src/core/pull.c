/*
 * pull.c - pull updates (ota/pull.h): the check (manifest, its signature, the
 * decision), the resumable download into the update pipeline, the schedule with
 * jitter and back-off. docs/pull.md tells the story; this file the details.
 */
#include "ota/pull.h"

#if OTA_CFG_ENABLE_PULL && OTA_CFG_ENABLE_HTTP

#include <string.h>

#include "ota/util.h"

enum {
    PULL_IDLE = 0,
    PULL_MANIFEST,      /* GET manifest.json */
    PULL_SIG,           /* GET manifest.json.sig */
    PULL_IMAGE_HEADERS, /* GET the image: waiting for the answer */
    PULL_BEGIN,         /* the store is being prepared (begin / resume said WOULD_BLOCK) */
    PULL_REPLAY,        /* the kept bytes are read back through the hashes */
    PULL_BODY,          /* bytes flow into the pipeline */
    PULL_DONE           /* activated: the reboot was asked for */
};

/* Bytes one poll moves at most, so the firmware's loop keeps its rhythm. */
#define PULL_POLL_BUDGET OTA_CFG_POLL_BUDGET

void ota_pull_config_default(ota_pull_config_t *cfg)
{
    memset(cfg, 0, sizeof *cfg);
    cfg->interval_ms = 6u * 3600u * 1000u;
    cfg->jitter_pct = 10;
    cfg->retry_min_ms = 5000u;
    cfg->retry_max_ms = 300000u;
    cfg->max_retries = 8;
}

static bool due(uint32_t now, uint32_t at)
{
    return (int32_t)(now - at) >= 0;
}

/* ---------------------------------------------------------------- logging */

static void say(ota_pull_t *p, ota_log_level_t lvl, const char *a, const char *b, uint32_t n,
                const char *c)
{
    ota_logline_t l;
    ota_logline_begin(&l, "pull");
    ota_logline_str(&l, a);
    if (b != NULL)
        ota_logline_str(&l, b);
    if (c != NULL) {
        ota_logline_u32(&l, n);
        ota_logline_str(&l, c);
    }
    ota_logline_emit(&p->log, lvl, &l);
}

static void say_err(ota_pull_t *p, const char *what, int err)
{
    ota_logline_t l;
    ota_logline_begin(&l, "pull");
    ota_logline_str(&l, what);
    ota_logline_str(&l, ": ");
    ota_logline_str(&l, ota_strerror(err));
    if (err == OTA_ERR_HTTP_STATUS) {
        ota_logline_str(&l, " ");
        ota_logline_u32(&l, (uint32_t)ota_http_status(&p->http));
    }
    ota_logline_emit(&p->log, OTA_LOG_WARN, &l);
}

/* ---------------------------------------------------------------- schedule */

static uint32_t random_u32(ota_pull_t *p)
{
    uint8_t r[4] = {0, 0, 0, 0};
    const ota_crypto_port_t *c = p->ports.crypto;
    if (c->random != NULL)
        (void)c->random(c->ctx, r, sizeof r);
    return (uint32_t)r[0] << 24 | (uint32_t)r[1] << 16 | (uint32_t)r[2] << 8 | r[3];
}

/* The next regular check: interval +- jitter, so that a fleet that started together
 * does not keep hitting the server in the same second. */
static void schedule_interval(ota_pull_t *p, uint32_t now)
{
    uint64_t iv = p->cfg.interval_ms;
    uint32_t j = p->cfg.jitter_pct > 100 ? 100 : p->cfg.jitter_pct;
    if (j > 0) {
        uint32_t pct = 100u - j + random_u32(p) % (2u * j + 1u);
        iv = iv * pct / 100u;
    }
    if (iv == 0)
        iv = 1;
    p->next_ms = now + (uint32_t)(iv > 0x7FFFFFFFu ? 0x7FFFFFFFu : iv);
    p->failures = 0;
    p->backoff_ms = p->cfg.retry_min_ms;
}

/* After a failure: soon, then less and less often; after max_retries the interval. */
static void schedule_retry(ota_pull_t *p, uint32_t now)
{
    if (++p->failures > p->cfg.max_retries) {
        say(p, OTA_LOG_WARN, "giving up until the next regular check", NULL, 0, NULL);
        schedule_interval(p, now);
        return;
    }
    uint32_t wait = p->backoff_ms ? p->backoff_ms : 1000u;
    /* a little jitter here too (up to a quarter), so retries of a fleet spread out */
    wait += random_u32(p) % (wait / 4u + 1u);
    p->next_ms = now + wait;
    say(p, OTA_LOG_INFO, "retrying in ", NULL, wait / 1000u, " s");
    uint32_t next = p->backoff_ms * 2u;
    if (next < p->backoff_ms || next > p->cfg.retry_max_ms)
        next = p->cfg.retry_max_ms;
    p->backoff_ms = next;
}

/* ---------------------------------------------------------------- resume record */

/* Which download a resume point belongs to: the image URL, its size and digests. A
 * new release (or the same URL with other bytes announced) never continues another's
 * bytes; the ETag (If-Range) guards against a file changed under the same manifest. */
static int download_id(ota_pull_t *p, uint8_t id[16])
{
    const ota_crypto_port_t *c = p->ports.crypto;
    ota_hash_ctx_t h;
    uint8_t sz[4] = {(uint8_t)p->size, (uint8_t)(p->size >> 8), (uint8_t)(p->size >> 16),
                     (uint8_t)(p->size >> 24)};
    uint8_t d[32];
    static const uint8_t zero[32] = {0};
    const ota_manifest_t *m = &p->manifest;
    if (c->hash_start(c->ctx, &h, OTA_HASH_SHA256) != OTA_OK ||
        c->hash_update(c->ctx, &h, (const uint8_t *)"ota-pull", 9) != OTA_OK ||
        c->hash_update(c->ctx, &h, (const uint8_t *)p->image_url, strlen(p->image_url) + 1) !=
            OTA_OK ||
        c->hash_update(c->ctx, &h, sz, sizeof sz) != OTA_OK ||
        c->hash_update(c->ctx, &h, m->has_sha256 ? m->sha256 : zero, 32) != OTA_OK ||
        c->hash_update(c->ctx, &h, m->has_md5 ? m->md5 : zero, 16) != OTA_OK ||
        c->hash_finish(c->ctx, &h, d) != OTA_OK)
        return OTA_ERR_CRYPTO;
    memcpy(id, d, 16);
    return OTA_OK;
}

static int record_store(ota_pull_t *p, uint32_t offset)
{
    const ota_boot_port_t *b = p->ports.boot;
    ota_boot_record_t rec;
    memset(&rec, 0, sizeof rec);
    if (b->load == NULL || b->store == NULL || b->load(b->ctx, &rec) != OTA_OK)
        return OTA_ERR_IO;
    rec.pull_offset = offset;
    if (offset == 0) {
        memset(rec.pull_id, 0, sizeof rec.pull_id);
        rec.pull_etag[0] = '\0';
    } else {
        memcpy(rec.pull_id, p->id, sizeof rec.pull_id);
        memcpy(rec.pull_etag, p->etag, sizeof rec.pull_etag);
    }
    return b->store(b->ctx, &rec);
}

/* ---------------------------------------------------------------- attempts */

static void http_get(ota_pull_t *p, const char *url, uint32_t range_start, const char *if_range,
                     uint32_t now, int *rc)
{
    ota_http_request_t req;
    memset(&req, 0, sizeof req);
    req.url = url;
    req.range_start = range_start;
    req.if_range = if_range != NULL && if_range[0] != '\0' ? if_range : NULL;
    req.user_agent = p->cfg.user_agent != NULL ? p->cfg.user_agent : "ota-pull";
    *rc = ota_http_get(&p->http, &req, now);
}

/* The attempt failed: close, and keep the slot's bytes for a resume when keep. */
static int fail(ota_pull_t *p, const char *what, int err, bool keep, uint32_t now)
{
    ota_http_close(&p->http);
    if (ota_update_held_by(p->update, OTA_UPDATE_HOLDER_PULL)) {
        if (keep && p->synced > 0) {
            ota_update_suspend(p->update, OTA_UPDATE_HOLDER_PULL, err);
        } else {
            ota_update_abort(p->update, OTA_UPDATE_HOLDER_PULL, err);
            if (p->synced > 0 || p->resumed_at > 0)
                (void)record_store(p, 0);
            p->synced = 0;
        }
    }
    say_err(p, what, err);
    p->err = err;
    p->outcome = OTA_PULL_FAILED;
    p->state = PULL_IDLE;
    schedule_retry(p, now);
    return err;
}

static int start_check(ota_pull_t *p, uint32_t now)
{
    int rc;
    p->check_requested = false;
    p->body_len = 0;
    say(p, OTA_LOG_INFO, "checking ", p->cfg.manifest_url, 0, NULL);
    http_get(p, p->cfg.manifest_url, 0, NULL, now, &rc);
    if (rc != OTA_OK)
        return fail(p, "cannot fetch the manifest", rc, false, now);
    p->outcome = OTA_PULL_DOWNLOADING;
    p->state = PULL_MANIFEST;
    return OTA_ERR_WOULD_BLOCK;
}

#if OTA_CFG_ENABLE_SIGNED
static int start_sig(ota_pull_t *p, uint32_t now)
{
    char url[OTA_CFG_HTTP_URL_MAX];
    size_t n = strlen(p->cfg.manifest_url);
    if (n + 5 > sizeof url)
        return fail(p, "the manifest URL is too long for its signature's", OTA_ERR_TOO_LONG,
                    false, now);
    memcpy(url, p->cfg.manifest_url, n);
    memcpy(url + n, ".sig", 5);
    int rc;
    p->sig_len = 0;
    http_get(p, url, 0, NULL, now, &rc);
    if (rc != OTA_OK)
        return fail(p, "cannot fetch the manifest signature", rc, false, now);
    p->state = PULL_SIG;
    return OTA_ERR_WOULD_BLOCK;
}
#endif

/* The manifest (and its signature) are in: is the release for this node? */
static int decide(ota_pull_t *p, uint32_t now)
{
    ota_http_close(&p->http);
    ota_manifest_t *m = &p->manifest;
    int rc = ota_manifest_parse(p->body, p->body_len, p->cfg.chip_family, m);
    if (rc != OTA_OK) {
        say(p, OTA_LOG_WARN, "manifest refused: ",
            rc == OTA_ERR_UNSUPPORTED ? "no build for this chip family "
                                      : ota_manifest_error_name(m->error),
            0, NULL);
        if (rc == OTA_ERR_UNSUPPORTED)
            say(p, OTA_LOG_WARN, "this node's chip family is ", p->cfg.chip_family, 0, NULL);
        return fail(p, "manifest", rc, false, now);
    }
    const ota_boot_port_t *b = p->ports.boot;
    ota_boot_record_t rec;
    memset(&rec, 0, sizeof rec);
    if (b->load(b->ctx, &rec) != OTA_OK)
        return fail(p, "cannot read the boot record", OTA_ERR_IO, false, now);
    ota_manifest_node_t node = {.name = p->cfg.node_name,
                                .version = p->cfg.version,
                                .chip_family = p->cfg.chip_family,
                                .min_secure_version = rec.min_secure_version};
#if OTA_CFG_ENABLE_SIGNED
    if (p->cfg.n_trusted > 0) {
        node.signature_required = true;
        rc = ota_manifest_verify_signature(p->ports.crypto, p->body, p->body_len, p->sig,
                                           p->sig_len, p->cfg.trusted, p->cfg.n_trusted, NULL);
        node.signature_verified = rc == OTA_OK;
        if (rc != OTA_OK)
            return fail(p, "the manifest signature does not verify", rc, false, now);
        /* a signed manifest older than one accepted before is a replay: a mirror
         * trying to move the node back to an old release, or to keep it on one */
        if (m->has_published && m->published < rec.pull_published) {
            say(p, OTA_LOG_WARN, "the manifest is older than one accepted before (",
                NULL, m->published, " < the newest seen): a replayed manifest, ignored");
            return fail(p, "manifest", OTA_ERR_ROLLBACK, false, now);
        }
        if (m->has_published && m->published > rec.pull_published) {
            rec.pull_published = m->published;
            (void)b->store(b->ctx, &rec); /* best effort: the next check tries again */
        }
    }
#endif
    int bucket = -1;
    ota_manifest_decision_t d =
        ota_manifest_should_take(p->ports.crypto, m, p->cfg.chip_family, &node, &bucket);
    p->decision = (uint8_t)d;
    if (d != OTA_MANIFEST_TAKE) {
        if (d == OTA_MANIFEST_DECISION_ERROR)
            return fail(p, "deciding on the manifest", OTA_ERR_CRYPTO, false, now);
        if (d == OTA_MANIFEST_UNSIGNED)
            return fail(p, "the manifest is not signed by a trusted key", OTA_ERR_UNTRUSTED_KEY,
                        false, now);
        ota_logline_t l;
        ota_logline_begin(&l, "pull");
        ota_logline_str(&l, "release ");
        ota_logline_str(&l, m->version);
        ota_logline_str(&l, ": ");
        ota_logline_str(&l, ota_manifest_decision_name(d));
        if (d == OTA_MANIFEST_NOT_IN_ROLLOUT) {
            ota_logline_str(&l, " (bucket ");
            ota_logline_u32(&l, (uint32_t)bucket);
            ota_logline_str(&l, ", rollout ");
            ota_logline_u32(&l, m->rollout);
            ota_logline_str(&l, "%)");
        }
        ota_logline_emit(&p->log, OTA_LOG_INFO, &l);
        p->outcome = OTA_PULL_UP_TO_DATE;
        p->state = PULL_IDLE;
        schedule_interval(p, now);
        return OTA_OK;
    }
    rc = ota_manifest_resolve_url(p->cfg.manifest_url, m->path, p->image_url,
                                  sizeof p->image_url);
    if (rc < 0)
        return fail(p, "the image URL", rc, false, now);
    if (ota_update_lock(p->update, OTA_UPDATE_HOLDER_PULL) != OTA_OK) {
        say(p, OTA_LOG_INFO, "another update is under way; the pull waits", NULL, 0, NULL);
        return fail(p, "update lock", OTA_ERR_BUSY, false, now);
    }
    p->size = m->has_size ? m->size : 0;
    p->offset = p->synced = p->resumed_at = 0;
    p->etag[0] = '\0';
    /* a resume point of this very download? (the size may still be unknown here: the
     * identity then cannot match one recorded with a size, and it starts over) */
    if (download_id(p, p->id) != OTA_OK)
        return fail(p, "hashing", OTA_ERR_CRYPTO, false, now);
    uint32_t from = 0;
    if (rec.pull_offset > 0 && p->size > 0 && rec.pull_offset < p->size &&
        ota_ct_equal(rec.pull_id, p->id, sizeof p->id)) {
        from = rec.pull_offset;
        memcpy(p->etag, rec.pull_etag, sizeof p->etag);
        p->etag[sizeof p->etag - 1] = '\0';
    }
    say(p, OTA_LOG_INFO, "taking release ", m->version, 0, NULL);
    if (from > 0)
        say(p, OTA_LOG_INFO, "resuming the download at byte ", NULL, from, "");
    p->resumed_at = from;
    http_get(p, p->image_url, from, p->etag, now, &rc);
    if (rc != OTA_OK)
        return fail(p, "cannot fetch the image", rc, true, now);
    p->state = PULL_IMAGE_HEADERS;
    return OTA_ERR_WOULD_BLOCK;
}

/* The image's answer is in: a fresh start (200) or the rest (206). */
static int image_headers(ota_pull_t *p, uint32_t now)
{
    int status = ota_http_status(&p->http);
    uint64_t total = ota_http_total_size(&p->http);
    if (status == 206 && (p->resumed_at == 0 || ota_http_range_start(&p->http) != p->resumed_at))
        return fail(p, "the server sent another range", OTA_ERR_PROTOCOL, false, now);
    if (status == 200 && p->resumed_at > 0) {
        say(p, OTA_LOG_INFO, "the server sent the whole file (changed, or no ranges): "
                             "starting over",
            NULL, 0, NULL);
        p->resumed_at = 0;
    }
    if (total == OTA_HTTP_UNKNOWN && p->size == 0)
        return fail(p, "the server sent no length and the manifest no size", OTA_ERR_PROTOCOL,
                    false, now);
    if (total != OTA_HTTP_UNKNOWN) {
        if (total == 0 || total > 0xFFFFFFFFu || (p->size != 0 && total != p->size)) {
            say(p, OTA_LOG_WARN, "the image on the server is not the size the manifest says",
                NULL, 0, NULL);
            return fail(p, "image size", OTA_ERR_PROTOCOL, false, now);
        }
        if (p->size == 0) { /* the manifest gave none: the identity covers the server's */
            p->size = (uint32_t)total;
            if (download_id(p, p->id) != OTA_OK)
                return fail(p, "hashing", OTA_ERR_CRYPTO, false, now);
        }
    }
    if (p->resumed_at == 0) {
        /* remember what identifies this copy for If-Range: a strong ETag, else the
         * date (a weak ETag cannot be used in If-Range) */
        const char *v = ota_http_etag(&p->http);
        if (v[0] == '\0' || (v[0] == 'W' && v[1] == '/'))
            v = ota_http_last_modified(&p->http);
        size_t n = strlen(v);
        if (n < sizeof p->etag)
            memcpy(p->etag, v, n + 1);
        else
            p->etag[0] = '\0';
    }
    p->state = PULL_BEGIN;
    return OTA_ERR_WOULD_BLOCK;
}

static int begin(ota_pull_t *p, uint32_t now)
{
    ota_update_t *u = p->update;
    const ota_manifest_t *m = &p->manifest;
    int rc;
    if (p->resumed_at > 0) {
        rc = ota_update_resume(u, p->size, p->resumed_at, m->has_md5 ? m->md5 : NULL);
        if (rc == OTA_ERR_NO_SLOT || rc == OTA_ERR_UNSUPPORTED) {
            /* the slot no longer holds those bytes: ask for the whole file */
            say(p, OTA_LOG_INFO, "the kept bytes are gone: starting over", NULL, 0, NULL);
            ota_update_abort(u, OTA_UPDATE_HOLDER_PULL, rc);
            (void)ota_update_lock(u, OTA_UPDATE_HOLDER_PULL);
            p->resumed_at = 0;
            http_get(p, p->image_url, 0, NULL, now, &rc);
            if (rc != OTA_OK)
                return fail(p, "cannot fetch the image", rc, false, now);
            p->state = PULL_IMAGE_HEADERS;
            return OTA_ERR_WOULD_BLOCK;
        }
    } else {
        rc = ota_update_begin(u, p->size, m->has_md5 ? m->md5 : NULL, 0);
    }
    if (rc == OTA_ERR_WOULD_BLOCK)
        return rc;
    if (rc != OTA_OK)
        return fail(p, "preparing the slot", rc, false, now);
    if (m->has_sha256 && (rc = ota_update_expect_sha256(u, m->sha256)) != OTA_OK)
        return fail(p, "preparing the slot", rc, false, now);
    p->offset = p->synced = p->resumed_at;
    if (p->resumed_at == 0 && record_store(p, 0) != OTA_OK)
        say(p, OTA_LOG_WARN, "cannot clear the old resume point", NULL, 0, NULL);
    say(p, OTA_LOG_INFO, "downloading ", p->image_url, 0, NULL);
    p->state = p->resumed_at > 0 ? PULL_REPLAY : PULL_BODY;
    return OTA_ERR_WOULD_BLOCK;
}

/* Record a resume point once OTA_CFG_PULL_SYNC_BYTES more are in the slot. */
static void maybe_sync(ota_pull_t *p)
{
    if (p->offset - p->synced < OTA_CFG_PULL_SYNC_BYTES || p->offset >= p->size)
        return;
    int n = ota_update_sync(p->update);
    if (n == OTA_ERR_WOULD_BLOCK || n == OTA_ERR_UNSUPPORTED)
        return; /* later, or this store cannot resume: the download just goes on */
    if (n < 0 || record_store(p, (uint32_t)n) != OTA_OK)
        return; /* not fatal: a resume then starts from the last point */
    p->synced = (uint32_t)n;
}

static int finish(ota_pull_t *p, uint32_t now)
{
    ota_http_close(&p->http);
    int rc = ota_update_finish(p->update);
    if (rc != OTA_OK) /* the bytes are all in but wrong: never resume from them */
        return fail(p, "the downloaded image was refused", rc, false, now);
    ota_update_abort(p->update, OTA_UPDATE_HOLDER_PULL, OTA_OK); /* frees the lock only */
    (void)record_store(p, 0);
    ota_logline_t l;
    ota_logline_begin(&l, "pull");
    ota_logline_str(&l, "release ");
    ota_logline_str(&l, p->manifest.version);
    ota_logline_str(&l, " verified and activated (");
    ota_logline_u32(&l, p->size);
    ota_logline_str(&l, p->resumed_at ? " bytes, resumed); rebooting" : " bytes); rebooting");
    ota_logline_emit(&p->log, OTA_LOG_INFO, &l);
    p->outcome = OTA_PULL_UPDATED;
    p->err = OTA_OK;
    p->state = PULL_DONE;
    p->ports.boot->reboot(p->ports.boot->ctx);
    return OTA_OK;
}

static int body(ota_pull_t *p, uint32_t now)
{
    ota_update_t *u = p->update;
    uint32_t moved = 0;
    while (moved < PULL_POLL_BUDGET) {
        int rc = ota_update_pump(u);
        if (rc == OTA_ERR_WOULD_BLOCK)
            return rc;
        if (rc != OTA_OK)
            return fail(p, "writing the slot", rc, true, now);
        maybe_sync(p);
        if (ota_update_complete(u))
            return finish(p, now);
        uint8_t *buf;
        size_t room = ota_update_room(u, &buf);
        if (room == 0)
            continue; /* pumped above: room comes back */
        int n = ota_http_read(&p->http, buf, room);
        if (n == OTA_ERR_WOULD_BLOCK)
            return n;
        if (n == 0) /* the server's body ended before the image did */
            return fail(p, "the download ended early", OTA_ERR_CLOSED, true, now);
        if (n < 0) {
            say(p, OTA_LOG_WARN, "the download broke off at byte ", NULL, p->offset, "");
            return fail(p, "the download", n, true, now);
        }
        if ((rc = ota_update_received(u, (size_t)n)) != OTA_OK)
            return fail(p, "the download", rc, true, now);
        p->offset += (uint32_t)n;
        moved += (uint32_t)n;
    }
    return OTA_ERR_WOULD_BLOCK;
}

/* ---------------------------------------------------------------- API */

int ota_pull_setup(ota_pull_t *p, const ota_pull_ports_t *ports, ota_update_t *update,
                   const ota_pull_config_t *cfg, uint32_t now_ms)
{
    if (p == NULL || ports == NULL || update == NULL || cfg == NULL || ports->tcp == NULL ||
        ports->crypto == NULL || ports->boot == NULL || ports->boot->load == NULL ||
        ports->boot->store == NULL || ports->boot->reboot == NULL ||
        cfg->manifest_url == NULL || cfg->node_name == NULL || cfg->version == NULL ||
        cfg->chip_family == NULL)
        return OTA_ERR_INVALID_ARG;
#if OTA_CFG_ENABLE_SIGNED
    if (cfg->n_trusted > OTA_SIG_MAX_BLOCKS || (cfg->n_trusted > 0 && cfg->trusted == NULL))
        return OTA_ERR_INVALID_ARG;
#endif
    if (strlen(cfg->manifest_url) >= OTA_CFG_HTTP_URL_MAX)
        return OTA_ERR_TOO_LONG;
    memset(p, 0, sizeof *p);
    int rc = ota_http_init(&p->http, ports->tcp, ports->tls);
    if (rc != OTA_OK)
        return rc;
    p->update = update;
    p->ports = *ports;
    p->cfg = *cfg;
    if (p->cfg.retry_min_ms == 0)
        p->cfg.retry_min_ms = 1000u;
    if (p->cfg.retry_max_ms < p->cfg.retry_min_ms)
        p->cfg.retry_max_ms = p->cfg.retry_min_ms;
    ota_logger_setup(&p->log, ports->log);
    p->backoff_ms = p->cfg.retry_min_ms;
    p->next_ms = now_ms;
    return OTA_OK;
}

void ota_pull_enable(ota_pull_t *p, uint32_t now_ms)
{
    if (p->enabled)
        return;
    p->enabled = true;
    p->next_ms = now_ms;
}

void ota_pull_check_now(ota_pull_t *p)
{
    p->check_requested = true;
}

bool ota_pull_active(const ota_pull_t *p)
{
    return p->state != PULL_IDLE && p->state != PULL_DONE;
}

ota_pull_outcome_t ota_pull_status(const ota_pull_t *p, int *err)
{
    if (err != NULL)
        *err = p->err;
    return (ota_pull_outcome_t)p->outcome;
}

uint32_t ota_pull_next_ms(const ota_pull_t *p, uint32_t now_ms)
{
    if (ota_pull_active(p) || p->check_requested)
        return 0;
    if (!p->enabled || p->state == PULL_DONE)
        return 0xFFFFFFFFu;
    return due(now_ms, p->next_ms) ? 0 : p->next_ms - now_ms;
}

int ota_pull_poll(ota_pull_t *p, uint32_t now_ms)
{
    int rc;
    switch (p->state) {
    case PULL_IDLE:
        if (!p->check_requested && (!p->enabled || !due(now_ms, p->next_ms)))
            return OTA_OK;
        if (ota_update_busy(p->update)) { /* a push is under way: look again soon */
            p->next_ms = now_ms + 1000u;
            return OTA_OK;
        }
        return start_check(p, now_ms);
    case PULL_MANIFEST:
    case PULL_SIG:
        rc = ota_http_poll(&p->http, now_ms);
        if (rc == OTA_ERR_WOULD_BLOCK)
            return rc;
        if (rc != OTA_OK)
            return fail(p, p->state == PULL_SIG ? "fetching the manifest signature"
                                                : "fetching the manifest",
                        rc, false, now_ms);
#if OTA_CFG_ENABLE_SIGNED
        if (p->state == PULL_SIG) {
            rc = ota_http_read_body(&p->http, p->sig, sizeof p->sig, &p->sig_len);
            if (rc == OTA_ERR_WOULD_BLOCK)
                return rc;
            if (rc != OTA_OK)
                return fail(p, "reading the manifest signature", rc, false, now_ms);
            return decide(p, now_ms);
        }
#endif
        rc = ota_http_read_body(&p->http, p->body, sizeof p->body, &p->body_len);
        if (rc == OTA_ERR_WOULD_BLOCK)
            return rc;
        if (rc != OTA_OK)
            return fail(p, "reading the manifest", rc, false, now_ms);
#if OTA_CFG_ENABLE_SIGNED
        if (p->cfg.n_trusted > 0) {
            ota_http_close(&p->http);
            return start_sig(p, now_ms);
        }
#endif
        return decide(p, now_ms);
    case PULL_IMAGE_HEADERS:
        rc = ota_http_poll(&p->http, now_ms);
        if (rc == OTA_ERR_WOULD_BLOCK)
            return rc;
        if (rc != OTA_OK)
            return fail(p, "fetching the image", rc, true, now_ms);
        return image_headers(p, now_ms);
    case PULL_BEGIN:
        if ((rc = ota_http_poll(&p->http, now_ms)) != OTA_OK)
            return fail(p, "fetching the image", rc, true, now_ms);
        return begin(p, now_ms);
    case PULL_REPLAY:
        if ((rc = ota_http_poll(&p->http, now_ms)) != OTA_OK)
            return fail(p, "fetching the image", rc, true, now_ms);
        rc = ota_update_replay(p->update);
        if (rc == OTA_ERR_WOULD_BLOCK)
            return rc;
        if (rc != OTA_OK)
            return fail(p, "reading back the kept bytes", rc, false, now_ms);
        p->state = PULL_BODY;
        return OTA_ERR_WOULD_BLOCK;
    case PULL_BODY:
        if ((rc = ota_http_poll(&p->http, now_ms)) != OTA_OK)
            return fail(p, "the download", rc, true, now_ms);
        return body(p, now_ms);
    case PULL_DONE:
    default:
        return OTA_OK;
    }
}

#endif /* OTA_CFG_ENABLE_PULL && OTA_CFG_ENABLE_HTTP */
