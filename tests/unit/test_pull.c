/*
 * test_pull.c - the pull client (ota/pull.h) against a scripted web server: the test's
 * own TCP table answers each GET from a small file table (Range and If-Range as nginx
 * does them: 206 for a matching validator, the whole file otherwise), can cut a
 * response after N bytes (a server or a link that dies) and counts what it sent. The
 * slot and the boot record are the fake port's (tests/unit/fake_port.c), so a "power
 * cut" is a new pull context over the same slot and record. The clock is the test's.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <mbedtls/md5.h>
#include <mbedtls/sha256.h>

#include "fake_port.h"
#include "ota/errors.h"
#include "ota/pull.h"
#include "ota/update.h"
#include "ota/util.h"

#define IMG_SIZE (700u * 1024u + 123u)
#define MAX_FILES 4
#define MAX_REQS 64

/* ------------------------------------------------------------ the web server */

typedef struct web_file {
    const char *path; /* "/manifest.json" */
    uint8_t *data;
    size_t len;
    char etag[32];
} web_file_t;

typedef struct web_conn {
    bool open;
    char req[2048];
    size_t req_len;
    uint8_t *resp; /* head + body slice, malloc'd when the request is complete */
    size_t resp_len, resp_off;
    size_t cut_at; /* close after this many response bytes (0: never) */
} web_conn_t;

typedef struct web {
    web_file_t files[MAX_FILES];
    int n_files;
    web_conn_t conns[8];
    size_t cut_next; /* the next image response is cut after this many bytes */
    bool ignore_range; /* answer 200 to every Range (a server without ranges) */
    /* what was asked and answered */
    int n_reqs;
    char req_path[MAX_REQS][64];
    char req_range[MAX_REQS][64];
    int req_status[MAX_REQS];
    size_t body_sent; /* image body bytes that left the server */
    size_t piece;     /* most bytes one recv hands out */
} web_t;

static web_t web;

static const char *header(const char *req, const char *name, char *out, size_t cap)
{
    out[0] = '\0';
    const char *p = strstr(req, name);
    if (p == NULL)
        return out;
    p += strlen(name);
    while (*p == ' ')
        p++;
    size_t n = strcspn(p, "\r\n");
    if (n >= cap)
        n = cap - 1;
    memcpy(out, p, n);
    out[n] = '\0';
    return out;
}

static void answer(web_conn_t *c)
{
    char path[64] = "", range[64], ifr[64];
    sscanf(c->req, "GET %63s", path);
    header(c->req, "\r\nRange:", range, sizeof range);
    header(c->req, "\r\nIf-Range:", ifr, sizeof ifr);
    int r = web.n_reqs < MAX_REQS ? web.n_reqs++ : MAX_REQS - 1;
    snprintf(web.req_path[r], sizeof web.req_path[r], "%s", path);
    snprintf(web.req_range[r], sizeof web.req_range[r], "%s", range);
    web_file_t *f = NULL;
    for (int i = 0; i < web.n_files; i++)
        if (strcmp(web.files[i].path, path) == 0)
            f = &web.files[i];
    char head[512];
    size_t from = 0, n = 0;
    int status;
    if (f == NULL) {
        status = 404;
        snprintf(head, sizeof head, "HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n");
    } else {
        unsigned long start = 0;
        bool ranged = range[0] != '\0' && sscanf(range, "bytes=%lu-", &start) == 1 &&
                      !web.ignore_range && start < f->len &&
                      (ifr[0] == '\0' || strcmp(ifr, f->etag) == 0);
        from = ranged ? start : 0;
        n = f->len - from;
        status = ranged ? 206 : 200;
        if (ranged)
            snprintf(head, sizeof head,
                     "HTTP/1.1 206 Partial Content\r\nContent-Length: %zu\r\nETag: %s\r\n"
                     "Content-Range: bytes %zu-%zu/%zu\r\n\r\n",
                     n, f->etag, from, f->len - 1, f->len);
        else
            snprintf(head, sizeof head,
                     "HTTP/1.1 200 OK\r\nContent-Length: %zu\r\nETag: %s\r\n"
                     "Accept-Ranges: bytes\r\n\r\n", n, f->etag);
        if (strstr(path, ".bin") != NULL && web.cut_next) {
            c->cut_at = strlen(head) + web.cut_next;
            web.cut_next = 0;
        }
    }
    web.req_status[r] = status;
    size_t hl = strlen(head);
    c->resp = malloc(hl + n + 1);
    memcpy(c->resp, head, hl);
    if (n)
        memcpy(c->resp + hl, f->data + from, n);
    c->resp_len = hl + n;
    c->resp_off = 0;
}

