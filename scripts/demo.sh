#!/bin/sh
# make demo: flash a local Linux node, update it over the network, show that it
# booted the new image. Everything runs on 127.0.0.1 in a temp directory that is
# removed at the end, together with the node.
set -eu
bin=${1:-build/bin}
for b in ota ota-boot demo-node; do
  [ -x "$bin/$b" ] || { echo "demo: $bin/$b is missing; run 'make' first" >&2; exit 1; }
done
work=$(mktemp -d "${TMPDIR:-/tmp}/ota-demo.XXXXXX")
node_pid=""
cleanup() {
  if [ -n "$node_pid" ] && kill -0 "$node_pid" 2>/dev/null; then
    kill -TERM "$node_pid" 2>/dev/null || true
    wait "$node_pid" 2>/dev/null || true
  fi
  rm -rf "$work"
}
trap cleanup EXIT INT TERM

port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
state=$work/node
log=$work/node.log
step() { printf '\n\033[1m==> %s\033[0m\n' "$*"; }
wait_for() { # PATTERN COUNT
  i=0
  while [ "$(grep -c -- "$1" "$log" 2>/dev/null || true)" -lt "$2" ]; do
    i=$((i + 1))
    if [ $i -gt 300 ]; then echo "demo: the node did not come up; its log:" >&2; cat "$log" >&2; exit 1; fi
    sleep 0.1
  done
}

step "Flashing demo-node into slot A of a new node ($state)"
"$bin/ota-boot" flash --state "$state" "$bin/demo-node"

step "Starting the node: ota-boot runs the active slot, OTA on 127.0.0.1:$port, password VERYSECURE"
"$bin/ota-boot" run --state "$state" -- --bind 127.0.0.1 --port "$port" --heartbeat-ms 500 >"$log" 2>&1 &
node_pid=$!
wait_for "listening on" 1
sleep 1
sed 's/^/    node | /' "$log"

step "The node's boot state before the update"
"$bin/ota-boot" status --state "$state"

step "Building a new firmware (demo-node with 1 MiB appended, so it has another sha256)"
cp "$bin/demo-node" "$work/firmware-v2.bin"
head -c 1048576 /dev/urandom >>"$work/firmware-v2.bin"
new_sha=$(sha256sum "$work/firmware-v2.bin" | cut -d' ' -f1)
echo "    firmware-v2.bin: $(wc -c <"$work/firmware-v2.bin") bytes, sha256 $new_sha"

step "Uploading it: ota upload --device 127.0.0.1 --port $port --password VERYSECURE firmware-v2.bin"
"$bin/ota" upload --device 127.0.0.1 --port "$port" --password VERYSECURE "$work/firmware-v2.bin"

step "Waiting for the node to reboot into the new image"
wait_for "listening on" 2
sleep 1.2
sed 's/^/    node | /' "$log" | tail -n 14

step "The node's boot state after the update"
"$bin/ota-boot" status --state "$state" | tee "$work/status.json"
if grep -q "\"active_sha256\": \"$new_sha\"" "$work/status.json" && grep -q '"active_slot": "b"' "$work/status.json"; then
  printf '\n\033[1;32mThe node runs the new firmware from slot B (sha256 %s).\033[0m\n' "$new_sha"
else
  echo "demo: the node does not run the new firmware" >&2
  exit 1
fi
