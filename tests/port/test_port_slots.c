/*
 * test_port_slots.c - the slot writer of the POSIX port (src/port/posix/slots.c)
 * and the port's context (port.c): size limits, ELF validation, activation through
 * the boot state, and that a failed or aborted update leaves the running slot and
 * the boot state byte for byte as they were. Also init's error messages, the reboot
 * flag and the boot record hooks.
 */
#include <arpa/inet.h>
#include <elf.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "bootstate.h"
#include "ota/errors.h"
#include "ota_posix.h"
#include "port_test_util.h"

#define SLOT_SIZE (4u * 1024u * 1024u)

typedef struct fixture {
    char dir[4096];
    char slot_a[4096], slot_b[4096], state[4096];
    uint8_t *img; /* a valid image: this test binary */
    size_t img_len;
    ota_posix_t ctx;
    bool ctx_up;
} fixture_t;

/* State dir with slot A flashed (and active unless the test changes it). */
static int setup(void **state)
{
    fixture_t *f = calloc(1, sizeof *f);
    assert_non_null(f);
    tu_mkdtemp(f->dir);
    ota_bootstate_slot_path(f->dir, 'a', f->slot_a, sizeof f->slot_a);
    ota_bootstate_slot_path(f->dir, 'b', f->slot_b, sizeof f->slot_b);
    tu_path(f->state, f->dir, "boot.state");
    f->img = tu_self_image(&f->img_len);
    assert_true(f->img_len < SLOT_SIZE);
    tu_write(f->slot_a, f->img, f->img_len, 0755);
    ota_bootstate_t st;
    ota_bootstate_default(&st);
    assert_int_equal(ota_bootstate_store(f->dir, &st), 0);
    unsetenv("OTA_BOOT_SLOT");
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture_t *f = *state;
    if (f->ctx_up)
        ota_posix_free(&f->ctx);
    unsetenv("OTA_BOOT_SLOT");
    tu_rm_rf(f->dir);
    free(f->img);
    free(f);
    return 0;
}

static void start(fixture_t *f)
{
    ota_posix_options_t o = {
        .state_dir = f->dir, .bind_addr = "127.0.0.1", .port = 0, .slot_size = SLOT_SIZE};
    char err[512] = "";
    if (ota_posix_init(&f->ctx, &o, err, sizeof err) != 0)
        fail_msg("ota_posix_init: %s", err);
    f->ctx_up = true;
}

/* Write data through the port in 8192-byte pieces, as the core does. */
static int write_all(fixture_t *f, const uint8_t *data, size_t len)
{
    for (size_t off = 0; off < len; off += 8192) {
        size_t n = len - off < 8192 ? len - off : 8192;
        int rc = f->ctx.ports.slot.write(&f->ctx, (uint32_t)off, data + off, n);
        if (rc != OTA_OK)
            return rc;
    }
    return OTA_OK;
}

static ota_bootstate_t load(const fixture_t *f)
{
    ota_bootstate_t st;
    char why[300];
    assert_int_equal(ota_bootstate_load(f->dir, &st, why, sizeof why), 0);
    return st;
}

static void assert_no_temp_files(const fixture_t *f)
{
    char p[4200];
    snprintf(p, sizeof p, "%s.tmp", f->slot_a);
    assert_false(tu_exists(p));
    snprintf(p, sizeof p, "%s.tmp", f->slot_b);
    assert_false(tu_exists(p));
    tu_path(p, f->dir, "boot.state.tmp");
    assert_false(tu_exists(p));
}

