/*
 * mdns_posix.c - the mDNS hooks of the POSIX port (mdns_recv, mdns_send,
 * mdns_addrs of ota/port.h) on Linux: one IPv4 and one IPv6 UDP socket on port
 * 5353, shared with any other responder of the host (Avahi, a second node), joined
 * to 224.0.0.251 / ff02::fb on each interface the node serves.
 *
 * Which interfaces: the rule of mcast.h (the sockets, the group joins and the
 * interface list are shared with the host tool's discovery there); when the node
 * listens on one specific address (--bind), only the interface holding it, and
 * only that address is advertised; a node bound to loopback (every local test)
 * keeps mDNS off, so it never speaks on the real LAN. The interface list is read
 * again on every mdns_addrs call (the core asks about once a second), and that is
 * where groups are joined on interfaces that came up since.
 *
 * The arrival interface of each datagram comes from IP_PKTINFO / IPV6_PKTINFO;
 * datagrams from interfaces outside the selection are dropped here. For the
 * core's on-link rule (RFC 6762 11, ota_mdns_input_meta) mdns_recv_meta also says
 * whether the source is on one of the arrival interface's subnets (those of all its
 * addresses, read with the interface list (ota_mcast_scan): getifaddrs netmasks,
 * the prefix lengths of /proc/net/if_inet6, the peer of a point-to-point link;
 * 169.254/16 and fe80::/10 always are) and the TTL / hop limit it arrived with
 * (IP_RECVTTL, IPV6_RECVHOPLIMIT).
 */
#include "ota_posix.h"

#include <arpa/inet.h>
#include <errno.h>
#include <net/if.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "mcast.h"
#include "ota/errors.h"
#include "ota/mdns.h"
#include "ota/util.h"

#define TAG "mdns"
#define ERR_LOG_EVERY_MS 60000u /* send errors are logged at most this often */
#define MAX_DROPS_PER_RECV 32   /* datagrams dropped per call before giving the loop back */
#define MAX_CANDIDATES 64       /* addresses looked at per mdns_addrs call */

static const uint8_t group4[4] = OTA_MDNS_GROUP4_INIT;
static const uint8_t group6[16] = OTA_MDNS_GROUP6_INIT;

/* ------------------------------------------------------------------ sockets */

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
        return OTA_ERR_INVALID_ARG;
    }
    if (ota_mcast_is_loopback(family, a)) {
        snprintf(why, why_cap, "off: bound to loopback %s (mDNS needs a LAN interface)", addr);
        return OTA_POSIX_MDNS_OFF;
    }
    if (!is_zero(a, family == 4 ? 4 : 16)) { /* one specific address: it alone */
        md->bind_family = (uint8_t)family;
        memcpy(md->bind_addr, a, 16);
    }
    char why4[160] = "", why6[160] = "";
    if (md->bind_family != 6)
        md->fd4 = ota_mcast_open(4, OTA_MDNS_PORT, OTA_MCAST_RECV_TTL, why4, sizeof why4);
    if (md->bind_family != 4)
        md->fd6 = ota_mcast_open(6, OTA_MDNS_PORT, OTA_MCAST_RECV_TTL, why6, sizeof why6);
    if (md->fd4 < 0)
        md->fd4 = -1;
    if (md->fd6 < 0)
        md->fd6 = -1;
    if (md->fd4 < 0 && md->fd6 < 0) {
        snprintf(why, why_cap, "off: %s%s%s", why4, why4[0] && why6[0] ? "; " : "", why6);
        ota_posix_mdns_reset(ctx);
        return OTA_ERR_IO;
    }
    if (md->fd4 < 0 && md->bind_family == 0)
        ota_posix_logf(ctx, OTA_LOG_WARN, TAG, "IPv4 off: %s", why4);
    if (md->fd6 < 0 && md->bind_family == 0)
        ota_posix_logf(ctx, OTA_LOG_INFO, TAG, "IPv6 off: %s", why6);
    if (md->bind_family != 0)
        ota_posix_logf(ctx, OTA_LOG_INFO, TAG, "only on the interface of %s (--bind)", addr);
    ctx->ports.mdns = (ota_mdns_port_t){.recv = ota_posix_mdns_recv,
                                        .send = ota_posix_mdns_send,
                                        .addrs = ota_posix_mdns_addrs,
                                        .recv_meta = ota_posix_mdns_recv_meta,
                                        .ctx = ctx};
    return OTA_POSIX_MDNS_ON;
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

