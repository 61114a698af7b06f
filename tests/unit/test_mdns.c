/*
 * test_mdns.c - unit tests of the mDNS responder and DNS-SD advertiser
 * (src/core/mdns.c) through its public API, against a small datagram port
 * defined here (not the shared fake port): a queue of received datagrams with
 * their sender, every sent datagram captured with its destination and the time it
 * left, an address list the test changes at will, deterministic random bytes and
 * the log lines. The test drives the clock; what the responder sends is decoded
 * with the ota_dns reader and checked record by record against RFC 6762 (mDNS)
 * and RFC 6763 (DNS-SD); the queries are built with the ota_dns writer.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "ota/dns.h"
#include "ota/errors.h"
#include "ota/mdns.h"

/* ------------------------------------------------------------------ the port */

#define DGRAM_MAX 2048
#define IN_MAX 16
#define SENT_MAX 192
#define LOG_MAX 64

typedef struct dgram {
    uint8_t data[DGRAM_MAX];
    size_t len;
    ota_ip_t ip;   /* received: the sender; sent: the destination */
    uint16_t port; /* likewise */
    uint32_t at;   /* sent: the clock of the call that sent it */
} dgram_t;

typedef struct mport {
    dgram_t in[IN_MAX];
    int in_head, in_count;
    int recv_calls;
    int recv_error;     /* returned when the queue is empty (0: OTA_ERR_WOULD_BLOCK) */
    dgram_t sent[SENT_MAX];
    int n_sent;         /* captured since the last clear */
    int send_result;    /* what mdns_send answers */
    ota_ip_t addrs[8];
    int n_addrs;
    int addrs_calls;
    uint8_t seed;       /* of the "random" bytes */
    bool no_random;     /* the random hook fails */
    char log[LOG_MAX][OTA_CFG_LOG_LINE_MAX + 1];
    int n_log;
} mport_t;

static mport_t P;
static ota_mdns_t M;
static ota_mdns_config_t CFG;
static uint32_t NOW;

static int p_recv(void *user, uint8_t *buf, size_t len, ota_ip_t *from, uint16_t *from_port)
{
    mport_t *p = user;
    p->recv_calls++;
    if (p->in_count == 0)
        return p->recv_error != 0 ? p->recv_error : OTA_ERR_WOULD_BLOCK;
    const dgram_t *d = &p->in[p->in_head];
    p->in_head = (p->in_head + 1) % IN_MAX;
    p->in_count--;
    memcpy(buf, d->data, d->len < len ? d->len : len);
    *from = d->ip;
    *from_port = d->port;
    /* the datagram's own length, even when it was cut to len: the responder must
     * not trust the count beyond its buffer */
    return (int)d->len;
}

static int p_send(void *user, const uint8_t *buf, size_t len, const ota_ip_t *to, uint16_t port)
{
    mport_t *p = user;
    assert_true(len > 0 && len <= OTA_CFG_MDNS_TX_SIZE);
    assert_true(p->n_sent < SENT_MAX);
    dgram_t *d = &p->sent[p->n_sent++];
    memcpy(d->data, buf, len);
    d->len = len;
    d->ip = *to;
    d->port = port;
    d->at = NOW;
    return p->send_result;
}

static int p_addrs(void *user, ota_ip_t *out, size_t max)
{
    mport_t *p = user;
    p->addrs_calls++;
    size_t n = (size_t)p->n_addrs < max ? (size_t)p->n_addrs : max;
    memcpy(out, p->addrs, n * sizeof out[0]);
    return (int)n;
}

static int p_random(void *user, uint8_t *buf, size_t len)
{
    mport_t *p = user;
    if (p->no_random)
        return OTA_ERR_CRYPTO;
    for (size_t i = 0; i < len; i++)
        buf[i] = (uint8_t)(p->seed * 37u + i * 101u + 13u);
    return OTA_OK;
}

static void p_log(void *user, ota_log_level_t level, const char *line)
{
    mport_t *p = user;
    (void)level;
    assert_true(strlen(line) <= OTA_CFG_LOG_LINE_MAX);
    if (p->n_log < LOG_MAX)
        snprintf(p->log[p->n_log++], sizeof p->log[0], "%s", line);
}

static const ota_mdns_port_t IO = {
    .recv = p_recv,
    .send = p_send,
    .addrs = p_addrs,
    .ctx = &P,
};
static const ota_crypto_port_t RNG = {.random = p_random, .ctx = &P};
static const ota_log_port_t LOG = {.line = p_log, .ctx = &P};

static bool has_log(const char *line)
{
    for (int i = 0; i < P.n_log; i++)
        if (strcmp(P.log[i], line) == 0)
            return true;
    return false;
}

static bool log_mentions(const char *part)
{
    for (int i = 0; i < P.n_log; i++)
        if (strstr(P.log[i], part) != NULL)
            return true;
    return false;
}

static void clear_sent(void)
{
    P.n_sent = 0;
}

static void clear_log(void)
{
    P.n_log = 0;
}

/* ------------------------------------------------------------------ addresses */

static ota_ip_t ip4(uint32_t ifindex, uint8_t a, uint8_t b, uint8_t c, uint8_t d)
{
    ota_ip_t ip;
    memset(&ip, 0, sizeof ip);
    ip.family = 4;
    ip.addr[0] = a;
    ip.addr[1] = b;
    ip.addr[2] = c;
    ip.addr[3] = d;
    ip.ifindex = ifindex;
    return ip;
}

/* fe80::<last> */
static ota_ip_t ip6(uint32_t ifindex, uint8_t last)
{
    ota_ip_t ip;
    memset(&ip, 0, sizeof ip);
    ip.family = 6;
    ip.addr[0] = 0xfe;
    ip.addr[1] = 0x80;
    ip.addr[15] = last;
    ip.ifindex = ifindex;
    return ip;
}

static void set_addrs(int n, const ota_ip_t *a)
{
    P.n_addrs = n;
    memcpy(P.addrs, a, (size_t)n * sizeof a[0]);
}

/* The usual node: IPv4 10.0.0.5 and IPv6 fe80::5 on interface 1. */
static void addrs_std(void)
{
    ota_ip_t a[2] = {ip4(1, 10, 0, 0, 5), ip6(1, 5)};
    set_addrs(2, a);
}

static void addrs_v4_only(void)
{
    ota_ip_t a[1] = {ip4(1, 10, 0, 0, 5)};
    set_addrs(1, a);
}

static bool is_group(const ota_ip_t *ip, uint8_t family, uint32_t ifindex)
{
    static const uint8_t g4[4] = {224, 0, 0, 251};
    static const uint8_t g6[16] = {0xff, 2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xfb};
    if (ip->family != family || ip->ifindex != ifindex)
        return false;
    return family == 4 ? memcmp(ip->addr, g4, 4) == 0 : memcmp(ip->addr, g6, 16) == 0;
}

/* ------------------------------------------------------------------ the configuration */

static const char *const OTA_TXT[] = {"txtvers=1",  "name=livingroom", "version=1.2.3",
                                      "platform=host", "protocol=2",  "auth=salted", NULL};
static const char *const ARD_TXT[] = {"board=host", "tcp_check=no", "ssh_upload=no",
                                      "auth_upload=no", NULL};

static const struct {
    const char *type;
    uint16_t port;
    const char *const *txt;
} SVC[2] = {{"_ota._tcp", 3232, OTA_TXT}, {"_arduino._tcp", 8266, ARD_TXT}};

static ota_mdns_config_t cfg_std(void)
{
    ota_mdns_config_t c;
    ota_mdns_config_default(&c);
    c.name = "livingroom";
    for (size_t i = 0; i < 2; i++) {
        c.services[i].type = SVC[i].type;
        c.services[i].port = SVC[i].port;
        c.services[i].txt = SVC[i].txt;
    }
    c.n_services = 2;
    return c;
}

/* TXT record data of a NULL-terminated list of strings. */
static size_t txt_bytes(const char *const *t, uint8_t *out)
{
    size_t o = 0;
    for (; t != NULL && *t != NULL; t++) {
        size_t n = strlen(*t);
        out[o++] = (uint8_t)n;
        memcpy(out + o, *t, n);
        o += n;
    }
    if (o == 0)
        out[o++] = 0;
    return o;
}

/* ------------------------------------------------------------------ driving */

static int setup(void **state)
{
    (void)state;
    memset(&P, 0, sizeof P);
    memset(&M, 0, sizeof M);
    P.seed = 7;
    NOW = 1000;
    return 0;
}

static void start_cfg(const ota_mdns_config_t *c)
{
    CFG = *c;
    assert_int_equal(ota_mdns_setup(&M, &IO, &RNG, &LOG, &CFG, NOW), OTA_OK);
    assert_int_equal(ota_mdns_state(&M), OTA_MDNS_WAITING);
    assert_string_equal(ota_mdns_name(&M), "livingroom");
}

static void start(void)
{
    ota_mdns_config_t c = cfg_std();
    start_cfg(&c);
}

/* One millisecond later, one poll. */
static void step(void)
{
    NOW++;
    ota_mdns_poll(&M, NOW);
}

static void run_to(uint32_t end)
{
    while ((int32_t)(end - NOW) > 0)
        step();
}

static void run_for(uint32_t ms)
{
    run_to(NOW + ms);
}

/* Poll every millisecond until something is sent (at most limit ms). */
static void run_until_sent(uint32_t limit)
{
    int before = P.n_sent;
    uint32_t end = NOW + limit;
    while (P.n_sent == before) {
        assert_true((int32_t)(end - NOW) > 0);
        step();
    }
}

static void run_until_state(ota_mdns_state_t st, uint32_t limit)
{
    uint32_t end = NOW + limit;
    while (ota_mdns_state(&M) != st) {
        assert_true((int32_t)(end - NOW) > 0);
        step();
    }
}

/* The usual node up and running, its rate limits expired, nothing captured. */
static void bring_up(void)
{
    addrs_std();
    start();
    run_until_state(OTA_MDNS_RUNNING, 3000);
    run_for(1100);
    clear_sent();
    clear_log();
}

/* ------------------------------------------------------------------ decoding */

typedef struct drr {
    char name[300];
    uint16_t type, rclass;
    uint32_t ttl;
    ota_dns_section_t sec;
    uint8_t rdata[600];
    uint16_t rdlen;
    char target[300]; /* PTR: the name it points to; SRV: the target */
    uint16_t srv_port, srv_prio, srv_weight;
} drr_t;

typedef struct dmsg {
    ota_dns_header_t hdr;
    int nq;
    struct {
        char name[300];
        uint16_t type, qclass;
    } q[8];
    int nr;
    drr_t r[24];
} dmsg_t;

static void to_text(const uint8_t *flat, char *out)
{
    assert_int_equal(ota_dns_name_to_text(flat, out, 300), 0);
}

/* Decode a whole datagram, failing the test on anything malformed: every count
 * matches, every name reads, nothing trails the last record. */
static void decode(const dgram_t *g, dmsg_t *d)
{
    ota_dns_reader_t r;
    memset(d, 0, sizeof *d);
    assert_int_equal(ota_dns_reader_init(&r, g->data, g->len), 0);
    d->hdr = r.hdr;
    ota_dns_question_t q;
    int rc;
    while ((rc = ota_dns_next_question(&r, &q)) == 1) {
        assert_true(d->nq < 8);
        to_text(q.name, d->q[d->nq].name);
        d->q[d->nq].type = q.type;
        d->q[d->nq].qclass = q.qclass;
        d->nq++;
    }
    assert_int_equal(rc, 0);
    ota_dns_record_t rec;
    while ((rc = ota_dns_next_record(&r, &rec)) == 1) {
        assert_true(d->nr < 24);
        drr_t *x = &d->r[d->nr++];
        to_text(rec.name, x->name);
        x->type = rec.type;
        x->rclass = rec.rclass;
        x->ttl = rec.ttl;
        x->sec = rec.section;
        x->rdlen = rec.rdlength;
        assert_true(rec.rdlength <= sizeof x->rdata);
        memcpy(x->rdata, g->data + rec.rdata, rec.rdlength);
        uint8_t flat[OTA_DNS_NAME_MAX];
        size_t end = 0;
        if (rec.type == OTA_DNS_TYPE_PTR) {
            assert_true(ota_dns_read_name(g->data, g->len, rec.rdata, flat, &end) > 0);
            assert_int_equal(end, rec.rdata + rec.rdlength);
            to_text(flat, x->target);
        } else if (rec.type == OTA_DNS_TYPE_SRV) {
            assert_true(rec.rdlength >= 7);
            x->srv_prio = (uint16_t)(x->rdata[0] << 8 | x->rdata[1]);
            x->srv_weight = (uint16_t)(x->rdata[2] << 8 | x->rdata[3]);
            x->srv_port = (uint16_t)(x->rdata[4] << 8 | x->rdata[5]);
            assert_true(ota_dns_read_name(g->data, g->len, rec.rdata + 6, flat, &end) > 0);
            assert_int_equal(end, rec.rdata + rec.rdlength);
            to_text(flat, x->target);
        } else if (rec.type == OTA_DNS_TYPE_A) {
            assert_int_equal(rec.rdlength, 4);
        } else if (rec.type == OTA_DNS_TYPE_AAAA) {
            assert_int_equal(rec.rdlength, 16);
        }
    }
    assert_int_equal(rc, 0);
    assert_int_equal(r.pos, g->len);
    assert_int_equal(d->nq, d->hdr.qdcount);
    assert_int_equal(d->nr, d->hdr.ancount + d->hdr.nscount + d->hdr.arcount);
}

static int count_rr(const dmsg_t *d, ota_dns_section_t sec, const char *name, uint16_t type)
{
    int n = 0;
    for (int i = 0; i < d->nr; i++)
        if (d->r[i].sec == sec && d->r[i].type == type && strcmp(d->r[i].name, name) == 0)
            n++;
    return n;
}

static const drr_t *find_rr(const dmsg_t *d, ota_dns_section_t sec, const char *name,
                            uint16_t type)
{
    for (int i = 0; i < d->nr; i++)
        if (d->r[i].sec == sec && d->r[i].type == type && strcmp(d->r[i].name, name) == 0)
            return &d->r[i];
    return NULL;
}

static const drr_t *find_ptr(const dmsg_t *d, ota_dns_section_t sec, const char *name,
                             const char *target)
{
    for (int i = 0; i < d->nr; i++)
        if (d->r[i].sec == sec && d->r[i].type == OTA_DNS_TYPE_PTR &&
            strcmp(d->r[i].name, name) == 0 && strcmp(d->r[i].target, target) == 0)
            return &d->r[i];
    return NULL;
}

static void host_of(char *out, const char *host)
{
    snprintf(out, 300, "%s.local", host);
}

static void instance_of(char *out, const char *host, size_t svc)
{
    snprintf(out, 300, "%s.%s.local", host, SVC[svc].type);
}

static void type_of(char *out, size_t svc)
{
    snprintf(out, 300, "%s.local", SVC[svc].type);
}

/* The address records of host of one family (4: A, 6: AAAA) in a section:
 * exactly the port's addresses of interface ifindex (0: all), each with the class
 * and TTL given. */
static void check_addrs_of(const dmsg_t *d, ota_dns_section_t sec, const char *host,
                           uint32_t ifindex, uint8_t fam, uint16_t rclass, uint32_t ttl)
{
    char hn[300];
    host_of(hn, host);
    {
        uint16_t type = fam == 4 ? OTA_DNS_TYPE_A : OTA_DNS_TYPE_AAAA;
        size_t alen = fam == 4 ? 4 : 16;
        int want = 0;
        for (int k = 0; k < P.n_addrs; k++) {
            const ota_ip_t *a = &P.addrs[k];
            if (a->family != fam || (ifindex != 0 && a->ifindex != ifindex))
                continue;
            want++;
            bool found = false;
            for (int i = 0; i < d->nr; i++) {
                const drr_t *x = &d->r[i];
                if (x->sec == sec && x->type == type && strcmp(x->name, hn) == 0 &&
                    memcmp(x->rdata, a->addr, alen) == 0) {
                    assert_int_equal(x->rclass, rclass);
                    assert_int_equal(x->ttl, ttl);
                    found = true;
                }
            }
            assert_true(found);
        }
        assert_int_equal(count_rr(d, sec, hn, type), want);
    }
}

/* Both families. */
static void check_addrs(const dmsg_t *d, ota_dns_section_t sec, const char *host,
                        uint32_t ifindex, uint16_t rclass, uint32_t ttl)
{
    check_addrs_of(d, sec, host, ifindex, 4, rclass, ttl);
    check_addrs_of(d, sec, host, ifindex, 6, rclass, ttl);
}

/* The answer to an A question: the A records of the link's interface in the
 * answer section, its AAAA records as additional. */
static void check_a_answer(const dmsg_t *d, const char *host, uint32_t ifindex, uint16_t rclass,
                           uint32_t ttl)
{
    char hn[300];
    host_of(hn, host);
    check_addrs_of(d, OTA_DNS_SEC_ANSWER, host, ifindex, 4, rclass, ttl);
    check_addrs_of(d, OTA_DNS_SEC_ADDITIONAL, host, ifindex, 6, rclass, ttl);
    assert_int_equal(count_rr(d, OTA_DNS_SEC_ANSWER, hn, OTA_DNS_TYPE_AAAA), 0);
    assert_int_equal(count_rr(d, OTA_DNS_SEC_ADDITIONAL, hn, OTA_DNS_TYPE_A), 0);
}

static void check_srv(const dmsg_t *d, ota_dns_section_t sec, const char *host, size_t svc,
                      uint16_t rclass, uint32_t ttl)
{
    char in[300], hn[300];
    instance_of(in, host, svc);
    host_of(hn, host);
    assert_int_equal(count_rr(d, sec, in, OTA_DNS_TYPE_SRV), 1);
    const drr_t *x = find_rr(d, sec, in, OTA_DNS_TYPE_SRV);
    assert_int_equal(x->rclass, rclass);
    assert_int_equal(x->ttl, ttl);
    assert_int_equal(x->srv_prio, 0);
    assert_int_equal(x->srv_weight, 0);
    assert_int_equal(x->srv_port, SVC[svc].port);
    assert_string_equal(x->target, hn);
}

static void check_txt(const dmsg_t *d, ota_dns_section_t sec, const char *host, size_t svc,
                      uint16_t rclass, uint32_t ttl)
{
    char in[300];
    uint8_t want[400];
    instance_of(in, host, svc);
    size_t n = txt_bytes(SVC[svc].txt, want);
    assert_int_equal(count_rr(d, sec, in, OTA_DNS_TYPE_TXT), 1);
    const drr_t *x = find_rr(d, sec, in, OTA_DNS_TYPE_TXT);
    assert_int_equal(x->rclass, rclass);
    assert_int_equal(x->ttl, ttl);
    assert_int_equal(x->rdlen, n);
    assert_memory_equal(x->rdata, want, n);
}

