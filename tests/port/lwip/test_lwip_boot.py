"""lwip-boot, the emulated ESP8266 of the lwIP port, driven as a user would: flash,
status, run, boot. No network: the firmware is lwip-test-firmware (flash_firmware.c),
which logs each start and either exits as scripted, waits for SIGTERM, or puts an
image through the port's store table (what the core does with an upload) and asks
for a reboot; lwip-boot's boot stage then copies it over the application.

The flash file is also read here directly (the layout offsets of docs/lwip-port.md),
so the test pins where the application lives. Every lwip-boot runs in a temp dir
with its own TMPDIR (the extracted application must be cleaned up) and is killed at
the end if still running.
"""
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
    os.path.dirname(os.path.abspath(__file__)), "..", "..", "..", "build", "bin")
LWIP_BOOT = os.path.join(BIN, "lwip-boot")
FIRMWARE = os.environ.get("LWIP_TEST_FIRMWARE") or os.path.join(
    BIN, "lwip-test-firmware")

APP_START = 0x1000
FS_START = {"esp8266-1m": 0xEB000, "esp8266-4m": 0x200000}
FLASH_SIZE = {"esp8266-1m": 1 << 20, "esp8266-4m": 4 << 20}
EXIT_NO_BOOT = 3
EXIT_CUT = 4


def sha(data):
    return hashlib.sha256(data).hexdigest()


def roundup(n):
    return (n + 4095) // 4096 * 4096


