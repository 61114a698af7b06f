/*
 * ota/pull.h - pull updates: the node fetches a manifest (ota/manifest.h) from a web
 * server, decides whether the release is for it, downloads the image with the HTTP
 * client (ota/http.h) into the same update pipeline as every push (ota/update.h),
 * and reboots into it. docs/pull.md describes the behaviour; docs/protocol.md §8 the
 * manifest.
 *
 *     ota_pull_setup(p, &ports, &server.update, &cfg, now)
 *     ota_pull_enable(p, now)      once the running image is confirmed good: the
 *                                  first check runs at once, then every interval
 *     ota_pull_poll(p, now)        every loop; never blocks
 *     ota_pull_check_now(p)        a check on request (the native "pull now" command)
 *
 * A check: GET the manifest (and manifest.json.sig when the node trusts keys), parse
 * it for the node's chip family, ota_manifest_should_take(). A download: the update
 * lock (OTA_UPDATE_HOLDER_PULL: a push meanwhile gets "busy"), GET the image, size,
 * MD5, SHA-256 and the signature checked by the pipeline before anything is
 * activated. Every OTA_CFG_PULL_SYNC_BYTES the slot is synced and the resume point
 * (offset, the download's identity, the ETag) goes to the boot record; after a lost
 * connection or a power cut the next attempt asks for the rest (Range + If-Range)
 * and starts over only when the server sends the whole file (200) or the file is
 * another. A failed attempt is retried after retry_min_ms, doubling up to
 * retry_max_ms; then the normal interval (with jitter) takes over.
 *
 * Compiled with OTA_CFG_ENABLE_PULL and OTA_CFG_ENABLE_HTTP.
 */
#ifndef OTA_PULL_H
#define OTA_PULL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "ota/errors.h"
#include "ota/opts.h"
#include "ota/port.h"

#if OTA_CFG_ENABLE_PULL && OTA_CFG_ENABLE_HTTP

#include "ota/http.h"
#include "ota/log.h"
#include "ota/manifest.h"
#include "ota/update.h"
#if OTA_CFG_ENABLE_SIGNED
#include "ota/signature.h"
#endif

typedef struct ota_pull_config {
    const char *manifest_url; /**< http(s)://.../manifest.json (required) */
    const char *node_name;    /**< the rollout bucket's input (required) */
    const char *version;      /**< the running firmware's version (required) */
    const char *chip_family;  /**< e.g. OTA_MANIFEST_FAMILY_POSIX (required) */
    uint32_t interval_ms;     /**< between checks; default 6 h (ESPHome's update_interval) */
    uint8_t jitter_pct;       /**< each interval is drawn from +-jitter_pct %; default 10 */
    uint32_t retry_min_ms;    /**< first retry after a failed attempt; default 5 s */
    uint32_t retry_max_ms;    /**< the back-off stops growing here; default 5 min */
    uint8_t max_retries;      /**< failed attempts in a row before waiting an interval; 8 */
    const char *user_agent;   /**< NULL: "ota-pull" */
#if OTA_CFG_ENABLE_SIGNED
    /** Trusted keys (1-3): the manifest must carry a valid manifest.json.sig by one of
     *  them, and the image is checked by the pipeline's require_signed (the firmware
     *  sets that on the pipeline; the pull only fetches and checks the manifest's). */
    const ota_sig_trusted_t *trusted;
    size_t n_trusted;
#endif
} ota_pull_config_t;

/** Defaults for every field but the four required strings (NULL). */
void ota_pull_config_default(ota_pull_config_t *cfg);

typedef struct ota_pull_ports {
    const ota_tcp_port_t *tcp;       /**< required (connect_host for host names) */
    const ota_tls_port_t *tls;       /**< NULL: no https */
    const ota_crypto_port_t *crypto; /**< required: SHA-256, random (jitter) */
    const ota_boot_port_t *boot;     /**< required: the resume point, the minimum, reboot */
    const ota_log_port_t *log;       /**< optional */
} ota_pull_ports_t;

