/*
 * imgsign.h - the host side of ESP-IDF Secure Boot V2 signed images: signing keys,
 * signing (byte-compatible with `espsecure sign_data --version 2`) and inspecting a
 * signed image. mbedTLS and libc, and the format's numbers from ota/signature.h.
 *
 * A signed image is
 *
 *     image             the firmware as built
 *     0xFF padding      up to the next multiple of 4096 bytes (none if already aligned)
 *     signature sector  4096 bytes: 1 to 3 signature blocks of 1216 bytes, then 0xFF
 *
 * and every block signs the SHA-256 of everything before the sector (image + padding).
 * A block (all multi-byte numbers little-endian):
 *
 *     RSA-3072 (version 0x02)               ECDSA P-256 (version 0x03)
 *     0     magic 0xE7                      0     magic 0xE7
 *     1     version 0x02                    1     version 0x03
 *     2     0x00 0x00                       2     0x00 (SHA-256; 0x01 is SHA-384/P-384), 0x00
 *     4     SHA-256 of the padded image     4     SHA-256 of the padded image
 *     36    n, 384 bytes                    36    curve id (1 P-192, 2 P-256, 3 P-384)
 *     420   e, u32                          37    X (32 bytes), Y (32 bytes)
 *     424   R^2 mod n (R = 2^3072), 384 B   101   r (32 bytes), s (32 bytes)
 *     808   M' = -n^-1 mod 2^32, u32        165   zero up to 1196
 *     812   RSA-PSS signature, 384 bytes
 *     1196  CRC-32 (zlib's, IEEE 802.3) of bytes 0..1195, u32
 *     1200  16 zero bytes
 *
 * RSA signatures are RSASSA-PSS with SHA-256, MGF1-SHA-256 and a 32-byte salt. The
 * "key digest" burnt into eFuse (what `espsecure digest_sbv2_public_key` writes) is the
 * SHA-256 of block bytes 36..811 for RSA (n, e, R^2 mod n, M') and of bytes 36..100
 * for ECDSA (curve id and point; P-384: bytes 52..148).
 *
 * The sector holds up to 3 blocks; ESP32 v3.0 and ESP32-C2 check block 0 only (one
 * eFuse key digest), so rotation by appending blocks helps on the other chips.
 *
 * Every function returns 0 on success and -1 on failure with a one-line English
 * message in err (cap bytes, NUL-terminated, no trailing newline; err may be NULL
 * when cap is 0). None prints anything.
 *
 * Usage strings of the `ota` commands to come (wired in main.c later):
 *
 *   ota keygen --scheme ecdsa256|rsa3072 KEY.pem
 *       Write a new signing key to KEY.pem (mode 0600) and its public key to
 *       KEY.pub.pem; refuse if either exists. No default: the chip decides (ESP32
 *       v3, S2, S3, C3 verify rsa3072 only; C2 ecdsa only; C6, H2, C5, P4 either).
 *       -> imgsign_keygen(), then imgsign_key_digest() to print the eFuse digest.
 *
 *   ota sign --key KEY.pem [--key KEY2.pem [--key KEY3.pem]] [-o OUT] IMAGE
 *       Pad IMAGE to 4096 bytes and append a signature sector with one block per key
 *       (at most 3). An IMAGE that is already signed keeps its blocks and gets the new
 *       ones added after them (key rotation). OUT defaults to IMAGE.signed.bin.
 *       -> imgsign_sign()
 *
 *   ota siginfo IMAGE
 *       List the signature blocks of IMAGE: scheme, key digest (eFuse), whether the
 *       image digest matches and whether the signature verifies. Exit 0 when every
 *       block is valid for this image, 1 otherwise (also when IMAGE is unsigned).
 *       -> imgsign_inspect()
 *
 *   ota key-digest KEY.pem|KEY.pub.pem
 *       Print the SHA-256 key digest the chip's eFuse must hold for this key.
 *       -> imgsign_key_digest()
 */
#ifndef OTA_TOOLS_OTA_IMGSIGN_H
#define OTA_TOOLS_OTA_IMGSIGN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "ota/signature.h"

