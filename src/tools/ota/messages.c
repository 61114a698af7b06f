/*
 * messages.c - the uploader's words for every way an upload can fail, and for a
 * ".local" name that nothing resolved.
 */
#include "messages.h"

#include <string.h>

#include "ota/protocol.h"

void ota_device_code_message(uint8_t code, const char **m, const char **h)
{
    *h = NULL;
    switch (code) {
    case OTA_RESP_ERROR_MAGIC:
        *m = "the device rejected the image: wrong magic bytes or not a valid firmware image";
        *h = "check that the file is a firmware built for this device (not a .elf/.map or a "
             "build for another board); its running firmware is unchanged";
        break;
    case OTA_RESP_ERROR_UPDATE_PREPARE:
        *m = "the device could not prepare its update slot: the image is too big for the slot, "
             "or its storage is busy";
        *h = "make the firmware smaller (or use a larger partition layout), or retry in a moment";
        break;
    case OTA_RESP_ERROR_AUTH_INVALID:
        *m = "authentication failed: wrong password, or no authentication method in common";
        *h = "check the password (--password, --password-file or OTA_PASSWORD); the device's "
             "log says which it was";
        break;
    case OTA_RESP_ERROR_WRITING_FLASH:
        *m = "the device failed to write the image to its flash (or the compressed stream was "
             "corrupt)";
        *h = "retry; if it keeps failing the flash may be worn out, or try --no-compress";
        break;
    case OTA_RESP_ERROR_UPDATE_END:
        *m = "the device could not finish and activate the new image";
        *h = "the old firmware keeps running; retry the upload, and check the device's log";
        break;
    case OTA_RESP_ERROR_INVALID_BOOTSTRAPPING:
        *m = "the ESP8266 has not been reset since it was flashed over serial, so it cannot "
             "apply an OTA update";
        *h = "power-cycle the device once (unplug it, or press its reset button), then upload "
             "again";
        break;
    case OTA_RESP_ERROR_WRONG_CURRENT_FLASH_CONFIG:
        *m = "the firmware running on the device was built for a different flash size than "
             "the chip has";
        *h = "flash a firmware with the right flash size over serial once; OTA works after that";
        break;
    case OTA_RESP_ERROR_WRONG_NEW_FLASH_CONFIG:
        *m = "the new image is built for a flash size this device does not have";
        *h = "build the firmware for the board's real flash size";
        break;
    case OTA_RESP_ERROR_ESP8266_NOT_ENOUGH_SPACE:
        *m = "the ESP8266 has no room for the new image beside the running one";
        *h = "make the firmware smaller, or upload a minimal firmware first and then the full one";
        break;
    case OTA_RESP_ERROR_ESP32_NOT_ENOUGH_SPACE:
        *m = "the ESP32's update partition is too small for this image";
        *h = "make the firmware smaller or use a partition table with larger app partitions "
             "(needs one serial flash)";
        break;
    case OTA_RESP_ERROR_NO_UPDATE_PARTITION:
        *m = "the device has no partition or slot to write an update to";
        *h = "flash a partition layout with two app slots over serial once";
        break;
    case OTA_RESP_ERROR_MD5_MISMATCH:
        *m = "the image the device received does not match its MD5: it was corrupted on the way";
        *h = "retry the upload; the device kept its old firmware";
        break;
    case OTA_RESP_ERROR_RP2040_NOT_ENOUGH_SPACE:
        *m = "the RP2040 does not have enough space for this image";
        *h = "make the firmware smaller";
        break;
    case OTA_RESP_ERROR_SIGNATURE_INVALID:
        *m = "the device refused the image: not signed by a trusted key (unsigned, signed "
             "by another key, or altered after signing); it keeps running its current "
             "firmware";
        *h = "sign the firmware with a key the device trusts: ota sign --key KEY.pem "
             "FIRMWARE (ota image info FIRMWARE shows what it carries)";
        break;
    case OTA_RESP_ERROR_VERSION_DOWNGRADE:
        *m = "the device refused the image as a downgrade: its security version (on our "
             "nodes the secure_version of its image descriptor) is below the minimum the "
             "device takes (anti-rollback); it keeps running its current firmware";
        *h = "upload a newer build, or one signed with 'ota sign --security-version N' at "
             "least the device's minimum ('ota image info' shows an image's)";
        break;
    case OTA_RESP_ERROR_PARTITION_TABLE_VERIFY:
    case OTA_RESP_ERROR_BOOTLOADER_VERIFY:
        *m = "the device could not verify the partition table or bootloader it was sent; "
             "nothing was changed";
        *h = "check the image and the device's log, then retry";
        break;
    case OTA_RESP_ERROR_PARTITION_TABLE_UPDATE:
    case OTA_RESP_ERROR_BOOTLOADER_UPDATE:
        *m = "the device failed while writing its partition table or bootloader: it may "
             "not boot any more";
        *h = "do not reboot it; open its log and retry the same update at once, or recover "
             "it over serial";
        break;
    case OTA_RESP_ERROR_ENCRYPTION_REQUIRED:
        *m = "the device takes only encrypted uploads (ESPHome's ota: encryption:), which "
             "this tool does not speak";
        *h = "upload with ESPHome's own tool, or remove encryption: from the device's "
             "ota: block and flash it once";
        break;
    case OTA_RESP_ERROR_UNSUPPORTED_OTA_TYPE:
        *m = "the device does not support this kind of update";
        *h = "update the device's firmware to a version that supports it";
        break;
    case OTA_RESP_ERROR_BUSY:
        *m = "the device is busy with another update";
        *h = "wait for the other upload to finish (or time out), then try again";
        break;
    case OTA_RESP_ERROR_UNKNOWN:
        *m = "the device reported an unknown error";
        *h = "check the device's log, then retry";
        break;
    default:
        *m = "the device answered an error code this uploader does not know";
        *h = "check the device's log; a newer uploader may know the code";
        break;
    }
}

