/*
 * main.c - the `ota` host tool: command dispatch, `ota upload` (options, password
 * sources, retries, the final report), `ota discover` (the nodes that advertise
 * themselves over mDNS) and `ota hash-password` (the salted verifier a node stores
 * instead of its password).
 */
#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <netdb.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#include <mbedtls/md5.h>
#include <mbedtls/sha256.h>

#include "arduino_client.h"
#include "client.h"
#include "config.h"
#include "follow.h"
#include "known_nodes.h"
#include "mdns_query.h"
#include "messages.h"
#include "ota/auth.h"
#include "ota/log_proto.h"
#include "ota/protocol.h"
#include "ota/util.h"
#include "ota_posix.h"
#include "progress.h"

#ifndef OTA_VERSION
#define OTA_VERSION "unknown"
#endif
#define OTA_TOOL_VERSION OTA_VERSION
#define DEFAULT_PORT OTA_PORT_ESP32
#define DEFAULT_TIMEOUT_S OTA_UPLOADER_TIMEOUT_S
#define DEFAULT_ITERATIONS 10000u
#define MDNS_RESOLVE_TIMEOUT_S 2.0 /* our own mDNS query for a ".local" name */
#define DISCOVER_TIMEOUT_S 3.0

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
    "\n"
    "  ota COMMAND --help   options of one command\n"
    "  ota --version        the tool's version\n"
    "  -s KEY VALUE         (any command, repeatable) a substitution of the node's YAML,\n"
    "                       overriding its substitutions: block, as ESPHome's -s does\n"
    "\n"
    "exit codes: 0 success, 1 internal error, 2 usage, 3 network (does not resolve,\n"
    "refused, timeout, connection lost), 4 authentication, 5 the device reported an\n"
    "error (including busy), 6 the firmware file is missing, unreadable or empty,\n"
    "7 the node file (YAML) is invalid or has no ota: block.\n";

static const char upload_usage[] =
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

static const char hash_usage[] =
    "usage: ota hash-password [--iterations N]\n"
    "\n"
    "Read a password (from the terminal without echo, or the first line of standard\n"
    "input when it is not a terminal) and print its salted verifier:\n"
    "  SCRAM-SHA-256$<iterations>:<salt>$<StoredKey>:<ServerKey>\n"
    "Configure the node with this verifier instead of the password: the firmware then\n"
    "holds nothing that lets anyone authenticate, and the uploader checks that the\n"
    "node knows it. A fresh random salt is used on every run.\n"
    "\n"
    "  --iterations N   PBKDF2 iterations, at least 4096 (default 10000); more makes a\n"
    "                   stolen verifier harder to brute-force and each upload slower\n"
    "  -h, --help       this text\n";

static int usage_error(const char *cmd, const char *fmt, const char *arg)
{
    fprintf(stderr, "ota%s%s: ", cmd ? " " : "", cmd ? cmd : "");
    fprintf(stderr, fmt, arg ? arg : "");
    fprintf(stderr, "\nRun 'ota%s%s --help' for usage.\n", cmd ? " " : "", cmd ? cmd : "");
    return OTA_EXIT_USAGE;
}

static bool parse_uint(const char *s, unsigned long min, unsigned long max, unsigned long *out)
{
    char *end;
    errno = 0;
    unsigned long v = strtoul(s, &end, 10);
    if (*s == '\0' || *s == '-' || *end != '\0' || errno != 0 || v < min || v > max)
        return false;
    *out = v;
    return true;
}

static char *read_first_line(FILE *f)
{
    char *line = NULL;
    size_t cap = 0;
    ssize_t n = getline(&line, &cap, f);
    if (n < 0) {
        free(line);
        return NULL;
    }
    while (n > 0 && (line[n - 1] == '\n' || line[n - 1] == '\r'))
        line[--n] = '\0';
    return line;
}

static uint8_t *read_file(const char *path, size_t *len, int *err)
{
    FILE *f = fopen(path, "rb");
    if (f == NULL) {
        *err = errno;
        return NULL;
    }
    struct stat st;
    if (fstat(fileno(f), &st) != 0 || !S_ISREG(st.st_mode)) {
        *err = S_ISDIR(st.st_mode) ? EISDIR : EINVAL;
        fclose(f);
        return NULL;
    }
    uint8_t *buf = malloc(st.st_size > 0 ? (size_t)st.st_size : 1);
    size_t n = buf ? fread(buf, 1, (size_t)st.st_size, f) : 0;
    int bad = ferror(f) || n != (size_t)st.st_size;
    fclose(f);
    if (buf == NULL || bad) {
        *err = buf ? EIO : ENOMEM;
        free(buf);
        return NULL;
    }
    *len = n;
    return buf;
}

/* ------------------------------------------------------------ host names */

/* How a node's host name was looked up before connecting: the system resolver
 * first, and for a ".local" name it cannot resolve (a machine without nss-mdns or
 * Avahi) our own mDNS query (mdns_query.h). Other names are left to the client. */
typedef struct host_lookup {
    bool by_mdns;                       /* addr holds the answer: connect there */
    bool missed;                        /* nothing resolved the .local name */
    bool no_query;                      /* ... and no mDNS query could be sent */
    char addr[OTA_MDNSQ_ADDR_TEXT_MAX]; /* the preferred mDNS answer, as text */
    char detail[160];                   /* the system resolver's words on a miss */
} host_lookup_t;

