/*
 * test_port_bootstate.c - the boot state file of a Linux node
 * (src/port/posix/bootstate.c): round trips, atomic replacement with a previous
 * generation, every kind of damage falling back to a bootable slot, and the ELF
 * check that decides what counts as an executable for this machine.
 */
#include <elf.h>
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>
#include <zlib.h>

#include "bootstate.h"
#include "ota/errors.h"
#include "port_test_util.h"

typedef struct fixture {
    char dir[4096];
} fixture_t;

static int setup(void **state)
{
    fixture_t *f = calloc(1, sizeof *f);
    assert_non_null(f);
    tu_mkdtemp(f->dir);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture_t *f = *state;
    tu_rm_rf(f->dir);
    free(f);
    return 0;
}

static void put_self(const char *dir, char slot)
{
    char p[4096];
    size_t len;
    uint8_t *img = tu_self_image(&len);
    assert_int_equal(ota_bootstate_slot_path(dir, slot, p, sizeof p), 0);
    tu_write(p, img, len, 0755);
    free(img);
}

static void assert_state_equal(const ota_bootstate_t *a, const ota_bootstate_t *b)
{
    assert_int_equal(a->active, b->active);
    assert_int_equal(a->confirmed, b->confirmed);
    assert_int_equal(a->pending, b->pending);
    assert_int_equal(a->pending_boots, b->pending_boots);
    assert_int_equal(a->boot_attempts, b->boot_attempts);
    assert_int_equal(a->safe_mode_request, b->safe_mode_request);
    assert_int_equal(a->safe_mode, b->safe_mode);
    assert_int_equal(a->min_secure_version, b->min_secure_version);
}

/* A boot.state text with a correct checksum over body (the format of
 * docs/boot-state.md, written here independently of the code under test). */
static size_t with_crc(const char *body, char *out, size_t cap)
{
    uLong crc = crc32(0L, (const Bytef *)body, (uInt)strlen(body));
    int n = snprintf(out, cap, "%scrc32=%08lx\n", body, (unsigned long)crc);
    assert_true(n > 0 && (size_t)n < cap);
    return (size_t)n;
}

static const char valid_body[] = "ota-boot-state 1\nactive=b\nconfirmed=a\npending=1\n"
                                 "pending_boots=2\nboot_attempts=3\nsafe_mode_request=0\n"
                                 "safe_mode=1\n";

static void test_default_is_slot_a(void **state)
{
    (void)state;
    ota_bootstate_t st;
    memset(&st, 0x5a, sizeof st);
    ota_bootstate_default(&st);
    assert_int_equal(st.active, 'a');
    assert_int_equal(st.confirmed, 'a');
    assert_false(st.pending);
    assert_int_equal(st.pending_boots, 0);
    assert_int_equal(st.boot_attempts, 0);
    assert_false(st.safe_mode_request);
    assert_false(st.safe_mode);
}

static void test_slot_path(void **state)
{
    (void)state;
    char p[64];
    assert_int_equal(ota_bootstate_slot_path("/x", 'b', p, sizeof p), 0);
    assert_string_equal(p, "/x/slot_b.bin");
    assert_int_equal(ota_bootstate_slot_path("/a/long/directory", 'a', p, 10), OTA_ERR_TOO_LONG);
}

static void test_round_trip(void **state)
{
    fixture_t *f = *state;
    const ota_bootstate_t cases[] = {
        {'a', 'a', false, 0, 0, false, false, 0},
        {'b', 'a', true, 1, 0, false, false, 0},
        {'a', 'b', true, 7, 9, true, false, 0},
        {'a', 'a', false, 0, 0, false, false, 4294967295u}, /* anti-rollback minimum */
        {'b', 'b', false, 0, 1000000, false, true, 0},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        assert_int_equal(ota_bootstate_store(f->dir, &cases[i]), 0);
        ota_bootstate_t got;
        char why[300] = "";
        assert_int_equal(ota_bootstate_load(f->dir, &got, why, sizeof why), 0);
        assert_state_equal(&got, &cases[i]);
    }
    /* the file is the documented text, checksum included */
    char p[4096], want[512];
    tu_path(p, f->dir, "boot.state");
    size_t len;
    char *text = (char *)tu_read(p, &len);
    assert_non_null(text);
    size_t wlen = with_crc("ota-boot-state 1\nactive=b\nconfirmed=b\npending=0\n"
                           "pending_boots=0\nboot_attempts=1000000\nsafe_mode_request=0\n"
                           "safe_mode=1\nmin_secure_version=0\n",
                           want, sizeof want);
    assert_int_equal(len, wlen);
    assert_memory_equal(text, want, len);
    free(text);
}

