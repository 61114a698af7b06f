/*
 * fake_firmware.c - a scriptable "firmware" for the ota-boot tests
 * (test_ota_boot.py). Each boot appends one line to $OTA_STATE_DIR/boots.log:
 *   boot slot=<OTA_BOOT_SLOT> pid=<pid> state=<OTA_STATE_DIR> args=<arg|arg|...>
 * then does what $OTA_STATE_DIR/mode says (the test changes it between boots):
 *   exit N     exit with status N at once (42: "reboot requested")
 *   crash      abort()
 *   serve      run until SIGTERM/SIGINT (log "term <pid>", exit 0) or SIGUSR1 (log
 *              "reboot <pid>", exit 42: what a firmware does after an update)
 *   stubborn   ignore SIGTERM and SIGINT, run until killed
 * A missing mode file means serve. A mode file of several lines is a script: each
 * boot takes the first line and removes it, the last line stays.
 */
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static volatile sig_atomic_t got_signal = 0;

static void on_signal(int sig)
{
    got_signal = sig;
}

static void log_line(const char *dir, const char *line)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/boots.log", dir);
    FILE *f = fopen(path, "a");
    if (f == NULL)
        return;
    fputs(line, f);
    fclose(f);
}

static int serve(const char *dir)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGUSR1, &sa, NULL);
    while (!got_signal)
        pause();
    bool reboot = got_signal == SIGUSR1;
    char line[64];
    snprintf(line, sizeof line, "%s %ld\n", reboot ? "reboot" : "term", (long)getpid());
    log_line(dir, line);
    return reboot ? 42 : 0;
}

/* The first line of the mode file into mode; a script loses that line. */
static void next_mode(const char *dir, char *mode, size_t cap)
{
    char path[4096], text[4096];
    snprintf(path, sizeof path, "%s/mode", dir);
    snprintf(mode, cap, "serve");
    FILE *f = fopen(path, "r");
    if (f == NULL)
        return;
    size_t n = fread(text, 1, sizeof text - 1, f);
    fclose(f);
    text[n] = '\0';
    size_t first = strcspn(text, "\n");
    if (first > 0 && first < cap) {
        memcpy(mode, text, first);
        mode[first] = '\0';
    }
    const char *rest = text[first] == '\n' ? text + first + 1 : text + first;
    if (*rest != '\0') {
        f = fopen(path, "w");
        if (f != NULL) {
            fputs(rest, f);
            fclose(f);
        }
    }
}

int main(int argc, char **argv)
{
    const char *dir = getenv("OTA_STATE_DIR");
    const char *slot = getenv("OTA_BOOT_SLOT");
    if (dir == NULL)
        return 3;
    char line[4096];
    int n = snprintf(line, sizeof line, "boot slot=%s pid=%ld state=%s args=",
                     slot ? slot : "-", (long)getpid(), dir);
    for (int i = 1; i < argc && n > 0 && (size_t)n < sizeof line; i++)
        n += snprintf(line + n, sizeof line - (size_t)n, "%s%s", i > 1 ? "|" : "", argv[i]);
    if (n > 0 && (size_t)n < sizeof line - 1)
        strcat(line, "\n");
    log_line(dir, line);
    fprintf(stdout, "fake firmware on slot %s\n", slot ? slot : "-");
    fflush(stdout);

    char mode[64];
    next_mode(dir, mode, sizeof mode);
    if (strncmp(mode, "exit ", 5) == 0)
        return atoi(mode + 5);
    if (strcmp(mode, "crash") == 0)
        abort();
    if (strcmp(mode, "stubborn") == 0) {
        signal(SIGTERM, SIG_IGN);
        signal(SIGINT, SIG_IGN);
        for (;;)
            pause();
    }
    return serve(dir);
}
