"""Pull updates against a real web server (Debian's nginx, tests/integration/weblib.py)
serving what `ota publish` wrote: a node pulls and boots the new release; the server
dies halfway and the node resumes with a 206; the node dies (power cut) halfway and
resumes after its reboot; a file replaced on the server mid-download is never mixed
with the old bytes; a manifest signed by an unknown key, a wrong sha256, a lower
secure_version or a tampered signature activate nothing; rollout 0 / 50 / 100 over
20 nodes picks none, exactly the nodes whose bucket is below 50, and all."""
import hashlib
import json
import os
import re
import shutil
import sys
import tempfile
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from nodelib import DEMO_NODE, Node, run_ota, sha256_file  # noqa: E402
from weblib import NGINX, Nginx  # noqa: E402

# fast schedule for tests: confirmed after 300 ms, retries after 300 ms
FAST = ["--no-password", "--boot-is-good-after-ms", "300", "--update-interval-ms", "3600000",
        "--update-retry-ms", "300", "--no-mdns"]


def bucket(name, version):
    """ota/manifest.h's rollout bucket, computed independently."""
    d = hashlib.sha256(name.encode() + b"\0" + version.encode()).digest()
    return int.from_bytes(d[:4], "big") % 100


def pull_state(node):
    try:
        with open(os.path.join(node.dir, "pull.state")) as f:
            m = re.search(r"offset=(\d+)", f.read())
            return int(m.group(1)) if m else 0
    except FileNotFoundError:
        return 0


