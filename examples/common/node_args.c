/*
 * node_args.c - the example firmwares' shared command-line pieces (node_args.h).
 */
#include "node_args.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <mbedtls/md5.h>
#include <mbedtls/sha256.h>

bool node_parse_u32(const char *s, unsigned long max, uint32_t *out)
{
    char *end;
    errno = 0;
    unsigned long v = strtoul(s, &end, 10);
    if (*s == '\0' || *end != '\0' || errno != 0 || v > max)
        return false;
    *out = (uint32_t)v;
    return true;
}

const char *node_read_password_file(const char *path, char *buf, size_t cap)
{
    FILE *f = fopen(path, "r");
    if (f == NULL)
        return "--password-file cannot be read";
    size_t n = fread(buf, 1, cap - 1, f);
    bool more = fgetc(f) != EOF;
    fclose(f);
    buf[n] = '\0';
    size_t len = strcspn(buf, "\r\n");
    if (len == n && more)
        return "--password-file: the password is longer than 255 bytes";
    buf[len] = '\0';
    if (len == 0)
        return "--password-file holds an empty first line (use --no-password)";
    return NULL;
}

void node_arduino_hash(const char *password, bool md5, char *out)
{
    unsigned char d[32];
    if (md5)
        mbedtls_md5_ret((const unsigned char *)password, strlen(password), d);
    else
        mbedtls_sha256_ret((const unsigned char *)password, strlen(password), d, 0);
    for (int i = 0; i < (md5 ? 16 : 32); i++)
        snprintf(out + 2 * i, 3, "%02x", d[i]);
    memset(d, 0, sizeof d);
}

uint32_t node_desc_secure_version(const ota_app_desc_t *d)
{
    const volatile uint32_t *p = &d->secure_version;
    return *p;
}

const char *node_desc_version(const ota_app_desc_t *d, char *out, const char *fallback)
{
    const volatile char *p = d->version;
    for (size_t i = 0; i + 1 < OTA_APP_DESC_VERSION_LEN; i++)
        out[i] = p[i];
    out[OTA_APP_DESC_VERSION_LEN - 1] = '\0';
    return out[0] != '\0' ? out : fallback;
}
