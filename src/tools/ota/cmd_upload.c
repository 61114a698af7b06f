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
#include "imgsign.h"
#include "known_nodes.h"
#include "messages.h"
#include "nodefile.h"
#include "ota/protocol.h"
#include "ota/util.h"
#include "passwords.h"
#include "progress.h"
#include "upload.h"
#include "updated_nodes.h"
#include "interrupt.h"

const char upload_usage[] =
    "usage: ota upload --device HOST [--device HOST ...] [options] FIRMWARE\n"
    "       ota upload NODE.yaml [options] [FIRMWARE]\n"
    "\n"
    "Send FIRMWARE to the node at HOST over the native OTA protocol (ESPHome-compatible).\n"
    "With a node's YAML file, HOST is its wifi/ethernet use_address or static IP, else\n"
    "<name>.local, and port and password come from the file (-s KEY VALUE substitutes\n"
    "in it); the options below override them. Without FIRMWARE it sends the image\n"
    "ESPHome built for that node, .esphome/build/NAME/.pioenvs/NAME/firmware.bin beside\n"
    "the YAML (as 'esphome upload' does), and says so.\n"
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
    "                       image gets smaller, unless this node took a raw upload faster\n"
    "                       before: on a fast link its inflating costs more than the\n"
    "                       wire saves; the rates are kept beside the known_nodes file)\n"
    "  --compress           gzip whenever the device accepts it (no such choice)\n"
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

/* ------------------------------------------------------------ shared with run */

/* Above this rate (image bytes per second, gzipped) the link is fast enough that
 * gzip may not pay: one raw upload is tried to compare. */
#define UPLOAD_FAST_LINK_BPS (2.0 * 1024 * 1024)

const struct option upload_long_options[] = {
    {"port", required_argument, NULL, UO_PORT},
    {"password", required_argument, NULL, UO_PASSWORD},
    {"password-file", required_argument, NULL, UO_PASSWORD_FILE},
    {"auth", required_argument, NULL, UO_AUTH},
    {"known-nodes", required_argument, NULL, UO_KNOWN_NODES},
    {"no-compress", no_argument, NULL, UO_NO_COMPRESS},
    {"compress", no_argument, NULL, UO_COMPRESS},
    {"retries", required_argument, NULL, UO_RETRIES},
    {"timeout", required_argument, NULL, UO_TIMEOUT},
    {"protocol", required_argument, NULL, UO_PROTOCOL},
    {"host-port", required_argument, NULL, UO_HOST_PORT},
    {"host-ip", required_argument, NULL, UO_HOST_IP},
    {"quiet", no_argument, NULL, 'q'},
    {NULL, 0, NULL, 0},
};

void upload_merge_options(struct option *out, const struct option *own)
{
    size_t n = 0;
    for (const struct option *p = upload_long_options; p->name != NULL; p++)
        out[n++] = *p;
    for (const struct option *p = own; p->name != NULL && n < UPLOAD_OPTION_ROWS + 7; p++)
        out[n++] = *p;
    out[n] = (struct option){NULL, 0, NULL, 0};
}

void upload_args_init(upload_args_t *a)
{
    memset(a, 0, sizeof *a);
    a->o.port = DEFAULT_PORT;
    a->o.auth = OTA_AUTH_AUTO;
    a->o.compress = true;
    a->o.timeout_s = DEFAULT_TIMEOUT_S;
    a->o.phase_out = &ota_interrupt_phase;
}

