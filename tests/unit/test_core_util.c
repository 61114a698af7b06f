/*
 * test_core_util.c - unit tests of the core's helpers (hex, big-endian,
 * constant-time compare, string builder), the error-to-response mapping and the
 * challenge computations (legacy and salted), the latter against known answers
 * computed outside this code (Python's hashlib, hmac and base64).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "fake_port.h"
#include "ota_posix.h"
#include "ota/auth.h"
#include "ota/errors.h"
#include "ota/protocol.h"
#include "ota/util.h"

static void test_hex_round_trip(void **state)
{
    (void)state;
    uint8_t in[4] = {0x00, 0x9f, 0xa0, 0xff}, back[4];
    char hex[8];
    ota_hex_encode(in, 4, hex);
    assert_memory_equal(hex, "009fa0ff", 8);
    assert_int_equal(ota_hex_decode("009FA0ff", 4, back), 0);
    assert_memory_equal(back, in, 4);
    assert_int_equal(ota_hex_decode("00g0", 2, back), -1);
    assert_int_equal(ota_hex_decode("0 00", 2, back), -1);
}

static void test_be32_and_ct_equal(void **state)
{
    (void)state;
    uint8_t b[4];
    ota_be32_put(b, 0x01020304u);
    assert_int_equal(b[0], 1);
    assert_int_equal(b[3], 4);
    assert_int_equal(ota_be32_get(b), 0x01020304u);
    assert_true(ota_ct_equal("abc", "abc", 3));
    assert_false(ota_ct_equal("abc", "abd", 3));
    assert_true(ota_ct_equal("x", "y", 0));
    uint8_t secret[8] = {1, 2, 3, 4, 5, 6, 7, 8};
    ota_wipe(secret, sizeof secret);
    for (size_t i = 0; i < sizeof secret; i++)
        assert_int_equal(secret[i], 0);
}

static void test_strbuf_truncates_safely(void **state)
{
    (void)state;
    char buf[12];
    ota_strbuf_t sb;
    ota_sb_init(&sb, buf, sizeof buf);
    ota_sb_str(&sb, "n=");
    ota_sb_u32(&sb, 4294967295u);
    assert_string_equal(buf, "n=429496729"); /* cut at capacity, NUL-terminated */
    ota_sb_init(&sb, buf, sizeof buf);
    ota_sb_i32(&sb, -2147483647 - 1);
    assert_string_equal(buf, "-2147483648");
    ota_sb_init(&sb, buf, sizeof buf);
    ota_sb_hex8(&sb, 0xA0);
    ota_sb_str(&sb, NULL);
    assert_string_equal(buf, "0xa0(null)");
    ota_sb_init(&sb, buf, sizeof buf);
    ota_sb_u32(&sb, 0);
    assert_string_equal(buf, "0");
}

static void test_error_mapping(void **state)
{
    (void)state;
    assert_int_equal(ota_protocol_response_for_error(OTA_ERR_BAD_MAGIC), 0x80);
    assert_int_equal(ota_protocol_response_for_error(OTA_ERR_BAD_IMAGE), 0x80);
    assert_int_equal(ota_protocol_response_for_error(OTA_ERR_NOT_SIGNED), 0x8D);
    assert_int_equal(ota_protocol_response_for_error(OTA_ERR_BAD_SIGNATURE), 0x8D);
    assert_int_equal(ota_protocol_response_for_error(OTA_ERR_UNTRUSTED_KEY), 0x8D);
    assert_int_equal(ota_protocol_response_for_error(OTA_ERR_NO_SPACE), 0x81);
    assert_int_equal(ota_protocol_response_for_error(OTA_ERR_PREPARE), 0x81);
    assert_int_equal(ota_protocol_response_for_error(OTA_ERR_NO_SPACE_LAYOUT), 0x88);
    assert_int_equal(ota_protocol_response_for_error(OTA_ERR_AUTH), 0x82);
    assert_int_equal(ota_protocol_response_for_error(OTA_ERR_NO_AUTH_METHOD), 0x82);
    assert_int_equal(ota_protocol_response_for_error(OTA_ERR_WRITE), 0x83);
    assert_int_equal(ota_protocol_response_for_error(OTA_ERR_ACTIVATE), 0x84);
    assert_int_equal(ota_protocol_response_for_error(OTA_ERR_NO_SLOT), 0x8A);
    assert_int_equal(ota_protocol_response_for_error(OTA_ERR_MD5_MISMATCH), 0x8B);
    assert_int_equal(ota_protocol_response_for_error(OTA_ERR_UNSUPPORTED), 0x8E);
    assert_int_equal(ota_protocol_response_for_error(OTA_ERR_BUSY), 0xA0);
    assert_int_equal(ota_protocol_response_for_error(OTA_ERR_IO), 0xFF);
    /* every OTA_ERR_* has its own description */
    for (int e = OTA_ERR_TLS; e <= OTA_ERR_WOULD_BLOCK; e++)
        assert_string_not_equal(ota_strerror(e), "unknown error");
    assert_string_equal(ota_strerror(-999), "unknown error");
    /* names for every code of the table, none for gaps */
    const uint8_t codes[] = {0x00, 0x01, 0x02, 0x10, 0x40, 0x41, 0x42, 0x43, 0x44, 0x45,
                             0x46, 0x47, 0x48, 0x80, 0x81, 0x82, 0x83, 0x84, 0x85, 0x86,
                             0x87, 0x88, 0x89, 0x8A, 0x8B, 0x8C, 0x8D, 0x8E, 0xA0, 0xFF};
    for (size_t i = 0; i < sizeof codes; i++)
        assert_non_null(ota_protocol_response_name(codes[i]));
    assert_null(ota_protocol_response_name(0x49));
    assert_string_equal(ota_protocol_response_name(0xA0), "ERROR_BUSY");
}

