/*
 * mdns_posix.c - the mDNS hooks of the POSIX port (mdns_recv, mdns_send,
 * mdns_addrs of ota/port.h) on Linux: one IPv4 and one IPv6 UDP socket on port
 * 5353, shared with any other responder of the host (Avahi, a second node), joined
 * to 224.0.0.251 / ff02::fb on each interface the node serves.
 *
 * Which interfaces: those up, running, multicast-capable and not loopback; when
 * the node listens on one specific address (--bind), only the interface holding
 * it, and only that address is advertised, so that a node bound to loopback (every
 * local test) never speaks on the real LAN. The interface list is read again on
 * every mdns_addrs call (the core asks about once a second), and that is where
 * groups are joined on interfaces that came up since.
 *
 * The arrival interface of each datagram comes from IP_PKTINFO / IPV6_PKTINFO;
 * datagrams from interfaces outside the selection are dropped here. For the
 * core's on-link rule (RFC 6762 11, ota_mdns_input_meta) mdns_recv_meta also says
 * whether the source is on one of the arrival interface's subnets (those of all its
 * addresses, read with the interface list: getifaddrs netmasks, the prefix lengths
 * of /proc/net/if_inet6, the peer of a point-to-point link; 169.254/16 and fe80::/10
 * always are) and the TTL / hop limit it arrived with (IP_RECVTTL, IPV6_RECVHOPLIMIT).
 */
#include "ota_posix.h"

#include <arpa/inet.h>
#include <errno.h>
#include <ifaddrs.h>
#include <net/if.h>
#include <netinet/in.h>
#include <netpacket/packet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "ota/errors.h"
#include "ota/mdns.h"
#include "ota/util.h"

#define TAG "mdns"
#define ERR_LOG_EVERY_MS 60000u /* send errors are logged at most this often */
#define MAX_DROPS_PER_RECV 32   /* datagrams dropped per call before giving the loop back */
#define MAX_CANDIDATES 64       /* addresses looked at per mdns_addrs call */

/* /proc/net/if_inet6 flags (the low byte of the kernel's IFA_F_*) */
#define IF6_TEMPORARY 0x01u
#define IF6_DADFAILED 0x08u
#define IF6_DEPRECATED 0x20u
#define IF6_TENTATIVE 0x40u

static const uint8_t group4[4] = OTA_MDNS_GROUP4_INIT;
static const uint8_t group6[16] = OTA_MDNS_GROUP6_INIT;

/* ------------------------------------------------------------------ sockets */

static void set_int(int fd, int level, int opt, int v)
{
    (void)setsockopt(fd, level, opt, &v, sizeof v);
}

/* A non-blocking UDP socket of family on port 5353, shared; -1 with why set. */
static int open_socket(int family, char *why, size_t why_cap)
{
    int fd = socket(family, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        snprintf(why, why_cap, "IPv%d socket: %s", family == AF_INET ? 4 : 6, strerror(errno));
        return -1;
    }
    /* both: another responder may share the port with either of them */
    set_int(fd, SOL_SOCKET, SO_REUSEADDR, 1);
    set_int(fd, SOL_SOCKET, SO_REUSEPORT, 1);
    struct sockaddr_storage ss;
    memset(&ss, 0, sizeof ss);
    socklen_t len;
    if (family == AF_INET) {
        struct sockaddr_in *a = (struct sockaddr_in *)&ss;
        a->sin_family = AF_INET;
        a->sin_port = htons(OTA_MDNS_PORT);
        a->sin_addr.s_addr = htonl(INADDR_ANY);
        len = sizeof *a;
        set_int(fd, IPPROTO_IP, IP_PKTINFO, 1);
        set_int(fd, IPPROTO_IP, IP_RECVTTL, 1); /* the on-link check (RFC 6762 11) */
        set_int(fd, IPPROTO_IP, IP_MULTICAST_TTL, 255);
        set_int(fd, IPPROTO_IP, IP_TTL, 255); /* unicast responses too (RFC 6762 11) */
        set_int(fd, IPPROTO_IP, IP_MULTICAST_LOOP, 1);
        /* only the groups this socket joined, not every group of the host */
        set_int(fd, IPPROTO_IP, IP_MULTICAST_ALL, 0);
    } else {
        struct sockaddr_in6 *a = (struct sockaddr_in6 *)&ss;
        a->sin6_family = AF_INET6;
        a->sin6_port = htons(OTA_MDNS_PORT);
        a->sin6_addr = in6addr_any;
        len = sizeof *a;
        set_int(fd, IPPROTO_IPV6, IPV6_V6ONLY, 1);
        set_int(fd, IPPROTO_IPV6, IPV6_RECVPKTINFO, 1);
        set_int(fd, IPPROTO_IPV6, IPV6_RECVHOPLIMIT, 1);
        set_int(fd, IPPROTO_IPV6, IPV6_MULTICAST_HOPS, 255);
        set_int(fd, IPPROTO_IPV6, IPV6_UNICAST_HOPS, 255);
        set_int(fd, IPPROTO_IPV6, IPV6_MULTICAST_LOOP, 1);
        set_int(fd, IPPROTO_IPV6, IPV6_MULTICAST_ALL, 0); /* Linux 4.20+; harmless before */
    }
    if (bind(fd, (struct sockaddr *)&ss, len) != 0) {
        snprintf(why, why_cap, "cannot bind UDP port %u (IPv%d): %s", OTA_MDNS_PORT,
                 family == AF_INET ? 4 : 6, strerror(errno));
        close(fd);
        return -1;
    }
    return fd;
}

