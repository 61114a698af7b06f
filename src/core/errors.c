/*
 * errors.c - ota_strerror(): one English phrase per OTA_ERR_* code.
 */
#include "ota/errors.h"

#include <stddef.h>

const char *ota_strerror(int err)
{
    switch (err) {
    case OTA_OK: return "success";
    case OTA_ERR_WOULD_BLOCK: return "operation would block";
    case OTA_ERR_CLOSED: return "connection closed by peer";
    case OTA_ERR_IO: return "I/O error";
    case OTA_ERR_TIMEOUT: return "peer timed out";
    case OTA_ERR_INVALID_ARG: return "invalid argument";
    case OTA_ERR_NO_SPACE: return "image does not fit the slot";
    case OTA_ERR_NO_SLOT: return "no update slot";
    case OTA_ERR_BUSY: return "another update is in progress";
    case OTA_ERR_BAD_MAGIC: return "bad protocol magic";
    case OTA_ERR_AUTH: return "authentication failed";
    case OTA_ERR_NO_AUTH_METHOD: return "no authentication method in common";
    case OTA_ERR_WRITE: return "writing the slot failed";
    case OTA_ERR_MD5_MISMATCH: return "MD5 of received image does not match";
    case OTA_ERR_BAD_IMAGE: return "image failed format validation";
    case OTA_ERR_ACTIVATE: return "activating the image failed";
    case OTA_ERR_INFLATE: return "corrupt gzip stream";
    case OTA_ERR_PROTOCOL: return "protocol violation";
    case OTA_ERR_UNSUPPORTED: return "unsupported request";
    case OTA_ERR_CRYPTO: return "hash or random source failed";
    case OTA_ERR_PREPARE: return "could not prepare the update slot";
    case OTA_ERR_MALFORMED: return "malformed message";
    case OTA_ERR_TOO_LONG: return "result does not fit the buffer";
    case OTA_ERR_NOT_SIGNED: return "image is not signed";
    case OTA_ERR_ROLLBACK: return "image security version is below the node's minimum";
    case OTA_ERR_BAD_SIGNATURE: return "image signature is corrupt or does not match";
    case OTA_ERR_UNTRUSTED_KEY: return "image is not signed by a trusted key";
    case OTA_ERR_SHA256_MISMATCH: return "SHA-256 of received image does not match";
    case OTA_ERR_NO_SPACE_LAYOUT: return "image does not fit next to the running application";
    case OTA_ERR_HTTP_STATUS: return "HTTP server answered with an error status";
    case OTA_ERR_REDIRECT: return "too many or refused HTTP redirects";
    case OTA_ERR_RESOLVE: return "host name could not be resolved";
    case OTA_ERR_TLS: return "TLS handshake or certificate check failed";
    default: return "unknown error";
    }
}
