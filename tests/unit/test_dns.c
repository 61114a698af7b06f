/*
 * test_dns.c - unit tests of the DNS message codec (src/core/dns.c): reading a
 * real-world mDNS response byte for byte, questions and records of every section,
 * hostile messages (truncation anywhere, compression loops, forward pointers,
 * extended label types, over-long names, huge counts), the flat-name helpers, and
 * the writer (compression, overflow against a canary, mark/rewind, rdlength).
 *
 * Malformed inputs are copied into heap blocks of exactly their length, so an
 * over-read shows under ASan; writer buffers carry canary bytes after their cap.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "ota/dns.h"
#include "ota/errors.h"

/* ------------------------------------------------------------ helpers */

/* A heap copy of exactly n bytes (n may be 0): reading past it is an ASan error. */
static uint8_t *exact(const void *p, size_t n)
{
    uint8_t *b = malloc(n ? n : 1);
    assert_non_null(b);
    if (n)
        memcpy(b, p, n);
    return b;
}

/* A flat name from dotted text ("" = the root). */
static void flat(uint8_t *out, const char *dotted)
{
    out[0] = 0;
    if (dotted[0] != '\0')
        assert_int_not_equal(ota_dns_name_append_dotted(out, dotted), 0);
}

static void assert_name(const uint8_t *got, const char *dotted)
{
    char text[1100];
    uint8_t want[OTA_DNS_NAME_MAX];
    flat(want, dotted);
    assert_int_equal(ota_dns_name_to_text(got, text, sizeof text), 0);
    if (dotted[0] == '\0')
        assert_string_equal(text, ".");
    else
        assert_string_equal(text, dotted);
    assert_true(ota_dns_name_eq(got, want));
    assert_memory_equal(got, want, ota_dns_name_len(want)); /* same bytes, same case */
}

/* Message builder for hand-made inputs. */
typedef struct mb {
    uint8_t b[20000];
    size_t n;
} mb_t;

static void mb_bytes(mb_t *m, const void *p, size_t n)
{
    assert_true(m->n + n <= sizeof m->b);
    memcpy(m->b + m->n, p, n);
    m->n += n;
}

static void mb_u8(mb_t *m, uint8_t v)
{
    mb_bytes(m, &v, 1);
}

static void mb_u16(mb_t *m, uint16_t v)
{
    mb_u8(m, (uint8_t)(v >> 8));
    mb_u8(m, (uint8_t)v);
}

static void mb_header(mb_t *m, uint16_t flags, uint16_t qd, uint16_t an, uint16_t ns, uint16_t ar)
{
    m->n = 0;
    mb_u16(m, 0);
    mb_u16(m, flags);
    mb_u16(m, qd);
    mb_u16(m, an);
    mb_u16(m, ns);
    mb_u16(m, ar);
}

/* A label-form (uncompressed) name from dotted text. */
static void mb_name(mb_t *m, const char *dotted)
{
    uint8_t f[OTA_DNS_NAME_MAX];
    flat(f, dotted);
    mb_bytes(m, f, ota_dns_name_len(f));
}

static void mb_ptr(mb_t *m, size_t target)
{
    mb_u16(m, (uint16_t)(0xC000u | target));
}

static void mb_label(mb_t *m, uint8_t len, char fill)
{
    mb_u8(m, len);
    for (uint8_t i = 0; i < len; i++)
        mb_u8(m, (uint8_t)fill);
}

static void mb_rr_fixed(mb_t *m, uint16_t type, uint16_t rclass, uint32_t ttl, uint16_t rdlength)
{
    mb_u16(m, type);
    mb_u16(m, rclass);
    mb_u16(m, (uint16_t)(ttl >> 16));
    mb_u16(m, (uint16_t)ttl);
    mb_u16(m, rdlength);
}

/* Reads the name at off of the first n bytes of m (copied exactly). */
static int read_exact(const mb_t *m, size_t n, size_t off, uint8_t *out, size_t *end)
{
    uint8_t *b = exact(m->b, n);
    int rc = ota_dns_read_name(b, n, off, out, end);
    free(b);
    return rc;
}

/* ------------------------------------------------------------ a real response */

/*
 * What avahi multicasts for a node "livingroom" answering "PTR _ota._tcp.local":
 * the PTR in the answer section, SRV, TXT, A and AAAA as additional records, every
 * name after the first compressed. Checked independently with python3-zeroconf's
 * DNSIncoming, which reads the same five records from these bytes.
 */
static const uint8_t avahi_response[] = {
    /*   0 header: id 0, QR|AA, qd 0, an 1, ns 0, ar 4 */
    0x00, 0x00, 0x84, 0x00, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x04,
    /*  12 _ota._tcp.local PTR IN ttl 4500 rdlength 13 */
    0x04, '_', 'o', 't', 'a', 0x04, '_', 't', 'c', 'p', 0x05, 'l', 'o', 'c', 'a', 'l', 0x00,
    0x00, 0x0c, 0x00, 0x01, 0x00, 0x00, 0x11, 0x94, 0x00, 0x0d,
    /*  39 rdata: livingroom + pointer to 12 */
    0x0a, 'l', 'i', 'v', 'i', 'n', 'g', 'r', 'o', 'o', 'm', 0xc0, 0x0c,
    /*  52 (ptr 39) SRV IN|flush ttl 120 rdlength 19 */
    0xc0, 0x27, 0x00, 0x21, 0x80, 0x01, 0x00, 0x00, 0x00, 0x78, 0x00, 0x13,
    /*  64 rdata: priority 0 weight 0 port 3232, 70: livingroom + pointer to 22 (local) */
    0x00, 0x00, 0x00, 0x00, 0x0c, 0xa0,
    0x0a, 'l', 'i', 'v', 'i', 'n', 'g', 'r', 'o', 'o', 'm', 0xc0, 0x16,
    /*  83 (ptr 39) TXT IN|flush ttl 4500 rdlength 24 */
    0xc0, 0x27, 0x00, 0x10, 0x80, 0x01, 0x00, 0x00, 0x11, 0x94, 0x00, 0x18,
    /*  95 rdata */
    0x0b, 'v', 'e', 'r', 's', 'i', 'o', 'n', '=', '2', '.', '0',
    0x0b, 'a', 'u', 't', 'h', '=', 's', 'h', 'a', '2', '5', '6',
    /* 119 (ptr 70) A IN|flush ttl 120 rdlength 4, 131: 192.168.1.50 */
    0xc0, 0x46, 0x00, 0x01, 0x80, 0x01, 0x00, 0x00, 0x00, 0x78, 0x00, 0x04,
    192, 168, 1, 50,
    /* 135 (ptr 70) AAAA IN|flush ttl 120 rdlength 16, 147: fe80::211:22ff:fe33:4455 */
    0xc0, 0x46, 0x00, 0x1c, 0x80, 0x01, 0x00, 0x00, 0x00, 0x78, 0x00, 0x10,
    0xfe, 0x80, 0, 0, 0, 0, 0, 0, 0x02, 0x11, 0x22, 0xff, 0xfe, 0x33, 0x44, 0x55,
    /* 163 end */
};

static void test_read_avahi_response(void **state)
{
    (void)state;
    assert_int_equal(sizeof avahi_response, 163);
    uint8_t *msg = exact(avahi_response, sizeof avahi_response);
    ota_dns_reader_t r;
    assert_int_equal(ota_dns_reader_init(&r, msg, sizeof avahi_response), 0);
    assert_int_equal(r.hdr.id, 0);
    assert_int_equal(r.hdr.flags, OTA_DNS_FLAG_QR | OTA_DNS_FLAG_AA);
    assert_int_equal(r.hdr.qdcount, 0);
    assert_int_equal(r.hdr.ancount, 1);
    assert_int_equal(r.hdr.nscount, 0);
    assert_int_equal(r.hdr.arcount, 4);

    ota_dns_question_t q;
    assert_int_equal(ota_dns_next_question(&r, &q), 0);

    ota_dns_record_t rec;
    uint8_t target[OTA_DNS_NAME_MAX];
    size_t end = 0;

    /* PTR */
    assert_int_equal(ota_dns_next_record(&r, &rec), 1);
    assert_name(rec.name, "_ota._tcp.local");
    assert_int_equal(rec.type, OTA_DNS_TYPE_PTR);
    assert_int_equal(rec.rclass, OTA_DNS_CLASS_IN);
    assert_int_equal(rec.ttl, 4500);
    assert_int_equal(rec.section, OTA_DNS_SEC_ANSWER);
    assert_int_equal(rec.rdata, 39);
    assert_int_equal(rec.rdlength, 13);
    assert_int_equal(ota_dns_read_name(msg, sizeof avahi_response, rec.rdata, target, &end), 28);
    assert_int_equal(end, 52); /* just after the pointer, the end of the rdata */
    assert_name(target, "livingroom._ota._tcp.local");

    /* SRV */
    assert_int_equal(ota_dns_next_record(&r, &rec), 1);
    assert_name(rec.name, "livingroom._ota._tcp.local");
    assert_int_equal(rec.type, OTA_DNS_TYPE_SRV);
    assert_int_equal(rec.rclass, OTA_DNS_CLASS_IN | OTA_DNS_CLASS_TOP);
    assert_int_equal(rec.ttl, 120);
    assert_int_equal(rec.section, OTA_DNS_SEC_ADDITIONAL);
    assert_int_equal(rec.rdata, 64);
    assert_int_equal(rec.rdlength, 19);
    assert_int_equal(msg[rec.rdata + 4] << 8 | msg[rec.rdata + 5], 3232);
    assert_int_equal(ota_dns_read_name(msg, sizeof avahi_response, rec.rdata + 6, target, &end),
                     18);
    assert_int_equal(end, rec.rdata + rec.rdlength);
    assert_name(target, "livingroom.local");

    /* TXT */
    assert_int_equal(ota_dns_next_record(&r, &rec), 1);
    assert_name(rec.name, "livingroom._ota._tcp.local");
    assert_int_equal(rec.type, OTA_DNS_TYPE_TXT);
    assert_int_equal(rec.ttl, 4500);
    assert_int_equal(rec.rdata, 95);
    assert_int_equal(rec.rdlength, 24);
    assert_memory_equal(msg + rec.rdata, "\x0bversion=2.0\x0b" "auth=sha256", 24);

    /* A */
    static const uint8_t v4[4] = {192, 168, 1, 50};
    assert_int_equal(ota_dns_next_record(&r, &rec), 1);
    assert_name(rec.name, "livingroom.local");
    assert_int_equal(rec.type, OTA_DNS_TYPE_A);
    assert_int_equal(rec.rclass, 0x8001);
    assert_int_equal(rec.rdata, 131);
    assert_int_equal(rec.rdlength, 4);
    assert_memory_equal(msg + rec.rdata, v4, 4);

    /* AAAA */
    static const uint8_t v6[16] = {0xfe, 0x80, 0, 0, 0, 0, 0, 0,
                                   0x02, 0x11, 0x22, 0xff, 0xfe, 0x33, 0x44, 0x55};
    assert_int_equal(ota_dns_next_record(&r, &rec), 1);
    assert_name(rec.name, "livingroom.local");
    assert_int_equal(rec.type, OTA_DNS_TYPE_AAAA);
    assert_int_equal(rec.section, OTA_DNS_SEC_ADDITIONAL);
    assert_int_equal(rec.rdata, 147);
    assert_int_equal(rec.rdlength, 16);
    assert_memory_equal(msg + rec.rdata, v6, 16);
    assert_int_equal(r.pos, sizeof avahi_response);

    /* the end, and it stays the end */
    assert_int_equal(ota_dns_next_record(&r, &rec), 0);
    assert_int_equal(ota_dns_next_record(&r, &rec), 0);
    assert_int_equal(ota_dns_next_question(&r, &q), 0);
    free(msg);
}

