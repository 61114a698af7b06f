/*
 * eboot.h - the boot stage of the lwIP port, after ESP8266 Arduino's eboot: before
 * the application starts, a pending copy command (written by the store's activate)
 * copies the verified update area over the application, sector by sector, and the
 * record then names the new application. Power-cut safe: until the copy is complete
 * and its SHA-256 checked, the command stays pending and no application boots; the
 * next boot stage resumes it, skipping the destination sectors that already equal
 * their source (so a cut at any sector, or during the record write, costs at most
 * one sector's copy again). The source is never written during the copy: it lies at
 * or above the end of the running application (Updater placement).
 */
#ifndef OTA_LWIP_EBOOT_H
#define OTA_LWIP_EBOOT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "ota_lwip_flash.h"

typedef struct ota_lwip_eboot_result {
    bool copied;              /**< a pending copy completed in this boot stage */
    bool dropped;             /**< a pending copy whose source no longer matched its
                                   hash was dropped (the old application was intact) */
    uint32_t sectors_copied;  /**< erased + written + verified */
    uint32_t sectors_skipped; /**< already equal to their source (a resumed copy) */
    uint32_t app_size;        /**< the application that boots */
    uint8_t app_sha256[32];
} ota_lwip_eboot_result_t;

/** Run the boot stage on an open flash. \return 0 when a whole application is
 *  bootable (res says which, and what was done), -1 when not (err says why: no boot
 *  record, the flash failed or lost power, no whole image). A -1 after a power cut
 *  is resumed by the next call on the reopened flash. */
int ota_lwip_eboot(ota_lwip_flash_t *f, ota_lwip_eboot_result_t *res, char *err, size_t err_len);

#endif /* OTA_LWIP_EBOOT_H */
