/*
 * bootstate.h - the boot state of a Linux node: which slot boots, which one is
 * confirmed, the boot counter and the safe-mode flags. One small text file,
 * DIR/boot.state, with a CRC-32 line, replaced atomically (temp file, fsync,
 * rename, fsync of the directory); the previous generation is kept as
 * DIR/boot.state.prev. Format and fallback rules: docs/boot-state.md.
 * Shared by the POSIX port (the firmware side) and ota-boot (the bootloader).
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
} ota_bootstate_t;

/** Slot A confirmed and active, counters zero. */
void ota_bootstate_default(ota_bootstate_t *st);

/** Path of slot `slot` ('a'/'b') in dir, into out. \return 0, -1 if it does not fit. */
int ota_bootstate_slot_path(const char *dir, char slot, char *out, size_t cap);

/** Read the boot state. \return 0 when boot.state was valid; 1 when a fallback was
 *  used (boot.state missing or corrupt: boot.state.prev, else the default pointing
 *  at slot A) with the reason written to why; never fails. */
int ota_bootstate_load(const char *dir, ota_bootstate_t *st, char *why, size_t why_cap);

/** Write the boot state atomically and durably. \return 0, -1 with errno set
 *  (EINVAL: active or confirmed is not 'a'/'b'; nothing is written then). */
int ota_bootstate_store(const char *dir, const ota_bootstate_t *st);

/** fsync a directory (makes a rename in it durable). \return 0, -1 with errno set. */
int ota_bootstate_fsync_dir(const char *dir);

/** true if path is an ELF executable this machine can run (class, byte order and
 *  machine of the running process). */
bool ota_bootstate_image_ok(const char *path);

#endif /* OTA_PORT_POSIX_BOOTSTATE_H */
