/*
 * fuzz_mdns.c - libFuzzer target for the DNS codec (src/core/dns.c) and the mDNS
 * responder's input path (src/core/mdns.c).
 *
 * The input is one datagram, as it would arrive on UDP port 5353.
 *  1. It is read as a DNS message: every question and record, the names inside PTR
 *     and SRV data; each name is checked (length, equality with itself, text form,
 *     first label, parents) and, when its text has no escapes, rebuilt from it.
 *  2. What was read is written back with the writer, each item under a mark and
 *     rewound when it does not fit (into a roomy buffer, then into one of a size
 *     taken from the input), and read again: the same questions and records, in
 *     order, must come back, nothing may be written past the buffer, and the
 *     writer may only fail when not even a header fits.
 *  3. The bytes go to ota_mdns_input() of a responder "x" with _ota._tcp and
 *     _arduino._tcp: while it probes and while it runs, from port 5353 and from a
 *     legacy port, over IPv4 and IPv6, and once through ota_mdns_poll()'s receive
 *     path; then time passes so delayed answers go out. Every datagram it sends
 *     must read back as a whole, well-formed message.
 * Any violation aborts.
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "ota/dns.h"
#include "ota/errors.h"
#include "ota/mdns.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CANARY 0xA5
#define CANARY_LEN 64

/* ------------------------------------------------------------ 1. reading */

static void check_name(const uint8_t *name, int n)
{
    if (n < 1 || n > (int)OTA_DNS_NAME_MAX || ota_dns_name_len(name) != (size_t)n)
        abort();
    if (!ota_dns_name_eq(name, name))
        abort();
    /* the longest text is 250 bytes as \DDD plus 3 dots */
    char text[1100];
    if (ota_dns_name_to_text(name, text, sizeof text) != 0 || strlen(text) > 1003)
        abort();
    /* a small buffer: fails or gives the same text, never writes past cap */
    char small[16 + CANARY_LEN];
    memset(small, CANARY, sizeof small);
    int rc = ota_dns_name_to_text(name, small, 16);
    for (size_t i = 16; i < sizeof small; i++)
        if ((uint8_t)small[i] != CANARY)
            abort();
    if (rc == 0 ? strcmp(small, text) != 0 : (rc != OTA_ERR_TOO_LONG || strlen(text) < 16))
        abort();
    char label[OTA_DNS_LABEL_MAX + 1];
    ota_dns_first_label(name, label, sizeof label);
    if (strlen(label) > name[0])
        abort();
    const uint8_t *p = name;
    int labels = 0;
    while (*p != 0) {
        p = ota_dns_name_parent(p);
        if (++labels > 127 || p >= name + n)
            abort();
    }
    if (p != name + n - 1)
        abort();
    /* text without escapes is the name again, byte for byte */
    if (strchr(text, '\\') == NULL && !(text[0] == '.' && text[1] == '\0')) {
        uint8_t again[OTA_DNS_NAME_MAX];
        again[0] = 0;
        if (ota_dns_name_append_dotted(again, text) != (size_t)n || memcmp(again, name, n) != 0)
            abort();
    }
}

/* Names inside PTR and SRV data, as a browser reads them. \return the name's
 * length, or 0 when the data holds none (then it is copied as bytes). */
static int rdata_name(const uint8_t *msg, size_t len, const ota_dns_record_t *rec, uint8_t *name)
{
    int n;
    if (rec->type == OTA_DNS_TYPE_PTR)
        n = ota_dns_read_name(msg, len, rec->rdata, name, NULL);
    else if (rec->type == OTA_DNS_TYPE_SRV && rec->rdlength >= 7)
        n = ota_dns_read_name(msg, len, rec->rdata + 6, name, NULL);
    else
        return 0;
    if (n < 0)
        return 0;
    check_name(name, n);
    return n;
}

static void read_all(const uint8_t *msg, size_t len)
{
    ota_dns_reader_t r;
    if (ota_dns_reader_init(&r, msg, len) != 0) {
        if (len >= OTA_DNS_HEADER_LEN)
            abort();
        return;
    }
    ota_dns_question_t q;
    ota_dns_record_t rec;
    uint8_t name[OTA_DNS_NAME_MAX];
    size_t items = 0;
    int rc;
    while ((rc = ota_dns_next_question(&r, &q)) == 1) {
        check_name(q.name, (int)ota_dns_name_len(q.name));
        if (r.pos > len || ++items > len / 5)
            abort(); /* a question takes at least 5 bytes */
    }
    while ((rc = ota_dns_next_record(&r, &rec)) == 1) {
        check_name(rec.name, (int)ota_dns_name_len(rec.name));
        if (rec.rdata + rec.rdlength > len || r.pos != rec.rdata + rec.rdlength ||
            rec.section > OTA_DNS_SEC_ADDITIONAL || ++items > len / 5)
            abort();
        (void)rdata_name(msg, len, &rec, name);
    }
    /* the end, or an error, stays the end */
    if (ota_dns_next_record(&r, &rec) != 0 || ota_dns_next_question(&r, &q) != 0)
        abort();
}

