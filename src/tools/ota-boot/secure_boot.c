/*
 * secure_boot.c - trusted keys in the state directory and the signature check of a
 * slot file (see secure_boot.h).
 */
#include "secure_boot.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <mbedtls/sha256.h>

#include "bootstate.h"
#include "ota/app_desc.h"
#include "ota/util.h"
#include "ota_posix.h"

#define KEYS_TMP SB_KEYS_FILE ".tmp"
#define KEYS_FILE_MAX 1024 /* three 65-byte lines, and room to say "too large" */

/* ------------------------------------------------------------------ keys */

int sb_keys_add(sb_keys_t *keys, const uint8_t digest[OTA_SIG_DIGEST_LEN])
{
    for (size_t i = 0; i < keys->n; i++)
        if (memcmp(keys->digest[i], digest, OTA_SIG_DIGEST_LEN) == 0)
            return 0;
    if (keys->n >= SB_MAX_KEYS)
        return -1;
    memcpy(keys->digest[keys->n++], digest, OTA_SIG_DIGEST_LEN);
    return 1;
}

static bool has_key(const sb_keys_t *keys, const uint8_t *digest)
{
    for (size_t i = 0; i < keys->n; i++)
        if (memcmp(keys->digest[i], digest, OTA_SIG_DIGEST_LEN) == 0)
            return true;
    return false;
}

bool sb_keys_equal(const sb_keys_t *a, const sb_keys_t *b)
{
    /* both sets hold distinct digests (sb_keys_add, sb_keys_load) */
    if (a->n != b->n)
        return false;
    for (size_t i = 0; i < a->n; i++)
        if (!has_key(b, a->digest[i]))
            return false;
    return true;
}

void sb_hex(const uint8_t digest[OTA_SIG_DIGEST_LEN], bool short_form, char out[65])
{
    size_t n = short_form ? 8 : OTA_SIG_DIGEST_LEN;
    for (size_t i = 0; i < n; i++)
        snprintf(out + 2 * i, 3, "%02x", digest[i]);
    out[2 * n] = '\0';
}

sb_keys_source_t sb_keys_load(const char *dir, sb_keys_t *keys, char *why, size_t why_cap)
{
    char path[4200], buf[KEYS_FILE_MAX + 1];
    memset(keys, 0, sizeof *keys);
    snprintf(path, sizeof path, "%s/" SB_KEYS_FILE, dir);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        if (errno == ENOENT)
            return SB_KEYS_NONE;
        snprintf(why, why_cap, "%s: %s", path, strerror(errno));
        return SB_KEYS_DAMAGED;
    }
    size_t len = 0;
    ssize_t n;
    while (len < sizeof buf && (n = read(fd, buf + len, sizeof buf - len)) != 0) {
        if (n < 0) {
            if (errno == EINTR)
                continue;
            snprintf(why, why_cap, "%s: %s", path, strerror(errno));
            close(fd);
            return SB_KEYS_DAMAGED;
        }
        len += (size_t)n;
    }
    close(fd);
    if (len > KEYS_FILE_MAX) {
        snprintf(why, why_cap, "%s is too large to be a list of key digests", path);
        return SB_KEYS_DAMAGED;
    }
    /* lines of exactly 64 hex digits; the last newline may be missing */
    unsigned line = 0;
    for (size_t p = 0; p < len;) {
        line++;
        const char *nl = memchr(buf + p, '\n', len - p);
        size_t l = nl != NULL ? (size_t)(nl - (buf + p)) : len - p;
        uint8_t d[OTA_SIG_DIGEST_LEN];
        bool ok = l == 2 * OTA_SIG_DIGEST_LEN &&
                  ota_hex_decode(buf + p, OTA_SIG_DIGEST_LEN, d) == 0;
        if (!ok) {
            snprintf(why, why_cap, "%s, line %u: not a key digest (64 hex digits)", path, line);
            memset(keys, 0, sizeof *keys);
            return SB_KEYS_DAMAGED;
        }
        if (sb_keys_add(keys, d) < 0) {
            snprintf(why, why_cap, "%s holds more than %u keys", path, SB_MAX_KEYS);
            memset(keys, 0, sizeof *keys);
            return SB_KEYS_DAMAGED;
        }
        p += l + (nl != NULL ? 1 : 0);
    }
    if (keys->n == 0) {
        snprintf(why, why_cap, "%s holds no key", path);
        return SB_KEYS_DAMAGED;
    }
    return SB_KEYS_OK;
}

