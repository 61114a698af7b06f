/*
 * test_update.c - unit tests of the update pipeline alone (src/core/update.c,
 * ota/update.h) over the fake port's RAM slot, data store, mbedTLS hashing and zlib
 * inflation: the lock, begin and its retry, raw and gzip images end to end, every
 * failure and what it leaves behind (never an activated slot), the data store, the
 * copying write path, progress notifications and the setup checks. Each test
 * asserts on the bytes that end up in the fake's slot or data store.
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
#include "ota/app_desc.h"
#include "ota/errors.h"
#include "ota/update.h"

#define CAP (1024u * 1024u)

static fake_port_t fp;
static ota_update_t up;

/* ------------------------------------------------------------ notifications */

#define REC_MAX 4096
typedef struct rec {
    int n;
    ota_state_t st[REC_MAX];
    uint32_t rx[REC_MAX], tot[REC_MAX];
    int err[REC_MAX];
} rec_t;
static rec_t rec;

static void on_state(void *arg, ota_state_t st, uint32_t received, uint32_t total, int err)
{
    assert_ptr_equal(arg, &rec);
    assert_true(rec.n < REC_MAX);
    rec.st[rec.n] = st;
    rec.rx[rec.n] = received;
    rec.tot[rec.n] = total;
    rec.err[rec.n] = err;
    rec.n++;
}

static int count_state(ota_state_t st)
{
    int k = 0;
    for (int i = 0; i < rec.n; i++)
        k += rec.st[i] == st;
    return k;
}

/* STARTED first, IN_PROGRESS strictly growing in steps of at least
 * max(size / 100, 8192) except the last, which equals size; total is size all along;
 * then COMPLETED (or nothing) and no ERROR. */
static void check_success_states(uint32_t size, bool completed)
{
    assert_true(rec.n >= 2);
    assert_int_equal(rec.st[0], OTA_STATE_STARTED);
    assert_int_equal(rec.rx[0], 0);
    uint32_t step = size / 100u < 8192u ? 8192u : size / 100u;
    uint32_t prev = 0;
    int last = completed ? rec.n - 1 : rec.n;
    for (int i = 1; i < last; i++) {
        assert_int_equal(rec.st[i], OTA_STATE_IN_PROGRESS);
        assert_int_equal(rec.tot[i], size);
        assert_true(rec.rx[i] > prev);
        assert_true(rec.rx[i] - prev >= step || rec.rx[i] == size);
        prev = rec.rx[i];
    }
    assert_int_equal(prev, size); /* the last progress is the whole image */
    if (completed) {
        assert_int_equal(rec.st[rec.n - 1], OTA_STATE_COMPLETED);
        assert_int_equal(rec.err[rec.n - 1], OTA_OK);
    }
    assert_int_equal(count_state(OTA_STATE_ERROR), 0);
    assert_int_equal(count_state(OTA_STATE_STARTED), 1);
}

/* ------------------------------------------------------------ harness */

static void setup_pipeline(bool with_data, bool with_inflate)
{
    fake_init(&fp, CAP);
    fake_tables(&fp, FAKE_INFLATE | FAKE_ARDUINO);
    memset(&rec, 0, sizeof rec);
    assert_int_equal(ota_update_setup(&up, &fp.t.slot, with_data ? &fp.t.data : NULL,
                                      &fp.t.crypto, with_inflate ? &fp.t.inflate : NULL,
                                      on_state, &rec),
                     OTA_OK);
}

static int setup_all(void **state)
{
    (void)state;
    setup_pipeline(true, true);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    fake_free(&fp);
    return 0;
}

static uint8_t *pattern(size_t n, unsigned seed)
{
    uint8_t *p = malloc(n ? n : 1);
    srand(seed);
    for (size_t i = 0; i < n; i++)
        p[i] = (uint8_t)(rand() >> 7);
    if (n > 0 && p[0] == 0x1f)
        p[0] = 0x20; /* never the gzip magic by chance */
    return p;
}

/* Compressible, not trivial: something like a firmware image. */
static uint8_t *compressible(size_t n)
{
    static const char words[] = "firmware-image-section-";
    uint8_t *p = malloc(n);
    for (size_t i = 0; i < n; i++)
        p[i] = (uint8_t)(words[i % (sizeof words - 1)] ^ (uint8_t)(i >> 11));
    return p;
}

static void md5_of(const uint8_t *d, size_t n, uint8_t out[16])
{
    assert_int_equal(mbedtls_md5_ret(d, n, out), 0);
}

/* RFC 1952 gzip of in (zlib's deflate with windowBits 31). */
static uint8_t *gzip_of(const uint8_t *in, size_t n, size_t *out_n)
{
    z_stream z;
    memset(&z, 0, sizeof z);
    assert_int_equal(deflateInit2(&z, 9, Z_DEFLATED, 31, 8, Z_DEFAULT_STRATEGY), Z_OK);
    size_t cap = deflateBound(&z, (uLong)n) + 64;
    uint8_t *out = malloc(cap);
    z.next_in = (Bytef *)(uintptr_t)in;
    z.avail_in = (uInt)n;
    z.next_out = out;
    z.avail_out = (uInt)cap;
    assert_int_equal(deflate(&z, Z_FINISH), Z_STREAM_END);
    *out_n = z.total_out;
    deflateEnd(&z);
    assert_int_equal(out[0], 0x1f);
    assert_int_equal(out[1], 0x8b);
    return out;
}

/* Feed img[0..n) through room/received in pieces of at most piece bytes, pumping
 * after each; WOULD_BLOCK from pump is retried (counted in *blocks). Returns the
 * first error of received or pump, else 0 once everything is written. */
static int feed(const uint8_t *img, size_t n, size_t piece, int *blocks)
{
    size_t off = 0;
    long rounds = 0;
    for (;;) {
        assert_true(++rounds < 10000000L);
        if (off < n) {
            uint8_t *buf;
            size_t room = ota_update_room(&up, &buf);
            size_t k = n - off;
            if (k > piece)
                k = piece;
            if (k > room)
                k = room;
            if (k > 0) {
                memcpy(buf, img + off, k);
                int rc = ota_update_received(&up, k);
                if (rc != OTA_OK)
                    return rc;
                off += k;
            }
        }
        int rc = ota_update_pump(&up);
        if (rc == OTA_ERR_WOULD_BLOCK) {
            if (blocks)
                (*blocks)++;
            continue;
        }
        if (rc != OTA_OK)
            return rc;
        if (off == n)
            return OTA_OK;
    }
}

static void lock_and_begin(uint32_t size, const uint8_t *md5, unsigned flags)
{
    assert_int_equal(ota_update_lock(&up, 7), OTA_OK);
    assert_int_equal(ota_update_begin(&up, size, md5, flags), OTA_OK);
}

/* ------------------------------------------------------------ setup */

