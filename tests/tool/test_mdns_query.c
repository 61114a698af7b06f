/*
 * test_mdns_query.c - unit tests of the ota tool's mDNS browse table
 * (src/tools/ota/mdns_query.c) without sockets: responses built with the core's
 * DNS writer (ota_dns_w_*) are fed to ota_mdns_table_feed(), and the merged nodes,
 * the follow-up queries and the handling of malformed packets are checked.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <arpa/inet.h>
#include <cmocka.h>

#include "mdns_query.h"
#include "ota/dns.h"
#include "ota/errors.h"

#define IFINDEX 7u /* the interface the test's packets "arrive" on */

/* ------------------------------------------------------------ building packets */

typedef struct pkt {
    uint8_t buf[1500];
    ota_dns_writer_t w;
} pkt_t;

static void flat(uint8_t *out, const char *dotted)
{
    out[0] = 0;
    assert_true(ota_dns_name_append_dotted(out, dotted) > 0);
}

/* A response (QR, AA) as an mDNS responder sends it; id 0. */
static void begin(pkt_t *p)
{
    ota_dns_w_init(&p->w, p->buf, sizeof p->buf, 0, OTA_DNS_FLAG_QR | OTA_DNS_FLAG_AA);
}

static size_t end(pkt_t *p)
{
    size_t n = ota_dns_w_finish(&p->w);
    assert_true(n > 0);
    return n;
}

static void ptr(pkt_t *p, ota_dns_section_t sec, const char *type, const char *instance,
                uint32_t ttl)
{
    uint8_t t[OTA_DNS_NAME_MAX], i[OTA_DNS_NAME_MAX];
    flat(t, type);
    flat(i, instance);
    ota_dns_w_record_begin(&p->w, sec, t, OTA_DNS_TYPE_PTR, OTA_DNS_CLASS_IN, ttl);
    ota_dns_w_name(&p->w, i); /* compressed against the names before, as responders do */
    ota_dns_w_record_end(&p->w);
}

static void srv(pkt_t *p, ota_dns_section_t sec, const char *instance, uint16_t port,
                const char *target)
{
    uint8_t i[OTA_DNS_NAME_MAX], t[OTA_DNS_NAME_MAX];
    flat(i, instance);
    flat(t, target);
    ota_dns_w_record_begin(&p->w, sec, i, OTA_DNS_TYPE_SRV,
                           OTA_DNS_CLASS_IN | OTA_DNS_CLASS_TOP, 120);
    ota_dns_w_u16(&p->w, 0);
    ota_dns_w_u16(&p->w, 0);
    ota_dns_w_u16(&p->w, port);
    ota_dns_w_name(&p->w, t);
    ota_dns_w_record_end(&p->w);
}

/* TXT from NULL-terminated "key=value" strings */
static void txt(pkt_t *p, ota_dns_section_t sec, const char *instance, const char *const *kv)
{
    uint8_t i[OTA_DNS_NAME_MAX];
    flat(i, instance);
    ota_dns_w_record_begin(&p->w, sec, i, OTA_DNS_TYPE_TXT,
                           OTA_DNS_CLASS_IN | OTA_DNS_CLASS_TOP, 4500);
    for (; *kv != NULL; kv++) {
        ota_dns_w_u8(&p->w, (uint8_t)strlen(*kv));
        ota_dns_w_bytes(&p->w, *kv, strlen(*kv));
    }
    ota_dns_w_record_end(&p->w);
}

static void addr(pkt_t *p, ota_dns_section_t sec, const char *host, const char *ip)
{
    uint8_t h[OTA_DNS_NAME_MAX], b[16];
    flat(h, host);
    bool v6 = strchr(ip, ':') != NULL;
    assert_int_equal(inet_pton(v6 ? AF_INET6 : AF_INET, ip, b), 1);
    ota_dns_w_record_begin(&p->w, sec, h, v6 ? OTA_DNS_TYPE_AAAA : OTA_DNS_TYPE_A,
                           OTA_DNS_CLASS_IN | OTA_DNS_CLASS_TOP, 120);
    ota_dns_w_bytes(&p->w, b, v6 ? 16 : 4);
    ota_dns_w_record_end(&p->w);
}

