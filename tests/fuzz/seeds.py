#!/usr/bin/python3
"""Writes the translator fuzzer's seed corpus (tests/fuzz/corpus/translator): one file per
scenario, in the record format translator_fuzz.cpp reads. Each starts the way a NAT's day
starts (the next hop answers ARP) and then walks through one feature, so that the fuzzer's
first inputs already make sessions, answers, errors, hairpins and fragments.

    tests/fuzz/seeds.py [DIR]
"""
import sys
from pathlib import Path

# Record kinds (translator_fuzz.cpp): the op byte's low 4 bits.
INSIDE, OUTSIDE, RAW, ARP, BURST, CLOCK, TELEMETRY, CONFIG = 0, 6, 10, 11, 12, 13, 14, 15
FRAME_KINDS = (INSIDE, OUTSIDE, RAW, ARP)

# TCP flags
FIN, SYN, RST, PSH, ACK = 0x01, 0x02, 0x04, 0x08, 0x10

# Shape flags (translator_fuzz.cpp read_shape)
DF, FRAGMENT, OPTIONS, CORRUPT, BAD_L4, BROADCAST, STRANGER = 1, 2, 4, 8, 16, 32, 64


def op(kind, queue=0, variant=0):
    """The op byte, and for frame records the byte with the variant and the RX queue."""
    if kind in FRAME_KINDS:
        return bytes([kind, (variant & 7) | (queue & 3) << 3])
    return bytes([kind])


def u16(v):
    return bytes([v >> 8 & 0xff, v & 0xff])


def common_port(i):
    """translator_fuzz.cpp port(): selector for kCommon[i] (53, 80, 443, 1024, 4500, 5000, ...)."""
    return i


def range_port(p):
    """A selector for port p in 1000..1299."""
    return 0x4000 | (p - 1000)


def shape(ttl=0, flags=0, tcp=0, length=0, seed=0):
    return bytes([ttl, flags, tcp, length, seed])


def frame(kind, variant=0, queue=0, flow=0x80, src=0, dst=0, sport=range_port(1200),
          dport=common_port(0), ttl=0, flags=0, tcp=0, length=8, seed=1, extra=b""):
    return (op(kind, queue, variant) + bytes([flow, src, dst]) + u16(sport) + u16(dport) +
            shape(ttl, flags, tcp, length, seed) + extra)


def inside(**kw):
    return frame(INSIDE, **kw)


def outside(**kw):
    # For answers (variants 0, 1, 3) `flow` picks the remembered flow: 0 is the oldest.
    kw.setdefault("flow", 0)
    return frame(OUTSIDE, **kw)


def error(kind, variant, pick=0, src=0, how=0, quote=0):
    """An ICMP error about a remembered flow: outside (variant 2) or from a subscriber (4)."""
    return op(kind, 0, variant) + bytes([pick, src, 0]) + u16(0) + u16(0) + bytes([how, quote]) + \
        shape()


def clock(v):
    return op(CLOCK) + bytes([v])


def seconds(s):
    """clock() selector for 1..64 s."""
    return clock(63 + s)


def burst(n):
    return op(BURST) + bytes([n - 2])


def telemetry(kind, filt=0, worker=0):
    return op(TELEMETRY) + bytes([kind, filt, worker])


def config(which):
    return op(CONFIG) + bytes([which])


def arp(outside_side, code, sender=0, target=0, mac=0):
    return op(ARP, 0, 1 if outside_side else 0) + bytes([code, sender, target, mac])


def eth(dst, src, ether_type="0800"):
    return bytes.fromhex(dst + src + ether_type)


def raw(outside_side, data, our_mac=False, fix=False):
    return op(RAW, 0, int(outside_side) | int(our_mac) << 1 | int(fix) << 2) + u16(len(data)) + data


NEXT_HOP_ARP = arp(True, 1)  # the next hop answers, its MAC is learned

