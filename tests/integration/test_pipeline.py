"""The late digest and the pipelined handshake (docs/protocol.md#native-late-md5), on
the wire:
- round trips counted through a delaying proxy (each direction delayed by DELAY): our
  uploader against our node costs at most 3 round trips, with and without a password;
  the same proxy counts 5 for the stock sequence (the estimator is checked);
- the bytes our uploader sends our node: the feature bit, the size with the data right
  behind it, the MD5 after the data;
- a late digest that does not match gets ERROR_MD5_MISMATCH and the old image keeps
  running; a client that does not ask gets the stock order;
- against a stock-style ESPHome device (extended protocol, no late digest, the
  ESP8266 habit of waiting only 1 s for the size after AUTH_OK) our uploader sends the
  stock sequence, one message per write, each after its answer, and a 16 MiB
  compressible image passes, also when the node was recorded as ours before."""
import gzip
import hashlib
import os
import shutil
import socket
import sys
import tempfile
import threading
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from nodelib import (MAGIC, Node, RawClient, known_nodes_file, make_image,  # noqa: E402
                     read_bytes, read_exact, run_ota)
import protocol_consts as P  # noqa: E402

DELAY = 0.2  # seconds added to each direction: a round trip costs 0.4 s


class DelayProxy:
    """TCP proxy on 127.0.0.1 in front of 127.0.0.1:port that holds every chunk for
    `delay` seconds in each direction (in order), and records for each connection
    [(arrival time, 'c' or 's', bytes)]."""

    def __init__(self, tc, port, delay):
        self.port_up, self.delay = port, delay
        self.srv = socket.socket()
        self.srv.bind(("127.0.0.1", 0))
        self.srv.listen(8)
        self.port = self.srv.getsockname()[1]
        self.conns = []
        self.stopping = False
        self.threads = []
        t = threading.Thread(target=self.accept_loop, daemon=True)
        t.start()
        tc.addCleanup(self.stop)

    def stop(self):
        self.stopping = True
        self.srv.close()
        for t in self.threads:
            t.join(5)

    def accept_loop(self):
        while not self.stopping:
            try:
                c, _ = self.srv.accept()
            except OSError:
                return
            u = socket.create_connection(("127.0.0.1", self.port_up))
            for s in (c, u):
                s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            events = []
            self.conns.append(events)
            for src, dst, tag in ((c, u, "c"), (u, c, "s")):
                t = threading.Thread(target=self.pump, args=(src, dst, tag, events), daemon=True)
                t.start()
                self.threads.append(t)

    def pump(self, src, dst, tag, events):
        q, cv = [], threading.Condition()

        def writer():
            while True:
                with cv:
                    while not q:
                        cv.wait()
                    due, data = q.pop(0)
                wait = due - time.monotonic()
                if wait > 0:
                    time.sleep(wait)
                try:
                    if data is None:
                        dst.shutdown(socket.SHUT_WR)
                        return
                    dst.sendall(data)
                except OSError:
                    return

        w = threading.Thread(target=writer, daemon=True)
        w.start()
        while True:
            try:
                data = src.recv(262144)
            except OSError:
                data = b""
            now = time.monotonic()
            if data:
                events.append((now, tag, data))
            with cv:
                q.append((now + self.delay, data or None))
                cv.notify()
            if not data:
                break
        w.join(30)
        for s in (src, dst):
            try:
                s.close()
            except OSError:
                pass

    @staticmethod
    def span(events):
        """From the first client byte to the last device byte, at the proxy."""
        first = min(t for t, d, _ in events if d == "c")
        last = max(t for t, d, _ in events if d == "s")
        return last - first

    @staticmethod
    def stream(events, tag):
        return b"".join(b for _, d, b in events if d == tag)


def round_trips(span, base, delay):
    """Round trips in an exchange that took `span` at the proxy with `delay` per
    direction, `base` without delay: the last device byte reaches the proxy after
    (k - 1) round trips and one more device-bound pass."""
    return (span - base - delay) / (2 * delay) + 1


