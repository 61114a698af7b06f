/*
 * updated_nodes.c - the record of recent updates (updated_nodes.h).
 */
#include "updated_nodes.h"

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define MAX_LINES 256

static int record_path(const char *known_file, char *out, size_t cap)
{
    if (known_file == NULL || known_file[0] == '\0')
        return -1;
    const char *slash = strrchr(known_file, '/');
    int dir = slash ? (int)(slash - known_file) : 1;
    int n = snprintf(out, cap, "%.*s/updated_nodes", dir, slash ? known_file : ".");
    return n > 0 && (size_t)n < cap ? 0 : -1;
}

static void node_key(const char *host, uint16_t port, char *key, size_t cap)
{
    snprintf(key, cap, "%s:%u", host, (unsigned)port);
}

/* The node's line: its time and rates. \return true when there is one. */
static bool find_line(const char *known_file, const char *host, uint16_t port, long long *when,
                      double *raw, double *gz)
{
    char path[4200], key[320], line[400];
    *when = -1;
    *raw = *gz = 0;
    if (record_path(known_file, path, sizeof path) != 0)
        return false;
    FILE *f = fopen(path, "r");
    if (f == NULL)
        return false;
    node_key(host, port, key, sizeof key);
    size_t kl = strlen(key);
    bool found = false;
    while (fgets(line, sizeof line, f) != NULL)
        if (strncmp(line, key, kl) == 0 && line[kl] == ' ') {
            double r = 0, g = 0;
            long long w = -1;
            if (sscanf(line + kl + 1, "%lld %lf %lf", &w, &r, &g) >= 1) {
                *when = w;
                *raw = r > 0 ? r : 0;
                *gz = g > 0 ? g : 0;
                found = true;
            }
        }
    fclose(f);
    return found;
}

long ota_updated_ago(const char *known_file, const char *host, uint16_t port)
{
    long long when;
    double raw, gz;
    if (!find_line(known_file, host, port, &when, &raw, &gz))
        return -1;
    long long ago = (long long)time(NULL) - when;
    if (when <= 0 || ago < 0 || ago > OTA_UPDATED_REBOOT_WINDOW_S)
        return -1;
    return ago < 1 ? 1 : (long)ago; /* "0 s ago" reads as "not recently" */
}

void ota_updated_rates(const char *known_file, const char *host, uint16_t port,
                       double *raw_bps, double *gz_bps)
{
    long long when;
    find_line(known_file, host, port, &when, raw_bps, gz_bps);
}

void ota_updated_record(const char *known_file, const char *host, uint16_t port, bool gzip,
                        double image_bps)
{
    char path[4200], tmp[4300], key[320];
    if (record_path(known_file, path, sizeof path) != 0)
        return;
    long long when;
    double raw = 0, gz = 0;
    find_line(known_file, host, port, &when, &raw, &gz);
    if (image_bps > 0)
        *(gzip ? &gz : &raw) = image_bps;
    node_key(host, port, key, sizeof key);
    size_t kl = strlen(key);
    /* the other nodes' lines, newest last, at most MAX_LINES - 1 of them */
    static char lines[MAX_LINES][400];
    int n = 0;
    FILE *f = fopen(path, "r");
    if (f != NULL) {
        char line[400];
        while (fgets(line, sizeof line, f) != NULL) {
            if ((strncmp(line, key, kl) == 0 && line[kl] == ' ') || strchr(line, '\n') == NULL)
                continue;
            if (n == MAX_LINES - 1) {
                memmove(lines[0], lines[1], sizeof lines[0] * (MAX_LINES - 2));
                n--;
            }
            memcpy(lines[n++], line, sizeof line);
        }
        fclose(f);
    }
    snprintf(tmp, sizeof tmp, "%s.%ld.tmp", path, (long)getpid());
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0)
        return; /* no state folder (known_nodes creates it): only a hint is lost */
    FILE *out = fdopen(fd, "w");
    if (out == NULL) {
        close(fd);
        unlink(tmp);
        return;
    }
    for (int i = 0; i < n; i++)
        fputs(lines[i], out);
    fprintf(out, "%s %lld %.0f %.0f\n", key, (long long)time(NULL), raw, gz);
    if (fclose(out) != 0 || rename(tmp, path) != 0)
        unlink(tmp);
}
