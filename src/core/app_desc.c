/*
 * app_desc.c - finding the image descriptor in a streamed image (ota/app_desc.h).
 */
#include "ota/app_desc.h"

#include <string.h>

/* OTA_APP_DESC_MAGIC, little-endian, byte i (computed, so that no copy of the
 * pattern sits in this code's own constants for a scan of its firmware to find) */
static uint8_t magic(unsigned i)
{
    return (uint8_t)(OTA_APP_DESC_MAGIC >> (8 * i));
}

/* A real descriptor, not the pattern by chance: reserv1 is zero and the version is
 * printable text with its NUL inside its 32 bytes. */
static bool plausible(const uint8_t *d)
{
    for (unsigned i = 8; i < OTA_APP_DESC_OFF_VERSION; i++)
        if (d[i] != 0)
            return false;
    const uint8_t *v = d + OTA_APP_DESC_OFF_VERSION;
    for (unsigned i = 0; i < OTA_APP_DESC_VERSION_LEN; i++) {
        if (v[i] == 0)
            return true;
        if (v[i] < 0x20 || v[i] > 0x7e)
            return false;
    }
    return false;
}

void ota_app_desc_scan_init(ota_app_desc_scan_t *s)
{
    memset(s, 0, sizeof *s);
}

void ota_app_desc_scan_feed(ota_app_desc_scan_t *s, const uint8_t *p, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (s->found && s->have == sizeof s->head) {
            s->pos += (uint32_t)(n - i); /* all the scanner keeps is in: count the rest */
            return;
        }
        if (!s->found && s->match == 0) {
            /* nothing under way: only a magic first byte at a multiple of 4 can start
             * a match, so step over the rest four bytes at a time (this runs over every
             * image byte the node receives) */
            size_t j = i + (size_t)((4u - s->pos % 4u) % 4u);
            while (j < n && p[j] != magic(0))
                j += 4;
            if (j >= n) {
                s->pos += (uint32_t)(n - i);
                return;
            }
            s->pos += (uint32_t)(j - i);
            i = j;
        }
        uint8_t b = p[i];
        s->pos++;
        if (s->found) {
            if (s->have == sizeof s->head)
                continue; /* all the scanner keeps is in */
            s->head[s->have++] = b;
            if (s->have == sizeof s->head && !plausible(s->head)) {
                /* the pattern by chance: look again from the word after it, over the
                 * bytes kept (ota_app_desc_find() looks at every 4-aligned word too) */
                uint8_t again[sizeof s->head - 4];
                memcpy(again, s->head + 4, sizeof again);
                s->found = false;
                s->match = 0;
                s->pos = s->offset + 4;
                ota_app_desc_scan_feed(s, again, sizeof again);
            }
            continue;
        }
        /* the magic word starts at a multiple of 4 */
        uint32_t at = s->pos - 1; /* this byte's offset */
        if (s->match > 0 && b == magic(s->match)) {
            if (++s->match == 4) {
                s->found = true;
                s->offset = at - 3;
                for (unsigned k = 0; k < 4; k++)
                    s->head[k] = magic(k);
                s->have = 4;
            }
            continue;
        }
        s->match = (b == magic(0) && at % 4 == 0) ? 1 : 0;
    }
}

bool ota_app_desc_scan_result(const ota_app_desc_scan_t *s, uint32_t *secure_version,
                              char *version)
{
    /* the whole 256-byte descriptor must lie inside what was seen (as for find) */
    if (!s->found || s->have < sizeof s->head || s->pos < s->offset + OTA_APP_DESC_SIZE)
        return false;
    const uint8_t *v = s->head + OTA_APP_DESC_OFF_SECURE_VERSION;
    *secure_version = (uint32_t)v[0] | (uint32_t)v[1] << 8 | (uint32_t)v[2] << 16 |
                      (uint32_t)v[3] << 24;
    if (version != NULL) {
        memcpy(version, s->head + OTA_APP_DESC_OFF_VERSION, OTA_APP_DESC_VERSION_LEN);
        version[OTA_APP_DESC_VERSION_LEN - 1] = '\0';
    }
    return true;
}

long ota_app_desc_find(const uint8_t *image, size_t len)
{
    for (size_t off = 0; off + OTA_APP_DESC_SIZE <= len; off += 4)
        if (image[off] == magic(0) && image[off + 1] == magic(1) && image[off + 2] == magic(2) &&
            image[off + 3] == magic(3) && plausible(image + off))
            return (long)off;
    return -1;
}
