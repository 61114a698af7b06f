/*
 * fuzz_server.c - libFuzzer target for the native protocol state machine.
 *
 * The input is a script: a first byte picks the configuration (password / salted
 * verifier / none, protocol version, compression, small slot), then each record
 * is an op byte and, for sends, a length byte and that many bytes. Ops: send bytes on
 * one of a few connections, open a connection, hang up, advance the clock, poll.
 * Whatever the bytes, the server must not crash, leak or misbehave: asserts check
 * that nothing is activated unless a complete upload with the right MD5 happened,
 * and that the update lock is never held by a closed session.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fake_port.h"
#include "ota/server.h"

static const char verifier[] =
    "SCRAM-SHA-256$4096:AAECAwQFBgcICQoLDA0ODw==$2uICRsgZ3TbPROMi9wjAzyQ11p/XoXKYZ7QpTgRbtzI="
    ":W2xNrGjzDmFHx9hV5Q0pgs1dLE8K+klhf2+61O3ZFkg=";

static ota_server_t srv;

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    fake_port_t fp;
    fake_init(&fp, (data[0] & 0x40) ? 4096 : 256 * 1024);
    fp.verbose = false;
    ota_server_config_t cfg;
    ota_server_config_default(&cfg);
    switch (data[0] & 3) {
    case 1: cfg.password = "pw"; cfg.allow_md5 = (data[0] & 0x10) != 0; break;
    case 2: cfg.verifier = verifier; break;
    case 3: cfg.verifier = verifier; cfg.password = "pw"; break;
    default: break;
    }
    cfg.version = (data[0] & 4) ? 1 : 2;
    cfg.compression = (data[0] & 8) != 0;
    cfg.handshake_timeout_ms = 1000;
    cfg.data_timeout_ms = 2000;
    cfg.auth_backoff_base_ms = 50;
    ota_server_init(&srv);
    if (ota_server_setup(&srv, fake_tables(&fp, (data[0] & 0x20) ? 0 : FAKE_INFLATE), &cfg) !=
        OTA_OK)
        abort();

    int conns[4];
    int nconns = 0;
    uint32_t now = 0;
    size_t i = 1;
    while (i < size) {
        uint8_t op = data[i++];
        switch (op & 7) {
        case 0: /* open a connection */
            if (nconns < 4)
                conns[nconns++] = fake_connect(&fp);
            break;
        case 1:
        case 2:
        case 3: { /* send bytes on connection op>>3 */
            if (i >= size || nconns == 0)
                break;
            size_t len = data[i++];
            if (len > size - i)
                len = size - i;
            int c = conns[(op >> 3) % nconns];
            if (fp.conns[c].in_len + len < FAKE_BUF_MAX)
                fake_send(&fp, c, data + i, len);
            i += len;
            break;
        }
        case 4: /* the client hangs up */
            if (nconns)
                fake_hangup(&fp, conns[(op >> 3) % nconns]);
            break;
        case 5: /* time passes */
            now += (uint32_t)(op >> 3) * 97u;
            break;
        default:
            break;
        }
        now += 1;
        ota_server_poll(&srv, now);
        /* invariants */
        if (srv.update.holder >= 0 && srv.native.sessions[srv.update.holder].step == OTA_STEP_FREE)
            abort();
        if (fp.activated && fp.finish_calls == 0)
            abort();
    }
    /* let every timeout fire: all sessions end, the lock is released. A few rounds:
     * a poll may first accept a connection the flood guard left queued, or move a
     * session out of its back-off wait, and only a later one times it out. */
    for (int round = 0; round < 8; round++) {
        now += 200000;
        ota_server_poll(&srv, now);
    }
    if (ota_server_active(&srv) && !fp.activated)
        abort();
    if (!fp.activated && srv.update.holder >= 0)
        abort();
    ota_server_free(&srv);
    fake_free(&fp);
    return 0;
}
