/*
 * test_server.c - unit tests of the native protocol state machine (src/core/server.c)
 * against the in-memory fake port: every step byte by byte and in random splits,
 * each error path and its response code, the version-2 ack rule, the update lock,
 * the handshake pool, timeouts, compression, and that a failure never activates.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <mbedtls/md5.h>
#include <mbedtls/sha256.h>
#include <zlib.h>

#include "fake_port.h"
#include "ota_posix.h"
#include "ota/auth.h"
#include "ota/protocol.h"
#include "ota/ratelimit.h"
#include "ota/server.h"
#include "ota/util.h"

static ota_server_t srv;
static fake_port_t fp;
static uint32_t now_ms;

#define SLOT_CAP (512u * 1024u)

/* ------------------------------------------------------------ harness */

static void setup_server(unsigned features, const ota_server_config_t *cfg_in)
{
    ota_server_config_t cfg;
    if (cfg_in)
        cfg = *cfg_in;
    else
        ota_server_config_default(&cfg);
    fake_init(&fp, SLOT_CAP);
    ota_server_init(&srv);
    assert_int_equal(ota_server_setup(&srv, fake_tables(&fp, features), &cfg), OTA_OK);
    now_ms = 1000;
}

static int teardown(void **state)
{
    (void)state;
    ota_server_free(&srv);
    fake_free(&fp);
    return 0;
}

static void pump(int n)
{
    for (int i = 0; i < n; i++) {
        now_ms += 1;
        assert_int_equal(ota_server_poll(&srv, now_ms), OTA_OK);
    }
}

static void expect_bytes(int c, const uint8_t *want, size_t n)
{
    uint8_t got[128];
    assert_true(n <= sizeof got);
    assert_int_equal(fake_read(&fp, c, got, n), n);
    assert_memory_equal(got, want, n);
}

static void expect_byte(int c, uint8_t b)
{
    expect_bytes(c, &b, 1);
}

static void md5_hex(const uint8_t *d, size_t n, char out[OTA_MD5_HEX_LEN])
{
    uint8_t dig[16];
    mbedtls_md5_ret(d, n, dig);
    ota_hex_encode(dig, 16, out);
}

static uint8_t *pattern(size_t n, unsigned seed)
{
    uint8_t *p = malloc(n ? n : 1);
    srand(seed);
    for (size_t i = 0; i < n; i++)
        p[i] = (uint8_t)(rand() >> 7);
    return p;
}

/* Connect from peer (NULL: the fake's own address per connection) and send magic +
 * features; checks the version and feature answers. */
static int open_session_from(const char *peer, uint8_t features, uint8_t version)
{
    int c = peer ? fake_connect_from(&fp, peer) : fake_connect(&fp);
    fake_send(&fp, c, ota_protocol_magic, OTA_MAGIC_LEN);
    fake_send(&fp, c, &features, 1);
    now_ms += OTA_CFG_ACCEPT_PAUSE_MS; /* a busy pool takes newcomers at this pace */
    pump(2);
    uint8_t hello[2] = {OTA_RESP_OK, version};
    expect_bytes(c, hello, 2);
    if (features & OTA_FEATURE_EXTENDED) {
        expect_byte(c, OTA_RESP_FEATURE_FLAGS);
        expect_byte(c, OTA_SERVER_FLAG_COMPRESSION);
    } else if (features & OTA_FEATURE_COMPRESSION) {
        expect_byte(c, OTA_RESP_SUPPORTS_COMPRESSION);
    } else {
        expect_byte(c, OTA_RESP_HEADER_OK);
    }
    return c;
}

static int open_session(uint8_t features, uint8_t version)
{
    return open_session_from(NULL, features, version);
}

/* Answer the challenge the device sent (method byte + nonce are unread). */
static void answer_challenge(int c, uint8_t method, const char *password)
{
    expect_byte(c, method);
    size_t hex = ota_auth_hex_len(method);
    char nonce[64], cnonce[64], resp[64];
    assert_int_equal(fake_read(&fp, c, (uint8_t *)nonce, hex), hex);
    memset(cnonce, 'c', hex);
    assert_int_equal(
        ota_auth_challenge_response(&ota_posix_crypto, method, password, nonce, cnonce, resp),
        OTA_OK);
    fake_send(&fp, c, cnonce, hex);
    fake_send(&fp, c, resp, hex);
    pump(2);
}

static void send_size_md5(int c, uint32_t size, const char *md5hex)
{
    uint8_t be[4];
    ota_be32_put(be, size);
    fake_send(&fp, c, be, 4);
    pump(2);
    expect_byte(c, OTA_RESP_UPDATE_PREPARE_OK);
    fake_send(&fp, c, md5hex, OTA_MD5_HEX_LEN);
    pump(2);
    expect_byte(c, OTA_RESP_BIN_MD5_OK);
}

/* Stream the payload in pieces of random size (1..max_piece), polling between. */
static void stream(int c, const uint8_t *d, size_t n, size_t max_piece, unsigned seed)
{
    srand(seed);
    size_t off = 0;
    while (off < n) {
        size_t piece = max_piece <= 1 ? 1 : 1 + (size_t)rand() % max_piece;
        if (piece > n - off)
            piece = n - off;
        fake_send(&fp, c, d + off, piece);
        off += piece;
        pump(1);
    }
    pump(3);
}

static size_t count_and_skip_acks(int c)
{
    size_t acks = 0;
    uint8_t b;
    while (fake_unread(&fp, c) > 0) {
        fake_conn_t *fc = &fp.conns[c];
        if (fc->out[fc->out_read] != OTA_RESP_CHUNK_OK)
            break;
        fake_read(&fp, c, &b, 1);
        acks++;
    }
    return acks;
}

/* A full no-password upload of d[0..n), returning the number of chunk acks. */
static size_t full_upload(int c, const uint8_t *d, size_t n, size_t max_piece)
{
    char md5[OTA_MD5_HEX_LEN];
    md5_hex(d, n, md5);
    expect_byte(c, OTA_RESP_AUTH_OK);
    send_size_md5(c, (uint32_t)n, md5);
    stream(c, d, n, max_piece, (unsigned)n);
    size_t acks = count_and_skip_acks(c);
    expect_byte(c, OTA_RESP_RECEIVE_OK);
    expect_byte(c, OTA_RESP_UPDATE_END_OK);
    return acks;
}

static void final_ack(int c)
{
    uint8_t z = 0;
    fake_send(&fp, c, &z, 1);
    pump(2);
    assert_true(fp.conns[c].device_closed);
    assert_int_equal(fp.reboots, 1);
}

static void assert_nothing_activated(void)
{
    assert_int_equal(fp.activate_calls, 0);
    assert_false(fp.activated);
    assert_int_equal(fp.reboots, 0);
    assert_false(ota_server_update_in_progress(&srv));
}

/* ------------------------------------------------------------ happy paths */

static void test_upload_v2_no_password(void **state)
{
    (void)state;
    setup_server(FAKE_DEFAULT, NULL);
    size_t n = 3 * OTA_CHUNK_SIZE + 100;
    uint8_t *d = pattern(n, 1);
    int c = open_session(0, 2);
    assert_int_equal(full_upload(c, d, n, 5000), 4);
    assert_int_equal(fp.activate_calls, 1);
    assert_memory_equal(fp.slot, d, n);
    assert_int_equal(fp.finished_size, n);
    assert_int_equal(fp.reboots, 0); /* not before the final ack */
    final_ack(c);
    free(d);
}

static void test_upload_byte_by_byte(void **state)
{
    (void)state;
    setup_server(FAKE_DEFAULT, NULL);
    size_t n = OTA_CHUNK_SIZE + 7;
    uint8_t *d = pattern(n, 2);
    int c = fake_connect(&fp);
    uint8_t feat = OTA_FEATURE_EXTENDED;
    /* handshake one byte per poll */
    for (int i = 0; i < OTA_MAGIC_LEN; i++) {
        fake_send(&fp, c, &ota_protocol_magic[i], 1);
        pump(1);
        assert_int_equal(fake_unread(&fp, c), i == OTA_MAGIC_LEN - 1 ? 2 : 0);
    }
    fake_send(&fp, c, &feat, 1);
    pump(1);
    uint8_t want[] = {0x00, 0x02, OTA_RESP_FEATURE_FLAGS, OTA_SERVER_FLAG_COMPRESSION,
                      OTA_RESP_AUTH_OK};
    expect_bytes(c, want, sizeof want);
    uint8_t type = OTA_UPDATE_TYPE_APP;
    fake_send(&fp, c, &type, 1);
    uint8_t be[4];
    ota_be32_put(be, (uint32_t)n);
    for (int i = 0; i < 4; i++) {
        fake_send(&fp, c, &be[i], 1);
        pump(1);
    }
    expect_byte(c, OTA_RESP_UPDATE_PREPARE_OK);
    char md5[OTA_MD5_HEX_LEN];
    md5_hex(d, n, md5);
    for (int i = 0; i < OTA_MD5_HEX_LEN; i++) {
        fake_send(&fp, c, &md5[i], 1);
        pump(1);
    }
    expect_byte(c, OTA_RESP_BIN_MD5_OK);
    stream(c, d, n, 1, 3);
    assert_int_equal(count_and_skip_acks(c), 2);
    expect_byte(c, OTA_RESP_RECEIVE_OK);
    expect_byte(c, OTA_RESP_UPDATE_END_OK);
    assert_memory_equal(fp.slot, d, n);
    final_ack(c);
    free(d);
}

static void test_random_splits_and_ack_rule(void **state)
{
    (void)state;
    /* sizes around chunk multiples, each uploaded with random pieces */
    const size_t sizes[] = {1, 100, OTA_CHUNK_SIZE - 1, OTA_CHUNK_SIZE, OTA_CHUNK_SIZE + 1,
                            2 * OTA_CHUNK_SIZE, 5 * OTA_CHUNK_SIZE + 4095, 70001};
    for (size_t k = 0; k < sizeof sizes / sizeof sizes[0]; k++) {
        for (unsigned seed = 0; seed < 4; seed++) {
            setup_server(FAKE_DEFAULT, NULL);
            size_t n = sizes[k];
            uint8_t *d = pattern(n, seed + 10);
            int c = open_session(0, 2);
            size_t max_piece = seed == 0 ? 1 : (seed == 1 ? 13 : (seed == 2 ? 9000 : 40000));
            size_t acks = full_upload(c, d, n, max_piece);
            /* the rule of docs/protocol.md#native-acks: one ack per started 8192-byte block */
            assert_int_equal(acks, (n + OTA_CHUNK_SIZE - 1) / OTA_CHUNK_SIZE);
            assert_memory_equal(fp.slot, d, n);
            final_ack(c);
            free(d);
            teardown(NULL);
        }
    }
}

