/*
 * cmd_sign.c - signed images (ESP-IDF Secure Boot V2 format, imgsign.h):
 * `ota keygen` (a signing key and its public half), `ota sign` (append a signature
 * sector, or add a block to one: key rotation), `ota image info` (what an image
 * carries: each block's scheme, key digest and validity) and `ota key-digest`.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "client.h"
#include "commands.h"
#include "imgsign.h"
#include "ota/app_desc.h"

const char keygen_usage[] =
    "usage: ota keygen --scheme ecdsa256|rsa3072 [-o] KEY.pem\n"
    "\n"
    "Write a new image signing key to KEY.pem (readable by you only, mode 0600) and its\n"
    "public key to KEY.pub.pem, and print the key digest (what an ESP32's eFuse holds\n"
    "for it, as 'espsecure digest_sbv2_public_key' prints). Existing files are never\n"
    "overwritten. The chip decides the scheme: ESP32 v3, S2, S3, C3 verify rsa3072\n"
    "only, C2 ecdsa256 only, C6, H2, C5, P4 either; Linux nodes take both.\n"
    "Keys made by 'openssl genpkey' or 'espsecure generate_signing_key --version 2'\n"
    "work as well.\n"
    "\n"
    "  --scheme S      ecdsa256 (ECDSA P-256) or rsa3072 (RSA-3072, RSASSA-PSS)\n"
    "  -o, --output F  the key file (or give it as the argument)\n";

const char sign_usage[] =
    "usage: ota sign --key KEY.pem [--key KEY2.pem [--key KEY3.pem]]\n"
    "                [--security-version N] [-o SIGNED] IMAGE\n"
    "\n"
    "Sign IMAGE the way 'espsecure sign_data --version 2' does: pad it with 0xFF to a\n"
    "multiple of 4096 bytes and append a 4096-byte signature sector with one block per\n"
    "key (at most 3). An IMAGE that is signed already keeps its blocks and gets the new\n"
    "ones after them (key rotation: a release signed by the old and the new key). The\n"
    "result still runs (the padding and sector come after the image) and any uploader\n"
    "carries it unchanged.\n"
    "\n"
    "  --key F         a private key (PEM: RSA-3072 or EC P-256), repeatable\n"
    "  --security-version N  set the secure_version of the image's descriptor (its\n"
    "                  esp_app_desc_t) before signing: a node refuses images below the\n"
    "                  highest secure_version it has confirmed (anti-rollback). Fails on\n"
    "                  an image without a descriptor, or one that is signed already\n"
    "  -o, --output F  the signed image (default IMAGE.signed.bin); IMAGE itself is\n"
    "                  replaced only when F names it\n";

const char image_usage[] =
    "usage: ota image info IMAGE\n"
    "\n"
    "Say what IMAGE carries: its size, whether it ends with a signature sector, and for\n"
    "each signature block the scheme, the key digest (eFuse), whether the block was\n"
    "made for these bytes and whether its signature verifies. Exit 0 when the image is\n"
    "signed and every block is valid, 8 when it is unsigned or a block is not.\n";

const char key_digest_usage[] =
    "usage: ota key-digest KEY.pem\n"
    "\n"
    "Print the SHA-256 key digest of a signing key (private or public PEM) that the\n"
    "chip's eFuse holds and that signature blocks by the key carry.\n";

static void print_hex(FILE *f, const uint8_t *p, size_t n)
{
    for (size_t i = 0; i < n; i++)
        fprintf(f, "%02x", p[i]);
}

/* "-h"/"--help" anywhere before "--": the usage on stdout. */
static bool wants_help(int argc, char **argv)
{
    for (int i = 1; i < argc && strcmp(argv[i], "--") != 0; i++)
        if (strcmp(argv[i], "-h") == 0 || strcmp(argv[i], "--help") == 0)
            return true;
    return false;
}

