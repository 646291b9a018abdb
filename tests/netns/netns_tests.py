#!/usr/bin/python3
"""ephemera end to end: real Linux UDP, TCP and ICMP through the dataplane, in network
namespaces (scripts/lab.sh), checked from both ends and through telemetry.

    /usr/bin/python3 netns_tests.py TEST_NAME EPHEMERA_BINARY

Each test builds its own lab (namespaces n<pid>-*) and removes it on every exit path.
"""

import json
import subprocess
import sys
import time

from nslab import (GATEWAY, IANA, POOL, SERVER, SERVER2, check, ephemera_session,
                   lab_session, log, main, make_config, parse_echo, parse_mapping, sub_addr,
                   udp_exchange)
import nslab

# Worker count for the single-configuration tests; test_multi_worker covers 1, 2 and 4.
WORKERS = 2
RESERVED = (65000, 65010)  # make_config's default reserved range


def in_range(port, lo=IANA[0], hi=IANA[1]):
    return lo <= port <= hi and not (RESERVED[0] <= port <= RESERVED[1])


def check_external(ep, what, pool=POOL):
    check(ep[0] in pool, "%s: external address %s is not in the pool %s" % (what, ep[0], pool))
    check(in_range(ep[1]), "%s: external port %d outside the configured range %d-%d "
          "(or in the reserved %d-%d)" % (what, ep[1], IANA[0], IANA[1], *RESERVED))


def wait_stats(eph, pred, timeout=3.0):
    """Telemetry /ephemera/stats once pred(stats) holds (counters settle a few loop iterations
    after the traffic); the last reading otherwise."""
    deadline = time.monotonic() + timeout
    while True:
        st = eph.stats()
        if pred(st) or time.monotonic() > deadline:
            return st
        time.sleep(0.1)


def delta(after, before, key):
    return after[key] - before[key]


# ------------------------------------------------------------------------------ 1. UDP both ways


def test_udp_both_ways(binary):
    with lab_session(1) as lab, ephemera_session(binary, lab, WORKERS):
        srv = lab.agent(lab.ns("srv"))
        srv.open("s", SERVER, 5000)
        srv.serve_echo("s")
        cli = lab.agent(lab.sub(1))
        # One source port below the range (must be moved into it) and one inside it.
        ports = {"low": cli.open("low", port=40000), "high": cli.open("high", port=50000)}
        external = {}
        for sock in ports:
            for k in range(10):
                data = "%s-%d" % (sock, k)
                src, text = udp_exchange(cli, sock, (SERVER, 5000), data)
                check(src == (SERVER, 5000), "reply came from %s, not the server" % (src,))
                ep, echoed = parse_echo(text)
                check(echoed == data, "echo carried %r, sent %r" % (echoed, data))
                external.setdefault(sock, set()).add(ep)
        seen = srv.seen("s")
        check(len(seen) >= 20, "server saw %d datagrams, 20 sent" % len(seen))
        for src, data in seen:
            check(not src[0].startswith("100.64."),
                  "server saw the untranslated subscriber address %s" % (src,))
            check_external(src, "datagram %r" % data)
        for sock, eps in external.items():
            check(len(eps) == 1, "socket %s was seen from several endpoints %s" % (sock, eps))
            log("subscriber %s:%d (%s) -> server saw %s:%d" % (sub_addr(1), ports[sock], sock,
                                                                *next(iter(eps))))
        check(external["low"] != external["high"],
              "two sockets share one external endpoint %s" % external["low"])


# ---------------------------------------------------------------------------- 2. TCP transfer


def tcp_transfer(lab, size, server_timeout, run_timeout):
    """`size` bytes each way over one TCP connection from subscriber 1 to SERVER:7000 (the peer
    tool's client uploads, its server sends back as much); returns (client, server) reports."""
    server = lab.popen(lab.ns("srv"), [nslab.PYTHON, nslab.PEER, "tcp-server", "--bind",
                                       SERVER, "--port", "7000", "--send-bytes", str(size),
                                       "--timeout", str(server_timeout)],
                       stdout=subprocess.PIPE, text=True)
    try:
        check("listening" in server.stdout.readline(), "TCP server did not start")
        cp = lab.run(lab.sub(1), [nslab.PYTHON, nslab.PEER, "tcp-client", "--to", SERVER,
                                  "--port", "7000", "--send-bytes", str(size),
                                  "--timeout", "60"], timeout=run_timeout)
        out, _ = server.communicate(timeout=60)
    finally:
        if server.poll() is None:
            server.kill()
            server.wait()
    return (json.loads(cp.stdout.strip().splitlines()[-1]),
            json.loads(out.strip().splitlines()[-1]))


