/*
 * sha256.h - SHA-256 and CRC-32 for the flash side of the lwIP port: the boot stage
 * and the store check images and boot records with these, outside the core's crypto
 * table (an eboot has no table either). Thin wrappers over mbedTLS (what ESP-IDF
 * ships) and zlib's crc32, so the emulated device uses the same, well-kept code.
 */
#ifndef OTA_LWIP_SHA256_H
#define OTA_LWIP_SHA256_H

#include <stddef.h>
#include <stdint.h>

#include <mbedtls/sha256.h>

typedef struct ota_lwip_sha256 {
    mbedtls_sha256_context c;
} ota_lwip_sha256_t;

void ota_lwip_sha256_start(ota_lwip_sha256_t *s);
void ota_lwip_sha256_update(ota_lwip_sha256_t *s, const void *data, size_t len);
/** The digest; the context is released (start it again to reuse it). */
void ota_lwip_sha256_finish(ota_lwip_sha256_t *s, uint8_t out[32]);

/** CRC-32 (IEEE 802.3, zlib's) of len bytes, continuing from crc (start with 0). */
uint32_t ota_lwip_crc32(uint32_t crc, const void *data, size_t len);

#endif /* OTA_LWIP_SHA256_H */
