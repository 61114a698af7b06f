"""Issue 12 items 1 and 8, played as the attacker who got hold of a firmware image, a
slot file or the process list: nothing that authenticates may be in there.

The attacker's tools are `strings`-like scans for the ArduinoOTA hashes of the
password (MD5hex, SHA256hex, as hex text either case, and as raw bytes) and the
password itself; where ArduinoOTA is configured the one hash it needs is there, and
the tools say so loudly."""
import hashlib
import os
import stat
import subprocess
import sys
import tempfile
import textwrap
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import espota_client  # noqa: E402
from nodelib import (DEMO_NODE, OTA_BOOT, Node, free_port, make_image,  # noqa: E402
                     password_file, read_bytes, run_ota)

PASSWORD = "VERYSECURE"  # examples/demo-node/node.yaml's


def derived(password):
    """Every form of a password-equivalent value an attacker would grep for."""
    md5 = hashlib.md5(password.encode()).digest()
    sha = hashlib.sha256(password.encode()).digest()
    forms = {}
    for name, d in (("md5", md5), ("sha256", sha)):
        forms[name + " raw"] = d
        forms[name + " hex"] = d.hex().encode()
        forms[name + " HEX"] = d.hex().upper().encode()
    forms["password"] = password.encode()
    return forms


class FirmwareHoldsNoPasswordEquivalent(unittest.TestCase):
    def assert_clean(self, data, where, allow=()):
        for name, needle in derived(PASSWORD).items():
            if name.split()[0] in allow:
                continue
            self.assertNotIn(needle, data, "%s holds the %s of the password" % (where, name))

    def test_demo_node_binary(self):
        with open(DEMO_NODE, "rb") as f:
            data = f.read()
        self.assert_clean(data, DEMO_NODE)
        self.assertIn(b"SCRAM-SHA-256$", data)  # the salted verifier is what is there

    def test_slot_files_state_dir_and_their_modes(self):
        node = Node(self)
        img = make_image(self, seed=11)
        rc, _, err = node.upload(img, "--password", PASSWORD)
        self.assertEqual(rc, 0, err)
        node.assert_runs(img, 2)
        for slot in ("a", "b"):
            path = os.path.join(node.dir, "slot_%s.bin" % slot)
            with open(path, "rb") as f:
                self.assert_clean(f.read(), path)
            mode = stat.S_IMODE(os.stat(path).st_mode)
            self.assertEqual(mode & 0o077, 0, "%s is mode %o: others can read it" % (path, mode))
        for name in os.listdir(node.dir):
            if name.startswith("boot.state"):
                mode = stat.S_IMODE(os.stat(os.path.join(node.dir, name)).st_mode)
                self.assertEqual(mode & 0o077, 0, "%s is mode %o" % (name, mode))

    def test_ota_boot_creates_the_state_dir_owner_only(self):
        parent = tempfile.mkdtemp(prefix="ota-perm-")
        self.addCleanup(subprocess.run, ["rm", "-rf", parent])
        os.chmod(parent, 0o755)
        state = os.path.join(parent, "node")
        p = subprocess.run([OTA_BOOT, "flash", "--state", state, DEMO_NODE],
                           capture_output=True, text=True)
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertEqual(stat.S_IMODE(os.stat(state).st_mode), 0o700)
        self.assertEqual(stat.S_IMODE(os.stat(os.path.join(state, "slot_a.bin")).st_mode), 0o700)
        # an existing directory others can read gets a warning, not a silent pass
        os.chmod(state, 0o755)
        p = subprocess.run([OTA_BOOT, "flash", "--state", state, DEMO_NODE],
                           capture_output=True, text=True)
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertIn("readable by others", p.stderr)


