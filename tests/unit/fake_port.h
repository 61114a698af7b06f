/*
 * fake_port.h - an in-memory port for unit tests of the core: scripted
 * connections (the test writes what the client sends and reads what the device
 * answered), a RAM slot with injectable faults, deterministic random bytes,
 * mbedTLS hashing and zlib inflation. The clock is whatever the test passes to
 * ota_server_poll().
 */
#ifndef OTA_TESTS_UNIT_FAKE_PORT_H
#define OTA_TESTS_UNIT_FAKE_PORT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "ota/port.h"
#include "ota/server.h"

#define FAKE_MAX_CONNS 16
#define FAKE_BUF_MAX (1u << 20)

typedef struct fake_conn {
    bool used;          /* handed out by accept */
    bool pending;       /* waiting in the accept queue */
    bool device_closed; /* the device called net_close */
    bool peer_closed;   /* the client hung up: recv returns CLOSED once drained */
    uint8_t *in;        /* client -> device */
    size_t in_len, in_off;
    uint8_t *out;       /* device -> client */
    size_t out_len, out_read;
    size_t recv_limit;  /* most bytes one net_recv hands out (0: no limit) */
    size_t send_limit;  /* most bytes one net_send takes (0: no limit) */
    bool send_blocked;  /* net_send answers WOULD_BLOCK */
    char peer[64];
} fake_conn_t;

/** The port's tables over the fake functions (fake_tables()). */
typedef struct fake_tables {
    ota_tcp_port_t tcp;
    ota_udp_port_t udp;
    ota_store_port_t slot, data;
    ota_boot_port_t boot;
    ota_crypto_port_t crypto;
    ota_inflate_port_t inflate;
    ota_log_port_t log;
    ota_server_ports_t server;
} fake_tables_t;

typedef struct fake_port {
    fake_conn_t conns[FAKE_MAX_CONNS];
    /* slot */
    uint8_t *slot;
    size_t slot_capacity;
    size_t slot_high;      /* highest byte written + 1 */
    int begin_calls, write_calls, finish_calls, activate_calls, abort_calls;
    int resume_calls, sync_calls;
    size_t slot_synced;    /* slot_high at the last sync */
    size_t read_limit;     /* most bytes one slot read hands out (0: no limit) */
    bool slot_open;
    bool activated;
    uint32_t finished_size;
    int fail_begin;        /* error slot_begin returns (0: none) */
    int begin_blocks;      /* slot_begin answers WOULD_BLOCK this many more times (erasing) */
    int fail_write_at;     /* 1-based write call that fails with OTA_ERR_WRITE (0: none) */
    int fail_finish;       /* error slot_finish returns (0: none) */
    int fail_activate;     /* error slot_activate returns (0: none) */
    bool write_would_block_every_other; /* alternate WOULD_BLOCK / OK */
    bool last_write_blocked;
    /* system */
    int reboots;
    uint8_t random_counter;
    bool random_fixed;     /* random bytes are all random_byte (to steer early drop) */
    uint8_t random_byte;
    bool verbose;          /* print log lines */
    char last_log[256];
    int log_lines;
    /* ArduinoOTA: queued datagrams (from 10.0.0.9:5555), the last reply, connects */
    uint8_t dgram[8][300];
    size_t dgram_len[8];
    char dgram_from[8][48];   /* sender of each ("" = 10.0.0.9) */
    char last_reply_to[48];
    int dgram_head, dgram_count;
    char last_reply[128];
    int replies;
    int connects;
    int last_connect;     /* conn index of the last net_connect, -1 none */
    bool connect_fails;
    /* data slot (ArduinoOTA filesystem images) */
    uint8_t *data;
    size_t data_high;
    bool data_done;
    /* boot record */
    ota_boot_record_t boot;
    int boot_stores;
    bool boot_store_fails;
    /* inflate */
    void *zstream;
    bool inflate_supported;
    fake_tables_t t; /* fake_tables() */
} fake_port_t;

void fake_init(fake_port_t *fp, size_t slot_capacity);

/** Features of the tables fake_tables() fills. */
#define FAKE_INFLATE 0x1u /* an inflate table (gzip uploads) */
#define FAKE_ARDUINO 0x2u /* UDP, tcp->connect and a data slot (ArduinoOTA) */
/** The tables that match the usual tests (with inflation). */
#define FAKE_DEFAULT FAKE_INFLATE

/** Fill fp->t with the fake functions (each table's ctx is fp) and return the server's
 *  view of them (fp->t.server; the tables can be edited before setup). */
const ota_server_ports_t *fake_tables(fake_port_t *fp, unsigned features);
void fake_free(fake_port_t *fp);

/** Queue a datagram for udp_recv. */
void fake_datagram(fake_port_t *fp, const void *data, size_t len);
/** The same from the address ip (port 5555). */
void fake_datagram_from(fake_port_t *fp, const char *ip, const void *data, size_t len);

/** Queue a new client connection; returns its index. */
int fake_connect(fake_port_t *fp);
/** The same from the peer "ip:port". */
int fake_connect_from(fake_port_t *fp, const char *peer);
/** Append bytes the client sends. */
void fake_send(fake_port_t *fp, int c, const void *data, size_t len);
/** Bytes the device sent that the test has not read yet. */
size_t fake_unread(const fake_port_t *fp, int c);
/** Read up to len device bytes; returns the count. */
size_t fake_read(fake_port_t *fp, int c, uint8_t *buf, size_t len);
/** The client hangs up. */
void fake_hangup(fake_port_t *fp, int c);

#endif /* OTA_TESTS_UNIT_FAKE_PORT_H */