static void test_setup_argument_checks(void **state)
{
    (void)state;
    fake_init(&fp, CAP);
    fake_tables(&fp, FAKE_INFLATE | FAKE_ARDUINO);
    ota_store_port_t slot = fp.t.slot, data = fp.t.data;
    ota_crypto_port_t cr = fp.t.crypto;
    ota_inflate_port_t inf = fp.t.inflate;

    assert_int_equal(ota_update_setup(NULL, &slot, NULL, &cr, NULL, NULL, NULL),
                     OTA_ERR_INVALID_ARG);
    assert_int_equal(ota_update_setup(&up, NULL, NULL, &cr, NULL, NULL, NULL),
                     OTA_ERR_INVALID_ARG);
    assert_int_equal(ota_update_setup(&up, &slot, NULL, NULL, NULL, NULL, NULL),
                     OTA_ERR_INVALID_ARG);

    /* every slot function is required, activate included */
    for (int i = 0; i < 5; i++) {
        ota_store_port_t s = fp.t.slot;
        if (i == 0)
            s.begin = NULL;
        if (i == 1)
            s.write = NULL;
        if (i == 2)
            s.finish = NULL;
        if (i == 3)
            s.activate = NULL;
        if (i == 4)
            s.abort = NULL;
        assert_int_equal(ota_update_setup(&up, &s, NULL, &cr, NULL, NULL, NULL),
                         OTA_ERR_INVALID_ARG);
    }
    /* the hash functions are required; hmac and random are not */
    for (int i = 0; i < 3; i++) {
        ota_crypto_port_t c = fp.t.crypto;
        if (i == 0)
            c.hash_start = NULL;
        if (i == 1)
            c.hash_update = NULL;
        if (i == 2)
            c.hash_finish = NULL;
        assert_int_equal(ota_update_setup(&up, &slot, NULL, &c, NULL, NULL, NULL),
                         OTA_ERR_INVALID_ARG);
    }
    cr.hmac_sha256 = NULL;
    cr.random = NULL;
    assert_int_equal(ota_update_setup(&up, &slot, NULL, &cr, NULL, NULL, NULL), OTA_OK);
    cr = fp.t.crypto;
    /* a data store is all or nothing, but needs no activate */
    for (int i = 0; i < 4; i++) {
        ota_store_port_t d = fp.t.data;
        if (i == 0)
            d.begin = NULL;
        if (i == 1)
            d.write = NULL;
        if (i == 2)
            d.finish = NULL;
        if (i == 3)
            d.abort = NULL;
        assert_int_equal(ota_update_setup(&up, &slot, &d, &cr, NULL, NULL, NULL),
                         OTA_ERR_INVALID_ARG);
    }
    assert_null(data.activate);
    /* an inflate table is all or nothing */
    for (int i = 0; i < 3; i++) {
        ota_inflate_port_t f = fp.t.inflate;
        if (i == 0)
            f.begin = NULL;
        if (i == 1)
            f.run = NULL;
        if (i == 2)
            f.end = NULL;
        assert_int_equal(ota_update_setup(&up, &slot, NULL, &cr, &f, NULL, NULL),
                         OTA_ERR_INVALID_ARG);
    }

    /* the minimal pipeline: no data store, no inflate, no callback */
    assert_int_equal(ota_update_setup(&up, &slot, NULL, &cr, NULL, NULL, NULL), OTA_OK);
    assert_false(ota_update_has_data_store(&up));
    assert_false(ota_update_can_inflate(&up));
    assert_false(ota_update_busy(&up));
    assert_int_equal(ota_update_setup(&up, &slot, &data, &cr, &inf, NULL, NULL), OTA_OK);
    assert_true(ota_update_has_data_store(&up));
    assert_true(ota_update_can_inflate(&up));

    /* no callback: a whole update still works */
    uint8_t img[300];
    for (size_t i = 0; i < sizeof img; i++)
        img[i] = (uint8_t)(i * 3 + 1);
    assert_int_equal(ota_update_lock(&up, 0), OTA_OK);
    assert_int_equal(ota_update_begin(&up, sizeof img, NULL, 0), OTA_OK);
    assert_int_equal(ota_update_write(&up, img, sizeof img), (int)sizeof img);
    assert_int_equal(ota_update_pump(&up), OTA_OK);
    assert_int_equal(ota_update_finish(&up), OTA_OK);
    assert_memory_equal(fp.slot, img, sizeof img);
    assert_true(fp.activated);
    fake_free(&fp);
}

/* ------------------------------------------------------------ lock */

static void test_lock_semantics(void **state)
{
    (void)state;
    assert_false(ota_update_busy(&up));
    assert_false(ota_update_held_by(&up, OTA_UPDATE_NOBODY)); /* nobody is no holder */
    assert_int_equal(ota_update_lock(&up, -2), OTA_ERR_BUSY);  /* no negative holders */
    assert_int_equal(ota_update_lock(&up, OTA_UPDATE_HOLDER_NATIVE(3)), OTA_OK);
    assert_true(ota_update_busy(&up));
    assert_true(ota_update_held_by(&up, 3));
    assert_false(ota_update_held_by(&up, OTA_UPDATE_HOLDER_ARDUINO));
    /* a second holder, and the same one again, get BUSY */
    assert_int_equal(ota_update_lock(&up, OTA_UPDATE_HOLDER_ARDUINO), OTA_ERR_BUSY);
    assert_int_equal(ota_update_lock(&up, 3), OTA_ERR_BUSY);
    assert_true(ota_update_held_by(&up, 3));

    assert_int_equal(ota_update_begin(&up, 1000, NULL, 0), OTA_OK);
    assert_int_equal(fp.begin_calls, 1);
    /* abort by a non-holder (or nobody) is a no-op: nothing discarded or notified */
    int before = rec.n;
    ota_update_abort(&up, OTA_UPDATE_HOLDER_ARDUINO, OTA_ERR_CLOSED);
    ota_update_abort(&up, OTA_UPDATE_NOBODY, OTA_ERR_CLOSED);
    assert_true(ota_update_held_by(&up, 3));
    assert_int_equal(fp.abort_calls, 0);
    assert_int_equal(rec.n, before);
    assert_true(fp.slot_open);

    /* the holder's abort frees it, once */
    ota_update_abort(&up, 3, OTA_ERR_CLOSED);
    assert_false(ota_update_busy(&up));
    assert_int_equal(fp.abort_calls, 1);
    assert_int_equal(count_state(OTA_STATE_ERROR), 1);
    assert_int_equal(rec.err[rec.n - 1], OTA_ERR_CLOSED);
    ota_update_abort(&up, 3, OTA_ERR_CLOSED);
    assert_int_equal(fp.abort_calls, 1);
    assert_int_equal(count_state(OTA_STATE_ERROR), 1);

    /* a lock taken and given back without begin notifies nothing */
    assert_int_equal(ota_update_lock(&up, OTA_UPDATE_HOLDER_ARDUINO), OTA_OK);
    before = rec.n;
    ota_update_abort(&up, OTA_UPDATE_HOLDER_ARDUINO, OTA_ERR_AUTH);
    assert_int_equal(rec.n, before);
    assert_int_equal(fp.abort_calls, 1);
    assert_false(ota_update_busy(&up));

    /* begin without the lock, or with size 0 */
    assert_int_equal(ota_update_begin(&up, 10, NULL, 0), OTA_ERR_INVALID_ARG);
    assert_int_equal(ota_update_lock(&up, 5), OTA_OK);
    assert_int_equal(ota_update_begin(&up, 0, NULL, 0), OTA_ERR_INVALID_ARG);
    assert_int_equal(fp.begin_calls, 1);

    /* a successful update: afterwards the lock refuses everyone until the reboot */
    uint8_t img[100];
    memset(img, 0x5a, sizeof img);
    assert_int_equal(ota_update_begin(&up, sizeof img, NULL, 0), OTA_OK);
    assert_int_equal(ota_update_begin(&up, sizeof img, NULL, 0), OTA_ERR_INVALID_ARG); /* twice */
    assert_int_equal(ota_update_write(&up, img, sizeof img), (int)sizeof img);
    assert_int_equal(ota_update_pump(&up), OTA_OK);
    assert_int_equal(ota_update_finish(&up), OTA_OK);
    assert_true(fp.activated);
    assert_int_equal(rec.st[rec.n - 1], OTA_STATE_COMPLETED);
    before = rec.n;
    ota_update_abort(&up, 5, OTA_OK); /* the holder lets go: no ERROR, no slot abort */
    assert_int_equal(rec.n, before);
    assert_int_equal(fp.abort_calls, 1);
    assert_true(fp.activated);
    assert_false(ota_update_held_by(&up, 5));
    assert_true(ota_update_busy(&up));
    assert_int_equal(ota_update_lock(&up, 5), OTA_ERR_BUSY);
    assert_int_equal(ota_update_lock(&up, 0), OTA_ERR_BUSY);
    assert_int_equal(ota_update_lock(&up, OTA_UPDATE_HOLDER_ARDUINO), OTA_ERR_BUSY);
}

/* A failed update leaves nothing behind: the next holder starts from zero. */
static void test_lock_after_failure_starts_fresh(void **state)
{
    (void)state;
    uint8_t *a = pattern(20000, 1), *b = pattern(5000, 2);
    uint8_t md5b[16];
    md5_of(b, 5000, md5b);
    assert_int_equal(ota_update_lock(&up, 1), OTA_OK);
    assert_int_equal(ota_update_begin(&up, 20000, md5b /* wrong */, OTA_UPDATE_F_GZIP), OTA_OK);
    assert_int_equal(feed(a, 9000, 4096, NULL), OTA_OK); /* partly in */
    ota_update_abort(&up, 1, OTA_ERR_CLOSED);
    assert_false(fp.activated);

    memset(&rec, 0, sizeof rec);
    lock_and_begin(5000, md5b, 0);
    assert_int_equal(feed(b, 5000, 1000, NULL), OTA_OK);
    assert_true(ota_update_complete(&up));
    assert_int_equal(ota_update_finish(&up), OTA_OK);
    assert_memory_equal(fp.slot, b, 5000);
    assert_int_equal(fp.slot_high, 5000);
    assert_int_equal(fp.finished_size, 5000);
    check_success_states(5000, true);
    free(a);
    free(b);
}

