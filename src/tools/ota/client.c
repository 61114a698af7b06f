/*
 * client.c - one upload over the native OTA protocol (see client.h). Blocking
 * socket calls bounded by poll() timeouts; the data phase keeps bytes in flight
 * and counts the device's chunk acks as they come, instead of waiting for each.
 */
#include "client.h"

#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <arpa/inet.h>
#include <unistd.h>

#include <mbedtls/md5.h>

#include "gzip.h"
#include "ota/auth.h"
#include "ota/protocol.h"
#include "ota/util.h"
#include "ota_posix.h"

typedef struct session {
    int fd;
    int timeout_ms;
    ota_client_result_t *res;
    const ota_client_options_t *o;
    ota_phase_t noted; /* the phase whose silence was reported (on_wait), or -1 */
} session_t;

static void set_phase(session_t *s, ota_phase_t phase)
{
    s->res->phase = phase;
    if (s->o->phase_out != NULL)
        *s->o->phase_out = (sig_atomic_t)phase;
}

/* poll() that tells o->on_wait once per phase when the device has been silent for
 * wait_note_s seconds, then waits out the rest of timeout_ms. */
static int poll_noting(session_t *s, struct pollfd *p, int timeout_ms)
{
    const ota_client_options_t *o = s->o;
    int note_ms = (int)(o->wait_note_s ? o->wait_note_s : 3) * 1000;
    /* the data phase with every byte sent is, to a person, the wait for the verdict */
    const ota_client_result_t *r = s->res;
    ota_phase_t shown = r->phase == OTA_PHASE_UPLOAD && r->wire_size > 0 &&
                                r->sent >= r->wire_size
                            ? OTA_PHASE_VERIFY
                            : r->phase;
    if (o->on_wait == NULL || s->noted == shown || timeout_ms <= note_ms)
        return poll(p, 1, timeout_ms);
    int n = poll(p, 1, note_ms);
    if (n != 0)
        return n;
    s->noted = shown;
    o->on_wait(o->wait_arg, shown, (unsigned)(timeout_ms / 1000));
    return poll(p, 1, timeout_ms - note_ms);
}

/* ------------------------------------------------------------ socket I/O */

static int fail(session_t *s, ota_failure_t f, int exit_code)
{
    s->res->failure = f;
    return exit_code;
}

/* Wait for events; 0 on ready, -1 on timeout. */
static int wait_for(session_t *s, short events)
{
    struct pollfd p = {.fd = s->fd, .events = events};
    for (;;) {
        int n = poll_noting(s, &p, s->timeout_ms);
        if (n > 0)
            return 0;
        if (n == 0)
            return -1;
        if (errno != EINTR)
            return -1;
    }
}

/* Read exactly n bytes. 0, or an exit code with the failure set. */
static int read_exact(session_t *s, uint8_t *buf, size_t n)
{
    size_t got = 0;
    while (got < n) {
        if (wait_for(s, POLLIN) != 0)
            return fail(s, OTA_FAIL_TIMEOUT, OTA_EXIT_NETWORK);
        ssize_t r = recv(s->fd, buf + got, n - got, 0);
        if (r > 0) {
            got += (size_t)r;
            continue;
        }
        if (r < 0 && (errno == EINTR || errno == EAGAIN))
            continue;
        if (r < 0)
            snprintf(s->res->detail, sizeof s->res->detail, "%s", strerror(errno));
        return fail(s, OTA_FAIL_CLOSED, OTA_EXIT_NETWORK);
    }
    return 0;
}

static int write_all(session_t *s, const void *data, size_t n)
{
    const uint8_t *p = data;
    while (n > 0) {
        if (wait_for(s, POLLOUT) != 0)
            return fail(s, OTA_FAIL_TIMEOUT, OTA_EXIT_NETWORK);
        ssize_t w = send(s->fd, p, n, MSG_NOSIGNAL);
        if (w > 0) {
            p += w;
            n -= (size_t)w;
            continue;
        }
        if (w < 0 && (errno == EINTR || errno == EAGAIN))
            continue;
        if (w < 0)
            snprintf(s->res->detail, sizeof s->res->detail, "%s", strerror(errno));
        return fail(s, OTA_FAIL_CLOSED, OTA_EXIT_NETWORK);
    }
    return 0;
}

