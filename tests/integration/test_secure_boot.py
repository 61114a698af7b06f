"""Secure boot on a Linux node: `ota-boot flash --trust-key PEM` keeps key digests in
the state directory like eFuses, and `ota-boot run` boots only slots signed by one of
them (ESP-IDF Secure Boot V2 signature sectors). A slot file tampered with on disk is
not booted: the other slot is if it verifies, else ota-boot refuses (exit 3).

Images are real demo-node binaries signed by sigv2.py (openssl CLI + Python stdlib, not
our C code); keys are made with `openssl genpkey` for this run."""
import hashlib
import json
import os
import shutil
import stat
import subprocess
import sys
import tempfile
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import sigv2  # noqa: E402
from nodelib import DEMO_NODE, OTA_BOOT, Node, sha256_file  # noqa: E402

FAST = ("--restart-delay-ms", "50")
PASSWORD = ("--password", "VERYSECURE")  # demo-node's compiled-in password
EXIT_SECURE_BOOT = 3


def boot(*args, timeout=60):
    return subprocess.run([OTA_BOOT] + [str(a) for a in args], capture_output=True, text=True,
                          timeout=timeout, stdin=subprocess.DEVNULL)


def status(state):
    p = boot("status", "--state", state)
    assert p.returncode == 0, p.stderr
    return json.loads(p.stdout)


def flip_byte(path, offset=None, replace=False):
    """Tamper with a slot file: one byte flipped (in the middle unless offset). A running
    executable cannot be opened for writing (ETXTBSY), so replace=True writes a changed
    copy over it instead: what tampering through the file system looks like then."""
    with open(path, "rb") as f:
        data = bytearray(f.read())
    offset = len(data) // 2 if offset is None else offset
    data[offset] ^= 0x01
    if replace:
        tmp = path + ".evil"
        with open(tmp, "wb") as f:
            f.write(data)
        os.chmod(tmp, 0o700)
        os.replace(tmp, path)
    else:
        with open(path, "r+b") as f:
            f.seek(offset)
            f.write(data[offset:offset + 1])


class SecureBootTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.mkdtemp(prefix="ota-sb-")
        def key(name, kind="ec"):
            return sigv2.genkey(os.path.join(cls.tmp, name + ".pem"), kind)
        cls.k1, cls.k2, cls.k3 = key("k1"), key("k2"), key("k3")  # P-256; k3 is never trusted
        cls.r1 = key("r1", "rsa")                                 # RSA-3072
        cls.k1_pub = sigv2.public_key(cls.k1, os.path.join(cls.tmp, "k1.pub.pem"))
        cls.digest = {pem: sigv2.key_digest(pem).hex() for pem in (cls.k1, cls.k2, cls.k3, cls.r1)}

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.tmp, ignore_errors=True)

    def image(self, seed, *keys):
        """demo-node with seed-dependent bytes appended (another sha256, runs the
        same), signed by keys (none: unsigned)."""
        plain = os.path.join(self.tmp, "plain-%d" % seed)
        if not os.path.exists(plain):
            with open(DEMO_NODE, "rb") as f:
                data = f.read()
            with open(plain, "wb") as f:
                f.write(data + hashlib.shake_256(b"sb%d" % seed).digest(100000 + seed))
            os.chmod(plain, 0o755)
        if not keys:
            return plain
        out = os.path.join(self.tmp, "signed-%d-%s" % (
            seed, "-".join(os.path.basename(k)[:-4] for k in keys)))
        return sigv2.sign(plain, out, *keys)

    def state_dir(self):
        d = tempfile.mkdtemp(prefix="ota-sb-node-")
        self.addCleanup(shutil.rmtree, d, True)
        return os.path.join(d, "node")

    def keys_file(self, state):
        with open(os.path.join(state, "trusted_keys")) as f:
            return f.read()

    # ---- booting ----------------------------------------------------------------
    def test_signed_image_boots_and_status_shows_secure_boot(self):
        img = self.image(1, self.k1)
        node = Node(self, flash_flags=("--trust-key", self.k1), image=img)
        st = node.assert_runs(img, 1)
        self.assertIs(st["secure_boot"], True)
        self.assertEqual(st["trusted_keys"], [self.digest[self.k1]])
        self.assertEqual(st["min_security_version"], 0)
        a, b = st["slots"]["a"], st["slots"]["b"]
        self.assertEqual((a["signature"], a["security_version"]), ("valid", 0))
        self.assertEqual(a["signed_by"], self.digest[self.k1])
        self.assertEqual((b["present"], b["signature"], b["security_version"]),
                         (False, "none", None))
        self.assertIn("[ota-boot] secure boot: slot a signature valid", node.log())
        # the "eFuses": one key digest per line, owner-only
        path = os.path.join(node.dir, "trusted_keys")
        self.assertEqual(self.keys_file(node.dir), self.digest[self.k1] + "\n")
        self.assertEqual(stat.S_IMODE(os.stat(path).st_mode), 0o600)
        self.assertFalse(os.path.exists(path + ".tmp"))

    def test_status_without_secure_boot(self):
        state = self.state_dir()
        p = boot("flash", "--state", state, DEMO_NODE)
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertNotIn("secure boot", p.stdout)
        st = status(state)
        self.assertIs(st["secure_boot"], False)
        self.assertEqual((st["trusted_keys"], st["min_security_version"]), ([], 0))
        self.assertEqual((st["slots"]["a"]["signature"], st["slots"]["a"]["security_version"]),
                         ("none", 0))
        self.assertFalse(os.path.exists(os.path.join(state, "trusted_keys")))
        # a signed image in a node without keys: intact and signed, by a key not trusted
        p = boot("flash", "--state", state, self.image(2, self.k2))
        self.assertEqual(p.returncode, 0, p.stderr)
        a = status(state)["slots"]["a"]
        self.assertEqual((a["signature"], a["signed_by"]), ("valid", self.digest[self.k2]))
        flip_byte(os.path.join(state, "slot_a.bin"))
        a = status(state)["slots"]["a"]
        self.assertEqual((a["signature"], a["signed_by"]), ("invalid", None))

    def test_tampered_slot_boots_the_other_one_then_refuses(self):
        first, second = self.image(3, self.k1), self.image(4, self.k1)
        node = Node(self, "--boot-is-good-after-ms", "300", boot_flags=FAST,
                    flash_flags=("--trust-key", self.k1), image=first)
        rc, _, err = node.upload(second, *PASSWORD)
        self.assertEqual(rc, 0, err)
        node.assert_runs(second, 2)
        node.wait_for(lambda: not node.status()["pending"], 20, "slot b confirmed")
        # slot b (active, confirmed) is changed on disk; the next boot must not run it
        slot_b = os.path.join(node.dir, "slot_b.bin")
        flip_byte(slot_b, replace=True)
        self.assertEqual(node.status()["slots"]["b"]["signature"], "invalid")
        self.assertEqual(node.kill_firmware(), 1)
        node.wait_listening(3)
        log = node.log()
        self.assertIn("[ota-boot] secure boot: slot b (%s): signature does not match "
                      "(tampered?): not booting it" % slot_b, log)
        self.assertIn("[ota-boot] secure boot: booting slot a instead", log)
        st = node.assert_runs(first, 3)
        self.assertEqual((st["active_slot"], st["confirmed_slot"], st["pending"]),
                         ("a", "a", False))
        self.assertEqual(st["slots"]["a"]["signature"], "valid")
        self.assertEqual(st["slots"]["b"]["signature"], "invalid")
        # and slot a is replaced by an unsigned image: nothing left to boot
        shutil.copyfile(DEMO_NODE, os.path.join(node.dir, "slot_a.bin.evil"))
        os.chmod(os.path.join(node.dir, "slot_a.bin.evil"), 0o700)
        os.replace(os.path.join(node.dir, "slot_a.bin.evil"), os.path.join(node.dir, "slot_a.bin"))
        node.kill_firmware()
        node.proc.wait(timeout=30)
        self.assertEqual(node.proc.returncode, EXIT_SECURE_BOOT, node.log()[-3000:])
        self.assertIn("[ota-boot] secure boot: refusing to boot: slot a: not signed "
                      "(%d bytes: a signed image is a multiple of 4096); slot b: signature "
                      "does not match (tampered?)" % os.path.getsize(DEMO_NODE), node.log())
        self.assertEqual(node.count(r"booted slot="), 3)  # nothing ran after that

    def test_tampered_in_place_while_stopped(self):
        img = self.image(5, self.k1)
        state = self.state_dir()
        p = boot("flash", "--state", state, "--trust-key", self.k1, img)
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertIn("secure boot: on, burnt in 1 trusted key", p.stdout)
        # one flipped byte: in the program headers, the last byte before the sector
        # (padding), in the signature block
        size = os.path.getsize(img)
        for offset in (100, size - 4096 - 1, size - 4096 + 500):
            slot = os.path.join(state, "slot_a.bin")
            flip_byte(slot, offset)
            p = boot("run", "--state", state, "--", "--port", "1", timeout=60)
            self.assertEqual(p.returncode, EXIT_SECURE_BOOT, p.stderr)
            self.assertIn("secure boot: slot a (", p.stderr)
            self.assertIn("signature does not match (tampered?): not booting it", p.stderr)
            self.assertIn("secure boot: refusing to boot: slot a: signature does not match "
                          "(tampered?); slot b: holds no bootable image", p.stderr)
            self.assertNotIn("booting slot", p.stderr)
            flip_byte(slot, offset)  # undone: it verifies again
            self.assertEqual(status(state)["slots"]["a"]["signature"], "valid")

    def test_unsigned_or_untrusted_update_is_not_booted(self):
        first = self.image(6, self.k1)
        node = Node(self, boot_flags=FAST, flash_flags=("--trust-key", self.k1), image=first)
        # the node itself takes any update (node-side checks come later): the boot refuses it
        for n, (img, why) in enumerate([(self.image(7), "not signed"),
                                        (self.image(8, self.k3), "signed by an untrusted key "
                                         "(key digest %s)" % self.digest[self.k3][:16])]):
            rc, _, err = node.upload(img, *PASSWORD)
            self.assertEqual(rc, 0, err)
            node.wait_listening(2 + n)
            self.assertIn("slot b (%s/slot_b.bin): %s" % (node.dir, why), node.log())
            st = node.assert_runs(first, 2 + n)
            self.assertEqual((st["active_slot"], st["confirmed_slot"], st["pending"]),
                             ("a", "a", False))
            self.assertEqual(st["slots"]["b"]["signature"], "none" if n == 0 else "invalid")
            self.assertEqual(st["slots"]["b"]["sha256"], sha256_file(img))

    # ---- flashing ---------------------------------------------------------------
    def test_flash_refuses_images_the_keys_do_not_sign(self):
        state = self.state_dir()
        good = self.image(9, self.k1)
        tampered = os.path.join(self.tmp, "tampered-9")
        shutil.copyfile(good, tampered)
        flip_byte(tampered)
        for img, why in [(DEMO_NODE, "not signed"),
                         (self.image(9, self.k3), "signed by an untrusted key"),
                         (tampered, "signature does not match (tampered?)")]:
            p = boot("flash", "--state", state, "--trust-key", self.k1, img)
            self.assertEqual(p.returncode, 1, p.stdout)
            self.assertIn("ota-boot: secure boot: refusing %s: %s" % (img, why), p.stderr)
            self.assertIn("key digest %s" % self.digest[self.k1][:16], p.stderr)
            # nothing burnt, nothing installed
            self.assertEqual(sorted(os.listdir(state)), ["run.lock"])
        p = boot("flash", "--state", state, "--trust-key", self.k1, good)
        self.assertEqual(p.returncode, 0, p.stderr)

    def test_trusted_keys_are_burnt_in(self):
        state = self.state_dir()
        img1, img2 = self.image(10, self.k1), self.image(10, self.k2)
        p = boot("flash", "--state", state, DEMO_NODE)  # a node without secure boot ...
        self.assertEqual(p.returncode, 0, p.stderr)
        p = boot("flash", "--state", state, "--trust-key", self.k1, img1)  # ... gets it
        self.assertEqual(p.returncode, 0, p.stderr)
        burnt = self.keys_file(state)
        for keys, img in [((self.k2,), img2), ((self.k1, self.k2), img1), ((self.k3,), img1)]:
            args = [a for k in keys for a in ("--trust-key", k)]
            p = boot("flash", "--state", state, *args, img)
            self.assertEqual(p.returncode, 1, p.stdout)
            self.assertIn("the trusted keys are burnt in: make a new state directory", p.stderr)
            self.assertEqual(self.keys_file(state), burnt)
        # the same key again (here as its public half) is fine, and so is no key at all
        p = boot("flash", "--state", state, "--trust-key", self.k1_pub, img1)
        self.assertEqual(p.returncode, 0, p.stderr)
        p = boot("flash", "--state", state, img1)
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertIn("secure boot: on, keeping the 1 trusted key", p.stdout)
        self.assertEqual(self.keys_file(state), burnt)
        self.assertIs(status(state)["secure_boot"], True)
        # ... but the kept keys still decide what may be flashed
        p = boot("flash", "--state", state, DEMO_NODE)
        self.assertEqual(p.returncode, 1)
        self.assertIn("refusing %s: not signed" % DEMO_NODE, p.stderr)
        p = boot("flash", "--state", state, img2)
        self.assertEqual(p.returncode, 1)
        self.assertIn("signed by an untrusted key (key digest %s)" % self.digest[self.k2][:16],
                      p.stderr)

    def test_damaged_trusted_keys_fail_closed(self):
        state = self.state_dir()
        img = self.image(11, self.k1)
        p = boot("flash", "--state", state, "--trust-key", self.k1, img)
        self.assertEqual(p.returncode, 0, p.stderr)
        with open(os.path.join(state, "trusted_keys"), "w") as f:
            f.write("not a digest\n")
        p = boot("run", "--state", state, "--", "--port", "1")
        self.assertEqual(p.returncode, EXIT_SECURE_BOOT)
        self.assertIn("trusted_keys, line 1: not a key digest", p.stderr)
        self.assertIn("refusing to boot anything", p.stderr)
        st = status(state)
        self.assertIs(st["secure_boot"], True)
        self.assertEqual(st["trusted_keys"], [])
        p = boot("flash", "--state", state, "--trust-key", self.k1, img)
        self.assertEqual(p.returncode, 1)
        self.assertIn("make a new state directory", p.stderr)

    def test_trusted_keys_file_written_by_hand(self):
        """The file is plain enough to be written by hand (like burning eFuses with the
        digest espsecure prints); anything off is damaged, and damaged fails closed."""
        state = self.state_dir()
        img = self.image(16, self.k2)
        p = boot("flash", "--state", state, img)
        self.assertEqual(p.returncode, 0, p.stderr)
        path = os.path.join(state, "trusted_keys")
        d1, d2 = self.digest[self.k1], self.digest[self.k2]
        for text, keys in [(d2.upper(), [d2]),                  # no final newline, upper case
                           (d1 + "\n" + d2 + "\n", [d1, d2]),
                           (d2 + "\n" + d2 + "\n", [d2])]:        # a repeated line counts once
            with open(path, "w") as f:
                f.write(text)
            st = status(state)
            self.assertEqual((st["secure_boot"], st["trusted_keys"]), (True, keys))
            self.assertEqual(st["slots"]["a"]["signature"], "valid")
        d3, d4 = self.digest[self.k3], self.digest[self.r1]
        for text, why in [("", "holds no key"),
                          (d1 + "\n\n" + d2 + "\n", "line 2: not a key digest"),
                          (d1 + " \n", "line 1: not a key digest"),
                          (d1[:-1] + "\n", "line 1: not a key digest"),
                          ("\n".join([d1, d2, d3, d4]) + "\n", "holds more than 3 keys"),
                          ("0" * 2000, "too large")]:
            with open(path, "w") as f:
                f.write(text)
            p = boot("status", "--state", state)
            self.assertEqual(p.returncode, 0, p.stderr)
            st = json.loads(p.stdout)
            self.assertEqual((st["secure_boot"], st["trusted_keys"]), (True, []))
            self.assertEqual(st["slots"]["a"]["signature"], "invalid")
            self.assertIn(why, p.stderr)
            p = boot("run", "--state", state, "--", "--port", "1")
            self.assertEqual(p.returncode, EXIT_SECURE_BOOT, p.stderr)
            self.assertIn(why, p.stderr)
        os.unlink(path)  # (on a chip this cannot happen; here it turns secure boot off)
        self.assertIs(status(state)["secure_boot"], False)

    # ---- key rotation -----------------------------------------------------------
    def test_rotation_either_trusted_key_boots(self):
        first = self.image(12, self.r1)
        node = Node(self, boot_flags=FAST, image=first,
                    flash_flags=("--trust-key", self.k1, "--trust-key", self.r1))
        st = node.assert_runs(first, 1)
        self.assertEqual(sorted(st["trusted_keys"]),
                         sorted([self.digest[self.k1], self.digest[self.r1]]))
        self.assertEqual(st["slots"]["a"]["signed_by"], self.digest[self.r1])
        self.assertIn("signature valid (key 2 of 2", node.log())
        # the other trusted key (another scheme) ...
        second = self.image(13, self.k1)
        rc, _, err = node.upload(second, *PASSWORD)
        self.assertEqual(rc, 0, err)
        st = node.assert_runs(second, 2)
        self.assertEqual((st["active_slot"], st["slots"]["b"]["signed_by"]),
                         ("b", self.digest[self.k1]))
        # ... and an image for the next rotation: a new key's block first, then ours
        third = self.image(14, self.k3, self.r1)
        rc, _, err = node.upload(third, *PASSWORD)
        self.assertEqual(rc, 0, err)
        st = node.assert_runs(third, 3)
        self.assertEqual((st["active_slot"], st["slots"]["a"]["signed_by"]),
                         ("a", self.digest[self.r1]))
        self.assertNotIn("not booting it", node.log())

    # ---- the command line -------------------------------------------------------
    def test_trust_key_usage(self):
        state = self.state_dir()
        img = self.image(15, self.k1)
        p = boot("flash", "--help")
        self.assertEqual(p.returncode, 0)
        self.assertIn("--trust-key PEM", p.stdout)
        self.assertIn("--trust-key", boot("--help").stdout)
        self.assertIn("secure_boot", boot("status", "--help").stdout)
        four = [a for k in (self.k1, self.k2, self.k3, self.r1) for a in ("--trust-key", k)]
        p = boot("flash", "--state", state, *four, img)
        self.assertEqual(p.returncode, 2)
        self.assertIn("at most 3 --trust-key", p.stderr)
        p = boot("run", "--state", state, "--trust-key", self.k1)
        self.assertEqual(p.returncode, 2)
        self.assertIn("--trust-key is an option of 'flash'", p.stderr)
        p384 = os.path.join(self.tmp, "p384.pem")
        sigv2.openssl("genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-384",
                      "-out", p384)
        rsa2048 = os.path.join(self.tmp, "rsa2048.pem")
        sigv2.openssl("genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048",
                      "-out", rsa2048)
        encrypted = os.path.join(self.tmp, "encrypted.pem")
        sigv2.openssl("pkey", "-in", self.k1, "-aes-128-cbc", "-passout", "pass:secret",
                      "-out", encrypted)
        for key, why in [(os.path.join(self.tmp, "nosuch.pem"), "No such file or directory"),
                         (img, "not a PEM public or private key"),
                         (p384, "an EC key on curve secp384r1"),
                         (rsa2048, "an RSA key of 2048 bits"),
                         (encrypted, "an encrypted private key")]:
            p = boot("flash", "--state", state, "--trust-key", key, img)
            self.assertEqual(p.returncode, 1, p.stdout)
            self.assertIn("ota-boot: --trust-key %s: %s" % (key, why), p.stderr)
            self.assertFalse(os.path.exists(state))  # refused before anything is created
        # the same key twice counts once
        p = boot("flash", "--state", state, "--trust-key", self.k1, "--trust-key", self.k1_pub,
                 img)
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertEqual(self.keys_file(state), self.digest[self.k1] + "\n")


if __name__ == "__main__":
    unittest.main()
