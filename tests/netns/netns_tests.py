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


# ------------------------------------------------------------------- 12. port blocks (pool.mode)

# Opens N UDP flows from consecutive source ports FIRST..FIRST+N-1 to SERVER:PORT, one at a
# time, each answered by the server's echo; then EXTRA more flows from the ports after them;
# then the first N again. Every socket is connected and has IP_RECVERR, so an ICMP 3/1 from
# ephemera shows as EHOSTUNREACH (Linux reports host unreachable only to such sockets). Prints
# one JSON line: flows and again ([local port, external "addr:port" or null, error or null]),
# extra (the same for the EXTRA flows).
_UDP_FLOWS = """
import errno, json, socket, sys
n, extra, first, server, port = (int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]),
                                  sys.argv[4], int(sys.argv[5]))

def open_flow(local):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.setsockopt(socket.IPPROTO_IP, getattr(socket, "IP_RECVERR", 11), 1)
    s.bind(("0.0.0.0", local))
    s.connect((server, port))
    return s

def exchange(s, data, tries=3, wait=1.0):
    s.settimeout(wait)
    for _ in range(tries):
        try:
            s.send(data.encode())
            while True:
                reply = s.recv(2048).decode(errors="replace")
                if reply.endswith(" " + data):
                    return [s.getsockname()[1], reply.split()[1], None]
        except socket.timeout:
            continue
        except OSError as e:
            return [s.getsockname()[1], None, errno.errorcode.get(e.errno, str(e.errno))]
    return [s.getsockname()[1], None, "timeout"]

socks = [open_flow(first + k) for k in range(n)]
flows = [exchange(s, "flow %d" % k) for k, s in enumerate(socks)]
more = [open_flow(first + n + k) for k in range(extra)]
extra_flows = [exchange(s, "extra %d" % k, tries=2) for k, s in enumerate(more)]
again = [exchange(s, "again %d" % k) for k, s in enumerate(socks)]
print(json.dumps({"flows": flows, "extra": extra_flows, "again": again}))
"""


def blocks_config(block_size, max_blocks, pool=(POOL[0],)):
    """One pool address (so a subscriber's ports are all on it) and no reserved range (so no
    block loses ports to one): the block counts below are then exact."""
    return make_config(pool=list(pool), reserved=(), sections={
        "pool": {"mode": "blocks"},
        "pool.blocks": {"block_size": block_size, "max_blocks": max_blocks}})


def udp_flows(lab, sub, n, first, extra=0, server_port=5000):
    """Runs _UDP_FLOWS in subscriber `sub`'s namespace; returns its report, the endpoints
    parsed to (addr, port)."""
    cp = lab.run(lab.sub(sub), [nslab.PYTHON, "-c", _UDP_FLOWS, str(n), str(extra), str(first),
                                SERVER, str(server_port)],
                 timeout=60 + 4 * (n + extra), check_rc=True)
    report = json.loads(cp.stdout.strip().splitlines()[-1])
    for key in ("flows", "extra", "again"):
        report[key] = [(local, (ext.split(":")[0], int(ext.split(":")[1])) if ext else None, err)
                       for local, ext, err in report[key]]
    return report


def check_flows_work(report, key, what):
    failed = [(local, err) for local, ext, err in report[key] if ext is None]
    check(not failed, "%s: %d of %d flows got no echo, e.g. %s" % (
        what, len(failed), len(report[key]), failed[:5]))
    return [ext for _, ext, _ in report[key]]


