"""Compatibility with the stock ESPHome peers, both ways, written from
docs/protocol.md#native (the numbers come from include/ota/protocol.h through
protocol_consts):
- a stock-style uploader (features compression + SHA-256, no extended protocol, gzip
  when told SUPPORTS_COMPRESSION, waiting for every chunk ack) updates our node
  (legacy password);
- our uploader updates a stock-style device that knows nothing of our extensions
  (answers SUPPORTS_COMPRESSION to the extended bit, SHA-256 or MD5 challenge, no
  update-type byte), and an old version-1 device."""
import gzip
import hashlib
import os
import socket
import sys
import tempfile
import threading
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from nodelib import MAGIC, Node, RawClient, make_image, read_bytes, read_exact, run_ota  # noqa: E402
import protocol_consts as P  # noqa: E402



class StockUploaderTest(unittest.TestCase):
    def test_stock_sequence_updates_our_node(self):
        node = Node(self, "--password", "VERYSECURE")  # legacy auth switched on
        img = make_image(self, seed=1)
        payload = gzip.compress(read_bytes(img), 9)
        c = RawClient(node.port)
        self.addCleanup(c.close)
        version, answer = c.hello(P.FEATURE_COMPRESSION | P.FEATURE_SHA256_AUTH)  # no extended bit
        self.assertEqual(version, P.PROTOCOL_VERSION_2)
        self.assertEqual(answer, P.wire(P.RESP_SUPPORTS_COMPRESSION))  # gzip accepted
        self.assertEqual(c.byte(), P.RESP_REQUEST_AUTH_SHA256)
        self.assertEqual(c.auth_legacy(P.RESP_REQUEST_AUTH_SHA256, "VERYSECURE"), P.RESP_AUTH_OK)
        self.assertEqual(c.prepare(payload), (P.RESP_UPDATE_PREPARE_OK, P.RESP_BIN_MD5_OK))
        for off in range(0, len(payload), P.CHUNK_SIZE):  # stop-and-wait, as stock uploaders do
            c.send(payload[off:off + P.CHUNK_SIZE])
            self.assertEqual(c.byte(), P.RESP_CHUNK_OK)
        self.assertEqual(c.read(2), P.wire(P.RESP_RECEIVE_OK, P.RESP_UPDATE_END_OK))
        c.send(P.wire(P.RESP_OK))
        node.assert_runs(img, 2)


