/*
 * imgsign.c - ESP-IDF Secure Boot V2 signatures on the host: keys, signing, inspecting.
 * The format is described in imgsign.h. mbedTLS 2.28 does the cryptography; random
 * numbers come from its CTR-DRBG seeded by its entropy collector (the kernel's
 * getrandom on Linux). ECDSA signatures are deterministic (RFC 6979).
 */
#include "imgsign.h"
#include "ota/app_desc.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <mbedtls/bignum.h>
#include <mbedtls/ctr_drbg.h>
#include <mbedtls/ecdsa.h>
#include <mbedtls/ecp.h>
#include <mbedtls/entropy.h>
#include <mbedtls/error.h>
#include <mbedtls/pk.h>
#include <mbedtls/platform_util.h>
#include <mbedtls/rsa.h>
#include <mbedtls/sha256.h>
#include <mbedtls/sha512.h>

/* ------------------------------------------------------------ the block layout */

#define OFF_MAGIC 0u
#define OFF_VERSION 1u
#define OFF_SHA_VERSION 2u /* ECDSA: 0 SHA-256, 1 SHA-384; RSA: reserved (0) */
#define OFF_RESERVED 3u
#define OFF_DIGEST 4u
/* RSA */
#define RSA_BYTES 384u
#define RSA_BITS 3072u
#define OFF_RSA_N 36u
#define OFF_RSA_E 420u
#define OFF_RSA_RINV 424u
#define OFF_RSA_MDASH 808u
#define OFF_RSA_SIG 812u
#define RSA_KEY_LEN (OFF_RSA_SIG - OFF_RSA_N) /* 776: what the key digest covers */
/* ECDSA with SHA-256 (P-192, P-256) */
#define OFF_EC_CURVE 36u
#define OFF_EC_POINT 37u
#define OFF_EC_SIG 101u
#define EC_KEY_LEN 65u /* curve id + 64-byte point */
/* ECDSA with SHA-384 (P-384) */
#define OFF_EC384_CURVE 52u
#define OFF_EC384_POINT 53u
#define OFF_EC384_SIG 149u
#define EC384_KEY_LEN 97u
/* the tail */
#define OFF_CRC 1196u
#define OFF_TAIL_PAD 1200u

#define SHA_VERSION_256 0u
#define SHA_VERSION_384 1u
#define CURVE_P192 1u
#define CURVE_P256 2u
#define CURVE_P384 3u
#define PSS_SALT_LEN 32

#define KEY_FILE_MAX (64u * 1024u)

_Static_assert(OFF_RSA_SIG + RSA_BYTES == IMGSIGN_CRC_LEN, "RSA block layout");
_Static_assert(IMGSIGN_CRC_LEN + 4u + 16u == IMGSIGN_BLOCK_SIZE, "block tail layout");
_Static_assert(IMGSIGN_MAX_BLOCKS * IMGSIGN_BLOCK_SIZE <= IMGSIGN_SECTOR_SIZE, "sector");

/* ------------------------------------------------------------ small helpers */

static void seterr(char *err, size_t cap, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void seterr(char *err, size_t cap, const char *fmt, ...)
{
    if (err == NULL || cap == 0)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, cap, fmt, ap);
    va_end(ap);
}

static const char *mbed_msg(int rc, char *buf, size_t cap)
{
    mbedtls_strerror(rc, buf, cap);
    return buf;
}

static uint32_t get_le32(const uint8_t *p)
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

/* CRC-32 as zlib's crc32() (reflected, polynomial 0xEDB88320, init and final xor
 * 0xFFFFFFFF): what espsecure writes and the ROM's esp_rom_crc32_le(0, ...) checks. */
static uint32_t crc32_ieee(const uint8_t *p, size_t n)
{
    uint32_t c = 0xFFFFFFFFu;
    for (size_t i = 0; i < n; i++) {
        c ^= p[i];
        for (int k = 0; k < 8; k++)
            c = (c >> 1) ^ (0xEDB88320u & (0u - (c & 1u)));
    }
    return c ^ 0xFFFFFFFFu;
}

static void reverse_copy(uint8_t *dst, const uint8_t *src, size_t n)
{
    for (size_t i = 0; i < n; i++)
        dst[i] = src[n - 1 - i];
}

static int sha256(const uint8_t *p, size_t n, uint8_t out[32])
{
    return mbedtls_sha256_ret(p, n, out, 0) == 0 ? 0 : -1;
}

static int sha384(const uint8_t *p, size_t n, uint8_t out[48])
{
    uint8_t full[64]; /* mbedTLS's prototype asks for room for SHA-512 */
    if (mbedtls_sha512_ret(p, n, full, 1) != 0)
        return -1;
    memcpy(out, full, 48);
    return 0;
}

const char *imgsign_scheme_name(imgsign_scheme_t scheme)
{
    switch (scheme) {
    case IMGSIGN_SCHEME_RSA3072:
        return "rsa3072";
    case IMGSIGN_SCHEME_ECDSA256:
        return "ecdsa256";
    case IMGSIGN_SCHEME_ECDSA192:
        return "ecdsa192";
    case IMGSIGN_SCHEME_ECDSA384:
        return "ecdsa384";
    case IMGSIGN_SCHEME_UNKNOWN:
        break;
    }
    return "unknown";
}

static bool scheme_is_ecdsa(imgsign_scheme_t s)
{
    return s == IMGSIGN_SCHEME_ECDSA192 || s == IMGSIGN_SCHEME_ECDSA256 ||
           s == IMGSIGN_SCHEME_ECDSA384;
}

int imgsign_pub_path(const char *key_path, char *out, size_t cap)
{
    if (key_path == NULL || out == NULL || key_path[0] == '\0')
        return -1;
    size_t n = strlen(key_path);
    if (n >= 4 && strcmp(key_path + n - 4, ".pem") == 0)
        n -= 4;
    int w = snprintf(out, cap, "%.*s.pub.pem", (int)n, key_path);
    return w < 0 || (size_t)w >= cap ? -1 : 0;
}

/* ------------------------------------------------------------ random numbers */

typedef struct rng {
    mbedtls_entropy_context entropy;
    mbedtls_ctr_drbg_context drbg;
} rng_t;

