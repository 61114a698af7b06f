/*
 * ota/mdns.h - the node's mDNS responder (RFC 6762) and DNS-SD advertiser
 * (RFC 6763): answers "<name>.local" (A and AAAA) and advertises the OTA
 * services as docs/protocol.md#discovery describes.
 *
 * Like the OTA server it is poll-driven, allocation-free and portable: datagrams,
 * addresses and randomness come through the mdns_* hooks of ota/port.h. The
 * firmware calls ota_mdns_poll() from its main loop; ota_mdns_next_ms() says how
 * soon the next call is due (for a loop that sleeps in select/poll).
 *
 * What it does, by the RFC:
 *  - probes its host and service instance names (3 queries, 250 ms apart, after a
 *    random 0-250 ms delay) before using them, on every interface, IPv4 and IPv6;
 *  - on a conflict (another host answers with different data for one of our
 *    names, or wins the simultaneous-probe tie-break) it picks the next free name:
 *    "livingroom" becomes "livingroom-2", then "-3"...; after 15 conflicts in 10 s
 *    it waits 5 s between attempts (RFC 6762 8.1);
 *  - announces twice, one second apart, with the cache-flush bit on unique records;
 *  - answers queries: multicast (shared records delayed 20-120 ms and aggregated,
 *    unique ones at once, each record at most once a second per interface),
 *    unicast when asked (QU) or to legacy resolvers (source port not 5353, which
 *    get the query's id and question echoed, TTL at most 10 s); adds the SRV, TXT
 *    and address records a browser needs next; honours known answers;
 *  - keeps defending its names after the probe, re-probes when its addresses
 *    change, and says goodbye (TTL 0) on ota_mdns_free();
 *  - listens only to the link (RFC 6762 11): datagrams whose source is off the
 *    arrival interface's subnets, and responses whose TTL is not 255, are ignored
 *    when the port can tell (mdns_recv_meta, ota_mdns_input_meta() below).
 * Not done: NSEC negative answers (optional in RFC 6762 6.1) and TC-bit known-answer
 * continuation across packets (the known answers of the first packet count).
 */
#ifndef OTA_MDNS_H
#define OTA_MDNS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "ota/dns.h"
#include "ota/opts.h"
#include "ota/port.h"

#define OTA_MDNS_PORT 5353u
#define OTA_MDNS_NAME_LEN 63 /* a host name label without ".local" */
/** Initializers of the mDNS groups' addresses (RFC 6762 3): 224.0.0.251, ff02::fb. */
#define OTA_MDNS_GROUP4_INIT {224, 0, 0, 251}
#define OTA_MDNS_GROUP6_INIT {0xff, 0x02, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xfb}

/** One advertised service: the instance is "<host name>.<type>.local". */
typedef struct ota_mdns_service {
    const char *type;        /**< "_ota._tcp", "_arduino._tcp" (without ".local") */
    uint16_t port;           /**< its TCP (or UDP) port, for the SRV record */
    const char *const *txt;  /**< "key=value" strings, NULL-terminated; NULL: none */
} ota_mdns_service_t;

typedef struct ota_mdns_config {
    const char *name;        /**< host name label, e.g. "livingroom" (ASCII, 1-63) */
    ota_mdns_service_t services[OTA_CFG_MDNS_MAX_SERVICES];
    size_t n_services;
    uint32_t host_ttl;       /**< A/AAAA/SRV TTL in seconds (default 120) */
    uint32_t service_ttl;    /**< PTR/TXT TTL in seconds (default 4500) */
    bool ipv4_only;          /**< no AAAA records: the services listen on IPv4 only,
                                  so an IPv6 address would only mislead uploaders
                                  (queries over IPv6 are still answered) */
} ota_mdns_config_t;

typedef enum ota_mdns_state {
    OTA_MDNS_OFF = 0,        /**< not set up, or stopped */
    OTA_MDNS_WAITING,        /**< no address yet, or backing off after conflicts */
    OTA_MDNS_PROBING,        /**< checking that the names are free */
    OTA_MDNS_ANNOUNCING,     /**< names are ours: announcing them */
    OTA_MDNS_RUNNING         /**< answering queries */
} ota_mdns_state_t;

/** Records, as bits of a set: the host's A and AAAA records, then per service its
 *  PTR (type -> instance), SRV, TXT and the enumeration PTR (RFC 6763 9). */
#define OTA_MDNS_RECORDS (2 + 4 * OTA_CFG_MDNS_MAX_SERVICES)

/** One interface and address family the responder talks on. */
typedef struct ota_mdns_link {
    uint32_t ifindex;
    uint8_t family;                        /* 4 or 6 */
    uint32_t pending, pending_add;         /* delayed answers (+ additional records) */
    uint32_t pending_at;
    uint32_t sent;                         /* records multicast here (last_sent valid) */
    uint32_t last_sent[OTA_MDNS_RECORDS];  /* when (rate limit, RFC 6762 6) */
} ota_mdns_link_t;