class PipelineTest(unittest.TestCase):
    def measure(self, node, args, recorded):
        """Round trips of one upload of a small image, from a proxy without delay and
        one with DELAY. recorded: the tool's record says the node took the late
        digest before (as the first upload through a port leaves it)."""
        spans = {}
        for delay in (0.0, DELAY):
            known = known_nodes_file(self)
            os.makedirs(os.path.dirname(known), exist_ok=True)
            rec = os.path.join(os.path.dirname(known), "updated_nodes")
            img = make_image(self, seed=41 + int(delay * 1000), extra=20000)
            proxy = DelayProxy(self, node.port, delay)
            key = "127.0.0.1:%d" % proxy.port
            if recorded:
                with open(rec, "w") as f:
                    f.write("%s 1 0 0 %d\n" % (key, P.SERVER_FLAG_LATE_MD5))
            boots = node.count(r"\[I\]\[ota\] listening on")
            rc, out, err = run_ota("upload", "--device", "127.0.0.1", "--port", proxy.port,
                                   "--no-compress", *args, img, env={"OTA_KNOWN_NODES": known})
            self.assertEqual(rc, 0, err + node.log()[-3000:])
            node.assert_runs(img, boots + 1)
            time.sleep(0.2)  # the proxy sees the close
            self.assertEqual(len(proxy.conns), 1)
            events = proxy.conns[0]
            spans[delay] = DelayProxy.span(events)
            c2s = DelayProxy.stream(events, "c")
            s2c = DelayProxy.stream(events, "s")
            # asked, offered, and the MD5 after the data (then the final ack)
            self.assertTrue(c2s[P.MAGIC_LEN] & P.FEATURE_LATE_MD5)
            self.assertEqual(s2c[2], P.RESP_FEATURE_FLAGS)
            self.assertTrue(s2c[3] & P.SERVER_FLAG_LATE_MD5)
            self.assertEqual(c2s[-33:],
                             hashlib.md5(read_bytes(img)).hexdigest().encode() + b"\x00")
            # what the node said is recorded for the next upload
            with open(rec) as f:
                line = [l.split() for l in f if l.startswith(key + " ")]
            self.assertEqual(len(line), 1)
            self.assertTrue(int(line[0][4]) & P.SERVER_FLAG_LATE_MD5)
        k = round_trips(spans[DELAY], spans[0.0], DELAY)
        sys.stderr.write("[%.2f round trips: %.3f s, %.3f s without delay] " %
                         (k, spans[DELAY], spans[0.0]))
        return k, spans

    def test_no_password_first_contact(self):
        node = Node(self, "--no-password")
        k, spans = self.measure(node, (), recorded=False)
        self.assertLessEqual(k, 3.4, spans)  # magic, features, size + data

    def test_no_password_recorded(self):
        node = Node(self, "--no-password")
        k, spans = self.measure(node, (), recorded=True)
        self.assertLessEqual(k, 2.4, spans)  # magic + features, size + data

    def test_salted_recorded(self):
        node = Node(self)  # salted verifier of VERYSECURE
        k, spans = self.measure(node, ("--password", "VERYSECURE"), recorded=True)
        self.assertLessEqual(k, 3.4, spans)  # magic + features, proof + size, data

    def test_salted_first_contact(self):
        node = Node(self)
        k, spans = self.measure(node, ("--password", "VERYSECURE"), recorded=False)
        self.assertLessEqual(k, 4.4, spans)  # magic, features, proof + size, data

    def test_estimator_counts_the_stock_sequence(self):
        """The stock order through the same proxy: magic, features, size, MD5, data:
        5 round trips. So the counts above are round trips, not noise."""
        node = Node(self, "--no-password")
        spans = {}
        for delay in (0.0, DELAY):
            payload = read_bytes(make_image(self, seed=50 + int(delay * 1000), extra=20000))
            proxy = DelayProxy(self, node.port, delay)
            boots = node.count(r"\[I\]\[ota\] listening on")
            c = RawClient(proxy.port)
            self.addCleanup(c.close)
            version, answer = c.hello(P.FEATURE_EXTENDED)
            self.assertEqual(answer[0], P.RESP_FEATURE_FLAGS)
            self.assertFalse(answer[1] & P.SERVER_FLAG_LATE_MD5)  # not asked, not offered
            self.assertEqual(c.byte(), P.RESP_AUTH_OK)
            c.send(P.wire(P.UPDATE_TYPE_APP))
            self.assertEqual(c.prepare(payload), (P.RESP_UPDATE_PREPARE_OK, P.RESP_BIN_MD5_OK))
            c.send(payload)
            _, received, end = c.finish()
            self.assertEqual((received, end), (P.RESP_RECEIVE_OK, P.RESP_UPDATE_END_OK))
            c.send(P.wire(P.RESP_OK))
            node.wait_listening(boots + 1)
            time.sleep(0.2)
            spans[delay] = DelayProxy.span(proxy.conns[-1])
        k = round_trips(spans[DELAY], spans[0.0], DELAY)
        sys.stderr.write("[%.2f round trips] " % k)
        self.assertGreater(k, 4.5, spans)
        self.assertLess(k, 5.6, spans)