const char *ota_phase_name(ota_phase_t phase)
{
    switch (phase) {
    case OTA_PHASE_RESOLVE: return "name resolution";
    case OTA_PHASE_CONNECT: return "connect";
    case OTA_PHASE_HANDSHAKE: return "handshake";
    case OTA_PHASE_AUTH: return "authentication";
    case OTA_PHASE_PREPARE: return "preparation";
    case OTA_PHASE_UPLOAD: return "upload";
    case OTA_PHASE_VERIFY: return "verification";
    case OTA_PHASE_DONE: return "done";
    }
    return "?";
}

static const char *method_name(uint8_t m)
{
    switch (m) {
    case OTA_RESP_REQUEST_AUTH_SALTED: return "salted";
    case OTA_RESP_REQUEST_AUTH_SHA256: return "SHA-256";
    case OTA_RESP_REQUEST_AUTH_MD5: return "MD5";
    default: return "an unknown";
    }
}

static const char *offer_name(uint8_t m)
{
    switch (m) {
    case OTA_RESP_AUTH_OK: return "no password at all";
    case OTA_RESP_REQUEST_AUTH_SHA256: return "the legacy SHA-256 challenge";
    case OTA_RESP_REQUEST_AUTH_MD5: return "the legacy MD5 challenge";
    default: return "an unknown auth method";
    }
}

/* A salted node whose salt is not the one recorded: say what that can mean. */
static void salt_note(FILE *out, const ota_client_options_t *o, const ota_client_result_t *r)
{
    if (!r->salt_changed || o->known_file == NULL)
        return;
    fprintf(out, "note: its salt differs from the one recorded for %s in %s line %u: the "
                 "node's password was changed or it was set up again, or this is another "
                 "device\n", o->known_node, o->known_file, o->known_line);
}

/* Salted auth was required and the device offered something weaker. */
static void downgrade(FILE *out, const ota_client_options_t *o, const ota_client_result_t *r,
                      const char *where)
{
    const char *offer = offer_name(r->device_code);
    if (o->require_salted == OTA_SALTED_BY_KNOWN) {
        bool same = strcmp(o->known_node, where) == 0;
        fprintf(out, "error: %s%s%s%s offered %s, but it proved salted authentication before "
                     "(%s line %u); refusing: no response and no firmware were sent\n",
                o->known_node, same ? "" : " (at ", same ? "" : where, same ? "" : ")", offer,
                o->known_file, o->known_line);
        fprintf(out, "hint: this may be an impostor. If the node was really changed to %s, "
                     "delete line %u of %s and upload again\n",
                r->device_code == OTA_RESP_AUTH_OK ? "run without a password"
                                                   : "use the legacy methods",
                o->known_line, o->known_file);
        return;
    }
    fprintf(out, "error: %s offered %s, but %s sets a password without legacy_auth: true, "
                 "so the node uses salted auth; refusing: no response and no firmware were "
                 "sent\n", where, offer, o->config_file ? o->config_file : "the node's file");
    fprintf(out, "hint: this may not be your node (check the address); if it really speaks "
                 "only the legacy methods (a stock ESPHome device), set legacy_auth: true in "
                 "its file or pass --auth auto\n");
}