static void test_counters_saturate(void **state)
{
    fixture_t *f = *state;
    const ota_bootstate_t big = {'a', 'a', true, UINT32_MAX, 1000001, false, false, 0};
    assert_int_equal(ota_bootstate_store(f->dir, &big), 0);
    ota_bootstate_t got;
    char why[300] = "";
    assert_int_equal(ota_bootstate_load(f->dir, &got, why, sizeof why), 0);
    assert_int_equal(got.pending_boots, 1000000);
    assert_int_equal(got.boot_attempts, 1000000);
    assert_true(got.pending);
}

static void test_reads_a_file_written_by_hand(void **state)
{
    fixture_t *f = *state;
    char p[4096], text[512];
    tu_path(p, f->dir, "boot.state");
    size_t n = with_crc(valid_body, text, sizeof text);
    tu_write(p, text, n, 0644);
    ota_bootstate_t got;
    char why[300];
    assert_int_equal(ota_bootstate_load(f->dir, &got, why, sizeof why), 0);
    const ota_bootstate_t want = {'b', 'a', true, 2, 3, false, true, 0};
    assert_state_equal(&got, &want);
}

static void test_store_keeps_previous_generation_and_no_temp(void **state)
{
    fixture_t *f = *state;
    char cur[4096], prev[4096], tmp[4096];
    tu_path(cur, f->dir, "boot.state");
    tu_path(prev, f->dir, "boot.state.prev");
    tu_path(tmp, f->dir, "boot.state.tmp");
    const ota_bootstate_t g1 = {'a', 'a', false, 0, 4, false, false, 0};
    const ota_bootstate_t g2 = {'b', 'a', true, 0, 0, false, false, 0};
    assert_int_equal(ota_bootstate_store(f->dir, &g1), 0);
    assert_false(tu_exists(prev));
    tu_snap_t first;
    tu_snap(&first, cur);
    assert_int_equal(ota_bootstate_store(f->dir, &g2), 0);
    tu_assert_same(&first, prev);
    assert_false(tu_exists(tmp));
    /* a stale temp file of a write cut short is ignored and replaced */
    tu_write(tmp, "half a state", 12, 0644);
    ota_bootstate_t got;
    char why[300];
    assert_int_equal(ota_bootstate_load(f->dir, &got, why, sizeof why), 0);
    assert_state_equal(&got, &g2);
    assert_int_equal(ota_bootstate_store(f->dir, &g1), 0);
    assert_false(tu_exists(tmp));
}

static void test_store_into_missing_dir_fails(void **state)
{
    fixture_t *f = *state;
    char p[4096];
    tu_path(p, f->dir, "nope");
    ota_bootstate_t st;
    ota_bootstate_default(&st);
    assert_int_equal(ota_bootstate_store(p, &st), OTA_ERR_IO);
    /* a state naming no slot is refused and nothing is written */
    assert_int_equal(ota_bootstate_store(f->dir, &st), 0);
    char cur[4096];
    tu_path(cur, f->dir, "boot.state");
    tu_snap_t before;
    tu_snap(&before, cur);
    st.active = 'x';
    errno = 0;
    assert_int_equal(ota_bootstate_store(f->dir, &st), OTA_ERR_INVALID_ARG);
    assert_int_equal(errno, EINVAL);
    st.active = 'b';
    st.confirmed = 0;
    assert_int_equal(ota_bootstate_store(f->dir, &st), OTA_ERR_INVALID_ARG);
    tu_assert_same(&before, cur);
}

/* Each damaged boot.state must load as the previous generation (when it is valid),
 * else as a slot that holds an executable; ota_bootstate_load says why. */
typedef struct damage {
    const char *name;
    char text[1024];
    size_t len;
    bool missing;
} damage_t;

