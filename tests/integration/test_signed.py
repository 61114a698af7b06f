"""Signed images end to end: `ota keygen` / `ota sign` / `ota image info`, and a node
started with --verification-key that activates only images signed by a key it trusts,
whichever transport brings them (native, gzip or not; ArduinoOTA). Every refusal leaves
the running image and the boot state as they were. The keys are also made with the
openssl command line, so the tool is not only checked against itself."""
import os
import shutil
import subprocess
import sys
import tempfile
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from nodelib import DEMO_NODE, Node, free_port, run_ota, sha256_file  # noqa: E402

SECTOR = 4096


class SignedCase(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.dir = tempfile.mkdtemp(prefix="ota-signed-")
        d = cls.dir
        cls.ec1, cls.ec2, cls.rsa = (os.path.join(d, n) for n in ("ec1.pem", "ec2.pem",
                                                                  "rsa.pem"))
        for key, scheme in ((cls.ec1, "ecdsa256"), (cls.rsa, "rsa3072")):
            rc, out, err = run_ota("keygen", "--scheme", scheme, key)
            assert rc == 0, err
        # a key made by openssl, not by us
        subprocess.run(["openssl", "genpkey", "-algorithm", "EC", "-pkeyopt",
                        "ec_paramgen_curve:P-256", "-out", cls.ec2], check=True,
                       capture_output=True)
        subprocess.run(["openssl", "pkey", "-in", cls.ec2, "-pubout", "-out",
                        os.path.join(d, "ec2.pub.pem")], check=True, capture_output=True)
        cls.plain = os.path.join(d, "demo-node")
        shutil.copy(DEMO_NODE, cls.plain)
        cls.by_ec1 = cls.sign(cls.ec1)
        cls.by_ec2 = cls.sign(cls.ec2)
        cls.by_rsa = cls.sign(cls.rsa)
        cls.by_both = cls.sign(cls.ec2, src=cls.by_ec1)  # rotation bridge: ec1 then ec2

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.dir, ignore_errors=True)

    @classmethod
    def sign(cls, *keys, src=None):
        src = src or cls.plain
        out = os.path.join(cls.dir, "%s+%s.bin" % (os.path.basename(src),
                                                   "+".join(os.path.basename(k) for k in keys)))
        args = []
        for k in keys:
            args += ["--key", k]
        rc, so, err = run_ota("sign", *args, "-o", out, src)
        assert rc == 0, err
        return out

    def variant(self, src, offset, name):
        """A copy of src with one bit flipped at offset (negative: from the end)."""
        with open(src, "rb") as f:
            data = bytearray(f.read())
        data[offset] ^= 0x01
        path = os.path.join(self.dir, name)
        with open(path, "wb") as f:
            f.write(data)
        return path

    def node(self, *keys, flags=()):
        args = ["--no-password"]
        for k in keys:
            args += ["--verification-key", k]
        return Node(self, *args, *flags)

    def assert_refused(self, node, image, *args):
        rc, out, err = run_ota("upload", "--device", "127.0.0.1", "--port", node.port,
                               *args, image)
        self.assertEqual(rc, 5, err)
        self.assertIn("not signed by a trusted key", err)
        st = node.status()
        self.assertEqual(st["active_sha256"], sha256_file(DEMO_NODE))
        self.assertEqual(node.count(r"\[I\]\[ota\] listening on"), 1)  # never rebooted
        return err

    def assert_accepted(self, node, image, *args, boots=2):
        rc, out, err = run_ota("upload", "--device", "127.0.0.1", "--port", node.port,
                               *args, image)
        self.assertEqual(rc, 0, err + node.log()[-2000:])
        node.assert_runs(image, boots)