void ota_print_auth_warning(FILE *out, const ota_client_options_t *o,
                            const ota_client_result_t *r)
{
    if (!r->unproven)
        return;
    fprintf(out, "warning: %s used %s auth, so it cannot prove it knows the password (and "
                 "whoever asked may crack the answer offline); salted auth can: 'ota "
                 "hash-password'\n", o->known_node[0] ? o->known_node
                                     : r->address[0] ? r->address : o->host,
            method_name(r->auth_method));
}

void ota_print_failure(FILE *out, const ota_client_options_t *o, const ota_client_result_t *r)
{
    const char *m = NULL, *h = NULL;
    const char *phase = ota_phase_name(r->phase);
    const char *where = r->address[0] ? r->address : o->host;
    switch (r->failure) {
    case OTA_FAIL_RESOLVE:
        fprintf(out, "error: host '%s' does not resolve (%s)\n", o->host, r->detail);
        fprintf(out, "hint: check the name, or use the node's IP address (--device "
                     "192.168.1.50), or give the node a fixed address in its YAML (wifi: use_address: "
                     "192.168.1.50, or wifi: manual_ip: static_ip: ...), which 'ota upload "
                     "NODE.yaml' then uses; 'ota discover' lists the nodes that advertise "
                     "themselves\n");
        return;
    case OTA_FAIL_REFUSED:
        fprintf(out, "error: %s refused the connection\n", where);
        if (o->updated_ago_s > 0) {
            fprintf(out, "hint: this machine updated the node %ld s ago: it is most likely "
                         "still rebooting into the new firmware; retry in a few seconds (or "
                         "pass --retries 5)\n", o->updated_ago_s);
            return;
        }
        fprintf(out, "hint: check that OTA is enabled on the node and that --port %u is its OTA "
                     "port (3232 for ESP32, 8266 for ESP8266)\n", (unsigned)o->port);
        return;
    case OTA_FAIL_UNREACHABLE:
        fprintf(out, "error: cannot connect to %s: %s\n", where, r->detail);
        if (o->updated_ago_s > 0)
            fprintf(out, "hint: this machine updated the node %ld s ago: it is most likely "
                         "still rebooting; retry in a few seconds (or pass --retries 5)\n",
                    o->updated_ago_s);
        else
            fprintf(out, "hint: check that the node is powered and on this network\n");
        return;
    case OTA_FAIL_TIMEOUT:
        fprintf(out, "error: timed out during %s with %s (no answer for %u s)\n", phase, where,
                o->timeout_s);
        if (r->phase <= OTA_PHASE_CONNECT && o->updated_ago_s > 0)
            fprintf(out, "hint: this machine updated the node %ld s ago: it is most likely "
                         "still rebooting; retry in a few seconds (or pass --retries 5)\n",
                    o->updated_ago_s);
        else if (r->phase <= OTA_PHASE_CONNECT)
            fprintf(out, "hint: check the address and that the node is online\n");
        else
            fprintf(out, "hint: the link may be very slow or the node stalled; retry, or raise "
                         "--timeout\n");
        if (r->phase == OTA_PHASE_UPLOAD)
            fprintf(out, "note: %zu of %zu bytes were sent; the node keeps its old firmware\n",
                    r->sent, r->wire_size);
        return;
    case OTA_FAIL_CLOSED:
        fprintf(out, "error: %s closed the connection during %s%s%s\n", where, phase,
                r->detail[0] ? ": " : "", r->detail);
        if (r->phase == OTA_PHASE_UPLOAD)
            fprintf(out, "note: %zu of %zu bytes were sent; the node keeps its old firmware\n",
                    r->sent, r->wire_size);
        fprintf(out, "hint: the node may have rebooted or dropped off the network; retry\n");
        return;
    case OTA_FAIL_DEVICE:
        ota_device_code_message(r->device_code, &m, &h);
        fprintf(out, "error: %s (device code 0x%02X, during %s)\n", m, r->device_code, phase);
        if (r->device_code == OTA_RESP_ERROR_AUTH_INVALID)
            salt_note(out, o, r);
        if (h)
            fprintf(out, "hint: %s\n", h);
        return;
    case OTA_FAIL_UNEXPECTED:
        fprintf(out, "error: %s answered 0x%02X during %s, which is not a valid answer there\n",
                where, r->device_code, phase);
        fprintf(out, "hint: is this an OTA port of an ESPHome-compatible node? check --port\n");
        return;
    case OTA_FAIL_NEED_PASSWORD:
        fprintf(out, "error: the device requires a password\n");
        fprintf(out, "hint: pass it with --password, --password-file FILE or the OTA_PASSWORD "
                     "environment variable\n");
        return;
    case OTA_FAIL_AUTH_METHOD:
        if (r->device_code == OTA_RESP_AUTH_OK)
            fprintf(out, "error: the device asked for no password, which --auth excludes; no "
                         "firmware was sent\n");
        else
            fprintf(out, "error: the device asked for %s authentication, which --auth excludes; "
                         "no response and no firmware were sent\n", method_name(r->device_code));
        fprintf(out, "hint: if that is what the node should ask for, change --auth; otherwise "
                     "it may not be your node (check the address)\n");
        return;
    case OTA_FAIL_IMPOSTOR:
        fprintf(out, "error: the device at %s could not prove it knows the password (its salted "
                     "signature is wrong); no firmware was sent\n", where);
        salt_note(out, o, r);
        fprintf(out, "hint: this may not be your node (an impostor), or it was set up with "
                     "another password; check the address\n");
        return;
    case OTA_FAIL_NO_AUTH_ASKED:
        fprintf(out, "error: the device asked for no password, although one was given; %s "
                     "gets no firmware\n", where);
        fprintf(out, "hint: anything can answer 'no password needed': if this node really has "
                     "no password, upload with --auth none; otherwise it may be an impostor "
                     "(check the address)\n");
        return;
    case OTA_FAIL_DOWNGRADE:
        downgrade(out, o, r, where);
        return;
    case OTA_FAIL_ITERATIONS:
        fprintf(out, "error: %s offered salted auth with %u PBKDF2 iterations, fewer than the "
                     "%u it used before (%s line %u); refusing: no response and no firmware "
                     "were sent\n", o->known_node[0] ? o->known_node : where,
                (unsigned)r->iterations, (unsigned)o->known_iterations, o->known_file,
                o->known_line);
        fprintf(out, "hint: a real node does not lower its iterations by itself: this may be "
                     "an impostor. If you set the node up again with fewer, delete line %u of "
                     "%s and upload again\n", o->known_line, o->known_file);
        return;
    case OTA_FAIL_KNOWN_UNREADABLE:
        fprintf(out, "error: %s offered %s, but the known_nodes file is unusable (%s), so "
                     "this may be a node recorded there; refusing: no response and no "
                     "firmware were sent\n", where, offer_name(r->device_code), o->known_error);
        fprintf(out, "hint: fix or delete %s (nodes are recorded again by their next salted "
                     "upload), or point --known-nodes at another file\n", o->known_file);
        return;
    case OTA_FAIL_INTERNAL:
    case OTA_FAIL_NONE:
        fprintf(out, "error: internal error during %s\n", phase);
        return;
    }
}

