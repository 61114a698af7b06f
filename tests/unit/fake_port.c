/*
 * fake_port.c - the in-memory port of the unit tests (see fake_port.h).
 */
#include "fake_port.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <zlib.h>

#include "ota/errors.h"
#include "ota_posix.h"

static fake_port_t *fp_of(void *user)
{
    return (fake_port_t *)user;
}

/* ---------------- network ---------------- */

static int f_accept(void *user, ota_conn_t *conn, char *peer, size_t peer_len)
{
    fake_port_t *fp = fp_of(user);
    for (int i = 0; i < FAKE_MAX_CONNS; i++) {
        fake_conn_t *c = &fp->conns[i];
        if (c->pending) {
            c->pending = false;
            c->used = true;
            *conn = i;
            snprintf(peer, peer_len, "%s", c->peer);
            return OTA_OK;
        }
    }
    return OTA_ERR_WOULD_BLOCK;
}

static int f_recv(void *user, ota_conn_t conn, uint8_t *buf, size_t len)
{
    fake_conn_t *c = &fp_of(user)->conns[conn];
    if (c->device_closed)
        return OTA_ERR_IO;
    size_t avail = c->in_len - c->in_off;
    if (avail == 0)
        return c->peer_closed ? OTA_ERR_CLOSED : OTA_ERR_WOULD_BLOCK;
    if (len > avail)
        len = avail;
    if (c->recv_limit && len > c->recv_limit)
        len = c->recv_limit;
    memcpy(buf, c->in + c->in_off, len);
    c->in_off += len;
    return (int)len;
}

static int f_send(void *user, ota_conn_t conn, const uint8_t *buf, size_t len)
{
    fake_conn_t *c = &fp_of(user)->conns[conn];
    if (c->device_closed)
        return OTA_ERR_IO;
    if (c->peer_closed)
        return OTA_ERR_CLOSED;
    if (c->send_blocked)
        return OTA_ERR_WOULD_BLOCK;
    if (c->send_limit && len > c->send_limit)
        len = c->send_limit;
    if (c->out_len + len > FAKE_BUF_MAX)
        return OTA_ERR_WOULD_BLOCK;
    memcpy(c->out + c->out_len, buf, len);
    c->out_len += len;
    return (int)len;
}

static void f_close(void *user, ota_conn_t conn)
{
    fp_of(user)->conns[conn].device_closed = true;
}

/* ---------------- slot ---------------- */

static int f_slot_begin(void *user, uint32_t size)
{
    fake_port_t *fp = fp_of(user);
    fp->begin_calls++;
    if (fp->fail_begin)
        return fp->fail_begin;
    if (fp->begin_blocks > 0) {
        fp->begin_blocks--;
        return OTA_ERR_WOULD_BLOCK;
    }
    if (size > fp->slot_capacity)
        return OTA_ERR_NO_SPACE;
    memset(fp->slot, 0xEE, fp->slot_capacity);
    fp->slot_high = 0;
    fp->slot_open = true;
    return OTA_OK;
}

static int f_slot_write(void *user, uint32_t off, const uint8_t *data, size_t len)
{
    fake_port_t *fp = fp_of(user);
    if (!fp->slot_open)
        return OTA_ERR_WRITE;
    if (fp->write_would_block_every_other) {
        fp->last_write_blocked = !fp->last_write_blocked;
        if (fp->last_write_blocked)
            return OTA_ERR_WOULD_BLOCK;
    }
    fp->write_calls++;
    if (fp->fail_write_at && fp->write_calls == fp->fail_write_at)
        return OTA_ERR_WRITE;
    if (off != fp->slot_high)
        return OTA_ERR_WRITE; /* offsets grow without gaps */
    if ((size_t)off + len > fp->slot_capacity)
        return OTA_ERR_NO_SPACE;
    memcpy(fp->slot + off, data, len);
    fp->slot_high = off + len;
    return OTA_OK;
}

static int f_slot_finish(void *user, uint32_t size)
{
    fake_port_t *fp = fp_of(user);
    fp->finish_calls++;
    fp->finished_size = size;
    if (size != fp->slot_high)
        return OTA_ERR_WRITE;
    return fp->fail_finish;
}

static int f_slot_activate(void *user)
{
    fake_port_t *fp = fp_of(user);
    fp->activate_calls++;
    if (fp->fail_activate)
        return fp->fail_activate;
    fp->activated = true;
    fp->slot_open = false;
    return OTA_OK;
}

