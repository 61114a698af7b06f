"""ota run / ota logs / ota upload NODE.yaml against a local node: upload, the node
comes back, and the new image's log lines arrive."""
import os
import sys
import tempfile
import textwrap
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from nodelib import Node, free_port, known_nodes_file, make_image, run_ota  # noqa: E402


class RunTest(unittest.TestCase):
    def node_file(self, port, log_port, password="VERYSECURE"):
        d = tempfile.mkdtemp(prefix="ota-run-")
        self.addCleanup(lambda: __import__("shutil").rmtree(d, True))
        path = os.path.join(d, "node.yaml")
        with open(path, "w") as f:
            f.write(textwrap.dedent("""\
                esphome:
                  name: demo-node
                host:
                logger:
                  port: %d
                ota:
                  - platform: esphome
                    password: %s
                    port: %d
                """ % (log_port, password, port)))
        return path

    def test_run_uploads_waits_and_follows_the_new_image(self):
        log_port = free_port()
        node = Node(self, "--heartbeat-ms", "200", "--log-port", str(log_port))
        yaml = self.node_file(node.port, log_port)
        img = make_image(self, seed=1)
        rc, out, err = run_ota("run", yaml, img, "--device", "127.0.0.1",
                               "--follow-seconds", "3")
        self.assertEqual(rc, 0, err)
        self.assertIn("waiting for the node to come back", out)
        self.assertRegex(out, r"node back after \d+\.\d s")
        self.assertIn("node demo-node: running slot b, safe mode off", out)
        self.assertRegex(out, r"\[I\]\[demo\] heartbeat tick=\d+")  # the new image's logs
        self.assertIn("-- connected: ota-log node=demo-node slot=b safe_mode=0", err)
        node.assert_runs(img, 2)

    def test_run_known_nodes_flag(self):
        rc, out, _ = run_ota("run", "--help")
        self.assertEqual(rc, 0)
        self.assertIn("--known-nodes F", out)
        log_port = free_port()
        node = Node(self, "--heartbeat-ms", "200", "--log-port", str(log_port))
        yaml = self.node_file(node.port, log_port)
        known = known_nodes_file(self)
        rc, out, err = run_ota("run", yaml, make_image(self, seed=3), "--device", "127.0.0.1",
                               "--known-nodes", known, "--follow-seconds", "1")
        self.assertEqual(rc, 0, err)
        with open(known) as f:  # the salted upload is recorded in the given file ...
            self.assertRegex(f.read(), r"(?m)^127\.0\.0\.1:%d salted " % node.port)
        default = os.environ["OTA_KNOWN_NODES"]
        if os.path.exists(default):  # ... not in $OTA_KNOWN_NODES
            with open(default) as f:
                self.assertNotIn("127.0.0.1:%d " % node.port, f.read())

    def test_the_yaml_says_where_the_node_is(self):
        # ESPHome's order: wifi use_address, else manual_ip static_ip, else <name>.local;
        # the "does not resolve" hint points there, so it must work
        log_port = free_port()
        node = Node(self, "--heartbeat-ms", "200", "--log-port", str(log_port))
        img = make_image(self, seed=7)
        for n, wifi in enumerate(("wifi:\n  use_address: 127.0.0.1\n",
                                  "wifi:\n  manual_ip:\n    static_ip: 127.0.0.1\n"
                                  "    gateway: 127.0.0.254\n    subnet: 255.255.255.0\n")):
            with self.subTest(wifi=wifi):
                yaml = self.node_file(node.port, log_port)
                with open(yaml, "a") as f:
                    f.write(wifi)
                rc, out, err = run_ota("upload", yaml, img)  # no --device
                self.assertEqual(rc, 0, err)
                node.assert_runs(img, 2 + n)
                rc, out, err = run_ota("logs", yaml, "--follow-seconds", "2")
                self.assertEqual(rc, 0, err)
                self.assertIn("heartbeat tick=", out)
        rc, _, err = run_ota("upload", self.node_file(node.port, log_port), img, "--timeout", "5")
        self.assertIn("use_address", err)  # the hint names the setting that fixes it

    def test_upload_with_node_file_and_logs(self):
        log_port = free_port()
        node = Node(self, "--heartbeat-ms", "200", "--log-port", str(log_port))
        yaml = self.node_file(node.port, log_port)
        img = make_image(self, seed=2)
        # port and password from the file, the host from --device
        rc, out, err = run_ota("upload", yaml, img, "--device", "127.0.0.1")
        self.assertEqual(rc, 0, err)
        node.assert_runs(img, 2)
        # a flag overrides the file's password
        rc, out, err = run_ota("upload", yaml, img, "--device", "127.0.0.1", "--password", "x")
        self.assertEqual(rc, 4)
        # without --device the host is <name>.local, which nothing resolves here
        rc, out, err = run_ota("upload", yaml, img, "--timeout", "5")
        self.assertEqual(rc, 3)
        self.assertIn("demo-node.local", err)
        rc, out, err = run_ota("logs", "--device", "127.0.0.1", "--log-port", log_port,
                               "--password", "VERYSECURE", "--follow-seconds", "2")
        self.assertEqual(rc, 0, err)
        self.assertRegex(out, r"heartbeat tick=\d+")
        rc, out, err = run_ota("logs", "--device", "127.0.0.1", "--log-port", free_port(),
                               "--follow-seconds", "1")
        self.assertEqual(rc, 3)
        self.assertIn("logger:", err)


if __name__ == "__main__":
    unittest.main()
