/*
 * test_signature.c - unit tests of the signed-image checks (src/core/signature.c,
 * ota/signature.h) against the vectors of tests/vectors/sigv2/ (made by its
 * make_vectors.sh with openssl and Python alone): ESP-IDF Secure Boot V2 signature
 * sectors, RSA-3072-PSS and ECDSA P-256, through the fake port's crypto table (whose
 * verify hooks are the POSIX port's mbedTLS ones).
 *
 * The vectors' directory is the compile definition OTA_SIGV2_DIR, or argv[1].
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <zlib.h>

#include "fake_port.h"
#include "ota/errors.h"
#include "ota/signature.h"
#include "ota_posix.h"

#ifndef OTA_SIGV2_DIR
#define OTA_SIGV2_DIR "tests/vectors/sigv2"
#endif

static const char *g_dir = OTA_SIGV2_DIR;

#define IMAGE_LEN 8192u  /* the padded image of every signed vector */
#define SIGNED_LEN 12288u

typedef struct file {
    uint8_t *data;
    size_t len;
} file_t;

static file_t load(const char *name)
{
    char path[1024];
    snprintf(path, sizeof path, "%s/%s", g_dir, name);
    FILE *f = fopen(path, "rb");
    if (f == NULL)
        fail_msg("cannot open %s (pass the vectors' directory as argv[1])", path);
    file_t out = {NULL, 0};
    size_t cap = 0;
    for (;;) {
        if (out.len == cap) {
            cap = cap ? cap * 2 : 4096;
            out.data = realloc(out.data, cap);
            assert_non_null(out.data);
        }
        size_t n = fread(out.data + out.len, 1, cap - out.len, f);
        if (n == 0)
            break;
        out.len += n;
    }
    fclose(f);
    return out;
}

static file_t load_len(const char *name, size_t len)
{
    file_t f = load(name);
    assert_int_equal(f.len, len);
    return f;
}

static void drop(file_t *f)
{
    free(f->data);
    f->data = NULL;
}

/* ---- the environment of every test: the fake port's crypto, the test keys ---- */

typedef struct env {
    fake_port_t fp;
    ota_crypto_port_t crypto;
    file_t rsa1_n, rsa1_e, rsa1_digest, rsa2_n, rsa2_e, rsa2_digest;
    file_t ec1_xy, ec1_digest, ec2_xy, ec2_digest;
    file_t image_sha256;
    /* trusted sets: by digest, by full key */
    ota_sig_trusted_t rsa1_by_digest, rsa2_by_digest, rsa1_by_key, rsa2_by_key;
    ota_sig_trusted_t ec1_by_digest, ec2_by_digest, ec1_by_key, ec2_by_key;
} env_t;

static uint32_t be32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static int setup(void **state)
{
    env_t *e = calloc(1, sizeof *e);
    assert_non_null(e);
    fake_init(&e->fp, 1 << 16);
    fake_tables(&e->fp, 0);
    e->crypto = e->fp.t.crypto;
    e->rsa1_n = load_len("rsa_key1.n.bin", 384);
    e->rsa1_e = load_len("rsa_key1.e.bin", 4);
    e->rsa1_digest = load_len("rsa_key1.digest.bin", 32);
    e->rsa2_n = load_len("rsa_key2.n.bin", 384);
    e->rsa2_e = load_len("rsa_key2.e.bin", 4);
    e->rsa2_digest = load_len("rsa_key2.digest.bin", 32);
    e->ec1_xy = load_len("ecdsa_key1.xy.bin", 64);
    e->ec1_digest = load_len("ecdsa_key1.digest.bin", 32);
    e->ec2_xy = load_len("ecdsa_key2.xy.bin", 64);
    e->ec2_digest = load_len("ecdsa_key2.digest.bin", 32);
    e->image_sha256 = load_len("image.sha256", 32);
    e->rsa1_by_digest = (ota_sig_trusted_t){.digest = e->rsa1_digest.data};
    e->rsa2_by_digest = (ota_sig_trusted_t){.digest = e->rsa2_digest.data};
    e->ec1_by_digest = (ota_sig_trusted_t){.digest = e->ec1_digest.data};
    e->ec2_by_digest = (ota_sig_trusted_t){.digest = e->ec2_digest.data};
    e->rsa1_by_key = (ota_sig_trusted_t){
        .key = {OTA_SIG_SCHEME_RSA3072, e->rsa1_n.data, be32(e->rsa1_e.data)}};
    e->rsa2_by_key = (ota_sig_trusted_t){
        .key = {OTA_SIG_SCHEME_RSA3072, e->rsa2_n.data, be32(e->rsa2_e.data)}};
    e->ec1_by_key = (ota_sig_trusted_t){.key = {OTA_SIG_SCHEME_ECDSA_P256, e->ec1_xy.data, 0}};
    e->ec2_by_key = (ota_sig_trusted_t){.key = {OTA_SIG_SCHEME_ECDSA_P256, e->ec2_xy.data, 0}};
    *state = e;
    return 0;
}

static int teardown(void **state)
{
    env_t *e = *state;
    file_t *files[] = {&e->rsa1_n, &e->rsa1_e, &e->rsa1_digest, &e->rsa2_n, &e->rsa2_e,
                       &e->rsa2_digest, &e->ec1_xy, &e->ec1_digest, &e->ec2_xy,
                       &e->ec2_digest, &e->image_sha256};
    for (size_t i = 0; i < sizeof files / sizeof files[0]; i++)
        drop(files[i]);
    fake_free(&e->fp);
    free(e);
    return 0;
}

