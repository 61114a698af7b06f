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
#include "interrupt.h"
#include "upload.h"

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
    "usage: ota run NODE.yaml [FIRMWARE] [options]\n"
    "\n"
    "Upload FIRMWARE to the node of NODE.yaml, wait for it to come back (it answers the\n"
    "OTA handshake again), say how long that took and whether it runs in safe mode, then\n"
    "follow its logs until Ctrl-C. Without FIRMWARE it sends the image ESPHome built\n"
    "for the node (.esphome/build/NAME/.pioenvs/NAME/firmware.bin beside the YAML). A\n"
    "NAME.local the system cannot resolve is asked over mDNS. A node that answers with\n"
    "another name than the YAML's gets a warning.\n"
    "\n"
    "  --device HOST       the node's address (default from the file, else <name>.local)\n"
    "  --port N            its OTA port (default from the file)\n"
    "  --password P        (also --password-file F, $OTA_PASSWORD; default from the file;\n"
    "                      the upload and the log viewer use it)\n"
    "  --log-port N        its log port (default from the file)\n"
    "  --follow-seconds S  stop following after S seconds (default: until Ctrl-C)\n"
    "\n"
    "The upload takes the options of 'ota upload' (see 'ota upload --help'):\n"
    "  --auth METHOD, --known-nodes F, --no-compress, --compress,\n"
    "  --protocol native|arduino|auto,\n"
    "  --host-port N, --host-ip ADDR, --retries N, --timeout S, -q/--quiet (no progress;\n"
    "  the logs still show)\n";

typedef struct follow_opts {
    const char *device;
    bool log_port_set;
    uint16_t log_port;
    unsigned follow_s;
} follow_opts_t;

/* The log viewer's first line names the node: a different name than the YAML's means
 * the address reached another node (a reused DHCP lease, a copied YAML). */
static void check_name(const char *hello, const ota_node_config_t *cfg, const char *name)
{
    ota_log_hello_t hl;
    if (hello[0] == '\0' || ota_log_hello_parse(hello, &hl) != 0 || hl.node[0] == '\0')
        return;
    size_t bl = strlen(cfg->name);
    bool same = strcmp(hl.node, cfg->name) == 0 ||
                (cfg->name_mac_suffix && strncmp(hl.node, cfg->name, bl) == 0 &&
                 hl.node[bl] == '-' && strlen(hl.node + bl + 1) == 6);
    if (!same)
        fprintf(stderr, "warning: the node at %s calls itself '%s', but %s names '%s': is this "
                        "the right address (a reused IP, a copied YAML)?\n",
                name, hl.node, cfg->file, cfg->name);
}