/* The host to connect to for name: name itself, or the address our mDNS query got
 * (saying so on stderr unless quiet). NULL when a .local name resolves neither way:
 * h says why, print_lookup_miss() prints it. A later call after a success by mDNS
 * returns the same address without asking again. */
static const char *lookup_host(host_lookup_t *h, const char *name, bool quiet)
{
    if (h->by_mdns)
        return h->addr;
    h->missed = h->no_query = false;
    if (!ota_mdns_is_local_name(name))
        return name;
    struct addrinfo hints, *ai = NULL;
    memset(&hints, 0, sizeof hints);
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    int g = getaddrinfo(name, NULL, &hints, &ai);
    if (g == 0) {
        freeaddrinfo(ai);
        return name;
    }
    ota_mdns_addr_t addrs[OTA_MDNSQ_MAX_ADDRS];
    int n = ota_mdns_resolve(name, MDNS_RESOLVE_TIMEOUT_S, addrs, OTA_MDNSQ_MAX_ADDRS);
    if (n <= 0) {
        h->missed = true;
        h->no_query = n < 0;
        snprintf(h->detail, sizeof h->detail, "%s", gai_strerror(g));
        return NULL;
    }
    /* addrs[0] is the preferred one: IPv4 when there is one */
    ota_mdns_addr_text(&addrs[0], h->addr, sizeof h->addr);
    h->by_mdns = true;
    if (!quiet) {
        char all[8 * OTA_MDNSQ_ADDR_TEXT_MAX] = "";
        for (int i = 1; i < n; i++) {
            char a[OTA_MDNSQ_ADDR_TEXT_MAX];
            ota_mdns_addr_text(&addrs[i], a, sizeof a);
            size_t l = strlen(all);
            snprintf(all + l, sizeof all - l, "%s%s", l ? ", " : " (also ", a);
        }
        if (all[0])
            strncat(all, ")", sizeof all - strlen(all) - 1);
        fprintf(stderr, "resolved %s by mDNS: %s%s\n", name, h->addr, all);
    }
    return h->addr;
}

static void print_lookup_miss(FILE *out, const host_lookup_t *h, const char *name)
{
    ota_print_mdns_miss(out, name, h->detail, MDNS_RESOLVE_TIMEOUT_S, h->no_query);
}

/* The result of an upload that never started because the name did not resolve. */
static void lookup_failure(const host_lookup_t *h, ota_client_result_t *res)
{
    memset(res, 0, sizeof *res);
    res->failure = OTA_FAIL_RESOLVE;
    res->phase = OTA_PHASE_RESOLVE;
    snprintf(res->detail, sizeof res->detail, "%s", h->detail);
}

/* "error:"/"hint:" lines of a failed upload to name (o->host may be its address). */
static void report_failure(FILE *out, const ota_client_options_t *o,
                           const ota_client_result_t *res, const host_lookup_t *h,
                           const char *name)
{
    if (h->missed)
        print_lookup_miss(out, h, name);
    else
        ota_print_failure(out, o, res);
}

/* ------------------------------------------------------------ upload */

/* ------------------------------------------------------------ many nodes */

#define MAX_DEVICES 1024

typedef struct fleet_job {
    char host[256];
    uint16_t port;
    int rc;
    double secs;
    ota_client_result_t res;
    host_lookup_t lookup;
    ota_client_options_t used; /* the options of its upload (known_nodes record) */
} fleet_job_t;

typedef struct fleet {
    fleet_job_t *jobs;
    int count;
    int next, done;
    pthread_mutex_t lock;
    ota_client_options_t base;
    const uint8_t *image;
    size_t len;
    bool quiet;
} fleet_t;

/* "host", "host:port", "[v6]:port", "v6" -> host and port (default_port if absent). */
static bool split_device(const char *spec, uint16_t default_port, char *host, size_t cap,
                         uint16_t *port)
{
    const char *colon = strrchr(spec, ':');
    const char *end = spec + strlen(spec);
    *port = default_port;
    if (spec[0] == '[') {
        const char *close = strchr(spec, ']');
        if (close == NULL)
            return false;
        if (close[1] == ':')
            colon = close + 1;
        else if (close[1] != '\0')
            return false;
        else
            colon = NULL;
        end = close;
        spec++;
    } else if (colon != NULL && strchr(spec, ':') != colon) {
        colon = NULL; /* a bare IPv6 address */
    }
    if (colon != NULL) {
        unsigned long v;
        if (!parse_uint(colon + 1, 1, 65535, &v))
            return false;
        *port = (uint16_t)v;
        if (end > colon)
            end = colon;
    }
    size_t n = (size_t)(end - spec);
    if (n == 0 || n >= cap)
        return false;
    memcpy(host, spec, n);
    host[n] = '\0';
    return true;
}

static void *fleet_worker(void *arg)
{
    fleet_t *f = arg;
    for (;;) {
        pthread_mutex_lock(&f->lock);
        int i = f->next < f->count ? f->next++ : -1;
        pthread_mutex_unlock(&f->lock);
        if (i < 0)
            return NULL;
        fleet_job_t *j = &f->jobs[i];
        ota_client_options_t o = f->base;
        o.port = j->port;
        double t0 = ota_now_s();
        memset(&j->lookup, 0, sizeof j->lookup);
        o.host = lookup_host(&j->lookup, j->host, f->quiet);
        if (o.host != NULL) {
            ota_known_prepare(&o, j->host, j->port, stderr);
            j->rc = ota_client_upload(&o, f->image, f->len, NULL, NULL, &j->res);
            ota_print_auth_warning(stderr, &o, &j->res);
            if (j->rc == OTA_EXIT_OK)
                ota_known_commit(&o, &j->res, f->quiet, stderr);
            j->used = o;
        } else {
            j->used = o;
            lookup_failure(&j->lookup, &j->res);
            j->rc = OTA_EXIT_NETWORK;
        }
        j->secs = ota_now_s() - t0;
        pthread_mutex_lock(&f->lock);
        f->done++;
        if (!f->quiet)
            fprintf(stderr, "[%d/%d] %s:%u %s (%.2f s)\n", f->done, f->count, j->host,
                    (unsigned)j->port, j->rc == 0 ? "OK" : "FAILED", j->secs);
        pthread_mutex_unlock(&f->lock);
    }
}

