/*
 * ota/util.h - small freestanding helpers of the core: hex, big-endian integers,
 * constant-time comparison, wiping secrets, wraparound-safe time, log formatting.
 */
#ifndef OTA_UTIL_H
#define OTA_UTIL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/** Write 2*len lowercase hex characters of in[0..len) to out (no NUL). */
void ota_hex_encode(const uint8_t *in, size_t len, char *out);

/** Decode 2*len hex characters (either case) into out[0..len).
 *  \return 0, or -1 on a non-hex character (out is then unspecified). */
int ota_hex_decode(const char *in, size_t len, uint8_t *out);

/** Compare len bytes in time independent of their contents. true when equal. */
bool ota_ct_equal(const void *a, const void *b, size_t len);

/** Overwrite len bytes with zeros in a way the compiler does not remove. */
void ota_wipe(void *p, size_t len);

uint32_t ota_be32_get(const uint8_t *p);
void ota_be32_put(uint8_t *p, uint32_t v);

/** Milliseconds from `since` to `now` on a free-running 32-bit clock (wraps). */
static inline uint32_t ota_elapsed_ms(uint32_t now, uint32_t since)
{
    return (uint32_t)(now - since);
}

/** Brute-force back-off: the wait owed after `failures` failed logins in a row. None
 *  for the first `free_failures` of them, then base_ms, doubling per further failure, at most
 *  max_ms; base_ms 0 turns it off. Shared by the OTA server and the ports' log
 *  viewers so that every login path backs off alike. */
uint32_t ota_backoff_ms(uint32_t failures, uint32_t free_failures, uint32_t base_ms,
                        uint32_t max_ms);

/** Standard base64 (RFC 4648, with padding) of in[0..len) into out, NUL-terminated.
 *  \return the text length, or 0 if cap is too small (needs 4*ceil(len/3)+1). */
size_t ota_base64_encode(const uint8_t *in, size_t len, char *out, size_t cap);

/** Decode exactly in_len characters of standard padded base64 into out (at most cap
 *  bytes). \return the decoded length, or -1 on bad input or a too small cap. */
int ota_base64_decode(const char *in, size_t in_len, uint8_t *out, size_t cap);

/** A bounded string builder for log lines (the core has no stdio/stdarg):
 *  appends never overflow, the text is always NUL-terminated, excess is cut. */
typedef struct ota_strbuf {
    char *buf;
    size_t cap;
    size_t len;
} ota_strbuf_t;

void ota_sb_init(ota_strbuf_t *sb, char *buf, size_t cap);
void ota_sb_str(ota_strbuf_t *sb, const char *s);
void ota_sb_u32(ota_strbuf_t *sb, uint32_t v);
void ota_sb_i32(ota_strbuf_t *sb, int32_t v);
/** Append "0x" and two hex digits. */
void ota_sb_hex8(ota_strbuf_t *sb, uint8_t v);

#endif /* OTA_UTIL_H */
