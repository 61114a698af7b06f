/*
 * cmd_publish.c - pull updates, the server side: `ota publish` writes a directory
 * that any static web server (nginx, S3, a CDN) serves as the update server: the
 * image, named after its version, and manifest.json (ESP Web Tools format, what
 * ESPHome's `update: platform: http_request` reads, with our additions; see
 * ota/manifest.h and docs/protocol.md#manifest), plus manifest.json.sig when it is
 * signed. `ota manifest check` reads such a directory back through the node's own
 * parser and signature check.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sys/stat.h>
#include <unistd.h>

#include <mbedtls/md5.h>
#include <mbedtls/sha256.h>

#include "cli.h"
#include "client.h"
#include "commands.h"
#include "imgsign.h"
#include "ota/app_desc.h"
#include "ota/manifest.h"
#include "ota_posix.h"

#define MANIFEST_FILE "manifest.json"
#define SIG_FILE "manifest.json.sig"
#define MANIFEST_MAX (1u << 20) /* what `manifest check` reads; ours are < 2 KiB */

const char publish_usage[] =
    "usage: ota publish --out DIR --version V [--chip-family F] [--rollout PCT]\n"
    "                   [--key KEY.pem] [--security-version N] [--name NAME]\n"
    "                   [--summary S] [--release-url U] IMAGE\n"
    "\n"
    "Publish IMAGE for nodes that pull their updates: write DIR/firmware-V.bin and\n"
    "DIR/manifest.json (the ESP Web Tools manifest ESPHome's 'update: platform:\n"
    "http_request' reads: name, version, builds[0].chipFamily and .ota with path, md5,\n"
    "and our sha256, secure_version, size, rollout). Whatever serves DIR as static\n"
    "files (nginx, S3, a CDN) is the update server; nodes read DIR's manifest.json.\n"
    "\n"
    "With --key, IMAGE is signed first as 'ota sign' does (the published size and\n"
    "hashes are those of the signed file) and DIR/manifest.json.sig is written: a\n"
    "signature sector over the exact bytes of manifest.json by the same key, so that\n"
    "a mirror cannot change what the manifest says.\n"
    "\n"
    "An unsigned Linux node image with a descriptor (esp_app_desc_t) gets V as its\n"
    "version there, so the node that runs it knows it is this release. ESP-IDF and\n"
    "ESP8266 images are published byte for byte: their checksum and hash cover the\n"
    "descriptor, and ESPHome compiles its version in (esphome: project: version:).\n"
    "secure_version is the descriptor's.\n"
    "\n"
    "A version is published once: DIR/firmware-V.bin is never overwritten with other\n"
    "bytes (a CDN may cache it forever; publish a new version instead). Running again\n"
    "with the same IMAGE and version, e.g. with a new --rollout, rewrites only the\n"
    "manifest and its signature. Files are replaced atomically, the image before the\n"
    "manifest that names it, the manifest before its signature.\n"
    "\n"
    "  --out DIR          the directory to publish into (created if missing)\n"
    "  --version V        the release's version (letters, digits, '.', '-', '_', '+');\n"
    "                     a node takes the update when it differs from its own\n"
    "  --chip-family F    the build's chipFamily (default " OTA_MANIFEST_FAMILY_POSIX ",\n"
    "                     what a Linux node of this machine reports; ESPHome nodes:\n"
    "                     ESP32, ESP32-S3, ESP32-C3, ESP8266, ...)\n"
    "  --rollout PCT      the percentage of nodes that take it, 0-100 (default: the\n"
    "                     manifest's when the version is already published, else 100)\n"
    "  --key KEY.pem      sign the image and the manifest (repeatable, up to 3)\n"
    "  --security-version N  set the descriptor's secure_version first (anti-rollback:\n"
    "                     nodes that confirmed a higher one refuse this release)\n"
    "  --name NAME        the project's name (default: the image descriptor's)\n"
    "  --summary S        one line on the release\n"
    "  --release-url U    where the release notes are\n"
    "\n"
    "Exit codes: 0 published, 2 usage, 6 IMAGE or a key unreadable, a different\n"
    "firmware-V.bin already published, or DIR not writable.\n";

const char manifest_usage[] =
    "usage: ota manifest check [--chip-family F] [--trust KEY.pem]... [--node NAME]\n"
    "                          DIR|MANIFEST.json\n"
    "\n"
    "Read a published manifest the way a node does: parse it for chip family F\n"
    "(default " OTA_MANIFEST_FAMILY_POSIX "), print what a node would use, and compare\n"
    "the image it names (when that is a file next to the manifest) with its size,\n"
    "MD5 and SHA-256. With --trust (a public or private key, repeatable), also check\n"
    "manifest.json.sig and the image's signature against those keys. --node NAME\n"
    "prints NAME's rollout bucket for this release and whether it is in the rollout.\n"
    "\n"
    "Exit codes: 0 valid, 2 usage, 6 unreadable, not a manifest, or the image does not\n"
    "match it, 8 a signature is missing or not valid for the trusted keys.\n";

