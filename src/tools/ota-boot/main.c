/*
 * ota-boot - the bootloader of a Linux node. A state directory holds slot A, slot B
 * and the boot state (src/port/posix/bootstate.h); ota-boot installs an image
 * ("serial flash"), shows the state, and runs the node: it boots the active slot,
 * boots again when the firmware asks to after an update, restarts a firmware that
 * exits or crashes, and rolls an unconfirmed image back to the confirmed one when
 * it keeps failing. With trusted keys in DIR (flash --trust-key, kept like eFuses) it
 * boots only slots signed by one of them: secure boot (secure_boot.h).
 *
 *   ota-boot flash --state DIR [--trust-key PEM]... IMAGE
 *   ota-boot run --state DIR [--rollback-after N] [--restart-delay-ms MS] [-- ARGS...]
 *   ota-boot status --state DIR
 *   ota-boot safe-mode --state DIR
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <mbedtls/sha256.h>

#include "bootstate.h"
#include "ota_posix.h"
#include "secure_boot.h"

#ifndef OTA_VERSION
#define OTA_VERSION "unknown"
#endif

#define EXIT_USAGE 2
#define EXIT_SECURE_BOOT 3 /* run: secure boot found no slot it may boot */

static void say(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void say(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fputs("[ota-boot] ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
}

static const char usage_text[] =
    "usage: ota-boot COMMAND --state DIR [options]\n"
    "\n"
    "The bootloader of a Linux OTA node: slot A, slot B and the boot state live in DIR.\n"
    "\n"
    "commands:\n"
    "  flash --state DIR IMAGE   install IMAGE into slot A, make it active, reset the boot\n"
    "                            state (the 'serial flash' of a new node; creates DIR)\n"
    "      --trust-key PEM       secure boot: trust this RSA-3072 or P-256 key (public or\n"
    "                            private PEM; 1 to 3 times); stored in DIR like eFuses,\n"
    "                            from then on only images signed by one of them boot\n"
    "  run --state DIR [-- ARGS] boot the active slot with ARGS; boot the new slot after\n"
    "                            an update, restart the firmware if it exits or crashes,\n"
    "                            roll back an unconfirmed image that keeps failing;\n"
    "                            Ctrl-C / SIGTERM stops the firmware and exits 0; one\n"
    "                            run per DIR (it holds DIR/run.lock; flash waits for it);\n"
    "                            with secure boot, a slot whose signature does not verify\n"
    "                            is not booted (the other one is, or exit 3)\n"
    "      --rollback-after N    failed boots of an unconfirmed image before rolling\n"
    "                            back to the confirmed slot (default 3)\n"
    "      --restart-delay-ms MS first delay before restarting a failed firmware\n"
    "                            (default 1000, doubling to 10x while it keeps failing)\n"
    "  status --state DIR        print the boot state as one JSON object\n"
    "  safe-mode --state DIR     make the next boot a safe-mode boot\n"
    "  --version                 the version of this build\n"
    "\n"
    "Run 'ota-boot COMMAND --help' for one command.\n";

static int usage_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static int usage_error(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fputs("ota-boot: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputs("\nRun 'ota-boot --help' for usage.\n", stderr);
    va_end(ap);
    return EXIT_USAGE;
}

static int sha256_file(const char *path, char hex[65], long long *size)
{
    FILE *f = fopen(path, "rb");
    if (f == NULL)
        return -1;
    mbedtls_sha256_context c;
    mbedtls_sha256_init(&c);
    mbedtls_sha256_starts_ret(&c, 0);
    unsigned char buf[65536], dig[32];
    size_t n;
    long long total = 0;
    while ((n = fread(buf, 1, sizeof buf, f)) > 0) {
        mbedtls_sha256_update_ret(&c, buf, n);
        total += (long long)n;
    }
    int bad = ferror(f);
    fclose(f);
    mbedtls_sha256_finish_ret(&c, dig);
    mbedtls_sha256_free(&c);
    if (bad)
        return -1;
    for (int i = 0; i < 32; i++)
        snprintf(hex + 2 * i, 3, "%02x", dig[i]);
    if (size)
        *size = total;
    return 0;
}

/* ------------------------------------------------------------------ flash */

static int copy_file(const char *src, const char *dst_tmp)
{
    int in = open(src, O_RDONLY | O_CLOEXEC);
    if (in < 0)
        return -1;
    int out = open(dst_tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0700);
    if (out < 0) {
        close(in);
        return -1;
    }
    char buf[65536];
    ssize_t n;
    int rc = 0;
    while ((n = read(in, buf, sizeof buf)) != 0) {
        if (n < 0) {
            if (errno == EINTR)
                continue;
            rc = -1;
            break;
        }
        for (ssize_t off = 0; off < n;) {
            ssize_t w = write(out, buf + off, (size_t)(n - off));
            if (w < 0) {
                if (errno == EINTR)
                    continue;
                rc = -1;
                break;
            }
            off += w;
        }
        if (rc)
            break;
    }
    if (rc == 0 && (fchmod(out, 0700) != 0 || fsync(out) != 0))
        rc = -1;
    int e = errno;
    close(in);
    close(out);
    errno = e;
    return rc;
}

/* ------------------------------------------------------------------ lock
 * DIR/run.lock is held (flock) by the 'ota-boot run' of that node for as long as it
 * runs, with its pid inside. A second run, or a flash / safe-mode request while the
 * node runs, is refused instead of fighting over the slots and the boot state. The
 * kernel drops the lock when the process dies, however it dies. */

/* Take the lock of dir; -1 when another ota-boot holds it (the message says who and
 * what to do), -2 when the lock file cannot be opened. The fd stays open (held). */
static int lock_state(const char *dir, const char *what)
{
    char path[4200];
    snprintf(path, sizeof path, "%s/run.lock", dir);
    int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (fd < 0) {
        fprintf(stderr, "ota-boot: %s: %s\n", path, strerror(errno));
        return -2;
    }
    if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
        char pid[32] = "";
        ssize_t n = pread(fd, pid, sizeof pid - 1, 0);
        pid[n > 0 ? n : 0] = '\0';
        pid[strcspn(pid, "\n")] = '\0';
        fprintf(stderr,
                "ota-boot: the node in %s is running ('ota-boot run'%s%s): it cannot %s now; "
                "stop it first (Ctrl-C in its terminal%s%s)\n",
                dir, pid[0] ? ", pid " : "", pid, what, pid[0] ? ", or kill " : "", pid);
        close(fd);
        return -1;
    }
    return fd;
}

/* "1a2b3c4d5e6f7081, 99aa..." : the short digests of keys, for messages */
static void keys_list(const sb_keys_t *keys, char *out, size_t cap)
{
    out[0] = '\0';
    size_t len = 0;
    for (size_t i = 0; i < keys->n && len < cap; i++) {
        char hex[65];
        sb_hex(keys->digest[i], true, hex);
        int n = snprintf(out + len, cap - len, "%s%s", i ? ", " : "", hex);
        if (n < 0)
            break;
        len += (size_t)n;
    }
}

/* The reason a slot or image fails the check, with the key it names. */
static void report_why(const sb_report_t *r, char *out, size_t cap)
{
    char hex[65];
    if (r->have_key && r->rc == OTA_ERR_UNTRUSTED_KEY) {
        sb_hex(r->key, true, hex);
        snprintf(out, cap, "%s (key digest %s)", r->why, hex);
    } else if (r->sig == SB_SIG_NONE && r->size % OTA_SIG_SECTOR_SIZE != 0) {
        snprintf(out, cap, "%s (%lld bytes: a signed image is a multiple of 4096)", r->why,
                 r->size);
    } else {
        snprintf(out, cap, "%s", r->why);
    }
}

static int cmd_flash(const char *dir, const char *image, char *const *key_paths, int n_key_paths)
{
    struct stat isb;
    if (stat(image, &isb) != 0) {
        fprintf(stderr, "ota-boot: %s: %s\n", image, strerror(errno));
        return 1;
    }
    if (!ota_bootstate_image_ok(image)) {
        fprintf(stderr, "ota-boot: %s is not an executable for this machine (an ELF binary "
                        "such as build/bin/demo-node)\n", image);
        return 1;
    }
    /* the keys first: a wrong path fails before anything is created */
    sb_keys_t given;
    memset(&given, 0, sizeof given);
    for (int i = 0; i < n_key_paths; i++) {
        uint8_t d[OTA_SIG_DIGEST_LEN];
        char err[300];
        if (ota_posix_key_digest_from_pem(key_paths[i], d, err, sizeof err) != 0) {
            fprintf(stderr, "ota-boot: --trust-key %s: %s\n", key_paths[i], err);
            return 1;
        }
        sb_keys_add(&given, d); /* main() allows at most SB_MAX_KEYS; duplicates count once */
    }
    /* owner-only: the slots hold the firmware (and its verifier), the state its history */
    if (mkdir(dir, 0700) != 0) {
        struct stat sb;
        if (errno != EEXIST || stat(dir, &sb) != 0 || !S_ISDIR(sb.st_mode)) {
            fprintf(stderr, "ota-boot: cannot create %s: %s\n", dir,
                    errno == EEXIST ? "it exists and is not a directory" : strerror(errno));
            return 1;
        }
        if ((sb.st_mode & 077) != 0)
            fprintf(stderr, "ota-boot: warning: %s is readable by others (mode %03o); "
                            "the slots in it are not (chmod 700 %s to hide their names too)\n",
                    dir, (unsigned)(sb.st_mode & 0777), dir);
    }
    int lock = lock_state(dir, "be flashed");
    if (lock < 0)
        return 1;
    /* the keys of the node: burnt in by an earlier flash, or the ones given now */
    sb_keys_t burnt;
    char why[4400], list[200];
    sb_keys_source_t src = sb_keys_load(dir, &burnt, why, sizeof why);
    if (src == SB_KEYS_DAMAGED) {
        fprintf(stderr, "ota-boot: secure boot: %s; the trusted keys are burnt in: make a new "
                        "state directory\n", why);
        return 1;
    }
    const sb_keys_t *keys = NULL;
    bool new_keys = false;
    if (src == SB_KEYS_OK) {
        if (n_key_paths > 0 && !sb_keys_equal(&given, &burnt)) {
            keys_list(&burnt, list, sizeof list);
            fprintf(stderr, "ota-boot: %s already trusts other keys (key digests %s): the "
                            "trusted keys are burnt in: make a new state directory\n",
                    dir, list);
            return 1;
        }
        keys = &burnt;
    } else if (n_key_paths > 0) {
        keys = &given;
        new_keys = true;
    }
    char slot[4096], tmp[4200], old_state[4200];
    ota_bootstate_slot_path(dir, 'a', slot, sizeof slot);
    snprintf(tmp, sizeof tmp, "%s.tmp", slot);
    if (copy_file(image, tmp) != 0) {
        fprintf(stderr, "ota-boot: cannot install %s into %s: %s\n", image, slot,
                strerror(errno));
        unlink(tmp);
        return 1;
    }
    /* secure boot: the copy is what gets checked (and what boots) */
    sb_report_t rep;
    if (keys != NULL) {
        if (sb_check_file(tmp, keys, &rep) != 0 || rep.sig != SB_SIG_VALID) {
            char reason[300];
            report_why(&rep, reason, sizeof reason);
            keys_list(keys, list, sizeof list);
            fprintf(stderr, "ota-boot: secure boot: refusing %s: %s; %s boots only images "
                            "signed by %s (key digest%s %s)\n",
                    image, reason, dir, keys->n > 1 ? "one of its trusted keys" : "its trusted key",
                    keys->n > 1 ? "s" : "", list);
            unlink(tmp);
            return 1;
        }
        if (new_keys && sb_keys_store(dir, keys) != 0) {
            fprintf(stderr, "ota-boot: cannot write %s/%s: %s\n", dir, SB_KEYS_FILE,
                    strerror(errno));
            unlink(tmp);
            return 1;
        }
    }
    if (rename(tmp, slot) != 0) {
        fprintf(stderr, "ota-boot: cannot install %s into %s: %s\n", image, slot,
                strerror(errno));
        unlink(tmp);
        return 1;
    }
    /* a reset: no earlier generation may survive as boot.state.prev (a fallback to
     * it could boot an old image from slot b) */
    /* ... except the anti-rollback minimum, which only ever rises (like an eFuse) */
    ota_bootstate_t st, before;
    char ignored[300];
    ota_bootstate_load(dir, &before, ignored, sizeof ignored);
    snprintf(old_state, sizeof old_state, "%s/boot.state.prev", dir);
    unlink(old_state);
    snprintf(old_state, sizeof old_state, "%s/boot.state", dir);
    unlink(old_state);
    ota_bootstate_default(&st);
    st.min_secure_version = before.min_secure_version;
    if (ota_bootstate_store(dir, &st) != 0) {
        fprintf(stderr, "ota-boot: cannot write the boot state in %s: %s\n", dir,
                strerror(errno));
        return 1;
    }
    char hex[65];
    long long size = 0;
    sha256_file(slot, hex, &size);
    printf("flashed %s into slot a of %s (%lld bytes, sha256 %s); slot a is active\n", image,
           dir, size, hex);
    if (keys != NULL) {
        keys_list(keys, list, sizeof list);
        char signer[65];
        sb_hex(rep.key, true, signer);
        printf("secure boot: on, %s %zu trusted key%s (key digest%s %s); slot a is signed by "
               "key %s\n", new_keys ? "burnt in" : "keeping the", keys->n,
               keys->n > 1 ? "s" : "", keys->n > 1 ? "s" : "", list, signer);
    }
    close(lock);
    return 0;
}

/* ----------------------------------------------------------------- status */

/* One slot of the status: keys NULL when secure boot is off (the signature is then
 * checked against the image's own key: intact and signed, by a key not yet trusted). */
static void json_slot(const char *dir, char slot, const sb_keys_t *keys, bool last)
{
    char path[4096];
    sb_report_t r;
    ota_bootstate_slot_path(dir, slot, path, sizeof path);
    if (sb_check_file(path, keys, &r) == 0 && r.sha256[0] != '\0') {
        char signer[65] = "";
        if (r.sig == SB_SIG_VALID)
            sb_hex(r.key, false, signer);
        /* security_version: of its image descriptor (esp_app_desc_t), 0 without one */
        printf("    \"%c\": {\"present\": true, \"size\": %lld, \"sha256\": \"%s\", "
               "\"bootable\": %s, \"signature\": \"%s\", \"signed_by\": %s%s%s, "
               "\"security_version\": %lu}%s\n",
               slot, r.size, r.sha256, ota_bootstate_image_ok(path) ? "true" : "false",
               sb_sig_name(r.sig), signer[0] ? "\"" : "", signer[0] ? signer : "null",
               signer[0] ? "\"" : "", (unsigned long)r.security_version, last ? "" : ",");
    } else {
        printf("    \"%c\": {\"present\": false, \"signature\": \"none\", \"signed_by\": null, "
               "\"security_version\": null}%s\n", slot, last ? "" : ",");
    }
}

static int cmd_status(const char *dir)
{
    struct stat sb;
    if (stat(dir, &sb) != 0 || !S_ISDIR(sb.st_mode)) {
        fprintf(stderr, "ota-boot: %s is not a node state directory (create one with "
                        "'ota-boot flash --state %s IMAGE')\n", dir, dir);
        return 1;
    }
    ota_bootstate_t st;
    char why[300] = "", keys_why[4400] = "";
    bool fallback = ota_bootstate_load(dir, &st, why, sizeof why) == OTA_BOOTSTATE_FALLBACK;
    sb_keys_t keys;
    sb_keys_source_t ks = sb_keys_load(dir, &keys, keys_why, sizeof keys_why);
    char path[4096], hex[65] = "";
    ota_bootstate_slot_path(dir, st.active, path, sizeof path);
    bool have = sha256_file(path, hex, NULL) == 0;
    printf("{\n");
    printf("  \"active_slot\": \"%c\",\n", st.active);
    if (have)
        printf("  \"active_sha256\": \"%s\",\n", hex);
    else
        printf("  \"active_sha256\": null,\n");
    printf("  \"confirmed_slot\": \"%c\",\n", st.confirmed);
    printf("  \"pending\": %s,\n", st.pending ? "true" : "false");
    printf("  \"pending_boots\": %u,\n", st.pending_boots);
    printf("  \"boot_attempts\": %u,\n", st.boot_attempts);
    printf("  \"safe_mode\": %s,\n", st.safe_mode ? "true" : "false");
    printf("  \"safe_mode_request\": %s,\n", st.safe_mode_request ? "true" : "false");
    printf("  \"state_file\": \"%s\",\n", fallback ? "fallback" : "ok");
    /* a damaged key file still means secure boot: nothing verifies, nothing boots */
    printf("  \"secure_boot\": %s,\n", ks == SB_KEYS_NONE ? "false" : "true");
    printf("  \"trusted_keys\": [");
    for (size_t i = 0; i < keys.n; i++) {
        sb_hex(keys.digest[i], false, hex);
        printf("%s\"%s\"", i ? ", " : "", hex);
    }
    printf("],\n");
    /* anti-rollback: raised by the firmware when an image is confirmed */
    printf("  \"min_security_version\": %lu,\n", (unsigned long)st.min_secure_version);
    printf("  \"slots\": {\n");
    json_slot(dir, 'a', ks == SB_KEYS_NONE ? NULL : &keys, false);
    json_slot(dir, 'b', ks == SB_KEYS_NONE ? NULL : &keys, true);
    printf("  }\n}\n");
    if (fallback)
        say("%s", why);
    if (ks == SB_KEYS_DAMAGED)
        say("secure boot: %s: no slot can boot", keys_why);
    return 0;
}

static int cmd_safe_mode(const char *dir)
{
    ota_bootstate_t st;
    char why[300];
    struct stat sb;
    if (stat(dir, &sb) != 0 || !S_ISDIR(sb.st_mode)) {
        fprintf(stderr, "ota-boot: state directory %s: %s (create it with 'ota-boot flash "
                        "--state %s IMAGE')\n", dir, strerror(errno ? errno : ENOTDIR), dir);
        return 1;
    }
    /* allowed while the node runs: it is read at the next boot (the reboot that follows) */
    if (ota_bootstate_load(dir, &st, why, sizeof why) == OTA_BOOTSTATE_FALLBACK)
        say("%s", why);
    st.safe_mode_request = true;
    if (ota_bootstate_store(dir, &st) != 0) {
        fprintf(stderr, "ota-boot: cannot write the boot state in %s: %s\n", dir,
                strerror(errno));
        return 1;
    }
    printf("the next boot of %s is a safe-mode boot\n", dir);
    return 0;
}

/* -------------------------------------------------------------------- run */

static volatile sig_atomic_t stop_signal = 0;

static void on_stop(int sig)
{
    stop_signal = sig;
}

static uint64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

/* Sleep ms, returning early when a stop signal arrives. */
static void nap(unsigned ms)
{
    uint64_t end = now_ms() + ms;
    while (!stop_signal && now_ms() < end) {
        struct timespec ts = {0, 20 * 1000000L};
        nanosleep(&ts, NULL);
    }
}

/* Can slot boot? NULL if so, else why not (in buf, or a constant). With keys (secure
 * boot) its signature must verify too; *r tells what was checked. */
static const char *slot_problem(const char *dir, char slot, const sb_keys_t *keys,
                                uint32_t min_secure_version, sb_report_t *r, bool *signature,
                                char *buf, size_t cap)
{
    char path[4096];
    *signature = false;
    memset(r, 0, sizeof *r);
    ota_bootstate_slot_path(dir, slot, path, sizeof path);
    if (!ota_bootstate_image_ok(path))
        return "holds no bootable image";
    /* one read of the file: its descriptor, and with keys (secure boot) its signature */
    if (sb_check_file(path, keys, r) != 0) {
        snprintf(buf, cap, "cannot be checked: %s", strerror(errno));
        *signature = keys != NULL;
        return buf;
    }
    /* anti-rollback at boot too: an image below the minimum does not run */
    if (r->security_version < min_secure_version) {
        snprintf(buf, cap, "has security version %lu, below the minimum %lu (anti-rollback)",
                 (unsigned long)r->security_version, (unsigned long)min_secure_version);
        return buf;
    }
    if (keys == NULL || r->sig == SB_SIG_VALID)
        return NULL;
    *signature = true;
    report_why(r, buf, cap);
    return buf;
}

/* Decide the slot of this boot (fallback, rollback); returns 'a'/'b', or 0 with the
 * exit status in *exit_code (1: no image, EXIT_SECURE_BOOT: none that verifies).
 * *checked is what secure boot checked of the slot (for sb_same_file before exec). */
static char choose_slot(const char *dir, unsigned rollback_after, const sb_keys_t *keys,
                        sb_report_t *checked, int *exit_code)
{
    ota_bootstate_t st;
    char why[300];
    bool changed = false;
    *exit_code = 1;
    if (ota_bootstate_load(dir, &st, why, sizeof why) == OTA_BOOTSTATE_FALLBACK) {
        say("%s", why);
        changed = true; /* rewrite a valid state */
    }
    if (st.pending && st.pending_boots >= rollback_after && st.confirmed != st.active) {
        say("slot %c was booted %u times without confirming itself: rolling back to slot %c",
            st.active, st.pending_boots, st.confirmed);
        st.active = st.confirmed;
        st.pending = false;
        st.pending_boots = 0;
        st.boot_attempts = 0;
        changed = true;
    }
    char buf_a[400], buf_o[400], path[4096];
    bool sig_a = false, sig_o = false;
    const char *prob = slot_problem(dir, st.active, keys, st.min_secure_version, checked, &sig_a, buf_a,
                                    sizeof buf_a);
    if (prob != NULL) {
        char other = st.active == 'a' ? 'b' : 'a';
        ota_bootstate_slot_path(dir, st.active, path, sizeof path);
        if (sig_a)
            say("secure boot: slot %c (%s): %s: not booting it", st.active, path, prob);
        const char *prob_o = slot_problem(dir, other, keys, st.min_secure_version, checked, &sig_o,
                                          buf_o, sizeof buf_o);
        if (prob_o != NULL) {
            if (sig_a || sig_o) {
                say("secure boot: refusing to boot: slot %c: %s; slot %c: %s; flash an image "
                    "signed by a trusted key with 'ota-boot flash --state %s IMAGE'",
                    st.active, prob, other, prob_o, dir);
                *exit_code = EXIT_SECURE_BOOT;
                return 0;
            }
            say("no bootable image in %s (slot %c %s; slot %c %s); flash one with 'ota-boot "
                "flash --state %s IMAGE'", dir, st.active, prob, other, prob_o, dir);
            return 0;
        }
        if (sig_a)
            say("secure boot: booting slot %c instead (its signature is valid)", other);
        else
            say("slot %c %s; booting slot %c", st.active, prob, other);
        /* what a rollback records: the slot that boots is the one to come back to */
        st.active = st.confirmed = other;
        st.pending = false;
        st.pending_boots = 0;
        changed = true;
    }
    if (keys != NULL) {
        char signer[65];
        sb_hex(checked->key, true, signer);
        say("secure boot: slot %c signature valid (key %d of %zu, digest %s)", st.active,
            checked->trusted + 1, keys->n, signer);
    }
    if (st.pending) {
        /* counted here, not by the image: one that crashes before it runs a line of
         * code is rolled back all the same */
        st.pending_boots++;
        changed = true;
    }
    if (changed && ota_bootstate_store(dir, &st) != 0)
        say("cannot write the boot state: %s (booting anyway)", strerror(errno));
    return st.active;
}

static int cmd_run(const char *dir, unsigned rollback_after, unsigned restart_delay_ms,
                   char **args, int nargs)
{
    char abs_dir[4096];
    if (realpath(dir, abs_dir) == NULL) {
        fprintf(stderr, "ota-boot: state directory %s: %s (create it with 'ota-boot flash "
                        "--state %s IMAGE')\n", dir, strerror(errno), dir);
        return 1;
    }
    int lock = lock_state(abs_dir, "be run twice");
    if (lock < 0)
        return 1;
    /* the trusted keys, read once: like eFuses they do not change while the node runs
     * (flash is refused then), and a file removed meanwhile does not turn secure boot
     * off. A damaged file fails closed. */
    sb_keys_t keys;
    char keys_why[4400];
    sb_keys_source_t ks = sb_keys_load(abs_dir, &keys, keys_why, sizeof keys_why);
    if (ks == SB_KEYS_DAMAGED) {
        say("secure boot: %s: refusing to boot anything (the trusted keys are burnt in: make "
            "a new state directory)", keys_why);
        return EXIT_SECURE_BOOT;
    }
    if (ks == SB_KEYS_OK) {
        char list[200];
        keys_list(&keys, list, sizeof list);
        say("secure boot: on, %zu trusted key%s (key digest%s %s)", keys.n,
            keys.n > 1 ? "s" : "", keys.n > 1 ? "s" : "", list);
    }
    char self[32];
    int plen = snprintf(self, sizeof self, "%ld\n", (long)getpid());
    if (ftruncate(lock, 0) != 0 || pwrite(lock, self, (size_t)plen, 0) != plen)
        say("cannot write the pid into %s/run.lock: %s", abs_dir, strerror(errno));
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_stop;
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGHUP, &sa, NULL);

    unsigned delay = restart_delay_ms;
    while (!stop_signal) {
        sb_report_t checked;
        int refused = 1;
        char slot = choose_slot(abs_dir, rollback_after, ks == SB_KEYS_OK ? &keys : NULL,
                                &checked, &refused);
        if (slot == 0)
            return refused;
        char path[4096];
        ota_bootstate_slot_path(abs_dir, slot, path, sizeof path);
        char slot_env[2] = {slot, '\0'};
        say("booting slot %c (%s)", slot, path);
        fflush(NULL);
        uint64_t started = now_ms();
        pid_t parent = getpid();
        pid_t pid = fork();
        if (pid < 0) {
            say("fork: %s", strerror(errno));
            return 1;
        }
        if (pid == 0) {
            signal(SIGINT, SIG_DFL);
            signal(SIGTERM, SIG_DFL);
            signal(SIGHUP, SIG_DFL);
            /* never an orphan: if ota-boot dies (even by SIGKILL) the firmware gets
             * SIGTERM; the getppid check covers a death before the prctl */
            if (prctl(PR_SET_PDEATHSIG, SIGTERM) != 0 || getppid() != parent)
                _exit(127);
            /* secure boot: the file that execs is the one that was checked, unchanged
             * (after the exec the kernel refuses writers: ETXTBSY) */
            if (ks == SB_KEYS_OK && !sb_same_file(path, &checked)) {
                fprintf(stderr, "[ota-boot] secure boot: %s changed after its signature "
                                "check: not booting it\n", path);
                _exit(127);
            }
            setenv("OTA_STATE_DIR", abs_dir, 1);
            setenv("OTA_BOOT_SLOT", slot_env, 1);
            char **argv = calloc((size_t)nargs + 2, sizeof *argv);
            if (argv == NULL)
                _exit(127);
            argv[0] = path;
            for (int i = 0; i < nargs; i++)
                argv[i + 1] = args[i];
            execv(path, argv);
            fprintf(stderr, "[ota-boot] cannot execute %s: %s\n", path, strerror(errno));
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
                return 1;
            }
            if (stop_signal && !signalled) {
                kill(pid, SIGTERM);
                signalled = true;
                kill_at = now_ms() + 5000;
            }
            if (signalled && now_ms() >= kill_at) {
                say("firmware did not stop within 5 s; killing it");
                kill(pid, SIGKILL);
                kill_at = UINT64_MAX;
            }
            struct timespec ts = {0, 10 * 1000000L};
            nanosleep(&ts, NULL);
        }
        if (stop_signal) {
            say("stopped");
            return 0;
        }
        if (WIFEXITED(status) && WEXITSTATUS(status) == OTA_POSIX_EXIT_REBOOT) {
            say("firmware requested a reboot");
            delay = restart_delay_ms;
            continue;
        }
        if (WIFEXITED(status))
            say("firmware exited with status %d", WEXITSTATUS(status));
        else if (WIFSIGNALED(status))
            say("firmware crashed (signal %d, %s)", WTERMSIG(status), strsignal(WTERMSIG(status)));
        if (now_ms() - started > 10000)
            delay = restart_delay_ms; /* it had been running fine */
        say("restarting in %u ms", delay);
        nap(delay);
        if (delay < restart_delay_ms * 10)
            delay *= 2;
        if (delay > restart_delay_ms * 10)
            delay = restart_delay_ms * 10;
    }
    say("stopped");
    return 0;
}