int upload_option(const char *cmd, int c, const char *arg, upload_args_t *a)
{
    unsigned long v;
    switch (c) {
    case UO_PROTOCOL:
        if (strcmp(arg, "auto") == 0)
            a->protocol = UPLOAD_PROTO_AUTO;
        else if (strcmp(arg, "native") == 0)
            a->protocol = UPLOAD_PROTO_NATIVE;
        else if (strcmp(arg, "arduino") == 0)
            a->protocol = UPLOAD_PROTO_ARDUINO;
        else
            return usage_error(cmd, "--protocol takes native, arduino or auto, not '%s'", arg);
        return 0;
    case UO_HOST_PORT:
        if (!parse_uint(arg, 1, 65535, &v))
            return usage_error(cmd, "--host-port takes a number from 1 to 65535, not '%s'", arg);
        a->host_port = (uint16_t)v;
        return 0;
    case UO_HOST_IP: a->host_ip = arg; return 0;
    case UO_PORT:
        if (!parse_uint(arg, 1, 65535, &v))
            return usage_error(cmd, "--port takes a number from 1 to 65535, not '%s'", arg);
        a->o.port = (uint16_t)v;
        a->port_set = true;
        return 0;
    case UO_PASSWORD: a->o.password = arg; return 0;
    case UO_PASSWORD_FILE: a->password_file = arg; return 0;
    case UO_KNOWN_NODES: a->known_nodes = arg; return 0;
    case UO_AUTH:
        a->auth_set = true;
        if (strcmp(arg, "auto") == 0)
            a->o.auth = OTA_AUTH_AUTO;
        else if (strcmp(arg, "salted") == 0)
            a->o.auth = OTA_AUTH_SALTED;
        else if (strcmp(arg, "sha256") == 0)
            a->o.auth = OTA_AUTH_SHA256;
        else if (strcmp(arg, "md5") == 0)
            a->o.auth = OTA_AUTH_MD5;
        else if (strcmp(arg, "none") == 0)
            a->o.auth = OTA_AUTH_NONE;
        else
            return usage_error(cmd, "--auth takes auto, salted, sha256, md5 or none, not '%s'",
                               arg);
        return 0;
    case UO_NO_COMPRESS:
        a->o.compress = false;
        a->compress_forced = false;
        return 0;
    case UO_COMPRESS:
        a->o.compress = true;
        a->compress_forced = true;
        return 0;
    case UO_RETRIES:
        if (!parse_uint(arg, 0, 100, &a->retries))
            return usage_error(cmd, "--retries takes a number from 0 to 100, not '%s'", arg);
        return 0;
    case UO_TIMEOUT:
        if (!parse_uint(arg, 1, 3600, &v))
            return usage_error(cmd, "--timeout takes seconds from 1 to 3600, not '%s'", arg);
        a->o.timeout_s = (unsigned)v;
        return 0;
    case 'q': a->quiet = true; return 0;
    }
    return UPLOAD_OPTION_NOT_MINE;
}

int upload_settle(upload_args_t *a, const char *node_file, ota_node_config_t *cfg, char *host,
                  size_t host_cap, char **pw_alloc)
{
    /* password: --password, --password-file, the node's file, $OTA_PASSWORD */
    if (resolve_password(&a->o, a->password_file, pw_alloc) != 0)
        return OTA_EXIT_INPUT;
    if (node_file != NULL) {
        int rc = apply_node_file(node_file, &a->o, a->port_set, host, host_cap, cfg);
        if (rc != 0) {
            free(*pw_alloc);
            *pw_alloc = NULL;
            return rc;
        }
    }
    const char *env = getenv("OTA_PASSWORD");
    if (a->o.password == NULL && env != NULL && env[0])
        a->o.password = env;
    if (a->auth_set && a->o.require_salted == OTA_SALTED_BY_CONFIG)
        a->o.require_salted = OTA_SALTED_NOT_REQUIRED; /* --auth says what to expect */
    if (ota_known_path(a->known_nodes, a->known_path, sizeof a->known_path) == 0)
        a->o.known_file = a->known_path;
    return OTA_EXIT_OK;
}

int upload_check_combination(const char *cmd, const upload_args_t *a)
{
    if (a->filesystem && a->protocol != UPLOAD_PROTO_ARDUINO)
        return usage_error(cmd, "--filesystem needs --protocol arduino%s", NULL);
    if (a->protocol == UPLOAD_PROTO_ARDUINO && a->o.auth == OTA_AUTH_SALTED)
        return usage_error(cmd, "--auth salted cannot be used with --protocol arduino "
                                "(ArduinoOTA has only the MD5 and SHA-256 challenges)%s",
                           NULL);
    return OTA_EXIT_OK;
}

/* What the node's silence means, said once per phase (client.h on_wait). */
typedef struct wait_note {
    ota_progress_t *prog;
    const char *where;
} wait_note_t;

static void on_wait(void *arg, ota_phase_t phase, unsigned limit_s)
{
    wait_note_t *w = arg;
    ota_progress_finish(w->prog); /* end the bar's line; the next update draws anew */
    ota_print_wait(stderr, w->where, phase, limit_s);
}

