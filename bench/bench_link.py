#!/usr/bin/env python3
"""Uploads over emulated links (bench/linkemu.py: network namespaces, a TUN pair per
link, a token-bucket bandwidth cap and a delay per direction), each link checked first
by a raw TCP copy and a ping-pong through it (printed).

  link_20ms_8mbit, link_100ms_50mbit: `ota upload` (default options: it picks gzip or
    not itself) of a realistic image (a real binary: /usr/bin/perf, then gdb, else the
    build's own binaries; about 3:1) and of random bytes, against the bandwidth-delay
    bound of the bytes it put on the wire: IP bytes towards the node (counted by the
    emulator) at the cap, plus 3 round trips: TCP's connect, the device's greeting (the
    uploader cannot choose before it knows the device), and the last byte's way there
    with the result's way back. The ratio is the worse of the two images (goal >= 0.8).
    Raw TCP against the same kind of bound (2 round trips) is printed beside it: slow
    start alone costs that much.
  fleet16_20ms: 16 nodes, each behind its own 20 ms / 8 Mbit link, one `ota upload -j 16`
    against the same upload to one node behind one such link (goal <= 1.5).
  espota2_ratio: ESPHome's own espota2.py (stock order: the MD5 before the data, one
    round trip per 8 KiB chunk, gzip -9) against `ota upload`, the same node, link and
    image: time ota / time espota2. The script comes from $ESPOTA2_PY or a local ESPHome
    checkout (ESPHOME_GIT, a git directory); it is run from a temp dir with a two-module
    shim for its esphome imports. Without one, a client written here in the same order.

Medians of RUNS interleaved runs. Usage: bench_link.py BIN_DIR"""
import hashlib
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import linkemu  # noqa: E402
from bench_upload import Node  # noqa: E402

RUNS = 3
PORT = 3232
HANDSHAKE_RTTS = 3  # TCP connect, the device's greeting, the last byte and the result
LINKS = (  # name, rtt ms, Mbit/s, image MiB: long enough for the cap to dominate
    ("link_20ms_8mbit", 20, 8, 4),
    ("link_100ms_50mbit", 100, 50, 16),
)
FLEET = 16
FLEET_MIB = 1
ESPHOME_GIT = os.environ.get("ESPHOME_GIT", "/work/.mirror/esphome+esphome/repo")


def realistic_bytes(bin_dir, size):
    srcs = [p for p in ("/usr/bin/perf", "/usr/bin/gdb") if os.path.exists(p)]
    srcs += [os.path.join(bin_dir, n) for n in ("ota", "ota-boot", "demo-node")]
    data = b""
    while len(data) < size:
        for p in srcs:
            data += open(p, "rb").read()
    return data[:size]


def make_images(bin_dir, work, mib):
    size = mib << 20
    demo = open(os.path.join(bin_dir, "demo-node"), "rb").read()
    out = {}
    for kind in ("realistic", "random"):
        fill = (realistic_bytes(bin_dir, size) if kind == "realistic"
                else hashlib.shake_256(b"link").digest(size))
        path = os.path.join(work, "%s-%d.bin" % (kind, mib))
        with open(path, "wb") as f:  # a bootable image: demo-node first
            f.write(demo + fill[len(demo):])
        out[kind] = path
    return out


def espota2_runner(work):
    """argv prefix running stock espota2 (HOST PORT FILE follow), or None."""
    src = os.environ.get("ESPOTA2_PY")
    text = None
    if src and os.path.exists(src):
        text = open(src).read()
    elif os.path.isdir(ESPHOME_GIT):
        p = subprocess.run(["git", "--git-dir", ESPHOME_GIT, "show", "HEAD:esphome/espota2.py"],
                           capture_output=True, text=True)
        if p.returncode == 0:
            text = p.stdout
    if text is None:
        return None
    d = os.path.join(work, "espota2")
    os.makedirs(os.path.join(d, "esphome"))
    with open(os.path.join(d, "espota2.py"), "w") as f:
        f.write(text)
    # the only two names it takes from the rest of ESPHome
    with open(os.path.join(d, "esphome", "__init__.py"), "w") as f:
        f.write("")
    with open(os.path.join(d, "esphome", "core.py"), "w") as f:
        f.write("class EsphomeError(Exception):\n    pass\n")
    with open(os.path.join(d, "esphome", "helpers.py"), "w") as f:
        f.write("import ipaddress\n\n\ndef is_ip_address(host):\n    try:\n"
                "        ipaddress.ip_address(host)\n        return True\n"
                "    except ValueError:\n        return False\n\n\n"
                "def resolve_ip_address(host):\n    import socket\n"
                "    return socket.gethostbyname(host)\n")
    with open(os.path.join(d, "run.py"), "w") as f:
        # its closing `time.sleep(1)` ("do not connect logs until it is fully on") is
        # not part of the upload: timed without it
        f.write("import sys, time, types\nsys.path.insert(0, %r)\nimport espota2\n"
                "espota2.time = types.SimpleNamespace(perf_counter=time.perf_counter,\n"
                "                                     sleep=lambda s: None)\n"
                "sys.exit(espota2.run_ota(sys.argv[1], int(sys.argv[2]), '', sys.argv[3]))\n"
                % d)
    return [sys.executable, os.path.join(d, "run.py")]


