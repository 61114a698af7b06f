/*
 * arduino_client.c - one upload over ArduinoOTA (see arduino_client.h).
 */
#include "arduino_client.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <mbedtls/md5.h>
#include <mbedtls/sha256.h>

#include "ota/arduino_proto.h"
#include "ota/protocol.h"
#include "ota/util.h"
#include "ota_posix.h"

#define ANSWER_MAX OTA_ARDUINO_ANSWER_MAX /* what current uploaders read of the answer */
#define AUTH_REPLY_LEN (sizeof OTA_ARDUINO_REPLY_AUTH - 1)
#define VERDICT_WAIT_MS 15000 /* the device may spend a while on its key derivation */

static int fail(ota_arduino_result_t *r, ota_arduino_failure_t f, int exit_code, const char *text)
{
    r->failure = f;
    if (text != NULL) {
        size_t n = strnlen(text, sizeof r->text - 1); /* the device's words, cut to fit */
        memcpy(r->text, text, n);
        r->text[n] = '\0';
    }
    return exit_code;
}

static void hex_of(const uint8_t *d, size_t n, char *out)
{
    ota_hex_encode(d, n, out);
    out[2 * n] = '\0';
}

static void md5_hex(const char *s, char out[OTA_MD5_HEX_LEN + 1])
{
    uint8_t d[OTA_MD5_HEX_LEN / 2];
    mbedtls_md5_ret((const unsigned char *)s, strlen(s), d);
    hex_of(d, sizeof d, out);
}

static void sha256_hex(const char *s, char out[OTA_SHA256_HEX_LEN + 1])
{
    uint8_t d[OTA_SHA256_HEX_LEN / 2];
    mbedtls_sha256_ret((const unsigned char *)s, strlen(s), d, 0);
    hex_of(d, sizeof d, out);
}

/* The "200 <cnonce> <response>\n" answer to a challenge (docs/protocol.md#arduino-auth):
 * the nonce's length says the variant, the cnonce has the same. sha_with_md5: the SHA-256
 * variant keyed with MD5hex(password), which some devices keep. */
static int challenge_answer(const char *password, const char *nonce, bool sha_with_md5,
                            char *out, size_t cap)
{
    size_t n = strlen(nonce);
    uint8_t raw[OTA_SHA256_HEX_LEN / 2];
    char cnonce[OTA_SHA256_HEX_LEN + 1], resp[OTA_SHA256_HEX_LEN + 1], h[OTA_SHA256_HEX_LEN + 1];
    char joined[300];
    if (n > OTA_SHA256_HEX_LEN || ota_posix_random(NULL, raw, n / 2) != 0)
        return -1;
    hex_of(raw, n / 2, cnonce);
#define SEP OTA_ARDUINO_SEPARATOR
    if (n == OTA_MD5_HEX_LEN) { /* MD5 variant */
        md5_hex(password, h);
        snprintf(joined, sizeof joined, "%s" SEP "%s" SEP "%s", h, nonce, cnonce);
        md5_hex(joined, resp);
    } else { /* SHA-256 variant */
        if (sha_with_md5)
            md5_hex(password, h);
        else
            sha256_hex(password, h);
        char salt[2 * OTA_SHA256_HEX_LEN + 12];
        snprintf(salt, sizeof salt, "%s" SEP "%s", nonce, cnonce);
        uint8_t dk[OTA_ARDUINO_PBKDF2_LEN];
        char dk_hex[2 * OTA_ARDUINO_PBKDF2_LEN + 1];
        if (ota_posix_pbkdf2_sha256(h, strlen(h), (const uint8_t *)salt, strlen(salt),
                                    OTA_ARDUINO_PBKDF2_ITERATIONS, dk, sizeof dk) != 0)
            return -1;
        hex_of(dk, sizeof dk, dk_hex);
        snprintf(joined, sizeof joined, "%s" SEP "%s" SEP "%s", dk_hex, nonce, cnonce);
        sha256_hex(joined, resp);
        ota_wipe(dk, sizeof dk);
    }
#undef SEP
    ota_wipe(h, sizeof h);
    snprintf(out, cap, "%u %s %s\n", OTA_ARDUINO_CMD_AUTH, cnonce, resp);
    return 0;
}