/* The ArduinoOTA progress also tells the interrupt handler where the upload is. */
static void arduino_progress(void *arg, size_t done, size_t total)
{
    ota_interrupt_phase = done >= total ? OTA_PHASE_VERIFY : OTA_PHASE_UPLOAD;
    ota_progress_update(arg, done, total);
}

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
    ota_interrupt_phase = OTA_PHASE_HANDSHAKE;
    int rc = ota_arduino_upload(ao, image, len, arduino_progress, &prog, &res);
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
    ota_interrupt_phase = OTA_INTERRUPT_UPDATED;
    double secs = ota_now_s() - t0;
    printf("OK: %zu bytes uploaded to %s:%u in %.2f s (%.1f KiB/s) over ArduinoOTA\n", len,
           ao->host, (unsigned)ao->port, secs, secs > 0 ? (double)len / 1024.0 / secs : 0.0);
    if (!quiet)
        fprintf(stderr, "The device verified the image and is rebooting into it.\n");
    return OTA_EXIT_OK;
}

int upload_single(upload_args_t *a, const char *name, const char *firmware,
                  const uint8_t *image, size_t len, host_lookup_t *lookup, bool *by_arduino)
{
    ota_client_options_t o = a->o;
    bool quiet = a->quiet;
    *by_arduino = false;
    /* --protocol arduino: chosen deliberately, so espota.py's second answer keyed with
     * MD5hex(password) too; the automatic fallback answers once (arduino_client.h) */
    ota_arduino_options_t ao = {.host = name, .port = o.port, .password = o.password,
                                .host_ip = a->host_ip, .host_port = a->host_port,
                                .timeout_s = o.timeout_s, .filesystem = a->filesystem,
                                .auth = o.auth,
                                .retry_md5_key = a->protocol == UPLOAD_PROTO_ARDUINO};
    if (a->protocol == UPLOAD_PROTO_ARDUINO) {
        *by_arduino = true;
        ao.host = lookup_host(lookup, name, quiet);
        if (ao.host == NULL) {
            print_lookup_miss(stderr, lookup, name);
            return OTA_EXIT_NETWORK;
        }
        /* not recorded in updated_nodes: an ArduinoOTA device always refuses TCP */
        return upload_arduino(&ao, firmware, image, len, quiet, NULL, NULL);
    }
    if (!quiet)
        fprintf(stderr, "Uploading %s (%zu bytes) to %s port %u\n", firmware, len, name,
                (unsigned)o.port);
    o.updated_ago_s = ota_updated_ago(o.known_file, name, o.port);
    /* gzip where it pays: what this node's last uploads measured, raw and gzipped */
    if (o.compress && !a->compress_forced) {
        double raw_bps = 0, gz_bps = 0;
        ota_updated_rates(o.known_file, name, o.port, &raw_bps, &gz_bps);
        const double mib = 1024.0 * 1024.0;
        if (raw_bps > 0 && gz_bps > 0 && raw_bps > gz_bps * 1.1) {
            o.compress = false;
            if (!quiet)
                fprintf(stderr, "gzip: off for %s: it took images at %.1f MiB/s raw and %.1f "
                                "MiB/s gzipped (--compress forces it)\n",
                        name, raw_bps / mib, gz_bps / mib);
        } else if (raw_bps == 0 && gz_bps >= UPLOAD_FAST_LINK_BPS) {
            o.compress = false; /* measure once: on a fast link gzip may cost more */
            if (!quiet)
                fprintf(stderr, "gzip: trying this upload without it: %s took the last one at "
                                "%.1f MiB/s gzipped, a link where inflating on the node may cost "
                                "more than it saves (--compress forces gzip)\n",
                        name, gz_bps / mib);
        }
    }
    /* hash and gzip now, before connecting: once for every retry, and never inside the
     * second a device allows between its auth OK and the size (docs/protocol.md) */
    /* a node that took the late digest last time: the MD5 is computed while the bytes
     * go out (docs/protocol.md#native-late-md5), not before connecting */
    int flags = ota_updated_flags(o.known_file, name, o.port);
    o.known_late_md5 = flags >= 0 && (flags & OTA_SERVER_FLAG_LATE_MD5) != 0;
    ota_client_payload_t payload;
    ota_client_prepare(&payload, image, len, o.compress, !o.known_late_md5);
    if (payload.gz_cached && !quiet)
        fprintf(stderr, "gzip of this image (%zu bytes) taken from the cache\n", payload.gz_len);
    ota_client_result_t res;
    int rc = OTA_EXIT_INTERNAL;
    double started = ota_now_s();
    unsigned wait_s = 1;
    for (unsigned long attempt = 0;; attempt++) {
        o.host = lookup_host(lookup, name, quiet);
        if (o.host != NULL) {
            ota_progress_t prog;
            ota_progress_init(&prog, stderr, quiet);
            wait_note_t note = {.prog = &prog, .where = name};
            if (!quiet) {
                o.on_wait = on_wait;
                o.wait_arg = &note;
            }
            started = ota_now_s();
            ota_known_prepare(&o, name, o.port, stderr);
            rc = ota_client_upload_payload(&o, &payload, ota_progress_update, &prog, &res);
            ota_progress_finish(&prog);
            o.on_wait = NULL;
            ota_print_auth_warning(stderr, &o, &res);
            if (rc == OTA_EXIT_OK)
                ota_known_commit(&o, &res, quiet, stderr);
        } else {
            o.host = name;
            lookup_failure(lookup, &res);
            rc = OTA_EXIT_NETWORK;
        }
        if (rc == OTA_EXIT_OK || attempt >= a->retries || !ota_client_retriable(&res))
            break;
        report_failure(stderr, &o, &res, lookup, name);
        fprintf(stderr, "retrying in %u s (attempt %lu of %lu)\n", wait_s, attempt + 2,
                a->retries + 1);
        sleep(wait_s);
        wait_s = wait_s * 2 > 10 ? 10 : wait_s * 2;
    }
    ota_client_payload_free(&payload);
    if (rc == OTA_EXIT_OK) {
        ota_interrupt_phase = OTA_INTERRUPT_UPDATED;
        double secs = ota_now_s() - started;
        ota_updated_record(o.known_file, name, o.port, res.compressed,
                           secs > 0 ? (double)len / secs : 0, res.server_flags);
        char gz[64] = "";
        if (res.compressed)
            snprintf(gz, sizeof gz, ", gzip: %zu bytes on the wire", res.wire_size);
        printf("OK: %zu bytes uploaded to %s:%u in %.2f s (%.1f KiB/s)%s\n", len, name,
               (unsigned)o.port, secs, secs > 0 ? (double)len / 1024.0 / secs : 0.0, gz);
        if (!quiet)
            fprintf(stderr, "The node verified and activated the image and is rebooting into "
                            "it.\n");
    } else if (a->protocol == UPLOAD_PROTO_AUTO && res.failure == OTA_FAIL_REFUSED &&
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
        if (o.updated_ago_s > 0)
            fprintf(stderr, "hint: this machine updated the node %ld s ago: it is most likely "
                            "still rebooting into the new firmware; retry in a few seconds (or "
                            "pass --retries 5)\n", o.updated_ago_s);
        else
            fprintf(stderr, "hint: check that the node is up and that --port %u is its native "
                            "OTA port; to upload over ArduinoOTA deliberately, pass --protocol "
                            "arduino\n", (unsigned)o.port);
        rc = OTA_EXIT_AUTH;
    } else if (a->protocol == UPLOAD_PROTO_AUTO && res.failure == OTA_FAIL_REFUSED &&
               o.updated_ago_s <= 0) {
        /* no native OTA on that TCP port: perhaps an ArduinoOTA device (UDP) */
        if (!quiet)
            fprintf(stderr, "%s:%u refused the native OTA connection; trying ArduinoOTA on UDP "
                            "port %u\n", name, (unsigned)o.port, (unsigned)o.port);
        ao.host = o.host;
        *by_arduino = true;
        rc = upload_arduino(&ao, firmware, image, len, quiet, &o, &res);
    } else {
        report_failure(stderr, &o, &res, lookup, name);
    }
    return rc;
}

