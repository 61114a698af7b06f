/*
 * slots.c - where the slot is written: the POSIX port's inactive slot. An update
 * goes to DIR/slot_<x>.bin.tmp; slot_finish syncs it and checks it is an ELF
 * executable for this machine; slot_activate renames it over slot_<x>.bin and then
 * switches the boot state to it, each step atomic and synced, so a power cut at any
 * moment leaves either the old or the new image bootable. Until slot_activate, the
 * running slot and the boot state are never touched.
 */
#include "ota_posix.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "bootstate.h"
#include "ota/errors.h"

int ota_posix_slot_begin(void *user, uint32_t size)
{
    ota_posix_t *ctx = user;
    if ((uint64_t)size > ctx->slot_size) {
        ota_posix_logf(ctx, OTA_LOG_WARN, "ota",
                      "image of %u bytes does not fit the slot (%llu bytes)", (unsigned)size,
                      (unsigned long long)ctx->slot_size);
        return OTA_ERR_NO_SPACE;
    }
    ota_posix_slot_abort(user); /* a leftover from an earlier attempt */
    char slot[4096];
    if (ota_bootstate_slot_path(ctx->state_dir, ctx->inactive, slot, sizeof slot) != 0 ||
        snprintf(ctx->tmp_path, sizeof ctx->tmp_path, "%s.tmp", slot) >=
            (int)sizeof ctx->tmp_path)
        return OTA_ERR_PREPARE;
    /* owner-only: a slot holds the firmware, and the firmware its verifier */
    /* read-write: a resumed pull reads back what it kept (ota_posix_slot_read) */
    ctx->tmp_fd = open(ctx->tmp_path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (ctx->tmp_fd < 0) {
        ota_posix_logf(ctx, OTA_LOG_ERROR, "ota", "cannot create %s: %s", ctx->tmp_path,
                      strerror(errno));
        ctx->tmp_path[0] = '\0';
        return OTA_ERR_PREPARE;
    }
    ctx->finished = false;
    ctx->tmp_flushed = 0;
    return OTA_OK;
}

/* A pull download that was cut off (connection lost, power cut) left its first
 * bytes in the same temp file: reopen it and keep exactly those. */
int ota_posix_slot_resume(void *user, uint32_t size, uint32_t offset)
{
    ota_posix_t *ctx = user;
    if ((uint64_t)size > ctx->slot_size)
        return OTA_ERR_NO_SPACE;
    ota_posix_slot_close(ctx);
    char slot[4096];
    if (ota_bootstate_slot_path(ctx->state_dir, ctx->inactive, slot, sizeof slot) != 0 ||
        snprintf(ctx->tmp_path, sizeof ctx->tmp_path, "%s.tmp", slot) >=
            (int)sizeof ctx->tmp_path)
        return OTA_ERR_PREPARE;
    ctx->tmp_fd = open(ctx->tmp_path, O_RDWR | O_CLOEXEC);
    struct stat st;
    if (ctx->tmp_fd < 0 || fstat(ctx->tmp_fd, &st) != 0 || (uint64_t)st.st_size < offset ||
        ftruncate(ctx->tmp_fd, (off_t)offset) != 0) {
        ota_posix_slot_close(ctx); /* the file stays: an abort or the next begin clears it */
        return OTA_ERR_NO_SLOT;
    }
    ctx->finished = false;
    ctx->tmp_flushed = offset;
    return OTA_OK;
}

int ota_posix_slot_read(void *user, uint32_t offset, uint8_t *buf, size_t len)
{
    ota_posix_t *ctx = user;
    if (ctx->tmp_fd < 0)
        return OTA_ERR_IO;
    ssize_t n;
    do {
        n = pread(ctx->tmp_fd, buf, len, (off_t)offset);
    } while (n < 0 && errno == EINTR);
    return n > 0 ? (int)n : OTA_ERR_IO;
}

int ota_posix_slot_sync(void *user)
{
    ota_posix_t *ctx = user;
    return ctx->tmp_fd >= 0 && fdatasync(ctx->tmp_fd) == 0 ? OTA_OK : OTA_ERR_WRITE;
}

#define SLOT_WRITEBACK_STEP (4u * 1024u * 1024u)

int ota_posix_slot_write(void *user, uint32_t offset, const uint8_t *data, size_t len)
{
    ota_posix_t *ctx = user;
    if (ctx->tmp_fd < 0)
        return OTA_ERR_WRITE;
    if ((uint64_t)offset + len > ctx->slot_size)
        return OTA_ERR_NO_SPACE;
    size_t done = 0;
    while (done < len) {
        ssize_t n = pwrite(ctx->tmp_fd, data + done, len - done, (off_t)offset + (off_t)done);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            ota_posix_logf(ctx, OTA_LOG_ERROR, "ota", "writing %s: %s", ctx->tmp_path,
                          strerror(errno));
            return errno == ENOSPC ? OTA_ERR_NO_SPACE : OTA_ERR_WRITE;
        }
        done += (size_t)n;
    }
    /* start the disk writeback of every full 4 MiB behind us while the rest arrives,
     * so that the fsync at the end waits for little (it still makes it durable) */
    uint64_t end = (uint64_t)offset + len;
    if (end / SLOT_WRITEBACK_STEP > ctx->tmp_flushed / SLOT_WRITEBACK_STEP) {
        uint64_t upto = end / SLOT_WRITEBACK_STEP * SLOT_WRITEBACK_STEP;
        (void)sync_file_range(ctx->tmp_fd, (off_t)ctx->tmp_flushed,
                              (off_t)(upto - ctx->tmp_flushed), SYNC_FILE_RANGE_WRITE);
        ctx->tmp_flushed = upto;
    }
    return OTA_OK;
}

