/*
 * test_manifest.c - unit tests of the update manifest (src/core/manifest.c,
 * ota/manifest.h): ESPHome's manifest as its documentation shows it, ESP Web Tools
 * manifests with parts, our additions, strict JSON, wrong types, hostile input, the
 * URL of the image, rollout buckets (stability, distribution, the documented formula
 * against values Python's hashlib computed) and the take-or-not decision, and the
 * detached signature (over the signed vectors of tests/vectors/sigv2).
 *
 * The vectors' directory is the compile definition OTA_SIGV2_DIR, or argv[1].
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "ota/errors.h"
#include "ota/manifest.h"
#include "ota/signature.h"
#include "ota_posix.h"

#ifndef OTA_SIGV2_DIR
#define OTA_SIGV2_DIR "tests/vectors/sigv2"
#endif

static const char *g_dir = OTA_SIGV2_DIR;
static const ota_crypto_port_t *crypto = &ota_posix_crypto;

static int parse(const char *json, const char *family, ota_manifest_t *m)
{
    return ota_manifest_parse((const uint8_t *)json, strlen(json), family, m);
}

static void hexbytes(const char *hex, uint8_t *out, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        unsigned v;
        sscanf(hex + 2 * i, "%2x", &v);
        out[i] = (uint8_t)v;
    }
}

/* ESPHome's documentation of `update: platform: http_request` shows this manifest,
 * with a comma after the last member of "ota": not JSON, so a strict parser refuses
 * it; without that comma it is the reference case. */
static const char esphome_doc[] =
    "{\n"
    "  \"name\": \"My ESPHome Project\",\n"
    "  \"version\": \"2024.6.1\",\n"
    "  \"builds\": [\n"
    "    {\n"
    "      \"chipFamily\": \"ESP32-C3\",\n"
    "      \"ota\": {\n"
    "        \"md5\": \"1234567890abcdef1234567890abcdef\",\n"
    "        \"path\": \"/local/esp32c3/firmware.bin\",\n"
    "        \"release_url\": \"http://example.com/releases/10\",\n"
    "        \"summary\": \"Another update\",\n"
    "      }\n"
    "    }\n"
    "  ]\n"
    "}\n";

static void test_esphome_documented(void **state)
{
    (void)state;
    ota_manifest_t m;
    assert_int_equal(parse(esphome_doc, "ESP32-C3", &m), OTA_ERR_MALFORMED);
    assert_int_equal(m.error, OTA_MANIFEST_E_SYNTAX);
    /* noticed at the '}' after the stray comma */
    const char *brace = strstr(esphome_doc, "update\",\n      }") + strlen("update\",\n      ");
    assert_int_equal(m.error_offset, (uint32_t)(brace - esphome_doc));

    char fixed[sizeof esphome_doc];
    strcpy(fixed, esphome_doc);
    char *comma = strstr(fixed, "update\",") + strlen("update\"");
    *comma = ' ';
    assert_int_equal(parse(fixed, "ESP32-C3", &m), OTA_OK);
    assert_string_equal(m.name, "My ESPHome Project");
    assert_string_equal(m.version, "2024.6.1");
    assert_string_equal(m.path, "/local/esp32c3/firmware.bin");
    assert_string_equal(m.summary, "Another update");
    assert_string_equal(m.release_url, "http://example.com/releases/10");
    uint8_t md5[16];
    hexbytes("1234567890abcdef1234567890abcdef", md5, 16);
    assert_true(m.has_md5);
    assert_memory_equal(m.md5, md5, 16);
    assert_false(m.has_sha256);
    assert_false(m.has_size);
    assert_false(m.has_secure_version);
    assert_false(m.has_rollout);
    assert_int_equal(m.rollout, 100);
    assert_int_equal(m.truncated, 0);
    assert_int_equal(m.builds, 1);

    /* another chip: a valid manifest, but nothing for it */
    assert_int_equal(parse(fixed, "ESP32", &m), OTA_ERR_UNSUPPORTED);
    assert_int_equal(m.error, OTA_MANIFEST_E_NO_BUILD);
    assert_int_equal(m.builds, 1);
    /* the comparison is exact, as ESPHome's */
    assert_int_equal(parse(fixed, "esp32-c3", &m), OTA_ERR_UNSUPPORTED);
    assert_int_equal(parse(fixed, "ESP32-C3 ", &m), OTA_ERR_UNSUPPORTED);
}

/* An ESP Web Tools manifest (factory parts for the browser flasher) that also
 * carries ota blocks for some of its builds, with the extra keys such manifests
 * have. */
static const char web_tools[] =
    "{\"name\":\"ESPHome\",\"version\":\"2021.10.3\",\"home_assistant_domain\":\"esphome\",\n"
    " \"funding_url\":\"https://esphome.io/guides/supporters.html\",\n"
    " \"new_install_prompt_erase\":true, \"new_install_improv_wait_time\": 10,\n"
    " \"builds\":[\n"
    "  {\"chipFamily\":\"ESP32\",\"improv\":true,\"parts\":[\n"
    "     {\"path\":\"bootloader_dout_40m.bin\",\"offset\":4096},\n"
    "     {\"path\":\"partitions.bin\",\"offset\":32768},\n"
    "     {\"path\":\"boot_app0.bin\",\"offset\":57344},\n"
    "     {\"path\":\"esp32.bin\",\"offset\":65536}],\n"
    "   \"ota\":{\"path\":\"esp32.ota.bin\",\"md5\":\"00112233445566778899aabbccddeeff\"}},\n"
    "  {\"chipFamily\":\"ESP32-C3\",\"parts\":[{\"path\":\"esp32-c3.bin\",\"offset\":0}]},\n"
    "  {\"chipFamily\":\"ESP32-S3\",\"serialType\":\"cdc\",\"parts\":[]},\n"
    "  {\"chipFamily\":\"ESP8266\",\"parts\":[{\"path\":\"esp8266.bin\",\"offset\":0}],\n"
    "   \"ota\":{\"path\":\"https://cdn.example.com/esp8266.ota.bin\",\n"
    "            \"md5\":\"FFEEDDCCBBAA99887766554433221100\",\"summary\":null}}\n"
    " ]}";

static void test_web_tools_manifest(void **state)
{
    (void)state;
    ota_manifest_t m;
    assert_int_equal(parse(web_tools, "ESP8266", &m), OTA_OK);
    assert_string_equal(m.name, "ESPHome");
    assert_string_equal(m.version, "2021.10.3");
    assert_string_equal(m.path, "https://cdn.example.com/esp8266.ota.bin");
    uint8_t md5[16];
    hexbytes("ffeeddccbbaa99887766554433221100", md5, 16);
    assert_memory_equal(m.md5, md5, 16);
    assert_string_equal(m.summary, ""); /* null: absent */
    assert_int_equal(m.builds, 4);

    assert_int_equal(parse(web_tools, "ESP32", &m), OTA_OK);
    assert_string_equal(m.path, "esp32.ota.bin");
    /* a build with parts but no ota: a browser flash only, an error for its chip */
    assert_int_equal(parse(web_tools, "ESP32-C3", &m), OTA_ERR_MALFORMED);
    assert_int_equal(m.error, OTA_MANIFEST_E_MISSING);
    assert_int_equal(parse(web_tools, "ESP32-S2", &m), OTA_ERR_UNSUPPORTED);
}