/* the image's signature sector and its first block */
static uint8_t *sector_of(file_t *f)
{
    return f->data + f->len - OTA_SIG_SECTOR_SIZE;
}

static uint8_t *block_of(file_t *f, unsigned i)
{
    return sector_of(f) + i * OTA_SIG_BLOCK_SIZE;
}

/* make a changed block well formed again (its CRC: zlib's, not the core's) */
static void fix_crc(uint8_t *blk)
{
    uint32_t c = (uint32_t)crc32(0L, blk, OTA_SIG_CRC_LEN);
    for (int i = 0; i < 4; i++)
        blk[OTA_SIG_OFF_CRC + i] = (uint8_t)(c >> (8 * i));
}

static int verify(env_t *e, file_t *f, const ota_sig_trusted_t *t, size_t n, ota_sig_result_t *r)
{
    return ota_sig_verify_image(&e->crypto, f->data, f->len, t, n, r);
}

/* ---- parsing and key digests ---- */

static void test_block_parse(void **state)
{
    env_t *e = *state;
    file_t rsa = load_len("image_rsa.bin", SIGNED_LEN), ec = load_len("image_ecdsa.bin", SIGNED_LEN);
    ota_sig_block_t b;
    uint8_t *blk = block_of(&rsa, 0);
    assert_int_equal(ota_sig_block_parse(blk, &b), OTA_OK);
    assert_int_equal(b.scheme, OTA_SIG_SCHEME_RSA3072);
    assert_ptr_equal(b.image_digest, blk + 4);
    assert_memory_equal(b.image_digest, e->image_sha256.data, 32);
    assert_ptr_equal(b.key, blk + 36);
    assert_int_equal(b.key_len, 776);
    assert_ptr_equal(b.signature, blk + 812);
    assert_int_equal(b.signature_len, 384);
    /* n is stored little-endian: its first byte is the big-endian form's last one */
    assert_int_equal(b.key[0], e->rsa1_n.data[383]);
    assert_int_equal(b.key[383], e->rsa1_n.data[0]);
    assert_int_equal(blk[420], 0x01); /* e = 65537 = 0x00010001, little-endian */
    assert_int_equal(blk[421], 0x00);
    assert_int_equal(blk[422], 0x01);
    /* the rest of the sector: 0xFF; blocks 1 and 2 are absent */
    for (size_t i = OTA_SIG_BLOCK_SIZE; i < OTA_SIG_SECTOR_SIZE; i++)
        assert_int_equal(sector_of(&rsa)[i], 0xFF);
    assert_int_equal(ota_sig_block_parse(block_of(&rsa, 1), &b), OTA_ERR_NOT_SIGNED);

    blk = block_of(&ec, 0);
    assert_int_equal(ota_sig_block_parse(blk, &b), OTA_OK);
    assert_int_equal(b.scheme, OTA_SIG_SCHEME_ECDSA_P256);
    assert_int_equal(b.key_len, 65);
    assert_int_equal(b.key[0], OTA_SIG_ECDSA_CURVE_P256);
    assert_ptr_equal(b.signature, blk + 101);
    assert_int_equal(b.signature_len, 64);
    assert_int_equal(b.key[1], e->ec1_xy.data[31]);  /* X little-endian */
    assert_int_equal(b.key[33], e->ec1_xy.data[63]); /* Y little-endian */
    for (size_t i = 165; i < OTA_SIG_OFF_CRC; i++)
        assert_int_equal(blk[i], 0);

    assert_int_equal(ota_sig_block_parse(NULL, &b), OTA_ERR_INVALID_ARG);
    assert_int_equal(ota_sig_block_parse(blk, NULL), OTA_ERR_INVALID_ARG);
    drop(&rsa);
    drop(&ec);
}

