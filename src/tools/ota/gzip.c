/*
 * gzip.c - gzip (RFC 1952) of an image in memory, with zlib.
 */
#include "gzip.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <mbedtls/sha256.h>

#include <zlib.h>

uint8_t *ota_gzip(const uint8_t *in, size_t len, size_t *out_len)
{
    z_stream z;
    memset(&z, 0, sizeof z);
    if (deflateInit2(&z, Z_DEFAULT_COMPRESSION, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) !=
        Z_OK)
        return NULL;
    uLong cap = deflateBound(&z, (uLong)len);
    uint8_t *out = malloc(cap);
    if (out == NULL) {
        deflateEnd(&z);
        return NULL;
    }
    z.next_in = (Bytef *)(uintptr_t)in;
    z.avail_in = (uInt)len;
    z.next_out = out;
    z.avail_out = (uInt)cap;
    int rc = deflate(&z, Z_FINISH);
    *out_len = cap - z.avail_out;
    deflateEnd(&z);
    if (rc != Z_STREAM_END) {
        free(out);
        return NULL;
    }
    return out;
}

#define CACHE_KEEP 8

static int cache_dir(char *out, size_t cap)
{
    const char *env = getenv("OTA_CACHE_DIR"), *xdg = getenv("XDG_CACHE_HOME"),
               *home = getenv("HOME");
    int n;
    if (env != NULL && env[0])
        n = snprintf(out, cap, "%s", env);
    else if (xdg != NULL && xdg[0] == '/')
        n = snprintf(out, cap, "%s/ota/gzip", xdg);
    else if (home != NULL && home[0])
        n = snprintf(out, cap, "%s/.cache/ota/gzip", home);
    else
        return -1;
    return n > 0 && (size_t)n < cap ? 0 : -1;
}

/* mkdir -p, owner only */
static int make_dirs(const char *path)
{
    char p[4096];
    snprintf(p, sizeof p, "%s", path);
    for (char *s = p + 1; *s; s++)
        if (*s == '/') {
            *s = '\0';
            if (mkdir(p, 0700) != 0 && errno != EEXIST)
                return -1;
            *s = '/';
        }
    return mkdir(p, 0700) == 0 || errno == EEXIST ? 0 : -1;
}

/* the gzip member's trailer: CRC-32 and length of what it inflates to */
static bool trailer_matches(const uint8_t *gz, size_t gz_len, const uint8_t *in, size_t len)
{
    if (gz_len < 18 || gz[0] != 0x1f || gz[1] != 0x8b)
        return false;
    const uint8_t *t = gz + gz_len - 8;
    uint32_t crc = (uint32_t)t[0] | (uint32_t)t[1] << 8 | (uint32_t)t[2] << 16 |
                   (uint32_t)t[3] << 24;
    uint32_t isize = (uint32_t)t[4] | (uint32_t)t[5] << 8 | (uint32_t)t[6] << 16 |
                     (uint32_t)t[7] << 24;
    return isize == (uint32_t)len && crc == (uint32_t)crc32(0L, in, (uInt)len);
}

static uint8_t *read_whole(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (f == NULL)
        return NULL;
    struct stat st;
    uint8_t *buf = NULL;
    if (fstat(fileno(f), &st) == 0 && S_ISREG(st.st_mode) && st.st_size > 0 &&
        (buf = malloc((size_t)st.st_size)) != NULL &&
        fread(buf, 1, (size_t)st.st_size, f) != (size_t)st.st_size) {
        free(buf);
        buf = NULL;
    }
    fclose(f);
    if (buf != NULL)
        *len = (size_t)st.st_size;
    return buf;
}

/* keep the CACHE_KEEP most recently used entries */
static void prune(const char *dir)
{
    DIR *d = opendir(dir);
    if (d == NULL)
        return;
    struct {
        char name[80];
        time_t t;
    } e[64];
    int n = 0;
    struct dirent *de;
    while ((de = readdir(d)) != NULL && n < 64) {
        size_t l = strlen(de->d_name);
        if (l != 64 + 3 || strcmp(de->d_name + 64, ".gz") != 0)
            continue;
        char p[4200];
        struct stat st;
        snprintf(p, sizeof p, "%.4000s/%.70s", dir, de->d_name);
        if (stat(p, &st) != 0)
            continue;
        memcpy(e[n].name, de->d_name, l + 1); /* 67 bytes + NUL: checked above */
        e[n].t = st.st_mtime;
        n++;
    }
    closedir(d);
    while (n > CACHE_KEEP) {
        int oldest = 0;
        for (int i = 1; i < n; i++)
            if (e[i].t < e[oldest].t)
                oldest = i;
        char p[4200];
        snprintf(p, sizeof p, "%.4000s/%.70s", dir, e[oldest].name);
        unlink(p);
        e[oldest] = e[--n];
    }
}

uint8_t *ota_gzip_cached(const uint8_t *in, size_t len, size_t *out_len, bool *hit)
{
    if (hit)
        *hit = false;
    char dir[4096], path[4200], tmp[4300];
    if (cache_dir(dir, sizeof dir) != 0)
        return ota_gzip(in, len, out_len);
    uint8_t d[32];
    char hex[65];
    mbedtls_sha256_ret(in, len, d, 0);
    for (int i = 0; i < 32; i++)
        snprintf(hex + 2 * i, 3, "%02x", d[i]);
    snprintf(path, sizeof path, "%s/%s.gz", dir, hex);
    size_t n = 0;
    uint8_t *gz = read_whole(path, &n);
    if (gz != NULL && trailer_matches(gz, n, in, len)) {
        *out_len = n;
        if (hit)
            *hit = true;
        utimensat(AT_FDCWD, path, NULL, 0); /* recently used */
        return gz;
    }
    free(gz);
    gz = ota_gzip(in, len, out_len);
    if (gz == NULL || make_dirs(dir) != 0)
        return gz;
    snprintf(tmp, sizeof tmp, "%s.%ld.tmp", path, (long)getpid());
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd >= 0) {
        bool ok = write(fd, gz, *out_len) == (ssize_t)*out_len;
        if (close(fd) != 0 || !ok || rename(tmp, path) != 0)
            unlink(tmp);
        prune(dir);
    }
    return gz;
}