static const char *const livingroom_ota_txt[] = {
    "txtvers=1", "name=livingroom", "version=2024.6.1", "platform=esp32", "protocol=2",
    "auth=salted,sha256", NULL};
static const char *const livingroom_arduino_txt[] = {
    "board=esp32dev", "tcp_check=no", "ssh_upload=no", "auth_upload=yes", NULL};

/* What a node with both services answers to the browse: PTRs in the answer
 * section, everything else in the additional section. */
static size_t livingroom_response(pkt_t *p)
{
    begin(p);
    ptr(p, OTA_DNS_SEC_ANSWER, "_ota._tcp.local", "livingroom._ota._tcp.local", 4500);
    ptr(p, OTA_DNS_SEC_ANSWER, "_arduino._tcp.local", "livingroom._arduino._tcp.local", 4500);
    srv(p, OTA_DNS_SEC_ADDITIONAL, "livingroom._ota._tcp.local", 3232, "livingroom.local");
    txt(p, OTA_DNS_SEC_ADDITIONAL, "livingroom._ota._tcp.local", livingroom_ota_txt);
    srv(p, OTA_DNS_SEC_ADDITIONAL, "livingroom._arduino._tcp.local", 8266, "livingroom.local");
    txt(p, OTA_DNS_SEC_ADDITIONAL, "livingroom._arduino._tcp.local", livingroom_arduino_txt);
    addr(p, OTA_DNS_SEC_ADDITIONAL, "livingroom.local", "fe80::1:2");
    addr(p, OTA_DNS_SEC_ADDITIONAL, "livingroom.local", "10.77.0.2");
    return end(p);
}

static ota_mdns_table_t *new_table(void)
{
    ota_mdns_table_t *t = malloc(sizeof *t);
    assert_non_null(t);
    ota_mdns_table_init(t);
    return t;
}

static char *addr_text(const ota_mdns_addr_t *a)
{
    static char text[OTA_MDNSQ_ADDR_TEXT_MAX];
    ota_mdns_addr_text(a, text, sizeof text);
    return text;
}

/* ------------------------------------------------------------ tests */

static void test_one_node_both_services(void **state)
{
    (void)state;
    ota_mdns_table_t *t = new_table();
    pkt_t p;
    size_t n = livingroom_response(&p);
    assert_int_equal(ota_mdns_table_feed(t, p.buf, n, IFINDEX), 1);
    /* the same answer twice (a resend) changes nothing */
    assert_int_equal(ota_mdns_table_feed(t, p.buf, n, IFINDEX), 1);
    ota_mdns_node_t nodes[4];
    assert_int_equal(ota_mdns_table_nodes(t, nodes, 4), 1);
    ota_mdns_node_t *nd = &nodes[0];
    assert_string_equal(nd->name, "livingroom");
    assert_string_equal(nd->host, "livingroom.local");
    assert_int_equal(nd->port, 3232);
    assert_int_equal(nd->arduino_port, 8266);
    assert_true(nd->services[OTA_MDNSQ_SVC_OTA]);
    assert_true(nd->services[OTA_MDNSQ_SVC_ARDUINO]);
    assert_string_equal(nd->version, "2024.6.1");
    assert_string_equal(nd->platform, "esp32");
    assert_true(nd->has_auth);
    assert_string_equal(nd->auth, "salted,sha256");
    assert_int_equal(nd->password, OTA_MDNSQ_PW_YES);
    /* IPv4 first although the AAAA came first; the link-local one keeps its scope */
    assert_int_equal(nd->n_addrs, 2);
    assert_string_equal(addr_text(&nd->addrs[0]), "10.77.0.2");
    assert_int_equal(nd->addrs[1].family, 6);
    assert_int_equal(nd->addrs[1].scope, IFINDEX);
    /* nothing is missing: no follow-up */
    uint8_t q[512];
    assert_int_equal(ota_mdns_table_followup(t, q, sizeof q, 1, 3), 0);
    assert_int_equal(t->packets, 2);
    assert_int_equal(t->malformed, 0);
    free(t);
}

