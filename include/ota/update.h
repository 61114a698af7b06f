/*
 * ota/update.h - the one update pipeline every transport feeds (native OTA,
 * ArduinoOTA, and later HTTP pull or a browser upload):
 *
 *     ota_update_lock(u, me)              take the update lock (one update at a time)
 *     ota_update_begin(u, size, md5, f)   prepare the store, start the hash, notify
 *     ota_update_room / _received, or ota_update_write   bytes in (hashed, inflated)
 *     ota_update_pump(u)                  write what is buffered to the store
 *     ota_update_finish(u)                verify, finish the store, activate, notify
 *     ota_update_abort(u, me, err)        give up: the store is discarded, nothing changed
 *
 * It owns the update lock, the streaming MD5, gzip inflation, the image format check
 * (through the store's finish), activation and the firmware's notifications. A
 * transport speaks its protocol and calls only this; none reaches into another.
 * Every call returns at once: OTA_ERR_WOULD_BLOCK means "call again on a later poll".
 */
#ifndef OTA_UPDATE_H
#define OTA_UPDATE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "ota/errors.h"
#include "ota/opts.h"
#include "ota/port.h"
#if OTA_CFG_ENABLE_SIGNED
#include "ota/app_desc.h"
#include "ota/signature.h"
#endif

/** What the firmware is told about an update (e.g. to pause other work, or show
 *  progress). */
typedef enum ota_state {
    OTA_STATE_STARTED = 0,     /**< a peer took the update lock; slot prepared */
    OTA_STATE_IN_PROGRESS = 1, /**< bytes arrived (received/total are set) */
    OTA_STATE_COMPLETED = 2,   /**< image verified and activated; reboot follows */
    OTA_STATE_ERROR = 3        /**< the update failed (err is set); nothing changed */
} ota_state_t;

typedef void (*ota_state_cb_t)(void *arg, ota_state_t state, uint32_t received, uint32_t total,
                               int err);

/** Lock holders: each transport has its own numbers, so none can release
 *  another's update. */
#define OTA_UPDATE_NOBODY (-1)          /**< the lock is free */
#define OTA_UPDATE_HOLDER_NATIVE(i) (i) /**< native OTA session i (< 256) */
#define OTA_UPDATE_HOLDER_ARDUINO 256   /**< the ArduinoOTA exchange */
#define OTA_UPDATE_HOLDER_PULL 257      /**< the pull client (ota/pull.h) */

/** ota_update_begin flags. */
#define OTA_UPDATE_F_DATA 0x01u /**< a data (filesystem) image: goes to the data store */
#define OTA_UPDATE_F_GZIP                                                                          \
    0x02u /**< the peer may send gzip: inflate it when the first                                   \
               bytes are the gzip magic */

/** The pipeline and the single update in progress. Treat as opaque. */
typedef struct ota_update {
    const ota_store_port_t *slot;       /* required: the inactive firmware slot */
    const ota_store_port_t *data_store; /* optional: the data slot */
    const ota_crypto_port_t *crypto;    /* required: MD5 */
    const ota_inflate_port_t *inflate;  /* optional: gzip */
    ota_state_cb_t on_state;
    void *on_state_arg;
#if OTA_CFG_ENABLE_SIGNED
    const ota_sig_trusted_t *trusted; /* signed images required when n_trusted > 0 */
    size_t n_trusted;
    const ota_boot_port_t *boot; /* anti-rollback: its record's min_secure_version */
#endif

    int holder;      /* who holds the lock (the transport's number), or NOBODY */
    bool activated;  /* an image was completed: refuse further updates */
    uint8_t flags;   /* of the update in progress */
    bool started;    /* the store was begun (so an abort notifies the firmware) */
    bool store_open; /* the store needs an abort if the update fails */
    bool has_md5;    /* md5[] is the announced digest */
    bool decided;    /* raw or gzip is known (first two bytes seen) */
    bool compressed;
    bool inflating; /* inflate->begin was called */
    bool inflate_done;
    uint32_t size;     /* bytes announced on the wire */
    uint32_t received; /* bytes received so far */
    uint32_t written;  /* bytes written to the store (inflated when compressed) */
    uint32_t reported; /* received at the last progress notification */
    uint32_t data_len; /* bytes of data[] not yet written */
    uint32_t data_off;
    uint8_t md5[16];
    ota_hash_ctx_t md5_ctx;
    uint8_t data[OTA_CFG_DATA_BUF_SIZE];
#if OTA_CFG_ENABLE_PULL
    bool has_sha256;      /* sha256[] is the announced whole-image SHA-256 */
    uint32_t replay_end;  /* a resumed image: bytes to read back and hash first */
    uint8_t sha256[32];
    ota_hash_ctx_t sha_ctx;
#endif
#if OTA_CFG_ENABLE_COMPRESSION
    uint32_t out_len, out_off;
    uint8_t out[OTA_CFG_INFLATE_BUF_SIZE];
#endif
#if OTA_CFG_ENABLE_SIGNED
    /* The image as written (inflated) streams through sig_tail: what leaves it is
     * hashed, so at the end sig_sha is the SHA-256 of all but the last 4096 bytes and
     * sig_tail holds those, the signature sector (ota/signature.h). */
    ota_hash_ctx_t sig_sha;
    uint32_t sig_tail_len; /* bytes in sig_tail (up to its size) */
    uint32_t sig_tail_pos; /* where the oldest byte is, once it is full */
    int sig_result;        /* of the last check: 0, or why the image was refused */
    uint8_t sig_tail[OTA_SIG_SECTOR_SIZE];
    ota_app_desc_scan_t desc; /* the image descriptor, as it streams by */
#endif
} ota_update_t;

