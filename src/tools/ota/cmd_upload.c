/*
 * cmd_upload.c - `ota upload`: options, the nodes (one, a YAML file's, or a fleet),
 * password sources, retries, the ArduinoOTA fallback and the final report.
 */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "arduino_client.h"
#include "cli.h"
#include "client.h"
#include "commands.h"
#include "fleet.h"
#include "host_lookup.h"
#include "known_nodes.h"
#include "messages.h"
#include "nodefile.h"
#include "passwords.h"
#include "progress.h"

const char upload_usage[] =
    "usage: ota upload --device HOST [--device HOST ...] [options] FIRMWARE\n"
    "       ota upload NODE.yaml [options] FIRMWARE\n"
    "\n"
    "Send FIRMWARE to the node at HOST over the native OTA protocol (ESPHome-compatible).\n"
    "With a node's YAML file, HOST is its wifi/ethernet use_address or static IP, else\n"
    "<name>.local, and port and password come from the file (-s KEY VALUE substitutes\n"
    "in it); the options below override them.\n"
    "\n"
    "  --device HOST        the node's IP address or host name, optionally HOST:PORT\n"
    "                       ([v6addr]:PORT); repeat it to update several nodes. A\n"
    "                       NAME.local the system cannot resolve is asked over mDNS\n"
    "  --devices-file F     more nodes, one HOST[:PORT] per line (# comments)\n"
    "  -j, --jobs N         with several nodes: how many upload at once (default 8);\n"
    "                       a summary table with each node's result and time follows\n"
    "  --port N             its OTA port (default 3232; ESP8266 nodes use 8266)\n"
    "  --password P         the OTA password (also: --password-file, $OTA_PASSWORD)\n"
    "  --password-file F    read the password from the first line of F\n"
    "  --auth METHOD        auto (default: the strongest the device offers), salted,\n"
    "                       sha256, md5 or none (the device is expected to ask for no\n"
    "                       password). A device that asks for none although a password\n"
    "                       was given is refused unless --auth none. With a NODE.yaml\n"
    "                       that has a password (and no legacy_auth: true) the default\n"
    "                       is salted. The legacy sha256/md5 methods work with a warning:\n"
    "                       such a device cannot prove it knows the password\n"
    "  --known-nodes F      the file of nodes that proved salted auth (also\n"
    "                       $OTA_KNOWN_NODES; default $XDG_STATE_HOME/ota/known_nodes or\n"
    "                       ~/.local/state/ota/known_nodes). A salted upload records\n"
    "                       HOST:PORT, salt and iterations there; that node offering\n"
    "                       weaker auth or fewer iterations later is refused before\n"
    "                       anything is sent (delete its line if the change is\n"
    "                       intended). A file that cannot be read refuses weaker auth\n"
    "                       from every node\n"
    "  --no-compress        never gzip (default: gzip when the device accepts it and the\n"
    "                       image gets smaller)\n"
    "  --protocol P         native (ESPHome), arduino (ArduinoOTA / espota) or auto\n"
    "                       (default: native, and ArduinoOTA when the TCP port refuses,\n"
    "                       unless salted auth is required: --auth salted, a NODE.yaml\n"
    "                       password, a known node). ArduinoOTA cannot prove the device\n"
    "                       knows the password (a warning says so); a device asking for\n"
    "                       none is refused unless --auth none; --auth sha256|md5 pick\n"
    "                       the hash the device keeps (with arduino, a refused SHA-256\n"
    "                       answer is retried once with MD5hex, as espota.py does)\n"
    "  --host-port N        ArduinoOTA: the port the device connects back to (default:\n"
    "                       a random free one; open it in your firewall)\n"
    "  --host-ip ADDR       ArduinoOTA: listen for the device on this address only\n"
    "  --filesystem         ArduinoOTA: FIRMWARE is a filesystem image (command 100)\n"
    "  --retries N          retry a connection that fails before the upload starts N\n"
    "                       times, waiting 1 s, 2 s, 4 s ... up to 10 s (default 0)\n"
    "  --timeout S          seconds of silence allowed in each phase (default 160)\n"
    "  -q, --quiet          no progress output\n"
    "  -h, --help           this text\n"
    "\n"
    "Progress goes to stderr (a bar on a terminal, 'progress:' lines otherwise); the\n"
    "final 'OK:' line to stdout. Exit codes: see 'ota --help'.\n";

