/*
 * ota/signature.h - signed images in ESP-IDF's Secure Boot V2 format: the signature
 * sector `espsecure sign-data --version 2` appends and ESP-IDF's bootloader checks,
 * for the schemes "rsa3072" (RSA-3072, RSASSA-PSS) and "ecdsa256" (ECDSA P-256).
 *
 * A signed image is
 *
 *     image bytes | 0xFF up to a multiple of 4096 | signature sector (4096 bytes)
 *
 * and the signature sector holds up to three signature blocks of 1216 bytes, then
 * 0xFF. Each block carries the SHA-256 of everything before the sector (padding
 * included), one public key and one signature of that digest by it; the node trusts
 * a block when the SHA-256 of its key material (the "key digest", what eFuses hold)
 * is one it knows, and accepts the image when at least one trusted block verifies.
 * docs/protocol.md#signed-images has the byte layout and where it comes from.
 *
 * Streaming: the update pipeline hashes the first ota_sig_split() bytes with SHA-256
 * as they arrive, keeps (or reads back) the last 4096, and calls
 * ota_sig_verify_sector(). The signature arithmetic itself is the crypto table's
 * (verify_ecdsa_p256, verify_rsa3072_pss in ota/port.h); the core only parses,
 * hashes, matches keys and converts byte orders, without allocating. Stack: about
 * 1 KiB at the deepest (the big-endian copies for the RSA check), about 2 KiB when a
 * trusted RSA key is given in full rather than as a digest (plus the hook's own).
 *
 * Compiled only with OTA_CFG_ENABLE_SIGNED 1 (ota/opts.h); with 0 these functions do
 * not exist.
 */
#ifndef OTA_SIGNATURE_H
#define OTA_SIGNATURE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "ota/errors.h"
#include "ota/port.h"

/* ---- the format (offsets from the start of a block) ---- */
#define OTA_SIG_SECTOR_SIZE 4096u /**< the signature sector, and the image's alignment */
#define OTA_SIG_BLOCK_SIZE 1216u  /**< one signature block */
#define OTA_SIG_MAX_BLOCKS 3u     /**< blocks per sector (the rest of it is 0xFF) */
#define OTA_SIG_MAGIC 0xE7u       /**< byte 0 of every block */
#define OTA_SIG_VERSION_RSA 0x02u   /**< byte 1: RSA-3072-PSS */
#define OTA_SIG_VERSION_ECDSA 0x03u /**< byte 1: ECDSA */
#define OTA_SIG_DIGEST_LEN 32u    /**< SHA-256: image digest and key digest */

#define OTA_SIG_OFF_MAGIC 0u
#define OTA_SIG_OFF_VERSION 1u
#define OTA_SIG_OFF_RESERVED 2u   /**< 2 bytes, 0 (ECDSA: byte 2 is the hash, 0 = SHA-256) */
#define OTA_SIG_OFF_DIGEST 4u     /**< SHA-256 of the padded image */
#define OTA_SIG_OFF_KEY 36u       /**< the key material: what the key digest covers */
#define OTA_SIG_OFF_CRC 1196u     /**< CRC-32 (IEEE, as zlib's crc32) of bytes 0..1195,
                                       little-endian; 16 zero bytes follow */
#define OTA_SIG_CRC_LEN OTA_SIG_OFF_CRC

/* RSA-3072 blocks (version 0x02): every number little-endian */
#define OTA_SIG_RSA_OFF_N 36u     /**< modulus n, 384 bytes */
#define OTA_SIG_RSA_OFF_E 420u    /**< public exponent e, uint32 */
#define OTA_SIG_RSA_OFF_RINV 424u /**< 2^6144 mod n, 384 bytes (Montgomery constant) */
#define OTA_SIG_RSA_OFF_MDASH 808u /**< -n^-1 mod 2^32, uint32 */
#define OTA_SIG_RSA_OFF_SIG 812u  /**< the PSS signature, 384 bytes */
#define OTA_SIG_RSA_KEY_LEN 776u  /**< bytes 36..811: n, e, rinv, mdash */
#define OTA_SIG_RSA_LEN 384u

