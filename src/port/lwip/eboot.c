/*
 * eboot.c - the boot stage (eboot.h).
 */
#include "eboot.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

static int failf(char *err, size_t err_len, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static int failf(char *err, size_t err_len, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, err_len, fmt, ap);
    va_end(ap);
    return -1;
}

/* Does the command describe a copy inside the application + update region, from a
 * source at or above the destination's end (so the copy never overwrites it)? */
static bool copy_sane(const ota_lwip_layout_t *l, const ota_lwip_copy_t *c)
{
    uint32_t n = ota_lwip_layout_round(c->size);
    return c->size > 0 && c->dst == l->app_start && c->src % OTA_LWIP_SECTOR == 0 &&
           c->src >= c->dst + n && c->src <= l->fs_start && n <= l->fs_start - c->src;
}

static int copy_sector(ota_lwip_flash_t *f, uint32_t src, uint32_t dst, bool *skipped)
{
    static uint8_t from[OTA_LWIP_SECTOR], to[OTA_LWIP_SECTOR];
    if (ota_flash_emu_read(&f->emu, src, from, sizeof from) != 0 ||
        ota_flash_emu_read(&f->emu, dst, to, sizeof to) != 0)
        return -1;
    *skipped = memcmp(from, to, sizeof from) == 0;
    if (*skipped)
        return 0;
    if (ota_flash_emu_erase(&f->emu, dst) != 0 ||
        ota_flash_emu_write(&f->emu, dst, from, sizeof from) != 0 ||
        ota_flash_emu_read(&f->emu, dst, to, sizeof to) != 0)
        return -1;
    if (memcmp(from, to, sizeof from) != 0) {
        snprintf(f->emu.error, sizeof f->emu.error, "sector 0x%06x does not verify",
                 (unsigned)dst);
        return -1;
    }
    return 0;
}

int ota_lwip_eboot(ota_lwip_flash_t *f, ota_lwip_eboot_result_t *res, char *err, size_t err_len)
{
    const ota_lwip_layout_t *l = f->layout;
    memset(res, 0, sizeof *res);
    ota_lwip_record_t rec;
    if (ota_lwip_record_load(f, &rec) != 0)
        return failf(err, err_len, "no valid boot record (%s): flash an application first "
                     "(lwip-boot flash)", f->emu.power_lost ? "power lost" : "blank or corrupt");
    uint8_t sha[32];
    if (rec.copy.pending) {
        ota_lwip_copy_t c = rec.copy;
        if (!copy_sane(l, &c) || ota_lwip_flash_hash(f, c.src, c.size, sha) != 0 ||
            memcmp(sha, c.sha256, 32) != 0) {
            if (f->emu.power_lost)
                return failf(err, err_len, "power lost: %s", ota_flash_emu_error(&f->emu));
            /* The source changed after activate (another upload began in the same boot)
             * or the command is garbage. The copy cannot have started: a started copy
             * boots nothing else until it completes. Keep the old image if intact. */
            if (rec.app_size == 0 || ota_lwip_flash_hash(f, l->app_start, rec.app_size, sha) != 0 ||
                memcmp(sha, rec.app_sha256, 32) != 0)
                return failf(err, err_len, "the pending update does not match its hash and the "
                             "application is not whole either: nothing to boot");
            fprintf(stderr, "eboot: the pending update no longer matches its hash: dropped, "
                            "the previous application boots\n");
            rec.copy.pending = false;
            rec.boot.pending = false;
            if (ota_lwip_record_store(f, &rec) != 0)
                return failf(err, err_len, "writing the boot record: %s",
                             ota_flash_emu_error(&f->emu));
            res->dropped = true;
        } else {
            uint32_t n = ota_lwip_layout_round(c.size);
            for (uint32_t off = 0; off < n; off += OTA_LWIP_SECTOR) {
                bool skipped = false;
                if (copy_sector(f, c.src + off, c.dst + off, &skipped) != 0)
                    return failf(err, err_len, "copying sector 0x%06x: %s",
                                 (unsigned)(c.dst + off), ota_flash_emu_error(&f->emu));
                if (skipped)
                    res->sectors_skipped++;
                else
                    res->sectors_copied++;
            }
            if (ota_lwip_flash_hash(f, c.dst, c.size, sha) != 0)
                return failf(err, err_len, "reading the copy: %s", ota_flash_emu_error(&f->emu));
            if (memcmp(sha, c.sha256, 32) != 0) /* the next boot stage copies again */
                return failf(err, err_len, "the copied application does not match its hash");
            rec.app_size = c.size;
            memcpy(rec.app_sha256, c.sha256, 32);
            rec.copy.pending = false;
            if (ota_lwip_record_store(f, &rec) != 0)
                return failf(err, err_len, "writing the boot record: %s",
                             ota_flash_emu_error(&f->emu));
            res->copied = true;
        }
    }
    if (rec.app_size == 0 || rec.app_size > l->fs_start - l->app_start)
        return failf(err, err_len, "the boot record names no application");
    if (ota_lwip_flash_hash(f, l->app_start, rec.app_size, sha) != 0)
        return failf(err, err_len, "reading the application: %s", ota_flash_emu_error(&f->emu));
    if (memcmp(sha, rec.app_sha256, 32) != 0)
        return failf(err, err_len, "the application (%u bytes at 0x%06x) does not match the "
                     "hash in the boot record", (unsigned)rec.app_size, (unsigned)l->app_start);
    res->app_size = rec.app_size;
    memcpy(res->app_sha256, sha, 32);
    return 0;
}
