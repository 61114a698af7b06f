/*
 * ota/auth.h - the challenge computations of the native protocol's auth step,
 * shared by the device (which checks) and the uploader (which answers), so that
 * both sides compute them with one piece of code. Hashing goes through the port.
 */
#ifndef OTA_AUTH_H
#define OTA_AUTH_H

#include <stddef.h>
#include <stdint.h>

#include "ota/port.h"

/** Hex length of nonces and responses for a legacy challenge method
 *  (OTA_RESP_REQUEST_AUTH_MD5: 32, OTA_RESP_REQUEST_AUTH_SHA256: 64), 0 for others. */
size_t ota_auth_hex_len(uint8_t method);

/** The hash algorithm of a legacy challenge method; 0 for others. */
ota_hash_alg_t ota_auth_alg(uint8_t method);

/** Legacy challenge response: lowercase hex of H(password ‖ nonce ‖ cnonce), where
 *  H is MD5 or SHA-256 per method, nonce and cnonce are hex strings of
 *  ota_auth_hex_len(method) characters (not NUL-terminated), and out receives that
 *  many hex characters (not NUL-terminated).
 *  \return 0, OTA_ERR_INVALID_ARG (unknown method, NULL), OTA_ERR_CRYPTO. */
int ota_auth_challenge_response(const ota_port_t *port, void *user, uint8_t method,
                                const char *password, const char *nonce,
                                const char *cnonce, char *out);

/** Fill out with 2*len lowercase hex characters of len random bytes from the port
 *  (not NUL-terminated). \return 0, OTA_ERR_CRYPTO. */
int ota_auth_random_hex(const ota_port_t *port, void *user, char *out, size_t hex_len);

#endif /* OTA_AUTH_H */
