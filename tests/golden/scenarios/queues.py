"""Input on every rx queue: every worker receives, and hands frames to every other one.

Every other scenario feeds its input through rx queue 0, so that only worker 0 receives and
the 1-worker order holds. Here each rx queue carries frames for every worker. Frames that
arrive on different queues reach their worker by different rings, in no fixed order, so
nothing here depends on another frame: each inside frame makes its own mapping with a kept
port, and the outside frames need no mapping (pings to the pool address, probes of ports
without one). A reply to one of the new mappings could overtake it, so there are none.
"""

from scapy.layers.inet import ICMP, IP
from scapy.layers.l2 import Ether
from scapy.packet import Raw

import frames
from frames import (A1, A2, GATEWAY, INSIDE_MAC, NEXT_HOP_MAC, OUTSIDE_MAC, POOL1, Udp,
                    arp_reply, arp_request)
from natmodel import NatModel
from scenarios import (Frame, Scenario, by_port, by_subscriber, by_worker, config, kept_ports,
                       scenario, subscriber_of)


def _owned(nat, worker, count, start):
    """`count` ports (or identifiers) from `start` up that `worker` owns."""
    return [p for p in range(start, 65536) if nat.owners.port(POOL1, p) == worker][:count]


@scenario
def handoff_from_every_queue(workers):
    """For every rx queue q and every worker w: a subscriber of w sends two UDP packets from
    ports w owns into inside queue q, which w translates (ports kept) and sends out of its own
    tx queue; a ping to the pool address with an identifier w owns, into outside queue q, is
    answered by w; a UDP packet to a port w owns that has no mapping is dropped by w. A ping
    to the gateway and ARP requests for the gateway and the pool address, into queue q, are
    answered by worker q, which receives them. Each frame whose queue is not its owner's is a
    handoff: with N workers, N - 1 of every N translated, answered or dropped by an owner."""
    nat = NatModel([POOL1], workers=workers)
    sc = Scenario(config())
    subs = [subscriber_of(workers, w) for w in range(workers)]
    flows = {w: kept_ports(nat, subs[w], 2 * workers) for w in range(workers)}
    ids = {w: _owned(nat, w, workers, 1000) for w in range(workers)}
    probes = {w: _owned(nat, w, workers, 30000) for w in range(workers)}
    for q in range(workers):
        for w, sub in enumerate(subs):
            for port in flows[w][2 * q:2 * q + 2]:
                ext = nat.map(sub.ip, port, 17)
                assert ext.preserved
                frame, out = frames.in2out(sub, port, A1, 53, Udp(b"q%d w%d" % (q, w)), ext)
                sc.inside_in.append(Frame(frame, by_subscriber(sub), queue=q))
                sc.outside_out.append(Frame(out, by_subscriber(sub), stream=("in", q)))
        ping = (Ether(src=subs[0].mac, dst=INSIDE_MAC) / IP(src=subs[0].ip, dst=GATEWAY, id=q)
                / ICMP(type=8, id=q, seq=1) / Raw(b"gateway"))
        pong = (Ether(src=INSIDE_MAC, dst=subs[0].mac) / IP(src=GATEWAY, dst=subs[0].ip, id=q)
                / ICMP(type=0, id=q, seq=1) / Raw(b"gateway"))
        sc.inside_in.append(Frame(ping, queue=q))
        sc.inside_out.append(Frame(pong, by_worker(q), stream=("in", q)))
        host = ("02:00:00:00:00:%02x" % (0x10 + q), "100.64.0.%d" % (200 + q))
        sc.inside_in.append(Frame(arp_request(host[0], host[1], GATEWAY), queue=q))
        sc.inside_out.append(Frame(arp_reply(INSIDE_MAC, GATEWAY, *host), by_worker(q),
                                   stream=("in", q)))
        host = ("02:00:00:00:00:%02x" % (0x20 + q), "198.18.0.%d" % (10 + q))
        sc.outside_in.append(Frame(arp_request(host[0], host[1], POOL1), queue=q))
        sc.outside_out.append(Frame(arp_reply(OUTSIDE_MAC, POOL1, *host), by_worker(q),
                                    stream=("out", q)))
        for w in range(workers):
            owner = by_port((POOL1, ids[w][q]))
            ping = (Ether(src=NEXT_HOP_MAC, dst=OUTSIDE_MAC) / IP(src=A2, dst=POOL1, id=q, ttl=50)
                    / ICMP(type=8, id=ids[w][q], seq=q) / Raw(b"pool"))
            pong = (Ether(src=OUTSIDE_MAC, dst=NEXT_HOP_MAC) / IP(src=POOL1, dst=A2, id=q, ttl=64)
                    / ICMP(type=0, id=ids[w][q], seq=q) / Raw(b"pool"))
            sc.outside_in.append(Frame(ping, owner, queue=q))
            sc.outside_out.append(Frame(pong, owner, stream=("out", q)))
            assert not nat.is_mapped(POOL1, probes[w][q], 17)
            probe = frames.inbound_only(A1, 53, Udp(b"no mapping"), POOL1, probes[w][q])
            sc.outside_in.append(Frame(probe, by_port((POOL1, probes[w][q])), queue=q))
    n = workers * workers
    sc.counters = dict(in2out_rx=2 * n + 2 * workers, out2in_rx=2 * n + workers,
                       in2out_tx=3 * n + workers, out2in_tx=2 * workers, in2out_translated=2 * n,
                       mappings_created=2 * n, sessions_created=2 * n, port_preserved=2 * n,
                       pool_echo_replies_sent=n, icmp_echo_replies_sent=workers,
                       arp_replies_sent=2 * workers, drop_no_mapping=n)
    sc.gauges = dict(live_mappings=2 * n, live_sessions=2 * n)
    return sc
