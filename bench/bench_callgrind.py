#!/usr/bin/env python3
"""Device-side cost: instructions the node spends per uploaded byte, counted by
callgrind inside ota_server_poll() and everything it calls (the OTA component and
the port: recv, MD5, inflate, slot writes), for a plain and a gzip upload. Instruction
counts do not depend on how busy the machine is, so regressions show.
Usage: bench_callgrind.py BIN_DIR"""
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time

SIZE = 4 * 1024 * 1024


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def measure(bin_dir, work, img, compress):
    state = os.path.join(work, "node-%d" % compress)
    subprocess.run([os.path.join(bin_dir, "ota-boot"), "flash", "--state", state,
                    os.path.join(bin_dir, "demo-node")], check=True, capture_output=True)
    port = free_port()
    out = os.path.join(work, "callgrind-%d.out" % compress)
    log = open(os.path.join(work, "node-%d.log" % compress), "w+")
    env = dict(os.environ, OTA_STATE_DIR=state, OTA_BOOT_SLOT="a")
    node = subprocess.Popen(["valgrind", "--tool=callgrind", "--callgrind-out-file=" + out,
                             "--toggle-collect=ota_server_poll",
                             os.path.join(bin_dir, "demo-node"), "--bind", "127.0.0.1",
                             "--port", str(port), "--no-password", "--slot-size",
                             str(64 << 20)], stdout=log, stderr=subprocess.STDOUT, env=env)
    try:
        end = time.monotonic() + 120
        while "listening on" not in open(log.name).read():
            if time.monotonic() > end or node.poll() is not None:
                raise SystemExit("bench: node under callgrind did not start:\n" +
                                 open(log.name).read())
            time.sleep(0.1)
        args = [os.path.join(bin_dir, "ota"), "upload", "--quiet", "--device", "127.0.0.1",
                "--port", str(port), "--timeout", "600"]
        if not compress:
            args.append("--no-compress")
        p = subprocess.run(args + [img], capture_output=True, text=True)
        if p.returncode != 0:
            raise SystemExit("bench: upload failed: " + p.stderr)
        m = re.search(r"OK: (\d+) bytes.*?(?:gzip: (\d+) bytes on the wire)?$", p.stdout.strip())
        wire = int(m.group(2) or m.group(1))
        node.wait(timeout=300)  # exits 42 to reboot
    finally:
        if node.poll() is None:
            node.kill()
            node.wait()
        log.close()
    text = open(out).read()
    m = re.search(r"^(?:summary|totals):\s+(\d+)", text, re.M)
    return int(m.group(1)), wire


def main():
    bin_dir = sys.argv[1] if len(sys.argv) > 1 else "build-bench/bin"
    if shutil.which("valgrind") is None:
        raise SystemExit("bench: valgrind is not installed")
    work = tempfile.mkdtemp(prefix="ota-bench-cg-")
    try:
        img = os.path.join(work, "fw.bin")
        shutil.copyfile(os.path.join(bin_dir, "demo-node"), img)
        pad = SIZE - os.path.getsize(img)
        with open(img, "ab") as f:
            f.write(bytes(range(256)) * (pad // 256))  # compressible
        size = os.path.getsize(img)
        ir_plain, _ = measure(bin_dir, work, img, False)
        ir_gz, wire = measure(bin_dir, work, img, True)
        print("Benchmark: node-side instructions per byte (callgrind, inside ota_server_poll)")
        print("  plain upload  %6.1f instructions per image byte" % (ir_plain / size))
        print("  gzip upload   %6.1f instructions per image byte (%.1f per wire byte; %d -> %d"
              " bytes)" % (ir_gz / size, ir_gz / wire, size, wire))
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
