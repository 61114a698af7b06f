/*
 * mcast.c - mDNS multicast sockets and the interface rule (see mcast.h), shared by
 * the node's responder I/O and the host tool's discovery.
 */
#include "mcast.h"

#include <arpa/inet.h>
#include <errno.h>
#include <ifaddrs.h>
#include <net/if.h>
#include <netinet/in.h>
#include <netpacket/packet.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "ota/errors.h"
#include "ota/mdns.h"
#include "ota/util.h"

_Static_assert(OTA_MCAST_IFNAME_MAX == IF_NAMESIZE, "interface name size");

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

int ota_mcast_open(int family, uint16_t port, unsigned flags, char *why, size_t why_cap)
{
    int af = family == 4 ? AF_INET : AF_INET6;
    int fd = socket(af, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        snprintf(why, why_cap, "IPv%d socket: %s", family, strerror(errno));
        return OTA_ERR_IO;
    }
    if (port != 0) { /* both: another responder may share the port with either of them */
        set_int(fd, SOL_SOCKET, SO_REUSEADDR, 1);
        set_int(fd, SOL_SOCKET, SO_REUSEPORT, 1);
    }
    struct sockaddr_storage ss;
    memset(&ss, 0, sizeof ss);
    socklen_t len;
    if (af == AF_INET) {
        struct sockaddr_in *a = (struct sockaddr_in *)&ss;
        a->sin_family = AF_INET;
        a->sin_port = htons(port);
        a->sin_addr.s_addr = htonl(INADDR_ANY);
        len = sizeof *a;
        set_int(fd, IPPROTO_IP, IP_PKTINFO, 1);
        if ((flags & OTA_MCAST_RECV_TTL) != 0)
            set_int(fd, IPPROTO_IP, IP_RECVTTL, 1); /* the on-link check (RFC 6762 11) */
        set_int(fd, IPPROTO_IP, IP_MULTICAST_TTL, 255);
        set_int(fd, IPPROTO_IP, IP_TTL, 255); /* unicast responses too (RFC 6762 11) */
        set_int(fd, IPPROTO_IP, IP_MULTICAST_LOOP, 1);
        /* only the groups this socket joined, not every group of the host */
        set_int(fd, IPPROTO_IP, IP_MULTICAST_ALL, 0);
    } else {
        struct sockaddr_in6 *a = (struct sockaddr_in6 *)&ss;
        a->sin6_family = AF_INET6;
        a->sin6_port = htons(port);
        a->sin6_addr = in6addr_any;
        len = sizeof *a;
        set_int(fd, IPPROTO_IPV6, IPV6_V6ONLY, 1);
        set_int(fd, IPPROTO_IPV6, IPV6_RECVPKTINFO, 1);
        if ((flags & OTA_MCAST_RECV_TTL) != 0)
            set_int(fd, IPPROTO_IPV6, IPV6_RECVHOPLIMIT, 1);
        set_int(fd, IPPROTO_IPV6, IPV6_MULTICAST_HOPS, 255);
        set_int(fd, IPPROTO_IPV6, IPV6_UNICAST_HOPS, 255);
        set_int(fd, IPPROTO_IPV6, IPV6_MULTICAST_LOOP, 1);
        set_int(fd, IPPROTO_IPV6, IPV6_MULTICAST_ALL, 0); /* Linux 4.20+; harmless before */
    }
    if (bind(fd, (struct sockaddr *)&ss, len) != 0) {
        snprintf(why, why_cap, "cannot bind UDP port %u (IPv%d): %s", (unsigned)port, family,
                 strerror(errno));
        close(fd);
        return OTA_ERR_IO;
    }
    return fd;
}