SCENARIOS = {
    "udp_out_reply_errors": NEXT_HOP_ARP + inside(dport=common_port(0)) + outside(variant=0) +
    outside(variant=0, dst=0x40, sport=common_port(2)) +  # from another port
    error(OUTSIDE, 2, how=0, quote=2) + error(INSIDE, 4, how=4, quote=0) + inside(flow=0) +
    clock(191) + clock(200) + inside(flow=0),
    "tcp_handshake_and_close": NEXT_HOP_ARP + inside(flow=0x81, tcp=SYN, length=0) +
    outside(variant=0, tcp=SYN | ACK, length=0) + inside(flow=0, tcp=ACK, length=0) +
    inside(flow=0, tcp=ACK | PSH, length=0x90) + outside(variant=0, tcp=ACK, length=0) +
    inside(flow=0, tcp=FIN | ACK, length=0) + outside(variant=0, tcp=FIN | ACK, length=0) +
    inside(flow=0, tcp=ACK, length=0) + error(OUTSIDE, 2, how=1, quote=1) +
    outside(variant=0, tcp=RST, length=0) + seconds(60),
    "icmp_echo_both_ways": NEXT_HOP_ARP + inside(flow=0x82, sport=common_port(3)) +
    outside(variant=0) + error(OUTSIDE, 2, how=4, quote=2) + inside(variant=6, src=1) +
    inside(variant=6, src=2, dst=1) + outside(variant=4, src=3, dst=2) + seconds(61),
    "hairpin_udp_tcp_ping": NEXT_HOP_ARP + inside(src=0, dport=common_port(5)) +
    inside(variant=5, flow=0, src=1) + inside(variant=5, flow=1, src=0) +
    inside(flow=0x81, src=2, tcp=SYN, length=0) + inside(variant=5, flow=2, src=3, tcp=SYN,
                                                         length=0) +
    inside(variant=6, src=4, dst=1) + inside(variant=5, flow=0, src=1, ttl=0xe2),
    "unsolicited_syn_held_then_answered": NEXT_HOP_ARP +
    outside(variant=5, flow=1, dst=1, sport=common_port(1), dport=range_port(1100), tcp=SYN,
            length=0) + seconds(7) +
    outside(variant=5, flow=1, dst=2, sport=common_port(1), dport=range_port(1101), tcp=SYN,
            length=0) +
    inside(flow=0x81, src=0, sport=range_port(1101), dst=0, dport=common_port(1), tcp=SYN,
           length=0) + seconds(8),
    # Address-and-port filtering: a SYN from another port of the server is held, and the
    # subscriber's own SYN to that port cancels it (simultaneous open, RFC 5382 REQ-4).
    "held_syn_cancelled_by_outbound_syn": NEXT_HOP_ARP + config(1) +
    inside(flow=0x81, dport=common_port(1), tcp=SYN, length=0) +
    outside(variant=0, dst=0x20, sport=common_port(2), tcp=SYN, length=0) +
    inside(flow=0, dst=0x80, dport=common_port(2), tcp=SYN, length=0) + seconds(8),
    # A subscriber pinging with identifier 0, sequence 0 and no data: the server's reply,
    # translated back, is an ICMP message of zeros but its checksum (RFC 1624's -0 case).
    "echo_identifier_zero": NEXT_HOP_ARP + inside(flow=0x82, sport=common_port(4), length=0,
                                                  tcp=0) + outside(variant=0, length=0, tcp=0),
    "fragments_in_and_out_of_order": NEXT_HOP_ARP +
    inside(length=0xb0, flags=FRAGMENT, extra=bytes([0, 0x01 | 7 << 3])) +
    inside(length=0xb0, flags=FRAGMENT, extra=bytes([8, 0x01 | 7 << 3])) +
    inside(length=0xb0, flags=FRAGMENT, extra=bytes([24, 0x00])) +
    inside(flow=0x80, src=1, length=0xb0, flags=FRAGMENT, extra=bytes([16, 0x03 | 3 << 3])) +
    inside(flow=0x80, src=1, length=0xb0, flags=FRAGMENT, extra=bytes([0, 0x03 | 3 << 3])) +
    outside(variant=0, length=0xb0, flags=FRAGMENT, extra=bytes([8, 0x00])) +
    outside(variant=0, length=0xb0, flags=FRAGMENT, extra=bytes([0, 0x01 | 0 << 3])) +
    seconds(3) + inside(length=0xb0, flags=FRAGMENT, extra=bytes([40, 0x04])),
    "mtu_too_big_and_split": NEXT_HOP_ARP + inside(length=0xd0, flags=DF) +
    inside(length=0xd0) + inside(length=0xf8) + outside(variant=0, length=0xe0) +
    outside(variant=0, length=0xe0, flags=DF) + config(17) + inside(length=0xa0) +
    inside(length=0xa0, flags=DF | OPTIONS, extra=bytes([1])),
    "subscriber_and_port_limits": NEXT_HOP_ARP +
    b"".join(inside(src=i, sport=range_port(1000 + i)) for i in range(12)) +
    inside(src=0xc5) + inside(src=0xc6) +
    b"".join(inside(src=0, flow=0x80, dport=common_port(i % 8), sport=range_port(1010 + i))
             for i in range(11)) + telemetry(0) + telemetry(2, 1),
    "burst_of_mixed_frames": NEXT_HOP_ARP + burst(8) + inside(src=0) + inside(src=1) +
    inside(flow=0x81, src=2, tcp=SYN, length=0) + outside(variant=4) + inside(variant=6) +
    arp(False, 0) + arp(True, 0, target=1) + inside(src=3, flags=BAD_L4),
    "telemetry_and_flush": NEXT_HOP_ARP + inside(src=0) + inside(src=1) + inside(src=0, flow=0x82) +
    telemetry(0, 0, 0) + telemetry(0, 0, 1) + telemetry(1) + telemetry(2, 1) +
    telemetry(2, 2, 1) + telemetry(3, 1) + telemetry(3, 3, 1) + telemetry(2, 0),
    "filtering_and_runtime_changes": NEXT_HOP_ARP + inside(src=0) + config(1) +
    outside(variant=0) + outside(variant=0, dst=0x20, sport=common_port(4)) +
    outside(variant=0, dst=0x40, src=5) + config(0) + outside(variant=0, dst=0x40, src=6) +
    config(3) + config(28) + inside(src=4) + config(30) + inside(src=5) + config(25) +
    inside(src=6) + config(7) + seconds(64) + clock(160),
    "ttl_expiry_and_time_exceeded": NEXT_HOP_ARP + inside(ttl=0xe1) + inside(ttl=0xe2) +
    outside(variant=0, ttl=0xe1) + inside(variant=5, flow=0, src=1, ttl=0xe2) +
    error(OUTSIDE, 2, how=4, quote=0),
    "arp_and_not_for_us": arp(False, 0) + arp(False, 0, target=0xc5) + arp(True, 0) +
    arp(True, 0, target=0xc2) + arp(True, 2) + arp(True, 0x83) + inside(flags=STRANGER) +
    inside(flags=BROADCAST, variant=6) + NEXT_HOP_ARP + inside(flags=BROADCAST),
    "raw_frames": raw(False, bytes(range(20))) +
    raw(False, eth("020000000001", "0264000a0001") + bytes.fromhex(
        "45000014" "00004000" "40010000" "6440000a" "c6120001"), our_mac=True, fix=True) +
    raw(True, eth("020000000001", "0200000000fe") + bytes.fromhex(
        "45000030" "00000000" "40110000" "c6120001" "c613000a" "0035044c001c0000") + bytes(20),
        our_mac=True, fix=True),
    # In a blocks world (world.cpp): one subscriber's UDP flows overflow its first 64-port
    # block into a second, blocks close (active_block_timeout 30 s) and max_blocks drops to 1
    # with both still live, so the next flow is refused; `show blocks` lists them. Elsewhere,
    # the per-subscriber limits.
    "blocks_overflow_close_and_refuse": NEXT_HOP_ARP +
    b"".join((seconds(1) if i % 10 == 0 else b"") +
             inside(src=0, dport=common_port(0), sport=range_port(1000 + i)) for i in range(70)) +
    telemetry(4) + config(34) + seconds(31) + inside(src=0, sport=range_port(1100)) +
    config(32) + inside(src=0, sport=range_port(1101)) + telemetry(4, 1) + telemetry(1) +
    config(35) + config(33) + seconds(64) + seconds(64) + inside(src=0, sport=range_port(1102)),
    "corrupted_headers": NEXT_HOP_ARP + inside(flags=CORRUPT, extra=u16(14) + bytes([0x10])) +
    inside(flags=CORRUPT, extra=u16(0x8000 | 23) + bytes([0x05])) +
    inside(flags=CORRUPT, extra=u16(0x8000 | 14) + bytes([0x0f])) +
    outside(variant=6, flags=CORRUPT | BAD_L4, extra=u16(0x8000 | 30) + bytes([0xff])),
}