static void check_damage(const fixture_t *f, const damage_t *d, const ota_bootstate_t *prev,
                         char fallback_slot)
{
    char cur[4096], prevp[4096];
    tu_path(cur, f->dir, "boot.state");
    tu_path(prevp, f->dir, "boot.state.prev");
    unlink(cur);
    if (!d->missing)
        tu_write(cur, d->text, d->len, 0644);
    ota_bootstate_t got;
    memset(&got, 0, sizeof got);
    char why[300] = "";
    int rc = ota_bootstate_load(f->dir, &got, why, sizeof why);
    if (rc != OTA_BOOTSTATE_FALLBACK)
        fail_msg("damage '%s' was accepted (rc %d)", d->name, rc);
    assert_non_null(strstr(why, "boot.state"));
    if (prev != NULL) {
        assert_state_equal(&got, prev);
    } else {
        if (got.active != fallback_slot)
            fail_msg("damage '%s': booted slot %c, want %c", d->name, got.active,
                     fallback_slot);
        assert_int_equal(got.confirmed, fallback_slot);
        assert_false(got.pending);
        assert_false(got.safe_mode);
    }
}

static size_t n_damages(damage_t *out, size_t cap)
{
    char good[512];
    size_t glen = with_crc(valid_body, good, sizeof good);
    size_t n = 0;
#define ADD_TEXT(nm, body_is_crc, s)                                                        \
    do {                                                                                    \
        assert_true(n < cap);                                                               \
        out[n].name = nm;                                                                   \
        out[n].missing = false;                                                             \
        if (body_is_crc)                                                                    \
            out[n].len = with_crc(s, out[n].text, sizeof out[n].text);                      \
        else {                                                                              \
            out[n].len = strlen(s);                                                         \
            memcpy(out[n].text, s, out[n].len);                                             \
        }                                                                                   \
        n++;                                                                                \
    } while (0)
    out[n].name = "missing";
    out[n].missing = true;
    out[n].len = 0;
    n++;
    ADD_TEXT("empty", false, "");
    ADD_TEXT("garbage", false, "\x7f" "ELF\x02\x01\x01 this is not a boot state\n");
    ADD_TEXT("no checksum", false, valid_body);
    ADD_TEXT("wrong checksum", false,
             "ota-boot-state 1\nactive=b\nconfirmed=a\npending=1\npending_boots=2\n"
             "boot_attempts=3\nsafe_mode_request=0\nsafe_mode=1\ncrc32=00000000\n");
    ADD_TEXT("future version", true,
             "ota-boot-state 2\nactive=b\nconfirmed=a\npending=1\npending_boots=2\n"
             "boot_attempts=3\nsafe_mode_request=0\nsafe_mode=1\n");
    ADD_TEXT("unknown field", true,
             "ota-boot-state 1\nactive=b\nconfirmed=a\npending=1\npending_boots=2\n"
             "boot_attempts=3\nsafe_mode_request=0\nsafe_mode=1\ncolour=blue\n");
    ADD_TEXT("field missing", true,
             "ota-boot-state 1\nactive=b\nconfirmed=a\npending=1\npending_boots=2\n"
             "boot_attempts=3\nsafe_mode_request=0\n");
    ADD_TEXT("field twice", true,
             "ota-boot-state 1\nactive=b\nconfirmed=a\npending=1\npending_boots=2\n"
             "boot_attempts=3\nsafe_mode_request=0\nactive=a\n");
    ADD_TEXT("bad slot", true,
             "ota-boot-state 1\nactive=c\nconfirmed=a\npending=1\npending_boots=2\n"
             "boot_attempts=3\nsafe_mode_request=0\nsafe_mode=1\n");
    ADD_TEXT("bad flag", true,
             "ota-boot-state 1\nactive=b\nconfirmed=a\npending=yes\npending_boots=2\n"
             "boot_attempts=3\nsafe_mode_request=0\nsafe_mode=1\n");
    ADD_TEXT("bad number", true,
             "ota-boot-state 1\nactive=b\nconfirmed=a\npending=1\npending_boots=-2\n"
             "boot_attempts=3\nsafe_mode_request=0\nsafe_mode=1\n");
    ADD_TEXT("absurd counter", true,
             "ota-boot-state 1\nactive=b\nconfirmed=a\npending=1\npending_boots=2\n"
             "boot_attempts=99999999999\nsafe_mode_request=0\nsafe_mode=1\n");
    ADD_TEXT("signed number", true,
             "ota-boot-state 1\nactive=b\nconfirmed=a\npending=1\npending_boots=+2\n"
             "boot_attempts=3\nsafe_mode_request=0\nsafe_mode=1\n");
    ADD_TEXT("empty number", true,
             "ota-boot-state 1\nactive=b\nconfirmed=a\npending=1\npending_boots=\n"
             "boot_attempts=3\nsafe_mode_request=0\nsafe_mode=1\n");
    ADD_TEXT("checksum with a space", false,
             "ota-boot-state 1\nactive=a\nconfirmed=a\npending=0\npending_boots=0\n"
             "boot_attempts=0\nsafe_mode_request=0\nsafe_mode=0\ncrc32= 1234567\n");
    ADD_TEXT("short checksum", false,
             "ota-boot-state 1\nactive=a\nconfirmed=a\npending=0\npending_boots=0\n"
             "boot_attempts=0\nsafe_mode_request=0\nsafe_mode=0\ncrc32=1234567\n");
    ADD_TEXT("checksum without newline", false,
             "ota-boot-state 1\nactive=a\nconfirmed=a\npending=0\npending_boots=0\n"
             "boot_attempts=0\nsafe_mode_request=0\nsafe_mode=0\ncrc32=12345678");
    ADD_TEXT("line without =", true,
             "ota-boot-state 1\nactive=b\nconfirmed=a\npending=1\npending_boots=2\n"
             "boot_attempts 3\nsafe_mode_request=0\nsafe_mode=1\n");
    /* data after the checksum line */
    assert_true(n < cap);
    out[n].name = "trailing data";
    out[n].missing = false;
    memcpy(out[n].text, good, glen);
    memcpy(out[n].text + glen, "active=a\n", 9);
    out[n].len = glen + 9;
    n++;
    /* too large to be a boot state */
    assert_true(n < cap);
    out[n].name = "too large";
    out[n].missing = false;
    memset(out[n].text, '#', 700);
    memcpy(out[n].text, good, glen);
    out[n].len = 700;
    n++;
    /* cut short at every length */
    for (size_t cut = 0; cut < glen; cut++) {
        assert_true(n < cap);
        out[n].name = "truncated";
        out[n].missing = false;
        memcpy(out[n].text, good, cut);
        out[n].len = cut;
        n++;
    }
    /* one flipped bit in every byte */
    for (size_t at = 0; at < glen; at++) {
        for (int bit = 0; bit < 8; bit += 3) {
            assert_true(n < cap);
            out[n].name = "bit flip";
            out[n].missing = false;
            memcpy(out[n].text, good, glen);
            out[n].text[at] = (char)(out[n].text[at] ^ (1 << bit));
            out[n].len = glen;
            n++;
        }
    }
#undef ADD_TEXT
    return n;
}