/* the format's numbers are the core's (ota/signature.h): one definition per fact */
#define IMGSIGN_SECTOR_SIZE OTA_SIG_SECTOR_SIZE /* the alignment, and the sector's size */
#define IMGSIGN_BLOCK_SIZE OTA_SIG_BLOCK_SIZE   /* one signature block */
#define IMGSIGN_CRC_LEN OTA_SIG_CRC_LEN         /* bytes of a block covered by its CRC-32 */
#define IMGSIGN_MAX_BLOCKS OTA_SIG_MAX_BLOCKS   /* blocks a sector holds */
#define IMGSIGN_MAGIC OTA_SIG_MAGIC
#define IMGSIGN_VERSION_RSA OTA_SIG_VERSION_RSA
#define IMGSIGN_VERSION_ECDSA OTA_SIG_VERSION_ECDSA
#define IMGSIGN_PAD_BYTE 0xFFu     /* image padding and the rest of the sector */
#define IMGSIGN_DIGEST_LEN OTA_SIG_DIGEST_LEN /* SHA-256: key digests, image digests */
#define IMGSIGN_MAX_DIGEST_LEN 48u /* SHA-384 image digest of an ECDSA P-384 block */

typedef enum imgsign_scheme {
    IMGSIGN_SCHEME_UNKNOWN = 0,
    IMGSIGN_SCHEME_RSA3072,  /* "rsa3072": RSA-3072 PSS, block version 0x02 */
    IMGSIGN_SCHEME_ECDSA256, /* "ecdsa256": ECDSA P-256 + SHA-256, version 0x03 */
    IMGSIGN_SCHEME_ECDSA192, /* "ecdsa192": recognised and verified, not signed with */
    IMGSIGN_SCHEME_ECDSA384, /* "ecdsa384": recognised and verified, not signed with */
} imgsign_scheme_t;

/** "rsa3072", "ecdsa256", "ecdsa192", "ecdsa384"; "unknown" for anything else. */
const char *imgsign_scheme_name(imgsign_scheme_t scheme);

/** The public key file next to a private key file: "key.pem" -> "key.pub.pem",
 *  "dir/k" -> "dir/k.pub.pem" (a trailing ".pem" is replaced, else appended).
 *  \return 0, -1 (does not fit cap, or key_path empty). */
int imgsign_pub_path(const char *key_path, char *out, size_t cap);

/** Generate a key for scheme ("ecdsa256" or "rsa3072") and write the private key to
 *  out_path (traditional PEM: "EC PRIVATE KEY" / "RSA PRIVATE KEY", mode 0600) and its
 *  public key (SubjectPublicKeyInfo PEM, "PUBLIC KEY") to imgsign_pub_path(out_path).
 *  Refuses when either file exists (nothing is written then); on any failure neither
 *  file is left behind. rsa3072 takes a few seconds. */
int imgsign_keygen(const char *scheme, const char *out_path, char *err, size_t cap);

/** The eFuse key digest of a key file (private or public PEM; PKCS#8, traditional or
 *  SubjectPublicKeyInfo), as `espsecure digest_sbv2_public_key` computes it.
 *  *scheme (if not NULL) gets the key's scheme. Only rsa3072 and ecdsa256 keys. */
int imgsign_key_digest(const char *key_path, uint8_t digest[IMGSIGN_DIGEST_LEN],
                       imgsign_scheme_t *scheme, char *err, size_t cap);

/** Sign img (len bytes) with n_keys (1..3) private key files and return the signed
 *  image in *out (malloc'd, the caller frees it) of *out_len bytes.
 *
 *  Unsigned input: the image is padded with 0xFF to a multiple of 4096 and a new
 *  sector with one block per key (in key_paths order) is appended.
 *  Input that already ends with a signature sector (its length a multiple of 4096,
 *  block 0 of the last 4096 bytes valid: magic, version, CRC): the sector's valid
 *  blocks are kept byte for byte and the new ones are added after them, like
 *  `espsecure sign_data --version 2 --append_signatures`. Refused, with a message:
 *  more than 3 blocks in all; an existing block over another image (its digest is not
 *  that of the bytes before the sector); a damaged block; a key that already signed
 *  the image, or the same key twice; RSA and ECDSA blocks in one sector (a chip
 *  verifies one scheme).
 *  Keys: RSA-3072 or ECDSA P-256 private keys in PEM (PKCS#8 "PRIVATE KEY" as
 *  `openssl genpkey` writes, or traditional "RSA/EC PRIVATE KEY"), unencrypted.
 *  Every new block is verified before it is returned. */
