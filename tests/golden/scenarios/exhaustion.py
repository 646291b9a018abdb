"""Running out of ports: drop new mappings, keep every existing one (RFC 6888 REQ-11,
RFC 7857 section 4). Each worker has its own share of the range (with N workers, 64 / N of
these 64 ports) and runs out of it on its own.

These scenarios have more than 32 frames a side with fewer workers, so they rely on the
bursts interleaving: worker 0 reads inside frames 1-32, then outside frames 1-32, then inside
33-64, outside 33-64, and so on. The outside frames are laid out so that each reply arrives in
the burst after the packet that opened its mapping, or in the same one: an outside burst that
holds fewer replies than 32 is filled up with frames for another MAC, which the receiving
worker drops on arrival (drop_not_for_us).
"""

import ipaddress

from frames import A1, A2, C1, C2, POOL1, POOL2, Sub, Tcp, Udp, inbound_only
from natmodel import NatModel
from scenarios import Scenario, config, scenario, subscriber_of, traffic

RANGE = (40000, 40063)  # the smallest range the config accepts: 64 ports
BURST = 32
OTHER_MAC = "02:00:00:00:00:99"


def _replies_by_burst(sc, sends, exts):
    """Replies to the mapped flows of each inside burst, as the matching outside burst, each
    but the last filled up to a whole burst. Returns how many filler frames were added."""
    bursts = [list(zip(sends, exts))[i:i + BURST] for i in range(0, len(sends), BURST)]
    fillers = 0
    for n, burst in enumerate(bursts):
        before = len(sc.outside_in)
        for (sub, port, remote, rport, l4), ext in burst:
            if ext is not None:
                sc.reply(sub, port, remote, rport, l4, ext)
        if n < len(bursts) - 1:
            missing = BURST - (len(sc.outside_in) - before)
            sc.outside_in += [inbound_only(A1, 9, Udp(b"filler"), POOL1, RANGE[0],
                                           dst_mac=OTHER_MAC)] * missing
            fillers += missing
    return fillers


@scenario
def rfc6888_req11_port_exhaustion(workers):
    """A 64-port range; C1's worker owns S = 64 / workers of its ports. C2 (with several
    workers, another subscriber of C1's worker) opens 4 UDP flows, then C1 opens S - 4 + 10:
    exactly the worker's S ports are handed out, as the model's Algorithm 4 chooses them. C1
    asks first with odd source ports, then with S/2 + S/8 even ones, more than the even ports
    C2 left, so some get odd ports once the even ones are gone (keeping the mapping beats
    keeping parity), and some searches run into taken ports and wrap to the start of the range
    (both asserted of the model, so the scenario keeps exercising them). The last 10 flows are
    dropped as drop_ports_exhausted, and replies to the first mappings, sent after the
    exhaustion, still translate. TCP has its own ports and still gets one, and so does a
    subscriber of another worker (with several): each worker runs out of its own ports."""
    nat = NatModel([POOL1], port_range=RANGE, workers=workers)
    # ICMP 3/1 on refusal has its own scenario (limits.py); here only the ports matter.
    sc = Scenario(config(port_range="%d-%d" % RANGE, icmp=dict(unreachable=False)))
    mine = nat.worker_of(C1.ip)
    c2 = C2 if workers == 1 else subscriber_of(workers, mine, skip=(C1.ip,))
    ports = nat.workers[mine].slots[0]
    even = len(ports) // 2 + len(ports) // 8   # 40 with one worker
    odd = len(ports) - 4 - even + 10           # 30
    sends = [(c2, 21000 + 2 * i, A2, 53, Udp(b"C2 %d" % i)) for i in range(4)]
    c1_ports = [30001 + 2 * i for i in range(odd)] + [20000 + 2 * i for i in range(even)]
    sends += [(C1, port, A1, 53, Udp(b"C1 %d" % port)) for port in c1_ports]
    sends.append((C1, 20000, A2, 443, Tcp()))
    if workers > 1:
        other = subscriber_of(workers, (mine + 1) % workers)
        sends.append((other, 20000, A1, 53, Udp(b"another worker")))
    exts = [nat.map(sub.ip, port, l4.proto) for sub, port, _, _, l4 in sends]
    granted = sorted(e.port for e, (sub, *_, l4) in zip(exts, sends)
                     if e is not None and sub in (C1, c2) and l4.proto == 17)
    assert granted == ports and exts[len(ports):len(ports) + 10] == [None] * 10
    assert all(e is not None for e in exts[len(ports) + 10:])
    assert nat.wraps > 0 and nat.parity_fallbacks > 0
    for (sub, port, remote, rport, l4), ext in zip(sends, exts):
        if ext is None:
            sc.send_dropped(sub, port, remote, rport, l4)
        else:
            sc.send(sub, port, remote, rport, l4, ext)
    fillers = _replies_by_burst(sc, sends, exts)
    # After the drops (outside burst 3 follows inside burst 3): the first mappings still work.
    for i in (0, 4, len(ports) - 1):
        sub, port, remote, rport, _ = sends[i]
        sc.reply(sub, port, remote, rport, Udp(b"after exhaustion"), exts[i])
    mapped = len(sends) - 10
    sc.counters = traffic(sc, mappings_created=mapped, sessions_created=mapped,
                          port_preserved=nat.preserved(), drop_ports_exhausted=10,
                          drop_not_for_us=fillers)
    sc.gauges = dict(live_mappings=mapped, live_sessions=mapped)
    return sc


