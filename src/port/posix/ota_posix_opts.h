/*
 * ota_posix_opts.h - compile-time options of the core for the POSIX port
 * (passed to every user of the core as OTA_CFG_USER_FILE by the build, so the
 * core and the firmware agree on struct sizes). A Linux node has memory to spare:
 * bigger buffers mean fewer system calls per megabyte.
 */
#ifndef OTA_POSIX_OPTS_H
#define OTA_POSIX_OPTS_H

/* update manifests (ota/manifest.h): room for long URLs, e.g. presigned ones */
#define OTA_CFG_MANIFEST_PATH_MAX 1024
#define OTA_CFG_MANIFEST_TEXT_MAX 512

#define OTA_CFG_MAX_SESSIONS 4
#define OTA_CFG_DATA_BUF_SIZE (32u * 1024u)
#define OTA_CFG_INFLATE_BUF_SIZE (32u * 1024u)
#define OTA_CFG_POLL_BUDGET (1024u * 1024u)
#define OTA_CFG_ENABLE_SIGNED 1 /* signed images: demo-node --verification-key */
#define OTA_CFG_ENABLE_PULL 1   /* pull updates: demo-node --update-url */
/* the HTTP(S) pull client; URLs as long as pre-signed object-store links */
#define OTA_CFG_ENABLE_HTTP 1
#define OTA_CFG_HTTP_URL_MAX 2048
#define OTA_CFG_HTTP_HOST_MAX 256
#define OTA_CFG_HTTP_VALIDATOR_MAX 128
#define OTA_CFG_HTTP_UA_MAX 64
#define OTA_CFG_HTTP_BUF_SIZE (8u * 1024u)

#endif /* OTA_POSIX_OPTS_H */
