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

    def test_bad_node_file_exit_7(self):
        with tempfile.TemporaryDirectory() as d:
            bad = os.path.join(d, "node.yaml")
            with open(bad, "w") as f:
                f.write("esphome:\n  name: [x\n")
            no_ota = os.path.join(d, "plain.yaml")
            with open(no_ota, "w") as f:
                f.write("esphome:\n  name: plain\nhost:\n")
            fw = os.path.join(d, "fw.bin")
            with open(fw, "wb") as f:
                f.write(b"\xe9" + b"\0" * 63)
            for args in (("upload", bad, fw), ("upload", no_ota, fw), ("logs", bad),
                         ("run", no_ota, fw), ("codegen", no_ota), ("config", bad)):
                rc, _, err = run_ota(*args)
                self.assertEqual(rc, 7, (args, err))
                self.assertIn(os.path.basename(args[1]), err)

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

    def test_local_name_nobody_answers(self):
        # a .local name nothing resolves: the system resolver fails, then our own mDNS
        # query (sent on the real interfaces, if any) gets no answer within 2 s
        name = "nosuch-%d.local" % os.getpid()
        rc, _, err = run_ota("upload", "--device", name, "--timeout", "5", DEMO_NODE)
        self.assertEqual(rc, 3, err)
        self.assertIn("error: host '%s' does not resolve" % name, err)
        self.assertRegex(err, r"(?m)^note: (no node answered an mDNS query for %s within 2 s"
                              r"|no mDNS query could be sent)" % name)
        self.assertRegex(err, r"(?m)^hint: .*ota discover.*IP address")
        # any case, with the root's dot; logs looks the name up the same way
        rc, _, err = run_ota("logs", "--device", name.upper() + ".", "--follow-seconds", "1")
        self.assertEqual(rc, 3, err)
        self.assertIn("does not resolve", err)
        self.assertIn("mDNS", err)

    def test_discover_help_and_usage(self):
        rc, out, _ = run_ota("--help")
        self.assertRegex(out, r"(?m)^  discover ")
        rc, out, _ = run_ota("discover", "--help")
        self.assertEqual(rc, 0)
        for word in ("--timeout", "--json", "_ota._tcp", "_arduino._tcp", "PASSWORD"):
            self.assertIn(word, out)
        for bad in ("abc", "0", "-1", "1e3", "inf", "nan", "0x10", "61", "", "1.2.3"):
            rc, out, err = run_ota("discover", "--timeout", bad)
            self.assertEqual(rc, 2, (bad, err))
            self.assertIn("--timeout takes seconds", err)
            self.assertIn("'%s'" % bad, err)
            self.assertIn("--help", err)
            self.assertEqual(out, "")
        for args in (["--timeout"], ["--bogus"], ["extra"]):
            rc, _, err = run_ota("discover", *args)
            self.assertEqual(rc, 2, (args, err))
            self.assertIn("ota discover --help", err)

    def test_discover_nobody_answers(self):
        # nothing here advertises OTA, so the tool says so and exits 0; should a node on
        # this machine's network answer after all, the table/JSON must still be right
        rc, out, err = run_ota("discover", "--timeout", "0.4", timeout=60)
        self.assertEqual(rc, 0, err)
        if "no node answered: no mDNS query could be sent" in out:
            pass  # a machine without a network interface (a bare container)
        elif "node answered" in out:
            self.assertRegex(out, r"^no node answered within 0\.4 s")
            self.assertRegex(out, r"(?m)^hint: .*same network")
            self.assertRegex(out, r"(?m)^hint: .*UDP .*5353")
        else:
            lines = out.splitlines()
            self.assertEqual(lines[0].split(),
                             ["NAME", "ADDRESS", "PORT", "VERSION", "PLATFORM", "PASSWORD"])
            self.assertRegex(lines[-1], r"^\d+ nodes? found$")
        rc, out, err = run_ota("discover", "--timeout", "0.4", "--json", timeout=60)
        self.assertEqual(rc, 0, err)
        nodes = json.loads(out)
        self.assertIsInstance(nodes, list)
        if not nodes:
            self.assertEqual(out.strip(), "[]")
            self.assertRegex(err, r"^no node answered( within 0\.4 s|: no mDNS query)")
        keys = {"name", "host", "address", "addresses", "port", "arduino_port", "version",
                "platform", "password", "auth", "services"}
        for n in nodes:
            self.assertEqual(set(n), keys)
        self.assertEqual([n["name"] for n in nodes],
                         sorted((n["name"] for n in nodes), key=lambda x: (x.lower(), x)))

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

    def test_version_of_every_binary(self):
        ota = run_ota("--version")[1].strip()
        self.assertRegex(ota, r"^ota \d+\.\d+\.\d+$")
        version = ota.split()[1]
        self.assertEqual(self.boot("--version").stdout.strip(), "ota-boot " + version)
        p = subprocess.run([DEMO_NODE, "--version"], capture_output=True, text=True, timeout=30)
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertTrue(p.stdout.startswith("demo-node %s " % version), p.stdout)

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
            p = self.boot("flash", "--state", state, os.path.join(d, "nosuch"))
            self.assertEqual(p.returncode, 1)
            self.assertIn("nosuch: No such file or directory", p.stderr)
            p = self.boot("status", "--state", os.path.join(d, "missing"))
            self.assertEqual(p.returncode, 1)
            self.assertIn("ota-boot flash", p.stderr)


if __name__ == "__main__":
    unittest.main()
