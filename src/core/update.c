/*
 * update.c - the update pipeline (ota/update.h): lock, streaming MD5, gzip
 * inflation, store writes, verification, activation and notifications, for every
 * transport alike.
 */
#include "ota/update.h"

#include <string.h>

#include "ota/util.h"

#define CHUNK 8192u /* progress is notified at least every this many bytes */

int ota_update_setup(ota_update_t *u, const ota_store_port_t *slot, const ota_store_port_t *data,
                     const ota_crypto_port_t *crypto, const ota_inflate_port_t *inflate,
                     ota_state_cb_t on_state, void *on_state_arg)
{
    if (u == NULL || slot == NULL || crypto == NULL)
        return OTA_ERR_INVALID_ARG;
    if (slot->begin == NULL || slot->write == NULL || slot->finish == NULL ||
        slot->activate == NULL || slot->abort == NULL || crypto->hash_start == NULL ||
        crypto->hash_update == NULL || crypto->hash_finish == NULL)
        return OTA_ERR_INVALID_ARG;
    /* a data store is all or nothing (activate is not used: finish makes it live) */
    if (data != NULL &&
        (data->begin == NULL || data->write == NULL || data->finish == NULL || data->abort == NULL))
        return OTA_ERR_INVALID_ARG;
    if (inflate != NULL && (inflate->begin == NULL || inflate->run == NULL || inflate->end == NULL))
        return OTA_ERR_INVALID_ARG;
    memset(u, 0, sizeof *u);
    u->slot = slot;
    u->data_store = data;
    u->crypto = crypto;
    u->inflate = inflate;
    u->on_state = on_state;
    u->on_state_arg = on_state_arg;
    u->holder = OTA_UPDATE_NOBODY;
    return OTA_OK;
}

#if OTA_CFG_ENABLE_SIGNED
int ota_update_require_signed(ota_update_t *u, const ota_sig_trusted_t *trusted, size_t n)
{
    if (n > OTA_SIG_MAX_BLOCKS || (n > 0 && trusted == NULL))
        return OTA_ERR_INVALID_ARG;
    u->trusted = n ? trusted : NULL;
    u->n_trusted = n;
    return OTA_OK;
}

int ota_update_signature_result(const ota_update_t *u)
{
    return u->sig_result;
}

void ota_update_check_secure_version(ota_update_t *u, const ota_boot_port_t *boot)
{
    u->boot = boot != NULL && boot->load != NULL ? boot : NULL;
}

bool ota_update_secure_version(const ota_update_t *u, uint32_t *secure_version)
{
    return ota_app_desc_scan_result(&u->desc, secure_version, NULL);
}

/* The image is in: is its security version at least the node's minimum? */
static int rollback_check(ota_update_t *u)
{
    ota_boot_record_t rec;
    memset(&rec, 0, sizeof rec);
    if (u->boot->load(u->boot->ctx, &rec) != OTA_OK || rec.min_secure_version == 0)
        return OTA_OK;
    uint32_t sv = 0;
    if (!ota_app_desc_scan_result(&u->desc, &sv, NULL) || sv < rec.min_secure_version)
        return OTA_ERR_ROLLBACK;
    return OTA_OK;
}

static bool signing(const ota_update_t *u)
{
    return u->n_trusted > 0 && !(u->flags & OTA_UPDATE_F_DATA);
}

/* The bytes just written go through the tail: what it pushes out is hashed. */
static int sig_feed(ota_update_t *u, const uint8_t *p, size_t len)
{
    const ota_crypto_port_t *c = u->crypto;
    const uint32_t cap = OTA_SIG_SECTOR_SIZE;
    while (len > 0) {
        if (u->sig_tail_len < cap) { /* filling: nothing leaves yet */
            size_t n = cap - u->sig_tail_len;
            if (n > len)
                n = len;
            memcpy(u->sig_tail + u->sig_tail_len, p, n);
            u->sig_tail_len += (uint32_t)n;
            p += n;
            len -= n;
            continue;
        }
        /* full: the oldest bytes leave for the hash, the new ones take their place */
        size_t n = cap - u->sig_tail_pos;
        if (n > len)
            n = len;
        if (c->hash_update(c->ctx, &u->sig_sha, u->sig_tail + u->sig_tail_pos, n) != OTA_OK)
            return OTA_ERR_CRYPTO;
        /* the descriptor counts only inside the signed bytes: the sector's unsigned
         * parts (absent blocks, padding) must not be able to carry one */
        ota_app_desc_scan_feed(&u->desc, u->sig_tail + u->sig_tail_pos, n);
        memcpy(u->sig_tail + u->sig_tail_pos, p, n);
        u->sig_tail_pos = (uint32_t)((u->sig_tail_pos + n) % cap);
        p += n;
        len -= n;
    }
    return OTA_OK;
}