/* PTR <type>.local -> <host>.<type>.local: shared, never the cache-flush bit. */
static void check_ptr(const dmsg_t *d, ota_dns_section_t sec, const char *host, size_t svc,
                      uint32_t ttl)
{
    char tn[300], in[300];
    type_of(tn, svc);
    instance_of(in, host, svc);
    assert_int_equal(count_rr(d, sec, tn, OTA_DNS_TYPE_PTR), 1);
    const drr_t *x = find_ptr(d, sec, tn, in);
    assert_non_null(x);
    assert_int_equal(x->rclass, OTA_DNS_CLASS_IN);
    assert_int_equal(x->ttl, ttl);
}

/* PTR _services._dns-sd._udp.local -> <type>.local (RFC 6763 9). */
static void check_enum(const dmsg_t *d, ota_dns_section_t sec, size_t svc, uint32_t ttl)
{
    char tn[300];
    type_of(tn, svc);
    const drr_t *x = find_ptr(d, sec, "_services._dns-sd._udp.local", tn);
    assert_non_null(x);
    assert_int_equal(x->rclass, OTA_DNS_CLASS_IN);
    assert_int_equal(x->ttl, ttl);
}

#define FLUSH (OTA_DNS_CLASS_IN | OTA_DNS_CLASS_TOP)
#define QU (OTA_DNS_CLASS_IN | OTA_DNS_CLASS_TOP)
#define RESPONSE (OTA_DNS_FLAG_QR | OTA_DNS_FLAG_AA)

/* A probe (RFC 6762 8.1): a query with an ANY/QU question for the host name and
 * each instance name, and the records claimed in the authority section: the
 * addresses of the interface it goes out on, each service's SRV and TXT. */
static void check_probe(const dgram_t *g, const char *host, uint8_t family, uint32_t ifindex)
{
    dmsg_t d;
    char hn[300], in[300];
    assert_true(is_group(&g->ip, family, ifindex));
    assert_int_equal(g->port, 5353);
    decode(g, &d);
    assert_int_equal(d.hdr.id, 0);
    assert_int_equal(d.hdr.flags, 0);
    assert_int_equal(d.nq, 3);
    host_of(hn, host);
    assert_string_equal(d.q[0].name, hn);
    for (int i = 0; i < 3; i++) {
        assert_int_equal(d.q[i].type, OTA_DNS_TYPE_ANY);
        assert_int_equal(d.q[i].qclass, QU);
    }
    instance_of(in, host, 0);
    assert_string_equal(d.q[1].name, in);
    instance_of(in, host, 1);
    assert_string_equal(d.q[2].name, in);
    assert_int_equal(d.hdr.ancount, 0);
    assert_int_equal(d.hdr.arcount, 0);
    /* no cache-flush bit in a query (RFC 6762 10.2) */
    check_addrs(&d, OTA_DNS_SEC_AUTHORITY, host, ifindex, OTA_DNS_CLASS_IN, 120);
    for (size_t s = 0; s < 2; s++) {
        check_srv(&d, OTA_DNS_SEC_AUTHORITY, host, s, OTA_DNS_CLASS_IN, 120);
        check_txt(&d, OTA_DNS_SEC_AUTHORITY, host, s, OTA_DNS_CLASS_IN, 4500);
    }
    int naddr = 0;
    for (int k = 0; k < P.n_addrs; k++)
        if (P.addrs[k].ifindex == ifindex)
            naddr++;
    assert_int_equal(d.hdr.nscount, naddr + 4);
}

/* An announcement (8.3) or a goodbye (10.1, ttl_scale 0): every record in the
 * answer section, the cache-flush bit on the unique ones (A/AAAA/SRV/TXT). */
static void check_announcement(const dgram_t *g, const char *host, uint8_t family,
                               uint32_t ifindex, uint32_t ttl_scale)
{
    dmsg_t d;
    assert_true(is_group(&g->ip, family, ifindex));
    assert_int_equal(g->port, 5353);
    decode(g, &d);
    assert_int_equal(d.hdr.id, 0);
    assert_int_equal(d.hdr.flags, RESPONSE);
    assert_int_equal(d.nq, 0);
    assert_int_equal(d.hdr.nscount, 0);
    assert_int_equal(d.hdr.arcount, 0);
    check_addrs(&d, OTA_DNS_SEC_ANSWER, host, ifindex, FLUSH, 120 * ttl_scale);
    for (size_t s = 0; s < 2; s++) {
        check_ptr(&d, OTA_DNS_SEC_ANSWER, host, s, 4500 * ttl_scale);
        check_srv(&d, OTA_DNS_SEC_ANSWER, host, s, FLUSH, 120 * ttl_scale);
        check_txt(&d, OTA_DNS_SEC_ANSWER, host, s, FLUSH, 4500 * ttl_scale);
        check_enum(&d, OTA_DNS_SEC_ANSWER, s, 4500 * ttl_scale);
    }
    int naddr = 0;
    for (int k = 0; k < P.n_addrs; k++)
        if (P.addrs[k].ifindex == ifindex)
            naddr++;
    assert_int_equal(d.hdr.ancount, naddr + 8);
}

/* ------------------------------------------------------------------ building queries */

typedef struct qb {
    uint8_t buf[DGRAM_MAX];
    ota_dns_writer_t w;
} qb_t;

static void flat_of(uint8_t *out, const char *dotted)
{
    out[0] = 0;
    assert_true(ota_dns_name_append_dotted(out, dotted) > 0);
}

static void qb_init(qb_t *b, uint16_t id, uint16_t flags)
{
    ota_dns_w_init(&b->w, b->buf, sizeof b->buf, id, flags);
}

static void qb_q(qb_t *b, const char *name, uint16_t type, uint16_t qclass)
{
    uint8_t f[OTA_DNS_NAME_MAX];
    flat_of(f, name);
    ota_dns_w_question(&b->w, f, type, qclass);
}

static void qb_a(qb_t *b, ota_dns_section_t sec, const char *name, uint16_t rclass,
                 uint32_t ttl, const ota_ip_t *ip)
{
    uint8_t f[OTA_DNS_NAME_MAX];
    flat_of(f, name);
    ota_dns_w_record_begin(&b->w, sec, f, ip->family == 4 ? OTA_DNS_TYPE_A : OTA_DNS_TYPE_AAAA,
                           rclass, ttl);
    ota_dns_w_bytes(&b->w, ip->addr, ip->family == 4 ? 4 : 16);
    ota_dns_w_record_end(&b->w);
}

static void qb_ptr(qb_t *b, ota_dns_section_t sec, const char *name, uint32_t ttl,
                   const char *target)
{
    uint8_t f[OTA_DNS_NAME_MAX];
    flat_of(f, name);
    ota_dns_w_record_begin(&b->w, sec, f, OTA_DNS_TYPE_PTR, OTA_DNS_CLASS_IN, ttl);
    flat_of(f, target);
    ota_dns_w_name(&b->w, f);
    ota_dns_w_record_end(&b->w);
}

static void qb_srv(qb_t *b, ota_dns_section_t sec, const char *name, uint16_t rclass,
                   uint32_t ttl, uint16_t prio, uint16_t weight, uint16_t port,
                   const char *target)
{
    uint8_t f[OTA_DNS_NAME_MAX];
    flat_of(f, name);
    ota_dns_w_record_begin(&b->w, sec, f, OTA_DNS_TYPE_SRV, rclass, ttl);
    ota_dns_w_u16(&b->w, prio);
    ota_dns_w_u16(&b->w, weight);
    ota_dns_w_u16(&b->w, port);
    flat_of(f, target);
    ota_dns_w_name(&b->w, f); /* compressed, as other responders may send it */
    ota_dns_w_record_end(&b->w);
}

static void qb_txt(qb_t *b, ota_dns_section_t sec, const char *name, uint16_t rclass,
                   uint32_t ttl, const char *const *strings)
{
    uint8_t f[OTA_DNS_NAME_MAX], data[400];
    flat_of(f, name);
    size_t n = txt_bytes(strings, data);
    ota_dns_w_record_begin(&b->w, sec, f, OTA_DNS_TYPE_TXT, rclass, ttl);
    ota_dns_w_bytes(&b->w, data, n);
    ota_dns_w_record_end(&b->w);
}

static size_t qb_len(qb_t *b)
{
    size_t n = ota_dns_w_finish(&b->w);
    assert_true(n > 0);
    return n;
}

static const ota_ip_t *peer4(void)
{
    static ota_ip_t p;
    p = ip4(1, 10, 0, 0, 9);
    return &p;
}

static const ota_ip_t *peer6(void)
{
    static ota_ip_t p;
    p = ip6(1, 9);
    return &p;
}

static void deliver(qb_t *b, const ota_ip_t *from, uint16_t port)
{
    size_t n = qb_len(b);
    ota_mdns_input(&M, b->buf, n, from, port, NOW);
}

/* A one-question multicast query from the usual peer (10.0.0.9:5353). */
static void ask(const char *name, uint16_t type)
{
    qb_t b;
    qb_init(&b, 0, 0);
    qb_q(&b, name, type, OTA_DNS_CLASS_IN);
    deliver(&b, peer4(), 5353);
}

/* Another host's response claiming name with an IPv4 address. */
static void claim_a(const char *name, const ota_ip_t *addr, uint32_t ttl)
{
    qb_t b;
    qb_init(&b, 0, RESPONSE);
    qb_a(&b, OTA_DNS_SEC_ANSWER, name, FLUSH, ttl, addr);
    deliver(&b, peer4(), 5353);
}

static void queue_in(const uint8_t *data, size_t len, const ota_ip_t *from, uint16_t port)
{
    assert_true(P.in_count < IN_MAX && len <= DGRAM_MAX);
    dgram_t *d = &P.in[(P.in_head + P.in_count) % IN_MAX];
    memcpy(d->data, data, len);
    d->len = len;
    d->ip = *from;
    d->port = port;
    P.in_count++;
}

/* ================================================================== setup */

static void test_config_default(void **state)
{
    (void)state;
    ota_mdns_config_t c;
    memset(&c, 0xa5, sizeof c);
    ota_mdns_config_default(&c);
    assert_null(c.name);
    assert_int_equal(c.n_services, 0);
    assert_int_equal(c.host_ttl, 120);
    assert_int_equal(c.service_ttl, 4500);
    for (size_t i = 0; i < OTA_CFG_MDNS_MAX_SERVICES; i++) {
        assert_null(c.services[i].type);
        assert_null(c.services[i].txt);
        assert_int_equal(c.services[i].port, 0);
    }
}

static int try_setup(const ota_mdns_config_t *c)
{
    CFG = *c;
    int rc = ota_mdns_setup(&M, &IO, &RNG, &LOG, &CFG, NOW);
    if (rc != OTA_OK) {
        /* a refused setup leaves a responder that does nothing */
        assert_int_equal(ota_mdns_state(&M), OTA_MDNS_OFF);
        addrs_std();
        ota_mdns_poll(&M, NOW);
        ota_mdns_poll(&M, NOW + 2000);
        assert_int_equal(P.n_sent, 0);
        assert_int_equal(ota_mdns_next_ms(&M, NOW), 1000);
        P.n_addrs = 0;
    }
    return rc;
}

static int try_name(const char *name)
{
    ota_mdns_config_t c = cfg_std();
    c.name = name;
    return try_setup(&c);
}

static int try_type(const char *type)
{
    ota_mdns_config_t c = cfg_std();
    c.services[1].type = type;
    return try_setup(&c);
}

static int try_txt(const char *const *txt)
{
    ota_mdns_config_t c = cfg_std();
    c.services[0].txt = txt;
    return try_setup(&c);
}

static void test_setup_validates_names(void **state)
{
    (void)state;
    char n63[64], n64[65];
    memset(n63, 'a', 63);
    n63[63] = '\0';
    memset(n64, 'b', 64);
    n64[64] = '\0';
    assert_int_equal(try_name(NULL), OTA_ERR_INVALID_ARG);
    assert_int_equal(try_name(""), OTA_ERR_INVALID_ARG);
    assert_int_equal(try_name(n64), OTA_ERR_INVALID_ARG);
    assert_int_equal(try_name("living room"), OTA_ERR_INVALID_ARG);
    assert_int_equal(try_name("living.room"), OTA_ERR_INVALID_ARG);
    assert_int_equal(try_name("livingroom.local"), OTA_ERR_INVALID_ARG);
    assert_int_equal(try_name("living_room"), OTA_ERR_INVALID_ARG);
    assert_int_equal(try_name("caf\xc3\xa9"), OTA_ERR_INVALID_ARG);
    assert_int_equal(try_name("a\\b"), OTA_ERR_INVALID_ARG);
    assert_int_equal(try_name("-living"), OTA_ERR_INVALID_ARG); /* RFC 1123 2.1 */
    assert_int_equal(try_name("living-"), OTA_ERR_INVALID_ARG);
    assert_false(ota_mdns_name_valid("-living"));
    assert_true(ota_mdns_name_valid("Living-Room-2"));
    assert_int_equal(try_name("a"), OTA_OK);
    assert_string_equal(ota_mdns_name(&M), "a");
    assert_int_equal(try_name("Living-Room-2"), OTA_OK);
    assert_string_equal(ota_mdns_name(&M), "Living-Room-2");
    assert_int_equal(try_name(n63), OTA_OK);
    assert_string_equal(ota_mdns_name(&M), n63);
    assert_int_equal(ota_mdns_state(&M), OTA_MDNS_WAITING);
}

static void test_setup_validates_service_types(void **state)
{
    (void)state;
    assert_int_equal(try_type(NULL), OTA_ERR_INVALID_ARG);
    assert_int_equal(try_type(""), OTA_ERR_INVALID_ARG);
    assert_int_equal(try_type("ota._tcp"), OTA_ERR_INVALID_ARG);
    assert_int_equal(try_type("_ota"), OTA_ERR_INVALID_ARG);
    assert_int_equal(try_type("_ota._sctp"), OTA_ERR_INVALID_ARG);
    assert_int_equal(try_type("_ota.tcp"), OTA_ERR_INVALID_ARG);
    assert_int_equal(try_type("_ota._tcp.local"), OTA_ERR_INVALID_ARG);
    assert_int_equal(try_type("_._tcp"), OTA_ERR_INVALID_ARG);
    assert_int_equal(try_type("__tcp"), OTA_ERR_INVALID_ARG);
    assert_int_equal(try_type("_o t._tcp"), OTA_ERR_INVALID_ARG);
    assert_int_equal(try_type("_o.t._tcp"), OTA_ERR_INVALID_ARG);
    assert_int_equal(try_type("_o_t._tcp"), OTA_ERR_INVALID_ARG);
    /* the service name is 1-15 characters (RFC 6763 7.2, RFC 6335 5.1) */
    assert_int_equal(try_type("_abcdefghijklmnop._tcp"), OTA_ERR_INVALID_ARG); /* 16 */
    assert_int_equal(try_type("_abcdefghijklmno._tcp"), OTA_OK);               /* 15 */
    assert_int_equal(try_type("_-ota._tcp"), OTA_ERR_INVALID_ARG);
    assert_int_equal(try_type("_ota-._tcp"), OTA_ERR_INVALID_ARG);
    assert_int_equal(try_type("_o--ta._tcp"), OTA_ERR_INVALID_ARG);
    assert_int_equal(try_type("_8266._tcp"), OTA_ERR_INVALID_ARG); /* no letter */
    assert_int_equal(try_type("_a._udp"), OTA_OK);
    assert_int_equal(try_type("_x-8266._tcp"), OTA_OK);
    assert_int_equal(try_type("_http-alt._tcp"), OTA_OK);

    ota_mdns_config_t c = cfg_std();
    c.services[0].port = 0;
    assert_int_equal(try_setup(&c), OTA_ERR_INVALID_ARG);
    c = cfg_std();
    c.n_services = OTA_CFG_MDNS_MAX_SERVICES + 1;
    for (size_t i = 2; i < OTA_CFG_MDNS_MAX_SERVICES; i++)
        c.services[i] = c.services[0];
    assert_int_equal(try_setup(&c), OTA_ERR_INVALID_ARG);
    c = cfg_std();
    c.n_services = 0; /* a host name and nothing else is fine */
    assert_int_equal(try_setup(&c), OTA_OK);
    c = cfg_std();
    c.host_ttl = 0;
    assert_int_equal(try_setup(&c), OTA_ERR_INVALID_ARG);
    c = cfg_std();
    c.service_ttl = 0;
    assert_int_equal(try_setup(&c), OTA_ERR_INVALID_ARG);
}

static void test_setup_needs_the_hooks(void **state)
{
    (void)state;
    ota_mdns_config_t c = cfg_std();
    CFG = c;
    ota_mdns_port_t p = IO;
    p.recv = NULL;
    assert_int_equal(ota_mdns_setup(&M, &p, &RNG, &LOG, &CFG, NOW), OTA_ERR_INVALID_ARG);
    p = IO;
    p.send = NULL;
    assert_int_equal(ota_mdns_setup(&M, &p, &RNG, &LOG, &CFG, NOW), OTA_ERR_INVALID_ARG);
    p = IO;
    p.addrs = NULL;
    assert_int_equal(ota_mdns_setup(&M, &p, &RNG, &LOG, &CFG, NOW), OTA_ERR_INVALID_ARG);
    assert_int_equal(ota_mdns_setup(&M, NULL, &RNG, &LOG, &CFG, NOW), OTA_ERR_INVALID_ARG);
    assert_int_equal(ota_mdns_setup(&M, &IO, &RNG, &LOG, NULL, NOW), OTA_ERR_INVALID_ARG);
    assert_int_equal(ota_mdns_state(&M), OTA_MDNS_OFF);

    /* random and log are optional: the responder still comes up */
    addrs_std();
    assert_int_equal(ota_mdns_setup(&M, &IO, NULL, NULL, &CFG, NOW), OTA_OK);
    run_until_state(OTA_MDNS_RUNNING, 3000);
    assert_int_equal(P.n_log, 0);
    assert_int_equal(P.n_sent, 2 * 5);

    /* a failing random source too */
    memset(&M, 0, sizeof M);
    clear_sent();
    P.no_random = true;
    assert_int_equal(ota_mdns_setup(&M, &IO, &RNG, &LOG, &CFG, NOW), OTA_OK);
    run_until_state(OTA_MDNS_RUNNING, 3000);
    assert_int_equal(P.n_sent, 2 * 5);
}

