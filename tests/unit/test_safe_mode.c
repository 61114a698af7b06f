/*
 * test_safe_mode.c - unit tests of boot-loop detection, safe mode and image
 * confirmation (src/core/safe_mode.c) against the fake port's in-memory boot record.
 * Each "boot" is a fresh ota_safe_mode_setup() on the record the previous one left.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "fake_port.h"
#include "ota/errors.h"
#include "ota/safe_mode.h"

static fake_port_t fp;

static int setup(void **state)
{
    (void)state;
    fake_init(&fp, 16);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    fake_free(&fp);
    return 0;
}

static ota_safe_mode_config_t cfg_default(void)
{
    ota_safe_mode_config_t cfg;
    ota_safe_mode_config_default(&cfg);
    return cfg;
}

/* One boot that crashes before proving itself; returns whether it was safe. */
static bool crashing_boot(const ota_safe_mode_config_t *cfg)
{
    ota_safe_mode_t sm;
    bool safe = true;
    assert_int_equal(ota_safe_mode_setup(&sm, fake_tables(&fp, 0)->boot, &fp.t.log, cfg, 5, &safe),
                     OTA_OK);
    ota_safe_mode_poll(&sm, 10, false); /* runs a moment, then "crashes" */
    return safe;
}

static void test_defaults(void **state)
{
    (void)state;
    ota_safe_mode_config_t cfg = cfg_default();
    assert_true(cfg.enabled);
    assert_int_equal(cfg.num_attempts, OTA_SAFE_MODE_DEFAULT_NUM_ATTEMPTS);
    assert_int_equal(cfg.boot_is_good_after_ms, OTA_SAFE_MODE_DEFAULT_BOOT_IS_GOOD_AFTER_MS);
    assert_int_equal(cfg.reboot_timeout_ms, OTA_SAFE_MODE_DEFAULT_REBOOT_TIMEOUT_MS);
    /* the one definition must stay ESPHome's safe_mode: defaults (a node file without
     * safe_mode: settings means the same on both), so the values are pinned here */
    assert_int_equal(OTA_SAFE_MODE_DEFAULT_NUM_ATTEMPTS, 10);
    assert_int_equal(OTA_SAFE_MODE_DEFAULT_BOOT_IS_GOOD_AFTER_MS, 60u * 1000u);
    assert_int_equal(OTA_SAFE_MODE_DEFAULT_REBOOT_TIMEOUT_MS, 5u * 60u * 1000u);
}

static void test_exactly_num_attempts_then_safe_mode(void **state)
{
    (void)state;
    ota_safe_mode_config_t cfg = cfg_default();
    for (uint32_t i = 1; i <= cfg.num_attempts; i++) {
        assert_false(crashing_boot(&cfg));
        assert_int_equal(fp.boot.boot_attempts, i);
        assert_false(fp.boot.safe_mode);
    }
    assert_true(crashing_boot(&cfg)); /* the 11th boot is safe */
    assert_true(fp.boot.safe_mode);
    assert_non_null(strstr(fp.last_log, "SAFE MODE"));
    assert_true(crashing_boot(&cfg)); /* and stays safe */
}

static void test_good_run_resets_counter(void **state)
{
    (void)state;
    ota_safe_mode_config_t cfg = cfg_default();
    cfg.boot_is_good_after_ms = 1000;
    for (int round = 0; round < 5; round++) {
        for (int i = 0; i < 7; i++) /* short crashes ... */
            assert_false(crashing_boot(&cfg));
        ota_safe_mode_t sm;
        bool safe;
        assert_int_equal(
            ota_safe_mode_setup(&sm, fake_tables(&fp, 0)->boot, &fp.t.log, &cfg, 100, &safe),
            OTA_OK);
        assert_false(safe);
        ota_safe_mode_poll(&sm, 1099, false);
        assert_int_equal(fp.boot.boot_attempts, 8);
        ota_safe_mode_poll(&sm, 1100, false); /* ... separated by a good run */
        assert_int_equal(fp.boot.boot_attempts, 0);
    }
}

static void test_confirmation_clears_pending(void **state)
{
    (void)state;
    ota_safe_mode_config_t cfg = cfg_default();
    fp.boot.pending = true; /* as an activation leaves it */
    ota_safe_mode_t sm;
    bool safe;
    assert_int_equal(ota_safe_mode_setup(&sm, fake_tables(&fp, 0)->boot, &fp.t.log, &cfg, 0, &safe),
                     OTA_OK);
    assert_true(fp.boot.pending);
    assert_int_equal(ota_safe_mode_mark_good(&sm), OTA_OK); /* firmware's own self-test */
    assert_false(fp.boot.pending);
    assert_int_equal(fp.boot.boot_attempts, 0);
    assert_non_null(strstr(fp.last_log, "confirmed"));
    int stores = fp.boot_stores;
    ota_safe_mode_poll(&sm, 120000, false); /* nothing more to write */
    assert_int_equal(fp.boot_stores, stores);
}