static void test_merge_sort_and_password_sources(void **state)
{
    (void)state;
    ota_mdns_table_t *t = new_table();
    pkt_t p;
    /* kitchen: ArduinoOTA only, auth_upload=no; its host name in another case in
     * the SRV than in the A record (names compare case-insensitively) */
    static const char *const kitchen_txt[] = {"board=d1_mini", "auth_upload=no", NULL};
    begin(&p);
    ptr(&p, OTA_DNS_SEC_ANSWER, "_arduino._tcp.local", "kitchen._arduino._tcp.local", 4500);
    srv(&p, OTA_DNS_SEC_ADDITIONAL, "kitchen._arduino._tcp.local", 8266, "Kitchen.local");
    txt(&p, OTA_DNS_SEC_ADDITIONAL, "kitchen._arduino._tcp.local", kitchen_txt);
    addr(&p, OTA_DNS_SEC_ADDITIONAL, "kitchen.LOCAL", "10.77.0.9");
    assert_int_equal(ota_mdns_table_feed(t, p.buf, end(&p), IFINDEX), 1);
    /* attic: native only, auth=none, an IPv6 global address (no scope) */
    static const char *const attic_txt[] = {"version=1.0", "platform=host", "auth=none", NULL};
    begin(&p);
    ptr(&p, OTA_DNS_SEC_ANSWER, "_ota._tcp.local", "attic._ota._tcp.local", 4500);
    srv(&p, OTA_DNS_SEC_ADDITIONAL, "attic._ota._tcp.local", 3232, "attic.local");
    txt(&p, OTA_DNS_SEC_ADDITIONAL, "attic._ota._tcp.local", attic_txt);
    addr(&p, OTA_DNS_SEC_ADDITIONAL, "attic.local", "fd00::5");
    assert_int_equal(ota_mdns_table_feed(t, p.buf, end(&p), IFINDEX), 1);
    /* livingroom, and a service we did not ask for (ignored) */
    size_t n = livingroom_response(&p);
    assert_int_equal(ota_mdns_table_feed(t, p.buf, n, IFINDEX), 1);
    begin(&p);
    ptr(&p, OTA_DNS_SEC_ANSWER, "_http._tcp.local", "web._http._tcp.local", 4500);
    srv(&p, OTA_DNS_SEC_ADDITIONAL, "web._http._tcp.local", 80, "web.local");
    assert_int_equal(ota_mdns_table_feed(t, p.buf, end(&p), IFINDEX), 1);

    ota_mdns_node_t nodes[8];
    assert_int_equal(ota_mdns_table_nodes(t, nodes, 8), 3);
    assert_string_equal(nodes[0].name, "attic");
    assert_string_equal(nodes[1].name, "Kitchen");
    assert_string_equal(nodes[2].name, "livingroom");
    /* attic */
    assert_int_equal(nodes[0].port, 3232);
    assert_int_equal(nodes[0].arduino_port, 0);
    assert_false(nodes[0].services[OTA_MDNSQ_SVC_ARDUINO]);
    assert_int_equal(nodes[0].password, OTA_MDNSQ_PW_NO);
    assert_string_equal(addr_text(&nodes[0].addrs[0]), "fd00::5");
    assert_int_equal(nodes[0].addrs[0].scope, 0);
    /* kitchen: the Arduino port is its port; the password from auth_upload */
    assert_int_equal(nodes[1].port, 8266);
    assert_int_equal(nodes[1].arduino_port, 8266);
    assert_false(nodes[1].services[OTA_MDNSQ_SVC_OTA]);
    assert_false(nodes[1].has_auth);
    assert_string_equal(nodes[1].version, "");
    assert_int_equal(nodes[1].password, OTA_MDNSQ_PW_NO);
    assert_int_equal(nodes[1].n_addrs, 1);
    assert_string_equal(addr_text(&nodes[1].addrs[0]), "10.77.0.9");
    /* fewer slots than nodes: the first ones by name, still sorted */
    assert_int_equal(ota_mdns_table_nodes(t, nodes, 2), 2);
    free(t);
}

