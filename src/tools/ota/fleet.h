/*
 * fleet.h - one image to many nodes: the node list (--device, --devices-file), the
 * parallel uploads and the summary table.
 */
#ifndef OTA_TOOL_FLEET_H
#define OTA_TOOL_FLEET_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "client.h"
#include "host_lookup.h"

#define MAX_DEVICES 1024

typedef struct fleet_job {
    char host[256];
    uint16_t port;
    int rc;
    double secs;
    ota_client_result_t res;
    host_lookup_t lookup;
    ota_client_options_t used; /* the options of its upload (known_nodes record) */
} fleet_job_t;

typedef struct fleet {
    fleet_job_t *jobs;
    int count;
    int next, done;
    pthread_mutex_t lock;
    ota_client_options_t base;
    const ota_client_payload_t *payload; /* hashed and gzipped once for every node */
    bool quiet;
} fleet_t;

/** "host", "host:port", "[v6]:port", "v6" -> host and port (default_port if absent). */
bool split_device(const char *spec, uint16_t default_port, char *host, size_t cap,
                  uint16_t *port);
/** Append spec to specs[*n]. \return 0, -1 when MAX_DEVICES are there already. */
int add_device(const char **specs, int *n, const char *spec);
/** Upload f->image to every job, jobs at a time; print the table. \return the first
 *  failure's exit code, or OTA_EXIT_OK. */
int upload_fleet(fleet_t *f, unsigned jobs);

#endif
