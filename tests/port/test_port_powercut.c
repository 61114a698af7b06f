/*
 * test_port_powercut.c - power cuts during an update, at every step. The file
 * operations of the port (write, pwrite, fsync, fchmod, rename, link, unlink) are
 * wrapped at link time (-Wl,--wrap); a forked child runs a whole update and "loses
 * power" at the N-th operation (a write is torn: half of it lands), for N = 1, 2, ...
 * until an update completes. After each cut the state dir must boot: boot.state
 * valid, naming either the old image or the complete new one, byte for byte.
 * (A process exit keeps the page cache, so this checks the order of the steps, the
 * part the code controls; the fsyncs between them are checked to be there by
 * counting them.)
 */
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "bootstate.h"
#include "ota/errors.h"
#include "ota_posix.h"
#include "port_test_util.h"

/* ---- the wrapped operations: count, and cut the power at cut_at ---- */

static long op_count = 0;
static long cut_at = 0; /* 0: never */
static long fsyncs = 0;

#define CUT_EXIT 77

static void maybe_cut(void)
{
    if (cut_at != 0 && ++op_count == cut_at)
        _exit(CUT_EXIT);
}

static bool torn(void)
{
    return cut_at != 0 && op_count + 1 == cut_at;
}

ssize_t __real_write(int fd, const void *buf, size_t len);
ssize_t __wrap_write(int fd, const void *buf, size_t len);
ssize_t __wrap_write(int fd, const void *buf, size_t len)
{
    if (torn() && len > 1)
        (void)!__real_write(fd, buf, len / 2);
    maybe_cut();
    return __real_write(fd, buf, len);
}

ssize_t __real_pwrite(int fd, const void *buf, size_t len, off_t off);
ssize_t __wrap_pwrite(int fd, const void *buf, size_t len, off_t off);
ssize_t __wrap_pwrite(int fd, const void *buf, size_t len, off_t off)
{
    if (torn() && len > 1)
        (void)!__real_pwrite(fd, buf, len / 2, off);
    maybe_cut();
    return __real_pwrite(fd, buf, len, off);
}

int __real_fsync(int fd);
int __wrap_fsync(int fd);
int __wrap_fsync(int fd)
{
    maybe_cut();
    fsyncs++;
    return __real_fsync(fd);
}

int __real_fchmod(int fd, mode_t mode);
int __wrap_fchmod(int fd, mode_t mode);
int __wrap_fchmod(int fd, mode_t mode)
{
    maybe_cut();
    return __real_fchmod(fd, mode);
}

int __real_rename(const char *a, const char *b);
int __wrap_rename(const char *a, const char *b);
int __wrap_rename(const char *a, const char *b)
{
    maybe_cut();
    return __real_rename(a, b);
}

int __real_link(const char *a, const char *b);
int __wrap_link(const char *a, const char *b);
int __wrap_link(const char *a, const char *b)
{
    maybe_cut();
    return __real_link(a, b);
}

int __real_unlink(const char *p);
int __wrap_unlink(const char *p);
int __wrap_unlink(const char *p)
{
    maybe_cut();
    return __real_unlink(p);
}

/* ---- the scenario ---- */

static uint8_t *old_img, *new_img;
static size_t img_len;

/* One full update of new_img through the port, as the core drives it. */
static int run_update(const char *dir)
{
    static ota_posix_t ctx;
    ota_posix_options_t o = {
        .state_dir = dir, .bind_addr = "127.0.0.1", .port = 0, .slot_size = 64u << 20};
    char err[512];
    if (ota_posix_init(&ctx, &o, err, sizeof err) != 0)
        return 1;
    const ota_store_port_t *p = &ctx.ports.slot;
    int rc = p->begin(&ctx, (uint32_t)img_len);
    for (size_t off = 0; rc == OTA_OK && off < img_len; off += 8192) {
        size_t n = img_len - off < 8192 ? img_len - off : 8192;
        rc = p->write(&ctx, (uint32_t)off, new_img + off, n);
    }
    if (rc == OTA_OK)
        rc = p->finish(&ctx, (uint32_t)img_len);
    if (rc == OTA_OK)
        rc = p->activate(&ctx);
    ota_posix_free(&ctx);
    return rc == OTA_OK ? 0 : 2;
}

