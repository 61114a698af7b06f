/*
 * manifest.c - the update manifest (ota/manifest.h, docs/protocol.md#manifest): a
 * strict, allocation-free JSON reader specialised to the keys a node needs, the
 * rollout bucket, the take-or-not decision and the detached signature check.
 *
 * The reader is a recursive descent over the buffer with a cursor. Generic values
 * are skipped (and so validated); the four objects we interpret (the top, a build,
 * its ota) have their own member handlers. A build's keys may come in any order, so
 * the position of its "ota" value is remembered and that value is read a second
 * time, into the result, once "chipFamily" is known to match: that happens for one
 * build at most, so the whole parse reads every byte at most twice.
 */
#include "ota/manifest.h"

#if OTA_CFG_ENABLE_PULL

#include <string.h>

#define KEY_MAX 16u /* longer keys are none of ours ("secure_version" is the longest) */

typedef struct cursor {
    const uint8_t *s;
    size_t n;
    size_t i;
    ota_manifest_error_t err; /* the first error, OTA_MANIFEST_OK while none */
    size_t err_at;
} cursor_t;

/* Record the first error at the cursor. \return -1 for the callers' `return`. */
static int fail(cursor_t *c, ota_manifest_error_t e)
{
    if (c->err == OTA_MANIFEST_OK) {
        c->err = e;
        c->err_at = c->i;
    }
    return -1;
}

static void skip_ws(cursor_t *c)
{
    while (c->i < c->n) {
        uint8_t b = c->s[c->i];
        if (b != ' ' && b != '\t' && b != '\n' && b != '\r')
            break;
        c->i++;
    }
}

/* the next byte, or 0 at the end (0 is never valid JSON outside strings) */
static uint8_t peek(const cursor_t *c)
{
    return c->i < c->n ? c->s[c->i] : 0;
}

static int expect(cursor_t *c, uint8_t b)
{
    if (peek(c) != b)
        return fail(c, OTA_MANIFEST_E_SYNTAX);
    c->i++;
    return 0;
}

static int hexval(uint8_t b)
{
    if (b >= '0' && b <= '9')
        return b - '0';
    if (b >= 'a' && b <= 'f')
        return b - 'a' + 10;
    if (b >= 'A' && b <= 'F')
        return b - 'A' + 10;
    return -1;
}

/* ---- strings ---- */

/* Where a decoded string goes: up to cap - 1 bytes and a NUL. Once one character
 * did not fit, nothing more is written (the kept part is a prefix that ends on a
 * character boundary), but the string is still read to its end and validated. */
typedef struct sink {
    char *out;    /* NULL: only validate */
    size_t cap;
    size_t w;     /* bytes written */
    size_t total; /* bytes the whole string has */
    bool cut;
} sink_t;

static void emit(sink_t *k, const uint8_t *u, size_t len)
{
    k->total += len;
    if (k->out == NULL || k->cut)
        return;
    if (k->w + len >= k->cap) {
        k->cut = true;
        return;
    }
    memcpy(k->out + k->w, u, len);
    k->w += len;
}

static int read_u4(cursor_t *c, uint32_t *v)
{
    if (c->n - c->i < 4)
        return fail(c, OTA_MANIFEST_E_STRING);
    uint32_t x = 0;
    for (int j = 0; j < 4; j++) {
        int h = hexval(c->s[c->i + (size_t)j]);
        if (h < 0)
            return fail(c, OTA_MANIFEST_E_STRING);
        x = x << 4 | (uint32_t)h;
    }
    c->i += 4;
    *v = x;
    return 0;
}

