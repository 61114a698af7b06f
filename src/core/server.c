/*
 * server.c - the OTA component as a firmware runs it (ota/server.h): assembles the
 * logger, the brute-force guard, the update pipeline, the native listener and the
 * ArduinoOTA listener over the port's tables, polls them and reboots when one of
 * them has completed an update. No protocol logic lives here.
 */
#include "ota/server.h"

#include <string.h>

#include "ota/util.h"

void ota_server_config_default(ota_server_config_t *cfg)
{
    memset(cfg, 0, sizeof *cfg);
    cfg->version = OTA_PROTOCOL_VERSION_2;
    cfg->password = NULL;
    cfg->allow_sha256 = true;
    cfg->allow_md5 = false;
    cfg->compression = true;
    cfg->auth_backoff_free = 3;
    cfg->auth_backoff_base_ms = 1000u;
    cfg->auth_backoff_max_ms = 30000u;
    cfg->auth_guesses_per_min = 30u;
    cfg->handshake_timeout_ms = OTA_CFG_HANDSHAKE_TIMEOUT_MS;
    cfg->data_timeout_ms = OTA_CFG_DATA_TIMEOUT_MS;
    cfg->final_ack_timeout_ms = 2000u;
}

void ota_server_init(ota_server_t *srv)
{
    if (srv == NULL)
        return;
    memset(srv, 0, sizeof *srv);
}

int ota_server_setup(ota_server_t *srv, const ota_server_ports_t *ports,
                     const ota_server_config_t *cfg)
{
    if (srv == NULL || ports == NULL || cfg == NULL)
        return OTA_ERR_INVALID_ARG;
    if (srv->set_up) /* a live server (maybe mid-update): ota_server_free() it first */
        return OTA_ERR_BUSY;
    if (ports->tcp == NULL || ports->slot == NULL || ports->boot == NULL ||
        ports->boot->reboot == NULL || ports->crypto == NULL)
        return OTA_ERR_INVALID_ARG;
    ota_server_init(srv);
    srv->ports = *ports;
    const ota_server_ports_t *p = &srv->ports;
    ota_logger_setup(&srv->log, p->log);
    ota_guard_setup(&srv->guard, &srv->log, cfg->auth_backoff_free, cfg->auth_backoff_base_ms,
                    cfg->auth_backoff_max_ms, cfg->auth_guesses_per_min);
    int rc = ota_update_setup(&srv->update, p->slot, p->data, p->crypto, p->inflate, cfg->on_state,
                              cfg->on_state_arg);
#if OTA_CFG_ENABLE_SIGNED
    if (rc == OTA_OK && cfg->n_trusted_keys > 0) {
        /* a key we cannot check (no hook for its scheme) would refuse every image */
        for (size_t i = 0; i < cfg->n_trusted_keys && rc == OTA_OK; i++)
            if (cfg->trusted_keys == NULL || p->crypto->hash_start == NULL)
                rc = OTA_ERR_INVALID_ARG;
        if (rc == OTA_OK && p->crypto->verify_ecdsa_p256 == NULL &&
            p->crypto->verify_rsa3072_pss == NULL)
            rc = OTA_ERR_INVALID_ARG;
        if (rc == OTA_OK)
            rc = ota_update_require_signed(&srv->update, cfg->trusted_keys, cfg->n_trusted_keys);
    }
    if (rc == OTA_OK)
        ota_update_check_secure_version(&srv->update, p->boot);
#endif
    const ota_native_config_t nc = {
        .version = cfg->version,
        .verifier = cfg->verifier,
        .password = cfg->password,
        .allow_sha256 = cfg->allow_sha256,
        .allow_md5 = cfg->allow_md5,
        .compression = cfg->compression,
        .handshake_timeout_ms = cfg->handshake_timeout_ms,
        .data_timeout_ms = cfg->data_timeout_ms,
        .final_ack_timeout_ms = cfg->final_ack_timeout_ms,
#if OTA_CFG_ENABLE_PULL
        .on_pull_now = cfg->on_pull_now,
        .on_pull_now_arg = cfg->on_pull_now_arg,
#endif
    };
    if (rc == OTA_OK)
        rc = ota_native_setup(&srv->native, p->tcp, p->crypto, &srv->log, &srv->update, &srv->guard,
                              &nc);
    if (rc == OTA_OK && cfg->arduino_enabled) {
#if OTA_CFG_ENABLE_ARDUINO
        const ota_arduino_config_t ac = {
            .auth = cfg->arduino_auth,
            .hash = cfg->arduino_hash,
            .data_timeout_ms = cfg->data_timeout_ms,
        };
        rc = ota_arduino_setup(&srv->arduino, p->udp, p->tcp, p->crypto, &srv->log, &srv->update,
                               &srv->guard, &ac);
        srv->arduino_on = rc == OTA_OK;
#else
        rc = OTA_ERR_INVALID_ARG;
#endif
    }
    if (rc != OTA_OK) {
        ota_native_free(&srv->native);
        ota_server_init(srv);
        return OTA_ERR_INVALID_ARG;
    }
    srv->set_up = true;
    return OTA_OK;
}

int ota_server_poll(ota_server_t *srv, uint32_t now_ms)
{
    if (srv == NULL || !srv->set_up)
        return OTA_ERR_INVALID_ARG;
    ota_native_poll(&srv->native, now_ms);
    bool reboot = ota_native_reboot_due(&srv->native);
#if OTA_CFG_ENABLE_ARDUINO
    if (srv->arduino_on) {
        ota_arduino_poll(&srv->arduino, now_ms);
        reboot = reboot || ota_arduino_reboot_due(&srv->arduino);
    }
#endif
    ota_log_summaries(&srv->log, now_ms);
    if (reboot && !srv->reboot_requested) {
        srv->reboot_requested = true;
        srv->ports.boot->reboot(srv->ports.boot->ctx);
    }
    return OTA_OK;
}

bool ota_server_update_in_progress(const ota_server_t *srv)
{
    return srv != NULL && srv->set_up && ota_update_busy(&srv->update);
}

bool ota_server_active(const ota_server_t *srv)
{
    if (srv == NULL || !srv->set_up)
        return false;
#if OTA_CFG_ENABLE_ARDUINO
    if (srv->arduino_on && ota_arduino_active(&srv->arduino))
        return true; /* a key derivation or an ArduinoOTA upload is under way */
#endif
    return ota_native_active(&srv->native);
}

void ota_server_free(ota_server_t *srv)
{
    if (srv == NULL || !srv->set_up)
        return;
    ota_native_free(&srv->native);
#if OTA_CFG_ENABLE_ARDUINO
    if (srv->arduino_on)
        ota_arduino_free(&srv->arduino);
#endif
    srv->set_up = false;
}
