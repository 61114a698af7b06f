"""A real web server for the pull-update tests: Debian's nginx, started on a free
loopback port with a configuration of the test's own (its own prefix, logs and temp
folders, nothing of the system's), serving a folder as static files. The access log
has one line per request: method, URI, status, body bytes sent, the Range asked and
the user agent (the pull client names its node there)."""
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time

from nodelib import free_port

NGINX = shutil.which("nginx") or ("/usr/sbin/nginx" if os.path.exists("/usr/sbin/nginx")
                                  else None)

CONF = """
{user}
worker_processes 1;
error_log {dir}/error.log warn;
pid {dir}/nginx.pid;
events {{ worker_connections 512; }}
http {{
    log_format pull '$request_method $uri $status $body_bytes_sent "$http_range" '
                    '"$http_user_agent"';
    access_log {dir}/access.log pull;
    client_body_temp_path {dir}/body;
    proxy_temp_path {dir}/proxy;
    fastcgi_temp_path {dir}/fastcgi;
    uwsgi_temp_path {dir}/uwsgi;
    scgi_temp_path {dir}/scgi;
    types {{ application/json json; application/octet-stream bin sig; }}
    default_type application/octet-stream;
    sendfile on;
    keepalive_timeout 5;
    server {{
        listen 127.0.0.1:{port}{ssl};
        {certs}
        root {root};
        location / {{ {rate} }}
    }}
}}
"""


class Nginx:
    """nginx serving root on 127.0.0.1:port; rate (e.g. "400k") caps each response.
    tls=True: https with a certificate for "localhost" from a CA made here by openssl
    (self.ca_file; self.other_ca_file is a CA that did not sign it)."""

    def __init__(self, tc, root, rate=None, port=None, tls=False):
        if NGINX is None:
            tc.skipTest("nginx is not installed (Debian package nginx-light)")
        self.tc = tc
        self.root = root
        self.dir = tempfile.mkdtemp(prefix="ota-nginx-")
        self.port = port or free_port()
        self.rate = rate
        self.proc = None
        self.tls = tls
        certs = ""
        if tls:
            self.ca_file, self.other_ca_file = self._make_certs()
            certs = "ssl_certificate %s/server.crt; ssl_certificate_key %s/server.key;" % (
                self.dir, self.dir)
        self.conf = os.path.join(self.dir, "nginx.conf")
        with open(self.conf, "w") as f:
            # as root the workers would run as nobody, who cannot read the tests'
            # private temp folders
            f.write(CONF.format(user="user root;" if os.geteuid() == 0 else "",
                                dir=self.dir, port=self.port, root=root,
                                ssl=" ssl" if tls else "", certs=certs,
                                rate=("limit_rate %s;" % rate) if rate else ""))
        tc.addCleanup(self.cleanup)
        self.start()

    @property
    def url(self):
        if self.tls:
            return "https://localhost:%d" % self.port
        return "http://127.0.0.1:%d" % self.port

    def _make_certs(self):
        if shutil.which("openssl") is None:
            self.tc.skipTest("openssl is not installed")
        d = self.dir
        ec = "-newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes"
        steps = [
            "openssl req -x509 %s -keyout ca.key -out ca.crt -days 2 -subj /CN=ota-test-ca" % ec,
            "openssl req -x509 %s -keyout other.key -out other.crt -days 2 -subj /CN=other" % ec,
            "openssl req %s -keyout server.key -out server.csr -subj /CN=localhost" % ec,
            "printf 'subjectAltName=DNS:localhost\\n' > server.ext",
            "openssl x509 -req -in server.csr -CA ca.crt -CAkey ca.key -CAcreateserial -days 2 "
            "-extfile server.ext -out server.crt"]
        for step in steps:
            p = subprocess.run(step, shell=True, cwd=d, capture_output=True, text=True)
            if p.returncode != 0:
                self.tc.fail("%s: %s" % (step, p.stderr))
        return os.path.join(d, "ca.crt"), os.path.join(d, "other.crt")

    def start(self):
        if self.proc is not None and self.proc.stderr is not None:
            self.proc.stderr.close()  # of the run before a restart
        self.proc = subprocess.Popen([NGINX, "-c", self.conf, "-p", self.dir, "-g",
                                      "daemon off;"], stdout=subprocess.DEVNULL,
                                     stderr=subprocess.PIPE, start_new_session=True)
        end = time.monotonic() + 15
        while time.monotonic() < end:
            if self.proc.poll() is not None:
                self.tc.fail("nginx exited: %s" % self.proc.stderr.read().decode())
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.5).close()
                return
            except OSError:
                time.sleep(0.05)
        self.tc.fail("nginx did not listen on port %d" % self.port)

    def kill(self):
        """The server dies mid-response (SIGTERM: nginx's fast shutdown, which still
        logs the responses it cut short)."""
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(timeout=10)

    def entries(self):
        """[(method, uri, status, bytes, range, user_agent)] from the access log."""
        out = []
        try:
            with open(os.path.join(self.dir, "access.log")) as f:
                for line in f:
                    head, _, rest = line.partition(' "')
                    m, uri, status, sent = head.split()
                    rng, _, ua = rest.rstrip("\n").partition('" "')
                    out.append((m, uri, int(status), int(sent), rng, ua.rstrip('"')))
        except FileNotFoundError:
            pass
        return out

    def image_bytes(self, uri):
        return sum(e[3] for e in self.entries() if e[1] == uri)

    def cleanup(self):
        self.kill()
        if self.proc is not None and self.proc.stderr is not None:
            self.proc.stderr.close()
        shutil.rmtree(self.dir, ignore_errors=True)
