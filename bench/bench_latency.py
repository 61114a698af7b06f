#!/usr/bin/env python3
"""Uploads over slow links: the same node, the same 2 MiB image, through a relay that
adds 0, 20 and 100 ms of round-trip time, by our uploader (data in flight) and by a
stop-and-wait client that waits for every 8 KiB chunk ack before sending the next (what
stock uploaders do; written here from the protocol). Prints both times and the ratio.
Usage: bench_latency.py BIN_DIR"""
import hashlib
import os
import socket
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from bench_upload import Node  # noqa: E402
from linkemu import start_relay  # noqa: E402

SIZE = 2 * 1024 * 1024
MAGIC = bytes([0x6C, 0x26, 0xF7, 0x5C, 0x45])


def stop_and_wait_upload(port, data):
    """The native protocol, v2, waiting for each CHUNK_OK before the next block."""
    s = socket.create_connection(("127.0.0.1", port), timeout=120)

    def read(n):
        b = b""
        while len(b) < n:
            c = s.recv(n - len(b))
            if not c:
                raise SystemExit("bench: node closed the connection")
            b += c
        return b
    t0 = time.monotonic()
    s.sendall(MAGIC)
    assert read(2) == b"\x00\x02"
    s.sendall(b"\x00")
    assert read(1) == b"\x40"
    assert read(1) == b"\x41"
    s.sendall(len(data).to_bytes(4, "big"))
    assert read(1) == b"\x42"
    s.sendall(hashlib.md5(data).hexdigest().encode())
    assert read(1) == b"\x43"
    for off in range(0, len(data), 8192):
        s.sendall(data[off:off + 8192])
        assert read(1) == b"\x47"
    assert read(2) == b"\x44\x45"
    s.sendall(b"\x00")
    s.close()
    return time.monotonic() - t0


def main():
    bin_dir = sys.argv[1] if len(sys.argv) > 1 else "build-bench/bin"
    import tempfile
    import shutil
    work = tempfile.mkdtemp(prefix="ota-bench-lat-")
    try:
        img = os.path.join(work, "fw.bin")
        shutil.copyfile(os.path.join(bin_dir, "demo-node"), img)
        with open(img, "ab") as f:
            f.write(hashlib.shake_256(b"latency").digest(SIZE - os.path.getsize(img)))
        data = open(img, "rb").read()
        node = Node(bin_dir, work)
        print("Benchmark: 2 MiB upload over an emulated link (relay on loopback), one node")
        print("  %-8s %14s %14s %8s" % ("RTT", "ota upload", "stop-and-wait", "speedup"))
        try:
            for rtt in (0, 20, 100):
                relay_port, stop = start_relay(node.port, rtt / 2.0)
                try:
                    t0 = time.monotonic()
                    p = subprocess.run([os.path.join(bin_dir, "ota"), "upload", "--quiet",
                                        "--no-compress", "--device", "127.0.0.1", "--port",
                                        str(relay_port), img], capture_output=True, text=True)
                    ours = time.monotonic() - t0
                    if p.returncode != 0:
                        raise SystemExit("bench: upload failed: " + p.stderr)
                    node.wait_ready()
                    saw = stop_and_wait_upload(relay_port, data)
                    node.wait_ready()
                finally:
                    stop()
                print("  %-8s %12.2f s %12.2f s %7.1fx" % ("%d ms" % rtt, ours, saw, saw / ours))
        finally:
            node.stop()
        print("  (stop-and-wait pays one round trip per 8 KiB: 256 of them for 2 MiB)")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