static bool is_loopback(int family, const uint8_t *a)
{
    if (family == 4)
        return a[0] == 127;
    static const uint8_t v4mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
    if (memcmp(a, v4mapped, 12) == 0)
        return a[12] == 127;
    return memcmp(a, in6addr_loopback.s6_addr, 16) == 0;
}

static bool is_zero(const uint8_t *a, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (a[i] != 0)
            return false;
    return true;
}

void ota_posix_mdns_reset(ota_posix_t *ctx)
{
    memset(&ctx->mdns, 0, sizeof ctx->mdns);
    ctx->mdns.fd4 = -1;
    ctx->mdns.fd6 = -1;
}

int ota_posix_mdns_open(ota_posix_t *ctx, const char *bind_addr, char *why, size_t why_cap)
{
    ota_posix_mdns_t *md = &ctx->mdns;
    ota_posix_mdns_close(ctx);
    const char *addr = bind_addr ? bind_addr : "0.0.0.0";
    uint8_t a[16] = {0};
    int family;
    if (inet_pton(AF_INET, addr, a) == 1) {
        family = 4;
    } else if (inet_pton(AF_INET6, addr, a) == 1) {
        family = 6;
    } else {
        snprintf(why, why_cap, "off: '%s' is not an IPv4 or IPv6 address", addr);
        return -1;
    }
    if (is_loopback(family, a)) {
        snprintf(why, why_cap, "off: bound to loopback %s (mDNS needs a LAN interface)", addr);
        return 0;
    }
    if (!is_zero(a, family == 4 ? 4 : 16)) { /* one specific address: it alone */
        md->bind_family = (uint8_t)family;
        memcpy(md->bind_addr, a, 16);
    }
    char why4[160] = "", why6[160] = "";
    if (md->bind_family != 6)
        md->fd4 = open_socket(AF_INET, why4, sizeof why4);
    if (md->bind_family != 4)
        md->fd6 = open_socket(AF_INET6, why6, sizeof why6);
    if (md->fd4 < 0 && md->fd6 < 0) {
        snprintf(why, why_cap, "off: %s%s%s", why4, why4[0] && why6[0] ? "; " : "", why6);
        ota_posix_mdns_reset(ctx);
        return -1;
    }
    if (md->fd4 < 0 && md->bind_family == 0)
        ota_posix_log(OTA_LOG_WARN, TAG, "IPv4 off: %s", why4);
    if (md->fd6 < 0 && md->bind_family == 0)
        ota_posix_log(OTA_LOG_INFO, TAG, "IPv6 off: %s", why6);
    if (md->bind_family != 0)
        ota_posix_log(OTA_LOG_INFO, TAG, "only on the interface of %s (--bind)", addr);
    ctx->ports.mdns = (ota_mdns_port_t){.recv = ota_posix_mdns_recv,
                                        .send = ota_posix_mdns_send,
                                        .addrs = ota_posix_mdns_addrs,
                                        .recv_meta = ota_posix_mdns_recv_meta,
                                        .ctx = ctx};
    return 1;
}