/* The escape after a backslash (the cursor is on the byte after it). */
static int read_escape(cursor_t *c, sink_t *k)
{
    if (c->i >= c->n)
        return fail(c, OTA_MANIFEST_E_SYNTAX);
    uint8_t e = c->s[c->i++];
    uint8_t u[4];
    switch (e) {
    case '"': case '\\': case '/': u[0] = e; break;
    case 'b': u[0] = '\b'; break;
    case 'f': u[0] = '\f'; break;
    case 'n': u[0] = '\n'; break;
    case 'r': u[0] = '\r'; break;
    case 't': u[0] = '\t'; break;
    case 'u': {
        uint32_t cp;
        if (read_u4(c, &cp) != 0)
            return -1;
        if (cp >= 0xDC00u && cp <= 0xDFFFu)
            return fail(c, OTA_MANIFEST_E_STRING); /* a low surrogate alone */
        if (cp >= 0xD800u && cp <= 0xDBFFu) {
            /* a high surrogate: a low one must follow, as \uDC00..\uDFFF */
            uint32_t lo;
            if (c->n - c->i < 2 || c->s[c->i] != '\\' || c->s[c->i + 1] != 'u')
                return fail(c, OTA_MANIFEST_E_STRING);
            c->i += 2;
            if (read_u4(c, &lo) != 0)
                return -1;
            if (lo < 0xDC00u || lo > 0xDFFFu)
                return fail(c, OTA_MANIFEST_E_STRING);
            cp = 0x10000u + ((cp - 0xD800u) << 10) + (lo - 0xDC00u);
        }
        if (cp == 0)
            return fail(c, OTA_MANIFEST_E_STRING); /* would end our C strings early */
        size_t len;
        if (cp < 0x80u) {
            u[0] = (uint8_t)cp;
            len = 1;
        } else if (cp < 0x800u) {
            u[0] = (uint8_t)(0xC0u | cp >> 6);
            u[1] = (uint8_t)(0x80u | (cp & 0x3Fu));
            len = 2;
        } else if (cp < 0x10000u) {
            u[0] = (uint8_t)(0xE0u | cp >> 12);
            u[1] = (uint8_t)(0x80u | (cp >> 6 & 0x3Fu));
            u[2] = (uint8_t)(0x80u | (cp & 0x3Fu));
            len = 3;
        } else {
            u[0] = (uint8_t)(0xF0u | cp >> 18);
            u[1] = (uint8_t)(0x80u | (cp >> 12 & 0x3Fu));
            u[2] = (uint8_t)(0x80u | (cp >> 6 & 0x3Fu));
            u[3] = (uint8_t)(0x80u | (cp & 0x3Fu));
            len = 4;
        }
        emit(k, u, len);
        return 0;
    }
    default:
        c->i--;
        return fail(c, OTA_MANIFEST_E_STRING);
    }
    emit(k, u, 1);
    return 0;
}

/* One raw UTF-8 character starting with lead byte b (>= 0x80) at c->i - 1: the
 * well-formed sequences of RFC 3629 (no overlong forms, no surrogates, nothing above
 * U+10FFFF). */
static int read_utf8(cursor_t *c, uint8_t b, sink_t *k)
{
    size_t more;
    uint8_t lo = 0x80, hi = 0xBF; /* the range of the second byte */
    if (b >= 0xC2 && b <= 0xDF) {
        more = 1;
    } else if (b >= 0xE0 && b <= 0xEF) {
        more = 2;
        if (b == 0xE0)
            lo = 0xA0; /* overlong */
        else if (b == 0xED)
            hi = 0x9F; /* UTF-16 surrogates */
    } else if (b >= 0xF0 && b <= 0xF4) {
        more = 3;
        if (b == 0xF0)
            lo = 0x90; /* overlong */
        else if (b == 0xF4)
            hi = 0x8F; /* above U+10FFFF */
    } else {
        c->i--;
        return fail(c, OTA_MANIFEST_E_STRING);
    }
    if (c->n - c->i < more)
        return fail(c, OTA_MANIFEST_E_STRING);
    uint8_t u[4];
    u[0] = b;
    for (size_t j = 0; j < more; j++) {
        uint8_t x = c->s[c->i + j];
        if (j == 0 ? (x < lo || x > hi) : (x < 0x80 || x > 0xBF)) {
            c->i += j;
            return fail(c, OTA_MANIFEST_E_STRING);
        }
        u[j + 1] = x;
    }
    c->i += more;
    emit(k, u, more + 1);
    return 0;
}

/* A string at the cursor (on its opening quote) into k. */
static int read_string(cursor_t *c, sink_t *k)
{
    if (expect(c, '"') != 0)
        return -1;
    for (;;) {
        if (c->i >= c->n)
            return fail(c, OTA_MANIFEST_E_SYNTAX);
        uint8_t b = c->s[c->i++];
        if (b == '"')
            break;
        if (b < 0x20) {
            c->i--;
            return fail(c, OTA_MANIFEST_E_STRING);
        }
        int rc;
        if (b == '\\')
            rc = read_escape(c, k);
        else if (b >= 0x80)
            rc = read_utf8(c, b, k);
        else {
            emit(k, &b, 1);
            rc = 0;
        }
        if (rc != 0)
            return -1;
    }
    if (k->out != NULL && k->cap > 0)
        k->out[k->w] = '\0';
    return 0;
}

/* A string into out[cap]; *cut says whether it was cut to fit. */
static int string_to(cursor_t *c, char *out, size_t cap, bool *cut)
{
    sink_t k = {out, cap, 0, 0, false};
    int rc = read_string(c, &k);
    if (cut != NULL)
        *cut = k.cut;
    return rc;
}

