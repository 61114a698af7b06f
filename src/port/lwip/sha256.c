/*
 * sha256.c - the flash side's SHA-256 and CRC-32 (sha256.h) on mbedTLS and zlib.
 */
#include "sha256.h"

#include <zlib.h>

void ota_lwip_sha256_start(ota_lwip_sha256_t *s)
{
    mbedtls_sha256_init(&s->c);
    (void)mbedtls_sha256_starts_ret(&s->c, 0);
}

void ota_lwip_sha256_update(ota_lwip_sha256_t *s, const void *data, size_t len)
{
    (void)mbedtls_sha256_update_ret(&s->c, data, len);
}

void ota_lwip_sha256_finish(ota_lwip_sha256_t *s, uint8_t out[32])
{
    (void)mbedtls_sha256_finish_ret(&s->c, out);
    mbedtls_sha256_free(&s->c);
}

uint32_t ota_lwip_crc32(uint32_t crc, const void *data, size_t len)
{
    const uint8_t *p = data;
    while (len > 0) { /* zlib takes uInt lengths */
        uInt n = len > 0x40000000u ? 0x40000000u : (uInt)len;
        crc = (uint32_t)crc32((uLong)crc, p, n);
        p += n;
        len -= n;
    }
    return crc;
}
