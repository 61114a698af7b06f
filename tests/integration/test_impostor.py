"""The uploader and a device that is not what it claims (issue 12 item 2): a fake
device on 127.0.0.1, written from docs/protocol.md#native and #native-salted
independently of the C code (its numbers come from the headers, protocol_consts),
plays the impostor in each way it can (AUTH_OK without a challenge, the MD5 and
SHA-256 challenges whose answers it could crack offline, the salted method with a
signature it cannot know, a new salt) and counts every byte it gets after its auth
offer: a refused offer gets no response byte, a failed proof no firmware byte.
The known_nodes file (like SSH's known_hosts) turns a node that proved salted auth
once into one that may not offer less later. Every test uses a known_nodes file of
its own in a temp dir."""
import hashlib
import hmac
import os
import re
import shutil
import socket
import stat
import subprocess
import sys
import tempfile
import textwrap
import threading
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from nodelib import (MAGIC, OTA, Node, known_nodes_file, make_image,  # noqa: E402
                     read_bytes, run_ota)
import protocol_consts as P  # noqa: E402

PASSWORD = "correct horse"
LABEL = P.SALTED_LABEL.encode()


def scram_keys(password, salt, iterations):
    sp = hashlib.pbkdf2_hmac("sha256", password.encode(), salt, iterations, P.SALTED_KEY_LEN)
    client_key = hmac.new(sp, b"Client Key", hashlib.sha256).digest()
    stored_key = hashlib.sha256(client_key).digest()
    server_key = hmac.new(sp, b"Server Key", hashlib.sha256).digest()
    return stored_key, server_key


class Closed(Exception):
    pass


class Session:
    """What the fake device does on one connection, and what it saw.
    offer: "none" (AUTH_OK at once), "md5", "sha256" or "salted".
    password: what the device knows (None: it knows nothing and fakes its answers).
    salt: the salted method's salt."""

    def __init__(self, offer, password=PASSWORD, salt=None, iterations=4096):
        self.offer, self.password, self.iterations = offer, password, iterations
        self.salt = salt if salt is not None else os.urandom(16)
        self.features = None
        self.after_offer = 0     # bytes received after the auth offer was sent
        self.after_auth = None   # bytes received after the device answered the auth
        self.image = None        # the firmware, when the upload completed
        self.error = None

    def count(self, n):
        self.after_offer += n
        if self.after_auth is not None:
            self.after_auth += n


