/*
 * test_port_http.c - the core's HTTP client over the POSIX port's real tables
 * (connect_host.c: names resolved in the background; tls_mbedtls.c: https) against
 * a real nginx on loopback that this test configures and starts itself:
 *   plain GET by name and by address, Range with If-Range (206, and 200 when the
 *   validator does not match), redirects (followed, loops refused, https -> http
 *   refused, http -> https followed), 404, refused connections, unknown names;
 *   HTTPS with a CA made here by openssl: the right certificate passes, one for
 *   another name, one from an unknown CA, and an address instead of the name fail;
 *   the system bundle does not trust the test CA. No call of the client or the
 *   port blocks the loop for long (name lookups and handshakes included).
 * nginx runs in the foreground as a single process that dies with this test
 * (PR_SET_PDEATHSIG) and is stopped by the group teardown. Without nginx (or
 * openssl) the tests are skipped, saying so.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sched.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "ota/errors.h"
#include "ota/http.h"
#include "ota_posix.h"
#include "port_test_util.h"

#define FW_SIZE (1024u * 1024u + 777u)

typedef struct env {
    bool skip;
    char skip_why[4400];
    char dir[4096];      /* everything: nginx prefix, state dir, certificates, www */
    char state[4200];
    char ca[4200];
    pid_t nginx;
    uint16_t port_http, port_tls, port_wrong, port_untrusted;
    uint8_t *fw;
    ota_posix_t posix;
    bool posix_up;
} env_t;

static env_t E;

static const char *nginx_bin(void)
{
    const char *b = getenv("OTA_NGINX");
    return b != NULL && b[0] != '\0' ? b : "/usr/sbin/nginx";
}

static uint16_t free_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    assert_true(fd >= 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof a), 0);
    socklen_t sl = sizeof a;
    assert_int_equal(getsockname(fd, (struct sockaddr *)&a, &sl), 0);
    close(fd);
    return ntohs(a.sin_port);
}

static bool port_open(uint16_t port)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET,
                            .sin_port = htons(port),
                            .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    bool ok = connect(fd, (struct sockaddr *)&a, sizeof a) == 0;
    close(fd);
    return ok;
}

static int sh(const char *fmt, ...)
{
    char cmd[8192];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(cmd, sizeof cmd, fmt, ap);
    va_end(ap);
    int rc = system(cmd);
    return WIFEXITED(rc) ? WEXITSTATUS(rc) : -1;
}

/* a CA, and server certificates: localhost (by the CA), wrong.example (by the CA),
 * localhost (by another, untrusted CA) */
static bool make_certs(void)
{
    const char *d = E.dir;
    const char *ec = "-newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes";
    if (sh("cd %s && openssl req -x509 %s -keyout ca.key -out ca.crt -days 2 -subj /CN=ota-test-ca "
           "-addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign "
           ">openssl.log 2>&1", d, ec) != 0 ||
        sh("cd %s && openssl req -x509 %s -keyout other.key -out other.crt -days 2 "
           "-subj /CN=other-ca >>openssl.log 2>&1", d, ec) != 0)
        return false;
    static const struct {
        const char *name, *cn, *ca;
    } certs[] = {{"good", "localhost", "ca"}, {"wrong", "wrong.example", "ca"},
                 {"untrusted", "localhost", "other"}};
    for (size_t i = 0; i < 3; i++) {
        if (sh("cd %s && openssl req %s -keyout %s.key -out %s.csr -subj /CN=%s "
               ">>openssl.log 2>&1 && printf 'subjectAltName=DNS:%s\\n' > %s.ext && "
               "openssl x509 -req -in %s.csr -CA %s.crt -CAkey %s.key -CAcreateserial "
               "-days 2 -extfile %s.ext -out %s.crt >>openssl.log 2>&1",
               d, ec, certs[i].name, certs[i].name, certs[i].cn, certs[i].cn, certs[i].name,
               certs[i].name, certs[i].ca, certs[i].ca, certs[i].name, certs[i].name) != 0)
            return false;
    }
    return true;
}

