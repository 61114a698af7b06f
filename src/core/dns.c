/*
 * dns.c - DNS message reader and writer (ota/dns.h), shared by the node's mDNS
 * responder and the host tool. No allocation; every read is bounds-checked.
 */
#include "ota/dns.h"

#include <string.h>

#include "ota/errors.h"

static uint16_t get16(const uint8_t *p)
{
    return (uint16_t)((uint16_t)p[0] << 8 | p[1]);
}

static uint8_t lower(uint8_t c)
{
    return (c >= 'A' && c <= 'Z') ? (uint8_t)(c + 32) : c;
}

/* ------------------------------------------------------------------ names */

int ota_dns_read_name(const uint8_t *msg, size_t len, size_t off, uint8_t *out, size_t *end)
{
    size_t o = 0;         /* bytes written to out */
    size_t pos = off;
    size_t seg_start = off; /* where the labels being read began */
    bool jumped = false;
    unsigned jumps = 0;
    for (;;) {
        if (pos >= len)
            return OTA_ERR_MALFORMED;
        uint8_t b = msg[pos];
        if ((b & 0xC0u) == 0xC0u) {
            if (pos + 1 >= len)
                return OTA_ERR_MALFORMED;
            size_t target = (size_t)(b & 0x3Fu) << 8 | msg[pos + 1];
            if (!jumped && end != NULL)
                *end = pos + 2;
            jumped = true;
            /* every jump must land before the previous one's start: the targets
             * strictly decrease, so no message can make this loop */
            if (target >= seg_start)
                return OTA_ERR_MALFORMED;
            /* a long chain of valid pointers would make reading a message cost the
             * square of its size; no real name needs this many */
            if (++jumps > OTA_DNS_MAX_JUMPS)
                return OTA_ERR_MALFORMED;
            seg_start = target;
            pos = target;
            continue;
        }
        if ((b & 0xC0u) != 0)
            return OTA_ERR_MALFORMED; /* 0x40/0x80: extended label types, not in mDNS */
        if (b == 0) {
            out[o++] = 0; /* o + 1 <= OTA_DNS_NAME_MAX, see below */
            if (!jumped && end != NULL)
                *end = pos + 1;
            return (int)o;
        }
        /* room for this label and at least the final zero */
        if (pos + 1 + b > len || o + 1 + b + 1 > OTA_DNS_NAME_MAX)
            return OTA_ERR_MALFORMED;
        memcpy(out + o, msg + pos, (size_t)b + 1);
        o += (size_t)b + 1;
        pos += (size_t)b + 1;
    }
}

size_t ota_dns_name_len(const uint8_t *flat)
{
    size_t o = 0;
    while (o < OTA_DNS_NAME_MAX) {
        uint8_t b = flat[o];
        if (b == 0)
            return o + 1;
        if (b > OTA_DNS_LABEL_MAX)
            return 0;
        o += (size_t)b + 1;
    }
    return 0;
}

bool ota_dns_name_eq(const uint8_t *a, const uint8_t *b)
{
    size_t la = ota_dns_name_len(a), lb = ota_dns_name_len(b);
    if (la == 0 || la != lb)
        return false;
    for (size_t i = 0; i < la; i++)
        if (lower(a[i]) != lower(b[i]))
            return false; /* length bytes are < 64, lower() leaves them alone */
    return true;
}

size_t ota_dns_name_append_label(uint8_t *out, const char *label, size_t label_len)
{
    size_t l = ota_dns_name_len(out);
    if (l == 0 || label_len == 0 || label_len > OTA_DNS_LABEL_MAX ||
        l + 1 + label_len > OTA_DNS_NAME_MAX)
        return 0;
    size_t at = l - 1; /* over the final zero */
    out[at] = (uint8_t)label_len;
    memcpy(out + at + 1, label, label_len);
    out[at + 1 + label_len] = 0;
    return l + 1 + label_len;
}

size_t ota_dns_name_append_dotted(uint8_t *out, const char *dotted)
{
    size_t l = ota_dns_name_len(out);
    const char *s = dotted;
    while (*s != '\0') {
        const char *dot = s;
        while (*dot != '\0' && *dot != '.')
            dot++;
        l = ota_dns_name_append_label(out, s, (size_t)(dot - s));
        if (l == 0)
            return 0;
        s = *dot == '.' ? dot + 1 : dot;
        if (*dot == '.' && *s == '\0')
            break; /* a trailing dot: the root */
    }
    return l;
}

void ota_dns_first_label(const uint8_t *flat, char *out, size_t cap)
{
    if (cap == 0)
        return;
    size_t n = flat[0] <= OTA_DNS_LABEL_MAX ? flat[0] : 0;
    if (n > cap - 1)
        n = cap - 1;
    memcpy(out, flat + 1, n);
    out[n] = '\0';
}

