/*
 * bootstate.c - reading and atomically writing the boot state file
 * (see bootstate.h and docs/boot-state.md).
 */
#include "bootstate.h"

#include <elf.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <zlib.h>

#include "ota/errors.h"

#define STATE_FILE "boot.state"
#define STATE_PREV "boot.state.prev"
#define STATE_TMP "boot.state.tmp"
#define HEADER "ota-boot-state 1\n"
#define COUNTER_MAX 1000000u /* largest counter value in the file */

void ota_bootstate_default(ota_bootstate_t *st)
{
    memset(st, 0, sizeof *st);
    st->active = 'a';
    st->confirmed = 'a';
}

int ota_bootstate_slot_path(const char *dir, char slot, char *out, size_t cap)
{
    int n = snprintf(out, cap, "%s/slot_%c.bin", dir, slot);
    return (n < 0 || (size_t)n >= cap) ? OTA_ERR_TOO_LONG : OTA_OK;
}

static bool is_slot(char c)
{
    return c == 'a' || c == 'b';
}

/* The file's text, or 0 when st is not a state worth writing (no such slot). */
static size_t render(const ota_bootstate_t *st, char *buf, size_t cap)
{
    if (!is_slot(st->active) || !is_slot(st->confirmed))
        return 0;
    /* counters saturate where the reader's limit is, so what is written reads back */
    unsigned pending_boots = st->pending_boots < COUNTER_MAX ? st->pending_boots : COUNTER_MAX;
    unsigned boot_attempts = st->boot_attempts < COUNTER_MAX ? st->boot_attempts : COUNTER_MAX;
    int n = snprintf(buf, cap,
                     HEADER "active=%c\nconfirmed=%c\npending=%d\npending_boots=%u\n"
                            "boot_attempts=%u\nsafe_mode_request=%d\nsafe_mode=%d\n"
                            "min_secure_version=%lu\n",
                     st->active, st->confirmed, st->pending ? 1 : 0, pending_boots,
                     boot_attempts,
                     st->safe_mode_request ? 1 : 0, st->safe_mode ? 1 : 0,
                     (unsigned long)st->min_secure_version);
    if (n < 0 || (size_t)n >= cap)
        return 0;
    uLong crc = crc32(0L, (const Bytef *)buf, (uInt)n);
    int m = snprintf(buf + n, cap - (size_t)n, "crc32=%08lx\n", (unsigned long)crc);
    if (m < 0 || (size_t)(n + m) >= cap)
        return 0;
    return (size_t)(n + m);
}

static const char *const field_names[] = {"active",        "confirmed",
                                           "pending",       "pending_boots",
                                           "boot_attempts", "safe_mode_request",
                                           "safe_mode",     "min_secure_version"};
/* min_secure_version came later: a file without it is still whole (it reads as 0) */
#define REQUIRED_FIELDS 7u

static bool parse_flag(const char *v, bool *out)
{
    if (strcmp(v, "0") == 0 || strcmp(v, "1") == 0) {
        *out = v[0] == '1';
        return true;
    }
    return false;
}

