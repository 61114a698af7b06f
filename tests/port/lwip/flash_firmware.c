/*
 * flash_firmware.c - a firmware for the tests of lwip-boot (test_lwip_boot.py). It
 * takes what lwip-boot passes (--flash FILE [--tap TAP]) and scripted arguments:
 *   --log PATH        append one line per start: "start sha=<app sha256> args=<...>"
 *   --reboots-file P  P holds a number N: while N > 0, write N-1 and exit 42 (reboot)
 *   --install IMAGE   unless IMAGE is the running application already: put it
 *                     through the port's store table as the core does with an upload
 *                     (begin, write in odd chunks retrying WOULD_BLOCK, finish,
 *                     activate), call the boot table's reboot and exit 42; a refused
 *                     begin prints "begin: <code> <wire code>" and exits 5
 *   --wait            sleep until SIGTERM, then log "terminated" and exit 0
 *   --exit N          the exit status otherwise (default 0)
 * No network: this is the flash side of an update, end to end through lwip-boot.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ota/errors.h"
#include "ota/protocol.h"
#include "ota_lwip_flash.h"

static volatile sig_atomic_t got_term = 0;

static void on_term(int sig)
{
    (void)sig;
    got_term = 1;
}

static void logf_line(const char *log, const char *text)
{
    if (log == NULL)
        return;
    FILE *f = fopen(log, "a");
    if (f == NULL)
        exit(90);
    fprintf(f, "%s\n", text);
    fclose(f);
}

static int install(ota_lwip_flash_t *fl, const char *image)
{
    FILE *in = fopen(image, "rb");
    if (in == NULL)
        return 91;
    static uint8_t buf[4u * 1024u * 1024u];
    size_t len = fread(buf, 1, sizeof buf, in);
    fclose(in);
    /* already running it (the restart after the update): nothing to do */
    uint32_t size;
    uint8_t now[32], want[32];
    ota_lwip_sha256_t h;
    ota_lwip_sha256_start(&h);
    ota_lwip_sha256_update(&h, buf, len);
    ota_lwip_sha256_finish(&h, want);
    if (ota_lwip_flash_app_info(fl, &size, now) == 0 && memcmp(now, want, 32) == 0)
        return -1;
    const ota_store_port_t *s = ota_lwip_flash_slot(fl);
    int rc;
    while ((rc = s->begin(s->ctx, (uint32_t)len)) == OTA_ERR_WOULD_BLOCK) {
    }
    if (rc != OTA_OK) {
        printf("begin: %d 0x%02x\n", rc, ota_protocol_response_for_error(rc));
        return 5;
    }
    size_t off = 0;
    unsigned step = 0;
    while (off < len) {
        size_t n = 1460u + (step++ % 7u);
        if (n > len - off)
            n = len - off;
        rc = s->write(s->ctx, (uint32_t)off, buf + off, n);
        if (rc == OTA_ERR_WOULD_BLOCK)
            continue;
        if (rc != OTA_OK) {
            printf("write: %d\n", rc);
            return 6;
        }
        off += n;
    }
    if ((rc = s->finish(s->ctx, (uint32_t)len)) != OTA_OK || (rc = s->activate(s->ctx)) != OTA_OK) {
        printf("finish/activate: %d\n", rc);
        return 7;
    }
    const ota_boot_port_t *b = ota_lwip_flash_boot(fl);
    b->reboot(b->ctx);
    return ota_lwip_flash_reboot_requested(fl) ? 42 : 8;
}

int main(int argc, char **argv)
{
    const char *flash = NULL, *log = NULL, *reboots = NULL, *image = NULL;
    bool wait = false;
    int code = 0;
    char args[2048] = "";
    for (int i = 1; i < argc; i++) {
        strncat(args, argv[i], sizeof args - strlen(args) - 2);
        strncat(args, " ", sizeof args - strlen(args) - 1);
    }
    for (int i = 1; i < argc; i++) {
        bool more = i + 1 < argc;
        if (strcmp(argv[i], "--flash") == 0 && more)
            flash = argv[++i];
        else if (strcmp(argv[i], "--log") == 0 && more)
            log = argv[++i];
        else if (strcmp(argv[i], "--reboots-file") == 0 && more)
            reboots = argv[++i];
        else if (strcmp(argv[i], "--install") == 0 && more)
            image = argv[++i];
        else if (strcmp(argv[i], "--exit") == 0 && more)
            code = atoi(argv[++i]);
        else if (strcmp(argv[i], "--wait") == 0)
            wait = true;
    }
    if (flash == NULL)
        return 92;
    static ota_lwip_flash_t fl;
    char err[300];
    if (ota_lwip_flash_open(&fl, flash, err, sizeof err) != 0) {
        fprintf(stderr, "firmware: %s\n", err);
        return 93;
    }
    uint32_t size;
    uint8_t sha[32];
    char line[2400], hex[65];
    if (ota_lwip_flash_app_info(&fl, &size, sha) != 0)
        return 94;
    for (int i = 0; i < 32; i++)
        snprintf(hex + 2 * i, 3, "%02x", sha[i]);
    snprintf(line, sizeof line, "start sha=%s args=%s", hex, args);
    logf_line(log, line);
    int rc = image != NULL ? install(&fl, image) : -1;
    ota_lwip_flash_close(&fl);
    if (rc >= 0)
        return rc;
    if (reboots != NULL) {
        FILE *f = fopen(reboots, "r");
        int n = 0;
        if (f != NULL) {
            if (fscanf(f, "%d", &n) != 1)
                n = 0;
            fclose(f);
        }
        if (n > 0) {
            f = fopen(reboots, "w");
            if (f == NULL)
                return 95;
            fprintf(f, "%d\n", n - 1);
            fclose(f);
            return 42;
        }
    }
    if (wait) {
        signal(SIGTERM, on_term);
        logf_line(log, "waiting");
        while (!got_term)
            pause();
        logf_line(log, "terminated");
        return 0;
    }
    return code;
}
