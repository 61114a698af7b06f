/*
 * mdns.c - the node's mDNS responder and DNS-SD advertiser (ota/mdns.h).
 *
 * The records: bit 0 is the host's A records, bit 1 its AAAA records, then four
 * bits per service i: its PTR (type -> instance, shared), SRV and TXT (unique) and
 * the enumeration PTR from _services._dns-sd._udp.local (shared). Sets of records
 * travel as bit masks from the question parser to the message writer.
 *
 * The life of the names: WAITING (no address yet) -> PROBING (three probes 250 ms
 * apart, RFC 6762 8.1) -> ANNOUNCING (two announcements 1 s apart, 8.3) ->
 * RUNNING. A conflicting answer while probing renames ("-2", "-3"...); while
 * announcing or running it sends the names back to probing (9). Everything is
 * per link: one interface and one address family, since multicast goes out on
 * each interface and each family separately.
 */
#include "ota/mdns.h"

#include <string.h>

#include "ota/errors.h"
#include "ota/util.h"

#if OTA_CFG_ENABLE_MDNS

#define BIT_A 0u
#define BIT_AAAA 1u
#define BIT_PTR(i) (2u + 4u * (unsigned)(i))
#define BIT_SRV(i) (3u + 4u * (unsigned)(i))
#define BIT_TXT(i) (4u + 4u * (unsigned)(i))
#define BIT_ENUM(i) (5u + 4u * (unsigned)(i))
#define ALL_BITS ((1u << OTA_MDNS_RECORDS) - 1u)

#define PROBE_INTERVAL_MS 250u
#define PROBE_COUNT 3u
#define ANNOUNCE_INTERVAL_MS 1000u
#define ANNOUNCE_COUNT 2u
#define DEFER_MS 1000u           /* lost a simultaneous-probe tie-break (8.2) */
#define CONFLICT_WINDOW_MS 10000u
#define CONFLICT_LIMIT 15u       /* then wait RATE_LIMIT_MS between probes (8.1) */
#define CONFLICT_WAIT_MS 5000u
#define ADDRS_EVERY_MS 1000u
#define MCAST_MIN_MS 1000u       /* a record at most once a second per link (6) */
#define PROBE_DEFENCE_MIN_MS 250u
#define LEGACY_TTL_MAX 10u       /* 6.7 */
#define MAX_DATAGRAMS_PER_POLL 8
#define LEGACY_ECHO_MAX 8        /* questions echoed in a legacy unicast reply */
#define MAX_TIEBREAK 8           /* their authority records compared per name */
#define RCODE_MASK 0x000Fu       /* the response code in a header's flags */
#define SERVICE_NAME_MAX 15u     /* RFC 6335 5.1 */
#define LINK_TTL 255u            /* what an mDNS packet from the link arrives with (11) */
#define IGNORED_LOG_EVERY_MS 10000u /* off-link datagrams: a debug line this often */

static const char LOCAL[] = "local";
static const char SERVICES[] = "_services._dns-sd._udp";

enum mode { M_MCAST, M_LEGACY, M_GOODBYE, M_PROBE };

static const uint8_t GROUP4[4] = OTA_MDNS_GROUP4_INIT;
static const uint8_t GROUP6[16] = OTA_MDNS_GROUP6_INIT;

/* ------------------------------------------------------------------ small helpers */

static bool due(uint32_t now, uint32_t at)
{
    return (int32_t)(now - at) >= 0;
}

static uint32_t rnd(ota_mdns_t *m, uint32_t below)
{
    uint32_t x = m->rng;
    x ^= x << 13;
    x ^= x >> 17;
    x ^= x << 5;
    m->rng = x;
    return below ? x % below : 0;
}

static bool is_unique(unsigned bit)
{
    return bit < 2 || (bit - 2) % 4 == 1 || (bit - 2) % 4 == 2;
}

static void mlog(const ota_mdns_t *m, ota_log_level_t lvl, const char *a, const char *b,
                 const char *c, const char *d)
{
    if (m->log == NULL)
        return;
    char line[OTA_CFG_LOG_LINE_MAX];
    ota_strbuf_t sb;
    ota_sb_init(&sb, line, sizeof line);
    ota_sb_str(&sb, "mdns: ");
    ota_sb_str(&sb, a);
    if (b != NULL)
        ota_sb_str(&sb, b);
    if (c != NULL)
        ota_sb_str(&sb, c);
    if (d != NULL)
        ota_sb_str(&sb, d);
    m->log->line(m->log->ctx, lvl, line);
}

static uint8_t lower(uint8_t c)
{
    return (c >= 'A' && c <= 'Z') ? (uint8_t)(c + 32) : c;
}

static bool label_eq(const uint8_t *p, const char *s, size_t n)
{
    if (p[0] != n)
        return false;
    for (size_t i = 0; i < n; i++)
        if (lower(p[1 + i]) != lower((uint8_t)s[i]))
            return false;
    return true;
}

/* Does the flat (well-formed) name equal [label.]dotted.local? Compared label by
 * label, without building our names: this runs for every question. */
static bool name_is(const uint8_t *flat, const char *label, const char *dotted)
{
    const uint8_t *p = flat;
    if (label != NULL) {
        size_t n = strlen(label);
        if (!label_eq(p, label, n))
            return false;
        p += 1 + n;
    }
    for (int part = 0; part < 2; part++) {
        const char *s = part == 0 ? dotted : LOCAL;
        while (s != NULL && *s != '\0') {
            const char *dot = s;
            while (*dot != '\0' && *dot != '.')
                dot++;
            size_t n = (size_t)(dot - s);
            if (!label_eq(p, s, n))
                return false;
            p += 1 + n;
            s = *dot == '.' ? dot + 1 : dot;
        }
    }
    return p[0] == 0;
}

/* Our names as flat names. */
static void make_name(uint8_t *out, const char *label, const char *dotted)
{
    out[0] = 0;
    if (label != NULL)
        (void)ota_dns_name_append_label(out, label, strlen(label));
    if (dotted != NULL)
        (void)ota_dns_name_append_dotted(out, dotted);
    (void)ota_dns_name_append_dotted(out, LOCAL);
}

static const char *svc_type(const ota_mdns_t *m, size_t i)
{
    return m->cfg.services[i].type;
}

/* ------------------------------------------------------------------ writing records */

static uint32_t rr_ttl(const ota_mdns_t *m, unsigned bit, enum mode mode)
{
    if (mode == M_GOODBYE)
        return 0;
    bool host = bit < 2 || (bit - 2) % 4 == 1; /* A, AAAA, SRV carry a host name */
    uint32_t ttl = host ? m->cfg.host_ttl : m->cfg.service_ttl;
    if (mode == M_LEGACY && ttl > LEGACY_TTL_MAX)
        ttl = LEGACY_TTL_MAX;
    return ttl;
}