/* Every prefix of the response is a truncated message: each read either succeeds
 * with what the full message has or fails, never reads outside, and the reader
 * ends within a bounded number of calls. */
static void test_read_avahi_truncated_everywhere(void **state)
{
    (void)state;
    static const size_t rec_end[5] = {52, 83, 119, 135, 163};
    for (size_t n = 0; n < sizeof avahi_response; n++) {
        uint8_t *msg = exact(avahi_response, n);
        ota_dns_reader_t r;
        if (n < OTA_DNS_HEADER_LEN) {
            assert_int_equal(ota_dns_reader_init(&r, n ? msg : NULL, n), OTA_ERR_MALFORMED);
            ota_dns_record_t rec;
            ota_dns_question_t q;
            assert_int_equal(ota_dns_next_question(&r, &q), 0);
            assert_int_equal(ota_dns_next_record(&r, &rec), 0);
            free(msg);
            continue;
        }
        assert_int_equal(ota_dns_reader_init(&r, msg, n), 0);
        ota_dns_record_t rec;
        int got = 0, rc;
        while ((rc = ota_dns_next_record(&r, &rec)) == 1) {
            assert_true(got < 5);
            assert_true(rec_end[got] <= n);
            assert_int_equal(rec.rdata + rec.rdlength, rec_end[got]);
            got++;
        }
        /* the records that are complete in the prefix were read, then an error */
        int complete = 0;
        while (complete < 5 && rec_end[complete] <= n)
            complete++;
        assert_int_equal(got, complete);
        assert_int_equal(rc, OTA_ERR_MALFORMED);
        assert_int_equal(ota_dns_next_record(&r, &rec), 0);
        free(msg);
    }
}

/* ------------------------------------------------------------ questions and sections */

static void test_questions_qu_bit_and_sections(void **state)
{
    (void)state;
    mb_t m;
    /* a query with two questions (the second compressed), a known answer, a
     * probe's authority record and an additional record */
    mb_header(&m, 0, 2, 1, 1, 1);
    mb_name(&m, "x.local"); /* 12 */
    mb_u16(&m, OTA_DNS_TYPE_A);
    mb_u16(&m, OTA_DNS_CLASS_IN | OTA_DNS_CLASS_TOP); /* QU */
    mb_ptr(&m, 12);                                  /* 25 */
    mb_u16(&m, OTA_DNS_TYPE_AAAA);
    mb_u16(&m, OTA_DNS_CLASS_IN);
    mb_name(&m, "_ota._tcp.local"); /* 31: answer */
    mb_rr_fixed(&m, OTA_DNS_TYPE_PTR, OTA_DNS_CLASS_IN, 4000, 5);
    size_t ans_rdata = m.n;
    mb_u8(&m, 2);
    mb_bytes(&m, "n1", 2);
    mb_ptr(&m, 31);
    mb_ptr(&m, 12); /* authority: x.local A */
    mb_rr_fixed(&m, OTA_DNS_TYPE_A, OTA_DNS_CLASS_IN, 120, 4);
    size_t auth_rdata = m.n;
    mb_bytes(&m, "\x0a\x00\x00\x07", 4);
    mb_u8(&m, 0); /* additional: the root, OPT-like, empty rdata */
    mb_rr_fixed(&m, 41, 1440, 0x01020304u, 0);
    size_t add_rdata = m.n;

    uint8_t *msg = exact(m.b, m.n);
    ota_dns_reader_t r;
    assert_int_equal(ota_dns_reader_init(&r, msg, m.n), 0);
    ota_dns_question_t q;
    assert_int_equal(ota_dns_next_question(&r, &q), 1);
    assert_name(q.name, "x.local");
    assert_int_equal(q.type, OTA_DNS_TYPE_A);
    assert_int_equal(q.qclass, 0x8001);
    assert_true(q.qclass & OTA_DNS_CLASS_TOP);
    assert_int_equal(ota_dns_next_question(&r, &q), 1);
    assert_name(q.name, "x.local");
    assert_int_equal(q.type, OTA_DNS_TYPE_AAAA);
    assert_int_equal(q.qclass, 1);
    assert_int_equal(r.pos, 31);
    assert_int_equal(ota_dns_next_question(&r, &q), 0);

    ota_dns_record_t rec;
    uint8_t target[OTA_DNS_NAME_MAX];
    assert_int_equal(ota_dns_next_record(&r, &rec), 1);
    assert_int_equal(rec.section, OTA_DNS_SEC_ANSWER);
    assert_name(rec.name, "_ota._tcp.local");
    assert_int_equal(rec.ttl, 4000);
    assert_int_equal(rec.rdata, ans_rdata);
    assert_int_equal(rec.rdlength, 5);
    assert_true(ota_dns_read_name(msg, m.n, rec.rdata, target, NULL) > 0);
    assert_name(target, "n1._ota._tcp.local");

    assert_int_equal(ota_dns_next_record(&r, &rec), 1);
    assert_int_equal(rec.section, OTA_DNS_SEC_AUTHORITY);
    assert_name(rec.name, "x.local");
    assert_int_equal(rec.type, OTA_DNS_TYPE_A);
    assert_int_equal(rec.rdata, auth_rdata);
    assert_int_equal(rec.rdlength, 4);

    assert_int_equal(ota_dns_next_record(&r, &rec), 1);
    assert_int_equal(rec.section, OTA_DNS_SEC_ADDITIONAL);
    assert_name(rec.name, "");
    assert_int_equal(rec.type, 41);
    assert_int_equal(rec.rclass, 1440);
    assert_int_equal(rec.ttl, 0x01020304u);
    assert_int_equal(rec.rdata, add_rdata);
    assert_int_equal(rec.rdlength, 0);
    assert_int_equal(rec.rdata, m.n); /* an empty rdata at the very end is fine */
    assert_int_equal(ota_dns_next_record(&r, &rec), 0);
    free(msg);
}

static void test_next_record_skips_questions(void **state)
{
    (void)state;
    mb_t m;
    mb_header(&m, 0, 3, 0, 0, 1);
    for (int i = 0; i < 3; i++) {
        mb_name(&m, i == 0 ? "a.local" : i == 1 ? "b.local" : "c.local");
        mb_u16(&m, OTA_DNS_TYPE_ANY);
        mb_u16(&m, OTA_DNS_CLASS_IN);
    }
    mb_name(&m, "d.local");
    mb_rr_fixed(&m, OTA_DNS_TYPE_TXT, OTA_DNS_CLASS_IN, 1, 1);
    mb_u8(&m, 0);
    uint8_t *msg = exact(m.b, m.n);
    ota_dns_reader_t r;
    assert_int_equal(ota_dns_reader_init(&r, msg, m.n), 0);
    ota_dns_question_t q;
    assert_int_equal(ota_dns_next_question(&r, &q), 1); /* read one, skip the others */
    ota_dns_record_t rec;
    assert_int_equal(ota_dns_next_record(&r, &rec), 1);
    assert_name(rec.name, "d.local");
    assert_int_equal(rec.section, OTA_DNS_SEC_ADDITIONAL); /* empty sections skipped */
    assert_int_equal(ota_dns_next_question(&r, &q), 0);
    assert_int_equal(ota_dns_next_record(&r, &rec), 0);
    free(msg);
}

/* ------------------------------------------------------------ malformed messages */

