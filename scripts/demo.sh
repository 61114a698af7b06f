#!/bin/sh
# make demo: flash a local Linux node, update it over the network, show that it
# booted the new image. Everything runs on 127.0.0.1 in a temp directory that is
# removed at the end, together with the node. Usage: scripts/demo.sh [BIN_DIR]
set -eu
bin=${1:-build/bin}
for b in ota ota-boot demo-node; do
  [ -x "$bin/$b" ] || { echo "demo: $bin/$b is missing; run 'make' first" >&2; exit 1; }
done
command -v python3 >/dev/null || { echo "demo: python3 is needed (free port, JSON)" >&2; exit 1; }

work=$(mktemp -d "${TMPDIR:-/tmp}/ota-demo.XXXXXX")
node_pid=""
log=$work/node.log
stop_node() {
  if [ -n "$node_pid" ] && kill -0 "$node_pid" 2>/dev/null; then
    kill -TERM "$node_pid" 2>/dev/null || true  # ota-boot stops the firmware, then exits
    wait "$node_pid" 2>/dev/null || true
  fi
  node_pid=""
}
cleanup() {
  stop_node
  rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

step() { printf '\n\033[1m==> %s\033[0m\n' "$*"; }
show_log() { sed 's/^/    node | /'; }
fail() {
  printf '\n\033[1;31mdemo failed: %s\033[0m\n' "$*" >&2
  if [ -s "$log" ]; then
    echo "the node's log:" >&2
    tail -n 40 "$log" | show_log >&2
  fi
  exit 1
}
# wait_for PATTERN COUNT WHAT: until the node's log holds COUNT lines matching PATTERN
wait_for() {
  i=0
  while [ "$(grep -c -- "$1" "$log" 2>/dev/null || true)" -lt "$2" ]; do
    i=$((i + 1))
    [ $i -le 300 ] || fail "timed out after 30 s waiting for $3"
    if [ -n "$node_pid" ] && ! kill -0 "$node_pid" 2>/dev/null; then
      fail "ota-boot exited while waiting for $3"
    fi
    sleep 0.1
  done
}
status_field() { # FILE KEY
  python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))[sys.argv[2]])' "$1" "$2"
}

port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
state=$work/node

step "Flashing demo-node into slot A of a new node ($state)"
"$bin/ota-boot" flash --state "$state" "$bin/demo-node" || fail "ota-boot flash failed"

step "Starting the node: ota-boot runs the active slot; OTA on 127.0.0.1:$port, password VERYSECURE"
"$bin/ota-boot" run --state "$state" -- --bind 127.0.0.1 --port "$port" --heartbeat-ms 500 \
  >"$log" 2>&1 &
node_pid=$!
wait_for "listening on" 1 "the node to listen"
wait_for "heartbeat tick=" 2 "the first heartbeats"
show_log <"$log"

step "The node's boot state before the update (ota-boot status)"
"$bin/ota-boot" status --state "$state" | tee "$work/before.json" || fail "ota-boot status failed"
old_sha=$(status_field "$work/before.json" active_sha256)
old_slot=$(status_field "$work/before.json" active_slot)

step "Building a new firmware: demo-node with 1 MiB appended, so it has another sha256"
cp "$bin/demo-node" "$work/firmware-v2.bin"
head -c 1048576 /dev/urandom >>"$work/firmware-v2.bin"
new_sha=$(sha256sum "$work/firmware-v2.bin" | cut -d' ' -f1)
echo "    firmware-v2.bin: $(wc -c <"$work/firmware-v2.bin") bytes, sha256 $new_sha"

step "Uploading it: ota upload --device 127.0.0.1 --port $port --password VERYSECURE firmware-v2.bin"
"$bin/ota" upload --device 127.0.0.1 --port "$port" --password VERYSECURE "$work/firmware-v2.bin" \
  || fail "ota upload failed (exit $?)"

step "Waiting for the node to reboot into the new image"
wait_for "listening on" 2 "the node to come back after the update"
wait_for "heartbeat tick=" "$(($(grep -c 'heartbeat tick=' "$log") + 2))" "the new image's heartbeats"
grep -n "" "$log" | sed -n "$(grep -n 'firmware requested a reboot' "$log" | head -n 1 | cut -d: -f1),\$p" \
  | cut -d: -f2- | head -n 12 | show_log

step "The node's boot state after the update"
"$bin/ota-boot" status --state "$state" | tee "$work/after.json" || fail "ota-boot status failed"
sha=$(status_field "$work/after.json" active_sha256)
slot=$(status_field "$work/after.json" active_slot)
[ "$sha" = "$new_sha" ] || fail "the node runs sha256 $sha, not the uploaded $new_sha"
[ "$slot" != "$old_slot" ] || fail "the active slot did not flip (still $slot)"
grep -q "booted slot=$slot image sha256=$new_sha" "$log" || fail "the new image did not report its boot"

step "Stopping the node"
stop_node
echo "    stopped; removing $work"
printf '\n\033[1;32mDone: the node went from slot %s (sha256 %.12s...) to slot %s (sha256 %.12s...) over the network.\033[0m\n' \
  "$(echo "$old_slot" | tr a-z A-Z)" "$old_sha" "$(echo "$slot" | tr a-z A-Z)" "$sha"
