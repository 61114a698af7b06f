/*
 * demo-node - an example firmware for a Linux node: the OTA component plus one
 * small demo component that logs a heartbeat. Run it under ota-boot:
 *
 *   ota-boot flash --state DIR build/bin/demo-node
 *   ota-boot run --state DIR -- --port 3232
 *
 * Boot order, as a microcontroller firmware would do it: safe-mode check first
 * (it counts the boot), then logging, network and OTA, then the other components,
 * which a safe-mode boot leaves off.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <mbedtls/md5.h>
#include <mbedtls/sha256.h>

#include "ota/app_desc.h"
#include "ota/discovery.h"
#include "ota/log_proto.h"
#include "ota/mdns.h"
#include "ota/safe_mode.h"
#include "ota/pull.h"
#include "ota/server.h"
#include "node_args.h"
#include "ota_posix.h"

/* Compiled-in settings, generated from node.yaml by `ota codegen` at build time: the
 * OTA password is in there only as its salted verifier, so nobody can read the
 * password, or anything that authenticates, out of this binary. */
#include "node_settings.h"

#ifndef OTA_VERSION
#define OTA_VERSION "unknown"
#endif

#ifndef OTA_NODE_MDNS
#define OTA_NODE_MDNS 1 /* settings from before the mdns: block */
#endif
#ifndef OTA_NODE_UPDATE_URL /* settings from before update: platform: http_request */
#define OTA_NODE_UPDATE_URL NULL
#define OTA_NODE_UPDATE_INTERVAL_MS 21600000u
#endif
#define PULL_ON (OTA_CFG_ENABLE_PULL && OTA_CFG_ENABLE_HTTP)
#ifndef OTA_NODE_ARDUINO_PORT /* settings from before arduino_port / arduino_auth */
#define OTA_NODE_ARDUINO_PORT 0
#define OTA_NODE_ARDUINO_AUTH NULL
#define OTA_NODE_ARDUINO_HASH NULL
#endif
/* the demo firmware's own version, advertised in the _ota._tcp TXT record */
#define DEMO_FIRMWARE_VERSION "1.0.0"

/* The image descriptor (ESP-IDF's esp_app_desc_t layout, ota/app_desc.h): the node
 * finds it in every uploaded image, and 'ota sign --security-version N' sets its
 * secure_version before signing (anti-rollback). "used": the linker keeps it. */
__attribute__((used)) const ota_app_desc_t demo_app_desc = {
    .magic_word = OTA_APP_DESC_MAGIC,
    .secure_version = 0,
    .version = DEMO_FIRMWARE_VERSION,
    .project_name = OTA_NODE_NAME,
    .time = __TIME__,
    .date = __DATE__,
    .idf_ver = "ota " OTA_VERSION,
};


static volatile sig_atomic_t stop = 0;

#if PULL_ON
static ota_pull_t pull; /* pull updates (--update-url), static: no heap */

/* the native "pull now" request (ota pull-now) */
static void on_pull_now(void *arg)
{
    ota_pull_check_now(arg);
}
#endif

static void on_signal(int sig)
{
    (void)sig;
    stop = 1;
}

