/*
 * mcast.h - the multicast UDP plumbing of mDNS on Linux, in one place for its two
 * users: the node's responder I/O (mdns_posix.c, port 5353) and the host tool's
 * discovery (src/tools/ota/mdns_query.c, an ephemeral port). A small library of its
 * own (ota_posix_mcast): the tool links it without the rest of the node's port.
 *
 * THE INTERFACE RULE (both users, one function: ota_mcast_scan):
 *   An interface is used for address family F (the group 224.0.0.251 or ff02::fb
 *   is joined on it, queries and announcements go out on it) when it is
 *     - up, running (it has a carrier) and multicast-capable,
 *     - not a loopback interface, and
 *     - holds an address of F the host can send from: IPv4 any address outside
 *       127/8; IPv6 any address but ::1 that is not tentative, DAD-failed,
 *       deprecated or temporary (the flags of /proc/net/if_inet6; in practice the
 *       interface's fe80:: link-local address).
 *   Loopback is never used, neither the interface nor a 127/8 or ::1 address:
 *   nothing else can hear mDNS there. A node bound to a loopback address keeps
 *   mDNS off altogether (mdns_posix.c), so nodes of local tests never talk on the
 *   real LAN; the tests that exercise multicast build veth pairs in network
 *   namespaces (tests/port/test_port_mdns.c, tests/integration/netlab.py).
 *   A user may narrow the set further, never widen it: the node bound to one
 *   address (--bind) serves only the interface holding that address.
 *
 * Why this rule: it was the node's; the tool used to skip only the "running" and
 * "has a usable address" checks, so it also queried interfaces without a carrier
 * or still in duplicate address detection, where a send fails or reaches nobody.
 * With one rule the tool asks on exactly the links where a node answers.
 *
 * The interface list is read again on every ota_mcast_scan() call (the node about
 * once a second), so interfaces that come and go are followed. Nothing here keeps
 * state between calls.
 */
#ifndef OTA_PORT_POSIX_MCAST_H
#define OTA_PORT_POSIX_MCAST_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define OTA_MCAST_MAX_IFS 64    /* interfaces listed per scan (more are ignored) */
#define OTA_MCAST_MAX_ADDRS 128 /* addresses listed per scan (more are ignored) */
#define OTA_MCAST_IFNAME_MAX 16 /* IF_NAMESIZE */

/** ota_mcast_open() flags */
#define OTA_MCAST_RECV_TTL 0x1u /* report the TTL / hop limit of each datagram
                                 * (IP_RECVTTL / IPV6_RECVHOPLIMIT) */

/** Open a non-blocking UDP socket of family (4 or 6) bound to the wildcard address
 *  and port, ready for mDNS: the arrival interface of each datagram is reported
 *  (IP_PKTINFO / IPV6_RECVPKTINFO), multicast and unicast go out with TTL / hop
 *  limit 255 (RFC 6762 11), multicast loops back to the host (a second node, a
 *  browser of the same host hear it), only the groups this socket joined are
 *  received (IP_MULTICAST_ALL off), IPv6 sockets are IPv6 only. A non-zero port is
 *  shared (SO_REUSEADDR + SO_REUSEPORT: Avahi, another node on 5353); port 0 takes
 *  an ephemeral one (a one-shot query, answered by unicast).
 *  \return the fd; OTA_ERR_IO with why set ("cannot bind UDP port 5353 (IPv4): ...").
 */
int ota_mcast_open(int family, uint16_t port, unsigned flags, char *why, size_t why_cap);

/** Join (join true) or leave the mDNS group of family on interface ifindex.
 *  \return 0; OTA_ERR_IO with errno set (EADDRINUSE: already joined). */
int ota_mcast_join(int fd, int family, uint32_t ifindex, bool join);

/** Send the socket's multicast out of interface ifindex (IP_MULTICAST_IF /
 *  IPV6_MULTICAST_IF). \return 0; OTA_ERR_IO with errno set. */
int ota_mcast_set_if(int fd, int family, uint32_t ifindex);

/** An interface the rule accepts for at least one family. */
typedef struct ota_mcast_if {
    uint32_t ifindex;
    char name[OTA_MCAST_IFNAME_MAX];
    bool v4, v6; /* the rule uses it for IPv4 / IPv6 */
} ota_mcast_if_t;

/** An address on one of those interfaces. */
typedef struct ota_mcast_addr {
    uint32_t ifindex;
    uint8_t family; /* 4 or 6 */
    uint8_t plen;   /* prefix length of its subnet (IPv4: of the netmask) */
    bool source;    /* an address the host sends from (it makes the interface count for
                     * its family, and may be advertised); false: only its subnet is
                     * of use (the peer of a point-to-point link, an IPv6 address that
                     * is deprecated, temporary or tentative) */
    uint8_t addr[16];
} ota_mcast_addr_t;

/** What ota_mcast_scan() found: the interfaces in the order the kernel lists them,
 *  the IPv4 addresses (getifaddrs order) before the IPv6 ones (/proc/net/if_inet6
 *  order). */
typedef struct ota_mcast_scan {
    ota_mcast_if_t ifs[OTA_MCAST_MAX_IFS];
    size_t n_ifs;
    ota_mcast_addr_t addrs[OTA_MCAST_MAX_ADDRS];
    size_t n_addrs;
} ota_mcast_scan_t;

/** Read the interfaces the rule above accepts, with their addresses (loopback
 *  addresses, and IPv6 addresses whose duplicate address detection failed, are
 *  left out). \return 0; OTA_ERR_IO (getifaddrs failed: s is empty). */
int ota_mcast_scan(ota_mcast_scan_t *s);

/** The interface of s with ifindex, or NULL. */
const ota_mcast_if_t *ota_mcast_scan_if(const ota_mcast_scan_t *s, uint32_t ifindex);

/** true for 127/8, ::1 and ::ffff:127/104 (family 4: a holds 4 bytes, 6: 16). */
bool ota_mcast_is_loopback(int family, const uint8_t *a);

#endif /* OTA_PORT_POSIX_MCAST_H */