static int w_connect_host(void *ctx, const char *host, uint16_t port, ota_conn_t *conn)
{
    (void)ctx;
    assert_string_equal(host, "updates.test");
    assert_int_equal(port, 8080);
    for (int i = 0; i < 8; i++)
        if (!web.conns[i].open) {
            memset(&web.conns[i], 0, sizeof web.conns[i]);
            web.conns[i].open = true;
            *conn = i;
            return OTA_OK;
        }
    return OTA_ERR_IO;
}

static int w_send(void *ctx, ota_conn_t conn, const uint8_t *buf, size_t len)
{
    (void)ctx;
    web_conn_t *c = &web.conns[conn];
    assert_true(c->open);
    if (c->resp != NULL)
        return (int)len; /* after the request: ignored */
    assert_true(c->req_len + len < sizeof c->req);
    memcpy(c->req + c->req_len, buf, len);
    c->req_len += len;
    c->req[c->req_len] = '\0';
    if (strstr(c->req, "\r\n\r\n") != NULL)
        answer(c);
    return (int)len;
}

static int w_recv(void *ctx, ota_conn_t conn, uint8_t *buf, size_t len)
{
    (void)ctx;
    web_conn_t *c = &web.conns[conn];
    assert_true(c->open);
    if (c->resp == NULL)
        return OTA_ERR_WOULD_BLOCK;
    size_t end = c->cut_at && c->cut_at < c->resp_len ? c->cut_at : c->resp_len;
    if (c->resp_off >= end)
        return OTA_ERR_CLOSED; /* Connection: close, or the cut */
    size_t n = end - c->resp_off;
    if (n > len)
        n = len;
    if (web.piece && n > web.piece)
        n = web.piece;
    memcpy(buf, c->resp + c->resp_off, n);
    /* count image body bytes: whatever follows the head of a .bin answer */
    const char *hd = (const char *)c->resp;
    const char *body = strstr(hd, "\r\n\r\n");
    size_t body_at = body ? (size_t)(body - hd) + 4 : 0;
    if (strstr(c->req, ".bin ") != NULL) {
        size_t a = c->resp_off > body_at ? c->resp_off : body_at;
        if (c->resp_off + n > a)
            web.body_sent += c->resp_off + n - a;
    }
    c->resp_off += n;
    return (int)n;
}

static void w_close(void *ctx, ota_conn_t conn)
{
    (void)ctx;
    web_conn_t *c = &web.conns[conn];
    free(c->resp);
    memset(c, 0, sizeof *c);
}

static const ota_tcp_port_t web_tcp = {
    .recv = w_recv, .send = w_send, .close = w_close, .connect_host = w_connect_host};

static void web_put(const char *path, const uint8_t *data, size_t len, const char *etag)
{
    web_file_t *f = NULL;
    for (int i = 0; i < web.n_files; i++)
        if (strcmp(web.files[i].path, path) == 0)
            f = &web.files[i];
    if (f == NULL)
        f = &web.files[web.n_files++];
    free(f->data);
    f->path = path;
    f->data = malloc(len ? len : 1);
    memcpy(f->data, data, len);
    f->len = len;
    snprintf(f->etag, sizeof f->etag, "%s", etag);
}

static void web_reset(void)
{
    for (int i = 0; i < web.n_files; i++)
        free(web.files[i].data);
    for (int i = 0; i < 8; i++)
        free(web.conns[i].resp);
    memset(&web, 0, sizeof web);
}

/* ------------------------------------------------------------ the node */

static fake_port_t fp;
static ota_update_t up;
static ota_pull_t pull;
static uint8_t *img;
static uint32_t now;

/* manifest.json for img as version `version`, rollout (-1: none), a sha256 that is
 * right unless bad_sha */
