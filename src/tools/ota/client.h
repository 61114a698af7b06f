/*
 * client.h - the uploader's side of the native OTA protocol (docs/protocol.md#native):
 * connect, handshake, auth (salted, SHA-256, MD5), size/MD5, streaming with data in
 * flight, verification. It prints nothing itself: progress goes through a callback,
 * the outcome comes back as an ota_client_result_t that messages.c turns into words.
 */
#ifndef OTA_TOOLS_OTA_CLIENT_H
#define OTA_TOOLS_OTA_CLIENT_H

#include <signal.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* exit codes of the `ota` tool (documented in the README and `ota --help`) */
enum {
    OTA_EXIT_OK = 0,
    OTA_EXIT_INTERNAL = 1,
    OTA_EXIT_USAGE = 2,
    OTA_EXIT_NETWORK = 3,
    OTA_EXIT_AUTH = 4,
    OTA_EXIT_DEVICE = 5,
    OTA_EXIT_INPUT = 6,  /* the firmware (or another input file) is missing or unreadable */
    OTA_EXIT_CONFIG = 7, /* the node file (YAML) is invalid or has no ota: block */
    OTA_EXIT_UNSIGNED = 8, /* ota image info: not signed, or a signature block is not valid */
};

typedef enum ota_auth_mode {
    OTA_AUTH_AUTO = 0, /* whatever the device offers, strongest first */
    OTA_AUTH_SALTED,   /* only the salted method */
    OTA_AUTH_SHA256,   /* only the SHA-256 challenge */
    OTA_AUTH_MD5,      /* only the MD5 challenge */
    OTA_AUTH_NONE      /* the device is expected to ask for no password */
} ota_auth_mode_t;

/* why the salted method (and nothing weaker) is required */
typedef enum ota_salted_reason {
    OTA_SALTED_NOT_REQUIRED = 0,
    OTA_SALTED_BY_CONFIG, /* the node's YAML has a password and no legacy_auth: true */
    OTA_SALTED_BY_KNOWN   /* the known_nodes file says the node proved it before */
} ota_salted_reason_t;

/* where the session was when it ended */
typedef enum ota_phase {
    OTA_PHASE_RESOLVE = 0,
    OTA_PHASE_CONNECT,
    OTA_PHASE_HANDSHAKE,
    OTA_PHASE_AUTH,
    OTA_PHASE_PREPARE,
    OTA_PHASE_UPLOAD,
    OTA_PHASE_VERIFY,
    OTA_PHASE_DONE
} ota_phase_t;

typedef enum ota_failure {
    OTA_FAIL_NONE = 0,
    OTA_FAIL_RESOLVE,        /* host does not resolve (detail: resolver text) */
    OTA_FAIL_REFUSED,        /* connection refused */
    OTA_FAIL_UNREACHABLE,    /* no route / network unreachable / other connect error */
    OTA_FAIL_TIMEOUT,        /* the device went silent in `phase` */
    OTA_FAIL_CLOSED,         /* the device closed the connection in `phase` */
    OTA_FAIL_DEVICE,         /* the device answered an error code (device_code) */
    OTA_FAIL_UNEXPECTED,     /* the device answered something off-protocol (device_code) */
    OTA_FAIL_NEED_PASSWORD,  /* the device wants a password and none was given */
    OTA_FAIL_AUTH_METHOD,    /* the device offers a method --auth excludes (device_code) */
    OTA_FAIL_IMPOSTOR,       /* the device's salted signature did not verify */
    OTA_FAIL_NO_AUTH_ASKED,  /* a password was given, the device asked for none */
    OTA_FAIL_DOWNGRADE,      /* salted is required (require_salted), the device offered
                                weaker auth (device_code: 0x41, 0x01 or 0x02) */
    OTA_FAIL_ITERATIONS,     /* a known node offered fewer PBKDF2 iterations than
                                recorded (iterations) */
    OTA_FAIL_KNOWN_UNREADABLE, /* the known_nodes file cannot be read (known_error) and
                                the device offered weaker auth (device_code) */
    OTA_FAIL_INTERNAL        /* out of memory, crypto failure, ... */
} ota_failure_t;