static int group_setup(void **state)
{
    (void)state;
    memset(&E, 0, sizeof E);
    if (access(nginx_bin(), X_OK) != 0) {
        E.skip = true;
        snprintf(E.skip_why, sizeof E.skip_why,
                 "%s not found: install nginx-light (scripts/deps.sh) to run these tests",
                 nginx_bin());
        return 0;
    }
    if (sh("command -v openssl >/dev/null") != 0) {
        E.skip = true;
        snprintf(E.skip_why, sizeof E.skip_why, "openssl not found (scripts/deps.sh)");
        return 0;
    }
    tu_mkdtemp(E.dir);
    chmod(E.dir, 0755); /* nginx reads www/ */
    char www[4200], p[4300];
    tu_path(www, E.dir, "www");
    mkdir(www, 0755);
    tu_path(E.state, E.dir, "state");
    mkdir(E.state, 0700);
    tu_path(E.ca, E.dir, "ca.crt");
    E.fw = malloc(FW_SIZE);
    assert_non_null(E.fw);
    uint32_t x = 12345;
    for (size_t i = 0; i < FW_SIZE; i++) {
        x = x * 1103515245u + 12345u;
        E.fw[i] = (uint8_t)(x >> 16);
    }
    snprintf(p, sizeof p, "%s/fw.bin", www);
    tu_write(p, E.fw, FW_SIZE, 0644);
    snprintf(p, sizeof p, "%s/manifest.json", www);
    tu_write(p, "{\"name\":\"demo\"}", 15, 0644);
    if (!make_certs()) {
        E.skip = true;
        snprintf(E.skip_why, sizeof E.skip_why, "openssl could not make the test certificates "
                 "(see %s/openssl.log)", E.dir);
        return 0;
    }
    E.port_http = free_port();
    E.port_tls = free_port();
    E.port_wrong = free_port();
    E.port_untrusted = free_port();
    char conf[4200];
    tu_path(conf, E.dir, "nginx.conf");
    FILE *f = fopen(conf, "w");
    assert_non_null(f);
    fprintf(f,
            "pid %s/nginx.pid;\nerror_log %s/error.log info;\n"
            "events { worker_connections 64; }\n"
            "http {\n"
            "  default_type application/octet-stream;\n"
            "  log_format t '$request_uri $status $bytes_sent';\n"
            "  access_log %s/access.log t;\n"
            "  client_body_temp_path %s/tmp-body; proxy_temp_path %s/tmp-proxy;\n"
            "  fastcgi_temp_path %s/tmp-fcgi; uwsgi_temp_path %s/tmp-uwsgi;\n"
            "  scgi_temp_path %s/tmp-scgi;\n"
            "  root %s;\n"
            "  server {\n"
            "    listen 127.0.0.1:%u;\n"
            "    location = /old { return 302 /fw.bin; }\n"
            "    location = /rel { return 302 ../fw.bin; }\n"
            "    location = /loop { return 302 /loop; }\n"
            "    location = /up { return 301 https://localhost:%u/fw.bin; }\n"
            "  }\n"
            "  server {\n"
            "    listen 127.0.0.1:%u ssl;\n"
            "    ssl_certificate %s/good.crt; ssl_certificate_key %s/good.key;\n"
            "    location = /down { return 302 http://localhost:%u/fw.bin; }\n"
            "  }\n"
            "  server { listen 127.0.0.1:%u ssl;\n"
            "    ssl_certificate %s/wrong.crt; ssl_certificate_key %s/wrong.key; }\n"
            "  server { listen 127.0.0.1:%u ssl;\n"
            "    ssl_certificate %s/untrusted.crt; ssl_certificate_key %s/untrusted.key; }\n"
            "}\n",
            E.dir, E.dir, E.dir, E.dir, E.dir, E.dir, E.dir, E.dir, www, (unsigned)E.port_http,
            (unsigned)E.port_tls, (unsigned)E.port_tls, E.dir, E.dir, (unsigned)E.port_http,
            (unsigned)E.port_wrong, E.dir, E.dir, (unsigned)E.port_untrusted, E.dir, E.dir);
    fclose(f);
    E.nginx = fork();
    assert_true(E.nginx >= 0);
    if (E.nginx == 0) {
        prctl(PR_SET_PDEATHSIG, SIGKILL); /* never outlives the test */
        int null = open("/dev/null", 0);
        if (null >= 0) {
            dup2(null, 0);
        }
        execl(nginx_bin(), "nginx", "-p", E.dir, "-c", conf, "-g",
              "daemon off; master_process off;", (char *)NULL);
        _exit(127);
    }
    for (int i = 0; i < 500 && !(port_open(E.port_http) && port_open(E.port_untrusted)); i++) {
        int st;
        if (waitpid(E.nginx, &st, WNOHANG) == E.nginx) {
            E.nginx = 0;
            fail_msg("nginx did not start (see %s/error.log)", E.dir);
        }
        usleep(10000);
    }
    assert_true(port_open(E.port_http));

    unsetenv("OTA_BOOT_SLOT");
    ota_posix_options_t o = {.state_dir = E.state,
                             .bind_addr = "127.0.0.1",
                             .port = 0,
                             .slot_size = 4u << 20,
                             .tls_ca_file = E.ca};
    char err[512] = "";
    if (ota_posix_init(&E.posix, &o, err, sizeof err) != 0)
        fail_msg("ota_posix_init: %s", err);
    E.posix_up = true;
    return 0;
}