def test_tcp_transfer_50mb(binary):
    size = 50 * 1024 * 1024
    with lab_session(1) as lab, ephemera_session(binary, lab, WORKERS) as eph:
        client, srv = tcp_transfer(lab, size, server_timeout=150, run_timeout=200)
        check("error" not in client, "client failed: %s" % client.get("error"))
        check("error" not in srv, "server failed: %s" % srv.get("error"))
        log("client %s sent %d B sha256 %s, received %d B in %.2f s" % (
            client["local"], client["sent"], client["sent_sha256"], client["received"],
            client["seconds"]))
        log("server saw peer %s, received %d B sha256 %s" % (srv["peer"], srv["received"],
                                                            srv["received_sha256"]))
        check(srv["received"] == size, "server received %d B of %d" % (srv["received"], size))
        check(srv["received_sha256"] == client["sent_sha256"],
              "upload corrupted: client sent sha256 %s, server got %s" % (
                  client["sent_sha256"], srv["received_sha256"]))
        check(client["received"] == size,
              "client received %d B of %d" % (client["received"], size))
        check(client["received_sha256"] == srv["sent_sha256"],
              "download corrupted: server sent sha256 %s, client got %s" % (
                  srv["sent_sha256"], client["received_sha256"]))
        check_external(tuple(srv["peer"]), "TCP connection")
        st = eph.stats()
        check(st["in2out_translated"] > size // 1500,
              "in2out_translated %d is too small for %d B" % (st["in2out_translated"], size))
        check(st["drop_bad_ip_checksum"] == 0, "ephemera saw bad IP checksums")


# ------------------------------------------------------------------------------ 3. ICMP echo


def test_icmp_echo(binary):
    with lab_session(1) as lab, ephemera_session(binary, lab, WORKERS) as eph:
        before = eph.stats()
        sent, got, out = lab.ping(lab.sub(1), SERVER, 3)
        log(out)
        check(sent == 3 and got == 3, "ping %s: %d of %d answered" % (SERVER, got, sent))
        sent, got, out = lab.ping(lab.sub(1), GATEWAY, 3)
        log(out)
        check(sent == 3 and got == 3, "ping gateway %s: %d of %d answered" % (GATEWAY, got, sent))
        after = wait_stats(eph, lambda s: delta(s, before, "icmp_echo_replies_sent") >= 3)
        check(delta(after, before, "icmp_echo_replies_sent") == 3,
              "icmp_echo_replies_sent rose by %d for 3 gateway pings" %
              delta(after, before, "icmp_echo_replies_sent"))
        check(delta(after, before, "in2out_translated") == 3,
              "in2out_translated rose by %d for 3 echo requests" %
              delta(after, before, "in2out_translated"))
        check(delta(after, before, "out2in_translated") == 3,
              "out2in_translated rose by %d for 3 echo replies" %
              delta(after, before, "out2in_translated"))
        icmp = [parse_mapping(m) for m in eph.mappings() if m.startswith("icmp ")]
        check(len(icmp) == 1, "expected one ICMP mapping, telemetry lists %s" % icmp)
        check(icmp[0]["inside"][0] == sub_addr(1), "ICMP mapping for %s" % (icmp[0]["inside"],))
        check_external(icmp[0]["external"], "ICMP echo identifier")


# ---------------------------------------------------------------- 4. RFC 4787 REQ-3 (no overloading)