class StockDevice:
    """A device that speaks only what stock ESPHome does (no FEATURE_FLAGS answer, no
    salted auth)."""

    def __init__(self, tc, version=P.PROTOCOL_VERSION_2, method=P.RESP_REQUEST_AUTH_SHA256,
                 password="pw", gzip_ok=True, size_wait=30):
        self.size_wait = size_wait
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
                assert read_exact(c, P.MAGIC_LEN) == MAGIC
                c.sendall(P.wire(P.RESP_OK, self.version))
                features = read_exact(c, 1)[0]
                gz = self.gzip_ok and features & P.FEATURE_COMPRESSION
                # never FEATURE_FLAGS: a stock device has no extended protocol
                c.sendall(P.wire(P.RESP_SUPPORTS_COMPRESSION if gz else P.RESP_HEADER_OK))
                sha = self.method == P.RESP_REQUEST_AUTH_SHA256
                n = P.SHA256_HEX_LEN if sha else P.MD5_HEX_LEN
                h = hashlib.sha256 if sha else hashlib.md5
                nonce = os.urandom(n // 2).hex()
                c.sendall(bytes([self.method]) + nonce.encode())
                reply = read_exact(c, 2 * n).decode()
                cnonce, resp = reply[:n], reply[n:]
                if resp != h((self.password + nonce + cnonce).encode()).hexdigest():
                    c.sendall(P.wire(P.RESP_ERROR_AUTH_INVALID))
                    return
                c.sendall(P.wire(P.RESP_AUTH_OK))
                # ESPHome's ota_esphome.cpp waits only about a second for the size
                c.settimeout(self.size_wait)
                size = int.from_bytes(read_exact(c, 4), "big")  # no update-type byte first
                c.settimeout(30)
                c.sendall(P.wire(P.RESP_UPDATE_PREPARE_OK))
                md5 = read_exact(c, P.MD5_HEX_LEN).decode()
                c.sendall(P.wire(P.RESP_BIN_MD5_OK))
                data, acked = b"", 0
                while len(data) < size:
                    data += c.recv(min(65536, size - len(data)))
                    while self.version == P.PROTOCOL_VERSION_2 and (
                            acked + P.CHUNK_SIZE <= len(data) or
                            (len(data) == size and acked < size)):
                        c.sendall(P.wire(P.RESP_CHUNK_OK))
                        acked += P.CHUNK_SIZE
                if hashlib.md5(data).hexdigest() != md5:
                    c.sendall(P.wire(P.RESP_RECEIVE_OK, P.RESP_ERROR_MD5_MISMATCH))
                    return
                self.image = gzip.decompress(data) if data[:2] == b"\x1f\x8b" else data
                c.sendall(P.wire(P.RESP_RECEIVE_OK, P.RESP_UPDATE_END_OK))
                assert read_exact(c, 1) == P.wire(P.RESP_OK)
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

    def test_size_follows_auth_ok_at_once(self):
        """A large compressible image: hashing and gzip happen before connecting, so
        the size follows AUTH_OK at once (a real ESPHome device waits ~1 s for it;
        stock espota2 gzips in that window and fails on big images)."""
        dev = StockDevice(self, size_wait=0.5)
        path = os.path.join(tempfile.mkdtemp(prefix="ota-big-"), "big.bin")
        self.addCleanup(lambda: __import__("shutil").rmtree(os.path.dirname(path), True))
        with open(path, "wb") as f:
            # 16 MiB of hex text: compresses about 2:1, and slowly
            f.write(os.urandom(8 * 1024 * 1024).hex().encode())
        rc, out, err = run_ota("upload", "--device", "127.0.0.1", "--port", dev.port,
                               "--password", "pw", "-q", path, timeout=300)
        dev.t.join(60)
        self.assertIsNone(dev.error)
        self.assertEqual(rc, 0, err)
        self.assertIn("gzip", out)
        self.assertEqual(dev.image, read_bytes(path))

    def test_gzip_cache_of_one_build(self):
        """Uploading one build again takes its gzip from the cache; a damaged cache
        entry is ignored (compressed again), never sent."""
        path = os.path.join(tempfile.mkdtemp(prefix="ota-cache-"), "fw.bin")
        self.addCleanup(lambda: __import__("shutil").rmtree(os.path.dirname(path), True))
        with open(path, "wb") as f:
            f.write(os.urandom(300000).hex().encode())
        cache = os.path.join(os.environ["XDG_CACHE_HOME"], "ota", "gzip")
        for attempt in range(3):
            dev = StockDevice(self)
            rc, out, err = run_ota("upload", "--device", "127.0.0.1", "--port", dev.port,
                                   "--password", "pw", path)
            dev.t.join(30)
            self.assertIsNone(dev.error)
            self.assertEqual(rc, 0, err)
            self.assertEqual(dev.image, read_bytes(path))
            self.assertIn("gzip", out)
            if attempt == 0:
                self.assertNotIn("taken from the cache", err)
                entries = [e for e in os.listdir(cache) if e.endswith(".gz")]
                self.assertEqual(len(entries), 1, entries)
                self.assertEqual(os.stat(os.path.join(cache, entries[0])).st_mode & 0o777,
                                 0o600)
            elif attempt == 1:
                self.assertIn("taken from the cache", err)
                with open(os.path.join(cache, entries[0]), "r+b") as f:
                    f.seek(-5, os.SEEK_END)
                    f.write(b"XXXXX")  # break its trailer
            else:
                self.assertNotIn("taken from the cache", err)

    def test_v2_md5_device(self):
        self.upload_to(StockDevice(self, method=P.RESP_REQUEST_AUTH_MD5, gzip_ok=False))

    def test_v1_device_without_acks(self):
        self.upload_to(StockDevice(self, version=P.PROTOCOL_VERSION_1), "--no-compress")


if __name__ == "__main__":
    unittest.main()