int ota_dns_name_to_text(const uint8_t *flat, char *out, size_t cap)
{
    size_t o = 0, i = 0;
    if (ota_dns_name_len(flat) == 0)
        return OTA_ERR_MALFORMED;
    if (cap == 0)
        return OTA_ERR_TOO_LONG;
    while (flat[i] != 0) {
        uint8_t n = flat[i++];
        if (o > 0) {
            if (o + 1 >= cap)
                return OTA_ERR_TOO_LONG;
            out[o++] = '.';
        }
        for (uint8_t k = 0; k < n; k++, i++) {
            uint8_t c = flat[i];
            char esc[4];
            size_t el;
            if (c == '.' || c == '\\') {
                esc[0] = '\\';
                esc[1] = (char)c;
                el = 2;
            } else if (c < 0x20 || c > 0x7e) {
                esc[0] = '\\';
                esc[1] = (char)('0' + c / 100);
                esc[2] = (char)('0' + c / 10 % 10);
                esc[3] = (char)('0' + c % 10);
                el = 4;
            } else {
                esc[0] = (char)c;
                el = 1;
            }
            if (o + el >= cap)
                return OTA_ERR_TOO_LONG;
            memcpy(out + o, esc, el);
            o += el;
        }
    }
    if (o == 0) {
        if (cap < 2)
            return OTA_ERR_TOO_LONG;
        out[o++] = '.';
    }
    out[o] = '\0';
    return 0;
}

const uint8_t *ota_dns_name_parent(const uint8_t *flat)
{
    return flat[0] == 0 ? flat : flat + 1 + flat[0];
}

/* ------------------------------------------------------------------ reading */

int ota_dns_reader_init(ota_dns_reader_t *r, const uint8_t *msg, size_t len)
{
    memset(r, 0, sizeof *r);
    if (len < OTA_DNS_HEADER_LEN)
        return OTA_ERR_MALFORMED;
    r->msg = msg;
    r->len = len;
    r->pos = OTA_DNS_HEADER_LEN;
    r->hdr.id = get16(msg);
    r->hdr.flags = get16(msg + 2);
    r->hdr.qdcount = get16(msg + 4);
    r->hdr.ancount = get16(msg + 6);
    r->hdr.nscount = get16(msg + 8);
    r->hdr.arcount = get16(msg + 10);
    r->questions_left = r->hdr.qdcount;
    r->records_left[0] = r->hdr.ancount;
    r->records_left[1] = r->hdr.nscount;
    r->records_left[2] = r->hdr.arcount;
    return 0;
}

int ota_dns_next_question(ota_dns_reader_t *r, ota_dns_question_t *q)
{
    if (r->questions_left == 0)
        return 0;
    size_t end;
    if (ota_dns_read_name(r->msg, r->len, r->pos, q->name, &end) < 0 || end + 4 > r->len) {
        r->questions_left = 0; /* a huge count on a short message ends here */
        r->records_left[0] = r->records_left[1] = r->records_left[2] = 0;
        return OTA_ERR_MALFORMED;
    }
    q->type = get16(r->msg + end);
    q->qclass = get16(r->msg + end + 2);
    r->pos = end + 4;
    r->questions_left--;
    return 1;
}

int ota_dns_next_record(ota_dns_reader_t *r, ota_dns_record_t *rec)
{
    ota_dns_question_t skip;
    while (r->questions_left > 0) {
        int rc = ota_dns_next_question(r, &skip);
        if (rc < 0)
            return OTA_ERR_MALFORMED;
    }
    unsigned s = 0;
    while (s < 3 && r->records_left[s] == 0)
        s++;
    if (s == 3)
        return 0;
    size_t end;
    if (ota_dns_read_name(r->msg, r->len, r->pos, rec->name, &end) < 0 || end + 10 > r->len)
        goto bad;
    rec->type = get16(r->msg + end);
    rec->rclass = get16(r->msg + end + 2);
    rec->ttl = (uint32_t)get16(r->msg + end + 4) << 16 | get16(r->msg + end + 6);
    rec->rdlength = get16(r->msg + end + 8);
    rec->rdata = end + 10;
    rec->section = (ota_dns_section_t)s;
    if (rec->rdata + rec->rdlength > r->len)
        goto bad;
    r->pos = rec->rdata + rec->rdlength;
    r->records_left[s]--;
    return 1;
bad:
    r->records_left[0] = r->records_left[1] = r->records_left[2] = 0;
    return OTA_ERR_MALFORMED;
}

/* ------------------------------------------------------------------ writing */

static void put(ota_dns_writer_t *w, const void *data, size_t len)
{
    if (w->overflow || len > w->cap - w->len) {
        w->overflow = true;
        return;
    }
    memcpy(w->buf + w->len, data, len);
    w->len += len;
}

void ota_dns_w_init(ota_dns_writer_t *w, uint8_t *buf, size_t cap, uint16_t id, uint16_t flags)
{
    memset(w, 0, sizeof *w);
    w->buf = buf;
    w->cap = cap;
    ota_dns_w_u16(w, id);
    ota_dns_w_u16(w, flags);
    uint8_t zero[8] = {0};
    put(w, zero, sizeof zero);
}

