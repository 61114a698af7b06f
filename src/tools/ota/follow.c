/*
 * follow.c - waiting for a node to come back and following its logs (see follow.h).
 */
#include "follow.h"

#include <errno.h>
#include <netdb.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "client.h"
#include "ota/auth.h"
#include "ota/log_proto.h"
#include "ota/protocol.h"
#include "ota/util.h"
#include "ota_posix.h"
#include "progress.h"

static volatile sig_atomic_t interrupted = 0;

static void on_sigint(int sig)
{
    (void)sig;
    interrupted = 1;
}

/* A connected TCP socket to host:port within timeout_ms, or -1. */
static int dial(const char *host, uint16_t port, int timeout_ms)
{
    char service[8];
    snprintf(service, sizeof service, "%u", (unsigned)port);
    struct addrinfo hints, *ai = NULL;
    memset(&hints, 0, sizeof hints);
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    if (getaddrinfo(host, service, &hints, &ai) != 0)
        return -1;
    int fd = -1;
    for (struct addrinfo *a = ai; a != NULL && fd < 0; a = a->ai_next) {
        fd = socket(a->ai_family, a->ai_socktype | SOCK_CLOEXEC | SOCK_NONBLOCK, a->ai_protocol);
        if (fd < 0)
            continue;
        if (connect(fd, a->ai_addr, a->ai_addrlen) != 0 && errno != EINPROGRESS) {
            close(fd);
            fd = -1;
            continue;
        }
        struct pollfd p = {.fd = fd, .events = POLLOUT};
        int err = 0;
        socklen_t el = sizeof err;
        if (poll(&p, 1, timeout_ms) != 1 || getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &el) != 0 ||
            err != 0) {
            close(fd);
            fd = -1;
        }
    }
    freeaddrinfo(ai);
    return fd;
}

static int read_some(int fd, char *buf, size_t cap, int timeout_ms)
{
    struct pollfd p = {.fd = fd, .events = POLLIN};
    if (poll(&p, 1, timeout_ms) != 1)
        return -2; /* timeout or signal */
    ssize_t n = recv(fd, buf, cap, 0);
    return n > 0 ? (int)n : -1;
}

int ota_wait_for_node(const char *host, uint16_t port, unsigned timeout_s, double *secs)
{
    double t0 = ota_now_s();
    while (ota_now_s() - t0 < timeout_s) {
        int fd = dial(host, port, 1000);
        if (fd >= 0) {
            uint8_t hello[2];
            size_t got = 0;
            (void)!send(fd, ota_protocol_magic, OTA_MAGIC_LEN, MSG_NOSIGNAL);
            while (got < 2) {
                int n = read_some(fd, (char *)hello + got, 2 - got, 2000);
                if (n <= 0)
                    break;
                got += (size_t)n;
            }
            close(fd);
            if (got == 2 && hello[0] == OTA_RESP_OK) {
                *secs = ota_now_s() - t0;
                return 0;
            }
        }
        usleep(200 * 1000);
    }
    return -1;
}

/* Send all of buf (the socket is non-blocking). 0, -1. */
static int send_all(int fd, const char *buf, size_t n, int timeout_ms)
{
    while (n > 0) {
        struct pollfd p = {.fd = fd, .events = POLLOUT};
        if (poll(&p, 1, timeout_ms) != 1)
            return -1;
        ssize_t w = send(fd, buf, n, MSG_NOSIGNAL);
        if (w < 0 && (errno == EINTR || errno == EAGAIN))
            continue;
        if (w <= 0)
            return -1;
        buf += w;
        n -= (size_t)w;
    }
    return 0;
}

/* The viewer's side of the salted exchange (docs/protocol.md#logs-auth):
 * answer the challenge line and keep the ServerSignature the device must send back.
 * AuthMessage is the OTA port's with the log port's label. 0, or an exit code. */