static int logs_or_run(int argc, char **argv, bool run)
{
    enum { O_DEVICE = 300, O_LOG_PORT, O_FOLLOW };
    static struct option opts[UPLOAD_OPTION_ROWS + 8];
    static const struct option own[] = {
        {"device", required_argument, NULL, O_DEVICE},
        {"log-port", required_argument, NULL, O_LOG_PORT},
        {"follow-seconds", required_argument, NULL, O_FOLLOW},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    upload_merge_options(opts, own);
    const char *cmd = run ? "run" : "logs";
    follow_opts_t f = {0};
    static upload_args_t args;
    upload_args_t *a = &args;
    upload_args_init(a);
    unsigned long v;
    int c;
    opterr = 0;
    optind = 1;
    int li = -1;
    while ((c = getopt_long(argc, argv, ":qh", opts, &li)) != -1) {
        switch (c) {
        case O_DEVICE: f.device = optarg; break;
        case O_LOG_PORT:
            if (!parse_uint(optarg, 1, 65535, &v))
                return usage_error(cmd, "ports are numbers from 1 to 65535, not '%s'", optarg);
            f.log_port = (uint16_t)v;
            f.log_port_set = true;
            break;
        case O_FOLLOW:
            if (!parse_uint(optarg, 1, 86400 * 365, &v))
                return usage_error(cmd, "--follow-seconds takes a number of seconds, not '%s'",
                                   optarg);
            f.follow_s = (unsigned)v;
            break;
        case 'h': fputs(run ? run_usage : logs_usage, stdout); return OTA_EXIT_OK;
        case ':': return usage_error(cmd, "option '%s' needs a value", argv[optind - 1]);
        default: {
            if (c != 'q' && c != '?' && li < 0)
                return usage_error(cmd, "unknown option '%s'", argv[optind - 1]);
            /* logs takes only --port, --password and --password-file of upload's */
            if (!run && c != UO_PORT && c != UO_PASSWORD && c != UO_PASSWORD_FILE &&
                c != '?') {
                char what[64];
                snprintf(what, sizeof what, "--%s", c == 'q' ? "quiet" : opts[li].name);
                return usage_error(cmd, "%s belongs to upload and run", what);
            }
            int rc = upload_option(cmd, c, optarg, a);
            if (rc == UPLOAD_OPTION_NOT_MINE)
                return usage_error(cmd, "unknown option '%s'", argv[optind - 1]);
            if (rc != 0)
                return rc;
        }
        }
        li = -1;
    }
    int rc = upload_check_combination(cmd, a);
    if (rc != OTA_EXIT_OK)
        return rc;
    int npos = argc - optind;
    if (run ? npos < 1 || npos > 2 : npos > 1)
        return usage_error(cmd, run ? "expects NODE.yaml [FIRMWARE]%s" : "expects at most one "
                                                                         "NODE.yaml%s", NULL);
    const char *node_file = npos >= 1 ? argv[optind] : NULL;
    if (!run && node_file == NULL && f.device == NULL)
        return usage_error(cmd, "needs a NODE.yaml or --device HOST%s", NULL);

    static ota_node_config_t cfg;
    static char host[128];
    char *pw_alloc = NULL;
    a->o.host = f.device;
    if ((rc = upload_settle(a, node_file, &cfg, host, sizeof host, &pw_alloc)) != OTA_EXIT_OK)
        return rc;
    ota_client_options_t *o = &a->o;
    uint16_t log_port = f.log_port_set ? f.log_port
                        : node_file != NULL && cfg.logger && !a->port_set ? cfg.log_port
                        : (uint16_t)OTA_LOG_DEFAULT_PORT(o->port);
    const char *name = o->host; /* as given; the address if mDNS finds it */
    host_lookup_t lookup;
    memset(&lookup, 0, sizeof lookup);

    size_t len = 0;
    uint8_t *image = NULL;
    if (run) {
        static char built[4200];
        const char *firmware = upload_firmware(cmd, npos == 2 ? argv[optind + 1] : NULL,
                                               node_file, &cfg, built, sizeof built);
        image = firmware ? load_firmware(firmware, &len) : NULL;
        if (image != NULL && upload_sign_for_node(&cfg, firmware, &image, &len, a->quiet) != 0) {
            free(image);
            image = NULL;
        }
        if (image == NULL) {
            ota_wipe(&cfg, sizeof cfg);
            free(pw_alloc);
            return OTA_EXIT_INPUT;
        }
        ota_interrupt_install();
        bool by_arduino = false;
        rc = upload_single(a, name, firmware, image, len, &lookup, &by_arduino);
        free(image);
        if (rc != OTA_EXIT_OK) {
            ota_wipe(&cfg, sizeof cfg);
            free(pw_alloc);
            return rc;
        }
        const char *addr = lookup.by_mdns ? lookup.addr : name;
        if (by_arduino) {
            /* ArduinoOTA has no handshake to wait for: the log viewer waits instead */
            printf("waiting for the node to come back (ArduinoOTA: following its log)\n");
        } else {
            printf("waiting for the node to come back\n");
            fflush(stdout);
            double secs = 0;
            if (ota_wait_for_node(addr, o->port, 120, &secs) != 0) {
                fprintf(stderr, "error: the node did not answer on %s port %u within 120 s "
                                "after the update\nhint: check its console; if it boot-loops it "
                                "will come up in safe mode, or roll back to the previous image\n",
                        name, (unsigned)o->port);
                ota_wipe(&cfg, sizeof cfg);
                free(pw_alloc);
                return OTA_EXIT_NETWORK;
            }
            printf("node back after %.1f s\n", secs);
        }
        fflush(stdout);
    }
    /* one lookup for the upload, the wait and the logs: the node keeps its address
     * across the reboot */
    o->host = lookup_host(&lookup, name, run);
    if (o->host == NULL) {
        print_lookup_miss(stderr, &lookup, name);
        ota_wipe(&cfg, sizeof cfg);
        free(pw_alloc);
        return OTA_EXIT_NETWORK;
    }
    char hello[OTA_LOG_HELLO_MAX] = "";
    rc = ota_follow_logs(o->host, log_port, f.follow_s, o->password, hello, sizeof hello);
    if (node_file != NULL)
        check_name(hello, &cfg, name);
    if (run && hello[0]) {
        ota_log_hello_t hl;
        if (ota_log_hello_parse(hello, &hl) != 0)
            hl = (ota_log_hello_t){.slot = '?'};
        printf("node %s: running slot %c, safe mode %s\n", hl.node[0] ? hl.node : cfg.name,
               hl.slot, hl.safe_mode ? "ON (only logging, network and OTA run)" : "off");
    }
    if (rc == OTA_EXIT_NETWORK)
        fprintf(stderr, "error: no log viewer port answered at %s port %u\nhint: the node "
                        "serves logs when its configuration has a logger: block; check "
                        "--log-port\n", o->host, (unsigned)log_port);
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