static const char ours[] =
    "{\"builds\": [\n"
    "   {\"ota\": {\"path\": \"other.bin\", \"md5\": \"00000000000000000000000000000000\"},\n"
    "    \"chipFamily\": \"ESP32\"},\n"
    "   {\"ota\": {\"rollout\": 25, \"size\": 1048576, \"secure_version\": 4294967295,\n"
    "             \"sha256\": \"00112233445566778899AABBCCDDEEFF"
    "00112233445566778899aabbccddeeff\",\n"
    "             \"path\": \"firmware-1.2.3.bin\", \"future_key\": {\"a\": [1, 2.5e-3, -0]},\n"
    "             \"md5\": \"0123456789abcdef0123456789ABCDEF\",\n"
    "             \"summary\": \"caf\\u00e9 \\ud83d\\ude00 \\\"q\\\" \\\\ \\/ \\t\",\n"
    "             \"release_url\": \"https://example.com/r/1.2.3\"},\n"
    "    \"chipFamily\": \"LINUX-X86_64\"},\n"
    "   {\"chipFamily\": \"LINUX-X86_64\", \"ota\": {\"path\": \"second.bin\", \"md5\": 5}}\n"
    " ],\n"
    " \"version\": \"1.2.3\", \"name\": \"d\\u00e9mo\", \"extra\": [null, true, false, {}, []]}";

#define MD5_OK_TOP "\"md5\":\"00000000000000000000000000000000\""

static void test_our_additions(void **state)
{
    (void)state;
    ota_manifest_t m;
    assert_int_equal(parse(ours, "LINUX-X86_64", &m), OTA_OK);
    assert_string_equal(m.version, "1.2.3");
    assert_string_equal(m.name, "d\xc3\xa9mo");
    assert_string_equal(m.path, "firmware-1.2.3.bin");
    assert_true(m.has_sha256 && m.has_md5 && m.has_size && m.has_secure_version && m.has_rollout);
    uint8_t sha[32], md5[16];
    hexbytes("00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff", sha, 32);
    hexbytes("0123456789abcdef0123456789abcdef", md5, 16);
    assert_memory_equal(m.sha256, sha, 32);
    assert_memory_equal(m.md5, md5, 16);
    assert_int_equal(m.size, 1048576);
    assert_int_equal(m.secure_version, 4294967295u);
    assert_int_equal(m.rollout, 25);
    /* every escape, a surrogate pair into 4 UTF-8 bytes */
    assert_string_equal(m.summary, "caf\xc3\xa9 \xf0\x9f\x98\x80 \"q\" \\ / \t");
    assert_string_equal(m.release_url, "https://example.com/r/1.2.3");
    assert_int_equal(m.builds, 3);
    /* the first build of the family counts; a later one is only checked to be JSON
     * (its md5 of the wrong type is not looked at) */
    assert_int_equal(parse(ours, "ESP32", &m), OTA_OK);
    assert_string_equal(m.path, "other.bin");
    assert_false(m.has_sha256);

    /* sha256 alone is enough; md5 alone too (ESPHome's) */
    assert_int_equal(parse("{\"name\":\"n\",\"version\":\"v\",\"builds\":[{\"chipFamily\":\"X\","
                           "\"ota\":{\"path\":\"p\",\"sha256\":\"" "0000000000000000000000000000"
                           "000000000000000000000000000000000000\"}}]}", "X", &m), OTA_OK);
    assert_true(m.has_sha256);
    assert_false(m.has_md5);
    /* rollout 0 and 100, size 1, secure_version 0 */
    assert_int_equal(parse("{\"name\":\"n\",\"version\":\"v\",\"builds\":[{\"chipFamily\":\"X\","
                           "\"ota\":{\"path\":\"p\",\"md5\":\"00000000000000000000000000000000\","
                           "\"rollout\":0,\"size\":1,\"secure_version\":0}}]}", "X", &m), OTA_OK);
    assert_int_equal(m.rollout, 0);
    assert_true(m.has_rollout);
    assert_int_equal(m.size, 1);
    assert_true(m.has_secure_version);
    assert_int_equal(m.secure_version, 0);
    assert_false(m.has_published);

    /* "published" (top level): seconds, null = absent, once, an integer in 32 bits */
    static const char *pub_fmt = "{\"name\":\"n\",\"version\":\"v\",\"published\":%s,"
                                 "\"builds\":[{\"chipFamily\":\"X\",\"ota\":{\"path\":\"p\","
                                 MD5_OK_TOP "}}]}";
    char doc[512];
    snprintf(doc, sizeof doc, pub_fmt, "1764700000");
    assert_int_equal(parse(doc, "X", &m), OTA_OK);
    assert_true(m.has_published);
    assert_int_equal(m.published, 1764700000u);
    snprintf(doc, sizeof doc, pub_fmt, "null");
    assert_int_equal(parse(doc, "X", &m), OTA_OK);
    assert_false(m.has_published);
    static const char *const bad[] = {"\"1764700000\"", "-1", "4294967296", "1.5"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        snprintf(doc, sizeof doc, pub_fmt, bad[i]);
        assert_int_equal(parse(doc, "X", &m), OTA_ERR_MALFORMED);
    }
    assert_int_equal(parse("{\"name\":\"n\",\"version\":\"v\",\"published\":1,\"published\":2,"
                           "\"builds\":[{\"chipFamily\":\"X\",\"ota\":{\"path\":\"p\","
                           MD5_OK_TOP "}}]}", "X", &m), OTA_ERR_MALFORMED);
    assert_int_equal(m.error, OTA_MANIFEST_E_DUPLICATE);
}

typedef struct bad_case {
    const char *ota;    /* the matching build's ota members, or NULL: doc is whole */
    const char *doc;
    int rc;
    ota_manifest_error_t err;
} bad_case_t;

#define MD5_OK "\"md5\":\"00000000000000000000000000000000\""

