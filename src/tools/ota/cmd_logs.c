/*
 * cmd_logs.c - `ota logs` (follow a node's log server, across reboots) and `ota run`
 * (upload, wait for the node to come back, then follow its logs).
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "client.h"
#include "commands.h"
#include "follow.h"
#include "host_lookup.h"
#include "known_nodes.h"
#include "messages.h"
#include "nodefile.h"
#include "ota/log_proto.h"
#include "ota/util.h"
#include "passwords.h"
#include "progress.h"

const char logs_usage[] =
    "usage: ota logs [NODE.yaml] [--device HOST] [--log-port N] [--password P]\n"
    "                [--follow-seconds S]\n"
    "\n"
    "Follow a node's log lines live (its logger serves them when the configuration has a\n"
    "logger: block). HOST is <name>.local from the YAML file unless --device says\n"
    "otherwise; the log port is the file's logger port, else the OTA port + 1.\n"
    "Reconnects when the node reboots. Ctrl-C stops. A NAME.local the system cannot\n"
    "resolve is asked over mDNS. A node with an OTA password shows its log only to\n"
    "viewers that prove the password, and proves in turn that it knows it (else: exit 4).\n"
    "\n"
    "  --device HOST       the node's address\n"
    "  --port N            its OTA port (the log port defaults to N + 1)\n"
    "  --log-port N        its log port\n"
    "  --password P        the OTA password (also: --password-file F, $OTA_PASSWORD;\n"
    "                      default from the file)\n"
    "  --follow-seconds S  stop after S seconds (default: until Ctrl-C)\n";

const char run_usage[] =
    "usage: ota run NODE.yaml FIRMWARE [options]\n"
    "\n"
    "Upload FIRMWARE to the node of NODE.yaml, wait for it to come back (it answers the\n"
    "OTA handshake again), say how long that took and whether it runs in safe mode, then\n"
    "follow its logs until Ctrl-C. A NAME.local the system cannot resolve is asked over\n"
    "mDNS.\n"
    "\n"
    "  --device HOST       the node's address (default <name>.local)\n"
    "  --port N            its OTA port (default from the file)\n"
    "  --password P        (also --password-file F, $OTA_PASSWORD; default from the file;\n"
    "                      the upload and the log viewer use it)\n"
    "  --log-port N        its log port (default from the file)\n"
    "  --no-compress       never gzip\n"
    "  --timeout S         per-phase inactivity limit of the upload (default 160)\n"
    "  --known-nodes F     the file of nodes that proved salted auth, as for upload (also\n"
    "                      $OTA_KNOWN_NODES; default $XDG_STATE_HOME/ota/known_nodes or\n"
    "                      ~/.local/state/ota/known_nodes)\n"
    "  --follow-seconds S  stop following after S seconds (default: until Ctrl-C)\n";

typedef struct follow_opts {
    const char *device;
    bool port_set, log_port_set;
    uint16_t port, log_port;
    unsigned follow_s;
} follow_opts_t;

static int logs_or_run(int argc, char **argv, bool run)
{
    enum { O_DEVICE = 256, O_PORT, O_LOG_PORT, O_FOLLOW, O_PASSWORD, O_PASSWORD_FILE,
           O_NO_COMPRESS, O_TIMEOUT, O_KNOWN_NODES };
    static const struct option opts[] = {
        {"device", required_argument, NULL, O_DEVICE},
        {"port", required_argument, NULL, O_PORT},
        {"log-port", required_argument, NULL, O_LOG_PORT},
        {"follow-seconds", required_argument, NULL, O_FOLLOW},
        {"password", required_argument, NULL, O_PASSWORD},
        {"password-file", required_argument, NULL, O_PASSWORD_FILE},
        {"no-compress", no_argument, NULL, O_NO_COMPRESS},
        {"timeout", required_argument, NULL, O_TIMEOUT},
        {"known-nodes", required_argument, NULL, O_KNOWN_NODES},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    const char *cmd = run ? "run" : "logs";
    follow_opts_t f = {.port = DEFAULT_PORT};
    ota_client_options_t o = {.port = DEFAULT_PORT, .auth = OTA_AUTH_AUTO, .compress = true,
                              .timeout_s = DEFAULT_TIMEOUT_S};
    const char *password_file = NULL, *known_nodes = NULL;
    unsigned long v;
    int c;
    opterr = 0;
    while ((c = getopt_long(argc, argv, ":h", opts, NULL)) != -1) {
        switch (c) {
        case O_DEVICE: f.device = optarg; break;
        case O_KNOWN_NODES: known_nodes = optarg; break;
        case O_PORT:
        case O_LOG_PORT:
            if (!parse_uint(optarg, 1, 65535, &v))
                return usage_error(cmd, "ports are numbers from 1 to 65535, not '%s'", optarg);
            if (c == O_PORT) {
                f.port = (uint16_t)v;
                f.port_set = true;
            } else {
                f.log_port = (uint16_t)v;
                f.log_port_set = true;
            }
            break;
        case O_FOLLOW:
            if (!parse_uint(optarg, 1, 86400 * 365, &v))
                return usage_error(cmd, "--follow-seconds takes a number of seconds, not '%s'",
                                   optarg);
            f.follow_s = (unsigned)v;
            break;
        case O_PASSWORD: o.password = optarg; break;
        case O_PASSWORD_FILE: password_file = optarg; break;
        case O_NO_COMPRESS: o.compress = false; break;
        case O_TIMEOUT:
            if (!parse_uint(optarg, 1, 3600, &v))
                return usage_error(cmd, "--timeout takes seconds from 1 to 3600, not '%s'",
                                   optarg);
            o.timeout_s = (unsigned)v;
            break;
        case 'h': fputs(run ? run_usage : logs_usage, stdout); return OTA_EXIT_OK;
        case ':': return usage_error(cmd, "option '%s' needs a value", argv[optind - 1]);
        default: return usage_error(cmd, "unknown option '%s'", argv[optind - 1]);
        }
    }
    if (!run && !o.compress)
        return usage_error(cmd, "--no-compress belongs to upload and run%s", NULL);
    if (!run && known_nodes != NULL)
        return usage_error(cmd, "--known-nodes belongs to upload and run%s", NULL);
    int npos = argc - optind;
    if (run ? npos != 2 : npos > 1)
        return usage_error(cmd, run ? "expects NODE.yaml FIRMWARE%s" : "expects at most one "
                                                                       "NODE.yaml%s", NULL);
    const char *node_file = npos >= 1 ? argv[optind] : NULL;
    if (!run && node_file == NULL && f.device == NULL)
        return usage_error(cmd, "needs a NODE.yaml or --device HOST%s", NULL);

    static ota_node_config_t cfg;
    static char host[128];
    char *pw_alloc = NULL;
    o.host = f.device;
    o.port = f.port;
    if (resolve_password(&o, password_file, &pw_alloc) != 0)
        return OTA_EXIT_INPUT;
    if (node_file != NULL) {
        int rc = apply_node_file(node_file, &o, f.port_set, host, sizeof host, &cfg);
        if (rc != 0) {
            free(pw_alloc);
            return rc;
        }
    }
    if (o.password == NULL && getenv("OTA_PASSWORD") != NULL && getenv("OTA_PASSWORD")[0])
        o.password = getenv("OTA_PASSWORD");
    uint16_t log_port = f.log_port_set ? f.log_port
                        : node_file != NULL && cfg.logger && !f.port_set ? cfg.log_port
                        : (uint16_t)OTA_LOG_DEFAULT_PORT(o.port);
    const char *name = o.host; /* as given; o.host becomes its address if mDNS finds it */
    host_lookup_t lookup;
    memset(&lookup, 0, sizeof lookup);

    size_t len = 0;
    uint8_t *image = run ? load_firmware(argv[optind + 1], &len) : NULL;
    if (run && image == NULL) {
        free(pw_alloc);
        return OTA_EXIT_INPUT;
    }
    if (run)
        fprintf(stderr, "Uploading %s (%zu bytes) to %s port %u\n", argv[optind + 1], len,
                name, (unsigned)o.port);
    /* one lookup for the upload, the wait and the logs: the node keeps its address
     * across the reboot */
    o.host = lookup_host(&lookup, name, false);
    if (o.host == NULL) {
        print_lookup_miss(stderr, &lookup, name);
        free(image);
        ota_wipe(&cfg, sizeof cfg);
        free(pw_alloc);
        return OTA_EXIT_NETWORK;
    }

    if (run) {
        ota_progress_t prog;
        ota_progress_init(&prog, stderr, false);
        ota_client_result_t res;
        static char known_path[4096]; /* --known-nodes, $OTA_KNOWN_NODES or the default */
        if (ota_known_path(known_nodes, known_path, sizeof known_path) == 0)
            o.known_file = known_path;
        ota_known_prepare(&o, name, o.port, stderr);
        int rc = ota_client_upload(&o, image, len, ota_progress_update, &prog, &res);
        ota_progress_finish(&prog);
        free(image);
        ota_print_auth_warning(stderr, &o, &res);
        if (rc == OTA_EXIT_OK)
            ota_known_commit(&o, &res, false, stderr);
        if (rc != OTA_EXIT_OK) {
            ota_print_failure(stderr, &o, &res);
            free(pw_alloc);
            return rc;
        }
        printf("OK: %zu bytes uploaded to %s:%u; waiting for the node to come back\n", len,
               name, (unsigned)o.port);
        fflush(stdout);
        double secs = 0;
        if (ota_wait_for_node(o.host, o.port, 120, &secs) != 0) {
            fprintf(stderr, "error: the node did not answer on %s port %u within 120 s after "
                            "the update\nhint: check its console; if it boot-loops it will come "
                            "up in safe mode, or roll back to the previous image\n",
                    name, (unsigned)o.port);
            free(pw_alloc);
            return OTA_EXIT_NETWORK;
        }
        printf("node back after %.1f s\n", secs);
        fflush(stdout);
    }
    char hello[OTA_LOG_HELLO_MAX] = "";
    int rc = ota_follow_logs(o.host, log_port, f.follow_s, o.password, hello, sizeof hello);
    ota_log_hello_t hl;
    if (run && hello[0]) {
        if (ota_log_hello_parse(hello, &hl) != 0)
            hl = (ota_log_hello_t){.slot = '?'};
        printf("node %s: running slot %c, safe mode %s\n", cfg.name, hl.slot,
               hl.safe_mode ? "ON (only logging, network and OTA run)" : "off");
    }
    if (rc == OTA_EXIT_NETWORK)
        fprintf(stderr, "error: no log viewer port answered at %s port %u\nhint: the node "
                        "serves logs when its configuration has a logger: block; check "
                        "--log-port\n", o.host, (unsigned)log_port);
    ota_wipe(&cfg, sizeof cfg);
    free(pw_alloc);
    return rc;
}

int cmd_logs(int argc, char **argv)
{
    return logs_or_run(argc, argv, false);
}

int cmd_run(int argc, char **argv)
{
    return logs_or_run(argc, argv, true);
}