static int rng_init(rng_t *r, char *err, size_t cap)
{
    static const char pers[] = "ota imgsign";
    mbedtls_entropy_init(&r->entropy);
    mbedtls_ctr_drbg_init(&r->drbg);
    int rc = mbedtls_ctr_drbg_seed(&r->drbg, mbedtls_entropy_func, &r->entropy,
                                   (const unsigned char *)pers, sizeof pers - 1);
    if (rc != 0) {
        char m[96];
        seterr(err, cap, "cannot seed the random number generator: %s", mbed_msg(rc, m, sizeof m));
        return -1;
    }
    return 0;
}

static void rng_free(rng_t *r)
{
    mbedtls_ctr_drbg_free(&r->drbg);
    mbedtls_entropy_free(&r->entropy);
}

/* ------------------------------------------------------------ keys */

/* Read a whole key file into a NUL-terminated buffer (mbedTLS wants the NUL in the
 * length for PEM). */
static int read_key_file(const char *path, unsigned char **buf, size_t *len, char *err,
                         size_t cap)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        seterr(err, cap, "cannot open key file %s: %s", path, strerror(errno));
        return -1;
    }
    struct stat st;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        seterr(err, cap, "key file %s is not a regular file", path);
        close(fd);
        return -1;
    }
    if (st.st_size <= 0 || (unsigned long long)st.st_size > KEY_FILE_MAX) {
        seterr(err, cap, "key file %s is %s", path,
               st.st_size <= 0 ? "empty" : "too large to be a PEM key (over 64 KiB)");
        close(fd);
        return -1;
    }
    size_t n = (size_t)st.st_size;
    unsigned char *b = malloc(n + 1);
    if (b == NULL) {
        seterr(err, cap, "out of memory");
        close(fd);
        return -1;
    }
    size_t got = 0;
    while (got < n) {
        ssize_t r = read(fd, b + got, n - got);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0) {
            seterr(err, cap, "cannot read key file %s: %s", path,
                   r < 0 ? strerror(errno) : "it shrank while being read");
            mbedtls_platform_zeroize(b, n + 1);
            free(b);
            close(fd);
            return -1;
        }
        got += (size_t)r;
    }
    close(fd);
    b[n] = '\0';
    *buf = b;
    *len = n + 1;
    return 0;
}

static void free_key_buf(unsigned char *buf, size_t len)
{
    if (buf != NULL) {
        mbedtls_platform_zeroize(buf, len);
        free(buf);
    }
}

static const char *curve_name(mbedtls_ecp_group_id id)
{
    switch (id) {
    case MBEDTLS_ECP_DP_SECP192R1:
        return "P-192";
    case MBEDTLS_ECP_DP_SECP224R1:
        return "P-224";
    case MBEDTLS_ECP_DP_SECP256R1:
        return "P-256";
    case MBEDTLS_ECP_DP_SECP384R1:
        return "P-384";
    case MBEDTLS_ECP_DP_SECP521R1:
        return "P-521";
    default:
        break;
    }
    const mbedtls_ecp_curve_info *ci = mbedtls_ecp_curve_info_from_grp_id(id);
    return ci != NULL ? ci->name : "unknown-curve";
}

/* The key's scheme, or a message saying why it is not one we sign with. */
static imgsign_scheme_t check_key_type(const mbedtls_pk_context *pk, const char *path,
                                       char *err, size_t cap)
{
    mbedtls_pk_type_t t = mbedtls_pk_get_type(pk);
    if (t == MBEDTLS_PK_RSA) {
        size_t bits = mbedtls_pk_get_bitlen(pk);
        if (bits != RSA_BITS) {
            seterr(err, cap, "%s is an RSA-%zu key; rsa3072 needs 3072 bits", path, bits);
            return IMGSIGN_SCHEME_UNKNOWN;
        }
        const mbedtls_rsa_context *rsa = mbedtls_pk_rsa(*pk);
        if (mbedtls_mpi_bitlen(&rsa->E) > 32) {
            seterr(err, cap, "%s has an RSA exponent over 32 bits; the signature block "
                             "holds a 32-bit exponent (65537 is usual)", path);
            return IMGSIGN_SCHEME_UNKNOWN;
        }
        return IMGSIGN_SCHEME_RSA3072;
    }
    if (t == MBEDTLS_PK_ECKEY || t == MBEDTLS_PK_ECKEY_DH || t == MBEDTLS_PK_ECDSA) {
        mbedtls_ecp_group_id id = mbedtls_pk_ec(*pk)->grp.id;
        if (id != MBEDTLS_ECP_DP_SECP256R1) {
            seterr(err, cap, "%s is an ECDSA %s key; ecdsa256 needs a P-256 key "
                             "(prime256v1, secp256r1)", path, curve_name(id));
            return IMGSIGN_SCHEME_UNKNOWN;
        }
        return IMGSIGN_SCHEME_ECDSA256;
    }
    seterr(err, cap, "%s is a %s key; Secure Boot V2 signs with rsa3072 or ecdsa256", path,
           mbedtls_pk_get_name(pk));
    return IMGSIGN_SCHEME_UNKNOWN;
}

/* Load a key file. want_private: only a private key will do (signing); otherwise a
 * public key is accepted too. \return the scheme, or UNKNOWN with err set. */
static imgsign_scheme_t load_key(const char *path, bool want_private, mbedtls_pk_context *pk,
                                 char *err, size_t cap)
{
    unsigned char *buf = NULL;
    size_t len = 0;
    if (read_key_file(path, &buf, &len, err, cap) != 0)
        return IMGSIGN_SCHEME_UNKNOWN;

    int rc = mbedtls_pk_parse_key(pk, buf, len, NULL, 0);
    if (rc != 0) {
        mbedtls_pk_free(pk);
        mbedtls_pk_init(pk);
        bool encrypted = strstr((const char *)buf, "ENCRYPTED") != NULL;
        int rc_pub = mbedtls_pk_parse_public_key(pk, buf, len);
        char m[128];
        if (rc_pub == 0 && want_private) {
            seterr(err, cap, "%s is a public key; signing needs the private key", path);
        } else if (rc_pub != 0) {
            mbedtls_pk_free(pk);
            mbedtls_pk_init(pk);
            if (encrypted || rc == MBEDTLS_ERR_PK_PASSWORD_REQUIRED)
                seterr(err, cap, "%s is encrypted; use an unencrypted key "
                                 "(openssl pkey -in %s -out PLAIN.pem)", path, path);
            else if (rc == MBEDTLS_ERR_PK_UNKNOWN_PK_ALG)
                seterr(err, cap, "%s is neither an RSA nor an EC key (Ed25519?); Secure "
                                 "Boot V2 signs with rsa3072 or ecdsa256", path);
            else if (strstr((const char *)buf, "-----BEGIN") == NULL)
                seterr(err, cap, "%s is not a PEM key file", path);
            else
                seterr(err, cap, "%s is not a key mbedTLS can read: %s", path,
                       mbed_msg(rc, m, sizeof m));
        }
        if (want_private || rc_pub != 0) {
            free_key_buf(buf, len);
            return IMGSIGN_SCHEME_UNKNOWN;
        }
    }
    free_key_buf(buf, len);
    return check_key_type(pk, path, err, cap);
}

