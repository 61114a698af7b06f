/*
 * server_internal.h - what server.c shares with the other protocol front ends of the
 * core (arduino.c): the update lock, progress notification, logging (rate-limited
 * for repeated lines) and the per-source brute-force back-off. Not a public header.
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
/** The key of a peer ("ip:port", "[v6]:port" or a bare address) in the per-source
 *  tables: its address part, cut to OTA_CFG_ADDR_MAX - 1 characters. */
void ota_srv_addr_key(const char *peer, char key[OTA_CFG_ADDR_MAX]);
/** Milliseconds an authentication attempt from key must still wait: its own
 *  back-off, the global ceiling, or the longer of both (0: go ahead). */
uint32_t ota_srv_source_wait(const ota_server_t *s, const char *key);
uint32_t ota_srv_global_wait(const ota_server_t *s);
uint32_t ota_srv_auth_wait(const ota_server_t *s, const char *key);
/** A challenge goes to key: in back-off, this starts the wait of key's next attempt
 *  (one attempt per wait, however many connections it opens). */
void ota_srv_auth_begin(ota_server_t *s, const char *key);
/** Count a failed authentication from peer (may start its back-off). This and
 *  ota_srv_auth_ok count one guess against the global ceiling. */
void ota_srv_auth_failed(ota_server_t *s, const char *peer);
/** A successful authentication from peer forgets its failures. */
void ota_srv_auth_ok(ota_server_t *s, const char *peer);
/** A repeated kind of log line (OTA_SRV_RL_*): true when this one is to be logged;
 *  otherwise it is counted for the next summary. */
bool ota_srv_log_allowed(ota_server_t *s, int kind);
/** ota_srv_log of a repeated kind of line. */
void ota_srv_log_repeat(ota_server_t *s, int kind, ota_log_level_t lvl, const char *peer,
                        const char *msg);

/* arduino.c */
int ota_arduino_check_config(const ota_port_t *port, const ota_server_config_t *cfg);
void ota_arduino_poll(ota_server_t *s);
void ota_arduino_free(ota_server_t *s);

#endif /* OTA_CORE_SERVER_INTERNAL_H */
