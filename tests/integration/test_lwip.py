"""lwip-node, the firmware on the lwIP port, over a real Ethernet frame path: a network
namespace with a TAP device (the kernel's end at 10.77.0.1/24), the node's lwIP on the
other end at 10.77.0.2, and the host tools run inside the namespace. Uploads over the
native protocol (`ota upload`, the stock-style raw client) and ArduinoOTA (espota-style
client, `ota upload --protocol arduino`), `ota discover` by mDNS, the log viewer
stream, and the heartbeat ticking through an upload while the flash erases slowly.

The node runs under `lwip-boot run` when build/bin/lwip-boot exists (the emulated
device: flash file, eboot-style copy, restart on exit 42), else directly with a small
restart loop here (OTA_LWIP_DIRECT=1 forces that). Skipped with the reason when the
namespace or the TAP device cannot be made (not root, no /dev/net/tun) or when the
lwIP port was not built (no liblwip-dev)."""
import atexit
import contextlib
import ctypes
import hashlib
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import espota_client  # noqa: E402
import netlab  # noqa: E402
import nodelib  # noqa: E402
from nodelib import OTA, RawClient, HeartbeatWatch  # noqa: E402
import protocol_consts as P  # noqa: E402

LWIP_NODE = os.path.join(nodelib.BIN, "lwip-node")
LWIP_BOOT = os.path.join(nodelib.BIN, "lwip-boot")
HOST_IP = "10.77.0.1"
NODE_IP = "10.77.0.2"
TAP = "otatap0"
PORT = 8266       # ESP8266's OTA port (examples/lwip-node/node.yaml), also ArduinoOTA's
LOG_PORT = 8267
PASSWORD = "VERYSECURE"  # node.yaml's, compiled in as its verifier and ArduinoOTA hash
FLASH_SIZE = 4 * 1024 * 1024
CLONE_NEWNET = 0x40000000


def use_lwip_boot():
    return os.path.exists(LWIP_BOOT) and not os.environ.get("OTA_LWIP_DIRECT")


class Lab:
    """One namespace with the TAP device; named like netlab's, so that a crashed run's
    namespace is swept by the next one. close() is idempotent and runs at exit too."""

    def __init__(self):
        netlab.sweep_stale()
        self.ns = "%s-%d-lwip" % (netlab.PREFIX, os.getpid())
        self.closed = False
        atexit.register(self.close)
        netlab._run([netlab.IP, "netns", "add", self.ns])
        try:
            self.ip("link", "set", "lo", "up")
            self.ip("tuntap", "add", "dev", TAP, "mode", "tap")
            self.ip("addr", "add", HOST_IP + "/24", "dev", TAP)
            self.ip("link", "set", TAP, "up")
        except Exception:
            self.close()
            raise
        self.prefix = [netlab.IP, "netns", "exec", self.ns]

    def ip(self, *args):
        return netlab._run([netlab.IP, "-n", self.ns] + list(args))

    def close(self):
        if self.closed:
            return
        self.closed = True
        netlab._kill_netns_pids(self.ns)
        netlab._run([netlab.IP, "netns", "del", self.ns], check=False)


def lab_available():
    """(ok, reason): root, netns, and a TAP device inside one."""
    if not os.path.exists(LWIP_NODE):
        return False, "lwip-node not built (the lwIP port needs liblwip-dev)"
    ok, why = netlab.available()
    if not ok:
        return False, why
    if not os.path.exists("/dev/net/tun"):
        return False, "no /dev/net/tun (TAP devices unavailable)"
    try:
        Lab().close()
    except (RuntimeError, OSError, subprocess.TimeoutExpired) as e:
        return False, "cannot create a TAP device in a namespace: %s" % str(e).strip()
    return True, ""


_libc = ctypes.CDLL(None, use_errno=True)


@contextlib.contextmanager
def in_netns(ns):
    """Run this thread inside namespace ns (sockets made here stay in it)."""
    with open("/proc/self/ns/net") as home, open("/run/netns/" + ns) as target:
        if _libc.setns(target.fileno(), CLONE_NEWNET) != 0:
            raise OSError(ctypes.get_errno(), "setns")
        try:
            yield
        finally:
            _libc.setns(home.fileno(), CLONE_NEWNET)