/* Write record `bit` (all its addresses, for A/AAAA, of interface ifindex; 0 =
 * every interface). \return false when it did not fit (the writer is rewound). */
static bool put_rr(ota_mdns_t *m, ota_dns_writer_t *w, unsigned bit, ota_dns_section_t sec,
                   enum mode mode, uint32_t ifindex)
{
    uint8_t name[OTA_DNS_NAME_MAX];
    uint16_t rclass = OTA_DNS_CLASS_IN;
    if (is_unique(bit) && (mode == M_MCAST || mode == M_GOODBYE))
        rclass |= OTA_DNS_CLASS_TOP; /* cache flush (10.2) */
    uint32_t ttl = rr_ttl(m, bit, mode);
    ota_dns_mark_t mark = ota_dns_w_mark(w);
    if (bit < 2) {
        uint8_t fam = bit == BIT_A ? 4 : 6;
        if (fam == 6 && m->cfg.ipv4_only)
            return true; /* nothing to write */
        make_name(name, m->name, NULL);
        for (size_t k = 0; k < m->n_addrs; k++) {
            const ota_ip_t *a = &m->addrs[k];
            if (a->family != fam || (ifindex != 0 && a->ifindex != ifindex))
                continue;
            ota_dns_w_record_begin(w, sec, name, fam == 4 ? OTA_DNS_TYPE_A : OTA_DNS_TYPE_AAAA,
                                   rclass, ttl);
            ota_dns_w_bytes(w, a->addr, fam == 4 ? 4 : 16);
            ota_dns_w_record_end(w);
        }
    } else {
        size_t i = (bit - 2) / 4;
        const char *type = svc_type(m, i);
        switch ((bit - 2) % 4) {
        case 0: /* PTR type -> instance */
            make_name(name, NULL, type);
            ota_dns_w_record_begin(w, sec, name, OTA_DNS_TYPE_PTR, rclass, ttl);
            make_name(name, m->name, type);
            ota_dns_w_name(w, name);
            break;
        case 1: /* SRV */
            make_name(name, m->name, type);
            ota_dns_w_record_begin(w, sec, name, OTA_DNS_TYPE_SRV, rclass, ttl);
            ota_dns_w_u16(w, 0); /* priority */
            ota_dns_w_u16(w, 0); /* weight */
            ota_dns_w_u16(w, m->cfg.services[i].port);
            make_name(name, m->name, NULL);
            ota_dns_w_name_flat(w, name); /* uncompressed, as RFC 2782 wants */
            break;
        case 2: /* TXT */
            make_name(name, m->name, type);
            ota_dns_w_record_begin(w, sec, name, OTA_DNS_TYPE_TXT, rclass, ttl);
            ota_dns_w_bytes(w, m->txt[i], m->txt_len[i]);
            break;
        default: /* enumeration PTR */
            make_name(name, NULL, SERVICES);
            ota_dns_w_record_begin(w, sec, name, OTA_DNS_TYPE_PTR, rclass, ttl);
            make_name(name, NULL, type);
            ota_dns_w_name(w, name);
            break;
        }
        ota_dns_w_record_end(w);
    }
    if (!ota_dns_w_ok(w)) {
        ota_dns_w_rewind(w, &mark);
        return false;
    }
    return true;
}

/* Records of a set, in bit order; stops at the first that does not fit. */
static bool put_set(ota_mdns_t *m, ota_dns_writer_t *w, uint32_t bits, ota_dns_section_t sec,
                    enum mode mode, uint32_t ifindex)
{
    for (unsigned bit = 0; bit < OTA_MDNS_RECORDS; bit++)
        if ((bits & (1u << bit)) != 0 && !put_rr(m, w, bit, sec, mode, ifindex))
            return false;
    return true;
}

static void send_to(ota_mdns_t *m, size_t n, const ota_ip_t *to, uint16_t port)
{
    if (n > 0)
        (void)m->io->send(m->io->ctx, m->tx, n, to, port);
}

static void group_of(const ota_mdns_link_t *l, ota_ip_t *to)
{
    memset(to, 0, sizeof *to);
    to->family = l->family;
    to->ifindex = l->ifindex;
    if (l->family == 4)
        memcpy(to->addr, GROUP4, 4);
    else
        memcpy(to->addr, GROUP6, 16);
}

/* Bits that exist: the services configured, addresses present. */
static uint32_t existing_bits(const ota_mdns_t *m, uint32_t ifindex)
{
    uint32_t bits = 0;
    for (size_t k = 0; k < m->n_addrs; k++)
        if ((ifindex == 0 || m->addrs[k].ifindex == ifindex) &&
            (m->addrs[k].family == 4 || !m->cfg.ipv4_only))
            bits |= 1u << (m->addrs[k].family == 4 ? BIT_A : BIT_AAAA);
    for (size_t i = 0; i < m->cfg.n_services; i++)
        bits |= 0xFu << BIT_PTR(i);
    return bits;
}

/* One response: answers+additional (A/AAAA of interface ifindex) to to:port. */
static void respond(ota_mdns_t *m, uint32_t answers, uint32_t additional, enum mode mode,
                    uint32_t ifindex, const ota_ip_t *to, uint16_t port)
{
    ota_dns_writer_t w;
    ota_dns_w_init(&w, m->tx, sizeof m->tx, 0, OTA_DNS_FLAG_QR | OTA_DNS_FLAG_AA);
    (void)put_set(m, &w, answers, OTA_DNS_SEC_ANSWER, mode, ifindex);
    (void)put_set(m, &w, additional, OTA_DNS_SEC_ADDITIONAL, mode, ifindex);
    send_to(m, ota_dns_w_finish(&w), to, port);
}

/* Multicast answers+additional on a link now, minus what the rate limit holds
 * back, and note the time. \return the answers held back. */
static uint32_t mcast(ota_mdns_t *m, ota_mdns_link_t *l, uint32_t answers, uint32_t additional,
                      enum mode mode, uint32_t min_gap, uint32_t now)
{
    uint32_t held = 0;
    for (unsigned bit = 0; bit < OTA_MDNS_RECORDS; bit++) {
        uint32_t b = 1u << bit;
        if ((answers & b) != 0 && (l->sent & b) != 0 && !due(now, l->last_sent[bit] + min_gap))
            held |= b;
    }
    answers &= existing_bits(m, l->ifindex) & ~held;
    additional &= existing_bits(m, l->ifindex) & ~answers;
    if (answers == 0)
        return held;
    ota_ip_t to;
    group_of(l, &to);
    respond(m, answers, additional, mode, l->ifindex, &to, OTA_MDNS_PORT);
    for (unsigned bit = 0; bit < OTA_MDNS_RECORDS; bit++) {
        if ((answers & (1u << bit)) != 0) {
            l->last_sent[bit] = now;
            l->sent |= 1u << bit;
        }
    }
    return held;
}

