/*
 * test_discovery.c - unit tests of the DNS-SD TXT records (src/core/discovery.c):
 * what the builder writes is what the parser reads, key by key, and the parser
 * copes with what other responders send (other case, unknown keys, attributes).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "ota/discovery.h"
#include "ota/errors.h"

static const uint8_t *u8(const char *s)
{
    return (const uint8_t *)s;
}

static size_t count(const ota_discovery_txt_t *t)
{
    size_t n = 0;
    while (t->strings[n] != NULL)
        n++;
    return n;
}

static void test_ota_txt_layout(void **state)
{
    (void)state;
    ota_discovery_txt_t t;
    ota_discovery_ota_info_t info = {.name = "livingroom", .version = "1.2.3",
                                     .platform = OTA_TXT_PLATFORM_HOST, .protocol = 2,
                                     .auth = OTA_DISCOVERY_AUTH_SALTED |
                                             OTA_DISCOVERY_AUTH_SHA256};
    assert_int_equal(ota_discovery_ota_txt(&t, &info), 0);
    assert_int_equal(count(&t), 6);
    assert_string_equal(t.strings[0], "txtvers=1");
    assert_string_equal(t.strings[1], "name=livingroom");
    assert_string_equal(t.strings[2], "version=1.2.3");
    assert_string_equal(t.strings[3], "platform=host");
    assert_string_equal(t.strings[4], "protocol=2");
    assert_string_equal(t.strings[5], "auth=salted,sha256");
}

static void test_auth_values(void **state)
{
    (void)state;
    char out[32];
    static const struct {
        unsigned bits;
        const char *text;
    } cases[] = {
        {0, "none"},
        {OTA_DISCOVERY_AUTH_SALTED, "salted"},
        {OTA_DISCOVERY_AUTH_SHA256 | OTA_DISCOVERY_AUTH_MD5, "sha256,md5"},
        {OTA_DISCOVERY_AUTH_SALTED | OTA_DISCOVERY_AUTH_SHA256 | OTA_DISCOVERY_AUTH_MD5,
         "salted,sha256,md5"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        size_t n = ota_discovery_auth_format(cases[i].bits, out, sizeof out);
        assert_int_equal(n, strlen(cases[i].text));
        assert_string_equal(out, cases[i].text);
        unsigned back = 99;
        assert_int_equal(ota_discovery_auth_parse(u8(out), n, &back), 0);
        assert_int_equal(back, cases[i].bits);
    }
    assert_int_equal(ota_discovery_auth_format(OTA_DISCOVERY_AUTH_SALTED, out, 4), 0);
    unsigned bits = 0;
    assert_int_equal(ota_discovery_auth_parse(u8("SALTED,Md5"), 10, &bits), 0);
    assert_int_equal(bits, OTA_DISCOVERY_AUTH_SALTED | OTA_DISCOVERY_AUTH_MD5);
    assert_int_equal(ota_discovery_auth_parse(u8("NONE"), 4, &bits), 0);
    assert_int_equal(bits, 0);
    assert_int_equal(ota_discovery_auth_parse(u8("scram"), 5, &bits), 0);
    assert_int_equal(bits, OTA_DISCOVERY_AUTH_OTHER); /* a password, of a kind unknown */
    assert_int_equal(ota_discovery_auth_parse(u8(""), 0, &bits), OTA_ERR_INVALID_ARG);
}

static void test_arduino_txt(void **state)
{
    (void)state;
    ota_discovery_txt_t t;
    assert_int_equal(ota_discovery_arduino_txt(&t, "linux", true), 0);
    assert_int_equal(count(&t), 4);
    assert_string_equal(t.strings[0], "board=linux");
    assert_string_equal(t.strings[1], "tcp_check=no");
    assert_string_equal(t.strings[2], "ssh_upload=no");
    assert_string_equal(t.strings[3], "auth_upload=yes");
    assert_int_equal(ota_discovery_arduino_txt(&t, "linux", false), 0);
    assert_string_equal(t.strings[3], "auth_upload=no");
}

