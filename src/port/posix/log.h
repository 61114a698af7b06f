/*
 * log.h - the logging of the POSIX port (log.c): one line "[L][tag] text" to
 * stdout, and to the log viewers of the node's log server (ota_posix_log_listen(),
 * net.c) when the context has one.
 *
 * No global state: the log server is part of the ota_posix_t the line is logged
 * for. The core's log table (ota_log_port_t) gets that context as its ctx pointer
 * (ota_posix_port_log); everything else passes it to ota_posix_logf(). NULL logs
 * to stdout only (before there is a context, or in a process without a node).
 */
#ifndef OTA_PORT_POSIX_LOG_H
#define OTA_PORT_POSIX_LOG_H

#include "ota/port.h"

typedef struct ota_posix ota_posix_t; /* ota_posix.h */

/** Print one log line "[L][tag] text" to stdout (line-buffered, flushed) and send it
 *  to the log viewers of ctx (none when ctx is NULL or its log server is off).
 *  Lines are cut to about 1 KB. */
void ota_posix_logf(ota_posix_t *ctx, ota_log_level_t level, const char *tag, const char *fmt,
                    ...) __attribute__((format(printf, 4, 5)));

/** The log table's line function: user is the ota_posix_t. Lines of the mDNS responder
 *  ("mdns: ...") get the tag "mdns", the others "ota". */
void ota_posix_port_log(void *user, ota_log_level_t level, const char *line);

#endif /* OTA_PORT_POSIX_LOG_H */