def stock_client_argv():
    return [sys.executable, os.path.abspath(__file__), "--stock-client"]


def stock_client(host, port, path):
    """The stock order, written here from docs/protocol.md: features, size, MD5, then
    8 KiB chunks each waiting for its CHUNK_OK, gzip -9 when the device accepts it."""
    import gzip
    import socket
    data = open(path, "rb").read()
    s = socket.create_connection((host, port), timeout=30)
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def read(n):
        b = b""
        while len(b) < n:
            c = s.recv(n - len(b))
            if not c:
                raise SystemExit("stock client: connection closed")
            b += c
        return b
    s.sendall(bytes([0x6C, 0x26, 0xF7, 0x5C, 0x45]))
    assert read(2)[0] == 0x00
    s.sendall(b"\x01")
    if read(1) == b"\x46":
        data = gzip.compress(data, compresslevel=9)
    assert read(1) == b"\x41"
    s.sendall(len(data).to_bytes(4, "big"))
    assert read(1) == b"\x42"
    s.sendall(hashlib.md5(data).hexdigest().encode())
    assert read(1) == b"\x43"
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 0)
    for off in range(0, len(data), 8192):
        s.sendall(data[off:off + 8192])
        assert read(1) == b"\x47"
    assert read(2) == b"\x44\x45"
    s.sendall(b"\x00")
    s.close()


class Bench:
    def __init__(self, bin_dir, work, lab, nodes):
        self.bin, self.work, self.lab = bin_dir, work, lab
        self.nodes = []
        for i in range(nodes):
            d = os.path.join(work, "%s-n%d" % (os.path.basename(lab.up_ns), i))
            os.makedirs(d)
            self.nodes.append(Node(bin_dir, d, prefix=lab.argv(lab.node_ns(i), []),
                                   bind=lab.node_ip(i), port=PORT))

    def close(self):
        for n in self.nodes:
            n.stop()
        self.nodes = []

    def timed(self, argv, nodes):
        self.lab.zero_counters()
        t0 = time.monotonic()
        p = self.lab.run(self.lab.up_ns, argv, capture_output=True, text=True, timeout=600)
        t = time.monotonic() - t0
        if p.returncode != 0:
            raise SystemExit("bench: %s failed:\n%s%s" % (argv[0], p.stdout, p.stderr))
        wire = self.lab.wire_bytes()
        for i in nodes:
            self.nodes[i].wait_ready()
        return t, wire

    def ota(self, img, nodes=(0,), *extra):
        argv = [os.path.join(self.bin, "ota"), "upload", "--quiet", "-j", str(len(nodes))]
        for i in nodes:
            argv += ["--device", "%s:%d" % (self.lab.node_ip(i), PORT)]
        return self.timed(argv + list(extra) + [img], nodes)

    def stock(self, runner, img):
        return self.timed(runner + [self.lab.node_ip(0), str(PORT), img], (0,))


def bound(lab, wire_up, rtts):
    return wire_up / (lab.mbit * 1e6 / 8) + rtts * lab.rtt_ms / 1000.0


