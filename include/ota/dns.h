/*
 * ota/dns.h - reading and writing DNS messages (RFC 1035), the wire format of
 * mDNS (RFC 6762) and DNS-SD (RFC 6763).
 *
 * Portable and allocation-free: the node's responder (ota/mdns.h) and the host
 * tool's resolver and browser (`ota upload x.local`, `ota discover`) share it, and
 * a fuzz target covers the reader. Every read is bounds-checked against the
 * message; a malformed message makes a read fail, never reach outside it.
 *
 * Names are handled in their uncompressed wire form ("flat" names: length-prefixed
 * labels ending with a zero byte, at most OTA_DNS_NAME_MAX bytes), which can be
 * compared case-insensitively with ota_dns_name_eq(). The reader expands
 * compression pointers and only follows pointers that go strictly backwards, so a
 * compression loop cannot make it spin.
 *
 * Results follow ota/errors.h: failures are negative OTA_ERR_* codes
 * (OTA_ERR_MALFORMED: the message or name is not well formed; OTA_ERR_TOO_LONG: the
 * output does not fit). Where a result is a count or "read one / none left" by
 * design, 0 and positive values keep that meaning, as each function says.
 */
#ifndef OTA_DNS_H
#define OTA_DNS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define OTA_DNS_TYPE_A 1u
#define OTA_DNS_TYPE_PTR 12u
#define OTA_DNS_TYPE_TXT 16u
#define OTA_DNS_TYPE_AAAA 28u
#define OTA_DNS_TYPE_SRV 33u
#define OTA_DNS_TYPE_NSEC 47u
#define OTA_DNS_TYPE_ANY 255u

#define OTA_DNS_CLASS_IN 1u
#define OTA_DNS_CLASS_ANY 255u
/** Top bit of a question's class: "unicast response wanted" (QU, RFC 6762 5.4);
 *  of a record's class: "cache flush" (unique record, RFC 6762 10.2). */
#define OTA_DNS_CLASS_TOP 0x8000u

#define OTA_DNS_FLAG_QR 0x8000u /* a response */
#define OTA_DNS_FLAG_AA 0x0400u /* authoritative */
#define OTA_DNS_FLAG_TC 0x0200u /* truncated: more known answers follow */
#define OTA_DNS_OPCODE_MASK 0x7800u

#define OTA_DNS_HEADER_LEN 12u
#define OTA_DNS_NAME_MAX 255u  /* a flat name, with its final zero byte */
#define OTA_DNS_LABEL_MAX 63u
#define OTA_DNS_MAX_JUMPS 64u  /* compression pointers followed per name */

typedef struct ota_dns_header {
    uint16_t id, flags;
    uint16_t qdcount, ancount, nscount, arcount;
} ota_dns_header_t;

/* ------------------------------------------------------------------ reading */

/** A reader walks one message: the questions, then every resource record of the
 *  answer, authority and additional sections in order. */
typedef struct ota_dns_reader {
    const uint8_t *msg;
    size_t len;
    size_t pos;
    ota_dns_header_t hdr;
    uint32_t questions_left;
    uint32_t records_left[3]; /* answer, authority, additional */
} ota_dns_reader_t;

typedef enum ota_dns_section {
    OTA_DNS_SEC_ANSWER = 0,
    OTA_DNS_SEC_AUTHORITY = 1,
    OTA_DNS_SEC_ADDITIONAL = 2
} ota_dns_section_t;

typedef struct ota_dns_question {
    uint8_t name[OTA_DNS_NAME_MAX]; /* flat */
    uint16_t type;
    uint16_t qclass; /* with the QU bit */
} ota_dns_question_t;

typedef struct ota_dns_record {
    uint8_t name[OTA_DNS_NAME_MAX]; /* flat */
    uint16_t type;
    uint16_t rclass; /* with the cache-flush bit */
    uint32_t ttl;
    ota_dns_section_t section;
    size_t rdata;      /* offset of the record data in the message */
    uint16_t rdlength;
} ota_dns_record_t;

/** Start reading msg. \return 0, OTA_ERR_MALFORMED (shorter than a header). */
int ota_dns_reader_init(ota_dns_reader_t *r, const uint8_t *msg, size_t len);

/** The next question. \return 1 (one read: a yes/no by design), 0 (no questions
 *  left), OTA_ERR_MALFORMED (then nothing more is read from r). */
int ota_dns_next_question(ota_dns_reader_t *r, ota_dns_question_t *q);

/** The next resource record (skips any unread questions first).
 *  \return 1 (one read: a yes/no by design), 0 (no records left),
 *  OTA_ERR_MALFORMED (then nothing more is read from r). */
int ota_dns_next_record(ota_dns_reader_t *r, ota_dns_record_t *rec);

