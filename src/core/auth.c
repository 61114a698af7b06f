/*
 * auth.c - the legacy challenge methods (MD5, SHA-256) of the native protocol's
 * auth step, computed the same way by the device and the uploader.
 * and the salted method (docs/protocol.md#native-salted): verifier text form, key derivation
 * from SaltedPassword, the client's proof and the device's check.
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

int ota_auth_challenge_response(const ota_crypto_port_t *c, uint8_t method, const char *password,
                                const char *nonce, const char *cnonce, char *out)
{
    size_t hex_len = ota_auth_hex_len(method);
    if (c == NULL || password == NULL || nonce == NULL || cnonce == NULL || out == NULL ||
        hex_len == 0)
        return OTA_ERR_INVALID_ARG;

    ota_hash_ctx_t ctx;
    uint8_t digest[OTA_SHA256_LEN];
    int rc = c->hash_start(c->ctx, &ctx, ota_auth_alg(method));
    if (rc == OTA_OK)
        rc = c->hash_update(c->ctx, &ctx, (const uint8_t *)password, strlen(password));
    if (rc == OTA_OK)
        rc = c->hash_update(c->ctx, &ctx, (const uint8_t *)nonce, hex_len);
    if (rc == OTA_OK)
        rc = c->hash_update(c->ctx, &ctx, (const uint8_t *)cnonce, hex_len);
    if (rc == OTA_OK)
        rc = c->hash_finish(c->ctx, &ctx, digest);
    if (rc == OTA_OK)
        ota_hex_encode(digest, hex_len / 2, out);
    ota_wipe(&ctx, sizeof ctx);
    ota_wipe(digest, sizeof digest);
    return rc == OTA_OK ? OTA_OK : OTA_ERR_CRYPTO;
}

int ota_auth_random_hex(const ota_crypto_port_t *c, char *out, size_t hex_len)
{
    uint8_t raw[OTA_SHA256_LEN];
    if (c == NULL || out == NULL || hex_len > 2 * sizeof raw || (hex_len & 1u))
        return OTA_ERR_INVALID_ARG;
    if (c->random(c->ctx, raw, hex_len / 2) != OTA_OK)
        return OTA_ERR_CRYPTO;
    ota_hex_encode(raw, hex_len / 2, out);
    ota_wipe(raw, sizeof raw);
    return OTA_OK;
}

/* ------------------------------------------------------------ salted auth */

static const char verifier_prefix[] = "SCRAM-SHA-256$";

/* Position of the first c in s[0..len), or len. */
static size_t find_char(const char *s, size_t len, char c)
{
    size_t i = 0;
    while (i < len && s[i] != c)
        i++;
    return i;
}

int ota_verifier_parse(const char *text, ota_verifier_t *out)
{
    if (text == NULL || out == NULL)
        return OTA_ERR_INVALID_ARG;
    size_t plen = sizeof verifier_prefix - 1;
    size_t len = strlen(text);
    if (len <= plen || len > OTA_VERIFIER_TEXT_MAX || memcmp(text, verifier_prefix, plen) != 0)
        return OTA_ERR_INVALID_ARG;
    const char *p = text + plen;
    size_t rest = len - plen;

    /* <iterations>: */
    size_t colon = find_char(p, rest, ':');
    if (colon == 0 || colon == rest || colon > 10)
        return OTA_ERR_INVALID_ARG;
    uint64_t iter = 0;
    for (size_t i = 0; i < colon; i++) {
        if (p[i] < '0' || p[i] > '9')
            return OTA_ERR_INVALID_ARG;
        iter = iter * 10u + (uint64_t)(p[i] - '0');
    }
    if (iter < OTA_SALTED_MIN_ITERATIONS || iter > 0xFFFFFFFFu)
        return OTA_ERR_INVALID_ARG;
    p += colon + 1;
    rest -= colon + 1;

    /* <salt>$ */
    size_t dollar = find_char(p, rest, '$');
    if (dollar == rest ||
        ota_base64_decode(p, dollar, out->salt, sizeof out->salt) != OTA_SALT_LEN)
        return OTA_ERR_INVALID_ARG;
    p += dollar + 1;
    rest -= dollar + 1;

    /* <StoredKey>:<ServerKey> */
    colon = find_char(p, rest, ':');
    if (colon == rest ||
        ota_base64_decode(p, colon, out->stored_key, sizeof out->stored_key) !=
            OTA_SALTED_KEY_LEN ||
        ota_base64_decode(p + colon + 1, rest - colon - 1, out->server_key,
                          sizeof out->server_key) != OTA_SALTED_KEY_LEN) {
        ota_wipe(out, sizeof *out);
        return OTA_ERR_INVALID_ARG;
    }
    out->iterations = (uint32_t)iter;
    return OTA_OK;
}

size_t ota_verifier_format(const ota_verifier_t *v, char *out, size_t cap)
{
    if (v == NULL || out == NULL || cap < OTA_VERIFIER_TEXT_MAX)
        return 0;
    ota_strbuf_t sb;
    char b64[48];
    ota_sb_init(&sb, out, cap);
    ota_sb_str(&sb, verifier_prefix);
    ota_sb_u32(&sb, v->iterations);
    ota_sb_str(&sb, ":");
    ota_base64_encode(v->salt, sizeof v->salt, b64, sizeof b64);
    ota_sb_str(&sb, b64);
    ota_sb_str(&sb, "$");
    ota_base64_encode(v->stored_key, sizeof v->stored_key, b64, sizeof b64);
    ota_sb_str(&sb, b64);
    ota_sb_str(&sb, ":");
    ota_base64_encode(v->server_key, sizeof v->server_key, b64, sizeof b64);
    ota_sb_str(&sb, b64);
    return sb.len;
}