static void test_short_and_empty_messages(void **state)
{
    (void)state;
    ota_dns_reader_t r;
    ota_dns_question_t q;
    ota_dns_record_t rec;
    uint8_t out[OTA_DNS_NAME_MAX];
    memset(&r, 0xAA, sizeof r);
    assert_int_equal(ota_dns_reader_init(&r, NULL, 0), OTA_ERR_MALFORMED);
    assert_int_equal(ota_dns_next_question(&r, &q), 0);
    assert_int_equal(ota_dns_next_record(&r, &rec), 0);
    uint8_t *eleven = exact("\x00\x00\x00\x00\x00\x01\x00\x01\x00\x00\x00", 11);
    memset(&r, 0xAA, sizeof r);
    assert_int_equal(ota_dns_reader_init(&r, eleven, 11), OTA_ERR_MALFORMED);
    assert_int_equal(ota_dns_next_question(&r, &q), 0);
    assert_int_equal(ota_dns_next_record(&r, &rec), 0);
    free(eleven);
    /* a bare header claiming nothing */
    uint8_t *twelve = exact("\x00\x00\x84\x00\x00\x00\x00\x00\x00\x00\x00\x00", 12);
    assert_int_equal(ota_dns_reader_init(&r, twelve, 12), 0);
    assert_int_equal(ota_dns_next_question(&r, &q), 0);
    assert_int_equal(ota_dns_next_record(&r, &rec), 0);
    /* a name at or past the end */
    assert_int_equal(ota_dns_read_name(twelve, 12, 12, out, NULL), OTA_ERR_MALFORMED);
    assert_int_equal(ota_dns_read_name(twelve, 12, 1000, out, NULL), OTA_ERR_MALFORMED);
    assert_int_equal(ota_dns_read_name(twelve, 0, 0, out, NULL), OTA_ERR_MALFORMED);
    free(twelve);
    /* a bare header claiming one question */
    uint8_t *claim = exact("\x00\x00\x00\x00\x00\x01\x00\x00\x00\x00\x00\x00", 12);
    assert_int_equal(ota_dns_reader_init(&r, claim, 12), 0);
    assert_int_equal(ota_dns_next_question(&r, &q), OTA_ERR_MALFORMED);
    assert_int_equal(ota_dns_next_question(&r, &q), 0);
    assert_int_equal(ota_dns_next_record(&r, &rec), 0);
    free(claim);
}

static void test_truncated_question_and_record(void **state)
{
    (void)state;
    mb_t m;
    ota_dns_reader_t r;
    ota_dns_question_t q;
    ota_dns_record_t rec;
    /* question: name complete, 4 bytes of type+class, cut anywhere */
    mb_header(&m, 0, 1, 0, 0, 0);
    mb_name(&m, "x.local");
    mb_u16(&m, 1);
    mb_u16(&m, 1);
    for (size_t n = 12; n <= m.n; n++) {
        uint8_t *msg = exact(m.b, n);
        assert_int_equal(ota_dns_reader_init(&r, msg, n), 0);
        assert_int_equal(ota_dns_next_question(&r, &q), n == m.n ? 1 : OTA_ERR_MALFORMED);
        assert_int_equal(ota_dns_next_question(&r, &q), 0);
        assert_int_equal(ota_dns_next_record(&r, &rec), 0);
        free(msg);
    }
    /* record: name, 10 fixed bytes, 4 of rdata, cut anywhere */
    mb_header(&m, 0x8400, 0, 1, 0, 0);
    mb_name(&m, "x.local");
    mb_rr_fixed(&m, OTA_DNS_TYPE_A, 0x8001, 120, 4);
    mb_bytes(&m, "\x0a\x00\x00\x01", 4);
    for (size_t n = 12; n <= m.n; n++) {
        uint8_t *msg = exact(m.b, n);
        assert_int_equal(ota_dns_reader_init(&r, msg, n), 0);
        assert_int_equal(ota_dns_next_record(&r, &rec), n == m.n ? 1 : OTA_ERR_MALFORMED);
        assert_int_equal(ota_dns_next_record(&r, &rec), 0);
        assert_int_equal(ota_dns_next_question(&r, &q), 0);
        free(msg);
    }
    /* rdlength one more than what is there */
    mb_header(&m, 0x8400, 0, 1, 0, 0);
    mb_name(&m, "x.local");
    mb_rr_fixed(&m, OTA_DNS_TYPE_A, 0x8001, 120, 5);
    mb_bytes(&m, "\x0a\x00\x00\x01", 4);
    uint8_t *msg = exact(m.b, m.n);
    assert_int_equal(ota_dns_reader_init(&r, msg, m.n), 0);
    assert_int_equal(ota_dns_next_record(&r, &rec), OTA_ERR_MALFORMED);
    assert_int_equal(ota_dns_next_record(&r, &rec), 0);
    free(msg);
    /* rdlength 0xffff */
    mb_header(&m, 0x8400, 0, 2, 0, 0);
    mb_name(&m, "x.local");
    mb_rr_fixed(&m, OTA_DNS_TYPE_TXT, 1, 1, 0xffff);
    mb_u8(&m, 0);
    msg = exact(m.b, m.n);
    assert_int_equal(ota_dns_reader_init(&r, msg, m.n), 0);
    assert_int_equal(ota_dns_next_record(&r, &rec), OTA_ERR_MALFORMED);
    assert_int_equal(ota_dns_next_record(&r, &rec), 0);
    free(msg);
}

static void test_truncated_names(void **state)
{
    (void)state;
    mb_t m;
    uint8_t out[OTA_DNS_NAME_MAX];
    size_t end = 777;
    /* every prefix of a name (labels then a pointer) fails to read */
    mb_header(&m, 0, 0, 0, 0, 0);
    mb_name(&m, "local"); /* 12 */
    size_t at = m.n;
    mb_label(&m, 3, 'a');
    mb_label(&m, 2, 'b');
    mb_ptr(&m, 12);
    for (size_t n = at; n < m.n; n++) {
        assert_int_equal(read_exact(&m, n, at, out, &end), OTA_ERR_MALFORMED);
        assert_int_equal(end, 777); /* untouched on failure */
    }
    assert_int_equal(read_exact(&m, m.n, at, out, &end), 4 + 3 + 6 + 1);
    assert_int_equal(end, m.n);
    assert_name(out, "aaa.bb.local");
    /* a label running past the end: length 10, 3 bytes there */
    mb_header(&m, 0, 0, 0, 0, 0);
    mb_u8(&m, 10);
    mb_bytes(&m, "abc", 3);
    assert_int_equal(read_exact(&m, m.n, 12, out, NULL), OTA_ERR_MALFORMED);
    /* a label whose bytes reach exactly the end: no room for the final zero */
    mb_header(&m, 0, 0, 0, 0, 0);
    mb_label(&m, 3, 'x');
    assert_int_equal(read_exact(&m, m.n, 12, out, NULL), OTA_ERR_MALFORMED);
    /* a pointer's first byte is the last byte */
    mb_header(&m, 0, 0, 0, 0, 0);
    mb_u8(&m, 0);
    mb_u8(&m, 0xC0);
    assert_int_equal(read_exact(&m, m.n, 13, out, NULL), OTA_ERR_MALFORMED);
    /* truncated name inside a question ends the questions */
    mb_header(&m, 0, 5, 0, 0, 0);
    mb_label(&m, 40, 'q');
    uint8_t *msg = exact(m.b, m.n - 10);
    ota_dns_reader_t r;
    ota_dns_question_t q;
    assert_int_equal(ota_dns_reader_init(&r, msg, m.n - 10), 0);
    assert_int_equal(ota_dns_next_question(&r, &q), OTA_ERR_MALFORMED);
    assert_int_equal(ota_dns_next_question(&r, &q), 0);
    free(msg);
}

static void test_compression_loops_and_forward_pointers(void **state)
{
    (void)state;
    mb_t m;
    uint8_t out[OTA_DNS_NAME_MAX];
    /* a pointer to itself */
    mb_header(&m, 0, 1, 0, 0, 0);
    mb_ptr(&m, 12);
    mb_u16(&m, 1);
    mb_u16(&m, 1);
    assert_int_equal(read_exact(&m, m.n, 12, out, NULL), OTA_ERR_MALFORMED);
    uint8_t *msg = exact(m.b, m.n);
    ota_dns_reader_t r;
    ota_dns_question_t q;
    assert_int_equal(ota_dns_reader_init(&r, msg, m.n), 0);
    assert_int_equal(ota_dns_next_question(&r, &q), OTA_ERR_MALFORMED);
    free(msg);

    /* a label, then a pointer back to that label: a loop through the label */
    mb_header(&m, 0, 0, 0, 0, 0);
    mb_label(&m, 1, 'a');
    mb_ptr(&m, 12);
    assert_int_equal(read_exact(&m, m.n, 12, out, NULL), OTA_ERR_MALFORMED);

    /* two pointers pointing at each other, read from either one */
    mb_header(&m, 0, 0, 0, 0, 0);
    mb_ptr(&m, 14);
    mb_ptr(&m, 12);
    assert_int_equal(read_exact(&m, m.n, 12, out, NULL), OTA_ERR_MALFORMED);
    assert_int_equal(read_exact(&m, m.n, 14, out, NULL), OTA_ERR_MALFORMED);

    /* a three-pointer cycle through labels */
    mb_header(&m, 0, 0, 0, 0, 0);
    mb_label(&m, 1, 'a'); /* 12 */
    mb_ptr(&m, 18);       /* 14 */
    mb_label(&m, 1, 'b'); /* 16 */
    mb_ptr(&m, 12);       /* 18 -> 12 */
    for (size_t off = 12; off < m.n; off += 2)
        assert_int_equal(read_exact(&m, m.n, off, out, NULL), OTA_ERR_MALFORMED);

    /* a forward pointer to a perfectly good name is refused */
    mb_header(&m, 0, 0, 0, 0, 0);
    mb_ptr(&m, 14); /* 12 */
    mb_name(&m, "x.local");
    assert_int_equal(read_exact(&m, m.n, 12, out, NULL), OTA_ERR_MALFORMED);
    assert_int_equal(read_exact(&m, m.n, 14, out, NULL), 9);

    /* a pointer beyond the message */
    mb_header(&m, 0, 0, 0, 0, 0);
    mb_name(&m, "x.local");
    mb_ptr(&m, 0x3FFF);
    assert_int_equal(read_exact(&m, m.n, 21, out, NULL), OTA_ERR_MALFORMED);

    /* a pointer that lands back in the middle of the same name's labels after a
     * backward jump: 30 -> 20 (ok), which continues into 30's own pointer again */
    mb_header(&m, 0, 0, 0, 0, 0);
    mb_name(&m, "local"); /* 12..18 */
    mb_u8(&m, 0);         /* 19 padding */
    mb_label(&m, 1, 'p'); /* 20 */
    mb_label(&m, 1, 'q'); /* 22 */
    mb_label(&m, 1, 'r'); /* 24 */
    mb_label(&m, 1, 's'); /* 26 */
    mb_label(&m, 1, 't'); /* 28 */
    mb_ptr(&m, 20);       /* 30 */
    /* 20..30 -> 20: a loop; 30 -> 20 ... -> 20 */
    assert_int_equal(read_exact(&m, m.n, 20, out, NULL), OTA_ERR_MALFORMED);
    assert_int_equal(read_exact(&m, m.n, 30, out, NULL), OTA_ERR_MALFORMED);
}

