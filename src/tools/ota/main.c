/*
 * main.c - the `ota` host tool: command dispatch, `ota upload` (options, password
 * sources, retries, the final report) and `ota hash-password` (the salted verifier a
 * node stores instead of its password).
 */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#include "client.h"
#include "messages.h"
#include "ota/auth.h"
#include "ota/util.h"
#include "ota_posix.h"
#include "progress.h"

#define OTA_TOOL_VERSION "0.1.0"
#define DEFAULT_PORT 3232
#define DEFAULT_TIMEOUT_S 160
#define DEFAULT_ITERATIONS 10000u

static const char main_usage[] =
    "usage: ota COMMAND [options]\n"
    "\n"
    "Over-the-air firmware updates for ESPHome-compatible nodes.\n"
    "\n"
    "commands:\n"
    "  upload         send a firmware image to a node\n"
    "  hash-password  make the salted verifier a node stores instead of its password\n"
    "\n"
    "  ota COMMAND --help   options of one command\n"
    "  ota --version        the tool's version\n"
    "\n"
    "exit codes: 0 success, 1 internal error, 2 usage, 3 network (does not resolve,\n"
    "refused, timeout, connection lost), 4 authentication, 5 the device reported an\n"
    "error (including busy), 6 the firmware file is missing, unreadable or empty.\n";

static const char upload_usage[] =
    "usage: ota upload --device HOST [options] FIRMWARE\n"
    "\n"
    "Send FIRMWARE to the node at HOST over the native OTA protocol (ESPHome-compatible).\n"
    "\n"
    "  --device HOST        the node's IP address or host name\n"
    "  --port N             its OTA port (default 3232; ESP8266 nodes use 8266)\n"
    "  --password P         the OTA password (also: --password-file, $OTA_PASSWORD)\n"
    "  --password-file F    read the password from the first line of F\n"
    "  --auth METHOD        auto (default: the strongest the device offers), salted,\n"
    "                       sha256 or md5\n"
    "  --no-compress        never gzip (default: gzip when the device accepts it and the\n"
    "                       image gets smaller)\n"
    "  --retries N          retry a connection that fails before the upload starts N\n"
    "                       times, waiting 1 s, 2 s, 4 s ... up to 10 s (default 0)\n"
    "  --timeout S          seconds of silence allowed in each phase (default 160)\n"
    "  -q, --quiet          no progress output\n"
    "  -h, --help           this text\n"
    "\n"
    "Progress goes to stderr (a bar on a terminal, 'progress:' lines otherwise); the\n"
    "final 'OK:' line to stdout. Exit codes: see 'ota --help'.\n";

static const char hash_usage[] =
    "usage: ota hash-password [--iterations N]\n"
    "\n"
    "Read a password (from the terminal without echo, or the first line of standard\n"
    "input when it is not a terminal) and print its salted verifier:\n"
    "  SCRAM-SHA-256$<iterations>:<salt>$<StoredKey>:<ServerKey>\n"
    "Configure the node with this verifier instead of the password: the firmware then\n"
    "holds nothing that lets anyone authenticate, and the uploader checks that the\n"
    "node knows it. A fresh random salt is used on every run.\n"
    "\n"
    "  --iterations N   PBKDF2 iterations, at least 4096 (default 10000); more makes a\n"
    "                   stolen verifier harder to brute-force and each upload slower\n"
    "  -h, --help       this text\n";

static int usage_error(const char *cmd, const char *fmt, const char *arg)
{
    fprintf(stderr, "ota%s%s: ", cmd ? " " : "", cmd ? cmd : "");
    fprintf(stderr, fmt, arg ? arg : "");
    fprintf(stderr, "\nRun 'ota%s%s --help' for usage.\n", cmd ? " " : "", cmd ? cmd : "");
    return OTA_EXIT_USAGE;
}

static bool parse_uint(const char *s, unsigned long min, unsigned long max, unsigned long *out)
{
    char *end;
    errno = 0;
    unsigned long v = strtoul(s, &end, 10);
    if (*s == '\0' || *s == '-' || *end != '\0' || errno != 0 || v < min || v > max)
        return false;
    *out = v;
    return true;
}

