/*
 * config.h - a node's YAML configuration (the ESPHome forms users have in the wild),
 * loaded with libyaml and validated: every error names file, line and column and
 * says what is expected. Used by `ota config`, `ota codegen`, `ota upload FILE`,
 * `ota logs FILE` and `ota run FILE`.
 *
 * Loaded as ESPHome loads it: !include (plain and {file, vars}), !include_dir_*,
 * !secret (secrets.yaml beside the file that says it, else beside the main file),
 * !env_var, `<<:` merge keys, packages: (local; remote git packages are refused
 * with a message naming the package), substitutions ($name, ${name}; the caller's
 * override the file's). Components this tool does not read are ignored; the blocks
 * it reads (esphome/esphomeyaml, the platform block, wifi, ethernet, ota,
 * safe_mode, logger, mdns, substitutions, packages) are checked key by key.
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
    char platform[16];     /* ESPHome's target platform: esp32, esp8266, rp2040, bk72xx,
                            * rtl87xx, ln882x, libretiny, nrf52 or host */
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
    /* Where the node is, in ESPHome's order: wifi: use_address, wifi: manual_ip:
     * static_ip (or the one static_ip of wifi: networks:), name + wifi: domain when
     * that is not .local, then the same from ethernet:. "" when none is set: the
     * caller then uses <name>.local (mDNS). address_source says which setting it
     * came from ("wifi: use_address", ...), "" with address. */
    char address[256];
    char address_source[48];
    /* esphome: name_add_mac_suffix: true: the node calls itself <name>-<6 hex digits
     * of its MAC> (and answers mDNS under that name), which no file can tell */
    bool name_mac_suffix;
    /* signed_ota_verification: (under the platform's framework: advanced:, as ESPHome
     * has it, or at the top level): the node takes only images signed by one of
     * trusted[0..n_trusted) (key digests, docs/protocol.md#signed-images), from
     * verification_keys, else the signing_key's public half. signing_key (the
     * private key's path, resolved against the file's folder) lets upload/run sign
     * on the fly. */
    char build_path[512];    /* esphome: build_path: ("" = ESPHome's .esphome/build/NAME) */
    bool ota_encryption;     /* ota: encryption: (ESPHome's Noise OTA): tolerated, warned */
    bool signed_ota;
    char signing_scheme[12]; /* "rsa3072" (ESPHome's default) or "ecdsa256" */
    char signing_key[1024];  /* "" when not given */
    size_t n_trusted;
    uint8_t trusted[3][32];
    char trusted_from[3][80]; /* "verification_keys[0]: FILE" / "signing_key" ... */
    /* update: - platform: http_request (ESPHome's pull updates, docs/pull.md): the
     * node checks the manifest at source every update_interval (default 6 h) */
    bool pull;
    char pull_url[256];
    uint32_t pull_interval_ms;
} ota_node_config_t;

/** ESPHome's default native OTA port for a platform (lowercase name). */
uint16_t ota_config_default_port(const char *platform);

/* A substitution given by the caller (ESPHome's `-s KEY VALUE`); these override
 * the file's substitutions: of the same name. */
typedef struct ota_config_subst {
    const char *name;
    const char *value;
} ota_config_subst_t;

/** Load and validate path. On failure err holds "file:line:col: message" (or
 *  "file: message") and nothing in *cfg is to be used. \return 0, -1. */
int ota_config_load(const char *path, ota_node_config_t *cfg, char *err, size_t err_cap);

/** ota_config_load with n_subs substitutions from the command line (subs may be
 *  NULL when n_subs is 0); an error in an included file names that file.
 *  \return 0, -1. */
int ota_config_load_ex(const char *path, const ota_config_subst_t *subs, size_t n_subs,
                       ota_node_config_t *cfg, char *err, size_t err_cap);

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
