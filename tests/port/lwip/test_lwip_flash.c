/*
 * test_lwip_flash.c - the flash side of the lwIP port (src/port/lwip/): the NOR
 * flash emulator (bit-setting writes fail loudly, alignment, erase, timing, the
 * power-cut hook), the ESP8266 layouts and the Updater placement, the store table
 * (1 MB: an image that does not fit next to the running one fails in begin before a
 * byte is written; 4 MB: it fits, with lazy one-sector erases), the boot record
 * (alternating sectors, sequence + CRC, a power cut at either step of a store, the
 * anti-rollback floor), the eboot-style copy with a power cut at every flash
 * operation of it, once and twice: the next boot stage always ends with a whole
 * image, the new one, and nothing that is not whole is ever named bootable; and a
 * power cut at every operation of an upload: the old image boots until activate's
 * record write has landed.
 */
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "eboot.h"
#include "ota/errors.h"
#include "ota/protocol.h"
#include "ota_lwip_flash.h"
#include "port_test_util.h"

#define KIB 1024u

typedef struct env {
    char dir[4096];
    char path[4096];
} env_t;

static int env_setup(void **state)
{
    env_t *e = calloc(1, sizeof *e);
    assert_non_null(e);
    tu_mkdtemp(e->dir);
    tu_path(e->path, e->dir, "flash.bin");
    *state = e;
    return 0;
}

static int env_teardown(void **state)
{
    env_t *e = *state;
    tu_rm_rf(e->dir);
    free(e);
    return 0;
}

/* A test image: this machine's ELF header (so finish() takes it), then bytes from a
 * seeded xorshift. */
static uint8_t *make_image(uint32_t len, uint32_t seed)
{
    uint8_t *p = malloc(len);
    assert_non_null(p);
    uint32_t x = seed * 2654435761u + 1u;
    for (uint32_t i = 0; i < len; i++) {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        p[i] = (uint8_t)x;
    }
    int fd = open("/proc/self/exe", O_RDONLY);
    assert_true(fd >= 0);
    uint8_t hdr[64];
    assert_int_equal(read(fd, hdr, sizeof hdr), (ssize_t)sizeof hdr);
    close(fd);
    memcpy(p, hdr, len < sizeof hdr ? len : sizeof hdr);
    return p;
}

static void sha(const uint8_t *p, size_t n, uint8_t out[32])
{
    ota_lwip_sha256_t s;
    ota_lwip_sha256_start(&s);
    ota_lwip_sha256_update(&s, p, n);
    ota_lwip_sha256_finish(&s, out);
}

/* A flash file with layout l and app installed; f is left open. */
static void install(env_t *e, ota_lwip_flash_t *f, const ota_lwip_layout_t *l, const uint8_t *app,
                    uint32_t len)
{
    char err[300];
    assert_int_equal(ota_flash_emu_create(e->path, l->flash_size, err, sizeof err), 0);
    assert_int_equal(ota_lwip_flash_open(f, e->path, err, sizeof err), 0);
    assert_ptr_equal(f->layout, l);
    assert_int_equal(ota_lwip_flash_install(f, app, len, err, sizeof err), 0);
}

/* The whole upload through the store table, in chunks of varying odd sizes, retrying
 * WOULD_BLOCK as the core does. \return the finish() result (activate on 0). */
static int upload(ota_lwip_flash_t *f, const uint8_t *img, uint32_t len, unsigned *would_block)
{
    const ota_store_port_t *s = ota_lwip_flash_slot(f);
    int rc;
    *would_block = 0;
    while ((rc = s->begin(s->ctx, len)) == OTA_ERR_WOULD_BLOCK)
        (*would_block)++;
    if (rc != OTA_OK)
        return rc;
    static const uint32_t steps[] = {1, 3, 1460, 5, 4096, 7, 2920, 8192, 2, 999};
    uint32_t off = 0;
    for (unsigned i = 0; off < len; i++) {
        uint32_t n = steps[i % (sizeof steps / sizeof steps[0])];
        if (n > len - off)
            n = len - off;
        rc = s->write(s->ctx, off, img + off, n);
        if (rc == OTA_ERR_WOULD_BLOCK) {
            (*would_block)++;
            continue; /* the same bytes again */
        }
        if (rc != OTA_OK)
            return rc;
        off += n;
    }
    rc = s->finish(s->ctx, len);
    if (rc != OTA_OK)
        return rc;
    return s->activate(s->ctx);
}

static void assert_app(ota_lwip_flash_t *f, const uint8_t *img, uint32_t len)
{
    uint8_t *got = malloc(len);
    assert_non_null(got);
    assert_int_equal(ota_flash_emu_read(&f->emu, f->layout->app_start, got, len), 0);
    assert_memory_equal(got, img, len);
    free(got);
    ota_lwip_record_t rec;
    assert_int_equal(ota_lwip_record_load(f, &rec), 0);
    uint8_t want[32];
    sha(img, len, want);
    assert_int_equal(rec.app_size, len);
    assert_memory_equal(rec.app_sha256, want, 32);
}

/* ---------------------------------------------------------------- sha256 / crc */

