/*
 * auth.c - the legacy challenge methods (MD5, SHA-256) of the native protocol's
 * auth step, computed the same way by the device and the uploader.
 * The salted method (PROTOCOL.md 1.3) joins here as its own functions.
 */
#include "ota/auth.h"

#include <string.h>

#include "ota/errors.h"
#include "ota/protocol.h"
#include "ota/util.h"

size_t ota_auth_hex_len(uint8_t method)
{
    switch (method) {
    case OTA_RESP_REQUEST_AUTH_MD5: return OTA_MD5_HEX_LEN;
    case OTA_RESP_REQUEST_AUTH_SHA256: return OTA_SHA256_HEX_LEN;
    default: return 0;
    }
}

ota_hash_alg_t ota_auth_alg(uint8_t method)
{
    switch (method) {
    case OTA_RESP_REQUEST_AUTH_MD5: return OTA_HASH_MD5;
    case OTA_RESP_REQUEST_AUTH_SHA256: return OTA_HASH_SHA256;
    default: return (ota_hash_alg_t)0;
    }
}

int ota_auth_challenge_response(const ota_port_t *port, void *user, uint8_t method,
                                const char *password, const char *nonce,
                                const char *cnonce, char *out)
{
    size_t hex_len = ota_auth_hex_len(method);
    if (port == NULL || password == NULL || nonce == NULL || cnonce == NULL ||
        out == NULL || hex_len == 0)
        return OTA_ERR_INVALID_ARG;

    ota_hash_ctx_t ctx;
    uint8_t digest[OTA_SHA256_LEN];
    int rc = port->hash_start(user, &ctx, ota_auth_alg(method));
    if (rc == OTA_OK)
        rc = port->hash_update(user, &ctx, (const uint8_t *)password, strlen(password));
    if (rc == OTA_OK)
        rc = port->hash_update(user, &ctx, (const uint8_t *)nonce, hex_len);
    if (rc == OTA_OK)
        rc = port->hash_update(user, &ctx, (const uint8_t *)cnonce, hex_len);
    if (rc == OTA_OK)
        rc = port->hash_finish(user, &ctx, digest);
    if (rc == OTA_OK)
        ota_hex_encode(digest, hex_len / 2, out);
    ota_wipe(&ctx, sizeof ctx);
    ota_wipe(digest, sizeof digest);
    return rc == OTA_OK ? OTA_OK : OTA_ERR_CRYPTO;
}

int ota_auth_random_hex(const ota_port_t *port, void *user, char *out, size_t hex_len)
{
    uint8_t raw[OTA_SHA256_LEN];
    if (port == NULL || out == NULL || hex_len > 2 * sizeof raw || (hex_len & 1u))
        return OTA_ERR_INVALID_ARG;
    if (port->random(user, raw, hex_len / 2) != OTA_OK)
        return OTA_ERR_CRYPTO;
    ota_hex_encode(raw, hex_len / 2, out);
    ota_wipe(raw, sizeof raw);
    return OTA_OK;
}
