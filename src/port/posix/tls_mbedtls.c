/*
 * tls_mbedtls.c - TLS client connections (ota_tls_port_t) with mbedTLS 2.28 over any
 * TCP table (the node's: connect_host.c, net.c).
 *
 * Non-blocking throughout: mbedTLS reads and writes through the TCP table's recv and
 * send (mbedtls_ssl_set_bio), whose "would block" becomes WANT_READ / WANT_WRITE;
 * the handshake is stepped from the table's recv and send until it is done, and they
 * answer OTA_ERR_WOULD_BLOCK meanwhile. The server must present a chain to one of
 * the trusted CAs, valid now, for the host name of the URL (mbedtls_ssl_set_hostname:
 * SNI and the name check); anything else fails the connection with OTA_ERR_TLS.
 * The handle of a TLS connection is the TCP one.
 */
#include "ota_posix.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <mbedtls/ctr_drbg.h>
#include <mbedtls/entropy.h>
#include <mbedtls/error.h>
#include <mbedtls/net_sockets.h>
#include <mbedtls/ssl.h>
#include <mbedtls/x509_crt.h>

#include "ota/errors.h"

typedef struct tls_conn {
    struct ota_posix_tls *owner;
    ota_conn_t conn; /* the TCP handle (-1: slot free) */
    bool handshaken;
    int err;         /* sticky failure (OTA_ERR_*), 0 while fine */
    int tcp_err;     /* what the TCP table said last when it failed mbedTLS's I/O */
    mbedtls_ssl_context ssl;
} tls_conn_t;

struct ota_posix_tls {
    const ota_tcp_port_t *tcp;
    char ca_file[4096];
    bool ready;        /* CAs read, config set up */
    int setup_err;     /* they could not be: every connect fails with it */
    mbedtls_entropy_context entropy;
    mbedtls_ctr_drbg_context drbg;
    mbedtls_x509_crt ca;
    mbedtls_ssl_config conf;
    tls_conn_t *conns[OTA_POSIX_TLS_MAX_CONNS];
    char last_error[256];
};

static void set_error(ota_posix_tls_t *t, const char *what, int mbed_rc, uint32_t flags)
{
    char m[128] = "";
    if (mbed_rc != 0)
        mbedtls_strerror(mbed_rc, m, sizeof m);
    int n = snprintf(t->last_error, sizeof t->last_error, "%s%s%s", what, m[0] ? ": " : "", m);
    if (flags != 0 && n > 0 && (size_t)n < sizeof t->last_error) {
        char v[160];
        /* the certificate's problems, e.g. "name mismatch", "not trusted" */
        if (mbedtls_x509_crt_verify_info(v, sizeof v, "", flags) > 0) {
            size_t l = strlen(v);
            while (l > 0 && (v[l - 1] == '\n' || v[l - 1] == ' '))
                v[--l] = '\0';
            for (char *p = v; *p; p++)
                if (*p == '\n')
                    *p = ';';
            snprintf(t->last_error + n, sizeof t->last_error - (size_t)n, " (%s)", v);
        }
    }
}

/* Read the CAs and set up the client configuration (once, at the first connect). */
static int setup(ota_posix_tls_t *t)
{
    if (t->ready)
        return OTA_OK;
    if (t->setup_err != 0)
        return t->setup_err;
    static const char pers[] = "ota-posix-tls";
    int rc = mbedtls_ctr_drbg_seed(&t->drbg, mbedtls_entropy_func, &t->entropy,
                                   (const unsigned char *)pers, sizeof pers - 1);
    if (rc != 0) {
        set_error(t, "random generator", rc, 0);
        return t->setup_err = OTA_ERR_TLS;
    }
    rc = mbedtls_x509_crt_parse_file(&t->ca, t->ca_file);
    /* > 0: some certificates of a bundle did not parse; the others count */
    if (rc < 0 || t->ca.version == 0) {
        char what[4200];
        snprintf(what, sizeof what, "cannot read trusted CAs from %s", t->ca_file);
        set_error(t, what, rc < 0 ? rc : 0, 0);
        return t->setup_err = OTA_ERR_TLS;
    }
    rc = mbedtls_ssl_config_defaults(&t->conf, MBEDTLS_SSL_IS_CLIENT, MBEDTLS_SSL_TRANSPORT_STREAM,
                                     MBEDTLS_SSL_PRESET_DEFAULT);
    if (rc != 0) {
        set_error(t, "TLS configuration", rc, 0);
        return t->setup_err = OTA_ERR_TLS;
    }
    mbedtls_ssl_conf_authmode(&t->conf, MBEDTLS_SSL_VERIFY_REQUIRED);
    mbedtls_ssl_conf_ca_chain(&t->conf, &t->ca, NULL);
    mbedtls_ssl_conf_rng(&t->conf, mbedtls_ctr_drbg_random, &t->drbg);
    /* TLS 1.2 at least: what 2.28 speaks as a client besides the old versions */
    mbedtls_ssl_conf_min_version(&t->conf, MBEDTLS_SSL_MAJOR_VERSION_3,
                                 MBEDTLS_SSL_MINOR_VERSION_3);
    t->ready = true;
    return OTA_OK;
}

