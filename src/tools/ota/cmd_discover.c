/*
 * cmd_discover.c - `ota discover`: the nodes that advertise OTA over mDNS / DNS-SD,
 * as a table or JSON.
 */
#include <getopt.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "client.h"
#include "commands.h"
#include "mdns_query.h"

#define DISCOVER_TIMEOUT_S 3.0

const char discover_usage[] =
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

int cmd_discover(int argc, char **argv)
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
