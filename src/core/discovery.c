/*
 * discovery.c - the TXT records of the DNS-SD services (see ota/discovery.h): the
 * builder of the firmware and the parser of the uploader, so that both sides read
 * the keys from one place.
 */
#include "ota/discovery.h"

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "ota/errors.h"
#include "ota/util.h"

static const struct {
    const char *bit_name;
    unsigned bit;
} auth_methods[] = {
    /* strongest first: the order of the advertised value */
    {OTA_TXT_AUTH_SALTED, OTA_DISCOVERY_AUTH_SALTED},
    {OTA_TXT_AUTH_SHA256, OTA_DISCOVERY_AUTH_SHA256},
    {OTA_TXT_AUTH_MD5, OTA_DISCOVERY_AUTH_MD5},
};
#define N_METHODS (sizeof auth_methods / sizeof auth_methods[0])

static const struct {
    const char *key;
    ota_discovery_key_t id;
} keys[] = {
    {OTA_TXT_TXTVERS, OTA_TXT_KEY_TXTVERS},       {OTA_TXT_NAME, OTA_TXT_KEY_NAME},
    {OTA_TXT_VERSION, OTA_TXT_KEY_VERSION},       {OTA_TXT_PLATFORM, OTA_TXT_KEY_PLATFORM},
    {OTA_TXT_PROTOCOL, OTA_TXT_KEY_PROTOCOL},     {OTA_TXT_AUTH, OTA_TXT_KEY_AUTH},
    {OTA_TXT_BOARD, OTA_TXT_KEY_BOARD},           {OTA_TXT_TCP_CHECK, OTA_TXT_KEY_TCP_CHECK},
    {OTA_TXT_SSH_UPLOAD, OTA_TXT_KEY_SSH_UPLOAD}, {OTA_TXT_AUTH_UPLOAD, OTA_TXT_KEY_AUTH_UPLOAD},
};

static char lower(char c)
{
    return c >= 'A' && c <= 'Z' ? (char)(c - 'A' + 'a') : c;
}

/* s[0..n) equals the NUL-terminated lowercase word, ignoring the case of s */
static bool word_is(const uint8_t *s, size_t n, const char *word)
{
    size_t i = 0;
    for (; i < n && word[i] != '\0'; i++)
        if (lower((char)s[i]) != word[i])
            return false;
    return i == n && word[i] == '\0';
}

/* ------------------------------------------------------------ building */

typedef struct {
    ota_discovery_txt_t *t;
    size_t used;
    int n;
    bool overflow;
} builder_t;

static void begin(builder_t *b, ota_discovery_txt_t *t)
{
    memset(t, 0, sizeof *t);
    b->t = t;
    b->used = 0;
    b->n = 0;
    b->overflow = false;
}

/* one "key=value" string */
static void add(builder_t *b, const char *key, const char *value)
{
    if (b->overflow || b->n >= OTA_DISCOVERY_TXT_MAX) {
        b->overflow = true;
        return;
    }
    ota_strbuf_t sb;
    char *at = b->t->buf + b->used;
    size_t cap = sizeof b->t->buf - b->used;
    ota_sb_init(&sb, at, cap);
    ota_sb_str(&sb, key);
    ota_sb_str(&sb, "=");
    ota_sb_str(&sb, value);
    if (sb.len + 1 >= cap) { /* cut (or just filled): take it as not fitting */
        b->overflow = true;
        return;
    }
    b->t->strings[b->n++] = at;
    b->used += sb.len + 1;
}

static int end(builder_t *b)
{
    if (b->overflow) {
        memset(b->t, 0, sizeof *b->t);
        return OTA_ERR_TOO_LONG;
    }
    b->t->strings[b->n] = NULL;
    return 0;
}

size_t ota_discovery_auth_format(unsigned auth, char *out, size_t cap)
{
    ota_strbuf_t sb;
    if (out == NULL || cap == 0)
        return 0;
    ota_sb_init(&sb, out, cap);
    bool any = false;
    for (size_t i = 0; i < N_METHODS; i++) {
        if ((auth & auth_methods[i].bit) == 0)
            continue;
        if (any)
            ota_sb_str(&sb, OTA_TXT_AUTH_SEPARATOR);
        ota_sb_str(&sb, auth_methods[i].bit_name);
        any = true;
    }
    if (!any)
        ota_sb_str(&sb, OTA_TXT_AUTH_NONE);
    if (sb.len + 1 >= cap) {
        out[0] = '\0';
        return 0;
    }
    return sb.len;
}

