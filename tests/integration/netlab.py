"""netlab: a small LAN built from Linux network namespaces, for the tests that need
real multicast (mDNS discovery), which loopback cannot carry.

    ok, why = netlab.available()          # root (CAP_NET_ADMIN), `ip`, netns work?
    with netlab.Lan() as lan:             # or: lan = netlab.Lan(tc)  (tc.addCleanup)
        a = lan.add_host("laptop")
        b = lan.add_host("kitchen")
        b.popen(["some-daemon"])         # runs inside b's namespace, killed by close()
        a.run(["ping", "-c", "1", b.ip])

Layout of one Lan: a "switch" namespace holding a bridge br0 (multicast snooping off,
so every multicast frame reaches every port), and one namespace per host with a veth
pair: eth0 inside the host, its peer enslaved to br0. Each host gets 10.A.B.i/24 on
eth0, its IPv6 link-local address (usable at once: duplicate address detection is
off), lo up, and no default route: nothing can leave the Lan, and the machine's real
interfaces are never touched.

There is no multicast route either: a socket that sends to 224.0.0.251 without
choosing an interface (IP_MULTICAST_IF) gets ENETUNREACH, and joining a group with
INADDR_ANY as the interface fails with ENODEV. A responder that binds to its
interfaces explicitly works; pass mcast_route=True to add_host() to give a host
"224.0.0.0/4 dev eth0" as a LAN with a default route would effectively have.
IPv6 needs nothing here: the kernel has a multicast route ff00::/8 on every
interface (table local), and a datagram to ff02::fb without IPV6_MULTICAST_IF leaves
through eth0 (the only multicast interface of a host).

Names are "otalab-<pid>-<lan>-<host>", unique per process; namespaces of a crashed
earlier run (whose pid is dead) are removed when the next Lan is created. close()
kills every process started with popen() (its whole process group: SIGTERM, then
SIGKILL), then every other process still inside the namespaces, and deletes the
namespaces (which removes the veths). It is idempotent and also runs at exit.
"""
import atexit
import itertools
import os
import re
import shutil
import signal
import subprocess
import sys
import time

PREFIX = "otalab"
_lan_counter = itertools.count(1)
_available = None
_stale_swept = False


def _ip_binary():
    return shutil.which("ip") or next(
        (p for p in ("/usr/sbin/ip", "/sbin/ip", "/usr/bin/ip", "/bin/ip") if os.path.exists(p)),
        None)


IP = _ip_binary() or "ip"


def _run(argv, check=True, timeout=30):
    p = subprocess.run(argv, capture_output=True, text=True, timeout=timeout,
                       stdin=subprocess.DEVNULL)
    if check and p.returncode != 0:
        raise RuntimeError("%s failed (exit %d): %s%s" % (" ".join(argv), p.returncode,
                                                          p.stdout, p.stderr))
    return p


def _has_net_admin():
    if os.geteuid() == 0:
        return True
    try:
        with open("/proc/self/status") as f:
            m = re.search(r"^CapEff:\s*([0-9a-fA-F]+)", f.read(), re.M)
        return bool(m) and bool(int(m.group(1), 16) & (1 << 12))  # CAP_NET_ADMIN = 12
    except OSError:
        return False


def available():
    """(ok, reason): can this process build a Lan? Tries a throwaway namespace with a
    bridge and a veth pair for real (the result is cached)."""
    global _available
    if _available is not None:
        return _available
    if sys.platform != "linux":
        _available = (False, "network namespaces need Linux")
    elif not _has_net_admin():
        _available = (False, "network namespaces need root (CAP_NET_ADMIN)")
    elif _ip_binary() is None:
        _available = (False, "the `ip` tool (iproute2) is not installed")
    else:
        ns = "%s-%d-probe" % (PREFIX, os.getpid())
        try:
            _run([IP, "netns", "add", ns])
        except (RuntimeError, OSError, subprocess.TimeoutExpired) as e:
            _available = (False, "cannot create a network namespace: %s" % str(e).strip())
            return _available
        try:
            _run([IP, "-n", ns, "link", "set", "lo", "up"])
            _run([IP, "-n", ns, "link", "add", "br0", "type", "bridge"])
            _run([IP, "-n", ns, "link", "add", "p0", "type", "veth", "peer", "name", "p1"])
            _available = (True, "")
        except (RuntimeError, OSError, subprocess.TimeoutExpired) as e:
            _available = (False, "network namespace without bridge/veth support: %s"
                          % str(e).strip())
        finally:
            _run([IP, "netns", "del", ns], check=False)
    return _available


