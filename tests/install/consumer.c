/*
 * A firmware outside this tree, built against an installed core (test_install.sh):
 * through CMake's find_package(ota) + ota::core, and through pkg-config ota-core.
 * It prints what it sees of the options, so the test can check both builds agree
 * with each other and with the options the core was built with.
 */
#include <stdio.h>

#include "ota/errors.h"
#include "ota/server.h"

static ota_server_t srv; /* sized by the installed options header */

int main(void) {
    ota_server_config_t cfg;
    ota_server_config_default(&cfg);
    ota_server_init(&srv);
    /* a port with nothing in it is refused: the call reached the library */
    static const ota_server_ports_t empty_ports; /* no tables: setup refuses */
    int rc = ota_server_setup(&srv, &empty_ports, &cfg);
    printf("setup: %s\n", ota_strerror(rc));
    printf("version %u, data buffer %u, sessions %u\n", (unsigned)cfg.version,
           (unsigned)OTA_CFG_DATA_BUF_SIZE, (unsigned)OTA_CFG_MAX_SESSIONS);
    ota_server_free(&srv);
    return rc == OTA_ERR_INVALID_ARG ? 0 : 1;
}
