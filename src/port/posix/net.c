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
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "ota/errors.h"
#include "ota/log_proto.h"
#include "ota/util.h"

static int to_sockaddr(const char *ip, uint16_t port, struct sockaddr_storage *ss, socklen_t *len)
{
    memset(ss, 0, sizeof *ss);
    struct sockaddr_in *v4 = (struct sockaddr_in *)ss;
    struct sockaddr_in6 *v6 = (struct sockaddr_in6 *)ss;
    if (inet_pton(AF_INET, ip, &v4->sin_addr) == 1) {
        v4->sin_family = AF_INET;
        v4->sin_port = htons(port);
        *len = sizeof *v4;
        return OTA_OK;
    }
    if (inet_pton(AF_INET6, ip, &v6->sin6_addr) == 1) {
        v6->sin6_family = AF_INET6;
        v6->sin6_port = htons(port);
        *len = sizeof *v6;
        return OTA_OK;
    }
    return OTA_ERR_INVALID_ARG;
}

/* An IPv4-mapped IPv6 address (what a dual-stack socket reports for an IPv4 peer)
 * rewritten as the plain IPv4 one, so that logs and per-address tables see one form. */
static void unmap_v4(struct sockaddr_storage *ss)
{
    static const uint8_t mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
    struct sockaddr_in6 *a6 = (struct sockaddr_in6 *)ss;
    if (ss->ss_family != AF_INET6 || memcmp(a6->sin6_addr.s6_addr, mapped, 12) != 0)
        return;
    struct sockaddr_in v4;
    memset(&v4, 0, sizeof v4);
    v4.sin_family = AF_INET;
    v4.sin_port = a6->sin6_port;
    memcpy(&v4.sin_addr, a6->sin6_addr.s6_addr + 12, 4);
    memset(ss, 0, sizeof *ss);
    memcpy(ss, &v4, sizeof v4);
}

/* An IPv4 destination for a socket of family: as is, or IPv4-mapped for a dual-stack
 * IPv6 socket. */
static void map_for(int family, struct sockaddr_storage *ss, socklen_t *len)
{
    if (family != AF_INET6 || ss->ss_family != AF_INET)
        return;
    struct sockaddr_in v4;
    memcpy(&v4, ss, sizeof v4);
    struct sockaddr_in6 *a6 = (struct sockaddr_in6 *)ss;
    memset(ss, 0, sizeof *ss);
    a6->sin6_family = AF_INET6;
    a6->sin6_port = v4.sin_port;
    a6->sin6_addr.s6_addr[10] = 0xff;
    a6->sin6_addr.s6_addr[11] = 0xff;
    memcpy(a6->sin6_addr.s6_addr + 12, &v4.sin_addr, 4);
    *len = sizeof *a6;
}

/* "::": every address, IPv6 and IPv4 on one socket (dual-stack). */
static bool any_v6(const struct sockaddr_storage *ss)
{
    const struct sockaddr_in6 *a6 = (const struct sockaddr_in6 *)ss;
    return ss->ss_family == AF_INET6 && IN6_IS_ADDR_UNSPECIFIED(&a6->sin6_addr);
}

/* A socket of type bound to addr:port; "::" is dual-stack, and falls back to
 * 0.0.0.0 on a host without IPv6 (*addr is then "0.0.0.0"). -1 with errno set. */
static int bound_socket(const char **addr, int type, uint16_t port)
{
    struct sockaddr_storage ss;
    socklen_t len;
    if (to_sockaddr(*addr, port, &ss, &len) != 0) {
        errno = EINVAL;
        return -1;
    }
    int fd = socket(ss.ss_family, type | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd >= 0) {
        int one = 1, zero = 0;
        if (type == SOCK_STREAM)
            setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
        if (any_v6(&ss))
            setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &zero, sizeof zero);
        if (bind(fd, (struct sockaddr *)&ss, len) == 0)
            return fd;
        int e = errno;
        close(fd);
        errno = e;
    }
    if (any_v6(&ss) && (errno == EAFNOSUPPORT || errno == EADDRNOTAVAIL)) {
        *addr = "0.0.0.0"; /* no IPv6 on this host */
        return bound_socket(addr, type, port);
    }
    return -1;
}

/* A non-blocking listening socket on addr:port; OTA_ERR_INVALID_ARG (not an address)
 * or OTA_ERR_IO with err set. */