typedef struct ota_mdns {
    const ota_mdns_port_t *io;
    const ota_log_port_t *log;
    ota_mdns_config_t cfg;
    char name[OTA_MDNS_NAME_LEN + 1];  /* the name in use: cfg.name or "<cfg.name>-N" */
    uint32_t suffix;                   /* N of the name in use, 1 = none */
    ota_mdns_state_t state;
    uint32_t next_at;                  /* when the next probe/announcement is due */
    unsigned step;                     /* probes or announcements sent */
    uint32_t conflicts;                /* conflicts in the current 10 s window */
    uint32_t conflict_window_at;
    uint32_t addrs_at;                 /* next re-read of the addresses */
    ota_ip_t addrs[OTA_CFG_MDNS_MAX_ADDRS];
    size_t n_addrs;
    ota_mdns_link_t links[OTA_CFG_MDNS_MAX_ADDRS];
    size_t n_links;
    uint32_t rng;                      /* xorshift state, seeded from crypto->random */
    uint8_t ignored_logged;            /* datagrams ignored off the link (bit 0) or
                                          for their TTL (bit 1): a line was logged */
    uint32_t ignored_log_at[2], ignored_quiet[2]; /* when, and how many dropped since */
    uint8_t txt[OTA_CFG_MDNS_MAX_SERVICES][OTA_CFG_MDNS_TXT_SIZE]; /* TXT rdata */
    uint16_t txt_len[OTA_CFG_MDNS_MAX_SERVICES];
    uint8_t rx[OTA_CFG_MDNS_RX_SIZE];
    uint8_t tx[OTA_CFG_MDNS_TX_SIZE];
} ota_mdns_t;

/** Is name a host name label the responder accepts (1-63 ASCII letters, digits and
 *  hyphens, no hyphen at either end; RFC 1123 2.1)? ota_mdns_setup() checks it too;
 *  a firmware can use it to say so before. */
bool ota_mdns_name_valid(const char *name);

/** Defaults: no name, no services, TTLs 120 / 4500. */
void ota_mdns_config_default(ota_mdns_config_t *cfg);

/** Start the responder. The config and the strings it points to must outlive m.
 *  \return OTA_OK; OTA_ERR_INVALID_ARG (bad name or service type, a TXT string
 *  longer than 255 or all of them longer than OTA_CFG_MDNS_TXT_SIZE, the mdns
 *  hooks missing, or the records cannot fit one OTA_CFG_MDNS_TX_SIZE datagram). */
int ota_mdns_setup(ota_mdns_t *m, const ota_mdns_port_t *io, const ota_crypto_port_t *crypto,
                   const ota_log_port_t *log, const ota_mdns_config_t *cfg, uint32_t now);

/** Receive and answer what arrived, send what is due. Never blocks. */
void ota_mdns_poll(ota_mdns_t *m, uint32_t now);

/** Handle one received datagram (ota_mdns_poll() calls it for each one; public
 *  for tests and fuzzing). Malformed datagrams are ignored. Knows nothing of the
 *  datagram's way here: ota_mdns_input_meta() with an all-zero meta. */
void ota_mdns_input(ota_mdns_t *m, const uint8_t *msg, size_t len, const ota_ip_t *from,
                    uint16_t from_port, uint32_t now);

/** ota_mdns_input() with what the port knows of the datagram (the mdns_recv_meta
 *  hook of ota/port.h), for the on-link rule of RFC 6762 11:
 *  - meta->on_link == OTA_MDNS_LINK_OFF (the source is on none of the arrival
 *    interface's subnets): the datagram is ignored, response or query, multicast
 *    or unicast: no rename, no re-probe, no tie-break, no answer (an off-link
 *    querier never gets a unicast reply larger than its query);
 *  - a response with a known TTL / hop limit other than 255 (it crossed a router):
 *    ignored; a query with one is answered (legacy resolvers send with 64, or 1 to
 *    the group), but its authority records (a probe) do not count for the
 *    simultaneous-probe tie-break;
 *  - unknown facts (OTA_MDNS_LINK_UNKNOWN, !ttl_known) count as on the link, as
 *    before the rule (a port that cannot tell keeps working).
 *  Ignored datagrams are logged at debug level, per reason one line per 10 s at
 *  most (with the count of those not logged). */
void ota_mdns_input_meta(ota_mdns_t *m, const uint8_t *msg, size_t len, const ota_ip_t *from,
                         uint16_t from_port, const ota_mdns_rx_meta_t *meta, uint32_t now);

/** Milliseconds until ota_mdns_poll() has timed work to do (at most 1000). */
uint32_t ota_mdns_next_ms(const ota_mdns_t *m, uint32_t now);

/** The host name label in use (changes after a conflict). */
const char *ota_mdns_name(const ota_mdns_t *m);

ota_mdns_state_t ota_mdns_state(const ota_mdns_t *m);

/** Say goodbye (records with TTL 0) and stop; the responder is off afterwards
 *  (setup starts it again). Safe to call twice. */
void ota_mdns_free(ota_mdns_t *m, uint32_t now);

#endif /* OTA_MDNS_H */