static void test_unknown_password_and_no_address(void **state)
{
    (void)state;
    ota_mdns_table_t *t = new_table();
    pkt_t p;
    static const char *const no_auth[] = {"version=3", "flag", "=novalue", NULL};
    begin(&p);
    ptr(&p, OTA_DNS_SEC_ANSWER, "_ota._tcp.local", "n1._ota._tcp.local", 4500);
    srv(&p, OTA_DNS_SEC_ADDITIONAL, "n1._ota._tcp.local", 3232, "n1.local");
    txt(&p, OTA_DNS_SEC_ADDITIONAL, "n1._ota._tcp.local", no_auth);
    assert_int_equal(ota_mdns_table_feed(t, p.buf, end(&p), IFINDEX), 1);
    ota_mdns_node_t nodes[2];
    assert_int_equal(ota_mdns_table_nodes(t, nodes, 2), 1);
    assert_int_equal(nodes[0].password, OTA_MDNSQ_PW_UNKNOWN);
    assert_false(nodes[0].has_auth);
    assert_string_equal(nodes[0].version, "3");
    assert_string_equal(nodes[0].platform, "");
    assert_int_equal(nodes[0].n_addrs, 0);
    free(t);
}

/* Parse a follow-up query: its questions as "name/type" lines. */
static void questions(const uint8_t *msg, size_t len, char *out, size_t cap)
{
    ota_dns_reader_t r;
    ota_dns_question_t q;
    assert_int_equal(ota_dns_reader_init(&r, msg, len), 0);
    assert_int_equal(r.hdr.flags & OTA_DNS_FLAG_QR, 0);
    out[0] = '\0';
    int rc;
    while ((rc = ota_dns_next_question(&r, &q)) == 1) {
        char name[300];
        assert_int_equal(ota_dns_name_to_text(q.name, name, sizeof name), 0);
        assert_int_equal(q.qclass, OTA_DNS_CLASS_IN);
        size_t l = strlen(out);
        snprintf(out + l, cap - l, "%s/%u ", name, (unsigned)q.type);
    }
    assert_int_equal(rc, 0);
}

