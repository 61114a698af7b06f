/*
 * crypto_mbedtls.c - the hashing and random functions of the POSIX port:
 * MD5, SHA-256, HMAC-SHA256 and PBKDF2 from mbedTLS (what ESP-IDF ships),
 * random bytes from the kernel's CSPRNG (getrandom), and the signature checks of
 * signed images (ECDSA P-256, RSA-3072-PSS: ota/signature.h) from mbedTLS too.
 */
#include "ota_posix.h"

#include <errno.h>
#include <stdio.h>
#include <sys/random.h>

#include <string.h>

#include <mbedtls/ecdsa.h>
#include <mbedtls/ecp.h>
#include <mbedtls/md.h>
#include <mbedtls/md5.h>
#include <mbedtls/pk.h>
#include <mbedtls/pkcs5.h>
#include <mbedtls/rsa.h>
#include <mbedtls/sha256.h>

#include "ota/errors.h"
#include "ota/signature.h"

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

int ota_posix_verify_ecdsa_p256(void *user, const uint8_t *pubkey_xy, const uint8_t digest[32],
                                const uint8_t *sig_rs)
{
    (void)user;
    mbedtls_ecp_group grp;
    mbedtls_ecp_point q;
    mbedtls_mpi r, s;
    mbedtls_ecp_group_init(&grp);
    mbedtls_ecp_point_init(&q);
    mbedtls_mpi_init(&r);
    mbedtls_mpi_init(&s);
    int rc = OTA_ERR_CRYPTO;
    uint8_t point[65];
    point[0] = 0x04; /* uncompressed */
    memcpy(point + 1, pubkey_xy, 64);
    if (mbedtls_ecp_group_load(&grp, MBEDTLS_ECP_DP_SECP256R1) != 0)
        goto out;
    if (mbedtls_ecp_point_read_binary(&grp, &q, point, sizeof point) != 0 ||
        mbedtls_ecp_check_pubkey(&grp, &q) != 0) {
        rc = OTA_ERR_BAD_SIGNATURE; /* no point of the curve */
        goto out;
    }
    if (mbedtls_mpi_read_binary(&r, sig_rs, 32) != 0 ||
        mbedtls_mpi_read_binary(&s, sig_rs + 32, 32) != 0)
        goto out;
    /* r, s outside [1, n-1] fail here as well */
    int v = mbedtls_ecdsa_verify(&grp, digest, 32, &q, &r, &s);
    rc = v == 0 ? OTA_OK : v == MBEDTLS_ERR_ECP_ALLOC_FAILED ? OTA_ERR_CRYPTO : OTA_ERR_BAD_SIGNATURE;
out:
    mbedtls_mpi_free(&s);
    mbedtls_mpi_free(&r);
    mbedtls_ecp_point_free(&q);
    mbedtls_ecp_group_free(&grp);
    return rc;
}

int ota_posix_verify_rsa3072_pss(void *user, const uint8_t *n, uint32_t e, const uint8_t digest[32],
                                 const uint8_t *sig)
{
    (void)user;
    mbedtls_rsa_context rsa;
    mbedtls_mpi mn, me;
    mbedtls_rsa_init(&rsa, MBEDTLS_RSA_PKCS_V21, MBEDTLS_MD_SHA256);
    mbedtls_mpi_init(&mn);
    mbedtls_mpi_init(&me);
    int rc = OTA_ERR_CRYPTO;
    const uint8_t eb[4] = {(uint8_t)(e >> 24), (uint8_t)(e >> 16), (uint8_t)(e >> 8), (uint8_t)e};
    if (mbedtls_mpi_read_binary(&mn, n, 384) != 0 || mbedtls_mpi_read_binary(&me, eb, sizeof eb) != 0)
        goto out;
    if (mbedtls_rsa_import(&rsa, &mn, NULL, NULL, NULL, &me) != 0 || mbedtls_rsa_complete(&rsa) != 0 ||
        mbedtls_rsa_check_pubkey(&rsa) != 0 || mbedtls_rsa_get_len(&rsa) != 384) {
        rc = OTA_ERR_BAD_SIGNATURE; /* not a 3072-bit RSA public key */
        goto out;
    }
    /* PSS with SHA-256 as the hash and in MGF1, and exactly the 32-byte salt that
     * espsecure uses and ESP's ROM expects (not MBEDTLS_RSA_SALT_LEN_ANY) */
    int v = mbedtls_rsa_rsassa_pss_verify_ext(&rsa, NULL, NULL, MBEDTLS_RSA_PUBLIC, MBEDTLS_MD_SHA256,
                                              32, digest, MBEDTLS_MD_SHA256, 32, sig);
    rc = v == 0 ? OTA_OK : OTA_ERR_BAD_SIGNATURE;
out:
    mbedtls_mpi_free(&me);
    mbedtls_mpi_free(&mn);
    mbedtls_rsa_free(&rsa);
    return rc;
}

