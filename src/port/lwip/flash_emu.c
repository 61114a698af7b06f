/*
 * flash_emu.c - the NOR flash emulator (flash_emu.h) on a plain file with pread and
 * pwrite. No fsync: the emulated power cut is the cut hook, and a killed process
 * keeps what it wrote in the page cache, like a chip keeps what it programmed.
 */
#include "flash_emu.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static void fail(ota_flash_emu_t *e, bool loud, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void fail(ota_flash_emu_t *e, bool loud, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(e->error, sizeof e->error, fmt, ap);
    va_end(ap);
    if (loud)
        fprintf(stderr, "flash: %s\n", e->error);
}

static void set_err(char *err, size_t err_len, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void set_err(char *err, size_t err_len, const char *fmt, ...)
{
    if (err == NULL || err_len == 0)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, err_len, fmt, ap);
    va_end(ap);
}

static void sleep_us(uint64_t us)
{
    if (us == 0)
        return;
    struct timespec ts = {.tv_sec = (time_t)(us / 1000000u), .tv_nsec = (long)(us % 1000000u) * 1000};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
    }
}

static int pread_all(int fd, void *buf, size_t len, off_t off)
{
    uint8_t *p = buf;
    while (len > 0) {
        ssize_t n = pread(fd, p, len, off);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return -1;
        p += n;
        len -= (size_t)n;
        off += n;
    }
    return 0;
}

static int pwrite_all(int fd, const void *buf, size_t len, off_t off)
{
    const uint8_t *p = buf;
    while (len > 0) {
        ssize_t n = pwrite(fd, p, len, off);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return -1;
        p += n;
        len -= (size_t)n;
        off += n;
    }
    return 0;
}

int ota_flash_emu_create(const char *path, uint32_t size, char *err, size_t err_len)
{
    if (size == 0 || size % OTA_FLASH_EMU_SECTOR != 0) {
        set_err(err, err_len, "flash size %u is not a multiple of %u", (unsigned)size,
                OTA_FLASH_EMU_SECTOR);
        return -1;
    }
    int fd = open(path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0) {
        set_err(err, err_len, "cannot create %s: %s", path, strerror(errno));
        return -1;
    }
    uint8_t blank[OTA_FLASH_EMU_SECTOR];
    memset(blank, 0xFF, sizeof blank);
    for (uint32_t off = 0; off < size; off += OTA_FLASH_EMU_SECTOR) {
        if (pwrite_all(fd, blank, sizeof blank, (off_t)off) != 0) {
            set_err(err, err_len, "writing %s: %s", path, strerror(errno));
            close(fd);
            return -1;
        }
    }
    if (fsync(fd) != 0 || close(fd) != 0) {
        set_err(err, err_len, "writing %s: %s", path, strerror(errno));
        return -1;
    }
    return 0;
}

int ota_flash_emu_open(ota_flash_emu_t *e, const char *path, char *err, size_t err_len)
{
    memset(e, 0, sizeof *e);
    e->fd = -1;
    int fd = open(path, O_RDWR | O_CLOEXEC);
    if (fd < 0) {
        set_err(err, err_len, "cannot open the flash file %s: %s", path, strerror(errno));
        return -1;
    }
    struct stat st;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        set_err(err, err_len, "%s is not a regular file", path);
        close(fd);
        return -1;
    }
    if (st.st_size <= 0 || st.st_size % OTA_FLASH_EMU_SECTOR != 0 || st.st_size > (off_t)UINT32_MAX) {
        set_err(err, err_len, "%s: %lld bytes is no flash chip size (a multiple of %u)", path,
                (long long)st.st_size, OTA_FLASH_EMU_SECTOR);
        close(fd);
        return -1;
    }
    e->fd = fd;
    e->size = (uint32_t)st.st_size;
    return 0;
}

void ota_flash_emu_close(ota_flash_emu_t *e)
{
    if (e->fd >= 0)
        close(e->fd);
    e->fd = -1;
}

void ota_flash_emu_set_timing(ota_flash_emu_t *e, uint32_t erase_ms, uint32_t write_us_per_kib)
{
    e->erase_ms = erase_ms;
    e->write_us_per_kib = write_us_per_kib;
}

void ota_flash_emu_cut_after(ota_flash_emu_t *e, uint32_t n)
{
    e->cut_in = n;
}

const char *ota_flash_emu_error(const ota_flash_emu_t *e)
{
    return e->error;
}

static bool in_range(const ota_flash_emu_t *e, uint32_t off, size_t len)
{
    return e->fd >= 0 && off <= e->size && len <= (size_t)(e->size - off);
}