static void test_port_is_complete(void **state)
{
    fixture_t *f = *state;
    start(f);
    const ota_posix_ports_t *t = &f->ctx.ports;
    const ota_server_ports_t *p = &t->server;
    assert_ptr_equal(p->tcp, &t->tcp);
    assert_non_null(t->tcp.accept);
    assert_non_null(t->tcp.recv);
    assert_non_null(t->tcp.send);
    assert_non_null(t->tcp.close);
    assert_ptr_equal(p->slot, &t->slot);
    assert_non_null(t->slot.begin);
    assert_non_null(t->slot.write);
    assert_non_null(t->slot.finish);
    assert_non_null(t->slot.activate);
    assert_non_null(t->slot.abort);
    assert_ptr_equal(p->boot, &t->boot);
    assert_non_null(t->boot.reboot);
    assert_non_null(t->boot.load);
    assert_non_null(t->boot.store);
    assert_ptr_equal(p->crypto, &t->crypto);
    assert_non_null(t->crypto.random);
    assert_non_null(t->crypto.hash_start);
    assert_non_null(t->crypto.hash_update);
    assert_non_null(t->crypto.hash_finish);
    assert_non_null(t->crypto.hmac_sha256);
    assert_ptr_equal(p->log, &t->log);
    assert_non_null(t->log.line);
    assert_ptr_equal(p->inflate, &t->inflate);
    assert_non_null(t->inflate.begin);
    assert_non_null(t->inflate.run);
    assert_non_null(t->inflate.end);
    assert_null(p->udp); /* no ArduinoOTA port asked for */
    assert_null(p->data);
    assert_int_equal(f->ctx.active, 'a');
    assert_int_equal(f->ctx.inactive, 'b');
}

static void test_good_update_activates_slot_b(void **state)
{
    fixture_t *f = *state;
    start(f);
    tu_snap_t a, st0;
    tu_snap(&a, f->slot_a);
    tu_snap(&st0, f->state);
    const ota_store_port_t *p = &f->ctx.ports.slot;
    assert_int_equal(p->begin(&f->ctx, (uint32_t)f->img_len), OTA_OK);
    assert_int_equal(write_all(f, f->img, f->img_len), OTA_OK);
    assert_false(tu_exists(f->slot_b)); /* still only the temp file */
    assert_int_equal(p->finish(&f->ctx, (uint32_t)f->img_len), OTA_OK);
    assert_false(tu_exists(f->slot_b));
    tu_assert_same(&st0, f->state); /* finish changed nothing that boots */
    assert_int_equal(p->activate(&f->ctx), OTA_OK);

    tu_assert_same(&a, f->slot_a); /* the running image is never touched */
    size_t len;
    uint8_t *b = tu_read(f->slot_b, &len);
    assert_non_null(b);
    assert_int_equal(len, f->img_len);
    assert_memory_equal(b, f->img, len);
    free(b);
    struct stat sb;
    assert_int_equal(stat(f->slot_b, &sb), 0);
    assert_int_equal(sb.st_mode & 0777, 0700); /* owner-only: it holds the verifier */
    ota_bootstate_t st = load(f);
    assert_int_equal(st.active, 'b');
    assert_int_equal(st.confirmed, 'a');
    assert_true(st.pending);
    assert_int_equal(st.pending_boots, 0);
    assert_int_equal(st.boot_attempts, 0);
    assert_false(st.safe_mode);
    assert_no_temp_files(f);
    p->abort(&f->ctx); /* after a successful activation: nothing to do, no harm */
    assert_true(tu_exists(f->slot_b));
}

static void test_running_from_slot_b_writes_slot_a(void **state)
{
    fixture_t *f = *state;
    tu_write(f->slot_b, f->img, f->img_len, 0755);
    ota_bootstate_t st = {'b', 'b', false, 0, 0, false, false, 0};
    assert_int_equal(ota_bootstate_store(f->dir, &st), 0);
    setenv("OTA_BOOT_SLOT", "b", 1);
    start(f);
    assert_int_equal(f->ctx.inactive, 'a');
    tu_snap_t b;
    tu_snap(&b, f->slot_b);
    const ota_store_port_t *p = &f->ctx.ports.slot;
    f->img[f->img_len - 1] ^= 0xff; /* another image */
    assert_int_equal(p->begin(&f->ctx, (uint32_t)f->img_len), OTA_OK);
    assert_int_equal(write_all(f, f->img, f->img_len), OTA_OK);
    assert_int_equal(p->finish(&f->ctx, (uint32_t)f->img_len), OTA_OK);
    assert_int_equal(p->activate(&f->ctx), OTA_OK);
    tu_assert_same(&b, f->slot_b);
    size_t len;
    uint8_t *a = tu_read(f->slot_a, &len);
    assert_int_equal(len, f->img_len);
    assert_memory_equal(a, f->img, len);
    free(a);
    st = load(f);
    assert_int_equal(st.active, 'a');
    assert_int_equal(st.confirmed, 'b');
    assert_true(st.pending);
}