static void announce_all(ota_mdns_t *m, enum mode mode, uint32_t now)
{
    for (size_t k = 0; k < m->n_links; k++) {
        ota_mdns_link_t *l = &m->links[k];
        l->sent = 0; /* announcements ignore the rate limit */
        l->pending = l->pending_add = 0;
        (void)mcast(m, l, ALL_BITS, 0, mode, 0, now);
    }
}

static void send_probes(ota_mdns_t *m)
{
    uint8_t name[OTA_DNS_NAME_MAX];
    for (size_t k = 0; k < m->n_links; k++) {
        const ota_mdns_link_t *l = &m->links[k];
        ota_dns_writer_t w;
        ota_dns_w_init(&w, m->tx, sizeof m->tx, 0, 0);
        /* questions: ANY for each name, unicast response wanted (8.1) */
        make_name(name, m->name, NULL);
        ota_dns_w_question(&w, name, OTA_DNS_TYPE_ANY, OTA_DNS_CLASS_IN | OTA_DNS_CLASS_TOP);
        for (size_t i = 0; i < m->cfg.n_services; i++) {
            make_name(name, m->name, svc_type(m, i));
            ota_dns_w_question(&w, name, OTA_DNS_TYPE_ANY, OTA_DNS_CLASS_IN | OTA_DNS_CLASS_TOP);
        }
        /* authority: the records we are about to claim, for the tie-break (8.2) */
        uint32_t bits = (1u << BIT_A) | (1u << BIT_AAAA);
        for (size_t i = 0; i < m->cfg.n_services; i++)
            bits |= (1u << BIT_SRV(i)) | (1u << BIT_TXT(i));
        (void)put_set(m, &w, bits, OTA_DNS_SEC_AUTHORITY, M_PROBE, l->ifindex);
        ota_ip_t to;
        group_of(l, &to);
        send_to(m, ota_dns_w_finish(&w), &to, OTA_MDNS_PORT);
    }
}

/* ------------------------------------------------------------------ the name's life */

static void start_probing(ota_mdns_t *m, uint32_t now, uint32_t delay)
{
    m->state = OTA_MDNS_PROBING;
    m->step = 0;
    m->next_at = now + delay;
    for (size_t k = 0; k < m->n_links; k++)
        m->links[k].pending = m->links[k].pending_add = 0;
    mlog(m, OTA_LOG_INFO, "probing ", m->name, ".local", NULL);
}

static void set_suffixed_name(ota_mdns_t *m)
{
    char num[12];
    ota_strbuf_t sb;
    ota_sb_init(&sb, num, sizeof num);
    ota_sb_str(&sb, "-");
    ota_sb_u32(&sb, m->suffix);
    size_t base = strlen(m->cfg.name), n = strlen(num);
    if (base + n > OTA_MDNS_NAME_LEN)
        base = OTA_MDNS_NAME_LEN - n;
    memcpy(m->name, m->cfg.name, base);
    memcpy(m->name + base, num, n + 1);
}

static void conflict(ota_mdns_t *m, uint32_t now)
{
    if (m->state == OTA_MDNS_ANNOUNCING || m->state == OTA_MDNS_RUNNING) {
        mlog(m, OTA_LOG_WARN, "another host answers for ", m->name,
             ".local with different data: probing the name again", NULL);
        start_probing(m, now, 0);
        return;
    }
    if (m->state != OTA_MDNS_PROBING)
        return;
    char old[OTA_MDNS_NAME_LEN + 1];
    memcpy(old, m->name, sizeof old);
    m->suffix++;
    set_suffixed_name(m);
    if (due(now, m->conflict_window_at + CONFLICT_WINDOW_MS)) {
        m->conflict_window_at = now;
        m->conflicts = 0;
    }
    m->conflicts++;
    if (m->log != NULL) {
        char line[OTA_CFG_LOG_LINE_MAX];
        ota_strbuf_t sb;
        ota_sb_init(&sb, line, sizeof line);
        ota_sb_str(&sb, "mdns: ");
        ota_sb_str(&sb, old);
        ota_sb_str(&sb, ".local is taken by another host: trying ");
        ota_sb_str(&sb, m->name);
        ota_sb_str(&sb, ".local");
        m->log->line(m->log->ctx, OTA_LOG_WARN, line);
    }
    if (m->conflicts >= CONFLICT_LIMIT) {
        m->state = OTA_MDNS_WAITING;
        m->next_at = now + CONFLICT_WAIT_MS;
        return;
    }
    start_probing(m, now, rnd(m, PROBE_INTERVAL_MS));
}

/* ------------------------------------------------------------------ comparing data */

/* Our records of one unique name, as (type, rdata) for comparisons. */
typedef struct rrdata {
    uint16_t type;
    const uint8_t *p;
    size_t n;
} rrdata_t;

/* SRV rdata in canonical form (uncompressed target) into buf (6 + 255 bytes). */
static size_t our_srv(const ota_mdns_t *m, size_t i, uint8_t *buf)
{
    uint16_t port = m->cfg.services[i].port;
    memset(buf, 0, 4);
    buf[4] = (uint8_t)(port >> 8);
    buf[5] = (uint8_t)port;
    make_name(buf + 6, m->name, NULL);
    return 6 + ota_dns_name_len(buf + 6);
}

static size_t their_srv(const uint8_t *msg, size_t len, const ota_dns_record_t *r, uint8_t *buf)
{
    if (r->rdlength < 7)
        return 0;
    memcpy(buf, msg + r->rdata, 6);
    int n = ota_dns_read_name(msg, len, r->rdata + 6, buf + 6, NULL);
    return n < 0 ? 0 : 6 + (size_t)n;
}

static bool have_addr(const ota_mdns_t *m, uint8_t fam, const uint8_t *a)
{
    for (size_t k = 0; k < m->n_addrs; k++)
        if (m->addrs[k].family == fam && memcmp(m->addrs[k].addr, a, fam == 4 ? 4 : 16) == 0)
            return true;
    return false;
}

/* Which of our unique names is this: -1 none, 0 the host, 1 + i instance i. */
static int unique_name(const ota_mdns_t *m, const uint8_t *flat)
{
    if (name_is(flat, m->name, NULL))
        return 0;
    for (size_t i = 0; i < m->cfg.n_services; i++)
        if (name_is(flat, m->name, svc_type(m, i)))
            return 1 + (int)i;
    return -1;
}

/* A record of someone else's response: does it claim one of our unique names with
 * data other than ours (9)? Our own packets, looped back, carry our data. */