static void test_hashes(void **state)
{
    (void)state;
    /* FIPS 180-2 appendix B vectors, and the CRC-32 check value */
    uint8_t out[32];
    static const uint8_t abc[32] = {0xba, 0x78, 0x16, 0xbf, 0x8f, 0x01, 0xcf, 0xea, 0x41, 0x41, 0x40,
                                    0xde, 0x5d, 0xae, 0x22, 0x23, 0xb0, 0x03, 0x61, 0xa3, 0x96, 0x17,
                                    0x7a, 0x9c, 0xb4, 0x10, 0xff, 0x61, 0xf2, 0x00, 0x15, 0xad};
    sha((const uint8_t *)"abc", 3, out);
    assert_memory_equal(out, abc, 32);
    static const uint8_t two[32] = {0x24, 0x8d, 0x6a, 0x61, 0xd2, 0x06, 0x38, 0xb8, 0xe5, 0xc0, 0x26,
                                    0x93, 0x0c, 0x3e, 0x60, 0x39, 0xa3, 0x3c, 0xe4, 0x59, 0x64, 0xff,
                                    0x21, 0x67, 0xf6, 0xec, 0xed, 0xd4, 0x19, 0xdb, 0x06, 0xc1};
    const char *m = "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq";
    sha((const uint8_t *)m, strlen(m), out);
    assert_memory_equal(out, two, 32);
    /* split updates give the same digest */
    ota_lwip_sha256_t s;
    ota_lwip_sha256_start(&s);
    for (size_t i = 0; m[i] != '\0'; i++)
        ota_lwip_sha256_update(&s, m + i, 1);
    ota_lwip_sha256_finish(&s, out);
    assert_memory_equal(out, two, 32);
    assert_int_equal(ota_lwip_crc32(0, "123456789", 9), 0xCBF43926u);
}

/* ---------------------------------------------------------------- the emulator */

static void test_emu_nor_rules(void **state)
{
    env_t *e = *state;
    char err[300];
    ota_flash_emu_t f;
    assert_int_equal(ota_flash_emu_create(e->path, 4 * OTA_FLASH_EMU_SECTOR, err, sizeof err), 0);
    assert_int_equal(ota_flash_emu_open(&f, e->path, err, sizeof err), 0);
    assert_int_equal(f.size, 4 * OTA_FLASH_EMU_SECTOR);
    uint8_t buf[16];
    assert_int_equal(ota_flash_emu_read(&f, 100, buf, sizeof buf), 0);
    for (size_t i = 0; i < sizeof buf; i++)
        assert_int_equal(buf[i], 0xFF); /* a new chip is erased */

    /* clearing bits works, also twice over the same word */
    const uint8_t a[4] = {0xF0, 0x0F, 0xAA, 0x55};
    assert_int_equal(ota_flash_emu_write(&f, 8, a, 4), 0);
    const uint8_t b[4] = {0x30, 0x0F, 0x0A, 0x00}; /* a subset of a's bits */
    assert_int_equal(ota_flash_emu_write(&f, 8, b, 4), 0);
    assert_int_equal(ota_flash_emu_read(&f, 8, buf, 4), 0);
    assert_memory_equal(buf, b, 4);
    assert_int_equal(f.bytes_written, 8);

    /* setting a bit fails, loudly, and changes nothing */
    const uint8_t c[4] = {0x30, 0x0F, 0x0A, 0x01};
    assert_int_equal(ota_flash_emu_write(&f, 8, c, 4), -1);
    assert_non_null(strstr(ota_flash_emu_error(&f), "would set bits"));
    assert_non_null(strstr(ota_flash_emu_error(&f), "0x00000b"));
    assert_int_equal(f.refused, 1);
    assert_int_equal(ota_flash_emu_read(&f, 8, buf, 4), 0);
    assert_memory_equal(buf, b, 4);
    /* also when the offending byte is deep inside a long write: nothing lands */
    uint8_t big[2048];
    memset(big, 0x00, sizeof big);
    big[2047] = 0xFF;
    assert_int_equal(ota_flash_emu_write(&f, 4096, big, sizeof big), 0);
    memset(big, 0x00, sizeof big);
    assert_int_equal(ota_flash_emu_write(&f, 4096 - 1024, big, sizeof big), 0); /* ok: clears */
    uint8_t bad[2048];
    memset(bad, 0x00, sizeof bad);
    bad[1500] = 0x80; /* 4096 - 1024 + 1500 is a 0 byte now */
    uint8_t before[2048];
    assert_int_equal(ota_flash_emu_read(&f, 4096 - 1024, before, sizeof before), 0);
    assert_int_equal(ota_flash_emu_write(&f, 4096 - 1024, bad, sizeof bad), -1);
    assert_int_equal(ota_flash_emu_read(&f, 4096 - 1024, big, sizeof big), 0);
    assert_memory_equal(big, before, sizeof big);

    /* after an erase the same write works */
    assert_int_equal(ota_flash_emu_erase(&f, 0), 0);
    assert_int_equal(f.erases, 1);
    assert_int_equal(ota_flash_emu_read(&f, 8, buf, 4), 0);
    assert_memory_equal(buf, "\xFF\xFF\xFF\xFF", 4);
    assert_int_equal(ota_flash_emu_write(&f, 8, c, 4), 0);
    /* the erase was of sector 0 only */
    assert_int_equal(ota_flash_emu_read(&f, 4096, buf, 4), 0);
    assert_memory_equal(buf, "\0\0\0\0", 4);
    ota_flash_emu_close(&f);
}

static void test_emu_alignment(void **state)
{
    env_t *e = *state;
    char err[300];
    ota_flash_emu_t f;
    assert_int_equal(ota_flash_emu_create(e->path, 2 * OTA_FLASH_EMU_SECTOR, err, sizeof err), 0);
    assert_int_equal(ota_flash_emu_open(&f, e->path, err, sizeof err), 0);
    const uint8_t w[8] = {0};
    assert_int_equal(ota_flash_emu_write(&f, 2, w, 4), -1); /* offset */
    assert_non_null(strstr(ota_flash_emu_error(&f), "multiples of 4"));
    assert_int_equal(ota_flash_emu_write(&f, 4, w, 3), -1); /* length */
    assert_int_equal(ota_flash_emu_write(&f, 8192 - 4, w, 8), -1); /* past the end */
    assert_int_equal(ota_flash_emu_write(&f, 8192, w, 4), -1);
    assert_int_equal(ota_flash_emu_erase(&f, 100), -1);  /* not a sector start */
    assert_int_equal(ota_flash_emu_erase(&f, 8192), -1); /* no such sector */
    assert_int_equal(f.refused, 6);
    uint8_t r[4];
    assert_int_equal(ota_flash_emu_read(&f, 8190, r, 4), -1);
    assert_int_equal(ota_flash_emu_read(&f, 3, r, 1), 0); /* reads have no alignment */
    assert_int_equal(f.bytes_written, 0);
    assert_int_equal(ota_flash_emu_write(&f, 8192 - 4, w, 4), 0);
    ota_flash_emu_close(&f);
    /* a file that is no chip */
    tu_write(e->path, "abc", 3, 0600);
    assert_int_equal(ota_flash_emu_open(&f, e->path, err, sizeof err), -1);
    assert_non_null(strstr(err, "no flash chip size"));
    assert_int_equal(ota_flash_emu_create(e->path, 1000, err, sizeof err), -1);
}