static void hex(char *out, const uint8_t *p, size_t n)
{
    static const char d[] = "0123456789abcdef";
    for (size_t i = 0; i < n; i++) {
        out[2 * i] = d[p[i] >> 4];
        out[2 * i + 1] = d[p[i] & 15];
    }
    out[2 * n] = '\0';
}

/* ---- output buffer with JSON strings ---- */

typedef struct buf {
    char *p;
    size_t len, cap;
    bool oom;
} buf_t;

static void put(buf_t *b, const char *s, size_t n)
{
    if (b->oom)
        return;
    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 1024;
        while (b->len + n + 1 > cap)
            cap *= 2;
        char *q = realloc(b->p, cap);
        if (q == NULL) {
            b->oom = true;
            return;
        }
        b->p = q;
        b->cap = cap;
    }
    memcpy(b->p + b->len, s, n);
    b->len += n;
    b->p[b->len] = '\0';
}

static void puts_(buf_t *b, const char *s)
{
    put(b, s, strlen(s));
}

/* s as a JSON string: quotes, backslashes and control bytes escaped, other bytes as
 * they are (UTF-8; the self-check with the node's parser catches invalid input). */
static void put_json(buf_t *b, const char *s)
{
    put(b, "\"", 1);
    for (; *s != '\0'; s++) {
        unsigned char ch = (unsigned char)*s;
        char esc[8];
        if (ch == '"' || ch == '\\') {
            esc[0] = '\\';
            esc[1] = (char)ch;
            put(b, esc, 2);
        } else if (ch < 0x20) {
            snprintf(esc, sizeof esc, "\\u%04x", ch);
            put(b, esc, 6);
        } else {
            put(b, (const char *)&ch, 1);
        }
    }
    put(b, "\"", 1);
}

/* ---- files ---- */

/* Write len bytes to dir/name atomically: a temporary file in dir, fsync, rename. */
static int write_atomic(const char *dir, const char *name, const void *data, size_t len,
                        mode_t mode)
{
    char path[4200], tmp[4300];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    snprintf(tmp, sizeof tmp, "%s/.%s.%ld.tmp", dir, name, (long)getpid());
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
    if (fd < 0)
        return -1;
    const uint8_t *p = data;
    size_t done = 0;
    while (done < len) {
        ssize_t w = write(fd, p + done, len - done);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0) {
            int e = w < 0 ? errno : EIO;
            close(fd);
            unlink(tmp);
            errno = e;
            return -1;
        }
        done += (size_t)w;
    }
    /* the mode again: open() applied the umask, a web server must read the files */
    if (fchmod(fd, mode) != 0 || fsync(fd) != 0) {
        int e = errno;
        close(fd);
        unlink(tmp);
        errno = e;
        return -1;
    }
    if (close(fd) != 0 || rename(tmp, path) != 0) {
        int e = errno;
        unlink(tmp);
        errno = e;
        return -1;
    }
    return 0;
}

/* make the renames in dir durable (best effort: not every file system allows it) */
static void sync_dir(const char *dir)
{
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd >= 0) {
        (void)fsync(fd);
        close(fd);
    }
}

static bool valid_version(const char *v, const char **why)
{
    size_t n = strlen(v);
    if (n == 0 || n >= OTA_CFG_MANIFEST_VERSION_MAX) {
        *why = "1 to 31 characters";
        return false;
    }
    if (v[0] == '.' || v[0] == '-') {
        *why = "not starting with '.' or '-'";
        return false;
    }
    for (size_t i = 0; i < n; i++) {
        char ch = v[i];
        if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
              ch == '.' || ch == '-' || ch == '_' || ch == '+')) {
            *why = "letters, digits, '.', '-', '_' and '+' only (it names a file)";
            return false;
        }
    }
    /* ESPHome takes a path containing "http" anywhere for a full URL */
    if (strstr(v, "http") != NULL) {
        *why = "without \"http\" in it (ESPHome would take the image path for a URL)";
        return false;
    }
    return true;
}

static bool valid_family(const char *f)
{
    size_t n = strlen(f);
    if (n == 0 || n >= OTA_MANIFEST_FAMILY_MAX)
        return false;
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)f[i] <= 0x20 || (unsigned char)f[i] >= 0x7F || f[i] == '"' ||
            f[i] == '\\')
            return false;
    return true;
}

/* Does the already published file `have` hold IMAGE (img, unsigned or signed) as
 * publishing it now would, so that it can stay as it is? Without keys: the same
 * bytes. With keys: a signed file whose signed part is IMAGE (or what IMAGE's own
 * signature covers) padded as signing pads it, with a valid block by every key
 * (RSA-PSS signatures are randomised: signing again would give other bytes for the
 * same release). */