void ota_posix_mdns_close(ota_posix_t *ctx)
{
    ota_posix_mdns_t *md = &ctx->mdns;
    if (md->fd4 >= 0)
        close(md->fd4); /* the kernel leaves the groups with the socket */
    if (md->fd6 >= 0)
        close(md->fd6);
    memset(&ctx->ports.mdns, 0, sizeof ctx->ports.mdns);
    ota_posix_mdns_reset(ctx);
}

/* ------------------------------------------------------------------ interfaces */

static ota_posix_mdns_if_t *if_find(ota_posix_mdns_t *md, int family, uint32_t ifindex)
{
    ota_posix_mdns_if_t *t = family == 4 ? md->ifs4 : md->ifs6;
    size_t n = family == 4 ? md->n_ifs4 : md->n_ifs6;
    for (size_t i = 0; i < n; i++)
        if (t[i].ifindex == ifindex)
            return &t[i];
    return NULL;
}

/* Is the interface in use for family (datagrams from elsewhere are dropped)? */
static bool selected(const ota_posix_mdns_t *md, int family, uint32_t ifindex)
{
    const ota_posix_mdns_if_t *t = family == 4 ? md->ifs4 : md->ifs6;
    size_t n = family == 4 ? md->n_ifs4 : md->n_ifs6;
    for (size_t i = 0; i < n; i++)
        if (t[i].ifindex == ifindex)
            return true;
    return false;
}

static int join(int fd, int family, uint32_t ifindex, bool add)
{
    if (family == 4) {
        struct ip_mreqn mr;
        memset(&mr, 0, sizeof mr);
        memcpy(&mr.imr_multiaddr, group4, 4);
        mr.imr_ifindex = (int)ifindex;
        return setsockopt(fd, IPPROTO_IP, add ? IP_ADD_MEMBERSHIP : IP_DROP_MEMBERSHIP, &mr,
                          sizeof mr);
    }
    struct ipv6_mreq mr;
    memset(&mr, 0, sizeof mr);
    memcpy(&mr.ipv6mr_multiaddr, group6, 16);
    mr.ipv6mr_interface = ifindex;
    return setsockopt(fd, IPPROTO_IPV6, add ? IPV6_ADD_MEMBERSHIP : IPV6_DROP_MEMBERSHIP, &mr,
                      sizeof mr);
}

/* The interfaces of family that qualify now are in want[0..n): join the group on
 * the new ones, leave it on those that went away. */
static void update_joins(ota_posix_mdns_t *md, int family, const uint32_t *want, size_t n,
                         const char (*names)[IF_NAMESIZE])
{
    int fd = family == 4 ? md->fd4 : md->fd6;
    ota_posix_mdns_if_t *t = family == 4 ? md->ifs4 : md->ifs6;
    size_t *nt = family == 4 ? &md->n_ifs4 : &md->n_ifs6;
    const char *group = family == 4 ? "224.0.0.251" : "ff02::fb";
    if (fd < 0)
        n = 0;
    /* gone: forget (and leave, in case the interface still exists) */
    for (size_t i = 0; i < *nt;) {
        bool keep = false;
        for (size_t k = 0; k < n && !keep; k++)
            keep = want[k] == t[i].ifindex;
        if (keep) {
            i++;
            continue;
        }
        if (t[i].joined) {
            (void)join(fd, family, t[i].ifindex, false);
            ota_posix_log(OTA_LOG_INFO, TAG, "left %s on %s (down or gone)", group, t[i].name);
        }
        t[i] = t[--*nt];
    }
    for (size_t k = 0; k < n; k++) {
        ota_posix_mdns_if_t *e = if_find(md, family, want[k]);
        if (e == NULL) {
            if (*nt >= OTA_POSIX_MDNS_MAX_IFS)
                continue;
            e = &t[(*nt)++];
            memset(e, 0, sizeof *e);
            e->ifindex = want[k];
            _Static_assert(sizeof e->name == IF_NAMESIZE, "interface name size");
            memcpy(e->name, names[k], sizeof e->name);
            e->name[sizeof e->name - 1] = '\0';
        }
        if (e->joined)
            continue;
        if (join(fd, family, e->ifindex, true) == 0 || errno == EADDRINUSE) {
            e->joined = true;
            ota_posix_log(OTA_LOG_INFO, TAG, "joined %s on %s", group, names[k]);
        } else if (!e->warned) {
            e->warned = true; /* retried every call, logged once */
            ota_posix_log(OTA_LOG_WARN, TAG, "cannot join %s on %s: %s", group, names[k],
                          strerror(errno));
        }
    }
}

