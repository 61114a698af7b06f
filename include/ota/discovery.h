/*
 * ota/discovery.h - the single definition of what a node advertises over DNS-SD
 * (docs/protocol.md#discovery, docs/discovery.md): the service types and the keys
 * and values of their TXT records, with the one builder the firmware uses and the
 * one parser the uploader uses. The integration tests read this file
 * (tests/integration/protocol_consts.py).
 */
#ifndef OTA_DISCOVERY_H
#define OTA_DISCOVERY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/** DNS-SD service types (without ".local"). */
#define OTA_DISCOVERY_SERVICE_OTA "_ota._tcp"         /* the native protocol's port */
#define OTA_DISCOVERY_SERVICE_ARDUINO "_arduino._tcp" /* the ArduinoOTA port */

/** TXT keys of _ota._tcp (ours). */
#define OTA_TXT_TXTVERS "txtvers"
#define OTA_TXT_NAME "name"
#define OTA_TXT_VERSION "version"
#define OTA_TXT_PLATFORM "platform"
#define OTA_TXT_PROTOCOL "protocol" /* the native protocol version: "1" or "2" */
#define OTA_TXT_AUTH "auth"
/** The value of txtvers this layout has. */
#define OTA_TXT_TXTVERS_VALUE "1"
/** Values of auth: OTA_TXT_AUTH_NONE, or the methods the node accepts, strongest
 *  first, joined by OTA_TXT_AUTH_SEPARATOR ("salted,sha256,md5"). */
#define OTA_TXT_AUTH_NONE "none"
#define OTA_TXT_AUTH_SALTED "salted"
#define OTA_TXT_AUTH_SHA256 "sha256"
#define OTA_TXT_AUTH_MD5 "md5"
#define OTA_TXT_AUTH_SEPARATOR ","
/** platform of the POSIX (Linux) node; firmware ports use ESPHome's names
 *  ("esp32", "esp8266", ...). */
#define OTA_TXT_PLATFORM_HOST "host"

/** TXT keys of _arduino._tcp, as the Arduino IDE and PlatformIO expect them. */
#define OTA_TXT_BOARD "board"
#define OTA_TXT_TCP_CHECK "tcp_check"
#define OTA_TXT_SSH_UPLOAD "ssh_upload"
#define OTA_TXT_AUTH_UPLOAD "auth_upload"
#define OTA_TXT_YES "yes"
#define OTA_TXT_NO "no"

/** Auth methods as bits (builder input, parser output). */
#define OTA_DISCOVERY_AUTH_SALTED 0x01u
#define OTA_DISCOVERY_AUTH_SHA256 0x02u
#define OTA_DISCOVERY_AUTH_MD5 0x04u
#define OTA_DISCOVERY_AUTH_OTHER 0x80u /* parser: a method this code does not know */

/** Most strings a built TXT record has (_ota._tcp: 6), and the bytes for them. */
#define OTA_DISCOVERY_TXT_MAX 6
#define OTA_DISCOVERY_TXT_BUF 256

/** A built TXT record: "key=value" strings, NULL-terminated, as ota_mdns_service_t's
 *  txt wants them. The strings live in buf: keep the struct as long as the service. */
typedef struct ota_discovery_txt {
    char buf[OTA_DISCOVERY_TXT_BUF];
    const char *strings[OTA_DISCOVERY_TXT_MAX + 1];
} ota_discovery_txt_t;

/** What _ota._tcp says about a node. */
typedef struct ota_discovery_ota_info {
    const char *name;     /* the configured node name */
    const char *version;  /* the firmware version string */
    const char *platform; /* OTA_TXT_PLATFORM_HOST, "esp32", ... */
    unsigned protocol;    /* the native protocol version it speaks */
    unsigned auth;        /* OTA_DISCOVERY_AUTH_* bits; 0: no password */
} ota_discovery_ota_info_t;

/** Build the TXT of _ota._tcp: txtvers, name, version, platform, protocol, auth.
 *  \return 0, OTA_ERR_INVALID_ARG (a NULL argument), OTA_ERR_TOO_LONG (it does not fit). */
int ota_discovery_ota_txt(ota_discovery_txt_t *t, const ota_discovery_ota_info_t *info);

/** Build the TXT of _arduino._tcp: board, tcp_check=no, ssh_upload=no, auth_upload.
 *  \return 0, -1. */
int ota_discovery_arduino_txt(ota_discovery_txt_t *t, const char *board, bool password);

/** The auth value for the OTA_DISCOVERY_AUTH_* bits ("none", "salted,sha256", ...)
 *  into out, NUL-terminated. \return its length, or 0 when cap is too small. */
size_t ota_discovery_auth_format(unsigned auth, char *out, size_t cap);

/** Keys the parser knows. */
typedef enum ota_discovery_key {
    OTA_TXT_KEY_UNKNOWN = 0, /* another key, or a boolean attribute (no '=') */
    OTA_TXT_KEY_TXTVERS,
    OTA_TXT_KEY_NAME,
    OTA_TXT_KEY_VERSION,
    OTA_TXT_KEY_PLATFORM,
    OTA_TXT_KEY_PROTOCOL,
    OTA_TXT_KEY_AUTH,
    OTA_TXT_KEY_BOARD,
    OTA_TXT_KEY_TCP_CHECK,
    OTA_TXT_KEY_SSH_UPLOAD,
    OTA_TXT_KEY_AUTH_UPLOAD
} ota_discovery_key_t;

/** One TXT string s[0..n) (without its length byte): which key it is, compared
 *  ignoring case (RFC 6763 6.4), and its value (*value, *vlen; not NUL-terminated). */
ota_discovery_key_t ota_discovery_txt_key(const uint8_t *s, size_t n, const uint8_t **value,
                                          size_t *vlen);

/** An auth value: its methods as OTA_DISCOVERY_AUTH_* bits (0 for "none"; unknown
 *  methods give OTA_DISCOVERY_AUTH_OTHER), compared ignoring case.
 *  \return 0, OTA_ERR_INVALID_ARG (an empty value: says nothing). */
int ota_discovery_auth_parse(const uint8_t *v, size_t n, unsigned *auth);

/** A yes/no value (auth_upload, tcp_check, ...), ignoring case. \return 1 (yes),
 *  0 (no), OTA_ERR_INVALID_ARG (anything else). */
int ota_discovery_yes_no(const uint8_t *v, size_t n);

#endif /* OTA_DISCOVERY_H */
