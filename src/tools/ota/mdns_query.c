/*
 * mdns_query.c - the host tool's mDNS resolver and DNS-SD browser (see
 * mdns_query.h). The first half is the pure table (responses in, nodes out); the
 * second half the sockets and the timing of the queries.
 */
#include "mdns_query.h"

#include <arpa/inet.h>
#include <errno.h>
#include <net/if.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "mcast.h"
#include "ota/discovery.h"
#include "ota/errors.h"
#include "ota/mdns.h"

static const char *const service_names[OTA_MDNSQ_SVC_COUNT] = {OTA_DISCOVERY_SERVICE_OTA,
                                                                 OTA_DISCOVERY_SERVICE_ARDUINO};

const char *ota_mdns_service_name(ota_mdns_service_kind_t kind)
{
    return (unsigned)kind < OTA_MDNSQ_SVC_COUNT ? service_names[kind] : "?";
}

/* The flat name of a dotted text name (out is OTA_DNS_NAME_MAX bytes).
 * \return its length, 0 when it is not a valid name. */
static size_t flat_name(uint8_t *out, const char *dotted)
{
    out[0] = 0;
    return ota_dns_name_append_dotted(out, dotted);
}

/* The flat name of "<service>.local". */
static void service_flat(ota_mdns_service_kind_t kind, uint8_t *out)
{
    char dotted[32];
    snprintf(dotted, sizeof dotted, "%s.local", service_names[kind]);
    (void)flat_name(out, dotted);
}

static uint16_t get16(const uint8_t *p)
{
    return (uint16_t)((uint16_t)p[0] << 8 | p[1]);
}

/* Copy n bytes of wire text into out (cap > 0) as valid UTF-8 with no control
 * characters: what a TXT value or a label may hold goes to a terminal and into JSON.
 * Control bytes and invalid sequences become '?'; the copy stops at the last whole
 * character that fits. */
static void copy_text(char *out, size_t cap, const uint8_t *in, size_t n)
{
    size_t o = 0, i = 0;
    while (i < n) {
        uint8_t c = in[i];
        size_t len = c < 0x80 ? 1 : (c & 0xE0) == 0xC0 ? 2 : (c & 0xF0) == 0xE0 ? 3
                                   : (c & 0xF8) == 0xF0 ? 4 : 0;
        bool ok = len > 0 && i + len <= n;
        for (size_t k = 1; ok && k < len; k++)
            ok = (in[i + k] & 0xC0) == 0x80;
        /* no overlong two-byte forms, no surrogates, nothing above U+10FFFF */
        if (ok && len == 2 && c < 0xC2)
            ok = false;
        if (ok && len == 3 && ((c == 0xE0 && in[i + 1] < 0xA0) || (c == 0xED && in[i + 1] >= 0xA0)))
            ok = false;
        if (ok && len == 4 && ((c == 0xF0 && in[i + 1] < 0x90) || c > 0xF4 ||
                               (c == 0xF4 && in[i + 1] >= 0x90)))
            ok = false;
        if (!ok || (len == 1 && (c < 0x20 || c == 0x7F))) {
            if (o + 1 >= cap)
                break;
            out[o++] = '?';
            i += ok ? len : 1;
            continue;
        }
        if (o + len >= cap)
            break;
        memcpy(out + o, in + i, len);
        o += len;
        i += len;
    }
    out[o] = '\0';
}

/* ------------------------------------------------------------ the table */

void ota_mdns_table_init(ota_mdns_table_t *t)
{
    memset(t, 0, sizeof *t);
}

/* Which browsed service type the flat name is, or -1. */
static int service_of_type(const uint8_t *flat)
{
    uint8_t svc[OTA_DNS_NAME_MAX];
    for (int k = 0; k < OTA_MDNSQ_SVC_COUNT; k++) {
        service_flat((ota_mdns_service_kind_t)k, svc);
        if (ota_dns_name_eq(flat, svc))
            return k;
    }
    return -1;
}

/* Which browsed service the flat instance name ("x._ota._tcp.local") belongs to,
 * or -1. */
static int service_of_instance(const uint8_t *flat)
{
    if (flat[0] == 0)
        return -1;
    return service_of_type(ota_dns_name_parent(flat));
}

