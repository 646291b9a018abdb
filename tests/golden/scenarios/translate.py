"""Translation of UDP, TCP and ICMP echo in both directions, ports kept or chosen."""

from scapy.layers.inet import IP, UDP, IPOption_EOL, IPOption_NOP, in4_chksum
from scapy.layers.l2 import Ether

import frames
from frames import A1, A2, C1, POOL1, Echo, Tcp, Udp
from natmodel import NatModel
from scenarios import Frame, Scenario, by_subscriber, config, kept_ports, scenario, traffic


@scenario
def translate_preserved_ports(workers):
    """Source ports (and an echo identifier) in the dynamic range that C1's worker owns are
    kept (RFC 4787 REQ-3a, REQ-4); TTL drops by one; checksums come out right, also with IP
    options, an odd-length payload, DF and TOS set, and Ethernet padding after the IP
    packet."""
    nat = NatModel([POOL1], workers=workers)
    sc = Scenario(config())
    options = dict(options=[IPOption_NOP(), IPOption_NOP(), IPOption_NOP(), IPOption_EOL()])
    p = kept_ports(nat, C1, 6)  # 50000-50005 with one worker
    flows = [  # port, remote, remote port, l4, extra keywords for both frames
        (p[0], A1, 53, Udp(b"dns query"), {}),
        (p[1], A1, 80, Tcp(), {}),
        (p[2], A1, 0, Echo(), {}),
        (p[3], A2, 5353, Udp(b"with IP options"), options),
        (p[4], A1, 7, Udp(b"hi"), dict(pad=b"\xa5" * 16)),
        (p[5], A2, 123, Udp(b"df and tos"), dict(flags="DF", tos=0x28)),
    ]
    for port, remote, rport, l4, kw in flows:
        ext = nat.map(C1.ip, port, l4.proto)
        assert ext == (POOL1, port, True)
        sc.send(C1, port, remote, rport, l4, ext, **kw)
    # A second segment of the TCP connection, same burst: the session exists by then.
    data = Tcp(flags="PA", reply_flags="A", seq=1001, payload=b"GET / HTTP/1.0\r\n\r\n",
               options=[])
    sc.send(C1, p[1], A1, 80, data, nat.map(C1.ip, p[1], 6), ip_id=9)
    for port, remote, rport, l4, kw in flows:
        sc.reply(C1, port, remote, rport, l4, nat.map(C1.ip, port, l4.proto), **kw)
    sc.reply(C1, p[1], A1, 80, data, nat.map(C1.ip, p[1], 6), ip_id=10)
    sc.counters = traffic(sc, mappings_created=6, sessions_created=6, port_preserved=6)
    return sc


@scenario
def rfc4787_req4_parity_alg4(workers):
    """Source ports that cannot be kept (below the range, reserved, system class, an echo
    identifier outside the range, and with several workers a free port in the range that
    another worker owns) get a port chosen by RFC 6056 Algorithm 4 among the ports of C1's
    worker, as computed by the Python model, with the source port's parity (RFC 4787
    REQ-4)."""
    reserved = (50000, 50009)
    nat = NatModel([POOL1], reserved=[reserved], workers=workers)
    sc = Scenario(config(reserved=["%d-%d" % reserved]))
    flows = [
        (4000, A1, 53, Udp()),        # below the range, even
        (4001, A1, 53, Udp()),        # odd
        (50004, A1, 53, Udp()),       # in the range but reserved
        (80, A2, 53, Udp()),          # system class: the range has none, so any port
        (33333, A1, 443, Tcp()),
        (1024, A2, 443, Tcp()),
        (0x1234, A1, 0, Echo()),
        (7, A2, 0, Echo()),
    ]
    mine = nat.worker_of(C1.ip)
    flows += [(port, A2, 53, Udp()) for port in range(50101, 50200, 2)
              if nat.owners.port(POOL1, port) != mine][:1]  # another worker's port
    for port, remote, rport, l4 in flows:
        ext = nat.map(C1.ip, port, l4.proto)
        assert not ext.preserved and ext.port % 2 == port % 2 and ext.port >= 49152
        assert not reserved[0] <= ext.port <= reserved[1]
        assert nat.port_owner(ext) == mine
        sc.send(C1, port, remote, rport, l4, ext)
    for port, remote, rport, l4 in flows:
        sc.reply(C1, port, remote, rport, l4, nat.map(C1.ip, port, l4.proto))
    sc.counters = traffic(sc, mappings_created=len(flows), sessions_created=len(flows))
    return sc