/* A response byte that is not the one expected: classify it. */
static int unexpected(session_t *s, uint8_t code)
{
    s->res->device_code = code;
    if (code == OTA_RESP_ERROR_AUTH_INVALID)
        return fail(s, OTA_FAIL_DEVICE, OTA_EXIT_AUTH);
    if (OTA_RESP_IS_ERROR(code))
        return fail(s, OTA_FAIL_DEVICE, OTA_EXIT_DEVICE);
    return fail(s, OTA_FAIL_UNEXPECTED, OTA_EXIT_DEVICE);
}

static int expect_code(session_t *s, uint8_t want)
{
    uint8_t b;
    int rc = read_exact(s, &b, 1);
    if (rc)
        return rc;
    return b == want ? 0 : unexpected(s, b);
}

/* ------------------------------------------------------------ connect */

static int connect_to(session_t *s, const ota_client_options_t *o)
{
    ota_client_result_t *res = s->res;
    set_phase(s, OTA_PHASE_RESOLVE);
    char port[8];
    snprintf(port, sizeof port, "%u", (unsigned)o->port);
    struct addrinfo hints, *ai = NULL;
    memset(&hints, 0, sizeof hints);
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    int g = getaddrinfo(o->host, port, &hints, &ai);
    if (g != 0) {
        snprintf(res->detail, sizeof res->detail, "%s", gai_strerror(g));
        return fail(s, OTA_FAIL_RESOLVE, OTA_EXIT_NETWORK);
    }
    set_phase(s, OTA_PHASE_CONNECT);
    ota_failure_t last = OTA_FAIL_UNREACHABLE;
    int connect_ms = (int)(o->timeout_s < 10 ? o->timeout_s : 10) * 1000;
    for (struct addrinfo *a = ai; a != NULL; a = a->ai_next) {
        int fd = socket(a->ai_family, a->ai_socktype | SOCK_CLOEXEC | SOCK_NONBLOCK,
                        a->ai_protocol);
        if (fd < 0)
            continue;
        char host[INET6_ADDRSTRLEN] = "?";
        if (a->ai_family == AF_INET)
            inet_ntop(AF_INET, &((struct sockaddr_in *)a->ai_addr)->sin_addr, host, sizeof host);
        else
            inet_ntop(AF_INET6, &((struct sockaddr_in6 *)a->ai_addr)->sin6_addr, host,
                      sizeof host);
        snprintf(res->address, sizeof res->address,
                 a->ai_family == AF_INET6 ? "[%s]:%u" : "%s:%u", host, (unsigned)o->port);
        int rc = connect(fd, a->ai_addr, a->ai_addrlen);
        if (rc != 0 && errno == EINPROGRESS) {
            struct pollfd p = {.fd = fd, .events = POLLOUT};
            int n;
            do {
                n = poll_noting(s, &p, connect_ms);
            } while (n < 0 && errno == EINTR);
            if (n == 0) {
                close(fd);
                last = OTA_FAIL_TIMEOUT;
                continue;
            }
            int err = 0;
            socklen_t el = sizeof err;
            getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &el);
            errno = err;
            rc = err == 0 ? 0 : -1;
        }
        if (rc != 0) {
            last = errno == ECONNREFUSED ? OTA_FAIL_REFUSED : OTA_FAIL_UNREACHABLE;
            snprintf(res->detail, sizeof res->detail, "%s", strerror(errno));
            close(fd);
            continue;
        }
        int one = 1;
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        s->fd = fd;
        freeaddrinfo(ai);
        return 0;
    }
    freeaddrinfo(ai);
    return fail(s, last, OTA_EXIT_NETWORK);
}

/* ------------------------------------------------------------ auth */

/* Bytes that follow the auth reply in the same write (type + size on a node that
 * announced the late digest: docs/protocol.md#native-late-md5), or none. */
