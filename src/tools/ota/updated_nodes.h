/*
 * updated_nodes.h - when this machine last updated a node, so that a connection
 * the node refuses (or does not answer) right after an update is explained as the
 * reboot into the new image it most likely is, instead of a wrong port or a node
 * without OTA.
 *
 * It also remembers how fast each node took an image raw and gzipped, so that gzip
 * is used where it pays (a slow Wi-Fi link) and not where it costs (a fast link,
 * where the node's inflating is slower than the wire).
 *
 * And what the node's features answer said (its FEATURE_FLAGS byte): a node that
 * answered our late-digest flag (docs/protocol.md#native-late-md5) gets its next
 * handshake pipelined, and the uploader need not hash the image before connecting.
 *
 * FILE (the folder of the known_nodes file, known_nodes.h, + "updated_nodes") holds
 * one "HOST:PORT UNIX-SECONDS RAW_BPS GZIP_BPS [FLAGS]" line per node (the rates may
 * be missing: 0; FLAGS -1 or missing: unknown), the newest 256 kept, written 0600
 * through a temporary file and rename(). Losing it loses only a hint.
 */
#ifndef OTA_TOOLS_OTA_UPDATED_NODES_H
#define OTA_TOOLS_OTA_UPDATED_NODES_H

#include <stdbool.h>
#include <stdint.h>

/* How long after an update a refusal is taken for the reboot. */
#define OTA_UPDATED_REBOOT_WINDOW_S 120

/** Record that node (HOST:PORT as the user gave it) was updated now, and how fast:
 *  image bytes per second (gzip or not; <= 0: not measured). The other mode's last
 *  rate is kept. known_file: the known_nodes path (its folder is used); NULL:
 *  nothing is recorded. */
void ota_updated_record(const char *known_file, const char *host, uint16_t port, bool gzip,
                        double image_bps, int server_flags);

/** The FEATURE_FLAGS byte the node sent in its last recorded update, -1 when unknown
 *  (server_flags of ota_updated_record: -1 keeps the previous value). */
int ota_updated_flags(const char *known_file, const char *host, uint16_t port);

/** The node's last measured rates (image bytes per second) raw and gzipped, 0 when
 *  never measured. */
void ota_updated_rates(const char *known_file, const char *host, uint16_t port,
                       double *raw_bps, double *gz_bps);

/** Seconds since this machine updated host:port, or -1 when not within
 *  OTA_UPDATED_REBOOT_WINDOW_S (or unknown); at least 1 otherwise. */
long ota_updated_ago(const char *known_file, const char *host, uint16_t port);

#endif