static void test_followups(void **state)
{
    (void)state;
    ota_mdns_table_t *t = new_table();
    pkt_t p;
    uint8_t q[512];
    char text[1024];
    /* a PTR alone: ask its SRV and TXT */
    begin(&p);
    ptr(&p, OTA_DNS_SEC_ANSWER, "_ota._tcp.local", "bare._ota._tcp.local", 4500);
    assert_int_equal(ota_mdns_table_feed(t, p.buf, end(&p), IFINDEX), 1);
    size_t n = ota_mdns_table_followup(t, q, sizeof q, 0x1234, 2);
    assert_true(n > OTA_DNS_HEADER_LEN);
    assert_int_equal(q[0], 0x12);
    assert_int_equal(q[1], 0x34);
    questions(q, n, text, sizeof text);
    assert_string_equal(text, "bare._ota._tcp.local/33 bare._ota._tcp.local/16 ");
    /* asked twice at most */
    assert_true(ota_mdns_table_followup(t, q, sizeof q, 1, 2) > 0);
    assert_int_equal(ota_mdns_table_followup(t, q, sizeof q, 1, 2), 0);
    /* the SRV comes (no TXT yet, no address): ask the TXT... and A/AAAA of the target */
    ota_mdns_table_init(t);
    begin(&p);
    ptr(&p, OTA_DNS_SEC_ANSWER, "_ota._tcp.local", "bare._ota._tcp.local", 4500);
    srv(&p, OTA_DNS_SEC_ADDITIONAL, "bare._ota._tcp.local", 3232, "bare.local");
    assert_int_equal(ota_mdns_table_feed(t, p.buf, end(&p), IFINDEX), 1);
    /* two services on one host: its address is asked once per round */
    begin(&p);
    srv(&p, OTA_DNS_SEC_ANSWER, "bare._arduino._tcp.local", 8266, "bare.local");
    txt(&p, OTA_DNS_SEC_ANSWER, "bare._arduino._tcp.local", livingroom_arduino_txt);
    assert_int_equal(ota_mdns_table_feed(t, p.buf, end(&p), IFINDEX), 1);
    n = ota_mdns_table_followup(t, q, sizeof q, 1, 3);
    questions(q, n, text, sizeof text);
    assert_string_equal(text, "bare._ota._tcp.local/16 bare.local/1 bare.local/28 ");
    /* the address comes: only the TXT is left */
    begin(&p);
    addr(&p, OTA_DNS_SEC_ANSWER, "bare.local", "10.0.0.3");
    assert_int_equal(ota_mdns_table_feed(t, p.buf, end(&p), IFINDEX), 1);
    n = ota_mdns_table_followup(t, q, sizeof q, 1, 3);
    questions(q, n, text, sizeof text);
    assert_string_equal(text, "bare._ota._tcp.local/16 ");
    /* a buffer too small for any question: nothing, and nothing is counted as asked */
    assert_int_equal(ota_mdns_table_followup(t, q, OTA_DNS_HEADER_LEN + 4, 1, 3), 0);
    assert_int_equal(t->instances[0].asked, 2);
    free(t);
}

static void test_goodbye_and_root_target(void **state)
{
    (void)state;
    ota_mdns_table_t *t = new_table();
    pkt_t p;
    size_t n = livingroom_response(&p);
    assert_int_equal(ota_mdns_table_feed(t, p.buf, n, IFINDEX), 1);
    /* the node leaves its native service: a PTR with TTL 0 */
    begin(&p);
    ptr(&p, OTA_DNS_SEC_ANSWER, "_ota._tcp.local", "livingroom._ota._tcp.local", 0);
    assert_int_equal(ota_mdns_table_feed(t, p.buf, end(&p), IFINDEX), 1);
    ota_mdns_node_t nodes[2];
    assert_int_equal(ota_mdns_table_nodes(t, nodes, 2), 1);
    assert_false(nodes[0].services[OTA_MDNSQ_SVC_OTA]);
    assert_int_equal(nodes[0].port, 8266); /* only ArduinoOTA is left */
    assert_int_equal(nodes[0].password, OTA_MDNSQ_PW_YES); /* from auth_upload=yes */
    /* a service with the target "." is not offered (RFC 2782) */
    ota_mdns_table_init(t);
    begin(&p);
    ptr(&p, OTA_DNS_SEC_ANSWER, "_ota._tcp.local", "off._ota._tcp.local", 4500);
    uint8_t i[OTA_DNS_NAME_MAX], root[1] = {0};
    flat(i, "off._ota._tcp.local");
    ota_dns_w_record_begin(&p.w, OTA_DNS_SEC_ADDITIONAL, i, OTA_DNS_TYPE_SRV, OTA_DNS_CLASS_IN,
                           120);
    ota_dns_w_u16(&p.w, 0);
    ota_dns_w_u16(&p.w, 0);
    ota_dns_w_u16(&p.w, 3232);
    ota_dns_w_name(&p.w, root);
    ota_dns_w_record_end(&p.w);
    assert_int_equal(ota_mdns_table_feed(t, p.buf, end(&p), IFINDEX), 1);
    assert_int_equal(ota_mdns_table_nodes(t, nodes, 2), 0);
    uint8_t q[512];
    assert_int_equal(ota_mdns_table_followup(t, q, sizeof q, 1, 3), 0);
    free(t);
}

