/*
 * crypto_mbedtls.c - the hashing and random functions of the POSIX port:
 * MD5 and SHA-256 from mbedTLS (what ESP-IDF ships), random bytes from the
 * kernel's CSPRNG (getrandom).
 */
#include "ota_posix.h"

#include <errno.h>
#include <sys/random.h>

#include <mbedtls/md5.h>
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

void ota_posix_crypto_fill(ota_port_t *port)
{
    port->hash_start = ota_posix_hash_start;
    port->hash_update = ota_posix_hash_update;
    port->hash_finish = ota_posix_hash_finish;
    port->random = ota_posix_random;
}
