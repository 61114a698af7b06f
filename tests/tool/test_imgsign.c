/*
 * test_imgsign.c - unit tests of the ota tool's Secure Boot V2 signing module
 * (src/tools/ota/imgsign.c): keygen (files, modes, no overwrite), key loading (the
 * forms openssl writes, and clear errors for wrong types and sizes), signing round
 * trips for rsa3072 and ecdsa256, the exact byte layout, appending to a signed image
 * (rotation), and inspect on tampered images. Keys made with the openssl command line
 * live in one temporary directory for the whole run. The signatures are checked
 * independently of this code, with openssl, by tests/integration/test_imgsign_openssl.py.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <dirent.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "imgsign.h"
#include "ota/signature.h"
#include "ota_posix.h"

/* ------------------------------------------------------------ fixtures */

static char g_dir[256];

static const char *path_in(const char *name)
{
    static char bufs[8][512];
    static unsigned next;
    char *b = bufs[next++ % 8];
    snprintf(b, sizeof bufs[0], "%s/%s", g_dir, name);
    return b;
}

static void run_ok(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Run a shell command (openssl) in g_dir; the test fails if it does. */
static void run_ok(const char *fmt, ...)
{
    char cmd[2048];
    int n = snprintf(cmd, sizeof cmd, "cd '%s' && ", g_dir);
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(cmd + n, sizeof cmd - (size_t)n, fmt, ap);
    va_end(ap);
    int rc = system(cmd);
    if (rc != 0)
        print_error("command failed (%d): %s\n", rc, cmd);
    assert_int_equal(rc, 0);
}

static void rm_rf(const char *path)
{
    struct stat st;
    if (lstat(path, &st) != 0)
        return;
    if (S_ISDIR(st.st_mode)) {
        DIR *d = opendir(path);
        struct dirent *e;
        while (d != NULL && (e = readdir(d)) != NULL) {
            if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
                continue;
            char sub[1024];
            snprintf(sub, sizeof sub, "%s/%s", path, e->d_name);
            rm_rf(sub);
        }
        if (d != NULL)
            closedir(d);
        rmdir(path);
    } else {
        unlink(path);
    }
}

/* Keys for the whole run, made once by openssl in every form the brief names. */
static int group_setup(void **state)
{
    (void)state;
    snprintf(g_dir, sizeof g_dir, "/tmp/ota-imgsign-test-XXXXXX");
    if (mkdtemp(g_dir) == NULL)
        return -1;
    if (system("openssl version >/dev/null 2>&1") != 0) {
        fprintf(stderr, "test_imgsign needs the openssl command line (Debian package openssl)\n");
        return -1;
    }
    char cmd[4096];
    snprintf(cmd, sizeof cmd,
             "cd '%s' && exec 2>/dev/null && "
             "openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out ec1.pem && "
             "openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out ec2.pem && "
             "openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out ec3.pem && "
             "openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out ec4.pem && "
             "openssl ecparam -name prime256v1 -genkey -noout -out ec_trad.pem && "
             "openssl ecparam -name prime256v1 -genkey -out ec_trad_params.pem && "
             "openssl pkey -in ec1.pem -pubout -out ec1.pub.pem && "
             "openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:3072 -out rsa1.pem && "
             "openssl genrsa -traditional -out rsa_trad.pem 3072 && "
             "openssl pkey -in rsa1.pem -pubout -out rsa1.pub.pem && "
             "openssl genrsa -out rsa2048.pem 2048 && "
             "openssl genrsa -out rsa4096.pem 4096 && "
             "openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-384 -out ec384.pem && "
             "openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:secp256k1 -out k256.pem && "
             "openssl genpkey -algorithm ED25519 -out ed25519.pem && "
             "openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -aes256 "
             "-pass pass:secret -out ec_enc.pem && "
             "printf 'not a key\\n' > garbage.pem",
             g_dir);
    if (system(cmd) != 0) {
        fprintf(stderr, "making the test keys with openssl failed in %s\n", g_dir);
        return -1;
    }
    return 0;
}

static int group_teardown(void **state)
{
    (void)state;
    rm_rf(g_dir);
    return 0;
}

/* A deterministic test image of len bytes that does not end like a signature sector. */
static uint8_t *make_image(size_t len)
{
    uint8_t *p = malloc(len > 0 ? len : 1);
    assert_non_null(p);
    uint32_t x = 0x12345678u ^ (uint32_t)len;
    for (size_t i = 0; i < len; i++) {
        x = x * 1103515245u + 12345u;
        p[i] = (uint8_t)(x >> 16);
    }
    if (len > 0)
        p[0] = 0xE9; /* an ESP app image starts with 0xE9 */
    return p;
}

static uint8_t *read_file(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    assert_int_equal(fseek(f, 0, SEEK_END), 0);
    long n = ftell(f);
    assert_true(n >= 0);
    rewind(f);
    uint8_t *b = malloc((size_t)n + 1);
    assert_non_null(b);
    assert_int_equal(fread(b, 1, (size_t)n, f), (size_t)n);
    fclose(f);
    b[n] = 0;
    *len = (size_t)n;
    return b;
}

static bool exists(const char *path)
{
    struct stat st;
    return lstat(path, &st) == 0;
}

/* Sign or fail the test, printing the error. */
static uint8_t *sign_ok(const uint8_t *img, size_t len, const char *const *keys, size_t n,
                        size_t *out_len)
{
    uint8_t *out = NULL;
    char err[512] = "";
    int rc = imgsign_sign(img, len, keys, n, &out, out_len, err, sizeof err);
    if (rc != 0)
        print_error("imgsign_sign: %s\n", err);
    assert_int_equal(rc, 0);
    assert_non_null(out);
    return out;
}

/* Signing must fail with a message containing want. */
static void sign_fails(const uint8_t *img, size_t len, const char *const *keys, size_t n,
                       const char *want)
{
    uint8_t *out = (uint8_t *)1;
    size_t out_len = 123;
    char err[512] = "";
    int rc = imgsign_sign(img, len, keys, n, &out, &out_len, err, sizeof err);
    if (rc == 0 || strstr(err, want) == NULL)
        print_error("wanted a failure with \"%s\", got rc %d: \"%s\"\n", want, rc, err);
    assert_int_equal(rc, -1);
    assert_non_null(strstr(err, want));
    assert_null(out);
    assert_int_equal(out_len, 0);
}

static void key_digest_ok(const char *path, uint8_t d[32], imgsign_scheme_t want)
{
    char err[512] = "";
    imgsign_scheme_t s = IMGSIGN_SCHEME_UNKNOWN;
    int rc = imgsign_key_digest(path, d, &s, err, sizeof err);
    if (rc != 0)
        print_error("imgsign_key_digest(%s): %s\n", path, err);
    assert_int_equal(rc, 0);
    assert_int_equal(s, want);
}

static uint32_t le32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

/* zlib's crc32, written out again here so the test does not trust the module's */
static uint32_t ref_crc32(const uint8_t *p, size_t n)
{
    uint32_t c = ~0u;
    while (n-- > 0) {
        c ^= *p++;
        for (int k = 0; k < 8; k++)
            c = c & 1u ? (c >> 1) ^ 0xEDB88320u : c >> 1;
    }
    return ~c;
}

static void fix_crc(uint8_t *block)
{
    uint32_t c = ref_crc32(block, IMGSIGN_CRC_LEN);
    block[1196] = (uint8_t)c;
    block[1197] = (uint8_t)(c >> 8);
    block[1198] = (uint8_t)(c >> 16);
    block[1199] = (uint8_t)(c >> 24);
}

static void inspect_ok(const uint8_t *img, size_t len, imgsign_info_t *info, size_t blocks)
{
    char err[512] = "";
    int rc = imgsign_inspect(img, len, info, err, sizeof err);
    if (rc != 1)
        print_error("imgsign_inspect: rc %d: %s\n", rc, err);
    assert_int_equal(rc, 1);
    assert_int_equal(info->n_blocks, blocks);
}

/* The structure every signed output must have, checked byte by byte: the input, 0xFF
 * padding to 4096, then n_blocks blocks (magic, version, reserved, digest, CRC, zero
 * tail) and 0xFF to the end of the sector. */
static void check_layout(const uint8_t *in, size_t in_len, const uint8_t *out, size_t out_len,
                         size_t n_blocks)
{
    size_t padded = (in_len + 4095) / 4096 * 4096;
    assert_int_equal(out_len, padded + 4096);
    assert_memory_equal(out, in, in_len);
    for (size_t i = in_len; i < padded; i++)
        assert_int_equal(out[i], 0xFF);
    const uint8_t *sec = out + padded;
    for (size_t b = 0; b < n_blocks; b++) {
        const uint8_t *blk = sec + b * 1216;
        assert_int_equal(blk[0], 0xE7);
        assert_true(blk[1] == 0x02 || blk[1] == 0x03);
        assert_int_equal(blk[3], 0x00);
        if (blk[1] == 0x02)
            assert_int_equal(blk[2], 0x00);
        assert_int_equal(le32(blk + 1196), ref_crc32(blk, 1196));
        for (size_t i = 1200; i < 1216; i++)
            assert_int_equal(blk[i], 0x00);
        if (blk[1] == 0x03) {
            assert_int_equal(blk[2], 0x00); /* SHA-256 */
            assert_int_equal(blk[36], 2);   /* P-256 */
            for (size_t i = 165; i < 1196; i++)
                assert_int_equal(blk[i], 0x00);
        } else {
            assert_int_equal(le32(blk + 420), 65537u);
            assert_true(blk[36 + 383] & 0x80); /* n's top byte: 3072 bits exactly */
            assert_true(blk[36] & 1);          /* odd modulus */
        }
    }
    for (size_t i = n_blocks * 1216; i < 4096; i++)
        assert_int_equal(sec[i], 0xFF);
}

/* ------------------------------------------------------------ names */

static void test_pub_path(void **state)
{
    (void)state;
    char b[64];
    assert_int_equal(imgsign_pub_path("key.pem", b, sizeof b), 0);
    assert_string_equal(b, "key.pub.pem");
    assert_int_equal(imgsign_pub_path("dir.d/k", b, sizeof b), 0);
    assert_string_equal(b, "dir.d/k.pub.pem");
    assert_int_equal(imgsign_pub_path("a/signing.key", b, sizeof b), 0);
    assert_string_equal(b, "a/signing.key.pub.pem");
    assert_int_equal(imgsign_pub_path(".pem", b, sizeof b), 0);
    assert_string_equal(b, ".pub.pem");
    assert_int_equal(imgsign_pub_path("", b, sizeof b), -1);
    assert_int_equal(imgsign_pub_path("key.pem", b, 11), -1); /* "key.pub.pem" needs 12 */
    assert_int_equal(imgsign_pub_path("key.pem", b, 12), 0);
    assert_string_equal(imgsign_scheme_name(IMGSIGN_SCHEME_RSA3072), "rsa3072");
    assert_string_equal(imgsign_scheme_name(IMGSIGN_SCHEME_ECDSA256), "ecdsa256");
    assert_string_equal(imgsign_scheme_name((imgsign_scheme_t)99), "unknown");
}

/* ------------------------------------------------------------ keygen */

static void keygen_and_check(const char *scheme, const char *name, imgsign_scheme_t want)
{
    const char *priv = path_in(name);
    char pub[512];
    assert_int_equal(imgsign_pub_path(priv, pub, sizeof pub), 0);
    char err[512] = "";
    int rc = imgsign_keygen(scheme, priv, err, sizeof err);
    if (rc != 0)
        print_error("imgsign_keygen: %s\n", err);
    assert_int_equal(rc, 0);

    struct stat st;
    assert_int_equal(stat(priv, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0600);
    assert_int_equal(stat(pub, &st), 0);
    assert_int_equal(st.st_mode & 0022, 0); /* nobody else may replace the public key */

    size_t n;
    char *text = (char *)read_file(priv, &n);
    assert_non_null(strstr(text, want == IMGSIGN_SCHEME_RSA3072 ? "-----BEGIN RSA PRIVATE KEY-----"
                                                                : "-----BEGIN EC PRIVATE KEY-----"));
    free(text);
    text = (char *)read_file(pub, &n);
    assert_non_null(strstr(text, "-----BEGIN PUBLIC KEY-----"));
    assert_null(strstr(text, "PRIVATE"));
    free(text);

    /* openssl reads both and agrees they are one pair of the right kind */
    run_ok("openssl pkey -in '%s' -pubout -out '%s.check' 2>/dev/null && cmp -s '%s.check' '%s'",
           priv, priv, priv, pub);
    run_ok("openssl pkey -in '%s' -noout -text 2>/dev/null | grep -q '%s'", priv,
           want == IMGSIGN_SCHEME_RSA3072 ? "3072 bit" : "NIST CURVE: P-256");

    uint8_t d1[32], d2[32];
    key_digest_ok(priv, d1, want);
    key_digest_ok(pub, d2, want);
    assert_memory_equal(d1, d2, 32);

    /* the new key signs */
    size_t len = 5000, out_len;
    uint8_t *img = make_image(len);
    const char *keys[] = {priv};
    uint8_t *out = sign_ok(img, len, keys, 1, &out_len);
    check_layout(img, len, out, out_len, 1);
    imgsign_info_t info;
    inspect_ok(out, out_len, &info, 1);
    assert_true(info.all_valid);
    assert_int_equal(info.blocks[0].scheme, want);
    assert_memory_equal(info.blocks[0].key_digest, d1, 32);
    free(out);
    free(img);
}

static void test_keygen_ecdsa256(void **state)
{
    (void)state;
    keygen_and_check("ecdsa256", "gen_ec.pem", IMGSIGN_SCHEME_ECDSA256);
}

static void test_keygen_rsa3072(void **state)
{
    (void)state;
    keygen_and_check("rsa3072", "gen_rsa", IMGSIGN_SCHEME_RSA3072);
    assert_true(exists(path_in("gen_rsa.pub.pem")));
}

static void test_keygen_refuses_overwrite(void **state)
{
    (void)state;
    char err[512];
    const char *priv = path_in("keep.pem");
    const char *pub = path_in("keep.pub.pem");

    /* an existing private key file stays as it was; no public file appears */
    FILE *f = fopen(priv, "w");
    assert_non_null(f);
    fputs("precious\n", f);
    fclose(f);
    err[0] = '\0';
    assert_int_equal(imgsign_keygen("ecdsa256", priv, err, sizeof err), -1);
    assert_non_null(strstr(err, "already exists"));
    assert_non_null(strstr(err, "keep.pem"));
    size_t n;
    char *text = (char *)read_file(priv, &n);
    assert_string_equal(text, "precious\n");
    free(text);
    assert_false(exists(pub));

    /* an existing public file alone: refused too, and no private key is left behind */
    assert_int_equal(unlink(priv), 0);
    f = fopen(pub, "w");
    assert_non_null(f);
    fputs("pub\n", f);
    fclose(f);
    err[0] = '\0';
    assert_int_equal(imgsign_keygen("rsa3072", priv, err, sizeof err), -1);
    assert_non_null(strstr(err, "keep.pub.pem already exists"));
    assert_false(exists(priv));
    text = (char *)read_file(pub, &n);
    assert_string_equal(text, "pub\n");
    free(text);

    /* a dangling symlink counts as existing (never follow it to create a file) */
    assert_int_equal(unlink(pub), 0);
    assert_int_equal(symlink(path_in("elsewhere.pem"), priv), 0);
    assert_int_equal(imgsign_keygen("ecdsa256", priv, err, sizeof err), -1);
    assert_non_null(strstr(err, "already exists"));
    assert_false(exists(path_in("elsewhere.pem")));
    unlink(priv);

    /* second run on the same name */
    assert_int_equal(imgsign_keygen("ecdsa256", priv, err, sizeof err), 0);
    assert_int_equal(imgsign_keygen("ecdsa256", priv, err, sizeof err), -1);
    assert_non_null(strstr(err, "refusing to overwrite"));
}

static void test_keygen_errors(void **state)
{
    (void)state;
    char err[512] = "";
    assert_int_equal(imgsign_keygen("ecdsa384", path_in("x.pem"), err, sizeof err), -1);
    assert_string_equal(err, "unknown signing scheme 'ecdsa384': use ecdsa256 or rsa3072");
    assert_false(exists(path_in("x.pem")));
    assert_int_equal(imgsign_keygen("rsa3072", path_in("no/such/dir/k.pem"), err, sizeof err), -1);
    assert_non_null(strstr(err, "cannot create"));
    assert_int_equal(imgsign_keygen(NULL, "k.pem", err, sizeof err), -1);
    assert_int_equal(imgsign_keygen("ecdsa256", "", NULL, 0), -1);
}

/* ------------------------------------------------------------ key loading */

static void test_key_forms(void **state)
{
    (void)state;
    uint8_t a[32], b[32];
    /* PKCS#8 private, SPKI public: one digest */
    key_digest_ok(path_in("ec1.pem"), a, IMGSIGN_SCHEME_ECDSA256);
    key_digest_ok(path_in("ec1.pub.pem"), b, IMGSIGN_SCHEME_ECDSA256);
    assert_memory_equal(a, b, 32);
    key_digest_ok(path_in("rsa1.pem"), a, IMGSIGN_SCHEME_RSA3072);
    key_digest_ok(path_in("rsa1.pub.pem"), b, IMGSIGN_SCHEME_RSA3072);
    assert_memory_equal(a, b, 32);
    /* the traditional forms, and ecparam's file with an EC PARAMETERS block first */
    key_digest_ok(path_in("ec_trad.pem"), a, IMGSIGN_SCHEME_ECDSA256);
    key_digest_ok(path_in("ec_trad_params.pem"), a, IMGSIGN_SCHEME_ECDSA256);
    key_digest_ok(path_in("rsa_trad.pem"), a, IMGSIGN_SCHEME_RSA3072);
    size_t n;
    char *t = (char *)read_file(path_in("rsa_trad.pem"), &n);
    assert_non_null(strstr(t, "BEGIN RSA PRIVATE KEY"));
    free(t);
    t = (char *)read_file(path_in("ec_trad.pem"), &n);
    assert_non_null(strstr(t, "BEGIN EC PRIVATE KEY"));
    free(t);

    /* each of them signs */
    const char *names[] = {"ec_trad.pem", "ec_trad_params.pem", "rsa_trad.pem"};
    uint8_t *img = make_image(100);
    for (size_t i = 0; i < 3; i++) {
        const char *keys[] = {path_in(names[i])};
        size_t out_len;
        uint8_t *out = sign_ok(img, 100, keys, 1, &out_len);
        imgsign_info_t info;
        inspect_ok(out, out_len, &info, 1);
        assert_true(info.all_valid);
        free(out);
    }
    free(img);
}

static void key_error(const char *name, const char *want)
{
    uint8_t img[10] = {0};
    const char *keys[] = {path_in(name)};
    sign_fails(img, sizeof img, keys, 1, want);
}

static void test_wrong_keys(void **state)
{
    (void)state;
    char want[600];
    snprintf(want, sizeof want, "%s is an RSA-2048 key; rsa3072 needs 3072 bits",
             path_in("rsa2048.pem"));
    key_error("rsa2048.pem", want);
    key_error("rsa4096.pem", "is an RSA-4096 key; rsa3072 needs 3072 bits");
    key_error("ec384.pem", "ec384.pem is an ECDSA P-384 key; ecdsa256 needs a P-256 key "
                           "(prime256v1, secp256r1)");
    key_error("k256.pem", "is an ECDSA secp256k1 key; ecdsa256 needs a P-256 key");
    key_error("ed25519.pem", "ed25519.pem is neither an RSA nor an EC key");
    key_error("ec1.pub.pem", "ec1.pub.pem is a public key; signing needs the private key");
    key_error("rsa1.pub.pem", "is a public key; signing needs the private key");
    key_error("ec_enc.pem", "ec_enc.pem is encrypted; use an unencrypted key");
    key_error("garbage.pem", "garbage.pem is not a PEM key file");
    key_error("missing.pem", "cannot open key file");
    key_error("", "is not a regular file"); /* g_dir/ is a directory */

    /* imgsign_key_digest says the same, and takes public keys */
    uint8_t d[32];
    char err[512] = "";
    assert_int_equal(imgsign_key_digest(path_in("rsa2048.pem"), d, NULL, err, sizeof err), -1);
    assert_non_null(strstr(err, "is an RSA-2048 key; rsa3072 needs 3072 bits"));
    run_ok("openssl pkey -in rsa2048.pem -pubout -out rsa2048.pub.pem 2>/dev/null");
    assert_int_equal(imgsign_key_digest(path_in("rsa2048.pub.pem"), d, NULL, err, sizeof err), -1);
    assert_non_null(strstr(err, "is an RSA-2048 key; rsa3072 needs 3072 bits"));

    /* the error names the bad key, even after good ones */
    uint8_t img[10] = {0};
    const char *keys[] = {path_in("ec1.pem"), path_in("ec384.pem")};
    sign_fails(img, sizeof img, keys, 2, "ec384.pem is an ECDSA P-384 key");
}

/* ------------------------------------------------------------ signing */

static void test_roundtrip_ecdsa256(void **state)
{
    (void)state;
    const size_t sizes[] = {1, 4095, 4096, 4097, 10001, 65536};
    const char *keys[] = {path_in("ec1.pem")};
    uint8_t kd[32];
    key_digest_ok(path_in("ec1.pub.pem"), kd, IMGSIGN_SCHEME_ECDSA256);
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
        size_t len = sizes[i], out_len;
        uint8_t *img = make_image(len);
        uint8_t *out = sign_ok(img, len, keys, 1, &out_len);
        check_layout(img, len, out, out_len, 1);
        imgsign_info_t info;
        inspect_ok(out, out_len, &info, 1);
        assert_true(info.all_valid);
        assert_int_equal(info.signed_len, out_len - 4096);
        const imgsign_block_info_t *b = &info.blocks[0];
        assert_int_equal(b->scheme, IMGSIGN_SCHEME_ECDSA256);
        assert_int_equal(b->version, 0x03);
        assert_true(b->digest_matches && b->key_valid && b->signature_valid);
        assert_string_equal(b->problem, "");
        assert_memory_equal(b->key_digest, kd, 32);
        assert_int_equal(b->image_digest_len, 32);
        assert_memory_equal(b->image_digest, info.image_sha256, 32);
        assert_memory_equal(out + info.signed_len + 4, info.image_sha256, 32);

        /* RFC 6979: the same key and image give the same bytes */
        size_t again_len;
        uint8_t *again = sign_ok(img, len, keys, 1, &again_len);
        assert_int_equal(again_len, out_len);
        assert_memory_equal(again, out, out_len);
        free(again);
        free(out);
        free(img);
    }
}

static void test_roundtrip_rsa3072(void **state)
{
    (void)state;
    const size_t sizes[] = {3, 8192, 12289};
    const char *keys[] = {path_in("rsa1.pem")};
    uint8_t kd[32];
    key_digest_ok(path_in("rsa1.pub.pem"), kd, IMGSIGN_SCHEME_RSA3072);
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
        size_t len = sizes[i], out_len;
        uint8_t *img = make_image(len);
        uint8_t *out = sign_ok(img, len, keys, 1, &out_len);
        check_layout(img, len, out, out_len, 1);
        imgsign_info_t info;
        inspect_ok(out, out_len, &info, 1);
        assert_true(info.all_valid);
        const imgsign_block_info_t *b = &info.blocks[0];
        assert_int_equal(b->scheme, IMGSIGN_SCHEME_RSA3072);
        assert_int_equal(b->version, 0x02);
        assert_true(b->digest_matches && b->key_valid && b->signature_valid);
        assert_memory_equal(b->key_digest, kd, 32);
        /* PSS is randomised: a second signature differs only in the signature and CRC */
        size_t again_len;
        uint8_t *again = sign_ok(img, len, keys, 1, &again_len);
        assert_int_equal(again_len, out_len);
        size_t sec = out_len - 4096;
        assert_memory_equal(again, out, sec + 812);
        assert_memory_not_equal(again + sec + 812, out + sec + 812, 384);
        assert_memory_equal(again + sec + 1200, out + sec + 1200, 4096 - 1200);
        free(again);
        free(out);
        free(img);
    }
}

