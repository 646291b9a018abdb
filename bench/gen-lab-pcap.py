#!/usr/bin/python3
"""Writes a pcap of S subscribers x F flows, one frame per flow, for Pktgen-DPDK's and TRex's
pcap modes (docs/lab.md). The flows are ephemera-loadgen's (bench/loadgen/flows.hpp): the same
addresses, ports and protocols, in the same pseudo-random order, so a lab run with a hardware
generator and a memif run with the loadgen drive the same sessions.

    subscriber s    100.64.1.0 + s                 flow f = s * F + j
    source port     1024 + (25033 * j + offset(s)) mod 64512   (unique per subscriber)
    server          198.18.16.0 + hash(f) mod SERVERS, port 1024 + hash'(f) mod 64512
    protocol        --proto udp|tcp|mix (mix: even j UDP, odd j TCP)

Frames go to the NAT's inside MAC (--dst-mac) from the generator's (--src-mac), TTL 64, correct
IPv4 and L4 checksums; the payload carries the flow id at the loadgen's stamp offset (42) so a
capture can be matched to flows. TCP frames carry SYN (--tcp-flags to change).

Needs Debian's python3-scapy: run with /usr/bin/python3. Example:
    /usr/bin/python3 bench/gen-lab-pcap.py -S 1024 -F 64 --frame-size 64 \\
        --dst-mac 02:45:50:00:00:01 -o /tmp/flows-64k.pcap
"""

import argparse
import struct
import sys

try:
    from scapy.all import IP, TCP, UDP, Ether, PcapWriter, Raw  # noqa: F401
except ImportError:
    sys.exit("gen-lab-pcap: needs scapy (apt-get install python3-scapy; run /usr/bin/python3)")

SUBSCRIBER_BASE = (100 << 24) | (64 << 16) | (1 << 8)
SERVER_BASE = (198 << 24) | (18 << 16) | (16 << 8)
PORT_BASE = 1024
PORT_SPAN = 65536 - PORT_BASE
PORT_STEP = 25033
M32 = 0xFFFFFFFF


def mix32(h, seed):
    """The murmur3 finaliser with a seed, as in flows.hpp."""
    h = (h ^ seed) & M32
    h ^= h >> 16
    h = (h * 0x85EBCA6B) & M32
    h ^= h >> 13
    h = (h * 0xC2B2AE35) & M32
    h ^= h >> 16
    return h


def gcd(a, b):
    while b:
        a, b = b, a % b
    return a


def walk(n):
    """FlowWalk: i -> (i + stride) mod n, stride near 0.618 n and coprime to n."""
    if n <= 2:
        stride = 1
    else:
        stride = int(n * 0.6180339887) | 1
        while gcd(stride, n) != 1:
            stride += 2
        stride %= n
    pos = 0
    for _ in range(n):
        yield pos
        pos += stride
        if pos >= n:
            pos -= n


def tuple_of(flow, per_sub, servers, mix):
    sub, j = divmod(flow, per_sub)
    offset = mix32(sub, 0x5EED0001) % PORT_SPAN
    sport = PORT_BASE + (PORT_STEP * (j % PORT_SPAN) + offset) % PORT_SPAN
    h = mix32(flow, 0x5EED0002)
    server = SERVER_BASE + h % servers
    dport = PORT_BASE + (h >> 8) % PORT_SPAN
    proto = {"udp": 17, "tcp": 6}.get(mix) or (17 if j % 2 == 0 else 6)
    return SUBSCRIBER_BASE + sub, sport, server, dport, proto


