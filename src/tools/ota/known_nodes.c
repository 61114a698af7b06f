/*
 * known_nodes.c - the file of nodes that proved salted auth (see known_nodes.h):
 * parsing, lookup, atomic rewrite, and the upload's policy around them.
 */
#include "known_nodes.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "ota/auth.h"
#include "ota/protocol.h"
#include "ota/util.h"

#define METHOD_SALTED "salted"
#define FILE_MAX (4u << 20) /* nobody has 4 MiB of nodes: a bigger file is not ours */
#define FILE_HEADER                                                                         \
    "# Nodes that proved salted OTA auth to this uploader (ota upload); one offering\n"   \
    "# weaker auth or fewer iterations later is refused. HOST:PORT salted [SALT [ITER]]\n"

static pthread_mutex_t write_lock = PTHREAD_MUTEX_INITIALIZER;

int ota_known_key(const char *host, uint16_t port, char *out, size_t cap)
{
    bool v6 = strchr(host, ':') != NULL && host[0] != '[';
    int n = snprintf(out, cap, v6 ? "[%s]:%u" : "%s:%u", host, (unsigned)port);
    return n > 0 && (size_t)n < cap ? 0 : -1;
}

int ota_known_path(const char *override, char *out, size_t cap)
{
    const char *env = getenv("OTA_KNOWN_NODES");
    const char *xdg = getenv("XDG_STATE_HOME");
    const char *home = getenv("HOME");
    int n;
    if (override != NULL && override[0])
        n = snprintf(out, cap, "%s", override);
    else if (env != NULL && env[0])
        n = snprintf(out, cap, "%s", env);
    else if (xdg != NULL && xdg[0] == '/') /* the XDG spec: relative paths are invalid */
        n = snprintf(out, cap, "%s/ota/known_nodes", xdg);
    else if (home != NULL && home[0])
        n = snprintf(out, cap, "%s/.local/state/ota/known_nodes", home);
    else
        return -1;
    return n > 0 && (size_t)n < cap ? 0 : -1;
}

/* The next whitespace-separated field of *p (advanced past it) into out. */
static size_t field(const char **p, const char **start)
{
    const char *s = *p;
    while (*s == ' ' || *s == '\t')
        s++;
    *start = s;
    while (*s && *s != ' ' && *s != '\t' && *s != '\r' && *s != '\n')
        s++;
    *p = s;
    return (size_t)(s - *start);
}

/* "HOST:PORT" with a non-empty host and a port 1..65535. */
static bool valid_node(const char *s, size_t n)
{
    if (n == 0 || n >= OTA_KNOWN_NODE_MAX)
        return false;
    const char *colon = NULL;
    for (size_t i = 0; i < n; i++)
        if (s[i] == ':')
            colon = s + i;
    if (colon == NULL || colon == s)
        return false;
    size_t digits = n - (size_t)(colon + 1 - s);
    if (digits == 0 || digits > 5)
        return false;
    unsigned long port = 0;
    for (const char *d = colon + 1; d < s + n; d++) {
        if (!isdigit((unsigned char)*d))
            return false;
        port = port * 10 + (unsigned long)(*d - '0');
    }
    if (port == 0 || port > 65535)
        return false;
    if (s[0] == '[') /* [v6addr]:port */
        return colon[-1] == ']' && colon - s > 2;
    return memchr(s, ':', (size_t)(colon - s)) == NULL; /* a bare v6 address is not a key */
}

static int finish(ota_known_entry_t *out, ota_known_entry_t *e)
{
    out->line = e->line;
    *e = *out;
    return 1;
}

int ota_known_parse_line(const char *line, ota_known_entry_t *e)
{
    const char *p = line, *f;
    size_t n = field(&p, &f);
    if (n == 0)
        return *f == '\0' || *f == '\r' || *f == '\n' ? 0 : -1;
    if (f[0] == '#')
        return 0;
    if (!valid_node(f, n))
        return -1;
    ota_known_entry_t out;
    memset(&out, 0, sizeof out);
    memcpy(out.node, f, n);
    out.node[n] = '\0';
    n = field(&p, &f);
    if (n != strlen(METHOD_SALTED) || memcmp(f, METHOD_SALTED, n) != 0)
        return -1;
    n = field(&p, &f);
    if (n != 0 && f[0] == '#')
        return finish(&out, e); /* "HOST:PORT salted # comment" */
    if (n != 0) {
        if (n != 2 * OTA_KNOWN_SALT_LEN ||
            ota_hex_decode(f, OTA_KNOWN_SALT_LEN, out.salt) != 0)
            return -1;
        out.has_salt = true;
        n = field(&p, &f);
        if (n != 0 && f[0] != '#') {
            unsigned long it = 0;
            for (size_t i = 0; i < n; i++) {
                if (!isdigit((unsigned char)f[i]) || n > 8)
                    return -1;
                it = it * 10 + (unsigned long)(f[i] - '0');
            }
            if (it < OTA_SALTED_MIN_ITERATIONS || it > OTA_KNOWN_MAX_ITERATIONS)
                return -1;
            out.iterations = (uint32_t)it;
            n = field(&p, &f);
        }
        if (n != 0 && f[0] != '#')
            return -1;
        if (n != 0)
            return finish(&out, e); /* a trailing "# comment" */
    }
    if (*p != '\0' && *p != '\r' && *p != '\n')
        return -1;
    return finish(&out, e);
}