static void test_pointer_chains(void **state)
{
    (void)state;
    mb_t m;
    uint8_t out[OTA_DNS_NAME_MAX];
    size_t end;
    mb_header(&m, 0, 0, 0, 0, 0);
    mb_name(&m, "local");  /* 12 */
    mb_label(&m, 1, 'b');  /* 19 */
    mb_ptr(&m, 12);
    mb_label(&m, 1, 'a');  /* 23 */
    mb_ptr(&m, 19);
    size_t p1 = m.n;       /* 27: a bare pointer to a pointer chain */
    mb_ptr(&m, 23);
    assert_int_equal(read_exact(&m, m.n, 23, out, &end), 11);
    assert_int_equal(end, 27);
    assert_name(out, "a.b.local");
    assert_int_equal(read_exact(&m, m.n, p1, out, &end), 11);
    assert_int_equal(end, p1 + 2);
    assert_name(out, "a.b.local");

    /* OTA_DNS_MAX_JUMPS pointers, each to the one before it, then a name: long but
     * valid; one more and the reader gives up (a chain of a thousand would make a
     * message cost the square of its size to read) */
    mb_header(&m, 0, 0, 0, 0, 0);
    mb_name(&m, "x.local");
    mb_ptr(&m, 12);
    for (unsigned i = 1; i < OTA_DNS_MAX_JUMPS; i++)
        mb_ptr(&m, m.n - 2);
    assert_int_equal(read_exact(&m, m.n, m.n - 2, out, &end), 9);
    assert_int_equal(end, m.n);
    assert_name(out, "x.local");
    mb_ptr(&m, m.n - 2);
    assert_int_equal(read_exact(&m, m.n, m.n - 2, out, &end), OTA_ERR_MALFORMED);

    /* the pointer in the header area (offset < 12) is just bytes: allowed, read as
     * labels, bounded like anything else */
    mb_header(&m, 0, 0, 0, 0, 0);
    m.b[0] = 1;
    m.b[1] = 'h';
    m.b[2] = 0;
    mb_label(&m, 1, 'z');
    mb_ptr(&m, 0);
    assert_int_equal(read_exact(&m, m.n, 12, out, NULL), 5);
    assert_name(out, "z.h");
}

static void test_extended_label_types(void **state)
{
    (void)state;
    mb_t m;
    uint8_t out[OTA_DNS_NAME_MAX];
    static const uint8_t types[] = {0x40, 0x41, 0x7f, 0x80, 0x81, 0xbf};
    for (size_t i = 0; i < sizeof types; i++) {
        mb_header(&m, 0, 1, 0, 0, 0);
        mb_u8(&m, types[i]);
        for (int k = 0; k < 70; k++)
            mb_u8(&m, 'a');
        mb_u8(&m, 0);
        mb_u16(&m, 1);
        mb_u16(&m, 1);
        assert_int_equal(read_exact(&m, m.n, 12, out, NULL), OTA_ERR_MALFORMED);
        /* and after a good label */
        mb_header(&m, 0, 0, 0, 0, 0);
        mb_label(&m, 1, 'a');
        mb_u8(&m, types[i]);
        mb_u8(&m, 0);
        mb_u8(&m, 0);
        assert_int_equal(read_exact(&m, m.n, 12, out, NULL), OTA_ERR_MALFORMED);
    }
}

static void test_name_length_limit_after_expansion(void **state)
{
    (void)state;
    mb_t m;
    uint8_t out[OTA_DNS_NAME_MAX];
    /* labels 61, 63, 63, 63 chained by pointers: 62 + 3 * 64 + 1 = 255, the limit */
    mb_header(&m, 0, 0, 0, 0, 0);
    size_t a = m.n;
    mb_label(&m, 61, 'd');
    mb_u8(&m, 0);
    size_t b = m.n;
    mb_label(&m, 63, 'c');
    mb_ptr(&m, a);
    size_t c = m.n;
    mb_label(&m, 63, 'b');
    mb_ptr(&m, b);
    size_t d = m.n;
    mb_label(&m, 63, 'a');
    mb_ptr(&m, c);
    assert_int_equal(read_exact(&m, m.n, d, out, NULL), 255);
    assert_int_equal(ota_dns_name_len(out), 255);
    assert_int_equal(out[0], 63);
    assert_int_equal(out[64], 63);
    assert_int_equal(out[192], 61);
    assert_int_equal(out[254], 0);
    /* one byte more: 62 -> 63 in the last label */
    mb_header(&m, 0, 0, 0, 0, 0);
    a = m.n;
    mb_label(&m, 62, 'd');
    mb_u8(&m, 0);
    b = m.n;
    mb_label(&m, 63, 'c');
    mb_ptr(&m, a);
    c = m.n;
    mb_label(&m, 63, 'b');
    mb_ptr(&m, b);
    d = m.n;
    mb_label(&m, 63, 'a');
    mb_ptr(&m, c);
    assert_int_equal(read_exact(&m, m.n, d, out, NULL), OTA_ERR_MALFORMED);
    assert_int_equal(read_exact(&m, m.n, c, out, NULL), 1 + 64 + 64 + 63);
    /* without pointers: 128 one-byte labels = 257 bytes */
    mb_header(&m, 0, 0, 0, 0, 0);
    for (int i = 0; i < 128; i++)
        mb_label(&m, 1, 'x');
    mb_u8(&m, 0);
    assert_int_equal(read_exact(&m, m.n, 12, out, NULL), OTA_ERR_MALFORMED);
    assert_int_equal(read_exact(&m, m.n, 14, out, NULL), 255); /* 127 labels fit */
    /* a self-referencing pointer chain that would grow without bound */
    mb_header(&m, 0, 0, 0, 0, 0);
    mb_u8(&m, 0);
    for (int i = 0; i < 200; i++) {
        size_t prev = m.n - (i == 0 ? 1 : 4);
        mb_label(&m, 1, 'y');
        mb_ptr(&m, prev);
    }
    assert_int_equal(read_exact(&m, m.n, m.n - 4, out, NULL), OTA_ERR_MALFORMED);
}

static void test_huge_counts_end_quickly(void **state)
{
    (void)state;
    mb_t m;
    ota_dns_reader_t r;
    ota_dns_question_t q;
    ota_dns_record_t rec;
    /* 65535 questions claimed, 3 present */
    mb_header(&m, 0, 0xffff, 0xffff, 0xffff, 0xffff);
    mb_name(&m, "x.local");
    mb_u16(&m, 1);
    mb_u16(&m, 1);
    for (int i = 0; i < 2; i++) {
        mb_ptr(&m, 12);
        mb_u16(&m, 28);
        mb_u16(&m, 1);
    }
    uint8_t *msg = exact(m.b, m.n);
    assert_int_equal(ota_dns_reader_init(&r, msg, m.n), 0);
    int calls = 0, rc;
    while ((rc = ota_dns_next_question(&r, &q)) == 1)
        calls++;
    assert_int_equal(calls, 3);
    assert_int_equal(rc, OTA_ERR_MALFORMED);
    for (int i = 0; i < 5; i++) {
        assert_int_equal(ota_dns_next_question(&r, &q), 0);
        assert_int_equal(ota_dns_next_record(&r, &rec), 0);
    }
    /* the same through next_record: the skip stops at the first bad question */
    assert_int_equal(ota_dns_reader_init(&r, msg, m.n), 0);
    assert_int_equal(ota_dns_next_record(&r, &rec), OTA_ERR_MALFORMED);
    assert_int_equal(ota_dns_next_record(&r, &rec), 0);
    assert_int_equal(ota_dns_next_question(&r, &q), 0);
    free(msg);

    /* 1000 questions claimed, 3 there */
    m.b[4] = 1000 >> 8;
    m.b[5] = 1000 & 0xff;
    msg = exact(m.b, m.n);
    assert_int_equal(ota_dns_reader_init(&r, msg, m.n), 0);
    assert_int_equal(r.hdr.qdcount, 1000);
    calls = 0;
    while ((rc = ota_dns_next_question(&r, &q)) == 1)
        calls++;
    assert_int_equal(calls, 3);
    assert_int_equal(rc, OTA_ERR_MALFORMED);
    free(msg);

    /* 65535 answers claimed, a 12-byte header and one record */
    mb_header(&m, 0x8400, 0, 0xffff, 0, 0xffff);
    mb_name(&m, "x.local");
    mb_rr_fixed(&m, OTA_DNS_TYPE_A, 1, 1, 4);
    mb_bytes(&m, "\x01\x02\x03\x04", 4);
    msg = exact(m.b, m.n);
    assert_int_equal(ota_dns_reader_init(&r, msg, m.n), 0);
    assert_int_equal(ota_dns_next_record(&r, &rec), 1);
    assert_int_equal(ota_dns_next_record(&r, &rec), OTA_ERR_MALFORMED);
    for (int i = 0; i < 5; i++)
        assert_int_equal(ota_dns_next_record(&r, &rec), 0);
    free(msg);

    /* a header alone with every count at 65535: one call each ends it */
    mb_header(&m, 0, 0xffff, 0xffff, 0xffff, 0xffff);
    msg = exact(m.b, m.n);
    assert_int_equal(ota_dns_reader_init(&r, msg, m.n), 0);
    assert_int_equal(ota_dns_next_record(&r, &rec), OTA_ERR_MALFORMED);
    assert_int_equal(ota_dns_next_record(&r, &rec), 0);
    assert_int_equal(ota_dns_next_question(&r, &q), 0);
    free(msg);

    /* 65535 records claimed, as many zero-rdata records as 1400 bytes hold: the
     * reader reads each once (every one is at least 11 bytes) */
    mb_header(&m, 0x8400, 0, 0xffff, 0, 0);
    mb_name(&m, "x.local");
    mb_rr_fixed(&m, 99, 1, 1, 0);
    int present = 1;
    while (m.n + 12 <= 1400) {
        mb_ptr(&m, 12);
        mb_rr_fixed(&m, 99, 1, 1, 0);
        present++;
    }
    msg = exact(m.b, m.n);
    assert_int_equal(ota_dns_reader_init(&r, msg, m.n), 0);
    calls = 0;
    while ((rc = ota_dns_next_record(&r, &rec)) == 1) {
        assert_true(calls < present);
        calls++;
    }
    assert_int_equal(calls, present);
    assert_int_equal(rc, OTA_ERR_MALFORMED);
    free(msg);
}