typedef struct after_auth {
    uint8_t bytes[8];
    size_t len;
    bool sent;
} after_auth_t;

/* Write reply, with the pipelined bytes behind it when there are some. */
static int write_reply(session_t *s, const void *reply, size_t len, after_auth_t *aa)
{
    if (aa == NULL || aa->len == 0)
        return write_all(s, reply, len);
    uint8_t buf[2 * OTA_SHA256_HEX_LEN + sizeof aa->bytes];
    memcpy(buf, reply, len);
    memcpy(buf + len, aa->bytes, aa->len);
    int rc = write_all(s, buf, len + aa->len);
    ota_wipe(buf, sizeof buf);
    aa->sent = rc == 0;
    return rc;
}

static int auth_salted(session_t *s, const ota_client_options_t *o, after_auth_t *aa)
{
    uint8_t ch[OTA_SALT_LEN + 4 + OTA_SALTED_NONCE_LEN];
    int rc = read_exact(s, ch, sizeof ch);
    if (rc)
        return rc;
    const uint8_t *salt = ch, *snonce = ch + OTA_SALT_LEN + 4;
    uint32_t iterations = ota_be32_get(ch + OTA_SALT_LEN);
    memcpy(s->res->salt, salt, OTA_SALT_LEN);
    s->res->salt_changed =
        o->known_line != 0 && o->known_has_salt && memcmp(salt, o->known_salt, OTA_SALT_LEN) != 0;
    s->res->iterations = iterations;
    if (iterations < OTA_SALTED_MIN_ITERATIONS || iterations > 10000000u) {
        s->res->device_code = OTA_RESP_REQUEST_AUTH_SALTED;
        return fail(s, OTA_FAIL_UNEXPECTED, OTA_EXIT_AUTH);
    }
    /* a known node that now derives its key with fewer iterations: the proof would be
     * cheaper to crack offline; a real node only ever raises them (a new salt alone
     * is a changed password, accepted when the signature verifies) */
    if (o->known_line != 0 && o->known_iterations != 0 && iterations < o->known_iterations)
        return fail(s, OTA_FAIL_ITERATIONS, OTA_EXIT_AUTH);
    uint8_t sp[OTA_SALTED_KEY_LEN], cnonce[OTA_SALTED_NONCE_LEN];
    uint8_t msg[OTA_SALTED_AUTH_MESSAGE_LEN], reply[OTA_SALTED_REPLY_LEN];
    uint8_t want_sig[OTA_SALTED_KEY_LEN], sig[OTA_SALTED_KEY_LEN];
    if (ota_posix_pbkdf2_sha256(o->password, strlen(o->password), salt, OTA_SALT_LEN,
                                iterations, sp, sizeof sp) != 0 ||
        ota_posix_random(NULL, cnonce, sizeof cnonce) != 0)
        return fail(s, OTA_FAIL_INTERNAL, OTA_EXIT_INTERNAL);
    ota_salted_auth_message(snonce, cnonce, salt, iterations, msg);
    memcpy(reply, cnonce, sizeof cnonce);
    if (ota_salted_client_proof(&ota_posix_crypto, sp, msg, reply + OTA_SALTED_NONCE_LEN,
                                want_sig) != 0) {
        ota_wipe(sp, sizeof sp);
        return fail(s, OTA_FAIL_INTERNAL, OTA_EXIT_INTERNAL);
    }
    ota_wipe(sp, sizeof sp);
    /* type + size may follow the proof (not one byte of firmware: that waits for the
     * ServerSignature below) */
    rc = write_reply(s, reply, sizeof reply, aa);
    if (rc == 0)
        rc = expect_code(s, OTA_RESP_AUTH_OK);
    if (rc == 0)
        rc = read_exact(s, sig, sizeof sig);
    if (rc == 0 && !ota_ct_equal(sig, want_sig, sizeof sig))
        rc = fail(s, OTA_FAIL_IMPOSTOR, OTA_EXIT_AUTH);
    ota_wipe(want_sig, sizeof want_sig);
    return rc;
}