static int listen_on(const char *addr, uint16_t port, char *bound, size_t bound_cap, char *err,
                     size_t err_cap)
{
    struct sockaddr_storage ss;
    socklen_t len;
    if (to_sockaddr(addr, port, &ss, &len) != 0) {
        snprintf(err, err_cap, "'%s' is not an IPv4 or IPv6 address", addr);
        return OTA_ERR_INVALID_ARG;
    }
    int fd = bound_socket(&addr, SOCK_STREAM, port);
    if (fd < 0 || listen(fd, 16) != 0) {
        int e = errno;
        if (fd >= 0)
            close(fd);
        snprintf(err, err_cap, "cannot listen on %s port %u: %s%s", addr, (unsigned)port,
                 strerror(e),
                 e == EADDRINUSE ? " (another node or program uses this port: pick another "
                                   "with --port)"
                                 : "");
        return OTA_ERR_IO;
    }
    snprintf(bound, bound_cap, strchr(addr, ':') != NULL ? "[%s]:%u" : "%s:%u", addr,
             (unsigned)port);
    return fd;
}

int ota_posix_net_listen(ota_posix_t *ctx, const char *addr, uint16_t port, char *err,
                         size_t err_cap)
{
    int fd = listen_on(addr, port, ctx->bound, sizeof ctx->bound, err, err_cap);
    if (fd < 0)
        return fd;
    ctx->listen_fd = fd;
    return OTA_OK;
}

void ota_posix_net_track(ota_posix_t *ctx, int fd, bool add)
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


int ota_posix_udp_open(ota_posix_t *ctx, const char *addr, uint16_t port, char *err,
                       size_t err_cap)
{
    struct sockaddr_storage ss;
    socklen_t len;
    if (to_sockaddr(addr, port, &ss, &len) != 0) {
        snprintf(err, err_cap, "'%s' is not an IPv4 or IPv6 address", addr);
        return OTA_ERR_INVALID_ARG;
    }
    int fd = bound_socket(&addr, SOCK_DGRAM, port);
    if (fd < 0) {
        snprintf(err, err_cap, "cannot listen for ArduinoOTA on %s UDP port %u: %s", addr,
                 (unsigned)port, strerror(errno));
        return OTA_ERR_IO;
    }
    ctx->udp_fd = fd;
    ctx->udp_family = strchr(addr, ':') != NULL ? AF_INET6 : AF_INET;
    return OTA_OK;
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
    unmap_v4(&ss);
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
    map_for(ctx->udp_family, &ss, &sl);
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
    ota_posix_net_track(ctx, fd, true);
    *conn = fd;
    return OTA_OK;
}

/* ---------------- the log viewers' listener ----------------
 * Framing: docs/protocol.md, "Log viewer stream". Without a verifier a viewer gets
 * the hello line, then the log. With one it first gets a challenge line, answers
 * with one line (client nonce + ClientProof), and only after the check gets the
 * ServerSignature, the hello line and the log. Everything is non-blocking: a viewer
 * that does not keep up is dropped, one that does not answer in time is closed.
 *
 * The slots with a password (OpenSSH MaxStartups-like): before the auth nobody can be
 * told from the owner, so an attacker must not be able to keep evicting the owner's
 * pending connection (PBKDF2 + answer take the owner tens of ms). Hence: an address
 * holds at most OTA_POSIX_LOG_PENDING_PER_ADDR pending slots (its newer connection
 * replaces its older one); a newcomer to full slots evicts the pending viewer of the
 * address with the most pending slots, then the most connections lately (a flood),
 * oldest first, and only when its own address does not rank above that one, else it is
 * turned away; an authenticated viewer (the owner) is never evicted for a pending one.
 * When all OTA_POSIX_MAX_VIEWERS are authenticated a newcomer waits in the spare slot,
 * and once it authenticates it evicts the oldest authenticated viewer. */

/* OTA_LOG_AUTH_LABEL: an impostor log server cannot relay the OTA port's challenge to
 * a viewer and use the answer to upload firmware. */
_Static_assert(sizeof OTA_LOG_AUTH_LABEL - 1 == OTA_SALTED_LABEL_LEN, "label length");
#define LOG_BACKOFF_FREE 3u       /* failed auths in a row before the back-off */
#define LOG_BACKOFF_BASE_MS 1000u /* then 1 s, doubling per failure ... */
#define LOG_BACKOFF_MAX_MS 30000u /* ... up to 30 s */
#define LOG_GUESSES_PER_MIN 30u   /* wrong answers from all sources together per minute */
#define LOG_REPORT_MS 10000u      /* drops/refusals: one log line per 10 s at most */
#define LOG_ACCEPTS_PER_POLL 64   /* a flood of connections cannot hold the main loop */
#define LOG_BACKLOG 128           /* a flood does not fill the accept queue between two
                                   * polls, so the owner's SYN is not dropped (a 1 s
                                   * retransmission) */

