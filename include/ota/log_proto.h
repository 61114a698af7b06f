/*
 * ota/log_proto.h - the single definition of the log viewer stream's lines
 * (docs/protocol.md#logs): the hello line with its one formatter and one parser,
 * and the protocol lines a node sends and a viewer (src/tools/ota/follow.c) reads.
 * The node's side is the port's log server (src/port/posix/net.c); the integration
 * tests read this file (tests/integration/protocol_consts.py).
 *
 * Everything is text lines ending in "\n"; lines that start with
 * OTA_LOG_PROTO_MARK are the protocol's, all others are log lines.
 */
#ifndef OTA_LOG_PROTO_H
#define OTA_LOG_PROTO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/** The first character of every protocol line. */
#define OTA_LOG_PROTO_MARK '#'

/** The log port when the configuration names none: the OTA port + 1 (65534 for an
 *  OTA port of 65535). */
#define OTA_LOG_DEFAULT_PORT(ota_port) ((ota_port) == 65535u ? 65534u : (ota_port) + 1u)

/** Hello: "# ota-log node=<name> slot=<a|b> safe_mode=<0|1>", the first line a viewer
 *  gets (after the auth exchange, when there is one). */
#define OTA_LOG_HELLO_PREFIX "# ota-log "
#define OTA_LOG_HELLO_NODE "node="
#define OTA_LOG_HELLO_SLOT "slot="
#define OTA_LOG_HELLO_SAFE_MODE "safe_mode="
/** Room for a hello line with its NUL (without the "\n"). */
#define OTA_LOG_HELLO_MAX 160

/** The salted exchange (text framing of ota/auth.h's salted auth):
 *  node:   OTA_LOG_AUTH_CHALLENGE "salt=<32 hex> iterations=<decimal> nonce=<64 hex>"
 *  viewer: OTA_LOG_AUTH_ANSWER "<64 hex client nonce> <64 hex ClientProof>"
 *  node:   OTA_LOG_AUTH_OK "<64 hex ServerSignature>", or OTA_LOG_AUTH_FAILED. */
#define OTA_LOG_AUTH_PREFIX "# ota-log-auth " /* every line of the exchange */
#define OTA_LOG_AUTH_CHALLENGE "# ota-log-auth v1 "
#define OTA_LOG_AUTH_ANSWER "auth "
#define OTA_LOG_AUTH_OK "# ota-log-auth ok signature="
#define OTA_LOG_AUTH_FAILED "# ota-log-auth failed"
/** AuthMessage's label on the log port (OTA_SALTED_LABEL on the OTA port). */
#define OTA_LOG_AUTH_LABEL "ota-salted-logs-v1"

/** Sent to a viewer that loses its slot to a newer one, before the close. */
#define OTA_LOG_EVICTED "# ota-log evicted: a newer viewer took this slot"
#define OTA_LOG_EVICTED_PREFIX "# ota-log evicted"
/** Sent to a newcomer turned away because every slot is taken, before the close. */
#define OTA_LOG_BUSY "# too many log viewers; try again later"
#define OTA_LOG_BUSY_PREFIX "# too many log viewers"

/** The facts of a hello line. */
typedef struct ota_log_hello {
    char node[64]; /* the node name */
    char slot;     /* 'a' or 'b' */
    bool safe_mode;
} ota_log_hello_t;

/** The hello line (without "\n") into out, NUL-terminated.
 *  \return its length, or 0 (NULL argument, or cap too small). */
size_t ota_log_hello_format(char *out, size_t cap, const char *node, char slot, bool safe_mode);

/** Parse a hello line (with or without its line end). \return 0, OTA_ERR_MALFORMED (not one). */
int ota_log_hello_parse(const char *line, ota_log_hello_t *out);

/** true when line starts with prefix (one of the OTA_LOG_* prefixes above). */
bool ota_log_line_is(const char *line, const char *prefix);

#endif /* OTA_LOG_PROTO_H */
