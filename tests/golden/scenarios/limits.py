"""Per-subscriber limits and what a refused subscriber is told (RFC 6888 REQ-4, REQ-5, REQ-11).

Source ports here are inside the IANA range and free, so every granted mapping keeps its
port: the expected external endpoints need no model.
"""

from frames import A1, A2, C1, C2, POOL1, Tcp, Udp
from scenarios import Scenario, config, scenario, traffic


def _translations(sc, refused, **counters):
    """traffic() for scenarios where some inside output is ICMP, not translations."""
    return traffic(sc, out2in_translated=len(sc.inside_out) - refused, **counters)


@scenario
def rfc6888_req4_subscriber_port_limit():
    """subscriber_ports_udp = 2: C1's third UDP mapping is refused with ICMP 3/1 from the
    gateway, quoting the packet; its TCP (its own limit) and C2 are not affected."""
    sc = Scenario(config(limits=dict(subscriber_ports_udp=2)))
    sc.send(C1, 50000, A1, 53, Udp(b"one"), (POOL1, 50000))
    sc.send(C1, 50002, A1, 53, Udp(b"two"), (POOL1, 50002))
    sc.send_refused(C1, 50004, A1, 53, Udp(b"three: over the limit"))
    sc.send(C1, 50006, A1, 80, Tcp(), (POOL1, 50006))
    sc.send(C2, 50008, A1, 53, Udp(b"other subscriber"), (POOL1, 50008))
    sc.counters = _translations(sc, 1, mappings_created=4, sessions_created=4, port_preserved=4,
                                drop_subscriber_ports=1, icmp_unreachable_sent=1)
    sc.gauges = dict(live_mappings=4, live_sessions=4)
    return sc


@scenario
def rfc6888_req5_subscriber_session_limit():
    """subscriber_sessions = 2: one socket's third destination is refused. The refused packet
    is 1000 bytes, so the ICMP error quotes only what fits in 576 bytes (RFC 1812 4.3.2.3)."""
    sc = Scenario(config(limits=dict(subscriber_sessions=2)))
    sc.send(C1, 50000, A1, 53, Udp(b"first"), (POOL1, 50000))
    sc.send(C1, 50000, A2, 53, Udp(b"second"), (POOL1, 50000))
    sc.send_refused(C1, 50000, A1, 54, Udp(bytes(i % 251 for i in range(1000))))
    sc.counters = _translations(sc, 1, mappings_created=1, sessions_created=2, port_preserved=1,
                                drop_subscriber_sessions=1, icmp_unreachable_sent=1)
    sc.gauges = dict(live_mappings=1, live_sessions=2)
    return sc


@scenario
def rfc6888_req11_icmp_rate_limit():
    """icmp.unreachable_rate = 1 per second: of three refusals in a burst, the first is
    answered and the other two only counted."""
    sc = Scenario(config(limits=dict(subscriber_ports_udp=1), icmp=dict(unreachable_rate=1)))
    sc.send(C1, 50000, A1, 53, Udp(), (POOL1, 50000))
    sc.send_refused(C1, 50002, A1, 53, Udp(b"refused, answered"))
    sc.send_dropped(C1, 50004, A1, 53, Udp(b"refused, rate-limited"))
    sc.send_dropped(C1, 50006, A1, 53, Udp(b"refused, rate-limited"))
    sc.counters = _translations(sc, 1, mappings_created=1, sessions_created=1, port_preserved=1,
                                drop_subscriber_ports=3, icmp_unreachable_sent=1,
                                icmp_unreachable_rate_limited=2)
    return sc


@scenario
def rfc6888_req4_mapping_rate_limit():
    """subscriber_mapping_rate = 1 with a burst of 2: a subscriber's third new mapping in the
    same instant is refused (drop_subscriber_rate), while a new session on an existing mapping
    needs no token. ICMP is off: the refusal is only counted."""
    sc = Scenario(config(limits=dict(subscriber_mapping_rate=1, subscriber_mapping_burst=2),
                         icmp=dict(unreachable=False)))
    sc.send(C1, 50000, A1, 53, Udp(), (POOL1, 50000))
    sc.send(C1, 50002, A1, 53, Udp(), (POOL1, 50002))
    sc.send_dropped(C1, 50004, A1, 53, Udp())
    sc.send(C1, 50000, A2, 53, Udp(), (POOL1, 50000))
    sc.send(C2, 50006, A1, 53, Udp(), (POOL1, 50006))
    sc.counters = traffic(sc, mappings_created=3, sessions_created=4, port_preserved=3,
                          drop_subscriber_rate=1)
    return sc
