"""Per-subscriber limits and what a refused subscriber is told (RFC 6888 REQ-4, REQ-5, REQ-11).

A subscriber's limits live on its worker, so they hold whatever the worker count; the ICMP
rate limit is a bucket per worker. Granted mappings get the model's external endpoints (with
one worker every source port here is kept); refused packets are never shown to the model.
"""

from frames import A1, A2, C1, C2, POOL1, Tcp, Udp
from natmodel import NatModel
from scenarios import Scenario, config, scenario, subscriber_of, subscribers_of, traffic


def _translations(sc, refused, **counters):
    """traffic() for scenarios where some inside output is ICMP, not translations."""
    return traffic(sc, out2in_translated=len(sc.inside_out) - refused, **counters)


@scenario
def rfc6888_req4_subscriber_port_limit(workers):
    """subscriber_ports_udp = 2: C1's third UDP mapping is refused with ICMP 3/1 from the
    gateway, quoting the packet; its TCP (its own limit) and C2 are not affected."""
    nat = NatModel([POOL1], workers=workers)
    sc = Scenario(config(limits=dict(subscriber_ports_udp=2)))
    sc.send(C1, 50000, A1, 53, Udp(b"one"), nat.map(C1.ip, 50000, 17))
    sc.send(C1, 50002, A1, 53, Udp(b"two"), nat.map(C1.ip, 50002, 17))
    sc.send_refused(C1, 50004, A1, 53, Udp(b"three: over the limit"))
    sc.send(C1, 50006, A1, 80, Tcp(), nat.map(C1.ip, 50006, 6))
    sc.send(C2, 50008, A1, 53, Udp(b"other subscriber"), nat.map(C2.ip, 50008, 17))
    assert workers > 1 or nat.preserved() == 4
    sc.counters = _translations(sc, 1, mappings_created=4, sessions_created=4,
                                port_preserved=nat.preserved(), drop_subscriber_ports=1,
                                icmp_unreachable_sent=1)
    sc.gauges = dict(live_mappings=4, live_sessions=4)
    return sc


@scenario
def rfc6888_req5_subscriber_session_limit(workers):
    """subscriber_sessions = 2: one socket's third destination is refused. The refused packet
    is 1000 bytes, so the ICMP error quotes only what fits in 576 bytes (RFC 1812 4.3.2.3)."""
    nat = NatModel([POOL1], workers=workers)
    sc = Scenario(config(limits=dict(subscriber_sessions=2)))
    ext = nat.map(C1.ip, 50000, 17)
    sc.send(C1, 50000, A1, 53, Udp(b"first"), ext)
    sc.send(C1, 50000, A2, 53, Udp(b"second"), ext)
    sc.send_refused(C1, 50000, A1, 54, Udp(bytes(i % 251 for i in range(1000))))
    sc.counters = _translations(sc, 1, mappings_created=1, sessions_created=2,
                                port_preserved=nat.preserved(), drop_subscriber_sessions=1,
                                icmp_unreachable_sent=1)
    sc.gauges = dict(live_mappings=1, live_sessions=2)
    return sc


@scenario
def rfc6888_req11_icmp_rate_limit(workers):
    """icmp.unreachable_rate = 1 per second: of three refusals of C1 in a burst, the first is
    answered and the other two only counted. The bucket is its worker's: a refusal of a
    subscriber of another worker (with several) is answered from that worker's own bucket;
    with one worker, C2's refusal finds the bucket C1 emptied and is only counted."""
    nat = NatModel([POOL1], workers=workers)
    sc = Scenario(config(limits=dict(subscriber_ports_udp=1), icmp=dict(unreachable_rate=1)))
    mine = nat.worker_of(C1.ip)
    other = C2 if workers == 1 else subscriber_of(workers, (mine + 1) % workers)
    sc.send(C1, 50000, A1, 53, Udp(), nat.map(C1.ip, 50000, 17))
    sc.send_refused(C1, 50002, A1, 53, Udp(b"refused, answered"))
    sc.send_dropped(C1, 50004, A1, 53, Udp(b"refused, rate-limited"))
    sc.send_dropped(C1, 50006, A1, 53, Udp(b"refused, rate-limited"))
    sc.send(other, 50008, A1, 53, Udp(), nat.map(other.ip, 50008, 17))
    own_bucket = nat.worker_of(other.ip) != mine
    assert own_bucket == (workers > 1)
    if own_bucket:
        sc.send_refused(other, 50010, A1, 53, Udp(b"refused, its worker's bucket"))
    else:
        sc.send_dropped(other, 50010, A1, 53, Udp(b"refused, rate-limited"))
    sc.counters = _translations(sc, 1 + own_bucket, mappings_created=2, sessions_created=2,
                                port_preserved=nat.preserved(), drop_subscriber_ports=4,
                                icmp_unreachable_sent=1 + own_bucket,
                                icmp_unreachable_rate_limited=3 - own_bucket)
    return sc


@scenario
def rfc6888_req4_mapping_rate_limit(workers):
    """subscriber_mapping_rate = 1 with a burst of 2: a subscriber's third new mapping in the
    same instant is refused (drop_subscriber_rate), while a new session on an existing mapping
    needs no token. ICMP is off: the refusal is only counted."""
    nat = NatModel([POOL1], workers=workers)
    sc = Scenario(config(limits=dict(subscriber_mapping_rate=1, subscriber_mapping_burst=2),
                         icmp=dict(unreachable=False)))
    sc.send(C1, 50000, A1, 53, Udp(), nat.map(C1.ip, 50000, 17))
    sc.send(C1, 50002, A1, 53, Udp(), nat.map(C1.ip, 50002, 17))
    sc.send_dropped(C1, 50004, A1, 53, Udp())
    sc.send(C1, 50000, A2, 53, Udp(), nat.map(C1.ip, 50000, 17))
    sc.send(C2, 50006, A1, 53, Udp(), nat.map(C2.ip, 50006, 17))
    sc.counters = traffic(sc, mappings_created=3, sessions_created=4,
                          port_preserved=nat.preserved(), drop_subscriber_rate=1)
    return sc


@scenario
def max_subscribers_per_worker(workers):
    """limits.max_subscribers = 4 is shared out among the workers, a ceiling of 4 / N each:
    on each worker the subscriber after its share is refused (drop_subscribers_exhausted,
    ICMP 3/1), whatever the other workers hold. Each worker gets one subscriber more than its
    share, the workers' subscribers interleaved."""
    share = -(-4 // workers)
    nat = NatModel([POOL1], workers=workers)
    sc = Scenario(config(limits=dict(max_subscribers=4)))
    per_worker = [subscribers_of(workers, w, share + 1) for w in range(workers)]
    granted = []
    for rank in range(share + 1):
        for subs in per_worker:
            if rank < share:
                ext = nat.map(subs[rank].ip, 50000, 17)
                sc.send(subs[rank], 50000, A1, 53, Udp(b"within the share"), ext)
                granted.append((subs[rank], ext))
            else:
                sc.send_refused(subs[rank], 50000, A1, 53, Udp(b"over the share"))
    for sub, ext in granted:
        sc.reply(sub, 50000, A1, 53, Udp(b"reply"), ext)
    sc.counters = _translations(sc, workers, mappings_created=len(granted),
                                sessions_created=len(granted), port_preserved=nat.preserved(),
                                drop_subscribers_exhausted=workers,
                                icmp_unreachable_sent=workers)
    sc.gauges = dict(live_mappings=len(granted), live_sessions=len(granted))
    return sc