/* ECDSA P-256 blocks (version 0x03, hash byte 0, curve 2): little-endian numbers */
#define OTA_SIG_ECDSA_OFF_CURVE 36u /**< curve id: 1 P-192, 2 P-256 (3 P-384 uses
                                         another layout) */
#define OTA_SIG_ECDSA_OFF_POINT 37u /**< X then Y, 32 bytes each */
#define OTA_SIG_ECDSA_OFF_SIG 101u  /**< r then s, 32 bytes each; zeros follow */
#define OTA_SIG_ECDSA_KEY_LEN 65u   /**< bytes 36..100: curve id, X, Y */
#define OTA_SIG_ECDSA_CURVE_P256 2u
#define OTA_SIG_ECDSA_LEN 64u

/** The schemes this core checks. */
typedef enum ota_sig_scheme {
    OTA_SIG_SCHEME_NONE = 0,
    OTA_SIG_SCHEME_RSA3072 = 1,   /**< espsecure --scheme rsa3072 */
    OTA_SIG_SCHEME_ECDSA_P256 = 2 /**< espsecure --scheme ecdsa256 */
} ota_sig_scheme_t;

/** One parsed block: pointers into the caller's bytes, as they are stored there. */
typedef struct ota_sig_block {
    ota_sig_scheme_t scheme;
    const uint8_t *image_digest; /**< 32 bytes: what the signer saw */
    const uint8_t *key;          /**< the key material the key digest covers */
    size_t key_len;              /**< OTA_SIG_RSA_KEY_LEN or OTA_SIG_ECDSA_KEY_LEN */
    const uint8_t *signature;    /**< little-endian, as stored */
    size_t signature_len;        /**< 384 (RSA) or 64 (ECDSA: r then s) */
} ota_sig_block_t;

/** Check one block's magic byte, CRC and version (nothing cryptographic) and fill
 *  *out. \return 0; OTA_ERR_NOT_SIGNED (no magic byte: no block here, e.g. erased
 *  flash); OTA_ERR_BAD_SIGNATURE (magic byte, but the CRC does not match: a corrupt
 *  block); OTA_ERR_UNSUPPORTED (a well-formed block of another scheme: an unknown
 *  version, ECDSA on another curve or with SHA-384); OTA_ERR_INVALID_ARG. */
int ota_sig_block_parse(const uint8_t blk[OTA_SIG_BLOCK_SIZE], ota_sig_block_t *out);

/** A public key in its usual (big-endian) form, e.g. from `openssl pkey -text`. */
typedef struct ota_sig_key {
    ota_sig_scheme_t scheme;
    const uint8_t *data; /**< RSA: n, 384 bytes; ECDSA: X || Y, 32 bytes each */
    uint32_t rsa_e;      /**< RSA only: the public exponent (usually 65537) */
} ota_sig_key_t;

/** The key digest ESP-IDF uses (and burns into eFuses, and `espsecure
 *  digest-sbv2-public-key` prints): SHA-256 of the key material as a signature block
 *  stores it. For RSA that includes two constants derived from n, which this
 *  computes (about 3000 big-number doublings: milliseconds on a microcontroller).
 *  \return 0; OTA_ERR_INVALID_ARG (no key, an RSA modulus that is not 3072 bits or
 *  is even, an unknown scheme); the hash's OTA_ERR_CRYPTO. */
int ota_sig_key_digest(const ota_crypto_port_t *crypto, const ota_sig_key_t *key,
                       uint8_t out[OTA_SIG_DIGEST_LEN]);

/** One key the node trusts: its key digest (32 bytes, as eFuses hold it), or, when
 *  digest is NULL, the key itself (its digest is then computed on every
 *  ota_sig_verify_sector() call: store digests where that matters). */
typedef struct ota_sig_trusted {
    const uint8_t *digest;
    ota_sig_key_t key;
} ota_sig_trusted_t;