int cmd_keygen(int argc, char **argv)
{
    static const struct option opts[] = {
        {"scheme", required_argument, NULL, 's'},
        {"output", required_argument, NULL, 'o'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    const char *scheme = NULL, *out = NULL;
    int c;
    opterr = 0;
    optind = 1;
    while ((c = getopt_long(argc, argv, ":ho:", opts, NULL)) != -1) {
        switch (c) {
        case 's': scheme = optarg; break;
        case 'o': out = optarg; break;
        case 'h': fputs(keygen_usage, stdout); return OTA_EXIT_OK;
        case ':': return usage_error("keygen", "option '%s' needs a value", argv[optind - 1]);
        default: return usage_error("keygen", "unknown option '%s'", argv[optind - 1]);
        }
    }
    if (out == NULL && optind < argc)
        out = argv[optind++];
    if (optind < argc)
        return usage_error("keygen", "unexpected argument '%s'", argv[optind]);
    if (scheme == NULL)
        return usage_error("keygen", "needs --scheme ecdsa256 or --scheme rsa3072 (the chip "
                                     "decides: see --help)%s", NULL);
    if (strcmp(scheme, "ecdsa256") != 0 && strcmp(scheme, "rsa3072") != 0)
        return usage_error("keygen", "--scheme takes ecdsa256 or rsa3072, not '%s'", scheme);
    if (out == NULL)
        return usage_error("keygen", "missing KEY.pem (the file to write)%s", NULL);
    char err[512], pub[4200];
    if (strcmp(scheme, "rsa3072") == 0)
        fprintf(stderr, "generating an RSA-3072 key (a few seconds) ...\n");
    if (imgsign_keygen(scheme, out, err, sizeof err) != 0) {
        fprintf(stderr, "error: %s\n", err);
        return OTA_EXIT_INPUT;
    }
    uint8_t digest[IMGSIGN_DIGEST_LEN];
    imgsign_pub_path(out, pub, sizeof pub);
    printf("wrote %s (private: keep it secret, mode 0600) and %s (public)\n", out, pub);
    if (imgsign_key_digest(out, digest, NULL, err, sizeof err) == 0) {
        printf("key digest: ");
        print_hex(stdout, digest, sizeof digest);
        printf("\n");
    }
    return OTA_EXIT_OK;
}

/* Write len bytes to path atomically (a temporary file beside it, then rename). */
static int write_file_atomic(const char *path, const uint8_t *data, size_t len)
{
    char tmp[4300];
    snprintf(tmp, sizeof tmp, "%s.%ld.tmp", path, (long)getpid());
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0)
        return -1;
    size_t done = 0;
    while (done < len) {
        ssize_t w = write(fd, data + done, len - done);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0) {
            int e = errno;
            close(fd);
            unlink(tmp);
            errno = e;
            return -1;
        }
        done += (size_t)w;
    }
    if (fsync(fd) != 0 || close(fd) != 0 || rename(tmp, path) != 0) {
        int e = errno;
        unlink(tmp);
        errno = e;
        return -1;
    }
    return 0;
}