def bench_links(bin_dir, work, runner):
    results = {}
    for name, rtt, mbit, mib in LINKS:
        imgs = make_images(bin_dir, work, mib)
        with linkemu.Lab(bin_dir, rtt, mbit) as lab:
            print("Link %s: %d ms RTT, %d Mbit/s, %d MiB images" % (name, rtt, mbit, mib))
            _, _, tcp_ratio = linkemu.print_validation(lab, mib << 20)
            b = Bench(bin_dir, work, lab, 1)
            lab.on_close = b.close
            worst = None
            for kind in ("realistic", "random"):
                ts, ws, tcp = [], [], []
                for _ in range(RUNS):
                    t, wire = b.ota(imgs[kind])
                    ts.append(t)
                    ws.append(wire[0][0])
                    # raw TCP carrying the same payload, interleaved: what slow start
                    # and the link leave to any protocol
                    tcp.append(linkemu.tcp_copy_time(lab, int(wire[0][0] * 1448 / 1500)))
                t, w, c = statistics.median(ts), statistics.median(ws), statistics.median(tcp)
                r = bound(lab, w, HANDSHAKE_RTTS) / t
                worst = r if worst is None else min(worst, r)
                print("  %-9s ota upload %6.3f s, %5.2f MiB on the wire (image %d MiB, %.2f:1)"
                      ", bound %6.3f s: %.2f; raw TCP of as many bytes %6.3f s"
                      % (kind, t, w / 2**20, mib, (mib << 20) / w,
                         bound(lab, w, HANDSHAKE_RTTS), r, c))
            print("bench %s: %.2f (goal >= 0.8; raw TCP reaches %.2f of its bound here)"
                  % (name, worst, tcp_ratio))
            if name == "link_20ms_8mbit":
                results["espota2"] = bench_espota2(b, runner, imgs["realistic"])
    return results


def bench_espota2(b, runner, img):
    which = "espota2.py (ESPHome)" if runner else "stock-order client (bench_link.py)"
    argv = runner or stock_client_argv()
    ours, theirs = [], []
    for _ in range(RUNS):
        ours.append(b.ota(img)[0])
        theirs.append(b.stock(argv, img)[0])
    o, s = statistics.median(ours), statistics.median(theirs)
    print("  realistic: ota upload %6.3f s, %s %6.3f s" % (o, which, s))
    print("bench espota2_ratio: %.2f (goal <= 1: time ota / time stock espota2, same node,"
          " link and image)" % (o / s))


def bench_fleet(bin_dir, work):
    img = make_images(bin_dir, work, FLEET_MIB)["realistic"]
    with linkemu.Lab(bin_dir, 20, 8, nodes=FLEET) as lab:
        print("Fleet: %d nodes, each behind its own 20 ms / 8 Mbit link, %d MiB realistic "
              "image" % (FLEET, FLEET_MIB))
        b = Bench(bin_dir, work, lab, FLEET)
        lab.on_close = b.close
        one, many = [], []
        for _ in range(RUNS):
            one.append(b.ota(img, (0,))[0])
            many.append(b.ota(img, tuple(range(FLEET)))[0])
        o, m = statistics.median(one), statistics.median(many)
        print("  1 node %6.3f s, %d nodes (-j %d) %6.3f s" % (o, FLEET, FLEET, m))
        print("bench fleet16_20ms: %.2f (goal <= 1.5)" % (m / o))


def main():
    if len(sys.argv) == 5 and sys.argv[1] == "--stock-client":
        return stock_client(sys.argv[2], int(sys.argv[3]), sys.argv[4])
    bin_dir = os.path.abspath(sys.argv[1] if len(sys.argv) > 1 else "build-bench/bin")
    ok, why = linkemu.available()
    if not ok:
        print("bench link_*: skipped (%s)" % why)
        return
    work = tempfile.mkdtemp(prefix="ota-bench-link-")
    for var in ("XDG_STATE_HOME", "XDG_CACHE_HOME"):
        os.environ[var] = os.path.join(work, var.lower())
    os.environ.pop("OTA_KNOWN_NODES", None)
    os.environ.pop("OTA_CACHE_DIR", None)
    try:
        runner = espota2_runner(work)
        bench_links(bin_dir, work, runner)
        print()
        bench_fleet(bin_dir, work)
        print("(medians of %d interleaved runs; %s, %d cores; `ota upload` with its default "
              "options, so its gzip cache and learned rates carry over between runs as for "
              "a user)" % (RUNS, os.uname().machine, os.cpu_count()))
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
