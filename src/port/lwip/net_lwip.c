/*
 * net_lwip.c - the core's tcp, udp and mdns tables on lwIP's raw API (net_lwip.h says
 * which thread does what and why nothing here allocates).
 */
#include "net_lwip.h"

#include <stdio.h>
#include <string.h>

#include "lwip/igmp.h"
#include "lwip/ip.h"
#include "lwip/pbuf.h"
#include "lwip/prot/ip4.h"
#include "lwip/tcp.h"
#include "lwip/tcpip.h"
#include "lwip/udp.h"
#include "ota/errors.h"

#define C_FREE 0
#define C_PENDING 1    /* accepted by lwIP, not yet by the core */
#define C_OPEN 2
#define C_CONNECTING 3 /* our tcp_connect, no answer yet */

#define MDNS_PORT 5353

static void wake(ota_lwip_net_t *n)
{
    /* at most one signal outstanding: the semaphore counts, and a count left over from
     * a busy upload would make the idle loop spin */
    if (n->wake_valid && !n->wake_pending) {
        n->wake_pending = true;
        sys_sem_signal(&n->wake);
    }
}

static void count_conns(ota_lwip_net_t *n)
{
    uint32_t used = 0;
    for (size_t i = 0; i < OTA_LWIP_MAX_CONNS; i++)
        used += n->conns[i].state != C_FREE;
    n->stats.conns = used;
    if (used > n->stats.conns_max)
        n->stats.conns_max = used;
}

/* Under the lock: the pbufs and bytes the core has not read yet, the send queues. */
static void count_buffers(ota_lwip_net_t *n)
{
    uint32_t pbufs = 0, bytes = 0, sndq = 0;
    for (size_t i = 0; i < OTA_LWIP_MAX_CONNS; i++) {
        const ota_lwip_conn_t *c = &n->conns[i];
        for (const struct pbuf *p = c->rx; p != NULL; p = p->next)
            pbufs++;
        bytes += (uint32_t)c->rx_len;
        if (c->pcb != NULL && c->state != C_FREE)
            sndq += tcp_sndqueuelen(c->pcb);
    }
    n->stats.rx_pbufs = pbufs;
    n->stats.rx_bytes = bytes;
    n->stats.snd_queue = sndq;
    if (pbufs > n->stats.rx_pbufs_max)
        n->stats.rx_pbufs_max = pbufs;
    if (bytes > n->stats.rx_bytes_max)
        n->stats.rx_bytes_max = bytes;
    if (sndq > n->stats.snd_queue_max)
        n->stats.snd_queue_max = sndq;
}

/* tcp_recved takes 16 bits at a time */
static void give_window(struct tcp_pcb *pcb, size_t len)
{
    while (len > 0) {
        u16_t part = len > 0xFFFFu ? 0xFFFFu : (u16_t)len;
        tcp_recved(pcb, part);
        len -= part;
    }
}

/* Drop the unread bytes; their window goes back to the peer, so that the close below
 * is an orderly FIN (lwIP answers a close with unread data by a reset, which can
 * overtake the error byte the core has just sent). */
static void drop_rx(ota_lwip_conn_t *c)
{
    if (c->rx != NULL) {
        if (c->pcb != NULL)
            give_window(c->pcb, c->rx_len);
        pbuf_free(c->rx);
    }
    c->rx = NULL;
    c->rx_len = 0;
    c->rx_off = 0;
}

static void detach(struct tcp_pcb *pcb)
{
    tcp_arg(pcb, NULL);
    tcp_recv(pcb, NULL); /* lwIP's tcp_recv_null then takes what still arrives */
    tcp_sent(pcb, NULL);
    tcp_err(pcb, NULL);
}

static void release(ota_lwip_conn_t *c)
{
    ota_lwip_net_t *n = c->net;
    drop_rx(c);
    if (c->pcb != NULL) {
        detach(c->pcb);
        if (tcp_close(c->pcb) != ERR_OK) /* no memory for the FIN now: reset instead */
            tcp_abort(c->pcb);
    }
    memset(c, 0, sizeof *c);
    c->net = n;
    count_conns(n);
}

/* ---- lwIP callbacks: tcpip thread, core lock held ---- */

