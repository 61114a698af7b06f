"""Discovery end to end (docs/discovery.md): nodes answer <name>.local over mDNS and
advertise _ota._tcp (and _arduino._tcp) with DNS-SD; `ota discover` lists them and
`ota upload --device <name>.local` finds them with no resolver help. Multicast needs
real interfaces, so every test builds its own little LAN of network namespaces
(netlab.py): a bridge, a "laptop" host running the ota tool or a stock browser, and
one host per node, with no route out and no nss-mdns. Name conflicts, a stock browser
(python zeroconf), hostile datagrams and spoofed conflicts from off the link
(RFC 6762 11) are covered too.

Needs root (network namespaces); every test is skipped, with the reason, otherwise."""
import json
import os
import random
import re
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import netlab  # noqa: E402
from nodelib import (DEMO_NODE, HeartbeatWatch, Node, make_image,  # noqa: E402
                     password_file, run_ota, sha256_file)
import protocol_consts as P  # noqa: E402

NETLAB_OK, NETLAB_WHY = netlab.available()
if not NETLAB_OK:
    print("test_discovery: skipping every test: " + NETLAB_WHY, flush=True)
needs_netlab = unittest.skipUnless(NETLAB_OK, "netlab unavailable: " + NETLAB_WHY)

# a stock browser: Debian's python3-zeroconf, for the system Python (the python3 on
# PATH may be another build without it)
SYSTEM_PYTHON = "/usr/bin/python3"


def _zeroconf_missing():
    if not os.path.exists(SYSTEM_PYTHON):
        return "%s does not exist" % SYSTEM_PYTHON
    try:
        p = subprocess.run([SYSTEM_PYTHON, "-c", "import zeroconf"], capture_output=True,
                           text=True, timeout=60)
    except (OSError, subprocess.TimeoutExpired) as e:
        return "%s failed: %s" % (SYSTEM_PYTHON, e)
    if p.returncode != 0:
        return "%s cannot import zeroconf (apt-get install python3-zeroconf): %s" % (
            SYSTEM_PYTHON, p.stderr.strip().splitlines()[-1:] or "")
    return None


ANNOUNCING = re.compile(r"\[I\]\[mdns\] announcing ([A-Za-z0-9-]+)\.local")
DISCOVER_TIMEOUT = "3"


def announced(node):
    """The host name label the node announced last (None before it announced)."""
    names = ANNOUNCING.findall(node.log())
    return names[-1] if names else None


def wait_announced(node, name, timeout=20):
    node.wait_for(lambda: announced(node) == name, timeout,
                  "the mDNS announcement of %s.local" % name)


def node_addresses(node):
    """Every address the node has on the Lan (IPv4, IPv6 link-local)."""
    return {node.netns.ip, node.netns.ip6}


def bare(addr):
    """An address without its %scope."""
    return addr.split("%")[0]


class DiscoveryCase(unittest.TestCase):
    """A Lan per test, a laptop on it, and helpers to put nodes on it."""

    def setUp(self):
        self.lan = netlab.Lan(self)  # closed after the nodes' own cleanups (LIFO)
        self.laptop = self.lan.add_host("laptop")

    def node(self, host_name, *flags, mdns_name=None, port=None, wait=True):
        """A node on its own host of the Lan, announcing mdns_name (default: host_name)."""
        name = mdns_name or host_name
        host = self.lan.add_host(host_name)
        node = Node(self, "--heartbeat-ms", "200", "--mdns-name", name, *flags, netns=host,
                    port=port)
        node.mdns_name = name
        if wait:
            wait_announced(node, name)
        return node

    def discover(self, *args, timeout=60):
        rc, out, err = run_ota("discover", "--timeout", DISCOVER_TIMEOUT, *args,
                               netns=self.laptop, timeout=timeout)
        self.assertEqual(rc, 0, "ota discover failed:\n%s%s" % (out, err))
        return out, err

    def discover_json(self):
        out, err = self.discover("--json")
        try:
            found = json.loads(out)
        except ValueError as e:
            self.fail("ota discover --json printed no JSON (%s):\n%s%s" % (e, out, err))
        self.assertIsInstance(found, list, out)
        return found

    def by_host(self, found):
        hosts = [d.get("host") for d in found]
        self.assertEqual(len(hosts), len(set(hosts)), "a host listed twice: %s" % found)
        return {d["host"]: d for d in found}

    def assert_entry(self, entry, node, host_label=None):
        """entry of ota discover --json describes node (as host_label.local)."""
        label = host_label or node.mdns_name
        self.assertEqual(entry["host"], label + ".local", entry)
        self.assertEqual(entry["address"], node.address, entry)  # IPv4 first
        self.assertIn(node.address, entry["addresses"], entry)
        for a in entry["addresses"]:
            self.assertIn(bare(a), node_addresses(node), "an address of another host: %s"
                          % entry)
        self.assertEqual(entry["port"], node.port, entry)
        self.assertEqual(entry["platform"], "host", entry)
        self.assertIsInstance(entry["version"], str, entry)
        self.assertNotEqual(entry["version"], "", entry)
        self.assertIn(P.DISCOVERY_SERVICE_OTA, entry["services"], entry)

    def upload_by_name(self, label, node, image):
        """ota upload --device <label>.local from the laptop (no nss-mdns there: the
        tool resolves the name with its own mDNS query); checks it found node."""
        rc, out, err = run_ota("upload", "--device", label + ".local", "--port", node.port,
                               image, netns=self.laptop, timeout=120)
        self.assertEqual(rc, 0, "upload to %s.local failed:\n%s%s" % (label, out, err))
        m = re.search(r"resolved %s\.local by mDNS: (\S+)" % re.escape(label), out + err)
        self.assertIsNotNone(m, "no mDNS resolution line:\n%s%s" % (out, err))
        self.assertIn(bare(m.group(1)), node_addresses(node), out + err)

    def assert_unchanged(self, node):
        """node still runs the image it was flashed with and never rebooted."""
        self.assertEqual(node.status()["active_sha256"], sha256_file(DEMO_NODE))
        self.assertEqual(node.count(r"\[I\]\[ota\] listening on"), 1, node.log()[-3000:])