/* ------------------------------------------------------------ begin */

static void test_begin_would_block_then_retry(void **state)
{
    (void)state;
    uint8_t *img = pattern(3000, 3);
    assert_int_equal(ota_update_lock(&up, 2), OTA_OK);
    fp.fail_begin = OTA_ERR_WOULD_BLOCK; /* the store is still erasing */
    for (int i = 0; i < 3; i++)
        assert_int_equal(ota_update_begin(&up, 3000, NULL, 0), OTA_ERR_WOULD_BLOCK);
    assert_int_equal(rec.n, 0); /* nothing notified before success */
    uint8_t *buf;
    assert_int_equal(ota_update_room(&up, &buf), 0); /* no bytes before begin */
    assert_false(ota_update_complete(&up));
    fp.fail_begin = 0;
    assert_int_equal(ota_update_begin(&up, 3000, NULL, 0), OTA_OK);
    assert_int_equal(fp.begin_calls, 4);
    assert_int_equal(rec.n, 1);
    assert_int_equal(rec.st[0], OTA_STATE_STARTED);
    assert_int_equal(rec.tot[0], 3000);
    assert_int_equal(feed(img, 3000, 3000, NULL), OTA_OK);
    assert_int_equal(ota_update_finish(&up), OTA_OK);
    assert_memory_equal(fp.slot, img, 3000);
    check_success_states(3000, true);
    free(img);
}

static void test_begin_store_error_is_returned(void **state)
{
    (void)state;
    assert_int_equal(ota_update_lock(&up, 2), OTA_OK);
    assert_int_equal(ota_update_begin(&up, CAP + 1, NULL, 0), OTA_ERR_NO_SPACE);
    fp.fail_begin = OTA_ERR_PREPARE;
    assert_int_equal(ota_update_begin(&up, 10, NULL, 0), OTA_ERR_PREPARE);
    assert_int_equal(rec.n, 0);
    /* nothing was begun: the abort lets the store clean up what a failed begin may
     * have left (the contract allows abort after any call) and tells the firmware
     * nothing */
    ota_update_abort(&up, 2, OTA_ERR_PREPARE);
    assert_int_equal(fp.abort_calls, 1);
    assert_int_equal(rec.n, 0);
    assert_false(ota_update_busy(&up));
}

static int fail_hash_start(void *ctx, ota_hash_ctx_t *h, ota_hash_alg_t alg)
{
    (void)ctx;
    (void)h;
    (void)alg;
    return OTA_ERR_CRYPTO;
}

static int hash_update_calls;
static int fail_hash_update_2nd(void *ctx, ota_hash_ctx_t *h, const uint8_t *d, size_t n)
{
    if (++hash_update_calls == 2)
        return OTA_ERR_CRYPTO;
    return fp.t.crypto.hash_update(ctx, h, d, n);
}

static void test_crypto_failures(void **state)
{
    (void)state;
    ota_crypto_port_t cr = fp.t.crypto;
    cr.hash_start = fail_hash_start;
    assert_int_equal(ota_update_setup(&up, &fp.t.slot, NULL, &cr, NULL, on_state, &rec), OTA_OK);
    assert_int_equal(ota_update_lock(&up, 1), OTA_OK);
    assert_int_equal(ota_update_begin(&up, 100, NULL, 0), OTA_ERR_CRYPTO);
    ota_update_abort(&up, 1, OTA_ERR_CRYPTO); /* the store was begun: it is discarded */
    assert_int_equal(fp.abort_calls, 1);
    assert_false(fp.slot_open);
    assert_false(ota_update_busy(&up));

    cr = fp.t.crypto;
    cr.hash_update = fail_hash_update_2nd;
    hash_update_calls = 0;
    memset(&rec, 0, sizeof rec);
    assert_int_equal(ota_update_setup(&up, &fp.t.slot, NULL, &cr, NULL, on_state, &rec), OTA_OK);
    uint8_t img[200] = {1, 2, 3};
    lock_and_begin(sizeof img, NULL, 0);
    assert_int_equal(ota_update_write(&up, img, 100), 100);
    assert_int_equal(ota_update_write(&up, img + 100, 100), OTA_ERR_CRYPTO);
    ota_update_abort(&up, 7, OTA_ERR_CRYPTO);
    assert_false(fp.activated);
    assert_int_equal(fp.abort_calls, 2);
    assert_int_equal(count_state(OTA_STATE_ERROR), 1);
}

/* ------------------------------------------------------------ raw images */

static void test_raw_image_md5_at_begin(void **state)
{
    (void)state;
    const size_t n = 300001;
    uint8_t *img = pattern(n, 4);
    uint8_t md5[16];
    md5_of(img, n, md5);
    lock_and_begin((uint32_t)n, md5, 0);
    assert_false(ota_update_complete(&up));
    assert_int_equal(ota_update_finish(&up), OTA_ERR_INVALID_ARG); /* not all in yet */
    assert_int_equal(feed(img, n, 1000, NULL), OTA_OK);
    /* everything announced is in: no more room */
    uint8_t *buf;
    assert_int_equal(ota_update_room(&up, &buf), 0);
    assert_true(ota_update_complete(&up));
    assert_int_equal(fp.finish_calls, 0);
    assert_false(fp.activated);
    assert_int_equal(ota_update_finish(&up), OTA_OK);
    assert_int_equal(fp.finish_calls, 1);
    assert_int_equal(fp.finished_size, n);
    assert_int_equal(fp.activate_calls, 1);
    assert_true(fp.activated);
    assert_int_equal(fp.slot_high, n);
    assert_memory_equal(fp.slot, img, n);
    assert_int_equal(fp.slot[n], 0xEE); /* nothing beyond the image */
    check_success_states((uint32_t)n, true);
    free(img);
}

static void test_raw_image_md5_via_expect(void **state)
{
    (void)state;
    const size_t n = 50000;
    uint8_t *img = pattern(n, 5);
    uint8_t md5[16];
    md5_of(img, n, md5);
    lock_and_begin((uint32_t)n, NULL, 0);
    assert_int_equal(feed(img, 20000, 4096, NULL), OTA_OK);
    ota_update_expect_md5(&up, md5); /* learnt mid-way */
    assert_int_equal(feed(img + 20000, n - 20000, 4096, NULL), OTA_OK);
    assert_int_equal(ota_update_finish(&up), OTA_OK);
    assert_memory_equal(fp.slot, img, n);
    assert_true(fp.activated);
    check_success_states((uint32_t)n, true);
    free(img);
}

static void test_raw_image_without_md5(void **state)
{
    (void)state;
    uint8_t *img = pattern(777, 6);
    lock_and_begin(777, NULL, 0);
    assert_int_equal(feed(img, 777, 1, NULL), OTA_OK); /* byte by byte */
    assert_int_equal(ota_update_finish(&up), OTA_OK);
    assert_memory_equal(fp.slot, img, 777);
    assert_true(fp.activated);
    check_success_states(777, true);
    free(img);
}

static void test_md5_mismatch_never_activates(void **state)
{
    (void)state;
    const size_t n = 10000;
    uint8_t *img = pattern(n, 7);
    uint8_t md5[16];
    md5_of(img, n, md5);
    md5[5] ^= 1;
    lock_and_begin((uint32_t)n, md5, 0);
    assert_int_equal(feed(img, n, 2500, NULL), OTA_OK);
    assert_int_equal(ota_update_finish(&up), OTA_ERR_MD5_MISMATCH);
    assert_int_equal(fp.finish_calls, 0);
    assert_int_equal(fp.activate_calls, 0);
    assert_false(fp.activated);
    assert_int_equal(count_state(OTA_STATE_COMPLETED), 0);
    assert_int_equal(count_state(OTA_STATE_ERROR), 0); /* the transport answers first */
    assert_true(ota_update_held_by(&up, 7));           /* still held until the abort */
    ota_update_abort(&up, 7, OTA_ERR_MD5_MISMATCH);
    assert_int_equal(fp.abort_calls, 1);
    assert_false(fp.activated);
    assert_int_equal(count_state(OTA_STATE_ERROR), 1);
    assert_int_equal(rec.st[rec.n - 1], OTA_STATE_ERROR);
    assert_int_equal(rec.err[rec.n - 1], OTA_ERR_MD5_MISMATCH);
    ota_update_abort(&up, 7, OTA_ERR_MD5_MISMATCH); /* twice: still once */
    assert_int_equal(count_state(OTA_STATE_ERROR), 1);
    assert_false(ota_update_busy(&up));
    free(img);
}

/* ------------------------------------------------------------ gzip */

