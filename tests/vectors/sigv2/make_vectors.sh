#!/bin/sh
# make_vectors.sh - (re)generate the signed-image test vectors of tests/unit/test_signature.c:
# ESP-IDF Secure Boot V2 signature sectors (docs/protocol.md#signed-images), made with
# nothing but the openssl command line and the Python 3 standard library, so that the
# tests do not depend on our own C code to produce what they check.
#
#   tests/vectors/sigv2/make_vectors.sh              keep the keys, re-sign everything
#   tests/vectors/sigv2/make_vectors.sh --new-keys   new keys too
#   tests/vectors/sigv2/make_vectors.sh --digest KEY.pem
#         print the key digest of a public or private key (RSA-3072 or P-256), the
#         32 bytes ESP-IDF burns into eFuses (espsecure digest-sbv2-public-key), in hex
#
# The keys here are test keys, published with the repository: never sign real firmware
# with them. RSA-PSS salts and ECDSA nonces are random, so every run writes different
# signatures; the tests only need them to verify. README.md lists the files.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
command -v openssl >/dev/null || { echo "make_vectors.sh: needs the openssl command line" >&2; exit 1; }
command -v python3 >/dev/null || { echo "make_vectors.sh: needs python3" >&2; exit 1; }
exec python3 - "$here" "$@" <<'PY'
import hashlib, os, re, subprocess, sys, tempfile, zlib

SECTOR = 4096
BLOCK = 1216
MAGIC = 0xE7
VERSION_RSA, VERSION_ECDSA = 0x02, 0x03
CURVE_P256 = 2

def openssl(*args, data=None):
    return subprocess.run(("openssl",) + args, input=data, check=True,
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE).stdout

def le(value, size):
    return value.to_bytes(size, "little")

def u32le(value):
    return le(value & 0xFFFFFFFF, 4)

# ---- keys: the public numbers, read back from openssl ----
OID_RSA = bytes.fromhex("2a864886f70d010101")   # rsaEncryption
OID_EC = bytes.fromhex("2a8648ce3d0201")         # id-ecPublicKey
OID_P256 = bytes.fromhex("2a8648ce3d030107")     # prime256v1
def key_kind(pem):
    der = public_der(pem)
    if OID_RSA in der:
        return "rsa"
    if OID_EC in der and OID_P256 in der and der[-65] == 0x04:
        return "ecdsa"
    sys.exit(f"{pem}: neither an RSA nor a P-256 key")

def is_public(pem):
    with open(pem) as f:
        return "PUBLIC KEY" in f.readline()

def public_der(pem):
    args = ("pkey", "-in", pem, "-pubout", "-outform", "DER")
    return openssl(*(args[:3] + (("-pubin",) if is_public(pem) else ()) + args[3:]))

def rsa_numbers(pem):
    pub = ("-pubin",) if is_public(pem) else ()
    text = openssl("rsa", *pub, "-in", pem, "-noout", "-text").decode()
    modulus = openssl("rsa", *pub, "-in", pem, "-noout", "-modulus").decode()
    n = int(modulus.strip().split("=", 1)[1], 16)
    e = int(re.search(r"(?:publicExponent|Exponent): (\d+)", text).group(1))
    if n.bit_length() != 3072:
        sys.exit(f"{pem}: not an RSA-3072 key")
    return n, e

def ecdsa_point(pem):
    point = public_der(pem)[-65:]
    return int.from_bytes(point[1:33], "big"), int.from_bytes(point[33:], "big")

# ---- the key material of a block, and its digest ----
def rsa_key_material(n, e):
    # n, e, then the two Montgomery constants ESP's RSA peripheral wants:
    # R^2 mod n with R = 2^3072, and -n^-1 mod 2^32; all little-endian
    rinv = pow(2, 2 * 3072, n)
    mdash = (-pow(n, -1, 1 << 32)) % (1 << 32)
    return le(n, 384) + u32le(e) + le(rinv, 384) + u32le(mdash)

def ecdsa_key_material(x, y):
    return bytes([CURVE_P256]) + le(x, 32) + le(y, 32)

def key_material(pem):
    if key_kind(pem) == "rsa":
        return rsa_key_material(*rsa_numbers(pem))
    return ecdsa_key_material(*ecdsa_point(pem))

def key_digest(pem):
    return hashlib.sha256(key_material(pem)).digest()

# ---- signatures, by openssl over the image digest (as the hash itself) ----
def sign(pem, digest, tmp, salt=32):
    path = os.path.join(tmp, "digest.bin")
    with open(path, "wb") as f:
        f.write(digest)
    opts = ["-pkeyopt", "digest:sha256"]
    if key_kind(pem) == "rsa":
        opts += ["-pkeyopt", "rsa_padding_mode:pss", "-pkeyopt", f"rsa_pss_saltlen:{salt}",
                 "-pkeyopt", "rsa_mgf1_md:sha256"]
    sig = openssl("pkeyutl", "-sign", "-inkey", pem, "-in", path, *opts)
    sig_path = os.path.join(tmp, "sig.bin")
    with open(sig_path, "wb") as f:
        f.write(sig)
    openssl("pkeyutl", "-verify", "-inkey", pem, "-in", path, "-sigfile", sig_path, *opts)
    return sig