static uint64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static void test_emu_timing_and_cut(void **state)
{
    env_t *e = *state;
    char err[300];
    ota_flash_emu_t f;
    assert_int_equal(ota_flash_emu_create(e->path, 4 * OTA_FLASH_EMU_SECTOR, err, sizeof err), 0);
    assert_int_equal(ota_flash_emu_open(&f, e->path, err, sizeof err), 0);
    ota_flash_emu_set_timing(&f, 30, 2000);
    uint64_t t0 = mono_ms();
    assert_int_equal(ota_flash_emu_erase(&f, 0), 0);
    assert_true(mono_ms() - t0 >= 30);
    uint8_t z[4096];
    memset(z, 0, sizeof z);
    t0 = mono_ms();
    assert_int_equal(ota_flash_emu_write(&f, 0, z, sizeof z), 0); /* 4 KiB at 2 ms/KiB */
    assert_true(mono_ms() - t0 >= 8);
    ota_flash_emu_set_timing(&f, 0, 0);

    /* the cut: the 2nd op from now is torn, later ones fail */
    memset(z, 0x11, sizeof z);
    ota_flash_emu_cut_after(&f, 2);
    assert_int_equal(ota_flash_emu_write(&f, 4096, z, 64), 0);
    assert_int_equal(ota_flash_emu_erase(&f, 0), -1); /* torn: half the sector */
    assert_true(f.power_lost);
    uint8_t r[4];
    assert_int_equal(ota_flash_emu_read(&f, 0, r, 4), -1);
    assert_int_equal(ota_flash_emu_write(&f, 8192, z, 4), -1);
    ota_flash_emu_close(&f);
    assert_int_equal(ota_flash_emu_open(&f, e->path, err, sizeof err), 0); /* the next boot */
    uint8_t *all;
    size_t n;
    all = tu_read(e->path, &n);
    for (size_t i = 0; i < 2048; i++)
        assert_int_equal(all[i], 0xFF); /* erased half */
    for (size_t i = 2048; i < 4096; i++)
        assert_int_equal(all[i], 0x00); /* the rest as it was */
    assert_int_equal(all[4096], 0x11);
    assert_int_equal(all[8192], 0xFF); /* the write after the cut never happened */
    free(all);
    /* a torn write lands half its words */
    ota_flash_emu_cut_after(&f, 1);
    assert_int_equal(ota_flash_emu_write(&f, 8192, z, 64), -1);
    all = tu_read(e->path, &n);
    assert_int_equal(all[8192 + 31], 0x11);
    assert_int_equal(all[8192 + 32], 0xFF);
    free(all);
    ota_flash_emu_close(&f);
}

/* ---------------------------------------------------------------- layouts */