static err_t on_recv(void *arg, struct tcp_pcb *pcb, struct pbuf *p, err_t err)
{
    ota_lwip_conn_t *c = arg;
    (void)pcb;
    if (c == NULL) { /* cannot happen: detach() clears the callback with the arg */
        if (p != NULL)
            pbuf_free(p);
        return ERR_OK;
    }
    if (p == NULL) {
        c->fin = true;
    } else if (err != ERR_OK) {
        pbuf_free(p);
    } else {
        /* keep lwIP's pbufs as they are: no copy, and the window stays closed for
         * them until the core has read them */
        if (c->rx == NULL)
            c->rx = p;
        else
            pbuf_cat(c->rx, p);
        c->rx_len += p->tot_len;
        count_buffers(c->net);
    }
    wake(c->net);
    return ERR_OK;
}

static err_t on_sent(void *arg, struct tcp_pcb *pcb, u16_t len)
{
    (void)pcb;
    (void)len;
    if (arg != NULL)
        wake(((ota_lwip_conn_t *)arg)->net); /* room in the send buffer again */
    return ERR_OK;
}

/* lwIP has freed the pcb (reset, or it gave up retransmitting). */
static void on_err(void *arg, err_t err)
{
    ota_lwip_conn_t *c = arg;
    if (c == NULL)
        return;
    c->pcb = NULL;
    c->err = (int8_t)(err == ERR_OK ? ERR_ABRT : err);
    if (c->state == C_PENDING) /* the core never saw it */
        release(c);
    wake(c->net);
}

static err_t on_connected(void *arg, struct tcp_pcb *pcb, err_t err)
{
    ota_lwip_conn_t *c = arg;
    (void)pcb;
    if (c != NULL) {
        if (err == ERR_OK && c->state == C_CONNECTING)
            c->state = C_OPEN;
        wake(c->net);
    }
    return ERR_OK;
}

static void attach(ota_lwip_conn_t *c, struct tcp_pcb *pcb)
{
    c->pcb = pcb;
    tcp_arg(pcb, c);
    tcp_recv(pcb, on_recv);
    tcp_sent(pcb, on_sent);
    tcp_err(pcb, on_err);
    tcp_nagle_disable(pcb); /* the protocol's one-byte answers must not wait for acks */
}

static ota_lwip_conn_t *free_slot(ota_lwip_net_t *n)
{
    for (size_t i = 0; i < OTA_LWIP_MAX_CONNS; i++)
        if (n->conns[i].state == C_FREE)
            return &n->conns[i];
    return NULL;
}

static err_t on_accept(void *arg, struct tcp_pcb *pcb, err_t err)
{
    ota_lwip_listener_t *l = arg;
    if (err != ERR_OK || pcb == NULL || l == NULL)
        return ERR_VAL;
    ota_lwip_net_t *n = l->net;
    ota_lwip_conn_t *c = free_slot(n);
    if (c == NULL) { /* every slot taken: the peer gets a reset, as from a full backlog */
        n->stats.accept_refused++;
        tcp_abort(pcb);
        return ERR_ABRT;
    }
    c->state = C_PENDING;
    c->listener = l->index;
    c->seq = ++n->seq;
    attach(c, pcb);
    count_conns(n);
    wake(n);
    return ERR_OK;
}

/* ---- the tcp table (main loop) ---- */

static ota_lwip_conn_t *conn_of(ota_lwip_net_t *n, ota_conn_t conn)
{
    if (conn < 0 || conn >= OTA_LWIP_MAX_CONNS || n->conns[conn].state == C_FREE ||
        n->conns[conn].state == C_PENDING)
        return NULL;
    return &n->conns[conn];
}

