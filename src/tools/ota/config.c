/*
 * config.c - loading and validating a node's YAML configuration (see config.h).
 *
 * Both forms found in the wild are accepted:
 *   older:   esphomeyaml:/esphome: {name, platform: ESP32|ESP8266|..., board}
 *            ota: {safe_mode, password, port, id, ...}
 *   current: esphome: {name}, esp32:/esp8266:/rp2040:/bk72xx:/host:... platform blocks,
 *            ota: [- platform: esphome, ...], safe_mode: {num_attempts, ...}
 *
 * The file is read as ESPHome reads it, in ESPHome's order:
 *   1. each file is parsed with libyaml and turned into a tree of our own (tnode_t),
 *      resolving tags on the way: !include (relative to the including file, with
 *      vars: substituted at once, missing ones left for step 3), !include_dir_*,
 *      !secret, !env_var, and `<<:` merge keys; !lambda, !extend, !remove, !force
 *      stay as tagged values. Duplicate keys are an error, as in ESPHome.
 *   2. packages: are merged under the main file (the main file's values win, maps
 *      merge recursively, lists concatenate, list items with `id: !extend X` /
 *      `id: !remove X` change the item of id X, `key: !remove` drops a key).
 *   3. substitutions: (the file's, overridden by the caller's) replace $name and
 *      ${name} in every scalar and key, twice over as ESPHome does.
 *   4. the blocks this tool reads are validated; every other component is left alone.
 * Nothing is applied to the caller's config until every check has passed. All tree
 * memory comes from one arena freed at the end.
 */
#include "config.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <yaml.h>

/* the core's headers that hold the defaults a node file leaves out (each includes
 * nothing but the C library's freestanding headers) */
#include "imgsign.h"
#include "ota/log_proto.h"
#include "ota/protocol.h"
#include "ota/safe_mode.h"

#define MAX_INCLUDE_DEPTH 16

typedef enum { T_SCALAR, T_MAP, T_SEQ } ttype_t;

typedef struct tnode tnode_t;
struct tnode {
    ttype_t type;
    const char *tag;   /* a local tag ("!lambda", "!extend", ...) still to honour, or NULL */
    char *val;         /* T_SCALAR: the text */
    bool plain;        /* T_SCALAR: written without quotes (so null / ~ / "" mean null) */
    const char *file;  /* where it was written, for messages */
    size_t line, col;  /* 1-based */
    size_t n, cap;     /* T_MAP: n pairs k[i]: v[i]; T_SEQ: n items v[i] */
    tnode_t **k, **v;
    unsigned pass;     /* the last substitution pass that visited it (shared nodes) */
};

typedef struct arena_blk {
    struct arena_blk *next;
    size_t size;
    max_align_t data[];
} arena_blk_t;

typedef struct secrets {
    struct secrets *next;
    char *path;
    tnode_t *root;     /* NULL: could not be read */
    int err_no;
    bool bad;          /* read, but not a mapping or not YAML */
} secrets_t;

/* where an included file was included from, so messages can say so */
typedef struct incl {
    struct incl *next;
    const char *file;
    const tnode_t *from;
} incl_t;

typedef struct ctx {
    const char *path;  /* the main file, as the caller named it */
    incl_t *includes;
    char *err;
    size_t cap;
    bool failed;
    arena_blk_t *arena;
    secrets_t *secrets;
    const char *stack[MAX_INCLUDE_DEPTH + 1]; /* files being read, outermost first */
    char *stack_real[MAX_INCLUDE_DEPTH + 1];
    int depth;
    unsigned pass;
} ctx_t;

typedef struct subs {
    size_t n, cap;
    const char **name;
    const char **value;
} subs_t;

/* -------------------------------------------------------------- errors */