#define MAX_DAMAGES 1024

static void test_damage_falls_back_to_previous_generation(void **state)
{
    fixture_t *f = *state;
    damage_t *d = calloc(MAX_DAMAGES, sizeof *d);
    assert_non_null(d);
    size_t n = n_damages(d, MAX_DAMAGES);
    assert_true(n > 400);
    const ota_bootstate_t prev = {'b', 'b', false, 0, 5, false, false, 0};
    char cur[4096], prevp[4096];
    tu_path(cur, f->dir, "boot.state");
    tu_path(prevp, f->dir, "boot.state.prev");
    assert_int_equal(ota_bootstate_store(f->dir, &prev), 0);
    assert_int_equal(rename(cur, prevp), 0); /* boot.state.prev = a valid generation */
    for (size_t i = 0; i < n; i++)
        check_damage(f, &d[i], &prev, 0);
    free(d);
}

static void test_damage_without_previous_boots_an_executable_slot(void **state)
{
    fixture_t *f = *state;
    damage_t *d = calloc(MAX_DAMAGES, sizeof *d);
    assert_non_null(d);
    size_t n = n_damages(d, MAX_DAMAGES);
    char prevp[4096], slot[4096];
    tu_path(prevp, f->dir, "boot.state.prev");

    /* previous generation damaged too; nothing in either slot: slot A (the flash slot) */
    tu_write(prevp, "x", 1, 0644);
    for (size_t i = 0; i < n; i++)
        check_damage(f, &d[i], NULL, 'a');

    /* only slot B holds an executable: B */
    put_self(f->dir, 'b');
    ota_bootstate_slot_path(f->dir, 'a', slot, sizeof slot);
    tu_write(slot, "not an executable", 17, 0755);
    for (size_t i = 0; i < n; i++)
        check_damage(f, &d[i], NULL, 'b');

    /* both do: A */
    unlink(prevp);
    put_self(f->dir, 'a');
    for (size_t i = 0; i < n; i++)
        check_damage(f, &d[i], NULL, 'a');
    free(d);
}

