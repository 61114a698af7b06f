/*
 * passwords.h - where a password comes from (option, file, terminal) and the salted
 * verifier a node stores instead of it.
 */
#ifndef OTA_TOOL_PASSWORDS_H
#define OTA_TOOL_PASSWORDS_H

#include <stddef.h>
#include <stdint.h>

#include "client.h"

/** The password of --password-file unless --password gave one (o->password); the
 *  caller falls back to a node file and then $OTA_PASSWORD. *alloc receives what must
 *  be freed. \return 0, -1 (after a message). */
int resolve_password(ota_client_options_t *o, const char *password_file, char **alloc);
/** Ask on the terminal without echo (malloc'd), NULL without a terminal. */
char *prompt_password(const char *prompt);
/** The salted verifier of pw with a fresh random salt, as text. \return 0, -1. */
int make_verifier(const char *pw, uint32_t iterations, char *text, size_t cap);

#endif
