/*
 * swarm.c - many pull clients in one process (make bench, bench/bench_swarm.py): N
 * node contexts, each with its own update pipeline, a slot in RAM, a boot record in
 * RAM and the core's pull client (ota/pull.h), all fetching one release from one web
 * server. The core keeps no globals, so a node is just its structs. Every byte is
 * received, hashed (MD5, SHA-256) and copied into its node's slot as on a device.
 *
 *   swarm MANIFEST_URL NODES     prints "swarm nodes=N seconds=S updated=U failed=F"
 *
 * The network table is a plain non-blocking TCP client (numeric IPv4 only), not the
 * POSIX port's: one port context per node would open a listener each.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "ota/pull.h"
#include "ota/update.h"
#include "ota_posix.h"

/* ---- network: one TCP client connection per node at a time ---- */

static int tcp_connect_host(void *ctx, const char *host, uint16_t port, ota_conn_t *conn)
{
    (void)ctx;
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(port)};
    if (inet_pton(AF_INET, host, &a.sin_addr) != 1)
        return OTA_ERR_RESOLVE;
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return OTA_ERR_IO;
    if (connect(fd, (struct sockaddr *)&a, sizeof a) != 0 && errno != EINPROGRESS) {
        close(fd);
        return OTA_ERR_IO;
    }
    *conn = fd;
    return OTA_OK;
}

static int io_result(ssize_t n)
{
    if (n > 0)
        return (int)n;
    if (n == 0)
        return OTA_ERR_CLOSED;
    if (errno == EAGAIN || errno == EWOULDBLOCK || errno == ENOTCONN || errno == EINPROGRESS)
        return OTA_ERR_WOULD_BLOCK;
    return errno == ECONNREFUSED || errno == ECONNRESET || errno == EPIPE ? OTA_ERR_CLOSED
                                                                           : OTA_ERR_IO;
}

static int tcp_recv(void *ctx, ota_conn_t conn, uint8_t *buf, size_t len)
{
    (void)ctx;
    return io_result(recv(conn, buf, len, MSG_DONTWAIT));
}

static int tcp_send(void *ctx, ota_conn_t conn, const uint8_t *buf, size_t len)
{
    (void)ctx;
    return io_result(send(conn, buf, len, MSG_DONTWAIT | MSG_NOSIGNAL));
}

static void tcp_close(void *ctx, ota_conn_t conn)
{
    (void)ctx;
    close(conn);
}

static const ota_tcp_port_t tcp = {.recv = tcp_recv,
                                   .send = tcp_send,
                                   .close = tcp_close,
                                   .connect_host = tcp_connect_host};

/* ---- one node: a RAM slot, a RAM boot record ---- */

typedef struct node {
    ota_update_t update;
    ota_pull_t pull;
    ota_store_port_t slot;
    ota_boot_port_t boot;
    ota_boot_record_t rec;
    uint8_t *mem;
    uint32_t cap, len;
    bool activated, rebooted;
    char name[32];
} node_t;

static int slot_begin(void *ctx, uint32_t size)
{
    node_t *n = ctx;
    if (n->mem == NULL || n->cap < size) {
        free(n->mem);
        n->mem = malloc(size);
        n->cap = n->mem ? size : 0;
    }
    n->len = 0;
    return n->mem ? OTA_OK : OTA_ERR_NO_SPACE;
}

static int slot_write(void *ctx, uint32_t off, const uint8_t *data, size_t len)
{
    node_t *n = ctx;
    if (off != n->len || (uint64_t)off + len > n->cap)
        return OTA_ERR_NO_SPACE;
    memcpy(n->mem + off, data, len);
    n->len += (uint32_t)len;
    return OTA_OK;
}

static int slot_finish(void *ctx, uint32_t size)
{
    node_t *n = ctx;
    return size == n->len ? OTA_OK : OTA_ERR_WRITE;
}