/* ---- numbers and literals ---- */

/* A JSON number. *u gets its value and *is_u32 says whether it is a plain integer
 * (no sign, fraction or exponent) of at most 4294967295. */
static int read_number(cursor_t *c, uint32_t *u, bool *is_u32)
{
    bool neg = false, frac = false, over = false;
    uint32_t v = 0;
    if (peek(c) == '-') {
        neg = true;
        c->i++;
    }
    uint8_t b = peek(c);
    if (b == '0') {
        c->i++;
        b = peek(c);
        if (b >= '0' && b <= '9')
            return fail(c, OTA_MANIFEST_E_NUMBER); /* no leading zeros */
    } else if (b >= '1' && b <= '9') {
        while ((b = peek(c)) >= '0' && b <= '9') {
            uint32_t d = (uint32_t)(b - '0');
            if (v > (0xFFFFFFFFu - d) / 10u)
                over = true;
            else
                v = v * 10u + d;
            c->i++;
        }
    } else {
        return fail(c, OTA_MANIFEST_E_NUMBER);
    }
    if (peek(c) == '.') {
        frac = true;
        c->i++;
        if (!((b = peek(c)) >= '0' && b <= '9'))
            return fail(c, OTA_MANIFEST_E_NUMBER);
        while ((b = peek(c)) >= '0' && b <= '9')
            c->i++;
    }
    if (peek(c) == 'e' || peek(c) == 'E') {
        frac = true;
        c->i++;
        if (peek(c) == '+' || peek(c) == '-')
            c->i++;
        if (!((b = peek(c)) >= '0' && b <= '9'))
            return fail(c, OTA_MANIFEST_E_NUMBER);
        while ((b = peek(c)) >= '0' && b <= '9')
            c->i++;
    }
    *u = v;
    *is_u32 = !neg && !frac && !over;
    return 0;
}

static int read_literal(cursor_t *c, const char *lit)
{
    size_t len = strlen(lit);
    if (c->n - c->i < len || memcmp(c->s + c->i, lit, len) != 0)
        return fail(c, OTA_MANIFEST_E_SYNTAX);
    c->i += len;
    return 0;
}

/* ---- containers ---- */

typedef int (*member_fn)(cursor_t *c, const char *key, size_t key_len, int depth, void *arg);
typedef int (*element_fn)(cursor_t *c, int depth, void *arg);

static int skip_value(cursor_t *c, int depth);

/* The object at the cursor; fn is called for each member with the cursor on its
 * value (whitespace skipped) and must consume that value. depth: the object's own
 * nesting level (the top is 1). */
static int each_member(cursor_t *c, int depth, member_fn fn, void *arg)
{
    if (depth > OTA_CFG_MANIFEST_MAX_DEPTH)
        return fail(c, OTA_MANIFEST_E_DEPTH);
    if (expect(c, '{') != 0)
        return -1;
    skip_ws(c);
    if (peek(c) == '}') {
        c->i++;
        return 0;
    }
    for (;;) {
        char key[KEY_MAX];
        sink_t k = {key, sizeof key, 0, 0, false};
        skip_ws(c);
        if (peek(c) != '"')
            return fail(c, OTA_MANIFEST_E_SYNTAX);
        if (read_string(c, &k) != 0)
            return -1;
        skip_ws(c);
        if (expect(c, ':') != 0)
            return -1;
        skip_ws(c);
        /* a key cut to the buffer keeps its full length: it matches none of ours */
        if (fn(c, key, k.cut ? sizeof key : k.total, depth, arg) != 0)
            return -1;
        skip_ws(c);
        uint8_t b = peek(c);
        if (b == ',') {
            c->i++;
            continue;
        }
        if (b == '}') {
            c->i++;
            return 0;
        }
        return fail(c, OTA_MANIFEST_E_SYNTAX);
    }
}

static int each_element(cursor_t *c, int depth, element_fn fn, void *arg)
{
    if (depth > OTA_CFG_MANIFEST_MAX_DEPTH)
        return fail(c, OTA_MANIFEST_E_DEPTH);
    if (expect(c, '[') != 0)
        return -1;
    skip_ws(c);
    if (peek(c) == ']') {
        c->i++;
        return 0;
    }
    for (;;) {
        skip_ws(c);
        if (fn(c, depth, arg) != 0)
            return -1;
        skip_ws(c);
        uint8_t b = peek(c);
        if (b == ',') {
            c->i++;
            continue;
        }
        if (b == ']') {
            c->i++;
            return 0;
        }
        return fail(c, OTA_MANIFEST_E_SYNTAX);
    }
}