static const char log_evicted[] = OTA_LOG_EVICTED "\n";
static const char log_busy_line[] = OTA_LOG_BUSY "\n";

int ota_posix_log_listen(ota_posix_t *ctx, const char *addr, uint16_t port, const char *hello,
                         const char *verifier, char *err, size_t err_cap)
{
    ota_verifier_t v;
    bool auth = verifier != NULL && verifier[0] != '\0';
    if (auth && ota_verifier_parse(verifier, &v) != 0) {
        snprintf(err, err_cap, "the verifier is not one 'ota hash-password' prints");
        return OTA_ERR_INVALID_ARG;
    }
    char bound[80];
    int fd = listen_on(addr, port, bound, sizeof bound, err, err_cap);
    if (fd < 0) {
        ota_wipe(&v, sizeof v);
        return fd;
    }
    (void)listen(fd, LOG_BACKLOG); /* deeper than the OTA port's */
    for (int i = 0; i < OTA_POSIX_VIEWER_SLOTS; i++) /* the spare one too */
        ctx->viewers[i] = -1;
    ctx->log_fd = fd;
    snprintf(ctx->log_hello, sizeof ctx->log_hello, "%s\n", hello);
    ctx->log_auth = auth;
    if (auth)
        ctx->log_verifier = v;
    ota_wipe(&v, sizeof v);
    return OTA_OK;
}

/* All of s now, or false (a fresh or live socket whose buffer is full). */
static bool send_now(int fd, const char *s, size_t n)
{
    return send(fd, s, n, MSG_NOSIGNAL | MSG_DONTWAIT) == (ssize_t)n;
}

static void viewer_close(ota_posix_t *ctx, int i)
{
    if (ctx->viewers[i] >= 0)
        close(ctx->viewers[i]);
    ctx->viewers[i] = -1;
    ota_wipe(&ctx->viewer[i], sizeof ctx->viewer[i]); /* state FREE */
}

static ota_posix_log_source_t *source_find(ota_posix_t *ctx, uint8_t family,
                                           const uint8_t *addr);

static bool source_in_backoff(const ota_posix_log_source_t *s, uint32_t now)
{
    return s != NULL && s->backoff_ms > 0 &&
           ota_elapsed_ms(now, s->backoff_start_ms) < s->backoff_ms;
}

/* Does viewer i wait before its challenge? Its own address's back-off (another
 * address's wrong answers never delay it), or the ceiling for all sources. */
static bool log_backoff_active(ota_posix_t *ctx, int i, uint32_t now)
{
    if (ota_elapsed_ms(now, ctx->log_window_ms) >= 60000u) {
        ctx->log_window_ms = now;
        ctx->log_guesses = 0;
    }
    if (ctx->log_guesses >= LOG_GUESSES_PER_MIN)
        return true;
    return source_in_backoff(source_find(ctx, ctx->viewer[i].family, ctx->viewer[i].addr),
                             now);
}

static void log_auth_message(const ota_posix_t *ctx, const uint8_t *snonce,
                             const uint8_t *cnonce, uint8_t *msg)
{
    ota_salted_auth_message(snonce, cnonce, ctx->log_verifier.salt,
                            ctx->log_verifier.iterations, msg);
    memcpy(msg, OTA_LOG_AUTH_LABEL, OTA_SALTED_LABEL_LEN);
}

/* Send the challenge line: "# ota-log-auth v1 salt=<hex> iterations=<n> nonce=<hex>". */
static void viewer_challenge(ota_posix_t *ctx, int i, uint32_t now)
{
    ota_posix_viewer_t *v = &ctx->viewer[i];
    char salt[2 * OTA_SALT_LEN + 1], nonce[2 * OTA_SALTED_NONCE_LEN + 1], line[200];
    if (ota_posix_random(NULL, v->nonce, sizeof v->nonce) != 0) {
        viewer_close(ctx, i);
        return;
    }
    ota_hex_encode(ctx->log_verifier.salt, OTA_SALT_LEN, salt);
    salt[sizeof salt - 1] = '\0';
    ota_hex_encode(v->nonce, OTA_SALTED_NONCE_LEN, nonce);
    nonce[sizeof nonce - 1] = '\0';
    int n = snprintf(line, sizeof line, OTA_LOG_AUTH_CHALLENGE "salt=%s iterations=%lu nonce=%s\n",
                     salt, (unsigned long)ctx->log_verifier.iterations, nonce);
    if (!send_now(ctx->viewers[i], line, (size_t)n)) {
        viewer_close(ctx, i);
        return;
    }
    v->state = OTA_POSIX_VIEWER_AUTH;
    v->since_ms = now;
}