static const char usage_text[] =
    "usage: demo-node [options]\n"
    "\n"
    "An example OTA firmware for a Linux node: the OTA component plus a heartbeat.\n"
    "Run it under 'ota-boot run --state DIR -- [options]'.\n"
    "\n"
    "OTA:\n"
    "  --port N                  OTA port (default from node.yaml: 3232)\n"
    "  --bind ADDR               address to listen on (default ::, every IPv6 and IPv4\n"
    "                            address; 0.0.0.0 on a host without IPv6)\n"
    "  --verifier V              require the password of this salted verifier (the\n"
    "                            output of 'ota hash-password'; default: the\n"
    "                            one generated from node.yaml)\n"
    "  --password-file FILE      legacy: also accept the password in FILE (its first\n"
    "                            line) over the SHA-256 challenge, for stock uploaders\n"
    "                            (puts the plain password in memory)\n"
    "  --password P              the same with P on the command line, where every\n"
    "                            local user sees it (/proc/PID/cmdline): prefer the file\n"
    "  --allow-md5               legacy: also offer the MD5 challenge (with --password)\n"
    "  --no-password             accept uploads without a password\n"
    "  --auth-backoff-free N     failed logins in a row before back-off (default 3)\n"
    "  --auth-backoff-base-ms N  first back-off, doubling per failure (default 1000)\n"
    "  --auth-backoff-max-ms N   longest back-off (default 30000)\n"
    "  --auth-guesses-per-min N  password guesses per minute from all addresses\n"
    "                            together (default 30, 0 = no ceiling)\n"
    "  --protocol-version 1|2    protocol version announced (default 2)\n"
    "  --no-compression          refuse gzip uploads\n"
    "  --handshake-timeout-ms N  silence allowed during the handshake (default 20000)\n"
    "  --data-timeout-ms N       silence allowed during the upload (default 105000)\n"
    "  --slot-size BYTES         capacity of each slot (default 67108864)\n"
    "  --arduino-port N          also accept ArduinoOTA (espota.py) uploads: UDP port N\n"
    "                            (default from node.yaml's arduino_port: off)\n"
    "  --arduino-auth sha256|md5 its password variant (default: node.yaml's, or sha256;\n"
    "                            the node keeps only the hash that variant needs, from\n"
    "                            node.yaml or from --password-file; for ArduinoOTA that\n"
    "                            hash is password-equivalent)\n"
    "  --arduino-password-file FILE  derive the ArduinoOTA hash from the password in\n"
    "                            FILE (the native protocol keeps its verifier)\n"
    "  --arduino-data-slot       accept ArduinoOTA filesystem images into DIR/data.bin\n"
    "  --mdns-name NAME          answer NAME.local and advertise the OTA services under\n"
    "                            it (default: the node's name, " OTA_NODE_NAME "); mDNS\n"
    "                            runs on the interfaces --bind covers: none on loopback\n"
    "  --no-mdns                 no mDNS responder (as node.yaml's mdns: disabled: true)\n"
    "  --verification-key PEM    accept only firmware images signed by this key (public\n"
    "                            or private PEM, RSA-3072 or EC P-256; ESP-IDF Secure\n"
    "                            Boot V2 format, as 'ota sign' writes); repeat for up to\n"
    "                            3 keys (rotation, a backup key)\n"
    "  --firmware-version TEXT   the version advertised over mDNS and compared with a\n"
    "                            pull manifest's (default: the image descriptor's, which\n"
    "                            'ota publish --version' sets; " DEMO_FIRMWARE_VERSION " as built)\n"
    "pull updates (docs/pull.md):\n"
    "  --update-url URL          check this manifest.json (what 'ota publish' writes) once\n"
    "                            the boot is confirmed, then every interval (default from\n"
    "                            node.yaml's update: platform: http_request: off)\n"
    "  --update-interval-ms N    between checks, +-10 %% jitter (default 21600000, 6 h)\n"
    "  --update-retry-ms N       first retry after a failed check or download, doubling\n"
    "                            up to 5 min (default 5000)\n"
    "  --update-ca-file FILE     trust these CA certificates for https (default: the\n"
    "                            system's, /etc/ssl/certs/ca-certificates.crt)\n"
    "  --log-port N              serve log lines to viewers (ota logs) on this port\n"
    "                            (default: the OTA port + 1, as node.yaml's logger: says)\n"
    "  --no-log-server           do not serve log lines\n"
    "  --state DIR               state directory (default: $OTA_STATE_DIR, set by ota-boot)\n"
    "safe mode:\n"
    "  --no-safe-mode            never enter safe mode on boot loops\n"
    "  --safe-mode-attempts N    failed boots before safe mode (default %u)\n"
    "  --boot-is-good-after-ms N running this long proves a boot (default %u)\n"
    "  --safe-mode-reboot-timeout-ms N  leave safe mode by rebooting after this long\n"
    "                            without an update (default %u)\n"
    "demo component:\n"
    "  --heartbeat-ms N          heartbeat period (default 1000)\n"
    "  --crash-if-exists FILE    crash during set-up while FILE exists (for tests)\n"
    "  --version                 the version of this build\n"
    "  --help                    this text\n";

static int usage_error(const char *msg, const char *arg)
{
    fprintf(stderr, "demo-node: %s%s%s\nRun 'demo-node --help' for usage.\n", msg,
            arg ? ": " : "", arg ? arg : "");
    return 2;
}

/* A host name label as mDNS announces it: 1-63 letters, digits, inner hyphens. */
static void log_image(ota_posix_t *posix, char slot)
{
    unsigned char buf[65536], dig[32];
    char hex[65] = "unknown";
    FILE *f = fopen("/proc/self/exe", "rb");
    if (f != NULL) {
        mbedtls_sha256_context c;
        mbedtls_sha256_init(&c);
        mbedtls_sha256_starts_ret(&c, 0);
        size_t n;
        while ((n = fread(buf, 1, sizeof buf, f)) > 0)
            mbedtls_sha256_update_ret(&c, buf, n);
        fclose(f);
        mbedtls_sha256_finish_ret(&c, dig);
        mbedtls_sha256_free(&c);
        for (int i = 0; i < 32; i++)
            snprintf(hex + 2 * i, 3, "%02x", dig[i]);
    }
    ota_posix_logf(posix, OTA_LOG_INFO, "demo", "booted slot=%c image sha256=%s", slot, hex);
}

