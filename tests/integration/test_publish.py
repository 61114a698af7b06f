"""`ota publish` and `ota manifest check`: the directory a web server serves to nodes
that pull their updates (docs/protocol.md#manifest). The manifest is read with
Python's json, the image's size and hashes with hashlib, and every signature (image
and manifest.json.sig) with the openssl command line (sigv2.verify_sector), so the
tool is not only checked against itself. Also: a new --rollout rewrites the manifest
and keeps the image file, a published version is never overwritten with other
bytes, a tampered manifest fails the check, and the rollout bucket `ota manifest
check --node` prints is the documented formula."""
import hashlib
import json
import os
import platform
import re
import shutil
import stat
import struct
import sys
import tempfile
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import sigv2  # noqa: E402
from nodelib import DEMO_NODE, run_ota  # noqa: E402

SECTOR = 4096
ARCH = {"x86_64": "X86_64", "aarch64": "AARCH64", "i686": "X86", "i386": "X86",
        "armv7l": "ARM", "riscv64": "RISCV64"}
FAMILY = "LINUX-" + ARCH.get(platform.machine(), "UNKNOWN")


def bucket(name, version):
    """docs/protocol.md#manifest-rollout, in Python."""
    d = hashlib.sha256(name.encode() + b"\0" + version.encode()).digest()
    return int.from_bytes(d[:4], "big") % 100


def read(path):
    with open(path, "rb") as f:
        return f.read()