static void test_setup_txt_limits(void **state)
{
    (void)state;
    static char s255[256], s256[257], s100[101], s58[59], s57[58];
    memset(s255, 'x', 255);
    memset(s256, 'y', 256);
    memset(s100, 'z', 100);
    memset(s58, 'w', 58);
    memset(s57, 'v', 57);
    const char *const empty_string[] = {"", NULL};
    const char *const too_long[] = {s256, NULL};
    const char *const one255[] = {s255, NULL}; /* legal DNS, beyond OTA_CFG_MDNS_TXT_SIZE */
    const char *const exactly[] = {s100, s58, NULL};   /* 101 + 59 = 160 bytes */
    const char *const with_empty[] = {s100, s58, "", NULL};
    const char *const over[] = {s100, s58, "k", NULL}; /* 162 bytes */
    const char *const under[] = {s100, s57, NULL};     /* 159 */
    const char *const none[] = {NULL};
    assert_int_equal(OTA_CFG_MDNS_TXT_SIZE, 160);
    assert_int_equal(try_txt(empty_string), OTA_ERR_INVALID_ARG);
    assert_int_equal(try_txt(too_long), OTA_ERR_INVALID_ARG);
    assert_int_equal(try_txt(one255), OTA_ERR_INVALID_ARG);
    assert_int_equal(try_txt(with_empty), OTA_ERR_INVALID_ARG);
    assert_int_equal(try_txt(over), OTA_ERR_INVALID_ARG);
    assert_int_equal(try_txt(exactly), OTA_OK);
    assert_int_equal(try_txt(under), OTA_OK);
    assert_int_equal(try_txt(none), OTA_OK);
    assert_int_equal(try_txt(NULL), OTA_OK);

    /* no strings: the TXT record is one empty string (RFC 6763 6.1) */
    addrs_v4_only();
    run_until_state(OTA_MDNS_ANNOUNCING, 3000);
    dmsg_t d;
    decode(&P.sent[P.n_sent - 1], &d);
    const drr_t *t = find_rr(&d, OTA_DNS_SEC_ANSWER, "livingroom._ota._tcp.local",
                             OTA_DNS_TYPE_TXT);
    assert_non_null(t);
    assert_int_equal(t->rdlen, 1);
    assert_int_equal(t->rdata[0], 0);
}

/* The largest announcement must fit OTA_CFG_MDNS_TX_SIZE with the longest name a
 * rename can give and every address an IPv6 one; setup refuses what cannot. */
static void test_setup_refuses_records_beyond_one_datagram(void **state)
{
    (void)state;
    static char t1[161], t2[161];
    static const char *txt1[3], *txt2[3];
    memset(t1, 'a', 100);
    memcpy(t1, "k=", 2);
    memset(t2, 'b', 58);
    memcpy(t2, "q=", 2);
    txt1[0] = t1;
    txt1[1] = t2;
    txt2[0] = t1;
    txt2[1] = t2;
    char n63[64];
    memset(n63, 'n', 63);
    n63[63] = '\0';
    ota_mdns_config_t c = cfg_std();
    c.services[0].txt = txt1;
    c.services[1].txt = txt2;
    c.name = n63;
    assert_int_equal(OTA_CFG_MDNS_TX_SIZE, 768);
    assert_int_equal(try_setup(&c), OTA_ERR_INVALID_ARG);
    c.name = "livingroom"; /* the same records with a short name fit */
    assert_int_equal(try_setup(&c), OTA_OK);

    /* and then every datagram it sends fits (p_send checks), even with the
     * maximum of addresses on one interface */
    ota_ip_t a[OTA_CFG_MDNS_MAX_ADDRS];
    for (int k = 0; k < OTA_CFG_MDNS_MAX_ADDRS; k++)
        a[k] = ip6(1, (uint8_t)(10 + k));
    set_addrs(OTA_CFG_MDNS_MAX_ADDRS, a);
    run_until_state(OTA_MDNS_RUNNING, 3000);
    assert_int_equal(P.n_sent, 5);
    dmsg_t d;
    decode(&P.sent[4], &d);
    check_addrs(&d, OTA_DNS_SEC_ANSWER, "livingroom", 1, FLUSH, 120);
    assert_int_equal(d.hdr.ancount, OTA_CFG_MDNS_MAX_ADDRS + 8);
}

/* ================================================================== the names' life */

static void test_waits_silently_without_address(void **state)
{
    (void)state;
    start();
    int polls = 0;
    for (uint32_t end = NOW + 5000; NOW != end; polls++) {
        step();
        assert_int_equal(ota_mdns_state(&M), OTA_MDNS_WAITING);
        uint32_t next = ota_mdns_next_ms(&M, NOW);
        assert_in_range(next, 1, 1000); /* nothing due: no busy loop */
    }
    assert_int_equal(P.n_sent, 0);
    /* the addresses are read about once a second, not on every poll */
    assert_in_range(P.addrs_calls, 5, 6);
    /* queries are not answered: there is no name yet */
    ask("livingroom.local", OTA_DNS_TYPE_A);
    run_for(200);
    assert_int_equal(P.n_sent, 0);
}

/* Address appears -> 3 probes 250 ms apart after 0-250 ms -> 2 announcements 1 s
 * apart -> RUNNING, and nothing more unless asked. */
static void test_probe_then_announce(void **state)
{
    (void)state;
    start();
    run_for(1500);
    assert_int_equal(P.n_sent, 0);
    addrs_v4_only();
    uint32_t appeared = NOW;
    run_until_sent(1000 + 250);
    uint32_t t0 = P.sent[0].at;
    /* found at the next reading of the addresses (at most 1 s), then 0-250 ms */
    assert_true(t0 - appeared <= 1000 + 249);
    assert_int_equal(ota_mdns_state(&M), OTA_MDNS_PROBING);
    assert_true(has_log("mdns: probing livingroom.local"));
    run_to(t0 + 749);
    assert_int_equal(ota_mdns_state(&M), OTA_MDNS_PROBING);
    assert_int_equal(P.n_sent, 3);
    assert_int_equal(P.sent[1].at, t0 + 250);
    assert_int_equal(P.sent[2].at, t0 + 500);
    for (int i = 0; i < 3; i++)
        check_probe(&P.sent[i], "livingroom", 4, 1);
    step();
    assert_int_equal(ota_mdns_state(&M), OTA_MDNS_ANNOUNCING);
    assert_true(has_log("mdns: announcing livingroom.local"));
    assert_int_equal(P.n_sent, 4);
    assert_int_equal(P.sent[3].at, t0 + 750);
    run_to(t0 + 1749);
    assert_int_equal(P.n_sent, 4);
    assert_int_equal(ota_mdns_state(&M), OTA_MDNS_ANNOUNCING);
    step();
    assert_int_equal(ota_mdns_state(&M), OTA_MDNS_RUNNING);
    assert_int_equal(P.n_sent, 5);
    assert_int_equal(P.sent[4].at, t0 + 1750);
    check_announcement(&P.sent[3], "livingroom", 4, 1, 1);
    check_announcement(&P.sent[4], "livingroom", 4, 1, 1);
    assert_string_equal(ota_mdns_name(&M), "livingroom");
    /* no more traffic of its own */
    run_for(20000);
    assert_int_equal(P.n_sent, 5);
    assert_int_equal(ota_mdns_state(&M), OTA_MDNS_RUNNING);
}

/* The first probe waits a random 0-250 ms (RFC 6762 8.1), not always the same. */
static void test_probe_delay_is_random(void **state)
{
    (void)state;
    bool seen[250] = {false};
    int distinct = 0;
    for (uint8_t seed = 0; seed < 24; seed++) {
        setup(NULL);
        P.seed = seed;
        addrs_v4_only();
        start();
        run_until_sent(300);
        uint32_t delay = P.sent[0].at - 1001; /* the addresses are read at the first poll */
        assert_in_range(delay, 0, 249);
        if (!seen[delay]) {
            seen[delay] = true;
            distinct++;
        }
    }
    assert_true(distinct >= 8);
}

/* Per link: every interface and family gets its own probes and announcements, to
 * its group, with only that interface's addresses. */
static void test_each_link_separately(void **state)
{
    (void)state;
    ota_ip_t a[3] = {ip4(1, 10, 0, 0, 5), ip6(1, 5), ip4(2, 192, 168, 7, 5)};
    set_addrs(3, a);
    start();
    run_until_state(OTA_MDNS_RUNNING, 3000);
    assert_int_equal(P.n_sent, 5 * 3);
    for (int round = 0; round < 5; round++) {
        const dgram_t *g = &P.sent[round * 3];
        int seen4_1 = 0, seen6_1 = 0, seen4_2 = 0;
        for (int k = 0; k < 3; k++) {
            g = &P.sent[round * 3 + k];
            assert_int_equal(g->at, P.sent[round * 3].at); /* all links at once */
            uint8_t fam = g->ip.family;
            uint32_t ifx = g->ip.ifindex;
            if (round < 3)
                check_probe(g, "livingroom", fam, ifx);
            else
                check_announcement(g, "livingroom", fam, ifx, 1);
            seen4_1 += fam == 4 && ifx == 1;
            seen6_1 += fam == 6 && ifx == 1;
            seen4_2 += fam == 4 && ifx == 2;
        }
        assert_int_equal(seen4_1, 1);
        assert_int_equal(seen6_1, 1);
        assert_int_equal(seen4_2, 1);
    }
    /* an A question on interface 2 gets interface 2's address, to its group */
    run_for(1100);
    clear_sent();
    qb_t b;
    qb_init(&b, 0, 0);
    qb_q(&b, "livingroom.local", OTA_DNS_TYPE_A, OTA_DNS_CLASS_IN);
    ota_ip_t from2 = ip4(2, 192, 168, 7, 9);
    deliver(&b, &from2, 5353);
    assert_int_equal(P.n_sent, 1);
    assert_true(is_group(&P.sent[0].ip, 4, 2));
    dmsg_t d;
    decode(&P.sent[0], &d);
    check_addrs(&d, OTA_DNS_SEC_ANSWER, "livingroom", 2, FLUSH, 120);
    assert_int_equal(d.nr, 1); /* no IPv6 on interface 2: no AAAA additional */
    /* over IPv6 on interface 1: to ff02::fb, interface 1's A and AAAA */
    clear_sent();
    qb_init(&b, 0, 0);
    qb_q(&b, "livingroom.local", OTA_DNS_TYPE_A, OTA_DNS_CLASS_IN);
    deliver(&b, peer6(), 5353);
    assert_int_equal(P.n_sent, 1);
    assert_true(is_group(&P.sent[0].ip, 6, 1));
    decode(&P.sent[0], &d);
    assert_int_equal(d.hdr.ancount, 1);
    assert_int_equal(d.hdr.arcount, 1);
    check_a_answer(&d, "livingroom", 1, FLUSH, 120);
}

/* Our own packets come back to us (multicast loopback): no conflict, no defer. */
static void loop_back(int *fed, const ota_ip_t *own4, const ota_ip_t *own6, bool every_if)
{
    for (; *fed < P.n_sent; (*fed)++) {
        const dgram_t *g = &P.sent[*fed];
        ota_ip_t from = g->ip.family == 4 ? *own4 : *own6;
        uint32_t first = g->ip.ifindex, last = g->ip.ifindex;
        if (every_if) { /* the interfaces share one LAN: heard on each of them */
            first = 1;
            last = 2;
        }
        for (uint32_t ifx = first; ifx <= last; ifx++) {
            from.ifindex = ifx;
            ota_mdns_input(&M, g->data, g->len, &from, 5353, NOW);
        }
    }
}

static void test_own_packets_are_no_conflict(void **state)
{
    (void)state;
    addrs_std();
    start();
    ota_ip_t own4 = ip4(1, 10, 0, 0, 5), own6 = ip6(1, 5);
    int fed = 0;
    while (NOW < 5000) {
        step();
        loop_back(&fed, &own4, &own6, false);
    }
    assert_int_equal(ota_mdns_state(&M), OTA_MDNS_RUNNING);
    assert_string_equal(ota_mdns_name(&M), "livingroom");
    assert_int_equal(P.n_sent, 2 * 5); /* the looped-back packets got no answers */
    assert_false(log_mentions("taken"));
    assert_false(log_mentions("tie-break"));
    assert_false(log_mentions("different data"));
}

/* Two interfaces on the same LAN: each probe is heard on both, with the other
 * interface's address in it. It is still our own probe. */
static void test_own_probes_on_another_interface(void **state)
{
    (void)state;
    ota_ip_t a[2] = {ip4(1, 10, 0, 0, 5), ip4(2, 10, 0, 0, 6)};
    set_addrs(2, a);
    start();
    ota_ip_t own4 = ip4(1, 10, 0, 0, 5), own6 = ip6(1, 5);
    int fed = 0;
    while (NOW < 5000) {
        step();
        loop_back(&fed, &own4, &own6, true);
    }
    assert_false(log_mentions("tie-break"));
    assert_false(log_mentions("taken"));
    assert_int_equal(ota_mdns_state(&M), OTA_MDNS_RUNNING);
    assert_string_equal(ota_mdns_name(&M), "livingroom");
    assert_int_equal(P.n_sent, 2 * 5);
}

/* A send the port drops (WOULD_BLOCK) does not stop anything: mDNS tolerates loss. */
static void test_dropped_sends(void **state)
{
    (void)state;
    P.send_result = OTA_ERR_WOULD_BLOCK;
    addrs_std();
    start();
    run_until_state(OTA_MDNS_RUNNING, 3000);
    assert_int_equal(P.n_sent, 10);
    P.send_result = OTA_ERR_IO;
    run_for(1100);
    clear_sent();
    ask("livingroom.local", OTA_DNS_TYPE_A);
    assert_int_equal(P.n_sent, 1);
    assert_int_equal(ota_mdns_state(&M), OTA_MDNS_RUNNING);
}

/* The clock wraps around 2^32 in the middle of probing and announcing. */
static void test_clock_wraparound(void **state)
{
    (void)state;
    NOW = 0xFFFFFE00u;
    addrs_v4_only();
    start();
    run_until_state(OTA_MDNS_RUNNING, 3000);
    assert_int_equal(P.n_sent, 5);
    assert_int_equal(P.sent[1].at - P.sent[0].at, 250);
    assert_int_equal(P.sent[2].at - P.sent[1].at, 250);
    assert_int_equal(P.sent[3].at - P.sent[2].at, 250);
    assert_int_equal(P.sent[4].at - P.sent[3].at, 1000);
    assert_true(NOW < 0x10000u); /* it did wrap */
    run_for(1100);
    clear_sent();
    ask("_ota._tcp.local", OTA_DNS_TYPE_PTR);
    uint32_t t = NOW;
    run_until_sent(200);
    assert_in_range(P.sent[0].at - t, 20, 120);
    uint32_t next = ota_mdns_next_ms(&M, NOW);
    assert_in_range(next, 1, 1000);
}

/* ================================================================== answers */

/* The one multicast answer a query got, decoded; checks it went to the group. */
static void one_answer(dmsg_t *d, uint8_t family)
{
    assert_int_equal(P.n_sent, 1);
    assert_true(is_group(&P.sent[0].ip, family, 1));
    assert_int_equal(P.sent[0].port, 5353);
    decode(&P.sent[0], d);
    assert_int_equal(d->hdr.id, 0);
    assert_int_equal(d->hdr.flags, RESPONSE);
    assert_int_equal(d->nq, 0); /* multicast responses carry no questions (6) */
    assert_int_equal(d->hdr.nscount, 0);
}

static void test_answers_a_at_once(void **state)
{
    (void)state;
    bring_up();
    ask("livingroom.local", OTA_DNS_TYPE_A);
    dmsg_t d;
    one_answer(&d, 4); /* unique records: no delay, sent within the input call */
    assert_int_equal(d.hdr.ancount, 1);
    assert_int_equal(d.hdr.arcount, 1);
    check_a_answer(&d, "livingroom", 1, FLUSH, 120);
    const drr_t *x = find_rr(&d, OTA_DNS_SEC_ADDITIONAL, "livingroom.local", OTA_DNS_TYPE_AAAA);
    assert_non_null(x);
    assert_int_equal(x->rclass, FLUSH);
    assert_int_equal(x->ttl, 120);
    run_for(300);
    assert_int_equal(P.n_sent, 1);

    /* AAAA over IPv6: to ff02::fb, the A record as additional */
    clear_sent();
    qb_t b;
    qb_init(&b, 0, 0);
    qb_q(&b, "livingroom.local", OTA_DNS_TYPE_AAAA, OTA_DNS_CLASS_IN);
    deliver(&b, peer6(), 5353);
    one_answer(&d, 6);
    assert_int_equal(d.hdr.ancount, 1);
    assert_int_equal(d.hdr.arcount, 1);
    assert_non_null(find_rr(&d, OTA_DNS_SEC_ANSWER, "livingroom.local", OTA_DNS_TYPE_AAAA));
    assert_non_null(find_rr(&d, OTA_DNS_SEC_ADDITIONAL, "livingroom.local", OTA_DNS_TYPE_A));

    /* ANY of the host name: both in the answer, nothing additional */
    run_for(1100);
    clear_sent();
    ask("livingroom.local", OTA_DNS_TYPE_ANY);
    one_answer(&d, 4);
    assert_int_equal(d.hdr.ancount, 2);
    assert_int_equal(d.hdr.arcount, 0);
    check_addrs(&d, OTA_DNS_SEC_ANSWER, "livingroom", 0, FLUSH, 120);
}

/* A shared record (PTR) waits 20-120 ms (RFC 6762 6), then comes with what a
 * browser asks next: SRV, TXT and the addresses (RFC 6763 12.1). */
static void test_answers_ptr_delayed_with_additional(void **state)
{
    (void)state;
    bring_up();
    uint32_t lo = 1000, hi = 0;
    for (int round = 0; round < 12; round++) {
        clear_sent();
        uint32_t t = NOW;
        ask("_ota._tcp.local", OTA_DNS_TYPE_PTR);
        assert_int_equal(P.n_sent, 0);
        assert_in_range(ota_mdns_next_ms(&M, NOW), 1, 120); /* (or the address re-read) */
        run_to(t + 19);
        assert_int_equal(P.n_sent, 0); /* nothing before 20 ms */
        run_to(t + 120);
        assert_int_equal(P.n_sent, 1); /* sent by 120 ms */
        uint32_t delay = P.sent[0].at - t;
        lo = delay < lo ? delay : lo;
        hi = delay > hi ? delay : hi;
        dmsg_t d;
        one_answer(&d, 4);
        assert_int_equal(d.hdr.ancount, 1);
        check_ptr(&d, OTA_DNS_SEC_ANSWER, "livingroom", 0, 4500);
        assert_int_equal(d.hdr.arcount, 4);
        check_srv(&d, OTA_DNS_SEC_ADDITIONAL, "livingroom", 0, FLUSH, 120);
        check_txt(&d, OTA_DNS_SEC_ADDITIONAL, "livingroom", 0, FLUSH, 4500);
        check_addrs(&d, OTA_DNS_SEC_ADDITIONAL, "livingroom", 1, FLUSH, 120);
        run_for(1100);
        assert_int_equal(P.n_sent, 1);
    }
    assert_true(hi > lo); /* the delay is random */

    /* the other service the same way */
    clear_sent();
    ask("_arduino._tcp.local", OTA_DNS_TYPE_PTR);
    run_for(120);
    dmsg_t d;
    one_answer(&d, 4);
    assert_int_equal(d.hdr.ancount, 1);
    check_ptr(&d, OTA_DNS_SEC_ANSWER, "livingroom", 1, 4500);
    check_srv(&d, OTA_DNS_SEC_ADDITIONAL, "livingroom", 1, FLUSH, 120);
    check_txt(&d, OTA_DNS_SEC_ADDITIONAL, "livingroom", 1, FLUSH, 4500);
    assert_int_equal(d.hdr.arcount, 4);
}

