/*
 * ota_lwip_opts.h - compile-time options of the core for the lwIP port (the core is
 * built a second time with them as OTA_CFG_USER_FILE: target ota_core_lwip). Sized
 * like an ESP8266 node rather than a Linux process: two handshakes side by side, 4 KiB
 * of receive buffer, no gzip (the inflate window alone would be 32 KiB of heap), no
 * signed images. The RAM this costs is in docs/lwip-port.md.
 */
#ifndef OTA_LWIP_OPTS_H
#define OTA_LWIP_OPTS_H

#define OTA_CFG_MAX_SESSIONS 2
#define OTA_CFG_DATA_BUF_SIZE 4096u
#define OTA_CFG_POLL_BUDGET (16u * 1024u)
#define OTA_CFG_ENABLE_COMPRESSION 0
#define OTA_CFG_ENABLE_SIGNED 0
#define OTA_CFG_AUTH_SOURCES 4

#endif /* OTA_LWIP_OPTS_H */
