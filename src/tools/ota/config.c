/*
 * config.c - loading and validating a node's YAML configuration (see config.h).
 *
 * Both forms found in the wild are accepted:
 *   older:   esphomeyaml:/esphome: {name, platform: ESP32|ESP8266|HOST, board}
 *            ota: {safe_mode, password, port, id, ...}
 *   current: esphome: {name}, esp32:/esp8266:/host: platform blocks,
 *            ota: [- platform: esphome, ...], safe_mode: {num_attempts, ...}
 * The document is read whole with libyaml first; nothing is applied until every
 * check has passed.
 */
#include "config.h"

#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <yaml.h>

typedef struct ctx {
    const char *path;
    yaml_document_t *doc;
    char *err;
    size_t cap;
    bool secrets_loaded;
    bool secrets_ok;
    yaml_document_t secrets;
    char secrets_path[1100];
} ctx_t;

/* -------------------------------------------------------------- errors */

static int errat(ctx_t *c, const yaml_node_t *n, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static int errat(ctx_t *c, const yaml_node_t *n, const char *fmt, ...)
{
    int off = n ? snprintf(c->err, c->cap, "%s:%zu:%zu: ", c->path, n->start_mark.line + 1,
                           n->start_mark.column + 1)
                : snprintf(c->err, c->cap, "%s: ", c->path);
    if (off < 0 || (size_t)off >= c->cap)
        return -1;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(c->err + off, c->cap - (size_t)off, fmt, ap);
    va_end(ap);
    return -1;
}

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

/* -------------------------------------------------------------- scalars */

static yaml_node_t *node(ctx_t *c, int index)
{
    return yaml_document_get_node(c->doc, index);
}

static const char *raw(const yaml_node_t *n)
{
    return (const char *)n->data.scalar.value;
}

static bool is_plain(const yaml_node_t *n)
{
    return n->type == YAML_SCALAR_NODE && n->data.scalar.style == YAML_PLAIN_SCALAR_STYLE;
}

static bool is_null(const yaml_node_t *n)
{
    return is_plain(n) && (raw(n)[0] == '\0' || strcmp(raw(n), "~") == 0 ||
                           strcasecmp(raw(n), "null") == 0);
}

static const char *type_name(const yaml_node_t *n)
{
    switch (n->type) {
    case YAML_MAPPING_NODE: return "a mapping";
    case YAML_SEQUENCE_NODE: return "a list";
    default: return "a value";
    }
}

static int load_secrets(ctx_t *c, const yaml_node_t *at)
{
    if (c->secrets_loaded)
        return c->secrets_ok ? 0 : -1;
    c->secrets_loaded = true;
    const char *slash = strrchr(c->path, '/');
    int dir_len = slash ? (int)(slash - c->path) : 1;
    snprintf(c->secrets_path, sizeof c->secrets_path, "%.*s/secrets.yaml", dir_len,
             slash ? c->path : ".");
    FILE *f = fopen(c->secrets_path, "rb");
    if (f == NULL)
        return errat(c, at, "!secret needs %s, which cannot be read (%s)", c->secrets_path,
                     strerror(errno));
    yaml_parser_t p;
    yaml_parser_initialize(&p);
    yaml_parser_set_input_file(&p, f);
    int ok = yaml_parser_load(&p, &c->secrets);
    yaml_parser_delete(&p);
    fclose(f);
    if (!ok)
        return errat(c, at, "%s is not valid YAML", c->secrets_path);
    yaml_node_t *root = yaml_document_get_root_node(&c->secrets);
    if (root == NULL || root->type != YAML_MAPPING_NODE) {
        yaml_document_delete(&c->secrets);
        return errat(c, at, "%s must be a mapping of names to values", c->secrets_path);
    }
    c->secrets_ok = true;
    return 0;
}

/* The text of a scalar, resolving !secret. NULL (error set) if it is not a scalar. */
static const char *text(ctx_t *c, const yaml_node_t *n, const char *what)
{
    if (n->type != YAML_SCALAR_NODE) {
        errat(c, n, "%s must be a value, not %s", what, type_name(n));
        return NULL;
    }
    if (n->tag == NULL || strcmp((const char *)n->tag, "!secret") != 0)
        return raw(n);
    if (load_secrets(c, n) != 0)
        return NULL;
    yaml_node_t *root = yaml_document_get_root_node(&c->secrets);
    for (yaml_node_pair_t *p = root->data.mapping.pairs.start; p < root->data.mapping.pairs.top;
         p++) {
        yaml_node_t *k = yaml_document_get_node(&c->secrets, p->key);
        yaml_node_t *v = yaml_document_get_node(&c->secrets, p->value);
        if (k->type == YAML_SCALAR_NODE && strcmp(raw(k), raw(n)) == 0) {
            if (v->type != YAML_SCALAR_NODE) {
                errat(c, n, "secret '%s' in %s must be a value", raw(n), c->secrets_path);
                return NULL;
            }
            return raw(v);
        }
    }
    errat(c, n, "secret '%s' is not defined in %s", raw(n), c->secrets_path);
    return NULL;
}

static int get_string(ctx_t *c, const yaml_node_t *n, const char *what, char *out, size_t cap)
{
    const char *t = text(c, n, what);
    if (t == NULL)
        return -1;
    if (strlen(t) >= cap)
        return errat(c, n, "%s is too long (at most %zu characters)", what, cap - 1);
    strcpy(out, t);
    return 0;
}

static int get_bool(ctx_t *c, const yaml_node_t *n, const char *what, bool *out)
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

static int get_int(ctx_t *c, const yaml_node_t *n, const char *what, long min, long max,
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

static int get_time(ctx_t *c, const yaml_node_t *n, const char *what, uint32_t *ms)
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
static int check_keys(ctx_t *c, const yaml_node_t *m, const char *section,
                      const char *const *known)
{
    for (yaml_node_pair_t *p = m->data.mapping.pairs.start; p < m->data.mapping.pairs.top; p++) {
        yaml_node_t *k = node(c, p->key);
        if (k->type != YAML_SCALAR_NODE)
            return errat(c, k, "keys in %s must be names", section);
        bool found = false;
        for (size_t i = 0; known[i] && !found; i++)
            found = strcmp(raw(k), known[i]) == 0;
        if (found)
            continue;
        const char *s = suggest(raw(k), known);
        if (s)
            return errat(c, k, "unknown key '%s' in %s (did you mean '%s'?)", raw(k), section, s);
        size_t count = 0;
        while (known[count])
            count++;
        if (count > 16)
            return errat(c, k, "unknown component '%s' (this tool reads esphome, the platform "
                               "blocks, ota, safe_mode and logger, and leaves ESPHome's other "
                               "components alone)", raw(k));
        char list[512] = "";
        for (size_t i = 0; known[i]; i++)
            snprintf(list + strlen(list), sizeof list - strlen(list), "%s%s", i ? ", " : "",
                     known[i]);
        return errat(c, k, "unknown key '%s' in %s (expected one of: %s)", raw(k), section, list);
    }
    return 0;
}

static yaml_node_t *lookup(ctx_t *c, const yaml_node_t *m, const char *key)
{
    for (yaml_node_pair_t *p = m->data.mapping.pairs.start; p < m->data.mapping.pairs.top; p++) {
        yaml_node_t *k = node(c, p->key);
        if (k->type == YAML_SCALAR_NODE && strcmp(raw(k), key) == 0)
            return node(c, p->value);
    }
    return NULL;
}

static int need_mapping(ctx_t *c, const yaml_node_t *n, const char *section, bool null_ok)
{
    if (n->type == YAML_MAPPING_NODE || (null_ok && is_null(n)))
        return 0;
    return errat(c, n, "%s must be a mapping of settings, not %s", section, type_name(n));
}

/* ------------------------------------------------------------- sections */

/* keys of ESPHome's own that we accept and leave alone */
static const char *const esphome_keys[] = {
    "name", "platform", "board", "friendly_name", "comment", "area", "build_path", "includes",
    "libraries", "on_boot", "on_shutdown", "on_loop", "project", "min_version",
    "name_add_mac_suffix", "platformio_options", "compile_process_limit", "arduino_version",
    "esp8266_restore_from_flash", "board_flash_mode", "devices", NULL};

static int set_platform(ctx_t *c, ota_node_config_t *cfg, const yaml_node_t *at,
                        const char *platform)
{
    char low[16];
    size_t n = strlen(platform);
    if (n >= sizeof low)
        n = sizeof low - 1;
    for (size_t i = 0; i < n; i++)
        low[i] = (char)tolower((unsigned char)platform[i]);
    low[n] = '\0';
    if (strcmp(low, "esp32") != 0 && strcmp(low, "esp8266") != 0 && strcmp(low, "host") != 0)
        return errat(c, at, "platform must be ESP32, ESP8266 or HOST, not '%s'", platform);
    if (cfg->platform[0] && strcmp(cfg->platform, low) != 0)
        return errat(c, at, "the platform is given twice: %s and %s", cfg->platform, low);
    strcpy(cfg->platform, low);
    return 0;
}

static int parse_esphome(ctx_t *c, ota_node_config_t *cfg, const yaml_node_t *m,
                         const char *section)
{
    if (need_mapping(c, m, section, false) || check_keys(c, m, section, esphome_keys))
        return -1;
    yaml_node_t *v;
    if ((v = lookup(c, m, "name")) == NULL)
        return errat(c, m, "%s needs a name (the node's host name, e.g. livingroom)", section);
    if (get_string(c, v, "name", cfg->name, sizeof cfg->name))
        return -1;
    for (const char *p = cfg->name; *p; p++)
        if (!(islower((unsigned char)*p) || isdigit((unsigned char)*p) || *p == '-'))
            return errat(c, v, "name '%s' may contain only lowercase letters, digits and '-' "
                               "(it becomes the host name %s.local)", cfg->name, cfg->name);
    if (cfg->name[0] == '\0' || cfg->name[0] == '-')
        return errat(c, v, "name must start with a letter or digit");
    char buf[64];
    if ((v = lookup(c, m, "platform")) != NULL &&
        (get_string(c, v, "platform", buf, sizeof buf) || set_platform(c, cfg, v, buf)))
        return -1;
    if ((v = lookup(c, m, "board")) != NULL &&
        get_string(c, v, "board", cfg->board, sizeof cfg->board))
        return -1;
    return 0;
}

static const char *const platform_keys[] = {"board", "framework", "variant", "flash_size",
                                            "partitions", "restore_from_flash", "early_pin_init",
                                            "board_flash_mode", "cpu_frequency", NULL};

static int parse_platform_block(ctx_t *c, ota_node_config_t *cfg, const yaml_node_t *key,
                                const yaml_node_t *m)
{
    if (set_platform(c, cfg, key, raw(key)))
        return -1;
    if (is_null(m))
        return 0;
    if (need_mapping(c, m, raw(key), false) || check_keys(c, m, raw(key), platform_keys))
        return -1;
    yaml_node_t *v = lookup(c, m, "board");
    if (v != NULL && get_string(c, v, "board", cfg->board, sizeof cfg->board))
        return -1;
    return 0;
}

static int parse_safe_mode_settings(ctx_t *c, ota_node_config_t *cfg, const yaml_node_t *m)
{
    yaml_node_t *v;
    long n;
    if ((v = lookup(c, m, "num_attempts")) != NULL) {
        if (get_int(c, v, "num_attempts", 1, 1000, &n))
            return -1;
        cfg->num_attempts = (uint32_t)n;
    }
    if ((v = lookup(c, m, "boot_is_good_after")) != NULL &&
        get_time(c, v, "boot_is_good_after", &cfg->boot_is_good_after_ms))
        return -1;
    if ((v = lookup(c, m, "reboot_timeout")) != NULL &&
        get_time(c, v, "reboot_timeout", &cfg->reboot_timeout_ms))
        return -1;
    return 0;
}

static const char *const ota_keys[] = {
    "platform", "id", "password", "port", "version", "safe_mode", "num_attempts",
    "reboot_timeout", "boot_is_good_after", "legacy_auth", "allow_md5", "rollback_after",
    "arduino_port", "arduino_auth",
    "on_begin", "on_progress", "on_end", "on_error", "on_state_change", NULL};

static int parse_ota_entry(ctx_t *c, ota_node_config_t *cfg, const yaml_node_t *m,
                           const char *section)
{
    if (need_mapping(c, m, section, true))
        return -1;
    cfg->has_ota = true;
    if (is_null(m))
        return 0;
    if (check_keys(c, m, section, ota_keys))
        return -1;
    yaml_node_t *v;
    long n;
    if ((v = lookup(c, m, "id")) != NULL) {
        if (get_string(c, v, "id", cfg->ota_id, sizeof cfg->ota_id))
            return -1;
        for (const char *p = cfg->ota_id; *p; p++)
            if (!(isalnum((unsigned char)*p) || *p == '_') || isdigit((unsigned char)cfg->ota_id[0]))
                return errat(c, v, "id '%s' must be a C identifier (letters, digits, '_', not "
                                   "starting with a digit)", cfg->ota_id);
    }
    if ((v = lookup(c, m, "password")) != NULL) {
        if (get_string(c, v, "password", cfg->password, sizeof cfg->password))
            return -1;
        cfg->password_set = cfg->password[0] != '\0';
    }
    if ((v = lookup(c, m, "port")) != NULL) {
        if (get_int(c, v, "port", 1, 65535, &n))
            return -1;
        cfg->port = (uint16_t)n;
    }
    if ((v = lookup(c, m, "version")) != NULL) {
        if (get_int(c, v, "version", 1, 2, &n))
            return -1;
        cfg->version = (uint8_t)n;
    }
    if ((v = lookup(c, m, "safe_mode")) != NULL && get_bool(c, v, "safe_mode", &cfg->safe_mode))
        return -1;
    if ((v = lookup(c, m, "legacy_auth")) != NULL &&
        get_bool(c, v, "legacy_auth", &cfg->legacy_auth))
        return -1;
    if ((v = lookup(c, m, "allow_md5")) != NULL && get_bool(c, v, "allow_md5", &cfg->allow_md5))
        return -1;
    if ((v = lookup(c, m, "arduino_port")) != NULL) {
        if (get_int(c, v, "arduino_port", 1, 65535, &n))
            return -1;
        cfg->arduino_port = (uint16_t)n;
        cfg->arduino = true;
    }
    if ((v = lookup(c, m, "arduino_auth")) != NULL) {
        if (get_string(c, v, "arduino_auth", cfg->arduino_auth, sizeof cfg->arduino_auth) ||
            (strcmp(cfg->arduino_auth, "sha256") != 0 && strcmp(cfg->arduino_auth, "md5") != 0))
            return errat(c, v, "arduino_auth takes sha256 (current ArduinoOTA cores) or md5 "
                               "(older ones)");
        cfg->arduino = true;
    }
    if ((v = lookup(c, m, "rollback_after")) != NULL) {
        if (get_int(c, v, "rollback_after", 1, 100, &n))
            return -1;
        cfg->rollback_after = (uint32_t)n;
    }
    return parse_safe_mode_settings(c, cfg, m);
}

static int parse_ota(ctx_t *c, ota_node_config_t *cfg, const yaml_node_t *n)
{
    if (n->type != YAML_SEQUENCE_NODE)
        return parse_ota_entry(c, cfg, n, "ota"); /* the older form: one mapping */
    bool seen = false;
    for (yaml_node_item_t *i = n->data.sequence.items.start; i < n->data.sequence.items.top;
         i++) {
        yaml_node_t *e = node(c, *i);
        if (need_mapping(c, e, "each ota entry", false))
            return -1;
        yaml_node_t *p = lookup(c, e, "platform");
        if (p == NULL)
            return errat(c, e, "each ota entry needs a platform (esphome for this uploader)");
        const char *plat = text(c, p, "platform");
        if (plat == NULL)
            return -1;
        if (strcmp(plat, "esphome") != 0)
            continue; /* web_server, http_request...: not ours to check */
        if (seen)
            return errat(c, e, "only one ota entry may use platform: esphome");
        seen = true;
        if (parse_ota_entry(c, cfg, e, "ota (platform: esphome)"))
            return -1;
    }
    return 0;
}

static const char *const safe_mode_keys[] = {"id", "disabled", "num_attempts",
                                             "boot_is_good_after", "reboot_timeout",
                                             "on_safe_mode", NULL};

static int parse_safe_mode(ctx_t *c, ota_node_config_t *cfg, const yaml_node_t *m)
{
    if (is_null(m))
        return 0;
    if (need_mapping(c, m, "safe_mode", false) || check_keys(c, m, "safe_mode", safe_mode_keys))
        return -1;
    yaml_node_t *v = lookup(c, m, "disabled");
    bool disabled = false;
    if (v != NULL && get_bool(c, v, "disabled", &disabled))
        return -1;
    if (disabled)
        cfg->safe_mode = false;
    return parse_safe_mode_settings(c, cfg, m);
}

static const char *const logger_keys[] = {"port", "level", "baud_rate", "logs", "hardware_uart",
                                          "tx_buffer_size", "deassert_rts_dtr", "id", NULL};

static int parse_logger(ctx_t *c, ota_node_config_t *cfg, const yaml_node_t *m)
{
    cfg->logger = true;
    if (is_null(m))
        return 0;
    if (need_mapping(c, m, "logger", false) || check_keys(c, m, "logger", logger_keys))
        return -1;
    yaml_node_t *v = lookup(c, m, "port");
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
static const char *const mdns_keys[] = {"disabled", "services", NULL};

static int parse_mdns(ctx_t *c, ota_node_config_t *cfg, const yaml_node_t *m)
{
    if (is_null(m))
        return 0;
    if (need_mapping(c, m, "mdns", false) || check_keys(c, m, "mdns", mdns_keys))
        return -1;
    yaml_node_t *v = lookup(c, m, "disabled");
    bool disabled = false;
    if (v != NULL && get_bool(c, v, "disabled", &disabled))
        return -1;
    cfg->mdns = !disabled;
    return 0;
}

/* top-level components: ours, and ESPHome's that this tool leaves alone */
static const char *const top_keys[] = {
    "esphome", "esphomeyaml", "esp32", "esp8266", "host", "ota", "safe_mode", "logger",
    "wifi", "api", "web_server", "captive_portal", "mqtt", "sensor", "binary_sensor", "switch",
    "light", "output", "text_sensor", "button", "number", "select", "time", "i2c", "spi",
    "uart", "globals", "script", "interval", "substitutions", "packages",
    "external_components", "status_led", "debug", "deep_sleep", "ethernet", "mdns", "network",
    "climate", "cover", "fan", "lock", "display", "font", "preferences", "esp32_ble_tracker",
    "bluetooth_proxy", "one_wire", "dallas", "remote_receiver", "remote_transmitter", NULL};

/* ------------------------------------------------------------------ load */

static int validate(ctx_t *c, ota_node_config_t *cfg, yaml_node_t *root)
{
    if (root == NULL || is_null(root))
        return errat(c, NULL, "the file is empty: expected a node configuration with esphome: "
                              "(name) and ota:");
    if (root->type != YAML_MAPPING_NODE)
        return errat(c, root, "a node configuration must be a mapping of components "
                              "(esphome:, ota:, ...), not %s", type_name(root));
    if (check_keys(c, root, "the configuration", top_keys))
        return -1;
    const yaml_node_t *esphome = NULL;
    for (yaml_node_pair_t *p = root->data.mapping.pairs.start;
         p < root->data.mapping.pairs.top; p++) {
        yaml_node_t *k = node(c, p->key), *v = node(c, p->value);
        const char *key = raw(k);
        int rc = 0;
        if (strcmp(key, "esphome") == 0 || strcmp(key, "esphomeyaml") == 0) {
            if (esphome != NULL)
                return errat(c, k, "esphome: and esphomeyaml: both present; keep one");
            esphome = k;
            rc = parse_esphome(c, cfg, v, key);
        } else if (strcmp(key, "esp32") == 0 || strcmp(key, "esp8266") == 0 ||
                   strcmp(key, "host") == 0) {
            rc = parse_platform_block(c, cfg, k, v);
        } else if (strcmp(key, "ota") == 0) {
            rc = parse_ota(c, cfg, v);
        } else if (strcmp(key, "safe_mode") == 0) {
            rc = parse_safe_mode(c, cfg, v);
        } else if (strcmp(key, "logger") == 0) {
            rc = parse_logger(c, cfg, v);
        } else if (strcmp(key, "mdns") == 0) {
            rc = parse_mdns(c, cfg, v);
        }
        if (rc)
            return -1;
    }
    if (esphome == NULL)
        return errat(c, root, "missing esphome: block with the node's name");
    if (cfg->platform[0] == '\0')
        return errat(c, root, "no platform: add an esp32:, esp8266: or host: block (or "
                              "platform: under esphome:)");
    if (cfg->port == 0)
        cfg->port = strcmp(cfg->platform, "esp8266") == 0 ? 8266 : 3232;
    if (cfg->ota_id[0] == '\0')
        strcpy(cfg->ota_id, "ota");
    if (cfg->log_port == 0)
        cfg->log_port = (uint16_t)(cfg->port == 65535 ? 65534 : cfg->port + 1);
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
        cfg->arduino_port = strcmp(cfg->platform, "esp32") == 0 ? 3232 : 8266;
    return 0;
}

static int load(const char *path, FILE *f, const uint8_t *data, size_t len,
                ota_node_config_t *out, char *err, size_t err_cap)
{
    ctx_t c;
    memset(&c, 0, sizeof c);
    c.path = path;
    c.err = err;
    c.cap = err_cap;
    yaml_parser_t parser;
    yaml_document_t doc;
    yaml_parser_initialize(&parser);
    if (f != NULL)
        yaml_parser_set_input_file(&parser, f);
    else
        yaml_parser_set_input_string(&parser, data, len);
    if (!yaml_parser_load(&parser, &doc)) {
        snprintf(err, err_cap, "%s:%zu:%zu: not valid YAML: %s%s%s", path,
                 parser.problem_mark.line + 1, parser.problem_mark.column + 1,
                 parser.problem ? parser.problem : "syntax error",
                 parser.context ? " " : "", parser.context ? parser.context : "");
        yaml_parser_delete(&parser);
        return -1;
    }
    yaml_parser_delete(&parser);
    c.doc = &doc;
    ota_node_config_t cfg;
    memset(&cfg, 0, sizeof cfg);
    snprintf(cfg.file, sizeof cfg.file, "%s", path);
    cfg.version = 2;
    cfg.safe_mode = true;
    cfg.num_attempts = 10;
    cfg.boot_is_good_after_ms = 60000;
    cfg.reboot_timeout_ms = 300000;
    cfg.rollback_after = 3;
    cfg.mdns = true;
    int rc = validate(&c, &cfg, yaml_document_get_root_node(&doc));
    yaml_document_delete(&doc);
    if (c.secrets_ok)
        yaml_document_delete(&c.secrets);
    if (rc == 0)
        *out = cfg; /* nothing is applied unless everything passed */
    memset(&cfg, 0, sizeof cfg);
    return rc;
}

int ota_config_load(const char *path, ota_node_config_t *out, char *err, size_t err_cap)
{
    FILE *f = fopen(path, "rb");
    if (f == NULL) {
        snprintf(err, err_cap, "%s: cannot read: %s", path, strerror(errno));
        return -1;
    }
    int rc = load(path, f, NULL, 0, out, err, err_cap);
    fclose(f);
    return rc;
}

int ota_config_load_buffer(const char *name, const uint8_t *data, size_t len,
                           ota_node_config_t *cfg, char *err, size_t err_cap)
{
    return load(name, NULL, data, len, cfg, err, err_cap);
}

void ota_config_print(const ota_node_config_t *cfg)
{
    printf("file:               %s\n", cfg->file);
    printf("name:               %s (host %s.local)\n", cfg->name, cfg->name);
    printf("platform:           %s%s%s\n", cfg->platform, cfg->board[0] ? ", board " : "",
           cfg->board);
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
    printf("mdns:               %s%s%s\n", cfg->mdns ? "on, answers " : "off",
           cfg->mdns ? cfg->name : "", cfg->mdns ? ".local and advertises _ota._tcp" : "");
    printf("logger:             %s", cfg->logger ? "on" : "off");
    if (cfg->logger)
        printf(", log viewers on port %u", (unsigned)cfg->log_port);
    printf("\n");
}

int ota_config_warn(const ota_node_config_t *cfg, FILE *f)
{
    int n = 0;
    if (!cfg->has_ota || !cfg->password_set)
        return 0;
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