const ota_crypto_port_t ota_posix_crypto = {
    .hash_start = ota_posix_hash_start,
    .hash_update = ota_posix_hash_update,
    .hash_finish = ota_posix_hash_finish,
    .hmac_sha256 = ota_posix_hmac_sha256,
    .random = ota_posix_random,
    .ctx = NULL,
    .verify_ecdsa_p256 = ota_posix_verify_ecdsa_p256,
    .verify_rsa3072_pss = ota_posix_verify_rsa3072_pss,
};

#if OTA_CFG_ENABLE_SIGNED
int ota_posix_key_digest_from_pem(const char *path, uint8_t out[OTA_SIG_DIGEST_LEN], char *err,
                                  size_t err_cap)
{
    /* mbedTLS says "file I/O error" for all of these: find out what it was first */
    FILE *f = fopen(path, "rb");
    if (f == NULL) {
        snprintf(err, err_cap, "%s", strerror(errno));
        return -1;
    }
    fclose(f);
    mbedtls_pk_context pk;
    mbedtls_pk_init(&pk);
    int rc = -1;
    int prc = mbedtls_pk_parse_public_keyfile(&pk, path);
    if (prc != 0) {
        mbedtls_pk_free(&pk);
        mbedtls_pk_init(&pk);
        prc = mbedtls_pk_parse_keyfile(&pk, path, NULL);
    }
    if (prc == MBEDTLS_ERR_PK_PASSWORD_REQUIRED || prc == MBEDTLS_ERR_PK_PASSWORD_MISMATCH) {
        snprintf(err, err_cap, "an encrypted private key: give its public key instead "
                               "(openssl pkey -in KEY -pubout -out KEY.pub.pem)");
        goto out;
    }
    if (prc != 0) {
        snprintf(err, err_cap, "not a PEM public or private key that mbedTLS can read");
        goto out;
    }
    ota_sig_key_t key;
    uint8_t data[OTA_SIG_RSA_LEN];
    memset(&key, 0, sizeof key);
    if (mbedtls_pk_get_type(&pk) == MBEDTLS_PK_RSA) {
        mbedtls_rsa_context *rsa = mbedtls_pk_rsa(pk);
        mbedtls_mpi n, e;
        mbedtls_mpi_init(&n);
        mbedtls_mpi_init(&e);
        bool ok = mbedtls_rsa_export(rsa, &n, NULL, NULL, NULL, &e) == 0 &&
                  mbedtls_mpi_bitlen(&n) == 3072 && mbedtls_mpi_bitlen(&e) <= 32 &&
                  mbedtls_mpi_write_binary(&n, data, OTA_SIG_RSA_LEN) == 0;
        uint8_t eb[4] = {0};
        ok = ok && mbedtls_mpi_write_binary(&e, eb, sizeof eb) == 0;
        size_t bits = mbedtls_mpi_bitlen(&n);
        mbedtls_mpi_free(&e);
        mbedtls_mpi_free(&n);
        if (!ok) {
            snprintf(err, err_cap, "an RSA key of %zu bits: Secure Boot V2 signs with RSA-3072",
                     bits);
            goto out;
        }
        key.scheme = OTA_SIG_SCHEME_RSA3072;
        key.rsa_e = (uint32_t)eb[0] << 24 | (uint32_t)eb[1] << 16 | (uint32_t)eb[2] << 8 | eb[3];
    } else if (mbedtls_pk_can_do(&pk, MBEDTLS_PK_ECKEY)) {
        const mbedtls_ecp_keypair *ec = mbedtls_pk_ec(pk);
        if (ec->grp.id != MBEDTLS_ECP_DP_SECP256R1) {
            const mbedtls_ecp_curve_info *ci = mbedtls_ecp_curve_info_from_grp_id(ec->grp.id);
            snprintf(err, err_cap, "an EC key on curve %s: Secure Boot V2 ECDSA keys are P-256 (ecdsa256)",
                     ci != NULL ? ci->name : "(unknown)");
            goto out;
        }
        if (mbedtls_mpi_write_binary(&ec->Q.X, data, 32) != 0 ||
            mbedtls_mpi_write_binary(&ec->Q.Y, data + 32, 32) != 0) {
            snprintf(err, err_cap, "an EC key without a valid public point");
            goto out;
        }
        key.scheme = OTA_SIG_SCHEME_ECDSA_P256;
    } else {
        snprintf(err, err_cap, "a %s key: Secure Boot V2 keys are RSA-3072 or ECDSA P-256",
                 mbedtls_pk_get_name(&pk));
        goto out;
    }
    key.data = data;
    if (ota_sig_key_digest(&ota_posix_crypto, &key, out) != OTA_OK) {
        snprintf(err, err_cap, "its key digest cannot be computed (not a valid key)");
        goto out;
    }
    rc = 0;
out:
    mbedtls_pk_free(&pk);
    return rc;
}
#endif
