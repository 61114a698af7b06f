"""Safe mode, boot-loop detection, automatic rollback and a boot state that survives
anything: crash loops, good runs in between, bad updates, SIGKILL at random moments
of an upload and an activation, and every kind of corrupted boot state file."""
import os
import random
import signal
import subprocess
import sys
import tempfile
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from nodelib import (CRASHER, DEMO_NODE, Node, make_image, run_ota,  # noqa: E402
                     sha256_file)

FAST = ("--restart-delay-ms", "50")


def crash_file(tc):
    d = tempfile.mkdtemp(prefix="ota-crash-")
    tc.addCleanup(lambda: subprocess.run(["rm", "-rf", d]))
    path = os.path.join(d, "crash")
    open(path, "w").close()
    return path


class SafeModeTest(unittest.TestCase):
    def test_boot_loop_enters_safe_mode_and_an_upload_recovers(self):
        f = crash_file(self)
        node = Node(self, "--crash-if-exists", f, boot_flags=FAST)
        # the last line safe mode's boot prints: "SAFE MODE" itself comes before the
        # "booted slot=" line, so waiting for it alone races with the counts below
        node.wait_for(lambda: "the demo component stays off" in node.log(), 60, "safe mode")
        self.assertIn("SAFE MODE", node.log())
        self.assertEqual(node.count(r"crashing during set-up"), 10)  # exactly num_attempts
        self.assertEqual(node.count(r"booted slot="), 11)
        st = node.status()
        self.assertTrue(st["safe_mode"])
        time.sleep(0.5)
        self.assertEqual(node.heartbeats(), [])  # the demo component never started
        self.assertIn("safe mode: the demo component stays off", node.log())
        os.unlink(f)  # the fix
        img = make_image(self, seed=1)
        rc, _, err = node.upload(img, "--password", "VERYSECURE")  # OTA is reachable
        self.assertEqual(rc, 0, err)
        node.assert_runs(img, 12)
        node.wait_for(lambda: len(node.heartbeats()) >= 1, 10, "the demo component")
        self.assertFalse(node.status()["safe_mode"])

    def test_good_runs_reset_the_counter(self):
        f = crash_file(self)
        os.unlink(f)
        node = Node(self, "--crash-if-exists", f, "--safe-mode-attempts", "3",
                    "--boot-is-good-after-ms", "300", boot_flags=("--restart-delay-ms", "700"))
        for round_ in range(3):
            node.wait_for(lambda: node.status()["boot_attempts"] == 0, 10, "a good boot")
            crashes = node.count(r"crashing during set-up")
            open(f, "w").close()
            node.kill_firmware()
            node.wait_for(lambda: node.count(r"crashing during set-up") >= crashes + 2, 20,
                          "two crashes")
            os.unlink(f)  # before the third boot (700 ms, then 1400 ms away)
            node.wait_for(lambda: node.count(r"listening on") >= 3 * (round_ + 1) + 1, 20,
                          "a boot without the crash file")
        self.assertNotIn("SAFE MODE", node.log())
        self.assertFalse(node.status()["safe_mode"])

    def test_safe_mode_can_be_disabled(self):
        f = crash_file(self)
        node = Node(self, "--crash-if-exists", f, "--safe-mode-attempts", "2",
                    "--no-safe-mode", boot_flags=FAST)
        node.wait_for(lambda: node.count(r"crashing during set-up") >= 6, 60, "six crashes")
        self.assertNotIn("SAFE MODE", node.log())
        self.assertFalse(node.status()["safe_mode"])

    def test_manual_safe_mode(self):
        node = Node(self, "--heartbeat-ms", "100")
        p = subprocess.run([os.path.join(os.path.dirname(DEMO_NODE), "ota-boot"), "safe-mode",
                            "--state", node.dir], capture_output=True, text=True)
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertTrue(node.status()["safe_mode_request"])
        node.kill_firmware()
        node.wait_for(lambda: "SAFE MODE: entered on request" in node.log(), 20, "safe mode")
        self.assertTrue(node.status()["safe_mode"])
        self.assertFalse(node.status()["safe_mode_request"])

    def test_safe_mode_reboots_normally_after_timeout(self):
        f = crash_file(self)
        node = Node(self, "--crash-if-exists", f, "--safe-mode-attempts", "2",
                    "--safe-mode-reboot-timeout-ms", "1000", boot_flags=FAST)
        node.wait_for(lambda: "SAFE MODE" in node.log(), 30, "safe mode")
        os.unlink(f)
        node.wait_for(lambda: "rebooting normally once" in node.log(), 10, "the timeout")
        node.wait_for(lambda: len(node.heartbeats()) >= 1, 10, "a normal boot")
        self.assertFalse(node.status()["safe_mode"])