static int slot_activate(void *ctx)
{
    ((node_t *)ctx)->activated = true;
    return OTA_OK;
}

static void slot_abort(void *ctx)
{
    ((node_t *)ctx)->len = 0;
}

static int boot_load(void *ctx, ota_boot_record_t *rec)
{
    *rec = ((node_t *)ctx)->rec;
    return OTA_OK;
}

static int boot_store(void *ctx, const ota_boot_record_t *rec)
{
    ((node_t *)ctx)->rec = *rec;
    return OTA_OK;
}

static void boot_reboot(void *ctx)
{
    ((node_t *)ctx)->rebooted = true;
}

static double now_s(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

static uint32_t now_ms(void)
{
    return (uint32_t)(now_s() * 1000.0);
}

int main(int argc, char **argv)
{
    if (argc != 3) {
        fprintf(stderr, "usage: swarm MANIFEST_URL NODES\n");
        return 2;
    }
    int count = atoi(argv[2]);
    if (count < 1 || count > 100000) {
        fprintf(stderr, "swarm: NODES takes 1 to 100000\n");
        return 2;
    }
    node_t *nodes = calloc((size_t)count, sizeof *nodes);
    if (nodes == NULL) {
        fprintf(stderr, "swarm: out of memory for %d nodes\n", count);
        return 1;
    }
    uint32_t t = now_ms();
    for (int i = 0; i < count; i++) {
        node_t *n = &nodes[i];
        snprintf(n->name, sizeof n->name, "swarm-%05d", i);
        n->slot = (ota_store_port_t){.begin = slot_begin,
                                     .write = slot_write,
                                     .finish = slot_finish,
                                     .activate = slot_activate,
                                     .abort = slot_abort,
                                     .ctx = n};
        n->boot = (ota_boot_port_t){
            .load = boot_load, .store = boot_store, .reboot = boot_reboot, .ctx = n};
        if (ota_update_setup(&n->update, &n->slot, NULL, &ota_posix_crypto, NULL, NULL, NULL) !=
            OTA_OK)
            return 1;
        ota_pull_config_t pc;
        ota_pull_config_default(&pc);
        pc.manifest_url = argv[1];
        pc.node_name = n->name;
        pc.version = "1.0.0";
        pc.chip_family = OTA_MANIFEST_FAMILY_POSIX;
        pc.retry_min_ms = 200;
        pc.retry_max_ms = 2000;
        pc.max_retries = 50;
        const ota_pull_ports_t pp = {.tcp = &tcp, .crypto = &ota_posix_crypto, .boot = &n->boot};
        int rc = ota_pull_setup(&n->pull, &pp, &n->update, &pc, t);
        if (rc != OTA_OK) {
            fprintf(stderr, "swarm: pull setup: %s\n", ota_strerror(rc));
            return 1;
        }
    }
    double t0 = now_s();
    for (int i = 0; i < count; i++)
        ota_pull_enable(&nodes[i].pull, now_ms());
    int done = 0, failed = 0;
    while (done < count && now_s() - t0 < 600) {
        done = failed = 0;
        bool busy = false;
        uint32_t ms = now_ms();
        for (int i = 0; i < count; i++) {
            node_t *n = &nodes[i];
            if (n->rebooted) {
                done++;
                continue;
            }
            int rc = ota_pull_poll(&n->pull, ms);
            if (rc == OTA_ERR_WOULD_BLOCK)
                busy = true;
            int err;
            if (ota_pull_status(&n->pull, &err) == OTA_PULL_FAILED)
                failed++;
        }
        if (!busy)
            usleep(500);
    }
    double secs = now_s() - t0;
    int good = 0;
    for (int i = 0; i < count; i++) {
        good += nodes[i].rebooted && nodes[i].activated;
        free(nodes[i].mem);
    }
    printf("swarm nodes=%d seconds=%.3f updated=%d failed_now=%d\n", count, secs, good, failed);
    free(nodes);
    return good == count ? 0 : 1;
}