static ota_mdns_instance_t *find_instance(ota_mdns_table_t *t, const uint8_t *flat)
{
    for (unsigned i = 0; i < t->n_instances; i++)
        if (ota_dns_name_eq(t->instances[i].name, flat))
            return &t->instances[i];
    return NULL;
}

/* The instance, added when new; NULL when the table is full. */
static ota_mdns_instance_t *add_instance(ota_mdns_table_t *t, const uint8_t *flat, int service)
{
    ota_mdns_instance_t *in = find_instance(t, flat);
    if (in != NULL || t->n_instances >= OTA_MDNSQ_MAX_INSTANCES)
        return in;
    in = &t->instances[t->n_instances++];
    memset(in, 0, sizeof *in);
    memcpy(in->name, flat, ota_dns_name_len(flat));
    in->service = (uint8_t)service;
    return in;
}

/* The index of the host named flat, or t->n_hosts. */
static unsigned host_index(const ota_mdns_table_t *t, const uint8_t *flat)
{
    unsigned i = 0;
    while (i < t->n_hosts && !ota_dns_name_eq(t->hosts[i].name, flat))
        i++;
    return i;
}

static ota_mdns_host_t *find_host(ota_mdns_table_t *t, const uint8_t *flat)
{
    unsigned i = host_index(t, flat);
    return i < t->n_hosts ? &t->hosts[i] : NULL;
}

const ota_mdns_host_t *ota_mdns_table_host(const ota_mdns_table_t *t, const uint8_t *flat)
{
    unsigned i = host_index(t, flat);
    return i < t->n_hosts ? &t->hosts[i] : NULL;
}

static ota_mdns_host_t *add_host(ota_mdns_table_t *t, const uint8_t *flat)
{
    ota_mdns_host_t *h = find_host(t, flat);
    if (h != NULL || t->n_hosts >= OTA_MDNSQ_MAX_HOSTS)
        return h;
    h = &t->hosts[t->n_hosts++];
    memset(h, 0, sizeof *h);
    memcpy(h->name, flat, ota_dns_name_len(flat));
    return h;
}

static void add_addr(ota_mdns_host_t *h, const ota_mdns_addr_t *a)
{
    for (unsigned i = 0; i < h->n_addrs; i++)
        if (h->addrs[i].family == a->family && h->addrs[i].scope == a->scope &&
            memcmp(h->addrs[i].bytes, a->bytes, 16) == 0)
            return;
    if (h->n_addrs < OTA_MDNSQ_MAX_ADDRS)
        h->addrs[h->n_addrs++] = *a;
}

/* The TXT strings of rdata [at, end): check them, and when in is not NULL keep the
 * keys we use. Keys compare case-insensitively (RFC 6763 6.4); a key without '='
 * is a boolean attribute, which no key we use is. \return 0, OTA_ERR_MALFORMED. */
static int read_txt(const uint8_t *msg, size_t at, size_t end, ota_mdns_instance_t *in)
{
    if (in != NULL) {
        in->have_txt = true; /* a new TXT record replaces the old one as a whole */
        in->version[0] = in->platform[0] = in->auth[0] = '\0';
        in->has_auth = false;
        in->auth_upload = OTA_MDNSQ_PW_UNKNOWN;
    }
    while (at < end) {
        size_t n = msg[at];
        if (at + 1 + n > end)
            return OTA_ERR_MALFORMED;
        const uint8_t *s = msg + at + 1;
        at += 1 + n;
        if (in == NULL)
            continue;
        const uint8_t *v = NULL;
        size_t vlen = 0;
        switch (ota_discovery_txt_key(s, n, &v, &vlen)) { /* the core's one TXT parser */
        case OTA_TXT_KEY_VERSION: copy_text(in->version, sizeof in->version, v, vlen); break;
        case OTA_TXT_KEY_PLATFORM: copy_text(in->platform, sizeof in->platform, v, vlen); break;
        case OTA_TXT_KEY_AUTH:
            copy_text(in->auth, sizeof in->auth, v, vlen);
            in->has_auth = true;
            break;
        case OTA_TXT_KEY_AUTH_UPLOAD: {
            int yn = ota_discovery_yes_no(v, vlen);
            if (yn >= 0)
                in->auth_upload = yn ? OTA_MDNSQ_PW_YES : OTA_MDNSQ_PW_NO;
            break;
        }
        default: break;
        }
    }
    return 0;
}

