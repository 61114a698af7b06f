/*
 * port_test_util.h - helpers shared by the C tests of the POSIX port: private temp
 * directories (parallel-safe), whole-file read/write/compare, and test "images"
 * (a copy of the running test binary is an ELF executable for this machine).
 */
#ifndef OTA_TESTS_PORT_TEST_UTIL_H
#define OTA_TESTS_PORT_TEST_UTIL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/** Create a fresh directory under $TMPDIR (or /tmp) into out (4096 bytes). Fails the
 *  test when it cannot. */
void tu_mkdtemp(char *out);

/** Remove dir and everything in it (one level of subdirectories is enough here). */
void tu_rm_rf(const char *dir);

/** path = dir/name into out (4096 bytes). */
void tu_path(char *out, const char *dir, const char *name);

/** Read a whole file into a malloc'd buffer; NULL when it does not exist. */
uint8_t *tu_read(const char *path, size_t *len);

/** Write a whole file (truncating), with mode. Fails the test on error. */
void tu_write(const char *path, const void *data, size_t len, unsigned mode);

/** true if the file exists. */
bool tu_exists(const char *path);

/** The bytes of the running executable (an ELF image for this machine). */
uint8_t *tu_self_image(size_t *len);

/** Snapshot of a file for "byte-identical afterwards" checks. */
typedef struct tu_snap {
    uint8_t *data; /* NULL: the file did not exist */
    size_t len;
} tu_snap_t;

void tu_snap(tu_snap_t *s, const char *path);
/** Fail the test unless path still holds exactly the snapshot; frees it. */
void tu_assert_same(tu_snap_t *s, const char *path);

#endif /* OTA_TESTS_PORT_TEST_UTIL_H */