static int skip_member(cursor_t *c, const char *key, size_t key_len, int depth, void *arg)
{
    (void)key;
    (void)key_len;
    (void)arg;
    return skip_value(c, depth);
}

static int skip_element(cursor_t *c, int depth, void *arg)
{
    (void)arg;
    return skip_value(c, depth);
}

/* Any value at the cursor, inside a container of level depth (0: the top). */
static int skip_value(cursor_t *c, int depth)
{
    uint32_t u;
    bool is_u32;
    switch (peek(c)) {
    case '{': return each_member(c, depth + 1, skip_member, NULL);
    case '[': return each_element(c, depth + 1, skip_element, NULL);
    case '"': return string_to(c, NULL, 0, NULL);
    case 't': return read_literal(c, "true");
    case 'f': return read_literal(c, "false");
    case 'n': return read_literal(c, "null");
    default:
        if (peek(c) == '-' || (peek(c) >= '0' && peek(c) <= '9'))
            return read_number(c, &u, &is_u32);
        return fail(c, OTA_MANIFEST_E_SYNTAX);
    }
}

/* ---- the manifest's objects ---- */

static bool key_is(const char *key, size_t key_len, const char *name)
{
    size_t n = strlen(name);
    return key_len == n && memcmp(key, name, n) == 0;
}

/* Mark key bit `bit` seen in *seen; a second time is an error. */
static int once(cursor_t *c, unsigned *seen, unsigned bit)
{
    if (*seen & bit)
        return fail(c, OTA_MANIFEST_E_DUPLICATE);
    *seen |= bit;
    return 0;
}

/* null stands for an absent optional value: true (and consumed) when it is null */
static bool take_null(cursor_t *c)
{
    if (peek(c) != 'n')
        return false;
    return read_literal(c, "null") == 0;
}

static int hex_value(cursor_t *c, uint8_t *out, size_t bytes)
{
    char hex[2 * OTA_SHA256_LEN + 1];
    bool cut;
    size_t at = c->i;
    if (peek(c) != '"')
        return fail(c, OTA_MANIFEST_E_TYPE);
    if (string_to(c, hex, 2 * bytes + 1, &cut) != 0)
        return -1;
    size_t len = strlen(hex);
    for (size_t j = 0; !cut && j < len; j++)
        if (hexval((uint8_t)hex[j]) < 0)
            cut = true;
    if (cut || len != 2 * bytes) {
        c->i = at;
        return fail(c, OTA_MANIFEST_E_RANGE);
    }
    for (size_t j = 0; j < bytes; j++)
        out[j] = (uint8_t)(hexval((uint8_t)hex[2 * j]) << 4 | hexval((uint8_t)hex[2 * j + 1]));
    return 0;
}

static int u32_value(cursor_t *c, uint32_t min, uint32_t max, uint32_t *out)
{
    size_t at = c->i;
    uint8_t b = peek(c);
    if (b != '-' && !(b >= '0' && b <= '9'))
        return fail(c, OTA_MANIFEST_E_TYPE);
    uint32_t v;
    bool is_u32;
    if (read_number(c, &v, &is_u32) != 0)
        return -1;
    if (!is_u32 || v < min || v > max) {
        c->i = at;
        return fail(c, OTA_MANIFEST_E_RANGE);
    }
    *out = v;
    return 0;
}

/* a string that must fit its buffer whole */
static int whole_string(cursor_t *c, char *out, size_t cap)
{
    size_t at = c->i;
    bool cut;
    if (peek(c) != '"')
        return fail(c, OTA_MANIFEST_E_TYPE);
    if (string_to(c, out, cap, &cut) != 0)
        return -1;
    if (cut) {
        c->i = at;
        return fail(c, OTA_MANIFEST_E_TOO_LONG);
    }
    return 0;
}

/* a string that may be cut (flag set in m->truncated); null leaves it "" */
static int text_string(cursor_t *c, char *out, size_t cap, ota_manifest_t *m, uint8_t flag)
{
    bool cut;
    if (take_null(c))
        return 0;
    if (peek(c) != '"')
        return fail(c, OTA_MANIFEST_E_TYPE);
    if (string_to(c, out, cap, &cut) != 0)
        return -1;
    if (cut)
        m->truncated |= flag;
    return 0;
}

enum {
    K_PATH = 1u << 0, K_MD5 = 1u << 1, K_SHA256 = 1u << 2, K_SECVER = 1u << 3,
    K_SIZE = 1u << 4, K_ROLLOUT = 1u << 5, K_SUMMARY = 1u << 6, K_RELEASE = 1u << 7,
};