static char *read_first_line(FILE *f)
{
    char *line = NULL;
    size_t cap = 0;
    ssize_t n = getline(&line, &cap, f);
    if (n < 0) {
        free(line);
        return NULL;
    }
    while (n > 0 && (line[n - 1] == '\n' || line[n - 1] == '\r'))
        line[--n] = '\0';
    return line;
}

static uint8_t *read_file(const char *path, size_t *len, int *err)
{
    FILE *f = fopen(path, "rb");
    if (f == NULL) {
        *err = errno;
        return NULL;
    }
    struct stat st;
    if (fstat(fileno(f), &st) != 0 || !S_ISREG(st.st_mode)) {
        *err = S_ISDIR(st.st_mode) ? EISDIR : EINVAL;
        fclose(f);
        return NULL;
    }
    uint8_t *buf = malloc(st.st_size > 0 ? (size_t)st.st_size : 1);
    size_t n = buf ? fread(buf, 1, (size_t)st.st_size, f) : 0;
    int bad = ferror(f) || n != (size_t)st.st_size;
    fclose(f);
    if (buf == NULL || bad) {
        *err = buf ? EIO : ENOMEM;
        free(buf);
        return NULL;
    }
    *len = n;
    return buf;
}

/* ------------------------------------------------------------ upload */