/* The R^2 mod n and M' fields, recomputed here in plain C from the stored n: the chip
 * multiplies with them as stored. */
static void test_rsa_montgomery_fields(void **state)
{
    (void)state;
    const char *keys[] = {path_in("rsa_trad.pem")};
    uint8_t *img = make_image(777);
    size_t out_len;
    uint8_t *out = sign_ok(img, 777, keys, 1, &out_len);
    const uint8_t *blk = out + out_len - 4096;
    /* M' * n0 == -1 mod 2^32 */
    uint32_t n0 = le32(blk + 36), mdash = le32(blk + 808);
    assert_int_equal((uint32_t)(mdash * n0), 0xFFFFFFFFu);
    /* R^2 mod n < n (compare as little-endian numbers from the top) */
    int cmp = 0;
    for (int i = 383; i >= 0 && cmp == 0; i--)
        cmp = (blk[424 + i] > blk[36 + i]) - (blk[424 + i] < blk[36 + i]);
    assert_int_equal(cmp, -1);
    free(out);
    free(img);
}

static void test_rotation(void **state)
{
    (void)state;
    size_t len = 9000, l2, l3;
    uint8_t *img = make_image(len);
    uint8_t d1[32], d2[32], d3[32];
    key_digest_ok(path_in("ec1.pem"), d1, IMGSIGN_SCHEME_ECDSA256);
    key_digest_ok(path_in("ec2.pem"), d2, IMGSIGN_SCHEME_ECDSA256);
    key_digest_ok(path_in("ec3.pem"), d3, IMGSIGN_SCHEME_ECDSA256);

    /* two keys: two blocks, in order */
    const char *k12[] = {path_in("ec1.pem"), path_in("ec2.pem")};
    uint8_t *s2 = sign_ok(img, len, k12, 2, &l2);
    check_layout(img, len, s2, l2, 2);
    imgsign_info_t info;
    inspect_ok(s2, l2, &info, 2);
    assert_true(info.all_valid);
    assert_memory_equal(info.blocks[0].key_digest, d1, 32);
    assert_memory_equal(info.blocks[1].key_digest, d2, 32);

    /* re-signing the signed image appends: old blocks byte for byte, image unchanged */
    const char *k3[] = {path_in("ec3.pem")};
    uint8_t *s3 = sign_ok(s2, l2, k3, 1, &l3);
    assert_int_equal(l3, l2);
    check_layout(img, len, s3, l3, 3);
    assert_memory_equal(s3, s2, l2 - 4096 + 2 * 1216);
    inspect_ok(s3, l3, &info, 3);
    assert_true(info.all_valid);
    assert_memory_equal(info.blocks[2].key_digest, d3, 32);

    /* a fourth does not fit */
    const char *k4[] = {path_in("ec4.pem")};
    sign_fails(s3, l3, k4, 1, "the image already has 3 signature blocks; 1 more would exceed "
                              "the 3 a signature sector holds");
    const char *k34[] = {path_in("ec3.pem"), path_in("ec4.pem")};
    sign_fails(s2, l2, k34, 2, "the image already has 2 signature blocks; 2 more would exceed");

    /* a key that already signed it, or one key twice */
    const char *k2[] = {path_in("ec2.pem")};
    char want[600];
    snprintf(want, sizeof want, "%s already signed this image (signature block 1)",
             path_in("ec2.pem"));
    sign_fails(s2, l2, k2, 1, want);
    const char *k11[] = {path_in("ec1.pem"), path_in("ec_trad.pem"), path_in("ec1.pem")};
    sign_fails(img, len, k11, 3, "are the same key; each block needs its own key");
    /* the same key in another file form is the same key too */
    run_ok("openssl pkey -in ec1.pem -traditional -out ec1_trad_copy.pem 2>/dev/null");
    const char *k1c[] = {path_in("ec1_trad_copy.pem")};
    sign_fails(s2, l2, k1c, 1, "already signed this image (signature block 0)");

    /* RSA rotation too, starting from one block */
    const char *kr[] = {path_in("rsa1.pem")};
    const char *kr2[] = {path_in("rsa_trad.pem")};
    size_t lr, lr2;
    uint8_t *r1 = sign_ok(img, len, kr, 1, &lr);
    uint8_t *r2 = sign_ok(r1, lr, kr2, 1, &lr2);
    check_layout(img, len, r2, lr2, 2);
    assert_memory_equal(r2, r1, lr - 4096 + 1216);
    inspect_ok(r2, lr2, &info, 2);
    assert_true(info.all_valid);

    /* and one chip verifies one scheme: no RSA next to ECDSA */
    sign_fails(r1, lr, k3, 1, "the image is signed with rsa3072 (block 0) and ");
    const char *mixed[] = {path_in("ec1.pem"), path_in("rsa1.pem")};
    sign_fails(img, len, mixed, 2, "a chip verifies one scheme");

    free(r1);
    free(r2);
    free(s2);
    free(s3);
    free(img);
}