int main(int argc, char **argv)
{
    setvbuf(stdout, NULL, _IOLBF, 0);
    ota_server_config_t cfg;
    ota_server_config_default(&cfg);
    cfg.version = OTA_NODE_VERSION;
    cfg.verifier = OTA_NODE_VERIFIER;
    cfg.password = OTA_NODE_LEGACY_PASSWORD;
    cfg.allow_md5 = OTA_NODE_ALLOW_MD5;
    ota_safe_mode_config_t smc;
    ota_safe_mode_config_default(&smc);
    smc.enabled = OTA_NODE_SAFE_MODE;
    smc.num_attempts = OTA_NODE_NUM_ATTEMPTS;
    smc.boot_is_good_after_ms = OTA_NODE_BOOT_IS_GOOD_AFTER_MS;
    smc.reboot_timeout_ms = OTA_NODE_REBOOT_TIMEOUT_MS;
    smc.secure_version = node_desc_secure_version(&demo_app_desc);
    ota_posix_options_t po = {
        .state_dir = getenv("OTA_STATE_DIR"),
        .bind_addr = "::",
        .port = OTA_NODE_PORT,
        .slot_size = 64ull * 1024 * 1024,
    };
    uint32_t heartbeat_ms = 1000, v;
    uint32_t log_port = 0; /* 0: the OTA port + 1 */
    uint32_t arduino_port = OTA_NODE_ARDUINO_PORT;
    const char *compiled_ar_auth = OTA_NODE_ARDUINO_AUTH;
    bool arduino_md5 = compiled_ar_auth != NULL && strcmp(compiled_ar_auth, "md5") == 0;
    static char password_buf[256], ar_password[256];
    bool no_password = false;
    bool log_server = OTA_NODE_LOGGER;
    const char *crash_file = NULL;
    bool mdns_on = OTA_NODE_MDNS;
    const char *mdns_name = OTA_NODE_NAME;
    /* the pulled image knows its release: 'ota publish --version V' wrote V there */
    static char desc_version[OTA_APP_DESC_VERSION_LEN];
    const char *fw_version = node_desc_version(&demo_app_desc, desc_version,
                                               DEMO_FIRMWARE_VERSION);
    const char *update_url = OTA_NODE_UPDATE_URL;
    uint32_t update_interval_ms = OTA_NODE_UPDATE_INTERVAL_MS, update_retry_ms = 5000;
    const char *update_ca_file = NULL;

    bool verifier_set = false;
    static uint8_t key_digest[3][32];
    static ota_sig_trusted_t trusted[3];
    size_t n_keys = 0;
    enum { O_PORT = 256, O_BIND, O_VERIFIER, O_PASSWORD, O_PW_FILE, O_NO_PASSWORD, O_MD5, O_BO_FREE,
           O_BO_BASE, O_BO_MAX, O_VERSION, O_NO_COMP,
           O_HS_TO, O_DATA_TO, O_SLOT, O_STATE, O_NO_SAFE, O_SAFE_N, O_GOOD, O_SAFE_TO, O_HB,
           O_CRASH, O_HELP, O_LOG_PORT, O_NO_LOG, O_AR_PORT, O_AR_AUTH, O_AR_DATA, O_AR_PW_FILE,
           O_MDNS_NAME, O_NO_MDNS, O_FW_VERSION, O_GUESSES, O_VERSION_FLAG, O_VKEY, O_UPD_URL, O_UPD_IV, O_UPD_RETRY, O_UPD_CA };
    static const struct option opts[] = {
        {"port", required_argument, NULL, O_PORT},
        {"bind", required_argument, NULL, O_BIND},
        {"verifier", required_argument, NULL, O_VERIFIER},
        {"password", required_argument, NULL, O_PASSWORD},
        {"password-file", required_argument, NULL, O_PW_FILE},
        {"auth-backoff-free", required_argument, NULL, O_BO_FREE},
        {"auth-backoff-base-ms", required_argument, NULL, O_BO_BASE},
        {"auth-backoff-max-ms", required_argument, NULL, O_BO_MAX},
        {"auth-guesses-per-min", required_argument, NULL, O_GUESSES},
        {"no-password", no_argument, NULL, O_NO_PASSWORD},
        {"allow-md5", no_argument, NULL, O_MD5},
        {"protocol-version", required_argument, NULL, O_VERSION},
        {"no-compression", no_argument, NULL, O_NO_COMP},
        {"handshake-timeout-ms", required_argument, NULL, O_HS_TO},
        {"data-timeout-ms", required_argument, NULL, O_DATA_TO},
        {"slot-size", required_argument, NULL, O_SLOT},
        {"state", required_argument, NULL, O_STATE},
        {"no-safe-mode", no_argument, NULL, O_NO_SAFE},
        {"safe-mode-attempts", required_argument, NULL, O_SAFE_N},
        {"boot-is-good-after-ms", required_argument, NULL, O_GOOD},
        {"safe-mode-reboot-timeout-ms", required_argument, NULL, O_SAFE_TO},
        {"heartbeat-ms", required_argument, NULL, O_HB},
        {"crash-if-exists", required_argument, NULL, O_CRASH},
        {"help", no_argument, NULL, O_HELP},
        {"version", no_argument, NULL, O_VERSION_FLAG},
        {"log-port", required_argument, NULL, O_LOG_PORT},
        {"no-log-server", no_argument, NULL, O_NO_LOG},
        {"arduino-port", required_argument, NULL, O_AR_PORT},
        {"arduino-auth", required_argument, NULL, O_AR_AUTH},
        {"arduino-password-file", required_argument, NULL, O_AR_PW_FILE},
        {"arduino-data-slot", no_argument, NULL, O_AR_DATA},
        {"mdns-name", required_argument, NULL, O_MDNS_NAME},
        {"no-mdns", no_argument, NULL, O_NO_MDNS},
        {"firmware-version", required_argument, NULL, O_FW_VERSION},
        {"verification-key", required_argument, NULL, O_VKEY},
        {"update-url", required_argument, NULL, O_UPD_URL},
        {"update-interval-ms", required_argument, NULL, O_UPD_IV},
        {"update-retry-ms", required_argument, NULL, O_UPD_RETRY},
        {"update-ca-file", required_argument, NULL, O_UPD_CA},
        {NULL, 0, NULL, 0},
    };
    int c;
    while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (c) {
        case O_PORT:
            if (!node_parse_u32(optarg, 65535, &v) || v == 0)
                return usage_error("--port takes a number from 1 to 65535", optarg);
            po.port = (uint16_t)v;
            break;
        case O_BIND: po.bind_addr = optarg; break;
        case O_VERIFIER:
            cfg.verifier = optarg;
            verifier_set = true;
            break;
        case O_PASSWORD:
            if (optarg[0] == '\0')
                return usage_error("--password is empty (use --no-password)", NULL);
            cfg.password = optarg;
            break;
        case O_PW_FILE: {
            const char *why = node_read_password_file(optarg, password_buf, sizeof password_buf);
            if (why != NULL)
                return usage_error(why, optarg);
            cfg.password = password_buf;
            break;
        }
        case O_AR_PW_FILE: {
            const char *why = node_read_password_file(optarg, ar_password, sizeof ar_password);
            if (why != NULL)
                return usage_error(why, optarg);
            break;
        }
        case O_NO_PASSWORD:
            cfg.password = NULL;
            cfg.verifier = NULL;
            no_password = true;
            break;
        case O_BO_FREE:
            if (!node_parse_u32(optarg, 255, &v))
                return usage_error("--auth-backoff-free takes 0 to 255", optarg);
            cfg.auth_backoff_free = (uint8_t)v;
            break;
        case O_BO_BASE:
        case O_BO_MAX:
            if (!node_parse_u32(optarg, 3600000, &v))
                return usage_error("back-off times take milliseconds", optarg);
            *(c == O_BO_BASE ? &cfg.auth_backoff_base_ms : &cfg.auth_backoff_max_ms) = v;
            break;
        case O_GUESSES:
            if (!node_parse_u32(optarg, 100000, &v))
                return usage_error("--auth-guesses-per-min takes 0 to 100000", optarg);
            cfg.auth_guesses_per_min = v;
            break;
        case O_MD5: cfg.allow_md5 = true; break;
        case O_VERSION:
            if (!node_parse_u32(optarg, 2, &v) || v < 1)
                return usage_error("--protocol-version takes 1 or 2", optarg);
            cfg.version = (uint8_t)v;
            break;
        case O_NO_COMP: cfg.compression = false; break;
        case O_HS_TO:
        case O_DATA_TO:
            if (!node_parse_u32(optarg, 3600000, &v) || v < 100)
                return usage_error("timeouts take milliseconds from 100 to 3600000", optarg);
            *(c == O_HS_TO ? &cfg.handshake_timeout_ms : &cfg.data_timeout_ms) = v;
            break;
        case O_SLOT: {
            char *end;
            unsigned long long s = strtoull(optarg, &end, 10);
            if (*optarg == '\0' || *end != '\0' || s < 1024 || s > 0xFFFFFFFFull)
                return usage_error("--slot-size takes bytes from 1024 to 4294967295", optarg);
            po.slot_size = s;
            break;
        }
        case O_STATE: po.state_dir = optarg; break;
        case O_NO_SAFE: smc.enabled = false; break;
        case O_SAFE_N:
            if (!node_parse_u32(optarg, 1000, &v) || v < 1)
                return usage_error("--safe-mode-attempts takes 1 to 1000", optarg);
            smc.num_attempts = v;
            break;
        case O_GOOD:
        case O_SAFE_TO:
            if (!node_parse_u32(optarg, 86400000, &v))
                return usage_error("takes milliseconds", optarg);
            *(c == O_GOOD ? &smc.boot_is_good_after_ms : &smc.reboot_timeout_ms) = v;
            break;
        case O_HB:
            if (!node_parse_u32(optarg, 3600000, &v) || v < 10)
                return usage_error("--heartbeat-ms takes 10 to 3600000", optarg);
            heartbeat_ms = v;
            break;
        case O_CRASH: crash_file = optarg; break;
        case O_LOG_PORT:
            if (!node_parse_u32(optarg, 65535, &log_port) || log_port == 0)
                return usage_error("--log-port takes a number from 1 to 65535", optarg);
            log_server = true;
            break;
        case O_NO_LOG: log_server = false; break;
        case O_AR_PORT:
            if (!node_parse_u32(optarg, 65535, &arduino_port) || arduino_port == 0)
                return usage_error("--arduino-port takes a number from 1 to 65535", optarg);
            break;
        case O_AR_DATA: po.data_slot = true; break;
        case O_AR_AUTH:
            if (strcmp(optarg, "sha256") != 0 && strcmp(optarg, "md5") != 0)
                return usage_error("--arduino-auth takes sha256 or md5", optarg);
            arduino_md5 = strcmp(optarg, "md5") == 0;
            break;
        case O_MDNS_NAME:
            if (!ota_mdns_name_valid(optarg))
                return usage_error("--mdns-name takes 1 to 63 letters, digits and inner "
                                   "hyphens (a host name label, without .local)", optarg);
            mdns_name = optarg;
            mdns_on = true;
            break;
        case O_NO_MDNS: mdns_on = false; break;
        case O_VKEY: {
            char why[300];
            if (n_keys == 3)
                return usage_error("at most 3 --verification-key (a signature sector holds 3 "
                                   "blocks)", NULL);
            char msg[400];
            if (ota_posix_key_digest_from_pem(optarg, key_digest[n_keys], why, sizeof why) != 0) {
                snprintf(msg, sizeof msg, "--verification-key %s is not a PEM key this node can "
                         "use: %s", optarg, why);
                return usage_error(msg, NULL);
            }
            trusted[n_keys].digest = key_digest[n_keys];
            n_keys++;
            break;
        }
        case O_UPD_URL:
            if (strncmp(optarg, "http://", 7) != 0 && strncmp(optarg, "https://", 8) != 0)
                return usage_error("--update-url takes an http:// or https:// URL", optarg);
            update_url = optarg;
            break;
        case O_UPD_IV:
        case O_UPD_RETRY:
            if (!node_parse_u32(optarg, 0x7FFFFFFFul, &v) || v < 10)
                return usage_error(c == O_UPD_IV ? "--update-interval-ms takes 10 to 2147483647"
                                                 : "--update-retry-ms takes 10 to 2147483647",
                                   optarg);
            *(c == O_UPD_IV ? &update_interval_ms : &update_retry_ms) = v;
            break;
        case O_UPD_CA:
            if (access(optarg, R_OK) != 0)
                return usage_error("--update-ca-file cannot be read", optarg);
            update_ca_file = optarg;
            break;
        case O_FW_VERSION:
            if (optarg[0] == '\0' || strlen(optarg) > 40)
                return usage_error("--firmware-version takes 1 to 40 characters", optarg);
            fw_version = optarg;
            break;
        case O_HELP: /* the defaults: node.yaml's, else those of ota/safe_mode.h */
            printf(usage_text, (unsigned)OTA_NODE_NUM_ATTEMPTS,
                   (unsigned)OTA_NODE_BOOT_IS_GOOD_AFTER_MS, (unsigned)OTA_NODE_REBOOT_TIMEOUT_MS);
            return 0;
        case O_VERSION_FLAG: printf("demo-node %s (firmware %s)\n", OTA_VERSION, fw_version); return 0;
        default: return usage_error("unknown option", NULL);
        }
    }
    if (optind != argc)
        return usage_error("unexpected argument", argv[optind]);