/* ------------------------------------------------------------ name helpers */

static void test_name_len_and_eq(void **state)
{
    (void)state;
    assert_int_equal(ota_dns_name_len((const uint8_t *)""), 1);
    assert_int_equal(ota_dns_name_len((const uint8_t *)"\1x\5local"), 9);
    uint8_t big[OTA_DNS_NAME_MAX + 8];
    /* a length byte of 64 is not a label */
    memcpy(big, "\x40", 1);
    memset(big + 1, 'a', 64);
    big[65] = 0;
    assert_int_equal(ota_dns_name_len(big), 0);
    /* 255 bytes, the most */
    memset(big, 'a', sizeof big);
    big[0] = 63;
    big[64] = 63;
    big[128] = 63;
    big[192] = 61;
    big[254] = 0;
    assert_int_equal(ota_dns_name_len(big), 255);
    /* no zero within 255 bytes */
    big[192] = 62;
    big[254] = 'a';
    big[255] = 0;
    assert_int_equal(ota_dns_name_len(big), 0);

    uint8_t a[OTA_DNS_NAME_MAX], b[OTA_DNS_NAME_MAX];
    flat(a, "LivingRoom._OTA._tcp.Local");
    flat(b, "livingroom._ota._TCP.LOCAL");
    assert_true(ota_dns_name_eq(a, b));
    assert_true(ota_dns_name_eq(a, a));
    flat(b, "livingroom._ota._tcp");
    assert_false(ota_dns_name_eq(a, b));
    flat(a, "a.b");
    flat(b, "ab");
    assert_false(ota_dns_name_eq(a, b));
    flat(b, "a.c");
    assert_false(ota_dns_name_eq(a, b));
    /* only ASCII letters fold: '[' (0x5b) is not '{' (0x7b), 0xC4 is not 0xE4 */
    assert_false(ota_dns_name_eq((const uint8_t *)"\1[", (const uint8_t *)"\1{"));
    assert_false(ota_dns_name_eq((const uint8_t *)"\1\xc4", (const uint8_t *)"\1\xe4"));
    assert_true(ota_dns_name_eq((const uint8_t *)"\1\xc4", (const uint8_t *)"\1\xc4"));
    assert_true(ota_dns_name_eq((const uint8_t *)"", (const uint8_t *)""));
    /* a malformed name equals nothing, not even itself */
    big[0] = 64;
    assert_false(ota_dns_name_eq(big, big));
}

static void test_append_dotted(void **state)
{
    (void)state;
    uint8_t n[OTA_DNS_NAME_MAX];
    n[0] = 0;
    assert_int_equal(ota_dns_name_append_dotted(n, ""), 1);
    assert_int_equal(n[0], 0);
    assert_int_equal(ota_dns_name_append_dotted(n, "x.local"), 9);
    assert_memory_equal(n, "\1x\5local", 9);
    /* appending to a name that has labels */
    n[0] = 0;
    assert_int_equal(ota_dns_name_append_dotted(n, "_ota._tcp"), 11);
    assert_int_equal(ota_dns_name_append_dotted(n, "local"), 17);
    assert_memory_equal(n, "\4_ota\4_tcp\5local", 17);
    /* a trailing dot is the root: same name */
    n[0] = 0;
    assert_int_equal(ota_dns_name_append_dotted(n, "x.local."), 9);
    assert_memory_equal(n, "\1x\5local", 9);
    /* empty labels are refused */
    static const char *const bad[] = {"x..local", ".x", "..", "x.local..", "."};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        n[0] = 0;
        assert_int_equal(ota_dns_name_append_dotted(n, bad[i]), 0);
    }
    /* 63-byte labels are fine, 64 is not */
    char t[300];
    memset(t, 'a', 63);
    t[63] = '\0';
    n[0] = 0;
    assert_int_equal(ota_dns_name_append_dotted(n, t), 65);
    assert_int_equal(n[0], 63);
    memset(t, 'a', 64);
    t[64] = '\0';
    n[0] = 0;
    assert_int_equal(ota_dns_name_append_dotted(n, t), 0);
    /* the total: 63.63.63.61 is 255 bytes flat; one more character is too long */
    memset(t, 'b', sizeof t);
    t[63] = t[127] = t[191] = '.';
    t[253] = '\0';
    n[0] = 0;
    assert_int_equal(ota_dns_name_append_dotted(n, t), 255);
    assert_int_equal(ota_dns_name_len(n), 255);
    t[253] = 'b';
    t[254] = '\0';
    n[0] = 0;
    assert_int_equal(ota_dns_name_append_dotted(n, t), 0);
    /* the limit counts what is already there */
    flat(n, "host");
    t[253] = '\0';
    assert_int_equal(ota_dns_name_append_dotted(n, t), 0);
    /* an out name that is not a name */
    n[0] = 64;
    assert_int_equal(ota_dns_name_append_dotted(n, "x"), 0);
}

static void test_append_label(void **state)
{
    (void)state;
    uint8_t n[OTA_DNS_NAME_MAX];
    char text[400];
    n[0] = 0;
    assert_int_equal(ota_dns_name_append_label(n, "Living Room.v2", 14), 16);
    assert_int_equal(ota_dns_name_append_dotted(n, "_ota._tcp.local"), 32);
    assert_int_equal(n[0], 14);
    assert_memory_equal(n + 1, "Living Room.v2", 14);
    assert_int_equal(ota_dns_name_to_text(n, text, sizeof text), 0);
    assert_string_equal(text, "Living Room\\.v2._ota._tcp.local");
    /* the first label comes back verbatim */
    char lab[64];
    ota_dns_first_label(n, lab, sizeof lab);
    assert_string_equal(lab, "Living Room.v2");
    /* only label_len bytes, which may include a NUL */
    n[0] = 0;
    assert_int_equal(ota_dns_name_append_label(n, "ab\0cd", 5), 7);
    assert_memory_equal(n, "\5ab\0cd\0", 7);
    assert_int_equal(ota_dns_name_to_text(n, text, sizeof text), 0);
    assert_string_equal(text, "ab\\000cd");
    /* empty and 64-byte labels refused, 63 fine */
    char big[64];
    memset(big, 'z', sizeof big);
    n[0] = 0;
    assert_int_equal(ota_dns_name_append_label(n, "", 0), 0);
    assert_int_equal(ota_dns_name_append_label(n, big, 64), 0);
    assert_int_equal(n[0], 0); /* unchanged */
    assert_int_equal(ota_dns_name_append_label(n, big, 63), 65);
    /* up to the total: 65 + 64 + 64 + 62 = 255 */
    assert_int_equal(ota_dns_name_append_label(n, big, 63), 129);
    assert_int_equal(ota_dns_name_append_label(n, big, 63), 193);
    assert_int_equal(ota_dns_name_append_label(n, big, 62), 0);
    assert_int_equal(ota_dns_name_len(n), 193); /* a refused append changes nothing */
    assert_int_equal(ota_dns_name_append_label(n, big, 61), 255);
    assert_int_equal(ota_dns_name_append_label(n, "a", 1), 0);
    assert_int_equal(ota_dns_name_len(n), 255);
}

static void test_first_label(void **state)
{
    (void)state;
    uint8_t n[OTA_DNS_NAME_MAX];
    char out[16];
    flat(n, "livingroom.local");
    ota_dns_first_label(n, out, sizeof out);
    assert_string_equal(out, "livingroom");
    memset(out, 'Q', sizeof out);
    ota_dns_first_label(n, out, 5);
    assert_string_equal(out, "livi");
    assert_int_equal(out[5], 'Q'); /* nothing past cap */
    memset(out, 'Q', sizeof out);
    ota_dns_first_label(n, out, 1);
    assert_string_equal(out, "");
    assert_int_equal(out[1], 'Q');
    out[0] = 'Q';
    ota_dns_first_label(n, out, 0);
    assert_int_equal(out[0], 'Q');
    ota_dns_first_label(n, out, 11);
    assert_string_equal(out, "livingroom");
    ota_dns_first_label((const uint8_t *)"", out, sizeof out);
    assert_string_equal(out, "");
    /* a malformed first byte (a pointer) gives nothing rather than 0xC0 bytes */
    ota_dns_first_label((const uint8_t *)"\xc0\x0c", out, sizeof out);
    assert_string_equal(out, "");
}