def block_runs(ports, size=64):
    """The 64-port runs (port // 64) the ports lie in: with one worker a block of 64 slots is
    one such run, since slots are ports and blocks are cut at multiples of 64 slots."""
    return sorted({p // size for p in ports})


def owners(binary, queries, workers):
    """`ephemera --owner` for each query (an address or ADDR:PORT[-HI]): what -> worker."""
    cp = subprocess.run([binary, "--owner", "--workers", str(workers)] + list(queries),
                        capture_output=True, text=True, timeout=30)
    check(cp.returncode == 0, "ephemera --owner exited %d: %s" % (cp.returncode, cp.stderr))
    out = {}
    for line in cp.stdout.splitlines():
        _kind, what, _, worker = line.split()
        out[what] = int(worker)
    return out


def test_rfc6888_req4_blocks_300_flows(binary):
    """Port blocks (RFC 6888 REQ-4 limits by blocks, REQ-13..14 fewer log records): one
    subscriber, 300 UDP flows, block_size 64, one worker. The server sees 300 distinct source
    ports, all on the subscriber's pool address and in its blocks: exactly ceil(300/64) = 5
    64-port runs, and blocks_opened is 5 (a block is opened only when the others are full)."""
    n, size = 300, 64
    with lab_session(1) as lab, ephemera_session(binary, lab, 1,
                                                 blocks_config(size, 8)) as eph:
        srv = lab.agent(lab.ns("srv"))
        srv.open("s", SERVER, 5000)
        srv.serve_echo("s")
        before = eph.stats()
        report = udp_flows(lab, 1, n, 40000)
        external = check_flows_work(report, "flows", "300 flows")
        seen = {src for src, data in srv.seen("s") if data.startswith("flow ")}
        ports = sorted(p for _, p in seen)
        runs = block_runs(ports, size)
        after = wait_stats(eph, lambda st: delta(st, before, "blocks_opened") >= 5)
        log("server saw %d source ports from %s in runs %s; blocks_opened +%d, "
            "live_mappings %d" % (len(ports), sorted({a for a, _ in seen}),
                                  ["%d-%d" % (r * size, r * size + size - 1) for r in runs],
                                  delta(after, before, "blocks_opened"),
                                  after["live_mappings"]))
        check(len(seen) == n, "the server saw %d distinct source endpoints, %d flows" % (
            len(seen), n))
        check(seen == set(external), "the server saw other endpoints than the echoes report")
        check({a for a, _ in seen} == {POOL[0]}, "flows left from %s" % sorted(seen))
        check(all(IANA[0] <= p <= IANA[1] for p in ports),
              "ports outside the range: %s" % [p for p in ports if not IANA[0] <= p <= IANA[1]])
        check(len(runs) == (n + size - 1) // size,
              "300 ports lie in %d runs of 64 (%s), expected %d blocks" % (
                  len(runs), runs, (n + size - 1) // size))
        check(delta(after, before, "blocks_opened") == 5,
              "blocks_opened rose by %d for 300 flows in blocks of 64" % delta(
                  after, before, "blocks_opened"))
        check(after["live_mappings"] == n, "live_mappings %d" % after["live_mappings"])
        for key in ("drop_subscriber_blocks", "drop_blocks_exhausted", "blocks_released"):
            check(after[key] == 0, "%s is %d" % (key, after[key]))


def test_rfc6888_req4_blocks_second_block(binary):
    """The first 64 flows of a subscriber (block_size 64) fill its first block: one 64-port run,
    blocks_opened 1; the 65th opens a second block and lands outside that run."""
    size = 64
    with lab_session(1) as lab, ephemera_session(binary, lab, 1,
                                                 blocks_config(size, 4)) as eph:
        srv = lab.agent(lab.ns("srv"))
        srv.open("s", SERVER, 5000)
        srv.serve_echo("s")
        report = udp_flows(lab, 1, size, 40000)
        first = [p for _, p in check_flows_work(report, "flows", "first 64 flows")]
        st = wait_stats(eph, lambda s: s["blocks_opened"] >= 1)
        log("first 64 flows: ports %d-%d in runs %s, blocks_opened %d" % (
            min(first), max(first), block_runs(first, size), st["blocks_opened"]))
        check(len(set(first)) == size, "64 flows on %d ports" % len(set(first)))
        check(len(block_runs(first, size)) == 1,
              "the first 64 flows span runs %s, not one block" % block_runs(first, size))
        check(st["blocks_opened"] == 1, "blocks_opened %d after 64 flows" % st["blocks_opened"])
        # A new process, new source ports: the earlier flows' mappings stay (udp timeout 300).
        report = udp_flows(lab, 1, 1, 40000 + size)
        (ext,) = check_flows_work(report, "flows", "65th flow")
        st = wait_stats(eph, lambda s: s["blocks_opened"] >= 2)
        log("65th flow: %s:%d, blocks_opened %d" % (*ext, st["blocks_opened"]))
        check(ext[1] // size not in block_runs(first, size),
              "the 65th flow's port %d lies in the first block's run %s" % (
                  ext[1], block_runs(first, size)))
        check(ext[0] == POOL[0], "the 65th flow left from %s" % ext[0])
        check(st["blocks_opened"] == 2, "blocks_opened %d after 65 flows" % st["blocks_opened"])
        check(st["live_mappings"] == size + 1, "live_mappings %d" % st["live_mappings"])


def test_rfc6888_req11_blocks_refusal_icmp_3_1(binary):
    """max_blocks 1, block_size 64: the first 64 flows fill the subscriber's one block; the 65th
    is refused (RFC 6888 REQ-11): dropped, counted in drop_subscriber_blocks, answered with ICMP
    3/1 (its connected socket sees EHOSTUNREACH), and the 64 existing flows keep working with
    their endpoints (no mapping is deleted to make room)."""
    size = 64
    with lab_session(1) as lab, ephemera_session(binary, lab, 1,
                                                 blocks_config(size, 1)) as eph:
        srv = lab.agent(lab.ns("srv"))
        srv.open("s", SERVER, 5000)
        srv.serve_echo("s")
        before = eph.stats()
        report = udp_flows(lab, 1, size, 40000, extra=1)
        first = check_flows_work(report, "flows", "first 64 flows")
        again = check_flows_work(report, "again", "first 64 flows after the refusal")
        (local, ext, err), = report["extra"]
        after = wait_stats(eph, lambda st: delta(st, before, "drop_subscriber_blocks") >= 1)
        log("65th flow (port %d): endpoint %s, error %s; drop_subscriber_blocks +%d, "
            "icmp_unreachable_sent +%d, blocks_opened +%d" % (
                local, ext, err, delta(after, before, "drop_subscriber_blocks"),
                delta(after, before, "icmp_unreachable_sent"),
                delta(after, before, "blocks_opened")))
        check(err == "EHOSTUNREACH", "the refused flow's socket saw %s, expected EHOSTUNREACH "
              "(ICMP 3/1)" % (err or ("an echo via %s:%d" % ext if ext else "nothing")))
        check(delta(after, before, "drop_subscriber_blocks") >= 1,
              "drop_subscriber_blocks did not count the refused flow")
        check(delta(after, before, "icmp_unreachable_sent") >= 1, "no ICMP 3/1 was sent")
        check(delta(after, before, "blocks_opened") == 1,
              "blocks_opened rose by %d with max_blocks 1" % delta(after, before,
                                                                  "blocks_opened"))
        check(after["drop_blocks_exhausted"] == 0, "drop_blocks_exhausted %d" %
              after["drop_blocks_exhausted"])
        check(again == first, "existing flows changed endpoints after the refusal")
        check(len(block_runs([p for _, p in first], size)) == 1,
              "the 64 flows span runs %s" % block_runs([p for _, p in first], size))
        check(after["live_mappings"] == size, "live_mappings %d" % after["live_mappings"])
        check(not [d for _, d in srv.seen("s") if d.startswith("extra ")],
              "the refused flow's datagram reached the server")


def test_rfc6888_req4_blocks_two_workers(binary):
    """Two workers, two subscribers owned by different workers (ephemera --owner), 80 flows each
    in blocks of 64: every port a subscriber gets is owned by its subscriber's worker, so return
    traffic needs no handoff; each subscriber's ports lie in 2 blocks of 64 consecutive slots of
    that worker's share, and each worker opened 2 blocks."""
    workers, n, size, subs = 2, 80, 64, 4
    with lab_session(subs) as lab:
        sub_owner = owners(binary, [sub_addr(i) for i in range(1, subs + 1)], workers)
        chosen = {}
        for i in range(1, subs + 1):
            chosen.setdefault(sub_owner[sub_addr(i)], i)
        check(len(chosen) == workers, "subscribers %s all on one worker" % sub_owner)
        log("subscriber owners %s; testing %s" % (sub_owner, chosen))
        # Each worker's share: its ports in ascending order, slot = index (port_allocator.hpp).
        port_owner = owners(binary, ["%s:0-65535" % POOL[0]], workers)
        share = {w: sorted(int(q.split(":")[1]) for q, o in port_owner.items() if o == w)
                 for w in range(workers)}
        slot = {w: {p: k for k, p in enumerate(ports)} for w, ports in share.items()}
        with ephemera_session(binary, lab, workers, blocks_config(size, 4)) as eph:
            srv = lab.agent(lab.ns("srv"))
            srv.open("s", SERVER, 5000)
            srv.serve_echo("s")
            got = {}
            for w, i in sorted(chosen.items()):
                report = udp_flows(lab, i, n, 40000)
                got[w] = [p for _, p in check_flows_work(report, "flows", "sub%d" % i)]
            st = wait_stats(eph, lambda s: s["blocks_opened"] >= 2 * workers)
            per_worker = [eph.worker_stats(w) for w in range(workers)]
            for w, ports in sorted(got.items()):
                foreign = [p for p in ports if port_owner["%s:%d" % (POOL[0], p)] != w]
                granules = sorted({slot[w][p] // size for p in ports if p in slot[w]})
                log("worker %d (sub%d): %d ports %d-%d, blocks at slots %s; blocks_opened %d" % (
                    w, chosen[w], len(set(ports)), min(ports), max(ports),
                    ["%d-%d" % (g * size, g * size + size - 1) for g in granules],
                    per_worker[w]["blocks_opened"]))
                check(not foreign, "sub%d (worker %d) got ports of another worker: %s" % (
                    chosen[w], w, foreign))
                check(len(set(ports)) == n, "sub%d: %d flows on %d ports" % (
                    chosen[w], n, len(set(ports))))
                check(len(granules) == 2, "sub%d: 80 ports in %d runs of 64 slots of worker "
                      "%d's share, expected 2 blocks" % (chosen[w], len(granules), w))
                check(per_worker[w]["blocks_opened"] == 2,
                      "worker %d opened %d blocks" % (w, per_worker[w]["blocks_opened"]))
            check(st["blocks_opened"] == 2 * workers, "blocks_opened %d" % st["blocks_opened"])
            check(not set(got[0]) & set(got[1]), "the subscribers share ports")
            maps = [parse_mapping(m) for m in eph.mappings()]
            for m in maps:
                check(m["worker"] == sub_owner[m["inside"][0]],
                      "mapping %s on worker %d" % (m, m["worker"]))


TESTS = {name[len("test_"):]: fn for name, fn in globals().items()
         if name.startswith("test_") and callable(fn)}

if __name__ == "__main__":
    sys.exit(main(TESTS))