static int errat(ctx_t *c, const tnode_t *n, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static int errat(ctx_t *c, const tnode_t *n, const char *fmt, ...)
{
    if (c->failed)
        return -1; /* keep the first message: it is the cause */
    c->failed = true;
    int off = n ? snprintf(c->err, c->cap, "%s:%zu:%zu: ", n->file, n->line, n->col)
                : snprintf(c->err, c->cap, "%s: ", c->path);
    if (off < 0 || (size_t)off >= c->cap)
        return -1;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(c->err + off, c->cap - (size_t)off, fmt, ap);
    va_end(ap);
    /* a message about an included file names the chain back to the main file */
    const char *file = n ? n->file : NULL;
    for (int hops = 0; file != NULL && hops <= MAX_INCLUDE_DEPTH; hops++) {
        const incl_t *i = c->includes;
        while (i != NULL && i->file != file)
            i = i->next;
        if (i == NULL)
            break;
        size_t len = strlen(c->err);
        snprintf(c->err + len, c->cap - len, " (included from %s:%zu:%zu)", i->from->file,
                 i->from->line, i->from->col);
        file = i->from->file;
    }
    return -1;
}

/* ------------------------------------------------------------- memory */

static void *xalloc(ctx_t *c, size_t size)
{
    arena_blk_t *b = calloc(1, sizeof *b + size);
    if (b == NULL) {
        errat(c, NULL, "out of memory");
        return NULL;
    }
    b->next = c->arena;
    b->size = size;
    c->arena = b;
    return b->data;
}

static void arena_free(ctx_t *c)
{
    while (c->arena) {
        arena_blk_t *next = c->arena->next;
        /* the tree held the password and the secrets */
        volatile unsigned char *p = (volatile unsigned char *)c->arena->data;
        for (size_t i = 0; i < c->arena->size; i++)
            p[i] = 0;
        free(c->arena);
        c->arena = next;
    }
}

static char *xstrndup(ctx_t *c, const char *s, size_t len)
{
    char *p = xalloc(c, len + 1);
    if (p != NULL)
        memcpy(p, s, len);
    return p;
}

static char *xstrdup(ctx_t *c, const char *s)
{
    return xstrndup(c, s, strlen(s));
}

static tnode_t *new_node(ctx_t *c, ttype_t type, const char *file, size_t line, size_t col)
{
    tnode_t *n = xalloc(c, sizeof *n);
    if (n == NULL)
        return NULL;
    n->type = type;
    n->file = file;
    n->line = line;
    n->col = col;
    return n;
}

static tnode_t *new_scalar(ctx_t *c, const tnode_t *at, const char *text, bool plain)
{
    tnode_t *n = new_node(c, T_SCALAR, at->file, at->line, at->col);
    if (n == NULL || (n->val = xstrdup(c, text)) == NULL)
        return NULL;
    n->plain = plain;
    return n;
}

/* append k: v to a map (k NULL) or v to a list */
static int add(ctx_t *c, tnode_t *m, tnode_t *k, tnode_t *v)
{
    if (m->n == m->cap) {
        size_t cap = m->cap ? m->cap * 2 : 8;
        tnode_t **nk = xalloc(c, cap * sizeof *nk), **nv = xalloc(c, cap * sizeof *nv);
        if (nk == NULL || nv == NULL)
            return -1;
        if (m->n) {
            memcpy(nv, m->v, m->n * sizeof *nv);
            if (m->k)
                memcpy(nk, m->k, m->n * sizeof *nk);
        }
        m->k = nk;
        m->v = nv;
        m->cap = cap;
    }
    m->k[m->n] = k;
    m->v[m->n] = v;
    m->n++;
    return 0;
}

/* a new map or list with the same entries (a shallow copy) */
static tnode_t *copy_node(ctx_t *c, const tnode_t *src)
{
    tnode_t *n = new_node(c, src->type, src->file, src->line, src->col);
    if (n == NULL)
        return NULL;
    n->tag = src->tag;
    n->val = src->val;
    n->plain = src->plain;
    for (size_t i = 0; i < src->n; i++)
        if (add(c, n, src->k ? src->k[i] : NULL, src->v[i]))
            return NULL;
    return n;
}

/* ------------------------------------------------------------- queries */

static bool tagged(const tnode_t *n, const char *tag)
{
    return n->tag != NULL && strcmp(n->tag, tag) == 0;
}

static bool is_null(const tnode_t *n)
{
    return n->type == T_SCALAR && n->plain && n->tag == NULL &&
           (n->val[0] == '\0' || strcmp(n->val, "~") == 0 || strcmp(n->val, "null") == 0 ||
            strcmp(n->val, "Null") == 0 || strcmp(n->val, "NULL") == 0);
}

static const char *type_name(const tnode_t *n)
{
    switch (n->type) {
    case T_MAP: return "a mapping";
    case T_SEQ: return "a list";
    default: return n->tag ? n->tag : "a value";
    }
}

/* index of key in map m, or -1 */
static long find_key(const tnode_t *m, const char *key)
{
    for (size_t i = 0; i < m->n; i++)
        if (m->k[i]->type == T_SCALAR && strcmp(m->k[i]->val, key) == 0)
            return (long)i;
    return -1;
}

/* the value of key, NULL when absent or `key: !remove` */
static tnode_t *lookup(const tnode_t *m, const char *key)
{
    long i = find_key(m, key);
    return i < 0 || tagged(m->v[i], "!remove") ? NULL : m->v[i];
}

static void remove_at(tnode_t *m, size_t i)
{
    memmove(m->k + i, m->k + i + 1, (m->n - i - 1) * sizeof *m->k);
    memmove(m->v + i, m->v + i + 1, (m->n - i - 1) * sizeof *m->v);
    m->n--;
}

/* ---------------------------------------------------------- file names */

/* dir of path with a trailing '/', or "" */
static char *dir_of(ctx_t *c, const char *path)
{
    const char *slash = strrchr(path, '/');
    return xstrndup(c, path, slash ? (size_t)(slash - path + 1) : 0);
}

static char *join(ctx_t *c, const char *base_file, const char *name)
{
    if (name[0] == '/')
        return xstrdup(c, name);
    char *dir = dir_of(c, base_file);
    if (dir == NULL)
        return NULL;
    size_t ld = strlen(dir), ln = strlen(name);
    char *p = xalloc(c, ld + ln + 1);
    if (p != NULL) {
        memcpy(p, dir, ld);
        memcpy(p + ld, name, ln);
    }
    return p;
}

/* ------------------------------------------------------------- loading */

typedef struct fload {
    yaml_document_t doc;
    const char *file;
    tnode_t **memo;   /* by node index - 1 */
    char *busy;       /* 1 while a node is being converted (recursive aliases) */
    size_t count;
} fload_t;

static tnode_t *load_file(ctx_t *c, const char *path, const tnode_t *from, FILE *f,
                          const uint8_t *data, size_t len);
static tnode_t *conv(ctx_t *c, fload_t *fl, int index);
static int substitute(ctx_t *c, tnode_t *n, const subs_t *s, bool keys_at_root);

static int subs_set(ctx_t *c, subs_t *s, const char *name, const char *value)
{
    for (size_t i = 0; i < s->n; i++)
        if (strcmp(s->name[i], name) == 0) {
            s->value[i] = value;
            return 0;
        }
    if (s->n == s->cap) {
        size_t cap = s->cap ? s->cap * 2 : 16;
        const char **nn = xalloc(c, cap * sizeof *nn), **nv = xalloc(c, cap * sizeof *nv);
        if (nn == NULL || nv == NULL)
            return -1;
        if (s->n) {
            memcpy(nn, s->name, s->n * sizeof *nn);
            memcpy(nv, s->value, s->n * sizeof *nv);
        }
        s->name = nn;
        s->value = nv;
        s->cap = cap;
    }
    s->name[s->n] = name;
    s->value[s->n] = value;
    s->n++;
    return 0;
}

static const char *subs_get(const subs_t *s, const char *name, size_t len)
{
    for (size_t i = 0; i < s->n; i++)
        if (strlen(s->name[i]) == len && strncmp(s->name[i], name, len) == 0)
            return s->value[i];
    return NULL;
}

/* the scalar text of a vars:/substitutions: value (ESPHome takes str() of it) */
static const char *scalar_text(ctx_t *c, const tnode_t *v, const char *what)
{
    if (v->type != T_SCALAR) {
        errat(c, v, "%s must be a value, not %s", what, type_name(v));
        return NULL;
    }
    return v->val;
}

/* !include FILE or !include {file: FILE, vars: {...}} at node n of fl */
static tnode_t *do_include(ctx_t *c, fload_t *fl, const yaml_node_t *yn, const tnode_t *at)
{
    const char *name = NULL;
    const tnode_t *vars = NULL;
    if (yn->type == YAML_SCALAR_NODE) {
        name = (const char *)yn->data.scalar.value;
    } else if (yn->type == YAML_MAPPING_NODE) {
        /* convert the {file, vars} mapping as an ordinary one */
        tnode_t *m = new_node(c, T_MAP, at->file, at->line, at->col);
        if (m == NULL)
            return NULL;
        for (yaml_node_pair_t *p = yn->data.mapping.pairs.start; p < yn->data.mapping.pairs.top;
             p++) {
            tnode_t *k = conv(c, fl, p->key), *v = conv(c, fl, p->value);
            if (k == NULL || v == NULL || add(c, m, k, v))
                return NULL;
            if (k->type != T_SCALAR ||
                (strcmp(k->val, "file") != 0 && strcmp(k->val, "vars") != 0)) {
                errat(c, k, "!include takes file: and vars:, not %s",
                      k->type == T_SCALAR ? k->val : type_name(k));
                return NULL;
            }
        }
        tnode_t *f = lookup(m, "file");
        if (f == NULL) {
            errat(c, at, "!include needs file: (the file to include)");
            return NULL;
        }
        if ((name = scalar_text(c, f, "!include file")) == NULL)
            return NULL;
        vars = lookup(m, "vars");
        if (vars != NULL && is_null(vars))
            vars = NULL;
        if (vars != NULL && vars->type != T_MAP) {
            errat(c, vars, "vars of !include must be a mapping of names to values, not %s",
                  type_name(vars));
            return NULL;
        }
    } else {
        errat(c, at, "!include takes a file name or {file: FILE, vars: {...}}");
        return NULL;
    }
    char *path = join(c, fl->file, name);
    if (path == NULL)
        return NULL;
    tnode_t *root = load_file(c, path, at, NULL, NULL, 0);
    if (root == NULL)
        return NULL;
    /* as ESPHome: the included file's defaults: fill the vars not given, its own
     * substitutions: are left for the main pass, and vars not known stay as $name */
    subs_t s = {0};
    tnode_t *own_subs = NULL;
    if (root->type == T_MAP) {
        long i = find_key(root, "substitutions");
        if (i >= 0) {
            own_subs = root->v[i];
            remove_at(root, (size_t)i);
        }
    }
    if (vars != NULL)
        for (size_t i = 0; i < vars->n; i++) {
            const char *v = scalar_text(c, vars->v[i], "each var of !include");
            if (v == NULL || vars->k[i]->type != T_SCALAR ||
                subs_set(c, &s, vars->k[i]->val, v))
                return NULL;
        }
    if (root->type == T_MAP) {
        long i = find_key(root, "defaults");
        if (i >= 0) {
            tnode_t *d = root->v[i];
            if (d->type == T_MAP)
                for (size_t j = 0; j < d->n; j++) {
                    const char *v = scalar_text(c, d->v[j], "each default");
                    if (v == NULL)
                        return NULL;
                    if (d->k[j]->type == T_SCALAR &&
                        subs_get(&s, d->k[j]->val, strlen(d->k[j]->val)) == NULL &&
                        subs_set(c, &s, d->k[j]->val, v))
                        return NULL;
                }
            else if (!is_null(d)) {
                errat(c, d, "defaults: must be a mapping of names to values, not %s",
                      type_name(d));
                return NULL;
            }
            remove_at(root, (size_t)i);
        }
    }
    if (s.n && substitute(c, root, &s, true))
        return NULL;
    if (own_subs != NULL) {
        tnode_t *k = new_scalar(c, own_subs, "substitutions", true);
        if (k == NULL || add(c, root, k, own_subs))
            return NULL;
    }
    return root;
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* !include_dir_list / _named / _merge_list / _merge_named DIR: the .yaml files in DIR
 * (sorted; secrets.yaml and hidden files left out, as ESPHome does) */
static tnode_t *do_include_dir(ctx_t *c, fload_t *fl, const char *tag, const char *name,
                               const tnode_t *at)
{
    bool named = strstr(tag, "named") != NULL, merge = strstr(tag, "merge") != NULL;
    char *dir = join(c, fl->file, name);
    if (dir == NULL)
        return NULL;
    DIR *d = opendir(dir);
    if (d == NULL) {
        errat(c, at, "%s %s: cannot read the folder: %s", tag, dir, strerror(errno));
        return NULL;
    }
    char **names = NULL;
    size_t count = 0, cap = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        size_t l = strlen(e->d_name);
        if (e->d_name[0] == '.' || strcmp(e->d_name, "secrets.yaml") == 0 ||
            strcmp(e->d_name, "secrets.yml") == 0 ||
            !((l > 5 && strcmp(e->d_name + l - 5, ".yaml") == 0) ||
              (l > 4 && strcmp(e->d_name + l - 4, ".yml") == 0)))
            continue;
        if (count == cap) {
            cap = cap ? cap * 2 : 16;
            char **nn = xalloc(c, cap * sizeof *nn);
            if (nn == NULL)
                break;
            if (count)
                memcpy(nn, names, count * sizeof *nn);
            names = nn;
        }
        if ((names[count++] = xstrdup(c, e->d_name)) == NULL)
            break;
    }
    closedir(d);
    if (c->failed)
        return NULL;
    if (count)
        qsort(names, count, sizeof *names, cmp_str);
    tnode_t *out = new_node(c, named ? T_MAP : T_SEQ, at->file, at->line, at->col);
    if (out == NULL)
        return NULL;
    for (size_t i = 0; i < count; i++) {
        size_t ld = strlen(dir), ln = strlen(names[i]);
        bool slash = ld > 0 && dir[ld - 1] == '/';
        char *path = xalloc(c, ld + ln + 2);
        if (path == NULL)
            return NULL;
        memcpy(path, dir, ld);
        if (!slash)
            path[ld++] = '/';
        memcpy(path + ld, names[i], ln);
        tnode_t *r = load_file(c, path, at, NULL, NULL, 0);
        if (r == NULL)
            return NULL;
        if (!merge) {
            tnode_t *k = NULL;
            if (named) {
                char *stem = xstrdup(c, names[i]);
                if (stem == NULL)
                    return NULL;
                *strrchr(stem, '.') = '\0';
                if ((k = new_scalar(c, at, stem, true)) == NULL)
                    return NULL;
            }
            if (add(c, out, k, r))
                return NULL;
        } else if (r->type == (named ? T_MAP : T_SEQ)) {
            for (size_t j = 0; j < r->n; j++)
                if (add(c, out, named ? r->k[j] : NULL, r->v[j]))
                    return NULL;
        }
    }
    return out;
}

static secrets_t *get_secrets(ctx_t *c, const char *path, const tnode_t *at)
{
    for (secrets_t *s = c->secrets; s; s = s->next)
        if (strcmp(s->path, path) == 0)
            return s;
    secrets_t *s = xalloc(c, sizeof *s);
    if (s == NULL || (s->path = xstrdup(c, path)) == NULL)
        return NULL;
    s->next = c->secrets;
    c->secrets = s;
    FILE *f = fopen(path, "rb");
    if (f == NULL) {
        s->err_no = errno;
        return s;
    }
    fclose(f);
    s->root = load_file(c, s->path, at, NULL, NULL, 0);
    if (s->root == NULL)
        return NULL; /* the message says why */
    if (s->root->type != T_MAP) {
        errat(c, at, "%s must be a mapping of names to values", path);
        return NULL;
    }
    return s;
}

/* !secret NAME: from secrets.yaml beside the file that says it; for an included file
 * whose folder has none, from the one beside the main file (ESPHome's rule) */
static tnode_t *do_secret(ctx_t *c, fload_t *fl, const char *name, const tnode_t *at)
{
    char *path = join(c, fl->file, "secrets.yaml");
    if (path == NULL)
        return NULL;
    secrets_t *s = get_secrets(c, path, at);
    if (s == NULL)
        return NULL;
    if (s->root == NULL && strcmp(fl->file, c->path) != 0) {
        char *main_path = join(c, c->path, "secrets.yaml");
        if (main_path == NULL)
            return NULL;
        secrets_t *m = get_secrets(c, main_path, at);
        if (m == NULL)
            return NULL;
        if (m->root == NULL) {
            errat(c, at, "!secret needs %s or %s, which cannot be read (%s)", path, main_path,
                  strerror(s->err_no));
            return NULL;
        }
        s = m;
    }
    if (s->root == NULL) {
        errat(c, at, "!secret needs %s, which cannot be read (%s)", path, strerror(s->err_no));
        return NULL;
    }
    tnode_t *v = lookup(s->root, name);
    if (v == NULL) {
        errat(c, at, "secret '%s' is not defined in %s", name, s->path);
        return NULL;
    }
    if (v->type != T_SCALAR) {
        errat(c, at, "secret '%s' in %s must be a value", name, s->path);
        return NULL;
    }
    tnode_t *n = new_scalar(c, at, v->val, false);
    return n;
}

static tnode_t *do_env_var(ctx_t *c, const char *spec, const tnode_t *at)
{
    /* !env_var NAME [DEFAULT] */
    while (*spec == ' ')
        spec++;
    size_t l = strcspn(spec, " ");
    char *name = xstrndup(c, spec, l);
    if (name == NULL)
        return NULL;
    const char *v = getenv(name);
    if (v == NULL) {
        const char *def = spec + l;
        while (*def == ' ')
            def++;
        if (*def == '\0') {
            errat(c, at, "environment variable '%s' is not defined", name);
            return NULL;
        }
        v = def;
    }
    return new_scalar(c, at, v, false);
}

static bool is_local_tag(const yaml_char_t *tag)
{
    return tag != NULL && tag[0] == '!';
}

static tnode_t *conv_node(ctx_t *c, fload_t *fl, yaml_node_t *yn)
{
    tnode_t *at = new_node(c, T_SCALAR, fl->file, yn->start_mark.line + 1,
                           yn->start_mark.column + 1);
    if (at == NULL)
        return NULL;
    const char *tag = is_local_tag(yn->tag) ? (const char *)yn->tag : NULL;
    if (tag != NULL && strcmp(tag, "!include") == 0)
        return do_include(c, fl, yn, at);
    switch (yn->type) {
    case YAML_SCALAR_NODE: {
        const char *v = (const char *)yn->data.scalar.value;
        if (tag == NULL || strcmp(tag, "!force") == 0) {
            at->val = xstrndup(c, v, yn->data.scalar.length);
            at->plain = yn->data.scalar.style == YAML_PLAIN_SCALAR_STYLE && tag == NULL;
            return at->val ? at : NULL;
        }
        if (strcmp(tag, "!secret") == 0)
            return do_secret(c, fl, v, at);
        if (strcmp(tag, "!env_var") == 0)
            return do_env_var(c, v, at);
        if (strncmp(tag, "!include_dir_", 13) == 0)
            return do_include_dir(c, fl, tag, v, at);
        /* !lambda, !extend, !remove and the like: kept, with their tag */
        at->val = xstrndup(c, v, yn->data.scalar.length);
        at->tag = xstrdup(c, tag);
        return at->val && at->tag ? at : NULL;
    }
    case YAML_SEQUENCE_NODE:
        at->type = T_SEQ;
        for (yaml_node_item_t *i = yn->data.sequence.items.start; i < yn->data.sequence.items.top;
             i++) {
            tnode_t *e = conv(c, fl, *i);
            if (e == NULL || add(c, at, NULL, e))
                return NULL;
        }
        break;
    case YAML_MAPPING_NODE: {
        at->type = T_MAP;
        tnode_t *merged = NULL; /* the pairs of `<<:` values, in order */
        for (yaml_node_pair_t *p = yn->data.mapping.pairs.start; p < yn->data.mapping.pairs.top;
             p++) {
            yaml_node_t *yk = yaml_document_get_node(&fl->doc, p->key);
            if (yk->type == YAML_SCALAR_NODE && yk->data.scalar.style == YAML_PLAIN_SCALAR_STYLE &&
                !is_local_tag(yk->tag) && strcmp((const char *)yk->data.scalar.value, "<<") == 0) {
                tnode_t *v = conv(c, fl, p->value);
                if (v == NULL)
                    return NULL;
                if (merged == NULL &&
                    (merged = new_node(c, T_MAP, fl->file, at->line, at->col)) == NULL)
                    return NULL;
                size_t items = v->type == T_SEQ ? v->n : 1;
                for (size_t i = 0; i < items; i++) {
                    tnode_t *m = v->type == T_SEQ ? v->v[i] : v;
                    if (m->type != T_MAP) {
                        errat(c, m, "a merge key (<<) takes a mapping or a list of mappings, "
                                    "not %s", type_name(m));
                        return NULL;
                    }
                    for (size_t j = 0; j < m->n; j++)
                        if (add(c, merged, m->k[j], m->v[j]))
                            return NULL;
                }
                continue;
            }
            tnode_t *k = conv(c, fl, p->key);
            if (k == NULL)
                return NULL;
            if (k->type != T_SCALAR) {
                errat(c, k, "keys must be names, not %s", type_name(k));
                return NULL;
            }
            long prev = find_key(at, k->val);
            if (prev >= 0) {
                errat(c, k, "duplicate key '%s' (first at line %zu)", k->val,
                      at->k[prev]->line);
                return NULL;
            }
            tnode_t *v = conv(c, fl, p->value);
            if (v == NULL || add(c, at, k, v))
                return NULL;
        }
        /* keys of the mapping itself win, then earlier merged mappings */
        if (merged != NULL)
            for (size_t j = 0; j < merged->n; j++)
                if (merged->k[j]->type == T_SCALAR && find_key(at, merged->k[j]->val) < 0 &&
                    add(c, at, merged->k[j], merged->v[j]))
                    return NULL;
        break;
    }
    default:
        errat(c, at, "empty YAML node");
        return NULL;
    }
    if (tag != NULL && strcmp(tag, "!remove") != 0 && strcmp(tag, "!extend") != 0)
        at->tag = NULL; /* other tags on mappings and lists: nothing to honour */
    else if (tag != NULL && (at->tag = xstrdup(c, tag)) == NULL)
        return NULL;
    return at;
}

static tnode_t *conv(ctx_t *c, fload_t *fl, int index)
{
    if (index < 1 || (size_t)index > fl->count) {
        errat(c, NULL, "bad YAML node");
        return NULL;
    }
    size_t i = (size_t)index - 1;
    if (fl->memo[i] != NULL)
        return fl->memo[i]; /* an alias: the same node again */
    if (fl->busy[i]) {
        yaml_node_t *yn = yaml_document_get_node(&fl->doc, index);
        tnode_t at = {.file = fl->file, .line = yn->start_mark.line + 1,
                      .col = yn->start_mark.column + 1};
        errat(c, &at, "an alias refers to the node that contains it");
        return NULL;
    }
    fl->busy[i] = 1;
    tnode_t *n = conv_node(c, fl, yaml_document_get_node(&fl->doc, index));
    fl->busy[i] = 0;
    fl->memo[i] = n;
    return n;
}

/* Read and convert one file (f or data when given, else path). from is the !include
 * (or !secret) that asked for it, NULL for the main file. An empty document gives a
 * null scalar. */
static tnode_t *load_file(ctx_t *c, const char *path, const tnode_t *from, FILE *f,
                          const uint8_t *data, size_t len)
{
    char *real = NULL;
    if (from != NULL) {
        if (c->depth >= MAX_INCLUDE_DEPTH) {
            errat(c, from, "includes nest more than %d deep (at %s)", MAX_INCLUDE_DEPTH, path);
            return NULL;
        }
        char buf[PATH_MAX];
        if (realpath(path, buf) != NULL) {
            for (int i = 0; i < c->depth; i++)
                if (c->stack_real[i] && strcmp(c->stack_real[i], buf) == 0) {
                    char chain[768] = "";
                    for (int j = i; j < c->depth; j++)
                        snprintf(chain + strlen(chain), sizeof chain - strlen(chain), "%s -> ",
                                 c->stack[j]);
                    snprintf(chain + strlen(chain), sizeof chain - strlen(chain), "%s", path);
                    errat(c, from, "include loop: %s is already being read (%s)", path, chain);
                    return NULL;
                }
            if ((real = xstrdup(c, buf)) == NULL)
                return NULL;
        }
        f = fopen(path, "rb");
        if (f == NULL) {
            errat(c, from, "cannot include %s: %s", path, strerror(errno));
            return NULL;
        }
        /* a directory reads as an error, a device or FIFO may never end */
        struct stat st = {0};
        if (fstat(fileno(f), &st) != 0 || !S_ISREG(st.st_mode)) {
            fclose(f);
            errat(c, from, "cannot include %s: not a regular file%s", path,
                  S_ISDIR(st.st_mode) ? " (a folder: use !include_dir_named or similar)" : "");
            return NULL;
        }
    } else {
        char buf[PATH_MAX];
        if (realpath(path, buf) != NULL && (real = xstrdup(c, buf)) == NULL)
            return NULL;
    }
    const char *file = xstrdup(c, path);
    incl_t *inc = from != NULL ? xalloc(c, sizeof *inc) : NULL;
    if (file == NULL || (from != NULL && inc == NULL)) {
        if (from != NULL)
            fclose(f);
        return NULL;
    }
    if (inc != NULL) {
        inc->file = file;
        inc->from = from;
        inc->next = c->includes;
        c->includes = inc;
    }
    yaml_parser_t parser;
    fload_t fl = {.file = file};
    yaml_parser_initialize(&parser);
    if (f != NULL)
        yaml_parser_set_input_file(&parser, f);
    else
        yaml_parser_set_input_string(&parser, data, len);
    int ok = yaml_parser_load(&parser, &fl.doc);
    if (from != NULL)
        fclose(f);
    if (!ok) {
        tnode_t at = {.file = file,
                      .line = parser.problem_mark.line + 1,
                      .col = parser.problem_mark.column + 1};
        errat(c, &at, "not valid YAML: %s%s%s", parser.problem ? parser.problem : "syntax error",
              parser.context ? " " : "", parser.context ? parser.context : "");
        yaml_parser_delete(&parser);
        return NULL;
    }
    yaml_parser_delete(&parser);
    tnode_t *root;
    yaml_node_t *yroot = yaml_document_get_root_node(&fl.doc);
    if (yroot == NULL) {
        root = new_node(c, T_SCALAR, file, 1, 1);
        if (root && (root->val = xstrdup(c, "")) != NULL)
            root->plain = true;
        else
            root = NULL;
    } else {
        fl.count = (size_t)(fl.doc.nodes.top - fl.doc.nodes.start);
        fl.memo = xalloc(c, fl.count * sizeof *fl.memo);
        fl.busy = xalloc(c, fl.count);
        c->stack[c->depth] = file;
        c->stack_real[c->depth] = real;
        c->depth++;
        root = fl.memo && fl.busy ? conv(c, &fl, 1) : NULL;
        c->depth--;
    }
    yaml_document_delete(&fl.doc);
    return root;
}

/* -------------------------------------------------------- substitutions */

static bool sub_char(char ch)
{
    return isalnum((unsigned char)ch) || ch == '_';
}

/* the first $name / ${name} in s: where it starts, its span and the name */
static const char *find_var(const char *s, const char **name, size_t *name_len, size_t *span)
{
    for (const char *p = strchr(s, '$'); p != NULL; p = strchr(p + 1, '$')) {
        if (p[1] == '{') {
            size_t l = 0;
            while (sub_char(p[2 + l]))
                l++;
            if (p[2 + l] == '}') {
                *name = p + 2;
                *name_len = l;
                *span = l + 3;
                return p;
            }
        } else if (sub_char(p[1])) {
            size_t l = 0;
            while (sub_char(p[1 + l]))
                l++;
            *name = p + 1;
            *name_len = l;
            *span = l + 1;
            return p;
        }
    }
    return NULL;
}

/* s with every known $name / ${name} replaced (unknown ones left as written); the
 * replacement text is not scanned again (ESPHome's second pass does that) */
static char *expand_once(ctx_t *c, const char *s, const subs_t *subs)
{
    size_t cap = strlen(s) + 1, len = 0;
    char *out = NULL;
    const char *p = s;
    for (;;) {
        const char *name;
        size_t nl, span;
        const char *at = find_var(p, &name, &nl, &span);
        const char *val = at ? subs_get(subs, name, nl) : NULL;
        while (at != NULL && val == NULL) {
            at = find_var(at + span, &name, &nl, &span);
            val = at ? subs_get(subs, name, nl) : NULL;
        }
        if (at == NULL) {
            if (out == NULL)
                return (char *)s;
            size_t tail = strlen(p);
            if (len + tail + 1 > cap) {
                char *bigger = xalloc(c, len + tail + 1);
                if (bigger == NULL)
                    return NULL;
                memcpy(bigger, out, len);
                out = bigger;
            }
            memcpy(out + len, p, tail + 1);
            return out;
        }
        size_t lit = (size_t)(at - p), vl = strlen(val);
        if (out == NULL || len + lit + vl + 1 > cap) {
            size_t ncap = (len + lit + vl + 1) * 2 + strlen(p);
            if (ncap > ((size_t)1 << 24)) {
                errat(c, NULL, "substitutions make a value longer than 16 MiB");
                return NULL;
            }
            char *bigger = xalloc(c, ncap);
            if (bigger == NULL)
                return NULL;
            if (out)
                memcpy(bigger, out, len);
            out = bigger;
            cap = ncap;
        }
        memcpy(out + len, p, lit);
        len += lit;
        memcpy(out + len, val, vl);
        len += vl;
        p = at + span;
    }
}

static char *expand(ctx_t *c, const char *s, const subs_t *subs)
{
    char *once = expand_once(c, s, subs);
    if (once == NULL || once == s || strchr(once, '$') == NULL)
        return once;
    return expand_once(c, once, subs); /* ESPHome runs its pass twice */
}

static int substitute_node(ctx_t *c, tnode_t *n, const subs_t *s, bool root, unsigned pass)
{
    if (n->pass == pass)
        return 0;
    n->pass = pass;
    if (n->type == T_SCALAR) {
        char *v = expand(c, n->val, s);
        if (v == NULL)
            return -1;
        n->val = v;
        return 0;
    }
    for (size_t i = 0; i < n->n; i++) {
        if (n->type == T_MAP && !(root && strcmp(n->k[i]->val, "substitutions") == 0) &&
            strchr(n->k[i]->val, '$') != NULL) {
            tnode_t *k = copy_node(c, n->k[i]);
            if (k == NULL || (k->val = expand(c, k->val, s)) == NULL)
                return -1;
            n->k[i] = k;
        }
        if (substitute_node(c, n->v[i], s, false, pass))
            return -1;
    }
    return 0;
}

static int substitute(ctx_t *c, tnode_t *n, const subs_t *s, bool keys_at_root)
{
    return substitute_node(c, n, s, keys_at_root, ++c->pass);
}

/* ------------------------------------------------------------- merging */

static const char *id_of(const tnode_t *item)
{
    if (item->type != T_MAP)
        return NULL;
    tnode_t *id = NULL;
    long i = find_key(item, "id");
    if (i >= 0)
        id = item->v[i];
    return id && id->type == T_SCALAR ? id->val : NULL;
}

static const char *id_tag(const tnode_t *item)
{
    long i = item->type == T_MAP ? find_key(item, "id") : -1;
    return i >= 0 ? item->v[i]->tag : NULL;
}

/* the item with its id: !extend X turned into id: X */
static tnode_t *plain_id(ctx_t *c, const tnode_t *item)
{
    tnode_t *m = copy_node(c, item);
    if (m == NULL)
        return NULL;
    long i = find_key(m, "id");
    tnode_t *id = copy_node(c, m->v[i]);
    if (id == NULL)
        return NULL;
    id->tag = NULL;
    m->v[i] = id;
    return m;
}

/* ESPHome's merge_config(old, new): new wins */
static tnode_t *merge(ctx_t *c, tnode_t *old, tnode_t *new)
{
    if (new->type == T_MAP) {
        if (old->type != T_MAP)
            return new;
        tnode_t *res = copy_node(c, old);
        if (res == NULL)
            return NULL;
        res->tag = new->tag;
        for (size_t i = 0; i < new->n; i++) {
            long j = find_key(res, new->k[i]->val);
            if (tagged(new->v[i], "!remove") && j >= 0) {
                remove_at(res, (size_t)j);
            } else if (j >= 0) {
                tnode_t *m = merge(c, res->v[j], new->v[i]);
                if (m == NULL)
                    return NULL;
                res->v[j] = m;
            } else if (add(c, res, new->k[i], new->v[i])) {
                return NULL;
            }
        }
        return res;
    }
    if (new->type == T_SEQ) {
        if (old->type != T_SEQ)
            return new;
        tnode_t *res = copy_node(c, old);
        if (res == NULL)
            return NULL;
        for (size_t i = 0; i < new->n; i++) {
            tnode_t *v = new->v[i];
            const char *id = id_of(v), *tag = id_tag(v);
            long at = -1;
            for (size_t j = 0; id && j < res->n; j++) {
                const char *oid = id_of(res->v[j]), *otag = id_tag(res->v[j]);
                /* an item of the old list, or a new one with a plain id */
                if (oid && strcmp(oid, id) == 0 &&
                    (tag != NULL ? otag == NULL : (otag && strcmp(otag, "!extend") == 0))) {
                    at = (long)j;
                    break;
                }
            }
            if (at >= 0 && tag && strcmp(tag, "!extend") == 0) {
                tnode_t *pv = plain_id(c, v), *m = pv ? merge(c, res->v[at], pv) : NULL;
                if (m == NULL)
                    return NULL;
                res->v[at] = m;
                continue;
            }
            if (at >= 0 && tag && strcmp(tag, "!remove") == 0) {
                memmove(res->v + at, res->v + at + 1, (res->n - (size_t)at - 1) * sizeof *res->v);
                res->n--;
                continue;
            }
            if (at >= 0 && tag == NULL) { /* the package extends an item of the main file */
                tnode_t *pe = plain_id(c, res->v[at]), *m = pe ? merge(c, v, pe) : NULL;
                if (m == NULL)
                    return NULL;
                res->v[at] = m;
                continue;
            }
            if (add(c, res, NULL, v))
                return NULL;
        }
        return res;
    }
    if (is_null(new))
        return old;
    return new;
}

/* ------------------------------------------------------------- packages */

static bool is_remote(const char *s)
{
    const char *p = strstr(s, "://");
    return p != NULL && p > s;
}

/* ESPHome's do_packages_pass: every package (itself with its packages merged) goes
 * under the configuration, the last package first, so the main file wins over every
 * package and a later package over an earlier one */
static tnode_t *do_packages(ctx_t *c, tnode_t *config)
{
    if (config->type != T_MAP)
        return config;
    long pi = find_key(config, "packages");
    if (pi < 0)
        return config;
    tnode_t *pk = config->v[pi];
    if (is_null(pk) || tagged(pk, "!remove")) {
        tnode_t *res = copy_node(c, config);
        if (res)
            remove_at(res, (size_t)pi);
        return res;
    }
    if (pk->type != T_MAP && pk->type != T_SEQ) {
        errat(c, pk, "packages must be a mapping of names to packages (NAME: !include "
                     "FILE), not %s", type_name(pk));
        return NULL;
    }
    tnode_t *res = config;
    for (size_t i = pk->n; i-- > 0;) {
        tnode_t *p = pk->v[i];
        char num[24];
        snprintf(num, sizeof num, "%zu", i);
        const char *name = pk->type == T_MAP ? pk->k[i]->val : num;
        tnode_t *url = p->type == T_MAP ? lookup(p, "url") : NULL;
        if (url != NULL) {
            errat(c, url, "remote package '%s' is not supported offline: %s (copy the "
                          "file next to this one and use %s: !include FILE)", name,
                  url->type == T_SCALAR ? url->val : "a git url", name);
            return NULL;
        }
        if (p->type == T_SCALAR && is_remote(p->val)) {
            errat(c, p, "remote package '%s' is not supported offline: %s (copy the file "
                        "next to this one and use %s: !include FILE)", name, p->val, name);
            return NULL;
        }
        if (p->type != T_MAP) {
            errat(c, p, "package '%s' must be !include FILE or a mapping of components, not "
                        "%s%s%s%s", name, type_name(p), p->type == T_SCALAR ? " '" : "",
                  p->type == T_SCALAR ? p->val : "", p->type == T_SCALAR ? "'" : "");
            return NULL;
        }
        tnode_t *inner = do_packages(c, p);
        if (inner == NULL)
            return NULL;
        if ((res = merge(c, inner, res)) == NULL)
            return NULL;
    }
    if (res == config && (res = copy_node(c, config)) == NULL)
        return NULL;
    long j = find_key(res, "packages");
    if (j >= 0)
        remove_at(res, (size_t)j);
    return res;
}

/* ------------------------------------------------------------- strings */

/* Optimal string alignment distance: insertions, deletions, substitutions and swaps
 * of neighbours each count 1 (case-insensitive). */
static size_t edit_distance(const char *a, const char *b)
{
    size_t la = strlen(a), lb = strlen(b);
    if (la > 40 || lb > 40)
        return 99;
    size_t d[41][41];
    for (size_t i = 0; i <= la; i++)
        d[i][0] = i;
    for (size_t j = 0; j <= lb; j++)
        d[0][j] = j;
    for (size_t i = 1; i <= la; i++)
        for (size_t j = 1; j <= lb; j++) {
            size_t sub = d[i - 1][j - 1] + (tolower((unsigned char)a[i - 1]) !=
                                            tolower((unsigned char)b[j - 1]));
            size_t del = d[i - 1][j] + 1, ins = d[i][j - 1] + 1;
            d[i][j] = sub < del ? (sub < ins ? sub : ins) : (del < ins ? del : ins);
            if (i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] &&
                d[i - 2][j - 2] + 1 < d[i][j])
                d[i][j] = d[i - 2][j - 2] + 1; /* a swap of two letters is one typo */
        }
    return d[la][lb];
}