/* ------------------------------------------------------------ key material */

/* M' = -n^-1 mod 2^32 for odd n0 (the low word of n): Newton's iteration doubles the
 * correct low bits each step, from 3 (n0 * n0 == 1 mod 8 for odd n0). */
static uint32_t mont_mdash(uint32_t n0)
{
    uint32_t x = n0;
    for (int i = 0; i < 5; i++)
        x *= 2u - n0 * x;
    return 0u - x;
}

/* Write n, e, R^2 mod n and M' (little-endian) at block + OFF_RSA_N. */
static int rsa_key_material(const mbedtls_mpi *N, const mbedtls_mpi *E, uint8_t *block)
{
    int rc = -1;
    mbedtls_mpi rr;
    mbedtls_mpi_init(&rr);
    uint8_t eb[4];
    if (mbedtls_mpi_write_binary_le(E, eb, sizeof eb) != 0)
        goto out;
    if (mbedtls_mpi_write_binary_le(N, block + OFF_RSA_N, RSA_BYTES) != 0)
        goto out;
    memcpy(block + OFF_RSA_E, eb, 4);
    if (mbedtls_mpi_lset(&rr, 1) != 0 || mbedtls_mpi_shift_l(&rr, 2 * RSA_BITS) != 0 ||
        mbedtls_mpi_mod_mpi(&rr, &rr, N) != 0 ||
        mbedtls_mpi_write_binary_le(&rr, block + OFF_RSA_RINV, RSA_BYTES) != 0)
        goto out;
    put_le32(block + OFF_RSA_MDASH, mont_mdash(get_le32(block + OFF_RSA_N)));
    rc = 0;
out:
    mbedtls_mpi_free(&rr);
    return rc;
}

/* Write curve id and point (X, Y little-endian, width bytes each) at block + off. */
static int ec_key_material(const mbedtls_ecp_keypair *ec, uint8_t curve_id, size_t width,
                           uint8_t *block, size_t off)
{
    uint8_t be[48];
    block[off] = curve_id;
    if (mbedtls_mpi_write_binary(&ec->Q.X, be, width) != 0)
        return -1;
    reverse_copy(block + off + 1, be, width);
    if (mbedtls_mpi_write_binary(&ec->Q.Y, be, width) != 0)
        return -1;
    reverse_copy(block + off + 1 + width, be, width);
    return 0;
}

/* The key digest of a block whose version and fields are known to be one of ours. */
static int block_key_digest(const uint8_t *block, uint8_t out[32])
{
    if (block[OFF_VERSION] == IMGSIGN_VERSION_RSA)
        return sha256(block + OFF_RSA_N, RSA_KEY_LEN, out);
    if (block[OFF_SHA_VERSION] == SHA_VERSION_384)
        return sha256(block + OFF_EC384_CURVE, EC384_KEY_LEN, out);
    return sha256(block + OFF_EC_CURVE, EC_KEY_LEN, out);
}

/* Fill a block's key fields (everything the key digest covers) from a loaded key. */
static int key_fields(const mbedtls_pk_context *pk, imgsign_scheme_t scheme, uint8_t *block)
{
    if (scheme == IMGSIGN_SCHEME_RSA3072) {
        const mbedtls_rsa_context *rsa = mbedtls_pk_rsa(*pk);
        block[OFF_VERSION] = IMGSIGN_VERSION_RSA;
        return rsa_key_material(&rsa->N, &rsa->E, block);
    }
    block[OFF_VERSION] = IMGSIGN_VERSION_ECDSA;
    block[OFF_SHA_VERSION] = SHA_VERSION_256;
    return ec_key_material(mbedtls_pk_ec(*pk), CURVE_P256, 32, block, OFF_EC_CURVE);
}

int imgsign_key_digest(const char *key_path, uint8_t digest[IMGSIGN_DIGEST_LEN],
                       imgsign_scheme_t *scheme, char *err, size_t cap)
{
    if (key_path == NULL || digest == NULL) {
        seterr(err, cap, "no key file given");
        return -1;
    }
    mbedtls_pk_context pk;
    mbedtls_pk_init(&pk);
    int rc = -1;
    uint8_t block[IMGSIGN_BLOCK_SIZE];
    memset(block, 0, sizeof block);
    imgsign_scheme_t s = load_key(key_path, false, &pk, err, cap);
    if (s == IMGSIGN_SCHEME_UNKNOWN)
        goto out;
    if (key_fields(&pk, s, block) != 0 || block_key_digest(block, digest) != 0) {
        seterr(err, cap, "%s: cannot compute the key digest", key_path);
        goto out;
    }
    if (scheme != NULL)
        *scheme = s;
    rc = 0;
out:
    mbedtls_pk_free(&pk);
    return rc;
}

/* ------------------------------------------------------------ verifying one block */

/* Check a block that passed the structural test (magic, version, CRC): its key, its
 * signature over its stored digest, and its digest against the image's. */
static bool block_is_ecdsa384(const uint8_t *block)
{
    return block[OFF_VERSION] == IMGSIGN_VERSION_ECDSA &&
           block[OFF_SHA_VERSION] == SHA_VERSION_384;
}

/* The same, against a digest computed by the caller: actual is the SHA-256 of the
 * signed bytes, or their SHA-384 for an ECDSA P-384 block (NULL: that block cannot
 * match); data_len only goes into the message. */
