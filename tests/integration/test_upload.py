"""End to end: real uploads with the ota tool to a Linux node, and the node boots
the new image (ota-boot status shows its sha256, the slot flips) and answers again."""
import os
import sys
import tempfile
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from nodelib import (DEMO_NODE, Node, RawClient, free_port, make_image, read_bytes,  # noqa: E402
                     sha256_file)
import protocol_consts as P  # noqa: E402


class UploadTest(unittest.TestCase):
    def test_compiled_in_password_gzip_v2_then_second_upload(self):
        node = Node(self)  # demo-node's compiled-in settings: password VERYSECURE
        self.assertEqual(node.status()["active_slot"], "a")
        img = make_image(self, seed=1)
        rc, out, err = node.upload(img, "--password", "VERYSECURE")
        self.assertEqual(rc, 0, err)
        self.assertTrue(out.startswith("OK: %d bytes uploaded" % os.path.getsize(img)), out)
        self.assertIn("gzip", out)  # the ELF part compresses, so gzip was used
        self.assertIn("progress: 100%", err)  # plain progress lines: stderr is no terminal
        st = node.assert_runs(img, 2)
        self.assertEqual(st["active_slot"], "b")
        self.assertTrue(st["pending"])
        # and it takes the next upload, back into slot a
        img2 = make_image(self, seed=2)
        rc, out, err = node.upload(img2, "--password", "VERYSECURE")
        self.assertEqual(rc, 0, err)
        st = node.assert_runs(img2, 3)
        self.assertEqual(st["active_slot"], "a")

    def test_no_password_without_compression(self):
        node = Node(self, "--no-password")
        img = make_image(self, seed=3)
        rc, out, err = node.upload(img, "--no-compress")
        self.assertEqual(rc, 0, err)
        self.assertNotIn("gzip", out)
        node.assert_runs(img, 2)

    def test_password_from_flag_env_and_file(self):
        node = Node(self, "--password", "hunter2 with spaces")
        img = make_image(self, seed=4)
        rc, _, err = node.upload(img, "--password", "hunter2 with spaces")
        self.assertEqual(rc, 0, err)
        node.assert_runs(img, 2)
        img2 = make_image(self, seed=5)
        with tempfile.NamedTemporaryFile("w", suffix=".pw", delete=False) as f:
            f.write("hunter2 with spaces\n")
        self.addCleanup(os.unlink, f.name)
        rc, _, err = node.upload(img2, "--password-file", f.name)
        self.assertEqual(rc, 0, err)
        node.assert_runs(img2, 3)
        img3 = make_image(self, seed=6)
        from nodelib import run_ota
        rc, _, err = run_ota("upload", "--device", "127.0.0.1", "--port", node.port, img3,
                             env={"OTA_PASSWORD": "hunter2 with spaces"})
        self.assertEqual(rc, 0, err)
        node.assert_runs(img3, 4)

    def test_protocol_version_1(self):
        node = Node(self, "--no-password", "--protocol-version", "1")
        img = make_image(self, seed=7)
        rc, out, err = node.upload(img)
        self.assertEqual(rc, 0, err)
        node.assert_runs(img, 2)
        img2 = make_image(self, seed=8)
        rc, out, err = node.upload(img2, "--no-compress")
        self.assertEqual(rc, 0, err)
        node.assert_runs(img2, 3)
        # on the wire: version byte 1, and no chunk acks at all before RECEIVE_OK
        img3 = make_image(self, seed=15)
        payload = read_bytes(img3)
        c = RawClient(node.port)
        self.addCleanup(c.close)
        self.assertEqual(c.hello(P.FEATURE_NONE), (1, P.wire(P.RESP_HEADER_OK)))
        self.assertEqual(c.byte(), P.RESP_AUTH_OK)
        self.assertEqual(c.prepare(payload), (P.RESP_UPDATE_PREPARE_OK, P.RESP_BIN_MD5_OK))
        c.send(payload)
        self.assertEqual(c.finish(), (0, P.RESP_RECEIVE_OK, P.RESP_UPDATE_END_OK))
        c.send(P.wire(P.RESP_OK))
        node.assert_runs(img3, 4)

    def test_protocol_version_1_with_password_raw_then_gzip(self):
        node = Node(self, "--password", "v1 secret", "--protocol-version", "1")
        img = make_image(self, seed=13)
        rc, out, err = node.upload(img, "--password", "v1 secret", "--no-compress")
        self.assertEqual(rc, 0, err)
        self.assertNotIn("gzip", out)
        self.assertEqual(node.assert_runs(img, 2)["active_slot"], "b")
        img2 = make_image(self, seed=14)
        rc, out, err = node.upload(img2, "--password", "v1 secret")
        self.assertEqual(rc, 0, err)
        self.assertIn("gzip", out)
        self.assertEqual(node.assert_runs(img2, 3)["active_slot"], "a")

    def test_md5_challenge_when_allowed(self):
        node = Node(self, "--password", "pw", "--allow-md5")
        img = make_image(self, seed=9)
        rc, _, err = node.upload(img, "--password", "pw", "--auth", "md5")
        self.assertEqual(rc, 0, err)
        node.assert_runs(img, 2)
        # a raw client that knows only MD5 (no SHA-256 feature bit) gets the MD5 challenge
        c = RawClient(node.port)
        self.addCleanup(c.close)
        c.hello(P.FEATURE_NONE)
        self.assertEqual(c.byte(), P.RESP_REQUEST_AUTH_MD5)
        self.assertEqual(c.auth_legacy(P.RESP_REQUEST_AUTH_MD5, "pw"), P.RESP_AUTH_OK)

    def test_md5_refused_when_not_allowed(self):
        node = Node(self, "--password", "pw")
        c = RawClient(node.port)
        self.addCleanup(c.close)
        c.hello(P.FEATURE_NONE)  # MD5-only client
        self.assertEqual(c.byte(), P.RESP_ERROR_AUTH_INVALID)
        self.assertTrue(c.is_closed())
        self.assertIn("knows only MD5", node.log())
        img = make_image(self, seed=10)
        rc, _, err = node.upload(img, "--password", "pw", "--auth", "md5")
        self.assertEqual(rc, 4, err)
        self.assertEqual(node.status()["active_sha256"], sha256_file(DEMO_NODE))

    def test_many_nodes_at_once_with_summary(self):
        nodes = [Node(self, "--no-password") for _ in range(3)]
        img = make_image(self, seed=11)
        dead = free_port()  # nobody listens there
        with tempfile.NamedTemporaryFile("w", suffix=".hosts", delete=False) as f:
            f.write("# the fleet\n127.0.0.1:%d\n\n[::1]:%d   # IPv6 loopback, refused\n"
                    % (nodes[2].port, dead))
        self.addCleanup(os.unlink, f.name)
        from nodelib import run_ota
        rc, out, err = run_ota("upload", "-j", "4", "--device", "127.0.0.1:%d" % nodes[0].port,
                               "--device", "localhost:%d" % nodes[1].port,
                               "--devices-file", f.name, img)
        self.assertEqual(rc, 3, out + err)  # one node failed: its exit code
        self.assertIn("NODE", out)
        self.assertIn("3 of 4 nodes updated", out)
        self.assertEqual(out.count(" OK "), 3, out)
        self.assertIn("::1:%d" % dead, out)
        self.assertIn("connection refused", out)
        for n in nodes:
            n.assert_runs(img, 2)

    @unittest.skipUnless(__import__("shutil").which("script"), "needs script(1) for a pty")
    def test_progress_bar_on_a_terminal(self):
        import subprocess
        from nodelib import OTA
        node = Node(self, "--no-password")
        img = make_image(self, seed=12, extra=3000000)
        cmd = "%s upload --no-compress --device 127.0.0.1 --port %d %s" % (OTA, node.port, img)
        p = subprocess.run(["script", "-qec", cmd, "/dev/null"], capture_output=True, text=True,
                           timeout=120, stdin=subprocess.DEVNULL)
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        self.assertIn("Uploading [", p.stdout)  # the bar, redrawn with carriage returns
        self.assertIn("100%", p.stdout)
        self.assertRegex(p.stdout, r"KiB/s +ETA +\d+ s")
        self.assertNotIn("progress:", p.stdout)  # no plain lines on a terminal
        node.assert_runs(img, 2)


if __name__ == "__main__":
    unittest.main()
