"""Deterministic NAT (RFC 7422, `[pool] mode = "deterministic"`): each subscriber's ports come
from its run, the run's owner is the subscriber's worker, and addresses outside the prefix get
nothing.

The lab: subscribers 100.64.0.0/24 over POOL1 and POOL2 with port_range 1024-65535, so 128
subscribers share an address and each holds a run of 504 ports (min_ports = 256): 100.64.0.10
(C1) has POOL1 6064-6567, C2 6568-7071, C3 7072-7575; 100.64.0.200 has POOL2 37312-37815 and
100.64.0.255 the last run, POOL2 65032-65535. Runs and ports not kept come from
natmodel.DeterministicNat; who owns a port from `ephemera --owner --config` with the
scenario's config (Scenario.owner_config), which each scenario checks against the model's
runs: every port of a subscriber's run belongs to the subscriber's worker, so return traffic
is handed to that worker, whatever the port's bits.
"""

import frames
import natmodel
from frames import A1, A2, C1, C2, C3, POOL1, POOL2, Echo, Sub, Tcp, Udp
from natmodel import DeterministicNat
from scenarios import Frame, Scenario, by_port, config, scenario, sub_at, traffic

POOL = (POOL1, POOL2)
SUBSCRIBERS = "100.64.0.0/24"
RANGE = (1024, 65535)
D1 = sub_at("100.64.0.200")         # POOL2, 37312-37815
D2 = sub_at("100.64.0.255")         # POOL2, 65032-65535: the run ends the range
ABOVE = Sub("100.64.1.10", "02:00:00:00:02:0a")     # outside the prefix
BELOW = Sub("100.63.255.10", "02:00:00:00:02:0b")   # outside the prefix


def _setup(workers, pool=POOL, port_range=RANGE, min_ports=256, **kw):
    """(model, scenario) for a deterministic config over `pool` and `port_range`."""
    cfg = config(pool=pool, port_range="%d-%d" % port_range, mode="deterministic",
                 mode_keys=dict(subscribers=SUBSCRIBERS, min_ports=min_ports), **kw)
    nat = DeterministicNat(pool, SUBSCRIBERS, port_range, cfg, workers=workers)
    return nat, Scenario(cfg, owner_config=cfg)


