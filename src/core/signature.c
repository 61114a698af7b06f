/*
 * signature.c - ESP-IDF Secure Boot V2 signature sectors (see ota/signature.h and
 * docs/protocol.md#signed-images): block parsing, the key digest, trust, and the
 * byte-order conversions around the crypto table's verify hooks.
 */
#include "ota/signature.h"

#if OTA_CFG_ENABLE_SIGNED

#include <string.h>

#define RSA_WORDS (OTA_SIG_RSA_LEN / 4u) /* 96 32-bit words: 3072 bits */
#define ECDSA_INT 32u                    /* one P-256 integer */

static uint32_t le32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static void put_le32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
    p[2] = (uint8_t)(v >> 16);
    p[3] = (uint8_t)(v >> 24);
}

/* dst = src with its len bytes in the opposite order (little- <-> big-endian) */
static void reversed(uint8_t *dst, const uint8_t *src, size_t len)
{
    for (size_t i = 0; i < len; i++)
        dst[i] = src[len - 1 - i];
}

/* CRC-32 of IEEE 802.3 as zlib's crc32() and ESP's esp_rom_crc32_le(0, ...) compute
 * it: reflected polynomial 0xEDB88320, register preset to all ones, result inverted.
 * Bitwise: 1196 bytes per block do not need a table. */
static uint32_t crc32_ieee(const uint8_t *p, size_t len)
{
    uint32_t c = 0xFFFFFFFFu;
    for (size_t i = 0; i < len; i++) {
        c ^= p[i];
        for (int k = 0; k < 8; k++)
            c = (c >> 1) ^ (0xEDB88320u & (0u - (c & 1u)));
    }
    return ~c;
}

int ota_sig_block_parse(const uint8_t blk[OTA_SIG_BLOCK_SIZE], ota_sig_block_t *out)
{
    if (blk == NULL || out == NULL)
        return OTA_ERR_INVALID_ARG;
    memset(out, 0, sizeof *out);
    if (blk[OTA_SIG_OFF_MAGIC] != OTA_SIG_MAGIC)
        return OTA_ERR_NOT_SIGNED;
    if (crc32_ieee(blk, OTA_SIG_CRC_LEN) != le32(blk + OTA_SIG_OFF_CRC))
        return OTA_ERR_BAD_SIGNATURE;
    switch (blk[OTA_SIG_OFF_VERSION]) {
    case OTA_SIG_VERSION_RSA:
        out->scheme = OTA_SIG_SCHEME_RSA3072;
        out->key_len = OTA_SIG_RSA_KEY_LEN;
        out->signature = blk + OTA_SIG_RSA_OFF_SIG;
        out->signature_len = OTA_SIG_RSA_LEN;
        break;
    case OTA_SIG_VERSION_ECDSA:
        /* byte 2 names the hash (0 SHA-256, 1 SHA-384 with a longer layout) */
        if (blk[OTA_SIG_OFF_RESERVED] != 0 || blk[OTA_SIG_ECDSA_OFF_CURVE] != OTA_SIG_ECDSA_CURVE_P256)
            return OTA_ERR_UNSUPPORTED;
        out->scheme = OTA_SIG_SCHEME_ECDSA_P256;
        out->key_len = OTA_SIG_ECDSA_KEY_LEN;
        out->signature = blk + OTA_SIG_ECDSA_OFF_SIG;
        out->signature_len = OTA_SIG_ECDSA_LEN;
        break;
    default:
        return OTA_ERR_UNSUPPORTED;
    }
    out->image_digest = blk + OTA_SIG_OFF_DIGEST;
    out->key = blk + OTA_SIG_OFF_KEY;
    return OTA_OK;
}

static bool has_sha256(const ota_crypto_port_t *c)
{
    return c != NULL && c->hash_start != NULL && c->hash_update != NULL && c->hash_finish != NULL;
}

/* ---- the key digest ---- */

