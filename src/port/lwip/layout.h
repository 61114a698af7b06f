/*
 * layout.h - ESP8266-like flash layouts for the lwIP port, after the ESP8266 Arduino
 * core's linker scripts (flash offsets = their 0x402xxxxx addresses - 0x40200000):
 *
 *   esp8266-1m  (eagle.flash.1m64.ld, 1 MiB, 64 KiB filesystem)
 *     0x000000  eboot (the boot stage)        1 sector
 *     0x001000  application + update area    up to FS start
 *     0x0EB000  filesystem                    0x0EB000..0x0F9000 (two sectors less
 *                                             than the .ld's: they hold the boot record)
 *     0x0F9000  boot record A, 0x0FA000 boot record B
 *     0x0FB000  EEPROM, 0x0FC000 RF calibration, 0x0FD000..end SDK (Wi-Fi) parameters
 *
 *   esp8266-4m  (eagle.flash.4m2m.ld, 4 MiB, 2 MiB filesystem)
 *     0x000000  eboot; 0x001000 application + update area up to 0x200000
 *     0x200000  filesystem                    0x200000..0x3F9000 (one sector less)
 *     0x3F9000  boot record A, 0x3FA000 boot record B (the .ld leaves 0x3FA000 unused)
 *     0x3FB000  EEPROM, 0x3FC000 RF calibration, 0x3FD000..end SDK parameters
 *
 * On an ESP8266 the pending copy command of eboot lives in RTC memory; here it is
 * part of the boot record in flash (docs/lwip-port.md). The filesystem start stays
 * where the .ld puts it, so the update area is placed exactly as the Arduino
 * Updater places it: it ends at the filesystem start and begins roundup(size, 4096)
 * below it; it must not reach down into the running application, nor may the new
 * image, once copied, reach up into it.
 */
#ifndef OTA_LWIP_LAYOUT_H
#define OTA_LWIP_LAYOUT_H

#include <stdint.h>

typedef struct ota_lwip_layout {
    const char *name;      /**< "esp8266-1m", "esp8266-4m" */
    const char *ld;        /**< the ESP8266 Arduino linker script it follows */
    uint32_t flash_size;
    uint32_t eboot;        /**< the boot stage's sector (0) */
    uint32_t app_start;    /**< the application image (0x1000) */
    uint32_t fs_start;     /**< the filesystem: the end of application + update area */
    uint32_t fs_end;
    uint32_t bootrec[2];   /**< the two alternating boot-record sectors */
    uint32_t eeprom;
    uint32_t rfcal;
    uint32_t sdk;          /**< SDK (Wi-Fi) parameters up to the end of the chip */
} ota_lwip_layout_t;

/** The layout for a flash of this many bytes; NULL when none has that size. */
const ota_lwip_layout_t *ota_lwip_layout_for_size(uint32_t flash_size);

/** The layout of this name; NULL when unknown. */
const ota_lwip_layout_t *ota_lwip_layout_by_name(const char *name);

/** Every layout, NULL-terminated (for usage texts). */
extern const ota_lwip_layout_t *const ota_lwip_layouts[];

/** x rounded up to whole sectors (saturating at the top of 32 bits). */
uint32_t ota_lwip_layout_round(uint32_t x);

/** Where an update of image_size bytes goes while an application of app_size bytes
 *  runs (ESP8266 Updater::begin): [*start, *end) with *end = fs_start and *start =
 *  *end - round(image_size). \return 0, or OTA_ERR_NO_SPACE_LAYOUT when *start would
 *  fall below the running application's last sector (the Updater's rule), or when
 *  the new image, copied to app_start, would reach into *start (the power-cut-safe
 *  copy needs its source intact until it ends: at most half the region). */
int ota_lwip_layout_update_area(const ota_lwip_layout_t *l, uint32_t app_size,
                                uint32_t image_size, uint32_t *start, uint32_t *end);

/** The largest image that fits next to an application of app_size bytes now. */
uint32_t ota_lwip_layout_max_update(const ota_lwip_layout_t *l, uint32_t app_size);

#endif /* OTA_LWIP_LAYOUT_H */
