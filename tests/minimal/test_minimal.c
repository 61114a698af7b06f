/*
 * test_minimal.c - the core in its smallest configuration (cmake/footprint/
 * minimal_opts.h: one handshake session, a 1 KiB receive buffer, native OTA with
 * salted auth only, no gzip, no ArduinoOTA, no mDNS, no log strings) takes a real
 * update, and refuses what that build does not have.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <mbedtls/md5.h>

#include "fake_port.h"
#include "ota/auth.h"
#include "ota/protocol.h"
#include "ota/server.h"
#include "ota/util.h"
#include "ota_posix.h"

_Static_assert(OTA_CFG_MAX_SESSIONS == 1 && OTA_CFG_DATA_BUF_SIZE == 1024 &&
                   !OTA_CFG_ENABLE_COMPRESSION && !OTA_CFG_ENABLE_ARDUINO &&
                   !OTA_CFG_ENABLE_LEGACY_AUTH && !OTA_CFG_ENABLE_LOG_STRINGS,
               "built with the minimal options");

static ota_server_t srv;
static fake_port_t fp;
static uint32_t now_ms;

/* Verifier and SaltedPassword of "VERYSECURE" (salt 00..0f, 4096 iterations), the
 * vectors of tests/unit/test_core_util.c. */
static const char kat_verifier[] =
    "SCRAM-SHA-256$4096:AAECAwQFBgcICQoLDA0ODw==$2uICRsgZ3TbPROMi9wjAzyQ11p/XoXKYZ7QpTgRbtzI="
    ":W2xNrGjzDmFHx9hV5Q0pgs1dLE8K+klhf2+61O3ZFkg=";
static const uint8_t kat_salted_password[32] = {
    0x81, 0xc2, 0x5b, 0x84, 0xff, 0xe2, 0x64, 0xe6, 0x6a, 0xff, 0xb6, 0x03, 0xa3, 0xdc, 0x03, 0x75,
    0xaf, 0xe9, 0xbf, 0xc1, 0xa7, 0x00, 0xe6, 0x5f, 0xbc, 0x21, 0xaa, 0x9c, 0x45, 0x96, 0xfb, 0x4f};

#define FEATURES (OTA_FEATURE_SALTED_AUTH | OTA_FEATURE_SHA256_AUTH | OTA_FEATURE_EXTENDED | \
                  OTA_FEATURE_COMPRESSION)

static void pump(int n)
{
    for (int i = 0; i < n; i++) {
        now_ms += 1;
        assert_int_equal(ota_server_poll(&srv, now_ms), OTA_OK);
    }
}

static void expect_byte(int c, uint8_t b)
{
    uint8_t got = 0;
    assert_int_equal(fake_read(&fp, c, &got, 1), 1);
    assert_int_equal(got, b);
}

static int setup(void **state)
{
    (void)state;
    ota_server_config_t cfg;
    ota_server_config_default(&cfg);
    cfg.verifier = kat_verifier;
    fake_init(&fp, 256u * 1024u);
    ota_server_init(&srv);
    /* the tables of a minimal port: no inflate, no UDP, no data slot */
    assert_int_equal(ota_server_setup(&srv, fake_tables(&fp, 0), &cfg), OTA_OK);
    now_ms = 1000;
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    ota_server_free(&srv);
    fake_free(&fp);
    return 0;
}

/* Connect, send magic + features, check the answers (no compression offered). */
static int open_session(void)
{
    int c = fake_connect(&fp);
    fake_send(&fp, c, ota_protocol_magic, OTA_MAGIC_LEN);
    uint8_t f = FEATURES;
    fake_send(&fp, c, &f, 1);
    pump(2);
    expect_byte(c, OTA_RESP_OK);
    expect_byte(c, OTA_PROTOCOL_VERSION_2);
    expect_byte(c, OTA_RESP_FEATURE_FLAGS);
    expect_byte(c, 0); /* no gzip in this build */
    return c;
}

/* Answer the salted challenge with salted_password; true when the device accepted
 * it and proved its verifier. */
static bool authenticate(int c, const uint8_t *salted_password)
{
    expect_byte(c, OTA_RESP_REQUEST_AUTH_SALTED);
    uint8_t salt[16], it[4], sn[32], cn[32], msg[OTA_SALTED_AUTH_MESSAGE_LEN], proof[32];
    uint8_t sig[32], got[32];
    assert_int_equal(fake_read(&fp, c, salt, 16), 16);
    assert_int_equal(fake_read(&fp, c, it, 4), 4);
    assert_int_equal(fake_read(&fp, c, sn, 32), 32);
    memset(cn, 0x33, sizeof cn);
    ota_salted_auth_message(sn, cn, salt, ota_be32_get(it), msg);
    assert_int_equal(ota_salted_client_proof(&ota_posix_crypto, salted_password, msg, proof, sig),
                     OTA_OK);
    fake_send(&fp, c, cn, 32);
    fake_send(&fp, c, proof, 32);
    pump(2);
    uint8_t b = 0;
    assert_int_equal(fake_read(&fp, c, &b, 1), 1);
    if (b != OTA_RESP_AUTH_OK)
        return false;
    assert_int_equal(fake_read(&fp, c, got, 32), 32);
    assert_memory_equal(got, sig, 32);
    return true;
}

