/*
 * port.c - assembles the POSIX port: the tables of a node process (ota/port.h), the
 * boot record hooks over the boot state file, the reboot request and the idle wait
 * of the main loop. Its logging is log.c, its clock clock.c.
 */
#include "ota_posix.h"

#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "bootstate.h"
#include "ota/errors.h"
#include "ota/opts.h"
#include "ota/util.h"

static void port_reboot(void *user)
{
    ((ota_posix_t *)user)->reboot = true;
}

#if OTA_CFG_ENABLE_PULL
/* A pull download's resume point (ota/pull.h) lives in DIR/pull.state, beside the
 * boot state rather than in it: ota-boot has no use for it. Lines "offset=N",
 * "id=<32 hex>", "etag=<text>"; a missing or malformed file reads as no download. */
#define PULL_STATE "pull.state"

static void pull_state_load(const ota_posix_t *ctx, ota_boot_record_t *rec)
{
    char path[4200], buf[512];
    rec->pull_offset = 0;
    memset(rec->pull_id, 0, sizeof rec->pull_id);
    rec->pull_etag[0] = '\0';
    rec->pull_published = 0;
    snprintf(path, sizeof path, "%s/" PULL_STATE, ctx->state_dir);
    FILE *f = fopen(path, "rb");
    if (f == NULL)
        return;
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = '\0';
    unsigned long off = 0, published = 0;
    char id[33] = "", etag[OTA_CFG_PULL_ETAG_MAX] = "";
    char *line = strtok(buf, "\n");
    for (; line != NULL; line = strtok(NULL, "\n")) {
        if (strncmp(line, "offset=", 7) == 0)
            off = strtoul(line + 7, NULL, 10);
        else if (strncmp(line, "id=", 3) == 0 && strlen(line + 3) == 32)
            memcpy(id, line + 3, 33);
        else if (strncmp(line, "etag=", 5) == 0 && strlen(line + 5) < sizeof etag)
            strcpy(etag, line + 5);
        else if (strncmp(line, "published=", 10) == 0)
            published = strtoul(line + 10, NULL, 10);
    }
    rec->pull_published = (uint32_t)published;
    uint8_t raw[16];
    if (id[0] == '\0' || ota_hex_decode(id, sizeof raw, raw) != 0)
        return; /* no identity: nothing to resume */
    rec->pull_offset = (uint32_t)off;
    memcpy(rec->pull_id, raw, sizeof raw);
    strcpy(rec->pull_etag, etag);
}

static int pull_state_store(const ota_posix_t *ctx, const ota_boot_record_t *rec)
{
    ota_boot_record_t cur;
    pull_state_load(ctx, &cur);
    if (cur.pull_offset == rec->pull_offset &&
        memcmp(cur.pull_id, rec->pull_id, sizeof cur.pull_id) == 0 &&
        strcmp(cur.pull_etag, rec->pull_etag) == 0 && cur.pull_published >= rec->pull_published)
        return OTA_OK; /* unchanged: no write */
    uint32_t published =
        rec->pull_published > cur.pull_published ? rec->pull_published : cur.pull_published;
    char path[4200], tmp[4200];
    snprintf(path, sizeof path, "%s/" PULL_STATE, ctx->state_dir);
    snprintf(tmp, sizeof tmp, "%s/" PULL_STATE ".tmp", ctx->state_dir);
    if (rec->pull_offset == 0 && published == 0)
        return unlink(path) == 0 || errno == ENOENT ? OTA_OK : OTA_ERR_IO;
    if (memchr(rec->pull_etag, '\n', strnlen(rec->pull_etag, sizeof rec->pull_etag)) != NULL)
        return OTA_ERR_INVALID_ARG;
    FILE *f = fopen(tmp, "wb");
    if (f == NULL)
        return OTA_ERR_IO;
    char id[2 * sizeof rec->pull_id + 1];
    ota_hex_encode(rec->pull_id, sizeof rec->pull_id, id);
    id[sizeof id - 1] = '\0';
    fprintf(f, "offset=%lu\nid=%s\netag=%.*s\npublished=%lu\n", (unsigned long)rec->pull_offset,
            id, (int)sizeof rec->pull_etag - 1, rec->pull_etag, (unsigned long)published);
    bool ok = fflush(f) == 0 && fsync(fileno(f)) == 0;
    ok = fclose(f) == 0 && ok;
    if (!ok || rename(tmp, path) != 0) {
        unlink(tmp);
        return OTA_ERR_IO;
    }
    return ota_bootstate_fsync_dir(ctx->state_dir);
}
#endif