typedef struct cand {
    ota_ip_t ip;
    unsigned rank; /* sort key: IPv4, IPv6 link-local, other IPv6 */
} cand_t;

static int cand_cmp(const void *pa, const void *pb)
{
    const cand_t *a = pa, *b = pb;
    if (a->rank != b->rank)
        return a->rank < b->rank ? -1 : 1;
    if (a->ip.ifindex != b->ip.ifindex)
        return a->ip.ifindex < b->ip.ifindex ? -1 : 1;
    return memcmp(a->ip.addr, b->ip.addr, 16);
}

typedef struct iface {
    char name[IF_NAMESIZE];
    uint32_t ifindex;
    unsigned flags;
} iface_t;

static bool qualifies(unsigned flags)
{
    unsigned need = IFF_UP | IFF_RUNNING | IFF_MULTICAST;
    return (flags & need) == need && (flags & IFF_LOOPBACK) == 0;
}

/* The interface of name (an IPv4 label like "eth0:1" counts as "eth0"). */
static const iface_t *iface_named(const iface_t *ifs, size_t n, const char *name)
{
    size_t len = strcspn(name, ":");
    for (size_t i = 0; i < n; i++)
        if (strlen(ifs[i].name) == len && strncmp(ifs[i].name, name, len) == 0)
            return &ifs[i];
    return NULL;
}

static const iface_t *iface_index(const iface_t *ifs, size_t n, uint32_t ifindex)
{
    for (size_t i = 0; i < n; i++)
        if (ifs[i].ifindex == ifindex)
            return &ifs[i];
    return NULL;
}

/* The subnets being collected for the on-link check (committed when complete). */
typedef struct nets {
    ota_posix_mdns_net_t t[OTA_POSIX_MDNS_MAX_NETS];
    size_t n;
} nets_t;

static void net_add(nets_t *nets, int family, uint32_t ifindex, const uint8_t *addr,
                    unsigned plen)
{
    if (nets->n >= OTA_POSIX_MDNS_MAX_NETS)
        return;
    ota_posix_mdns_net_t *e = &nets->t[nets->n++];
    memset(e, 0, sizeof *e);
    e->ifindex = ifindex;
    e->family = (uint8_t)family;
    e->plen = (uint8_t)(plen > (family == 4 ? 32u : 128u) ? (family == 4 ? 32u : 128u) : plen);
    memcpy(e->addr, addr, family == 4 ? 4 : 16);
}

/* The prefix length of an IPv4 netmask (its leading ones). */
static unsigned mask_len(const struct sockaddr *sa)
{
    if (sa == NULL || sa->sa_family != AF_INET)
        return 32;
    uint32_t m = ntohl(((const struct sockaddr_in *)sa)->sin_addr.s_addr);
    unsigned n = 0;
    while (n < 32 && (m & (0x80000000u >> n)) != 0)
        n++;
    return n;
}

static bool prefix_match(const uint8_t *a, const uint8_t *b, unsigned plen)
{
    size_t whole = plen / 8;
    if (memcmp(a, b, whole) != 0)
        return false;
    unsigned rest = plen % 8;
    if (rest == 0)
        return true;
    uint8_t mask = (uint8_t)(0xFFu << (8 - rest));
    return (a[whole] & mask) == (b[whole] & mask);
}