class SigningToolTest(SignedCase):
    def test_keygen_refuses_to_overwrite_and_keeps_the_key_private(self):
        self.assertEqual(os.stat(self.ec1).st_mode & 0o777, 0o600)
        rc, out, err = run_ota("keygen", "--scheme", "ecdsa256", self.ec1)
        self.assertEqual(rc, 6, err)
        self.assertIn("refusing to overwrite", err)
        rc, out, err = run_ota("keygen", os.path.join(self.dir, "x.pem"))
        self.assertEqual(rc, 2, err)
        self.assertIn("--scheme", err)

    def test_image_info(self):
        rc, out, err = run_ota("image", "info", self.by_both)
        self.assertEqual(rc, 0, out + err)
        self.assertEqual(out.count("ecdsa256, key digest"), 2, out)
        self.assertIn("every block is valid", out)
        rc, out, err = run_ota("key-digest", self.ec1)
        digest = out.split()[0]
        self.assertIn(digest, run_ota("image", "info", self.by_ec1)[1])
        rc, out, err = run_ota("image", "info", self.plain)
        self.assertEqual(rc, 8, out)
        self.assertIn("signature:  none", out)
        bad = self.variant(self.by_ec1, 1000, "info-flipped.bin")
        rc, out, err = run_ota("image", "info", bad)
        self.assertEqual(rc, 8, out)
        self.assertIn("NOT VALID", out)

    def test_signed_image_is_the_image_padded_plus_one_sector(self):
        plain = os.path.getsize(self.plain)
        signed = os.path.getsize(self.by_ec1)
        self.assertEqual(signed % SECTOR, 0)
        self.assertEqual(signed, (plain + SECTOR - 1) // SECTOR * SECTOR + SECTOR)
        with open(self.plain, "rb") as a, open(self.by_ec1, "rb") as b:
            self.assertEqual(b.read(plain), a.read())


class SignedNodeTest(SignedCase):
    def test_trusted_signature_accepted_gzip_and_plain(self):
        node = self.node(self.ec1, flags=("--heartbeat-ms", "200"))
        self.assertIn("signed images only: trusted key 1 of 1", node.log())
        rc, out, err = run_ota("upload", "--device", "127.0.0.1", "--port", node.port,
                               self.by_ec1)
        self.assertEqual(rc, 0, err + node.log()[-2000:])
        self.assertIn("gzip", out)  # verified on the inflated image
        node.assert_runs(self.by_ec1, 2)
        self.assert_accepted(node, self.by_ec1, "--no-compress", boots=3)

    def test_refusals_leave_the_node_as_it_was(self):
        node = self.node(os.path.join(self.dir, "ec1.pub.pem"))
        size = os.path.getsize(self.by_ec1)
        cases = {
            "unsigned": self.plain,
            "another key": self.by_ec2,
            "image bit flipped": self.variant(self.by_ec1, 5000, "img-flip.bin"),
            "signature bit flipped": self.variant(self.by_ec1, size - SECTOR + 120,
                                                  "sig-flip.bin"),
            "CRC bit flipped": self.variant(self.by_ec1, size - SECTOR + 1196, "crc-flip.bin"),
            "wrong scheme": self.by_rsa,
        }
        truncated = os.path.join(self.dir, "truncated.bin")
        with open(self.by_ec1, "rb") as f, open(truncated, "wb") as t:
            t.write(f.read()[:-2048])
        cases["truncated sector"] = truncated
        for name, image in cases.items():
            with self.subTest(case=name):
                self.assert_refused(node, image, "--no-compress")
        self.assertIn("image refused: not signed by a trusted key", node.log())
        # and after all that, a good one still goes in
        self.assert_accepted(node, self.by_ec1)

    def test_rotation(self):
        old_only = self.node(self.ec1)
        self.assert_accepted(old_only, self.by_both)
        new_only = self.node(self.ec2)
        self.assert_refused(new_only, self.by_ec1)
        self.assert_accepted(new_only, self.by_both)
        both = self.node(self.ec1, self.ec2, self.rsa)
        self.assert_accepted(both, self.by_rsa)

    def test_images_signed_by_openssl_alone(self):
        """The node takes images signed without our tools: sigv2.py assembles the
        sector with python's stdlib and signs with the openssl command line."""
        import sigv2
        node = self.node(self.ec2, self.rsa)
        for key, name in ((self.ec2, "openssl-ec.bin"), (self.rsa, "openssl-rsa.bin")):
            with self.subTest(key=key):
                out = os.path.join(self.dir, name)
                sigv2.sign(self.plain, out, key)
                rc, so, err = run_ota("image", "info", out)
                self.assertEqual(rc, 0, so + err)
                boots = 2 if name == "openssl-ec.bin" else 3
                self.assert_accepted(node, out, boots=boots)

    def test_arduino_transport(self):
        port = free_port()
        node = self.node(self.ec1, flags=("--arduino-port", str(port)))
        rc, out, err = run_ota("upload", "--device", "127.0.0.1", "--port", port,
                               "--protocol", "arduino", "--auth", "none", self.plain)
        self.assertNotEqual(rc, 0, err)
        self.assertIn("image not signed by a trusted key", err)
        self.assertEqual(node.status()["active_sha256"], sha256_file(DEMO_NODE))
        rc, out, err = run_ota("upload", "--device", "127.0.0.1", "--port", port,
                               "--protocol", "arduino", "--auth", "none", self.by_ec1)
        self.assertEqual(rc, 0, err + node.log()[-2000:])
        node.assert_runs(self.by_ec1, 2)

    def test_bad_key_file_is_refused_at_start(self):
        junk = os.path.join(self.dir, "junk.pem")
        with open(junk, "w") as f:
            f.write("not a key\n")
        p = subprocess.run([DEMO_NODE, "--verification-key", junk], capture_output=True,
                           text=True, timeout=30)
        self.assertNotEqual(p.returncode, 0)
        self.assertIn("not a PEM key", p.stderr)


class AntiRollbackTest(SignedCase):
    """secure_version of the image descriptor: the node's minimum rises when an image
    is confirmed (not when merely activated), and lower ones are refused."""

    def versioned(self, version):
        out = os.path.join(self.dir, "sv%d.bin" % version)
        rc, so, err = run_ota("sign", "--key", self.ec1, "--security-version", version, "-o",
                              out, self.plain)
        self.assertEqual(rc, 0, err)
        return out

    def minimum(self, node):
        with open(os.path.join(node.dir, "boot.state")) as f:
            for line in f:
                if line.startswith("min_secure_version="):
                    return int(line.split("=")[1])
        return 0

    def test_minimum_rises_on_confirmation_and_refuses_older(self):
        node = self.node(self.ec1, flags=("--boot-is-good-after-ms", "300"))
        sv2, sv1 = self.versioned(2), self.versioned(1)
        rc, out, err = run_ota("image", "info", sv2)
        self.assertIn("secure_version 2", out)
        self.assert_accepted(node, sv2)
        self.assertIn("image descriptor: version 1.0.0, secure_version 2", node.log())
        node.wait_for(lambda: "anti-rollback: images below this security version" in node.log(),
                      30, "the confirmation that raises the minimum")
        self.assertEqual(self.minimum(node), 2)
        st = node.status()
        self.assertEqual(st["min_security_version"], 2)
        self.assertEqual(st["slots"][st["active_slot"]]["security_version"], 2)
        rc, out, err = run_ota("upload", "--device", "127.0.0.1", "--port", node.port, sv1)
        self.assertEqual(rc, 5, err)
        self.assertIn("security version", err)
        self.assertIn("below the minimum", err)
        self.assertEqual(node.status()["active_sha256"], sha256_file(sv2))
        self.assertIn("image refused: its security version is below the node's minimum",
                      node.log())
        self.assert_accepted(node, sv2, boots=3)  # equal is fine
        # the bootloader keeps the minimum too: a re-flash keeps it, and an older image
        # flashed by hand does not start
        node.stop()
        from nodelib import OTA_BOOT
        p = subprocess.run([OTA_BOOT, "flash", "--state", node.dir, sv1], capture_output=True,
                           text=True, timeout=60)
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertEqual(node.status()["min_security_version"], 2)
        # (slot b still holds the version-2 image: that one boots instead)
        log = os.path.join(self.dir, "boot-rollback.log")
        with open(log, "w") as out:
            p = subprocess.Popen([OTA_BOOT, "run", "--state", node.dir, "--", "--no-password",
                                  "--bind", "127.0.0.1", "--port", str(free_port())],
                                 stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
        try:
            import time
            end = time.monotonic() + 30
            text = ""
            while time.monotonic() < end and "image descriptor" not in text:
                time.sleep(0.1)
                with open(log) as f:
                    text = f.read()
        finally:
            os.killpg(p.pid, 9)
            p.wait(timeout=10)
        self.assertIn("has security version 1, below the minimum 2 (anti-rollback)", text)
        self.assertIn("image descriptor: version 1.0.0, secure_version 2", text)

    def test_unconfirmed_image_still_rolls_back(self):
        """A newer image that never confirms itself (it crashes at start) rolls back to
        the confirmed one, whose security version is below the newer one's: the
        minimum rose only with the confirmation, so the rollback is allowed."""
        from nodelib import CRASHER
        node = self.node(self.ec1, flags=("--boot-is-good-after-ms", "300"))
        sv2 = self.versioned(2)
        self.assert_accepted(node, sv2)
        node.wait_for(lambda: self.minimum(node) == 2, 30, "the minimum rising to 2")
        bad = os.path.join(self.dir, "crasher-sv3.bin")
        rc, so, err = run_ota("sign", "--key", self.ec1, "--security-version", "3", "-o", bad,
                              CRASHER)
        self.assertEqual(rc, 0, err)
        rc, out, err = run_ota("upload", "--device", "127.0.0.1", "--port", node.port, bad)
        self.assertEqual(rc, 0, err)
        node.wait_for(lambda: "rolling back to slot" in node.log(), 60, "the rollback")
        node.wait_listening(3)
        st = node.status()
        self.assertEqual(st["active_sha256"], sha256_file(sv2))
        self.assertEqual(st["min_security_version"], 2)  # never raised to 3
        self.assertFalse(st["pending"])

    def test_activation_alone_does_not_raise_the_minimum(self):
        node = self.node(self.ec1)  # boot_is_good_after: the 60 s default
        self.assert_accepted(node, self.versioned(3))
        self.assertEqual(self.minimum(node), 0)  # unconfirmed: a rollback stays possible
        self.assert_accepted(node, self.versioned(1), boots=3)

    def test_sign_security_version_needs_a_descriptor_and_an_unsigned_image(self):
        junk = os.path.join(self.dir, "nodesc.bin")
        with open(junk, "wb") as f:
            f.write(os.urandom(10000))
        rc, out, err = run_ota("sign", "--key", self.ec1, "--security-version", "1", junk)
        self.assertEqual(rc, 6, err)
        self.assertIn("has no image descriptor", err)
        rc, out, err = run_ota("sign", "--key", self.ec1, "--security-version", "1",
                               self.by_ec1)
        self.assertEqual(rc, 6, err)
        self.assertIn("is signed already", err)


class NodeFileTest(SignedCase):
    """signed_ota_verification: in the node's YAML, where ESPHome has it (esp32:
    framework: advanced:) or at the top level (platforms without a framework block)."""

    def yaml(self, name, body):
        path = os.path.join(self.dir, name)
        with open(path, "w") as f:
            f.write(body)
        return path

    def host_yaml(self, name, port, signed):
        return self.yaml(name, "esphome:\n  name: demo-node\nhost:\n"
                         "ota:\n  - platform: esphome\n    port: %d\n"
                         "signed_ota_verification:\n%s" % (port, signed))

    def digest(self, key):
        return run_ota("key-digest", key)[1].split()[0]

    def test_config_reads_both_places_and_codegen_compiles_the_digests(self):
        esp32 = self.yaml("esp32.yaml", "esphome:\n  name: porch\nesp32:\n  board: esp32dev\n"
                          "  framework:\n    type: esp-idf\n    advanced:\n"
                          "      signed_ota_verification:\n        signing_scheme: ecdsa256\n"
                          "        verification_keys:\n          - ec1.pub.pem\n"
                          "          - \"%s\"\nota:\n  - platform: esphome\n"
                          % self.digest(self.ec2))
        rc, out, err = run_ota("config", esp32)
        self.assertEqual(rc, 0, err)
        self.assertIn("signed images:      required (ecdsa256), 2 trusted keys", out)
        self.assertIn("verification_keys[0]" + self.digest(self.ec1), out.replace(" ", ""))
        rc, out, err = run_ota("codegen", esp32)
        self.assertEqual(rc, 0, err)
        self.assertIn("#define OTA_NODE_N_TRUSTED_KEYS 2u", out)
        first = bytes.fromhex(self.digest(self.ec1))
        self.assertIn(",".join("0x%02x" % b for b in first), out)
        top = self.host_yaml("top.yaml", 3232, "  signing_key: ec1.pem\n")
        rc, out, err = run_ota("config", top)
        self.assertEqual(rc, 0, err)
        self.assertIn("signed images:      required (rsa3072), 1 trusted key", out)
        self.assertIn("upload signs with %s" % self.ec1, out)

    def test_config_errors(self):
        cases = {
            "  signing_scheme: ecdsa_v1\n  signing_key: ec1.pem\n": "Secure Boot V1",
            "  verification_key: ec1.pub.pem\n": "verification_key is only used with",
            "  verification_keys: [\"abcd\"]\n": "must be exactly 64 hex characters",
            "  verification_keys: [ec1.pub.pem, ec1.pem]\n": "must be unique",
            "  verification_keys: [a.pem, b.pem, c.pem, d.pem]\n": "1 to 3 keys",
            "  verification_keys: [nosuch.pem]\n": "nosuch.pem",
            "  signing_key: ec1.pem\n  verification_keys: [ec1.pub.pem]\n": "one or the other",
        }
        for body, words in cases.items():
            with self.subTest(body=body):
                rc, out, err = run_ota("config", self.host_yaml("bad.yaml", 3232, body))
                self.assertEqual(rc, 7, out + err)
                self.assertIn(words, err)

    def test_upload_refuses_unsigned_before_connecting(self):
        port = free_port()  # nothing listens: the refusal must come first
        path = self.host_yaml("refuse.yaml", port, "  verification_keys: [ec1.pub.pem]\n")
        rc, out, err = run_ota("upload", path, self.plain, "--device", "127.0.0.1")
        self.assertEqual(rc, 6, err)
        self.assertIn("requires signed images (signed_ota_verification) and %s is not signed "
                      "by a key it trusts: nothing was sent" % self.plain, err)
        rc, out, err = run_ota("upload", path, self.by_ec2, "--device", "127.0.0.1")
        self.assertEqual(rc, 6, err)  # signed, but by a key the YAML does not list

    def test_upload_and_run_sign_on_the_fly(self):
        node = self.node(self.ec1)
        path = self.host_yaml("sign.yaml", node.port, "  signing_key: ec1.pem\n")
        rc, out, err = run_ota("upload", path, self.plain, "--device", "127.0.0.1")
        self.assertEqual(rc, 0, err)
        self.assertIn("Signed %s with %s" % (self.plain, self.ec1), err)
        node.wait_listening(2)
        self.assertNotEqual(node.status()["active_sha256"], sha256_file(DEMO_NODE))
        # an image signed already by the trusted key goes as it is
        rc, out, err = run_ota("upload", path, self.by_ec1, "--device", "127.0.0.1")
        self.assertEqual(rc, 0, err)
        self.assertIn("is signed by a key the node trusts", err)
        node.assert_runs(self.by_ec1, 3)


if __name__ == "__main__":
    unittest.main()