static int auth_challenge(session_t *s, const ota_client_options_t *o, uint8_t method,
                          after_auth_t *aa)
{
    size_t hex = ota_auth_hex_len(method);
    char nonce[OTA_SHA256_HEX_LEN], reply[2 * OTA_SHA256_HEX_LEN];
    int rc = read_exact(s, (uint8_t *)nonce, hex);
    if (rc)
        return rc;
    if (ota_auth_random_hex(&ota_posix_crypto, reply, hex) != 0 ||
        ota_auth_challenge_response(&ota_posix_crypto, method, o->password, nonce, reply,
                                    reply + hex) != 0)
        return fail(s, OTA_FAIL_INTERNAL, OTA_EXIT_INTERNAL);
    rc = write_reply(s, reply, 2 * hex, aa);
    ota_wipe(reply, sizeof reply);
    s->res->unproven = true; /* nothing the device answers can prove it knew the password */
    return rc ? rc : expect_code(s, OTA_RESP_AUTH_OK);
}

static bool method_allowed(ota_auth_mode_t mode, uint8_t method)
{
    switch (mode) {
    case OTA_AUTH_AUTO: return true;
    case OTA_AUTH_SALTED: return method == OTA_RESP_REQUEST_AUTH_SALTED;
    case OTA_AUTH_SHA256: return method == OTA_RESP_REQUEST_AUTH_SHA256;
    case OTA_AUTH_MD5: return method == OTA_RESP_REQUEST_AUTH_MD5;
    case OTA_AUTH_NONE: return false;
    }
    return false;
}

/* Only the salted exchange, with a valid server signature, will do. */
static bool salted_required(const ota_client_options_t *o)
{
    return o->auth == OTA_AUTH_SALTED || o->require_salted != OTA_SALTED_NOT_REQUIRED ||
           o->known_error[0] != '\0';
}

/* Every decision on what the device offers is taken here, before the uploader
 * answers anything: an offer it will not accept gets no response at all (a legacy
 * response could be cracked offline by whoever asked for it). */
static int authenticate(session_t *s, const ota_client_options_t *o, after_auth_t *aa)
{
    set_phase(s, OTA_PHASE_AUTH);
    uint8_t method;
    int rc = read_exact(s, &method, 1);
    if (rc)
        return rc;
    if (method != OTA_RESP_AUTH_OK && method != OTA_RESP_REQUEST_AUTH_SALTED &&
        method != OTA_RESP_REQUEST_AUTH_SHA256 && method != OTA_RESP_REQUEST_AUTH_MD5)
        return unexpected(s, method);
    if (method != OTA_RESP_REQUEST_AUTH_SALTED && o->known_error[0] != '\0') {
        /* fail closed: the node may be recorded in the file we cannot read */
        s->res->device_code = method;
        return fail(s, OTA_FAIL_KNOWN_UNREADABLE, OTA_EXIT_AUTH);
    }
    if (method != OTA_RESP_REQUEST_AUTH_SALTED && o->require_salted == OTA_SALTED_BY_KNOWN) {
        /* the node proved salted auth before: weaker now means changed or not the node */
        s->res->device_code = method;
        return fail(s, OTA_FAIL_DOWNGRADE, OTA_EXIT_AUTH);
    }
    if (method == OTA_RESP_AUTH_OK) {
        /* no challenge at all: anyone can say that */
        if (o->auth == OTA_AUTH_NONE)
            return 0;
        if (o->password != NULL)
            return fail(s, OTA_FAIL_NO_AUTH_ASKED, OTA_EXIT_AUTH);
        if (salted_required(o)) {
            s->res->device_code = method;
            return fail(s, OTA_FAIL_AUTH_METHOD, OTA_EXIT_AUTH);
        }
        return 0; /* no password given, none asked */
    }
    s->res->auth_method = method;
    if (o->password == NULL)
        return fail(s, OTA_FAIL_NEED_PASSWORD, OTA_EXIT_AUTH);
    if (method != OTA_RESP_REQUEST_AUTH_SALTED && o->require_salted == OTA_SALTED_BY_CONFIG &&
        o->auth != OTA_AUTH_SALTED) {
        s->res->device_code = method;
        return fail(s, OTA_FAIL_DOWNGRADE, OTA_EXIT_AUTH);
    }
    if (!method_allowed(o->auth, method)) {
        s->res->device_code = method;
        return fail(s, OTA_FAIL_AUTH_METHOD, OTA_EXIT_AUTH);
    }
    if (method == OTA_RESP_REQUEST_AUTH_SALTED)
        return auth_salted(s, o, aa);
    return auth_challenge(s, o, method, aa);
}

