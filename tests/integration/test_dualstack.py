"""The node's default listener is dual-stack ("::"): one socket takes IPv6 and IPv4
uploads, the log shows an IPv4 peer as plain IPv4 (so the brute-force guard and the
log count it under one address), and ArduinoOTA answers an IPv4 invitation on the same
dual-stack UDP socket. On a host without IPv6 the node falls back to 0.0.0.0."""
import os
import re
import socket
import sys
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import espota_client  # noqa: E402
from nodelib import Node, free_port, make_image, read_bytes, run_ota  # noqa: E402


def host_has_ipv6():
    try:
        with socket.socket(socket.AF_INET6, socket.SOCK_STREAM) as s:
            s.bind(("::1", 0))
        return True
    except OSError:
        return False


class DualStackTest(unittest.TestCase):
    def setUp(self):
        if not host_has_ipv6():
            self.skipTest("no IPv6 on this host (the node listens on 0.0.0.0 then)")

    def test_default_listener_takes_ipv6_and_ipv4(self):
        node = Node(self, "--no-password", bind="::")
        self.assertIn("listening on [::]:%d" % node.port, node.log())
        img = make_image(self, seed=11)
        rc, out, err = run_ota("upload", "--device", "::1", "--port", node.port, img)
        self.assertEqual(rc, 0, err)
        node.assert_runs(img, 2)
        img2 = make_image(self, seed=12)
        rc, out, err = run_ota("upload", "--device", "127.0.0.1", "--port", node.port, img2)
        self.assertEqual(rc, 0, err)
        node.assert_runs(img2, 3)
        log = node.log()
        self.assertRegex(log, r"\[::1\]:\d+: update complete")
        self.assertRegex(log, r"127\.0\.0\.1:\d+: update complete")
        self.assertNotIn("::ffff:", log)  # IPv4 peers are never shown IPv4-mapped

    def test_arduino_invitation_over_ipv4_on_the_dual_stack_socket(self):
        port = free_port()
        node = Node(self, "--no-password", "--arduino-port", str(port), bind="::")
        img = make_image(self, seed=13)
        # the espota-style client sends from 127.0.0.1: the reply must reach it there
        self.assertEqual(espota_client.upload(port, read_bytes(img))[0], "OK")
        node.assert_runs(img, 2)
        self.assertNotIn("::ffff:", node.log())

    def test_explicit_ipv4_bind_stays_ipv4(self):
        node = Node(self, "--no-password", bind="127.0.0.1")
        self.assertTrue(re.search(r"listening on 127\.0\.0\.1:%d" % node.port, node.log()))
        with socket.socket(socket.AF_INET6, socket.SOCK_STREAM) as s:
            s.settimeout(2)
            self.assertNotEqual(s.connect_ex(("::1", node.port)), 0)


if __name__ == "__main__":
    unittest.main()
