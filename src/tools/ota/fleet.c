/*
 * fleet.c - uploads to many nodes at once, and their summary (fleet.h).
 */
#include "fleet.h"

#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "known_nodes.h"
#include "ota/protocol.h"
#include "updated_nodes.h"
#include "messages.h"
#include "progress.h"


/* "host", "host:port", "[v6]:port", "v6" -> host and port (default_port if absent). */
bool split_device(const char *spec, uint16_t default_port, char *host, size_t cap,
                         uint16_t *port)
{
    const char *colon = strrchr(spec, ':');
    const char *end = spec + strlen(spec);
    *port = default_port;
    if (spec[0] == '[') {
        const char *close = strchr(spec, ']');
        if (close == NULL)
            return false;
        if (close[1] == ':')
            colon = close + 1;
        else if (close[1] != '\0')
            return false;
        else
            colon = NULL;
        end = close;
        spec++;
    } else if (colon != NULL && strchr(spec, ':') != colon) {
        colon = NULL; /* a bare IPv6 address */
    }
    if (colon != NULL) {
        unsigned long v;
        if (!parse_uint(colon + 1, 1, 65535, &v))
            return false;
        *port = (uint16_t)v;
        if (end > colon)
            end = colon;
    }
    size_t n = (size_t)(end - spec);
    if (n == 0 || n >= cap)
        return false;
    memcpy(host, spec, n);
    host[n] = '\0';
    return true;
}

static void *fleet_worker(void *arg)
{
    fleet_t *f = arg;
    for (;;) {
        pthread_mutex_lock(&f->lock);
        int i = f->next < f->count ? f->next++ : -1;
        pthread_mutex_unlock(&f->lock);
        if (i < 0)
            return NULL;
        fleet_job_t *j = &f->jobs[i];
        ota_client_options_t o = f->base;
        o.port = j->port;
        double t0 = ota_now_s();
        memset(&j->lookup, 0, sizeof j->lookup);
        o.host = lookup_host(&j->lookup, j->host, f->quiet);
        if (o.host != NULL) {
            ota_known_prepare(&o, j->host, j->port, stderr);
            pthread_mutex_lock(&f->lock);
            int flags = ota_updated_flags(o.known_file, j->host, j->port);
            pthread_mutex_unlock(&f->lock);
            o.known_late_md5 = flags >= 0 && (flags & OTA_SERVER_FLAG_LATE_MD5) != 0;
            j->rc = ota_client_upload_payload(&o, f->payload, NULL, NULL, &j->res);
            ota_print_auth_warning(stderr, &o, &j->res);
            if (j->rc == OTA_EXIT_OK) {
                ota_known_commit(&o, &j->res, f->quiet, stderr);
                /* one writer at a time: the record is rewritten through one temp file */
                pthread_mutex_lock(&f->lock);
                ota_updated_record(o.known_file, j->host, j->port, j->res.compressed, 0,
                                   j->res.server_flags);
                pthread_mutex_unlock(&f->lock);
            }
            j->used = o;
        } else {
            j->used = o;
            lookup_failure(&j->lookup, &j->res);
            j->rc = OTA_EXIT_NETWORK;
        }
        j->secs = ota_now_s() - t0;
        pthread_mutex_lock(&f->lock);
        f->done++;
        if (!f->quiet)
            fprintf(stderr, "[%d/%d] %s:%u %s (%.2f s)\n", f->done, f->count, j->host,
                    (unsigned)j->port, j->rc == 0 ? "OK" : "FAILED", j->secs);
        pthread_mutex_unlock(&f->lock);
    }
}

static const char *short_failure(const ota_client_result_t *r)
{
    static __thread char buf[160];
    const char *m, *h;
    switch (r->failure) {
    case OTA_FAIL_NONE: return "OK";
    case OTA_FAIL_RESOLVE: return "host does not resolve";
    case OTA_FAIL_REFUSED: return "connection refused";
    case OTA_FAIL_UNREACHABLE: return "unreachable";
    case OTA_FAIL_TIMEOUT:
        snprintf(buf, sizeof buf, "timeout during %s", ota_phase_name(r->phase));
        return buf;
    case OTA_FAIL_CLOSED:
        snprintf(buf, sizeof buf, "connection lost during %s", ota_phase_name(r->phase));
        return buf;
    case OTA_FAIL_DEVICE:
        ota_device_code_message(r->device_code, &m, &h);
        snprintf(buf, sizeof buf, "device error 0x%02X", r->device_code);
        return buf;
    case OTA_FAIL_NEED_PASSWORD: return "password required";
    case OTA_FAIL_AUTH_METHOD: return "auth method excluded by --auth";
    case OTA_FAIL_IMPOSTOR: return "device failed to prove the password";
    case OTA_FAIL_NO_AUTH_ASKED: return "device asked for no password (impostor?)";
    case OTA_FAIL_DOWNGRADE: return "device offered weaker auth than expected";
    default: return "failed";
    }
}

int upload_fleet(fleet_t *f, unsigned jobs)
{
    pthread_t threads[64];
    if (jobs > 64)
        jobs = 64;
    if ((int)jobs > f->count)
        jobs = (unsigned)f->count;
    pthread_mutex_init(&f->lock, NULL);
    double t0 = ota_now_s();
    unsigned started = 0;
    for (; started < jobs; started++)
        if (pthread_create(&threads[started], NULL, fleet_worker, f) != 0)
            break;
    if (started == 0)
        fleet_worker(f);
    for (unsigned i = 0; i < started; i++)
        pthread_join(threads[i], NULL);
    double total = ota_now_s() - t0;
    pthread_mutex_destroy(&f->lock);

    int ok = 0, rc = OTA_EXIT_OK;
    printf("%-40s %-8s %8s  %s\n", "NODE", "RESULT", "TIME", "DETAIL");
    for (int i = 0; i < f->count; i++) {
        fleet_job_t *j = &f->jobs[i];
        char node[300];
        snprintf(node, sizeof node, "%s:%u", j->host, (unsigned)j->port);
        printf("%-40s %-8s %7.2fs  %s\n", node, j->rc == 0 ? "OK" : "FAILED", j->secs,
               short_failure(&j->res));
        if (j->rc == 0)
            ok++;
        else if (rc == OTA_EXIT_OK)
            rc = j->rc;
    }
    printf("%d of %d nodes updated in %.2f s\n", ok, f->count, total);
    if (rc != OTA_EXIT_OK && !f->quiet)
        for (int i = 0; i < f->count; i++)
            if (f->jobs[i].rc != 0) {
                ota_client_options_t o = f->jobs[i].used;
                o.host = f->jobs[i].lookup.by_mdns ? f->jobs[i].lookup.addr : f->jobs[i].host;
                o.port = f->jobs[i].port;
                fprintf(stderr, "%s:%u: ", f->jobs[i].host, (unsigned)o.port);
                report_failure(stderr, &o, &f->jobs[i].res, &f->jobs[i].lookup,
                               f->jobs[i].host);
            }
    return rc;
}

int add_device(const char **specs, int *n, const char *spec)
{
    if (*n >= MAX_DEVICES)
        return -1;
    specs[(*n)++] = spec;
    return 0;
}