int ota_mcast_join(int fd, int family, uint32_t ifindex, bool join)
{
    int rc;
    if (family == 4) {
        struct ip_mreqn mr;
        memset(&mr, 0, sizeof mr);
        memcpy(&mr.imr_multiaddr, group4, 4);
        mr.imr_ifindex = (int)ifindex;
        rc = setsockopt(fd, IPPROTO_IP, join ? IP_ADD_MEMBERSHIP : IP_DROP_MEMBERSHIP, &mr,
                        sizeof mr);
    } else {
        struct ipv6_mreq mr;
        memset(&mr, 0, sizeof mr);
        memcpy(&mr.ipv6mr_multiaddr, group6, 16);
        mr.ipv6mr_interface = ifindex;
        rc = setsockopt(fd, IPPROTO_IPV6, join ? IPV6_ADD_MEMBERSHIP : IPV6_DROP_MEMBERSHIP,
                        &mr, sizeof mr);
    }
    return rc == 0 ? OTA_OK : OTA_ERR_IO;
}

int ota_mcast_set_if(int fd, int family, uint32_t ifindex)
{
    int rc;
    if (family == 4) {
        struct ip_mreqn mr;
        memset(&mr, 0, sizeof mr);
        mr.imr_ifindex = (int)ifindex;
        rc = setsockopt(fd, IPPROTO_IP, IP_MULTICAST_IF, &mr, sizeof mr);
    } else {
        int idx = (int)ifindex;
        rc = setsockopt(fd, IPPROTO_IPV6, IPV6_MULTICAST_IF, &idx, sizeof idx);
    }
    return rc == 0 ? OTA_OK : OTA_ERR_IO;
}

/* ------------------------------------------------------------------ the rule */

bool ota_mcast_is_loopback(int family, const uint8_t *a)
{
    if (family == 4)
        return a[0] == 127;
    static const uint8_t v4mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
    if (memcmp(a, v4mapped, 12) == 0)
        return a[12] == 127;
    return memcmp(a, in6addr_loopback.s6_addr, 16) == 0;
}

/* The flags part of the rule. */
static bool flags_qualify(unsigned flags)
{
    unsigned need = IFF_UP | IFF_RUNNING | IFF_MULTICAST;
    return (flags & need) == need && (flags & IFF_LOOPBACK) == 0;
}

/* Every interface of the host with its flags, before the rule (AF_PACKET entries
 * carry the index). */
typedef struct link {
    char name[IF_NAMESIZE];
    uint32_t ifindex;
    unsigned flags;
} link_t;

/* The link of name (an IPv4 label like "eth0:1" counts as "eth0"). */
static const link_t *link_named(const link_t *l, size_t n, const char *name)
{
    size_t len = strcspn(name, ":");
    for (size_t i = 0; i < n; i++)
        if (strlen(l[i].name) == len && strncmp(l[i].name, name, len) == 0)
            return &l[i];
    return NULL;
}

static const link_t *link_index(const link_t *l, size_t n, uint32_t ifindex)
{
    for (size_t i = 0; i < n; i++)
        if (l[i].ifindex == ifindex)
            return &l[i];
    return NULL;
}

const ota_mcast_if_t *ota_mcast_scan_if(const ota_mcast_scan_t *s, uint32_t ifindex)
{
    for (size_t i = 0; i < s->n_ifs; i++)
        if (s->ifs[i].ifindex == ifindex)
            return &s->ifs[i];
    return NULL;
}

static void add_addr(ota_mcast_scan_t *s, int family, uint32_t ifindex, const uint8_t *addr,
                     unsigned plen, bool source)
{
    if (s->n_addrs >= OTA_MCAST_MAX_ADDRS)
        return;
    ota_mcast_addr_t *e = &s->addrs[s->n_addrs++];
    memset(e, 0, sizeof *e);
    unsigned max = family == 4 ? 32u : 128u;
    e->ifindex = ifindex;
    e->family = (uint8_t)family;
    e->plen = (uint8_t)(plen > max ? max : plen);
    e->source = source;
    memcpy(e->addr, addr, family == 4 ? 4 : 16);
}