static void test_gzip_inflated_into_slot(void **state)
{
    (void)state;
    const size_t n = 400000;
    uint8_t *img = compressible(n);
    size_t gz_n;
    uint8_t *gz = gzip_of(img, n, &gz_n);
    assert_true(gz_n < n / 4);
    uint8_t md5[16];
    md5_of(gz, gz_n, md5); /* the digest is of the bytes on the wire */
    lock_and_begin((uint32_t)gz_n, md5, OTA_UPDATE_F_GZIP);
    /* the first byte alone does not decide: nothing is written yet */
    assert_int_equal(feed(gz, 1, 1, NULL), OTA_OK);
    assert_int_equal(fp.slot_high, 0);
    assert_int_equal(feed(gz + 1, gz_n - 1, 777, NULL), OTA_OK);
    assert_true(ota_update_complete(&up));
    assert_int_equal(ota_update_finish(&up), OTA_OK);
    assert_null(fp.zstream); /* the inflater was ended */
    assert_int_equal(fp.slot_high, n);
    assert_int_equal(fp.finished_size, n);
    assert_memory_equal(fp.slot, img, n);
    assert_true(fp.activated);
    check_success_states((uint32_t)gz_n, true);
    free(img);
    free(gz);
}

/* A tiny gzip of a large image: one input chunk yields many full output buffers. */
static void test_gzip_highly_compressible(void **state)
{
    (void)state;
    const size_t n = 600000;
    uint8_t *img = calloc(1, n);
    img[n - 1] = 0x42;
    size_t gz_n;
    uint8_t *gz = gzip_of(img, n, &gz_n);
    assert_true(gz_n < 4096);
    lock_and_begin((uint32_t)gz_n, NULL, OTA_UPDATE_F_GZIP);
    assert_int_equal(feed(gz, gz_n, gz_n, NULL), OTA_OK);
    assert_int_equal(ota_update_finish(&up), OTA_OK);
    assert_int_equal(fp.slot_high, n);
    assert_memory_equal(fp.slot, img, n);
    free(img);
    free(gz);
}

static void test_gzip_flag_with_raw_bytes_stored_raw(void **state)
{
    (void)state;
    uint8_t *img = pattern(20000, 8);
    uint8_t md5[16];
    md5_of(img, 20000, md5);
    lock_and_begin(20000, md5, OTA_UPDATE_F_GZIP);
    assert_int_equal(feed(img, 20000, 1, NULL), OTA_OK);
    assert_int_equal(ota_update_finish(&up), OTA_OK);
    assert_int_equal(fp.slot_high, 20000);
    assert_memory_equal(fp.slot, img, 20000);
    teardown(NULL);

    /* 1f but not 8b: raw as well */
    setup_pipeline(true, true);
    img[0] = 0x1f;
    img[1] = 0x00;
    lock_and_begin(20000, NULL, OTA_UPDATE_F_GZIP);
    assert_int_equal(feed(img, 20000, 4096, NULL), OTA_OK);
    assert_int_equal(ota_update_finish(&up), OTA_OK);
    assert_memory_equal(fp.slot, img, 20000);
    teardown(NULL);

    /* a one-byte image that is the first magic byte: decided at its end, raw */
    setup_pipeline(true, true);
    lock_and_begin(1, NULL, OTA_UPDATE_F_GZIP);
    assert_int_equal(feed(img, 1, 1, NULL), OTA_OK);
    assert_int_equal(ota_update_finish(&up), OTA_OK);
    assert_int_equal(fp.slot_high, 1);
    assert_int_equal(fp.slot[0], 0x1f);
    free(img);
}

/* gzip bytes without the flag, or without an inflater, are the image itself. */
static void test_gzip_bytes_without_flag_or_inflater_stored_raw(void **state)
{
    (void)state;
    uint8_t *img = compressible(50000);
    size_t gz_n;
    uint8_t *gz = gzip_of(img, 50000, &gz_n);
    lock_and_begin((uint32_t)gz_n, NULL, 0);
    assert_int_equal(feed(gz, gz_n, 512, NULL), OTA_OK);
    assert_int_equal(ota_update_finish(&up), OTA_OK);
    assert_int_equal(fp.slot_high, gz_n);
    assert_memory_equal(fp.slot, gz, gz_n);
    teardown(NULL);

    setup_pipeline(true, false);
    assert_false(ota_update_can_inflate(&up));
    lock_and_begin((uint32_t)gz_n, NULL, OTA_UPDATE_F_GZIP);
    assert_int_equal(feed(gz, gz_n, 512, NULL), OTA_OK);
    assert_int_equal(ota_update_finish(&up), OTA_OK);
    assert_int_equal(fp.slot_high, gz_n);
    assert_memory_equal(fp.slot, gz, gz_n);
    free(img);
    free(gz);
}

static void test_corrupt_gzip(void **state)
{
    (void)state;
    uint8_t *img = compressible(100000);
    size_t gz_n;
    uint8_t *gz = gzip_of(img, 100000, &gz_n);
    for (size_t i = 20; i < gz_n - 8; i += 3)
        gz[i] ^= 0xA5; /* a valid header, garbage after it */
    lock_and_begin((uint32_t)gz_n, NULL, OTA_UPDATE_F_GZIP);
    assert_int_equal(feed(gz, gz_n, 1000, NULL), OTA_ERR_INFLATE);
    assert_false(ota_update_complete(&up));
    ota_update_abort(&up, 7, OTA_ERR_INFLATE);
    assert_null(fp.zstream); /* the inflater was released */
    assert_int_equal(fp.abort_calls, 1);
    assert_false(fp.activated);
    assert_int_equal(fp.finish_calls, 0);
    assert_int_equal(count_state(OTA_STATE_ERROR), 1);
    assert_int_equal(rec.err[rec.n - 1], OTA_ERR_INFLATE);
    assert_false(ota_update_busy(&up));
    free(img);
    free(gz);
}

static int inflate_begin_fails(void *ctx)
{
    (void)ctx;
    return OTA_ERR_INFLATE;
}

static void test_inflater_cannot_start(void **state)
{
    (void)state;
    ota_inflate_port_t inf = fp.t.inflate;
    inf.begin = inflate_begin_fails;
    assert_int_equal(ota_update_setup(&up, &fp.t.slot, NULL, &fp.t.crypto, &inf, on_state, &rec),
                     OTA_OK);
    const uint8_t gz[] = {0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 3};
    lock_and_begin(sizeof gz, NULL, OTA_UPDATE_F_GZIP);
    assert_int_equal(ota_update_write(&up, gz, sizeof gz), OTA_ERR_INFLATE);
    ota_update_abort(&up, 7, OTA_ERR_INFLATE);
    assert_false(fp.activated);
    assert_int_equal(fp.abort_calls, 1);
}

static void test_gzip_ended_early(void **state)
{
    (void)state;
    uint8_t *img = compressible(100000);
    size_t gz_n;
    uint8_t *gz = gzip_of(img, 100000, &gz_n);
    size_t cut = gz_n - 6; /* the trailer is missing */
    uint8_t md5[16];
    md5_of(gz, cut, md5);
    lock_and_begin((uint32_t)cut, md5, OTA_UPDATE_F_GZIP);
    assert_int_equal(feed(gz, cut, 1000, NULL), OTA_OK);
    assert_true(ota_update_complete(&up));
    assert_int_equal(ota_update_finish(&up), OTA_ERR_INFLATE);
    assert_int_equal(fp.finish_calls, 0);
    assert_false(fp.activated);
    ota_update_abort(&up, 7, OTA_ERR_INFLATE);
    assert_null(fp.zstream);
    assert_int_equal(fp.abort_calls, 1);
    assert_int_equal(count_state(OTA_STATE_ERROR), 1);
    assert_int_equal(count_state(OTA_STATE_COMPLETED), 0);
    free(img);
    free(gz);
}