int cmd_sign(int argc, char **argv)
{
    static const struct option opts[] = {
        {"key", required_argument, NULL, 'k'},
        {"output", required_argument, NULL, 'o'},
        {"security-version", required_argument, NULL, 'S'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    unsigned long secure_version = 0;
    bool set_version = false;
    const char *keys[IMGSIGN_MAX_BLOCKS + 1];
    size_t n_keys = 0;
    const char *out = NULL;
    int c;
    opterr = 0;
    optind = 1;
    while ((c = getopt_long(argc, argv, ":ho:", opts, NULL)) != -1) {
        switch (c) {
        case 'k':
            if (n_keys == IMGSIGN_MAX_BLOCKS)
                return usage_error("sign", "at most 3 --key (a signature sector holds 3 "
                                           "blocks)%s", NULL);
            keys[n_keys++] = optarg;
            break;
        case 'o': out = optarg; break;
        case 'S':
            if (!parse_uint(optarg, 0, 0xFFFFFFFFul, &secure_version))
                return usage_error("sign", "--security-version takes a number from 0 to "
                                           "4294967295, not '%s'", optarg);
            set_version = true;
            break;
        case 'h': fputs(sign_usage, stdout); return OTA_EXIT_OK;
        case ':': return usage_error("sign", "option '%s' needs a value", argv[optind - 1]);
        default: return usage_error("sign", "unknown option '%s'", argv[optind - 1]);
        }
    }
    if (optind >= argc)
        return usage_error("sign", "missing IMAGE (the firmware to sign)%s", NULL);
    if (optind + 1 < argc)
        return usage_error("sign", "unexpected argument '%s'", argv[optind + 1]);
    if (n_keys == 0)
        return usage_error("sign", "needs --key KEY.pem (the private signing key)%s", NULL);
    const char *in = argv[optind];
    char def[4200];
    if (out == NULL) {
        snprintf(def, sizeof def, "%s.signed.bin", in);
        out = def;
    }
    size_t len = 0;
    uint8_t *image = load_firmware(in, &len);
    if (image == NULL)
        return OTA_EXIT_INPUT;
    char err[512];
    if (set_version &&
        imgsign_set_descriptor(image, len, NULL, true, (uint32_t)secure_version, err,
                               sizeof err) != 0) {
        fprintf(stderr, "error: %s: cannot set its security version: %s\n", in, err);
        if (strstr(err, "no image descriptor") != NULL)
            fprintf(stderr, "hint: firmware built by ESP-IDF or ESPHome has one; a Linux node "
                            "gets it from ota/app_desc.h (see demo-node)\n");
        free(image);
        return OTA_EXIT_INPUT;
    }
    uint8_t *signed_img = NULL;
    size_t signed_len = 0;
    int rc = imgsign_sign(image, len, keys, n_keys, &signed_img, &signed_len, err, sizeof err);
    free(image);
    if (rc != 0) {
        fprintf(stderr, "error: cannot sign %s: %s\n", in, err);
        return OTA_EXIT_INPUT;
    }
    if (write_file_atomic(out, signed_img, signed_len) != 0) {
        fprintf(stderr, "error: cannot write %s: %s\n", out, strerror(errno));
        free(signed_img);
        return OTA_EXIT_INPUT;
    }
    imgsign_info_t info;
    int n = imgsign_inspect(signed_img, signed_len, &info, err, sizeof err) == 1
                ? (int)info.n_blocks
                : 0;
    free(signed_img);
    printf("wrote %s: %zu bytes, %d signature block%s\n", out, signed_len, n,
           n == 1 ? "" : "s");
    return OTA_EXIT_OK;
}

int cmd_image(int argc, char **argv)
{
    if (wants_help(argc, argv)) {
        fputs(image_usage, stdout);
        return OTA_EXIT_OK;
    }
    if (argc < 2 || strcmp(argv[1], "info") != 0)
        return usage_error("image", argc < 2 ? "needs a subcommand: info IMAGE%s"
                                             : "unknown subcommand '%s' (there is: info)",
                           argc < 2 ? NULL : argv[1]);
    if (argc != 3)
        return usage_error("image", "info takes exactly one IMAGE%s", NULL);
    size_t len = 0;
    uint8_t *image = load_firmware(argv[2], &len);
    if (image == NULL)
        return OTA_EXIT_INPUT;
    imgsign_info_t info;
    char err[512] = "";
    int rc = imgsign_inspect(image, len, &info, err, sizeof err);
    printf("image:      %s, %zu bytes\n", argv[2], len);
    /* the descriptor that counts is in the signed bytes (the node looks only there) */
    long at = ota_app_desc_find(image, rc == 1 ? info.signed_len : len);
    if (at >= 0) {
        ota_app_desc_t d;
        memcpy(&d, image + at, sizeof d);
        d.version[sizeof d.version - 1] = d.project_name[sizeof d.project_name - 1] = '\0';
        d.date[sizeof d.date - 1] = d.time[sizeof d.time - 1] = '\0';
        printf("descriptor: at offset %ld: project %s, version %s, secure_version %u, built "
               "%s %s\n", at, d.project_name, d.version, (unsigned)d.secure_version, d.date,
               d.time);
    } else {
        printf("descriptor: none (no esp_app_desc_t: no security version)\n");
    }
    free(image);
    if (rc < 0) {
        fprintf(stderr, "error: %s\n", err);
        return OTA_EXIT_INTERNAL;
    }
    if (rc == 0) {
        printf("signature:  none (%s)\n", err);
        return OTA_EXIT_UNSIGNED;
    }
    printf("signed:     the first %zu bytes (SHA-256 ", info.signed_len);
    print_hex(stdout, info.image_sha256, sizeof info.image_sha256);
    printf(")\n");
    for (size_t i = 0; i < info.n_blocks; i++) {
        const imgsign_block_info_t *b = &info.blocks[i];
        printf("block %zu:    %s, key digest ", i, imgsign_scheme_name(b->scheme));
        print_hex(stdout, b->key_digest, sizeof b->key_digest);
        bool ok = b->digest_matches && b->key_valid && b->signature_valid;
        printf("\n            %s%s%s\n", ok ? "valid" : "NOT VALID", ok ? "" : ": ",
               ok ? "" : b->problem);
    }
    printf("verdict:    %s\n", info.all_valid ? "every block is valid"
                                              : "not every block is valid");
    return info.all_valid ? OTA_EXIT_OK : OTA_EXIT_UNSIGNED;
}

int cmd_key_digest(int argc, char **argv)
{
    if (wants_help(argc, argv)) {
        fputs(key_digest_usage, stdout);
        return OTA_EXIT_OK;
    }
    if (argc != 2)
        return usage_error("key-digest", "expects exactly one KEY.pem%s", NULL);
    uint8_t digest[IMGSIGN_DIGEST_LEN];
    imgsign_scheme_t scheme;
    char err[512];
    if (imgsign_key_digest(argv[1], digest, &scheme, err, sizeof err) != 0) {
        fprintf(stderr, "error: %s\n", err);
        return OTA_EXIT_INPUT;
    }
    print_hex(stdout, digest, sizeof digest);
    printf("  %s %s\n", imgsign_scheme_name(scheme), argv[1]);
    return OTA_EXIT_OK;
}