static void test_upload_v1_sends_no_acks(void **state)
{
    (void)state;
    ota_server_config_t cfg;
    ota_server_config_default(&cfg);
    cfg.version = 1;
    setup_server(FAKE_DEFAULT, &cfg);
    size_t n = 4 * OTA_CHUNK_SIZE;
    uint8_t *d = pattern(n, 4);
    int c = open_session(0, 1);
    assert_int_equal(full_upload(c, d, n, 3000), 0);
    assert_memory_equal(fp.slot, d, n);
    final_ack(c);
    free(d);
}

static void test_slot_and_network_would_block(void **state)
{
    (void)state;
    setup_server(FAKE_DEFAULT, NULL);
    fp.write_would_block_every_other = true;
    size_t n = 3 * OTA_CHUNK_SIZE + 1;
    uint8_t *d = pattern(n, 5);
    int c = open_session(0, 2);
    fp.conns[c].send_limit = 1; /* the device can send one byte per call */
    assert_int_equal(full_upload(c, d, n, 6000), 4);
    assert_memory_equal(fp.slot, d, n);
    final_ack(c);
    free(d);
}

static void test_peer_not_reading_acks_does_not_stall_upload(void **state)
{
    (void)state;
    setup_server(FAKE_DEFAULT, NULL);
    size_t n = 6 * OTA_CHUNK_SIZE;
    uint8_t *d = pattern(n, 6);
    int c = open_session(0, 2);
    char md5[OTA_MD5_HEX_LEN];
    md5_hex(d, n, md5);
    expect_byte(c, OTA_RESP_AUTH_OK);
    send_size_md5(c, (uint32_t)n, md5);
    fp.conns[c].send_blocked = true; /* acks pile up on the device */
    stream(c, d, n, 10000, 7);
    assert_int_equal(fake_unread(&fp, c), 0);
    fp.conns[c].send_blocked = false;
    pump(2);
    assert_int_equal(count_and_skip_acks(c), 6);
    expect_byte(c, OTA_RESP_RECEIVE_OK);
    expect_byte(c, OTA_RESP_UPDATE_END_OK);
    assert_memory_equal(fp.slot, d, n);
    final_ack(c);
    free(d);
}

/* ------------------------------------------------------------ auth */

static void test_sha256_auth_ok_and_upload(void **state)
{
    (void)state;
    ota_server_config_t cfg;
    ota_server_config_default(&cfg);
    cfg.password = "VERYSECURE";
    setup_server(FAKE_DEFAULT, &cfg);
    int c = open_session(OTA_FEATURE_SHA256_AUTH | OTA_FEATURE_EXTENDED, 2);
    assert_false(ota_server_update_in_progress(&srv)); /* no lock before auth */
    answer_challenge(c, OTA_RESP_REQUEST_AUTH_SHA256, "VERYSECURE");
    expect_byte(c, OTA_RESP_AUTH_OK);
    assert_true(ota_server_update_in_progress(&srv)); /* lock after auth */
    uint8_t type = 0;
    fake_send(&fp, c, &type, 1);
    size_t n = 1000;
    uint8_t *d = pattern(n, 8);
    char md5[OTA_MD5_HEX_LEN];
    md5_hex(d, n, md5);
    send_size_md5(c, (uint32_t)n, md5);
    stream(c, d, n, 300, 1);
    assert_int_equal(count_and_skip_acks(c), 1);
    expect_byte(c, OTA_RESP_RECEIVE_OK);
    expect_byte(c, OTA_RESP_UPDATE_END_OK);
    final_ack(c);
    free(d);
}

static void test_sha256_wrong_password(void **state)
{
    (void)state;
    ota_server_config_t cfg;
    ota_server_config_default(&cfg);
    cfg.password = "VERYSECURE";
    setup_server(FAKE_DEFAULT, &cfg);
    int c = open_session(OTA_FEATURE_SHA256_AUTH, 2);
    answer_challenge(c, OTA_RESP_REQUEST_AUTH_SHA256, "wrong");
    expect_byte(c, OTA_RESP_ERROR_AUTH_INVALID);
    pump(1);
    assert_true(fp.conns[c].device_closed);
    assert_int_equal(fp.begin_calls, 0);
    assert_nothing_activated();
    assert_non_null(strstr(fp.last_log, "10.0.0.1")); /* the peer is named */
}

static void test_md5_only_client(void **state)
{
    (void)state;
    ota_server_config_t cfg;
    ota_server_config_default(&cfg);
    cfg.password = "pw";
    /* MD5 not allowed: a client without the SHA-256 bit has no method in common */
    setup_server(FAKE_DEFAULT, &cfg);
    int c = open_session(0, 2);
    expect_byte(c, OTA_RESP_ERROR_AUTH_INVALID);
    pump(1);
    assert_true(fp.conns[c].device_closed);
    assert_non_null(strstr(fp.last_log, "MD5"));
    teardown(NULL);

    cfg.allow_md5 = true;
    setup_server(FAKE_DEFAULT, &cfg);
    c = open_session(0, 2);
    answer_challenge(c, OTA_RESP_REQUEST_AUTH_MD5, "pw");
    expect_byte(c, OTA_RESP_AUTH_OK);
    /* and a client that has SHA-256 still gets SHA-256 */
    teardown(NULL);
    setup_server(FAKE_DEFAULT, &cfg);
    c = open_session(OTA_FEATURE_SHA256_AUTH, 2);
    answer_challenge(c, OTA_RESP_REQUEST_AUTH_SHA256, "pw");
    expect_byte(c, OTA_RESP_AUTH_OK);
}

static void test_nonces_differ(void **state)
{
    (void)state;
    ota_server_config_t cfg;
    ota_server_config_default(&cfg);
    cfg.password = "pw";
    setup_server(FAKE_DEFAULT, &cfg);
    char n1[64], n2[64];
    int c1 = open_session(OTA_FEATURE_SHA256_AUTH, 2);
    expect_byte(c1, OTA_RESP_REQUEST_AUTH_SHA256);
    fake_read(&fp, c1, (uint8_t *)n1, 64);
    int c2 = open_session(OTA_FEATURE_SHA256_AUTH, 2);
    expect_byte(c2, OTA_RESP_REQUEST_AUTH_SHA256);
    fake_read(&fp, c2, (uint8_t *)n2, 64);
    assert_memory_not_equal(n1, n2, 64);
}

/* Setup again on a live server (mid-update) is refused before anything is touched:
 * the upload in flight goes on and can still finish. */
static void test_setup_on_a_live_server_is_refused(void **state)
{
    (void)state;
    setup_server(FAKE_DEFAULT, NULL);
    int c = open_session(OTA_FEATURE_EXTENDED, 2);
    size_t n = 10000;
    uint8_t *d = pattern(n, 77);
    char md5[OTA_MD5_HEX_LEN];
    md5_hex(d, n, md5);
    expect_byte(c, OTA_RESP_AUTH_OK);
    uint8_t type = 0;
    fake_send(&fp, c, &type, 1);
    send_size_md5(c, (uint32_t)n, md5);
    ota_server_config_t cfg;
    ota_server_config_default(&cfg);
    cfg.version = 3; /* invalid, and a valid one would be refused the same way */
    assert_int_equal(ota_server_setup(&srv, fake_tables(&fp, FAKE_DEFAULT), &cfg), OTA_ERR_BUSY);
    ota_server_config_default(&cfg);
    assert_int_equal(ota_server_setup(&srv, fake_tables(&fp, FAKE_DEFAULT), &cfg), OTA_ERR_BUSY);
    assert_true(ota_server_update_in_progress(&srv));
    stream(c, d, n, 3000, 5);
    count_and_skip_acks(c);
    expect_byte(c, OTA_RESP_RECEIVE_OK);
    expect_byte(c, OTA_RESP_UPDATE_END_OK);
    assert_memory_equal(fp.slot, d, n);
    final_ack(c);
    free(d);
}

static void test_setup_rejects_bad_config(void **state)
{
    (void)state;
    ota_server_config_t cfg;
    ota_server_config_default(&cfg);
    fake_init(&fp, 16);
    ota_server_init(&srv);
    cfg.version = 3;
    assert_int_equal(ota_server_setup(&srv, fake_tables(&fp, FAKE_DEFAULT), &cfg),
                     OTA_ERR_INVALID_ARG);
    ota_server_config_default(&cfg);
    cfg.password = "x";
    cfg.allow_sha256 = false;
    cfg.allow_md5 = false;
    assert_int_equal(ota_server_setup(&srv, fake_tables(&fp, FAKE_DEFAULT), &cfg),
                     OTA_ERR_INVALID_ARG);
    ota_server_config_default(&cfg);
    fake_tables(&fp, FAKE_DEFAULT);
    fp.t.slot.write = NULL;
    assert_int_equal(ota_server_setup(&srv, &fp.t.server, &cfg), OTA_ERR_INVALID_ARG);
    fake_tables(&fp, FAKE_DEFAULT);
    fp.t.inflate.end = NULL;
    assert_int_equal(ota_server_setup(&srv, &fp.t.server, &cfg), OTA_ERR_INVALID_ARG);
    fake_tables(&fp, FAKE_DEFAULT);
    fp.t.server.boot = NULL;
    assert_int_equal(ota_server_setup(&srv, &fp.t.server, &cfg), OTA_ERR_INVALID_ARG);
    fake_tables(&fp, FAKE_DEFAULT);
    fp.t.crypto.random = NULL;
    assert_int_equal(ota_server_setup(&srv, &fp.t.server, &cfg), OTA_ERR_INVALID_ARG);
    /* ArduinoOTA without its tables */
    cfg.arduino_enabled = true;
    assert_int_equal(ota_server_setup(&srv, fake_tables(&fp, FAKE_DEFAULT), &cfg),
                     OTA_ERR_INVALID_ARG);
    cfg.arduino_enabled = false;
    assert_int_equal(ota_server_setup(NULL, fake_tables(&fp, FAKE_DEFAULT), &cfg),
                     OTA_ERR_INVALID_ARG);
    assert_int_equal(ota_server_poll(&srv, 0), OTA_ERR_INVALID_ARG); /* never set up */
}

/* ------------------------------------------------------------ error paths */