/* The firmware to send: the one given, else the one ESPHome built for the node file
 * (said on stderr). NULL after the error. */
const char *upload_firmware(const char *cmd, const char *given, const char *node_file,
                            const ota_node_config_t *cfg, char *buf, size_t cap)
{
    if (given != NULL)
        return given;
    if (node_file != NULL && nodefile_built_firmware(node_file, cfg, buf, cap) == 0) {
        fprintf(stderr, "Using the firmware ESPHome built for %s: %s\n", cfg->name, buf);
        return buf;
    }
    if (node_file == NULL) {
        usage_error(cmd, "missing FIRMWARE (the image file to send)%s", NULL);
        return NULL;
    }
    fprintf(stderr, "error: missing FIRMWARE: no image given, and ESPHome has not built one "
                    "for %s (no %s)\n", node_file, buf);
    fprintf(stderr, "hint: pass the image file after %s, or build it first with 'esphome "
                    "compile %s'\n", node_file, node_file);
    return NULL;
}

int upload_sign_for_node(const ota_node_config_t *cfg, const char *firmware, uint8_t **image,
                         size_t *len, bool quiet)
{
    if (cfg == NULL || !cfg->signed_ota)
        return OTA_EXIT_OK;
    imgsign_info_t info;
    char err[512] = "";
    if (imgsign_inspect(*image, *len, &info, err, sizeof err) == 1)
        for (size_t b = 0; b < info.n_blocks; b++) {
            const imgsign_block_info_t *bl = &info.blocks[b];
            if (!bl->digest_matches || !bl->signature_valid)
                continue;
            for (size_t t = 0; t < cfg->n_trusted; t++)
                if (memcmp(bl->key_digest, cfg->trusted[t], 32) == 0) {
                    if (!quiet)
                        fprintf(stderr, "%s is signed by a key the node trusts (%s)\n",
                                firmware, cfg->trusted_from[t]);
                    return OTA_EXIT_OK;
                }
        }
    if (cfg->signing_key[0] == '\0') {
        fprintf(stderr, "error: %s requires signed images (signed_ota_verification) and %s is "
                        "not signed by a key it trusts: nothing was sent\n", cfg->file,
                firmware);
        fprintf(stderr, "hint: sign it with 'ota sign --key KEY.pem %s' (a key listed in "
                        "verification_keys), or name the key as signing_key: so that upload "
                        "signs it\n", firmware);
        return OTA_EXIT_INPUT;
    }
    const char *keys[1] = {cfg->signing_key};
    uint8_t *out = NULL;
    size_t out_len = 0;
    if (imgsign_sign(*image, *len, keys, 1, &out, &out_len, err, sizeof err) != 0) {
        fprintf(stderr, "error: cannot sign %s with %s: %s\n", firmware, cfg->signing_key, err);
        return OTA_EXIT_INPUT;
    }
    if (!quiet)
        fprintf(stderr, "Signed %s with %s (signed_ota_verification of %s): %zu bytes\n",
                firmware, cfg->signing_key, cfg->file, out_len);
    free(*image);
    *image = out;
    *len = out_len;
    return OTA_EXIT_OK;
}