/* The name that is the whole rdata of a record (PTR) or its tail from off (SRV).
 * \return 0, OTA_ERR_MALFORMED (malformed, or it does not end where the rdata does). */
static int read_rdata_name(const uint8_t *msg, size_t len, const ota_dns_record_t *rec,
                           size_t off, uint8_t *out)
{
    size_t end = 0;
    if (rec->rdlength < off + 1 ||
        ota_dns_read_name(msg, len, rec->rdata + off, out, &end) < 0 ||
        end != rec->rdata + rec->rdlength)
        return OTA_ERR_MALFORMED;
    return 0;
}

static bool link_local6(const uint8_t *a)
{
    return a[0] == 0xFE && (a[1] & 0xC0) == 0x80;
}

/* One record of a response: check it, and when commit is set, note it in t.
 * \return 0, OTA_ERR_MALFORMED (malformed record data). */
static int use_record(ota_mdns_table_t *t, const uint8_t *msg, size_t len,
                      const ota_dns_record_t *rec, uint32_t ifindex, bool commit)
{
    uint8_t name[OTA_DNS_NAME_MAX];
    const uint8_t *rd = msg + rec->rdata;
    if ((rec->rclass & ~OTA_DNS_CLASS_TOP) != OTA_DNS_CLASS_IN)
        return 0;
    int svc;
    switch (rec->type) {
    case OTA_DNS_TYPE_PTR: {
        if (read_rdata_name(msg, len, rec, 0, name) != 0)
            return OTA_ERR_MALFORMED;
        svc = service_of_type(rec->name);
        /* only "<instance>.<the type>" is an instance of the type */
        if (!commit || svc < 0 || service_of_instance(name) != svc)
            return 0;
        if (rec->ttl == 0) { /* goodbye: the instance is going away */
            ota_mdns_instance_t *gone = find_instance(t, name);
            if (gone != NULL)
                gone->gone = true;
            return 0;
        }
        ota_mdns_instance_t *in = add_instance(t, name, svc);
        if (in != NULL)
            in->gone = false;
        return 0;
    }
    case OTA_DNS_TYPE_SRV:
        /* priority, weight, port, target */
        if (rec->rdlength < 7 || read_rdata_name(msg, len, rec, 6, name) != 0)
            return OTA_ERR_MALFORMED;
        svc = service_of_instance(rec->name);
        if (commit && svc >= 0 && rec->ttl != 0) {
            ota_mdns_instance_t *s = add_instance(t, rec->name, svc);
            if (s != NULL) {
                s->have_srv = true;
                s->port = get16(rd + 4);
                memcpy(s->target, name, ota_dns_name_len(name));
            }
        }
        return 0;
    case OTA_DNS_TYPE_TXT:
        svc = service_of_instance(rec->name);
        return read_txt(msg, rec->rdata, rec->rdata + rec->rdlength,
                        commit && svc >= 0 && rec->ttl != 0 ? add_instance(t, rec->name, svc)
                                                            : NULL);
    case OTA_DNS_TYPE_A:
    case OTA_DNS_TYPE_AAAA: {
        bool v4 = rec->type == OTA_DNS_TYPE_A;
        if (rec->rdlength != (v4 ? 4 : 16))
            return OTA_ERR_MALFORMED;
        if (!commit || rec->ttl == 0)
            return 0;
        ota_mdns_addr_t a;
        memset(&a, 0, sizeof a);
        a.family = v4 ? 4 : 6;
        memcpy(a.bytes, rd, rec->rdlength);
        a.scope = !v4 && link_local6(a.bytes) ? ifindex : 0;
        ota_mdns_host_t *h = add_host(t, rec->name);
        if (h != NULL)
            add_addr(h, &a);
        return 0;
    }
    default:
        return 0; /* NSEC, HINFO, ...: not ours to read */
    }
}

