"""Every bad case leaves the old image running and the node able to take the next
upload: wrong password, wrong magic, MD5 mismatch, too big, not an executable, a
peer that disconnects or stalls mid-transfer, a second uploader, idle connections.
And the node's main loop never blocks on a slow peer."""
import hashlib
import os
import re
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from nodelib import (DEMO_NODE, MAGIC, HeartbeatWatch, Node, RawClient,  # noqa: E402
                     make_image, read_bytes, sha256_file)
import protocol_consts as P  # noqa: E402

ORIGINAL = None


def original():
    global ORIGINAL
    if ORIGINAL is None:
        ORIGINAL = sha256_file(DEMO_NODE)
    return ORIGINAL


class BadCaseTest(unittest.TestCase):
    def assert_unchanged_then_upload_works(self, node, *upload_args):
        st = node.status()
        self.assertEqual(st["active_slot"], "a")
        self.assertEqual(st["active_sha256"], original())
        self.assertFalse(st["pending"])
        self.assertEqual(node.count(r"booted slot="), 1, node.log())  # never rebooted
        img = make_image(self, seed=99)
        rc, _, err = node.upload(img, *upload_args)
        self.assertEqual(rc, 0, err)
        node.assert_runs(img, 2)

    def test_wrong_password(self):
        node = Node(self)
        img = make_image(self, seed=1)
        rc, out, err = node.upload(img, "--password", "wrong")
        self.assertEqual(rc, 4)
        self.assertIn("authentication failed", err)
        self.assertIn("hint:", err)
        self.assertIn("127.0.0.1", node.log())  # the failure is logged with the peer
        self.assert_unchanged_then_upload_works(node, "--password", "VERYSECURE")

    def test_wrong_magic(self):
        node = Node(self, "--no-password")
        c = RawClient(node.port)
        self.addCleanup(c.close)
        c.send(b"GET / HTTP/1.1\r\n\r\n")
        self.assertEqual(c.byte(), P.RESP_ERROR_MAGIC)
        self.assertTrue(c.is_closed())
        self.assert_unchanged_then_upload_works(node)

    def test_md5_mismatch(self):
        node = Node(self, "--no-password")
        payload = read_bytes(make_image(self, seed=2))
        c = RawClient(node.port)
        self.addCleanup(c.close)
        c.hello(P.FEATURE_NONE)
        self.assertEqual(c.byte(), P.RESP_AUTH_OK)
        self.assertEqual(c.prepare(payload, md5="0" * 32), (P.RESP_UPDATE_PREPARE_OK, P.RESP_BIN_MD5_OK))
        c.send(payload)
        acks, received, end = c.finish()
        self.assertEqual(acks, (len(payload) + P.CHUNK_SIZE - 1) // P.CHUNK_SIZE)
        self.assertEqual((received, end), (P.RESP_RECEIVE_OK, P.RESP_ERROR_MD5_MISMATCH))
        self.assertTrue(c.is_closed())
        self.assert_unchanged_then_upload_works(node)

    def test_image_larger_than_slot(self):
        node = Node(self, "--no-password", "--slot-size", "200000")
        img = make_image(self, seed=3)
        rc, out, err = node.upload(img, "--no-compress")
        self.assertEqual(rc, 5, err)
        self.assertIn("0x%02X" % P.RESP_ERROR_UPDATE_PREPARE, err)
        self.assertIn("too big", err)
        # compressed, the wire size fits but the inflated image does not
        rc, out, err = node.upload(img)
        self.assertEqual(rc, 5, err)
        st = node.status()
        self.assertEqual((st["active_slot"], st["active_sha256"]), ("a", original()))
        self.assertFalse(st["slots"]["b"]["present"])  # nothing left in the other slot

    def test_not_an_executable(self):
        node = Node(self, "--no-password")
        junk = os.path.join(node.dir, "..", os.path.basename(node.dir) + "-junk.bin")
        with open(junk, "wb") as f:
            f.write(hashlib.shake_256(b"junk").digest(60000))
        self.addCleanup(os.unlink, junk)
        rc, out, err = node.upload(junk)
        self.assertEqual(rc, 5, err)
        self.assertIn("0x%02X" % P.RESP_ERROR_MAGIC, err)
        self.assert_unchanged_then_upload_works(node)

    def test_disconnect_mid_transfer(self):
        node = Node(self, "--no-password")
        payload = read_bytes(make_image(self, seed=4))
        c = RawClient(node.port)
        c.hello(P.FEATURE_NONE)
        self.assertEqual(c.byte(), P.RESP_AUTH_OK)
        self.assertEqual(c.prepare(payload), (P.RESP_UPDATE_PREPARE_OK, P.RESP_BIN_MD5_OK))
        c.send(payload[: len(payload) // 2])
        c.close()
        # the node notices on its next read ("lost after N of M") or, when the close
        # came as a reset, on sending a chunk ack ("lost during upload"): both abandon
        node.wait_for(lambda: re.search(r"connection lost (after|during upload)", node.log()),
                      10, "abandoned update")
        self.assert_unchanged_then_upload_works(node)

    def test_stalled_peer_times_out_and_frees_the_node(self):
        node = Node(self, "--no-password", "--data-timeout-ms", "1500",
                    "--handshake-timeout-ms", "1500")
        payload = read_bytes(make_image(self, seed=5))
        c = RawClient(node.port)
        self.addCleanup(c.close)
        c.hello(P.FEATURE_NONE)
        self.assertEqual(c.byte(), P.RESP_AUTH_OK)
        self.assertEqual(c.prepare(payload), (P.RESP_UPDATE_PREPARE_OK, P.RESP_BIN_MD5_OK))
        c.send(payload[:100000])  # ... and then nothing, with the socket open
        node.wait_for(lambda: "silent for" in node.log(), 15, "the data timeout")
        self.assertTrue(c.is_closed())
        self.assert_unchanged_then_upload_works(node)

    def test_second_uploader_gets_busy_and_first_succeeds(self):
        node = Node(self, "--no-password")
        img = make_image(self, seed=6)
        payload = read_bytes(img)
        a = RawClient(node.port)
        self.addCleanup(a.close)
        a.hello(P.FEATURE_NONE)
        self.assertEqual(a.byte(), P.RESP_AUTH_OK)
        self.assertEqual(a.prepare(payload), (P.RESP_UPDATE_PREPARE_OK, P.RESP_BIN_MD5_OK))  # a holds the update lock now
        a.send(payload[:200000])
        t0 = time.monotonic()
        b = RawClient(node.port, timeout=5)
        self.addCleanup(b.close)
        self.assertEqual(b.byte(), P.RESP_ERROR_BUSY)  # told at once, before saying anything
        self.assertLess(time.monotonic() - t0, 1.0, "ERROR_BUSY came late")
        self.assertTrue(b.is_closed())
        rc, _, err = node.upload(make_image(self, seed=7))  # the tool says "busy" too
        self.assertEqual(rc, 5)
        self.assertIn("busy", err)
        a.send(payload[200000:])
        acks, received, end = a.finish()
        self.assertEqual((received, end), (P.RESP_RECEIVE_OK, P.RESP_UPDATE_END_OK))
        a.send(P.wire(P.RESP_OK))
        node.assert_runs(img, 2)

    def test_idle_connections_do_not_lock_out_an_uploader(self):
        # a long handshake timeout: the upload must not wait for idle peers to time out
        node = Node(self, "--handshake-timeout-ms", "120000")
        idle = [RawClient(node.port) for _ in range(6)]  # more than the handshake pool
        for c in idle:
            self.addCleanup(c.close)
        half = RawClient(node.port)  # one that got its challenge and never answers
        self.addCleanup(half.close)
        half.hello(P.FEATURE_SALTED_AUTH | P.FEATURE_SHA256_AUTH | P.FEATURE_EXTENDED)
        self.assertEqual(half.byte(), P.RESP_REQUEST_AUTH_SALTED)
        img = make_image(self, seed=8)
        rc, _, err = node.upload(img, "--password", "VERYSECURE", "--timeout", "20")
        self.assertEqual(rc, 0, err)
        node.assert_runs(img, 2)

    def test_main_loop_keeps_running_with_slow_peers(self):
        """A peer dribbles its handshake one byte every 300 ms, then stalls mid-data
        while holding the update lock: the 100 ms heartbeat keeps coming throughout
        (no gap near the peer's pauses), the loop counter keeps growing, and the update
        still completes when the peer resumes."""
        node = Node(self, "--no-password", "--heartbeat-ms", "100")
        watch = HeartbeatWatch(node)
        img = make_image(self, seed=9)
        payload = read_bytes(img)
        slow = RawClient(node.port)
        self.addCleanup(slow.close)
        t0 = watch.mark()
        for b in MAGIC + P.wire(P.FEATURE_NONE) + len(payload).to_bytes(4, "big"):  # magic, features, size
            slow.send(bytes([b]))
            time.sleep(0.3)
        # version 2, HEADER_OK (no compression asked), AUTH_OK (no password), PREPARE_OK
        self.assertEqual(slow.read(5), P.wire(P.RESP_OK, P.PROTOCOL_VERSION_2, P.RESP_HEADER_OK,
                                                 P.RESP_AUTH_OK, P.RESP_UPDATE_PREPARE_OK))
        slow.send(hashlib.md5(payload).hexdigest().encode())
        self.assertEqual(slow.byte(), P.RESP_BIN_MD5_OK)
        slow.send(payload[:50000])
        stall = watch.mark()
        time.sleep(2.0)  # the peer says nothing, the socket stays open
        t1 = watch.mark()
        gaps = watch.gaps_since(t0, t1)
        beats = watch.between(t0, t1)
        detail = "gaps %s; node log:\n%s" % (["%.2f" % g for g in gaps], node.log()[-3000:])
        self.assertLess(max(gaps), 1.0, "the main loop stalled: " + detail)
        self.assertGreaterEqual(len(watch.between(stall, t1)), 8, detail)  # ~20 expected
        self.assertGreaterEqual(len(beats), 0.5 * (t1 - t0) / 0.1, detail)
        loops = [lp for _, lp in beats]
        self.assertEqual(loops, sorted(set(loops)), "loop counter not increasing: " + detail)
        watch.stop()
        slow.send(payload[50000:])  # the peer resumes: the update goes through
        _, received, end = slow.finish()
        self.assertEqual((received, end), (P.RESP_RECEIVE_OK, P.RESP_UPDATE_END_OK))
        slow.send(P.wire(P.RESP_OK))
        node.assert_runs(img, 2)


if __name__ == "__main__":
    unittest.main()