static void test_update_while_pending_makes_running_slot_the_rollback_target(void **state)
{
    fixture_t *f = *state;
    /* running b, an update not yet confirmed; a holds the confirmed image */
    tu_write(f->slot_b, f->img, f->img_len, 0755);
    ota_bootstate_t st = {'b', 'a', true, 1, 1, false, false, 0};
    assert_int_equal(ota_bootstate_store(f->dir, &st), 0);
    setenv("OTA_BOOT_SLOT", "b", 1);
    start(f);
    const ota_store_port_t *p = &f->ctx.ports.slot;
    assert_int_equal(p->begin(&f->ctx, (uint32_t)f->img_len), OTA_OK);
    assert_int_equal(write_all(f, f->img, f->img_len), OTA_OK);
    assert_int_equal(p->finish(&f->ctx, (uint32_t)f->img_len), OTA_OK);
    assert_int_equal(p->activate(&f->ctx), OTA_OK);
    st = load(f);
    assert_int_equal(st.active, 'a');
    assert_int_equal(st.confirmed, 'b'); /* never the slot that was just overwritten */
    assert_true(st.pending);
    assert_int_equal(st.pending_boots, 0);
}

static void test_too_big_is_refused_before_anything_is_written(void **state)
{
    fixture_t *f = *state;
    start(f);
    tu_snap_t st0;
    tu_snap(&st0, f->state);
    const ota_store_port_t *p = &f->ctx.ports.slot;
    assert_int_equal(p->begin(&f->ctx, SLOT_SIZE + 1u), OTA_ERR_NO_SPACE);
    assert_int_equal(p->begin(&f->ctx, UINT32_MAX), OTA_ERR_NO_SPACE);
    assert_no_temp_files(f);
    assert_false(tu_exists(f->slot_b));
    tu_assert_same(&st0, f->state);
    tu_snap(&st0, f->state);
    /* exactly the capacity is fine; a byte beyond it is not (a compressed upload
     * can announce a small size and inflate to more) */
    assert_int_equal(p->begin(&f->ctx, SLOT_SIZE), OTA_OK);
    uint8_t byte = 0;
    assert_int_equal(p->write(&f->ctx, SLOT_SIZE - 1u, &byte, 1), OTA_OK);
    assert_int_equal(p->write(&f->ctx, SLOT_SIZE, &byte, 1), OTA_ERR_NO_SPACE);
    uint8_t two[2] = {0, 0};
    assert_int_equal(p->write(&f->ctx, SLOT_SIZE - 1u, two, 2), OTA_ERR_NO_SPACE);
    p->abort(&f->ctx);
    assert_no_temp_files(f);
    tu_assert_same(&st0, f->state);
}

/* Run one update that must fail at finish; then abort and check nothing changed. */
static void failing_update(fixture_t *f, const uint8_t *img, size_t len, uint32_t announce,
                           int want)
{
    tu_snap_t a, b, st0, prev;
    char prevp[4096];
    tu_path(prevp, f->dir, "boot.state.prev");
    tu_snap(&a, f->slot_a);
    tu_snap(&b, f->slot_b);
    tu_snap(&st0, f->state);
    tu_snap(&prev, prevp);
    const ota_store_port_t *p = &f->ctx.ports.slot;
    assert_int_equal(p->begin(&f->ctx, announce), OTA_OK);
    assert_int_equal(write_all(f, img, len), OTA_OK);
    assert_int_equal(p->finish(&f->ctx, announce), want);
    /* the core never activates after a failed finish; the port refuses it anyway */
    assert_int_equal(p->activate(&f->ctx), OTA_ERR_ACTIVATE);
    p->abort(&f->ctx);
    p->abort(&f->ctx);
    assert_no_temp_files(f);
    tu_assert_same(&a, f->slot_a);
    tu_assert_same(&b, f->slot_b);
    tu_assert_same(&st0, f->state);
    tu_assert_same(&prev, prevp);
}