/** What became of one block, in the order of the checks. */
typedef enum ota_sig_status {
    OTA_SIG_ABSENT = 0,        /**< no magic byte: no block (the sector's 0xFF) */
    OTA_SIG_CORRUPT,           /**< magic byte, but the CRC does not match */
    OTA_SIG_UNSUPPORTED,       /**< another scheme, or the crypto table lacks its hook */
    OTA_SIG_UNTRUSTED,         /**< well formed, but its key is not a trusted one */
    OTA_SIG_DIGEST_MISMATCH,   /**< trusted key, but signed for other image bytes */
    OTA_SIG_BAD_SIGNATURE,     /**< trusted key, right digest, the signature is wrong */
    OTA_SIG_VALID,             /**< trusted key, right digest, the signature verifies */
    OTA_SIG_NOT_CHECKED        /**< after the valid block: not looked at */
} ota_sig_status_t;

/** Per-block report of ota_sig_verify_sector(). */
typedef struct ota_sig_result {
    ota_sig_status_t status[OTA_SIG_MAX_BLOCKS];
    ota_sig_scheme_t scheme[OTA_SIG_MAX_BLOCKS]; /**< NONE unless the block parsed */
    /** the block's key digest, set from OTA_SIG_UNTRUSTED on (for logs: which key) */
    uint8_t key_digest[OTA_SIG_MAX_BLOCKS][OTA_SIG_DIGEST_LEN];
    int valid_block; /**< the block that verified, -1 for none */
    int trusted;     /**< its key's index in trusted[], -1 for none */
} ota_sig_result_t;

/** Check a signature sector (sector_len bytes, which must be OTA_SIG_SECTOR_SIZE)
 *  against image_sha256, the SHA-256 of the image_len bytes before it
 *  (ota_sig_split()). Blocks are looked at in order, each one: magic, CRC, scheme;
 *  its key digest against trusted[0..n_trusted); its image digest; its signature
 *  (through the crypto table's hook for its scheme). The first block that passes
 *  all of them makes the image accepted; the others still say why they failed in
 *  *res (may be NULL). A block whose key is not trusted is never verified, so an
 *  image may carry blocks for other devices (key rotation: old and new key).
 *  \return 0 (a trusted block verified); otherwise, the first that applies:
 *   OTA_ERR_BAD_SIGNATURE  a block by a trusted key did not match the image or did
 *                          not verify (the image or the signature was altered), or
 *                          a block was corrupt;
 *   OTA_ERR_UNSUPPORTED    a block of another scheme, or one by a trusted key whose
 *                          scheme the crypto table cannot verify;
 *   OTA_ERR_UNTRUSTED_KEY  every block was signed by a key not trusted here;
 *   OTA_ERR_NOT_SIGNED     no block at all, or sector_len is not 4096 (truncated);
 *   OTA_ERR_INVALID_ARG    a NULL argument (or crypto without SHA-256);
 *   OTA_ERR_CRYPTO         hashing or a verify hook failed to run. */
int ota_sig_verify_sector(const ota_crypto_port_t *crypto, const uint8_t *sector,
                          size_t sector_len, const uint8_t image_sha256[OTA_SIG_DIGEST_LEN],
                          const ota_sig_trusted_t *trusted, size_t n_trusted,
                          ota_sig_result_t *res);

/** Where a signed image of total_size bytes (as uploaded) splits: *image_len =
 *  total_size - 4096 bytes of (padded) image, hashed with SHA-256, then the signature
 *  sector. The rule: total_size is a multiple of 4096 and at least two sectors (a
 *  signed image is never empty).
 *  \return 0; OTA_ERR_NOT_SIGNED (the size cannot be that of a signed image);
 *  OTA_ERR_INVALID_ARG (image_len NULL). */
int ota_sig_split(uint32_t total_size, uint32_t *image_len);

/** The whole check on an image in memory: split, SHA-256 of the image part,
 *  ota_sig_verify_sector(). \return as ota_sig_verify_sector(); OTA_ERR_NOT_SIGNED
 *  when ota_sig_split() refuses the size. */
int ota_sig_verify_image(const ota_crypto_port_t *crypto, const uint8_t *image, size_t len,
                         const ota_sig_trusted_t *trusted, size_t n_trusted,
                         ota_sig_result_t *res);

/** A short English name of a block status ("valid", "untrusted key", ...). */
const char *ota_sig_status_name(ota_sig_status_t status);

#endif /* OTA_SIGNATURE_H */
