"""Helpers of the end-to-end tests: real Linux nodes (ota-boot running demo-node)
on loopback ports, the ota tool, and a raw protocol client written from
docs/protocol.md#native independently of the C code, for the hostile and broken
cases the real uploader never produces; its numbers are the C headers' own
(protocol_consts reads include/ota/*.h).

Every node runs in its own process group with its own temp state directory and is
stopped (SIGTERM, then SIGKILL of the whole group) by a cleanup registered on the
test case, whether the test passed or not.

A node can also run inside a host of a netlab.Lan (Node(..., netns=host): started
under `ip netns exec`, which execs into ota-boot, so the process group is the same),
bound to 0.0.0.0 there; run_ota(..., netns=host) runs the tool inside a host.
"""
import atexit
import gzip
import hashlib
import json
import os
import random
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time

import protocol_consts as P

BIN = os.environ.get("OTA_BIN_DIR") or os.path.join(
    os.path.dirname(os.path.abspath(__file__)), "..", "..", "build", "bin")
OTA = os.path.join(BIN, "ota")
OTA_BOOT = os.path.join(BIN, "ota-boot")
DEMO_NODE = os.path.join(BIN, "demo-node")
CRASHER = os.path.join(BIN, "ota-test-crasher")

MAGIC = P.MAGIC
CHUNK = P.CHUNK_SIZE

# The uploader remembers the nodes that proved salted auth (its known_nodes file).
# Tests never touch the real ~/.local/state: each test process gets a file of its own
# (through $OTA_KNOWN_NODES, which every ota run inherits), removed when it exits;
# known_nodes_file(tc) gives one test a fresh file of its own.
_STATE_DIR = tempfile.mkdtemp(prefix="ota-state-")
atexit.register(shutil.rmtree, _STATE_DIR, True)
os.environ["XDG_STATE_HOME"] = _STATE_DIR
os.environ["XDG_CACHE_HOME"] = os.path.join(_STATE_DIR, "cache")  # the gzip cache
os.environ.pop("OTA_CACHE_DIR", None)
os.environ["OTA_KNOWN_NODES"] = os.path.join(_STATE_DIR, "known_nodes")


def password_file(tc, text):
    """A 0600 temp file holding text (a password file as demo-node and ota read them),
    removed after the test."""
    fd, path = tempfile.mkstemp(prefix="ota-pw-")
    os.write(fd, text.encode())
    os.close(fd)
    os.chmod(path, 0o600)
    tc.addCleanup(os.unlink, path)
    return path


def known_nodes_file(tc):
    """A path for a known_nodes file of this test only (not created); pass it with
    --known-nodes or env={"OTA_KNOWN_NODES": path}. Removed after the test."""
    d = tempfile.mkdtemp(prefix="ota-known-")
    tc.addCleanup(shutil.rmtree, d, True)
    return os.path.join(d, "known_nodes")


def _ephemeral_range():
    try:
        with open("/proc/sys/net/ipv4/ip_local_port_range") as f:
            lo, hi = (int(x) for x in f.read().split())
            return lo, hi
    except (OSError, ValueError):
        return 32768, 60999


_rng = random.Random()  # seeded from the OS: parallel test processes pick differently


def _port_is_free(port):
    for kind in (socket.SOCK_STREAM, socket.SOCK_DGRAM):
        with socket.socket(socket.AF_INET, kind) as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                return False
    return True