typedef struct ota_state {
    ota_manifest_t *m;
    unsigned seen;
} ota_state_t;

/* An optional member read once: null = absent, else a value into *out, *has set. */
static int opt_hex(cursor_t *c, unsigned *seen, unsigned bit, uint8_t *out, size_t bytes,
                   bool *has)
{
    if (once(c, seen, bit) != 0)
        return -1;
    if (take_null(c))
        return 0;
    if (hex_value(c, out, bytes) != 0)
        return -1;
    *has = true;
    return 0;
}

static int opt_u32(cursor_t *c, unsigned *seen, unsigned bit, uint32_t min, uint32_t max,
                   uint32_t *out, bool *has)
{
    if (once(c, seen, bit) != 0)
        return -1;
    if (take_null(c))
        return 0;
    if (u32_value(c, min, max, out) != 0)
        return -1;
    *has = true;
    return 0;
}

static int ota_member(cursor_t *c, const char *key, size_t key_len, int depth, void *arg)
{
    ota_state_t *st = arg;
    ota_manifest_t *m = st->m;
    uint32_t v;
    if (key_is(key, key_len, "path")) {
        size_t at = c->i;
        if (once(c, &st->seen, K_PATH) != 0 ||
            whole_string(c, m->path, sizeof m->path) != 0)
            return -1;
        /* it goes into a request line: printable ASCII only, no space, CR or LF (a
         * URL carries anything else percent-encoded) */
        for (size_t j = 0; m->path[j] != '\0'; j++) {
            uint8_t b = (uint8_t)m->path[j];
            if (b <= 0x20 || b >= 0x7F) {
                c->i = at;
                return fail(c, OTA_MANIFEST_E_RANGE);
            }
        }
        return 0;
    }
    if (key_is(key, key_len, "md5"))
        return opt_hex(c, &st->seen, K_MD5, m->md5, OTA_MD5_LEN, &m->has_md5);
    if (key_is(key, key_len, "sha256"))
        return opt_hex(c, &st->seen, K_SHA256, m->sha256, OTA_SHA256_LEN, &m->has_sha256);
    if (key_is(key, key_len, "secure_version"))
        return opt_u32(c, &st->seen, K_SECVER, 0, 0xFFFFFFFFu, &m->secure_version,
                       &m->has_secure_version);
    if (key_is(key, key_len, "size"))
        return opt_u32(c, &st->seen, K_SIZE, 1, 0xFFFFFFFFu, &m->size, &m->has_size);
    if (key_is(key, key_len, "rollout")) {
        v = OTA_MANIFEST_ROLLOUT_ALL;
        if (opt_u32(c, &st->seen, K_ROLLOUT, 0, OTA_MANIFEST_ROLLOUT_ALL, &v, &m->has_rollout) !=
            0)
            return -1;
        m->rollout = (uint8_t)v;
        return 0;
    }
    if (key_is(key, key_len, "summary"))
        return once(c, &st->seen, K_SUMMARY) != 0 ? -1
               : text_string(c, m->summary, sizeof m->summary, m, OTA_MANIFEST_TRUNC_SUMMARY);
    if (key_is(key, key_len, "release_url"))
        return once(c, &st->seen, K_RELEASE) != 0
                   ? -1
                   : text_string(c, m->release_url, sizeof m->release_url, m,
                                 OTA_MANIFEST_TRUNC_RELEASE_URL);
    return skip_value(c, depth);
}

/* the matching build's ota object, the cursor on it; depth is the build's level */
static int read_ota(cursor_t *c, int depth, ota_manifest_t *m)
{
    size_t at = c->i;
    if (peek(c) != '{')
        return fail(c, OTA_MANIFEST_E_TYPE);
    ota_state_t st = {m, 0};
    if (each_member(c, depth + 1, ota_member, &st) != 0)
        return -1;
    if (m->path[0] == '\0' || !(m->has_md5 || m->has_sha256)) {
        /* a path that is missing or empty; neither digest: nothing to check it by */
        c->i = at;
        return fail(c, OTA_MANIFEST_E_MISSING);
    }
    return 0;
}

typedef struct build_state {
    ota_manifest_t *m;
    const char *family;
    bool found;     /* a build matched (the first one counts) */
    /* the build being read */
    unsigned seen;  /* 1: chipFamily, 2: ota */
    bool match;
    size_t ota_at;  /* where its ota value starts */
} build_state_t;