/** What the last check or download came to (ota_pull_status()). */
typedef enum ota_pull_outcome {
    OTA_PULL_NONE = 0,      /**< nothing checked yet */
    OTA_PULL_UP_TO_DATE,    /**< the manifest's release is not for this node (see decision) */
    OTA_PULL_UPDATED,       /**< an image was activated; the reboot follows */
    OTA_PULL_FAILED,        /**< the check or the download failed (see err) */
    OTA_PULL_DOWNLOADING    /**< under way */
} ota_pull_outcome_t;

typedef struct ota_pull {
    ota_http_t http;
    ota_update_t *update;
    ota_pull_ports_t ports;
    ota_pull_config_t cfg;
    ota_logger_t log;

    uint8_t state;        /* PULL_* (pull.c) */
    bool enabled;
    bool check_requested;
    uint8_t failures;     /* failed attempts in a row */
    uint32_t next_ms;     /* when the next check is due (enabled, IDLE) */
    uint32_t backoff_ms;
    int err;              /* why the last attempt failed */
    uint8_t outcome;      /* ota_pull_outcome_t */
    uint8_t decision;     /* ota_manifest_decision_t of the last manifest */

    /* the download */
    uint32_t size;        /* of the image */
    uint32_t offset;      /* bytes in the pipeline */
    uint32_t synced;      /* the resume point last recorded */
    uint32_t resumed_at;  /* where this attempt started (0: from scratch) */
    uint8_t id[16];       /* the download's identity (pull.c: download_id) */
    char etag[OTA_CFG_PULL_ETAG_MAX];
    char image_url[OTA_CFG_HTTP_URL_MAX];

    size_t body_len;
    ota_manifest_t manifest;
    uint8_t body[OTA_CFG_PULL_MANIFEST_MAX]; /* the manifest as fetched */
#if OTA_CFG_ENABLE_SIGNED
    size_t sig_len;
    uint8_t sig[OTA_SIG_SECTOR_SIZE]; /* manifest.json.sig */
#endif
} ota_pull_t;

/** Bind the pull client to its tables and the server's pipeline (borrowed; cfg's
 *  strings must outlive p). Nothing is fetched before ota_pull_enable.
 *  \return 0, OTA_ERR_INVALID_ARG (a required table, string or the pipeline missing;
 *  more than 3 trusted keys), OTA_ERR_TOO_LONG (the manifest URL). */
int ota_pull_setup(ota_pull_t *p, const ota_pull_ports_t *ports, ota_update_t *update,
                   const ota_pull_config_t *cfg, uint32_t now_ms);

/** Start checking: the first check at once, then every interval. Call it once the
 *  running image is confirmed (a pending image that pulled another one before it
 *  proved itself would leave nothing good to roll back to). */
void ota_pull_enable(ota_pull_t *p, uint32_t now_ms);

/** Check at the next poll (skipped if a check or download is under way). */
void ota_pull_check_now(ota_pull_t *p);

/** Drive the client. \return 0 (idle or waiting), OTA_ERR_WOULD_BLOCK (busy: poll
 *  again soon), or, once, the error of an attempt that just failed. */
int ota_pull_poll(ota_pull_t *p, uint32_t now_ms);

/** true while a check or a download is under way (poll often). */
bool ota_pull_active(const ota_pull_t *p);

/** The last outcome; *err gets the error of a failed one (may be NULL). */
ota_pull_outcome_t ota_pull_status(const ota_pull_t *p, int *err);

/** Milliseconds until the next check is due (0: now or under way), for a loop that
 *  sleeps. */
uint32_t ota_pull_next_ms(const ota_pull_t *p, uint32_t now_ms);

#endif /* OTA_CFG_ENABLE_PULL && OTA_CFG_ENABLE_HTTP */

#endif /* OTA_PULL_H */