def _req3_round(lab, eph, pool, subs, label):
    """Every subscriber sends from the same source port; external endpoints must differ and
    traffic addressed to each must reach only that subscriber."""
    srv = lab.agent(lab.ns("srv"))
    srv.open("s", SERVER, 5000)
    clients = {}
    for i in range(1, subs + 1):
        cli = lab.agent(lab.sub(i))
        check(cli.open("c", port=50000) == 50000, "cannot bind port 50000 in sub%d" % i)
        clients[i] = cli
    external = {}
    for i, cli in clients.items():
        cli.send("c", (SERVER, 5000), "hello from sub%d" % i)
        got = srv.recv("s", timeout=3)
        check(got is not None, "%s: server got nothing from sub%d" % (label, i))
        src, data = got
        check(data == "hello from sub%d" % i, "%s: server got %r" % (label, data))
        check_external(src, "%s sub%d" % (label, i), pool)
        external[i] = src
        log("%s: %s:50000 -> %s:%d" % (label, sub_addr(i), *src))
    eps = list(external.values())
    check(len(set(eps)) == len(eps),
          "%s: port overloading, subscribers share external endpoints: %s" % (label, external))
    # With one address, distinct endpoints means distinct ports; say so explicitly.
    if len(pool) == 1:
        ports = [ep[1] for ep in eps]
        check(len(set(ports)) == len(ports),
              "%s: one pool address, yet external ports repeat: %s" % (label, ports))
    # Replies: the server answers each external endpoint with the name of the subscriber it
    # saw there; each subscriber must get its own and nobody else's.
    for i, ep in external.items():
        srv.send("s", ep, "for sub%d" % i)
    for i, cli in clients.items():
        got = cli.drain("c", window=1.0)
        check([d for _, d in got] == ["for sub%d" % i],
              "%s: sub%d (behind %s:%d) received %s, expected only 'for sub%d'" % (
                  label, i, *external[i], got, i))
    for a in clients.values():
        a.close()
    srv.close()
    lab.agents = []


def test_rfc4787_req3_no_port_overloading(binary):
    subs = 3
    with lab_session(subs) as lab:
        # One pool address: all subscribers share it, so the ports themselves must differ.
        one = [POOL[0]]
        with ephemera_session(binary, lab, WORKERS, make_config(pool=one)) as eph:
            _req3_round(lab, eph, one, subs, "one pool address")
        with ephemera_session(binary, lab, WORKERS, make_config()) as eph:
            _req3_round(lab, eph, POOL, subs, "two pool addresses")


# ----------------------------------------------------------------------- 5. RFC 4787 REQ-1 (EIM)


def test_rfc4787_req1_eim(binary):
    with lab_session(1) as lab, ephemera_session(binary, lab, WORKERS) as eph:
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
            check(got is not None, "%s got nothing" % name)
            check(got[1] == "to " + name, "%s got %r" % (name, got[1]))
            seen[name] = got[0]
            log("%s:40000 -> %s:%d seen as %s:%d" % (sub_addr(1), *to, *got[0]))
        check_external(seen["S1:p"], "first destination")
        check(len(set(seen.values())) == 1,
              "endpoint-dependent mapping: one socket seen as %s" % seen)
        maps = [parse_mapping(m) for m in eph.mappings()]
        mine = [m for m in maps if m["inside"] == (sub_addr(1), 40000) and m["proto"] == "udp"]
        check(len(mine) == 1, "expected one mapping for %s:40000, telemetry lists %s" % (
            sub_addr(1), maps))
        check(mine[0]["external"] == seen["S1:p"],
              "telemetry maps to %s, the servers saw %s" % (mine[0]["external"], seen["S1:p"]))
        check(mine[0]["sessions"] == 3, "the mapping should carry 3 sessions (one per "
              "destination), telemetry says %d" % mine[0]["sessions"])


# ------------------------------------------------------------------ 6. RFC 4787 REQ-8 (filtering)

# After C:x -> S1:p, which of S1:p (the session itself), S1:q and S2:p reach C through X':x'.
FILTERING = [
    ("endpoint-independent", {"S1:p", "S1:q", "S2:p"}),
    ("address", {"S1:p", "S1:q"}),
    ("address-and-port", {"S1:p"}),
]