/* A wrong answer from viewer i (call before closing it: it names the source). */
static void log_auth_failed(ota_posix_t *ctx, int i, uint32_t now)
{
    ctx->log_refused++;
    if (ota_elapsed_ms(now, ctx->log_window_ms) >= 60000u) {
        ctx->log_window_ms = now;
        ctx->log_guesses = 0;
    }
    ctx->log_guesses++;
    ota_posix_log_source_t *s = source_find(ctx, ctx->viewer[i].family, ctx->viewer[i].addr);
    if (s == NULL)
        return; /* its entry was reused: the ceiling for all sources still counts it */
    s->failures++;
    uint32_t delay =
        ota_backoff_ms(s->failures, LOG_BACKOFF_FREE, LOG_BACKOFF_BASE_MS, LOG_BACKOFF_MAX_MS);
    if (delay == 0)
        return;
    s->backoff_start_ms = now;
    s->backoff_ms = delay;
    ota_posix_logf(ctx, OTA_LOG_WARN, "logger", "%lu failed log viewer authentications in a "
                   "row from this address; its next challenge waits %lu ms",
                   (unsigned long)s->failures, (unsigned long)delay);
}

/* A viewer that is live within the first OTA_POSIX_LOG_BACKLOG_MS of the boot gets the
 * lines logged so far, right after its hello (false: it could not take them). */
static bool send_backlog(ota_posix_t *ctx, int fd, uint32_t now)
{
    if (ctx->log_backlog_len == 0 ||
        ota_elapsed_ms(now, ctx->log_boot_ms) >= OTA_POSIX_LOG_BACKLOG_MS)
        return true;
    return send_now(fd, ctx->log_backlog, ctx->log_backlog_len);
}

/* The viewer's answer line is complete: "auth <64 hex cnonce> <64 hex proof>". */
static void viewer_check(ota_posix_t *ctx, int i, uint32_t now)
{
    ota_posix_viewer_t *v = &ctx->viewer[i];
    const char *rx = v->rx;
    size_t len = strcspn(rx, "\r\n");
    uint8_t cnonce[OTA_SALTED_NONCE_LEN], proof[OTA_SALTED_KEY_LEN], sig[OTA_SALTED_KEY_LEN];
    uint8_t msg[OTA_SALTED_AUTH_MESSAGE_LEN];
    const size_t al = sizeof OTA_LOG_AUTH_ANSWER - 1;
    bool ok = len == al + 2 * OTA_SALTED_NONCE_LEN + 1 + 2 * OTA_SALTED_KEY_LEN &&
              memcmp(rx, OTA_LOG_AUTH_ANSWER, al) == 0 &&
              rx[al + 2 * OTA_SALTED_NONCE_LEN] == ' ' &&
              ota_hex_decode(rx + al, OTA_SALTED_NONCE_LEN, cnonce) == 0 &&
              ota_hex_decode(rx + al + 1 + 2 * OTA_SALTED_NONCE_LEN, OTA_SALTED_KEY_LEN, proof) ==
                  0;
    if (ok) {
        log_auth_message(ctx, v->nonce, cnonce, msg);
        ok = ota_salted_verify(&ota_posix_crypto, &ctx->log_verifier, msg, proof, sig) == 0;
    }
    if (!ok) {
        static const char failed[] = OTA_LOG_AUTH_FAILED "\n";
        (void)send_now(ctx->viewers[i], failed, sizeof failed - 1);
        log_auth_failed(ctx, i, now);
        viewer_close(ctx, i);
        return;
    }
    const size_t ol = sizeof OTA_LOG_AUTH_OK - 1;
    char line[sizeof OTA_LOG_AUTH_OK - 1 + 2 * OTA_SALTED_KEY_LEN + 1 + sizeof ctx->log_hello];
    memcpy(line, OTA_LOG_AUTH_OK, ol);
    ota_hex_encode(sig, sizeof sig, line + ol);
    size_t n = ol + 2 * sizeof sig;
    line[n++] = '\n';
    size_t hl = strlen(ctx->log_hello);
    memcpy(line + n, ctx->log_hello, hl);
    n += hl;
    ota_wipe(sig, sizeof sig);
    ota_wipe(msg, sizeof msg);
    if (!send_now(ctx->viewers[i], line, n) || !send_backlog(ctx, ctx->viewers[i], now)) {
        viewer_close(ctx, i);
        return;
    }
    int live = 0, oldest = -1; /* all authenticated already: this one takes the oldest's */
    for (int j = 0; j < OTA_POSIX_VIEWER_SLOTS; j++)
        if (j != i && ctx->viewers[j] >= 0 && ctx->viewer[j].state == OTA_POSIX_VIEWER_LIVE) {
            live++;
            if (oldest < 0 || (int32_t)(ctx->viewer[j].seq - ctx->viewer[oldest].seq) < 0)
                oldest = j;
        }
    if (live >= OTA_POSIX_MAX_VIEWERS) {
        (void)send_now(ctx->viewers[oldest], log_evicted, sizeof log_evicted - 1);
        viewer_close(ctx, oldest);
    }
    memset(v->rx, 0, sizeof v->rx);
    v->rx_len = 0;
    v->state = OTA_POSIX_VIEWER_LIVE;
    ota_posix_log_source_t *s = source_find(ctx, v->family, v->addr);
    if (s != NULL)
        s->failures = s->backoff_ms = 0;
    ota_posix_logf(ctx, OTA_LOG_INFO, "logger", "a log viewer proved the password");
}