static void test_key_digest(void **state)
{
    env_t *e = *state;
    uint8_t d[32];
    assert_int_equal(ota_sig_key_digest(&e->crypto, &e->rsa1_by_key.key, d), OTA_OK);
    assert_memory_equal(d, e->rsa1_digest.data, 32);
    assert_int_equal(ota_sig_key_digest(&e->crypto, &e->rsa2_by_key.key, d), OTA_OK);
    assert_memory_equal(d, e->rsa2_digest.data, 32);
    assert_int_equal(ota_sig_key_digest(&e->crypto, &e->ec1_by_key.key, d), OTA_OK);
    assert_memory_equal(d, e->ec1_digest.data, 32);
    assert_int_equal(ota_sig_key_digest(&e->crypto, &e->ec2_by_key.key, d), OTA_OK);
    assert_memory_equal(d, e->ec2_digest.data, 32);

    /* the block's own key material hashes to the same digest (what ESP compares) */
    file_t rsa = load_len("image_rsa.bin", SIGNED_LEN);
    ota_sig_result_t r;
    assert_int_equal(verify(e, &rsa, &e->rsa1_by_digest, 1, &r), OTA_OK);
    assert_memory_equal(r.key_digest[0], e->rsa1_digest.data, 32);
    /* and the Montgomery constants the core derives are the ones the block holds */
    uint8_t n_bad[384];
    memcpy(n_bad, e->rsa1_n.data, 384);
    n_bad[383] ^= 0x02; /* another odd 3072-bit number: another digest */
    ota_sig_key_t k = {OTA_SIG_SCHEME_RSA3072, n_bad, 65537};
    assert_int_equal(ota_sig_key_digest(&e->crypto, &k, d), OTA_OK);
    assert_memory_not_equal(d, e->rsa1_digest.data, 32);
    k.rsa_e = 3; /* e is part of the material */
    k.data = e->rsa1_n.data;
    assert_int_equal(ota_sig_key_digest(&e->crypto, &k, d), OTA_OK);
    assert_memory_not_equal(d, e->rsa1_digest.data, 32);
    drop(&rsa);

    /* not keys */
    n_bad[383] &= 0xFE; /* even */
    k.data = n_bad;
    assert_int_equal(ota_sig_key_digest(&e->crypto, &k, d), OTA_ERR_INVALID_ARG);
    memcpy(n_bad, e->rsa1_n.data, 384);
    n_bad[0] = 0x7F; /* 3071 bits */
    assert_int_equal(ota_sig_key_digest(&e->crypto, &k, d), OTA_ERR_INVALID_ARG);
    k.scheme = OTA_SIG_SCHEME_NONE;
    k.data = e->rsa1_n.data;
    assert_int_equal(ota_sig_key_digest(&e->crypto, &k, d), OTA_ERR_INVALID_ARG);
    assert_int_equal(ota_sig_key_digest(NULL, &e->rsa1_by_key.key, d), OTA_ERR_INVALID_ARG);
    assert_int_equal(ota_sig_key_digest(&e->crypto, NULL, d), OTA_ERR_INVALID_ARG);
    assert_int_equal(ota_sig_key_digest(&e->crypto, &e->rsa1_by_key.key, NULL),
                     OTA_ERR_INVALID_ARG);
}

/* ---- accepted ---- */

static void test_valid_rsa(void **state)
{
    env_t *e = *state;
    file_t f = load_len("image_rsa.bin", SIGNED_LEN);
    ota_sig_result_t r;
    assert_int_equal(verify(e, &f, &e->rsa1_by_digest, 1, &r), OTA_OK);
    assert_int_equal(r.valid_block, 0);
    assert_int_equal(r.trusted, 0);
    assert_int_equal(r.status[0], OTA_SIG_VALID);
    assert_int_equal(r.scheme[0], OTA_SIG_SCHEME_RSA3072);
    assert_int_equal(r.status[1], OTA_SIG_NOT_CHECKED);
    assert_int_equal(r.status[2], OTA_SIG_NOT_CHECKED);
    /* by the full key, among others (its index is reported) */
    const ota_sig_trusted_t set[] = {e->ec1_by_key, e->rsa2_by_digest, e->rsa1_by_key};
    assert_int_equal(verify(e, &f, set, 3, &r), OTA_OK);
    assert_int_equal(r.trusted, 2);
    /* the streaming form: digest computed elsewhere, the sector alone */
    assert_int_equal(ota_sig_verify_sector(&e->crypto, sector_of(&f), OTA_SIG_SECTOR_SIZE,
                                           e->image_sha256.data, &e->rsa1_by_digest, 1, NULL),
                     OTA_OK);
    drop(&f);
}

static void test_valid_ecdsa(void **state)
{
    env_t *e = *state;
    file_t f = load_len("image_ecdsa.bin", SIGNED_LEN);
    ota_sig_result_t r;
    assert_int_equal(verify(e, &f, &e->ec1_by_digest, 1, &r), OTA_OK);
    assert_int_equal(r.valid_block, 0);
    assert_int_equal(r.status[0], OTA_SIG_VALID);
    assert_int_equal(r.scheme[0], OTA_SIG_SCHEME_ECDSA_P256);
    assert_memory_equal(r.key_digest[0], e->ec1_digest.data, 32);
    assert_int_equal(verify(e, &f, &e->ec1_by_key, 1, &r), OTA_OK);
    file_t g = load_len("image_ecdsa_key2.bin", SIGNED_LEN);
    assert_int_equal(verify(e, &g, &e->ec2_by_key, 1, &r), OTA_OK);
    drop(&f);
    drop(&g);
}

static void test_rotation(void **state)
{
    env_t *e = *state;
    file_t f = load_len("image_rotation.bin", SIGNED_LEN);
    ota_sig_result_t r;
    /* a device that trusts the old key: block 0 (new key) is not for it, block 1 is */
    assert_int_equal(verify(e, &f, &e->rsa1_by_digest, 1, &r), OTA_OK);
    assert_int_equal(r.status[0], OTA_SIG_UNTRUSTED);
    assert_memory_equal(r.key_digest[0], e->rsa2_digest.data, 32);
    assert_int_equal(r.status[1], OTA_SIG_VALID);
    assert_int_equal(r.status[2], OTA_SIG_NOT_CHECKED);
    assert_int_equal(r.valid_block, 1);
    /* one that trusts the new key: block 0 already does it */
    assert_int_equal(verify(e, &f, &e->rsa2_by_key, 1, &r), OTA_OK);
    assert_int_equal(r.valid_block, 0);
    assert_int_equal(r.status[1], OTA_SIG_NOT_CHECKED);
    /* both keys trusted (the eFuses of a device mid-rotation) */
    const ota_sig_trusted_t both[] = {e->rsa1_by_digest, e->rsa2_by_digest};
    assert_int_equal(verify(e, &f, both, 2, &r), OTA_OK);
    assert_int_equal(r.valid_block, 0);
    assert_int_equal(r.trusted, 1);
    /* neither */
    assert_int_equal(verify(e, &f, &e->ec1_by_digest, 1, &r), OTA_ERR_UNTRUSTED_KEY);
    assert_int_equal(r.status[0], OTA_SIG_UNTRUSTED);
    assert_int_equal(r.status[1], OTA_SIG_UNTRUSTED);
    assert_int_equal(r.status[2], OTA_SIG_ABSENT);
    /* the trusted block survives a corrupt untrusted one before it */
    block_of(&f, 0)[500] ^= 0x10;
    assert_int_equal(verify(e, &f, &e->rsa1_by_digest, 1, &r), OTA_OK);
    assert_int_equal(r.status[0], OTA_SIG_CORRUPT);
    assert_int_equal(r.valid_block, 1);
    drop(&f);
}