/* ------------------------------------------------------------ ota upload */

int cmd_upload(int argc, char **argv)
{
    enum { O_DEVICE = 300, O_DEVICES_FILE, O_FS };
    static struct option opts[UPLOAD_OPTION_ROWS + 8];
    static const struct option own[] = {
        {"device", required_argument, NULL, O_DEVICE},
        {"devices-file", required_argument, NULL, O_DEVICES_FILE},
        {"filesystem", no_argument, NULL, O_FS},
        {"jobs", required_argument, NULL, 'j'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    upload_merge_options(opts, own);
    static upload_args_t args;
    upload_args_t *a = &args;
    upload_args_init(a);
    const char *devices_file = NULL;
    static const char *specs[MAX_DEVICES];
    int nspecs = 0;
    unsigned long jobs = 8;
    int c;
    opterr = 0;
    optind = 1;
    while ((c = getopt_long(argc, argv, ":qhj:", opts, NULL)) != -1) {
        switch (c) {
        case O_DEVICE:
            if (add_device(specs, &nspecs, optarg) != 0)
                return usage_error("upload", "more than 1024 devices%s", NULL);
            break;
        case O_DEVICES_FILE: devices_file = optarg; break;
        case O_FS: a->filesystem = true; break;
        case 'j':
            if (!parse_uint(optarg, 1, 64, &jobs))
                return usage_error("upload", "--jobs takes a number from 1 to 64, not '%s'",
                                   optarg);
            break;
        case 'h': fputs(upload_usage, stdout); return OTA_EXIT_OK;
        case ':': return usage_error("upload", "option '%s' needs a value", argv[optind - 1]);
        default: {
            int rc = upload_option("upload", c, optarg, a);
            if (rc == UPLOAD_OPTION_NOT_MINE)
                return usage_error("upload", "unknown option '%s'", argv[optind - 1]);
            if (rc != 0)
                return rc;
        }
        }
    }
    int rc = upload_check_combination("upload", a);
    if (rc != OTA_EXIT_OK)
        return rc;
    const char *node_file = NULL, *given = NULL;
    if (optind < argc && is_yaml(argv[optind]) && (optind + 1 == argc || optind + 2 == argc))
        node_file = argv[optind++];
    if (optind < argc)
        given = argv[optind++];
    if (optind < argc)
        return usage_error("upload", "unexpected argument '%s'", argv[optind]);
    if (node_file == NULL && given == NULL)
        return usage_error("upload", "missing FIRMWARE (the image file to send)%s", NULL);
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
    static ota_node_config_t node_cfg;
    static char node_host[128];
    char *pw_alloc = NULL;
    if (node_file != NULL && nspecs > 1) {
        return usage_error("upload", "a NODE.yaml names one node; with several --device "
                                     "options pass only FIRMWARE%s", NULL);
    }
    if (nspecs == 1)
        a->o.host = specs[0];
    rc = upload_settle(a, node_file, &node_cfg, node_host, sizeof node_host, &pw_alloc);
    if (rc != OTA_EXIT_OK)
        return rc;
    if (node_file != NULL && nspecs == 0)
        specs[nspecs++] = a->o.host;
    if (nspecs == 0) {
        free(pw_alloc);
        return usage_error("upload", "missing --device HOST (the node's address) or a node's "
                                     "YAML file%s", NULL);
    }
    static fleet_job_t fleet_jobs[MAX_DEVICES];
    for (int i = 0; i < nspecs; i++) {
        if (!split_device(specs[i], a->o.port, fleet_jobs[i].host, sizeof fleet_jobs[i].host,
                          &fleet_jobs[i].port)) {
            free(pw_alloc);
            return usage_error("upload", "'%s' is not HOST, HOST:PORT or [IPv6]:PORT",
                               specs[i]);
        }
    }
    static char built[4200];
    const char *firmware = upload_firmware("upload", given, node_file, &node_cfg, built,
                                           sizeof built);
    size_t len = 0;
    uint8_t *image = firmware ? load_firmware(firmware, &len) : NULL;
    /* firmware only: nodes do not check filesystem images for signatures */
    if (image == NULL || (node_file != NULL && !a->filesystem &&
                          upload_sign_for_node(&node_cfg, firmware, &image, &len, a->quiet) != 0)) {
        free(image);
        ota_wipe(&node_cfg, sizeof node_cfg);
        free(pw_alloc);
        return OTA_EXIT_INPUT;
    }
    ota_interrupt_install();
    if (nspecs > 1) {
        if (!a->quiet)
            fprintf(stderr, "Uploading %s (%zu bytes) to %d nodes, %lu at a time\n", firmware,
                    len, nspecs, jobs);
        ota_client_options_t base = a->o;
        base.phase_out = NULL; /* many uploads: one message for all */
        ota_interrupt_phase = OTA_INTERRUPT_FLEET;
        ota_client_payload_t payload;
        /* hashed once here for every job (a node that takes the late digest gets it
         * after the data, without hashing again) */
        ota_client_prepare(&payload, image, len, base.compress, true);
        fleet_t fl = {.jobs = fleet_jobs, .count = nspecs, .base = base, .payload = &payload,
                      .quiet = a->quiet};
        rc = upload_fleet(&fl, (unsigned)jobs);
        ota_client_payload_free(&payload);
    } else {
        a->o.port = fleet_jobs[0].port;
        host_lookup_t lookup;
        memset(&lookup, 0, sizeof lookup);
        bool by_arduino;
        rc = upload_single(a, fleet_jobs[0].host, firmware, image, len, &lookup, &by_arduino);
    }
    free(image);
    ota_wipe(&node_cfg, sizeof node_cfg);
    free(pw_alloc);
    return rc;
}