/* Feed len bytes of src to the hash in the opposite byte order, through a small
 * buffer (big-endian key -> the little-endian block form). */
static int hash_reversed(const ota_crypto_port_t *c, ota_hash_ctx_t *h, const uint8_t *src,
                         size_t len)
{
    uint8_t chunk[32];
    while (len > 0) {
        size_t n = len < sizeof chunk ? len : sizeof chunk;
        reversed(chunk, src + len - n, n); /* the last n bytes, last one first */
        int rc = c->hash_update(c->ctx, h, chunk, n);
        if (rc != OTA_OK)
            return rc;
        len -= n;
    }
    return OTA_OK;
}

/* The Montgomery constants of a 3072-bit modulus (words least significant first,
 * n odd with its top bit set): rinv = 2^6144 mod n, *mdash = -n^-1 mod 2^32. */
static void rsa_constants(const uint32_t n[RSA_WORDS], uint32_t rinv[RSA_WORDS], uint32_t *mdash)
{
    /* 2^3071 < n (top bit set, n odd), then 3073 doublings mod n */
    memset(rinv, 0, RSA_WORDS * sizeof rinv[0]);
    rinv[RSA_WORDS - 1] = 0x80000000u;
    for (unsigned step = 0; step < 6144u - 3071u; step++) {
        uint32_t carry = rinv[RSA_WORDS - 1] >> 31;
        for (unsigned i = RSA_WORDS - 1; i > 0; i--)
            rinv[i] = rinv[i] << 1 | rinv[i - 1] >> 31;
        rinv[0] <<= 1;
        bool ge = carry != 0;
        if (!ge) {
            ge = true; /* equal counts as >= */
            for (unsigned i = RSA_WORDS; i-- > 0;) {
                if (rinv[i] != n[i]) {
                    ge = rinv[i] > n[i];
                    break;
                }
            }
        }
        if (ge) { /* 2r - n < n: one subtraction, the lost carry cancels */
            uint32_t borrow = 0;
            for (unsigned i = 0; i < RSA_WORDS; i++) {
                uint32_t a = rinv[i], d = a - n[i] - borrow;
                borrow = (a < n[i] || (a == n[i] && borrow)) ? 1u : 0u;
                rinv[i] = d;
            }
        }
    }
    /* Newton's iteration for the inverse mod 2^32: x*n0 = 1 (mod 8) for any odd
     * n0 with x = n0, and each step doubles the correct low bits (3, 6, 12, 24, 48) */
    uint32_t n0 = n[0], x = n0;
    for (int i = 0; i < 4; i++)
        x *= 2u - n0 * x;
    *mdash = 0u - x;
}

static int rsa_key_digest(const ota_crypto_port_t *c, const ota_sig_key_t *key, uint8_t *out)
{
    const uint8_t *nb = key->data; /* big-endian */
    if ((nb[0] & 0x80u) == 0 || (nb[OTA_SIG_RSA_LEN - 1] & 1u) == 0)
        return OTA_ERR_INVALID_ARG; /* not 3072 bits, or even: no RSA modulus */
    uint32_t n[RSA_WORDS], rinv[RSA_WORDS], mdash;
    for (unsigned i = 0; i < RSA_WORDS; i++) {
        const uint8_t *w = nb + OTA_SIG_RSA_LEN - 4u * (i + 1u);
        n[i] = (uint32_t)w[0] << 24 | (uint32_t)w[1] << 16 | (uint32_t)w[2] << 8 | w[3];
    }
    rsa_constants(n, rinv, &mdash);

    ota_hash_ctx_t h;
    uint8_t word[4];
    int rc = c->hash_start(c->ctx, &h, OTA_HASH_SHA256);
    if (rc == OTA_OK)
        rc = hash_reversed(c, &h, nb, OTA_SIG_RSA_LEN); /* n, little-endian */
    if (rc == OTA_OK) {
        put_le32(word, key->rsa_e);
        rc = c->hash_update(c->ctx, &h, word, sizeof word);
    }
    for (unsigned i = 0; rc == OTA_OK && i < RSA_WORDS; i++) { /* rinv, little-endian */
        put_le32(word, rinv[i]);
        rc = c->hash_update(c->ctx, &h, word, sizeof word);
    }
    if (rc == OTA_OK) {
        put_le32(word, mdash);
        rc = c->hash_update(c->ctx, &h, word, sizeof word);
    }
    if (rc == OTA_OK)
        rc = c->hash_finish(c->ctx, &h, out);
    return rc == OTA_OK ? OTA_OK : OTA_ERR_CRYPTO;
}