# Findings, kept as regression inputs: each failed before its fix (docs/reliability.md).
REGRESSIONS = {
    # A subscriber's packet handed to its owner over a ring was taken for an outside packet:
    # net_ring leaves mbuf->port unset, and the handoff ring tells sides apart by it. Pings
    # from subscribers of both workers to a pool address, through both RX queues.
    "handoff_keeps_the_side": NEXT_HOP_ARP +
    b"".join(op(INSIDE, q, 6) + bytes([0, s, 1]) + u16(0x77) + u16(0) + shape()
             for q in range(2) for s in range(4)),
    # A hairpinned packet whose TTL ran out on its way back in was answered with a Time
    # Exceeded sent out of the outside port to the sender's external address (one of ours).
    "hairpinned_time_exceeded": NEXT_HOP_ARP + inside(src=0) +
    inside(variant=5, flow=0, src=1, ttl=0xe2) + inside(variant=5, flow=0, src=1, ttl=0xe2,
                                                        length=0xd0, flags=DF),
    # A hairpinned SYN that filtering refused was held, and its ICMP 3/3 sent out of the
    # outside port to the sender's external address (one of ours) instead of back in.
    "hairpinned_syn_refused_then_answered": NEXT_HOP_ARP + config(1) +
    inside(flow=0x81, src=0, tcp=SYN, length=0) +
    inside(variant=5, flow=0, src=1, tcp=SYN, length=0) + seconds(7),
}


def main():
    out = Path(sys.argv[1]) if len(sys.argv) > 1 else Path(__file__).parent / "corpus/translator"
    out.mkdir(parents=True, exist_ok=True)
    for name, data in SCENARIOS.items():
        (out / f"seed-{name}").write_bytes(data)
    for name, data in REGRESSIONS.items():
        (out / f"regression-{name}").write_bytes(data)
    print(f"{len(SCENARIOS)} seeds and {len(REGRESSIONS)} regressions in {out}")


if __name__ == "__main__":
    main()