static void test_bytes_after_gzip_end(void **state)
{
    (void)state;
    uint8_t *img = compressible(30000);
    size_t gz_n;
    uint8_t *gz = gzip_of(img, 30000, &gz_n);
    uint8_t *wire = malloc(gz_n + 16);
    memcpy(wire, gz, gz_n);
    memset(wire + gz_n, 0x77, 16);
    /* in the same chunk as the end */
    lock_and_begin((uint32_t)gz_n + 16, NULL, OTA_UPDATE_F_GZIP);
    assert_int_equal(feed(wire, gz_n + 16, gz_n + 16, NULL), OTA_ERR_INFLATE);
    ota_update_abort(&up, 7, OTA_ERR_INFLATE);
    assert_false(fp.activated);
    teardown(NULL);

    /* in a later chunk */
    setup_pipeline(true, true);
    lock_and_begin((uint32_t)gz_n + 16, NULL, OTA_UPDATE_F_GZIP);
    assert_int_equal(feed(wire, gz_n, gz_n, NULL), OTA_OK);
    assert_int_equal(ota_update_write(&up, wire + gz_n, 16), 16);
    assert_int_equal(ota_update_pump(&up), OTA_ERR_INFLATE);
    ota_update_abort(&up, 7, OTA_ERR_INFLATE);
    assert_false(fp.activated);
    assert_int_equal(fp.finish_calls, 0);
    free(img);
    free(gz);
    free(wire);
}

/* ------------------------------------------------------------ store faults */

static void test_store_would_block_every_other(void **state)
{
    (void)state;
    const size_t n = 123457;
    uint8_t *img = pattern(n, 9);
    uint8_t md5[16];
    md5_of(img, n, md5);
    fp.write_would_block_every_other = true;
    lock_and_begin((uint32_t)n, md5, 0);
    int blocks = 0;
    assert_int_equal(feed(img, n, 3000, &blocks), OTA_OK);
    assert_true(blocks >= 10);
    assert_int_equal(ota_update_finish(&up), OTA_OK);
    assert_int_equal(fp.slot_high, n);
    assert_memory_equal(fp.slot, img, n); /* nothing lost, nothing twice */
    check_success_states((uint32_t)n, true);
    teardown(NULL);

    /* the same with gzip: the inflated output waits for the store */
    setup_pipeline(true, true);
    uint8_t *big = compressible(n);
    size_t gz_n;
    uint8_t *gz = gzip_of(big, n, &gz_n);
    fp.write_would_block_every_other = true;
    lock_and_begin((uint32_t)gz_n, NULL, OTA_UPDATE_F_GZIP);
    blocks = 0;
    assert_int_equal(feed(gz, gz_n, 1500, &blocks), OTA_OK);
    assert_true(blocks >= (int)(n / sizeof up.out)); /* one per output buffer written */
    assert_int_equal(ota_update_finish(&up), OTA_OK);
    assert_int_equal(fp.slot_high, n);
    assert_memory_equal(fp.slot, big, n);
    free(img);
    free(big);
    free(gz);
}

/* While the store blocks, pump keeps answering WOULD_BLOCK and nothing moves. */
static void test_pump_would_block_keeps_bytes(void **state)
{
    (void)state;
    const size_t buf = sizeof up.data, n = buf + 904;
    uint8_t *img = pattern(n, 10);
    fp.write_would_block_every_other = true;
    lock_and_begin((uint32_t)n, NULL, 0);
    assert_int_equal(ota_update_write(&up, img, 3000), 3000);
    assert_int_equal(ota_update_pump(&up), OTA_ERR_WOULD_BLOCK);
    assert_int_equal(fp.slot_high, 0);
    assert_false(ota_update_complete(&up));
    /* more bytes may go behind the waiting ones, up to the buffer's end */
    assert_int_equal(ota_update_write(&up, img + 3000, buf - 3000 + 1000), (int)(buf - 3000));
    assert_int_equal(ota_update_write(&up, img + buf, 904), 0);
    assert_int_equal(ota_update_pump(&up), OTA_OK);
    assert_int_equal(fp.slot_high, buf);
    assert_int_equal(ota_update_write(&up, img + buf, 904), 904);
    assert_int_equal(ota_update_pump(&up), OTA_ERR_WOULD_BLOCK);
    assert_int_equal(fp.slot_high, buf);
    assert_int_equal(ota_update_pump(&up), OTA_OK);
    assert_true(ota_update_complete(&up));
    assert_int_equal(ota_update_finish(&up), OTA_OK);
    assert_int_equal(fp.slot_high, n);
    assert_memory_equal(fp.slot, img, n);
    free(img);
}

static void test_write_failure(void **state)
{
    (void)state;
    uint8_t *img = pattern(20000, 11);
    fp.fail_write_at = 3;
    lock_and_begin(20000, NULL, 0);
    assert_int_equal(feed(img, 20000, 4096, NULL), OTA_ERR_WRITE);
    assert_int_equal(fp.write_calls, 3);
    assert_false(ota_update_complete(&up));
    assert_int_equal(ota_update_finish(&up), OTA_ERR_INVALID_ARG);
    ota_update_abort(&up, 7, OTA_ERR_WRITE);
    assert_int_equal(fp.abort_calls, 1);
    assert_int_equal(fp.finish_calls, 0);
    assert_false(fp.activated);
    assert_int_equal(count_state(OTA_STATE_ERROR), 1);
    assert_int_equal(rec.err[rec.n - 1], OTA_ERR_WRITE);

    /* an image inflated beyond the store: the store's NO_SPACE comes back */
    teardown(NULL);
    fake_init(&fp, 50000);
    fake_tables(&fp, FAKE_INFLATE | FAKE_ARDUINO);
    memset(&rec, 0, sizeof rec);
    assert_int_equal(ota_update_setup(&up, &fp.t.slot, NULL, &fp.t.crypto, &fp.t.inflate,
                                      on_state, &rec),
                     OTA_OK);
    uint8_t *big = compressible(200000);
    size_t gz_n;
    uint8_t *gz = gzip_of(big, 200000, &gz_n);
    lock_and_begin((uint32_t)gz_n, NULL, OTA_UPDATE_F_GZIP);
    assert_int_equal(feed(gz, gz_n, 1000, NULL), OTA_ERR_NO_SPACE);
    ota_update_abort(&up, 7, OTA_ERR_NO_SPACE);
    assert_false(fp.activated);
    assert_null(fp.zstream);
    free(img);
    free(big);
    free(gz);
}

static void finish_failure(int fail_finish, int fail_activate, int want)
{
    setup_pipeline(true, true);
    uint8_t *img = pattern(9000, 12);
    fp.fail_finish = fail_finish;
    fp.fail_activate = fail_activate;
    lock_and_begin(9000, NULL, 0);
    assert_int_equal(feed(img, 9000, 4096, NULL), OTA_OK);
    assert_int_equal(ota_update_finish(&up), want);
    assert_int_equal(fp.finish_calls, 1);
    assert_int_equal(fp.activate_calls, fail_activate ? 1 : 0); /* never after a bad finish */
    assert_false(fp.activated);
    assert_int_equal(count_state(OTA_STATE_COMPLETED), 0);
    assert_true(ota_update_held_by(&up, 7));
    ota_update_abort(&up, 7, want);
    assert_int_equal(fp.abort_calls, 1);
    assert_false(fp.activated);
    assert_int_equal(count_state(OTA_STATE_ERROR), 1);
    assert_int_equal(rec.err[rec.n - 1], want);
    /* not activated: the next update may come */
    assert_false(ota_update_busy(&up));
    assert_int_equal(ota_update_lock(&up, 1), OTA_OK);
    free(img);
    teardown(NULL);
}

static void test_finish_bad_image_and_activate_errors(void **state)
{
    (void)state;
    finish_failure(OTA_ERR_BAD_IMAGE, 0, OTA_ERR_BAD_IMAGE);
    finish_failure(OTA_ERR_IO, 0, OTA_ERR_WRITE); /* other store errors read as WRITE */
    finish_failure(0, OTA_ERR_ACTIVATE, OTA_ERR_ACTIVATE);
    finish_failure(0, OTA_ERR_IO, OTA_ERR_ACTIVATE);
}

/* ------------------------------------------------------------ data images */

