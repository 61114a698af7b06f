"""ota-boot, the Linux node's bootloader, driven as a user would: flash, status, run.

`run` is exercised with a scriptable fake firmware (fake_firmware.c): it logs every
boot (slot, pid, state dir, arguments) to STATE/boots.log and does what STATE/mode
says (exit N, crash, serve until SIGTERM or SIGUSR1 -> exit 42, ignore SIGTERM).
The boot state is read and written here from docs/boot-state.md alone, with Python's
own CRC-32, so the test also pins the on-disk format.

Every ota-boot runs in its own session with its own temp dir; a cleanup kills
whatever is left (and the test fails if anything was left).
"""
import binascii
import hashlib
import json
import os
import shutil
import signal
import subprocess
import tempfile
import time
import unittest

BIN = os.environ.get("OTA_BIN_DIR") or os.path.join(
    os.path.dirname(os.path.abspath(__file__)), "..", "..", "build", "bin")
OTA_BOOT = os.path.join(BIN, "ota-boot")
FIRMWARE = os.environ.get("OTA_PORT_TEST_FIRMWARE") or os.path.join(
    BIN, "ota-port-test-firmware")

FIELDS = ["active", "confirmed", "pending", "pending_boots", "boot_attempts",
          "safe_mode_request", "safe_mode"]


def read_state(path):
    """Parse boot.state per docs/boot-state.md; raises ValueError when invalid."""
    with open(path, "rb") as f:
        data = f.read()
    lines = data.split(b"\n")
    if lines[0] != b"ota-boot-state 1" or lines[-1] != b"":
        raise ValueError("bad header or no final newline")
    crc_line = lines[-2]
    if not crc_line.startswith(b"crc32="):
        raise ValueError("no checksum")
    body = data[:len(data) - len(crc_line) - 1]
    if int(crc_line[6:], 16) != binascii.crc32(body):
        raise ValueError("checksum mismatch")
    st = {}
    for line in lines[1:-2]:
        k, v = line.decode().split("=", 1)
        st[k] = v if k in ("active", "confirmed") else int(v)
    st.setdefault("min_secure_version", 0)  # optional: files from before anti-rollback
    if sorted(st) != sorted(FIELDS + ["min_secure_version"]):
        raise ValueError("fields: %r" % sorted(st))
    return st


def write_state(path, **fields):
    st = dict(active="a", confirmed="a", pending=0, pending_boots=0, boot_attempts=0,
              safe_mode_request=0, safe_mode=0)
    st.update(fields)
    body = "ota-boot-state 1\n" + "".join("%s=%s\n" % (k, st[k]) for k in FIELDS)
    body = body.encode()
    with open(path, "wb") as f:
        f.write(body + b"crc32=%08x\n" % binascii.crc32(body))


def sha256(path):
    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


def alive(pid):
    """True while pid exists and is not a zombie."""
    try:
        with open("/proc/%d/stat" % pid) as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False


def wait_for(pred, timeout, what):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        v = pred()
        if v:
            return v
        time.sleep(0.02)
    raise AssertionError("timed out waiting for " + what)