static void test_wrong_types_and_values(void **state)
{
    (void)state;
    static const bad_case_t cases[] = {
        /* the matching build's ota object */
        {"\"path\":1," MD5_OK, NULL, OTA_ERR_MALFORMED, OTA_MANIFEST_E_TYPE},
        {"\"path\":null," MD5_OK, NULL, OTA_ERR_MALFORMED, OTA_MANIFEST_E_TYPE},
        {"\"path\":\"\"," MD5_OK, NULL, OTA_ERR_MALFORMED, OTA_MANIFEST_E_MISSING},
        /* what could split a request line, and what a URL must percent-encode */
        {"\"path\":\"a\\r\\nHost: evil\"," MD5_OK, NULL, OTA_ERR_MALFORMED,
         OTA_MANIFEST_E_RANGE},
        {"\"path\":\"a b.bin\"," MD5_OK, NULL, OTA_ERR_MALFORMED, OTA_MANIFEST_E_RANGE},
        {"\"path\":\"fw\\u00e9.bin\"," MD5_OK, NULL, OTA_ERR_MALFORMED, OTA_MANIFEST_E_RANGE},
        {"\"path\":\"fw\\u007f\"," MD5_OK, NULL, OTA_ERR_MALFORMED, OTA_MANIFEST_E_RANGE},
        {MD5_OK, NULL, OTA_ERR_MALFORMED, OTA_MANIFEST_E_MISSING},
        {"\"path\":\"p\"", NULL, OTA_ERR_MALFORMED, OTA_MANIFEST_E_MISSING},
        {"\"path\":\"p\",\"md5\":null", NULL, OTA_ERR_MALFORMED, OTA_MANIFEST_E_MISSING},
        {"\"path\":\"p\",\"md5\":\"0000000000000000000000000000000\"", NULL, OTA_ERR_MALFORMED,
         OTA_MANIFEST_E_RANGE},
        {"\"path\":\"p\",\"md5\":\"000000000000000000000000000000000\"", NULL,
         OTA_ERR_MALFORMED, OTA_MANIFEST_E_RANGE},
        {"\"path\":\"p\",\"md5\":\"0000000000000000000000000000000g\"", NULL, OTA_ERR_MALFORMED,
         OTA_MANIFEST_E_RANGE},
        {"\"path\":\"p\",\"md5\":16", NULL, OTA_ERR_MALFORMED, OTA_MANIFEST_E_TYPE},
        {"\"path\":\"p\",\"sha256\":\"00\"", NULL, OTA_ERR_MALFORMED, OTA_MANIFEST_E_RANGE},
        {"\"path\":\"p\"," MD5_OK ",\"secure_version\":-1", NULL, OTA_ERR_MALFORMED,
         OTA_MANIFEST_E_RANGE},
        {"\"path\":\"p\"," MD5_OK ",\"secure_version\":1.0", NULL, OTA_ERR_MALFORMED,
         OTA_MANIFEST_E_RANGE},
        {"\"path\":\"p\"," MD5_OK ",\"secure_version\":1e3", NULL, OTA_ERR_MALFORMED,
         OTA_MANIFEST_E_RANGE},
        {"\"path\":\"p\"," MD5_OK ",\"secure_version\":4294967296", NULL, OTA_ERR_MALFORMED,
         OTA_MANIFEST_E_RANGE},
        {"\"path\":\"p\"," MD5_OK ",\"secure_version\":99999999999999999999999", NULL,
         OTA_ERR_MALFORMED, OTA_MANIFEST_E_RANGE},
        {"\"path\":\"p\"," MD5_OK ",\"secure_version\":\"3\"", NULL, OTA_ERR_MALFORMED,
         OTA_MANIFEST_E_TYPE},
        {"\"path\":\"p\"," MD5_OK ",\"size\":0", NULL, OTA_ERR_MALFORMED, OTA_MANIFEST_E_RANGE},
        {"\"path\":\"p\"," MD5_OK ",\"size\":true", NULL, OTA_ERR_MALFORMED, OTA_MANIFEST_E_TYPE},
        {"\"path\":\"p\"," MD5_OK ",\"rollout\":101", NULL, OTA_ERR_MALFORMED,
         OTA_MANIFEST_E_RANGE},
        {"\"path\":\"p\"," MD5_OK ",\"rollout\":50.5", NULL, OTA_ERR_MALFORMED,
         OTA_MANIFEST_E_RANGE},
        {"\"path\":\"p\"," MD5_OK ",\"rollout\":\"50\"", NULL, OTA_ERR_MALFORMED,
         OTA_MANIFEST_E_TYPE},
        {"\"path\":\"p\"," MD5_OK ",\"summary\":5", NULL, OTA_ERR_MALFORMED, OTA_MANIFEST_E_TYPE},
        {"\"path\":\"p\"," MD5_OK ",\"release_url\":[]", NULL, OTA_ERR_MALFORMED,
         OTA_MANIFEST_E_TYPE},
        {"\"path\":\"p\"," MD5_OK "," MD5_OK, NULL, OTA_ERR_MALFORMED, OTA_MANIFEST_E_DUPLICATE},
        {"\"path\":\"p\",\"path\":\"q\"," MD5_OK, NULL, OTA_ERR_MALFORMED,
         OTA_MANIFEST_E_DUPLICATE},
        {"\"path\":\"p\"," MD5_OK ",\"rollout\":1,\"rollout\":100", NULL, OTA_ERR_MALFORMED,
         OTA_MANIFEST_E_DUPLICATE},
        /* the same key written with an escape is the same key */
        {"\"path\":\"p\"," MD5_OK ",\"\\u006dd5\":null", NULL, OTA_ERR_MALFORMED,
         OTA_MANIFEST_E_DUPLICATE},
        /* whole documents */
        {NULL, "{\"name\":1,\"version\":\"v\",\"builds\":[]}", OTA_ERR_MALFORMED,
         OTA_MANIFEST_E_TYPE},
        {NULL, "{\"name\":\"n\",\"version\":2,\"builds\":[]}", OTA_ERR_MALFORMED,
         OTA_MANIFEST_E_TYPE},
        {NULL, "{\"name\":\"n\",\"version\":\"1\\n2\",\"builds\":[]}", OTA_ERR_MALFORMED,
         OTA_MANIFEST_E_RANGE},
        {NULL, "{\"name\":\"n\",\"version\":\"v\",\"builds\":{}}", OTA_ERR_MALFORMED,
         OTA_MANIFEST_E_TYPE},
        {NULL, "{\"name\":\"n\",\"version\":\"v\",\"builds\":[1]}", OTA_ERR_MALFORMED,
         OTA_MANIFEST_E_TYPE},
        {NULL, "{\"name\":\"n\",\"version\":\"v\",\"builds\":[{\"chipFamily\":7}]}",
         OTA_ERR_MALFORMED, OTA_MANIFEST_E_TYPE},
        {NULL, "{\"name\":\"n\",\"version\":\"v\",\"builds\":[{\"parts\":[]}]}",
         OTA_ERR_MALFORMED, OTA_MANIFEST_E_MISSING},
        {NULL, "{\"name\":\"n\",\"version\":\"v\",\"builds\":[{\"chipFamily\":\"X\"}]}",
         OTA_ERR_MALFORMED, OTA_MANIFEST_E_MISSING},
        {NULL, "{\"name\":\"n\",\"version\":\"v\",\"builds\":[{\"chipFamily\":\"X\","
               "\"ota\":\"p\"}]}",
         OTA_ERR_MALFORMED, OTA_MANIFEST_E_TYPE},
        {NULL, "{\"name\":\"n\",\"version\":\"v\",\"builds\":[{\"chipFamily\":\"X\","
               "\"chipFamily\":\"Y\",\"ota\":{}}]}", OTA_ERR_MALFORMED, OTA_MANIFEST_E_DUPLICATE},
        {NULL, "{\"name\":\"n\",\"version\":\"v\",\"version\":\"w\",\"builds\":[]}",
         OTA_ERR_MALFORMED, OTA_MANIFEST_E_DUPLICATE},
        {NULL, "{\"version\":\"v\",\"builds\":[]}", OTA_ERR_MALFORMED, OTA_MANIFEST_E_MISSING},
        {NULL, "{\"name\":\"n\",\"builds\":[]}", OTA_ERR_MALFORMED, OTA_MANIFEST_E_MISSING},
        {NULL, "{\"name\":\"n\",\"version\":\"v\"}", OTA_ERR_MALFORMED, OTA_MANIFEST_E_MISSING},
        {NULL, "{\"name\":\"n\",\"version\":\"v\",\"builds\":[]}", OTA_ERR_UNSUPPORTED,
         OTA_MANIFEST_E_NO_BUILD},
        {NULL, "[]", OTA_ERR_MALFORMED, OTA_MANIFEST_E_TYPE},
        {NULL, "\"x\"", OTA_ERR_MALFORMED, OTA_MANIFEST_E_TYPE},
        /* a version of 32 bytes does not fit 31 + NUL: refused, never cut */
        {NULL, "{\"name\":\"n\",\"version\":\"0123456789abcdef0123456789abcdef\",\"builds\":[]}",
         OTA_ERR_TOO_LONG, OTA_MANIFEST_E_TOO_LONG},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char doc[1024];
        if (cases[i].ota != NULL)
            snprintf(doc, sizeof doc, "{\"name\":\"n\",\"version\":\"v\",\"builds\":[{\"chipFamily"
                                      "\":\"X\",\"ota\":{%s}}]}", cases[i].ota);
        else
            snprintf(doc, sizeof doc, "%s", cases[i].doc);
        ota_manifest_t m;
        int rc = parse(doc, "X", &m);
        if (rc != cases[i].rc || m.error != cases[i].err)
            fail_msg("case %zu (%s): rc %d error %d (%s), expected %d error %d", i, doc, rc,
                     (int)m.error, ota_manifest_error_name(m.error), cases[i].rc,
                     (int)cases[i].err);
        assert_true(m.error_offset <= strlen(doc));
    }
    /* a version of 31 bytes fits */
    ota_manifest_t m;
    assert_int_equal(parse("{\"name\":\"n\",\"version\":\"0123456789abcdef0123456789abcde\","
                           "\"builds\":[{\"chipFamily\":\"X\",\"ota\":{\"path\":\"p\"," MD5_OK
                           "}}]}", "X", &m), OTA_OK);
    assert_int_equal(strlen(m.version), 31);
    /* a path that does not fit */
    char doc[OTA_CFG_MANIFEST_PATH_MAX + 200];
    char path[OTA_CFG_MANIFEST_PATH_MAX + 1];
    memset(path, 'a', sizeof path - 1);
    path[sizeof path - 1] = '\0';
    snprintf(doc, sizeof doc, "{\"name\":\"n\",\"version\":\"v\",\"builds\":[{\"chipFamily\":\"X\","
                              "\"ota\":{\"path\":\"%s\"," MD5_OK "}}]}", path);
    assert_int_equal(parse(doc, "X", &m), OTA_ERR_TOO_LONG);
    path[sizeof path - 2] = '\0'; /* one shorter: fits exactly */
    snprintf(doc, sizeof doc, "{\"name\":\"n\",\"version\":\"v\",\"builds\":[{\"chipFamily\":\"X\","
                              "\"ota\":{\"path\":\"%s\"," MD5_OK "}}]}", path);
    assert_int_equal(parse(doc, "X", &m), OTA_OK);
    assert_string_equal(m.path, path);
}

