/*
 * net.c - the OTA TCP listener of the POSIX port: non-blocking accept, recv and
 * send with the return codes of ota/port.h, and the set of open connections that
 * ota_posix_wait() sleeps on.
 */
#include "ota_posix.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "ota/errors.h"

/* A non-blocking listening socket on addr:port; -1 with err set. */
static int listen_on(const char *addr, uint16_t port, char *bound, size_t bound_cap, char *err,
                     size_t err_cap)
{
    struct sockaddr_storage ss;
    socklen_t len;
    memset(&ss, 0, sizeof ss);
    struct sockaddr_in *v4 = (struct sockaddr_in *)&ss;
    struct sockaddr_in6 *v6 = (struct sockaddr_in6 *)&ss;
    if (inet_pton(AF_INET, addr, &v4->sin_addr) == 1) {
        v4->sin_family = AF_INET;
        v4->sin_port = htons(port);
        len = sizeof *v4;
    } else if (inet_pton(AF_INET6, addr, &v6->sin6_addr) == 1) {
        v6->sin6_family = AF_INET6;
        v6->sin6_port = htons(port);
        len = sizeof *v6;
    } else {
        snprintf(err, err_cap, "'%s' is not an IPv4 or IPv6 address", addr);
        return -1;
    }
    (void)bound_cap;
    int fd = socket(ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        snprintf(err, err_cap, "socket: %s", strerror(errno));
        return -1;
    }
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (bind(fd, (struct sockaddr *)&ss, len) != 0 || listen(fd, 16) != 0) {
        int e = errno;
        close(fd);
        snprintf(err, err_cap, "cannot listen on %s port %u: %s%s", addr, (unsigned)port,
                 strerror(e),
                 e == EADDRINUSE ? " (another node or program uses this port: pick another "
                                   "with --port)"
                                 : "");
        return -1;
    }
    snprintf(bound, bound_cap, ss.ss_family == AF_INET6 ? "[%s]:%u" : "%s:%u", addr,
             (unsigned)port);
    return fd;
}

int ota_posix_net_listen(ota_posix_t *ctx, const char *addr, uint16_t port, char *err,
                         size_t err_cap)
{
    int fd = listen_on(addr, port, ctx->bound, sizeof ctx->bound, err, err_cap);
    if (fd < 0)
        return -1;
    ctx->listen_fd = fd;
    return 0;
}

static void track(ota_posix_t *ctx, int fd, bool add)
{
    for (int i = 0; i < OTA_POSIX_MAX_CONNS; i++) {
        if (add && ctx->conns[i] < 0) {
            ctx->conns[i] = fd;
            return;
        }
        if (!add && ctx->conns[i] == fd) {
            ctx->conns[i] = -1;
            return;
        }
    }
}

/* ---------------- ArduinoOTA: UDP invitations, connecting back ---------------- */

static int to_sockaddr(const char *ip, uint16_t port, struct sockaddr_storage *ss, socklen_t *len)
{
    memset(ss, 0, sizeof *ss);
    struct sockaddr_in *v4 = (struct sockaddr_in *)ss;
    struct sockaddr_in6 *v6 = (struct sockaddr_in6 *)ss;
    if (inet_pton(AF_INET, ip, &v4->sin_addr) == 1) {
        v4->sin_family = AF_INET;
        v4->sin_port = htons(port);
        *len = sizeof *v4;
        return 0;
    }
    if (inet_pton(AF_INET6, ip, &v6->sin6_addr) == 1) {
        v6->sin6_family = AF_INET6;
        v6->sin6_port = htons(port);
        *len = sizeof *v6;
        return 0;
    }
    return -1;
}

int ota_posix_udp_open(ota_posix_t *ctx, const char *addr, uint16_t port, char *err,
                       size_t err_cap)
{
    struct sockaddr_storage ss;
    socklen_t len;
    if (to_sockaddr(addr, port, &ss, &len) != 0) {
        snprintf(err, err_cap, "'%s' is not an IPv4 or IPv6 address", addr);
        return -1;
    }
    int fd = socket(ss.ss_family, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0 || bind(fd, (struct sockaddr *)&ss, len) != 0) {
        snprintf(err, err_cap, "cannot listen for ArduinoOTA on %s UDP port %u: %s", addr,
                 (unsigned)port, strerror(errno));
        if (fd >= 0)
            close(fd);
        return -1;
    }
    ctx->udp_fd = fd;
    return 0;
}