class LwipBootTest(unittest.TestCase):
    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix="lwip-boot-test-")
        self.tmp = os.path.join(self.dir, "tmp")
        os.mkdir(self.tmp)
        self.flash = os.path.join(self.dir, "flash.bin")
        self.log = os.path.join(self.dir, "fw.log")
        self.env = dict(os.environ, TMPDIR=self.tmp)
        with open(FIRMWARE, "rb") as f:
            self.fw = f.read()
        self.procs = []

    def tearDown(self):
        for p in self.procs:
            if p.poll() is None:
                os.killpg(p.pid, signal.SIGKILL)
                p.wait()
                self.fail("an lwip-boot was still running")
        shutil.rmtree(self.dir)

    def boot(self, *args, timeout=60):
        return subprocess.run([LWIP_BOOT] + list(args), capture_output=True, text=True,
                              env=self.env, timeout=timeout)

    def status(self, path=None):
        r = self.boot("status", "--flash", path or self.flash)
        self.assertEqual(r.returncode, 0, r.stderr)
        return json.loads(r.stdout)

    def flash_fw(self, layout="esp8266-4m", image=None):
        path = os.path.join(self.dir, "image.bin")
        with open(path, "wb") as f:
            f.write(self.fw if image is None else image)
        r = self.boot("flash", "--flash", self.flash, "--layout", layout, path)
        self.assertEqual(r.returncode, 0, r.stderr)

    def new_image(self, pad):
        """The firmware with bytes appended: still an executable that runs, with
        another hash (what an update of the firmware looks like here)."""
        img = self.fw + b"\0" * pad + b"new image %d\n" % pad
        path = os.path.join(self.dir, "new-%d.bin" % pad)
        with open(path, "wb") as f:
            f.write(img)
        return img, path

    def log_text(self):
        if not os.path.exists(self.log):
            return ""
        with open(self.log) as f:
            return f.read()

    def starts(self):
        if not os.path.exists(self.log):
            return []
        with open(self.log) as f:
            return [l.split() for l in f.read().splitlines() if l.startswith("start ")]

    # ------------------------------------------------------------ the CLI itself

    def test_help_and_usage_errors(self):
        r = self.boot("--help")
        self.assertEqual(r.returncode, 0)
        for word in ("flash", "run", "status", "boot", "esp8266-4m", "esp8266-1m"):
            self.assertIn(word, r.stdout)
        for cmd in ("flash", "run", "status", "boot"):
            r = self.boot(cmd, "--help")
            self.assertEqual(r.returncode, 0, cmd)
            self.assertTrue(r.stdout.startswith("usage: lwip-boot " + cmd), r.stdout)
        self.assertIn("42", self.boot("run", "--help").stdout)
        self.assertIn("--cut-after-ops", self.boot("boot", "--help").stdout)
        cases = [
            ([], "usage"),
            (["frobnicate"], "unknown command 'frobnicate'"),
            (["status"], "needs --flash FILE"),
            (["flash", "--flash", self.flash, "x"], "needs --layout"),
            (["flash", "--flash", self.flash, "--layout", "esp32", "x"], "unknown layout 'esp32'"),
            (["flash", "--flash", self.flash, "--layout", "esp8266-1m"], "exactly one IMAGE"),
            (["status", "--flash", self.flash, "--tap", "t0"], "--tap is an option of 'run'"),
            (["status", "--flash", self.flash, "--layout", "esp8266-1m"],
             "--layout is an option of 'flash'"),
            (["run", "--flash", self.flash, "extra"], "after '--'"),
            (["boot", "--flash", self.flash, "--cut-after-ops", "0"], "needs a number >= 1"),
            (["status", "--flash"], "needs a value"),
            (["status", "--bogus"], "unknown option"),
        ]
        for args, msg in cases:
            r = self.boot(*args)
            self.assertEqual(r.returncode, 2, (args, r.stderr))
            self.assertIn(msg, r.stderr, args)

    def test_flash_file_errors(self):
        r = self.boot("status", "--flash", os.path.join(self.dir, "missing.bin"))
        self.assertEqual(r.returncode, 1)
        self.assertIn("cannot open the flash file", r.stderr)
        with open(self.flash, "wb") as f:
            f.write(b"\xff" * (2 << 20))
        r = self.boot("boot", "--flash", self.flash)
        self.assertEqual(r.returncode, 1)
        self.assertIn("no known layout", r.stderr)
        with open(self.flash, "wb") as f:  # blank 1 MiB chip: nothing to boot
            f.write(b"\xff" * (1 << 20))
        r = self.boot("boot", "--flash", self.flash)
        self.assertEqual(r.returncode, EXIT_NO_BOOT)
        self.assertIn("no valid boot record", r.stderr)
        r = self.boot("run", "--flash", self.flash, "--", "--log", self.log)
        self.assertEqual(r.returncode, EXIT_NO_BOOT)
        self.assertEqual(self.starts(), [])
        st = self.status()
        self.assertFalse(st["boot_record"])
        self.assertIsNone(st["active_sha256"])
        # an image larger than the application area of the layout
        big = os.path.join(self.dir, "big.bin")
        with open(big, "wb") as f:
            f.write(b"\x7fELF" + b"\0" * (FS_START["esp8266-1m"] - APP_START))
        r = self.boot("flash", "--flash", self.flash, "--layout", "esp8266-1m", big)
        self.assertEqual(r.returncode, 1)
        self.assertIn("does not fit the application area of esp8266-1m", r.stderr)

    # ------------------------------------------------------------ flash + status

    def test_flash_writes_the_layout(self):
        for layout in ("esp8266-1m", "esp8266-4m"):
            self.flash_fw(layout)
            with open(self.flash, "rb") as f:
                chip = f.read()
            self.assertEqual(len(chip), FLASH_SIZE[layout])
            n = len(self.fw)
            self.assertEqual(chip[APP_START:APP_START + n], self.fw)
            tail = chip[APP_START + n:FS_START[layout]]
            self.assertEqual(tail, b"\xff" * len(tail))  # erased: free for the update
            self.assertIn(b"eboot", chip[:64])
            st = self.status()
            self.assertEqual(st["layout"], layout)
            self.assertEqual(st["flash_size"], FLASH_SIZE[layout])
            self.assertEqual(st["app_size"], n)
            self.assertEqual(st["active_sha256"], sha(self.fw))
            self.assertTrue(st["app_intact"])
            self.assertEqual(st["boot_attempts"], 0)
            self.assertFalse(st["safe_mode"])
            self.assertFalse(st["pending_copy"])
            self.assertIsNone(st["copy"])
            self.assertEqual(st["update_area"]["end"], FS_START[layout])
            half = (FS_START[layout] - APP_START) // 2 // 4096 * 4096
            self.assertEqual(st["update_area"]["max_image_size"],
                             min(FS_START[layout] - APP_START - roundup(n), half))

    # ------------------------------------------------------------ run

    def test_run_reboot_once_then_exit(self):
        self.flash_fw()
        reboots = os.path.join(self.dir, "reboots")
        with open(reboots, "w") as f:
            f.write("1\n")
        r = self.boot("run", "--flash", self.flash, "--tap", "tap-x", "--",
                      "--log", self.log, "--reboots-file", reboots, "--ip", "10.0.0.2/24")
        self.assertEqual(r.returncode, 0, r.stderr)
        starts = self.starts()
        self.assertEqual(len(starts), 2, r.stderr)  # the reboot restarted it once
        for s in starts:
            self.assertEqual(s[1], "sha=" + sha(self.fw))
            # the contract: --flash FILE --tap TAP, then the firmware's own arguments
            self.assertEqual(s[2:], ["args=--flash", self.flash, "--tap", "tap-x", "--log",
                                     self.log, "--reboots-file", reboots, "--ip",
                                     "10.0.0.2/24"])
        self.assertIn("requested a reboot", r.stderr)
        self.assertEqual(os.listdir(self.tmp), [])  # the extracted application is gone
        # any other status ends lwip-boot with it
        r = self.boot("run", "--flash", self.flash, "--", "--exit", "7")
        self.assertEqual(r.returncode, 7)
        self.assertIn("exited with status 7", r.stderr)
        self.assertEqual(os.listdir(self.tmp), [])

    def test_run_restart_on_crash(self):
        self.flash_fw()
        p = subprocess.Popen([LWIP_BOOT, "run", "--flash", self.flash, "--restart-on-crash",
                              "--restart-delay-ms", "50", "--", "--log", self.log, "--exit", "1"],
                             env=self.env, stderr=subprocess.PIPE, text=True,
                             start_new_session=True)
        self.procs.append(p)
        deadline = time.time() + 30
        while len(self.starts()) < 3 and time.time() < deadline:
            time.sleep(0.05)
        self.assertGreaterEqual(len(self.starts()), 3)
        p.send_signal(signal.SIGTERM)
        _, err = p.communicate(timeout=30)
        self.assertEqual(p.returncode, 0, err)
        self.assertIn("--restart-on-crash", err)

    def test_sigterm_stops_firmware_and_cleans_up(self):
        self.flash_fw()
        p = subprocess.Popen([LWIP_BOOT, "run", "--flash", self.flash, "--tap", "t", "--",
                              "--log", self.log, "--wait"],
                             env=self.env, stderr=subprocess.PIPE, text=True,
                             start_new_session=True)
        self.procs.append(p)
        deadline = time.time() + 30
        while time.time() < deadline:
            if "waiting" in self.log_text():
                break
            time.sleep(0.05)
        else:
            self.fail("the firmware did not start")
        # a second lwip-boot on the same flash is refused while this one runs
        r = self.boot("run", "--flash", self.flash, "--", "--exit", "0")
        self.assertEqual(r.returncode, 1)
        self.assertIn("in use by another lwip-boot", r.stderr)
        with open(self.flash, "rb") as f:
            chip = f.read()
        r = self.boot("flash", "--flash", self.flash, "--layout", "esp8266-1m", FIRMWARE)
        self.assertEqual(r.returncode, 1)
        self.assertIn("in use by a running lwip-boot", r.stderr)
        with open(self.flash, "rb") as f:
            self.assertEqual(f.read(), chip)
        p.send_signal(signal.SIGTERM)
        _, err = p.communicate(timeout=30)
        self.assertEqual(p.returncode, 0, err)
        self.assertIn("terminated", self.log_text())
        self.assertEqual(os.listdir(self.tmp), [])

    # ------------------------------------------------------------ updates

    def test_update_through_the_store_is_copied_at_reboot(self):
        self.flash_fw("esp8266-4m")
        img, path = self.new_image(10000)
        r = self.boot("run", "--flash", self.flash, "--", "--log", self.log, "--install", path)
        self.assertEqual(r.returncode, 0, r.stderr)
        starts = self.starts()
        self.assertEqual([s[1] for s in starts], ["sha=" + sha(self.fw), "sha=" + sha(img)],
                         r.stderr)
        self.assertIn("update copied over the application", r.stderr)
        st = self.status()
        self.assertEqual(st["active_sha256"], sha(img))
        self.assertEqual(st["app_size"], len(img))
        self.assertFalse(st["pending_copy"])
        self.assertTrue(st["pending"])  # unconfirmed until the core's safe mode says so
        with open(self.flash, "rb") as f:
            chip = f.read()
        self.assertEqual(chip[APP_START:APP_START + len(img)], img)
        # the update area was placed as the Updater does: it ends at the filesystem
        area = FS_START["esp8266-4m"] - roundup(len(img))
        self.assertEqual(chip[area:area + len(img)], img)

    def test_1m_no_space_next_to_the_running_image(self):
        # a running application of 600 KiB leaves 336 KiB of the 936 KiB beside it
        old = (self.fw + b"\0" * (600 * 1024))[:600 * 1024]
        self.flash_fw("esp8266-1m", image=old)
        self.assertEqual(self.status()["update_area"]["max_image_size"], 336 * 1024)
        img = self.fw + b"\0" * (336 * 1024 + 1 - len(self.fw))  # one byte too many
        path = os.path.join(self.dir, "new.bin")
        with open(path, "wb") as f:
            f.write(img)
        self.assertLess(len(img), 468 * 1024)  # it alone would fit the 1 MB flash
        with open(self.flash, "rb") as f:
            before = f.read()
        r = subprocess.run([FIRMWARE, "--flash", self.flash, "--install", path],
                           capture_output=True, text=True)
        self.assertEqual(r.returncode, 5, r.stdout + r.stderr)
        self.assertIn("begin: -31 0x88", r.stdout)  # ERROR_ESP8266_NOT_ENOUGH_SPACE
        self.assertIn("not enough space", r.stderr)
        with open(self.flash, "rb") as f:
            self.assertEqual(f.read(), before)  # not one byte written
        # the same image next to the same application fits a 4 MB flash
        self.flash_fw("esp8266-4m", image=old)
        r = subprocess.run([FIRMWARE, "--flash", self.flash, "--install", path],
                           capture_output=True, text=True)
        self.assertEqual(r.returncode, 42, r.stdout + r.stderr)
        st = self.status()
        self.assertTrue(st["pending_copy"])
        self.assertEqual(st["copy"]["sha256"], sha(img))
        r = self.boot("run", "--flash", self.flash, "--", "--log", self.log)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(self.starts()[-1][1], "sha=" + sha(img))

    def test_power_cut_during_the_copy(self):
        """A pending copy, cut at many operations of the boot stage (the C test
        cuts at every one): after each, the flash names nothing that is not whole,
        and the next boot stage ends with the new image. The old application is
        another executable (lwip-boot itself), so that hardly a sector of the two
        is equal and every sector really is copied."""
        with open(LWIP_BOOT, "rb") as f:
            old = f.read()
        self.flash_fw("esp8266-4m", image=old)
        img, path = self.new_image(3000)
        r = subprocess.run([FIRMWARE, "--flash", self.flash, "--install", path],
                           capture_output=True, text=True)
        self.assertEqual(r.returncode, 42, r.stdout + r.stderr)
        st = self.status()
        self.assertTrue(st["pending_copy"])
        self.assertEqual(st["copy"]["sha256"], sha(img))
        self.assertEqual(st["active_sha256"], sha(old))  # still the old one
        with open(self.flash, "rb") as f:
            pristine = f.read()
        sectors = roundup(len(img)) // 4096
        ops = 2 * sectors + 2  # at most: erase + write per sector, two for the record
        picks = sorted(set([1, 2, 3, ops - 2, ops - 1, ops] + list(range(4, ops, 9))))
        cut_seen = 0
        for n in picks:
            with open(self.flash, "wb") as f:
                f.write(pristine)
            r = self.boot("boot", "--flash", self.flash, "--cut-after-ops", str(n))
            if r.returncode == 0:
                self.assertGreater(n, 2)  # only a cut past the last operation completes
                continue
            self.assertEqual(r.returncode, EXIT_CUT, r.stderr)
            cut_seen += 1
            st = self.status()
            if not st["pending_copy"]:
                self.assertTrue(st["app_intact"])
                self.assertIn(st["active_sha256"], (sha(old), sha(img)))
            r = self.boot("boot", "--flash", self.flash)
            self.assertEqual(r.returncode, 0, r.stderr)
            st = self.status()
            self.assertFalse(st["pending_copy"])
            self.assertEqual(st["active_sha256"], sha(img), n)
        self.assertGreater(cut_seen, len(picks) // 2)
        # and the restored flash runs the new application
        r = self.boot("run", "--flash", self.flash, "--", "--log", self.log)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(self.starts()[-1][1], "sha=" + sha(img))


if __name__ == "__main__":
    unittest.main()
