/*
 * interrupt.c - the node's state in words when the user interrupts (interrupt.h).
 */
#include "interrupt.h"

#include <string.h>
#include <unistd.h>

volatile sig_atomic_t ota_interrupt_phase = OTA_INTERRUPT_NONE;

static const char *message(int phase)
{
    switch (phase) {
    case OTA_PHASE_RESOLVE:
    case OTA_PHASE_CONNECT:
    case OTA_PHASE_HANDSHAKE:
    case OTA_PHASE_AUTH:
    case OTA_PHASE_PREPARE:
        return "interrupted before any firmware was sent: the node is unchanged and keeps "
               "running its current firmware\n";
    case OTA_PHASE_UPLOAD:
        return "interrupted during the transfer: the node discards the partial image when the "
               "connection closes and keeps running its current firmware; upload again to "
               "update it\n";
    case OTA_PHASE_VERIFY:
        return "interrupted after the whole image was sent: the node may still verify and "
               "activate it and reboot; 'ota logs' shows which firmware it runs\n";
    case OTA_PHASE_DONE:
    case OTA_INTERRUPT_UPDATED:
        return "interrupted: the node had already verified and activated the new firmware; "
               "it is rebooting into it or running it\n";
    case OTA_INTERRUPT_FLEET:
        return "interrupted: nodes reported OK have the new firmware; the others keep their "
               "current firmware or, if the whole image had been sent, may still activate it\n";
    }
    return NULL;
}

static void on_signal(int sig)
{
    const char *m = message((int)ota_interrupt_phase);
    if (m != NULL) {
        /* write(2) only: async-signal-safe */
        ssize_t w = write(STDERR_FILENO, "\n", 1);
        w = write(STDERR_FILENO, m, strlen(m));
        (void)w;
    }
    signal(sig, SIG_DFL);
    _exit(128 + sig);
}

void ota_interrupt_install(void)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
}