static void publish(const char *version, int rollout, bool bad_sha)
{
    uint8_t md5[16], sha[32];
    mbedtls_md5_ret(img, IMG_SIZE, md5);
    mbedtls_sha256_ret(img, IMG_SIZE, sha, 0);
    if (bad_sha)
        sha[5] ^= 1;
    char m5[33], s2[65], ro[32] = "";
    ota_hex_encode(md5, 16, m5);
    m5[32] = '\0';
    ota_hex_encode(sha, 32, s2);
    s2[64] = '\0';
    if (rollout >= 0)
        snprintf(ro, sizeof ro, ", \"rollout\": %d", rollout);
    static char json[1024];
    snprintf(json, sizeof json,
             "{\"name\": \"demo\", \"version\": \"%s\", \"builds\": [{\"chipFamily\": "
             "\"ESP32\", \"ota\": {\"path\": \"other.bin\", \"md5\": \"%s\"}}, "
             "{\"chipFamily\": \"" OTA_MANIFEST_FAMILY_POSIX "\", \"ota\": {\"path\": "
             "\"fw.bin\", \"md5\": \"%s\", \"sha256\": \"%s\", \"size\": %u%s}}]}",
             version, m5, m5, s2, IMG_SIZE, ro);
    web_put("/fw/manifest.json", (const uint8_t *)json, strlen(json), "\"m1\"");
}

static void node_setup(const char *name)
{
    assert_int_equal(ota_update_setup(&up, &fp.t.slot, NULL, &fp.t.crypto, NULL, NULL, NULL),
                     OTA_OK);
    ota_pull_config_t pc;
    ota_pull_config_default(&pc);
    pc.manifest_url = "http://updates.test:8080/fw/manifest.json";
    pc.node_name = name;
    pc.version = "1.0.0";
    pc.chip_family = OTA_MANIFEST_FAMILY_POSIX;
    pc.interval_ms = 3600000u;
    pc.retry_min_ms = 1000u;
    const ota_pull_ports_t pp = {.tcp = &web_tcp, .crypto = &fp.t.crypto, .boot = &fp.t.boot};
    assert_int_equal(ota_pull_setup(&pull, &pp, &up, &pc, now), OTA_OK);
    ota_pull_enable(&pull, now);
}

static int setup(void **state)
{
    (void)state;
    web_reset();
    fake_init(&fp, 2u << 20);
    fake_tables(&fp, FAKE_DEFAULT);
    img = malloc(IMG_SIZE);
    for (uint32_t i = 0; i < IMG_SIZE; i++)
        img[i] = (uint8_t)(i * 2654435761u >> 24);
    web_put("/fw/fw.bin", img, IMG_SIZE, "\"v2\"");
    now = 1000;
    web.piece = 3000;
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    web_reset();
    fake_free(&fp);
    free(img);
    return 0;
}

/* Poll (advancing the clock 1 ms per round) until the node asked for a reboot, the
 * pull went idle again after trying, or max rounds. */
static void run(long max_rounds)
{
    for (long i = 0; i < max_rounds && fp.reboots == 0; i++) {
        int rc = ota_pull_poll(&pull, now);
        now += 1;
        if (rc != OTA_ERR_WOULD_BLOCK && !ota_pull_active(&pull) && i > 0)
            return;
    }
}

static int count_reqs(const char *path, int status)
{
    int n = 0;
    for (int i = 0; i < web.n_reqs; i++)
        n += strcmp(web.req_path[i], path) == 0 && (status == 0 || web.req_status[i] == status);
    return n;
}

/* ------------------------------------------------------------ tests */

static void test_pull_takes_a_new_release(void **state)
{
    (void)state;
    publish("2.0.0", -1, false);
    node_setup("node-a");
    run(1000000);
    assert_int_equal(fp.reboots, 1);
    assert_true(fp.activated);
    assert_memory_equal(fp.slot, img, IMG_SIZE);
    assert_int_equal(ota_pull_status(&pull, NULL), OTA_PULL_UPDATED);
    assert_int_equal(count_reqs("/fw/manifest.json", 200), 1);
    assert_int_equal(count_reqs("/fw/fw.bin", 200), 1);
    assert_int_equal(web.body_sent, IMG_SIZE);
    assert_int_equal(fp.boot.pull_offset, 0); /* no resume point left behind */
    assert_true(fp.sync_calls >= 2);           /* resume points on the way */
}

