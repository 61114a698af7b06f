/* The part of <string.h> the core may use, declarations only: the firmware's C
 * library or SDK provides them (here: libc_shim.c, not counted). With -nostdinc this
 * and the compiler's freestanding headers are all the footprint build can see. */
#ifndef OTA_FOOTPRINT_STRING_H
#define OTA_FOOTPRINT_STRING_H
#include <stddef.h>
void *memcpy(void *dst, const void *src, size_t n);
void *memmove(void *dst, const void *src, size_t n);
void *memset(void *dst, int c, size_t n);
int memcmp(const void *a, const void *b, size_t n);
void *memchr(const void *s, int c, size_t n);
size_t strlen(const char *s);
int strcmp(const char *a, const char *b);
#endif
