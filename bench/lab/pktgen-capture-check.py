#!/usr/bin/python3
"""Checks ephemera's translations in what Pktgen-DPDK captured (docs/lab.md, "What was run").

Pktgen's "enable N capture" / "disable N capture" writes the frames port N received to
pktgen-<date>-N.pcap in its working directory (a 4 MB buffer: about 58,000 64-byte frames).

  out CAPTURE -F F             frames ephemera sent out of its outside port (Pktgen port 1)
                               while Pktgen replayed a pcap of bench/gen-lab-pcap.py with F
                               flows per subscriber: each frame's flow id (bytes 42..45)
                               gives the flow's inside endpoint and server; --prefix P also
                               checks each against ephemera's own session table (its first
                               --subscribers subscribers)
  out CAPTURE --range --prefix P --subscribers N
                               the same for range mode (no flow id): ephemera's table only
  replies CAPTURE -o FILE      writes the servers' answers to an "out" capture (UDP back,
                               TCP SYN+ACK; flow id kept at 42) for Pktgen to replay from
                               port 1: pktgen ... -s 1:FILE
  in CAPTURE -F F              frames ephemera sent out of its inside port (Pktgen port 0)
                               while port 1 replayed those answers: each must be translated
                               back to its flow's inside endpoint

Every frame must also have the right MACs, TTL 63 (one hop), correct IPv4 and UDP/TCP
checksums. Prints a line of counts and errors; exit status 1 if any frame is wrong.
Needs Debian's python3-scapy: run with /usr/bin/python3.
"""

import argparse
import importlib.util
import ipaddress
import json
import os
import re
import struct
import subprocess
import sys

from scapy.all import IP, TCP, UDP, Ether, PcapWriter, RawPcapReader
from scapy.utils import checksum

HERE = os.path.dirname(os.path.abspath(__file__))


def load_gen():
    spec = importlib.util.spec_from_file_location(
        "gen_lab_pcap", os.path.join(HERE, "..", "gen-lab-pcap.py"))
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def session_table(args):
    """(proto, external ip, port, server ip, port) -> (inside ip, port), from ephemeractl."""
    table = {}
    line_re = re.compile(r"(\w+) ([\d.]+):(\d+) as ([\d.]+):(\d+) <-> ([\d.]+):(\d+)")
    first = ipaddress.IPv4Address(args.first_subscriber)
    for i in range(args.subscribers):
        out = subprocess.run([args.ephemeractl, "--prefix", args.prefix, "--json", "sessions",
                              "--subscriber", str(first + i)],
                             capture_output=True, text=True, check=True).stdout
        for line in json.loads(out):
            m = line_re.match(line)
            if m:
                p, isrc, isp, ext, ep, dst, dp = m.groups()
                table[(p, ext, int(ep), dst, int(dp))] = (isrc, int(isp))
    return table


def frame_errors(data, dst_mac, src_mac, err):
    e = Ether(data)
    if IP not in e or e[IP].proto not in (6, 17):
        err("not IPv4 UDP/TCP")
        return None
    ip = e[IP]
    if e.dst != dst_mac or e.src != src_mac:
        err("MACs %s <- %s" % (e.dst, e.src))
    if ip.ttl != 63:
        err("TTL %d" % ip.ttl)
    raw = bytes(ip)
    hl = ip.ihl * 4
    if checksum(raw[:hl]) != 0:
        err("IPv4 checksum")
    l4 = raw[hl:ip.len]
    if not (ip.proto == 17 and ip.payload.chksum == 0):
        pseudo = struct.pack("!4s4sBBH", raw[12:16], raw[16:20], 0, ip.proto, len(l4))
        if checksum(pseudo + l4) != 0:
            err("UDP/TCP checksum")
    return ip


def flow_tuple(gen, args, data):
    flow = struct.unpack("!I", data[42:46])[0]
    src, sport, dst, dport, proto = gen.tuple_of(flow, args.flows, args.servers, args.proto)
    return flow, (str(ipaddress.IPv4Address(src)), sport), \
        (str(ipaddress.IPv4Address(dst)), dport), {17: "udp", 6: "tcp"}[proto]


