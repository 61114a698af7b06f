/*
 * test_port_mdns.c - the mDNS hooks of the POSIX port (src/port/posix/mdns_posix.c)
 * on a real little network: the test moves itself into a new network namespace
 * (the "node"), makes a second one (the "peer", reached with setns()) and joins
 * them with a veth pair; a second veth pair inside the node, with multicast off,
 * is an interface mDNS must leave alone. Everything
 * vanishes with the process; the machine's own interfaces are never touched.
 *
 * Checked: a loopback bind keeps mDNS off without a socket; which interfaces and
 * addresses mdns_addrs reports (up, running, multicast, not loopback; only the
 * --bind address when one is given) and that it follows interfaces as they change;
 * mdns_recv reports the sender, its port and the arrival interface, cuts long
 * datagrams and drops those from other interfaces; mdns_recv_meta says whether the
 * source is on one of the interface's subnets and with which TTL / hop limit it came; mdns_send reaches the groups and
 * unicast peers on the right interface with TTL 255 from port 5353; two nodes (and a
 * plain SO_REUSEADDR socket, as Avahi has) share the port; ota_posix_wait wakes for
 * mDNS traffic; ota_posix_free closes everything.
 *
 * Needs root (CAP_SYS_ADMIN for namespaces) and the ip tool: without them the
 * network tests are skipped with the reason printed.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <net/if.h>
#include <netinet/in.h>
#include <poll.h>
#include <sched.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "ota/errors.h"
#include "ota_posix.h"
#include "port_test_util.h"

/* ------------------------------------------------------------------ the lab */

static bool lab_ok;
static bool lab_v6; /* IPv6 in the kernel, link-local addresses on the veths */
static char lab_why[512];
static int ns_node = -1, ns_peer = -1;
static unsigned if_ta, if_td, if_tb; /* veth to the peer, veth without multicast (node);
                                      * the peer's end */
static uint8_t ll_ta[16], ll_tb[16]; /* the veths' IPv6 link-local addresses */
static const char *ip_tool;

static const uint8_t A_TA[4] = {10, 77, 0, 1}, A_TB[4] = {10, 77, 0, 2},
                     A_TD[4] = {10, 78, 0, 1};