static void reverse(uint8_t *p, size_t n)
{
    for (size_t i = 0, j = n; i + 1 < j; i++, j--) {
        uint8_t t = p[i];
        p[i] = p[j - 1];
        p[j - 1] = t;
    }
}

/* The whole image is in: is it signed by a trusted key? */
static int sig_check(ota_update_t *u)
{
    const ota_crypto_port_t *c = u->crypto;
    uint32_t image_len = 0;
    if (u->sig_tail_len < OTA_SIG_SECTOR_SIZE || ota_sig_split(u->written, &image_len) != OTA_OK)
        return OTA_ERR_NOT_SIGNED; /* too short, or not a multiple of 4096 */
    /* the ring in order, the oldest byte first: rotate left by pos (three reversals) */
    uint8_t *t = u->sig_tail;
    uint32_t pos = u->sig_tail_pos;
    reverse(t, pos);
    reverse(t + pos, OTA_SIG_SECTOR_SIZE - pos);
    reverse(t, OTA_SIG_SECTOR_SIZE);
    u->sig_tail_pos = 0;
    uint8_t digest[OTA_SIG_DIGEST_LEN];
    if (c->hash_finish(c->ctx, &u->sig_sha, digest) != OTA_OK)
        return OTA_ERR_CRYPTO;
    int rc = ota_sig_verify_sector(c, t, OTA_SIG_SECTOR_SIZE, digest, u->trusted, u->n_trusted,
                                   NULL);
    /* only blocks of a scheme this node cannot check: as good as no trusted one */
    return rc == OTA_ERR_UNSUPPORTED ? OTA_ERR_UNTRUSTED_KEY : rc;
}
#endif

/* Write to the store; the signature check sees what was written. */
static const ota_store_port_t *store(const ota_update_t *u);
static int account_written(ota_update_t *u, const uint8_t *p, size_t len);

static int store_write(ota_update_t *u, const uint8_t *p, size_t len)
{
    const ota_store_port_t *st = store(u);
    int rc = st->write(st->ctx, u->written, p, len);
    if (rc != OTA_OK)
        return rc;
    return account_written(u, p, len);
}

/* Bytes that are in the store (just written, or kept by a resume): the signature
 * check and the descriptor scanner see them, and they count as written. */
static int account_written(ota_update_t *u, const uint8_t *p, size_t len)
{
#if OTA_CFG_ENABLE_SIGNED
    int rc;
    if (signing(u)) {
        if ((rc = sig_feed(u, p, len)) != OTA_OK)
            return rc;
    } else if (!(u->flags & OTA_UPDATE_F_DATA)) {
        ota_app_desc_scan_feed(&u->desc, p, len);
    }
#else
    (void)p;
#endif
    u->written += (uint32_t)len;
    return OTA_OK;
}

bool ota_update_has_data_store(const ota_update_t *u)
{
    return u->data_store != NULL;
}

bool ota_update_can_inflate(const ota_update_t *u)
{
#if OTA_CFG_ENABLE_COMPRESSION
    return u->inflate != NULL;
#else
    (void)u;
    return false;
#endif
}

static void notify(ota_update_t *u, ota_state_t st, int err)
{
    if (u->on_state != NULL)
        u->on_state(u->on_state_arg, st, u->received, u->size, err);
}

static const ota_store_port_t *store(const ota_update_t *u)
{
    return (u->flags & OTA_UPDATE_F_DATA) ? u->data_store : u->slot;
}

int ota_update_lock(ota_update_t *u, int holder)
{
    if (u->holder != OTA_UPDATE_NOBODY || u->activated || holder < 0)
        return OTA_ERR_BUSY;
    /* a fresh update: everything but the bindings and the lock starts from zero */
    size_t from = offsetof(ota_update_t, holder);
    memset((uint8_t *)u + from, 0, sizeof *u - from);
    u->holder = holder;
    return OTA_OK;
}