static bool same_release(const uint8_t *have, size_t have_len, const uint8_t *img, size_t len,
                         const uint8_t (*kd)[IMGSIGN_DIGEST_LEN], size_t n_keys)
{
    if (n_keys == 0)
        return have_len == len && memcmp(have, img, len) == 0;
    /* with keys, even the same bytes must be signed by them (an unsigned release is
     * not made signed by publishing it again with --key) */
    imgsign_info_t hi, ii;
    char err[256];
    if (imgsign_inspect(have, have_len, &hi, err, sizeof err) != 1 || !hi.all_valid)
        return false;
    /* the unsigned part of IMAGE: all of it, or what its own sector signs */
    size_t data_len = len;
    if (imgsign_inspect(img, len, &ii, err, sizeof err) == 1)
        data_len = ii.signed_len;
    if (data_len > hi.signed_len || memcmp(have, img, data_len) != 0)
        return false;
    for (size_t j = data_len; j < hi.signed_len; j++)
        if (have[j] != IMGSIGN_PAD_BYTE)
            return false;
    if (hi.signed_len - data_len >= IMGSIGN_SECTOR_SIZE)
        return false; /* more padding than signing adds */
    for (size_t k = 0; k < n_keys; k++) {
        bool by_key = false;
        for (size_t b = 0; b < hi.n_blocks; b++)
            if (memcmp(hi.blocks[b].key_digest, kd[k], IMGSIGN_DIGEST_LEN) == 0)
                by_key = true;
        if (!by_key)
            return false;
    }
    return true;
}

/* the image signed by every key, reusing a signature IMAGE already has by them */
static uint8_t *sign_image(const uint8_t *img, size_t len, const char *const *keys,
                           const uint8_t (*kd)[IMGSIGN_DIGEST_LEN], size_t n_keys,
                           size_t *out_len, char *err, size_t cap)
{
    imgsign_info_t info;
    char e2[256];
    const char *todo[IMGSIGN_MAX_BLOCKS];
    if (imgsign_inspect(img, len, &info, e2, sizeof e2) == 1 && info.all_valid) {
        /* keys that signed it already are kept; only the others are added */
        size_t n_todo = 0;
        for (size_t k = 0; k < n_keys; k++) {
            bool have = false;
            for (size_t b = 0; b < info.n_blocks; b++)
                if (memcmp(info.blocks[b].key_digest, kd[k], IMGSIGN_DIGEST_LEN) == 0)
                    have = true;
            if (!have)
                todo[n_todo++] = keys[k];
        }
        if (n_todo == 0) {
            uint8_t *copy = malloc(len);
            if (copy == NULL) {
                snprintf(err, cap, "out of memory");
                return NULL;
            }
            memcpy(copy, img, len);
            *out_len = len;
            return copy;
        }
        keys = todo;
        n_keys = n_todo;
    }
    uint8_t *out = NULL;
    if (imgsign_sign(img, len, keys, n_keys, &out, out_len, err, cap) != 0)
        return NULL;
    return out;
}

/* The manifest.json text (ends with a newline). */
static char *manifest_json(const char *name, const char *version, const char *family,
                           const char *path, const uint8_t md5[16], const uint8_t sha[32],
                           bool has_sv, uint32_t sv, size_t size, unsigned rollout,
                           const char *summary, const char *release_url, uint32_t published,
                           size_t *len)
{
    buf_t b = {0};
    char h[65], num[32];
    puts_(&b, "{\n  \"name\": ");
    put_json(&b, name);
    puts_(&b, ",\n  \"version\": ");
    put_json(&b, version);
    snprintf(num, sizeof num, "%lu", (unsigned long)published);
    puts_(&b, ",\n  \"published\": ");
    puts_(&b, num);
    puts_(&b, ",\n  \"builds\": [\n    {\n      \"chipFamily\": ");
    put_json(&b, family);
    puts_(&b, ",\n      \"ota\": {\n        \"path\": ");
    put_json(&b, path);
    hex(h, md5, 16);
    puts_(&b, ",\n        \"md5\": ");
    put_json(&b, h);
    hex(h, sha, 32);
    puts_(&b, ",\n        \"sha256\": ");
    put_json(&b, h);
    if (has_sv) {
        snprintf(num, sizeof num, "%lu", (unsigned long)sv);
        puts_(&b, ",\n        \"secure_version\": ");
        puts_(&b, num);
    }
    snprintf(num, sizeof num, "%zu", size);
    puts_(&b, ",\n        \"size\": ");
    puts_(&b, num);
    snprintf(num, sizeof num, "%u", rollout);
    puts_(&b, ",\n        \"rollout\": ");
    puts_(&b, num);
    if (summary != NULL) {
        puts_(&b, ",\n        \"summary\": ");
        put_json(&b, summary);
    }
    if (release_url != NULL) {
        puts_(&b, ",\n        \"release_url\": ");
        put_json(&b, release_url);
    }
    puts_(&b, "\n      }\n    }\n  ]\n}\n");
    if (b.oom) {
        free(b.p);
        return NULL;
    }
    *len = b.len;
    return b.p;
}