static void test_sign_argument_errors(void **state)
{
    (void)state;
    uint8_t img[16] = {1};
    const char *k[] = {path_in("ec1.pem"), path_in("ec2.pem"), path_in("ec3.pem"),
                       path_in("ec4.pem")};
    sign_fails(img, sizeof img, k, 0, "no signing key given");
    sign_fails(img, sizeof img, k, 4, "4 signing keys given; a signature sector holds at most 3");
    sign_fails(img, 0, k, 1, "the image is empty");
    const char *knull[] = {NULL};
    sign_fails(img, sizeof img, knull, 1, "signing key 1: no file name");
    uint8_t *out;
    size_t out_len;
    assert_int_equal(imgsign_sign(img, sizeof img, k, 1, NULL, &out_len, NULL, 0), -1);
    assert_int_equal(imgsign_sign(NULL, 5, k, 1, &out, &out_len, NULL, 0), -1);
    imgsign_info_t info;
    assert_int_equal(imgsign_inspect(img, sizeof img, NULL, NULL, 0), -1);
    assert_int_equal(imgsign_inspect(NULL, 4096, &info, NULL, 0), -1);
}

/* ------------------------------------------------------------ detached signatures */

static void sign_digest_fails(const char *const *keys, size_t n, const char *want)
{
    uint8_t digest[32] = {1, 2, 3};
    uint8_t sector[IMGSIGN_SECTOR_SIZE];
    char err[512] = "";
    memset(sector, 0, sizeof sector);
    int rc = imgsign_sign_digest(digest, keys, n, sector, err, sizeof err);
    if (rc == 0 || strstr(err, want) == NULL)
        print_error("wanted a failure with \"%s\", got rc %d: \"%s\"\n", want, rc, err);
    assert_int_equal(rc, -1);
    assert_non_null(strstr(err, want));
    for (size_t i = 0; i < sizeof sector; i++)
        if (sector[i] != 0xFF && sector[i] != 0)
            fail_msg("byte %zu of a failed sector is 0x%02x", i, sector[i]);
}