static void test_wrong_magic(void **state)
{
    (void)state;
    setup_server(FAKE_DEFAULT, NULL);
    int c = fake_connect(&fp);
    fake_send(&fp, c, "GET /", 5);
    pump(2);
    expect_byte(c, OTA_RESP_ERROR_MAGIC);
    assert_int_equal(fake_unread(&fp, c), 0);
    assert_true(fp.conns[c].device_closed);
    assert_int_equal(fp.begin_calls, 0);
}

static void test_unsupported_update_type(void **state)
{
    (void)state;
    setup_server(FAKE_DEFAULT, NULL);
    int c = open_session(OTA_FEATURE_EXTENDED, 2);
    expect_byte(c, OTA_RESP_AUTH_OK);
    uint8_t type = 0x01;
    fake_send(&fp, c, &type, 1);
    pump(2);
    expect_byte(c, OTA_RESP_ERROR_UNSUPPORTED_OTA_TYPE);
    assert_true(fp.conns[c].device_closed);
    assert_int_equal(fp.begin_calls, 0);
}

/* "pull now" (update type 0x70, ours): with a hook the node answers OK and calls it,
 * takes no image and closes; the lock is free again (a pull can take it). Without a
 * hook it is an unknown update type, as on a stock device. */
static int pull_now_calls;

static void count_pull_now(void *arg)
{
    (void)arg;
    pull_now_calls++;
}

static void test_pull_now_request(void **state)
{
    (void)state;
    ota_server_config_t cfg;
    ota_server_config_default(&cfg);
    cfg.on_pull_now = count_pull_now;
    pull_now_calls = 0;
    setup_server(FAKE_DEFAULT, &cfg);
    int c = open_session(OTA_FEATURE_EXTENDED, 2);
    expect_byte(c, OTA_RESP_AUTH_OK);
    uint8_t type = OTA_UPDATE_TYPE_PULL_NOW;
    fake_send(&fp, c, &type, 1);
    pump(3);
    expect_byte(c, OTA_RESP_OK);
    assert_int_equal(pull_now_calls, 1);
    assert_true(fp.conns[c].device_closed);
    assert_int_equal(fp.begin_calls, 0);
    assert_false(ota_server_update_in_progress(&srv));
    ota_server_free(&srv);
    fake_free(&fp);

    setup_server(FAKE_DEFAULT, NULL); /* no hook: not a puller */
    c = open_session(OTA_FEATURE_EXTENDED, 2);
    expect_byte(c, OTA_RESP_AUTH_OK);
    fake_send(&fp, c, &type, 1);
    pump(3);
    expect_byte(c, OTA_RESP_ERROR_UNSUPPORTED_OTA_TYPE);
    assert_int_equal(pull_now_calls, 1);
}

static void send_size_expect(int c, uint32_t size, uint8_t code)
{
    uint8_t be[4];
    ota_be32_put(be, size);
    fake_send(&fp, c, be, 4);
    pump(2);
    expect_byte(c, code);
    pump(1);
    assert_true(fp.conns[c].device_closed);
}

static void test_size_too_big_and_prepare_errors(void **state)
{
    (void)state;
    setup_server(FAKE_DEFAULT, NULL);
    int c = open_session(0, 2);
    expect_byte(c, OTA_RESP_AUTH_OK);
    send_size_expect(c, SLOT_CAP + 1, OTA_RESP_ERROR_UPDATE_PREPARE);
    assert_false(ota_server_update_in_progress(&srv)); /* the lock is free again */

    c = open_session(0, 2);
    expect_byte(c, OTA_RESP_AUTH_OK);
    send_size_expect(c, 0, OTA_RESP_ERROR_UPDATE_PREPARE);

    fp.fail_begin = OTA_ERR_NO_SLOT;
    c = open_session(0, 2);
    expect_byte(c, OTA_RESP_AUTH_OK);
    send_size_expect(c, 10, OTA_RESP_ERROR_NO_UPDATE_PARTITION);
    assert_nothing_activated();
}

static void test_md5_mismatch(void **state)
{
    (void)state;
    setup_server(FAKE_DEFAULT, NULL);
    size_t n = 20000;
    uint8_t *d = pattern(n, 9);
    int c = open_session(0, 2);
    expect_byte(c, OTA_RESP_AUTH_OK);
    send_size_md5(c, (uint32_t)n, "0123456789abcdef0123456789abcdef");
    stream(c, d, n, 7000, 1);
    assert_int_equal(count_and_skip_acks(c), 3);
    expect_byte(c, OTA_RESP_RECEIVE_OK);
    expect_byte(c, OTA_RESP_ERROR_MD5_MISMATCH);
    assert_true(fp.conns[c].device_closed);
    assert_int_equal(fp.abort_calls, 1);
    assert_nothing_activated();
    free(d);
}

static void upload_expecting_failure(uint8_t code)
{
    size_t n = 3 * OTA_CHUNK_SIZE;
    uint8_t *d = pattern(n, 11);
    char md5[OTA_MD5_HEX_LEN];
    md5_hex(d, n, md5);
    int c = open_session(0, 2);
    expect_byte(c, OTA_RESP_AUTH_OK);
    send_size_md5(c, (uint32_t)n, md5);
    stream(c, d, n, 5000, 2);
    count_and_skip_acks(c);
    if (code != OTA_RESP_ERROR_WRITING_FLASH)
        expect_byte(c, OTA_RESP_RECEIVE_OK);
    expect_byte(c, code);
    pump(1);
    assert_true(fp.conns[c].device_closed);
    assert_true(fp.abort_calls >= 1);
    free(d);
}

static void test_write_failure(void **state)
{
    (void)state;
    setup_server(FAKE_DEFAULT, NULL);
    fp.fail_write_at = 2;
    upload_expecting_failure(OTA_RESP_ERROR_WRITING_FLASH);
    assert_nothing_activated();
}

static void test_bad_image_format(void **state)
{
    (void)state;
    setup_server(FAKE_DEFAULT, NULL);
    fp.fail_finish = OTA_ERR_BAD_IMAGE;
    upload_expecting_failure(OTA_RESP_ERROR_MAGIC);
    assert_nothing_activated();
}

static void test_activate_failure(void **state)
{
    (void)state;
    setup_server(FAKE_DEFAULT, NULL);
    fp.fail_activate = OTA_ERR_ACTIVATE;
    upload_expecting_failure(OTA_RESP_ERROR_UPDATE_END);
    assert_false(fp.activated);
    assert_int_equal(fp.reboots, 0);
}

static void test_disconnect_mid_transfer_then_next_upload(void **state)
{
    (void)state;
    setup_server(FAKE_DEFAULT, NULL);
    size_t n = 50000;
    uint8_t *d = pattern(n, 12);
    char md5[OTA_MD5_HEX_LEN];
    md5_hex(d, n, md5);
    int c = open_session(0, 2);
    expect_byte(c, OTA_RESP_AUTH_OK);
    send_size_md5(c, (uint32_t)n, md5);
    stream(c, d, n / 2, 4000, 3);
    assert_true(ota_server_update_in_progress(&srv));
    fake_hangup(&fp, c);
    pump(2);
    assert_true(fp.conns[c].device_closed);
    assert_int_equal(fp.abort_calls, 1);
    assert_nothing_activated();
    /* the node takes the next upload */
    c = open_session(0, 2);
    full_upload(c, d, n, 9000);
    assert_memory_equal(fp.slot, d, n);
    final_ack(c);
    free(d);
}

static void test_corrupt_gzip(void **state)
{
    (void)state;
    setup_server(FAKE_DEFAULT, NULL);
    /* gzip magic followed by garbage */
    size_t n = 5000;
    uint8_t *d = pattern(n, 13);
    d[0] = 0x1f;
    d[1] = 0x8b;
    char md5[OTA_MD5_HEX_LEN];
    md5_hex(d, n, md5);
    int c = open_session(OTA_FEATURE_COMPRESSION, 2);
    expect_byte(c, OTA_RESP_AUTH_OK);
    send_size_md5(c, (uint32_t)n, md5);
    stream(c, d, n, 5000, 4);
    count_and_skip_acks(c);
    expect_byte(c, OTA_RESP_ERROR_WRITING_FLASH);
    assert_nothing_activated();
    free(d);
}

/* ------------------------------------------------------------ compression */

static size_t gzip(const uint8_t *in, size_t n, uint8_t *out, size_t cap)
{
    z_stream z;
    memset(&z, 0, sizeof z);
    assert_int_equal(deflateInit2(&z, 9, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY), Z_OK);
    z.next_in = (Bytef *)(uintptr_t)in;
    z.avail_in = (uInt)n;
    z.next_out = out;
    z.avail_out = (uInt)cap;
    assert_int_equal(deflate(&z, Z_FINISH), Z_STREAM_END);
    size_t len = cap - z.avail_out;
    deflateEnd(&z);
    return len;
}

static void test_gzip_upload_inflates(void **state)
{
    (void)state;
    setup_server(FAKE_DEFAULT, NULL);
    /* very compressible: a 300 KiB image shrinks to a few KiB, so one input
     * buffer inflates into many full output buffers */
    size_t n = 300 * 1024;
    uint8_t *img = malloc(n);
    for (size_t i = 0; i < n; i++)
        img[i] = (uint8_t)((i / 1000) & 0xff);
    uint8_t *gz = malloc(n);
    size_t gz_len = gzip(img, n, gz, n);
    assert_true(gz_len < n / 10);
    int c = open_session(OTA_FEATURE_COMPRESSION, 2);
    size_t acks = full_upload(c, gz, gz_len, 777);
    assert_int_equal(acks, (gz_len + OTA_CHUNK_SIZE - 1) / OTA_CHUNK_SIZE);
    assert_int_equal(fp.finished_size, n);
    assert_memory_equal(fp.slot, img, n);
    final_ack(c);
    free(img);
    free(gz);
}

static void test_gzip_inflated_too_big(void **state)
{
    (void)state;
    setup_server(FAKE_DEFAULT, NULL);
    size_t n = SLOT_CAP + 4096; /* the gzip is small, what it inflates to is not */
    uint8_t *img = calloc(1, n);
    uint8_t *gz = malloc(n);
    size_t gz_len = gzip(img, n, gz, n);
    char md5[OTA_MD5_HEX_LEN];
    md5_hex(gz, gz_len, md5);
    int c = open_session(OTA_FEATURE_COMPRESSION, 2);
    expect_byte(c, OTA_RESP_AUTH_OK);
    send_size_md5(c, (uint32_t)gz_len, md5);
    stream(c, gz, gz_len, 4000, 1);
    count_and_skip_acks(c);
    expect_byte(c, OTA_RESP_ERROR_UPDATE_PREPARE);
    assert_nothing_activated();
    free(img);
    free(gz);
}