static int port_boot_load(void *user, ota_boot_record_t *rec)
{
    ota_posix_t *ctx = user;
    ota_bootstate_t st;
    char why[300];
    if (ota_bootstate_load(ctx->state_dir, &st, why, sizeof why) == OTA_BOOTSTATE_FALLBACK)
        ota_posix_logf(ctx, OTA_LOG_WARN, "boot", "%s", why);
    rec->boot_attempts = st.boot_attempts;
    rec->pending = st.pending;
    rec->safe_mode_request = st.safe_mode_request;
    rec->safe_mode = st.safe_mode;
    rec->min_secure_version = st.min_secure_version;
#if OTA_CFG_ENABLE_PULL
    pull_state_load(ctx, rec);
#endif
    return OTA_OK;
}

static int port_boot_store(void *user, const ota_boot_record_t *rec)
{
    ota_posix_t *ctx = user;
    ota_bootstate_t st;
    char why[300];
    ota_bootstate_load(ctx->state_dir, &st, why, sizeof why);
    if (st.pending && !rec->pending)
        st.confirmed = st.active; /* the image proved itself */
    st.boot_attempts = rec->boot_attempts;
    st.pending = rec->pending;
    st.safe_mode_request = rec->safe_mode_request;
    st.safe_mode = rec->safe_mode;
    if (rec->min_secure_version > st.min_secure_version) /* it only ever rises */
        st.min_secure_version = rec->min_secure_version;
#if OTA_CFG_ENABLE_PULL
    if (pull_state_store(ctx, rec) != OTA_OK)
        return OTA_ERR_IO;
#endif
    return ota_bootstate_store(ctx->state_dir, &st) == 0 ? OTA_OK : OTA_ERR_IO;
}