int ota_mdns_table_feed(ota_mdns_table_t *t, const uint8_t *msg, size_t len, uint32_t ifindex)
{
    ota_dns_reader_t r;
    ota_dns_record_t rec;
    if (ota_dns_reader_init(&r, msg, len) != 0) {
        t->malformed++;
        return OTA_ERR_MALFORMED;
    }
    /* queries, other opcodes and responses with an error code (RFC 6762 18.11)
     * are not answers */
    if ((r.hdr.flags & OTA_DNS_FLAG_QR) == 0 || (r.hdr.flags & OTA_DNS_OPCODE_MASK) != 0 ||
        (r.hdr.flags & 0x000Fu) != 0)
        return 0;
    /* first check the whole message, then use it: a malformed one changes nothing */
    for (int commit = 0; commit <= 1; commit++) {
        int rc;
        ota_dns_reader_init(&r, msg, len);
        while ((rc = ota_dns_next_record(&r, &rec)) == 1)
            if (use_record(t, msg, len, &rec, ifindex, commit != 0) != 0) {
                rc = OTA_ERR_MALFORMED;
                break;
            }
        if (rc < 0) {
            t->malformed++;
            return OTA_ERR_MALFORMED;
        }
    }
    t->packets++;
    return 1;
}

size_t ota_mdns_table_followup(ota_mdns_table_t *t, uint8_t *buf, size_t cap, uint16_t id,
                               unsigned max_asks)
{
    ota_dns_writer_t w;
    bool asked_now[OTA_MDNSQ_MAX_HOSTS] = {false};
    unsigned n = 0;
    if (cap < OTA_DNS_HEADER_LEN)
        return 0;
    ota_dns_w_init(&w, buf, cap, id, 0);
    /* SRV and TXT of instances a PTR named without them */
    for (unsigned i = 0; i < t->n_instances; i++) {
        ota_mdns_instance_t *in = &t->instances[i];
        if (in->gone || (in->have_srv && (in->have_txt || in->target[0] == 0)) ||
            in->asked >= max_asks)
            continue;
        ota_dns_mark_t m = ota_dns_w_mark(&w);
        if (!in->have_srv)
            ota_dns_w_question(&w, in->name, OTA_DNS_TYPE_SRV, OTA_DNS_CLASS_IN);
        if (!in->have_txt)
            ota_dns_w_question(&w, in->name, OTA_DNS_TYPE_TXT, OTA_DNS_CLASS_IN);
        if (!ota_dns_w_ok(&w)) {
            ota_dns_w_rewind(&w, &m);
            break;
        }
        in->asked++;
        n++;
    }
    /* the addresses of the hosts the SRV records named */
    for (unsigned i = 0; i < t->n_instances && ota_dns_w_ok(&w); i++) {
        ota_mdns_instance_t *in = &t->instances[i];
        if (in->gone || !in->have_srv || in->target[0] == 0)
            continue;
        ota_mdns_host_t *h = add_host(t, in->target);
        if (h == NULL || h->n_addrs > 0 || h->asked >= max_asks ||
            asked_now[h - t->hosts])
            continue;
        ota_dns_mark_t m = ota_dns_w_mark(&w);
        ota_dns_w_question(&w, h->name, OTA_DNS_TYPE_A, OTA_DNS_CLASS_IN);
        ota_dns_w_question(&w, h->name, OTA_DNS_TYPE_AAAA, OTA_DNS_CLASS_IN);
        if (!ota_dns_w_ok(&w)) {
            ota_dns_w_rewind(&w, &m);
            break;
        }
        asked_now[h - t->hosts] = true;
        h->asked++;
        n++;
    }
    return n > 0 ? ota_dns_w_finish(&w) : 0;
}

/* IPv4 before IPv6, otherwise in the order they came (a stable insertion sort). */
static void sort_addrs(ota_mdns_addr_t *a, unsigned n)
{
    for (unsigned i = 1; i < n; i++) {
        ota_mdns_addr_t x = a[i];
        unsigned j = i;
        while (j > 0 && a[j - 1].family > x.family) {
            a[j] = a[j - 1];
            j--;
        }
        a[j] = x;
    }
}

static int node_cmp(const void *pa, const void *pb)
{
    const ota_mdns_node_t *a = pa, *b = pb;
    int c = strcasecmp(a->name, b->name);
    if (c == 0)
        c = strcmp(a->name, b->name);
    return c != 0 ? c : strcmp(a->host, b->host);
}