static int t_accept(void *ctx, ota_conn_t *conn, char *peer, size_t peer_len)
{
    ota_lwip_listener_t *l = ctx;
    ota_lwip_net_t *n = l->net;
    int rc = OTA_ERR_WOULD_BLOCK;
    LOCK_TCPIP_CORE();
    ota_lwip_conn_t *best = NULL;
    for (size_t i = 0; i < OTA_LWIP_MAX_CONNS; i++) {
        ota_lwip_conn_t *c = &n->conns[i];
        if (c->state == C_PENDING && c->listener == l->index &&
            (best == NULL || (int32_t)(c->seq - best->seq) < 0))
            best = c;
    }
    if (best != NULL) {
        best->state = C_OPEN;
        *conn = (ota_conn_t)(best - n->conns);
        if (peer != NULL && peer_len > 0) {
            char ip[IPADDR_STRLEN_MAX];
            if (best->pcb != NULL) {
                ipaddr_ntoa_r(&best->pcb->remote_ip, ip, sizeof ip);
                snprintf(peer, peer_len, "%s:%u", ip, (unsigned)best->pcb->remote_port);
            } else {
                snprintf(peer, peer_len, "?");
            }
        }
        rc = 0;
    }
    UNLOCK_TCPIP_CORE();
    return rc;
}

static int t_recv(void *ctx, ota_conn_t conn, uint8_t *buf, size_t len)
{
    ota_lwip_net_t *n = ((ota_lwip_listener_t *)ctx)->net;
    int rc;
    LOCK_TCPIP_CORE();
    ota_lwip_conn_t *c = conn_of(n, conn);
    if (c == NULL) {
        rc = OTA_ERR_IO;
    } else if (c->rx_len > 0 && len > 0) {
        if (len > (size_t)INT32_MAX)
            len = (size_t)INT32_MAX;
        size_t got = 0;
        while (got < len && c->rx != NULL) {
            struct pbuf *p = c->rx;
            size_t avail = (size_t)p->len - c->rx_off;
            size_t take = avail < len - got ? avail : len - got;
            memcpy(buf + got, (const uint8_t *)p->payload + c->rx_off, take);
            got += take;
            c->rx_off = (uint16_t)(c->rx_off + take);
            if (c->rx_off == p->len) {
                /* the first pbuf is done: keep the rest of the chain alive (its own
                 * reference) before letting go of the head */
                c->rx = p->next;
                if (c->rx != NULL)
                    pbuf_ref(c->rx);
                pbuf_free(p);
                c->rx_off = 0;
            }
        }
        c->rx_len -= got;
        if (c->pcb != NULL)
            give_window(c->pcb, got); /* only what the core has taken */
        rc = (int)got;
    } else if (c->state == C_CONNECTING) {
        rc = c->pcb == NULL ? OTA_ERR_CLOSED : OTA_ERR_WOULD_BLOCK; /* refused */
    } else if (c->fin) {
        rc = OTA_ERR_CLOSED;
    } else if (c->pcb == NULL) {
        rc = OTA_ERR_IO; /* reset, or lwIP gave up */
    } else {
        rc = OTA_ERR_WOULD_BLOCK;
    }
    if (c != NULL)
        count_buffers(n);
    UNLOCK_TCPIP_CORE();
    return rc;
}

static int t_send(void *ctx, ota_conn_t conn, const uint8_t *buf, size_t len)
{
    ota_lwip_net_t *n = ((ota_lwip_listener_t *)ctx)->net;
    int rc;
    LOCK_TCPIP_CORE();
    ota_lwip_conn_t *c = conn_of(n, conn);
    if (c == NULL) {
        rc = OTA_ERR_IO;
    } else if (c->pcb == NULL) {
        rc = c->err == ERR_RST || c->err == ERR_CLSD ? OTA_ERR_CLOSED : OTA_ERR_IO;
    } else if (c->state == C_CONNECTING) {
        rc = OTA_ERR_WOULD_BLOCK;
    } else if (len == 0) {
        rc = 0;
    } else {
        /* back-pressure: what fits in lwIP's send buffer now, the rest is a short count */
        size_t room = tcp_sndbuf(c->pcb);
        size_t n_send = len < room ? len : room;
        if (n_send > 0xFFFFu)
            n_send = 0xFFFFu;
        err_t e = ERR_MEM;
        while (n_send > 0) {
            e = tcp_write(c->pcb, buf, (u16_t)n_send, TCP_WRITE_FLAG_COPY);
            if (e != ERR_MEM)
                break;
            n_send /= 2; /* the segment queue (TCP_SND_QUEUELEN) is full before the bytes */
        }
        if (n_send == 0 || e == ERR_MEM) {
            rc = OTA_ERR_WOULD_BLOCK;
        } else if (e != ERR_OK) {
            rc = e == ERR_CONN || e == ERR_CLSD ? OTA_ERR_CLOSED : OTA_ERR_IO;
        } else {
            tcp_output(c->pcb);
            rc = (int)n_send;
        }
        count_buffers(n);
    }
    UNLOCK_TCPIP_CORE();
    return rc;
}

