#!/bin/sh
# make footprint: code size and RAM of the portable core (src/core) in a firmware,
# for the ESP8266 (xtensa-lx106) and a Cortex-M4, in two configurations:
#   default  the defaults of ota/opts.h
#   signed   the defaults plus signed images (cmake/footprint/signed_opts.h)
#   minimal  cmake/footprint/minimal_opts.h (goal on the ESP8266: code <= 8192 bytes,
#            RAM <= 2048 bytes)
#
# How: for each target and configuration, CMake configures cmake/footprint/ (a stub
# firmware, firmware.c, that embeds the core with add_subdirectory exactly as a real
# firmware does) with the target's toolchain file (cmake/toolchain-*.cmake) and
# builds it: -Os, -ffunction-sections -fdata-sections, freestanding with -nostdinc
# (only the compiler's own headers and the declaration-only string.h of
# cmake/footprint/include are visible), linked with -nostdlib -Wl,--gc-sections so
# that the image keeps only the core code the stub's calls reach. The stub calls the
# API a firmware uses in that configuration (server lifecycle, plus the mDNS
# responder when OTA_CFG_ENABLE_MDNS is 1); the C library functions come from
# cmake/footprint/libc_shim.c, the compiler runtime from libgcc (the ESP8266's from
# its ROM), and none of these is counted.
#
# What is counted, from the linker's map file (firmware.map of each build):
#   code  bytes of the core's input sections that are in the linked image:
#         .text* (on the ESP8266 with the literals, -mtext-section-literals),
#         .literal* and .rodata* (constant tables, strings), per core module. Merged
#         string sections are counted by the room they take in the image (an input
#         section's size, cut at the address of the next one).
#   ram   sizeof the contexts the firmware allocates (ota_server_t, plus ota_mdns_t
#         with mDNS; read with nm -S from the image) + the core's own .data/.bss.
# Guarantee kept from before: the core may call nothing but memcpy, memmove, memset,
# memcmp, memchr, strlen, strcmp and compiler runtime routines (__*): any other
# undefined symbol of libota_core.a fails this script (so does any build error).
# Missing the size goal does not fail it: a line says whether the goal is met.
#
# scripts/footprint.sh [OUT_DIR]  (default build-footprint; JOBS=N for the builds)
# The output ends with one line per target and configuration, in this form:
#   footprint <target> <config>: code <N> bytes, ram <M> bytes
set -eu
root=$(cd "$(dirname "$0")/.." && pwd)
out=${1:-$root/build-footprint}
jobs=${JOBS:-2}
mkdir -p "$out"
out=$(cd "$out" && pwd)

allowed='^(memcpy|memmove|memset|memcmp|memchr|strlen|strcmp|__[a-zA-Z0-9_]+)$'  # __*: compiler runtime (e.g. 64-bit division)
targets="esp8266:xtensa-lx106 cortex-m4:cortex-m4"
configs="minimal default signed"
status=0
# "0x1f" or "0000001f" -> 31, in any awk (mawk has no strtonum)
awk_num='function num(x,   i, n) { x = tolower(x); sub(/^0x/, "", x); n = 0
  for (i = 1; i <= length(x); i++) n = n * 16 + index("0123456789abcdef", substr(x, i, 1)) - 1
  return n }'

# map file -> "module code ram" per core module (+ "firmware" for the stub itself)
parse_map() {
  awk "$awk_num"'
    function flush(next_addr,   eff) {
      if (pf == "") return
      eff = psize
      if (next_addr >= 0 && next_addr - paddr < eff) eff = next_addr - paddr
      if (eff < 0) eff = 0
      if (psec ~ /^\.(text|literal|rodata|srodata)/) code[pf] += eff
      else if (psec ~ /^(\.(data|sdata|bss|sbss|tdata|tbss)|COMMON)/) ram[pf] += eff
      pf = ""
    }
    function entry(sec, a, s, file,   m) {
      flush(num(a))
      m = ""
      if (match(file, /libota_core\.a\([^)]*\)/)) {
        m = substr(file, RSTART + 14, RLENGTH - 15); sub(/\.obj$|\.o$/, "", m)
      } else if (file ~ /firmware\.c\.(obj|o)$/) m = "firmware"
      if (m == "" || out == "/DISCARD/") return
      pf = m; psec = sec; paddr = num(a); psize = num(s)
    }
    /^Linker script and memory map/ { on = 1; next }
    !on { next }
    /size before relaxing/ { next }
    /^[^ ]/ { flush(-1); out = $1; pend = ""; next }
    /^ \*fill\*/ { flush(num($2)); next }
    /^ [^ *]/ { if (NF >= 4 && $2 ~ /^0x/) entry($1, $2, $3, $4); else if (NF == 1) pend = $1; next }
    /^  +0x/ { if (pend != "" && NF == 3 && $2 ~ /^0x/) entry(pend, $1, $2, $3); pend = ""; next }
    END {
      flush(-1)
      for (m in code) seen[m] = 1
      for (m in ram) seen[m] = 1
      for (m in seen) printf "%s %d %d\n", m, code[m], ram[m]
    }' "$1" | sort
}