class LateDigestTest(unittest.TestCase):
    """The extension from the spec, by a client written from docs/protocol.md."""

    def late_session(self, node, payload, md5hex):
        c = RawClient(node.port)
        self.addCleanup(c.close)
        version, answer = c.hello(P.FEATURE_EXTENDED | P.FEATURE_LATE_MD5)
        self.assertEqual(answer[0], P.RESP_FEATURE_FLAGS)
        self.assertTrue(answer[1] & P.SERVER_FLAG_LATE_MD5)
        self.assertEqual(c.byte(), P.RESP_AUTH_OK)
        # type, size, data and digest in one write: the node reads them in order
        c.send(P.wire(P.UPDATE_TYPE_APP) + len(payload).to_bytes(4, "big") + payload +
               md5hex.encode())
        self.assertEqual(c.byte(), P.RESP_UPDATE_PREPARE_OK)  # no BIN_MD5_OK: it comes late
        return c

    def test_right_digest_activates(self):
        node = Node(self, "--no-password")
        img = make_image(self, seed=60)
        payload = read_bytes(img)
        c = self.late_session(node, payload, hashlib.md5(payload).hexdigest())
        acks, received, end = c.finish()
        self.assertEqual(acks, (len(payload) + P.CHUNK_SIZE - 1) // P.CHUNK_SIZE)
        self.assertEqual((received, end), (P.RESP_RECEIVE_OK, P.RESP_UPDATE_END_OK))
        c.send(P.wire(P.RESP_OK))
        node.assert_runs(img, 2)

    def test_wrong_digest_keeps_the_old_image(self):
        node = Node(self, "--no-password")
        before = node.status()
        payload = read_bytes(make_image(self, seed=61))
        c = self.late_session(node, payload, hashlib.md5(payload + b"x").hexdigest())
        acks, received, end = c.finish()
        self.assertEqual((received, end), (P.RESP_RECEIVE_OK, P.RESP_ERROR_MD5_MISMATCH))
        self.assertTrue(c.is_closed())
        st = node.status()
        self.assertEqual(st["active_slot"], before["active_slot"])
        self.assertEqual(st["active_sha256"], before["active_sha256"])
        self.assertFalse(st["pending"])
        self.assertEqual(node.count(r"booted slot="), 1, node.log())  # never rebooted
        # and the node takes the next upload (our uploader, late digest)
        img = make_image(self, seed=62)
        rc, _, err = node.upload(img)
        self.assertEqual(rc, 0, err)
        node.assert_runs(img, 2)

    def test_gzip_with_late_digest(self):
        node = Node(self, "--no-password")
        img = make_image(self, seed=63, fill=0x5A, extra=400000)
        gz = gzip.compress(read_bytes(img), 6)
        c = RawClient(node.port)
        self.addCleanup(c.close)
        _, answer = c.hello(P.FEATURE_EXTENDED | P.FEATURE_LATE_MD5 | P.FEATURE_COMPRESSION)
        self.assertEqual(answer[1] & (P.SERVER_FLAG_LATE_MD5 | P.SERVER_FLAG_COMPRESSION),
                         P.SERVER_FLAG_LATE_MD5 | P.SERVER_FLAG_COMPRESSION)
        self.assertEqual(c.byte(), P.RESP_AUTH_OK)
        c.send(P.wire(P.UPDATE_TYPE_APP) + len(gz).to_bytes(4, "big"))
        self.assertEqual(c.byte(), P.RESP_UPDATE_PREPARE_OK)
        c.send(gz + hashlib.md5(gz).hexdigest().encode())
        _, received, end = c.finish()
        self.assertEqual((received, end), (P.RESP_RECEIVE_OK, P.RESP_UPDATE_END_OK))
        c.send(P.wire(P.RESP_OK))
        node.assert_runs(img, 2)


class StockExtendedDevice:
    """A device as current ESPHome: answers FEATURE_FLAGS (its own flags only, never
    ours) to an extended client, no password, reads the update type, waits only
    `size_wait` for the size after AUTH_OK (the ESP8266 habit), MD5 before the data.
    Records each message as received and whether more bytes were already waiting when
    it had read one (check_pipelining: the uploader must wait for each answer)."""

    def __init__(self, tc, size_wait=1.0, check_pipelining=True):
        self.size_wait, self.check = size_wait, check_pipelining
        self.srv = socket.socket()
        self.srv.bind(("127.0.0.1", 0))
        self.srv.listen(1)
        tc.addCleanup(self.srv.close)
        self.port = self.srv.getsockname()[1]
        self.received = b""
        self.early = []  # messages after which bytes were waiting unasked for
        self.image = None
        self.error = None
        self.t = threading.Thread(target=self.serve, daemon=True)
        self.t.start()

    def msg(self, c, n, name, settle=True):
        data = read_exact(c, n)
        self.received += data
        if self.check and settle:
            time.sleep(0.05)  # anything the uploader sent without waiting is here now
            timeout = c.gettimeout()
            c.settimeout(0)  # a peek that does not wait
            try:
                if c.recv(1, socket.MSG_PEEK):
                    self.early.append(name)
            except BlockingIOError:
                pass
            finally:
                c.settimeout(timeout)
        return data

    def serve(self):
        try:
            c, _ = self.srv.accept()
            c.settimeout(30)
            with c:
                assert self.msg(c, P.MAGIC_LEN, "magic") == MAGIC
                c.sendall(P.wire(P.RESP_OK, P.PROTOCOL_VERSION_2))
                features = self.msg(c, 1, "features")[0]
                assert features & P.FEATURE_EXTENDED
                # ESPHome's flags: compression (0x01), partition access (0x02)
                c.sendall(P.wire(P.RESP_FEATURE_FLAGS, 0x01 | 0x02, P.RESP_AUTH_OK))
                c.settimeout(self.size_wait)
                t0 = time.monotonic()
                # the type and the size come as two writes with no answer between
                assert self.msg(c, 1, "type", settle=False) == P.wire(P.UPDATE_TYPE_APP)
                size = int.from_bytes(self.msg(c, 4, "size"), "big")
                self.size_after = time.monotonic() - t0
                c.settimeout(30)
                c.sendall(P.wire(P.RESP_UPDATE_PREPARE_OK))
                md5 = self.msg(c, P.MD5_HEX_LEN, "md5").decode()
                c.sendall(P.wire(P.RESP_BIN_MD5_OK))
                data, acked = b"", 0
                while len(data) < size:
                    data += c.recv(min(262144, size - len(data)))
                    while acked + P.CHUNK_SIZE <= len(data) or (len(data) == size and
                                                                acked < size):
                        c.sendall(P.wire(P.RESP_CHUNK_OK))
                        acked += P.CHUNK_SIZE
                self.received += data
                if hashlib.md5(data).hexdigest() != md5:
                    c.sendall(P.wire(P.RESP_RECEIVE_OK, P.RESP_ERROR_MD5_MISMATCH))
                    return
                self.image = gzip.decompress(data) if data[:2] == b"\x1f\x8b" else data
                c.sendall(P.wire(P.RESP_RECEIVE_OK, P.RESP_UPDATE_END_OK))
                self.received += self.msg(c, 1, "final ack", settle=False)
        except Exception as e:  # reported by the test
            self.error = e


class StockDeviceTest(unittest.TestCase):
    def big_image(self):
        d = tempfile.mkdtemp(prefix="ota-big-")
        self.addCleanup(shutil.rmtree, d, True)
        path = os.path.join(d, "big.bin")
        with open(path, "wb") as f:
            # 16 MiB of hex text: compresses about 2:1, and slowly
            f.write(os.urandom(8 * 1024 * 1024).hex().encode())
        return path

    def upload(self, dev, path, known):
        rc, out, err = run_ota("upload", "--device", "127.0.0.1", "--port", dev.port, "-q",
                               path, timeout=300, env={"OTA_KNOWN_NODES": known})
        dev.t.join(120)
        self.assertIsNone(dev.error)
        self.assertEqual(rc, 0, err)
        self.assertEqual(dev.image, read_bytes(path))
        return out

    def test_stock_sequence_byte_for_byte_16mib(self):
        dev = StockExtendedDevice(self)
        path = self.big_image()
        known = known_nodes_file(self)
        out = self.upload(dev, path, known)
        self.assertIn("gzip", out)
        self.assertEqual(dev.early, [])  # every message waited for its answer
        # the stock stream: magic, features, type, size, MD5, the gzip bytes, final ack
        r = dev.received
        self.assertEqual(r[:P.MAGIC_LEN], MAGIC)
        features = r[P.MAGIC_LEN]
        self.assertEqual(r[P.MAGIC_LEN + 1], P.UPDATE_TYPE_APP)
        size = int.from_bytes(r[P.MAGIC_LEN + 2:P.MAGIC_LEN + 6], "big")
        md5 = r[P.MAGIC_LEN + 6:P.MAGIC_LEN + 38].decode()
        data = r[P.MAGIC_LEN + 38:-1]
        self.assertEqual(len(data), size)
        self.assertEqual(hashlib.md5(data).hexdigest(), md5)
        self.assertEqual(r[-1:], P.wire(P.RESP_OK))
        self.assertEqual(gzip.decompress(data), read_bytes(path))
        self.assertTrue(features & P.FEATURE_EXTENDED)

    def test_recorded_as_ours_then_stock_16mib(self):
        """The record says the node took the late digest (it was reflashed with stock
        ESPHome since): magic and features go in one write (ESPHome reads exact
        lengths), the MD5 is computed once the flags say no late digest, and the
        size still comes well inside the device's second."""
        dev = StockExtendedDevice(self, check_pipelining=False)
        path = self.big_image()
        known = known_nodes_file(self)
        os.makedirs(os.path.dirname(known), exist_ok=True)
        with open(os.path.join(os.path.dirname(known), "updated_nodes"), "w") as f:
            f.write("127.0.0.1:%d 1 0 0 %d\n" % (dev.port, P.SERVER_FLAG_LATE_MD5 |
                                                 P.SERVER_FLAG_COMPRESSION))
        self.upload(dev, path, known)
        self.assertLess(dev.size_after, 0.5)
        r = dev.received
        md5 = r[P.MAGIC_LEN + 6:P.MAGIC_LEN + 38].decode()
        self.assertEqual(hashlib.md5(r[P.MAGIC_LEN + 38:-1]).hexdigest(), md5)
        # and the record now says what the device answered: no late digest
        with open(os.path.join(os.path.dirname(known), "updated_nodes")) as f:
            rec = f.read().split()
        self.assertEqual(int(rec[4]) & P.SERVER_FLAG_LATE_MD5, 0)


if __name__ == "__main__":
    unittest.main()
