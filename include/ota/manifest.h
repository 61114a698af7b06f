/*
 * ota/manifest.h - the update manifest a node pulls (docs/protocol.md#manifest): the
 * ESP Web Tools `manifest.json` that ESPHome's `update: platform: http_request`
 * reads, with our additions next to `md5` in a build's `ota` object.
 *
 *     {"name": "...", "version": "...",
 *      "builds": [{"chipFamily": "ESP32-S3",
 *                  "parts": [...],                      (ESP Web Tools; ignored)
 *                  "ota": {"path": "firmware-1.2.bin",  (relative or absolute URL)
 *                          "md5": "<32 hex>",
 *                          "sha256": "<64 hex>",        (ours)
 *                          "secure_version": 3,         (ours)
 *                          "size": 1048576,             (ours)
 *                          "rollout": 50,               (ours: 0-100, absent = 100)
 *                          "summary": "...", "release_url": "..."}}]}
 *
 * ota_manifest_parse() reads such a document from a buffer into a fixed struct: no
 * heap, no recursion deeper than OTA_CFG_MANIFEST_MAX_DEPTH containers (about 150
 * bytes of stack per level on a 32-bit microcontroller), strict JSON
 * (RFC 8259) and strict types for the keys it reads, unknown keys ignored. Only the
 * first build whose chipFamily equals the node's family is read, as ESPHome does.
 *
 * The rollout bucket and the decision to take an update are here too, so that every
 * implementation (the node, `ota manifest check`, a test in Python) computes the same
 * ones; and the check of the detached manifest signature (manifest.json.sig), with
 * OTA_CFG_ENABLE_SIGNED.
 *
 * Compiled only with OTA_CFG_ENABLE_PULL 1 (ota/opts.h); the family names below are
 * plain macros and always there.
 */
#ifndef OTA_MANIFEST_H
#define OTA_MANIFEST_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "ota/errors.h"
#include "ota/opts.h"
#include "ota/port.h"

/* ---- chip families ----
 * ESPHome compares a build's chipFamily with its ESPHOME_VARIANT, byte for byte:
 * "ESP32", "ESP32-S2", "ESP32-S3", "ESP32-C2", "ESP32-C3", "ESP32-C6", "ESP32-H2",
 * "ESP8266", "RP2040", LibreTiny's "BK7231N", "RTL8710B", ... A Linux node (the POSIX
 * port, demo-node) reports "LINUX-" and the CPU its binary was built for, which is
 * also what `ota publish` writes by default: one definition for both. */
#if defined(__x86_64__)
#define OTA_MANIFEST_ARCH "X86_64"
#elif defined(__aarch64__)
#define OTA_MANIFEST_ARCH "AARCH64"
#elif defined(__i386__)
#define OTA_MANIFEST_ARCH "X86"
#elif defined(__arm__)
#define OTA_MANIFEST_ARCH "ARM"
#elif defined(__riscv) && defined(__riscv_xlen) && __riscv_xlen == 64
#define OTA_MANIFEST_ARCH "RISCV64"
#else
#define OTA_MANIFEST_ARCH "UNKNOWN"
#endif
/** The chip family of a Linux node, e.g. "LINUX-X86_64", "LINUX-AARCH64". */
#define OTA_MANIFEST_FAMILY_POSIX "LINUX-" OTA_MANIFEST_ARCH

#define OTA_MANIFEST_FAMILY_MAX 32u   /**< longest chipFamily compared, NUL included */
#define OTA_MANIFEST_ROLLOUT_ALL 100u /**< rollout when the manifest has none */

#if OTA_CFG_ENABLE_PULL

/** Why ota_manifest_parse() refused a document (ota_manifest_t.error). */
typedef enum ota_manifest_error {
    OTA_MANIFEST_OK = 0,
    OTA_MANIFEST_E_SYNTAX,    /**< not JSON: a stray byte, trailing data, cut short */
    OTA_MANIFEST_E_DEPTH,     /**< containers nested deeper than OTA_CFG_MANIFEST_MAX_DEPTH */
    OTA_MANIFEST_E_STRING,    /**< a bad escape, control byte, invalid UTF-8, \u0000 */
    OTA_MANIFEST_E_NUMBER,    /**< a number that is not JSON's grammar */
    OTA_MANIFEST_E_TYPE,      /**< a key we read has a value of another type */
    OTA_MANIFEST_E_DUPLICATE, /**< a key we read appears twice in one object */
    OTA_MANIFEST_E_MISSING,   /**< a required key is missing */
    OTA_MANIFEST_E_RANGE,     /**< a bad value: md5/sha256 not hex, rollout > 100, ... */
    OTA_MANIFEST_E_TOO_LONG,  /**< version or path longer than its buffer */
    OTA_MANIFEST_E_NO_BUILD   /**< well formed, but no build for this chip family */
} ota_manifest_error_t;