static void test_name_to_text(void **state)
{
    (void)state;
    uint8_t n[OTA_DNS_NAME_MAX];
    char out[64];
    /* root */
    assert_int_equal(ota_dns_name_to_text((const uint8_t *)"", out, sizeof out), 0);
    assert_string_equal(out, ".");
    assert_int_equal(ota_dns_name_to_text((const uint8_t *)"", out, 2), 0);
    assert_int_equal(ota_dns_name_to_text((const uint8_t *)"", out, 1), OTA_ERR_TOO_LONG);
    assert_int_equal(ota_dns_name_to_text((const uint8_t *)"", out, 0), OTA_ERR_TOO_LONG);
    /* escapes: dot, backslash, control and high bytes as \DDD; space as is */
    static const uint8_t odd[] = {9, 'a', '.', 'b', '\\', ' ', 0x00, 0x1f, 0x7f, 0xff,
                                  3, 'x', '"', '~', 0};
    assert_int_equal(ota_dns_name_to_text(odd, out, sizeof out), 0);
    assert_string_equal(out, "a\\.b\\\\ \\000\\031\\127\\255.x\"~");
    /* exactly enough room, and one byte less: never a byte past cap */
    flat(n, "x.local");
    for (size_t cap = 0; cap <= 9; cap++) {
        char buf[16];
        memset(buf, 'Q', sizeof buf);
        int rc = ota_dns_name_to_text(n, buf, cap);
        assert_int_equal(rc, cap >= 8 ? 0 : OTA_ERR_TOO_LONG);
        if (rc == 0)
            assert_string_equal(buf, "x.local");
        for (size_t i = cap; i < sizeof buf; i++)
            assert_int_equal(buf[i], 'Q');
    }
    /* an escape that does not fit whole */
    static const uint8_t esc[] = {2, 'a', 0x01, 0};
    for (size_t cap = 0; cap <= 7; cap++) {
        char buf[16];
        memset(buf, 'Q', sizeof buf);
        int rc = ota_dns_name_to_text(esc, buf, cap);
        assert_int_equal(rc, cap >= 6 ? 0 : OTA_ERR_TOO_LONG);
        if (rc == 0)
            assert_string_equal(buf, "a\\001");
        for (size_t i = cap; i < sizeof buf; i++)
            assert_int_equal(buf[i], 'Q');
    }
    /* a malformed name */
    assert_int_equal(ota_dns_name_to_text((const uint8_t *)"\x40", out, sizeof out),
                     OTA_ERR_MALFORMED);
    /* the longest text: 255 bytes flat of 0xff bytes, each \255 */
    uint8_t w[OTA_DNS_NAME_MAX];
    memset(w, 0xff, sizeof w);
    w[0] = w[64] = w[128] = 63;
    w[192] = 61;
    w[254] = 0;
    static char longest[1100];
    assert_int_equal(ota_dns_name_to_text(w, longest, sizeof longest), 0);
    assert_int_equal(strlen(longest), 250 * 4 + 3);
    assert_int_equal(ota_dns_name_to_text(w, longest, 250 * 4 + 3), OTA_ERR_TOO_LONG);
    assert_int_equal(ota_dns_name_to_text(w, longest, 250 * 4 + 4), 0);
}

static void test_name_parent(void **state)
{
    (void)state;
    uint8_t n[OTA_DNS_NAME_MAX];
    flat(n, "livingroom._ota._tcp.local");
    const uint8_t *p = ota_dns_name_parent(n);
    assert_ptr_equal(p, n + 11);
    assert_name(p, "_ota._tcp.local");
    p = ota_dns_name_parent(ota_dns_name_parent(p));
    assert_name(p, "local");
    p = ota_dns_name_parent(p);
    assert_int_equal(p[0], 0);
    assert_ptr_equal(ota_dns_name_parent(p), p); /* the root's parent is the root */
}

/* ------------------------------------------------------------ writer */

#define CANARY 0x5A
#define CANARY_LEN 32

static void canary_init(uint8_t *buf, size_t cap)
{
    memset(buf, 0, cap);
    memset(buf + cap, CANARY, CANARY_LEN);
}

static void canary_check(const uint8_t *buf, size_t cap)
{
    for (size_t i = 0; i < CANARY_LEN; i++)
        assert_int_equal(buf[cap + i], CANARY);
}

/* The compressed message of test_writer_compression, byte for byte. */
static const uint8_t written[] = {
    /*   0 */ 0x12, 0x34, 0x84, 0x00, 0x00, 0x01, 0x00, 0x01, 0x00, 0x00, 0x00, 0x02,
    /*  12 x.local A IN|QU */
    0x01, 'x', 0x05, 'l', 'o', 'c', 'a', 'l', 0x00, 0x00, 0x01, 0x80, 0x01,
    /*  25 _ota._tcp + pointer to 14 (local): PTR IN 4500, rdlength 13 */
    0x04, '_', 'o', 't', 'a', 0x04, '_', 't', 'c', 'p', 0xc0, 0x0e,
    0x00, 0x0c, 0x00, 0x01, 0x00, 0x00, 0x11, 0x94, 0x00, 0x0d,
    /*  47 livingroom + pointer to 25 */
    0x0a, 'l', 'i', 'v', 'i', 'n', 'g', 'r', 'o', 'o', 'm', 0xc0, 0x19,
    /*  60 pointer to 47 (matched case-insensitively): SRV IN|flush 120, rdlength 24 */
    0xc0, 0x2f, 0x00, 0x21, 0x80, 0x01, 0x00, 0x00, 0x00, 0x78, 0x00, 0x18,
    /*  72 0 0 3232, 78: livingroom.local uncompressed */
    0x00, 0x00, 0x00, 0x00, 0x0c, 0xa0,
    0x0a, 'l', 'i', 'v', 'i', 'n', 'g', 'r', 'o', 'o', 'm', 0x05, 'l', 'o', 'c', 'a', 'l', 0x00,
    /*  96 livingroom + pointer to 14: A IN|flush 120, rdlength 4 */
    0x0a, 'l', 'i', 'v', 'i', 'n', 'g', 'r', 'o', 'o', 'm', 0xc0, 0x0e,
    0x00, 0x01, 0x80, 0x01, 0x00, 0x00, 0x00, 0x78, 0x00, 0x04,
    /* 119 */ 192, 168, 1, 50,
    /* 123 end */
};

/* Writes the message above, stopping at the first item that does not fit; with
 * drop, that item is rewound away (the responder's way of sending what fits).
 * \return items written (of 4). */
static int write_sample(ota_dns_writer_t *w, uint8_t *buf, size_t cap, bool drop)
{
    uint8_t n[OTA_DNS_NAME_MAX];
    int items = 0;
    ota_dns_w_init(w, buf, cap, 0x1234, OTA_DNS_FLAG_QR | OTA_DNS_FLAG_AA);
    for (int i = 0; i < 4; i++) {
        ota_dns_mark_t mk = ota_dns_w_mark(w);
        switch (i) {
        case 0:
            flat(n, "x.local");
            ota_dns_w_question(w, n, OTA_DNS_TYPE_A, OTA_DNS_CLASS_IN | OTA_DNS_CLASS_TOP);
            break;
        case 1:
            flat(n, "_ota._tcp.local");
            ota_dns_w_record_begin(w, OTA_DNS_SEC_ANSWER, n, OTA_DNS_TYPE_PTR, OTA_DNS_CLASS_IN,
                                   4500);
            flat(n, "livingroom._ota._tcp.local");
            ota_dns_w_name(w, n);
            ota_dns_w_record_end(w);
            break;
        case 2:
            flat(n, "LivingRoom._ota._tcp.LOCAL");
            ota_dns_w_record_begin(w, OTA_DNS_SEC_ADDITIONAL, n, OTA_DNS_TYPE_SRV,
                                   OTA_DNS_CLASS_IN | OTA_DNS_CLASS_TOP, 120);
            ota_dns_w_u16(w, 0);
            ota_dns_w_u16(w, 0);
            ota_dns_w_u16(w, 3232);
            flat(n, "livingroom.local");
            ota_dns_w_name_flat(w, n);
            ota_dns_w_record_end(w);
            break;
        default:
            flat(n, "livingroom.local");
            ota_dns_w_record_begin(w, OTA_DNS_SEC_ADDITIONAL, n, OTA_DNS_TYPE_A,
                                   OTA_DNS_CLASS_IN | OTA_DNS_CLASS_TOP, 120);
            ota_dns_w_bytes(w, "\xc0\xa8\x01\x32", 4);
            ota_dns_w_record_end(w);
            break;
        }
        if (!ota_dns_w_ok(w)) {
            if (!drop)
                return items;
            ota_dns_w_rewind(w, &mk);
            return items;
        }
        items++;
    }
    return items;
}

static void test_writer_compression(void **state)
{
    (void)state;
    uint8_t buf[512 + CANARY_LEN];
    canary_init(buf, 512);
    ota_dns_writer_t w;
    assert_int_equal(write_sample(&w, buf, 512, false), 4);
    assert_true(ota_dns_w_ok(&w));
    assert_int_equal(ota_dns_w_finish(&w), sizeof written);
    assert_memory_equal(buf, written, sizeof written);
    canary_check(buf, 512);

    /* the reader gets the same names back */
    ota_dns_reader_t r;
    ota_dns_question_t q;
    ota_dns_record_t rec;
    uint8_t t[OTA_DNS_NAME_MAX];
    assert_int_equal(ota_dns_reader_init(&r, buf, sizeof written), 0);
    assert_int_equal(r.hdr.id, 0x1234);
    assert_int_equal(ota_dns_next_question(&r, &q), 1);
    assert_name(q.name, "x.local");
    assert_int_equal(q.qclass, 0x8001);
    assert_int_equal(ota_dns_next_record(&r, &rec), 1);
    assert_name(rec.name, "_ota._tcp.local");
    assert_int_equal(rec.rdlength, 13);
    assert_int_equal(ota_dns_read_name(buf, sizeof written, rec.rdata, t, NULL), 28);
    assert_name(t, "livingroom._ota._tcp.local");
    assert_int_equal(ota_dns_next_record(&r, &rec), 1);
    assert_int_equal(rec.section, OTA_DNS_SEC_ADDITIONAL);
    assert_name(rec.name, "livingroom._ota._tcp.local"); /* the case written first */
    assert_int_equal(rec.rdlength, 24);
    assert_int_equal(ota_dns_read_name(buf, sizeof written, rec.rdata + 6, t, NULL), 18);
    assert_name(t, "livingroom.local");
    assert_int_equal(ota_dns_next_record(&r, &rec), 1);
    assert_name(rec.name, "livingroom.local");
    assert_int_equal(rec.rdata, 119);
    assert_int_equal(ota_dns_next_record(&r, &rec), 0);
}

