/*
 * flash_store.c - the core's store table (the update area) and boot table (the boot
 * record) on the emulated NOR flash, as ota_lwip_flash.h describes them.
 *
 * The update follows ESP8266 Arduino's Updater: begin() only places the area (right
 * below the filesystem) and checks it leaves the running application alone; write()
 * erases each sector just before the bytes reach it (one erase per call, then
 * OTA_ERR_WOULD_BLOCK, so a slow chip never stalls the main loop for more than one
 * erase) and programs whole 4-byte words, keeping an unfinished word for the next
 * call; finish() pads the last word with 0xFF, reads everything back against the
 * SHA-256 of what the core handed over, and checks the image is an executable for
 * this machine; activate() writes the copy command for the boot stage (eboot.c) into
 * the boot record. Until activate, neither the application nor the boot record is
 * touched.
 *
 * The boot record is one 128-byte record in each of two sectors; a store writes the
 * sector that does not hold the current record, with a higher sequence number and a
 * CRC, so a power cut during the erase or the write leaves the old record the newer
 * valid one.
 */
#include "ota_lwip_flash.h"

#include <elf.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "ota/errors.h"

#define RECORD_MAGIC 0x5241544Fu /* "OTAR" little-endian */
#define RECORD_VERSION 1u

static void say(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void say(const char *fmt, ...)
{
    char line[300];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    fprintf(stderr, "lwip-flash: %s\n", line);
}

/* ------------------------------------------------------------- the record */

static void put32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
    p[2] = (uint8_t)(v >> 16);
    p[3] = (uint8_t)(v >> 24);
}

static uint32_t get32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static void encode(const ota_lwip_record_t *r, uint8_t out[OTA_LWIP_RECORD_SIZE])
{
    memset(out, 0, OTA_LWIP_RECORD_SIZE);
    put32(out + 0, RECORD_MAGIC);
    put32(out + 4, RECORD_VERSION);
    put32(out + 8, r->seq);
    put32(out + 12, r->app_size);
    memcpy(out + 16, r->app_sha256, 32);
    put32(out + 48, r->copy.pending ? 1u : 0u);
    put32(out + 52, r->copy.src);
    put32(out + 56, r->copy.dst);
    put32(out + 60, r->copy.size);
    memcpy(out + 64, r->copy.sha256, 32);
    put32(out + 96, r->boot.boot_attempts);
    put32(out + 100, (r->boot.pending ? 1u : 0u) | (r->boot.safe_mode_request ? 2u : 0u) |
                         (r->boot.safe_mode ? 4u : 0u));
    put32(out + 104, r->boot.min_secure_version);
    put32(out + 124, ota_lwip_crc32(0, out, 124));
}

static bool decode(const uint8_t in[OTA_LWIP_RECORD_SIZE], ota_lwip_record_t *r)
{
    if (get32(in) != RECORD_MAGIC || get32(in + 4) != RECORD_VERSION ||
        get32(in + 124) != ota_lwip_crc32(0, in, 124) || get32(in + 48) > 1u)
        return false;
    memset(r, 0, sizeof *r);
    r->seq = get32(in + 8);
    r->app_size = get32(in + 12);
    memcpy(r->app_sha256, in + 16, 32);
    r->copy.pending = get32(in + 48) == 1u;
    r->copy.src = get32(in + 52);
    r->copy.dst = get32(in + 56);
    r->copy.size = get32(in + 60);
    memcpy(r->copy.sha256, in + 64, 32);
    r->boot.boot_attempts = get32(in + 96);
    uint32_t flags = get32(in + 100);
    r->boot.pending = (flags & 1u) != 0;
    r->boot.safe_mode_request = (flags & 2u) != 0;
    r->boot.safe_mode = (flags & 4u) != 0;
    r->boot.min_secure_version = get32(in + 104);
    return true;
}