static void verify_block_digest(const uint8_t *block, const uint8_t *actual, size_t data_len,
                                imgsign_block_info_t *bi)
{
    char m[96];
    memset(bi, 0, sizeof *bi);
    bi->version = block[OFF_VERSION];
    bool ecdsa384 = block_is_ecdsa384(block);
    bi->image_digest_len = ecdsa384 ? 48 : 32;
    memcpy(bi->image_digest, block + OFF_DIGEST, bi->image_digest_len);
    (void)block_key_digest(block, bi->key_digest);
    bi->digest_matches = actual != NULL &&
                         memcmp(actual, bi->image_digest, bi->image_digest_len) == 0;

    if (bi->version == IMGSIGN_VERSION_RSA) {
        bi->scheme = IMGSIGN_SCHEME_RSA3072;
        mbedtls_rsa_context rsa;
        mbedtls_mpi n, e;
        mbedtls_rsa_init(&rsa, MBEDTLS_RSA_PKCS_V21, MBEDTLS_MD_SHA256);
        mbedtls_mpi_init(&n);
        mbedtls_mpi_init(&e);
        uint8_t want[RSA_KEY_LEN];
        uint8_t sig[RSA_BYTES];
        memset(want, 0, sizeof want);
        int rc = mbedtls_mpi_read_binary_le(&n, block + OFF_RSA_N, RSA_BYTES);
        if (rc == 0)
            rc = mbedtls_mpi_read_binary_le(&e, block + OFF_RSA_E, 4);
        if (rc == 0 && mbedtls_mpi_bitlen(&n) != RSA_BITS) {
            snprintf(bi->problem, sizeof bi->problem, "the modulus has %zu bits, not 3072",
                     mbedtls_mpi_bitlen(&n));
            goto rsa_out;
        }
        if (rc == 0)
            rc = mbedtls_rsa_import(&rsa, &n, NULL, NULL, NULL, &e);
        if (rc == 0)
            rc = mbedtls_rsa_complete(&rsa);
        if (rc == 0)
            rc = mbedtls_rsa_check_pubkey(&rsa);
        if (rc != 0) {
            snprintf(bi->problem, sizeof bi->problem, "the public key is not valid: %s",
                     mbed_msg(rc, m, sizeof m));
            goto rsa_out;
        }
        /* the chip uses R^2 mod n and M' as stored: they must be those of n */
        uint8_t mat[IMGSIGN_BLOCK_SIZE];
        memset(mat, 0, sizeof mat);
        if (rsa_key_material(&n, &e, mat) == 0 &&
            memcmp(mat + OFF_RSA_N, block + OFF_RSA_N, RSA_KEY_LEN) == 0) {
            bi->key_valid = true;
        } else {
            snprintf(bi->problem, sizeof bi->problem,
                     "the precomputed R^2 mod n or M' do not belong to the modulus");
        }
        reverse_copy(sig, block + OFF_RSA_SIG, RSA_BYTES);
        rc = mbedtls_rsa_rsassa_pss_verify_ext(&rsa, NULL, NULL, MBEDTLS_RSA_PUBLIC,
                                               MBEDTLS_MD_SHA256, 32, bi->image_digest,
                                               MBEDTLS_MD_SHA256, PSS_SALT_LEN, sig);
        bi->signature_valid = rc == 0;
        if (rc != 0 && bi->problem[0] == '\0')
            snprintf(bi->problem, sizeof bi->problem, "the RSA-PSS signature does not verify");
    rsa_out:
        mbedtls_mpi_free(&n);
        mbedtls_mpi_free(&e);
        mbedtls_rsa_free(&rsa);
    } else {
        size_t off_curve = ecdsa384 ? OFF_EC384_CURVE : OFF_EC_CURVE;
        size_t off_point = ecdsa384 ? OFF_EC384_POINT : OFF_EC_POINT;
        size_t off_sig = ecdsa384 ? OFF_EC384_SIG : OFF_EC_SIG;
        uint8_t curve = block[off_curve];
        mbedtls_ecp_group_id gid = MBEDTLS_ECP_DP_NONE;
        size_t width = 0;
        if (!ecdsa384 && curve == CURVE_P192) {
            bi->scheme = IMGSIGN_SCHEME_ECDSA192;
            gid = MBEDTLS_ECP_DP_SECP192R1;
            width = 24;
        } else if (!ecdsa384 && curve == CURVE_P256) {
            bi->scheme = IMGSIGN_SCHEME_ECDSA256;
            gid = MBEDTLS_ECP_DP_SECP256R1;
            width = 32;
        } else if (ecdsa384 && curve == CURVE_P384) {
            bi->scheme = IMGSIGN_SCHEME_ECDSA384;
            gid = MBEDTLS_ECP_DP_SECP384R1;
            width = 48;
        } else {
            bi->scheme = IMGSIGN_SCHEME_UNKNOWN;
            snprintf(bi->problem, sizeof bi->problem,
                     "unknown ECDSA curve id %u with digest type %u", curve,
                     block[OFF_SHA_VERSION]);
            goto check_digest;
        }
        mbedtls_ecp_group grp;
        mbedtls_ecp_point q;
        mbedtls_mpi r, s;
        mbedtls_ecp_group_init(&grp);
        mbedtls_ecp_point_init(&q);
        mbedtls_mpi_init(&r);
        mbedtls_mpi_init(&s);
        int rc = mbedtls_ecp_group_load(&grp, gid);
        if (rc == 0)
            rc = mbedtls_mpi_read_binary_le(&q.X, block + off_point, width);
        if (rc == 0)
            rc = mbedtls_mpi_read_binary_le(&q.Y, block + off_point + width, width);
        if (rc == 0)
            rc = mbedtls_mpi_lset(&q.Z, 1);
        if (rc == 0)
            rc = mbedtls_ecp_check_pubkey(&grp, &q);
        if (rc != 0) {
            snprintf(bi->problem, sizeof bi->problem,
                     "the public key is not a point of the curve: %s", mbed_msg(rc, m, sizeof m));
        } else {
            bi->key_valid = true;
            rc = mbedtls_mpi_read_binary_le(&r, block + off_sig, width);
            if (rc == 0)
                rc = mbedtls_mpi_read_binary_le(&s, block + off_sig + width, width);
            if (rc == 0)
                rc = mbedtls_ecdsa_verify(&grp, bi->image_digest, bi->image_digest_len, &q,
                                          &r, &s);
            bi->signature_valid = rc == 0;
            if (rc != 0)
                snprintf(bi->problem, sizeof bi->problem,
                         "the ECDSA signature does not verify");
        }
        mbedtls_mpi_free(&r);
        mbedtls_mpi_free(&s);
        mbedtls_ecp_point_free(&q);
        mbedtls_ecp_group_free(&grp);
    }
check_digest:
    if (!bi->digest_matches && bi->problem[0] == '\0')
        snprintf(bi->problem, sizeof bi->problem,
                 "the block's image digest is not that of the %zu bytes before the sector "
                 "(the image was changed after signing)", data_len);
}