static void test_json_strictness(void **state)
{
    (void)state;
    /* each is put where an unknown key's value goes, so only JSON itself decides */
    static const struct {
        const char *value;
        ota_manifest_error_t err;
    } bad[] = {
        {"[1,]", OTA_MANIFEST_E_SYNTAX},
        {"{\"a\":1,}", OTA_MANIFEST_E_SYNTAX},
        {"[1 2]", OTA_MANIFEST_E_SYNTAX},
        {"{\"a\" 1}", OTA_MANIFEST_E_SYNTAX},
        {"{1:2}", OTA_MANIFEST_E_SYNTAX},
        {"01", OTA_MANIFEST_E_NUMBER},
        {"-", OTA_MANIFEST_E_NUMBER},
        {"+1", OTA_MANIFEST_E_SYNTAX},
        {"1.", OTA_MANIFEST_E_NUMBER},
        {".5", OTA_MANIFEST_E_SYNTAX},
        {"1e", OTA_MANIFEST_E_NUMBER},
        {"1e+", OTA_MANIFEST_E_NUMBER},
        {"NaN", OTA_MANIFEST_E_SYNTAX},
        {"Infinity", OTA_MANIFEST_E_SYNTAX},
        {"tru", OTA_MANIFEST_E_SYNTAX},
        {"nul", OTA_MANIFEST_E_SYNTAX},
        {"True", OTA_MANIFEST_E_SYNTAX},
        {"'x'", OTA_MANIFEST_E_SYNTAX},
        {"\"a\\x\"", OTA_MANIFEST_E_STRING},
        {"\"a\\u12\"", OTA_MANIFEST_E_STRING},
        {"\"a\\u12G4\"", OTA_MANIFEST_E_STRING},
        {"\"\\ud800\"", OTA_MANIFEST_E_STRING},
        {"\"\\ud800\\u0041\"", OTA_MANIFEST_E_STRING},
        {"\"\\udc00\"", OTA_MANIFEST_E_STRING},
        {"\"\\u0000\"", OTA_MANIFEST_E_STRING},
        {"\"tab\there\"", OTA_MANIFEST_E_STRING},
        {"\"nl\nhere\"", OTA_MANIFEST_E_STRING},
        {"\"\xc0\x80\"", OTA_MANIFEST_E_STRING},         /* overlong NUL */
        {"\"\xe0\x80\xaf\"", OTA_MANIFEST_E_STRING},     /* overlong '/' */
        {"\"\xed\xa0\x80\"", OTA_MANIFEST_E_STRING},     /* an encoded surrogate */
        {"\"\xf4\x90\x80\x80\"", OTA_MANIFEST_E_STRING}, /* above U+10FFFF */
        {"\"\xf5\x80\x80\x80\"", OTA_MANIFEST_E_STRING},
        {"\"\x80\"", OTA_MANIFEST_E_STRING},             /* a lone continuation byte */
        {"\"\xe2\x82\"", OTA_MANIFEST_E_STRING},         /* cut short */
        {"\"\xff\"", OTA_MANIFEST_E_STRING},
        {"/* c */ 1", OTA_MANIFEST_E_SYNTAX},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        char doc[256];
        snprintf(doc, sizeof doc, "{\"name\":\"n\",\"version\":\"v\",\"x\":%s,\"builds\":[]}",
                 bad[i].value);
        ota_manifest_t m;
        int rc = parse(doc, "X", &m);
        if (rc != OTA_ERR_MALFORMED || m.error != bad[i].err)
            fail_msg("value %zu (%s): rc %d error %s, expected %s", i, bad[i].value, rc,
                     ota_manifest_error_name(m.error), ota_manifest_error_name(bad[i].err));
    }
    static const char *const good[] = {
        "-0", "0", "-1.5e-3", "1E+9", "123456789012345678901234567890", "\"\"",
        "\"\\u00e9\\u20ac\\ud83d\\ude00\"", "\"\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80\"",
        "\"\xef\xbf\xbf\xf4\x8f\xbf\xbf\"", "[]", "{}", "[[],{},[{}]]", "null", "true",
        "false", "{\"a\":1,\"a\":2}", /* duplicates of keys we do not read: ignored */
        " \t\r\n [ 1 , 2 ] ",
    };
    for (size_t i = 0; i < sizeof good / sizeof good[0]; i++) {
        char doc[256];
        snprintf(doc, sizeof doc, "{\"name\":\"n\",\"version\":\"v\",\"x\":%s,\"builds\":[{"
                                  "\"chipFamily\":\"X\",\"ota\":{\"path\":\"p\"," MD5_OK "}}]}",
                 good[i]);
        ota_manifest_t m;
        int rc = parse(doc, "X", &m);
        if (rc != OTA_OK)
            fail_msg("value %zu (%s): rc %d error %s", i, good[i], rc,
                     ota_manifest_error_name(m.error));
    }
    /* around the document */
    static const char *const docs[] = {
        "", " ", "{", "{\"name\":\"n\"", "{}{}", "{} x",
        "\xef\xbb\xbf{}", /* a byte order mark: RFC 8259 forbids sending one */
    };
    for (size_t i = 0; i < sizeof docs / sizeof docs[0]; i++) {
        ota_manifest_t m;
        int rc = parse(docs[i], "X", &m);
        if (rc != OTA_ERR_MALFORMED)
            fail_msg("doc %zu: rc %d", i, rc);
    }
    /* an embedded NUL byte ends nothing: it is a stray byte */
    static const char nul_doc[] = "{\"name\":\"n\",\"version\":\"v\",\"builds\":[]}\0";
    ota_manifest_t m;
    assert_int_equal(ota_manifest_parse((const uint8_t *)nul_doc, sizeof nul_doc - 1, "X", &m),
                     OTA_ERR_MALFORMED);
    assert_int_equal(m.error, OTA_MANIFEST_E_SYNTAX);
    assert_int_equal(m.error_offset, sizeof nul_doc - 2);
    /* arguments */
    assert_int_equal(ota_manifest_parse(NULL, 1, "X", &m), OTA_ERR_INVALID_ARG);
    assert_int_equal(ota_manifest_parse((const uint8_t *)"{}", 2, NULL, &m), OTA_ERR_INVALID_ARG);
    assert_int_equal(ota_manifest_parse((const uint8_t *)"{}", 2, "X", NULL), OTA_ERR_INVALID_ARG);
    assert_int_equal(ota_manifest_parse(NULL, 0, "X", &m), OTA_ERR_MALFORMED);
}

