/*
 * messages.h - what the uploader tells a person when an upload fails: one message
 * (what happened) and one hint (what to do) per device response code and per
 * network failure.
 */
#ifndef OTA_TOOLS_OTA_MESSAGES_H
#define OTA_TOOLS_OTA_MESSAGES_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "client.h"

/** Message and hint for a device error code; hint may be NULL. Never NULL message. */
void ota_device_code_message(uint8_t code, const char **message, const char **hint);

/** Print "error: ..." and "hint: ..." lines for a failed upload to out. */
void ota_print_failure(FILE *out, const ota_client_options_t *o, const ota_client_result_t *r);

/** One "warning:" line when a legacy (MD5/SHA-256) response was sent (r->unproven):
 *  such a device never proves it knows the password. Nothing otherwise. */
void ota_print_auth_warning(FILE *out, const ota_client_options_t *o,
                            const ota_client_result_t *r);

/** Print "error:", "note:" and "hint:" lines for a ".local" host that neither the
 *  system resolver (its words in detail) nor our own mDNS query resolved: nothing
 *  answered within timeout_s, or, with no_query, no query could be sent at all (no
 *  network interface up with multicast). */
void ota_print_mdns_miss(FILE *out, const char *host, const char *detail, double timeout_s,
                         bool no_query);

/** One line saying what is awaited when the node at where has been silent for a few
 *  seconds in phase (client.h's on_wait), and when the tool gives up. */
void ota_print_wait(FILE *out, const char *where, ota_phase_t phase, unsigned limit_s);

/** "connect", "handshake", ... for a phase. */
const char *ota_phase_name(ota_phase_t phase);

#endif /* OTA_TOOLS_OTA_MESSAGES_H */
