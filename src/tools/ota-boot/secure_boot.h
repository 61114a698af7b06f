/*
 * secure_boot.h - ota-boot's analogue of ESP-IDF Secure Boot V2: the key digests a
 * node trusts, kept in its state directory like eFuses (DIR/trusted_keys), and the
 * signature check of a slot file before it boots (ota/signature.h, with the POSIX
 * crypto table). docs/boot-state.md#secure-boot has the file format and the rules.
 */
#ifndef OTA_BOOT_SECURE_BOOT_H
#define OTA_BOOT_SECURE_BOOT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "ota/signature.h"

#define SB_MAX_KEYS 3u           /* as many as ESP32 chips have key digest eFuse slots */
#define SB_KEYS_FILE "trusted_keys"

/** The key digests a node trusts (what eFuses hold): 1 to SB_MAX_KEYS, distinct. */
typedef struct sb_keys {
    uint8_t digest[SB_MAX_KEYS][OTA_SIG_DIGEST_LEN];
    size_t n;
} sb_keys_t;

/** Add digest to keys unless it is there already. \return 1 added, 0 already there,
 *  -1 full (SB_MAX_KEYS). */
int sb_keys_add(sb_keys_t *keys, const uint8_t digest[OTA_SIG_DIGEST_LEN]);

/** The same set of keys (the order does not matter). */
bool sb_keys_equal(const sb_keys_t *a, const sb_keys_t *b);

typedef enum sb_keys_source {
    SB_KEYS_NONE = 0,   /* no DIR/trusted_keys: secure boot is off */
    SB_KEYS_OK = 1,     /* keys read: secure boot is on */
    SB_KEYS_DAMAGED = 2 /* the file exists but cannot be read or parsed: secure boot is
                         * on and nothing verifies (callers fail closed) */
} sb_keys_source_t;

/** Read DIR/trusted_keys. On SB_KEYS_DAMAGED the reason is in why and keys->n is 0. */
sb_keys_source_t sb_keys_load(const char *dir, sb_keys_t *keys, char *why, size_t why_cap);

/** Write DIR/trusted_keys atomically and durably (mode 0600, temp file, fsync,
 *  rename, fsync of DIR). \return 0, -1 with errno set. */
int sb_keys_store(const char *dir, const sb_keys_t *keys);

/** Lowercase hex of a key digest: the first 16 digits when short, else all 64. */
void sb_hex(const uint8_t digest[OTA_SIG_DIGEST_LEN], bool short_form, char out[65]);

/** The status JSON's words for a slot's signature. */
typedef enum sb_sig {
    SB_SIG_NONE = 0, /* "none": no signature sector (size or sector says so) */
    SB_SIG_VALID,    /* "valid": a block verifies against the trusted keys */
    SB_SIG_INVALID   /* "invalid": signed, but no block verifies (see why) */
} sb_sig_t;

const char *sb_sig_name(sb_sig_t sig);

/** What one slot file is: its size and SHA-256, and its signature. */
typedef struct sb_report {
    bool present;     /* the file could be opened */
    long long size;
    char sha256[65];  /* of the whole file, hex */
    sb_sig_t sig;
    const char *why;  /* an English reason: "signature valid", "not signed", "signed by
                       * an untrusted key", "signature does not match (tampered?)", ... */
    int rc;           /* ota_sig_verify_sector()'s result (OTA_ERR_IO: unreadable) */
    int trusted;      /* index in keys of the key that verified, -1 for none */
    bool have_key;    /* key is set: the verifying key, or the first untrusted one */
    uint8_t key[OTA_SIG_DIGEST_LEN];
    /* secure_version of its image descriptor (ota/app_desc.h; inside the signed bytes
     * of a signed image, as the node looks), 0 without one */
    uint32_t security_version;
    /* the file that was checked (sb_same_file: is it still that file, unchanged?) */
    unsigned long long dev, ino;
    long long ctime_sec, ctime_nsec;
} sb_report_t;

/** Hash and check the file at path in one pass. keys NULL (secure boot off): each
 *  block is checked against its own key, so "valid" means intact and signed, by a key
 *  nobody trusts yet. \return 0 (see r), -1 when the file cannot be opened or
 *  read (r->present false, errno set). */
int sb_check_file(const char *path, const sb_keys_t *keys, sb_report_t *r);

/** true if path is still the file r checked, unchanged since (same inode, size and
 *  ctime, which every write and every metadata change moves on). For the moment
 *  between the check and the exec. */
bool sb_same_file(const char *path, const sb_report_t *r);

#endif /* OTA_BOOT_SECURE_BOOT_H */