/* ------------------------------------------------------------ 2. writing back */

static uint8_t big_buf[65536 + CANARY_LEN];
static uint8_t small_buf[1024 + CANARY_LEN];

/* Writes one record read from msg: PTR and SRV names through the writer (PTR
 * compressed, SRV flat, as the responder does), other data as bytes. */
static void write_record(ota_dns_writer_t *w, const uint8_t *msg, size_t len,
                         const ota_dns_record_t *rec)
{
    uint8_t name[OTA_DNS_NAME_MAX];
    ota_dns_w_record_begin(w, rec->section, rec->name, rec->type, rec->rclass, rec->ttl);
    int n = rdata_name(msg, len, rec, name);
    if (n > 0 && rec->type == OTA_DNS_TYPE_PTR) {
        ota_dns_w_name(w, name);
    } else if (n > 0) {
        ota_dns_w_bytes(w, msg + rec->rdata, 6);
        ota_dns_w_name_flat(w, name);
    } else {
        ota_dns_w_bytes(w, msg + rec->rdata, rec->rdlength);
    }
    ota_dns_w_record_end(w);
}

/* \return the message length (0: not even a header fitted); *items: how many
 * questions and records it holds, the first ones of msg. */
static size_t write_back(const uint8_t *msg, size_t len, uint8_t *buf, size_t cap,
                         size_t *items)
{
    ota_dns_reader_t r;
    ota_dns_writer_t w;
    ota_dns_question_t q;
    ota_dns_record_t rec;
    (void)ota_dns_reader_init(&r, msg, len);
    ota_dns_w_init(&w, buf, cap, r.hdr.id, r.hdr.flags);
    *items = 0;
    int rc;
    while ((rc = ota_dns_next_question(&r, &q)) == 1) {
        ota_dns_mark_t mk = ota_dns_w_mark(&w);
        ota_dns_w_question(&w, q.name, q.type, q.qclass);
        if (!ota_dns_w_ok(&w)) {
            ota_dns_w_rewind(&w, &mk);
            return ota_dns_w_finish(&w);
        }
        (*items)++;
    }
    if (rc < 0)
        return ota_dns_w_finish(&w);
    while (ota_dns_next_record(&r, &rec) == 1) {
        ota_dns_mark_t mk = ota_dns_w_mark(&w);
        write_record(&w, msg, len, &rec);
        if (!ota_dns_w_ok(&w)) {
            ota_dns_w_rewind(&w, &mk);
            break;
        }
        (*items)++;
    }
    return ota_dns_w_finish(&w);
}

static void same_record(const uint8_t *msg, size_t len, const ota_dns_record_t *a,
                        const uint8_t *out, size_t out_len, const ota_dns_record_t *b)
{
    if (!ota_dns_name_eq(a->name, b->name) || a->type != b->type || a->rclass != b->rclass ||
        a->ttl != b->ttl || a->section != b->section)
        abort();
    uint8_t na[OTA_DNS_NAME_MAX], nb[OTA_DNS_NAME_MAX];
    int la = rdata_name(msg, len, a, na);
    if (la == 0) {
        if (a->rdlength != b->rdlength || memcmp(msg + a->rdata, out + b->rdata, a->rdlength) != 0)
            abort();
        return;
    }
    size_t end = 0;
    if (a->type == OTA_DNS_TYPE_PTR) {
        int lb = ota_dns_read_name(out, out_len, b->rdata, nb, &end);
        if (lb != la || !ota_dns_name_eq(na, nb) || end != b->rdata + b->rdlength)
            abort();
    } else { /* SRV: the 6 bytes, then the name uncompressed, verbatim */
        if (b->rdlength != 6 + la || memcmp(msg + a->rdata, out + b->rdata, 6) != 0 ||
            memcmp(na, out + b->rdata + 6, (size_t)la) != 0)
            abort();
    }
}