size_t ota_mdns_table_nodes(const ota_mdns_table_t *t, ota_mdns_node_t *out, size_t max)
{
    const uint8_t *keys[OTA_MDNSQ_MAX_NODES]; /* each node's SRV target */
    size_t n = 0;
    if (max > OTA_MDNSQ_MAX_NODES)
        max = OTA_MDNSQ_MAX_NODES;
    for (unsigned i = 0; i < t->n_instances; i++) {
        const ota_mdns_instance_t *in = &t->instances[i];
        if (in->gone || !in->have_srv || in->target[0] == 0)
            continue; /* a target of "." says the service is not offered (RFC 2782) */
        size_t k = 0;
        while (k < n && !ota_dns_name_eq(keys[k], in->target))
            k++;
        ota_mdns_node_t *node = &out[k];
        if (k == n) {
            if (n >= max)
                continue;
            keys[n++] = in->target;
            memset(node, 0, sizeof *node);
            copy_text(node->name, sizeof node->name, in->target + 1, in->target[0]);
            if (ota_dns_name_to_text(in->target, node->host, sizeof node->host) != 0)
                node->host[0] = '\0'; /* cannot happen: host holds any escaped name */
            const ota_mdns_host_t *h = ota_mdns_table_host(t, in->target);
            if (h != NULL) {
                memcpy(node->addrs, h->addrs, h->n_addrs * sizeof h->addrs[0]);
                node->n_addrs = h->n_addrs;
                sort_addrs(node->addrs, node->n_addrs);
            }
        }
        node->services[in->service] = true;
        if (in->service == OTA_MDNSQ_SVC_OTA) {
            node->port = in->port;
            if (in->have_txt) {
                memcpy(node->version, in->version, sizeof node->version);
                memcpy(node->platform, in->platform, sizeof node->platform);
                memcpy(node->auth, in->auth, sizeof node->auth);
                node->has_auth = in->has_auth;
            }
        } else {
            node->arduino_port = in->port;
            if (in->have_txt && in->auth_upload != OTA_MDNSQ_PW_UNKNOWN)
                node->password = in->auth_upload; /* unless the native TXT says, below */
        }
    }
    for (size_t k = 0; k < n; k++) {
        ota_mdns_node_t *node = &out[k];
        if (node->has_auth && node->auth[0] != '\0') {
            unsigned methods = 0;
            bool none = ota_discovery_auth_parse((const uint8_t *)node->auth, strlen(node->auth),
                                                 &methods) == 0 &&
                        methods == 0;
            node->password = none ? OTA_MDNSQ_PW_NO : OTA_MDNSQ_PW_YES;
        }
        if (!node->services[OTA_MDNSQ_SVC_OTA])
            node->port = node->arduino_port;
    }
    qsort(out, n, sizeof out[0], node_cmp);
    return n;
}

void ota_mdns_addr_text(const ota_mdns_addr_t *a, char *out, size_t cap)
{
    char text[INET6_ADDRSTRLEN] = "?";
    inet_ntop(a->family == 4 ? AF_INET : AF_INET6, a->bytes, text, sizeof text);
    if (a->family == 6 && a->scope != 0) {
        char ifname[IF_NAMESIZE];
        if (if_indextoname(a->scope, ifname) != NULL)
            snprintf(out, cap, "%s%%%s", text, ifname);
        else
            snprintf(out, cap, "%s%%%u", text, (unsigned)a->scope);
    } else {
        snprintf(out, cap, "%s", text);
    }
}

bool ota_mdns_is_local_name(const char *host)
{
    size_t n = strlen(host);
    if (n > 0 && host[n - 1] == '.')
        n--;
    return n > 6 && strncasecmp(host + n - 6, ".local", 6) == 0 && host[n - 7] != '.';
}

/* ------------------------------------------------------------ sockets */

#define MDNS_V4_GROUP "224.0.0.251"
#define MDNS_V6_GROUP "ff02::fb"
#define RECV_MAX 9000 /* the largest mDNS message (RFC 6762 17) */

/* One query session: an IPv4 and an IPv6 socket on ephemeral ports (-1 when that
 * family has no interface or no socket), and the interfaces to query on. */
typedef struct mdns_session {
    int fd4, fd6;
    uint32_t if4[OTA_MDNSQ_MAX_IFS], if6[OTA_MDNSQ_MAX_IFS];
    unsigned n4, n6;
    uint16_t id;
    ota_mdns_browse_info_t info;
} mdns_session_t;

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Note an interface's name in info. */
static void note_if(ota_mdns_browse_info_t *info, const char *name)
{
    size_t l = strlen(info->ifnames);
    snprintf(info->ifnames + l, sizeof info->ifnames - l, "%s%s", l ? ", " : "", name);
    info->n_ifs++;
}