static void test_layouts(void **state)
{
    (void)state;
    const ota_lwip_layout_t *m1 = ota_lwip_layout_for_size(1024 * KIB);
    const ota_lwip_layout_t *m4 = ota_lwip_layout_for_size(4096 * KIB);
    assert_non_null(m1);
    assert_non_null(m4);
    assert_null(ota_lwip_layout_for_size(2048 * KIB));
    assert_ptr_equal(ota_lwip_layout_by_name("esp8266-1m"), m1);
    assert_ptr_equal(ota_lwip_layout_by_name("esp8266-4m"), m4);
    assert_null(ota_lwip_layout_by_name("esp32"));
    /* the ESP8266 Arduino .ld offsets */
    assert_int_equal(m1->app_start, 0x1000);
    assert_int_equal(m1->fs_start, 0xEB000);
    assert_int_equal(m1->eeprom, 0xFB000);
    assert_int_equal(m4->fs_start, 0x200000);
    assert_int_equal(m4->eeprom, 0x3FB000);
    /* every region in order, sector aligned, inside the chip */
    const ota_lwip_layout_t *ls[] = {m1, m4};
    for (int i = 0; i < 2; i++) {
        const ota_lwip_layout_t *l = ls[i];
        uint32_t order[] = {l->eboot,      l->app_start,  l->fs_start, l->fs_end,
                            l->bootrec[1], l->eeprom, l->rfcal,    l->sdk, l->flash_size};
        assert_int_equal(l->bootrec[0], l->fs_end);
        assert_int_equal(l->bootrec[1], l->bootrec[0] + 4096);
        assert_int_equal(l->eeprom, l->bootrec[1] + 4096);
        for (size_t k = 0; k + 1 < sizeof order / sizeof order[0]; k++) {
            assert_true(order[k] < order[k + 1]);
            assert_int_equal(order[k] % 4096, 0);
        }
    }
    /* Updater placement: end at FS start, start = end - roundup(size) */
    uint32_t s, en;
    assert_int_equal(ota_lwip_layout_update_area(m1, 300 * KIB, 100 * KIB + 1, &s, &en), OTA_OK);
    assert_int_equal(en, 0xEB000);
    assert_int_equal(s, 0xEB000 - 104 * KIB);
    /* 1 MB: 480 KiB next to 480 KiB does not fit (0xEA000 = 936 KiB for both) */
    assert_int_equal(ota_lwip_layout_update_area(m1, 480 * KIB, 480 * KIB, &s, &en),
                     OTA_ERR_NO_SPACE_LAYOUT);
    assert_int_equal(ota_lwip_layout_max_update(m1, 480 * KIB), 456 * KIB);
    assert_int_equal(ota_lwip_layout_update_area(m1, 480 * KIB, 456 * KIB, &s, &en), OTA_OK);
    assert_int_equal(ota_lwip_layout_update_area(m1, 480 * KIB, 456 * KIB + 1, &s, &en),
                     OTA_ERR_NO_SPACE_LAYOUT);
    assert_int_equal(ota_lwip_layout_update_area(m4, 480 * KIB, 480 * KIB, &s, &en), OTA_OK);
    /* the Updater's rule alone: 700 + 300 KiB exceed the 936 KiB */
    assert_int_equal(ota_lwip_layout_update_area(m1, 700 * KIB, 300 * KIB, &s, &en),
                     OTA_ERR_NO_SPACE_LAYOUT);
    assert_int_equal(ota_lwip_layout_update_area(m1, 600 * KIB, 300 * KIB, &s, &en), OTA_OK);
    /* the copy's rule alone: 100 + 800 KiB fit side by side, but 800 KiB copied to
     * 0x1000 would overwrite their own source: at most half the region (468 KiB) */
    assert_int_equal(ota_lwip_layout_update_area(m1, 100 * KIB, 800 * KIB, &s, &en),
                     OTA_ERR_NO_SPACE_LAYOUT);
    assert_int_equal(ota_lwip_layout_update_area(m1, 100 * KIB, 468 * KIB, &s, &en), OTA_OK);
    assert_int_equal(ota_lwip_layout_update_area(m1, 100 * KIB, 468 * KIB + 1, &s, &en),
                     OTA_ERR_NO_SPACE_LAYOUT);
    assert_int_equal(ota_lwip_layout_max_update(m1, 100 * KIB), 468 * KIB);
    assert_int_equal(ota_lwip_layout_max_update(m4, 100 * KIB), 1020 * KIB);
    assert_int_equal(ota_lwip_layout_update_area(m4, 480 * KIB, UINT32_MAX, &s, &en),
                     OTA_ERR_NO_SPACE_LAYOUT);
    /* and the wire code the uploader sees for it */
    assert_int_equal(ota_protocol_response_for_error(OTA_ERR_NO_SPACE_LAYOUT),
                     OTA_RESP_ERROR_ESP8266_NOT_ENOUGH_SPACE);
    assert_int_equal(OTA_RESP_ERROR_ESP8266_NOT_ENOUGH_SPACE, 0x88);
}

/* ---------------------------------------------------------------- the store */

static void test_store_1m_no_space_before_any_write(void **state)
{
    env_t *e = *state;
    static ota_lwip_flash_t f;
    const ota_lwip_layout_t *l = ota_lwip_layout_by_name("esp8266-1m");
    uint8_t *old = make_image(480 * KIB, 1);
    uint8_t *img = make_image(480 * KIB, 2);
    install(e, &f, l, old, 480 * KIB);
    size_t n0;
    uint8_t *before = tu_read(e->path, &n0);
    uint64_t erases = f.emu.erases, written = f.emu.bytes_written;
    unsigned wb;
    assert_int_equal(upload(&f, img, 480 * KIB, &wb), OTA_ERR_NO_SPACE_LAYOUT);
    assert_int_equal(wb, 0);
    /* nothing was erased or written: the flash is byte for byte what it was */
    assert_int_equal(f.emu.erases, erases);
    assert_int_equal(f.emu.bytes_written, written);
    size_t n1;
    uint8_t *after = tu_read(e->path, &n1);
    assert_int_equal(n0, n1);
    assert_memory_equal(before, after, n0);
    /* a write without a begun update is refused too */
    const ota_store_port_t *s = ota_lwip_flash_slot(&f);
    s->abort(s->ctx);
    assert_int_equal(s->write(s->ctx, 0, img, 16), OTA_ERR_WRITE);
    /* the largest image that does fit is taken */
    assert_int_equal(upload(&f, img, 456 * KIB, &wb), OTA_OK);
    assert_int_equal(wb, 456 / 4);
    free(before);
    free(after);
    free(old);
    free(img);
    ota_lwip_flash_close(&f);
}