static const char *short_failure(const ota_client_result_t *r)
{
    static __thread char buf[160];
    const char *m, *h;
    switch (r->failure) {
    case OTA_FAIL_NONE: return "OK";
    case OTA_FAIL_RESOLVE: return "host does not resolve";
    case OTA_FAIL_REFUSED: return "connection refused";
    case OTA_FAIL_UNREACHABLE: return "unreachable";
    case OTA_FAIL_TIMEOUT:
        snprintf(buf, sizeof buf, "timeout during %s", ota_phase_name(r->phase));
        return buf;
    case OTA_FAIL_CLOSED:
        snprintf(buf, sizeof buf, "connection lost during %s", ota_phase_name(r->phase));
        return buf;
    case OTA_FAIL_DEVICE:
        ota_device_code_message(r->device_code, &m, &h);
        snprintf(buf, sizeof buf, "device error 0x%02X", r->device_code);
        return buf;
    case OTA_FAIL_NEED_PASSWORD: return "password required";
    case OTA_FAIL_AUTH_METHOD: return "auth method excluded by --auth";
    case OTA_FAIL_IMPOSTOR: return "device failed to prove the password";
    case OTA_FAIL_NO_AUTH_ASKED: return "device asked for no password (impostor?)";
    case OTA_FAIL_DOWNGRADE: return "device offered weaker auth than expected";
    default: return "failed";
    }
}