static bool rr_conflicts(const ota_mdns_t *m, const uint8_t *msg, size_t len,
                         const ota_dns_record_t *r)
{
    if ((r->rclass & ~OTA_DNS_CLASS_TOP) != OTA_DNS_CLASS_IN || r->ttl == 0)
        return false;
    int which = unique_name(m, r->name);
    if (which < 0)
        return false;
    if (which == 0) {
        if (r->type == OTA_DNS_TYPE_A && r->rdlength == 4)
            return !have_addr(m, 4, msg + r->rdata);
        if (r->type == OTA_DNS_TYPE_AAAA && r->rdlength == 16)
            return !have_addr(m, 6, msg + r->rdata);
        return false;
    }
    size_t i = (size_t)(which - 1);
    if (r->type == OTA_DNS_TYPE_SRV) {
        uint8_t a[6 + OTA_DNS_NAME_MAX], b[6 + OTA_DNS_NAME_MAX];
        size_t na = their_srv(msg, len, r, a), nb = our_srv(m, i, b);
        /* priority and weight do not matter, port and target do */
        return na == 0 || na != nb || memcmp(a + 4, b + 4, 2) != 0 ||
               !ota_dns_name_eq(a + 6, b + 6);
    }
    if (r->type == OTA_DNS_TYPE_TXT)
        return r->rdlength != m->txt_len[i] ||
               memcmp(msg + r->rdata, m->txt[i], m->txt_len[i]) != 0;
    return false;
}

/* Known-answer suppression (7.1): the querier already has this record of ours
 * with at least half its TTL left. \return the bit, or -1. */
static int known_answer(const ota_mdns_t *m, const uint8_t *msg, size_t len,
                        const ota_dns_record_t *r)
{
    uint8_t target[OTA_DNS_NAME_MAX];
    for (size_t i = 0; i < m->cfg.n_services; i++) {
        const char *type = svc_type(m, i);
        unsigned bit;
        if (r->type == OTA_DNS_TYPE_PTR && name_is(r->name, NULL, type)) {
            if (ota_dns_read_name(msg, len, r->rdata, target, NULL) < 0 ||
                !name_is(target, m->name, type))
                continue;
            bit = BIT_PTR(i);
        } else if (r->type == OTA_DNS_TYPE_PTR && name_is(r->name, NULL, SERVICES)) {
            if (ota_dns_read_name(msg, len, r->rdata, target, NULL) < 0 ||
                !name_is(target, NULL, type))
                continue;
            bit = BIT_ENUM(i);
        } else if ((r->type == OTA_DNS_TYPE_SRV || r->type == OTA_DNS_TYPE_TXT) &&
                   name_is(r->name, m->name, type)) {
            if (rr_conflicts(m, msg, len, r))
                continue; /* not our data */
            bit = r->type == OTA_DNS_TYPE_SRV ? BIT_SRV(i) : BIT_TXT(i);
        } else {
            continue;
        }
        if (r->ttl >= rr_ttl(m, bit, M_MCAST) / 2)
            return (int)bit;
    }
    return -1;
}

/* ------------------------------------------------------------------ tie-break (8.2) */

typedef struct tb_entry {
    uint16_t type;
    uint16_t off, len; /* theirs: the rdata in the message */
    bool ours;
    uint8_t idx;       /* ours: index into addrs (A/AAAA) or services (SRV/TXT) */
} tb_entry_t;

/* The canonical rdata of an entry into buf (6 + 255 bytes at least). */
static const uint8_t *tb_rdata(const ota_mdns_t *m, const uint8_t *msg, size_t len,
                               const tb_entry_t *e, uint8_t *buf, size_t *n)
{
    if (!e->ours) {
        if (e->type == OTA_DNS_TYPE_SRV) {
            ota_dns_record_t r;
            r.rdata = e->off;
            r.rdlength = (uint16_t)e->len;
            *n = their_srv(msg, len, &r, buf);
            return buf;
        }
        *n = e->len;
        return msg + e->off;
    }
    switch (e->type) {
    case OTA_DNS_TYPE_A: *n = 4; return m->addrs[e->idx].addr;
    case OTA_DNS_TYPE_AAAA: *n = 16; return m->addrs[e->idx].addr;
    case OTA_DNS_TYPE_SRV: *n = our_srv(m, e->idx, buf); return buf;
    default: *n = m->txt_len[e->idx]; return m->txt[e->idx];
    }
}

static int tb_cmp(const ota_mdns_t *m, const uint8_t *msg, size_t len, const tb_entry_t *a,
                  const tb_entry_t *b)
{
    if (a->type != b->type)
        return a->type < b->type ? -1 : 1; /* the class is IN for both */
    uint8_t ba[6 + OTA_DNS_NAME_MAX], bb[6 + OTA_DNS_NAME_MAX];
    size_t na, nb;
    const uint8_t *pa = tb_rdata(m, msg, len, a, ba, &na);
    const uint8_t *pb = tb_rdata(m, msg, len, b, bb, &nb);
    size_t n = na < nb ? na : nb;
    int c = n ? memcmp(pa, pb, n) : 0;
    if (c != 0)
        return c < 0 ? -1 : 1;
    return na == nb ? 0 : (na < nb ? -1 : 1);
}

static void tb_sort(const ota_mdns_t *m, const uint8_t *msg, size_t len, tb_entry_t *e,
                    size_t n)
{
    for (size_t i = 1; i < n; i++)
        for (size_t j = i; j > 0 && tb_cmp(m, msg, len, &e[j - 1], &e[j]) > 0; j--) {
            tb_entry_t t = e[j];
            e[j] = e[j - 1];
            e[j - 1] = t;
        }
}

/* Compare our records of unique name `which` (on interface ifindex) with theirs.
 * \return <0 we lose, 0 identical (our own probe), >0 we win. */
static int tiebreak(const ota_mdns_t *m, const uint8_t *msg, size_t len, int which,
                    uint32_t ifindex, tb_entry_t *theirs, size_t n_theirs)
{
    tb_entry_t ours[OTA_CFG_MDNS_MAX_ADDRS + 2];
    size_t n_ours = 0;
    if (which == 0) {
        /* a probe that claims only addresses of ours is our own, sent on another
         * interface attached to the same link (each interface probes with its own
         * addresses): comparing it with this interface's would make us defer to
         * ourselves on every probe */
        bool own = true;
        for (size_t k = 0; k < n_theirs && own; k++) {
            const tb_entry_t *e = &theirs[k];
            own = (e->type == OTA_DNS_TYPE_A && e->len == 4 && have_addr(m, 4, msg + e->off)) ||
                  (e->type == OTA_DNS_TYPE_AAAA && e->len == 16 && have_addr(m, 6, msg + e->off));
        }
        if (own)
            return 0;
        for (size_t k = 0; k < m->n_addrs; k++) {
            if ((ifindex != 0 && m->addrs[k].ifindex != ifindex) ||
                (m->addrs[k].family == 6 && m->cfg.ipv4_only))
                continue;
            tb_entry_t e = {m->addrs[k].family == 4 ? OTA_DNS_TYPE_A : OTA_DNS_TYPE_AAAA, 0, 0,
                            true, (uint8_t)k};
            ours[n_ours++] = e;
        }
    } else {
        tb_entry_t srv = {OTA_DNS_TYPE_SRV, 0, 0, true, (uint8_t)(which - 1)};
        tb_entry_t txt = {OTA_DNS_TYPE_TXT, 0, 0, true, (uint8_t)(which - 1)};
        ours[n_ours++] = srv;
        ours[n_ours++] = txt;
    }
    tb_sort(m, msg, len, ours, n_ours);
    tb_sort(m, msg, len, theirs, n_theirs);
    for (size_t k = 0; k < n_ours && k < n_theirs; k++) {
        int c = tb_cmp(m, msg, len, &ours[k], &theirs[k]);
        if (c != 0)
            return c;
    }
    return n_ours == n_theirs ? 0 : (n_ours > n_theirs ? 1 : -1);
}