static void test_no_inflate_port_announces_no_compression(void **state)
{
    (void)state;
    setup_server(0, NULL);
    int c = fake_connect(&fp);
    uint8_t feat = OTA_FEATURE_COMPRESSION | OTA_FEATURE_EXTENDED;
    fake_send(&fp, c, ota_protocol_magic, OTA_MAGIC_LEN);
    fake_send(&fp, c, &feat, 1);
    pump(2);
    uint8_t want[] = {0x00, 0x02, OTA_RESP_FEATURE_FLAGS, 0x00, OTA_RESP_AUTH_OK};
    expect_bytes(c, want, sizeof want);
    teardown(NULL);
    setup_server(0, NULL);
    c = fake_connect(&fp);
    feat = OTA_FEATURE_COMPRESSION;
    fake_send(&fp, c, ota_protocol_magic, OTA_MAGIC_LEN);
    fake_send(&fp, c, &feat, 1);
    pump(2);
    uint8_t want2[] = {0x00, 0x02, OTA_RESP_HEADER_OK, OTA_RESP_AUTH_OK};
    expect_bytes(c, want2, sizeof want2);
}

/* ------------------------------------------------------------ lock, pool, timeouts */

static void test_second_uploader_gets_busy(void **state)
{
    (void)state;
    setup_server(FAKE_DEFAULT, NULL);
    size_t n = 40000;
    uint8_t *d = pattern(n, 14);
    char md5[OTA_MD5_HEX_LEN];
    md5_hex(d, n, md5);
    int a = open_session(0, 2);
    expect_byte(a, OTA_RESP_AUTH_OK);
    send_size_md5(a, (uint32_t)n, md5);
    stream(a, d, 10000, 5000, 5);
    int b = fake_connect(&fp);
    pump(1);
    expect_byte(b, OTA_RESP_ERROR_BUSY); /* at once, before it said anything */
    assert_true(fp.conns[b].device_closed);
    stream(a, d + 10000, n - 10000, 5000, 6);
    count_and_skip_acks(a);
    expect_byte(a, OTA_RESP_RECEIVE_OK);
    expect_byte(a, OTA_RESP_UPDATE_END_OK);
    assert_memory_equal(fp.slot, d, n);
    /* after activation, until the reboot, newcomers are still refused */
    b = fake_connect(&fp);
    pump(1);
    expect_byte(b, OTA_RESP_ERROR_BUSY);
    final_ack(a);
    free(d);
}

static void test_authenticating_peers_do_not_hold_the_lock(void **state)
{
    (void)state;
    ota_server_config_t cfg;
    ota_server_config_default(&cfg);
    cfg.password = "pw";
    setup_server(FAKE_DEFAULT, &cfg);
    /* a peer that got a challenge and does not answer (yet) */
    int idle = open_session(OTA_FEATURE_SHA256_AUTH, 2);
    expect_byte(idle, OTA_RESP_REQUEST_AUTH_SHA256);
    char nonce[64], cnonce[64], resp[64];
    fake_read(&fp, idle, (uint8_t *)nonce, 64);
    assert_false(ota_server_update_in_progress(&srv));
    /* a legitimate uploader goes through at once */
    int c = open_session(OTA_FEATURE_SHA256_AUTH, 2);
    answer_challenge(c, OTA_RESP_REQUEST_AUTH_SHA256, "pw");
    expect_byte(c, OTA_RESP_AUTH_OK);
    assert_true(ota_server_update_in_progress(&srv));
    /* when the slow one answers correctly after all, the lock is taken: busy */
    memset(cnonce, 'd', 64);
    assert_int_equal(ota_auth_challenge_response(&ota_posix_crypto, OTA_RESP_REQUEST_AUTH_SHA256,
                                                 "pw", nonce, cnonce, resp),
                     OTA_OK);
    fake_send(&fp, idle, cnonce, 64);
    fake_send(&fp, idle, resp, 64);
    pump(2);
    expect_byte(idle, OTA_RESP_ERROR_BUSY);
    assert_true(fp.conns[idle].device_closed);
    assert_false(fp.conns[c].device_closed);
}

static void test_full_pool_drops_idlest(void **state)
{
    (void)state;
    setup_server(FAKE_DEFAULT, NULL);
    fp.random_fixed = true;
    fp.random_byte = 7; /* early drop draws 99: only a full pool refuses */
    int idle[OTA_CFG_MAX_SESSIONS];
    for (int i = 0; i < OTA_CFG_MAX_SESSIONS; i++) {
        idle[i] = fake_connect(&fp); /* connect and say nothing (port scanners) */
        pump(5);
        assert_false(fp.conns[idle[i]].device_closed);
    }
    size_t n = 9000;
    uint8_t *d = pattern(n, 15);
    int c = open_session(0, 2);
    assert_true(fp.conns[idle[0]].device_closed); /* the oldest idle one went */
    assert_false(fp.conns[idle[OTA_CFG_MAX_SESSIONS - 1]].device_closed);
    full_upload(c, d, n, 3000);
    assert_memory_equal(fp.slot, d, n);
    final_ack(c);
    free(d);
}

static void test_handshake_timeout(void **state)
{
    (void)state;
    ota_server_config_t cfg;
    ota_server_config_default(&cfg);
    cfg.handshake_timeout_ms = 500;
    setup_server(FAKE_DEFAULT, &cfg);
    int c = fake_connect(&fp);
    fake_send(&fp, c, ota_protocol_magic, 3);
    pump(1);
    now_ms += 400;
    pump(1);
    assert_false(fp.conns[c].device_closed);
    /* a byte resets the clock: slow but alive peers are not cut off */
    fake_send(&fp, c, ota_protocol_magic + 3, 1);
    pump(1);
    now_ms += 400;
    pump(1);
    assert_false(fp.conns[c].device_closed);
    now_ms += 200;
    pump(1);
    assert_true(fp.conns[c].device_closed);
    assert_non_null(strstr(fp.last_log, "magic"));
}

static void test_data_timeout_frees_the_lock(void **state)
{
    (void)state;
    ota_server_config_t cfg;
    ota_server_config_default(&cfg);
    cfg.data_timeout_ms = 1000;
    setup_server(FAKE_DEFAULT, &cfg);
    size_t n = 30000;
    uint8_t *d = pattern(n, 16);
    char md5[OTA_MD5_HEX_LEN];
    md5_hex(d, n, md5);
    int c = open_session(0, 2);
    expect_byte(c, OTA_RESP_AUTH_OK);
    send_size_md5(c, (uint32_t)n, md5);
    stream(c, d, 12000, 5000, 7);
    now_ms += 900; /* silent, but within the limit */
    pump(1);
    assert_true(ota_server_update_in_progress(&srv));
    now_ms += 200;
    pump(1);
    assert_true(fp.conns[c].device_closed);
    assert_false(ota_server_update_in_progress(&srv));
    assert_int_equal(fp.abort_calls, 1);
    assert_nothing_activated();
    c = open_session(0, 2);
    full_upload(c, d, n, 5000);
    final_ack(c);
    free(d);
}

static void test_reboot_without_final_ack(void **state)
{
    (void)state;
    setup_server(FAKE_DEFAULT, NULL);
    uint8_t d[10] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10};
    int c = open_session(0, 2);
    full_upload(c, d, sizeof d, 10);
    assert_int_equal(fp.reboots, 0);
    now_ms += srv.native.cfg.final_ack_timeout_ms + 1;
    pump(1);
    assert_int_equal(fp.reboots, 1);
    assert_true(fp.conns[c].device_closed);
    pump(5);
    assert_int_equal(fp.reboots, 1); /* once */
}

static void test_clock_wraparound(void **state)
{
    (void)state;
    ota_server_config_t cfg;
    ota_server_config_default(&cfg);
    cfg.handshake_timeout_ms = 100;
    setup_server(FAKE_DEFAULT, &cfg);
    now_ms = UINT32_MAX - 20;
    int c = fake_connect(&fp);
    pump(1);
    now_ms += 50; /* wraps past zero */
    pump(1);
    assert_false(fp.conns[c].device_closed);
    now_ms += 60;
    pump(1);
    assert_true(fp.conns[c].device_closed);
}

static void test_free_aborts_running_update(void **state)
{
    (void)state;
    setup_server(FAKE_DEFAULT, NULL);
    int c = open_session(0, 2);
    expect_byte(c, OTA_RESP_AUTH_OK);
    send_size_md5(c, 100, "0123456789abcdef0123456789abcdef");
    ota_server_free(&srv);
    assert_true(fp.conns[c].device_closed);
    assert_int_equal(fp.abort_calls, 1);
    ota_server_free(&srv); /* twice is fine */
}

/* ------------------------------------------------------------ salted auth */

/* Verifier and SaltedPassword of "VERYSECURE" (salt 00..0f, 4096 iterations),
 * computed with Python's hashlib; see test_core_util.c for the full vectors. */
static const char kat_verifier[] = "SCRAM-SHA-256$4096:AAECAwQFBgcICQoLDA0ODw==$2uICRsgZ3TbPROMi9wjAzyQ11p/XoXKYZ7QpTgRbtzI=:W2xNrGjzDmFHx9hV5Q0pgs1dLE8K+klhf2+61O3ZFkg=";
static const uint8_t kat_salted_password[32] = {0x81, 0xc2, 0x5b, 0x84, 0xff, 0xe2, 0x64, 0xe6, 0x6a, 0xff, 0xb6, 0x03, 0xa3, 0xdc, 0x03, 0x75, 0xaf, 0xe9, 0xbf, 0xc1, 0xa7, 0x00, 0xe6, 0x5f, 0xbc, 0x21, 0xaa, 0x9c, 0x45, 0x96, 0xfb, 0x4f};

/* Read the salted challenge and answer it with the given SaltedPassword; returns
 * the ServerSignature the device must send if the password is right. */
static void answer_salted(int c, const uint8_t *salted_password, uint8_t *expected_sig)
{
    expect_byte(c, OTA_RESP_REQUEST_AUTH_SALTED);
    uint8_t salt[16], it[4], sn[32], cn[32], msg[OTA_SALTED_AUTH_MESSAGE_LEN], proof[32];
    assert_int_equal(fake_read(&fp, c, salt, 16), 16);
    for (int i = 0; i < 16; i++)
        assert_int_equal(salt[i], i);
    assert_int_equal(fake_read(&fp, c, it, 4), 4);
    assert_int_equal(ota_be32_get(it), 4096);
    assert_int_equal(fake_read(&fp, c, sn, 32), 32);
    memset(cn, 0x5a, sizeof cn);
    ota_salted_auth_message(sn, cn, salt, 4096, msg);
    assert_int_equal(
        ota_salted_client_proof(&ota_posix_crypto, salted_password, msg, proof, expected_sig),
        OTA_OK);
    fake_send(&fp, c, cn, 32);
    fake_send(&fp, c, proof, 32);
    pump(2);
}