static void session_close(mdns_session_t *s)
{
    if (s->fd4 >= 0)
        close(s->fd4);
    if (s->fd6 >= 0)
        close(s->fd6);
    s->fd4 = s->fd6 = -1;
}

/* The interfaces (the rule of mcast.h, the node's) and the sockets, on ephemeral
 * ports so that responders answer us by unicast. \return 0, OTA_ERR_IO (nothing to
 * send on). */
static int session_open(mdns_session_t *s)
{
    memset(s, 0, sizeof *s);
    s->fd4 = s->fd6 = -1;
    uint16_t id = 0;
    while (id == 0) /* 0 is what a plain multicast response carries */
        if (getrandom(&id, sizeof id, 0) != (ssize_t)sizeof id)
            id = (uint16_t)(getpid() ^ time(NULL));
    s->id = id;
    ota_mcast_scan_t *scan = malloc(sizeof *scan);
    if (scan == NULL || ota_mcast_scan(scan) != 0) {
        free(scan);
        return OTA_ERR_IO;
    }
    for (size_t i = 0; i < scan->n_ifs; i++) {
        const ota_mcast_if_t *itf = &scan->ifs[i];
        if (itf->v4 && s->n4 < OTA_MDNSQ_MAX_IFS)
            s->if4[s->n4++] = itf->ifindex;
        if (itf->v6 && s->n6 < OTA_MDNSQ_MAX_IFS)
            s->if6[s->n6++] = itf->ifindex;
        note_if(&s->info, itf->name);
    }
    free(scan);
    char why[160];
    if (s->n4 > 0)
        s->fd4 = ota_mcast_open(4, 0, 0, why, sizeof why);
    if (s->n6 > 0)
        s->fd6 = ota_mcast_open(6, 0, 0, why, sizeof why);
    if (s->fd4 < 0)
        s->fd4 = -1;
    if (s->fd6 < 0)
        s->fd6 = -1;
    if (s->fd4 < 0 && s->fd6 < 0) {
        session_close(s);
        return OTA_ERR_IO;
    }
    return OTA_OK;
}

/* Multicast msg on every interface. \return how many datagrams went out. */
static unsigned session_send(mdns_session_t *s, const uint8_t *msg, size_t len)
{
    unsigned sent = 0;
    for (unsigned i = 0; s->fd4 >= 0 && i < s->n4; i++) {
        struct sockaddr_in to;
        memset(&to, 0, sizeof to);
        to.sin_family = AF_INET;
        to.sin_port = htons(OTA_MDNS_PORT);
        inet_pton(AF_INET, MDNS_V4_GROUP, &to.sin_addr);
        if (ota_mcast_set_if(s->fd4, 4, s->if4[i]) == 0 &&
            sendto(s->fd4, msg, len, 0, (struct sockaddr *)&to, sizeof to) == (ssize_t)len)
            sent++;
    }
    for (unsigned i = 0; s->fd6 >= 0 && i < s->n6; i++) {
        uint32_t idx = s->if6[i];
        struct sockaddr_in6 to;
        memset(&to, 0, sizeof to);
        to.sin6_family = AF_INET6;
        to.sin6_port = htons(OTA_MDNS_PORT);
        to.sin6_scope_id = idx;
        inet_pton(AF_INET6, MDNS_V6_GROUP, &to.sin6_addr);
        if (ota_mcast_set_if(s->fd6, 6, idx) == 0 &&
            sendto(s->fd6, msg, len, 0, (struct sockaddr *)&to, sizeof to) == (ssize_t)len)
            sent++;
    }
    s->info.sent += sent;
    return sent;
}

/* One datagram from either socket into buf. It counts only when it comes from port
 * 5353 (RFC 6762 6: answers from elsewhere are ignored) and carries our query id
 * (or 0, which some responders put into unicast answers).
 * \return its length, 0 when none came within timeout_ms or it did not count. */