@needs_netlab
class NetlabTest(unittest.TestCase):
    def test_lab_carries_unicast_and_multicast(self):
        netlab.self_test(verbose=False)

    def test_close_kills_processes_and_removes_namespaces(self):
        lan = netlab.Lan(self)
        h = lan.add_host("h")
        p = h.popen(["sleep", "600"])
        names = list(lan.namespaces)
        self.assertTrue(set(names) <= set(netlab._list_netns()))
        lan.close()
        self.assertIsNotNone(p.poll())
        self.assertFalse(set(names) & set(netlab._list_netns()))
        lan.close()  # idempotent


@needs_netlab
class DiscoverTest(DiscoveryCase):
    def test_discover_lists_every_node(self):
        arduino_port = 3300
        living = self.node("livingroom")  # the compiled-in password
        kitchen = self.node("kitchen", "--no-password")
        garage = self.node("garage", "--no-password", "--arduino-port", str(arduino_port))
        found = self.discover_json()
        self.assertEqual([d["name"] for d in found], ["garage", "kitchen", "livingroom"],
                         json.dumps(found, indent=1))
        hosts = self.by_host(found)
        for node in (living, kitchen, garage):
            self.assert_entry(hosts[node.mdns_name + ".local"], node)
        self.assertIs(hosts["livingroom.local"]["password"], True)
        self.assertIn(P.TXT_AUTH_SALTED, hosts["livingroom.local"]["auth"])
        self.assertIs(hosts["kitchen.local"]["password"], False)
        self.assertIn(P.TXT_AUTH_NONE, hosts["kitchen.local"]["auth"])
        self.assertIs(hosts["garage.local"]["password"], False)
        self.assertEqual(hosts["garage.local"]["arduino_port"], arduino_port)
        self.assertIn(P.DISCOVERY_SERVICE_ARDUINO, hosts["garage.local"]["services"])
        for h in ("livingroom.local", "kitchen.local"):
            self.assertIsNone(hosts[h]["arduino_port"])
            self.assertNotIn(P.DISCOVERY_SERVICE_ARDUINO, hosts[h]["services"])

        out, err = self.discover()  # the table
        lines = out.splitlines()
        header = next((l for l in lines if "NAME" in l), None)
        self.assertIsNotNone(header, out)
        self.assertRegex(header, r"NAME\s+ADDRESS\s+PORT\s+VERSION\s+PLATFORM\s+PASSWORD")
        for node in (living, kitchen, garage):
            row = [l for l in lines if re.search(r"\b%s\b" % node.mdns_name, l)]
            self.assertEqual(len(row), 1, out)
            for word in (node.address, str(node.port), hosts[node.mdns_name + ".local"][
                    "version"], "host"):
                self.assertIn(word, row[0].split(), out)

    def test_upload_by_mdns_name(self):
        living = self.node("livingroom", "--no-password")
        kitchen = self.node("kitchen", "--no-password")
        garage = self.node("garage", "--no-password")
        img = make_image(self, seed=61)
        self.upload_by_name("livingroom", living, img)
        living.assert_runs(img, 2)
        self.assert_unchanged(kitchen)
        self.assert_unchanged(garage)
        # a name nobody answers: a clear network error, quickly
        rc, out, err = run_ota("upload", "--device", "nosuchnode.local", "--port", living.port,
                               img, netns=self.laptop, timeout=60)
        self.assertEqual(rc, 3, out + err)
        self.assertIn("nosuchnode.local", err)

    def test_node_file_with_a_mac_suffix(self):
        """name_add_mac_suffix: the YAML says 'bulb', the node answers bulb-xxxxxx.local:
        upload finds the one such node by mDNS, refuses to guess among several, and says
        what to do when none answers."""
        d = tempfile.mkdtemp(prefix="ota-suffix-")
        self.addCleanup(lambda: __import__("shutil").rmtree(d, True))
        bulb = self.node("bulb1", "--no-password", mdns_name="bulb-a1b2c3")
        path = os.path.join(d, "bulb.yaml")
        with open(path, "w") as f:
            f.write("esphome:\n  name: bulb\n  name_add_mac_suffix: true\nhost:\n"
                    "ota:\n  - platform: esphome\n    port: %d\n" % bulb.port)
        img = make_image(self, seed=62)
        rc, out, err = run_ota("upload", path, img, netns=self.laptop, timeout=120)
        self.assertEqual(rc, 0, out + err)
        self.assertIn("name_add_mac_suffix: the node is called bulb-xxxxxx", err)
        self.assertIn("found bulb-a1b2c3.local at %s" % bulb.address, err)
        bulb.assert_runs(img, 2)
        # a second bulb: the YAML cannot say which one is meant
        other = self.node("bulb2", "--no-password", mdns_name="bulb-d4e5f6", port=bulb.port)
        rc, out, err = run_ota("upload", path, img, netns=self.laptop, timeout=120)
        self.assertEqual(rc, 3, out + err)
        self.assertIn("error: 2 nodes answer to bulb-xxxxxx:", err)
        self.assertIn("bulb-a1b2c3.local", err)
        self.assertIn("bulb-d4e5f6.local", err)
        self.assertIn("--device HOST", err)
        self.assert_unchanged(other)
        # nobody named lamp-xxxxxx
        with open(path, "w") as f:
            f.write("esphome:\n  name: lamp\n  name_add_mac_suffix: true\nhost:\n"
                    "ota:\n  - platform: esphome\n")
        rc, out, err = run_ota("logs", path, netns=self.laptop, timeout=120)
        self.assertEqual(rc, 3, out + err)
        self.assertIn("sets name_add_mac_suffix: true, so the node's address is not known from "
                      "the file", err)
        self.assertIn("hint: pass --device HOST", err)