/* Parse one file's text; false (with why) when anything is off. */
static bool parse(const char *text, size_t len, ota_bootstate_t *st, const char **why)
{
    const char *crc_line = NULL;
    for (size_t i = 0; i + 6 <= len; i++)
        if ((i == 0 || text[i - 1] == '\n') && memcmp(text + i, "crc32=", 6) == 0)
            crc_line = text + i;
    if (len < sizeof HEADER - 1 || memcmp(text, HEADER, sizeof HEADER - 1) != 0) {
        *why = "unknown format";
        return false;
    }
    if (crc_line == NULL) {
        *why = "truncated (no checksum)";
        return false;
    }
    size_t body = (size_t)(crc_line - text);
    /* exactly "crc32=" + 8 lowercase hex digits + "\n", and nothing after it */
    unsigned long want = 0;
    bool crc_ok = len - body == 6 + 8 + 1 && text[len - 1] == '\n';
    for (size_t i = 0; crc_ok && i < 8; i++) {
        char h = crc_line[6 + i];
        crc_ok = (h >= '0' && h <= '9') || (h >= 'a' && h <= 'f');
        want = want << 4 | (unsigned long)(h <= '9' ? h - '0' : h - 'a' + 10);
    }
    if (!crc_ok) {
        *why = "malformed checksum line";
        return false;
    }
    if (crc32(0L, (const Bytef *)text, (uInt)body) != want) {
        *why = "checksum mismatch";
        return false;
    }
    ota_bootstate_t s;
    ota_bootstate_default(&s);
    unsigned seen = 0; /* one bit per field: each exactly once */
    char line[128];
    const char *p = text + sizeof HEADER - 1;
    while (p < crc_line) {
        const char *nl = memchr(p, '\n', (size_t)(crc_line - p));
        if (nl == NULL || (size_t)(nl - p) >= sizeof line) {
            *why = "malformed line";
            return false;
        }
        memcpy(line, p, (size_t)(nl - p));
        line[nl - p] = '\0';
        p = nl + 1;
        char *eq = strchr(line, '=');
        if (eq == NULL) {
            *why = "malformed line";
            return false;
        }
        *eq = '\0';
        const char *k = line, *v = eq + 1;
        bool ok = true;
        unsigned bit = 0;
        for (unsigned i = 0; i < sizeof field_names / sizeof field_names[0]; i++)
            if (strcmp(k, field_names[i]) == 0)
                bit = 1u << i;
        if (bit == 0 || (seen & bit) != 0) {
            *why = bit == 0 ? "unknown field" : "field given twice";
            return false;
        }
        seen |= bit;
        if (strcmp(k, "active") == 0 || strcmp(k, "confirmed") == 0) {
            ok = is_slot(v[0]) && v[1] == '\0';
            if (ok)
                *(k[0] == 'a' ? &s.active : &s.confirmed) = v[0];
        } else if (strcmp(k, "pending") == 0) {
            ok = parse_flag(v, &s.pending);
        } else if (strcmp(k, "boot_attempts") == 0 || strcmp(k, "pending_boots") == 0) {
            /* decimal digits only, at most COUNTER_MAX */
            size_t digits = strspn(v, "0123456789");
            ok = digits > 0 && digits <= 7 && v[digits] == '\0';
            unsigned long n = ok ? strtoul(v, NULL, 10) : 0;
            ok = ok && n <= COUNTER_MAX;
            *(k[0] == 'b' ? &s.boot_attempts : &s.pending_boots) = (uint32_t)n;
        } else if (strcmp(k, "safe_mode_request") == 0) {
            ok = parse_flag(v, &s.safe_mode_request);
        } else if (strcmp(k, "safe_mode") == 0) {
            ok = parse_flag(v, &s.safe_mode);
        } else if (strcmp(k, "min_secure_version") == 0) {
            size_t digits = strspn(v, "0123456789");
            ok = digits > 0 && digits <= 10 && v[digits] == '\0';
            unsigned long long n = ok ? strtoull(v, NULL, 10) : 0;
            ok = ok && n <= 0xFFFFFFFFull;
            s.min_secure_version = (uint32_t)n;
        } else {
            ok = false;
        }
        if (!ok) {
            *why = "bad value";
            return false;
        }
    }
    if ((seen & ((1u << REQUIRED_FIELDS) - 1u)) != (1u << REQUIRED_FIELDS) - 1u) {
        *why = "fields missing";
        return false;
    }
    *st = s;
    return true;
}

static bool load_file(const char *path, ota_bootstate_t *st, const char **why)
{
    char buf[512];
    FILE *f = fopen(path, "rb");
    if (f == NULL) {
        *why = errno == ENOENT ? "missing" : "unreadable";
        return false;
    }
    size_t n = fread(buf, 1, sizeof buf, f);
    bool too_big = n == sizeof buf;
    fclose(f);
    if (too_big) {
        *why = "too large";
        return false;
    }
    return parse(buf, n, st, why);
}

