/*
 * lwip-node - demo-node's firmware on the lwIP port: the OTA component (native and
 * ArduinoOTA), mDNS, the log server, safe mode and a heartbeat, on lwIP's raw API over
 * a TAP interface, with its image store on the emulated NOR flash of ota_lwip_flash.h.
 * It is what an ESP8266 firmware looks like, run as a Linux process:
 *
 *   ip tuntap add dev tap0 mode tap && ip addr add 10.77.0.1/24 dev tap0 && ip link set tap0 up
 *   lwip-boot flash --flash FLASH --layout esp8266-4m build/bin/lwip-node
 *   lwip-boot run --flash FLASH --tap tap0 -- --ip 10.77.0.2/24
 *
 * lwip-boot passes --flash and --tap; exit status 42 asks it to boot again (after an
 * update). Boot order as demo-node's: safe-mode check first, then network and OTA,
 * then the demo component, which a safe-mode boot leaves off.
 */
#include <arpa/inet.h>
#include <net/if.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "lwip/init.h"
#include "lwip/memp.h"
#include "lwip/pbuf.h"
#include "lwip/netif.h"
#include "lwip/sys.h"
#include "lwip/tcpip.h"
#include "netif/tapif.h"

#include "log_lwip.h"
#include "net_lwip.h"
#include "node_args.h"
#include "ota/app_desc.h"
#include "ota/discovery.h"
#include "ota/log_proto.h"
#include "ota/mdns.h"
#include "ota/safe_mode.h"
#include "ota/server.h"
#include "ota_lwip_flash.h"

/* the POSIX port's mbedTLS crypto table (crypto_mbedtls.c, built into the lwIP port) */
extern const ota_crypto_port_t ota_posix_crypto;

#include "node_settings.h" /* from node.yaml by `ota codegen`: only the verifier */

#ifndef OTA_VERSION
#define OTA_VERSION "unknown"
#endif
#ifndef OTA_NODE_MDNS
#define OTA_NODE_MDNS 1
#endif
#ifndef OTA_NODE_ARDUINO_PORT
#define OTA_NODE_ARDUINO_PORT 0
#define OTA_NODE_ARDUINO_AUTH NULL
#define OTA_NODE_ARDUINO_HASH NULL
#endif
#define LWIP_NODE_FIRMWARE_VERSION "1.0.0"
#define LWIP_NODE_EXIT_REBOOT 42 /* as the POSIX node's OTA_POSIX_EXIT_REBOOT */

__attribute__((used)) const ota_app_desc_t lwip_node_app_desc = {
    .magic_word = OTA_APP_DESC_MAGIC,
    .secure_version = 0,
    .version = LWIP_NODE_FIRMWARE_VERSION,
    .project_name = OTA_NODE_NAME,
    .time = __TIME__,
    .date = __DATE__,
    .idf_ver = "ota " OTA_VERSION,
};

static volatile sig_atomic_t stop = 0;

static void on_signal(int sig)
{
    (void)sig;
    stop = 1;
}