/* ------------------------------------------------------------------ input */

static ota_mdns_link_t *link_for(ota_mdns_t *m, const ota_ip_t *from)
{
    for (size_t k = 0; k < m->n_links; k++)
        if (m->links[k].family == from->family &&
            (from->ifindex == 0 || m->links[k].ifindex == from->ifindex))
            return &m->links[k];
    return NULL;
}

/* The answers a question asks of us. */
static uint32_t question_bits(const ota_mdns_t *m, const ota_dns_question_t *q)
{
    uint16_t t = q->type;
    bool any = t == OTA_DNS_TYPE_ANY;
    uint32_t bits = 0;
    if ((q->qclass & ~OTA_DNS_CLASS_TOP) != OTA_DNS_CLASS_IN &&
        (q->qclass & ~OTA_DNS_CLASS_TOP) != OTA_DNS_CLASS_ANY)
        return 0;
    if (name_is(q->name, m->name, NULL)) {
        if (any || t == OTA_DNS_TYPE_A)
            bits |= 1u << BIT_A;
        if (any || t == OTA_DNS_TYPE_AAAA)
            bits |= 1u << BIT_AAAA;
        return bits;
    }
    for (size_t i = 0; i < m->cfg.n_services; i++) {
        const char *type = svc_type(m, i);
        if ((any || t == OTA_DNS_TYPE_PTR) && name_is(q->name, NULL, type))
            bits |= 1u << BIT_PTR(i);
        if (name_is(q->name, m->name, type)) {
            if (any || t == OTA_DNS_TYPE_SRV)
                bits |= 1u << BIT_SRV(i);
            if (any || t == OTA_DNS_TYPE_TXT)
                bits |= 1u << BIT_TXT(i);
        }
        if ((any || t == OTA_DNS_TYPE_PTR) && name_is(q->name, NULL, SERVICES))
            bits |= 1u << BIT_ENUM(i);
    }
    return bits;
}

/* What a browser asks next about the answers (RFC 6763 12). */
static uint32_t additional_for(const ota_mdns_t *m, uint32_t answers)
{
    uint32_t add = 0;
    for (size_t i = 0; i < m->cfg.n_services; i++) {
        if (answers & (1u << BIT_PTR(i)))
            add |= (1u << BIT_SRV(i)) | (1u << BIT_TXT(i)) | 3u;
        if (answers & (1u << BIT_SRV(i)))
            add |= 3u;
    }
    if (answers & 3u)
        add |= 3u; /* A asks for AAAA too and vice versa (6.2) */
    return add & ~answers;
}

static void answer_legacy(ota_mdns_t *m, const uint8_t *msg, size_t len, const ota_ip_t *from,
                          uint16_t from_port, uint32_t answers)
{
    uint32_t ifindex = from->ifindex;
    ota_dns_reader_t r;
    if (ota_dns_reader_init(&r, msg, len) != 0)
        return;
    ota_dns_writer_t w;
    ota_dns_w_init(&w, m->tx, sizeof m->tx, r.hdr.id, OTA_DNS_FLAG_QR | OTA_DNS_FLAG_AA);
    ota_dns_question_t q;
    unsigned echoed = 0;
    /* echo the questions we answer (6.7), a few: a query repeating our names a
     * hundred times must not fill the reply with questions and leave no answer */
    while (echoed < LEGACY_ECHO_MAX && ota_dns_next_question(&r, &q) == 1) {
        if (question_bits(m, &q) == 0)
            continue;
        echoed++;
        ota_dns_mark_t mark = ota_dns_w_mark(&w);
        ota_dns_w_question(&w, q.name, q.type, q.qclass & ~OTA_DNS_CLASS_TOP);
        if (!ota_dns_w_ok(&w)) {
            ota_dns_w_rewind(&w, &mark);
            break;
        }
    }
    answers &= existing_bits(m, ifindex);
    if (answers == 0)
        return;
    if (put_set(m, &w, answers, OTA_DNS_SEC_ANSWER, M_LEGACY, ifindex))
        (void)put_set(m, &w, additional_for(m, answers) & existing_bits(m, ifindex),
                      OTA_DNS_SEC_ADDITIONAL, M_LEGACY, ifindex);
    send_to(m, ota_dns_w_finish(&w), from, from_port);
}

/* The source address as text: dotted IPv4, or IPv6 hex groups with the longest run
 * of zero groups as "::". */
static void sb_ip(ota_strbuf_t *sb, const ota_ip_t *ip)
{
    static const char HEX[] = "0123456789abcdef";
    if (ip->family == 4) {
        for (int i = 0; i < 4; i++) {
            if (i > 0)
                ota_sb_str(sb, ".");
            ota_sb_u32(sb, ip->addr[i]);
        }
        return;
    }
    int run_at = -1, run_len = 0;
    for (int i = 0; i < 8;) {
        int j = i;
        while (j < 8 && ip->addr[2 * j] == 0 && ip->addr[2 * j + 1] == 0)
            j++;
        if (j - i > run_len && j - i >= 2) {
            run_at = i;
            run_len = j - i;
        }
        i = j > i ? j : i + 1;
    }
    for (int i = 0; i < 8; i++) {
        if (i == run_at) {
            ota_sb_str(sb, "::");
            i += run_len - 1;
            continue;
        }
        if (i > 0 && i != run_at + run_len)
            ota_sb_str(sb, ":");
        unsigned g = (unsigned)ip->addr[2 * i] << 8 | ip->addr[2 * i + 1];
        char d[5];
        int n = 0;
        for (int sh = 12; sh >= 0; sh -= 4)
            if ((g >> sh) != 0 || sh == 0)
                d[n++] = HEX[(g >> sh) & 0xFu];
        d[n] = '\0';
        ota_sb_str(sb, d);
    }
}

/* A datagram dropped by the on-link rule (11): per reason (off the link, TTL) at
 * most one debug line every IGNORED_LOG_EVERY_MS, with the count of those not
 * logged since. */