static int ecdsa_key_digest(const ota_crypto_port_t *c, const ota_sig_key_t *key, uint8_t *out)
{
    ota_hash_ctx_t h;
    const uint8_t curve = OTA_SIG_ECDSA_CURVE_P256;
    int rc = c->hash_start(c->ctx, &h, OTA_HASH_SHA256);
    if (rc == OTA_OK)
        rc = c->hash_update(c->ctx, &h, &curve, 1);
    if (rc == OTA_OK)
        rc = hash_reversed(c, &h, key->data, ECDSA_INT); /* X, little-endian */
    if (rc == OTA_OK)
        rc = hash_reversed(c, &h, key->data + ECDSA_INT, ECDSA_INT); /* Y */
    if (rc == OTA_OK)
        rc = c->hash_finish(c->ctx, &h, out);
    return rc == OTA_OK ? OTA_OK : OTA_ERR_CRYPTO;
}

int ota_sig_key_digest(const ota_crypto_port_t *crypto, const ota_sig_key_t *key,
                       uint8_t out[OTA_SIG_DIGEST_LEN])
{
    if (!has_sha256(crypto) || key == NULL || key->data == NULL || out == NULL)
        return OTA_ERR_INVALID_ARG;
    switch (key->scheme) {
    case OTA_SIG_SCHEME_RSA3072: return rsa_key_digest(crypto, key, out);
    case OTA_SIG_SCHEME_ECDSA_P256: return ecdsa_key_digest(crypto, key, out);
    default: return OTA_ERR_INVALID_ARG;
    }
}

/* ---- one sector ---- */

static int sha256(const ota_crypto_port_t *c, const uint8_t *p, size_t len, uint8_t *out)
{
    ota_hash_ctx_t h;
    int rc = c->hash_start(c->ctx, &h, OTA_HASH_SHA256);
    if (rc == OTA_OK)
        rc = c->hash_update(c->ctx, &h, p, len);
    if (rc == OTA_OK)
        rc = c->hash_finish(c->ctx, &h, out);
    return rc == OTA_OK ? OTA_OK : OTA_ERR_CRYPTO;
}

/* The index of the trusted key whose digest is key_digest, or -1 for none; *err is
 * set when a trusted key given in full cannot be digested (an invalid key). */
static int find_trusted(const ota_crypto_port_t *c, const ota_sig_trusted_t *trusted,
                        size_t n_trusted, ota_sig_scheme_t scheme, const uint8_t *key_digest,
                        int *err)
{
    *err = OTA_OK;
    for (size_t t = 0; t < n_trusted; t++) {
        const ota_sig_trusted_t *k = &trusted[t];
        if (k->digest != NULL) {
            if (memcmp(k->digest, key_digest, OTA_SIG_DIGEST_LEN) == 0)
                return (int)t;
        } else if (k->key.scheme == scheme) {
            uint8_t d[OTA_SIG_DIGEST_LEN];
            int rc = ota_sig_key_digest(c, &k->key, d);
            if (rc != OTA_OK) {
                *err = rc;
                return -1;
            }
            if (memcmp(d, key_digest, OTA_SIG_DIGEST_LEN) == 0)
                return (int)t;
        }
    }
    return -1;
}

