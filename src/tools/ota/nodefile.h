/*
 * nodefile.h - a node's YAML file as the commands use it: the -s substitutions of the
 * command line, loading it with a message, and what it says about where the node is
 * (address, port, password).
 */
#ifndef OTA_TOOL_NODEFILE_H
#define OTA_TOOL_NODEFILE_H

#include <stdbool.h>
#include <stddef.h>

#include "client.h"
#include "config.h"

/* -s KEY VALUE / --substitution KEY VALUE, as ESPHome's CLI takes them (before or after
 * the command): taken out of argv by take_substitutions() and applied to every node
 * file loaded. */
#define MAX_SUBSTS 32
extern ota_config_subst_t substs[MAX_SUBSTS];
extern size_t n_substs;

/** Take every "-s KEY VALUE" (or --substitution) out of argv into substs[].
 *  \return the new argc, or -1 after a usage error. */
int take_substitutions(int argc, char **argv);

/** path ends in .yaml or .yml */
bool is_yaml(const char *path);

/** Load a node file with the substitutions. \return OTA_EXIT_OK, or OTA_EXIT_CONFIG
 *  after the positioned message on stderr. */
int load_config(const char *path, ota_node_config_t *cfg);

/** Load path and fill what the options left open: o->host (use_address, static IP,
 *  else <name>.local, or with name_add_mac_suffix the one NAME-xxxxxx node that
 *  answers mDNS; written to host), the port unless port_set, the password, salted
 *  auth required when the file sets a password. \return 0, OTA_EXIT_CONFIG, or
 *  OTA_EXIT_NETWORK (no single suffixed node found), after a message. */
int apply_node_file(const char *path, ota_client_options_t *o, bool port_set, char *host,
                    size_t host_cap, ota_node_config_t *cfg);

/** buf = <node file's folder>/.esphome/build/NAME/.pioenvs/NAME/firmware.bin (or
 *  <esphome: build_path>/.pioenvs/NAME/firmware.bin), where `esphome compile` leaves
 *  the image. \return 0 when that file exists, else -1. */
int nodefile_built_firmware(const char *node_file, const ota_node_config_t *cfg, char *buf,
                            size_t cap);

#endif