def test_rfc4787_req8_filtering(binary):
    with lab_session(1) as lab:
        srv = lab.agent(lab.ns("srv"))
        remotes = {"S1:p": (SERVER, 5000), "S1:q": (SERVER, 5001), "S2:p": (SERVER2, 5000)}
        for name, (addr, port) in remotes.items():
            srv.open(name, addr, port)
        cli = lab.agent(lab.sub(1))
        failures = []
        for round_no, (mode, expected) in enumerate(FILTERING):
            with ephemera_session(binary, lab, WORKERS, make_config(filtering=mode)) as eph:
                check(eph.config()["filtering"] == mode,
                      "telemetry reports filtering %r, configured %r" % (
                          eph.config()["filtering"], mode))
                sock = "c%d" % round_no  # a fresh source port per round
                cli.open(sock, port=41000 + round_no)
                cli.send(sock, remotes["S1:p"], "open")
                got = srv.recv("S1:p", timeout=3)
                check(got is not None and got[1] == "open", "%s: S1:p got %r" % (mode, got))
                ext = got[0]
                before = eph.stats()
                # Unsolicited first, the control (the session's own remote) last.
                for name in ("S1:q", "S2:p", "S1:p"):
                    srv.send(name, ext, "from " + name)
                arrived = cli.drain(sock, window=1.5)
                labels = {d[len("from "):] for _, d in arrived}
                for src, d in arrived:
                    check(src == remotes[d[len("from "):]],
                          "%s: %r arrived from %s" % (mode, d, src))
                after = wait_stats(eph, lambda s: delta(s, before, "drop_filtered") >=
                                   3 - len(expected))
                filtered = delta(after, before, "drop_filtered")
                log("%-21s external %s:%d  delivered %s  drop_filtered +%d" % (
                    mode, *ext, sorted(labels), filtered))
                if labels != expected:
                    failures.append("%s: delivered %s, RFC 4787 REQ-8 expects %s" % (
                        mode, sorted(labels), sorted(expected)))
                elif filtered != 3 - len(expected):
                    failures.append("%s: drop_filtered rose by %d, expected %d" % (
                        mode, filtered, 3 - len(expected)))
        check(not failures, "; ".join(failures))


# -------------------------------------------------------------------- 7. several workers at once


def _owner_of_port(port, workers):
    # ownership.hpp: bucket = bits 1..6 of the port, bucket b belongs to worker b % workers.
    return ((port >> 1) & 63) % workers


def _owner_of_subscriber(addr, workers):
    # ownership.hpp: murmur3 finaliser of the inside address, modulo workers.
    a, b, c, d = (int(x) for x in addr.split("."))
    h = (a << 24) | (b << 16) | (c << 8) | d
    h ^= h >> 16
    h = (h * 0x85EBCA6B) & 0xFFFFFFFF
    h ^= h >> 13
    h = (h * 0xC2B2AE35) & 0xFFFFFFFF
    h ^= h >> 16
    return h % workers


