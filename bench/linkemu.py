#!/usr/bin/env python3
"""Link emulators for benchmarks: uploads run "over" a slow link on one machine.

Lab (the one the link benches use): network namespaces, one for the uploader and one
per node, each node joined to the uploader by its own link: a pair of TUN devices and
the packet forwarder bench/linkemu.c between them, which applies a token-bucket
bandwidth cap per direction and a one-way delay to every IP packet (what
`tc qdisc netem delay D rate R` would do; this kernel has no netem, and its tbf has no
delay). Both ends keep their own kernel TCP, so slow start, receive windows, delayed
acks and tail drops at the bottleneck are real.

    with Lab(bin_dir, rtt_ms=20, mbit=8, nodes=16) as lab:
        lab.popen(lab.node_ns(i), [...])      # a node, bound to lab.node_ip(i)
        lab.run(lab.up_ns, [...])             # the uploader
        lab.wire_bytes()                      # IP bytes per link and direction

How it is validated (validate(), printed by every link bench run): a raw TCP bulk
copy through the link must carry >= 0.9 of the cap in its steady state (its last
three quarters; TCP/IP headers are 3.5% of a 1500-byte packet), and a one-byte TCP
ping-pong must see the configured round trip (median, within a millisecond or two).

start_relay (older, used by bench_latency.py): a TCP relay on loopback that delays
every read by a one-way delay in both directions. It terminates TCP on both sides, so
it emulates latency only: its queue is unbounded, so a bandwidth cap there would let
the sender finish long before the receiver has the data.

    linkemu.py --listen PORT --target HOST:PORT --delay-ms 50 [--mbit 20]
    linkemu.py --validate BIN_DIR --rtt-ms 20 --mbit 8

As a library: start_relay(target_port, delay_ms, mbit) -> (port, stop)."""
import argparse
import asyncio
import atexit
import os
import re
import signal
import socket
import statistics
import subprocess
import sys
import threading
import time


async def _pipe(reader, writer, delay_s, bytes_per_s):
    queue = asyncio.Queue()

    async def pump_in():
        while True:
            data = await reader.read(65536)
            await queue.put((time.monotonic() + delay_s, data))
            if not data:
                return

    async def pump_out():
        next_free = 0.0
        while True:
            due, data = await queue.get()
            wait = due - time.monotonic()
            if wait > 0:
                await asyncio.sleep(wait)
            if not data:
                try:
                    writer.write_eof()
                except (OSError, RuntimeError):
                    pass
                return
            if bytes_per_s:
                now = time.monotonic()
                start = max(now, next_free)
                next_free = start + len(data) / bytes_per_s
                if start > now:
                    await asyncio.sleep(start - now)
            writer.write(data)
            try:
                await writer.drain()
            except OSError:
                return

    await asyncio.gather(pump_in(), pump_out(), return_exceptions=True)


async def _serve(listen_port, target, delay_ms, mbit, started, stop_event):
    delay_s = delay_ms / 1000.0
    rate = mbit * 1e6 / 8 if mbit else 0

    async def handle(cr, cw):
        try:
            sr, sw = await asyncio.open_connection(*target)
        except OSError:
            cw.close()
            return
        await asyncio.gather(_pipe(cr, sw, delay_s, rate), _pipe(sr, cw, delay_s, rate),
                             return_exceptions=True)
        for w in (cw, sw):
            w.close()

    server = await asyncio.start_server(handle, "127.0.0.1", listen_port)
    started.append(server.sockets[0].getsockname()[1])
    async with server:
        while not stop_event.is_set():
            await asyncio.sleep(0.05)


def start_relay(target_port, delay_ms, mbit=0.0):
    """Run a relay in a background thread; returns (its port, a stop function)."""
    started, stop_event = [], threading.Event()
    t = threading.Thread(target=lambda: asyncio.run(
        _serve(0, ("127.0.0.1", target_port), delay_ms, mbit, started, stop_event)),
        daemon=True)
    t.start()
    while not started:
        time.sleep(0.01)

    def stop():
        stop_event.set()
        t.join(5)
    return started[0], stop


