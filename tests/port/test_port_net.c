/*
 * test_port_net.c - the network layer of the POSIX port (src/port/posix/net.c) over
 * loopback: accept/recv/send return codes exactly as ota/port.h defines them
 * (would-block, closed, data), peer strings for IPv4 and IPv6, and the main loop's
 * idle wait (ota_posix_wait) sleeping until the timeout or until something arrives.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "ota/errors.h"
#include "ota_posix.h"
#include "port_test_util.h"

typedef struct fixture {
    char dir[4096];
    ota_posix_t ctx;
    bool up;
    uint16_t port;
    int family;
} fixture_t;

static int start(void **state, const char *addr)
{
    fixture_t *f = calloc(1, sizeof *f);
    assert_non_null(f);
    tu_mkdtemp(f->dir);
    unsetenv("OTA_BOOT_SLOT");
    ota_posix_options_t o = {
        .state_dir = f->dir, .bind_addr = addr, .port = 0, .slot_size = 1u << 20};
    char err[512] = "";
    if (ota_posix_init(&f->ctx, &o, err, sizeof err) != 0) {
        tu_rm_rf(f->dir);
        free(f);
        *state = NULL;
        return -1;
    }
    f->up = true;
    struct sockaddr_storage ss;
    socklen_t sl = sizeof ss;
    assert_int_equal(getsockname(f->ctx.listen_fd, (struct sockaddr *)&ss, &sl), 0);
    f->family = ss.ss_family;
    f->port = ntohs(ss.ss_family == AF_INET ? ((struct sockaddr_in *)&ss)->sin_port
                                            : ((struct sockaddr_in6 *)&ss)->sin6_port);
    *state = f;
    return 0;
}

static int setup4(void **state)
{
    return start(state, "127.0.0.1");
}

static int setup6(void **state)
{
    /* a host without IPv6 on loopback skips the IPv6 test (state NULL) */
    if (start(state, "::1") != 0)
        *state = NULL;
    return 0;
}

static int teardown(void **state)
{
    fixture_t *f = *state;
    if (f == NULL)
        return 0;
    if (f->up)
        ota_posix_free(&f->ctx);
    tu_rm_rf(f->dir);
    free(f);
    return 0;
}