int ota_posix_init(ota_posix_t *ctx, const ota_posix_options_t *opts, char *err, size_t err_cap)
{
    memset(ctx, 0, sizeof *ctx);
    ctx->listen_fd = -1;
    ctx->log_boot_ms = ota_posix_now_ms();
    ctx->tmp_fd = -1;
    ctx->log_fd = -1;
    ctx->udp_fd = -1;
    ota_posix_mdns_reset(ctx);
    for (int i = 0; i < OTA_POSIX_VIEWER_SLOTS; i++)
        ctx->viewers[i] = -1;
    for (int i = 0; i < OTA_POSIX_MAX_CONNS; i++)
        ctx->conns[i] = -1;
    struct stat st;
    if (opts->state_dir == NULL || opts->state_dir[0] == '\0') {
        snprintf(err, err_cap, "no state directory: run the firmware under 'ota-boot run "
                               "--state DIR' or pass --state DIR");
        return OTA_ERR_INVALID_ARG;
    }
    if (stat(opts->state_dir, &st) != 0 || !S_ISDIR(st.st_mode)) {
        snprintf(err, err_cap, "state directory %s does not exist: create it with 'ota-boot "
                               "flash --state %s IMAGE'", opts->state_dir, opts->state_dir);
        return OTA_ERR_INVALID_ARG;
    }
    if (realpath(opts->state_dir, ctx->state_dir) == NULL) {
        snprintf(err, err_cap, "state directory %s: %s", opts->state_dir, strerror(errno));
        return OTA_ERR_IO;
    }
    const char *env = getenv("OTA_BOOT_SLOT");
    if (env != NULL && (env[0] == 'a' || env[0] == 'b') && env[1] == '\0') {
        ctx->active = env[0];
    } else {
        ota_bootstate_t bs;
        char why[300];
        if (ota_bootstate_load(ctx->state_dir, &bs, why, sizeof why) == OTA_BOOTSTATE_FALLBACK)
            ota_posix_logf(ctx, OTA_LOG_WARN, "boot", "%s", why);
        ctx->active = bs.active;
    }
    ctx->inactive = ctx->active == 'a' ? 'b' : 'a';
    ctx->slot_size = opts->slot_size;
    int rc = ota_posix_net_listen(ctx, opts->bind_addr ? opts->bind_addr : "0.0.0.0", opts->port,
                                  err, err_cap);
    if (rc != OTA_OK)
        return rc;
    if (opts->arduino_port != 0)
        rc = ota_posix_udp_open(ctx, opts->bind_addr ? opts->bind_addr : "0.0.0.0",
                                opts->arduino_port, err, err_cap);
    if (rc != OTA_OK) {
        ota_posix_free(ctx);
        return rc;
    }

    ota_posix_ports_t *p = &ctx->ports;
    p->tcp = (ota_tcp_port_t){.accept = ota_posix_net_accept,
                              .recv = ota_posix_net_recv,
                              .send = ota_posix_net_send,
                              .close = ota_posix_net_close,
                              .connect = ota_posix_net_connect,
                              .ctx = ctx,
                              .connect_host = ota_posix_net_connect_host};
    /* https for the HTTP client: TLS over the table above; its CAs are read at the
     * first https connection, so a node that never pulls pays nothing */
    ctx->tls = ota_posix_tls_new(&p->tcp, opts->tls_ca_file);
    if (ctx->tls == NULL) {
        snprintf(err, err_cap, "out of memory");
        ota_posix_free(ctx);
        return OTA_ERR_IO;
    }
    p->tls = ota_posix_tls_port(ctx->tls);
    p->slot = (ota_store_port_t){.begin = ota_posix_slot_begin,
                                 .write = ota_posix_slot_write,
                                 .finish = ota_posix_slot_finish,
                                 .activate = ota_posix_slot_activate,
                                 .abort = ota_posix_slot_abort,
                                 .ctx = ctx,
                                 .resume = ota_posix_slot_resume,
                                 .read = ota_posix_slot_read,
                                 .sync = ota_posix_slot_sync};
    /* the data slot is written like the image slot and renamed into place */
    p->data = (ota_store_port_t){.begin = ota_posix_data_begin,
                                 .write = ota_posix_slot_write,
                                 .finish = ota_posix_data_finish,
                                 .abort = ota_posix_slot_abort,
                                 .ctx = ctx};
    p->udp = (ota_udp_port_t){.recv = ota_posix_udp_recv, .send = ota_posix_udp_send, .ctx = ctx};
    p->boot = (ota_boot_port_t){
        .load = port_boot_load, .store = port_boot_store, .reboot = port_reboot, .ctx = ctx};
    p->crypto = ota_posix_crypto;
    p->inflate = (ota_inflate_port_t){.begin = ota_posix_inflate_begin,
                                      .run = ota_posix_inflate_run,
                                      .end = ota_posix_inflate_end,
                                      .ctx = ctx};
    p->log = (ota_log_port_t){.line = ota_posix_port_log, .ctx = ctx};
    p->server = (ota_server_ports_t){.tcp = &p->tcp,
                                     .slot = &p->slot,
                                     .boot = &p->boot,
                                     .crypto = &p->crypto,
                                     .log = &p->log,
                                     .inflate = &p->inflate,
                                     .udp = ctx->udp_fd >= 0 ? &p->udp : NULL,
                                     .data = opts->data_slot ? &p->data : NULL};
    return OTA_OK;
}