static void test_same_version_and_schedule(void **state)
{
    (void)state;
    publish("1.0.0", -1, false);
    node_setup("node-a");
    run(100000);
    assert_int_equal(ota_pull_status(&pull, NULL), OTA_PULL_UP_TO_DATE);
    assert_int_equal(count_reqs("/fw/fw.bin", 0), 0);
    /* the next check in 3600 s +- 10 % */
    uint32_t next = ota_pull_next_ms(&pull, now);
    assert_in_range(next, 3240000u - 10, 3960000u);
    run(10);
    assert_int_equal(count_reqs("/fw/manifest.json", 0), 1);
    /* a check on request */
    ota_pull_check_now(&pull);
    run(100000);
    assert_int_equal(count_reqs("/fw/manifest.json", 0), 2);
}

static void test_cut_download_resumes_with_range(void **state)
{
    (void)state;
    publish("2.0.0", -1, false);
    node_setup("node-a");
    web.cut_next = 300 * 1024; /* the server dies after 300 KiB of body */
    run(1000000);
    assert_int_equal(fp.reboots, 0);
    assert_int_equal(ota_pull_status(&pull, NULL), OTA_PULL_FAILED);
    uint32_t point = fp.boot.pull_offset; /* the last resume point */
    assert_in_range(point, 256u * 1024u, 300u * 1024u);
    /* the retry comes after about a second, not after the interval */
    uint32_t wait = ota_pull_next_ms(&pull, now);
    assert_in_range(wait, 900, 1300);
    now += wait;
    run(1000000);
    assert_int_equal(fp.reboots, 1);
    assert_memory_equal(fp.slot, img, IMG_SIZE);
    assert_int_equal(count_reqs("/fw/fw.bin", 206), 1);
    int last = web.n_reqs - 1;
    char want[64];
    snprintf(want, sizeof want, "bytes=%u-", (unsigned)point);
    assert_string_equal(web.req_range[last], want);
    assert_true(web.body_sent < IMG_SIZE * 12 / 10);
}

/* A power cut: a new node context over the same slot and boot record resumes. */
static void test_power_cut_resumes_from_the_record(void **state)
{
    (void)state;
    publish("2.0.0", -1, false);
    node_setup("node-a");
    web.cut_next = 600 * 1024;
    run(1000000);
    uint32_t point = fp.boot.pull_offset;
    assert_in_range(point, 512u * 1024u, 600u * 1024u);
    memset(&pull, 0xAA, sizeof pull); /* everything in RAM is gone */
    memset(&up, 0xAA, sizeof up);
    node_setup("node-a");
    run(1000000);
    assert_int_equal(fp.reboots, 1);
    assert_memory_equal(fp.slot, img, IMG_SIZE);
    assert_int_equal(fp.resume_calls, 1);
    char want[64];
    snprintf(want, sizeof want, "bytes=%u-", (unsigned)point);
    assert_string_equal(web.req_range[web.n_reqs - 1], want);
}

/* The file changed (new ETag) or the server ignores ranges: 200, start over, and
 * the image is still right. */
static void test_whole_file_answer_starts_over(void **state)
{
    (void)state;
    publish("2.0.0", -1, false);
    node_setup("node-a");
    web.cut_next = 300 * 1024;
    run(1000000);
    web.ignore_range = true;
    now += ota_pull_next_ms(&pull, now);
    run(1000000);
    assert_int_equal(fp.reboots, 1);
    assert_memory_equal(fp.slot, img, IMG_SIZE);
    assert_int_equal(count_reqs("/fw/fw.bin", 200), 2);
    assert_int_equal(count_reqs("/fw/fw.bin", 206), 0);
}

/* A changed file under the same manifest: the If-Range ETag no longer matches, the
 * server sends the whole (new) file, and its SHA-256 is not the announced one:
 * nothing is activated, and the resume point is dropped. */