static void f_slot_abort(void *user)
{
    fake_port_t *fp = fp_of(user);
    fp->abort_calls++;
    fp->slot_open = false;
}

/* resumable downloads: the RAM slot keeps its first offset bytes */
static int f_slot_resume(void *user, uint32_t size, uint32_t offset)
{
    fake_port_t *fp = fp_of(user);
    fp->resume_calls++;
    if (size > fp->slot_capacity)
        return OTA_ERR_NO_SPACE;
    if (offset > fp->slot_high)
        return OTA_ERR_NO_SLOT;
    memset(fp->slot + offset, 0xEE, fp->slot_capacity - offset);
    fp->slot_high = offset;
    fp->slot_open = true;
    return OTA_OK;
}

static int f_slot_read(void *user, uint32_t off, uint8_t *buf, size_t len)
{
    fake_port_t *fp = fp_of(user);
    if (fp->read_limit && len > fp->read_limit)
        len = fp->read_limit;
    if (!fp->slot_open || off >= fp->slot_high)
        return OTA_ERR_IO;
    if (len > fp->slot_high - off)
        len = fp->slot_high - off;
    memcpy(buf, fp->slot + off, len);
    return (int)len;
}

static int f_slot_sync(void *user)
{
    fake_port_t *fp = fp_of(user);
    fp->sync_calls++;
    fp->slot_synced = fp->slot_high;
    return fp->slot_open ? OTA_OK : OTA_ERR_WRITE;
}

/* ---------------- system ---------------- */

static void f_reboot(void *user)
{
    fp_of(user)->reboots++;
}

static int f_random(void *user, uint8_t *buf, size_t len)
{
    fake_port_t *fp = fp_of(user);
    for (size_t i = 0; i < len; i++)
        buf[i] = fp->random_fixed ? fp->random_byte : fp->random_counter++;
    return OTA_OK;
}

static void f_log(void *user, ota_log_level_t level, const char *line)
{
    fake_port_t *fp = fp_of(user);
    snprintf(fp->last_log, sizeof fp->last_log, "%s", line);
    fp->log_lines++;
    if (fp->verbose)
        fprintf(stderr, "  [%d][ota] %s\n", (int)level, line);
}

/* ---------------- ArduinoOTA ---------------- */

static int f_udp_recv(void *user, uint8_t *buf, size_t len, char *from, size_t from_len,
                      uint16_t *from_port)
{
    fake_port_t *fp = fp_of(user);
    if (fp->dgram_count == 0)
        return OTA_ERR_WOULD_BLOCK;
    int i = fp->dgram_head;
    size_t n = fp->dgram_len[i] < len ? fp->dgram_len[i] : len;
    memcpy(buf, fp->dgram[i], n);
    fp->dgram_head = (fp->dgram_head + 1) % 8;
    fp->dgram_count--;
    snprintf(from, from_len, "%s", fp->dgram_from[i][0] ? fp->dgram_from[i] : "10.0.0.9");
    *from_port = 5555;
    return (int)n;
}

static int f_udp_send(void *user, const char *ip, uint16_t port, const uint8_t *buf, size_t len)
{
    fake_port_t *fp = fp_of(user);
    (void)port;
    snprintf(fp->last_reply_to, sizeof fp->last_reply_to, "%s", ip);
    size_t n = len < sizeof fp->last_reply - 1 ? len : sizeof fp->last_reply - 1;
    memcpy(fp->last_reply, buf, n);
    fp->last_reply[n] = '\0';
    fp->replies++;
    return OTA_OK;
}

static int free_conn(fake_port_t *fp);

static int f_net_connect(void *user, const char *ip, uint16_t port, ota_conn_t *conn)
{
    fake_port_t *fp = fp_of(user);
    (void)ip;
    (void)port;
    fp->connects++;
    if (fp->connect_fails)
        return OTA_ERR_IO;
    int i = free_conn(fp);
    fake_conn_t *c = &fp->conns[i];
    free(c->in);
    free(c->out);
    memset(c, 0, sizeof *c);
    c->in = malloc(FAKE_BUF_MAX);
    c->out = malloc(FAKE_BUF_MAX);
    c->used = true;
    fp->last_connect = i;
    *conn = i;
    return OTA_OK;
}

static int f_data_begin(void *user, uint32_t size)
{
    fake_port_t *fp = fp_of(user);
    if (size > fp->slot_capacity)
        return OTA_ERR_NO_SPACE;
    fp->data_high = 0;
    fp->data_done = false;
    return OTA_OK;
}