def der_ecdsa_rs(sig):
    # ECDSA-Sig-Value ::= SEQUENCE { r INTEGER, s INTEGER } (short lengths: P-256)
    assert sig[0] == 0x30 and sig[1] == len(sig) - 2
    out, i = [], 2
    for _ in range(2):
        assert sig[i] == 0x02
        size = sig[i + 1]
        out.append(int.from_bytes(sig[i + 2:i + 2 + size], "big"))
        i += 2 + size
    return out

# ---- blocks and sectors ----
def finish_block(body):
    assert len(body) == 1196
    block = body + u32le(zlib.crc32(body)) + bytes(16)
    assert len(block) == BLOCK
    return block

def rsa_block(digest, material_pem, signer_pem, tmp, salt=32):
    sig = sign(signer_pem, digest, tmp, salt)  # 384 bytes, big-endian
    body = bytes([MAGIC, VERSION_RSA, 0, 0]) + digest + key_material(material_pem) + sig[::-1]
    return finish_block(body)

def ecdsa_block(digest, material_pem, signer_pem, tmp):
    r, s = der_ecdsa_rs(sign(signer_pem, digest, tmp))
    body = (bytes([MAGIC, VERSION_ECDSA, 0, 0]) + digest + key_material(material_pem)
            + le(r, 32) + le(s, 32))
    return finish_block(body + bytes(1196 - len(body)))

def sector(blocks):
    data = b"".join(blocks)
    return data + b"\xff" * (SECTOR - len(data))

def write(path, data):
    with open(path, "wb") as f:
        f.write(data)

def main():
    here, args = sys.argv[1], sys.argv[2:]
    if args[:1] == ["--digest"] and len(args) == 2:
        print(key_digest(args[1]).hex())
        return
    if args not in ([], ["--new-keys"]):
        sys.exit("usage: make_vectors.sh [--new-keys | --digest KEY.pem]")
    os.chdir(here)
    for name, gen in (("rsa_key1", "rsa"), ("rsa_key2", "rsa"),
                      ("ecdsa_key1", "ec"), ("ecdsa_key2", "ec")):
        if args == ["--new-keys"] or not os.path.exists(name + ".pem"):
            if gen == "rsa":
                openssl("genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:3072",
                        "-pkeyopt", "rsa_keygen_pubexp:65537", "-out", name + ".pem")
            else:
                openssl("genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256",
                        "-pkeyopt", "ec_param_enc:named_curve", "-out", name + ".pem")
        openssl("pkey", "-in", name + ".pem", "-pubout", "-out", name + ".pub.pem")
        # the public key in the forms the tests feed the core: digest, canonical numbers
        write(name + ".digest.bin", key_digest(name + ".pem"))
        if gen == "rsa":
            n, e = rsa_numbers(name + ".pem")
            write(name + ".n.bin", n.to_bytes(384, "big"))
            write(name + ".e.bin", e.to_bytes(4, "big"))
        else:
            x, y = ecdsa_point(name + ".pem")
            write(name + ".xy.bin", x.to_bytes(32, "big") + y.to_bytes(32, "big"))

    # the unsigned image: 5000 bytes that start like an ESP app image (magic 0xE9),
    # then deterministic filler; signed, it is padded with 0xFF to 8192
    body, block = bytearray([0xE9, 0x03, 0x02, 0x20]), b"ota sigv2 test image"
    while len(body) < 5000:
        block = hashlib.sha256(block).digest()
        body += block
    image = bytes(body[:5000])
    write("image.bin", image)
    padded = image + b"\xff" * (-len(image) % SECTOR)
    digest = hashlib.sha256(padded).digest()
    write("image.sha256", digest)

    with tempfile.TemporaryDirectory() as tmp:
        signed = {
            "image_rsa.bin": [rsa_block(digest, "rsa_key1.pem", "rsa_key1.pem", tmp)],
            "image_rsa_key2.bin": [rsa_block(digest, "rsa_key2.pem", "rsa_key2.pem", tmp)],
            "image_ecdsa.bin": [ecdsa_block(digest, "ecdsa_key1.pem", "ecdsa_key1.pem", tmp)],
            "image_ecdsa_key2.bin": [ecdsa_block(digest, "ecdsa_key2.pem", "ecdsa_key2.pem", tmp)],
            # key rotation: block 0 by the new key, block 1 by the old one
            "image_rotation.bin": [rsa_block(digest, "rsa_key2.pem", "rsa_key2.pem", tmp),
                                   rsa_block(digest, "rsa_key1.pem", "rsa_key1.pem", tmp)],
            # forgeries: key 1's public key in the block, the signature made by key 2
            "image_forged_rsa.bin": [rsa_block(digest, "rsa_key1.pem", "rsa_key2.pem", tmp)],
            "image_forged_ecdsa.bin": [ecdsa_block(digest, "ecdsa_key1.pem", "ecdsa_key2.pem", tmp)],
            # right key, PSS with a 20-byte salt: not what espsecure makes or ESP checks
            "image_rsa_salt20.bin": [rsa_block(digest, "rsa_key1.pem", "rsa_key1.pem", tmp, 20)],
        }
        for name, blocks in signed.items():
            write(name, padded + sector(blocks))
    print(f"make_vectors.sh: wrote {len(signed)} signed images and 4 keys to {here}")

main()
PY