void ota_posix_free(ota_posix_t *ctx)
{
    /* close, but keep an unfinished image: a pull download resumes from it after the
     * restart (ota/pull.h); the next update's begin truncates whatever it holds */
    ota_posix_slot_close(ctx);
    ota_posix_inflate_end(ctx);
    ota_posix_tls_delete(ctx->tls); /* its connections go back through the tcp table */
    ctx->tls = NULL;
    ota_posix_outbound_free(ctx);
    for (int i = 0; i < OTA_POSIX_MAX_CONNS; i++) {
        if (ctx->conns[i] >= 0) {
            close(ctx->conns[i]);
            ctx->conns[i] = -1;
        }
    }
    if (ctx->listen_fd >= 0) {
        close(ctx->listen_fd);
        ctx->listen_fd = -1;
    }
    ota_posix_log_close(ctx);
    if (ctx->udp_fd >= 0) {
        close(ctx->udp_fd);
        ctx->udp_fd = -1;
    }
    ota_posix_mdns_close(ctx);
}

int ota_posix_wait(ota_posix_t *ctx, int timeout_ms)
{
    /* listener, connections, log + its viewers, UDP, mDNS */
    struct pollfd fds[OTA_POSIX_MAX_CONNS + OTA_POSIX_VIEWER_SLOTS + 5];
    nfds_t n = 0;
    /* the listener was readable and the core did not accept since: it is pausing
     * (a flood), so do not wake for it again before the pause is over */
    bool hold = ctx->listen_ready && ctx->accept_calls == ctx->accept_calls_seen;
    if (hold && (timeout_ms < 0 || timeout_ms > (int)OTA_CFG_ACCEPT_PAUSE_MS))
        timeout_ms = (int)OTA_CFG_ACCEPT_PAUSE_MS;
    ctx->accept_calls_seen = ctx->accept_calls;
    ctx->listen_ready = false;
    nfds_t listen_at = (nfds_t)-1;
    if (ctx->listen_fd >= 0 && !hold) {
        listen_at = n;
        fds[n++] = (struct pollfd){.fd = ctx->listen_fd, .events = POLLIN};
    }
    struct pollfd extra = {.fd = ctx->log_fd, .events = POLLIN};
    struct pollfd udp = {.fd = ctx->udp_fd, .events = POLLIN};
    bool resolving = false;
    for (int i = 0; i < OTA_POSIX_MAX_CONNS; i++) {
        if (ctx->conns[i] < 0)
            continue;
        /* outbound connections (connect_host.c): POLLOUT while connecting; left out
         * while their name is looked up (the lookup has no descriptor to wait on) */
        short ev = ota_posix_outbound_events(ctx, ctx->conns[i], &resolving);
        if (ev != 0)
            fds[n++] = (struct pollfd){.fd = ctx->conns[i], .events = ev};
    }
    if (resolving && (timeout_ms < 0 || timeout_ms > 10))
        timeout_ms = 10; /* look again soon */
    if (ota_posix_tls_pending(ctx->tls))
        timeout_ms = 0; /* TLS has bytes buffered that poll() cannot see */
    if (extra.fd >= 0)
        fds[n++] = extra;
    n += ota_posix_log_pollfds(ctx, fds + n, OTA_POSIX_VIEWER_SLOTS); /* their answers */
    if (udp.fd >= 0)
        fds[n++] = udp;
    if (ctx->mdns.fd4 >= 0)
        fds[n++] = (struct pollfd){.fd = ctx->mdns.fd4, .events = POLLIN};
    if (ctx->mdns.fd6 >= 0)
        fds[n++] = (struct pollfd){.fd = ctx->mdns.fd6, .events = POLLIN};
    int rc = poll(fds, n, timeout_ms);
    if (rc < 0 && errno != EINTR)
        return OTA_ERR_IO;
    if (rc > 0 && listen_at != (nfds_t)-1)
        ctx->listen_ready = (fds[listen_at].revents & POLLIN) != 0;
    return OTA_OK;
}

bool ota_posix_reboot_requested(const ota_posix_t *ctx)
{
    return ctx->reboot;
}
