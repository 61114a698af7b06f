/*
 * test_core_util.c - unit tests of the core's helpers (hex, big-endian,
 * constant-time compare, string builder), the error-to-response mapping and the
 * legacy challenge computations, the latter against known answers computed
 * outside this code (Python's hashlib).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "fake_port.h"
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
    assert_int_equal(ota_protocol_response_for_error(OTA_ERR_NO_SPACE), 0x81);
    assert_int_equal(ota_protocol_response_for_error(OTA_ERR_PREPARE), 0x81);
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
    for (int e = OTA_ERR_PREPARE; e <= OTA_ERR_WOULD_BLOCK; e++)
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
    assert_int_equal(ota_auth_challenge_response(&fake_port_ops, NULL,
                                                 OTA_RESP_REQUEST_AUTH_SHA256, "VERYSECURE",
                                                 n, c, out),
                     OTA_OK);
    assert_memory_equal(out, "fb6025496c27f880db4f520293696c4b96a6d963ad6ea7797160aa8737c3056d",
                        64);
    assert_int_equal(ota_auth_challenge_response(&fake_port_ops, NULL,
                                                 OTA_RESP_REQUEST_AUTH_MD5, "VERYSECURE",
                                                 "0123456789abcdef0123456789abcdef",
                                                 "fedcba9876543210fedcba9876543210", out),
                     OTA_OK);
    assert_memory_equal(out, "0d9db69c2724212901bc569d9564954a", 32);
    assert_int_equal(ota_auth_challenge_response(&fake_port_ops, NULL, 0x10, "x", n, c, out),
                     OTA_ERR_INVALID_ARG);
    assert_int_equal(ota_auth_hex_len(OTA_RESP_REQUEST_AUTH_MD5), 32);
    assert_int_equal(ota_auth_hex_len(OTA_RESP_REQUEST_AUTH_SHA256), 64);
    assert_int_equal(ota_auth_hex_len(0x41), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_hex_round_trip),
        cmocka_unit_test(test_be32_and_ct_equal),
        cmocka_unit_test(test_strbuf_truncates_safely),
        cmocka_unit_test(test_error_mapping),
        cmocka_unit_test(test_challenge_known_answers),
    };
    return cmocka_run_group_tests_name("core_util", tests, NULL, NULL);
}