static void verify_block(const uint8_t *block, const uint8_t *data, size_t data_len,
                         imgsign_block_info_t *bi)
{
    uint8_t actual[48];
    int hrc = block_is_ecdsa384(block) ? sha384(data, data_len, actual)
                                       : sha256(data, data_len, actual);
    verify_block_digest(block, hrc == 0 ? actual : NULL, data_len, bi);
}

/* ------------------------------------------------------------ finding the sector */

typedef enum {
    BLOCK_VALID,   /* magic, version, CRC */
    BLOCK_ABSENT,  /* no magic: the end of the list */
    BLOCK_DAMAGED, /* the magic and a known version, but a bad CRC or reserved byte */
} block_state_t;

static block_state_t block_state(const uint8_t *b)
{
    if (b[OFF_MAGIC] != IMGSIGN_MAGIC)
        return BLOCK_ABSENT;
    if (b[OFF_VERSION] != IMGSIGN_VERSION_RSA && b[OFF_VERSION] != IMGSIGN_VERSION_ECDSA)
        return BLOCK_ABSENT;
    if (get_le32(b + OFF_CRC) != crc32_ieee(b, IMGSIGN_CRC_LEN))
        return BLOCK_DAMAGED;
    return BLOCK_VALID;
}

/* How many valid blocks the sector at the end of img starts with (0..3), and in
 * *damaged the index of a damaged block found where the list goes on (or -1). */
static size_t count_blocks(const uint8_t *sector, int *damaged)
{
    size_t n = 0;
    *damaged = -1;
    while (n < IMGSIGN_MAX_BLOCKS) {
        block_state_t st = block_state(sector + n * IMGSIGN_BLOCK_SIZE);
        if (st == BLOCK_DAMAGED)
            *damaged = (int)n;
        if (st != BLOCK_VALID)
            break;
        n++;
    }
    return n;
}

int imgsign_inspect(const uint8_t *img, size_t len, imgsign_info_t *info, char *err, size_t cap)
{
    if (info == NULL || (img == NULL && len > 0)) {
        seterr(err, cap, "imgsign_inspect: NULL argument");
        return -1;
    }
    memset(info, 0, sizeof *info);
    if (len < IMGSIGN_SECTOR_SIZE || len % IMGSIGN_SECTOR_SIZE != 0) {
        seterr(err, cap, "not signed: a signed image is a multiple of 4096 bytes, this one "
                         "has %zu", len);
        return 0;
    }
    const uint8_t *sector = img + len - IMGSIGN_SECTOR_SIZE;
    int damaged;
    size_t n = count_blocks(sector, &damaged);
    info->signed_len = len - IMGSIGN_SECTOR_SIZE;
    if (sha256(img, info->signed_len, info->image_sha256) != 0) {
        seterr(err, cap, "SHA-256 failed");
        return -1;
    }
    if (n == 0) {
        if (damaged == 0)
            seterr(err, cap, "not signed: signature block 0 of the last 4096 bytes is "
                             "damaged (its CRC-32 does not match)");
        else
            seterr(err, cap, "not signed: the last 4096 bytes hold no signature block "
                             "(byte 0 is 0x%02X, not the magic 0xE7)", sector[0]);
        info->signed_len = 0;
        return 0;
    }
    info->n_blocks = n;
    info->all_valid = true;
    for (size_t i = 0; i < n; i++) {
        imgsign_block_info_t *bi = &info->blocks[i];
        verify_block(sector + i * IMGSIGN_BLOCK_SIZE, img, info->signed_len, bi);
        if (!(bi->digest_matches && bi->key_valid && bi->signature_valid))
            info->all_valid = false;
    }
    return 1;
}

/* ------------------------------------------------------------ signing */

/* Sign digest into a fresh block with a loaded key of a known scheme. */
static int make_block(mbedtls_pk_context *pk, imgsign_scheme_t scheme, const uint8_t digest[32],
                      rng_t *rng, uint8_t *block, const char *path, char *err, size_t cap)
{
    char m[96];
    int rc;
    memset(block, 0, IMGSIGN_BLOCK_SIZE);
    block[OFF_MAGIC] = IMGSIGN_MAGIC;
    memcpy(block + OFF_DIGEST, digest, 32);
    if (key_fields(pk, scheme, block) != 0) {
        seterr(err, cap, "%s: cannot encode the public key", path);
        return -1;
    }
    if (scheme == IMGSIGN_SCHEME_RSA3072) {
        mbedtls_rsa_context *rsa = mbedtls_pk_rsa(*pk);
        uint8_t sig[RSA_BYTES];
        mbedtls_rsa_set_padding(rsa, MBEDTLS_RSA_PKCS_V21, MBEDTLS_MD_SHA256);
        rc = mbedtls_rsa_rsassa_pss_sign_ext(rsa, mbedtls_ctr_drbg_random, &rng->drbg,
                                             MBEDTLS_MD_SHA256, 32, digest, PSS_SALT_LEN, sig);
        if (rc != 0) {
            seterr(err, cap, "%s: RSA-PSS signing failed: %s", path, mbed_msg(rc, m, sizeof m));
            return -1;
        }
        reverse_copy(block + OFF_RSA_SIG, sig, RSA_BYTES);
    } else {
        mbedtls_ecp_keypair *ec = mbedtls_pk_ec(*pk);
        mbedtls_mpi r, s;
        uint8_t be[32];
        mbedtls_mpi_init(&r);
        mbedtls_mpi_init(&s);
        rc = mbedtls_ecdsa_sign_det_ext(&ec->grp, &r, &s, &ec->d, digest, 32, MBEDTLS_MD_SHA256,
                                        mbedtls_ctr_drbg_random, &rng->drbg);
        if (rc == 0)
            rc = mbedtls_mpi_write_binary(&r, be, sizeof be);
        if (rc == 0)
            reverse_copy(block + OFF_EC_SIG, be, 32);
        if (rc == 0)
            rc = mbedtls_mpi_write_binary(&s, be, sizeof be);
        if (rc == 0)
            reverse_copy(block + OFF_EC_SIG + 32, be, 32);
        mbedtls_mpi_free(&r);
        mbedtls_mpi_free(&s);
        if (rc != 0) {
            seterr(err, cap, "%s: ECDSA signing failed: %s", path, mbed_msg(rc, m, sizeof m));
            return -1;
        }
    }
    put_le32(block + OFF_CRC, crc32_ieee(block, IMGSIGN_CRC_LEN));
    return 0;
}

