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

#include "known_nodes.h"

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
                      double *raw, double *gz, int *flags)
{
    char path[4200], key[320], line[400];
    *when = -1;
    *raw = *gz = 0;
    *flags = -1;
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
            int fl = -1;
            if (sscanf(line + kl + 1, "%lld %lf %lf %d", &w, &r, &g, &fl) >= 1) {
                *when = w;
                *raw = r > 0 ? r : 0;
                *gz = g > 0 ? g : 0;
                *flags = fl >= 0 && fl <= 255 ? fl : -1;
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
    int flags;
    if (!find_line(known_file, host, port, &when, &raw, &gz, &flags))
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
    int flags;
    find_line(known_file, host, port, &when, raw_bps, gz_bps, &flags);
}

int ota_updated_flags(const char *known_file, const char *host, uint16_t port)
{
    long long when;
    double raw, gz;
    int flags;
    find_line(known_file, host, port, &when, &raw, &gz, &flags);
    return flags;
}

void ota_updated_record(const char *known_file, const char *host, uint16_t port, bool gzip,
                        double image_bps, int server_flags)
{
    char path[4200], tmp[4300], key[320];
    if (record_path(known_file, path, sizeof path) != 0)
        return;
    long long when;
    double raw = 0, gz = 0;
    int flags = -1;
    find_line(known_file, host, port, &when, &raw, &gz, &flags);
    if (server_flags >= 0)
        flags = server_flags & 0xff;
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
    /* the state folder, as known_nodes makes it (a node without a password never
     * gets a known_nodes line, but its rates and flags are worth keeping) */
    if (ota_known_make_dirs(path) != 0)
        return;
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0)
        return; /* only a hint is lost */
    FILE *out = fdopen(fd, "w");
    if (out == NULL) {
        close(fd);
        unlink(tmp);
        return;
    }
    for (int i = 0; i < n; i++)
        fputs(lines[i], out);
    fprintf(out, "%s %lld %.0f %.0f %d\n", key, (long long)time(NULL), raw, gz, flags);
    if (fclose(out) != 0 || rename(tmp, path) != 0)
        unlink(tmp);
}