/* ---- refused ---- */

static void test_unsigned(void **state)
{
    env_t *e = *state;
    ota_sig_result_t r;
    file_t raw = load_len("image.bin", 5000);
    assert_int_equal(verify(e, &raw, &e->rsa1_by_digest, 1, &r), OTA_ERR_NOT_SIGNED);
    assert_int_equal(r.valid_block, -1);
    /* the padded image, plus an erased sector */
    uint8_t *img = malloc(SIGNED_LEN);
    assert_non_null(img);
    memset(img, 0xFF, SIGNED_LEN);
    memcpy(img, raw.data, raw.len);
    file_t f = {img, SIGNED_LEN};
    assert_int_equal(verify(e, &f, &e->rsa1_by_digest, 1, &r), OTA_ERR_NOT_SIGNED);
    for (unsigned i = 0; i < OTA_SIG_MAX_BLOCKS; i++) {
        assert_int_equal(r.status[i], OTA_SIG_ABSENT);
        assert_int_equal(r.scheme[i], OTA_SIG_SCHEME_NONE);
    }
    /* a plain image whose size happens to be a multiple of 4096: its last sector
     * is image bytes, not a signature */
    memset(img, 0x5A, SIGNED_LEN);
    assert_int_equal(verify(e, &f, &e->rsa1_by_digest, 1, &r), OTA_ERR_NOT_SIGNED);
    free(img);
    drop(&raw);
}

static void test_other_key(void **state)
{
    env_t *e = *state;
    ota_sig_result_t r;
    file_t f = load_len("image_rsa_key2.bin", SIGNED_LEN);
    assert_int_equal(verify(e, &f, &e->rsa1_by_digest, 1, &r), OTA_ERR_UNTRUSTED_KEY);
    assert_int_equal(r.status[0], OTA_SIG_UNTRUSTED);
    assert_memory_equal(r.key_digest[0], e->rsa2_digest.data, 32);
    assert_int_equal(verify(e, &f, &e->rsa1_by_key, 1, &r), OTA_ERR_UNTRUSTED_KEY);
    /* nothing trusted at all; a key of the other scheme */
    assert_int_equal(verify(e, &f, NULL, 0, &r), OTA_ERR_UNTRUSTED_KEY);
    assert_int_equal(verify(e, &f, &e->ec2_by_key, 1, &r), OTA_ERR_UNTRUSTED_KEY);
    file_t g = load_len("image_ecdsa_key2.bin", SIGNED_LEN);
    assert_int_equal(verify(e, &g, &e->ec1_by_digest, 1, &r), OTA_ERR_UNTRUSTED_KEY);
    assert_int_equal(verify(e, &g, &e->rsa2_by_key, 1, &r), OTA_ERR_UNTRUSTED_KEY);
    drop(&f);
    drop(&g);
}

static void test_forged(void **state)
{
    env_t *e = *state;
    ota_sig_result_t r;
    /* the trusted public key copied into the block does not make a signature */
    file_t f = load_len("image_forged_rsa.bin", SIGNED_LEN);
    assert_int_equal(verify(e, &f, &e->rsa1_by_digest, 1, &r), OTA_ERR_BAD_SIGNATURE);
    assert_int_equal(r.status[0], OTA_SIG_BAD_SIGNATURE);
    assert_int_equal(r.valid_block, -1);
    file_t g = load_len("image_forged_ecdsa.bin", SIGNED_LEN);
    assert_int_equal(verify(e, &g, &e->ec1_by_key, 1, &r), OTA_ERR_BAD_SIGNATURE);
    assert_int_equal(r.status[0], OTA_SIG_BAD_SIGNATURE);
    drop(&f);
    drop(&g);
}