static int build_member(cursor_t *c, const char *key, size_t key_len, int depth, void *arg)
{
    build_state_t *st = arg;
    if (key_is(key, key_len, "chipFamily")) {
        char fam[OTA_MANIFEST_FAMILY_MAX];
        bool cut;
        if (once(c, &st->seen, 1u) != 0)
            return -1;
        if (peek(c) != '"')
            return fail(c, OTA_MANIFEST_E_TYPE);
        if (string_to(c, fam, sizeof fam, &cut) != 0)
            return -1;
        st->match = !cut && strcmp(fam, st->family) == 0;
        return 0;
    }
    if (key_is(key, key_len, "ota")) {
        if (once(c, &st->seen, 2u) != 0)
            return -1;
        st->ota_at = c->i;
        return skip_value(c, depth);
    }
    return skip_value(c, depth); /* "parts", "improv", ... */
}

static int build_element(cursor_t *c, int depth, void *arg)
{
    build_state_t *st = arg;
    size_t at = c->i;
    if (peek(c) != '{')
        return fail(c, OTA_MANIFEST_E_TYPE);
    st->seen = 0;
    st->match = false;
    if (each_member(c, depth + 1, build_member, st) != 0)
        return -1;
    if (st->m->builds < 0xFFFFu)
        st->m->builds++;
    if (!(st->seen & 1u)) {
        c->i = at;
        return fail(c, OTA_MANIFEST_E_MISSING); /* ESPHome refuses this too */
    }
    if (!st->match || st->found)
        return 0;
    if (!(st->seen & 2u)) {
        c->i = at;
        return fail(c, OTA_MANIFEST_E_MISSING);
    }
    st->found = true;
    size_t end = c->i;
    c->i = st->ota_at;
    if (read_ota(c, depth + 1, st->m) != 0)
        return -1;
    c->i = end;
    return 0;
}

enum { T_NAME = 1u << 0, T_VERSION = 1u << 1, T_BUILDS = 1u << 2, T_PUBLISHED = 1u << 3 };

typedef struct top_state {
    build_state_t b;
    unsigned seen;
} top_state_t;

static int top_member(cursor_t *c, const char *key, size_t key_len, int depth, void *arg)
{
    top_state_t *st = arg;
    ota_manifest_t *m = st->b.m;
    if (key_is(key, key_len, "name")) {
        bool cut;
        if (once(c, &st->seen, T_NAME) != 0)
            return -1;
        if (peek(c) != '"')
            return fail(c, OTA_MANIFEST_E_TYPE);
        if (string_to(c, m->name, sizeof m->name, &cut) != 0)
            return -1;
        if (cut)
            m->truncated |= OTA_MANIFEST_TRUNC_NAME;
        return 0;
    }
    if (key_is(key, key_len, "version")) {
        size_t at = c->i;
        if (once(c, &st->seen, T_VERSION) != 0 ||
            whole_string(c, m->version, sizeof m->version) != 0)
            return -1;
        /* compared and logged: no control characters */
        for (size_t j = 0; m->version[j] != '\0'; j++) {
            uint8_t b = (uint8_t)m->version[j];
            if (b < 0x20 || b == 0x7F) {
                c->i = at;
                return fail(c, OTA_MANIFEST_E_RANGE);
            }
        }
        return 0;
    }
    if (key_is(key, key_len, "published"))
        return opt_u32(c, &st->seen, T_PUBLISHED, 0, 0xFFFFFFFFu, &m->published,
                       &m->has_published);
    if (key_is(key, key_len, "builds")) {
        if (once(c, &st->seen, T_BUILDS) != 0)
            return -1;
        if (peek(c) != '[')
            return fail(c, OTA_MANIFEST_E_TYPE);
        return each_element(c, depth + 1, build_element, &st->b);
    }
    return skip_value(c, depth);
}

