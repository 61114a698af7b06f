/*
 * known_nodes.h - the uploader's memory of nodes that proved the salted method,
 * like SSH's known_hosts: once a node has shown with a valid server signature that
 * it holds the verifier of our password, a later offer of weaker auth (the legacy
 * MD5/SHA-256 challenges, whose answers an impostor can crack offline, or no auth
 * at all) from the same HOST:PORT is refused before the uploader answers anything.
 *
 * The file ($OTA_KNOWN_NODES, else $XDG_STATE_HOME/ota/known_nodes, else
 * ~/.local/state/ota/known_nodes) is text, one node a line:
 *
 *     # comment
 *     HOST:PORT salted [SALT [ITERATIONS]]   [# comment]
 *
 * HOST is the name or address as the user gave it ([v6addr] for IPv6), SALT the 32
 * hex characters of the salt the node used last (optional), ITERATIONS its PBKDF2
 * iteration count (optional: older files have none); a known node offering fewer
 * iterations than recorded is refused. Blank and '#' lines are kept; a line that does
 * not parse is ignored (and kept) with a warning. A file that cannot be read as a
 * whole (unreadable, a NUL byte, over 4 MiB) fails closed: the upload refuses weaker
 * auth than salted from every node. The file is written 0600 (its directories 0700)
 * through a temporary file and rename(), under flock() of FILE.lock so that
 * concurrent `ota upload` processes do not lose each other's records.
 */
#ifndef OTA_TOOLS_OTA_KNOWN_NODES_H
#define OTA_TOOLS_OTA_KNOWN_NODES_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "client.h"

#define OTA_KNOWN_NODE_MAX 300 /* "HOST:PORT" incl. NUL */
#define OTA_KNOWN_SALT_LEN 16
#define OTA_KNOWN_MAX_ITERATIONS 10000000u /* what the client accepts at most */

typedef struct ota_known_entry {
    char node[OTA_KNOWN_NODE_MAX]; /* HOST:PORT */
    bool has_salt;
    uint8_t salt[OTA_KNOWN_SALT_LEN];
    uint32_t iterations;           /* 0: not recorded */
    unsigned line;                 /* 1-based line in the file */
} ota_known_entry_t;

/** "HOST:PORT" ("[v6addr]:PORT" when host holds a ':') into out. \return 0, -1 (too long). */
int ota_known_key(const char *host, uint16_t port, char *out, size_t cap);

/** The file to use: override (--known-nodes), else $OTA_KNOWN_NODES, else
 *  $XDG_STATE_HOME/ota/known_nodes, else $HOME/.local/state/ota/known_nodes.
 *  \return 0, -1 (none: no HOME either, or too long). */
int ota_known_path(const char *override, char *out, size_t cap);

/** mkdir -p of path's folder, new folders 0700 (the state folder of known_nodes and
 *  updated_nodes). \return 0, -1. */
int ota_known_make_dirs(const char *path);

/** One line (without or with its "\n"): 1 a node (*e filled, e->line left alone),
 *  0 blank or comment, -1 corrupt. */
int ota_known_parse_line(const char *line, ota_known_entry_t *e);

/** Look node up in the text of a file. \return 1 found (*e, e->line set), 0 not
 *  found. *first_corrupt (if not NULL) receives the first corrupt line's number, or 0. */
int ota_known_lookup_text(const char *text, const char *node, ota_known_entry_t *e,
                          unsigned *first_corrupt);

/** The text with node's record replaced (at its first line; later duplicates dropped)
 *  or appended, salt (may be NULL) and iterations (0: none; only with a salt) stored
 *  with it; a header comment opens a new file. Other lines are kept as they are.
 *  malloc'd; NULL when out of memory. */
char *ota_known_update_text(const char *text, const char *node, const uint8_t *salt,
                            uint32_t iterations);

/** Look node up in the file at path. A missing file is "not found".
 *  \return 1 found, 0 not found, -1 unreadable (err says why). */
int ota_known_lookup(const char *path, const char *node, ota_known_entry_t *e,
                     unsigned *first_corrupt, char *err, size_t err_cap);

/** Record node (with salt, may be NULL, and iterations, 0: none) in the file at path:
 *  missing directories are made 0700, the file is rewritten 0600 through a temporary
 *  file and rename(), the whole read-modify-rename under flock() of path.lock (and a
 *  mutex within the process). \return 0, -1 (err says why). */
int ota_known_record(const char *path, const char *node, const uint8_t *salt,
                     uint32_t iterations, char *err, size_t err_cap);

/* ------------------------------------------------------------ the upload's policy */

/** Before an upload to name:port (as the user gave it): when o->known_file is set,
 *  look the node up and fill o->known_node, o->known_line, o->known_salt and
 *  o->known_iterations so that the client refuses weaker auth. A file that cannot be
 *  read as a whole fills o->known_error instead (fail closed: the client refuses
 *  weaker auth than salted from any node); a corrupt line goes to warn as one
 *  "warning:" line. */
void ota_known_prepare(ota_client_options_t *o, const char *name, uint16_t port, FILE *warn);

/** After an upload: when it succeeded with the salted method, record the node (new,
 *  or its salt changed) and say so on out unless quiet. \return 0, -1 (not written;
 *  a warning was printed). */
int ota_known_commit(const ota_client_options_t *o, const ota_client_result_t *res,
                     bool quiet, FILE *out);

#endif /* OTA_TOOLS_OTA_KNOWN_NODES_H */
