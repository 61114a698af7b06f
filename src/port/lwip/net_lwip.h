/*
 * net_lwip.h - the network tables of the core (ota/port.h: tcp, udp, mdns) on lwIP's
 * raw callback API, the way an ESP8266 Arduino firmware talks to lwIP.
 *
 * Threads: Debian's liblwip is built with NO_SYS=0 and LWIP_TCPIP_CORE_LOCKING, so
 * lwIP runs in its tcpip thread and calls our callbacks (accept, recv, sent, err, udp
 * recv) from there with the core lock held. The table functions run in the node's
 * main loop and take the core lock (LOCK_TCPIP_CORE) around their raw-API calls, so
 * the callbacks and the tables never see each other's work half done. On a
 * single-threaded NO_SYS firmware the lock macros are empty and the same code holds.
 *
 * Memory: no heap of our own. Connections live in a static pool of slots; received
 * data stays in the pbufs lwIP handed us (one chain per connection) until the core
 * reads it, and only then does tcp_recved() open the window again: a core that is
 * busy (a slow flash erase) throttles the uploader through TCP itself. Sends copy
 * into lwIP's send buffer (tcp_write with TCP_WRITE_FLAG_COPY) up to tcp_sndbuf():
 * a full buffer is a short count or OTA_ERR_WOULD_BLOCK.
 */
#ifndef OTA_PORT_LWIP_NET_LWIP_H
#define OTA_PORT_LWIP_NET_LWIP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "lwip/ip_addr.h"
#include "lwip/netif.h"
#include "lwip/sys.h"
#include "ota/port.h"

/* Connection slots: the OTA sessions (OTA_CFG_MAX_SESSIONS) plus the one being
 * accepted and turned away, ArduinoOTA's back-connection, the log viewers. */
#ifndef OTA_LWIP_MAX_CONNS
#define OTA_LWIP_MAX_CONNS (OTA_CFG_MAX_SESSIONS + 8)
#endif
#define OTA_LWIP_MAX_LISTENERS 2 /* OTA port, log port */
#define OTA_LWIP_UDP_QUEUE 4     /* datagrams kept per UDP socket until read */

struct tcp_pcb;
struct udp_pcb;
struct pbuf;
typedef struct ota_lwip_net ota_lwip_net_t;

/** One connection slot (net_lwip.c's states: free, accepted but not yet taken by the
 *  core, open, connecting). The pcb is NULL once lwIP freed it (tcp_err). */
typedef struct ota_lwip_conn {
    ota_lwip_net_t *net; /* the owner: the callbacks get the slot as their arg */
    struct tcp_pcb *pcb;
    struct pbuf *rx;     /* received, not yet read: a chain, its first rx_off bytes read */
    size_t rx_len;       /* unread bytes in rx (pbuf tot_len is 16 bits: not used) */
    uint16_t rx_off;
    uint8_t state;
    uint8_t listener;    /* which listener accepted it */
    bool fin;            /* the peer closed its side */
    int8_t err;          /* the lwIP error that ended it (tcp_err), 0 = none */
    uint32_t seq;        /* accept order: the core takes the oldest first */
} ota_lwip_conn_t;

/** A listening TCP port and its table (the core's accept takes only its own). */
typedef struct ota_lwip_listener {
    ota_lwip_net_t *net;
    struct tcp_pcb *pcb;
    uint8_t index;
    ota_tcp_port_t tcp; /* ctx = this listener */
} ota_lwip_listener_t;

typedef struct ota_lwip_dgram {
    struct pbuf *p;
    ip_addr_t from;
    uint16_t port;
    uint8_t ttl;
    uint8_t on_link;    /* OTA_MDNS_LINK_* */
    uint32_t ifindex;
} ota_lwip_dgram_t;

/** A UDP socket with a small queue of datagrams for the main loop. */
typedef struct ota_lwip_udp {
    ota_lwip_net_t *net;
    struct udp_pcb *pcb;
    ota_lwip_dgram_t q[OTA_LWIP_UDP_QUEUE];
    uint8_t head, count;
    uint32_t dropped; /* queue full: mDNS and ArduinoOTA's retries tolerate loss */
} ota_lwip_udp_t;

/** What the port holds of lwIP's memory, for the RAM figures (lwIP's own LWIP_STATS
 *  are compiled out of Debian's library). */
typedef struct ota_lwip_net_stats {
    uint32_t rx_pbufs, rx_pbufs_max;   /* pbufs queued for the core (pbuf_clen) */
    uint32_t rx_bytes, rx_bytes_max;   /* their unread bytes */
    uint32_t snd_queue, snd_queue_max; /* pbufs in lwIP's send queues (tcp_sndqueuelen) */
    uint32_t conns, conns_max;         /* connection slots in use */
    uint32_t accept_refused;           /* accepted by lwIP with every slot taken: aborted */
    uint32_t udp_dropped;
} ota_lwip_net_stats_t;

struct ota_lwip_net {
    struct netif *netif; /* the interface mDNS serves */
    ota_lwip_conn_t conns[OTA_LWIP_MAX_CONNS];
    ota_lwip_listener_t listeners[OTA_LWIP_MAX_LISTENERS];
    uint8_t n_listeners;
    uint32_t seq;
    ota_lwip_udp_t arduino, mdns;
    ota_udp_port_t udp_table;
    ota_mdns_port_t mdns_table;
    sys_sem_t wake;      /* signalled by the callbacks: the main loop has work */
    bool wake_valid, wake_pending;
    ota_lwip_net_stats_t stats;
};

/** Start on netif (up, with its address). \return 0, OTA_ERR_IO (no semaphore). */
int ota_lwip_net_init(ota_lwip_net_t *n, struct netif *netif);
/** Close every connection and socket (under the core lock). Safe twice. */
void ota_lwip_net_free(ota_lwip_net_t *n);

/** Listen on TCP port (any address) and return its table in *table (accept, recv,
 *  send, close, connect). \return 0, OTA_ERR_IO (bind failed: err says why). */
int ota_lwip_net_listen(ota_lwip_net_t *n, uint16_t port, const ota_tcp_port_t **table,
                        char *err, size_t err_cap);
/** The ArduinoOTA invitation socket on UDP port. \return 0, OTA_ERR_IO. */
int ota_lwip_net_udp_open(ota_lwip_net_t *n, uint16_t port, const ota_udp_port_t **table,
                          char *err, size_t err_cap);
/** UDP 5353 joined to 224.0.0.251 on the netif (IGMP). \return 0, OTA_ERR_IO. */
int ota_lwip_net_mdns_open(ota_lwip_net_t *n, const ota_mdns_port_t **table, char *err,
                           size_t err_cap);

/** The main loop's idle wait: until a callback had news, or timeout_ms. */
void ota_lwip_net_wait(ota_lwip_net_t *n, uint32_t timeout_ms);
/** A snapshot of the memory figures above. */
void ota_lwip_net_get_stats(ota_lwip_net_t *n, ota_lwip_net_stats_t *out);

#endif /* OTA_PORT_LWIP_NET_LWIP_H */