/* The cut hook: true when this operation is the one the power fails in. */
static bool cutting(ota_flash_emu_t *e)
{
    if (e->cut_in == 0)
        return false;
    if (--e->cut_in == 0) {
        e->power_lost = true;
        return true;
    }
    return false;
}

int ota_flash_emu_read(ota_flash_emu_t *e, uint32_t off, void *buf, size_t len)
{
    if (e->power_lost) {
        fail(e, false, "power lost");
        return -1;
    }
    if (!in_range(e, off, len)) {
        fail(e, true, "read of %zu bytes at 0x%06x is outside the %u-byte chip", len,
             (unsigned)off, (unsigned)e->size);
        return -1;
    }
    if (pread_all(e->fd, buf, len, (off_t)off) != 0) {
        fail(e, true, "read at 0x%06x: %s", (unsigned)off, strerror(errno));
        return -1;
    }
    e->bytes_read += len;
    return 0;
}

int ota_flash_emu_erase(ota_flash_emu_t *e, uint32_t off)
{
    if (e->power_lost) {
        fail(e, false, "power lost");
        return -1;
    }
    if (off % OTA_FLASH_EMU_SECTOR != 0 || !in_range(e, off, OTA_FLASH_EMU_SECTOR)) {
        e->refused++;
        fail(e, true, "erase at 0x%06x: not the start of a sector of the %u-byte chip",
             (unsigned)off, (unsigned)e->size);
        return -1;
    }
    uint8_t blank[OTA_FLASH_EMU_SECTOR];
    memset(blank, 0xFF, sizeof blank);
    /* a cut erase: half the sector is blank, the rest keeps what it had */
    size_t n = cutting(e) ? sizeof blank / 2 : sizeof blank;
    sleep_us((uint64_t)e->erase_ms * 1000u);
    if (pwrite_all(e->fd, blank, n, (off_t)off) != 0) {
        fail(e, true, "erase at 0x%06x: %s", (unsigned)off, strerror(errno));
        return -1;
    }
    if (e->power_lost) {
        fail(e, false, "power lost during the erase at 0x%06x", (unsigned)off);
        return -1;
    }
    e->erases++;
    return 0;
}

int ota_flash_emu_write(ota_flash_emu_t *e, uint32_t off, const void *buf, size_t len)
{
    if (e->power_lost) {
        fail(e, false, "power lost");
        return -1;
    }
    if (off % OTA_FLASH_EMU_ALIGN != 0 || len % OTA_FLASH_EMU_ALIGN != 0) {
        e->refused++;
        fail(e, true, "write of %zu bytes at 0x%06x: offset and length must be multiples of %u",
             len, (unsigned)off, OTA_FLASH_EMU_ALIGN);
        return -1;
    }
    if (!in_range(e, off, len)) {
        e->refused++;
        fail(e, true, "write of %zu bytes at 0x%06x is outside the %u-byte chip", len,
             (unsigned)off, (unsigned)e->size);
        return -1;
    }
    const uint8_t *p = buf;
    uint8_t old[1024];
    /* first the whole check, so a refused write changes nothing */
    for (size_t done = 0; done < len;) {
        size_t n = len - done < sizeof old ? len - done : sizeof old;
        if (pread_all(e->fd, old, n, (off_t)(off + done)) != 0) {
            fail(e, true, "write at 0x%06x: %s", (unsigned)off, strerror(errno));
            return -1;
        }
        for (size_t i = 0; i < n; i++) {
            uint8_t now = old[i], want = p[done + i];
            if ((uint8_t)(want & ~now) != 0) {
                e->refused++;
                fail(e, true,
                     "write at 0x%06x would set bits (0x%02x -> 0x%02x) in a sector that was "
                     "not erased: NOR flash only clears bits; refused",
                     (unsigned)(off + done + i), now, want);
                return -1;
            }
        }
        done += n;
    }
    /* a cut write: the first half of the words land */
    size_t n = len;
    if (cutting(e))
        n = len / 2 / OTA_FLASH_EMU_ALIGN * OTA_FLASH_EMU_ALIGN;
    sleep_us((uint64_t)e->write_us_per_kib * len / 1024u);
    if (pwrite_all(e->fd, p, n, (off_t)off) != 0) {
        fail(e, true, "write at 0x%06x: %s", (unsigned)off, strerror(errno));
        return -1;
    }
    if (e->power_lost) {
        fail(e, false, "power lost during the write at 0x%06x", (unsigned)off);
        return -1;
    }
    e->bytes_written += len;
    return 0;
}
