/*
 * signed_opts.h - the "signed" configuration of make footprint: ota/opts.h's defaults
 * plus signed images (OTA_CFG_ENABLE_SIGNED: signature.c, the streaming check's
 * 4096-byte tail in ota_update_t). The signature arithmetic itself (ECDSA, RSA) is
 * the port's crypto table (mbedTLS or the chip's ROM/hardware) and is not counted.
 */
#define OTA_CFG_ENABLE_SIGNED 1