static void ignored(ota_mdns_t *m, bool response, const ota_ip_t *from,
                    const ota_mdns_rx_meta_t *meta, uint32_t now)
{
    unsigned why = meta->on_link == OTA_MDNS_LINK_OFF ? 0 : 1;
    if ((m->ignored_logged & (1u << why)) != 0 &&
        !due(now, m->ignored_log_at[why] + IGNORED_LOG_EVERY_MS)) {
        m->ignored_quiet[why]++;
        return;
    }
    if (m->log == NULL)
        return;
    char line[OTA_CFG_LOG_LINE_MAX];
    ota_strbuf_t sb;
    ota_sb_init(&sb, line, sizeof line);
    ota_sb_str(&sb, response ? "mdns: ignored a response from " : "mdns: ignored a query from ");
    sb_ip(&sb, from);
    if (meta->on_link == OTA_MDNS_LINK_OFF) {
        ota_sb_str(&sb, ": not on the link");
    } else {
        ota_sb_str(&sb, ": TTL ");
        ota_sb_u32(&sb, meta->ttl);
        ota_sb_str(&sb, ", not 255");
    }
    if (m->ignored_quiet[why] > 0) {
        ota_sb_str(&sb, " (and ");
        ota_sb_u32(&sb, m->ignored_quiet[why]);
        ota_sb_str(&sb, " more since the last line)");
    }
    m->log->line(m->log->ctx, OTA_LOG_DEBUG, line);
    m->ignored_logged |= (uint8_t)(1u << why);
    m->ignored_log_at[why] = now;
    m->ignored_quiet[why] = 0;
}

void ota_mdns_input(ota_mdns_t *m, const uint8_t *msg, size_t len, const ota_ip_t *from,
                    uint16_t from_port, uint32_t now)
{
    static const ota_mdns_rx_meta_t unknown = {OTA_MDNS_LINK_UNKNOWN, false, 0};
    ota_mdns_input_meta(m, msg, len, from, from_port, &unknown, now);
}

void ota_mdns_input_meta(ota_mdns_t *m, const uint8_t *msg, size_t len, const ota_ip_t *from,
                         uint16_t from_port, const ota_mdns_rx_meta_t *meta, uint32_t now)
{
    if (m->state == OTA_MDNS_OFF || m->state == OTA_MDNS_WAITING)
        return;
    ota_dns_reader_t r;
    /* messages with another opcode or a response code are not for us (18.3, 18.11) */
    if (ota_dns_reader_init(&r, msg, len) != 0 || (r.hdr.flags & OTA_DNS_OPCODE_MASK) != 0 ||
        (r.hdr.flags & RCODE_MASK) != 0)
        return;
    bool response = (r.hdr.flags & OTA_DNS_FLAG_QR) != 0;
    bool legacy = from_port != OTA_MDNS_PORT;
    if (response && legacy)
        return; /* 6: responses come from port 5353, others are not mDNS */
    /* 11: only the link may tell us about our names, and only the link gets answers
     * (an off-link querier would get a reply larger than its query). A TTL other
     * than 255 means a router forwarded it: not a response from the link, and a
     * probe of such a query does not count for the tie-break; queries are answered
     * anyway (legacy resolvers send with TTL 64, or 1 to the group). */
    bool ttl_bad = meta->ttl_known && meta->ttl != LINK_TTL;
    if (meta->on_link == OTA_MDNS_LINK_OFF || (response && ttl_bad)) {
        ignored(m, response, from, meta, now);
        return;
    }

    uint32_t answers = 0, qu = 0;
    ota_dns_question_t q;
    int rc = 0;
    while (!response && (rc = ota_dns_next_question(&r, &q)) == 1) {
        uint32_t bits = question_bits(m, &q);
        answers |= bits;
        if ((q.qclass & OTA_DNS_CLASS_TOP) != 0)
            qu |= bits; /* unicast response wanted (5.4) */
    }
    if (!response && rc < 0)
        return; /* the questions are unreadable: nothing to answer */

    /* the records: conflicts (responses), known answers and probes (queries) */
    tb_entry_t theirs[1 + OTA_CFG_MDNS_MAX_SERVICES][MAX_TIEBREAK];
    size_t n_theirs[1 + OTA_CFG_MDNS_MAX_SERVICES] = {0};
    bool probe = false, clash = false, whole = true;
    ota_dns_record_t rec;
    for (;;) {
        rc = ota_dns_next_record(&r, &rec);
        if (rc <= 0) {
            whole = rc == 0;
            break;
        }
        if (response) {
            if (rr_conflicts(m, msg, len, &rec))
                clash = true;
        } else if (rec.section == OTA_DNS_SEC_ANSWER) {
            int bit = known_answer(m, msg, len, &rec);
            if (bit >= 0)
                answers &= ~(1u << (unsigned)bit);
        } else if (rec.section == OTA_DNS_SEC_AUTHORITY) {
            probe = true;
            int which = unique_name(m, rec.name);
            if (which >= 0 && !ttl_bad && n_theirs[which] < MAX_TIEBREAK &&
                (rec.rclass & ~OTA_DNS_CLASS_TOP) == OTA_DNS_CLASS_IN) {
                tb_entry_t e = {rec.type, (uint16_t)rec.rdata, rec.rdlength, false, 0};
                theirs[which][n_theirs[which]++] = e;
            }
        }
    }

    if (response) {
        if (clash && whole)
            conflict(m, now);
        return;
    }
    if (m->state == OTA_MDNS_PROBING) {
        /* someone else probing for our names at the same time (8.2) */
        if (!whole)
            return;
        for (size_t which = 0; which <= m->cfg.n_services; which++) {
            if (n_theirs[which] == 0)
                continue;
            if (tiebreak(m, msg, len, (int)which, from->ifindex, theirs[which],
                         n_theirs[which]) < 0) {
                mlog(m, OTA_LOG_INFO, "another host probes for ", m->name,
                     ".local at the same time and wins the tie-break: probing again in 1 s",
                     NULL);
                m->step = 0;
                m->next_at = now + DEFER_MS;
                return;
            }
        }
        return; /* names are not ours yet: no answers */
    }

    /* ANNOUNCING or RUNNING: answer */
    if (answers == 0)
        return;
    if (legacy) {
        answer_legacy(m, msg, len, from, from_port, answers);
        return;
    }
    ota_mdns_link_t *l = link_for(m, from);
    if (l == NULL)
        return;
    uint32_t shared = 0;
    for (unsigned bit = 0; bit < OTA_MDNS_RECORDS; bit++)
        if ((answers & (1u << bit)) != 0 && !is_unique(bit))
            shared |= 1u << bit;
    if (shared == 0) {
        /* only unique records: at once (6); a probe gets its answer even if the
         * records went out a moment ago (defending the name) */
        uint32_t held = mcast(m, l, answers, additional_for(m, answers), M_MCAST,
                              probe ? PROBE_DEFENCE_MIN_MS : MCAST_MIN_MS, now);
        /* what a QU question asked and the rate limit held back: straight to the
         * querier, which may not have it (5.4) */
        held &= qu & existing_bits(m, l->ifindex);
        if (held != 0)
            respond(m, held, additional_for(m, held) & existing_bits(m, l->ifindex), M_MCAST,
                    l->ifindex, from, from_port);
        return;
    }
    /* shared records: 20-120 ms later, aggregated with other answers due (6) */
    uint32_t at = now + 20u + rnd(m, 101u);
    if (l->pending == 0 || (int32_t)(at - l->pending_at) < 0)
        l->pending_at = at;
    l->pending |= answers;
    l->pending_add |= additional_for(m, answers);
}

