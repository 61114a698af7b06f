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

#include "ota/protocol.h"
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

int ota_follow_logs(const char *host, uint16_t log_port, unsigned follow_s, char *first_hello,
                    size_t hello_cap)
{
    struct sigaction sa, old;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_sigint;
    sigaction(SIGINT, &sa, &old);
    interrupted = 0;
    double t0 = ota_now_s();
    bool ever = false, waiting_said = false;
    int rc = 0;
    while (!interrupted && (follow_s == 0 || ota_now_s() - t0 < follow_s)) {
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
        bool first = true;
        for (;;) {
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
            while ((nl = memchr(line, '\n', len)) != NULL) {
                *nl = '\0';
                if (first && line[0] == '#') {
                    fprintf(stderr, "-- connected: %s\n", line + 2);
                    if (!ever && first_hello != NULL)
                        snprintf(first_hello, hello_cap, "%s", line);
                    ever = true;
                } else {
                    puts(line);
                    fflush(stdout);
                }
                first = false;
                size_t used = (size_t)(nl + 1 - line);
                memmove(line, nl + 1, len - used);
                len -= used;
            }
            if (len == sizeof line - 1) { /* an overlong line: print it as it is */
                line[len] = '\0';
                puts(line);
                len = 0;
            }
        }
        close(fd);
    }
    sigaction(SIGINT, &old, NULL);
    if (!ever && !interrupted)
        rc = 3;
    return rc;
}