static ota_server_config_t salted_cfg(void)
{
    ota_server_config_t cfg;
    ota_server_config_default(&cfg);
    cfg.verifier = kat_verifier;
    return cfg;
}

#define ALL_AUTH (OTA_FEATURE_SALTED_AUTH | OTA_FEATURE_SHA256_AUTH | OTA_FEATURE_EXTENDED)

static void test_salted_auth_and_upload(void **state)
{
    (void)state;
    ota_server_config_t cfg = salted_cfg();
    setup_server(FAKE_DEFAULT, &cfg);
    int c = open_session(ALL_AUTH, 2);
    uint8_t sig[32], got[32];
    answer_salted(c, kat_salted_password, sig);
    expect_byte(c, OTA_RESP_AUTH_OK);
    assert_int_equal(fake_read(&fp, c, got, 32), 32);
    assert_memory_equal(got, sig, 32); /* the device proves it holds the verifier */
    uint8_t type = 0;
    fake_send(&fp, c, &type, 1);
    size_t n = 20000;
    uint8_t *d = pattern(n, 30);
    char md5[OTA_MD5_HEX_LEN];
    md5_hex(d, n, md5);
    send_size_md5(c, (uint32_t)n, md5);
    stream(c, d, n, 4000, 1);
    assert_int_equal(count_and_skip_acks(c), 3);
    expect_byte(c, OTA_RESP_RECEIVE_OK);
    expect_byte(c, OTA_RESP_UPDATE_END_OK);
    assert_memory_equal(fp.slot, d, n);
    final_ack(c);
    free(d);
}

static void test_salted_wrong_password(void **state)
{
    (void)state;
    ota_server_config_t cfg = salted_cfg();
    setup_server(FAKE_DEFAULT, &cfg);
    int c = open_session(ALL_AUTH, 2);
    uint8_t wrong[32] = {0}, sig[32];
    answer_salted(c, wrong, sig);
    expect_byte(c, OTA_RESP_ERROR_AUTH_INVALID);
    assert_int_equal(fake_unread(&fp, c), 0); /* no signature for a wrong proof */
    pump(1);
    assert_true(fp.conns[c].device_closed);
    assert_non_null(strstr(fp.last_log, "10.0.0.1"));
    assert_non_null(strstr(fp.last_log, "salted"));
    assert_nothing_activated();
}

static void test_verifier_only_node_refuses_legacy_clients(void **state)
{
    (void)state;
    ota_server_config_t cfg = salted_cfg();
    setup_server(FAKE_DEFAULT, &cfg);
    /* a stock uploader: SHA-256 and compression, no salted bit */
    int c = open_session(OTA_FEATURE_SHA256_AUTH | OTA_FEATURE_COMPRESSION, 2);
    expect_byte(c, OTA_RESP_ERROR_AUTH_INVALID);
    pump(1);
    assert_true(fp.conns[c].device_closed);
    assert_non_null(strstr(fp.last_log, "salted"));
    c = open_session(0, 2); /* an MD5-only one */
    expect_byte(c, OTA_RESP_ERROR_AUTH_INVALID);
}

static void test_method_preference_salted_sha256_md5(void **state)
{
    (void)state;
    ota_server_config_t cfg = salted_cfg();
    cfg.password = "VERYSECURE"; /* legacy methods switched on as well */
    cfg.allow_md5 = true;
    setup_server(FAKE_DEFAULT, &cfg);
    uint8_t sig[32];
    int c = open_session(ALL_AUTH, 2);
    answer_salted(c, kat_salted_password, sig);
    expect_byte(c, OTA_RESP_AUTH_OK);
    teardown(NULL);
    setup_server(FAKE_DEFAULT, &cfg);
    c = open_session(OTA_FEATURE_SHA256_AUTH, 2);
    answer_challenge(c, OTA_RESP_REQUEST_AUTH_SHA256, "VERYSECURE");
    expect_byte(c, OTA_RESP_AUTH_OK);
    teardown(NULL);
    setup_server(FAKE_DEFAULT, &cfg);
    c = open_session(0, 2);
    answer_challenge(c, OTA_RESP_REQUEST_AUTH_MD5, "VERYSECURE");
    expect_byte(c, OTA_RESP_AUTH_OK);
}

static void test_bad_verifier_rejected_at_setup(void **state)
{
    (void)state;
    ota_server_config_t cfg;
    ota_server_config_default(&cfg);
    cfg.verifier = "VERYSECURE"; /* a password where a verifier belongs */
    fake_init(&fp, 16);
    ota_server_init(&srv);
    assert_int_equal(ota_server_setup(&srv, fake_tables(&fp, FAKE_DEFAULT), &cfg),
                     OTA_ERR_INVALID_ARG);
    fake_tables(&fp, FAKE_DEFAULT);
    fp.t.crypto.hmac_sha256 = NULL;
    cfg.verifier = kat_verifier;
    assert_int_equal(ota_server_setup(&srv, &fp.t.server, &cfg), OTA_ERR_INVALID_ARG);
}

#define ATTACKER "10.0.0.66:4000"

/* Open a session from ATTACKER and wait for its challenge, answering wrongly. */
static void fail_once(void)
{
    uint8_t wrong[32] = {1}, sig[32];
    int c = open_session_from(ATTACKER, ALL_AUTH, 2);
    answer_salted(c, wrong, sig);
    expect_byte(c, OTA_RESP_ERROR_AUTH_INVALID);
    pump(1);
}

static void test_brute_force_backoff(void **state)
{
    (void)state;
    ota_server_config_t cfg = salted_cfg();
    cfg.auth_backoff_free = 2;
    cfg.auth_backoff_base_ms = 1000;
    cfg.auth_backoff_max_ms = 3000;
    cfg.handshake_timeout_ms = 500; /* the wait must not count against the peer */
    setup_server(FAKE_DEFAULT, &cfg);
    fail_once();
    fail_once(); /* two free failures: no delay yet */
    int c = open_session_from(ATTACKER, ALL_AUTH, 2);
    assert_int_equal(fake_unread(&fp, c), 1 + 16 + 4 + 32);
    uint8_t wrong[32] = {1}, sig[32], got[32];
    answer_salted(c, wrong, sig); /* third failure: back-off 1000 ms */
    expect_byte(c, OTA_RESP_ERROR_AUTH_INVALID);
    assert_non_null(strstr(fp.last_log, "waits 1000 ms"));

    c = open_session_from(ATTACKER, ALL_AUTH, 2);
    now_ms += 900;
    pump(1);
    assert_int_equal(fake_unread(&fp, c), 0); /* no challenge yet */
    assert_false(fp.conns[c].device_closed);  /* and no timeout either */
    now_ms += 200;
    pump(1);
    answer_salted(c, wrong, sig); /* fourth failure: doubles to 2000 ms */
    expect_byte(c, OTA_RESP_ERROR_AUTH_INVALID);
    assert_non_null(strstr(fp.last_log, "waits 2000 ms"));
    c = open_session_from(ATTACKER, ALL_AUTH, 2);
    now_ms += 1500;
    pump(1);
    assert_int_equal(fake_unread(&fp, c), 0);
    now_ms += 600;
    pump(1);
    /* the right password still works after the back-off, and resets it */
    answer_salted(c, kat_salted_password, sig);
    expect_byte(c, OTA_RESP_AUTH_OK);
    assert_int_equal(fake_read(&fp, c, got, 32), 32);
    assert_memory_equal(got, sig, 32);
    for (int i = 0; i < OTA_CFG_AUTH_SOURCES; i++) /* the address's failures are forgotten */
        assert_int_equal(srv.guard.sources[i].addr[0], '\0');
}

static void test_backoff_is_bounded(void **state)
{
    (void)state;
    ota_server_config_t cfg = salted_cfg();
    cfg.auth_backoff_free = 0;
    cfg.auth_backoff_base_ms = 100;
    cfg.auth_backoff_max_ms = 400;
    cfg.auth_guesses_per_min = 0; /* no global ceiling: 40 guesses in 16 s */
    setup_server(FAKE_DEFAULT, &cfg);
    for (int i = 0; i < 40; i++) {
        int c = open_session_from(ATTACKER, ALL_AUTH, 2);
        now_ms += 400; /* never more than the bound */
        pump(1);
        uint8_t wrong[32] = {2}, sig[32];
        answer_salted(c, wrong, sig);
        expect_byte(c, OTA_RESP_ERROR_AUTH_INVALID);
        pump(1);
    }
    assert_string_equal(srv.guard.sources[0].addr, "10.0.0.66");
    assert_int_equal(srv.guard.sources[0].wait_ms, 400);
}

/* ------------------------------------------------------------ floods, per-source state */

/* One poll after the accept pause: a busy pool takes newcomers at that pace. */
static void paced(void)
{
    now_ms += OTA_CFG_ACCEPT_PAUSE_MS;
    pump(1);
}

static void test_ratelimit_first_then_summaries(void **state)
{
    (void)state;
    ota_ratelimit_t rl = {0, 0};
    uint32_t t = 0xFFFFF000u; /* across the wraparound */
    assert_true(ota_ratelimit_allow(&rl, t, 10000)); /* the first one in full */
    for (int i = 0; i < 500; i++)
        assert_false(ota_ratelimit_allow(&rl, t + (uint32_t)i, 10000));
    assert_int_equal(ota_ratelimit_due(&rl, t + 9999, 10000), 0); /* not yet */
    assert_int_equal(ota_ratelimit_due(&rl, t + 10000, 10000), 500);
    assert_int_equal(ota_ratelimit_due(&rl, t + 10001, 10000), 0); /* one per interval */
    assert_false(ota_ratelimit_allow(&rl, t + 12000, 10000));
    assert_int_equal(ota_ratelimit_due(&rl, t + 20000, 10000), 1);
    /* a quiet interval: the next one is logged in full again */
    assert_int_equal(ota_ratelimit_due(&rl, t + 30000, 10000), 0);
    assert_true(ota_ratelimit_allow(&rl, t + 30001, 10000));
}