static int sh(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static int sh(const char *fmt, ...)
{
    char cmd[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(cmd, sizeof cmd, fmt, ap);
    va_end(ap);
    char full[600];
    snprintf(full, sizeof full, "%s >/dev/null 2>&1", cmd);
    int rc = system(full);
    return (rc != -1 && WIFEXITED(rc)) ? WEXITSTATUS(rc) : -1;
}

static void write_proc(const char *path, const char *v)
{
    int fd = open(path, O_WRONLY | O_CLOEXEC);
    if (fd >= 0) {
        (void)!write(fd, v, strlen(v));
        close(fd);
    }
}

static void in_ns(int fd)
{
    if (setns(fd, CLONE_NEWNET) != 0) {
        fprintf(stderr, "setns: %s\n", strerror(errno));
        abort();
    }
}

/* The link-local address of ifindex in the current namespace, from
 * /proc/net/if_inet6 (not tentative). */
static bool link_local_of(unsigned ifindex, uint8_t *out)
{
    FILE *f = fopen("/proc/net/if_inet6", "r");
    if (f == NULL)
        return false;
    char hex[33];
    unsigned idx, plen, scope, flags;
    char name[32];
    bool found = false;
    while (!found && fscanf(f, "%32s %x %x %x %x %31s", hex, &idx, &plen, &scope, &flags,
                            name) == 6) {
        if (idx != ifindex || strncmp(hex, "fe80", 4) != 0 || (flags & 0x40) != 0)
            continue;
        for (int i = 0; i < 16; i++) {
            unsigned b;
            sscanf(hex + 2 * i, "%2x", &b);
            out[i] = (uint8_t)b;
        }
        found = true;
    }
    fclose(f);
    return found;
}

static bool wait_link_local(int ns, unsigned ifindex, uint8_t *out)
{
    in_ns(ns);
    bool ok = false;
    for (int i = 0; i < 300 && !ok; i++) {
        ok = link_local_of(ifindex, out);
        if (!ok)
            usleep(10000);
    }
    in_ns(ns_node);
    return ok;
}

static bool lab_fail(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static bool lab_fail(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(lab_why, sizeof lab_why, fmt, ap);
    va_end(ap);
    return false;
}

static bool lab_build(void)
{
    static const char *const tools[] = {"/usr/sbin/ip", "/sbin/ip", "/usr/bin/ip", "/bin/ip"};
    for (size_t i = 0; i < sizeof tools / sizeof tools[0] && ip_tool == NULL; i++)
        if (access(tools[i], X_OK) == 0)
            ip_tool = tools[i];
    if (ip_tool == NULL)
        return lab_fail("the ip tool (iproute2) is not installed");
    if (unshare(CLONE_NEWNET) != 0)
        return lab_fail("cannot create a network namespace (%s): needs root", strerror(errno));
    ns_node = open("/proc/self/ns/net", O_RDONLY | O_CLOEXEC);
    /* the peer namespace: a child makes it and waits; we keep a handle on it */
    int p[2];
    if (ns_node < 0 || pipe(p) != 0)
        return lab_fail("cannot keep the namespace: %s", strerror(errno));
    pid_t child = fork();
    if (child < 0)
        return lab_fail("fork: %s", strerror(errno));
    if (child == 0) {
        char ok = unshare(CLONE_NEWNET) == 0 ? 'y' : 'n';
        (void)!write(p[1], &ok, 1);
        pause();
        _exit(0);
    }
    char ok = 'n';
    (void)!read(p[0], &ok, 1);
    close(p[0]);
    close(p[1]);
    char path[64];
    snprintf(path, sizeof path, "/proc/%d/ns/net", (int)child);
    ns_peer = ok == 'y' ? open(path, O_RDONLY | O_CLOEXEC) : -1;
    bool have6 = access("/proc/sys/net/ipv6", F_OK) == 0;
    /* no duplicate address detection: link-local addresses usable at once */
    for (int side = 0; side < 2 && have6; side++) {
        if (side == 1 && ns_peer >= 0)
            in_ns(ns_peer);
        write_proc("/proc/sys/net/ipv6/conf/all/accept_dad", "0");
        write_proc("/proc/sys/net/ipv6/conf/default/accept_dad", "0");
        in_ns(ns_node);
    }
    int rc = ns_peer < 0 ? -1
                         : sh("%s link add ta type veth peer name tb netns %d", ip_tool,
                              (int)child);
    kill(child, SIGKILL);
    waitpid(child, NULL, 0);
    if (rc != 0)
        return lab_fail("cannot create a veth pair between two namespaces");
    if (sh("%s link set lo up", ip_tool) != 0 ||
        sh("%s addr add 10.77.0.1/24 dev ta", ip_tool) != 0 ||
        sh("%s link set ta up", ip_tool) != 0 ||
        sh("%s link add td type veth peer name td2", ip_tool) != 0 ||
        sh("%s link set td multicast off", ip_tool) != 0 ||
        sh("%s link set td2 multicast off", ip_tool) != 0 ||
        sh("%s addr add 10.78.0.1/24 dev td", ip_tool) != 0 ||
        sh("%s link set td2 up", ip_tool) != 0 || sh("%s link set td up", ip_tool) != 0)
        return lab_fail("cannot configure the node's interfaces");
    if_ta = if_nametoindex("ta");
    if_td = if_nametoindex("td");
    in_ns(ns_peer);
    rc = sh("%s link set lo up", ip_tool) | sh("%s addr add 10.77.0.2/24 dev tb", ip_tool) |
         sh("%s link set tb up", ip_tool);
    if_tb = if_nametoindex("tb");
    in_ns(ns_node);
    if (rc != 0 || if_ta == 0 || if_tb == 0 || if_td == 0)
        return lab_fail("cannot configure the peer's interface");
    lab_v6 = have6 && wait_link_local(ns_node, if_ta, ll_ta) &&
             wait_link_local(ns_peer, if_tb, ll_tb);
    return true;
}

#define NEED_LAB()                                                                         \
    do {                                                                                   \
        if (!lab_ok) {                                                                     \
            print_message("skipped: %s\n", lab_why);                                       \
            skip();                                                                        \
        }                                                                                  \
    } while (0)

/* ------------------------------------------------------------------ fixture */

typedef struct fixture {
    char dir[4096];
    ota_posix_t ctx;
    bool up;
} fixture_t;

static void node_init(fixture_t *f)
{
    ota_posix_options_t o = {
        .state_dir = f->dir, .bind_addr = "127.0.0.1", .port = 0, .slot_size = 1u << 20};
    char err[512] = "";
    if (ota_posix_init(&f->ctx, &o, err, sizeof err) != 0)
        fail_msg("ota_posix_init: %s", err);
    f->up = true;
}

static int setup(void **state)
{
    fixture_t *f = calloc(1, sizeof *f);
    assert_non_null(f);
    tu_mkdtemp(f->dir);
    unsetenv("OTA_BOOT_SLOT");
    node_init(f);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture_t *f = *state;
    if (f->up)
        ota_posix_free(&f->ctx);
    tu_rm_rf(f->dir);
    free(f);
    return 0;
}

static void open_mdns(fixture_t *f, const char *bind)
{
    char why[300] = "";
    int rc = ota_posix_mdns_open(&f->ctx, bind, why, sizeof why);
    if (rc != OTA_POSIX_MDNS_ON)
        fail_msg("ota_posix_mdns_open(%s) = %d: %s", bind, rc, why);
}

/* ------------------------------------------------------------------ helpers */

/* A UDP socket in the peer namespace (or the node's), bound to port (0: any). */
static int peer_socket(int ns, int family, uint16_t port)
{
    in_ns(ns);
    int fd = socket(family, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    in_ns(ns_node);
    assert_true(fd >= 0);
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one);
    struct sockaddr_storage ss;
    memset(&ss, 0, sizeof ss);
    socklen_t sl;
    if (family == AF_INET) {
        struct sockaddr_in *a = (struct sockaddr_in *)&ss;
        a->sin_family = AF_INET;
        a->sin_port = htons(port);
        sl = sizeof *a;
        setsockopt(fd, IPPROTO_IP, IP_RECVTTL, &one, sizeof one);
    } else {
        struct sockaddr_in6 *a = (struct sockaddr_in6 *)&ss;
        a->sin6_family = AF_INET6;
        a->sin6_port = htons(port);
        sl = sizeof *a;
        setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof one);
        setsockopt(fd, IPPROTO_IPV6, IPV6_RECVHOPLIMIT, &one, sizeof one);
    }
    assert_int_equal(bind(fd, (struct sockaddr *)&ss, sl), 0);
    return fd;
}

static uint16_t port_of(int fd)
{
    struct sockaddr_storage ss;
    socklen_t sl = sizeof ss;
    assert_int_equal(getsockname(fd, (struct sockaddr *)&ss, &sl), 0);
    return ntohs(ss.ss_family == AF_INET ? ((struct sockaddr_in *)&ss)->sin_port
                                         : ((struct sockaddr_in6 *)&ss)->sin6_port);
}

static void join_group(int fd, int family, unsigned ifindex)
{
    if (family == AF_INET) {
        struct ip_mreqn mr;
        memset(&mr, 0, sizeof mr);
        inet_pton(AF_INET, "224.0.0.251", &mr.imr_multiaddr);
        mr.imr_ifindex = (int)ifindex;
        assert_int_equal(setsockopt(fd, IPPROTO_IP, IP_ADD_MEMBERSHIP, &mr, sizeof mr), 0);
    } else {
        struct ipv6_mreq mr;
        memset(&mr, 0, sizeof mr);
        inet_pton(AF_INET6, "ff02::fb", &mr.ipv6mr_multiaddr);
        mr.ipv6mr_interface = ifindex;
        assert_int_equal(setsockopt(fd, IPPROTO_IPV6, IPV6_ADD_MEMBERSHIP, &mr, sizeof mr), 0);
    }
}

/* Send len bytes from fd to the mDNS group (out of ifindex) or to addr:port. */
static void send_from(int fd, int family, unsigned ifindex, const char *addr, uint16_t port,
                      const void *buf, size_t len)
{
    struct sockaddr_storage ss;
    memset(&ss, 0, sizeof ss);
    socklen_t sl;
    if (family == AF_INET) {
        struct ip_mreqn mr;
        memset(&mr, 0, sizeof mr);
        mr.imr_ifindex = (int)ifindex;
        setsockopt(fd, IPPROTO_IP, IP_MULTICAST_IF, &mr, sizeof mr);
        struct sockaddr_in *a = (struct sockaddr_in *)&ss;
        a->sin_family = AF_INET;
        a->sin_port = htons(port);
        assert_int_equal(inet_pton(AF_INET, addr, &a->sin_addr), 1);
        sl = sizeof *a;
    } else {
        int idx = (int)ifindex;
        setsockopt(fd, IPPROTO_IPV6, IPV6_MULTICAST_IF, &idx, sizeof idx);
        struct sockaddr_in6 *a = (struct sockaddr_in6 *)&ss;
        a->sin6_family = AF_INET6;
        a->sin6_port = htons(port);
        a->sin6_scope_id = ifindex;
        assert_int_equal(inet_pton(AF_INET6, addr, &a->sin6_addr), 1);
        sl = sizeof *a;
    }
    assert_int_equal(sendto(fd, buf, len, 0, (struct sockaddr *)&ss, sl), (ssize_t)len);
}

/* One datagram from fd within 2 s: its length, the sender, and the IP TTL / hop
 * limit it arrived with. */
static ssize_t recv_peer(int fd, void *buf, size_t cap, struct sockaddr_storage *from, int *ttl)
{
    struct pollfd pf = {.fd = fd, .events = POLLIN};
    if (poll(&pf, 1, 2000) != 1)
        return -1;
    struct iovec iov = {.iov_base = buf, .iov_len = cap};
    char cb[256];
    struct msghdr mh = {.msg_name = from, .msg_namelen = sizeof *from, .msg_iov = &iov,
                        .msg_iovlen = 1, .msg_control = cb, .msg_controllen = sizeof cb};
    ssize_t n = recvmsg(fd, &mh, MSG_DONTWAIT);
    *ttl = -1;
    for (struct cmsghdr *c = CMSG_FIRSTHDR(&mh); c != NULL; c = CMSG_NXTHDR(&mh, c))
        if ((c->cmsg_level == IPPROTO_IP && c->cmsg_type == IP_TTL) ||
            (c->cmsg_level == IPPROTO_IPV6 && c->cmsg_type == IPV6_HOPLIMIT))
            memcpy(ttl, CMSG_DATA(c), sizeof *ttl);
    return n;
}

/* The node's next datagram, waiting up to 2 s through ota_posix_wait. */
static int node_recv(fixture_t *f, uint8_t *buf, size_t len, ota_ip_t *from, uint16_t *port)
{
    for (int i = 0; i < 40; i++) {
        int n = f->ctx.ports.mdns.recv(&f->ctx, buf, len, from, port);
        if (n != OTA_ERR_WOULD_BLOCK)
            return n;
        ota_posix_wait(&f->ctx, 50);
    }
    return OTA_ERR_WOULD_BLOCK;
}

static bool has_addr(const ota_ip_t *a, int n, int family, const uint8_t *addr, unsigned ifindex)
{
    for (int i = 0; i < n; i++)
        if (a[i].family == family && a[i].ifindex == ifindex &&
            memcmp(a[i].addr, addr, family == 4 ? 4 : 16) == 0)
            return true;
    return false;
}

static bool has_ifindex(const ota_ip_t *a, int n, unsigned ifindex)
{
    for (int i = 0; i < n; i++)
        if (a[i].ifindex == ifindex)
            return true;
    return false;
}

/* ------------------------------------------------------------------ tests */

static void test_loopback_bind_keeps_mdns_off(void **state)
{
    fixture_t *f = *state;
    static const char *const loops[] = {"127.0.0.1", "127.1.2.3", "::1", "::ffff:127.0.0.1"};
    for (size_t i = 0; i < sizeof loops / sizeof loops[0]; i++) {
        char why[300] = "";
        assert_int_equal(ota_posix_mdns_open(&f->ctx, loops[i], why, sizeof why),
                         OTA_POSIX_MDNS_OFF);
        assert_non_null(strstr(why, "off: bound to loopback"));
        assert_non_null(strstr(why, loops[i]));
        assert_int_equal(f->ctx.mdns.fd4, -1);
        assert_int_equal(f->ctx.mdns.fd6, -1);
        assert_null(f->ctx.ports.mdns.recv);
        assert_null(f->ctx.ports.mdns.send);
        assert_null(f->ctx.ports.mdns.addrs);
    }
    char why[300] = "";
    assert_int_equal(ota_posix_mdns_open(&f->ctx, "nonsense", why, sizeof why),
                     OTA_ERR_INVALID_ARG);
    assert_non_null(strstr(why, "nonsense"));
    assert_null(f->ctx.ports.mdns.recv);
}

static void test_addrs_every_multicast_interface_but_loopback(void **state)
{
    NEED_LAB();
    fixture_t *f = *state;
    open_mdns(f, "0.0.0.0");
    assert_non_null(f->ctx.ports.mdns.recv);
    assert_non_null(f->ctx.ports.mdns.send);
    assert_non_null(f->ctx.ports.mdns.addrs);
    assert_true(f->ctx.mdns.fd4 >= 0);
    ota_ip_t a[16];
    int n = f->ctx.ports.mdns.addrs(&f->ctx, a, 16);
    /* ta only: lo is loopback, td is not multicast-capable */
    assert_true(has_addr(a, n, 4, A_TA, if_ta));
    assert_false(has_ifindex(a, n, if_td));
    assert_false(has_ifindex(a, n, 1));
    if (lab_v6)
        assert_true(has_addr(a, n, 6, ll_ta, if_ta));
    assert_int_equal(n, lab_v6 ? 2 : 1);
    assert_int_equal(a[0].family, 4); /* IPv4 first: what is cut when max is small */
    assert_int_equal(f->ctx.ports.mdns.addrs(&f->ctx, a, 1), 1);
    assert_true(has_addr(a, 1, 4, A_TA, if_ta));

    /* an interface that becomes usable is found on the next call, and dropped again
     * when it goes down */
    assert_int_equal(sh("%s link set td multicast on", ip_tool), 0);
    n = f->ctx.ports.mdns.addrs(&f->ctx, a, 16);
    assert_true(has_addr(a, n, 4, A_TD, if_td));
    assert_true(has_addr(a, n, 4, A_TA, if_ta));
    assert_int_equal(sh("%s link set td down", ip_tool), 0);
    n = f->ctx.ports.mdns.addrs(&f->ctx, a, 16);
    assert_false(has_ifindex(a, n, if_td));
    assert_true(has_addr(a, n, 4, A_TA, if_ta));
    assert_int_equal(sh("%s link set td multicast off", ip_tool), 0);
    assert_int_equal(sh("%s link set td up", ip_tool), 0);
}

static void test_a_specific_bind_serves_only_that_address(void **state)
{
    NEED_LAB();
    fixture_t *f = *state;
    open_mdns(f, "10.77.0.1");
    assert_true(f->ctx.mdns.fd4 >= 0);
    assert_int_equal(f->ctx.mdns.fd6, -1); /* an IPv4 address: no IPv6 socket */
    ota_ip_t a[16];
    int n = f->ctx.ports.mdns.addrs(&f->ctx, a, 16);
    assert_int_equal(n, 1);
    assert_true(has_addr(a, n, 4, A_TA, if_ta));
    ota_ip_t to = {.family = 6, .ifindex = if_ta};
    memcpy(to.addr, ll_tb, 16);
    assert_int_equal(f->ctx.ports.mdns.send(&f->ctx, (const uint8_t *)"x", 1, &to, 5353),
                     OTA_ERR_IO);
    /* an address on no interface: mDNS runs but has nothing to serve yet */
    open_mdns(f, "10.99.99.99");
    assert_int_equal(f->ctx.ports.mdns.addrs(&f->ctx, a, 16), 0);
}

static void test_recv_reports_sender_port_and_interface(void **state)
{
    NEED_LAB();
    fixture_t *f = *state;
    open_mdns(f, "0.0.0.0");
    ota_ip_t a[16];
    f->ctx.ports.mdns.addrs(&f->ctx, a, 16); /* joins the groups on ta */
    uint8_t buf[2048];
    ota_ip_t from;
    uint16_t port = 0;
    assert_int_equal(f->ctx.ports.mdns.recv(&f->ctx, buf, sizeof buf, &from, &port),
                     OTA_ERR_WOULD_BLOCK);

    /* multicast from the peer, from an ephemeral port (a legacy querier) */
    int p4 = peer_socket(ns_peer, AF_INET, 0);
    send_from(p4, AF_INET, if_tb, "224.0.0.251", 5353, "query-4", 7);
    assert_int_equal(node_recv(f, buf, sizeof buf, &from, &port), 7);
    assert_memory_equal(buf, "query-4", 7);
    assert_int_equal(from.family, 4);
    assert_memory_equal(from.addr, A_TB, 4);
    assert_int_equal(from.ifindex, if_ta);
    assert_int_equal(port, port_of(p4));
    assert_int_equal(f->ctx.ports.mdns.recv(&f->ctx, buf, sizeof buf, &from, &port),
                     OTA_ERR_WOULD_BLOCK);

    /* unicast to the node's address; a long datagram is cut to the buffer */
    uint8_t big[1500];
    for (size_t i = 0; i < sizeof big; i++)
        big[i] = (uint8_t)i;
    send_from(p4, AF_INET, if_tb, "10.77.0.1", 5353, big, sizeof big);
    assert_int_equal(node_recv(f, buf, 100, &from, &port), 100);
    assert_memory_equal(buf, big, 100);
    assert_int_equal(from.ifindex, if_ta);
    close(p4);

    /* from the node's own loopback: not an interface mDNS serves, dropped */
    int lo = peer_socket(ns_node, AF_INET, 0);
    send_from(lo, AF_INET, 1, "127.0.0.1", 5353, "lo", 2);
    usleep(50000);
    assert_int_equal(node_recv(f, buf, sizeof buf, &from, &port), OTA_ERR_WOULD_BLOCK);
    close(lo);

    if (!lab_v6)
        return;
    int p6 = peer_socket(ns_peer, AF_INET6, 5353); /* a peer responder's port */
    send_from(p6, AF_INET6, if_tb, "ff02::fb", 5353, "query-6", 7);
    assert_int_equal(node_recv(f, buf, sizeof buf, &from, &port), 7);
    assert_memory_equal(buf, "query-6", 7);
    assert_int_equal(from.family, 6);
    assert_memory_equal(from.addr, ll_tb, 16);
    assert_int_equal(from.ifindex, if_ta);
    assert_int_equal(port, 5353);
    close(p6);
}

/* A UDP socket in ns bound to addr (port 0). */
static int bound_socket(int ns, int family, const char *addr)
{
    in_ns(ns);
    int fd = socket(family, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    in_ns(ns_node);
    assert_true(fd >= 0);
    struct sockaddr_storage ss;
    memset(&ss, 0, sizeof ss);
    socklen_t sl;
    if (family == AF_INET) {
        struct sockaddr_in *a = (struct sockaddr_in *)&ss;
        a->sin_family = AF_INET;
        assert_int_equal(inet_pton(AF_INET, addr, &a->sin_addr), 1);
        sl = sizeof *a;
    } else {
        int one = 1;
        setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof one);
        struct sockaddr_in6 *a = (struct sockaddr_in6 *)&ss;
        a->sin6_family = AF_INET6;
        assert_int_equal(inet_pton(AF_INET6, addr, &a->sin6_addr), 1);
        if (strncmp(addr, "fe80:", 5) == 0)
            a->sin6_scope_id = if_tb; /* the peer's only interface */
        sl = sizeof *a;
    }
    if (bind(fd, (struct sockaddr *)&ss, sl) != 0)
        fail_msg("bind %s: %s", addr, strerror(errno));
    return fd;
}

static void set_ttl(int fd, int family, int ttl)
{
    if (family == AF_INET) {
        setsockopt(fd, IPPROTO_IP, IP_MULTICAST_TTL, &ttl, sizeof ttl);
        setsockopt(fd, IPPROTO_IP, IP_TTL, &ttl, sizeof ttl);
    } else {
        setsockopt(fd, IPPROTO_IPV6, IPV6_MULTICAST_HOPS, &ttl, sizeof ttl);
        setsockopt(fd, IPPROTO_IPV6, IPV6_UNICAST_HOPS, &ttl, sizeof ttl);
    }
}

/* The node's next datagram through mdns_recv_meta, waiting up to 2 s. */
static int node_recv_meta(fixture_t *f, uint8_t *buf, size_t len, ota_ip_t *from,
                          ota_mdns_rx_meta_t *meta)
{
    uint16_t port;
    for (int i = 0; i < 40; i++) {
        memset(meta, 0, sizeof *meta);
        int n = f->ctx.ports.mdns.recv_meta(&f->ctx, buf, len, from, &port, meta);
        if (n != OTA_ERR_WOULD_BLOCK)
            return n;
        ota_posix_wait(&f->ctx, 50);
    }
    return OTA_ERR_WOULD_BLOCK;
}

static void expect_meta(fixture_t *f, const char *payload, uint8_t on_link, int ttl)
{
    uint8_t buf[256];
    ota_ip_t from;
    ota_mdns_rx_meta_t meta;
    size_t n = strlen(payload);
    assert_int_equal(node_recv_meta(f, buf, sizeof buf, &from, &meta), (int)n);
    assert_memory_equal(buf, payload, n);
    assert_int_equal(from.ifindex, if_ta);
    if (meta.on_link != on_link || !meta.ttl_known || meta.ttl != ttl)
        fail_msg("%s: on_link %u ttl %s%u, want on_link %u ttl %d", payload,
                 (unsigned)meta.on_link, meta.ttl_known ? "" : "unknown ", (unsigned)meta.ttl,
                 (unsigned)on_link, ttl);
}

/* The facts of RFC 6762 11 for the core: the source on one of the arrival
 * interface's subnets or not, and the TTL / hop limit as it arrived. */
static void test_recv_meta_reports_link_and_ttl(void **state)
{
    NEED_LAB();
    fixture_t *f = *state;
    open_mdns(f, "10.77.0.1"); /* a specific bind: the interface's subnets all the same */
    assert_non_null(f->ctx.ports.mdns.recv_meta);
    in_ns(ns_peer);
    int rc = sh("%s addr add 10.99.0.2/24 dev tb", ip_tool);
    if (lab_v6)
        rc |= sh("%s addr add 2001:db8:99::2/64 dev tb nodad", ip_tool);
    in_ns(ns_node);
    assert_int_equal(rc, 0);
    ota_ip_t a[16];
    f->ctx.ports.mdns.addrs(&f->ctx, a, 16);

    int on = bound_socket(ns_peer, AF_INET, "10.77.0.2");
    set_ttl(on, AF_INET, 255);
    send_from(on, AF_INET, if_tb, "224.0.0.251", 5353, "on-255", 6);
    expect_meta(f, "on-255", OTA_MDNS_LINK_ON, 255);
    set_ttl(on, AF_INET, 64);
    send_from(on, AF_INET, if_tb, "10.77.0.1", 5353, "on-64", 5);
    expect_meta(f, "on-64", OTA_MDNS_LINK_ON, 64);
    close(on);
    /* another subnet on the same wire: off the link, TTL 255 or not */
    int off = bound_socket(ns_peer, AF_INET, "10.99.0.2");
    set_ttl(off, AF_INET, 255);
    send_from(off, AF_INET, if_tb, "224.0.0.251", 5353, "off-255", 7);
    expect_meta(f, "off-255", OTA_MDNS_LINK_OFF, 255);
    send_from(off, AF_INET, if_tb, "10.77.0.1", 5353, "off-uni", 7);
    expect_meta(f, "off-uni", OTA_MDNS_LINK_OFF, 255);
    /* the node gets an address there too: on the link from the next refresh */
    assert_int_equal(sh("%s addr add 10.99.0.1/24 dev ta", ip_tool), 0);
    f->ctx.ports.mdns.addrs(&f->ctx, a, 16);
    send_from(off, AF_INET, if_tb, "224.0.0.251", 5353, "now-on", 6);
    expect_meta(f, "now-on", OTA_MDNS_LINK_ON, 255);
    assert_int_equal(sh("%s addr del 10.99.0.1/24 dev ta", ip_tool), 0);
    f->ctx.ports.mdns.addrs(&f->ctx, a, 16);
    send_from(off, AF_INET, if_tb, "224.0.0.251", 5353, "off-again", 9);
    expect_meta(f, "off-again", OTA_MDNS_LINK_OFF, 255);
    close(off);
    /* the plain hook still works and says nothing of it */
    int p4 = bound_socket(ns_peer, AF_INET, "10.77.0.2");
    send_from(p4, AF_INET, if_tb, "224.0.0.251", 5353, "plain", 5);
    uint8_t buf[64];
    ota_ip_t from;
    uint16_t port;
    assert_int_equal(node_recv(f, buf, sizeof buf, &from, &port), 5);
    close(p4);

    if (lab_v6) {
        ota_posix_mdns_close(&f->ctx);
        open_mdns(f, "::");
        f->ctx.ports.mdns.addrs(&f->ctx, a, 16);
        char ll[INET6_ADDRSTRLEN];
        inet_ntop(AF_INET6, ll_tb, ll, sizeof ll);
        int s6 = bound_socket(ns_peer, AF_INET6, ll);
        set_ttl(s6, AF_INET6, 255);
        send_from(s6, AF_INET6, if_tb, "ff02::fb", 5353, "ll-255", 6);
        expect_meta(f, "ll-255", OTA_MDNS_LINK_ON, 255);
        set_ttl(s6, AF_INET6, 7);
        send_from(s6, AF_INET6, if_tb, "ff02::fb", 5353, "ll-7", 4);
        expect_meta(f, "ll-7", OTA_MDNS_LINK_ON, 7);
        close(s6);
        s6 = bound_socket(ns_peer, AF_INET6, "2001:db8:99::2");
        set_ttl(s6, AF_INET6, 255);
        send_from(s6, AF_INET6, if_tb, "ff02::fb", 5353, "g-off", 5);
        expect_meta(f, "g-off", OTA_MDNS_LINK_OFF, 255);
        assert_int_equal(sh("%s addr add 2001:db8:99::1/64 dev ta nodad", ip_tool), 0);
        f->ctx.ports.mdns.addrs(&f->ctx, a, 16);
        send_from(s6, AF_INET6, if_tb, "ff02::fb", 5353, "g-on", 4);
        expect_meta(f, "g-on", OTA_MDNS_LINK_ON, 255);
        assert_int_equal(sh("%s addr del 2001:db8:99::1/64 dev ta", ip_tool), 0);
        close(s6);
    }
    in_ns(ns_peer);
    sh("%s addr del 10.99.0.2/24 dev tb", ip_tool);
    if (lab_v6)
        sh("%s addr del 2001:db8:99::2/64 dev tb", ip_tool);
    in_ns(ns_node);
}

static void test_send_reaches_groups_and_peers_on_the_interface(void **state)
{
    NEED_LAB();
    fixture_t *f = *state;
    open_mdns(f, "0.0.0.0");
    ota_ip_t a[16];
    f->ctx.ports.mdns.addrs(&f->ctx, a, 16);
    uint8_t buf[64];
    struct sockaddr_storage src;
    int ttl;

    int g4 = peer_socket(ns_peer, AF_INET, 5353);
    join_group(g4, AF_INET, if_tb);
    ota_ip_t to = {.family = 4, .ifindex = if_ta, .addr = {224, 0, 0, 251}};
    assert_int_equal(f->ctx.ports.mdns.send(&f->ctx, (const uint8_t *)"ann-4", 5, &to, 5353),
                     OTA_OK);
    assert_int_equal(recv_peer(g4, buf, sizeof buf, &src, &ttl), 5);
    assert_memory_equal(buf, "ann-4", 5);
    assert_memory_equal(&((struct sockaddr_in *)&src)->sin_addr, A_TA, 4);
    assert_int_equal(ntohs(((struct sockaddr_in *)&src)->sin_port), 5353);
    assert_int_equal(ttl, 255);
    close(g4);

    int u4 = peer_socket(ns_peer, AF_INET, 0);
    ota_ip_t uto = {.family = 4, .ifindex = if_ta};
    memcpy(uto.addr, A_TB, 4);
    assert_int_equal(
        f->ctx.ports.mdns.send(&f->ctx, (const uint8_t *)"uni-4", 5, &uto, port_of(u4)), OTA_OK);
    assert_int_equal(recv_peer(u4, buf, sizeof buf, &src, &ttl), 5);
    assert_memory_equal(buf, "uni-4", 5);
    assert_int_equal(ntohs(((struct sockaddr_in *)&src)->sin_port), 5353);
    assert_int_equal(ttl, 255);
    close(u4);

    /* nowhere to go: an error (logged once), not a crash or a block */
    ota_ip_t lost = {.family = 4, .ifindex = if_ta, .addr = {192, 0, 2, 1}};
    for (int i = 0; i < 3; i++)
        assert_int_equal(f->ctx.ports.mdns.send(&f->ctx, (const uint8_t *)"x", 1, &lost, 5353),
                         OTA_ERR_IO);
    ota_ip_t bad = {.family = 5};
    assert_int_equal(f->ctx.ports.mdns.send(&f->ctx, (const uint8_t *)"x", 1, &bad, 5353),
                     OTA_ERR_IO);

    if (!lab_v6)
        return;
    int g6 = peer_socket(ns_peer, AF_INET6, 5353);
    join_group(g6, AF_INET6, if_tb);
    ota_ip_t to6 = {.family = 6, .ifindex = if_ta};
    inet_pton(AF_INET6, "ff02::fb", to6.addr);
    assert_int_equal(f->ctx.ports.mdns.send(&f->ctx, (const uint8_t *)"ann-6", 5, &to6, 5353),
                     OTA_OK);
    assert_int_equal(recv_peer(g6, buf, sizeof buf, &src, &ttl), 5);
    assert_memory_equal(buf, "ann-6", 5);
    assert_memory_equal(&((struct sockaddr_in6 *)&src)->sin6_addr, ll_ta, 16);
    assert_int_equal(ttl, 255);
    close(g6);

    int u6 = peer_socket(ns_peer, AF_INET6, 0);
    ota_ip_t uto6 = {.family = 6, .ifindex = if_ta}; /* link-local: needs the interface */
    memcpy(uto6.addr, ll_tb, 16);
    assert_int_equal(
        f->ctx.ports.mdns.send(&f->ctx, (const uint8_t *)"uni-6", 5, &uto6, port_of(u6)), OTA_OK);
    assert_int_equal(recv_peer(u6, buf, sizeof buf, &src, &ttl), 5);
    assert_memory_equal(buf, "uni-6", 5);
    assert_int_equal(ttl, 255);
    close(u6);
}

static void test_nodes_and_other_responders_share_the_port(void **state)
{
    NEED_LAB();
    fixture_t *f = *state;
    /* a responder that came first with SO_REUSEADDR only (as Avahi does) */
    in_ns(ns_node);
    int avahi = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    int one = 1;
    setsockopt(avahi, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons(5353)};
    assert_int_equal(bind(avahi, (struct sockaddr *)&sa, sizeof sa), 0);
    open_mdns(f, "0.0.0.0");
    /* a second node in the same process (a fleet) or on the same host */
    fixture_t *g = calloc(1, sizeof *g);
    assert_non_null(g);
    tu_mkdtemp(g->dir);
    node_init(g);
    open_mdns(g, "0.0.0.0");
    ota_ip_t a[16];
    f->ctx.ports.mdns.addrs(&f->ctx, a, 16);
    g->ctx.ports.mdns.addrs(&g->ctx, a, 16);
    /* a multicast from the peer reaches both */
    int p4 = peer_socket(ns_peer, AF_INET, 5353);
    send_from(p4, AF_INET, if_tb, "224.0.0.251", 5353, "both", 4);
    uint8_t buf[64];
    ota_ip_t from;
    uint16_t port;
    assert_int_equal(node_recv(f, buf, sizeof buf, &from, &port), 4);
    assert_int_equal(node_recv(g, buf, sizeof buf, &from, &port), 4);
    /* and one node hears the other's multicast (its probes), looped back */
    ota_ip_t to = {.family = 4, .ifindex = if_ta, .addr = {224, 0, 0, 251}};
    assert_int_equal(f->ctx.ports.mdns.send(&f->ctx, (const uint8_t *)"probe", 5, &to, 5353),
                     OTA_OK);
    assert_int_equal(node_recv(g, buf, sizeof buf, &from, &port), 5);
    assert_memory_equal(buf, "probe", 5);
    assert_int_equal(port, 5353);
    close(p4);
    close(avahi);
    ota_posix_free(&g->ctx);
    tu_rm_rf(g->dir);
    free(g);
}

static double elapsed_ms(const struct timespec *t0)
{
    struct timespec t1;
    clock_gettime(CLOCK_MONOTONIC, &t1);
    return (double)(t1.tv_sec - t0->tv_sec) * 1000.0 + (double)(t1.tv_nsec - t0->tv_nsec) / 1e6;
}

static void test_wait_wakes_for_mdns_and_free_closes(void **state)
{
    NEED_LAB();
    fixture_t *f = *state;
    open_mdns(f, "0.0.0.0");
    ota_ip_t a[16];
    f->ctx.ports.mdns.addrs(&f->ctx, a, 16);
    int p4 = peer_socket(ns_peer, AF_INET, 0);
    send_from(p4, AF_INET, if_tb, "224.0.0.251", 5353, "wake", 4);
    struct timespec t0;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    ota_posix_wait(&f->ctx, 3000);
    assert_true(elapsed_ms(&t0) < 2000);
    close(p4);
    int fd4 = f->ctx.mdns.fd4;
    ota_posix_free(&f->ctx);
    f->up = false;
    assert_int_equal(f->ctx.mdns.fd4, -1);
    assert_int_equal(f->ctx.mdns.fd6, -1);
    assert_null(f->ctx.ports.mdns.recv);
    assert_int_equal(fcntl(fd4, F_GETFD), -1); /* closed */
    ota_posix_free(&f->ctx);                    /* twice is harmless */
}

int main(void)
{
    lab_ok = lab_build();
    if (!lab_ok)
        printf("test_port_mdns: network tests skipped: %s\n", lab_why);
    else if (!lab_v6)
        printf("test_port_mdns: no IPv6 link-local addresses: IPv6 checks skipped\n");
    fflush(stdout);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_loopback_bind_keeps_mdns_off, setup, teardown),
        cmocka_unit_test_setup_teardown(test_addrs_every_multicast_interface_but_loopback,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_a_specific_bind_serves_only_that_address, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_recv_reports_sender_port_and_interface, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_recv_meta_reports_link_and_ttl, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_send_reaches_groups_and_peers_on_the_interface,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_nodes_and_other_responders_share_the_port, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_wait_wakes_for_mdns_and_free_closes, setup,
                                        teardown),
    };
    int rc = cmocka_run_group_tests_name("port_mdns", tests, NULL, NULL);
    if (ns_node >= 0)
        close(ns_node);
    if (ns_peer >= 0)
        close(ns_peer);
    return rc;
}