static void test_answers_service_enumeration(void **state)
{
    (void)state;
    bring_up();
    uint32_t t = NOW;
    ask("_services._dns-sd._udp.local", OTA_DNS_TYPE_PTR);
    run_to(t + 19);
    assert_int_equal(P.n_sent, 0);
    run_to(t + 120);
    dmsg_t d;
    one_answer(&d, 4);
    assert_int_equal(d.hdr.ancount, 2);
    check_enum(&d, OTA_DNS_SEC_ANSWER, 0, 4500);
    check_enum(&d, OTA_DNS_SEC_ANSWER, 1, 4500);
    assert_int_equal(d.hdr.arcount, 0);
}

static void test_answers_instance_records(void **state)
{
    (void)state;
    bring_up();
    dmsg_t d;
    /* SRV: at once, the addresses as additional */
    ask("livingroom._ota._tcp.local", OTA_DNS_TYPE_SRV);
    one_answer(&d, 4);
    assert_int_equal(d.hdr.ancount, 1);
    check_srv(&d, OTA_DNS_SEC_ANSWER, "livingroom", 0, FLUSH, 120);
    assert_int_equal(d.hdr.arcount, 2);
    check_addrs(&d, OTA_DNS_SEC_ADDITIONAL, "livingroom", 1, FLUSH, 120);

    /* TXT: alone */
    clear_sent();
    ask("livingroom._arduino._tcp.local", OTA_DNS_TYPE_TXT);
    one_answer(&d, 4);
    assert_int_equal(d.hdr.ancount, 1);
    check_txt(&d, OTA_DNS_SEC_ANSWER, "livingroom", 1, FLUSH, 4500);
    assert_int_equal(d.hdr.arcount, 0);

    /* ANY: SRV and TXT, the addresses as additional */
    run_for(1100);
    clear_sent();
    ask("livingroom._ota._tcp.local", OTA_DNS_TYPE_ANY);
    one_answer(&d, 4);
    assert_int_equal(d.hdr.ancount, 2);
    check_srv(&d, OTA_DNS_SEC_ANSWER, "livingroom", 0, FLUSH, 120);
    check_txt(&d, OTA_DNS_SEC_ANSWER, "livingroom", 0, FLUSH, 4500);
    assert_int_equal(d.hdr.arcount, 2);
    check_addrs(&d, OTA_DNS_SEC_ADDITIONAL, "livingroom", 1, FLUSH, 120);

    /* ANY of the service type: its PTR (delayed), like a PTR question */
    run_for(1100);
    clear_sent();
    ask("_ota._tcp.local", OTA_DNS_TYPE_ANY);
    assert_int_equal(P.n_sent, 0);
    run_for(120);
    one_answer(&d, 4);
    check_ptr(&d, OTA_DNS_SEC_ANSWER, "livingroom", 0, 4500);
    assert_int_equal(d.hdr.ancount, 1);

    /* several questions in one query: one aggregated answer */
    run_for(1100);
    clear_sent();
    qb_t b;
    qb_init(&b, 0, 0);
    qb_q(&b, "_ota._tcp.local", OTA_DNS_TYPE_PTR, OTA_DNS_CLASS_IN);
    qb_q(&b, "_arduino._tcp.local", OTA_DNS_TYPE_PTR, OTA_DNS_CLASS_IN);
    qb_q(&b, "livingroom.local", OTA_DNS_TYPE_A, OTA_DNS_CLASS_IN);
    deliver(&b, peer4(), 5353);
    run_for(120);
    one_answer(&d, 4);
    assert_int_equal(d.hdr.ancount, 3);
    check_ptr(&d, OTA_DNS_SEC_ANSWER, "livingroom", 0, 4500);
    check_ptr(&d, OTA_DNS_SEC_ANSWER, "livingroom", 1, 4500);
    assert_int_equal(count_rr(&d, OTA_DNS_SEC_ANSWER, "livingroom.local", OTA_DNS_TYPE_A), 1);
    assert_int_equal(d.hdr.arcount, 5); /* SRV+TXT twice, AAAA */
    check_srv(&d, OTA_DNS_SEC_ADDITIONAL, "livingroom", 1, FLUSH, 120);
    check_txt(&d, OTA_DNS_SEC_ADDITIONAL, "livingroom", 0, FLUSH, 4500);
    assert_int_equal(
        count_rr(&d, OTA_DNS_SEC_ADDITIONAL, "livingroom.local", OTA_DNS_TYPE_AAAA), 1);
}

static void test_names_are_case_insensitive(void **state)
{
    (void)state;
    bring_up();
    dmsg_t d;
    ask("LivingRoom.LOCAL", OTA_DNS_TYPE_A);
    one_answer(&d, 4);
    check_a_answer(&d, "livingroom", 1, FLUSH, 120);
    clear_sent();
    ask("LIVINGROOM._Arduino._TCP.Local", OTA_DNS_TYPE_TXT);
    one_answer(&d, 4);
    check_txt(&d, OTA_DNS_SEC_ANSWER, "livingroom", 1, FLUSH, 4500);
    clear_sent();
    ask("_OTA._Tcp.LOCAL", OTA_DNS_TYPE_PTR);
    run_for(120);
    one_answer(&d, 4);
    check_ptr(&d, OTA_DNS_SEC_ANSWER, "livingroom", 0, 4500);
    clear_sent();
    ask("_SERVICES._DNS-SD._UDP.local", OTA_DNS_TYPE_PTR);
    run_for(120);
    one_answer(&d, 4);
    assert_int_equal(d.hdr.ancount, 2);
}

static void test_other_questions_get_nothing(void **state)
{
    (void)state;
    bring_up();
    static const struct {
        const char *name;
        uint16_t type;
        uint16_t qclass;
    } q[] = {
        {"kitchen.local", OTA_DNS_TYPE_A, OTA_DNS_CLASS_IN},
        {"livingroom.lan", OTA_DNS_TYPE_A, OTA_DNS_CLASS_IN},
        {"livingroom", OTA_DNS_TYPE_A, OTA_DNS_CLASS_IN},
        {"livingroom.local.example", OTA_DNS_TYPE_A, OTA_DNS_CLASS_IN},
        {"x.livingroom.local", OTA_DNS_TYPE_A, OTA_DNS_CLASS_IN},
        {"livingroo.local", OTA_DNS_TYPE_A, OTA_DNS_CLASS_IN},
        {"livingroom-2.local", OTA_DNS_TYPE_A, OTA_DNS_CLASS_IN},
        {"livingroom.local", 15 /* MX */, OTA_DNS_CLASS_IN},
        {"livingroom.local", OTA_DNS_TYPE_TXT, OTA_DNS_CLASS_IN},
        {"livingroom.local", OTA_DNS_TYPE_A, 3 /* CH */},
        {"_http._tcp.local", OTA_DNS_TYPE_PTR, OTA_DNS_CLASS_IN},
        {"_ota._udp.local", OTA_DNS_TYPE_PTR, OTA_DNS_CLASS_IN},
        {"_tcp.local", OTA_DNS_TYPE_PTR, OTA_DNS_CLASS_IN},
        {"local", OTA_DNS_TYPE_PTR, OTA_DNS_CLASS_IN},
        {"_ota._tcp.local", OTA_DNS_TYPE_SRV, OTA_DNS_CLASS_IN},
        {"kitchen._ota._tcp.local", OTA_DNS_TYPE_SRV, OTA_DNS_CLASS_IN},
        {"livingroom._ota._tcp.local", OTA_DNS_TYPE_A, OTA_DNS_CLASS_IN},
        {"livingroom._ota._tcp.local", OTA_DNS_TYPE_PTR, OTA_DNS_CLASS_IN},
        {"livingroom._http._tcp.local", OTA_DNS_TYPE_TXT, OTA_DNS_CLASS_IN},
        {"_services._dns-sd._udp.local", OTA_DNS_TYPE_A, OTA_DNS_CLASS_IN},
        {"_services._dns-sd._tcp.local", OTA_DNS_TYPE_PTR, OTA_DNS_CLASS_IN},
    };
    for (size_t i = 0; i < sizeof q / sizeof q[0]; i++) {
        qb_t b;
        qb_init(&b, 0, 0);
        qb_q(&b, q[i].name, q[i].type, q[i].qclass);
        deliver(&b, peer4(), 5353);
        run_for(150);
        if (P.n_sent != 0)
            fail_msg("answered %s type %u class %u", q[i].name, q[i].type, q[i].qclass);
    }
    /* no questions at all */
    qb_t b;
    qb_init(&b, 0, 0);
    deliver(&b, peer4(), 5353);
    run_for(150);
    assert_int_equal(P.n_sent, 0);
    /* class ANY is a question for us too */
    qb_init(&b, 0, 0);
    qb_q(&b, "livingroom.local", OTA_DNS_TYPE_A, OTA_DNS_CLASS_ANY);
    deliver(&b, peer4(), 5353);
    assert_int_equal(P.n_sent, 1);
}

/* Known-answer suppression (RFC 6762 7.1): not if the querier has the record with
 * at least half its TTL. */
static void test_known_answers(void **state)
{
    (void)state;
    bring_up();
    qb_t b;
    /* PTR with half the TTL: suppressed */
    qb_init(&b, 0, 0);
    qb_q(&b, "_ota._tcp.local", OTA_DNS_TYPE_PTR, OTA_DNS_CLASS_IN);
    qb_ptr(&b, OTA_DNS_SEC_ANSWER, "_ota._tcp.local", 2250, "livingroom._ota._tcp.local");
    deliver(&b, peer4(), 5353);
    run_for(200);
    assert_int_equal(P.n_sent, 0);
    /* ... with a different case too */
    qb_init(&b, 0, 0);
    qb_q(&b, "_ota._tcp.local", OTA_DNS_TYPE_PTR, OTA_DNS_CLASS_IN);
    qb_ptr(&b, OTA_DNS_SEC_ANSWER, "_OTA._tcp.local", 4500, "LivingRoom._ota._tcp.local");
    deliver(&b, peer4(), 5353);
    run_for(200);
    assert_int_equal(P.n_sent, 0);
    /* one second less than half: answered */
    qb_init(&b, 0, 0);
    qb_q(&b, "_ota._tcp.local", OTA_DNS_TYPE_PTR, OTA_DNS_CLASS_IN);
    qb_ptr(&b, OTA_DNS_SEC_ANSWER, "_ota._tcp.local", 2249, "livingroom._ota._tcp.local");
    deliver(&b, peer4(), 5353);
    run_for(200);
    dmsg_t d;
    one_answer(&d, 4);
    check_ptr(&d, OTA_DNS_SEC_ANSWER, "livingroom", 0, 4500);
    /* another host's instance of the same type: answered */
    run_for(1100);
    clear_sent();
    qb_init(&b, 0, 0);
    qb_q(&b, "_ota._tcp.local", OTA_DNS_TYPE_PTR, OTA_DNS_CLASS_IN);
    qb_ptr(&b, OTA_DNS_SEC_ANSWER, "_ota._tcp.local", 4500, "kitchen._ota._tcp.local");
    deliver(&b, peer4(), 5353);
    run_for(200);
    one_answer(&d, 4);
    check_ptr(&d, OTA_DNS_SEC_ANSWER, "livingroom", 0, 4500);
    /* enumeration: the known type is left out, the other one answered */
    run_for(1100);
    clear_sent();
    qb_init(&b, 0, 0);
    qb_q(&b, "_services._dns-sd._udp.local", OTA_DNS_TYPE_PTR, OTA_DNS_CLASS_IN);
    qb_ptr(&b, OTA_DNS_SEC_ANSWER, "_services._dns-sd._udp.local", 4500, "_ota._tcp.local");
    deliver(&b, peer4(), 5353);
    run_for(200);
    one_answer(&d, 4);
    assert_int_equal(d.hdr.ancount, 1);
    check_enum(&d, OTA_DNS_SEC_ANSWER, 1, 4500);
    /* a unique record the querier knows: SRV with our data suppressed ... */
    run_for(1100);
    clear_sent();
    qb_init(&b, 0, 0);
    qb_q(&b, "livingroom._ota._tcp.local", OTA_DNS_TYPE_SRV, OTA_DNS_CLASS_IN);
    qb_srv(&b, OTA_DNS_SEC_ANSWER, "livingroom._ota._tcp.local", OTA_DNS_CLASS_IN, 60, 0, 0,
           3232, "livingroom.local");
    deliver(&b, peer4(), 5353);
    run_for(200);
    assert_int_equal(P.n_sent, 0);
    /* ... but not when its TTL is too low, or its data is not ours */
    qb_init(&b, 0, 0);
    qb_q(&b, "livingroom._ota._tcp.local", OTA_DNS_TYPE_SRV, OTA_DNS_CLASS_IN);
    qb_srv(&b, OTA_DNS_SEC_ANSWER, "livingroom._ota._tcp.local", OTA_DNS_CLASS_IN, 59, 0, 0,
           3232, "livingroom.local");
    deliver(&b, peer4(), 5353);
    assert_int_equal(P.n_sent, 1);
    run_for(1100);
    clear_sent();
    qb_init(&b, 0, 0);
    qb_q(&b, "livingroom._ota._tcp.local", OTA_DNS_TYPE_SRV, OTA_DNS_CLASS_IN);
    qb_srv(&b, OTA_DNS_SEC_ANSWER, "livingroom._ota._tcp.local", OTA_DNS_CLASS_IN, 120, 0, 0,
           3233, "livingroom.local");
    deliver(&b, peer4(), 5353);
    assert_int_equal(P.n_sent, 1);
    /* TXT with our data suppressed */
    run_for(1100);
    clear_sent();
    qb_init(&b, 0, 0);
    qb_q(&b, "livingroom._ota._tcp.local", OTA_DNS_TYPE_TXT, OTA_DNS_CLASS_IN);
    qb_txt(&b, OTA_DNS_SEC_ANSWER, "livingroom._ota._tcp.local", OTA_DNS_CLASS_IN, 4500, OTA_TXT);
    deliver(&b, peer4(), 5353);
    run_for(200);
    assert_int_equal(P.n_sent, 0);
}

/* A record at most once a second per link (RFC 6762 6). */
static void test_rate_limit(void **state)
{
    (void)state;
    bring_up();
    uint32_t t = NOW;
    ask("livingroom.local", OTA_DNS_TYPE_A);
    assert_int_equal(P.n_sent, 1);
    run_to(t + 500);
    ask("livingroom.local", OTA_DNS_TYPE_A);
    run_to(t + 999);
    ask("livingroom.local", OTA_DNS_TYPE_A);
    assert_int_equal(P.n_sent, 1);
    run_to(t + 1000);
    ask("livingroom.local", OTA_DNS_TYPE_A);
    assert_int_equal(P.n_sent, 2);
    /* per link: the same question over IPv6 is answered there */
    qb_t b;
    qb_init(&b, 0, 0);
    qb_q(&b, "livingroom.local", OTA_DNS_TYPE_A, OTA_DNS_CLASS_IN);
    deliver(&b, peer6(), 5353);
    assert_int_equal(P.n_sent, 3);
    assert_true(is_group(&P.sent[2].ip, 6, 1));

    /* the same PTR question twice within a second: one answer */
    run_for(1100);
    clear_sent();
    t = NOW;
    ask("_ota._tcp.local", OTA_DNS_TYPE_PTR);
    run_to(t + 300);
    ask("_ota._tcp.local", OTA_DNS_TYPE_PTR);
    run_to(t + 1500);
    assert_int_equal(P.n_sent, 1);
}

/* A probe for our name is answered on the group even 300 ms after the record went
 * out, while anything else waits a second (RFC 6762 6, 8.1); sooner than that the
 * prober gets the answer unicast, as its QU questions ask (5.4). */
static void test_probe_defence_after_announcement(void **state)
{
    (void)state;
    addrs_v4_only();
    start();
    run_until_state(OTA_MDNS_ANNOUNCING, 3000);
    uint32_t t = NOW;
    clear_sent();
    ota_ip_t theirs = ip4(1, 10, 0, 0, 77);
    qb_t b;
    /* a probe 100 ms after the announcement: too soon for the group, so the
     * defence goes to the prober itself (its questions are QU) */
    run_to(t + 100);
    qb_init(&b, 0, 0);
    qb_q(&b, "livingroom.local", OTA_DNS_TYPE_ANY, QU);
    qb_a(&b, OTA_DNS_SEC_AUTHORITY, "livingroom.local", OTA_DNS_CLASS_IN, 120, &theirs);
    deliver(&b, peer4(), 5353);
    assert_int_equal(P.n_sent, 1);
    assert_int_equal(P.sent[0].port, 5353);
    assert_memory_equal(P.sent[0].ip.addr, peer4()->addr, 4);
    dmsg_t d;
    decode(&P.sent[0], &d);
    assert_int_equal(d.hdr.flags, RESPONSE);
    assert_int_equal(d.hdr.ancount, 1);
    check_addrs(&d, OTA_DNS_SEC_ANSWER, "livingroom", 0, FLUSH, 120);
    clear_sent();
    /* an ordinary query 300 ms later: held back by the rate limit */
    run_to(t + 300);
    ask("livingroom.local", OTA_DNS_TYPE_A);
    assert_int_equal(P.n_sent, 0);
    /* the probe 300 ms later: defended at once */
    qb_init(&b, 0, 0);
    qb_q(&b, "livingroom.local", OTA_DNS_TYPE_ANY, QU);
    qb_a(&b, OTA_DNS_SEC_AUTHORITY, "livingroom.local", OTA_DNS_CLASS_IN, 120, &theirs);
    deliver(&b, peer4(), 5353);
    one_answer(&d, 4);
    assert_int_equal(d.hdr.ancount, 1);
    check_addrs(&d, OTA_DNS_SEC_ANSWER, "livingroom", 0, FLUSH, 120);
    /* a probe for the instance name: its SRV and TXT */
    clear_sent();
    qb_init(&b, 0, 0);
    qb_q(&b, "livingroom._ota._tcp.local", OTA_DNS_TYPE_ANY, QU);
    qb_srv(&b, OTA_DNS_SEC_AUTHORITY, "livingroom._ota._tcp.local", OTA_DNS_CLASS_IN, 120, 0, 0,
           3232, "other.local");
    deliver(&b, peer4(), 5353);
    one_answer(&d, 4);
    check_srv(&d, OTA_DNS_SEC_ANSWER, "livingroom", 0, FLUSH, 120);
    check_txt(&d, OTA_DNS_SEC_ANSWER, "livingroom", 0, FLUSH, 4500);
    /* still ours: the second announcement on time */
    clear_sent();
    run_to(t + 1000);
    assert_int_equal(ota_mdns_state(&M), OTA_MDNS_RUNNING);
    assert_string_equal(ota_mdns_name(&M), "livingroom");
    assert_int_equal(P.n_sent, 1);
    assert_int_equal(P.sent[0].at, t + 1000);
    check_announcement(&P.sent[0], "livingroom", 4, 1, 1);
}