def zero_sum_payload(expected_for):
    """A payload for which the UDP checksum of expected_for(payload) computes to 0, which
    RFC 768 sends as 0xffff: the last payload word makes the one's complement sum 0xffff."""
    base = b"zero sum"
    ip = Ether(expected_for(base + b"\0\0"))[IP]
    segment = bytes(ip[UDP])
    total = ~in4_chksum(17, ip, segment[:6] + b"\0\0" + segment[8:]) & 0xFFFF
    payload = base + (0xFFFF - total).to_bytes(2, "big")
    udp = Ether(expected_for(payload))[UDP]
    assert udp.chksum == 0xFFFF, "scapy should send a computed zero as 0xffff"
    return payload


@scenario
def rfc768_udp_checksum(workers):
    """A UDP checksum of 0 (none) stays 0 both ways; a checksum that computes to 0 after
    translation is sent as 0xffff (RFC 768, RFC 1624)."""
    nat = NatModel([POOL1], workers=workers)
    sc = Scenario(config())
    none = Udp(b"no checksum", chksum=0)
    ext = nat.map(C1.ip, 50000, 17)
    sc.send(C1, 50000, A1, 9, none, ext)
    sc.reply(C1, 50000, A1, 9, none, ext)

    ext = nat.map(C1.ip, 4000, 17)  # a translated port, so the port word changes too
    out = Udp(zero_sum_payload(lambda p: frames.in2out(C1, 4000, A1, 9, Udp(p), ext)[1]))
    back = Udp(zero_sum_payload(lambda p: frames.out2in(C1, 4000, A1, 9, Udp(p), ext)[1]))
    sc.send(C1, 4000, A1, 9, out, ext)
    sc.reply(C1, 4000, A1, 9, back, ext)
    sc.counters = traffic(sc, mappings_created=2, sessions_created=2,
                          port_preserved=nat.preserved())
    return sc


@scenario
def session_fast_path(workers):
    """Packets of existing sessions in a later burst take the bulk-lookup hit path and are
    translated exactly as the first ones; TTL 1 is answered with Time Exceeded there too
    (RFC 5508 section 7.2). 64 inside frames: burst 1 opens 32 flows (and their replies come
    in), burst 2 has one more packet each. (With several workers, C1's worker gets the three
    bursts as three full ring batches, so the Time Exceeded still follows the replies.)"""
    nat = NatModel([POOL1], workers=workers)
    sc = Scenario(config())
    flows = ([(50100 + i, (A1, A2)[i % 2], 53, Udp(b"first %d" % i)) for i in range(12)]
             + [(4000 + i, A1, 80, Tcp()) for i in range(10)]
             + [(100 + i, A2, 0, Echo(seq=1)) for i in range(10)])
    for port, remote, rport, l4 in flows:
        sc.send(C1, port, remote, rport, l4, nat.map(C1.ip, port, l4.proto))
    for port, remote, rport, l4 in flows:
        sc.reply(C1, port, remote, rport, l4, nat.map(C1.ip, port, l4.proto))
    assert len(sc.inside_in) == 32 and len(sc.outside_in) == 32
    second = {17: lambda i: Udp(b"second %d" % i), 6: lambda i: Tcp(flags="A", seq=1001,
                                                                    options=[]),
              1: lambda i: Echo(seq=2)}
    for i, (port, remote, rport, l4) in enumerate(flows):
        ext = nat.map(C1.ip, port, l4.proto)
        if i == 5:  # RFC 5508 section 7.2: answered with Time Exceeded
            expired = frames.in2out(C1, port, remote, rport, second[l4.proto](i), ext, ttl=1)[0]
            sc.inside_in.append(Frame(expired, by_subscriber(C1)))
            sc.inside_out.append(Frame(frames.time_exceeded_inside(C1, expired),
                                       by_subscriber(C1)))
        else:
            sc.send(C1, port, remote, rport, second[l4.proto](i), ext, ttl=2 + i, ip_id=100 + i)
    sc.counters = traffic(sc, mappings_created=32, sessions_created=32,
                          port_preserved=nat.preserved(),
                          out2in_translated=len(sc.inside_out) - 1, drop_ttl_expired=1,
                          icmp_time_exceeded_sent=1)
    return sc