def _check_runs(nat, subs):
    """The binary agrees with the model: each port at the ends of a subscriber's run (and its
    middle) belongs to the subscriber's worker, and the model's reverse names the subscriber."""
    for sub in subs:
        run = nat.run_of(sub.ip)
        for port in (run.lo, (run.lo + run.hi) // 2, run.hi):
            assert nat.holder(run.pool_ip, port) == sub.ip, (sub, port)
            assert nat.port_owner((run.pool_ip, port)) == nat.worker_of(sub.ip), (sub, port)


def _in_run(nat, sub, ext):
    run = nat.run_of(sub.ip)
    return ext.ip == run.pool_ip and run.lo <= ext.port <= run.hi


@scenario
def rfc7422_deterministic_ports_kept(workers):
    """Subscribers on both pool addresses send from ports inside their runs (the first and last
    ports of runs among them, and the last run, which ends at 65535): each keeps its port on the
    address the formula names, UDP, TCP and echo alike, and every reply reaches its
    subscriber, by the subscriber's worker."""
    nat, sc = _setup(workers)
    assert nat.run_of(C1.ip) == (POOL1, 6064, 6567) and nat.run_of(D2.ip) == (POOL2, 65032, 65535)
    flows = [(C1, 6100, A1, 53, Udp()), (C1, 6101, A1, 80, Tcp()), (C1, 6064, A1, 0, Echo()),
             (C2, 7071, A2, 53, Udp()), (C3, 7072, A1, 53, Udp()), (C3, 7500, A2, 443, Tcp()),
             (D1, 37312, A1, 53, Udp()), (D1, 37815, A2, 0, Echo()),
             (D2, 65535, A1, 53, Udp()), (D2, 65034, A1, 80, Tcp())]
    _check_runs(nat, {f[0] for f in flows})
    for sub, port, remote, rport, l4 in flows:
        ext = nat.map(sub.ip, port, l4.proto)
        assert ext == (nat.run_of(sub.ip).pool_ip, port, True)
        sc.send(sub, port, remote, rport, l4, ext)
    sc.send(C1, 6100, A2, 53, Udp(), nat.map(C1.ip, 6100, 17))     # same mapping (REQ-1)
    for sub, port, remote, rport, l4 in reversed(flows):
        sc.reply(sub, port, remote, rport, l4, nat.map(sub.ip, port, l4.proto))
    sc.reply(C1, 6100, A2, 53, Udp(), nat.map(C1.ip, 6100, 17))
    sc.counters = traffic(sc, mappings_created=len(flows), sessions_created=len(flows) + 1,
                          port_preserved=len(flows))
    sc.gauges = dict(live_mappings=len(flows), live_sessions=len(flows) + 1)
    return sc


@scenario
def rfc7422_deterministic_alg4(workers):
    """A source port outside the subscriber's run is never kept, even when it is free on the
    address (it lies in another subscriber's run): the mapping gets a port of the run by
    Algorithm 4 over the run with its parity kept (RFC 4787 REQ-4), computed by the model. So
    does a port inside the run that an earlier mapping took. C2 then keeps 7000 although C1
    asked for it first; ports are per protocol, so C1's TCP keeps the port its UDP got."""
    nat, sc = _setup(workers)
    _check_runs(nat, [C1, C2, C3, D1])
    first = nat.map(C1.ip, 50000, 17)
    flows = [(C1, 50000, A1, 53, Udp()),    # in subscriber 100.64.0.97's run
             (C1, 50001, A1, 53, Udp()),
             (C1, 7000, A2, 53, Udp()),     # in C2's run
             (C1, first.port, A2, 54, Udp()),   # in C1's run, taken by the first
             (C1, first.port, A1, 80, Tcp()),   # the same port, TCP: free
             (C1, 50000, A1, 80, Tcp()),
             (C2, 7000, A1, 53, Udp()),     # C2's own
             (D1, 6100, A1, 53, Udp()),     # C1's run on POOL1: D1's address is POOL2
             (C3, 9, A1, 0, Echo())]
    for sub, port, remote, rport, l4 in flows:
        ext = nat.map(sub.ip, port, l4.proto)
        assert _in_run(nat, sub, ext) and ext.port % 2 == port % 2, (sub, port, ext)
        sc.send(sub, port, remote, rport, l4, ext)
    assert sorted(k for k, e in nat.mappings.items() if e.preserved) == \
        sorted([(C1.ip, first.port, 6), (C2.ip, 7000, 17)])
    for sub, port, remote, rport, l4 in reversed(flows):
        sc.reply(sub, port, remote, rport, l4, nat.map(sub.ip, port, l4.proto))
    sc.counters = traffic(sc, mappings_created=len(flows), sessions_created=len(flows),
                          port_preserved=nat.preserved())
    return sc


@scenario
def rfc7422_deterministic_outside_prefix(workers):
    """Subscribers outside the prefix (100.64.1.10 above it, 100.63.255.10 below) get no
    mapping: each packet is dropped (drop_not_deterministic) and answered with ICMP 3/1 from
    the gateway, by the subscriber's worker, quoting it; a subscriber of the prefix is
    translated and its reply delivered."""
    nat, sc = _setup(workers)
    assert nat.run_of(ABOVE.ip) is None and nat.run_of(BELOW.ip) is None
    ext = nat.map(C1.ip, 6100, 17)
    sc.send(C1, 6100, A1, 53, Udp(), ext)
    sc.send_refused(ABOVE, 6100, A1, 53, Udp(b"outside the prefix"))
    sc.send_refused(ABOVE, 6101, A1, 80, Tcp())
    sc.send_refused(BELOW, 40000, A2, 0, Echo())
    sc.reply(C1, 6100, A1, 53, Udp(), ext)
    sc.counters = traffic(sc, out2in_translated=1, mappings_created=1, sessions_created=1,
                          port_preserved=1, drop_not_deterministic=3, icmp_unreachable_sent=3)
    sc.gauges = dict(live_mappings=1, live_sessions=1)
    return sc


@scenario
def rfc7422_deterministic_no_mapping(workers):
    """Outside packets to ports of subscribers' runs that have no mapping (a free port of a
    subscriber with mappings, a run whose subscriber has none, the right port in the other
    protocol, a run on the other address) are dropped (drop_no_mapping) by the worker of the
    subscriber that holds the run: that is where they are handed, while replies to mappings
    are delivered."""
    nat, sc = _setup(workers)
    _check_runs(nat, [C1, C2, D1, sub_at("100.64.0.138")])
    udp = Udp()
    ext1 = nat.map(C1.ip, 6100, 17)
    ext2 = nat.map(D1.ip, 37400, 17)
    sc.send(C1, 6100, A1, 53, udp, ext1)
    sc.send(D1, 37400, A1, 53, udp, ext2)
    probes = [(udp, POOL1, 6102),           # C1's run, no mapping
              (udp, POOL1, 6568),           # C2's run; C2 has no mapping at all
              (Echo(), POOL1, 6100),        # C1's UDP port, an echo reply
              (udp, POOL2, 6100),           # 100.64.0.138's run on POOL2
              (udp, POOL2, 37401)]          # D1's run, next to its mapping
    assert not any(nat.is_mapped(ip, port, l4.proto) for l4, ip, port in probes)
    # With several workers, some of these ports' owners are not their port bits' owners
    # (dynamic mode's): the handoffs show that ownership follows the subscriber.
    bits = natmodel.owners(workers)
    assert workers == 1 or any(nat.port_owner((ip, port)) != bits.port(ip, port)
                               for _, ip, port in probes)
    for l4, ip, port in probes:
        sc.outside_in.append(Frame(frames.inbound_only(A1, 53, l4, ip, port),
                                   by_port((ip, port))))
    sc.reply(C1, 6100, A1, 53, udp, ext1)
    sc.reply(D1, 37400, A1, 53, udp, ext2)
    sc.counters = traffic(sc, mappings_created=2, sessions_created=2, port_preserved=2,
                          drop_no_mapping=len(probes))
    return sc


@scenario
def rfc7422_deterministic_run_exhausted(workers):
    """Runs of 3 ports (100.64.0.0/24 over POOL1, port_range 40000-40767, min_ports = 3): C1
    holds 40030-40032. Its three UDP flows from even source ports get the run's two even ports
    and then, none of that parity left, the odd one; the fourth is refused
    (drop_ports_exhausted) with ICMP 3/1, while its TCP keeps 40031. C2's run 40033-40035 starts
    on an odd port: it keeps 40034 and its odd source ports get the two odd ones by Algorithm 4."""
    port_range = (40000, 40767)
    nat, sc = _setup(workers, pool=(POOL1,), port_range=port_range, min_ports=3)
    assert nat.run_of(C1.ip) == (POOL1, 40030, 40032)
    assert nat.run_of(C2.ip) == (POOL1, 40033, 40035)
    _check_runs(nat, [C1, C2])
    flows = [(C1, 5000, A1, 53, Udp()), (C1, 5002, A1, 53, Udp()), (C1, 5004, A1, 53, Udp()),
             (C1, 40031, A2, 80, Tcp()),
             (C2, 40034, A1, 53, Udp()), (C2, 7, A1, 53, Udp()), (C2, 9, A1, 53, Udp())]
    for sub, port, remote, rport, l4 in flows:
        sc.send(sub, port, remote, rport, l4, nat.map(sub.ip, port, l4.proto))
        if (sub, port) == (C1, 5004):
            assert nat.map(C1.ip, 5006, 17) is None
            sc.send_refused(C1, 5006, A1, 53, Udp(b"no port left in the run"))
    assert sorted(nat.map(C1.ip, p, 17).port for p in (5000, 5002)) == [40030, 40032]
    assert nat.map(C1.ip, 5004, 17).port == 40031
    assert sorted(nat.map(C2.ip, p, 17).port for p in (7, 9)) == [40033, 40035]
    for sub, port, remote, rport, l4 in flows:
        sc.reply(sub, port, remote, rport, l4, nat.map(sub.ip, port, l4.proto))
    sc.counters = traffic(sc, out2in_translated=len(flows), mappings_created=len(flows),
                          sessions_created=len(flows), port_preserved=nat.preserved(),
                          drop_ports_exhausted=1, icmp_unreachable_sent=1)
    assert nat.preserved() == 2
    return sc
