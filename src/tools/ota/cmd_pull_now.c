/*
 * cmd_pull_now.c - `ota pull-now`: ask a node that pulls its updates (update:
 * platform: http_request, demo-node --update-url) to check its manifest now rather
 * than at its next interval. The request goes over the native OTA port and is
 * authenticated like an upload (docs/protocol.md#native-pull-now); no image is sent.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "client.h"
#include "commands.h"
#include "host_lookup.h"
#include "fleet.h"
#include "known_nodes.h"
#include "messages.h"
#include "nodefile.h"
#include "ota/protocol.h"
#include "ota/util.h"
#include "upload.h"

const char pull_now_usage[] =
    "usage: ota pull-now [--device HOST] [--port N] [--password P | --password-file F]\n"
    "                    [--auth MODE] [NODE.yaml]\n"
    "\n"
    "Ask a node that pulls its updates from a web server (node.yaml's update:\n"
    "platform: http_request, or demo-node --update-url) to check its manifest now\n"
    "instead of at its next interval. It fetches the manifest, and takes the release\n"
    "there if it is for it (docs/pull.md); follow it with 'ota logs'. The request is\n"
    "authenticated like an upload, over the native OTA port; no image is sent.\n"
    "\n"
    "  --device HOST       the node (name, IPv4 or IPv6 address); or take it, the port\n"
    "                      and the password from NODE.yaml\n"
    "  --port N            its native OTA port (default 3232, or the node file's)\n"
    "  --password P, --password-file F, --auth MODE, --known-nodes F, --timeout S\n"
    "                      as for 'ota upload'\n"
    "\n"
    "Exit codes: 0 the node will check now, 2 usage, 3 network, 4 authentication,\n"
    "5 the node does not pull its updates (or is a stock device without this\n"
    "request), 7 the node file is invalid.\n";

int cmd_pull_now(int argc, char **argv)
{
    enum { O_DEVICE = 300 };
    static struct option opts[UPLOAD_OPTION_ROWS + 8];
    static const struct option own[] = {
        {"device", required_argument, NULL, O_DEVICE},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    upload_merge_options(opts, own);
    static upload_args_t args;
    upload_args_t *a = &args;
    upload_args_init(a);
    const char *device = NULL;
    int c;
    opterr = 0;
    optind = 1;
    while ((c = getopt_long(argc, argv, ":qh", opts, NULL)) != -1) {
        switch (c) {
        case O_DEVICE: device = optarg; break;
        case 'h': fputs(pull_now_usage, stdout); return OTA_EXIT_OK;
        case ':': return usage_error("pull-now", "option '%s' needs a value", argv[optind - 1]);
        default: {
            int rc = upload_option("pull-now", c, optarg, a);
            if (rc == UPLOAD_OPTION_NOT_MINE)
                return usage_error("pull-now", "unknown option '%s'", argv[optind - 1]);
            if (rc != 0)
                return rc;
        }
        }
    }
    const char *node_file = NULL;
    if (optind < argc && is_yaml(argv[optind]))
        node_file = argv[optind++];
    if (optind < argc)
        return usage_error("pull-now", "unexpected argument '%s'", argv[optind]);
    if (a->protocol == UPLOAD_PROTO_ARDUINO)
        return usage_error("pull-now", "--protocol arduino: ArduinoOTA has no such request%s",
                           NULL);
    static ota_node_config_t cfg;
    static char node_host[128];
    char *pw_alloc = NULL;
    a->o.host = device;
    int rc = upload_settle(a, node_file, &cfg, node_host, sizeof node_host, &pw_alloc);
    if (rc != OTA_EXIT_OK)
        return rc;
    if (a->o.host == NULL) {
        free(pw_alloc);
        return usage_error("pull-now", "missing --device HOST (the node's address) or a node's "
                                       "YAML file%s", NULL);
    }
    char name[256];
    uint16_t port = a->o.port;
    if (!split_device(a->o.host, a->o.port, name, sizeof name, &port)) {
        free(pw_alloc);
        return usage_error("pull-now", "'%s' is not HOST, HOST:PORT or [IPv6]:PORT",
                           a->o.host);
    }
    ota_client_options_t o = a->o;
    o.port = port;
    o.command = OTA_UPDATE_TYPE_PULL_NOW;
    host_lookup_t lookup;
    memset(&lookup, 0, sizeof lookup);
    o.host = lookup_host(&lookup, name, a->quiet);
    ota_client_result_t res;
    memset(&res, 0, sizeof res);
    if (o.host == NULL) {
        print_lookup_miss(stderr, &lookup, name);
        free(pw_alloc);
        return OTA_EXIT_NETWORK;
    }
    ota_known_prepare(&o, name, o.port, stderr);
    rc = ota_client_upload_payload(&o, NULL, NULL, NULL, &res);
    ota_print_auth_warning(stderr, &o, &res);
    if (rc == OTA_EXIT_OK) {
        ota_known_commit(&o, &res, a->quiet, stderr);
        printf("OK: %s:%u checks its update manifest now (follow it with 'ota logs')\n", name,
               (unsigned)o.port);
    } else if (res.failure == OTA_FAIL_DEVICE &&
               res.device_code == OTA_RESP_ERROR_UNSUPPORTED_OTA_TYPE) {
        fprintf(stderr, "error: %s:%u does not pull its updates: it refused the request "
                        "(no update: platform: http_request on that node, or a device "
                        "without this request, e.g. stock ESPHome)\n", name, (unsigned)o.port);
        fprintf(stderr, "hint: push the update instead: ota upload --device %s FIRMWARE\n",
                name);
    } else {
        report_failure(stderr, &o, &res, &lookup, name);
    }
    ota_wipe(&cfg, sizeof cfg);
    free(pw_alloc);
    return rc;
}