/* A slot for a new viewer without a password (all viewers are live): a free one, else
 * the oldest viewer is evicted (and told so). */
static int viewer_slot_open(ota_posix_t *ctx)
{
    int oldest = -1;
    for (int i = 0; i < OTA_POSIX_MAX_VIEWERS; i++) {
        if (ctx->viewers[i] < 0)
            return i;
        if (oldest < 0 || (int32_t)(ctx->viewer[i].seq - ctx->viewer[oldest].seq) < 0)
            oldest = i;
    }
    (void)send_now(ctx->viewers[oldest], log_evicted, sizeof log_evicted - 1);
    viewer_close(ctx, oldest);
    return oldest;
}

/* The source address of an accepted socket (an IPv4-mapped IPv6 one as IPv4). */
static void peer_address(const struct sockaddr_storage *ss, uint8_t *family, uint8_t *addr)
{
    static const uint8_t mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
    memset(addr, 0, 16);
    *family = 4;
    if (ss->ss_family == AF_INET) {
        memcpy(addr, &((const struct sockaddr_in *)ss)->sin_addr, 4);
    } else if (ss->ss_family == AF_INET6) {
        const uint8_t *a6 = ((const struct sockaddr_in6 *)ss)->sin6_addr.s6_addr;
        if (memcmp(a6, mapped, sizeof mapped) == 0) {
            memcpy(addr, a6 + 12, 4);
        } else {
            *family = 6;
            memcpy(addr, a6, 16);
        }
    }
}

static bool same_source(uint8_t fa, const uint8_t *a, uint8_t fb, const uint8_t *b)
{
    return fa == fb && memcmp(a, b, 16) == 0;
}

/* A source's score, decayed to now: halved per whole second since it was last. */
static uint32_t source_decay(ota_posix_log_source_t *s, uint32_t now)
{
    uint32_t halvings = ota_elapsed_ms(now, s->at_ms) / 1000u;
    if (halvings >= 32u) {
        s->score = 0;
        s->at_ms = now;
    } else {
        s->score >>= halvings;
        s->at_ms += halvings * 1000u;
    }
    return s->score;
}

static ota_posix_log_source_t *source_find(ota_posix_t *ctx, uint8_t family,
                                           const uint8_t *addr)
{
    for (int i = 0; i < OTA_POSIX_LOG_SOURCES; i++)
        if (same_source(ctx->log_sources[i].family, ctx->log_sources[i].addr, family, addr))
            return &ctx->log_sources[i];
    return NULL;
}