static void test_repeated_lines_are_rate_limited(void **state)
{
    (void)state;
    setup_server(FAKE_DEFAULT, NULL);
    for (int i = 0; i < 300; i++) { /* garbage connections */
        int c = fake_connect(&fp);
        fake_send(&fp, c, "GET / HTTP/1.0\r\n", 16);
        pump(1);
        assert_true(fp.conns[c].device_closed);
        expect_byte(c, OTA_RESP_ERROR_MAGIC);
    }
    assert_true(fp.log_lines <= 2); /* the first one, no more */
    now_ms += OTA_CFG_LOG_REPEAT_MS;
    pump(1);
    assert_non_null(strstr(fp.last_log, "failed handshakes: 299 more in the last 10 s"));
    int lines = fp.log_lines;
    now_ms += 3 * OTA_CFG_LOG_REPEAT_MS; /* quiet: no more summaries */
    pump(1);
    assert_int_equal(fp.log_lines, lines);
    /* idle connections that time out count the same way */
    for (int i = 0; i < 40; i++) {
        fake_connect(&fp);
        now_ms += 700;
        pump(1);
    }
    now_ms += 25000;
    pump(1);
    /* first lines of: connected, refused, dropped as slow, timed out; summaries */
    assert_true(fp.log_lines - lines <= 12);
}

static void test_garbage_never_takes_a_place(void **state)
{
    (void)state;
    setup_server(FAKE_DEFAULT, NULL);
    fp.random_fixed = true;
    fp.random_byte = 7; /* early drop draws 99: only a full pool refuses */
    int keep[3];
    for (int i = 0; i < 3; i++)
        keep[i] = open_session(0, 2);
    for (int i = 0; i < 20; i++) {
        int c = fake_connect(&fp);
        fake_send(&fp, c, "\x16\x03\x01", 3); /* a TLS hello */
        paced();
        assert_true(fp.conns[c].device_closed);
    }
    for (int i = 0; i < 3; i++) /* nobody was replaced for it */
        assert_false(fp.conns[keep[i]].device_closed);
}

static void test_early_drop_of_silent_newcomers(void **state)
{
    (void)state;
    setup_server(FAKE_DEFAULT, NULL);
    fp.random_fixed = true;
    fp.random_byte = 0; /* every draw is 0: whenever early drop applies, it drops */
    int a = fake_connect(&fp), b = fake_connect(&fp); /* below OTA_CFG_RED_START: in */
    paced();
    assert_false(fp.conns[a].device_closed);
    assert_false(fp.conns[b].device_closed);
    int c = fake_connect(&fp); /* silent, at the start threshold: dropped */
    paced();
    assert_true(fp.conns[c].device_closed);
    assert_int_equal(fake_unread(&fp, c), 0);
    /* one whose magic is already there skips the draw */
    int d = open_session(0, 2);
    expect_byte(d, OTA_RESP_AUTH_OK);
    teardown(NULL);

    /* draws of 35: 30 % at the threshold lets it in, 65 % one above does not */
    setup_server(FAKE_DEFAULT, NULL);
    fp.random_fixed = true;
    fp.random_byte = 0xFF;
    a = fake_connect(&fp);
    b = fake_connect(&fp);
    c = fake_connect(&fp);
    paced();
    assert_false(fp.conns[c].device_closed);
    d = fake_connect(&fp);
    paced();
    assert_true(fp.conns[d].device_closed);
    /* once they are slow (silent past the prompt time) they count as free places */
    now_ms += OTA_CFG_HANDSHAKE_PROMPT_MS + 1;
    int e = fake_connect(&fp), f = fake_connect(&fp);
    paced();
    assert_false(fp.conns[e].device_closed); /* the free place */
    assert_false(fp.conns[f].device_closed);
    assert_true(fp.conns[a].device_closed); /* the oldest slow one made room */
    assert_false(fp.conns[b].device_closed);
}

static void test_progressed_sessions_are_not_evicted(void **state)
{
    (void)state;
    ota_server_config_t cfg;
    ota_server_config_default(&cfg);
    cfg.password = "pw";
    setup_server(FAKE_DEFAULT, &cfg);
    fp.random_fixed = true;
    fp.random_byte = 7;
    /* the owner: magic + features at once, holds a challenge */
    int owner = open_session(OTA_FEATURE_SHA256_AUTH, 2);
    /* a flood of sitters and of eager newcomers that stall after the magic */
    for (int i = 0; i < 60; i++) { /* for 2 s: less than OTA_CFG_HANDSHAKE_STALE_MS */
        int c = fake_connect(&fp);
        if (i % 2)
            fake_send(&fp, c, ota_protocol_magic, OTA_MAGIC_LEN);
        paced();
        assert_false(fp.conns[owner].device_closed);
    }
    answer_challenge(owner, OTA_RESP_REQUEST_AUTH_SHA256, "pw");
    expect_byte(owner, OTA_RESP_AUTH_OK);
    assert_true(ota_server_update_in_progress(&srv));
    teardown(NULL);

    /* a session that answers nothing after its challenge loses the protection */
    setup_server(FAKE_DEFAULT, &cfg);
    fp.random_fixed = true;
    fp.random_byte = 7;
    int stalled[OTA_CFG_MAX_SESSIONS];
    for (int i = 0; i < OTA_CFG_MAX_SESSIONS; i++)
        stalled[i] = open_session(OTA_FEATURE_SHA256_AUTH, 2);
    int c = fake_connect_from(&fp, "10.0.0.99:1");
    fake_send(&fp, c, ota_protocol_magic, OTA_MAGIC_LEN);
    paced();
    assert_true(fp.conns[c].device_closed); /* all four are proving themselves: refused */
    for (int i = 0; i < OTA_CFG_MAX_SESSIONS; i++)
        assert_false(fp.conns[stalled[i]].device_closed);
    now_ms += OTA_CFG_HANDSHAKE_STALE_MS;
    c = open_session_from("10.0.0.99:2", OTA_FEATURE_SHA256_AUTH, 2);
    assert_true(fp.conns[stalled[0]].device_closed); /* the longest silent went */
    answer_challenge(c, OTA_RESP_REQUEST_AUTH_SHA256, "pw");
    expect_byte(c, OTA_RESP_AUTH_OK);
}

static void test_one_source_holds_a_limited_share(void **state)
{
    (void)state;
    setup_server(FAKE_DEFAULT, NULL);
    fp.random_fixed = true;
    fp.random_byte = 7;
    int other = fake_connect_from(&fp, "10.0.0.200:1");
    paced();
    int mine[6];
    for (int i = 0; i < 6; i++) { /* one address hammering */
        mine[i] = fake_connect_from(&fp, "10.0.0.50:1000");
        paced();
        now_ms += 10;
    }
    int open = 0;
    for (int i = 0; i < 6; i++)
        open += !fp.conns[mine[i]].device_closed;
    assert_int_equal(open, OTA_CFG_MAX_SESSIONS_PER_SOURCE);
    assert_false(fp.conns[mine[5]].device_closed); /* its own oldest went first */
    assert_true(fp.conns[mine[0]].device_closed);
    assert_false(fp.conns[other].device_closed); /* nobody else's */
    /* and the owner from elsewhere still gets in and through */
    size_t n = 9000;
    uint8_t *d = pattern(n, 40);
    int c = open_session_from("10.0.0.1:5000", 0, 2);
    full_upload(c, d, n, 3000);
    final_ack(c);
    free(d);
}

static void test_backoff_is_per_source(void **state)
{
    (void)state;
    ota_server_config_t cfg = salted_cfg();
    cfg.auth_backoff_free = 1;
    cfg.auth_backoff_base_ms = 5000;
    setup_server(FAKE_DEFAULT, &cfg);
    fail_once();
    fail_once(); /* the attacker waits 5 s now */
    int att = open_session_from(ATTACKER, ALL_AUTH, 2);
    pump(2);
    assert_int_equal(fake_unread(&fp, att), 0);
    /* the owner from another address is not delayed */
    int own = open_session_from("10.0.0.77:5000", ALL_AUTH, 2);
    uint8_t sig[32], got[32];
    answer_salted(own, kat_salted_password, sig);
    expect_byte(own, OTA_RESP_AUTH_OK);
    assert_int_equal(fake_read(&fp, own, got, 32), 32);
    /* nor on IPv6, where the key is the address without the port */
    teardown(NULL);
    setup_server(FAKE_DEFAULT, &cfg);
    for (int i = 0; i < 2; i++) {
        uint8_t wrong[32] = {1};
        int c = open_session_from("[fd00::66]:4000", ALL_AUTH, 2);
        answer_salted(c, wrong, sig);
        expect_byte(c, OTA_RESP_ERROR_AUTH_INVALID);
        pump(1);
    }
    att = open_session_from("[fd00::66]:4001", ALL_AUTH, 2);
    assert_int_equal(fake_unread(&fp, att), 0); /* same address, other port: waits */
    own = open_session_from("[fd00::77]:4000", ALL_AUTH, 2);
    answer_salted(own, kat_salted_password, sig);
    expect_byte(own, OTA_RESP_AUTH_OK);
}

static void test_backoff_one_attempt_per_wait(void **state)
{
    (void)state;
    ota_server_config_t cfg = salted_cfg();
    cfg.auth_backoff_free = 1;
    cfg.auth_backoff_base_ms = 1000;
    setup_server(FAKE_DEFAULT, &cfg);
    fail_once();
    fail_once(); /* in back-off: 1000 ms */
    int a = open_session_from(ATTACKER, ALL_AUTH, 2);
    int b = open_session_from("10.0.0.66:4001", ALL_AUTH, 2); /* a second connection */
    now_ms += 1001;
    pump(1);
    /* one of the two gets its challenge, the other waits another round */
    assert_int_equal((fake_unread(&fp, a) > 0) + (fake_unread(&fp, b) > 0), 1);
    now_ms += 1001;
    pump(1);
    assert_true(fake_unread(&fp, a) > 0 && fake_unread(&fp, b) > 0);
}

static void test_global_guess_ceiling(void **state)
{
    (void)state;
    ota_server_config_t cfg = salted_cfg();
    cfg.auth_backoff_base_ms = 0; /* per-address back-off off: only the ceiling */
    cfg.auth_guesses_per_min = 5;
    setup_server(FAKE_DEFAULT, &cfg);
    uint8_t wrong[32] = {3}, sig[32], got[32];
    for (int i = 0; i < 5; i++) { /* five addresses, one guess each */
        char peer[32];
        snprintf(peer, sizeof peer, "10.1.0.%d:4000", i + 1);
        int c = open_session_from(peer, ALL_AUTH, 2);
        answer_salted(c, wrong, sig);
        expect_byte(c, OTA_RESP_ERROR_AUTH_INVALID);
        pump(1);
        now_ms += 1000;
    }
    /* the ceiling is reached: the owner waits (is not refused) */
    int own = open_session_from("10.0.0.77:5000", ALL_AUTH, 2);
    assert_non_null(strstr(fp.last_log, "ceiling"));
    now_ms += 30000;
    pump(1);
    assert_int_equal(fake_unread(&fp, own), 0);
    assert_false(fp.conns[own].device_closed);
    now_ms += 26000; /* the minute rolls (it began with the first guess) */
    pump(1);
    answer_salted(own, kat_salted_password, sig);
    expect_byte(own, OTA_RESP_AUTH_OK);
    assert_int_equal(fake_read(&fp, own, got, 32), 32);
    assert_memory_equal(got, sig, 32);
}

