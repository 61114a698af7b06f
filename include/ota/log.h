/*
 * ota/log.h - the core's log lines: "<peer>: <text>" built without stdio, repeated
 * kinds of line (floods) counted and summarised instead of logged one by one, and
 * the switch that drops every log string from a small build.
 *
 * With OTA_CFG_ENABLE_LOG_STRINGS 0 every function here is an empty inline: the
 * string literals passed to them are never emitted, so a firmware that has no log
 * output (or no room for the text) pays nothing for it.
 */
#ifndef OTA_LOG_H
#define OTA_LOG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "ota/errors.h"
#include "ota/opts.h"
#include "ota/port.h"
#include "ota/ratelimit.h"
#include "ota/util.h"

/** Kinds of line that floods repeat: the first of each is logged, the next ones
 *  within OTA_CFG_LOG_REPEAT_MS only counted, then one summary line is due. */
enum {
    OTA_LOG_REPEAT_DROP = 0,  /**< handshake pool full */
    OTA_LOG_REPEAT_BUSY,      /**< refused, an update is in progress */
    OTA_LOG_REPEAT_HANDSHAKE, /**< failed handshakes */
    OTA_LOG_REPEAT_CONNECT,   /**< connections (debug) */
    OTA_LOG_REPEAT_WAIT,      /**< attempts delayed by the brute-force back-off */
    OTA_LOG_REPEAT_UDP,       /**< ArduinoOTA datagrams ignored or refused */
    OTA_LOG_REPEAT_COUNT
};

/** Where the core's lines go (the port's log hook), and the repeat counters. */
typedef struct ota_logger {
    const ota_log_port_t *out; /* NULL or out->line NULL: no logging */
#if OTA_CFG_ENABLE_LOG_STRINGS
    ota_ratelimit_t rl[OTA_LOG_REPEAT_COUNT];
#endif
} ota_logger_t;

/** One line under construction. */
typedef struct ota_logline {
#if OTA_CFG_ENABLE_LOG_STRINGS
    ota_strbuf_t sb;
    char buf[OTA_CFG_LOG_LINE_MAX];
#else
    char unused;
#endif
} ota_logline_t;

/** Bind the logger to the port's log table (NULL: silent). Never fails. */
void ota_logger_setup(ota_logger_t *lg, const ota_log_port_t *out);

#if OTA_CFG_ENABLE_LOG_STRINGS

/** Start a line; with peer != NULL it opens with "<peer>: ". */
void ota_logline_begin(ota_logline_t *l, const char *peer);
void ota_logline_str(ota_logline_t *l, const char *s);
void ota_logline_u32(ota_logline_t *l, uint32_t v);
/** Emit the line at lvl. */
void ota_logline_emit(const ota_logger_t *lg, ota_log_level_t lvl, ota_logline_t *l);

/** "<peer>: <msg>[: <ota_strerror(err)>]" (err OTA_OK: no suffix). */
void ota_log_peer(const ota_logger_t *lg, ota_log_level_t lvl, const char *peer, const char *msg,
                  int err);
/** An occurrence of a repeated kind at now_ms: true when it is to be logged in full. */
bool ota_log_allowed(ota_logger_t *lg, int kind, uint32_t now_ms);
/** ota_log_peer of a repeated kind of line. */
void ota_log_peer_repeat(ota_logger_t *lg, int kind, uint32_t now_ms, ota_log_level_t lvl,
                         const char *peer, const char *msg, int err);
/** Once per poll: log the summaries that are due. */
void ota_log_summaries(ota_logger_t *lg, uint32_t now_ms);

#else /* !OTA_CFG_ENABLE_LOG_STRINGS */

static inline void ota_logline_begin(ota_logline_t *l, const char *peer)
{
    (void)l;
    (void)peer;
}
static inline void ota_logline_str(ota_logline_t *l, const char *s)
{
    (void)l;
    (void)s;
}
static inline void ota_logline_u32(ota_logline_t *l, uint32_t v)
{
    (void)l;
    (void)v;
}
static inline void ota_logline_emit(const ota_logger_t *lg, ota_log_level_t lvl, ota_logline_t *l)
{
    (void)lg;
    (void)lvl;
    (void)l;
}
static inline void ota_log_peer(const ota_logger_t *lg, ota_log_level_t lvl, const char *peer,
                                const char *msg, int err)
{
    (void)lg;
    (void)lvl;
    (void)peer;
    (void)msg;
    (void)err;
}
static inline bool ota_log_allowed(ota_logger_t *lg, int kind, uint32_t now_ms)
{
    (void)lg;
    (void)kind;
    (void)now_ms;
    return false;
}
static inline void ota_log_peer_repeat(ota_logger_t *lg, int kind, uint32_t now_ms,
                                       ota_log_level_t lvl, const char *peer, const char *msg,
                                       int err)
{
    (void)lg;
    (void)kind;
    (void)now_ms;
    (void)lvl;
    (void)peer;
    (void)msg;
    (void)err;
}
static inline void ota_log_summaries(ota_logger_t *lg, uint32_t now_ms)
{
    (void)lg;
    (void)now_ms;
}

#endif /* OTA_CFG_ENABLE_LOG_STRINGS */

#endif /* OTA_LOG_H */
