#!/bin/sh
# make fuzz: builds every fuzz target with clang's libFuzzer + ASan + UBSan and
# fuzzes each for FUZZ_SECONDS (default 60) starting from its checked-in corpus.
# New interesting inputs go to build-fuzz/corpus-<target>; a crash leaves its input
# in build-fuzz/ (add it to tests/fuzz/corpus/<target>/ as a regression test).
#
# scripts/fuzz.sh [OUT_DIR] - OUT_DIR defaults to build-fuzz; `make test` runs a short
# fixed budget of it (FUZZ_SECONDS=15) into its own build directory. Fails when a
# target finds a crash.
set -eu
root=$(cd "$(dirname "$0")/.." && pwd)
out=${1:-$root/build-fuzz}
secs=${FUZZ_SECONDS:-60}
mkdir -p "$out"
command -v clang >/dev/null || { echo "fuzz: clang not found (apt-get install clang)" >&2; exit 1; }
for target in server config arduino mdns; do
  case $target in
    server|arduino|mdns) srcs="$root/tests/unit/fake_port.c $root/src/core/*.c $root/src/port/posix/crypto_mbedtls.c"
            libs="-lmbedcrypto -lz" ;;
    config) srcs="$root/src/tools/ota/config.c"; libs="-lyaml" ;;
  esac
  # shellcheck disable=SC2086
  clang -g -O1 -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all -D_GNU_SOURCE \
    -I"$root/include" -I"$root/tests/unit" -I"$root/src/port/posix" -I"$root/src/tools/ota" \
    -DOTA_CFG_USER_FILE="\"$root/src/port/posix/ota_posix_opts.h\"" \
    "$root/tests/fuzz/fuzz_$target.c" $srcs $libs -o "$out/fuzz_$target"
  mkdir -p "$out/corpus-$target"
  echo "fuzz: $target for $secs s"
  if ! (cd "$out" && "./fuzz_$target" -max_total_time="$secs" -max_len=20000 \
          -print_final_stats=1 "corpus-$target" "$root/tests/fuzz/corpus/$target" \
          >"$out/fuzz_$target.log" 2>&1); then
    tail -n 40 "$out/fuzz_$target.log"
    echo "fuzz: $target FAILED; the crashing input is in $out (add it to tests/fuzz/corpus/$target)"
    exit 1
  fi
  runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$out/fuzz_$target.log")
  echo "fuzz: $target: $runs runs in $secs s, no crash: 1 passed, 0 failed"
done