class CodegenWritesOnlyWhatIsNeeded(unittest.TestCase):
    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix="ota-secrets-")
        self.addCleanup(subprocess.run, ["rm", "-rf", self.dir])

    def yaml(self, ota_extra=""):
        path = os.path.join(self.dir, "node.yaml")
        with open(path, "w") as f:
            f.write(textwrap.dedent("""\
                esphome:
                  name: n1
                esp8266:
                  board: d1_mini
                ota:
                  - platform: esphome
                    password: %s
                """) % PASSWORD + "".join("    %s\n" % l for l in ota_extra.splitlines()))
        return path

    def codegen(self, path):
        rc, out, err = run_ota("codegen", path)
        self.assertEqual(rc, 0, err)
        return out.encode(), err

    def test_without_arduino_no_hash_at_all(self):
        out, err = self.codegen(self.yaml())
        for name, needle in derived(PASSWORD).items():
            self.assertNotIn(needle, out, "codegen wrote the %s" % name)
        self.assertIn(b"#define OTA_NODE_ARDUINO_HASH NULL", out)
        self.assertNotIn("warning", err)
        rc, _, err = run_ota("config", self.yaml())
        self.assertEqual(rc, 0, err)
        self.assertNotIn("warning", err)

    def test_with_arduino_only_its_one_hash_and_a_warning(self):
        for variant, other in (("sha256", "md5"), ("md5", "sha256")):
            with self.subTest(variant=variant):
                path = self.yaml("arduino_auth: %s\narduino_port: 8266" % variant)
                out, err = self.codegen(path)
                forms = derived(PASSWORD)
                self.assertIn(forms[variant + " hex"], out)
                for name, needle in forms.items():
                    if not name.startswith(variant + " hex"):
                        self.assertNotIn(needle, out, "codegen wrote the %s" % name)
                self.assertIn(b"IS the password", out)  # the header says it plainly
                self.assertIn("password-equivalent", err)
                rc, cout, cerr = run_ota("config", path)
                self.assertEqual(rc, 0, cerr)
                self.assertIn("password-equivalent", cerr)
                self.assertIn("arduino ota:        UDP port 8266", cout)

    def test_arduino_auth_without_password_is_an_error(self):
        path = os.path.join(self.dir, "np.yaml")
        with open(path, "w") as f:
            f.write("esphome:\n  name: n2\nhost:\nota:\n  - platform: esphome\n"
                    "    arduino_auth: md5\n")
        rc, _, err = run_ota("config", path)
        self.assertEqual(rc, 7)
        self.assertIn("arduino_auth needs a password", err)


class PasswordNotOnTheCommandLine(unittest.TestCase):
    def test_demo_node_password_file(self):
        secret = "file-only-secret"
        pw = password_file(self, secret + "\n")
        node = Node(self, "--password-file", pw)
        with open("/proc/%d/cmdline" % node.firmware_pid(), "rb") as f:
            cmdline = f.read()
        self.assertNotIn(secret.encode(), cmdline)  # what every local user can read
        img = make_image(self, seed=12)
        rc, _, err = node.upload(img, "--password", secret, "--auth", "sha256")
        self.assertEqual(rc, 0, err)
        node.assert_runs(img, 2)

    def test_arduino_hash_from_a_file_keeps_the_verifier(self):
        pw = password_file(self, PASSWORD + "\n")
        port = free_port()
        node = Node(self, "--arduino-port", str(port), "--arduino-password-file", pw)
        self.assertIn("auth: salted", node.log())  # the native side still salted only
        img = make_image(self, seed=13)
        self.assertEqual(espota_client.upload(port, read_bytes(img), PASSWORD)[0], "OK")
        node.assert_runs(img, 2)

    def test_bad_password_files_are_refused_clearly(self):
        empty = password_file(self, "\n")
        for args, text in ((["--password-file", empty], "empty first line"),
                           (["--password-file", "/nonexistent/pw"], "cannot be read"),
                           (["--arduino-port", "9999"], "--arduino-password-file")):
            with self.subTest(args=args):
                p = subprocess.run([DEMO_NODE] + args, capture_output=True, text=True,
                                   timeout=30, env=dict(os.environ, OTA_STATE_DIR=tempfile.gettempdir()))
                self.assertEqual(p.returncode, 2, p.stderr)
                self.assertIn(text, p.stderr)


if __name__ == "__main__":
    unittest.main()