static void t_close(void *ctx, ota_conn_t conn)
{
    ota_lwip_net_t *n = ((ota_lwip_listener_t *)ctx)->net;
    LOCK_TCPIP_CORE();
    ota_lwip_conn_t *c = conn_of(n, conn);
    if (c != NULL)
        release(c);
    count_buffers(n);
    UNLOCK_TCPIP_CORE();
}

static int t_connect(void *ctx, const char *ip, uint16_t port, ota_conn_t *conn)
{
    ota_lwip_net_t *n = ((ota_lwip_listener_t *)ctx)->net;
    ip_addr_t addr;
    if (!ipaddr_aton(ip, &addr) || !IP_IS_V4(&addr))
        return OTA_ERR_IO;
    int rc = OTA_ERR_IO;
    LOCK_TCPIP_CORE();
    ota_lwip_conn_t *c = free_slot(n);
    struct tcp_pcb *pcb = c != NULL ? tcp_new_ip_type(IPADDR_TYPE_V4) : NULL;
    if (pcb != NULL) {
        c->state = C_CONNECTING;
        c->listener = 0xFF;
        attach(c, pcb);
        if (tcp_connect(pcb, &addr, port, on_connected) == ERR_OK) {
            *conn = (ota_conn_t)(c - n->conns);
            rc = 0;
        } else {
            release(c);
        }
        count_conns(n);
    }
    UNLOCK_TCPIP_CORE();
    return rc;
}

/* ---- UDP: a queue of datagrams per socket ---- */

static void u_input(void *arg, struct udp_pcb *pcb, struct pbuf *p, const ip_addr_t *addr,
                      u16_t port)
{
    ota_lwip_udp_t *u = arg;
    (void)pcb;
    if (u->count == OTA_LWIP_UDP_QUEUE) {
        u->dropped++;
        pbuf_free(p);
        return;
    }
    ota_lwip_dgram_t *d = &u->q[(u->head + u->count) % OTA_LWIP_UDP_QUEUE];
    d->p = p;
    ip_addr_copy(d->from, *addr);
    d->port = port;
    /* what the mDNS responder's on-link rule needs, known only here (ip_current_*) */
    const struct netif *in = ip_current_netif();
    d->ifindex = in != NULL ? netif_get_index(in) : 0;
    d->ttl = 0;
    d->on_link = OTA_MDNS_LINK_UNKNOWN;
    if (ip_current_is_v6() == 0 && ip4_current_header() != NULL)
        d->ttl = IPH_TTL(ip4_current_header());
    if (in != NULL && IP_IS_V4(addr)) {
        const ip4_addr_t *src = ip_2_ip4(addr);
        bool ll = (lwip_ntohl(ip4_addr_get_u32(src)) & 0xFFFF0000u) == 0xA9FE0000u;
        d->on_link = ll || ip4_addr_netcmp(src, netif_ip4_addr(in), netif_ip4_netmask(in))
                         ? OTA_MDNS_LINK_ON
                         : OTA_MDNS_LINK_OFF;
    }
    u->count++;
    wake(u->net);
}

/* Take the oldest datagram (under the lock). \return its length or WOULD_BLOCK. */
static int udp_take(ota_lwip_udp_t *u, uint8_t *buf, size_t len, ota_lwip_dgram_t *meta)
{
    if (u->count == 0)
        return OTA_ERR_WOULD_BLOCK;
    ota_lwip_dgram_t *d = &u->q[u->head];
    u->head = (uint8_t)((u->head + 1) % OTA_LWIP_UDP_QUEUE);
    u->count--;
    size_t total = d->p->tot_len;
    size_t n = total < len ? total : len;
    if (n > 0xFFFFu)
        n = 0xFFFFu;
    pbuf_copy_partial(d->p, buf, (u16_t)n, 0);
    pbuf_free(d->p);
    *meta = *d;
    meta->p = NULL;
    return (int)n;
}