static bool table_empty(const ota_mdns_table_t *t)
{
    return t->n_instances == 0 && t->n_hosts == 0 && t->packets == 0;
}

static void test_malformed_changes_nothing(void **state)
{
    (void)state;
    ota_mdns_table_t *t = new_table();
    pkt_t p;
    size_t n = livingroom_response(&p);
    /* cut anywhere: the counts promise more than there is */
    for (size_t cut = 0; cut < n; cut++) {
        ota_mdns_table_init(t);
        assert_int_equal(ota_mdns_table_feed(t, p.buf, cut, IFINDEX), OTA_ERR_MALFORMED);
        assert_true(table_empty(t));
        assert_int_equal(t->malformed, 1);
    }
    /* a record in the middle with bad data: the valid records before it are not used
     * either (an A record of 5 bytes after good PTR/SRV/TXT) */
    ota_mdns_table_init(t);
    begin(&p);
    ptr(&p, OTA_DNS_SEC_ANSWER, "_ota._tcp.local", "x._ota._tcp.local", 4500);
    srv(&p, OTA_DNS_SEC_ADDITIONAL, "x._ota._tcp.local", 3232, "x.local");
    uint8_t h[OTA_DNS_NAME_MAX];
    flat(h, "x.local");
    ota_dns_w_record_begin(&p.w, OTA_DNS_SEC_ADDITIONAL, h, OTA_DNS_TYPE_A, OTA_DNS_CLASS_IN, 120);
    ota_dns_w_bytes(&p.w, "\x0a\x00\x00\x01\x02", 5);
    ota_dns_w_record_end(&p.w);
    assert_int_equal(ota_mdns_table_feed(t, p.buf, end(&p), IFINDEX), OTA_ERR_MALFORMED);
    assert_true(table_empty(t));
    /* a TXT string running past its record */
    begin(&p);
    flat(h, "x._ota._tcp.local");
    ota_dns_w_record_begin(&p.w, OTA_DNS_SEC_ANSWER, h, OTA_DNS_TYPE_TXT, OTA_DNS_CLASS_IN, 120);
    ota_dns_w_bytes(&p.w, "\x0aversion=1", 10); /* 10 promised, 9 there */
    ota_dns_w_record_end(&p.w);
    assert_int_equal(ota_mdns_table_feed(t, p.buf, end(&p), IFINDEX), OTA_ERR_MALFORMED);
    /* a PTR whose name runs past its rdata, an SRV too short for its target */
    begin(&p);
    flat(h, "_ota._tcp.local");
    ota_dns_w_record_begin(&p.w, OTA_DNS_SEC_ANSWER, h, OTA_DNS_TYPE_PTR, OTA_DNS_CLASS_IN, 120);
    ota_dns_w_bytes(&p.w, "\x01x", 2);
    ota_dns_w_record_end(&p.w);
    ota_dns_w_u8(&p.w, 0); /* the name's end, outside the record */
    assert_int_equal(ota_mdns_table_feed(t, p.buf, end(&p), IFINDEX), OTA_ERR_MALFORMED);
    begin(&p);
    flat(h, "x._ota._tcp.local");
    ota_dns_w_record_begin(&p.w, OTA_DNS_SEC_ANSWER, h, OTA_DNS_TYPE_SRV, OTA_DNS_CLASS_IN, 120);
    ota_dns_w_bytes(&p.w, "\0\0\0\0\x0c\xa0", 6);
    ota_dns_w_record_end(&p.w);
    assert_int_equal(ota_mdns_table_feed(t, p.buf, end(&p), IFINDEX), OTA_ERR_MALFORMED);
    /* a compression loop in the PTR data: the pointer points at itself */
    begin(&p);
    flat(h, "_ota._tcp.local");
    ota_dns_w_record_begin(&p.w, OTA_DNS_SEC_ANSWER, h, OTA_DNS_TYPE_PTR, OTA_DNS_CLASS_IN, 120);
    uint16_t self = (uint16_t)(0xC000u | p.w.len);
    ota_dns_w_u16(&p.w, self);
    ota_dns_w_record_end(&p.w);
    assert_int_equal(ota_mdns_table_feed(t, p.buf, end(&p), IFINDEX), OTA_ERR_MALFORMED);
    assert_true(table_empty(t));
    assert_int_equal(t->malformed, 5);
    /* garbage of every length */
    uint8_t junk[600];
    srand(1);
    for (size_t len = 0; len < sizeof junk; len++) {
        for (size_t k = 0; k < len; k++)
            junk[k] = (uint8_t)rand();
        if (len >= 3)
            junk[2] |= 0x80; /* QR: a response, so that it is read */
        (void)ota_mdns_table_feed(t, junk, len, IFINDEX); /* only: no crash (ASan) */
    }
    free(t);
}