static bool valid_utf8(const char *s)
{
    const unsigned char *p = (const unsigned char *)s;
    while (*p) {
        size_t n = *p < 0x80 ? 1 : *p < 0xE0 ? 2 : *p < 0xF0 ? 3 : 4;
        for (size_t j = 1; j < n; j++)
            if ((p[j] & 0xC0) != 0x80)
                return false;
        p += n;
    }
    return true;
}

static void test_truncation(void **state)
{
    (void)state;
    /* longer than every buffer; "é" is 2 bytes: an even buffer keeps one less of them
     * than fits, never half of one */
    size_t text = OTA_CFG_MANIFEST_TEXT_MAX, nmax = OTA_CFG_MANIFEST_NAME_MAX;
    char *summary = calloc(1, 2 * text + 1), *url = calloc(1, text + 1);
    char *name = calloc(1, nmax + 11), *doc = calloc(1, 4 * text + nmax + 512);
    assert_true(summary && url && name && doc);
    for (size_t i = 0; i < text; i++)
        memcpy(summary + 2 * i, "\xc3\xa9", 2);
    memset(url, 'u', text);
    memset(name, 'n', nmax + 10);
    sprintf(doc, "{\"name\":\"%s\",\"version\":\"v\",\"builds\":[{\"chipFamily\":"
                 "\"X\",\"ota\":{\"path\":\"p\"," MD5_OK ",\"summary\":\"%s\","
                 "\"release_url\":\"https://x/\\u20ac%s\"}}],"
                 "\"a_key_much_longer_than_the_key_buffer_of_the_parser\":1}",
            name, summary, url);
    ota_manifest_t m;
    assert_int_equal(parse(doc, "X", &m), OTA_OK);
    assert_int_equal(m.truncated, OTA_MANIFEST_TRUNC_NAME | OTA_MANIFEST_TRUNC_SUMMARY |
                                      OTA_MANIFEST_TRUNC_RELEASE_URL);
    assert_int_equal(strlen(m.name), sizeof m.name - 1);
    assert_true(strlen(m.summary) <= sizeof m.summary - 1);
    assert_true(strlen(m.summary) >= sizeof m.summary - 2);
    assert_int_equal(strlen(m.summary) % 2, 0);
    assert_true(valid_utf8(m.summary));
    assert_true(valid_utf8(m.release_url));
    assert_memory_equal(m.release_url, "https://x/\xe2\x82\xac", 13);
    assert_int_equal(strlen(m.release_url), sizeof m.release_url - 1);
    free(summary);
    free(url);
    free(name);
    free(doc);
}

/* deterministic pseudo-random bytes (xorshift32) */
static uint32_t rnd(uint32_t *s)
{
    *s ^= *s << 13;
    *s ^= *s >> 17;
    *s ^= *s << 5;
    return *s;
}

