/*
 * guard.c - per-address brute-force back-off and the global guess ceiling
 * (ota/guard.h), shared by every login path of the device.
 */
#include "ota/guard.h"

#include <string.h>

#include "ota/util.h"

#define GUESS_WINDOW_MS 60000u

void ota_guard_setup(ota_guard_t *g, ota_logger_t *log, uint8_t backoff_free,
                     uint32_t backoff_base_ms, uint32_t backoff_max_ms, uint32_t guesses_per_min)
{
    memset(g, 0, sizeof *g);
    g->log = log;
    g->backoff_free = backoff_free;
    g->backoff_base_ms = backoff_base_ms;
    g->backoff_max_ms = backoff_max_ms;
    g->guesses_per_min = guesses_per_min;
}

void ota_guard_addr_key(const char *peer, char key[OTA_CFG_ADDR_MAX])
{
    /* "1.2.3.4:port" -> "1.2.3.4", "[v6]:port" -> "v6"; no port, or a bare IPv6
     * address (more than one colon, as ArduinoOTA datagrams name their sender): as is */
    const char *p = peer;
    size_t n = strlen(peer);
    if (p[0] == '[') {
        p++;
        const char *end = memchr(p, ']', n - 1);
        n = end != NULL ? (size_t)(end - p) : n - 1;
    } else {
        const char *colon = NULL;
        int colons = 0;
        for (const char *q = p; *q; q++)
            if (*q == ':') {
                colon = q;
                colons++;
            }
        if (colons == 1)
            n = (size_t)(colon - p);
    }
    if (n > OTA_CFG_ADDR_MAX - 1)
        n = OTA_CFG_ADDR_MAX - 1;
    memcpy(key, p, n);
    key[n] = '\0';
}

static ota_auth_source_t *source_find(ota_guard_t *g, const char *key)
{
    for (int i = 0; i < OTA_CFG_AUTH_SOURCES; i++)
        if (g->sources[i].addr[0] != '\0' && strcmp(g->sources[i].addr, key) == 0)
            return &g->sources[i];
    return NULL;
}

/* The entry of key, made (in a free entry, else the least recently used one). */
static ota_auth_source_t *source_get(ota_guard_t *g, const char *key, uint32_t now)
{
    ota_auth_source_t *e = source_find(g, key);
    if (e != NULL)
        return e;
    e = &g->sources[0];
    for (int i = 0; i < OTA_CFG_AUTH_SOURCES; i++) {
        ota_auth_source_t *c = &g->sources[i];
        if (c->addr[0] == '\0') {
            e = c;
            break;
        }
        if (ota_elapsed_ms(now, c->used_ms) > ota_elapsed_ms(now, e->used_ms))
            e = c;
    }
    memset(e, 0, sizeof *e);
    size_t n = strlen(key);
    memcpy(e->addr, key, n + 1);
    return e;
}

/* The wait after n + 1 failures in a row: 0 for the free ones, then base ms,
 * doubling per failure up to max ms. */
static uint32_t backoff_delay(const ota_guard_t *g, uint32_t failures)
{
    return ota_backoff_ms(failures + 1u, g->backoff_free, g->backoff_base_ms, g->backoff_max_ms);
}

uint32_t ota_guard_source_wait(const ota_guard_t *g, const char *key, uint32_t now)
{
    for (int i = 0; i < OTA_CFG_AUTH_SOURCES; i++) {
        const ota_auth_source_t *e = &g->sources[i];
        if (e->addr[0] == '\0' || strcmp(e->addr, key) != 0)
            continue;
        uint32_t gone = ota_elapsed_ms(now, e->wait_start_ms);
        return gone < e->wait_ms ? e->wait_ms - gone : 0;
    }
    return 0;
}

uint32_t ota_guard_global_wait(const ota_guard_t *g, uint32_t now)
{
    if (g->guesses_per_min == 0 || g->guesses < g->guesses_per_min)
        return 0;
    uint32_t gone = ota_elapsed_ms(now, g->window_ms);
    return gone < GUESS_WINDOW_MS ? GUESS_WINDOW_MS - gone : 0;
}

uint32_t ota_guard_wait(const ota_guard_t *g, const char *key, uint32_t now)
{
    uint32_t a = ota_guard_source_wait(g, key, now), b = ota_guard_global_wait(g, now);
    return a > b ? a : b;
}

/* One answer was checked: a guess against the global ceiling. */
static void count_guess(ota_guard_t *g, uint32_t now)
{
    if (ota_elapsed_ms(now, g->window_ms) >= GUESS_WINDOW_MS || g->guesses == 0) {
        g->window_ms = now;
        g->guesses = 0;
    }
    if (g->guesses < UINT32_MAX)
        g->guesses++;
}

void ota_guard_attempt(ota_guard_t *g, const char *key, uint32_t now)
{
    ota_auth_source_t *e = source_find(g, key);
    if (e == NULL)
        return;
    e->used_ms = now;
    /* in back-off, one attempt per wait: a second connection waits for this one */
    uint32_t delay = e->failures > 0 ? backoff_delay(g, (uint32_t)e->failures - 1u) : 0;
    if (delay > 0) {
        e->wait_start_ms = now;
        e->wait_ms = delay;
    }
}

void ota_guard_failed(ota_guard_t *g, const char *peer, uint32_t now)
{
    char key[OTA_CFG_ADDR_MAX];
    ota_guard_addr_key(peer, key);
    count_guess(g, now);
    ota_auth_source_t *e = source_get(g, key, now);
    if (e->failures < UINT8_MAX)
        e->failures++;
    e->used_ms = now;
    uint32_t delay = backoff_delay(g, (uint32_t)e->failures - 1u);
    e->wait_start_ms = now;
    e->wait_ms = delay;
    if (delay == 0 || g->log == NULL)
        return;
    ota_logline_t l;
    ota_logline_begin(&l, peer);
    ota_logline_u32(&l, e->failures);
    ota_logline_str(&l, " failed authentications in a row from this address; its next "
                        "attempt waits ");
    ota_logline_u32(&l, delay);
    ota_logline_str(&l, " ms");
    ota_logline_emit(g->log, OTA_LOG_WARN, &l);
}

void ota_guard_ok(ota_guard_t *g, const char *peer, uint32_t now)
{
    char key[OTA_CFG_ADDR_MAX];
    ota_guard_addr_key(peer, key);
    count_guess(g, now);
    ota_auth_source_t *e = source_find(g, key);
    if (e != NULL)
        memset(e, 0, sizeof *e);
}
