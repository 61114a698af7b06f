/*
 * nodefile.c - the node's YAML file for the commands (nodefile.h).
 */
#include "nodefile.h"

#include <stdio.h>
#include <string.h>

#include "cli.h"

bool is_yaml(const char *path)
{
    size_t n = strlen(path);
    return (n > 5 && strcmp(path + n - 5, ".yaml") == 0) ||
           (n > 4 && strcmp(path + n - 4, ".yml") == 0);
}

/* -s KEY VALUE / --substitution KEY VALUE, as ESPHome's CLI takes them (before or after
 * the command): taken out of argv by main() and applied to every node file loaded. */
ota_config_subst_t substs[MAX_SUBSTS];
size_t n_substs;

int apply_node_file(const char *path, ota_client_options_t *o, bool port_set,
                           char *host, size_t host_cap, ota_node_config_t *cfg)
{
    char err[1024];
    if (ota_config_load_ex(path, substs, n_substs, cfg, err, sizeof err) != 0) {
        fprintf(stderr, "error: %s\n", err);
        return OTA_EXIT_CONFIG;
    }
    if (!cfg->has_ota) {
        fprintf(stderr, "error: %s has no ota: block (platform: esphome)\n", path);
        return OTA_EXIT_CONFIG;
    }
    if (o->host == NULL) {
        /* where ESPHome would connect: wifi/ethernet use_address or static IP, else
         * <name>.local (config.c resolves the order) */
        if (cfg->address[0] != '\0') {
            if (strlen(cfg->address) >= host_cap) {
                fprintf(stderr, "error: %s: the node's address '%s' is too long\n", path,
                        cfg->address);
                return OTA_EXIT_CONFIG;
            }
            memcpy(host, cfg->address, strlen(cfg->address) + 1);
        } else
            snprintf(host, host_cap, "%s.local", cfg->name);
        o->host = host;
    }
    if (!port_set)
        o->port = cfg->port;
    if (o->password == NULL && cfg->password_set)
        o->password = cfg->password;
    /* codegen gives a node with a password only its salted verifier */
    if (cfg->password_set && !cfg->legacy_auth)
        o->require_salted = OTA_SALTED_BY_CONFIG;
    o->config_file = path;
    return 0;
}

int load_config(const char *path, ota_node_config_t *cfg)
{
    char err[1024];
    if (ota_config_load_ex(path, substs, n_substs, cfg, err, sizeof err) != 0) {
        fprintf(stderr, "error: %s\n", err);
        return OTA_EXIT_CONFIG;
    }
    return OTA_EXIT_OK;
}

/* Take every "-s KEY VALUE" (or --substitution) out of argv into substs[].
 * \return the new argc, or -1 after a usage error. */
int take_substitutions(int argc, char **argv)
{
    int out = 0;
    for (int i = 0; i < argc; i++) {
        if (i > 0 && (strcmp(argv[i], "-s") == 0 || strcmp(argv[i], "--substitution") == 0)) {
            if (i + 2 >= argc) {
                usage_error(NULL, "-s takes KEY VALUE (a substitution of the node file)%s",
                            NULL);
                return -1;
            }
            if (n_substs == MAX_SUBSTS) {
                usage_error(NULL, "at most 32 substitutions%s", NULL);
                return -1;
            }
            substs[n_substs].name = argv[i + 1];
            substs[n_substs].value = argv[i + 2];
            n_substs++;
            i += 2;
            continue;
        }
        argv[out++] = argv[i];
    }
    argv[out] = NULL;
    return out;
}