static void test_store_4m_fits_and_boots(void **state)
{
    env_t *e = *state;
    static ota_lwip_flash_t f;
    const ota_lwip_layout_t *l = ota_lwip_layout_by_name("esp8266-4m");
    const uint32_t old_len = 480 * KIB + 13, new_len = 480 * KIB + 1001;
    uint8_t *old = make_image(old_len, 3);
    uint8_t *img = make_image(new_len, 4);
    install(e, &f, l, old, old_len);
    /* everything but the update area stays as it is until activate */
    uint32_t area = l->fs_start - ota_lwip_layout_round(new_len);
    size_t n0;
    uint8_t *before = tu_read(e->path, &n0);
    const ota_store_port_t *s = ota_lwip_flash_slot(&f);
    assert_int_equal(s->begin(s->ctx, new_len), OTA_OK);
    assert_int_equal(f.area_start, area);
    assert_int_equal(f.area_end, l->fs_start);
    uint64_t e0 = f.emu.erases;
    /* one sector erased per call, WOULD_BLOCK in between, nothing written meanwhile */
    assert_int_equal(s->write(s->ctx, 0, img, 4096 + 8), OTA_ERR_WOULD_BLOCK);
    assert_int_equal(f.emu.erases, e0 + 1);
    assert_int_equal(s->write(s->ctx, 0, img, 4096 + 8), OTA_ERR_WOULD_BLOCK);
    assert_int_equal(f.emu.erases, e0 + 2);
    assert_int_equal(f.written, 0);
    assert_int_equal(s->write(s->ctx, 0, img, 4096 + 8), OTA_OK);
    assert_int_equal(f.written, 4096 + 8);
    /* offsets must follow on */
    assert_int_equal(s->write(s->ctx, 5, img + 5, 4), OTA_ERR_WRITE);
    s->abort(s->ctx);
    size_t n1;
    uint8_t *mid = tu_read(e->path, &n1);
    assert_int_equal(n0, n1);
    assert_memory_equal(before, mid, area);                     /* eboot, app, free space */
    assert_memory_equal(before + l->fs_start, mid + l->fs_start, n0 - l->fs_start); /* record */
    free(mid);

    unsigned wb;
    assert_int_equal(upload(&f, img, new_len, &wb), OTA_OK);
    assert_int_equal(wb, ota_lwip_layout_round(new_len) / 4096);
    /* activated: a copy command waits; the application is still the old one */
    ota_lwip_record_t rec;
    assert_int_equal(ota_lwip_record_load(&f, &rec), 0);
    assert_true(rec.copy.pending);
    assert_int_equal(rec.copy.src, area);
    assert_int_equal(rec.copy.dst, l->app_start);
    assert_int_equal(rec.copy.size, new_len);
    assert_true(rec.boot.pending);
    assert_app(&f, old, old_len);
    uint32_t sz;
    uint8_t digest[32], want[32];
    assert_int_equal(ota_lwip_flash_app_info(&f, &sz, digest), 0);
    sha(old, old_len, want);
    assert_int_equal(sz, old_len);
    assert_memory_equal(digest, want, 32);
    /* the boot stage copies it */
    ota_lwip_eboot_result_t res;
    char err[300];
    assert_int_equal(ota_lwip_eboot(&f, &res, err, sizeof err), 0);
    assert_true(res.copied);
    assert_int_equal(res.sectors_copied + res.sectors_skipped, ota_lwip_layout_round(new_len) / 4096);
    assert_app(&f, img, new_len);
    assert_int_equal(ota_lwip_record_load(&f, &rec), 0);
    assert_false(rec.copy.pending);
    assert_true(rec.boot.pending); /* unconfirmed until the core's safe mode confirms it */
    /* a second boot stage has nothing to do */
    assert_int_equal(ota_lwip_eboot(&f, &res, err, sizeof err), 0);
    assert_false(res.copied);
    assert_int_equal(res.app_size, new_len);
    free(before);
    free(old);
    free(img);
    ota_lwip_flash_close(&f);
}

static void test_store_refusals(void **state)
{
    env_t *e = *state;
    static ota_lwip_flash_t f;
    const ota_lwip_layout_t *l = ota_lwip_layout_by_name("esp8266-4m");
    uint8_t *old = make_image(64 * KIB, 5);
    uint8_t *img = make_image(64 * KIB, 6);
    install(e, &f, l, old, 64 * KIB);
    const ota_store_port_t *s = ota_lwip_flash_slot(&f);
    unsigned wb;
    /* not an executable: BAD_IMAGE, and no copy is recorded */
    uint8_t *junk = make_image(20 * KIB, 7);
    memset(junk, 'x', 64);
    assert_int_equal(upload(&f, junk, 20 * KIB, &wb), OTA_ERR_BAD_IMAGE);
    s->abort(s->ctx);
    ota_lwip_record_t rec;
    assert_int_equal(ota_lwip_record_load(&f, &rec), 0);
    assert_false(rec.copy.pending);
    /* past the area (an inflated image outgrowing the wire size): NO_SPACE */
    assert_int_equal(s->begin(s->ctx, 8 * KIB), OTA_OK);
    int rc;
    uint32_t off = 0;
    while (off < 8 * KIB) {
        rc = s->write(s->ctx, off, img + off, 1024);
        if (rc == OTA_OK)
            off += 1024;
        else
            assert_int_equal(rc, OTA_ERR_WOULD_BLOCK);
    }
    assert_int_equal(s->write(s->ctx, off, img + off, 1), OTA_ERR_NO_SPACE);
    /* finish reads back: a bit flipped in flash after the write is caught */
    uint8_t zero[4] = {0, 0, 0, 0};
    assert_int_equal(ota_flash_emu_write(&f.emu, f.area_start + 4096, zero, 4), 0);
    assert_int_equal(s->finish(s->ctx, 8 * KIB), OTA_ERR_WRITE);
    assert_int_equal(s->activate(s->ctx), OTA_ERR_ACTIVATE);
    s->abort(s->ctx);
    s->abort(s->ctx); /* twice is fine */
    /* finish with another size than was written */
    assert_int_equal(s->begin(s->ctx, 8), OTA_OK);
    while ((rc = s->write(s->ctx, 0, img, 6)) == OTA_ERR_WOULD_BLOCK) {
    }
    assert_int_equal(rc, OTA_OK);
    assert_int_equal(s->finish(s->ctx, 8), OTA_ERR_WRITE);
    s->abort(s->ctx);
    /* a blank flash (no boot record): the area cannot be placed */
    ota_lwip_flash_close(&f);
    char err[300];
    assert_int_equal(ota_flash_emu_create(e->path, l->flash_size, err, sizeof err), 0);
    assert_int_equal(ota_lwip_flash_open(&f, e->path, err, sizeof err), 0);
    assert_int_equal(s->begin(s->ctx, 100), OTA_ERR_PREPARE);
    free(old);
    free(img);
    free(junk);
    ota_lwip_flash_close(&f);
}