/* native_refused: set when this is the automatic fallback after the native TCP port
 * refused; if nothing answers ArduinoOTA either, that refusal is the diagnosis. */
static int upload_arduino(const ota_arduino_options_t *ao, const char *firmware,
                          const uint8_t *image, size_t len, bool quiet,
                          const ota_client_options_t *native, const ota_client_result_t *refused)
{
    if (!quiet)
        fprintf(stderr, "Uploading %s (%zu bytes) to %s over ArduinoOTA (UDP port %u)\n",
                firmware, len, ao->host, (unsigned)ao->port);
    ota_progress_t prog;
    ota_progress_init(&prog, stderr, quiet);
    ota_arduino_result_t res;
    double t0 = ota_now_s();
    int rc = ota_arduino_upload(ao, image, len, ota_progress_update, &prog, &res);
    ota_progress_finish(&prog);
    ota_arduino_print_auth_warning(stderr, ao, &res);
    if (rc != OTA_EXIT_OK) {
        if (refused != NULL && res.failure == OTA_AR_NO_ANSWER) {
            ota_print_failure(stderr, native, refused);
            fprintf(stderr, "note: nothing answered ArduinoOTA on UDP port %u either\n",
                    (unsigned)ao->port);
        } else {
            ota_arduino_print_failure(stderr, ao, &res);
        }
        return rc;
    }
    double secs = ota_now_s() - t0;
    printf("OK: %zu bytes uploaded to %s:%u in %.2f s (%.1f KiB/s) over ArduinoOTA\n", len,
           ao->host, (unsigned)ao->port, secs, secs > 0 ? (double)len / 1024.0 / secs : 0.0);
    if (!quiet)
        fprintf(stderr, "The device verified the image and is rebooting into it.\n");
    return OTA_EXIT_OK;
}