def _multi_worker(binary, workers):
    subs, socks_per_sub, tcp_bytes = 3, 8, 4 * 1024 * 1024
    with lab_session(subs) as lab, ephemera_session(binary, lab, workers) as eph:
        check(eph.stats()["workers"] == workers, "telemetry reports %d workers, started %d" % (
            eph.stats()["workers"], workers))
        srv = lab.agent(lab.ns("srv"))
        for port in (5000, 5001):
            srv.open("s%d" % port, SERVER, port)
            srv.serve_echo("s%d" % port)
        tcp_server = lab.popen(lab.ns("srv"), [
            nslab.PYTHON, nslab.PEER, "tcp-server", "--bind", SERVER, "--port", "7000",
            "--connections", str(subs), "--send-bytes", str(tcp_bytes), "--timeout", "90"],
            stdout=subprocess.PIPE, text=True)
        tcp_clients = []
        try:
            check("listening" in tcp_server.stdout.readline(), "TCP server did not start")
            tcp_clients = [lab.popen(lab.sub(i), [
                nslab.PYTHON, nslab.PEER, "tcp-client", "--to", SERVER, "--port", "7000",
                "--send-bytes", str(tcp_bytes), "--timeout", "60"],
                stdout=subprocess.PIPE, text=True) for i in range(1, subs + 1)]

            # UDP from every subscriber, several sockets each, to two server ports, while the
            # TCP transfers run.
            udp_sent = 0
            external = {}
            for i in range(1, subs + 1):
                cli = lab.agent(lab.sub(i))
                for k in range(socks_per_sub):
                    sock = "u%d" % k
                    port = cli.open(sock)
                    eps = set()
                    for dport in (5000, 5001):
                        data = "sub%d-%s-%d" % (i, sock, dport)
                        src, text = udp_exchange(cli, sock, (SERVER, dport), data)
                        udp_sent += 1
                        ep, echoed = parse_echo(text)
                        check(echoed == data and src == (SERVER, dport),
                              "W=%d: bad echo %r from %s" % (workers, text, src))
                        eps.add(ep)
                    check(len(eps) == 1, "W=%d: %s:%d mapped to %s (EIM broken)" % (
                        workers, sub_addr(i), port, eps))
                    external[(sub_addr(i), port)] = eps.pop()
            values = list(external.values())
            check(len(set(values)) == len(values),
                  "W=%d: external endpoints shared between sockets: %s" % (workers, external))
            for ep in values:
                check_external(ep, "W=%d UDP" % workers)

            for i in range(1, subs + 1):
                for dst in (SERVER, GATEWAY):
                    sent, got, out = lab.ping(lab.sub(i), dst, 3)
                    check(got == sent == 3, "W=%d: sub%d ping %s: %d of %d answered" % (
                        workers, i, dst, got, sent))

            results = []
            for p in tcp_clients:
                out, _ = p.communicate(timeout=120)
                results.append(json.loads(out.strip().splitlines()[-1]))
            srv_out, _ = tcp_server.communicate(timeout=60)
        finally:
            for p in [tcp_server] + tcp_clients:
                if p.poll() is None:
                    p.kill()
                    p.wait()
        server_side = [json.loads(l) for l in srv_out.strip().splitlines()]
        for r in results:
            check("error" not in r, "W=%d: TCP client failed: %s" % (workers, r.get("error")))
            check(r["received"] == tcp_bytes, "W=%d: TCP client got %d B" % (workers,
                                                                            r["received"]))
        check(len(server_side) == subs and all("error" not in s for s in server_side),
              "W=%d: TCP server: %s" % (workers, server_side))
        up = {r["sent_sha256"] for r in results}
        down = {r["received_sha256"] for r in results}
        check(up == {s["received_sha256"] for s in server_side},
              "W=%d: uploads corrupted (sha256 differ)" % workers)
        check(down == {s["sent_sha256"] for s in server_side},
              "W=%d: downloads corrupted (sha256 differ)" % workers)
        for s in server_side:
            check_external(tuple(s["peer"]), "W=%d TCP" % workers)

        # Counters, once the handoff rings are drained.
        def settled(st):
            return st["handoff_tx"] == st["handoff_rx"] + st["drop_handoff_congestion"]

        st = wait_stats(eph, settled)
        log("W=%d: in2out_translated %d, out2in_translated %d, handoff_tx %d, handoff_rx %d, "
            "drop_handoff_congestion %d, live_mappings %d" % (
                workers, st["in2out_translated"], st["out2in_translated"], st["handoff_tx"],
                st["handoff_rx"], st["drop_handoff_congestion"], st["live_mappings"]))
        check(st["in2out_translated"] >= udp_sent + 3 * subs,
              "W=%d: in2out_translated %d < %d packets sent" % (
                  workers, st["in2out_translated"], udp_sent + 3 * subs))
        check(st["out2in_translated"] >= udp_sent + 3 * subs,
              "W=%d: out2in_translated %d < %d replies" % (
                  workers, st["out2in_translated"], udp_sent + 3 * subs))
        check(settled(st), "W=%d: handoff_tx %d != handoff_rx %d + drop_handoff_congestion %d"
              % (workers, st["handoff_tx"], st["handoff_rx"], st["drop_handoff_congestion"]))
        if workers > 1:
            check(st["handoff_tx"] > 0, "W=%d: no packet was handed off; the test did not "
                  "exercise the handoff path" % workers)
        per_worker = [eph.worker_stats(w) for w in range(workers)]
        for key in ("in2out_translated", "out2in_translated", "handoff_tx", "handoff_rx"):
            total = sum(w[key] for w in per_worker)
            check(total == st[key],
                  "W=%d: per-worker %s add up to %d, total says %d" % (workers, key, total,
                                                                        st[key]))
        busy = [w["worker"] for w in per_worker if w["in2out_translated"] > 0]
        log("W=%d: workers that translated: %s" % (workers, busy))

        # Every mapping lives on the worker that owns both its subscriber and its port.
        maps = [parse_mapping(m) for m in eph.mappings()]
        check(len(maps) >= len(external), "W=%d: telemetry lists %d mappings, %d UDP sockets "
              "alone made %d" % (workers, len(maps), len(external), len(external)))
        for m in maps:
            check(m["worker"] == _owner_of_subscriber(m["inside"][0], workers),
                  "W=%d: mapping %s on worker %d, subscriber owner is %d" % (
                      workers, m, m["worker"], _owner_of_subscriber(m["inside"][0], workers)))
            check(m["worker"] == _owner_of_port(m["external"][1], workers),
                  "W=%d: mapping %s on worker %d, port owner is %d" % (
                      workers, m, m["worker"], _owner_of_port(m["external"][1], workers)))
        for (addr, port), ep in external.items():
            listed = [m for m in maps if m["inside"] == (addr, port) and m["proto"] == "udp"]
            check(len(listed) == 1 and listed[0]["external"] == ep,
                  "W=%d: %s:%d seen as %s, telemetry lists %s" % (workers, addr, port, ep,
                                                                 listed))

        final = eph.stop()
        check(final is not None, "W=%d: --stats-json file missing" % workers)
        check(len(final["workers"]) == workers, "W=%d: stats JSON lists %d workers" % (
            workers, len(final["workers"])))
        check(final["totals"]["in2out_translated"] >= st["in2out_translated"],
              "W=%d: exit totals went backwards" % workers)
        check("in2out_translated" in eph.output, "W=%d: exit report lacks counters" % workers)