class PublishCase(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.dir = tempfile.mkdtemp(prefix="ota-publish-")
        cls.ec = os.path.join(cls.dir, "ec.pem")
        cls.rsa = os.path.join(cls.dir, "rsa.pem")
        for key, scheme in ((cls.ec, "ecdsa256"), (cls.rsa, "rsa3072")):
            rc, out, err = run_ota("keygen", "--scheme", scheme, key)
            assert rc == 0, err
        cls.ec_pub = os.path.join(cls.dir, "ec.pub.pem")
        cls.rsa_pub = os.path.join(cls.dir, "rsa.pub.pem")
        cls.other = os.path.join(cls.dir, "other.pem")
        rc, out, err = run_ota("keygen", "--scheme", "ecdsa256", cls.other)
        assert rc == 0, err
        cls.image = os.path.join(cls.dir, "demo-node")
        shutil.copy(DEMO_NODE, cls.image)

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.dir, ignore_errors=True)

    @staticmethod
    def versioned(data, version, secure_version=None):
        """data with its image descriptor's version (and secure_version) set, as
        publish sets them on an unsigned image (ota/app_desc.h: magic, secure_version at
        +4, version at +16, 32 bytes)."""
        # the magic word, secure_version, 8 zero bytes, a printable version (the
        # scanner's rule: the magic alone also occurs in the code that looks for it)
        m = re.search(re.escape(struct.pack("<I", 0xABCD5432)) + b"....\\x00{8}[ -~]{1,31}\\x00",
                      data, re.S)
        assert m is not None
        at = m.start()
        b = bytearray(data)
        b[at + 16:at + 48] = version.encode().ljust(32, b"\0")
        if secure_version is not None:
            b[at + 4:at + 8] = struct.pack("<I", secure_version)
        return bytes(b)

    def out_dir(self):
        d = tempfile.mkdtemp(prefix="pub-", dir=self.dir)
        os.rmdir(d)  # publish creates it
        return d

    def publish(self, out, version, *args, image=None, rc=0):
        code, so, se = run_ota("publish", "--out", out, "--version", version, *args,
                               image or self.image)
        self.assertEqual(code, rc, "stdout: %s\nstderr: %s" % (so, se))
        return so, se

    def check(self, target, *args):
        return run_ota("manifest", "check", *args, target)

    def manifest(self, out):
        with open(os.path.join(out, "manifest.json")) as f:
            return json.load(f)

    def assert_image_matches(self, out, m, version):
        """The manifest's build for FAMILY describes the file it names."""
        self.assertEqual(m["version"], version)
        self.assertEqual(len(m["builds"]), 1)
        build = m["builds"][0]
        self.assertEqual(build["chipFamily"], FAMILY)
        ota = build["ota"]
        self.assertEqual(ota["path"], "firmware-%s.bin" % version)
        data = read(os.path.join(out, ota["path"]))
        self.assertEqual(ota["size"], len(data))
        self.assertEqual(ota["md5"], hashlib.md5(data).hexdigest())
        self.assertEqual(ota["sha256"], hashlib.sha256(data).hexdigest())
        return data

    def assert_no_temp_files(self, out):
        self.assertEqual(sorted(f for f in os.listdir(out) if f.startswith(".")), [])

    def test_unsigned(self):
        out = self.out_dir()
        so, se = self.publish(out, "2.0.0", "--summary", "caf\u00e9 \"fix\"",
                              "--release-url", "https://example.com/r/2.0.0")
        self.assertIn("wrote %s/firmware-2.0.0.bin" % out, so)
        self.assertIn("wrote %s/manifest.json: version 2.0.0 for %s, rollout 100%%" % (out, FAMILY),
                      so)
        m = self.manifest(out)
        data = self.assert_image_matches(out, m, "2.0.0")
        # unsigned: the bytes as given, the descriptor saying which release they are
        self.assertEqual(data, self.versioned(read(self.image), "2.0.0"))
        self.assertIn("image descriptor: version 2.0.0", so)
        self.assertEqual(m["name"], "demo-node")  # from the image descriptor
        ota = m["builds"][0]["ota"]
        self.assertEqual(ota["rollout"], 100)
        self.assertEqual(ota["secure_version"], 0)
        self.assertEqual(ota["summary"], "caf\u00e9 \"fix\"")
        self.assertEqual(ota["release_url"], "https://example.com/r/2.0.0")
        self.assertFalse(os.path.exists(os.path.join(out, "manifest.json.sig")))
        for f in os.listdir(out):
            self.assertEqual(stat.S_IMODE(os.stat(os.path.join(out, f)).st_mode), 0o644)
        self.assert_no_temp_files(out)
        self.assertNotIn("descriptor says version", se)
        rc, so, se = self.check(out)
        self.assertEqual(rc, 0, so + se)
        self.assertIn("md5 matches, sha256 matches", so)
        # a signature asked for and absent
        rc, so, se = self.check(out, "--trust", self.ec_pub)
        self.assertEqual(rc, 8, so + se)

    def test_security_version_goes_into_the_descriptor(self):
        out = self.out_dir()
        so, se = self.publish(out, "2.1", "--security-version", "5")
        self.assertIn("image descriptor: version 2.1, secure_version 5", so)
        m = self.manifest(out)
        data = self.assert_image_matches(out, m, "2.1")
        self.assertEqual(m["builds"][0]["ota"]["secure_version"], 5)
        self.assertEqual(data, self.versioned(read(self.image), "2.1", 5))
        # a signed image cannot take it: its signature covers the descriptor
        signed = os.path.join(self.dir, "signed.bin")
        rc, so, se = run_ota("sign", "--key", self.ec, "-o", signed, self.image)
        self.assertEqual(rc, 0, se)
        self.publish(self.out_dir(), "2.2", "--security-version", "6", image=signed, rc=6)

    def test_esp_images_are_published_byte_for_byte(self):
        """An ESP-IDF app image's checksum and appended SHA-256 cover its descriptor:
        changing the version there would make the chip reject the image."""
        desc = struct.pack("<II8x", 0xABCD5432, 0) + b"1.0.0".ljust(32, b"\0") + \
            b"proj".ljust(32, b"\0") + b"\0" * (256 - 80)
        esp = bytes([0xE9, 1, 2, 0x20]) + b"\0" * 20 + struct.pack("<II", 0x3F400020,
                                                                   len(desc)) + desc
        esp += b"\x5a" * 1000
        path = os.path.join(self.dir, "esp32.bin")
        with open(path, "wb") as f:
            f.write(esp)
        out = self.out_dir()
        so, se = self.publish(out, "2.0.0", "--chip-family", "ESP32", image=path)
        m = self.manifest(out)
        with open(os.path.join(out, m["builds"][0]["ota"]["path"]), "rb") as f:
            self.assertEqual(f.read(), esp)
        self.assertNotIn("image descriptor: version", so)
        self.assertIn("descriptor says version '1.0.0'", se)
        # asking for a security version there is refused, saying why
        self.publish(self.out_dir(), "2.0.1", "--chip-family", "ESP32",
                     "--security-version", "3", image=path, rc=6)
        rc, so, se = run_ota("sign", "--key", self.ec, "--security-version", "3", path)
        self.assertEqual(rc, 6, so + se)
        self.assertIn("checksum and appended SHA-256 cover the descriptor", se)

    def verify_signed(self, out, version, key, pub):
        m = self.manifest(out)
        data = self.assert_image_matches(out, m, version)
        signed = data[:-SECTOR]
        orig = self.versioned(read(self.image), version)
        self.assertEqual(signed[:len(orig)], orig)
        self.assertEqual(signed[len(orig):], b"\xff" * (len(signed) - len(orig)))
        self.assertEqual(len(signed) % SECTOR, 0)
        sigv2.verify_sector(data[-SECTOR:], hashlib.sha256(signed).digest(), pub)
        raw = read(os.path.join(out, "manifest.json"))
        sig = read(os.path.join(out, "manifest.json.sig"))
        self.assertEqual(len(sig), SECTOR)
        sigv2.verify_sector(sig, hashlib.sha256(raw).digest(), pub)
        rc, so, se = self.check(out, "--trust", pub)
        self.assertEqual(rc, 0, so + se)
        self.assertIn("signature:  %s/manifest.json.sig: valid" % out, so)
        self.assertIn("image sig:  valid", so)
        return m, data

    def test_signed_ecdsa_and_rsa(self):
        for key, pub in ((self.ec, self.ec_pub), (self.rsa, self.rsa_pub)):
            with self.subTest(key=os.path.basename(key)):
                out = self.out_dir()
                so, se = self.publish(out, "3.1", "--key", key, "--rollout", "20",
                                      "--name", "kitchen lights")
                self.assertIn("wrote %s/manifest.json.sig: 1 signature block" % out, so)
                m, _ = self.verify_signed(out, "3.1", key, pub)
                self.assertEqual(m["name"], "kitchen lights")
                self.assertEqual(m["builds"][0]["ota"]["rollout"], 20)
                self.assert_no_temp_files(out)
                # the other key is not trusted
                rc, so, se = self.check(out, "--trust", self.other)
                self.assertEqual(rc, 8, so + se)
                self.assertIn("not signed by a trusted key", so)

    def test_rollout_rewrite_keeps_the_image(self):
        out = self.out_dir()
        # RSA-PSS signatures differ on every run: signing again would change the file
        self.publish(out, "4.0", "--key", self.rsa, "--rollout", "10")
        img = os.path.join(out, "firmware-4.0.bin")
        before, st = read(img), os.stat(img)
        sig_before = read(os.path.join(out, "manifest.json.sig"))
        so, se = self.publish(out, "4.0", "--key", self.rsa, "--rollout", "60")
        self.assertIn("kept %s" % img, so)
        self.assertEqual(read(img), before)
        st2 = os.stat(img)
        self.assertEqual((st2.st_ino, st2.st_mtime_ns), (st.st_ino, st.st_mtime_ns))
        m, _ = self.verify_signed(out, "4.0", self.rsa, self.rsa_pub)
        self.assertEqual(m["builds"][0]["ota"]["rollout"], 60)
        self.assertNotEqual(read(os.path.join(out, "manifest.json.sig")), sig_before)
        # without --rollout the published one stays; the summary changes
        so, se = self.publish(out, "4.0", "--key", self.rsa, "--summary", "now with notes")
        self.assertIn("keeping the published rollout of 60%", so)
        m, _ = self.verify_signed(out, "4.0", self.rsa, self.rsa_pub)
        self.assertEqual(m["builds"][0]["ota"]["rollout"], 60)
        self.assertEqual(m["builds"][0]["ota"]["summary"], "now with notes")
        self.assertEqual(os.stat(img).st_ino, st.st_ino)
        # the signed file itself as IMAGE is the same release too
        shutil.copy(img, os.path.join(self.dir, "signed-4.0.bin"))
        so, se = self.publish(out, "4.0", "--key", self.rsa, "--rollout", "100",
                              image=os.path.join(self.dir, "signed-4.0.bin"))
        self.assertIn("kept %s" % img, so)
        self.assertEqual(self.manifest(out)["builds"][0]["ota"]["rollout"], 100)
        # a new version is a new file; the old one stays for caches and slow nodes
        self.publish(out, "4.1", "--key", self.rsa)
        self.assertEqual(read(img), before)
        self.verify_signed(out, "4.1", self.rsa, self.rsa_pub)

    def test_refuses_to_clobber(self):
        out = self.out_dir()
        self.publish(out, "5.0", "--key", self.ec)
        img = os.path.join(out, "firmware-5.0.bin")
        before = read(img)
        manifest_before = read(os.path.join(out, "manifest.json"))
        sig_before = read(os.path.join(out, "manifest.json.sig"))
        other_image = os.path.join(self.dir, "other-image")
        with open(other_image, "wb") as f:
            f.write(read(self.image) + b"another build")
        for args, image in ((("--key", self.ec), other_image),  # other bytes
                            (("--key", self.other), None),      # same bytes, other key
                            ((), None)):                        # same bytes, unsigned
            with self.subTest(args=args, image=image):
                so, se = self.publish(out, "5.0", *args, image=image, rc=6)
                self.assertIn("error: %s is published already with other bytes" % img, se)
                self.assertIn("hint: publish this image under a new --version", se)
                self.assertEqual(read(img), before)
                self.assertEqual(read(os.path.join(out, "manifest.json")), manifest_before)
                self.assertEqual(read(os.path.join(out, "manifest.json.sig")), sig_before)
        self.assert_no_temp_files(out)
        # an unsigned release does not become signed by publishing it again with --key
        out2 = self.out_dir()
        self.publish(out2, "5.1")
        so, se = self.publish(out2, "5.1", "--key", self.ec, rc=6)
        self.assertIn("is published already with other bytes", se)
        self.assertFalse(os.path.exists(os.path.join(out2, "manifest.json.sig")))

    def test_tampered_manifest_fails_the_check(self):
        out = self.out_dir()
        self.publish(out, "6.0", "--key", self.ec, "--rollout", "5")
        path = os.path.join(out, "manifest.json")
        raw = read(path)
        self.assertEqual(self.check(out, "--trust", self.ec_pub)[0], 0)
        # a mirror raises the rollout (still valid JSON, same image)
        with open(path, "wb") as f:
            f.write(raw.replace(b'"rollout": 5', b'"rollout": 100'))
        rc, so, se = self.check(out, "--trust", self.ec_pub)
        self.assertEqual(rc, 8, so + se)
        self.assertIn("block 0: signed for another image", so)
        with self.assertRaises(AssertionError):
            sigv2.verify_sector(read(path + ".sig"), hashlib.sha256(read(path)).digest(),
                                self.ec_pub)
        # one byte of whitespace is another manifest too
        with open(path, "wb") as f:
            f.write(raw + b" ")
        self.assertEqual(self.check(out, "--trust", self.ec_pub)[0], 8)
        # the signature file cut or gone
        with open(path, "wb") as f:
            f.write(raw)
        sig = read(path + ".sig")
        with open(path + ".sig", "wb") as f:
            f.write(sig[:-1])
        self.assertEqual(self.check(out, "--trust", self.ec_pub)[0], 8)
        os.unlink(path + ".sig")
        rc, so, se = self.check(out, "--trust", self.ec_pub)
        self.assertEqual(rc, 8, so + se)
        with open(path + ".sig", "wb") as f:
            f.write(sig)
        self.assertEqual(self.check(out, "--trust", self.ec_pub)[0], 0)
        # the image replaced behind the manifest's back
        img = os.path.join(out, "firmware-6.0.bin")
        data = bytearray(read(img))
        data[1000] ^= 1
        with open(img, "wb") as f:
            f.write(data)
        rc, so, se = self.check(out, "--trust", self.ec_pub)
        self.assertEqual(rc, 6, so + se)
        self.assertIn("md5 DIFFERS, sha256 DIFFERS", so)
        # not a manifest at all
        with open(path, "wb") as f:
            f.write(raw.replace(b'"builds"', b'"bilds"'))
        rc, so, se = self.check(out)
        self.assertEqual(rc, 6, so + se)
        self.assertIn("a required key is missing", se)

    def test_rollout_buckets_are_the_documented_formula(self):
        out = self.out_dir()
        self.publish(out, "7.0", "--rollout", "50")
        taken = 0
        for i in range(20):
            name = "node-%02d" % i
            rc, so, se = self.check(out, "--node", name)
            self.assertEqual(rc, 0, so + se)
            b = bucket(name, "7.0")
            verdict = "in the rollout" if b < 50 else "not in the rollout"
            self.assertIn("node %s:    bucket %d: %s" % (name, b, verdict), so)
            taken += b < 50
        self.assertTrue(3 <= taken <= 17, taken)

    def test_secure_version_from_the_descriptor(self):
        signed = os.path.join(self.dir, "sv7.bin")
        rc, so, se = run_ota("sign", "--key", self.ec, "--security-version", "7", "-o", signed,
                             self.image)
        self.assertEqual(rc, 0, se)
        out = self.out_dir()
        # signed already by this key: published as it is, not signed twice
        self.publish(out, "8.0", "--key", self.ec, image=signed)
        m = self.manifest(out)
        self.assertEqual(m["builds"][0]["ota"]["secure_version"], 7)
        self.assertEqual(read(os.path.join(out, "firmware-8.0.bin")), read(signed))
        # a second key adds its block (rotation) and keeps the first
        out2 = self.out_dir()
        self.publish(out2, "8.0", "--key", self.ec, "--key", self.other, image=signed)
        data = read(os.path.join(out2, "firmware-8.0.bin"))
        self.assertEqual(data[:-SECTOR], read(signed)[:-SECTOR])
        digest = hashlib.sha256(data[:-SECTOR]).digest()
        self.assertEqual(sigv2.verify_sector(data[-SECTOR:], digest, self.ec_pub), 0)
        self.assertEqual(sigv2.verify_sector(data[-SECTOR:], digest, self.other), 1)
        raw = read(os.path.join(out2, "manifest.json"))
        sig = read(os.path.join(out2, "manifest.json.sig"))
        self.assertEqual(sigv2.verify_sector(sig, hashlib.sha256(raw).digest(), self.ec_pub), 0)
        self.assertEqual(sigv2.verify_sector(sig, hashlib.sha256(raw).digest(), self.other), 1)

    def test_chip_family_and_esphome_reading(self):
        out = self.out_dir()
        self.publish(out, "9.0", "--chip-family", "ESP32-S3")
        m = self.manifest(out)
        self.assertEqual(m["builds"][0]["chipFamily"], "ESP32-S3")
        # what ESPHome requires: name, version, builds[].chipFamily, ota.path and ota.md5
        ota = m["builds"][0]["ota"]
        for key in ("path", "md5"):
            self.assertIsInstance(ota[key], str)
        self.assertEqual(len(ota["md5"]), 32)
        self.assertNotIn("http", ota["path"])  # ESPHome would take it for a URL
        rc, so, se = self.check(out)
        self.assertEqual(rc, 6, so + se)
        self.assertIn("none with chipFamily \"%s\"" % FAMILY, se)
        rc, so, se = self.check(os.path.join(out, "manifest.json"), "--chip-family", "ESP32-S3")
        self.assertEqual(rc, 0, so + se)

    def test_files_readable_whatever_the_umask(self):
        out = self.out_dir()
        old = os.umask(0o077)
        try:
            self.publish(out, "10.0", "--key", self.ec)
        finally:
            os.umask(old)
        for f in ("firmware-10.0.bin", "manifest.json", "manifest.json.sig"):
            self.assertEqual(stat.S_IMODE(os.stat(os.path.join(out, f)).st_mode), 0o644, f)
        # unsigned again: the old signature goes (it would only read as tampering)
        self.publish(out, "10.1")
        self.assertFalse(os.path.exists(os.path.join(out, "manifest.json.sig")))

    def test_usage(self):
        out = self.out_dir()
        cases = [
            (("publish", "--version", "1", self.image), 2, "needs --out DIR"),
            (("publish", "--out", out, self.image), 2, "needs --version V"),
            (("publish", "--out", out, "--version", "1/2", self.image), 2, "names a file"),
            (("publish", "--out", out, "--version", "1-http", self.image), 2, "ESPHome"),
            (("publish", "--out", out, "--version", "x" * 32, self.image), 2, "1 to 31"),
            (("publish", "--out", out, "--version", "1", "--rollout", "101", self.image), 2,
             "--rollout takes a percentage"),
            (("publish", "--out", out, "--version", "1", "--chip-family", "a b", self.image), 2,
             "--chip-family takes"),
            (("publish", "--out", out, "--version", "1"), 2, "missing IMAGE"),
            (("publish", "--out", out, "--version", "1", os.path.join(self.dir, "nope")), 6,
             "cannot read the firmware"),
            (("publish", "--out", out, "--version", "1", "--key",
              os.path.join(self.dir, "nokey.pem"), self.image), 6, "nokey.pem"),
            (("manifest", "check", os.path.join(self.dir, "nope")), 6, "cannot read"),
            (("manifest",), 2, "needs a subcommand"),
            (("manifest", "verify", out), 2, "unknown subcommand"),
        ]
        for args, want_rc, text in cases:
            with self.subTest(args=args):
                rc, so, se = run_ota(*args)
                self.assertEqual(rc, want_rc, so + se)
                self.assertIn(text, se)
        self.assertFalse(os.path.exists(os.path.join(out, "manifest.json")))
        for args in (("publish", "--help"), ("help", "publish"), ("publish", "-h"),
                     ("manifest", "--help"), ("help", "manifest")):
            rc, so, se = run_ota(*args)
            self.assertEqual(rc, 0, se)
            self.assertIn("usage: ota %s" % ("publish" if "publish" in args else "manifest"), so)
        rc, so, se = run_ota("publish", "--help")
        self.assertIn(FAMILY, so)
        rc, so, se = run_ota("--help")
        self.assertIn("publish", so)


if __name__ == "__main__":
    unittest.main()
