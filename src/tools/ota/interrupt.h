/*
 * interrupt.h - what Ctrl-C (SIGINT) or SIGTERM says while a command talks to a
 * node: before any firmware byte went out the node is unchanged; during the
 * transfer it discards the partial image; after the last byte it may still
 * activate the image; after a confirmed update it has the new firmware. The
 * commands keep ota_interrupt_phase current (client.h's phase_out points at it)
 * and the handler prints the sentence for it, then exits with 130.
 */
#ifndef OTA_TOOLS_OTA_INTERRUPT_H
#define OTA_TOOLS_OTA_INTERRUPT_H

#include <signal.h>

#include "client.h"

/* Beyond ota_phase_t: the states after an upload, and the fleet's. */
enum {
    OTA_INTERRUPT_NONE = -1,     /* no message: the default action */
    OTA_INTERRUPT_UPDATED = 100, /* the node confirmed the update (run: waiting) */
    OTA_INTERRUPT_FLEET = 101,   /* several uploads at once */
};

extern volatile sig_atomic_t ota_interrupt_phase;

/** Handle SIGINT and SIGTERM with the messages above (once per process). */
void ota_interrupt_install(void);

#endif
