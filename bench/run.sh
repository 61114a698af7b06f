#!/bin/sh
# make bench: the benchmarks, run from an optimised build without sanitizers.
set -eu
bin=${1:-build-bench/bin}
exec python3 "$(dirname "$0")/bench_upload.py" "$bin"
