/*
 * log_proto.c - the hello line of the log viewer stream (see ota/log_proto.h): the
 * formatter the firmware uses and the parser the viewer uses.
 */
#include "ota/log_proto.h"

#include <stddef.h>
#include <string.h>

#include "ota/errors.h"
#include "ota/util.h"

bool ota_log_line_is(const char *line, const char *prefix)
{
    if (line == NULL || prefix == NULL)
        return false;
    size_t i = 0;
    while (prefix[i] != '\0' && line[i] == prefix[i]) /* stops at the end of line too */
        i++;
    return prefix[i] == '\0';
}

size_t ota_log_hello_format(char *out, size_t cap, const char *node, char slot, bool safe_mode)
{
    if (out == NULL || cap == 0 || node == NULL)
        return 0;
    char sl[2] = {slot, '\0'};
    ota_strbuf_t sb;
    ota_sb_init(&sb, out, cap);
    ota_sb_str(&sb, OTA_LOG_HELLO_PREFIX);
    ota_sb_str(&sb, OTA_LOG_HELLO_NODE);
    ota_sb_str(&sb, node);
    ota_sb_str(&sb, " ");
    ota_sb_str(&sb, OTA_LOG_HELLO_SLOT);
    ota_sb_str(&sb, sl);
    ota_sb_str(&sb, " ");
    ota_sb_str(&sb, OTA_LOG_HELLO_SAFE_MODE);
    ota_sb_str(&sb, safe_mode ? "1" : "0");
    if (sb.len + 1 >= cap) { /* cut: too small */
        out[0] = '\0';
        return 0;
    }
    return sb.len;
}

/* the field "key=value" in the space-separated fields of s: the value's start and
 * length, or NULL */
static const char *field(const char *s, const char *key, size_t *len)
{
    size_t kl = strlen(key);
    while (*s != '\0') {
        while (*s == ' ')
            s++;
        size_t n = 0;
        while (s[n] != '\0' && s[n] != ' ' && s[n] != '\r' && s[n] != '\n')
            n++;
        if (n >= kl && memcmp(s, key, kl) == 0) {
            *len = n - kl;
            return s + kl;
        }
        s += n;
        if (*s == '\r' || *s == '\n')
            break;
    }
    return NULL;
}

int ota_log_hello_parse(const char *line, ota_log_hello_t *out)
{
    if (line == NULL || out == NULL || !ota_log_line_is(line, OTA_LOG_HELLO_PREFIX))
        return OTA_ERR_MALFORMED;
    const char *rest = line + strlen(OTA_LOG_HELLO_PREFIX);
    size_t n = 0;
    const char *node = field(rest, OTA_LOG_HELLO_NODE, &n);
    if (node == NULL)
        return OTA_ERR_MALFORMED; /* another "# ota-log ..." line (evicted) */
    memset(out, 0, sizeof *out);
    if (n > sizeof out->node - 1)
        n = sizeof out->node - 1;
    memcpy(out->node, node, n);
    const char *v = field(rest, OTA_LOG_HELLO_SLOT, &n);
    out->slot = v != NULL && n == 1 ? v[0] : '?';
    v = field(rest, OTA_LOG_HELLO_SAFE_MODE, &n);
    out->safe_mode = v != NULL && n >= 1 && v[0] == '1';
    return 0;
}
