#!/bin/sh
# make footprint: cross-compiles the portable core (src/core) for the ESP8266
# (xtensa-lx106) and a Cortex-M4 at -Os with the default options of ota/opts.h, and
# prints code size and static RAM per module, plus the RAM a firmware reserves for
# the component (sizeof ota_server_t, ota_safe_mode_t).
#
# It compiles with -nostdinc: only the compiler's own freestanding headers
# (stdint.h, stddef.h, stdbool.h) and a declaration-only <string.h> are visible, and
# the objects may call nothing but memcpy/memset/memcmp/memmove/memchr/strlen/strcmp.
# So a stray OS
# or libc dependency in the core fails this target.
set -eu
root=$(cd "$(dirname "$0")/.." && pwd)
out=${1:-$root/build-footprint}
mkdir -p "$out/shim"
cat > "$out/shim/string.h" <<'H'
/* The part of <string.h> the core may use: declarations only (the firmware's C
 * library or SDK provides them). */
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
H
cat > "$out/shim/sizes.c" <<'C'
#include "ota/mdns.h"
#include "ota/safe_mode.h"
#include "ota/server.h"
/* sizes of what the firmware allocates, read back with nm */
ota_server_t footprint_server;
ota_safe_mode_t footprint_safe_mode;
ota_mdns_t footprint_mdns;
C

allowed='^(memcpy|memmove|memset|memcmp|memchr|strlen|strcmp|__[a-z0-9_]+)$'  # __*: compiler runtime (e.g. 64-bit division)
status=0
printf '%-10s %-14s %8s %8s %8s\n' target module text data bss
for spec in "esp8266|xtensa-lx106-elf-|-mlongcalls -mtext-section-literals" \
            "cortex-m4|arm-none-eabi-|-mcpu=cortex-m4 -mthumb"; do
  target=${spec%%|*}; rest=${spec#*|}; prefix=${rest%%|*}; mflags=${rest#*|}
  cc=${prefix}gcc
  if ! command -v "$cc" >/dev/null 2>&1; then
    echo "footprint: $cc not found (run scripts/deps.sh footprint)" >&2; exit 1
  fi
  inc=$($cc -print-file-name=include)
  mkdir -p "$out/$target"
  tt=0; td=0; tb=0
  for src in "$root"/src/core/*.c; do
    name=$(basename "$src" .c)
    obj="$out/$target/$name.o"
    # shellcheck disable=SC2086
    $cc -std=c11 -Os -ffreestanding -nostdinc -isystem "$inc" -isystem "$out/shim" \
        -I"$root/include" -Wall -Wextra -Werror -Wundef -ffunction-sections -fdata-sections \
        $mflags -c "$src" -o "$obj"
    set -- $(${prefix}size "$obj" | tail -n 1)
    printf '%-10s %-14s %8s %8s %8s\n' "$target" "$name.c" "$1" "$2" "$3"
    tt=$((tt + $1)); td=$((td + $2)); tb=$((tb + $3))
  done
  # whatever the core needs and does not define itself must be in the allowance
  ${prefix}nm --defined-only "$out/$target"/*.o | awk 'NF==3{print $3}' | sort -u > "$out/$target/defined"
  bad=$(${prefix}nm -u "$out/$target"/*.o | awk 'NF==2{print $2}' | sort -u \
        | comm -23 - "$out/$target/defined" | grep -vE "$allowed" || true)
  if [ -n "$bad" ]; then
    echo "footprint: the core ($target) calls outside its allowance:" $bad >&2
    status=1
  fi
  printf '%-10s %-14s %8s %8s %8s\n' "$target" "total" "$tt" "$td" "$tb"
  # shellcheck disable=SC2086
  $cc -std=c11 -Os -ffreestanding -nostdinc -isystem "$inc" -isystem "$out/shim" \
      -I"$root/include" -fno-common $mflags -c "$out/shim/sizes.c" -o "$out/$target/sizes.o"
  srv=$(( 0x$(${prefix}nm -S "$out/$target/sizes.o" | awk '$4=="footprint_server"{print $2}') ))
  sm=$(( 0x$(${prefix}nm -S "$out/$target/sizes.o" | awk '$4=="footprint_safe_mode"{print $2}') ))
  printf '%-10s %-14s %8s bytes RAM (ota_server_t, caller-allocated)\n' "$target" "server" "$srv"
  md=$(( 0x$(${prefix}nm -S "$out/$target/sizes.o" | awk '$4=="footprint_mdns"{print $2}') ))
  printf '%-10s %-14s %8s bytes RAM (ota_mdns_t, caller-allocated)\n' "$target" "mdns" "$md"
  printf '%-10s %-14s %8s bytes RAM (ota_safe_mode_t)\n' "$target" "safe mode" "$sm"
  # shellcheck disable=SC2086
  $cc -std=c11 -Os -ffreestanding -nostdinc -isystem "$inc" -isystem "$out/shim" \
      -I"$root/include" -Wall -Wextra -Werror -Wundef -DOTA_CFG_ENABLE_ARDUINO=0 $mflags \
      -c "$root/src/core/arduino.c" -o "$out/$target/arduino-off.o"
  set -- $(${prefix}size "$out/$target/arduino-off.o" | tail -n 1)
  printf '%-10s %-14s %8s bytes of code with OTA_CFG_ENABLE_ARDUINO=0 (instead of the row above)\n' \
         "$target" "arduino.c" "$1"
done
exit $status