/* the closest of known to key when it is close enough to be a typo, else NULL */
static const char *suggest(const char *key, const char *const *known)
{
    const char *best = NULL;
    size_t best_d = 99;
    for (size_t i = 0; known[i] != NULL; i++) {
        size_t d = edit_distance(key, known[i]);
        if (d < best_d) {
            best_d = d;
            best = known[i];
        }
    }
    size_t limit = strlen(key) <= 4 ? 1 : 2;
    return best_d <= limit ? best : NULL;
}

/* The text of a scalar. NULL (error set) if it is not one, or if it still names a
 * substitution nobody defined (a password may hold a '$' of its own). */
static const char *text(ctx_t *c, const tnode_t *n, const char *what)
{
    if (n->type != T_SCALAR) {
        errat(c, n, "%s must be a value, not %s", what, type_name(n));
        return NULL;
    }
    if (n->tag != NULL) {
        errat(c, n, "%s must be a plain value here, not %s", what, n->tag);
        return NULL;
    }
    const char *name;
    size_t nl, span;
    if (strstr(what, "password") == NULL && find_var(n->val, &name, &nl, &span) != NULL) {
        errat(c, n, "%s '%s' uses the substitution '%.*s', which is not defined (add it "
                    "under substitutions: or give -s %.*s VALUE)", what, n->val, (int)nl, name,
              (int)nl, name);
        return NULL;
    }
    return n->val;
}