/* Legacy unicast (RFC 6762 6.7): a querier not on port 5353 gets a unicast reply
 * with its id and question, TTLs of at most 10 s and no cache-flush bit. */
/* ipv4_only (a node whose services listen on IPv4 only): no AAAA anywhere, not in
 * probes, announcements or answers, but queries over IPv6 still get the A records */
static void test_ipv4_only(void **state)
{
    (void)state;
    addrs_std();
    ota_mdns_config_t c = cfg_std();
    c.ipv4_only = true;
    start_cfg(&c);
    run_until_state(OTA_MDNS_RUNNING, 3000);
    assert_true(P.n_sent > 0);
    for (int i = 0; i < P.n_sent; i++) {
        dmsg_t d;
        decode(&P.sent[i], &d);
        for (int k = 0; k < d.nr; k++)
            assert_int_not_equal(d.r[k].type, OTA_DNS_TYPE_AAAA);
    }
    run_for(1100);
    clear_sent();
    qb_t b;
    qb_init(&b, 7, 0);
    qb_q(&b, "livingroom.local", OTA_DNS_TYPE_ANY, OTA_DNS_CLASS_IN);
    deliver(&b, peer6(), 40000);
    assert_int_equal(P.n_sent, 1);
    dmsg_t d;
    decode(&P.sent[0], &d);
    assert_int_equal(d.hdr.id, 7);
    assert_non_null(find_rr(&d, OTA_DNS_SEC_ANSWER, "livingroom.local", OTA_DNS_TYPE_A));
    assert_null(find_rr(&d, OTA_DNS_SEC_ANSWER, "livingroom.local", OTA_DNS_TYPE_AAAA));
    assert_null(find_rr(&d, OTA_DNS_SEC_ADDITIONAL, "livingroom.local", OTA_DNS_TYPE_AAAA));
    /* an AAAA question alone: nothing to say */
    clear_sent();
    qb_init(&b, 8, 0);
    qb_q(&b, "livingroom.local", OTA_DNS_TYPE_AAAA, OTA_DNS_CLASS_IN);
    deliver(&b, peer4(), 40000);
    assert_int_equal(P.n_sent, 0);
}

static void test_legacy_unicast(void **state)
{
    (void)state;
    bring_up();
    qb_t b;
    qb_init(&b, 0x1234, 0x0100 /* RD, as a stub resolver sends it */);
    qb_q(&b, "livingroom.local", OTA_DNS_TYPE_A, OTA_DNS_CLASS_IN);
    deliver(&b, peer4(), 40000);
    assert_int_equal(P.n_sent, 1);
    const dgram_t *g = &P.sent[0];
    assert_int_equal(g->port, 40000);
    assert_int_equal(g->ip.family, 4);
    assert_memory_equal(g->ip.addr, peer4()->addr, 4);
    assert_int_equal(g->ip.ifindex, 1);
    dmsg_t d;
    decode(g, &d);
    assert_int_equal(d.hdr.id, 0x1234);
    assert_true((d.hdr.flags & OTA_DNS_FLAG_QR) != 0);
    assert_true((d.hdr.flags & OTA_DNS_FLAG_AA) != 0);
    assert_int_equal(d.hdr.flags & OTA_DNS_OPCODE_MASK, 0);
    assert_int_equal(d.hdr.flags & 0x000f, 0);
    assert_int_equal(d.nq, 1);
    assert_string_equal(d.q[0].name, "livingroom.local");
    assert_int_equal(d.q[0].type, OTA_DNS_TYPE_A);
    assert_int_equal(d.q[0].qclass, OTA_DNS_CLASS_IN);
    assert_int_equal(d.hdr.ancount, 1);
    check_a_answer(&d, "livingroom", 1, OTA_DNS_CLASS_IN, 10);
    assert_int_equal(d.hdr.arcount, 1);
    const drr_t *x = find_rr(&d, OTA_DNS_SEC_ADDITIONAL, "livingroom.local", OTA_DNS_TYPE_AAAA);
    assert_non_null(x);
    assert_int_equal(x->rclass, OTA_DNS_CLASS_IN);
    assert_int_equal(x->ttl, 10);

    /* no rate limit for unicast: asked again, answered again */
    clear_sent();
    deliver(&b, peer4(), 40000);
    assert_int_equal(P.n_sent, 1);

    /* PTR with the QU bit from IPv6: no delay needed, every TTL <= 10, no flush */
    clear_sent();
    qb_init(&b, 0xbeef, 0);
    qb_q(&b, "_ota._tcp.local", OTA_DNS_TYPE_PTR, QU);
    deliver(&b, peer6(), 50123);
    assert_int_equal(P.n_sent, 1);
    g = &P.sent[0];
    assert_int_equal(g->port, 50123);
    assert_int_equal(g->ip.family, 6);
    assert_memory_equal(g->ip.addr, peer6()->addr, 16);
    decode(g, &d);
    assert_int_equal(d.hdr.id, 0xbeef);
    assert_int_equal(d.nq, 1);
    assert_string_equal(d.q[0].name, "_ota._tcp.local");
    assert_int_equal(d.q[0].type, OTA_DNS_TYPE_PTR);
    assert_int_equal(d.q[0].qclass, OTA_DNS_CLASS_IN);
    assert_int_equal(d.hdr.ancount, 1);
    check_ptr(&d, OTA_DNS_SEC_ANSWER, "livingroom", 0, 10);
    check_srv(&d, OTA_DNS_SEC_ADDITIONAL, "livingroom", 0, OTA_DNS_CLASS_IN, 10);
    check_txt(&d, OTA_DNS_SEC_ADDITIONAL, "livingroom", 0, OTA_DNS_CLASS_IN, 10);
    check_addrs(&d, OTA_DNS_SEC_ADDITIONAL, "livingroom", 1, OTA_DNS_CLASS_IN, 10);
    for (int i = 0; i < d.nr; i++) {
        assert_true(d.r[i].ttl <= 10);
        assert_int_equal(d.r[i].rclass & OTA_DNS_CLASS_TOP, 0);
    }

    /* of two questions only ours is echoed */
    clear_sent();
    qb_init(&b, 7, 0);
    qb_q(&b, "kitchen.local", OTA_DNS_TYPE_A, OTA_DNS_CLASS_IN);
    qb_q(&b, "livingroom._ota._tcp.local", OTA_DNS_TYPE_SRV, OTA_DNS_CLASS_IN);
    deliver(&b, peer4(), 40000);
    assert_int_equal(P.n_sent, 1);
    decode(&P.sent[0], &d);
    assert_int_equal(d.nq, 1);
    assert_string_equal(d.q[0].name, "livingroom._ota._tcp.local");
    check_srv(&d, OTA_DNS_SEC_ANSWER, "livingroom", 0, OTA_DNS_CLASS_IN, 10);

    /* a question for someone else: no reply */
    clear_sent();
    qb_init(&b, 8, 0);
    qb_q(&b, "kitchen.local", OTA_DNS_TYPE_A, OTA_DNS_CLASS_IN);
    deliver(&b, peer4(), 40000);
    run_for(200);
    assert_int_equal(P.n_sent, 0);
    /* nothing of this disturbed the multicast side */
    ask("livingroom.local", OTA_DNS_TYPE_A);
    assert_int_equal(P.n_sent, 1);
    assert_true(is_group(&P.sent[0].ip, 4, 1));
}

/* A short host TTL is kept in legacy answers when it is under 10 s. */
static void test_legacy_keeps_short_ttl(void **state)
{
    (void)state;
    ota_mdns_config_t c = cfg_std();
    c.host_ttl = 5;
    addrs_std();
    start_cfg(&c);
    run_until_state(OTA_MDNS_RUNNING, 3000);
    clear_sent();
    qb_t b;
    qb_init(&b, 1, 0);
    qb_q(&b, "livingroom.local", OTA_DNS_TYPE_A, OTA_DNS_CLASS_IN);
    deliver(&b, peer4(), 40000);
    dmsg_t d;
    decode(&P.sent[0], &d);
    check_a_answer(&d, "livingroom", 1, OTA_DNS_CLASS_IN, 5);
}

/* A QU question (RFC 6762 5.4) from port 5353: answered (multicast is fine). */
static void test_qu_question_answered(void **state)
{
    (void)state;
    bring_up();
    qb_t b;
    qb_init(&b, 0, 0);
    qb_q(&b, "livingroom.local", OTA_DNS_TYPE_A, QU);
    deliver(&b, peer4(), 5353);
    assert_int_equal(P.n_sent, 1);
    dmsg_t d;
    decode(&P.sent[0], &d);
    assert_int_equal(P.sent[0].port, 5353);
    assert_true(is_group(&P.sent[0].ip, 4, 1) ||
                memcmp(P.sent[0].ip.addr, peer4()->addr, 4) == 0);
    assert_int_equal(d.hdr.flags, RESPONSE);
    check_a_answer(&d, "livingroom", 1, FLUSH, 120);
}

/* ================================================================== conflicts */

/* Started with IPv4 only, stopped right after the first probe. */
static void start_probing_v4(void)
{
    addrs_v4_only();
    start();
    run_until_sent(300);
    assert_int_equal(ota_mdns_state(&M), OTA_MDNS_PROBING);
    clear_sent();
    clear_log();
}

static void test_conflict_while_probing_renames(void **state)
{
    (void)state;
    start_probing_v4();
    ota_ip_t other = ip4(1, 10, 0, 0, 99);
    uint32_t t = NOW + 10;
    run_to(t);
    claim_a("livingroom.local", &other, 120);
    assert_string_equal(ota_mdns_name(&M), "livingroom-2");
    assert_int_equal(ota_mdns_state(&M), OTA_MDNS_PROBING);
    assert_true(has_log("mdns: livingroom.local is taken by another host: trying "
                        "livingroom-2.local"));
    /* probing starts over with the new names: 3 probes, 2 announcements */
    run_until_state(OTA_MDNS_RUNNING, 3000);
    assert_int_equal(P.n_sent, 5);
    assert_in_range(P.sent[0].at - t, 0, 249);
    assert_int_equal(P.sent[1].at - P.sent[0].at, 250);
    assert_int_equal(P.sent[2].at - P.sent[1].at, 250);
    for (int i = 0; i < 3; i++)
        check_probe(&P.sent[i], "livingroom-2", 4, 1);
    check_announcement(&P.sent[3], "livingroom-2", 4, 1, 1);
    check_announcement(&P.sent[4], "livingroom-2", 4, 1, 1);
    /* it answers to the new name, not to the old one */
    run_for(1100);
    clear_sent();
    ask("livingroom.local", OTA_DNS_TYPE_A);
    assert_int_equal(P.n_sent, 0);
    ask("livingroom-2.local", OTA_DNS_TYPE_A);
    assert_int_equal(P.n_sent, 1);
    /* and a second conflict, while probing again, gives -3 */
    claim_a("livingroom-2.local", &other, 120);
    assert_int_equal(ota_mdns_state(&M), OTA_MDNS_PROBING);
    assert_string_equal(ota_mdns_name(&M), "livingroom-2"); /* running: same name */
    claim_a("livingroom-2.local", &other, 120);
    assert_string_equal(ota_mdns_name(&M), "livingroom-3");
}

/* A renamed name never outgrows a label: the base is cut for the suffix. */
static void test_rename_of_a_long_name(void **state)
{
    (void)state;
    char n63[64], want[80];
    memset(n63, 'n', 63);
    n63[63] = '\0';
    ota_mdns_config_t c = cfg_std();
    c.name = n63;
    c.n_services = 0;
    addrs_v4_only();
    CFG = c;
    assert_int_equal(ota_mdns_setup(&M, &IO, &RNG, &LOG, &CFG, NOW), OTA_OK);
    run_until_sent(300);
    ota_ip_t other = ip4(1, 10, 0, 0, 99);
    char host[80];
    snprintf(host, sizeof host, "%s.local", n63);
    claim_a(host, &other, 120);
    memset(want, 'n', 61);
    memcpy(want + 61, "-2", 3);
    assert_string_equal(ota_mdns_name(&M), want);
    assert_int_equal(strlen(ota_mdns_name(&M)), 63);
}

static void test_conflicting_and_consistent_records(void **state)
{
    (void)state;
    ota_ip_t other = ip4(1, 10, 0, 0, 99);
    qb_t b;
    static const char *const other_txt[] = {"txtvers=1", "name=kitchen", NULL};

    /* not conflicts: our own address, a goodbye, a shared record, another name,
     * an SRV with our port and target (priority and weight, case of the target do
     * not matter), TXT with our data, a non-IN class, a response from port 40000 */
    start_probing_v4();
    ota_ip_t ours = ip4(1, 10, 0, 0, 5);
    claim_a("livingroom.local", &ours, 120);
    claim_a("livingroom.local", &other, 0);
    claim_a("kitchen.local", &other, 120);
    claim_a("livingroom._ota._tcp.local", &other, 120);
    qb_init(&b, 0, RESPONSE);
    qb_ptr(&b, OTA_DNS_SEC_ANSWER, "_ota._tcp.local", 4500, "kitchen._ota._tcp.local");
    qb_srv(&b, OTA_DNS_SEC_ANSWER, "livingroom._ota._tcp.local", FLUSH, 120, 1, 5, 3232,
           "LIVINGROOM.local");
    qb_txt(&b, OTA_DNS_SEC_ADDITIONAL, "livingroom._ota._tcp.local", FLUSH, 4500, OTA_TXT);
    deliver(&b, peer4(), 5353);
    qb_init(&b, 0, RESPONSE);
    qb_a(&b, OTA_DNS_SEC_ANSWER, "livingroom.local", 3 | OTA_DNS_CLASS_TOP, 120, &other);
    deliver(&b, peer4(), 5353);
    qb_init(&b, 0, RESPONSE);
    qb_a(&b, OTA_DNS_SEC_ANSWER, "livingroom.local", FLUSH, 120, &other);
    deliver(&b, peer4(), 40000);
    assert_string_equal(ota_mdns_name(&M), "livingroom");
    assert_int_equal(ota_mdns_state(&M), OTA_MDNS_PROBING);
    assert_false(log_mentions("taken"));

    /* conflicts: an SRV with another port */
    setup(NULL);
    start_probing_v4();
    qb_init(&b, 0, RESPONSE);
    qb_srv(&b, OTA_DNS_SEC_ANSWER, "livingroom._ota._tcp.local", FLUSH, 120, 0, 0, 9999,
           "livingroom.local");
    deliver(&b, peer4(), 5353);
    assert_string_equal(ota_mdns_name(&M), "livingroom-2");
    assert_true(has_log("mdns: livingroom.local is taken by another host: trying "
                        "livingroom-2.local"));

    /* ... or another target */
    setup(NULL);
    start_probing_v4();
    qb_init(&b, 0, RESPONSE);
    qb_srv(&b, OTA_DNS_SEC_ANSWER, "livingroom._arduino._tcp.local", FLUSH, 120, 0, 0, 8266,
           "kitchen.local");
    deliver(&b, peer4(), 5353);
    assert_string_equal(ota_mdns_name(&M), "livingroom-2");

    /* ... a TXT with other data */
    setup(NULL);
    start_probing_v4();
    qb_init(&b, 0, RESPONSE);
    qb_txt(&b, OTA_DNS_SEC_ANSWER, "livingroom._ota._tcp.local", FLUSH, 4500, other_txt);
    deliver(&b, peer4(), 5353);
    assert_string_equal(ota_mdns_name(&M), "livingroom-2");

    /* ... an AAAA we do not have, in the additional section */
    setup(NULL);
    start_probing_v4();
    ota_ip_t other6 = ip6(1, 99);
    qb_init(&b, 0, RESPONSE);
    qb_ptr(&b, OTA_DNS_SEC_ANSWER, "_http._tcp.local", 4500, "x._http._tcp.local");
    qb_a(&b, OTA_DNS_SEC_ADDITIONAL, "LivingRoom.local", FLUSH, 120, &other6);
    deliver(&b, peer6(), 5353);
    assert_string_equal(ota_mdns_name(&M), "livingroom-2");
}

/* Announcing or running: a conflict sends the names back to probing, same name. */
static void test_conflict_while_running_reprobes(void **state)
{
    (void)state;
    addrs_v4_only();
    start();
    run_until_state(OTA_MDNS_RUNNING, 3000);
    run_for(5000);
    clear_sent();
    clear_log();
    ota_ip_t other = ip4(1, 10, 0, 0, 99);
    claim_a("livingroom.local", &other, 120);
    assert_int_equal(ota_mdns_state(&M), OTA_MDNS_PROBING);
    assert_string_equal(ota_mdns_name(&M), "livingroom");
    assert_true(has_log("mdns: another host answers for livingroom.local with different "
                        "data: probing the name again"));
    assert_true(ota_mdns_next_ms(&M, NOW) <= 1);
    /* at once */
    step();
    assert_int_equal(P.n_sent, 1);
    check_probe(&P.sent[0], "livingroom", 4, 1);
    /* nobody objects: ours again, same name */
    run_until_state(OTA_MDNS_RUNNING, 3000);
    assert_int_equal(P.n_sent, 5);
    check_announcement(&P.sent[4], "livingroom", 4, 1, 1);
    assert_string_equal(ota_mdns_name(&M), "livingroom");

    /* during the announcements too */
    clear_sent();
    claim_a("livingroom.local", &other, 120);
    run_until_state(OTA_MDNS_ANNOUNCING, 3000);
    claim_a("livingroom.local", &other, 120);
    assert_int_equal(ota_mdns_state(&M), OTA_MDNS_PROBING);
    assert_string_equal(ota_mdns_name(&M), "livingroom");
    /* and the other host answers our probe: now it is a rename */
    run_until_sent(10);
    claim_a("livingroom.local", &other, 120);
    assert_string_equal(ota_mdns_name(&M), "livingroom-2");
}

