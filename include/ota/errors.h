/*
 * ota/errors.h - the one error convention of the project.
 *
 * int results: 0 (OTA_OK) is success, negative values are OTA_ERR_*. Port functions
 * that transfer bytes return the positive count instead. OTA_ERR_WOULD_BLOCK is not
 * a failure: the operation could not finish now, and the core tries again on its next
 * poll. The mapping to wire response codes is explicit and separate
 * (ota_protocol_response_for_error() in ota/protocol.h).
 *
 * A function whose result is a count or a yes/no by design (a length, "read one /
 * none left") says so in its doc comment and keeps that meaning for 0 and positive
 * values; its failures are still negative OTA_ERR_* codes, so `< 0` always means
 * "failed" and `!= 0` means "not plain success" for the 0/negative functions.
 */
#ifndef OTA_ERRORS_H
#define OTA_ERRORS_H

#define OTA_OK 0
#define OTA_ERR_WOULD_BLOCK (-1)     /**< try again on the next poll */
#define OTA_ERR_CLOSED (-2)          /**< the peer closed the connection */
#define OTA_ERR_IO (-3)              /**< network or storage I/O failed */
#define OTA_ERR_TIMEOUT (-4)         /**< the peer was silent for too long */
#define OTA_ERR_INVALID_ARG (-5)     /**< a NULL or out-of-range argument */
#define OTA_ERR_NO_SPACE (-6)        /**< the image does not fit the slot */
#define OTA_ERR_NO_SLOT (-7)         /**< there is no slot to update */
#define OTA_ERR_BUSY (-8)            /**< another update is in progress */
#define OTA_ERR_BAD_MAGIC (-9)       /**< wrong protocol magic */
#define OTA_ERR_AUTH (-10)           /**< authentication failed */
#define OTA_ERR_NO_AUTH_METHOD (-11) /**< no auth method both sides support */
#define OTA_ERR_WRITE (-12)          /**< writing the slot failed */
#define OTA_ERR_MD5_MISMATCH (-13)   /**< received bytes do not match the announced MD5 */
#define OTA_ERR_BAD_IMAGE (-14)      /**< the image failed format validation */
#define OTA_ERR_ACTIVATE (-15)       /**< finishing/activating the slot failed */
#define OTA_ERR_INFLATE (-16)        /**< the gzip stream is corrupt */
#define OTA_ERR_PROTOCOL (-17)       /**< the peer broke the protocol */
#define OTA_ERR_UNSUPPORTED (-18)    /**< a requested feature/type is not supported */
#define OTA_ERR_CRYPTO (-19)         /**< hashing or random source failed */
#define OTA_ERR_PREPARE (-20)        /**< the slot could not be prepared (storage busy, ...) */
#define OTA_ERR_MALFORMED (-21)      /**< a message is not well formed (e.g. DNS) */
#define OTA_ERR_TOO_LONG (-22)       /**< the result does not fit the caller's buffer */
#define OTA_ERR_NOT_SIGNED (-23)     /**< the image carries no signature (ota/signature.h) */
#define OTA_ERR_BAD_SIGNATURE (-24)  /**< a signature is corrupt, or does not match the image */
#define OTA_ERR_UNTRUSTED_KEY (-25)  /**< signed, but by no key the node trusts */
#define OTA_ERR_ROLLBACK (-26)       /**< the image's secure_version is below the node's minimum */
#define OTA_ERR_SHA256_MISMATCH (-40) /**< the image does not have the announced SHA-256 (pull) */
/** The image would fit the flash, but not next to the running application: a port
 *  whose update area shares one region with the application (ESP8266's Updater
 *  layout, src/port/lwip/) answers it from the store's begin(). On the wire 0x88
 *  (ERROR_ESP8266_NOT_ENOUGH_SPACE); OTA_ERR_NO_SPACE stays "too big for the slot". */
#define OTA_ERR_NO_SPACE_LAYOUT (-31)
#define OTA_ERR_HTTP_STATUS (-27)    /**< an HTTP server answered with a status that is no success */
#define OTA_ERR_REDIRECT (-28)       /**< too many redirects, or a refused one (https to http) */
#define OTA_ERR_RESOLVE (-29)        /**< a host name could not be resolved */
#define OTA_ERR_TLS (-30)            /**< TLS failed: handshake, certificate or host name check */

/** A short English description of an OTA_ERR_* code ("unknown error" for others).
 *  Never NULL; the string is static. */
const char *ota_strerror(int err);

#endif /* OTA_ERRORS_H */
