"""Passwords nobody can pull out of a firmware: the salted method end to end, the
uploader refusing an impostor, the legacy methods only where switched on, and the
brute-force back-off."""
import hashlib
import os
import socket
import sys
import threading
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from nodelib import (DEMO_NODE, MAGIC, Node, RawClient, make_image, run_ota,  # noqa: E402
                     sha256_file)
import protocol_consts as P  # noqa: E402


class SaltedAuthTest(unittest.TestCase):
    def test_binary_holds_no_plain_password(self):
        with open(DEMO_NODE, "rb") as f:
            data = f.read()
        self.assertNotIn(b"VERYSECURE", data)
        self.assertIn(b"SCRAM-SHA-256$", data)  # only the verifier

    def test_salted_upload_right_and_wrong_password(self):
        node = Node(self)  # compiled-in verifier of VERYSECURE
        self.assertIn("auth: salted", node.log())
        img = make_image(self, seed=1)
        rc, out, err = node.upload(img, "--password", "wrong", "--auth", "salted")
        self.assertEqual(rc, 4)
        self.assertIn("authentication failed", err)
        self.assertIn("wrong password (salted method)", node.log())
        self.assertEqual(node.status()["active_sha256"], sha256_file(DEMO_NODE))
        rc, out, err = node.upload(img, "--password", "VERYSECURE", "--auth", "salted")
        self.assertEqual(rc, 0, err)
        node.assert_runs(img, 2)

    def test_verifier_from_the_command_line(self):
        p = run_ota("hash-password", "--iterations", "4096")  # no stdin: fails cleanly
        self.assertEqual(p[0], 6)
        import subprocess
        from nodelib import OTA
        v = subprocess.run([OTA, "hash-password", "--iterations", "4096"], input="s3cret\n",
                           capture_output=True, text=True, check=True).stdout.strip()
        node = Node(self, "--verifier", v)
        img = make_image(self, seed=2)
        rc, _, err = node.upload(img, "--password", "s3cret")
        self.assertEqual(rc, 0, err)
        node.assert_runs(img, 2)

    def test_uploader_refuses_an_impostor(self):
        """A fake device that offers the salted method but cannot prove it knows the
        verifier: the uploader must stop before sending one firmware byte."""
        srv = socket.socket()
        srv.bind(("127.0.0.1", 0))
        srv.listen(1)
        self.addCleanup(srv.close)
        got_after_proof = []

        def impostor():
            c, _ = srv.accept()
            c.settimeout(20)
            with c:
                def read(n):
                    b = b""
                    while len(b) < n:
                        chunk = c.recv(n - len(b))
                        if not chunk:
                            raise ConnectionError
                        b += chunk
                    return b
                assert read(5) == MAGIC
                c.sendall(P.wire(P.RESP_OK, P.PROTOCOL_VERSION_2))
                read(1)
                c.sendall(P.wire(P.RESP_FEATURE_FLAGS, P.SERVER_FLAG_COMPRESSION))
                c.sendall(P.wire(P.RESP_REQUEST_AUTH_SALTED) + os.urandom(P.SALT_LEN)
                          + P.SALTED_MIN_ITERATIONS.to_bytes(4, "big") + os.urandom(P.SALTED_NONCE_LEN))
                read(P.SALTED_REPLY_LEN)  # client nonce + proof
                c.sendall(P.wire(P.RESP_AUTH_OK) + os.urandom(P.SALTED_KEY_LEN))  # a signature it cannot know
                rest = b""
                try:
                    while True:
                        chunk = c.recv(65536)
                        if not chunk:
                            break
                        rest += chunk
                except OSError:
                    pass
                got_after_proof.append(rest)

        t = threading.Thread(target=impostor, daemon=True)
        t.start()
        img = make_image(self, seed=3)
        rc, out, err = run_ota("upload", "--device", "127.0.0.1", "--port",
                               srv.getsockname()[1], "--password", "VERYSECURE", img)
        t.join(30)
        self.assertEqual(rc, 4, err)
        self.assertIn("could not prove it knows the password", err)
        self.assertEqual(got_after_proof, [b""])  # not a single byte after the proof

    def test_legacy_methods_only_with_a_plain_password(self):
        # verifier only (the default): stock-style clients get ERROR_AUTH_INVALID
        node = Node(self)
        img = make_image(self, seed=4)
        rc, _, err = node.upload(img, "--password", "VERYSECURE", "--auth", "sha256")
        self.assertEqual(rc, 4)
        c = RawClient(node.port)
        self.addCleanup(c.close)
        c.hello(P.FEATURE_NONE)  # MD5-only
        self.assertEqual(c.byte(), P.RESP_ERROR_AUTH_INVALID)
        self.assertIn("does not speak salted auth", node.log())
        # a plain password with the legacy methods switched on: both succeed
        legacy = Node(self, "--password", "VERYSECURE", "--allow-md5")
        rc, _, err = legacy.upload(img, "--password", "VERYSECURE", "--auth", "sha256")
        self.assertEqual(rc, 0, err)
        legacy.assert_runs(img, 2)
        img2 = make_image(self, seed=5)
        rc, _, err = legacy.upload(img2, "--password", "VERYSECURE", "--auth", "md5")
        self.assertEqual(rc, 0, err)
        legacy.assert_runs(img2, 3)

    def test_brute_force_back_off(self):
        node = Node(self, "--auth-backoff-free", "2", "--auth-backoff-base-ms", "1500",
                    "--heartbeat-ms", "100")
        img = make_image(self, seed=6)
        for _ in range(3):
            rc, _, _ = node.upload(img, "--password", "guess")
            self.assertEqual(rc, 4)
        self.assertIn("3 failed authentications in a row from this address; its next "
                      "attempt waits 1500 ms", node.log())
        node.wait_for(lambda: len(node.heartbeats()) >= 1, 10, "a heartbeat line")
        ticks_before = node.heartbeats()[-1][0]
        t0 = time.monotonic()
        # the same address (127.0.0.1) as the guesses: its back-off applies
        rc, _, err = node.upload(img, "--password", "VERYSECURE")
        waited = time.monotonic() - t0
        self.assertEqual(rc, 0, err)  # the right password still works after the back-off
        self.assertIn("auth delayed by the brute-force back-off", node.log())
        self.assertGreaterEqual(waited, 1.0)  # it did wait (a lower bound only)
        node.assert_runs(img, 2)
        lines = node.log().split("booted slot=b")[0]
        ticks = [int(t) for t in __import__("re").findall(r"heartbeat tick=(\d+)", lines)]
        self.assertGreaterEqual(ticks[-1] - ticks_before, 5)  # the loop kept running

    @staticmethod
    def salted_attempt(port, source, proof=None, timeout=10):
        """One salted authentication from the loopback address source with a wrong
        proof; returns the device's answer byte, or None when no challenge came within
        timeout (the back-off holds it)."""
        s = socket.create_connection(("127.0.0.1", port), timeout=timeout,
                                     source_address=(source, 0))
        try:
            def read(n):
                buf = b""
                while len(buf) < n:
                    chunk = s.recv(n - len(buf))
                    if not chunk:
                        raise ConnectionError("closed after %r" % buf)
                    buf += chunk
                return buf
            s.sendall(MAGIC)
            assert read(2)[0] == P.RESP_OK
            s.sendall(P.wire(P.FEATURE_EXTENDED | P.FEATURE_SALTED_AUTH))
            assert read(2)[0] == P.RESP_FEATURE_FLAGS
            try:
                method = read(1)[0]
            except socket.timeout:
                return None
            assert method == P.RESP_REQUEST_AUTH_SALTED, method
            read(P.SALTED_CHALLENGE_LEN - 1)  # salt, iterations, server nonce
            s.sendall(os.urandom(P.SALTED_NONCE_LEN) + (proof or os.urandom(P.SALTED_KEY_LEN)))
            return read(1)[0]
        finally:
            s.close()

    def test_back_off_is_per_source(self):
        """An attacker's wrong passwords from 127.0.0.2 delay 127.0.0.2 only: the owner
        at 127.0.0.1 gets its challenge at once and updates."""
        node = Node(self, "--auth-backoff-free", "1", "--auth-backoff-base-ms", "30000")
        for _ in range(2):
            self.assertEqual(self.salted_attempt(node.port, "127.0.0.2"), P.RESP_ERROR_AUTH_INVALID)
        self.assertIn("127.0.0.2", node.log())
        self.assertIn("its next attempt waits 30000 ms", node.log())
        # the attacker's next attempt waits (no challenge in 2 s, of 30)
        self.assertIsNone(self.salted_attempt(node.port, "127.0.0.2", timeout=2))
        img = make_image(self, seed=7)
        rc, _, err = node.upload(img, "--password", "VERYSECURE")
        self.assertEqual(rc, 0, err)
        node.assert_runs(img, 2)
        self.assertNotRegex(node.log(), r"127\.0\.0\.1:\d+: auth delayed")

    def test_global_ceiling_delays_but_does_not_refuse(self):
        """Many addresses guessing in parallel hit the node's ceiling of guesses per
        minute: further attempts (the owner's too) wait for the minute to roll, they
        are not refused."""
        node = Node(self, "--auth-guesses-per-min", "3", "--auth-backoff-base-ms", "0")
        for i in range(3):
            self.assertEqual(self.salted_attempt(node.port, "127.0.0.%d" % (20 + i)), P.RESP_ERROR_AUTH_INVALID)
        self.assertIsNone(self.salted_attempt(node.port, "127.0.0.30", timeout=2))
        self.assertIn("ceiling of guesses per minute", node.log())


if __name__ == "__main__":
    unittest.main()
