"""ICMP errors translated both ways (RFC 5508 REQ-3, REQ-4, REQ-5, REQ-10; RFC 4787 REQ-12;
RFC 5382 REQ-9), and Time Exceeded when TTL runs out here (RFC 5508 section 7.2).

Expected errors are built by scapy from scratch: the quote is the subscriber's (or the
server's) packet as it was on the wire on the other side, so a byte-for-byte match shows that
the quoted IP checksum, the quoted transport checksum, the ICMP checksum and the outer IP
checksum were all updated right.
"""

from scapy.layers.inet import ICMP, IP
from scapy.layers.l2 import Ether

import frames
from frames import (A1, A2, C1, INSIDE_MAC, NEXT_HOP_MAC, OUTSIDE_MAC, POOL1, Echo, Tcp, Udp)
from natmodel import NatModel
from scenarios import Frame, Scenario, by_port, by_subscriber, config, scenario, traffic

ROUTER = "198.18.7.7"   # a router on the path: not a remote the flows talk to


def _from_outside(src_ip, icmp, quote, ttl=64, owner=None):
    """An error to POOL1; `owner`: the external port of the quoted packet (its source), whose
    owner takes the error."""
    return Frame(frames.icmp_error(NEXT_HOP_MAC, OUTSIDE_MAC, src_ip, POOL1, icmp, quote,
                                   ttl=ttl), owner and by_port(owner))


def _to_subscriber(sub, src_ip, icmp, quote, owner, ttl=64):
    return Frame(frames.icmp_error(INSIDE_MAC, sub.mac, src_ip, sub.ip, icmp, quote,
                                   ttl=ttl - 1), by_port(owner))


def _from_subscriber(sub, dst_ip, icmp, quote, ttl=64):
    return Frame(frames.icmp_error(sub.mac, INSIDE_MAC, sub.ip, dst_ip, icmp, quote, ttl=ttl),
                 by_subscriber(sub))


def _to_remote(ext_ip, dst_ip, icmp, quote, owner, ttl=64):
    return Frame(frames.icmp_error(OUTSIDE_MAC, NEXT_HOP_MAC, ext_ip, dst_ip, icmp, quote,
                                   ttl=ttl - 1), by_subscriber(owner))


def _corrupt(frame, offset):
    b = bytearray(frame)
    b[offset] ^= 0x01
    return bytes(b)


@scenario
def rfc5508_icmp_errors(workers):
    """Errors from outside about UDP, TCP and echo reach the subscriber with the quote restored
    (REQ-4), also when only 28 bytes are quoted and the UDP checksum is 0, from the flow's
    remote or any router (filtering does not apply). An error from the subscriber leaves from
    the pool address with the quote hidden (REQ-5). Bad ICMP checksums, bad quoted IP checksums
    (REQ-3), short quotes, and errors about no mapping or no session are dropped and counted."""
    nat = NatModel([POOL1], workers=workers)
    sc = Scenario(config(filtering="address-and-port"))
    flows = [  # port, remote, remote port, l4
        (50000, A1, 53, Udp(b"dns query")),
        (50001, A1, 80, Tcp()),
        (50002, A2, 0, Echo()),
        (4000, A2, 5353, Udp(b"no checksum", chksum=0)),  # a port that is not kept
    ]
    ext = {}
    for port, remote, rport, l4 in flows:
        ext[port] = nat.map(C1.ip, port, l4.proto)
        sc.send(C1, port, remote, rport, l4, ext[port])
    udp, tcp, echo, zero = flows

    def sent(flow, ttl=64):
        """(our packet as it left the NAT, the subscriber's packet as the router saw it)"""
        port, remote, rport, l4 = flow
        out = frames.in2out(C1, port, remote, rport, l4, ext[port], ttl=ttl)[1]
        original = frames.in2out(C1, port, remote, rport, l4, ext[port], ttl=ttl - 1)[0]
        return frames.ip_bytes(out), frames.ip_bytes(original)

    # From the subscriber: port unreachable about the server's answer it got (REQ-5).
    answer = frames.out2in(C1, 50000, A1, 53, udp[3], ext[50000])
    delivered = frames.ip_bytes(answer[1])
    as_sent = frames.ip_bytes(frames.out2in(C1, 50000, A1, 53, udp[3], ext[50000], ttl=63)[0])
    unreach = ICMP(type=3, code=3)
    sc.inside_in.append(_from_subscriber(C1, A1, unreach, delivered))
    sc.outside_out.append(_to_remote(POOL1, A1, unreach, as_sent, C1))
    # ... and about a flow it has no session for.
    stranger = frames.ip_bytes(frames.out2in(C1, 50000, A2, 99, Udp(), ext[50000])[1])
    sc.inside_in.append(_from_subscriber(C1, A2, unreach, stranger))

    # From outside (REQ-4): the flow's remote, and routers on the path.
    sc.reply(C1, 50000, A1, 53, udp[3], ext[50000])
    translated = [
        (A1, ICMP(type=3, code=3), udp, 0),                  # port unreachable
        (ROUTER, ICMP(type=11, code=0), tcp, 0),              # TTL exceeded in transit
        (ROUTER, ICMP(type=11, code=0), echo, 0),             # traceroute -I
        (ROUTER, ICMP(type=3, code=4, nexthopmtu=1400), zero, 28),  # frag needed, RFC 792
        (ROUTER, ICMP(type=12, code=0, ptr=8), tcp, 28),      # parameter problem
    ]
    for src, icmp, flow, cut in translated:
        ours, theirs = sent(flow)
        quote, restored = (ours[:cut], theirs[:cut]) if cut else (ours, theirs)
        sc.outside_in.append(_from_outside(src, icmp, quote, owner=ext[flow[0]]))
        sc.inside_out.append(_to_subscriber(C1, src, icmp, restored, ext[flow[0]]))

    ours_udp = sent(udp)[0]
    bad = {
        "drop_icmp_error_bad_checksum": [
            _corrupt(_from_outside(ROUTER, ICMP(type=11), ours_udp), 14 + 20 + 2)],
        "drop_icmp_error_bad_inner_checksum": [
            _from_outside(ROUTER, ICMP(type=11), _corrupt(ours_udp, 10))],
        "drop_icmp_error_truncated": [_from_outside(ROUTER, ICMP(type=11), ours_udp[:24])],
        "drop_icmp_error_no_mapping": [  # a port of ours that has no mapping
            _from_outside(ROUTER, ICMP(type=11), frames.ip_bytes(
                frames.in2out(C1, 50000, A1, 53, udp[3], (POOL1, 50500))[1]),
                owner=(POOL1, 50500))],
        "drop_icmp_error_no_session": [  # the mapping, but not this remote
            _from_outside(ROUTER, ICMP(type=11), frames.ip_bytes(
                frames.in2out(C1, 50000, A2, 53, udp[3], ext[50000])[1]), owner=ext[50000])],
    }
    assert not nat.is_mapped(POOL1, 50500, 17)
    for dropped in bad.values():
        sc.outside_in += dropped
    assert len(sc.inside_in) < 32 and len(sc.outside_in) < 32
    sc.counters = traffic(sc, mappings_created=4, sessions_created=4,
                          port_preserved=nat.preserved(), in2out_translated=len(flows),
                          out2in_translated=1,
                          icmp_errors_in2out=1, icmp_errors_out2in=len(translated),
                          **{k: len(v) for k, v in bad.items()})
    sc.counters["drop_icmp_error_no_session"] += 1  # the subscriber's error about a stranger
    return sc


