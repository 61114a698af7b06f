/*
 * test_known_nodes.c - unit tests of the ota tool's known_nodes file
 * (src/tools/ota/known_nodes.c): the line format, lookup, the rewrite that keeps
 * comments and lines it does not understand, corrupt lines, the file's and its
 * directories' modes, the path from the environment, and the upload policy glue
 * (prepare/commit) on an options struct. Files live in a temporary directory only.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <dirent.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "known_nodes.h"
#include "ota/protocol.h"

static const uint8_t SALT_A[16] = {0x00, 0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77,
                                   0x88, 0x99, 0xaa, 0xbb, 0xcc, 0xdd, 0xee, 0xff};
static const uint8_t SALT_B[16] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16};
#define SALT_A_HEX "00112233445566778899aabbccddeeff"

/* ------------------------------------------------------------ temp dirs */

typedef struct tmp {
    char dir[256];
    char path[512];
} tmp_t;

static int setup_tmp(void **state)
{
    tmp_t *t = calloc(1, sizeof *t);
    assert_non_null(t);
    snprintf(t->dir, sizeof t->dir, "/tmp/ota-known-test-XXXXXX");
    assert_non_null(mkdtemp(t->dir));
    snprintf(t->path, sizeof t->path, "%s/state/ota/known_nodes", t->dir);
    *state = t;
    return 0;
}

static void rm_rf(const char *path)
{
    struct stat st;
    if (lstat(path, &st) != 0)
        return;
    if (S_ISDIR(st.st_mode)) {
        DIR *d = opendir(path);
        struct dirent *e;
        while (d != NULL && (e = readdir(d)) != NULL) {
            if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
                continue;
            char sub[1024];
            snprintf(sub, sizeof sub, "%s/%s", path, e->d_name);
            rm_rf(sub);
        }
        if (d != NULL)
            closedir(d);
        rmdir(path);
    } else {
        unlink(path);
    }
}

static int teardown_tmp(void **state)
{
    tmp_t *t = *state;
    rm_rf(t->dir);
    free(t);
    return 0;
}

static char *read_all(const char *path)
{
    FILE *f = fopen(path, "r");
    assert_non_null(f);
    static char buf[8192];
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    buf[n] = '\0';
    fclose(f);
    return buf;
}

static void write_text(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
}

/* ------------------------------------------------------------ parsing */

static void test_parse_lines(void **state)
{
    (void)state;
    ota_known_entry_t e;
    memset(&e, 0, sizeof e);
    assert_int_equal(ota_known_parse_line("", &e), 0);
    assert_int_equal(ota_known_parse_line("   \t\n", &e), 0);
    assert_int_equal(ota_known_parse_line("# a comment", &e), 0);
    assert_int_equal(ota_known_parse_line("  # indented comment\n", &e), 0);

    assert_int_equal(ota_known_parse_line("node.local:3232 salted\n", &e), 1);
    assert_string_equal(e.node, "node.local:3232");
    assert_false(e.has_salt);

    assert_int_equal(ota_known_parse_line("10.0.0.5:8266 salted " SALT_A_HEX "\r\n", &e), 1);
    assert_string_equal(e.node, "10.0.0.5:8266");
    assert_true(e.has_salt);
    assert_memory_equal(e.salt, SALT_A, 16);

    assert_int_equal(ota_known_parse_line("[fe80::1]:3232 salted", &e), 1);
    assert_string_equal(e.node, "[fe80::1]:3232");

    /* the iteration count (newer files), and a trailing comment */
    assert_int_equal(ota_known_parse_line("n.local:1 salted " SALT_A_HEX " 20000\n", &e), 1);
    assert_true(e.has_salt);
    assert_int_equal(e.iterations, 20000);
    assert_int_equal(ota_known_parse_line("n.local:1 salted " SALT_A_HEX "\n", &e), 1);
    assert_int_equal(e.iterations, 0); /* an old line: not recorded */
    assert_int_equal(ota_known_parse_line("n.local:1 salted " SALT_A_HEX " 4096 # mine", &e), 1);
    assert_int_equal(e.iterations, 4096);
    assert_int_equal(ota_known_parse_line("n.local:1 salted " SALT_A_HEX " # mine\n", &e), 1);
    assert_true(e.has_salt);
    assert_int_equal(ota_known_parse_line("n.local:1 salted # the living room", &e), 1);
    assert_false(e.has_salt);
    assert_string_equal(e.node, "n.local:1");
}

