/*
 * bootstate.h - the boot state of a Linux node: which slot boots, which one is
 * confirmed, the boot counter and the safe-mode flags. One small text file,
 * DIR/boot.state, with a CRC-32 line, replaced atomically (temp file, fsync,
 * rename, fsync of the directory); the previous generation is kept as
 * DIR/boot.state.prev. Format and fallback rules: docs/boot-state.md.
 * Shared by the POSIX port (the firmware side) and ota-boot (the bootloader).
 * Results follow ota/errors.h (0, negative OTA_ERR_*); errno says more where noted.
 */
#ifndef OTA_PORT_POSIX_BOOTSTATE_H
#define OTA_PORT_POSIX_BOOTSTATE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct ota_bootstate {
    char active;            /* 'a' or 'b': the slot the next boot starts */
    char confirmed;         /* 'a' or 'b': the last slot that proved itself */
    bool pending;           /* active came from an update and is not confirmed yet */
    uint32_t pending_boots; /* boots ota-boot started of the pending image (rollback) */
    uint32_t boot_attempts; /* boots in a row that have not proven themselves */
    bool safe_mode_request; /* the next boot is a safe-mode boot */
    bool safe_mode;         /* the current boot runs in safe mode */
    uint32_t min_secure_version; /* anti-rollback minimum (optional line, 0 if absent) */
} ota_bootstate_t;

/** Slot A confirmed and active, counters zero. */
void ota_bootstate_default(ota_bootstate_t *st);

/** Path of slot `slot` ('a'/'b') in dir, into out. \return 0, OTA_ERR_TOO_LONG (it
 *  does not fit cap). */
int ota_bootstate_slot_path(const char *dir, char slot, char *out, size_t cap);

/** Where ota_bootstate_load() found the state: it never fails, so its result is not
 *  an error code but says whether boot.state itself was used (0, like success). */
typedef enum ota_bootstate_source {
    OTA_BOOTSTATE_FROM_FILE = 0, /* boot.state was valid */
    OTA_BOOTSTATE_FALLBACK = 1   /* boot.state missing or corrupt: boot.state.prev, else the
                                  * default (slot A, or B when only B holds an image) */
} ota_bootstate_source_t;

/** Read the boot state. On OTA_BOOTSTATE_FALLBACK the reason is written to why.
 *  \return OTA_BOOTSTATE_FROM_FILE, OTA_BOOTSTATE_FALLBACK; never fails. */
ota_bootstate_source_t ota_bootstate_load(const char *dir, ota_bootstate_t *st, char *why,
                                          size_t why_cap);

/** Write the boot state atomically and durably. \return 0; OTA_ERR_INVALID_ARG
 *  (active or confirmed is not 'a'/'b': nothing is written, errno EINVAL);
 *  OTA_ERR_IO with errno set (creating, writing, syncing or renaming failed). */
int ota_bootstate_store(const char *dir, const ota_bootstate_t *st);

/** fsync a directory (makes a rename in it durable). \return 0, OTA_ERR_IO with
 *  errno set. */
int ota_bootstate_fsync_dir(const char *dir);

/** true if path is an ELF executable this machine can run (class, byte order and
 *  machine of the running process, read from /proc/self/exe on each call). A yes/no
 *  by design: an unreadable file is false. */
bool ota_bootstate_image_ok(const char *path);

#endif /* OTA_PORT_POSIX_BOOTSTATE_H */