static int answer_challenge(int fd, const char *line, const char *password, uint8_t *want_sig)
{
    char salt_hex[2 * OTA_SALT_LEN + 1], nonce_hex[2 * OTA_SALTED_NONCE_LEN + 1];
    unsigned long iterations = 0;
    uint8_t salt[OTA_SALT_LEN], snonce[OTA_SALTED_NONCE_LEN];
    if (sscanf(line, OTA_LOG_AUTH_CHALLENGE "salt=%32[0-9a-f] iterations=%lu nonce=%64[0-9a-f]",
               salt_hex, &iterations, nonce_hex) != 3 ||
        strlen(salt_hex) != 2 * OTA_SALT_LEN || strlen(nonce_hex) != 2 * OTA_SALTED_NONCE_LEN ||
        ota_hex_decode(salt_hex, OTA_SALT_LEN, salt) != 0 ||
        ota_hex_decode(nonce_hex, OTA_SALTED_NONCE_LEN, snonce) != 0 ||
        iterations < OTA_SALTED_MIN_ITERATIONS || iterations > 10000000ul) {
        fprintf(stderr, "error: the node's log port sent a password challenge this tool "
                        "does not understand: %s\n", line);
        return OTA_EXIT_AUTH;
    }
    if (password == NULL) {
        fprintf(stderr, "error: the node's log needs the OTA password\nhint: pass --password, "
                        "--password-file, $OTA_PASSWORD or the node's YAML file\n");
        return OTA_EXIT_AUTH;
    }
    uint8_t sp[OTA_SALTED_KEY_LEN], cnonce[OTA_SALTED_NONCE_LEN], proof[OTA_SALTED_KEY_LEN];
    uint8_t msg[OTA_SALTED_AUTH_MESSAGE_LEN];
    if (ota_posix_pbkdf2_sha256(password, strlen(password), salt, OTA_SALT_LEN,
                                (uint32_t)iterations, sp, sizeof sp) != 0 ||
        ota_posix_random(NULL, cnonce, sizeof cnonce) != 0) {
        ota_wipe(sp, sizeof sp);
        return OTA_EXIT_INTERNAL;
    }
    ota_salted_auth_message(snonce, cnonce, salt, (uint32_t)iterations, msg);
    memcpy(msg, OTA_LOG_AUTH_LABEL, OTA_SALTED_LABEL_LEN);
    int rc = ota_salted_client_proof(&ota_posix_crypto, sp, msg, proof, want_sig);
    ota_wipe(sp, sizeof sp);
    if (rc != 0)
        return OTA_EXIT_INTERNAL;
    const size_t al = sizeof OTA_LOG_AUTH_ANSWER - 1;
    char reply[sizeof OTA_LOG_AUTH_ANSWER + 2 * OTA_SALTED_NONCE_LEN + 2 * OTA_SALTED_KEY_LEN + 2];
    memcpy(reply, OTA_LOG_AUTH_ANSWER, al);
    ota_hex_encode(cnonce, sizeof cnonce, reply + al);
    reply[al + 2 * OTA_SALTED_NONCE_LEN] = ' ';
    ota_hex_encode(proof, sizeof proof, reply + al + 1 + 2 * OTA_SALTED_NONCE_LEN);
    size_t n = al + 1 + 2 * OTA_SALTED_NONCE_LEN + 2 * OTA_SALTED_KEY_LEN;
    reply[n++] = '\n';
    rc = send_all(fd, reply, n, 5000);
    ota_wipe(proof, sizeof proof);
    return rc == 0 ? 0 : -1; /* -1: the connection broke, reconnect */
}

/* Where a connection of ota_follow_logs is in the stream. */
enum { AT_START, AT_SIGNATURE, AT_HELLO, AT_LOG };