/** Expand the (possibly compressed) name at offset off of msg into out as a flat
 *  name. *end, when not NULL, gets the offset just after the name's bytes at off.
 *  \return the flat name's length (>= 1: a count by design), OTA_ERR_MALFORMED
 *  (malformed, a compression loop, longer than OTA_DNS_NAME_MAX). */
int ota_dns_read_name(const uint8_t *msg, size_t len, size_t off, uint8_t *out, size_t *end);

/* ------------------------------------------------------------------ names */

/** Length of a flat name including its final zero byte, 0 when not well formed
 *  within OTA_DNS_NAME_MAX. */
size_t ota_dns_name_len(const uint8_t *flat);

/** Flat names equal, ASCII case-insensitively (RFC 1035 2.3.3). */
bool ota_dns_name_eq(const uint8_t *a, const uint8_t *b);

/** Append the dotted text name (e.g. "_ota._tcp.local") as labels to the flat name
 *  in out (which may be just "\0"). \return new length, 0 (too long / empty label). */
size_t ota_dns_name_append_dotted(uint8_t *out, const char *dotted);

/** Append one label verbatim (may contain dots or spaces, as a DNS-SD instance
 *  name does). \return new length, 0 (too long / empty). */
size_t ota_dns_name_append_label(uint8_t *out, const char *label, size_t label_len);

/** The first label of a flat name as text (bytes verbatim, NUL-terminated, cut to
 *  cap - 1). */
void ota_dns_first_label(const uint8_t *flat, char *out, size_t cap);

/** Dotted text of a flat name; dots and backslashes inside labels are escaped
 *  with a backslash, other bytes outside 0x20..0x7e as \DDD.
 *  \return 0, OTA_ERR_TOO_LONG (the text does not fit cap), OTA_ERR_MALFORMED (flat
 *  is not a well-formed name). */
int ota_dns_name_to_text(const uint8_t *flat, char *out, size_t cap);

/** Skip the first label: the parent name, within the same buffer. */
const uint8_t *ota_dns_name_parent(const uint8_t *flat);

/* ------------------------------------------------------------------ writing */

#define OTA_DNS_WRITER_PTRS 24

/** A writer builds one message into a caller's buffer, compressing names against
 *  the names already written. On overflow it stops writing and remembers it
 *  (ota_dns_w_ok() turns false); ota_dns_w_mark()/ota_dns_w_rewind() let a caller
 *  drop a record that did not fit and send what it has. A mark taken after an
 *  overflow stays an overflow: rewinding to it keeps the writer failed. */
typedef struct ota_dns_writer {
    uint8_t *buf;
    size_t cap;
    size_t len;
    bool overflow;
    uint16_t counts[4]; /* questions, answers, authority, additional */
    uint16_t ptrs[OTA_DNS_WRITER_PTRS]; /* offsets of names' suffixes, for compression */
    unsigned n_ptrs;
    size_t rdlength_at; /* where the open record's rdlength goes */
} ota_dns_writer_t;

typedef struct ota_dns_mark {
    size_t len;
    uint16_t counts[4];
    unsigned n_ptrs;
} ota_dns_mark_t;

void ota_dns_w_init(ota_dns_writer_t *w, uint8_t *buf, size_t cap, uint16_t id, uint16_t flags);
bool ota_dns_w_ok(const ota_dns_writer_t *w);
/** Write the section counts into the header. \return the message length, 0 on overflow. */
size_t ota_dns_w_finish(ota_dns_writer_t *w);
ota_dns_mark_t ota_dns_w_mark(const ota_dns_writer_t *w);
void ota_dns_w_rewind(ota_dns_writer_t *w, const ota_dns_mark_t *m);

/** A name, compressed against the names written before. */
void ota_dns_w_name(ota_dns_writer_t *w, const uint8_t *flat);
void ota_dns_w_question(ota_dns_writer_t *w, const uint8_t *flat, uint16_t type, uint16_t qclass);
/** Open a record in a section (sections must be written in order); write its data
 *  with the w_rd_* functions, then close it with ota_dns_w_record_end(). */
void ota_dns_w_record_begin(ota_dns_writer_t *w, ota_dns_section_t sec, const uint8_t *flat,
                            uint16_t type, uint16_t rclass, uint32_t ttl);
void ota_dns_w_record_end(ota_dns_writer_t *w);
void ota_dns_w_bytes(ota_dns_writer_t *w, const void *data, size_t len);
void ota_dns_w_u8(ota_dns_writer_t *w, uint8_t v);
void ota_dns_w_u16(ota_dns_writer_t *w, uint16_t v);
void ota_dns_w_u32(ota_dns_writer_t *w, uint32_t v);
/** A name inside record data, without compression (RFC 6762 18.14 allows it, but
 *  uncompressed data is what a probe's tie-break compares). */
void ota_dns_w_name_flat(ota_dns_writer_t *w, const uint8_t *flat);

#endif /* OTA_DNS_H */
