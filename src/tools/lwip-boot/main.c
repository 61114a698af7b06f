/*
 * lwip-boot - the emulated ESP8266 of the lwIP port: a flash file with an
 * ESP8266-like layout (src/port/lwip/layout.h), the eboot-style boot stage
 * (src/port/lwip/eboot.h) and a restart whenever the firmware asks for a reboot, as
 * ota-boot is for the POSIX node. The "application in flash" is an executable:
 * `run` copies the application area to a temporary executable file and runs it with
 * --flash FILE --tap TAP and the firmware's own arguments; exit status 42 is a
 * reboot (the boot stage runs again, then the new application).
 *
 *   lwip-boot flash  --flash FILE --layout esp8266-4m|esp8266-1m IMAGE
 *   lwip-boot run    --flash FILE --tap TAPNAME [--restart-on-crash] -- FIRMWARE-ARGS
 *   lwip-boot status --flash FILE
 *   lwip-boot boot   --flash FILE [--cut-after-ops N]    (the boot stage alone; tests)
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "eboot.h"
#include "ota_lwip_flash.h"

#define EXIT_REBOOT 42   /* the firmware's "reboot me" (the POSIX node's too) */
#define EXIT_NO_BOOT 3   /* the boot stage found nothing whole to boot */
#define EXIT_CUT 4       /* boot --cut-after-ops: the injected power cut happened */