/** Bind the pipeline to its tables (slot and crypto required; data and inflate may
 *  be NULL) and the firmware's callback (may be NULL). The tables are borrowed.
 *  \return 0, OTA_ERR_INVALID_ARG (a required table or function missing). */
int ota_update_setup(ota_update_t *u, const ota_store_port_t *slot, const ota_store_port_t *data,
                     const ota_crypto_port_t *crypto, const ota_inflate_port_t *inflate,
                     ota_state_cb_t on_state, void *on_state_arg);

#if OTA_CFG_ENABLE_SIGNED
/** Require signed firmware images (ota/signature.h): from the next update on, a
 *  firmware image is activated only when its signature sector has a valid block by
 *  one of trusted[0..n) (1 to 3 keys, borrowed); data images are not signed. The
 *  check streams: the image is hashed as it is written and the last 4096 bytes are
 *  kept, so nothing is read back. n = 0 stops requiring signatures.
 *  \return 0, OTA_ERR_INVALID_ARG (more than 3 keys, NULL keys). */
int ota_update_require_signed(ota_update_t *u, const ota_sig_trusted_t *trusted, size_t n);
/** Anti-rollback (ota/app_desc.h): a firmware image whose descriptor's secure_version
 *  is below the boot record's min_secure_version is refused at finish with
 *  OTA_ERR_ROLLBACK (as is one without a descriptor once the minimum is above 0).
 *  boot NULL: off. */
void ota_update_check_secure_version(ota_update_t *u, const ota_boot_port_t *boot);
/** The secure_version of the image in progress, once its descriptor went by.
 *  \return true when found. */
bool ota_update_secure_version(const ota_update_t *u, uint32_t *secure_version);

/** Why the last signature check refused the image (0: it passed or did not run). */
int ota_update_signature_result(const ota_update_t *u);
#endif

/** true when data images can be taken (a complete data table). */
bool ota_update_has_data_store(const ota_update_t *u);
/** true when gzip uploads can be inflated (an inflate table, compiled in). */
bool ota_update_can_inflate(const ota_update_t *u);

/** Take the lock for holder (a number >= 0 the transport picks).
 *  \return 0, OTA_ERR_BUSY (someone holds it, or an image was already completed). */
int ota_update_lock(ota_update_t *u, int holder);
/** true when holder holds the lock. */
bool ota_update_held_by(const ota_update_t *u, int holder);
/** true while anyone holds the lock or a completed image waits for the reboot. */
bool ota_update_busy(const ota_update_t *u);

/** With the lock held: prepare the store for size bytes (as on the wire), start the
 *  MD5, notify STARTED. md5 (16 bytes) is the digest to check at finish, or NULL
 *  (set it later with ota_update_expect_md5, or none is checked); flags
 *  OTA_UPDATE_F_*. \return 0, OTA_ERR_WOULD_BLOCK (the store is still erasing: call
 *  again), OTA_ERR_INVALID_ARG (size 0, no lock, no data store), the store's error,
 *  OTA_ERR_CRYPTO. */