static void test_changed_file_is_never_activated(void **state)
{
    (void)state;
    publish("2.0.0", -1, false);
    node_setup("node-a");
    web.cut_next = 300 * 1024;
    run(1000000);
    img[100] ^= 0xFF;
    web_put("/fw/fw.bin", img, IMG_SIZE, "\"v3\"");
    img[100] ^= 0xFF;
    now += ota_pull_next_ms(&pull, now);
    run(1000000);
    assert_int_equal(fp.reboots, 0);
    assert_false(fp.activated);
    int err = 0;
    assert_int_equal(ota_pull_status(&pull, &err), OTA_PULL_FAILED);
    /* the manifest's MD5 is checked first, then its SHA-256: either refuses it */
    assert_true(err == OTA_ERR_MD5_MISMATCH || err == OTA_ERR_SHA256_MISMATCH);
    assert_int_equal(fp.boot.pull_offset, 0);
    assert_true(strncmp(web.req_range[web.n_reqs - 1], "bytes=", 6) == 0);
    assert_int_equal(web.req_status[web.n_reqs - 1], 200);
}

static void test_wrong_sha256_and_backoff(void **state)
{
    (void)state;
    publish("2.0.0", -1, true);
    node_setup("node-a");
    uint32_t waits[4];
    for (int i = 0; i < 4; i++) {
        run(1000000);
        assert_false(fp.activated);
        waits[i] = ota_pull_next_ms(&pull, now);
        now += waits[i];
    }
    /* 1 s, 2 s, 4 s, 8 s (each + up to a quarter of jitter) */
    for (int i = 0; i < 4; i++)
        assert_in_range(waits[i], (1000u << i) - 5, (1000u << i) * 5 / 4 + 5);
    assert_int_equal(count_reqs("/fw/fw.bin", 200), 4);
}

static void test_rollout_buckets(void **state)
{
    (void)state;
    publish("2.0.0", 0, false);
    node_setup("node-a");
    run(100000);
    assert_int_equal(ota_pull_status(&pull, NULL), OTA_PULL_UP_TO_DATE);
    assert_int_equal(count_reqs("/fw/fw.bin", 0), 0);
    /* 50 %: exactly the nodes whose bucket is below 50 take it */
    int took = 0;
    char name[32];
    for (int i = 0; i < 40; i++) {
        snprintf(name, sizeof name, "node-%02d", i);
        int b = ota_manifest_rollout_bucket(&fp.t.crypto, name, "2.0.0");
        assert_in_range(b, 0, 99);
        publish("2.0.0", 50, false);
        web.n_reqs = 0;
        node_setup(name);
        run(100000);
        bool downloading = count_reqs("/fw/fw.bin", 0) > 0;
        assert_int_equal(downloading, b < 50);
        took += downloading;
        ota_http_close(&pull.http);
        if (ota_update_held_by(&up, OTA_UPDATE_HOLDER_PULL))
            ota_update_abort(&up, OTA_UPDATE_HOLDER_PULL, OTA_ERR_CLOSED);
        fp.reboots = 0;
    }
    assert_in_range(took, 8, 32);
}

/* A push holds the update lock: the pull waits for it, then goes. */
static void test_push_in_progress_defers_the_pull(void **state)
{
    (void)state;
    publish("2.0.0", -1, false);
    node_setup("node-a");
    assert_int_equal(ota_update_lock(&up, OTA_UPDATE_HOLDER_NATIVE(0)), OTA_OK);
    run(50);
    assert_int_equal(web.n_reqs, 0);
    ota_update_abort(&up, OTA_UPDATE_HOLDER_NATIVE(0), OTA_ERR_CLOSED);
    now += 1000;
    run(1000000);
    assert_int_equal(fp.reboots, 1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_pull_takes_a_new_release, setup, teardown),
        cmocka_unit_test_setup_teardown(test_same_version_and_schedule, setup, teardown),
        cmocka_unit_test_setup_teardown(test_cut_download_resumes_with_range, setup, teardown),
        cmocka_unit_test_setup_teardown(test_power_cut_resumes_from_the_record, setup, teardown),
        cmocka_unit_test_setup_teardown(test_whole_file_answer_starts_over, setup, teardown),
        cmocka_unit_test_setup_teardown(test_changed_file_is_never_activated, setup, teardown),
        cmocka_unit_test_setup_teardown(test_wrong_sha256_and_backoff, setup, teardown),
        cmocka_unit_test_setup_teardown(test_rollout_buckets, setup, teardown),
        cmocka_unit_test_setup_teardown(test_push_in_progress_defers_the_pull, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