static void test_flipped_image(void **state)
{
    env_t *e = *state;
    ota_sig_result_t r;
    const char *names[] = {"image_rsa.bin", "image_ecdsa.bin"};
    const ota_sig_trusted_t *keys[] = {&e->rsa1_by_digest, &e->ec1_by_digest};
    /* a bit of the image, of its 0xFF padding (signed too), of the last byte */
    const size_t at[] = {0, 1234, 4999, 5000, 7000, IMAGE_LEN - 1};
    for (size_t s = 0; s < 2; s++) {
        file_t f = load_len(names[s], SIGNED_LEN);
        for (size_t i = 0; i < sizeof at / sizeof at[0]; i++) {
            f.data[at[i]] ^= 0x04;
            assert_int_equal(verify(e, &f, keys[s], 1, &r), OTA_ERR_BAD_SIGNATURE);
            assert_int_equal(r.status[0], OTA_SIG_DIGEST_MISMATCH);
            f.data[at[i]] ^= 0x04;
        }
        assert_int_equal(verify(e, &f, keys[s], 1, &r), OTA_OK);
        /* the digest field changed to match another image: CRC fixed, still refused */
        uint8_t *blk = block_of(&f, 0);
        blk[OTA_SIG_OFF_DIGEST + 7] ^= 0x80;
        fix_crc(blk);
        assert_int_equal(verify(e, &f, keys[s], 1, &r), OTA_ERR_BAD_SIGNATURE);
        assert_int_equal(r.status[0], OTA_SIG_DIGEST_MISMATCH);
        drop(&f);
    }
}

static void test_flipped_signature(void **state)
{
    env_t *e = *state;
    ota_sig_result_t r;
    struct {
        const char *name;
        size_t sig_off, sig_len;
        const ota_sig_trusted_t *key;
    } cases[] = {{"image_rsa.bin", OTA_SIG_RSA_OFF_SIG, 384, &e->rsa1_by_digest},
                 {"image_ecdsa.bin", OTA_SIG_ECDSA_OFF_SIG, 64, &e->ec1_by_digest}};
    for (size_t c = 0; c < 2; c++) {
        file_t f = load_len(cases[c].name, SIGNED_LEN);
        uint8_t *blk = block_of(&f, 0);
        const size_t at[] = {0, 1, cases[c].sig_len / 2, cases[c].sig_len - 1};
        for (size_t i = 0; i < sizeof at / sizeof at[0]; i++) {
            uint8_t *p = blk + cases[c].sig_off + at[i];
            *p ^= 0x01;
            /* as it is: the CRC catches it */
            assert_int_equal(verify(e, &f, cases[c].key, 1, &r), OTA_ERR_BAD_SIGNATURE);
            assert_int_equal(r.status[0], OTA_SIG_CORRUPT);
            /* with the CRC made right: the signature check does */
            fix_crc(blk);
            assert_int_equal(verify(e, &f, cases[c].key, 1, &r), OTA_ERR_BAD_SIGNATURE);
            assert_int_equal(r.status[0], OTA_SIG_BAD_SIGNATURE);
            *p ^= 0x01;
            fix_crc(blk);
            assert_int_equal(verify(e, &f, cases[c].key, 1, &r), OTA_OK);
        }
        drop(&f);
    }
    /* ECDSA: r = 0, and r, s above the group order, are out of range: refused */
    file_t f = load_len("image_ecdsa.bin", SIGNED_LEN);
    uint8_t *blk = block_of(&f, 0);
    memset(blk + OTA_SIG_ECDSA_OFF_SIG, 0, 32);
    fix_crc(blk);
    assert_int_equal(verify(e, &f, &e->ec1_by_digest, 1, &r), OTA_ERR_BAD_SIGNATURE);
    memset(blk + OTA_SIG_ECDSA_OFF_SIG, 0xFF, 64); /* above the group order */
    fix_crc(blk);
    assert_int_equal(verify(e, &f, &e->ec1_by_digest, 1, &r), OTA_ERR_BAD_SIGNATURE);
    drop(&f);
}

static void test_bad_crc(void **state)
{
    env_t *e = *state;
    ota_sig_result_t r;
    file_t f = load_len("image_rsa.bin", SIGNED_LEN);
    uint8_t *blk = block_of(&f, 0);
    for (size_t i = 0; i < 4; i++) {
        blk[OTA_SIG_OFF_CRC + i] ^= 0x40;
        assert_int_equal(verify(e, &f, &e->rsa1_by_digest, 1, &r), OTA_ERR_BAD_SIGNATURE);
        assert_int_equal(r.status[0], OTA_SIG_CORRUPT);
        assert_int_equal(r.scheme[0], OTA_SIG_SCHEME_NONE);
        ota_sig_block_t b;
        assert_int_equal(ota_sig_block_parse(blk, &b), OTA_ERR_BAD_SIGNATURE);
        blk[OTA_SIG_OFF_CRC + i] ^= 0x40;
    }
    /* a change in the reserved bytes is covered by the CRC too; the 16 bytes after
     * the CRC are not (ESP does not look at them either) */
    blk[2] ^= 1;
    assert_int_equal(verify(e, &f, &e->rsa1_by_digest, 1, &r), OTA_ERR_BAD_SIGNATURE);
    blk[2] ^= 1;
    blk[OTA_SIG_OFF_CRC + 4] = 0x55;
    assert_int_equal(verify(e, &f, &e->rsa1_by_digest, 1, &r), OTA_OK);
    /* a corrupt block outranks an untrusted one in the error */
    file_t g = load_len("image_rotation.bin", SIGNED_LEN);
    block_of(&g, 1)[100] ^= 1;
    assert_int_equal(verify(e, &g, &e->rsa1_by_digest, 1, &r), OTA_ERR_BAD_SIGNATURE);
    assert_int_equal(r.status[0], OTA_SIG_UNTRUSTED);
    assert_int_equal(r.status[1], OTA_SIG_CORRUPT);
    drop(&f);
    drop(&g);
}

