/*
 * md5_speed - the physical limit of the upload benchmark: how long the node's own
 * MD5 (mbedTLS, as the POSIX port hashes every received byte) takes over a file's
 * bytes, read into memory first, in 64 KiB updates as the node feeds it. Prints the
 * seconds. Usage: md5_speed FILE
 */
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include <mbedtls/md5.h>

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: md5_speed FILE\n");
        return 2;
    }
    FILE *f = fopen(argv[1], "rb");
    if (f == NULL) {
        perror(argv[1]);
        return 1;
    }
    fseek(f, 0, SEEK_END);
    long len = ftell(f);
    fseek(f, 0, SEEK_SET);
    unsigned char *buf = malloc((size_t)len);
    if (buf == NULL || fread(buf, 1, (size_t)len, f) != (size_t)len) {
        fprintf(stderr, "md5_speed: cannot read %s\n", argv[1]);
        return 1;
    }
    fclose(f);
    unsigned char d[16];
    mbedtls_md5_context c;
    double t0 = now_s();
    mbedtls_md5_init(&c);
    mbedtls_md5_starts_ret(&c);
    for (long off = 0; off < len; off += 65536)
        mbedtls_md5_update_ret(&c, buf + off, (size_t)(len - off < 65536 ? len - off : 65536));
    mbedtls_md5_finish_ret(&c, d);
    double t = now_s() - t0;
    mbedtls_md5_free(&c);
    printf("%.6f\n", t);
    free(buf);
    fprintf(stderr, "md5 %02x...\n", d[0]); /* keep the digest alive */
    return 0;
}