static int group_teardown(void **state)
{
    (void)state;
    if (E.posix_up)
        ota_posix_free(&E.posix);
    if (E.nginx > 0) {
        kill(E.nginx, SIGTERM);
        int st;
        for (int i = 0; i < 300 && waitpid(E.nginx, &st, WNOHANG) == 0; i++)
            usleep(10000);
        kill(E.nginx, SIGKILL);
        waitpid(E.nginx, &st, 0);
    }
    if (E.dir[0] != '\0' && getenv("OTA_KEEP_TMP") == NULL)
        sh("rm -rf '%s'", E.dir);
    free(E.fw);
    return 0;
}

static void skip_if_needed(void)
{
    if (E.skip) {
        print_message("SKIPPED: %s\n", E.skip_why);
        skip();
    }
}

typedef struct result {
    int rc;
    uint8_t *body;
    size_t len;
    uint32_t worst_call_ms; /* the longest single poll or read */
} result_t;

static ota_http_t H; /* the client of the last fetch: its accessors stay readable */

static uint32_t now_ms(void)
{
    return ota_posix_now_ms();
}

/* One GET through the node's tables (tls NULL: the node's own TLS table), the main
 * loop simulated with ota_posix_wait. */
static result_t fetch(const ota_tls_port_t *tls, const char *u, uint64_t range,
                      const char *if_range)
{
    result_t r = {0};
    assert_int_equal(ota_http_init(&H, &E.posix.ports.tcp, tls ? tls : &E.posix.ports.tls), 0);
    ota_http_request_t req = {.url = u,
                              .range_start = range,
                              .if_range = if_range,
                              .connect_timeout_ms = 10000,
                              .idle_timeout_ms = 10000};
    r.body = malloc(FW_SIZE + 1);
    assert_non_null(r.body);
    uint32_t t0 = now_ms();
    r.rc = ota_http_get(&H, &req, t0);
    while (r.rc == 0) {
        uint32_t a = now_ms();
        int rc = ota_http_poll(&H, a);
        if (rc == 0) {
            rc = ota_http_read(&H, r.body + r.len, FW_SIZE + 1 - r.len);
            if (rc > 0)
                r.len += (size_t)rc;
            else if (rc == 0)
                break; /* the end of the body */
        }
        uint32_t took = now_ms() - a;
        if (took > r.worst_call_ms)
            r.worst_call_ms = took;
        if (rc < 0 && rc != OTA_ERR_WOULD_BLOCK)
            r.rc = rc;
        else if (rc == OTA_ERR_WOULD_BLOCK)
            ota_posix_wait(&E.posix, 20);
        if (now_ms() - t0 > 30000)
            fail_msg("%s: no result after 30 s", u);
    }
    ota_http_close(&H);
    return r;
}

