#!/bin/sh
# make fuzz: builds every fuzz target with clang's libFuzzer + ASan + UBSan and
# fuzzes each for FUZZ_SECONDS (default 60) starting from its checked-in corpus.
# New interesting inputs go to build-fuzz/corpus-<target>; a crash leaves its input
# in build-fuzz/ (add it to tests/fuzz/corpus/<target>/ as a regression test).
#
# The targets are built by CMake: OUT_DIR/cmake is a build of this tree with clang
# and -DOTA_FUZZ=ON, where everything (core, fake port, crypto) is compiled with
# coverage instrumentation and the sanitizers, and tests/fuzz/CMakeLists.txt adds the
# fuzz_<target> executables: their sources and libraries are those of the CMake
# targets, so a new core file is fuzzed with no change here.
#
# scripts/fuzz.sh [OUT_DIR] - OUT_DIR defaults to build-fuzz; `make test` runs a short
# fixed budget of it (FUZZ_SECONDS=15) into its own build directory. Fails when a
# target finds a crash.
set -eu
root=$(cd "$(dirname "$0")/.." && pwd)
out=${1:-$root/build-fuzz}
secs=${FUZZ_SECONDS:-60}
targets="server config arduino mdns signature manifest http"
mkdir -p "$out"
out=$(cd "$out" && pwd)
command -v clang >/dev/null || { echo "fuzz: clang not found (apt-get install clang)" >&2; exit 1; }
bdir=$out/cmake
# shellcheck disable=SC2046
if ! { cmake -S "$root" -B "$bdir" -DCMAKE_C_COMPILER=clang -DCMAKE_BUILD_TYPE= \
             -DCMAKE_C_FLAGS="-g -O1" -DOTA_FUZZ=ON -DOTA_SANITIZE=OFF &&
       cmake --build "$bdir" -j "${JOBS:-2}" --target $(for t in $targets; do echo "fuzz_$t"; done); } \
     >"$out/build.log" 2>&1; then
  tail -n 40 "$out/build.log"
  echo "fuzz: building the fuzz targets failed (log: $out/build.log)"
  exit 1
fi
for target in $targets; do
  mkdir -p "$out/corpus-$target"
  echo "fuzz: $target for $secs s"
  # the build-dir corpus first: libFuzzer writes new inputs into the first directory
  if ! (cd "$out" && "$bdir/bin/fuzz_$target" -max_total_time="$secs" -max_len=20000 \
          -print_final_stats=1 "corpus-$target" "$root/tests/fuzz/corpus/$target" \
          >"$out/fuzz_$target.log" 2>&1); then
    tail -n 40 "$out/fuzz_$target.log"
    echo "fuzz: $target FAILED; the crashing input is in $out (add it to tests/fuzz/corpus/$target)"
    exit 1
  fi
  runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$out/fuzz_$target.log")
  echo "fuzz: $target: $runs runs in $secs s, no crash: 1 passed, 0 failed"
done