PREFIX = "otabench"
_lab_counter = iter(range(1, 1 << 30))
_open_labs = []


def _ip(*args, check=True):
    p = subprocess.run(["ip", *args], capture_output=True, text=True, timeout=30,
                       stdin=subprocess.DEVNULL)
    if check and p.returncode != 0:
        raise RuntimeError("ip %s: %s" % (" ".join(args), p.stderr.strip()))
    return p


def _alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass
    return True


def _kill_ns_pids(ns):
    for _ in range(20):
        pids = [int(x) for x in _ip("netns", "pids", ns, check=False).stdout.split()
                if x.isdigit()]
        if not pids:
            return
        for pid in pids:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        time.sleep(0.05)


def sweep_stale():
    """Remove the namespaces left by an earlier bench whose process is gone."""
    for line in _ip("netns", "list", check=False).stdout.splitlines():
        ns = line.split()[0] if line.strip() else ""
        m = re.match(r"^%s-(\d+)-" % PREFIX, ns)
        if m and int(m.group(1)) != os.getpid() and not _alive(int(m.group(1))):
            _kill_ns_pids(ns)
            _ip("netns", "del", ns, check=False)


def available():
    """(ok, why): root, `ip`, TUN and namespaces."""
    if os.geteuid() != 0:
        return False, "needs root (network namespaces)"
    if not os.path.exists("/dev/net/tun"):
        return False, "no /dev/net/tun"
    if subprocess.run(["ip", "-V"], capture_output=True).returncode != 0:
        return False, "no `ip` (iproute2)"
    return True, ""


class Lab:
    """An uploader namespace and `nodes` node namespaces, node i behind link i (its own
    cap and delay). Addresses: the uploader is 10.78.i.1 on link i, node i 10.78.i.2."""

    def __init__(self, bin_dir, rtt_ms, mbit, nodes=1, limit=None):
        sweep_stale()
        self.rtt_ms, self.mbit, self.n = rtt_ms, mbit, nodes
        self.procs = []
        tag = "%s-%d-%d" % (PREFIX, os.getpid(), next(_lab_counter))
        self.up_ns = tag + "-up"
        self.nss = [self.up_ns] + ["%s-n%d" % (tag, i) for i in range(nodes)]
        self.emu = None
        self.on_close = None  # called first by close(): stop what runs inside
        _open_labs.append(self)
        try:
            for ns in self.nss:
                _ip("netns", "add", ns)
                _ip("-n", ns, "link", "set", "lo", "up")
            specs = []
            for i in range(nodes):
                _ip("-n", self.up_ns, "tuntap", "add", "dev", "l%d" % i, "mode", "tun")
                _ip("-n", self.node_ns(i), "tuntap", "add", "dev", "wan0", "mode", "tun")
                specs.append("%s/l%d=%s/wan0" % (self.up_ns, i, self.node_ns(i)))
            argv = [os.path.join(bin_dir, "linkemu"), "--delay-ms", str(rtt_ms / 2.0),
                    "--mbit", str(mbit)]
            if limit:
                argv += ["--limit", str(limit)]
            self.emu = subprocess.Popen(argv + specs, stdin=subprocess.PIPE,
                                        stdout=subprocess.PIPE, text=True)
            if self.emu.stdout.readline().strip() != "ready":
                raise RuntimeError("linkemu did not start")
            for i in range(nodes):
                _ip("-n", self.up_ns, "addr", "add", "10.78.%d.1" % i, "peer",
                    "10.78.%d.2" % i, "dev", "l%d" % i)
                _ip("-n", self.up_ns, "link", "set", "l%d" % i, "up")
                _ip("-n", self.node_ns(i), "addr", "add", "10.78.%d.2" % i, "peer",
                    "10.78.%d.1" % i, "dev", "wan0")
                _ip("-n", self.node_ns(i), "link", "set", "wan0", "up")
        except BaseException:
            self.close()
            raise

    def node_ns(self, i):
        return self.nss[1 + i]

    @staticmethod
    def node_ip(i):
        return "10.78.%d.2" % i

    @staticmethod
    def argv(ns, argv):
        return ["ip", "netns", "exec", ns, *argv]

    def popen(self, ns, argv, **kw):
        """A process inside ns, in its own process group; close() ends it."""
        p = subprocess.Popen(self.argv(ns, argv), start_new_session=True, **kw)
        self.procs.append(p)
        return p

    def run(self, ns, argv, **kw):
        return subprocess.run(self.argv(ns, argv), **kw)

    def wire_bytes(self):
        """[(up->node IP bytes, packets, drops, node->up bytes, packets, drops)] per
        link since the last zero_counters()."""
        self.emu.stdin.write("s")
        self.emu.stdin.flush()
        rows = []
        for line in iter(self.emu.stdout.readline, ""):
            if line.strip() == "end":
                break
            rows.append(tuple(int(x) for x in line.split()[1:]))
        return rows

    def zero_counters(self):
        self.emu.stdin.write("z")
        self.emu.stdin.flush()

    def close(self):
        if self.on_close is not None:
            cb, self.on_close = self.on_close, None
            cb()
        for p in self.procs:
            if p.poll() is None:
                try:
                    os.killpg(p.pid, signal.SIGTERM)
                except ProcessLookupError:
                    pass
        for p in self.procs:
            try:
                p.wait(timeout=5)
            except subprocess.TimeoutExpired:
                os.killpg(p.pid, signal.SIGKILL)
                p.wait()
        self.procs = []
        if self.emu is not None:
            self.emu.stdin.close()  # end of stdin: the forwarder exits
            try:
                self.emu.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.emu.kill()
                self.emu.wait()
            self.emu.stdout.close()
            self.emu = None
        for ns in self.nss:
            _kill_ns_pids(ns)
            _ip("netns", "del", ns, check=False)
        self.nss = []
        if self in _open_labs:
            _open_labs.remove(self)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


