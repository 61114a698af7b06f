/*
 * flash_emu.h - a file-backed NOR flash like an ESP8266's SPI flash chip: 4096-byte
 * sectors; an erase sets a whole sector to 0xFF; a write (program) can only clear
 * bits, in 4-byte words at 4-byte aligned offsets. Real NOR ANDs the new bits into
 * the old ones without a word: the emulator refuses such a write instead and says so
 * on stderr (and in ota_flash_emu_error()), so that a store or boot stage that forgot
 * an erase fails its tests instead of corrupting in silence.
 *
 * Optional timings model the chip (an ESP8266 erases a sector in tens of ms): an
 * erase sleeps erase_ms, a write write_us_per_kib per KiB, blocking, as the ROM
 * functions do. Counters let tests see how much was erased and written. A power-cut
 * hook for tests tears the N-th next operation and fails every later one.
 */
#ifndef OTA_LWIP_FLASH_EMU_H
#define OTA_LWIP_FLASH_EMU_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define OTA_FLASH_EMU_SECTOR 4096u
#define OTA_FLASH_EMU_ALIGN 4u

typedef struct ota_flash_emu {
    int fd;
    uint32_t size;
    uint32_t erase_ms;
    uint32_t write_us_per_kib;
    /* counters, for tests and status lines */
    uint64_t erases;
    uint64_t bytes_written;
    uint64_t bytes_read;
    uint64_t refused; /* writes refused: a bit 0 -> 1, misaligned, out of range */
    /* power-cut hook (tests): ops left before the cut; 0 = never */
    uint32_t cut_in;
    bool power_lost;
    char error[200]; /* the last failure, one line */
} ota_flash_emu_t;

/** Create (or truncate) path as a blank chip of size bytes (a multiple of 4096): all
 *  0xFF. \return 0, or -1 with the reason in err. */
int ota_flash_emu_create(const char *path, uint32_t size, char *err, size_t err_len);

/** Open an existing flash file; its size must be a multiple of 4096.
 *  \return 0, or -1 with the reason in err. */
int ota_flash_emu_open(ota_flash_emu_t *e, const char *path, char *err, size_t err_len);
void ota_flash_emu_close(ota_flash_emu_t *e);

void ota_flash_emu_set_timing(ota_flash_emu_t *e, uint32_t erase_ms, uint32_t write_us_per_kib);

/** Read any bytes (no alignment rule: the ESP8266's cache reads bytes too).
 *  \return 0 or -1. */
int ota_flash_emu_read(ota_flash_emu_t *e, uint32_t off, void *buf, size_t len);

/** Erase the sector at off (a multiple of 4096) to 0xFF. \return 0 or -1. */
int ota_flash_emu_erase(ota_flash_emu_t *e, uint32_t off);

/** Program len bytes at off (both multiples of 4). Fails, changing nothing, when a
 *  byte would need a bit set from 0 to 1 (the sector was not erased), with a message
 *  on stderr. \return 0 or -1. */
int ota_flash_emu_write(ota_flash_emu_t *e, uint32_t off, const void *buf, size_t len);

/** Tests: the power fails during the n-th next erase or write (n >= 1; 0 = never).
 *  That operation is torn (half a write lands; half a sector is erased) and it and
 *  every later operation, reads included, fail until the flash is closed and opened
 *  again (the next boot). */
void ota_flash_emu_cut_after(ota_flash_emu_t *e, uint32_t n);

/** The last failure as one line ("" when none). */
const char *ota_flash_emu_error(const ota_flash_emu_t *e);

#endif /* OTA_LWIP_FLASH_EMU_H */