int cmd_upload(int argc, char **argv)
{
    enum { O_DEVICE = 256, O_DEVICES_FILE, O_PORT, O_PASSWORD, O_PASSWORD_FILE, O_AUTH,
           O_NO_COMPRESS, O_RETRIES, O_TIMEOUT, O_PROTOCOL, O_HOST_PORT, O_HOST_IP, O_FS,
           O_KNOWN_NODES };
    static const struct option opts[] = {
        {"device", required_argument, NULL, O_DEVICE},
        {"devices-file", required_argument, NULL, O_DEVICES_FILE},
        {"protocol", required_argument, NULL, O_PROTOCOL},
        {"host-port", required_argument, NULL, O_HOST_PORT},
        {"host-ip", required_argument, NULL, O_HOST_IP},
        {"filesystem", no_argument, NULL, O_FS},
        {"jobs", required_argument, NULL, 'j'},
        {"port", required_argument, NULL, O_PORT},
        {"password", required_argument, NULL, O_PASSWORD},
        {"password-file", required_argument, NULL, O_PASSWORD_FILE},
        {"auth", required_argument, NULL, O_AUTH},
        {"known-nodes", required_argument, NULL, O_KNOWN_NODES},
        {"no-compress", no_argument, NULL, O_NO_COMPRESS},
        {"retries", required_argument, NULL, O_RETRIES},
        {"timeout", required_argument, NULL, O_TIMEOUT},
        {"quiet", no_argument, NULL, 'q'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    ota_client_options_t o = {
        .host = NULL, .port = DEFAULT_PORT, .password = NULL, .auth = OTA_AUTH_AUTO,
        .compress = true, .timeout_s = DEFAULT_TIMEOUT_S,
    };
    const char *password_file = NULL, *devices_file = NULL, *known_nodes = NULL;
    bool port_set = false, auth_set = false;
    int protocol = 0; /* 0 auto, 1 native, 2 arduino */
    uint16_t host_port = 0;
    const char *host_ip = NULL;
    bool filesystem = false;
    static const char *specs[MAX_DEVICES];
    int nspecs = 0;
    unsigned long retries = 0, v, jobs = 8;
    bool quiet = false;
    int c;
    opterr = 0;
    while ((c = getopt_long(argc, argv, ":qhj:", opts, NULL)) != -1) {
        switch (c) {
        case O_DEVICE:
            if (add_device(specs, &nspecs, optarg) != 0)
                return usage_error("upload", "more than 1024 devices%s", NULL);
            break;
        case O_DEVICES_FILE: devices_file = optarg; break;
        case O_PROTOCOL:
            if (strcmp(optarg, "auto") == 0)
                protocol = 0;
            else if (strcmp(optarg, "native") == 0)
                protocol = 1;
            else if (strcmp(optarg, "arduino") == 0)
                protocol = 2;
            else
                return usage_error("upload", "--protocol takes native, arduino or auto, not '%s'",
                                   optarg);
            break;
        case O_HOST_PORT:
            if (!parse_uint(optarg, 1, 65535, &v))
                return usage_error("upload", "--host-port takes a number from 1 to 65535, not "
                                             "'%s'", optarg);
            host_port = (uint16_t)v;
            break;
        case O_HOST_IP: host_ip = optarg; break;
        case O_FS: filesystem = true; break;
        case 'j':
            if (!parse_uint(optarg, 1, 64, &jobs))
                return usage_error("upload", "--jobs takes a number from 1 to 64, not '%s'",
                                   optarg);
            break;
        case O_PORT:
            if (!parse_uint(optarg, 1, 65535, &v))
                return usage_error("upload", "--port takes a number from 1 to 65535, not '%s'",
                                   optarg);
            o.port = (uint16_t)v;
            port_set = true;
            break;
        case O_PASSWORD: o.password = optarg; break;
        case O_PASSWORD_FILE: password_file = optarg; break;
        case O_KNOWN_NODES: known_nodes = optarg; break;
        case O_AUTH:
            auth_set = true;
            if (strcmp(optarg, "auto") == 0)
                o.auth = OTA_AUTH_AUTO;
            else if (strcmp(optarg, "salted") == 0)
                o.auth = OTA_AUTH_SALTED;
            else if (strcmp(optarg, "sha256") == 0)
                o.auth = OTA_AUTH_SHA256;
            else if (strcmp(optarg, "md5") == 0)
                o.auth = OTA_AUTH_MD5;
            else if (strcmp(optarg, "none") == 0)
                o.auth = OTA_AUTH_NONE;
            else
                return usage_error("upload", "--auth takes auto, salted, sha256, md5 or none, "
                                             "not '%s'", optarg);
            break;
        case O_NO_COMPRESS: o.compress = false; break;
        case O_RETRIES:
            if (!parse_uint(optarg, 0, 100, &retries))
                return usage_error("upload", "--retries takes a number from 0 to 100, not '%s'",
                                   optarg);
            break;
        case O_TIMEOUT:
            if (!parse_uint(optarg, 1, 3600, &v))
                return usage_error("upload", "--timeout takes seconds from 1 to 3600, not '%s'",
                                   optarg);
            o.timeout_s = (unsigned)v;
            break;
        case 'q': quiet = true; break;
        case 'h': fputs(upload_usage, stdout); return OTA_EXIT_OK;
        case ':': return usage_error("upload", "option '%s' needs a value", argv[optind - 1]);
        default: return usage_error("upload", "unknown option '%s'", argv[optind - 1]);
        }
    }
    if (optind >= argc)
        return usage_error("upload", "missing FIRMWARE (the image file to send)%s", NULL);
    const char *node_file = NULL;
    if (optind + 2 == argc && is_yaml(argv[optind]))
        node_file = argv[optind++];
    if (optind + 1 < argc)
        return usage_error("upload", "unexpected argument '%s'", argv[optind + 1]);
    /* the nodes: --device (repeatable) and --devices-file */
    static char file_specs[MAX_DEVICES][300];
    if (devices_file != NULL) {
        FILE *df = fopen(devices_file, "r");
        if (df == NULL) {
            fprintf(stderr, "error: cannot read %s: %s\n", devices_file, strerror(errno));
            return OTA_EXIT_INPUT;
        }
        char line[300];
        int k = 0;
        while (fgets(line, sizeof line, df) != NULL) {
            char *p = line + strspn(line, " \t");
            p[strcspn(p, " \t\r\n#")] = '\0';
            if (p[0] == '\0')
                continue;
            if (k >= MAX_DEVICES || add_device(specs, &nspecs, strcpy(file_specs[k++], p)) != 0) {
                fclose(df);
                return usage_error("upload", "more than 1024 devices%s", NULL);
            }
        }
        fclose(df);
    }
    /* password: --password, --password-file, the node's file, $OTA_PASSWORD */
    char *pw_alloc = NULL;
    if (resolve_password(&o, password_file, &pw_alloc) != 0)
        return OTA_EXIT_INPUT;
    static ota_node_config_t node_cfg;
    static char node_host[128];
    if (node_file != NULL && nspecs <= 1) {
        if (nspecs == 1)
            o.host = specs[0];
        int rc = apply_node_file(node_file, &o, port_set, node_host, sizeof node_host, &node_cfg);
        if (rc != 0)
            return rc;
        if (nspecs == 0)
            specs[nspecs++] = o.host;
    }
    if (o.password == NULL && getenv("OTA_PASSWORD") != NULL && getenv("OTA_PASSWORD")[0])
        o.password = getenv("OTA_PASSWORD");
    if (auth_set && o.require_salted == OTA_SALTED_BY_CONFIG)
        o.require_salted = OTA_SALTED_NOT_REQUIRED; /* --auth says what to expect */
    static char known_path[4096];
    if (ota_known_path(known_nodes, known_path, sizeof known_path) == 0)
        o.known_file = known_path;
    if (nspecs == 0)
        return usage_error("upload", "missing --device HOST (the node's address) or a node's "
                                     "YAML file%s", NULL);
    static fleet_job_t fleet_jobs[MAX_DEVICES];
    for (int i = 0; i < nspecs; i++) {
        if (!split_device(specs[i], o.port, fleet_jobs[i].host, sizeof fleet_jobs[i].host,
                          &fleet_jobs[i].port))
            return usage_error("upload", "'%s' is not HOST, HOST:PORT or [IPv6]:PORT",
                               specs[i]);
    }
    o.host = fleet_jobs[0].host;
    o.port = fleet_jobs[0].port;
    const char *name = o.host; /* as given; o.host may become its mDNS address */
    const char *firmware = argv[optind];

    size_t len = 0;
    uint8_t *image = load_firmware(firmware, &len);
    if (image == NULL) {
        free(pw_alloc);
        return OTA_EXIT_INPUT;
    }
    if (nspecs > 1) {
        if (!quiet)
            fprintf(stderr, "Uploading %s (%zu bytes) to %d nodes, %lu at a time\n", firmware,
                    len, nspecs, jobs);
        fleet_t fl = {.jobs = fleet_jobs, .count = nspecs, .base = o, .image = image,
                      .len = len, .quiet = quiet};
        int frc = upload_fleet(&fl, (unsigned)jobs);
        free(image);
        free(pw_alloc);
        return frc;
    }
    /* --protocol arduino: chosen deliberately, so espota.py's second answer keyed with
     * MD5hex(password) too; the automatic fallback answers once (arduino_client.h) */
    ota_arduino_options_t ao = {.host = o.host, .port = o.port, .password = o.password,
                                .host_ip = host_ip, .host_port = host_port,
                                .timeout_s = o.timeout_s, .filesystem = filesystem,
                                .auth = o.auth, .retry_md5_key = protocol == 2};
    if (filesystem && protocol != 2) {
        free(image);
        free(pw_alloc);
        return usage_error("upload", "--filesystem needs --protocol arduino%s", NULL);
    }
    host_lookup_t lookup;
    memset(&lookup, 0, sizeof lookup);
    if (protocol == 2 && o.auth == OTA_AUTH_SALTED) {
        free(image);
        free(pw_alloc);
        return usage_error("upload", "--auth salted cannot be used with --protocol arduino "
                                     "(ArduinoOTA has only the MD5 and SHA-256 challenges)%s",
                           NULL);
    }
    if (protocol == 2) {
        int arc = OTA_EXIT_NETWORK;
        ao.host = lookup_host(&lookup, name, quiet);
        if (ao.host != NULL)
            arc = upload_arduino(&ao, firmware, image, len, quiet, NULL, NULL);
        else
            print_lookup_miss(stderr, &lookup, name);
        free(image);
        free(pw_alloc);
        return arc;
    }
    if (!quiet)
        fprintf(stderr, "Uploading %s (%zu bytes) to %s port %u\n", firmware, len, o.host,
                (unsigned)o.port);
    ota_client_result_t res;
    int rc = OTA_EXIT_INTERNAL;
    double started = ota_now_s();
    unsigned wait_s = 1;
    for (unsigned long attempt = 0;; attempt++) {
        o.host = lookup_host(&lookup, name, quiet);
        if (o.host != NULL) {
            ota_progress_t prog;
            ota_progress_init(&prog, stderr, quiet);
            started = ota_now_s();
            ota_known_prepare(&o, name, o.port, stderr);
            rc = ota_client_upload(&o, image, len, ota_progress_update, &prog, &res);
            ota_progress_finish(&prog);
            ota_print_auth_warning(stderr, &o, &res);
            if (rc == OTA_EXIT_OK)
                ota_known_commit(&o, &res, quiet, stderr);
        } else {
            o.host = name;
            lookup_failure(&lookup, &res);
            rc = OTA_EXIT_NETWORK;
        }
        if (rc == OTA_EXIT_OK || attempt >= retries || !ota_client_retriable(&res))
            break;
        report_failure(stderr, &o, &res, &lookup, name);
        fprintf(stderr, "retrying in %u s (attempt %lu of %lu)\n", wait_s, attempt + 2,
                retries + 1);
        sleep(wait_s);
        wait_s = wait_s * 2 > 10 ? 10 : wait_s * 2;
    }
    if (rc == OTA_EXIT_OK) {
        double secs = ota_now_s() - started;
        char gz[64] = "";
        if (res.compressed)
            snprintf(gz, sizeof gz, ", gzip: %zu bytes on the wire", res.wire_size);
        printf("OK: %zu bytes uploaded to %s:%u in %.2f s (%.1f KiB/s)%s\n", len, name,
               (unsigned)o.port, secs, secs > 0 ? (double)len / 1024.0 / secs : 0.0, gz);
        if (!quiet)
            fprintf(stderr, "The node verified and activated the image and is rebooting into "
                            "it.\n");
    } else if (protocol == 0 && res.failure == OTA_FAIL_REFUSED &&
               (o.auth == OTA_AUTH_SALTED || o.require_salted != OTA_SALTED_NOT_REQUIRED ||
                o.known_error[0] != '\0')) {
        /* ArduinoOTA cannot prove the device knows the password: whoever answers its
         * invitation gets a crackable response or the firmware. No silent fallback to it
         * when salted auth is required. */
        char why[700];
        if (o.auth == OTA_AUTH_SALTED)
            snprintf(why, sizeof why, "--auth salted");
        else if (o.require_salted == OTA_SALTED_BY_CONFIG)
            snprintf(why, sizeof why, "%s sets a password without legacy_auth: true",
                     o.config_file ? o.config_file : "the node's file");
        else if (o.require_salted == OTA_SALTED_BY_KNOWN)
            snprintf(why, sizeof why, "%s line %u records it as a salted node", o.known_file,
                     o.known_line);
        else
            snprintf(why, sizeof why, "the known_nodes file is unusable: %s", o.known_error);
        fprintf(stderr, "error: %s refused the native OTA connection, and salted auth is "
                        "required (%s); not falling back to ArduinoOTA, which cannot prove "
                        "the device knows the password: nothing was sent\n",
                res.address[0] ? res.address : name, why);
        fprintf(stderr, "hint: check that the node is up and that --port %u is its native OTA "
                        "port; to upload over ArduinoOTA deliberately, pass --protocol "
                        "arduino\n", (unsigned)o.port);
        rc = OTA_EXIT_AUTH;
    } else if (protocol == 0 && res.failure == OTA_FAIL_REFUSED) {
        /* no native OTA on that TCP port: perhaps an ArduinoOTA device (UDP) */
        if (!quiet)
            fprintf(stderr, "%s:%u refused the native OTA connection; trying ArduinoOTA on UDP "
                            "port %u\n", name, (unsigned)o.port, (unsigned)o.port);
        ao.host = o.host;
        rc = upload_arduino(&ao, firmware, image, len, quiet, &o, &res);
    } else {
        report_failure(stderr, &o, &res, &lookup, name);
    }
    free(image);
    free(pw_alloc);
    return rc;
}
