#!/bin/sh
# make valgrind: the unit tests, the fuzz corpus and a real node taking an upload,
# all under valgrind (memcheck, full leak check) from a build without sanitizers.
# Fails on any valgrind error or leak.
set -eu
build=${1:-build-valgrind}
bin=$build/bin
vg="valgrind --quiet --error-exitcode=99 --leak-check=full --errors-for-leak-kinds=definite,indirect"
root=$(cd "$(dirname "$0")/.." && pwd)
for t in test_server test_core_util test_safe_mode test_dns test_mdns test_tool_mdns_query test_signature \
         test_update test_http test_manifest test_pull; do
  echo "valgrind: $t"
  $vg "$bin/$t" >/dev/null
done
echo "valgrind: fuzz corpora"
for t in server arduino mdns http manifest signature; do
  $vg "$bin/replay_$t" "$root/tests/fuzz/corpus/$t" >/dev/null
done

echo "valgrind: a node taking an upload, and the uploader"
work=$(mktemp -d "${TMPDIR:-/tmp}/ota-vg.XXXXXX")
trap 'rm -rf "$work"' EXIT
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
"$bin/ota-boot" flash --state "$work/node" "$bin/demo-node" >/dev/null
# the firmware itself runs under valgrind (not through ota-boot, which would exec the slot)
OTA_STATE_DIR=$work/node OTA_BOOT_SLOT=a $vg --log-file="$work/vg-node.log" \
  "$bin/demo-node" --bind 127.0.0.1 --port "$port" --no-password >"$work/node.log" 2>&1 &
node=$!
i=0
until grep -q "listening on" "$work/node.log" 2>/dev/null; do
  i=$((i + 1)); [ $i -lt 300 ] || { cat "$work/node.log"; exit 1; }; sleep 0.1
done
cp "$bin/demo-node" "$work/new.bin"; head -c 300000 /dev/urandom >>"$work/new.bin"
$vg "$bin/ota" upload --quiet --device 127.0.0.1 --port "$port" "$work/new.bin"
set +e
wait $node
rc=$?
set -e
if [ $rc -ne 42 ] || [ -s "$work/vg-node.log" ]; then
  echo "valgrind: the node exited $rc (42 = reboot after the update); valgrind said:" >&2
  cat "$work/vg-node.log" >&2
  exit 1
fi
echo "valgrind: clean"
