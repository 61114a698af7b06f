/*
 * log.c - the log lines of the POSIX port (log.h): stdout, plus the viewers of the
 * context's log server (ota_posix_log_broadcast(), net.c).
 */
#include "log.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "ota_posix.h"

static const char level_char[] = {'E', 'W', 'I', 'D'};

static void vlog(ota_posix_t *ctx, ota_log_level_t level, const char *tag, const char *fmt,
                 va_list ap) __attribute__((format(printf, 4, 0)));

static void vlog(ota_posix_t *ctx, ota_log_level_t level, const char *tag, const char *fmt,
                 va_list ap)
{
    char line[1024];
    vsnprintf(line, sizeof line, fmt, ap);
    char full[1100];
    int n = snprintf(full, sizeof full, "[%c][%s] %s\n", level_char[(unsigned)level & 3u], tag,
                     line);
    if (n < 0)
        return;
    size_t len = (size_t)n < sizeof full ? (size_t)n : sizeof full - 1;
    fwrite(full, 1, len, stdout);
    fflush(stdout);
    if (ctx != NULL)
        ota_posix_log_broadcast(ctx, full, len);
}

void ota_posix_logf(ota_posix_t *ctx, ota_log_level_t level, const char *tag, const char *fmt,
                    ...)
{
    va_list ap;
    va_start(ap, fmt);
    vlog(ctx, level, tag, fmt, ap);
    va_end(ap);
}

void ota_posix_port_log(void *user, ota_log_level_t level, const char *line)
{
    ota_posix_t *ctx = user;
    if (strncmp(line, "mdns: ", 6) == 0) /* the responder's lines get their own tag */
        ota_posix_logf(ctx, level, "mdns", "%s", line + 6);
    else
        ota_posix_logf(ctx, level, "ota", "%s", line);
}