int ota_manifest_parse(const uint8_t *json, size_t len, const char *family, ota_manifest_t *out)
{
    if (out == NULL || family == NULL || (json == NULL && len > 0))
        return OTA_ERR_INVALID_ARG;
    memset(out, 0, sizeof *out);
    out->rollout = OTA_MANIFEST_ROLLOUT_ALL;
    cursor_t c = {json, len, 0, OTA_MANIFEST_OK, 0};
    top_state_t st;
    memset(&st, 0, sizeof st);
    st.b.m = out;
    st.b.family = family;
    skip_ws(&c);
    int rc;
    if (peek(&c) != '{')
        rc = fail(&c, c.i < c.n ? OTA_MANIFEST_E_TYPE : OTA_MANIFEST_E_SYNTAX);
    else
        rc = each_member(&c, 1, top_member, &st);
    if (rc == 0) {
        skip_ws(&c);
        if (c.i != c.n)
            rc = fail(&c, OTA_MANIFEST_E_SYNTAX); /* trailing data */
    }
    if (rc == 0 && (st.seen & (T_NAME | T_VERSION | T_BUILDS)) != (T_NAME | T_VERSION | T_BUILDS)) {
        c.i = 0;
        rc = fail(&c, OTA_MANIFEST_E_MISSING);
    }
    if (rc == 0 && !st.b.found) {
        c.i = 0;
        rc = fail(&c, OTA_MANIFEST_E_NO_BUILD);
    }
    if (rc == 0)
        return OTA_OK;
    out->error = c.err;
    out->error_offset = c.err_at > 0xFFFFFFFFu ? 0xFFFFFFFFu : (uint32_t)c.err_at;
    if (c.err == OTA_MANIFEST_E_TOO_LONG)
        return OTA_ERR_TOO_LONG;
    if (c.err == OTA_MANIFEST_E_NO_BUILD)
        return OTA_ERR_UNSUPPORTED;
    return OTA_ERR_MALFORMED;
}

const char *ota_manifest_error_name(ota_manifest_error_t e)
{
    switch (e) {
    case OTA_MANIFEST_OK: return "no error";
    case OTA_MANIFEST_E_SYNTAX: return "not JSON (syntax error)";
    case OTA_MANIFEST_E_DEPTH: return "nested too deep";
    case OTA_MANIFEST_E_STRING: return "invalid string (escape, control byte or UTF-8)";
    case OTA_MANIFEST_E_NUMBER: return "invalid number";
    case OTA_MANIFEST_E_TYPE: return "a value of the wrong type";
    case OTA_MANIFEST_E_DUPLICATE: return "a key given twice";
    case OTA_MANIFEST_E_MISSING: return "a required key is missing";
    case OTA_MANIFEST_E_RANGE: return "a value out of range";
    case OTA_MANIFEST_E_TOO_LONG: return "version or path too long";
    case OTA_MANIFEST_E_NO_BUILD: return "no build for this chip family";
    }
    return "unknown error";
}

/* ---- URLs ---- */

static bool starts_with_nocase(const char *s, const char *prefix)
{
    for (; *prefix != '\0'; s++, prefix++) {
        char a = *s;
        if (a >= 'A' && a <= 'Z')
            a = (char)(a - 'A' + 'a');
        if (a != *prefix)
            return false;
    }
    return true;
}

/* bytes of s before its first byte from stops (strcspn, which the core may not call) */
static size_t span_until(const char *s, const char *stops)
{
    size_t n = 0;
    while (s[n] != '\0' && memchr(stops, s[n], strlen(stops)) == NULL)
        n++;
    return n;
}

static size_t scheme_len(const char *url)
{
    if (starts_with_nocase(url, "http://"))
        return 7;
    if (starts_with_nocase(url, "https://"))
        return 8;
    return 0;
}

int ota_manifest_resolve_url(const char *manifest_url, const char *path, char *out, size_t cap)
{
    if (manifest_url == NULL || path == NULL || out == NULL || cap == 0 || path[0] == '\0')
        return OTA_ERR_INVALID_ARG;
    size_t base_len = 0; /* bytes of manifest_url kept */
    bool slash = false;  /* a '/' goes between them (a manifest URL without a path) */
    if (scheme_len(path) == 0) {
        size_t sl = scheme_len(manifest_url);
        if (sl == 0)
            return OTA_ERR_INVALID_ARG;
        /* the authority ends at the first '/', '?' or '#' after the scheme */
        size_t auth_end = sl + span_until(manifest_url + sl, "/?#");
        if (auth_end == sl)
            return OTA_ERR_INVALID_ARG; /* no host */
        base_len = auth_end;
        if (path[0] != '/') {
            /* the directory: up to the last '/' of the path part */
            size_t end = auth_end + span_until(manifest_url + auth_end, "?#");
            for (size_t j = auth_end; j < end; j++)
                if (manifest_url[j] == '/')
                    base_len = j + 1;
            slash = base_len == auth_end;
        }
    }
    size_t plen = strlen(path);
    size_t total = base_len + (slash ? 1u : 0u) + plen;
    if (total + 1 > cap || total > 0x7FFFFFFFu)
        return OTA_ERR_TOO_LONG;
    memcpy(out, manifest_url, base_len);
    if (slash)
        out[base_len++] = '/';
    memcpy(out + base_len, path, plen + 1);
    return (int)total;
}

/* ---- rollout and the decision ---- */

