"""Sign any file the way `espsecure sign-data --version 2` does (ESP-IDF Secure Boot
V2: the file padded with 0xFF to a multiple of 4096, then a 4096-byte signature sector
of up to three 1216-byte blocks), with nothing but the openssl command line and the
Python standard library, so that the tests never use our own C code to make what it
checks. The layout is docs/protocol.md#signed-images; tests/vectors/sigv2/make_vectors.sh
builds its vectors the same way.

    genkey(path, "ec" | "rsa")          a new P-256 or RSA-3072 key (openssl genpkey)
    public_key(pem, path)               its public half, as a PEM file
    key_digest(pem)                     the 32-byte key digest (what eFuses hold)
    sign(src, dst, pem, ...)            dst = src padded + a sector, one block per key
    verify_sector(sector, digest, pem)  does a block of sector sign digest with pem's key?
"""
import hashlib
import os
import re
import subprocess
import tempfile
import zlib

SECTOR = 4096
BLOCK = 1216
MAGIC = 0xE7
VERSION_RSA, VERSION_ECDSA = 0x02, 0x03
CURVE_P256 = 2

OID_RSA = bytes.fromhex("2a864886f70d010101")  # rsaEncryption
OID_EC = bytes.fromhex("2a8648ce3d0201")        # id-ecPublicKey
OID_P256 = bytes.fromhex("2a8648ce3d030107")    # prime256v1


