"""ArduinoOTA (docs/protocol.md#arduino) on the node: an espota-style uploader written
in the test (espota_client.py) updates our node with and without a password, in both
auth variants; wrong passwords, refused commands, a vanishing uploader, datagram
garbage and a busy node never disturb it. The numbers and strings of the protocol
come from include/ota/arduino_proto.h (protocol_consts)."""
import os
import socket
import sys
import tempfile
import threading
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import espota_client  # noqa: E402
from nodelib import (DEMO_NODE, Node, RawClient, free_port, make_image,  # noqa: E402
                     password_file, read_bytes, run_ota, sha256_file)
import protocol_consts as P  # noqa: E402


def arduino_node(tc, *flags):
    port = free_port()
    node = Node(tc, "--arduino-port", str(port), *flags)
    node.arduino_port = port
    return node


class ArduinoNodeTest(unittest.TestCase):
    def test_no_password(self):
        node = arduino_node(self, "--no-password")
        img = make_image(self, seed=1)
        self.assertEqual(espota_client.upload(node.arduino_port, read_bytes(img))[0], "OK")
        node.assert_runs(img, 2)

    def test_sha256_variant_right_and_wrong_password(self):
        # node.yaml enables no ArduinoOTA, so demo-node holds no hash: derive it at run time
        pw = password_file(self, "VERYSECURE\n")
        node = arduino_node(self, "--arduino-password-file", pw)
        img = make_image(self, seed=2)
        data = read_bytes(img)
        self.assertEqual(espota_client.upload(node.arduino_port, data, "nope"),
                         ("AUTH_FAILED", "Authentication Failed"))
        self.assertEqual(node.status()["active_sha256"], sha256_file(DEMO_NODE))
        self.assertEqual(espota_client.upload(node.arduino_port, data, "VERYSECURE")[0], "OK")
        node.assert_runs(img, 2)

    def test_md5_variant(self):
        node = arduino_node(self, "--arduino-auth", "md5", "--password", "pw")
        img = make_image(self, seed=3)
        self.assertEqual(espota_client.upload(node.arduino_port, read_bytes(img), "pw")[0], "OK")
        node.assert_runs(img, 2)

    def test_filesystem_image_refused_clearly(self):
        node = arduino_node(self, "--no-password")
        result, text = espota_client.upload(node.arduino_port, b"fs" * 1000, cmd=P.ARDUINO_CMD_SPIFFS)
        self.assertEqual((result, text), ("ERR", "ERR: this node takes no filesystem images"))

    def test_uploader_vanishing_mid_transfer(self):
        node = arduino_node(self, "--no-password")
        img = make_image(self, seed=4)
        result, _ = espota_client.upload(node.arduino_port, read_bytes(img), stop_after=100000)
        self.assertEqual(result, "STOPPED")
        node.wait_for(lambda: "update abandoned" in node.log(), 20, "the abandoned update")
        self.assertEqual(node.status()["active_sha256"], sha256_file(DEMO_NODE))
        self.assertEqual(espota_client.upload(node.arduino_port, read_bytes(img))[0], "OK")
        node.assert_runs(img, 2)

    def test_busy_across_protocols(self):
        node = arduino_node(self, "--no-password")
        img = make_image(self, seed=5)
        payload = read_bytes(img)
        native = RawClient(node.port)  # a native upload holds the lock
        self.addCleanup(native.close)
        native.hello(0)
        self.assertEqual(native.byte(), P.RESP_AUTH_OK)
        self.assertEqual(native.prepare(payload), (P.RESP_UPDATE_PREPARE_OK, P.RESP_BIN_MD5_OK))
        result, text = espota_client.upload(node.arduino_port, payload)
        self.assertEqual((result, text), ("ERR", "ERR: another update is in progress"))
        native.send(payload)
        self.assertEqual(native.finish()[1:], (P.RESP_RECEIVE_OK, P.RESP_UPDATE_END_OK))
        native.send(P.wire(P.RESP_OK))
        node.assert_runs(img, 2)

    def test_datagram_garbage_never_hurts(self):
        node = arduino_node(self, "--no-password", "--heartbeat-ms", "100")
        node.wait_for(lambda: len(node.heartbeats()) >= 2, 10, "heartbeats")
        before = node.heartbeats()[-1][0]
        md5 = "0" * 32
        refused = free_port()  # nobody listens: the back-connection is refused
        junk = [b"", b"\x00\x01\x02", b"0", b"0 1 2", b"0 1 2 3 4", b"x y z w",
                b"0 notaport 100 " + md5.encode(), b"0 70000 100 " + md5.encode(),
                b"0 0 100 " + md5.encode(), b"0 1234 99999999999 " + md5.encode(),
                b"0 1234 0 " + md5.encode(), b"0 1234 100 nothex", b"7 1234 100 " + md5.encode(),
                b"%d abc def" % P.ARDUINO_CMD_AUTH, os.urandom(1400), b"A" * 5000,
                ("0 %d 1000 %s\n" % (refused, md5)).encode()]
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.addCleanup(s.close)
        for d in junk * 3:
            s.sendto(d, ("127.0.0.1", node.arduino_port))
        node.wait_for(lambda: "cannot connect back" in node.log() or
                      "update abandoned" in node.log(), 20, "the refused back-connection")
        time.sleep(0.5)
        self.assertGreaterEqual(node.heartbeats()[-1][0] - before, 5)  # the loop kept going
        img = make_image(self, seed=6)
        self.assertEqual(espota_client.upload(node.arduino_port, read_bytes(img))[0], "OK")
        node.assert_runs(img, 2)

    def test_invitation_squatter_does_not_block_the_owner(self):
        """Issue 12: one invitation from another address every 100 ms (127.0.0.3), never
        answered, while an espota-style upload from 127.0.0.1 runs: it succeeds."""
        pw = password_file(self, "VERYSECURE\n")
        node = arduino_node(self, "--arduino-password-file", pw)
        stop = threading.Event()
        sent = []

        def squat():
            s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            s.bind(("127.0.0.3", 0))
            s.settimeout(0.1)
            port = s.getsockname()[1]
            with s:
                while not stop.is_set():
                    s.sendto(("0 %d 123456 %s\n" % (port, "ab" * 16)).encode(),
                             ("127.0.0.1", node.arduino_port))
                    sent.append(1)
                    try:
                        s.recv(128)  # its challenge, left unanswered
                    except OSError:
                        pass
                    stop.wait(0.1)

        t = threading.Thread(target=squat, daemon=True)
        t.start()
        self.addCleanup(t.join, 5)
        self.addCleanup(stop.set)
        time.sleep(0.5)  # the squatter holds a challenge before the owner comes
        img = make_image(self, seed=8)
        result = espota_client.upload(node.arduino_port, read_bytes(img), "VERYSECURE")
        stop.set()
        t.join(5)
        self.assertEqual(result[0], "OK", result)
        self.assertGreater(len(sent), 3)
        node.assert_runs(img, 2)