int ota_discovery_ota_txt(ota_discovery_txt_t *t, const ota_discovery_ota_info_t *info)
{
    if (t == NULL || info == NULL || info->name == NULL || info->version == NULL ||
        info->platform == NULL)
        return OTA_ERR_INVALID_ARG;
    char proto[12], auth[32];
    ota_strbuf_t sb;
    ota_sb_init(&sb, proto, sizeof proto);
    ota_sb_u32(&sb, (uint32_t)info->protocol);
    if (ota_discovery_auth_format(info->auth, auth, sizeof auth) == 0)
        return OTA_ERR_TOO_LONG;
    builder_t b;
    begin(&b, t);
    add(&b, OTA_TXT_TXTVERS, OTA_TXT_TXTVERS_VALUE);
    add(&b, OTA_TXT_NAME, info->name);
    add(&b, OTA_TXT_VERSION, info->version);
    add(&b, OTA_TXT_PLATFORM, info->platform);
    add(&b, OTA_TXT_PROTOCOL, proto);
    add(&b, OTA_TXT_AUTH, auth);
    return end(&b);
}

int ota_discovery_arduino_txt(ota_discovery_txt_t *t, const char *board, bool password)
{
    if (t == NULL || board == NULL)
        return OTA_ERR_INVALID_ARG;
    builder_t b;
    begin(&b, t);
    add(&b, OTA_TXT_BOARD, board);
    add(&b, OTA_TXT_TCP_CHECK, OTA_TXT_NO);
    add(&b, OTA_TXT_SSH_UPLOAD, OTA_TXT_NO);
    add(&b, OTA_TXT_AUTH_UPLOAD, password ? OTA_TXT_YES : OTA_TXT_NO);
    return end(&b);
}

/* ------------------------------------------------------------ parsing */

ota_discovery_key_t ota_discovery_txt_key(const uint8_t *s, size_t n, const uint8_t **value,
                                          size_t *vlen)
{
    if (value != NULL)
        *value = NULL;
    if (vlen != NULL)
        *vlen = 0;
    if (s == NULL)
        return OTA_TXT_KEY_UNKNOWN;
    const uint8_t *eq = n > 0 ? memchr(s, '=', n) : NULL;
    if (eq == NULL) /* a boolean attribute: no key we use is one */
        return OTA_TXT_KEY_UNKNOWN;
    size_t klen = (size_t)(eq - s);
    if (value != NULL)
        *value = eq + 1;
    if (vlen != NULL)
        *vlen = n - klen - 1;
    for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++)
        if (word_is(s, klen, keys[i].key))
            return keys[i].id;
    return OTA_TXT_KEY_UNKNOWN;
}

int ota_discovery_auth_parse(const uint8_t *v, size_t n, unsigned *auth)
{
    if (auth != NULL)
        *auth = 0;
    if (v == NULL || n == 0)
        return OTA_ERR_INVALID_ARG;
    unsigned bits = 0;
    size_t at = 0;
    while (at <= n) {
        size_t e = at;
        while (e < n && v[e] != OTA_TXT_AUTH_SEPARATOR[0])
            e++;
        const uint8_t *w = v + at;
        size_t wl = e - at;
        unsigned bit = OTA_DISCOVERY_AUTH_OTHER;
        if (word_is(w, wl, OTA_TXT_AUTH_NONE))
            bit = 0;
        for (size_t i = 0; i < N_METHODS; i++)
            if (word_is(w, wl, auth_methods[i].bit_name))
                bit = auth_methods[i].bit;
        bits |= bit;
        at = e + 1;
    }
    if (auth != NULL)
        *auth = bits;
    return 0;
}

int ota_discovery_yes_no(const uint8_t *v, size_t n)
{
    if (v == NULL)
        return OTA_ERR_INVALID_ARG;
    if (word_is(v, n, OTA_TXT_YES))
        return 1;
    if (word_is(v, n, OTA_TXT_NO))
        return 0;
    return OTA_ERR_INVALID_ARG;
}