static const char usage_text[] =
    "usage: lwip-node --flash FILE --tap TAP --ip ADDR/PREFIX [options]\n"
    "\n"
    "demo-node's firmware on the lwIP port (lwIP's raw API on a TAP interface, an\n"
    "emulated NOR flash). Run it under 'lwip-boot run --flash FILE --tap TAP -- ...'.\n"
    "\n"
    "device:\n"
    "  --flash FILE              the flash image (lwip-boot passes it)\n"
    "  --tap TAP                 the TAP interface, created by the caller (lwip-boot\n"
    "                            passes it)\n"
    "  --ip ADDR/PREFIX          the node's own IPv4 address on it\n"
    "  --gw ADDR                 default gateway (default: none)\n"
    "  --erase-ms N              model a sector erase of N ms (default 0)\n"
    "  --stats-ms N              log the port's lwIP buffer use every N ms (default off)\n"
    "OTA (as demo-node's):\n"
    "  --port N                  OTA port (default from node.yaml: %u)\n"
    "  --verifier V              require the password of this salted verifier\n"
    "  --password P              legacy: also accept P over the SHA-256 challenge\n"
    "  --password-file FILE      the same with the password in FILE\n"
    "  --allow-md5               legacy: also offer the MD5 challenge\n"
    "  --no-password             accept uploads without a password\n"
    "  --auth-backoff-free N, --auth-backoff-base-ms N, --auth-backoff-max-ms N,\n"
    "  --auth-guesses-per-min N  the brute-force guard (defaults as demo-node's)\n"
    "  --protocol-version 1|2    protocol version announced (default 2)\n"
    "  --handshake-timeout-ms N, --data-timeout-ms N  silence allowed\n"
    "  --arduino-port N          ArduinoOTA on UDP port N (default from node.yaml: %u)\n"
    "  --arduino-auth sha256|md5 its password variant\n"
    "  --arduino-password-file FILE  its password\n"
    "  --mdns-name NAME, --no-mdns   mDNS responder (default name " OTA_NODE_NAME ")\n"
    "  --firmware-version TEXT   advertised over mDNS (default " LWIP_NODE_FIRMWARE_VERSION ")\n"
    "  --log-port N, --no-log-server  log viewers (default: the OTA port + 1)\n"
    "safe mode:\n"
    "  --no-safe-mode, --safe-mode-attempts N, --boot-is-good-after-ms N,\n"
    "  --safe-mode-reboot-timeout-ms N\n"
    "demo component:\n"
    "  --heartbeat-ms N          heartbeat period (default 1000)\n"
    "  --crash-if-exists FILE    crash during set-up while FILE exists (for tests)\n"
    "  --version, --help\n";

static int usage_error(const char *msg, const char *arg)
{
    fprintf(stderr, "lwip-node: %s%s%s\nRun 'lwip-node --help' for usage.\n", msg,
            arg ? ": " : "", arg ? arg : "");
    return 2;
}

/* "10.77.0.2/24" -> address and netmask. */
static bool parse_cidr(const char *s, ip4_addr_t *ip, ip4_addr_t *mask)
{
    char buf[32];
    const char *slash = strchr(s, '/');
    uint32_t plen;
    if (slash == NULL || (size_t)(slash - s) >= sizeof buf ||
        !node_parse_u32(slash + 1, 32, &plen) || plen == 0)
        return false;
    memcpy(buf, s, (size_t)(slash - s));
    buf[slash - s] = '\0';
    if (!ip4addr_aton(buf, ip))
        return false;
    ip4_addr_set_u32(mask, lwip_htonl(plen == 32 ? 0xFFFFFFFFu : ~(0xFFFFFFFFu >> plen)));
    return true;
}


/*
 * Debian's liblwip 2.1.3 sizes the PBUF_POOL pool (memp.c) for lwIP's default TCP_MSS
 * of 536, while its pbuf.c fills pool pbufs up to the 1536 bytes its lwipopts.h's
 * TCP_MSS of 1460 implies: tapif's receive path then writes a full 1514-byte frame into
 * a 616-byte block (heap overflow, found by ASan here). Frames that fit one pool block
 * are safe, so the link's MTU is cut to what the library's pool really holds, on both
 * sides: the kernel's end of the TAP (SIOCSIFMTU) and lwIP's netif. 536 is also the
 * MSS of the ESP8266 Arduino core's default lwIP build.
 */
static uint16_t safe_mtu(void)
{
    size_t block = memp_pools[MEMP_PBUF_POOL]->size;
    size_t head = LWIP_MEM_ALIGN_SIZE(sizeof(struct pbuf));
    size_t frame = block > head ? block - head : 0;
    if (frame > PBUF_POOL_BUFSIZE)
        frame = PBUF_POOL_BUFSIZE;
    size_t mtu = frame > 14 ? frame - 14 : 0; /* the Ethernet header */
    return (uint16_t)(mtu > 1500 ? 1500 : mtu);
}