class OtaBootTest(unittest.TestCase):
    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix="ota-boot-test-")
        self.addCleanup(shutil.rmtree, self.dir, True)
        self.state = os.path.join(self.dir, "state")
        self.procs = []

    def boot(self, *args):
        p = subprocess.run([OTA_BOOT] + [str(a) for a in args], capture_output=True,
                           text=True, timeout=60, stdin=subprocess.DEVNULL)
        return p.returncode, p.stdout, p.stderr

    def flash(self, image=FIRMWARE):
        rc, out, err = self.boot("flash", "--state", self.state, image)
        self.assertEqual(rc, 0, err)
        return out

    def status(self):
        rc, out, err = self.boot("status", "--state", self.state)
        self.assertEqual(rc, 0, err)
        return json.loads(out), err

    def set_mode(self, *lines):
        with open(os.path.join(self.state, "mode"), "w") as f:
            f.write("".join(line + "\n" for line in lines))

    def boots(self):
        """[(slot, pid, state, args)] of every boot so far, plus other events."""
        try:
            with open(os.path.join(self.state, "boots.log")) as f:
                lines = f.read().splitlines()
        except FileNotFoundError:
            return [], []
        boots, events = [], []
        for line in lines:
            if line.startswith("boot "):
                kv = dict(p.split("=", 1) for p in line[5:].split(" ", 3))
                boots.append((kv["slot"], int(kv["pid"]), kv["state"],
                              kv["args"].split("|") if kv["args"] else []))
            else:
                events.append(line)
        return boots, events

    def wait_boots(self, n, timeout=10):
        return wait_for(lambda: len(self.boots()[0]) >= n and self.boots()[0], timeout,
                        "%d boots" % n)

    def run_node(self, *args, boot_flags=()):
        self.log = open(os.path.join(self.dir, "ota-boot.log"), "w+")
        cmd = [OTA_BOOT, "run", "--state", self.state] + list(boot_flags) + ["--"] + list(args)
        p = subprocess.Popen(cmd, stdout=self.log, stderr=subprocess.STDOUT,
                             stdin=subprocess.DEVNULL, start_new_session=True)
        self.procs.append(p)
        self.addCleanup(self.reap, p)
        return p

    def reap(self, p):
        if p.poll() is None:
            try:
                os.killpg(p.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            p.wait(timeout=10)
        for _, pid, _, _ in self.boots()[0]:
            if alive(pid):
                os.kill(pid, signal.SIGKILL)
        self.log.close()

    def output(self):
        self.log.flush()
        with open(self.log.name) as f:
            return f.read()

    def assert_nothing_left(self):
        for _, pid, _, _ in self.boots()[0]:
            self.assertFalse(alive(pid), "firmware pid %d is still running" % pid)

    # ------------------------------------------------------------------ help

    def test_help_and_usage_errors(self):
        rc, out, _ = self.boot("--help")
        self.assertEqual(rc, 0)
        for word in ("flash", "run", "status", "--state"):
            self.assertIn(word, out)
        for cmd in ("flash", "run", "status"):
            rc, out, _ = self.boot(cmd, "--help")
            self.assertEqual(rc, 0)
            self.assertIn("usage: ota-boot " + cmd, out)
        rc, _, err = self.boot()
        self.assertEqual(rc, 2)
        self.assertIn("usage", err)
        rc, _, err = self.boot("frobnicate")
        self.assertEqual(rc, 2)
        self.assertIn("unknown command", err)
        rc, _, err = self.boot("flash", FIRMWARE)
        self.assertEqual(rc, 2)
        self.assertIn("--state", err)
        rc, _, err = self.boot("flash", "--state", self.state)
        self.assertEqual(rc, 2)
        rc, _, err = self.boot("status", "--state", self.state, "extra")
        self.assertEqual(rc, 2)

    # ----------------------------------------------------------- flash/status

    def test_flash_and_status(self):
        out = self.flash()
        self.assertIn("slot a", out)
        slot_a = os.path.join(self.state, "slot_a.bin")
        self.assertEqual(sha256(slot_a), sha256(FIRMWARE))
        self.assertTrue(os.access(slot_a, os.X_OK))
        self.assertEqual(read_state(os.path.join(self.state, "boot.state")),
                         dict(active="a", confirmed="a", pending=0, pending_boots=0,
                              boot_attempts=0, safe_mode_request=0, safe_mode=0,
                              min_secure_version=0))
        st, err = self.status()
        self.assertEqual(err, "")
        self.assertEqual(st["active_slot"], "a")
        self.assertEqual(st["active_sha256"], sha256(FIRMWARE))
        self.assertEqual(st["boot_attempts"], 0)
        self.assertIs(st["safe_mode"], False)
        self.assertIs(st["pending"], False)
        self.assertEqual(st["confirmed_slot"], "a")
        self.assertEqual(st["state_file"], "ok")
        self.assertEqual(st["slots"]["a"]["sha256"], sha256(FIRMWARE))
        self.assertEqual(st["slots"]["a"]["size"], os.path.getsize(FIRMWARE))
        self.assertIs(st["slots"]["a"]["bootable"], True)
        self.assertIs(st["slots"]["b"]["present"], False)

    def test_status_reports_what_the_state_file_says(self):
        self.flash()
        shutil.copyfile(FIRMWARE, os.path.join(self.state, "slot_b.bin"))
        write_state(os.path.join(self.state, "boot.state"), active="b", pending=1,
                    pending_boots=2, boot_attempts=4, safe_mode=1)
        st, _ = self.status()
        self.assertEqual((st["active_slot"], st["confirmed_slot"]), ("b", "a"))
        self.assertEqual((st["pending"], st["pending_boots"]), (True, 2))
        self.assertEqual((st["boot_attempts"], st["safe_mode"]), (4, True))
        self.assertEqual(st["active_sha256"], sha256(FIRMWARE))
        self.assertIs(st["slots"]["b"]["present"], True)
        # a damaged file: status still answers, says so, and names a bootable slot
        with open(os.path.join(self.state, "boot.state"), "r+b") as f:
            f.seek(20)
            f.write(b"#")
        st, err = self.status()
        self.assertEqual(st["state_file"], "fallback")
        self.assertIn(st["active_slot"], ("a", "b"))
        self.assertIn("[ota-boot] ", err)

    def test_reflash_resets_everything(self):
        self.flash()
        shutil.copyfile(FIRMWARE, os.path.join(self.state, "slot_b.bin"))
        write_state(os.path.join(self.state, "boot.state"), active="b", confirmed="b",
                    boot_attempts=3)
        write_state(os.path.join(self.state, "boot.state.prev"), active="b", confirmed="b")
        self.flash()
        self.assertEqual(read_state(os.path.join(self.state, "boot.state"))["active"], "a")
        # no older generation survives that a fallback could boot
        self.assertFalse(os.path.exists(os.path.join(self.state, "boot.state.prev")))
        st, _ = self.status()
        self.assertEqual((st["active_slot"], st["boot_attempts"]), ("a", 0))

    def test_flash_refuses_what_is_not_an_executable(self):
        script = os.path.join(self.dir, "fw.sh")
        with open(script, "w") as f:
            f.write("#!/bin/sh\necho hi\n")
        os.chmod(script, 0o755)
        for bad in (script, self.dir):
            rc, _, err = self.boot("flash", "--state", self.state, bad)
            self.assertEqual(rc, 1)
            self.assertIn("not an executable for this machine", err)
        rc, _, err = self.boot("flash", "--state", self.state, os.path.join(self.dir, "missing"))
        self.assertEqual(rc, 1)
        self.assertIn("missing: No such file or directory", err)  # says what is wrong
        self.assertFalse(os.path.exists(self.state))  # nothing created on failure

    def test_status_of_a_missing_dir_says_how_to_create_it(self):
        rc, out, err = self.boot("status", "--state", self.state)
        self.assertEqual(rc, 1)
        self.assertEqual(out, "")
        self.assertIn("ota-boot flash --state", err)

    # ------------------------------------------------------------------- run

    def test_run_passes_args_env_and_stops_cleanly_on_sigterm(self):
        self.flash()
        rel = os.path.relpath(self.state)
        p = self.run_node("--port", "1234", "two words")
        slot, pid, state, args = self.wait_boots(1)[0]
        self.assertEqual(slot, "a")
        self.assertEqual(state, os.path.realpath(self.state))  # absolute
        self.assertTrue(os.path.isabs(state), rel)
        self.assertEqual(args, ["--port", "1234", "two words"])
        self.assertTrue(alive(pid))
        p.send_signal(signal.SIGTERM)
        self.assertEqual(p.wait(timeout=10), 0)
        self.assertIn("term %d" % pid, self.boots()[1])  # the firmware got SIGTERM
        self.assert_nothing_left()
        out = self.output()
        self.assertIn("[ota-boot] booting slot a", out)
        self.assertIn("fake firmware on slot a", out)  # firmware output passes through
        self.assertIn("[ota-boot] stopped", out)

    def test_one_run_per_state_dir_and_no_flash_under_it(self):
        self.flash()
        p = self.run_node()
        self.wait_boots(1)
        # a second run on the same node is refused, naming the running one
        rc, _, err = self.boot("run", "--state", self.state)
        self.assertEqual(rc, 1)
        self.assertIn("is running ('ota-boot run', pid %d)" % p.pid, err)
        self.assertIn("stop it first", err)
        # a flash would swap the slots under the running firmware: refused
        slot_a = os.path.join(self.state, "slot_a.bin")
        before = sha256(slot_a)
        rc, _, err = self.boot("flash", "--state", self.state, FIRMWARE)
        self.assertEqual(rc, 1)
        self.assertIn("cannot be flashed now", err)
        self.assertEqual(sha256(slot_a), before)
        # status and a safe-mode request stay possible while it runs
        self.assertEqual(self.boot("status", "--state", self.state)[0], 0)
        self.assertEqual(self.boot("safe-mode", "--state", self.state)[0], 0)
        p.send_signal(signal.SIGTERM)
        self.assertEqual(p.wait(timeout=10), 0)
        # stopped: the lock is gone with the process
        self.assertEqual(self.boot("flash", "--state", self.state, FIRMWARE)[0], 0)

    def test_a_killed_run_leaves_no_stale_lock(self):
        self.flash()
        p = self.run_node()
        self.wait_boots(1)
        os.kill(p.pid, signal.SIGKILL)
        p.wait(timeout=10)
        self.assertEqual(self.boot("flash", "--state", self.state, FIRMWARE)[0], 0)

    def test_sigint_stops_too(self):
        self.flash()
        p = self.run_node()
        pid = self.wait_boots(1)[0][1]
        p.send_signal(signal.SIGINT)
        self.assertEqual(p.wait(timeout=10), 0)
        self.assertIn("term %d" % pid, self.boots()[1])
        self.assert_nothing_left()

    def test_reboot_request_boots_the_new_active_slot(self):
        self.flash()
        p = self.run_node()
        pid = self.wait_boots(1)[0][1]
        # what an update does: new image in slot b, boot state switched, exit 42
        shutil.copyfile(FIRMWARE, os.path.join(self.state, "slot_b.bin"))
        os.chmod(os.path.join(self.state, "slot_b.bin"), 0o755)
        write_state(os.path.join(self.state, "boot.state"), active="b", confirmed="a",
                    pending=1)
        os.kill(pid, signal.SIGUSR1)
        boots = self.wait_boots(2)
        self.assertEqual(boots[1][0], "b")
        self.assertFalse(alive(pid))
        st = read_state(os.path.join(self.state, "boot.state"))
        self.assertEqual((st["active"], st["pending"], st["pending_boots"]), ("b", 1, 1))
        out = self.output()
        self.assertIn("firmware requested a reboot", out)
        self.assertNotIn("restarting in", out)  # a reboot is not a failure: no delay
        p.send_signal(signal.SIGTERM)
        self.assertEqual(p.wait(timeout=10), 0)
        self.assert_nothing_left()

    def test_crashing_firmware_is_restarted_with_growing_delay(self):
        self.flash()
        self.set_mode("crash")
        p = self.run_node(boot_flags=["--restart-delay-ms", "100"])
        boots = self.wait_boots(7, timeout=20)
        out = self.output()
        self.assertIn("firmware crashed (signal 6", out)
        delays = [int(line.split("restarting in ")[1].split()[0])
                  for line in out.splitlines() if "restarting in" in line]
        self.assertEqual(delays[:6], [100, 200, 400, 800, 1000, 1000])  # capped at 10x
        # the firmware recovers (e.g. the cause went away): it stays up
        self.set_mode("exit 3", "serve")
        n = len(self.boots()[0])
        boots = self.wait_boots(n + 2, timeout=10)
        wait_for(lambda: "firmware exited with status 3" in self.output(), 5, "exit 3")
        self.assertTrue(alive(boots[-1][1]))
        self.assertTrue(all(b[0] == "a" for b in boots))
        p.send_signal(signal.SIGTERM)
        self.assertEqual(p.wait(timeout=10), 0)
        self.assert_nothing_left()

    def test_sigterm_while_waiting_to_restart_exits_at_once(self):
        self.flash()
        self.set_mode("crash")
        p = self.run_node(boot_flags=["--restart-delay-ms", "5000"])
        self.wait_boots(1)
        wait_for(lambda: "restarting in 5000 ms" in self.output(), 5, "the restart delay")
        t0 = time.monotonic()
        p.send_signal(signal.SIGTERM)
        self.assertEqual(p.wait(timeout=10), 0)
        self.assertLess(time.monotonic() - t0, 2)
        self.assertEqual(len(self.boots()[0]), 1)

    def test_firmware_that_ignores_sigterm_is_killed_after_5_s(self):
        self.flash()
        self.set_mode("stubborn")
        p = self.run_node()
        pid = self.wait_boots(1)[0][1]
        time.sleep(0.2)  # let it install its SIG_IGN
        t0 = time.monotonic()
        p.send_signal(signal.SIGTERM)
        self.assertEqual(p.wait(timeout=20), 0)
        took = time.monotonic() - t0
        self.assertGreater(took, 4.5)
        self.assertLess(took, 10)
        self.assertFalse(alive(pid))
        self.assertIn("did not stop within 5 s", self.output())

    def test_killed_bootloader_leaves_no_orphan(self):
        self.flash()
        p = self.run_node()
        pid = self.wait_boots(1)[0][1]
        os.kill(p.pid, signal.SIGKILL)  # only the bootloader, not its group
        p.wait(timeout=10)
        wait_for(lambda: not alive(pid), 5, "the firmware to follow its bootloader")
        self.assertIn("term %d" % pid, self.boots()[1])

    def test_damaged_boot_state_still_boots_and_is_repaired(self):
        self.flash()
        with open(os.path.join(self.state, "boot.state"), "wb") as f:
            f.write(os.urandom(100))
        p = self.run_node()
        self.assertEqual(self.wait_boots(1)[0][0], "a")
        self.assertIn("boot.state", self.output())
        st = read_state(os.path.join(self.state, "boot.state"))  # valid again
        self.assertEqual(st["active"], "a")
        p.send_signal(signal.SIGTERM)
        self.assertEqual(p.wait(timeout=10), 0)

    def test_active_slot_without_an_image_boots_the_other(self):
        self.flash()
        write_state(os.path.join(self.state, "boot.state"), active="b", confirmed="b")
        p = self.run_node()
        self.assertEqual(self.wait_boots(1)[0][0], "a")
        self.assertIn("slot b holds no bootable image; booting slot a", self.output())
        self.assertEqual(read_state(os.path.join(self.state, "boot.state"))["active"], "a")
        p.send_signal(signal.SIGTERM)
        self.assertEqual(p.wait(timeout=10), 0)

    def test_nothing_bootable_is_an_error_not_a_loop(self):
        os.mkdir(self.state)
        rc, _, err = self.boot("run", "--state", self.state)
        self.assertEqual(rc, 1)
        self.assertIn("no bootable image", err)
        self.assertIn("ota-boot flash --state", err)
        rc, _, err = self.boot("run", "--state", os.path.join(self.dir, "missing"))
        self.assertEqual(rc, 1)
        self.assertIn("ota-boot flash --state", err)


if __name__ == "__main__":
    unittest.main()