@atexit.register
def _close_all():
    for lab in list(_open_labs):
        lab.close()


# The helpers validate() runs inside the namespaces (this file, with a hidden mode).
def _h_server(port, mode):
    srv = socket.socket()
    srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    srv.bind(("0.0.0.0", port))
    srv.listen(1)
    print("ready", flush=True)
    c, _ = srv.accept()
    if mode == "echo":
        c.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        while True:
            b = c.recv(1)
            if not b:
                return
            c.sendall(b)
    total, t_first, marks = int(mode), None, []
    got = 0
    while got < total:
        b = c.recv(1 << 16)
        if not b:
            break
        now = time.monotonic()
        if t_first is None:
            t_first = now
        got += len(b)
        marks.append((now, got))
    c.sendall(b"k")
    # steady state: the last three quarters of the bytes, after slow start (a long
    # window, so one late wake-up of this reader does not skew it)
    half = next(m for m in marks if m[1] >= total // 4)
    print("%d %.6f %.6f" % (got, marks[-1][0] - t_first,
                            (got - half[1]) / max(marks[-1][0] - half[0], 1e-9)), flush=True)


def _h_client(ip, port, mode, count):
    s = socket.create_connection((ip, port))
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    if mode == "echo":
        rtts = []
        for _ in range(count):
            t0 = time.monotonic()
            s.sendall(b"p")
            s.recv(1)
            rtts.append(time.monotonic() - t0)
        print("%.6f" % statistics.median(rtts))
        return
    t0 = time.monotonic()
    block = os.urandom(1 << 16)
    left = int(mode)
    while left > 0:
        n = min(left, len(block))
        s.sendall(block[:n])
        left -= n
    s.recv(1)
    print("%.6f" % (time.monotonic() - t0))


def _pair(lab, i, mode, count):
    srv = lab.popen(lab.node_ns(i), [sys.executable, os.path.abspath(__file__), "--_server",
                                     "7000", mode], stdout=subprocess.PIPE, text=True)
    if srv.stdout.readline().strip() != "ready":
        raise RuntimeError("validation server did not start")
    cl = lab.run(lab.up_ns, [sys.executable, os.path.abspath(__file__), "--_client",
                             lab.node_ip(i), "7000", mode, str(count)], capture_output=True,
                 text=True, timeout=120, check=True)
    out = srv.stdout.read()
    srv.wait(timeout=10)
    srv.stdout.close()
    lab.procs.remove(srv)
    return cl.stdout.split(), out.split()


def validate(lab, copy_bytes, link=0):
    """Measures the emulated link itself: (ping-pong median RTT s, steady-state TCP
    payload rate B/s, raw copy time s, that copy's wire bytes up). Node side first: the
    bulk copy is timed by the sender, from connect to the receiver's one-byte ack."""
    (rtt,), _ = _pair(lab, link, "echo", 20)
    lab.zero_counters()
    (t_copy,), (_, _, steady) = _pair(lab, link, str(copy_bytes), 0)
    wire = lab.wire_bytes()[link][0]
    return float(rtt), float(steady), float(t_copy), wire


def tcp_copy_time(lab, nbytes, link=0):
    """A raw TCP copy of nbytes through link: seconds, connect to the receiver's ack."""
    (t_copy,), _ = _pair(lab, link, str(nbytes), 0)
    return float(t_copy)


def print_validation(lab, copy_bytes):
    rtt, steady, t_copy, wire = validate(lab, copy_bytes)
    cap = lab.mbit * 1e6 / 8
    # the same bound as the uploads: wire bytes at the cap plus the round trips (TCP
    # connect, and the last byte's way there and the ack's way back)
    bound = wire / cap + 2 * lab.rtt_ms / 1000.0
    print("  emulator check (%g ms, %g Mbit/s): ping-pong RTT %.1f ms; raw TCP copy of "
          "%d MiB: steady %.2f Mbit/s payload = %.2f of the cap (goal >= 0.9), whole copy "
          "%.3f s = %.2f of its bound" % (lab.rtt_ms, lab.mbit, rtt * 1000, copy_bytes >> 20,
                                          steady * 8 / 1e6, steady / cap, t_copy,
                                          bound / t_copy))
    return rtt, steady / cap, bound / t_copy


def main():
    if len(sys.argv) > 1 and sys.argv[1] == "--_server":
        return _h_server(int(sys.argv[2]), sys.argv[3])
    if len(sys.argv) > 1 and sys.argv[1] == "--_client":
        return _h_client(sys.argv[2], int(sys.argv[3]), sys.argv[4], int(sys.argv[5]))
    if len(sys.argv) > 1 and sys.argv[1] == "--validate":
        ap = argparse.ArgumentParser()
        ap.add_argument("--validate", metavar="BIN_DIR", required=True)
        ap.add_argument("--rtt-ms", type=float, default=20)
        ap.add_argument("--mbit", type=float, default=8)
        ap.add_argument("--mib", type=int, default=4)
        a = ap.parse_args()
        with Lab(a.validate, a.rtt_ms, a.mbit) as lab:
            print_validation(lab, a.mib << 20)
        return
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--listen", type=int, required=True, help="port to listen on (127.0.0.1)")
    ap.add_argument("--target", required=True, help="HOST:PORT to relay to")
    ap.add_argument("--delay-ms", type=float, default=0, help="one-way delay in ms")
    ap.add_argument("--mbit", type=float, default=0, help="bandwidth cap in Mbit/s (0: none)")
    a = ap.parse_args()
    host, port = a.target.rsplit(":", 1)
    started = []
    asyncio.run(_serve(a.listen, (host, int(port)), a.delay_ms, a.mbit, started,
                       threading.Event()))


if __name__ == "__main__":
    main()