static void round_trip(const uint8_t *msg, size_t len, uint8_t *buf, size_t cap)
{
    memset(buf + cap, CANARY, CANARY_LEN);
    size_t items;
    size_t n = write_back(msg, len, buf, cap, &items);
    for (size_t i = 0; i < CANARY_LEN; i++)
        if (buf[cap + i] != CANARY)
            abort();
    if (n == 0) {
        if (cap >= OTA_DNS_HEADER_LEN)
            abort(); /* every item that did not fit was rewound */
        return;
    }
    if (n > cap || n < OTA_DNS_HEADER_LEN)
        abort();

    ota_dns_reader_t a, b;
    ota_dns_question_t qa, qb;
    ota_dns_record_t ra, rb;
    (void)ota_dns_reader_init(&a, msg, len);
    if (ota_dns_reader_init(&b, buf, n) != 0 || b.hdr.id != a.hdr.id ||
        b.hdr.flags != a.hdr.flags)
        abort();
    size_t k = 0;
    while (k < items && ota_dns_next_question(&a, &qa) == 1) {
        if (ota_dns_next_question(&b, &qb) != 1 || !ota_dns_name_eq(qa.name, qb.name) ||
            qa.type != qb.type || qa.qclass != qb.qclass)
            abort();
        k++;
    }
    if (ota_dns_next_question(&b, &qb) != 0)
        abort();
    while (k < items) {
        if (ota_dns_next_record(&a, &ra) != 1 || ota_dns_next_record(&b, &rb) != 1)
            abort();
        same_record(msg, len, &ra, buf, n, &rb);
        k++;
    }
    if (ota_dns_next_record(&b, &rb) != 0 || b.pos != n)
        abort();
}

/* ------------------------------------------------------------ 3. the responder */

static const uint8_t *rx_data; /* what mdns_recv hands out once */
static size_t rx_len;
static uint16_t query_id;
static unsigned sent;

static int f_recv(void *user, uint8_t *buf, size_t len, ota_ip_t *from, uint16_t *from_port)
{
    (void)user;
    if (rx_data == NULL)
        return OTA_ERR_WOULD_BLOCK;
    size_t n = rx_len < len ? rx_len : len;
    memcpy(buf, rx_data, n);
    rx_data = NULL;
    memset(from, 0, sizeof *from);
    from->family = 4;
    from->addr[0] = 192;
    from->addr[1] = 168;
    from->addr[2] = 1;
    from->addr[3] = 77;
    from->ifindex = 2;
    *from_port = OTA_MDNS_PORT;
    return (int)rx_len; /* longer than len: cut, as the port contract says */
}

/* Whatever the responder sends must be a whole, well-formed message. */
static int f_send(void *user, const uint8_t *buf, size_t len, const ota_ip_t *to,
                  uint16_t to_port)
{
    (void)user;
    if (len < OTA_DNS_HEADER_LEN || len > OTA_CFG_MDNS_TX_SIZE ||
        (to->family != 4 && to->family != 6))
        abort();
    ota_dns_reader_t r;
    ota_dns_question_t q;
    ota_dns_record_t rec;
    if (ota_dns_reader_init(&r, buf, len) != 0)
        abort();
    int rc;
    while ((rc = ota_dns_next_question(&r, &q)) == 1)
        check_name(q.name, (int)ota_dns_name_len(q.name));
    if (rc != 0)
        abort();
    uint8_t name[OTA_DNS_NAME_MAX];
    while ((rc = ota_dns_next_record(&r, &rec)) == 1) {
        check_name(rec.name, (int)ota_dns_name_len(rec.name));
        if ((rec.type == OTA_DNS_TYPE_PTR || rec.type == OTA_DNS_TYPE_SRV) &&
            rdata_name(buf, len, &rec, name) == 0)
            abort();
    }
    if (rc != 0 || r.pos != len)
        abort();
    /* a multicast response has answers, a probe its claims; (a legacy answer may
     * come without: the echoed questions of a long query can fill the datagram) */
    if (to_port == OTA_MDNS_PORT && r.hdr.ancount + r.hdr.nscount == 0)
        abort();
    if (to_port != OTA_MDNS_PORT && (r.hdr.id != query_id || !(r.hdr.flags & OTA_DNS_FLAG_QR)))
        abort(); /* a legacy answer echoes the query's id */
    sent++;
    return 0;
}

static int f_addrs(void *user, ota_ip_t *out, size_t max)
{
    (void)user;
    static const uint8_t v6[16] = {0xfe, 0x80, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1};
    if (max < 2)
        return 0;
    memset(out, 0, 2 * sizeof *out);
    out[0].family = 4;
    out[0].addr[0] = 192;
    out[0].addr[1] = 168;
    out[0].addr[2] = 1;
    out[0].addr[3] = 50;
    out[0].ifindex = 2;
    out[1].family = 6;
    memcpy(out[1].addr, v6, 16);
    out[1].ifindex = 2;
    return 2;
}

static int f_random(void *user, uint8_t *buf, size_t len)
{
    (void)user;
    memset(buf, 0x5c, len);
    return 0;
}