static struct pbuf *udp_pbuf(const uint8_t *buf, size_t len)
{
    if (len > 0xFFFFu)
        return NULL;
    struct pbuf *p = pbuf_alloc(PBUF_TRANSPORT, (u16_t)len, PBUF_RAM);
    if (p != NULL && pbuf_take(p, buf, (u16_t)len) != ERR_OK) {
        pbuf_free(p);
        p = NULL;
    }
    return p;
}

static int u_recv(void *ctx, uint8_t *buf, size_t len, char *from, size_t from_len,
                       uint16_t *from_port)
{
    ota_lwip_udp_t *u = ctx;
    ota_lwip_dgram_t d;
    LOCK_TCPIP_CORE();
    int rc = udp_take(u, buf, len, &d);
    UNLOCK_TCPIP_CORE();
    if (rc >= 0) {
        if (from != NULL && from_len > 0)
            ipaddr_ntoa_r(&d.from, from, (int)(from_len > 64 ? 64 : from_len));
        if (from_port != NULL)
            *from_port = d.port;
    }
    return rc;
}

static int u_send(void *ctx, const char *ip, uint16_t port, const uint8_t *buf, size_t len)
{
    ota_lwip_udp_t *u = ctx;
    ip_addr_t addr;
    if (!ipaddr_aton(ip, &addr))
        return OTA_ERR_IO;
    LOCK_TCPIP_CORE();
    struct pbuf *p = udp_pbuf(buf, len);
    err_t e = p != NULL ? udp_sendto(u->pcb, p, &addr, port) : ERR_MEM;
    if (p != NULL)
        pbuf_free(p);
    UNLOCK_TCPIP_CORE();
    return e == ERR_OK ? 0 : e == ERR_MEM ? OTA_ERR_WOULD_BLOCK : OTA_ERR_IO;
}

static int open_udp(ota_lwip_net_t *n, ota_lwip_udp_t *u, uint16_t port, char *err,
                    size_t err_cap)
{
    memset(u, 0, sizeof *u);
    u->net = n;
    LOCK_TCPIP_CORE();
    u->pcb = udp_new_ip_type(IPADDR_TYPE_V4);
    err_t e = u->pcb != NULL ? udp_bind(u->pcb, IP4_ADDR_ANY, port) : ERR_MEM;
    if (e == ERR_OK) {
        udp_recv(u->pcb, u_input, u);
    } else if (u->pcb != NULL) {
        udp_remove(u->pcb);
        u->pcb = NULL;
    }
    UNLOCK_TCPIP_CORE();
    if (e != ERR_OK) {
        snprintf(err, err_cap, "UDP port %u: %s", (unsigned)port, lwip_strerr(e));
        return OTA_ERR_IO;
    }
    return 0;
}

static void close_udp(ota_lwip_udp_t *u)
{
    if (u->pcb != NULL) {
        udp_remove(u->pcb);
        u->pcb = NULL;
    }
    while (u->count > 0) {
        pbuf_free(u->q[u->head].p);
        u->head = (uint8_t)((u->head + 1) % OTA_LWIP_UDP_QUEUE);
        u->count--;
    }
}

/* ---- mDNS ---- */

static int mdns_recv_meta_fn(void *ctx, uint8_t *buf, size_t len, ota_ip_t *from,
                             uint16_t *from_port, ota_mdns_rx_meta_t *meta)
{
    ota_lwip_net_t *n = ctx;
    ota_lwip_dgram_t d;
    LOCK_TCPIP_CORE();
    int rc = udp_take(&n->mdns, buf, len, &d);
    UNLOCK_TCPIP_CORE();
    if (rc < 0)
        return rc;
    memset(from, 0, sizeof *from);
    if (IP_IS_V4(&d.from)) {
        from->family = 4;
        memcpy(from->addr, &ip_2_ip4(&d.from)->addr, 4);
    } else {
        from->family = 6;
        memcpy(from->addr, ip_2_ip6(&d.from)->addr, 16);
    }
    from->ifindex = d.ifindex;
    *from_port = d.port;
    if (meta != NULL) {
        meta->on_link = d.on_link;
        meta->ttl_known = d.ttl != 0;
        meta->ttl = d.ttl;
    }
    return rc;
}

