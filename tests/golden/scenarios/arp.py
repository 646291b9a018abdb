"""What ephemera does as a host on its two segments: ARP and pings to the inside gateway."""

from scapy.layers.inet import ICMP, IP, UDP
from scapy.layers.l2 import ARP, Ether
from scapy.packet import Raw

from frames import (BROADCAST, C1, C2, GATEWAY, INSIDE_MAC, NEXT_HOP, NEXT_HOP_MAC, OUTSIDE_MAC,
                    POOL1, A1, Udp, arp_reply, arp_request)
from scenarios import Frame, Scenario, by_worker, config, scenario, subscriber_of

HOST3 = ("02:00:00:00:00:03", "198.18.0.3")  # another host on the outside segment
ETHER_PAD = bytes(18)                        # a 42-byte ARP frame padded to the minimum 60


@scenario
def arp_and_gateway_ping(workers):
    """ARP requests for the inside gateway (inside) and for a pool address (outside) are
    answered from the port's MAC, padding kept; a reply from the next hop is counted as
    received; other ARP is ignored and counted; a ping to
    the gateway is answered (TTL 64, checksums right); other traffic to it is dropped. All by
    the worker that receives them: nothing is handed off."""
    sc = Scenario(config())
    ignored_inside = [
        arp_request(C1.mac, C1.ip, "100.64.0.99"),                   # another host
        arp_request(C1.mac, C1.ip, POOL1),                           # pool: outside only
        arp_reply(C1.mac, C1.ip, BROADCAST, C1.ip),                  # gratuitous reply
        bytes(Ether(src=C1.mac, dst=BROADCAST)
              / ARP(hwtype=6, op=1, hwsrc=C1.mac, psrc=C1.ip, pdst=GATEWAY)),  # not Ethernet
        arp_request(C1.mac, C1.ip, GATEWAY)[:30],                    # truncated
    ]
    ping = (Ether(src=C1.mac, dst=INSIDE_MAC)
            / IP(src=C1.ip, dst=GATEWAY, ttl=32, id=0x77, flags="DF")
            / ICMP(type=8, id=0x4242, seq=5) / Raw(b"are you there, gateway?"))
    pong = (Ether(src=INSIDE_MAC, dst=C1.mac)
            / IP(src=GATEWAY, dst=C1.ip, ttl=64, id=0x77, flags="DF")
            / ICMP(type=0, id=0x4242, seq=5) / Raw(b"are you there, gateway?"))
    sc.inside_in = [
        arp_request(C1.mac, C1.ip, GATEWAY),
        arp_request(C2.mac, C2.ip, GATEWAY, pad=ETHER_PAD),
        *ignored_inside,
        bytes(ping),
        bytes(Ether(src=C1.mac, dst=INSIDE_MAC) / IP(src=C1.ip, dst=GATEWAY) / UDP(dport=53)),
    ]
    sc.inside_out = [Frame(f, by_worker(0)) for f in (
        arp_reply(INSIDE_MAC, GATEWAY, C1.mac, C1.ip),
        arp_reply(INSIDE_MAC, GATEWAY, C2.mac, C2.ip, pad=ETHER_PAD),
        bytes(pong),
    )]
    ignored_outside = [
        arp_request(HOST3[0], HOST3[1], "198.18.0.55"),
        arp_request(HOST3[0], HOST3[1], GATEWAY),
    ]
    sc.outside_in = [
        arp_request(HOST3[0], HOST3[1], POOL1, pad=ETHER_PAD),
        arp_request(NEXT_HOP_MAC, NEXT_HOP, POOL1),
        arp_reply("02:00:00:00:00:99", NEXT_HOP, OUTSIDE_MAC, POOL1),  # not learned: configured
        *ignored_outside,
    ]
    sc.outside_out = [Frame(f, by_worker(0)) for f in (
        arp_reply(OUTSIDE_MAC, POOL1, HOST3[0], HOST3[1], pad=ETHER_PAD),
        arp_reply(OUTSIDE_MAC, POOL1, NEXT_HOP_MAC, NEXT_HOP),
    )]
    sc.counters = dict(in2out_rx=len(sc.inside_in), out2in_rx=len(sc.outside_in),
                       in2out_tx=2, out2in_tx=3, arp_replies_sent=4, icmp_echo_replies_sent=1,
                       arp_replies_received=1, drop_arp_ignored=len(ignored_inside) + len(ignored_outside),
                       drop_not_for_us=1)
    return sc


@scenario
def arp_next_hop_learning(workers):
    """Without next_hop_mac, worker 0 asks for the next hop (who-has NEXT_HOP tell the first
    pool address, from the outside MAC, padded to 60 bytes) and learns it from the reply. A
    packet that arrives before the MAC is known is dropped as drop_nexthop_unresolved. The run
    lasts past the 1 s retry interval: a second request would mean nothing was learned.
    The packet's subscriber is one worker 0 owns, so worker 0 handles it before it reads the
    reply; handed to another worker, it would race the control thread, which learns the MAC
    from the reply as soon as worker 0 reads it."""
    sc = Scenario(config(next_hop_mac=None), min_runtime=1.6)
    sc.send_dropped(subscriber_of(workers, 0), 50000, A1, 53, Udp())
    sc.outside_in = [arp_reply(NEXT_HOP_MAC, NEXT_HOP, OUTSIDE_MAC, POOL1)]
    sc.outside_out = [Frame(bytes(Ether(src=OUTSIDE_MAC, dst=BROADCAST)
                                  / ARP(op=1, hwsrc=OUTSIDE_MAC, psrc=POOL1,
                                        hwdst="00:00:00:00:00:00", pdst=NEXT_HOP)) + ETHER_PAD,
                            by_worker(0))]
    sc.stdout = ["ephemera: next hop %s is at %s" % (NEXT_HOP, NEXT_HOP_MAC)]
    sc.counters = dict(in2out_rx=1, out2in_rx=1, in2out_tx=1, arp_requests_sent=1,
                       arp_replies_received=1, drop_nexthop_unresolved=1)
    return sc
