/*
 * main.c - the `ota` host tool: the table of commands and the dispatch. Each command
 * is in its own file (cmd_upload.c, cmd_logs.c for logs and run, cmd_discover.c,
 * cmd_config.c for config and codegen, cmd_hash_password.c, cmd_sign.c for keygen, sign,
 * image info and key-digest, cmd_publish.c for publish and manifest check,
 * cmd_pull_now.c); what they
 * share is in cli.c, nodefile.c, host_lookup.c, fleet.c and passwords.c.
 */
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "client.h"
#include "commands.h"
#include "nodefile.h"

static const char main_usage[] =
    "usage: ota COMMAND [options]\n"
    "\n"
    "Over-the-air firmware updates for ESPHome-compatible nodes.\n"
    "\n"
    "commands:\n"
    "  upload         send a firmware image to a node\n"
    "  run            upload, wait for the node to come back, follow its logs\n"
    "  logs           follow a node's log lines\n"
    "  discover       list the nodes on this network (mDNS / DNS-SD)\n"
    "  config         check a node's YAML configuration and print its settings\n"
    "  codegen        write a node's OTA settings as C for its firmware\n"
    "  hash-password  make the salted verifier a node stores instead of its password\n"
    "  keygen         make an image signing key (ecdsa256 or rsa3072)\n"
    "  sign           sign an image (ESP-IDF Secure Boot V2 format; several keys rotate)\n"
    "  image info     what an image carries: its signature blocks, valid or not\n"
    "  key-digest     a signing key's digest (what a chip's eFuse holds)\n"
    "  publish        write an image and its manifest.json for nodes that pull updates\n"
    "  manifest check read a published manifest as a node does; check its signature\n"
    "  pull-now       ask a node that pulls its updates to check its manifest now\n"
    "\n"
    "  ota COMMAND --help   options of one command (also: ota help COMMAND)\n"
    "  ota --version        the tool's version\n"
    "  -s KEY VALUE         (any command, repeatable) a substitution of the node's YAML,\n"
    "                       overriding its substitutions: block, as ESPHome's -s does\n"
    "\n"
    "exit codes: 0 success, 1 internal error, 2 usage, 3 network (does not resolve,\n"
    "refused, timeout, connection lost), 4 authentication, 5 the device reported an\n"
    "error (including busy), 6 the firmware file is missing, unreadable or empty,\n"
    "7 the node file (YAML) is invalid or has no ota: block, 8 (ota image info) the\n"
    "image is unsigned or a signature block is not valid.\n";

typedef struct ota_command {
    const char *name;
    int (*run)(int argc, char **argv);
    const char *usage;
} ota_command_t;

static const ota_command_t commands[] = {
    {"upload", cmd_upload, upload_usage},
    {"run", cmd_run, run_usage},
    {"logs", cmd_logs, logs_usage},
    {"discover", cmd_discover, discover_usage},
    {"config", cmd_config, config_usage},
    {"codegen", cmd_codegen, codegen_usage},
    {"hash-password", cmd_hash_password, hash_password_usage},
    {"keygen", cmd_keygen, keygen_usage},
    {"sign", cmd_sign, sign_usage},
    {"image", cmd_image, image_usage},
    {"key-digest", cmd_key_digest, key_digest_usage},
    {"publish", cmd_publish, publish_usage},
    {"manifest", cmd_manifest, manifest_usage},
    {"pull-now", cmd_pull_now, pull_now_usage},
};

static const ota_command_t *find_command(const char *name)
{
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
        if (strcmp(commands[i].name, name) == 0)
            return &commands[i];
    return NULL;
}

int main(int argc, char **argv)
{
    argc = take_substitutions(argc, argv);
    if (argc < 0)
        return OTA_EXIT_USAGE;
    if (argc < 2) {
        fputs(main_usage, stderr);
        return OTA_EXIT_USAGE;
    }
    const char *name = argv[1];
    if (strcmp(name, "--help") == 0 || strcmp(name, "-h") == 0 || strcmp(name, "help") == 0) {
        /* "ota help CMD" is "ota CMD --help" */
        const ota_command_t *c = argc > 2 ? find_command(argv[2]) : NULL;
        if (argc > 2 && c == NULL)
            return usage_error(NULL, "no command '%s' to help with", argv[2]);
        fputs(c ? c->usage : main_usage, stdout);
        return OTA_EXIT_OK;
    }
    if (strcmp(name, "--version") == 0) {
        printf("ota %s\n", OTA_TOOL_VERSION);
        return OTA_EXIT_OK;
    }
    const ota_command_t *c = find_command(name);
    if (c == NULL)
        return usage_error(NULL, "unknown command '%s'", name);
    return c->run(argc - 1, argv + 1);
}