/* 15 conflicts within 10 s: wait 5 s before the next probe (RFC 6762 8.1). */
static void test_conflict_storm_backs_off(void **state)
{
    (void)state;
    start_probing_v4();
    ota_ip_t other = ip4(1, 10, 0, 0, 99);
    char host[80], want[80];
    for (int i = 1; i <= 15; i++) {
        run_until_sent(300); /* each new name gets probed */
        snprintf(host, sizeof host, "%s.local", ota_mdns_name(&M));
        claim_a(host, &other, 120);
        snprintf(want, sizeof want, "livingroom-%d", i + 1);
        assert_string_equal(ota_mdns_name(&M), want);
        assert_int_equal(ota_mdns_state(&M), i < 15 ? OTA_MDNS_PROBING : OTA_MDNS_WAITING);
    }
    assert_true(NOW < 1000 + 10000); /* all within the first ten seconds */
    assert_true(has_log("mdns: livingroom-15.local is taken by another host: trying "
                        "livingroom-16.local"));
    uint32_t t = NOW;
    clear_sent();
    run_to(t + 4999);
    assert_int_equal(P.n_sent, 0);
    assert_int_equal(ota_mdns_state(&M), OTA_MDNS_WAITING);
    step();
    assert_int_equal(ota_mdns_state(&M), OTA_MDNS_PROBING);
    run_until_sent(300);
    assert_in_range(P.sent[0].at - t, 5000, 5249);
    check_probe(&P.sent[0], "livingroom-16", 4, 1);
    /* one more within the ten seconds: another 5 s wait */
    claim_a("livingroom-16.local", &other, 120);
    assert_string_equal(ota_mdns_name(&M), "livingroom-17");
    assert_int_equal(ota_mdns_state(&M), OTA_MDNS_WAITING);
    assert_in_range(ota_mdns_next_ms(&M, NOW), 1, 1000);
    t = NOW;
    clear_sent();
    run_to(t + 4999);
    assert_int_equal(P.n_sent, 0);
    run_until_sent(300);
    assert_in_range(P.sent[0].at - t, 5000, 5249);
    /* ten seconds later the count starts over: a conflict probes again at once */
    assert_true(NOW - 1000 > 10000);
    claim_a("livingroom-17.local", &other, 120);
    assert_string_equal(ota_mdns_name(&M), "livingroom-18");
    assert_int_equal(ota_mdns_state(&M), OTA_MDNS_PROBING);
}

/* Simultaneous probes (RFC 6762 8.2): the lexicographically later data wins. */
static void other_host_probes(const ota_ip_t *addr)
{
    qb_t b;
    qb_init(&b, 0, 0);
    qb_q(&b, "livingroom.local", OTA_DNS_TYPE_ANY, QU);
    qb_a(&b, OTA_DNS_SEC_AUTHORITY, "livingroom.local", OTA_DNS_CLASS_IN, 120, addr);
    ota_ip_t from = *addr;
    from.ifindex = 1;
    deliver(&b, &from, 5353);
}

static void test_tiebreak_lost_defers(void **state)
{
    (void)state;
    start_probing_v4(); /* our data: A 10.0.0.5 */
    uint32_t t0 = NOW;
    run_to(t0 + 10);
    ota_ip_t later = ip4(1, 10, 0, 0, 200);
    other_host_probes(&later);
    assert_true(log_mentions("wins the tie-break"));
    assert_int_equal(ota_mdns_state(&M), OTA_MDNS_PROBING);
    assert_string_equal(ota_mdns_name(&M), "livingroom");
    assert_int_equal(P.n_sent, 0); /* its QU questions get no answer: not ours yet */
    run_to(t0 + 10 + 999);
    assert_int_equal(P.n_sent, 0); /* a second's pause, no announcement */
    step();
    assert_int_equal(P.n_sent, 1); /* then probing again from the start */
    check_probe(&P.sent[0], "livingroom", 4, 1);
    run_until_state(OTA_MDNS_RUNNING, 3000);
    assert_int_equal(P.n_sent, 5);
    assert_int_equal(P.sent[1].at, t0 + 1010 + 250);
    assert_int_equal(P.sent[2].at, t0 + 1010 + 500);
    assert_int_equal(P.sent[3].at, t0 + 1010 + 750);
    for (int i = 0; i < 3; i++)
        check_probe(&P.sent[i], "livingroom", 4, 1);
    check_announcement(&P.sent[3], "livingroom", 4, 1, 1);
}

static void test_tiebreak_won_ignores(void **state)
{
    (void)state;
    start_probing_v4();
    uint32_t t0 = NOW;
    run_to(t0 + 10);
    ota_ip_t earlier = ip4(1, 10, 0, 0, 1);
    other_host_probes(&earlier);
    assert_false(log_mentions("tie-break"));
    run_until_state(OTA_MDNS_RUNNING, 3000);
    assert_int_equal(P.n_sent, 4);
    assert_int_equal(P.sent[0].at, t0 + 250);
    assert_int_equal(P.sent[1].at, t0 + 500);
    assert_int_equal(P.sent[2].at, t0 + 750);
    assert_int_equal(P.sent[3].at, t0 + 1750);
    assert_string_equal(ota_mdns_name(&M), "livingroom");
}

/* The tie-break of a service instance name: its SRV and TXT. */
static void test_tiebreak_on_instance_name(void **state)
{
    (void)state;
    for (int lose = 0; lose < 2; lose++) {
        setup(NULL);
        start_probing_v4();
        uint32_t t0 = NOW;
        qb_t b;
        qb_init(&b, 0, 0);
        qb_q(&b, "livingroom._ota._tcp.local", OTA_DNS_TYPE_ANY, QU);
        /* the same TXT; the SRV decides: port 9999 > 3232 wins, 80 loses */
        qb_srv(&b, OTA_DNS_SEC_AUTHORITY, "livingroom._ota._tcp.local", OTA_DNS_CLASS_IN, 120, 0,
               0, lose ? 9999 : 80, "livingroom.local");
        qb_txt(&b, OTA_DNS_SEC_AUTHORITY, "livingroom._ota._tcp.local", OTA_DNS_CLASS_IN, 4500,
               OTA_TXT);
        ota_ip_t from = ip4(1, 10, 0, 0, 99);
        deliver(&b, &from, 5353);
        assert_int_equal(log_mentions("wins the tie-break"), lose != 0);
        run_to(t0 + 250);
        assert_int_equal(P.n_sent, lose ? 0 : 1);
        run_until_state(OTA_MDNS_RUNNING, 3000);
        assert_string_equal(ota_mdns_name(&M), "livingroom");
    }
}

/* After losing the tie-break the winner announces: that is a conflict, rename. */
static void test_tiebreak_loser_renames_on_winner_announcement(void **state)
{
    (void)state;
    start_probing_v4();
    ota_ip_t later = ip4(1, 10, 0, 0, 200);
    other_host_probes(&later);
    assert_true(log_mentions("wins the tie-break"));
    run_for(500);
    claim_a("livingroom.local", &later, 120);
    assert_string_equal(ota_mdns_name(&M), "livingroom-2");
    run_until_state(OTA_MDNS_RUNNING, 3000);
    check_announcement(&P.sent[P.n_sent - 1], "livingroom-2", 4, 1, 1);
}

/* A configured name in mixed case: sent as configured, its own packets (and a
 * querier's other case) still recognised. */
static void test_mixed_case_name(void **state)
{
    (void)state;
    ota_mdns_config_t c = cfg_std();
    c.name = "LivingRoom";
    addrs_std();
    CFG = c;
    assert_int_equal(ota_mdns_setup(&M, &IO, &RNG, &LOG, &CFG, NOW), OTA_OK);
    ota_ip_t own4 = ip4(1, 10, 0, 0, 5), own6 = ip6(1, 5);
    int fed = 0;
    while (NOW < 5000) {
        step();
        loop_back(&fed, &own4, &own6, false);
    }
    assert_int_equal(ota_mdns_state(&M), OTA_MDNS_RUNNING);
    assert_string_equal(ota_mdns_name(&M), "LivingRoom");
    check_announcement(&P.sent[P.n_sent - 1], "LivingRoom", P.sent[P.n_sent - 1].ip.family, 1,
                       1);
    clear_sent();
    ask("livingroom._ota._tcp.local", OTA_DNS_TYPE_SRV);
    dmsg_t d;
    one_answer(&d, 4);
    check_srv(&d, OTA_DNS_SEC_ANSWER, "LivingRoom", 0, FLUSH, 120);
}

/* A legacy query asking for everything at once, with the largest records setup
 * accepts: the reply is well formed and fits one datagram (what does not fit is
 * left out, the answers first). */
static void test_legacy_reply_with_everything(void **state)
{
    (void)state;
    static char t1[101], t2[59];
    static const char *txt[3];
    memset(t1, 'a', 100);
    memcpy(t1, "k=", 2);
    memset(t2, 'b', 58);
    memcpy(t2, "q=", 2);
    txt[0] = t1;
    txt[1] = t2;
    ota_mdns_config_t c = cfg_std();
    c.services[0].txt = txt;
    c.services[1].txt = txt;
    ota_ip_t a[OTA_CFG_MDNS_MAX_ADDRS];
    for (int k = 0; k < OTA_CFG_MDNS_MAX_ADDRS; k++)
        a[k] = k % 2 ? ip6(1, (uint8_t)(10 + k)) : ip4(1, 10, 0, 0, (uint8_t)(10 + k));
    set_addrs(OTA_CFG_MDNS_MAX_ADDRS, a);
    CFG = c;
    assert_int_equal(ota_mdns_setup(&M, &IO, &RNG, &LOG, &CFG, NOW), OTA_OK);
    run_until_state(OTA_MDNS_RUNNING, 3000);
    clear_sent();
    qb_t b;
    qb_init(&b, 42, 0);
    qb_q(&b, "_services._dns-sd._udp.local", OTA_DNS_TYPE_PTR, OTA_DNS_CLASS_IN);
    qb_q(&b, "_ota._tcp.local", OTA_DNS_TYPE_PTR, OTA_DNS_CLASS_IN);
    qb_q(&b, "_arduino._tcp.local", OTA_DNS_TYPE_PTR, OTA_DNS_CLASS_IN);
    qb_q(&b, "livingroom._ota._tcp.local", OTA_DNS_TYPE_ANY, OTA_DNS_CLASS_IN);
    qb_q(&b, "livingroom._arduino._tcp.local", OTA_DNS_TYPE_ANY, OTA_DNS_CLASS_IN);
    qb_q(&b, "livingroom.local", OTA_DNS_TYPE_ANY, OTA_DNS_CLASS_IN);
    deliver(&b, peer4(), 40000);
    assert_int_equal(P.n_sent, 1);
    dmsg_t d;
    decode(&P.sent[0], &d);
    assert_int_equal(d.hdr.id, 42);
    assert_int_equal(d.nq, 6);
    assert_true(d.hdr.ancount >= 1);
    for (int i = 0; i < d.nr; i++)
        assert_true(d.r[i].ttl <= 10);
}

/* ================================================================== goodbye, addresses */

static void test_goodbye_on_stop(void **state)
{
    (void)state;
    bring_up();
    ota_mdns_free(&M, NOW);
    assert_int_equal(ota_mdns_state(&M), OTA_MDNS_OFF);
    assert_int_equal(P.n_sent, 2);
    int v4 = P.sent[0].ip.family == 4 ? 0 : 1;
    check_announcement(&P.sent[v4], "livingroom", 4, 1, 0);
    check_announcement(&P.sent[1 - v4], "livingroom", 6, 1, 0);
    assert_true(has_log("mdns: goodbye sent for livingroom.local"));
    /* then silence, whatever comes */
    clear_sent();
    ask("livingroom.local", OTA_DNS_TYPE_A);
    run_for(3000);
    assert_int_equal(P.n_sent, 0);
    assert_int_equal(ota_mdns_next_ms(&M, NOW), 1000);
    ota_mdns_free(&M, NOW); /* twice is harmless */
    assert_int_equal(P.n_sent, 0);

    /* goodbye even right after a rate-limited answer */
    setup(NULL);
    bring_up();
    ask("livingroom.local", OTA_DNS_TYPE_A);
    clear_sent();
    ota_mdns_free(&M, NOW);
    assert_int_equal(P.n_sent, 2);

    /* not while probing or waiting: the names were never announced */
    setup(NULL);
    start_probing_v4();
    ota_mdns_free(&M, NOW);
    assert_int_equal(P.n_sent, 0);
    assert_int_equal(ota_mdns_state(&M), OTA_MDNS_OFF);
    setup(NULL);
    start();
    run_for(100);
    ota_mdns_free(&M, NOW);
    assert_int_equal(P.n_sent, 0);
    assert_int_equal(ota_mdns_state(&M), OTA_MDNS_OFF);
}

static void test_address_change_reprobes(void **state)
{
    (void)state;
    addrs_v4_only();
    start();
    run_until_state(OTA_MDNS_RUNNING, 3000);
    run_for(3000);
    clear_sent();
    clear_log();
    /* a new address (DHCP renewal gave another one) */
    ota_ip_t a6 = ip4(1, 10, 0, 0, 6);
    set_addrs(1, &a6);
    run_until_state(OTA_MDNS_PROBING, 1001);
    run_until_state(OTA_MDNS_RUNNING, 3000);
    assert_int_equal(P.n_sent, 5);
    for (int i = 0; i < 3; i++)
        check_probe(&P.sent[i], "livingroom", 4, 1); /* with 10.0.0.6 only */
    check_announcement(&P.sent[3], "livingroom", 4, 1, 1);
    check_announcement(&P.sent[4], "livingroom", 4, 1, 1);
    assert_string_equal(ota_mdns_name(&M), "livingroom");
    run_for(1100);
    clear_sent();
    ask("livingroom.local", OTA_DNS_TYPE_A);
    dmsg_t d;
    one_answer(&d, 4);
    check_addrs(&d, OTA_DNS_SEC_ANSWER, "livingroom", 1, FLUSH, 120);

    /* IPv6 comes up: a new link, probed and announced there too */
    clear_sent();
    ota_ip_t two[2] = {ip4(1, 10, 0, 0, 6), ip6(1, 6)};
    set_addrs(2, two);
    run_until_state(OTA_MDNS_PROBING, 1001);
    run_until_state(OTA_MDNS_RUNNING, 3000);
    assert_int_equal(P.n_sent, 10);
    for (int i = 0; i < 10; i++) {
        if (i < 6)
            check_probe(&P.sent[i], "livingroom", P.sent[i].ip.family, 1);
        else
            check_announcement(&P.sent[i], "livingroom", P.sent[i].ip.family, 1, 1);
    }

    /* the network goes away: waiting, silent, no busy loop */
    clear_sent();
    P.n_addrs = 0;
    run_until_state(OTA_MDNS_WAITING, 1001);
    assert_true(has_log("mdns: no network address: waiting for one"));
    for (int i = 0; i < 3000; i++) {
        step();
        assert_in_range(ota_mdns_next_ms(&M, NOW), 1, 1000);
    }
    assert_int_equal(P.n_sent, 0);
    /* and comes back */
    set_addrs(1, &a6);
    run_until_state(OTA_MDNS_RUNNING, 1001 + 3000);
    assert_int_equal(P.n_sent, 5);
    assert_string_equal(ota_mdns_name(&M), "livingroom");

    /* the same addresses read again are no change */
    clear_sent();
    run_for(5000);
    assert_int_equal(P.n_sent, 0);
    assert_int_equal(ota_mdns_state(&M), OTA_MDNS_RUNNING);
}

/* The port may hand out junk entries and more than asked for: they are ignored. */
static void test_bad_address_entries(void **state)
{
    (void)state;
    ota_ip_t a[6] = {ip4(1, 10, 0, 0, 5), ip4(1, 1, 2, 3, 4), ip6(1, 5), ip6(1, 6),
                     ip4(1, 9, 9, 9, 9), ip4(1, 8, 8, 8, 8)};
    a[1].family = 0;
    a[3].family = 5;
    set_addrs(6, a);
    start();
    run_until_state(OTA_MDNS_RUNNING, 3000);
    assert_int_equal(P.n_sent, 2 * 5); /* two links: IPv4 and IPv6 of interface 1 */
    dmsg_t d;
    decode(&P.sent[P.n_sent - 1], &d);
    /* 10.0.0.5 and fe80::5: the junk is dropped, the port gave 4 entries at most */
    assert_int_equal(count_rr(&d, OTA_DNS_SEC_ANSWER, "livingroom.local", OTA_DNS_TYPE_A), 1);
    assert_int_equal(count_rr(&d, OTA_DNS_SEC_ANSWER, "livingroom.local", OTA_DNS_TYPE_AAAA),
                     1);
    assert_int_equal(d.hdr.ancount, 2 + 8);
}

/* The port lists the same addresses in another order: no change, no re-probe. */
static void test_address_order_is_no_change(void **state)
{
    (void)state;
    ota_ip_t a[3] = {ip4(1, 10, 0, 0, 5), ip6(1, 5), ip4(2, 192, 168, 7, 5)};
    ota_ip_t b[3] = {a[2], a[0], a[1]};
    set_addrs(3, a);
    start();
    run_until_state(OTA_MDNS_RUNNING, 3000);
    clear_sent();
    clear_log();
    for (int i = 0; i < 6; i++) {
        set_addrs(3, i % 2 ? a : b);
        run_for(1000);
    }
    assert_int_equal(P.n_sent, 0);
    assert_int_equal(ota_mdns_state(&M), OTA_MDNS_RUNNING);
    assert_false(log_mentions("probing"));
    /* it keeps answering with the right interface's addresses */
    ota_ip_t from2 = ip4(2, 192, 168, 7, 9);
    qb_t q;
    qb_init(&q, 0, 0);
    qb_q(&q, "livingroom.local", OTA_DNS_TYPE_A, OTA_DNS_CLASS_IN);
    deliver(&q, &from2, 5353);
    assert_int_equal(P.n_sent, 1);
    assert_true(is_group(&P.sent[0].ip, 4, 2));
    dmsg_t d;
    decode(&P.sent[0], &d);
    check_addrs(&d, OTA_DNS_SEC_ANSWER, "livingroom", 2, FLUSH, 120);
}

/* Two services of one type would be one instance name with two SRV records that
 * contradict each other: refused. */
static void test_setup_refuses_duplicate_types(void **state)
{
    (void)state;
    assert_int_equal(try_type("_ota._tcp"), OTA_ERR_INVALID_ARG);
    assert_int_equal(try_type("_OTA._tcp"), OTA_ERR_INVALID_ARG);
    assert_int_equal(try_type("_ota._udp"), OTA_OK);
}

/* A QU question whose answer the rate limit holds back gets it unicast
 * (RFC 6762 5.4), instead of nothing. */
static void test_qu_within_rate_limit_unicast(void **state)
{
    (void)state;
    bring_up();
    ask("livingroom.local", OTA_DNS_TYPE_A);
    assert_int_equal(P.n_sent, 1);
    run_for(300);
    clear_sent();
    qb_t b;
    qb_init(&b, 0, 0);
    qb_q(&b, "livingroom.local", OTA_DNS_TYPE_A, QU);
    deliver(&b, peer4(), 5353);
    assert_int_equal(P.n_sent, 1);
    const dgram_t *g = &P.sent[0];
    assert_int_equal(g->port, 5353);
    assert_int_equal(g->ip.family, 4);
    assert_memory_equal(g->ip.addr, peer4()->addr, 4);
    assert_int_equal(g->ip.ifindex, 1);
    dmsg_t d;
    decode(g, &d);
    assert_int_equal(d.hdr.flags, RESPONSE);
    assert_int_equal(d.nq, 0);
    check_a_answer(&d, "livingroom", 1, FLUSH, 120);
    /* the same without the QU bit: still nothing (the group has it) */
    clear_sent();
    ask("livingroom.local", OTA_DNS_TYPE_A);
    assert_int_equal(P.n_sent, 0);
}

/* ================================================================== hostile input */

static void raw_input(const uint8_t *msg, size_t len, uint16_t port)
{
    ota_mdns_input(&M, msg, len, peer4(), port, NOW);
}