static int get_string(ctx_t *c, const tnode_t *n, const char *what, char *out, size_t cap)
{
    const char *t = text(c, n, what);
    if (t == NULL)
        return -1;
    if (strlen(t) >= cap)
        return errat(c, n, "%s is too long (at most %zu characters)", what, cap - 1);
    strcpy(out, t);
    return 0;
}

static int get_bool(ctx_t *c, const tnode_t *n, const char *what, bool *out)
{
    const char *t = text(c, n, what);
    if (t == NULL)
        return -1;
    static const char *const yes[] = {"true", "yes", "on", NULL};
    static const char *const no[] = {"false", "no", "off", NULL};
    for (int i = 0; yes[i]; i++) {
        if (strcasecmp(t, yes[i]) == 0) {
            *out = true;
            return 0;
        }
        if (strcasecmp(t, no[i]) == 0) {
            *out = false;
            return 0;
        }
    }
    return errat(c, n, "%s must be true or false, not '%s'", what, t);
}

static int get_int(ctx_t *c, const tnode_t *n, const char *what, long min, long max,
                   long *out)
{
    const char *t = text(c, n, what);
    if (t == NULL)
        return -1;
    char *end;
    errno = 0;
    long v = strtol(t, &end, 10);
    if (*t == '\0' || *end != '\0' || errno != 0)
        return errat(c, n, "%s must be a whole number, not '%s'", what, t);
    if (v < min || v > max)
        return errat(c, n, "%s must be between %ld and %ld, not %ld", what, min, max, v);
    *out = v;
    return 0;
}