ota_posix_tls_t *ota_posix_tls_new(const ota_tcp_port_t *tcp, const char *ca_file)
{
    if (tcp == NULL)
        return NULL;
    ota_posix_tls_t *t = calloc(1, sizeof *t);
    if (t == NULL)
        return NULL;
    t->tcp = tcp;
    snprintf(t->ca_file, sizeof t->ca_file, "%s",
             ca_file != NULL && ca_file[0] != '\0' ? ca_file : OTA_POSIX_TLS_SYSTEM_CA);
    mbedtls_entropy_init(&t->entropy);
    mbedtls_ctr_drbg_init(&t->drbg);
    mbedtls_x509_crt_init(&t->ca);
    mbedtls_ssl_config_init(&t->conf);
    return t;
}

static tls_conn_t *find(ota_posix_tls_t *t, ota_conn_t conn, int *slot)
{
    for (int i = 0; i < OTA_POSIX_TLS_MAX_CONNS; i++) {
        if (t->conns[i] != NULL && t->conns[i]->conn == conn) {
            if (slot != NULL)
                *slot = i;
            return t->conns[i];
        }
    }
    return NULL;
}

static void conn_free(ota_posix_tls_t *t, int slot)
{
    tls_conn_t *c = t->conns[slot];
    if (c == NULL)
        return;
    if (c->handshaken && c->err == 0)
        mbedtls_ssl_close_notify(&c->ssl); /* best effort: it may not go out */
    t->tcp->close(t->tcp->ctx, c->conn);
    mbedtls_ssl_free(&c->ssl);
    free(c);
    t->conns[slot] = NULL;
}

void ota_posix_tls_delete(ota_posix_tls_t *t)
{
    if (t == NULL)
        return;
    for (int i = 0; i < OTA_POSIX_TLS_MAX_CONNS; i++)
        conn_free(t, i);
    mbedtls_ssl_config_free(&t->conf);
    mbedtls_x509_crt_free(&t->ca);
    mbedtls_ctr_drbg_free(&t->drbg);
    mbedtls_entropy_free(&t->entropy);
    free(t);
}

const char *ota_posix_tls_last_error(const ota_posix_tls_t *t)
{
    return t != NULL ? t->last_error : "";
}

/* mbedTLS's I/O over the TCP table */
static int bio_send(void *user, const unsigned char *buf, size_t len)
{
    tls_conn_t *c = user;
    const ota_tcp_port_t *tcp = c->owner->tcp;
    int rc = tcp->send(tcp->ctx, c->conn, buf, len);
    if (rc > 0)
        return rc;
    if (rc == OTA_ERR_WOULD_BLOCK)
        return MBEDTLS_ERR_SSL_WANT_WRITE;
    c->tcp_err = rc < 0 ? rc : OTA_ERR_IO;
    return MBEDTLS_ERR_NET_SEND_FAILED;
}

static int bio_recv(void *user, unsigned char *buf, size_t len)
{
    tls_conn_t *c = user;
    const ota_tcp_port_t *tcp = c->owner->tcp;
    int rc = tcp->recv(tcp->ctx, c->conn, buf, len);
    if (rc > 0)
        return rc;
    if (rc == OTA_ERR_WOULD_BLOCK)
        return MBEDTLS_ERR_SSL_WANT_READ;
    if (rc == OTA_ERR_CLOSED)
        return 0; /* EOF: mbedTLS reports it as CONN_EOF */
    c->tcp_err = rc < 0 ? rc : OTA_ERR_IO;
    return MBEDTLS_ERR_NET_RECV_FAILED;
}