def _pid_alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _list_netns():
    p = _run([IP, "netns", "list"], check=False)
    return [line.split()[0] for line in p.stdout.splitlines() if line.strip()]


def _kill_netns_pids(ns):
    """SIGKILL whatever still runs inside ns."""
    for _ in range(5):
        p = _run([IP, "netns", "pids", ns], check=False)
        pids = [int(x) for x in p.stdout.split() if x.isdigit()]
        if not pids:
            return
        for pid in pids:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        time.sleep(0.05)


def sweep_stale():
    """Remove the namespaces of earlier runs whose process is gone."""
    for ns in _list_netns():
        m = re.match(r"^%s-(\d+)-" % PREFIX, ns)
        if m and int(m.group(1)) != os.getpid() and not _pid_alive(int(m.group(1))):
            _kill_netns_pids(ns)
            _run([IP, "netns", "del", ns], check=False)


class Host:
    """One machine of the Lan: a namespace with eth0 on the bridge."""

    def __init__(self, lan, name, ns, index, ip):
        self.lan = lan
        self.name = name
        self.ns = ns
        self.index = index
        self.ip = ip               # IPv4 on eth0, e.g. "10.213.17.2"
        self.ip6 = None            # IPv6 link-local on eth0 (without %eth0)
        self.ifname = "eth0"
        self.ifindex = None        # of eth0, inside the namespace
        self.procs = []

    @property
    def prefix(self):
        """The argv prefix that runs a command inside this host."""
        return [IP, "netns", "exec", self.ns]

    def popen(self, argv, **kw):
        """subprocess.Popen of argv inside the host, in a new session (its own process
        group), stdin from /dev/null unless given; killed by lan.close()."""
        kw.setdefault("start_new_session", True)
        kw.setdefault("stdin", subprocess.DEVNULL)
        p = subprocess.Popen(self.prefix + [str(a) for a in argv], **kw)
        self.procs.append(p)
        return p

    def ip_cmd(self, *args):
        """`ip <args>` inside the host (raises RuntimeError when it fails), e.g.
        host.ip_cmd("addr", "add", "172.31.7.5/24", "dev", "eth0") for a second subnet
        on the same wire; gone with the namespace."""
        return _run([IP, "-n", self.ns] + [str(a) for a in args]).stdout

    def run(self, argv, timeout=60, **kw):
        """subprocess.run of argv inside the host (output captured as text unless
        told otherwise)."""
        if "stdout" not in kw and "stderr" not in kw:
            kw.setdefault("capture_output", True)
        kw.setdefault("text", True)
        kw.setdefault("stdin", subprocess.DEVNULL)
        return subprocess.run(self.prefix + [str(a) for a in argv], timeout=timeout, **kw)

    def __repr__(self):
        return "<Host %s %s (%s)>" % (self.name, self.ip, self.ns)


