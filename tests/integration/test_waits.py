"""What the ota tool says while it waits and when it is interrupted, and the habits it
shares with ESPHome's CLI: the silent node (greeting, verification) is explained after a
few seconds; Ctrl-C says what state the node is in; a refusal right after an update is
the reboot; `upload/run NODE.yaml` without a firmware takes ESPHome's build; run takes
upload's options; a node that answers with another name is flagged."""
import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from nodelib import (DEMO_NODE, MAGIC, OTA, OTA_BOOT, Node, free_port, make_image,  # noqa: E402
                     read_exact, run_ota)
import protocol_consts as P  # noqa: E402


class QuietDevice:
    """A TCP peer that goes silent at a chosen point of the native protocol:
    'greeting' (accepts, never answers the magic), 'verify' (takes the whole image,
    never says RECEIVE_OK) or 'data' (takes a little of the image, then stops
    reading). Speaks version 1 without a password, as a stock device may."""

    def __init__(self, tc, stall):
        self.srv = socket.socket()
        self.srv.bind(("127.0.0.1", 0))
        self.srv.listen(1)
        tc.addCleanup(self.srv.close)
        self.port = self.srv.getsockname()[1]
        self.stall = stall
        self.reached = threading.Event()  # the stall point
        self.release = threading.Event()
        tc.addCleanup(self.release.set)
        threading.Thread(target=self.serve, daemon=True).start()

    def serve(self):
        try:
            c, _ = self.srv.accept()
        except OSError:
            return
        with c:
            c.settimeout(60)
            try:
                if self.stall == "greeting":
                    self.reached.set()
                    self.release.wait(60)
                    return
                assert read_exact(c, P.MAGIC_LEN) == MAGIC
                c.sendall(P.wire(P.RESP_OK, P.PROTOCOL_VERSION_1))
                read_exact(c, 1)  # features
                c.sendall(P.wire(P.RESP_HEADER_OK))
                c.sendall(P.wire(P.RESP_AUTH_OK))
                size = int.from_bytes(read_exact(c, 4), "big")
                c.sendall(P.wire(P.RESP_UPDATE_PREPARE_OK))
                read_exact(c, P.MD5_HEX_LEN)
                c.sendall(P.wire(P.RESP_BIN_MD5_OK))
                if self.stall == "data":
                    read_exact(c, 1024)
                    self.reached.set()
                    self.release.wait(60)
                    return
                read_exact(c, size)
                self.reached.set()
                self.release.wait(60)
            except (OSError, ConnectionError, AssertionError):
                return


def start_ota(*args):
    e = dict(os.environ)
    e.pop("OTA_PASSWORD", None)
    return subprocess.Popen([OTA] + [str(a) for a in args], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=e,
                            stdin=subprocess.DEVNULL)