int ota_manifest_rollout_bucket(const ota_crypto_port_t *crypto, const char *node_name,
                                const char *version)
{
    if (crypto == NULL || crypto->hash_start == NULL || crypto->hash_update == NULL ||
        crypto->hash_finish == NULL || node_name == NULL || version == NULL)
        return OTA_ERR_INVALID_ARG;
    static const uint8_t sep = 0;
    ota_hash_ctx_t h;
    uint8_t d[OTA_SHA256_LEN];
    int rc = crypto->hash_start(crypto->ctx, &h, OTA_HASH_SHA256);
    if (rc == 0)
        rc = crypto->hash_update(crypto->ctx, &h, (const uint8_t *)node_name, strlen(node_name));
    if (rc == 0)
        rc = crypto->hash_update(crypto->ctx, &h, &sep, 1);
    if (rc == 0)
        rc = crypto->hash_update(crypto->ctx, &h, (const uint8_t *)version, strlen(version));
    if (rc == 0)
        rc = crypto->hash_finish(crypto->ctx, &h, d);
    if (rc != 0)
        return OTA_ERR_CRYPTO;
    uint32_t v = (uint32_t)d[0] << 24 | (uint32_t)d[1] << 16 | (uint32_t)d[2] << 8 | d[3];
    return (int)(v % 100u);
}

ota_manifest_decision_t ota_manifest_should_take(const ota_crypto_port_t *crypto,
                                                 const ota_manifest_t *m, const char *family,
                                                 const ota_manifest_node_t *node, int *bucket)
{
    if (bucket != NULL)
        *bucket = -1;
    if (m == NULL || family == NULL || node == NULL || node->name == NULL ||
        node->version == NULL || node->chip_family == NULL)
        return OTA_MANIFEST_DECISION_ERROR;
    if (node->signature_required && !node->signature_verified)
        return OTA_MANIFEST_UNSIGNED;
    if (m->version[0] == '\0')
        return OTA_MANIFEST_NO_VERSION;
    if (strcmp(m->version, node->version) == 0)
        return OTA_MANIFEST_SAME_VERSION;
    if (strcmp(family, node->chip_family) != 0)
        return OTA_MANIFEST_WRONG_FAMILY;
    if (m->has_secure_version && m->secure_version < node->min_secure_version)
        return OTA_MANIFEST_BELOW_MINIMUM;
    int b = ota_manifest_rollout_bucket(crypto, node->name, m->version);
    if (b < 0)
        return OTA_MANIFEST_DECISION_ERROR;
    if (bucket != NULL)
        *bucket = b;
    return (uint32_t)b < (uint32_t)m->rollout ? OTA_MANIFEST_TAKE : OTA_MANIFEST_NOT_IN_ROLLOUT;
}

const char *ota_manifest_decision_name(ota_manifest_decision_t d)
{
    switch (d) {
    case OTA_MANIFEST_TAKE: return "take";
    case OTA_MANIFEST_UNSIGNED: return "manifest signature required and not valid";
    case OTA_MANIFEST_NO_VERSION: return "no version";
    case OTA_MANIFEST_SAME_VERSION: return "same version";
    case OTA_MANIFEST_WRONG_FAMILY: return "another chip family";
    case OTA_MANIFEST_BELOW_MINIMUM: return "secure_version below the minimum";
    case OTA_MANIFEST_NOT_IN_ROLLOUT: return "not in the rollout yet";
    case OTA_MANIFEST_DECISION_ERROR: return "error";
    }
    return "unknown";
}

/* ---- the detached signature ---- */

#if OTA_CFG_ENABLE_SIGNED
int ota_manifest_verify_signature(const ota_crypto_port_t *crypto, const uint8_t *json,
                                  size_t len, const uint8_t *sig, size_t sig_len,
                                  const ota_sig_trusted_t *trusted, size_t n_trusted,
                                  ota_sig_result_t *res)
{
    if (crypto == NULL || crypto->hash_start == NULL || crypto->hash_update == NULL ||
        crypto->hash_finish == NULL || (json == NULL && len > 0) || sig == NULL)
        return OTA_ERR_INVALID_ARG;
    ota_hash_ctx_t h;
    uint8_t d[OTA_SHA256_LEN];
    int rc = crypto->hash_start(crypto->ctx, &h, OTA_HASH_SHA256);
    if (rc == 0 && len > 0)
        rc = crypto->hash_update(crypto->ctx, &h, json, len);
    if (rc == 0)
        rc = crypto->hash_finish(crypto->ctx, &h, d);
    if (rc != 0)
        return OTA_ERR_CRYPTO;
    return ota_sig_verify_sector(crypto, sig, sig_len, d, trusted, n_trusted, res);
}
#endif

#endif /* OTA_CFG_ENABLE_PULL */