bool ota_update_held_by(const ota_update_t *u, int holder)
{
    return holder >= 0 && u->holder == holder;
}

bool ota_update_busy(const ota_update_t *u)
{
    return u->holder != OTA_UPDATE_NOBODY || u->activated;
}

/* The store is ready: start the hashes, notify STARTED. */
static int started(ota_update_t *u, const uint8_t *md5)
{
    u->started = true;
    if (u->crypto->hash_start(u->crypto->ctx, &u->md5_ctx, OTA_HASH_MD5) != OTA_OK)
        return OTA_ERR_CRYPTO;
#if OTA_CFG_ENABLE_SIGNED
    if (signing(u) &&
        u->crypto->hash_start(u->crypto->ctx, &u->sig_sha, OTA_HASH_SHA256) != OTA_OK)
        return OTA_ERR_CRYPTO;
#endif
    if (md5 != NULL)
        ota_update_expect_md5(u, md5);
    notify(u, OTA_STATE_STARTED, OTA_OK);
    return OTA_OK;
}

int ota_update_begin(ota_update_t *u, uint32_t size, const uint8_t *md5, unsigned flags)
{
    if (u->holder == OTA_UPDATE_NOBODY || size == 0 || u->started)
        return OTA_ERR_INVALID_ARG;
    if ((flags & OTA_UPDATE_F_DATA) && u->data_store == NULL)
        return OTA_ERR_INVALID_ARG;
    u->flags = (uint8_t)flags;
    u->size = size;
    const ota_store_port_t *st = store(u);
    /* from the first call on the store may hold something (an erase under way after
     * WOULD_BLOCK, a half-prepared slot after an error): an abort cleans it up */
    u->store_open = true;
    int rc = st->begin(st->ctx, size);
    if (rc != OTA_OK)
        return rc; /* WOULD_BLOCK: call again; else the transport aborts */
    return started(u, md5);
}

void ota_update_expect_md5(ota_update_t *u, const uint8_t md5[16])
{
    memcpy(u->md5, md5, sizeof u->md5);
    u->has_md5 = true;
}

size_t ota_update_room(ota_update_t *u, uint8_t **buf)
{
    /* bytes go in only behind what is buffered, and only while it starts at 0 */
    *buf = u->data;
    if (u->data_off != 0 || !u->started)
        return 0;
#if OTA_CFG_ENABLE_PULL
    if (u->received < u->replay_end)
        return 0; /* the kept bytes are read back first */
#endif
    size_t room = sizeof u->data - u->data_len;
    uint32_t want = u->size - u->received;
    if (room > want)
        room = want;
    *buf = u->data + u->data_len;
    return room;
}

static void report_progress(ota_update_t *u)
{
    uint32_t step = u->size / 100u;
    if (step < CHUNK)
        step = CHUNK;
    if (u->received - u->reported >= step || u->received == u->size) {
        u->reported = u->received;
        notify(u, OTA_STATE_IN_PROGRESS, OTA_OK);
    }
}

/* The digests of the bytes as on the wire. */
static int wire_hash(ota_update_t *u, const uint8_t *p, size_t n)
{
    const ota_crypto_port_t *c = u->crypto;
    if (c->hash_update(c->ctx, &u->md5_ctx, p, n) != OTA_OK)
        return OTA_ERR_CRYPTO;
#if OTA_CFG_ENABLE_PULL
    if (u->has_sha256 && c->hash_update(c->ctx, &u->sha_ctx, p, n) != OTA_OK)
        return OTA_ERR_CRYPTO;
#endif
    return OTA_OK;
}

int ota_update_received(ota_update_t *u, size_t n)
{
    if (n == 0)
        return OTA_OK;
    if (!u->started || u->data_off != 0 || n > sizeof u->data - u->data_len ||
        n > u->size - u->received)
        return OTA_ERR_INVALID_ARG; /* more than ota_update_room() offered */
    if (wire_hash(u, u->data + u->data_len, n) != OTA_OK)
        return OTA_ERR_CRYPTO;
    u->data_len += (uint32_t)n;
    u->received += (uint32_t)n;
    report_progress(u);
    /* gzip or raw is told by the first two bytes (RFC 1952 magic 1f 8b) */
    bool maybe_gzip = (u->flags & OTA_UPDATE_F_GZIP) && ota_update_can_inflate(u);
    if (!u->decided && (!maybe_gzip || u->data_len >= 2 || u->received == u->size)) {
        u->decided = true;
        if (maybe_gzip && u->data_len >= 2 && u->data[0] == 0x1f && u->data[1] == 0x8b) {
#if OTA_CFG_ENABLE_COMPRESSION
            if (u->inflate->begin(u->inflate->ctx) != OTA_OK)
                return OTA_ERR_INFLATE;
            u->compressed = true;
            u->inflating = true;
#endif
        }
    }
    return OTA_OK;
}

