/*
 * layout.c - the two ESP8266-like layouts (layout.h) and the Updater's placement
 * of the update area.
 */
#include "layout.h"

#include <string.h>

#include "ota/errors.h"

#define SECTOR 4096u

static const ota_lwip_layout_t esp8266_1m = {
    .name = "esp8266-1m",
    .ld = "eagle.flash.1m64.ld",
    .flash_size = 0x100000u,
    .eboot = 0,
    .app_start = 0x1000u,
    .fs_start = 0xEB000u,
    .fs_end = 0xF9000u,
    .bootrec = {0xF9000u, 0xFA000u},
    .eeprom = 0xFB000u,
    .rfcal = 0xFC000u,
    .sdk = 0xFD000u,
};

static const ota_lwip_layout_t esp8266_4m = {
    .name = "esp8266-4m",
    .ld = "eagle.flash.4m2m.ld",
    .flash_size = 0x400000u,
    .eboot = 0,
    .app_start = 0x1000u,
    .fs_start = 0x200000u,
    .fs_end = 0x3F9000u,
    .bootrec = {0x3F9000u, 0x3FA000u},
    .eeprom = 0x3FB000u,
    .rfcal = 0x3FC000u,
    .sdk = 0x3FD000u,
};

const ota_lwip_layout_t *const ota_lwip_layouts[] = {&esp8266_1m, &esp8266_4m, NULL};

const ota_lwip_layout_t *ota_lwip_layout_for_size(uint32_t flash_size)
{
    for (size_t i = 0; ota_lwip_layouts[i] != NULL; i++)
        if (ota_lwip_layouts[i]->flash_size == flash_size)
            return ota_lwip_layouts[i];
    return NULL;
}

const ota_lwip_layout_t *ota_lwip_layout_by_name(const char *name)
{
    for (size_t i = 0; ota_lwip_layouts[i] != NULL; i++)
        if (strcmp(ota_lwip_layouts[i]->name, name) == 0)
            return ota_lwip_layouts[i];
    return NULL;
}

uint32_t ota_lwip_layout_round(uint32_t x)
{
    if (x > UINT32_MAX - (SECTOR - 1u))
        return UINT32_MAX - (SECTOR - 1u); /* larger than any chip: no fit anyway */
    return (x + SECTOR - 1u) & ~(SECTOR - 1u);
}

/* The largest update the copy can take without writing over its own source. */
static uint32_t half_region(const ota_lwip_layout_t *l)
{
    return (l->fs_start - l->app_start) / 2u & ~(SECTOR - 1u);
}

int ota_lwip_layout_update_area(const ota_lwip_layout_t *l, uint32_t app_size,
                                uint32_t image_size, uint32_t *start, uint32_t *end)
{
    uint32_t rounded = ota_lwip_layout_round(image_size);
    uint32_t app_end = l->app_start + ota_lwip_layout_round(app_size);
    *end = l->fs_start;
    *start = l->fs_start > rounded ? l->fs_start - rounded : 0;
    /* The Updater's rule: the area must not reach down into the running application.
     * And ours: the copied image must not reach up into the area, or the copy would
     * overwrite the source it resumes from after a power cut (ESP8266's eboot copies
     * without that guarantee). */
    if (image_size == 0 || *start < app_end || app_end > l->fs_start ||
        rounded > half_region(l))
        return OTA_ERR_NO_SPACE_LAYOUT;
    return OTA_OK;
}

uint32_t ota_lwip_layout_max_update(const ota_lwip_layout_t *l, uint32_t app_size)
{
    uint32_t app_end = l->app_start + ota_lwip_layout_round(app_size);
    uint32_t room = app_end < l->fs_start ? l->fs_start - app_end : 0;
    return room < half_region(l) ? room : half_region(l);
}