int ota_posix_udp_recv(void *user, uint8_t *buf, size_t len, char *from, size_t from_len,
                       uint16_t *from_port)
{
    ota_posix_t *ctx = user;
    if (ctx->udp_fd < 0)
        return OTA_ERR_WOULD_BLOCK;
    struct sockaddr_storage ss;
    socklen_t sl = sizeof ss;
    ssize_t n = recvfrom(ctx->udp_fd, buf, len, MSG_TRUNC, (struct sockaddr *)&ss, &sl);
    if (n < 0)
        return (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR) ? OTA_ERR_WOULD_BLOCK
                                                                            : OTA_ERR_IO;
    if ((size_t)n > len)
        n = (ssize_t)len; /* cut to the buffer */
    if (ss.ss_family == AF_INET) {
        struct sockaddr_in *a = (struct sockaddr_in *)&ss;
        inet_ntop(AF_INET, &a->sin_addr, from, (socklen_t)from_len);
        *from_port = ntohs(a->sin_port);
    } else {
        struct sockaddr_in6 *a = (struct sockaddr_in6 *)&ss;
        inet_ntop(AF_INET6, &a->sin6_addr, from, (socklen_t)from_len);
        *from_port = ntohs(a->sin6_port);
    }
    return (int)n;
}

int ota_posix_udp_send(void *user, const char *ip, uint16_t port, const uint8_t *buf, size_t len)
{
    ota_posix_t *ctx = user;
    struct sockaddr_storage ss;
    socklen_t sl;
    if (ctx->udp_fd < 0 || to_sockaddr(ip, port, &ss, &sl) != 0)
        return OTA_ERR_IO;
    ssize_t n = sendto(ctx->udp_fd, buf, len, 0, (struct sockaddr *)&ss, sl);
    if (n < 0)
        return (errno == EAGAIN || errno == EWOULDBLOCK) ? OTA_ERR_WOULD_BLOCK : OTA_ERR_IO;
    return OTA_OK;
}

int ota_posix_net_connect(void *user, const char *ip, uint16_t port, ota_conn_t *conn)
{
    ota_posix_t *ctx = user;
    struct sockaddr_storage ss;
    socklen_t sl;
    bool room = false;
    for (int i = 0; i < OTA_POSIX_MAX_CONNS; i++)
        room |= ctx->conns[i] < 0;
    if (!room || to_sockaddr(ip, port, &ss, &sl) != 0)
        return OTA_ERR_IO;
    int fd = socket(ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return OTA_ERR_IO;
    if (connect(fd, (struct sockaddr *)&ss, sl) != 0 && errno != EINPROGRESS) {
        close(fd);
        return OTA_ERR_IO;
    }
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    track(ctx, fd, true);
    *conn = fd;
    return OTA_OK;
}

/* ---------------- the log viewers' listener ---------------- */

static ota_posix_t *log_ctx; /* the process's log server (one node per process) */

int ota_posix_log_listen(ota_posix_t *ctx, const char *addr, uint16_t port, const char *hello,
                         char *err, size_t err_cap)
{
    char bound[80];
    int fd = listen_on(addr, port, bound, sizeof bound, err, err_cap);
    if (fd < 0)
        return -1;
    ctx->log_fd = fd;
    snprintf(ctx->log_hello, sizeof ctx->log_hello, "%s\n", hello);
    log_ctx = ctx;
    return 0;
}

void ota_posix_log_poll(ota_posix_t *ctx)
{
    if (ctx->log_fd < 0)
        return;
    for (;;) {
        int fd = accept4(ctx->log_fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0)
            return;
        int slot = -1;
        for (int i = 0; i < OTA_POSIX_MAX_VIEWERS; i++)
            if (ctx->viewers[i] < 0)
                slot = i;
        if (slot < 0) {
            static const char full[] = "# too many log viewers; try again later\n";
            (void)!send(fd, full, sizeof full - 1, MSG_NOSIGNAL);
            close(fd);
            continue;
        }
        ctx->viewers[slot] = fd;
        (void)!send(fd, ctx->log_hello, strlen(ctx->log_hello), MSG_NOSIGNAL);
    }
}

/* Called by ota_posix_log for every line (with its newline). */
void ota_posix_log_broadcast(const char *line, size_t len)
{
    ota_posix_t *ctx = log_ctx;
    if (ctx == NULL || ctx->log_fd < 0)
        return;
    for (int i = 0; i < OTA_POSIX_MAX_VIEWERS; i++) {
        if (ctx->viewers[i] < 0)
            continue;
        ssize_t n = send(ctx->viewers[i], line, len, MSG_NOSIGNAL | MSG_DONTWAIT);
        if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK) {
            close(ctx->viewers[i]); /* the viewer went away */
            ctx->viewers[i] = -1;
        }
    }
}

