/*
 * fuzz_manifest.c - libFuzzer target for the update manifest reader (ota/manifest.h):
 * ota_manifest_parse() over any bytes, then what a node does with a result:
 * ota_manifest_resolve_url() and ota_manifest_should_take().
 *
 * Input: byte 0 picks the chip family (of four, one of them the seeds'), the rest is
 * the document. Nothing may crash, read out of bounds or leak; a parse is
 * deterministic; on success every string is NUL-terminated inside its buffer, path
 * is printable ASCII and not empty, a digest is there and rollout is at most 100; on
 * failure the error
 * is set and its offset is inside the input.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "ota/manifest.h"
#include "ota_posix.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_str(const char *s, size_t cap)
{
    if (memchr(s, 0, cap) == NULL)
        abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const char *const families[] = {"LINUX-X86_64", "ESP32", "ESP8266", "ESP32-S3"};
    if (size < 1)
        return 0;
    const char *family = families[data[0] % 4];
    const uint8_t *doc = data + 1;
    size_t len = size - 1;
    static ota_manifest_t m, again;
    int rc = ota_manifest_parse(doc, len, family, &m);
    if (ota_manifest_parse(doc, len, family, &again) != rc || memcmp(&m, &again, sizeof m) != 0)
        abort();
    if (rc != OTA_OK) {
        if (rc != OTA_ERR_MALFORMED && rc != OTA_ERR_TOO_LONG && rc != OTA_ERR_UNSUPPORTED)
            abort();
        if (m.error == OTA_MANIFEST_OK || m.error_offset > len)
            abort();
        return 0;
    }
    check_str(m.name, sizeof m.name);
    check_str(m.version, sizeof m.version);
    check_str(m.path, sizeof m.path);
    check_str(m.summary, sizeof m.summary);
    check_str(m.release_url, sizeof m.release_url);
    if (m.path[0] == '\0' || !(m.has_md5 || m.has_sha256) || m.rollout > 100 ||
        (m.has_size && m.size == 0) || m.error != OTA_MANIFEST_OK)
        abort();
    for (const char *p = m.path; *p != '\0'; p++)
        if ((unsigned char)*p <= 0x20 || (unsigned char)*p >= 0x7F)
            abort(); /* nothing that could split a request line */

    static char url[OTA_CFG_MANIFEST_PATH_MAX + 64];
    int n = ota_manifest_resolve_url("https://updates.example/fleet/manifest.json", m.path, url,
                                     sizeof url);
    if (n >= 0 && ((size_t)n >= sizeof url || strlen(url) != (size_t)n))
        abort();
    if (n < 0 && n != OTA_ERR_TOO_LONG)
        abort();

    ota_manifest_node_t node = {"fuzz-node", "0.0.0", family, 5, false, false};
    int bucket;
    ota_manifest_decision_t d = ota_manifest_should_take(&ota_posix_crypto, &m, family, &node,
                                                         &bucket);
    if (d == OTA_MANIFEST_TAKE && (bucket < 0 || (unsigned)bucket >= m.rollout))
        abort();
    if (d == OTA_MANIFEST_DECISION_ERROR)
        abort();
    return 0;
}
