/*
 * progress.h - upload progress for people: a bar with percent, speed and ETA on a
 * terminal, plain "progress:" lines every 10 % otherwise.
 */
#ifndef OTA_TOOLS_OTA_PROGRESS_H
#define OTA_TOOLS_OTA_PROGRESS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

typedef struct ota_progress {
    FILE *out;
    bool tty;
    bool quiet;
    double start;        /* seconds */
    double last_draw;
    int last_decile;
    bool drew;
} ota_progress_t;

void ota_progress_init(ota_progress_t *p, FILE *out, bool quiet);
/** Callback for ota_client_upload (arg = ota_progress_t *). */
void ota_progress_update(void *arg, size_t done, size_t total);
/** End the bar's line (if one was drawn). */
void ota_progress_finish(ota_progress_t *p);
/** Seconds on a monotonic clock. */
double ota_now_s(void);

#endif /* OTA_TOOLS_OTA_PROGRESS_H */