/* Is the source of a datagram that came in on ifindex on one of its subnets? */
static uint8_t link_of(const ota_posix_mdns_t *md, int family, uint32_t ifindex,
                       const uint8_t *src)
{
    if (family == 4 && src[0] == 169 && src[1] == 254)
        return OTA_MDNS_LINK_ON; /* IPv4 link-local (RFC 3927): on the link by definition */
    if (family == 6 && src[0] == 0xfe && (src[1] & 0xc0) == 0x80)
        return OTA_MDNS_LINK_ON; /* IPv6 link-local: never forwarded */
    for (size_t i = 0; i < md->n_nets; i++) {
        const ota_posix_mdns_net_t *e = &md->nets[i];
        if (e->family == family && e->ifindex == ifindex && prefix_match(e->addr, src, e->plen))
            return OTA_MDNS_LINK_ON;
    }
    return OTA_MDNS_LINK_OFF;
}

/* IPv6 addresses with their flags, from /proc/net/if_inet6 (getifaddrs has no
 * flags): "<32 hex> <ifindex> <plen> <scope> <flags> <name>" per line. Every
 * address's prefix goes to nets; the usable ones become candidates. */
static size_t read_inet6(const ota_posix_mdns_t *md, const iface_t *ifs, size_t n_ifs,
                         cand_t *c, size_t n, size_t cap, nets_t *nets)
{
    FILE *f = fopen("/proc/net/if_inet6", "re");
    if (f == NULL)
        return n; /* no IPv6 in this kernel */
    char line[256];
    while (n < cap && fgets(line, sizeof line, f) != NULL) {
        char hex[33], name[IF_NAMESIZE + 1];
        unsigned ifindex, plen, scope, flags;
        if (sscanf(line, "%32s %x %x %x %x %16s", hex, &ifindex, &plen, &scope, &flags, name) !=
                6 ||
            strlen(hex) != 32)
            continue;
        ota_ip_t ip;
        memset(&ip, 0, sizeof ip);
        ip.family = 6;
        ip.ifindex = ifindex;
        bool ok = ota_hex_decode(hex, 16, ip.addr) == 0;
        if (ok && (flags & IF6_DADFAILED) == 0 && !is_loopback(6, ip.addr))
            net_add(nets, 6, ifindex, ip.addr, plen);
        if (!ok || (flags & (IF6_TEMPORARY | IF6_DADFAILED | IF6_DEPRECATED | IF6_TENTATIVE)) != 0)
            continue;
        const iface_t *itf = iface_index(ifs, n_ifs, ifindex);
        if (itf == NULL || !qualifies(itf->flags) || is_loopback(6, ip.addr))
            continue;
        if (md->bind_family == 6 && memcmp(md->bind_addr, ip.addr, 16) != 0)
            continue;
        bool link_local = ip.addr[0] == 0xfe && (ip.addr[1] & 0xc0) == 0x80;
        c[n].ip = ip;
        c[n].rank = link_local ? 1 : 2;
        n++;
    }
    fclose(f);
    return n;
}