#if defined(OTA_NODE_N_TRUSTED_KEYS)
    if (n_keys == 0) { /* node.yaml's signed_ota_verification, compiled in by codegen */
        static const uint8_t compiled[][32] = OTA_NODE_TRUSTED_KEYS;
        size_t n = OTA_NODE_N_TRUSTED_KEYS;
        for (size_t i = 0; i < n && i < 3; i++) {
            memcpy(key_digest[i], compiled[i], 32);
            trusted[i].digest = key_digest[i];
            n_keys++;
        }
    }
#endif
    cfg.trusted_keys = trusted;
    cfg.n_trusted_keys = n_keys;
    if (cfg.password != NULL && !verifier_set)
        cfg.verifier = NULL; /* a run-time password replaces the compiled-in one */
    /* ArduinoOTA: the node keeps only the hash its variant needs */
    static char ar_hash[65];
    if (arduino_port != 0) {
        cfg.arduino_enabled = true;
        po.arduino_port = (uint16_t)arduino_port;
        /* the compiled-in hash serves only the variant it was made for */
        const char *compiled = compiled_ar_auth != NULL &&
                                       strcmp(compiled_ar_auth, arduino_md5 ? "md5" : "sha256") == 0
                                   ? OTA_NODE_ARDUINO_HASH
                                   : NULL;
        if (no_password) {
            cfg.arduino_auth = OTA_ARDUINO_AUTH_NONE;
        } else if (cfg.password != NULL || ar_password[0] != '\0') { /* a run-time password */
            const char *pw = ar_password[0] != '\0' ? ar_password : cfg.password;
            node_arduino_hash(pw, arduino_md5, ar_hash);
            memset(ar_password, 0, sizeof ar_password);
            cfg.arduino_hash = ar_hash;
            cfg.arduino_auth = arduino_md5 ? OTA_ARDUINO_AUTH_MD5 : OTA_ARDUINO_AUTH_SHA256;
        } else if (compiled != NULL && !verifier_set) {
            cfg.arduino_hash = compiled;
            cfg.arduino_auth = arduino_md5 ? OTA_ARDUINO_AUTH_MD5 : OTA_ARDUINO_AUTH_SHA256;
        } else {
            return usage_error(verifier_set
                                   ? "ArduinoOTA needs the password's hash: with --verifier, "
                                     "also pass --arduino-password-file or --no-password"
                                   : "ArduinoOTA needs the password's hash and this firmware "
                                     "holds none for that variant (node.yaml sets no matching "
                                     "arduino_auth): pass --arduino-password-file FILE "
                                     "or --no-password", NULL);
        }
    }
    if (cfg.allow_md5 && cfg.password == NULL)
        return usage_error("--allow-md5 needs --password (MD5 works only with a plain "
                           "password)", NULL);

    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);