/* ------------------------------------------------------------ data */

#define STREAM_VERIFIED (-1) /* RECEIVE_OK and UPDATE_END_OK arrived in one read */

/* The MD5 of the payload, computed beside the sending (late digest). */
typedef struct md5_job {
    const uint8_t *data;
    size_t len;
    uint8_t md5[16];
} md5_job_t;

static void *md5_worker(void *arg)
{
    md5_job_t *j = arg;
    mbedtls_md5_ret(j->data, j->len, j->md5);
    return NULL;
}

/* The late digest of one stream (docs/protocol.md#native-late-md5). */
typedef struct late {
    bool on;           /* the MD5 goes after the data */
    bool await_prepare; /* UPDATE_PREPARE_OK is still to come (size sent unanswered) */
    bool threaded;     /* job runs in th; joined once the data is sent */
    bool joined;
    bool md5_sent;
    pthread_t th;
    md5_job_t job;     /* job.md5 is the digest once joined (or when not threaded) */
} late_t;

static void late_join(late_t *l)
{
    if (l->threaded && !l->joined) {
        pthread_join(l->th, NULL);
        l->joined = true;
    }
}

/* Stream the payload with data in flight, counting chunk acks; with l->on the
 * 32-hex MD5 follows the data. Returns 0 once the device answered RECEIVE_OK,
 * STREAM_VERIFIED, or an exit code. */
