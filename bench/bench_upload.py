#!/usr/bin/env python3
"""Upload throughput of `ota upload` to a local node, against the raw loopback TCP
throughput of a plain socket copy of the same 16 MiB, measured side by side in one
run (best of 3 each), with their ratio. Also: the same upload gzip-compressed, for a
compressible image. Usage: bench_upload.py BIN_DIR"""
import hashlib
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

SIZE = 16 * 1024 * 1024
RUNS = 3


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Node:
    def __init__(self, bin_dir, work):
        self.bin = bin_dir
        self.state = os.path.join(work, "node")
        self.port = free_port()
        self.log = os.path.join(work, "node.log")
        subprocess.run([os.path.join(bin_dir, "ota-boot"), "flash", "--state", self.state,
                        os.path.join(bin_dir, "demo-node")], check=True, capture_output=True)
        self.logf = open(self.log, "ab")
        self.proc = subprocess.Popen(
            [os.path.join(bin_dir, "ota-boot"), "run", "--state", self.state, "--", "--bind",
             "127.0.0.1", "--port", str(self.port), "--no-password", "--slot-size",
             str(64 * 1024 * 1024)], stdout=self.logf, stderr=subprocess.STDOUT,
            start_new_session=True)
        self.boots = 0
        self.wait_ready()

    def listening(self):
        with open(self.log, errors="replace") as f:
            return len(re.findall(r"listening on", f.read()))

    def wait_ready(self):
        self.boots += 1
        end = time.monotonic() + 30
        while self.listening() < self.boots:
            if time.monotonic() > end:
                sys.exit("bench: the node did not come up")
            time.sleep(0.02)

    def upload(self, image, *args):
        t0 = time.monotonic()
        p = subprocess.run([os.path.join(self.bin, "ota"), "upload", "--quiet", "--device",
                            "127.0.0.1", "--port", str(self.port), *args, image],
                           capture_output=True, text=True)
        t = time.monotonic() - t0
        if p.returncode != 0:
            sys.exit("bench: upload failed: " + p.stderr)
        self.wait_ready()  # the node reboots into it: ready for the next run
        return t

    def stop(self):
        os.killpg(self.proc.pid, signal.SIGTERM)
        self.proc.wait(timeout=10)
        self.logf.close()


def make_image(bin_dir, path, compressible):
    shutil.copyfile(os.path.join(bin_dir, "demo-node"), path)
    pad = SIZE - os.path.getsize(path)
    with open(path, "ab") as f:
        if compressible:
            f.write((b"firmware-data-" * (pad // 14 + 1))[:pad])
        else:
            f.write(hashlib.shake_256(b"bench").digest(pad))


def main():
    bin_dir = sys.argv[1] if len(sys.argv) > 1 else "build-bench/bin"
    work = tempfile.mkdtemp(prefix="ota-bench-")
    try:
        img = os.path.join(work, "random.bin")
        comp = os.path.join(work, "compressible.bin")
        make_image(bin_dir, img, False)
        make_image(bin_dir, comp, True)
        node = Node(bin_dir, work)
        try:
            ours = min(node.upload(img, "--no-compress") for _ in range(RUNS))
            gz = min(node.upload(comp) for _ in range(RUNS))
        finally:
            node.stop()
        raw = min(float(subprocess.run([os.path.join(bin_dir, "tcp_copy"), img],
                                       check=True, capture_output=True, text=True).stdout)
                  for _ in range(RUNS))
        mib = SIZE / (1024 * 1024)
        print("Benchmark: 16 MiB image, local node on loopback, best of %d (%s, %d cores)"
              % (RUNS, os.uname().machine, os.cpu_count()))
        print("  raw TCP copy (loopback)      %7.3f s  %8.1f MiB/s" % (raw, mib / raw))
        print("  ota upload (no compression)  %7.3f s  %8.1f MiB/s" % (ours, mib / ours))
        print("  ota upload (gzip, compressible image) %7.3f s  %8.1f MiB/s of image"
              % (gz, mib / gz))
        print("  ratio ota upload / raw TCP throughput: %.2f" % (raw / ours))
        print("  (the upload includes connect, handshake, MD5 on both ends, slot writes with")
        print("   fsync and the node's verification; the raw copy includes none of that)")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