void ota_posix_log_close(ota_posix_t *ctx)
{
    for (int i = 0; i < OTA_POSIX_MAX_VIEWERS; i++) {
        if (ctx->viewers[i] >= 0)
            close(ctx->viewers[i]);
        ctx->viewers[i] = -1;
    }
    if (ctx->log_fd >= 0)
        close(ctx->log_fd);
    ctx->log_fd = -1;
    if (log_ctx == ctx)
        log_ctx = NULL;
}

int ota_posix_net_accept(void *user, ota_conn_t *conn, char *peer, size_t peer_len)
{
    ota_posix_t *ctx = user;
    struct sockaddr_storage ss;
    socklen_t len = sizeof ss;
    int fd = accept4(ctx->listen_fd, (struct sockaddr *)&ss, &len, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd < 0)
        return (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR ||
                errno == ECONNABORTED)
                   ? OTA_ERR_WOULD_BLOCK
                   : OTA_ERR_IO;
    bool room = false;
    for (int i = 0; i < OTA_POSIX_MAX_CONNS; i++)
        room |= ctx->conns[i] < 0;
    if (!room) { /* more sockets than the core could ever hold: refuse */
        close(fd);
        return OTA_ERR_WOULD_BLOCK;
    }
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    char host[INET6_ADDRSTRLEN] = "?";
    unsigned port = 0;
    if (ss.ss_family == AF_INET) {
        struct sockaddr_in *a = (struct sockaddr_in *)&ss;
        inet_ntop(AF_INET, &a->sin_addr, host, sizeof host);
        port = ntohs(a->sin_port);
        snprintf(peer, peer_len, "%s:%u", host, port);
    } else {
        struct sockaddr_in6 *a = (struct sockaddr_in6 *)&ss;
        inet_ntop(AF_INET6, &a->sin6_addr, host, sizeof host);
        port = ntohs(a->sin6_port);
        snprintf(peer, peer_len, "[%s]:%u", host, port);
    }
    track(ctx, fd, true);
    *conn = fd;
    return OTA_OK;
}

int ota_posix_net_recv(void *user, ota_conn_t conn, uint8_t *buf, size_t len)
{
    (void)user;
    for (;;) {
        ssize_t n = recv(conn, buf, len, 0);
        if (n > 0)
            return (int)n;
        if (n == 0)
            return OTA_ERR_CLOSED;
        if (errno == EINTR)
            continue;
        if (errno == EAGAIN || errno == EWOULDBLOCK || errno == ENOTCONN)
            return OTA_ERR_WOULD_BLOCK; /* ENOTCONN: an outbound connect still in progress */
        return (errno == ECONNRESET || errno == ECONNREFUSED) ? OTA_ERR_CLOSED : OTA_ERR_IO;
    }
}

int ota_posix_net_send(void *user, ota_conn_t conn, const uint8_t *buf, size_t len)
{
    (void)user;
    for (;;) {
        ssize_t n = send(conn, buf, len, MSG_NOSIGNAL);
        if (n > 0)
            return (int)n;
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == ENOTCONN))
            return OTA_ERR_WOULD_BLOCK;
        return (n < 0 && (errno == EPIPE || errno == ECONNRESET || errno == ECONNREFUSED))
                   ? OTA_ERR_CLOSED
                   : OTA_ERR_IO;
    }
}

void ota_posix_net_close(void *user, ota_conn_t conn)
{
    ota_posix_t *ctx = user;
    track(ctx, conn, false);
    close(conn);
}