int ota_posix_mdns_addrs(void *user, ota_ip_t *out, size_t max)
{
    ota_posix_t *ctx = user;
    ota_posix_mdns_t *md = &ctx->mdns;
    struct ifaddrs *list = NULL;
    if (getifaddrs(&list) != 0)
        return 0; /* rare (no memory): the groups stay joined, next second tries again */
    /* the interfaces (their AF_PACKET entries carry the index) */
    iface_t ifs[OTA_POSIX_MDNS_MAX_IFS * 2];
    size_t n_ifs = 0;
    for (struct ifaddrs *i = list; i != NULL; i = i->ifa_next) {
        if (i->ifa_addr == NULL || i->ifa_addr->sa_family != AF_PACKET ||
            n_ifs >= sizeof ifs / sizeof ifs[0])
            continue;
        const struct sockaddr_ll *ll = (const struct sockaddr_ll *)i->ifa_addr;
        if (ll->sll_ifindex <= 0)
            continue;
        snprintf(ifs[n_ifs].name, sizeof ifs[n_ifs].name, "%s", i->ifa_name);
        ifs[n_ifs].ifindex = (uint32_t)ll->sll_ifindex;
        ifs[n_ifs].flags = i->ifa_flags;
        n_ifs++;
    }
    cand_t c[MAX_CANDIDATES];
    size_t n = 0;
    nets_t nets;
    nets.n = 0;
    if (md->fd4 >= 0) {
        for (struct ifaddrs *i = list; i != NULL && n < MAX_CANDIDATES; i = i->ifa_next) {
            if (i->ifa_addr == NULL || i->ifa_addr->sa_family != AF_INET ||
                !qualifies(i->ifa_flags))
                continue;
            const iface_t *itf = iface_named(ifs, n_ifs, i->ifa_name);
            const struct sockaddr_in *sa = (const struct sockaddr_in *)i->ifa_addr;
            if (itf == NULL || is_loopback(4, (const uint8_t *)&sa->sin_addr))
                continue;
            /* its subnet, whatever --bind says: the link is the interface's */
            net_add(&nets, 4, itf->ifindex, (const uint8_t *)&sa->sin_addr,
                    mask_len(i->ifa_netmask));
            if ((i->ifa_flags & IFF_POINTOPOINT) != 0 && i->ifa_dstaddr != NULL &&
                i->ifa_dstaddr->sa_family == AF_INET)
                net_add(&nets, 4, itf->ifindex,
                        (const uint8_t *)&((const struct sockaddr_in *)i->ifa_dstaddr)->sin_addr,
                        32);
            if (md->bind_family == 4 && memcmp(md->bind_addr, &sa->sin_addr, 4) != 0)
                continue;
            memset(&c[n], 0, sizeof c[n]);
            c[n].ip.family = 4;
            c[n].ip.ifindex = itf->ifindex;
            memcpy(c[n].ip.addr, &sa->sin_addr, 4);
            c[n].rank = 0;
            n++;
        }
    }
    freeifaddrs(list);
    if (md->fd6 >= 0)
        n = read_inet6(md, ifs, n_ifs, c, n, MAX_CANDIDATES, &nets);
    memcpy(md->nets, nets.t, nets.n * sizeof nets.t[0]);
    md->n_nets = nets.n;

    /* the interfaces to serve, per family: those with an address of that family */
    for (int fam = 4; fam <= 6; fam += 2) {
        uint32_t want[OTA_POSIX_MDNS_MAX_IFS];
        char names[OTA_POSIX_MDNS_MAX_IFS][IF_NAMESIZE];
        size_t nw = 0;
        for (size_t k = 0; k < n; k++) {
            if (c[k].ip.family != fam)
                continue;
            bool dup = false;
            for (size_t j = 0; j < nw && !dup; j++)
                dup = want[j] == c[k].ip.ifindex;
            if (dup || nw >= OTA_POSIX_MDNS_MAX_IFS)
                continue;
            const iface_t *itf = iface_index(ifs, n_ifs, c[k].ip.ifindex);
            snprintf(names[nw], sizeof names[nw], "%s", itf ? itf->name : "?");
            want[nw++] = c[k].ip.ifindex;
        }
        update_joins(md, fam, want, nw, (const char(*)[IF_NAMESIZE])names);
    }

    qsort(c, n, sizeof c[0], cand_cmp); /* a stable order, the most useful first */
    size_t w = 0;
    for (size_t k = 0; k < n && w < max; k++)
        if (if_find(md, c[k].ip.family, c[k].ip.ifindex) != NULL)
            out[w++] = c[k].ip;
    return (int)w;
}

/* ------------------------------------------------------------------ datagrams */

/* One datagram from fd: its length (cut to len), or OTA_ERR_WOULD_BLOCK; *dropped
 * when one was read but is not for us (another interface, a pending socket error). */