static int stream(session_t *s, const uint8_t *data, size_t len, late_t *l,
                  ota_progress_fn progress, void *arg)
{
    ota_client_result_t *res = s->res;
    set_phase(s, l->await_prepare ? OTA_PHASE_PREPARE : OTA_PHASE_UPLOAD);
    size_t acks = 0;
    bool v2 = res->version == OTA_PROTOCOL_VERSION_2;
    size_t last_report = (size_t)-1;
    for (;;) {
        struct pollfd p = {.fd = s->fd, .events = POLLIN};
        if (res->sent < len)
            p.events |= POLLOUT;
        int n = poll_noting(s, &p, s->timeout_ms);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return fail(s, OTA_FAIL_TIMEOUT, OTA_EXIT_NETWORK);
        if (p.revents & POLLIN) {
            uint8_t buf[512];
            ssize_t r = recv(s->fd, buf, sizeof buf, 0);
            if (r == 0 || (r < 0 && errno != EINTR && errno != EAGAIN)) {
                if (r < 0)
                    snprintf(res->detail, sizeof res->detail, "%s", strerror(errno));
                return fail(s, OTA_FAIL_CLOSED, OTA_EXIT_NETWORK);
            }
            for (ssize_t i = 0; i < r; i++) {
                if (l->await_prepare) {
                    /* the size was sent with the data behind it: its answer first */
                    if (buf[i] != OTA_RESP_UPDATE_PREPARE_OK)
                        return unexpected(s, buf[i]);
                    l->await_prepare = false;
                    set_phase(s, OTA_PHASE_UPLOAD);
                    continue;
                }
                if (buf[i] == OTA_RESP_CHUNK_OK) {
                    acks++;
                    continue;
                }
                if (buf[i] == OTA_RESP_RECEIVE_OK && res->sent == len &&
                    (!l->on || l->md5_sent)) {
                    res->acked = len;
                    if (progress)
                        progress(arg, len, len);
                    /* whatever followed in this read belongs to the verification */
                    if (i + 1 < r) {
                        set_phase(s, OTA_PHASE_VERIFY);
                        return buf[i + 1] == OTA_RESP_UPDATE_END_OK ? STREAM_VERIFIED
                                                                     : unexpected(s, buf[i + 1]);
                    }
                    return 0;
                }
                return unexpected(s, buf[i]);
            }
        }
        if ((p.revents & POLLOUT) && res->sent < len) {
            size_t chunk = len - res->sent;
            if (chunk > 65536)
                chunk = 65536;
            ssize_t w = send(s->fd, data + res->sent, chunk, MSG_NOSIGNAL);
            if (w < 0 && errno != EINTR && errno != EAGAIN) {
                snprintf(res->detail, sizeof res->detail, "%s", strerror(errno));
                /* the device may have said why before closing: look for it behind
                 * the acks (and the prepare answer not read yet) */
                uint8_t why[512];
                ssize_t r = recv(s->fd, why, sizeof why, MSG_DONTWAIT);
                for (ssize_t i = 0; i < r; i++) {
                    if (why[i] == OTA_RESP_CHUNK_OK ||
                        (i == 0 && l->await_prepare && why[i] == OTA_RESP_UPDATE_PREPARE_OK))
                        continue;
                    return unexpected(s, why[i]);
                }
                return fail(s, OTA_FAIL_CLOSED, OTA_EXIT_NETWORK);
            }
            if (w > 0) {
                res->sent += (size_t)w;
                if (res->sent == len && l->on) {
                    /* the late digest: ours is ready about when the last byte leaves */
                    late_join(l);
                    char hex[OTA_MD5_HEX_LEN];
                    ota_hex_encode(l->job.md5, 16, hex);
                    int rc = write_all(s, hex, sizeof hex);
                    if (rc)
                        return rc;
                    l->md5_sent = true;
                }
                if (res->sent == len && s->o->phase_out != NULL)
                    *s->o->phase_out = OTA_PHASE_VERIFY; /* all sent: the node decides now */
            }
        }
        size_t done = v2 ? (acks * OTA_CHUNK_SIZE < len ? acks * OTA_CHUNK_SIZE : len)
                         : res->sent;
        res->acked = v2 ? done : 0;
        if (progress && done != last_report) {
            progress(arg, done, len);
            last_report = done;
        }
    }
}

/* ------------------------------------------------------------ the session */

int ota_client_prepare(ota_client_payload_t *p, const uint8_t *image, size_t len, bool compress,
                       bool hash)
{
    memset(p, 0, sizeof *p);
    p->image = image;
    p->len = len;
    p->has_md5 = hash;
    if (hash)
        mbedtls_md5_ret(image, len, p->md5);
    if (compress) {
        size_t gz_len = 0;
        uint8_t *gz = ota_gzip_cached(image, len, &gz_len, &p->gz_cached);
        if (gz != NULL && gz_len < len) {
            p->gz = gz;
            p->gz_len = gz_len;
            if (hash)
                mbedtls_md5_ret(gz, gz_len, p->gz_md5);
        } else {
            free(gz);
        }
    }
    return 0;
}

void ota_client_payload_free(ota_client_payload_t *p)
{
    free(p->gz);
    p->gz = NULL;
}

/* The round trips (docs/protocol.md#native-late-md5 counts them): a stock device gets
 * one message per write and every answer awaited, as its own uploader does. A node
 * that answered the late-digest flag gets the size (after auth: with the auth reply)
 * with the data right behind it and the MD5 after the data; one recorded as such
 * (known_late_md5) also gets magic and features in one write. */