int ota_config_parse_time(const char *t, uint32_t *ms)
{
    char *end;
    errno = 0;
    double v = strtod(t, &end);
    if (end == t || errno != 0 || v < 0)
        return -1;
    while (*end == ' ')
        end++;
    double mult;
    if (strcmp(end, "ms") == 0)
        mult = 1;
    else if (strcmp(end, "s") == 0 || strcmp(end, "sec") == 0)
        mult = 1000;
    else if (strcmp(end, "min") == 0)
        mult = 60000;
    else if (strcmp(end, "h") == 0)
        mult = 3600000;
    else
        return -1;
    double r = v * mult;
    if (r > 4294967295.0)
        return -1;
    *ms = (uint32_t)(r + 0.5);
    return 0;
}

static int get_time(ctx_t *c, const tnode_t *n, const char *what, uint32_t *ms)
{
    const char *t = text(c, n, what);
    if (t == NULL)
        return -1;
    if (ota_config_parse_time(t, ms) != 0)
        return errat(c, n, "%s must be a time such as 500ms, 60s, 5min or 1h, not '%s'", what,
                     t);
    return 0;
}

/* -------------------------------------------------------------- mappings */

/* Check every key of mapping m is one of known (exact), else a clear error. */
static int check_keys(ctx_t *c, const tnode_t *m, const char *section,
                      const char *const *known)
{
    for (size_t p = 0; p < m->n; p++) {
        const tnode_t *k = m->k[p];
        bool found = false;
        for (size_t i = 0; known[i] && !found; i++)
            found = strcmp(k->val, known[i]) == 0;
        if (found)
            continue;
        const char *s = suggest(k->val, known);
        if (s)
            return errat(c, k, "unknown key '%s' in %s (did you mean '%s'?)", k->val, section, s);
        char list[768] = "";
        for (size_t i = 0; known[i]; i++)
            snprintf(list + strlen(list), sizeof list - strlen(list), "%s%s", i ? ", " : "",
                     known[i]);
        return errat(c, k, "unknown key '%s' in %s (expected one of: %s)", k->val, section, list);
    }
    return 0;
}

static int need_mapping(ctx_t *c, const tnode_t *n, const char *section, bool null_ok)
{
    if (n->type == T_MAP || (null_ok && is_null(n)))
        return 0;
    return errat(c, n, "%s must be a mapping of settings, not %s", section, type_name(n));
}

/* ------------------------------------------------------------- sections */

/* keys of ESPHome's own that we accept and leave alone */
static const char *const esphome_keys[] = {
    "name", "platform", "board", "friendly_name", "comment", "area", "areas", "build_path",
    "includes", "libraries", "on_boot", "on_shutdown", "on_loop", "on_update", "project",
    "min_version", "name_add_mac_suffix", "platformio_options", "compile_process_limit",
    "arduino_version", "esp8266_restore_from_flash", "board_flash_mode", "devices",
    "debug_scheduler", "environment_variables", NULL};

/* ESPHome's target platforms (esphome: platform: X, or an X: block) */
static const char *const platforms[] = {"bk72xx", "esp32", "esp8266", "host", "libretiny",
                                        "ln882x", "nrf52", "rp2040", "rtl87xx", NULL};

static bool is_platform(const char *name)
{
    for (size_t i = 0; platforms[i]; i++)
        if (strcmp(platforms[i], name) == 0)
            return true;
    return false;
}

static int set_platform(ctx_t *c, ota_node_config_t *cfg, const tnode_t *at,
                        const char *platform)
{
    char low[16];
    size_t n = strlen(platform);
    if (n >= sizeof low)
        n = sizeof low - 1;
    for (size_t i = 0; i < n; i++)
        low[i] = (char)tolower((unsigned char)platform[i]);
    low[n] = '\0';
    if (!is_platform(low) || strlen(platform) >= sizeof low)
        return errat(c, at, "platform must be one of ESPHome's: ESP32, ESP8266, RP2040, BK72XX, "
                            "RTL87XX, LN882X, LIBRETINY, NRF52 or HOST, not '%s'", platform);
    if (cfg->platform[0] && strcmp(cfg->platform, low) != 0)
        return errat(c, at, "the platform is given twice: %s and %s", cfg->platform, low);
    strcpy(cfg->platform, low);
    return 0;
}

static int parse_esphome(ctx_t *c, ota_node_config_t *cfg, const tnode_t *m,
                         const char *section)
{
    if (need_mapping(c, m, section, false) || check_keys(c, m, section, esphome_keys))
        return -1;
    tnode_t *v;
    if ((v = lookup(m, "name")) == NULL)
        return errat(c, m, "%s needs a name (the node's host name, e.g. livingroom)", section);
    if (get_string(c, v, "name", cfg->name, sizeof cfg->name))
        return -1;
    for (const char *p = cfg->name; *p; p++)
        if (!(islower((unsigned char)*p) || isdigit((unsigned char)*p) || *p == '-' ||
              *p == '_'))
            return errat(c, v, "name '%s' may contain only lowercase letters, digits, '-' and "
                               "'_' (it becomes the host name %s.local)", cfg->name, cfg->name);
    if (cfg->name[0] == '\0' || cfg->name[0] == '-')
        return errat(c, v, "name must start with a letter or digit");
    char buf[64];
    if ((v = lookup(m, "platform")) != NULL &&
        (get_string(c, v, "platform", buf, sizeof buf) || set_platform(c, cfg, v, buf)))
        return -1;
    if ((v = lookup(m, "board")) != NULL &&
        get_string(c, v, "board", cfg->board, sizeof cfg->board))
        return -1;
    if ((v = lookup(m, "build_path")) != NULL &&
        get_string(c, v, "build_path", cfg->build_path, sizeof cfg->build_path))
        return -1;
    if ((v = lookup(m, "name_add_mac_suffix")) != NULL &&
        get_bool(c, v, "name_add_mac_suffix", &cfg->name_mac_suffix))
        return -1;
    return 0;
}

uint16_t ota_config_default_port(const char *platform)
{
    if (strcmp(platform, "esp8266") == 0)
        return OTA_PORT_ESP8266;
    if (strcmp(platform, "rp2040") == 0)
        return OTA_PORT_RP2040;
    if (strcmp(platform, "bk72xx") == 0 || strcmp(platform, "rtl87xx") == 0 ||
        strcmp(platform, "ln882x") == 0 || strcmp(platform, "libretiny") == 0)
        return OTA_PORT_LIBRETINY;
    return OTA_PORT_ESP32; /* esp32, and what ESPHome gives no port of its own */
}

/* the keys of ESPHome's platform blocks (esp32, esp8266, rp2040, libretiny's families,
 * host, nrf52) */
static const char *const platform_keys[] = {
    "board", "framework", "variant", "flash_size", "partitions", "restore_from_flash",
    "early_pin_init", "board_flash_mode", "cpu_frequency", "watchdog_timeout", "family",
    "mac_address", "engineering_sample", "bootloader", "dfu", "reg0", "enable_lwip_assert",
    NULL};

/* signed_ota_verification: {signing_key, verification_keys, signing_scheme} (ESPHome's
 * schema; verification_key belongs to its Secure Boot V1 scheme, which nodes here do
 * not verify). Key files are read relative to the main file's folder. */
static const char *const signed_keys[] = {"signing_key", "verification_key", "verification_keys",
                                          "signing_scheme", NULL};

static bool is_hex64(const char *t)
{
    if (strlen(t) != 64)
        return false;
    for (int i = 0; i < 64; i++)
        if (!isxdigit((unsigned char)t[i]))
            return false;
    return true;
}

static int key_digest_at(ctx_t *c, const tnode_t *n, const char *what, uint8_t out[32])
{
    const char *t = text(c, n, what);
    if (t == NULL)
        return -1;
    if (is_hex64(t)) { /* the digest itself, as ESPHome takes it (CI without a key file) */
        for (int i = 0; i < 32; i++) {
            unsigned v;
            sscanf(t + 2 * i, "%2x", &v);
            out[i] = (uint8_t)v;
        }
        return 0;
    }
    if (strspn(t, "0123456789abcdefABCDEFx") == strlen(t))
        return errat(c, n, "'%s' looks like a key digest but must be exactly 64 hex characters "
                           "(a SHA-256, no '0x' prefix)", t);
    char *path = join(c, c->path, t);
    if (path == NULL)
        return -1;
    char why[300];
    if (imgsign_key_digest(path, out, NULL, why, sizeof why) != 0)
        return errat(c, n, "%s: %s", what, why);
    return 0;
}

static int parse_signed(ctx_t *c, ota_node_config_t *cfg, const tnode_t *key, const tnode_t *m)
{
    if (cfg->signed_ota)
        return errat(c, key, "signed_ota_verification: given twice (keep the one under the "
                             "platform's framework: advanced:)");
    cfg->signed_ota = true;
    strcpy(cfg->signing_scheme, "rsa3072");
    if (is_null(m))
        return errat(c, key, "signed_ota_verification: names no key: nodes here check images "
                             "against the keys they were built with; add verification_keys: "
                             "[KEY.pub.pem] or signing_key: KEY.pem");
    if (need_mapping(c, m, "signed_ota_verification", false) ||
        check_keys(c, m, "signed_ota_verification", signed_keys))
        return -1;
    tnode_t *v;
    if ((v = lookup(m, "signing_scheme")) != NULL) {
        char s[16];
        if (get_string(c, v, "signing_scheme", s, sizeof s))
            return -1;
        for (char *q = s; *q; q++)
            *q = (char)tolower((unsigned char)*q);
        if (strcmp(s, "ecdsa_v1") == 0)
            return errat(c, v, "signing_scheme ecdsa_v1 (Secure Boot V1) is not supported here: "
                               "use rsa3072 or ecdsa256 (Secure Boot V2)");
        if (strcmp(s, "rsa3072") != 0 && strcmp(s, "ecdsa256") != 0)
            return errat(c, v, "signing_scheme takes rsa3072 or ecdsa256, not '%s'", s);
        strcpy(cfg->signing_scheme, s);
    }
    if ((v = lookup(m, "verification_key")) != NULL)
        return errat(c, v, "verification_key is only used with signing_scheme ecdsa_v1; with "
                           "%s the public key travels in each image's signature block: list "
                           "the trusted ones in verification_keys", cfg->signing_scheme);
    tnode_t *sk = lookup(m, "signing_key"), *vk = lookup(m, "verification_keys");
    if (sk != NULL && vk != NULL)
        return errat(c, vk, "verification_keys verifies externally-signed images and cannot be "
                            "combined with signing_key (which signs during the build); "
                            "provide one or the other");
    if (sk != NULL) {
        const char *t = text(c, sk, "signing_key");
        char *path = t ? join(c, c->path, t) : NULL;
        if (path == NULL)
            return -1;
        if (strlen(path) >= sizeof cfg->signing_key)
            return errat(c, sk, "signing_key: the path is too long");
        strcpy(cfg->signing_key, path);
        if (key_digest_at(c, sk, "signing_key", cfg->trusted[0]))
            return -1;
        cfg->n_trusted = 1;
        snprintf(cfg->trusted_from[0], sizeof cfg->trusted_from[0], "signing_key");
    }
    if (vk != NULL) {
        const tnode_t *items[3];
        size_t n = 0;
        if (vk->type == T_SEQ) {
            if (vk->n == 0 || vk->n > 3)
                return errat(c, vk, "verification_keys takes 1 to 3 keys (a signature sector "
                                    "holds 3 blocks), not %zu", vk->n);
            for (size_t i = 0; i < vk->n; i++)
                items[n++] = vk->v[i];
        } else {
            items[n++] = vk;
        }
        for (size_t i = 0; i < n; i++) {
            if (key_digest_at(c, items[i], "verification_keys", cfg->trusted[i]))
                return -1;
            for (size_t j = 0; j < i; j++)
                if (memcmp(cfg->trusted[i], cfg->trusted[j], 32) == 0)
                    return errat(c, items[i], "verification_keys entries must be unique "
                                              "(this one is entry %zu again)", j);
            snprintf(cfg->trusted_from[i], sizeof cfg->trusted_from[i],
                     "verification_keys[%zu]", i);
        }
        cfg->n_trusted = n;
    }
    if (cfg->n_trusted == 0)
        return errat(c, m, "signed_ota_verification: names no key: add verification_keys: "
                           "[KEY.pub.pem] (or their digests) or signing_key: KEY.pem");
    return 0;
}