def test_multi_worker_w1(binary):
    _multi_worker(binary, 1)


def test_multi_worker_w2(binary):
    _multi_worker(binary, 2)


def test_multi_worker_w4(binary):
    _multi_worker(binary, 4)


# -------------------------------------------------------------------------------- 8. telemetry


def test_telemetry_mappings_stats(binary):
    n = 50
    with lab_session(1) as lab, ephemera_session(binary, lab, WORKERS) as eph:
        cfg = eph.config()
        server_mac = lab.mac(lab.ns("srv"), "eth0")
        check(cfg["next_hop_mac"] == server_mac, "next_hop_mac %s, the server's MAC is %s" % (
            cfg["next_hop_mac"], server_mac))
        check(cfg["workers"] == WORKERS and cfg["filtering"] == "endpoint-independent" and
              cfg["pool_first"] == POOL[0] and cfg["pool_last"] == POOL[-1] and
              cfg["inside_gateway"] == GATEWAY and cfg["next_hop"] == SERVER,
              "/ephemera/config does not match the config: %s" % cfg)
        check(eph.mappings() == [], "mappings before any traffic: %s" % eph.mappings())

        srv = lab.agent(lab.ns("srv"))
        srv.open("s", SERVER, 5000)
        srv.serve_echo("s")
        cli = lab.agent(lab.sub(1))
        cli.open("c", port=40000)
        before = eph.stats()
        external = set()
        for k in range(n):  # one at a time: every request is answered before the next
            src, text = udp_exchange(cli, "c", (SERVER, 5000), "msg %d" % k, tries=1)
            external.add(parse_echo(text)[0])
        check(len(external) == 1, "one socket seen as %s" % external)
        ext = external.pop()
        check(len(srv.seen("s")) == n, "server saw %d datagrams, %d sent" % (
            len(srv.seen("s")), n))
        after = wait_stats(eph, lambda s: delta(s, before, "out2in_tx") >= n)
        log("stats delta: " + ", ".join("%s +%d" % (k, delta(after, before, k)) for k in
                                        ("in2out_rx", "in2out_translated", "in2out_tx",
                                         "out2in_rx", "out2in_translated", "out2in_tx",
                                         "mappings_created", "sessions_created")))
        # Translations are exactly the datagrams; rx/tx also count ARP and gateway pings.
        for key in ("in2out_translated", "out2in_translated"):
            check(delta(after, before, key) == n, "%s rose by %d for %d datagrams each way" % (
                key, delta(after, before, key), n))
        for key in ("in2out_rx", "in2out_tx", "out2in_rx", "out2in_tx"):
            check(n <= delta(after, before, key) <= n + 4,
                  "%s rose by %d for %d datagrams each way" % (key, delta(after, before, key), n))
        check(delta(after, before, "mappings_created") == 1 and
              delta(after, before, "sessions_created") == 1,
              "one flow made %d mappings and %d sessions" % (
                  delta(after, before, "mappings_created"),
                  delta(after, before, "sessions_created")))
        check(after["live_mappings"] == 1 and after["live_sessions"] == 1,
              "live_mappings %d, live_sessions %d for one flow" % (after["live_mappings"],
                                                                  after["live_sessions"]))
        drops = {k: v for k, v in after.items() if k.startswith("drop_") and v and
                 k not in ("drop_not_for_us", "drop_arp_ignored")}
        check(not drops, "unexpected drops: %s" % drops)

        lines = eph.mappings()
        log("/ephemera/mappings: %s" % lines)
        maps = [parse_mapping(m) for m in lines]
        check(len(maps) == 1, "expected exactly one mapping, got %s" % lines)
        m = maps[0]
        check(m["proto"] == "udp" and m["inside"] == (sub_addr(1), 40000) and
              m["external"] == ext and m["sessions"] == 1,
              "mapping %r, expected udp %s:40000 -> %s:%d sessions=1" % (
                  lines[0], sub_addr(1), *ext))
        check(m["worker"] < WORKERS, "mapping on worker %d of %d" % (m["worker"], WORKERS))

        per_worker = [eph.worker_stats(w) for w in range(WORKERS)]
        check(sum(w["in2out_translated"] for w in per_worker) == after["in2out_translated"],
              "per-worker in2out_translated do not add up to the total")
        check(per_worker[m["worker"]]["live_mappings"] == 1,
              "the mapping's worker %d reports live_mappings %d" % (
                  m["worker"], per_worker[m["worker"]]["live_mappings"]))
        try:
            bad = eph.telemetry.query("/ephemera/worker,%d" % WORKERS)
        except (OSError, ValueError) as e:
            bad = e
        check(not isinstance(bad, dict) or not bad,
              "/ephemera/worker,%d (no such worker) answered %s" % (WORKERS, bad))

        final = eph.stop()
        check(final["totals"]["in2out_translated"] == after["in2out_translated"],
              "exit JSON in2out_translated %d, telemetry said %d" % (
                  final["totals"]["in2out_translated"], after["in2out_translated"]))
        check("in2out_translated" in eph.output and "ephemera: signal 2, stopping" in
              eph.output, "exit report:\n%s" % eph.output)


