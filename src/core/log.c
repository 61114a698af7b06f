/*
 * log.c - the core's log lines and the summaries of repeated ones (ota/log.h).
 * Compiled empty with OTA_CFG_ENABLE_LOG_STRINGS 0.
 */
#include "ota/log.h"

#include <string.h>

void ota_logger_setup(ota_logger_t *lg, const ota_log_port_t *out)
{
    memset(lg, 0, sizeof *lg);
    lg->out = out != NULL && out->line != NULL ? out : NULL;
}

#if OTA_CFG_ENABLE_LOG_STRINGS

void ota_logline_begin(ota_logline_t *l, const char *peer)
{
    ota_sb_init(&l->sb, l->buf, sizeof l->buf);
    if (peer != NULL) {
        ota_sb_str(&l->sb, peer);
        ota_sb_str(&l->sb, ": ");
    }
}

void ota_logline_str(ota_logline_t *l, const char *s)
{
    ota_sb_str(&l->sb, s);
}

void ota_logline_u32(ota_logline_t *l, uint32_t v)
{
    ota_sb_u32(&l->sb, v);
}

void ota_logline_emit(const ota_logger_t *lg, ota_log_level_t lvl, ota_logline_t *l)
{
    if (lg != NULL && lg->out != NULL)
        lg->out->line(lg->out->ctx, lvl, l->buf);
}

void ota_log_peer(const ota_logger_t *lg, ota_log_level_t lvl, const char *peer, const char *msg,
                  int err)
{
    if (lg == NULL || lg->out == NULL)
        return;
    ota_logline_t l;
    ota_logline_begin(&l, peer);
    ota_sb_str(&l.sb, msg);
    if (err != OTA_OK) {
        ota_sb_str(&l.sb, ": ");
        ota_sb_str(&l.sb, ota_strerror(err));
    }
    ota_logline_emit(lg, lvl, &l);
}

bool ota_log_allowed(ota_logger_t *lg, int kind, uint32_t now_ms)
{
    if (lg == NULL)
        return false;
    return ota_ratelimit_allow(&lg->rl[kind], now_ms, OTA_CFG_LOG_REPEAT_MS);
}

void ota_log_peer_repeat(ota_logger_t *lg, int kind, uint32_t now_ms, ota_log_level_t lvl,
                         const char *peer, const char *msg, int err)
{
    if (ota_log_allowed(lg, kind, now_ms))
        ota_log_peer(lg, lvl, peer, msg, err);
}

/* What a summary of each kind of repeated line says: "<head>N<tail>". */
static const struct {
    const char *head, *tail;
    ota_log_level_t lvl;
} repeats[OTA_LOG_REPEAT_COUNT] = {
    [OTA_LOG_REPEAT_DROP] = {"handshake pool full: ", " more dropped", OTA_LOG_WARN},
    [OTA_LOG_REPEAT_BUSY] = {"update in progress: ", " more connections refused", OTA_LOG_WARN},
    [OTA_LOG_REPEAT_HANDSHAKE] = {"failed handshakes: ", " more", OTA_LOG_WARN},
    [OTA_LOG_REPEAT_CONNECT] = {"connections: ", " more", OTA_LOG_DEBUG},
    [OTA_LOG_REPEAT_WAIT] = {"brute-force back-off: ", " more attempts delayed", OTA_LOG_INFO},
    [OTA_LOG_REPEAT_UDP] = {"ArduinoOTA: ", " more datagrams ignored or refused", OTA_LOG_WARN},
};

void ota_log_summaries(ota_logger_t *lg, uint32_t now_ms)
{
    if (lg == NULL)
        return;
    for (int k = 0; k < OTA_LOG_REPEAT_COUNT; k++) {
        uint32_t n = ota_ratelimit_due(&lg->rl[k], now_ms, OTA_CFG_LOG_REPEAT_MS);
        if (n == 0)
            continue;
        ota_logline_t l;
        ota_logline_begin(&l, NULL);
        ota_sb_str(&l.sb, repeats[k].head);
        ota_sb_u32(&l.sb, n);
        ota_sb_str(&l.sb, repeats[k].tail);
        ota_sb_str(&l.sb, " in the last ");
        ota_sb_u32(&l.sb, OTA_CFG_LOG_REPEAT_MS / 1000u);
        ota_sb_str(&l.sb, " s");
        ota_logline_emit(lg, repeats[k].lvl, &l);
    }
}

#endif /* OTA_CFG_ENABLE_LOG_STRINGS */