static int recv_one(ota_posix_t *ctx, int fd, int family, uint8_t *buf, size_t len,
                    ota_ip_t *from, uint16_t *from_port, ota_mdns_rx_meta_t *meta,
                    bool *dropped)
{
    struct sockaddr_storage ss;
    struct iovec iov = {.iov_base = buf, .iov_len = len};
    union {
        char b[CMSG_SPACE(sizeof(struct in6_pktinfo)) + CMSG_SPACE(sizeof(struct in_pktinfo)) +
               2 * CMSG_SPACE(sizeof(int))];
        struct cmsghdr align;
    } cb;
    struct msghdr mh;
    memset(&mh, 0, sizeof mh);
    mh.msg_name = &ss;
    mh.msg_namelen = sizeof ss;
    mh.msg_iov = &iov;
    mh.msg_iovlen = 1;
    mh.msg_control = cb.b;
    mh.msg_controllen = sizeof cb.b;
    *dropped = false;
    ssize_t n = recvmsg(fd, &mh, MSG_TRUNC | MSG_DONTWAIT);
    if (n < 0) {
        if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)
            return OTA_ERR_WOULD_BLOCK;
        /* an ICMP error of an earlier send (ECONNREFUSED...): not this socket's fault */
        *dropped = true;
        return 0;
    }
    uint32_t ifindex = 0;
    int ttl = -1;
    for (struct cmsghdr *cm = CMSG_FIRSTHDR(&mh); cm != NULL; cm = CMSG_NXTHDR(&mh, cm)) {
        if ((family == 4 && cm->cmsg_level == IPPROTO_IP && cm->cmsg_type == IP_TTL) ||
            (family == 6 && cm->cmsg_level == IPPROTO_IPV6 && cm->cmsg_type == IPV6_HOPLIMIT)) {
            memcpy(&ttl, CMSG_DATA(cm), sizeof ttl);
            continue;
        }
        if (family == 4 && cm->cmsg_level == IPPROTO_IP && cm->cmsg_type == IP_PKTINFO) {
            struct in_pktinfo pi;
            memcpy(&pi, CMSG_DATA(cm), sizeof pi);
            ifindex = (uint32_t)pi.ipi_ifindex;
        } else if (family == 6 && cm->cmsg_level == IPPROTO_IPV6 &&
                   cm->cmsg_type == IPV6_PKTINFO) {
            struct in6_pktinfo pi;
            memcpy(&pi, CMSG_DATA(cm), sizeof pi);
            ifindex = pi.ipi6_ifindex;
        }
    }
    if (!selected(&ctx->mdns, family, ifindex) || ss.ss_family != (family == 4 ? AF_INET : AF_INET6)) {
        *dropped = true;
        return 0;
    }
    memset(from, 0, sizeof *from);
    from->family = (uint8_t)family;
    from->ifindex = ifindex;
    if (family == 4) {
        const struct sockaddr_in *a = (const struct sockaddr_in *)&ss;
        memcpy(from->addr, &a->sin_addr, 4);
        *from_port = ntohs(a->sin_port);
    } else {
        const struct sockaddr_in6 *a = (const struct sockaddr_in6 *)&ss;
        memcpy(from->addr, &a->sin6_addr, 16);
        *from_port = ntohs(a->sin6_port);
    }
    memset(meta, 0, sizeof *meta);
    meta->on_link = link_of(&ctx->mdns, family, ifindex, from->addr);
    if (ttl >= 0 && ttl <= 255) {
        meta->ttl_known = true;
        meta->ttl = (uint8_t)ttl;
    }
    return (size_t)n > len ? (int)len : (int)n;
}

int ota_posix_mdns_recv(void *user, uint8_t *buf, size_t len, ota_ip_t *from,
                        uint16_t *from_port)
{
    ota_mdns_rx_meta_t meta;
    return ota_posix_mdns_recv_meta(user, buf, len, from, from_port, &meta);
}

int ota_posix_mdns_recv_meta(void *user, uint8_t *buf, size_t len, ota_ip_t *from,
                             uint16_t *from_port, ota_mdns_rx_meta_t *meta)
{
    ota_posix_t *ctx = user;
    ota_posix_mdns_t *md = &ctx->mdns;
    if (len > (size_t)INT32_MAX)
        len = (size_t)INT32_MAX;
    int drops = 0;
    int idle = 0; /* sockets found empty in a row */
    while (idle < 2 && drops < MAX_DROPS_PER_RECV) {
        /* take turns, so that a flood on one family does not starve the other */
        md->turn6 = !md->turn6;
        int fd = md->turn6 ? md->fd6 : md->fd4;
        if (fd < 0) {
            idle++;
            continue;
        }
        bool dropped;
        int n = recv_one(ctx, fd, md->turn6 ? 6 : 4, buf, len, from, from_port, meta,
                         &dropped);
        if (n == OTA_ERR_WOULD_BLOCK) {
            idle++;
            continue;
        }
        if (dropped) {
            drops++;
            idle = 0;
            continue;
        }
        return n;
    }
    return OTA_ERR_WOULD_BLOCK;
}