static void test_format_check_rejects_what_cannot_boot(void **state)
{
    fixture_t *f = *state;
    tu_write(f->slot_b, "an old image in b", 17, 0755);
    start(f);
    uint8_t *img = malloc(f->img_len);
    assert_non_null(img);
    Elf64_Ehdr *h = (Elf64_Ehdr *)img;

    memset(img, 0x42, f->img_len); /* no ELF header at all */
    failing_update(f, img, f->img_len, (uint32_t)f->img_len, OTA_ERR_BAD_IMAGE);

    memcpy(img, f->img, f->img_len);
    h->e_machine = (uint16_t)(h->e_machine == EM_AARCH64 ? EM_X86_64 : EM_AARCH64);
    failing_update(f, img, f->img_len, (uint32_t)f->img_len, OTA_ERR_BAD_IMAGE);

    memcpy(img, f->img, f->img_len);
    h->e_ident[EI_CLASS] = h->e_ident[EI_CLASS] == ELFCLASS64 ? ELFCLASS32 : ELFCLASS64;
    failing_update(f, img, f->img_len, (uint32_t)f->img_len, OTA_ERR_BAD_IMAGE);

    memcpy(img, f->img, f->img_len);
    h->e_ident[EI_DATA] = h->e_ident[EI_DATA] == ELFDATA2LSB ? ELFDATA2MSB : ELFDATA2LSB;
    failing_update(f, img, f->img_len, (uint32_t)f->img_len, OTA_ERR_BAD_IMAGE);

    memcpy(img, f->img, f->img_len);
    h->e_type = ET_REL;
    failing_update(f, img, f->img_len, (uint32_t)f->img_len, OTA_ERR_BAD_IMAGE);

    failing_update(f, f->img, 10, 10, OTA_ERR_BAD_IMAGE); /* a torso */

    /* fewer bytes on disk than announced: a write error, not a format error */
    failing_update(f, f->img, f->img_len - 1, (uint32_t)f->img_len, OTA_ERR_WRITE);
    free(img);

    /* and after all that a good update still works */
    const ota_store_port_t *p = &f->ctx.ports.slot;
    assert_int_equal(p->begin(&f->ctx, (uint32_t)f->img_len), OTA_OK);
    assert_int_equal(write_all(f, f->img, f->img_len), OTA_OK);
    assert_int_equal(p->finish(&f->ctx, (uint32_t)f->img_len), OTA_OK);
    assert_int_equal(p->activate(&f->ctx), OTA_OK);
    assert_int_equal(load(f).active, 'b');
}

static void test_abort_in_every_phase_changes_nothing(void **state)
{
    fixture_t *f = *state;
    start(f);
    const ota_store_port_t *p = &f->ctx.ports.slot;
    for (int phase = 0; phase < 4; phase++) {
        tu_snap_t a, st0;
        tu_snap(&a, f->slot_a);
        tu_snap(&st0, f->state);
        p->abort(&f->ctx); /* with nothing begun */
        if (phase >= 1)
            assert_int_equal(p->begin(&f->ctx, (uint32_t)f->img_len), OTA_OK);
        if (phase >= 2)
            assert_int_equal(write_all(f, f->img, f->img_len / 2), OTA_OK);
        if (phase >= 3) {
            assert_int_equal(write_all(f, f->img, f->img_len), OTA_OK);
            assert_int_equal(p->finish(&f->ctx, (uint32_t)f->img_len), OTA_OK);
        }
        p->abort(&f->ctx);
        p->abort(&f->ctx);
        assert_no_temp_files(f);
        assert_false(tu_exists(f->slot_b));
        tu_assert_same(&a, f->slot_a);
        tu_assert_same(&st0, f->state);
        assert_int_equal(p->activate(&f->ctx), OTA_ERR_ACTIVATE);
        assert_int_equal(p->write(&f->ctx, 0, f->img, 16), OTA_ERR_WRITE);
    }
    /* a second begin forgets the first attempt */
    assert_int_equal(p->begin(&f->ctx, 100), OTA_OK);
    assert_int_equal(p->write(&f->ctx, 0, f->img, 100), OTA_OK);
    assert_int_equal(p->begin(&f->ctx, (uint32_t)f->img_len), OTA_OK);
    assert_int_equal(write_all(f, f->img, f->img_len), OTA_OK);
    assert_int_equal(p->finish(&f->ctx, (uint32_t)f->img_len), OTA_OK);
    p->abort(&f->ctx);
}