class RollbackTest(unittest.TestCase):
    def test_bad_update_rolls_back_good_update_is_confirmed(self):
        node = Node(self, "--boot-is-good-after-ms", "500", boot_flags=FAST)
        rc, _, err = node.upload(CRASHER, "--password", "VERYSECURE")
        self.assertEqual(rc, 0, err)
        node.wait_for(lambda: "rolling back to slot a" in node.log(), 30, "the rollback")
        self.assertEqual(node.count(r"crashing at start"), 3)  # rollback_after boots
        node.wait_listening(2)
        st = node.status()
        self.assertEqual((st["active_slot"], st["pending"]), ("a", False))
        self.assertEqual(st["active_sha256"], sha256_file(DEMO_NODE))
        # a good image is confirmed after boot_is_good_after and stays
        img = make_image(self, seed=2)
        rc, _, err = node.upload(img, "--password", "VERYSECURE")
        self.assertEqual(rc, 0, err)
        node.assert_runs(img, 3)
        node.wait_for(lambda: not node.status()["pending"], 10, "the confirmation")
        st = node.status()
        self.assertEqual((st["active_slot"], st["confirmed_slot"]), ("b", "b"))
        node.kill_firmware()  # later restarts keep the confirmed image
        node.wait_listening(4)
        self.assertEqual(node.status()["active_sha256"], sha256_file(img))


class DurabilityTest(unittest.TestCase):
    def test_sigkill_during_uploads_always_boots_a_valid_image(self):
        node = Node(self, "--no-password", "--boot-is-good-after-ms", "200")
        valid = {sha256_file(DEMO_NODE)}
        rnd = random.Random(4)
        runs = 30
        for i in range(runs):
            img = make_image(self, seed=100 + i, extra=rnd.randrange(50000, 1500000))
            valid.add(sha256_file(img))
            up = subprocess.Popen([os.path.join(os.path.dirname(DEMO_NODE), "ota"), "upload",
                                   "--quiet", "--device", "127.0.0.1", "--port", str(node.port),
                                   "--timeout", "5", img], stdout=subprocess.DEVNULL,
                                  stderr=subprocess.DEVNULL)
            time.sleep(rnd.uniform(0.0, 0.25))  # cut the power somewhere in the update
            node.kill()
            up.wait(timeout=30)
            listening = node.count(r"listening on")
            node.start()
            node.wait_listening(listening + 1)
            st = node.status()
            self.assertIn(st["active_sha256"], valid, node.log()[-3000:])
            self.assertTrue(st["slots"][st["active_slot"]]["bootable"])
            self.assertEqual(st["state_file"], "ok")
        print("\n%d SIGKILLs during uploads and activations: a valid image booted every time"
              % runs)

    def corrupt_and_boot(self, mutate, expect_fallback=True):
        node = Node(self, "--no-password")
        img = make_image(self, seed=7)
        rc, _, err = node.upload(img)
        self.assertEqual(rc, 0, err)
        node.assert_runs(img, 2)
        node.stop()
        mutate(node.dir)
        listening = node.count(r"listening on")
        node.start()
        node.wait_listening(listening + 1)
        st = node.status()
        self.assertIn(st["active_sha256"], (sha256_file(DEMO_NODE), sha256_file(img)))
        if expect_fallback:
            self.assertIn("boot.state", node.log().split("stopped")[-1])
        return st

    def test_corrupted_boot_state_variants(self):
        def write(name, data):
            def m(d):
                with open(os.path.join(d, name), "wb") as f:
                    f.write(data)
            return m

        def remove(*names):
            def m(d):
                for n in names:
                    os.unlink(os.path.join(d, n))
            return m

        def truncate(d):
            p = os.path.join(d, "boot.state")
            with open(p, "rb") as fh:
                data = fh.read()
            with open(p, "wb") as f:
                f.write(data[: len(data) // 2])

        def flip_bit(d):
            p = os.path.join(d, "boot.state")
            with open(p, "rb") as fh:
                data = bytearray(fh.read())
            data[20] ^= 0x01
            with open(p, "wb") as f:
                f.write(bytes(data))

        variants = {
            "missing": remove("boot.state"),
            "truncated": truncate,
            "bad checksum": flip_bit,
            "garbage": write("boot.state", os.urandom(300)),
            "empty": write("boot.state", b""),
            "missing, no previous": remove("boot.state", "boot.state.prev"),
            "garbage, garbage previous": lambda d: (write("boot.state", b"\xff" * 64)(d),
                                                    write("boot.state.prev", b"x")(d)),
        }
        for name, mutate in variants.items():
            with self.subTest(variant=name):
                st = self.corrupt_and_boot(mutate)
                self.assertTrue(st["slots"][st["active_slot"]]["bootable"], name)


if __name__ == "__main__":
    unittest.main()