class WaitTest(unittest.TestCase):
    def image(self, size=300000):
        # incompressible: the wire carries it all
        return make_image(self, extra=size, seed=7)

    def test_silent_greeting_is_explained_then_times_out(self):
        dev = QuietDevice(self, "greeting")
        rc, out, err = run_ota("upload", "--device", "127.0.0.1", "--port", dev.port,
                               "--timeout", "6", "--no-compress", self.image())
        self.assertEqual(rc, 3, err)
        self.assertRegex(err, r"connected to 127\.0\.0\.1, waiting for the node's greeting "
                              r"\(.*\); giving up after 6 s")
        self.assertIn("error: timed out during handshake", err)

    def test_silent_verification_is_explained(self):
        dev = QuietDevice(self, "verify")
        rc, out, err = run_ota("upload", "--device", "127.0.0.1", "--port", dev.port,
                               "--timeout", "6", "--no-compress", self.image())
        self.assertEqual(rc, 3, err)
        self.assertIn("the whole image was sent; waiting for 127.0.0.1 to verify and "
                      "activate it; giving up after 6 s", err)
        self.assertEqual(err.count("the whole image was sent"), 1, err)

    def test_login_back_off_is_explained(self):
        node = Node(self, "--auth-backoff-free", "0", "--auth-backoff-base-ms", "5000")
        img = self.image(20000)
        rc, out, err = run_ota("upload", "--device", "127.0.0.1", "--port", node.port,
                               "--password", "wrong", img)
        self.assertEqual(rc, 4, err)
        rc, out, err = run_ota("upload", "--device", "127.0.0.1", "--port", node.port,
                               "--password", "wrong", "--timeout", "30", img)
        self.assertEqual(rc, 4, err)
        self.assertIn("to answer the login: after failed logins a node delays the next ones "
                      "for a while (its back-off)", err)

    def test_quiet_says_nothing_while_waiting(self):
        dev = QuietDevice(self, "greeting")
        rc, out, err = run_ota("upload", "-q", "--device", "127.0.0.1", "--port", dev.port,
                               "--timeout", "5", self.image())
        self.assertEqual(rc, 3, err)
        self.assertNotIn("waiting for", err)

    def interrupt_at(self, stall):
        dev = QuietDevice(self, stall)
        p = start_ota("upload", "--device", "127.0.0.1", "--port", dev.port, "--timeout", "60",
                      "--no-compress", self.image(2000000))
        self.addCleanup(lambda: p.poll() is None and p.kill())
        self.assertTrue(dev.reached.wait(30), "the upload never reached '%s'" % stall)
        time.sleep(0.3)
        p.send_signal(signal.SIGINT)
        out, err = p.communicate(timeout=30)
        self.assertEqual(p.returncode, 130, err)
        return err

    def test_ctrl_c_before_any_firmware(self):
        err = self.interrupt_at("greeting")
        self.assertIn("interrupted before any firmware was sent: the node is unchanged", err)

    def test_ctrl_c_during_the_transfer(self):
        err = self.interrupt_at("data")
        self.assertIn("interrupted during the transfer: the node discards the partial image",
                      err)

    def test_ctrl_c_after_the_whole_image(self):
        err = self.interrupt_at("verify")
        self.assertIn("interrupted after the whole image was sent: the node may still verify "
                      "and activate it", err)


class RebootHintTest(unittest.TestCase):
    def test_refused_right_after_an_update_is_the_reboot(self):
        node = Node(self, "--no-password")
        img = make_image(self, seed=11)
        rc, out, err = run_ota("upload", "--device", "127.0.0.1", "--port", node.port, img)
        self.assertEqual(rc, 0, err)
        record = os.path.join(os.path.dirname(os.environ["OTA_KNOWN_NODES"]), "updated_nodes")
        with open(record) as f:
            # time, rates, and the node's FEATURE_FLAGS byte (ours: the late digest)
            line = re.search(r"(?m)^127\.0\.0\.1:%d \d+ \d+ \d+ (\d+)$" % node.port, f.read())
        self.assertIsNotNone(line)
        self.assertTrue(int(line.group(1)) & P.SERVER_FLAG_LATE_MD5)
        self.assertEqual(os.stat(record).st_mode & 0o777, 0o600)
        node.stop()  # as if it were still rebooting: nothing listens
        rc, out, err = run_ota("upload", "--device", "127.0.0.1", "--port", node.port, img)
        self.assertEqual(rc, 3, err)
        self.assertRegex(err, r"hint: this machine updated the node \d+ s ago: it is most "
                              r"likely still rebooting into the new firmware; retry in a few "
                              r"seconds")
        self.assertNotIn("trying ArduinoOTA", err)  # a rebooting node is not an Arduino one
        # a port this machine never updated keeps the usual advice
        other = free_port()
        rc, out, err = run_ota("upload", "--device", "127.0.0.1", "--port", other,
                               "--protocol", "native", img)
        self.assertEqual(rc, 3, err)
        self.assertIn("hint: check that OTA is enabled", err)