class Lan:
    """A bridge in its own namespace and hosts plugged into it (see the module text).
    Pass a unittest.TestCase to have close() registered as its cleanup."""

    def __init__(self, tc=None):
        global _stale_swept
        ok, why = available()
        if not ok:
            raise RuntimeError("netlab unavailable: " + why)
        if not _stale_swept:
            _stale_swept = True
            sweep_stale()
        self.id = next(_lan_counter)
        self.base = "%s-%d-%d" % (PREFIX, os.getpid(), self.id)
        # 10.A.B.0/24: A in 160..223 from the pid, B from the pid and the Lan number;
        # only inside this Lan anyway (no route leaves it)
        pid = os.getpid()
        self.subnet = "10.%d.%d" % (160 + (pid >> 8) % 64, (pid + self.id * 37) % 256)
        self.hosts = []
        self.namespaces = []
        self.closed = False
        atexit.register(self.close)
        if tc is not None:
            tc.addCleanup(self.close)
        self.switch = self.base + "-sw"
        try:
            self._add_ns(self.switch)
            _run([IP, "-n", self.switch, "link", "set", "lo", "up"])
            _run([IP, "-n", self.switch, "link", "add", "br0", "type", "bridge"])
            _run([IP, "-n", self.switch, "link", "set", "br0", "type", "bridge",
                  "mcast_snooping", "0"])
            _run([IP, "-n", self.switch, "link", "set", "br0", "up"])
        except Exception:
            self.close()
            raise

    def _add_ns(self, ns):
        _run([IP, "netns", "add", ns])
        self.namespaces.append(ns)

    def add_host(self, name, mcast_route=False):
        """A new host on the Lan; name: [a-z0-9]+ (part of the namespace's name)."""
        if self.closed:
            raise RuntimeError("Lan is closed")
        if not re.match(r"^[A-Za-z0-9_]{1,40}$", name) or any(h.name == name for h in self.hosts):
            raise ValueError("bad or duplicate host name %r" % name)
        i = len(self.hosts) + 2  # .1 left free, as for a router
        if i > 254:
            raise RuntimeError("Lan is full")
        ns = "%s-%s" % (self.base, name)
        host = Host(self, name, ns, i, "%s.%d" % (self.subnet, i))
        self._add_ns(ns)
        self.hosts.append(host)
        port = "v%d" % i  # the switch side, inside the switch namespace
        sw = [IP, "-n", self.switch]
        hn = [IP, "-n", ns]
        sysctl = [IP, "netns", "exec", ns, "sysctl", "-q", "-w"]
        _run(sw + ["link", "add", port, "type", "veth", "peer", "name", "eth0", "netns", ns])
        _run(sw + ["link", "set", port, "master", "br0"])
        _run(sw + ["link", "set", port, "up"])
        # the link-local address must be usable at once: no duplicate address detection
        for key in ("all", "default", "eth0"):
            _run(sysctl + ["net.ipv6.conf.%s.accept_dad=0" % key])
        _run(hn + ["link", "set", "lo", "up"])
        _run(hn + ["addr", "add", host.ip + "/24", "dev", "eth0"])
        _run(hn + ["link", "set", "eth0", "up"])
        if mcast_route:
            _run(hn + ["route", "add", "224.0.0.0/4", "dev", "eth0"])
        host.ifindex = int(_run(hn + ["-o", "link", "show", "dev", "eth0"]).stdout.split(":")[0])
        host.ip6 = self._wait_link_local(host)
        return host

    def _wait_link_local(self, host, timeout=10):
        end = time.monotonic() + timeout
        last = ""
        while time.monotonic() < end:
            last = _run([IP, "-n", host.ns, "-6", "-o", "addr", "show", "dev", "eth0",
                         "scope", "link"]).stdout
            m = re.search(r"inet6 (fe80::[0-9a-f:]+)/64", last)
            if m and "tentative" not in last:
                return m.group(1)
            time.sleep(0.02)
        raise RuntimeError("no usable IPv6 link-local address on %s: %r" % (host.ns, last))

    def close(self):
        """Kill every process of the Lan, delete its namespaces. Idempotent."""
        if self.closed:
            return
        self.closed = True
        procs = [p for h in self.hosts for p in h.procs]
        for p in procs:
            if p.poll() is None:
                try:
                    os.killpg(p.pid, signal.SIGTERM)
                except (ProcessLookupError, PermissionError):
                    pass
        end = time.monotonic() + 5
        for p in procs:
            try:
                p.wait(timeout=max(0.01, end - time.monotonic()))
            except subprocess.TimeoutExpired:
                pass
        for p in procs:
            try:  # the rest of the group too, whether its leader is gone or not
                os.killpg(p.pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
            try:
                p.wait(timeout=5)
            except subprocess.TimeoutExpired:
                pass
        for ns in reversed(self.namespaces):
            _kill_netns_pids(ns)
            _run([IP, "netns", "del", ns], check=False)
        self.namespaces = []
        try:
            atexit.unregister(self.close)
        except Exception:
            pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
        return False


# -- self-test -----------------------------------------------------------------------
# `python3 netlab.py` (or the NetlabTest case of test_discovery.py): two hosts ping each
# other, and an IPv4 and an IPv6 mDNS-group datagram cross the bridge.

_RECEIVER = r"""
import socket, struct, sys
family, group, ifindex, local = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
if family == "4":
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind(("0.0.0.0", 5353))
    s.setsockopt(socket.IPPROTO_IP, socket.IP_ADD_MEMBERSHIP,
                 socket.inet_aton(group) + socket.inet_aton(local))
else:
    s = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
    s.bind(("::", 5353))
    s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_JOIN_GROUP,
                 socket.inet_pton(socket.AF_INET6, group) + struct.pack("@I", ifindex))
s.settimeout(10)
print("ready", flush=True)
data, addr = s.recvfrom(9000)
print("got %r from %s" % (data, addr[0]), flush=True)
"""

_SENDER = r"""
import socket, struct, sys
family, group, ifindex, local, explicit = (sys.argv[1], sys.argv[2], int(sys.argv[3]),
                                           sys.argv[4], sys.argv[5] == "1")
if family == "4":
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    if explicit:
        s.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_IF, socket.inet_aton(local))
    s.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_TTL, 255)
    dest = (group, 5353)
else:
    s = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
    if explicit:
        s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_MULTICAST_IF, ifindex)
    s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_MULTICAST_HOPS, 255)
    dest = (group, 5353, 0, 0)
try:
    s.sendto(b"netlab-hello", dest)
    print("sent", flush=True)
except OSError as e:
    print("error %s" % e.strerror, flush=True)
"""


_PING = r"""
import os, socket, struct, sys, time
addr = sys.argv[1]
v6 = ":" in addr
if v6:
    s = socket.socket(socket.AF_INET6, socket.SOCK_RAW, socket.IPPROTO_ICMPV6)
    dest = socket.getaddrinfo(addr, None, socket.AF_INET6)[0][4]
    kind, reply = 128, 129
else:
    s = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_ICMP)
    dest = (addr, 0)
    kind, reply = 8, 0
ident, payload = os.getpid() & 0xFFFF, b"netlab-ping"
def csum(b):
    if len(b) % 2:
        b += b"\0"
    t = sum(struct.unpack("!%dH" % (len(b) // 2), b))
    t = (t >> 16) + (t & 0xFFFF)
    t += t >> 16
    return ~t & 0xFFFF
msg = struct.pack("!BBHHH", kind, 0, 0, ident, 1) + payload
if not v6:  # the kernel fills in the ICMPv6 checksum
    msg = msg[:2] + struct.pack("!H", csum(msg)) + msg[4:]
t0 = time.monotonic()
s.sendto(msg, dest)
s.settimeout(5)
while True:
    data = s.recv(2048)
    if not v6:
        data = data[(data[0] & 0x0F) * 4:]  # raw IPv4 sockets include the IP header
    if data[0] == reply and struct.unpack("!H", data[4:6])[0] == ident:
        print("reply in %.1f ms" % ((time.monotonic() - t0) * 1000))
        break
"""


def ping(host, addr, timeout=10):
    """One ICMP echo from host to addr (IPv4, or IPv6 with %eth0); (ok, text). Written
    in Python over a raw socket: the ping binary is not always installed."""
    p = host.run([sys.executable, "-c", _PING, addr], timeout=timeout)
    return p.returncode == 0 and "reply" in p.stdout, (p.stdout + p.stderr).strip()


def multicast_send(sender, receiver, family, explicit=True, timeout=10):
    """Send one datagram to the mDNS group (224.0.0.251 or ff02::fb, port 5353) from
    sender; return (what the sender printed, what the receiver printed)."""
    group = "224.0.0.251" if family == "4" else "ff02::fb"
    rx = receiver.popen([sys.executable, "-c", _RECEIVER, family, group, receiver.ifindex,
                         receiver.ip], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                        text=True)
    try:
        first = rx.stdout.readline()
        if first.strip() != "ready":
            return "", first + rx.stdout.read()
        tx = sender.run([sys.executable, "-c", _SENDER, family, group, sender.ifindex,
                         sender.ip, "1" if explicit else "0"], timeout=timeout)
        sent = (tx.stdout + tx.stderr).strip()
        if sent != "sent":
            rx.kill()
        out, _ = rx.communicate(timeout=timeout + 5)
        return sent, out.strip()
    finally:
        if rx.poll() is None:
            rx.kill()
            rx.wait()


def self_test(verbose=True):
    """Raises AssertionError when the lab does not carry unicast and multicast."""
    say = print if verbose else (lambda *a: None)
    with Lan() as lan:
        a = lan.add_host("alpha")
        b = lan.add_host("beta")
        say("hosts:", a, a.ip6, b, b.ip6)
        for x, y in ((a, b), (b, a)):
            for addr in (y.ip, y.ip6 + "%eth0"):
                ok, out = ping(x, addr)
                assert ok, "ping %s -> %s failed: %s" % (x, addr, out)
                say("ping %s -> %s: %s" % (x.name, addr, out))
        for family in ("4", "6"):
            sent, got = multicast_send(a, b, family)
            assert sent == "sent" and "netlab-hello" in got, \
                "IPv%s multicast: sender %r, receiver %r" % (family, sent, got)
            say("IPv%s multicast with the interface chosen: %s" % (family, got))
            sent, got = multicast_send(a, b, family, explicit=False)
            say("IPv%s multicast with the default interface: sender %r, receiver %r"
                % (family, sent, got))
        for x in (a, b):
            assert x.run(["ip", "route", "show", "default"]).stdout.strip() == "", \
                "a default route in %s" % x.ns
        left = [ns for ns in lan.namespaces]
    gone = set(left) - set(_list_netns())
    assert gone == set(left), "namespaces left behind: %s" % (set(left) - gone)
    say("netlab self-test passed")


if __name__ == "__main__":
    ok, why = available()
    if not ok:
        print("netlab unavailable:", why)
        sys.exit(77)
    self_test()
