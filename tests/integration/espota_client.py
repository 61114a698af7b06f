"""An ArduinoOTA uploader written from ../shared/PROTOCOL.md section 2, independently of
the C code, behaving like espota.py: UDP invitation with retries, the MD5 or SHA-256
(PBKDF2) challenge, the device connecting back to our TCP port, 1 KiB pieces each
answered by the device, then OK."""
import hashlib
import os
import socket


def upload(device_port, image, password=None, cmd=0, host_port=0, use_md5_hash=False,
           stop_after=None, timeout=10):
    """Returns (result, detail): result is "OK", "AUTH_FAILED", "ERR" (detail = the
    device's text) or "NO_ANSWER"."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", host_port))
    listener.listen(1)
    listener.settimeout(timeout)
    port = listener.getsockname()[1]
    md5 = hashlib.md5(image).hexdigest()
    udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    udp.settimeout(1)
    try:
        invitation = ("%d %d %d %s\n" % (cmd, port, len(image), md5)).encode()
        answer = None
        for _ in range(10):
            udp.sendto(invitation, ("127.0.0.1", device_port))
            try:
                answer = udp.recv(69).decode()
                break
            except socket.timeout:
                continue
        if answer is None:
            return "NO_ANSWER", ""
        if answer.startswith("ERR"):
            return "ERR", answer
        if answer.startswith("AUTH"):
            nonce = answer.split()[1]
            if len(nonce) == 32:
                h = hashlib.md5(password.encode()).hexdigest()
                cnonce = os.urandom(16).hex()
                resp = hashlib.md5(("%s:%s:%s" % (h, nonce, cnonce)).encode()).hexdigest()
            else:
                h = (hashlib.md5 if use_md5_hash else hashlib.sha256)(password.encode()).hexdigest()
                cnonce = os.urandom(32).hex()
                dk = hashlib.pbkdf2_hmac("sha256", h.encode(), ("%s:%s" % (nonce, cnonce)).encode(),
                                         10000, 32).hex()
                resp = hashlib.sha256(("%s:%s:%s" % (dk, nonce, cnonce)).encode()).hexdigest()
            udp.settimeout(timeout)
            udp.sendto(("200 %s %s\n" % (cnonce, resp)).encode(), ("127.0.0.1", device_port))
            answer = udp.recv(64).decode()
            if "OK" not in answer:
                return "AUTH_FAILED", answer
        elif answer != "OK":
            return "ERR", answer
        conn, _ = listener.accept()
        conn.settimeout(timeout)
        with conn:
            sent = 0
            last = b""
            while sent < len(image):
                piece = image[sent:sent + 1024]
                conn.sendall(piece)
                sent += len(piece)
                if stop_after is not None and sent >= stop_after:
                    return "STOPPED", ""
                last = conn.recv(32)  # the device answers every piece
            reply = last
            while b"OK" not in reply:
                more = conn.recv(64)
                if not more:
                    break
                reply += more
            counts = [int(x) for x in reply.split() if x.isdigit()]
            if b"OK" in reply and (not counts or max(counts) == len(image)):
                return "OK", reply.decode(errors="replace")
            return "ERR", reply.decode(errors="replace")
    finally:
        udp.close()
        listener.close()