ZEROCONF_BROWSER = r"""
import json, sys, time
from zeroconf import ServiceBrowser, ServiceListener, Zeroconf
iface, want = sys.argv[1], json.loads(sys.argv[2])  # {type: [instance, ...]}
zc = Zeroconf(interfaces=[iface])
found = {t: set() for t in want}

class Listener(ServiceListener):
    def __init__(self, type_):
        self.type_ = type_
    def add_service(self, zc, type_, name):
        found[self.type_].add(name)
    def update_service(self, zc, type_, name):
        found[self.type_].add(name)
    def remove_service(self, zc, type_, name):
        pass

browsers = [ServiceBrowser(zc, t, Listener(t)) for t in want]
end = time.monotonic() + 15
while time.monotonic() < end and any(not set(want[t]) <= found[t] for t in want):
    time.sleep(0.1)
time.sleep(0.5)  # what should not be there has had its chance to show up
result = []
for t in want:
    for name in sorted(found[t]):
        info = zc.get_service_info(t, name, timeout=3000)
        if info is None:
            result.append({"type": t, "name": name, "info": None})
            continue
        props = {k.decode(): (None if v is None else v.decode())
                 for k, v in info.properties.items()}
        result.append({"type": t, "name": name, "info": {
            "server": info.server, "port": info.port,
            "addresses": info.parsed_addresses(), "txt": props}})
for b in browsers:
    b.cancel()
zc.close()
print(json.dumps(result))
"""