/* The key list of a signing call: 1 to 3 file names. */
static int check_key_args(const char *const *key_paths, size_t n_keys, char *err, size_t cap)
{
    if (n_keys == 0) {
        seterr(err, cap, "no signing key given");
        return -1;
    }
    if (n_keys > IMGSIGN_MAX_BLOCKS) {
        seterr(err, cap, "%zu signing keys given; a signature sector holds at most 3 blocks",
               n_keys);
        return -1;
    }
    for (size_t i = 0; i < n_keys; i++) {
        if (key_paths[i] == NULL || key_paths[i][0] == '\0') {
            seterr(err, cap, "signing key %zu: no file name", i + 1);
            return -1;
        }
    }
    return 0;
}

/* Load n_keys private keys into pk[] (initialised by the caller, freed by it), with
 * their schemes and key digests; refuse the same key twice and RSA mixed with ECDSA. */
static int load_keys(const char *const *key_paths, size_t n_keys, mbedtls_pk_context *pk,
                     imgsign_scheme_t *scheme, uint8_t (*kd)[32], char *err, size_t cap)
{
    uint8_t block[IMGSIGN_BLOCK_SIZE];
    for (size_t i = 0; i < n_keys; i++) {
        scheme[i] = load_key(key_paths[i], true, &pk[i], err, cap);
        if (scheme[i] == IMGSIGN_SCHEME_UNKNOWN)
            return -1;
        memset(block, 0, sizeof block);
        if (key_fields(&pk[i], scheme[i], block) != 0 || block_key_digest(block, kd[i]) != 0) {
            seterr(err, cap, "%s: cannot encode the public key", key_paths[i]);
            return -1;
        }
        for (size_t j = 0; j < i; j++) {
            if (memcmp(kd[i], kd[j], 32) == 0) {
                seterr(err, cap, "%s and %s are the same key; each block needs its own key",
                       key_paths[j], key_paths[i]);
                return -1;
            }
            if (scheme_is_ecdsa(scheme[i]) != scheme_is_ecdsa(scheme[j])) {
                seterr(err, cap, "%s is %s and %s is %s: a chip verifies one scheme, so "
                                 "one image is signed with RSA keys or with ECDSA keys",
                       key_paths[j], imgsign_scheme_name(scheme[j]), key_paths[i],
                       imgsign_scheme_name(scheme[i]));
                return -1;
            }
        }
    }
    return 0;
}

/* One block per loaded key over digest (the SHA-256 of data_len signed bytes), into
 * consecutive blocks from out on; each is checked as a verifier would before it is
 * returned. */
static int sign_blocks(mbedtls_pk_context *pk, const imgsign_scheme_t *scheme,
                       uint8_t (*kd)[32], const char *const *key_paths, size_t n_keys,
                       const uint8_t digest[32], size_t data_len, uint8_t *out, char *err,
                       size_t cap)
{
    rng_t rng;
    if (rng_init(&rng, err, cap) != 0)
        return -1;
    int rc = 0;
    for (size_t i = 0; i < n_keys && rc == 0; i++) {
        uint8_t *block = out + i * IMGSIGN_BLOCK_SIZE;
        rc = make_block(&pk[i], scheme[i], digest, &rng, block, key_paths[i], err, cap);
        if (rc != 0)
            break;
        /* check what we wrote as a verifier would, before anybody flashes it */
        imgsign_block_info_t bi;
        verify_block_digest(block, digest, data_len, &bi);
        if (!(bi.digest_matches && bi.key_valid && bi.signature_valid) ||
            memcmp(bi.key_digest, kd[i], 32) != 0) {
            seterr(err, cap, "%s: the new signature block does not verify (%s)", key_paths[i],
                   bi.problem[0] != '\0' ? bi.problem : "key digest mismatch");
            rc = -1;
        }
    }
    rng_free(&rng);
    return rc;
}

