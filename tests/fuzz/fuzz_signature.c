/*
 * fuzz_signature.c - libFuzzer target for the signed-image parsers of the core:
 * ota_sig_verify_sector() (ota/signature.h) over any signature sector, and the image
 * descriptor scanner (ota/app_desc.h) over any bytes in any chunking.
 *
 * Input: byte 0 picks the trust (bit 0: the key digest of block 0's own key material,
 * so the ECDSA / RSA checks themselves run on fuzzed keys and signatures; else a
 * fixed digest nobody has), byte 1 the scanner's chunk size; then 32 bytes of image
 * digest, then the sector (cut or 0xFF-padded to 4096 bytes; the whole input also
 * feeds the scanner). Nothing may crash, read out of bounds or leak; a sector of
 * another length than 4096 is never accepted; the streamed scanner and
 * ota_app_desc_find() never point past the input.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fake_port.h"
#include "ota/app_desc.h"
#include "ota/signature.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 2 + OTA_SIG_DIGEST_LEN)
        return 0;
    fake_port_t fp;
    fake_init(&fp, 4096);
    fake_tables(&fp, 0);
    const ota_crypto_port_t *c = &fp.t.crypto;
    uint8_t mode = data[0];
    size_t piece = (size_t)data[1] + 1;
    const uint8_t *digest = data + 2;
    const uint8_t *rest = data + 2 + OTA_SIG_DIGEST_LEN;
    size_t rest_len = size - 2 - OTA_SIG_DIGEST_LEN;

    static uint8_t sector[OTA_SIG_SECTOR_SIZE];
    memset(sector, 0xFF, sizeof sector);
    memcpy(sector, rest, rest_len < sizeof sector ? rest_len : sizeof sector);

    uint8_t trusted_digest[OTA_SIG_DIGEST_LEN];
    memset(trusted_digest, 0xA5, sizeof trusted_digest);
    ota_sig_block_t blk;
    if ((mode & 1) && ota_sig_block_parse(sector, &blk) == OTA_OK) {
        /* trust block 0's own key: SHA-256 of its key material, as a node would */
        ota_hash_ctx_t h;
        if (c->hash_start(c->ctx, &h, OTA_HASH_SHA256) == OTA_OK &&
            c->hash_update(c->ctx, &h, blk.key, blk.key_len) == OTA_OK)
            (void)c->hash_finish(c->ctx, &h, trusted_digest);
    }
    ota_sig_trusted_t trusted = {.digest = trusted_digest};
    ota_sig_result_t res;
    (void)ota_sig_verify_sector(c, sector, sizeof sector, digest, &trusted, 1, &res);
    if (res.valid_block >= (int)OTA_SIG_MAX_BLOCKS)
        abort();
    /* a truncated sector is never accepted */
    size_t cut = rest_len % OTA_SIG_SECTOR_SIZE;
    if (cut > 0 && ota_sig_verify_sector(c, rest, cut, digest, &trusted, 1, NULL) == OTA_OK)
        abort();

    /* the descriptor scanner, streamed in pieces, and the whole-buffer search */
    ota_app_desc_scan_t scan;
    ota_app_desc_scan_init(&scan);
    for (size_t off = 0; off < size; off += piece)
        ota_app_desc_scan_feed(&scan, data + off, size - off < piece ? size - off : piece);
    uint32_t sv;
    char version[OTA_APP_DESC_VERSION_LEN];
    if (ota_app_desc_scan_result(&scan, &sv, version) &&
        (scan.offset + 48u > size || strlen(version) >= sizeof version))
        abort();
    long at = ota_app_desc_find(data, size);
    if (at >= 0 && (size_t)at + OTA_APP_DESC_SIZE > size)
        abort();
    fake_free(&fp);
    return 0;
}
