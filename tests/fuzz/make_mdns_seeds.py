#!/usr/bin/env python3
"""Writes the seed corpus of fuzz_mdns (tests/fuzz/corpus/mdns/): mDNS datagrams as
browsers, resolvers and other responders send them to a node named "x" with the
services _ota._tcp and _arduino._tcp (the responder of fuzz_mdns.c; its addresses
are 192.168.1.50 and fe80::1), so the fuzzer starts from inputs that reach every
branch of the responder, plus hostile ones: truncation, compression loops, forward
pointers, extended label types, over-long names and counts far beyond the data.
Run it again after changing the responder's names."""
import os
import struct
import sys

A, PTR, TXT, AAAA, SRV, ANY = 1, 12, 16, 28, 33, 255
IN, TOP = 1, 0x8000
QR_AA = 0x8400


class Msg:
    """A DNS message with RFC 1035 name compression (whole suffixes, backwards)."""

    def __init__(self, ident=0, flags=0):
        self.ident, self.flags = ident, flags
        self.counts = [0, 0, 0, 0]
        self.body = b""
        self.names = {}

    def off(self):
        return 12 + len(self.body)

    def name(self, dotted, compress=True):
        labels = [l for l in dotted.split(".") if l]
        out = b""
        for i in range(len(labels)):
            suffix = ".".join(labels[i:]).lower()
            if compress and suffix in self.names:
                self.body += out + struct.pack(">H", 0xC000 | self.names[suffix])
                return
            if self.off() + len(out) < 0x3FFF:
                self.names.setdefault(suffix, self.off() + len(out))
            out += bytes([len(labels[i])]) + labels[i].encode()
        self.body += out + b"\x00"

    def question(self, dotted, qtype, qclass=IN):
        self.name(dotted)
        self.body += struct.pack(">HH", qtype, qclass)
        self.counts[0] += 1

    def record(self, section, dotted, rtype, rclass, ttl, rdata=b"", rname=None, srv=None):
        """rdata as bytes, or rname (a name, compressed: PTR), or srv=(port, target)."""
        self.name(dotted)
        self.body += struct.pack(">HHI", rtype, rclass, ttl)
        at = len(self.body)
        self.body += b"\x00\x00"
        if rname is not None:
            self.name(rname)
        elif srv is not None:
            self.body += struct.pack(">HHH", 0, 0, srv[0])
            self.name(srv[1], compress=False)
        else:
            self.body += rdata
        n = len(self.body) - at - 2
        self.body = self.body[:at] + struct.pack(">H", n) + self.body[at + 2:]
        self.counts[1 + section] += 1

    def bytes(self):
        return struct.pack(">6H", self.ident, self.flags, *self.counts) + self.body


AN, NS, AR = 0, 1, 2
OUR_V4 = bytes([192, 168, 1, 50])
OUR_V6 = bytes([0xFE, 0x80] + [0] * 13 + [1])
TXT_OTA = b"".join(bytes([len(s)]) + s for s in (b"version=2.0", b"auth=sha256", b"board=esp32dev"))


def query(*questions, ident=0, flags=0):
    m = Msg(ident, flags)
    for q in questions:
        m.question(*q)
    return m


def probe(v4=None, v6=None, port=3232, txt=TXT_OTA, host="x"):
    m = query((host + ".local", ANY, IN | TOP), (host + "._ota._tcp.local", ANY, IN | TOP))
    if v4 is not None:
        m.record(NS, host + ".local", A, IN, 120, v4)
    if v6 is not None:
        m.record(NS, host + ".local", AAAA, IN, 120, v6)
    m.record(NS, host + "._ota._tcp.local", SRV, IN, 120, srv=(port, host + ".local"))
    m.record(NS, host + "._ota._tcp.local", TXT, IN, 4500, txt)
    return m.bytes()