/* Calls fn for every line of text (its start, its length without "\n", its number);
 * stops when fn returns nonzero and returns that. */
typedef int (*line_fn)(void *arg, const char *line, size_t len, unsigned number);

static int each_line(const char *text, line_fn fn, void *arg)
{
    unsigned number = 0;
    const char *p = text;
    while (*p) {
        const char *nl = strchr(p, '\n');
        size_t len = nl ? (size_t)(nl - p) : strlen(p);
        int rc = fn(arg, p, len, ++number);
        if (rc)
            return rc;
        p += len + (nl ? 1 : 0);
    }
    return 0;
}

/* The parse of one line of len bytes (copied: lines in a file are not terminated). */
static int parse_span(const char *line, size_t len, ota_known_entry_t *e)
{
    char buf[1024];
    if (len >= sizeof buf)
        return -1;
    memcpy(buf, line, len);
    buf[len] = '\0';
    return ota_known_parse_line(buf, e);
}

typedef struct lookup_ctx {
    const char *node;
    ota_known_entry_t *e;
    unsigned first_corrupt;
} lookup_ctx_t;

static int lookup_line(void *arg, const char *line, size_t len, unsigned number)
{
    lookup_ctx_t *c = arg;
    ota_known_entry_t e;
    memset(&e, 0, sizeof e);
    int r = parse_span(line, len, &e);
    if (r < 0 && c->first_corrupt == 0)
        c->first_corrupt = number;
    if (r == 1 && strcasecmp(e.node, c->node) == 0) {
        e.line = number;
        *c->e = e;
        return 1;
    }
    return 0;
}

int ota_known_lookup_text(const char *text, const char *node, ota_known_entry_t *e,
                          unsigned *first_corrupt)
{
    lookup_ctx_t c = {.node = node, .e = e, .first_corrupt = 0};
    int found = each_line(text, lookup_line, &c);
    if (first_corrupt != NULL)
        *first_corrupt = c.first_corrupt;
    return found == 1 ? 1 : 0;
}

typedef struct update_ctx {
    const char *node;
    const char *record; /* the new line, with "\n" */
    char *out;
    size_t len, cap;
    bool placed;
} update_ctx_t;

static int append(update_ctx_t *c, const char *s, size_t n)
{
    if (c->len + n + 1 > c->cap) {
        size_t cap = (c->cap + n + 1) * 2;
        char *p = realloc(c->out, cap);
        if (p == NULL)
            return -1;
        c->out = p;
        c->cap = cap;
    }
    memcpy(c->out + c->len, s, n);
    c->len += n;
    c->out[c->len] = '\0';
    return 0;
}

static int update_line(void *arg, const char *line, size_t len, unsigned number)
{
    update_ctx_t *c = arg;
    (void)number;
    ota_known_entry_t e;
    memset(&e, 0, sizeof e);
    if (parse_span(line, len, &e) == 1 && strcasecmp(e.node, c->node) == 0) {
        if (c->placed)
            return 0; /* a duplicate: the first line is the record */
        c->placed = true;
        return append(c, c->record, strlen(c->record));
    }
    if (append(c, line, len) != 0 || append(c, "\n", 1) != 0)
        return -1;
    return 0;
}