/* ------------------------------------------------------------------- main */

static const char *cmd_help(const char *cmd)
{
    if (strcmp(cmd, "flash") == 0)
        return "usage: ota-boot flash --state DIR [--trust-key PEM]... IMAGE\n"
               "Install IMAGE (an executable for this machine) into slot A of DIR, make it\n"
               "active and reset the boot state. Creates DIR if needed.\n"
               "\n"
               "Secure boot (ESP-IDF Secure Boot V2 signatures):\n"
               "  --trust-key PEM  trust this key: an RSA-3072 or P-256 key, public or\n"
               "                   (unencrypted) private, in PEM; 1 to 3 times (key rotation).\n"
               "                   Their key digests go into DIR/trusted_keys like eFuses:\n"
               "                   later flashes keep them, other keys are refused (make a\n"
               "                   new state directory), and IMAGE and every slot that\n"
               "                   boots must be signed by one of them ('espsecure\n"
               "                   sign-data --version 2', padding + signature sector).\n"
               "Once DIR has trusted keys, IMAGE is refused unless it is signed by one.\n";
    if (strcmp(cmd, "run") == 0)
        return "usage: ota-boot run --state DIR [--rollback-after N] [--restart-delay-ms MS]"
               " [-- ARGS...]\n"
               "Boot the active slot of DIR with ARGS (the firmware gets OTA_STATE_DIR and\n"
               "OTA_BOOT_SLOT in its environment). Exit status 42 from the firmware boots\n"
               "again (into the new slot after an update); any other exit or crash restarts\n"
               "it after a delay. An unconfirmed image booted N times (default 3) without\n"
               "confirming itself is rolled back to the confirmed slot. Ctrl-C or SIGTERM\n"
               "stops the firmware (SIGKILL if it is still running after 5 s) and exits 0;\n"
               "if ota-boot itself is killed, the firmware gets SIGTERM.\n"
               "Secure boot (DIR has trusted keys, see 'ota-boot flash --help'): before each\n"
               "boot the slot's signature is checked; a slot that is not signed, is signed by\n"
               "an untrusted key or does not match its signature (tampered) is not booted:\n"
               "the other slot boots if it verifies (and becomes active and confirmed), else\n"
               "ota-boot exits with status 3.\n";
    if (strcmp(cmd, "status") == 0)
        return "usage: ota-boot status --state DIR\n"
               "Print the boot state of DIR as JSON: active_slot, active_sha256,\n"
               "confirmed_slot, pending, boot_attempts, safe_mode, safe_mode_request,\n"
               "state_file (ok or fallback), secure_boot (DIR has trusted keys),\n"
               "trusted_keys (their key digests), min_security_version (anti-rollback: the\n"
               "node refuses images below it), and per slot present, size, sha256, bootable,\n"
               "signature (\"valid\", \"invalid\" or \"none\"; without secure boot, checked\n"
               "against the image's own key), signed_by (the key digest of a valid signature)\n"
               "and security_version (of its image descriptor, 0 without one; null for an\n"
               "empty slot).\n";
    if (strcmp(cmd, "safe-mode") == 0)
        return "usage: ota-boot safe-mode --state DIR\n"
               "Make the next boot of the node a safe-mode boot (only logging, network and\n"
               "OTA run), e.g. to upload a fix to a firmware that misbehaves.\n";
    return NULL;
}