void ota_print_mdns_miss(FILE *out, const char *host, const char *detail, double timeout_s,
                         bool no_query)
{
    fprintf(out, "error: host '%s' does not resolve (%s)\n", host, detail);
    if (no_query)
        fprintf(out, "note: no mDNS query could be sent for %s: no network interface is up "
                     "with multicast\n", host);
    else
        fprintf(out, "note: no node answered an mDNS query for %s within %g s\n", host,
                timeout_s);
    fprintf(out, "hint: check that the node is powered and on this network ('ota discover' "
                 "lists the nodes that answer), or use its IP address (--device "
                 "192.168.1.50), or set wifi: use_address (or manual_ip) in the node's YAML, "
                 "which 'ota upload/run/logs NODE.yaml' then use\n");
}

void ota_print_wait(FILE *out, const char *where, ota_phase_t phase, unsigned limit_s)
{
    switch (phase) {
    case OTA_PHASE_RESOLVE:
    case OTA_PHASE_CONNECT:
        fprintf(out, "still connecting to %s: no answer yet (a node that is rebooting, asleep "
                     "or not on this network does not answer); giving up after %u s\n",
                where, limit_s);
        return;
    case OTA_PHASE_HANDSHAKE:
        fprintf(out, "connected to %s, waiting for the node's greeting (a node whose main loop "
                     "is busy answers late); giving up after %u s\n", where, limit_s);
        return;
    case OTA_PHASE_AUTH:
        fprintf(out, "waiting for %s to answer the login: after failed logins a node delays "
                     "the next ones for a while (its back-off); giving up after %u s\n",
                where, limit_s);
        return;
    case OTA_PHASE_PREPARE:
        fprintf(out, "waiting for %s to prepare the update (it may be erasing its update "
                     "area); giving up after %u s\n", where, limit_s);
        return;
    case OTA_PHASE_UPLOAD:
        fprintf(out, "no acknowledgement from %s for a while (it may be writing to flash); "
                     "giving up after %u s of silence\n", where, limit_s);
        return;
    case OTA_PHASE_VERIFY:
    case OTA_PHASE_DONE:
        fprintf(out, "the whole image was sent; waiting for %s to verify and activate it; "
                     "giving up after %u s\n", where, limit_s);
        return;
    }
}