char *ota_known_update_text(const char *text, const char *node, const uint8_t *salt,
                            uint32_t iterations)
{
    char record[OTA_KNOWN_NODE_MAX + 64];
    char hex[2 * OTA_KNOWN_SALT_LEN + 16] = "";
    if (salt != NULL) {
        hex[0] = ' ';
        ota_hex_encode(salt, OTA_KNOWN_SALT_LEN, hex + 1);
        hex[1 + 2 * OTA_KNOWN_SALT_LEN] = '\0';
        if (iterations != 0)
            snprintf(hex + 1 + 2 * OTA_KNOWN_SALT_LEN, 14, " %u", (unsigned)iterations);
    }
    snprintf(record, sizeof record, "%s %s%s\n", node, METHOD_SALTED, hex);
    update_ctx_t c = {.node = node, .record = record};
    if (text == NULL || text[0] == '\0')
        text = FILE_HEADER;
    if (each_line(text, update_line, &c) != 0 || (!c.placed && append(&c, record,
                                                                      strlen(record)) != 0)) {
        free(c.out);
        return NULL;
    }
    return c.out;
}

/* The whole file, NUL-terminated; NULL with errno (ENOENT: no file). */
static char *slurp(const char *path)
{
    FILE *f = fopen(path, "r");
    if (f == NULL)
        return NULL;
    size_t len = 0, cap = 4096;
    char *buf = malloc(cap);
    while (buf != NULL) {
        size_t n = fread(buf + len, 1, cap - len - 1, f);
        len += n;
        if (len > FILE_MAX) {
            free(buf);
            buf = NULL;
            errno = EFBIG;
            break;
        }
        if (n == 0)
            break;
        if (cap - len - 1 == 0) {
            char *p = realloc(buf, cap * 2);
            if (p == NULL) {
                free(buf);
                buf = NULL;
                break;
            }
            buf = p;
            cap *= 2;
        }
    }
    int err = ferror(f) ? errno : 0;
    fclose(f);
    if (buf != NULL && err != 0) {
        free(buf);
        errno = err;
        return NULL;
    }
    if (buf != NULL) {
        buf[len] = '\0';
        if (strlen(buf) != len) { /* a NUL byte: not our text file */
            free(buf);
            errno = EINVAL;
            return NULL;
        }
    }
    return buf;
}

/* Why the file at path could not be read as a whole (errno from slurp). */
static void read_error(const char *path, char *err, size_t err_cap)
{
    if (errno == EINVAL)
        snprintf(err, err_cap, "%s holds a NUL byte: it is not a known_nodes text file", path);
    else if (errno == EFBIG)
        snprintf(err, err_cap, "%s is larger than %u MiB: it is not a known_nodes file", path,
                 FILE_MAX >> 20);
    else
        snprintf(err, err_cap, "cannot read %s: %s", path, strerror(errno));
}

int ota_known_lookup(const char *path, const char *node, ota_known_entry_t *e,
                     unsigned *first_corrupt, char *err, size_t err_cap)
{
    if (first_corrupt != NULL)
        *first_corrupt = 0;
    char *text = slurp(path);
    if (text == NULL) {
        if (errno == ENOENT)
            return 0;
        read_error(path, err, err_cap);
        return -1;
    }
    int r = ota_known_lookup_text(text, node, e, first_corrupt);
    free(text);
    return r;
}

int ota_known_make_dirs(const char *path)
{
    char dir[4096];
    int n = snprintf(dir, sizeof dir, "%s", path);
    if (n <= 0 || (size_t)n >= sizeof dir)
        return -1;
    char *slash = strrchr(dir, '/');
    if (slash == NULL || slash == dir)
        return 0;
    *slash = '\0';
    for (char *p = dir + 1; *p; p++) {
        if (*p != '/')
            continue;
        *p = '\0';
        if (mkdir(dir, 0700) != 0 && errno != EEXIST)
            return -1;
        *p = '/';
    }
    if (mkdir(dir, 0700) != 0 && errno != EEXIST)
        return -1;
    return 0;
}

static int record_locked(const char *path, const char *node, const uint8_t *salt,
                         uint32_t iterations, char *err, size_t err_cap)
{
    char *old = slurp(path);
    if (old == NULL && errno != ENOENT) {
        read_error(path, err, err_cap);
        return -1;
    }
    char *text = ota_known_update_text(old, node, salt, iterations);
    free(old);
    if (text == NULL) {
        snprintf(err, err_cap, "out of memory");
        return -1;
    }
    char tmp[4200];
    if ((size_t)snprintf(tmp, sizeof tmp, "%s.tmp.XXXXXX", path) >= sizeof tmp) {
        free(text);
        snprintf(err, err_cap, "path too long: %s", path);
        return -1;
    }
    int fd = mkstemp(tmp); /* 0600 */
    if (fd < 0) {
        snprintf(err, err_cap, "cannot create a file beside %s: %s", path, strerror(errno));
        free(text);
        return -1;
    }
    size_t len = strlen(text), off = 0;
    int rc = fchmod(fd, 0600);
    while (rc == 0 && off < len) {
        ssize_t w = write(fd, text + off, len - off);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            rc = -1;
        else
            off += (size_t)w;
    }
    free(text);
    if (rc == 0)
        rc = fsync(fd);
    if (close(fd) != 0)
        rc = -1;
    if (rc == 0)
        rc = rename(tmp, path);
    if (rc != 0) {
        snprintf(err, err_cap, "cannot write %s: %s", path, strerror(errno));
        unlink(tmp);
        return -1;
    }
    return 0;
}