static char url_buf[512];
static const char *url(bool tls, uint16_t port, const char *host, const char *path)
{
    snprintf(url_buf, sizeof url_buf, "%s://%s:%u%s", tls ? "https" : "http", host,
             (unsigned)port, path);
    return url_buf;
}

static void expect_fw(result_t *r, size_t from)
{
    if (r->rc != 0)
        fail_msg("%s: %s (%s)", ota_http_url(&H), ota_strerror(r->rc),
                 ota_posix_tls_last_error(E.posix.tls));
    assert_int_equal(r->len, FW_SIZE - from);
    assert_memory_equal(r->body, E.fw + from, FW_SIZE - from);
    /* name lookups, connects and TLS handshakes never hold the loop (ASan build) */
    if (r->worst_call_ms >= 250)
        fail_msg("a call took %u ms", (unsigned)r->worst_call_ms);
    free(r->body);
}

static void test_plain_get(void **state)
{
    (void)state;
    skip_if_needed();
    const char *hosts[] = {"localhost", "127.0.0.1"};
    for (int i = 0; i < 2; i++) {
        result_t r = fetch(NULL, url(false, E.port_http, hosts[i], "/fw.bin"), 0, NULL);
        expect_fw(&r, 0);
        assert_int_equal(ota_http_status(&H), 200);
        assert_true(ota_http_content_length(&H) == FW_SIZE);
        assert_true(ota_http_etag(&H)[0] == '"'); /* nginx's strong ETag */
        assert_true(ota_http_last_modified(&H)[0] != '\0');
    }
    result_t r = fetch(NULL, url(false, E.port_http, "localhost", "/manifest.json"), 0, NULL);
    assert_int_equal(r.rc, 0);
    assert_int_equal(r.len, 15);
    free(r.body);
}

static bool log_has(const char *needle)
{
    char p[4200];
    tu_path(p, E.dir, "access.log");
    size_t n;
    uint8_t *log = tu_read(p, &n);
    bool found = false;
    if (log != NULL) {
        char *text = realloc(log, n + 1);
        text[n] = '\0';
        found = strstr(text, needle) != NULL;
        free(text);
    }
    return found;
}

static void test_range(void **state)
{
    (void)state;
    skip_if_needed();
    result_t r = fetch(NULL, url(false, E.port_http, "localhost", "/fw.bin"), 0, NULL);
    expect_fw(&r, 0);
    char etag[OTA_CFG_HTTP_VALIDATOR_MAX], date[OTA_CFG_HTTP_VALIDATOR_MAX];
    snprintf(etag, sizeof etag, "%s", ota_http_etag(&H));
    snprintf(date, sizeof date, "%s", ota_http_last_modified(&H));
    /* the rest, by ETag and by date */
    const char *validators[] = {etag, date, NULL};
    for (int i = 0; i < 3; i++) {
        r = fetch(NULL, url(false, E.port_http, "localhost", "/fw.bin"), 600001, validators[i]);
        expect_fw(&r, 600001);
        assert_int_equal(ota_http_status(&H), 206);
        assert_true(ota_http_range_start(&H) == 600001);
        assert_true(ota_http_total_size(&H) == FW_SIZE);
        assert_true(ota_http_content_length(&H) == FW_SIZE - 600001);
    }
    char line[100];
    snprintf(line, sizeof line, "/fw.bin 206 ");
    assert_true(log_has(line));
    /* the file "changed": a validator that does not match brings all of it */
    r = fetch(NULL, url(false, E.port_http, "localhost", "/fw.bin"), 600001, "\"0-0\"");
    expect_fw(&r, 0);
    assert_int_equal(ota_http_status(&H), 200);
    assert_true(ota_http_range_start(&H) == 0);
    /* beyond the end */
    r = fetch(NULL, url(false, E.port_http, "localhost", "/fw.bin"), FW_SIZE + 5, NULL);
    assert_int_equal(r.rc, OTA_ERR_HTTP_STATUS);
    assert_int_equal(ota_http_status(&H), 416);
    free(r.body);
}

