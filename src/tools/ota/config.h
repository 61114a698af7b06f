/*
 * config.h - a node's YAML configuration (the ESPHome forms users have in the wild),
 * loaded with libyaml and validated: every error names file, line and column and
 * says what is expected. Used by `ota config`, `ota codegen`, `ota upload FILE`,
 * `ota logs FILE` and `ota run FILE`.
 */
#ifndef OTA_TOOLS_OTA_CONFIG_H
#define OTA_TOOLS_OTA_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

typedef struct ota_node_config {
    char file[1024];
    char name[64];         /* esphome: name */
    char platform[16];     /* "esp32", "esp8266" or "host" */
    char board[64];
    bool has_ota;          /* an ota component (native protocol) is configured */
    char ota_id[64];       /* id: the C name of the component instance */
    uint16_t port;
    uint8_t version;       /* 1 or 2 */
    bool password_set;
    char password[128];    /* plain, from the file (never printed) */
    bool legacy_auth;      /* also keep the plain password (stock uploaders) */
    bool allow_md5;
    /* ArduinoOTA (espota.py) beside the native protocol, on UDP arduino_port. arduino_auth is "sha256", "md5" or "" (no password): the node then stores that
     * hash of the password, which is password-equivalent for ArduinoOTA. */
    bool arduino;
    uint16_t arduino_port;
    char arduino_auth[8];
    bool safe_mode;        /* boot-loop detection on */
    uint32_t num_attempts;
    uint32_t boot_is_good_after_ms;
    uint32_t reboot_timeout_ms;
    uint32_t rollback_after;
    bool logger;           /* a logger: block is present */
    uint16_t log_port;     /* where the node serves its log lines to viewers */
    bool mdns;             /* answer <name>.local and advertise the OTA services */
} ota_node_config_t;

/** Load and validate path. On failure err holds "file:line:col: message" (or
 *  "file: message") and nothing in *cfg is to be used. \return 0, -1. */
int ota_config_load(const char *path, ota_node_config_t *cfg, char *err, size_t err_cap);

/** The same for YAML text in memory; name stands for the file in messages and
 *  !secret looks for secrets.yaml beside it. \return 0, -1. */
int ota_config_load_buffer(const char *name, const uint8_t *data, size_t len,
                           ota_node_config_t *cfg, char *err, size_t err_cap);

/** Print the resolved settings (the password only as "set" / "not set"). */
void ota_config_print(const ota_node_config_t *cfg);

/** Write to f one "warning: ..." line per setting that weakens what the firmware
 *  gives away (a plain password, an ArduinoOTA hash). \return how many. */
int ota_config_warn(const ota_node_config_t *cfg, FILE *f);

/** Parse "60s", "1min", "500ms", "2h" into milliseconds. \return 0, -1. */
int ota_config_parse_time(const char *text, uint32_t *ms);

#endif /* OTA_TOOLS_OTA_CONFIG_H */
