#!/usr/bin/env python3
"""Upload throughput of `ota upload` to a local node, against two baselines of the
same bytes measured side by side in one run: the node's own MD5 (mbedTLS: the
physical limit of the pipeline, since the node hashes every byte it receives) and a
plain loopback TCP copy. 16 MiB and 64 MiB images, random and realistic (a real
binary repeated: about 3:1), runs interleaved, medians of RUNS. Also the gzip upload
of the realistic image. Prints `bench <name>: <ratio> (goal <goal>)` lines.
Usage: bench_upload.py BIN_DIR"""
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
RUNS = 5


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Node:
    def __init__(self, bin_dir, work, prefix=(), bind="127.0.0.1", port=None):
        """prefix: argv run before ota-boot (e.g. `ip netns exec NS` for a node behind an
        emulated link, bench/linkemu.py), bind: the address it listens on."""
        self.bin = bin_dir
        self.state = os.path.join(work, "node")
        self.port = port or free_port()
        self.log = os.path.join(work, "node.log")
        subprocess.run([os.path.join(bin_dir, "ota-boot"), "flash", "--state", self.state,
                        os.path.join(bin_dir, "demo-node")], check=True, capture_output=True)
        self.logf = open(self.log, "ab")
        self.proc = subprocess.Popen(
            [*prefix, os.path.join(bin_dir, "ota-boot"), "run", "--state", self.state, "--",
             "--bind", bind, "--port", str(self.port), "--no-password", "--slot-size",
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
        try:
            os.killpg(self.proc.pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
        self.proc.wait(timeout=10)
        self.logf.close()


def make_image(bin_dir, path, size, realistic):
    """demo-node, padded to size with random bytes, or with copies of real binaries
    (the tool, the node) for a realistic mix of code and data."""
    shutil.copyfile(os.path.join(bin_dir, "demo-node"), path)
    pad = size - os.path.getsize(path)
    with open(path, "ab") as f:
        if realistic:
            parts = b"".join(open(os.path.join(bin_dir, n), "rb").read()
                             for n in ("ota", "ota-boot", "demo-node"))
            f.write((parts * (pad // len(parts) + 1))[:pad])
        else:
            f.write(hashlib.shake_256(b"bench").digest(pad))


def timed(argv):
    return float(subprocess.run(argv, check=True, capture_output=True, text=True).stdout)


def median(xs):
    xs = sorted(xs)
    return xs[len(xs) // 2]


def main():
    bin_dir = sys.argv[1] if len(sys.argv) > 1 else "build-bench/bin"
    work = tempfile.mkdtemp(prefix="ota-bench-")
    # the tool's state (known nodes, learned rates, gzip cache) stays in here
    for var in ("XDG_STATE_HOME", "XDG_CACHE_HOME"):
        os.environ[var] = os.path.join(work, var.lower())
    os.environ.pop("OTA_KNOWN_NODES", None)
    os.environ.pop("OTA_CACHE_DIR", None)
    try:
        node = Node(bin_dir, work)
        results = []
        try:
            for size in (SIZE, 4 * SIZE):
                mib = size / (1024 * 1024)
                for kind in ("random", "realistic"):
                    img = os.path.join(work, "%s-%d.bin" % (kind, size))
                    make_image(bin_dir, img, size, kind == "realistic")
                    up, md5, tcp = [], [], []
                    for _ in range(RUNS):  # interleaved: the same machine state for all
                        up.append(node.upload(img, "--no-compress"))
                        md5.append(timed([os.path.join(bin_dir, "md5_speed"), img]))
                        tcp.append(timed([os.path.join(bin_dir, "tcp_copy"), img]))
                    u, m, t = median(up), median(md5), median(tcp)
                    results.append((mib, kind, u, m, t))
                    print("  %3d MiB %-9s ota upload %6.3f s (%6.1f MiB/s)  node MD5 %6.3f s "
                          "(%6.1f MiB/s)  TCP copy %6.3f s" % (mib, kind, u, mib / u, m,
                                                              mib / m, t))
                    print("bench upload_vs_md5_%dMiB_%s: %.2f (goal >= 0.8)"
                          % (mib, kind, m / u))
                    if kind == "realistic" and size == SIZE:
                        gz = median([node.upload(img, "--compress") for _ in range(RUNS)])
                        print("  %3d MiB realistic, gzip: %6.3f s (%6.1f MiB/s of image)"
                              % (mib, gz, mib / gz))
                        print("bench gzip_vs_plain_%dMiB_loopback: %.2f (goal >= 1 where "
                              "gzip is chosen; the tool learns not to gzip here)"
                              % (mib, u / gz))
        finally:
            node.stop()
        print("(medians of %d interleaved runs, %s, %d cores; the upload includes connect, "
              "handshake, MD5 on both ends, slot writes with fsync and the node's "
              "verification)" % (RUNS, os.uname().machine, os.cpu_count()))
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