def _same_worker_pair(nat, workers, address):
    """Two subscribers (from 100.64.0.20 up) that prefer `address` and have the same owner."""
    by_worker = {}
    addr = ipaddress.IPv4Address("100.64.0.20")
    candidates = [str(addr + i) for i in range(200)]
    nat.owners.ask_subscribers(candidates)
    for ip in candidates:
        if nat.anchor_of(ip) == address:
            subs = by_worker.setdefault(nat.worker_of(ip), [])
            subs.append(Sub(ip, "02:00:00:00:02:%02x" % (int(ipaddress.IPv4Address(ip)) & 0xFF)))
            if len(subs) == 2:
                return subs
    raise AssertionError("no two subscribers of one worker prefer %s" % address)


@scenario
def rfc7857_s4_paired_pool_exhaustion(workers):
    """Pool of two addresses, 64 ports each, S = 64 / workers of them on each worker. S1 uses
    up its worker's UDP ports on its address: its next UDP flow is dropped, not moved to the
    other address (paired pooling, RFC 7857 section 4), while its TCP still maps there. S2,
    which prefers that address too and has the same worker, is new, so it is anchored to the
    other address, for UDP and then for TCP as well. The address that runs out is the second
    one, so that "start at the hashed address" is tested too."""
    pool = [POOL1, POOL2]
    nat = NatModel(pool, port_range=RANGE, workers=workers)
    sc = Scenario(config(pool=pool, port_range="%d-%d" % RANGE, icmp=dict(unreachable=False)))
    s1, s2 = _same_worker_pair(nat, workers, POOL2)
    size = len(nat.workers[nat.worker_of(s1.ip)].slots[1])
    udp = Udp()
    sends = [(s1, 30000 + i, A1, 53, udp) for i in range(size + 1)]
    sends += [(s1, 30100, A1, 80, Tcp()), (s2, 30000, A2, 53, udp), (s2, 30001, A2, 80, Tcp())]
    exts = [nat.map(sub.ip, port, l4.proto) for sub, port, _, _, l4 in sends]
    assert exts[size] is None and all(e.ip == POOL2 for e in exts[:size] + exts[size + 1:size + 2])
    assert exts[size + 2].ip == exts[size + 3].ip == POOL1
    for (sub, port, remote, rport, l4), ext in zip(sends, exts):
        if ext is None:
            sc.send_dropped(sub, port, remote, rport, l4)
        else:
            sc.send(sub, port, remote, rport, l4, ext)
    fillers = _replies_by_burst(sc, sends, exts)
    sc.counters = traffic(sc, mappings_created=size + 3, sessions_created=size + 3,
                          port_preserved=nat.preserved(), drop_ports_exhausted=1,
                          drop_not_for_us=fillers)
    sc.gauges = dict(live_mappings=size + 3)
    return sc