int ota_update_write(ota_update_t *u, const uint8_t *bytes, size_t len)
{
    uint8_t *buf;
    size_t room = ota_update_room(u, &buf);
    if (len > room)
        len = room;
    memcpy(buf, bytes, len);
    int rc = ota_update_received(u, len);
    return rc != OTA_OK ? rc : (int)len;
}

int ota_update_pump(ota_update_t *u)
{
    if (!u->decided)
        return OTA_OK; /* the first byte alone: raw or gzip is not known yet */
    if (!u->compressed) {
        if (u->data_len == 0)
            return OTA_OK;
        int rc = store_write(u, u->data + u->data_off, u->data_len);
        if (rc != OTA_OK)
            return rc;
        u->data_off = u->data_len = 0;
        return OTA_OK;
    }
#if OTA_CFG_ENABLE_COMPRESSION
    const ota_inflate_port_t *inf = u->inflate;
    for (;;) {
        if (u->out_len > 0) {
            int rc = store_write(u, u->out + u->out_off, u->out_len);
            if (rc != OTA_OK)
                return rc;
            bool was_full = u->out_off + u->out_len == sizeof u->out;
            u->out_off = u->out_len = 0;
            /* a full output buffer may leave more output inside the inflater */
            if (was_full && !u->inflate_done && u->data_len == 0) {
                size_t used = 0, made = 0;
                bool done = false;
                int irc =
                    inf->run(inf->ctx, u->data, 0, &used, u->out, sizeof u->out, &made, &done);
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
        int rc = inf->run(inf->ctx, u->data + u->data_off, u->data_len, &used, u->out,
                          sizeof u->out, &made, &done);
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

bool ota_update_complete(const ota_update_t *u)
{
    bool buffered = u->data_len > 0;
#if OTA_CFG_ENABLE_COMPRESSION
    buffered = buffered || u->out_len > 0;
#endif
    return u->started && u->received == u->size && !buffered;
}

int ota_update_finish(ota_update_t *u)
{
    if (!ota_update_complete(u))
        return OTA_ERR_INVALID_ARG;
    int rc;
    uint8_t digest[16];
    if (u->crypto->hash_finish(u->crypto->ctx, &u->md5_ctx, digest) != OTA_OK)
        return OTA_ERR_CRYPTO;
    if (u->has_md5 && !ota_ct_equal(digest, u->md5, sizeof digest))
        return OTA_ERR_MD5_MISMATCH;
#if OTA_CFG_ENABLE_PULL
    if (u->has_sha256) {
        uint8_t sha[32];
        if (u->crypto->hash_finish(u->crypto->ctx, &u->sha_ctx, sha) != OTA_OK)
            return OTA_ERR_CRYPTO;
        u->has_sha256 = false; /* the context is spent */
        if (!ota_ct_equal(sha, u->sha256, sizeof sha))
            return OTA_ERR_SHA256_MISMATCH;
    }
#endif
#if OTA_CFG_ENABLE_COMPRESSION
    if (u->compressed) {
        if (!u->inflate_done)
            return OTA_ERR_INFLATE;
        u->inflate->end(u->inflate->ctx);
        u->inflating = false;
    }
#endif
#if OTA_CFG_ENABLE_SIGNED
    if (signing(u) && (u->sig_result = sig_check(u)) != OTA_OK)
        return u->sig_result;
    if (u->boot != NULL && !(u->flags & OTA_UPDATE_F_DATA) && (rc = rollback_check(u)) != OTA_OK)
        return rc;
#endif
    const ota_store_port_t *st = store(u);
    rc = st->finish(st->ctx, u->written);
    if (rc != OTA_OK)
        return rc == OTA_ERR_BAD_IMAGE ? rc : OTA_ERR_WRITE;
    if (!(u->flags & OTA_UPDATE_F_DATA) && st->activate(st->ctx) != OTA_OK)
        return OTA_ERR_ACTIVATE;
    u->store_open = false; /* complete: nothing to abort any more */
    u->activated = true;
    notify(u, OTA_STATE_COMPLETED, OTA_OK);
    return OTA_OK;
}

/* Give up the update in progress; keep_store leaves the store's bytes for a resume. */
static void release(ota_update_t *u, int holder, int err, bool keep_store)
{
    if (!ota_update_held_by(u, holder))
        return;
#if OTA_CFG_ENABLE_COMPRESSION
    if (u->inflating)
        u->inflate->end(u->inflate->ctx);
#endif
    bool failed = u->started && u->store_open; /* begun and not completed */
    if (u->store_open && !keep_store) {
        const ota_store_port_t *st = store(u);
        st->abort(st->ctx);
    }
    u->inflating = false;
    u->store_open = false;
    u->holder = OTA_UPDATE_NOBODY;
    ota_wipe(&u->md5_ctx, sizeof u->md5_ctx);
#if OTA_CFG_ENABLE_SIGNED
    ota_wipe(&u->sig_sha, sizeof u->sig_sha);
#endif
#if OTA_CFG_ENABLE_PULL
    ota_wipe(&u->sha_ctx, sizeof u->sha_ctx);
#endif
    if (failed)
        notify(u, OTA_STATE_ERROR, err);
}

void ota_update_abort(ota_update_t *u, int holder, int err)
{
    release(u, holder, err, false);
}

#if OTA_CFG_ENABLE_PULL
void ota_update_suspend(ota_update_t *u, int holder, int err)
{
    release(u, holder, err, true);
}

int ota_update_expect_sha256(ota_update_t *u, const uint8_t sha256[32])
{
    if (!u->started || u->received != 0)
        return OTA_ERR_INVALID_ARG;
    if (u->crypto->hash_start(u->crypto->ctx, &u->sha_ctx, OTA_HASH_SHA256) != OTA_OK)
        return OTA_ERR_CRYPTO;
    memcpy(u->sha256, sha256, sizeof u->sha256);
    u->has_sha256 = true;
    return OTA_OK;
}

int ota_update_resume(ota_update_t *u, uint32_t size, uint32_t offset, const uint8_t *md5)
{
    if (u->holder == OTA_UPDATE_NOBODY || size == 0 || offset > size || u->started)
        return OTA_ERR_INVALID_ARG;
    const ota_store_port_t *st = u->slot;
    if (st->resume == NULL || st->read == NULL)
        return OTA_ERR_UNSUPPORTED;
    u->flags = 0; /* a firmware image, raw: an inflater's state cannot be replayed */
    u->size = size;
    u->store_open = true;
    int rc = st->resume(st->ctx, size, offset);
    if (rc != OTA_OK)
        return rc;
    u->decided = true;
    u->replay_end = offset;
    return started(u, md5);
}

int ota_update_replay(ota_update_t *u)
{
    if (!u->started)
        return OTA_ERR_INVALID_ARG;
    if (u->received >= u->replay_end)
        return OTA_OK;
    const ota_store_port_t *st = u->slot;
    size_t n = sizeof u->data;
    if (n > u->replay_end - u->received)
        n = u->replay_end - u->received;
    int got = st->read(st->ctx, u->received, u->data, n);
    if (got < 0)
        return got == OTA_ERR_WOULD_BLOCK ? got : OTA_ERR_IO;
    if (got == 0 || (size_t)got > n)
        return OTA_ERR_IO;
    int rc = wire_hash(u, u->data, (size_t)got);
    if (rc == OTA_OK)
        rc = account_written(u, u->data, (size_t)got);
    if (rc != OTA_OK)
        return rc;
    u->received += (uint32_t)got;
    report_progress(u);
    return u->received >= u->replay_end ? OTA_OK : OTA_ERR_WOULD_BLOCK;
}

int ota_update_sync(ota_update_t *u)
{
    const ota_store_port_t *st = store(u);
    if (!u->started)
        return OTA_ERR_INVALID_ARG;
    if (st->sync == NULL)
        return OTA_ERR_UNSUPPORTED;
    if (u->data_len > 0 || u->compressed)
        return u->compressed ? OTA_ERR_UNSUPPORTED : OTA_ERR_WOULD_BLOCK;
    if (st->sync(st->ctx) != OTA_OK)
        return OTA_ERR_WRITE;
    return (int)u->written;
}
#endif
