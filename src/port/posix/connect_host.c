/*
 * connect_host.c - outbound TCP connections by host name for the HTTP client
 * (ota_tcp_port_t.connect_host), without ever blocking the main loop.
 *
 * The name is resolved by glibc's getaddrinfo_a (its own thread; a numeric address
 * needs no lookup at all), and the handle is handed out at once: a placeholder socket
 * whose descriptor number stays the connection's for its whole life. Each address is
 * tried by connecting a socket of its family and dup3()ing it onto that number, so
 * recv/send/close and the caller never see the handle change. recv and send move the
 * state on (ota_posix_outbound_step): is the lookup done, is the connect done, does
 * the next address have to be tried.
 */
#include "ota_posix.h"

#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "ota/errors.h"

/* One lookup: getaddrinfo_a reads name, service and hints until it is done. */
typedef struct lookup {
    struct gaicb cb;
    struct gaicb *list[1];
    struct addrinfo hints;
    char name[256];
    char service[8];
} lookup_t;

static ota_posix_outbound_t *find(ota_posix_t *ctx, int fd)
{
    if (fd < 0)
        return NULL;
    for (int i = 0; i < OTA_POSIX_MAX_OUTBOUND; i++)
        if (ctx->outbound[i].state != OTA_POSIX_OUT_FREE && ctx->outbound[i].fd == fd)
            return &ctx->outbound[i];
    return NULL;
}

static void release(ota_posix_outbound_t *o)
{
    if (o->res != NULL)
        freeaddrinfo(o->res);
    o->res = o->next = NULL;
    o->fd = -1;
    o->state = OTA_POSIX_OUT_FREE;
}

/* Lookups of closed connections that have ended since: free them. */
static void reap(ota_posix_t *ctx)
{
    for (int i = 0; i < OTA_POSIX_MAX_OUTBOUND; i++) {
        ota_posix_outbound_t *o = &ctx->outbound[i];
        if (o->state != OTA_POSIX_OUT_ORPHAN)
            continue;
        lookup_t *l = o->req;
        if (gai_error(&l->cb) == EAI_INPROGRESS)
            continue;
        if (l->cb.ar_result != NULL)
            freeaddrinfo(l->cb.ar_result);
        free(l);
        o->req = NULL;
        release(o);
    }
}

static bool numeric(const char *host, struct addrinfo **res, uint16_t port)
{
    struct addrinfo hints;
    memset(&hints, 0, sizeof hints);
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_NUMERICHOST | AI_NUMERICSERV;
    char service[8];
    snprintf(service, sizeof service, "%u", (unsigned)port);
    return getaddrinfo(host, service, &hints, res) == 0;
}