# ---------------------------------------------------------------- 11. checksum offload (net_tap)

# Sends datagrams of 1450 bytes without DF (so that ephemera splits them for the outside MTU of
# 1400), each answered by the server's echo; prints how many echoes came back.
_UNFRAGMENTED_UDP = """
import socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.setsockopt(socket.IPPROTO_IP, 10, 0)  # IP_MTU_DISCOVER = IP_PMTUDISC_DONT: no DF
s.settimeout(2)
got = 0
for i in range(5):
    data = (b"big-%d " % i).ljust(1450, b"z")
    s.sendto(data, ("SERVER_ADDR", 5001))
    try:
        reply = s.recv(4000)
        got += reply.endswith(data)
    except socket.timeout:
        pass
print(got)
"""


def _csum_errors(lab, node_ns):
    """The kernel's checksum error counters in a namespace (nstat): name -> count."""
    out = lab.run(node_ns, ["nstat", "-az"], check_rc=True).stdout
    errors = {}
    for line in out.splitlines():
        fields = line.split()
        if len(fields) >= 2 and fields[0] in ("IpInHdrErrors", "IpExtInCsumErrors",
                                              "TcpInCsumErrors", "UdpInCsumErrors",
                                              "IcmpInCsumErrors"):
            errors[fields[0]] = int(fields[1])
    return errors