/* Count one connection from the address (a new address takes the quietest entry). */
static void source_count(ota_posix_t *ctx, uint8_t family, const uint8_t *addr, uint32_t now)
{
    ota_posix_log_source_t *s = source_find(ctx, family, addr);
    if (s == NULL) {
        for (int i = 0; i < OTA_POSIX_LOG_SOURCES; i++) {
            ota_posix_log_source_t *e = &ctx->log_sources[i];
            if (e->family == 0) {
                s = e;
                break;
            }
            /* an address in back-off keeps its entry (else cycling through new
             * addresses would wipe it): it ranks as busy as can be */
            uint32_t de = source_in_backoff(e, now) ? UINT32_MAX : source_decay(e, now);
            uint32_t ds = s == NULL ? 0 : source_in_backoff(s, now) ? UINT32_MAX
                                                                    : source_decay(s, now);
            if (s == NULL || de < ds)
                s = e;
        }
        memset(s, 0, sizeof *s);
        s->family = family;
        memcpy(s->addr, addr, 16);
        s->at_ms = now;
    }
    if (source_decay(s, now) <= UINT32_MAX - 16u)
        s->score += 16u;
}

/* How hard the address connects lately: 0 for at most one connection (the owner's
 * `ota logs`), then one more per doubling. */
static unsigned source_level(ota_posix_t *ctx, uint8_t family, const uint8_t *addr,
                             uint32_t now)
{
    ota_posix_log_source_t *s = source_find(ctx, family, addr);
    uint32_t n = s != NULL ? source_decay(s, now) / 16u : 0u;
    unsigned level = 0;
    for (; n >= 2u; n >>= 1)
        level++;
    return level;
}

static bool viewer_pending(const ota_posix_t *ctx, int i)
{
    return ctx->viewers[i] >= 0 && ctx->viewer[i].state != OTA_POSIX_VIEWER_LIVE;
}

static unsigned pending_from(const ota_posix_t *ctx, uint8_t family, const uint8_t *addr)
{
    unsigned n = 0;
    for (int i = 0; i < OTA_POSIX_VIEWER_SLOTS; i++)
        n += viewer_pending(ctx, i) &&
             same_source(ctx->viewer[i].family, ctx->viewer[i].addr, family, addr);
    return n;
}

/* A slot for a new viewer from family/addr with a password (see the top of this part),
 * or -1: turn it away. */
static int viewer_slot_auth(ota_posix_t *ctx, uint8_t family, const uint8_t *addr,
                            uint32_t now)
{
    int free_slot = -1, own = -1;
    unsigned used = 0, live = 0, own_n = 0;
    for (int i = 0; i < OTA_POSIX_VIEWER_SLOTS; i++) {
        if (ctx->viewers[i] < 0) {
            if (free_slot < 0)
                free_slot = i;
            continue;
        }
        used++;
        if (ctx->viewer[i].state == OTA_POSIX_VIEWER_LIVE) {
            live++;
        } else if (same_source(ctx->viewer[i].family, ctx->viewer[i].addr, family, addr)) {
            own_n++;
            if (own < 0 || (int32_t)(ctx->viewer[i].seq - ctx->viewer[own].seq) < 0)
                own = i;
        }
    }
    if (own_n >= OTA_POSIX_LOG_PENDING_PER_ADDR) { /* its newer connection replaces it */
        viewer_close(ctx, own);
        return own;
    }
    if (used < OTA_POSIX_MAX_VIEWERS || (live == OTA_POSIX_MAX_VIEWERS && used == live))
        return free_slot; /* the spare slot only while every other one is live */
    int victim = -1;
    unsigned victim_n = 0, victim_level = 0;
    for (int i = 0; i < OTA_POSIX_VIEWER_SLOTS; i++) {
        if (!viewer_pending(ctx, i))
            continue;
        const ota_posix_viewer_t *v = &ctx->viewer[i];
        unsigned n = pending_from(ctx, v->family, v->addr);
        unsigned level = source_level(ctx, v->family, v->addr, now);
        if (victim < 0 || n > victim_n ||
            (n == victim_n && (level > victim_level ||
                               (level == victim_level &&
                                (int32_t)(v->seq - ctx->viewer[victim].seq) < 0)))) {
            victim = i;
            victim_n = n;
            victim_level = level;
        }
    }
    /* the newcomer would hold own_n + 1: it may not take the place of an address that
     * holds fewer, or as many but connects less (the owner among flooders) */
    if (victim < 0 || victim_n < own_n + 1u ||
        (victim_n == own_n + 1u && victim_level < source_level(ctx, family, addr, now)))
        return -1;
    viewer_close(ctx, victim);
    return victim;
}