@needs_netlab
class StockBrowserTest(DiscoveryCase):
    def test_python_zeroconf_sees_the_services(self):
        missing = _zeroconf_missing()
        if missing:
            self.skipTest(missing)
        living = self.node("livingroom", "--arduino-port", "3300", "--arduino-password-file",
                           password_file(self, "VERYSECURE\n"))  # password: yes
        kitchen = self.node("kitchen", "--no-password", "--arduino-port", "3301")
        garage = self.node("garage", "--no-password")  # no ArduinoOTA
        living.arduino_port, kitchen.arduino_port = 3300, 3301
        ota_t = P.DISCOVERY_SERVICE_OTA + ".local."  # the types of include/ota/discovery.h
        ar_t = P.DISCOVERY_SERVICE_ARDUINO + ".local."
        want = {ota_t: ["%s.%s" % (n.mdns_name, ota_t) for n in (living, kitchen, garage)],
                ar_t: ["%s.%s" % (n.mdns_name, ar_t) for n in (living, kitchen)]}
        p = self.laptop.run([SYSTEM_PYTHON, "-c", ZEROCONF_BROWSER, self.laptop.ip,
                             json.dumps(want)], timeout=90)
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        try:
            result = json.loads(p.stdout.strip().splitlines()[-1])
        except (ValueError, IndexError) as e:
            self.fail("the browser printed no JSON (%s):\n%s%s" % (e, p.stdout, p.stderr))
        seen = {(r["type"], r["name"]): r["info"] for r in result}
        self.assertEqual(set(seen), {(t, n) for t in want for n in want[t]},
                         json.dumps(result, indent=1))
        versions = set()
        for node, auth in ((living, P.TXT_AUTH_SALTED), (kitchen, P.TXT_AUTH_NONE),
                           (garage, P.TXT_AUTH_NONE)):
            info = seen[(ota_t, "%s.%s" % (node.mdns_name, ota_t))]
            self.assertIsNotNone(info, "no SRV/TXT for %s" % node.mdns_name)
            self.assertEqual(info["server"], "%s.local." % node.mdns_name, info)
            self.assertEqual(info["port"], node.port, info)
            self.assertIn(node.address, info["addresses"], info)
            txt = info["txt"]
            self.assertEqual(txt.get(P.TXT_TXTVERS), P.TXT_TXTVERS_VALUE, info)
            self.assertEqual(txt.get(P.TXT_NAME), node.mdns_name, info)
            self.assertEqual(txt.get(P.TXT_PLATFORM), P.TXT_PLATFORM_HOST, info)
            self.assertEqual(txt.get(P.TXT_PROTOCOL), str(P.PROTOCOL_VERSION_2), info)
            self.assertTrue(txt.get(P.TXT_VERSION), info)
            versions.add(txt.get(P.TXT_VERSION))
            self.assertIn(auth, (txt.get(P.TXT_AUTH) or "").split(P.TXT_AUTH_SEPARATOR), info)
        self.assertEqual(len(versions), 1, versions)  # the same firmware everywhere
        for node, auth_upload in ((living, P.TXT_YES), (kitchen, P.TXT_NO)):
            info = seen[(ar_t, "%s.%s" % (node.mdns_name, ar_t))]
            self.assertIsNotNone(info, "no SRV/TXT for %s" % node.mdns_name)
            self.assertEqual(info["server"], "%s.local." % node.mdns_name, info)
            self.assertEqual(info["port"], node.arduino_port, info)
            self.assertIn(node.address, info["addresses"], info)
            txt = info["txt"]
            self.assertTrue(txt.get(P.TXT_BOARD), info)
            self.assertEqual(txt.get(P.TXT_TCP_CHECK), P.TXT_NO, info)
            self.assertEqual(txt.get(P.TXT_SSH_UPLOAD), P.TXT_NO, info)
            self.assertEqual(txt.get(P.TXT_AUTH_UPLOAD), auth_upload, info)


