/*
 * host_lookup.h - finding a node's address before connecting: the system resolver
 * first, our own mDNS query for a .local name it cannot resolve; and the messages
 * of a failed lookup or upload.
 */
#ifndef OTA_TOOL_HOST_LOOKUP_H
#define OTA_TOOL_HOST_LOOKUP_H

#include <stdbool.h>
#include <stdio.h>

#include "client.h"
#include "mdns_query.h"

#define MDNS_RESOLVE_TIMEOUT_S 2.0 /* our own mDNS query for a ".local" name */

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

/** The host to connect to for name: name itself, or the address our mDNS query got
 *  (said on stderr unless quiet). NULL when a .local name resolves neither way: h says
 *  why, print_lookup_miss() prints it. After a success by mDNS a later call returns
 *  the same address without asking again. */
const char *lookup_host(host_lookup_t *h, const char *name, bool quiet);
void print_lookup_miss(FILE *out, const host_lookup_t *h, const char *name);
/** The result of an upload that never started because the name did not resolve. */
void lookup_failure(const host_lookup_t *h, ota_client_result_t *res);
/** "error:"/"hint:" lines of a failed upload to name (o->host may be its address). */
void report_failure(FILE *out, const ota_client_options_t *o, const ota_client_result_t *res,
                    const host_lookup_t *h, const char *name);

#endif