static void test_parse_corrupt_lines(void **state)
{
    (void)state;
    static const char *bad[] = {
        "node.local salted",                  /* no port */
        "node.local:0 salted",                /* port 0 */
        "node.local:65536 salted",            /* port too big */
        "node.local:12ab salted",             /* not a number */
        ":3232 salted",                       /* no host */
        "fe80::1:3232 salted",                /* bare IPv6: ambiguous */
        "node.local:3232",                    /* no method */
        "node.local:3232 md5",                /* not a method we record */
        "node.local:3232 salted 0011",        /* short salt */
        "node.local:3232 salted " SALT_A_HEX "zz", /* long salt */
        "node.local:3232 salted zz112233445566778899aabbccddeeff", /* not hex */
        "node.local:3232 salted " SALT_A_HEX " extra", /* trailing field */
        "node.local:3232 salted " SALT_A_HEX " 4095", /* below the minimum iterations */
        "node.local:3232 salted " SALT_A_HEX " 100000000", /* above the maximum */
        "node.local:3232 salted " SALT_A_HEX " 12x",   /* not a number */
        "node.local:3232 salted " SALT_A_HEX " 4096 5", /* one field too many */
        "node.local:3232 salted 4096",                 /* iterations without a salt */
        "\x01\x02garbage",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        ota_known_entry_t e;
        memset(&e, 0, sizeof e);
        if (ota_known_parse_line(bad[i], &e) != -1)
            fail_msg("line accepted: '%s'", bad[i]);
    }
}

/* ------------------------------------------------------------ lookup */

static void test_lookup_text(void **state)
{
    (void)state;
    const char *text = "# header\n"
                       "\n"
                       "a.local:3232 salted\n"
                       "this line is broken\n"
                       "B.Local:3232 salted " SALT_A_HEX "\n"
                       "b.local:3232 salted\n"; /* a duplicate: the first one counts */
    ota_known_entry_t e;
    unsigned corrupt = 99;
    memset(&e, 0, sizeof e);
    assert_int_equal(ota_known_lookup_text(text, "a.local:3232", &e, &corrupt), 1);
    assert_int_equal(e.line, 3);
    assert_false(e.has_salt);
    assert_int_equal(corrupt, 0); /* stopped before the broken line */

    assert_int_equal(ota_known_lookup_text(text, "b.local:3232", &e, &corrupt), 1);
    assert_int_equal(e.line, 5); /* host names compare case-insensitively */
    assert_true(e.has_salt);
    assert_memory_equal(e.salt, SALT_A, 16);
    assert_int_equal(corrupt, 4);

    assert_int_equal(ota_known_lookup_text(text, "a.local:3233", &e, &corrupt), 0);
    assert_int_equal(ota_known_lookup_text(text, "c.local:3232", &e, NULL), 0);
    assert_int_equal(ota_known_lookup_text("", "a.local:3232", &e, &corrupt), 0);
    assert_int_equal(corrupt, 0);
    /* a broken line that names the node is not a record of it */
    assert_int_equal(ota_known_lookup_text("a.local:3232 sha256\n", "a.local:3232", &e,
                                           &corrupt), 0);
    assert_int_equal(corrupt, 1);
    /* no final newline */
    assert_int_equal(ota_known_lookup_text("x\na.local:3232 salted", "a.local:3232", &e, NULL),
                     1);
    assert_int_equal(e.line, 2);
}

static void test_key(void **state)
{
    (void)state;
    char k[OTA_KNOWN_NODE_MAX];
    assert_int_equal(ota_known_key("node.local", 3232, k, sizeof k), 0);
    assert_string_equal(k, "node.local:3232");
    assert_int_equal(ota_known_key("::1", 8266, k, sizeof k), 0);
    assert_string_equal(k, "[::1]:8266");
    char small[8];
    assert_int_equal(ota_known_key("node.local", 3232, small, sizeof small), -1);
}

/* ------------------------------------------------------------ update */