static void test_store_slow_erase_stays_responsive(void **state)
{
    env_t *e = *state;
    static ota_lwip_flash_t f;
    const ota_lwip_layout_t *l = ota_lwip_layout_by_name("esp8266-1m");
    uint8_t *old = make_image(40 * KIB, 8);
    uint8_t *img = make_image(40 * KIB, 9);
    install(e, &f, l, old, 40 * KIB);
    ota_lwip_flash_set_timing(&f, 25, 0);
    const uint64_t erases = f.emu.erases;
    const ota_store_port_t *s = ota_lwip_flash_slot(&f);
    uint64_t t0 = mono_ms();
    assert_int_equal(s->begin(s->ctx, 40 * KIB), OTA_OK);
    assert_true(mono_ms() - t0 < 25); /* begin erases nothing */
    uint32_t off = 0, longest = 0, calls = 0;
    while (off < 40 * KIB) {
        t0 = mono_ms();
        int rc = s->write(s->ctx, off, img + off, 1460 < 40 * KIB - off ? 1460 : 40 * KIB - off);
        uint32_t took = (uint32_t)(mono_ms() - t0);
        longest = took > longest ? took : longest;
        calls++;
        if (rc == OTA_OK)
            off += 1460 < 40 * KIB - off ? 1460 : 40 * KIB - off;
        else
            assert_int_equal(rc, OTA_ERR_WOULD_BLOCK);
    }
    /* every call took about one erase, far from the 250 ms of all ten: the main loop
     * ran between them (the bound leaves room for a loaded machine) */
    assert_true(longest < 125);
    assert_int_equal(f.emu.erases - erases, 10);
    assert_true(calls >= 10 + (40 * KIB + 1459) / 1460);
    assert_int_equal(s->finish(s->ctx, 40 * KIB), OTA_OK);
    free(old);
    free(img);
    ota_lwip_flash_close(&f);
}

/* ---------------------------------------------------------------- the boot record */

static void test_boot_record(void **state)
{
    env_t *e = *state;
    static ota_lwip_flash_t f;
    const ota_lwip_layout_t *l = ota_lwip_layout_by_name("esp8266-1m");
    char err[300];
    assert_int_equal(ota_flash_emu_create(e->path, l->flash_size, err, sizeof err), 0);
    assert_int_equal(ota_lwip_flash_open(&f, e->path, err, sizeof err), 0);
    const ota_boot_port_t *b = ota_lwip_flash_boot(&f);
    ota_boot_record_t r;
    memset(&r, 0xAB, sizeof r);
    assert_int_equal(b->load(b->ctx, &r), OTA_OK); /* blank: zeros, not an error */
    assert_int_equal(r.boot_attempts, 0);
    assert_false(r.pending);
    /* but a store needs the record it updates (it would name no application) */
    ota_boot_record_t one = {.boot_attempts = 1};
    assert_int_equal(b->store(b->ctx, &one), OTA_ERR_IO);
    assert_int_equal(f.emu.bytes_written, 0);
    ota_lwip_record_t first = {.app_size = 4};
    assert_int_equal(ota_lwip_record_store(&f, &first), 0);
    assert_int_equal(first.seq, 1);
    /* round trip, alternating sectors, rising sequence */
    for (uint32_t i = 1; i <= 5; i++) {
        ota_boot_record_t w = {.boot_attempts = i, .pending = (i & 1) != 0,
                               .safe_mode_request = i == 3, .safe_mode = i == 4,
                               .min_secure_version = i};
        assert_int_equal(b->store(b->ctx, &w), OTA_OK);
        assert_int_equal(b->load(b->ctx, &r), OTA_OK);
        assert_int_equal(r.boot_attempts, i);
        assert_int_equal(r.pending, (i & 1) != 0);
        assert_int_equal(r.safe_mode_request, i == 3);
        assert_int_equal(r.safe_mode, i == 4);
        ota_lwip_record_t rec;
        assert_int_equal(ota_lwip_record_load(&f, &rec), 0);
        assert_int_equal(rec.seq, i + 1);
        assert_int_equal(rec.app_size, 4); /* the other fields are kept */
    }
    assert_int_equal(f.emu.erases, 6);
    /* the anti-rollback floor never goes down */
    ota_boot_record_t lower = {.boot_attempts = 9, .min_secure_version = 2};
    assert_int_equal(b->store(b->ctx, &lower), OTA_OK);
    assert_int_equal(b->load(b->ctx, &r), OTA_OK);
    assert_int_equal(r.boot_attempts, 9);
    assert_int_equal(r.min_secure_version, 5);
    /* reboot only raises the flag */
    assert_false(ota_lwip_flash_reboot_requested(&f));
    b->reboot(b->ctx);
    assert_true(ota_lwip_flash_reboot_requested(&f));

    /* a power cut at either operation of a store (the erase, the write): the old
     * record is read back, complete; without a cut the new one */
    for (uint32_t cut = 1; cut <= 3; cut++) {
        ota_boot_record_t old_r, new_r = {.boot_attempts = 100 + cut, .pending = true,
                                          .min_secure_version = 7};
        assert_int_equal(b->load(b->ctx, &old_r), OTA_OK);
        if (cut <= 2)
            ota_flash_emu_cut_after(&f.emu, cut);
        int rc = b->store(b->ctx, &new_r);
        assert_int_equal(rc, cut <= 2 ? OTA_ERR_IO : OTA_OK);
        ota_lwip_flash_close(&f);
        assert_int_equal(ota_lwip_flash_open(&f, e->path, err, sizeof err), 0);
        b = ota_lwip_flash_boot(&f);
        assert_int_equal(b->load(b->ctx, &r), OTA_OK);
        const ota_boot_record_t *want = cut <= 2 ? &old_r : &new_r;
        assert_int_equal(r.boot_attempts, want->boot_attempts);
        assert_int_equal(r.pending, want->pending);
        assert_int_equal(r.min_secure_version, want->min_secure_version);
    }
    /* a corrupt newest sector: the other one is used */
    ota_lwip_record_t rec;
    assert_int_equal(ota_lwip_record_load(&f, &rec), 0);
    uint32_t newest_seq = rec.seq;
    for (int i = 0; i < 2; i++) {
        uint8_t raw[12];
        assert_int_equal(ota_flash_emu_read(&f.emu, l->bootrec[i], raw, sizeof raw), 0);
        uint32_t seq = (uint32_t)raw[8] | (uint32_t)raw[9] << 8 | (uint32_t)raw[10] << 16 |
                       (uint32_t)raw[11] << 24;
        if (seq == newest_seq) { /* clear its sequence word: the CRC no longer matches */
            uint8_t z[4] = {0, 0, 0, 0};
            assert_int_equal(ota_flash_emu_write(&f.emu, l->bootrec[i] + 8, z, 4), 0);
        }
    }
    assert_int_equal(ota_lwip_record_load(&f, &rec), 0);
    assert_int_equal(rec.seq, newest_seq - 1);
    ota_lwip_flash_close(&f);
}