/* Send text, wait up to timeout_ms for one datagram answer (NUL-terminated). */
static int ask(int udp, const char *text, char *answer, size_t cap, int timeout_ms)
{
    if (send(udp, text, strlen(text), 0) < 0 && errno != ECONNREFUSED)
        return -1;
    struct pollfd p = {.fd = udp, .events = POLLIN};
    if (poll(&p, 1, timeout_ms) != 1)
        return -1;
    ssize_t n = recv(udp, answer, cap - 1, 0);
    if (n < 0)
        return -1;
    answer[n] = '\0';
    while (n > 0 && (answer[n - 1] == '\n' || answer[n - 1] == '\r'))
        answer[--n] = '\0';
    return 0;
}

/* true when the connection came from the address the invitation went to */
static bool same_host(const struct sockaddr_storage *device, const struct sockaddr_storage *peer,
                      char *text, size_t cap)
{
    text[0] = '\0';
    if (peer->ss_family == AF_INET) {
        const struct sockaddr_in *p = (const struct sockaddr_in *)peer;
        inet_ntop(AF_INET, &p->sin_addr, text, (socklen_t)cap);
        return device->ss_family == AF_INET &&
               p->sin_addr.s_addr == ((const struct sockaddr_in *)device)->sin_addr.s_addr;
    }
    if (peer->ss_family == AF_INET6) {
        const struct sockaddr_in6 *p = (const struct sockaddr_in6 *)peer;
        inet_ntop(AF_INET6, &p->sin6_addr, text, (socklen_t)cap);
        return device->ss_family == AF_INET6 &&
               memcmp(&p->sin6_addr, &((const struct sockaddr_in6 *)device)->sin6_addr,
                      sizeof p->sin6_addr) == 0;
    }
    return false;
}

static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1000.0 + (double)ts.tv_nsec / 1e6;
}

/* The device's connection to lfd: only from its own address; others are closed and
 * counted while waiting goes on, up to timeout_ms in all. -1 on timeout. */
static int accept_device(int lfd, const struct sockaddr_storage *device, int timeout_ms,
                         ota_arduino_result_t *r)
{
    double end = now_ms() + timeout_ms;
    for (;;) {
        int left = (int)(end - now_ms());
        if (left <= 0)
            return -1;
        struct pollfd p = {.fd = lfd, .events = POLLIN};
        int n = poll(&p, 1, left);
        if (n < 0 && errno == EINTR)
            continue;
        if (n != 1)
            return -1;
        struct sockaddr_storage peer;
        socklen_t pl = sizeof peer;
        memset(&peer, 0, sizeof peer);
        int fd = accept4(lfd, (struct sockaddr *)&peer, &pl, SOCK_CLOEXEC);
        if (fd < 0) {
            if (errno == EINTR || errno == ECONNABORTED || errno == EAGAIN)
                continue;
            return -1;
        }
        char who[64];
        if (same_host(device, &peer, who, sizeof who))
            return fd;
        close(fd); /* not the device we invited: it gets no firmware */
        r->strangers++;
        snprintf(r->stranger, sizeof r->stranger, "%s", who);
    }
}

