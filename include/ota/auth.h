/*
 * ota/auth.h - the challenge computations of the native protocol's auth step,
 * shared by the device (which checks) and the uploader (which answers), so that
 * both sides compute them with one piece of code. Hashing goes through the port's
 * crypto table.
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
int ota_auth_challenge_response(const ota_crypto_port_t *c, uint8_t method, const char *password,
                                const char *nonce, const char *cnonce, char *out);

/** Fill out with 2*len lowercase hex characters of len random bytes from the crypto table
 *  (not NUL-terminated). \return 0, OTA_ERR_CRYPTO. */
int ota_auth_random_hex(const ota_crypto_port_t *c, char *out, size_t hex_len);

/* ------------------------------------------------------------------------
 * Salted auth (docs/protocol.md#native-salted, method byte 0x10): SCRAM-SHA-256 in binary framing.
 * The device keeps only the verifier (salt, iterations, StoredKey, ServerKey), which
 * does not let anyone authenticate; the uploader derives SaltedPassword with PBKDF2
 * (outside the core: it is the one expensive step) and checks the device's
 * ServerSignature before sending any firmware.
 * ------------------------------------------------------------------------ */

#define OTA_SALT_LEN 16
#define OTA_SALTED_NONCE_LEN 32
#define OTA_SALTED_KEY_LEN 32
#define OTA_SALTED_MIN_ITERATIONS 4096u
/** Label that opens every AuthMessage. */
#define OTA_SALTED_LABEL "ota-salted-auth-v1"
#define OTA_SALTED_LABEL_LEN 18
/** "10" + salt + iterations + server nonce, as the device sends it. */
#define OTA_SALTED_CHALLENGE_LEN (1 + OTA_SALT_LEN + 4 + OTA_SALTED_NONCE_LEN)
/** client nonce + ClientProof, as the client answers. */
#define OTA_SALTED_REPLY_LEN (OTA_SALTED_NONCE_LEN + OTA_SALTED_KEY_LEN)
#define OTA_SALTED_AUTH_MESSAGE_LEN                                                        \
    (OTA_SALTED_LABEL_LEN + 2 * OTA_SALTED_NONCE_LEN + OTA_SALT_LEN + 4)
/** Longest verifier text: "SCRAM-SHA-256$" 4294967295 ":" b64(16) "$" b64(32) ":" b64(32). */
#define OTA_VERIFIER_TEXT_MAX 140

typedef struct ota_verifier {
    uint32_t iterations;
    uint8_t salt[OTA_SALT_LEN];
    uint8_t stored_key[OTA_SALTED_KEY_LEN];
    uint8_t server_key[OTA_SALTED_KEY_LEN];
} ota_verifier_t;

/** Parse "SCRAM-SHA-256$<iterations>:<b64 salt>$<b64 StoredKey>:<b64 ServerKey>"
 *  (PostgreSQL's text form; the salt must be 16 bytes, the keys 32, iterations
 *  >= OTA_SALTED_MIN_ITERATIONS). \return 0, OTA_ERR_INVALID_ARG. */
int ota_verifier_parse(const char *text, ota_verifier_t *out);

/** Write the text form of v into out (NUL-terminated; cap >= OTA_VERIFIER_TEXT_MAX).
 *  \return the length, or 0 if cap is too small. */
size_t ota_verifier_format(const ota_verifier_t *v, char *out, size_t cap);

/** From SaltedPassword (PBKDF2-HMAC-SHA256 of the password) derive the verifier's keys
 *  and, if client_key is not NULL, the ClientKey. \return 0, OTA_ERR_CRYPTO. */
int ota_salted_keys(const ota_crypto_port_t *c, const uint8_t *salted_password, uint8_t *client_key,
                    uint8_t *stored_key, uint8_t *server_key);

/** AuthMessage = label ‖ server nonce ‖ client nonce ‖ salt ‖ iterations (big-endian)
 *  into out (OTA_SALTED_AUTH_MESSAGE_LEN bytes). */
void ota_salted_auth_message(const uint8_t *server_nonce, const uint8_t *client_nonce,
                             const uint8_t *salt, uint32_t iterations, uint8_t *out);

/** Client: ClientProof = ClientKey XOR HMAC(StoredKey, AuthMessage), and the
 *  ServerSignature = HMAC(ServerKey, AuthMessage) the device must answer with.
 *  \return 0, OTA_ERR_CRYPTO. */
int ota_salted_client_proof(const ota_crypto_port_t *c, const uint8_t *salted_password,
                            const uint8_t *auth_message, uint8_t *proof,
                            uint8_t *expected_server_signature);

/** Device: check a ClientProof against the verifier in constant time and, on
 *  success, write the ServerSignature. \return 0, OTA_ERR_AUTH, OTA_ERR_CRYPTO. */
int ota_salted_verify(const ota_crypto_port_t *c, const ota_verifier_t *v,
                      const uint8_t *auth_message, const uint8_t *proof, uint8_t *server_signature);

#endif /* OTA_AUTH_H */