/* The newer valid record and its sector index; -1 when there is none. */
static int load_current(ota_lwip_flash_t *f, ota_lwip_record_t *rec)
{
    ota_lwip_record_t r[2];
    bool ok[2];
    for (int i = 0; i < 2; i++) {
        uint8_t buf[OTA_LWIP_RECORD_SIZE];
        ok[i] = ota_flash_emu_read(&f->emu, f->layout->bootrec[i], buf, sizeof buf) == 0 &&
                decode(buf, &r[i]);
    }
    int best = -1;
    if (ok[0] && ok[1]) /* serial number arithmetic: the sequence may wrap */
        best = (int32_t)(r[1].seq - r[0].seq) > 0 ? 1 : 0;
    else if (ok[0] || ok[1])
        best = ok[0] ? 0 : 1;
    if (best < 0)
        memset(rec, 0, sizeof *rec);
    else
        *rec = r[best];
    return best;
}

int ota_lwip_record_load(ota_lwip_flash_t *f, ota_lwip_record_t *rec)
{
    return load_current(f, rec) < 0 ? -1 : 0;
}

int ota_lwip_record_store(ota_lwip_flash_t *f, ota_lwip_record_t *rec)
{
    ota_lwip_record_t cur;
    int at = load_current(f, &cur);
    if (at >= 0) {
        rec->seq = cur.seq + 1u;
        if (rec->boot.min_secure_version < cur.boot.min_secure_version)
            rec->boot.min_secure_version = cur.boot.min_secure_version;
    } else {
        rec->seq = 1;
    }
    uint32_t target = f->layout->bootrec[at == 0 ? 1 : 0];
    uint8_t buf[OTA_LWIP_RECORD_SIZE];
    encode(rec, buf);
    if (ota_flash_emu_erase(&f->emu, target) != 0 ||
        ota_flash_emu_write(&f->emu, target, buf, sizeof buf) != 0)
        return -1;
    return 0;
}

int ota_lwip_flash_hash(ota_lwip_flash_t *f, uint32_t off, uint32_t len, uint8_t out[32])
{
    ota_lwip_sha256_t s;
    uint8_t buf[OTA_LWIP_SECTOR];
    ota_lwip_sha256_start(&s);
    while (len > 0) {
        uint32_t n = len < sizeof buf ? len : (uint32_t)sizeof buf;
        if (ota_flash_emu_read(&f->emu, off, buf, n) != 0)
            return -1;
        ota_lwip_sha256_update(&s, buf, n);
        off += n;
        len -= n;
    }
    ota_lwip_sha256_finish(&s, out);
    return 0;
}

/* ------------------------------------------------------------- the slot */

static int slot_begin(void *ctx, uint32_t size)
{
    ota_lwip_flash_t *f = ctx;
    f->open = f->finished = false;
    ota_lwip_record_t rec;
    if (ota_lwip_record_load(f, &rec) != 0 || rec.app_size == 0) {
        say("no boot record naming the running application: cannot place the update area");
        return OTA_ERR_PREPARE;
    }
    uint32_t start, end;
    if (ota_lwip_layout_update_area(f->layout, rec.app_size, size, &start, &end) != OTA_OK) {
        /* what ESP8266 Arduino users meet as "Not Enough Space" */
        say("not enough space: an image of %u bytes needs 0x%x bytes below the filesystem "
            "(0x%06x); the running application (%u bytes) ends at 0x%06x: at most %u "
            "bytes fit next to it (layout %s)",
            (unsigned)size, (unsigned)ota_lwip_layout_round(size), (unsigned)f->layout->fs_start,
            (unsigned)rec.app_size,
            (unsigned)(f->layout->app_start + ota_lwip_layout_round(rec.app_size)),
            (unsigned)ota_lwip_layout_max_update(f->layout, rec.app_size), f->layout->name);
        return OTA_ERR_NO_SPACE_LAYOUT;
    }
    f->area_start = start;
    f->area_end = end;
    f->image_size = size;
    f->erased = 0;
    f->written = 0;
    f->tail_len = 0;
    ota_lwip_sha256_start(&f->sha);
    f->open = true;
    return OTA_OK;
}

