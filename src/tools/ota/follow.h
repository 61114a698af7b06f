/*
 * follow.h - after an upload: wait until the node answers the OTA handshake again,
 * and follow its log lines (the node's logger serves them on its log port),
 * reconnecting across reboots. Used by `ota logs` and `ota run`.
 */
#ifndef OTA_TOOLS_OTA_FOLLOW_H
#define OTA_TOOLS_OTA_FOLLOW_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/** Poll host:port with the native handshake until the node answers (00 + version)
 *  or timeout_s passes. \return 0 (*secs = how long it took), -1 on timeout. */
int ota_wait_for_node(const char *host, uint16_t port, unsigned timeout_s, double *secs);

/** Print the node's log lines from host:log_port to stdout until Ctrl-C, or for
 *  follow_s seconds when it is not 0. Reconnects when the node goes away (reboots).
 *  A node with a password first sends a challenge (docs/protocol.md#logs-auth): it is answered with password (NULL: none) and the node's signature is
 *  checked before a single log line is shown. When first_hello is not NULL, the first
 *  hello line of the node is copied there.
 *  \return 0 when stopped by Ctrl-C, the time limit or a newer viewer taking the slot;
 *  3 when the node never answered; 4 (OTA_EXIT_AUTH) on no or a wrong password, or a
 *  node that could not prove it knows the password (the message is printed). */
int ota_follow_logs(const char *host, uint16_t log_port, unsigned follow_s,
                    const char *password, char *first_hello, size_t hello_cap);

#endif /* OTA_TOOLS_OTA_FOLLOW_H */