static int f_data_write(void *user, uint32_t off, const uint8_t *d, size_t len)
{
    fake_port_t *fp = fp_of(user);
    if (off != fp->data_high || (size_t)off + len > fp->slot_capacity)
        return OTA_ERR_WRITE;
    memcpy(fp->data + off, d, len);
    fp->data_high = off + len;
    return OTA_OK;
}

static int f_data_finish(void *user, uint32_t size)
{
    fake_port_t *fp = fp_of(user);
    if (size != fp->data_high)
        return OTA_ERR_WRITE;
    fp->data_done = true;
    return OTA_OK;
}

static void f_data_abort(void *user)
{
    fp_of(user)->data_high = 0;
}

void fake_datagram(fake_port_t *fp, const void *data, size_t len)
{
    if (fp->dgram_count == 8)
        return; /* a full socket buffer drops datagrams */
    if (len > sizeof fp->dgram[0])
        len = sizeof fp->dgram[0];
    int i = (fp->dgram_head + fp->dgram_count) % 8;
    memcpy(fp->dgram[i], data, len);
    fp->dgram_len[i] = len;
    fp->dgram_from[i][0] = '\0';
    fp->dgram_count++;
}

void fake_datagram_from(fake_port_t *fp, const char *ip, const void *data, size_t len)
{
    int i = (fp->dgram_head + fp->dgram_count) % 8;
    int before = fp->dgram_count;
    fake_datagram(fp, data, len);
    if (fp->dgram_count > before)
        snprintf(fp->dgram_from[i], sizeof fp->dgram_from[i], "%s", ip);
}

/* ---------------- boot record ---------------- */

static int f_boot_load(void *user, ota_boot_record_t *rec)
{
    *rec = fp_of(user)->boot;
    return OTA_OK;
}

static int f_boot_store(void *user, const ota_boot_record_t *rec)
{
    fake_port_t *fp = fp_of(user);
    if (fp->boot_store_fails)
        return OTA_ERR_IO;
    fp->boot = *rec;
    fp->boot_stores++;
    return OTA_OK;
}

/* ---------------- inflate (zlib, gzip wrapper) ---------------- */

static int f_inflate_begin(void *user)
{
    fake_port_t *fp = fp_of(user);
    z_stream *z = calloc(1, sizeof *z);
    if (z == NULL || inflateInit2(z, 15 + 16) != Z_OK) {
        free(z);
        return OTA_ERR_INFLATE;
    }
    fp->zstream = z;
    return OTA_OK;
}

static int f_inflate_run(void *user, const uint8_t *in, size_t in_len, size_t *in_used,
                         uint8_t *out, size_t out_len, size_t *out_made, bool *done)
{
    z_stream *z = fp_of(user)->zstream;
    z->next_in = (Bytef *)(uintptr_t)in;
    z->avail_in = (uInt)in_len;
    z->next_out = out;
    z->avail_out = (uInt)out_len;
    int rc = inflate(z, Z_NO_FLUSH);
    *in_used = in_len - z->avail_in;
    *out_made = out_len - z->avail_out;
    *done = rc == Z_STREAM_END;
    if (rc == Z_OK || rc == Z_STREAM_END || (rc == Z_BUF_ERROR && (*in_used || *out_made)))
        return OTA_OK;
    if (rc == Z_BUF_ERROR && in_len == 0)
        return OTA_OK;
    return OTA_ERR_INFLATE;
}

static void f_inflate_end(void *user)
{
    fake_port_t *fp = fp_of(user);
    if (fp->zstream) {
        inflateEnd(fp->zstream);
        free(fp->zstream);
        fp->zstream = NULL;
    }
}

