"""Secure Boot V2 signed images (src/tools/ota/imgsign.c) checked independently of
that code: the layout, CRC-32, padding and key fields with Python's standard library,
the signatures with the openssl command line (RSA-PSS / ECDSA over the image digest),
and the README's shell commands run as written. The other way round, images signed
here with openssl alone must be accepted by imgsign's inspect and kept when it appends.

Reaches imgsign.c through tests/tool/imgsign_driver.c ($IMGSIGN_DRIVER, else
$OTA_BIN_DIR/imgsign_driver, else build/bin/imgsign_driver). Needs only python3 and
Debian's openssl."""
import hashlib
import os
import re
import struct
import subprocess
import tempfile
import unittest
import zlib

HERE = os.path.dirname(os.path.abspath(__file__))
DRIVER = os.environ.get("IMGSIGN_DRIVER") or os.path.join(
    os.environ.get("OTA_BIN_DIR") or os.path.join(HERE, "..", "..", "build", "bin"),
    "imgsign_driver")

SECTOR = 4096
BLOCK = 1216

# The README's commands: verify signature block BLK of IMG with the public key PUB
# using bash, coreutils and openssl only. Read from README.md (the ```bash block after
# "Checking a signature without our tools") so that the test runs exactly what the
# README tells people to run.
def _readme_verify():
    readme = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "README.md")
    with open(readme) as f:
        text = f.read()
    start = text.index("**Checking a signature without our tools**")
    m = re.search(r"```bash\n(.*?)```", text[start:], re.S)
    return m.group(1)


README_VERIFY = _readme_verify()


def run(*args, cwd=None, check=True, inp=None):
    p = subprocess.run(list(args), cwd=cwd, input=inp, stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE, timeout=120)
    if check and p.returncode != 0:
        raise AssertionError("%s failed (%d): %s" % (args, p.returncode,
                                                      p.stderr.decode(errors="replace")))
    return p


def openssl(*args, cwd=None, check=True):
    return run("openssl", *args, cwd=cwd, check=check)