bool ota_dns_w_ok(const ota_dns_writer_t *w)
{
    return !w->overflow;
}

size_t ota_dns_w_finish(ota_dns_writer_t *w)
{
    if (w->overflow)
        return 0;
    for (unsigned i = 0; i < 4; i++) {
        w->buf[4 + 2 * i] = (uint8_t)(w->counts[i] >> 8);
        w->buf[5 + 2 * i] = (uint8_t)w->counts[i];
    }
    return w->len;
}

ota_dns_mark_t ota_dns_w_mark(const ota_dns_writer_t *w)
{
    ota_dns_mark_t m;
    /* a mark taken after an overflow is one: rewinding to it must not make a
     * half-written item, or a message whose header did not fit, look whole */
    m.len = w->overflow ? SIZE_MAX : w->len;
    memcpy(m.counts, w->counts, sizeof m.counts);
    m.n_ptrs = w->n_ptrs;
    return m;
}

void ota_dns_w_rewind(ota_dns_writer_t *w, const ota_dns_mark_t *m)
{
    if (m->len > w->len) { /* an overflowed mark, or one from past this point */
        w->overflow = true;
        return;
    }
    w->len = m->len;
    memcpy(w->counts, m->counts, sizeof w->counts);
    w->n_ptrs = m->n_ptrs;
    w->overflow = false;
}

void ota_dns_w_bytes(ota_dns_writer_t *w, const void *data, size_t len)
{
    put(w, data, len);
}

void ota_dns_w_u8(ota_dns_writer_t *w, uint8_t v)
{
    put(w, &v, 1);
}

void ota_dns_w_u16(ota_dns_writer_t *w, uint16_t v)
{
    uint8_t b[2] = {(uint8_t)(v >> 8), (uint8_t)v};
    put(w, b, 2);
}

void ota_dns_w_u32(ota_dns_writer_t *w, uint32_t v)
{
    uint8_t b[4] = {(uint8_t)(v >> 24), (uint8_t)(v >> 16), (uint8_t)(v >> 8), (uint8_t)v};
    put(w, b, 4);
}

void ota_dns_w_name_flat(ota_dns_writer_t *w, const uint8_t *flat)
{
    size_t l = ota_dns_name_len(flat);
    if (l == 0) {
        w->overflow = true; /* a caller's bug: refuse to write a broken message */
        return;
    }
    put(w, flat, l);
}

void ota_dns_w_name(ota_dns_writer_t *w, const uint8_t *flat)
{
    if (ota_dns_name_len(flat) == 0) {
        w->overflow = true;
        return;
    }
    /* for every suffix of the name, longest first: is it already in the message? */
    const uint8_t *s = flat;
    uint8_t seen[OTA_DNS_NAME_MAX];
    while (*s != 0) {
        for (unsigned i = 0; i < w->n_ptrs; i++) {
            if (ota_dns_read_name(w->buf, w->len, w->ptrs[i], seen, NULL) > 0 &&
                ota_dns_name_eq(seen, s)) {
                ota_dns_w_u16(w, (uint16_t)(0xC000u | w->ptrs[i]));
                return;
            }
        }
        /* not there: write this label and remember where its suffix starts */
        if (w->n_ptrs < OTA_DNS_WRITER_PTRS && w->len < 0x3FFFu && !w->overflow)
            w->ptrs[w->n_ptrs++] = (uint16_t)w->len;
        put(w, s, (size_t)s[0] + 1);
        s += s[0] + 1;
    }
    ota_dns_w_u8(w, 0);
}

void ota_dns_w_question(ota_dns_writer_t *w, const uint8_t *flat, uint16_t type, uint16_t qclass)
{
    ota_dns_w_name(w, flat);
    ota_dns_w_u16(w, type);
    ota_dns_w_u16(w, qclass);
    if (!w->overflow)
        w->counts[0]++;
}

void ota_dns_w_record_begin(ota_dns_writer_t *w, ota_dns_section_t sec, const uint8_t *flat,
                            uint16_t type, uint16_t rclass, uint32_t ttl)
{
    ota_dns_w_name(w, flat);
    ota_dns_w_u16(w, type);
    ota_dns_w_u16(w, rclass);
    ota_dns_w_u32(w, ttl);
    w->rdlength_at = w->len;
    ota_dns_w_u16(w, 0);
    if (!w->overflow)
        w->counts[1 + (unsigned)sec]++;
}

void ota_dns_w_record_end(ota_dns_writer_t *w)
{
    if (w->overflow)
        return;
    size_t n = w->len - w->rdlength_at - 2;
    w->buf[w->rdlength_at] = (uint8_t)(n >> 8);
    w->buf[w->rdlength_at + 1] = (uint8_t)n;
}
