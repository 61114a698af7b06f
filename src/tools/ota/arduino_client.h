/*
 * arduino_client.h - the uploader's side of the ArduinoOTA protocol (docs/protocol.md#arduino),
 * what espota.py does: UDP invitation with retries, the MD5 or SHA-256 challenge
 * (with the retry using the MD5 hash some devices keep, when asked for), a TCP
 * listener the device connects back to (only the invited address is served),
 * streaming with the device's cumulative counts, the final OK.
 *
 * ArduinoOTA cannot authenticate the device: whoever answers the invitation can ask
 * for a challenge response (crackable offline) or for no password at all. So a device
 * that asks for none although a password was given is refused unless auth is
 * OTA_AUTH_NONE, and each answer sent is reported (unproven) for a warning.
 */
#ifndef OTA_TOOLS_OTA_ARDUINO_CLIENT_H
#define OTA_TOOLS_OTA_ARDUINO_CLIENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "client.h"

typedef struct ota_arduino_options {
    const char *host;      /* the device */
    uint16_t port;         /* its ArduinoOTA UDP port */
    const char *password;  /* NULL: none */
    const char *host_ip;   /* address to listen on for the back-connection (NULL: any) */
    uint16_t host_port;    /* port to listen on (0: a random free one) */
    unsigned timeout_s;    /* inactivity limit while streaming */
    bool filesystem;       /* a filesystem image (command 100) instead of firmware */
    ota_auth_mode_t auth;  /* AUTO: the variant the nonce's length implies; SHA256: only
                              the SHA-256 variant keyed with SHA256hex(password); MD5: the
                              device keeps MD5hex(password) (the MD5 variant, or SHA-256
                              keyed with it); NONE: it must ask for no password; SALTED:
                              refused (ArduinoOTA has no salted method) */
    bool retry_md5_key;    /* AUTO: after a refused SHA-256 answer, answer a new challenge
                              once more keyed with MD5hex(password), as espota.py does (a
                              second crackable answer: only when ArduinoOTA was chosen) */
} ota_arduino_options_t;

typedef enum ota_arduino_failure {
    OTA_AR_OK = 0,
    OTA_AR_RESOLVE,      /* the host does not resolve */
    OTA_AR_LISTEN,       /* cannot listen on --host-ip/--host-port */
    OTA_AR_NO_ANSWER,    /* no answer to 10 invitations */
    OTA_AR_DEVICE_ERROR, /* the device said "ERR..." (text) */
    OTA_AR_NEED_PASSWORD,
    OTA_AR_AUTH_FAILED,
    OTA_AR_NO_AUTH_ASKED, /* a password was given, the device asked for none */
    OTA_AR_AUTH_METHOD,   /* the device's challenge is not what auth allows (text) */
    OTA_AR_NO_CONNECT,   /* the device never connected back */
    OTA_AR_LOST,         /* the connection broke or went silent while streaming */
    OTA_AR_FINAL_ERROR   /* the device answered an error instead of OK (text) */
} ota_arduino_failure_t;

typedef struct ota_arduino_result {
    ota_arduino_failure_t failure;
    char text[128];        /* the device's words, or the system's */
    size_t sent, confirmed;
    uint16_t host_port;    /* the port we listened on */
    unsigned answers;      /* challenge responses sent (each crackable offline) */
    unsigned strangers;    /* connections to host_port from other addresses, closed */
    char stranger[64];     /* the address of the last of them */
} ota_arduino_result_t;

/** One upload. \return the tool's exit code (see client.h). */
int ota_arduino_upload(const ota_arduino_options_t *o, const uint8_t *image, size_t len,
                       ota_progress_fn progress, void *arg, ota_arduino_result_t *res);

/** One "warning:" line when a challenge response was sent (r->answers): the device
 *  cannot prove it knows the password. Nothing otherwise. */
void ota_arduino_print_auth_warning(FILE *out, const ota_arduino_options_t *o,
                                    const ota_arduino_result_t *r);

/** Print "error:"/"hint:" lines for a failed upload. */
void ota_arduino_print_failure(FILE *out, const ota_arduino_options_t *o,
                               const ota_arduino_result_t *r);

#endif /* OTA_TOOLS_OTA_ARDUINO_CLIENT_H */