#if PULL_ON
    po.tls_ca_file = update_ca_file;
#else
    if (update_url != NULL) {
        fprintf(stderr, "demo-node: this build has no pull updates (OTA_CFG_ENABLE_PULL, "
                        "OTA_CFG_ENABLE_HTTP)\n");
        return 2;
    }
    (void)update_interval_ms;
    (void)update_retry_ms;
    (void)update_ca_file;
#endif
    /* 1. network + OTA port (the listener opens here), then the safe-mode check */
    static ota_posix_t posix;
    char err[512];
    if (ota_posix_init(&posix, &po, err, sizeof err) != 0) {
        ota_posix_logf(NULL, OTA_LOG_ERROR, "ota", "%s", err);
        return 1;
    }
    uint32_t now = ota_posix_now_ms();
    static ota_safe_mode_t sm;
    bool safe = false;
    ota_safe_mode_setup(&sm, &posix.ports.boot, &posix.ports.log, &smc, now, &safe);
    log_image(&posix, posix.active);
    if (log_server) {
        char hello[OTA_LOG_HELLO_MAX];
        ota_log_hello_format(hello, sizeof hello, OTA_NODE_NAME, posix.active, safe);
        uint32_t lp32 = log_port ? log_port : OTA_LOG_DEFAULT_PORT(po.port);
        uint16_t lp = (uint16_t)lp32;
        /* viewers prove the OTA password: its verifier, or one made at start-up from
         * a run-time password (one PBKDF2 with the minimum iterations) */
        char log_verifier[OTA_VERIFIER_TEXT_MAX] = "";
        if (cfg.verifier == NULL && cfg.password != NULL && cfg.password[0] != '\0') {
            ota_verifier_t lv = {.iterations = OTA_SALTED_MIN_ITERATIONS};
            uint8_t sp[OTA_SALTED_KEY_LEN];
            if (ota_posix_random(NULL, lv.salt, sizeof lv.salt) == 0 &&
                ota_posix_pbkdf2_sha256(cfg.password, strlen(cfg.password), lv.salt, sizeof lv.salt,
                                        lv.iterations, sp, sizeof sp) == 0 &&
                ota_salted_keys(&ota_posix_crypto, sp, NULL, lv.stored_key, lv.server_key) == 0)
                ota_verifier_format(&lv, log_verifier, sizeof log_verifier);
            memset(sp, 0, sizeof sp);
            memset(&lv, 0, sizeof lv);
        }
        if (ota_posix_log_listen(&posix, po.bind_addr, lp, hello,
                                 cfg.verifier ? cfg.verifier : log_verifier, err,
                                 sizeof err) == 0)
            ota_posix_logf(&posix, OTA_LOG_INFO, "logger", "log viewers: port %u%s", (unsigned)lp,
                           posix.log_auth ? " (they prove the OTA password)" : "");
        else
            ota_posix_logf(&posix, OTA_LOG_WARN, "logger", "no log viewers: %s", err);
    }