static void test_not_a_response(void **state)
{
    (void)state;
    ota_mdns_table_t *t = new_table();
    pkt_t p;
    size_t n = livingroom_response(&p);
    p.buf[2] &= 0x7F; /* QR off: a query with known answers */
    assert_int_equal(ota_mdns_table_feed(t, p.buf, n, IFINDEX), 0);
    p.buf[2] |= 0x80;
    p.buf[3] |= 0x03; /* an error code */
    assert_int_equal(ota_mdns_table_feed(t, p.buf, n, IFINDEX), 0);
    assert_true(table_empty(t));
    assert_int_equal(t->malformed, 0);
    free(t);
}

static void test_txt_text_is_sanitised(void **state)
{
    (void)state;
    ota_mdns_table_t *t = new_table();
    pkt_t p;
    char longv[200] = "version=";
    memset(longv + 8, 'v', 150);
    /* "Ver\xc3\xa9" is UTF-8 (kept), \x01 a control byte, \xff invalid UTF-8 */
    static const char plat[] = "PLATFORM=ho\x01st\xff\xc3\xa9";
    const char *kv[] = {longv, plat, "Auth=None", NULL};
    begin(&p);
    ptr(&p, OTA_DNS_SEC_ANSWER, "_ota._tcp.local", "t._ota._tcp.local", 4500);
    srv(&p, OTA_DNS_SEC_ADDITIONAL, "t._ota._tcp.local", 3232, "t.local");
    txt(&p, OTA_DNS_SEC_ADDITIONAL, "t._ota._tcp.local", kv);
    assert_int_equal(ota_mdns_table_feed(t, p.buf, end(&p), IFINDEX), 1);
    ota_mdns_node_t nodes[1];
    assert_int_equal(ota_mdns_table_nodes(t, nodes, 1), 1);
    assert_int_equal(strlen(nodes[0].version), OTA_MDNSQ_TXT_MAX - 1);
    assert_string_equal(nodes[0].platform, "ho?st?\xc3\xa9");
    assert_string_equal(nodes[0].auth, "None");
    assert_int_equal(nodes[0].password, OTA_MDNSQ_PW_NO); /* "none" in any case */
    /* a newer TXT record replaces the old one as a whole */
    static const char *const newer[] = {"version=2", NULL};
    begin(&p);
    txt(&p, OTA_DNS_SEC_ANSWER, "t._ota._tcp.local", newer);
    assert_int_equal(ota_mdns_table_feed(t, p.buf, end(&p), IFINDEX), 1);
    assert_int_equal(ota_mdns_table_nodes(t, nodes, 1), 1);
    assert_string_equal(nodes[0].version, "2");
    assert_string_equal(nodes[0].platform, "");
    assert_int_equal(nodes[0].password, OTA_MDNSQ_PW_UNKNOWN);
    free(t);
}