static int set_kernel_mtu(const char *ifname, uint16_t mtu, char *err, size_t cap)
{
    int fd = socket(AF_INET, SOCK_DGRAM, 0);
    struct ifreq ifr;
    memset(&ifr, 0, sizeof ifr);
    snprintf(ifr.ifr_name, sizeof ifr.ifr_name, "%s", ifname);
    int rc = -1;
    if (fd >= 0 && ioctl(fd, SIOCGIFMTU, &ifr) == 0) {
        if (ifr.ifr_mtu <= (int)mtu) {
            rc = 0;
        } else {
            ifr.ifr_mtu = mtu;
            rc = ioctl(fd, SIOCSIFMTU, &ifr);
        }
    }
    if (rc != 0)
        snprintf(err, cap, "cannot set the MTU of %s to %u (lwIP's receive pool holds no "
                 "larger frame): %s", ifname, (unsigned)mtu, strerror(errno));
    if (fd >= 0)
        close(fd);
    return rc;
}

/* The port's hold on lwIP's buffers (net_lwip.h: LWIP_STATS is off in Debian's build). */
static void log_stats(ota_lwip_log_t *lg, ota_lwip_net_t *net)
{
    ota_lwip_net_stats_t st;
    ota_lwip_net_get_stats(net, &st);
    ota_lwip_logf(lg, OTA_LOG_INFO, "lwip",
                  "mem rx_pbufs=%lu max=%lu rx_bytes=%lu max=%lu snd_queue=%lu max=%lu "
                  "conns=%lu max=%lu refused=%lu udp_dropped=%lu",
                  (unsigned long)st.rx_pbufs, (unsigned long)st.rx_pbufs_max,
                  (unsigned long)st.rx_bytes, (unsigned long)st.rx_bytes_max,
                  (unsigned long)st.snd_queue, (unsigned long)st.snd_queue_max,
                  (unsigned long)st.conns, (unsigned long)st.conns_max,
                  (unsigned long)st.accept_refused, (unsigned long)st.udp_dropped);
}