static int run(session_t *s, const ota_client_options_t *o, const ota_client_payload_t *pl,
               ota_progress_fn progress, void *arg)
{
    ota_client_result_t *res = s->res;
    int rc = connect_to(s, o);
    if (rc)
        return rc;

    set_phase(s, OTA_PHASE_HANDSHAKE);
    uint8_t features = OTA_FEATURE_EXTENDED | OTA_FEATURE_LATE_MD5;
    if (o->compress)
        features |= OTA_FEATURE_COMPRESSION;
    if (salted_required(o))
        features |= OTA_FEATURE_SALTED_AUTH; /* nothing else is acceptable */
    else if (o->auth == OTA_AUTH_AUTO)
        features |= OTA_FEATURE_SALTED_AUTH | OTA_FEATURE_SHA256_AUTH;
    else if (o->auth == OTA_AUTH_SHA256)
        features |= OTA_FEATURE_SHA256_AUTH;
    uint8_t hello[OTA_MAGIC_LEN + 1];
    memcpy(hello, ota_protocol_magic, OTA_MAGIC_LEN);
    hello[OTA_MAGIC_LEN] = features;
    /* one of ours (recorded): magic and features in one write */
    if ((rc = write_all(s, hello, o->known_late_md5 ? sizeof hello : OTA_MAGIC_LEN)) != 0 ||
        (rc = read_exact(s, hello, 1)) != 0)
        return rc;
    if (hello[0] != OTA_RESP_OK)
        return unexpected(s, hello[0]); /* 0x80 wrong magic, 0xA0 busy, ... */
    if ((rc = read_exact(s, hello + 1, 1)) != 0)
        return rc;
    if (hello[1] != OTA_PROTOCOL_VERSION_1 && hello[1] != OTA_PROTOCOL_VERSION_2) {
        res->device_code = hello[1];
        return fail(s, OTA_FAIL_UNEXPECTED, OTA_EXIT_DEVICE);
    }
    res->version = hello[1];

    if (!o->known_late_md5 && (rc = write_all(s, &features, 1)) != 0)
        return rc;
    uint8_t answer;
    if ((rc = read_exact(s, &answer, 1)) != 0)
        return rc;
    bool extended = false, gzip_ok = false;
    if (answer == OTA_RESP_FEATURE_FLAGS) {
        uint8_t flags;
        if ((rc = read_exact(s, &flags, 1)) != 0)
            return rc;
        extended = true;
        res->server_flags = flags;
        gzip_ok = (flags & OTA_SERVER_FLAG_COMPRESSION) != 0;
    } else if (answer == OTA_RESP_SUPPORTS_COMPRESSION) {
        gzip_ok = true;
    } else if (answer != OTA_RESP_HEADER_OK) {
        return unexpected(s, answer);
    }
    /* the flag is an answer to our feature bit: only our nodes send it */
    bool late = extended && (res->server_flags & OTA_SERVER_FLAG_LATE_MD5) != 0;
    res->late_md5 = late;

    if (o->command != 0) {
        /* a command instead of an image: it needs the extended protocol's type byte */
        if (!extended) {
            res->device_code = OTA_RESP_ERROR_UNSUPPORTED_OTA_TYPE;
            return fail(s, OTA_FAIL_DEVICE, OTA_EXIT_DEVICE);
        }
        if ((rc = authenticate(s, o, NULL)) != 0)
            return rc;
        set_phase(s, OTA_PHASE_PREPARE);
        if ((rc = write_all(s, &o->command, 1)) != 0 ||
            (rc = expect_code(s, OTA_RESP_OK)) != 0)
            return rc;
        set_phase(s, OTA_PHASE_DONE);
        return OTA_EXIT_OK;
    }

    /* the payload, prepared before connecting: gzip when the device takes it */
    bool gz = o->compress && gzip_ok && pl->gz != NULL;
    const uint8_t *payload = gz ? pl->gz : pl->image;
    size_t plen = gz ? pl->gz_len : pl->len;
    res->compressed = gz;
    res->wire_size = plen;
    if (plen > UINT32_MAX)
        return fail(s, OTA_FAIL_INTERNAL, OTA_EXIT_INPUT);
    late_t l;
    memset(&l, 0, sizeof l);
    l.on = late;
    l.job.data = payload;
    l.job.len = plen;
    if (pl->has_md5)
        memcpy(l.job.md5, gz ? pl->gz_md5 : pl->md5, 16);
    else if (!late)
        /* a stock device needs it before the data: hash now, before the auth (a
         * node recorded as ours that is no longer; docs/protocol.md#native-late-md5) */
        mbedtls_md5_ret(payload, plen, l.job.md5);

    /* what follows the auth: update type (extended) and size */
    after_auth_t aa;
    memset(&aa, 0, sizeof aa);
    if (extended)
        aa.bytes[aa.len++] = OTA_UPDATE_TYPE_APP;
    ota_be32_put(aa.bytes + aa.len, (uint32_t)plen);
    aa.len += 4;
    if ((rc = authenticate(s, o, late ? &aa : NULL)) != 0)
        return rc;
    set_phase(s, OTA_PHASE_PREPARE);
    if (!aa.sent && (late || !extended)) {
        rc = write_all(s, aa.bytes, aa.len); /* ours: type + size in one write */
    } else if (!aa.sent) {
        /* stock: the update type and the size as two writes, as espota2 does */
        if ((rc = write_all(s, aa.bytes, 1)) == 0)
            rc = write_all(s, aa.bytes + 1, 4);
    }
    if (rc)
        return rc;
    if (late) {
        /* the data right behind the size, the MD5 behind the data */
        l.await_prepare = true;
        if (!pl->has_md5)
            l.threaded = pthread_create(&l.th, NULL, md5_worker, &l.job) == 0;
        if (!pl->has_md5 && !l.threaded)
            md5_worker(&l.job);
        rc = stream(s, payload, plen, &l, progress, arg);
        late_join(&l);
    } else {
        char md5hex[OTA_MD5_HEX_LEN];
        ota_hex_encode(l.job.md5, 16, md5hex);
        if ((rc = expect_code(s, OTA_RESP_UPDATE_PREPARE_OK)) == 0 &&
            (rc = write_all(s, md5hex, sizeof md5hex)) == 0 &&
            (rc = expect_code(s, OTA_RESP_BIN_MD5_OK)) == 0)
            rc = stream(s, payload, plen, &l, progress, arg);
    }
    if (rc > 0)
        return rc;
    set_phase(s, OTA_PHASE_VERIFY);
    if (rc == 0 && (rc = expect_code(s, OTA_RESP_UPDATE_END_OK)) != 0)
        return rc;
    uint8_t ack = OTA_RESP_OK;
    (void)write_all(s, &ack, 1); /* the device reboots with or without it */
    set_phase(s, OTA_PHASE_DONE);
    return OTA_EXIT_OK;
}

