"""A connection flood does not lock the owner out (issue 12): four flooder processes
hammer the node's OTA port from several loopback addresses (127.0.0.x), with
connections that sit silent, send garbage, or close at once, while ten real
`ota upload`s run one after another from 127.0.0.1. Nearly all of them must succeed,
and the node's log must stay small (repeated events are summarised, not logged one
by one). Lower bounds only: the machine running this is noisy."""
import os
import random
import signal
import socket
import subprocess
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from nodelib import Node, make_image  # noqa: E402

FLOODERS = 4
UPLOADS = 10
FLOOD_S = 18  # at least this long: the log bound is extrapolated from it
LOG_BUDGET_PER_MIN = 1 << 20


def flood(port, sources, seconds, seed):
    """One flooder: connect as fast as possible from the given source addresses until
    the time is up; keep up to 64 silent connections open, send garbage on some,
    close others at once."""
    rnd = random.Random(seed)
    sitting = []
    end = time.monotonic() + seconds
    made = 0
    stop = []
    signal.signal(signal.SIGTERM, lambda *_: stop.append(1))
    while time.monotonic() < end and not stop:
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        try:
            s.bind((rnd.choice(sources), 0))
            s.settimeout(1.0)
            s.connect(("127.0.0.1", port))
        except OSError:
            s.close()
            time.sleep(0.01)  # refused (the node reboots after each upload): not a spin
            continue
        made += 1
        kind = rnd.random()
        if kind < 0.5:
            sitting.append(s)
            if len(sitting) > 64:
                sitting.pop(0).close()
        elif kind < 0.75:
            try:
                s.send(bytes(rnd.randrange(256) for _ in range(rnd.randrange(1, 64))))
            except OSError:
                pass
            s.close()
        else:
            s.close()
    for s in sitting:
        s.close()
    print(made)


class FloodTest(unittest.TestCase):
    def start_flooders(self, port, seconds):
        procs = []
        for i in range(FLOODERS):
            sources = ["127.0.0.%d" % (10 + 3 * i + k) for k in range(3)]
            p = subprocess.Popen([sys.executable, os.path.abspath(__file__), "--flood",
                                  str(port), ",".join(sources), str(seconds), str(i)],
                                 stdout=subprocess.PIPE, stdin=subprocess.DEVNULL,
                                 text=True)
            self.addCleanup(self.stop, p)
            procs.append(p)
        return procs

    @staticmethod
    def stop(p):
        if p.poll() is None:
            p.kill()
        p.wait(timeout=10)
        if p.stdout:
            p.stdout.close()

    def test_uploads_succeed_under_a_connection_flood(self):
        node = Node(self, "--heartbeat-ms", "500")
        images = [make_image(self, seed=100 + i, extra=20000) for i in range(UPLOADS)]
        log0 = os.path.getsize(node.log_path)
        t0 = time.monotonic()
        procs = self.start_flooders(node.port, 120)
        time.sleep(1.0)  # the flood is on before the first upload
        ok, failures = 0, []
        boots = 1
        for k, img in enumerate(images):
            # spread the uploads over the flood (each takes well under a second)
            time.sleep(max(0.0, t0 + 1.0 + k * (FLOOD_S - 2.0) / UPLOADS - time.monotonic()))
            rc, _, err = node.upload(img, "--password", "VERYSECURE", "--timeout", "20",
                                     timeout=60)
            if rc == 0:
                ok += 1
                boots += 1
                node.wait_listening(boots, timeout=30)
            else:
                failures.append(err.strip()[-300:])
        time.sleep(max(0.0, t0 + FLOOD_S - time.monotonic()))
        made = 0
        for p in procs:
            p.terminate()
            out, _ = p.communicate(timeout=10)
            made += int(out.strip() or 0)
        elapsed = time.monotonic() - t0
        time.sleep(0.5)
        log_bytes = os.path.getsize(node.log_path) - log0
        per_min = log_bytes * 60.0 / elapsed
        print("\nflood: %d uploads of %d succeeded in %.1f s; flooders made %d connections; "
              "node log %d bytes (%.0f bytes per minute)"
              % (ok, UPLOADS, elapsed, made, log_bytes, per_min), file=sys.stderr)
        self.assertGreaterEqual(ok, UPLOADS - 1, "failures:\n" + "\n".join(failures) +
                                "\nnode log tail:\n" + node.log()[-3000:])
        self.assertLess(per_min, LOG_BUDGET_PER_MIN, node.log()[-3000:])
        self.assertGreater(made, 300)  # it was a flood
        self.assertIn("handshake pool full", node.log())  # the flood did reach the node


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--flood":
        flood(int(sys.argv[2]), sys.argv[3].split(","), float(sys.argv[4]), int(sys.argv[5]))
        sys.exit(0)
    unittest.main()