static void test_update_text(void **state)
{
    (void)state;
    /* a new file gets a header comment and the record */
    char *t = ota_known_update_text(NULL, "a.local:3232", SALT_A, 0);
    assert_non_null(t);
    assert_true(t[0] == '#');
    assert_non_null(strstr(t, "\na.local:3232 salted " SALT_A_HEX "\n"));
    ota_known_entry_t e;
    memset(&e, 0, sizeof e);
    assert_int_equal(ota_known_lookup_text(t, "a.local:3232", &e, NULL), 1);
    assert_memory_equal(e.salt, SALT_A, 16);
    free(t);

    /* replaced in place; comments, broken lines and others kept; duplicates dropped */
    const char *old = "# mine\n"
                      "x.local:1 salted\n"
                      "garbage here\n"
                      "a.local:3232 salted " SALT_A_HEX "\n"
                      "y.local:2 salted\n"
                      "A.LOCAL:3232 salted\n";
    t = ota_known_update_text(old, "a.local:3232", SALT_B, 0);
    assert_non_null(t);
    assert_string_equal(t, "# mine\n"
                           "x.local:1 salted\n"
                           "garbage here\n"
                           "a.local:3232 salted 0102030405060708090a0b0c0d0e0f10\n"
                           "y.local:2 salted\n");
    free(t);

    /* the iterations go after the salt */
    t = ota_known_update_text(NULL, "a.local:3232", SALT_A, 50000);
    assert_non_null(t);
    assert_non_null(strstr(t, "\na.local:3232 salted " SALT_A_HEX " 50000\n"));
    assert_int_equal(ota_known_lookup_text(t, "a.local:3232", &e, NULL), 1);
    assert_int_equal(e.iterations, 50000);
    free(t);

    /* appended; a last line without newline keeps its text */
    t = ota_known_update_text("x.local:1 salted", "b.local:5", NULL, 0);
    assert_non_null(t);
    assert_string_equal(t, "x.local:1 salted\nb.local:5 salted\n");
    free(t);
}

