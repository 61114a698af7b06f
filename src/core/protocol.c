/*
 * protocol.c - the tables of the native wire protocol: the magic, the names of the
 * response codes, and the one mapping from OTA_ERR_* to response codes.
 */
#include "ota/protocol.h"

#include <stddef.h>

#include "ota/errors.h"

const uint8_t ota_protocol_magic[OTA_MAGIC_LEN] = OTA_MAGIC_BYTES;

uint8_t ota_protocol_response_for_error(int err)
{
    switch (err) {
    case OTA_ERR_BAD_MAGIC:
    case OTA_ERR_BAD_IMAGE: return OTA_RESP_ERROR_MAGIC;
    case OTA_ERR_NOT_SIGNED: /* the signature check refused the image (ota/signature.h) */
    case OTA_ERR_BAD_SIGNATURE:
    case OTA_ERR_UNTRUSTED_KEY: return OTA_RESP_ERROR_SIGNATURE_INVALID;
    case OTA_ERR_ROLLBACK: return OTA_RESP_ERROR_SECURE_VERSION;
    case OTA_ERR_NO_SPACE:
    case OTA_ERR_PREPARE: return OTA_RESP_ERROR_UPDATE_PREPARE;
    case OTA_ERR_NO_SPACE_LAYOUT: return OTA_RESP_ERROR_ESP8266_NOT_ENOUGH_SPACE;
    case OTA_ERR_NO_SLOT: return OTA_RESP_ERROR_NO_UPDATE_PARTITION;
    case OTA_ERR_AUTH:
    case OTA_ERR_NO_AUTH_METHOD: return OTA_RESP_ERROR_AUTH_INVALID;
    case OTA_ERR_WRITE:
    case OTA_ERR_INFLATE: return OTA_RESP_ERROR_WRITING_FLASH;
    case OTA_ERR_ACTIVATE: return OTA_RESP_ERROR_UPDATE_END;
    case OTA_ERR_MD5_MISMATCH: return OTA_RESP_ERROR_MD5_MISMATCH;
    case OTA_ERR_UNSUPPORTED: return OTA_RESP_ERROR_UNSUPPORTED_OTA_TYPE;
    case OTA_ERR_BUSY: return OTA_RESP_ERROR_BUSY;
    default: return OTA_RESP_ERROR_UNKNOWN;
    }
}

const char *ota_protocol_response_name(uint8_t code)
{
    switch (code) {
    case OTA_RESP_OK: return "OK";
    case OTA_RESP_REQUEST_AUTH_MD5: return "REQUEST_AUTH_MD5";
    case OTA_RESP_REQUEST_AUTH_SHA256: return "REQUEST_AUTH_SHA256";
    case OTA_RESP_REQUEST_AUTH_SALTED: return "REQUEST_AUTH_SALTED";
    case OTA_RESP_HEADER_OK: return "HEADER_OK";
    case OTA_RESP_AUTH_OK: return "AUTH_OK";
    case OTA_RESP_UPDATE_PREPARE_OK: return "UPDATE_PREPARE_OK";
    case OTA_RESP_BIN_MD5_OK: return "BIN_MD5_OK";
    case OTA_RESP_RECEIVE_OK: return "RECEIVE_OK";
    case OTA_RESP_UPDATE_END_OK: return "UPDATE_END_OK";
    case OTA_RESP_SUPPORTS_COMPRESSION: return "SUPPORTS_COMPRESSION";
    case OTA_RESP_CHUNK_OK: return "CHUNK_OK";
    case OTA_RESP_FEATURE_FLAGS: return "FEATURE_FLAGS";
    case OTA_RESP_ERROR_MAGIC: return "ERROR_MAGIC";
    case OTA_RESP_ERROR_UPDATE_PREPARE: return "ERROR_UPDATE_PREPARE";
    case OTA_RESP_ERROR_AUTH_INVALID: return "ERROR_AUTH_INVALID";
    case OTA_RESP_ERROR_WRITING_FLASH: return "ERROR_WRITING_FLASH";
    case OTA_RESP_ERROR_UPDATE_END: return "ERROR_UPDATE_END";
    case OTA_RESP_ERROR_INVALID_BOOTSTRAPPING: return "ERROR_INVALID_BOOTSTRAPPING";
    case OTA_RESP_ERROR_WRONG_CURRENT_FLASH_CONFIG: return "ERROR_WRONG_CURRENT_FLASH_CONFIG";
    case OTA_RESP_ERROR_WRONG_NEW_FLASH_CONFIG: return "ERROR_WRONG_NEW_FLASH_CONFIG";
    case OTA_RESP_ERROR_ESP8266_NOT_ENOUGH_SPACE: return "ERROR_ESP8266_NOT_ENOUGH_SPACE";
    case OTA_RESP_ERROR_ESP32_NOT_ENOUGH_SPACE: return "ERROR_ESP32_NOT_ENOUGH_SPACE";
    case OTA_RESP_ERROR_NO_UPDATE_PARTITION: return "ERROR_NO_UPDATE_PARTITION";
    case OTA_RESP_ERROR_MD5_MISMATCH: return "ERROR_MD5_MISMATCH";
    case OTA_RESP_ERROR_RP2040_NOT_ENOUGH_SPACE: return "ERROR_RP2040_NOT_ENOUGH_SPACE";
    case OTA_RESP_ERROR_SIGNATURE_INVALID: return "ERROR_SIGNATURE_INVALID";
    case OTA_RESP_ERROR_SECURE_VERSION: return "ERROR_SECURE_VERSION";
    case OTA_RESP_ERROR_UNSUPPORTED_OTA_TYPE: return "ERROR_UNSUPPORTED_OTA_TYPE";
    case OTA_RESP_ERROR_BUSY: return "ERROR_BUSY";
    case OTA_RESP_ERROR_UNKNOWN: return "ERROR_UNKNOWN";
    default: return NULL;
    }
}