static int stream(int fd, const uint8_t *image, size_t len, unsigned timeout_s,
                  ota_progress_fn progress, void *arg, ota_arduino_result_t *r)
{
    char in[256];
    size_t in_len = 0;
    size_t last_report = (size_t)-1;
    for (;;) {
        struct pollfd p = {.fd = fd, .events = POLLIN};
        if (r->sent < len)
            p.events |= POLLOUT;
        int n = poll(&p, 1, (int)timeout_s * 1000);
        if (n == 0)
            return fail(r, OTA_AR_LOST, OTA_EXIT_NETWORK, "the device went silent");
        if (n < 0) {
            if (errno == EINTR)
                continue;
            return fail(r, OTA_AR_LOST, OTA_EXIT_NETWORK, strerror(errno));
        }
        if (p.revents & POLLIN) {
            ssize_t got = recv(fd, in + in_len, sizeof in - 1 - in_len, 0);
            if (got <= 0) {
                if (r->sent == len && r->confirmed == len)
                    return fail(r, OTA_AR_FINAL_ERROR, OTA_EXIT_DEVICE,
                                "the device closed the connection without saying OK");
                return fail(r, OTA_AR_LOST, OTA_EXIT_NETWORK,
                            got == 0 ? "the device closed the connection" : strerror(errno));
            }
            in_len += (size_t)got;
            in[in_len] = '\0';
            char *nl;
            while ((nl = strchr(in, '\n')) != NULL) {
                *nl = '\0';
                char *end;
                unsigned long count = strtoul(in, &end, 10);
                if (strcmp(in, OTA_ARDUINO_REPLY_OK) == 0) { /* OTA_ARDUINO_DATA_OK's line */
                    if (r->confirmed != 0 && r->confirmed != len)
                        return fail(r, OTA_AR_FINAL_ERROR, OTA_EXIT_DEVICE,
                                    "the device said OK before confirming every byte");
                    if (progress)
                        progress(arg, len, len);
                    return OTA_EXIT_OK;
                }
                if (in[0] != '\0' && *end == '\0') {
                    if (count > r->confirmed)
                        r->confirmed = count;
                } else if (in[0] != '\0') {
                    return fail(r, OTA_AR_FINAL_ERROR, OTA_EXIT_DEVICE, in);
                }
                size_t used = (size_t)(nl + 1 - in);
                memmove(in, nl + 1, in_len - used + 1);
                in_len -= used;
            }
            if (in_len == sizeof in - 1)
                in_len = 0; /* an overlong line: not a count, drop it */
        }
        if ((p.revents & POLLOUT) && r->sent < len) {
            size_t chunk = len - r->sent < 16384 ? len - r->sent : 16384;
            ssize_t w = send(fd, image + r->sent, chunk, MSG_NOSIGNAL);
            if (w < 0 && errno != EAGAIN && errno != EINTR)
                return fail(r, OTA_AR_LOST, OTA_EXIT_NETWORK, strerror(errno));
            if (w > 0)
                r->sent += (size_t)w;
        }
        if (progress && r->confirmed != last_report) {
            progress(arg, r->confirmed, len);
            last_report = r->confirmed;
        }
    }
}