static void test_manual_request(void **state)
{
    (void)state;
    ota_safe_mode_config_t cfg = cfg_default();
    cfg.enabled = false; /* a manual request is honoured even then */
    fp.boot.safe_mode_request = true;
    assert_true(crashing_boot(&cfg));
    assert_false(fp.boot.safe_mode_request); /* one boot only */
    assert_false(crashing_boot(&cfg));
}

static void test_disabled_never_enters(void **state)
{
    (void)state;
    ota_safe_mode_config_t cfg = cfg_default();
    cfg.enabled = false;
    for (int i = 0; i < 30; i++)
        assert_false(crashing_boot(&cfg));
    assert_int_equal(fp.boot.boot_attempts, 30); /* still counted, for rollback */
}

static void test_reboot_timeout_tries_normal_boot_once(void **state)
{
    (void)state;
    ota_safe_mode_config_t cfg = cfg_default();
    cfg.num_attempts = 3;
    cfg.reboot_timeout_ms = 5000;
    for (int i = 0; i < 3; i++)
        crashing_boot(&cfg);
    ota_safe_mode_t sm;
    bool safe;
    assert_int_equal(ota_safe_mode_setup(&sm, fake_tables(&fp, 0)->boot, &fp.t.log, &cfg, 0, &safe),
                     OTA_OK);
    assert_true(safe);
    ota_safe_mode_poll(&sm, 4000, false);
    /* an upload postpones the timeout */
    ota_safe_mode_poll(&sm, 4500, true);
    ota_safe_mode_poll(&sm, 9000, false);
    assert_int_equal(fp.reboots, 0);
    ota_safe_mode_poll(&sm, 9500, false);
    assert_int_equal(fp.reboots, 1);
    ota_safe_mode_poll(&sm, 20000, false);
    assert_int_equal(fp.reboots, 1); /* once */
    /* the next boot is normal; if it fails too, safe mode is back at once */
    assert_false(crashing_boot(&cfg));
    assert_true(crashing_boot(&cfg));
}

static void test_store_failure_still_boots(void **state)
{
    (void)state;
    ota_safe_mode_config_t cfg = cfg_default();
    fp.boot.boot_attempts = 50;
    fp.boot_store_fails = true;
    ota_safe_mode_t sm;
    bool safe = true;
    assert_int_equal(ota_safe_mode_setup(&sm, fake_tables(&fp, 0)->boot, &fp.t.log, &cfg, 0, &safe),
                     OTA_ERR_IO);
    assert_false(safe);
    ota_safe_mode_poll(&sm, 999999, false);
    assert_int_equal(fp.reboots, 0);
}

static void test_bad_arguments(void **state)
{
    (void)state;
    ota_safe_mode_config_t cfg = cfg_default();
    ota_safe_mode_t sm;
    bool safe;
    ota_boot_port_t no_boot = *fake_tables(&fp, 0)->boot;
    no_boot.store = NULL;
    assert_int_equal(ota_safe_mode_setup(&sm, &no_boot, &fp.t.log, &cfg, 0, &safe),
                     OTA_ERR_INVALID_ARG);
    cfg.num_attempts = 0;
    assert_int_equal(ota_safe_mode_setup(&sm, fake_tables(&fp, 0)->boot, &fp.t.log, &cfg, 0, &safe),
                     OTA_ERR_INVALID_ARG);
    assert_int_equal(ota_safe_mode_mark_good(NULL), OTA_ERR_INVALID_ARG);
    ota_safe_mode_poll(NULL, 0, false);
    assert_false(ota_safe_mode_active(NULL));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_defaults, setup, teardown),
        cmocka_unit_test_setup_teardown(test_exactly_num_attempts_then_safe_mode, setup, teardown),
        cmocka_unit_test_setup_teardown(test_good_run_resets_counter, setup, teardown),
        cmocka_unit_test_setup_teardown(test_confirmation_clears_pending, setup, teardown),
        cmocka_unit_test_setup_teardown(test_manual_request, setup, teardown),
        cmocka_unit_test_setup_teardown(test_disabled_never_enters, setup, teardown),
        cmocka_unit_test_setup_teardown(test_reboot_timeout_tries_normal_boot_once, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_store_failure_still_boots, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bad_arguments, setup, teardown),
    };
    return cmocka_run_group_tests_name("safe_mode", tests, NULL, NULL);
}