static int parse_platform_block(ctx_t *c, ota_node_config_t *cfg, const tnode_t *key,
                                const tnode_t *m)
{
    if (set_platform(c, cfg, key, key->val))
        return -1;
    if (is_null(m))
        return 0;
    if (need_mapping(c, m, key->val, false) || check_keys(c, m, key->val, platform_keys))
        return -1;
    tnode_t *v = lookup(m, "board");
    if (v != NULL && get_string(c, v, "board", cfg->board, sizeof cfg->board))
        return -1;
    /* framework: advanced: signed_ota_verification: (ESPHome's place for it) */
    tnode_t *fw = lookup(m, "framework"), *adv = NULL, *so = NULL;
    if (fw != NULL && fw->type == T_MAP)
        adv = lookup(fw, "advanced");
    if (adv != NULL && adv->type == T_MAP)
        so = lookup(adv, "signed_ota_verification");
    if (so != NULL) {
        long i = find_key(adv, "signed_ota_verification");
        if (parse_signed(c, cfg, adv->k[i], so))
            return -1;
    }
    return 0;
}

static int parse_safe_mode_settings(ctx_t *c, ota_node_config_t *cfg, const tnode_t *m)
{
    tnode_t *v;
    long n;
    if ((v = lookup(m, "num_attempts")) != NULL) {
        if (get_int(c, v, "num_attempts", 1, 1000, &n))
            return -1;
        cfg->num_attempts = (uint32_t)n;
    }
    if ((v = lookup(m, "boot_is_good_after")) != NULL &&
        get_time(c, v, "boot_is_good_after", &cfg->boot_is_good_after_ms))
        return -1;
    if ((v = lookup(m, "reboot_timeout")) != NULL &&
        get_time(c, v, "reboot_timeout", &cfg->reboot_timeout_ms))
        return -1;
    return 0;
}

static const char *const ota_keys[] = {
    "platform", "id", "password", "port", "version", "safe_mode", "num_attempts",
    "reboot_timeout", "boot_is_good_after", "legacy_auth", "allow_md5", "rollback_after",
    "arduino_port", "arduino_auth",
    "on_begin", "on_progress", "on_end", "on_error", "on_abort", "on_state_change",
    "encryption", NULL};

static int parse_ota_entry(ctx_t *c, ota_node_config_t *cfg, const tnode_t *m,
                           const char *section)
{
    if (need_mapping(c, m, section, true))
        return -1;
    cfg->has_ota = true;
    if (is_null(m))
        return 0;
    if (check_keys(c, m, section, ota_keys))
        return -1;
    tnode_t *v;
    long n;
    if ((v = lookup(m, "id")) != NULL) {
        if (get_string(c, v, "id", cfg->ota_id, sizeof cfg->ota_id))
            return -1;
        for (const char *p = cfg->ota_id; *p; p++)
            if (!(isalnum((unsigned char)*p) || *p == '_') || isdigit((unsigned char)cfg->ota_id[0]))
                return errat(c, v, "id '%s' must be a C identifier (letters, digits, '_', not "
                                   "starting with a digit)", cfg->ota_id);
    }
    /* ESPHome's newer encrypted OTA (a Noise key): its nodes still take plain uploads,
     * which is what this tool sends; say so (ota_config_warn) rather than refuse */
    if ((v = lookup(m, "encryption")) != NULL && !is_null(v)) {
        if (need_mapping(c, v, "ota encryption", false))
            return -1;
        cfg->ota_encryption = true;
    }
    if ((v = lookup(m, "password")) != NULL) {
        if (get_string(c, v, "password", cfg->password, sizeof cfg->password))
            return -1;
        cfg->password_set = cfg->password[0] != '\0';
    }
    if ((v = lookup(m, "port")) != NULL) {
        if (get_int(c, v, "port", 1, 65535, &n))
            return -1;
        cfg->port = (uint16_t)n;
    }
    if ((v = lookup(m, "version")) != NULL) {
        if (get_int(c, v, "version", 1, 2, &n))
            return -1;
        cfg->version = (uint8_t)n;
    }
    if ((v = lookup(m, "safe_mode")) != NULL && get_bool(c, v, "safe_mode", &cfg->safe_mode))
        return -1;
    if ((v = lookup(m, "legacy_auth")) != NULL &&
        get_bool(c, v, "legacy_auth", &cfg->legacy_auth))
        return -1;
    if ((v = lookup(m, "allow_md5")) != NULL && get_bool(c, v, "allow_md5", &cfg->allow_md5))
        return -1;
    if ((v = lookup(m, "arduino_port")) != NULL) {
        if (get_int(c, v, "arduino_port", 1, 65535, &n))
            return -1;
        cfg->arduino_port = (uint16_t)n;
        cfg->arduino = true;
    }
    if ((v = lookup(m, "arduino_auth")) != NULL) {
        if (get_string(c, v, "arduino_auth", cfg->arduino_auth, sizeof cfg->arduino_auth) ||
            (strcmp(cfg->arduino_auth, "sha256") != 0 && strcmp(cfg->arduino_auth, "md5") != 0)) {
            c->failed = false; /* this message says more than get_string's */
            return errat(c, v, "arduino_auth takes sha256 (current ArduinoOTA cores) or md5 "
                               "(older ones)");
        }
        cfg->arduino = true;
    }
    if ((v = lookup(m, "rollback_after")) != NULL) {
        if (get_int(c, v, "rollback_after", 1, 100, &n))
            return -1;
        cfg->rollback_after = (uint32_t)n;
    }
    return parse_safe_mode_settings(c, cfg, m);
}

static int parse_ota(ctx_t *c, ota_node_config_t *cfg, const tnode_t *n)
{
    if (n->type != T_SEQ)
        return parse_ota_entry(c, cfg, n, "ota"); /* the older form: one mapping */
    /* ESPHome merges the esphome entries of one port into one (a package's and the
     * main file's, say); this node serves one port */
    tnode_t *ours = NULL;
    for (size_t i = 0; i < n->n; i++) {
        tnode_t *e = n->v[i];
        if (need_mapping(c, e, "each ota entry", false))
            return -1;
        tnode_t *p = lookup(e, "platform");
        if (p == NULL)
            return errat(c, e, "each ota entry needs a platform (esphome for this uploader)");
        const char *plat = text(c, p, "platform");
        if (plat == NULL)
            return -1;
        if (strcmp(plat, "esphome") != 0)
            continue; /* web_server, http_request...: not ours to check */
        if (ours != NULL) {
            tnode_t *p1 = lookup(ours, "port"), *p2 = lookup(e, "port");
            if (p1 && p2 && p1->type == T_SCALAR && p2->type == T_SCALAR &&
                strcmp(p1->val, p2->val) != 0)
                return errat(c, e, "only one ota entry may use platform: esphome (or several "
                                   "with the same port): this one has port %s, the one at line "
                                   "%zu port %s", p2->val, ours->line, p1->val);
            tnode_t *w1 = lookup(ours, "password"), *w2 = lookup(e, "password");
            if (w1 && w2 && w1->type == T_SCALAR && w2->type == T_SCALAR &&
                strcmp(w1->val, w2->val) != 0)
                return errat(c, e, "two ota entries of platform: esphome on one port have "
                                   "different passwords (ESPHome refuses this too)");
            tnode_t *m = merge(c, ours, e);
            if (m == NULL)
                return -1;
            m->line = ours->line;
            m->col = ours->col;
            ours = m;
        } else {
            ours = e;
        }
    }
    return ours ? parse_ota_entry(c, cfg, ours, "ota (platform: esphome)") : 0;
}

static const char *const safe_mode_keys[] = {"id", "disabled", "num_attempts",
                                             "boot_is_good_after", "reboot_timeout",
                                             "on_safe_mode", NULL};

static int parse_safe_mode(ctx_t *c, ota_node_config_t *cfg, const tnode_t *m)
{
    if (is_null(m))
        return 0;
    if (need_mapping(c, m, "safe_mode", false) || check_keys(c, m, "safe_mode", safe_mode_keys))
        return -1;
    tnode_t *v = lookup(m, "disabled");
    bool disabled = false;
    if (v != NULL && get_bool(c, v, "disabled", &disabled))
        return -1;
    if (disabled)
        cfg->safe_mode = false;
    return parse_safe_mode_settings(c, cfg, m);
}

static const char *const logger_keys[] = {
    "port", "level", "baud_rate", "logs", "hardware_uart", "tx_buffer_size", "deassert_rts_dtr",
    "id", "esp8266_store_log_strings_in_flash", "on_message", "initial_level",
    "task_log_buffer_size", NULL};

static int parse_logger(ctx_t *c, ota_node_config_t *cfg, const tnode_t *m)
{
    cfg->logger = true;
    if (is_null(m))
        return 0;
    if (need_mapping(c, m, "logger", false) || check_keys(c, m, "logger", logger_keys))
        return -1;
    tnode_t *v = lookup(m, "port");
    long n;
    if (v != NULL) {
        if (get_int(c, v, "logger port", 1, 65535, &n))
            return -1;
        cfg->log_port = (uint16_t)n;
    }
    return 0;
}

/* mdns: as in ESPHome: `disabled: true` turns the responder off; extra services
 * are ESPHome's business (this node advertises its OTA services only) */
static const char *const mdns_keys[] = {"disabled", "services", "id", NULL};

static int parse_mdns(ctx_t *c, ota_node_config_t *cfg, const tnode_t *m)
{
    if (is_null(m))
        return 0;
    if (need_mapping(c, m, "mdns", false) || check_keys(c, m, "mdns", mdns_keys))
        return -1;
    tnode_t *v = lookup(m, "disabled");
    bool disabled = false;
    if (v != NULL && get_bool(c, v, "disabled", &disabled))
        return -1;
    cfg->mdns = !disabled;
    return 0;
}

/* update: - platform: http_request, source: URL, update_interval: 6h (ESPHome's
 * keys); other update platforms are ESPHome's business. */
static const char *const update_keys[] = {
    "platform", "source", "update_interval", "name", "id", "icon", "entity_category",
    "disabled_by_default", "internal", "device_class", "web_server", "on_update_available",
    "on_state", NULL};