static void test_activation_failures_leave_boot_state_as_it_was(void **state)
{
    fixture_t *f = *state;
    start(f);
    const ota_store_port_t *p = &f->ctx.ports.slot;
    char blocker[4200];

    /* 1. the slot file cannot be replaced (a non-empty directory is in the way) */
    assert_int_equal(mkdir(f->slot_b, 0755), 0);
    snprintf(blocker, sizeof blocker, "%s/x", f->slot_b);
    tu_write(blocker, "x", 1, 0644);
    tu_snap_t a, st0;
    tu_snap(&a, f->slot_a);
    tu_snap(&st0, f->state);
    assert_int_equal(p->begin(&f->ctx, (uint32_t)f->img_len), OTA_OK);
    assert_int_equal(write_all(f, f->img, f->img_len), OTA_OK);
    assert_int_equal(p->finish(&f->ctx, (uint32_t)f->img_len), OTA_OK);
    assert_int_equal(p->activate(&f->ctx), OTA_ERR_ACTIVATE);
    p->abort(&f->ctx);
    tu_assert_same(&a, f->slot_a);
    tu_assert_same(&st0, f->state);
    assert_no_temp_files(f);
    tu_rm_rf(f->slot_b);

    /* 2. the new boot state cannot be written (its temp file is blocked) */
    char tmp[4096];
    tu_path(tmp, f->dir, "boot.state.tmp");
    assert_int_equal(mkdir(tmp, 0755), 0);
    snprintf(blocker, sizeof blocker, "%s/x", tmp);
    tu_write(blocker, "x", 1, 0644);
    tu_snap(&a, f->slot_a);
    tu_snap(&st0, f->state);
    assert_int_equal(p->begin(&f->ctx, (uint32_t)f->img_len), OTA_OK);
    assert_int_equal(write_all(f, f->img, f->img_len), OTA_OK);
    assert_int_equal(p->finish(&f->ctx, (uint32_t)f->img_len), OTA_OK);
    assert_int_equal(p->activate(&f->ctx), OTA_ERR_ACTIVATE);
    p->abort(&f->ctx);
    tu_assert_same(&a, f->slot_a);
    tu_assert_same(&st0, f->state); /* still boots slot a */
    assert_int_equal(load(f).active, 'a');
    tu_rm_rf(tmp);
}

static void test_begin_fails_cleanly_when_the_dir_is_unusable(void **state)
{
    fixture_t *f = *state;
    start(f);
    /* the temp file's name is taken by a non-empty directory */
    char tmp[4200], blocker[4300];
    snprintf(tmp, sizeof tmp, "%s.tmp", f->slot_b);
    assert_int_equal(mkdir(tmp, 0755), 0);
    snprintf(blocker, sizeof blocker, "%s/x", tmp);
    tu_write(blocker, "x", 1, 0644);
    const ota_store_port_t *p = &f->ctx.ports.slot;
    assert_int_equal(p->begin(&f->ctx, 100), OTA_ERR_PREPARE);
    assert_int_equal(p->write(&f->ctx, 0, f->img, 10), OTA_ERR_WRITE);
    p->abort(&f->ctx);
    assert_true(tu_exists(blocker)); /* abort removes only what begin created */
    tu_rm_rf(tmp);
}