static int cmd_upload(int argc, char **argv)
{
    enum { O_DEVICE = 256, O_PORT, O_PASSWORD, O_PASSWORD_FILE, O_AUTH, O_NO_COMPRESS,
           O_RETRIES, O_TIMEOUT };
    static const struct option opts[] = {
        {"device", required_argument, NULL, O_DEVICE},
        {"port", required_argument, NULL, O_PORT},
        {"password", required_argument, NULL, O_PASSWORD},
        {"password-file", required_argument, NULL, O_PASSWORD_FILE},
        {"auth", required_argument, NULL, O_AUTH},
        {"no-compress", no_argument, NULL, O_NO_COMPRESS},
        {"retries", required_argument, NULL, O_RETRIES},
        {"timeout", required_argument, NULL, O_TIMEOUT},
        {"quiet", no_argument, NULL, 'q'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    ota_client_options_t o = {
        .host = NULL, .port = DEFAULT_PORT, .password = NULL, .auth = OTA_AUTH_AUTO,
        .compress = true, .timeout_s = DEFAULT_TIMEOUT_S,
    };
    const char *password_file = NULL;
    unsigned long retries = 0, v;
    bool quiet = false;
    int c;
    opterr = 0;
    while ((c = getopt_long(argc, argv, ":qh", opts, NULL)) != -1) {
        switch (c) {
        case O_DEVICE: o.host = optarg; break;
        case O_PORT:
            if (!parse_uint(optarg, 1, 65535, &v))
                return usage_error("upload", "--port takes a number from 1 to 65535, not '%s'",
                                   optarg);
            o.port = (uint16_t)v;
            break;
        case O_PASSWORD: o.password = optarg; break;
        case O_PASSWORD_FILE: password_file = optarg; break;
        case O_AUTH:
            if (strcmp(optarg, "auto") == 0)
                o.auth = OTA_AUTH_AUTO;
            else if (strcmp(optarg, "salted") == 0)
                o.auth = OTA_AUTH_SALTED;
            else if (strcmp(optarg, "sha256") == 0)
                o.auth = OTA_AUTH_SHA256;
            else if (strcmp(optarg, "md5") == 0)
                o.auth = OTA_AUTH_MD5;
            else
                return usage_error("upload", "--auth takes auto, salted, sha256 or md5, not '%s'",
                                   optarg);
            break;
        case O_NO_COMPRESS: o.compress = false; break;
        case O_RETRIES:
            if (!parse_uint(optarg, 0, 100, &retries))
                return usage_error("upload", "--retries takes a number from 0 to 100, not '%s'",
                                   optarg);
            break;
        case O_TIMEOUT:
            if (!parse_uint(optarg, 1, 3600, &v))
                return usage_error("upload", "--timeout takes seconds from 1 to 3600, not '%s'",
                                   optarg);
            o.timeout_s = (unsigned)v;
            break;
        case 'q': quiet = true; break;
        case 'h': fputs(upload_usage, stdout); return OTA_EXIT_OK;
        case ':': return usage_error("upload", "option '%s' needs a value", argv[optind - 1]);
        default: return usage_error("upload", "unknown option '%s'", argv[optind - 1]);
        }
    }
    if (optind >= argc)
        return usage_error("upload", "missing FIRMWARE (the image file to send)%s", NULL);
    if (optind + 1 < argc)
        return usage_error("upload", "unexpected argument '%s'", argv[optind + 1]);
    if (o.host == NULL)
        return usage_error("upload", "missing --device HOST (the node's address)%s", NULL);
    const char *firmware = argv[optind];

    char *pw_alloc = NULL;
    if (o.password == NULL && password_file != NULL) {
        FILE *f = fopen(password_file, "r");
        if (f == NULL || (pw_alloc = read_first_line(f)) == NULL) {
            fprintf(stderr, "error: cannot read the password from %s: %s\n", password_file,
                    f ? "the file is empty" : strerror(errno));
            if (f)
                fclose(f);
            return OTA_EXIT_INPUT;
        }
        fclose(f);
        o.password = pw_alloc;
    }
    if (o.password == NULL && getenv("OTA_PASSWORD") != NULL && getenv("OTA_PASSWORD")[0])
        o.password = getenv("OTA_PASSWORD");
    if (o.password != NULL && o.password[0] == '\0')
        o.password = NULL;

    size_t len = 0;
    int err = 0;
    uint8_t *image = read_file(firmware, &len, &err);
    if (image == NULL || len == 0) {
        if (image == NULL)
            fprintf(stderr, "error: cannot read the firmware %s: %s\n", firmware, strerror(err));
        else
            fprintf(stderr, "error: the firmware %s is empty\n", firmware);
        fprintf(stderr, "hint: pass the firmware image built for the node (e.g. firmware.bin)\n");
        free(image);
        free(pw_alloc);
        return OTA_EXIT_INPUT;
    }

    if (!quiet)
        fprintf(stderr, "Uploading %s (%zu bytes) to %s port %u\n", firmware, len, o.host,
                (unsigned)o.port);
    ota_client_result_t res;
    int rc = OTA_EXIT_INTERNAL;
    double started = ota_now_s();
    unsigned wait_s = 1;
    for (unsigned long attempt = 0;; attempt++) {
        ota_progress_t prog;
        ota_progress_init(&prog, stderr, quiet);
        started = ota_now_s();
        rc = ota_client_upload(&o, image, len, ota_progress_update, &prog, &res);
        ota_progress_finish(&prog);
        if (rc == OTA_EXIT_OK || attempt >= retries || !ota_client_retriable(&res))
            break;
        ota_print_failure(stderr, &o, &res);
        fprintf(stderr, "retrying in %u s (attempt %lu of %lu)\n", wait_s, attempt + 2,
                retries + 1);
        sleep(wait_s);
        wait_s = wait_s * 2 > 10 ? 10 : wait_s * 2;
    }
    if (rc == OTA_EXIT_OK) {
        double secs = ota_now_s() - started;
        printf("OK: %zu bytes uploaded to %s:%u in %.2f s (%.1f KiB/s)%s\n", len, o.host,
               (unsigned)o.port, secs, secs > 0 ? (double)len / 1024.0 / secs : 0.0,
               res.compressed ? ", gzip" : "");
        if (!quiet)
            fprintf(stderr, "The node verified and activated the image and is rebooting into "
                            "it.\n");
    } else {
        ota_print_failure(stderr, &o, &res);
    }
    free(image);
    free(pw_alloc);
    return rc;
}

/* ------------------------------------------------------------ hash-password */

static char *prompt_password(const char *prompt)
{
    FILE *tty = fopen("/dev/tty", "r+");
    if (tty == NULL)
        return NULL;
    struct termios old, quiet;
    tcgetattr(fileno(tty), &old);
    quiet = old;
    quiet.c_lflag &= ~(tcflag_t)ECHO;
    fputs(prompt, tty);
    fflush(tty);
    tcsetattr(fileno(tty), TCSAFLUSH, &quiet);
    char *line = read_first_line(tty);
    tcsetattr(fileno(tty), TCSAFLUSH, &old);
    fputc('\n', tty);
    fclose(tty);
    return line;
}

static int cmd_hash_password(int argc, char **argv)
{
    static const struct option opts[] = {
        {"iterations", required_argument, NULL, 'i'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    unsigned long iterations = DEFAULT_ITERATIONS;
    int c;
    opterr = 0;
    while ((c = getopt_long(argc, argv, ":h", opts, NULL)) != -1) {
        switch (c) {
        case 'i':
            if (!parse_uint(optarg, OTA_SALTED_MIN_ITERATIONS, 10000000ul, &iterations))
                return usage_error("hash-password",
                                   "--iterations takes a number from 4096 to 10000000, not '%s'",
                                   optarg);
            break;
        case 'h': fputs(hash_usage, stdout); return OTA_EXIT_OK;
        case ':':
            return usage_error("hash-password", "option '%s' needs a value", argv[optind - 1]);
        default: return usage_error("hash-password", "unknown option '%s'", argv[optind - 1]);
        }
    }
    if (optind != argc)
        return usage_error("hash-password", "unexpected argument '%s'", argv[optind]);

    char *pw;
    if (isatty(STDIN_FILENO)) {
        pw = prompt_password("Password: ");
        char *again = pw ? prompt_password("Again: ") : NULL;
        if (pw == NULL || again == NULL || strcmp(pw, again) != 0) {
            fprintf(stderr, "error: %s\n", pw && again ? "the passwords differ" :
                                                         "cannot read the password");
            free(pw);
            free(again);
            return OTA_EXIT_INPUT;
        }
        free(again);
    } else {
        pw = read_first_line(stdin);
    }
    if (pw == NULL || pw[0] == '\0') {
        fprintf(stderr, "error: empty password\n");
        free(pw);
        return OTA_EXIT_INPUT;
    }
    ota_verifier_t v;
    v.iterations = (uint32_t)iterations;
    uint8_t sp[OTA_SALTED_KEY_LEN];
    ota_port_t crypto;
    memset(&crypto, 0, sizeof crypto);
    ota_posix_crypto_fill(&crypto);
    int rc = ota_posix_random(NULL, v.salt, sizeof v.salt);
    if (rc == 0)
        rc = ota_posix_pbkdf2_sha256(pw, strlen(pw), v.salt, sizeof v.salt, v.iterations, sp,
                                     sizeof sp);
    if (rc == 0)
        rc = ota_salted_keys(&crypto, NULL, sp, NULL, v.stored_key, v.server_key);
    ota_wipe(sp, sizeof sp);
    ota_wipe(pw, strlen(pw));
    free(pw);
    char text[OTA_VERIFIER_TEXT_MAX];
    if (rc != 0 || ota_verifier_format(&v, text, sizeof text) == 0) {
        fprintf(stderr, "error: computing the verifier failed\n");
        return OTA_EXIT_INTERNAL;
    }
    puts(text);
    return OTA_EXIT_OK;
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fputs(main_usage, stderr);
        return OTA_EXIT_USAGE;
    }
    const char *cmd = argv[1];
    if (strcmp(cmd, "--help") == 0 || strcmp(cmd, "-h") == 0 || strcmp(cmd, "help") == 0) {
        fputs(main_usage, stdout);
        return OTA_EXIT_OK;
    }
    if (strcmp(cmd, "--version") == 0) {
        printf("ota %s\n", OTA_TOOL_VERSION);
        return OTA_EXIT_OK;
    }
    if (strcmp(cmd, "upload") == 0)
        return cmd_upload(argc - 1, argv + 1);
    if (strcmp(cmd, "hash-password") == 0)
        return cmd_hash_password(argc - 1, argv + 1);
    return usage_error(NULL, "unknown command '%s'", cmd);
}
