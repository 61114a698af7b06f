/*
 * test_port_inflate.c - gzip inflation of the POSIX port (src/port/posix/inflate_zlib.c):
 * whole streams fed in every piece size, tiny output buffers, the gzip trailer
 * (CRC-32 and length) checked, corrupt and raw-deflate streams refused, and
 * begin/end in any order without leaks (run under ASan).
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

#include "ota/errors.h"
#include "ota_posix.h"

/* the port's inflate functions only use ctx->zstream: a zeroed context is enough */
static ota_posix_t ctx;

static uint8_t *gzip(const uint8_t *in, size_t len, size_t *out_len, int window_bits)
{
    z_stream z;
    memset(&z, 0, sizeof z);
    assert_int_equal(deflateInit2(&z, 6, Z_DEFLATED, window_bits, 8, Z_DEFAULT_STRATEGY), Z_OK);
    size_t cap = deflateBound(&z, (uLong)len) + 64;
    uint8_t *out = malloc(cap);
    assert_non_null(out);
    z.next_in = (Bytef *)(uintptr_t)in;
    z.avail_in = (uInt)len;
    z.next_out = out;
    z.avail_out = (uInt)cap;
    assert_int_equal(deflate(&z, Z_FINISH), Z_STREAM_END);
    *out_len = cap - z.avail_out;
    deflateEnd(&z);
    return out;
}

static uint8_t *sample(size_t len)
{
    uint8_t *d = malloc(len);
    assert_non_null(d);
    uint32_t x = 12345;
    for (size_t i = 0; i < len; i++) {
        x = x * 1103515245u + 12345u;
        d[i] = (uint8_t)((i % 7 == 0) ? (x >> 24) : (uint8_t)(i / 13)); /* compressible */
    }
    return d;
}

/* Inflate gz in pieces of `piece` bytes into out buffers of `out_step` bytes.
 * \return the port's last return code; *made = bytes produced, *done as reported. */
static int inflate_all(const uint8_t *gz, size_t gz_len, size_t piece, size_t out_step,
                       uint8_t *out, size_t out_cap, size_t *made, bool *done)
{
    assert_int_equal(ota_posix_inflate_begin(&ctx), OTA_OK);
    size_t off = 0;
    *made = 0;
    *done = false;
    int rc = OTA_OK;
    while (!*done) {
        size_t in_len = gz_len - off < piece ? gz_len - off : piece;
        size_t used = 0, produced = 0;
        size_t room = out_cap - *made < out_step ? out_cap - *made : out_step;
        rc = ota_posix_inflate_run(&ctx, gz + off, in_len, &used, out + *made, room, &produced,
                                   done);
        if (rc != OTA_OK)
            break;
        off += used;
        *made += produced;
        if (used == 0 && produced == 0 && !*done && (off == gz_len || room == 0))
            break; /* needs input we do not have, or room we do not give */
    }
    ota_posix_inflate_end(&ctx);
    return rc;
}

static void test_round_trip_in_every_piece_size(void **state)
{
    (void)state;
    const size_t len = 100000;
    uint8_t *data = sample(len);
    size_t gz_len;
    uint8_t *gz = gzip(data, len, &gz_len, 15 + 16);
    assert_true(gz_len < len);
    uint8_t *out = malloc(len + 16);
    assert_non_null(out);
    const size_t pieces[] = {1, 2, 3, 7, 100, 1460, 8192, 65536, 1 << 20};
    const size_t steps[] = {1, 4096, 8192, 1 << 20};
    for (size_t i = 0; i < sizeof pieces / sizeof pieces[0]; i++) {
        for (size_t j = 0; j < sizeof steps / sizeof steps[0]; j++) {
            if (pieces[i] == 1 && steps[j] == 1)
                continue; /* slow and proves nothing more */
            size_t made;
            bool done;
            memset(out, 0, len + 16);
            int rc = inflate_all(gz, gz_len, pieces[i], steps[j], out, len + 16, &made, &done);
            assert_int_equal(rc, OTA_OK);
            assert_true(done);
            assert_int_equal(made, len);
            assert_memory_equal(out, data, len);
        }
    }
    free(out);
    free(gz);
    free(data);
}

static void test_empty_image(void **state)
{
    (void)state;
    size_t gz_len, made;
    bool done;
    uint8_t *gz = gzip((const uint8_t *)"", 0, &gz_len, 15 + 16);
    uint8_t out[16];
    assert_int_equal(inflate_all(gz, gz_len, 5, sizeof out, out, sizeof out, &made, &done),
                     OTA_OK);
    assert_true(done);
    assert_int_equal(made, 0);
    free(gz);
}

static void test_damage_is_refused(void **state)
{
    (void)state;
    const size_t len = 50000;
    uint8_t *data = sample(len);
    size_t gz_len, made;
    bool done;
    uint8_t *gz = gzip(data, len, &gz_len, 15 + 16);
    uint8_t *out = malloc(len + 16);
    assert_non_null(out);

    /* wrong CRC-32 in the trailer */
    gz[gz_len - 8] ^= 0x01;
    assert_int_equal(inflate_all(gz, gz_len, 8192, 8192, out, len + 16, &made, &done),
                     OTA_ERR_INFLATE);
    assert_false(done);
    gz[gz_len - 8] ^= 0x01;
    /* wrong length in the trailer */
    gz[gz_len - 1] ^= 0x01;
    assert_int_equal(inflate_all(gz, gz_len, 8192, 8192, out, len + 16, &made, &done),
                     OTA_ERR_INFLATE);
    gz[gz_len - 1] ^= 0x01;
    /* not gzip at all */
    gz[0] = 0x00;
    assert_int_equal(inflate_all(gz, gz_len, 8192, 8192, out, len + 16, &made, &done),
                     OTA_ERR_INFLATE);
    free(gz);

    /* zlib-wrapped and raw deflate streams are not RFC 1952 gzip */
    gz = gzip(data, len, &gz_len, 15);
    assert_int_equal(inflate_all(gz, gz_len, 8192, 8192, out, len + 16, &made, &done),
                     OTA_ERR_INFLATE);
    free(gz);

    /* a stream cut short never reports done */
    gz = gzip(data, len, &gz_len, 15 + 16);
    assert_int_equal(inflate_all(gz, gz_len - 4, 8192, 8192, out, len + 16, &made, &done),
                     OTA_OK);
    assert_false(done);
    free(gz);
    free(out);
    free(data);
}

static void test_lifecycle(void **state)
{
    (void)state;
    uint8_t out[4];
    size_t used = 1, made = 1;
    bool done = true;
    /* without begin: an error, not a crash */
    assert_int_equal(ota_posix_inflate_run(&ctx, (const uint8_t *)"x", 1, &used, out, 4, &made,
                                           &done),
                     OTA_ERR_INFLATE);
    assert_int_equal(used, 0);
    assert_int_equal(made, 0);
    assert_false(done);
    ota_posix_inflate_end(&ctx);
    /* begin twice (a new upload after a failed one) and end twice: no leak (ASan) */
    assert_int_equal(ota_posix_inflate_begin(&ctx), OTA_OK);
    assert_int_equal(ota_posix_inflate_begin(&ctx), OTA_OK);
    ota_posix_inflate_end(&ctx);
    ota_posix_inflate_end(&ctx);
    assert_null(ctx.zstream);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_round_trip_in_every_piece_size),
        cmocka_unit_test(test_empty_image),
        cmocka_unit_test(test_damage_is_refused),
        cmocka_unit_test(test_lifecycle),
    };
    return cmocka_run_group_tests_name("port_inflate", tests, NULL, NULL);
}