class ArduinoUploaderTest(unittest.TestCase):
    """Our uploader (ota upload --protocol arduino, and auto-detection)."""

    def up(self, node_or_port, img, *args):
        port = getattr(node_or_port, "arduino_port", node_or_port)
        return run_ota("upload", "--device", "127.0.0.1", "--port", port, *args, img)

    def test_variants_and_auto_detection(self):
        node = arduino_node(self, "--arduino-password-file", password_file(self, "VERYSECURE\n"))
        img = make_image(self, seed=10)
        rc, out, err = self.up(node, img, "--protocol", "arduino", "--password", "VERYSECURE")
        self.assertEqual(rc, 0, err)
        self.assertIn("over ArduinoOTA", out)
        node.assert_runs(img, 2)
        # no --protocol: the TCP port refuses, so the uploader tries ArduinoOTA
        img2 = make_image(self, seed=11)
        rc, out, err = self.up(node, img2, "--password", "VERYSECURE", "--host-port",
                               free_port())
        self.assertEqual(rc, 0, err)
        self.assertIn("trying ArduinoOTA", err)
        node.assert_runs(img2, 3)

    def test_md5_variant_no_password_and_wrong_password(self):
        node = arduino_node(self, "--arduino-auth", "md5", "--password", "pw")
        img = make_image(self, seed=12)
        rc, _, err = self.up(node, img, "--protocol", "arduino", "--password", "bad")
        self.assertEqual(rc, 4)
        self.assertIn("wrong password", err)
        self.assertEqual(node.status()["active_sha256"], sha256_file(DEMO_NODE))
        rc, _, err = self.up(node, img, "--protocol", "arduino")
        self.assertEqual(rc, 4)
        self.assertIn("requires a password", err)
        rc, _, err = self.up(node, img, "--protocol", "arduino", "--password", "pw")
        self.assertEqual(rc, 0, err)
        node.assert_runs(img, 2)
        free = arduino_node(self, "--no-password")
        rc, _, err = self.up(free, img, "--protocol", "arduino")
        self.assertEqual(rc, 0, err)
        free.assert_runs(img, 2)

    def test_device_error_text_reaches_the_user(self):
        node = arduino_node(self, "--no-password")
        native = RawClient(node.port)  # keep the node busy with a native update
        self.addCleanup(native.close)
        native.hello(0)
        self.assertEqual(native.byte(), P.RESP_AUTH_OK)
        self.assertEqual(native.prepare(b"x" * 100000), (P.RESP_UPDATE_PREPARE_OK, P.RESP_BIN_MD5_OK))
        img = make_image(self, seed=13)
        rc, _, err = self.up(node, img, "--protocol", "arduino")
        self.assertEqual(rc, 5)
        self.assertIn("the device says: ERR: another update is in progress", err)

    def test_filesystem_image_into_the_data_slot(self):
        node = arduino_node(self, "--no-password", "--arduino-data-slot")
        d = os.path.join(node.dir + "-fs.img")
        with open(d, "wb") as f:
            f.write(os.urandom(70000))
        self.addCleanup(os.unlink, d)
        rc, out, err = self.up(node, d, "--protocol", "arduino", "--filesystem")
        self.assertEqual(rc, 0, err)
        node.wait_listening(2)  # it reboots to use the new data, as the Arduino cores do
        self.assertEqual(read_bytes(os.path.join(node.dir, "data.bin")), read_bytes(d))
        st = node.status()
        self.assertEqual((st["active_slot"], st["active_sha256"]), ("a", sha256_file(DEMO_NODE)))
        # without a data slot the node says so, and the uploader shows it
        plain = arduino_node(self, "--no-password")
        rc, out, err = self.up(plain, d, "--protocol", "arduino", "--filesystem")
        self.assertEqual(rc, 5)
        self.assertIn("ERR: this node takes no filesystem images", err)
        rc, out, err = self.up(plain, d, "--filesystem")
        self.assertEqual(rc, 2)

    def mock_device(self, handler):
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        s.bind(("127.0.0.1", 0))
        s.settimeout(20)
        self.addCleanup(s.close)
        import threading
        t = threading.Thread(target=handler, args=(s,), daemon=True)
        t.start()
        return s.getsockname()[1], t

    def test_bootstrapping_error_hint(self):
        def handler(s):
            data, addr = s.recvfrom(200)
            s.sendto(b"ERR: ERROR[11]: Invalid bootstrapping", addr)
        port, t = self.mock_device(handler)
        rc, _, err = self.up(port, make_image(self, seed=14), "--protocol", "arduino")
        t.join(10)
        self.assertEqual(rc, 5)
        self.assertIn("the device says: ERR: ERROR[11]: Invalid bootstrapping", err)
        self.assertIn("power-cycle", err)

    def test_retry_with_the_md5_hash_some_devices_keep(self):
        """A device of the SHA-256 variant that stores MD5hex(password): the uploader
        fails with SHA256hex, then succeeds with MD5hex."""
        import hashlib
        received = []

        def handler(s):
            h = hashlib.md5(b"pw").hexdigest()
            attempts = 0
            while True:
                data, addr = s.recvfrom(200)
                fields = data.decode().split()
                if fields[0] == str(P.ARDUINO_CMD_FLASH):
                    host_port, size = int(fields[1]), int(fields[2])
                    nonce = os.urandom(P.SHA256_HEX_LEN // 2).hex()
                    s.sendto((P.ARDUINO_REPLY_AUTH + nonce).encode(), addr)
                    continue
                attempts += 1
                cnonce, resp = fields[1], fields[2]
                sep = P.ARDUINO_SEPARATOR
                dk = hashlib.pbkdf2_hmac("sha256", h.encode(), (nonce + sep + cnonce).encode(),
                                         P.ARDUINO_PBKDF2_ITERATIONS, P.ARDUINO_PBKDF2_LEN).hex()
                want = hashlib.sha256(sep.join((dk, nonce, cnonce)).encode()).hexdigest()
                if resp != want:
                    s.sendto(P.ARDUINO_REPLY_AUTH_FAILED.encode(), addr)
                    continue
                s.sendto(P.ARDUINO_REPLY_OK.encode(), addr)
                c = socket.create_connection(("127.0.0.1", host_port), timeout=20)
                got = b""
                while len(got) < size:
                    got += c.recv(65536)
                    c.sendall(b"%d\n" % len(got))
                c.sendall(P.ARDUINO_DATA_OK.encode())
                c.close()
                received.append((attempts, got))
                return
        port, t = self.mock_device(handler)
        img = make_image(self, seed=15, extra=20000)
        rc, _, err = self.up(port, img, "--protocol", "arduino", "--password", "pw")
        t.join(20)
        self.assertEqual(rc, 0, err)
        self.assertEqual(received[0][0], 2)  # the second answer, with MD5hex, was right
        self.assertEqual(received[0][1], read_bytes(img))


class ArduinoImpostor:
    """No TCP listener on the port (the native connection is refused), an ArduinoOTA
    responder on UDP: answers the invitation with `answer` ("OK" or "AUTH <nonce>"),
    records the datagrams, says `verdict` to a challenge response ("OK": it then wants
    the image too) and, invited, connects back and counts the firmware bytes."""

    def __init__(self, tc, answer=P.ARDUINO_REPLY_OK, verdict=P.ARDUINO_REPLY_OK):
        self.udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.udp.bind(("127.0.0.1", 0))
        self.port = self.udp.getsockname()[1]
        self.udp.settimeout(0.5)
        tc.addCleanup(self.udp.close)
        self.answer, self.verdict = answer, verdict
        self.datagrams = []
        self.firmware = 0
        self.stop = False
        self.t = threading.Thread(target=self.serve, daemon=True)
        self.t.start()
        tc.addCleanup(self.shutdown)

    def shutdown(self):
        self.stop = True
        self.t.join(5)

    def serve(self):
        import re
        host_port = None
        while not self.stop:
            try:
                data, peer = self.udp.recvfrom(2048)
            except socket.timeout:
                continue
            except OSError:
                return
            text = data.decode(errors="replace")
            self.datagrams.append(text)
            m = re.match(r"(\d+) (\d+) (\d+) ([0-9a-f]{32})", text)
            if m:
                host_port = int(m[2])
                self.udp.sendto(self.answer.encode(), peer)
                if self.answer == P.ARDUINO_REPLY_OK:
                    self.pull(host_port)
                    return
            elif text.startswith("%d " % P.ARDUINO_CMD_AUTH):
                self.udp.sendto(self.verdict.encode(), peer)
                if self.verdict == P.ARDUINO_REPLY_OK:
                    self.pull(host_port)
                    return

    def pull(self, host_port):
        try:
            c = socket.create_connection(("127.0.0.1", host_port), timeout=5)
        except OSError:
            return
        with c:
            c.settimeout(5)
            try:
                while True:
                    chunk = c.recv(65536)
                    if not chunk:
                        return
                    self.firmware += len(chunk)
                    c.sendall(b"%d\n" % self.firmware)
            except OSError:
                return


class ArduinoImpostorTest(unittest.TestCase):
    """Issue 12 review: ArduinoOTA cannot prove the device knows the password, so the
    uploader never falls back to it when salted auth is required, refuses a device that
    asks for no password when one was given, answers one challenge only in the
    automatic fallback, and streams only to the address it invited."""

    PASSWORD = "correct horse"

    def setUp(self):
        self.img = make_image(self, extra=20000, seed=7)
        d = tempfile.mkdtemp(prefix="ota-ar-imp-")
        import shutil
        self.addCleanup(shutil.rmtree, d, True)
        self.dir = d
        self.known = os.path.join(d, "known_nodes")

    def up(self, port, *args):
        return run_ota("upload", "--device", "127.0.0.1", "--port", port, "--known-nodes",
                       self.known, *args, self.img, timeout=60)

    def assert_no_fallback(self, imp, rc, err):
        imp.shutdown()
        self.assertEqual(imp.datagrams, [], err)
        self.assertEqual(imp.firmware, 0, err)
        self.assertEqual(rc, 4, err)
        self.assertIn("refused the native OTA connection", err)
        self.assertIn("not falling back to ArduinoOTA", err)
        self.assertIn("--protocol arduino", err)

    def test_no_fallback_with_auth_salted(self):
        imp = ArduinoImpostor(self, P.ARDUINO_REPLY_OK)
        rc, out, err = self.up(imp.port, "--password", self.PASSWORD, "--auth", "salted")
        self.assert_no_fallback(imp, rc, err)
        self.assertIn("--auth salted", err)

    def test_no_fallback_to_a_known_node(self):
        imp = ArduinoImpostor(self, P.ARDUINO_REPLY_OK)
        with open(self.known, "w") as f:
            f.write("127.0.0.1:%d salted %s\n" % (imp.port, "00" * 16))
        rc, out, err = self.up(imp.port, "--password", self.PASSWORD)
        self.assert_no_fallback(imp, rc, err)
        self.assertIn("%s line 1" % self.known, err)

    def test_no_fallback_for_a_node_yaml_with_a_password(self):
        import textwrap
        imp = ArduinoImpostor(self, P.ARDUINO_REPLY_AUTH + os.urandom(P.SHA256_HEX_LEN // 2).hex())
        yaml = os.path.join(self.dir, "node.yaml")
        with open(yaml, "w") as f:
            f.write(textwrap.dedent("""\
                esphome:
                  name: fake-node
                host:
                ota:
                  - platform: esphome
                    password: "%s"
                    port: %d
                """ % (self.PASSWORD, imp.port)))
        rc, out, err = run_ota("upload", yaml, self.img, "--device", "127.0.0.1",
                               "--known-nodes", self.known, timeout=60)
        self.assert_no_fallback(imp, rc, err)
        self.assertIn("legacy_auth", err)

    def test_fallback_without_salted_requirement_answers_once_and_warns(self):
        """No salted requirement: the fallback still runs (stock ArduinoOTA devices), but
        a refused SHA-256 answer is not followed by a second, MD5hex-keyed one."""
        imp = ArduinoImpostor(self, P.ARDUINO_REPLY_AUTH + os.urandom(P.SHA256_HEX_LEN // 2).hex(),
                              P.ARDUINO_REPLY_AUTH_FAILED)
        rc, out, err = self.up(imp.port, "--password", self.PASSWORD)
        imp.shutdown()
        self.assertEqual(rc, 4, err)
        self.assertEqual(len([d for d in imp.datagrams if d.startswith("%d " % P.ARDUINO_CMD_AUTH)]), 1, err)
        self.assertIn("trying ArduinoOTA", err)
        self.assertIn("cannot prove it knows the password", err)

    def test_device_asking_for_no_password_is_refused(self):
        for args in (("--protocol", "arduino"), ()):
            imp = ArduinoImpostor(self, P.ARDUINO_REPLY_OK)
            rc, out, err = self.up(imp.port, "--password", self.PASSWORD, *args)
            imp.shutdown()
            self.assertEqual(imp.firmware, 0, err)
            self.assertEqual(rc, 4, err)
            self.assertIn("the device asked for no password", err)
            self.assertIn("--auth none", err)
        rc, out, err = self.up(free_port(), "--protocol", "arduino", "--auth", "salted")
        self.assertEqual(rc, 2, err)

    def test_real_node_with_password_warns_and_auth_none_uploads(self):
        node = arduino_node(self, "--arduino-password-file", password_file(self, "VERYSECURE\n"))
        rc, out, err = self.up(node.arduino_port, "--protocol", "arduino", "--password",
                               "VERYSECURE")
        self.assertEqual(rc, 0, err)
        self.assertIn("cannot prove it knows the password", err)
        node.assert_runs(self.img, 2)
        free = arduino_node(self, "--no-password")
        img = make_image(self, seed=16)
        rc, out, err = run_ota("upload", "--device", "127.0.0.1", "--port", free.arduino_port,
                               "--protocol", "arduino", "--password", "x", "--auth", "none",
                               img)
        self.assertEqual(rc, 0, err)
        self.assertNotIn("cannot prove", err)
        free.assert_runs(img, 2)

    def test_firmware_only_to_the_invited_address(self):
        """The device was invited at 127.0.0.1; 127.0.0.2 connects back first: it is
        closed without a byte, and the upload waits for the device until the timeout."""
        udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        udp.bind(("127.0.0.1", 0))
        udp.settimeout(20)
        self.addCleanup(udp.close)
        port = udp.getsockname()[1]
        got = {"stranger": 0, "device": 0}

        def connect_back(source, host_port, key):
            c = socket.socket()
            c.bind((source, 0))
            c.settimeout(5)
            try:
                c.connect(("127.0.0.1", host_port))
                while True:
                    chunk = c.recv(65536)
                    if not chunk:
                        break
                    got[key] += len(chunk)
                    c.sendall(b"%d\n" % got[key])
                    if key == "device" and got[key] >= size:
                        c.sendall(P.ARDUINO_DATA_OK.encode())
                        break
            except OSError:
                pass
            finally:
                c.close()

        size = len(read_bytes(self.img))

        def serve():
            try:
                data, peer = udp.recvfrom(2048)
            except OSError:
                return
            host_port = int(data.split()[1])
            udp.sendto(P.ARDUINO_REPLY_OK.encode(), peer)
            connect_back("127.0.0.2", host_port, "stranger")
            time.sleep(0.5)
            connect_back("127.0.0.1", host_port, "device")

        t = threading.Thread(target=serve, daemon=True)
        t.start()
        rc, out, err = run_ota("upload", "--device", "127.0.0.1", "--port", port,
                               "--protocol", "arduino", self.img, timeout=60)
        t.join(10)
        self.assertEqual(got["stranger"], 0, err)
        self.assertEqual(rc, 0, err)
        self.assertEqual(got["device"], size)


if __name__ == "__main__":
    unittest.main()