static void test_data_image_goes_to_data_store(void **state)
{
    (void)state;
    const size_t n = 70000;
    uint8_t *img = pattern(n, 13);
    uint8_t md5[16];
    md5_of(img, n, md5);
    lock_and_begin((uint32_t)n, md5, OTA_UPDATE_F_DATA);
    assert_int_equal(feed(img, n, 1024, NULL), OTA_OK);
    assert_false(fp.data_done);
    assert_int_equal(ota_update_finish(&up), OTA_OK);
    assert_true(fp.data_done);
    assert_int_equal(fp.data_high, n);
    assert_memory_equal(fp.data, img, n);
    /* the firmware slot was never touched, nor activated */
    assert_int_equal(fp.begin_calls, 0);
    assert_int_equal(fp.write_calls, 0);
    assert_int_equal(fp.finish_calls, 0);
    assert_int_equal(fp.activate_calls, 0);
    assert_false(fp.activated);
    check_success_states((uint32_t)n, true);
    assert_true(ota_update_busy(&up)); /* the reboot follows */
    teardown(NULL);

    /* a gzip data image is inflated into the data store */
    setup_pipeline(true, true);
    uint8_t *big = compressible(n);
    size_t gz_n;
    uint8_t *gz = gzip_of(big, n, &gz_n);
    lock_and_begin((uint32_t)gz_n, NULL, OTA_UPDATE_F_DATA | OTA_UPDATE_F_GZIP);
    assert_int_equal(feed(gz, gz_n, 1024, NULL), OTA_OK);
    assert_int_equal(ota_update_finish(&up), OTA_OK);
    assert_true(fp.data_done);
    assert_int_equal(fp.data_high, n);
    assert_memory_equal(fp.data, big, n);
    assert_int_equal(fp.begin_calls, 0);
    assert_false(fp.activated);
    teardown(NULL);

    /* a failed data image is discarded in the data store, not the slot */
    setup_pipeline(true, true);
    md5[0] ^= 1;
    lock_and_begin((uint32_t)n, md5, OTA_UPDATE_F_DATA);
    assert_int_equal(feed(img, n, 1024, NULL), OTA_OK);
    assert_int_equal(ota_update_finish(&up), OTA_ERR_MD5_MISMATCH);
    assert_false(fp.data_done);
    ota_update_abort(&up, 7, OTA_ERR_MD5_MISMATCH);
    assert_int_equal(fp.data_high, 0); /* the fake's data abort */
    assert_int_equal(fp.abort_calls, 0);
    assert_false(fp.data_done);
    assert_int_equal(count_state(OTA_STATE_ERROR), 1);
    free(img);
    free(big);
    free(gz);
}

static void test_data_flag_without_data_store(void **state)
{
    (void)state;
    assert_false(ota_update_has_data_store(&up));
    assert_int_equal(ota_update_lock(&up, 1), OTA_OK);
    assert_int_equal(ota_update_begin(&up, 100, NULL, OTA_UPDATE_F_DATA), OTA_ERR_INVALID_ARG);
    assert_int_equal(rec.n, 0);
    assert_int_equal(fp.begin_calls, 0);
    /* the same holder may still begin a firmware image */
    uint8_t img[100];
    memset(img, 9, sizeof img);
    assert_int_equal(ota_update_begin(&up, sizeof img, NULL, 0), OTA_OK);
    assert_int_equal(ota_update_write(&up, img, sizeof img), (int)sizeof img);
    assert_int_equal(ota_update_pump(&up), OTA_OK);
    assert_int_equal(ota_update_finish(&up), OTA_OK);
    assert_memory_equal(fp.slot, img, sizeof img);
    assert_true(fp.activated);
}

static int setup_no_data(void **state)
{
    (void)state;
    setup_pipeline(false, true);
    return 0;
}

/* ------------------------------------------------------------ write (copying) */

static void test_write_copies_and_limits(void **state)
{
    (void)state;
    const size_t n = 30000;
    uint8_t *img = pattern(n, 14);
    uint8_t md5[16];
    md5_of(img, n, md5);
    lock_and_begin((uint32_t)n, md5, 0);
    size_t off = 0;
    int calls = 0;
    while (off < n) {
        size_t len = n - off < 5000 ? n - off : 5000;
        int taken = ota_update_write(&up, img + off, len);
        assert_true(taken >= 0);
        assert_true((size_t)taken <= OTA_CFG_DATA_BUF_SIZE);
        if (taken == 0) { /* full: pump first */
            assert_int_equal(ota_update_pump(&up), OTA_OK);
            continue;
        }
        off += (size_t)taken;
        calls++;
        if (calls % 2 == 0)
            assert_int_equal(ota_update_pump(&up), OTA_OK);
    }
    assert_int_equal(ota_update_pump(&up), OTA_OK);
    /* nothing beyond the announced size is taken */
    assert_int_equal(ota_update_write(&up, img, 10), 0);
    assert_int_equal(ota_update_write(&up, img, 0), 0);
    assert_true(ota_update_complete(&up));
    assert_int_equal(ota_update_finish(&up), OTA_OK);
    assert_int_equal(fp.slot_high, n);
    assert_memory_equal(fp.slot, img, n);
    check_success_states((uint32_t)n, true);
    free(img);
}

/* ------------------------------------------------------------ progress */

static void test_progress_monotone_last_is_size(void **state)
{
    (void)state;
    static const uint32_t sizes[] = {1, 8191, 8192, 8193, 100000, 2000000 / 2 + 3};
    for (size_t k = 0; k < sizeof sizes / sizeof sizes[0]; k++) {
        setup_pipeline(true, true);
        uint32_t n = sizes[k];
        uint8_t *img = pattern(n, 15 + (unsigned)k);
        lock_and_begin(n, NULL, 0);
        assert_int_equal(feed(img, n, 1 + (n / 37) % 3000, NULL), OTA_OK);
        check_success_states(n, false);
        if (n <= 8192) { /* below one step: a single progress, at the end */
            assert_int_equal(count_state(OTA_STATE_IN_PROGRESS), 1);
        }
        if (n > 100000) /* at least one notification per step of 1% */
            assert_true(count_state(OTA_STATE_IN_PROGRESS) >= 50);
        assert_int_equal(ota_update_finish(&up), OTA_OK);
        check_success_states(n, true);
        assert_memory_equal(fp.slot, img, n);
        free(img);
        teardown(NULL);
    }
}


/* ------------------------------------------------------------ signed images */

#if OTA_CFG_ENABLE_SIGNED
static uint8_t *vector(const char *name, size_t *n)
{
    char path[1024];
    snprintf(path, sizeof path, "%s/%s", OTA_SIGV2_DIR, name);
    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    fseek(f, 0, SEEK_END);
    long len = ftell(f);
    fseek(f, 0, SEEK_SET);
    uint8_t *buf = malloc((size_t)len + 1);
    assert_int_equal(fread(buf, 1, (size_t)len, f), (size_t)len);
    fclose(f);
    *n = (size_t)len;
    return buf;
}

static uint8_t trusted_digest[32];
static ota_sig_trusted_t trusted_key = {.digest = trusted_digest};

static uint32_t min_secure_version; /* the fake boot record's, for the next upload */

/* ------------------------------------------------------------ resume (pull) */

/* Replay the kept bytes (the store hands them out in pieces), counting the calls. */
static int replay_all(int *calls)
{
    int rc;
    *calls = 0;
    while ((rc = ota_update_replay(&up)) == OTA_ERR_WOULD_BLOCK)
        (*calls)++;
    (*calls)++;
    return rc;
}

/* A download cut off after `cut` bytes (synced, suspended) resumes there: the kept
 * bytes are read back through MD5 and SHA-256, the rest arrives, the image is the
 * same and activates; the lock was free in between (a push could have come). */
static void test_resume_after_suspend(void **state)
{
    (void)state;
    const size_t n = 200000, cut = 77777;
    uint8_t *img = pattern(n, 21);
    uint8_t md5[16], sha[32];
    md5_of(img, n, md5);
    assert_int_equal(mbedtls_sha256_ret(img, n, sha, 0), 0);
    lock_and_begin((uint32_t)n, md5, 0);
    assert_int_equal(ota_update_expect_sha256(&up, sha), OTA_OK);
    assert_int_equal(feed(img, cut, 5000, NULL), OTA_OK);
    assert_int_equal(ota_update_sync(&up), (int)cut);
    assert_int_equal(fp.slot_synced, cut);
    ota_update_suspend(&up, 7, OTA_ERR_CLOSED);
    assert_int_equal(fp.abort_calls, 0); /* the bytes stay */
    assert_false(ota_update_busy(&up));

    assert_int_equal(ota_update_lock(&up, OTA_UPDATE_HOLDER_PULL), OTA_OK);
    assert_int_equal(ota_update_resume(&up, (uint32_t)n, (uint32_t)cut, md5), OTA_OK);
    assert_int_equal(ota_update_expect_sha256(&up, sha), OTA_OK);
    uint8_t *buf;
    assert_int_equal(ota_update_room(&up, &buf), 0); /* nothing new before the replay */
    fp.read_limit = 1000;
    int calls;
    assert_int_equal(replay_all(&calls), OTA_OK);
    assert_true(calls >= (int)(cut / 1000));
    assert_int_equal(feed(img + cut, n - cut, 3000, NULL), OTA_OK);
    assert_int_equal(ota_update_finish(&up), OTA_OK);
    assert_true(fp.activated);
    assert_memory_equal(fp.slot, img, n);
    free(img);
}