/** ota_manifest_t.truncated: a text kept only in part (cut at a UTF-8 boundary). */
#define OTA_MANIFEST_TRUNC_NAME 0x01u
#define OTA_MANIFEST_TRUNC_SUMMARY 0x02u
#define OTA_MANIFEST_TRUNC_RELEASE_URL 0x04u

/** What a manifest says for one chip family. Strings are UTF-8, NUL-terminated. */
typedef struct ota_manifest {
    char name[OTA_CFG_MANIFEST_NAME_MAX];       /**< the project's name (display) */
    char version[OTA_CFG_MANIFEST_VERSION_MAX]; /**< the release's version */
    char path[OTA_CFG_MANIFEST_PATH_MAX];       /**< ota.path as written (see resolve_url) */
    char summary[OTA_CFG_MANIFEST_TEXT_MAX];    /**< ota.summary, "" when absent */
    char release_url[OTA_CFG_MANIFEST_TEXT_MAX]; /**< ota.release_url, "" when absent */
    uint8_t md5[OTA_MD5_LEN];                   /**< ota.md5 (has_md5) */
    uint8_t sha256[OTA_SHA256_LEN];             /**< ota.sha256 (has_sha256) */
    uint32_t secure_version;                    /**< ota.secure_version (has_secure_version) */
    uint32_t size;                              /**< ota.size in bytes (has_size) */
    uint8_t rollout;                            /**< ota.rollout, 0-100; 100 when absent */
    /** "published" (ours, top level): when the manifest was written, in seconds since
     *  1970; a node that trusts keys never accepts a signed manifest older than one it
     *  accepted before (a mirror replaying an old one to move it back or freeze it) */
    uint32_t published;
    bool has_md5, has_sha256, has_secure_version, has_size, has_rollout, has_published;
    uint8_t truncated;                          /**< OTA_MANIFEST_TRUNC_* */
    uint16_t builds;                            /**< entries of builds[] (capped at 65535) */
    ota_manifest_error_t error;                 /**< why the parse failed */
    uint32_t error_offset;                      /**< byte where it noticed */
} ota_manifest_t;

/** Parse the manifest json[0..len) for chip family `family` (e.g. "ESP32-S3",
 *  OTA_MANIFEST_FAMILY_POSIX) into *out.
 *  Rules (docs/protocol.md#manifest): a JSON object at the top with "name" (string),
 *  "version" (string) and "builds" (array of objects, each with a string
 *  "chipFamily"); the first build whose chipFamily equals family must have "ota" (an
 *  object) with "path" (non-empty, printable ASCII without spaces: it goes into a
 *  request line) and "md5" or "sha256" (or both); "version" holds no control
 *  characters. md5 is 32
 *  hex digits, sha256 64 (either case); secure_version and size are integers 0 to
 *  4294967295 (size at least 1), rollout an integer 0 to 100, summary and release_url
 *  strings; null means absent for all of these optional keys. A key we read may not
 *  appear twice in its object; keys we do not read are skipped (any valid JSON,
 *  duplicates included). name, summary and release_url are cut to their buffers
 *  (flagged in truncated); a version or path that does not fit is an error. The
 *  other builds' "ota" values are only checked to be valid JSON.
 *  \return 0 (out is filled); OTA_ERR_MALFORMED (not JSON, or not a manifest:
 *  out->error says why, out->error_offset where); OTA_ERR_TOO_LONG (version or path);
 *  OTA_ERR_UNSUPPORTED (a valid manifest without a build for family);
 *  OTA_ERR_INVALID_ARG (NULL json with len > 0, NULL out or family). */
int ota_manifest_parse(const uint8_t *json, size_t len, const char *family, ota_manifest_t *out);

/** A short English name of an error ("syntax error", "no build for this chip family"). */
const char *ota_manifest_error_name(ota_manifest_error_t e);

/** The URL of the image: ota.path resolved against the manifest's own URL, the way
 *  ESPHome does: a path starting with "http://" or "https://" is used as it is; one
 *  starting with "/" is put after the manifest URL's scheme and host
 *  ("https://h:8443/a/manifest.json" + "/f.bin" -> "https://h:8443/f.bin"); anything
 *  else replaces what follows the last "/" of the manifest URL (before any "?" or
 *  "#"): "https://h/a/manifest.json" + "f.bin" -> "https://h/a/f.bin".
 *  \return the length written (NUL-terminated); OTA_ERR_TOO_LONG (does not fit cap);
 *  OTA_ERR_INVALID_ARG (NULL, an empty path, a manifest URL that is not http(s)). */
