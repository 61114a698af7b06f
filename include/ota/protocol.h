/*
 * ota/protocol.h - the single definition of the native wire protocol
 * (docs/protocol.md#native), included by the device core and the host tool; the
 * integration tests read it too (tests/integration/protocol_consts.py).
 * Never restate these numbers anywhere else. The other wire facts have their own
 * headers: ota/arduino_proto.h (ArduinoOTA), ota/discovery.h (mDNS TXT records),
 * ota/log_proto.h (the log viewer stream), ota/auth.h (salted auth).
 */
#ifndef OTA_PROTOCOL_H
#define OTA_PROTOCOL_H

#include <stdint.h>

/** Magic the client sends first (docs/protocol.md#native-session). */
#define OTA_MAGIC_LEN 5
#define OTA_MAGIC_BYTES {0x6C, 0x26, 0xF7, 0x5C, 0x45}
extern const uint8_t ota_protocol_magic[OTA_MAGIC_LEN];

#define OTA_PROTOCOL_VERSION_1 1
#define OTA_PROTOCOL_VERSION_2 2

/** Default TCP port of the native protocol (and UDP port of ArduinoOTA) by chip
 *  family (docs/protocol.md#ports). */
#define OTA_PORT_ESP32 3232u
#define OTA_PORT_ESP8266 8266u
/** ESPHome's defaults on its other platforms: RP2040, and the Beken/Realtek/Lightning
 *  chips of LibreTiny (bk72xx, rtl87xx, ln882x). */
#define OTA_PORT_RP2040 2040u
#define OTA_PORT_LIBRETINY 8892u

/** How long an uploader waits for a silent device: longer than the device's own
 *  data timeout (ota/opts.h OTA_CFG_DATA_TIMEOUT_MS), so that a retry finds the
 *  device free again (docs/protocol.md#native-timeouts). */
#define OTA_UPLOADER_TIMEOUT_S 160u

/** Version 2: one CHUNK_OK per this many received bytes. */
#define OTA_CHUNK_SIZE 8192u

/** Feature bits the client announces (step 2). */
#define OTA_FEATURE_NONE 0x00u
#define OTA_FEATURE_COMPRESSION 0x01u
#define OTA_FEATURE_SHA256_AUTH 0x02u
#define OTA_FEATURE_EXTENDED 0x04u
#define OTA_FEATURE_SALTED_AUTH 0x80u
/** Ours (docs/protocol.md#native-late-md5): the client sends the MD5 after the data
 *  (when the device answers OTA_SERVER_FLAG_LATE_MD5). ESPHome's clients use 0x01,
 *  0x02, 0x04, 0x08 (docs/protocol.md#extensions lists what was checked). */
#define OTA_FEATURE_LATE_MD5 0x40u

/** Server flags byte after OTA_RESP_FEATURE_FLAGS. */
#define OTA_SERVER_FLAG_COMPRESSION 0x01u
/** Ours: the answer to OTA_FEATURE_LATE_MD5 (sent only to a client that set it): the
 *  MD5 comes after the data, and the device reads pipelined messages. ESPHome's
 *  devices use 0x01, 0x02, 0x04. */
#define OTA_SERVER_FLAG_LATE_MD5 0x80u

/** Update types of the extended protocol (step 4). */
#define OTA_UPDATE_TYPE_APP 0x00u
/** Ours (docs/protocol.md#native-pull-now): no image follows; a node that pulls its
 *  updates checks its manifest now and answers OK (0x00), others 0x8E. ESPHome uses
 *  0x01 (partition table) and 0x02 (bootloader). */
#define OTA_UPDATE_TYPE_PULL_NOW 0x70u

/** Nonce / digest lengths on the wire. */
#define OTA_MD5_HEX_LEN 32
#define OTA_SHA256_HEX_LEN 64

/** Response codes (device to client), docs/protocol.md#native-codes. */
typedef enum ota_response {
    OTA_RESP_OK = 0x00,
    OTA_RESP_REQUEST_AUTH_MD5 = 0x01,
    OTA_RESP_REQUEST_AUTH_SHA256 = 0x02,
    OTA_RESP_REQUEST_AUTH_SALTED = 0x10,
    OTA_RESP_HEADER_OK = 0x40,
    OTA_RESP_AUTH_OK = 0x41,
    OTA_RESP_UPDATE_PREPARE_OK = 0x42,
    OTA_RESP_BIN_MD5_OK = 0x43,
    OTA_RESP_RECEIVE_OK = 0x44,
    OTA_RESP_UPDATE_END_OK = 0x45,
    OTA_RESP_SUPPORTS_COMPRESSION = 0x46,
    OTA_RESP_CHUNK_OK = 0x47,
    OTA_RESP_FEATURE_FLAGS = 0x48,
    OTA_RESP_ERROR_MAGIC = 0x80,
    OTA_RESP_ERROR_UPDATE_PREPARE = 0x81,
    OTA_RESP_ERROR_AUTH_INVALID = 0x82,
    OTA_RESP_ERROR_WRITING_FLASH = 0x83,
    OTA_RESP_ERROR_UPDATE_END = 0x84,
    OTA_RESP_ERROR_INVALID_BOOTSTRAPPING = 0x85,
    OTA_RESP_ERROR_WRONG_CURRENT_FLASH_CONFIG = 0x86,
    OTA_RESP_ERROR_WRONG_NEW_FLASH_CONFIG = 0x87,
    OTA_RESP_ERROR_ESP8266_NOT_ENOUGH_SPACE = 0x88,
    OTA_RESP_ERROR_ESP32_NOT_ENOUGH_SPACE = 0x89,
    OTA_RESP_ERROR_NO_UPDATE_PARTITION = 0x8A,
    OTA_RESP_ERROR_MD5_MISMATCH = 0x8B,
    OTA_RESP_ERROR_RP2040_NOT_ENOUGH_SPACE = 0x8C,
    OTA_RESP_ERROR_SIGNATURE_INVALID = 0x8D,
    OTA_RESP_ERROR_UNSUPPORTED_OTA_TYPE = 0x8E,
    /* newer ESPHome devices (partition table and bootloader updates, its downgrade
     * protection, Noise encryption); ours send 0x93 for anti-rollback */
    OTA_RESP_ERROR_PARTITION_TABLE_VERIFY = 0x8F,
    OTA_RESP_ERROR_PARTITION_TABLE_UPDATE = 0x90,
    OTA_RESP_ERROR_BOOTLOADER_VERIFY = 0x91,
    OTA_RESP_ERROR_BOOTLOADER_UPDATE = 0x92,
    /* ESPHome's "version downgrade": what our anti-rollback answers
     * (docs/protocol.md#anti-rollback), the image's secure_version is below the
     * node's minimum, so a stock uploader shows its downgrade words for it */
    OTA_RESP_ERROR_VERSION_DOWNGRADE = 0x93,
    OTA_RESP_ERROR_ENCRYPTION_REQUIRED = 0x94,
    OTA_RESP_ERROR_BUSY = 0xA0,
    OTA_RESP_ERROR_UNKNOWN = 0xFF
} ota_response_t;

/** The response code a device sends for an OTA_ERR_* failure. */
uint8_t ota_protocol_response_for_error(int err);

/** Symbolic name of a response code ("UPDATE_END_OK"), or NULL for an unknown byte. */
const char *ota_protocol_response_name(uint8_t code);

/** 1 if the byte is one of the error codes (0x80 and up). */
#define OTA_RESP_IS_ERROR(code) ((code) >= 0x80u)

#endif /* OTA_PROTOCOL_H */