int sb_keys_store(const char *dir, const sb_keys_t *keys)
{
    char tmp[4200], path[4200], text[SB_MAX_KEYS * 65];
    size_t len = 0;
    for (size_t i = 0; i < keys->n; i++) {
        sb_hex(keys->digest[i], false, text + len);
        len += 64;
        text[len++] = '\n';
    }
    snprintf(tmp, sizeof tmp, "%s/" KEYS_TMP, dir);
    snprintf(path, sizeof path, "%s/" SB_KEYS_FILE, dir);
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (fd < 0)
        return -1;
    size_t off = 0;
    int rc = fchmod(fd, 0600);
    while (rc == 0 && off < len) {
        ssize_t w = write(fd, text + off, len - off);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            rc = -1;
        } else {
            off += (size_t)w;
        }
    }
    if (rc == 0)
        rc = fsync(fd);
    int e = errno;
    close(fd);
    if (rc == 0 && rename(tmp, path) != 0) {
        e = errno;
        rc = -1;
    }
    if (rc != 0) {
        unlink(tmp);
        errno = e;
        return -1;
    }
    return ota_bootstate_fsync_dir(dir) == 0 ? 0 : -1;
}

/* ------------------------------------------------------------ a slot file */

const char *sb_sig_name(sb_sig_t sig)
{
    switch (sig) {
    case SB_SIG_VALID: return "valid";
    case SB_SIG_INVALID: return "invalid";
    case SB_SIG_NONE: break;
    }
    return "none";
}

static void hex_of(const uint8_t *d, char out[65])
{
    sb_hex(d, false, out);
}

/* The trusted set of a self-check: every parsed block's own key. */
static size_t own_keys(const uint8_t *sector,
                       uint8_t digests[OTA_SIG_MAX_BLOCKS][OTA_SIG_DIGEST_LEN])
{
    size_t n = 0;
    for (unsigned i = 0; i < OTA_SIG_MAX_BLOCKS; i++) {
        ota_sig_block_t b;
        if (ota_sig_block_parse(sector + i * OTA_SIG_BLOCK_SIZE, &b) != OTA_OK)
            continue;
        mbedtls_sha256_ret(b.key, b.key_len, digests[n], 0);
        n++;
    }
    return n;
}

static void classify(sb_report_t *r, int rc, const ota_sig_result_t *res)
{
    r->rc = rc;
    switch (rc) {
    case OTA_OK:
        r->sig = SB_SIG_VALID;
        r->why = "signature valid";
        break;
    case OTA_ERR_NOT_SIGNED:
        r->sig = SB_SIG_NONE;
        r->why = "not signed";
        break;
    case OTA_ERR_UNTRUSTED_KEY:
        r->sig = SB_SIG_INVALID;
        r->why = "signed by an untrusted key";
        break;
    case OTA_ERR_BAD_SIGNATURE:
        r->sig = SB_SIG_INVALID;
        r->why = "signature does not match (tampered?)";
        break;
    case OTA_ERR_UNSUPPORTED:
        r->sig = SB_SIG_INVALID;
        r->why = "signed with a scheme ota-boot cannot check";
        break;
    default:
        r->sig = SB_SIG_INVALID;
        r->why = "its signature cannot be checked";
        break;
    }
    if (res == NULL)
        return;
    /* the key to name in messages: the one that verified, else the first block that
     * got as far as its key (an untrusted one, or a trusted one whose check failed) */
    int pick = res->valid_block;
    for (unsigned i = 0; pick < 0 && i < OTA_SIG_MAX_BLOCKS; i++)
        if (res->status[i] >= OTA_SIG_UNTRUSTED && res->status[i] <= OTA_SIG_BAD_SIGNATURE)
            pick = (int)i;
    if (pick >= 0) {
        memcpy(r->key, res->key_digest[pick], OTA_SIG_DIGEST_LEN);
        r->have_key = true;
    }
    r->trusted = res->trusted;
}