static int parse_update(ctx_t *c, ota_node_config_t *cfg, const tnode_t *n)
{
    if (is_null(n))
        return 0;
    if (n->type != T_SEQ)
        return errat(c, n, "update: takes a list of entries (- platform: http_request ...)");
    const tnode_t *ours = NULL;
    for (size_t i = 0; i < n->n; i++) {
        tnode_t *e = n->v[i];
        if (need_mapping(c, e, "each update entry", false))
            return -1;
        tnode_t *p = lookup(e, "platform");
        if (p == NULL)
            return errat(c, e, "each update entry needs a platform (http_request for pull "
                               "updates)");
        const char *plat = text(c, p, "platform");
        if (plat == NULL)
            return -1;
        if (strcmp(plat, "http_request") != 0)
            continue;
        if (ours != NULL)
            return errat(c, e, "only one update entry of platform: http_request is supported "
                               "(the other is at line %zu)", ours->line);
        ours = e;
        if (check_keys(c, e, "update (platform: http_request)", update_keys))
            return -1;
        tnode_t *v = lookup(e, "source");
        if (v == NULL)
            return errat(c, e, "update (platform: http_request) needs source: the URL of the "
                               "manifest.json that 'ota publish' wrote");
        if (get_string(c, v, "source", cfg->pull_url, sizeof cfg->pull_url))
            return -1;
        if (strncmp(cfg->pull_url, "http://", 7) != 0 && strncmp(cfg->pull_url, "https://", 8) != 0)
            return errat(c, v, "source '%s' is not an http:// or https:// URL", cfg->pull_url);
        cfg->pull_interval_ms = 6u * 3600u * 1000u; /* ESPHome's default */
        if ((v = lookup(e, "update_interval")) != NULL) {
            if (get_time(c, v, "update_interval", &cfg->pull_interval_ms))
                return -1;
            if (cfg->pull_interval_ms < 1000u)
                return errat(c, v, "update_interval must be at least 1s");
        }
        cfg->pull = true;
    }
    return 0;
}

/* ------------------------------------------------------ where the node is */

static const char *const manual_ip_keys[] = {"static_ip", "gateway", "subnet", "dns1", "dns2",
                                             NULL};

/* manual_ip: {static_ip, ...}: the static_ip, checked, into ip (or "" when m is null) */
static int parse_manual_ip(ctx_t *c, const tnode_t *m, const char *section, char *ip,
                           size_t cap)
{
    ip[0] = '\0';
    if (is_null(m))
        return 0;
    if (need_mapping(c, m, section, false) || check_keys(c, m, section, manual_ip_keys))
        return -1;
    static const char *const required[] = {"static_ip", "gateway", "subnet"};
    for (size_t i = 0; i < 3; i++)
        if (lookup(m, required[i]) == NULL)
            return errat(c, m, "%s needs %s (ESPHome asks for static_ip, gateway and subnet)",
                         section, required[i]);
    for (size_t i = 0; manual_ip_keys[i]; i++) {
        tnode_t *v = lookup(m, manual_ip_keys[i]);
        char buf[64];
        struct in_addr a;
        if (v == NULL)
            continue;
        if (get_string(c, v, manual_ip_keys[i], buf, sizeof buf))
            return -1;
        if (inet_pton(AF_INET, buf, &a) != 1)
            return errat(c, v, "%s must be an IPv4 address such as 192.168.1.50, not '%s'",
                         manual_ip_keys[i], buf);
        if (i == 0)
            snprintf(ip, cap, "%s", buf);
    }
    return 0;
}

static const char *const wifi_keys[] = {
    "ssid", "password", "networks", "manual_ip", "eap", "ap", "domain", "reboot_timeout",
    "power_save_mode", "fast_connect", "use_address", "output_power", "enable_btm",
    "enable_rrm", "passive_scan", "enable_on_boot", "on_connect", "on_disconnect", "id",
    "min_auth_mode", "post_connect_roaming", "enable_mdns", "band_mode", NULL};

static const char *const wifi_network_keys[] = {"ssid", "password", "channel", "manual_ip",
                                                "bssid", "hidden", "priority", "eap", NULL};

static const char *const ethernet_keys[] = {
    "type", "mdc_pin", "mdio_pin", "clk_mode", "phy_addr", "power_pin", "phy_registers",
    "clk_pin", "miso_pin", "mosi_pin", "cs_pin", "interrupt_pin", "reset_pin", "clock_speed",
    "polling_interval", "manual_ip", "domain", "use_address", "id", "enable_mdns",
    "on_connect", "on_disconnect", "mac_address", "interface", "clk", NULL};

typedef struct where {
    char use_address[256];
    char static_ip[64];
    char domain[128];
    const char *ip_from;      /* "manual_ip" or "networks: manual_ip" */
    bool present;
} where_t;

/* use_address, manual_ip and domain of wifi: or ethernet: */
static int parse_net(ctx_t *c, const tnode_t *m, const char *section,
                     const char *const *keys, where_t *w)
{
    w->present = true;
    if (is_null(m))
        return 0;
    if (need_mapping(c, m, section, false) || check_keys(c, m, section, keys))
        return -1;
    tnode_t *v;
    if ((v = lookup(m, "use_address")) != NULL) {
        if (get_string(c, v, "use_address", w->use_address, sizeof w->use_address))
            return -1;
        if (w->use_address[0] == '\0')
            return errat(c, v, "use_address must not be empty");
    }
    if ((v = lookup(m, "domain")) != NULL) {
        if (get_string(c, v, "domain", w->domain, sizeof w->domain))
            return -1;
        if (w->domain[0] != '\0' && w->domain[0] != '.')
            return errat(c, v, "domain must start with '.', as in .local or .lan");
    }
    char section_ip[64];
    snprintf(section_ip, sizeof section_ip, "%s manual_ip", section);
    if ((v = lookup(m, "manual_ip")) != NULL &&
        parse_manual_ip(c, v, section_ip, w->static_ip, sizeof w->static_ip))
        return -1;
    if (w->static_ip[0])
        w->ip_from = "manual_ip";
    if (strcmp(section, "wifi") != 0 || (v = lookup(m, "networks")) == NULL || is_null(v))
        return 0;
    if (v->type != T_SEQ && v->type != T_MAP)
        return errat(c, v, "wifi networks must be a list of networks, not %s", type_name(v));
    size_t count = v->type == T_SEQ ? v->n : 1;
    const tnode_t *first_ip = NULL;
    for (size_t i = 0; i < count; i++) {
        const tnode_t *net = v->type == T_SEQ ? v->v[i] : v;
        if (need_mapping(c, net, "each wifi network", false) ||
            check_keys(c, net, "wifi networks", wifi_network_keys))
            return -1;
        tnode_t *ipm = lookup(net, "manual_ip");
        char ip[64];
        if (ipm == NULL || parse_manual_ip(c, ipm, "wifi networks manual_ip", ip, sizeof ip))
            continue;
        if (ip[0] == '\0')
            continue;
        if (w->ip_from != NULL && strcmp(w->ip_from, "manual_ip") == 0)
            continue; /* wifi: manual_ip comes first */
        if (first_ip != NULL && strcmp(ip, w->static_ip) != 0 && w->use_address[0] == '\0')
            return errat(c, ipm, "wifi networks have two static IPs (%s and %s): set "
                                 "use_address (ESPHome asks for it too)", w->static_ip, ip);
        first_ip = ipm;
        snprintf(w->static_ip, sizeof w->static_ip, "%s", ip);
        w->ip_from = "networks: manual_ip";
    }
    return c->failed ? -1 : 0;
}

/* ESPHome's use_address: wifi's, else ethernet's; each: use_address, else the static
 * IP, else name + domain (only set here when the domain is not .local) */
static void resolve_address(ota_node_config_t *cfg, const where_t *wifi, const where_t *eth)
{
    const where_t *ws[2] = {wifi, eth};
    const char *names[2] = {"wifi", "ethernet"};
    for (int i = 0; i < 2; i++) {
        const where_t *w = ws[i];
        if (!w->present)
            continue;
        if (w->use_address[0]) {
            snprintf(cfg->address, sizeof cfg->address, "%s", w->use_address);
            snprintf(cfg->address_source, sizeof cfg->address_source, "%s: use_address",
                     names[i]);
        } else if (w->static_ip[0]) {
            snprintf(cfg->address, sizeof cfg->address, "%s", w->static_ip);
            snprintf(cfg->address_source, sizeof cfg->address_source, "%s: %s", names[i],
                     w->ip_from);
        } else if (w->domain[0] && strcmp(w->domain, ".local") != 0) {
            snprintf(cfg->address, sizeof cfg->address, "%s%s", cfg->name, w->domain);
            snprintf(cfg->address_source, sizeof cfg->address_source, "%s: domain", names[i]);
        } else {
            continue; /* <name>.local; ESPHome stops at the first block present */
        }
        return;
    }
}

/* ---------------------------------------------------------- substitutions */

static int check_sub_key(ctx_t *c, const tnode_t *k, const char **name)
{
    const char *s = k->val;
    if (s[0] == '$')
        s++;
    if (s[0] == '\0')
        return errat(c, k, "a substitution needs a name");
    if (isdigit((unsigned char)s[0]))
        return errat(c, k, "substitution '%s' must not start with a digit", s);
    for (const char *p = s; *p; p++)
        if (!sub_char(*p))
            return errat(c, k, "substitution '%s' may contain only letters, digits and '_' "
                               "(not '%c')", s, *p);
    *name = s;
    return 0;
}

/* the file's substitutions:, then the caller's over them; the values are expanded in
 * order, twice, as ESPHome's two passes do; then every scalar and key */
static int do_substitutions(ctx_t *c, tnode_t *root, const ota_config_subst_t *cl,
                            size_t n_cl)
{
    subs_t s = {0};
    tnode_t *m = lookup(root, "substitutions");
    if (m != NULL && !is_null(m)) {
        if (m->type != T_MAP)
            return errat(c, m, "substitutions must be a mapping of names to values, not %s",
                         type_name(m));
        for (size_t i = 0; i < m->n; i++) {
            const char *name = NULL;
            if (check_sub_key(c, m->k[i], &name))
                return -1;
            if (m->v[i]->type != T_SCALAR)
                return errat(c, m->v[i], "substitution '%s' must be a value, not %s", name,
                             type_name(m->v[i]));
            if (subs_set(c, &s, name, m->v[i]->val))
                return -1;
        }
    }
    for (size_t i = 0; i < n_cl; i++) {
        const char *name = cl[i].name;
        if (name[0] == '$')
            name++;
        if (name[0] == '\0' || isdigit((unsigned char)name[0]))
            return errat(c, NULL, "substitution '%s' given on the command line is not a valid "
                                  "name", cl[i].name);
        for (const char *p = name; *p; p++)
            if (!sub_char(*p))
                return errat(c, NULL, "substitution '%s' given on the command line may contain "
                                      "only letters, digits and '_'", cl[i].name);
        if (subs_set(c, &s, name, cl[i].value))
            return -1;
    }
    if (s.n == 0)
        return 0;
    for (int pass = 0; pass < 2; pass++)
        for (size_t i = 0; i < s.n; i++) {
            const char *v = expand_once(c, s.value[i], &s);
            if (v == NULL)
                return -1;
            s.value[i] = v;
        }
    return substitute(c, root, &s, true);
}

/* ------------------------------------------------------------------ load */