int ota_posix_slot_finish(void *user, uint32_t size)
{
    ota_posix_t *ctx = user;
    struct stat st;
    if (ctx->tmp_fd < 0 || fsync(ctx->tmp_fd) != 0 || fstat(ctx->tmp_fd, &st) != 0 ||
        (uint64_t)st.st_size != size)
        return OTA_ERR_WRITE;
    if (!ota_bootstate_image_ok(ctx->tmp_path)) {
        ota_posix_logf(ctx, OTA_LOG_WARN, "ota",
                      "the uploaded image is not an executable for this machine (ELF "
                      "class/machine mismatch or no ELF header)");
        return OTA_ERR_BAD_IMAGE;
    }
    ctx->finished = true;
    return OTA_OK;
}

int ota_posix_slot_activate(void *user)
{
    ota_posix_t *ctx = user;
    char slot[4096];
    if (!ctx->finished || ctx->tmp_fd < 0 ||
        ota_bootstate_slot_path(ctx->state_dir, ctx->inactive, slot, sizeof slot) != 0)
        return OTA_ERR_ACTIVATE;
    if (fchmod(ctx->tmp_fd, 0700) != 0 || fsync(ctx->tmp_fd) != 0)
        return OTA_ERR_ACTIVATE;
    close(ctx->tmp_fd);
    ctx->tmp_fd = -1;
    /* 1. the image file: the inactive slot now holds the new image, complete */
    if (rename(ctx->tmp_path, slot) != 0 || ota_bootstate_fsync_dir(ctx->state_dir) != 0) {
        ota_posix_logf(ctx, OTA_LOG_ERROR, "ota", "installing %s: %s", slot, strerror(errno));
        unlink(ctx->tmp_path);
        ctx->tmp_path[0] = '\0';
        return OTA_ERR_ACTIVATE;
    }
    ctx->tmp_path[0] = '\0';
    /* 2. the boot state: the next boot starts it, pending until it proves itself */
    ota_bootstate_t st;
    char why[256];
    ota_bootstate_load(ctx->state_dir, &st, why, sizeof why);
    /* The image we run becomes the rollback target. It has proven itself, or it is
     * still pending but has just taken an update: then the slot being replaced held
     * the confirmed image, and the running one is the only one left that works. */
    if (st.pending && st.confirmed != ctx->active)
        ota_posix_logf(ctx, OTA_LOG_WARN, "ota",
                      "slot %c is not confirmed yet but took an update that replaces the "
                      "confirmed slot %c: slot %c becomes the rollback target",
                      ctx->active, st.confirmed, ctx->active);
    st.confirmed = ctx->active;
    st.active = ctx->inactive;
    st.pending = true;
    st.pending_boots = 0;
    st.boot_attempts = 0;
    st.safe_mode = false;
    st.safe_mode_request = false;
    if (ota_bootstate_store(ctx->state_dir, &st) != 0) {
        ota_posix_logf(ctx, OTA_LOG_ERROR, "ota", "writing the boot state: %s", strerror(errno));
        return OTA_ERR_ACTIVATE;
    }
    return OTA_OK;
}

/* Close the temp file but keep it (a suspended pull resumes from it). */
void ota_posix_slot_close(ota_posix_t *ctx)
{
    if (ctx->tmp_fd >= 0) {
        close(ctx->tmp_fd);
        ctx->tmp_fd = -1;
    }
    ctx->finished = false;
}

void ota_posix_slot_abort(void *user)
{
    ota_posix_t *ctx = user;
    ota_posix_slot_close(ctx);
    if (ctx->tmp_path[0] != '\0') {
        unlink(ctx->tmp_path);
        ctx->tmp_path[0] = '\0';
    }
    ctx->finished = false;
}

/* ---- the data slot: ArduinoOTA filesystem images, DIR/data.bin ---- */

int ota_posix_data_begin(void *user, uint32_t size)
{
    ota_posix_t *ctx = user;
    if ((uint64_t)size > ctx->slot_size)
        return OTA_ERR_NO_SPACE;
    ota_posix_slot_abort(user);
    if (snprintf(ctx->tmp_path, sizeof ctx->tmp_path, "%s/data.bin.tmp", ctx->state_dir) >=
        (int)sizeof ctx->tmp_path)
        return OTA_ERR_PREPARE;
    ctx->tmp_fd = open(ctx->tmp_path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (ctx->tmp_fd < 0) {
        ctx->tmp_path[0] = '\0';
        return OTA_ERR_PREPARE;
    }
    return OTA_OK;
}

int ota_posix_data_finish(void *user, uint32_t size)
{
    ota_posix_t *ctx = user;
    struct stat st;
    char path[4200];
    if (ctx->tmp_fd < 0 || fsync(ctx->tmp_fd) != 0 || fstat(ctx->tmp_fd, &st) != 0 ||
        (uint64_t)st.st_size != size)
        return OTA_ERR_WRITE;
    close(ctx->tmp_fd);
    ctx->tmp_fd = -1;
    snprintf(path, sizeof path, "%s/data.bin", ctx->state_dir);
    if (rename(ctx->tmp_path, path) != 0 || ota_bootstate_fsync_dir(ctx->state_dir) != 0) {
        unlink(ctx->tmp_path);
        ctx->tmp_path[0] = '\0';
        return OTA_ERR_WRITE;
    }
    ctx->tmp_path[0] = '\0';
    return OTA_OK;
}