/* A kept byte that changed while the node was off (or a store that kept garbage)
 * is caught by the digests: nothing activates. So is a wrong announced SHA-256. */
static void test_resume_catches_changed_bytes(void **state)
{
    (void)state;
    const size_t n = 50000, cut = 20000;
    uint8_t *img = pattern(n, 22);
    uint8_t md5[16], sha[32];
    md5_of(img, n, md5);
    assert_int_equal(mbedtls_sha256_ret(img, n, sha, 0), 0);
    lock_and_begin((uint32_t)n, NULL, 0);
    assert_int_equal(feed(img, cut, 4096, NULL), OTA_OK);
    ota_update_suspend(&up, 7, OTA_ERR_CLOSED);
    fp.slot[12345] ^= 1;
    assert_int_equal(ota_update_lock(&up, OTA_UPDATE_HOLDER_PULL), OTA_OK);
    assert_int_equal(ota_update_resume(&up, (uint32_t)n, (uint32_t)cut, NULL), OTA_OK);
    assert_int_equal(ota_update_expect_sha256(&up, sha), OTA_OK);
    int calls;
    assert_int_equal(replay_all(&calls), OTA_OK);
    assert_int_equal(feed(img + cut, n - cut, 4096, NULL), OTA_OK);
    assert_int_equal(ota_update_finish(&up), OTA_ERR_SHA256_MISMATCH);
    assert_false(fp.activated);
    ota_update_abort(&up, OTA_UPDATE_HOLDER_PULL, OTA_ERR_SHA256_MISMATCH);
    assert_int_equal(fp.abort_calls, 1);

    /* fresh, whole, but announced with another SHA-256 */
    sha[0] ^= 0x80;
    lock_and_begin((uint32_t)n, md5, 0);
    assert_int_equal(ota_update_expect_sha256(&up, sha), OTA_OK);
    assert_int_equal(feed(img, n, 4096, NULL), OTA_OK);
    assert_int_equal(ota_update_finish(&up), OTA_ERR_SHA256_MISMATCH);
    assert_false(fp.activated);
    ota_update_abort(&up, 7, OTA_ERR_SHA256_MISMATCH);
    /* too late to announce one: bytes are in */
    lock_and_begin((uint32_t)n, md5, 0);
    assert_int_equal(feed(img, 10, 10, NULL), OTA_OK);
    assert_int_equal(ota_update_expect_sha256(&up, sha), OTA_ERR_INVALID_ARG);
    ota_update_abort(&up, 7, OTA_ERR_CLOSED);
    free(img);
}

/* Resume asks for more than the store kept: begin afresh (NO_SLOT); a store without
 * the hooks cannot resume at all; sync needs the bytes pumped first. */
static void test_resume_refusals(void **state)
{
    (void)state;
    uint8_t *img = pattern(9000, 23);
    lock_and_begin(9000, NULL, 0);
    assert_int_equal(feed(img, 4000, 4000, NULL), OTA_OK);
    ota_update_suspend(&up, 7, OTA_ERR_CLOSED);
    assert_int_equal(ota_update_lock(&up, OTA_UPDATE_HOLDER_PULL), OTA_OK);
    assert_int_equal(ota_update_resume(&up, 9000, 4001, NULL), OTA_ERR_NO_SLOT);
    ota_update_abort(&up, OTA_UPDATE_HOLDER_PULL, OTA_ERR_NO_SLOT);
    assert_int_equal(ota_update_lock(&up, OTA_UPDATE_HOLDER_PULL), OTA_OK);
    assert_int_equal(ota_update_resume(&up, 9000, 9001, NULL), OTA_ERR_INVALID_ARG);
    ota_update_abort(&up, OTA_UPDATE_HOLDER_PULL, OTA_ERR_INVALID_ARG);

    /* sync with bytes still buffered (not pumped) */
    lock_and_begin(9000, NULL, 0);
    uint8_t *buf;
    size_t room = ota_update_room(&up, &buf);
    assert_true(room >= 100);
    memcpy(buf, img, 100);
    assert_int_equal(ota_update_received(&up, 100), OTA_OK);
    assert_int_equal(ota_update_sync(&up), OTA_ERR_WOULD_BLOCK);
    assert_int_equal(ota_update_pump(&up), OTA_OK);
    assert_int_equal(ota_update_sync(&up), 100);
    ota_update_abort(&up, 7, OTA_ERR_CLOSED);

    ota_store_port_t plain = fp.t.slot;
    plain.resume = NULL;
    plain.read = NULL;
    plain.sync = NULL;
    assert_int_equal(ota_update_setup(&up, &plain, NULL, &fp.t.crypto, NULL, NULL, NULL),
                     OTA_OK);
    assert_int_equal(ota_update_lock(&up, OTA_UPDATE_HOLDER_PULL), OTA_OK);
    assert_int_equal(ota_update_resume(&up, 9000, 100, NULL), OTA_ERR_UNSUPPORTED);
    ota_update_abort(&up, OTA_UPDATE_HOLDER_PULL, OTA_ERR_UNSUPPORTED);
    lock_and_begin(9000, NULL, 0);
    assert_int_equal(ota_update_sync(&up), OTA_ERR_UNSUPPORTED);
    ota_update_abort(&up, 7, OTA_ERR_CLOSED);
    free(img);
}

/* One signed upload of img through the pipeline in pieces of piece bytes; the
 * finish's result. */
static int signed_upload(const uint8_t *img, size_t n, size_t piece, unsigned flags)
{
    setup_pipeline(false, true);
    fp.boot.min_secure_version = min_secure_version;
    ota_update_check_secure_version(&up, &fp.t.boot);
    size_t dn;
    uint8_t *d = vector("ecdsa_key1.digest.bin", &dn);
    assert_int_equal(dn, 32);
    memcpy(trusted_digest, d, 32);
    free(d);
    assert_int_equal(ota_update_require_signed(&up, &trusted_key, 1), OTA_OK);
    lock_and_begin((uint32_t)n, NULL, flags);
    assert_int_equal(feed(img, n, piece, NULL), OTA_OK);
    int rc = ota_update_finish(&up);
    if (rc != OTA_OK)
        ota_update_abort(&up, 7, rc);
    fake_free(&fp);
    return rc;
}

/* The check streams: whatever the chunking (bytes straddling the 4096-byte tail's
 * wrap, one byte at a time, the whole buffer), raw or gzip, the verdict is the
 * same; a flipped bit anywhere is refused and nothing is activated. */
static void test_signed_image_in_any_chunking(void **state)
{
    (void)state;
    size_t n;
    uint8_t *img = vector("image_ecdsa.bin", &n);
    static const size_t pieces[] = {1, 7, 1000, 4095, 4096, 4097, 65536, 1u << 20};
    for (size_t i = 0; i < sizeof pieces / sizeof pieces[0]; i++)
        assert_int_equal(signed_upload(img, n, pieces[i], 0), OTA_OK);
    size_t gz_n;
    uint8_t *gz = gzip_of(img, n, &gz_n);
    assert_int_equal(signed_upload(gz, gz_n, 333, OTA_UPDATE_F_GZIP), OTA_OK);
    free(gz);
    size_t flips[] = {0, n / 2, n - 4096 - 1, n - 4096 + 40, n - 4096 + 1196, n - 1};
    for (size_t i = 0; i < sizeof flips / sizeof flips[0]; i++) {
        img[flips[i]] ^= 0x10;
        int rc = signed_upload(img, n, 1500, 0);
        /* the last byte lies in the 0xFF rest of the sector, outside every block */
        if (flips[i] == n - 1)
            assert_int_equal(rc, OTA_OK);
        else
            assert_true(rc == OTA_ERR_BAD_SIGNATURE || rc == OTA_ERR_NOT_SIGNED);
        img[flips[i]] ^= 0x10;
    }
    /* another key's image, and one cut short of its sector */
    size_t n2;
    uint8_t *other = vector("image_ecdsa_key2.bin", &n2);
    assert_int_equal(signed_upload(other, n2, 4096, 0), OTA_ERR_UNTRUSTED_KEY);
    free(other);
    assert_int_equal(signed_upload(img, n - 100, 4096, 0), OTA_ERR_NOT_SIGNED);
    assert_int_equal(signed_upload(img, 3000, 4096, 0), OTA_ERR_NOT_SIGNED);
    free(img);
}

/* A signed image resumed halfway: the replayed bytes go through the streaming
 * signature check like the ones that arrive, whatever the cut (before, inside and
 * after the 4096-byte tail's first fill). */