def openssl(*args, data=None):
    p = subprocess.run(("openssl",) + tuple(str(a) for a in args), input=data,
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    if p.returncode != 0:
        raise RuntimeError("openssl %s: %s" % (" ".join(map(str, args)), p.stderr.decode()))
    return p.stdout


def genkey(path, kind="ec"):
    """A new key in PEM (PKCS#8): "ec" for P-256, "rsa" for RSA-3072 (e = 65537)."""
    if kind == "rsa":
        openssl("genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:3072",
                "-pkeyopt", "rsa_keygen_pubexp:65537", "-out", path)
    else:
        openssl("genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256",
                "-pkeyopt", "ec_param_enc:named_curve", "-out", path)
    os.chmod(path, 0o600)
    return path


def _is_public(pem):
    with open(pem) as f:
        return "PUBLIC KEY" in f.readline()


def _public_der(pem):
    pub = ("-pubin",) if _is_public(pem) else ()
    return openssl("pkey", *pub, "-in", pem, "-pubout", "-outform", "DER")


def public_key(pem, path):
    """Write the public half of pem to path (PEM)."""
    pub = ("-pubin",) if _is_public(pem) else ()
    openssl("pkey", *pub, "-in", pem, "-pubout", "-out", path)
    return path


def kind(pem):
    der = _public_der(pem)
    if OID_RSA in der:
        return "rsa"
    if OID_EC in der and OID_P256 in der and der[-65] == 0x04:
        return "ec"
    raise ValueError("%s: neither an RSA nor a P-256 key" % pem)


def _le(value, size):
    return value.to_bytes(size, "little")


def _rsa_numbers(pem):
    pub = ("-pubin",) if _is_public(pem) else ()
    text = openssl("rsa", *pub, "-in", pem, "-noout", "-text").decode()
    modulus = openssl("rsa", *pub, "-in", pem, "-noout", "-modulus").decode()
    n = int(modulus.strip().split("=", 1)[1], 16)
    e = int(re.search(r"(?:publicExponent|Exponent): (\d+)", text).group(1))
    if n.bit_length() != 3072:
        raise ValueError("%s: not an RSA-3072 key" % pem)
    return n, e


def key_material(pem):
    """The bytes of a block the key digest covers."""
    if kind(pem) == "rsa":
        n, e = _rsa_numbers(pem)
        rinv = pow(2, 2 * 3072, n)  # R^2 mod n, R = 2^3072 (ESP's RSA peripheral)
        mdash = (-pow(n, -1, 1 << 32)) % (1 << 32)
        return _le(n, 384) + _le(e, 4) + _le(rinv, 384) + _le(mdash, 4)
    point = _public_der(pem)[-65:]
    return bytes([CURVE_P256]) + point[1:33][::-1] + point[33:][::-1]


def key_digest(pem):
    """The key digest of pem (SHA-256 of its key material): 32 bytes."""
    return hashlib.sha256(key_material(pem)).digest()


def _sign_digest(pem, digest, tmp):
    path = os.path.join(tmp, "digest.bin")
    with open(path, "wb") as f:
        f.write(digest)
    opts = ["-pkeyopt", "digest:sha256"]
    if kind(pem) == "rsa":
        opts += ["-pkeyopt", "rsa_padding_mode:pss", "-pkeyopt", "rsa_pss_saltlen:32",
                 "-pkeyopt", "rsa_mgf1_md:sha256"]
    return openssl("pkeyutl", "-sign", "-inkey", pem, "-in", path, *opts)


def _der_rs(sig):
    # ECDSA-Sig-Value ::= SEQUENCE { r INTEGER, s INTEGER } (short lengths: P-256)
    assert sig[0] == 0x30 and sig[1] == len(sig) - 2
    out, i = [], 2
    for _ in range(2):
        assert sig[i] == 0x02
        size = sig[i + 1]
        out.append(int.from_bytes(sig[i + 2:i + 2 + size], "big"))
        i += 2 + size
    return out


def block(digest, pem, tmp):
    """One signature block over digest (the SHA-256 of the padded image) by pem."""
    sig = _sign_digest(pem, digest, tmp)
    if kind(pem) == "rsa":
        body = bytes([MAGIC, VERSION_RSA, 0, 0]) + digest + key_material(pem) + sig[::-1]
    else:
        r, s = _der_rs(sig)
        body = (bytes([MAGIC, VERSION_ECDSA, 0, 0]) + digest + key_material(pem)
                + _le(r, 32) + _le(s, 32))
        body += bytes(1196 - len(body))
    assert len(body) == 1196
    return body + _le(zlib.crc32(body), 4) + bytes(16)


def sign_bytes(data, *pems):
    """data padded with 0xFF to a multiple of 4096, then a sector with one block per
    key in pems (1 to 3)."""
    assert 1 <= len(pems) <= 3
    padded = data + b"\xff" * (-len(data) % SECTOR)
    digest = hashlib.sha256(padded).digest()
    with tempfile.TemporaryDirectory(prefix="sigv2-") as tmp:
        blocks = b"".join(block(digest, pem, tmp) for pem in pems)
    return padded + blocks + b"\xff" * (SECTOR - len(blocks))


def sign(src, dst, *pems):
    """Write src signed by pems to dst (executable, like the file it signs)."""
    with open(src, "rb") as f:
        data = f.read()
    with open(dst, "wb") as f:
        f.write(sign_bytes(data, *pems))
    os.chmod(dst, 0o755)
    return dst


def _der_int(value):
    body = value.to_bytes((value.bit_length() + 8) // 8 or 1, "big")  # a leading 0 bit
    return bytes([0x02, len(body)]) + body


def verify_sector(sector, digest, pem):
    """Check, with openssl, that one block of the 4096-byte sector is well formed
    (magic, version, CRC), carries digest and pem's key material, and that its
    signature verifies with pem's public key. Returns the block's index; raises
    AssertionError with the reason otherwise."""
    assert len(sector) == SECTOR, "a sector is 4096 bytes, not %d" % len(sector)
    material = key_material(pem)
    pub = os.path.join(tempfile.mkdtemp(prefix="sigv2-"), "pub.pem")
    try:
        public_key(pem, pub)
        for i in range(3):
            blk = sector[i * BLOCK:(i + 1) * BLOCK]
            if blk[0] != MAGIC:
                break
            assert zlib.crc32(blk[:1196]) == int.from_bytes(blk[1196:1200], "little"), \
                "block %d: CRC-32 mismatch" % i
            if blk[36:36 + len(material)] != material:
                continue  # another key's block
            assert blk[4:36] == digest, "block %d: signed for other bytes" % i
            dpath = os.path.join(os.path.dirname(pub), "digest.bin")
            spath = os.path.join(os.path.dirname(pub), "sig.bin")
            with open(dpath, "wb") as f:
                f.write(digest)
            opts = ["-pkeyopt", "digest:sha256"]
            if blk[1] == VERSION_RSA:
                sig = blk[812:812 + 384][::-1]
                opts += ["-pkeyopt", "rsa_padding_mode:pss", "-pkeyopt", "rsa_pss_saltlen:32",
                         "-pkeyopt", "rsa_mgf1_md:sha256"]
            else:
                assert blk[1] == VERSION_ECDSA and blk[2] == 0, "block %d: not ECDSA P-256" % i
                r = int.from_bytes(blk[101:133], "little")
                s = int.from_bytes(blk[133:165], "little")
                body = _der_int(r) + _der_int(s)
                sig = bytes([0x30, len(body)]) + body
            with open(spath, "wb") as f:
                f.write(sig)
            p = subprocess.run(["openssl", "pkeyutl", "-verify", "-pubin", "-inkey", pub,
                                "-in", dpath, "-sigfile", spath] + opts,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE)
            assert p.returncode == 0, "block %d: the signature does not verify: %s" % (
                i, (p.stdout + p.stderr).decode().strip())
            return i
        raise AssertionError("no block by this key")
    finally:
        import shutil
        shutil.rmtree(os.path.dirname(pub), ignore_errors=True)