/* A source address of family on the link: the link counts for that family. */
static void use_link(ota_mcast_scan_t *s, const link_t *l, int family)
{
    ota_mcast_if_t *e = NULL;
    for (size_t i = 0; i < s->n_ifs && e == NULL; i++)
        if (s->ifs[i].ifindex == l->ifindex)
            e = &s->ifs[i];
    if (e == NULL) {
        if (s->n_ifs >= OTA_MCAST_MAX_IFS)
            return;
        e = &s->ifs[s->n_ifs++];
        memset(e, 0, sizeof *e);
        e->ifindex = l->ifindex;
        memcpy(e->name, l->name, sizeof e->name);
    }
    if (family == 4)
        e->v4 = true;
    else
        e->v6 = true;
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

/* IPv6 addresses with their flags, from /proc/net/if_inet6 (getifaddrs has no
 * flags): "<32 hex> <ifindex> <plen> <scope> <flags> <name>" per line. */
static void read_inet6(ota_mcast_scan_t *s, const link_t *links, size_t n_links)
{
    FILE *f = fopen("/proc/net/if_inet6", "re");
    if (f == NULL)
        return; /* no IPv6 in this kernel */
    char line[256];
    while (fgets(line, sizeof line, f) != NULL) {
        char hex[33], name[IF_NAMESIZE + 1];
        unsigned ifindex, plen, scope, flags;
        uint8_t a[16];
        if (sscanf(line, "%32s %x %x %x %x %16s", hex, &ifindex, &plen, &scope, &flags, name) !=
                6 ||
            strlen(hex) != 32 || ota_hex_decode(hex, 16, a) != 0)
            continue;
        const link_t *l = link_index(links, n_links, ifindex);
        if (l == NULL || !flags_qualify(l->flags) || (flags & IF6_DADFAILED) != 0 ||
            ota_mcast_is_loopback(6, a))
            continue;
        bool source = (flags & (IF6_TEMPORARY | IF6_DEPRECATED | IF6_TENTATIVE)) == 0;
        add_addr(s, 6, ifindex, a, plen, source);
        if (source)
            use_link(s, l, 6);
    }
    fclose(f);
}

int ota_mcast_scan(ota_mcast_scan_t *s)
{
    s->n_ifs = 0;
    s->n_addrs = 0;
    struct ifaddrs *list = NULL;
    if (getifaddrs(&list) != 0)
        return OTA_ERR_IO;
    link_t links[OTA_MCAST_MAX_IFS];
    size_t n_links = 0;
    for (struct ifaddrs *i = list; i != NULL; i = i->ifa_next) {
        if (i->ifa_addr == NULL || i->ifa_addr->sa_family != AF_PACKET ||
            n_links >= OTA_MCAST_MAX_IFS)
            continue;
        const struct sockaddr_ll *ll = (const struct sockaddr_ll *)i->ifa_addr;
        if (ll->sll_ifindex <= 0)
            continue;
        snprintf(links[n_links].name, sizeof links[n_links].name, "%s", i->ifa_name);
        links[n_links].ifindex = (uint32_t)ll->sll_ifindex;
        links[n_links].flags = i->ifa_flags;
        n_links++;
    }
    for (struct ifaddrs *i = list; i != NULL; i = i->ifa_next) {
        if (i->ifa_addr == NULL || i->ifa_addr->sa_family != AF_INET ||
            !flags_qualify(i->ifa_flags))
            continue;
        const link_t *l = link_named(links, n_links, i->ifa_name);
        const uint8_t *a = (const uint8_t *)&((const struct sockaddr_in *)i->ifa_addr)->sin_addr;
        if (l == NULL || ota_mcast_is_loopback(4, a))
            continue;
        add_addr(s, 4, l->ifindex, a, mask_len(i->ifa_netmask), true);
        use_link(s, l, 4);
        if ((i->ifa_flags & IFF_POINTOPOINT) != 0 && i->ifa_dstaddr != NULL &&
            i->ifa_dstaddr->sa_family == AF_INET)
            add_addr(s, 4, l->ifindex,
                     (const uint8_t *)&((const struct sockaddr_in *)i->ifa_dstaddr)->sin_addr,
                     32, false);
    }
    freeifaddrs(list);
    read_inet6(s, links, n_links);
    return OTA_OK;
}
