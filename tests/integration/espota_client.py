"""An ArduinoOTA uploader written from docs/protocol.md#arduino, independently of the
C code, behaving like espota.py (the third-party tool): UDP invitation with retries,
the MD5 or SHA-256 (PBKDF2) challenge, the device connecting back to our TCP port,
pieces of ARDUINO_PIECE bytes each answered by the device, then OK. Its numbers and
strings are those of include/ota/arduino_proto.h (read by protocol_consts), so that
they are written once."""
import hashlib
import os
import socket

import protocol_consts as P


def upload(device_port, image, password=None, cmd=P.ARDUINO_CMD_FLASH, host_port=0, use_md5_hash=False,
           stop_after=None, timeout=10, device="127.0.0.1", local="127.0.0.1"):
    """Returns (result, detail): result is "OK", "AUTH_FAILED", "ERR" (detail = the
    device's text) or "NO_ANSWER". device: the node's address; local: ours, where the
    device connects back to."""
    listener = socket.socket()
    listener.bind((local, host_port))
    listener.listen(1)
    listener.settimeout(timeout)
    port = listener.getsockname()[1]
    md5 = hashlib.md5(image).hexdigest()
    udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    udp.settimeout(1)
    try:
        invitation = ("%d %d %d %s\n" % (cmd, port, len(image), md5)).encode()
        answer = None
        for _ in range(P.ARDUINO_INVITATION_TRIES):
            udp.sendto(invitation, (device, device_port))
            try:
                answer = udp.recv(P.ARDUINO_ANSWER_MAX).decode()
                break
            except socket.timeout:
                continue
        if answer is None:
            return "NO_ANSWER", ""
        sep = P.ARDUINO_SEPARATOR
        if answer.startswith(P.ARDUINO_REPLY_ERR):
            return "ERR", answer
        if answer.startswith(P.ARDUINO_REPLY_AUTH.strip()):
            nonce = answer.split()[1]
            if len(nonce) == P.MD5_HEX_LEN:
                h = hashlib.md5(password.encode()).hexdigest()
                cnonce = os.urandom(P.MD5_HEX_LEN // 2).hex()
                resp = hashlib.md5(sep.join((h, nonce, cnonce)).encode()).hexdigest()
            else:
                h = (hashlib.md5 if use_md5_hash else hashlib.sha256)(password.encode()).hexdigest()
                cnonce = os.urandom(P.SHA256_HEX_LEN // 2).hex()
                dk = hashlib.pbkdf2_hmac("sha256", h.encode(), (nonce + sep + cnonce).encode(),
                                         P.ARDUINO_PBKDF2_ITERATIONS, P.ARDUINO_PBKDF2_LEN).hex()
                resp = hashlib.sha256(sep.join((dk, nonce, cnonce)).encode()).hexdigest()
            udp.settimeout(timeout)
            udp.sendto(("%d %s %s\n" % (P.ARDUINO_CMD_AUTH, cnonce, resp)).encode(),
                       (device, device_port))
            answer = udp.recv(64).decode()
            if P.ARDUINO_REPLY_OK not in answer:
                return "AUTH_FAILED", answer
        elif answer != P.ARDUINO_REPLY_OK:
            return "ERR", answer
        conn, _ = listener.accept()
        conn.settimeout(timeout)
        with conn:
            sent = 0
            last = b""
            while sent < len(image):
                piece = image[sent:sent + P.ARDUINO_PIECE]
                conn.sendall(piece)
                sent += len(piece)
                if stop_after is not None and sent >= stop_after:
                    return "STOPPED", ""
                last = conn.recv(32)  # the device answers every piece
            reply = last
            ok = P.ARDUINO_REPLY_OK.encode()
            while ok not in reply:
                more = conn.recv(64)
                if not more:
                    break
                reply += more
            counts = [int(x) for x in reply.split() if x.isdigit()]
            if ok in reply and (not counts or max(counts) == len(image)):
                return "OK", reply.decode(errors="replace")
            return "ERR", reply.decode(errors="replace")
    finally:
        udp.close()
        listener.close()