/* A name that fails the lookup (not well formed) marks the writer broken rather
 * than writing garbage; so does name_flat. */
static void test_writer_rejects_bad_names(void **state)
{
    (void)state;
    uint8_t buf[64 + CANARY_LEN];
    canary_init(buf, 64);
    ota_dns_writer_t w;
    ota_dns_w_init(&w, buf, 64, 0, 0);
    ota_dns_w_name(&w, (const uint8_t *)"\x40");
    assert_false(ota_dns_w_ok(&w));
    assert_int_equal(ota_dns_w_finish(&w), 0);
    uint8_t unterminated[OTA_DNS_NAME_MAX];
    memset(unterminated, 1, sizeof unterminated); /* one-byte labels, no end */
    ota_dns_w_init(&w, buf, 64, 0, 0);
    ota_dns_w_name(&w, unterminated);
    assert_false(ota_dns_w_ok(&w));
    assert_int_equal(ota_dns_w_finish(&w), 0);
    ota_dns_w_init(&w, buf, 64, 0, 0);
    ota_dns_w_name_flat(&w, unterminated);
    assert_false(ota_dns_w_ok(&w));
    assert_int_equal(ota_dns_w_finish(&w), 0);
    canary_check(buf, 64);
    /* the root is a fine name: one zero byte */
    ota_dns_w_init(&w, buf, 64, 0, 0);
    ota_dns_w_name(&w, (const uint8_t *)"");
    ota_dns_w_name_flat(&w, (const uint8_t *)"");
    assert_int_equal(ota_dns_w_finish(&w), 14);
    assert_int_equal(buf[12], 0);
    assert_int_equal(buf[13], 0);
}

/* Every capacity from 0 to past the message: an overflow leaves w_ok false, finish
 * 0, nothing past cap, and what was written a prefix of the real message. */
static void test_writer_overflow_every_cap(void **state)
{
    (void)state;
    for (size_t cap = 0; cap <= sizeof written + 2; cap++) {
        uint8_t buf[sizeof written + 2 + CANARY_LEN];
        canary_init(buf, cap);
        ota_dns_writer_t w;
        int items = write_sample(&w, buf, cap, false);
        if (cap < sizeof written) {
            assert_false(ota_dns_w_ok(&w));
            assert_true(items < 4);
            assert_int_equal(ota_dns_w_finish(&w), 0);
            assert_true(w.len <= cap);
            /* a prefix of the message, but for the rdlength of a record whose end
             * was not reached (still the placeholder 0) */
            for (size_t i = 12; i < w.len; i++) {
                bool open_ptr = (i == 45 || i == 46) && w.len < 60;
                bool open_srv = (i == 70 || i == 71) && w.len < 96;
                bool open_a = (i == 117 || i == 118) && w.len < 123;
                assert_int_equal(buf[i], open_ptr || open_srv || open_a ? 0 : written[i]);
            }
            /* writing more after the overflow changes nothing */
            size_t len = w.len;
            ota_dns_w_u32(&w, 0xdeadbeef);
            ota_dns_w_name(&w, (const uint8_t *)"\1a");
            ota_dns_w_record_end(&w);
            assert_int_equal(w.len, len);
            assert_false(ota_dns_w_ok(&w));
        } else {
            assert_int_equal(items, 4);
            assert_int_equal(ota_dns_w_finish(&w), sizeof written);
            assert_memory_equal(buf, written, sizeof written);
        }
        canary_check(buf, cap);
    }
}

/* The responder's pattern: mark, write an item, rewind if it did not fit, send
 * what fits. For every capacity the result is a well-formed message. */
static void test_writer_mark_rewind_every_cap(void **state)
{
    (void)state;
    for (size_t cap = 12; cap <= sizeof written; cap++) {
        uint8_t buf[sizeof written + CANARY_LEN];
        canary_init(buf, cap);
        ota_dns_writer_t w;
        int items = write_sample(&w, buf, cap, true);
        assert_true(ota_dns_w_ok(&w));
        size_t n = ota_dns_w_finish(&w);
        assert_true(n >= 12 && n <= cap);
        canary_check(buf, cap);
        ota_dns_reader_t r;
        ota_dns_record_t rec;
        ota_dns_question_t q;
        uint8_t *msg = exact(buf, n);
        assert_int_equal(ota_dns_reader_init(&r, msg, n), 0);
        int got = 0, rc;
        while ((rc = ota_dns_next_question(&r, &q)) == 1)
            got++;
        assert_int_equal(rc, 0);
        while ((rc = ota_dns_next_record(&r, &rec)) == 1)
            got++;
        assert_int_equal(rc, 0);
        assert_int_equal(got, items);
        assert_int_equal(r.pos, n); /* nothing left over from a dropped item */
        if (n > 12)
            assert_memory_equal(msg + 12, written + 12, n - 12);
        free(msg);
    }
}

static void test_writer_rewind_restores_state(void **state)
{
    (void)state;
    uint8_t buf[200 + CANARY_LEN];
    uint8_t n[OTA_DNS_NAME_MAX];
    canary_init(buf, 200);
    ota_dns_writer_t w;
    ota_dns_w_init(&w, buf, 200, 7, OTA_DNS_FLAG_QR);
    flat(n, "x.local");
    ota_dns_w_question(&w, n, OTA_DNS_TYPE_ANY, OTA_DNS_CLASS_IN);
    ota_dns_mark_t mk = ota_dns_w_mark(&w);
    assert_int_equal(mk.len, 25);
    /* a record whose names register compression targets, then too much data */
    flat(n, "service.example.local");
    ota_dns_w_record_begin(&w, OTA_DNS_SEC_ANSWER, n, OTA_DNS_TYPE_TXT, 1, 1);
    uint8_t junk[300];
    memset(junk, 0xEE, sizeof junk);
    ota_dns_w_bytes(&w, junk, sizeof junk);
    ota_dns_w_record_end(&w);
    assert_false(ota_dns_w_ok(&w));
    ota_dns_w_rewind(&w, &mk);
    assert_true(ota_dns_w_ok(&w));
    assert_int_equal(w.len, 25);
    assert_int_equal(w.n_ptrs, mk.n_ptrs);
    /* overwrite the dropped bytes with something else, then write the same name:
     * it must not point at where the dropped record's name was */
    ota_dns_w_record_begin(&w, OTA_DNS_SEC_ANSWER, (const uint8_t *)"", 99, 1, 1);
    ota_dns_w_bytes(&w, junk, 20);
    ota_dns_w_record_end(&w);
    ota_dns_w_record_begin(&w, OTA_DNS_SEC_ADDITIONAL, n, OTA_DNS_TYPE_TXT, 1, 1);
    ota_dns_w_u8(&w, 0);
    ota_dns_w_record_end(&w);
    assert_true(ota_dns_w_ok(&w));
    size_t len = ota_dns_w_finish(&w);
    canary_check(buf, 200);

    ota_dns_reader_t r;
    ota_dns_record_t rec;
    assert_int_equal(ota_dns_reader_init(&r, buf, len), 0);
    assert_int_equal(r.hdr.qdcount, 1);
    assert_int_equal(r.hdr.ancount, 1);
    assert_int_equal(r.hdr.nscount, 0);
    assert_int_equal(r.hdr.arcount, 1);
    assert_int_equal(ota_dns_next_record(&r, &rec), 1);
    assert_name(rec.name, "");
    assert_int_equal(rec.type, 99);
    assert_int_equal(rec.rdlength, 20);
    assert_int_equal(ota_dns_next_record(&r, &rec), 1);
    assert_name(rec.name, "service.example.local");
    assert_int_equal(rec.rdlength, 1);
    assert_int_equal(ota_dns_next_record(&r, &rec), 0);
    assert_int_equal(r.pos, len);
}

/* A mark taken while the writer had already overflowed must not bring the writer
 * back to "ok": it would send a half-written item, or (when the header itself did
 * not fit) finish would write the counts past cap. */
static void test_writer_rewind_to_overflowed_mark(void **state)
{
    (void)state;
    uint8_t n[OTA_DNS_NAME_MAX];
    /* a buffer smaller than a header */
    uint8_t tiny[4 + CANARY_LEN];
    canary_init(tiny, 4);
    ota_dns_writer_t w;
    ota_dns_w_init(&w, tiny, 4, 0x1111, 0x2222);
    assert_false(ota_dns_w_ok(&w));
    ota_dns_mark_t mk = ota_dns_w_mark(&w);
    ota_dns_w_rewind(&w, &mk);
    assert_false(ota_dns_w_ok(&w));
    assert_int_equal(ota_dns_w_finish(&w), 0);
    canary_check(tiny, 4);

    /* a record whose data did not fit (its header, count included, did), then a
     * mark, a rewind and a record that fits exactly: "ok" here would send the first
     * record with rdlength 0 and the second one's bytes where its data should be */
    uint8_t buf[60 + CANARY_LEN];
    canary_init(buf, 60);
    ota_dns_w_init(&w, buf, 60, 0, 0);
    flat(n, "x.local");
    ota_dns_w_question(&w, n, OTA_DNS_TYPE_A, 1); /* 12..24 */
    flat(n, "somewhere.local");
    ota_dns_w_record_begin(&w, OTA_DNS_SEC_ANSWER, n, OTA_DNS_TYPE_A, 1, 1); /* 25..46 */
    assert_true(ota_dns_w_ok(&w));
    uint8_t data[20] = {0};
    ota_dns_w_bytes(&w, data, sizeof data);
    ota_dns_w_record_end(&w);
    assert_false(ota_dns_w_ok(&w));
    assert_int_equal(w.len, 47);
    mk = ota_dns_w_mark(&w);
    ota_dns_w_rewind(&w, &mk);
    assert_false(ota_dns_w_ok(&w));
    ota_dns_w_record_begin(&w, OTA_DNS_SEC_ANSWER, (const uint8_t *)"", 1, 1, 1); /* 11 */
    ota_dns_w_u16(&w, 0);                                                         /* 2 */
    ota_dns_w_record_end(&w);
    assert_false(ota_dns_w_ok(&w));
    assert_int_equal(ota_dns_w_finish(&w), 0);
    canary_check(buf, 60);
}