for spec in $targets; do
  target=${spec%%:*}; tc=$root/cmake/toolchain-${spec#*:}.cmake
  cc=$(sed -n 's/^set(CMAKE_C_COMPILER \([^ )]*\))/\1/p' "$tc")
  if ! command -v "$cc" >/dev/null 2>&1; then
    echo "footprint: $cc not found (run scripts/deps.sh footprint)" >&2; exit 1
  fi
  for config in $configs; do
    b=$out/$target-$config
    log=$out/$target-$config.log
    opts=
    [ "$config" = minimal ] && opts=-DOTA_CORE_OPTS_FILE=$root/cmake/footprint/minimal_opts.h
    [ "$config" = signed ] && opts=-DOTA_CORE_OPTS_FILE=$root/cmake/footprint/signed_opts.h
    # shellcheck disable=SC2086
    if ! { cmake -S "$root/cmake/footprint" -B "$b" -DCMAKE_TOOLCHAIN_FILE="$tc" \
               -DOTA_CORE_OPTS_FILE= $opts &&
           cmake --build "$b" -j "$jobs" --target ota_core; } >"$log" 2>&1; then
      tail -n 30 "$log" >&2
      echo "footprint: building the core for $target ($config) failed (log: $log)" >&2
      exit 1
    fi
    nm=$(sed -n 's/^CMAKE_NM:FILEPATH=//p' "$b/CMakeCache.txt")
    lib=$(find "$b" -name libota_core.a | head -n 1)
    # whatever the core needs and does not define itself must be in the allowance
    "$nm" --defined-only "$lib" | awk 'NF==3{print $3}' | sort -u >"$b/defined"
    bad=$("$nm" -u "$lib" | awk 'NF==2{print $2}' | sort -u \
          | comm -23 - "$b/defined" | grep -vE "$allowed" || true)
    if [ -n "$bad" ]; then
      # shellcheck disable=SC2086
      echo "footprint: the core ($target, $config) calls outside its allowance:" $bad >&2
      status=1
      continue
    fi
    if ! cmake --build "$b" -j "$jobs" >>"$log" 2>&1; then
      tail -n 30 "$log" >&2
      echo "footprint: linking the stub firmware for $target ($config) failed (log: $log)" >&2
      exit 1
    fi
    parse_map "$b/firmware.map" >"$b/modules.txt"
    "$nm" -S --defined-only "$b/firmware.elf" | awk "$awk_num"'
      $4 == "footprint_server" { s = num($2) }
      $4 == "footprint_mdns" { m = num($2) }
      END { printf "%d %d\n", s, m }' >"$b/contexts.txt"
  done
done
[ "$status" = 0 ] || exit 1

# the table: one column per target/config, one row per core module
cols=
for spec in $targets; do for config in $configs; do cols="$cols ${spec%%:*}-$config"; done; done
modules=$(for c in $cols; do awk '$1 != "firmware" {print $1}' "$out/$c/modules.txt"; done | sort -u)
printf '%-22s' "code bytes (linked)"; for c in $cols; do printf ' %17s' "$c"; done; echo
for m in $modules; do
  printf '%-22s' "$m"
  for c in $cols; do
    printf ' %17s' "$(awk -v m="$m" '$1 == m {print $2; f = 1} END {if (!f) print "-"}' "$out/$c/modules.txt")"
  done
  echo
done
row() { # label, awk program over "code ram" totals and "server mdns" sizes of a build
  printf '%-22s' "$1"
  for c in $cols; do
    printf ' %17s' "$(awk -v what="$2" '
      FILENAME ~ /modules/ && $1 != "firmware" { code += $2; ram += $3 }
      FILENAME ~ /contexts/ { srv = $1; mdns = $2 }
      END { v = what == "code" ? code : what == "data" ? ram : what == "srv" ? srv : \
                what == "mdns" ? mdns : ram + srv + mdns; print v }' \
      "$out/$c/modules.txt" "$out/$c/contexts.txt")"
  done
  echo
}
row "code total" code
row "core .data + .bss" data
row "sizeof(ota_server_t)" srv
row "sizeof(ota_mdns_t)" mdns
row "ram total" ramtotal

# the goal, then the summary lines (tools parse these: keep their form)
gc=$(awk '$1 != "firmware" { c += $2 } END { print c + 0 }' "$out/esp8266-minimal/modules.txt")
gr=$(awk '$1 != "firmware" { r += $3 } END { print r + 0 }' "$out/esp8266-minimal/modules.txt")
read -r gs gm <"$out/esp8266-minimal/contexts.txt"
gr=$((gr + gs + gm))
if [ "$gc" -le 8192 ] && [ "$gr" -le 2048 ]; then
  echo "footprint goal (esp8266 minimal: code <= 8192, ram <= 2048 bytes): goal met (code $gc, ram $gr)"
else
  echo "footprint goal (esp8266 minimal: code <= 8192, ram <= 2048 bytes): goal not met (code $gc, ram $gr)"
fi
for c in $cols; do
  target=${c%-*}; config=${c##*-}
  awk -v t="$target" -v k="$config" '
    FILENAME ~ /modules/ && $1 != "firmware" { code += $2; ram += $3 }
    FILENAME ~ /contexts/ { ram += $1 + $2 }
    END { printf "footprint %s %s: code %d bytes, ram %d bytes\n", t, k, code, ram }' \
    "$out/$c/modules.txt" "$out/$c/contexts.txt"
done