/* imgsign_sign_digest(): a sector over any digest (ota publish: manifest.json), the
 * same blocks imgsign_sign() makes for an image of that digest, checked by the core. */
static void test_sign_digest(void **state)
{
    (void)state;
    /* an aligned image: imgsign_sign() signs exactly its SHA-256 */
    size_t len = 8192, out_len;
    uint8_t *img = make_image(len);
    const char *ec[] = {path_in("ec1.pem"), path_in("ec2.pem")};
    uint8_t *signed_img = sign_ok(img, len, ec, 2, &out_len);
    assert_int_equal(out_len, len + IMGSIGN_SECTOR_SIZE);
    imgsign_info_t info;
    inspect_ok(signed_img, out_len, &info, 2);
    uint8_t sector[IMGSIGN_SECTOR_SIZE];
    char err[512] = "";
    int rc = imgsign_sign_digest(info.image_sha256, ec, 2, sector, err, sizeof err);
    if (rc != 0)
        print_error("imgsign_sign_digest: %s\n", err);
    assert_int_equal(rc, 0);
    /* ECDSA signatures are deterministic (RFC 6979): the very same sector */
    assert_memory_equal(sector, signed_img + len, IMGSIGN_SECTOR_SIZE);

    /* the core accepts it for that digest with either key, and for nothing else */
    uint8_t kd[2][32];
    key_digest_ok(path_in("ec1.pub.pem"), kd[0], IMGSIGN_SCHEME_ECDSA256);
    key_digest_ok(ec[1], kd[1], IMGSIGN_SCHEME_ECDSA256);
    for (int k = 0; k < 2; k++) {
        ota_sig_trusted_t t = {.digest = kd[k]};
        ota_sig_result_t res;
        assert_int_equal(ota_sig_verify_sector(&ota_posix_crypto, sector, sizeof sector,
                                               info.image_sha256, &t, 1, &res), 0);
        assert_int_equal(res.valid_block, k);
        uint8_t other[32];
        memcpy(other, info.image_sha256, 32);
        other[31] ^= 1;
        assert_int_equal(ota_sig_verify_sector(&ota_posix_crypto, sector, sizeof sector, other,
                                               &t, 1, NULL), OTA_ERR_BAD_SIGNATURE);
    }
    /* the rest of the sector is 0xFF */
    for (size_t i = 2 * IMGSIGN_BLOCK_SIZE; i < sizeof sector; i++)
        assert_int_equal(sector[i], 0xFF);

    /* RSA: randomised, but it verifies */
    const char *rsa[] = {path_in("rsa1.pem")};
    uint8_t digest[32] = {0xAB};
    assert_int_equal(imgsign_sign_digest(digest, rsa, 1, sector, err, sizeof err), 0);
    uint8_t rkd[32];
    key_digest_ok(path_in("rsa1.pub.pem"), rkd, IMGSIGN_SCHEME_RSA3072);
    ota_sig_trusted_t rt = {.digest = rkd};
    assert_int_equal(ota_sig_verify_sector(&ota_posix_crypto, sector, sizeof sector, digest, &rt,
                                           1, NULL), 0);
    for (size_t i = IMGSIGN_BLOCK_SIZE; i < sizeof sector; i++)
        assert_int_equal(sector[i], 0xFF);

    /* the same refusals as imgsign_sign() */
    const char *four[] = {path_in("ec1.pem"), path_in("ec2.pem"), path_in("ec3.pem"),
                          path_in("ec4.pem")};
    sign_digest_fails(four, 0, "no signing key given");
    sign_digest_fails(four, 4, "4 signing keys given");
    const char *twice[] = {path_in("ec1.pem"), path_in("ec1.pem")};
    sign_digest_fails(twice, 2, "are the same key");
    const char *mixed[] = {path_in("ec1.pem"), path_in("rsa1.pem")};
    sign_digest_fails(mixed, 2, "a chip verifies one scheme");
    const char *pub[] = {path_in("ec1.pub.pem")};
    sign_digest_fails(pub, 1, "ec1.pub.pem");
    const char *garbage[] = {path_in("garbage.pem")};
    sign_digest_fails(garbage, 1, "garbage.pem");
    assert_int_equal(imgsign_sign_digest(NULL, ec, 1, sector, NULL, 0), -1);
    assert_int_equal(imgsign_sign_digest(digest, ec, 1, NULL, NULL, 0), -1);
    free(signed_img);
    free(img);
}