/* ------------------------------------------------------------------ addresses */

static void rebuild_links(ota_mdns_t *m)
{
    ota_mdns_link_t old[OTA_CFG_MDNS_MAX_ADDRS];
    size_t n_old = m->n_links;
    memcpy(old, m->links, sizeof old);
    m->n_links = 0;
    for (size_t k = 0; k < m->n_addrs; k++) {
        const ota_ip_t *a = &m->addrs[k];
        bool seen = false;
        for (size_t j = 0; j < m->n_links; j++)
            if (m->links[j].ifindex == a->ifindex && m->links[j].family == a->family)
                seen = true;
        if (seen)
            continue;
        ota_mdns_link_t *l = &m->links[m->n_links++];
        memset(l, 0, sizeof *l);
        l->ifindex = a->ifindex;
        l->family = a->family;
        for (size_t j = 0; j < n_old; j++) /* keep the rate limit of a link that stays */
            if (old[j].ifindex == l->ifindex && old[j].family == l->family) {
                l->sent = old[j].sent;
                memcpy(l->last_sent, old[j].last_sent, sizeof l->last_sent);
            }
    }
}

static void refresh_addrs(ota_mdns_t *m, uint32_t now)
{
    ota_ip_t got[OTA_CFG_MDNS_MAX_ADDRS];
    memset(got, 0, sizeof got);
    int n = m->io->addrs(m->io->ctx, got, OTA_CFG_MDNS_MAX_ADDRS);
    if (n < 0)
        n = 0;
    if (n > OTA_CFG_MDNS_MAX_ADDRS)
        n = OTA_CFG_MDNS_MAX_ADDRS;
    size_t k = 0;
    for (int j = 0; j < n; j++) /* keep only well-formed ones */
        if (got[j].family == 4 || got[j].family == 6)
            got[k++] = got[j];
    /* the same addresses in another order are no change (a port need not list
     * them in a stable order) */
    bool same = k == m->n_addrs;
    for (size_t j = 0; same && j < k; j++) {
        same = false;
        for (size_t i = 0; i < m->n_addrs && !same; i++)
            same = got[j].family == m->addrs[i].family && got[j].ifindex == m->addrs[i].ifindex &&
                   memcmp(got[j].addr, m->addrs[i].addr, 16) == 0;
    }
    if (same)
        return;
    memset(m->addrs, 0, sizeof m->addrs);
    memcpy(m->addrs, got, k * sizeof got[0]);
    m->n_addrs = k;
    rebuild_links(m);
    if (k == 0) {
        if (m->state != OTA_MDNS_WAITING)
            mlog(m, OTA_LOG_INFO, "no network address: waiting for one", NULL, NULL, NULL);
        m->state = OTA_MDNS_WAITING;
        m->next_at = now;
        return;
    }
    if (m->state == OTA_MDNS_WAITING && !due(now, m->next_at))
        return; /* backing off after conflicts; probes when the wait is over */
    /* a new address: probe and announce again (RFC 6762 8.3, 13) */
    start_probing(m, now, rnd(m, PROBE_INTERVAL_MS));
}

/* ------------------------------------------------------------------ API */

void ota_mdns_config_default(ota_mdns_config_t *cfg)
{
    memset(cfg, 0, sizeof *cfg);
    cfg->host_ttl = 120;
    cfg->service_ttl = 4500;
}

bool ota_mdns_name_valid(const char *s)
{
    size_t n = s ? strlen(s) : 0;
    if (n == 0 || n > OTA_MDNS_NAME_LEN || s[0] == '-' || s[n - 1] == '-')
        return false;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '-'))
            return false;
    }
    return true;
}

/* "_name._tcp" / "_name._udp", the name as RFC 6335 5.1 has it: 1-15 letters,
 * digits and hyphens, at least one letter, no hyphen at either end or twice in a
 * row. */
