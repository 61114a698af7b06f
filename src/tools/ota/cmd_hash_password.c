/*
 * cmd_hash_password.c - `ota hash-password`: the salted verifier (SCRAM-SHA-256
 * format) a node stores instead of its password.
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "client.h"
#include "commands.h"
#include "ota/auth.h"
#include "ota/util.h"
#include "passwords.h"

const char hash_password_usage[] =
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

int cmd_hash_password(int argc, char **argv)
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
        case 'h': fputs(hash_password_usage, stdout); return OTA_EXIT_OK;
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
    char text[OTA_VERIFIER_TEXT_MAX];
    int rc = make_verifier(pw, (uint32_t)iterations, text, sizeof text);
    ota_wipe(pw, strlen(pw));
    free(pw);
    if (rc != 0) {
        fprintf(stderr, "error: computing the verifier failed\n");
        return OTA_EXIT_INTERNAL;
    }
    puts(text);
    return OTA_EXIT_OK;
}
