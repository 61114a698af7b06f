#!/usr/bin/env python3
"""Writes the seed corpus of fuzz_server (tests/fuzz/corpus/server/): scripts in the
target's input format that drive complete, valid sessions, so the fuzzer starts from
inputs that reach every step. Run it again after changing the format."""
import gzip
import hashlib
import os
import sys

MAGIC = bytes([0x6C, 0x26, 0xF7, 0x5C, 0x45])


def send(conn, payload):
    out = b""
    for k in range(0, len(payload), 255):
        piece = payload[k:k + 255]
        out += bytes([1 | (conn << 3), len(piece)]) + piece
    return out


def upload_script(cfg, features, image, ext=False):
    md5 = hashlib.md5(image).hexdigest().encode()
    s = bytes([cfg, 0])  # config, open connection 0
    s += send(0, MAGIC + bytes([features]))
    if ext:
        s += send(0, b"\x00")
    s += send(0, len(image).to_bytes(4, "big") + md5)
    s += send(0, image)
    s += send(0, b"\x00")  # final ack
    return s


def main(out_dir):
    os.makedirs(out_dir, exist_ok=True)
    image = bytes(range(256)) * 40 + b"tail"
    gz = gzip.compress(image * 4, 9)
    seeds = {
        "plain_v2": upload_script(0x00, 0x00, image),
        "plain_v1": upload_script(0x04, 0x00, image),
        "extended": upload_script(0x08, 0x05, image, ext=True),
        "gzip": upload_script(0x08, 0x01, gz),
        "busy": bytes([0x00, 0, 0]) + send(0, MAGIC + b"\x00" + (100).to_bytes(4, "big"))
        + send(1, MAGIC),
        "auth_sha256": bytes([0x01, 0]) + send(0, MAGIC + b"\x02") + send(0, b"a" * 128),
        "auth_salted": bytes([0x02, 0]) + send(0, MAGIC + b"\x86") + send(0, b"\x11" * 64),
        "bad_magic": bytes([0x00, 0]) + send(0, b"GET / HTTP/1.0\r\n\r\n"),
        "hangup": upload_script(0x00, 0x00, image)[:300] + bytes([4]),
    }
    for name, data in seeds.items():
        with open(os.path.join(out_dir, name), "wb") as f:
            f.write(data)


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(__file__), "corpus", "server"))