int ota_manifest_resolve_url(const char *manifest_url, const char *path, char *out, size_t cap);

/** The node's rollout bucket for a release, 0 to 99:
 *      d = SHA-256(node_name || 0x00 || version)      (the strings' bytes, no NULs)
 *      bucket = (d[0] << 24 | d[1] << 16 | d[2] << 8 | d[3]) mod 100
 *  Stable for a node and a release, and different releases pick different nodes
 *  first. \return 0..99; OTA_ERR_INVALID_ARG (NULL, or crypto without SHA-256);
 *  OTA_ERR_CRYPTO (the hash failed). */
int ota_manifest_rollout_bucket(const ota_crypto_port_t *crypto, const char *node_name,
                                const char *version);

/** What the node knows about itself, for ota_manifest_should_take(). */
typedef struct ota_manifest_node {
    const char *name;            /**< node name (the rollout bucket's input) */
    const char *version;         /**< the running firmware's version */
    const char *chip_family;     /**< e.g. OTA_MANIFEST_FAMILY_POSIX */
    uint32_t min_secure_version; /**< the boot record's minimum (0: none) */
    /** the node requires signed manifests (it has trusted keys) ... */
    bool signature_required;
    /** ... and ota_manifest_verify_signature() returned 0 for this manifest */
    bool signature_verified;
} ota_manifest_node_t;

/** The outcome of ota_manifest_should_take(), in the order of its checks. */
typedef enum ota_manifest_decision {
    OTA_MANIFEST_TAKE = 0,         /**< take the update */
    OTA_MANIFEST_UNSIGNED,         /**< a signature is required and did not verify */
    OTA_MANIFEST_NO_VERSION,       /**< the manifest's version is empty */
    OTA_MANIFEST_SAME_VERSION,     /**< it is the running version */
    OTA_MANIFEST_WRONG_FAMILY,     /**< parsed for another chip family */
    OTA_MANIFEST_BELOW_MINIMUM,    /**< secure_version below the node's minimum */
    OTA_MANIFEST_NOT_IN_ROLLOUT,   /**< bucket >= rollout: not this node's turn yet */
    OTA_MANIFEST_DECISION_ERROR    /**< bad arguments, or hashing failed */
} ota_manifest_decision_t;

/** Should the node take the update m (parsed for `family`) describes? In order: the
 *  signature policy (signature_required and not signature_verified: no); a version
 *  (non-empty) that differs from the running one as a string (ESPHome's rule: any
 *  difference, so a release can also be rolled back by publishing the old one, which
 *  secure_version then limits); the family; secure_version, when the manifest gives
 *  one, not below min_secure_version (when it gives none, the image's own descriptor
 *  is checked after the download, as for every update); and
 *  ota_manifest_rollout_bucket(name, m->version) < m->rollout. *bucket (may be
 *  NULL) gets the bucket when it was computed, else -1. */
ota_manifest_decision_t ota_manifest_should_take(const ota_crypto_port_t *crypto,
                                                 const ota_manifest_t *m, const char *family,
                                                 const ota_manifest_node_t *node, int *bucket);

/** A short English name of a decision ("take", "same version", ...). */
const char *ota_manifest_decision_name(ota_manifest_decision_t d);

#if OTA_CFG_ENABLE_SIGNED
#include "ota/signature.h"

/** Check the detached signature of a manifest: sig (sig_len bytes, the whole
 *  manifest.json.sig) is a Secure Boot V2 signature sector (ota/signature.h) whose
 *  blocks sign the SHA-256 of exactly the manifest bytes json[0..len) (no padding:
 *  unlike an image, the manifest is not padded to 4096). The same keys that sign the
 *  images sign the manifest.
 *  \return as ota_sig_verify_sector(): 0 when a trusted block verifies. */
int ota_manifest_verify_signature(const ota_crypto_port_t *crypto, const uint8_t *json,
                                  size_t len, const uint8_t *sig, size_t sig_len,
                                  const ota_sig_trusted_t *trusted, size_t n_trusted,
                                  ota_sig_result_t *res);
#endif

#endif /* OTA_CFG_ENABLE_PULL */

#endif /* OTA_MANIFEST_H */
