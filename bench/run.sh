#!/bin/sh
# make bench: every benchmark, from an optimised build without sanitizers. Each
# prints figures measured side by side in the same run, and their ratio.
set -eu
bin=${1:-build-bench/bin}
here=$(dirname "$0")
python3 "$here/bench_upload.py" "$bin"
echo
python3 "$here/bench_latency.py" "$bin"
echo
python3 "$here/bench_fleet.py" "$bin"
echo
python3 "$here/bench_link.py" "$bin"
echo
python3 "$here/bench_swarm.py" "$bin"
echo
python3 "$here/bench_callgrind.py" "$bin"
