/*
 * ota/arduino_proto.h - the single definition of the ArduinoOTA wire facts
 * (docs/protocol.md#arduino), the protocol espota.py of the Arduino ESP8266/ESP32
 * cores speaks: used by the device (src/core/arduino.c), the uploader
 * (src/tools/ota/arduino_client.c) and the integration tests
 * (tests/integration/protocol_consts.py reads this file).
 *
 * Default ports: OTA_PORT_ESP32 / OTA_PORT_ESP8266 of ota/protocol.h. Nonce lengths:
 * OTA_MD5_HEX_LEN (MD5 variant) and OTA_SHA256_HEX_LEN (SHA-256 variant) of the same.
 */
#ifndef OTA_ARDUINO_PROTO_H
#define OTA_ARDUINO_PROTO_H

/** Commands: the first field of the invitation and of the auth answer
 *  (docs/protocol.md#arduino-invitation). */
#define OTA_ARDUINO_CMD_FLASH 0u    /* an application image */
#define OTA_ARDUINO_CMD_SPIFFS 100u /* a filesystem image */
#define OTA_ARDUINO_CMD_AUTH 200u   /* "200 <cnonce> <response>" */

/** The uploader sends the invitation "<cmd> <host_port> <size> <md5hex>\n" up to
 *  this many times, one second apart, until the device answers. */
#define OTA_ARDUINO_INVITATION_TRIES 10u
#define OTA_ARDUINO_INVITATION_INTERVAL_MS 1000u

/** Bytes of the invitation's answer current uploaders read; uploaders older than the
 *  SHA-256 variant read only OTA_ARDUINO_ANSWER_MAX_OLD ("AUTH " + 32 hex). */
#define OTA_ARDUINO_ANSWER_MAX 69u
#define OTA_ARDUINO_ANSWER_MAX_OLD 37u

/** The device's answers to a datagram (docs/protocol.md#arduino-auth). */
#define OTA_ARDUINO_REPLY_OK "OK"
#define OTA_ARDUINO_REPLY_AUTH "AUTH "  /* followed by the nonce */
#define OTA_ARDUINO_REPLY_ERR "ERR"     /* "ERR: <text>" */
#define OTA_ARDUINO_REPLY_AUTH_FAILED "Authentication Failed"

/** The SHA-256 variant: response = SHA256hex(hex(PBKDF2-HMAC-SHA256(H, nonce ":" cnonce,
 *  OTA_ARDUINO_PBKDF2_ITERATIONS, OTA_ARDUINO_PBKDF2_LEN)) ":" nonce ":" cnonce). The
 *  MD5 variant joins MD5hex(password), nonce and cnonce with the same separator. */
#define OTA_ARDUINO_PBKDF2_ITERATIONS 10000u
#define OTA_ARDUINO_PBKDF2_LEN 32u
#define OTA_ARDUINO_SEPARATOR ":"

/** Data over TCP (docs/protocol.md#arduino-data): the device connects back to the
 *  uploader's host_port within this time, the stock uploader writes pieces of
 *  OTA_ARDUINO_PIECE bytes, the device answers each read with the cumulative count
 *  in ASCII decimal + "\n" and, at the end, OTA_ARDUINO_DATA_OK or an error text. */
#define OTA_ARDUINO_CONNECT_TIMEOUT_MS 10000u
#define OTA_ARDUINO_PIECE 1024u
#define OTA_ARDUINO_DATA_OK "OK\n"

#endif /* OTA_ARDUINO_PROTO_H */