/* Known answers from Python: hashlib.sha256(("VERYSECURE"+nonce+cnonce).encode()) */
static void test_challenge_known_answers(void **state)
{
    (void)state;
    char out[64];
    const char *n = "0f1e2d3c4b5a69788796a5b4c3d2e1f000112233445566778899aabbccddeeff";
    const char *c = "ffeeddccbbaa99887766554433221100f0e1d2c3b4a5968778695a4b3c2d1e0f";
    assert_int_equal(ota_auth_challenge_response(&ota_posix_crypto, OTA_RESP_REQUEST_AUTH_SHA256,
                                                 "VERYSECURE", n, c, out),
                     OTA_OK);
    assert_memory_equal(out, "fb6025496c27f880db4f520293696c4b96a6d963ad6ea7797160aa8737c3056d",
                        64);
    assert_int_equal(ota_auth_challenge_response(&ota_posix_crypto, OTA_RESP_REQUEST_AUTH_MD5,
                                                 "VERYSECURE", "0123456789abcdef0123456789abcdef",
                                                 "fedcba9876543210fedcba9876543210", out),
                     OTA_OK);
    assert_memory_equal(out, "0d9db69c2724212901bc569d9564954a", 32);
    assert_int_equal(ota_auth_challenge_response(&ota_posix_crypto, 0x10, "x", n, c, out),
                     OTA_ERR_INVALID_ARG);
    assert_int_equal(ota_auth_hex_len(OTA_RESP_REQUEST_AUTH_MD5), 32);
    assert_int_equal(ota_auth_hex_len(OTA_RESP_REQUEST_AUTH_SHA256), 64);
    assert_int_equal(ota_auth_hex_len(0x41), 0);
}

/* ---- salted auth: known answers from Python (hashlib.pbkdf2_hmac, hmac, base64)
 * for password VERYSECURE, salt 00..0f, 4096 iterations, server nonce 20..3f,
 * client nonce 40..5f. */
static const char kat_verifier[] = "SCRAM-SHA-256$4096:AAECAwQFBgcICQoLDA0ODw==$2uICRsgZ3TbPROMi9wjAzyQ11p/XoXKYZ7QpTgRbtzI=:W2xNrGjzDmFHx9hV5Q0pgs1dLE8K+klhf2+61O3ZFkg=";
static const uint8_t kat_salted_password[32] = {0x81, 0xc2, 0x5b, 0x84, 0xff, 0xe2, 0x64, 0xe6, 0x6a, 0xff, 0xb6, 0x03, 0xa3, 0xdc, 0x03, 0x75, 0xaf, 0xe9, 0xbf, 0xc1, 0xa7, 0x00, 0xe6, 0x5f, 0xbc, 0x21, 0xaa, 0x9c, 0x45, 0x96, 0xfb, 0x4f};
static const uint8_t kat_stored[32] = {0xda, 0xe2, 0x02, 0x46, 0xc8, 0x19, 0xdd, 0x36, 0xcf, 0x44, 0xe3, 0x22, 0xf7, 0x08, 0xc0, 0xcf, 0x24, 0x35, 0xd6, 0x9f, 0xd7, 0xa1, 0x72, 0x98, 0x67, 0xb4, 0x29, 0x4e, 0x04, 0x5b, 0xb7, 0x32};
static const uint8_t kat_server[32] = {0x5b, 0x6c, 0x4d, 0xac, 0x68, 0xf3, 0x0e, 0x61, 0x47, 0xc7, 0xd8, 0x55, 0xe5, 0x0d, 0x29, 0x82, 0xcd, 0x5d, 0x2c, 0x4f, 0x0a, 0xfa, 0x49, 0x61, 0x7f, 0x6f, 0xba, 0xd4, 0xed, 0xd9, 0x16, 0x48};
static const uint8_t kat_proof[32] = {0xeb, 0x6c, 0xff, 0x81, 0x2c, 0xff, 0x49, 0x7e, 0x6e, 0x46, 0xf2, 0x46, 0xcf, 0xc0, 0x7c, 0xe9, 0x56, 0x48, 0x2d, 0x58, 0xe1, 0x20, 0x45, 0x19, 0x75, 0xdf, 0x0c, 0xb9, 0x53, 0xfe, 0x3c, 0x3c};
static const uint8_t kat_sig[32] = {0x5e, 0x0a, 0x0d, 0x82, 0x0a, 0x3a, 0x83, 0x1f, 0xb9, 0xc7, 0x87, 0xca, 0x8b, 0x6f, 0x34, 0x1b, 0x6b, 0x54, 0x30, 0x11, 0xf8, 0x9b, 0xf1, 0xea, 0x18, 0x9a, 0xe3, 0x49, 0xea, 0x44, 0x3b, 0x59};

