/*
 * progress.c - the upload progress display (see progress.h).
 */
#include "progress.h"

#include <time.h>
#include <unistd.h>

double ota_now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

void ota_progress_init(ota_progress_t *p, FILE *out, bool quiet)
{
    p->out = out;
    p->tty = isatty(fileno(out));
    p->quiet = quiet;
    p->start = ota_now_s();
    p->last_draw = 0;
    p->last_decile = -1;
    p->drew = false;
}

void ota_progress_update(void *arg, size_t done, size_t total)
{
    ota_progress_t *p = arg;
    if (p->quiet || total == 0)
        return;
    double now = ota_now_s();
    double elapsed = now - p->start;
    int pct = (int)(done * 100 / total);
    if (!p->tty) {
        int decile = pct / 10;
        if (decile != p->last_decile) {
            fprintf(p->out, "progress: %d%% (%zu/%zu bytes)\n", pct, done, total);
            fflush(p->out);
            p->last_decile = decile;
        }
        return;
    }
    if (done != total && now - p->last_draw < 0.1)
        return;
    p->last_draw = now;
    double speed = elapsed > 0 ? (double)done / elapsed : 0;
    double eta = speed > 0 ? (double)(total - done) / speed : 0;
    char bar[31];
    int fill = pct * 30 / 100;
    for (int i = 0; i < 30; i++)
        bar[i] = i < fill ? '#' : '.';
    bar[30] = '\0';
    fprintf(p->out, "\rUploading [%s] %3d%% %8.1f KiB/s  ETA %3.0f s ", bar, pct,
            speed / 1024.0, eta);
    fflush(p->out);
    p->drew = true;
}

void ota_progress_finish(ota_progress_t *p)
{
    if (p->drew) {
        fputc('\n', p->out);
        p->drew = false;
    }
}