def check_out(args, gen, errors):
    err = lambda k: errors.__setitem__(k, errors.get(k, 0) + 1)  # noqa: E731
    table = session_table(args) if args.prefix else {}
    in_table = {v[0] for v in table.values()}
    pool = ipaddress.ip_network(args.pool)
    to_ext, to_in = {}, {}
    n = checked = 0
    for data, _ in RawPcapReader(args.capture):
        n += 1
        ip = frame_errors(data, args.gen_out_mac, args.nat_out_mac, err)
        if ip is None:
            continue
        proto = "udp" if ip.proto == 17 else "tcp"
        ext = (ip.src, ip.payload.sport)
        server = (ip.dst, ip.payload.dport)
        if ipaddress.ip_address(ip.src) not in pool:
            err("source not in the pool")
        inside = table.get((proto,) + ext + server)
        if inside is not None:
            checked += 1
        if not args.range:
            _, f_inside, f_server, f_proto = flow_tuple(gen, args, data)
            if server != f_server:
                err("destination changed")
            if proto != f_proto:
                err("protocol changed")
            if inside is not None and inside != f_inside:
                err("session table disagrees with the flow id")
            if inside is None and f_inside[0] in in_table:
                err("no session in ephemera's table")
            inside = f_inside
        elif inside is None:
            err("no session in ephemera's table")
            continue
        if to_ext.setdefault((proto,) + inside, ext) != ext:
            err("inside endpoint seen with two external endpoints")
        if to_in.setdefault((proto,) + ext, inside) != inside:
            err("external endpoint seen for two inside endpoints")
    print("%s: %d frames, %d flows, %d checked against ephemera's session table (%d sessions)"
          % (args.capture, n, len(to_ext), checked, len(table)))


def write_replies(args):
    w = PcapWriter(args.out, linktype=1, sync=False)
    n = 0
    for data, _ in RawPcapReader(args.capture):
        ip = Ether(data)[IP]
        l4 = ip.payload
        head = Ether(dst=args.nat_out_mac, src=args.gen_out_mac) / \
            IP(src=ip.dst, dst=ip.src, ttl=64)
        if ip.proto == 17:
            r = head / UDP(sport=l4.dport, dport=l4.sport) / bytes(l4.payload)
        else:
            r = head / TCP(sport=l4.dport, dport=l4.sport, flags="SA", seq=1000, window=65535) / \
                bytes(l4.payload)
        b = bytearray(bytes(r))
        b[42:46] = data[42:46]  # the flow id stays at 42 (in TCP that is the ACK field)
        r = Ether(bytes(b))
        del r[IP].chksum
        del r[IP].payload.chksum
        w.write(bytes(r))
        n += 1
    w.close()
    print("%s: %d replies" % (args.out, n))


def check_in(args, gen, errors):
    err = lambda k: errors.__setitem__(k, errors.get(k, 0) + 1)  # noqa: E731
    flows = set()
    n = 0
    for data, _ in RawPcapReader(args.capture):
        n += 1
        ip = frame_errors(data, args.gen_in_mac, args.nat_in_mac, err)
        if ip is None:
            continue
        flow, f_inside, f_server, f_proto = flow_tuple(gen, args, data)
        if (ip.dst, ip.payload.dport) != f_inside:
            err("not translated back to the inside endpoint")
        if (ip.src, ip.payload.sport) != f_server:
            err("source is not the server")
        if ("udp" if ip.proto == 17 else "tcp") != f_proto:
            err("protocol changed")
        flows.add(flow)
    print("%s: %d frames, %d flows" % (args.capture, n, len(flows)))


def main():
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("what", choices=["out", "replies", "in"])
    ap.add_argument("capture")
    ap.add_argument("-F", "--flows", type=int, default=64,
                    help="flows per subscriber, as given to gen-lab-pcap.py")
    ap.add_argument("--servers", type=int, default=256, help="as given to gen-lab-pcap.py")
    ap.add_argument("--proto", choices=["udp", "tcp", "mix"], default="mix",
                    help="as given to gen-lab-pcap.py")
    ap.add_argument("--range", action="store_true", help="range-mode capture: no flow id")
    ap.add_argument("--prefix", help="ephemera's --file-prefix: check its session table too")
    ap.add_argument("--subscribers", type=int, default=1024,
                    help="how many subscribers' sessions to read (from --first-subscriber)")
    ap.add_argument("--first-subscriber", default="100.64.1.0")
    ap.add_argument("--ephemeractl", default=os.path.join(
        HERE, "..", "..", "build", "tools", "ephemeractl", "ephemeractl"))
    ap.add_argument("--pool", default="198.19.0.0/24")
    ap.add_argument("--gen-in-mac", default="02:4c:47:00:00:01", help="Pktgen port 0")
    ap.add_argument("--gen-out-mac", default="02:4c:47:00:00:02", help="Pktgen port 1")
    ap.add_argument("--nat-in-mac", default="02:45:50:00:00:01", help="ephemera inside")
    ap.add_argument("--nat-out-mac", default="02:45:50:00:00:02", help="ephemera outside")
    ap.add_argument("-o", "--out", help="replies: the pcap to write")
    args = ap.parse_args()
    if args.what == "replies":
        if not args.out:
            ap.error("replies needs -o FILE")
        write_replies(args)
        return
    if args.range and not args.prefix:
        ap.error("--range needs --prefix (ephemera's session table is the only reference)")
    errors = {}
    gen = load_gen()
    if args.what == "out":
        check_out(args, gen, errors)
    else:
        check_in(args, gen, errors)
    print("errors: %s" % (", ".join("%s %d" % kv for kv in sorted(errors.items())) or "none"))
    sys.exit(1 if errors else 0)


if __name__ == "__main__":
    main()