static bool valid_type(const char *t)
{
    if (t == NULL || t[0] != '_')
        return false;
    size_t n = strlen(t);
    if (n < 7 || n > 1 + SERVICE_NAME_MAX + 5)
        return false;
    const char *proto = t + n - 5;
    if (strcmp(proto, "._tcp") != 0 && strcmp(proto, "._udp") != 0)
        return false;
    bool letter = false;
    for (const char *p = t + 1; p < proto; p++) {
        bool alpha = (*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z');
        letter |= alpha;
        if (*p == '-') {
            if (p == t + 1 || p + 1 == proto || p[1] == '-')
                return false;
        } else if (!alpha && !(*p >= '0' && *p <= '9')) {
            return false;
        }
    }
    return letter;
}

/* Service types are names: equal ignoring ASCII case. */
static bool same_type(const char *a, const char *b)
{
    size_t n = strlen(a);
    if (n != strlen(b))
        return false;
    for (size_t i = 0; i < n; i++)
        if (lower((uint8_t)a[i]) != lower((uint8_t)b[i]))
            return false;
    return true;
}

int ota_mdns_setup(ota_mdns_t *m, const ota_mdns_port_t *io, const ota_crypto_port_t *crypto,
                   const ota_log_port_t *log, const ota_mdns_config_t *cfg, uint32_t now)
{
    memset(m, 0, sizeof *m);
    if (cfg == NULL || io == NULL || (io->recv == NULL && io->recv_meta == NULL) ||
        io->send == NULL || io->addrs == NULL || !ota_mdns_name_valid(cfg->name) ||
        cfg->n_services > OTA_CFG_MDNS_MAX_SERVICES || cfg->host_ttl == 0 || cfg->service_ttl == 0)
        return OTA_ERR_INVALID_ARG;
    m->io = io;
    m->log = log != NULL && log->line != NULL ? log : NULL;
    m->cfg = *cfg;
    for (size_t i = 0; i < cfg->n_services; i++) {
        const ota_mdns_service_t *s = &cfg->services[i];
        if (!valid_type(s->type) || s->port == 0)
            return OTA_ERR_INVALID_ARG;
        for (size_t j = 0; j < i; j++) /* one type twice: one instance, two SRVs */
            if (same_type(s->type, cfg->services[j].type))
                return OTA_ERR_INVALID_ARG;
        size_t o = 0;
        for (const char *const *t = s->txt; t != NULL && *t != NULL; t++) {
            size_t n = strlen(*t);
            if (n == 0 || n > 255 || o + 1 + n > OTA_CFG_MDNS_TXT_SIZE)
                return OTA_ERR_INVALID_ARG;
            m->txt[i][o] = (uint8_t)n;
            memcpy(&m->txt[i][o + 1], *t, n);
            o += 1 + n;
        }
        if (o == 0) /* an empty TXT record is one empty string (RFC 6763 6.1) */
            m->txt[i][o++] = 0;
        m->txt_len[i] = (uint16_t)o;
    }
    uint8_t seed[4] = {0};
    if (crypto == NULL || crypto->random == NULL ||
        crypto->random(crypto->ctx, seed, sizeof seed) != OTA_OK)
        memcpy(seed, &now, sizeof seed);
    m->rng = ota_be32_get(seed) | 1u;

    /* the largest message we send is the full announcement: with the longest name
     * a rename can give and every address an IPv6 one, it must fit one datagram */
    size_t base = strlen(cfg->name);
    if (base + 4 > OTA_MDNS_NAME_LEN)
        base = OTA_MDNS_NAME_LEN - 4;
    memcpy(m->name, cfg->name, base);
    memcpy(m->name + base, "-999", 5);
    m->n_addrs = OTA_CFG_MDNS_MAX_ADDRS;
    for (size_t k = 0; k < m->n_addrs; k++)
        m->addrs[k].family = 6;
    ota_dns_writer_t w;
    ota_dns_w_init(&w, m->tx, sizeof m->tx, 0, OTA_DNS_FLAG_QR | OTA_DNS_FLAG_AA);
    bool fits = put_set(m, &w, ALL_BITS & existing_bits(m, 0), OTA_DNS_SEC_ANSWER, M_MCAST, 0);
    memset(m->addrs, 0, sizeof m->addrs);
    m->n_addrs = 0;
    if (!fits) {
        memset(m, 0, sizeof *m);
        return OTA_ERR_INVALID_ARG;
    }

    memcpy(m->name, cfg->name, strlen(cfg->name) + 1);
    m->suffix = 1;
    m->state = OTA_MDNS_WAITING;
    m->next_at = now;
    m->addrs_at = now;
    m->conflict_window_at = now;
    return OTA_OK;
}

void ota_mdns_poll(ota_mdns_t *m, uint32_t now)
{
    if (m->state == OTA_MDNS_OFF)
        return;
    for (int k = 0; k < MAX_DATAGRAMS_PER_POLL; k++) {
        ota_ip_t from;
        uint16_t from_port = 0;
        ota_mdns_rx_meta_t meta;
        memset(&from, 0, sizeof from);
        memset(&meta, 0, sizeof meta);
        int n = m->io->recv_meta != NULL
                    ? m->io->recv_meta(m->io->ctx, m->rx, sizeof m->rx, &from, &from_port, &meta)
                    : m->io->recv(m->io->ctx, m->rx, sizeof m->rx, &from, &from_port);
        if (n < 0)
            break;
        if (n == 0)
            continue; /* an empty datagram: nothing in it, but more may follow */
        ota_mdns_input_meta(m, m->rx, (size_t)n > sizeof m->rx ? sizeof m->rx : (size_t)n,
                            &from, from_port, &meta, now);
    }
    if (due(now, m->addrs_at)) {
        m->addrs_at = now + ADDRS_EVERY_MS;
        refresh_addrs(m, now);
    }
    switch (m->state) {
    case OTA_MDNS_WAITING:
        if (m->n_addrs > 0 && due(now, m->next_at))
            start_probing(m, now, rnd(m, PROBE_INTERVAL_MS));
        break;
    case OTA_MDNS_PROBING:
        if (!due(now, m->next_at))
            break;
        if (m->step < PROBE_COUNT) {
            send_probes(m);
            m->step++;
            m->next_at = now + PROBE_INTERVAL_MS;
            break;
        }
        m->state = OTA_MDNS_ANNOUNCING;
        m->step = 0;
        mlog(m, OTA_LOG_INFO, "announcing ", m->name, ".local", NULL);
        /* fall through - the first announcement goes out now */
    case OTA_MDNS_ANNOUNCING:
        if (!due(now, m->next_at))
            break;
        announce_all(m, M_MCAST, now);
        if (++m->step >= ANNOUNCE_COUNT)
            m->state = OTA_MDNS_RUNNING;
        m->next_at = now + ANNOUNCE_INTERVAL_MS;
        break;
    default:
        break;
    }
    if (m->state == OTA_MDNS_ANNOUNCING || m->state == OTA_MDNS_RUNNING) {
        for (size_t k = 0; k < m->n_links; k++) {
            ota_mdns_link_t *l = &m->links[k];
            if (l->pending != 0 && due(now, l->pending_at)) {
                uint32_t a = l->pending, add = l->pending_add;
                l->pending = l->pending_add = 0;
                (void)mcast(m, l, a, add, M_MCAST, MCAST_MIN_MS, now);
            }
        }
    }
}

uint32_t ota_mdns_next_ms(const ota_mdns_t *m, uint32_t now)
{
    if (m->state == OTA_MDNS_OFF)
        return 1000;
    uint32_t best = 1000;
    uint32_t at[2 + OTA_CFG_MDNS_MAX_ADDRS];
    size_t n = 0;
    at[n++] = m->addrs_at;
    if (m->state == OTA_MDNS_PROBING || m->state == OTA_MDNS_ANNOUNCING ||
        (m->state == OTA_MDNS_WAITING && m->n_addrs > 0))
        at[n++] = m->next_at;
    for (size_t k = 0; k < m->n_links; k++)
        if (m->links[k].pending != 0)
            at[n++] = m->links[k].pending_at;
    for (size_t k = 0; k < n; k++) {
        if (due(now, at[k]))
            return 0;
        uint32_t d = at[k] - now;
        if (d < best)
            best = d;
    }
    return best;
}

const char *ota_mdns_name(const ota_mdns_t *m)
{
    return m->name;
}

ota_mdns_state_t ota_mdns_state(const ota_mdns_t *m)
{
    return m->state;
}

void ota_mdns_free(ota_mdns_t *m, uint32_t now)
{
    if (m->state == OTA_MDNS_ANNOUNCING || m->state == OTA_MDNS_RUNNING) {
        announce_all(m, M_GOODBYE, now);
        mlog(m, OTA_LOG_INFO, "goodbye sent for ", m->name, ".local", NULL);
    }
    m->state = OTA_MDNS_OFF;
}

#else  /* OTA_CFG_ENABLE_MDNS */
typedef int ota_mdns_compiled_out_t; /* ISO C wants something in a translation unit */
#endif /* OTA_CFG_ENABLE_MDNS */
