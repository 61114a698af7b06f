/*
 * mdns_query.h - the host tool's mDNS client (RFC 6762) and DNS-SD browser
 * (RFC 6763): `ota upload livingroom.local` on a machine whose resolver does not
 * speak mDNS, and `ota discover`.
 *
 * Two layers:
 *  - sockets (ota_mdns_resolve(), ota_mdns_browse()): one-shot "legacy unicast"
 *    queries (RFC 6762 5.1, 6.7) from an ephemeral UDP port, multicast to
 *    224.0.0.251:5353 and [ff02::fb]:5353 on every interface of the rule in
 *    src/port/posix/mcast.h (the node's: up, running, multicast-capable, not
 *    loopback, with an address to send from; sockets and interface list come from
 *    there too); responders answer by unicast to that port, so nothing
 *    has to listen on port 5353 here and no daemon is needed;
 *  - a pure table (ota_mdns_table_*): what the received responses say, fed one
 *    datagram at a time, merged into one node per host. No sockets, no clock: the
 *    unit tests feed it crafted packets.
 *
 * Messages are read and written with the core's DNS codec (ota/dns.h); a
 * malformed response is ignored as a whole. Every table is fixed-size: extra
 * instances, hosts or addresses beyond the limits below are dropped.
 */
#ifndef OTA_TOOLS_OTA_MDNS_QUERY_H
#define OTA_TOOLS_OTA_MDNS_QUERY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "ota/dns.h"

#define OTA_MDNSQ_MAX_NODES 64      /* nodes of one browse */
#define OTA_MDNSQ_MAX_INSTANCES 128 /* service instances (two services per node) */
#define OTA_MDNSQ_MAX_HOSTS 96      /* host names with address records */
#define OTA_MDNSQ_MAX_ADDRS 8       /* addresses kept per host */
#define OTA_MDNSQ_MAX_IFS 32        /* interfaces queried */
#define OTA_MDNSQ_TXT_MAX 64        /* a TXT value kept (longer ones are cut) */
/* "fe80::1234:5678:9abc:def0%" + an interface name */
#define OTA_MDNSQ_ADDR_TEXT_MAX 64

/** The services a browse asks for; index = ota_mdns_instance_t.service. */
typedef enum ota_mdns_service_kind {
    OTA_MDNSQ_SVC_OTA = 0,     /* "_ota._tcp.local": the native protocol */
    OTA_MDNSQ_SVC_ARDUINO = 1, /* "_arduino._tcp.local": ArduinoOTA */
    OTA_MDNSQ_SVC_COUNT
} ota_mdns_service_kind_t;

/** "_ota._tcp", "_arduino._tcp" (without ".local"). */
const char *ota_mdns_service_name(ota_mdns_service_kind_t kind);

/** One address of a host. scope is the interface index an IPv6 link-local
 *  address was received on (0 for every other address): connecting to fe80::
 *  needs it. */
typedef struct ota_mdns_addr {
    uint8_t family; /* 4 or 6 */
    uint8_t bytes[16];
    uint32_t scope;
} ota_mdns_addr_t;

/** Text form of an address: "10.77.0.2", "fd00::2", "fe80::2%eth0" (the scope as
 *  an interface name, or its number when it has none). Accepted by getaddrinfo()
 *  as a numeric host. */
void ota_mdns_addr_text(const ota_mdns_addr_t *a, char *out, size_t cap);

/** Password knowledge of a node, from its TXT records. */
typedef enum ota_mdns_password {
    OTA_MDNSQ_PW_UNKNOWN = 0,
    OTA_MDNSQ_PW_NO,
    OTA_MDNSQ_PW_YES
} ota_mdns_password_t;

/* ------------------------------------------------------------ the pure table */

/** A service instance ("livingroom._ota._tcp.local") and what its SRV and TXT
 *  records said. */
typedef struct ota_mdns_instance {
    uint8_t name[OTA_DNS_NAME_MAX]; /* flat */
    uint8_t service;                /* ota_mdns_service_kind_t */
    bool gone;                      /* a goodbye (PTR with TTL 0) came after it */
    bool have_srv, have_txt;
    uint16_t port;                  /* SRV */
    uint8_t target[OTA_DNS_NAME_MAX]; /* SRV target host, flat */
    uint8_t asked;                  /* follow-up queries sent for its SRV/TXT */
    /* TXT keys we use (docs/discovery.md); empty when absent */
    char version[OTA_MDNSQ_TXT_MAX];
    char platform[OTA_MDNSQ_TXT_MAX];
    char auth[OTA_MDNSQ_TXT_MAX];   /* _ota._tcp: "none", "salted,sha256", ... */
    bool has_auth;
    ota_mdns_password_t auth_upload; /* _arduino._tcp: auth_upload=yes|no */
} ota_mdns_instance_t;

/** A host name and the addresses its A/AAAA records gave. */
typedef struct ota_mdns_host {
    uint8_t name[OTA_DNS_NAME_MAX]; /* flat */
    ota_mdns_addr_t addrs[OTA_MDNSQ_MAX_ADDRS];
    unsigned n_addrs;
    uint8_t asked; /* follow-up A/AAAA queries sent for it */
} ota_mdns_host_t;