ota_bootstate_source_t ota_bootstate_load(const char *dir, ota_bootstate_t *st, char *why,
                                          size_t why_cap)
{
    char path[4096];
    const char *w1 = "", *w2 = "";
    snprintf(path, sizeof path, "%s/" STATE_FILE, dir);
    if (load_file(path, st, &w1))
        return OTA_BOOTSTATE_FROM_FILE;
    snprintf(path, sizeof path, "%s/" STATE_PREV, dir);
    if (load_file(path, st, &w2)) {
        snprintf(why, why_cap, "boot.state %s; using the previous boot state (slot %c)", w1,
                 st->active);
        return OTA_BOOTSTATE_FALLBACK;
    }
    ota_bootstate_default(st);
    char slot[4096];
    ota_bootstate_slot_path(dir, 'a', slot, sizeof slot);
    if (!ota_bootstate_image_ok(slot)) {
        ota_bootstate_slot_path(dir, 'b', slot, sizeof slot);
        if (ota_bootstate_image_ok(slot))
            st->active = st->confirmed = 'b';
    }
    snprintf(why, why_cap, "boot.state %s and no usable previous state; booting slot %c", w1,
             st->active);
    return OTA_BOOTSTATE_FALLBACK;
}

int ota_bootstate_fsync_dir(const char *dir)
{
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        return OTA_ERR_IO;
    int rc = fsync(fd);
    int e = errno;
    close(fd);
    errno = e;
    return rc == 0 ? OTA_OK : OTA_ERR_IO;
}

int ota_bootstate_store(const char *dir, const ota_bootstate_t *st)
{
    char buf[512], tmp[4096], cur[4096], prev[4096];
    size_t n = render(st, buf, sizeof buf);
    if (n == 0) {
        errno = EINVAL;
        return OTA_ERR_INVALID_ARG;
    }
    snprintf(tmp, sizeof tmp, "%s/" STATE_TMP, dir);
    snprintf(cur, sizeof cur, "%s/" STATE_FILE, dir);
    snprintf(prev, sizeof prev, "%s/" STATE_PREV, dir);
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0)
        return OTA_ERR_IO;
    size_t off = 0;
    while (off < n) {
        ssize_t w = write(fd, buf + off, n - off);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            int e = errno;
            close(fd);
            unlink(tmp);
            errno = e;
            return OTA_ERR_IO;
        }
        off += (size_t)w;
    }
    if (fsync(fd) != 0) {
        int e = errno;
        close(fd);
        unlink(tmp);
        errno = e;
        return OTA_ERR_IO;
    }
    close(fd);
    /* keep the current generation as the fallback, then switch atomically */
    unlink(prev);
    if (link(cur, prev) != 0 && errno != ENOENT) {
        /* not fatal: the fallback is only a second line of defence */
    }
    if (rename(tmp, cur) != 0) {
        int e = errno;
        unlink(tmp);
        errno = e;
        return OTA_ERR_IO;
    }
    return ota_bootstate_fsync_dir(dir); /* 0, OTA_ERR_IO */
}

bool ota_bootstate_image_ok(const char *path)
{
    /* what this process is (read each time: a few bytes, and no state to keep) */
    Elf64_Ehdr self;
    int fd = open("/proc/self/exe", O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return false;
    ssize_t n_self = read(fd, &self, sizeof self);
    close(fd);
    if (n_self < (ssize_t)EI_NIDENT + 20)
        return false;
    Elf64_Ehdr h;
    fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return false;
    ssize_t n = read(fd, &h, sizeof h);
    close(fd);
    if (n < (ssize_t)EI_NIDENT + 20 || memcmp(h.e_ident, ELFMAG, SELFMAG) != 0)
        return false;
    if (h.e_ident[EI_CLASS] != self.e_ident[EI_CLASS] ||
        h.e_ident[EI_DATA] != self.e_ident[EI_DATA])
        return false;
    /* e_type and e_machine sit at the same offsets in 32- and 64-bit headers */
    return (h.e_type == ET_EXEC || h.e_type == ET_DYN) && h.e_machine == self.e_machine;
}
