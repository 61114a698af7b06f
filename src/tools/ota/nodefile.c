/*
 * nodefile.c - the node's YAML file for the commands (nodefile.h).
 */
#include "nodefile.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "cli.h"
#include "mdns_query.h"

#define NODEFILE_SUFFIX_BROWSE_S 3.0

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

/* NAME-xxxxxx, six hex digits (ESPHome's name_add_mac_suffix). */
static bool is_suffixed(const char *node, const char *base)
{
    size_t bl = strlen(base);
    if (strncmp(node, base, bl) != 0 || node[bl] != '-' || strlen(node + bl + 1) != 6)
        return false;
    for (const char *p = node + bl + 1; *p; p++)
        if (!isxdigit((unsigned char)*p))
            return false;
    return true;
}

/* The address of the one node on the LAN named cfg->name-xxxxxx, found by mDNS
 * browsing. \return 0, -1 after a message (none, several, no network). */
static int find_suffixed(const char *path, const ota_node_config_t *cfg, char *host,
                         size_t host_cap)
{
    ota_mdns_table_t *t = malloc(sizeof *t);
    static ota_mdns_node_t nodes[OTA_MDNSQ_MAX_NODES];
    if (t == NULL) {
        fprintf(stderr, "error: out of memory\n");
        return -1;
    }
    fprintf(stderr, "%s: name_add_mac_suffix: the node is called %s-xxxxxx (its MAC); asking "
                    "the network over mDNS which one answers\n", path, cfg->name);
    int rc = ota_mdns_browse(t, NODEFILE_SUFFIX_BROWSE_S, NULL);
    size_t n = rc == 0 ? ota_mdns_table_nodes(t, nodes, OTA_MDNSQ_MAX_NODES) : 0;
    free(t);
    size_t found = 0, which = 0;
    for (size_t i = 0; i < n; i++)
        if (is_suffixed(nodes[i].name, cfg->name)) {
            found++;
            which = i;
        }
    if (found == 1 && nodes[which].n_addrs > 0) {
        char a[OTA_MDNSQ_ADDR_TEXT_MAX];
        ota_mdns_addr_text(&nodes[which].addrs[0], a, sizeof a);
        if (strlen(a) >= host_cap)
            return -1;
        memcpy(host, a, strlen(a) + 1);
        fprintf(stderr, "found %s at %s\n", nodes[which].host, host);
        return 0;
    }
    if (found > 1) {
        fprintf(stderr, "error: %zu nodes answer to %s-xxxxxx:", found, cfg->name);
        for (size_t i = 0; i < n; i++)
            if (is_suffixed(nodes[i].name, cfg->name))
                fprintf(stderr, " %s", nodes[i].host);
        fprintf(stderr, "\nhint: pick one with --device HOST (the YAML cannot say which)\n");
        return -1;
    }
    fprintf(stderr, "error: %s sets name_add_mac_suffix: true, so the node's address is not "
                    "known from the file (it is %s-xxxxxx.local with its MAC), and no such node "
                    "answered mDNS within %g s\n", path, cfg->name, NODEFILE_SUFFIX_BROWSE_S);
    fprintf(stderr, "hint: pass --device HOST (the node's IP or full name; 'ota discover' "
                    "lists the nodes), or give it a fixed address in the YAML (wifi: "
                    "use_address or manual_ip)\n");
    return -1;
}

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
        } else if (cfg->name_mac_suffix) {
            /* the node calls itself NAME-xxxxxx (its MAC): ask who answers to that */
            if (find_suffixed(path, cfg, host, host_cap) != 0)
                return OTA_EXIT_NETWORK;
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

int nodefile_built_firmware(const char *node_file, const ota_node_config_t *cfg, char *buf,
                            size_t cap)
{
    const char *slash = strrchr(node_file, '/');
    int dir = slash ? (int)(slash - node_file) : 1;
    int n;
    if (cfg->build_path[0] == '/')
        n = snprintf(buf, cap, "%s/.pioenvs/%s/firmware.bin", cfg->build_path, cfg->name);
    else if (cfg->build_path[0] != '\0') /* relative to the YAML's folder, as ESPHome has it */
        n = snprintf(buf, cap, "%.*s/%s/.pioenvs/%s/firmware.bin", dir, slash ? node_file : ".",
                     cfg->build_path, cfg->name);
    else
        n = snprintf(buf, cap, "%.*s/.esphome/build/%s/.pioenvs/%s/firmware.bin", dir,
                     slash ? node_file : ".", cfg->name, cfg->name);
    if (n < 0 || (size_t)n >= cap)
        return -1;
    struct stat st;
    return stat(buf, &st) == 0 && S_ISREG(st.st_mode) ? 0 : -1;
}
