#!/bin/sh
# Installs the Debian packages the build, the tests and the benchmarks need
# (`scripts/deps.sh footprint` adds the cross compilers of `make footprint`).
# Run as root it installs what is missing with apt-get; otherwise it names the
# missing packages and the command to install them, and fails.
set -eu
PKGS="cmake make gcc clang libclang-rt-14-dev pkg-config procps python3 libmbedtls-dev zlib1g-dev libyaml-dev libcmocka-dev valgrind iproute2 python3-zeroconf openssl liblwip-dev nginx-light"
for extra in "$@"; do
  case "$extra" in
    footprint) PKGS="$PKGS gcc-xtensa-lx106 binutils-xtensa-lx106 gcc-arm-none-eabi libnewlib-arm-none-eabi" ;;
    *) echo "deps: unknown profile '$extra' (known: footprint)" >&2; exit 2 ;;
  esac
done
missing=""
for p in $PKGS; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing="$missing $p"
  fi
done
[ -z "$missing" ] && exit 0
if [ "$(id -u)" = 0 ]; then
  echo "deps: installing${missing}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >/dev/null
  # shellcheck disable=SC2086
  apt-get install -y -qq $missing >/dev/null
else
  echo "deps: missing Debian packages:${missing}" >&2
  echo "deps: install them with: sudo apt-get install -y${missing}" >&2
  exit 1
fi
