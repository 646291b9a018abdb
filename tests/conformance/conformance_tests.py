#!/usr/bin/python3
"""Black-box conformance of ephemera to RFC 4787, 5382, 5508, 7857 and 6888: real Linux stacks
(sockets, ping, traceroute, the STUN client) and scapy-built probes on both sides of the NAT,
each test named after the requirement it checks (docs/conformance.md lists them all).

    /usr/bin/python3 conformance_tests.py TEST_NAME EPHEMERA_BINARY [--workers N]
                                          [--fragments-on af_packet|pcap]
                                          [--mode dynamic|blocks|deterministic]

--workers: how many workers ephemera runs with (meson runs the suite with 1, 2 and 4: suites
conformance-w1, -w2, -w4). --fragments-on: the driver the fragment and MTU tests open the
veths with. On af_packet (the default, as in the README's lab) the kernel reassembles fragments
and ephemera gets whole datagrams, which it splits to the MTU on the way out; on pcap (one
worker) it sees the pieces as sent and reassembles them virtually itself. --mode: the pool's
allocation mode (pool.mode). blocks gives every subscriber port blocks (BLOCK_SIZE ports, up to
MAX_BLOCKS of them); where that legitimately changes an answer, the test asserts the blocks
mode's answer (docs/conformance.md, "The blocks mode"). Meson runs the suite in blocks mode
with 2 workers as conformance-blocks. deterministic gives every subscriber of DET_SUBSCRIBERS
its RFC 7422 run of ports (no reserved ports, no port_range below 1024); where that changes an
answer the test asserts the deterministic mode's (docs/conformance.md, "The deterministic
mode"). Meson runs it with 2 workers as conformance-det.

Every test builds its own lab (tests/netns/nslab.py, scripts/lab.sh) and removes it on every
exit path. Nothing here reads ephemera's internals except through telemetry, the way an
operator would.
"""

import json
import os
import re
import sys
import tempfile
import threading
import time

from conflab import (GATEWAY, POOL, SERVER, SERVER2, Background, Capture, check, echo_server,
                     in_pool, learn_tcp, learn_udp, log, make_config, owner_of_subscriber,
                     parse_echo, probe, rawsend, sessions, sub_addr,
                     tcp_echo_server, udp_exchange)
import conflab
import nslab
from nslab import ephemera_session, lab_session, listening, wait_until

# Set from the command line (see the module's docstring) before a test runs.
WORKERS = 1
FRAGMENTS = "af_packet"
MODE = "dynamic"

# The blocks mode's [pool.blocks]: room for every test's flows (a few dozen per subscriber at
# most) in 16 blocks of 256 ports, each block still a small part of a worker's share.
BLOCK_SIZE = 256
MAX_BLOCKS = 16