int ota_arduino_upload(const ota_arduino_options_t *o, const uint8_t *image, size_t len,
                       ota_progress_fn progress, void *arg, ota_arduino_result_t *r)
{
    memset(r, 0, sizeof *r);
    char service[8];
    snprintf(service, sizeof service, "%u", (unsigned)o->port);
    struct addrinfo hints, *ai = NULL;
    memset(&hints, 0, sizeof hints);
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_DGRAM;
    int g = getaddrinfo(o->host, service, &hints, &ai);
    if (g != 0)
        return fail(r, OTA_AR_RESOLVE, OTA_EXIT_NETWORK, gai_strerror(g));
    int family = ai->ai_family;
    struct sockaddr_storage device;
    memset(&device, 0, sizeof device);
    memcpy(&device, ai->ai_addr,
           ai->ai_addrlen < sizeof device ? ai->ai_addrlen : sizeof device);
    if (o->auth == OTA_AUTH_SALTED) {
        freeaddrinfo(ai);
        return fail(r, OTA_AR_AUTH_METHOD, OTA_EXIT_AUTH, "ArduinoOTA has no salted method");
    }
    int udp = socket(family, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (udp < 0 || connect(udp, ai->ai_addr, ai->ai_addrlen) != 0) {
        freeaddrinfo(ai);
        if (udp >= 0)
            close(udp);
        return fail(r, OTA_AR_NO_ANSWER, OTA_EXIT_NETWORK, strerror(errno));
    }
    freeaddrinfo(ai);

    /* the listener the device connects back to */
    int lfd = socket(family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_storage ss;
    socklen_t sl;
    memset(&ss, 0, sizeof ss);
    if (family == AF_INET6) {
        struct sockaddr_in6 *a = (struct sockaddr_in6 *)&ss;
        a->sin6_family = AF_INET6;
        a->sin6_port = htons(o->host_port);
        a->sin6_addr = in6addr_any;
        if (o->host_ip && inet_pton(AF_INET6, o->host_ip, &a->sin6_addr) != 1)
            lfd = lfd >= 0 ? (close(lfd), -2) : lfd;
        sl = sizeof *a;
    } else {
        struct sockaddr_in *a = (struct sockaddr_in *)&ss;
        a->sin_family = AF_INET;
        a->sin_port = htons(o->host_port);
        a->sin_addr.s_addr = htonl(INADDR_ANY);
        if (o->host_ip && inet_pton(AF_INET, o->host_ip, &a->sin_addr) != 1)
            lfd = lfd >= 0 ? (close(lfd), -2) : lfd;
        sl = sizeof *a;
    }
    int one = 1;
    if (lfd >= 0)
        setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (lfd < 0 || bind(lfd, (struct sockaddr *)&ss, sl) != 0 || listen(lfd, 1) != 0) {
        char why[128];
        snprintf(why, sizeof why, "%s", lfd == -2 ? "--host-ip is not an address of that family"
                                                  : strerror(errno));
        if (lfd >= 0)
            close(lfd);
        close(udp);
        return fail(r, OTA_AR_LISTEN, OTA_EXIT_NETWORK, why);
    }
    sl = sizeof ss;
    getsockname(lfd, (struct sockaddr *)&ss, &sl);
    r->host_port = ntohs(family == AF_INET6 ? ((struct sockaddr_in6 *)&ss)->sin6_port
                                            : ((struct sockaddr_in *)&ss)->sin_port);

    uint8_t digest[OTA_MD5_HEX_LEN / 2];
    char md5[OTA_MD5_HEX_LEN + 1], invitation[96], answer[ANSWER_MAX + 1];
    mbedtls_md5_ret(image, len, digest);
    hex_of(digest, sizeof digest, md5);
    snprintf(invitation, sizeof invitation, "%u %u %zu %s\n",
             o->filesystem ? OTA_ARDUINO_CMD_SPIFFS : OTA_ARDUINO_CMD_FLASH,
             (unsigned)r->host_port, len, md5);

    int rc = OTA_EXIT_OK;
    bool sha_with_md5 = o->auth == OTA_AUTH_MD5, retried = false;
    for (;;) {
        bool answered = false;
        for (unsigned i = 0; i < OTA_ARDUINO_INVITATION_TRIES && !answered; i++)
            answered = ask(udp, invitation, answer, sizeof answer,
                           (int)OTA_ARDUINO_INVITATION_INTERVAL_MS) == 0;
        if (!answered) {
            rc = fail(r, OTA_AR_NO_ANSWER, OTA_EXIT_NETWORK, NULL);
            break;
        }
        if (strncmp(answer, OTA_ARDUINO_REPLY_AUTH, AUTH_REPLY_LEN) == 0) {
            const char *nonce = answer + AUTH_REPLY_LEN;
            size_t nlen = strlen(nonce);
            if (nlen != OTA_MD5_HEX_LEN && nlen != OTA_SHA256_HEX_LEN) {
                rc = fail(r, OTA_AR_DEVICE_ERROR, OTA_EXIT_DEVICE, answer);
                break;
            }
            if (o->password == NULL) {
                rc = fail(r, OTA_AR_NEED_PASSWORD, OTA_EXIT_AUTH, NULL);
                break;
            }
            if (o->auth == OTA_AUTH_NONE ||
                (o->auth == OTA_AUTH_SHA256 && nlen != OTA_SHA256_HEX_LEN)) {
                /* not what --auth says the device asks for: no answer at all */
                rc = fail(r, OTA_AR_AUTH_METHOD, OTA_EXIT_AUTH,
                          nlen == OTA_SHA256_HEX_LEN ? "the SHA-256 challenge"
                                                     : "the MD5 challenge");
                break;
            }
            char reply[200], verdict[ANSWER_MAX + 1];
            if (challenge_answer(o->password, nonce, sha_with_md5, reply, sizeof reply) != 0) {
                rc = fail(r, OTA_AR_LOST, OTA_EXIT_INTERNAL, "crypto failure");
                break;
            }
            r->answers++;
            if (ask(udp, reply, verdict, sizeof verdict, VERDICT_WAIT_MS) != 0) {
                rc = fail(r, OTA_AR_NO_ANSWER, OTA_EXIT_NETWORK, NULL);
                break;
            }
            if (strstr(verdict, OTA_ARDUINO_REPLY_OK) == NULL) {
                if (nlen == OTA_SHA256_HEX_LEN && o->auth == OTA_AUTH_AUTO && o->retry_md5_key &&
                    !retried) {
                    /* some devices keep MD5hex(password): once more, as espota.py does */
                    sha_with_md5 = retried = true;
                    continue;
                }
                rc = fail(r, OTA_AR_AUTH_FAILED, OTA_EXIT_AUTH, verdict);
                break;
            }
        } else if (strncmp(answer, OTA_ARDUINO_REPLY_ERR, sizeof OTA_ARDUINO_REPLY_ERR - 1) == 0) {
            rc = fail(r, OTA_AR_DEVICE_ERROR, OTA_EXIT_DEVICE, answer);
            break;
        } else if (strcmp(answer, OTA_ARDUINO_REPLY_OK) != 0) {
            rc = fail(r, OTA_AR_DEVICE_ERROR, OTA_EXIT_DEVICE, answer);
            break;
        } else if (o->password != NULL && o->auth != OTA_AUTH_NONE) {
            /* no challenge at all: anyone can say that */
            rc = fail(r, OTA_AR_NO_AUTH_ASKED, OTA_EXIT_AUTH, NULL);
            break;
        }
        /* invited: the device connects back, from the address we invited */
        int fd = accept_device(lfd, &device, (int)OTA_ARDUINO_CONNECT_TIMEOUT_MS, r);
        if (fd < 0) {
            rc = fail(r, OTA_AR_NO_CONNECT, OTA_EXIT_NETWORK, NULL);
            break;
        }
        rc = stream(fd, image, len, o->timeout_s, progress, arg, r);
        close(fd);
        break;
    }
    close(lfd);
    close(udp);
    return rc;
}

void ota_arduino_print_auth_warning(FILE *out, const ota_arduino_options_t *o,
                                    const ota_arduino_result_t *r)
{
    if (r->answers == 0)
        return;
    fprintf(out, "warning: %s:%u used ArduinoOTA auth, so it cannot prove it knows the "
                 "password (and whoever asked may crack the answer offline); the native "
                 "protocol's salted auth can\n", o->host, (unsigned)o->port);
}

void ota_arduino_print_failure(FILE *out, const ota_arduino_options_t *o,
                               const ota_arduino_result_t *r)
{
    switch (r->failure) {
    case OTA_AR_OK: return;
    case OTA_AR_RESOLVE:
        fprintf(out, "error: host '%s' does not resolve (%s)\n", o->host, r->text);
        fprintf(out, "hint: use the device's IP address (--device 192.168.1.50)\n");
        return;
    case OTA_AR_LISTEN:
        fprintf(out, "error: cannot listen for the device's connection: %s\n", r->text);
        fprintf(out, "hint: pick another --host-port, or a --host-ip of this machine\n");
        return;
    case OTA_AR_NO_ANSWER:
        fprintf(out, "error: %s did not answer the ArduinoOTA invitation on UDP port %u\n",
                o->host, (unsigned)o->port);
        fprintf(out, "hint: check the address, that ArduinoOTA runs on the device and its port "
                     "(%u for ESP8266, %u for ESP32), and that no firewall drops UDP\n",
                OTA_PORT_ESP8266, OTA_PORT_ESP32);
        return;
    case OTA_AR_DEVICE_ERROR:
    case OTA_AR_FINAL_ERROR:
        fprintf(out, "error: the device says: %s\n", r->text);
        if (strstr(r->text, "Invalid bootstrapping") || strstr(r->text, "bootstrapping"))
            fprintf(out, "hint: the ESP8266 was not reset after its serial flash: power-cycle "
                         "it once (unplug it or press reset), then upload again\n");
        else if (strstr(r->text, "in progress"))
            fprintf(out, "hint: wait for the other upload to finish, then try again\n");
        else if (strstr(r->text, "signed"))
            fprintf(out, "hint: sign the firmware with a key the device trusts: ota sign --key "
                         "KEY.pem FIRMWARE (it keeps running its current firmware)\n");
        else if (r->failure == OTA_AR_FINAL_ERROR && r->sent < 1)
            fprintf(out, "hint: check the device's log\n");
        return;
    case OTA_AR_NEED_PASSWORD:
        fprintf(out, "error: the device requires a password\n");
        fprintf(out, "hint: pass it with --password, --password-file or OTA_PASSWORD\n");
        return;
    case OTA_AR_AUTH_FAILED:
        fprintf(out, "error: authentication failed: wrong password (the device said \"%s\")\n",
                r->text);
        fprintf(out, "hint: check the password the device was built with\n");
        return;
    case OTA_AR_NO_AUTH_ASKED:
        fprintf(out, "error: the device asked for no password, although one was given; %s "
                     "gets no firmware\n", o->host);
        fprintf(out, "hint: anything can answer 'no password needed': if this device really "
                     "has no password, upload with --auth none; otherwise it may be an "
                     "impostor (check the address)\n");
        return;
    case OTA_AR_AUTH_METHOD:
        if (o->auth == OTA_AUTH_SALTED)
            fprintf(out, "error: --auth salted cannot be used over ArduinoOTA (it has only the "
                         "MD5 and SHA-256 challenges)\n");
        else
            fprintf(out, "error: the device asked for %s, which --auth excludes; no response "
                         "and no firmware were sent\n", r->text);
        fprintf(out, "hint: if that is what the device should ask for, change --auth; "
                     "otherwise it may not be your device (check the address)\n");
        return;
    case OTA_AR_NO_CONNECT:
        if (r->strangers != 0)
            fprintf(out, "note: %u connection(s) to port %u came from another address (last: "
                         "%s), not from %s: closed, nothing sent to them\n", r->strangers,
                    (unsigned)r->host_port, r->stranger, o->host);
        fprintf(out, "error: the device accepted the invitation but never connected back to "
                     "port %u of this machine\n", (unsigned)r->host_port);
        fprintf(out, "hint: a firewall may block it: open a port and pass --host-port N (and "
                     "--host-ip ADDR on a machine with several networks)\n");
        return;
    case OTA_AR_LOST:
        fprintf(out, "error: the transfer broke after %zu of the image's bytes were confirmed: "
                     "%s\n", r->confirmed, r->text);
        fprintf(out, "hint: the device keeps its old firmware; retry\n");
        return;
    }
}