/* The rate-limited report of dropped and refused viewers. */
static void log_report(ota_posix_t *ctx, uint32_t now)
{
    if (ctx->log_dropped == 0 && ctx->log_refused == 0 && ctx->log_busy == 0)
        return;
    if (ctx->log_reported && ota_elapsed_ms(now, ctx->log_report_ms) < LOG_REPORT_MS)
        return;
    uint32_t dropped = ctx->log_dropped, refused = ctx->log_refused, busy = ctx->log_busy;
    ctx->log_dropped = ctx->log_refused = ctx->log_busy = 0;
    ctx->log_reported = true;
    ctx->log_report_ms = now;
    if (dropped)
        ota_posix_logf(ctx, OTA_LOG_WARN, "logger", "dropped %lu log viewer%s that did not keep "
                       "up (lines came faster than %s read them)", (unsigned long)dropped,
                       dropped == 1 ? "" : "s", dropped == 1 ? "it" : "they");
    if (refused)
        ota_posix_logf(ctx, OTA_LOG_WARN, "logger", "refused %lu log viewer%s (wrong password, "
                       "or no answer within %u s)", (unsigned long)refused,
                       refused == 1 ? "" : "s", OTA_POSIX_LOG_AUTH_MS / 1000u);
    if (busy)
        ota_posix_logf(ctx, OTA_LOG_WARN, "logger", "turned away %lu log viewer%s: every slot "
                       "was taken (by addresses that connect more)", (unsigned long)busy,
                       busy == 1 ? "" : "s");
}

void ota_posix_log_poll(ota_posix_t *ctx)
{
    if (ctx->log_fd < 0)
        return;
    uint32_t now = ota_posix_now_ms();
    for (int accepted = 0; accepted < LOG_ACCEPTS_PER_POLL; accepted++) {
        struct sockaddr_storage ss;
        socklen_t sl = sizeof ss;
        int fd = accept4(ctx->log_fd, (struct sockaddr *)&ss, &sl, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0)
            break;
        uint8_t family, addr[16];
        peer_address(&ss, &family, addr);
        int i;
        if (ctx->log_auth) {
            source_count(ctx, family, addr, now);
            i = viewer_slot_auth(ctx, family, addr, now);
        } else {
            i = viewer_slot_open(ctx);
        }
        if (i < 0) {
            (void)send_now(fd, log_busy_line, sizeof log_busy_line - 1);
            close(fd);
            ctx->log_busy++;
            continue;
        }
        int sndbuf = 16 * 1024; /* how far a viewer may fall behind (the kernel doubles
                                 * it) before it is dropped */
        setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &sndbuf, sizeof sndbuf);
        ctx->viewers[i] = fd;
        ctx->viewer[i].family = family;
        memcpy(ctx->viewer[i].addr, addr, sizeof addr);
        ctx->viewer[i].seq = ctx->log_seq++;
        ctx->viewer[i].since_ms = now;
        if (!ctx->log_auth) {
            ctx->viewer[i].state = OTA_POSIX_VIEWER_LIVE;
            if (!send_now(fd, ctx->log_hello, strlen(ctx->log_hello)) ||
                !send_backlog(ctx, fd, now))
                viewer_close(ctx, i);
        } else if (log_backoff_active(ctx, i, now)) {
            ctx->viewer[i].state = OTA_POSIX_VIEWER_WAIT;
        } else {
            viewer_challenge(ctx, i, now);
        }
    }
    for (int i = 0; i < OTA_POSIX_VIEWER_SLOTS; i++) {
        if (ctx->viewers[i] < 0)
            continue;
        ota_posix_viewer_t *v = &ctx->viewer[i];
        if (v->state == OTA_POSIX_VIEWER_WAIT && !log_backoff_active(ctx, i, now))
            viewer_challenge(ctx, i, now);
        if (ctx->viewers[i] < 0)
            continue;
        char buf[256];
        ssize_t n;
        do {
            size_t room = v->state == OTA_POSIX_VIEWER_AUTH ? sizeof v->rx - 1u - v->rx_len
                                                            : sizeof buf;
            n = recv(ctx->viewers[i], v->state == OTA_POSIX_VIEWER_AUTH ? v->rx + v->rx_len : buf,
                     room, MSG_DONTWAIT);
            if (n > 0 && v->state == OTA_POSIX_VIEWER_AUTH)
                v->rx_len = (uint8_t)(v->rx_len + n);
        } while (n > 0 && v->state == OTA_POSIX_VIEWER_LIVE); /* a live viewer: discard */
        if (n == 0 || (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) ||
            (n > 0 && v->state == OTA_POSIX_VIEWER_WAIT)) {
            viewer_close(ctx, i); /* gone, or talking before its challenge */
            continue;
        }
        if (v->state != OTA_POSIX_VIEWER_AUTH)
            continue;
        v->rx[v->rx_len] = '\0';
        if (memchr(v->rx, '\n', v->rx_len) != NULL) {
            viewer_check(ctx, i, now);
        } else if (v->rx_len >= sizeof v->rx - 1u) {
            log_auth_failed(ctx, i, now); /* no answer of ours is that long */
            viewer_close(ctx, i);
        } else if (ota_elapsed_ms(now, v->since_ms) >= OTA_POSIX_LOG_AUTH_MS) {
            viewer_close(ctx, i);
            ctx->log_refused++;
        }
    }
    log_report(ctx, now);
}