static void kat_nonces(uint8_t *salt, uint8_t *sn, uint8_t *cn)
{
    for (int i = 0; i < 16; i++)
        salt[i] = (uint8_t)i;
    for (int i = 0; i < 32; i++) {
        sn[i] = (uint8_t)(32 + i);
        cn[i] = (uint8_t)(64 + i);
    }
}

static void test_verifier_parse_and_format(void **state)
{
    (void)state;
    ota_verifier_t v;
    assert_int_equal(ota_verifier_parse(kat_verifier, &v), OTA_OK);
    assert_int_equal(v.iterations, 4096);
    for (int i = 0; i < 16; i++)
        assert_int_equal(v.salt[i], i);
    assert_memory_equal(v.stored_key, kat_stored, 32);
    assert_memory_equal(v.server_key, kat_server, 32);
    char text[OTA_VERIFIER_TEXT_MAX];
    assert_int_equal(ota_verifier_format(&v, text, sizeof text), strlen(kat_verifier));
    assert_string_equal(text, kat_verifier);
    assert_int_equal(ota_verifier_format(&v, text, 10), 0);
}

static void test_verifier_rejects_malformed(void **state)
{
    (void)state;
    ota_verifier_t v;
    const char *bad[] = {
        "",
        "VERYSECURE",
        "SCRAM-SHA-1$4096:AAECAwQFBgcICQoLDA0ODw==$2uICRsgZ3TbPROMi9wjAzyQ11p/XoXKYZ7QpTgRbtzI=:W2xNrGjzDmFHx9hV5Q0pgs1dLE8K+klhf2+61O3ZFkg=",
        "SCRAM-SHA-256$4095:AAECAwQFBgcICQoLDA0ODw==$2uICRsgZ3TbPROMi9wjAzyQ11p/XoXKYZ7QpTgRbtzI=:W2xNrGjzDmFHx9hV5Q0pgs1dLE8K+klhf2+61O3ZFkg=",
        "SCRAM-SHA-256$99999999999:AAECAwQFBgcICQoLDA0ODw==$2uICRsgZ3TbPROMi9wjAzyQ11p/XoXKYZ7QpTgRbtzI=:W2xNrGjzDmFHx9hV5Q0pgs1dLE8K+klhf2+61O3ZFkg=",
        "SCRAM-SHA-256$40x6:AAECAwQFBgcICQoLDA0ODw==$2uICRsgZ3TbPROMi9wjAzyQ11p/XoXKYZ7QpTgRbtzI=:W2xNrGjzDmFHx9hV5Q0pgs1dLE8K+klhf2+61O3ZFkg=",
        "SCRAM-SHA-256$4096:AAECAwQFBgcICQoL$2uICRsgZ3TbPROMi9wjAzyQ11p/XoXKYZ7QpTgRbtzI=:W2xNrGjzDmFHx9hV5Q0pgs1dLE8K+klhf2+61O3ZFkg=",
        "SCRAM-SHA-256$4096:AAECAwQFBgcICQoLDA0ODw==$2uICRsgZ3TbPROMi9wjAzyQ11p/XoXKYZ7QpTgRbtzI=",
        "SCRAM-SHA-256$4096:AAECAwQFBgcICQoLDA0ODw==$2uICRsgZ3TbPROMi9wjAzyQ11p/XoXKYZ7QpTgRbtzI=:W2xNrGjzDmFHx9hV5Q0pgs1dLE8K+klhf2+61O3ZFkg=x",
        "SCRAM-SHA-256$4096:AAECAwQFBgcICQoLDA0ODw==$2uICRsgZ3TbPROMi9wjAzyQ11p/XoXKYZ7QpTgRb!zI=:W2xNrGjzDmFHx9hV5Q0pgs1dLE8K+klhf2+61O3ZFkg=",
        "SCRAM-SHA-256$:AAECAwQFBgcICQoLDA0ODw==$2uICRsgZ3TbPROMi9wjAzyQ11p/XoXKYZ7QpTgRbtzI=:W2xNrGjzDmFHx9hV5Q0pgs1dLE8K+klhf2+61O3ZFkg=",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        assert_int_equal(ota_verifier_parse(bad[i], &v), OTA_ERR_INVALID_ARG);
    assert_int_equal(ota_verifier_parse(NULL, &v), OTA_ERR_INVALID_ARG);
}

static void test_base64(void **state)
{
    (void)state;
    char out[16];
    uint8_t back[8];
    assert_int_equal(ota_base64_encode((const uint8_t *)"f", 1, out, sizeof out), 4);
    assert_string_equal(out, "Zg==");
    assert_int_equal(ota_base64_encode((const uint8_t *)"foob", 4, out, sizeof out), 8);
    assert_string_equal(out, "Zm9vYg==");
    assert_int_equal(ota_base64_encode((const uint8_t *)"foo", 3, out, 4), 0);
    assert_int_equal(ota_base64_decode("Zm9vYmFy", 8, back, sizeof back), 6);
    assert_memory_equal(back, "foobar", 6);
    assert_int_equal(ota_base64_decode("Zm9vYg==", 8, back, sizeof back), 4);
    assert_int_equal(ota_base64_decode("Zm9vY===", 8, back, sizeof back), -1);
    assert_int_equal(ota_base64_decode("Zg==Zm9v", 8, back, sizeof back), -1);
    assert_int_equal(ota_base64_decode("Zm9", 3, back, sizeof back), -1);
    assert_int_equal(ota_base64_decode("Zm9vYmFy", 8, back, 5), -1);
}

static void test_salted_known_answers(void **state)
{
    (void)state;
    uint8_t salt[16], sn[32], cn[32];
    kat_nonces(salt, sn, cn);
    uint8_t stored[32], server[32];
    assert_int_equal(ota_salted_keys(&ota_posix_crypto, kat_salted_password, NULL, stored, server),
                     OTA_OK);
    assert_memory_equal(stored, kat_stored, 32);
    assert_memory_equal(server, kat_server, 32);

    uint8_t msg[OTA_SALTED_AUTH_MESSAGE_LEN];
    ota_salted_auth_message(sn, cn, salt, 4096, msg);
    assert_memory_equal(msg, "ota-salted-auth-v1", 18);
    uint8_t proof[32], sig[32];
    assert_int_equal(
        ota_salted_client_proof(&ota_posix_crypto, kat_salted_password, msg, proof, sig), OTA_OK);
    assert_memory_equal(proof, kat_proof, 32);
    assert_memory_equal(sig, kat_sig, 32);

    ota_verifier_t v;
    assert_int_equal(ota_verifier_parse(kat_verifier, &v), OTA_OK);
    uint8_t dev_sig[32];
    assert_int_equal(ota_salted_verify(&ota_posix_crypto, &v, msg, kat_proof, dev_sig), OTA_OK);
    assert_memory_equal(dev_sig, kat_sig, 32);
    uint8_t tampered[32];
    memcpy(tampered, kat_proof, 32);
    tampered[31] ^= 1;
    assert_int_equal(ota_salted_verify(&ota_posix_crypto, &v, msg, tampered, dev_sig),
                     OTA_ERR_AUTH);
    /* the verifier alone does not authenticate: StoredKey as a proof fails */
    assert_int_equal(ota_salted_verify(&ota_posix_crypto, &v, msg, v.stored_key, dev_sig),
                     OTA_ERR_AUTH);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_hex_round_trip),
        cmocka_unit_test(test_be32_and_ct_equal),
        cmocka_unit_test(test_strbuf_truncates_safely),
        cmocka_unit_test(test_error_mapping),
        cmocka_unit_test(test_challenge_known_answers),
        cmocka_unit_test(test_verifier_parse_and_format),
        cmocka_unit_test(test_verifier_rejects_malformed),
        cmocka_unit_test(test_base64),
        cmocka_unit_test(test_salted_known_answers),
    };
    return cmocka_run_group_tests_name("core_util", tests, NULL, NULL);
}