class FakeDevice:
    """Listens on 127.0.0.1 and serves the sessions one connection each, in order."""

    def __init__(self, tc, *sessions):
        self.sessions = list(sessions)
        self.srv = socket.socket()
        self.srv.bind(("127.0.0.1", 0))
        self.srv.listen(4)
        self.srv.settimeout(60)
        tc.addCleanup(self.srv.close)
        self.port = self.srv.getsockname()[1]
        self.t = threading.Thread(target=self.serve, daemon=True)
        self.t.start()
        tc.addCleanup(self.t.join, 5)

    def serve(self):
        for s in self.sessions:
            try:
                c, _ = self.srv.accept()
            except OSError as e:
                s.error = e
                return
            c.settimeout(20)
            with c:
                try:
                    self.run(c, s)
                except (Closed, ConnectionResetError):
                    pass  # the client hung up (with our offer unread: a reset)
                except Exception as e:  # reported by the test
                    s.error = e

    @staticmethod
    def read(c, s, n, counted=True):
        b = b""
        while len(b) < n:
            chunk = c.recv(n - len(b))
            if not chunk:
                if counted:
                    s.count(len(b))
                raise Closed
            b += chunk
        if counted:
            s.count(len(b))
        return b

    def drain(self, c, s):
        """Everything the client still sends, counted, until it closes."""
        while True:
            chunk = c.recv(65536)
            if not chunk:
                return
            s.count(len(chunk))

    def run(self, c, s):
        assert self.read(c, s, P.MAGIC_LEN, False) == MAGIC
        c.sendall(P.wire(P.RESP_OK, P.PROTOCOL_VERSION_2))
        s.features = self.read(c, s, 1, False)[0]
        extended = bool(s.features & P.FEATURE_EXTENDED)
        # no gzip: the image as it is
        c.sendall(P.wire(P.RESP_FEATURE_FLAGS, 0) if extended else P.wire(P.RESP_HEADER_OK))
        if s.offer == "none":
            c.sendall(P.wire(P.RESP_AUTH_OK))
            s.after_auth = 0
        elif s.offer in ("md5", "sha256"):
            n, method, h = ((P.MD5_HEX_LEN, P.RESP_REQUEST_AUTH_MD5, hashlib.md5)
                            if s.offer == "md5" else
                            (P.SHA256_HEX_LEN, P.RESP_REQUEST_AUTH_SHA256, hashlib.sha256))
            nonce = os.urandom(n // 2).hex()
            c.sendall(bytes([method]) + nonce.encode())
            reply = self.read(c, s, 2 * n).decode()
            cnonce, resp = reply[:n], reply[n:]
            if s.password is None or \
                    resp != h((s.password + nonce + cnonce).encode()).hexdigest():
                c.sendall(P.wire(P.RESP_ERROR_AUTH_INVALID))
                self.drain(c, s)
                return
            c.sendall(P.wire(P.RESP_AUTH_OK))
            s.after_auth = 0
        else:
            snonce = os.urandom(P.SALTED_NONCE_LEN)
            it = s.iterations.to_bytes(4, "big")
            c.sendall(P.wire(P.RESP_REQUEST_AUTH_SALTED) + s.salt + it + snonce)
            reply = self.read(c, s, P.SALTED_REPLY_LEN)
            cnonce, proof = reply[:P.SALTED_NONCE_LEN], reply[P.SALTED_NONCE_LEN:]
            msg = LABEL + snonce + cnonce + s.salt + it
            if s.password is None:
                c.sendall(P.wire(P.RESP_AUTH_OK) + os.urandom(P.SALTED_KEY_LEN))  # a signature it cannot know
            else:
                stored, server = scram_keys(s.password, s.salt, s.iterations)
                ck = bytes(a ^ b for a, b in
                           zip(proof, hmac.new(stored, msg, hashlib.sha256).digest()))
                if hashlib.sha256(ck).digest() != stored:
                    c.sendall(P.wire(P.RESP_ERROR_AUTH_INVALID))
                    self.drain(c, s)
                    return
                c.sendall(P.wire(P.RESP_AUTH_OK) + hmac.new(server, msg, hashlib.sha256).digest())
            s.after_auth = 0
        # the rest of an upload, for a client that goes on
        if extended:
            self.read(c, s, 1)  # update type
        size = int.from_bytes(self.read(c, s, 4), "big")
        c.sendall(P.wire(P.RESP_UPDATE_PREPARE_OK))
        md5 = self.read(c, s, P.MD5_HEX_LEN).decode()
        c.sendall(P.wire(P.RESP_BIN_MD5_OK))
        data, acked = b"", 0
        while len(data) < size:
            chunk = c.recv(min(65536, size - len(data)))
            if not chunk:
                s.count(0)
                raise Closed
            s.count(len(chunk))
            data += chunk
            while acked + P.CHUNK_SIZE <= len(data) or (len(data) == size and acked < size):
                c.sendall(P.wire(P.RESP_CHUNK_OK))
                acked += P.CHUNK_SIZE
        if hashlib.md5(data).hexdigest() != md5:
            c.sendall(P.wire(P.RESP_RECEIVE_OK, P.RESP_ERROR_MD5_MISMATCH))
            return
        c.sendall(P.wire(P.RESP_RECEIVE_OK, P.RESP_UPDATE_END_OK))
        self.read(c, s, 1)
        s.image = data


class ImpostorTest(unittest.TestCase):
    def setUp(self):
        self.known = known_nodes_file(self)
        self.img = make_image(self, extra=50000, seed=7)

    def upload(self, dev, *args, password=PASSWORD):
        pw = ("--password", password) if password else ()
        rc, out, err = run_ota("upload", "--device", "127.0.0.1", "--port", dev.port,
                               "--known-nodes", self.known, "--no-compress", "--timeout", "20",
                               *pw, *args, self.img)
        return rc, out, err

    def finish(self, dev):
        dev.t.join(30)
        self.assertFalse(dev.t.is_alive())
        for s in dev.sessions:
            self.assertIsNone(s.error, repr(s.error))

    def known_text(self):
        with open(self.known) as f:
            return f.read()

    def assert_refused_silently(self, s, rc, err, *words):
        """Exit 4, not one byte after the offer (no response, no firmware)."""
        self.assertEqual(rc, 4, err)
        self.assertEqual(s.after_offer, 0, err)
        self.assertIsNone(s.image)
        for w in words:
            self.assertIn(w, err)

    def assert_uploaded(self, s, rc, err):
        self.assertEqual(rc, 0, err)
        self.assertEqual(s.image, read_bytes(self.img))

    # -- AUTH_OK without any challenge ------------------------------------------
    def test_auth_ok_without_challenge_is_refused_when_a_password_was_given(self):
        s = Session("none")
        dev = FakeDevice(self, s)
        rc, out, err = self.upload(dev)
        self.finish(dev)
        self.assert_refused_silently(s, rc, err, "the device asked for no password")
        self.assertIn("--auth none", err)
        self.assertIn("impostor", err)
        self.assertFalse(os.path.exists(self.known))

    def test_auth_ok_without_challenge_with_auth_salted(self):
        s = Session("none")
        dev = FakeDevice(self, s)
        rc, out, err = self.upload(dev, "--auth", "salted")
        self.finish(dev)
        self.assert_refused_silently(s, rc, err, "the device asked for no password")
        self.assertEqual(s.features & (P.FEATURE_SALTED_AUTH | P.FEATURE_SHA256_AUTH), P.FEATURE_SALTED_AUTH)  # salted only, no SHA-256 offer

    def test_auth_none_accepts_a_device_without_password(self):
        s = Session("none")
        dev = FakeDevice(self, s)
        rc, out, err = self.upload(dev, "--auth", "none")
        self.finish(dev)
        self.assert_uploaded(s, rc, err)
        self.assertFalse(os.path.exists(self.known))  # nothing was proven
        # no password at all, no --auth: nothing to protect, as before
        s2 = Session("none")
        dev2 = FakeDevice(self, s2)
        rc, out, err = self.upload(dev2, password=None)
        self.finish(dev2)
        self.assert_uploaded(s2, rc, err)

    def test_auth_none_refuses_a_challenge(self):
        s = Session("sha256")
        dev = FakeDevice(self, s)
        rc, out, err = self.upload(dev, "--auth", "none")
        self.finish(dev)
        self.assert_refused_silently(s, rc, err, "--auth excludes")

    # -- the legacy challenges --------------------------------------------------
    def test_legacy_challenges_refused_with_auth_salted(self):
        for offer in ("md5", "sha256"):
            with self.subTest(offer=offer):
                s = Session(offer)
                dev = FakeDevice(self, s)
                rc, out, err = self.upload(dev, "--auth", "salted")
                self.finish(dev)
                self.assert_refused_silently(s, rc, err, "--auth excludes")

    def test_legacy_challenges_of_a_new_node_work_with_a_warning(self):
        for offer, name in (("md5", "MD5"), ("sha256", "SHA-256")):
            with self.subTest(offer=offer):
                s = Session(offer)
                dev = FakeDevice(self, s)
                rc, out, err = self.upload(dev)
                self.finish(dev)
                self.assert_uploaded(s, rc, err)
                warnings = [l for l in err.splitlines() if l.startswith("warning:")]
                self.assertEqual(len(warnings), 1, err)
                self.assertIn("used %s auth" % name, warnings[0])
                self.assertIn("cannot prove it knows the password", warnings[0])
                self.assertFalse(os.path.exists(self.known))  # not a salted node

    # -- salted, a signature it cannot know ---------------------------------------
    def test_salted_with_a_bad_server_signature(self):
        s = Session("salted", password=None)
        dev = FakeDevice(self, s)
        rc, out, err = self.upload(dev)
        self.finish(dev)
        self.assertEqual(rc, 4, err)
        self.assertEqual(s.after_offer, P.SALTED_REPLY_LEN)  # client nonce + proof, nothing more
        self.assertEqual(s.after_auth, 0)    # not one byte after the device's answer
        self.assertIn("could not prove it knows the password", err)
        self.assertFalse(os.path.exists(self.known))

    def test_salted_wrong_password_is_not_recorded(self):
        s = Session("salted", password="another one")  # ERROR_AUTH_INVALID to our proof
        dev = FakeDevice(self, s)
        rc, out, err = self.upload(dev)
        self.finish(dev)
        self.assertEqual(rc, 4, err)
        self.assertIn("authentication failed", err)
        self.assertFalse(os.path.exists(self.known))

    # -- known nodes ----------------------------------------------------------------
    def test_salt_change_with_valid_signature_updates_the_record(self):
        salt1, salt2 = os.urandom(16), os.urandom(16)
        first, second, impostor = (Session("salted", salt=salt1), Session("salted", salt=salt2),
                                   Session("salted", salt=os.urandom(16), password=None))
        dev = FakeDevice(self, first, second, impostor)
        key = "127.0.0.1:%d" % dev.port
        rc, out, err = self.upload(dev)
        self.assert_uploaded(first, rc, err)
        self.assertIn("remembered %s" % key, err)
        self.assertIn("%s salted %s 4096\n" % (key, salt1.hex()), self.known_text())
        mode = stat.S_IMODE(os.stat(self.known).st_mode)
        self.assertEqual(mode, 0o600)
        # the password was changed on the node: a new salt, and it proves the new verifier
        rc, out, err = self.upload(dev)
        self.assert_uploaded(second, rc, err)
        self.assertIn("new salt", err)
        text = self.known_text()
        self.assertIn("%s salted %s 4096\n" % (key, salt2.hex()), text)
        self.assertNotIn(salt1.hex(), text)
        self.assertEqual(text.count(key), 1)
        # a device there with yet another salt that cannot prove the password
        rc, out, err = self.upload(dev)
        self.finish(dev)
        self.assertEqual(rc, 4, err)
        self.assertEqual(impostor.after_auth, 0)
        self.assertIsNone(impostor.image)
        self.assertIn("could not prove it knows the password", err)
        self.assertIn("salt differs from the one recorded for %s in %s" % (key, self.known),
                      err)
        self.assertEqual(self.known_text(), text)  # the record is unchanged

    def test_known_node_offering_weaker_auth_is_refused(self):
        offers = ("md5", "sha256", "none")
        sessions = [Session("salted")] + [Session(o) for o in offers] + [Session("salted")]
        dev = FakeDevice(self, *sessions)
        key = "127.0.0.1:%d" % dev.port
        rc, out, err = self.upload(dev)
        self.assert_uploaded(sessions[0], rc, err)
        line = [i + 1 for i, l in enumerate(self.known_text().splitlines())
                if l.startswith(key + " ")]
        self.assertEqual(len(line), 1)
        for s, offer in zip(sessions[1:], offers):
            with self.subTest(offer=offer):
                rc, out, err = self.upload(dev)  # --auth auto: still refused
                self.assert_refused_silently(s, rc, err, self.known,
                                             "delete line %d of %s" % (line[0], self.known),
                                             "proved salted authentication before")
                self.assertEqual(s.features & (P.FEATURE_SALTED_AUTH | P.FEATURE_SHA256_AUTH), P.FEATURE_SALTED_AUTH)  # asked for salted only
                if offer == "none":
                    self.assertIn("no password", err)
        # the real node again: still fine
        rc, out, err = self.upload(dev)
        self.finish(dev)
        self.assert_uploaded(sessions[-1], rc, err)

    def test_known_node_refused_even_with_explicit_legacy_auth(self):
        first, legacy = Session("salted"), Session("md5")
        dev = FakeDevice(self, first, legacy)
        rc, out, err = self.upload(dev)
        self.assert_uploaded(first, rc, err)
        rc, out, err = self.upload(dev, "--auth", "md5")
        self.finish(dev)
        self.assertEqual(rc, 4, err)
        self.assertEqual(legacy.after_offer, 0)
        self.assertIn(self.known, err)

    def test_deleting_the_line_accepts_the_change(self):
        first, legacy = Session("salted"), Session("sha256")
        dev = FakeDevice(self, first, legacy)
        rc, out, err = self.upload(dev)
        self.assert_uploaded(first, rc, err)
        key = "127.0.0.1:%d" % dev.port
        with open(self.known) as f:
            kept = [l for l in f if not l.startswith(key + " ")]
        with open(self.known, "w") as f:
            f.writelines(kept)
        rc, out, err = self.upload(dev)
        self.finish(dev)
        self.assert_uploaded(legacy, rc, err)
        self.assertIn("warning:", err)

    def test_known_nodes_from_the_environment_and_the_default_path(self):
        home = tempfile.mkdtemp(prefix="ota-home-")
        self.addCleanup(shutil.rmtree, home, True)
        s1, s2 = Session("salted"), Session("salted")
        dev = FakeDevice(self, s1, s2)
        # no --known-nodes, no $OTA_KNOWN_NODES, no $XDG_STATE_HOME: under $HOME
        rc, out, err = run_ota("upload", "--device", "127.0.0.1", "--port", dev.port,
                               "--password", PASSWORD, "--no-compress", self.img,
                               env={"HOME": home, "OTA_KNOWN_NODES": "", "XDG_STATE_HOME": ""})
        self.assert_uploaded(s1, rc, err)
        path = os.path.join(home, ".local", "state", "ota", "known_nodes")
        self.assertTrue(os.path.exists(path), err)
        self.assertEqual(stat.S_IMODE(os.stat(path).st_mode), 0o600)
        self.assertEqual(stat.S_IMODE(os.stat(os.path.dirname(path)).st_mode), 0o700)
        # $OTA_KNOWN_NODES
        env_file = os.path.join(home, "env_known")
        rc, out, err = run_ota("upload", "--device", "127.0.0.1", "--port", dev.port,
                               "--password", PASSWORD, "--no-compress", self.img,
                               env={"HOME": home, "OTA_KNOWN_NODES": env_file})
        self.finish(dev)
        self.assert_uploaded(s2, rc, err)
        self.assertIn("127.0.0.1:%d salted" % dev.port, open(env_file).read())

    # -- a node YAML with a password expects salted auth -------------------------------
    def node_file(self, port, legacy=False):
        d = tempfile.mkdtemp(prefix="ota-imp-")
        self.addCleanup(shutil.rmtree, d, True)
        path = os.path.join(d, "node.yaml")
        with open(path, "w") as f:
            f.write(textwrap.dedent("""\
                esphome:
                  name: fake-node
                host:
                ota:
                  - platform: esphome
                    password: "%s"
                    port: %d
                """ % (PASSWORD, port)))
            if legacy:
                f.write("    legacy_auth: true\n")
        return path

    def test_node_file_with_password_expects_salted(self):
        for offer in ("md5", "sha256", "none"):
            with self.subTest(offer=offer):
                s = Session(offer)
                dev = FakeDevice(self, s)
                yaml = self.node_file(dev.port)
                rc, out, err = run_ota("upload", yaml, self.img, "--device", "127.0.0.1",
                                       "--known-nodes", self.known, "--no-compress")
                self.finish(dev)
                self.assert_refused_silently(s, rc, err)
                self.assertRegex(err, r"legacy_auth: true|asked for no password")
                self.assertEqual(s.features & (P.FEATURE_SALTED_AUTH | P.FEATURE_SHA256_AUTH), P.FEATURE_SALTED_AUTH)
        # and the salted node it describes is fine
        s = Session("salted")
        dev = FakeDevice(self, s)
        rc, out, err = run_ota("upload", self.node_file(dev.port), self.img, "--device",
                               "127.0.0.1", "--known-nodes", self.known, "--no-compress")
        self.finish(dev)
        self.assert_uploaded(s, rc, err)

    def test_node_file_with_legacy_auth_allows_the_legacy_methods(self):
        s = Session("sha256")
        dev = FakeDevice(self, s)
        rc, out, err = run_ota("upload", self.node_file(dev.port, legacy=True), self.img,
                               "--device", "127.0.0.1", "--known-nodes", self.known,
                               "--no-compress")
        self.finish(dev)
        self.assert_uploaded(s, rc, err)
        self.assertIn("cannot prove it knows the password", err)


class RealNodeTest(unittest.TestCase):
    def test_salted_upload_records_the_node_and_the_next_one_works(self):
        known = known_nodes_file(self)
        node = Node(self)  # the compiled-in salted verifier of VERYSECURE
        img = make_image(self, seed=11)
        rc, out, err = node.upload(img, "--password", "VERYSECURE", "--known-nodes", known)
        self.assertEqual(rc, 0, err)
        node.assert_runs(img, 2)
        with open(known) as f:
            text = f.read()
        key = "%s:%d" % (node.address, node.port)
        self.assertRegex(text, r"(?m)^%s salted [0-9a-f]{32} [0-9]+$" % re.escape(key))
        self.assertEqual(stat.S_IMODE(os.stat(known).st_mode), 0o600)
        img2 = make_image(self, seed=12)
        rc, out, err = node.upload(img2, "--password", "VERYSECURE", "--known-nodes", known)
        self.assertEqual(rc, 0, err)
        node.assert_runs(img2, 3)
        self.assertNotIn("warning", err)
        with open(known) as f:
            self.assertEqual(f.read(), text)  # same node, same salt: nothing to change


class KnownNodesFileTest(unittest.TestCase):
    """The known_nodes file itself: concurrent writers, a file that cannot be read
    (fail closed), the iteration count (issue 12 review)."""

    def setUp(self):
        self.known = known_nodes_file(self)
        self.img = make_image(self, extra=20000, seed=9)

    def upload(self, port, *args):
        return run_ota("upload", "--device", "127.0.0.1", "--port", port, "--password",
                       PASSWORD, "--known-nodes", self.known, "--no-compress", "--timeout",
                       "20", *args, self.img)

    def test_concurrent_uploads_keep_every_record(self):
        """Six `ota upload` processes at once: every node is recorded (flock on
        FILE.lock around the read-modify-rename)."""
        devs = [FakeDevice(self, Session("salted")) for _ in range(6)]
        procs = [subprocess.Popen([OTA, "upload", "--device", "127.0.0.1", "--port",
                                   str(d.port), "--password", PASSWORD, "--known-nodes",
                                   self.known, "--no-compress", self.img],
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                  stdin=subprocess.DEVNULL, text=True) for d in devs]
        for p in procs:
            _, err = p.communicate(timeout=120)
            self.assertEqual(p.returncode, 0, err)
        with open(self.known) as f:
            text = f.read()
        missing = [d.port for d in devs if "127.0.0.1:%d salted " % d.port not in text]
        self.assertEqual(missing, [], "records lost by concurrent uploads:\n" + text)

    def unusable(self, port, content=None):
        if content is None:
            content = b"127.0.0.1:%d salted\n# a stray \x00 byte\n" % port
        with open(self.known, "wb") as f:
            f.write(content)

    def test_unreadable_file_fails_closed(self):
        """A NUL byte anywhere: no record can be trusted to be absent, so a legacy or
        no-auth offer is refused (exit 4) with the file and the problem named."""
        for offer in ("sha256", "md5", "none"):
            s = Session(offer)
            dev = FakeDevice(self, s)
            self.unusable(dev.port)
            rc, out, err = self.upload(dev.port, *(("--auth", "none") if offer == "none"
                                                   else ()))
            dev.t.join(30)
            self.assertEqual(rc, 4, err)
            self.assertEqual(s.after_offer, 0, err)
            self.assertIsNone(s.image)
            self.assertIn(self.known, err)
            self.assertIn("NUL byte", err)
        # a salted node still works (its signature proves it); nothing can be recorded
        s = Session("salted")
        dev = FakeDevice(self, s)
        self.unusable(dev.port)
        rc, out, err = self.upload(dev.port)
        dev.t.join(30)
        self.assertEqual(rc, 0, err)
        self.assertEqual(s.image, read_bytes(self.img))
        self.assertIn("could not remember", err)

    def test_unreadable_and_too_large_files_fail_closed(self):
        s = Session("sha256")
        dev = FakeDevice(self, s, Session("sha256"))
        with open(self.known, "wb") as f:
            f.write(b"# big\n")
            f.truncate(5 << 20)  # sparse, over the 4 MiB limit
        rc, out, err = self.upload(dev.port)
        self.assertEqual(rc, 4, err)
        self.assertEqual(s.after_offer, 0, err)
        self.assertIn("larger than 4 MiB", err)
        if os.geteuid() != 0:  # root reads anything
            with open(self.known, "w") as f:
                f.write("# mine\n")
            os.chmod(self.known, 0)
            rc, out, err = self.upload(dev.port)
            self.assertEqual(rc, 4, err)
            self.assertIn("Permission denied", err)
            self.assertEqual(dev.sessions[1].after_offer, 0, err)

    def test_a_bad_line_is_only_a_warning_and_comments_parse(self):
        s = Session("sha256")
        dev = FakeDevice(self, s)
        with open(self.known, "w") as f:
            f.write("not a record\n127.0.0.1:%d salted   # the living room\n" % dev.port)
        rc, out, err = self.upload(dev.port)
        dev.t.join(30)
        self.assertEqual(rc, 4, err)  # the commented record counts: no legacy answer
        self.assertEqual(s.after_offer, 0, err)
        self.assertIn("line 1 is not", err)
        self.assertIn("proved salted authentication before (%s line 2)" % self.known, err)

    def test_fewer_iterations_than_recorded_is_refused_before_the_proof(self):
        salt = os.urandom(16)
        first = Session("salted", salt=salt, iterations=20000)
        same = Session("salted", salt=salt, iterations=20000)
        lower = Session("salted", salt=os.urandom(16), iterations=4096)
        lower_same_salt = Session("salted", salt=salt, iterations=10000)
        changed = Session("salted", salt=os.urandom(16), iterations=30000)
        dev = FakeDevice(self, first, same, lower, lower_same_salt, changed)
        key = "127.0.0.1:%d" % dev.port
        rc, out, err = self.upload(dev.port)
        self.assertEqual(rc, 0, err)
        with open(self.known) as f:
            self.assertIn("%s salted %s 20000\n" % (key, salt.hex()), f.read())
        rc, out, err = self.upload(dev.port)
        self.assertEqual(rc, 0, err)
        for s in (lower, lower_same_salt):
            rc, out, err = self.upload(dev.port)
            self.assertEqual(rc, 4, err)
            self.assertEqual(s.after_offer, 0, "the proof was sent\n" + err)
            self.assertIsNone(s.image)
            self.assertIn("fewer than the 20000", err)
            self.assertIn("%s line 3" % self.known, err)
        # a new salt with more iterations and a valid signature: a changed password
        rc, out, err = self.upload(dev.port)
        dev.t.join(30)
        self.assertEqual(rc, 0, err)
        self.assertEqual(changed.image, read_bytes(self.img))
        self.assertIn("new salt (its password was changed", err)
        with open(self.known) as f:
            self.assertIn("%s salted %s 30000\n" % (key, changed.salt.hex()), f.read())

    def test_old_record_without_iterations_is_upgraded(self):
        salt = os.urandom(16)
        s = Session("salted", salt=salt, iterations=8192)
        dev = FakeDevice(self, s)
        key = "127.0.0.1:%d" % dev.port
        with open(self.known, "w") as f:
            f.write("%s salted %s\n" % (key, salt.hex()))
        rc, out, err = self.upload(dev.port)
        dev.t.join(30)
        self.assertEqual(rc, 0, err)
        with open(self.known) as f:
            self.assertEqual(f.read().count(key), 1)
        with open(self.known) as f:
            self.assertIn("%s salted %s 8192\n" % (key, salt.hex()), f.read())


if __name__ == "__main__":
    unittest.main()