static size_t session_recv(mdns_session_t *s, int timeout_ms, uint8_t *buf, size_t cap,
                           uint32_t *ifindex)
{
    struct pollfd p[2];
    nfds_t n = 0;
    if (s->fd4 >= 0)
        p[n++] = (struct pollfd){.fd = s->fd4, .events = POLLIN};
    if (s->fd6 >= 0)
        p[n++] = (struct pollfd){.fd = s->fd6, .events = POLLIN};
    if (poll(p, n, timeout_ms < 0 ? 0 : timeout_ms) <= 0)
        return 0;
    for (nfds_t k = 0; k < n; k++) {
        if ((p[k].revents & POLLIN) == 0)
            continue;
        struct sockaddr_storage from;
        union {
            char buf[CMSG_SPACE(sizeof(struct in6_pktinfo)) +
                     CMSG_SPACE(sizeof(struct in_pktinfo))];
            struct cmsghdr align;
        } ctl;
        struct iovec iov = {.iov_base = buf, .iov_len = cap};
        struct msghdr mh;
        memset(&mh, 0, sizeof mh);
        mh.msg_name = &from;
        mh.msg_namelen = sizeof from;
        mh.msg_iov = &iov;
        mh.msg_iovlen = 1;
        mh.msg_control = ctl.buf;
        mh.msg_controllen = sizeof ctl.buf;
        ssize_t got = recvmsg(p[k].fd, &mh, 0);
        if (got < (ssize_t)OTA_DNS_HEADER_LEN || (mh.msg_flags & MSG_TRUNC) != 0)
            continue;
        uint16_t port = from.ss_family == AF_INET
                            ? ntohs(((struct sockaddr_in *)&from)->sin_port)
                            : ntohs(((struct sockaddr_in6 *)&from)->sin6_port);
        uint16_t id = get16(buf);
        if (port != OTA_MDNS_PORT || (id != s->id && id != 0))
            continue;
        *ifindex = 0;
        for (struct cmsghdr *c = CMSG_FIRSTHDR(&mh); c != NULL; c = CMSG_NXTHDR(&mh, c)) {
            if (c->cmsg_level == IPPROTO_IP && c->cmsg_type == IP_PKTINFO) {
                struct in_pktinfo pi;
                memcpy(&pi, CMSG_DATA(c), sizeof pi);
                *ifindex = (uint32_t)pi.ipi_ifindex;
            } else if (c->cmsg_level == IPPROTO_IPV6 && c->cmsg_type == IPV6_PKTINFO) {
                struct in6_pktinfo pi;
                memcpy(&pi, CMSG_DATA(c), sizeof pi);
                *ifindex = pi.ipi6_ifindex;
            }
        }
        if (*ifindex == 0 && from.ss_family == AF_INET6)
            *ifindex = ((struct sockaddr_in6 *)&from)->sin6_scope_id;
        return (size_t)got;
    }
    return 0;
}

/* Milliseconds from now until t (at least 0, rounded up). */
static int ms_until(double t, double now)
{
    double ms = (t - now) * 1000.0;
    return ms <= 0 ? 0 : (int)ms + 1;
}