class GzipWherePaysTest(unittest.TestCase):
    """gzip is chosen from what the node's last uploads measured (updated_nodes)."""

    def setUp(self):
        self.record = os.path.join(os.path.dirname(os.environ["OTA_KNOWN_NODES"]),
                                   "updated_nodes")

    def rates(self, port, raw, gz):
        with open(self.record, "a") as f:
            f.write("127.0.0.1:%d %d %d %d\n" % (port, int(time.time()) - 600, raw, gz))

    def line(self, port):
        with open(self.record) as f:
            return [l.split() for l in f if l.startswith("127.0.0.1:%d " % port)][-1]

    def upload(self, node, *args):
        img = make_image(self, seed=31, fill=0x41)  # demo-node itself gzips ~3:1 too
        rc, out, err = run_ota("upload", "--device", "127.0.0.1", "--port", node.port, *args,
                               img)
        self.assertEqual(rc, 0, err)
        # the node reboots into it: wait, or the next upload finds it restarting
        node.uploads = getattr(node, "uploads", 0) + 1
        node.wait_listening(1 + node.uploads)
        return out, err

    def test_choice_follows_the_measured_rates(self):
        node = Node(self, "--no-password")
        mib = 1024 * 1024
        self.rates(node.port, 50 * mib, 5 * mib)  # raw was faster: gzip off
        out, err = self.upload(node)
        self.assertIn("gzip: off for 127.0.0.1: it took images at 50.0 MiB/s raw and 5.0 "
                      "MiB/s gzipped", err)
        self.assertNotIn("gzip", out)
        raw_after = float(self.line(node.port)[2])
        self.assertGreater(raw_after, 0)
        self.assertNotEqual(raw_after, 50 * mib)  # this upload's rate replaced it
        self.assertEqual(float(self.line(node.port)[3]), 5 * mib)  # the other one kept
        out, err = self.upload(node, "--compress")  # forced: no choice
        self.assertIn("gzip", out)
        self.assertNotIn("gzip: off", err)

    def test_a_fast_gzip_link_is_measured_raw_once(self):
        node = Node(self, "--no-password")
        self.rates(node.port, 0, 10 * 1024 * 1024)
        out, err = self.upload(node)
        self.assertIn("gzip: trying this upload without it", err)
        self.assertNotIn("gzip", out)
        self.assertGreater(float(self.line(node.port)[2]), 0)  # now both are known

    def test_a_slow_link_keeps_gzip(self):
        node = Node(self, "--no-password")
        self.rates(node.port, 0, 300 * 1024)
        out, err = self.upload(node)
        self.assertIn("gzip", out)
        self.assertNotIn("gzip: ", err)


