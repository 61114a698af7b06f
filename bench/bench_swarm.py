#!/usr/bin/env python3
"""Pull updates at fleet scale (make bench): one nginx on loopback serves what
`ota publish` wrote (a 1 MiB release); bench/swarm.c runs N node contexts in one
process, each pulling it into its own RAM slot. Prints the time for one node and for N
(side by side in this run), their ratio, and the bytes nginx served (from its access
log) against N times the image.

    bench_swarm.py BIN_DIR [NODES]      (NODES default 500, or $SWARM_NODES)
"""
import os
import resource
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from bench_upload import free_port  # noqa: E402

CONF = """
{user}
worker_processes 1;
worker_rlimit_nofile 8192;
error_log {d}/error.log warn;
pid {d}/nginx.pid;
events {{ worker_connections 4096; }}
http {{
    log_format b '$uri $status $body_bytes_sent';
    access_log {d}/access.log b;
    client_body_temp_path {d}/body; proxy_temp_path {d}/proxy;
    fastcgi_temp_path {d}/fcgi; uwsgi_temp_path {d}/uwsgi; scgi_temp_path {d}/scgi;
    default_type application/octet-stream;
    sendfile on;
    server {{ listen 127.0.0.1:{port} backlog=4096; root {root}; }}
}}
"""


def main():
    bin_dir = sys.argv[1] if len(sys.argv) > 1 else "build-bench/bin"
    nodes = int(sys.argv[2] if len(sys.argv) > 2 else os.environ.get("SWARM_NODES", "500"))
    nginx = shutil.which("nginx") or "/usr/sbin/nginx"
    swarm = os.path.join(bin_dir, "swarm")
    if not os.path.exists(nginx) or not os.path.exists(swarm):
        print("bench swarm: skipped (needs nginx and %s)" % swarm)
        return 0
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = min(hard, max(soft, 4 * nodes + 256))
    resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))
    work = tempfile.mkdtemp(prefix="ota-swarm-")
    www = os.path.join(work, "www")
    image = os.path.join(work, "image.bin")
    with open(image, "wb") as f:
        f.write(os.urandom(1 << 20))
    env = dict(os.environ, XDG_CACHE_HOME=os.path.join(work, "cache"))
    p = subprocess.run([os.path.join(bin_dir, "ota"), "publish", "--out", www, "--version",
                        "2.0.0", image], capture_output=True, text=True, env=env)
    if p.returncode != 0:
        print("bench swarm: ota publish failed: %s%s" % (p.stdout, p.stderr))
        shutil.rmtree(work, ignore_errors=True)
        return 1
    port = free_port()
    conf = os.path.join(work, "nginx.conf")
    with open(conf, "w") as f:
        f.write(CONF.format(user="user root;" if os.geteuid() == 0 else "", d=work, port=port,
                            root=www))
    srv = subprocess.Popen([nginx, "-c", conf, "-p", work, "-g", "daemon off;"],
                           start_new_session=True)
    try:
        for _ in range(200):
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                break
            except OSError:
                time.sleep(0.05)
        url = "http://127.0.0.1:%d/manifest.json" % port
        results = {}
        for n in (1, nodes):
            log = os.path.join(work, "access.log")
            open(log, "w").close()
            os.kill(srv.pid, signal.SIGUSR1)  # reopen the emptied log
            time.sleep(0.2)
            r = subprocess.run([swarm, url, str(n)], capture_output=True, text=True,
                               timeout=900)
            line = r.stdout.strip()
            fields = dict(kv.split("=") for kv in line.split()[1:]) if line else {}
            time.sleep(0.3)
            served = sum(int(x.split()[2]) for x in open(log) if x.split()[0].endswith(".bin"))
            results[n] = (float(fields.get("seconds", "nan")), int(fields.get("updated", 0)),
                          served)
            print("swarm %4d node(s): %.3f s, %d updated, nginx served %.1f MiB of images"
                  % (n, results[n][0], results[n][1], served / 1048576.0))
            if r.returncode != 0:
                print("bench swarm: %d of %d nodes did not update: %s" % (n - results[n][1], n,
                                                                         r.stderr[-2000:]))
        t1, tn = results[1][0], results[nodes][0]
        served = results[nodes][2]
        print("bench swarm%d_1mib: %.1f (time for %d nodes / time for 1; goal: report, "
              "bounded by nginx and one core)" % (nodes, tn / t1 if t1 > 0 else float("nan"),
                                                 nodes))
        print("bench swarm%d_bytes: %.3f (nginx bytes served / (%d x image); goal 1.0)"
              % (nodes, served / float(nodes << 20), nodes))
        print("swarm: %d nodes took the release in %.2f s, %.0f MiB/s through one process "
              "(every byte hashed twice, MD5 and SHA-256, and copied into its node's slot)"
              % (nodes, tn, served / 1048576.0 / tn if tn > 0 else 0.0))
    finally:
        os.killpg(srv.pid, signal.SIGTERM)
        srv.wait(timeout=10)
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