static void test_reboot_flag_and_boot_record(void **state)
{
    fixture_t *f = *state;
    start(f);
    const ota_boot_port_t *p = &f->ctx.ports.boot;
    assert_false(ota_posix_reboot_requested(&f->ctx));
    p->reboot(&f->ctx);
    assert_true(ota_posix_reboot_requested(&f->ctx));

    /* boot record hooks: the core's view of the boot state */
    ota_bootstate_t st = {'b', 'a', true, 1, 2, false, false, 0};
    tu_write(f->slot_b, f->img, f->img_len, 0755);
    assert_int_equal(ota_bootstate_store(f->dir, &st), 0);
    ota_boot_record_t rec;
    assert_int_equal(p->load(&f->ctx, &rec), OTA_OK);
    assert_int_equal(rec.boot_attempts, 2);
    assert_true(rec.pending);
    assert_false(rec.safe_mode);
    rec.boot_attempts = 0;
    rec.pending = false; /* the image proved itself */
    assert_int_equal(p->store(&f->ctx, &rec), OTA_OK);
    st = load(f);
    assert_int_equal(st.active, 'b');
    assert_int_equal(st.confirmed, 'b');
    assert_false(st.pending);
    assert_int_equal(st.boot_attempts, 0);
    assert_int_equal(st.pending_boots, 1); /* ota-boot's counter is not the core's */
    rec.safe_mode = true;
    assert_int_equal(p->store(&f->ctx, &rec), OTA_OK);
    assert_true(load(f).safe_mode);

    /* a damaged boot state reads as zeros for the core, not as an error */
    tu_write(f->state, "junk", 4, 0644);
    char prevp[4096];
    tu_path(prevp, f->dir, "boot.state.prev");
    unlink(prevp);
    memset(&rec, 0xff, sizeof rec);
    assert_int_equal(p->load(&f->ctx, &rec), OTA_OK);
    assert_int_equal(rec.boot_attempts, 0);
    assert_false(rec.pending);
    assert_false(rec.safe_mode);
    assert_false(rec.safe_mode_request);
}

/* Pull downloads: a suspended image is reopened by resume with exactly its first
 * offset bytes (after a restart of the process, too), reads back what was written,
 * and syncs; resume beyond what the file holds refuses (begin afresh). The resume
 * point itself lives in pull.state, through the boot record hooks. */
static void test_resume_read_sync_and_pull_state(void **state)
{
    fixture_t *f = *state;
    start(f);
    const ota_store_port_t *p = &f->ctx.ports.slot;
    const uint32_t n = (uint32_t)f->img_len, cut = 3 * 8192 + 100;
    assert_int_equal(p->begin(&f->ctx, n), OTA_OK);
    assert_int_equal(write_all(f, f->img, cut + 5000), OTA_OK); /* more than kept */
    assert_int_equal(p->sync(&f->ctx), OTA_OK);
    /* the node dies: a new process opens the same state dir */
    ota_posix_free(&f->ctx);
    f->ctx_up = false;
    start(f);
    assert_int_equal(p->resume(&f->ctx, n, n), OTA_ERR_NO_SLOT); /* not that much kept */
    assert_int_equal(p->resume(&f->ctx, n, cut), OTA_OK);
    uint8_t buf[700];
    assert_int_equal(p->read(&f->ctx, 8000, buf, sizeof buf), (int)sizeof buf);
    assert_memory_equal(buf, f->img + 8000, sizeof buf);
    assert_int_equal(p->read(&f->ctx, cut, buf, sizeof buf), OTA_ERR_IO); /* dropped */
    for (uint32_t off = cut; off < n; off += 8192) {
        size_t k = n - off < 8192 ? n - off : 8192;
        assert_int_equal(p->write(&f->ctx, off, f->img + off, k), OTA_OK);
    }
    assert_int_equal(p->finish(&f->ctx, n), OTA_OK);
    assert_int_equal(p->activate(&f->ctx), OTA_OK);
    size_t len;
    uint8_t *b = tu_read(f->slot_b, &len);
    assert_int_equal(len, f->img_len);
    assert_memory_equal(b, f->img, len);
    free(b);
    assert_no_temp_files(f);

    const ota_boot_port_t *bp = &f->ctx.ports.boot;
    ota_boot_record_t rec;
    assert_int_equal(bp->load(&f->ctx, &rec), OTA_OK);
    assert_int_equal(rec.pull_offset, 0);
    rec.pull_offset = 123456;
    memset(rec.pull_id, 0xA5, sizeof rec.pull_id);
    strcpy(rec.pull_etag, "\"5f1c-3a2b\"");
    assert_int_equal(bp->store(&f->ctx, &rec), OTA_OK);
    ota_boot_record_t back;
    memset(&back, 0, sizeof back);
    assert_int_equal(bp->load(&f->ctx, &back), OTA_OK);
    assert_int_equal(back.pull_offset, 123456);
    assert_memory_equal(back.pull_id, rec.pull_id, sizeof rec.pull_id);
    assert_string_equal(back.pull_etag, "\"5f1c-3a2b\"");
    assert_int_equal(back.boot_attempts, rec.boot_attempts);
    /* cleared: the file goes */
    rec.pull_offset = 0;
    assert_int_equal(bp->store(&f->ctx, &rec), OTA_OK);
    char ps[4200];
    tu_path(ps, f->dir, "pull.state");
    assert_false(tu_exists(ps));
    /* garbage reads as no download */
    tu_write(ps, "offset=99\nid=zz\n", 16, 0600);
    assert_int_equal(bp->load(&f->ctx, &back), OTA_OK);
    assert_int_equal(back.pull_offset, 0);
}