/* The block's signature over digest, by the hook of its scheme, in the hooks'
 * big-endian forms. \return 0, OTA_ERR_BAD_SIGNATURE, OTA_ERR_UNSUPPORTED (no hook),
 * OTA_ERR_CRYPTO. */
static int check_signature(const ota_crypto_port_t *c, const ota_sig_block_t *b,
                           const uint8_t *digest)
{
    int rc;
    if (b->scheme == OTA_SIG_SCHEME_RSA3072) {
        if (c->verify_rsa3072_pss == NULL)
            return OTA_ERR_UNSUPPORTED;
        uint8_t n[OTA_SIG_RSA_LEN], sig[OTA_SIG_RSA_LEN];
        reversed(n, b->key, OTA_SIG_RSA_LEN);
        reversed(sig, b->signature, OTA_SIG_RSA_LEN);
        uint32_t e = le32(b->key + (OTA_SIG_RSA_OFF_E - OTA_SIG_OFF_KEY));
        rc = c->verify_rsa3072_pss(c->ctx, n, e, digest, sig);
    } else {
        if (c->verify_ecdsa_p256 == NULL)
            return OTA_ERR_UNSUPPORTED;
        const uint8_t *point = b->key + (OTA_SIG_ECDSA_OFF_POINT - OTA_SIG_OFF_KEY);
        uint8_t xy[2 * ECDSA_INT], rs[2 * ECDSA_INT];
        reversed(xy, point, ECDSA_INT);
        reversed(xy + ECDSA_INT, point + ECDSA_INT, ECDSA_INT);
        reversed(rs, b->signature, ECDSA_INT);
        reversed(rs + ECDSA_INT, b->signature + ECDSA_INT, ECDSA_INT);
        rc = c->verify_ecdsa_p256(c->ctx, xy, digest, rs);
    }
    if (rc == OTA_OK || rc == OTA_ERR_BAD_SIGNATURE)
        return rc;
    return rc == OTA_ERR_UNSUPPORTED ? OTA_ERR_UNSUPPORTED : OTA_ERR_CRYPTO;
}

int ota_sig_verify_sector(const ota_crypto_port_t *crypto, const uint8_t *sector,
                          size_t sector_len, const uint8_t image_sha256[OTA_SIG_DIGEST_LEN],
                          const ota_sig_trusted_t *trusted, size_t n_trusted,
                          ota_sig_result_t *res)
{
    ota_sig_result_t scratch;
    if (res == NULL)
        res = &scratch;
    memset(res, 0, sizeof *res); /* OTA_SIG_ABSENT, OTA_SIG_SCHEME_NONE */
    res->valid_block = -1;
    res->trusted = -1;
    if (!has_sha256(crypto) || sector == NULL || image_sha256 == NULL ||
        (trusted == NULL && n_trusted > 0))
        return OTA_ERR_INVALID_ARG;
    if (sector_len != OTA_SIG_SECTOR_SIZE)
        return OTA_ERR_NOT_SIGNED;

    bool bad = false, unsupported = false, untrusted = false;
    for (unsigned i = 0; i < OTA_SIG_MAX_BLOCKS; i++) {
        ota_sig_block_t b;
        int rc = ota_sig_block_parse(sector + i * OTA_SIG_BLOCK_SIZE, &b);
        if (rc == OTA_ERR_NOT_SIGNED)
            continue; /* OTA_SIG_ABSENT */
        if (rc == OTA_ERR_BAD_SIGNATURE) {
            res->status[i] = OTA_SIG_CORRUPT;
            bad = true;
            continue;
        }
        if (rc != OTA_OK) {
            res->status[i] = OTA_SIG_UNSUPPORTED;
            unsupported = true;
            continue;
        }
        res->scheme[i] = b.scheme;
        rc = sha256(crypto, b.key, b.key_len, res->key_digest[i]);
        if (rc != OTA_OK)
            return rc;
        int t = find_trusted(crypto, trusted, n_trusted, b.scheme, res->key_digest[i], &rc);
        if (rc != OTA_OK)
            return rc;
        if (t < 0) {
            res->status[i] = OTA_SIG_UNTRUSTED;
            untrusted = true;
            continue;
        }
        if (memcmp(b.image_digest, image_sha256, OTA_SIG_DIGEST_LEN) != 0) {
            res->status[i] = OTA_SIG_DIGEST_MISMATCH;
            bad = true;
            continue;
        }
        rc = check_signature(crypto, &b, image_sha256);
        if (rc == OTA_OK) {
            res->status[i] = OTA_SIG_VALID;
            res->valid_block = (int)i;
            res->trusted = t;
            for (unsigned j = i + 1; j < OTA_SIG_MAX_BLOCKS; j++)
                res->status[j] = OTA_SIG_NOT_CHECKED;
            return OTA_OK;
        }
        if (rc == OTA_ERR_UNSUPPORTED) {
            res->status[i] = OTA_SIG_UNSUPPORTED;
            unsupported = true;
        } else if (rc == OTA_ERR_BAD_SIGNATURE) {
            res->status[i] = OTA_SIG_BAD_SIGNATURE;
            bad = true;
        } else {
            return rc;
        }
    }
    if (bad)
        return OTA_ERR_BAD_SIGNATURE;
    if (unsupported)
        return OTA_ERR_UNSUPPORTED;
    return untrusted ? OTA_ERR_UNTRUSTED_KEY : OTA_ERR_NOT_SIGNED;
}

