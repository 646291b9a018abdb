"""Hairpinning: a subscriber reaching another subscriber's external endpoint."""

from scapy.layers.inet import ICMP, IP
from scapy.layers.l2 import Ether
from scapy.packet import Raw

from frames import A1, C1, C2, INSIDE_MAC, POOL1, Echo, Tcp, Udp
from natmodel import NatModel
from scenarios import Scenario, config, scenario


def _inside(sub, dst, l4_layer, ttl=64, ip_id=5):
    return bytes(Ether(src=sub.mac, dst=INSIDE_MAC) / IP(src=sub.ip, dst=dst, id=ip_id, ttl=ttl)
                 / l4_layer)


def _delivered(sub, src, l4_layer, ttl, ip_id=5):
    return bytes(Ether(src=INSIDE_MAC, dst=sub.mac) / IP(src=src, dst=sub.ip, id=ip_id, ttl=ttl)
                 / l4_layer)


@scenario
def rfc4787_req9_hairpin():
    """C2 has UDP and TCP mappings (it talked to A1). C1 sends to C2's external endpoints: the
    packets come back inside to C2 from C1's EXTERNAL address and port (RFC 4787 REQ-9,
    RFC 5382 REQ-8), TTL spent once each way. C1 pinging the pool address is answered by it
    through the same hairpin (RFC 5508 REQ-7)."""
    nat = NatModel([POOL1])
    sc = Scenario(config())
    udp, tcp = Udp(b"to c2"), Tcp()
    ext2_udp = nat.map(C2.ip, 50020, 17)
    ext2_tcp = nat.map(C2.ip, 50030, 6)
    sc.send(C2, 50020, A1, 53, udp, ext2_udp)
    sc.send(C2, 50030, A1, 80, tcp, ext2_tcp)

    ext1_udp = nat.map(C1.ip, 50021, 17)
    ext1_tcp = nat.map(C1.ip, 50031, 6)
    ext1_echo = nat.map(C1.ip, 50022, 1)
    sc.inside_in += [
        _inside(C1, POOL1, udp.outbound(50021, ext2_udp[1])),
        _inside(C1, POOL1, tcp.outbound(50031, ext2_tcp[1])),
        _inside(C1, POOL1, ICMP(type=8, id=50022, seq=1) / Raw(b"hairpin ping")),
    ]
    sc.inside_out += [
        _delivered(C2, POOL1, udp.outbound(ext1_udp[1], 50020), ttl=62),
        _delivered(C2, POOL1, tcp.outbound(ext1_tcp[1], 50030), ttl=62),
        # The pool address's answer (TTL 64) reaches C1 through C1's echo mapping.
        _delivered(C1, POOL1, ICMP(type=0, id=50022, seq=1) / Raw(b"hairpin ping"), ttl=63),
    ]
    assert ext1_echo[1] == 50022
    sc.counters = dict(in2out_rx=5, in2out_tx=2, in2out_translated=5, out2in_tx=3,
                       out2in_translated=3, hairpinned=3, pool_echo_replies_sent=1,
                       mappings_created=5, sessions_created=5, port_preserved=5)
    return sc