static void test_hostile(void **state)
{
    (void)state;
    ota_manifest_t m;
    size_t big = 1u << 20;
    char *doc = malloc(big + 256);
    assert_non_null(doc);

    /* nesting: the limit counts the top object (1) and the unknown key's arrays */
    for (int levels = OTA_CFG_MANIFEST_MAX_DEPTH - 1; levels <= OTA_CFG_MANIFEST_MAX_DEPTH;
         levels++) {
        int n = sprintf(doc, "{\"name\":\"n\",\"version\":\"v\",\"x\":");
        for (int i = 0; i < levels; i++)
            doc[n++] = '[';
        for (int i = 0; i < levels; i++)
            doc[n++] = ']';
        sprintf(doc + n, ",\"builds\":[{\"chipFamily\":\"X\",\"ota\":{\"path\":\"p\"," MD5_OK
                         "}}]}");
        int rc = parse(doc, "X", &m);
        if (levels == OTA_CFG_MANIFEST_MAX_DEPTH - 1) {
            assert_int_equal(rc, OTA_OK);
        } else {
            assert_int_equal(rc, OTA_ERR_MALFORMED);
            assert_int_equal(m.error, OTA_MANIFEST_E_DEPTH);
        }
    }
    /* a megabyte of '[': refused at the limit, no deep recursion */
    memset(doc, '[', big);
    doc[0] = '{';
    memcpy(doc + 1, "\"x\":", 4);
    assert_int_equal(ota_manifest_parse((const uint8_t *)doc, big, "X", &m), OTA_ERR_MALFORMED);
    assert_int_equal(m.error, OTA_MANIFEST_E_DEPTH);
    assert_true(m.error_offset < 100);

    /* a megabyte manifest: 20000 builds, ours the last one */
    int n = sprintf(doc, "{\"name\":\"n\",\"version\":\"v\",\"builds\":[");
    for (int i = 0; i < 20000; i++)
        n += sprintf(doc + n, "{\"chipFamily\":\"F%d\",\"ota\":{\"path\":\"p\"}},", i);
    n += sprintf(doc + n, "{\"chipFamily\":\"X\",\"ota\":{\"path\":\"last\"," MD5_OK "}}]}");
    assert_true((size_t)n < big + 256);
    assert_int_equal(parse(doc, "X", &m), OTA_OK);
    assert_string_equal(m.path, "last");
    assert_int_equal(m.builds, 20001);

    /* random bytes, and random damage to a valid manifest: any result but a crash,
     * and on success NUL-terminated fields (ASan and UBSan watch the rest) */
    uint32_t seed = 0x12345678u;
    size_t fixed_len = strlen(ours);
    for (int round = 0; round < 20000; round++) {
        size_t len;
        if (round % 2 == 0) {
            len = rnd(&seed) % 300;
            static const char alphabet[] = "{}[]\",:\\u0123456789abcdefnulltrue -.eE\x80\xc3"
                                           "\xff \t\n";
            for (size_t i = 0; i < len; i++)
                doc[i] = alphabet[rnd(&seed) % (sizeof alphabet - 1)];
        } else {
            len = fixed_len;
            memcpy(doc, ours, len);
            for (int k = 0; k < 1 + (int)(rnd(&seed) % 4); k++)
                doc[rnd(&seed) % len] = (char)rnd(&seed);
            if (rnd(&seed) % 4 == 0)
                len = rnd(&seed) % len; /* cut short */
        }
        int rc = ota_manifest_parse((const uint8_t *)doc, len, "LINUX-X86_64", &m);
        assert_true(rc == OTA_OK || rc == OTA_ERR_MALFORMED || rc == OTA_ERR_TOO_LONG ||
                    rc == OTA_ERR_UNSUPPORTED);
        if (rc == OTA_OK) {
            assert_true(memchr(m.name, 0, sizeof m.name) != NULL);
            assert_true(memchr(m.version, 0, sizeof m.version) != NULL);
            assert_true(memchr(m.path, 0, sizeof m.path) != NULL && m.path[0] != '\0');
            assert_true(m.has_md5 || m.has_sha256);
            assert_true(m.rollout <= 100);
        } else {
            assert_int_not_equal(m.error, OTA_MANIFEST_OK);
            assert_true(m.error_offset <= len);
        }
    }
    free(doc);
}

static void test_resolve_url(void **state)
{
    (void)state;
    static const struct {
        const char *base, *path, *want;
    } cases[] = {
        {"https://h.example/a/b/manifest.json", "fw.bin", "https://h.example/a/b/fw.bin"},
        {"https://h.example/a/b/manifest.json", "sub/fw.bin", "https://h.example/a/b/sub/fw.bin"},
        {"https://h.example/a/b/manifest.json", "/fw.bin", "https://h.example/fw.bin"},
        {"http://h:8080/m.json?x=/y#z", "fw.bin", "http://h:8080/fw.bin"},
        {"http://h:8080/d/m.json?x=/y", "/r/fw.bin", "http://h:8080/r/fw.bin"},
        {"http://h:8080", "fw.bin", "http://h:8080/fw.bin"},
        {"http://h:8080?q", "fw.bin", "http://h:8080/fw.bin"},
        {"http://h/", "fw.bin", "http://h/fw.bin"},
        {"HTTPS://H/x/m.json", "fw.bin", "HTTPS://H/x/fw.bin"},
        {"https://h/x/m.json", "http://cdn/fw.bin", "http://cdn/fw.bin"},
        {"https://h/x/m.json", "HTTPS://cdn/fw.bin", "HTTPS://cdn/fw.bin"},
        {"ftp://h/x", "https://cdn/fw.bin", "https://cdn/fw.bin"},
        /* ESPHome takes any path containing "http" for a URL; we look at the start */
        {"https://h/x/m.json", "fw-http.bin", "https://h/x/fw-http.bin"},
    };
    char out[128];
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        int rc = ota_manifest_resolve_url(cases[i].base, cases[i].path, out, sizeof out);
        if (rc < 0 || strcmp(out, cases[i].want) != 0 || (size_t)rc != strlen(cases[i].want))
            fail_msg("case %zu: rc %d '%s', want '%s'", i, rc, rc >= 0 ? out : "",
                     cases[i].want);
    }
    assert_int_equal(ota_manifest_resolve_url("ftp://h/m", "fw.bin", out, sizeof out),
                     OTA_ERR_INVALID_ARG);
    assert_int_equal(ota_manifest_resolve_url("http://", "fw.bin", out, sizeof out),
                     OTA_ERR_INVALID_ARG);
    assert_int_equal(ota_manifest_resolve_url("http:///m", "fw.bin", out, sizeof out),
                     OTA_ERR_INVALID_ARG);
    assert_int_equal(ota_manifest_resolve_url("http://h/m", "", out, sizeof out),
                     OTA_ERR_INVALID_ARG);
    assert_int_equal(ota_manifest_resolve_url(NULL, "a", out, sizeof out), OTA_ERR_INVALID_ARG);
    /* exactly fitting, and one byte short */
    const char *want = "http://h/d/fw.bin";
    assert_int_equal(ota_manifest_resolve_url("http://h/d/m", "fw.bin", out, strlen(want) + 1),
                     (int)strlen(want));
    assert_int_equal(ota_manifest_resolve_url("http://h/d/m", "fw.bin", out, strlen(want)),
                     OTA_ERR_TOO_LONG);
    assert_int_equal(ota_manifest_resolve_url("http://h", "fw.bin", out, 16), 15);
    assert_string_equal(out, "http://h/fw.bin");
    assert_int_equal(ota_manifest_resolve_url("http://h", "fw.bin", out, 15), OTA_ERR_TOO_LONG);
}