static int validate(ctx_t *c, ota_node_config_t *cfg, tnode_t *root)
{
    where_t wifi = {0}, eth = {0};
    const tnode_t *esphome = NULL;
    for (size_t p = 0; p < root->n; p++) {
        tnode_t *k = root->k[p], *v = root->v[p];
        const char *key = k->val;
        int rc = 0;
        if (tagged(v, "!remove"))
            continue; /* removed from a package, with nothing to remove */
        if (strcmp(key, "esphome") == 0 || strcmp(key, "esphomeyaml") == 0) {
            if (esphome != NULL)
                return errat(c, k, "esphome: and esphomeyaml: both present; keep one");
            esphome = k;
            rc = parse_esphome(c, cfg, v, key);
        } else if (is_platform(key)) {
            rc = parse_platform_block(c, cfg, k, v);
        } else if (strcmp(key, "ota") == 0) {
            rc = parse_ota(c, cfg, v);
        } else if (strcmp(key, "signed_ota_verification") == 0) {
            rc = parse_signed(c, cfg, k, v); /* for platforms without a framework: block */
        } else if (strcmp(key, "safe_mode") == 0) {
            rc = parse_safe_mode(c, cfg, v);
        } else if (strcmp(key, "logger") == 0) {
            rc = parse_logger(c, cfg, v);
        } else if (strcmp(key, "mdns") == 0) {
            rc = parse_mdns(c, cfg, v);
        } else if (strcmp(key, "update") == 0) {
            rc = parse_update(c, cfg, v);
        } else if (strcmp(key, "wifi") == 0) {
            rc = parse_net(c, v, "wifi", wifi_keys, &wifi);
        } else if (strcmp(key, "ethernet") == 0) {
            rc = parse_net(c, v, "ethernet", ethernet_keys, &eth);
        }
        /* every other component is ESPHome's business: left alone */
        if (rc)
            return -1;
    }
    if (esphome == NULL)
        return errat(c, root, "missing esphome: block with the node's name");
    if (cfg->platform[0] == '\0')
        return errat(c, root, "no platform: add a platform block (esp32:, esp8266:, rp2040:, "
                              "bk72xx:, rtl87xx:, host: ...) or platform: under esphome:");
    resolve_address(cfg, &wifi, &eth);
    if (cfg->port == 0)
        cfg->port = ota_config_default_port(cfg->platform);
    if (cfg->ota_id[0] == '\0')
        strcpy(cfg->ota_id, "ota");
    if (cfg->log_port == 0)
        cfg->log_port = (uint16_t)OTA_LOG_DEFAULT_PORT(cfg->port);
    if (cfg->allow_md5 && !cfg->legacy_auth)
        return errat(c, root, "allow_md5 needs legacy_auth: true (MD5 works only with the plain "
                              "password on the node)");
    if (cfg->legacy_auth && !cfg->password_set)
        return errat(c, root, "legacy_auth needs a password");
    if (cfg->arduino_auth[0] != '\0' && !cfg->password_set)
        return errat(c, root, "arduino_auth needs a password (without one, arduino_port alone "
                              "enables ArduinoOTA with no password)");
    if (cfg->arduino && cfg->password_set && cfg->arduino_auth[0] == '\0')
        strcpy(cfg->arduino_auth, "sha256");
    if (cfg->arduino && cfg->arduino_port == 0)
        cfg->arduino_port =
            strcmp(cfg->platform, "esp32") == 0 ? OTA_PORT_ESP32 : OTA_PORT_ESP8266;
    return 0;
}

static int load(const char *path, FILE *f, const uint8_t *data, size_t len,
                const ota_config_subst_t *subs, size_t n_subs, ota_node_config_t *out,
                char *err, size_t err_cap)
{
    ctx_t c;
    memset(&c, 0, sizeof c);
    c.path = path;
    c.err = err;
    c.cap = err_cap;
    if (err_cap)
        err[0] = '\0';
    ota_node_config_t cfg;
    memset(&cfg, 0, sizeof cfg);
    snprintf(cfg.file, sizeof cfg.file, "%s", path);
    cfg.version = 2;
    cfg.safe_mode = true;
    cfg.num_attempts = OTA_SAFE_MODE_DEFAULT_NUM_ATTEMPTS;
    cfg.boot_is_good_after_ms = OTA_SAFE_MODE_DEFAULT_BOOT_IS_GOOD_AFTER_MS;
    cfg.reboot_timeout_ms = OTA_SAFE_MODE_DEFAULT_REBOOT_TIMEOUT_MS;
    cfg.rollback_after = 3;
    cfg.mdns = true;
    int rc = -1;
    tnode_t *root = load_file(&c, path, NULL, f, data, len);
    if (root == NULL) {
        if (!c.failed)
            errat(&c, NULL, "cannot be read");
    } else if (is_null(root)) {
        errat(&c, NULL, "the file is empty: expected a node configuration with esphome: "
                        "(name) and ota:");
    } else if (root->type != T_MAP) {
        errat(&c, root, "a node configuration must be a mapping of components (esphome:, "
                        "ota:, ...), not %s", type_name(root));
    } else if ((root = do_packages(&c, root)) != NULL &&
               do_substitutions(&c, root, subs, n_subs) == 0) {
        rc = validate(&c, &cfg, root);
    }
    if (rc != 0 && !c.failed)
        errat(&c, NULL, "cannot be loaded");
    arena_free(&c); /* wipes the tree: it held the password and the secrets */
    if (rc == 0)
        *out = cfg; /* nothing is applied unless everything passed */
    memset(&cfg, 0, sizeof cfg);
    return rc;
}

int ota_config_load_ex(const char *path, const ota_config_subst_t *subs, size_t n_subs,
                       ota_node_config_t *out, char *err, size_t err_cap)
{
    FILE *f = fopen(path, "rb");
    if (f == NULL) {
        snprintf(err, err_cap, "%s: cannot read: %s", path, strerror(errno));
        return -1;
    }
    int rc = load(path, f, NULL, 0, subs, n_subs, out, err, err_cap);
    fclose(f);
    return rc;
}

int ota_config_load(const char *path, ota_node_config_t *out, char *err, size_t err_cap)
{
    return ota_config_load_ex(path, NULL, 0, out, err, err_cap);
}

int ota_config_load_buffer(const char *name, const uint8_t *data, size_t len,
                           ota_node_config_t *cfg, char *err, size_t err_cap)
{
    return load(name, NULL, data, len, NULL, 0, cfg, err, err_cap);
}

void ota_config_print(const ota_node_config_t *cfg)
{
    printf("file:               %s\n", cfg->file);
    if (cfg->name_mac_suffix)
        printf("name:               %s-<MAC suffix> (name_add_mac_suffix: the host is "
               "%s-xxxxxx.local, xxxxxx the last 6 hex digits of its MAC)\n",
               cfg->name, cfg->name);
    else
        printf("name:               %s (host %s.local)\n", cfg->name, cfg->name);
    printf("platform:           %s%s%s\n", cfg->platform, cfg->board[0] ? ", board " : "",
           cfg->board);
    if (cfg->address[0])
        printf("address:            %s (from %s)\n", cfg->address, cfg->address_source);
    else if (cfg->name_mac_suffix)
        printf("address:            unknown: the name has a MAC suffix; upload, run and logs "
               "ask mDNS for %s-xxxxxx (or set wifi: use_address / manual_ip)\n", cfg->name);
    else
        printf("address:            %s.local (mDNS%s)\n", cfg->name,
               cfg->mdns ? "" : "; but mdns: is disabled: set wifi: use_address or manual_ip");
    if (!cfg->has_ota) {
        printf("ota:                not configured\n");
        return;
    }
    printf("ota id:             %s\n", cfg->ota_id);
    printf("ota port:           %u\n", (unsigned)cfg->port);
    printf("protocol version:   %u\n", (unsigned)cfg->version);
    printf("password:           %s\n", cfg->password_set ? "set (stored on the node as a "
                                                          "salted verifier)" : "not set");
    printf("legacy auth:        %s\n", cfg->legacy_auth ? (cfg->allow_md5 ? "SHA-256 and MD5 "
                                                           "(plain password on the node)"
                                                           : "SHA-256 (plain password on the "
                                                             "node)")
                                                       : "off");
    if (cfg->arduino)
        printf("arduino ota:        UDP port %u, %s\n", (unsigned)cfg->arduino_port,
               cfg->arduino_auth[0] == '\0'
                   ? "no password"
                   : strcmp(cfg->arduino_auth, "md5") == 0
                         ? "MD5 variant (the node stores MD5hex(password))"
                         : "SHA-256 variant (the node stores SHA256hex(password))");
    else
        printf("arduino ota:        off\n");
    printf("safe mode:          %s\n", cfg->safe_mode ? "on" : "off");
    printf("  num_attempts:     %u\n", (unsigned)cfg->num_attempts);
    printf("  boot_is_good_after: %u ms\n", (unsigned)cfg->boot_is_good_after_ms);
    printf("  reboot_timeout:   %u ms\n", (unsigned)cfg->reboot_timeout_ms);
    printf("rollback_after:     %u boots\n", (unsigned)cfg->rollback_after);
    if (cfg->signed_ota) {
        printf("signed images:      required (%s), %zu trusted key%s\n", cfg->signing_scheme,
               cfg->n_trusted, cfg->n_trusted == 1 ? "" : "s");
        for (size_t i = 0; i < cfg->n_trusted; i++) {
            printf("  %-18s", cfg->trusted_from[i]);
            for (int k = 0; k < 32; k++)
                printf("%02x", cfg->trusted[i][k]);
            printf("\n");
        }
        if (cfg->signing_key[0])
            printf("  upload signs with %s\n", cfg->signing_key);
    } else {
        printf("signed images:      not required\n");
    }
    printf("mdns:               %s%s%s\n", cfg->mdns ? "on, answers " : "off",
           cfg->mdns ? cfg->name : "",
           !cfg->mdns             ? ""
           : cfg->name_mac_suffix ? "-xxxxxx.local and advertises _ota._tcp"
                                  : ".local and advertises _ota._tcp");
    if (cfg->pull)
        printf("pull updates:       %s, every %u s (with jitter)\n", cfg->pull_url,
               (unsigned)(cfg->pull_interval_ms / 1000u));
    else
        printf("pull updates:       off\n");
    printf("logger:             %s", cfg->logger ? "on" : "off");
    if (cfg->logger)
        printf(", log viewers on port %u", (unsigned)cfg->log_port);
    printf("\n");
}

int ota_config_warn(const ota_node_config_t *cfg, FILE *f)
{
    int n = 0;
    if (cfg->has_ota && cfg->ota_encryption) {
        fprintf(f, "warning: %s: ota: encryption: is ESPHome's encrypted OTA, which this tool "
                   "does not speak: uploads go unencrypted (authenticated by the password), "
                   "as ESPHome nodes still accept\n", cfg->file);
        n++;
    }
    if (!cfg->has_ota || !cfg->password_set)
        return n;
    if (cfg->legacy_auth) {
        fprintf(f, "warning: %s: legacy_auth puts the plain OTA password into the firmware; "
                   "anyone with the firmware image can read it\n", cfg->file);
        n++;
    }
    if (cfg->arduino && cfg->arduino_auth[0] != '\0') {
        fprintf(f, "warning: %s: arduino_auth %s stores %s(password) in the firmware; for "
                   "ArduinoOTA that hash is password-equivalent: anyone who reads it from the "
                   "image can upload over ArduinoOTA (the native protocol's salted verifier "
                   "does not have this weakness)\n", cfg->file, cfg->arduino_auth,
                strcmp(cfg->arduino_auth, "md5") == 0 ? "MD5hex" : "SHA256hex");
        n++;
    }
    return n;
}