class NodeFileHabitsTest(unittest.TestCase):
    def node_file(self, port, name="demo-node", log_port=None):
        d = tempfile.mkdtemp(prefix="ota-habits-")
        self.addCleanup(lambda: __import__("shutil").rmtree(d, True))
        path = os.path.join(d, "node.yaml")
        with open(path, "w") as f:
            f.write("esphome:\n  name: %s\nhost:\n" % name)
            if log_port:
                f.write("logger:\n  port: %d\n" % log_port)
            f.write("ota:\n  - platform: esphome\n    port: %d\n" % port)
        return d, path

    def build(self, d, name, image):
        out = os.path.join(d, ".esphome", "build", name, ".pioenvs", name)
        os.makedirs(out)
        path = os.path.join(out, "firmware.bin")
        with open(image, "rb") as src, open(path, "wb") as dst:
            dst.write(src.read())
        return path

    def test_upload_without_firmware_says_it_is_missing(self):
        d, path = self.node_file(free_port())
        rc, out, err = run_ota("upload", path)
        self.assertEqual(rc, 6, err)
        self.assertIn("error: missing FIRMWARE: no image given, and ESPHome has not built one "
                      "for %s (no %s/.esphome/build/demo-node/.pioenvs/demo-node/firmware.bin)"
                      % (path, d), err)
        self.assertIn("esphome compile %s" % path, err)

    def test_upload_takes_the_esphome_build(self):
        node = Node(self, "--no-password")
        d, path = self.node_file(node.port)
        img = make_image(self, seed=21)
        built = self.build(d, "demo-node", img)
        rc, out, err = run_ota("upload", path, "--device", "127.0.0.1")
        self.assertEqual(rc, 0, err)
        self.assertIn("Using the firmware ESPHome built for demo-node: %s" % built, err)
        node.assert_runs(img, 2)

    def test_upload_follows_build_path(self):
        node = Node(self, "--no-password")
        d, path = self.node_file(node.port)
        with open(path) as f:
            text = f.read().replace("  name: demo-node\n", "  name: demo-node\n  build_path: out/x\n")
        with open(path, "w") as f:
            f.write(text)
        img = make_image(self, seed=24)
        out = os.path.join(d, "out", "x", ".pioenvs", "demo-node")
        os.makedirs(out)
        with open(img, "rb") as src, open(os.path.join(out, "firmware.bin"), "wb") as dst:
            dst.write(src.read())
        rc, so, err = run_ota("upload", path, "--device", "127.0.0.1")
        self.assertEqual(rc, 0, err)
        self.assertIn("Using the firmware ESPHome built for demo-node: %s/out/x/.pioenvs/"
                      "demo-node/firmware.bin" % d, err)
        node.assert_runs(img, 2)

    def test_run_takes_upload_options_and_the_build(self):
        log_port = free_port()
        node = Node(self, "--no-password", "--heartbeat-ms", "200", "--log-port", str(log_port))
        d, path = self.node_file(node.port, log_port=log_port)
        img = make_image(self, seed=22)
        self.build(d, "demo-node", img)
        rc, out, err = run_ota("run", path, "--device", "127.0.0.1", "--quiet", "--retries",
                               "2", "--auth", "none", "--protocol", "native",
                               "--follow-seconds", "2")
        self.assertEqual(rc, 0, err)
        self.assertNotIn("progress:", err)  # --quiet
        self.assertRegex(out, r"node back after \d+\.\d s")
        self.assertIn("node demo-node: running slot b", out)
        self.assertNotIn("warning: the node at", err)
        node.assert_runs(img, 2)

    def test_run_warns_about_another_node(self):
        log_port = free_port()
        node = Node(self, "--no-password", "--heartbeat-ms", "200", "--log-port", str(log_port))
        d, path = self.node_file(node.port, name="kitchen", log_port=log_port)
        rc, out, err = run_ota("run", path, make_image(self, seed=23), "--device", "127.0.0.1",
                               "--follow-seconds", "2")
        self.assertEqual(rc, 0, err)
        self.assertIn("warning: the node at 127.0.0.1 calls itself 'demo-node', but %s names "
                      "'kitchen'" % path, err)

    def test_logs_refuses_upload_only_options(self):
        for opt in (["--retries", "2"], ["--auth", "none"], ["--quiet"], ["--protocol=native"]):
            rc, out, err = run_ota("logs", "--device", "127.0.0.1", *opt)
            self.assertEqual(rc, 2, (opt, err))
            self.assertIn("%s belongs to upload and run" % opt[0].split("=")[0], err)


class HelpEverywhereTest(unittest.TestCase):
    def test_every_command_has_help(self):
        for cmd in ("upload", "run", "logs", "discover", "config", "codegen",
                    "hash-password"):
            for flag in ("-h", "--help"):
                rc, out, err = run_ota(cmd, flag)
                self.assertEqual(rc, 0, (cmd, flag, err))
                self.assertTrue(out.startswith("usage: ota " + cmd), (cmd, flag, out))
            rc, out, err = run_ota("help", cmd)
            self.assertEqual(rc, 0, (cmd, err))
            self.assertTrue(out.startswith("usage: ota " + cmd), (cmd, out))

    def test_versions(self):
        for binary in (OTA, OTA_BOOT, DEMO_NODE):
            p = subprocess.run([binary, "--version"], capture_output=True, text=True,
                               timeout=30)
            self.assertEqual(p.returncode, 0, binary)
            self.assertRegex(p.stdout, r"^\S+ \d+\.\d+\.\d+", binary)


if __name__ == "__main__":
    unittest.main()
