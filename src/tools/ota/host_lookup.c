/*
 * host_lookup.c - a node's address from the system resolver or our mDNS query
 * (host_lookup.h).
 */
#include "host_lookup.h"

#include <netdb.h>
#include <string.h>

#include "messages.h"


/* The host to connect to for name: name itself, or the address our mDNS query got
 * (saying so on stderr unless quiet). NULL when a .local name resolves neither way:
 * h says why, print_lookup_miss() prints it. A later call after a success by mDNS
 * returns the same address without asking again. */
const char *lookup_host(host_lookup_t *h, const char *name, bool quiet)
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

void print_lookup_miss(FILE *out, const host_lookup_t *h, const char *name)
{
    ota_print_mdns_miss(out, name, h->detail, MDNS_RESOLVE_TIMEOUT_S, h->no_query);
}

/* The result of an upload that never started because the name did not resolve. */
void lookup_failure(const host_lookup_t *h, ota_client_result_t *res)
{
    memset(res, 0, sizeof *res);
    res->failure = OTA_FAIL_RESOLVE;
    res->phase = OTA_PHASE_RESOLVE;
    snprintf(res->detail, sizeof res->detail, "%s", h->detail);
}

/* "error:"/"hint:" lines of a failed upload to name (o->host may be its address). */
void report_failure(FILE *out, const ota_client_options_t *o,
                           const ota_client_result_t *res, const host_lookup_t *h,
                           const char *name)
{
    if (h->missed)
        print_lookup_miss(out, h, name);
    else
        ota_print_failure(out, o, res);
}
