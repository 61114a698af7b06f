/*
 * ota_posix.h - the POSIX (Linux) port of the OTA core.
 *
 * crypto_mbedtls.c: hashing + random (used by the node and by the host tool).
 * The node-side parts (network, slots, boot state, inflate) are declared below them.
 */
#ifndef OTA_PORT_POSIX_OTA_POSIX_H
#define OTA_PORT_POSIX_OTA_POSIX_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "ota/port.h"

/* ---- crypto_mbedtls.c ---- */
int ota_posix_hash_start(void *user, ota_hash_ctx_t *ctx, ota_hash_alg_t alg);
int ota_posix_hash_update(void *user, ota_hash_ctx_t *ctx, const uint8_t *data, size_t len);
int ota_posix_hash_finish(void *user, ota_hash_ctx_t *ctx, uint8_t *out);
int ota_posix_random(void *user, uint8_t *buf, size_t len);
int ota_posix_hmac_sha256(void *user, const uint8_t *key, size_t key_len, const uint8_t *msg,
                          size_t msg_len, uint8_t *out);
/** PBKDF2-HMAC-SHA256 (host side only: the uploader and `ota hash-password`).
 *  \return 0, OTA_ERR_CRYPTO. */
int ota_posix_pbkdf2_sha256(const char *password, size_t password_len, const uint8_t *salt,
                            size_t salt_len, uint32_t iterations, uint8_t *out, size_t out_len);
/** Set the hash_*, hmac_sha256 and random members of *port to the functions above
 *  (they ignore their user argument). */
void ota_posix_crypto_fill(ota_port_t *port);

#endif /* OTA_PORT_POSIX_OTA_POSIX_H */