static void test_unreadable_state_file_falls_back(void **state)
{
    fixture_t *f = *state;
    char cur[4096];
    tu_path(cur, f->dir, "boot.state");
    assert_int_equal(mkdir(cur, 0755), 0); /* a directory where the file should be */
    ota_bootstate_t got;
    char why[300] = "";
    assert_int_equal(ota_bootstate_load(f->dir, &got, why, sizeof why), OTA_BOOTSTATE_FALLBACK);
    assert_int_equal(got.active, 'a');
    /* and a state dir that does not exist at all still gives a slot */
    tu_path(cur, f->dir, "missing-dir");
    assert_int_equal(ota_bootstate_load(cur, &got, why, sizeof why), OTA_BOOTSTATE_FALLBACK);
    assert_int_equal(got.active, 'a');
}

/* ---- what counts as an executable for this machine ---- */

static void test_image_check(void **state)
{
    fixture_t *f = *state;
    char p[4096];
    tu_path(p, f->dir, "img");
    size_t len;
    uint8_t *img = tu_self_image(&len);
    Elf64_Ehdr *h = (Elf64_Ehdr *)img; /* e_type/e_machine: same offsets in ELF32 */

    tu_write(p, img, len, 0755);
    assert_true(ota_bootstate_image_ok(p));

    h->e_type = ET_EXEC;
    tu_write(p, img, len, 0755);
    assert_true(ota_bootstate_image_ok(p));
    h->e_type = ET_DYN;
    tu_write(p, img, len, 0755);
    assert_true(ota_bootstate_image_ok(p));

    h->e_type = ET_REL; /* an object file */
    tu_write(p, img, len, 0755);
    assert_false(ota_bootstate_image_ok(p));
    h->e_type = ET_CORE;
    tu_write(p, img, len, 0755);
    assert_false(ota_bootstate_image_ok(p));
    h->e_type = ET_DYN;

    uint16_t machine = h->e_machine;
    h->e_machine = (uint16_t)(machine == EM_AARCH64 ? EM_X86_64 : EM_AARCH64);
    tu_write(p, img, len, 0755);
    assert_false(ota_bootstate_image_ok(p));
    h->e_machine = machine;

    uint8_t cls = h->e_ident[EI_CLASS];
    h->e_ident[EI_CLASS] = cls == ELFCLASS64 ? ELFCLASS32 : ELFCLASS64;
    tu_write(p, img, len, 0755);
    assert_false(ota_bootstate_image_ok(p));
    h->e_ident[EI_CLASS] = cls;

    uint8_t data = h->e_ident[EI_DATA];
    h->e_ident[EI_DATA] = data == ELFDATA2LSB ? ELFDATA2MSB : ELFDATA2LSB;
    tu_write(p, img, len, 0755);
    assert_false(ota_bootstate_image_ok(p));
    h->e_ident[EI_DATA] = data;

    img[1] = 'e'; /* magic */
    tu_write(p, img, len, 0755);
    assert_false(ota_bootstate_image_ok(p));
    img[1] = 'E';

    tu_write(p, img, 16, 0755); /* only the ident */
    assert_false(ota_bootstate_image_ok(p));
    tu_write(p, "", 0, 0755);
    assert_false(ota_bootstate_image_ok(p));
    tu_write(p, "#!/bin/sh\necho hi\n", 18, 0755); /* a script is not an image */
    assert_false(ota_bootstate_image_ok(p));
    unlink(p);
    assert_false(ota_bootstate_image_ok(p));
    assert_false(ota_bootstate_image_ok(f->dir)); /* a directory */
    free(img);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_default_is_slot_a),
        cmocka_unit_test(test_slot_path),
        cmocka_unit_test_setup_teardown(test_round_trip, setup, teardown),
        cmocka_unit_test_setup_teardown(test_counters_saturate, setup, teardown),
        cmocka_unit_test_setup_teardown(test_reads_a_file_written_by_hand, setup, teardown),
        cmocka_unit_test_setup_teardown(test_store_keeps_previous_generation_and_no_temp, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_store_into_missing_dir_fails, setup, teardown),
        cmocka_unit_test_setup_teardown(test_damage_falls_back_to_previous_generation, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_damage_without_previous_boots_an_executable_slot,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_unreadable_state_file_falls_back, setup, teardown),
        cmocka_unit_test_setup_teardown(test_image_check, setup, teardown),
    };
    return cmocka_run_group_tests_name("port_bootstate", tests, NULL, NULL);
}