static void f_log(void *user, ota_log_level_t level, const char *line)
{
    (void)user;
    (void)level;
    if (strlen(line) >= OTA_CFG_LOG_LINE_MAX)
        abort();
}

static const ota_mdns_port_t io = {.recv = f_recv, .send = f_send, .addrs = f_addrs};
static const ota_crypto_port_t rng = {.random = f_random};
static const ota_log_port_t log_out = {.line = f_log};

static const char *const txt_ota[] = {"version=2.0", "auth=sha256", "board=esp32dev", NULL};
static ota_mdns_config_t cfg;
static ota_mdns_t probing, running, work;
static uint32_t probing_at, announced_at, running_at;

static void responders_once(void)
{
    static bool ready;
    if (ready)
        return;
    ota_mdns_config_default(&cfg);
    cfg.name = "x";
    cfg.services[0].type = "_ota._tcp";
    cfg.services[0].port = 3232;
    cfg.services[0].txt = txt_ota;
    cfg.services[1].type = "_arduino._tcp";
    cfg.services[1].port = 3232;
    cfg.n_services = 2;
    if (ota_mdns_setup(&work, &io, &rng, &log_out, &cfg, 0) != OTA_OK)
        abort();
    uint32_t now = 0;
    bool have_probing = false;
    while (ota_mdns_state(&work) != OTA_MDNS_RUNNING) {
        ota_mdns_poll(&work, now);
        if (!have_probing && ota_mdns_state(&work) == OTA_MDNS_PROBING && work.step == 1) {
            probing = work;
            probing_at = now;
            have_probing = true;
        }
        now += 50;
        if (now > 10000)
            abort(); /* never got its names */
    }
    if (!have_probing || sent == 0)
        abort();
    running = work;
    announced_at = now - 50 + 100; /* the last announcement went out at now - 50 */
    running_at = now + 2000;        /* past the rate limit of the announcements */
    ready = true;
}

static void responder_input(const uint8_t *msg, size_t len)
{
    /* early: right after the last announcement, so the rate limit holds answers
     * back; twice: the same datagram again 10 ms later */
    static const struct {
        bool running, early, twice;
        uint8_t family;
        uint16_t port;
    } runs[] = {
        {false, false, false, 4, OTA_MDNS_PORT}, {false, false, true, 6, 40001},
        {true, false, true, 4, OTA_MDNS_PORT},   {true, false, false, 6, OTA_MDNS_PORT},
        {true, true, false, 4, OTA_MDNS_PORT},   {true, false, false, 4, 40000},
        {true, false, false, 6, 53},
    };
    query_id = len >= 2 ? (uint16_t)(msg[0] << 8 | msg[1]) : 0;
    for (size_t i = 0; i < sizeof runs / sizeof runs[0]; i++) {
        work = runs[i].running ? running : probing;
        uint32_t now = !runs[i].running ? probing_at : runs[i].early ? announced_at : running_at;
        ota_ip_t from;
        memset(&from, 0, sizeof from);
        from.family = runs[i].family;
        from.ifindex = 2;
        if (from.family == 4) {
            from.addr[0] = 192;
            from.addr[1] = 168;
            from.addr[2] = 1;
            from.addr[3] = 77;
        } else {
            from.addr[0] = 0xfe;
            from.addr[1] = 0x80;
            from.addr[15] = 0x77;
        }
        ota_mdns_input(&work, msg, len, &from, runs[i].port, now);
        if (runs[i].twice)
            ota_mdns_input(&work, msg, len, &from, runs[i].port, now + 10);
        for (uint32_t t = 1; t <= 3; t++) /* delayed answers (20-120 ms), the next steps */
            ota_mdns_poll(&work, now + t * 130);
        ota_mdns_state_t st = ota_mdns_state(&work);
        size_t nl = strlen(ota_mdns_name(&work));
        if (st == OTA_MDNS_OFF || nl < 1 || nl > OTA_MDNS_NAME_LEN ||
            ota_mdns_next_ms(&work, now + 390) > 1000)
            abort();
    }
    /* through the port's receive path (cut to the receive buffer) */
    work = running;
    rx_data = msg;
    rx_len = len;
    ota_mdns_poll(&work, running_at);
    ota_mdns_poll(&work, running_at + 130);
    rx_data = NULL;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    read_all(data, size);
    if (size >= OTA_DNS_HEADER_LEN) {
        round_trip(data, size, big_buf, sizeof big_buf - CANARY_LEN);
        round_trip(data, size, small_buf, (size * 7) % (sizeof small_buf - CANARY_LEN));
    }
    responders_once();
    responder_input(data, size);
    return 0;
}