#if PULL_ON
    if (update_url != NULL) { /* ota pull-now reaches the pull client */
        cfg.on_pull_now = on_pull_now;
        cfg.on_pull_now_arg = &pull;
    }
#endif
    static ota_server_t OTA_NODE_OTA_ID; /* the component instance named by id */
    ota_server_t *const ota = &OTA_NODE_OTA_ID;
    ota_server_init(ota);
    if (ota_server_setup(ota, &posix.ports.server, &cfg) != OTA_OK) {
        ota_posix_logf(&posix, OTA_LOG_ERROR, "ota", "invalid OTA configuration%s",
                       verifier_set ? ": --verifier is not a verifier printed by 'ota "
                                      "hash-password'"
                                    : "");
        ota_posix_free(&posix);
        return 1;
    }
    char auth[96];
    snprintf(auth, sizeof auth, "%s%s%s%s", cfg.verifier ? "salted" : "",
             cfg.verifier && cfg.password ? " + " : "",
             cfg.password ? "legacy SHA-256" : "", cfg.password && cfg.allow_md5 ? "/MD5" : "");
    ota_posix_logf(&posix, OTA_LOG_INFO, "ota", "listening on %s (version %u, auth: %s)",
                   posix.bound, (unsigned)cfg.version, auth[0] ? auth : "none, no password");
    ota_boot_record_t rec = {0};
    posix.ports.boot.load(posix.ports.boot.ctx, &rec);
    ota_posix_logf(&posix, OTA_LOG_INFO, "ota", "image descriptor: version %s, secure_version %u "
                   "(the node takes secure_version %u and up)", demo_app_desc.version,
                   (unsigned)node_desc_secure_version(&demo_app_desc),
                   (unsigned)rec.min_secure_version);
    for (size_t i = 0; i < n_keys; i++) {
        char hex[65];
        for (int k = 0; k < 32; k++)
            snprintf(hex + 2 * k, 3, "%02x", key_digest[i][k]);
        ota_posix_logf(&posix, OTA_LOG_INFO, "ota", "signed images only: trusted key %u of %u, "
                       "digest %s", (unsigned)(i + 1), (unsigned)n_keys, hex);
    }
    if (cfg.arduino_enabled)
        ota_posix_logf(&posix, OTA_LOG_INFO, "ota", "ArduinoOTA on UDP port %u (%s)",
                       (unsigned)po.arduino_port,
                       cfg.arduino_auth == OTA_ARDUINO_AUTH_NONE  ? "no password"
                       : cfg.arduino_auth == OTA_ARDUINO_AUTH_MD5 ? "MD5 variant"
                                                                  : "SHA-256 variant");

    /* mDNS: <name>.local and the OTA services; network-level, so on in safe mode too */
    static ota_mdns_t mdns;
    static ota_mdns_config_t mc;
    static ota_discovery_txt_t ota_txt, ar_txt; /* the services point into them */
    bool mdns_running = false;
    if (mdns_on && !ota_mdns_name_valid(mdns_name)) { /* the YAML's name, e.g. with a '_' */
        ota_posix_logf(&posix, OTA_LOG_WARN, "mdns",
                       "off: the node name '%s' is not a host name "
                       "label (1-63 letters, digits, inner hyphens): pass --mdns-name",
                       mdns_name);
        mdns_on = false;
    }
    if (mdns_on) {
        char why[300];
        int rc = ota_posix_mdns_open(&posix, po.bind_addr, why, sizeof why);
        if (rc <= 0) {
            ota_posix_logf(&posix, rc < 0 ? OTA_LOG_WARN : OTA_LOG_INFO, "mdns", "%s", why);
        } else {
            static char txt_version[56]; /* the room the TXT record has for it */
            snprintf(txt_version, sizeof txt_version, "%s", fw_version);
            ota_discovery_ota_info_t info = {
                .name = mdns_name, .version = txt_version, .platform = OTA_TXT_PLATFORM_HOST,
                .protocol = cfg.version,
                .auth = (cfg.verifier ? OTA_DISCOVERY_AUTH_SALTED : 0u) |
                        (cfg.password ? OTA_DISCOVERY_AUTH_SHA256 : 0u) |
                        (cfg.password && cfg.allow_md5 ? OTA_DISCOVERY_AUTH_MD5 : 0u)};
            bool txt_ok = ota_discovery_ota_txt(&ota_txt, &info) == 0;
            ota_mdns_config_default(&mc);
            mc.name = mdns_name;
            mc.services[0] =
                (ota_mdns_service_t){OTA_DISCOVERY_SERVICE_OTA, po.port, ota_txt.strings};
            mc.n_services = 1;
            mc.ipv4_only = posix.bound[0] != '['; /* the listener takes IPv4 only */
            if (cfg.arduino_enabled) { /* what the Arduino IDE and PlatformIO look for */
                txt_ok = txt_ok && ota_discovery_arduino_txt(
                                       &ar_txt, "linux",
                                       cfg.arduino_auth != OTA_ARDUINO_AUTH_NONE) == 0;
                mc.services[1] = (ota_mdns_service_t){OTA_DISCOVERY_SERVICE_ARDUINO,
                                                      po.arduino_port, ar_txt.strings};
                mc.n_services = 2;
            }
            if (txt_ok && ota_mdns_setup(&mdns, &posix.ports.mdns, &posix.ports.crypto,
                                         &posix.ports.log, &mc, ota_posix_now_ms()) == OTA_OK) {
                mdns_running = true;
                ota_posix_logf(&posix, OTA_LOG_INFO, "mdns",
                               "responder on for %s.local (" OTA_DISCOVERY_SERVICE_OTA "%s)",
                               mdns_name,
                               cfg.arduino_enabled ? ", " OTA_DISCOVERY_SERVICE_ARDUINO : "");
            } else {
                ota_posix_logf(&posix, OTA_LOG_WARN, "mdns",
                               "invalid mDNS configuration: responder off");
                ota_posix_mdns_close(&posix);
            }
        }
    }