static int tls_connect_host(void *user, const char *host, uint16_t port, ota_conn_t *conn)
{
    ota_posix_tls_t *t = user;
    if (host == NULL || host[0] == '\0' || conn == NULL)
        return OTA_ERR_INVALID_ARG;
    if (t->tcp->connect_host == NULL)
        return OTA_ERR_UNSUPPORTED;
    int rc = setup(t);
    if (rc != OTA_OK)
        return rc;
    int slot = -1;
    for (int i = 0; i < OTA_POSIX_TLS_MAX_CONNS && slot < 0; i++)
        if (t->conns[i] == NULL)
            slot = i;
    if (slot < 0)
        return OTA_ERR_IO;
    tls_conn_t *c = calloc(1, sizeof *c);
    if (c == NULL)
        return OTA_ERR_IO;
    c->owner = t;
    mbedtls_ssl_init(&c->ssl);
    int mrc = mbedtls_ssl_setup(&c->ssl, &t->conf);
    if (mrc == 0)
        mrc = mbedtls_ssl_set_hostname(&c->ssl, host); /* SNI + the name to check */
    if (mrc != 0) {
        set_error(t, "TLS session", mrc, 0);
        mbedtls_ssl_free(&c->ssl);
        free(c);
        return OTA_ERR_TLS;
    }
    rc = t->tcp->connect_host(t->tcp->ctx, host, port, &c->conn);
    if (rc != OTA_OK) {
        mbedtls_ssl_free(&c->ssl);
        free(c);
        return rc;
    }
    mbedtls_ssl_set_bio(&c->ssl, c, bio_send, bio_recv, NULL);
    t->conns[slot] = c;
    *conn = c->conn;
    return OTA_OK;
}

/* mbedTLS's result as OTA_ERR_*, sticky for the failures. */
static int result(tls_conn_t *c, int mrc, const char *what)
{
    if (mrc == MBEDTLS_ERR_SSL_WANT_READ || mrc == MBEDTLS_ERR_SSL_WANT_WRITE ||
        mrc == MBEDTLS_ERR_SSL_ASYNC_IN_PROGRESS || mrc == MBEDTLS_ERR_SSL_CRYPTO_IN_PROGRESS)
        return OTA_ERR_WOULD_BLOCK;
    if (mrc == MBEDTLS_ERR_SSL_PEER_CLOSE_NOTIFY || mrc == MBEDTLS_ERR_SSL_CONN_EOF)
        c->err = OTA_ERR_CLOSED;
    else if (c->tcp_err != 0)
        c->err = c->tcp_err; /* the network's own failure: resolve, refused, ... */
    else
        c->err = OTA_ERR_TLS;
    if (c->err == OTA_ERR_TLS || !c->handshaken) {
        uint32_t flags = mbedtls_ssl_get_verify_result(&c->ssl);
        set_error(c->owner, what, c->tcp_err != 0 ? 0 : mrc,
                  flags == (uint32_t)-1 ? 0 : flags);
    }
    return c->err;
}

/* Step the handshake. 0 once it is done. */
static int handshake(tls_conn_t *c)
{
    if (c->err != 0)
        return c->err;
    if (c->handshaken)
        return OTA_OK;
    int mrc = mbedtls_ssl_handshake(&c->ssl);
    if (mrc != 0)
        return result(c, mrc, "TLS handshake");
    c->handshaken = true;
    return OTA_OK;
}

static int tls_recv(void *user, ota_conn_t conn, uint8_t *buf, size_t len)
{
    tls_conn_t *c = find(user, conn, NULL);
    if (c == NULL)
        return OTA_ERR_IO;
    int rc = handshake(c);
    if (rc != OTA_OK)
        return rc;
    int mrc = mbedtls_ssl_read(&c->ssl, buf, len);
    if (mrc > 0)
        return mrc;
    if (mrc == 0)
        return c->err = OTA_ERR_CLOSED;
    return result(c, mrc, "TLS read");
}

static int tls_send(void *user, ota_conn_t conn, const uint8_t *buf, size_t len)
{
    tls_conn_t *c = find(user, conn, NULL);
    if (c == NULL)
        return OTA_ERR_IO;
    int rc = handshake(c);
    if (rc != OTA_OK)
        return rc;
    int mrc = mbedtls_ssl_write(&c->ssl, buf, len);
    if (mrc > 0)
        return mrc;
    return mrc == 0 ? OTA_ERR_WOULD_BLOCK : result(c, mrc, "TLS write");
}

static void tls_close(void *user, ota_conn_t conn)
{
    int slot;
    if (find(user, conn, &slot) != NULL)
        conn_free(user, slot);
}

bool ota_posix_tls_pending(const ota_posix_tls_t *t)
{
    if (t == NULL)
        return false;
    for (int i = 0; i < OTA_POSIX_TLS_MAX_CONNS; i++) {
        const tls_conn_t *c = t->conns[i];
        /* decrypted bytes, or a record already read from the socket */
        if (c != NULL && c->err == 0 && c->handshaken &&
            (mbedtls_ssl_get_bytes_avail(&c->ssl) > 0 || mbedtls_ssl_check_pending(&c->ssl)))
            return true;
    }
    return false;
}

ota_tls_port_t ota_posix_tls_port(ota_posix_tls_t *t)
{
    return (ota_tls_port_t){.connect_host = tls_connect_host,
                            .recv = tls_recv,
                            .send = tls_send,
                            .close = tls_close,
                            .ctx = t};
}