/* ---------------------------------------------------------------- the eboot copy */

/* A flash file with the old application and an activated update of the new one. */
static void prepare_copy(env_t *e, const uint8_t *old, uint32_t old_len, const uint8_t *img,
                         uint32_t new_len)
{
    static ota_lwip_flash_t f;
    install(e, &f, ota_lwip_layout_by_name("esp8266-1m"), old, old_len);
    unsigned wb;
    assert_int_equal(upload(&f, img, new_len, &wb), OTA_OK);
    ota_lwip_flash_close(&f);
}

/* Nothing that is not whole is ever bootable: either a copy is pending (then the boot
 * stage completes it before anything runs) or the record names an intact image,
 * which is the old or the new one. */
static void assert_consistent(ota_lwip_flash_t *f, const uint8_t *old_sha, const uint8_t *new_sha)
{
    ota_lwip_record_t rec;
    assert_int_equal(ota_lwip_record_load(f, &rec), 0);
    if (rec.copy.pending) {
        assert_memory_equal(rec.copy.sha256, new_sha, 32);
        return;
    }
    uint8_t got[32];
    assert_int_equal(ota_lwip_flash_hash(f, f->layout->app_start, rec.app_size, got), 0);
    assert_memory_equal(got, rec.app_sha256, 32);
    assert_true(memcmp(got, old_sha, 32) == 0 || memcmp(got, new_sha, 32) == 0);
}

static void test_eboot_power_cut_at_every_operation(void **state)
{
    env_t *e = *state;
    const uint32_t old_len = 120 * KIB + 77, new_len = 100 * KIB + 3;
    uint8_t *old = make_image(old_len, 10);
    uint8_t *img = make_image(new_len, 11);
    /* one sector the same in both images, as in an update of a real firmware: the copy
     * skips it, and a resumed copy must not be fooled by it */
    memcpy(img + 4096, old + 4096, 4096);
    uint8_t old_sha[32], new_sha[32];
    sha(old, old_len, old_sha);
    sha(img, new_len, new_sha);
    prepare_copy(e, old, old_len, img, new_len);
    size_t pristine_len;
    uint8_t *pristine = tu_read(e->path, &pristine_len);
    const uint32_t sectors = ota_lwip_layout_round(new_len) / 4096;

    static ota_lwip_flash_t f;
    char err[300];
    ota_lwip_eboot_result_t res;
    uint32_t cut, cuts = 0, resumed_skips = 0;
    for (cut = 1;; cut++) {
        tu_write(e->path, pristine, pristine_len, 0600);
        assert_int_equal(ota_lwip_flash_open(&f, e->path, err, sizeof err), 0);
        ota_flash_emu_cut_after(&f.emu, cut);
        int rc = ota_lwip_eboot(&f, &res, err, sizeof err);
        bool lost = f.emu.power_lost;
        ota_lwip_flash_close(&f);
        if (!lost) {
            assert_int_equal(rc, 0); /* the cut came after the last operation: done */
            break;
        }
        assert_int_equal(rc, -1);
        cuts++;
        /* the next boot: consistent before the boot stage, the new image after it */
        assert_int_equal(ota_lwip_flash_open(&f, e->path, err, sizeof err), 0);
        assert_consistent(&f, old_sha, new_sha);
        if (cut % 3 == 0) { /* and a second cut in the resumed copy, now and then */
            ota_flash_emu_cut_after(&f.emu, 1 + cut / 3);
            rc = ota_lwip_eboot(&f, &res, err, sizeof err);
            lost = f.emu.power_lost;
            ota_lwip_flash_close(&f);
            assert_int_equal(ota_lwip_flash_open(&f, e->path, err, sizeof err), 0);
            assert_consistent(&f, old_sha, new_sha);
        }
        rc = ota_lwip_eboot(&f, &res, err, sizeof err);
        if (rc != 0)
            fail_msg("cut at op %u: the next boot stage failed: %s", (unsigned)cut, err);
        assert_false(f.emu.power_lost);
        resumed_skips += res.sectors_skipped;
        assert_app(&f, img, new_len);
        ota_lwip_record_t rec;
        assert_int_equal(ota_lwip_record_load(&f, &rec), 0);
        assert_false(rec.copy.pending);
        ota_lwip_flash_close(&f);
    }
    /* every sector was cut in: at least an erase and a write each, plus the record */
    assert_true(cuts >= 2 * (sectors - 1) + 2);
    assert_true(resumed_skips > 0); /* resumed copies skipped the sectors already done */
    /* and the uncut run copied everything but the sector that was equal already */
    tu_write(e->path, pristine, pristine_len, 0600);
    assert_int_equal(ota_lwip_flash_open(&f, e->path, err, sizeof err), 0);
    assert_int_equal(ota_lwip_eboot(&f, &res, err, sizeof err), 0);
    assert_int_equal(res.sectors_copied, sectors - 1);
    assert_int_equal(res.sectors_skipped, 1);
    assert_app(&f, img, new_len);
    ota_lwip_flash_close(&f);
    free(pristine);
    free(old);
    free(img);
}