static void test_rollout_bucket(void **state)
{
    (void)state;
    /* the documented formula, as Python computes it:
     *   int.from_bytes(hashlib.sha256(name + b"\0" + version).digest()[:4], "big") % 100 */
    assert_int_equal(ota_manifest_rollout_bucket(crypto, "kitchen", "1.0.1"), 61);
    assert_int_equal(ota_manifest_rollout_bucket(crypto, "node-0", "2.0"), 83);
    assert_int_equal(ota_manifest_rollout_bucket(crypto, "", ""), 4);
    /* stable */
    for (int i = 0; i < 10; i++)
        assert_int_equal(ota_manifest_rollout_bucket(crypto, "kitchen", "1.0.1"), 61);

    /* 10000 names: every bucket about 100 times (chi-square over the 100 buckets, 99
     * degrees of freedom: 99.9 % of uniform samples stay below 148.2) */
    int count[100] = {0}, moved = 0, in_half = 0;
    const int names = 10000;
    for (int i = 0; i < names; i++) {
        char name[32];
        snprintf(name, sizeof name, "node-%d", i);
        int b = ota_manifest_rollout_bucket(crypto, name, "2024.6.1");
        assert_true(b >= 0 && b < 100);
        count[b]++;
        if (b < 50)
            in_half++;
        if (ota_manifest_rollout_bucket(crypto, name, "2024.6.2") != b)
            moved++;
    }
    double chi2 = 0;
    for (int b = 0; b < 100; b++) {
        double d = count[b] - names / 100.0;
        chi2 += d * d / (names / 100.0);
    }
    if (chi2 > 148.2)
        fail_msg("chi-square %.1f: the buckets are not uniform", chi2);
    /* rollout 50 takes about half (5000 +- 4 standard deviations of 50) */
    assert_true(in_half > 4800 && in_half < 5200);
    /* another release draws again: about 99 % of the nodes change bucket */
    assert_true(moved > 9700);

    assert_int_equal(ota_manifest_rollout_bucket(NULL, "a", "b"), OTA_ERR_INVALID_ARG);
    assert_int_equal(ota_manifest_rollout_bucket(crypto, NULL, "b"), OTA_ERR_INVALID_ARG);
    assert_int_equal(ota_manifest_rollout_bucket(crypto, "a", NULL), OTA_ERR_INVALID_ARG);
    ota_crypto_port_t no_hash = {0};
    assert_int_equal(ota_manifest_rollout_bucket(&no_hash, "a", "b"), OTA_ERR_INVALID_ARG);
}

static void test_should_take(void **state)
{
    (void)state;
    ota_manifest_t m;
    const char *fam = "X";
    assert_int_equal(parse("{\"name\":\"n\",\"version\":\"2.0\",\"builds\":[{\"chipFamily\":\"X\","
                           "\"ota\":{\"path\":\"p\"," MD5_OK ",\"secure_version\":3}}]}", fam, &m),
                     OTA_OK);
    ota_manifest_node_t node = {"kitchen", "1.0", "X", 0, false, false};
    int bucket = 7;
    assert_int_equal(ota_manifest_should_take(crypto, &m, fam, &node, &bucket), OTA_MANIFEST_TAKE);
    assert_int_equal(bucket, ota_manifest_rollout_bucket(crypto, "kitchen", "2.0"));
    assert_int_equal(ota_manifest_should_take(crypto, &m, fam, &node, NULL), OTA_MANIFEST_TAKE);

    /* a signature is required and did not verify: first of all */
    node.signature_required = true;
    assert_int_equal(ota_manifest_should_take(crypto, &m, fam, &node, &bucket),
                     OTA_MANIFEST_UNSIGNED);
    assert_int_equal(bucket, -1);
    node.signature_verified = true;
    assert_int_equal(ota_manifest_should_take(crypto, &m, fam, &node, NULL), OTA_MANIFEST_TAKE);

    /* any other version is taken, an older one too (secure_version limits that) */
    node.version = "2.0";
    assert_int_equal(ota_manifest_should_take(crypto, &m, fam, &node, NULL),
                     OTA_MANIFEST_SAME_VERSION);
    node.version = "9.9";
    assert_int_equal(ota_manifest_should_take(crypto, &m, fam, &node, NULL), OTA_MANIFEST_TAKE);
    node.version = "2.0 ";
    assert_int_equal(ota_manifest_should_take(crypto, &m, fam, &node, NULL), OTA_MANIFEST_TAKE);
    node.version = "1.0";

    node.chip_family = "Y";
    assert_int_equal(ota_manifest_should_take(crypto, &m, fam, &node, NULL),
                     OTA_MANIFEST_WRONG_FAMILY);
    node.chip_family = "X";

    node.min_secure_version = 3;
    assert_int_equal(ota_manifest_should_take(crypto, &m, fam, &node, NULL), OTA_MANIFEST_TAKE);
    node.min_secure_version = 4;
    assert_int_equal(ota_manifest_should_take(crypto, &m, fam, &node, NULL),
                     OTA_MANIFEST_BELOW_MINIMUM);
    /* without secure_version in the manifest the image's descriptor decides later */
    m.has_secure_version = false;
    assert_int_equal(ota_manifest_should_take(crypto, &m, fam, &node, NULL), OTA_MANIFEST_TAKE);
    node.min_secure_version = 0;

    /* rollout: 0 nobody, 100 everybody, in between the bucket decides */
    int taken[3] = {0};
    const unsigned rollouts[3] = {0, 30, 100};
    for (int i = 0; i < 1000; i++) {
        char name[32];
        snprintf(name, sizeof name, "n%d", i);
        node.name = name;
        for (int r = 0; r < 3; r++) {
            m.rollout = (uint8_t)rollouts[r];
            ota_manifest_decision_t d = ota_manifest_should_take(crypto, &m, fam, &node, &bucket);
            assert_true(bucket >= 0 && bucket < 100);
            assert_int_equal(d, (unsigned)bucket < rollouts[r] ? OTA_MANIFEST_TAKE
                                                               : OTA_MANIFEST_NOT_IN_ROLLOUT);
            if (d == OTA_MANIFEST_TAKE)
                taken[r]++;
        }
    }
    assert_int_equal(taken[0], 0);
    assert_true(taken[1] > 240 && taken[1] < 360);
    assert_int_equal(taken[2], 1000);
    node.name = "kitchen";
    m.rollout = 100;

    m.version[0] = '\0';
    assert_int_equal(ota_manifest_should_take(crypto, &m, fam, &node, NULL),
                     OTA_MANIFEST_NO_VERSION);
    strcpy(m.version, "2.0");
    assert_int_equal(ota_manifest_should_take(crypto, NULL, fam, &node, NULL),
                     OTA_MANIFEST_DECISION_ERROR);
    assert_int_equal(ota_manifest_should_take(crypto, &m, NULL, &node, NULL),
                     OTA_MANIFEST_DECISION_ERROR);
    node.name = NULL;
    assert_int_equal(ota_manifest_should_take(crypto, &m, fam, &node, NULL),
                     OTA_MANIFEST_DECISION_ERROR);
    node.name = "kitchen";
    ota_crypto_port_t no_hash = {0};
    assert_int_equal(ota_manifest_should_take(&no_hash, &m, fam, &node, NULL),
                     OTA_MANIFEST_DECISION_ERROR);
}