static int mdns_recv_fn(void *ctx, uint8_t *buf, size_t len, ota_ip_t *from, uint16_t *from_port)
{
    return mdns_recv_meta_fn(ctx, buf, len, from, from_port, NULL);
}

static int mdns_send_fn(void *ctx, const uint8_t *buf, size_t len, const ota_ip_t *to,
                        uint16_t to_port)
{
    ota_lwip_net_t *n = ctx;
    if (to->family != 4)
        return OTA_ERR_IO; /* the responder runs IPv4-only here (ipv4_only) */
    ip_addr_t dst;
    IP_ADDR4(&dst, to->addr[0], to->addr[1], to->addr[2], to->addr[3]);
    LOCK_TCPIP_CORE();
    struct netif *out = to->ifindex != 0 ? netif_get_by_index((u8_t)to->ifindex) : n->netif;
    if (out == NULL)
        out = n->netif;
    struct pbuf *p = udp_pbuf(buf, len);
    err_t e = p != NULL ? udp_sendto_if(n->mdns.pcb, p, &dst, to_port, out) : ERR_MEM;
    if (p != NULL)
        pbuf_free(p);
    UNLOCK_TCPIP_CORE();
    return e == ERR_OK ? 0 : e == ERR_MEM ? OTA_ERR_WOULD_BLOCK : OTA_ERR_IO;
}

static int mdns_addrs_fn(void *ctx, ota_ip_t *out, size_t max)
{
    ota_lwip_net_t *n = ctx;
    int count = 0;
    LOCK_TCPIP_CORE();
    struct netif *nif = n->netif;
    if (max > 0 && nif != NULL && netif_is_up(nif) && netif_is_link_up(nif) &&
        !ip4_addr_isany(netif_ip4_addr(nif))) {
        memset(&out[0], 0, sizeof out[0]);
        out[0].family = 4;
        memcpy(out[0].addr, &netif_ip4_addr(nif)->addr, 4);
        out[0].ifindex = netif_get_index(nif);
        count = 1;
    }
    UNLOCK_TCPIP_CORE();
    return count;
}

/* ---- set-up ---- */

int ota_lwip_net_init(ota_lwip_net_t *n, struct netif *netif)
{
    memset(n, 0, sizeof *n);
    n->netif = netif;
    for (size_t i = 0; i < OTA_LWIP_MAX_CONNS; i++)
        n->conns[i].net = n;
    if (sys_sem_new(&n->wake, 0) != ERR_OK)
        return OTA_ERR_IO;
    n->wake_valid = true;
    return 0;
}

int ota_lwip_net_listen(ota_lwip_net_t *n, uint16_t port, const ota_tcp_port_t **table,
                        char *err, size_t err_cap)
{
    if (n->n_listeners == OTA_LWIP_MAX_LISTENERS) {
        snprintf(err, err_cap, "TCP port %u: no listener slot left", (unsigned)port);
        return OTA_ERR_IO;
    }
    ota_lwip_listener_t *l = &n->listeners[n->n_listeners];
    memset(l, 0, sizeof *l);
    l->net = n;
    l->index = n->n_listeners;
    LOCK_TCPIP_CORE();
    struct tcp_pcb *pcb = tcp_new_ip_type(IPADDR_TYPE_V4);
    err_t e = pcb != NULL ? tcp_bind(pcb, IP4_ADDR_ANY, port) : ERR_MEM;
    if (e == ERR_OK) {
        /* tcp_listen frees pcb and returns the smaller listening pcb */
        l->pcb = tcp_listen_with_backlog_and_err(pcb, TCP_DEFAULT_LISTEN_BACKLOG, &e);
        if (l->pcb == NULL)
            tcp_close(pcb);
    } else if (pcb != NULL) {
        tcp_close(pcb);
    }
    if (l->pcb != NULL) {
        tcp_arg(l->pcb, l);
        tcp_accept(l->pcb, on_accept);
    }
    UNLOCK_TCPIP_CORE();
    if (l->pcb == NULL) {
        snprintf(err, err_cap, "TCP port %u: %s", (unsigned)port, lwip_strerr(e));
        return OTA_ERR_IO;
    }
    l->tcp = (ota_tcp_port_t){.accept = t_accept, .recv = t_recv,
                              .send = t_send, .close = t_close,
                              .connect = t_connect, .ctx = l};
    n->n_listeners++;
    *table = &l->tcp;
    return 0;
}