static int upload_fleet(fleet_t *f, unsigned jobs)
{
    pthread_t threads[64];
    if (jobs > 64)
        jobs = 64;
    if ((int)jobs > f->count)
        jobs = (unsigned)f->count;
    pthread_mutex_init(&f->lock, NULL);
    double t0 = ota_now_s();
    unsigned started = 0;
    for (; started < jobs; started++)
        if (pthread_create(&threads[started], NULL, fleet_worker, f) != 0)
            break;
    if (started == 0)
        fleet_worker(f);
    for (unsigned i = 0; i < started; i++)
        pthread_join(threads[i], NULL);
    double total = ota_now_s() - t0;
    pthread_mutex_destroy(&f->lock);

    int ok = 0, rc = OTA_EXIT_OK;
    printf("%-40s %-8s %8s  %s\n", "NODE", "RESULT", "TIME", "DETAIL");
    for (int i = 0; i < f->count; i++) {
        fleet_job_t *j = &f->jobs[i];
        char node[300];
        snprintf(node, sizeof node, "%s:%u", j->host, (unsigned)j->port);
        printf("%-40s %-8s %7.2fs  %s\n", node, j->rc == 0 ? "OK" : "FAILED", j->secs,
               short_failure(&j->res));
        if (j->rc == 0)
            ok++;
        else if (rc == OTA_EXIT_OK)
            rc = j->rc;
    }
    printf("%d of %d nodes updated in %.2f s\n", ok, f->count, total);
    if (rc != OTA_EXIT_OK && !f->quiet)
        for (int i = 0; i < f->count; i++)
            if (f->jobs[i].rc != 0) {
                ota_client_options_t o = f->jobs[i].used;
                o.host = f->jobs[i].lookup.by_mdns ? f->jobs[i].lookup.addr : f->jobs[i].host;
                o.port = f->jobs[i].port;
                fprintf(stderr, "%s:%u: ", f->jobs[i].host, (unsigned)o.port);
                report_failure(stderr, &o, &f->jobs[i].res, &f->jobs[i].lookup,
                               f->jobs[i].host);
            }
    return rc;
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

static int add_device(const char **specs, int *n, const char *spec)
{
    if (*n >= MAX_DEVICES)
        return -1;
    specs[(*n)++] = spec;
    return 0;
}

/* The password of --password-file unless --password gave one (o->password); the
 * caller falls back to a node file and then $OTA_PASSWORD. *alloc receives what must
 * be freed. \return 0, -1. */
static int resolve_password(ota_client_options_t *o, const char *password_file, char **alloc)
{
    *alloc = NULL;
    if (o->password == NULL && password_file != NULL) {
        FILE *f = fopen(password_file, "r");
        if (f == NULL || (*alloc = read_first_line(f)) == NULL) {
            fprintf(stderr, "error: cannot read the password from %s: %s\n", password_file,
                    f ? "the file is empty" : strerror(errno));
            if (f)
                fclose(f);
            return -1;
        }
        fclose(f);
        o->password = *alloc;
    }
    if (o->password != NULL && o->password[0] == '\0')
        o->password = NULL;
    return 0;
}

/* The firmware image, or NULL after saying why. */
static uint8_t *load_firmware(const char *firmware, size_t *len)
{
    int err = 0;
    uint8_t *image = read_file(firmware, len, &err);
    if (image == NULL || *len == 0) {
        if (image == NULL)
            fprintf(stderr, "error: cannot read the firmware %s: %s\n", firmware, strerror(err));
        else
            fprintf(stderr, "error: the firmware %s is empty\n", firmware);
        fprintf(stderr, "hint: pass the firmware image built for the node (e.g. firmware.bin)\n");
        free(image);
        return NULL;
    }
    return image;
}

static bool is_yaml(const char *path)
{
    size_t n = strlen(path);
    return (n > 5 && strcmp(path + n - 5, ".yaml") == 0) ||
           (n > 4 && strcmp(path + n - 4, ".yml") == 0);
}

/* Defaults from a node's YAML file: host <name>.local, port, password. */
/* -s KEY VALUE / --substitution KEY VALUE, as ESPHome's CLI takes them (before or after
 * the command): taken out of argv by main() and applied to every node file loaded. */
#define MAX_SUBSTS 32
static ota_config_subst_t substs[MAX_SUBSTS];
static size_t n_substs;

static int apply_node_file(const char *path, ota_client_options_t *o, bool port_set,
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

static int cmd_upload(int argc, char **argv)
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

/* ------------------------------------------------------------ logs, run */

static const char logs_usage[] =
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

static const char run_usage[] =
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

static int cmd_logs_or_run(int argc, char **argv, bool run)
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

/* ------------------------------------------------------------ discover */

static const char discover_usage[] =
    "usage: ota discover [--timeout S] [--json]\n"
    "\n"
    "List the nodes on this network that advertise OTA over mDNS / DNS-SD: the native\n"
    "protocol (_ota._tcp) and ArduinoOTA (_arduino._tcp), one line per node, sorted by\n"
    "name. The queries go out on every network interface that is up and has multicast,\n"
    "over IPv4 and IPv6; the nodes answer this tool directly, so no mDNS daemon needs\n"
    "to run here.\n"
    "\n"
    "  --timeout S   how long to wait for answers, in seconds (default 3; fractions\n"
    "                such as 0.5 are fine, at most 60)\n"
    "  --json        a JSON array instead of the table, one object per node with\n"
    "                name, host, address, addresses, port, arduino_port, version,\n"
    "                platform, password, auth, services (null when unknown)\n"
    "  -h, --help    this text\n"
    "\n"
    "Columns: NAME (the host name without .local), ADDRESS (IPv4 when the node has\n"
    "one), PORT (its native OTA port, or its ArduinoOTA port when that is all it\n"
    "offers), VERSION and PLATFORM (from its TXT record), PASSWORD (yes, no, or ? when\n"
    "it does not say). Exit status 0, also when no node answers.\n";

/* Seconds as "3", "0.5", "2.25" (digits and one point, nothing else: no signs,
 * exponents, hex or "inf") within [min, max]. */
static bool parse_seconds(const char *s, double min, double max, double *out)
{
    size_t digits = strspn(s, "0123456789");
    size_t frac = s[digits] == '.' ? strspn(s + digits + 1, "0123456789") : 0;
    size_t len = digits + (s[digits] == '.' ? 1 + frac : 0);
    if (digits + frac == 0 || s[len] != '\0' || len > 16)
        return false;
    double v = strtod(s, NULL);
    if (!isfinite(v) || v < min || v > max)
        return false;
    *out = v;
    return true;
}

/* s as a JSON string: quotes, backslashes and control characters escaped (the
 * texts are valid UTF-8 already, mdns_query.c sees to it). */
static void put_json_string(FILE *f, const char *s)
{
    fputc('"', f);
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        switch (*p) {
        case '"': fputs("\\\"", f); break;
        case '\\': fputs("\\\\", f); break;
        case '\n': fputs("\\n", f); break;
        case '\r': fputs("\\r", f); break;
        case '\t': fputs("\\t", f); break;
        default:
            if (*p < 0x20 || *p == 0x7F)
                fprintf(f, "\\u%04x", *p);
            else
                fputc(*p, f);
        }
    }
    fputc('"', f);
}

static void put_json_string_or_null(FILE *f, const char *s, bool present)
{
    if (present)
        put_json_string(f, s);
    else
        fputs("null", f);
}

static void print_nodes_json(const ota_mdns_node_t *nodes, size_t n)
{
    if (n == 0) {
        puts("[]");
        return;
    }
    puts("[");
    for (size_t i = 0; i < n; i++) {
        const ota_mdns_node_t *nd = &nodes[i];
        char a[OTA_MDNSQ_ADDR_TEXT_MAX];
        fputs("  {\"name\": ", stdout);
        put_json_string(stdout, nd->name);
        fputs(", \"host\": ", stdout);
        put_json_string(stdout, nd->host);
        fputs(", \"address\": ", stdout);
        if (nd->n_addrs > 0)
            ota_mdns_addr_text(&nd->addrs[0], a, sizeof a);
        put_json_string_or_null(stdout, a, nd->n_addrs > 0);
        fputs(", \"addresses\": [", stdout);
        for (unsigned k = 0; k < nd->n_addrs; k++) {
            ota_mdns_addr_text(&nd->addrs[k], a, sizeof a);
            fputs(k ? ", " : "", stdout);
            put_json_string(stdout, a);
        }
        printf("], \"port\": %u, \"arduino_port\": ", (unsigned)nd->port);
        if (nd->services[OTA_MDNSQ_SVC_ARDUINO])
            printf("%u", (unsigned)nd->arduino_port);
        else
            fputs("null", stdout);
        fputs(", \"version\": ", stdout);
        put_json_string_or_null(stdout, nd->version, nd->version[0] != '\0');
        fputs(", \"platform\": ", stdout);
        put_json_string_or_null(stdout, nd->platform, nd->platform[0] != '\0');
        fputs(", \"password\": ", stdout);
        fputs(nd->password == OTA_MDNSQ_PW_YES ? "true"
              : nd->password == OTA_MDNSQ_PW_NO ? "false" : "null", stdout);
        fputs(", \"auth\": ", stdout);
        put_json_string_or_null(stdout, nd->auth, nd->has_auth);
        fputs(", \"services\": [", stdout);
        bool first = true;
        for (int k = 0; k < OTA_MDNSQ_SVC_COUNT; k++) {
            if (!nd->services[k])
                continue;
            fputs(first ? "" : ", ", stdout);
            put_json_string(stdout, ota_mdns_service_name((ota_mdns_service_kind_t)k));
            first = false;
        }
        printf("]}%s\n", i + 1 < n ? "," : "");
    }
    puts("]");
}

static void print_nodes_table(const ota_mdns_node_t *nodes, size_t n)
{
    static const char *const head[6] = {"NAME", "ADDRESS", "PORT", "VERSION", "PLATFORM",
                                        "PASSWORD"};
    static char addr[OTA_MDNSQ_MAX_NODES][OTA_MDNSQ_ADDR_TEXT_MAX], port[OTA_MDNSQ_MAX_NODES][8];
    const char *cells[OTA_MDNSQ_MAX_NODES][6];
    int width[6];
    if (n > OTA_MDNSQ_MAX_NODES)
        n = OTA_MDNSQ_MAX_NODES;
    for (int c = 0; c < 6; c++)
        width[c] = (int)strlen(head[c]);
    for (size_t i = 0; i < n; i++) {
        const ota_mdns_node_t *nd = &nodes[i];
        if (nd->n_addrs > 0)
            ota_mdns_addr_text(&nd->addrs[0], addr[i], sizeof addr[i]);
        else
            snprintf(addr[i], sizeof addr[i], "?");
        snprintf(port[i], sizeof port[i], "%u", (unsigned)nd->port);
        cells[i][0] = nd->name;
        cells[i][1] = addr[i];
        cells[i][2] = port[i];
        cells[i][3] = nd->version[0] ? nd->version : "?";
        cells[i][4] = nd->platform[0] ? nd->platform : "?";
        cells[i][5] = nd->password == OTA_MDNSQ_PW_YES ? "yes"
                      : nd->password == OTA_MDNSQ_PW_NO ? "no" : "?";
        for (int c = 0; c < 6; c++)
            if ((int)strlen(cells[i][c]) > width[c])
                width[c] = (int)strlen(cells[i][c]);
    }
    for (int c = 0; c < 5; c++)
        printf("%-*s  ", width[c], head[c]);
    printf("%s\n", head[5]);
    for (size_t i = 0; i < n; i++) {
        for (int c = 0; c < 5; c++)
            printf("%-*s  ", width[c], cells[i][c]);
        printf("%s\n", cells[i][5]);
    }
    printf("%zu node%s found\n", n, n == 1 ? "" : "s");
}

static int cmd_discover(int argc, char **argv)
{
    static const struct option opts[] = {
        {"timeout", required_argument, NULL, 't'},
        {"json", no_argument, NULL, 'J'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    double timeout_s = DISCOVER_TIMEOUT_S;
    bool json = false;
    int c;
    opterr = 0;
    while ((c = getopt_long(argc, argv, ":h", opts, NULL)) != -1) {
        switch (c) {
        case 't':
            if (!parse_seconds(optarg, 0.1, 60, &timeout_s))
                return usage_error("discover", "--timeout takes seconds from 0.1 to 60 (e.g. 3 "
                                               "or 0.5), not '%s'", optarg);
            break;
        case 'J': json = true; break;
        case 'h': fputs(discover_usage, stdout); return OTA_EXIT_OK;
        case ':': return usage_error("discover", "option '%s' needs a value", argv[optind - 1]);
        default: return usage_error("discover", "unknown option '%s'", argv[optind - 1]);
        }
    }
    if (optind != argc)
        return usage_error("discover", "unexpected argument '%s'", argv[optind]);

    ota_mdns_table_t *t = malloc(sizeof *t);
    static ota_mdns_node_t nodes[OTA_MDNSQ_MAX_NODES];
    if (t == NULL) {
        fprintf(stderr, "error: out of memory\n");
        return OTA_EXIT_INTERNAL;
    }
    ota_mdns_browse_info_t info;
    int rc = ota_mdns_browse(t, timeout_s, &info);
    size_t n = rc == 0 ? ota_mdns_table_nodes(t, nodes, OTA_MDNSQ_MAX_NODES) : 0;
    free(t);
    if (json)
        print_nodes_json(nodes, n);
    else if (n > 0)
        print_nodes_table(nodes, n);
    if (n > 0)
        return OTA_EXIT_OK;
    /* nothing found: say so (on stderr beside JSON, whose stdout is just "[]") */
    FILE *out = json ? stderr : stdout;
    if (rc != 0) {
        fprintf(out, "no node answered: no mDNS query could be sent, no network interface is "
                     "up with multicast\n"
                     "hint: connect this machine to the nodes' network\n");
        return OTA_EXIT_OK;
    }
    fprintf(out, "no node answered within %g s (asked for _ota._tcp and _arduino._tcp on %s)\n",
            timeout_s, info.ifnames);
    fprintf(out, "hint: is this machine on the same network as the nodes (the same LAN or "
                 "Wi-Fi, not a guest network or another subnet)? mDNS does not cross routers\n"
                 "hint: some Wi-Fi access points and switches filter multicast, or isolate "
                 "clients from each other\n"
                 "hint: a firewall here must let in the nodes' UDP answers from port 5353\n"
                 "hint: a longer --timeout helps with nodes that are slow to answer; nodes with "
                 "mDNS switched off are reached by their IP address\n");
    return OTA_EXIT_OK;
}

/* ------------------------------------------------------------ hash-password */

static char *prompt_password(const char *prompt)
{
    FILE *tty = fopen("/dev/tty", "r+");
    if (tty == NULL)
        return NULL;
    struct termios old, quiet;
    tcgetattr(fileno(tty), &old);
    quiet = old;
    quiet.c_lflag &= ~(tcflag_t)ECHO;
    fputs(prompt, tty);
    fflush(tty);
    tcsetattr(fileno(tty), TCSAFLUSH, &quiet);
    char *line = read_first_line(tty);
    tcsetattr(fileno(tty), TCSAFLUSH, &old);
    fputc('\n', tty);
    fclose(tty);
    return line;
}

/* The salted verifier of pw with a fresh random salt, as text. \return 0, -1. */
static int make_verifier(const char *pw, uint32_t iterations, char *text, size_t cap)
{
    ota_verifier_t v;
    v.iterations = iterations;
    uint8_t sp[OTA_SALTED_KEY_LEN];
    int rc = ota_posix_random(NULL, v.salt, sizeof v.salt);
    if (rc == 0)
        rc = ota_posix_pbkdf2_sha256(pw, strlen(pw), v.salt, sizeof v.salt, v.iterations, sp,
                                     sizeof sp);
    if (rc == 0)
        rc = ota_salted_keys(&ota_posix_crypto, sp, NULL, v.stored_key, v.server_key);
    ota_wipe(sp, sizeof sp);
    if (rc != 0 || ota_verifier_format(&v, text, cap) == 0)
        rc = -1;
    ota_wipe(&v, sizeof v);
    return rc;
}

/* ------------------------------------------------------------ config, codegen */

static const char config_usage[] =
    "usage: ota config [-s KEY VALUE ...] FILE\n"
    "\n"
    "Check a node's YAML configuration (ESPHome's older and current forms) and print\n"
    "the resolved settings. A password shows as 'set', never in clear. Errors name the\n"
    "file, line and column. !secret NAME reads NAME from secrets.yaml beside FILE.\n";

static const char codegen_usage[] =
    "usage: ota codegen [-s KEY VALUE ...] FILE [-o OUT]\n"
    "\n"
    "Write the node's OTA settings as a C header for its firmware (to OUT, or stdout):\n"
    "the component instance named by id, port, protocol version, safe-mode settings,\n"
    "and the password only as its salted verifier (a fresh salt each run). With\n"
    "legacy_auth: true the plain password is written too, with a warning. With\n"
    "ArduinoOTA on (arduino_port / arduino_auth: sha256|md5) the one hash that variant\n"
    "checks is written as well; it is password-equivalent for ArduinoOTA (a warning\n"
    "says so). Nothing else derived from the password is written.\n"
    "\n"
    "  -o, --output OUT   write to OUT (replaced atomically)\n"
    "  --iterations N     PBKDF2 iterations of the verifier (default 10000)\n";

static int load_config(const char *path, ota_node_config_t *cfg)
{
    char err[1024];
    if (ota_config_load_ex(path, substs, n_substs, cfg, err, sizeof err) != 0) {
        fprintf(stderr, "error: %s\n", err);
        return OTA_EXIT_CONFIG;
    }
    return OTA_EXIT_OK;
}

static int cmd_config(int argc, char **argv)
{
    if (argc == 2 && (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0)) {
        fputs(config_usage, stdout);
        return OTA_EXIT_OK;
    }
    int a = 1; /* -s KEY VALUE were taken out by main() */
    if (argc - a != 1 || argv[a][0] == '-')
        return usage_error("config", "expects exactly one FILE%s", NULL);
    ota_node_config_t cfg;
    int rc = load_config(argv[a], &cfg);
    if (rc == OTA_EXIT_OK) {
        ota_config_print(&cfg);
        fflush(stdout);
        ota_config_warn(&cfg, stderr);
        printf("%s: valid\n", argv[a]);
    }
    ota_wipe(&cfg, sizeof cfg);
    return rc;
}

static void put_c_string(FILE *f, const char *s)
{
    fputc('"', f);
    for (; *s; s++) {
        if (*s == '"' || *s == '\\')
            fprintf(f, "\\%c", *s);
        else if ((unsigned char)*s < 0x20 || (unsigned char)*s >= 0x7f)
            fprintf(f, "\\%03o", (unsigned char)*s);
        else
            fputc(*s, f);
    }
    fputc('"', f);
}

static int cmd_codegen(int argc, char **argv)
{
    static const struct option opts[] = {
        {"output", required_argument, NULL, 'o'},
        {"iterations", required_argument, NULL, 'i'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    const char *out_path = NULL;
    unsigned long iterations = DEFAULT_ITERATIONS;
    int c;
    opterr = 0;
    while ((c = getopt_long(argc, argv, ":ho:", opts, NULL)) != -1) {
        switch (c) {
        case 'o': out_path = optarg; break;
        case 'i':
            if (!parse_uint(optarg, OTA_SALTED_MIN_ITERATIONS, 10000000ul, &iterations))
                return usage_error("codegen", "--iterations takes 4096 to 10000000, not '%s'",
                                   optarg);
            break;
        case 'h': fputs(codegen_usage, stdout); return OTA_EXIT_OK;
        case ':': return usage_error("codegen", "option '%s' needs a value", argv[optind - 1]);
        default: return usage_error("codegen", "unknown option '%s'", argv[optind - 1]);
        }
    }
    if (optind != argc - 1)
        return usage_error("codegen", "expects exactly one FILE%s", NULL);
    ota_node_config_t cfg;
    int rc = load_config(argv[optind], &cfg);
    if (rc != OTA_EXIT_OK)
        return rc;
    if (!cfg.has_ota) {
        fprintf(stderr, "error: %s has no ota: block (platform: esphome) to generate\n",
                argv[optind]);
        return OTA_EXIT_CONFIG;
    }
    char verifier[OTA_VERIFIER_TEXT_MAX] = "";
    if (cfg.password_set && make_verifier(cfg.password, (uint32_t)iterations, verifier,
                                          sizeof verifier) != 0) {
        fprintf(stderr, "error: computing the verifier failed\n");
        return OTA_EXIT_INTERNAL;
    }
    ota_config_warn(&cfg, stderr); /* the plain password or an ArduinoOTA hash */
    char tmp[1100];
    FILE *f = stdout;
    if (out_path != NULL) {
        snprintf(tmp, sizeof tmp, "%s.tmp", out_path);
        f = fopen(tmp, "w");
        if (f == NULL) {
            fprintf(stderr, "error: cannot write %s: %s\n", tmp, strerror(errno));
            return OTA_EXIT_INPUT;
        }
    }
    fprintf(f, "/* Generated by `ota codegen` from %s: do not edit, change the YAML. */\n",
            cfg.file);
    fprintf(f, "#ifndef OTA_NODE_SETTINGS_H\n#define OTA_NODE_SETTINGS_H\n\n");
    fprintf(f, "#define OTA_NODE_NAME \"%s\"\n", cfg.name);
    fprintf(f, "#define OTA_NODE_PLATFORM \"%s\"\n", cfg.platform);
    fprintf(f, "/* the OTA component instance (id) */\n#define OTA_NODE_OTA_ID %s\n", cfg.ota_id);
    fprintf(f, "#define OTA_NODE_PORT %u\n", (unsigned)cfg.port);
    fprintf(f, "#define OTA_NODE_VERSION %u\n", (unsigned)cfg.version);
    fprintf(f, "/* the password, as its salted verifier only */\n#define OTA_NODE_VERIFIER ");
    if (cfg.password_set)
        put_c_string(f, verifier);
    else
        fputs("NULL", f);
    fprintf(f, "\n#define OTA_NODE_LEGACY_PASSWORD ");
    if (cfg.legacy_auth) {
        fprintf(f, "/* legacy_auth: the plain password, for stock uploaders */ ");
        put_c_string(f, cfg.password);
    } else {
        fputs("NULL", f);
    }
    fprintf(f, "\n#define OTA_NODE_ALLOW_MD5 %d\n", cfg.allow_md5 ? 1 : 0);
    /* ArduinoOTA: only when the YAML enables it, and then only the one hash its variant
     * checks. That hash works as the password for ArduinoOTA (the protocol's weakness,
     * docs/protocol.md#arduino-auth): say so where it is written. Without ArduinoOTA
     * nothing derived from the password but the salted verifier reaches the firmware. */
    fprintf(f, "/* ArduinoOTA (espota.py): UDP port, 0 = off */\n#define OTA_NODE_ARDUINO_PORT %u\n",
            cfg.arduino ? (unsigned)cfg.arduino_port : 0u);
    if (cfg.arduino && cfg.arduino_auth[0] != '\0') {
        bool md5 = strcmp(cfg.arduino_auth, "md5") == 0;
        uint8_t d[32];
        char hex[65];
        if (md5)
            mbedtls_md5_ret((const unsigned char *)cfg.password, strlen(cfg.password), d);
        else
            mbedtls_sha256_ret((const unsigned char *)cfg.password, strlen(cfg.password), d, 0);
        size_t dl = md5 ? 16 : 32;
        ota_hex_encode(d, dl, hex);
        hex[2 * dl] = '\0';
        fprintf(f, "/* WARNING: %s(password). For ArduinoOTA this hash IS the password: anyone\n"
                   " * who reads it out of the firmware can upload over ArduinoOTA. Remove\n"
                   " * arduino_auth from the YAML when the native protocol is enough. */\n",
                md5 ? "MD5hex" : "SHA256hex");
        fprintf(f, "#define OTA_NODE_ARDUINO_AUTH \"%s\"\n#define OTA_NODE_ARDUINO_HASH \"%s\"\n",
                cfg.arduino_auth, hex);
        ota_wipe(d, sizeof d);
        ota_wipe(hex, sizeof hex);
    } else {
        fprintf(f, "#define OTA_NODE_ARDUINO_AUTH NULL /* no ArduinoOTA password hash */\n"
                   "#define OTA_NODE_ARDUINO_HASH NULL\n");
    }
    fprintf(f, "#define OTA_NODE_SAFE_MODE %d\n", cfg.safe_mode ? 1 : 0);
    fprintf(f, "#define OTA_NODE_NUM_ATTEMPTS %uu\n", (unsigned)cfg.num_attempts);
    fprintf(f, "#define OTA_NODE_BOOT_IS_GOOD_AFTER_MS %uu\n",
            (unsigned)cfg.boot_is_good_after_ms);
    fprintf(f, "#define OTA_NODE_REBOOT_TIMEOUT_MS %uu\n", (unsigned)cfg.reboot_timeout_ms);
    fprintf(f, "#define OTA_NODE_ROLLBACK_AFTER %uu /* for ota-boot --rollback-after */\n",
            (unsigned)cfg.rollback_after);
    fprintf(f, "#define OTA_NODE_LOGGER %d\n", cfg.logger ? 1 : 0);
    fprintf(f, "#define OTA_NODE_LOG_PORT %u\n", (unsigned)cfg.log_port);
    fprintf(f, "/* answer <name>.local, advertise _ota._tcp (mdns: disabled: true turns it off) */\n"
               "#define OTA_NODE_MDNS %d\n", cfg.mdns ? 1 : 0);
    fprintf(f, "\n#endif /* OTA_NODE_SETTINGS_H */\n");
    ota_wipe(&cfg, sizeof cfg);
    if (out_path != NULL) {
        if (fclose(f) != 0 || rename(tmp, out_path) != 0) {
            fprintf(stderr, "error: cannot write %s: %s\n", out_path, strerror(errno));
            unlink(tmp);
            return OTA_EXIT_INPUT;
        }
    }
    return OTA_EXIT_OK;
}

static int cmd_hash_password(int argc, char **argv)
{
    static const struct option opts[] = {
        {"iterations", required_argument, NULL, 'i'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    unsigned long iterations = DEFAULT_ITERATIONS;
    int c;
    opterr = 0;
    while ((c = getopt_long(argc, argv, ":h", opts, NULL)) != -1) {
        switch (c) {
        case 'i':
            if (!parse_uint(optarg, OTA_SALTED_MIN_ITERATIONS, 10000000ul, &iterations))
                return usage_error("hash-password",
                                   "--iterations takes a number from 4096 to 10000000, not '%s'",
                                   optarg);
            break;
        case 'h': fputs(hash_usage, stdout); return OTA_EXIT_OK;
        case ':':
            return usage_error("hash-password", "option '%s' needs a value", argv[optind - 1]);
        default: return usage_error("hash-password", "unknown option '%s'", argv[optind - 1]);
        }
    }
    if (optind != argc)
        return usage_error("hash-password", "unexpected argument '%s'", argv[optind]);

    char *pw;
    if (isatty(STDIN_FILENO)) {
        pw = prompt_password("Password: ");
        char *again = pw ? prompt_password("Again: ") : NULL;
        if (pw == NULL || again == NULL || strcmp(pw, again) != 0) {
            fprintf(stderr, "error: %s\n", pw && again ? "the passwords differ" :
                                                         "cannot read the password");
            free(pw);
            free(again);
            return OTA_EXIT_INPUT;
        }
        free(again);
    } else {
        pw = read_first_line(stdin);
    }
    if (pw == NULL || pw[0] == '\0') {
        fprintf(stderr, "error: empty password\n");
        free(pw);
        return OTA_EXIT_INPUT;
    }
    char text[OTA_VERIFIER_TEXT_MAX];
    int rc = make_verifier(pw, (uint32_t)iterations, text, sizeof text);
    ota_wipe(pw, strlen(pw));
    free(pw);
    if (rc != 0) {
        fprintf(stderr, "error: computing the verifier failed\n");
        return OTA_EXIT_INTERNAL;
    }
    puts(text);
    return OTA_EXIT_OK;
}

/* Take every "-s KEY VALUE" (or --substitution) out of argv into substs[].
 * \return the new argc, or -1 after a usage error. */
static int take_substitutions(int argc, char **argv)
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

int main(int argc, char **argv)
{
    argc = take_substitutions(argc, argv);
    if (argc < 0)
        return OTA_EXIT_USAGE;
    if (argc < 2) {
        fputs(main_usage, stderr);
        return OTA_EXIT_USAGE;
    }
    const char *cmd = argv[1];
    if (strcmp(cmd, "--help") == 0 || strcmp(cmd, "-h") == 0 || strcmp(cmd, "help") == 0) {
        fputs(main_usage, stdout);
        return OTA_EXIT_OK;
    }
    if (strcmp(cmd, "--version") == 0) {
        printf("ota %s\n", OTA_TOOL_VERSION);
        return OTA_EXIT_OK;
    }
    if (strcmp(cmd, "upload") == 0)
        return cmd_upload(argc - 1, argv + 1);
    if (strcmp(cmd, "hash-password") == 0)
        return cmd_hash_password(argc - 1, argv + 1);
    if (strcmp(cmd, "logs") == 0)
        return cmd_logs_or_run(argc - 1, argv + 1, false);
    if (strcmp(cmd, "run") == 0)
        return cmd_logs_or_run(argc - 1, argv + 1, true);
    if (strcmp(cmd, "config") == 0)
        return cmd_config(argc - 1, argv + 1);
    if (strcmp(cmd, "codegen") == 0)
        return cmd_codegen(argc - 1, argv + 1);
    if (strcmp(cmd, "discover") == 0)
        return cmd_discover(argc - 1, argv + 1);
    return usage_error(NULL, "unknown command '%s'", cmd);
}
