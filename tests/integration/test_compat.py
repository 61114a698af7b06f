"""Compatibility with the stock ESPHome peers, both ways, written from PROTOCOL.md:
- a stock-style uploader (features compression + SHA-256, no extended protocol, gzip
  when told 0x46, waiting for every chunk ack) updates our node (legacy password);
- our uploader updates a stock-style device that knows nothing of our extensions
  (answers 0x46 to the extended bit, SHA-256 or MD5 challenge, no update-type byte),
  and an old version-1 device."""
import gzip
import hashlib
import os
import socket
import sys
import threading
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from nodelib import MAGIC, Node, RawClient, make_image, read_bytes, run_ota  # noqa: E402


def read_exact(s, n):
    b = b""
    while len(b) < n:
        c = s.recv(n - len(b))
        if not c:
            raise ConnectionError("closed")
        b += c
    return b


class StockUploaderTest(unittest.TestCase):
    def test_stock_sequence_updates_our_node(self):
        node = Node(self, "--password", "VERYSECURE")  # legacy auth switched on
        img = make_image(self, seed=1)
        payload = gzip.compress(read_bytes(img), 9)
        c = RawClient(node.port)
        self.addCleanup(c.close)
        version, answer = c.hello(0x01 | 0x02)  # compression + SHA-256, no extended bit
        self.assertEqual(version, 2)
        self.assertEqual(answer, b"\x46")  # gzip accepted
        self.assertEqual(c.byte(), 0x02)
        self.assertEqual(c.auth_legacy(0x02, "VERYSECURE"), 0x41)
        self.assertEqual(c.prepare(payload), (0x42, 0x43))
        for off in range(0, len(payload), 8192):  # stop-and-wait, as stock uploaders do
            c.send(payload[off:off + 8192])
            self.assertEqual(c.byte(), 0x47)
        self.assertEqual(c.read(2), b"\x44\x45")
        c.send(b"\x00")
        node.assert_runs(img, 2)


class StockDevice:
    """A device that speaks only what stock ESPHome does (no 0x48, no salted auth)."""

    def __init__(self, tc, version=2, method=0x02, password="pw", gzip_ok=True):
        self.srv = socket.socket()
        self.srv.bind(("127.0.0.1", 0))
        self.srv.listen(1)
        tc.addCleanup(self.srv.close)
        self.port = self.srv.getsockname()[1]
        self.version, self.method, self.password, self.gzip_ok = version, method, password, gzip_ok
        self.image = None
        self.error = None
        self.t = threading.Thread(target=self.serve, daemon=True)
        self.t.start()

    def serve(self):
        try:
            c, _ = self.srv.accept()
            c.settimeout(30)
            with c:
                assert read_exact(c, 5) == MAGIC
                c.sendall(bytes([0x00, self.version]))
                features = read_exact(c, 1)[0]
                gz = self.gzip_ok and features & 0x01
                c.sendall(b"\x46" if gz else b"\x40")  # never 0x48: no extended protocol
                n = 64 if self.method == 0x02 else 32
                h = hashlib.sha256 if self.method == 0x02 else hashlib.md5
                nonce = os.urandom(n // 2).hex()
                c.sendall(bytes([self.method]) + nonce.encode())
                reply = read_exact(c, 2 * n).decode()
                cnonce, resp = reply[:n], reply[n:]
                if resp != h((self.password + nonce + cnonce).encode()).hexdigest():
                    c.sendall(b"\x82")
                    return
                c.sendall(b"\x41")
                size = int.from_bytes(read_exact(c, 4), "big")  # no update-type byte first
                c.sendall(b"\x42")
                md5 = read_exact(c, 32).decode()
                c.sendall(b"\x43")
                data, acked = b"", 0
                while len(data) < size:
                    data += c.recv(min(65536, size - len(data)))
                    while self.version == 2 and (acked + 8192 <= len(data) or
                                                 (len(data) == size and acked < size)):
                        c.sendall(b"\x47")
                        acked += 8192
                if hashlib.md5(data).hexdigest() != md5:
                    c.sendall(b"\x44\x8b")
                    return
                self.image = gzip.decompress(data) if data[:2] == b"\x1f\x8b" else data
                c.sendall(b"\x44\x45")
                assert read_exact(c, 1) == b"\x00"
        except Exception as e:  # reported by the test
            self.error = e


class StockDeviceTest(unittest.TestCase):
    def upload_to(self, dev, *args):
        img = make_image(self, seed=5)
        rc, out, err = run_ota("upload", "--device", "127.0.0.1", "--port", dev.port,
                               "--password", "pw", *args, img)
        dev.t.join(30)
        self.assertIsNone(dev.error)
        self.assertEqual(rc, 0, err)
        self.assertEqual(dev.image, read_bytes(img))
        return out

    def test_v2_sha256_gzip(self):
        out = self.upload_to(StockDevice(self))
        self.assertIn("gzip", out)

    def test_v2_md5_device(self):
        self.upload_to(StockDevice(self, method=0x01, gzip_ok=False))

    def test_v1_device_without_acks(self):
        self.upload_to(StockDevice(self, version=1), "--no-compress")


if __name__ == "__main__":
    unittest.main()
