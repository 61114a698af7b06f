#!/usr/bin/env python3
"""Many nodes: one `ota upload` with --device repeated to 32 local nodes at once
(-j 32) against the same upload to 1 node, in the same run; prints both total times and
their ratio (1.0 would be perfect parallelism; 32 would be one node after the other).
Usage: bench_fleet.py BIN_DIR"""
import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from bench_upload import Node  # noqa: E402

NODES = 32
SIZE = 2 * 1024 * 1024


def upload(bin_dir, nodes, img):
    args = [os.path.join(bin_dir, "ota"), "upload", "--quiet", "--no-compress", "-j",
            str(len(nodes))]
    for n in nodes:
        args += ["--device", "127.0.0.1:%d" % n.port]
    t0 = time.monotonic()
    p = subprocess.run(args + [img], capture_output=True, text=True)
    t = time.monotonic() - t0
    if p.returncode != 0:
        raise SystemExit("bench: fleet upload failed:\n" + p.stdout + p.stderr)
    for n in nodes:
        n.wait_ready()
    return t


def main():
    bin_dir = sys.argv[1] if len(sys.argv) > 1 else "build-bench/bin"
    work = tempfile.mkdtemp(prefix="ota-bench-fleet-")
    nodes = []
    try:
        img = os.path.join(work, "fw.bin")
        shutil.copyfile(os.path.join(bin_dir, "demo-node"), img)
        with open(img, "ab") as f:
            f.write(hashlib.shake_256(b"fleet").digest(SIZE - os.path.getsize(img)))
        for i in range(NODES):
            d = os.path.join(work, "n%d" % i)
            os.mkdir(d)
            nodes.append(Node(bin_dir, d))
        one = min(upload(bin_dir, nodes[:1], img) for _ in range(3))
        many = min(upload(bin_dir, nodes, img) for _ in range(2))
        print("Benchmark: 2 MiB image, one ota upload command, local nodes on loopback")
        print("  1 node                 %6.2f s" % one)
        print("  %d nodes (-j %d)       %6.2f s" % (NODES, NODES, many))
        print("  ratio 32 nodes / 1 node: %.1f (32.0 = one after the other; the machine has"
              " %d cores)" % (many / one, os.cpu_count()))
    finally:
        for n in nodes:
            n.stop()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