static uint8_t *load(const char *name, size_t *len)
{
    char path[1024];
    snprintf(path, sizeof path, "%s/%s", g_dir, name);
    FILE *f = fopen(path, "rb");
    if (f == NULL)
        fail_msg("cannot open %s (pass the vectors' directory as argv[1])", path);
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    uint8_t *p = malloc((size_t)n + 1);
    assert_non_null(p);
    assert_int_equal(fread(p, 1, (size_t)n, f), (size_t)n);
    fclose(f);
    *len = (size_t)n;
    return p;
}

/* The vectors' signed images are "bytes, then a sector over their SHA-256": just what
 * a signed manifest and its manifest.json.sig are, so the 8192 bytes before the
 * sector serve as the manifest. */
static void test_signature(void **state)
{
    (void)state;
    size_t n, dn, d2n;
    static const char *const images[] = {"image_ecdsa.bin", "image_rsa.bin"};
    static const char *const digests[] = {"ecdsa_key1.digest.bin", "rsa_key1.digest.bin"};
    uint8_t *other = load("ecdsa_key2.digest.bin", &d2n);
    for (int k = 0; k < 2; k++) {
        uint8_t *img = load(images[k], &n);
        uint8_t *dig = load(digests[k], &dn);
        assert_int_equal(dn, 32);
        assert_true(n > OTA_SIG_SECTOR_SIZE);
        size_t mlen = n - OTA_SIG_SECTOR_SIZE;
        const uint8_t *sig = img + mlen;
        ota_sig_trusted_t t = {.digest = dig};
        ota_sig_trusted_t t2[2] = {{.digest = other}, {.digest = dig}};
        ota_sig_result_t res;
        assert_int_equal(ota_manifest_verify_signature(crypto, img, mlen, sig,
                                                       OTA_SIG_SECTOR_SIZE, &t, 1, &res), OTA_OK);
        assert_int_equal(res.valid_block, 0);
        assert_int_equal(ota_manifest_verify_signature(crypto, img, mlen, sig,
                                                       OTA_SIG_SECTOR_SIZE, t2, 2, &res), OTA_OK);
        assert_int_equal(res.trusted, 1);
        /* the exact bytes: one byte less, or one changed, is another manifest */
        assert_int_equal(ota_manifest_verify_signature(crypto, img, mlen - 1, sig,
                                                       OTA_SIG_SECTOR_SIZE, &t, 1, &res),
                         OTA_ERR_BAD_SIGNATURE);
        assert_int_equal(res.status[0], OTA_SIG_DIGEST_MISMATCH);
        img[100] ^= 1;
        assert_int_equal(ota_manifest_verify_signature(crypto, img, mlen, sig,
                                                       OTA_SIG_SECTOR_SIZE, &t, 1, NULL),
                         OTA_ERR_BAD_SIGNATURE);
        img[100] ^= 1;
        /* another key; a cut signature file; no signature at all */
        ota_sig_trusted_t t3 = {.digest = other};
        assert_int_equal(ota_manifest_verify_signature(crypto, img, mlen, sig,
                                                       OTA_SIG_SECTOR_SIZE, &t3, 1, NULL),
                         OTA_ERR_UNTRUSTED_KEY);
        assert_int_equal(ota_manifest_verify_signature(crypto, img, mlen, sig,
                                                       OTA_SIG_SECTOR_SIZE - 1, &t, 1, NULL),
                         OTA_ERR_NOT_SIGNED);
        uint8_t blank[OTA_SIG_SECTOR_SIZE];
        memset(blank, 0xFF, sizeof blank);
        assert_int_equal(ota_manifest_verify_signature(crypto, img, mlen, blank, sizeof blank,
                                                       &t, 1, NULL), OTA_ERR_NOT_SIGNED);
        /* a damaged signature block */
        uint8_t copy[OTA_SIG_SECTOR_SIZE];
        memcpy(copy, sig, sizeof copy);
        copy[200] ^= 0x40;
        assert_int_equal(ota_manifest_verify_signature(crypto, img, mlen, copy, sizeof copy,
                                                       &t, 1, NULL), OTA_ERR_BAD_SIGNATURE);
        assert_int_equal(ota_manifest_verify_signature(NULL, img, mlen, sig, sizeof copy, &t, 1,
                                                       NULL), OTA_ERR_INVALID_ARG);
        assert_int_equal(ota_manifest_verify_signature(crypto, img, mlen, NULL, sizeof copy, &t,
                                                       1, NULL), OTA_ERR_INVALID_ARG);
        free(img);
        free(dig);
    }
    free(other);
}

static void test_names(void **state)
{
    (void)state;
    for (int e = OTA_MANIFEST_OK; e <= OTA_MANIFEST_E_NO_BUILD; e++) {
        const char *s = ota_manifest_error_name((ota_manifest_error_t)e);
        assert_non_null(s);
        assert_string_not_equal(s, "unknown error");
        for (int f = OTA_MANIFEST_OK; f < e; f++)
            assert_string_not_equal(s, ota_manifest_error_name((ota_manifest_error_t)f));
    }
    for (int d = OTA_MANIFEST_TAKE; d <= OTA_MANIFEST_DECISION_ERROR; d++)
        assert_string_not_equal(ota_manifest_decision_name((ota_manifest_decision_t)d), "unknown");
    /* the POSIX family: "LINUX-" and the CPU */
    assert_memory_equal(OTA_MANIFEST_FAMILY_POSIX, "LINUX-", 6);
    assert_true(strlen(OTA_MANIFEST_FAMILY_POSIX) < OTA_MANIFEST_FAMILY_MAX);
}

int main(int argc, char **argv)
{
    if (argc > 1)
        g_dir = argv[1];
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_esphome_documented),
        cmocka_unit_test(test_web_tools_manifest),
        cmocka_unit_test(test_our_additions),
        cmocka_unit_test(test_wrong_types_and_values),
        cmocka_unit_test(test_json_strictness),
        cmocka_unit_test(test_truncation),
        cmocka_unit_test(test_hostile),
        cmocka_unit_test(test_resolve_url),
        cmocka_unit_test(test_rollout_bucket),
        cmocka_unit_test(test_should_take),
        cmocka_unit_test(test_signature),
        cmocka_unit_test(test_names),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