typedef struct ota_client_options {
    const char *host;
    uint16_t port;
    const char *password;  /* NULL: none */
    ota_auth_mode_t auth;
    bool compress;         /* gzip when the device accepts it and it helps */
    unsigned timeout_s;    /* per-phase inactivity limit */
    /* Salted auth is required (and nothing weaker answered) with auth == SALTED or
     * require_salted set; all is decided before any response or firmware byte. */
    ota_salted_reason_t require_salted;
    const char *config_file;   /* the node's YAML (messages of BY_CONFIG) */
    const char *known_file;    /* the known_nodes file, NULL: none (known_nodes.h) */
    char known_node[300];      /* HOST:PORT as the user gave it (known_nodes.h) */
    unsigned known_line;       /* its line in known_file, 0: not known */
    bool known_has_salt;
    uint8_t known_salt[16];    /* the salt it used last time */
    uint32_t known_iterations; /* its PBKDF2 iterations last time, 0: not recorded */
    char known_error[512];     /* known_file exists but cannot be read as a whole: why
                                  (then weaker auth than salted is refused: fail closed) */
    /* Called once per phase when the device has been silent for wait_note_s seconds
     * (default 3) in it, so a person learns what is awaited; NULL: nothing. */
    void (*on_wait)(void *arg, ota_phase_t phase, unsigned limit_s);
    void *wait_arg;
    unsigned wait_note_s;
    /* This machine updated the node this many seconds ago (updated_nodes.h), -1 or
     * 0 when not recently: a refusal is then explained as its reboot. */
    long updated_ago_s;
    /* The node answered OTA_SERVER_FLAG_LATE_MD5 last time (updated_nodes.h): it is one
     * of ours, so magic and features go out in one write (docs/protocol.md#native-late-md5).
     * A stock device is never sent anything pipelined unless it was recorded so. */
    bool known_late_md5;
    /* Written with every phase change (for a signal handler that says where the
     * upload was); NULL: none. */
    volatile sig_atomic_t *phase_out;
    /* 0: upload the payload. OTA_UPDATE_TYPE_PULL_NOW: no image; after the auth ask
     * the node to check its pull manifest now (docs/protocol.md#native-pull-now); the
     * payload may then be NULL. */
    uint8_t command;
} ota_client_options_t;

typedef struct ota_client_result {
    ota_failure_t failure;
    ota_phase_t phase;
    uint8_t device_code;   /* the response byte behind DEVICE / UNEXPECTED / AUTH_METHOD */
    uint8_t version;       /* protocol version the device announced */
    uint8_t auth_method;   /* method used (response code), 0 = none */
    bool unproven;         /* a legacy (MD5/SHA-256) response was sent: the device never
                              proved it knows the password */
    bool salt_changed;     /* salted: the salt differs from known_salt */
    uint8_t salt[16];      /* salted: the salt the device sent */
    uint32_t iterations;   /* salted: the PBKDF2 iterations the device sent */
    uint8_t server_flags;  /* the flags byte after FEATURE_FLAGS, 0 when none came */
    bool late_md5;         /* the MD5 went after the data (both ends hashed at once) */
    bool compressed;       /* the upload was gzip */
    size_t wire_size;      /* bytes on the wire */
    size_t sent;           /* bytes of the image sent before the end */
    size_t acked;          /* bytes acknowledged by the device (v2) */
    char address[80];      /* the address connected to */
    char detail[160];      /* resolver or socket error text */
} ota_client_result_t;

/* progress: done of total bytes (acknowledged on v2, sent on v1) */
typedef void (*ota_progress_fn)(void *arg, size_t done, size_t total);

/* What is sent, worked out before connecting: a device gives the uploader about a
 * second between "auth OK" and the image size (ESPHome's ota_esphome.cpp), so
 * nothing slow may happen in between. One preparation serves every upload of a
 * fleet and every retry. */
typedef struct ota_client_payload {
    const uint8_t *image; /* the image (borrowed) */
    size_t len;
    bool has_md5;         /* md5 / gz_md5 are computed (else the session hashes) */
    uint8_t md5[16];      /* of the image */
    uint8_t *gz;          /* its gzip form when that is smaller, else NULL (owned) */
    size_t gz_len;
    uint8_t gz_md5[16];
    bool gz_cached;       /* the gzip form came from the cache (gzip.h) */
} ota_client_payload_t;

/** Gzip image when compress and the result is smaller, and with hash, compute the
 *  MD5s, into *p. Without hash a node that takes the late digest gets the MD5 computed
 *  while the bytes are sent; a stock device gets it computed once its features answer
 *  says so (before its auth OK when it asks for a password).
 *  \return 0, -1 (out of memory). Free with ota_client_payload_free(). */
int ota_client_prepare(ota_client_payload_t *p, const uint8_t *image, size_t len, bool compress,
                       bool hash);
void ota_client_payload_free(ota_client_payload_t *p);

/** One upload attempt of a prepared payload (the gzip form when opts->compress and
 *  the device takes gzip). As ota_client_upload otherwise. */
int ota_client_upload_payload(const ota_client_options_t *opts, const ota_client_payload_t *p,
                              ota_progress_fn progress, void *progress_arg,
                              ota_client_result_t *res);

/** One upload attempt of image[0..len). Returns the tool's exit code and fills
 *  *res. Connection failures before the handshake are reported as
 *  OTA_FAIL_RESOLVE/REFUSED/UNREACHABLE/TIMEOUT in OTA_PHASE_CONNECT (retriable). */
int ota_client_upload(const ota_client_options_t *opts, const uint8_t *image, size_t len,
                      ota_progress_fn progress, void *progress_arg, ota_client_result_t *res);

/** true for failures worth retrying (the connection never got going). */
bool ota_client_retriable(const ota_client_result_t *res);

#endif /* OTA_TOOLS_OTA_CLIENT_H */
