/*
 * gzip.h - gzip (RFC 1952) of an image in memory, with zlib.
 */
#ifndef OTA_TOOLS_OTA_GZIP_H
#define OTA_TOOLS_OTA_GZIP_H

#include <stddef.h>
#include <stdint.h>

/** A malloc'ed gzip of in[0..len) (free it), its length in *out_len; NULL on failure. */
uint8_t *ota_gzip(const uint8_t *in, size_t len, size_t *out_len);

#endif /* OTA_TOOLS_OTA_GZIP_H */