static void upload(int c, const uint8_t *d, size_t n)
{
    uint8_t type = OTA_UPDATE_TYPE_APP, be[4], dig[16];
    char md5[OTA_MD5_HEX_LEN];
    fake_send(&fp, c, &type, 1);
    ota_be32_put(be, (uint32_t)n);
    fake_send(&fp, c, be, 4);
    pump(2);
    expect_byte(c, OTA_RESP_UPDATE_PREPARE_OK);
    mbedtls_md5_ret(d, n, dig);
    ota_hex_encode(dig, 16, md5);
    fake_send(&fp, c, md5, sizeof md5);
    pump(2);
    expect_byte(c, OTA_RESP_BIN_MD5_OK);
    size_t acks = 0;
    for (size_t off = 0; off < n; off += 1460) { /* TCP segments */
        size_t k = n - off < 1460 ? n - off : 1460;
        fake_send(&fp, c, d + off, k);
        pump(1);
        while (fake_unread(&fp, c) > 0 && fp.conns[c].out[fp.conns[c].out_read] ==
                                              OTA_RESP_CHUNK_OK) {
            uint8_t b;
            fake_read(&fp, c, &b, 1);
            acks++;
        }
    }
    pump(3);
    while (fake_unread(&fp, c) > 0 &&
           fp.conns[c].out[fp.conns[c].out_read] == OTA_RESP_CHUNK_OK) {
        uint8_t b;
        fake_read(&fp, c, &b, 1);
        acks++;
    }
    assert_int_equal(acks, (n + OTA_CHUNK_SIZE - 1) / OTA_CHUNK_SIZE);
    expect_byte(c, OTA_RESP_RECEIVE_OK);
    expect_byte(c, OTA_RESP_UPDATE_END_OK);
}

static void test_salted_upload_through_1k_buffer(void **state)
{
    (void)state;
    size_t n = 100000; /* 98 times the receive buffer */
    uint8_t *d = malloc(n);
    for (size_t i = 0; i < n; i++)
        d[i] = (uint8_t)(i * 7 + (i >> 9));
    d[0] = 0x1f; /* gzip magic: this build has no gzip, so it is stored as sent */
    d[1] = 0x8b;
    int c = open_session();
    assert_true(authenticate(c, kat_salted_password));
    upload(c, d, n);
    assert_true(fp.activated);
    assert_int_equal(fp.finished_size, n);
    assert_memory_equal(fp.slot, d, n);
    uint8_t z = 0;
    fake_send(&fp, c, &z, 1);
    pump(2);
    assert_int_equal(fp.reboots, 1);
    free(d);
}

static void test_wrong_password_changes_nothing(void **state)
{
    (void)state;
    uint8_t wrong[32];
    memset(wrong, 0xee, sizeof wrong);
    int c = open_session();
    assert_false(authenticate(c, wrong)); /* 0x82 */
    pump(3);
    assert_true(fp.conns[c].device_closed);
    assert_int_equal(fp.begin_calls, 0);
    assert_false(fp.activated);
    /* the owner right after: one session is enough, the failure freed it */
    c = open_session();
    assert_true(authenticate(c, kat_salted_password));
}

static void test_one_session_a_second_uploader_is_refused(void **state)
{
    (void)state;
    int c = open_session();
    assert_true(authenticate(c, kat_salted_password)); /* holds the lock now */
    int other = fake_connect(&fp);
    fake_send(&fp, other, ota_protocol_magic, OTA_MAGIC_LEN);
    now_ms += OTA_CFG_ACCEPT_PAUSE_MS;
    pump(2);
    expect_byte(other, OTA_RESP_ERROR_BUSY);
    assert_true(fp.conns[other].device_closed);
    /* the first one goes on undisturbed */
    uint8_t d[3000];
    memset(d, 0x42, sizeof d);
    upload(c, d, sizeof d);
    assert_true(fp.activated);
}

static void test_what_this_build_does_not_have_is_refused(void **state)
{
    (void)state;
    ota_server_config_t cfg;
    ota_server_t s2;
    fake_port_t f2;
    fake_init(&f2, 16);
    ota_server_init(&s2);
    ota_server_config_default(&cfg);
    cfg.password = "plain"; /* legacy auth is compiled out */
    assert_int_equal(ota_server_setup(&s2, fake_tables(&f2, 0), &cfg), OTA_ERR_INVALID_ARG);
    ota_server_config_default(&cfg);
    cfg.arduino_enabled = true; /* ArduinoOTA is compiled out */
    assert_int_equal(ota_server_setup(&s2, fake_tables(&f2, FAKE_ARDUINO), &cfg),
                     OTA_ERR_INVALID_ARG);
    fake_free(&f2);
    /* and costs no state: no inflate buffer, no ArduinoOTA context */
    assert_true(sizeof(ota_update_t) < OTA_CFG_DATA_BUF_SIZE + 2 * OTA_CFG_HASH_CTX_SIZE);
    assert_true(sizeof(ota_arduino_t) <= 8);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_salted_upload_through_1k_buffer, setup, teardown),
        cmocka_unit_test_setup_teardown(test_wrong_password_changes_nothing, setup, teardown),
        cmocka_unit_test_setup_teardown(test_one_session_a_second_uploader_is_refused, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_what_this_build_does_not_have_is_refused, setup,
                                        teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