static void test_eboot_drops_a_copy_whose_source_changed(void **state)
{
    env_t *e = *state;
    const uint32_t old_len = 60 * KIB, new_len = 50 * KIB;
    uint8_t *old = make_image(old_len, 12);
    uint8_t *img = make_image(new_len, 13);
    prepare_copy(e, old, old_len, img, new_len);
    static ota_lwip_flash_t f;
    char err[300];
    assert_int_equal(ota_lwip_flash_open(&f, e->path, err, sizeof err), 0);
    /* before the reboot, another upload starts over the same area and stops halfway */
    const ota_store_port_t *s = ota_lwip_flash_slot(&f);
    assert_int_equal(s->begin(s->ctx, new_len), OTA_OK);
    int rc;
    while ((rc = s->write(s->ctx, 0, old, 8192)) == OTA_ERR_WOULD_BLOCK) {
    }
    assert_int_equal(rc, OTA_OK);
    s->abort(s->ctx);
    ota_lwip_eboot_result_t res;
    assert_int_equal(ota_lwip_eboot(&f, &res, err, sizeof err), 0);
    assert_true(res.dropped);
    assert_false(res.copied);
    assert_app(&f, old, old_len);
    ota_lwip_record_t rec;
    assert_int_equal(ota_lwip_record_load(&f, &rec), 0);
    assert_false(rec.copy.pending);
    assert_false(rec.boot.pending);
    /* an application that is not what its record says never boots */
    uint8_t z[4] = {0, 0, 0, 0};
    assert_int_equal(ota_flash_emu_write(&f.emu, f.layout->app_start + 8192, z, 4), 0);
    assert_int_equal(ota_lwip_eboot(&f, &res, err, sizeof err), -1);
    assert_non_null(strstr(err, "does not match"));
    ota_lwip_flash_close(&f);
    /* nor does a blank flash */
    assert_int_equal(ota_flash_emu_create(e->path, 1024 * KIB, err, sizeof err), 0);
    assert_int_equal(ota_lwip_flash_open(&f, e->path, err, sizeof err), 0);
    assert_int_equal(ota_lwip_eboot(&f, &res, err, sizeof err), -1);
    assert_non_null(strstr(err, "no valid boot record"));
    ota_lwip_flash_close(&f);
    free(old);
    free(img);
}

static void test_power_cut_during_the_upload(void **state)
{
    env_t *e = *state;
    /* a cut at every erase and write of an upload (the area, then the record write of
     * activate): the next boot starts the old image, or the new one once activate's
     * record landed; never anything else */
    const uint32_t old_len = 30 * KIB + 5, new_len = 20 * KIB + 2;
    uint8_t *old = make_image(old_len, 14);
    uint8_t *img = make_image(new_len, 15);
    static ota_lwip_flash_t f;
    install(e, &f, ota_lwip_layout_by_name("esp8266-1m"), old, old_len);
    ota_lwip_flash_close(&f);
    size_t pristine_len;
    uint8_t *pristine = tu_read(e->path, &pristine_len);
    char err[300];
    unsigned olds = 0, news = 0;
    for (uint32_t cut = 1;; cut++) {
        tu_write(e->path, pristine, pristine_len, 0600);
        assert_int_equal(ota_lwip_flash_open(&f, e->path, err, sizeof err), 0);
        ota_flash_emu_cut_after(&f.emu, cut);
        unsigned wb;
        int rc = upload(&f, img, new_len, &wb);
        bool lost = f.emu.power_lost;
        ota_lwip_flash_close(&f);
        assert_int_equal(ota_lwip_flash_open(&f, e->path, err, sizeof err), 0);
        ota_lwip_eboot_result_t res;
        assert_int_equal(ota_lwip_eboot(&f, &res, err, sizeof err), 0);
        if (res.app_size == new_len) {
            assert_app(&f, img, new_len);
            news++;
        } else {
            assert_app(&f, old, old_len);
            olds++;
        }
        ota_lwip_flash_close(&f);
        if (!lost) {
            assert_int_equal(rc, OTA_OK);
            break;
        }
        assert_int_not_equal(rc, OTA_OK);
    }
    assert_true(olds > 10); /* cut inside the area's erases and writes */
    assert_int_equal(news, 1); /* only the uncut run: the record write is the last op */
    free(pristine);
    free(old);
    free(img);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_hashes),
        cmocka_unit_test_setup_teardown(test_emu_nor_rules, env_setup, env_teardown),
        cmocka_unit_test_setup_teardown(test_emu_alignment, env_setup, env_teardown),
        cmocka_unit_test_setup_teardown(test_emu_timing_and_cut, env_setup, env_teardown),
        cmocka_unit_test(test_layouts),
        cmocka_unit_test_setup_teardown(test_store_1m_no_space_before_any_write, env_setup,
                                        env_teardown),
        cmocka_unit_test_setup_teardown(test_store_4m_fits_and_boots, env_setup, env_teardown),
        cmocka_unit_test_setup_teardown(test_store_refusals, env_setup, env_teardown),
        cmocka_unit_test_setup_teardown(test_store_slow_erase_stays_responsive, env_setup,
                                        env_teardown),
        cmocka_unit_test_setup_teardown(test_boot_record, env_setup, env_teardown),
        cmocka_unit_test_setup_teardown(test_eboot_power_cut_at_every_operation, env_setup,
                                        env_teardown),
        cmocka_unit_test_setup_teardown(test_eboot_drops_a_copy_whose_source_changed, env_setup,
                                        env_teardown),
        cmocka_unit_test_setup_teardown(test_power_cut_during_the_upload, env_setup,
                                        env_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