size_t ota_posix_log_pollfds(const ota_posix_t *ctx, struct pollfd *fds, size_t max)
{
    size_t n = 0; /* the pending ones first: their answers are what matters */
    for (int live = 0; live < 2; live++)
        for (int i = 0; i < OTA_POSIX_VIEWER_SLOTS && n < max; i++)
            if (ctx->log_fd >= 0 && ctx->viewers[i] >= 0 &&
                (ctx->viewer[i].state == OTA_POSIX_VIEWER_LIVE) == (live == 1))
                fds[n++] = (struct pollfd){.fd = ctx->viewers[i], .events = POLLIN};
    return n;
}

/* Called by log.c for every line of ctx (with its newline). Never blocks: a viewer
 * whose socket buffer cannot take the whole line is dropped (and reported by the next
 * ota_posix_log_poll), instead of silently losing lines. */
void ota_posix_log_broadcast(ota_posix_t *ctx, const char *line, size_t len)
{
    if (!ctx->log_backlog_done) {
        if (ota_elapsed_ms(ota_posix_now_ms(), ctx->log_boot_ms) >= OTA_POSIX_LOG_BACKLOG_MS ||
            len > sizeof ctx->log_backlog - ctx->log_backlog_len) {
            ctx->log_backlog_done = true;
        } else {
            memcpy(ctx->log_backlog + ctx->log_backlog_len, line, len);
            ctx->log_backlog_len += len;
        }
    }
    if (ctx->log_fd < 0)
        return;
    for (int i = 0; i < OTA_POSIX_VIEWER_SLOTS; i++) {
        if (ctx->viewers[i] < 0 || ctx->viewer[i].state != OTA_POSIX_VIEWER_LIVE)
            continue;
        ssize_t n = send(ctx->viewers[i], line, len, MSG_NOSIGNAL | MSG_DONTWAIT);
        if (n == (ssize_t)len)
            continue;
        if (n >= 0 || errno == EAGAIN || errno == EWOULDBLOCK)
            ctx->log_dropped++; /* it did not keep up */
        viewer_close(ctx, i);   /* or it went away */
    }
}

void ota_posix_log_close(ota_posix_t *ctx)
{
    if (ctx->log_fd >= 0) /* the spare slot is only set (to -1) once the log is on */
        for (int i = 0; i < OTA_POSIX_VIEWER_SLOTS; i++)
            viewer_close(ctx, i);
    if (ctx->log_fd >= 0)
        close(ctx->log_fd);
    ctx->log_fd = -1;
    ota_wipe(&ctx->log_verifier, sizeof ctx->log_verifier);
    ctx->log_auth = false;
}

int ota_posix_net_accept(void *user, ota_conn_t *conn, char *peer, size_t peer_len)
{
    ota_posix_t *ctx = user;
    ctx->accept_calls++;
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
    unmap_v4(&ss); /* an IPv4 peer of the dual-stack listener reads as IPv4 */
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
    ota_posix_net_track(ctx, fd, true);
    *conn = fd;
    return OTA_OK;
}

int ota_posix_net_recv(void *user, ota_conn_t conn, uint8_t *buf, size_t len)
{
    int st = ota_posix_outbound_step(user, conn); /* a connect_host still under way */
    if (st != OTA_OK)
        return st;
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
    int st = ota_posix_outbound_step(user, conn);
    if (st != OTA_OK)
        return st;
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
    ota_posix_outbound_forget(ctx, conn);
    ota_posix_net_track(ctx, conn, false);
    close(conn);
}