static void test_redirects_and_errors(void **state)
{
    (void)state;
    skip_if_needed();
    result_t r = fetch(NULL, url(false, E.port_http, "localhost", "/old"), 0, NULL);
    expect_fw(&r, 0);
    assert_int_equal(ota_http_redirects(&H), 1);
    r = fetch(NULL, url(false, E.port_http, "localhost", "/loop"), 0, NULL);
    assert_int_equal(r.rc, OTA_ERR_REDIRECT);
    assert_int_equal(ota_http_redirects(&H), OTA_CFG_HTTP_MAX_REDIRECTS);
    free(r.body);
    r = fetch(NULL, url(false, E.port_http, "localhost", "/missing"), 0, NULL);
    assert_int_equal(r.rc, OTA_ERR_HTTP_STATUS);
    assert_int_equal(ota_http_status(&H), 404);
    free(r.body);
    /* http -> https is followed (and verified), https -> http is not */
    r = fetch(NULL, url(false, E.port_http, "localhost", "/up"), 0, NULL);
    expect_fw(&r, 0);
    assert_int_equal(strncmp(ota_http_url(&H), "https://localhost:", 18), 0);
    r = fetch(NULL, url(true, E.port_tls, "localhost", "/down"), 0, NULL);
    assert_int_equal(r.rc, OTA_ERR_REDIRECT);
    free(r.body);
}

static void test_connect_failures(void **state)
{
    (void)state;
    skip_if_needed();
    uint16_t closed = free_port();
    result_t r = fetch(NULL, url(false, closed, "127.0.0.1", "/fw.bin"), 0, NULL);
    assert_int_equal(r.rc, OTA_ERR_CLOSED);
    free(r.body);
    r = fetch(NULL, url(false, closed, "localhost", "/fw.bin"), 0, NULL);
    assert_int_equal(r.rc, OTA_ERR_CLOSED);
    free(r.body);
    r = fetch(NULL, "http://no-such-host.invalid/fw.bin", 0, NULL);
    assert_int_equal(r.rc, OTA_ERR_RESOLVE);
    assert_true(r.worst_call_ms < 250);
    free(r.body);
    r = fetch(NULL, "https://no-such-host.invalid/fw.bin", 0, NULL);
    assert_int_equal(r.rc, OTA_ERR_RESOLVE);
    free(r.body);
}