def free_port():
    """A loopback port free for TCP and UDP right now, and the next one too (demo-node
    serves its log viewers on the OTA port + 1). It is taken below the kernel's
    ephemeral range, so that no outgoing connection (the uploader's own source port)
    can grab it while a node reboots and re-binds it. Node retries on another port if
    a parallel test took it first anyway."""
    lo, _ = _ephemeral_range()
    base = 20000 if lo > 21000 else 1024
    for _ in range(500):
        port = _rng.randrange(base, lo - 1)
        if _port_is_free(port) and _port_is_free(port + 1):  # + 1: the node's log viewers
            return port
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:  # let the kernel pick
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def sha256_file(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def read_exact(sock, n):
    """Exactly n bytes from a socket, or ConnectionError when the peer closes first."""
    data = b""
    while len(data) < n:
        got = sock.recv(n - len(data))
        if not got:
            raise ConnectionError("closed")
        data += got
    return data


def make_image(tc, extra=200000, seed=1, fill=None):
    """A new firmware: demo-node with bytes appended (random unless fill is given),
    so it runs like the original but has another sha256. Removed after the test."""
    d = tempfile.mkdtemp(prefix="ota-img-")
    tc.addCleanup(shutil.rmtree, d, True)
    path = os.path.join(d, "firmware-%d.bin" % seed)
    shutil.copyfile(DEMO_NODE, path)
    with open(path, "ab") as f:
        if fill is None:
            f.write(hashlib.shake_256(b"seed%d" % seed).digest(extra))
        else:
            f.write(bytes([fill]) * extra)
    os.chmod(path, 0o755)
    return path


def read_bytes(path):
    with open(path, "rb") as f:
        return f.read()


def netns_prefix(netns):
    """The argv prefix that runs a command inside netns: a netlab Host (anything
    with a .prefix list), a namespace name, or None (no prefix: here)."""
    if netns is None:
        return []
    if hasattr(netns, "prefix"):
        return list(netns.prefix)
    return ["ip", "netns", "exec", str(netns)]


def run_ota(*args, timeout=180, env=None, netns=None):
    """Run the ota tool (inside netns if given, see netns_prefix); returns
    (exit code, stdout, stderr)."""
    e = dict(os.environ)
    e.pop("OTA_PASSWORD", None)
    if env:
        e.update(env)
    p = subprocess.run(netns_prefix(netns) + [OTA] + [str(a) for a in args],
                       capture_output=True, text=True, timeout=timeout, env=e,
                       stdin=subprocess.DEVNULL)
    return p.returncode, p.stdout, p.stderr



def forget_port(port):
    """Drop this process's known_nodes records of any host on port (a port reused by a
    later test's node would otherwise look like a known node changing its auth)."""
    path = os.environ["OTA_KNOWN_NODES"]
    try:
        with open(path) as f:
            lines = f.readlines()
    except FileNotFoundError:
        return
    keep = [l for l in lines if not re.match(r"\S*:%d\s" % int(port), l)]
    if keep != lines:
        with open(path, "w") as f:
            f.writelines(keep)


class Node:
    """A Linux node: ota-boot run + demo-node on 127.0.0.1:<free port>, or with
    netns=<netlab Host or namespace name> inside that namespace on --bind 0.0.0.0
    (bind= overrides), reached at the host's address (self.address). flash_flags go to
    `ota-boot flash` (e.g. ["--trust-key", pem]), boot_flags to `ota-boot run`."""

    def __init__(self, tc, *flags, boot_flags=(), port=None, image=None, netns=None,
                 bind=None, flash_flags=()):
        self.tc = tc
        self.netns = netns
        self.bind = bind or ("0.0.0.0" if netns is not None else "127.0.0.1")
        # where the node is reached from outside: the netlab host's IPv4 address
        self.address = getattr(netns, "ip", None) or (
            "127.0.0.1" if self.bind in ("0.0.0.0", "::") else self.bind)
        self.dir = tempfile.mkdtemp(prefix="ota-node-")
        self.port = port or free_port()
        self.flags = list(flags)
        self.proc = None
        flash = subprocess.run([OTA_BOOT, "flash", "--state", self.dir, *flash_flags,
                                image or DEMO_NODE],
                               capture_output=True, text=True)
        if flash.returncode != 0:
            shutil.rmtree(self.dir, ignore_errors=True)
            tc.fail("ota-boot flash failed (exit %d):\n%s%s"
                    % (flash.returncode, flash.stdout, flash.stderr))
        self.log_path = os.path.join(self.dir, "node.log")
        self.log_file = open(self.log_path, "ab")
        self.boot_flags = list(boot_flags)
        tc.addCleanup(self.cleanup)
        for attempt in range(3):
            self.start()
            in_use = lambda: "Address already in use" in self.log()  # noqa: E731
            self.wait_for(lambda: in_use() or self.count(r"\[I\]\[ota\] listening on") >= 1,
                          30, "listening line #1")
            if not in_use() or port is not None or attempt == 2:
                break
            # a parallel test took the port between free_port() and the node's bind
            self.stop()
            self.log_file.truncate(0)
            self.port = free_port()
        self.wait_listening(1)
        forget_port(self.port)  # a new node: what an earlier one on this port proved is void


    def start(self):
        cmd = netns_prefix(self.netns) + [OTA_BOOT, "run", "--state", self.dir] + \
            self.boot_flags + ["--", "--bind", self.bind, "--port", str(self.port)] + self.flags
        self.proc = subprocess.Popen(cmd, stdout=self.log_file, stderr=subprocess.STDOUT,
                                     stdin=subprocess.DEVNULL, start_new_session=True)

    def kill(self):
        """Power cut: SIGKILL the bootloader and the firmware at once."""
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        self.proc.wait(timeout=10)

    def kill_firmware(self):
        """The firmware dies (SIGKILL); ota-boot restarts it."""
        out = subprocess.run(["pgrep", "-P", str(self.proc.pid)], capture_output=True,
                             text=True).stdout.split()
        for pid in out:
            try:
                os.kill(int(pid), signal.SIGKILL)
            except ProcessLookupError:
                pass
        return len(out)

    # -- logs -----------------------------------------------------------------
    def log(self):
        with open(self.log_path, "r", errors="replace") as f:
            return f.read()

    def count(self, pattern):
        return len(re.findall(pattern, self.log()))

    def wait_for(self, predicate, timeout, what):
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            if predicate():
                return
            if self.proc.poll() is not None:
                break
            time.sleep(0.05)
        if predicate():
            return
        if self.proc.poll() is not None:
            why = "ota-boot exited with status %d" % self.proc.returncode
        else:
            why = "timed out after %.0f s" % timeout
        self.tc.fail("%s waiting for %s (node on %s:%d); node log:\n%s"
                     % (why, what, self.address, self.port, self.log()[-6000:]))

    def wait_listening(self, n, timeout=30):
        self.wait_for(lambda: self.count(r"\[I\]\[ota\] listening on") >= n, timeout,
                      "listening line #%d" % n)

    def heartbeats(self):
        """[(tick, loops)] of the heartbeat lines so far."""
        return [(int(a), int(b)) for a, b in
                re.findall(r"heartbeat tick=(\d+) loops=(\d+)", self.log())]

    # -- state ----------------------------------------------------------------
    def status(self):
        p = subprocess.run([OTA_BOOT, "status", "--state", self.dir], capture_output=True,
                           text=True, timeout=30)
        if p.returncode != 0:
            self.tc.fail("ota-boot status failed (exit %d): %s\nnode log:\n%s"
                         % (p.returncode, p.stderr, self.log()[-3000:]))
        try:
            return json.loads(p.stdout)
        except ValueError as e:
            self.tc.fail("ota-boot status printed no JSON (%s): %r" % (e, p.stdout))

    def upload(self, image, *args, timeout=180, netns=None):
        """ota upload to this node's address; the tool runs in netns if given, else
        beside the node (in the node's namespace if it has one)."""
        return run_ota("upload", "--device", self.address, "--port", self.port, *args, image,
                       timeout=timeout, netns=netns if netns is not None else self.netns)

    def assert_runs(self, image, boots):
        """The node booted `boots` times and runs image now."""
        self.wait_listening(boots)
        st = self.status()
        self.tc.assertEqual(st["active_sha256"], sha256_file(image), self.log()[-3000:])
        self.tc.assertIn("booted slot=%s image sha256=%s" % (st["active_slot"],
                                                             sha256_file(image)), self.log())
        return st

    # -- teardown -------------------------------------------------------------
    def stop(self):
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                pass
        try:  # anything left in the group (the firmware) goes too
            os.killpg(self.proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        if self.proc.poll() is None:
            self.proc.wait(timeout=10)
        return self.proc.returncode

    def cleanup(self):
        self.stop()
        self.log_file.close()
        log = self.log()
        shutil.rmtree(self.dir, ignore_errors=True)
        for bad in ("ERROR: AddressSanitizer", "ERROR: LeakSanitizer", "runtime error:"):
            if bad in log:
                raise AssertionError("the node's sanitizers reported a problem:\n" + log[-8000:])

    def firmware_pid(self):
        out = subprocess.run(["pgrep", "-P", str(self.proc.pid)], capture_output=True,
                             text=True).stdout.split()
        return int(out[0]) if out else None

    def fds_and_rss(self):
        """(open file descriptors, resident KiB) of the running firmware."""
        pid = self.firmware_pid()
        fds = len(os.listdir("/proc/%d/fd" % pid))
        with open("/proc/%d/status" % pid) as f:
            rss = int(re.search(r"VmRSS:\s+(\d+)", f.read()).group(1))
        return fds, rss


class HeartbeatWatch:
    """Timestamps every heartbeat line the moment it shows up in a node's log (a
    thread polls the log every 20 ms), to show that the node's main loop never
    stalls: a loop blocked on a peer would leave a gap, however it caught up later.
    Stopped by a cleanup if the test does not stop it."""

    POLL_S = 0.02

    def __init__(self, node):
        self.node = node
        self.samples = []  # (monotonic seconds, tick, loops)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        node.tc.addCleanup(self.stop)

    def _run(self):
        pattern = re.compile(r"heartbeat tick=(\d+) loops=(\d+)")
        with open(self.node.log_path, "r", errors="replace") as f:
            f.seek(0, os.SEEK_END)
            pending = ""
            while not self._stop.is_set():
                pending += f.read()
                now = time.monotonic()
                *lines, pending = pending.split("\n")
                for line in lines:
                    m = pattern.search(line)
                    if m:
                        self.samples.append((now, int(m.group(1)), int(m.group(2))))
                self._stop.wait(self.POLL_S)

    def stop(self):
        self._stop.set()
        self._thread.join(5)
        return self.samples

    def mark(self):
        """A point in time to measure from (see gaps_since)."""
        return time.monotonic()

    def gaps_since(self, t0, t1=None):
        """Seconds between consecutive heartbeats seen in [t0, t1], counting the time
        from t0 to the first one and from the last one to t1 (or now)."""
        t1 = time.monotonic() if t1 is None else t1
        times = [t0] + [t for t, _, _ in self.samples if t0 <= t <= t1] + [t1]
        return [b - a for a, b in zip(times, times[1:])]

    def between(self, t0, t1):
        return [(tick, loops) for t, tick, loops in self.samples if t0 <= t <= t1]


class RawClient:
    """The native protocol from the spec, byte by byte, for tests."""

    def __init__(self, port, timeout=15, host="127.0.0.1"):
        self.s = socket.create_connection((host, port), timeout=timeout)

    def close(self):
        self.s.close()

    def send(self, data):
        self.s.sendall(data)

    def read(self, n):
        buf = b""
        while len(buf) < n:
            chunk = self.s.recv(n - len(buf))
            if not chunk:
                raise ConnectionError("closed after %r" % buf)
            buf += chunk
        return buf

    def byte(self):
        return self.read(1)[0]

    def is_closed(self, timeout=5):
        """True when the device closed the connection (EOF or reset) within timeout;
        bytes still in flight before the close (acks, an error code) are skipped."""
        self.s.settimeout(timeout)
        try:
            while self.s.recv(4096):
                pass
            return True
        except ConnectionResetError:
            return True
        except socket.timeout:
            return False

    def hello(self, features=P.FEATURE_NONE):
        """Magic + features; returns (version, features answer bytes)."""
        self.send(MAGIC)
        ok, version = self.read(2)
        assert ok == P.RESP_OK, "handshake answered 0x%02x" % ok
        self.send(bytes([features]))
        answer = self.read(1)
        if answer[0] == P.RESP_FEATURE_FLAGS:
            answer += self.read(1)
        return version, answer

    def auth_legacy(self, method, password):
        """Answer a REQUEST_AUTH_MD5/SHA256 challenge (the method byte is already read)."""
        sha = method == P.RESP_REQUEST_AUTH_SHA256
        n = P.SHA256_HEX_LEN if sha else P.MD5_HEX_LEN
        h = hashlib.sha256 if sha else hashlib.md5
        nonce = self.read(n).decode()
        cnonce = os.urandom(n // 2).hex()
        self.send(cnonce.encode() + h((password + nonce + cnonce).encode()).hexdigest().encode())
        return self.byte()

    def prepare(self, payload, md5=None):
        """Size + MD5; returns the two answers."""
        self.send(len(payload).to_bytes(4, "big"))
        a = self.byte()
        if a != P.RESP_UPDATE_PREPARE_OK:
            return a, None
        self.send((md5 or hashlib.md5(payload).hexdigest()).encode())
        return a, self.byte()

    def finish(self):
        """After the payload: skip chunk acks, return (acks, RECEIVE answer, END answer)."""
        acks = 0
        while True:
            b = self.byte()
            if b != P.RESP_CHUNK_OK:
                break
            acks += 1
        end = self.byte() if b == P.RESP_RECEIVE_OK else None
        return acks, b, end


def gzip_bytes(data):
    return gzip.compress(data, 6)