static void say(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void say(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fputs("[lwip-boot] ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
}

static const char usage_text[] =
    "usage: lwip-boot COMMAND --flash FILE [options]\n"
    "The emulated ESP8266 of the lwIP port: a NOR flash file with an ESP8266 Arduino\n"
    "layout, an eboot-style boot stage, and a restart whenever the firmware reboots.\n"
    "\n"
    "Commands:\n"
    "  flash   --flash FILE --layout esp8266-4m|esp8266-1m IMAGE\n"
    "          create FILE as a blank chip of the layout's size and install IMAGE as\n"
    "          the application\n"
    "  run     --flash FILE [--tap TAPNAME] [--restart-on-crash] -- FIRMWARE-ARGS\n"
    "          boot stage, then run the application with --flash FILE --tap TAPNAME\n"
    "          FIRMWARE-ARGS; exit status 42 from it = reboot\n"
    "  status  --flash FILE\n"
    "          the application, the boot record and the update area as JSON\n"
    "  boot    --flash FILE\n"
    "          run the boot stage alone (a pending copy), print what it did\n"
    "\n"
    "Run 'lwip-boot COMMAND --help' for one command.\n";

static const char *command_help(const char *cmd)
{
    if (strcmp(cmd, "flash") == 0)
        return "usage: lwip-boot flash --flash FILE --layout esp8266-4m|esp8266-1m IMAGE\n"
               "Create FILE as a blank NOR flash (all 0xFF) of the layout's size (1 MiB for\n"
               "esp8266-1m after eagle.flash.1m64.ld, 4 MiB for esp8266-4m after\n"
               "eagle.flash.4m2m.ld), write IMAGE (any bytes; the firmware executable) as\n"
               "the application at 0x1000 and a boot record naming it. An existing FILE is\n"
               "overwritten (a chip erase).\n";
    if (strcmp(cmd, "run") == 0)
        return "usage: lwip-boot run --flash FILE [--tap TAPNAME] [--restart-on-crash]\n"
               "                     [--restart-delay-ms MS] -- FIRMWARE-ARGS...\n"
               "Run the boot stage (a pending copy of an update over the application,\n"
               "resumed after a power cut), extract the application to a temporary\n"
               "executable and run it as: APP --flash FILE [--tap TAPNAME] FIRMWARE-ARGS.\n"
               "Exit status 42 from the firmware is a reboot: the boot stage runs again and\n"
               "the (new) application starts. Any other exit ends lwip-boot with that\n"
               "status (128+N for a signal N), unless --restart-on-crash restarts it after\n"
               "--restart-delay-ms (default 500). Ctrl-C or SIGTERM stops the firmware\n"
               "(SIGTERM, SIGKILL after 5 s) and exits 0. Exit 3: nothing whole to boot.\n";
    if (strcmp(cmd, "status") == 0)
        return "usage: lwip-boot status --flash FILE\n"
               "Print the flash's state as one JSON object: layout, flash_size, app_size,\n"
               "active_sha256 (of the application bytes in flash), app_intact (they match\n"
               "the boot record), boot_attempts, safe_mode, safe_mode_request, pending\n"
               "(unconfirmed update), min_secure_version, pending_copy (a copy waits for\n"
               "the next boot stage), copy, update_area, fs, record_seq.\n";
    if (strcmp(cmd, "boot") == 0)
        return "usage: lwip-boot boot --flash FILE [--cut-after-ops N]\n"
               "Run the boot stage alone and print what it did. For tests,\n"
               "--cut-after-ops N cuts the power during the N-th flash erase or write of\n"
               "the boot stage (that operation is torn) and exits 4; the next boot resumes.\n"
               "Exit 0: a whole application is bootable; 3: none.\n";
    return NULL;
}

static int usage_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static int usage_error(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fputs("lwip-boot: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    fputs("Run 'lwip-boot --help' for usage.\n", stderr);
    return 2;
}

static void hex(const uint8_t *p, size_t n, char *out)
{
    for (size_t i = 0; i < n; i++)
        snprintf(out + 2 * i, 3, "%02x", p[i]);
}

static int open_flash(ota_lwip_flash_t *f, const char *path)
{
    char err[300];
    if (ota_lwip_flash_open(f, path, err, sizeof err) != 0) {
        fprintf(stderr, "lwip-boot: %s\n", err);
        return -1;
    }
    return 0;
}

/* ------------------------------------------------------------------ flash */

static int cmd_flash(const char *path, const char *layout_name, const char *image_path)
{
    const ota_lwip_layout_t *l = ota_lwip_layout_by_name(layout_name);
    if (l == NULL)
        return usage_error("unknown layout '%s' (known: esp8266-4m, esp8266-1m)", layout_name);
    FILE *in = fopen(image_path, "rb");
    if (in == NULL) {
        fprintf(stderr, "lwip-boot: cannot open %s: %s\n", image_path, strerror(errno));
        return 1;
    }
    uint32_t cap = l->fs_start - l->app_start;
    uint8_t *img = malloc((size_t)cap + 1u);
    size_t len = img != NULL ? fread(img, 1, (size_t)cap + 1u, in) : 0;
    bool bad = img == NULL || ferror(in);
    fclose(in);
    if (bad) {
        fprintf(stderr, "lwip-boot: cannot read %s\n", image_path);
        free(img);
        return 1;
    }
    if (len == 0 || len > cap) {
        fprintf(stderr,
                "lwip-boot: %s: %s does not fit the application area of %s (0x%x..0x%x, "
                "%u bytes)\n",
                image_path, len == 0 ? "an empty image" : "the image", l->name,
                (unsigned)l->app_start, (unsigned)l->fs_start, (unsigned)cap);
        free(img);
        return 1;
    }
    /* not under a running device: the chip would change under its firmware */
    int lock = open(path, O_RDONLY | O_CLOEXEC);
    if (lock >= 0 && flock(lock, LOCK_EX | LOCK_NB) != 0) {
        fprintf(stderr, "lwip-boot: %s is in use by a running lwip-boot: stop it first\n", path);
        close(lock);
        free(img);
        return 1;
    }
    char err[300];
    ota_lwip_flash_t *f = malloc(sizeof *f);
    if (f == NULL || ota_flash_emu_create(path, l->flash_size, err, sizeof err) != 0 ||
        ota_lwip_flash_open(f, path, err, sizeof err) != 0 ||
        ota_lwip_flash_install(f, img, (uint32_t)len, err, sizeof err) != 0) {
        fprintf(stderr, "lwip-boot: %s\n", f == NULL ? "out of memory" : err);
        if (lock >= 0)
            close(lock);
        free(img);
        free(f);
        return 1;
    }
    uint32_t max = ota_lwip_layout_max_update(l, (uint32_t)len);
    ota_lwip_flash_close(f);
    if (lock >= 0)
        close(lock);
    say("%s: layout %s (%s), application %zu bytes at 0x%06x; updates of up to %u bytes fit "
        "next to it",
        path, l->name, l->ld, len, (unsigned)l->app_start, (unsigned)max);
    free(img);
    free(f);
    return 0;
}

/* ------------------------------------------------------------------ status */

static int cmd_status(const char *path)
{
    static ota_lwip_flash_t f;
    if (open_flash(&f, path) != 0)
        return 1;
    const ota_lwip_layout_t *l = f.layout;
    ota_lwip_record_t rec;
    bool have = ota_lwip_record_load(&f, &rec) == 0;
    char active[65] = "", want[65] = "", copy_sha[65] = "";
    bool intact = false;
    if (have && rec.app_size > 0 && rec.app_size <= l->fs_start - l->app_start) {
        uint8_t sha[32];
        if (ota_lwip_flash_hash(&f, l->app_start, rec.app_size, sha) == 0) {
            hex(sha, 32, active);
            intact = memcmp(sha, rec.app_sha256, 32) == 0;
        }
    }
    hex(rec.app_sha256, 32, want);
    hex(rec.copy.sha256, 32, copy_sha);
    uint32_t max = ota_lwip_layout_max_update(l, rec.app_size);
    printf("{\"layout\": \"%s\", \"ld\": \"%s\", \"flash_size\": %u, \"boot_record\": %s, "
           "\"record_seq\": %u, \"app_start\": %u, \"app_size\": %u, ",
           l->name, l->ld, (unsigned)l->flash_size, have ? "true" : "false",
           (unsigned)rec.seq, (unsigned)l->app_start, (unsigned)rec.app_size);
    if (active[0] != '\0')
        printf("\"active_sha256\": \"%s\", ", active);
    else
        printf("\"active_sha256\": null, ");
    printf("\"recorded_sha256\": \"%s\", \"app_intact\": %s, \"boot_attempts\": %u, "
           "\"safe_mode\": %s, \"safe_mode_request\": %s, \"pending\": %s, "
           "\"min_secure_version\": %u, \"pending_copy\": %s, ",
           want, intact ? "true" : "false", (unsigned)rec.boot.boot_attempts,
           rec.boot.safe_mode ? "true" : "false", rec.boot.safe_mode_request ? "true" : "false",
           rec.boot.pending ? "true" : "false", (unsigned)rec.boot.min_secure_version,
           rec.copy.pending ? "true" : "false");
    if (rec.copy.pending)
        printf("\"copy\": {\"src\": %u, \"dst\": %u, \"size\": %u, \"sha256\": \"%s\"}, ",
               (unsigned)rec.copy.src, (unsigned)rec.copy.dst, (unsigned)rec.copy.size, copy_sha);
    else
        printf("\"copy\": null, ");
    /* the update area: the pending one, or where the largest image that fits would go */
    uint32_t start = rec.copy.pending ? rec.copy.src : l->fs_start - max;
    printf("\"update_area\": {\"start\": %u, \"end\": %u, \"max_image_size\": %u}, "
           "\"fs\": {\"start\": %u, \"end\": %u}, \"bootrec\": [%u, %u], "
           "\"flash_erases\": %llu}\n",
           (unsigned)start, (unsigned)l->fs_start, (unsigned)max, (unsigned)l->fs_start,
           (unsigned)l->fs_end, (unsigned)l->bootrec[0], (unsigned)l->bootrec[1],
           (unsigned long long)f.emu.erases);
    ota_lwip_flash_close(&f);
    return 0;
}

/* ------------------------------------------------------------------ boot stage */

/* The boot stage; 0 = bootable, EXIT_NO_BOOT, EXIT_CUT (a test's injected cut). */
static int boot_stage(ota_lwip_flash_t *f, uint32_t cut_after, ota_lwip_eboot_result_t *res)
{
    char err[300];
    if (cut_after > 0)
        ota_flash_emu_cut_after(&f->emu, cut_after);
    if (ota_lwip_eboot(f, res, err, sizeof err) != 0) {
        if (f->emu.power_lost) {
            say("boot stage: power cut (test option --cut-after-ops %u): %s", (unsigned)cut_after,
                err);
            return EXIT_CUT;
        }
        say("boot stage: %s", err);
        return EXIT_NO_BOOT;
    }
    char sha[65];
    hex(res->app_sha256, 32, sha);
    if (res->copied)
        say("boot stage: update copied over the application (%u sectors copied, %u already "
            "in place)",
            (unsigned)res->sectors_copied, (unsigned)res->sectors_skipped);
    if (res->dropped)
        say("boot stage: the pending update was no longer whole: dropped");
    say("boot stage: application %u bytes, sha256 %s", (unsigned)res->app_size, sha);
    return 0;
}

static int cmd_boot(const char *path, uint32_t cut_after)
{
    static ota_lwip_flash_t f;
    if (open_flash(&f, path) != 0)
        return 1;
    ota_lwip_eboot_result_t res;
    int rc = boot_stage(&f, cut_after, &res);
    ota_lwip_flash_close(&f);
    return rc;
}

/* ------------------------------------------------------------------ run */

static volatile sig_atomic_t stop_signal = 0;

static void on_stop(int sig)
{
    stop_signal = sig;
}

static void nap_ms(unsigned ms)
{
    struct timespec ts = {.tv_sec = ms / 1000u, .tv_nsec = (long)(ms % 1000u) * 1000000L};
    while (!stop_signal && nanosleep(&ts, &ts) != 0 && errno == EINTR) {
    }
}

static uint64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

/* Copy the application out of the flash into a fresh executable temp file. */
static int extract_app(ota_lwip_flash_t *f, uint32_t size, char *out, size_t out_len)
{
    const char *tmp = getenv("TMPDIR");
    snprintf(out, out_len, "%s/lwip-app-XXXXXX", tmp != NULL && tmp[0] != '\0' ? tmp : "/tmp");
    int fd = mkostemp(out, O_CLOEXEC);
    if (fd < 0) {
        say("cannot create a temporary file for the application (%s): %s", out, strerror(errno));
        return -1;
    }
    uint8_t buf[OTA_LWIP_SECTOR];
    for (uint32_t off = 0; off < size;) {
        uint32_t n = size - off < sizeof buf ? size - off : (uint32_t)sizeof buf;
        if (ota_flash_emu_read(&f->emu, f->layout->app_start + off, buf, n) != 0 ||
            write(fd, buf, n) != (ssize_t)n) {
            say("writing %s failed", out);
            close(fd);
            unlink(out);
            return -1;
        }
        off += n;
    }
    if (fchmod(fd, 0700) != 0 || close(fd) != 0) {
        say("cannot make %s executable: %s", out, strerror(errno));
        unlink(out);
        return -1;
    }
    return 0;
}

static int cmd_run(const char *path, const char *tap, bool restart_on_crash, unsigned delay_ms,
                   int nargs, char **args)
{
    /* one lwip-boot per flash file (the firmware itself opens it without the lock) */
    int lock = open(path, O_RDONLY | O_CLOEXEC);
    if (lock < 0) {
        fprintf(stderr, "lwip-boot: cannot open the flash file %s: %s\n", path, strerror(errno));
        return 1;
    }
    if (flock(lock, LOCK_EX | LOCK_NB) != 0) {
        fprintf(stderr, "lwip-boot: %s is in use by another lwip-boot run\n", path);
        close(lock);
        return 1;
    }
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_stop;
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGHUP, &sa, NULL);
    static ota_lwip_flash_t f;
    unsigned boots = 0;
    while (!stop_signal) {
        if (open_flash(&f, path) != 0)
            return 1;
        ota_lwip_eboot_result_t res;
        int rc = boot_stage(&f, 0, &res);
        char app[4200];
        if (rc == 0 && extract_app(&f, res.app_size, app, sizeof app) != 0)
            rc = 1;
        ota_lwip_flash_close(&f);
        if (rc != 0)
            return rc;
        boots++;
        say("boot %u: starting the application (%s)", boots, app);
        fflush(NULL);
        uint64_t started = now_ms();
        pid_t parent = getpid();
        pid_t pid = fork();
        if (pid < 0) {
            say("fork: %s", strerror(errno));
            unlink(app);
            return 1;
        }
        if (pid == 0) {
            signal(SIGINT, SIG_DFL);
            signal(SIGTERM, SIG_DFL);
            signal(SIGHUP, SIG_DFL);
            /* never an orphan: if lwip-boot dies the firmware gets SIGTERM */
            if (prctl(PR_SET_PDEATHSIG, SIGTERM) != 0 || getppid() != parent)
                _exit(127);
            char **argv = calloc((size_t)nargs + 6, sizeof *argv);
            if (argv == NULL)
                _exit(127);
            int k = 0;
            argv[k++] = app;
            argv[k++] = "--flash";
            argv[k++] = (char *)path;
            if (tap != NULL) {
                argv[k++] = "--tap";
                argv[k++] = (char *)tap;
            }
            for (int i = 0; i < nargs; i++)
                argv[k++] = args[i];
            execv(app, argv);
            fprintf(stderr, "[lwip-boot] cannot execute the application %s: %s\n", app,
                    strerror(errno));
            _exit(127);
        }
        int status = 0;
        bool signalled = false;
        uint64_t kill_at = 0;
        for (;;) {
            pid_t r = waitpid(pid, &status, WNOHANG);
            if (r == pid)
                break;
            if (r < 0 && errno != EINTR) {
                say("waitpid: %s", strerror(errno));
                unlink(app);
                return 1;
            }
            if (stop_signal && !signalled) {
                kill(pid, SIGTERM);
                signalled = true;
                kill_at = now_ms() + 5000;
            }
            if (signalled && now_ms() >= kill_at) {
                say("the firmware did not stop within 5 s; killing it");
                kill(pid, SIGKILL);
                kill_at = UINT64_MAX;
            }
            struct timespec ts = {0, 10 * 1000000L};
            nanosleep(&ts, NULL);
        }
        unlink(app);
        if (stop_signal) {
            say("stopped");
            return 0;
        }
        if (WIFEXITED(status) && WEXITSTATUS(status) == EXIT_REBOOT) {
            say("the firmware requested a reboot");
            continue;
        }
        int code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
        if (WIFEXITED(status))
            say("the firmware exited with status %d", code);
        else
            say("the firmware crashed (signal %d, %s)", WTERMSIG(status),
                strsignal(WTERMSIG(status)));
        if (!restart_on_crash)
            return code;
        (void)started;
        say("restarting in %u ms (--restart-on-crash)", delay_ms);
        nap_ms(delay_ms);
    }
    return 0;
}

/* ------------------------------------------------------------------ main */

static bool parse_u32(const char *s, uint32_t *out)
{
    char *end;
    errno = 0;
    unsigned long v = strtoul(s, &end, 10);
    if (errno != 0 || end == s || *end != '\0' || v > UINT32_MAX || s[0] == '-')
        return false;
    *out = (uint32_t)v;
    return true;
}

int main(int argc, char **argv)
{
    if (argc < 2 || strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0) {
        fputs(usage_text, argc < 2 ? stderr : stdout);
        return argc < 2 ? 2 : 0;
    }
    const char *cmd = argv[1];
    const char *help = command_help(cmd);
    if (help == NULL)
        return usage_error("unknown command '%s'", cmd);
    enum { O_FLASH = 1, O_LAYOUT, O_TAP, O_RESTART, O_DELAY, O_CUT, O_HELP };
    static const struct option opts[] = {
        {"flash", required_argument, NULL, O_FLASH},
        {"layout", required_argument, NULL, O_LAYOUT},
        {"tap", required_argument, NULL, O_TAP},
        {"restart-on-crash", no_argument, NULL, O_RESTART},
        {"restart-delay-ms", required_argument, NULL, O_DELAY},
        {"cut-after-ops", required_argument, NULL, O_CUT},
        {"help", no_argument, NULL, O_HELP},
        {NULL, 0, NULL, 0},
    };
    const char *flash = NULL, *layout = NULL, *tap = NULL;
    bool restart = false;
    uint32_t delay = 500, cut = 0;
    bool is_run = strcmp(cmd, "run") == 0;
    optind = 2;
    opterr = 0;
    int c;
    /* '+': stop at the first non-option, so the firmware's arguments after -- (or
     * IMAGE) are left alone */
    while ((c = getopt_long(argc, argv, "+:", opts, NULL)) != -1) {
        switch (c) {
        case O_HELP: fputs(help, stdout); return 0;
        case O_FLASH: flash = optarg; break;
        case O_LAYOUT:
            if (strcmp(cmd, "flash") != 0)
                return usage_error("--layout is an option of 'flash'");
            layout = optarg;
            break;
        case O_TAP:
        case O_RESTART:
        case O_DELAY:
            if (!is_run)
                return usage_error("--%s is an option of 'run'",
                                   c == O_TAP ? "tap" : c == O_RESTART ? "restart-on-crash"
                                                                        : "restart-delay-ms");
            if (c == O_TAP)
                tap = optarg;
            else if (c == O_RESTART)
                restart = true;
            else if (!parse_u32(optarg, &delay))
                return usage_error("'%s' is not a valid number", optarg);
            break;
        case O_CUT:
            if (strcmp(cmd, "boot") != 0)
                return usage_error("--cut-after-ops is an option of 'boot' (for tests)");
            if (!parse_u32(optarg, &cut) || cut == 0)
                return usage_error("--cut-after-ops needs a number >= 1");
            break;
        case ':': return usage_error("%s needs a value", argv[optind - 1]);
        default: return usage_error("unknown option '%s' for '%s'", argv[optind - 1], cmd);
        }
    }
    if (flash == NULL)
        return usage_error("'%s' needs --flash FILE", cmd);
    if (strcmp(cmd, "flash") == 0) {
        if (layout == NULL)
            return usage_error("'flash' needs --layout esp8266-4m|esp8266-1m");
        if (argc - optind != 1)
            return usage_error("'flash' needs exactly one IMAGE");
        return cmd_flash(flash, layout, argv[optind]);
    }
    if (is_run) {
        /* getopt has consumed a "--" already; anything else left is a mistake */
        int first = optind;
        bool dashdash = first > 2 && strcmp(argv[first - 1], "--") == 0;
        if (first < argc && !dashdash)
            return usage_error("the firmware's arguments come after '--' (got '%s')",
                               argv[first]);
        return cmd_run(flash, tap, restart, delay, argc - first, argv + first);
    }
    if (optind < argc)
        return usage_error("unexpected argument '%s'", argv[optind]);
    if (strcmp(cmd, "status") == 0)
        return cmd_status(flash);
    return cmd_boot(flash, cut);
}
