/*
 * port_test_util.c - helpers shared by the C tests of the POSIX port (see
 * port_test_util.h).
 */
#include "port_test_util.h"

#include <dirent.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

void tu_mkdtemp(char *out)
{
    const char *base = getenv("TMPDIR");
    snprintf(out, 4096, "%s/ota-port-test-XXXXXX", base && base[0] ? base : "/tmp");
    assert_non_null(mkdtemp(out));
}

void tu_rm_rf(const char *dir)
{
    DIR *d = opendir(dir);
    if (d == NULL) {
        unlink(dir);
        return;
    }
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
            continue;
        char p[4096];
        tu_path(p, dir, e->d_name);
        struct stat st;
        if (lstat(p, &st) == 0 && S_ISDIR(st.st_mode))
            tu_rm_rf(p);
        else
            unlink(p);
    }
    closedir(d);
    rmdir(dir);
}

void tu_path(char *out, const char *dir, const char *name)
{
    int n = snprintf(out, 4096, "%s/%s", dir, name);
    assert_true(n > 0 && n < 4096);
}

uint8_t *tu_read(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    *len = 0;
    if (f == NULL)
        return NULL;
    size_t cap = 4096, n = 0;
    uint8_t *buf = malloc(cap);
    assert_non_null(buf);
    size_t r;
    while ((r = fread(buf + n, 1, cap - n, f)) > 0) {
        n += r;
        if (n == cap) {
            cap *= 2;
            buf = realloc(buf, cap);
            assert_non_null(buf);
        }
    }
    fclose(f);
    *len = n;
    return buf;
}

void tu_write(const char *path, const void *data, size_t len, unsigned mode)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, (mode_t)mode);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, data, len), (ssize_t)len);
    assert_int_equal(fchmod(fd, (mode_t)mode), 0);
    close(fd);
}

bool tu_exists(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0;
}

uint8_t *tu_self_image(size_t *len)
{
    uint8_t *img = tu_read("/proc/self/exe", len);
    assert_non_null(img);
    assert_true(*len > 64);
    return img;
}

void tu_snap(tu_snap_t *s, const char *path)
{
    s->data = tu_read(path, &s->len);
}

void tu_assert_same(tu_snap_t *s, const char *path)
{
    size_t len;
    uint8_t *now = tu_read(path, &len);
    if (s->data == NULL) {
        assert_null(now);
    } else {
        assert_non_null(now);
        assert_int_equal(len, s->len);
        assert_memory_equal(now, s->data, len);
    }
    free(now);
    free(s->data);
    s->data = NULL;
}