static void test_backoff_table_reuses_the_oldest(void **state)
{
    (void)state;
    ota_server_config_t cfg = salted_cfg();
    cfg.auth_backoff_free = 0;
    cfg.auth_backoff_base_ms = 100;
    cfg.auth_guesses_per_min = 0;
    setup_server(FAKE_DEFAULT, &cfg);
    uint8_t wrong[32] = {4}, sig[32];
    for (int i = 0; i < OTA_CFG_AUTH_SOURCES + 1; i++) {
        char peer[32];
        snprintf(peer, sizeof peer, "10.2.0.%d:4000", i + 1);
        int c = open_session_from(peer, ALL_AUTH, 2);
        answer_salted(c, wrong, sig);
        expect_byte(c, OTA_RESP_ERROR_AUTH_INVALID);
        pump(1);
        now_ms += 200;
    }
    bool first = false, last = false;
    for (int i = 0; i < OTA_CFG_AUTH_SOURCES; i++) {
        first |= strcmp(srv.guard.sources[i].addr, "10.2.0.1") == 0;
        last |= strcmp(srv.guard.sources[i].addr, "10.2.0.9") == 0;
    }
    assert_false(first); /* forgotten: it was the least recently used */
    assert_true(last);
}

/* ArduinoOTA, MD5 variant (its check is immediate). */
static const char ar_hash[] = "912ec803b2ce49e4a541068d495ab570"; /* MD5hex("asdf") */

/* Answer the challenge nonce from ip: "200 <cnonce> <response>". */
static void ar_answer(const char *ip, const char *nonce, const char *password_hash)
{
    char cnonce[33], resp[33], msg[128], buf[160];
    memset(cnonce, 'c', 32);
    cnonce[32] = '\0';
    snprintf(buf, sizeof buf, "%s:%s:%s", password_hash, nonce, cnonce);
    uint8_t dig[16];
    mbedtls_md5_ret((const uint8_t *)buf, strlen(buf), dig);
    ota_hex_encode(dig, 16, resp);
    resp[32] = '\0';
    snprintf(msg, sizeof msg, "200 %s %s\n", cnonce, resp);
    fake_datagram_from(&fp, ip, msg, strlen(msg));
}

static void test_arduino_squatter_does_not_block(void **state)
{
    (void)state;
    ota_server_config_t cfg;
    ota_server_config_default(&cfg);
    cfg.arduino_enabled = true;
    cfg.arduino_auth = OTA_ARDUINO_AUTH_MD5;
    cfg.arduino_hash = ar_hash;
    setup_server(FAKE_DEFAULT | FAKE_ARDUINO, &cfg);
    const char inv[] = "0 7777 1000 0123456789abcdef0123456789abcdef\n";
    const char sq[] = "0 6666 1000 0123456789abcdef0123456789abcdef\n";
    fake_datagram_from(&fp, "10.0.0.3", sq, strlen(sq)); /* the squatter first */
    pump(1);
    assert_int_equal(strncmp(fp.last_reply, "AUTH ", 5), 0);
    fake_datagram_from(&fp, "10.0.0.1", inv, strlen(inv)); /* the owner */
    pump(1);
    assert_int_equal(strncmp(fp.last_reply, "AUTH ", 5), 0);
    assert_string_equal(fp.last_reply_to, "10.0.0.1");
    char nonce[33];
    memcpy(nonce, fp.last_reply + 5, 32);
    nonce[32] = '\0';
    for (int i = 0; i < 5; i++) { /* the squatter keeps inviting, with new ports */
        char msg[80];
        snprintf(msg, sizeof msg, "0 %d 1000 0123456789abcdef0123456789abcdef\n", 6000 + i);
        fake_datagram_from(&fp, "10.0.0.3", msg, strlen(msg));
        pump(1);
    }
    ar_answer("10.0.0.1", nonce, ar_hash);
    pump(1);
    assert_string_equal(fp.last_reply, "OK");
    assert_string_equal(fp.last_reply_to, "10.0.0.1");
    assert_int_equal(fp.connects, 1);
    teardown(NULL);

    /* wrong answers from one address delay only that address */
    cfg.auth_backoff_free = 1;
    cfg.auth_backoff_base_ms = 8000;
    setup_server(FAKE_DEFAULT | FAKE_ARDUINO, &cfg);
    for (int i = 0; i < 3; i++) {
        fake_datagram_from(&fp, "10.0.0.3", sq, strlen(sq));
        pump(1);
        if (strncmp(fp.last_reply, "AUTH ", 5) != 0)
            break;
        memcpy(nonce, fp.last_reply + 5, 32);
        ar_answer("10.0.0.3", nonce, "00000000000000000000000000000000");
        pump(1);
        assert_string_equal(fp.last_reply, "Authentication Failed");
    }
    assert_non_null(strstr(fp.last_reply, "retry in"));
    fake_datagram_from(&fp, "10.0.0.1", inv, strlen(inv));
    pump(1);
    assert_int_equal(strncmp(fp.last_reply, "AUTH ", 5), 0);
    memcpy(nonce, fp.last_reply + 5, 32);
    ar_answer("10.0.0.1", nonce, ar_hash);
    pump(1);
    assert_string_equal(fp.last_reply, "OK");
}

/* ------------------------------------------------------------ late digest
 * docs/protocol.md#native-late-md5: a client that sets OTA_FEATURE_LATE_MD5 (with the
 * extended bit) is answered OTA_SERVER_FLAG_LATE_MD5 and sends the MD5 after the data. */

/* Magic + features (extended | late | extra); checks the answers up to AUTH_OK. */
static int open_late(uint8_t extra)
{
    int c = fake_connect(&fp);
    uint8_t hello[OTA_MAGIC_LEN + 1];
    memcpy(hello, ota_protocol_magic, OTA_MAGIC_LEN);
    hello[OTA_MAGIC_LEN] = OTA_FEATURE_EXTENDED | OTA_FEATURE_LATE_MD5 | extra;
    fake_send(&fp, c, hello, sizeof hello); /* pipelined: one write */
    pump(2);
    uint8_t want[] = {OTA_RESP_OK, 2, OTA_RESP_FEATURE_FLAGS,
                      OTA_SERVER_FLAG_COMPRESSION | OTA_SERVER_FLAG_LATE_MD5, OTA_RESP_AUTH_OK};
    expect_bytes(c, want, sizeof want);
    return c;
}

/* Type + size; UPDATE_PREPARE_OK and nothing else (no BIN_MD5_OK: it comes late). */
static void late_size(int c, uint32_t n)
{
    uint8_t ts[5] = {OTA_UPDATE_TYPE_APP};
    ota_be32_put(ts + 1, n);
    fake_send(&fp, c, ts, sizeof ts);
    pump(2);
    expect_byte(c, OTA_RESP_UPDATE_PREPARE_OK);
    assert_int_equal(fake_unread(&fp, c), 0);
}

static void test_late_md5_right(void **state)
{
    (void)state;
    setup_server(FAKE_DEFAULT, NULL);
    size_t n = 3 * OTA_CHUNK_SIZE + 7;
    uint8_t *d = pattern(n, 31);
    char md5[OTA_MD5_HEX_LEN];
    md5_hex(d, n, md5);
    int c = open_late(0);
    late_size(c, (uint32_t)n);
    stream(c, d, n, 3000, 5);
    /* every byte is in and written, but nothing is verified before the digest */
    assert_int_equal(count_and_skip_acks(c), 4);
    assert_int_equal(fake_unread(&fp, c), 0);
    assert_int_equal(fp.finish_calls, 0);
    assert_int_equal(fp.activate_calls, 0);
    assert_true(ota_server_update_in_progress(&srv));
    fake_send(&fp, c, md5, 10); /* the digest in pieces */
    pump(2);
    assert_int_equal(fake_unread(&fp, c), 0);
    fake_send(&fp, c, md5 + 10, sizeof md5 - 10);
    pump(2);
    expect_byte(c, OTA_RESP_RECEIVE_OK);
    expect_byte(c, OTA_RESP_UPDATE_END_OK);
    assert_int_equal(fp.activate_calls, 1);
    assert_memory_equal(fp.slot, d, n);
    final_ack(c);
    free(d);
}

static void test_late_md5_wrong(void **state)
{
    (void)state;
    setup_server(FAKE_DEFAULT, NULL);
    size_t n = 2 * OTA_CHUNK_SIZE;
    uint8_t *d = pattern(n, 32);
    char md5[OTA_MD5_HEX_LEN];
    md5_hex(d, n - 1, md5); /* of other bytes */
    int c = open_late(0);
    late_size(c, (uint32_t)n);
    stream(c, d, n, 5000, 6);
    fake_send(&fp, c, md5, sizeof md5);
    pump(3);
    assert_int_equal(count_and_skip_acks(c), 2);
    expect_byte(c, OTA_RESP_RECEIVE_OK);
    expect_byte(c, OTA_RESP_ERROR_MD5_MISMATCH);
    assert_true(fp.conns[c].device_closed);
    assert_int_equal(fp.abort_calls, 1);
    assert_int_equal(fp.finish_calls, 0);
    assert_nothing_activated();
    /* the node takes the next upload, in the stock order */
    c = open_session(OTA_FEATURE_EXTENDED, 2);
    uint8_t type = OTA_UPDATE_TYPE_APP;
    fake_send(&fp, c, &type, 1);
    char good[OTA_MD5_HEX_LEN];
    md5_hex(d, n, good);
    expect_byte(c, OTA_RESP_AUTH_OK);
    send_size_md5(c, (uint32_t)n, good);
    stream(c, d, n, 5000, 7);
    count_and_skip_acks(c);
    expect_byte(c, OTA_RESP_RECEIVE_OK);
    expect_byte(c, OTA_RESP_UPDATE_END_OK);
    assert_int_equal(fp.activate_calls, 1);
    free(d);
}