int imgsign_sign(const uint8_t *img, size_t len, const char *const *key_paths, size_t n_keys,
                 uint8_t **out, size_t *out_len, char *err, size_t cap);

/** A detached signature: a fresh signature sector (IMGSIGN_SECTOR_SIZE bytes: one
 *  block per key in key_paths order, then 0xFF) whose blocks sign digest, the SHA-256
 *  of whatever the caller signs (`ota publish`: the exact bytes of manifest.json, see
 *  ota/manifest.h). Same keys, checks and self-verification as imgsign_sign(); on
 *  failure sector is all 0xFF. */
int imgsign_sign_digest(const uint8_t digest[IMGSIGN_DIGEST_LEN], const char *const *key_paths,
                        size_t n_keys, uint8_t sector[IMGSIGN_SECTOR_SIZE], char *err,
                        size_t cap);

typedef struct imgsign_block_info {
    imgsign_scheme_t scheme;
    uint8_t version;                            /* byte 1: 0x02 RSA, 0x03 ECDSA */
    uint8_t key_digest[IMGSIGN_DIGEST_LEN];     /* the eFuse digest of the block's key */
    uint8_t image_digest[IMGSIGN_MAX_DIGEST_LEN]; /* as stored in the block */
    size_t image_digest_len;                    /* 32 (SHA-256) or 48 (SHA-384, P-384) */
    bool digest_matches;  /* the stored digest is that of the bytes before the sector */
    bool key_valid;       /* RSA: 3072-bit n, and R^2 mod n and M' are those of n (the
                             chip uses them as stored); ECDSA: the point is on the curve */
    bool signature_valid; /* the signature verifies over the stored digest with the
                             block's own key (whose trust is the eFuse's key digest) */
    char problem[160];    /* why the block is not valid for this image; "" if it is */
} imgsign_block_info_t;

typedef struct imgsign_info {
    size_t signed_len;  /* bytes covered by the signatures (= the sector's offset) */
    size_t n_blocks;    /* valid blocks (magic, version, CRC), from block 0 on */
    uint8_t image_sha256[IMGSIGN_DIGEST_LEN]; /* SHA-256 of the first signed_len bytes */
    bool all_valid;     /* n_blocks > 0 and every block matches and verifies */
    imgsign_block_info_t blocks[IMGSIGN_MAX_BLOCKS];
} imgsign_info_t;

/** Examine the signature sector at the end of img (the last 4096 bytes; len must be a
 *  multiple of 4096). Blocks are read from block 0 on and the first slot without a
 *  valid block (magic, version, CRC) ends the list, as the bootloader does.
 *  \return 1 signed (info->n_blocks >= 1; see info->all_valid and each block),
 *          0 not signed (info->n_blocks == 0; err says why, e.g. the length),
 *          -1 error (NULL arguments, out of memory). */
int imgsign_inspect(const uint8_t *img, size_t len, imgsign_info_t *info, char *err, size_t cap);

/** Set fields of the image descriptor (esp_app_desc_t, ota/app_desc.h) of an unsigned
 *  image that is not an ESP one (a Linux node's ELF, say) in place, before it is
 *  signed: its version text (version != NULL, at most 31
 *  characters, NUL-padded) and its secure_version (set_sv). The node reads both from
 *  the image it runs (anti-rollback; a pulled release knows its own version).
 *  \return 0; -1 with err set: the image is signed already (changing it would break
 *  the signatures), it has no descriptor, or the version is too long. */
int imgsign_set_descriptor(uint8_t *img, size_t len, const char *version, bool set_sv,
                           uint32_t secure_version, char *err, size_t cap);

/** true for an ESP-IDF or ESP8266 app image (magic 0xE9): its checksum byte and its
 *  appended SHA-256 cover every byte, so imgsign_set_descriptor() refuses to change
 *  one (the chip would reject the image); such versions are set when building. */
bool imgsign_is_esp_image(const uint8_t *img, size_t len);

#endif