/* Program len bytes (a multiple of 4) at area offset off. */
static int program(ota_lwip_flash_t *f, uint32_t off, const uint8_t *p, size_t len)
{
    if (len == 0)
        return OTA_OK;
    if (ota_flash_emu_write(&f->emu, f->area_start + off, p, len) != 0) {
        say("writing the update area at 0x%06x failed: %s", (unsigned)(f->area_start + off),
            ota_flash_emu_error(&f->emu));
        return OTA_ERR_WRITE;
    }
    return OTA_OK;
}

static int slot_write(void *ctx, uint32_t offset, const uint8_t *data, size_t len)
{
    ota_lwip_flash_t *f = ctx;
    if (!f->open || f->finished || offset != f->written)
        return OTA_ERR_WRITE;
    uint32_t room = f->area_end - f->area_start;
    if (len > room || offset > room - len)
        return OTA_ERR_NO_SPACE; /* e.g. an inflated image outgrowing the wire size */
    /* the sectors the words of this call reach (the last one partly) are erased first */
    uint32_t need = ota_lwip_layout_round(offset + (uint32_t)len);
    if (f->erased < need) {
        if (ota_flash_emu_erase(&f->emu, f->area_start + f->erased) != 0) {
            say("erasing the update area at 0x%06x failed: %s",
                (unsigned)(f->area_start + f->erased), ota_flash_emu_error(&f->emu));
            return OTA_ERR_WRITE;
        }
        f->erased += OTA_LWIP_SECTOR;
        return OTA_ERR_WOULD_BLOCK; /* nothing written: the core calls again */
    }
    size_t used = 0;
    uint32_t at = offset - f->tail_len; /* where the unfinished word starts */
    if (f->tail_len > 0) {
        while (f->tail_len < 4 && used < len)
            f->tail[f->tail_len++] = data[used++];
        if (f->tail_len < 4) {
            ota_lwip_sha256_update(&f->sha, data, len);
            f->written += (uint32_t)len;
            return OTA_OK;
        }
        int rc = program(f, at, f->tail, 4);
        if (rc != OTA_OK)
            return rc;
        at += 4;
        f->tail_len = 0;
    }
    size_t whole = (len - used) / 4u * 4u;
    int rc = program(f, at, data + used, whole);
    if (rc != OTA_OK)
        return rc;
    used += whole;
    while (used < len)
        f->tail[f->tail_len++] = data[used++];
    ota_lwip_sha256_update(&f->sha, data, len);
    f->written += (uint32_t)len;
    return OTA_OK;
}

/* Is the image at the area an executable this machine runs (ELF class, byte order,
 * machine as this process's own)? The boot stage will execute it. */