#if PULL_ON
    /* pull updates: network-level like OTA, so on in safe mode too (a boot-looping
     * fleet then fetches the fixed release by itself); checks start once the boot is
     * confirmed, or at once in safe mode, where no confirmation comes */
    bool pull_on = false;
    if (update_url != NULL) {
        static char ua[128];
        snprintf(ua, sizeof ua, "ota-pull/%s (%s)", OTA_VERSION, mdns_name);
        ota_pull_config_t pc;
        ota_pull_config_default(&pc);
        pc.manifest_url = update_url;
        pc.node_name = mdns_name;
        pc.version = fw_version;
        pc.chip_family = OTA_MANIFEST_FAMILY_POSIX;
        pc.interval_ms = update_interval_ms;
        pc.retry_min_ms = update_retry_ms;
        pc.user_agent = ua;
        pc.trusted = trusted;
        pc.n_trusted = n_keys;
        const ota_pull_ports_t pp = {.tcp = &posix.ports.tcp,
                                     .tls = &posix.ports.tls,
                                     .crypto = &posix.ports.crypto,
                                     .boot = &posix.ports.boot,
                                     .log = &posix.ports.log};
        int rc = ota_pull_setup(&pull, &pp, &ota->update, &pc, ota_posix_now_ms());
        if (rc != OTA_OK) {
            ota_posix_logf(&posix, OTA_LOG_ERROR, "pull", "pull updates off: %s",
                           ota_strerror(rc));
        } else {
            pull_on = true;
            ota_posix_logf(&posix, OTA_LOG_INFO, "pull",
                           "pull updates from %s every %u s (chip family %s, version %s)%s",
                           update_url, (unsigned)(update_interval_ms / 1000u),
                           OTA_MANIFEST_FAMILY_POSIX, fw_version,
                           n_keys ? "; signed manifests only" : "");
        }
    }