int ota_update_begin(ota_update_t *u, uint32_t size, const uint8_t *md5, unsigned flags);
/** The digest the whole image (as on the wire) must have. */
void ota_update_expect_md5(ota_update_t *u, const uint8_t md5[16]);

#if OTA_CFG_ENABLE_PULL
/** Also check the SHA-256 of the whole image (as on the wire) at finish. Call right
 *  after ota_update_begin / ota_update_resume, before any byte.
 *  \return 0, OTA_ERR_INVALID_ARG (bytes already in), OTA_ERR_CRYPTO. */
int ota_update_expect_sha256(ota_update_t *u, const uint8_t sha256[32]);

/** Like ota_update_begin, for an image whose first offset bytes an earlier,
 *  suspended attempt left in the store (perhaps before a reboot): the store keeps
 *  them (its resume hook), and ota_update_replay() reads them back through the
 *  hashes and the signature check before new bytes are taken. Raw images only (no
 *  gzip). \return 0, OTA_ERR_WOULD_BLOCK, OTA_ERR_UNSUPPORTED (the store cannot
 *  resume), OTA_ERR_NO_SLOT (nothing to resume: begin afresh), the store's error. */
int ota_update_resume(ota_update_t *u, uint32_t size, uint32_t offset, const uint8_t *md5);

/** After ota_update_resume: read back and hash the kept bytes, one buffer per call.
 *  \return 0 (all replayed: new bytes may come), OTA_ERR_WOULD_BLOCK (call again),
 *  OTA_ERR_IO / OTA_ERR_CRYPTO. */
int ota_update_replay(ota_update_t *u);

/** Make every byte taken so far durable in the store (pump first).
 *  \return the durable length (bytes as on the wire), OTA_ERR_WOULD_BLOCK (bytes
 *  still buffered: pump), OTA_ERR_UNSUPPORTED (no sync hook), OTA_ERR_WRITE. */
int ota_update_sync(ota_update_t *u);

/** Give the lock back but keep what the store holds, for ota_update_resume later
 *  (a download that lost its connection). Notifies ERROR with err like an abort. */
void ota_update_suspend(ota_update_t *u, int holder, int err);
#endif

/** Where the next bytes may be received without a copy, and how many (0: pump
 *  first, or everything announced is in). */
size_t ota_update_room(ota_update_t *u, uint8_t **buf);
/** n bytes were placed at the room: hash them, count them, notify progress.
 *  \return 0, OTA_ERR_CRYPTO, OTA_ERR_INFLATE (cannot start inflating),
 *  OTA_ERR_INVALID_ARG (more than the room offered). */
int ota_update_received(ota_update_t *u, size_t n);
/** Copy up to len bytes in (as room + received). \return the bytes taken (0: pump
 *  first), or a negative error of ota_update_received. */
int ota_update_write(ota_update_t *u, const uint8_t *bytes, size_t len);
/** Write what is buffered to the store (inflating first when gzip).
 *  \return 0 (all written), OTA_ERR_WOULD_BLOCK, OTA_ERR_INFLATE (corrupt gzip),
 *  the store's write error. */
int ota_update_pump(ota_update_t *u);
/** true once every announced byte was received and written. */
bool ota_update_complete(const ota_update_t *u);

/** Every byte is in and written: check the MD5 and the end of a gzip stream, finish
 *  the store (format check), activate the slot (a data image is live after finish),
 *  notify COMPLETED. From then on the lock refuses every newcomer until the reboot.
 *  With signed images required, the signature is checked after the MD5 and before
 *  the store's finish: OTA_ERR_NOT_SIGNED, OTA_ERR_UNTRUSTED_KEY, OTA_ERR_BAD_SIGNATURE
 *  or OTA_ERR_UNSUPPORTED (a scheme the crypto table cannot verify) refuse it.
 *  \return 0, OTA_ERR_MD5_MISMATCH, OTA_ERR_INFLATE (gzip ended early),
 *  OTA_ERR_BAD_IMAGE, OTA_ERR_WRITE, OTA_ERR_ACTIVATE, OTA_ERR_CRYPTO. On failure the
 *  update still holds the lock: the transport answers its peer, then aborts. */
int ota_update_finish(ota_update_t *u);

/** If holder holds the lock: discard the unfinished image (the running firmware and
 *  the boot state are untouched), notify ERROR with err if the store was begun, free
 *  the lock. After a successful finish it only frees the lock. */
void ota_update_abort(ota_update_t *u, int holder, int err);

#endif /* OTA_UPDATE_H */
