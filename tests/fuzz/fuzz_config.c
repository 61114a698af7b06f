/*
 * fuzz_config.c - libFuzzer target for the node configuration loader (YAML through
 * libyaml, then validation): any bytes either load or fail with a positioned message,
 * never crash, and a loaded config satisfies the loader's promises.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    ota_node_config_t cfg;
    char err[1024];
    err[0] = '\0';
    int rc = ota_config_load_buffer("/nonexistent/fuzz.yaml", data, size, &cfg, err, sizeof err);
    if (rc != 0) {
        /* every error names the file, or the chain back to it from an included one
         * (an absolute !include can reach a real file) */
        if (strncmp(err, "/nonexistent/fuzz.yaml:", 23) != 0 &&
            strstr(err, "(included from /nonexistent/fuzz.yaml:") == NULL)
            abort();
        return 0;
    }
    if (cfg.name[0] == '\0' || cfg.platform[0] == '\0' || cfg.port == 0 ||
        (cfg.version != 1 && cfg.version != 2) || cfg.num_attempts == 0 ||
        (cfg.legacy_auth && !cfg.password_set))
        abort();
    return 0;
}
