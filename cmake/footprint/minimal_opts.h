/*
 * minimal_opts.h - the smallest useful build of the core (scripts/footprint.sh's
 * "minimal" configuration, the ESP8266 goal: code <= 8 KiB, RAM <= 2 KiB): one
 * handshake at a time, a 1 KiB receive buffer, native protocol with salted auth only.
 */
#ifndef OTA_FOOTPRINT_MINIMAL_OPTS_H
#define OTA_FOOTPRINT_MINIMAL_OPTS_H

#define OTA_CFG_MAX_SESSIONS 1
#define OTA_CFG_DATA_BUF_SIZE 1024
#define OTA_CFG_ENABLE_COMPRESSION 0
#define OTA_CFG_ENABLE_ARDUINO 0
#define OTA_CFG_ENABLE_MDNS 0
#define OTA_CFG_ENABLE_SIGNED 0
#define OTA_CFG_ENABLE_LEGACY_AUTH 0
#define OTA_CFG_ENABLE_LOG_STRINGS 0
#define OTA_CFG_HASH_CTX_SIZE 128
#define OTA_CFG_AUTH_SOURCES 2

#endif /* OTA_FOOTPRINT_MINIMAL_OPTS_H */
