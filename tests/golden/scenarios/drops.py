"""Frames ephemera must drop, each counted by its reason, with valid traffic still translated."""

from scapy.layers.inet import GRE, ICMP, IP, TCP, UDP
from scapy.layers.inet6 import IPv6
from scapy.layers.l2 import Dot1Q, Ether
from scapy.packet import Raw

import frames
from frames import A1, C1, GATEWAY, INSIDE_MAC, NEXT_HOP_MAC, OUTSIDE_MAC, POOL1, Echo, Tcp, Udp
from natmodel import NatModel
from scenarios import Frame, Scenario, by_port, by_subscriber, config, scenario, traffic

OTHER_MAC = "02:00:00:00:00:99"


@scenario
def unsolicited_inbound(workers):
    """Inbound packets that match no mapping are dropped silently (RFC 5382 REQ-4: no reply
    to an unsolicited SYN): to a pool address (drop_no_mapping, by the port's owner), to
    another address or another MAC (drop_not_for_us, by the worker that receives them).
    Mappings are per protocol (RFC 7857 section 5), and an echo mapping only takes
    replies."""
    nat = NatModel([POOL1], workers=workers)
    sc = Scenario(config())
    udp, echo = Udp(), Echo()
    ext_udp = nat.map(C1.ip, 50010, 17)
    ext_echo = nat.map(C1.ip, 50011, 1)
    sc.send(C1, 50010, A1, 53, udp, ext_udp)
    sc.send(C1, 50011, A1, 0, echo, ext_echo)
    sc.inside_in += [
        bytes(Ether(src=C1.mac, dst=INSIDE_MAC) / IP(src=C1.ip, dst=GATEWAY) / UDP(dport=53)),
        bytes(Ether(src=C1.mac, dst=OTHER_MAC) / IP(src=C1.ip, dst=A1) / UDP(dport=53)),
    ]
    probes = [
        (A1, 53, udp, 50000),                       # free port in the range
        (A1, 53, udp, 80),                          # outside the port range
        (A1, 1234, Tcp(reply_flags="S"), 50001),    # unsolicited SYN
        (A1, 53, Tcp(reply_flags="S"), ext_udp.port),  # UDP's port, TCP
        (A1, 0, echo, 50002),                       # echo reply, no such id
    ]
    assert not any(nat.is_mapped(POOL1, port, l4.proto) for _, _, l4, port in probes)
    no_mapping = [Frame(frames.inbound_only(remote, rport, l4, POOL1, port),
                        by_port((POOL1, port)))
                  for remote, rport, l4, port in probes]
    # An echo request to the mapping's identifier is not a reply: it does not reach C1, the
    # pool address answers it (TTL 64, addresses and MACs swapped, IP id kept).
    ping = Ether(src=NEXT_HOP_MAC, dst=OUTSIDE_MAC) / IP(src=A1, dst=POOL1, id=9, ttl=50) \
        / ICMP(type=8, id=ext_echo.port, seq=1) / Raw(b"anyone there")
    pong = Ether(src=OUTSIDE_MAC, dst=NEXT_HOP_MAC) / IP(src=POOL1, dst=A1, id=9, ttl=64) \
        / ICMP(type=0, id=ext_echo.port, seq=1) / Raw(b"anyone there")
    not_for_us = [
        frames.inbound_only(A1, 53, udp, "198.18.0.200", ext_udp.port),
        frames.inbound_only(A1, 53, udp, POOL1, ext_udp.port, dst_mac=OTHER_MAC),
    ]
    sc.outside_in += no_mapping + not_for_us + [Frame(ping, by_port(ext_echo))]
    sc.outside_out.append(Frame(pong, by_port(ext_echo)))
    sc.reply(C1, 50010, A1, 53, udp, ext_udp)
    sc.reply(C1, 50011, A1, 0, echo, ext_echo)
    sc.counters = traffic(sc, mappings_created=2, sessions_created=2,
                          port_preserved=nat.preserved(), in2out_translated=2,
                          pool_echo_replies_sent=1,
                          drop_no_mapping=len(no_mapping), drop_not_for_us=2 + len(not_for_us))
    return sc


def _eth_in():
    return Ether(src=C1.mac, dst=INSIDE_MAC)


def _eth_out():
    return Ether(src=NEXT_HOP_MAC, dst=OUTSIDE_MAC)


def _ip_in(**kw):
    return IP(src=C1.ip, dst=A1, **kw)


def _bad_checksum(frame):
    """The frame with its IP header checksum off by one."""
    b = bytearray(frame)
    b[24] ^= 0x01
    return bytes(b)


