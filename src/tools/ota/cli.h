/*
 * cli.h - what every `ota` command shares: the defaults, the usage-error format,
 * number parsing, and reading files (the firmware image, a password's first line).
 * Exit codes are in client.h (OTA_EXIT_*); the commands are listed in commands.h.
 */
#ifndef OTA_TOOL_CLI_H
#define OTA_TOOL_CLI_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "ota/protocol.h"

#ifndef OTA_VERSION
#define OTA_VERSION "unknown"
#endif
#define OTA_TOOL_VERSION OTA_VERSION
#define DEFAULT_PORT OTA_PORT_ESP32
#define DEFAULT_TIMEOUT_S OTA_UPLOADER_TIMEOUT_S
#define DEFAULT_ITERATIONS 10000u

/** "ota CMD: <fmt with arg>" and the --help hint on stderr. \return OTA_EXIT_USAGE. */
int usage_error(const char *cmd, const char *fmt, const char *arg);

/** A decimal number in [min, max], nothing else (no sign, no trailing text). */
bool parse_uint(const char *s, unsigned long min, unsigned long max, unsigned long *out);

/** The first line of f without its line end (malloc'd), or NULL at EOF/error. */
char *read_first_line(FILE *f);

/** A whole regular file (malloc'd); NULL with *err an errno value. */
uint8_t *read_file(const char *path, size_t *len, int *err);

/** The firmware image (malloc'd), or NULL after an error and hint on stderr. */
uint8_t *load_firmware(const char *firmware, size_t *len);

#endif
