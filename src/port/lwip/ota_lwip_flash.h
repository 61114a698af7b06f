/*
 * ota_lwip_flash.h - the flash side of the lwIP port: an ESP8266-like NOR flash
 * (flash_emu.h) with its layout (layout.h), the core's store table for the update
 * area and boot table for the boot record on it, and the record the boot stage
 * (eboot.h) reads. The interface the lwIP node codes against is the first block
 * (agreed in the port's design: docs/lwip-port.md); the rest is for eboot, lwip-boot
 * and the tests.
 *
 * No heap: everything lives in ota_lwip_flash_t. Nothing here needs lwIP.
 */
#ifndef OTA_LWIP_FLASH_H
#define OTA_LWIP_FLASH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "flash_emu.h"
#include "layout.h"
#include "ota/port.h"
#include "sha256.h"

#define OTA_LWIP_SECTOR 4096u

/** The copy command of the boot stage (ESP8266 eboot's "copy_raw"): copy size bytes
 *  from src over dst at the next boot, then the result must hash to sha256. */
typedef struct ota_lwip_copy {
    bool pending;
    uint32_t src;
    uint32_t dst;
    uint32_t size;
    uint8_t sha256[32];
} ota_lwip_copy_t;

/** What the boot-record sectors hold (one 128-byte record each, the newer one wins). */
typedef struct ota_lwip_record {
    uint32_t seq;            /**< the newer of the two sectors has the higher one */
    uint32_t app_size;       /**< the application at app_start; 0: none bootable */
    uint8_t app_sha256[32];  /**< its SHA-256 */
    ota_lwip_copy_t copy;    /**< a pending update (written by activate) */
    ota_boot_record_t boot;  /**< the core's record (safe mode, anti-rollback) */
} ota_lwip_record_t;

#define OTA_LWIP_RECORD_SIZE 128u

typedef struct ota_lwip_flash {
    ota_flash_emu_t emu;
    const ota_lwip_layout_t *layout;
    char path[4096];
    ota_store_port_t slot;
    ota_boot_port_t boot;
    bool reboot;
    /* the update under way (the store table) */
    bool open;              /* begin succeeded, not aborted */
    bool finished;          /* finish verified it */
    uint32_t area_start;    /* [area_start, area_end): the update area */
    uint32_t area_end;
    uint32_t image_size;    /* the size begin was given */
    uint32_t erased;        /* bytes of the area erased so far (whole sectors) */
    uint32_t written;       /* bytes accepted by write (the next offset) */
    uint8_t tail[4];        /* the bytes of an unfinished 4-byte word */
    uint32_t tail_len;
    ota_lwip_sha256_t sha;  /* of the accepted bytes */
    uint8_t image_sha256[32];
} ota_lwip_flash_t;

/* ---- the interface of the node (lwip-node) ---- */

/** Open the flash file. Its size says the layout: 1 MiB = "esp8266-1m", 4 MiB =
 *  "esp8266-4m". err gets a one-line reason on failure. \return 0 or -1. */
int ota_lwip_flash_open(ota_lwip_flash_t *f, const char *path, char *err, size_t err_len);
void ota_lwip_flash_close(ota_lwip_flash_t *f);

/** Modelled timings (0 = instant): an erase of one sector sleeps erase_ms (blocking,
 *  like the real chip); the store erases at most one sector per call and answers
 *  OTA_ERR_WOULD_BLOCK in between, so the main loop keeps running. */
void ota_lwip_flash_set_timing(ota_lwip_flash_t *f, uint32_t erase_ms, uint32_t write_us_per_kib);

/** The port tables for the core (valid while f is open):
 *  slot: the update area, placed like ESP8266 Arduino's Updater: right below the
 *    filesystem area; begin() answers OTA_ERR_NO_SPACE_LAYOUT (wire 0x88) when it
 *    would overlap the running application, before anything is written. begin()
 *    erases nothing; write() erases the next sector lazily, one per call, answering
 *    OTA_ERR_WOULD_BLOCK after each. finish() reads the image back against the hash
 *    of what was written and checks it is an ELF for this machine; activate()
 *    records the pending copy command in the boot record.
 *  boot: load/store of ota_boot_record_t in the boot-record sectors (atomic; the
 *    min_secure_version never goes down), reboot() only sets a flag. */
const ota_store_port_t *ota_lwip_flash_slot(ota_lwip_flash_t *f);
const ota_boot_port_t *ota_lwip_flash_boot(ota_lwip_flash_t *f);
bool ota_lwip_flash_reboot_requested(const ota_lwip_flash_t *f);

/** The running application's bytes (its size and SHA-256), for the node's hello
 *  line. \return 0, or -1 when there is no boot record or no application. */
int ota_lwip_flash_app_info(ota_lwip_flash_t *f, uint32_t *size, uint8_t sha256[32]);

/* ---- the boot record, for eboot, lwip-boot and the tests ---- */

/** Read the newer valid record. \return 0, or -1 when neither sector holds a valid
 *  one (a blank or corrupt flash; *rec is zeroed then). */
int ota_lwip_record_load(ota_lwip_flash_t *f, ota_lwip_record_t *rec);

/** Write rec as the new record: into the sector that does NOT hold the current one
 *  (erase, then one write), with seq one higher, so a power cut at any moment leaves
 *  the old or the new record readable. rec->boot.min_secure_version is raised to the
 *  current one if lower. \return 0 or -1. */
int ota_lwip_record_store(ota_lwip_flash_t *f, ota_lwip_record_t *rec);

/** SHA-256 of len bytes of flash at off. \return 0 or -1. */
int ota_lwip_flash_hash(ota_lwip_flash_t *f, uint32_t off, uint32_t len, uint8_t out[32]);

/** Install image as the application of a blank chip (lwip-boot flash): the image at
 *  app_start, a first boot record naming it, a marker in the eboot sector.
 *  \return 0, or -1 with the reason in err. */
int ota_lwip_flash_install(ota_lwip_flash_t *f, const uint8_t *image, uint32_t len, char *err,
                           size_t err_len);

#endif /* OTA_LWIP_FLASH_H */
