/*
 * ota/safe_mode.h - boot-loop detection, safe mode and image confirmation.
 *
 * A firmware calls ota_safe_mode_setup() first thing at boot, before any other
 * component starts. It counts the boot in the persistent boot record (through the
 * port's boot table) and says whether this boot must be a safe-mode boot:
 * only logging, network and OTA, so that a fixed firmware can still be uploaded.
 * ota_safe_mode_poll() from the main loop then
 *   - after boot_is_good_after without a crash: resets the counter and confirms a
 *     freshly updated image (the bootloader rolls back unconfirmed images that keep
 *     failing);
 *   - in safe mode, after reboot_timeout without an update: reboots normally once.
 * The decision rules are tabulated in docs/design.md ("Safe mode").
 */
#ifndef OTA_SAFE_MODE_H
#define OTA_SAFE_MODE_H

#include <stdbool.h>
#include <stdint.h>

/* the port's tables (ota/port.h) by name only: the defaults below are read by code
 * that has no port (the host tool's YAML reader) */
typedef struct ota_boot_port ota_boot_port_t;
typedef struct ota_log_port ota_log_port_t;

/** The defaults, the same as ESPHome's safe_mode: component. The one definition:
 *  ota_safe_mode_config_default() and the host tool's YAML reader (the values of a
 *  node file without safe_mode: settings) both use them. */
#define OTA_SAFE_MODE_DEFAULT_NUM_ATTEMPTS 10u
#define OTA_SAFE_MODE_DEFAULT_BOOT_IS_GOOD_AFTER_MS 60000u
#define OTA_SAFE_MODE_DEFAULT_REBOOT_TIMEOUT_MS 300000u

typedef struct ota_safe_mode_config {
    /** false: never enter safe mode on boot loops (counting and confirmation go on,
     *  the bootloader's rollback needs them; a manual request is still honoured). */
    bool enabled;
    /** Boots in a row without proving themselves before safe mode (default OTA_SAFE_MODE_DEFAULT_NUM_ATTEMPTS). */
    uint32_t num_attempts;
    /** Running this long proves a boot good (default 60 s:
     *  OTA_SAFE_MODE_DEFAULT_BOOT_IS_GOOD_AFTER_MS). */
    uint32_t boot_is_good_after_ms;
    /** In safe mode, reboot normally once after this long without an update
     *  (default 5 min: OTA_SAFE_MODE_DEFAULT_REBOOT_TIMEOUT_MS; 0 = stay in safe mode). */
    uint32_t reboot_timeout_ms;
    /** The running image's secure_version (its ota/app_desc.h descriptor): when the
     *  boot is confirmed, the boot record's min_secure_version rises to it, so older
     *  images are refused from then on (anti-rollback; 0: nothing rises). */
    uint32_t secure_version;
} ota_safe_mode_config_t;

typedef struct ota_safe_mode {
    const ota_boot_port_t *boot;
    const ota_log_port_t *log;
    ota_safe_mode_config_t cfg;
    uint32_t boot_ms;
    bool safe;
    bool confirmed;
    bool reboot_requested;
} ota_safe_mode_t;

void ota_safe_mode_config_default(ota_safe_mode_config_t *cfg);

/** Count this boot and decide. *safe (not NULL) is set to true when this boot must
 *  run in safe mode. boot needs load, store and reboot; log may be NULL.
 *  \return 0; OTA_ERR_INVALID_ARG (NULL, missing boot functions, num_attempts 0);
 *  OTA_ERR_IO when the record cannot be written (the firmware should still boot:
 *  *safe is then false and the module does nothing more). */
int ota_safe_mode_setup(ota_safe_mode_t *sm, const ota_boot_port_t *boot, const ota_log_port_t *log,
                        const ota_safe_mode_config_t *cfg, uint32_t now_ms, bool *safe);

/** From the main loop; never blocks. While update_in_progress (pass
 *  ota_server_update_in_progress()), the safe-mode reboot timeout waits. */
void ota_safe_mode_poll(ota_safe_mode_t *sm, uint32_t now_ms, bool update_in_progress);

/** The firmware declares itself good before boot_is_good_after (e.g. after its own
 *  self-test). Ignored in safe mode. \return 0, OTA_ERR_IO. */
int ota_safe_mode_mark_good(ota_safe_mode_t *sm);

/** true when this boot runs in safe mode. */
bool ota_safe_mode_active(const ota_safe_mode_t *sm);

/** true once this boot proved itself (boot_is_good_after, or mark_good): e.g. the
 *  moment a pull client may start checking for updates (ota/pull.h). */
bool ota_safe_mode_confirmed(const ota_safe_mode_t *sm);

#endif /* OTA_SAFE_MODE_H */