int imgsign_sign(const uint8_t *img, size_t len, const char *const *key_paths, size_t n_keys,
                 uint8_t **out, size_t *out_len, char *err, size_t cap)
{
    if (out == NULL || out_len == NULL || (img == NULL && len > 0) ||
        (key_paths == NULL && n_keys > 0)) {
        seterr(err, cap, "imgsign_sign: NULL argument");
        return -1;
    }
    *out = NULL;
    *out_len = 0;
    if (check_key_args(key_paths, n_keys, err, cap) != 0)
        return -1;
    if (len == 0) {
        seterr(err, cap, "the image is empty");
        return -1;
    }

    int rc = -1;
    mbedtls_pk_context pk[IMGSIGN_MAX_BLOCKS];
    imgsign_scheme_t scheme[IMGSIGN_MAX_BLOCKS];
    uint8_t kd[IMGSIGN_MAX_BLOCKS][32];
    imgsign_info_t have; /* the existing sector, if any */
    uint8_t *res = NULL;
    for (size_t i = 0; i < IMGSIGN_MAX_BLOCKS; i++)
        mbedtls_pk_init(&pk[i]);
    memset(&have, 0, sizeof have);

    /* 1. every key, before anything else */
    if (load_keys(key_paths, n_keys, pk, scheme, kd, err, cap) != 0)
        goto out;

    /* 2. an existing signature sector: keep its blocks, sign what is before it */
    size_t data_len = len;
    size_t n_old = 0;
    if (len % IMGSIGN_SECTOR_SIZE == 0 && len >= IMGSIGN_SECTOR_SIZE) {
        const uint8_t *sector = img + len - IMGSIGN_SECTOR_SIZE;
        int damaged;
        n_old = count_blocks(sector, &damaged);
        if (damaged >= 0 && (n_old > 0 || sector[OFF_RESERVED] == 0)) {
            seterr(err, cap, "signature block %d of the image's signature sector is damaged "
                             "(its CRC-32 does not match); refusing to sign over it",
                   damaged);
            goto out;
        }
        if (n_old > 0) {
            data_len = len - IMGSIGN_SECTOR_SIZE;
            if (data_len == 0) {
                seterr(err, cap, "the file is a signature sector with no image before it");
                goto out;
            }
            if (imgsign_inspect(img, len, &have, err, cap) != 1)
                goto out;
            for (size_t b = 0; b < n_old; b++) {
                const imgsign_block_info_t *bi = &have.blocks[b];
                if (!bi->digest_matches) {
                    seterr(err, cap, "the image is already signed, but signature block %zu "
                                     "is over another image (the bytes before the sector "
                                     "changed after signing); sign the unsigned image", b);
                    goto out;
                }
                if (!bi->key_valid || !bi->signature_valid) {
                    seterr(err, cap, "the image is already signed, but signature block %zu "
                                     "is not valid (%s); refusing to keep it", b, bi->problem);
                    goto out;
                }
                for (size_t i = 0; i < n_keys; i++) {
                    if (memcmp(bi->key_digest, kd[i], 32) == 0) {
                        seterr(err, cap, "%s already signed this image (signature block %zu)",
                               key_paths[i], b);
                        goto out;
                    }
                    if (scheme_is_ecdsa(bi->scheme) != scheme_is_ecdsa(scheme[i])) {
                        seterr(err, cap, "the image is signed with %s (block %zu) and %s is "
                                         "%s: a chip verifies one scheme, so one image is "
                                         "signed with RSA keys or with ECDSA keys",
                               imgsign_scheme_name(bi->scheme), b, key_paths[i],
                               imgsign_scheme_name(scheme[i]));
                        goto out;
                    }
                }
            }
            if (n_old + n_keys > IMGSIGN_MAX_BLOCKS) {
                seterr(err, cap, "the image already has %zu signature block%s; %zu more would "
                                 "exceed the 3 a signature sector holds",
                       n_old, n_old == 1 ? "" : "s", n_keys);
                goto out;
            }
        }
    }

    /* 3. the output: padded image, old blocks, new blocks, 0xFF */
    size_t padded = data_len;
    if (padded % IMGSIGN_SECTOR_SIZE != 0)
        padded += IMGSIGN_SECTOR_SIZE - padded % IMGSIGN_SECTOR_SIZE;
    if (padded < data_len || padded > SIZE_MAX - IMGSIGN_SECTOR_SIZE) {
        seterr(err, cap, "the image is too large");
        goto out;
    }
    size_t total = padded + IMGSIGN_SECTOR_SIZE;
    res = malloc(total);
    if (res == NULL) {
        seterr(err, cap, "out of memory for a %zu-byte image", total);
        goto out;
    }
    memcpy(res, img, data_len);
    memset(res + data_len, IMGSIGN_PAD_BYTE, total - data_len);
    uint8_t *sector_out = res + padded;
    if (n_old > 0)
        memcpy(sector_out, img + len - IMGSIGN_SECTOR_SIZE, n_old * IMGSIGN_BLOCK_SIZE);

    uint8_t digest[32];
    if (sha256(res, padded, digest) != 0) {
        seterr(err, cap, "SHA-256 failed");
        goto out;
    }
    if (sign_blocks(pk, scheme, kd, key_paths, n_keys, digest, padded,
                    sector_out + n_old * IMGSIGN_BLOCK_SIZE, err, cap) != 0)
        goto out;
    *out = res;
    *out_len = total;
    res = NULL;
    rc = 0;
out:
    free(res);
    for (size_t i = 0; i < IMGSIGN_MAX_BLOCKS; i++)
        mbedtls_pk_free(&pk[i]);
    return rc;
}

int imgsign_sign_digest(const uint8_t digest[IMGSIGN_DIGEST_LEN], const char *const *key_paths,
                        size_t n_keys, uint8_t sector[IMGSIGN_SECTOR_SIZE], char *err,
                        size_t cap)
{
    if (digest == NULL || sector == NULL || (key_paths == NULL && n_keys > 0)) {
        seterr(err, cap, "imgsign_sign_digest: NULL argument");
        return -1;
    }
    if (check_key_args(key_paths, n_keys, err, cap) != 0)
        return -1;
    mbedtls_pk_context pk[IMGSIGN_MAX_BLOCKS];
    imgsign_scheme_t scheme[IMGSIGN_MAX_BLOCKS];
    uint8_t kd[IMGSIGN_MAX_BLOCKS][32];
    for (size_t i = 0; i < IMGSIGN_MAX_BLOCKS; i++)
        mbedtls_pk_init(&pk[i]);
    memset(sector, IMGSIGN_PAD_BYTE, IMGSIGN_SECTOR_SIZE);
    int rc = load_keys(key_paths, n_keys, pk, scheme, kd, err, cap);
    if (rc == 0)
        rc = sign_blocks(pk, scheme, kd, key_paths, n_keys, digest, 0, sector, err, cap);
    for (size_t i = 0; i < IMGSIGN_MAX_BLOCKS; i++)
        mbedtls_pk_free(&pk[i]);
    if (rc != 0)
        memset(sector, IMGSIGN_PAD_BYTE, IMGSIGN_SECTOR_SIZE);
    return rc;
}

/* ------------------------------------------------------------ key generation */