def _block_size_for(port_range, workers):
    """BLOCK_SIZE, or less for a narrow port_range: a quarter of what one worker owns of its
    ports from 1024 up (blocks take no system ports), in multiples of 64, at least 64, so that
    every worker has blocks to give (ephemera refuses to start otherwise)."""
    ranges = {"iana": (49152, 65535), "linux": (32768, 60999), "freebsd": (10000, 65535),
              "legacy-bsd": (1024, 5000)}  # config.hpp's presets
    lo, hi = ranges.get(port_range) or (int(x) for x in port_range.split("-"))
    share = max(0, hi - max(lo, 1024) + 1) // workers
    return max(64, min(BLOCK_SIZE, share // 4 // 64 * 64))


# The deterministic mode's [pool.deterministic]: a prefix that holds every lab subscriber
# (100.64.0.11 up, scripts/lab.sh) but not the pool. 32 subscribers over one pool address and
# the IANA range are 512 ports each, 1024 over two: min_ports lets the narrowest through.
DET_SUBSCRIBERS = "100.64.0.0/27"
DET_MIN_PORTS = 64


def _det_port_range(port_range):
    """port_range, or the part of it from 1024 up (deterministic mode refuses system ports)."""
    if "-" not in port_range:
        return port_range  # config.hpp's presets all start at 1024 or above
    lo, hi = (int(x) for x in port_range.split("-"))
    return port_range if lo >= 1024 else "%d-%d" % (1024, hi)


def det_run(subscriber, pool=POOL, port_range="iana"):
    """The RFC 7422 formula (include/ephemera/deterministic.hpp) over the suite's prefix:
    (pool address, first port, last port) of a subscriber."""
    presets = {"iana": (49152, 65535), "linux": (32768, 60999), "freebsd": (10000, 65535),
               "legacy-bsd": (1024, 5000)}
    port_range = _det_port_range(port_range)
    lo, hi = presets.get(port_range) or (int(x) for x in port_range.split("-"))
    base, length = DET_SUBSCRIBERS.split("/")
    count = 1 << (32 - int(length))
    offset = _addr_value(subscriber) - _addr_value(base)
    check(0 <= offset < count, "%s is outside %s" % (subscriber, DET_SUBSCRIBERS))
    ratio = -(-count // len(pool))
    pps = (hi - lo + 1) // ratio
    first = lo + (offset % ratio) * pps
    return pool[offset // ratio], first, first + pps - 1


def _addr_value(addr):
    a, b, c, d = (int(x) for x in addr.split("."))
    return (a << 24) | (b << 16) | (c << 8) | d


def mode_config(**kw):
    """make_config in the suite's MODE: in blocks mode with [pool] mode and [pool.blocks] added
    (a test's own keys there win); in deterministic mode with [pool] mode and
    [pool.deterministic] added, no reserved ports and port_range cut to 1024 and up."""
    if MODE == "deterministic":
        sections = {k: dict(v) for k, v in (kw.pop("sections", None) or {}).items()}
        sections.setdefault("pool", {})["mode"] = "deterministic"
        det = sections.setdefault("pool.deterministic", {})
        det.setdefault("subscribers", DET_SUBSCRIBERS)
        det.setdefault("min_ports", DET_MIN_PORTS)
        kw["sections"] = sections
        kw["reserved"] = ()
        kw["port_range"] = _det_port_range(kw.get("port_range", "iana"))
    if MODE == "blocks":
        sections = {k: dict(v) for k, v in (kw.pop("sections", None) or {}).items()}
        sections.setdefault("pool", {})["mode"] = "blocks"
        blocks = sections.setdefault("pool.blocks", {})
        blocks.setdefault("block_size", _block_size_for(kw.get("port_range", "iana"), WORKERS))
        blocks.setdefault("max_blocks", MAX_BLOCKS)
        kw["sections"] = sections
    return make_config(**kw)


def cfg(lab, **kw):
    return mode_config(next_hop=lab.next_hop, **kw)


def scapy():
    import scapy.all as s  # imported on use: it takes a second
    return s


# ======================================================================= mapping (EIM)


def test_rfc4787_req1_eim_udp(binary):
    """C:x to S1:p, S1:q and S2:p: the server sees one external endpoint."""
    with lab_session(1) as lab, ephemera_session(binary, lab, WORKERS, cfg(lab)):
        srv = lab.agent(lab.ns("srv"))
        targets = {"S1:p": (SERVER, 5000), "S1:q": (SERVER, 5001), "S2:p": (SERVER2, 5000)}
        for name, (addr, port) in targets.items():
            srv.open(name, addr, port)
        cli = lab.agent(lab.sub(1))
        cli.open("c", port=40000)
        seen = {}
        for name, to in targets.items():
            cli.send("c", to, "to " + name)
            got = srv.recv(name, timeout=3)
            check(got is not None and got[1] == "to " + name, "%s got %r" % (name, got))
            seen[name] = got[0]
        log("seen as %s" % seen)
        check(in_pool(seen["S1:p"]), "external %s not in the pool" % (seen["S1:p"],))
        check(len(set(seen.values())) == 1, "endpoint-dependent mapping: %s" % seen)


def test_rfc5382_req1_eim_tcp(binary):
    """TCP from C:x to S1:p, S1:q and S2:p: the servers see one external endpoint."""
    with lab_session(1) as lab, ephemera_session(binary, lab, WORKERS, cfg(lab)):
        servers = [tcp_echo_server(lab, 6000), tcp_echo_server(lab, 6001),
                   tcp_echo_server(lab, 6000, SERVER2)]
        seen = {to: learn_tcp(lab, lab.sub(1), 40000, to)
                for to in ((SERVER, 6000), (SERVER, 6001), (SERVER2, 6000))}
        log("seen as %s" % seen)
        for b in servers:
            b.stop()
        check(all(in_pool(ep) for ep in seen.values()), "external not in the pool: %s" % seen)
        check(len(set(seen.values())) == 1, "endpoint-dependent TCP mapping: %s" % seen)


def _icmp_requests(packets, s):
    return [p for p in packets if p.haslayer(s.ICMP) and p[s.ICMP].type == 8]


def test_rfc5508_req1_icmp_echo_id(binary):
    """Echo requests with one identifier to S1 and S2 leave with one external identifier from
    one pool address, and both replies come back to the subscriber's identifier."""
    s = scapy()
    with lab_session(1) as lab, ephemera_session(binary, lab, WORKERS, cfg(lab)):
        cap = Capture(lab, lab.ns("srv"), "icmp")
        r1 = probe(lab, lab.sub(1), "icmp-echo", "--to", SERVER, "--id", 4242, "--count", 2)
        r2 = probe(lab, lab.sub(1), "icmp-echo", "--to", SERVER2, "--id", 4242, "--count", 2)
        pkts = cap.stop()
        check(len(r1["replies"]) == 2 and len(r2["replies"]) == 2,
              "echo replies to identifier 4242: %s, %s" % (r1, r2))
        reqs = _icmp_requests(pkts, s)
        ids = {(p[s.IP].dst, p[s.IP].src, p[s.ICMP].id) for p in reqs}
        log("requests at the server (dst, src, id): %s" % sorted(ids))
        check(len(reqs) == 4, "the server saw %d echo requests, 4 sent" % len(reqs))
        check(len({(src, i) for _, src, i in ids}) == 1,
              "one identifier to two hosts left as several (source, id): %s" % ids)
        check(all(src in POOL for _, src, _ in ids), "requests not from the pool: %s" % ids)


# ======================================================================= pooling, ports


def test_rfc4787_req2_paired_pooling(binary):
    """Four pool addresses, four subscribers: all of a subscriber's UDP, TCP and ICMP leaves
    from one address."""
    s = scapy()
    pool = ["198.18.0.100", "198.18.0.101", "198.18.0.102", "198.18.0.103"]
    subs = 4
    with lab_session(subs) as lab, ephemera_session(binary, lab, WORKERS,
                                                    cfg(lab, pool=pool)):
        echo_server(lab, (5000,))
        echo_server(lab, (5000,), SERVER2)
        tcp = tcp_echo_server(lab, 6000)
        cap = Capture(lab, lab.ns("srv"), "icmp[icmptype] == 8")
        used = {}
        for i in range(1, subs + 1):
            cli = lab.agent(lab.sub(i))
            addrs = set()
            for k in range(4):
                cli.open("u%d" % k)
                for to in ((SERVER, 5000), (SERVER2, 5000)):
                    addrs.add(learn_udp(cli, "u%d" % k, to)[0])
            for k in range(2):
                addrs.add(learn_tcp(lab, lab.sub(i), 45000 + k)[0])
            sent, got, _ = lab.ping(lab.sub(i), SERVER, 2)
            check(got == 2, "sub%d ping: %d of %d" % (i, got, sent))
            used[sub_addr(i)] = addrs
        pkts = cap.stop()
        tcp.stop()
        # Each subscriber's pings ran alone and in order: two requests per subscriber.
        icmp_srcs = [p[s.IP].src for p in _icmp_requests(pkts, s)]
        check(len(icmp_srcs) == 2 * subs, "server saw %d echo requests" % len(icmp_srcs))
        for i in range(1, subs + 1):
            used[sub_addr(i)] |= set(icmp_srcs[2 * (i - 1):2 * i])
        log("external addresses per subscriber: %s" % used)
        for sub, addrs in used.items():
            check(len(addrs) == 1, "%s used several external addresses: %s" % (sub, addrs))
            check(addrs <= set(pool), "%s used %s, not in the pool" % (sub, addrs))


def _same_port_subscribers(lab, subs, ports, proto="udp"):
    """Every subscriber sends from each of `ports` to the server; returns
    {(subscriber, port): external endpoint}."""
    seen = {}
    for i in range(1, subs + 1):
        cli = lab.agent(lab.sub(i))
        for port in ports:
            if proto == "udp":
                check(cli.open("p%d" % port, port=port) == port, "cannot bind %d" % port)
                seen[(i, port)] = learn_udp(cli, "p%d" % port)
            else:
                seen[(i, port)] = learn_tcp(lab, lab.sub(i), port)
    return seen


def test_rfc4787_req3_no_port_overloading(binary):
    """Three subscribers send from the same UDP port through one pool address: three external
    ports, and what the server sends to each reaches only its subscriber."""
    subs = 3
    with lab_session(subs) as lab, ephemera_session(binary, lab, WORKERS,
                                                    cfg(lab, pool=[POOL[0]])):
        srv = lab.agent(lab.ns("srv"))
        srv.open("s", SERVER, 5000)
        clients, ext = {}, {}
        for i in range(1, subs + 1):
            clients[i] = lab.agent(lab.sub(i))
            clients[i].open("c", port=50000)
            clients[i].send("c", (SERVER, 5000), "from sub%d" % i)
            got = srv.recv("s", timeout=3)
            check(got is not None and got[1] == "from sub%d" % i, "server got %r" % (got,))
            ext[i] = got[0]
        log("external endpoints: %s" % ext)
        check(len(set(ext.values())) == subs, "port overloading: %s" % ext)
        for i, ep in ext.items():
            srv.send("s", ep, "for sub%d" % i)
        for i, cli in clients.items():
            got = [d for _, d in cli.drain("c", window=1.0)]
            check(got == ["for sub%d" % i], "sub%d received %s" % (i, got))


def test_rfc5382_req7_no_port_overloading_tcp(binary):
    """Three subscribers connect from the same TCP port through one pool address: three
    external endpoints, each connection answered."""
    subs = 3
    with lab_session(subs) as lab, ephemera_session(binary, lab, WORKERS,
                                                    cfg(lab, pool=[POOL[0]])):
        tcp = tcp_echo_server(lab, 6000)
        seen = _same_port_subscribers(lab, subs, (50000,), "tcp")
        tcp.stop()
        log("external endpoints: %s" % seen)
        check(len(set(seen.values())) == subs, "TCP port overloading: %s" % seen)


def test_rfc4787_req3a_port_class(binary):
    """Ports 0-1023 map into 0-1023, 1024-65535 into 1024-65535, also when the source port is
    taken and ephemera must choose another. In blocks mode a block never holds a system port,
    so every mapping, port 800's too, leaves from 1024-65535 (REQ-3a is a MAY; the blocks mode
    keeps the well-known ports out of subscribers' blocks instead). In deterministic mode
    port_range cannot reach below 1024 (RFC 7422): every mapping leaves from the subscriber's
    run, which holds no system port."""
    subs = 3
    with lab_session(subs) as lab, ephemera_session(
            binary, lab, WORKERS, cfg(lab, pool=[POOL[0]], port_range="1-65535",
                                      reserved=("65000-65010",))):
        echo_server(lab)
        seen = _same_port_subscribers(lab, subs, (800, 2000))
        log("external endpoints: %s" % seen)
        for (i, port), ep in seen.items():
            if MODE == "blocks":
                check(ep[1] >= 1024, "sub%d port %d left as %d: a block holds a system port"
                      % (i, port, ep[1]))
                continue
            if MODE == "deterministic":
                addr, lo, hi = det_run(sub_addr(i), [POOL[0]], "1-65535")
                check(ep[0] == addr and lo <= ep[1] <= hi and ep[1] >= 1024,
                      "sub%d port %d left as %s:%d, outside its run %s %d-%d" % (
                          i, port, ep[0], ep[1], addr, lo, hi))
                continue
            check((port < 1024) == (ep[1] < 1024),
                  "sub%d port %d left as %d: port class not kept" % (i, port, ep[1]))
        for port in (800, 2000):
            check(len({seen[(i, port)] for i in range(1, subs + 1)}) == subs,
                  "port %d: external endpoints repeat %s" % (port, seen))
        if MODE == "deterministic":
            # A source port is kept only when it lies in the subscriber's run (and is free).
            kept = {}
            for i in range(1, subs + 1):
                addr, lo, _ = det_run(sub_addr(i), [POOL[0]], "1-65535")
                cli = lab.agent(lab.sub(i))
                check(cli.open("own", port=lo + 10) == lo + 10, "cannot bind %d" % (lo + 10))
                kept[i] = learn_udp(cli, "own")
                check(kept[i] == (addr, lo + 10), "sub%d port %d (in its run) left as %s" % (
                    i, lo + 10, kept[i]))
            log("ports in the subscribers' runs kept: %s" % kept)


def test_rfc4787_req4_port_parity(binary):
    """Even source ports leave even, odd leave odd, on the wire at the server, also when
    ephemera has to choose a new port (four subscribers, same ports, one pool address)."""
    subs = 4
    with lab_session(subs) as lab, ephemera_session(binary, lab, WORKERS,
                                                    cfg(lab, pool=[POOL[0]])):
        echo_server(lab)
        seen = _same_port_subscribers(lab, subs, (50000, 50001, 50002, 51237))
        changed = 0
        for (i, port), ep in seen.items():
            check(port % 2 == ep[1] % 2, "sub%d port %d left as %d: parity not kept" % (
                i, port, ep[1]))
            changed += port != ep[1]
        log("external endpoints: %s (%d ports chosen anew)" % (seen, changed))
        check(changed >= 3 * 4, "only %d ports were chosen anew; the test needs collisions"
              % changed)


# ======================================================================= filtering


FILTER_EXPECT = {
    # after C:x -> S1:p, which of S1:q and S2:p get through to C (RFC 4787 REQ-8)
    "endpoint-independent": {"S1:q", "S2:p"},
    "address": {"S1:q"},
    "address-and-port": set(),
}


def _filtering_udp(binary, mode):
    with lab_session(1) as lab, ephemera_session(binary, lab, WORKERS,
                                                 cfg(lab, filtering=mode)) as eph:
        srv = lab.agent(lab.ns("srv"))
        remotes = {"S1:p": (SERVER, 5000), "S1:q": (SERVER, 5001), "S2:p": (SERVER2, 5000)}
        for name, (addr, port) in remotes.items():
            srv.open(name, addr, port)
        cli = lab.agent(lab.sub(1))
        cli.open("c", port=41000)
        cli.send("c", remotes["S1:p"], "open")
        got = srv.recv("S1:p", timeout=3)
        check(got is not None, "S1:p got nothing")
        ext = got[0]
        for name in ("S1:q", "S2:p", "S1:p"):
            srv.send(name, ext, "from " + name)
        arrived = cli.drain("c", window=1.5)
        labels = {d[len("from "):] for _, d in arrived}
        log("%s: delivered %s, drop_filtered %d" % (mode, sorted(labels),
                                                    eph.stats()["drop_filtered"]))
        check("S1:p" in labels, "%s: the session's own remote S1:p was not delivered" % mode)
        check(labels - {"S1:p"} == FILTER_EXPECT[mode], "%s: delivered %s, expected %s" % (
            mode, sorted(labels - {"S1:p"}), sorted(FILTER_EXPECT[mode])))


def _filtering_tcp(binary, mode):
    """C holds a TCP connection from port x to S1:p; SYNs from S1:q and S2:p to X':x' reach C
    (seen on C's interface) as the filtering mode allows; the connection keeps working."""
    s = scapy()
    with lab_session(1) as lab, ephemera_session(binary, lab, WORKERS,
                                                 cfg(lab, filtering=mode)):
        line = Background.probe(lab, lab.ns("srv"), "tcp-line-server", "--bind", SERVER,
                                "--port", 6000)
        conn = Background.probe(lab, lab.sub(1), "tcp-hold", "--to", SERVER, "--port", 6000,
                                "--bind-port", 42000, stdin=True)
        check("ready" in conn.first, "connection to S1:p failed: %s" % conn.first)
        ext = parse_echo(conn.say("send hello")["reply"].strip())[0]
        cap = Capture(lab, lab.sub(1), "tcp[tcpflags] & tcp-syn != 0 and dst port 42000")
        syns = [s.IP(src=src, dst=ext[0]) / s.TCP(sport=sport, dport=ext[1], flags="S",
                                                  seq=1000)
                for src, sport in ((SERVER, 6001), (SERVER2, 6000))]
        rawsend(lab, lab.ns("srv"), syns)
        time.sleep(1.0)
        pkts = cap.stop()
        got = {("S1:q" if p[s.IP].src == SERVER else "S2:p") for p in pkts
               if p.haslayer(s.TCP)}
        after = conn.say("send still there")
        conn.say("close")
        line.stop()
        log("%s: SYNs delivered from %s; connection after: %s" % (mode, sorted(got), after))
        check(after["reply"] and "still there" in after["reply"],
              "%s: the connection broke: %s" % (mode, after))
        check(got == FILTER_EXPECT[mode], "%s: SYNs delivered from %s, expected %s" % (
            mode, sorted(got), sorted(FILTER_EXPECT[mode])))


def test_rfc4787_req8_eif_udp(binary):
    _filtering_udp(binary, "endpoint-independent")


def test_rfc4787_req8_adf_udp(binary):
    _filtering_udp(binary, "address")


def test_rfc4787_req8_apdf_udp(binary):
    _filtering_udp(binary, "address-and-port")


def test_rfc5382_req3_eif_tcp(binary):
    _filtering_tcp(binary, "endpoint-independent")


def test_rfc5382_req3_adf_tcp(binary):
    _filtering_tcp(binary, "address")


def test_rfc5382_req3_apdf_tcp(binary):
    _filtering_tcp(binary, "address-and-port")


def test_rfc7857_s5_s6_per_protocol(binary):
    """Endpoint-independent filtering: a UDP mapping lets in UDP but not TCP to the same
    external port, and a TCP mapping lets in TCP but not UDP."""
    s = scapy()
    with lab_session(1) as lab, ephemera_session(binary, lab, WORKERS, cfg(lab)):
        echo_server(lab)
        tcp = tcp_echo_server(lab, 6000)
        cli = lab.agent(lab.sub(1))
        cli.open("u", port=50000)
        uext = learn_udp(cli, "u")
        text = learn_tcp(lab, lab.sub(1), 50002)
        tcp.stop()
        log("UDP mapping %s, TCP mapping %s" % (uext, text))
        cap = Capture(lab, lab.sub(1), "dst port 50000 or dst port 50002")
        rawsend(lab, lab.ns("srv"), [
            s.IP(src=SERVER2, dst=uext[0]) / s.UDP(sport=7000, dport=uext[1]) / b"udp-to-udp",
            s.IP(src=SERVER2, dst=uext[0]) / s.TCP(sport=7001, dport=uext[1], flags="S"),
            s.IP(src=SERVER2, dst=text[0]) / s.TCP(sport=7002, dport=text[1], flags="S"),
            s.IP(src=SERVER2, dst=text[0]) / s.UDP(sport=7003, dport=text[1]) / b"udp-to-tcp",
        ])
        time.sleep(1.0)
        pkts = cap.stop()
        got = {(("udp" if p.haslayer(s.UDP) else "tcp"), p.sport) for p in pkts
               if p.haslayer(s.UDP) or p.haslayer(s.TCP)}
        got = {g for g in got if g[1] in (7000, 7001, 7002, 7003)}
        log("delivered (proto, remote port): %s" % sorted(got))
        check(got == {("udp", 7000), ("tcp", 7002)},
              "delivered %s; expected UDP to the UDP mapping and TCP to the TCP mapping only"
              % sorted(got))


# ======================================================================= STUN


def _stun(binary, mode, expected):
    with lab_session(1) as lab, ephemera_session(binary, lab, WORKERS,
                                                 cfg(lab, filtering=mode)):
        stund = lab.popen(lab.ns("srv"), ["stund", "-h", SERVER, "-a", SERVER2],
                          stdout=nslab.subprocess.DEVNULL, stderr=nslab.subprocess.DEVNULL)
        try:
            check(wait_until(lambda: listening(lab, lab.ns("srv"), "udp", 3478), 10),
                  "stund is not listening on %s:3478" % SERVER)
            cp = lab.run(lab.sub(1), ["stun", SERVER], timeout=60)
        finally:
            stund.kill()
            stund.wait()
        out = (cp.stdout + cp.stderr).strip()
        log("stun (%s): %s" % (mode, out))
        check(expected in out, "%s filtering: the STUN client says %r, expected %r" % (
            mode, out, expected))
        return out


def test_rfc4787_req8_stun_eif(binary):
    _stun(binary, "endpoint-independent", "Independent Mapping, Independent Filter")


def test_rfc4787_req8_stun_adf(binary):
    _stun(binary, "address", "Independent Mapping, Address Dependent Filter")


def test_rfc4787_req8_stun_apdf(binary):
    _stun(binary, "address-and-port", "Independent Mapping, Port Dependent Filter")


# ======================================================================= TCP behaviour


def test_rfc5382_req2_simultaneous_open(binary):
    """Hole punching under address-and-port-dependent filtering: the subscriber and the server
    connect() to each other at once (the server to the subscriber's external endpoint, learnt
    from an earlier connection); one connection forms and carries data both ways."""
    with lab_session(1) as lab, ephemera_session(binary, lab, WORKERS,
                                                 cfg(lab, filtering="address-and-port")):
        tcp = tcp_echo_server(lab, 6000)
        ext = learn_tcp(lab, lab.sub(1), 50010)
        tcp.stop()
        # Both sides at once: the server's loop in the background, the subscriber's here.
        out = {}

        def server_side():
            out["srv"] = probe(lab, lab.ns("srv"), "tcp-simultaneous", "--bind-port", 6001,
                               "--to", ext[0], "--port", ext[1], "--timeout", 15,
                               "--name", "server")

        t = threading.Thread(target=server_side)
        t.start()
        time.sleep(0.5)
        out["sub"] = probe(lab, lab.sub(1), "tcp-simultaneous", "--bind-port", 50010, "--to",
                           SERVER, "--port", 6001, "--timeout", 15, "--name", "subscriber")
        t.join(30)
        log("subscriber: %s\nserver: %s" % (out["sub"], out.get("srv")))
        check(out["sub"].get("error") is None and out["sub"].get("received") ==
              "hello from server", "subscriber side: %s" % out["sub"])
        check(out.get("srv", {}).get("error") is None and out["srv"].get("received") ==
              "hello from subscriber", "server side: %s" % out.get("srv"))
        check(tuple(out["srv"]["peer"]) == ext, "the server's peer %s is not the mapping %s" % (
            out["srv"]["peer"], ext))


def _replies_from_pool(pkts, s, after, until):
    return [p for p in pkts if p.haslayer(s.IP) and p[s.IP].src in POOL and
            after <= float(p.time) <= until]


def test_rfc5382_req4_unsolicited_syn(binary):
    """Unsolicited SYNs (to a port with no mapping, and to a mapping whose filter refuses the
    sender) get no reply at all for at least 6 s; watched at the server for 7 s."""
    s = scapy()
    with lab_session(1) as lab, ephemera_session(binary, lab, WORKERS,
                                                 cfg(lab, filtering="address-and-port")):
        tcp = tcp_echo_server(lab, 6000)
        ext = learn_tcp(lab, lab.sub(1), 50020)
        tcp.stop()
        cap = Capture(lab, lab.ns("srv"), "not arp")
        sub_cap = Capture(lab, lab.sub(1), "tcp[tcpflags] & tcp-syn != 0")
        free_port = 55555 if ext[1] != 55555 else 55557
        rawsend(lab, lab.ns("srv"), [
            s.IP(src=SERVER, dst=POOL[0]) / s.TCP(sport=6100, dport=free_port, flags="S"),
            s.IP(src=SERVER, dst=ext[0]) / s.TCP(sport=6101, dport=ext[1], flags="S")])
        time.sleep(7.0)
        pkts = cap.stop()
        at_sub = sub_cap.stop()
        sent = [p for p in pkts if p.haslayer(s.TCP) and p[s.TCP].sport in (6100, 6101)]
        check(len(sent) == 2, "the capture missed the SYNs sent: %s" % sent)
        t0 = max(float(p.time) for p in sent)
        replies = _replies_from_pool(pkts, s, t0, t0 + 6.0)
        log("replies within 6 s: %s; SYNs at the subscriber: %d" % (
            [p.summary() for p in replies], len(at_sub)))
        check(not replies, "ephemera answered an unsolicited SYN within 6 s: %s" % [
            p.summary() for p in replies])
        check(not at_sub, "a filtered SYN reached the subscriber: %s" % [
            p.summary() for p in at_sub])


def test_rfc5382_req4_syn_then_outbound(binary):
    """An unsolicited SYN from the server to the subscriber's external endpoint, then within
    6 s the subscriber's own SYN for that connection: the connection forms, and the server
    never got a RST or ICMP error for its SYN."""
    s = scapy()
    with lab_session(1) as lab, ephemera_session(binary, lab, WORKERS,
                                                 cfg(lab, filtering="address-and-port")):
        tcp = tcp_echo_server(lab, 6000)
        ext = learn_tcp(lab, lab.sub(1), 50030)
        tcp.stop()
        cap = Capture(lab, lab.ns("srv"), "not arp")
        out = {}

        def server_side():  # one connect() attempt, long enough to span the test
            out["srv"] = probe(lab, lab.ns("srv"), "tcp-simultaneous", "--bind-port", 6002,
                               "--to", ext[0], "--port", ext[1], "--timeout", 12,
                               "--attempt-timeout", 12, "--name", "server")

        t = threading.Thread(target=server_side)
        t.start()
        time.sleep(2.0)  # the server's SYN has gone out and met the filter
        out["sub"] = probe(lab, lab.sub(1), "tcp-simultaneous", "--bind-port", 50030, "--to",
                           SERVER, "--port", 6002, "--timeout", 8, "--attempt-timeout", 8,
                           "--name", "subscriber")
        t.join(20)
        pkts = cap.stop()
        log("subscriber: %s\nserver: %s" % (out["sub"], out.get("srv")))
        # A RST answering the server's SYN acks it (RST+ACK, ack = ISN + 1: RFC 793, a segment
        # with no ACK is reset with one); a bare RST at the end answers a segment that met a
        # socket already closed by the probes, which is no business of the NAT's.
        syn_acks = {(p[s.TCP].seq + 1) & 0xffffffff for p in pkts
                    if p.haslayer(s.TCP) and p[s.IP].src == SERVER and
                    str(p[s.TCP].flags) == "S"}
        bad = [p.summary() for p in pkts if p.haslayer(s.IP) and p[s.IP].src in POOL and (
            p.haslayer(s.ICMP) or (p.haslayer(s.TCP) and "R" in str(p[s.TCP].flags) and
                                   p[s.TCP].ack in syn_acks))]
        check(syn_acks, "the capture holds no SYN from the server")
        check(not bad, "the server got a RST or ICMP error from the pool: %s" % bad)
        resets = [p.summary() for p in pkts if p.haslayer(s.TCP) and p[s.IP].src in POOL and
                  "R" in str(p[s.TCP].flags)]
        if resets:
            log("resets from the subscriber's side after the exchange: %s" % resets)
        check(out["sub"].get("error") is None and out["sub"].get("received") ==
              "hello from server", "subscriber side: %s" % out["sub"])
        check(out.get("srv", {}).get("error") is None and out["srv"].get("received") ==
              "hello from subscriber", "server side: %s" % out.get("srv"))


def test_rfc5382_req4_syn_port_unreachable_opt_in(binary):
    """icmp.unsolicited_syn_unreachable = true, address-and-port-dependent filtering. Two
    unsolicited SYNs from the server at once: (a) a raw SYN to a pool port with no mapping gets
    nothing for 6 s, then one ICMP 3/3 from that pool address quoting it; (b) a real connect()
    to the subscriber's external endpoint, which the subscriber meets with its own SYN of the
    same connection 2 s later, forms a connection and never draws an ICMP error or RST, also
    well after its 6 s have passed. Captured at the server."""
    s = scapy()
    with lab_session(1) as lab, ephemera_session(binary, lab, WORKERS, cfg(
            lab, filtering="address-and-port",
            sections={"icmp": {"unsolicited_syn_unreachable": True}})) as eph:
        tcp = tcp_echo_server(lab, 6000)
        ext = learn_tcp(lab, lab.sub(1), 50035)
        tcp.stop()
        free = (POOL[0], 55555 if ext[1] != 55555 else 55557)
        cap = Capture(lab, lab.ns("srv"), "not arp")
        out = {}

        def server_side():  # (b): one connect() attempt spanning the test
            out["srv"] = probe(lab, lab.ns("srv"), "tcp-simultaneous", "--bind-port", 6003,
                               "--to", ext[0], "--port", ext[1], "--timeout", 12,
                               "--attempt-timeout", 12, "--name", "server")

        t = threading.Thread(target=server_side)
        t.start()
        start = time.monotonic()
        rawsend(lab, lab.ns("srv"), [  # (a)
            s.IP(src=SERVER, dst=free[0]) / s.TCP(sport=6200, dport=free[1], flags="S",
                                                  seq=123456789)])
        time.sleep(2.0)  # (b)'s SYN has met the filter and is held
        out["sub"] = probe(lab, lab.sub(1), "tcp-simultaneous", "--bind-port", 50035, "--to",
                           SERVER, "--port", 6003, "--timeout", 8, "--attempt-timeout", 8,
                           "--name", "subscriber")
        t.join(20)
        # Every SYN of (b) sent before the subscriber's (at 0 s and the retransmission at 1 s)
        # would be answered by 7 s; (a)'s answer is due at 6 s. Watch until 10 s.
        time.sleep(max(0.0, 10.0 - (time.monotonic() - start)))
        pkts = cap.stop()
        stats = eph.stats()
        log("subscriber: %s\nserver: %s" % (out["sub"], out.get("srv")))
        log("counters: %s" % {k: v for k, v in stats.items() if k.startswith("syn_")})
        syn_a = [p for p in pkts if p.haslayer(s.TCP) and p[s.IP].src == SERVER and
                 p[s.TCP].sport == 6200]
        check(len(syn_a) == 1, "the capture holds %d copies of SYN (a)" % len(syn_a))
        t_a = float(syn_a[0].time)
        from_pool = [p for p in pkts if p.haslayer(s.IP) and p[s.IP].src in POOL]
        about_a = [p for p in from_pool if p.haslayer(s.ICMP) and p.haslayer(s.TCPerror) and
                   p[s.TCPerror].sport == 6200]
        # As in rfc5382_req4_syn_then_outbound: a RST answering the server's SYN (b) acks its
        # ISN + 1; a bare RST after the exchange meets a socket the probes already closed.
        syn_b_acks = {(p[s.TCP].seq + 1) & 0xffffffff for p in pkts
                      if p.haslayer(s.TCP) and p[s.IP].src == SERVER and
                      p[s.TCP].sport == 6003 and str(p[s.TCP].flags) == "S"}
        about_b = [p for p in from_pool if (p.haslayer(s.TCPerror) and
                                            p[s.TCPerror].sport == 6003) or
                   (p.haslayer(s.TCP) and p[s.TCP].dport == 6003 and
                    "R" in str(p[s.TCP].flags) and p[s.TCP].ack in syn_b_acks)]
        log("from the pool about (a): %s" % ["%.2f s: %s" % (float(p.time) - t_a, p.summary())
                                             for p in about_a])
        check(not [p for p in from_pool if p.haslayer(s.TCP) and p[s.TCP].dport == 6200],
              "SYN (a) drew a TCP answer (RST?) from the pool")
        check(len(about_a) == 1, "SYN (a) to %s:%d (no mapping) drew %d ICMP errors, expected "
              "one 3/3 after 6 s" % (*free, len(about_a)))
        err = about_a[0]
        delay = float(err.time) - t_a
        check(delay >= 6.0, "the ICMP error for SYN (a) came %.2f s after it, before 6 s" % delay)
        check((err[s.IP].src, err[s.IP].dst, err[s.ICMP].type, err[s.ICMP].code) ==
              (free[0], SERVER, 3, 3), "the error for SYN (a) is %s -> %s type %d code %d, "
              "expected %s -> %s 3/3" % (err[s.IP].src, err[s.IP].dst, err[s.ICMP].type,
                                         err[s.ICMP].code, free[0], SERVER))
        q = err[s.IPerror]
        quoted = (q.src, q.dst, q.proto, err[s.TCPerror].sport, err[s.TCPerror].dport,
                  err[s.TCPerror].seq)
        check(quoted == (SERVER, free[0], 6, 6200, free[1], 123456789),
              "the 3/3 quotes %s, expected SYN (a) %s" % (
                  quoted, (SERVER, free[0], 6, 6200, free[1], 123456789)))
        check(not about_b, "the server got an ICMP error or RST about connection (b), which "
              "the subscriber answered within 6 s: %s" % [p.summary() for p in about_b])
        check(out["sub"].get("error") is None and out["sub"].get("received") ==
              "hello from server", "(b) subscriber side: %s" % out["sub"])
        check(out.get("srv", {}).get("error") is None and out["srv"].get("received") ==
              "hello from subscriber", "(b) server side: %s" % out.get("srv"))
        check(stats.get("syn_held_cancelled", 0) >= 1 and stats.get("syn_unreachable_sent") == 1,
              "counters: %s" % {k: v for k, v in stats.items() if k.startswith("syn_")})


def _held_connection(lab, bind_port):
    line = Background.probe(lab, lab.ns("srv"), "tcp-line-server", "--bind", SERVER,
                            "--port", 6000)
    conn = Background.probe(lab, lab.sub(1), "tcp-hold", "--to", SERVER, "--port", 6000,
                            "--bind-port", bind_port, "--timeout", 5, stdin=True)
    check("ready" in conn.first, "connection failed: %s" % conn.first)
    r = conn.say("send hello")
    check(r["reply"] and "hello" in r["reply"], "no echo on the connection: %s" % r)
    return line, conn, parse_echo(r["reply"].strip())[0]


def _tcp_session(eph, ext):
    return [x for x in sessions(eph, sub_addr(1)) if x["proto"] == "tcp" and
            x["external"] == ext]


def _transitory(eph, ext):
    """The TCP session on `ext` once it is (still) there and transitory, else None."""
    found = _tcp_session(eph, ext)
    return found if len(found) == 1 and found[0]["state"] == "transitory" else None


def test_rfc7857_s2_tcp_rst(binary):
    """A RST from the server reaches the subscriber (ECONNRESET); the session is kept, in the
    transitory state, not removed at once."""
    with lab_session(1) as lab, ephemera_session(binary, lab, WORKERS, cfg(lab)) as eph:
        line, conn, ext = _held_connection(lab, 50040)
        before = _tcp_session(eph, ext)
        r = conn.say("send reset")
        after = wait_until(lambda: _transitory(eph, ext), 5) or _tcp_session(eph, ext)
        line.stop()
        conn.stop()
        log("RST: subscriber saw %s; session before %s, after %s" % (r, before, after))
        check(r["error"] in ("ECONNRESET", "EOF") and not r["reply"],
              "the subscriber did not see the RST: %s" % r)
        check(r["error"] == "ECONNRESET", "the subscriber saw %s, not a reset" % r["error"])
        check(len(before) == 1 and before[0]["state"] == "established",
              "before the RST: %s" % before)
        check(len(after) == 1 and after[0]["state"] == "transitory",
              "after the RST the session should be kept as transitory: %s" % after)


def test_rfc7857_s2_tcp_fin(binary):
    """FIN both ways: the connection closes cleanly and the session turns transitory."""
    with lab_session(1) as lab, ephemera_session(binary, lab, WORKERS, cfg(lab)) as eph:
        line, conn, ext = _held_connection(lab, 50041)
        before = _tcp_session(eph, ext)
        r = conn.say("close")
        after = wait_until(lambda: _transitory(eph, ext), 5) or _tcp_session(eph, ext)
        line.stop()
        log("FIN: %s; session before %s, after %s" % (r, before, after))
        check(len(before) == 1 and before[0]["state"] == "established",
              "before the FINs: %s" % before)
        check(len(after) == 1 and after[0]["state"] == "transitory",
              "after FIN both ways the session should be transitory: %s" % after)


# ======================================================================= limits, REQ-11


def test_rfc6888_req4_port_limit(binary):
    """subscriber_ports_udp = 4, subscriber_ports_tcp = 3: a subscriber gets that many external
    ports per protocol and no more; another subscriber is not affected."""
    subs = 2
    with lab_session(subs) as lab, ephemera_session(
            binary, lab, WORKERS, cfg(lab, sections={"limits": {
                "subscriber_ports_udp": 4, "subscriber_ports_tcp": 3}})):
        echo_server(lab)
        tcp = tcp_echo_server(lab, 6000)
        for i in range(1, subs + 1):
            cli = lab.agent(lab.sub(i))
            ok = []
            for k in range(6):
                cli.open("u%d" % k)
                cli.send("u%d" % k, (SERVER, 5000), "n%d" % k)
                got = cli.recv("u%d" % k, timeout=1.5)
                ok.append(got is not None)
            tcp_ok = []
            for k in range(5):
                r = probe(lab, lab.sub(i), "tcp", "--to", SERVER, "--port", 6000,
                          "--bind-port", 46000 + k, "--timeout", 3)
                tcp_ok.append(r["error"] is None)
            log("sub%d: UDP sockets answered %s, TCP connections %s" % (i, ok, tcp_ok))
            check(ok == [True] * 4 + [False] * 2, "sub%d UDP: %s, expected 4 mapped" % (i, ok))
            check(tcp_ok == [True] * 3 + [False] * 2,
                  "sub%d TCP: %s, expected 3 connections" % (i, tcp_ok))
        tcp.stop()


def test_rfc6888_req11_no_mapping_icmp_3_1(binary):
    """At its port limit a subscriber's new flow is dropped with an ICMP 3/1 (its connected
    socket sees EHOSTUNREACH); its existing mappings keep their endpoints and work."""
    s = scapy()
    with lab_session(1) as lab, ephemera_session(
            binary, lab, WORKERS,
            cfg(lab, sections={"limits": {"subscriber_ports_udp": 2}})) as eph:
        echo_server(lab)
        cli = lab.agent(lab.sub(1))
        first = {}
        for k in range(2):
            cli.open("u%d" % k)
            first[k] = learn_udp(cli, "u%d" % k)
        maps_before = sorted(eph.mappings())
        cap = Capture(lab, lab.sub(1), "icmp")
        r = probe(lab, lab.sub(1), "udp", "--to", SERVER, "--port", 5000, "--connect",
                  "--recverr", "--wait", 1.0, "--tries", 2)
        pkts = cap.stop()
        again = {k: learn_udp(cli, "u%d" % k, data="again") for k in range(2)}
        maps_after = sorted(eph.mappings())
        errs = [(p[s.ICMP].type, p[s.ICMP].code) for p in pkts if p.haslayer(s.ICMP)]
        log("third flow: %s; ICMP at the subscriber: %s" % (r, errs))
        check(r["error"] == "EHOSTUNREACH", "the refused flow's socket saw %s, expected "
              "EHOSTUNREACH (ICMP 3/1)" % (r["error"] or r["reply"]))
        check((3, 1) in errs, "no ICMP 3/1 reached the subscriber: %s" % errs)
        check(again == first, "existing mappings changed: %s -> %s" % (first, again))
        check(maps_after == maps_before, "mappings changed: %s -> %s" % (maps_before,
                                                                        maps_after))


# ======================================================================= timers (config)


def _check_config(binary, body):
    import subprocess
    fd, path = tempfile.mkstemp(suffix=".toml")
    with os.fdopen(fd, "w") as f:
        f.write(body)
    try:
        cp = subprocess.run([binary, "--check-config", path], capture_output=True, text=True,
                            timeout=30)
    finally:
        os.unlink(path)
    return cp.returncode, cp.stdout + cp.stderr


def _timer_minimum(binary, key, minimum):
    base = {"udp": 300, "tcp_established": 7440, "tcp_transitory": 240, "icmp": 60}
    rc, out = _check_config(binary, mode_config(sections={"timeouts": dict(base, **{
        key: minimum - 1})}))
    log("timeouts.%s = %d: exit %d: %s" % (key, minimum - 1, rc, out.strip()))
    check(rc != 0, "timeouts.%s = %d (below %d) was accepted" % (key, minimum - 1, minimum))
    check("timeouts.%s" % key in out, "the refusal does not name timeouts.%s: %s" % (key, out))
    rc, out = _check_config(binary, mode_config(sections={"timeouts": dict(base, **{
        key: minimum})}))
    check(rc == 0, "timeouts.%s = %d (the minimum) was refused: %s" % (key, minimum, out))


def test_rfc4787_req5_udp_timer_minimum(binary):
    _timer_minimum(binary, "udp", 120)


def test_rfc5382_req5_tcp_timer_minimums(binary):
    _timer_minimum(binary, "tcp_established", 7440)
    _timer_minimum(binary, "tcp_transitory", 240)


def test_rfc5508_req2_icmp_timer_minimum(binary):
    _timer_minimum(binary, "icmp", 60)


# ======================================================================= hairpinning


def _hairpin_udp(lab, a, b):
    """Subscriber a sends to subscriber b's external endpoint and back; b must see a's
    external endpoint as the source. Returns (a's external, b's external)."""
    ca, cb = lab.agent(lab.sub(a)), lab.agent(lab.sub(b))
    ca.open("h")
    cb.open("h")
    ea, eb = learn_udp(ca, "h"), learn_udp(cb, "h")
    ca.send("h", eb, "hairpin %d->%d" % (a, b))
    got = cb.recv("h", timeout=2)
    check(got is not None and got[1] == "hairpin %d->%d" % (a, b),
          "sub%d -> sub%d's external %s:%d: nothing arrived (%r)" % (a, b, *eb, got))
    check(got[0] == ea, "sub%d saw the hairpinned datagram from %s, expected sub%d's external "
          "%s" % (b, got[0], a, ea))
    cb.send("h", ea, "back %d->%d" % (b, a))
    got = ca.recv("h", timeout=2)
    check(got is not None and got[0] == eb, "the answer to sub%d came as %r, expected from %s"
          % (a, got, eb))
    return ea, eb


def _hairpin_tcp(lab, a, b, port_a, port_b):
    """b listens on port_b after making a TCP mapping from it; a connects from port_a to b's
    external endpoint; b's server must see a's external endpoint."""
    tcp = tcp_echo_server(lab, 6000)
    eb = learn_tcp(lab, lab.sub(b), port_b)
    ea = learn_tcp(lab, lab.sub(a), port_a)
    tcp.stop()
    srv_b = tcp_echo_server(lab, port_b, "0.0.0.0", lab.sub(b))
    r = probe(lab, lab.sub(a), "tcp", "--to", eb[0], "--port", eb[1], "--bind-port", port_a,
              "--data", "hairpin")
    srv_b.stop()
    check(r["error"] is None and r["reply"], "sub%d -> sub%d's external %s:%d over TCP: %s" % (
        a, b, *eb, r))
    seen = parse_echo(r["reply"])[0]
    check(seen == ea, "sub%d's server saw the hairpinned connection from %s, expected sub%d's "
          "external %s" % (b, seen, a, ea))


def test_rfc4787_req9_hairpin_udp(binary):
    with lab_session(2) as lab, ephemera_session(binary, lab, WORKERS, cfg(lab)):
        echo_server(lab)
        log("hairpin UDP: %s" % (_hairpin_udp(lab, 1, 2),))


def test_rfc5382_req8_hairpin_tcp(binary):
    with lab_session(2) as lab, ephemera_session(binary, lab, WORKERS, cfg(lab)):
        _hairpin_tcp(lab, 1, 2, 50100, 50200)


def test_rfc4787_req9_hairpin_two_workers(binary):
    """Two workers, four subscribers: UDP between every ordered pair and TCP between pairs,
    some of whose subscribers belong to different workers."""
    subs, workers = 4, 2
    with lab_session(subs) as lab, ephemera_session(binary, lab, workers, cfg(lab)):
        owners = {i: owner_of_subscriber(sub_addr(i), workers) for i in range(1, subs + 1)}
        log("subscriber owners: %s" % owners)
        pairs = [(a, b) for a in range(1, subs + 1) for b in range(1, subs + 1) if a != b]
        check(any(owners[a] != owners[b] for a, b in pairs), "no pair crosses workers")
        echo_server(lab)
        for a, b in pairs:
            _hairpin_udp(lab, a, b)
        cross = [(a, b) for a, b in pairs if owners[a] != owners[b]][:2]
        same = [(a, b) for a, b in pairs if owners[a] == owners[b]][:1]
        for k, (a, b) in enumerate(cross + same):
            _hairpin_tcp(lab, a, b, 50300 + k, 50400 + k)
        log("UDP hairpin for %d pairs, TCP for %s" % (len(pairs), cross + same))


def test_rfc4787_req9_hairpin_stun(binary):
    """The STUN client's own hairpin check."""
    out = _stun(binary, "endpoint-independent", "Independent Mapping, Independent Filter")
    check("will hairpin" in out, "the STUN client reports: %s" % out)


def test_rfc5508_req7_hairpin_icmp_echo(binary):
    """A subscriber pinging another subscriber's external (pool) address gets echo replies."""
    with lab_session(2) as lab, ephemera_session(binary, lab, WORKERS, cfg(lab)):
        echo_server(lab)
        cb = lab.agent(lab.sub(2))
        cb.open("h")
        eb = learn_udp(cb, "h")
        sent, got, out = lab.ping(lab.sub(1), eb[0], 3)
        log(out)
        check(got == sent == 3, "ping %s (sub2's external address): %d of %d" % (eb[0], got,
                                                                                 sent))


def test_rfc5508_req7_hairpin_icmp_error(binary):
    """sub1 sends UDP to sub2's external endpoint after sub2 closed that socket: sub2's port
    unreachable comes back hairpinned, and sub1's connected socket sees ECONNREFUSED."""
    with lab_session(2) as lab, ephemera_session(binary, lab, WORKERS, cfg(lab)):
        echo_server(lab)
        r = probe(lab, lab.sub(2), "udp", "--to", SERVER, "--port", 5000, "--bind-port", 50500,
                  "--tries", 3)
        check(r["reply"], "sub2 got no echo: %s" % r)
        eb = parse_echo(r["reply"])[0]  # and the socket is closed: the probe exited
        r1 = probe(lab, lab.sub(1), "udp", "--to", eb[0], "--port", eb[1], "--connect",
                   "--wait", 1.0, "--tries", 2)
        log("sub1 -> %s:%d (closed at sub2): %s" % (*eb, r1))
        check(r1["error"] == "ECONNREFUSED", "sub1's socket saw %s, expected ECONNREFUSED" % (
            r1["error"] or r1["reply"]))


# ======================================================================= ICMP errors


def test_rfc4787_req12_udp_port_unreachable(binary):
    """UDP to a closed server port: the server's port unreachable reaches the subscriber's
    connected socket (ECONNREFUSED), and the mapping is not ended by it."""
    with lab_session(1) as lab, ephemera_session(binary, lab, WORKERS, cfg(lab)):
        echo_server(lab)
        r0 = probe(lab, lab.sub(1), "udp", "--to", SERVER, "--port", 5000, "--bind-port",
                   50600, "--tries", 3)
        r = probe(lab, lab.sub(1), "udp", "--to", SERVER, "--port", 5999, "--bind-port", 50600,
                  "--connect", "--wait", 1.0, "--tries", 2)
        r1 = probe(lab, lab.sub(1), "udp", "--to", SERVER, "--port", 5000, "--bind-port",
                   50600, "--tries", 3)
        log("before %s; closed port %s; after %s" % (r0, r, r1))
        check(r["error"] == "ECONNREFUSED", "the subscriber saw %s, expected ECONNREFUSED" % (
            r["error"] or r["reply"]))
        check(r0["reply"] and r1["reply"] and parse_echo(r0["reply"])[0] ==
              parse_echo(r1["reply"])[0], "the mapping changed across the error: %s, %s" % (
                  r0["reply"], r1["reply"]))


def test_rfc5508_req4_outside_error_translated(binary):
    """The server's port unreachable, as the subscriber receives it: type 3 code 3 kept, outer
    destination and embedded source restored to the subscriber's address and port, embedded
    destination the server."""
    s = scapy()
    with lab_session(1) as lab, ephemera_session(binary, lab, WORKERS, cfg(lab)):
        cap = Capture(lab, lab.sub(1), "icmp")
        probe(lab, lab.sub(1), "udp", "--to", SERVER, "--port", 5999, "--bind-port", 50610,
              "--connect", "--wait", 1.0)
        pkts = [p for p in cap.stop() if p.haslayer(s.ICMP) and p[s.ICMP].type == 3]
        check(pkts, "no ICMP error reached the subscriber")
        p = pkts[0]
        inner = p[s.IPerror]
        got = (p[s.IP].src, p[s.IP].dst, p[s.ICMP].code, inner.src, inner.dst,
               p[s.UDPerror].sport, p[s.UDPerror].dport)
        log("error at the subscriber: %s" % (got,))
        check(got == (SERVER, sub_addr(1), 3, sub_addr(1), SERVER, 50610, 5999),
              "translated error %s, expected (outer %s -> %s, code 3, embedded %s:50610 -> "
              "%s:5999)" % (got, SERVER, sub_addr(1), sub_addr(1), SERVER))


def test_rfc5382_req9_tcp_refused(binary):
    """TCP to a closed server port is refused: the server's RST reaches the subscriber."""
    with lab_session(1) as lab, ephemera_session(binary, lab, WORKERS, cfg(lab)):
        r = probe(lab, lab.sub(1), "tcp", "--to", SERVER, "--port", 5999, "--timeout", 5)
        log("connect to a closed port: %s" % r)
        check(r["error"] == "ECONNREFUSED", "expected ECONNREFUSED, got %s" % r)


def test_rfc5382_req10_icmp_error_keeps_tcp(binary):
    """An ICMP 3/3 from the server about an established connection is translated to the
    subscriber and ends neither the connection nor the mapping."""
    s = scapy()
    with lab_session(1) as lab, ephemera_session(binary, lab, WORKERS, cfg(lab)) as eph:
        line, conn, ext = _held_connection(lab, 50620)
        cap = Capture(lab, lab.sub(1), "icmp")
        err = s.IP(src=SERVER, dst=ext[0]) / s.ICMP(type=3, code=3) / bytes(
            s.IP(src=ext[0], dst=SERVER, ttl=63) / s.TCP(sport=ext[1], dport=6000, flags="A",
                                                         seq=1))[:28]
        rawsend(lab, lab.ns("srv"), [err])
        time.sleep(0.5)
        pkts = [p for p in cap.stop() if p.haslayer(s.ICMP)]
        after = conn.say("send still there")
        sess = _tcp_session(eph, ext)
        conn.say("close")
        line.stop()
        log("ICMP at the subscriber: %s; after: %s; session %s" % (
            [p.summary() for p in pkts], after, sess))
        check(after["reply"] and "still there" in after["reply"],
              "the connection ended after the ICMP error: %s" % after)
        check(len(sess) == 1, "the session is gone: %s" % sess)
        check(any(p[s.ICMP].type == 3 and p[s.IP].dst == sub_addr(1) and
                  p.haslayer(s.TCPerror) and p[s.TCPerror].sport == 50620 for p in pkts),
              "the ICMP error was not translated to the subscriber: %s" % [
                  p.summary() for p in pkts])


def test_rfc5508_req5_inside_error_translated(binary):
    """The server sends to a subscriber's external endpoint whose socket has closed: the
    subscriber's port unreachable goes out translated (outer source the pool address, embedded
    destination the external endpoint) and the server's connected socket sees ECONNREFUSED."""
    s = scapy()
    with lab_session(1) as lab, ephemera_session(binary, lab, WORKERS, cfg(lab)):
        echo_server(lab)
        r = probe(lab, lab.sub(1), "udp", "--to", SERVER, "--port", 5000, "--bind-port", 50630,
                  "--tries", 3)
        check(r["reply"], "no echo: %s" % r)
        ext = parse_echo(r["reply"])[0]
        cap = Capture(lab, lab.ns("srv"), "icmp")
        rs = probe(lab, lab.ns("srv"), "udp", "--to", ext[0], "--port", ext[1], "--bind",
                   SERVER, "--bind-port", 5005, "--connect", "--wait", 1.0, "--tries", 2)
        pkts = [p for p in cap.stop() if p.haslayer(s.ICMP) and p[s.ICMP].type == 3]
        log("server -> %s:%d: %s; errors %s" % (*ext, rs, [p.summary() for p in pkts]))
        check(rs["error"] == "ECONNREFUSED", "the server saw %s, expected ECONNREFUSED" % (
            rs["error"] or rs["reply"]))
        p = pkts[0]
        got = (p[s.IP].src, p[s.IPerror].dst, p[s.UDPerror].dport)
        check(got == (ext[0], ext[0], ext[1]), "error (outer source, embedded destination) %s,"
              " expected %s" % (got, (ext[0], ext[0], ext[1])))


def _bad_error(binary, mangle, label):
    """A valid 3/3 error about the subscriber's UDP flow is delivered (the control); the same
    error made invalid by `mangle` is dropped."""
    s = scapy()
    with lab_session(1) as lab, ephemera_session(binary, lab, WORKERS, cfg(lab)) as eph:
        echo_server(lab)
        cli = lab.agent(lab.sub(1))
        cli.open("u", port=50640)
        ext = learn_udp(cli, "u")

        def error(ip_id):
            inner = s.IP(src=ext[0], dst=SERVER, id=ip_id, ttl=63) / s.UDP(
                sport=ext[1], dport=5000) / b"quoted"
            return s.IP(src=SERVER, dst=ext[0]) / s.ICMP(type=3, code=3) / bytes(inner)

        good, bad = mangle(error, s)
        cap = Capture(lab, lab.sub(1), "icmp")
        rawsend(lab, lab.ns("srv"), [good], gap=0.2)
        rawsend(lab, lab.ns("srv"), [bad])
        time.sleep(0.5)
        pkts = [p for p in cap.stop() if p.haslayer(s.ICMP) and p.haslayer(s.IPerror)]
        ids = [p[s.IPerror].id for p in pkts]
        log("%s: errors at the subscriber with embedded IP ids %s; drops %s" % (
            label, ids, {k: v for k, v in eph.stats().items() if k.startswith("drop_") and v}))
        check(1111 in ids, "the valid error (control) was not delivered: %s" % ids)
        check(2222 not in ids, "the error with %s was delivered" % label)


def test_rfc5508_req3_bad_icmp_checksum(binary):
    def mangle(error, s):
        bad = bytearray(bytes(error(2222)))
        bad[22] ^= 0x55  # the ICMP checksum
        return error(1111), s.IP(bytes(bad))
    _bad_error(binary, mangle, "a bad ICMP checksum")


def test_rfc5508_req3_bad_embedded_ip_checksum(binary):
    """Also: the valid control carries a wrong embedded UDP checksum, which must not be
    checked (RFC 5508 REQ-3)."""
    def mangle(error, s):
        def with_inner(ip_id, fix):
            raw = bytearray(bytes(error(ip_id)))
            inner = 28  # outer IP 20 + ICMP 8
            fix(raw, inner)
            raw[22:24] = b"\0\0"
            c = s.checksum(bytes(raw[20:]))
            raw[22:24] = c.to_bytes(2, "big")
            return s.IP(bytes(raw))

        def bad_udp_sum(raw, inner):
            raw[inner + 26] ^= 0x33

        def bad_ip_sum(raw, inner):
            raw[inner + 10] ^= 0x33
        return with_inner(1111, bad_udp_sum), with_inner(2222, bad_ip_sum)
    _bad_error(binary, mangle, "a bad embedded IP checksum")


def test_rfc5508_req6_error_no_refresh(binary):
    """ICMP errors about a UDP mapping and an echo (query) session are delivered but refresh
    neither (telemetry idle time keeps growing), even with inbound refresh on."""
    s = scapy()
    with lab_session(1) as lab, ephemera_session(binary, lab, WORKERS, cfg(lab, sections={
            "timeouts": {"inbound_refresh": True}})) as eph:
        echo_server(lab)
        cli = lab.agent(lab.sub(1))
        cli.open("u", port=50650)
        uext = learn_udp(cli, "u")
        cap0 = Capture(lab, lab.ns("srv"), "icmp[icmptype] == 8")
        r = probe(lab, lab.sub(1), "icmp-echo", "--to", SERVER, "--id", 777)
        req = [p for p in cap0.stop() if p.haslayer(s.ICMP)]
        check(r["replies"] and req, "echo failed: %s" % r)
        iext = (req[0][s.IP].src, req[0][s.ICMP].id)
        time.sleep(3.5)
        cap = Capture(lab, lab.sub(1), "icmp[icmptype] == 3")
        errors = [
            s.IP(src=SERVER, dst=uext[0]) / s.ICMP(type=3, code=3) / bytes(
                s.IP(src=uext[0], dst=SERVER, ttl=63) / s.UDP(sport=uext[1], dport=5000) /
                b"x")[:28],
            s.IP(src=SERVER, dst=iext[0]) / s.ICMP(type=3, code=1) / bytes(
                s.IP(src=iext[0], dst=SERVER, ttl=63) / s.ICMP(type=8, id=iext[1], seq=1))[:28],
        ]
        for _ in range(3):
            rawsend(lab, lab.ns("srv"), errors)
            time.sleep(0.3)
        delivered = [p for p in cap.stop() if p.haslayer(s.ICMP)]
        sess = sessions(eph, sub_addr(1))
        log("sessions after the errors: %s; errors delivered: %d" % (sess, len(delivered)))
        for proto in ("udp", "icmp"):
            mine = [x for x in sess if x["proto"] == proto]
            check(mine, "the %s session is gone: %s" % (proto, sess))
            check(all(x["idle"] >= 3 for x in mine),
                  "an ICMP error refreshed the %s session: %s" % (proto, mine))
        check(len(delivered) >= 2, "the errors were not delivered (%d), so the test shows "
              "nothing" % len(delivered))


# ======================================================================= TTL


def _hops(out):
    hops = {}
    for line in out.splitlines():
        m = re.match(r"\s*(\d+)\s+(.*)$", line)
        if m:
            hops[int(m.group(1))] = set(re.findall(r"\d+\.\d+\.\d+\.\d+", m.group(2)))
    return hops


def test_rfc5508_s7_2_traceroute_from_inside(binary):
    """traceroute (UDP and ICMP) from a subscriber through a router to the server: hop 1 the
    gateway (ephemera's Time Exceeded), hop 2 the router (its Time Exceeded translated back),
    hop 3 the server."""
    with lab_session(1, router=True) as lab, ephemera_session(binary, lab, WORKERS, cfg(lab)):
        want = {1: GATEWAY, 2: nslab.ROUTER_NAT_SIDE, 3: SERVER}
        failures = []
        for mode in ([], ["-I"]):
            cp = lab.run(lab.sub(1), ["traceroute", "-n", "-q", "2", "-w", "1", "-m", "4"] +
                         mode + [SERVER], timeout=60)
            hops = _hops(cp.stdout)
            log(cp.stdout)
            for h, addr in want.items():
                if addr not in hops.get(h, set()):
                    failures.append("traceroute %s: hop %d is %s, expected %s" % (
                        " ".join(mode) or "(UDP)", h, hops.get(h), addr))
        check(not failures, "; ".join(failures))


def test_rfc5508_s7_2_ttl_expiry_from_outside(binary):
    """traceroute -U from the server to a subscriber's external endpoint (endpoint-independent
    filtering): hop 1, where the TTL runs out at ephemera, answers with Time Exceeded from the
    pool address."""
    with lab_session(1) as lab, ephemera_session(binary, lab, WORKERS, cfg(lab)):
        echo_server(lab)
        cli = lab.agent(lab.sub(1))
        cli.open("u", port=50700)
        ext = learn_udp(cli, "u")
        cp = lab.run(lab.ns("srv"), ["traceroute", "-n", "-U", "-p", str(ext[1]), "-q", "2",
                                     "-w", "1", "-m", "1", ext[0]], timeout=60)
        log(cp.stdout)
        hops = _hops(cp.stdout)
        check(ext[0] in hops.get(1, set()), "hop 1 is %s, expected %s (Time Exceeded from "
              "ephemera)" % (hops.get(1), ext[0]))


# ======================================================================= fragments, MTU


def _fragments_session(binary, lab, **kw):
    """ephemera on the driver --fragments-on names: net_af_packet with the suite's workers
    (whole datagrams), or net_pcap with one worker (fragments as sent)."""
    workers = 1 if FRAGMENTS == "pcap" else WORKERS
    return ephemera_session(binary, lab, workers, cfg(lab, driver=FRAGMENTS, **kw),
                            driver=FRAGMENTS)



def test_rfc4787_req14_ping_fragmented(binary):
    with lab_session(1) as lab, _fragments_session(binary, lab):
        cp = lab.run(lab.sub(1), ["ping", "-n", "-c", "3", "-i", "0.3", "-W", "2", "-s", "3000",
                                  SERVER], timeout=30)
        log(cp.stdout)
        check(" 3 received" in cp.stdout, "ping -s 3000: %s" % cp.stdout.strip()[-200:])


def test_rfc4787_req14_fragmented_ping_to_gateway_and_pool(binary):
    """3000-byte pings answered by ephemera itself: a subscriber pings the inside gateway and
    the server pings a pool address. The port (net_af_packet) hands over the requests
    reassembled; the 3028-byte replies must leave split to the MTU. (From fragments as sent,
    ephemera answers no ping: it reassembles nothing addressed to itself.)"""
    with lab_session(1) as lab, _fragments_session(binary, lab):
        for ns, target in ((lab.sub(1), GATEWAY), (lab.ns("srv"), POOL[0])):
            cp = lab.run(ns, ["ping", "-n", "-c", "3", "-i", "0.3", "-W", "2", "-s", "3000",
                              target], timeout=30)
            log(cp.stdout)
            check(" 3 received" in cp.stdout, "ping -s 3000 %s: %s" % (
                target, cp.stdout.strip()[-200:]))


def test_rfc4787_req14_udp_fragmented(binary):
    """4000-byte datagrams, fragmented by Linux, both ways: the echo carries them back."""
    with lab_session(1) as lab, _fragments_session(binary, lab):
        echo_server(lab)
        cli = lab.agent(lab.sub(1))
        cli.open("u", port=50710)
        data = "".join(chr(ord("a") + k % 26) for k in range(4000))
        src, text = udp_exchange(cli, "u", (SERVER, 5000), data)
        ext, echoed = parse_echo(text)
        check(echoed == data, "the 4000-byte echo came back with %d bytes" % len(echoed))
        check(in_pool(ext), "the server saw %s" % (ext,))


def _fragments_reversed(s, ip):
    frags = s.fragment(ip, fragsize=1000)
    check(len(frags) >= 3, "scapy made %d fragments" % len(frags))
    return list(reversed(frags))


def test_rfc4787_req14_out_of_order_fragments(binary):
    """A 3000-byte UDP datagram in three fragments, first fragment last, each way: from a
    subscriber port with no mapping yet, and from the server to an existing mapping."""
    s = scapy()
    with lab_session(1) as lab, _fragments_session(binary, lab):
        srv = lab.agent(lab.ns("srv"))
        srv.open("r", SERVER, 5001)
        echo_server(lab)
        body = ("%04d" % 0 + "abcdefghijklmnopqrstuvwxyz" * 116)[:3000].encode()
        out = s.IP(src=sub_addr(1), dst=SERVER, id=4321) / s.UDP(sport=50720, dport=5001) / body
        rawsend(lab, lab.sub(1), _fragments_reversed(s, out))
        got = srv.recv("r", timeout=3)
        check(got is not None, "inside to outside: the server got nothing")
        check(got[1] == body.decode(), "inside to outside: %d bytes arrived, not the 3000 "
              "sent" % len(got[1]))
        check(in_pool(got[0]), "the server saw %s" % (got[0],))
        cli = lab.agent(lab.sub(1))
        cli.open("u", port=50721)
        ext = learn_udp(cli, "u")
        text = ("0123456789" * 300).encode()
        back = s.IP(src=SERVER, dst=ext[0], id=1234) / s.UDP(sport=5000, dport=ext[1]) / text
        rawsend(lab, lab.ns("srv"), _fragments_reversed(s, back))
        got = cli.recv("u", timeout=3)
        check(got is not None, "outside to inside: the subscriber got nothing")
        check(got == ((SERVER, 5000), text.decode()), "outside to inside: got %d bytes from %s"
              % (len(got[1]), got[0]))


def test_rfc4787_req14_fragment_flood(binary):
    """Incomplete fragments flood in from outside while 20 UDP exchanges of a subscriber go
    on: every exchange still succeeds. The flood runs until the exchanges are over (at most
    60 s), however slowly a loaded host lets them go."""
    with lab_session(1) as lab, _fragments_session(binary, lab) as eph:
        echo_server(lab)
        cli = lab.agent(lab.sub(1))
        cli.open("u", port=50730)
        ext = learn_udp(cli, "u")
        flood = lab.popen(lab.ns("srv"), [
            nslab.PYTHON, conflab.PROBE, "frag-flood", "--src", SERVER2, "--to", ext[0],
            "--port", str(ext[1]), "--duration", "60"],
            stdout=nslab.subprocess.PIPE, text=True)
        try:
            time.sleep(0.5)
            ok = 0
            for k in range(20):
                src, text = udp_exchange(cli, "u", (SERVER, 5000), "during %d" % k, timeout=1.0,
                                         tries=1)
                check(parse_echo(text)[0] == ext, "the mapping changed during the flood")
                ok += 1
                time.sleep(0.1)
            still_flooding = flood.poll() is None
            flood.terminate()
            out, _ = flood.communicate(timeout=30)
        finally:
            if flood.poll() is None:
                flood.kill()
                flood.wait()
        sent = json.loads(out.strip().splitlines()[-1])["sent"]
        log("%d exchanges during a flood of %d fragments" % (ok, sent))
        check(still_flooding, "the flood ended before the exchanges did; the test is void")
        check(sent > 1000, "the flood sent only %d fragments" % sent)
        log("flood: %s" % {k: v for k, v in eph.stats().items() if "frag" in k})


def test_rfc4787_req13_df_too_big(binary):
    """[outside] mtu = 1400. First 1500-byte echo requests without DF (ping -M dont, before
    the subscriber knows any path MTU, so it sends them whole): ephemera splits each into
    pieces of at most 1400 bytes that carry the whole datagram, and the replies come back
    (REQ-13a). Then with DF (ping -M do): ICMP 3/4 from the inside gateway with next-hop MTU
    1400, quoting the request, which ping reports (REQ-13)."""
    s = scapy()
    with lab_session(1) as lab, _fragments_session(
            binary, lab, sections={"outside": {"mtu": 1400}}) as eph:
        cap = Capture(lab, lab.ns("srv"), "icmp")
        cp = lab.run(lab.sub(1), ["ping", "-n", "-c", "2", "-i", "0.3", "-W", "2", "-M", "dont",
                                  "-s", "1472", SERVER], timeout=30)
        pkts = cap.stop()
        log(cp.stdout)
        check(" 2 received" in cp.stdout, "ping -M dont -s 1472: %s" % cp.stdout.strip())
        pieces = {}
        for p in pkts:
            if p.haslayer(s.IP) and p[s.IP].src in POOL:
                pieces.setdefault(p[s.IP].id, []).append(
                    (p[s.IP].frag * 8, len(p[s.IP]), p[s.IP].len - p[s.IP].ihl * 4,
                     "MF" in str(p[s.IP].flags)))
        log("pieces at the server per IP id (offset, length, payload, MF): %s" % pieces)
        check(len(pieces) == 2, "the server saw %d datagrams from the pool, 2 sent" %
              len(pieces))
        for ip_id, ps in pieces.items():
            check(len(ps) >= 2, "datagram %d reached the server unsplit: %s" % (ip_id, ps))
            check(max(length for _, length, _, _ in ps) <= 1400,
                  "datagram %d: pieces larger than the MTU 1400: %s" % (ip_id, ps))
            check(sum(payload for _, _, payload, _ in ps) == 1480 and
                  sorted(ps)[-1][3] is False and all(mf for *_, mf in sorted(ps)[:-1]),
                  "datagram %d: pieces do not carry the 1480-byte echo: %s" % (ip_id, ps))
        cap = Capture(lab, lab.sub(1), "icmp[icmptype] == 3")
        cp = lab.run(lab.sub(1), ["ping", "-n", "-c", "2", "-i", "0.3", "-W", "2", "-M", "do",
                                  "-s", "1472", SERVER], timeout=30)
        errs = [p for p in cap.stop() if p.haslayer(s.ICMP)]
        out = cp.stdout + cp.stderr
        log(out)
        log("errors at the subscriber: %s; drop_too_big %d" % (
            [p.summary() for p in errs], eph.stats().get("drop_too_big", -1)))
        check(re.search(r"mtu ?= ?1400", out), "ping -M do -s 1472 did not report mtu 1400: %s"
              % out.strip())
        check(errs, "no ICMP 3/4 reached the subscriber")
        e = errs[0]
        got = (e[s.IP].src, e[s.ICMP].type, e[s.ICMP].code, e[s.ICMP].nexthopmtu,
               e[s.IPerror].src, e[s.IPerror].dst, e[s.IPerror].len)
        check(got == (GATEWAY, 3, 4, 1400, sub_addr(1), SERVER, 1500),
              "the error (source, type, code, MTU, quoted source, destination, length) is %s, "
              "expected %s" % (got, (GATEWAY, 3, 4, 1400, sub_addr(1), SERVER, 1500)))


TESTS = {name[len("test_"):]: fn for name, fn in globals().items()
         if name.startswith("test_") and callable(fn)}

def _take_option(name, default, choices=None):
    """Removes `name VALUE` from sys.argv and returns VALUE (`default` when absent)."""
    if name not in sys.argv:
        return default
    i = sys.argv.index(name)
    value = sys.argv[i + 1] if i + 1 < len(sys.argv) else ""
    del sys.argv[i:i + 2]
    if choices is not None and value not in choices:
        sys.exit("%s: one of %s, not %r" % (name, ", ".join(choices), value))
    return value


if __name__ == "__main__":
    WORKERS = int(_take_option("--workers", "1", [str(n) for n in range(1, 65)]))
    FRAGMENTS = _take_option("--fragments-on", "af_packet", sorted(nslab.DRIVERS))
    MODE = _take_option("--mode", "dynamic", ["dynamic", "blocks", "deterministic"])
    sys.exit(nslab.main(TESTS))
