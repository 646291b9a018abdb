"""Running out of ports: drop new mappings, keep every existing one (RFC 6888 REQ-11,
RFC 7857 section 4).

These scenarios have more than 32 frames a side, so they rely on the bursts interleaving: the
worker translates inside frames 1-32, then outside frames 1-32, then inside 33-64, outside
33-64, and so on. The outside frames are laid out so that each reply arrives in the burst
after the packet that opened its mapping.
"""

from frames import A1, A2, C1, C2, POOL1, POOL2, Tcp, Udp
from natmodel import NatModel
from scenarios import Scenario, config, scenario, traffic
from scenarios.mapping import subscribers_for

RANGE = (40000, 40063)  # the smallest range the config accepts: 64 ports
BURST = 32


def _replies_by_burst(sc, sends, exts):
    """Replies to the mapped flows of each inside burst, as the matching outside burst. Every
    burst but the last must be full for the bursts to stay aligned."""
    bursts = [list(zip(sends, exts))[i:i + BURST] for i in range(0, len(sends), BURST)]
    for n, burst in enumerate(bursts):
        before = len(sc.outside_in)
        for (sub, port, remote, rport, l4), ext in burst:
            if ext is not None:
                sc.reply(sub, port, remote, rport, l4, ext)
        assert n == len(bursts) - 1 or len(sc.outside_in) - before == BURST


@scenario
def rfc6888_req11_port_exhaustion():
    """A 64-port range. C2 opens 4 UDP flows, then C1 opens 70: exactly the 64 ports are handed
    out, as the model's Algorithm 4 chooses them (C1's searches run into C2's ports and wrap
    to the start of the range; C1's first 40 source ports are even, so some get odd ports once
    the even ones are gone: keeping the mapping beats keeping parity). The last 10 flows are
    dropped as drop_ports_exhausted, and replies to the first mappings, sent after the
    exhaustion, still translate. TCP has its own ports and still gets one."""
    nat = NatModel([POOL1], port_range=RANGE)
    # ICMP 3/1 on refusal has its own scenario (limits.py); here only the ports matter.
    sc = Scenario(config(port_range="%d-%d" % RANGE, icmp=dict(unreachable=False)))
    sends = [(C2, 21000 + 2 * i, A2, 53, Udp(b"C2 %d" % i)) for i in range(4)]
    sends += [(C1, port, A1, 53, Udp(b"C1 %d" % port))
              for port in [20000 + 2 * i for i in range(40)] + [30001 + 2 * i for i in range(30)]]
    sends.append((C1, 20000, A2, 443, Tcp()))
    exts = [nat.map(sub.ip, port, l4.proto) for sub, port, _, _, l4 in sends]
    granted = sorted(e.port for e, s in zip(exts, sends) if e is not None and s[4].proto == 17)
    assert granted == list(range(RANGE[0], RANGE[1] + 1)) and exts[64:74] == [None] * 10
    assert nat.ports.wraps > 0 and nat.ports.parity_fallbacks > 0
    for (sub, port, remote, rport, l4), ext in zip(sends, exts):
        if ext is None:
            sc.send_dropped(sub, port, remote, rport, l4)
        else:
            sc.send(sub, port, remote, rport, l4, ext)
    _replies_by_burst(sc, sends, exts)
    # After the drops (outside burst 3 follows inside burst 3): the first mappings still work.
    for i in (0, 4, 63):
        sub, port, remote, rport, _ = sends[i]
        sc.reply(sub, port, remote, rport, Udp(b"after exhaustion"), exts[i])
    sc.counters = traffic(sc, mappings_created=65, sessions_created=65, drop_ports_exhausted=10)
    sc.gauges = dict(live_mappings=65, live_sessions=65)
    return sc


@scenario
def rfc7857_s4_paired_pool_exhaustion():
    """Pool of two addresses, 64 ports each. S1 uses up the UDP ports of its address: its
    next UDP flow is dropped, not moved to the other address (paired pooling, RFC 7857
    section 4), while its TCP still maps there. S2, which prefers that address too, is new, so
    it is anchored to the other address, for UDP and then for TCP as well. The address that
    runs out is the second one, so that "start at the hashed address" is tested too."""
    pool = [POOL1, POOL2]
    nat = NatModel(pool, port_range=RANGE)
    sc = Scenario(config(pool=pool, port_range="%d-%d" % RANGE, icmp=dict(unreachable=False)))
    _, s1, _, s2 = subscribers_for(nat, pool, 2)  # s1 and s2 both prefer POOL2
    assert nat.anchor_of(s1.ip) == nat.anchor_of(s2.ip) == POOL2
    udp = Udp()
    sends = [(s1, 30000 + i, A1, 53, udp) for i in range(65)]
    sends += [(s1, 30100, A1, 80, Tcp()), (s2, 30000, A2, 53, udp), (s2, 30001, A2, 80, Tcp())]
    exts = [nat.map(sub.ip, port, l4.proto) for sub, port, _, _, l4 in sends]
    assert exts[64] is None and all(e.ip == POOL2 for e in exts[:64] + exts[65:66])
    assert exts[66].ip == exts[67].ip == POOL1
    for (sub, port, remote, rport, l4), ext in zip(sends, exts):
        if ext is None:
            sc.send_dropped(sub, port, remote, rport, l4)
        else:
            sc.send(sub, port, remote, rport, l4, ext)
    _replies_by_burst(sc, sends, exts)
    sc.counters = traffic(sc, mappings_created=67, sessions_created=67, drop_ports_exhausted=1)
    sc.gauges = dict(live_mappings=67)
    return sc