/* Nothing sent, no state change, over the next 150 ms. */
static void expect_nothing(const char *what)
{
    run_for(150);
    if (P.n_sent != 0)
        fail_msg("%s: %d datagram(s) sent", what, P.n_sent);
    if (ota_mdns_state(&M) != OTA_MDNS_RUNNING || strcmp(ota_mdns_name(&M), "livingroom") != 0)
        fail_msg("%s: state %d, name %s", what, ota_mdns_state(&M), ota_mdns_name(&M));
}

static size_t header(uint8_t *b, uint16_t id, uint16_t flags, uint16_t qd, uint16_t an,
                     uint16_t ns, uint16_t ar)
{
    uint16_t v[6] = {id, flags, qd, an, ns, ar};
    for (int i = 0; i < 6; i++) {
        b[2 * i] = (uint8_t)(v[i] >> 8);
        b[2 * i + 1] = (uint8_t)v[i];
    }
    return 12;
}

static void test_hostile_datagrams(void **state)
{
    (void)state;
    bring_up();
    uint8_t b[1200];
    size_t n;

    ota_mdns_input(&M, NULL, 0, peer4(), 5353, NOW);
    raw_input(b, 0, 5353);
    memset(b, 0, sizeof b);
    raw_input(b, 1, 5353);
    raw_input(b, 11, 5353);
    raw_input(b, 11, 40000);
    expect_nothing("short headers");

    /* counts far beyond the message */
    n = header(b, 0, 0, 0xffff, 0xffff, 0xffff, 0xffff);
    raw_input(b, n, 5353);
    raw_input(b, n, 40000);
    header(b, 0, RESPONSE, 0xffff, 0xffff, 0xffff, 0xffff);
    raw_input(b, n, 5353);
    n = header(b, 0, RESPONSE, 0, 0xffff, 0, 0);
    memset(b + n, 0, 40);
    raw_input(b, n + 40, 5353); /* 65535 empty-named records in 40 bytes */
    expect_nothing("huge counts");

    /* compression loops and pointers out of bounds, in questions and records */
    static const uint8_t names[][8] = {
        {0xc0, 0x0c, 0, 1, 0, 1},       /* points to itself */
        {0xc0, 0x0e, 0xc0, 0x0c, 0, 1}, /* forward, then back */
        {0xc0, 0xff, 0, 1, 0, 1},       /* beyond the end */
        {0xc0, 0x02, 0, 1, 0, 1},       /* into the header */
        {0x41, 'a', 0, 0, 1, 0, 1},     /* extended label type */
        {0x80, 'a', 0, 0, 1, 0, 1},     /* reserved label type */
        {0x3f, 'a', 'b', 0, 1},         /* label beyond the end */
        {0x01, 'a', 0xc0},              /* pointer cut in half */
    };
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        for (int resp = 0; resp < 2; resp++) {
            n = header(b, 0, resp ? RESPONSE : 0, resp ? 0 : 1, resp ? 1 : 0, 0, 0);
            memcpy(b + n, names[i], 8);
            raw_input(b, n + 8, 5353);
            raw_input(b, n + 8, 40000);
            raw_input(b, n + 3, 5353);
        }
    }
    /* a self-referencing pointer inside record data (a PTR known answer, an SRV) */
    n = header(b, 0, 0, 1, 2, 0, 0);
    static const uint8_t q_ptr[] = {4, '_', 'o', 't', 'a', 4, '_', 't', 'c', 'p',
                                    5, 'l', 'o', 'c', 'a', 'l', 0, 0, 12, 0, 1};
    memcpy(b + n, q_ptr, sizeof q_ptr);
    n += sizeof q_ptr;
    static const uint8_t rr_loop[] = {0xc0, 0x0c, 0, 12, 0, 1, 0, 0, 0x11, 0x94, 0, 2};
    memcpy(b + n, rr_loop, sizeof rr_loop);
    b[n + sizeof rr_loop] = 0xc0;
    b[n + sizeof rr_loop + 1] = (uint8_t)(n + sizeof rr_loop); /* itself */
    n += sizeof rr_loop + 2;
    raw_input(b, n, 40000); /* legacy: answered at once (the known answer is junk) */
    assert_int_equal(P.n_sent, 1);
    clear_sent();
    /* a name longer than 255 bytes: 130 labels of one letter */
    n = header(b, 0, 0, 1, 0, 0, 0);
    for (int i = 0; i < 130; i++) {
        b[n++] = 1;
        b[n++] = 'a';
    }
    b[n++] = 0;
    b[n++] = 0;
    b[n++] = 1;
    b[n++] = 0;
    b[n++] = 1;
    raw_input(b, n, 5353);
    raw_input(b, n, 40000);
    expect_nothing("malformed names");

    /* opcode other than 0 (RFC 6762 18.3), rcode other than 0 (18.11): ignored */
    static const uint16_t bad_flags[] = {0x0800, 0x2800, 0x7800, 0x0001, 0x0003, 0x000f};
    for (size_t i = 0; i < sizeof bad_flags / sizeof bad_flags[0]; i++) {
        qb_t q;
        qb_init(&q, 0, bad_flags[i]);
        qb_q(&q, "livingroom.local", OTA_DNS_TYPE_A, OTA_DNS_CLASS_IN);
        deliver(&q, peer4(), 5353);
        qb_init(&q, 0, bad_flags[i]);
        qb_q(&q, "_ota._tcp.local", OTA_DNS_TYPE_PTR, OTA_DNS_CLASS_IN);
        deliver(&q, peer4(), 40000);
        ota_ip_t other = ip4(1, 10, 0, 0, 99);
        qb_init(&q, 0, (uint16_t)(RESPONSE | bad_flags[i]));
        qb_a(&q, OTA_DNS_SEC_ANSWER, "livingroom.local", FLUSH, 120, &other);
        deliver(&q, peer4(), 5353);
    }
    expect_nothing("opcode or rcode");

    /* responses: from a port other than 5353 (not mDNS), a truncated one, a
     * record with a wrong length */
    ota_ip_t other = ip4(1, 10, 0, 0, 99);
    qb_t q;
    qb_init(&q, 0, RESPONSE);
    qb_a(&q, OTA_DNS_SEC_ANSWER, "livingroom.local", FLUSH, 120, &other);
    deliver(&q, peer4(), 53);
    deliver(&q, peer4(), 5354);
    n = qb_len(&q);
    b[0] = 0;
    memcpy(b, q.buf, n);
    b[7] = 2; /* two answers, only one there */
    raw_input(b, n, 5353);
    memcpy(b, q.buf, n);
    raw_input(b, n - 1, 5353); /* the address cut short */
    qb_init(&q, 0, RESPONSE);
    uint8_t f[OTA_DNS_NAME_MAX];
    flat_of(f, "livingroom.local");
    ota_dns_w_record_begin(&q.w, OTA_DNS_SEC_ANSWER, f, OTA_DNS_TYPE_A, FLUSH, 120);
    ota_dns_w_bytes(&q.w, other.addr, 3);
    ota_dns_w_record_end(&q.w);
    deliver(&q, peer4(), 5353);
    /* a response is never answered, even with questions in it */
    qb_init(&q, 0, RESPONSE);
    qb_q(&q, "livingroom.local", OTA_DNS_TYPE_A, OTA_DNS_CLASS_IN);
    deliver(&q, peer4(), 5353);
    expect_nothing("responses");

    /* a readable question before a broken known-answer section still counts */
    qb_init(&q, 0, 0);
    qb_q(&q, "livingroom.local", OTA_DNS_TYPE_A, OTA_DNS_CLASS_IN);
    n = qb_len(&q);
    memcpy(b, q.buf, n);
    b[6] = 0xff; /* ancount 65535 */
    b[7] = 0xff;
    memset(b + n, 0xc0, 20);
    raw_input(b, n + 20, 5353);
    assert_int_equal(P.n_sent, 1);
    clear_sent();
    /* an unreadable question after a readable one: nothing */
    qb_init(&q, 0, 0);
    qb_q(&q, "livingroom.local", OTA_DNS_TYPE_A, OTA_DNS_CLASS_IN);
    n = qb_len(&q);
    memcpy(b, q.buf, n);
    b[5] = 2;
    b[n] = 0xc0;
    b[n + 1] = (uint8_t)n;
    raw_input(b, n + 6, 5353);
    expect_nothing("broken second question");

    /* a sender of an unknown family, or on an interface we do not use */
    qb_init(&q, 0, 0);
    qb_q(&q, "livingroom.local", OTA_DNS_TYPE_A, OTA_DNS_CLASS_IN);
    n = qb_len(&q);
    ota_ip_t junk = *peer4();
    junk.family = 0;
    ota_mdns_input(&M, q.buf, n, &junk, 5353, NOW);
    junk = ip4(9, 10, 0, 0, 9);
    ota_mdns_input(&M, q.buf, n, &junk, 5353, NOW);
    expect_nothing("unknown link");
}

static uint32_t lcg(uint32_t *s)
{
    *s = *s * 1103515245u + 12345u;
    return *s >> 8;
}

/* Random bytes and random mutations of real messages: nothing crashes (ASan and
 * UBSan watch), every datagram sent is well formed and fits. */
static void test_fuzzed_input(void **state)
{
    (void)state;
    bring_up();
    uint8_t seeds[4][DGRAM_MAX];
    size_t seed_len[4];
    qb_t q;
    qb_init(&q, 0, 0);
    qb_q(&q, "_ota._tcp.local", OTA_DNS_TYPE_PTR, OTA_DNS_CLASS_IN);
    qb_q(&q, "livingroom.local", OTA_DNS_TYPE_ANY, QU);
    qb_ptr(&q, OTA_DNS_SEC_ANSWER, "_ota._tcp.local", 4500, "livingroom._ota._tcp.local");
    seed_len[0] = qb_len(&q);
    memcpy(seeds[0], q.buf, seed_len[0]);
    ota_ip_t a = ip4(1, 10, 0, 0, 5);
    qb_init(&q, 0, 0);
    qb_q(&q, "livingroom.local", OTA_DNS_TYPE_ANY, QU);
    qb_q(&q, "livingroom._ota._tcp.local", OTA_DNS_TYPE_ANY, QU);
    qb_a(&q, OTA_DNS_SEC_AUTHORITY, "livingroom.local", OTA_DNS_CLASS_IN, 120, &a);
    qb_srv(&q, OTA_DNS_SEC_AUTHORITY, "livingroom._ota._tcp.local", OTA_DNS_CLASS_IN, 120, 0, 0,
           3232, "livingroom.local");
    qb_txt(&q, OTA_DNS_SEC_AUTHORITY, "livingroom._ota._tcp.local", OTA_DNS_CLASS_IN, 4500,
           OTA_TXT);
    seed_len[1] = qb_len(&q);
    memcpy(seeds[1], q.buf, seed_len[1]);
    /* our own announcement and a legacy query */
    addrs_std();
    ota_mdns_free(&M, NOW);
    seed_len[2] = P.sent[0].len;
    memcpy(seeds[2], P.sent[0].data, seed_len[2]);
    qb_init(&q, 0x55aa, 0);
    qb_q(&q, "_services._dns-sd._udp.local", OTA_DNS_TYPE_PTR, OTA_DNS_CLASS_IN);
    qb_q(&q, "livingroom._arduino._tcp.local", OTA_DNS_TYPE_TXT, OTA_DNS_CLASS_IN);
    seed_len[3] = qb_len(&q);
    memcpy(seeds[3], q.buf, seed_len[3]);

    setup(NULL);
    bring_up();
    uint32_t s = 12345;
    uint8_t b[DGRAM_MAX];
    for (int i = 0; i < 20000; i++) {
        size_t n;
        if (i % 4 == 0) { /* pure noise, with a plausible header now and then */
            n = lcg(&s) % 600;
            for (size_t k = 0; k < n; k++)
                b[k] = (uint8_t)lcg(&s);
            if (n >= 12 && (i & 8)) {
                b[2] &= 0x84;
                b[3] = 0;
                b[4] = 0;
                b[6] = 0;
                b[8] = 0;
                b[10] = 0;
            }
        } else { /* a real message with a few bytes changed, cut or extended */
            int which = (int)(lcg(&s) % 4);
            n = seed_len[which];
            memcpy(b, seeds[which], n);
            int flips = 1 + (int)(lcg(&s) % 4);
            for (int k = 0; k < flips; k++) {
                size_t at = lcg(&s) % n;
                b[at] = (lcg(&s) & 1) ? (uint8_t)lcg(&s) : (uint8_t)(b[at] ^ (1u << (lcg(&s) % 8)));
            }
            if (lcg(&s) % 4 == 0)
                n = lcg(&s) % (n + 1);
        }
        uint16_t port = (lcg(&s) % 3 == 0) ? (uint16_t)(1024 + lcg(&s) % 60000) : 5353;
        const ota_ip_t *from = (i & 1) ? peer4() : peer6();
        ota_mdns_input(&M, b, n, from, port, NOW);
        if (i % 16 == 0)
            step();
        for (int k = 0; k < P.n_sent; k++) {
            dmsg_t d;
            decode(&P.sent[k], &d);
        }
        clear_sent();
    }
    ota_mdns_state_t st = ota_mdns_state(&M);
    assert_true(st == OTA_MDNS_PROBING || st == OTA_MDNS_ANNOUNCING || st == OTA_MDNS_RUNNING);
    assert_true(strncmp(ota_mdns_name(&M), "livingroom", 10) == 0);
}

/* The same through ota_mdns_poll() and the port's receive hook. */
static void test_hostile_through_poll(void **state)
{
    (void)state;
    bring_up();
    qb_t q;
    qb_init(&q, 0, 0);
    qb_q(&q, "livingroom.local", OTA_DNS_TYPE_A, OTA_DNS_CLASS_IN);
    size_t qn = qb_len(&q);
    uint8_t junk[5] = {1, 2, 3, 4, 5};

    /* an empty datagram and a short one do not hold up the query behind them */
    queue_in(junk, 0, peer4(), 5353);
    queue_in(junk, 5, peer4(), 5353);
    queue_in(q.buf, qn, peer4(), 5353);
    step();
    assert_int_equal(P.in_count, 0);
    assert_int_equal(P.n_sent, 1);

    /* longer than the receive buffer: cut, the question at its start counts */
    static uint8_t big[1500];
    memset(big, 0, sizeof big);
    memcpy(big, q.buf, qn);
    run_for(1100);
    clear_sent();
    queue_in(big, sizeof big, peer4(), 5353);
    step();
    assert_int_equal(P.n_sent, 1);
    dmsg_t d;
    one_answer(&d, 4);
    check_a_answer(&d, "livingroom", 1, FLUSH, 120);

    /* ... but a question beyond the buffer is not read (nor anything past it) */
    run_for(1100);
    clear_sent();
    qb_t l;
    qb_init(&l, 0, 0);
    char longname[300];
    for (int i = 0; i < 4; i++) {
        char lab[61];
        memset(lab, (char)('a' + i), 60);
        lab[60] = '\0';
        snprintf(longname, sizeof longname, "%s.%s.%s.%s.local", lab, lab, lab, lab);
        qb_q(&l, longname, OTA_DNS_TYPE_A, OTA_DNS_CLASS_IN);
    }
    qb_q(&l, "livingroom.local", OTA_DNS_TYPE_A, OTA_DNS_CLASS_IN);
    size_t ln = qb_len(&l);
    assert_true(ln > OTA_CFG_MDNS_RX_SIZE);
    queue_in(l.buf, ln, peer4(), 5353);
    step();
    run_for(150);
    assert_int_equal(P.n_sent, 0);
    /* the same datagram given whole to ota_mdns_input is answered */
    ota_mdns_input(&M, l.buf, ln, peer4(), 5353, NOW);
    assert_int_equal(P.n_sent, 1);

    /* a receive error: polling goes on */
    clear_sent();
    P.recv_error = OTA_ERR_IO;
    run_for(3000);
    assert_int_equal(ota_mdns_state(&M), OTA_MDNS_RUNNING);
    assert_in_range(ota_mdns_next_ms(&M, NOW), 1, 1000);
    P.recv_error = 0;

    /* a burst: at most a few datagrams per poll, the rest on the next ones */
    qb_init(&q, 0x77, 0);
    qb_q(&q, "livingroom.local", OTA_DNS_TYPE_A, OTA_DNS_CLASS_IN);
    qn = qb_len(&q);
    for (int i = 0; i < 12; i++)
        queue_in(q.buf, qn, peer4(), 40000);
    int calls = P.recv_calls;
    step();
    assert_true(P.n_sent >= 1 && P.n_sent < 12);
    assert_true(P.recv_calls - calls <= P.n_sent + 1);
    for (int i = 0; i < 5 && P.in_count > 0; i++)
        step();
    assert_int_equal(P.n_sent, 12);
    for (int i = 0; i < 12; i++) {
        decode(&P.sent[i], &d);
        assert_int_equal(d.hdr.id, 0x77);
        assert_int_equal(P.sent[i].port, 40000);
    }
}

/* ================================================================== next_ms */

/* A main loop that sleeps exactly what ota_mdns_next_ms() says. \return polls. */
static int drive(uint32_t ms)
{
    uint32_t end = NOW + ms;
    int polls = 0;
    while ((int32_t)(end - NOW) > 0) {
        uint32_t d = ota_mdns_next_ms(&M, NOW);
        assert_in_range(d, 1, 1000); /* right after a poll nothing is overdue */
        NOW += d;
        ota_mdns_poll(&M, NOW);
        polls++;
    }
    return polls;
}

static void test_next_ms(void **state)
{
    (void)state;
    assert_int_equal(ota_mdns_next_ms(&M, NOW), 1000); /* never set up */
    start();
    assert_int_equal(ota_mdns_next_ms(&M, NOW), 0); /* the addresses are to be read */
    ota_mdns_poll(&M, NOW);
    /* no address: about one poll a second */
    int polls = drive(10000);
    assert_in_range(polls, 9, 11);
    assert_int_equal(P.n_sent, 0);

    /* an address: probes and announcements exactly on time, with few polls */
    addrs_std();
    polls = drive(4000);
    assert_int_equal(ota_mdns_state(&M), OTA_MDNS_RUNNING);
    assert_int_equal(P.n_sent, 10);
    for (int r = 1; r < 5; r++)
        assert_int_equal(P.sent[2 * r].at - P.sent[2 * r - 2].at, r < 4 ? 250 : 1000);
    assert_true(polls <= 16);

    /* running: about one poll a second, nothing sent */
    clear_sent();
    polls = drive(10000);
    assert_in_range(polls, 9, 11);
    assert_int_equal(P.n_sent, 0);

    /* a delayed answer: the loop wakes for it */
    ask("_ota._tcp.local", OTA_DNS_TYPE_PTR);
    uint32_t t = NOW;
    polls = 0;
    while (P.n_sent == 0) {
        uint32_t d = ota_mdns_next_ms(&M, NOW);
        assert_in_range(d, 1, 120);
        NOW += d;
        ota_mdns_poll(&M, NOW);
        assert_true(++polls <= 2); /* the answer, maybe the address re-read first */
    }
    assert_int_equal(P.n_sent, 1);
    assert_in_range(P.sent[0].at - t, 20, 120);

    /* while probing: at most the probe interval */
    ota_ip_t other = ip4(1, 10, 0, 0, 99);
    claim_a("livingroom.local", &other, 120);
    assert_int_equal(ota_mdns_state(&M), OTA_MDNS_PROBING);
    assert_true(ota_mdns_next_ms(&M, NOW) <= 1);
    ota_mdns_poll(&M, NOW);
    assert_in_range(ota_mdns_next_ms(&M, NOW), 1, 250);

    /* backing off after conflicts: a poll a second, no busy loop */
    for (int i = 0; i < 15; i++) {
        char host[80];
        snprintf(host, sizeof host, "%s.local", ota_mdns_name(&M));
        claim_a(host, &other, 120);
    }
    assert_int_equal(ota_mdns_state(&M), OTA_MDNS_WAITING);
    clear_sent();
    polls = drive(4900);
    assert_in_range(polls, 4, 6);
    assert_int_equal(P.n_sent, 0);

    /* stopped */
    ota_mdns_free(&M, NOW);
    assert_int_equal(ota_mdns_next_ms(&M, NOW), 1000);
}