static void hex(const uint8_t *in, size_t n, char *out)
{
    for (size_t i = 0; i < n; i++)
        snprintf(out + 2 * i, 3, "%02x", in[i]);
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
    cfg.compression = false; /* OTA_CFG_ENABLE_COMPRESSION 0 on this port */
    ota_safe_mode_config_t smc;
    ota_safe_mode_config_default(&smc);
    smc.enabled = OTA_NODE_SAFE_MODE;
    smc.num_attempts = OTA_NODE_NUM_ATTEMPTS;
    smc.boot_is_good_after_ms = OTA_NODE_BOOT_IS_GOOD_AFTER_MS;
    smc.reboot_timeout_ms = OTA_NODE_REBOOT_TIMEOUT_MS;
    smc.secure_version = node_desc_secure_version(&lwip_node_app_desc);
    const char *flash_path = NULL, *tap = NULL, *crash_file = NULL;
    ip4_addr_t ip, mask, gw;
    bool have_ip = false;
    ip4_addr_set_zero(&gw);
    uint32_t port = OTA_NODE_PORT, heartbeat_ms = 1000, v, erase_ms = 0, stats_ms = 0;
    uint32_t log_port = 0, arduino_port = OTA_NODE_ARDUINO_PORT;
    const char *compiled_ar_auth = OTA_NODE_ARDUINO_AUTH;
    bool arduino_md5 = compiled_ar_auth != NULL && strcmp(compiled_ar_auth, "md5") == 0;
    static char password_buf[256], ar_password[256];
    bool no_password = false, verifier_set = false;
    bool log_server = OTA_NODE_LOGGER, mdns_on = OTA_NODE_MDNS;
    const char *mdns_name = OTA_NODE_NAME, *fw_version = LWIP_NODE_FIRMWARE_VERSION;

    enum { O_FLASH = 256, O_TAP, O_IP, O_GW, O_ERASE, O_STATS, O_PORT, O_VERIFIER, O_PASSWORD,
           O_PW_FILE, O_NO_PASSWORD, O_MD5, O_BO_FREE, O_BO_BASE, O_BO_MAX, O_GUESSES, O_VERSION,
           O_HS_TO, O_DATA_TO, O_AR_PORT, O_AR_AUTH, O_AR_PW_FILE, O_MDNS_NAME, O_NO_MDNS,
           O_FW_VERSION, O_LOG_PORT, O_NO_LOG, O_NO_SAFE, O_SAFE_N, O_GOOD, O_SAFE_TO, O_HB,
           O_CRASH, O_VERSION_FLAG, O_HELP };
    static const struct option opts[] = {
        {"flash", required_argument, NULL, O_FLASH},
        {"tap", required_argument, NULL, O_TAP},
        {"ip", required_argument, NULL, O_IP},
        {"gw", required_argument, NULL, O_GW},
        {"erase-ms", required_argument, NULL, O_ERASE},
        {"stats-ms", required_argument, NULL, O_STATS},
        {"port", required_argument, NULL, O_PORT},
        {"verifier", required_argument, NULL, O_VERIFIER},
        {"password", required_argument, NULL, O_PASSWORD},
        {"password-file", required_argument, NULL, O_PW_FILE},
        {"no-password", no_argument, NULL, O_NO_PASSWORD},
        {"allow-md5", no_argument, NULL, O_MD5},
        {"auth-backoff-free", required_argument, NULL, O_BO_FREE},
        {"auth-backoff-base-ms", required_argument, NULL, O_BO_BASE},
        {"auth-backoff-max-ms", required_argument, NULL, O_BO_MAX},
        {"auth-guesses-per-min", required_argument, NULL, O_GUESSES},
        {"protocol-version", required_argument, NULL, O_VERSION},
        {"handshake-timeout-ms", required_argument, NULL, O_HS_TO},
        {"data-timeout-ms", required_argument, NULL, O_DATA_TO},
        {"arduino-port", required_argument, NULL, O_AR_PORT},
        {"arduino-auth", required_argument, NULL, O_AR_AUTH},
        {"arduino-password-file", required_argument, NULL, O_AR_PW_FILE},
        {"mdns-name", required_argument, NULL, O_MDNS_NAME},
        {"no-mdns", no_argument, NULL, O_NO_MDNS},
        {"firmware-version", required_argument, NULL, O_FW_VERSION},
        {"log-port", required_argument, NULL, O_LOG_PORT},
        {"no-log-server", no_argument, NULL, O_NO_LOG},
        {"no-safe-mode", no_argument, NULL, O_NO_SAFE},
        {"safe-mode-attempts", required_argument, NULL, O_SAFE_N},
        {"boot-is-good-after-ms", required_argument, NULL, O_GOOD},
        {"safe-mode-reboot-timeout-ms", required_argument, NULL, O_SAFE_TO},
        {"heartbeat-ms", required_argument, NULL, O_HB},
        {"crash-if-exists", required_argument, NULL, O_CRASH},
        {"version", no_argument, NULL, O_VERSION_FLAG},
        {"help", no_argument, NULL, O_HELP},
        {NULL, 0, NULL, 0},
    };
    int c;
    while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (c) {
        case O_FLASH: flash_path = optarg; break;
        case O_TAP: tap = optarg; break;
        case O_IP:
            if (!parse_cidr(optarg, &ip, &mask))
                return usage_error("--ip takes an IPv4 address with its prefix length, "
                                   "e.g. 10.77.0.2/24", optarg);
            have_ip = true;
            break;
        case O_GW:
            if (!ip4addr_aton(optarg, &gw))
                return usage_error("--gw takes an IPv4 address", optarg);
            break;
        case O_ERASE:
            if (!node_parse_u32(optarg, 10000, &erase_ms))
                return usage_error("--erase-ms takes 0 to 10000", optarg);
            break;
        case O_STATS:
            if (!node_parse_u32(optarg, 3600000, &stats_ms))
                return usage_error("--stats-ms takes milliseconds", optarg);
            break;
        case O_PORT:
            if (!node_parse_u32(optarg, 65535, &port) || port == 0)
                return usage_error("--port takes a number from 1 to 65535", optarg);
            break;
        case O_VERIFIER:
            cfg.verifier = optarg;
            verifier_set = true;
            break;
        case O_PASSWORD:
            if (optarg[0] == '\0')
                return usage_error("--password is empty (use --no-password)", NULL);
            cfg.password = optarg;
            break;
        case O_PW_FILE:
        case O_AR_PW_FILE: {
            char *buf = c == O_PW_FILE ? password_buf : ar_password;
            const char *why = node_read_password_file(optarg, buf, sizeof password_buf);
            if (why != NULL)
                return usage_error(why, optarg);
            if (c == O_PW_FILE)
                cfg.password = password_buf;
            break;
        }
        case O_NO_PASSWORD:
            cfg.password = NULL;
            cfg.verifier = NULL;
            no_password = true;
            break;
        case O_MD5: cfg.allow_md5 = true; break;
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
        case O_VERSION:
            if (!node_parse_u32(optarg, 2, &v) || v < 1)
                return usage_error("--protocol-version takes 1 or 2", optarg);
            cfg.version = (uint8_t)v;
            break;
        case O_HS_TO:
        case O_DATA_TO:
            if (!node_parse_u32(optarg, 3600000, &v) || v < 100)
                return usage_error("timeouts take milliseconds from 100 to 3600000", optarg);
            *(c == O_HS_TO ? &cfg.handshake_timeout_ms : &cfg.data_timeout_ms) = v;
            break;
        case O_AR_PORT:
            if (!node_parse_u32(optarg, 65535, &arduino_port) || arduino_port == 0)
                return usage_error("--arduino-port takes a number from 1 to 65535", optarg);
            break;
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
        case O_FW_VERSION:
            if (optarg[0] == '\0' || strlen(optarg) > 40)
                return usage_error("--firmware-version takes 1 to 40 characters", optarg);
            fw_version = optarg;
            break;
        case O_LOG_PORT:
            if (!node_parse_u32(optarg, 65535, &log_port) || log_port == 0)
                return usage_error("--log-port takes a number from 1 to 65535", optarg);
            log_server = true;
            break;
        case O_NO_LOG: log_server = false; break;
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
        case O_VERSION_FLAG:
            printf("lwip-node %s (firmware %s, lwIP %s)\n", OTA_VERSION, fw_version,
                   LWIP_VERSION_STRING);
            return 0;
        case O_HELP:
            printf(usage_text, (unsigned)OTA_NODE_PORT, (unsigned)OTA_NODE_ARDUINO_PORT);
            return 0;
        default: return usage_error("unknown option", NULL);
        }
    }
    if (optind != argc)
        return usage_error("unexpected argument", argv[optind]);
    if (flash_path == NULL || tap == NULL || !have_ip)
        return usage_error("--flash, --tap and --ip are required (lwip-boot passes the "
                           "first two)", NULL);
    if (cfg.password != NULL && !verifier_set)
        cfg.verifier = NULL; /* a run-time password replaces the compiled-in one */
    static char ar_hash[65];
    if (arduino_port != 0) { /* ArduinoOTA keeps only the hash its variant needs */
        cfg.arduino_enabled = true;
        const char *compiled = compiled_ar_auth != NULL &&
                                       strcmp(compiled_ar_auth, arduino_md5 ? "md5" : "sha256") == 0
                                   ? OTA_NODE_ARDUINO_HASH
                                   : NULL;
        if (no_password) {
            cfg.arduino_auth = OTA_ARDUINO_AUTH_NONE;
        } else if (cfg.password != NULL || ar_password[0] != '\0') {
            node_arduino_hash(ar_password[0] != '\0' ? ar_password : cfg.password, arduino_md5,
                              ar_hash);
            memset(ar_password, 0, sizeof ar_password);
            cfg.arduino_hash = ar_hash;
            cfg.arduino_auth = arduino_md5 ? OTA_ARDUINO_AUTH_MD5 : OTA_ARDUINO_AUTH_SHA256;
        } else if (compiled != NULL && !verifier_set) {
            cfg.arduino_hash = compiled;
            cfg.arduino_auth = arduino_md5 ? OTA_ARDUINO_AUTH_MD5 : OTA_ARDUINO_AUTH_SHA256;
        } else {
            return usage_error("ArduinoOTA needs the password's hash: pass "
                               "--arduino-password-file FILE or --no-password", NULL);
        }
    }
    if (cfg.allow_md5 && cfg.password == NULL)
        return usage_error("--allow-md5 needs --password", NULL);

    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);

    static ota_lwip_log_t lg;
    ota_lwip_log_init(&lg);
    static ota_lwip_flash_t flash;
    char err[300];
    if (ota_lwip_flash_open(&flash, flash_path, err, sizeof err) != 0) {
        ota_lwip_logf(&lg, OTA_LOG_ERROR, "flash", "%s", err);
        return 1;
    }
    ota_lwip_flash_set_timing(&flash, erase_ms, 0);
    const ota_boot_port_t *boot = ota_lwip_flash_boot(&flash);

    /* 1. the safe-mode check first: it counts this boot */
    static ota_safe_mode_t sm;
    bool safe = false;
    srand((unsigned)time(NULL) ^ (unsigned)getpid()); /* LWIP_RAND: ports, IGMP delays */
    tcpip_init(NULL, NULL);
    uint32_t now = sys_now();
    ota_safe_mode_setup(&sm, boot, &lg.port, &smc, now, &safe);

    /* 2. network: the TAP interface (tapif reads PRECONFIGURED_TAPIF and leaves the
     * kernel side alone), then the OTA, ArduinoOTA and log ports */
    setenv("PRECONFIGURED_TAPIF", tap, 1);
    uint16_t mtu = safe_mtu();
    if (set_kernel_mtu(tap, mtu, err, sizeof err) != 0) {
        ota_lwip_logf(&lg, OTA_LOG_ERROR, "lwip", "%s", err);
        return 1;
    }
    static struct netif netif;
    LOCK_TCPIP_CORE();
    struct netif *nif = netif_add(&netif, &ip, &mask, &gw, NULL, tapif_init, tcpip_input);
    if (nif != NULL) {
        nif->mtu = mtu; /* what we advertise as MSS follows */
        netif_set_default(nif);
        netif_set_up(nif);
        netif_set_link_up(nif);
    }
    UNLOCK_TCPIP_CORE();
    if (nif == NULL) {
        ota_lwip_logf(&lg, OTA_LOG_ERROR, "lwip", "cannot bring up TAP %s", tap);
        return 1;
    }
    char ipbuf[IP4ADDR_STRLEN_MAX];
    ota_lwip_logf(&lg, OTA_LOG_INFO, "lwip", "lwIP %s on %s: %s/%s, mtu %u, mac %02x:%02x:%02x:%02x:%02x:%02x",
                  LWIP_VERSION_STRING, tap, ip4addr_ntoa_r(&ip, ipbuf, sizeof ipbuf),
                  ip4addr_ntoa(&mask), (unsigned)mtu, netif.hwaddr[0], netif.hwaddr[1], netif.hwaddr[2],
                  netif.hwaddr[3], netif.hwaddr[4], netif.hwaddr[5]);
    static ota_lwip_net_t net;
    if (ota_lwip_net_init(&net, nif) != 0) {
        ota_lwip_logf(&lg, OTA_LOG_ERROR, "lwip", "no semaphore for the main loop");
        return 1;
    }
    const ota_tcp_port_t *tcp = NULL, *log_tcp = NULL;
    const ota_udp_port_t *udp = NULL;
    if (ota_lwip_net_listen(&net, (uint16_t)port, &tcp, err, sizeof err) != 0) {
        ota_lwip_logf(&lg, OTA_LOG_ERROR, "ota", "%s", err);
        return 1;
    }
    if (cfg.arduino_enabled &&
        ota_lwip_net_udp_open(&net, (uint16_t)arduino_port, &udp, err, sizeof err) != 0) {
        ota_lwip_logf(&lg, OTA_LOG_ERROR, "ota", "%s", err);
        return 1;
    }

    uint32_t app_size = 0;
    uint8_t app_sha[32];
    char app_hex[65] = "unknown";
    if (ota_lwip_flash_app_info(&flash, &app_size, app_sha) == 0)
        hex(app_sha, 32, app_hex);
    ota_lwip_logf(&lg, OTA_LOG_INFO, "demo", "booted slot=a image sha256=%s size=%lu", app_hex,
                  (unsigned long)app_size);
    if (log_server) {
        char hello[OTA_LOG_HELLO_MAX];
        ota_log_hello_format(hello, sizeof hello, OTA_NODE_NAME, 'a', safe);
        uint16_t lp = (uint16_t)(log_port ? log_port : OTA_LOG_DEFAULT_PORT(port));
        /* viewers prove the OTA password through its verifier; with only a legacy
         * password (no verifier) this port serves no viewers rather than open ones */
        if (cfg.verifier == NULL && cfg.password != NULL) {
            ota_lwip_logf(&lg, OTA_LOG_WARN, "logger", "no log viewers: a legacy password "
                          "without a verifier (pass --verifier too)");
        } else if (ota_lwip_net_listen(&net, lp, &log_tcp, err, sizeof err) != 0 ||
                   ota_lwip_log_serve(&lg, log_tcp, &ota_posix_crypto, hello, cfg.verifier) !=
                       0) {
            ota_lwip_logf(&lg, OTA_LOG_WARN, "logger", "no log viewers: %s", err);
        } else {
            ota_lwip_logf(&lg, OTA_LOG_INFO, "logger", "log viewers: port %u%s", (unsigned)lp,
                          lg.auth ? " (they prove the OTA password)" : "");
        }
    }

    const ota_server_ports_t ports = {.tcp = tcp, .slot = ota_lwip_flash_slot(&flash),
                                      .boot = boot, .crypto = &ota_posix_crypto,
                                      .log = &lg.port, .udp = udp};
    static ota_server_t OTA_NODE_OTA_ID;
    ota_server_t *const ota = &OTA_NODE_OTA_ID;
    ota_server_init(ota);
    if (ota_server_setup(ota, &ports, &cfg) != OTA_OK) {
        ota_lwip_logf(&lg, OTA_LOG_ERROR, "ota", "invalid OTA configuration");
        return 1;
    }
    char auth[96];
    snprintf(auth, sizeof auth, "%s%s%s%s", cfg.verifier ? "salted" : "",
             cfg.verifier && cfg.password ? " + " : "", cfg.password ? "legacy SHA-256" : "",
             cfg.password && cfg.allow_md5 ? "/MD5" : "");
    ota_lwip_logf(&lg, OTA_LOG_INFO, "ota", "listening on %s:%u (version %u, auth: %s)", ipbuf,
                  (unsigned)port, (unsigned)cfg.version, auth[0] ? auth : "none, no password");
    if (cfg.arduino_enabled)
        ota_lwip_logf(&lg, OTA_LOG_INFO, "ota", "ArduinoOTA on UDP port %u (%s)",
                      (unsigned)arduino_port,
                      cfg.arduino_auth == OTA_ARDUINO_AUTH_NONE  ? "no password"
                      : cfg.arduino_auth == OTA_ARDUINO_AUTH_MD5 ? "MD5 variant"
                                                                 : "SHA-256 variant");

    /* mDNS: network-level, on in safe mode too */
    static ota_mdns_t mdns;
    static ota_mdns_config_t mc;
    static ota_discovery_txt_t ota_txt, ar_txt;
    bool mdns_running = false;
    if (mdns_on && !ota_mdns_name_valid(mdns_name)) {
        ota_lwip_logf(&lg, OTA_LOG_WARN, "mdns", "off: the node name '%s' is not a host name "
                      "label: pass --mdns-name", mdns_name);
        mdns_on = false;
    }
    const ota_mdns_port_t *mdns_io = NULL;
    if (mdns_on && ota_lwip_net_mdns_open(&net, &mdns_io, err, sizeof err) != 0) {
        ota_lwip_logf(&lg, OTA_LOG_WARN, "mdns", "%s", err);
        mdns_on = false;
    }
    if (mdns_on) {
        static char txt_version[56];
        snprintf(txt_version, sizeof txt_version, "%s", fw_version);
        ota_discovery_ota_info_t info = {
            .name = mdns_name, .version = txt_version, .platform = "esp8266",
            .protocol = cfg.version,
            .auth = (cfg.verifier ? OTA_DISCOVERY_AUTH_SALTED : 0u) |
                    (cfg.password ? OTA_DISCOVERY_AUTH_SHA256 : 0u) |
                    (cfg.password && cfg.allow_md5 ? OTA_DISCOVERY_AUTH_MD5 : 0u)};
        bool txt_ok = ota_discovery_ota_txt(&ota_txt, &info) == 0;
        ota_mdns_config_default(&mc);
        mc.name = mdns_name;
        mc.services[0] = (ota_mdns_service_t){OTA_DISCOVERY_SERVICE_OTA, (uint16_t)port,
                                              ota_txt.strings};
        mc.n_services = 1;
        mc.ipv4_only = true; /* the port's sockets are IPv4 */
        if (cfg.arduino_enabled) {
            txt_ok = txt_ok && ota_discovery_arduino_txt(
                                   &ar_txt, "generic", cfg.arduino_auth != OTA_ARDUINO_AUTH_NONE) == 0;
            mc.services[1] = (ota_mdns_service_t){OTA_DISCOVERY_SERVICE_ARDUINO,
                                                  (uint16_t)arduino_port, ar_txt.strings};
            mc.n_services = 2;
        }
        if (txt_ok && ota_mdns_setup(&mdns, mdns_io, &ota_posix_crypto, &lg.port, &mc,
                                     sys_now()) == OTA_OK) {
            mdns_running = true;
            ota_lwip_logf(&lg, OTA_LOG_INFO, "mdns", "responder on for %s.local", mdns_name);
        } else {
            ota_lwip_logf(&lg, OTA_LOG_WARN, "mdns", "invalid mDNS configuration: responder off");
        }
    }

    /* 3. the demo component: not in safe mode */
    bool demo_on = !safe;
    if (safe) {
        ota_lwip_logf(&lg, OTA_LOG_WARN, "demo", "safe mode: the demo component stays off");
    } else if (crash_file != NULL && access(crash_file, F_OK) == 0) {
        ota_lwip_logf(&lg, OTA_LOG_ERROR, "demo", "%s exists: crashing during set-up", crash_file);
        fflush(stdout);
        abort();
    }

    uint64_t loops = 0, tick = 0;
    now = sys_now();
    uint32_t next_beat = now + heartbeat_ms, next_stats = now + stats_ms;
    while (!stop) {
        now = sys_now();
        ota_server_poll(ota, now);
        ota_safe_mode_poll(&sm, now, ota_server_update_in_progress(ota));
        ota_lwip_log_poll(&lg, now);
        if (mdns_running)
            ota_mdns_poll(&mdns, now);
        if (ota_lwip_flash_reboot_requested(&flash))
            break;
        if (demo_on && (int32_t)(now - next_beat) >= 0) {
            tick++;
            ota_lwip_logf(&lg, OTA_LOG_INFO, "demo", "heartbeat tick=%llu loops=%llu",
                          (unsigned long long)tick, (unsigned long long)loops);
            next_beat += heartbeat_ms;
            if ((int32_t)(now - next_beat) >= 0)
                next_beat = now + heartbeat_ms;
        }
        if (stats_ms != 0 && (int32_t)(now - next_stats) >= 0) {
            log_stats(&lg, &net);
            next_stats = now + stats_ms;
        }
        loops++;
        int32_t wait = demo_on ? (int32_t)(next_beat - now) : 1000;
        if (wait < 0)
            wait = 0;
        if (ota_server_active(ota) && wait > 5)
            wait = 5;
        if (mdns_running && (uint32_t)wait > ota_mdns_next_ms(&mdns, now))
            wait = (int32_t)ota_mdns_next_ms(&mdns, now);
        if (stats_ms != 0 && wait > (int32_t)stats_ms)
            wait = (int32_t)stats_ms;
        ota_lwip_net_wait(&net, (uint32_t)wait);
    }
    bool reboot = ota_lwip_flash_reboot_requested(&flash);
    if (stats_ms != 0)
        log_stats(&lg, &net); /* the maxima of this boot */
    if (mdns_running)
        ota_mdns_free(&mdns, sys_now());
    ota_server_free(ota);
    ota_lwip_log_close(&lg);
    sys_msleep(50); /* let the tcpip thread send the last segments (goodbye, final ack) */
    ota_lwip_net_free(&net);
    ota_lwip_flash_close(&flash);
    if (reboot) {
        ota_lwip_logf(&lg, OTA_LOG_INFO, "demo", "rebooting into the new image");
        return LWIP_NODE_EXIT_REBOOT;
    }
    ota_lwip_logf(&lg, OTA_LOG_INFO, "demo", "stopped");
    return 0;
}