static void test_tables_are_bounded(void **state)
{
    (void)state;
    ota_mdns_table_t *t = new_table();
    pkt_t p;
    /* 100 nodes in 100 packets, each with 10 addresses */
    for (int k = 0; k < 100; k++) {
        char inst[64], host[64], ip[32];
        snprintf(inst, sizeof inst, "node%03d._ota._tcp.local", k);
        snprintf(host, sizeof host, "node%03d.local", k);
        begin(&p);
        ptr(&p, OTA_DNS_SEC_ANSWER, "_ota._tcp.local", inst, 4500);
        srv(&p, OTA_DNS_SEC_ADDITIONAL, inst, 3232, host);
        for (int a = 0; a < 10; a++) {
            snprintf(ip, sizeof ip, "10.%d.0.%d", k, a + 1);
            addr(&p, OTA_DNS_SEC_ADDITIONAL, host, ip);
        }
        assert_int_equal(ota_mdns_table_feed(t, p.buf, end(&p), IFINDEX), 1);
    }
    assert_int_equal(t->n_instances, 100);
    assert_int_equal(t->n_hosts, 96);
    assert_int_equal(t->hosts[0].n_addrs, OTA_MDNSQ_MAX_ADDRS);
    static ota_mdns_node_t nodes[OTA_MDNSQ_MAX_NODES + 10];
    assert_int_equal(ota_mdns_table_nodes(t, nodes, OTA_MDNSQ_MAX_NODES + 10),
                     OTA_MDNSQ_MAX_NODES);
    /* more instances than the table holds are dropped */
    for (int k = 100; k < 200; k++) {
        char inst[64];
        snprintf(inst, sizeof inst, "node%03d._ota._tcp.local", k);
        begin(&p);
        ptr(&p, OTA_DNS_SEC_ANSWER, "_ota._tcp.local", inst, 4500);
        assert_int_equal(ota_mdns_table_feed(t, p.buf, end(&p), IFINDEX), 1);
    }
    assert_int_equal(t->n_instances, OTA_MDNSQ_MAX_INSTANCES);
    /* the follow-up for the instances without SRV fits in its buffer */
    uint8_t q[600];
    size_t n = ota_mdns_table_followup(t, q, sizeof q, 1, 3);
    assert_true(n > 0 && n <= sizeof q);
    free(t);
}

static void test_local_names_and_address_text(void **state)
{
    (void)state;
    assert_true(ota_mdns_is_local_name("livingroom.local"));
    assert_true(ota_mdns_is_local_name("LivingRoom.LOCAL."));
    assert_true(ota_mdns_is_local_name("a.b.local"));
    assert_false(ota_mdns_is_local_name("local"));
    assert_false(ota_mdns_is_local_name(".local"));
    assert_false(ota_mdns_is_local_name("x..local"));
    assert_false(ota_mdns_is_local_name("livingroom.localdomain"));
    assert_false(ota_mdns_is_local_name("10.0.0.1"));
    assert_false(ota_mdns_is_local_name("example.com"));
    assert_false(ota_mdns_is_local_name(""));
    ota_mdns_addr_t a;
    memset(&a, 0, sizeof a);
    a.family = 4;
    memcpy(a.bytes, "\x0a\x4d\x00\x02", 4);
    assert_string_equal(addr_text(&a), "10.77.0.2");
    a.family = 6;
    memset(a.bytes, 0, 16);
    a.bytes[0] = 0xfe;
    a.bytes[1] = 0x80;
    a.bytes[15] = 2;
    a.scope = 0x7ffffff0u; /* no such interface: its number */
    assert_string_equal(addr_text(&a), "fe80::2%2147483632");
    assert_string_equal(ota_mdns_service_name(OTA_MDNSQ_SVC_ARDUINO), "_arduino._tcp");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_one_node_both_services),
        cmocka_unit_test(test_merge_sort_and_password_sources),
        cmocka_unit_test(test_unknown_password_and_no_address),
        cmocka_unit_test(test_followups),
        cmocka_unit_test(test_goodbye_and_root_target),
        cmocka_unit_test(test_malformed_changes_nothing),
        cmocka_unit_test(test_not_a_response),
        cmocka_unit_test(test_txt_text_is_sanitised),
        cmocka_unit_test(test_tables_are_bounded),
        cmocka_unit_test(test_local_names_and_address_text),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
