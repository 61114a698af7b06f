/*
 * passwords.c - password sources and the salted verifier (passwords.h).
 */
#include "passwords.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <termios.h>

#include "cli.h"
#include "ota/auth.h"
#include "ota/util.h"
#include "ota_posix.h"

/* The password of --password-file unless --password gave one (o->password); the
 * caller falls back to a node file and then $OTA_PASSWORD. *alloc receives what must
 * be freed. \return 0, -1. */
int resolve_password(ota_client_options_t *o, const char *password_file, char **alloc)
{
    *alloc = NULL;
    if (o->password == NULL && password_file != NULL) {
        FILE *f = fopen(password_file, "r");
        if (f == NULL || (*alloc = read_first_line(f)) == NULL) {
            fprintf(stderr, "error: cannot read the password from %s: %s\n", password_file,
                    f ? "the file is empty" : strerror(errno));
            if (f)
                fclose(f);
            return -1;
        }
        fclose(f);
        o->password = *alloc;
    }
    if (o->password != NULL && o->password[0] == '\0')
        o->password = NULL;
    return 0;
}

char *prompt_password(const char *prompt)
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

/* The salted verifier of pw with a fresh random salt, as text. \return 0, -1. */
int make_verifier(const char *pw, uint32_t iterations, char *text, size_t cap)
{
    ota_verifier_t v;
    v.iterations = iterations;
    uint8_t sp[OTA_SALTED_KEY_LEN];
    int rc = ota_posix_random(NULL, v.salt, sizeof v.salt);
    if (rc == 0)
        rc = ota_posix_pbkdf2_sha256(pw, strlen(pw), v.salt, sizeof v.salt, v.iterations, sp,
                                     sizeof sp);
    if (rc == 0)
        rc = ota_salted_keys(&ota_posix_crypto, sp, NULL, v.stored_key, v.server_key);
    ota_wipe(sp, sizeof sp);
    if (rc != 0 || ota_verifier_format(&v, text, cap) == 0)
        rc = -1;
    ota_wipe(&v, sizeof v);
    return rc;
}
