/*
 * test_log_proto.c - unit tests of the log viewer stream's hello line
 * (src/core/log_proto.c): the node's formatter and the viewer's parser agree.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "ota/errors.h"
#include "ota/log_proto.h"

static void test_hello_format(void **state)
{
    (void)state;
    char line[OTA_LOG_HELLO_MAX];
    size_t n = ota_log_hello_format(line, sizeof line, "demo-node", 'b', true);
    assert_string_equal(line, "# ota-log node=demo-node slot=b safe_mode=1");
    assert_int_equal(n, strlen(line));
    assert_int_equal(ota_log_hello_format(line, 12, "demo-node", 'a', false), 0);
    assert_string_equal(line, "");
    assert_int_equal(ota_log_hello_format(line, sizeof line, NULL, 'a', false), 0);
}

static void test_hello_round_trip(void **state)
{
    (void)state;
    char line[OTA_LOG_HELLO_MAX];
    ota_log_hello_t h;
    for (int safe = 0; safe < 2; safe++) {
        ota_log_hello_format(line, sizeof line, "kitchen", safe ? 'a' : 'b', safe);
        assert_int_equal(ota_log_hello_parse(line, &h), 0);
        assert_string_equal(h.node, "kitchen");
        assert_int_equal(h.slot, safe ? 'a' : 'b');
        assert_int_equal(h.safe_mode, safe);
    }
    /* with its line end */
    assert_int_equal(ota_log_hello_parse("# ota-log node=x slot=a safe_mode=1\r\n", &h), 0);
    assert_string_equal(h.node, "x");
    assert_true(h.safe_mode);
}

static void test_hello_parse_edges(void **state)
{
    (void)state;
    ota_log_hello_t h;
    /* not hello lines */
    assert_int_equal(ota_log_hello_parse(OTA_LOG_EVICTED, &h), OTA_ERR_MALFORMED);
    assert_int_equal(ota_log_hello_parse(OTA_LOG_BUSY, &h), OTA_ERR_MALFORMED);
    assert_int_equal(ota_log_hello_parse(OTA_LOG_AUTH_FAILED, &h), OTA_ERR_MALFORMED);
    assert_int_equal(ota_log_hello_parse("[I][demo] node=x", &h), OTA_ERR_MALFORMED);
    assert_int_equal(ota_log_hello_parse(NULL, &h), OTA_ERR_MALFORMED);
    /* fields missing, in another order, unknown ones: what is there is read */
    assert_int_equal(ota_log_hello_parse("# ota-log node=x", &h), 0);
    assert_int_equal(h.slot, '?');
    assert_false(h.safe_mode);
    assert_int_equal(ota_log_hello_parse("# ota-log safe_mode=1 extra=2 node=y slot=b", &h), 0);
    assert_string_equal(h.node, "y");
    assert_int_equal(h.slot, 'b');
    assert_true(h.safe_mode);
    assert_int_equal(ota_log_hello_parse("# ota-log node=z slot=ab", &h), 0);
    assert_int_equal(h.slot, '?');
    /* a name longer than the struct holds is cut */
    char line[200] = "# ota-log node=";
    memset(line + strlen(line), 'n', 100);
    assert_int_equal(ota_log_hello_parse(line, &h), 0);
    assert_int_equal(strlen(h.node), sizeof h.node - 1);
}

static void test_line_prefixes(void **state)
{
    (void)state;
    assert_true(ota_log_line_is(OTA_LOG_AUTH_CHALLENGE "salt=00", OTA_LOG_AUTH_PREFIX));
    assert_true(ota_log_line_is(OTA_LOG_AUTH_OK "ab", OTA_LOG_AUTH_PREFIX));
    assert_true(ota_log_line_is(OTA_LOG_AUTH_FAILED, OTA_LOG_AUTH_PREFIX));
    assert_true(ota_log_line_is(OTA_LOG_EVICTED, OTA_LOG_EVICTED_PREFIX));
    assert_true(ota_log_line_is(OTA_LOG_BUSY, OTA_LOG_BUSY_PREFIX));
    assert_false(ota_log_line_is("# ota-log node=x", OTA_LOG_AUTH_PREFIX));
    assert_false(ota_log_line_is(NULL, OTA_LOG_AUTH_PREFIX));
    assert_int_equal(OTA_LOG_DEFAULT_PORT(3232u), 3233u);
    assert_int_equal(OTA_LOG_DEFAULT_PORT(65535u), 65534u);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_hello_format),
        cmocka_unit_test(test_hello_round_trip),
        cmocka_unit_test(test_hello_parse_edges),
        cmocka_unit_test(test_line_prefixes),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