static void test_init_errors_say_what_to_do(void **state)
{
    fixture_t *f = *state;
    static ota_posix_t c;
    char err[512], missing[4096];
    tu_path(missing, f->dir, "no-such-dir");
    ota_posix_options_t o = {
        .state_dir = missing, .bind_addr = "127.0.0.1", .port = 0, .slot_size = SLOT_SIZE};
    assert_int_equal(ota_posix_init(&c, &o, err, sizeof err), OTA_ERR_INVALID_ARG);
    assert_non_null(strstr(err, "does not exist"));
    assert_non_null(strstr(err, "ota-boot flash"));
    ota_posix_free(&c);

    o.state_dir = NULL;
    assert_int_equal(ota_posix_init(&c, &o, err, sizeof err), OTA_ERR_INVALID_ARG);
    assert_non_null(strstr(err, "--state"));
    ota_posix_free(&c);

    o.state_dir = f->dir;
    o.bind_addr = "not-an-address";
    assert_int_equal(ota_posix_init(&c, &o, err, sizeof err), OTA_ERR_INVALID_ARG);
    assert_non_null(strstr(err, "not an IPv4 or IPv6 address"));
    ota_posix_free(&c);

    /* the port is taken by another node */
    start(f);
    struct sockaddr_storage ss;
    socklen_t sl = sizeof ss;
    assert_int_equal(getsockname(f->ctx.listen_fd, (struct sockaddr *)&ss, &sl), 0);
    o.bind_addr = "127.0.0.1";
    o.port = ntohs(((struct sockaddr_in *)&ss)->sin_port);
    assert_int_equal(ota_posix_init(&c, &o, err, sizeof err), OTA_ERR_IO);
    assert_non_null(strstr(err, "Address already in use"));
    assert_non_null(strstr(err, "--port"));
    ota_posix_free(&c);
    ota_posix_free(&c); /* twice is fine */
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_port_is_complete, setup, teardown),
        cmocka_unit_test_setup_teardown(test_good_update_activates_slot_b, setup, teardown),
        cmocka_unit_test_setup_teardown(test_resume_read_sync_and_pull_state, setup, teardown),
        cmocka_unit_test_setup_teardown(test_running_from_slot_b_writes_slot_a, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(
            test_update_while_pending_makes_running_slot_the_rollback_target, setup, teardown),
        cmocka_unit_test_setup_teardown(test_too_big_is_refused_before_anything_is_written,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_format_check_rejects_what_cannot_boot, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_abort_in_every_phase_changes_nothing, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_activation_failures_leave_boot_state_as_it_was,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_begin_fails_cleanly_when_the_dir_is_unusable,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_reboot_flag_and_boot_record, setup, teardown),
        cmocka_unit_test_setup_teardown(test_init_errors_say_what_to_do, setup, teardown),
    };
    return cmocka_run_group_tests_name("port_slots", tests, NULL, NULL);
}