/* ================================================================== on the link only (RFC 6762 11) */

static ota_mdns_rx_meta_t rx_meta(uint8_t on_link, int ttl)
{
    ota_mdns_rx_meta_t x;
    memset(&x, 0, sizeof x);
    x.on_link = on_link;
    x.ttl_known = ttl >= 0;
    x.ttl = ttl >= 0 ? (uint8_t)ttl : 0;
    return x;
}

static void deliver_meta(qb_t *b, const ota_ip_t *from, uint16_t port, uint8_t on_link, int ttl)
{
    size_t n = qb_len(b);
    ota_mdns_rx_meta_t x = rx_meta(on_link, ttl);
    ota_mdns_input_meta(&M, b->buf, n, from, port, &x, NOW);
}

/* A response claiming livingroom.local for 10.0.0.99, from `from` with the facts. */
static void claim_from(const ota_ip_t *from, uint8_t on_link, int ttl)
{
    ota_ip_t other = ip4(1, 10, 0, 0, 99);
    qb_t b;
    qb_init(&b, 0, RESPONSE);
    qb_a(&b, OTA_DNS_SEC_ANSWER, "livingroom.local", FLUSH, 120, &other);
    deliver_meta(&b, from, 5353, on_link, ttl);
}

static const ota_ip_t *offlink4(void)
{
    static ota_ip_t p;
    p = ip4(1, 192, 168, 7, 7);
    return &p;
}

/* The spoofed conflict of issue 12: from another subnet, with TTL 255 or without
 * one known, while probing and while running: the name stays. */
static void test_off_link_response_ignored(void **state)
{
    (void)state;
    start_probing_v4();
    run_for(10);
    claim_from(offlink4(), OTA_MDNS_LINK_OFF, 255);
    assert_string_equal(ota_mdns_name(&M), "livingroom");
    assert_true(has_log("mdns: ignored a response from 192.168.7.7: not on the link"));
    assert_false(log_mentions("taken by another host"));
    claim_from(offlink4(), OTA_MDNS_LINK_OFF, -1);
    assert_string_equal(ota_mdns_name(&M), "livingroom");
    /* the probes go on undisturbed: 2 more, then 2 announcements */
    run_until_state(OTA_MDNS_RUNNING, 3000);
    assert_int_equal(P.n_sent, 4);
    check_announcement(&P.sent[3], "livingroom", 4, 1, 1);
    /* running: no re-probe, and it still answers to its name */
    run_for(1100);
    clear_sent();
    claim_from(offlink4(), OTA_MDNS_LINK_OFF, 255);
    assert_int_equal(ota_mdns_state(&M), OTA_MDNS_RUNNING);
    assert_false(log_mentions("probing the name again"));
    ask("livingroom.local", OTA_DNS_TYPE_A);
    assert_int_equal(P.n_sent, 1);
    /* an IPv6 source off the link, with its address in the log */
    ota_ip_t g6;
    memset(&g6, 0, sizeof g6);
    g6.family = 6;
    g6.ifindex = 1;
    g6.addr[0] = 0x20;
    g6.addr[1] = 0x01;
    g6.addr[2] = 0x0d;
    g6.addr[3] = 0xb8;
    g6.addr[15] = 7;
    clear_log();
    NOW += 20000; /* past the log's rate limit */
    claim_from(&g6, OTA_MDNS_LINK_OFF, 255);
    assert_int_equal(ota_mdns_state(&M), OTA_MDNS_RUNNING);
    assert_true(has_log("mdns: ignored a response from 2001:db8::7: not on the link (and 2 "
                        "more since the last line)"));
}

/* A genuine conflict from the link still renames, whatever the port knows. */
static void test_on_link_conflict_still_renames(void **state)
{
    (void)state;
    start_probing_v4();
    run_for(10);
    claim_from(peer4(), OTA_MDNS_LINK_ON, 255);
    assert_string_equal(ota_mdns_name(&M), "livingroom-2");
    assert_true(has_log("mdns: livingroom.local is taken by another host: trying "
                        "livingroom-2.local"));
    /* a port that knows nothing (ota_mdns_input, or zero facts): as before the rule */
    clear_log();
    qb_t b;
    ota_ip_t other = ip4(1, 10, 0, 0, 99);
    qb_init(&b, 0, RESPONSE);
    qb_a(&b, OTA_DNS_SEC_ANSWER, "livingroom-2.local", FLUSH, 120, &other);
    deliver_meta(&b, peer4(), 5353, OTA_MDNS_LINK_UNKNOWN, -1);
    assert_string_equal(ota_mdns_name(&M), "livingroom-3");
    /* on the link with the TTL unknown */
    qb_init(&b, 0, RESPONSE);
    qb_a(&b, OTA_DNS_SEC_ANSWER, "livingroom-3.local", FLUSH, 120, &other);
    deliver_meta(&b, peer4(), 5353, OTA_MDNS_LINK_ON, -1);
    assert_string_equal(ota_mdns_name(&M), "livingroom-4");
    assert_false(log_mentions("ignored"));
}

/* A response that crossed a router (TTL not 255), even from an address of the
 * subnet (spoofed): ignored. */
static void test_response_ttl_not_255_ignored(void **state)
{
    (void)state;
    start_probing_v4();
    run_for(10);
    claim_from(peer4(), OTA_MDNS_LINK_ON, 64);
    assert_string_equal(ota_mdns_name(&M), "livingroom");
    assert_true(has_log("mdns: ignored a response from 10.0.0.9: TTL 64, not 255"));
    claim_from(peer4(), OTA_MDNS_LINK_UNKNOWN, 254);
    claim_from(peer4(), OTA_MDNS_LINK_ON, 1);
    claim_from(peer4(), OTA_MDNS_LINK_ON, 0);
    assert_string_equal(ota_mdns_name(&M), "livingroom");
    run_until_state(OTA_MDNS_RUNNING, 3000);
    assert_string_equal(ota_mdns_name(&M), "livingroom");
    /* running: no re-probe either */
    claim_from(peer4(), OTA_MDNS_LINK_ON, 254);
    assert_int_equal(ota_mdns_state(&M), OTA_MDNS_RUNNING);
    /* a probe that crossed a router does not win the tie-break */
    memset(&M, 0, sizeof M);
    memset(&P, 0, sizeof P);
    P.seed = 7;
    start_probing_v4();
    run_for(10);
    ota_ip_t later = ip4(1, 10, 0, 0, 200);
    qb_t b;
    qb_init(&b, 0, 0);
    qb_q(&b, "livingroom.local", OTA_DNS_TYPE_ANY, QU);
    qb_a(&b, OTA_DNS_SEC_AUTHORITY, "livingroom.local", OTA_DNS_CLASS_IN, 120, &later);
    deliver_meta(&b, &later, 5353, OTA_MDNS_LINK_ON, 64);
    assert_false(log_mentions("wins the tie-break"));
    run_until_state(OTA_MDNS_ANNOUNCING, 900); /* no second's pause */
    assert_string_equal(ota_mdns_name(&M), "livingroom");
}

/* Queries from off the link get nothing: no legacy unicast reply (it would be
 * larger than the query), no QU reply, no multicast answer; the same queries from
 * the link are answered, a TTL other than 255 notwithstanding (legacy resolvers). */
static void test_off_link_query_not_answered(void **state)
{
    (void)state;
    bring_up();
    qb_t b;
    qb_init(&b, 0x1234, 0x0100);
    qb_q(&b, "livingroom.local", OTA_DNS_TYPE_A, OTA_DNS_CLASS_IN);
    deliver_meta(&b, offlink4(), 40000, OTA_MDNS_LINK_OFF, 255);
    qb_init(&b, 0x1235, 0);
    qb_q(&b, "_ota._tcp.local", OTA_DNS_TYPE_PTR, QU);
    deliver_meta(&b, offlink4(), 40000, OTA_MDNS_LINK_OFF, 60);
    qb_init(&b, 0, 0);
    qb_q(&b, "livingroom.local", OTA_DNS_TYPE_ANY, QU);
    deliver_meta(&b, offlink4(), 5353, OTA_MDNS_LINK_OFF, 255);
    qb_init(&b, 0, 0);
    qb_q(&b, "_ota._tcp.local", OTA_DNS_TYPE_PTR, OTA_DNS_CLASS_IN);
    deliver_meta(&b, offlink4(), 5353, OTA_MDNS_LINK_OFF, -1);
    run_for(300);
    assert_int_equal(P.n_sent, 0);
    assert_true(has_log("mdns: ignored a query from 192.168.7.7: not on the link"));

    /* from the link, TTL 64 (a stub resolver's unicast) or 1 (to the group): answered */
    qb_init(&b, 0x4242, 0x0100);
    qb_q(&b, "livingroom.local", OTA_DNS_TYPE_A, OTA_DNS_CLASS_IN);
    size_t qlen = qb_len(&b);
    ota_mdns_rx_meta_t x = rx_meta(OTA_MDNS_LINK_ON, 64);
    ota_mdns_input_meta(&M, b.buf, qlen, peer4(), 40000, &x, NOW);
    assert_int_equal(P.n_sent, 1);
    assert_int_equal(P.sent[0].port, 40000);
    assert_memory_equal(P.sent[0].ip.addr, peer4()->addr, 4);
    dmsg_t d;
    decode(&P.sent[0], &d);
    assert_int_equal(d.hdr.id, 0x4242);
    check_a_answer(&d, "livingroom", 1, OTA_DNS_CLASS_IN, 10);
    clear_sent();
    qb_init(&b, 0, 0);
    qb_q(&b, "livingroom.local", OTA_DNS_TYPE_A, OTA_DNS_CLASS_IN);
    deliver_meta(&b, peer4(), 5353, OTA_MDNS_LINK_ON, 1);
    assert_int_equal(P.n_sent, 1);
    assert_true(is_group(&P.sent[0].ip, 4, 1));
}

/* The debug line about ignored datagrams: per reason one per 10 s, then with a
 * count. */
static void test_ignored_log_is_rate_limited(void **state)
{
    (void)state;
    bring_up();
    for (int i = 0; i < 5; i++) {
        claim_from(offlink4(), OTA_MDNS_LINK_OFF, 255);
        run_for(1000);
    }
    int lines = 0;
    for (int i = 0; i < P.n_log; i++)
        if (strstr(P.log[i], "ignored") != NULL)
            lines++;
    assert_int_equal(lines, 1);
    /* the other reason has its own line */
    claim_from(peer4(), OTA_MDNS_LINK_ON, 64);
    assert_true(has_log("mdns: ignored a response from 10.0.0.9: TTL 64, not 255"));
    run_for(5000);
    claim_from(offlink4(), OTA_MDNS_LINK_OFF, 255);
    assert_true(has_log("mdns: ignored a response from 192.168.7.7: not on the link (and 4 "
                        "more since the last line)"));
    assert_int_equal(ota_mdns_state(&M), OTA_MDNS_RUNNING);
}

/* Through ota_mdns_poll: the facts come from the port's mdns_recv_meta, which
 * takes precedence over mdns_recv (and is enough on its own). */
static ota_mdns_rx_meta_t META_NEXT;
static int meta_calls, plain_calls;

static int p_recv_meta(void *user, uint8_t *buf, size_t len, ota_ip_t *from,
                       uint16_t *from_port, ota_mdns_rx_meta_t *meta)
{
    meta_calls++;
    /* the responder hands over a zeroed meta */
    assert_int_equal(meta->on_link, 0);
    assert_false(meta->ttl_known);
    int n = p_recv(user, buf, len, from, from_port);
    if (n >= 0)
        *meta = META_NEXT;
    return n;
}

static int p_recv_counted(void *user, uint8_t *buf, size_t len, ota_ip_t *from,
                          uint16_t *from_port)
{
    plain_calls++;
    return p_recv(user, buf, len, from, from_port);
}

static void test_poll_passes_the_port_facts(void **state)
{
    (void)state;
    ota_mdns_port_t port = IO;
    port.recv = p_recv_counted;
    port.recv_meta = p_recv_meta;
    meta_calls = plain_calls = 0;
    addrs_v4_only();
    CFG = cfg_std();
    assert_int_equal(ota_mdns_setup(&M, &port, &RNG, &LOG, &CFG, NOW), OTA_OK);
    run_until_sent(300);
    clear_log();
    ota_ip_t other = ip4(1, 10, 0, 0, 99);
    qb_t b;
    qb_init(&b, 0, RESPONSE);
    qb_a(&b, OTA_DNS_SEC_ANSWER, "livingroom.local", FLUSH, 120, &other);
    size_t n = qb_len(&b);
    META_NEXT = rx_meta(OTA_MDNS_LINK_OFF, 255);
    queue_in(b.buf, n, offlink4(), 5353);
    step();
    assert_int_equal(P.in_count, 0);
    assert_string_equal(ota_mdns_name(&M), "livingroom");
    assert_true(log_mentions("not on the link"));
    META_NEXT = rx_meta(OTA_MDNS_LINK_ON, 255);
    queue_in(b.buf, n, peer4(), 5353);
    step();
    assert_string_equal(ota_mdns_name(&M), "livingroom-2");
    assert_true(meta_calls > 0);
    assert_int_equal(plain_calls, 0);

    /* mdns_recv_meta alone is enough for setup; neither is not */
    port.recv = NULL;
    memset(&M, 0, sizeof M);
    assert_int_equal(ota_mdns_setup(&M, &port, &RNG, &LOG, &CFG, NOW), OTA_OK);
    port.recv_meta = NULL;
    assert_int_equal(ota_mdns_setup(&M, &port, &RNG, &LOG, &CFG, NOW), OTA_ERR_INVALID_ARG);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup(test_config_default, setup),
        cmocka_unit_test_setup(test_setup_validates_names, setup),
        cmocka_unit_test_setup(test_setup_validates_service_types, setup),
        cmocka_unit_test_setup(test_setup_needs_the_hooks, setup),
        cmocka_unit_test_setup(test_setup_txt_limits, setup),
        cmocka_unit_test_setup(test_setup_refuses_records_beyond_one_datagram, setup),
        cmocka_unit_test_setup(test_waits_silently_without_address, setup),
        cmocka_unit_test_setup(test_probe_then_announce, setup),
        cmocka_unit_test_setup(test_probe_delay_is_random, setup),
        cmocka_unit_test_setup(test_each_link_separately, setup),
        cmocka_unit_test_setup(test_own_packets_are_no_conflict, setup),
        cmocka_unit_test_setup(test_own_probes_on_another_interface, setup),
        cmocka_unit_test_setup(test_dropped_sends, setup),
        cmocka_unit_test_setup(test_clock_wraparound, setup),
        cmocka_unit_test_setup(test_answers_a_at_once, setup),
        cmocka_unit_test_setup(test_answers_ptr_delayed_with_additional, setup),
        cmocka_unit_test_setup(test_answers_service_enumeration, setup),
        cmocka_unit_test_setup(test_answers_instance_records, setup),
        cmocka_unit_test_setup(test_names_are_case_insensitive, setup),
        cmocka_unit_test_setup(test_other_questions_get_nothing, setup),
        cmocka_unit_test_setup(test_known_answers, setup),
        cmocka_unit_test_setup(test_rate_limit, setup),
        cmocka_unit_test_setup(test_probe_defence_after_announcement, setup),
        cmocka_unit_test_setup(test_ipv4_only, setup),
        cmocka_unit_test_setup(test_legacy_unicast, setup),
        cmocka_unit_test_setup(test_legacy_keeps_short_ttl, setup),
        cmocka_unit_test_setup(test_qu_question_answered, setup),
        cmocka_unit_test_setup(test_conflict_while_probing_renames, setup),
        cmocka_unit_test_setup(test_rename_of_a_long_name, setup),
        cmocka_unit_test_setup(test_conflicting_and_consistent_records, setup),
        cmocka_unit_test_setup(test_conflict_while_running_reprobes, setup),
        cmocka_unit_test_setup(test_conflict_storm_backs_off, setup),
        cmocka_unit_test_setup(test_tiebreak_lost_defers, setup),
        cmocka_unit_test_setup(test_tiebreak_won_ignores, setup),
        cmocka_unit_test_setup(test_tiebreak_on_instance_name, setup),
        cmocka_unit_test_setup(test_tiebreak_loser_renames_on_winner_announcement, setup),
        cmocka_unit_test_setup(test_mixed_case_name, setup),
        cmocka_unit_test_setup(test_legacy_reply_with_everything, setup),
        cmocka_unit_test_setup(test_goodbye_on_stop, setup),
        cmocka_unit_test_setup(test_address_change_reprobes, setup),
        cmocka_unit_test_setup(test_bad_address_entries, setup),
        cmocka_unit_test_setup(test_address_order_is_no_change, setup),
        cmocka_unit_test_setup(test_setup_refuses_duplicate_types, setup),
        cmocka_unit_test_setup(test_qu_within_rate_limit_unicast, setup),
        cmocka_unit_test_setup(test_hostile_datagrams, setup),
        cmocka_unit_test_setup(test_fuzzed_input, setup),
        cmocka_unit_test_setup(test_hostile_through_poll, setup),
        cmocka_unit_test_setup(test_next_ms, setup),
        cmocka_unit_test_setup(test_off_link_response_ignored, setup),
        cmocka_unit_test_setup(test_on_link_conflict_still_renames, setup),
        cmocka_unit_test_setup(test_response_ttl_not_255_ignored, setup),
        cmocka_unit_test_setup(test_off_link_query_not_answered, setup),
        cmocka_unit_test_setup(test_ignored_log_is_rate_limited, setup),
        cmocka_unit_test_setup(test_poll_passes_the_port_facts, setup),
    };
    return cmocka_run_group_tests_name("mdns", tests, NULL, NULL);
}
