/*
 * inflate_zlib.c - gzip (RFC 1952) inflation for compressed uploads, with zlib.
 */
#include "ota_posix.h"

#include <stdint.h>
#include <stdlib.h>

#include <zlib.h>

#include "ota/errors.h"

int ota_posix_inflate_begin(void *user)
{
    ota_posix_t *ctx = user;
    ota_posix_inflate_end(user);
    z_stream *z = calloc(1, sizeof *z);
    if (z == NULL)
        return OTA_ERR_INFLATE;
    if (inflateInit2(z, 15 + 16) != Z_OK) { /* +16: gzip wrapper, CRC and length checked */
        free(z);
        return OTA_ERR_INFLATE;
    }
    ctx->zstream = z;
    return OTA_OK;
}

int ota_posix_inflate_run(void *user, const uint8_t *in, size_t in_len, size_t *in_used,
                          uint8_t *out, size_t out_len, size_t *out_made, bool *done)
{
    ota_posix_t *ctx = user;
    z_stream *z = ctx->zstream;
    *in_used = *out_made = 0;
    *done = false;
    if (z == NULL)
        return OTA_ERR_INFLATE;
    z->next_in = (Bytef *)(uintptr_t)in;
    z->avail_in = (uInt)in_len;
    z->next_out = out;
    z->avail_out = (uInt)out_len;
    int rc = inflate(z, Z_NO_FLUSH);
    *in_used = in_len - z->avail_in;
    *out_made = out_len - z->avail_out;
    switch (rc) {
    case Z_STREAM_END:
        *done = true;
        return OTA_OK;
    case Z_OK:
        return OTA_OK;
    case Z_BUF_ERROR: /* no progress possible: more input needed, not an error */
        return OTA_OK;
    default:
        return OTA_ERR_INFLATE;
    }
}

void ota_posix_inflate_end(void *user)
{
    ota_posix_t *ctx = user;
    if (ctx->zstream != NULL) {
        inflateEnd(ctx->zstream);
        free(ctx->zstream);
        ctx->zstream = NULL;
    }
}