@needs_netlab
class NameConflictTest(DiscoveryCase):
    PORT = 3232  # both nodes on the same port: only the address tells them apart

    def start_together(self):
        """Two nodes named livingroom, started at the same moment (so that their
        probes cross)."""
        hosts = [self.lan.add_host(h) for h in ("nodea", "nodeb")]
        nodes, errors = [None, None], []
        go = threading.Barrier(2)

        def start(i):
            try:
                go.wait(10)
                nodes[i] = Node(self, "--heartbeat-ms", "200", "--no-password",
                                "--mdns-name", "livingroom", netns=hosts[i], port=self.PORT)
            except BaseException as e:  # noqa: B902 (tc.fail in a thread: re-raised below)
                errors.append(e)

        threads = [threading.Thread(target=start, args=(i,)) for i in range(2)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
        if errors:
            raise errors[0]
        return nodes

    def start_one_after_the_other(self):
        first = self.node("nodea", "--no-password", mdns_name="livingroom", port=self.PORT)
        second = self.node("nodeb", "--no-password", mdns_name="livingroom", port=self.PORT,
                           wait=False)
        return [first, second]

    def settle(self, nodes, timeout=30):
        """Wait until both announced distinct names; (keeper, renamed)."""
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            names = [announced(n) for n in nodes]
            if None not in names and names[0] != names[1]:
                break
            time.sleep(0.05)
        names = [announced(n) for n in nodes]
        self.assertEqual(sorted(n or "" for n in names), ["livingroom", "livingroom-2"],
                         "announced %s; logs:\n%s\n----\n%s"
                         % (names, nodes[0].log()[-3000:], nodes[1].log()[-3000:]))
        keeper, renamed = nodes if names[0] == "livingroom" else nodes[::-1]
        self.assertIn("-2.local", renamed.log())  # it said why it changed its name
        keeper.mdns_name, renamed.mdns_name = "livingroom", "livingroom-2"
        return keeper, renamed

    def check_both_work(self, keeper, renamed):
        found = self.discover_json()
        hosts = self.by_host(found)
        self.assertEqual(set(hosts), {"livingroom.local", "livingroom-2.local"},
                         json.dumps(found, indent=1))
        self.assert_entry(hosts["livingroom.local"], keeper)
        self.assert_entry(hosts["livingroom-2.local"], renamed)
        img1, img2 = make_image(self, seed=71), make_image(self, seed=72)
        self.upload_by_name("livingroom", keeper, img1)
        keeper.assert_runs(img1, 2)
        self.assert_unchanged(renamed)
        self.upload_by_name("livingroom-2", renamed, img2)
        renamed.assert_runs(img2, 2)
        keeper.assert_runs(img1, 2)

    def test_simultaneous_start(self):
        keeper, renamed = self.settle(self.start_together())
        self.check_both_work(keeper, renamed)

    def test_second_node_after_the_first_announced(self):
        first, second = self.start_one_after_the_other()
        keeper, renamed = self.settle([first, second])
        self.assertIs(keeper, first, "the name's owner gave it up:\n" + first.log()[-3000:])
        self.assertNotIn("-2.local", first.log())
        self.check_both_work(keeper, renamed)


# -- hostile datagrams ------------------------------------------------------------------

def _name(*labels):
    return b"".join(bytes([len(l)]) + l for l in labels) + b"\x00"


def _header(id_=0, flags=0, qd=0, an=0, ns=0, ar=0):
    return struct.pack("!6H", id_, flags, qd, an, ns, ar)


def hostile_datagrams(target=b"livingroom"):
    """Malformed mDNS datagrams: truncations, pointer loops, lying counts, oversized
    labels, oversized datagrams, random bytes (seeded) and mutations of valid queries.
    None of them is a valid answer that could take the node's name away."""
    local = _name(target, b"local")
    ptr = _name(b"_ota", b"_tcp", b"local")
    q_a = _header(qd=1) + local + struct.pack("!HH", 1, 1)
    q_ptr = _header(qd=1) + ptr + struct.pack("!HH", 12, 1)
    q_any = _header(qd=1) + local + struct.pack("!HH", 255, 0x8001)  # ANY, QU
    out = [b"", b"\x00", b"\x00" * 11, _header(qd=1), _header(qd=1) + b"\x05abc",
           _header(qd=1) + local[:-1], _header(qd=1) + local + b"\x00",
           q_a[:-1], q_ptr[:-3]]
    # compression pointers: to itself, to each other, forward past the end, into the
    # header, a long chain, and a pointer at the very end
    out += [_header(qd=1) + b"\xc0\x0c" + struct.pack("!HH", 1, 1),
            _header(qd=2) + b"\xc0\x12" + struct.pack("!HH", 1, 1) + b"\xc0\x0c"
            + struct.pack("!HH", 1, 1),
            _header(qd=1) + b"\x01a\xc0\x0c" + struct.pack("!HH", 1, 1),
            _header(qd=1) + b"\xc0\xff" + struct.pack("!HH", 1, 1),
            _header(qd=1) + b"\xff\xff" + struct.pack("!HH", 1, 1),
            _header(qd=1) + b"\xc0\x00" + struct.pack("!HH", 1, 1),
            _header(qd=1) + b"\xc0",
            _header(qd=1) + b"\x01a\xc0"]
    # a chain of 300 names, each one label and a pointer to the one before, ending in
    # our name; the question points at the last one
    chain = bytearray(local)
    prev = 18  # where the chain starts: after the header and the question
    for _ in range(300):
        at = 18 + len(chain)
        chain += b"\x01x" + struct.pack("!H", 0xC000 | prev)
        prev = at
    out.append(_header(qd=1) + struct.pack("!HHH", 0xC000 | prev, 1, 1) + bytes(chain))
    loop = _header(qd=1) + b"\x01a\xc0\x0e" + struct.pack("!HH", 1, 1)  # a -> a -> ...
    out.append(loop)
    # reserved label types (0x40, 0x80), a label longer than the packet, a name past
    # 255 bytes, an empty label in the middle
    out += [_header(qd=1) + b"\x41abc" + b"\x00" + struct.pack("!HH", 1, 1),
            _header(qd=1) + b"\x81abc" + b"\x00" + struct.pack("!HH", 1, 1),
            _header(qd=1) + b"\x3f" + b"a" * 10,
            _header(qd=1) + b"\x3f" + b"a" * 62,
            _header(qd=1) + _name(*[b"b" * 63] * 6) + struct.pack("!HH", 1, 1),
            _header(qd=1) + _name(*[b"c"] * 200) + struct.pack("!HH", 1, 1),
            _header(qd=1) + b"\x01a\x00\x01b\x00" + struct.pack("!HH", 1, 1)]
    # lying counts, as queries, responses and probes
    for flags in (0, 0x8400):
        out += [_header(flags=flags, qd=0xFFFF, an=0xFFFF, ns=0xFFFF, ar=0xFFFF),
                _header(flags=flags, an=0xFFFF),
                _header(flags=flags, ar=0xFFFF) + b"\x00" * 5,
                _header(flags=flags, qd=1000) + q_a[12:],
                _header(flags=flags, qd=1, an=1000) + q_a[12:]]
    # a record of our own name whose rdata runs past the end, or claims 65535 bytes, and
    # a probe whose authority record is cut: each time the first record is the bad one
    rr = local + struct.pack("!HHIH", 1, 0x8001, 120, 4)
    out += [_header(flags=0x8400, an=1) + rr + b"\x0a\x00",
            _header(flags=0x8400, an=1) + local + struct.pack("!HHIH", 1, 1, 120, 0xFFFF)
            + b"\x0a\x00\x00\x63",
            _header(flags=0x8400, an=1) + local + struct.pack("!HHIH", 33, 1, 120, 3) + b"\x00" * 3,
            _header(flags=0x8400, an=1) + local + struct.pack("!HHIH", 16, 1, 4500, 9) + b"\x20abc",
            _header(qd=1, ns=1) + q_a[12:] + b"\xc0\x0c" + struct.pack("!HHIH", 1, 1, 120, 4)
            + b"\x0a",
            _header(qd=1, ns=2) + q_a[12:] + b"\xc0\x0c" + struct.pack("!HHI", 1, 1, 120)]
    # 1000 questions: claimed with 10 present, and all present (pointers to the first)
    qs = b"".join(b"\xc0\x0c" + struct.pack("!HH", 1, 1) for _ in range(999))
    out += [_header(qd=1000) + q_a[12:] + qs[:60], _header(qd=1000) + q_a[12:] + qs,
            _header(qd=1000) + q_ptr[12:] + qs]
    # oversized: 9000 bytes of questions, 9000 zero bytes, 9000 random bytes
    rng = random.Random(6762)
    big = _header(qd=1500) + q_a[12:] + b"".join(
        b"\xc0\x0c" + struct.pack("!HH", rng.choice((1, 28, 255, 12, 33, 16)), 1)
        for _ in range(1499))
    out += [big[:9000], b"\x00" * 9000, bytes(rng.getrandbits(8) for _ in range(9000))]
    # random bytes, and random bytes behind a plausible header
    for _ in range(200):
        out.append(bytes(rng.getrandbits(8) for _ in range(rng.randrange(0, 600))))
    for _ in range(100):
        hdr = _header(rng.getrandbits(16), rng.choice((0, 0x8400)), rng.randrange(4),
                      rng.randrange(4), rng.randrange(3), rng.randrange(3))
        out.append(hdr + bytes(rng.getrandbits(8) for _ in range(rng.randrange(0, 300))))
    # mutations of valid queries (kept queries without an authority section: nothing
    # that could be a real claim on the node's name)
    for _ in range(300):
        b = bytearray(rng.choice((q_a, q_ptr, q_any)))
        for _ in range(rng.randrange(1, 5)):
            i = rng.randrange(len(b))
            b[i] = rng.getrandbits(8)
        if rng.random() < 0.3:
            b = b[:rng.randrange(len(b))]
        if len(b) >= 12:
            b[2] &= 0x7F          # QR = 0: a query
            b[8:10] = b"\x00\x00"  # no authority records
        out.append(bytes(b))
    return out


HOSTILE_SENDER = r"""
import socket, struct, sys, time
path, local4, node4, ifindex, node6, name = sys.argv[1:7]
with open(path, "rb") as f:
    data = f.read()
packets, i = [], 0
while i < len(data):
    n = struct.unpack("!I", data[i:i + 4])[0]
    packets.append(data[i + 4:i + 4 + n])
    i += 4 + n
socks = []
for port in (5353, 0):  # from the mDNS port (a peer responder) and as a legacy resolver
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind(("0.0.0.0", port))
    s.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_IF, socket.inet_aton(local4))
    s.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_TTL, 255)
    socks.append((s, [("224.0.0.251", 5353), (node4, 5353)]))
    s = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
    s.bind(("::", port))
    s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_MULTICAST_IF, int(ifindex))
    socks.append((s, [("ff02::fb", 5353, 0, int(ifindex)), (node6, 5353, 0, int(ifindex))]))
sent = errors = 0
for k, p in enumerate(packets):
    for s, dests in socks:
        for d in dests:
            try:
                s.sendto(p, d)
                sent += 1
            except OSError:
                errors += 1
    if k % 20 == 19:
        time.sleep(0.02)  # do not just overflow the node's socket buffer
# what came back (unicast answers: to the legacy queries, and to QU questions)
replies = 0
for s, _ in socks:
    s.setblocking(False)
    try:
        while True:
            s.recv(9000)
            replies += 1
    except OSError:
        pass
# and a last, well-formed legacy query for the node's name: answered at once?
q = struct.pack("!6H", 0x4242, 0, 1, 0, 0, 0) + b"".join(
    bytes([len(l)]) + l.encode() for l in (name, "local")) + b"\0" + struct.pack("!HH", 1, 1)
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.settimeout(0.5)
answered = False
for _ in range(6):
    s.sendto(q, (node4, 5353))
    try:
        while not answered:
            answered = s.recv(9000)[:2] == b"\x42\x42"
    except socket.timeout:
        pass
    if answered:
        break
print("sent %d errors %d replies %d answered %s" % (sent, errors, replies, answered))
"""


@needs_netlab
class HostileTest(DiscoveryCase):
    def test_malformed_datagrams_never_hurt(self):
        node = self.node("livingroom", "--no-password")
        node.wait_for(lambda: len(node.heartbeats()) >= 2, 10, "heartbeats")
        pid = node.firmware_pid()
        watch = HeartbeatWatch(node)
        packets = hostile_datagrams()
        d = tempfile.mkdtemp(prefix="ota-mdns-hostile-")
        self.addCleanup(__import__("shutil").rmtree, d, True)
        path = os.path.join(d, "packets.bin")
        with open(path, "wb") as f:
            for p in packets:
                f.write(struct.pack("!I", len(p)) + p)
        t0 = watch.mark()
        before = node.heartbeats()[-1][0]
        p = self.laptop.run([sys.executable, "-c", HOSTILE_SENDER, path, self.laptop.ip,
                             node.address, self.laptop.ifindex, node.netns.ip6,
                             node.mdns_name], timeout=120)
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        m = re.search(r"sent (\d+) errors (\d+) replies (\d+) answered (\w+)", p.stdout)
        self.assertIsNotNone(m, p.stdout + p.stderr)
        self.assertEqual((int(m.group(1)), int(m.group(2))), (len(packets) * 8, 0), p.stdout)
        # the datagrams did reach the node: it answered the queries among them that were
        # well-formed, and a last one right after the barrage
        self.assertGreater(int(m.group(3)), 0, p.stdout)
        self.assertEqual(m.group(4), "True", p.stdout)
        time.sleep(1.5)
        self.assertIsNone(node.proc.poll(), node.log()[-3000:])
        self.assertEqual(node.firmware_pid(), pid, "the firmware restarted:\n"
                         + node.log()[-3000:])
        self.assertGreaterEqual(node.heartbeats()[-1][0] - before, 5, node.log()[-3000:])
        self.assertLess(max(watch.gaps_since(t0)), 3.0, "the node's loop stalled")
        self.assertEqual(node.count(r"\[I\]\[ota\] boot attempt"), 1)
        self.assertEqual(announced(node), "livingroom", node.log()[-3000:])
        found = self.discover_json()
        self.assertEqual([d["host"] for d in found], ["livingroom.local"], found)
        self.assert_entry(found[0], node)


# -- off the link (RFC 6762 11) ------------------------------------------------------------

SPOOF_SENDER = r"""
import socket, sys, time
src, sport, ttl = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
dests, pkt = sys.argv[4].split(","), bytes.fromhex(sys.argv[5])
count, gap = int(sys.argv[6]), float(sys.argv[7])
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind((src, sport))  # the source address, whatever subnet it is on
s.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_IF, socket.inet_aton(src))
s.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_TTL, ttl)
s.setsockopt(socket.IPPROTO_IP, socket.IP_TTL, ttl)
replies = 0
for _ in range(count):
    for d in dests:
        s.sendto(pkt, (d, 5353))
    end = time.monotonic() + gap
    while True:
        left = end - time.monotonic()
        if left <= 0:
            break
        s.settimeout(left)
        try:
            data = s.recv(9000)
        except socket.timeout:
            break
        if len(data) >= 12 and data[:2] == pkt[:2] and data[2] & 0x80:
            replies += 1  # an answer to our query (same id, QR)
print("sent %d replies %d" % (count * len(dests), replies), flush=True)
"""


@needs_netlab
class OffLinkTest(DiscoveryCase):
    OFF_SUBNET = "172.31.77.5"  # the attacker's second address: not the node's subnet

    def spoof(self, host, src, ttl, dests, packet, count, gap=0.1, sport=5353):
        p = host.run([sys.executable, "-c", SPOOF_SENDER, src, sport, ttl, ",".join(dests),
                      packet.hex(), count, gap], timeout=60)
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        m = re.search(r"sent (\d+) replies (\d+)", p.stdout)
        self.assertIsNotNone(m, p.stdout + p.stderr)
        return int(m.group(2))

    def test_spoofed_conflicts_from_off_the_link_keep_the_name(self):
        node = self.node("victim", "--no-password")
        attacker = self.lan.add_host("attacker")
        # a second subnet on the same wire: reaches the node's interface, but from an
        # address that is on none of its subnets
        attacker.ip_cmd("addr", "add", self.OFF_SUBNET + "/24", "dev", "eth0")
        fake = socket.inet_aton("10.0.0.66")
        claim = (_header(flags=0x8400, an=1) + _name(b"victim", b"local")
                 + struct.pack("!HHIH", 1, 0x8001, 120, 4) + fake)
        query = (_header(id_=0x5151, qd=1) + _name(b"victim", b"local")
                 + struct.pack("!HH", 1, 1))
        both = ["224.0.0.251", node.address]
        # the conflict of issue 12: TTL 255, from another subnet, multicast and unicast
        self.spoof(attacker, self.OFF_SUBNET, 255, both, claim, 12)
        # from the node's subnet, but with the TTL of a packet a router forwarded
        self.spoof(attacker, attacker.ip, 64, both, claim, 12)
        # a legacy unicast query from off the link gets no (larger) reply
        self.assertEqual(self.spoof(attacker, self.OFF_SUBNET, 255, [node.address], query, 3,
                                    gap=0.3, sport=0), 0)
        # while the same query from the link, TTL 64 as a stub resolver sends it, does
        self.assertGreater(self.spoof(attacker, attacker.ip, 64, [node.address], query, 3,
                                      gap=0.3, sport=0), 0)
        time.sleep(1.0)  # a re-probe or rename would have happened by now
        log = node.log()
        self.assertEqual(announced(node), "victim", log[-3000:])
        # the datagrams did arrive, and were turned away (one debug line per reason in
        # 10 s: the off-link query falls under the first one)
        for line in ("[D][mdns] ignored a response from %s: not on the link" % self.OFF_SUBNET,
                     "[D][mdns] ignored a response from %s: TTL 64, not 255" % attacker.ip):
            self.assertIn(line, log)
        for word in ("taken by another host", "probing the name again", "victim-2",
                     "cannot send to " + self.OFF_SUBNET):
            self.assertNotIn(word, log)
        found = self.discover_json()  # victim.local still answers, from the node
        self.assertEqual([d["host"] for d in found], ["victim.local"], found)
        self.assert_entry(found[0], node)

        # the same conflict from the link (its own address, TTL 255): a real one, and
        # the node gives the name up as before
        self.spoof(attacker, attacker.ip, 255, both, claim, 25)
        wait_announced(node, "victim-2", timeout=10)
        self.assertIn("victim.local is taken by another host: trying victim-2.local",
                      node.log())


if __name__ == "__main__":
    unittest.main()
