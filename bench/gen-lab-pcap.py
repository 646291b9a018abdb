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

Standard library only; when Debian's python3-scapy is there (run with /usr/bin/python3) scapy
re-checks the first frames. bench/pktgen_run.py imports frames() and write_pcap(). Example:
    /usr/bin/python3 bench/gen-lab-pcap.py -S 1024 -F 64 --frame-size 64 \\
        --dst-mac 02:45:50:00:00:01 -o /tmp/flows-64k.pcap
"""

import argparse
import struct
import sys

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


TCP_FLAG_BITS = {"F": 0x01, "S": 0x02, "R": 0x04, "P": 0x08, "A": 0x10, "U": 0x20, "E": 0x40,
                 "C": 0x80}


def mac_bytes(mac):
    return bytes(int(x, 16) for x in mac.split(":"))


def template(proto, length, dst_mac, src_mac, tcp_flags):
    """A frame of `length` bytes (no FCS): Ethernet, IPv4 (TTL 64, id 0, no options), UDP or
    TCP (window 65535, the given flags), zero payload; addresses, ports and checksums zero."""
    l4 = struct.pack("!HHHH", 0, 0, length - 34, 0) if proto == 17 else \
        struct.pack("!HHIIBBHHH", 0, 0, 0, 0, 5 << 4, tcp_flags, 65535, 0, 0)
    head = mac_bytes(dst_mac) + mac_bytes(src_mac) + b"\x08\x00" + \
        struct.pack("!BBHHHBBHII", 0x45, 0, length - 14, 0, 0, 64, proto, 0, 0, 0) + l4
    if len(head) > length:
        raise ValueError("frame of %d bytes is too small for the headers" % (length + 4))
    return bytearray(head + b"\0" * (length - len(head)))


def templates_for(frame_size=64, dst_mac="02:45:50:00:00:01", src_mac="02:4c:47:00:00:01",
                  tcp_flags="S"):
    """{17: UDP template, 6: TCP template} for frame() (frame_size with FCS)."""
    flags = 0
    for c in tcp_flags:
        flags |= TCP_FLAG_BITS[c]
    return {p: template(p, frame_size - 4, dst_mac, src_mac, flags) for p in (17, 6)}


def frame(flow, flows, servers, proto, templates):
    """Flow `flow`'s frame: its tuple_of() patched into the template, checksums computed."""
    src, sport, dst, dport, p = tuple_of(flow, flows, servers, proto)
    f = bytearray(templates[p])
    length = len(f)
    struct.pack_into("!II", f, 26, src, dst)
    struct.pack_into("!H", f, 24, 0xFFFF - csum(bytes(f[14:34])))
    struct.pack_into("!HH", f, 34, sport, dport)
    struct.pack_into("!I", f, 42, flow)  # the loadgen's flow-id offset
    csum_at = 40 if p == 17 else 50
    pseudo = struct.pack("!IIBBH", src, dst, 0, p, length - 34)
    c = 0xFFFF - csum(pseudo + bytes(f[34:]))
    if p == 17 and c == 0:
        c = 0xFFFF
    struct.pack_into("!H", f, csum_at, c)
    return bytes(f)


def frames(subscribers, flows, servers=256, proto="mix", frame_size=64,
           dst_mac="02:45:50:00:00:01", src_mac="02:4c:47:00:00:01", tcp_flags="S",
           order="walk"):
    """The S x F frames, one per flow, in the loadgen's order (walk) or flow order (seq)."""
    templates = templates_for(frame_size, dst_mac, src_mac, tcp_flags)
    n = subscribers * flows
    for flow in (walk(n) if order == "walk" else range(n)):
        yield frame(flow, flows, servers, proto, templates)


def write_pcap(path, data):
    """A classic pcap (microseconds, Ethernet) of the frames in `data`; returns their count."""
    n = 0
    with open(path, "wb") as out:
        out.write(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 1))
        for frame in data:
            out.write(struct.pack("<IIII", 0, 0, len(frame), len(frame)))
            out.write(frame)
            n += 1
    return n


def read_pcap(path, count=None):
    """The frames of a classic pcap (either byte order, micro- or nanoseconds)."""
    with open(path, "rb") as f:
        head = f.read(24)
        if len(head) < 24:
            return
        magic = struct.unpack("<I", head[:4])[0]
        if magic in (0xA1B2C3D4, 0xA1B23C4D):
            endian = "<"
        elif magic in (0xD4C3B2A1, 0x4D3CB2A1):
            endian = ">"
        else:
            raise ValueError("%s: not a pcap file" % path)
        n = 0
        while count is None or n < count:
            rec = f.read(16)
            if len(rec) < 16:
                return
            caplen = struct.unpack(endian + "IIII", rec)[2]
            data = f.read(caplen)
            if len(data) < caplen:
                return
            yield data
            n += 1


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
    for c in args.tcp_flags:
        if c not in TCP_FLAG_BITS:
            ap.error("--tcp-flags: letters of FSRPAUEC")
    try:
        template(17, length, args.dst_mac, args.src_mac, 0)
        template(6, length, args.dst_mac, args.src_mac, 0)
    except ValueError:
        ap.error("--frame-size %d is too small for the headers" % args.frame_size)
    write_pcap(args.out, frames(args.subscribers, args.flows, args.servers, args.proto,
                                args.frame_size, args.dst_mac, args.src_mac, args.tcp_flags,
                                args.order))

    # Let scapy check the first frames independently when it is there: rebuilt with the
    # checksums it computes itself, each must come out byte for byte the same.
    try:
        from scapy.all import IP, Ether
    except ImportError:
        IP = Ether = None
    for original in (read_pcap(args.out, min(n, 16)) if Ether else ()):
        again = Ether(original)
        del again[IP].chksum
        del again[IP].payload.chksum
        if bytes(again) != original:
            sys.exit("gen-lab-pcap: scapy disagrees with a checksum in %s (bug)" % args.out)
    print("%s: %d frames of %d bytes (+4 FCS), %d subscribers x %d flows, %s, to %s" % (
        args.out, n, length, args.subscribers, args.flows, args.proto, args.dst_mac))


if __name__ == "__main__":
    main()