def make_lwip_image(tc, seed, extra=20000):
    """A new firmware: lwip-node stripped (ESP8266-sized: two must fit the 4 MiB
    layout) with bytes appended, so it runs like the original with another sha256."""
    d = tempfile.mkdtemp(prefix="ota-lwip-img-")
    tc.addCleanup(shutil.rmtree, d, True)
    path = os.path.join(d, "lwip-node-%d.bin" % seed)
    subprocess.run(["objcopy", "--strip-all", LWIP_NODE, path], check=True)
    with open(path, "ab") as f:
        f.write(hashlib.shake_256(b"lwip%d" % seed).digest(extra + seed))
    os.chmod(path, 0o755)
    return path


class LwipNode:
    """lwip-node on the lab's TAP at NODE_IP, its flash a fresh 4 MiB file. Under
    lwip-boot when it exists; else run directly, restarted here on exit 42 (what the
    boot stage does; the stub flash copies the update at open)."""

    def __init__(self, tc, lab, *flags, layout="esp8266-4m", boot_flags=()):
        self.tc = tc
        self.lab = lab
        self.flags = list(flags)
        self.dir = tempfile.mkdtemp(prefix="ota-lwip-")
        self.flash = os.path.join(self.dir, "flash.bin")
        with open(self.flash, "wb") as f:
            f.write(b"\xff" * (FLASH_SIZE if layout == "esp8266-4m" else 1024 * 1024))
        self.log_path = os.path.join(self.dir, "node.log")
        self.log_file = open(self.log_path, "ab")
        self.proc = None
        self.exits = []
        self._stopping = False
        self._lock = threading.Lock()
        tc.addCleanup(self.cleanup)
        self.boot = use_lwip_boot()
        if self.boot:
            self.image = make_lwip_image(tc, 0)
            p = subprocess.run([LWIP_BOOT, "flash", "--flash", self.flash, "--layout",
                                layout, self.image], capture_output=True, text=True)
            if p.returncode != 0:
                tc.fail("lwip-boot flash failed (exit %d): %s%s"
                        % (p.returncode, p.stdout, p.stderr))
        args = ["--ip", NODE_IP + "/24"] + self.flags
        if self.boot:
            self.cmd = lab.prefix + [LWIP_BOOT, "run", "--flash", self.flash, "--tap", TAP] + \
                list(boot_flags) + ["--"] + args
        else:
            self.cmd = lab.prefix + [LWIP_NODE, "--flash", self.flash, "--tap", TAP] + args
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        nodelib.forget_port(PORT)  # a new node: what an earlier one proved is void
        self.wait_listening(1)

    def _run(self):
        while True:
            with self._lock:
                if self._stopping:
                    return
                self.proc = subprocess.Popen(self.cmd, stdout=self.log_file,
                                             stderr=subprocess.STDOUT,
                                             stdin=subprocess.DEVNULL, start_new_session=True)
            rc = self.proc.wait()
            self.exits.append(rc)
            if self.boot or rc != 42 or self._stopping:
                return

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
            if not self._thread.is_alive():
                break
            time.sleep(0.05)
        if predicate():
            return
        self.tc.fail("%s waiting for %s; exits %r; node log:\n%s"
                     % ("node stopped" if not self._thread.is_alive() else "timed out",
                        what, self.exits, self.log()[-6000:]))

    def wait_listening(self, n, timeout=30):
        self.wait_for(lambda: self.count(r"\[I\]\[ota\] listening on") >= n, timeout,
                      "listening line #%d" % n)

    def status(self):
        p = subprocess.run([LWIP_BOOT, "status", "--flash", self.flash], capture_output=True,
                           text=True, timeout=30)
        self.tc.assertEqual(p.returncode, 0, p.stderr)
        return json.loads(p.stdout)

    def booted_shas(self):
        return re.findall(r"\[I\]\[demo\] booted slot=a image sha256=([0-9a-f]{64})",
                          self.log())

    def assert_booted(self, image, boots):
        """The node came back (boot #boots) running image from its flash."""
        self.wait_listening(boots, timeout=60)
        want = nodelib.sha256_file(image)
        self.tc.assertEqual(self.booted_shas()[boots - 1], want, self.log()[-3000:])

    def ota(self, *args, timeout=180):
        return nodelib.run_ota(*args, timeout=timeout, netns=self.lab.ns)

    def stop(self):
        with self._lock:
            self._stopping = True
            p = self.proc
        if p is not None and p.poll() is None:
            try:
                os.killpg(p.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
            try:
                p.wait(10)
            except subprocess.TimeoutExpired:
                os.killpg(p.pid, signal.SIGKILL)
                p.wait(10)
        self._thread.join(15)

    def cleanup(self):
        self.stop()
        self.log_file.close()
        shutil.rmtree(self.dir, ignore_errors=True)


_lab = None
_skip_reason = None


def setUpModule():
    global _lab, _skip_reason
    ok, why = lab_available()
    if not ok:
        _skip_reason = why
        return
    _lab = Lab()


def tearDownModule():
    if _lab is not None:
        _lab.close()


class LwipTest(unittest.TestCase):
    def setUp(self):
        if _lab is None:
            self.skipTest(_skip_reason or "no lab")
        self.lab = _lab

    # -- native protocol ------------------------------------------------------------
    def test_ota_upload_native_salted_then_again(self):
        node = LwipNode(self, self.lab)  # node.yaml's password, as its salted verifier
        self.assertIn("lwIP 2.1", node.log())
        img = make_lwip_image(self, 1)
        rc, out, err = node.ota("upload", "--device", NODE_IP, "--port", PORT,
                                "--password", PASSWORD, img)
        self.assertEqual(rc, 0, out + err + node.log()[-3000:])
        self.assertIn("OK: %d bytes uploaded" % os.path.getsize(img), out)
        node.assert_booted(img, 2)
        img2 = make_lwip_image(self, 2)
        rc, out, err = node.ota("upload", "--device", NODE_IP, "--port", PORT,
                                "--password", PASSWORD, img2)
        self.assertEqual(rc, 0, out + err)
        node.assert_booted(img2, 3)

    def test_wrong_password_keeps_the_image(self):
        node = LwipNode(self, self.lab)
        before = node.booted_shas()[0]
        img = make_lwip_image(self, 3)
        rc, out, err = node.ota("upload", "--device", NODE_IP, "--port", PORT,
                                "--password", "not it", "--timeout", "20", img)
        self.assertEqual(rc, 4, out + err)
        time.sleep(0.5)
        self.assertEqual(node.booted_shas(), [before])
        self.assertEqual(node.exits, [])  # still running the same boot

    def test_stock_style_client_legacy_sha256(self):
        """The native protocol byte by byte as ESPHome's espota2 speaks it, with the
        legacy SHA-256 challenge of a plain password."""
        node = LwipNode(self, self.lab, "--password", "stock pw")
        img = make_lwip_image(self, 4)
        payload = nodelib.read_bytes(img)
        with in_netns(self.lab.ns):
            c = RawClient(PORT, host=NODE_IP)
        self.addCleanup(c.close)
        version, answer = c.hello(P.FEATURE_SHA256_AUTH)  # no compression on this port
        self.assertEqual(version, P.PROTOCOL_VERSION_2)
        self.assertNotEqual(answer, P.wire(P.RESP_SUPPORTS_COMPRESSION))
        self.assertEqual(c.byte(), P.RESP_REQUEST_AUTH_SHA256)
        self.assertEqual(c.auth_legacy(P.RESP_REQUEST_AUTH_SHA256, "stock pw"), P.RESP_AUTH_OK)
        self.assertEqual(c.prepare(payload), (P.RESP_UPDATE_PREPARE_OK, P.RESP_BIN_MD5_OK))
        for off in range(0, len(payload), P.CHUNK_SIZE):  # stop-and-wait, as stock uploaders do
            c.send(payload[off:off + P.CHUNK_SIZE])
            self.assertEqual(c.byte(), P.RESP_CHUNK_OK)
        self.assertEqual(c.read(2), P.wire(P.RESP_RECEIVE_OK, P.RESP_UPDATE_END_OK))
        c.send(P.wire(P.RESP_OK))
        node.assert_booted(img, 2)

    # -- ArduinoOTA -----------------------------------------------------------------
    def test_espota_style_client_sha256(self):
        node = LwipNode(self, self.lab)  # ArduinoOTA on UDP 8266, node.yaml's hash
        img = make_lwip_image(self, 5)
        with in_netns(self.lab.ns):
            result, detail = espota_client.upload(PORT, nodelib.read_bytes(img),
                                                  password=PASSWORD, device=NODE_IP,
                                                  local=HOST_IP, timeout=30)
        self.assertEqual(result, "OK", detail + node.log()[-3000:])
        node.assert_booted(img, 2)

    def test_ota_upload_arduino_protocol(self):
        node = LwipNode(self, self.lab)
        img = make_lwip_image(self, 6)
        rc, out, err = node.ota("upload", "--device", NODE_IP, "--port", PORT, "--protocol",
                                "arduino", "--password", PASSWORD, img)
        self.assertEqual(rc, 0, out + err + node.log()[-3000:])
        self.assertIn("over ArduinoOTA", out)
        node.assert_booted(img, 2)

    # -- discovery, logs ------------------------------------------------------------
    def test_ota_discover_finds_it_by_mdns(self):
        node = LwipNode(self, self.lab)
        node.wait_for(lambda: "announcing lwip-node.local" in node.log(), 15, "announcement")
        rc, out, err = node.ota("discover", "--timeout", "3", "--json")
        self.assertEqual(rc, 0, out + err)
        found = json.loads(out)
        nodes = found if isinstance(found, list) else found.get("nodes", [])
        mine = [n for n in nodes if n.get("name") == "lwip-node"]
        self.assertEqual(len(mine), 1, out)
        self.assertEqual(mine[0].get("port"), PORT, out)
        self.assertIn(NODE_IP, json.dumps(mine[0]), out)
        self.assertIn("esp8266", json.dumps(mine[0]), out)

    def test_log_viewer_gets_hello_and_heartbeats(self):
        node = LwipNode(self, self.lab, "--no-password", "--heartbeat-ms", "100")
        with in_netns(self.lab.ns):
            s = socket.create_connection((NODE_IP, LOG_PORT), timeout=10)
        self.addCleanup(s.close)
        f = s.makefile("r")
        hello = f.readline()
        self.assertTrue(hello.startswith("# ota-log node=lwip-node slot=a safe_mode=0"), hello)
        for _ in range(50):
            line = f.readline()
            if "heartbeat tick=" in line:
                break
        else:
            self.fail("no heartbeat line over the log stream")
        self.assertTrue(line.startswith("[I][demo] heartbeat"), line)
        self.assertTrue(node.count(r"\[I\]\[demo\] heartbeat") >= 1)

    # -- slow flash -----------------------------------------------------------------
    def test_1m_layout_refuses_what_does_not_fit_beside_the_running_image(self):
        """ESP8266 users meet it on 1 MB modules: the new image must fit between the
        running one and the filesystem. The node says so (0x88) before it writes a
        byte and keeps running; a 4 MB module takes the same image."""
        if not use_lwip_boot():
            self.skipTest("needs lwip-boot (the 1 MB layout is the flash side's)")
        node = LwipNode(self, self.lab, "--no-password", layout="esp8266-1m")
        big = make_lwip_image(self, 7, extra=300000)
        rc, out, err = node.ota("upload", "--device", NODE_IP, "--port", str(PORT), big)
        self.assertEqual(rc, 5, out + err)
        self.assertIn("the ESP8266 has no room for the new image beside the running one", err)
        self.assertIn("device code 0x88, during preparation", err)
        time.sleep(0.5)
        self.assertEqual(node.count(r"listening on"), 1)  # no reboot, the old image runs
        hb = node.count(r"heartbeat tick=")
        node.wait_for(lambda: node.count(r"heartbeat tick=") > hb, 10, "a heartbeat after it")
        node.stop()
        # the same image on a 4 MB module: room enough, taken and booted
        node4 = LwipNode(self, self.lab, "--no-password", layout="esp8266-4m")
        rc, out, err = node4.ota("upload", "--device", NODE_IP, "--port", str(PORT), big)
        self.assertEqual(rc, 0, out + err)
        node4.assert_booted(big, 2)

    def test_boot_loop_ends_in_safe_mode_and_a_fix_is_taken(self):
        """As on demo-node: a firmware that crashes at every boot is started in safe
        mode after --safe-mode-attempts boots (lwip-boot restarts it like a watchdog
        reset); there only network and OTA run, and an uploaded image brings it back."""
        if not use_lwip_boot():
            self.skipTest("needs lwip-boot (it restarts the crashed firmware)")
        crash = os.path.join(tempfile.mkdtemp(prefix="ota-lwip-crash-"), "crash")
        self.addCleanup(shutil.rmtree, os.path.dirname(crash), True)
        open(crash, "w").close()
        node = LwipNode(self, self.lab, "--no-password", "--safe-mode-attempts", "3",
                        "--crash-if-exists", crash,
                        boot_flags=["--restart-on-crash", "--restart-delay-ms", "100"])
        node.wait_for(lambda: "SAFE MODE" in node.log(), 60, "the safe-mode boot")
        st = node.status()
        self.assertTrue(st["safe_mode"], st)
        self.assertEqual(node.count(r"heartbeat tick="), 0)  # the demo component is off
        os.unlink(crash)  # the fix
        fixed = make_lwip_image(self, 9)
        boots = node.count(r"listening on")
        rc, out, err = node.ota("upload", "--device", NODE_IP, "--port", str(PORT), fixed)
        self.assertEqual(rc, 0, out + err)
        node.assert_booted(fixed, boots + 1)
        node.wait_for(lambda: node.count(r"heartbeat tick=") >= 1, 20, "the heartbeat again")
        self.assertFalse(node.status()["safe_mode"])

    def test_upload_with_slow_erases_heartbeat_keeps_ticking(self):
        """An ESP8266 erases a sector in tens of milliseconds: with 30 ms per sector the
        upload still completes and the main loop never stalls; TCP's window (tcp_recved
        only for what the core took) holds the uploader back meanwhile. The port's hold
        on lwIP's pbufs is logged (--stats-ms) and printed for docs/lwip-port.md."""
        node = LwipNode(self, self.lab, "--erase-ms", "30", "--heartbeat-ms", "100",
                        "--stats-ms", "200")
        watch = HeartbeatWatch(node)
        img = make_lwip_image(self, 7)
        t0 = watch.mark()
        rc, out, err = node.ota("upload", "--device", NODE_IP, "--port", PORT,
                                "--password", PASSWORD, img)
        t1 = watch.mark()
        self.assertEqual(rc, 0, out + err + node.log()[-3000:])
        gaps = watch.gaps_since(t0, t1)
        self.assertGreater(t1 - t0, 100 * 0.030 * 0.9)  # the erases really took their time
        self.assertLess(max(gaps), 1.0, "heartbeat gaps %r" % gaps)
        node.wait_for(lambda: 42 in node.exits or node.count(r"listening on") >= 2, 30,
                      "the reboot")
        stats = re.findall(r"mem rx_pbufs=\d+ max=(\d+) rx_bytes=\d+ max=(\d+) "
                           r"snd_queue=\d+ max=(\d+) conns=\d+ max=(\d+)", node.log())
        self.assertTrue(stats, node.log()[-2000:])
        # the maxima of the boot that took the upload (the next boot's start at 0)
        pbufs, rx_bytes, sndq, conns = (max(int(row[i]) for row in stats) for i in range(4))
        # flow control: never more unread than one TCP window (TCP_WND 0xFFFF)
        self.assertGreater(rx_bytes, 0)
        self.assertLessEqual(rx_bytes, 0xFFFF)
        print("\nlwIP use during a %d-byte upload with 30 ms erases: up to %d pbufs / %d "
              "bytes queued for the core, %d pbufs in the send queue, %d connection "
              "slots; %.1f s, %d heartbeat gaps, longest %.3f s"
              % (os.path.getsize(img), pbufs, rx_bytes, sndq, conns, t1 - t0, len(gaps),
                 max(gaps)), file=sys.stderr)
        node.assert_booted(img, 2)


if __name__ == "__main__":
    unittest.main()