static int write_all(int fd, const unsigned char *p, size_t n)
{
    while (n > 0) {
        ssize_t w = write(fd, p, n);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return -1;
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

int imgsign_keygen(const char *scheme, const char *out_path, char *err, size_t cap)
{
    if (scheme == NULL || out_path == NULL || out_path[0] == '\0') {
        seterr(err, cap, "imgsign_keygen: no scheme or no key file name");
        return -1;
    }
    bool rsa;
    if (strcmp(scheme, "rsa3072") == 0)
        rsa = true;
    else if (strcmp(scheme, "ecdsa256") == 0)
        rsa = false;
    else {
        seterr(err, cap, "unknown signing scheme '%s': use ecdsa256 or rsa3072", scheme);
        return -1;
    }
    char pub_path[4096];
    if (imgsign_pub_path(out_path, pub_path, sizeof pub_path) != 0) {
        seterr(err, cap, "key file name too long: %s", out_path);
        return -1;
    }
    struct stat st;
    if (lstat(out_path, &st) == 0) {
        seterr(err, cap, "%s already exists; refusing to overwrite a key", out_path);
        return -1;
    }
    if (lstat(pub_path, &st) == 0) {
        seterr(err, cap, "%s already exists; refusing to overwrite it", pub_path);
        return -1;
    }

    int rc = -1;
    char m[96];
    mbedtls_pk_context pk;
    rng_t rng;
    bool rng_ok = false;
    int fd_priv = -1, fd_pub = -1;
    bool made_priv = false, made_pub = false;
    unsigned char pem_priv[16384];
    unsigned char pem_pub[4096];
    mbedtls_pk_init(&pk);
    memset(pem_priv, 0, sizeof pem_priv);
    memset(pem_pub, 0, sizeof pem_pub);

    if (rng_init(&rng, err, cap) != 0)
        goto out;
    rng_ok = true;
    int r = mbedtls_pk_setup(&pk, mbedtls_pk_info_from_type(rsa ? MBEDTLS_PK_RSA : MBEDTLS_PK_ECKEY));
    if (r == 0 && rsa)
        r = mbedtls_rsa_gen_key(mbedtls_pk_rsa(pk), mbedtls_ctr_drbg_random, &rng.drbg, RSA_BITS,
                                65537);
    else if (r == 0)
        r = mbedtls_ecp_gen_key(MBEDTLS_ECP_DP_SECP256R1, mbedtls_pk_ec(pk),
                                mbedtls_ctr_drbg_random, &rng.drbg);
    if (r != 0) {
        seterr(err, cap, "generating the %s key failed: %s", scheme, mbed_msg(r, m, sizeof m));
        goto out;
    }
    r = mbedtls_pk_write_key_pem(&pk, pem_priv, sizeof pem_priv);
    if (r == 0)
        r = mbedtls_pk_write_pubkey_pem(&pk, pem_pub, sizeof pem_pub);
    if (r != 0) {
        seterr(err, cap, "encoding the %s key as PEM failed: %s", scheme, mbed_msg(r, m, sizeof m));
        goto out;
    }

    fd_priv = open(out_path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (fd_priv < 0) {
        if (errno == EEXIST)
            seterr(err, cap, "%s already exists; refusing to overwrite a key", out_path);
        else
            seterr(err, cap, "cannot create %s: %s", out_path, strerror(errno));
        goto out;
    }
    made_priv = true;
    fd_pub = open(pub_path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0644);
    if (fd_pub < 0) {
        if (errno == EEXIST)
            seterr(err, cap, "%s already exists; refusing to overwrite it", pub_path);
        else
            seterr(err, cap, "cannot create %s: %s", pub_path, strerror(errno));
        goto out;
    }
    made_pub = true;
    if (fchmod(fd_priv, 0600) != 0 ||
        write_all(fd_priv, pem_priv, strlen((const char *)pem_priv)) != 0 ||
        fsync(fd_priv) != 0) {
        seterr(err, cap, "cannot write %s: %s", out_path, strerror(errno));
        goto out;
    }
    if (write_all(fd_pub, pem_pub, strlen((const char *)pem_pub)) != 0 || fsync(fd_pub) != 0) {
        seterr(err, cap, "cannot write %s: %s", pub_path, strerror(errno));
        goto out;
    }
    if (close(fd_priv) != 0) {
        fd_priv = -1;
        seterr(err, cap, "cannot write %s: %s", out_path, strerror(errno));
        goto out;
    }
    fd_priv = -1;
    if (close(fd_pub) != 0) {
        fd_pub = -1;
        seterr(err, cap, "cannot write %s: %s", pub_path, strerror(errno));
        goto out;
    }
    fd_pub = -1;
    rc = 0;
out:
    if (fd_priv >= 0)
        close(fd_priv);
    if (fd_pub >= 0)
        close(fd_pub);
    if (rc != 0) {
        if (made_priv)
            unlink(out_path);
        if (made_pub)
            unlink(pub_path);
    }
    mbedtls_platform_zeroize(pem_priv, sizeof pem_priv);
    mbedtls_pk_free(&pk);
    if (rng_ok)
        rng_free(&rng);
    return rc;
}

bool imgsign_is_esp_image(const uint8_t *img, size_t len)
{
    /* esp_image_header_t: magic 0xE9, then the segment count (at most 16) */
    return len >= 24 && img[0] == 0xE9 && img[1] >= 1 && img[1] <= 16;
}

int imgsign_set_descriptor(uint8_t *img, size_t len, const char *version, bool set_sv,
                           uint32_t secure_version, char *err, size_t cap)
{
    imgsign_info_t pre;
    char why[256];
    if (imgsign_inspect(img, len, &pre, why, sizeof why) == 1) {
        snprintf(err, cap, "it is signed already: changing its descriptor would break "
                           "those signatures; set it on the unsigned image");
        return -1;
    }
    if (imgsign_is_esp_image(img, len)) {
        snprintf(err, cap, "it is an ESP-IDF/ESP8266 image, whose checksum and appended "
                           "SHA-256 cover the descriptor: set its versions when building "
                           "(CONFIG_BOOTLOADER_APP_SECURE_VERSION, esphome: project: version:)");
        return -1;
    }
    long at = ota_app_desc_find(img, len);
    if (at < 0) {
        snprintf(err, cap, "it has no image descriptor (esp_app_desc_t, magic 0x%08X) to "
                           "carry it", (unsigned)OTA_APP_DESC_MAGIC);
        return -1;
    }
    if (version != NULL && strlen(version) >= OTA_APP_DESC_VERSION_LEN) {
        snprintf(err, cap, "the version '%s' is longer than the descriptor's %u characters",
                 version, (unsigned)OTA_APP_DESC_VERSION_LEN - 1);
        return -1;
    }
    if (set_sv) {
        uint8_t *v = img + at + OTA_APP_DESC_OFF_SECURE_VERSION;
        v[0] = (uint8_t)secure_version;
        v[1] = (uint8_t)(secure_version >> 8);
        v[2] = (uint8_t)(secure_version >> 16);
        v[3] = (uint8_t)(secure_version >> 24);
    }
    if (version != NULL) {
        uint8_t *v = img + at + OTA_APP_DESC_OFF_VERSION;
        memset(v, 0, OTA_APP_DESC_VERSION_LEN);
        memcpy(v, version, strlen(version));
    }
    return 0;
}