static void fresh_node(const char *dir)
{
    char p[4096];
    tu_rm_rf(dir);
    assert_int_equal(mkdir(dir, 0755), 0);
    ota_bootstate_slot_path(dir, 'a', p, sizeof p);
    tu_write(p, old_img, img_len, 0755);
    ota_bootstate_slot_path(dir, 'b', p, sizeof p);
    tu_write(p, "an older image, not bootable", 28, 0644);
    ota_bootstate_t st;
    ota_bootstate_default(&st);
    assert_int_equal(ota_bootstate_store(dir, &st), 0);
    st.boot_attempts = 1;
    assert_int_equal(ota_bootstate_store(dir, &st), 0); /* so that .prev exists */
}

/* After a cut: what boots must be the old or the complete new image. */
static char check_bootable(const char *dir, long n)
{
    ota_bootstate_t st;
    char why[300] = "";
    if (ota_bootstate_load(dir, &st, why, sizeof why) != 0)
        fail_msg("cut at step %ld: boot state not valid (%s)", n, why);
    char p[4096];
    ota_bootstate_slot_path(dir, st.active, p, sizeof p);
    size_t len;
    uint8_t *img = tu_read(p, &len);
    assert_non_null(img);
    const uint8_t *want = st.active == 'a' ? old_img : new_img;
    if (len != img_len || memcmp(img, want, len) != 0)
        fail_msg("cut at step %ld: slot %c does not hold the complete image", n, st.active);
    free(img);
    assert_true(ota_bootstate_image_ok(p));
    if (st.active == 'b') {
        assert_true(st.pending);
        assert_int_equal(st.confirmed, 'a');
    } else {
        assert_false(st.pending);
    }
    return st.active;
}

static void test_power_cut_at_every_step(void **state)
{
    (void)state;
    char dir[4096];
    tu_mkdtemp(dir);
    /* images of 200000 bytes (25 writes of 8192), starting with this binary's ELF
     * header: the port checks only the header */
    size_t self_len;
    uint8_t *self = tu_self_image(&self_len);
    img_len = 200000;
    old_img = malloc(img_len);
    new_img = malloc(img_len);
    assert_non_null(old_img);
    assert_non_null(new_img);
    for (size_t i = 0; i < img_len; i++)
        old_img[i] = i < self_len ? self[i] : (uint8_t)(i * 7u);
    free(self);
    memcpy(new_img, old_img, img_len);
    for (size_t i = 4096; i < img_len; i += 977)
        new_img[i] ^= 0x5a; /* same header, other bytes */

    long n, old_seen = 0, new_seen = 0;
    for (n = 1; n < 10000; n++) {
        fresh_node(dir);
        fflush(NULL);
        pid_t pid = fork();
        assert_true(pid >= 0);
        if (pid == 0) {
            cut_at = n;
            _exit(run_update(dir));
        }
        int status;
        assert_int_equal(waitpid(pid, &status, 0), pid);
        assert_true(WIFEXITED(status));
        int code = WEXITSTATUS(status);
        if (code != CUT_EXIT && code != 0)
            fail_msg("cut at step %ld: the update failed by itself (exit %d)", n, code);
        char active = check_bootable(dir, n);
        if (code == 0) { /* the update finished before step n: all steps covered */
            assert_int_equal(active, 'b');
            break;
        }
        *(active == 'a' ? &old_seen : &new_seen) += 1;
    }
    print_message("%ld power cuts: %ld booted the old image, %ld the new one\n", n - 1,
                  old_seen, new_seen);
    /* every write of the image is a step, then syncs, renames, the boot state */
    assert_true(old_seen >= 25 + 5);
    assert_true(new_seen >= 1); /* after the boot state's rename */

    /* and the steps are synced: image, slot dir, boot state, state dir */
    fresh_node(dir);
    fsyncs = 0;
    cut_at = 0;
    assert_int_equal(run_update(dir), 0);
    assert_true(fsyncs >= 4);
    tu_rm_rf(dir);
    free(old_img);
    free(new_img);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_power_cut_at_every_step),
    };
    return cmocka_run_group_tests_name("port_powercut", tests, NULL, NULL);
}
