/*
 * node_args.h - command-line pieces the example firmwares share (demo-node on the
 * POSIX port, lwip-node on the lwIP port): the same flags mean the same on both.
 */
#ifndef OTA_EXAMPLES_NODE_ARGS_H
#define OTA_EXAMPLES_NODE_ARGS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "ota/app_desc.h"

/** A decimal number from 0 to max, nothing else in s. */
bool node_parse_u32(const char *s, unsigned long max, uint32_t *out);

/** The first line of path, without its line end, into buf (cap bytes).
 *  \return NULL, or why not (for a usage error about --password-file). */
const char *node_read_password_file(const char *path, char *buf, size_t cap);

/** The hash ArduinoOTA keeps of a password: MD5 (md5 true) or SHA-256, as lowercase
 *  hex into out (at least 65 bytes). */
void node_arduino_hash(const char *password, bool md5, char *out);

/** The running image's descriptor fields, read through volatile pointers: the image
 *  on disk may have been changed after the compiler saw the initialiser ('ota sign
 *  --security-version' sets secure_version, 'ota publish --version' the version). */
uint32_t node_desc_secure_version(const ota_app_desc_t *d);
/** Its version text into out (OTA_APP_DESC_VERSION_LEN bytes, NUL-terminated);
 *  fallback when it is empty. \return out or fallback. */
const char *node_desc_version(const ota_app_desc_t *d, char *out, const char *fallback);

#endif /* OTA_EXAMPLES_NODE_ARGS_H */