int main(int argc, char **argv)
{
    if (argc < 2 || strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0) {
        fputs(usage_text, argc < 2 ? stderr : stdout);
        return argc < 2 ? EXIT_USAGE : 0;
    }
    const char *cmd = argv[1];
    if (strcmp(cmd, "--version") == 0) {
        printf("ota-boot %s\n", OTA_VERSION);
        return 0;
    }
    if (cmd_help(cmd) == NULL)
        return usage_error("unknown command '%s'", cmd);

    static const struct option opts[] = {
        {"state", required_argument, NULL, 's'},
        {"rollback-after", required_argument, NULL, 'r'},
        {"restart-delay-ms", required_argument, NULL, 'd'},
        {"trust-key", required_argument, NULL, 'k'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    const char *dir = NULL;
    unsigned rollback_after = 3, restart_delay = 1000;
    bool is_run = strcmp(cmd, "run") == 0;
    char *key_paths[SB_MAX_KEYS];
    int n_keys = 0;
    optind = 2;
    int c;
    while ((c = getopt_long(argc, argv, "+h", opts, NULL)) != -1) {
        char *end;
        switch (c) {
        case 's': dir = optarg; break;
        case 'r':
        case 'd': {
            if (!is_run)
                return usage_error("--%s is an option of 'run'",
                                   c == 'r' ? "rollback-after" : "restart-delay-ms");
            unsigned long v = strtoul(optarg, &end, 10);
            if (*optarg == '\0' || *end != '\0' || v < 1 || v > 3600000ul)
                return usage_error("'%s' is not a valid number", optarg);
            *(c == 'r' ? &rollback_after : &restart_delay) = (unsigned)v;
            break;
        }
        case 'k':
            if (strcmp(cmd, "flash") != 0)
                return usage_error("--trust-key is an option of 'flash'");
            if (n_keys == (int)SB_MAX_KEYS)
                return usage_error("at most %u --trust-key (a chip has %u key digest slots)",
                                   SB_MAX_KEYS, SB_MAX_KEYS);
            key_paths[n_keys++] = optarg;
            break;
        case 'h': fputs(cmd_help(cmd), stdout); return 0;
        default: return usage_error("bad option for '%s'", cmd);
        }
    }
    if (dir == NULL)
        return usage_error("'%s' needs --state DIR", cmd);
    if (strcmp(cmd, "flash") == 0) {
        if (optind != argc - 1)
            return usage_error("'flash' needs exactly one IMAGE");
        return cmd_flash(dir, argv[optind], key_paths, n_keys);
    }
    if (strcmp(cmd, "status") == 0 || strcmp(cmd, "safe-mode") == 0) {
        if (optind != argc)
            return usage_error("unexpected argument '%s'", argv[optind]);
        return cmd[1] == 't' ? cmd_status(dir) : cmd_safe_mode(dir);
    }
    return cmd_run(dir, rollback_after, restart_delay, argv + optind, argc - optind);
}