static void test_late_md5_not_hex(void **state)
{
    (void)state;
    setup_server(FAKE_DEFAULT, NULL);
    size_t n = 5000;
    uint8_t *d = pattern(n, 33);
    int c = open_late(0);
    late_size(c, (uint32_t)n);
    stream(c, d, n, 5000, 8);
    fake_send(&fp, c, "zz456789abcdef0123456789abcdef01", OTA_MD5_HEX_LEN);
    pump(3);
    count_and_skip_acks(c);
    uint8_t b;
    assert_int_equal(fake_read(&fp, c, &b, 1), 1);
    assert_int_equal(b, OTA_RESP_ERROR_UNKNOWN); /* no RECEIVE_OK: the digest is not one */
    assert_true(fp.conns[c].device_closed);
    assert_nothing_activated();
    free(d);
}

/* Everything a client sends in one write, as our uploader may on a node it knows. */
static void test_late_md5_all_in_one_write(void **state)
{
    (void)state;
    setup_server(FAKE_DEFAULT, NULL);
    size_t n = OTA_CHUNK_SIZE + 1;
    uint8_t *d = pattern(n, 34);
    size_t total = OTA_MAGIC_LEN + 1 + 1 + 4 + n + OTA_MD5_HEX_LEN;
    uint8_t *all = malloc(total), *p = all;
    memcpy(p, ota_protocol_magic, OTA_MAGIC_LEN);
    p += OTA_MAGIC_LEN;
    *p++ = OTA_FEATURE_EXTENDED | OTA_FEATURE_LATE_MD5;
    *p++ = OTA_UPDATE_TYPE_APP;
    ota_be32_put(p, (uint32_t)n);
    p += 4;
    memcpy(p, d, n);
    p += n;
    md5_hex(d, n, (char *)p);
    int c = fake_connect(&fp);
    fake_send(&fp, c, all, total);
    pump(20);
    uint8_t want[] = {OTA_RESP_OK,
                      2,
                      OTA_RESP_FEATURE_FLAGS,
                      OTA_SERVER_FLAG_COMPRESSION | OTA_SERVER_FLAG_LATE_MD5,
                      OTA_RESP_AUTH_OK,
                      OTA_RESP_UPDATE_PREPARE_OK,
                      OTA_RESP_CHUNK_OK,
                      OTA_RESP_CHUNK_OK,
                      OTA_RESP_RECEIVE_OK,
                      OTA_RESP_UPDATE_END_OK};
    expect_bytes(c, want, sizeof want);
    assert_int_equal(fp.activate_calls, 1);
    assert_memory_equal(fp.slot, d, n);
    final_ack(c);
    free(all);
    free(d);
}

static void test_late_md5_gzip(void **state)
{
    (void)state;
    setup_server(FAKE_DEFAULT, NULL);
    size_t n = 50000;
    uint8_t *d = malloc(n);
    for (size_t i = 0; i < n; i++)
        d[i] = (uint8_t)(i % 61);
    uLongf zn = compressBound(n) + 64;
    uint8_t *z = malloc(zn);
    z_stream zs;
    memset(&zs, 0, sizeof zs);
    assert_int_equal(deflateInit2(&zs, 6, Z_DEFLATED, 31, 8, Z_DEFAULT_STRATEGY), Z_OK);
    zs.next_in = d;
    zs.avail_in = (uInt)n;
    zs.next_out = z;
    zs.avail_out = (uInt)zn;
    assert_int_equal(deflate(&zs, Z_FINISH), Z_STREAM_END);
    size_t gzn = zs.total_out;
    deflateEnd(&zs);
    char md5[OTA_MD5_HEX_LEN];
    md5_hex(z, gzn, md5);
    int c = open_late(OTA_FEATURE_COMPRESSION);
    late_size(c, (uint32_t)gzn);
    stream(c, z, gzn, 777, 9);
    fake_send(&fp, c, md5, sizeof md5);
    pump(3);
    count_and_skip_acks(c);
    expect_byte(c, OTA_RESP_RECEIVE_OK);
    expect_byte(c, OTA_RESP_UPDATE_END_OK);
    assert_int_equal(fp.finished_size, n);
    assert_memory_equal(fp.slot, d, n);
    final_ack(c);
    free(z);
    free(d);
}

/* A client that does not ask gets no flag and the stock order, byte for byte. */
static void test_late_md5_only_when_asked(void **state)
{
    (void)state;
    setup_server(FAKE_DEFAULT, NULL);
    size_t n = OTA_CHUNK_SIZE;
    uint8_t *d = pattern(n, 35);
    /* extended without the bit: the flags byte is the stock one (open_session checks
     * it is exactly COMPRESSION) */
    int c = open_session(OTA_FEATURE_EXTENDED | OTA_FEATURE_COMPRESSION, 2);
    expect_byte(c, OTA_RESP_AUTH_OK);
    uint8_t type = OTA_UPDATE_TYPE_APP;
    fake_send(&fp, c, &type, 1);
    char md5[OTA_MD5_HEX_LEN];
    md5_hex(d, n, md5);
    send_size_md5(c, (uint32_t)n, md5); /* PREPARE_OK, then BIN_MD5_OK before the data */
    stream(c, d, n, 5000, 10);
    assert_int_equal(count_and_skip_acks(c), 1);
    expect_byte(c, OTA_RESP_RECEIVE_OK);
    expect_byte(c, OTA_RESP_UPDATE_END_OK);
    final_ack(c);
    teardown(NULL);

    /* the bit without the extended protocol: there is no flags byte to answer it, so
     * it is ignored: SUPPORTS_COMPRESSION and the stock order */
    setup_server(FAKE_DEFAULT, NULL);
    c = open_session(OTA_FEATURE_COMPRESSION | OTA_FEATURE_LATE_MD5, 2);
    assert_int_equal(full_upload(c, d, n, 5000), 1);
    assert_int_equal(fp.activate_calls, 1);
    final_ack(c);
    free(d);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(test_upload_v2_no_password, teardown),
        cmocka_unit_test_teardown(test_upload_byte_by_byte, teardown),
        cmocka_unit_test(test_random_splits_and_ack_rule),
        cmocka_unit_test_teardown(test_upload_v1_sends_no_acks, teardown),
        cmocka_unit_test_teardown(test_slot_and_network_would_block, teardown),
        cmocka_unit_test_teardown(test_peer_not_reading_acks_does_not_stall_upload, teardown),
        cmocka_unit_test_teardown(test_sha256_auth_ok_and_upload, teardown),
        cmocka_unit_test_teardown(test_sha256_wrong_password, teardown),
        cmocka_unit_test_teardown(test_md5_only_client, teardown),
        cmocka_unit_test_teardown(test_nonces_differ, teardown),
        cmocka_unit_test_teardown(test_setup_rejects_bad_config, teardown),
        cmocka_unit_test_teardown(test_setup_on_a_live_server_is_refused, teardown),
        cmocka_unit_test_teardown(test_wrong_magic, teardown),
        cmocka_unit_test_teardown(test_unsupported_update_type, teardown),
        cmocka_unit_test_teardown(test_pull_now_request, teardown),
        cmocka_unit_test_teardown(test_size_too_big_and_prepare_errors, teardown),
        cmocka_unit_test_teardown(test_md5_mismatch, teardown),
        cmocka_unit_test_teardown(test_write_failure, teardown),
        cmocka_unit_test_teardown(test_bad_image_format, teardown),
        cmocka_unit_test_teardown(test_activate_failure, teardown),
        cmocka_unit_test_teardown(test_disconnect_mid_transfer_then_next_upload, teardown),
        cmocka_unit_test_teardown(test_corrupt_gzip, teardown),
        cmocka_unit_test_teardown(test_gzip_upload_inflates, teardown),
        cmocka_unit_test_teardown(test_gzip_inflated_too_big, teardown),
        cmocka_unit_test_teardown(test_no_inflate_port_announces_no_compression, teardown),
        cmocka_unit_test_teardown(test_second_uploader_gets_busy, teardown),
        cmocka_unit_test_teardown(test_authenticating_peers_do_not_hold_the_lock, teardown),
        cmocka_unit_test_teardown(test_full_pool_drops_idlest, teardown),
        cmocka_unit_test_teardown(test_handshake_timeout, teardown),
        cmocka_unit_test_teardown(test_data_timeout_frees_the_lock, teardown),
        cmocka_unit_test_teardown(test_reboot_without_final_ack, teardown),
        cmocka_unit_test_teardown(test_clock_wraparound, teardown),
        cmocka_unit_test_teardown(test_free_aborts_running_update, teardown),
        cmocka_unit_test_teardown(test_salted_auth_and_upload, teardown),
        cmocka_unit_test_teardown(test_salted_wrong_password, teardown),
        cmocka_unit_test_teardown(test_verifier_only_node_refuses_legacy_clients, teardown),
        cmocka_unit_test_teardown(test_method_preference_salted_sha256_md5, teardown),
        cmocka_unit_test_teardown(test_bad_verifier_rejected_at_setup, teardown),
        cmocka_unit_test_teardown(test_brute_force_backoff, teardown),
        cmocka_unit_test_teardown(test_backoff_is_bounded, teardown),
        cmocka_unit_test(test_ratelimit_first_then_summaries),
        cmocka_unit_test_teardown(test_repeated_lines_are_rate_limited, teardown),
        cmocka_unit_test_teardown(test_garbage_never_takes_a_place, teardown),
        cmocka_unit_test_teardown(test_early_drop_of_silent_newcomers, teardown),
        cmocka_unit_test_teardown(test_progressed_sessions_are_not_evicted, teardown),
        cmocka_unit_test_teardown(test_one_source_holds_a_limited_share, teardown),
        cmocka_unit_test_teardown(test_backoff_is_per_source, teardown),
        cmocka_unit_test_teardown(test_backoff_one_attempt_per_wait, teardown),
        cmocka_unit_test_teardown(test_global_guess_ceiling, teardown),
        cmocka_unit_test_teardown(test_backoff_table_reuses_the_oldest, teardown),
        cmocka_unit_test_teardown(test_arduino_squatter_does_not_block, teardown),
        cmocka_unit_test_teardown(test_late_md5_right, teardown),
        cmocka_unit_test_teardown(test_late_md5_wrong, teardown),
        cmocka_unit_test_teardown(test_late_md5_not_hex, teardown),
        cmocka_unit_test_teardown(test_late_md5_all_in_one_write, teardown),
        cmocka_unit_test_teardown(test_late_md5_gzip, teardown),
        cmocka_unit_test_teardown(test_late_md5_only_when_asked, teardown),
    };
    return cmocka_run_group_tests_name("server", tests, NULL, NULL);
}
