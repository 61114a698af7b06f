/*
 * ota/arduino.h - the ArduinoOTA protocol on the device (docs/protocol.md#arduino),
 * the one espota.py of the Arduino ESP8266/ESP32 cores and PlatformIO
 * speak: a UDP invitation, an optional challenge, then the node connects back to
 * the uploader over TCP and reads the image into the update pipeline (ota/update.h).
 *
 * Tables used: UDP (recv, send), TCP (connect, recv, send, close), crypto (hash;
 * HMAC for the SHA-256 variant; random). Compiled out with OTA_CFG_ENABLE_ARDUINO 0
 * (then its context is empty and a setup asking for it fails).
 */
#ifndef OTA_ARDUINO_H
#define OTA_ARDUINO_H

#include <stdbool.h>
#include <stdint.h>

#include "ota/guard.h"
#include "ota/log.h"
#include "ota/opts.h"
#include "ota/port.h"
#include "ota/protocol.h"
#include "ota/update.h"

#define OTA_ARDUINO_AUTH_NONE 0
#define OTA_ARDUINO_AUTH_MD5 1
#define OTA_ARDUINO_AUTH_SHA256 2

/** Settings (the arduino_* fields of ota_server_config_t). */
typedef struct ota_arduino_config {
    /** OTA_ARDUINO_AUTH_NONE, _MD5 or _SHA256 */
    uint8_t auth;
    /** the credential that variant stores: MD5hex(password) or SHA256hex(password)
     *  (lowercase hex), never the password */
    const char *hash;
    /** inactivity limit once data flows */
    uint32_t data_timeout_ms;
} ota_arduino_config_t;

#if OTA_CFG_ENABLE_ARDUINO

/* Internal: a challenge sent to one address and not answered yet. */
typedef struct ota_arduino_offer {
    uint8_t cmd;
    uint16_t host_port;
    uint16_t udp_port;
    uint32_t size;
    uint32_t sent_ms; /* 0 with ip[0] == '\0': free */
    char ip[OTA_CFG_ADDR_MAX];
    char nonce[65];
    uint8_t md5[OTA_MD5_LEN];
} ota_arduino_offer_t;

/** The ArduinoOTA listener: open challenges, one per address, and the one exchange
 *  (key derivation, data) under way. Treat as opaque. */
typedef struct ota_arduino {
    const ota_udp_port_t *udp;
    const ota_tcp_port_t *tcp;
    const ota_crypto_port_t *crypto;
    ota_logger_t *log;
    ota_update_t *update;
    ota_guard_t *guard;
    ota_arduino_config_t cfg;
    uint32_t now_ms;
    bool reboot_due;
    ota_arduino_offer_t offers[OTA_CFG_ARDUINO_OFFERS];
    uint8_t state;      /* see arduino.c */
    uint8_t cmd;        /* 0 application image, 100 filesystem image */
    uint16_t host_port; /* the uploader's TCP port */
    uint16_t udp_port;  /* where its invitation came from */
    uint32_t size;
    uint32_t state_ms;
    uint32_t prepare_ms; /* when the store began preparing (AR_PREPARE) */
    uint32_t iter; /* PBKDF2 iterations done (SHA-256 variant) */
    ota_conn_t conn;
    uint8_t tx_len, tx_off;
    char ip[OTA_CFG_ADDR_MAX];
    char nonce[65];
    char cnonce[65];
    char response[65];
    char tx[48]; /* the longest answer: an error text with its newline */
    uint8_t md5[OTA_MD5_LEN];
    uint8_t u[OTA_SHA256_LEN], t[OTA_SHA256_LEN];
} ota_arduino_t;

#else

typedef struct ota_arduino {
    char unused;
} ota_arduino_t;

#endif

/** Bind the listener to its tables and the shared pipeline, guard and logger (log
 *  may be NULL: silent).
 *  \return 0; OTA_ERR_INVALID_ARG for a missing table or function (udp, tcp->connect,
 *  crypto->hmac_sha256 for the SHA-256 variant), a hash that is not the variant's
 *  lowercase hex digest, or ArduinoOTA compiled out. */
int ota_arduino_setup(ota_arduino_t *a, const ota_udp_port_t *udp, const ota_tcp_port_t *tcp,
                      const ota_crypto_port_t *crypto, ota_logger_t *log, ota_update_t *update,
                      ota_guard_t *guard, const ota_arduino_config_t *cfg);

/** Read invitations, derive keys a slice at a time, move data; never blocks. */
void ota_arduino_poll(ota_arduino_t *a, uint32_t now_ms);

/** true while a key derivation or an upload is under way (poll often then). */
bool ota_arduino_active(const ota_arduino_t *a);

/** true once an image was completed and the uploader told: reboot now. */
bool ota_arduino_reboot_due(const ota_arduino_t *a);

/** Abort an exchange under way, close its connection, wipe the challenges. */
void ota_arduino_free(ota_arduino_t *a);

#endif /* OTA_ARDUINO_H */