static bool image_is_elf(ota_lwip_flash_t *f, uint32_t size)
{
    Elf64_Ehdr self, img;
    if (size < sizeof img)
        return false;
    int fd = open("/proc/self/exe", O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return false;
    ssize_t n = read(fd, &self, sizeof self);
    close(fd);
    if (n != (ssize_t)sizeof self || ota_flash_emu_read(&f->emu, f->area_start, &img, sizeof img) != 0)
        return false;
    return memcmp(img.e_ident, ELFMAG, SELFMAG) == 0 &&
           img.e_ident[EI_CLASS] == self.e_ident[EI_CLASS] &&
           img.e_ident[EI_DATA] == self.e_ident[EI_DATA] && img.e_machine == self.e_machine &&
           (img.e_type == ET_EXEC || img.e_type == ET_DYN);
}

static int slot_finish(void *ctx, uint32_t size)
{
    ota_lwip_flash_t *f = ctx;
    if (!f->open || size != f->written || size == 0)
        return OTA_ERR_WRITE;
    if (f->tail_len > 0) { /* the last word, padded as erased flash reads */
        uint8_t word[4] = {0xFF, 0xFF, 0xFF, 0xFF};
        memcpy(word, f->tail, f->tail_len);
        int rc = program(f, f->written - f->tail_len, word, 4);
        if (rc != OTA_OK)
            return rc;
        f->tail_len = 0;
    }
    ota_lwip_sha256_finish(&f->sha, f->image_sha256);
    uint8_t back[32];
    if (ota_lwip_flash_hash(f, f->area_start, size, back) != 0 ||
        memcmp(back, f->image_sha256, sizeof back) != 0) {
        say("the update area does not read back what was written (%u bytes at 0x%06x)",
            (unsigned)size, (unsigned)f->area_start);
        return OTA_ERR_WRITE;
    }
    if (!image_is_elf(f, size)) {
        say("the uploaded image is not an executable for this machine (no ELF header, or "
            "another class/machine)");
        return OTA_ERR_BAD_IMAGE;
    }
    f->finished = true;
    return OTA_OK;
}

static int slot_activate(void *ctx)
{
    ota_lwip_flash_t *f = ctx;
    if (!f->open || !f->finished)
        return OTA_ERR_ACTIVATE;
    ota_lwip_record_t rec;
    if (ota_lwip_record_load(f, &rec) != 0)
        return OTA_ERR_ACTIVATE;
    rec.copy.pending = true;
    rec.copy.src = f->area_start;
    rec.copy.dst = f->layout->app_start;
    rec.copy.size = f->written;
    memcpy(rec.copy.sha256, f->image_sha256, 32);
    /* as the POSIX slot's activate: the new image boots unconfirmed, counting afresh */
    rec.boot.pending = true;
    rec.boot.boot_attempts = 0;
    rec.boot.safe_mode = false;
    rec.boot.safe_mode_request = false;
    if (ota_lwip_record_store(f, &rec) != 0) {
        say("writing the boot record failed: %s", ota_flash_emu_error(&f->emu));
        return OTA_ERR_ACTIVATE;
    }
    f->open = false;
    return OTA_OK;
}

static void slot_abort(void *ctx)
{
    ota_lwip_flash_t *f = ctx;
    /* the half-written area is never referenced: nothing to undo on the chip */
    f->open = f->finished = false;
    f->tail_len = 0;
}

/* ------------------------------------------------------------- the boot table */

static int boot_load(void *ctx, ota_boot_record_t *out)
{
    ota_lwip_flash_t *f = ctx;
    ota_lwip_record_t rec;
    if (ota_lwip_record_load(f, &rec) != 0)
        say("no valid boot record: starting from zeros");
    *out = rec.boot;
    return OTA_OK;
}

static int boot_store(void *ctx, const ota_boot_record_t *in)
{
    ota_lwip_flash_t *f = ctx;
    ota_lwip_record_t rec;
    /* keep the application and copy fields: without them the record would name no
     * application, so nothing is written when they cannot be read */
    if (ota_lwip_record_load(f, &rec) != 0) {
        say("no valid boot record to update: %s", ota_flash_emu_error(&f->emu));
        return OTA_ERR_IO;
    }
    rec.boot = *in;
    if (ota_lwip_record_store(f, &rec) != 0) {
        say("writing the boot record failed: %s", ota_flash_emu_error(&f->emu));
        return OTA_ERR_IO;
    }
    return OTA_OK;
}

static void boot_reboot(void *ctx)
{
    ota_lwip_flash_t *f = ctx;
    f->reboot = true;
}

/* ------------------------------------------------------------- the handle */

int ota_lwip_flash_open(ota_lwip_flash_t *f, const char *path, char *err, size_t err_len)
{
    memset(f, 0, sizeof *f);
    if (strlen(path) >= sizeof f->path) {
        snprintf(err, err_len, "flash path too long");
        return -1;
    }
    if (ota_flash_emu_open(&f->emu, path, err, err_len) != 0)
        return -1;
    f->layout = ota_lwip_layout_for_size(f->emu.size);
    if (f->layout == NULL) {
        snprintf(err, err_len, "%s: %u bytes is no known layout (esp8266-1m: 1 MiB, "
                 "esp8266-4m: 4 MiB)", path, (unsigned)f->emu.size);
        ota_flash_emu_close(&f->emu);
        return -1;
    }
    strcpy(f->path, path);
    f->slot = (ota_store_port_t){.begin = slot_begin,
                                 .write = slot_write,
                                 .finish = slot_finish,
                                 .activate = slot_activate,
                                 .abort = slot_abort,
                                 .ctx = f};
    f->boot = (ota_boot_port_t){.load = boot_load, .store = boot_store, .reboot = boot_reboot,
                                .ctx = f};
    return 0;
}

void ota_lwip_flash_close(ota_lwip_flash_t *f)
{
    ota_flash_emu_close(&f->emu);
}

void ota_lwip_flash_set_timing(ota_lwip_flash_t *f, uint32_t erase_ms, uint32_t write_us_per_kib)
{
    ota_flash_emu_set_timing(&f->emu, erase_ms, write_us_per_kib);
}

const ota_store_port_t *ota_lwip_flash_slot(ota_lwip_flash_t *f)
{
    return &f->slot;
}

const ota_boot_port_t *ota_lwip_flash_boot(ota_lwip_flash_t *f)
{
    return &f->boot;
}

bool ota_lwip_flash_reboot_requested(const ota_lwip_flash_t *f)
{
    return f->reboot;
}

int ota_lwip_flash_app_info(ota_lwip_flash_t *f, uint32_t *size, uint8_t sha256[32])
{
    ota_lwip_record_t rec;
    if (ota_lwip_record_load(f, &rec) != 0 || rec.app_size == 0)
        return -1;
    *size = rec.app_size;
    memcpy(sha256, rec.app_sha256, 32);
    return 0;
}

int ota_lwip_flash_install(ota_lwip_flash_t *f, const uint8_t *image, uint32_t len, char *err,
                           size_t err_len)
{
    const ota_lwip_layout_t *l = f->layout;
    if (len == 0 || len > l->fs_start - l->app_start) {
        snprintf(err, err_len, "an image of %u bytes does not fit the application area of %s "
                 "(0x%x..0x%x, %u bytes)", (unsigned)len, l->name, (unsigned)l->app_start,
                 (unsigned)l->fs_start, (unsigned)(l->fs_start - l->app_start));
        return -1;
    }
    char mark[64];
    memset(mark, 0, sizeof mark);
    snprintf(mark, sizeof mark, "eboot (emulated by lwip-boot) %s", l->name);
    uint32_t whole = len / 4u * 4u;
    uint8_t last[4] = {0xFF, 0xFF, 0xFF, 0xFF};
    memcpy(last, image + whole, len - whole);
    ota_lwip_record_t rec;
    memset(&rec, 0, sizeof rec);
    rec.app_size = len;
    ota_lwip_sha256_t s;
    ota_lwip_sha256_start(&s);
    ota_lwip_sha256_update(&s, image, len);
    ota_lwip_sha256_finish(&s, rec.app_sha256);
    for (uint32_t off = 0; off < l->flash_size; off += OTA_LWIP_SECTOR) /* a chip erase */
        if (ota_flash_emu_erase(&f->emu, off) != 0)
            goto failed;
    if (ota_flash_emu_write(&f->emu, l->eboot, mark, sizeof mark) != 0 ||
        ota_flash_emu_write(&f->emu, l->app_start, image, whole) != 0 ||
        (len > whole && ota_flash_emu_write(&f->emu, l->app_start + whole, last, 4) != 0) ||
        ota_lwip_record_store(f, &rec) != 0)
        goto failed;
    return 0;
failed:
    snprintf(err, err_len, "writing the flash: %s", ota_flash_emu_error(&f->emu));
    return -1;
}