int ota_sig_split(uint32_t total_size, uint32_t *image_len)
{
    if (image_len == NULL)
        return OTA_ERR_INVALID_ARG;
    *image_len = 0;
    if (total_size % OTA_SIG_SECTOR_SIZE != 0 || total_size < 2u * OTA_SIG_SECTOR_SIZE)
        return OTA_ERR_NOT_SIGNED;
    *image_len = total_size - OTA_SIG_SECTOR_SIZE;
    return OTA_OK;
}

int ota_sig_verify_image(const ota_crypto_port_t *crypto, const uint8_t *image, size_t len,
                         const ota_sig_trusted_t *trusted, size_t n_trusted,
                         ota_sig_result_t *res)
{
    uint32_t image_len;
    uint8_t digest[OTA_SIG_DIGEST_LEN];
    if (res != NULL) {
        memset(res, 0, sizeof *res);
        res->valid_block = -1;
        res->trusted = -1;
    }
    if (!has_sha256(crypto) || image == NULL)
        return OTA_ERR_INVALID_ARG;
    if (len != (size_t)(uint32_t)len || ota_sig_split((uint32_t)len, &image_len) != OTA_OK)
        return OTA_ERR_NOT_SIGNED;
    int rc = sha256(crypto, image, image_len, digest);
    if (rc != OTA_OK)
        return rc;
    return ota_sig_verify_sector(crypto, image + image_len, OTA_SIG_SECTOR_SIZE, digest, trusted,
                                 n_trusted, res);
}

const char *ota_sig_status_name(ota_sig_status_t status)
{
    switch (status) {
    case OTA_SIG_ABSENT: return "no block";
    case OTA_SIG_CORRUPT: return "corrupt block (CRC)";
    case OTA_SIG_UNSUPPORTED: return "unsupported scheme";
    case OTA_SIG_UNTRUSTED: return "untrusted key";
    case OTA_SIG_DIGEST_MISMATCH: return "signed for another image";
    case OTA_SIG_BAD_SIGNATURE: return "bad signature";
    case OTA_SIG_VALID: return "valid";
    case OTA_SIG_NOT_CHECKED: return "not checked";
    }
    return "unknown";
}

#else  /* OTA_CFG_ENABLE_SIGNED */
typedef int ota_signature_compiled_out_t; /* ISO C wants something in a translation unit */
#endif /* OTA_CFG_ENABLE_SIGNED */
