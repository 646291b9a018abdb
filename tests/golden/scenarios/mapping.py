"""How mappings are shared and kept apart: EIM, no port overloading, paired pooling."""

import ipaddress

from frames import A1, A2, C1, C2, C3, POOL1, POOL2, Echo, Sub, Tcp, Udp
from natmodel import NatModel
from scenarios import Scenario, config, scenario, traffic


@scenario
def rfc4787_req1_eim(workers):
    """One inside endpoint talking to several remotes gets one external endpoint: UDP (RFC 4787
    REQ-1), TCP (RFC 5382 REQ-1) and ICMP echo (RFC 5508 REQ-1). The source port is not kept,
    so a mapping per destination would draw a new Algorithm 4 port each time."""
    nat = NatModel([POOL1], workers=workers)
    sc = Scenario(config())
    talks = [
        (Udp(), [(A1, 53), (A1, 54), (A2, 53)]),
        (Tcp(), [(A1, 80), (A2, 80)]),
        (Echo(), [(A1, 0), (A2, 0)]),
    ]
    for l4, remotes in talks:
        ext = nat.map(C1.ip, 4000, l4.proto)
        for remote, rport in remotes:
            sc.send(C1, 4000, remote, rport, l4, ext)
    for l4, remotes in talks:
        for remote, rport in remotes:
            sc.reply(C1, 4000, remote, rport, l4, nat.map(C1.ip, 4000, l4.proto))
    sc.counters = traffic(sc, mappings_created=3, sessions_created=7)
    return sc


@scenario
def rfc4787_req3_no_port_overloading(workers):
    """Three subscribers send from the same source port to the same server: the first whose
    worker owns the port keeps it (with one worker, the first), the others get different
    ones, and each reply reaches its own subscriber (RFC 4787 REQ-3, RFC 5382 REQ-7)."""
    nat = NatModel([POOL1], workers=workers)
    sc = Scenario(config())
    sends = [(C1, Udp()), (C2, Udp()), (C3, Udp()), (C1, Tcp()), (C2, Tcp())]
    for sub, l4 in sends:
        sc.send(sub, 50020, A1, 53, l4, nat.map(sub.ip, 50020, l4.proto))
    for proto in (17, 6):
        ports = [e.port for k, e in nat.mappings.items() if k[2] == proto]
        assert len(set(ports)) == len(ports)
    for sub, l4 in reversed(sends):
        sc.reply(sub, 50020, A1, 53, l4, nat.map(sub.ip, 50020, l4.proto))
    assert workers > 1 or nat.preserved() == 2
    sc.counters = traffic(sc, mappings_created=5, sessions_created=5,
                          port_preserved=nat.preserved())
    return sc


def subscribers_for(nat, pool, per_address):
    """Subscribers (from 100.64.0.20 up) whose preferred addresses cover the pool evenly."""
    chosen = {a: [] for a in pool}
    addr = ipaddress.IPv4Address("100.64.0.20")
    while any(len(v) < per_address for v in chosen.values()):
        anchor = nat.anchor_of(str(addr))
        if len(chosen[anchor]) < per_address:
            low = int(addr) & 0xFF
            chosen[anchor].append(Sub(str(addr), "02:00:00:00:02:%02x" % low))
        addr += 1
    return [s for subs in zip(*chosen.values()) for s in subs]


@scenario
def rfc4787_req2_paired_pooling(workers):
    """With two pool addresses every mapping of a subscriber, whatever the protocol or
    destination, uses one address: the one the model's hash picks (RFC 4787 REQ-2, RFC 6888
    REQ-2). A reply to the subscriber's port on the other address finds no mapping."""
    pool = [POOL1, POOL2]
    nat = NatModel(pool, workers=workers)
    sc = Scenario(config(pool=pool))
    subs = subscribers_for(nat, pool, 2)
    flows = [(50030, A1, 53, Udp()), (4000, A2, 53, Udp()), (4001, A1, 80, Tcp()),
             (9, A2, 0, Echo())]
    for sub in subs:
        for port, remote, rport, l4 in flows:
            ext = nat.map(sub.ip, port, l4.proto)
            assert ext.ip == nat.anchor_of(sub.ip)
            sc.send(sub, port, remote, rport, l4, ext)
    for sub in subs:
        for port, remote, rport, l4 in flows:
            sc.reply(sub, port, remote, rport, l4, nat.map(sub.ip, port, l4.proto))
    for sub in subs:
        ext = nat.map(sub.ip, 4000, 17)
        other = (set(pool) - {ext.ip}).pop()
        assert not nat.is_mapped(other, ext.port, 17)
        sc.reply_dropped(sub, 4000, A2, 53, Udp(), (other, ext.port))
    # With one worker, 50030 is kept for the first subscriber on each address only.
    assert workers > 1 or nat.preserved() == 2
    sc.counters = traffic(sc, mappings_created=16, sessions_created=16,
                          port_preserved=nat.preserved(), drop_no_mapping=4)
    return sc


@scenario
def rfc4787_req3a_port_classes(workers):
    """With a range that straddles 1024 (960-1087, all but 1020-1023 of the system ports
    reserved), a source port below 1024 maps below 1024 and one above maps above (RFC 4787
    REQ-3a), each by Algorithm 4 within its class of C1's worker's ports; a free source port
    in the range that C1's worker owns is kept. When the system class has no port left on
    C1's worker (with one worker, after four flows; with 2 or 4, C1's worker owns 1022-1023
    only), the flow spills over to the user class, parity kept: a mapping beats no mapping."""
    port_range, reserved = (960, 1087), (960, 1019)
    nat = NatModel([POOL1], port_range=port_range, reserved=[reserved], workers=workers)
    sc = Scenario(config(port_range="%d-%d" % port_range, reserved=["%d-%d" % reserved]))
    flows = [(1022, A1, 53, Udp()), (80, A1, 53, Udp()), (443, A1, 53, Udp()),
             (53, A1, 53, Udp()), (123, A1, 53, Udp()), (5000, A1, 53, Udp()),
             (60001, A1, 53, Udp()), (1030, A1, 53, Udp()),
             (22, A2, 22, Tcp()), (8080, A2, 22, Tcp()), (3, A2, 0, Echo()),
             (3000, A2, 0, Echo())]
    mine = nat.worker_of(C1.ip)
    owned = [p for p in range(1020, 1024) if nat.owners.port(POOL1, p) == mine]
    spilled = []
    for port, remote, rport, l4 in flows:
        ext = nat.map(C1.ip, port, l4.proto)
        assert ext.preserved == (port in (1022, 1030) and nat.port_owner((POOL1, port)) == mine)
        if (ext.port < 1024) != (port < 1024):
            spilled.append(port)
            assert ext.port % 2 == port % 2
        sc.send(C1, port, remote, rport, l4, ext)
    # UDP: the first system flows take C1's worker's system ports, the others spill (with one
    # worker: 1022, 80, 443 and 53 take the four, 53 the odd one 443 left, and 123 spills).
    # TCP and ICMP have ports of their own.
    system_udp = [p for p, _, _, l4 in flows if p < 1024 and l4.proto == 17]
    assert spilled == system_udp[len(owned):] + ([] if owned else [22, 3])
    assert workers > 1 or spilled == [123]
    for port, remote, rport, l4 in flows:
        sc.reply(C1, port, remote, rport, l4, nat.map(C1.ip, port, l4.proto))
    sc.counters = traffic(sc, mappings_created=12, sessions_created=12,
                          port_preserved=nat.preserved())
    return sc
