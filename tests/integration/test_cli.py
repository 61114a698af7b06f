"""The command-line contract of ota and ota-boot: help, usage errors, exit codes,
hints, and ota hash-password's verifier (checked with Python's hashlib)."""
import base64
import hashlib
import hmac
import json
import os
import subprocess
import sys
import tempfile
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from nodelib import DEMO_NODE, OTA, OTA_BOOT, free_port, run_ota  # noqa: E402


class OtaCliTest(unittest.TestCase):
    def test_help_and_version(self):
        rc, out, _ = run_ota("--help")
        self.assertEqual(rc, 0)
        self.assertIn("upload", out)
        self.assertIn("exit codes", out)
        rc, out, _ = run_ota("upload", "--help")
        self.assertEqual(rc, 0)
        self.assertIn("--device", out)
        rc, out, _ = run_ota("hash-password", "--help")
        self.assertEqual(rc, 0)
        rc, out, _ = run_ota("--version")
        self.assertEqual(rc, 0)
        self.assertTrue(out.startswith("ota "))

    def test_usage_errors_exit_2(self):
        for args in ([], ["frobnicate"], ["upload"], ["upload", DEMO_NODE],
                     ["upload", "--device", "x", "--port", "abc", DEMO_NODE],
                     ["upload", "--device", "x", "--bogus", DEMO_NODE],
                     ["upload", "--device", "x", "--auth", "rot13", DEMO_NODE]):
            rc, out, err = run_ota(*args)
            self.assertEqual(rc, 2, (args, err))
            self.assertIn("--help", err)

    def test_bad_firmware_exit_6(self):
        rc, _, err = run_ota("upload", "--device", "127.0.0.1", "/nonexistent/firmware.bin")
        self.assertEqual(rc, 6)
        self.assertIn("No such file", err)
        self.assertRegex(err, r"(?m)^hint: ")
        with tempfile.NamedTemporaryFile(suffix=".bin") as f:
            rc, _, err = run_ota("upload", "--device", "127.0.0.1", f.name)
            self.assertEqual(rc, 6)
            self.assertIn("empty", err)

    def test_host_that_does_not_resolve(self):
        rc, _, err = run_ota("upload", "--device", "nonexistent.invalid", DEMO_NODE)
        self.assertEqual(rc, 3)
        self.assertIn("error: host 'nonexistent.invalid' does not resolve", err)
        self.assertRegex(err, r"(?m)^hint: .*IP address")

    def test_refused_port(self):
        port = free_port()  # nobody listens there
        rc, _, err = run_ota("upload", "--device", "127.0.0.1", "--port", port, DEMO_NODE)
        self.assertEqual(rc, 3)
        self.assertRegex(err, r"(?m)^error: 127\.0\.0\.1:%d refused" % port)
        self.assertRegex(err, r"(?m)^hint: .*OTA is enabled")
        rc, _, err = run_ota("upload", "--device", "127.0.0.1", "--port", port, "--retries",
                             "1", DEMO_NODE)
        self.assertEqual(rc, 3)
        self.assertIn("retrying in 1 s", err)

    def test_hash_password_verifier(self):
        p = subprocess.run([OTA, "hash-password", "--iterations", "4096"], input="VERYSECURE\n",
                           capture_output=True, text=True, timeout=60)
        self.assertEqual(p.returncode, 0, p.stderr)
        text = p.stdout.strip()
        scheme, rest = text.split("$", 1)
        self.assertEqual(scheme, "SCRAM-SHA-256")
        params, keys = rest.split("$")
        iterations, salt = params.split(":")
        stored, server = keys.split(":")
        self.assertEqual(int(iterations), 4096)
        salt = base64.b64decode(salt)
        self.assertEqual(len(salt), 16)
        sp = hashlib.pbkdf2_hmac("sha256", b"VERYSECURE", salt, 4096, 32)
        ck = hmac.new(sp, b"Client Key", hashlib.sha256).digest()
        self.assertEqual(base64.b64decode(stored), hashlib.sha256(ck).digest())
        self.assertEqual(base64.b64decode(server),
                         hmac.new(sp, b"Server Key", hashlib.sha256).digest())
        self.assertNotIn("VERYSECURE", p.stdout + p.stderr)
        again = subprocess.run([OTA, "hash-password"], input="VERYSECURE\n",
                               capture_output=True, text=True, timeout=60)
        self.assertNotEqual(again.stdout, p.stdout)  # a fresh salt every time
        self.assertTrue(again.stdout.startswith("SCRAM-SHA-256$10000:"))
        empty = subprocess.run([OTA, "hash-password"], input="\n", capture_output=True,
                               text=True, timeout=60)
        self.assertEqual(empty.returncode, 6)


class OtaBootCliTest(unittest.TestCase):
    def boot(self, *args):
        return subprocess.run([OTA_BOOT] + list(args), capture_output=True, text=True,
                              timeout=60)

    def test_help_and_usage(self):
        self.assertEqual(self.boot("--help").returncode, 0)
        for cmd in ("flash", "run", "status", "safe-mode"):
            p = self.boot(cmd, "--help")
            self.assertEqual(p.returncode, 0)
            self.assertIn("--state", p.stdout)
        self.assertEqual(self.boot().returncode, 2)
        self.assertEqual(self.boot("status").returncode, 2)  # no --state
        self.assertEqual(self.boot("reticulate", "--state", "x").returncode, 2)

    def test_flash_and_status(self):
        with tempfile.TemporaryDirectory() as d:
            state = os.path.join(d, "node")
            p = self.boot("flash", "--state", state, DEMO_NODE)
            self.assertEqual(p.returncode, 0, p.stderr)
            st = json.loads(self.boot("status", "--state", state).stdout)
            want = hashlib.sha256(open(DEMO_NODE, "rb").read()).hexdigest()
            self.assertEqual(st["active_slot"], "a")
            self.assertEqual(st["active_sha256"], want)
            self.assertEqual(st["boot_attempts"], 0)
            self.assertFalse(st["safe_mode"])
            self.assertFalse(st["slots"]["b"]["present"])
            junk = os.path.join(d, "junk")
            with open(junk, "w") as f:
                f.write("not a program")
            p = self.boot("flash", "--state", state, junk)
            self.assertEqual(p.returncode, 1)
            self.assertIn("not an executable", p.stderr)
            p = self.boot("status", "--state", os.path.join(d, "missing"))
            self.assertEqual(p.returncode, 1)
            self.assertIn("ota-boot flash", p.stderr)


if __name__ == "__main__":
    unittest.main()