/* A blocking client connected to the fixture's listener. */
static int client(const fixture_t *f)
{
    int fd = socket(f->family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    assert_true(fd >= 0);
    struct sockaddr_storage ss;
    memset(&ss, 0, sizeof ss);
    socklen_t sl;
    if (f->family == AF_INET) {
        struct sockaddr_in *a = (struct sockaddr_in *)&ss;
        a->sin_family = AF_INET;
        a->sin_port = htons(f->port);
        inet_pton(AF_INET, "127.0.0.1", &a->sin_addr);
        sl = sizeof *a;
    } else {
        struct sockaddr_in6 *a = (struct sockaddr_in6 *)&ss;
        a->sin6_family = AF_INET6;
        a->sin6_port = htons(f->port);
        inet_pton(AF_INET6, "::1", &a->sin6_addr);
        sl = sizeof *a;
    }
    assert_int_equal(connect(fd, (struct sockaddr *)&ss, sl), 0);
    return fd;
}

static uint16_t local_port(int fd)
{
    struct sockaddr_storage ss;
    socklen_t sl = sizeof ss;
    assert_int_equal(getsockname(fd, (struct sockaddr *)&ss, &sl), 0);
    return ntohs(ss.ss_family == AF_INET ? ((struct sockaddr_in *)&ss)->sin_port
                                         : ((struct sockaddr_in6 *)&ss)->sin6_port);
}

/* Accept, waiting (through ota_posix_wait) up to 2 s for the connection. */
static ota_conn_t accept_one(fixture_t *f, char *peer, size_t peer_len)
{
    ota_conn_t c = -1;
    for (int i = 0; i < 200; i++) {
        int rc = f->ctx.ports.tcp.accept(&f->ctx, &c, peer, peer_len);
        if (rc == OTA_OK)
            return c;
        assert_int_equal(rc, OTA_ERR_WOULD_BLOCK);
        ota_posix_wait(&f->ctx, 10);
    }
    fail_msg("no connection arrived");
    return -1;
}

/* recv through the port, waiting up to 2 s for something other than would-block. */
static int recv_wait(fixture_t *f, ota_conn_t c, uint8_t *buf, size_t len)
{
    for (int i = 0; i < 200; i++) {
        int rc = f->ctx.ports.tcp.recv(&f->ctx, c, buf, len);
        if (rc != OTA_ERR_WOULD_BLOCK)
            return rc;
        ota_posix_wait(&f->ctx, 10);
    }
    return OTA_ERR_WOULD_BLOCK;
}

static size_t open_conns(const fixture_t *f)
{
    size_t n = 0;
    for (int i = 0; i < OTA_POSIX_MAX_CONNS; i++)
        n += f->ctx.conns[i] >= 0;
    return n;
}

static void test_accept_recv_send_codes(void **state)
{
    fixture_t *f = *state;
    const ota_tcp_port_t *p = &f->ctx.ports.tcp;
    ota_conn_t c;
    char peer[64];
    assert_int_equal(p->accept(&f->ctx, &c, peer, sizeof peer), OTA_ERR_WOULD_BLOCK);

    int cl = client(f);
    c = accept_one(f, peer, sizeof peer);
    char want[64];
    snprintf(want, sizeof want, "127.0.0.1:%u", (unsigned)local_port(cl));
    assert_string_equal(peer, want);
    assert_int_equal(open_conns(f), 1);

    uint8_t buf[64] = {0};
    assert_int_equal(p->recv(&f->ctx, c, buf, sizeof buf), OTA_ERR_WOULD_BLOCK);
    assert_int_equal(send(cl, "hello", 5, 0), 5);
    assert_int_equal(recv_wait(f, c, buf, sizeof buf), 5);
    assert_memory_equal(buf, "hello", 5);
    assert_int_equal(p->send(&f->ctx, c, (const uint8_t *)"\x00\x02", 2), 2);
    assert_int_equal(recv(cl, buf, sizeof buf, 0), 2);
    assert_int_equal(buf[1], 2);

    /* orderly close by the peer */
    close(cl);
    assert_int_equal(recv_wait(f, c, buf, sizeof buf), OTA_ERR_CLOSED);
    /* sending to a peer that is gone: closed (EPIPE/ECONNRESET), never SIGPIPE */
    int rc = 0;
    for (int i = 0; i < 100 && rc >= 0; i++)
        rc = p->send(&f->ctx, c, buf, sizeof buf);
    assert_int_equal(rc, OTA_ERR_CLOSED);
    p->close(&f->ctx, c);
    assert_int_equal(open_conns(f), 0);
}

static void test_send_would_block_when_the_peer_does_not_read(void **state)
{
    fixture_t *f = *state;
    const ota_tcp_port_t *p = &f->ctx.ports.tcp;
    int cl = client(f);
    char peer[64];
    ota_conn_t c = accept_one(f, peer, sizeof peer);
    static uint8_t chunk[65536];
    int rc = 0;
    size_t total = 0;
    for (int i = 0; i < 100000; i++) {
        rc = p->send(&f->ctx, c, chunk, sizeof chunk);
        if (rc < 0)
            break;
        total += (size_t)rc;
    }
    assert_int_equal(rc, OTA_ERR_WOULD_BLOCK);
    assert_true(total > 0);
    /* a reset by the peer (unread data + close = RST) shows as closed */
    close(cl);
    uint8_t buf[16] = {0};
    rc = OTA_ERR_WOULD_BLOCK;
    for (int i = 0; i < 200 && rc == OTA_ERR_WOULD_BLOCK; i++) {
        rc = p->send(&f->ctx, c, buf, sizeof buf);
        if (rc == OTA_ERR_WOULD_BLOCK)
            ota_posix_wait(&f->ctx, 10);
    }
    assert_int_equal(rc, OTA_ERR_CLOSED);
    p->close(&f->ctx, c);
}

static void test_reset_by_peer_reads_as_closed(void **state)
{
    fixture_t *f = *state;
    const ota_tcp_port_t *p = &f->ctx.ports.tcp;
    int cl = client(f);
    char peer[64];
    ota_conn_t c = accept_one(f, peer, sizeof peer);
    /* unread data on the client side, then close: the kernel sends RST */
    assert_int_equal(p->send(&f->ctx, c, (const uint8_t *)"xyz", 3), 3);
    struct linger lg = {1, 0}; /* close with RST right away */
    setsockopt(cl, SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
    close(cl);
    uint8_t buf[16];
    assert_int_equal(recv_wait(f, c, buf, sizeof buf), OTA_ERR_CLOSED);
    p->close(&f->ctx, c);
}

static long elapsed_ms(const struct timespec *a)
{
    struct timespec b;
    clock_gettime(CLOCK_MONOTONIC, &b);
    return (b.tv_sec - a->tv_sec) * 1000L + (b.tv_nsec - a->tv_nsec) / 1000000L;
}

static void test_wait_sleeps_until_timeout_or_activity(void **state)
{
    fixture_t *f = *state;
    struct timespec t0;
    /* nothing happens: it sleeps the whole timeout (and no more than a bit over) */
    clock_gettime(CLOCK_MONOTONIC, &t0);
    assert_int_equal(ota_posix_wait(&f->ctx, 150), 0);
    long ms = elapsed_ms(&t0);
    assert_true(ms >= 140);
    assert_true(ms < 1500);

    /* a waiting connection on the listener wakes it at once */
    int cl = client(f);
    clock_gettime(CLOCK_MONOTONIC, &t0);
    ota_posix_wait(&f->ctx, 5000);
    assert_true(elapsed_ms(&t0) < 1000);
    char peer[64];
    ota_conn_t c = accept_one(f, peer, sizeof peer);

    /* an accepted connection with nothing to read: sleeps */
    clock_gettime(CLOCK_MONOTONIC, &t0);
    ota_posix_wait(&f->ctx, 100);
    assert_true(elapsed_ms(&t0) >= 90);

    /* data on it wakes it */
    assert_int_equal(send(cl, "x", 1, 0), 1);
    clock_gettime(CLOCK_MONOTONIC, &t0);
    ota_posix_wait(&f->ctx, 5000);
    assert_true(elapsed_ms(&t0) < 1000);
    uint8_t b;
    assert_int_equal(f->ctx.ports.tcp.recv(&f->ctx, c, &b, 1), 1);

    /* a closed connection is no longer watched */
    f->ctx.ports.tcp.close(&f->ctx, c);
    close(cl);
    clock_gettime(CLOCK_MONOTONIC, &t0);
    ota_posix_wait(&f->ctx, 100);
    assert_true(elapsed_ms(&t0) >= 90);
}

static void test_connections_are_tracked_and_freed(void **state)
{
    fixture_t *f = *state;
    int cl[10];
    ota_conn_t c[10];
    char peer[64];
    for (int i = 0; i < 10; i++) {
        cl[i] = client(f);
        c[i] = accept_one(f, peer, sizeof peer);
    }
    assert_int_equal(open_conns(f), 10);
    for (int i = 0; i < 10; i += 2)
        f->ctx.ports.tcp.close(&f->ctx, c[i]);
    assert_int_equal(open_conns(f), 5);
    /* ota_posix_free closes the rest (and the listener): the clients see EOF */
    ota_posix_free(&f->ctx);
    f->up = false;
    for (int i = 1; i < 10; i += 2) {
        uint8_t b;
        assert_int_equal(recv(cl[i], &b, 1, 0), 0);
    }
    for (int i = 0; i < 10; i++)
        close(cl[i]);
    ota_posix_free(&f->ctx); /* twice is harmless */
}

static void test_ipv6_peer_string(void **state)
{
    fixture_t *f = *state;
    if (f == NULL) {
        print_message("no IPv6 on loopback here: skipped\n");
        skip();
    }
    assert_non_null(strstr(f->ctx.bound, "[::1]:"));
    int cl = client(f);
    char peer[80];
    ota_conn_t c = accept_one(f, peer, sizeof peer);
    char want[80];
    snprintf(want, sizeof want, "[::1]:%u", (unsigned)local_port(cl));
    assert_string_equal(peer, want);
    uint8_t buf[4];
    assert_int_equal(send(cl, "v6", 2, 0), 2);
    assert_int_equal(recv_wait(f, c, buf, sizeof buf), 2);
    close(cl);
    assert_int_equal(recv_wait(f, c, buf, sizeof buf), OTA_ERR_CLOSED);
    f->ctx.ports.tcp.close(&f->ctx, c);
}

static void test_listener_is_reusable_right_away(void **state)
{
    fixture_t *f = *state;
    /* a connection in TIME_WAIT must not keep a restarted node off its port */
    int cl = client(f);
    char peer[64];
    ota_conn_t c = accept_one(f, peer, sizeof peer);
    f->ctx.ports.tcp.close(&f->ctx, c); /* the node closes first: its side in TIME_WAIT */
    uint8_t b;
    assert_int_equal(recv(cl, &b, 1, 0), 0);
    close(cl);
    uint16_t port = f->port;
    ota_posix_free(&f->ctx);
    f->up = false;
    ota_posix_options_t o = {
        .state_dir = f->dir, .bind_addr = "127.0.0.1", .port = port, .slot_size = 1u << 20};
    char err[512] = "";
    if (ota_posix_init(&f->ctx, &o, err, sizeof err) != 0)
        fail_msg("restart on port %u: %s", (unsigned)port, err);
    f->up = true;
    char want[64];
    snprintf(want, sizeof want, "127.0.0.1:%u", (unsigned)port);
    assert_string_equal(f->ctx.bound, want);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_accept_recv_send_codes, setup4, teardown),
        cmocka_unit_test_setup_teardown(test_send_would_block_when_the_peer_does_not_read,
                                        setup4, teardown),
        cmocka_unit_test_setup_teardown(test_reset_by_peer_reads_as_closed, setup4, teardown),
        cmocka_unit_test_setup_teardown(test_wait_sleeps_until_timeout_or_activity, setup4,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_connections_are_tracked_and_freed, setup4,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_ipv6_peer_string, setup6, teardown),
        cmocka_unit_test_setup_teardown(test_listener_is_reusable_right_away, setup4,
                                        teardown),
    };
    return cmocka_run_group_tests_name("port_net", tests, NULL, NULL);
}