static void test_record_file_modes_and_atomic_rewrite(void **state)
{
    tmp_t *t = *state;
    char err[256] = "";
    ota_known_entry_t e;
    memset(&e, 0, sizeof e);
    /* a missing file is "not known", not an error */
    assert_int_equal(ota_known_lookup(t->path, "a.local:3232", &e, NULL, err, sizeof err), 0);

    assert_int_equal(ota_known_record(t->path, "a.local:3232", SALT_A, 0, err, sizeof err), 0);
    struct stat st;
    assert_int_equal(stat(t->path, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0600);
    char dir[600];
    snprintf(dir, sizeof dir, "%s/state/ota", t->dir);
    assert_int_equal(stat(dir, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0700);
    snprintf(dir, sizeof dir, "%s/state", t->dir);
    assert_int_equal(stat(dir, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0700);

    unsigned corrupt = 0;
    assert_int_equal(ota_known_lookup(t->path, "a.local:3232", &e, &corrupt, err, sizeof err),
                     1);
    assert_memory_equal(e.salt, SALT_A, 16);

    /* the user's comments and a broken line survive a rewrite */
    char text[512];
    snprintf(text, sizeof text, "%.400s# my note\nnot a record\n", read_all(t->path));
    write_text(t->path, text);
    chmod(t->path, 0644);
    assert_int_equal(ota_known_record(t->path, "b.local:3232", NULL, 0, err, sizeof err), 0);
    assert_int_equal(ota_known_record(t->path, "a.local:3232", SALT_B, 0, err, sizeof err), 0);
    const char *now = read_all(t->path);
    assert_non_null(strstr(now, "# my note\nnot a record\n"));
    assert_non_null(strstr(now, "a.local:3232 salted 0102030405060708090a0b0c0d0e0f10\n"));
    assert_non_null(strstr(now, "b.local:3232 salted\n"));
    assert_int_equal(stat(t->path, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0600); /* rewritten 0600 again */
    assert_int_equal(ota_known_lookup(t->path, "b.local:3232", &e, &corrupt, err, sizeof err),
                     1);
    assert_int_equal(corrupt, 5); /* header, header, a, "# my note", then the broken one */

    /* no temporary file left behind */
    snprintf(dir, sizeof dir, "%s/state/ota", t->dir);
    DIR *d = opendir(dir);
    assert_non_null(d);
    int files = 0;
    struct dirent *de;
    while ((de = readdir(d)) != NULL)
        if (de->d_name[0] != '.' && strstr(de->d_name, ".lock") == NULL)
            files++; /* known_nodes.lock stays: it is only ever locked, never renamed */
    closedir(d);
    assert_int_equal(files, 1);

    /* a directory in the way: an error that says so, not a crash */
    char blocked[600];
    snprintf(blocked, sizeof blocked, "%s/state/ota/known_nodes/sub", t->dir);
    assert_int_equal(ota_known_record(blocked, "a.local:1", NULL, 0, err, sizeof err), -1);
    assert_true(strlen(err) > 0);
}

static void test_unreadable_file(void **state)
{
    tmp_t *t = *state;
    char err[256] = "";
    ota_known_entry_t e;
    /* a directory where the file should be */
    assert_int_equal(ota_known_lookup(t->dir, "a.local:1", &e, NULL, err, sizeof err), -1);
    assert_non_null(strstr(err, t->dir));
    /* a file with a NUL byte is not ours */
    char p[600];
    snprintf(p, sizeof p, "%s/bin", t->dir);
    FILE *f = fopen(p, "wb");
    assert_non_null(f);
    fwrite("a.local:1 salted\n\0\n", 1, 19, f);
    fclose(f);
    assert_int_equal(ota_known_lookup(p, "a.local:1", &e, NULL, err, sizeof err), -1);
    assert_non_null(strstr(err, "NUL"));
    /* so is a file of more than 4 MiB (sparse) */
    f = fopen(p, "wb");
    assert_non_null(f);
    fputs("a.local:1 salted\n", f);
    assert_int_equal(fseek(f, 5 << 20, SEEK_SET), 0);
    fputc('\n', f);
    fclose(f);
    assert_int_equal(ota_known_lookup(p, "a.local:1", &e, NULL, err, sizeof err), -1);
    assert_non_null(strstr(err, "MiB"));
    /* and one we may not read (unless we are root, who may) */
    write_text(p, "a.local:1 salted\n");
    chmod(p, 0);
    if (access(p, R_OK) != 0)
        assert_int_equal(ota_known_lookup(p, "a.local:1", &e, NULL, err, sizeof err), -1);
    chmod(p, 0600);

    /* prepare fails closed: the error is kept for the client, no record is used */
    f = fopen(p, "wb");
    assert_non_null(f);
    fwrite("a.local:1 salted\n\0\n", 1, 19, f);
    fclose(f);
    ota_client_options_t o;
    memset(&o, 0, sizeof o);
    o.known_file = p;
    FILE *out = tmpfile();
    assert_non_null(out);
    ota_known_prepare(&o, "a.local", 1, out);
    assert_non_null(strstr(o.known_error, p));
    assert_int_equal(o.known_line, 0);
    fclose(out);
    /* and a readable file clears it */
    write_text(p, "a.local:1 salted\n");
    ota_known_prepare(&o, "a.local", 1, stderr);
    assert_string_equal(o.known_error, "");
    assert_int_equal(o.known_line, 1);
}

/* Records written by several processes at once are all kept (flock of FILE.lock). */
static void test_concurrent_records(void **state)
{
    tmp_t *t = *state;
    enum { PROCS = 8, EACH = 10 };
    pid_t pids[PROCS];
    for (int p = 0; p < PROCS; p++) {
        pids[p] = fork();
        assert_true(pids[p] >= 0);
        if (pids[p] == 0) {
            char err[256], node[64];
            for (int i = 0; i < EACH; i++) {
                snprintf(node, sizeof node, "n%d-%d.local:1", p, i);
                if (ota_known_record(t->path, node, SALT_A, 4096, err, sizeof err) != 0)
                    _exit(1);
            }
            _exit(0);
        }
    }
    for (int p = 0; p < PROCS; p++) {
        int st = 0;
        assert_int_equal(waitpid(pids[p], &st, 0), pids[p]);
        assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
    }
    const char *text = read_all(t->path);
    for (int p = 0; p < PROCS; p++)
        for (int i = 0; i < EACH; i++) {
            char node[64];
            ota_known_entry_t e;
            snprintf(node, sizeof node, "n%d-%d.local:1", p, i);
            if (ota_known_lookup_text(text, node, &e, NULL) != 1)
                fail_msg("record of %s lost", node);
        }
}

static void test_path_from_environment(void **state)
{
    (void)state;
    char p[512];
    setenv("HOME", "/home/someone", 1);
    unsetenv("OTA_KNOWN_NODES");
    unsetenv("XDG_STATE_HOME");
    assert_int_equal(ota_known_path(NULL, p, sizeof p), 0);
    assert_string_equal(p, "/home/someone/.local/state/ota/known_nodes");
    setenv("XDG_STATE_HOME", "relative/ignored", 1);
    assert_int_equal(ota_known_path(NULL, p, sizeof p), 0);
    assert_string_equal(p, "/home/someone/.local/state/ota/known_nodes");
    setenv("XDG_STATE_HOME", "/xdg", 1);
    assert_int_equal(ota_known_path(NULL, p, sizeof p), 0);
    assert_string_equal(p, "/xdg/ota/known_nodes");
    setenv("OTA_KNOWN_NODES", "/env/file", 1);
    assert_int_equal(ota_known_path(NULL, p, sizeof p), 0);
    assert_string_equal(p, "/env/file");
    assert_int_equal(ota_known_path("/flag/file", p, sizeof p), 0);
    assert_string_equal(p, "/flag/file");
    unsetenv("OTA_KNOWN_NODES");
    unsetenv("XDG_STATE_HOME");
    unsetenv("HOME");
    assert_int_equal(ota_known_path(NULL, p, sizeof p), -1);
}

/* ------------------------------------------------------------ prepare / commit */

static void test_prepare_and_commit(void **state)
{
    tmp_t *t = *state;
    FILE *out = tmpfile();
    assert_non_null(out);
    ota_client_options_t o;
    memset(&o, 0, sizeof o);
    o.known_file = t->path;

    /* not known yet: nothing required */
    ota_known_prepare(&o, "node.local", 3232, out);
    assert_string_equal(o.known_node, "node.local:3232");
    assert_int_equal(o.known_line, 0);
    assert_int_equal(o.require_salted, OTA_SALTED_NOT_REQUIRED);

    /* a legacy upload is not recorded */
    ota_client_result_t res;
    memset(&res, 0, sizeof res);
    res.auth_method = OTA_RESP_REQUEST_AUTH_SHA256;
    assert_int_equal(ota_known_commit(&o, &res, true, out), 0);
    assert_int_equal(access(t->path, F_OK), -1);

    /* a salted one is */
    res.auth_method = OTA_RESP_REQUEST_AUTH_SALTED;
    memcpy(res.salt, SALT_A, 16);
    assert_int_equal(ota_known_commit(&o, &res, false, out), 0);
    ota_known_prepare(&o, "node.local", 3232, out);
    assert_int_equal(o.require_salted, OTA_SALTED_BY_KNOWN);
    assert_int_equal(o.known_line, 3); /* after the two header lines */
    assert_true(o.known_has_salt);
    assert_memory_equal(o.known_salt, SALT_A, 16);

    /* a failed upload changes nothing, a new salt that was proven is stored */
    res.failure = OTA_FAIL_IMPOSTOR;
    memcpy(res.salt, SALT_B, 16);
    assert_int_equal(ota_known_commit(&o, &res, false, out), 0);
    ota_known_prepare(&o, "node.local", 3232, out);
    assert_memory_equal(o.known_salt, SALT_A, 16);
    res.failure = OTA_FAIL_NONE;
    res.salt_changed = true;
    assert_int_equal(ota_known_commit(&o, &res, false, out), 0);
    ota_known_prepare(&o, "node.local", 3232, out);
    assert_memory_equal(o.known_salt, SALT_B, 16);
    assert_int_equal(o.known_line, 3);

    /* another port is another node */
    ota_client_options_t o2;
    memset(&o2, 0, sizeof o2);
    o2.known_file = t->path;
    ota_known_prepare(&o2, "node.local", 3233, out);
    assert_int_equal(o2.require_salted, OTA_SALTED_NOT_REQUIRED);

    /* what was said */
    rewind(out);
    char said[2048];
    size_t n = fread(said, 1, sizeof said - 1, out);
    said[n] = '\0';
    fclose(out);
    assert_non_null(strstr(said, "note: remembered node.local:3232 in "));
    assert_non_null(strstr(said, "has a new salt"));
}

static void test_prepare_warns_on_corrupt_lines(void **state)
{
    tmp_t *t = *state;
    char err[256];
    assert_int_equal(ota_known_record(t->path, "ok.local:1", NULL, 0, err, sizeof err), 0);
    char text[512];
    snprintf(text, sizeof text, "broken line\n%.400s", read_all(t->path));
    write_text(t->path, text);
    FILE *out = tmpfile();
    assert_non_null(out);
    ota_client_options_t o;
    memset(&o, 0, sizeof o);
    o.known_file = t->path;
    ota_known_prepare(&o, "other.local", 1, out);
    assert_int_equal(o.require_salted, OTA_SALTED_NOT_REQUIRED);
    rewind(out);
    char said[512];
    size_t n = fread(said, 1, sizeof said - 1, out);
    said[n] = '\0';
    fclose(out);
    assert_non_null(strstr(said, "line 1 is not"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse_lines),
        cmocka_unit_test(test_parse_corrupt_lines),
        cmocka_unit_test(test_lookup_text),
        cmocka_unit_test(test_key),
        cmocka_unit_test(test_update_text),
        cmocka_unit_test_setup_teardown(test_record_file_modes_and_atomic_rewrite, setup_tmp,
                                        teardown_tmp),
        cmocka_unit_test_setup_teardown(test_unreadable_file, setup_tmp, teardown_tmp),
        cmocka_unit_test_setup_teardown(test_concurrent_records, setup_tmp, teardown_tmp),
        cmocka_unit_test(test_path_from_environment),
        cmocka_unit_test_setup_teardown(test_prepare_and_commit, setup_tmp, teardown_tmp),
        cmocka_unit_test_setup_teardown(test_prepare_warns_on_corrupt_lines, setup_tmp,
                                        teardown_tmp),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
