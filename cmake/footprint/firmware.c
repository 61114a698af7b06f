/*
 * firmware.c - the stub "firmware" of scripts/footprint.sh: it calls what a real
 * firmware calls of the core in this configuration, so the linked image (with
 * --gc-sections) keeps exactly the core code such a firmware needs. It never runs.
 * The port's tables are zero-filled: port code is the firmware's, not counted.
 * Keep it tiny: when the API changes, this is the only file to follow it.
 */
#include "ota/opts.h"
#include "ota/server.h"
#if OTA_CFG_ENABLE_MDNS
#include "ota/mdns.h"
#endif

/* what the firmware allocates for the component (footprint.sh reads their sizes) */
ota_server_t footprint_server;
#if OTA_CFG_ENABLE_MDNS
ota_mdns_t footprint_mdns;
#endif

extern const ota_server_ports_t footprint_ports;
const ota_server_ports_t footprint_ports;
#if OTA_CFG_ENABLE_MDNS
extern const ota_mdns_port_t footprint_mdns_io;
const ota_mdns_port_t footprint_mdns_io;
#endif
extern volatile uint32_t footprint_clock;
volatile uint32_t footprint_clock;

void footprint_main(void);
void footprint_main(void) {
    ota_server_config_t cfg;
    ota_server_config_default(&cfg);
#if OTA_CFG_ENABLE_SIGNED
    /* one trusted key, as eFuses hold it: the streaming check is linked in */
    static const uint8_t key_digest[32] = {1};
    static const ota_sig_trusted_t trusted = {.digest = key_digest};
    cfg.trusted_keys = &trusted;
    cfg.n_trusted_keys = 1;
#endif
    ota_server_init(&footprint_server);
    if (ota_server_setup(&footprint_server, &footprint_ports, &cfg) != OTA_OK)
        return;
#if OTA_CFG_ENABLE_MDNS
    ota_mdns_config_t mcfg;
    ota_mdns_config_default(&mcfg);
    mcfg.name = "node";
    if (ota_mdns_setup(&footprint_mdns, &footprint_mdns_io, footprint_ports.crypto,
                       footprint_ports.log, &mcfg, footprint_clock) != OTA_OK)
        return;
#endif
    while (footprint_clock != 0xffffffffu) {
        ota_server_poll(&footprint_server, footprint_clock);
#if OTA_CFG_ENABLE_MDNS
        ota_mdns_poll(&footprint_mdns, footprint_clock);
#endif
    }
#if OTA_CFG_ENABLE_MDNS
    ota_mdns_free(&footprint_mdns, footprint_clock);
#endif
    ota_server_free(&footprint_server);
}