static void test_https(void **state)
{
    (void)state;
    skip_if_needed();
    result_t r = fetch(NULL, url(true, E.port_tls, "localhost", "/fw.bin"), 0, NULL);
    expect_fw(&r, 0);
    r = fetch(NULL, url(true, E.port_tls, "localhost", "/fw.bin"), 1000, ota_http_etag(&H));
    expect_fw(&r, 1000);
    assert_int_equal(ota_http_status(&H), 206);
    /* refused: a certificate for another name, one from an unknown CA, the right
     * certificate reached by address (its only name is localhost) */
    static const struct {
        const char *host;
        uint16_t *port;
    } bad[] = {{"localhost", &E.port_wrong}, {"localhost", &E.port_untrusted},
               {"127.0.0.1", &E.port_tls}};
    for (size_t i = 0; i < 3; i++) {
        r = fetch(NULL, url(true, *bad[i].port, bad[i].host, "/fw.bin"), 0, NULL);
        if (r.rc != OTA_ERR_TLS)
            fail_msg("case %zu: %s", i, ota_strerror(r.rc));
        assert_int_equal(r.len, 0);
        print_message("refused as it should be: %s\n", ota_posix_tls_last_error(E.posix.tls));
        assert_true(ota_posix_tls_last_error(E.posix.tls)[0] != '\0');
        free(r.body);
    }
    /* the system's bundle does not know the test CA */
    ota_posix_tls_t *sys = ota_posix_tls_new(&E.posix.ports.tcp, NULL);
    assert_non_null(sys);
    ota_tls_port_t st = ota_posix_tls_port(sys);
    r = fetch(&st, url(true, E.port_tls, "localhost", "/fw.bin"), 0, NULL);
    assert_int_equal(r.rc, OTA_ERR_TLS);
    print_message("system bundle: %s\n", ota_posix_tls_last_error(sys));
    free(r.body);
    ota_posix_tls_delete(sys);
    /* a CA file that cannot be read */
    ota_posix_tls_t *none = ota_posix_tls_new(&E.posix.ports.tcp, "/nonexistent/ca.pem");
    ota_tls_port_t nt = ota_posix_tls_port(none);
    r = fetch(&nt, url(true, E.port_tls, "localhost", "/fw.bin"), 0, NULL);
    assert_int_equal(r.rc, OTA_ERR_TLS);
    assert_non_null(strstr(ota_posix_tls_last_error(none), "/nonexistent/ca.pem"));
    free(r.body);
    ota_posix_tls_delete(none);
}

/* A name with two addresses, the first of which refuses: the second one is tried.
 * The name exists only in a private mount namespace whose /etc/hosts this test
 * writes (a child process; skipped where namespaces are not allowed). The parent has
 * made no lookup yet (see main). */
static void test_address_fallback(void **state)
{
    (void)state;
    skip_if_needed();
    char hosts[4200];
    tu_path(hosts, E.dir, "hosts");
    const char *text = "127.0.0.1 localhost\n::1 dual.test\n127.0.0.1 dual.test\n"
                       "::1 only6.test\n";
    tu_write(hosts, text, strlen(text), 0644);
    fflush(NULL);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        if (unshare(CLONE_NEWNS) != 0 || mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) != 0 ||
            mount(hosts, "/etc/hosts", NULL, MS_BIND, NULL) != 0)
            _exit(77);
        result_t r = fetch(NULL, url(false, E.port_http, "dual.test", "/fw.bin"), 0, NULL);
        bool ok = r.rc == 0 && r.len == FW_SIZE && memcmp(r.body, E.fw, FW_SIZE) == 0;
        if (!ok)
            fprintf(stderr, "dual.test: %s, %zu bytes\n", ota_strerror(r.rc), r.len);
        free(r.body);
        /* the first address alone is refused indeed */
        r = fetch(NULL, url(false, E.port_http, "only6.test", "/fw.bin"), 0, NULL);
        if (r.rc != OTA_ERR_CLOSED) {
            fprintf(stderr, "only6.test: %s\n", ota_strerror(r.rc));
            ok = false;
        }
        free(r.body);
        _exit(ok ? 0 : 1);
    }
    int st;
    assert_int_equal(waitpid(pid, &st, 0), pid);
    assert_true(WIFEXITED(st));
    if (WEXITSTATUS(st) == 77) {
        print_message("SKIPPED: no private mount namespace here (unshare: not permitted)\n");
        skip();
    }
    assert_int_equal(WEXITSTATUS(st), 0);
}

/* A raw server of this test's own: answers the n-th connection with script[n], then
 * closes it, or keeps it open and silent (hang). */
