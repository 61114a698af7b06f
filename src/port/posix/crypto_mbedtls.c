/*
 * crypto_mbedtls.c - the hashing and random functions of the POSIX port:
 * MD5, SHA-256, HMAC-SHA256 and PBKDF2 from mbedTLS (what ESP-IDF ships),
 * random bytes from the kernel's CSPRNG (getrandom).
 */
#include "ota_posix.h"

#include <errno.h>
#include <sys/random.h>

#include <mbedtls/md.h>
#include <mbedtls/md5.h>
#include <mbedtls/pkcs5.h>
#include <mbedtls/sha256.h>

#include "ota/errors.h"

typedef struct {
    ota_hash_alg_t alg;
    union {
        mbedtls_md5_context md5;
        mbedtls_sha256_context sha256;
    } c;
} posix_hash_t;

_Static_assert(sizeof(posix_hash_t) <= sizeof(ota_hash_ctx_t),
               "OTA_CFG_HASH_CTX_SIZE is too small for the mbedTLS hash contexts");

int ota_posix_hash_start(void *user, ota_hash_ctx_t *ctx, ota_hash_alg_t alg)
{
    (void)user;
    posix_hash_t *h = (posix_hash_t *)ctx->u.bytes;
    h->alg = alg;
    switch (alg) {
    case OTA_HASH_MD5:
        mbedtls_md5_init(&h->c.md5);
        return mbedtls_md5_starts_ret(&h->c.md5) == 0 ? OTA_OK : OTA_ERR_CRYPTO;
    case OTA_HASH_SHA256:
        mbedtls_sha256_init(&h->c.sha256);
        return mbedtls_sha256_starts_ret(&h->c.sha256, 0) == 0 ? OTA_OK : OTA_ERR_CRYPTO;
    }
    return OTA_ERR_UNSUPPORTED;
}

int ota_posix_hash_update(void *user, ota_hash_ctx_t *ctx, const uint8_t *data, size_t len)
{
    (void)user;
    posix_hash_t *h = (posix_hash_t *)ctx->u.bytes;
    int rc = -1;
    if (h->alg == OTA_HASH_MD5)
        rc = mbedtls_md5_update_ret(&h->c.md5, data, len);
    else if (h->alg == OTA_HASH_SHA256)
        rc = mbedtls_sha256_update_ret(&h->c.sha256, data, len);
    return rc == 0 ? OTA_OK : OTA_ERR_CRYPTO;
}

int ota_posix_hash_finish(void *user, ota_hash_ctx_t *ctx, uint8_t *out)
{
    (void)user;
    posix_hash_t *h = (posix_hash_t *)ctx->u.bytes;
    int rc = -1;
    if (h->alg == OTA_HASH_MD5) {
        rc = mbedtls_md5_finish_ret(&h->c.md5, out);
        mbedtls_md5_free(&h->c.md5);
    } else if (h->alg == OTA_HASH_SHA256) {
        rc = mbedtls_sha256_finish_ret(&h->c.sha256, out);
        mbedtls_sha256_free(&h->c.sha256);
    }
    return rc == 0 ? OTA_OK : OTA_ERR_CRYPTO;
}

int ota_posix_random(void *user, uint8_t *buf, size_t len)
{
    (void)user;
    while (len > 0) {
        ssize_t n = getrandom(buf, len, 0);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            return OTA_ERR_CRYPTO;
        }
        buf += n;
        len -= (size_t)n;
    }
    return OTA_OK;
}

int ota_posix_hmac_sha256(void *user, const uint8_t *key, size_t key_len, const uint8_t *msg,
                          size_t msg_len, uint8_t *out)
{
    (void)user;
    const mbedtls_md_info_t *md = mbedtls_md_info_from_type(MBEDTLS_MD_SHA256);
    return mbedtls_md_hmac(md, key, key_len, msg, msg_len, out) == 0 ? OTA_OK : OTA_ERR_CRYPTO;
}

int ota_posix_pbkdf2_sha256(const char *password, size_t password_len, const uint8_t *salt,
                            size_t salt_len, uint32_t iterations, uint8_t *out, size_t out_len)
{
    mbedtls_md_context_t md;
    mbedtls_md_init(&md);
    int rc = mbedtls_md_setup(&md, mbedtls_md_info_from_type(MBEDTLS_MD_SHA256), 1);
    if (rc == 0)
        rc = mbedtls_pkcs5_pbkdf2_hmac(&md, (const unsigned char *)password, password_len, salt,
                                       salt_len, iterations, (uint32_t)out_len, out);
    mbedtls_md_free(&md);
    return rc == 0 ? OTA_OK : OTA_ERR_CRYPTO;
}

const ota_crypto_port_t ota_posix_crypto = {
    .hash_start = ota_posix_hash_start,
    .hash_update = ota_posix_hash_update,
    .hash_finish = ota_posix_hash_finish,
    .hmac_sha256 = ota_posix_hmac_sha256,
    .random = ota_posix_random,
    .ctx = NULL,
};