const ota_server_ports_t *fake_tables(fake_port_t *fp, unsigned features)
{
    fake_tables_t *t = &fp->t;
    memset(t, 0, sizeof *t);
    t->tcp = (ota_tcp_port_t){
        .accept = f_accept, .recv = f_recv, .send = f_send, .close = f_close, .ctx = fp};
    t->slot = (ota_store_port_t){.begin = f_slot_begin,
                                 .write = f_slot_write,
                                 .finish = f_slot_finish,
                                 .activate = f_slot_activate,
                                 .abort = f_slot_abort,
                                 .ctx = fp,
                                 .resume = f_slot_resume,
                                 .read = f_slot_read,
                                 .sync = f_slot_sync};
    t->boot = (ota_boot_port_t){
        .load = f_boot_load, .store = f_boot_store, .reboot = f_reboot, .ctx = fp};
    t->crypto = (ota_crypto_port_t){.hash_start = ota_posix_hash_start,
                                    .hash_update = ota_posix_hash_update,
                                    .hash_finish = ota_posix_hash_finish,
                                    .hmac_sha256 = ota_posix_hmac_sha256,
                                    .random = f_random,
                                    .ctx = fp,
                                    .verify_ecdsa_p256 = ota_posix_verify_ecdsa_p256,
                                    .verify_rsa3072_pss = ota_posix_verify_rsa3072_pss};
    t->log = (ota_log_port_t){.line = f_log, .ctx = fp};
    t->inflate = (ota_inflate_port_t){
        .begin = f_inflate_begin, .run = f_inflate_run, .end = f_inflate_end, .ctx = fp};
    t->udp = (ota_udp_port_t){.recv = f_udp_recv, .send = f_udp_send, .ctx = fp};
    t->data = (ota_store_port_t){.begin = f_data_begin,
                                 .write = f_data_write,
                                 .finish = f_data_finish,
                                 .abort = f_data_abort,
                                 .ctx = fp};
    t->server = (ota_server_ports_t){
        .tcp = &t->tcp, .slot = &t->slot, .boot = &t->boot, .crypto = &t->crypto, .log = &t->log};
    if (features & FAKE_INFLATE)
        t->server.inflate = &t->inflate;
    if (features & FAKE_ARDUINO) {
        t->tcp.connect = f_net_connect;
        t->server.udp = &t->udp;
        t->server.data = &t->data;
    }
    return &t->server;
}

void fake_init(fake_port_t *fp, size_t slot_capacity)
{
    memset(fp, 0, sizeof *fp);
    fp->slot = malloc(slot_capacity ? slot_capacity : 1);
    fp->data = malloc(slot_capacity ? slot_capacity : 1);
    fp->slot_capacity = slot_capacity;
    fp->last_connect = -1;
    fp->verbose = getenv("OTA_TEST_VERBOSE") != NULL;
}

void fake_free(fake_port_t *fp)
{
    for (int i = 0; i < FAKE_MAX_CONNS; i++) {
        free(fp->conns[i].in);
        free(fp->conns[i].out);
    }
    f_inflate_end(fp);
    free(fp->slot);
    free(fp->data);
    memset(fp, 0, sizeof *fp);
}

static int free_conn(fake_port_t *fp)
{
    for (int i = 0; i < FAKE_MAX_CONNS; i++)
        if (!fp->conns[i].used && !fp->conns[i].pending)
            return i;
    /* all used once: recycle one the device has closed */
    for (int i = 0; i < FAKE_MAX_CONNS; i++)
        if (fp->conns[i].device_closed)
            return i;
    abort();
}

int fake_connect(fake_port_t *fp)
{
    int i = free_conn(fp);
    fake_conn_t *c = &fp->conns[i];
    free(c->in);
    free(c->out);
    memset(c, 0, sizeof *c);
    c->in = malloc(FAKE_BUF_MAX);
    c->out = malloc(FAKE_BUF_MAX);
    c->pending = true;
    snprintf(c->peer, sizeof c->peer, "10.0.0.%u:%u", (unsigned)(i + 1) & 0xffu,
             40000u + (unsigned)i);
    return i;
}

int fake_connect_from(fake_port_t *fp, const char *peer)
{
    int c = fake_connect(fp);
    snprintf(fp->conns[c].peer, sizeof fp->conns[c].peer, "%s", peer);
    return c;
}

void fake_send(fake_port_t *fp, int c, const void *data, size_t len)
{
    fake_conn_t *fc = &fp->conns[c];
    if (fc->in_len + len > FAKE_BUF_MAX)
        abort();
    memcpy(fc->in + fc->in_len, data, len);
    fc->in_len += len;
}

size_t fake_unread(const fake_port_t *fp, int c)
{
    return fp->conns[c].out_len - fp->conns[c].out_read;
}

size_t fake_read(fake_port_t *fp, int c, uint8_t *buf, size_t len)
{
    fake_conn_t *fc = &fp->conns[c];
    size_t n = fc->out_len - fc->out_read;
    if (n > len)
        n = len;
    memcpy(buf, fc->out + fc->out_read, n);
    fc->out_read += n;
    return n;
}

void fake_hangup(fake_port_t *fp, int c)
{
    fp->conns[c].peer_closed = true;
}
