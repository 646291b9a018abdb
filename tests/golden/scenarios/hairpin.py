"""Hairpinning: a subscriber reaching another subscriber's external endpoint."""

from scapy.layers.inet import ICMP, IP
from scapy.layers.l2 import Ether
from scapy.packet import Raw

import frames
from frames import A1, INSIDE_MAC, POOL1, Tcp, Udp
from natmodel import NatModel
from scenarios import Frame, Scenario, by_port, by_subscriber, config, scenario, subscriber_of


def _inside(sub, dst, l4_layer, ttl=64, ip_id=5):
    return Frame(Ether(src=sub.mac, dst=INSIDE_MAC) / IP(src=sub.ip, dst=dst, id=ip_id, ttl=ttl)
                 / l4_layer, by_subscriber(sub))


def _delivered(sub, src, l4_layer, ttl, owner, ip_id=5):
    return Frame(Ether(src=INSIDE_MAC, dst=sub.mac) / IP(src=src, dst=sub.ip, id=ip_id, ttl=ttl)
                 / l4_layer, owner)


@scenario
def rfc4787_req9_hairpin(workers):
    """C2 has UDP and TCP mappings (it talked to A1). C1 sends to C2's external endpoints: the
    packets come back inside to C2 from C1's EXTERNAL address and port (RFC 4787 REQ-9,
    RFC 5382 REQ-8), TTL spent once each way. C1 pinging the pool address is answered by it
    through the same hairpin (RFC 5508 REQ-7). C2 answers C1's UDP with port unreachable: the
    error hairpins too, from C2's external address, and reaches C1 with its quote restored
    (RFC 5508 REQ-7).

    C1 is a subscriber of the last worker and C2 one of worker 0 (with one worker, 100.64.0.10
    and .11), so with several workers C1's packets are handed to its worker, and the hairpins
    come back to worker 0, which owns C2's ports, by another ring. C2's mappings exist by then:
    worker 0 makes them before it hands anything on. (With C2 on a third worker, C2's packets
    and the hairpins would reach it by two rings, in either order.) The ping hairpins twice
    on C1's worker, which owns both the echo mapping and the pool address's identifier (each
    turn counted in `hairpinned`, so every frame in has one fate counter). C2's
    error goes the other way: worker 0 translates it and hands it to C1's worker in the same
    ring batch as C1's packets, after them, so it comes out after the echo reply there; with
    one worker it comes out before (the error is in the first hairpin batch, the echo reply,
    a hairpin of a hairpin, in the second)."""
    nat = NatModel([POOL1], workers=workers)
    sc = Scenario(config())
    c1 = subscriber_of(workers, workers - 1)
    c2 = subscriber_of(workers, 0, skip=(c1.ip,))
    udp, tcp = Udp(b"to c2"), Tcp()
    ext2_udp = nat.map(c2.ip, 50020, 17)
    ext2_tcp = nat.map(c2.ip, 50030, 6)
    sc.send(c2, 50020, A1, 53, udp, ext2_udp)
    sc.send(c2, 50030, A1, 80, tcp, ext2_tcp)

    ext1_udp = nat.map(c1.ip, 50021, 17)
    ext1_tcp = nat.map(c1.ip, 50031, 6)
    ext1_echo = nat.map(c1.ip, 50022, 1)
    sc.inside_in += [
        _inside(c1, POOL1, udp.outbound(50021, ext2_udp[1])),
        _inside(c1, POOL1, tcp.outbound(50031, ext2_tcp[1])),
        _inside(c1, POOL1, ICMP(type=8, id=50022, seq=1) / Raw(b"hairpin ping")),
    ]
    sc.inside_out += [
        _delivered(c2, POOL1, udp.outbound(ext1_udp[1], 50020), 62, by_port(ext2_udp)),
        _delivered(c2, POOL1, tcp.outbound(ext1_tcp[1], 50030), 62, by_port(ext2_tcp)),
        # The pool address's answer (TTL 64) reaches C1 through C1's echo mapping.
        _delivered(c1, POOL1, ICMP(type=0, id=50022, seq=1) / Raw(b"hairpin ping"), 63,
                   by_port(ext1_echo)),
    ]
    assert nat.port_owner(ext1_echo) == nat.worker_of(c1.ip)

    # C2's port unreachable about the UDP it got, and that error as C1 gets it.
    got = _delivered(c2, POOL1, udp.outbound(ext1_udp[1], 50020), 62, None)
    quote = frames.ip_bytes(got)
    error = Frame(frames.icmp_error(c2.mac, INSIDE_MAC, c2.ip, POOL1, ICMP(type=3, code=3),
                                    quote), by_subscriber(c2))
    restored = frames.ip_bytes(bytes(Ether() / IP(src=c1.ip, dst=POOL1, id=5, ttl=62)
                                     / udp.outbound(50021, ext2_udp[1])))
    delivered = Frame(frames.icmp_error(INSIDE_MAC, c1.mac, POOL1, c1.ip, ICMP(type=3, code=3),
                                        restored, ttl=62), by_port(ext1_udp))
    sc.inside_in.append(error)
    crossing = nat.worker_of(c1.ip) != nat.worker_of(c2.ip)
    sc.inside_out.insert(len(sc.inside_out) - (0 if crossing else 1), delivered)
    # The two hairpins to C2 and the error to C1 cross between C1's worker and C2's.
    sc.extra_handoffs = 3 * crossing
    sc.counters = dict(in2out_rx=6, in2out_tx=2, in2out_translated=5, out2in_tx=4,
                       out2in_translated=3, hairpinned=5, pool_echo_replies_sent=1,
                       mappings_created=5, sessions_created=5, port_preserved=nat.preserved(),
                       icmp_errors_in2out=1, icmp_errors_out2in=1)
    return sc
