#!/bin/sh
# Installs the core of a build tree into a temp prefix (cmake --install --component
# core) and builds consumer.c outside the tree two ways: a CMake project with
# find_package(ota) + ota::core (CMakeLists.txt here), and a plain compiler command
# with pkg-config ota-core. Both must run and print what the in-tree build of the
# same file prints (same options header, so same struct sizes); nothing installed
# may point back into the source or build tree.
#
# test_install.sh BUILD_DIR WORK_DIR CC IN_TREE_CONSUMER [CMAKE] [PKG_CONFIG]
set -eu
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
build=$1 work=$2 cc=$3 intree=$4 cmake=${5:-cmake} pkgconfig=${6:-pkg-config}
fail() { echo "install test: $*" >&2; exit 1; }

rm -rf "$work"
mkdir -p "$work"
prefix=$work/prefix
"$cmake" --install "$build" --component core --prefix "$prefix" >"$work/install.log" \
  || { cat "$work/install.log"; fail "cmake --install failed"; }
for f in server.h mdns.h opts.h errors.h port.h; do
  [ -f "$prefix/include/ota/$f" ] || fail "include/ota/$f not installed"
done
lib=$(find "$prefix" -name libota_core.a)
pc=$(find "$prefix" -name ota-core.pc)
cfg=$(find "$prefix" -name otaConfig.cmake)
if [ -z "$lib" ] || [ -z "$pc" ] || [ -z "$cfg" ]; then
  fail "libota_core.a, ota-core.pc or otaConfig.cmake not installed"
fi
if grep -q OTA_CFG_USER_FILE "$(dirname "$cfg")/otaTargets.cmake"; then
  [ -f "$prefix/include/ota/user_opts.h" ] || fail "the options header is not installed"
  grep -q 'user_opts.h' "$pc" || fail "ota-core.pc does not use the options header"
fi
if grep -rlF "$root" "$prefix/include" "$(dirname "$cfg")" "$(dirname "$pc")"; then
  fail "installed files above refer to the source or build tree"
fi

"$intree" >"$work/expected.txt" || fail "the in-tree consumer failed"

# 1. CMake: find_package(ota) through CMAKE_PREFIX_PATH
"$cmake" -S "$here" -B "$work/cmake" -DCMAKE_C_COMPILER="$cc" -DCMAKE_PREFIX_PATH="$prefix" \
  >"$work/cmake.log" 2>&1 || { cat "$work/cmake.log"; fail "configuring the CMake consumer failed"; }
grep -q "^ota_DIR:PATH=$prefix/" "$work/cmake/CMakeCache.txt" || fail "find_package(ota) found another ota"
"$cmake" --build "$work/cmake" >>"$work/cmake.log" 2>&1 || { cat "$work/cmake.log"; fail "building the CMake consumer failed"; }
"$work/cmake/consumer" >"$work/cmake.txt" || fail "the CMake consumer failed"
cmp -s "$work/expected.txt" "$work/cmake.txt" || { diff "$work/expected.txt" "$work/cmake.txt"; fail "CMake consumer differs"; }

# 2. a plain compiler command line with pkg-config (only the installed .pc is visible)
command -v "$pkgconfig" >/dev/null || fail "pkg-config not found"
flags=$(PKG_CONFIG_LIBDIR=$(dirname "$pc") PKG_CONFIG_PATH='' "$pkgconfig" --cflags --libs ota-core) \
  || fail "pkg-config ota-core failed"
# shellcheck disable=SC2086
"$cc" -std=c11 -Wall -Wextra -Werror "$here/consumer.c" $flags -o "$work/consumer-pc" \
  || fail "cc consumer.c \$(pkg-config --cflags --libs ota-core) failed (flags: $flags)"
"$work/consumer-pc" >"$work/pkg-config.txt" || fail "the pkg-config consumer failed"
cmp -s "$work/expected.txt" "$work/pkg-config.txt" || { diff "$work/expected.txt" "$work/pkg-config.txt"; fail "pkg-config consumer differs"; }

sed 's/^/install test: consumer: /' "$work/expected.txt"
echo "install test: find_package(ota) and pkg-config ota-core consumers built and ran: 1 passed, 0 failed"