/* Start connecting to the next address; FAILED when none is left. */
static void try_next(ota_posix_outbound_t *o)
{
    while (o->next != NULL) {
        struct addrinfo *a = o->next;
        o->next = a->ai_next;
        int s = socket(a->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        if (s < 0)
            continue; /* e.g. no IPv6 on this host */
        o->tried = true;
        if (connect(s, a->ai_addr, a->ai_addrlen) != 0 && errno != EINPROGRESS) {
            close(s);
            continue;
        }
        int one = 1;
        setsockopt(s, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        if (dup3(s, o->fd, O_CLOEXEC) < 0) { /* replaces the previous socket */
            close(s);
            continue;
        }
        close(s);
        o->state = OTA_POSIX_OUT_CONNECTING;
        o->attempt_ms = ota_posix_now_ms();
        return;
    }
    o->state = OTA_POSIX_OUT_FAILED;
    o->err = o->tried ? OTA_ERR_CLOSED : OTA_ERR_RESOLVE;
}

int ota_posix_net_connect_host(void *user, const char *host, uint16_t port, ota_conn_t *conn)
{
    ota_posix_t *ctx = user;
    if (host == NULL || host[0] == '\0' || strlen(host) > 253 || conn == NULL)
        return OTA_ERR_INVALID_ARG;
    reap(ctx);
    ota_posix_outbound_t *o = NULL;
    for (int i = 0; i < OTA_POSIX_MAX_OUTBOUND && o == NULL; i++)
        if (ctx->outbound[i].state == OTA_POSIX_OUT_FREE)
            o = &ctx->outbound[i];
    bool room = false;
    for (int i = 0; i < OTA_POSIX_MAX_CONNS; i++)
        room |= ctx->conns[i] < 0;
    if (o == NULL || !room)
        return OTA_ERR_IO;
    /* the placeholder: its number is the handle from now on */
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return OTA_ERR_IO;
    memset(o, 0, sizeof *o);
    o->fd = fd;
    struct addrinfo *res = NULL;
    if (numeric(host, &res, port)) {
        o->res = o->next = res;
        try_next(o); /* no lookup: the first address at once (a failure shows later) */
    } else {
        lookup_t *l = calloc(1, sizeof *l);
        if (l == NULL) {
            close(fd);
            o->state = OTA_POSIX_OUT_FREE;
            return OTA_ERR_IO;
        }
        snprintf(l->name, sizeof l->name, "%s", host);
        snprintf(l->service, sizeof l->service, "%u", (unsigned)port);
        l->hints.ai_family = AF_UNSPEC;
        l->hints.ai_socktype = SOCK_STREAM;
        l->hints.ai_flags = AI_NUMERICSERV;
        l->cb.ar_name = l->name;
        l->cb.ar_service = l->service;
        l->cb.ar_request = &l->hints;
        l->list[0] = &l->cb;
        if (getaddrinfo_a(GAI_NOWAIT, l->list, 1, NULL) != 0) {
            free(l);
            close(fd);
            o->state = OTA_POSIX_OUT_FREE;
            return OTA_ERR_IO;
        }
        o->req = l;
        o->state = OTA_POSIX_OUT_RESOLVING;
    }
    ota_posix_net_track(ctx, fd, true);
    *conn = fd;
    return OTA_OK;
}

int ota_posix_outbound_step(ota_posix_t *ctx, ota_conn_t conn)
{
    ota_posix_outbound_t *o = ctx != NULL ? find(ctx, conn) : NULL;
    if (o == NULL)
        return OTA_OK; /* an ordinary connection */
    if (o->state == OTA_POSIX_OUT_RESOLVING) {
        lookup_t *l = o->req;
        int e = gai_error(&l->cb);
        if (e == EAI_INPROGRESS)
            return OTA_ERR_WOULD_BLOCK;
        o->req = NULL;
        if (e == 0) {
            o->res = o->next = l->cb.ar_result;
            free(l);
            try_next(o);
        } else {
            if (l->cb.ar_result != NULL)
                freeaddrinfo(l->cb.ar_result);
            free(l);
            o->state = OTA_POSIX_OUT_FAILED;
            o->err = OTA_ERR_RESOLVE;
        }
    }
    while (o->state == OTA_POSIX_OUT_CONNECTING) {
        struct pollfd p = {.fd = o->fd, .events = POLLOUT};
        int r = poll(&p, 1, 0);
        if (r == 0) {
            if (o->next != NULL &&
                (uint32_t)(ota_posix_now_ms() - o->attempt_ms) >= OTA_POSIX_OUT_ATTEMPT_MS) {
                try_next(o); /* silent: give the next address its chance */
                continue;
            }
            return OTA_ERR_WOULD_BLOCK;
        }
        if (r < 0)
            return errno == EINTR ? OTA_ERR_WOULD_BLOCK : OTA_ERR_IO;
        int soerr = 0;
        socklen_t sl = sizeof soerr;
        if (getsockopt(o->fd, SOL_SOCKET, SO_ERROR, &soerr, &sl) != 0)
            soerr = errno;
        if (soerr == 0) {
            release(o); /* connected: an ordinary connection from now on */
            return OTA_OK;
        }
        try_next(o); /* refused or unreachable: the next address */
    }
    return o->state == OTA_POSIX_OUT_FAILED ? o->err : OTA_OK;
}

void ota_posix_outbound_forget(ota_posix_t *ctx, ota_conn_t conn)
{
    ota_posix_outbound_t *o = find(ctx, conn);
    if (o == NULL)
        return;
    if (o->state == OTA_POSIX_OUT_RESOLVING) {
        lookup_t *l = o->req;
        if (gai_cancel(&l->cb) != EAI_CANCELED && gai_error(&l->cb) == EAI_INPROGRESS) {
            o->state = OTA_POSIX_OUT_ORPHAN; /* the resolver still writes into it */
            o->fd = -1;
            return;
        }
        if (l->cb.ar_result != NULL)
            freeaddrinfo(l->cb.ar_result);
        free(l);
        o->req = NULL;
    }
    release(o);
}

void ota_posix_outbound_free(ota_posix_t *ctx)
{
    for (int i = 0; i < OTA_POSIX_MAX_OUTBOUND; i++) {
        ota_posix_outbound_t *o = &ctx->outbound[i];
        if (o->state == OTA_POSIX_OUT_FREE)
            continue;
        if (o->fd >= 0)
            ota_posix_outbound_forget(ctx, o->fd);
        if (o->state == OTA_POSIX_OUT_ORPHAN) {
            /* the process is going away or the context is: wait a little for the
             * lookup, then leave it to the resolver (never free what it writes) */
            lookup_t *l = o->req;
            const struct gaicb *list[1] = {&l->cb};
            struct timespec ts = {.tv_sec = 2, .tv_nsec = 0};
            gai_suspend(list, 1, &ts);
            reap(ctx);
            if (o->state == OTA_POSIX_OUT_ORPHAN)
                o->state = OTA_POSIX_OUT_FREE; /* leaked on purpose */
        }
    }
}

short ota_posix_outbound_events(const ota_posix_t *ctx, ota_conn_t conn, bool *resolving)
{
    for (int i = 0; i < OTA_POSIX_MAX_OUTBOUND; i++) {
        const ota_posix_outbound_t *o = &ctx->outbound[i];
        if (o->state == OTA_POSIX_OUT_FREE || o->fd != conn)
            continue;
        if (o->state == OTA_POSIX_OUT_CONNECTING)
            return POLLOUT;
        /* resolving: an unconnected socket polls as hung up, so it stays out and
         * the wait is kept short; failed: the next recv/send reports it */
        *resolving = true;
        return 0;
    }
    return POLLIN;
}