@unittest.skipIf(NGINX is None, "nginx is not installed (Debian package nginx-light)")
class PullTest(unittest.TestCase):
    def setUp(self):
        self.www = tempfile.mkdtemp(prefix="ota-www-")
        self.addCleanup(shutil.rmtree, self.www, ignore_errors=True)

    def publish(self, version, *args, image=DEMO_NODE, out=None):
        rc, o, e = run_ota("publish", "--out", out or self.www, "--version", version, *args,
                           image)
        self.assertEqual(rc, 0, o + e)
        with open(os.path.join(out or self.www, "manifest.json")) as f:
            m = json.load(f)
        ota = m["builds"][0]["ota"]
        return os.path.join(out or self.www, ota["path"]), m

    def node(self, web, *flags, **kw):
        return Node(self, *FAST, "--update-url", web.url + "/manifest.json", *flags, **kw)

    def test_pull_boots_the_new_release_then_stays(self):
        image, m = self.publish("2.0.0")
        web = Nginx(self, self.www)
        node = self.node(web)
        st = node.assert_runs(image, 2)  # pulled, activated, rebooted into it
        node.wait_for(lambda: "image descriptor: version 2.0.0" in node.log(), 30,
                      "the new release's version")
        node.wait_for(lambda: node.count(r"release 2\.0\.0: same version") >= 1, 30,
                      "the second check finding nothing new")
        self.assertTrue(st["pending"] or st["confirmed_slot"] == st["active_slot"])
        uri = "/" + m["builds"][0]["ota"]["path"]
        gets = [e for e in web.entries() if e[1] == uri]
        self.assertEqual([(e[2], e[3]) for e in gets], [(200, os.path.getsize(image))], gets)
        self.assertTrue(all("ota-pull" in e[5] for e in web.entries()), web.entries())
        self.assertFalse(os.path.exists(os.path.join(node.dir, "pull.state")))

    def test_https_with_the_right_ca_only(self):
        image, m = self.publish("2.0.0")
        web = Nginx(self, self.www, tls=True)
        wrong = self.node(web, "--update-ca-file", web.other_ca_file)
        wrong.wait_for(lambda: "TLS handshake or certificate check failed" in wrong.log(), 30,
                       "the refusal of a certificate from an untrusted CA")
        self.assertEqual(wrong.status()["active_sha256"], sha256_file(DEMO_NODE))
        wrong.stop()
        node = self.node(web, "--update-ca-file", web.ca_file)
        node.assert_runs(image, 2)
        self.assertIn("checking https://localhost:%d/manifest.json" % web.port, node.log())

    def test_pull_now_checks_at_once(self):
        self.publish("1.0.0")  # what the node runs: nothing to take
        web = Nginx(self, self.www)
        node = self.node(web)
        node.wait_for(lambda: node.count(r"release 1\.0\.0: same version") >= 1, 30,
                      "the first check")
        image, m = self.publish("2.0.0")  # the next regular check is an hour away
        rc, out, err = run_ota("pull-now", "--device", "127.0.0.1", "--port", node.port)
        self.assertEqual(rc, 0, out + err)
        self.assertIn("checks its update manifest now", out)
        node.assert_runs(image, 2)
        self.assertIn("asked for an update check now", node.log())
        # a node that does not pull: refused as an unknown update type, said plainly
        plain = Node(self, "--no-password", "--no-mdns")
        rc, out, err = run_ota("pull-now", "--device", "127.0.0.1", "--port", plain.port)
        self.assertEqual(rc, 5, out + err)
        self.assertIn("does not pull its updates", err)
        self.assertEqual(plain.count(r"listening on"), 1)

    def interrupted(self, cut):
        """A download of the release at 400 KiB/s, cut once at >= 512 KiB by cut(node,
        web); returns (node, web, image, uri)."""
        image, m = self.publish("2.0.0")
        web = Nginx(self, self.www, rate="400k")
        node = self.node(web)
        node.wait_for(lambda: pull_state(node) >= 512 * 1024, 60, "a resume point >= 512 KiB")
        cut(node, web)
        return node, web, image, "/" + m["builds"][0]["ota"]["path"]

    def test_server_killed_halfway_resumes_with_a_range(self):
        def cut(node, web):
            web.kill()
            time.sleep(1.0)
            web.start()
        node, web, image, uri = self.interrupted(cut)
        node.assert_runs(image, 2)
        # the node stayed responsive while it downloaded at 400 KiB/s (about 6 s): its
        # heartbeat (every second) kept ticking between the start and the activation
        log = node.log()
        during = log[log.index("pull: downloading"):log.index("verified and activated")]
        self.assertGreaterEqual(len(re.findall(r"heartbeat tick=", during)), 3, during[-2000:])
        gets = [e for e in web.entries() if e[1] == uri]
        self.assertTrue(any(e[2] == 206 and e[4].startswith("bytes=") for e in gets), gets)
        self.assertFalse(any(e[2] == 200 for e in gets), gets)
        # nginx logs no line for the response its own death cut short: its bytes are
        # what the node says it had received then
        first = int(re.search(r"broke off at byte (\d+)", node.log()).group(1))
        total = first + sum(e[3] for e in gets)
        self.assertLess(total, 1.2 * os.path.getsize(image), (first, gets))

    def test_power_cut_halfway_resumes_after_the_reboot(self):
        def cut(node, web):
            node.kill()
            node.start()
        node, web, image, uri = self.interrupted(cut)
        node.assert_runs(image, 3)  # first boot, the boot after the cut, the release
        gets = [e for e in web.entries() if e[1] == uri]
        resumed = [e for e in gets if e[2] == 206]
        self.assertTrue(resumed, gets)
        start = int(re.match(r"bytes=(\d+)-", resumed[0][4]).group(1))
        self.assertGreaterEqual(start, 512 * 1024)
        self.assertIn("resuming the download at byte %d" % start, node.log())

    def test_file_replaced_mid_download_is_never_mixed(self):
        other = os.path.join(self.www, "other.bin")

        def cut(node, web):
            node.kill()
            # same name, same size, other bytes: the manifest still announces the old
            # ones; the ETag changes, so the Range comes back whole (200)
            path = [p for p in os.listdir(self.www) if p.endswith(".bin")][0]
            with open(os.path.join(self.www, path), "rb") as f:
                data = bytearray(f.read())
            data[1000:1100] = b"\x5a" * 100
            with open(other, "wb") as f:
                f.write(data)
            os.utime(other, (time.time() + 5, time.time() + 5))
            os.replace(other, os.path.join(self.www, path))
            node.start()
        node, web, image, uri = self.interrupted(cut)
        node.wait_for(lambda: re.search(r"(MD5|SHA-256) of received image does not match",
                                        node.log()) is not None, 90,
                      "the refusal of the changed file")
        gets = [e for e in web.entries() if e[1] == uri]
        self.assertTrue(any(e[2] == 200 and e[4].startswith("bytes=") for e in gets), gets)
        st = node.status()
        self.assertEqual(st["active_sha256"], sha256_file(DEMO_NODE))  # nothing activated

    def test_refusals_activate_nothing(self):
        rc, o, e = run_ota("keygen", "--scheme", "ecdsa256", os.path.join(self.www, "k1.pem"))
        self.assertEqual(rc, 0, e)
        rc, o, e = run_ota("keygen", "--scheme", "ecdsa256", os.path.join(self.www, "k2.pem"))
        self.assertEqual(rc, 0, e)
        k1, k2 = (os.path.join(self.www, k) for k in ("k1.pem", "k2.pem"))
        web = Nginx(self, self.www)
        cases = []
        # 1. signed by a key the node does not trust
        d1 = os.path.join(self.www, "unknown")
        self.publish("2.0.0", "--key", k2, out=d1)
        cases.append(("unknown", ["--verification-key", k1], r"signature does not verify"))
        # 2. a manifest whose sha256 is not the image's
        d2 = os.path.join(self.www, "badsha")
        self.publish("2.0.0", out=d2)
        p = os.path.join(d2, "manifest.json")
        with open(p) as f:
            m = json.load(f)
        m["builds"][0]["ota"]["sha256"] = "00" * 32
        m["builds"][0]["ota"].pop("md5", None)
        with open(p, "w") as f:
            json.dump(m, f)
        cases.append(("badsha", [], r"SHA-256 of received image does not match"))
        # 3. a tampered signed manifest (the version changed after signing)
        d3 = os.path.join(self.www, "tampered")
        self.publish("2.0.0", "--key", k1, out=d3)
        p = os.path.join(d3, "manifest.json")
        with open(p) as f:
            text = f.read().replace('"2.0.0"', '"2.0.1"')
        with open(p, "w") as f:
            f.write(text)
        cases.append(("tampered", ["--verification-key", k1], r"signature does not verify"))
        for sub, flags, why in cases:
            with self.subTest(sub):
                node = Node(self, *FAST, "--update-url", "%s/%s/manifest.json" % (web.url, sub),
                            *flags)
                node.wait_for(lambda: re.search(why, node.log()) is not None, 60, why)
                self.assertEqual(node.status()["active_sha256"], sha256_file(DEMO_NODE))
                self.assertEqual(node.count(r"listening on"), 1)  # no reboot
                node.stop()

    def test_replayed_older_manifest_is_refused(self):
        """A mirror that serves an older signed manifest (1.5, "published" earlier)
        after the node took 2.0 cannot move it back."""
        key = os.path.join(self.www, "k.pem")
        rc, o, e = run_ota("keygen", "--scheme", "ecdsa256", key)
        self.assertEqual(rc, 0, e)
        self.publish("1.5", "--key", key)
        old = {}
        for f in ("manifest.json", "manifest.json.sig"):
            with open(os.path.join(self.www, f), "rb") as fh:
                old[f] = fh.read()
        image, m = self.publish("2.0", "--key", key)
        self.assertGreater(m["published"], json.loads(old["manifest.json"])["published"])
        web = Nginx(self, self.www)
        node = Node(self, *FAST, "--update-url", web.url + "/manifest.json",
                    "--verification-key", key, "--update-interval-ms", "1000")
        node.assert_runs(image, 2)
        node.wait_for(lambda: node.count(r"release 2\.0: same version") >= 1, 30,
                      "a check of the 2.0 manifest after the reboot")
        for f, data in old.items():  # the mirror goes back to the 1.5 pair
            with open(os.path.join(self.www, f), "wb") as fh:
                fh.write(data)
        node.wait_for(lambda: "older than one accepted before" in node.log(), 30,
                      "the refusal of the replayed manifest")
        self.assertEqual(node.status()["active_sha256"], sha256_file(image))
        self.assertFalse([e for e in web.entries() if e[1] == "/firmware-1.5.bin"])

    def test_lower_secure_version_is_not_taken(self):
        # the node runs secure_version 3 (confirmed); the release has 2
        rc, o, e = run_ota("keygen", "--scheme", "ecdsa256", os.path.join(self.www, "k.pem"))
        self.assertEqual(rc, 0, e)
        key = os.path.join(self.www, "k.pem")
        v3 = os.path.join(self.www, "v3.bin")
        rc, o, e = run_ota("sign", "--key", key, "--security-version", "3", "-o", v3, DEMO_NODE)
        self.assertEqual(rc, 0, o + e)
        self.publish("2.0.0", "--key", key, "--security-version", "2")
        web = Nginx(self, self.www)
        node = Node(self, *FAST, "--update-url", web.url + "/manifest.json",
                    "--verification-key", key, image=v3)
        node.wait_for(lambda: "below the node's minimum" in node.log() or
                      "secure_version below" in node.log(), 60, "the anti-rollback refusal")
        self.assertEqual(node.count(r"listening on"), 1)
        self.assertFalse([e for e in web.entries() if e[1].endswith(".bin")])

    def test_rollout_over_twenty_nodes(self):
        names = ["node-%02d" % i for i in range(20)]
        for rollout, version in ((0, "2.0.0"), (50, "2.0.0"), (100, "2.0.0")):
            with self.subTest(rollout=rollout):
                www = os.path.join(self.www, "r%d" % rollout)
                self.publish(version, "--rollout", str(rollout), out=www)
                web = Nginx(self, www)
                nodes = [Node(self, *FAST, "--update-url", web.url + "/manifest.json",
                              "--mdns-name", n, "--no-log-server") for n in names]
                want = {n for n in names if bucket(n, version) < rollout}
                for node in nodes:
                    node.wait_for(lambda: re.search(r"release 2\.0\.0: |downloading ",
                                                    node.log()) is not None, 60, "a decision")
                took = {n for n, node in zip(names, nodes) if "downloading " in node.log()}
                self.assertEqual(took, want)
                if rollout == 50:
                    self.assertTrue(3 <= len(want) <= 17, want)
                for node in nodes:
                    node.stop()


if __name__ == "__main__":
    unittest.main()