int cmd_publish(int argc, char **argv)
{
    static const struct option opts[] = {
        {"out", required_argument, NULL, 'o'},
        {"version", required_argument, NULL, 'V'},
        {"chip-family", required_argument, NULL, 'f'},
        {"rollout", required_argument, NULL, 'r'},
        {"key", required_argument, NULL, 'k'},
        {"name", required_argument, NULL, 'n'},
        {"summary", required_argument, NULL, 's'},
        {"release-url", required_argument, NULL, 'u'},
        {"security-version", required_argument, NULL, 'S'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    const char *dir = NULL, *version = NULL, *family = OTA_MANIFEST_FAMILY_POSIX;
    const char *name = NULL, *summary = NULL, *release_url = NULL;
    const char *keys[IMGSIGN_MAX_BLOCKS];
    size_t n_keys = 0;
    unsigned long rollout = OTA_MANIFEST_ROLLOUT_ALL;
    bool rollout_given = false;
    unsigned long secure_version = 0;
    bool set_sv = false;
    int c;
    opterr = 0;
    optind = 1;
    while ((c = getopt_long(argc, argv, ":h", opts, NULL)) != -1) {
        switch (c) {
        case 'o': dir = optarg; break;
        case 'V': version = optarg; break;
        case 'f': family = optarg; break;
        case 'r':
            if (!parse_uint(optarg, 0, 100, &rollout))
                return usage_error("publish", "--rollout takes a percentage from 0 to 100, "
                                              "not '%s'", optarg);
            rollout_given = true;
            break;
        case 'k':
            if (n_keys == IMGSIGN_MAX_BLOCKS)
                return usage_error("publish", "at most 3 --key (a signature sector holds 3 "
                                              "blocks)%s", NULL);
            keys[n_keys++] = optarg;
            break;
        case 'n': name = optarg; break;
        case 's': summary = optarg; break;
        case 'u': release_url = optarg; break;
        case 'S':
            if (!parse_uint(optarg, 0, 0xFFFFFFFFul, &secure_version))
                return usage_error("publish", "--security-version takes a number from 0 to "
                                              "4294967295, not '%s'", optarg);
            set_sv = true;
            break;
        case 'h': fputs(publish_usage, stdout); return OTA_EXIT_OK;
        case ':': return usage_error("publish", "option '%s' needs a value", argv[optind - 1]);
        default: return usage_error("publish", "unknown option '%s'", argv[optind - 1]);
        }
    }
    if (optind >= argc)
        return usage_error("publish", "missing IMAGE (the firmware to publish)%s", NULL);
    if (optind + 1 < argc)
        return usage_error("publish", "unexpected argument '%s'", argv[optind + 1]);
    if (dir == NULL)
        return usage_error("publish", "needs --out DIR (the directory the web server "
                                      "serves)%s", NULL);
    if (version == NULL)
        return usage_error("publish", "needs --version V (the release's version)%s", NULL);
    const char *why;
    if (!valid_version(version, &why)) {
        fprintf(stderr, "ota publish: --version '%s': a version here is %s\n", version, why);
        fprintf(stderr, "Run 'ota publish --help' for usage.\n");
        return OTA_EXIT_USAGE;
    }
    if (!valid_family(family))
        return usage_error("publish", "--chip-family takes 1 to 31 printable characters "
                                      "without spaces or quotes, not '%s'", family);
    const char *in = argv[optind];
    char dirbuf[4096];
    if (strlen(dir) >= sizeof dirbuf)
        return usage_error("publish", "--out: the path is too long%s", NULL);
    strcpy(dirbuf, dir);
    for (size_t n = strlen(dirbuf); n > 1 && dirbuf[n - 1] == '/'; n--)
        dirbuf[n - 1] = '\0'; /* "www/" names files "www/x", not "www//x" */
    dir = dirbuf;

    /* the keys first: a typo must not cost a signing run */
    uint8_t kd[IMGSIGN_MAX_BLOCKS][IMGSIGN_DIGEST_LEN];
    imgsign_scheme_t scheme[IMGSIGN_MAX_BLOCKS];
    char err[512];
    for (size_t k = 0; k < n_keys; k++) {
        if (imgsign_key_digest(keys[k], kd[k], &scheme[k], err, sizeof err) != 0) {
            fprintf(stderr, "error: %s\n", err);
            return OTA_EXIT_INPUT;
        }
    }
    size_t len = 0;
    uint8_t *image = load_firmware(in, &len);
    if (image == NULL)
        return OTA_EXIT_INPUT;
    /* The release's version (and security version) go into the image's descriptor, as
     * ESPHome compiles its project version in: the node that runs it then knows it is
     * this release and does not take it again. A signed image cannot change. */
    imgsign_info_t pre;
    bool presigned = imgsign_inspect(image, len, &pre, err, sizeof err) == 1;
    if (set_sv || (!presigned && !imgsign_is_esp_image(image, len) &&
                   ota_app_desc_find(image, len) >= 0)) {
        if (imgsign_set_descriptor(image, len, presigned ? NULL : version, set_sv,
                                   (uint32_t)secure_version, err, sizeof err) != 0) {
            fprintf(stderr, "error: %s: %s\n", in, err);
            free(image);
            return OTA_EXIT_INPUT;
        }
        if (set_sv)
            printf("image descriptor: version %s, secure_version %lu\n", version,
                   secure_version);
        else
            printf("image descriptor: version %s\n", version);
    }
    if (mkdir(dir, 0755) != 0 && errno != EEXIST) {
        fprintf(stderr, "error: cannot create %s: %s\n", dir, strerror(errno));
        free(image);
        return OTA_EXIT_INPUT;
    }
    struct stat st;
    if (stat(dir, &st) != 0 || !S_ISDIR(st.st_mode)) {
        fprintf(stderr, "error: %s is not a directory\n", dir);
        free(image);
        return OTA_EXIT_INPUT;
    }

    int rc = OTA_EXIT_INPUT;
    uint8_t *pub = NULL, *have = NULL, *old_manifest = NULL;
    char *json = NULL;
    size_t pub_len = 0, have_len = 0;
    char img_name[64], img_path[4200], dpath[4200];
    snprintf(img_name, sizeof img_name, "firmware-%s.bin", version);
    snprintf(img_path, sizeof img_path, "%s/%s", dir, img_name);

    /* 1. the image: the published one if this release is out already, else a new one */
    int e = 0;
    have = read_file(img_path, &have_len, &e);
    if (have == NULL && e != ENOENT) {
        fprintf(stderr, "error: cannot read %s: %s\n", img_path, strerror(e));
        goto out;
    }
    bool keep = false;
    if (have != NULL) {
        if (!same_release(have, have_len, image, len, (const uint8_t(*)[32])kd, n_keys)) {
            fprintf(stderr, "error: %s is published already with other bytes: a version is "
                            "published once (nodes and caches may hold it)\n", img_path);
            fprintf(stderr, "hint: publish this image under a new --version%s\n",
                    n_keys > 0 ? ", or check that --key is the key it was signed with" : "");
            goto out;
        }
        keep = true;
        pub = have;
        pub_len = have_len;
        have = NULL;
    } else if (n_keys > 0) {
        pub = sign_image(image, len, keys, (const uint8_t(*)[32])kd, n_keys, &pub_len, err,
                         sizeof err);
        if (pub == NULL) {
            fprintf(stderr, "error: cannot sign %s: %s\n", in, err);
            goto out;
        }
        printf("signed %s with %zu key%s (%s)\n", in, n_keys, n_keys == 1 ? "" : "s",
               imgsign_scheme_name(scheme[0]));
    } else {
        pub = image;
        pub_len = len;
        image = NULL;
    }

    /* what the manifest says about it */
    size_t desc_room = pub_len;
    imgsign_info_t info;
    if (imgsign_inspect(pub, pub_len, &info, err, sizeof err) == 1)
        desc_room = info.signed_len; /* a node looks for the descriptor there only */
    long at = ota_app_desc_find(pub, desc_room);
    ota_app_desc_t desc;
    bool has_desc = at >= 0;
    if (has_desc) {
        memcpy(&desc, pub + at, sizeof desc);
        desc.version[sizeof desc.version - 1] = '\0';
        desc.project_name[sizeof desc.project_name - 1] = '\0';
        if (strcmp(desc.version, version) != 0)
            fprintf(stderr, "warning: the image's descriptor says version '%s', not '%s': a "
                            "node that reports its descriptor's version would take this "
                            "update again after every boot\n", desc.version, version);
    }
    if (name == NULL)
        name = has_desc && desc.project_name[0] != '\0' ? desc.project_name : "firmware";
    if (pub_len > 0xFFFFFFFFu) {
        fprintf(stderr, "error: %s is larger than 4 GiB\n", in);
        goto out;
    }
    uint8_t md5[16], sha[32];
    if (mbedtls_md5_ret(pub, pub_len, md5) != 0 || mbedtls_sha256_ret(pub, pub_len, sha, 0) != 0) {
        fprintf(stderr, "error: hashing the image failed\n");
        rc = OTA_EXIT_INTERNAL;
        goto out;
    }

    /* an existing manifest of this release keeps its rollout unless one is given */
    size_t old_len = 0;
    snprintf(dpath, sizeof dpath, "%s/%s", dir, MANIFEST_FILE);
    old_manifest = read_file(dpath, &old_len, &e);
    /* "published" only rises: a node that trusts keys refuses a signed manifest older
     * than one it accepted, so a clock that went back must not make this one older */
    uint32_t published = (uint32_t)time(NULL);
    if (old_manifest != NULL) {
        ota_manifest_t *om = calloc(1, sizeof *om);
        if (om != NULL && ota_manifest_parse(old_manifest, old_len, family, om) == OTA_OK &&
            om->has_published && om->published >= published && om->published < 0xFFFFFFFFu)
            published = om->published + 1;
        free(om);
    }
    if (old_manifest != NULL && !rollout_given) {
        ota_manifest_t *om = calloc(1, sizeof *om);
        if (om != NULL && ota_manifest_parse(old_manifest, old_len, family, om) == OTA_OK &&
            strcmp(om->version, version) == 0 && om->has_rollout) {
            rollout = om->rollout;
            printf("keeping the published rollout of %lu%% (--rollout changes it)\n", rollout);
        }
        free(om);
    }

    size_t json_len = 0;
    json = manifest_json(name, version, family, img_name, md5, sha, has_desc,
                         has_desc ? desc.secure_version : 0, pub_len, (unsigned)rollout, summary,
                         release_url, published, &json_len);
    if (json == NULL) {
        fprintf(stderr, "error: out of memory\n");
        rc = OTA_EXIT_INTERNAL;
        goto out;
    }
    /* read it back as a node will, before anybody can */
    ota_manifest_t *m = calloc(1, sizeof *m);
    if (m == NULL) {
        rc = OTA_EXIT_INTERNAL;
        goto out;
    }
    int prc = ota_manifest_parse((const uint8_t *)json, json_len, family, m);
    bool same = prc == OTA_OK && strcmp(m->version, version) == 0 &&
                strcmp(m->path, img_name) == 0 && m->has_sha256 && m->published == published &&
                memcmp(m->sha256, sha, 32) == 0 && m->size == pub_len && m->rollout == rollout;
    if (prc == OTA_OK && m->truncated)
        fprintf(stderr, "warning: a node with the default buffers keeps only part of the "
                        "name, summary or release URL\n");
    const char *perr = prc == OTA_OK ? "fields differ" : ota_manifest_error_name(m->error);
    free(m);
    if (!same) {
        fprintf(stderr, "error: the manifest does not read back as written (%s); are --name, "
                        "--summary and --release-url valid UTF-8?\n", perr);
        rc = OTA_EXIT_USAGE;
        goto out;
    }

    /* 2. the files: image, manifest, signature (see the usage for why this order) */
    if (!keep) {
        if (write_atomic(dir, img_name, pub, pub_len, 0644) != 0) {
            fprintf(stderr, "error: cannot write %s: %s\n", img_path, strerror(errno));
            goto out;
        }
        sync_dir(dir); /* the image is there for good before a manifest names it */
        printf("wrote %s: %zu bytes\n", img_path, pub_len);
    } else {
        printf("kept %s: this release is published already (%zu bytes)\n", img_path, pub_len);
    }
    uint8_t sector[IMGSIGN_SECTOR_SIZE];
    if (n_keys > 0) {
        /* signed before anything is replaced: a failure leaves the old pair */
        uint8_t jd[32];
        if (mbedtls_sha256_ret((const uint8_t *)json, json_len, jd, 0) != 0 ||
            imgsign_sign_digest(jd, keys, n_keys, sector, err, sizeof err) != 0) {
            fprintf(stderr, "error: cannot sign the manifest: %s\n", err);
            goto out;
        }
    }
    if (write_atomic(dir, MANIFEST_FILE, json, json_len, 0644) != 0) {
        fprintf(stderr, "error: cannot write %s: %s\n", dpath, strerror(errno));
        goto out;
    }
    char sha_hex[65];
    hex(sha_hex, sha, 32);
    printf("wrote %s: version %s for %s, rollout %lu%%, sha256 %s", dpath, version, family,
           rollout, sha_hex);
    if (has_desc)
        printf(", secure_version %u", (unsigned)desc.secure_version);
    printf("\n");
    char spath[4200];
    snprintf(spath, sizeof spath, "%s/%s", dir, SIG_FILE);
    if (n_keys > 0) {
        if (write_atomic(dir, SIG_FILE, sector, sizeof sector, 0644) != 0) {
            fprintf(stderr, "error: cannot write %s: %s\n", spath, strerror(errno));
            goto out;
        }
        printf("wrote %s: %zu signature block%s\n", spath, n_keys, n_keys == 1 ? "" : "s");
    } else if (unlink(spath) == 0) {
        /* a signature of an earlier manifest would only make nodes report tampering */
        printf("removed %s: this manifest is not signed\n", spath);
    }
    sync_dir(dir);
    printf("serve %s as static files: nodes read <its URL>/%s\n", dir, MANIFEST_FILE);
    rc = OTA_EXIT_OK;
out:
    free(image);
    free(pub);
    free(have);
    free(old_manifest);
    free(json);
    return rc;
}

/* ---- ota manifest check ---- */

int cmd_manifest(int argc, char **argv)
{
    static const struct option opts[] = {
        {"chip-family", required_argument, NULL, 'f'},
        {"trust", required_argument, NULL, 't'},
        {"node", required_argument, NULL, 'n'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    const char *family = OTA_MANIFEST_FAMILY_POSIX, *node = NULL;
    const char *trust[8];
    size_t n_trust = 0;
    int c;
    opterr = 0;
    optind = 1;
    while ((c = getopt_long(argc, argv, ":h", opts, NULL)) != -1) {
        switch (c) {
        case 'f': family = optarg; break;
        case 't':
            if (n_trust == sizeof trust / sizeof trust[0])
                return usage_error("manifest", "at most 8 --trust%s", NULL);
            trust[n_trust++] = optarg;
            break;
        case 'n': node = optarg; break;
        case 'h': fputs(manifest_usage, stdout); return OTA_EXIT_OK;
        case ':': return usage_error("manifest", "option '%s' needs a value", argv[optind - 1]);
        default: return usage_error("manifest", "unknown option '%s'", argv[optind - 1]);
        }
    }
    if (optind >= argc)
        return usage_error("manifest", "needs a subcommand: check DIR%s", NULL);
    if (strcmp(argv[optind], "check") != 0)
        return usage_error("manifest", "unknown subcommand '%s' (there is: check)", argv[optind]);
    optind++;
    if (optind >= argc)
        return usage_error("manifest", "check needs DIR or MANIFEST.json%s", NULL);
    if (optind + 1 < argc)
        return usage_error("manifest", "unexpected argument '%s'", argv[optind + 1]);
    const char *arg = argv[optind];

    char dir[4200], mpath[4300], spath[4400], ipath[8600];
    struct stat st;
    if (stat(arg, &st) == 0 && S_ISDIR(st.st_mode)) {
        snprintf(dir, sizeof dir, "%s", arg);
        for (size_t n = strlen(dir); n > 1 && dir[n - 1] == '/'; n--)
            dir[n - 1] = '\0';
        snprintf(mpath, sizeof mpath, "%s/%s", dir, MANIFEST_FILE);
    } else {
        snprintf(mpath, sizeof mpath, "%s", arg);
        const char *slash = strrchr(arg, '/');
        if (slash == NULL)
            snprintf(dir, sizeof dir, ".");
        else
            snprintf(dir, sizeof dir, "%.*s", (int)(slash - arg), arg);
        if (dir[0] == '\0')
            snprintf(dir, sizeof dir, "/");
    }
    snprintf(spath, sizeof spath, "%s.sig", mpath);

    int rc = OTA_EXIT_INPUT;
    uint8_t *json = NULL, *sig = NULL, *img = NULL;
    ota_manifest_t *m = calloc(1, sizeof *m);
    size_t json_len = 0, sig_len = 0, img_len = 0;
    int e = 0;
    uint8_t kd[8][IMGSIGN_DIGEST_LEN];
    ota_sig_trusted_t trusted[8];
    char err[512];
    if (m == NULL)
        return OTA_EXIT_INTERNAL;
    for (size_t k = 0; k < n_trust; k++) {
        if (imgsign_key_digest(trust[k], kd[k], NULL, err, sizeof err) != 0) {
            fprintf(stderr, "error: %s\n", err);
            goto out;
        }
        memset(&trusted[k], 0, sizeof trusted[k]);
        trusted[k].digest = kd[k];
    }
    json = read_file(mpath, &json_len, &e);
    if (json == NULL) {
        fprintf(stderr, "error: cannot read %s: %s\n", mpath, strerror(e));
        goto out;
    }
    if (json_len > MANIFEST_MAX) {
        fprintf(stderr, "error: %s has %zu bytes: that is no manifest\n", mpath, json_len);
        goto out;
    }
    int prc = ota_manifest_parse(json, json_len, family, m);
    if (prc != OTA_OK) {
        fprintf(stderr, "error: %s: %s (at byte %lu)\n", mpath, ota_manifest_error_name(m->error),
                (unsigned long)m->error_offset);
        if (m->error == OTA_MANIFEST_E_NO_BUILD)
            fprintf(stderr, "hint: it has %u build%s, none with chipFamily \"%s\" (--chip-family "
                            "picks another)\n", m->builds, m->builds == 1 ? "" : "s", family);
        goto out;
    }
    char h[65];
    printf("manifest:   %s\n", mpath);
    printf("name:       %s%s\n", m->name, m->truncated & OTA_MANIFEST_TRUNC_NAME ? " (cut)" : "");
    printf("version:    %s\n", m->version);
    printf("build:      chipFamily %s (of %u build%s)\n", family, m->builds,
           m->builds == 1 ? "" : "s");
    printf("path:       %s\n", m->path);
    if (m->has_size)
        printf("size:       %lu bytes\n", (unsigned long)m->size);
    if (m->has_md5) {
        hex(h, m->md5, 16);
        printf("md5:        %s\n", h);
    }
    if (m->has_sha256) {
        hex(h, m->sha256, 32);
        printf("sha256:     %s\n", h);
    }
    if (m->has_secure_version)
        printf("secure_version: %lu\n", (unsigned long)m->secure_version);
    printf("rollout:    %u%%%s\n", m->rollout, m->has_rollout ? "" : " (none given: all)");
    if (m->summary[0] != '\0')
        printf("summary:    %s\n", m->summary);
    if (m->release_url[0] != '\0')
        printf("release_url: %s\n", m->release_url);
    if (node != NULL) {
        int b = ota_manifest_rollout_bucket(&ota_posix_crypto, node, m->version);
        if (b < 0) {
            fprintf(stderr, "error: hashing failed\n");
            rc = OTA_EXIT_INTERNAL;
            goto out;
        }
        printf("node %s:    bucket %d: %s\n", node, b,
               (unsigned)b < m->rollout ? "in the rollout" : "not in the rollout");
    }

    bool bad = false, unsigned_bad = false;
    /* the image, when it is a file beside the manifest */
    if (strstr(m->path, "://") == NULL && m->path[0] != '/') {
        snprintf(ipath, sizeof ipath, "%s/%s", dir, m->path);
        img = read_file(ipath, &img_len, &e);
        if (img == NULL) {
            printf("image:      %s: cannot read: %s\n", ipath, strerror(e));
            bad = true;
        } else {
            uint8_t md5[16], sha[32];
            mbedtls_md5_ret(img, img_len, md5);
            mbedtls_sha256_ret(img, img_len, sha, 0);
            bool ok_size = !m->has_size || m->size == img_len;
            bool ok_md5 = !m->has_md5 || memcmp(md5, m->md5, 16) == 0;
            bool ok_sha = !m->has_sha256 || memcmp(sha, m->sha256, 32) == 0;
            printf("image:      %s: %zu bytes, size %s, md5 %s, sha256 %s\n", ipath, img_len,
                   !m->has_size ? "not given" : ok_size ? "matches" : "DIFFERS",
                   !m->has_md5 ? "not given" : ok_md5 ? "matches" : "DIFFERS",
                   !m->has_sha256 ? "not given" : ok_sha ? "matches" : "DIFFERS");
            if (!(ok_size && ok_md5 && ok_sha))
                bad = true;
        }
    } else {
        printf("image:      %s is not a file next to the manifest: not checked\n", m->path);
    }
    if (n_trust > 0) {
        sig = read_file(spath, &sig_len, &e);
        if (sig == NULL) {
            printf("signature:  %s: cannot read: %s\n", spath, strerror(e));
            unsigned_bad = true;
        } else {
            ota_sig_result_t res;
            int src = ota_manifest_verify_signature(&ota_posix_crypto, json, json_len, sig,
                                                    sig_len, trusted, n_trust, &res);
            printf("signature:  %s: %s\n", spath,
                   src == OTA_OK ? "valid (a trusted key signed these manifest bytes)"
                                 : ota_strerror(src));
            if (src != OTA_OK) {
                for (size_t b = 0; b < OTA_SIG_MAX_BLOCKS; b++)
                    if (res.status[b] != OTA_SIG_ABSENT)
                        printf("            block %zu: %s\n", b,
                               ota_sig_status_name(res.status[b]));
                unsigned_bad = true;
            }
        }
        if (img != NULL) {
            ota_sig_result_t res;
            int irc = ota_sig_verify_image(&ota_posix_crypto, img, img_len, trusted, n_trust,
                                           &res);
            printf("image sig:  %s\n", irc == OTA_OK ? "valid (signed by a trusted key)"
                                                     : ota_strerror(irc));
            if (irc != OTA_OK)
                unsigned_bad = true;
        }
    }
    if (bad)
        rc = OTA_EXIT_INPUT;
    else if (unsigned_bad)
        rc = OTA_EXIT_UNSIGNED;
    else
        rc = OTA_EXIT_OK;
    printf("verdict:    %s\n", rc == OTA_EXIT_OK ? "valid"
                           : bad ? "the image does not match the manifest"
                                 : "a signature is missing or not valid");
out:
    free(m);
    free(json);
    free(sig);
    free(img);
    return rc;
}