/* every string the builder writes parses back to its key */
static void test_round_trip(void **state)
{
    (void)state;
    ota_discovery_txt_t t;
    ota_discovery_ota_info_t info = {.name = "n", .version = "v", .platform = "esp32",
                                     .protocol = 1, .auth = 0};
    assert_int_equal(ota_discovery_ota_txt(&t, &info), 0);
    static const ota_discovery_key_t want[] = {OTA_TXT_KEY_TXTVERS, OTA_TXT_KEY_NAME,
                                               OTA_TXT_KEY_VERSION, OTA_TXT_KEY_PLATFORM,
                                               OTA_TXT_KEY_PROTOCOL, OTA_TXT_KEY_AUTH};
    static const char *const values[] = {"1", "n", "v", "esp32", "1", "none"};
    for (size_t i = 0; i < 6; i++) {
        const uint8_t *v;
        size_t vl;
        assert_int_equal(ota_discovery_txt_key(u8(t.strings[i]), strlen(t.strings[i]), &v, &vl),
                         want[i]);
        assert_int_equal(vl, strlen(values[i]));
        assert_memory_equal(v, values[i], vl);
    }
    assert_int_equal(ota_discovery_arduino_txt(&t, "b", true), 0);
    static const ota_discovery_key_t ar[] = {OTA_TXT_KEY_BOARD, OTA_TXT_KEY_TCP_CHECK,
                                             OTA_TXT_KEY_SSH_UPLOAD, OTA_TXT_KEY_AUTH_UPLOAD};
    for (size_t i = 0; i < 4; i++)
        assert_int_equal(ota_discovery_txt_key(u8(t.strings[i]), strlen(t.strings[i]), NULL,
                                               NULL),
                         ar[i]);
}

static void test_parser_edges(void **state)
{
    (void)state;
    const uint8_t *v = u8("x");
    size_t vl = 9;
    /* keys ignore case (RFC 6763 6.4) */
    assert_int_equal(ota_discovery_txt_key(u8("Auth_Upload=YES"), 15, &v, &vl),
                     OTA_TXT_KEY_AUTH_UPLOAD);
    assert_int_equal(ota_discovery_yes_no(v, vl), 1);
    assert_int_equal(ota_discovery_yes_no(u8("No"), 2), 0);
    assert_int_equal(ota_discovery_yes_no(u8("maybe"), 5), OTA_ERR_INVALID_ARG);
    assert_int_equal(ota_discovery_yes_no(u8("ye"), 2), OTA_ERR_INVALID_ARG);
    /* a boolean attribute, an unknown key, a prefix of a key, an empty value */
    assert_int_equal(ota_discovery_txt_key(u8("auth"), 4, &v, &vl), OTA_TXT_KEY_UNKNOWN);
    assert_null(v);
    assert_int_equal(ota_discovery_txt_key(u8("color=red"), 9, &v, &vl), OTA_TXT_KEY_UNKNOWN);
    assert_int_equal(ota_discovery_txt_key(u8("aut=x"), 5, &v, &vl), OTA_TXT_KEY_UNKNOWN);
    assert_int_equal(ota_discovery_txt_key(u8("auths=x"), 7, &v, &vl), OTA_TXT_KEY_UNKNOWN);
    assert_int_equal(ota_discovery_txt_key(u8("version="), 8, &v, &vl), OTA_TXT_KEY_VERSION);
    assert_int_equal(vl, 0);
    /* the string is not NUL-terminated where n says it ends */
    assert_int_equal(ota_discovery_txt_key(u8("name=abcdef"), 7, &v, &vl), OTA_TXT_KEY_NAME);
    assert_int_equal(vl, 2);
    assert_int_equal(ota_discovery_txt_key(u8("=x"), 2, &v, &vl), OTA_TXT_KEY_UNKNOWN);
    assert_int_equal(ota_discovery_txt_key(u8(""), 0, &v, &vl), OTA_TXT_KEY_UNKNOWN);
}

static void test_builder_limits(void **state)
{
    (void)state;
    ota_discovery_txt_t t;
    char big[OTA_DISCOVERY_TXT_BUF];
    memset(big, 'x', sizeof big - 1);
    big[sizeof big - 1] = '\0';
    ota_discovery_ota_info_t info = {.name = big, .version = "v", .platform = "host",
                                     .protocol = 2};
    assert_int_equal(ota_discovery_ota_txt(&t, &info), OTA_ERR_TOO_LONG);
    assert_null(t.strings[0]);
    info.name = NULL;
    assert_int_equal(ota_discovery_ota_txt(&t, &info), OTA_ERR_INVALID_ARG);
    assert_int_equal(ota_discovery_ota_txt(NULL, &info), OTA_ERR_INVALID_ARG);
    assert_int_equal(ota_discovery_arduino_txt(&t, NULL, false), OTA_ERR_INVALID_ARG);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_ota_txt_layout), cmocka_unit_test(test_auth_values),
        cmocka_unit_test(test_arduino_txt),    cmocka_unit_test(test_round_trip),
        cmocka_unit_test(test_parser_edges),   cmocka_unit_test(test_builder_limits),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