static int hmac(const ota_crypto_port_t *c, const uint8_t *key, const void *msg, size_t len,
                uint8_t *out)
{
    if (c->hmac_sha256 == NULL)
        return OTA_ERR_CRYPTO;
    return c->hmac_sha256(c->ctx, key, OTA_SALTED_KEY_LEN, (const uint8_t *)msg, len, out) == OTA_OK
               ? OTA_OK
               : OTA_ERR_CRYPTO;
}

static int sha256(const ota_crypto_port_t *c, const uint8_t *in, size_t len, uint8_t *out)
{
    ota_hash_ctx_t ctx;
    int rc = c->hash_start(c->ctx, &ctx, OTA_HASH_SHA256);
    if (rc == OTA_OK)
        rc = c->hash_update(c->ctx, &ctx, in, len);
    if (rc == OTA_OK)
        rc = c->hash_finish(c->ctx, &ctx, out);
    ota_wipe(&ctx, sizeof ctx);
    return rc == OTA_OK ? OTA_OK : OTA_ERR_CRYPTO;
}

int ota_salted_keys(const ota_crypto_port_t *c, const uint8_t *salted_password, uint8_t *client_key,
                    uint8_t *stored_key, uint8_t *server_key)
{
    uint8_t ck[OTA_SALTED_KEY_LEN];
    int rc = hmac(c, salted_password, "Client Key", 10, ck);
    if (rc == OTA_OK)
        rc = sha256(c, ck, sizeof ck, stored_key);
    if (rc == OTA_OK)
        rc = hmac(c, salted_password, "Server Key", 10, server_key);
    if (rc == OTA_OK && client_key != NULL)
        memcpy(client_key, ck, sizeof ck);
    ota_wipe(ck, sizeof ck);
    return rc;
}

void ota_salted_auth_message(const uint8_t *server_nonce, const uint8_t *client_nonce,
                             const uint8_t *salt, uint32_t iterations, uint8_t *out)
{
    memcpy(out, OTA_SALTED_LABEL, OTA_SALTED_LABEL_LEN);
    out += OTA_SALTED_LABEL_LEN;
    memcpy(out, server_nonce, OTA_SALTED_NONCE_LEN);
    out += OTA_SALTED_NONCE_LEN;
    memcpy(out, client_nonce, OTA_SALTED_NONCE_LEN);
    out += OTA_SALTED_NONCE_LEN;
    memcpy(out, salt, OTA_SALT_LEN);
    out += OTA_SALT_LEN;
    ota_be32_put(out, iterations);
}

int ota_salted_client_proof(const ota_crypto_port_t *c, const uint8_t *salted_password,
                            const uint8_t *auth_message, uint8_t *proof,
                            uint8_t *expected_server_signature)
{
    uint8_t ck[OTA_SALTED_KEY_LEN], sk[OTA_SALTED_KEY_LEN], srvk[OTA_SALTED_KEY_LEN];
    uint8_t sig[OTA_SALTED_KEY_LEN];
    int rc = ota_salted_keys(c, salted_password, ck, sk, srvk);
    if (rc == OTA_OK)
        rc = hmac(c, sk, auth_message, OTA_SALTED_AUTH_MESSAGE_LEN, sig);
    if (rc == OTA_OK) {
        for (size_t i = 0; i < OTA_SALTED_KEY_LEN; i++)
            proof[i] = (uint8_t)(ck[i] ^ sig[i]);
        rc = hmac(c, srvk, auth_message, OTA_SALTED_AUTH_MESSAGE_LEN, expected_server_signature);
    }
    ota_wipe(ck, sizeof ck);
    ota_wipe(sk, sizeof sk);
    ota_wipe(srvk, sizeof srvk);
    ota_wipe(sig, sizeof sig);
    return rc;
}

int ota_salted_verify(const ota_crypto_port_t *c, const ota_verifier_t *v,
                      const uint8_t *auth_message, const uint8_t *proof, uint8_t *server_signature)
{
    uint8_t sig[OTA_SALTED_KEY_LEN], ck[OTA_SALTED_KEY_LEN], sk[OTA_SALTED_KEY_LEN];
    int rc = hmac(c, v->stored_key, auth_message, OTA_SALTED_AUTH_MESSAGE_LEN, sig);
    if (rc == OTA_OK) {
        for (size_t i = 0; i < OTA_SALTED_KEY_LEN; i++)
            ck[i] = (uint8_t)(proof[i] ^ sig[i]);
        rc = sha256(c, ck, sizeof ck, sk);
    }
    if (rc == OTA_OK)
        rc = ota_ct_equal(sk, v->stored_key, sizeof sk) ? OTA_OK : OTA_ERR_AUTH;
    if (rc == OTA_OK)
        rc = hmac(c, v->server_key, auth_message, OTA_SALTED_AUTH_MESSAGE_LEN, server_signature);
    ota_wipe(sig, sizeof sig);
    ota_wipe(ck, sizeof ck);
    ota_wipe(sk, sizeof sk);
    return rc;
}