static void test_truncated(void **state)
{
    env_t *e = *state;
    ota_sig_result_t r;
    file_t f = load_len("image_rsa.bin", SIGNED_LEN);
    /* a transfer cut short (or with bytes added) is no signed image */
    const size_t lens[] = {0, 1, 4096, SIGNED_LEN - 1, SIGNED_LEN - 1216, SIGNED_LEN - 4095};
    for (size_t i = 0; i < sizeof lens / sizeof lens[0]; i++)
        assert_int_equal(ota_sig_verify_image(&e->crypto, f.data, lens[i], &e->rsa1_by_digest, 1,
                                              &r),
                         OTA_ERR_NOT_SIGNED);
    /* cut by a whole sector: the image's own last sector is taken for the signature */
    assert_int_equal(ota_sig_verify_image(&e->crypto, f.data, SIGNED_LEN - 4096,
                                          &e->rsa1_by_digest, 1, &r),
                     OTA_ERR_NOT_SIGNED);
    /* the sector alone, short */
    assert_int_equal(ota_sig_verify_sector(&e->crypto, sector_of(&f), OTA_SIG_SECTOR_SIZE - 1,
                                           e->image_sha256.data, &e->rsa1_by_digest, 1, &r),
                     OTA_ERR_NOT_SIGNED);
    assert_int_equal(ota_sig_verify_sector(&e->crypto, sector_of(&f), 1216,
                                           e->image_sha256.data, &e->rsa1_by_digest, 1, &r),
                     OTA_ERR_NOT_SIGNED);
    /* the split rule */
    uint32_t len = 99;
    assert_int_equal(ota_sig_split(SIGNED_LEN, &len), OTA_OK);
    assert_int_equal(len, IMAGE_LEN);
    assert_int_equal(ota_sig_split(8192, &len), OTA_OK);
    assert_int_equal(len, 4096);
    assert_int_equal(ota_sig_split(0xFFFFF000u, &len), OTA_OK);
    assert_int_equal(len, 0xFFFFE000u);
    const uint32_t bad[] = {0, 1, 4095, 4096, 4097, 8191, 8193, 12287, 0xFFFFFFFFu};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        assert_int_equal(ota_sig_split(bad[i], &len), OTA_ERR_NOT_SIGNED);
        assert_int_equal(len, 0);
    }
    assert_int_equal(ota_sig_split(SIGNED_LEN, NULL), OTA_ERR_INVALID_ARG);
    drop(&f);
}

static void test_magic_and_version(void **state)
{
    env_t *e = *state;
    ota_sig_result_t r;
    ota_sig_block_t b;
    file_t f = load_len("image_rsa.bin", SIGNED_LEN);
    uint8_t *blk = block_of(&f, 0);
    /* wrong magic, even with the CRC made right: not a block at all */
    blk[0] = 0xE6;
    fix_crc(blk);
    assert_int_equal(verify(e, &f, &e->rsa1_by_digest, 1, &r), OTA_ERR_NOT_SIGNED);
    assert_int_equal(r.status[0], OTA_SIG_ABSENT);
    blk[0] = OTA_SIG_MAGIC;
    /* unknown versions (0x01 is Secure Boot V1's) */
    const uint8_t versions[] = {0x00, 0x01, 0x04, 0xFF};
    for (size_t i = 0; i < sizeof versions; i++) {
        blk[1] = versions[i];
        fix_crc(blk);
        assert_int_equal(ota_sig_block_parse(blk, &b), OTA_ERR_UNSUPPORTED);
        assert_int_equal(verify(e, &f, &e->rsa1_by_digest, 1, &r), OTA_ERR_UNSUPPORTED);
        assert_int_equal(r.status[0], OTA_SIG_UNSUPPORTED);
    }
    /* an RSA block relabelled ECDSA: its byte 36 is no P-256 curve id (or, by
     * chance, the verification fails): never accepted */
    blk[1] = OTA_SIG_VERSION_ECDSA;
    fix_crc(blk);
    assert_int_not_equal(verify(e, &f, &e->rsa1_by_digest, 1, &r), OTA_OK);
    drop(&f);

    f = load_len("image_ecdsa.bin", SIGNED_LEN);
    blk = block_of(&f, 0);
    blk[1] = OTA_SIG_VERSION_RSA; /* an ECDSA block relabelled RSA: another key digest */
    fix_crc(blk);
    assert_int_equal(verify(e, &f, &e->ec1_by_digest, 1, &r), OTA_ERR_UNTRUSTED_KEY);
    blk[1] = OTA_SIG_VERSION_ECDSA;
    /* P-192 (curve 1), P-384 (curve 3, hash byte 1): other schemes */
    blk[OTA_SIG_ECDSA_OFF_CURVE] = 1;
    fix_crc(blk);
    assert_int_equal(verify(e, &f, &e->ec1_by_digest, 1, &r), OTA_ERR_UNSUPPORTED);
    blk[OTA_SIG_ECDSA_OFF_CURVE] = 3;
    blk[OTA_SIG_OFF_RESERVED] = 1;
    fix_crc(blk);
    assert_int_equal(verify(e, &f, &e->ec1_by_digest, 1, &r), OTA_ERR_UNSUPPORTED);
    blk[OTA_SIG_ECDSA_OFF_CURVE] = OTA_SIG_ECDSA_CURVE_P256;
    fix_crc(blk);
    assert_int_equal(verify(e, &f, &e->ec1_by_digest, 1, &r), OTA_ERR_UNSUPPORTED);
    blk[OTA_SIG_OFF_RESERVED] = 0;
    fix_crc(blk);
    assert_int_equal(verify(e, &f, &e->ec1_by_digest, 1, &r), OTA_OK);
    drop(&f);
}