def response(host, v4, port=3232, ttl=120, txt=TXT_OTA):
    m = Msg(0, QR_AA)
    m.record(AN, "_ota._tcp.local", PTR, IN, 4500 if ttl else 0, rname=host + "._ota._tcp.local")
    m.record(AR, host + "._ota._tcp.local", SRV, IN | TOP, ttl, srv=(port, host + ".local"))
    m.record(AR, host + "._ota._tcp.local", TXT, IN | TOP, 4500 if ttl else 0, txt)
    m.record(AR, host + ".local", A, IN | TOP, ttl, v4)
    m.record(AR, host + ".local", AAAA, IN | TOP, ttl,
             bytes([0xFE, 0x80] + [0] * 6 + [0x02, 0x11, 0x22, 0xFF, 0xFE, 0x33, 0x44, 0x55]))
    return m.bytes()


def header(qd, an=0, ns=0, ar=0, flags=0):
    return struct.pack(">6H", 0, flags, qd, an, ns, ar)


def label(n, c=b"a"):
    return bytes([n]) + c * n


def ptr(off):
    return struct.pack(">H", 0xC000 | off)


def main(out_dir):
    os.makedirs(out_dir, exist_ok=True)
    seeds = {}
    # queries as browsers and resolvers send them
    seeds["query_a"] = query(("x.local", A)).bytes()
    seeds["query_aaaa_qu"] = query(("x.local", AAAA, IN | TOP)).bytes()
    seeds["query_a_aaaa"] = query(("x.local", A), ("x.local", AAAA)).bytes()
    seeds["query_any_class_any"] = query(("X.LOCAL", ANY, 255)).bytes()
    seeds["query_ptr_ota"] = query(("_ota._tcp.local", PTR)).bytes()
    seeds["query_ptr_arduino_qu"] = query(("_arduino._tcp.local", PTR, IN | TOP)).bytes()
    seeds["query_services"] = query(("_services._dns-sd._udp.local", PTR)).bytes()
    seeds["query_srv_txt"] = query(("x._ota._tcp.local", SRV), ("x._ota._tcp.local", TXT)).bytes()
    seeds["query_any_instance"] = query(("x._arduino._tcp.local", ANY, IN | TOP)).bytes()
    seeds["query_other_host"] = query(("livingroom.local", A), ("_http._tcp.local", PTR)).bytes()
    seeds["legacy_query"] = query(("x.local", A), ident=0x4A7B, flags=0x0100).bytes()
    m = query(("_ota._tcp.local", PTR), ("_arduino._tcp.local", PTR))
    m.record(AN, "_ota._tcp.local", PTR, IN, 4500, rname="x._ota._tcp.local")
    m.record(AN, "_arduino._tcp.local", PTR, IN, 1000, rname="x._arduino._tcp.local")
    seeds["query_known_answers"] = m.bytes()
    m = query(("x._ota._tcp.local", ANY), flags=0x0200)  # TC: more known answers follow
    m.record(AN, "x._ota._tcp.local", SRV, IN, 120, srv=(3232, "x.local"))
    m.record(AN, "x._ota._tcp.local", TXT, IN, 4500, TXT_OTA)
    seeds["query_tc_known_srv_txt"] = m.bytes()
    m = query(("_services._dns-sd._udp.local", PTR))
    m.record(AN, "_services._dns-sd._udp.local", PTR, IN, 4500, rname="_ota._tcp.local")
    seeds["query_services_known"] = m.bytes()
    # probes: another host wants our names (tie-break), and our own probe looped back
    seeds["probe_other_loses"] = probe(v4=bytes([192, 168, 1, 9]))
    seeds["probe_other_wins"] = probe(v4=bytes([192, 168, 1, 200]))
    seeds["probe_own"] = probe(v4=OUR_V4, v6=OUR_V6)
    seeds["probe_other_port"] = probe(v4=OUR_V4, v6=OUR_V6, port=8266)
    seeds["probe_livingroom"] = probe(v4=bytes([10, 0, 0, 5]), host="livingroom")
    # responses: a stranger's service, conflicts for our names, our own, goodbyes
    seeds["response_avahi"] = response("livingroom", bytes([192, 168, 1, 60]))
    seeds["response_conflict_a"] = response("x", bytes([192, 168, 1, 99]))
    seeds["response_conflict_srv"] = response("x", OUR_V4, port=8266)
    seeds["response_own"] = response("x", OUR_V4)
    seeds["response_goodbye"] = response("x", bytes([192, 168, 1, 99]), ttl=0)
    m = Msg(0, QR_AA)
    m.record(AN, "x._ota._tcp.local", TXT, IN | TOP, 4500, b"\x0bversion=1.0")
    seeds["response_conflict_txt"] = m.bytes()
    m = Msg(0x1234, 0x2800)  # opcode UPDATE: ignored
    m.question("x.local", A)
    seeds["opcode_update"] = m.bytes()
    # many questions: a legacy answer that echoes them cannot hold them all
    m = query(*[("h%d.x.local" % i, A) for i in range(80)], ("x.local", A), ident=7)
    seeds["many_questions"] = m.bytes()

    # hostile
    full = response("x", bytes([192, 168, 1, 99]))
    seeds["truncated_in_record"] = full[:len(full) // 2]
    seeds["truncated_in_header"] = full[:7]
    seeds["empty"] = b""
    seeds["header_only_claims"] = header(1, 1, 1, 1)
    seeds["self_loop"] = header(1) + ptr(12) + struct.pack(">HH", A, IN)
    seeds["mutual_loop"] = header(2) + ptr(18) + struct.pack(">HH", A, IN) + ptr(12) \
        + struct.pack(">HH", A, IN)
    seeds["loop_through_label"] = header(1) + label(1, b"x") + ptr(12) + struct.pack(">HH", A, IN)
    seeds["forward_pointer"] = header(1) + ptr(18) + struct.pack(">HH", A, IN) \
        + bytes([1]) + b"x" + bytes([5]) + b"local\x00"
    chain = header(1) + bytes([1]) + b"x" + bytes([5]) + b"local\x00" + ptr(12)
    for _ in range(200):
        chain += ptr(len(chain) - 2)
    seeds["pointer_chain"] = chain  # valid: every pointer goes back
    chained = query(("x.local", A)).bytes()
    for i in range(200):  # each question's name points at the one before it
        chained += ptr(12 if i == 0 else len(chained) - 4 - 2) + struct.pack(">HH", AAAA, IN)
    seeds["pointer_chain_questions"] = header(201) + chained[12:]
    seeds["label_type_0x40"] = header(1) + b"\x41" + b"a" * 10 + b"\x00" + struct.pack(">HH", A, IN)
    seeds["label_type_0x80"] = header(1) + label(1, b"x") + b"\x80\x01" + b"\x00" \
        + struct.pack(">HH", A, IN)
    long_name = header(1)
    prev = None
    for i in range(5):  # 5 labels of 63 chained by pointers: 321 bytes expanded
        at = len(long_name)
        long_name += label(63, bytes([ord("a") + i])) + (ptr(prev) if prev else b"\x00")
        prev = at
    seeds["name_too_long"] = long_name + ptr(prev) + struct.pack(">HH", A, IN)
    seeds["huge_counts"] = header(0xFFFF, 0xFFFF, 0xFFFF, 0xFFFF) \
        + query(("x.local", A)).bytes()[12:]
    seeds["claims_1000_questions"] = header(1000) + query(("x.local", A), ("x.local", AAAA),
                                                          ("_ota._tcp.local", PTR)).bytes()[12:]
    seeds["claims_1000_answers"] = header(0, 1000, flags=QR_AA) \
        + response("x", bytes([192, 168, 1, 99]))[12:]
    seeds["rdlength_past_end"] = header(0, 1, flags=QR_AA) + b"\x01x\x05local\x00" \
        + struct.pack(">HHIH", A, IN | TOP, 120, 400) + OUR_V4
    seeds["srv_short_rdata"] = header(0, 1, flags=QR_AA) + b"\x01x\x04_ota\x04_tcp\x05local\x00" \
        + struct.pack(">HHIH", SRV, IN | TOP, 120, 3) + b"\x00\x00\x0c"
    for name, data in seeds.items():
        with open(os.path.join(out_dir, name), "wb") as f:
            f.write(data)


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(__file__), "corpus", "mdns"))