def test_checksum_offload_on_net_tap(binary):
    """The offload path end to end: net_tap offers the IPv4, UDP and TCP checksum offloads, so
    every established flow's packets leave with their checksums left to the port. Linux at
    both ends must accept every packet: ping, UDP both ways, UDP split for the MTU (completed
    in software before the split), and a TCP transfer both ways."""
    size = 4 * 1024 * 1024
    config = make_config(driver="tap", sections={"outside": {"mtu": 1400}})
    with lab_session(1) as lab, ephemera_session(binary, lab, 1, config, driver="tap") as eph:
        cfg = eph.config()
        for side in ("inside", "outside"):
            check(cfg["%s_checksum_offload" % side] == "ipv4 udp tcp",
                  "%s port offloads %r" % (side, cfg["%s_checksum_offload" % side]))
        check("ephemera: outside checksum offload: ipv4 udp tcp" in eph.read_log(),
              "the choice is not in the start log")

        # The bridges are new: the first frames may be lost while they settle. The gateway's
        # answer is ephemera's own (software), so it says when the inside path is there.
        started = time.monotonic()
        while lab.ping(lab.sub(1), GATEWAY, 1)[1] != 1:
            check(time.monotonic() - started < 15, "the gateway never answered a ping")
        log("gateway answered after %.1f s" % (time.monotonic() - started))
        sent, got, out = lab.ping(lab.sub(1), SERVER, 3)
        check(sent == 3 and got == 3, "ping %s: %d of %d answered\n%s" % (SERVER, got, sent, out))

        srv = lab.agent(lab.ns("srv"))
        srv.open("s", SERVER, 5000)
        srv.serve_echo("s")
        srv.open("big", SERVER, 5001)
        srv.serve_echo("big")
        cli = lab.agent(lab.sub(1))
        cli.open("c")
        for k in range(10):
            data = "offload-%d-%s" % (k, "x" * (k * 100))
            _, text = udp_exchange(cli, "c", (SERVER, 5000), data)
            check(parse_echo(text)[1] == data, "echo of datagram %d corrupted" % k)

        before = eph.stats()
        script = _UNFRAGMENTED_UDP.replace("SERVER_ADDR", SERVER)
        cp = lab.run(lab.sub(1), [nslab.PYTHON, "-c", script], timeout=30, check_rc=True)
        check(cp.stdout.strip() == "5", "%s of 5 datagrams split for the MTU were echoed" %
              cp.stdout.strip())
        after = eph.stats()
        check(delta(after, before, "packets_fragmented") >= 4,
              "packets_fragmented rose by %d" % delta(after, before, "packets_fragmented"))

        client, srv_tcp = tcp_transfer(lab, size, server_timeout=100, run_timeout=120)
        check("error" not in client and "error" not in srv_tcp,
              "TCP failed: client %s, server %s" % (client.get("error"), srv_tcp.get("error")))
        check(srv_tcp["received"] == size and
              srv_tcp["received_sha256"] == client["sent_sha256"], "upload corrupted or short")
        check(client["received"] == size and
              client["received_sha256"] == srv_tcp["sent_sha256"], "download corrupted or short")

        for node in (lab.ns("srv"), lab.sub(1)):
            errors = _csum_errors(lab, node)
            check(not any(errors.values()), "checksum errors in %s: %s" % (node, errors))
        st = eph.stats()
        check(st["drop_bad_ip_checksum"] == 0, "ephemera saw bad IP checksums")
        log("in2out_translated %d, out2in_translated %d, packets_fragmented %d" % (
            st["in2out_translated"], st["out2in_translated"], st["packets_fragmented"]))


TESTS = {name[len("test_"):]: fn for name, fn in globals().items()
         if name.startswith("test_") and callable(fn)}

if __name__ == "__main__":
    sys.exit(main(TESTS))
