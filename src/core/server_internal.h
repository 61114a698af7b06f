/*
 * server_internal.h - what server.c shares with the other protocol front ends of the
 * core (arduino.c): the update lock, progress notification, logging and the
 * brute-force back-off. Not a public header.
 */
#ifndef OTA_CORE_SERVER_INTERNAL_H
#define OTA_CORE_SERVER_INTERNAL_H

#include "ota/server.h"

/** Log "<peer>: <msg>". */
void ota_srv_log(const ota_server_t *s, ota_log_level_t lvl, const char *peer, const char *msg);
/** Tell the firmware's callback about the update. */
void ota_srv_notify(ota_server_t *s, ota_state_t st, int err);
/** Abort the update held by holder (if it holds one): slot discarded, lock free. */
void ota_srv_release_update(ota_server_t *s, int holder, int err);
/** true while the brute-force back-off delays authentication. */
bool ota_srv_backoff_active(const ota_server_t *s);
/** Count a failed authentication from peer (may start the back-off). */
void ota_srv_auth_failed(ota_server_t *s, const char *peer);
/** A successful authentication resets the count. */
void ota_srv_auth_ok(ota_server_t *s);

/* arduino.c */
int ota_arduino_check_config(const ota_port_t *port, const ota_server_config_t *cfg);
void ota_arduino_poll(ota_server_t *s);
void ota_arduino_free(ota_server_t *s);

#endif /* OTA_CORE_SERVER_INTERNAL_H */