int sb_check_file(const char *path, const sb_keys_t *keys, sb_report_t *r)
{
    memset(r, 0, sizeof *r);
    r->trusted = -1;
    r->sig = SB_SIG_NONE;
    r->why = "not signed";
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    r->present = true;
    struct stat sb;
    if (fstat(fd, &sb) != 0) {
        int e = errno;
        close(fd);
        classify(r, OTA_ERR_IO, NULL);
        r->present = false;
        errno = e;
        return -1;
    }
    r->dev = (unsigned long long)sb.st_dev;
    r->ino = (unsigned long long)sb.st_ino;
    r->ctime_sec = (long long)sb.st_ctim.tv_sec;
    r->ctime_nsec = (long long)sb.st_ctim.tv_nsec;
    /* the split of a signed image of this size (ota_sig_split), or none */
    uint32_t image_len = 0;
    bool signed_size = sb.st_size >= 0 && (uint64_t)sb.st_size <= UINT32_MAX &&
                       ota_sig_split((uint32_t)sb.st_size, &image_len) == OTA_OK;
    mbedtls_sha256_context whole, image;
    mbedtls_sha256_init(&whole);
    mbedtls_sha256_init(&image);
    mbedtls_sha256_starts_ret(&whole, 0);
    mbedtls_sha256_starts_ret(&image, 0);
    ota_app_desc_scan_t desc;
    ota_app_desc_scan_init(&desc);
    static uint8_t buf[65536];
    uint8_t sector[OTA_SIG_SECTOR_SIZE];
    uint64_t off = 0;
    bool io_error = false;
    for (;;) {
        ssize_t n = read(fd, buf, sizeof buf);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            io_error = true;
            break;
        }
        if (n == 0)
            break;
        mbedtls_sha256_update_ret(&whole, buf, (size_t)n);
        if (!signed_size)
            ota_app_desc_scan_feed(&desc, buf, (size_t)n);
        if (signed_size) {
            /* [off, off + n) split at image_len: hashed | into the sector */
            uint64_t end = off + (uint64_t)n;
            uint64_t cut = end < image_len ? end : image_len;
            size_t to_image = off < image_len ? (size_t)(cut - off) : 0;
            if (to_image > 0) {
                mbedtls_sha256_update_ret(&image, buf, to_image);
                ota_app_desc_scan_feed(&desc, buf, to_image);
            }
            for (size_t i = to_image; i < (size_t)n; i++) {
                uint64_t at = off + i - image_len;
                if (at < OTA_SIG_SECTOR_SIZE)
                    sector[at] = buf[i];
            }
        }
        off += (uint64_t)n;
    }
    int e = errno;
    close(fd);
    uint8_t dig[OTA_SIG_DIGEST_LEN], image_dig[OTA_SIG_DIGEST_LEN];
    mbedtls_sha256_finish_ret(&whole, dig);
    mbedtls_sha256_finish_ret(&image, image_dig);
    mbedtls_sha256_free(&whole);
    mbedtls_sha256_free(&image);
    r->size = (long long)off;
    hex_of(dig, r->sha256);
    uint32_t sv = 0;
    if (ota_app_desc_scan_result(&desc, &sv, NULL))
        r->security_version = sv;
    if (io_error) {
        classify(r, OTA_ERR_IO, NULL);
        r->why = "it cannot be read";
        r->present = false;
        errno = e;
        return -1;
    }
    if (!signed_size) {
        classify(r, OTA_ERR_NOT_SIGNED, NULL);
        return 0;
    }
    if (off != (uint64_t)sb.st_size) {
        classify(r, OTA_ERR_IO, NULL);
        r->why = "it changed while it was being checked";
        return 0;
    }
    ota_sig_trusted_t trusted[SB_MAX_KEYS > OTA_SIG_MAX_BLOCKS ? SB_MAX_KEYS : OTA_SIG_MAX_BLOCKS];
    uint8_t own[OTA_SIG_MAX_BLOCKS][OTA_SIG_DIGEST_LEN];
    size_t n_trusted = 0;
    memset(trusted, 0, sizeof trusted);
    if (keys != NULL) {
        for (size_t i = 0; i < keys->n; i++)
            trusted[n_trusted++].digest = keys->digest[i];
    } else {
        size_t n = own_keys(sector, own);
        for (size_t i = 0; i < n; i++)
            trusted[n_trusted++].digest = own[i];
    }
    ota_sig_result_t res;
    int rc = ota_sig_verify_sector(&ota_posix_crypto, sector, sizeof sector, image_dig,
                                   trusted, n_trusted, &res);
    classify(r, rc, &res);
    if (keys == NULL)
        r->trusted = -1; /* no trusted key: only "which key signed it" means something */
    return 0;
}

bool sb_same_file(const char *path, const sb_report_t *r)
{
    struct stat sb;
    return r->present && stat(path, &sb) == 0 && (unsigned long long)sb.st_dev == r->dev &&
           (unsigned long long)sb.st_ino == r->ino && (long long)sb.st_size == r->size &&
           (long long)sb.st_ctim.tv_sec == r->ctime_sec &&
           (long long)sb.st_ctim.tv_nsec == r->ctime_nsec;
}