#endif

    /* 2. the other components: not in safe mode */
    bool demo_on = !safe;
    if (safe) {
        ota_posix_logf(&posix, OTA_LOG_WARN, "demo", "safe mode: the demo component stays off");
    } else if (crash_file != NULL && access(crash_file, F_OK) == 0) {
        ota_posix_logf(&posix, OTA_LOG_ERROR, "demo", "%s exists: crashing during set-up",
                       crash_file);
        fflush(stdout);
        abort();
    }

    uint64_t loops = 0, tick = 0;
    uint32_t next_beat = now + heartbeat_ms;
    while (!stop) {
        now = ota_posix_now_ms();
        ota_server_poll(ota, now);
        ota_safe_mode_poll(&sm, now, ota_server_update_in_progress(ota));
        ota_posix_log_poll(&posix);
        if (mdns_running)
            ota_mdns_poll(&mdns, now);
#if PULL_ON
        if (pull_on) {
            if (safe || ota_safe_mode_confirmed(&sm))
                ota_pull_enable(&pull, now);
            ota_pull_poll(&pull, now);
        }
#endif
        if (ota_posix_reboot_requested(&posix))
            break;
        if (demo_on && (int32_t)(now - next_beat) >= 0) {
            tick++;
            ota_posix_logf(&posix, OTA_LOG_INFO, "demo", "heartbeat tick=%llu loops=%llu",
                           (unsigned long long)tick, (unsigned long long)loops);
            next_beat += heartbeat_ms;
            if ((int32_t)(now - next_beat) >= 0)
                next_beat = now + heartbeat_ms;
        }
        loops++;
        int wait = (int)(demo_on ? (int32_t)(next_beat - now) : 1000);
        if (wait < 0)
            wait = 0;
        if (ota_server_active(ota) && wait > 5)
            wait = 5;
        if (mdns_running && (uint32_t)wait > ota_mdns_next_ms(&mdns, now))
            wait = (int)ota_mdns_next_ms(&mdns, now);
#if PULL_ON
        if (pull_on && ota_pull_active(&pull) && wait > 2)
            wait = 2; /* the port's wait does not watch the download's socket */
        else if (pull_on && (uint32_t)wait > ota_pull_next_ms(&pull, now))
            wait = (int)ota_pull_next_ms(&pull, now);
        if (pull_on && !ota_safe_mode_confirmed(&sm) && !safe && wait > 50)
            wait = 50; /* the confirmation starts the checks */
#endif
        ota_posix_wait(&posix, wait);
    }
    bool reboot = ota_posix_reboot_requested(&posix);
    if (mdns_running)
        ota_mdns_free(&mdns, ota_posix_now_ms()); /* goodbye: browsers drop us at once */
    ota_server_free(ota);
    ota_posix_free(&posix);
    if (reboot) {
        ota_posix_logf(&posix, OTA_LOG_INFO, "demo", "rebooting into the new image");
        return OTA_POSIX_EXIT_REBOOT;
    }
    ota_posix_logf(&posix, OTA_LOG_INFO, "demo", "stopped");
    return 0;
}