int ota_mdns_resolve(const char *host, double timeout_s, ota_mdns_addr_t *out, size_t max)
{
    static const double send_at[] = {0.0, 0.5, 1.0}; /* seconds after the start */
    uint8_t qname[OTA_DNS_NAME_MAX];
    if (flat_name(qname, host) == 0)
        return OTA_ERR_INVALID_ARG;
    uint8_t query[512];
    mdns_session_t s;
    if (session_open(&s) != 0)
        return OTA_ERR_IO;
    ota_dns_writer_t w;
    ota_dns_w_init(&w, query, sizeof query, s.id, 0);
    ota_dns_w_question(&w, qname, OTA_DNS_TYPE_A, OTA_DNS_CLASS_IN);
    ota_dns_w_question(&w, qname, OTA_DNS_TYPE_AAAA, OTA_DNS_CLASS_IN);
    size_t qlen = ota_dns_w_finish(&w);
    ota_mdns_table_t *t = malloc(sizeof *t);
    uint8_t *buf = malloc(RECV_MAX);
    if (qlen == 0 || t == NULL || buf == NULL) {
        free(t);
        free(buf);
        session_close(&s);
        return OTA_ERR_IO;
    }
    ota_mdns_table_init(t);
    double t0 = now_s(), deadline = t0 + timeout_s;
    unsigned sends = 0, sent = 0;
    bool answered = false;
    const ota_mdns_host_t *h = NULL;
    for (;;) {
        double now = now_s();
        if (now >= deadline)
            break;
        if (!answered && sends < sizeof send_at / sizeof send_at[0] &&
            now >= t0 + send_at[sends]) {
            sent += session_send(&s, query, qlen);
            sends++;
            continue;
        }
        double until = deadline;
        if (!answered && sends < sizeof send_at / sizeof send_at[0] &&
            t0 + send_at[sends] < until)
            until = t0 + send_at[sends];
        uint32_t ifindex = 0;
        size_t n = session_recv(&s, ms_until(until, now), buf, RECV_MAX, &ifindex);
        if (n == 0 || ota_mdns_table_feed(t, buf, n, ifindex) != 1)
            continue;
        h = ota_mdns_table_host(t, qname);
        if (!answered && h != NULL && h->n_addrs > 0) {
            /* the other family's record may be a moment behind */
            answered = true;
            if (now_s() + 0.1 < deadline)
                deadline = now_s() + 0.1;
        }
    }
    int count = 0;
    if (h != NULL) {
        ota_mdns_addr_t sorted[OTA_MDNSQ_MAX_ADDRS];
        memcpy(sorted, h->addrs, h->n_addrs * sizeof sorted[0]);
        sort_addrs(sorted, h->n_addrs);
        for (unsigned i = 0; i < h->n_addrs && (size_t)count < max; i++)
            out[count++] = sorted[i];
    }
    free(t);
    free(buf);
    session_close(&s);
    return count == 0 && sent == 0 ? OTA_ERR_IO : count;
}

int ota_mdns_browse(ota_mdns_table_t *t, double timeout_s, ota_mdns_browse_info_t *info)
{
    static const double ptr_at[] = {0.0, 1.0, 2.0}; /* PTR queries, s after the start */
    const unsigned n_ptr = sizeof ptr_at / sizeof ptr_at[0];
    const double followup_every = 0.25; /* s between follow-up rounds */
    const unsigned max_asks = 3;        /* follow-ups per missing item */
    mdns_session_t s;
    ota_mdns_table_init(t);
    int rc = session_open(&s);
    if (info != NULL)
        *info = s.info;
    if (rc != 0)
        return OTA_ERR_IO;
    uint8_t query[512];
    ota_dns_writer_t w;
    ota_dns_w_init(&w, query, sizeof query, s.id, 0);
    for (int k = 0; k < OTA_MDNSQ_SVC_COUNT; k++) {
        uint8_t svc[OTA_DNS_NAME_MAX];
        service_flat((ota_mdns_service_kind_t)k, svc);
        ota_dns_w_question(&w, svc, OTA_DNS_TYPE_PTR, OTA_DNS_CLASS_IN);
    }
    size_t qlen = ota_dns_w_finish(&w);
    uint8_t *buf = malloc(RECV_MAX);
    uint8_t *fq = malloc(1400); /* follow-ups: within one Ethernet frame */
    if (qlen == 0 || buf == NULL || fq == NULL) {
        free(buf);
        free(fq);
        session_close(&s);
        return OTA_ERR_IO;
    }
    double t0 = now_s(), deadline = t0 + timeout_s, next_followup = 0;
    unsigned sends = 0;
    for (;;) {
        double now = now_s();
        if (now >= deadline)
            break;
        if (sends < n_ptr && now >= t0 + ptr_at[sends]) {
            session_send(&s, query, qlen);
            sends++;
            continue;
        }
        if (t->packets > 0 && now >= next_followup) {
            size_t fl = ota_mdns_table_followup(t, fq, 1400, s.id, max_asks);
            if (fl > 0)
                session_send(&s, fq, fl);
            next_followup = now + followup_every;
        }
        double until = deadline;
        if (sends < n_ptr && t0 + ptr_at[sends] < until)
            until = t0 + ptr_at[sends];
        if (t->packets > 0 && next_followup < until)
            until = next_followup;
        uint32_t ifindex = 0;
        size_t n = session_recv(&s, ms_until(until, now), buf, RECV_MAX, &ifindex);
        if (n > 0 && ota_mdns_table_feed(t, buf, n, ifindex) == 1 && t->packets == 1)
            next_followup = now_s() + 0.05; /* let the rest of the first burst come */
    }
    if (info != NULL)
        *info = s.info;
    free(buf);
    free(fq);
    session_close(&s);
    return 0;
}