/* The interfaces of family that qualify now are in want[0..n): join the group on
 * the new ones, leave it on those that went away. */
static void update_joins(ota_posix_t *ctx, int family, const uint32_t *want, size_t n,
                         const char (*names)[IF_NAMESIZE])
{
    ota_posix_mdns_t *md = &ctx->mdns;
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
            (void)ota_mcast_join(fd, family, t[i].ifindex, false);
            ota_posix_logf(ctx, OTA_LOG_INFO, TAG, "left %s on %s (down or gone)", group,
                           t[i].name);
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
        if (ota_mcast_join(fd, family, e->ifindex, true) == 0 || errno == EADDRINUSE) {
            e->joined = true;
            ota_posix_logf(ctx, OTA_LOG_INFO, TAG, "joined %s on %s", group, names[k]);
        } else if (!e->warned) {
            e->warned = true; /* retried every call, logged once */
            ota_posix_logf(ctx, OTA_LOG_WARN, TAG, "cannot join %s on %s: %s", group, names[k],
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

int ota_posix_mdns_addrs(void *user, ota_ip_t *out, size_t max)
{
    ota_posix_t *ctx = user;
    ota_posix_mdns_t *md = &ctx->mdns;
    ota_mcast_scan_t scan;
    if (ota_mcast_scan(&scan) != 0)
        return 0; /* rare (no memory): the groups stay joined, next second tries again */
    cand_t c[MAX_CANDIDATES];
    size_t n = 0;
    nets_t nets;
    nets.n = 0;
    for (size_t k = 0; k < scan.n_addrs; k++) {
        const ota_mcast_addr_t *a = &scan.addrs[k];
        if ((a->family == 4 ? md->fd4 : md->fd6) < 0)
            continue;
        /* its subnet, whatever --bind says: the link is the interface's */
        net_add(&nets, a->family, a->ifindex, a->addr, a->plen);
        if (!a->source || n >= MAX_CANDIDATES)
            continue;
        if (md->bind_family == a->family &&
            memcmp(md->bind_addr, a->addr, a->family == 4 ? 4 : 16) != 0)
            continue;
        bool link_local = a->family == 6 && a->addr[0] == 0xfe && (a->addr[1] & 0xc0) == 0x80;
        memset(&c[n], 0, sizeof c[n]);
        c[n].ip.family = a->family;
        c[n].ip.ifindex = a->ifindex;
        memcpy(c[n].ip.addr, a->addr, sizeof c[n].ip.addr);
        c[n].rank = a->family == 4 ? 0 : link_local ? 1 : 2;
        n++;
    }
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
            const ota_mcast_if_t *itf = ota_mcast_scan_if(&scan, c[k].ip.ifindex);
            snprintf(names[nw], sizeof names[nw], "%s", itf ? itf->name : "?");
            want[nw++] = c[k].ip.ifindex;
        }
        update_joins(ctx, fam, want, nw, (const char(*)[IF_NAMESIZE])names);
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
static void send_failed(ota_posix_t *ctx, const ota_ip_t *to, int err)
{
    ota_posix_mdns_t *md = &ctx->mdns;
    uint32_t now = ota_posix_now_ms();
    if (md->errors_logged && (uint32_t)(now - md->err_logged_at) < ERR_LOG_EVERY_MS) {
        md->errors_quiet++;
        return;
    }
    char a[INET6_ADDRSTRLEN] = "?";
    inet_ntop(to->family == 4 ? AF_INET : AF_INET6, to->addr, a, sizeof a);
    if (md->errors_quiet > 0)
        ota_posix_logf(ctx, OTA_LOG_WARN, TAG,
                       "cannot send to %s on interface %u: %s (%u "
                       "failures since the last message)",
                       a, (unsigned)to->ifindex, strerror(err), (unsigned)md->errors_quiet);
    else
        ota_posix_logf(ctx, OTA_LOG_WARN, TAG, "cannot send to %s on interface %u: %s", a,
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
            if (ota_mcast_set_if(fd, 4, to->ifindex) != 0) {
                md->mcast_if4 = 0;
                send_failed(ctx, to, errno);
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
            if (ota_mcast_set_if(fd, 6, to->ifindex) != 0) {
                md->mcast_if6 = 0;
                send_failed(ctx, to, errno);
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
    send_failed(ctx, to, e);
    return OTA_ERR_IO;
}