static void test_salt_length(void **state)
{
    env_t *e = *state;
    ota_sig_result_t r;
    /* a valid PSS signature by the trusted key, but with a 20-byte salt: ESP signs and
     * checks with 32, so do we */
    file_t f = load_len("image_rsa_salt20.bin", SIGNED_LEN);
    assert_int_equal(verify(e, &f, &e->rsa1_by_digest, 1, &r), OTA_ERR_BAD_SIGNATURE);
    assert_int_equal(r.status[0], OTA_SIG_BAD_SIGNATURE);
    drop(&f);
}

/* ---- the crypto table ---- */

static int hook_calls;
static int hook_rc;

static int counting_rsa(void *ctx, const uint8_t *n, uint32_t e, const uint8_t digest[32],
                        const uint8_t *sig)
{
    (void)ctx, (void)n, (void)e, (void)digest, (void)sig;
    hook_calls++;
    return hook_rc;
}

static void test_hooks(void **state)
{
    env_t *e = *state;
    ota_sig_result_t r;
    file_t rsa = load_len("image_rsa.bin", SIGNED_LEN), ec = load_len("image_ecdsa.bin", SIGNED_LEN);
    ota_crypto_port_t c = e->crypto;
    /* no hook: that scheme is unsupported, never valid */
    c.verify_rsa3072_pss = NULL;
    assert_int_equal(ota_sig_verify_image(&c, rsa.data, rsa.len, &e->rsa1_by_digest, 1, &r),
                     OTA_ERR_UNSUPPORTED);
    assert_int_equal(r.status[0], OTA_SIG_UNSUPPORTED);
    assert_int_equal(ota_sig_verify_image(&c, ec.data, ec.len, &e->ec1_by_digest, 1, &r), OTA_OK);
    c = e->crypto;
    c.verify_ecdsa_p256 = NULL;
    assert_int_equal(ota_sig_verify_image(&c, ec.data, ec.len, &e->ec1_by_digest, 1, &r),
                     OTA_ERR_UNSUPPORTED);
    /* an untrusted block is never handed to the hook; a trusted one is, once */
    c = e->crypto;
    c.verify_rsa3072_pss = counting_rsa;
    hook_calls = 0;
    hook_rc = OTA_ERR_BAD_SIGNATURE;
    assert_int_equal(ota_sig_verify_image(&c, rsa.data, rsa.len, &e->rsa2_by_digest, 1, &r),
                     OTA_ERR_UNTRUSTED_KEY);
    assert_int_equal(hook_calls, 0);
    assert_int_equal(ota_sig_verify_image(&c, rsa.data, rsa.len, &e->rsa1_by_digest, 1, &r),
                     OTA_ERR_BAD_SIGNATURE);
    assert_int_equal(hook_calls, 1);
    /* a hook that cannot run is an error of its own, not a verdict on the image */
    hook_rc = OTA_ERR_CRYPTO;
    assert_int_equal(ota_sig_verify_image(&c, rsa.data, rsa.len, &e->rsa1_by_digest, 1, &r),
                     OTA_ERR_CRYPTO);
    hook_rc = -1000;
    assert_int_equal(ota_sig_verify_image(&c, rsa.data, rsa.len, &e->rsa1_by_digest, 1, &r),
                     OTA_ERR_CRYPTO);

    /* the POSIX hooks directly: canonical big-endian arguments */
    uint8_t xy[64], rs[64];
    const uint8_t *blk = block_of(&ec, 0);
    for (int i = 0; i < 32; i++) {
        rs[i] = blk[OTA_SIG_ECDSA_OFF_SIG + 31 - i];
        rs[32 + i] = blk[OTA_SIG_ECDSA_OFF_SIG + 63 - i];
    }
    memcpy(xy, e->ec1_xy.data, 64);
    assert_int_equal(ota_posix_verify_ecdsa_p256(NULL, xy, e->image_sha256.data, rs), OTA_OK);
    xy[63] ^= 1; /* no point of the curve */
    assert_int_equal(ota_posix_verify_ecdsa_p256(NULL, xy, e->image_sha256.data, rs),
                     OTA_ERR_BAD_SIGNATURE);
    memset(xy, 0, sizeof xy);
    assert_int_equal(ota_posix_verify_ecdsa_p256(NULL, xy, e->image_sha256.data, rs),
                     OTA_ERR_BAD_SIGNATURE);
    uint8_t sig[384];
    blk = block_of(&rsa, 0);
    for (int i = 0; i < 384; i++)
        sig[i] = blk[OTA_SIG_RSA_OFF_SIG + 383 - i];
    assert_int_equal(ota_posix_verify_rsa3072_pss(NULL, e->rsa1_n.data, 65537,
                                                  e->image_sha256.data, sig),
                     OTA_OK);
    assert_int_equal(ota_posix_verify_rsa3072_pss(NULL, e->rsa1_n.data, 3, e->image_sha256.data,
                                                  sig),
                     OTA_ERR_BAD_SIGNATURE);
    assert_int_equal(ota_posix_verify_rsa3072_pss(NULL, e->rsa1_n.data, 65536,
                                                  e->image_sha256.data, sig),
                     OTA_ERR_BAD_SIGNATURE); /* even e: no key */
    assert_int_equal(ota_posix_verify_rsa3072_pss(NULL, e->rsa2_n.data, 65537,
                                                  e->image_sha256.data, sig),
                     OTA_ERR_BAD_SIGNATURE);
    uint8_t small_n[384] = {0};
    memcpy(small_n + 256, e->rsa1_n.data, 128); /* a 1024-bit modulus */
    small_n[383] |= 1;
    assert_int_equal(ota_posix_verify_rsa3072_pss(NULL, small_n, 65537, e->image_sha256.data, sig),
                     OTA_ERR_BAD_SIGNATURE);
    drop(&rsa);
    drop(&ec);
}