@scenario
def rfc5508_s72_time_exceeded(workers):
    """TTL 1 or 0 from a subscriber: Time Exceeded from the inside gateway, and no mapping (as
    traceroute's first hop). TTL 1 from outside to a live mapping: Time Exceeded from the pool
    address; to no mapping: dropped. An error whose own TTL runs out is dropped, never answered
    with another error. Each is done by the subscriber's or the port's worker."""
    nat = NatModel([POOL1], workers=workers)
    sc = Scenario(config())
    udp = Udp(b"probe")
    ext = nat.map(C1.ip, 50000, 17)
    sc.send(C1, 50000, A1, 33434, udp, ext)
    for ttl, port in ((1, 50001), (0, 50002)):
        probe = bytes(Ether(src=C1.mac, dst=INSIDE_MAC) / IP(src=C1.ip, dst=A1, id=1, ttl=ttl)
                      / udp.outbound(port, 33435))
        sc.inside_in.append(Frame(probe, by_subscriber(C1)))
        sc.inside_out.append(Frame(frames.time_exceeded_inside(C1, probe), by_subscriber(C1)))
    stale = frames.ip_bytes(frames.out2in(C1, 50000, A1, 33434, udp, ext)[1])
    sc.inside_in.append(_from_subscriber(C1, A1, ICMP(type=3, code=3), stale, ttl=1))

    expired = frames.out2in(C1, 50000, A1, 33434, udp, ext, ttl=1)[0]
    sc.outside_in.append(Frame(expired, by_port(ext)))
    sc.outside_out.append(Frame(frames.time_exceeded_outside(POOL1, A1, expired), by_port(ext)))
    assert not nat.is_mapped(POOL1, 50100, 17)
    sc.outside_in.append(Frame(frames.inbound_only(A1, 33434, udp, POOL1, 50100, ttl=1),
                               by_port((POOL1, 50100))))
    ours = frames.ip_bytes(frames.in2out(C1, 50000, A1, 33434, udp, ext)[1])
    sc.outside_in.append(_from_outside(ROUTER, ICMP(type=11), ours, ttl=1, owner=ext))
    sc.counters = traffic(sc, mappings_created=1, sessions_created=1,
                          port_preserved=nat.preserved(),
                          in2out_translated=1, out2in_translated=0,
                          icmp_time_exceeded_sent=3, drop_ttl_expired=5, drop_no_mapping=1)
    return sc
