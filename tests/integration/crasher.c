/*
 * crasher.c - a "firmware" that crashes the moment it starts, before it could run
 * any OTA code: the bad update of the rollback tests. It carries an image
 * descriptor (ota/app_desc.h) so that 'ota sign --security-version' can give it a
 * security version: the bad update of the anti-rollback tests too.
 */
#include <stdio.h>
#include <stdlib.h>

#include "ota/app_desc.h"

__attribute__((used)) const ota_app_desc_t crasher_app_desc = {
    .magic_word = OTA_APP_DESC_MAGIC,
    .version = "crasher",
    .project_name = "crasher",
};

int main(void)
{
    fputs("[E][crasher] crashing at start\n", stdout);
    fflush(stdout);
    abort();
}