int ota_known_record(const char *path, const char *node, const uint8_t *salt,
                     uint32_t iterations, char *err, size_t err_cap)
{
    pthread_mutex_lock(&write_lock);
    int rc = -1;
    char lock[4200];
    if ((size_t)snprintf(lock, sizeof lock, "%s.lock", path) >= sizeof lock) {
        snprintf(err, err_cap, "path too long: %s", path);
    } else if (ota_known_make_dirs(path) != 0) {
        snprintf(err, err_cap, "cannot create the directory of %s: %s", path, strerror(errno));
    } else {
        /* other `ota upload` processes rewrite the file too: hold FILE.lock across the
         * whole read-modify-rename so that no record of theirs is lost */
        int lfd = open(lock, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
        int lr = lfd < 0 ? -1 : 0;
        while (lr == 0 && flock(lfd, LOCK_EX) != 0)
            if (errno != EINTR)
                lr = -1;
        if (lr != 0)
            snprintf(err, err_cap, "cannot lock %s: %s", lock, strerror(errno));
        else
            rc = record_locked(path, node, salt, iterations, err, err_cap);
        if (lfd >= 0)
            close(lfd); /* releases the lock */
    }
    pthread_mutex_unlock(&write_lock);
    return rc;
}

/* ------------------------------------------------------------ the upload's policy */

void ota_known_prepare(ota_client_options_t *o, const char *name, uint16_t port, FILE *warn)
{
    o->known_line = 0;
    o->known_has_salt = false;
    o->known_iterations = 0;
    o->known_error[0] = '\0';
    if (ota_known_key(name, port, o->known_node, sizeof o->known_node) != 0)
        o->known_node[0] = '\0';
    if (o->known_file == NULL || o->known_node[0] == '\0')
        return;
    ota_known_entry_t e;
    unsigned corrupt = 0;
    char err[512];
    int r = ota_known_lookup(o->known_file, o->known_node, &e, &corrupt, err, sizeof err);
    if (r < 0) {
        /* fail closed: the node may be recorded in the part we cannot read, so the
         * client refuses weaker auth than salted (the upload says why) */
        snprintf(o->known_error, sizeof o->known_error, "%s", err);
        return;
    }
    if (corrupt != 0)
        fprintf(warn, "warning: %s line %u is not 'HOST:PORT salted [SALT [ITERATIONS]]'; "
                      "ignoring it\n", o->known_file, corrupt);
    if (r == 0)
        return;
    o->known_line = e.line;
    o->require_salted = OTA_SALTED_BY_KNOWN;
    o->known_has_salt = e.has_salt;
    o->known_iterations = e.iterations;
    memcpy(o->known_salt, e.salt, sizeof o->known_salt);
}

int ota_known_commit(const ota_client_options_t *o, const ota_client_result_t *res, bool quiet,
                     FILE *out)
{
    if (o->known_file == NULL || o->known_node[0] == '\0' || res->failure != OTA_FAIL_NONE ||
        res->auth_method != OTA_RESP_REQUEST_AUTH_SALTED)
        return 0;
    bool same = o->known_line != 0 && o->known_has_salt &&
                memcmp(o->known_salt, res->salt, sizeof o->known_salt) == 0 &&
                o->known_iterations == res->iterations;
    if (same)
        return 0;
    char err[512];
    if (ota_known_record(o->known_file, o->known_node, res->salt, res->iterations, err,
                         sizeof err) != 0) {
        fprintf(out, "warning: could not remember %s: %s\n", o->known_node, err);
        return -1;
    }
    if (quiet)
        return 0;
    if (o->known_line == 0)
        fprintf(out, "note: remembered %s in %s: it proved salted auth, so a device there "
                     "offering weaker auth will be refused\n", o->known_node, o->known_file);
    else if (res->salt_changed)
        fprintf(out, "note: %s has a new salt (its password was changed or it was set up "
                     "again) and proved it knows the password; updated %s\n", o->known_node,
                o->known_file);
    return 0;
}