def der_int(v):
    b = v.to_bytes((v.bit_length() + 8) // 8 or 1, "big")  # room for a sign bit
    return b"\x02" + der_len(len(b)) + b


def der_len(n):
    return bytes([n]) if n < 128 else bytes([0x81, n]) if n < 256 else bytes([0x82, n >> 8, n & 255])


def der_ecdsa_sig(r, s):
    body = der_int(r) + der_int(s)
    return b"\x30" + der_len(len(body)) + body


def parse_der_ecdsa_sig(d):
    """(r, s) from a DER ECDSA-Sig-Value (short lengths only: P-256)."""
    assert d[0] == 0x30
    i = 2
    out = []
    for _ in range(2):
        assert d[i] == 0x02
        n = d[i + 1]
        out.append(int.from_bytes(d[i + 2:i + 2 + n], "big"))
        i += 2 + n
    return out


class PubKey:
    """A public key's numbers as openssl prints them, and the block fields they make,
    computed here from first principles (as espsecure does)."""

    def __init__(self, pub_pem, cwd):
        text = openssl("pkey", "-pubin", "-in", pub_pem, "-noout", "-text", cwd=cwd).stdout.decode()
        if "RSA" in text.splitlines()[0] or "Modulus" in text:
            self.kind = "rsa"
            mod = openssl("rsa", "-pubin", "-in", pub_pem, "-noout", "-modulus", cwd=cwd).stdout
            self.n = int(mod.decode().strip().split("=", 1)[1], 16)
            self.e = int(text.split("Exponent:")[1].split()[0])
            assert self.n.bit_length() == 3072, self.n.bit_length()
            rinv = pow(2, 2 * 3072, self.n)          # R^2 mod n, R = 2^3072
            mdash = (-pow(self.n, -1, 1 << 32)) % (1 << 32)  # -n^-1 mod 2^32
            self.key_fields = (self.n.to_bytes(384, "little") + struct.pack("<I", self.e) +
                               rinv.to_bytes(384, "little") + struct.pack("<I", mdash))
            self.key_offset = 36
        else:
            self.kind = "ec"
            assert "P-256" in text or "prime256v1" in text, text
            der = openssl("pkey", "-pubin", "-in", pub_pem, "-outform", "DER", cwd=cwd).stdout
            pt = der[-65:]
            assert pt[0] == 4
            x, y = pt[1:33], pt[33:65]
            self.key_fields = b"\x02" + x[::-1] + y[::-1]  # curve P-256, X, Y little-endian
            self.key_offset = 36
        self.digest = hashlib.sha256(self.key_fields).digest()  # what eFuse holds


class ImgsignOpensslTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        if not os.path.exists(DRIVER):
            raise unittest.SkipTest("no imgsign_driver at %s (build the tests)" % DRIVER)
        cls.tmp = tempfile.TemporaryDirectory(prefix="ota-imgsign-py-")
        cls.d = cls.tmp.name
        d = cls.d
        for name, args in (
                ("ec1.pem", ["genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256"]),
                ("ec2.pem", ["genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256"]),
                ("ec_trad.pem", ["ecparam", "-name", "prime256v1", "-genkey", "-noout"]),
                ("rsa1.pem", ["genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:3072"]),
                ("rsa2.pem", ["genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:3072"]),
                ("rsa_trad.pem", ["genrsa", "-traditional"])):
            extra = ["3072"] if name == "rsa_trad.pem" else []
            openssl(*args, "-out", name, *extra, cwd=d)
            openssl("pkey", "-in", name, "-pubout", "-out", name[:-4] + ".pub.pem", cwd=d)
        cls.pub = {}

    @classmethod
    def tearDownClass(cls):
        cls.tmp.cleanup()

    def path(self, name):
        return os.path.join(self.d, name)

    def pubkey(self, name):
        if name not in self.pub:
            self.pub[name] = PubKey(name, self.d)
        return self.pub[name]

    def write(self, name, data):
        with open(self.path(name), "wb") as f:
            f.write(data)
        return name

    def read(self, name):
        with open(self.path(name), "rb") as f:
            return f.read()

    def image(self, n, seed=1):
        out = bytearray(hashlib.sha256(b"seed%d" % seed).digest())
        while len(out) < n:
            out += hashlib.sha256(bytes(out[-32:])).digest()
        out = bytes(out[:n])
        return b"\xe9" + out[1:] if n else out

    def sign(self, out, img, *keys):
        run(DRIVER, "sign", out, img, *keys, cwd=self.d)
        return self.read(out)

    def inspect(self, img):
        p = run(DRIVER, "inspect", img, cwd=self.d, check=False)
        return p.returncode, p.stdout.decode()

    # -------------------------------------------------------------- the checks

    def check_structure(self, signed, orig, n_blocks):
        """Padding, sector, CRC-32 and digest of every block, by hand."""
        padded = (len(orig) + SECTOR - 1) // SECTOR * SECTOR
        self.assertEqual(len(signed), padded + SECTOR)
        self.assertEqual(signed[:len(orig)], orig)
        self.assertEqual(signed[len(orig):padded], b"\xff" * (padded - len(orig)))
        digest = hashlib.sha256(signed[:padded]).digest()
        sector = signed[padded:]
        for b in range(n_blocks):
            blk = sector[b * BLOCK:(b + 1) * BLOCK]
            self.assertEqual(blk[0], 0xE7)
            self.assertIn(blk[1], (2, 3))
            self.assertEqual(blk[2:4], b"\0\0")
            self.assertEqual(blk[4:36], digest)
            self.assertEqual(struct.unpack("<I", blk[1196:1200])[0], zlib.crc32(blk[:1196]))
            self.assertEqual(blk[1200:], b"\0" * 16)
            if blk[1] == 3:
                self.assertEqual(blk[165:1196], b"\0" * (1196 - 165))
        self.assertEqual(sector[n_blocks * BLOCK:], b"\xff" * (SECTOR - n_blocks * BLOCK))
        return padded, digest

    def openssl_verify(self, signed, blk_index, pub_name):
        """True when openssl verifies block blk_index with pub_name, its key fields are
        those computed here from the public key, and its digest is the image's."""
        padded = len(signed) - SECTOR
        blk = signed[padded + blk_index * BLOCK:padded + (blk_index + 1) * BLOCK]
        pk = self.pubkey(pub_name)
        digest = hashlib.sha256(signed[:padded]).digest()
        self.write("v_digest.bin", digest)
        if pk.kind == "rsa":
            if blk[36:812] != pk.key_fields:
                return False
            self.write("v_sig.bin", blk[812:1196][::-1])
            p = openssl("pkeyutl", "-verify", "-pubin", "-inkey", pub_name, "-in", "v_digest.bin",
                        "-sigfile", "v_sig.bin", "-pkeyopt", "digest:sha256",
                        "-pkeyopt", "rsa_padding_mode:pss", "-pkeyopt", "rsa_pss_saltlen:32",
                        "-pkeyopt", "rsa_mgf1_md:sha256", cwd=self.d, check=False)
        else:
            if blk[36:101] != pk.key_fields:
                return False
            r = int.from_bytes(blk[101:133], "little")
            s = int.from_bytes(blk[133:165], "little")
            self.write("v_sig.der", der_ecdsa_sig(r, s))
            p = openssl("pkeyutl", "-verify", "-pubin", "-inkey", pub_name, "-in", "v_digest.bin",
                        "-sigfile", "v_sig.der", cwd=self.d, check=False)
        return p.returncode == 0 and blk[4:36] == digest

    def readme_verify(self, img_name, pub_name, blk):
        env = dict(os.environ, IMG=img_name, PUB=pub_name, BLK=str(blk))
        p = subprocess.run(["bash", "-c", README_VERIFY], cwd=self.d, env=env,
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=120)
        return p.returncode == 0, p.stdout.decode(errors="replace")

    def driver_key_digest(self, key):
        out = run(DRIVER, "digest", key, cwd=self.d).stdout.decode().split()
        return out[0], bytes.fromhex(out[1])

    # -------------------------------------------------------------- tests

    def test_ecdsa256_openssl_verifies(self):
        for key in ("ec1", "ec_trad"):
            for n in (1, 4096, 5000):
                orig = self.write("e.bin", self.image(n))
                signed = self.sign("e.signed.bin", orig, key + ".pem")
                self.check_structure(signed, self.read(orig), 1)
                self.assertTrue(self.openssl_verify(signed, 0, key + ".pub.pem"))
                ok, out = self.readme_verify("e.signed.bin", key + ".pub.pem", 0)
                self.assertTrue(ok, out)
                self.assertIn("Signature Verified Successfully", out)
                # the wrong key is told apart
                self.assertFalse(self.openssl_verify(signed, 0, "ec2.pub.pem"))
                ok, out = self.readme_verify("e.signed.bin", "ec2.pub.pem", 0)
                self.assertFalse(ok, out)
                # the key digest: driver == computed here from openssl's numbers == block
                scheme, kd = self.driver_key_digest(key + ".pub.pem")
                self.assertEqual(scheme, "ecdsa256")
                self.assertEqual(kd, self.pubkey(key + ".pub.pem").digest)
                self.assertEqual(hashlib.sha256(signed[-SECTOR + 36:-SECTOR + 101]).digest(), kd)

    def test_rsa3072_openssl_verifies(self):
        for key in ("rsa1", "rsa_trad"):
            orig = self.write("r.bin", self.image(10001, 2))
            signed = self.sign("r.signed.bin", orig, key + ".pem")
            self.check_structure(signed, self.read(orig), 1)
            self.assertTrue(self.openssl_verify(signed, 0, key + ".pub.pem"))
            ok, out = self.readme_verify("r.signed.bin", key + ".pub.pem", 0)
            self.assertTrue(ok, out)
            self.assertFalse(self.openssl_verify(signed, 0, "rsa2.pub.pem"))
            scheme, kd = self.driver_key_digest(key + ".pem")
            self.assertEqual(scheme, "rsa3072")
            self.assertEqual(kd, self.pubkey(key + ".pub.pem").digest)
            self.assertEqual(hashlib.sha256(signed[-SECTOR + 36:-SECTOR + 812]).digest(), kd)

    def test_tampering_fails_openssl_too(self):
        orig = self.write("t.bin", self.image(7000, 3))
        for key in ("ec1", "rsa1"):
            signed = bytearray(self.sign("t.signed.bin", orig, key + ".pem"))
            signed[10] ^= 1
            self.write("t.bad.bin", bytes(signed))
            self.assertFalse(self.openssl_verify(bytes(signed), 0, key + ".pub.pem"))
            ok, out = self.readme_verify("t.bad.bin", key + ".pub.pem", 0)
            self.assertFalse(ok)
            self.assertIn("does not match", out)
            rc, text = self.inspect("t.bad.bin")
            self.assertEqual(rc, 1, text)
            self.assertIn("digest_matches 0", text)
            # a flipped signature bit with the digest intact: openssl refuses it
            signed[10] ^= 1
            off = len(signed) - SECTOR + (812 if key.startswith("rsa") else 110)
            signed[off] ^= 1
            self.write("t.bad.bin", bytes(signed))
            ok, out = self.readme_verify("t.bad.bin", key + ".pub.pem", 0)
            self.assertFalse(ok, out)

    def test_keygen_keys_with_openssl(self):
        for scheme in ("ecdsa256", "rsa3072"):
            key = "gen_%s.pem" % scheme
            run(DRIVER, "keygen", scheme, key, cwd=self.d)
            pub = "gen_%s.pub.pem" % scheme
            self.assertEqual(os.stat(self.path(key)).st_mode & 0o777, 0o600)
            # openssl derives the same public key from the private one
            derived = openssl("pkey", "-in", key, "-pubout", cwd=self.d).stdout
            self.assertEqual(derived, self.read(pub))
            openssl("pkey", "-in", key, "-check", "-noout", cwd=self.d)
            # and the key signs what openssl verifies
            orig = self.write("g.bin", self.image(3000, 4))
            signed = self.sign("g.signed.bin", orig, key)
            self.assertTrue(self.openssl_verify(signed, 0, pub))
            self.assertEqual(self.driver_key_digest(key)[1], self.pubkey(pub).digest)
            # keygen refuses to overwrite
            p = run(DRIVER, "keygen", scheme, key, cwd=self.d, check=False)
            self.assertEqual(p.returncode, 1)
            self.assertIn("already exists", p.stderr.decode())

    def test_rotation_each_block_verifies(self):
        orig = self.write("rot.bin", self.image(20000, 5))
        two = self.sign("rot2.bin", orig, "rsa1.pem", "rsa2.pem")
        self.check_structure(two, self.read(orig), 2)
        self.assertTrue(self.openssl_verify(two, 0, "rsa1.pub.pem"))
        self.assertTrue(self.openssl_verify(two, 1, "rsa2.pub.pem"))
        self.assertFalse(self.openssl_verify(two, 1, "rsa1.pub.pem"))
        # re-signing the signed image appends: the first blocks stay byte for byte
        three = self.sign("rot3.bin", "rot2.bin", "rsa_trad.pem")
        self.check_structure(three, self.read(orig), 3)
        self.assertEqual(three[:-SECTOR + 2 * BLOCK], two[:-SECTOR + 2 * BLOCK])
        for i, key in enumerate(("rsa1", "rsa2", "rsa_trad")):
            self.assertTrue(self.openssl_verify(three, i, key + ".pub.pem"))
            ok, out = self.readme_verify("rot3.bin", key + ".pub.pem", i)
            self.assertTrue(ok, out)
        ok, out = self.readme_verify("rot3.bin", "rsa1.pub.pem", 2)
        self.assertFalse(ok, out)
        ok, out = self.readme_verify("rot2.bin", "rsa1.pub.pem", 2)
        self.assertFalse(ok, out)
        self.assertIn("block 2: no signature block", out)
        p = run(DRIVER, "sign", "rot4.bin", "rot3.bin", "ec1.pem", cwd=self.d, check=False)
        self.assertEqual(p.returncode, 1)
        # ECDSA: two then one
        e2 = self.sign("erot2.bin", orig, "ec1.pem", "ec2.pem")
        e3 = self.sign("erot3.bin", "erot2.bin", "ec_trad.pem")
        self.assertEqual(e3[:-SECTOR + 2 * BLOCK], e2[:-SECTOR + 2 * BLOCK])
        for i, key in enumerate(("ec1", "ec2", "ec_trad")):
            self.assertTrue(self.openssl_verify(e3, i, key + ".pub.pem"))

    def openssl_signed_image(self, img, keys):
        """A signed image made without imgsign: python builds the blocks, openssl signs."""
        padded = img + b"\xff" * (-len(img) % SECTOR)
        digest = hashlib.sha256(padded).digest()
        self.write("o_digest.bin", digest)
        sector = b""
        for key in keys:
            pk = self.pubkey(key + ".pub.pem")
            if pk.kind == "rsa":
                openssl("pkeyutl", "-sign", "-inkey", key + ".pem", "-in", "o_digest.bin",
                        "-out", "o_sig.bin", "-pkeyopt", "digest:sha256",
                        "-pkeyopt", "rsa_padding_mode:pss", "-pkeyopt", "rsa_pss_saltlen:32",
                        "-pkeyopt", "rsa_mgf1_md:sha256", cwd=self.d)
                sig = self.read("o_sig.bin")
                blk = b"\xe7\x02\0\0" + digest + pk.key_fields + sig[::-1]
            else:
                openssl("pkeyutl", "-sign", "-inkey", key + ".pem", "-in", "o_digest.bin",
                        "-out", "o_sig.der", cwd=self.d)
                r, s = parse_der_ecdsa_sig(self.read("o_sig.der"))
                blk = (b"\xe7\x03\0\0" + digest + pk.key_fields + r.to_bytes(32, "little") +
                       s.to_bytes(32, "little"))
                blk += b"\0" * (1196 - len(blk))
            self.assertEqual(len(blk), 1196)
            sector += blk + struct.pack("<I", zlib.crc32(blk)) + b"\0" * 16
        return padded + sector + b"\xff" * (SECTOR - len(sector))

    def test_inspect_accepts_openssl_signatures(self):
        img = self.image(4321, 6)
        for keys in (["rsa1"], ["ec1", "ec2"]):
            self.write("o.bin", self.openssl_signed_image(img, keys))
            rc, text = self.inspect("o.bin")
            self.assertEqual(rc, 0, text)
            lines = [line for line in text.splitlines() if line.startswith("block ")]
            self.assertEqual(len(lines), len(keys))
            for line, key in zip(lines, keys):
                self.assertIn("digest_matches 1 key_valid 1 signature_valid 1", line)
                self.assertIn("key_digest " + self.pubkey(key + ".pub.pem").digest.hex(), line)
            # and appending to it keeps the openssl-made blocks
            new = "rsa2.pem" if keys[0].startswith("rsa") else "ec_trad.pem"
            before = self.read("o.bin")
            after = self.sign("o2.bin", "o.bin", new)
            self.assertEqual(after[:-SECTOR + len(keys) * BLOCK],
                             before[:-SECTOR + len(keys) * BLOCK])
            self.check_structure(after, img, len(keys) + 1)
            self.assertTrue(self.openssl_verify(after, len(keys), new[:-4] + ".pub.pem"))


if __name__ == "__main__":
    unittest.main()