int ota_client_upload(const ota_client_options_t *opts, const uint8_t *image, size_t len,
                      ota_progress_fn progress, void *progress_arg, ota_client_result_t *res)
{
    ota_client_payload_t p;
    ota_client_prepare(&p, image, len, opts->compress, true);
    int rc = ota_client_upload_payload(opts, &p, progress, progress_arg, res);
    ota_client_payload_free(&p);
    return rc;
}

int ota_client_upload_payload(const ota_client_options_t *opts, const ota_client_payload_t *pl,
                              ota_progress_fn progress, void *progress_arg,
                              ota_client_result_t *res)
{
    memset(res, 0, sizeof *res);
    session_t s;
    memset(&s, 0, sizeof s);
    s.fd = -1;
    s.res = res;
    s.o = opts;
    s.noted = (ota_phase_t)-1;
    s.timeout_ms = (int)opts->timeout_s * 1000;
    set_phase(&s, OTA_PHASE_RESOLVE);
    int rc = run(&s, opts, pl, progress, progress_arg);
    if (s.fd >= 0)
        close(s.fd);
    return rc;
}

bool ota_client_retriable(const ota_client_result_t *res)
{
    if (res->phase > OTA_PHASE_CONNECT)
        return false;
    return res->failure == OTA_FAIL_RESOLVE || res->failure == OTA_FAIL_REFUSED ||
           res->failure == OTA_FAIL_UNREACHABLE || res->failure == OTA_FAIL_TIMEOUT;
}
