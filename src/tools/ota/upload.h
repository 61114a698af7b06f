/*
 * upload.h - what `ota upload` and `ota run` share: the upload options (one getopt
 * table, one handler), settling the password, node file and known_nodes path, the
 * firmware an ESPHome build left, and one node's upload with retries, the
 * ArduinoOTA fallback and the final report. cmd_upload.c implements it.
 */
#ifndef OTA_TOOLS_OTA_UPLOAD_H
#define OTA_TOOLS_OTA_UPLOAD_H

#include <getopt.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "client.h"
#include "config.h"
#include "host_lookup.h"

/* getopt values of the shared options ('q' for --quiet; commands use 300 and up) */
enum {
    UO_PORT = 256,
    UO_PASSWORD,
    UO_PASSWORD_FILE,
    UO_AUTH,
    UO_KNOWN_NODES,
    UO_NO_COMPRESS,
    UO_RETRIES,
    UO_TIMEOUT,
    UO_PROTOCOL,
    UO_HOST_PORT,
    UO_HOST_IP,
    UO_COMPRESS,
};
#define UPLOAD_OPTION_ROWS 14 /* upload_long_options[] with its NULL row */
#define UPLOAD_OPTION_NOT_MINE (-1)

enum { UPLOAD_PROTO_AUTO = 0, UPLOAD_PROTO_NATIVE, UPLOAD_PROTO_ARDUINO };

typedef struct upload_args {
    ota_client_options_t o;
    const char *password_file, *known_nodes;
    bool port_set, auth_set;
    int protocol; /* UPLOAD_PROTO_* */
    uint16_t host_port;
    const char *host_ip;
    bool filesystem;
    unsigned long retries;
    bool quiet;
    bool compress_forced; /* --compress: gzip whenever the device takes it, no learning */
    char known_path[4096];
} upload_args_t;

extern const struct option upload_long_options[];

/** Defaults: port 3232, auth auto, gzip, timeout 160 s, phases to interrupt.h. */
void upload_args_init(upload_args_t *a);

/** Build a getopt table: upload_long_options[] followed by own[] (NULL-terminated);
 *  out has room for UPLOAD_OPTION_ROWS + 8 rows. */
void upload_merge_options(struct option *out, const struct option *own);

/** Take one shared option (getopt value c, its argument arg). \return 0, a usage
 *  error's exit code, or UPLOAD_OPTION_NOT_MINE. */
int upload_option(const char *cmd, int c, const char *arg, upload_args_t *a);

/** Options that do not go together. \return OTA_EXIT_OK or a usage error's code. */
int upload_check_combination(const char *cmd, const upload_args_t *a);

/** After the options: the password sources, the node file (if any: host, port,
 *  password, salted requirement), $OTA_PASSWORD, the known_nodes path. *pw_alloc
 *  receives what must be freed. \return OTA_EXIT_OK or an exit code after a message. */
int upload_settle(upload_args_t *a, const char *node_file, ota_node_config_t *cfg, char *host,
                  size_t host_cap, char **pw_alloc);

/** The firmware to send: given, else the image ESPHome built for node_file (said on
 *  stderr; buf receives its path). NULL after the error (missing firmware). */
const char *upload_firmware(const char *cmd, const char *given, const char *node_file,
                            const ota_node_config_t *cfg, char *buf, size_t cap);

/** With a node file that requires signed images (cfg->signed_ota): keep an image
 *  signed by a trusted key, sign an unsigned one with cfg->signing_key (*image is
 *  replaced), or refuse before anything is sent. \return OTA_EXIT_OK, or
 *  OTA_EXIT_INPUT after the error. */
int upload_sign_for_node(const ota_node_config_t *cfg, const char *firmware, uint8_t **image,
                         size_t *len, bool quiet);

/** Upload image to the node called name (as given) with a->o: retries, the
 *  ArduinoOTA fallback of --protocol auto, the OK line or the error. lookup receives
 *  how name was resolved; *by_arduino whether ArduinoOTA carried it. \return the
 *  exit code. */
int upload_single(upload_args_t *a, const char *name, const char *firmware, const uint8_t *image,
                  size_t len, host_lookup_t *lookup, bool *by_arduino);

#endif