/* Log a send failure, but not the same one over and over. */
static void send_failed(ota_posix_mdns_t *md, const ota_ip_t *to, int err)
{
    uint32_t now = ota_posix_now_ms();
    if (md->errors_logged && (uint32_t)(now - md->err_logged_at) < ERR_LOG_EVERY_MS) {
        md->errors_quiet++;
        return;
    }
    char a[INET6_ADDRSTRLEN] = "?";
    inet_ntop(to->family == 4 ? AF_INET : AF_INET6, to->addr, a, sizeof a);
    if (md->errors_quiet > 0)
        ota_posix_log(OTA_LOG_WARN, TAG, "cannot send to %s on interface %u: %s (%u failures "
                      "since the last message)", a, (unsigned)to->ifindex, strerror(err),
                      (unsigned)md->errors_quiet);
    else
        ota_posix_log(OTA_LOG_WARN, TAG, "cannot send to %s on interface %u: %s", a,
                      (unsigned)to->ifindex, strerror(err));
    md->err_logged_at = now;
    md->errors_logged = true;
    md->errors_quiet = 0;
}

int ota_posix_mdns_send(void *user, const uint8_t *buf, size_t len, const ota_ip_t *to,
                        uint16_t to_port)
{
    ota_posix_t *ctx = user;
    ota_posix_mdns_t *md = &ctx->mdns;
    struct sockaddr_storage ss;
    memset(&ss, 0, sizeof ss);
    socklen_t sl;
    int fd;
    if (to->family == 4) {
        fd = md->fd4;
        if (fd < 0)
            return OTA_ERR_IO;
        if (memcmp(to->addr, group4, 4) == 0 && to->ifindex != md->mcast_if4) {
            struct ip_mreqn mr;
            memset(&mr, 0, sizeof mr);
            mr.imr_ifindex = (int)to->ifindex;
            if (setsockopt(fd, IPPROTO_IP, IP_MULTICAST_IF, &mr, sizeof mr) != 0) {
                md->mcast_if4 = 0;
                send_failed(md, to, errno);
                return OTA_ERR_IO;
            }
            md->mcast_if4 = to->ifindex;
        }
        struct sockaddr_in *a = (struct sockaddr_in *)&ss;
        a->sin_family = AF_INET;
        a->sin_port = htons(to_port);
        memcpy(&a->sin_addr, to->addr, 4);
        sl = sizeof *a;
    } else if (to->family == 6) {
        fd = md->fd6;
        if (fd < 0)
            return OTA_ERR_IO;
        bool group = memcmp(to->addr, group6, 16) == 0;
        if (group && to->ifindex != md->mcast_if6) {
            int idx = (int)to->ifindex;
            if (setsockopt(fd, IPPROTO_IPV6, IPV6_MULTICAST_IF, &idx, sizeof idx) != 0) {
                md->mcast_if6 = 0;
                send_failed(md, to, errno);
                return OTA_ERR_IO;
            }
            md->mcast_if6 = to->ifindex;
        }
        struct sockaddr_in6 *a = (struct sockaddr_in6 *)&ss;
        a->sin6_family = AF_INET6;
        a->sin6_port = htons(to_port);
        memcpy(&a->sin6_addr, to->addr, 16);
        bool link_local = to->addr[0] == 0xfe && (to->addr[1] & 0xc0) == 0x80;
        if (group || link_local)
            a->sin6_scope_id = to->ifindex;
        sl = sizeof *a;
    } else {
        return OTA_ERR_IO;
    }
    if (sendto(fd, buf, len, 0, (struct sockaddr *)&ss, sl) >= 0)
        return OTA_OK;
    int e = errno;
    if (e == EAGAIN || e == EWOULDBLOCK || e == ENOBUFS || e == EINTR)
        return OTA_ERR_WOULD_BLOCK; /* dropped: mDNS tolerates loss */
    send_failed(md, to, e);
    return OTA_ERR_IO;
}