/* ------------------------------------------------------------ inspect */

static void test_inspect_unsigned(void **state)
{
    (void)state;
    imgsign_info_t info;
    char err[512] = "";
    uint8_t *img = make_image(8192);
    assert_int_equal(imgsign_inspect(img, 5000, &info, err, sizeof err), 0);
    assert_string_equal(err, "not signed: a signed image is a multiple of 4096 bytes, this one "
                             "has 5000");
    assert_int_equal(info.n_blocks, 0);
    assert_false(info.all_valid);
    assert_int_equal(imgsign_inspect(img, 0, &info, err, sizeof err), 0);
    img[4096] = 0x42;
    assert_int_equal(imgsign_inspect(img, 8192, &info, err, sizeof err), 0);
    assert_non_null(strstr(err, "hold no signature block (byte 0 is 0x42, not the magic 0xE7)"));

    /* an aligned unsigned image is signed over all of it, with no padding */
    const char *keys[] = {path_in("ec2.pem")};
    size_t out_len;
    uint8_t *out = sign_ok(img, 8192, keys, 1, &out_len);
    check_layout(img, 8192, out, out_len, 1);
    assert_int_equal(out_len, 8192 + 4096);
    free(out);
    free(img);
}

static void test_inspect_tampered(void **state)
{
    (void)state;
    size_t len = 6000, out_len;
    uint8_t *img = make_image(len);
    const char *ke[] = {path_in("ec1.pem"), path_in("ec2.pem")};
    const char *kr[] = {path_in("rsa1.pem")};
    imgsign_info_t info;
    char err[512];

    /* one byte of the image: both blocks' digests stop matching */
    uint8_t *s = sign_ok(img, len, ke, 2, &out_len);
    size_t sec = out_len - 4096;
    s[100] ^= 1;
    inspect_ok(s, out_len, &info, 2);
    assert_false(info.all_valid);
    for (size_t b = 0; b < 2; b++) {
        assert_false(info.blocks[b].digest_matches);
        assert_true(info.blocks[b].signature_valid); /* over the digest it stores */
        assert_non_null(strstr(info.blocks[b].problem, "the image was changed after signing"));
    }
    /* ... and appending to it is refused */
    const char *k3[] = {path_in("ec3.pem")};
    sign_fails(s, out_len, k3, 1, "signature block 0 is over another image");
    s[100] ^= 1;

    /* the padding is signed too */
    s[sec - 1] = 0xFE;
    inspect_ok(s, out_len, &info, 2);
    assert_false(info.blocks[0].digest_matches);
    s[sec - 1] = 0xFF;

    /* the signature of block 1, with its CRC fixed: block 1 alone fails */
    s[sec + 1216 + 101] ^= 0x80;
    fix_crc(s + sec + 1216);
    inspect_ok(s, out_len, &info, 2);
    assert_false(info.all_valid);
    assert_true(info.blocks[0].signature_valid && info.blocks[0].digest_matches);
    assert_false(info.blocks[1].signature_valid);
    assert_true(info.blocks[1].digest_matches);
    assert_string_equal(info.blocks[1].problem, "the ECDSA signature does not verify");
    sign_fails(s, out_len, k3, 1, "signature block 1 is not valid (the ECDSA signature does not "
                                  "verify); refusing to keep it");

    /* block 1 without its CRC fixed: the list ends at block 0, and signing refuses */
    s[sec + 1216 + 200] ^= 1;
    inspect_ok(s, out_len, &info, 1);
    assert_true(info.all_valid);
    sign_fails(s, out_len, k3, 1, "signature block 1 of the image's signature sector is damaged");

    /* block 0 damaged: not signed, says inspect; sign refuses to sign over it */
    s[sec + 50] ^= 1;
    err[0] = '\0';
    assert_int_equal(imgsign_inspect(s, out_len, &info, err, sizeof err), 0);
    assert_non_null(strstr(err, "signature block 0 of the last 4096 bytes is damaged"));
    sign_fails(s, out_len, k3, 1, "signature block 0 of the image's signature sector is damaged");
    free(s);

    /* the point off the curve */
    s = sign_ok(img, len, ke, 1, &out_len);
    sec = out_len - 4096;
    s[sec + 37] ^= 1;
    fix_crc(s + sec);
    inspect_ok(s, out_len, &info, 1);
    assert_false(info.blocks[0].key_valid);
    assert_false(info.blocks[0].signature_valid);
    assert_non_null(strstr(info.blocks[0].problem, "not a point of the curve"));
    free(s);

    /* RSA: a wrong R^2 mod n is caught although the signature still verifies (the chip
     * would compute garbage with it); a wrong M' too; then a flipped signature bit */
    s = sign_ok(img, len, kr, 1, &out_len);
    sec = out_len - 4096;
    s[sec + 424] ^= 1;
    fix_crc(s + sec);
    inspect_ok(s, out_len, &info, 1);
    assert_false(info.all_valid);
    assert_false(info.blocks[0].key_valid);
    assert_true(info.blocks[0].signature_valid);
    assert_true(info.blocks[0].digest_matches);
    assert_non_null(strstr(info.blocks[0].problem, "R^2 mod n or M'"));
    s[sec + 424] ^= 1;
    s[sec + 808] ^= 4;
    fix_crc(s + sec);
    inspect_ok(s, out_len, &info, 1);
    assert_false(info.blocks[0].key_valid);
    s[sec + 808] ^= 4;
    s[sec + 812 + 383] ^= 1;
    fix_crc(s + sec);
    inspect_ok(s, out_len, &info, 1);
    assert_true(info.blocks[0].key_valid);
    assert_false(info.blocks[0].signature_valid);
    assert_string_equal(info.blocks[0].problem, "the RSA-PSS signature does not verify");
    /* a 2048-bit modulus in a block */
    s[sec + 812 + 383] ^= 1;
    memset(s + sec + 36 + 256, 0, 128);
    fix_crc(s + sec);
    inspect_ok(s, out_len, &info, 1);
    assert_false(info.blocks[0].key_valid);
    assert_non_null(strstr(info.blocks[0].problem, "not 3072"));
    free(s);
    free(img);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_pub_path),
        cmocka_unit_test(test_keygen_ecdsa256),
        cmocka_unit_test(test_keygen_rsa3072),
        cmocka_unit_test(test_keygen_refuses_overwrite),
        cmocka_unit_test(test_keygen_errors),
        cmocka_unit_test(test_key_forms),
        cmocka_unit_test(test_wrong_keys),
        cmocka_unit_test(test_roundtrip_ecdsa256),
        cmocka_unit_test(test_roundtrip_rsa3072),
        cmocka_unit_test(test_rsa_montgomery_fields),
        cmocka_unit_test(test_rotation),
        cmocka_unit_test(test_sign_argument_errors),
        cmocka_unit_test(test_sign_digest),
        cmocka_unit_test(test_inspect_unsigned),
        cmocka_unit_test(test_inspect_tampered),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
