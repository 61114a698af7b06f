/*
 * imgsign_driver.c - a small command line over src/tools/ota/imgsign.c for
 * tests/integration/test_imgsign_openssl.py (the ota commands themselves are wired
 * in main.c later). Output is line-oriented for the script:
 *
 *   imgsign_driver keygen SCHEME KEY.pem
 *   imgsign_driver sign OUT IMAGE KEY.pem [KEY.pem ...]
 *   imgsign_driver inspect IMAGE        exit 0 all blocks valid, 1 not, 2 unsigned
 *       signed_len N
 *       image_sha256 HEX
 *       block I scheme S version V key_digest HEX digest_matches 0|1 key_valid 0|1 signature_valid 0|1
 *   imgsign_driver digest KEY.pem       prints "SCHEME HEX"
 *
 * Errors: one line on stderr, exit 1 (2 for usage).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "imgsign.h"

static int read_file(const char *path, uint8_t **buf, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (f == NULL)
        return -1;
    size_t cap = 1 << 16, n = 0;
    uint8_t *b = malloc(cap);
    for (;;) {
        if (b == NULL) {
            fclose(f);
            return -1;
        }
        size_t r = fread(b + n, 1, cap - n, f);
        n += r;
        if (n < cap)
            break;
        cap *= 2;
        uint8_t *nb = realloc(b, cap);
        if (nb == NULL)
            free(b);
        b = nb;
    }
    int bad = ferror(f);
    fclose(f);
    if (bad) {
        free(b);
        return -1;
    }
    *buf = b;
    *len = n;
    return 0;
}

static void hex(const uint8_t *p, size_t n)
{
    for (size_t i = 0; i < n; i++)
        printf("%02x", p[i]);
}

int main(int argc, char **argv)
{
    char err[512] = "";
    if (argc == 4 && strcmp(argv[1], "keygen") == 0) {
        if (imgsign_keygen(argv[2], argv[3], err, sizeof err) != 0) {
            fprintf(stderr, "keygen: %s\n", err);
            return 1;
        }
        return 0;
    }
    if (argc == 3 && strcmp(argv[1], "digest") == 0) {
        uint8_t d[IMGSIGN_DIGEST_LEN];
        imgsign_scheme_t s;
        if (imgsign_key_digest(argv[2], d, &s, err, sizeof err) != 0) {
            fprintf(stderr, "digest: %s\n", err);
            return 1;
        }
        printf("%s ", imgsign_scheme_name(s));
        hex(d, sizeof d);
        printf("\n");
        return 0;
    }
    if (argc >= 5 && strcmp(argv[1], "sign") == 0) {
        uint8_t *img = NULL, *out = NULL;
        size_t len = 0, out_len = 0;
        if (read_file(argv[3], &img, &len) != 0) {
            fprintf(stderr, "sign: cannot read %s\n", argv[3]);
            return 1;
        }
        int rc = imgsign_sign(img, len, (const char *const *)&argv[4], (size_t)(argc - 4), &out,
                              &out_len, err, sizeof err);
        free(img);
        if (rc != 0) {
            fprintf(stderr, "sign: %s\n", err);
            return 1;
        }
        FILE *f = fopen(argv[2], "wb");
        if (f == NULL || fwrite(out, 1, out_len, f) != out_len || fclose(f) != 0) {
            fprintf(stderr, "sign: cannot write %s\n", argv[2]);
            free(out);
            return 1;
        }
        free(out);
        return 0;
    }
    if (argc == 3 && strcmp(argv[1], "inspect") == 0) {
        uint8_t *img = NULL;
        size_t len = 0;
        if (read_file(argv[2], &img, &len) != 0) {
            fprintf(stderr, "inspect: cannot read %s\n", argv[2]);
            return 1;
        }
        imgsign_info_t info;
        int rc = imgsign_inspect(img, len, &info, err, sizeof err);
        free(img);
        if (rc < 0) {
            fprintf(stderr, "inspect: %s\n", err);
            return 1;
        }
        if (rc == 0) {
            printf("unsigned %s\n", err);
            return 2;
        }
        printf("signed_len %zu\nimage_sha256 ", info.signed_len);
        hex(info.image_sha256, sizeof info.image_sha256);
        printf("\n");
        for (size_t i = 0; i < info.n_blocks; i++) {
            const imgsign_block_info_t *b = &info.blocks[i];
            printf("block %zu scheme %s version %u key_digest ", i, imgsign_scheme_name(b->scheme),
                   b->version);
            hex(b->key_digest, sizeof b->key_digest);
            printf(" digest_matches %d key_valid %d signature_valid %d%s%s\n", b->digest_matches,
                   b->key_valid, b->signature_valid, b->problem[0] ? " problem " : "", b->problem);
        }
        return info.all_valid ? 0 : 1;
    }
    fprintf(stderr, "usage: imgsign_driver keygen SCHEME KEY | digest KEY | "
                    "sign OUT IMAGE KEY... | inspect IMAGE\n");
    return 2;
}