def csum(data):
    if len(data) % 2:
        data += b"\0"
    s = sum(struct.unpack("!%dH" % (len(data) // 2), data))
    while s >> 16:
        s = (s & 0xFFFF) + (s >> 16)
    return s


def main():
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("-S", "--subscribers", type=int, default=1024)
    ap.add_argument("-F", "--flows", type=int, default=64, help="flows per subscriber")
    ap.add_argument("--servers", type=int, default=256)
    ap.add_argument("--proto", choices=["udp", "tcp", "mix"], default="mix")
    ap.add_argument("--frame-size", type=int, default=64, help="with FCS, 64..1518")
    ap.add_argument("--dst-mac", default="02:45:50:00:00:01", help="the NAT's inside MAC")
    ap.add_argument("--src-mac", default="02:4c:47:00:00:01", help="the generator's MAC")
    ap.add_argument("--tcp-flags", default="S", help="scapy TCP flags for TCP frames")
    ap.add_argument("--order", choices=["walk", "seq"], default="walk",
                    help="walk: the loadgen's pseudo-random flow order; seq: flow 0, 1, ...")
    ap.add_argument("-o", "--out", required=True)
    args = ap.parse_args()
    if not 64 <= args.frame_size <= 1518:
        ap.error("--frame-size must be 64..1518")
    n = args.subscribers * args.flows
    if n <= 0 or args.subscribers > (1 << 22) - 512 or args.flows > PORT_SPAN:
        ap.error("need 1 <= subscribers <= 4M-512 and 1 <= flows <= 64512")
    length = args.frame_size - 4  # pcaps carry no FCS

    # Templates from scapy (lengths, constant fields); addresses, ports and checksums are
    # patched per frame below, which is some 50 times faster than building each in scapy.
    templates = {}
    for proto in (17, 6):
        l4 = UDP(sport=1, dport=1) if proto == 17 else TCP(sport=1, dport=1,
                                                          flags=args.tcp_flags, window=65535)
        pkt = Ether(dst=args.dst_mac, src=args.src_mac) / IP(src="0.0.0.0", dst="0.0.0.0",
                                                             ttl=64, id=0) / l4
        pkt = pkt / Raw(b"\0" * max(0, length - len(pkt)))
        templates[proto] = bytearray(bytes(pkt))
    for t in templates.values():
        if len(t) != length:
            ap.error("--frame-size %d is too small for the headers" % args.frame_size)

    order = walk(n) if args.order == "walk" else range(n)
    writer = PcapWriter(args.out, linktype=1, sync=False)
    try:
        for flow in order:
            src, sport, dst, dport, proto = tuple_of(flow, args.flows, args.servers, args.proto)
            f = bytearray(templates[proto])
            struct.pack_into("!II", f, 26, src, dst)
            struct.pack_into("!H", f, 24, 0)
            struct.pack_into("!H", f, 24, 0xFFFF - csum(bytes(f[14:34])))
            struct.pack_into("!HH", f, 34, sport, dport)
            struct.pack_into("!I", f, 42, flow)  # the loadgen's flow-id offset
            csum_at = 40 if proto == 17 else 50
            struct.pack_into("!H", f, csum_at, 0)
            pseudo = struct.pack("!IIBBH", src, dst, 0, proto, length - 34)
            c = 0xFFFF - csum(pseudo + bytes(f[34:]))
            if proto == 17 and c == 0:
                c = 0xFFFF
            struct.pack_into("!H", f, csum_at, c)
            writer.write(bytes(f))
    finally:
        writer.close()

    # Let scapy check the first frames independently: rebuilt with the checksums it computes
    # itself, each must come out byte for byte the same.
    from scapy.all import rdpcap
    for frame in rdpcap(args.out, count=min(n, 16)):
        original = bytes(frame)
        again = Ether(original)
        del again[IP].chksum
        del again[IP].payload.chksum
        if bytes(again) != original:
            sys.exit("gen-lab-pcap: scapy disagrees with a checksum in %s (bug)" % args.out)
    print("%s: %d frames of %d bytes (+4 FCS), %d subscribers x %d flows, %s, to %s" % (
        args.out, n, length, args.subscribers, args.flows, args.proto, args.dst_mac))


if __name__ == "__main__":
    main()