/** Everything the responses of one resolve or browse said. About 135 KB: allocate
 *  it (or make it static), not on a small stack. */
typedef struct ota_mdns_table {
    ota_mdns_instance_t instances[OTA_MDNSQ_MAX_INSTANCES];
    unsigned n_instances;
    ota_mdns_host_t hosts[OTA_MDNSQ_MAX_HOSTS];
    unsigned n_hosts;
    unsigned packets, malformed; /* responses used, responses ignored as malformed */
} ota_mdns_table_t;

/** An empty table. */
void ota_mdns_table_init(ota_mdns_table_t *t);

/** Feed one received datagram. ifindex is the interface it arrived on (the scope
 *  given to IPv6 link-local addresses in it). What is used: PTR records of the two
 *  browsed service types (a new instance, or with TTL 0 a goodbye), SRV and TXT
 *  records of instances of those types, A and AAAA records of any host; other
 *  records, and records with TTL 0 other than a PTR goodbye, are skipped.
 *  \return 1 (a response, used) or 0 (not a response: a query; ignored), a yes/no
 *  by design; OTA_ERR_MALFORMED (ignored as a whole, the table is unchanged). */
int ota_mdns_table_feed(ota_mdns_table_t *t, const uint8_t *msg, size_t len, uint32_t ifindex);

/** The host named by the flat name, or NULL. */
const ota_mdns_host_t *ota_mdns_table_host(const ota_mdns_table_t *t, const uint8_t *flat);

/** A query for what the table still misses: SRV and TXT of instances without them,
 *  A and AAAA of SRV targets without an address, each item asked at most max_asks
 *  times (the counts are kept in the table, so this marks what it asks). As many
 *  questions as fit in cap bytes.
 *  \return the message length, 0 when nothing is missing (or cap is too small). */
size_t ota_mdns_table_followup(ota_mdns_table_t *t, uint8_t *buf, size_t cap, uint16_t id,
                               unsigned max_asks);

/** One node: the hosts behind the instances, merged by SRV target. */
typedef struct ota_mdns_node {
    char name[OTA_DNS_LABEL_MAX + 1];  /* host label, "livingroom" */
    char host[2 * OTA_DNS_NAME_MAX];   /* "livingroom.local" (escaped text) */
    ota_mdns_addr_t addrs[OTA_MDNSQ_MAX_ADDRS]; /* IPv4 first, then IPv6 */
    unsigned n_addrs;
    uint16_t port;         /* native OTA port; the ArduinoOTA port when only that is
                              advertised */
    uint16_t arduino_port; /* 0: no _arduino._tcp */
    bool services[OTA_MDNSQ_SVC_COUNT];
    char version[OTA_MDNSQ_TXT_MAX];  /* empty: unknown */
    char platform[OTA_MDNSQ_TXT_MAX]; /* empty: unknown */
    char auth[OTA_MDNSQ_TXT_MAX];     /* _ota._tcp TXT auth; valid when has_auth */
    bool has_auth;
    ota_mdns_password_t password;     /* from auth, else from auth_upload */
} ota_mdns_node_t;

/** Merge the table into nodes: one per SRV target host, sorted by name (ignoring
 *  case, then host). Instances without an SRV record, with the SRV target "."
 *  (service not offered), and goodbyes, are left out.
 *  \return the number of nodes written (at most max). */
size_t ota_mdns_table_nodes(const ota_mdns_table_t *t, ota_mdns_node_t *out, size_t max);

/* ------------------------------------------------------------ over the network */

/** true for "x.local" and "x.local." (any case): names only mDNS can resolve. */
bool ota_mdns_is_local_name(const char *host);

/** Resolve a ".local" host name (A and AAAA). Queries go out at once, after 0.5 s
 *  and after 1 s; after the first answer the query keeps listening 100 ms for the
 *  other family. Thread-safe (no shared state).
 *  \return the number of addresses written to out (IPv4 first; a count by design),
 *  0 when nobody answered within timeout_s; OTA_ERR_IO when no query could be sent
 *  (no interface of the rule in mcast.h, or socket errors), OTA_ERR_INVALID_ARG
 *  (host is not a valid name). */
int ota_mdns_resolve(const char *host, double timeout_s, ota_mdns_addr_t *out, size_t max);

/** What a browse did besides collecting answers, for the "nobody answered" words. */
typedef struct ota_mdns_browse_info {
    char ifnames[256];   /* the interfaces queried, "eth0, wlan0" */
    unsigned n_ifs;      /* how many (0: no interface of the rule in mcast.h) */
    unsigned sent;       /* datagrams sent */
} ota_mdns_browse_info_t;

/** Browse _ota._tcp and _arduino._tcp for timeout_s seconds (the PTR queries go
 *  out at once and are repeated after 1 s and 2 s; missing SRV/TXT/addresses are
 *  asked for as soon as an answer lacks them) into t, which the caller then merges
 *  with ota_mdns_table_nodes(). info may be NULL.
 *  \return 0, OTA_ERR_IO (no query could be sent). */
int ota_mdns_browse(ota_mdns_table_t *t, double timeout_s, ota_mdns_browse_info_t *info);

#endif /* OTA_TOOLS_OTA_MDNS_QUERY_H */