int ota_lwip_net_udp_open(ota_lwip_net_t *n, uint16_t port, const ota_udp_port_t **table,
                          char *err, size_t err_cap)
{
    int rc = open_udp(n, &n->arduino, port, err, err_cap);
    if (rc != 0)
        return rc;
    n->udp_table = (ota_udp_port_t){.recv = u_recv, .send = u_send, .ctx = &n->arduino};
    *table = &n->udp_table;
    return 0;
}

int ota_lwip_net_mdns_open(ota_lwip_net_t *n, const ota_mdns_port_t **table, char *err,
                           size_t err_cap)
{
    int rc = open_udp(n, &n->mdns, MDNS_PORT, err, err_cap);
    if (rc != 0)
        return rc;
    ip4_addr_t group;
    IP4_ADDR(&group, 224, 0, 0, 251);
    LOCK_TCPIP_CORE();
    /* RFC 6762 11: every mDNS datagram goes out with TTL 255 and is checked for it */
    udp_set_multicast_ttl(n->mdns.pcb, 255);
    n->mdns.pcb->ttl = 255;
    err_t e = igmp_joingroup_netif(n->netif, &group);
    if (e != ERR_OK)
        close_udp(&n->mdns);
    UNLOCK_TCPIP_CORE();
    if (e != ERR_OK) {
        snprintf(err, err_cap, "IGMP join of 224.0.0.251: %s", lwip_strerr(e));
        return OTA_ERR_IO;
    }
    n->mdns_table = (ota_mdns_port_t){.recv = mdns_recv_fn, .send = mdns_send_fn,
                                      .addrs = mdns_addrs_fn, .recv_meta = mdns_recv_meta_fn,
                                      .ctx = n};
    *table = &n->mdns_table;
    return 0;
}

void ota_lwip_net_wait(ota_lwip_net_t *n, uint32_t timeout_ms)
{
    if (timeout_ms > 0 && n->wake_valid)
        sys_arch_sem_wait(&n->wake, timeout_ms); /* 0 would mean "forever" there */
    LOCK_TCPIP_CORE();
    n->wake_pending = false; /* a callback from now on signals again */
    UNLOCK_TCPIP_CORE();
}

void ota_lwip_net_get_stats(ota_lwip_net_t *n, ota_lwip_net_stats_t *out)
{
    LOCK_TCPIP_CORE();
    count_buffers(n);
    n->stats.udp_dropped = n->arduino.dropped + n->mdns.dropped;
    *out = n->stats;
    UNLOCK_TCPIP_CORE();
}

void ota_lwip_net_free(ota_lwip_net_t *n)
{
    LOCK_TCPIP_CORE();
    for (size_t i = 0; i < OTA_LWIP_MAX_CONNS; i++)
        if (n->conns[i].state != C_FREE)
            release(&n->conns[i]);
    for (size_t i = 0; i < n->n_listeners; i++) {
        if (n->listeners[i].pcb != NULL) {
            tcp_arg(n->listeners[i].pcb, NULL);
            tcp_accept(n->listeners[i].pcb, NULL);
            tcp_close(n->listeners[i].pcb);
            n->listeners[i].pcb = NULL;
        }
    }
    n->n_listeners = 0;
    if (n->mdns.pcb != NULL && n->netif != NULL) {
        ip4_addr_t group;
        IP4_ADDR(&group, 224, 0, 0, 251);
        igmp_leavegroup_netif(n->netif, &group);
    }
    close_udp(&n->arduino);
    close_udp(&n->mdns);
    UNLOCK_TCPIP_CORE();
    if (n->wake_valid) {
        sys_sem_free(&n->wake);
        n->wake_valid = false;
    }
}