static void test_signed_image_resumed(void **state)
{
    (void)state;
    size_t n;
    uint8_t *img = vector("image_ecdsa.bin", &n);
    const size_t cuts[] = {1, 4095, 4097, n / 2, n - 4096, n - 1};
    for (size_t i = 0; i < sizeof cuts / sizeof cuts[0]; i++) {
        setup_pipeline(false, false);
        size_t dn;
        uint8_t *d = vector("ecdsa_key1.digest.bin", &dn);
        memcpy(trusted_digest, d, 32);
        free(d);
        assert_int_equal(ota_update_require_signed(&up, &trusted_key, 1), OTA_OK);
        lock_and_begin((uint32_t)n, NULL, 0);
        assert_int_equal(feed(img, cuts[i], 999, NULL), OTA_OK);
        ota_update_suspend(&up, 7, OTA_ERR_CLOSED);
        assert_int_equal(ota_update_lock(&up, OTA_UPDATE_HOLDER_PULL), OTA_OK);
        assert_int_equal(ota_update_resume(&up, (uint32_t)n, (uint32_t)cuts[i], NULL), OTA_OK);
        int calls;
        assert_int_equal(replay_all(&calls), OTA_OK);
        assert_int_equal(feed(img + cuts[i], n - cuts[i], 1234, NULL), OTA_OK);
        assert_int_equal(ota_update_finish(&up), OTA_OK);
        assert_true(fp.activated);
        fake_free(&fp);
    }
    free(img);
}

/* Anti-rollback counts only a descriptor inside the signed bytes: one planted in the
 * unsigned parts of the sector (an absent block) must not lift an old image over the
 * node's minimum (found in review). */
static void test_descriptor_in_the_sector_does_not_count(void **state)
{
    (void)state;
    size_t n;
    uint8_t *img = vector("image_ecdsa.bin", &n); /* signed, no descriptor */
    min_secure_version = 5;
    assert_int_equal(signed_upload(img, n, 4096, 0), OTA_ERR_ROLLBACK);
    static const uint8_t fake[] = {0x32, 0x54, 0xcd, 0xab, 0xff, 0xff, 0xff, 0x7f, 0, 0, 0, 0,
                                   0, 0, 0, 0, 'e', 'v', 'i', 'l', 0};
    uint8_t *sector = img + n - 4096;
    memset(sector + 1216, 0, 256);
    memcpy(sector + 1216, fake, sizeof fake); /* where block 1 would be */
    assert_int_equal(signed_upload(img, n, 4096, 0), OTA_ERR_ROLLBACK);
    size_t gz_n;
    uint8_t *gz = gzip_of(img, n, &gz_n);
    assert_int_equal(signed_upload(gz, gz_n, 777, OTA_UPDATE_F_GZIP), OTA_ERR_ROLLBACK);
    free(gz);
    min_secure_version = 0;
    assert_int_equal(signed_upload(img, n, 4096, 0), OTA_OK); /* no minimum: fine */
    free(img);
}
#endif

/* The streamed descriptor scanner (it skips ahead over bytes that cannot start the magic
 * word, and over everything once it holds the descriptor) finds what the whole-buffer
 * search finds, in any chunking, past decoys: the magic at an unaligned offset, and
 * an aligned one that is not a plausible descriptor. */
static void put_magic(uint8_t *p)
{
    for (unsigned k = 0; k < 4; k++)
        p[k] = (uint8_t)(OTA_APP_DESC_MAGIC >> (8 * k));
}

static void test_descriptor_scan_matches_find_in_any_chunking(void **state)
{
    (void)state;
    static uint8_t img[20000];
    for (size_t i = 0; i < sizeof img; i++)
        img[i] = (uint8_t)(i * 131u + 7u); /* no zero runs: no chance descriptor */
    put_magic(img + 1001);                  /* unaligned: never a match */
    put_magic(img + 2000);                  /* aligned, but reserv1 is not zero */
    put_magic(img + 2003 + 1);              /* aligned again, overlapping the head kept */
    size_t at = 12000;
    put_magic(img + at);
    img[at + 4] = 42; /* secure version 42 */
    img[at + 5] = img[at + 6] = img[at + 7] = 0;
    memset(img + at + 8, 0, OTA_APP_DESC_OFF_VERSION - 8);
    memset(img + at + OTA_APP_DESC_OFF_VERSION, 0, OTA_APP_DESC_VERSION_LEN);
    memcpy(img + at + OTA_APP_DESC_OFF_VERSION, "1.2.3", 5);
    assert_int_equal(ota_app_desc_find(img, sizeof img), (long)at);
    const size_t pieces[] = {1, 2, 3, 5, 7, 64, 255, 4096, sizeof img};
    for (size_t k = 0; k < sizeof pieces / sizeof pieces[0]; k++) {
        ota_app_desc_scan_t sc;
        ota_app_desc_scan_init(&sc);
        for (size_t off = 0; off < sizeof img; off += pieces[k])
            ota_app_desc_scan_feed(&sc, img + off,
                                   sizeof img - off < pieces[k] ? sizeof img - off : pieces[k]);
        uint32_t sv = 0;
        char version[OTA_APP_DESC_VERSION_LEN];
        assert_true(ota_app_desc_scan_result(&sc, &sv, version));
        assert_int_equal(sc.offset, at);
        assert_int_equal(sc.pos, sizeof img);
        assert_int_equal(sv, 42);
        assert_string_equal(version, "1.2.3");
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_setup_argument_checks),
        cmocka_unit_test_setup_teardown(test_lock_semantics, setup_all, teardown),
        cmocka_unit_test_setup_teardown(test_lock_after_failure_starts_fresh, setup_all, teardown),
        cmocka_unit_test_setup_teardown(test_begin_would_block_then_retry, setup_all, teardown),
        cmocka_unit_test_setup_teardown(test_begin_store_error_is_returned, setup_all, teardown),
        cmocka_unit_test_setup_teardown(test_crypto_failures, setup_all, teardown),
        cmocka_unit_test_setup_teardown(test_raw_image_md5_at_begin, setup_all, teardown),
        cmocka_unit_test_setup_teardown(test_resume_after_suspend, setup_all, teardown),
        cmocka_unit_test_setup_teardown(test_resume_catches_changed_bytes, setup_all, teardown),
        cmocka_unit_test_setup_teardown(test_resume_refusals, setup_all, teardown),
        cmocka_unit_test_setup_teardown(test_raw_image_md5_via_expect, setup_all, teardown),
        cmocka_unit_test_setup_teardown(test_raw_image_without_md5, setup_all, teardown),
        cmocka_unit_test_setup_teardown(test_md5_mismatch_never_activates, setup_all, teardown),
        cmocka_unit_test_setup_teardown(test_gzip_inflated_into_slot, setup_all, teardown),
        cmocka_unit_test_setup_teardown(test_gzip_highly_compressible, setup_all, teardown),
        cmocka_unit_test_setup_teardown(test_gzip_flag_with_raw_bytes_stored_raw, setup_all,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_gzip_bytes_without_flag_or_inflater_stored_raw,
                                        setup_all, teardown),
        cmocka_unit_test_setup_teardown(test_corrupt_gzip, setup_all, teardown),
        cmocka_unit_test_setup_teardown(test_inflater_cannot_start, setup_all, teardown),
        cmocka_unit_test_setup_teardown(test_gzip_ended_early, setup_all, teardown),
        cmocka_unit_test_setup_teardown(test_bytes_after_gzip_end, setup_all, teardown),
        cmocka_unit_test_setup_teardown(test_store_would_block_every_other, setup_all, teardown),
        cmocka_unit_test_setup_teardown(test_pump_would_block_keeps_bytes, setup_all, teardown),
        cmocka_unit_test_setup_teardown(test_write_failure, setup_all, teardown),
        cmocka_unit_test(test_finish_bad_image_and_activate_errors),
        cmocka_unit_test_setup_teardown(test_data_image_goes_to_data_store, setup_all, teardown),
        cmocka_unit_test_setup_teardown(test_data_flag_without_data_store, setup_no_data,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_write_copies_and_limits, setup_all, teardown),
        cmocka_unit_test(test_progress_monotone_last_is_size),
#if OTA_CFG_ENABLE_SIGNED
        cmocka_unit_test(test_signed_image_in_any_chunking),
        cmocka_unit_test(test_signed_image_resumed),
        cmocka_unit_test(test_descriptor_in_the_sector_does_not_count),
        cmocka_unit_test(test_descriptor_scan_matches_find_in_any_chunking),
#endif
    };
    return cmocka_run_group_tests_name("update", tests, NULL, NULL);
}
