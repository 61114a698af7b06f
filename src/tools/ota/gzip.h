/*
 * gzip.h - gzip (RFC 1952) of an image in memory, with zlib.
 */
#ifndef OTA_TOOLS_OTA_GZIP_H
#define OTA_TOOLS_OTA_GZIP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/** A malloc'ed gzip of in[0..len) (free it), its length in *out_len; NULL on failure. */
uint8_t *ota_gzip(const uint8_t *in, size_t len, size_t *out_len);

/** ota_gzip() through a cache of compressed images keyed by the image's SHA-256
 *  ($OTA_CACHE_DIR, else $XDG_CACHE_HOME/ota/gzip, else ~/.cache/ota/gzip; the 8
 *  most recently used kept): uploading one build again, or to the next node of a
 *  fleet in a later run, does not compress it again. A cached file is used only when
 *  its gzip trailer (CRC-32 and length) matches the image; anything wrong with the
 *  cache just means compressing. *hit (may be NULL) says whether it was cached. */
uint8_t *ota_gzip_cached(const uint8_t *in, size_t len, size_t *out_len, bool *hit);

#endif /* OTA_TOOLS_OTA_GZIP_H */