static pid_t raw_server(int lfd, const char *const *script, const bool *hang, int n)
{
    fflush(NULL);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid != 0)
        return pid;
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    for (int i = 0; i < n; i++) {
        int c = accept(lfd, NULL, NULL);
        if (c < 0)
            _exit(1);
        char req[4096];
        size_t got = 0;
        while (got < sizeof req - 1) { /* the whole request first */
            ssize_t r = recv(c, req + got, sizeof req - 1 - got, 0);
            if (r <= 0)
                break;
            got += (size_t)r;
            req[got] = '\0';
            if (strstr(req, "\r\n\r\n") != NULL)
                break;
        }
        if (send(c, script[i], strlen(script[i]), MSG_NOSIGNAL) < 0)
            _exit(1);
        if (hang[i])
            sleep(5);
        close(c);
    }
    _exit(0);
}

/* Over real sockets: a body cut short by the server's close is an error, never a
 * short success, and a server that falls silent is timed out. */
static void test_truncated_and_silent(void **state)
{
    (void)state;
    skip_if_needed();
    int lfd = socket(AF_INET, SOCK_STREAM, 0);
    assert_true(lfd >= 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    assert_int_equal(bind(lfd, (struct sockaddr *)&a, sizeof a), 0);
    assert_int_equal(listen(lfd, 4), 0);
    socklen_t sl = sizeof a;
    assert_int_equal(getsockname(lfd, (struct sockaddr *)&a, &sl), 0);
    static const char *const script[] = {
        "HTTP/1.1 200 OK\r\nContent-Length: 100000\r\n\r\nonly the start",
        "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n",
        "HTTP/1.1 200 OK\r\nContent-Length: 100000\r\n\r\nand then nothing"};
    static const bool hang[] = {false, false, true};
    pid_t pid = raw_server(lfd, script, hang, 3);
    close(lfd);
    char u[100];
    snprintf(u, sizeof u, "http://127.0.0.1:%u/fw.bin", (unsigned)ntohs(a.sin_port));
    for (int i = 0; i < 2; i++) {
        result_t r = fetch(NULL, u, 0, NULL);
        assert_int_equal(r.rc, OTA_ERR_CLOSED);
        free(r.body);
    }
    /* the silent one, with a short idle timeout */
    assert_int_equal(ota_http_init(&H, &E.posix.ports.tcp, NULL), 0);
    ota_http_request_t req = {.url = u, .idle_timeout_ms = 700};
    uint32_t t0 = now_ms();
    assert_int_equal(ota_http_get(&H, &req, t0), 0);
    uint8_t buf[4096];
    int rc;
    for (;;) {
        rc = ota_http_poll(&H, now_ms());
        if (rc == 0)
            rc = ota_http_read(&H, buf, sizeof buf);
        if (rc < 0 && rc != OTA_ERR_WOULD_BLOCK)
            break;
        ota_posix_wait(&E.posix, 20);
        assert_true(now_ms() - t0 < 5000);
    }
    uint32_t took = now_ms() - t0;
    assert_int_equal(rc, OTA_ERR_TIMEOUT);
    assert_true(took >= 700 && took < 2000);
    assert_true(ota_http_body_read(&H) == strlen("and then nothing"));
    ota_http_close(&H);
    kill(pid, SIGKILL);
    int st;
    waitpid(pid, &st, 0);
}

static void test_nothing_left_open(void **state)
{
    (void)state;
    skip_if_needed();
    /* every connection of the tests above went back to the port */
    for (int i = 0; i < OTA_POSIX_MAX_CONNS; i++)
        assert_int_equal(E.posix.conns[i], -1);
    for (int i = 0; i < OTA_POSIX_MAX_OUTBOUND; i++)
        assert_int_equal(E.posix.outbound[i].state, OTA_POSIX_OUT_FREE);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        /* first: it forks, and glibc's lookup threads do not survive a fork (a lookup
         * started in the child would wait for a helper thread that is not there) */
        cmocka_unit_test(test_address_fallback),
        cmocka_unit_test(test_plain_get),          cmocka_unit_test(test_range),
        cmocka_unit_test(test_redirects_and_errors), cmocka_unit_test(test_connect_failures),
        cmocka_unit_test(test_https),              cmocka_unit_test(test_truncated_and_silent),
        cmocka_unit_test(test_nothing_left_open),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