int ota_follow_logs(const char *host, uint16_t log_port, unsigned follow_s,
                    const char *password, char *first_hello, size_t hello_cap)
{
    struct sigaction sa, old;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_sigint;
    sigaction(SIGINT, &sa, &old);
    interrupted = 0;
    double t0 = ota_now_s();
    bool ever = false, waiting_said = false, stop = false;
    int rc = 0;
    uint8_t want_sig[OTA_SALTED_KEY_LEN];
    while (!stop && !interrupted && (follow_s == 0 || ota_now_s() - t0 < follow_s)) {
        int fd = dial(host, log_port, 1000);
        if (fd < 0) {
            if (!waiting_said) {
                fprintf(stderr, "-- waiting for the node's log at %s port %u (Ctrl-C to stop)\n",
                        host, (unsigned)log_port);
                waiting_said = true;
            }
            usleep(300 * 1000);
            continue;
        }
        waiting_said = false;
        char line[2048];
        size_t len = 0;
        int at = AT_START;
        while (!stop) {
            if (interrupted || (follow_s != 0 && ota_now_s() - t0 >= follow_s))
                break;
            int n = read_some(fd, line + len, sizeof line - 1 - len, 200);
            if (n == -2)
                continue;
            if (n < 0) {
                fprintf(stderr, "-- the node closed the log connection (rebooting?); "
                                "reconnecting\n");
                break;
            }
            len += (size_t)n;
            char *nl;
            while (!stop && (nl = memchr(line, '\n', len)) != NULL) {
                *nl = '\0';
                if (nl > line && nl[-1] == '\r')
                    nl[-1] = '\0';
                if (at == AT_START && ota_log_line_is(line, OTA_LOG_BUSY_PREFIX)) {
                    /* turned away (slots full): not the node's hello; try again */
                    fprintf(stderr, "-- the node's log viewer slots are full; retrying\n");
                    usleep(300 * 1000);
                    break;
                } else if (at == AT_START && password != NULL &&
                           !ota_log_line_is(line, OTA_LOG_AUTH_PREFIX)) {
                    /* anyone can serve lines without asking: with a password given, only
                     * a node that proves it knows it is shown (docs/protocol.md) */
                    fprintf(stderr, "error: the node's log port asked for no password, though "
                                    "one was given; its lines are not shown (an impostor, or "
                                    "a node without a password: then give none)\n");
                    rc = OTA_EXIT_AUTH;
                    stop = true;
                } else if (at == AT_START && ota_log_line_is(line, OTA_LOG_AUTH_PREFIX)) {
                    int a = answer_challenge(fd, line, password, want_sig);
                    if (a > 0) {
                        rc = a;
                        stop = true;
                    } else if (a < 0) {
                        break;
                    }
                    at = AT_SIGNATURE;
                } else if (at == AT_SIGNATURE) {
                    uint8_t sig[OTA_SALTED_KEY_LEN];
                    const size_t ol = sizeof OTA_LOG_AUTH_OK - 1;
                    if (strcmp(line, OTA_LOG_AUTH_FAILED) == 0) {
                        fprintf(stderr, "error: wrong password: the node's log port refused "
                                        "it\n");
                        rc = OTA_EXIT_AUTH;
                        stop = true;
                    } else if (!ota_log_line_is(line, OTA_LOG_AUTH_OK) ||
                               strlen(line + ol) != 2 * sizeof sig ||
                               ota_hex_decode(line + ol, sizeof sig, sig) != 0 ||
                               !ota_ct_equal(sig, want_sig, sizeof sig)) {
                        fprintf(stderr, "error: the device could not prove it knows the "
                                        "password; its log is not shown (an impostor?)\n");
                        rc = OTA_EXIT_AUTH;
                        stop = true;
                    }
                    at = AT_HELLO;
                } else if (at == AT_LOG && ota_log_line_is(line, OTA_LOG_EVICTED_PREFIX)) {
                    fprintf(stderr, "-- a newer log viewer took this one's place (the node "
                                    "serves a few at most); stopping\n");
                    stop = true;
                } else if (at <= AT_HELLO && line[0] == OTA_LOG_PROTO_MARK) {
                    fprintf(stderr, "-- connected: %s\n", line + 2);
                    if (!ever && first_hello != NULL)
                        snprintf(first_hello, hello_cap, "%s", line);
                    ever = true;
                    at = AT_LOG;
                } else {
                    at = AT_LOG;
                    puts(line);
                    fflush(stdout);
                }
                size_t used = (size_t)(nl + 1 - line);
                memmove(line, nl + 1, len - used);
                len -= used;
            }
            if (nl != NULL && !stop)
                break; /* the answer could not be sent: reconnect */
            if (len == sizeof line - 1) { /* an overlong line: print it as it is */
                line[len] = '\0';
                if (at != AT_SIGNATURE)
                    puts(line);
                len = 0;
            }
        }
        close(fd);
    }
    ota_wipe(want_sig, sizeof want_sig);
    sigaction(SIGINT, &old, NULL);
    if (rc == 0 && !ever && !interrupted)
        rc = 3;
    return rc;
}
