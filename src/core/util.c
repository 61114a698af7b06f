/*
 * util.c - freestanding helpers: hex, big-endian, constant-time compare, wiping,
 * and the bounded string builder the core uses for its log lines.
 */
#include "ota/util.h"

#include <string.h>

static const char hexdig[] = "0123456789abcdef";

void ota_hex_encode(const uint8_t *in, size_t len, char *out)
{
    for (size_t i = 0; i < len; i++) {
        out[2 * i] = hexdig[in[i] >> 4];
        out[2 * i + 1] = hexdig[in[i] & 0x0f];
    }
}

static int hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

int ota_hex_decode(const char *in, size_t len, uint8_t *out)
{
    for (size_t i = 0; i < len; i++) {
        int hi = hexval(in[2 * i]);
        int lo = hexval(in[2 * i + 1]);
        if (hi < 0 || lo < 0)
            return -1;
        out[i] = (uint8_t)((hi << 4) | lo);
    }
    return 0;
}

bool ota_ct_equal(const void *a, const void *b, size_t len)
{
    const volatile uint8_t *pa = (const volatile uint8_t *)a;
    const volatile uint8_t *pb = (const volatile uint8_t *)b;
    uint8_t diff = 0;
    for (size_t i = 0; i < len; i++)
        diff |= (uint8_t)(pa[i] ^ pb[i]);
    return diff == 0;
}

void ota_wipe(void *p, size_t len)
{
    volatile uint8_t *v = (volatile uint8_t *)p;
    while (len--)
        *v++ = 0;
}

uint32_t ota_be32_get(const uint8_t *p)
{
    return ((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) | ((uint32_t)p[2] << 8) | p[3];
}

void ota_be32_put(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 24);
    p[1] = (uint8_t)(v >> 16);
    p[2] = (uint8_t)(v >> 8);
    p[3] = (uint8_t)v;
}

static const char b64dig[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

size_t ota_base64_encode(const uint8_t *in, size_t len, char *out, size_t cap)
{
    size_t need = 4 * ((len + 2) / 3) + 1;
    if (cap < need)
        return 0;
    size_t o = 0;
    for (size_t i = 0; i < len; i += 3) {
        uint32_t v = (uint32_t)in[i] << 16;
        if (i + 1 < len)
            v |= (uint32_t)in[i + 1] << 8;
        if (i + 2 < len)
            v |= in[i + 2];
        out[o++] = b64dig[(v >> 18) & 63];
        out[o++] = b64dig[(v >> 12) & 63];
        out[o++] = i + 1 < len ? b64dig[(v >> 6) & 63] : '=';
        out[o++] = i + 2 < len ? b64dig[v & 63] : '=';
    }
    out[o] = '\0';
    return o;
}

static int b64val(char c)
{
    if (c >= 'A' && c <= 'Z')
        return c - 'A';
    if (c >= 'a' && c <= 'z')
        return c - 'a' + 26;
    if (c >= '0' && c <= '9')
        return c - '0' + 52;
    if (c == '+')
        return 62;
    if (c == '/')
        return 63;
    return -1;
}

int ota_base64_decode(const char *in, size_t in_len, uint8_t *out, size_t cap)
{
    if (in_len % 4 != 0)
        return -1;
    size_t o = 0;
    for (size_t i = 0; i < in_len; i += 4) {
        bool last = i + 4 == in_len;
        int pad = 0;
        uint32_t v = 0;
        for (size_t k = 0; k < 4; k++) {
            char c = in[i + k];
            int d;
            if (c == '=' && last && k >= 2) {
                /* padding only at the very end, and nothing but padding after it */
                if (k == 2 && in[i + 3] != '=')
                    return -1;
                pad++;
                d = 0;
            } else {
                if (pad)
                    return -1;
                d = b64val(c);
                if (d < 0)
                    return -1;
            }
            v = (v << 6) | (uint32_t)d;
        }
        size_t n = 3 - (size_t)pad;
        if (o + n > cap)
            return -1;
        out[o++] = (uint8_t)(v >> 16);
        if (n > 1)
            out[o++] = (uint8_t)(v >> 8);
        if (n > 2)
            out[o++] = (uint8_t)v;
    }
    return (int)o;
}

void ota_sb_init(ota_strbuf_t *sb, char *buf, size_t cap)
{
    sb->buf = buf;
    sb->cap = cap;
    sb->len = 0;
    if (cap > 0)
        buf[0] = '\0';
}

static void sb_putc(ota_strbuf_t *sb, char c)
{
    if (sb->len + 1 < sb->cap) {
        sb->buf[sb->len++] = c;
        sb->buf[sb->len] = '\0';
    }
}

void ota_sb_str(ota_strbuf_t *sb, const char *s)
{
    if (s == NULL)
        s = "(null)";
    while (*s)
        sb_putc(sb, *s++);
}

void ota_sb_u32(ota_strbuf_t *sb, uint32_t v)
{
    char tmp[10];
    size_t n = 0;
    do {
        tmp[n++] = (char)('0' + v % 10u);
        v /= 10u;
    } while (v != 0);
    while (n > 0)
        sb_putc(sb, tmp[--n]);
}

void ota_sb_i32(ota_strbuf_t *sb, int32_t v)
{
    if (v < 0) {
        sb_putc(sb, '-');
        ota_sb_u32(sb, (uint32_t)0 - (uint32_t)v);
    } else {
        ota_sb_u32(sb, (uint32_t)v);
    }
}

void ota_sb_hex8(ota_strbuf_t *sb, uint8_t v)
{
    char h[2];
    ota_hex_encode(&v, 1, h);
    sb_putc(sb, '0');
    sb_putc(sb, 'x');
    sb_putc(sb, h[0]);
    sb_putc(sb, h[1]);
}

uint32_t ota_backoff_ms(uint32_t failures, uint32_t free_failures, uint32_t base_ms,
                        uint32_t max_ms)
{
    if (base_ms == 0 || failures <= free_failures)
        return 0;
    uint32_t extra = failures - free_failures - 1u;
    uint32_t delay = base_ms;
    while (extra-- > 0 && delay < max_ms)
        delay = delay > UINT32_MAX / 2 ? UINT32_MAX : delay * 2u;
    return delay > max_ms ? max_ms : delay;
}
