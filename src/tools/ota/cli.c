/*
 * cli.c - the pieces every `ota` command shares (cli.h).
 */
#include "cli.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "client.h"

int usage_error(const char *cmd, const char *fmt, const char *arg)
{
    fprintf(stderr, "ota%s%s: ", cmd ? " " : "", cmd ? cmd : "");
    fprintf(stderr, fmt, arg ? arg : "");
    fprintf(stderr, "\nRun 'ota%s%s --help' for usage.\n", cmd ? " " : "", cmd ? cmd : "");
    return OTA_EXIT_USAGE;
}

bool parse_uint(const char *s, unsigned long min, unsigned long max, unsigned long *out)
{
    char *end;
    errno = 0;
    unsigned long v = strtoul(s, &end, 10);
    if (*s == '\0' || *s == '-' || *end != '\0' || errno != 0 || v < min || v > max)
        return false;
    *out = v;
    return true;
}

char *read_first_line(FILE *f)
{
    char *line = NULL;
    size_t cap = 0;
    ssize_t n = getline(&line, &cap, f);
    if (n < 0) {
        free(line);
        return NULL;
    }
    while (n > 0 && (line[n - 1] == '\n' || line[n - 1] == '\r'))
        line[--n] = '\0';
    return line;
}

uint8_t *read_file(const char *path, size_t *len, int *err)
{
    FILE *f = fopen(path, "rb");
    if (f == NULL) {
        *err = errno;
        return NULL;
    }
    struct stat st;
    if (fstat(fileno(f), &st) != 0 || !S_ISREG(st.st_mode)) {
        *err = S_ISDIR(st.st_mode) ? EISDIR : EINVAL;
        fclose(f);
        return NULL;
    }
    uint8_t *buf = malloc(st.st_size > 0 ? (size_t)st.st_size : 1);
    size_t n = buf ? fread(buf, 1, (size_t)st.st_size, f) : 0;
    int bad = ferror(f) || n != (size_t)st.st_size;
    fclose(f);
    if (buf == NULL || bad) {
        *err = buf ? EIO : ENOMEM;
        free(buf);
        return NULL;
    }
    *len = n;
    return buf;
}

/* The firmware image, or NULL after saying why. */
uint8_t *load_firmware(const char *firmware, size_t *len)
{
    int err = 0;
    uint8_t *image = read_file(firmware, len, &err);
    if (image == NULL || *len == 0) {
        if (image == NULL)
            fprintf(stderr, "error: cannot read the firmware %s: %s\n", firmware, strerror(err));
        else
            fprintf(stderr, "error: the firmware %s is empty\n", firmware);
        fprintf(stderr, "hint: pass the firmware image built for the node (e.g. firmware.bin)\n");
        free(image);
        return NULL;
    }
    return image;
}