static void test_writer_integers_and_rdlength(void **state)
{
    (void)state;
    uint8_t buf[600 + CANARY_LEN];
    canary_init(buf, 600);
    ota_dns_writer_t w;
    ota_dns_w_init(&w, buf, 600, 0xBEEF, 0x8400);
    assert_memory_equal(buf, "\xbe\xef\x84\x00", 4);
    ota_dns_w_record_begin(&w, OTA_DNS_SEC_AUTHORITY, (const uint8_t *)"\1h", 0x1234, 0x8001,
                           0xA1B2C3D4u);
    assert_int_equal(w.rdlength_at, 12 + 3 + 8);
    ota_dns_w_u8(&w, 0x01);
    ota_dns_w_u16(&w, 0x0203);
    ota_dns_w_u32(&w, 0x04050607u);
    ota_dns_w_record_end(&w);
    size_t first_end = w.len;
    /* a long rdata: the length's high byte is patched too */
    ota_dns_w_record_begin(&w, OTA_DNS_SEC_ADDITIONAL, (const uint8_t *)"\1h", 16, 1, 0);
    uint8_t data[300];
    for (size_t i = 0; i < sizeof data; i++)
        data[i] = (uint8_t)i;
    ota_dns_w_bytes(&w, data, sizeof data);
    ota_dns_w_record_end(&w);
    /* an empty rdata */
    ota_dns_w_record_begin(&w, OTA_DNS_SEC_ADDITIONAL, (const uint8_t *)"\1h", 16, 1, 0);
    ota_dns_w_record_end(&w);
    size_t len = ota_dns_w_finish(&w);
    assert_true(len > 0);
    canary_check(buf, 600);
    static const uint8_t first[] = {1, 'h', 0, 0x12, 0x34, 0x80, 0x01, 0xa1, 0xb2, 0xc3, 0xd4,
                                    0x00, 0x07, 1, 2, 3, 4, 5, 6, 7};
    assert_memory_equal(buf + 12, first, sizeof first);
    assert_int_equal(first_end, 12 + sizeof first);
    assert_memory_equal(buf + 4, "\x00\x00\x00\x00\x00\x01\x00\x02", 8);

    ota_dns_reader_t r;
    ota_dns_record_t rec;
    assert_int_equal(ota_dns_reader_init(&r, buf, len), 0);
    assert_int_equal(ota_dns_next_record(&r, &rec), 1);
    assert_int_equal(rec.section, OTA_DNS_SEC_AUTHORITY);
    assert_int_equal(rec.ttl, 0xA1B2C3D4u);
    assert_int_equal(rec.rdlength, 7);
    assert_int_equal(ota_dns_next_record(&r, &rec), 1);
    assert_int_equal(rec.section, OTA_DNS_SEC_ADDITIONAL);
    assert_name(rec.name, "h"); /* compressed against the first record's name */
    assert_int_equal(rec.rdlength, 300);
    assert_int_equal(buf[rec.rdata - 2], 0x01);
    assert_int_equal(buf[rec.rdata - 1], 0x2c);
    assert_memory_equal(buf + rec.rdata, data, sizeof data);
    assert_int_equal(ota_dns_next_record(&r, &rec), 1);
    assert_int_equal(rec.rdlength, 0);
    assert_int_equal(ota_dns_next_record(&r, &rec), 0);
    assert_int_equal(r.pos, len);
}

/* name_flat never compresses, even against an identical earlier name, and adds no
 * compression target (the responder's SRV target and probe tie-break data). */
static void test_writer_name_flat(void **state)
{
    (void)state;
    uint8_t buf[128];
    uint8_t n[OTA_DNS_NAME_MAX];
    ota_dns_writer_t w;
    ota_dns_w_init(&w, buf, sizeof buf, 0, 0);
    flat(n, "host.local");
    ota_dns_w_name(&w, n);      /* 12 */
    ota_dns_w_name_flat(&w, n); /* 24 */
    assert_int_equal(w.len, 36);
    assert_memory_equal(buf + 24, n, 12);
    unsigned ptrs = w.n_ptrs;
    ota_dns_w_name_flat(&w, (const uint8_t *)"\5other\5local");
    assert_int_equal(w.n_ptrs, ptrs);
    ota_dns_w_name(&w, n); /* compressed against the first, at 12 */
    assert_int_equal(buf[w.len - 2], 0xc0);
    assert_int_equal(buf[w.len - 1], 12);
    ota_dns_w_name(&w, (const uint8_t *)"\5other\5local"); /* only "local" is known */
    assert_memory_equal(buf + w.len - 8, "\5other\xc0\x11", 8);
}

/* More names than compression slots, and names past the 14-bit pointer range:
 * still correct, just less compressed. */
static void test_writer_many_names_and_far_offsets(void **state)
{
    (void)state;
    static uint8_t buf[20000 + CANARY_LEN];
    canary_init(buf, 20000);
    uint8_t n[OTA_DNS_NAME_MAX];
    char text[32];
    ota_dns_writer_t w;
    ota_dns_w_init(&w, buf, 20000, 0, OTA_DNS_FLAG_QR);
    for (int i = 0; i < 40; i++) {
        n[0] = 0;
        text[0] = (char)('a' + i % 26);
        text[1] = (char)('0' + i / 26);
        text[2] = '\0';
        ota_dns_name_append_dotted(n, text);
        ota_dns_name_append_dotted(n, "dom.local");
        ota_dns_w_question(&w, n, OTA_DNS_TYPE_A, 1);
    }
    assert_int_equal(w.n_ptrs, OTA_DNS_WRITER_PTRS);
    /* a 16500-byte record pushes the next names past offset 0x3FFF */
    ota_dns_w_record_begin(&w, OTA_DNS_SEC_ANSWER, (const uint8_t *)"\3big\3dom\5local", 16, 1,
                           1);
    static uint8_t fill[16500];
    memset(fill, 'f', sizeof fill);
    ota_dns_w_bytes(&w, fill, sizeof fill);
    ota_dns_w_record_end(&w);
    assert_true(w.len > 0x3FFF);
    for (int i = 0; i < 3; i++) {
        flat(n, i == 2 ? "a0.dom.local" : "far.away.example");
        ota_dns_w_record_begin(&w, OTA_DNS_SEC_ANSWER, n, OTA_DNS_TYPE_A, 1, 1);
        ota_dns_w_u32(&w, (uint32_t)i);
        ota_dns_w_record_end(&w);
    }
    size_t len = ota_dns_w_finish(&w);
    assert_true(len > 0);
    canary_check(buf, 20000);

    ota_dns_reader_t r;
    ota_dns_question_t q;
    ota_dns_record_t rec;
    uint8_t *msg = exact(buf, len);
    assert_int_equal(ota_dns_reader_init(&r, msg, len), 0);
    assert_int_equal(r.hdr.qdcount, 40);
    for (int i = 0; i < 40; i++) {
        assert_int_equal(ota_dns_next_question(&r, &q), 1);
        assert_int_equal(q.name[0], 2);
        assert_int_equal(q.name[1], 'a' + i % 26);
        assert_int_equal(q.name[2], '0' + i / 26);
        assert_name(q.name + 3, "dom.local");
    }
    assert_int_equal(ota_dns_next_record(&r, &rec), 1);
    assert_name(rec.name, "big.dom.local");
    assert_int_equal(rec.rdlength, 16500);
    assert_int_equal(ota_dns_next_record(&r, &rec), 1);
    assert_name(rec.name, "far.away.example");
    assert_true(rec.rdata > 0x3FFF);
    assert_int_equal(ota_dns_next_record(&r, &rec), 1);
    assert_name(rec.name, "far.away.example");
    assert_int_equal(ota_dns_next_record(&r, &rec), 1);
    assert_name(rec.name, "a0.dom.local");
    assert_int_equal(ota_dns_next_record(&r, &rec), 0);
    assert_int_equal(r.pos, len);
    free(msg);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_read_avahi_response),
        cmocka_unit_test(test_read_avahi_truncated_everywhere),
        cmocka_unit_test(test_questions_qu_bit_and_sections),
        cmocka_unit_test(test_next_record_skips_questions),
        cmocka_unit_test(test_short_and_empty_messages),
        cmocka_unit_test(test_truncated_question_and_record),
        cmocka_unit_test(test_truncated_names),
        cmocka_unit_test(test_compression_loops_and_forward_pointers),
        cmocka_unit_test(test_pointer_chains),
        cmocka_unit_test(test_extended_label_types),
        cmocka_unit_test(test_name_length_limit_after_expansion),
        cmocka_unit_test(test_huge_counts_end_quickly),
        cmocka_unit_test(test_name_len_and_eq),
        cmocka_unit_test(test_append_dotted),
        cmocka_unit_test(test_append_label),
        cmocka_unit_test(test_first_label),
        cmocka_unit_test(test_name_to_text),
        cmocka_unit_test(test_name_parent),
        cmocka_unit_test(test_writer_compression),
        cmocka_unit_test(test_writer_rejects_bad_names),
        cmocka_unit_test(test_writer_overflow_every_cap),
        cmocka_unit_test(test_writer_mark_rewind_every_cap),
        cmocka_unit_test(test_writer_rewind_restores_state),
        cmocka_unit_test(test_writer_rewind_to_overflowed_mark),
        cmocka_unit_test(test_writer_integers_and_rdlength),
        cmocka_unit_test(test_writer_name_flat),
        cmocka_unit_test(test_writer_many_names_and_far_offsets),
    };
    return cmocka_run_group_tests_name("dns", tests, NULL, NULL);
}
