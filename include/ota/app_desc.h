/*
 * ota/app_desc.h - the image descriptor every firmware carries, in ESP-IDF's
 * esp_app_desc_t layout (256 bytes: a magic word, secure_version, version string,
 * project name, build time and date, ...), and a streaming scanner that finds it in
 * an image as the update pipeline writes it.
 *
 * ESP-IDF puts the descriptor at offset 32 of an app image (after the image and
 * first segment headers); a Linux node's ELF has it somewhere in .rodata. The scanner
 * takes the first 4-aligned occurrence of the magic word (little-endian) followed by
 * a plausible descriptor (reserv1 zero, a printable NUL-terminated version) and keeps
 * the fields the node needs: secure_version (anti-rollback, docs/protocol.md#
 * anti-rollback) and the version string. No allocation, 64 bytes of state.
 */
#ifndef OTA_APP_DESC_H
#define OTA_APP_DESC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define OTA_APP_DESC_MAGIC 0xABCD5432u
#define OTA_APP_DESC_SIZE 256u
#define OTA_APP_DESC_OFF_SECURE_VERSION 4u
#define OTA_APP_DESC_OFF_VERSION 16u
#define OTA_APP_DESC_VERSION_LEN 32u

/** esp_app_desc_t, field for field (little-endian numbers). */
typedef struct ota_app_desc {
    uint32_t magic_word;     /**< OTA_APP_DESC_MAGIC */
    uint32_t secure_version; /**< anti-rollback: images below the node's minimum are refused */
    uint32_t reserv1[2];
    char version[32];      /**< the firmware's version text */
    char project_name[32]; /**< the node's name */
    char time[16];         /**< build time, __TIME__ */
    char date[16];         /**< build date, __DATE__ */
    char idf_ver[32];      /**< the SDK's version ("ota <version>" here) */
    uint8_t app_elf_sha256[32];
    uint16_t min_efuse_blk_rev_full;
    uint16_t max_efuse_blk_rev_full;
    uint8_t mmu_page_size;
    uint8_t reserv3[3];
    uint32_t reserv2[18];
} ota_app_desc_t;

_Static_assert(sizeof(ota_app_desc_t) == OTA_APP_DESC_SIZE, "esp_app_desc_t is 256 bytes");

/** Scanner state. Treat as opaque; zero it with ota_app_desc_scan_init(). */
typedef struct ota_app_desc_scan {
    uint32_t pos;    /* bytes seen */
    uint8_t match;   /* bytes of the magic word matched so far */
    bool found;
    uint32_t offset; /* of the descriptor, when found */
    uint32_t have;   /* bytes of head[] filled */
    uint8_t head[OTA_APP_DESC_OFF_VERSION + OTA_APP_DESC_VERSION_LEN];
} ota_app_desc_scan_t;

void ota_app_desc_scan_init(ota_app_desc_scan_t *s);
/** The next n bytes of the image, in order. */
void ota_app_desc_scan_feed(ota_app_desc_scan_t *s, const uint8_t *p, size_t n);
/** true once the descriptor's first 48 bytes were seen: *secure_version, and the
 *  version text (NUL-terminated, at most 31 characters) into version (32 bytes,
 *  may be NULL). */
bool ota_app_desc_scan_result(const ota_app_desc_scan_t *s, uint32_t *secure_version,
                              char *version);

/** The offset of the descriptor in a whole image (the scanner's rule), or -1. */
long ota_app_desc_find(const uint8_t *image, size_t len);

#endif /* OTA_APP_DESC_H */