static void test_arguments(void **state)
{
    env_t *e = *state;
    ota_sig_result_t r;
    file_t f = load_len("image_rsa.bin", SIGNED_LEN);
    const uint8_t *s = sector_of(&f), *d = e->image_sha256.data;
    const ota_sig_trusted_t *t = &e->rsa1_by_digest;
    assert_int_equal(ota_sig_verify_sector(NULL, s, 4096, d, t, 1, &r), OTA_ERR_INVALID_ARG);
    assert_int_equal(r.valid_block, -1);
    assert_int_equal(ota_sig_verify_sector(&e->crypto, NULL, 4096, d, t, 1, &r),
                     OTA_ERR_INVALID_ARG);
    assert_int_equal(ota_sig_verify_sector(&e->crypto, s, 4096, NULL, t, 1, &r),
                     OTA_ERR_INVALID_ARG);
    assert_int_equal(ota_sig_verify_sector(&e->crypto, s, 4096, d, NULL, 1, &r),
                     OTA_ERR_INVALID_ARG);
    ota_crypto_port_t c = e->crypto;
    c.hash_update = NULL;
    assert_int_equal(ota_sig_verify_sector(&c, s, 4096, d, t, 1, &r), OTA_ERR_INVALID_ARG);
    assert_int_equal(ota_sig_verify_image(&c, f.data, f.len, t, 1, &r), OTA_ERR_INVALID_ARG);
    assert_int_equal(ota_sig_verify_image(&e->crypto, NULL, f.len, t, 1, &r),
                     OTA_ERR_INVALID_ARG);
    /* a trusted key given in full that is no key */
    uint8_t even[384];
    memcpy(even, e->rsa1_n.data, 384);
    even[383] &= 0xFE;
    const ota_sig_trusted_t broken = {.key = {OTA_SIG_SCHEME_RSA3072, even, 65537}};
    assert_int_equal(ota_sig_verify_sector(&e->crypto, s, 4096, d, &broken, 1, &r),
                     OTA_ERR_INVALID_ARG);
    /* ... of the other scheme it is not even looked at */
    file_t g = load_len("image_ecdsa.bin", SIGNED_LEN);
    const ota_sig_trusted_t set[] = {broken, e->ec1_by_digest};
    assert_int_equal(verify(e, &g, set, 2, &r), OTA_OK);
    assert_int_equal(r.trusted, 1);
    drop(&f);
    drop(&g);
}

static void test_names(void **state)
{
    (void)state;
    const char *seen[OTA_SIG_NOT_CHECKED + 1];
    for (int s = OTA_SIG_ABSENT; s <= OTA_SIG_NOT_CHECKED; s++) {
        seen[s] = ota_sig_status_name((ota_sig_status_t)s);
        assert_non_null(seen[s]);
        assert_string_not_equal(seen[s], "unknown");
        for (int t = 0; t < s; t++)
            assert_string_not_equal(seen[s], seen[t]);
    }
    assert_string_equal(ota_sig_status_name((ota_sig_status_t)99), "unknown");
    assert_string_equal(ota_strerror(OTA_ERR_NOT_SIGNED), "image is not signed");
    assert_string_not_equal(ota_strerror(OTA_ERR_BAD_SIGNATURE), "unknown error");
    assert_string_not_equal(ota_strerror(OTA_ERR_UNTRUSTED_KEY), "unknown error");
}

int main(int argc, char **argv)
{
    if (argc > 1)
        g_dir = argv[1];
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_block_parse, setup, teardown),
        cmocka_unit_test_setup_teardown(test_key_digest, setup, teardown),
        cmocka_unit_test_setup_teardown(test_valid_rsa, setup, teardown),
        cmocka_unit_test_setup_teardown(test_valid_ecdsa, setup, teardown),
        cmocka_unit_test_setup_teardown(test_rotation, setup, teardown),
        cmocka_unit_test_setup_teardown(test_unsigned, setup, teardown),
        cmocka_unit_test_setup_teardown(test_other_key, setup, teardown),
        cmocka_unit_test_setup_teardown(test_forged, setup, teardown),
        cmocka_unit_test_setup_teardown(test_flipped_image, setup, teardown),
        cmocka_unit_test_setup_teardown(test_flipped_signature, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bad_crc, setup, teardown),
        cmocka_unit_test_setup_teardown(test_truncated, setup, teardown),
        cmocka_unit_test_setup_teardown(test_magic_and_version, setup, teardown),
        cmocka_unit_test_setup_teardown(test_salt_length, setup, teardown),
        cmocka_unit_test_setup_teardown(test_hooks, setup, teardown),
        cmocka_unit_test_setup_teardown(test_arguments, setup, teardown),
        cmocka_unit_test(test_names),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
