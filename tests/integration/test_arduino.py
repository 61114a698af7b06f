"""ArduinoOTA (PROTOCOL.md section 2) on the node: an espota-style uploader written in
the test (espota_client.py) updates our node with and without a password, in both auth
variants; wrong passwords, refused commands, a vanishing uploader, datagram garbage and
a busy node never disturb it."""
import os
import socket
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import espota_client  # noqa: E402
from nodelib import (DEMO_NODE, Node, RawClient, free_port, make_image, read_bytes,  # noqa: E402
                     sha256_file)


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
        node = arduino_node(self)  # the compiled-in SHA256hex of VERYSECURE
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
        result, text = espota_client.upload(node.arduino_port, b"fs" * 1000, cmd=100)
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
        self.assertEqual(native.byte(), 0x41)
        self.assertEqual(native.prepare(payload), (0x42, 0x43))
        result, text = espota_client.upload(node.arduino_port, payload)
        self.assertEqual((result, text), ("ERR", "ERR: another update is in progress"))
        native.send(payload)
        self.assertEqual(native.finish()[1:], (0x44, 0x45))
        native.send(b"\x00")
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
                b"200 abc def", os.urandom(1400), b"A" * 5000,
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


if __name__ == "__main__":
    unittest.main()
