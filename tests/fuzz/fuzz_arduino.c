/*
 * fuzz_arduino.c - libFuzzer target for the ArduinoOTA front end (src/core/arduino.c):
 * datagrams (invitations, challenge answers, garbage) and back-connection bytes in
 * any order and split, with the clock jumping, under no / MD5 / SHA-256 auth. The
 * node must not crash or leak, must never activate without a finished image, and
 * must end with the lock free once the timeouts fired.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fake_port.h"
#include "ota/server.h"

static ota_server_t srv;

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    fake_port_t fp;
    fake_init(&fp, 64 * 1024);
    fp.verbose = false;
    ota_server_config_t cfg;
    ota_server_config_default(&cfg);
    cfg.arduino_enabled = true;
    cfg.data_timeout_ms = 3000;
    switch (data[0] % 3) {
    case 1:
        cfg.arduino_auth = OTA_ARDUINO_AUTH_MD5;
        cfg.arduino_hash = "3e9c07c6e218aae0bf712f6aebd2df89";
        break;
    case 2:
        cfg.arduino_auth = OTA_ARDUINO_AUTH_SHA256;
        cfg.arduino_hash = "506260eb57c585f99d1e860472f6813c2a53d0d6ee42177e329865cab94324ab";
        break;
    default: break;
    }
    fp.connect_fails = (data[0] & 0x80) != 0;
    ota_server_init(&srv);
    if (ota_server_setup(&srv, fake_tables(&fp, FAKE_DEFAULT | FAKE_ARDUINO), &cfg) != OTA_OK)
        abort();
    uint32_t now = 0;
    size_t i = 1;
    while (i < size) {
        uint8_t op = data[i++];
        switch (op & 3) {
        case 0: { /* a datagram */
            if (i >= size)
                break;
            size_t len = data[i++];
            if (len > size - i)
                len = size - i;
            fake_datagram(&fp, data + i, len);
            i += len;
            break;
        }
        case 1: { /* bytes on the back-connection, or the uploader hangs up */
            if (i >= size)
                break;
            size_t len = data[i++];
            if (len > size - i)
                len = size - i;
            if (fp.last_connect >= 0 && fp.conns[fp.last_connect].in_len + len < FAKE_BUF_MAX) {
                if (len == 0)
                    fake_hangup(&fp, fp.last_connect);
                else
                    fake_send(&fp, fp.last_connect, data + i, len);
            }
            i += len;
            break;
        }
        case 2: now += (uint32_t)(op >> 2) * 211u; break;
        default: break;
        }
        now += 1;
        ota_server_poll(&srv, now);
        if (fp.activated && fp.finish_calls == 0)
            abort();
    }
    for (int k = 0; k < 40; k++) { /* finish any key derivation, fire every timeout */
        now += 5000;
        ota_server_poll(&srv, now);
    }
    if (!fp.activated && !fp.data_done && srv.update.holder != -1)
        abort();
    ota_server_free(&srv);
    fake_free(&fp);
    return 0;
}
