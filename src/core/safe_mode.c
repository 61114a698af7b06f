/*
 * safe_mode.c - boot-loop detection, safe mode and image confirmation
 * (see ota/safe_mode.h and docs/design.md "Safe mode").
 */
#include "ota/safe_mode.h"

#include <string.h>

#include "ota/errors.h"
#include "ota/port.h"
#include "ota/util.h"

void ota_safe_mode_config_default(ota_safe_mode_config_t *cfg)
{
    memset(cfg, 0, sizeof *cfg);
    cfg->enabled = true;
    cfg->num_attempts = OTA_SAFE_MODE_DEFAULT_NUM_ATTEMPTS;
    cfg->boot_is_good_after_ms = OTA_SAFE_MODE_DEFAULT_BOOT_IS_GOOD_AFTER_MS;
    cfg->reboot_timeout_ms = OTA_SAFE_MODE_DEFAULT_REBOOT_TIMEOUT_MS;
}

static void sm_log(const ota_safe_mode_t *sm, ota_log_level_t lvl, const char *a, uint32_t n,
                   const char *b)
{
    if (sm->log == NULL)
        return;
    char line[OTA_CFG_LOG_LINE_MAX];
    ota_strbuf_t sb;
    ota_sb_init(&sb, line, sizeof line);
    ota_sb_str(&sb, a);
    if (b != NULL) {
        ota_sb_u32(&sb, n);
        ota_sb_str(&sb, b);
    }
    sm->log->line(sm->log->ctx, lvl, line);
}

int ota_safe_mode_setup(ota_safe_mode_t *sm, const ota_boot_port_t *boot, const ota_log_port_t *log,
                        const ota_safe_mode_config_t *cfg, uint32_t now_ms, bool *safe)
{
    if (sm == NULL || boot == NULL || cfg == NULL || safe == NULL || boot->load == NULL ||
        boot->store == NULL || boot->reboot == NULL || cfg->num_attempts == 0)
        return OTA_ERR_INVALID_ARG;
    memset(sm, 0, sizeof *sm);
    sm->boot = boot;
    sm->log = log != NULL && log->line != NULL ? log : NULL;
    sm->cfg = *cfg;
    sm->boot_ms = now_ms;
    *safe = false;

    ota_boot_record_t rec;
    memset(&rec, 0, sizeof rec);
    if (boot->load(boot->ctx, &rec) != OTA_OK) {
        sm_log(sm, OTA_LOG_ERROR, "boot record unreadable; counting from zero", 0, NULL);
        memset(&rec, 0, sizeof rec);
    }
    bool manual = rec.safe_mode_request;
    bool loop = cfg->enabled && rec.boot_attempts >= cfg->num_attempts;
    rec.safe_mode_request = false;
    rec.safe_mode = manual || loop;
    if (!rec.safe_mode)
        rec.boot_attempts++;
    if (boot->store(boot->ctx, &rec) != OTA_OK) {
        sm_log(sm, OTA_LOG_ERROR, "cannot write the boot record; boot-loop detection is off "
                                  "for this boot", 0, NULL);
        sm->confirmed = true; /* do nothing more */
        return OTA_ERR_IO;
    }
    sm->safe = rec.safe_mode;
    *safe = sm->safe;
    if (manual)
        sm_log(sm, OTA_LOG_WARN, "SAFE MODE: entered on request; only logging, network and OTA "
                                 "run", 0, NULL);
    else if (loop)
        sm_log(sm, OTA_LOG_WARN, "SAFE MODE: ", rec.boot_attempts,
               " boots in a row failed; only logging, network and OTA run. Upload a fixed "
               "firmware");
    else
        sm_log(sm, OTA_LOG_INFO, "boot attempt ", rec.boot_attempts, rec.pending
               ? " (new image, not confirmed yet)" : "");
    return OTA_OK;
}

static int confirm(ota_safe_mode_t *sm)
{
    ota_boot_record_t rec;
    memset(&rec, 0, sizeof rec);
    if (sm->boot->load(sm->boot->ctx, &rec) != OTA_OK)
        memset(&rec, 0, sizeof rec);
    bool was_pending = rec.pending;
    bool raised = sm->cfg.secure_version > rec.min_secure_version;
    if (raised) /* only a confirmed image raises it: an unconfirmed one can roll back */
        rec.min_secure_version = sm->cfg.secure_version;
    rec.boot_attempts = 0;
    rec.pending = false;
    rec.safe_mode = false;
    if (sm->boot->store(sm->boot->ctx, &rec) != OTA_OK)
        return OTA_ERR_IO;
    sm->confirmed = true;
    sm_log(sm, OTA_LOG_INFO, was_pending ? "boot is good: the new image is confirmed"
                                         : "boot is good: boot counter reset", 0, NULL);
    if (raised)
        sm_log(sm, OTA_LOG_INFO, "anti-rollback: images below this security version are "
                                 "refused from now on", 0, NULL);
    return OTA_OK;
}

int ota_safe_mode_mark_good(ota_safe_mode_t *sm)
{
    if (sm == NULL || sm->boot == NULL)
        return OTA_ERR_INVALID_ARG;
    if (sm->safe || sm->confirmed)
        return OTA_OK;
    return confirm(sm);
}

void ota_safe_mode_poll(ota_safe_mode_t *sm, uint32_t now_ms, bool update_in_progress)
{
    if (sm == NULL || sm->boot == NULL)
        return;
    uint32_t up = ota_elapsed_ms(now_ms, sm->boot_ms);
    if (!sm->safe) {
        if (!sm->confirmed && up >= sm->cfg.boot_is_good_after_ms)
            (void)confirm(sm); /* retried on the next poll if the store failed */
        return;
    }
    if (update_in_progress) {
        sm->boot_ms = now_ms; /* the timeout counts from the end of the upload */
        return;
    }
    if (sm->reboot_requested || sm->cfg.reboot_timeout_ms == 0 ||
        up < sm->cfg.reboot_timeout_ms)
        return;
    /* Try a normal boot once: one attempt short of the limit, so another failure
     * brings safe mode straight back. */
    ota_boot_record_t rec;
    memset(&rec, 0, sizeof rec);
    if (sm->boot->load(sm->boot->ctx, &rec) != OTA_OK)
        memset(&rec, 0, sizeof rec);
    rec.boot_attempts = sm->cfg.num_attempts - 1u;
    rec.safe_mode = false;
    if (sm->boot->store(sm->boot->ctx, &rec) != OTA_OK)
        return;
    sm->reboot_requested = true;
    sm_log(sm, OTA_LOG_WARN, "safe mode: no update for ", sm->cfg.reboot_timeout_ms / 1000u,
           " s; rebooting normally once");
    sm->boot->reboot(sm->boot->ctx);
}

bool ota_safe_mode_active(const ota_safe_mode_t *sm)
{
    return sm != NULL && sm->safe;
}

bool ota_safe_mode_confirmed(const ota_safe_mode_t *sm)
{
    return sm != NULL && sm->confirmed;
}