def _inside_malformed():
    """(frame, counter) pairs from the inside, none of which may be translated."""
    eth, ip = _eth_in, _ip_in
    udp = UDP(sport=50000, dport=53) / Raw(b"payload")
    ihl15 = bytearray(bytes(eth() / ip() / udp))
    ihl15[14] = 0x4F  # claims a 60-byte header; the frame has 35 bytes after Ethernet
    return [
        (b"\x02\x70" * 5, "drop_truncated"),                                # < 14 bytes
        (bytes(eth() / ip() / udp)[:14 + 10], "drop_truncated"),           # IPv4 header cut
        (bytes(ihl15), "drop_truncated"),                                   # header > frame
        (bytes(eth() / ip(ihl=4) / udp), "drop_bad_ihl"),
        (bytes(eth() / ip(len=200) / udp), "drop_bad_total_length"),       # beyond the frame
        (bytes(eth() / ip(len=16) / udp), "drop_bad_total_length"),        # below the header
        (_bad_checksum(bytes(eth() / ip() / udp)), "drop_bad_ip_checksum"),
        (bytes(eth() / ip(version=6) / udp), "drop_bad_version"),
        (bytes(eth() / IPv6(src="fd00::1", dst="fd00::2") / udp), "drop_not_ipv4"),
        (bytes(eth() / Dot1Q(vlan=5) / ip() / udp), "drop_not_ipv4"),
        (bytes(eth() / ip(flags="MF") / udp), "drop_fragment"),     # 15 bytes: not 8k
        (bytes(eth() / ip(frag=8191) / Raw(b"x" * 16)), "drop_fragment"),  # beyond 65535
        (bytes(eth() / ip(proto=17) / Raw(b"1234")), "drop_truncated"),     # UDP < 8 bytes
        (bytes(eth() / ip(proto=6) / Raw(b"x" * 12)), "drop_truncated"),    # TCP < 20 bytes
        (bytes(eth() / ip() / TCP(sport=50000, dport=80, dataofs=15)), "drop_truncated"),
        (bytes(eth() / ip() / TCP(sport=50000, dport=80, dataofs=4)), "drop_truncated"),
        (bytes(eth() / ip(proto=1) / Raw(b"\x08\x00\x00\x00")), "drop_truncated"),  # ICMP < 8
        (bytes(eth() / ip() / GRE() / Raw(b"tunnel")), "drop_unsupported_protocol"),
        # Two that parse, so C1's worker drops them: an ICMP error about no flow of ours, and
        # an echo reply (only echo requests open a mapping).
        (Frame(eth() / ip() / ICMP(type=3, code=1) / IP(src=A1, dst=C1.ip) / UDP(),
               by_subscriber(C1)), "drop_icmp_error_no_session"),
        (Frame(eth() / ip() / ICMP(type=0, id=50000), by_subscriber(C1)),
         "drop_unsupported_protocol"),
    ]


def _outside_malformed(ext):
    eth = _eth_out
    to_ext = IP(src=A1, dst=ext.ip)
    udp = UDP(sport=53, dport=ext.port) / Raw(b"answer")
    return [
        (b"\x00" * 13, "drop_truncated"),
        (_bad_checksum(bytes(eth() / to_ext / udp)), "drop_bad_ip_checksum"),
        (bytes(eth() / IP(src=A1, dst=ext.ip, flags="MF") / udp), "drop_fragment"),  # 14 bytes
        (bytes(eth() / IPv6(src="fd00::2", dst="fd00::1") / udp), "drop_not_ipv4"),
        (bytes(eth() / IP(src=A1, dst=ext.ip) / GRE() / Raw(b"tunnel")),
         "drop_unsupported_protocol"),
        (bytes(eth() / IP(src=A1, dst=ext.ip, proto=17) / Raw(b"12")), "drop_truncated"),
    ]


@scenario
def malformed_frames(workers):
    """Each malformed or unsupported frame is dropped and counted by its reason, on both
    ports (by the worker that receives it, unless it parses); the valid packets placed after
    them are still translated."""
    nat = NatModel([POOL1], workers=workers)
    sc = Scenario(config())
    ext = nat.map(C1.ip, 50000, 17)
    counts = {}
    bad = [(sc.inside_in, _inside_malformed()), (sc.outside_in, _outside_malformed(ext))]
    for side, frames_and_counters in bad:
        for frame, counter in frames_and_counters:
            side.append(frame)
            counts[counter] = counts.get(counter, 0) + 1
    assert len(sc.inside_in) < 32 and len(sc.outside_in) < 32
    sc.send(C1, 50000, A1, 53, Udp(b"still works"), ext)
    sc.reply(C1, 50000, A1, 53, Udp(b"still works"), ext)
    sc.counters = traffic(sc, mappings_created=1, sessions_created=1,
                          port_preserved=nat.preserved(), **counts)
    return sc


@scenario
def rfc5382_req4_unsolicited_syn(workers):
    """RFC 5382 REQ-4 with `icmp.unsolicited_syn_unreachable` on: an unsolicited SYN gets no
    answer for 6 s, then ICMP 3/3 from the pool address it was sent to, quoting its IP header
    and the first 8 bytes of TCP, from the worker that owns the port. A SYN-ACK is not
    held."""
    sc = Scenario(config(icmp={"unsolicited_syn_unreachable": True}))
    syn = Frame(frames.inbound_only(A1, 1234, Tcp(reply_flags="S"), POOL1, 50000),
                by_port((POOL1, 50000)))
    synack = Frame(frames.inbound_only(A1, 1235, Tcp(reply_flags="SA"), POOL1, 50002),
                   by_port((POOL1, 50002)))
    sc.outside_in += [syn, synack]
    quote = bytes(Ether(syn)[IP])[:20 + 8]
    sc.outside_out.append(Frame(Ether(src=OUTSIDE_MAC, dst=NEXT_HOP_MAC)
                                / IP(src=POOL1, dst=A1, tos=0xC0, id=0, ttl=64)
                                / ICMP(type=3, code=3) / Raw(quote), by_port((POOL1, 50000))))
    sc.min_runtime = 7.0
    sc.counters = dict(out2in_rx=2, in2out_tx=1, drop_no_mapping=2, syn_held=1,
                       syn_unreachable_sent=1)
    return sc
