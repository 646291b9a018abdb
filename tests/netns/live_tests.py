#!/usr/bin/python3
"""ephemera reconfigured while it runs, through ephemeractl, in the namespace lab: long-lived
TCP and UDP flows keep every byte and datagram while the port range, timeouts, filtering and
pool change; session listing and flushing; SIGHUP reload.

    /usr/bin/python3 live_tests.py TEST_NAME EPHEMERA_BINARY EPHEMERACTL_BINARY

Each test builds its own lab (namespaces n<pid>-*) and removes it on every exit path.
"""

import json
import os
import re
import select
import signal
import subprocess
import sys
import time

from nslab import (POOL, SERVER, SERVER2, IANA, TestFailure, check, ephemera_session, wait_until,
                   lab_session, log, main, make_config, parse_echo, parse_mapping, sub_addr,
                   udp_exchange)
import nslab

WORKERS = 2
EXTRA = "198.18.0.102"  # in the server's /24, not in the pool at start
# Inside both the IANA range and 40000-50000, so that both ranges accept it.
RESERVED = (49500, 49510)
ALT_RANGE = (40000, 50000)

UDP_RATE = 500            # datagrams per second, sub2 -> server
TCP_RATE = 5 << 20        # bytes per second, server -> sub1
TCP_UPLOAD_RATE = 256 << 10  # bytes per second, sub1 -> server
DWELL = 1.0               # seconds the flows run under each configuration

# Counters that count frames that were never ours to translate (another host's frame, ARP for
# someone else): not a loss.
BENIGN_DROPS = ("drop_not_for_us", "drop_arp_ignored")


def live_config(**kw):
    kw.setdefault("reserved", ("%d-%d" % RESERVED,))
    return make_config(**kw)


# ----------------------------------------------------------------------------- ephemeractl


class Ctl:
    """ephemeractl against one ephemera (its EAL file prefix)."""

    def __init__(self, binary, prefix, eph=None):
        self.binary = binary
        self.prefix = prefix
        self.eph = eph  # when known, a timeout reports where its threads were

    def run(self, *args, timeout=20):
        argv = [self.binary, "--prefix", self.prefix] + list(args)
        try:
            return subprocess.run(argv, capture_output=True, text=True, timeout=timeout)
        except subprocess.TimeoutExpired:
            where = self.eph.thread_report() if self.eph else "  (process not known)"
            raise TestFailure("%s: no answer within %.0f s; ephemera's threads:\n%s" % (
                " ".join(argv), timeout, where)) from None

    def ok(self, *args):
        cp = self.run(*args)
        check(cp.returncode == 0, "ephemeractl %s exited %d: %s%s" % (
            " ".join(args), cp.returncode, cp.stdout, cp.stderr))
        return cp.stdout

    def json(self, *args):
        return json.loads(self.ok("--json", *args))

    def config(self):
        return self.json("show", "config")

    def stats(self):
        return self.json("show", "stats")

    def ports(self):
        """{address: {udp_free, udp_usable, ..., held, draining}} from the column-wise reply."""
        data = self.json("show", "ports")
        keys = [k for k in data if k != "address"]
        return {a: {k: data[k][i] for k in keys} for i, a in enumerate(data["address"])}

    def sessions(self, *filters):
        return self.json("sessions", *filters)

    def mappings(self):
        return self.json("mappings")

    def change(self, *args):
        """A change that must be applied: exit 0 and result ok."""
        reply = self.json(*args)
        check(reply.get("result") == "ok", "ephemeractl %s: %s" % (" ".join(args), reply))
        return reply.get("message", "")

    def refused(self, *args):
        """A change that must be refused: exit 1, a reason on stderr."""
        cp = self.run(*args)
        check(cp.returncode == 1, "ephemeractl %s should be refused (exit 1), exited %d: %s%s" % (
            " ".join(args), cp.returncode, cp.stdout, cp.stderr))
        check("refused" in cp.stderr, "ephemeractl %s: no reason given: %r" % (
            " ".join(args), cp.stderr))
        return cp.stderr.strip()


def parse_session(line):
    """'udp 100.64.0.11:40001 as 198.18.0.100:50001 <-> 198.18.0.2:5000 idle=0s worker=1'
    (TCP adds 'established' or 'transitory' before worker=)."""
    m = re.match(r"(\w+) ([\d.]+):(\d+) as ([\d.]+):(\d+) <-> ([\d.]+):(\d+) idle=(\d+)s"
                 r"(?: (established|transitory))? worker=(\d+)$", line)
    if not m:
        raise TestFailure("unparsable session line %r" % line)
    return {"proto": m.group(1), "inside": (m.group(2), int(m.group(3))),
            "external": (m.group(4), int(m.group(5))), "remote": (m.group(6), int(m.group(7))),
            "idle": int(m.group(8)), "tcp_state": m.group(9), "worker": int(m.group(10))}


def ep_text(ep):
    return "%s:%d" % tuple(ep)


def ep_tuple(text):
    a, p = text.rsplit(":", 1)
    return (a, int(p))


# -------------------------------------------------------------------------------- streams


class Stream:
    """A peer.py stream process in a namespace, steered through its stdin (see peer.py)."""

    def __init__(self, lab, node_ns, argv, what):
        self.what = what
        self.proc = lab.popen(node_ns, [nslab.PYTHON, nslab.PEER] + argv,
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
                              bufsize=1)
        self.ready = self._read(15)
        check("ready" in self.ready, "%s did not start: %r" % (what, self.ready))

    def _read(self, timeout):
        r, _, _ = select.select([self.proc.stdout], [], [], timeout)
        if not r:
            raise TestFailure("%s: no answer within %.0f s" % (self.what, timeout))
        line = self.proc.stdout.readline()
        if not line:
            raise TestFailure("%s exited (rc %s) without an answer" % (self.what,
                                                                       self.proc.poll()))
        return json.loads(line)

    def status(self):
        self.proc.stdin.write("status\n")
        self.proc.stdin.flush()
        while True:  # a final line may precede the status if the process is already done
            got = self._read(10)
            if got.get("status") or got.get("final"):
                return got

    def stop(self):
        try:
            self.proc.stdin.write("stop\n")
            self.proc.stdin.flush()
            self.proc.stdin.close()
        except OSError:
            pass

    def final(self, timeout=30):
        while True:
            got = self._read(timeout)
            if got.get("final"):
                self.proc.wait(timeout=10)
                return got

    def kill(self):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


class Timeline:
    """When each change was made (time.monotonic(), as the stream processes record it)."""

    def __init__(self):
        self.events = []

    def mark(self, what):
        self.events.append((time.monotonic(), what))
        log("  [%7.2f] %s" % (self.events[-1][0] - self.events[0][0], what))

    def before(self, t):
        """The last change made before time t, and how long before."""
        last = None
        for when, what in self.events:
            if when <= t:
                last = (what, t - when)
        return last


def tcp_retransmits(lab, node_ns):
    """Segments the namespace's TCP retransmitted so far (RetransSegs in /proc/net/snmp)."""
    lines = [l.split() for l in lab.run(node_ns, ["cat", "/proc/net/snmp"],
                                        check_rc=True).stdout.splitlines() if l.startswith("Tcp:")]
    return int(lines[1][lines[0].index("RetransSegs")])


def check_tcp_stream(what, client, server, external):
    """A tcp-stream-client/tcp-stream-server pair (their final lines) kept every byte both ways
    and reached the server from the public endpoint `external` throughout."""
    check("error" not in client and "error" not in server,
          "%s broke: client %s, server %s" % (what, client.get("error"), server.get("error")))
    check((client["received"], client["received_sha256"]) == (server["sent"],
                                                              server["sent_sha256"]),
          "%s download: server sent %d B sha256 %s, client got %d B sha256 %s" % (
              what, server["sent"], server["sent_sha256"], client["received"],
              client["received_sha256"]))
    check((server["received"], server["received_sha256"]) == (client["sent"],
                                                              client["sent_sha256"]),
          "%s upload: client sent %d B sha256 %s, server got %d B sha256 %s" % (
              what, client["sent"], client["sent_sha256"], server["received"],
              server["received_sha256"]))
    check(tuple(server["peer"]) == tuple(external), "%s: the server saw %s, the session was "
          "on %s" % (what, ep_text(server["peer"]), ep_text(external)))


def wait_progress(streams, before, timeout=5.0):
    """Waits until every stream moved past its count in `before`; returns the new counts."""
    deadline = time.monotonic() + timeout
    while True:
        now = {name: count() for name, count in streams.items()}
        stalled = [n for n in streams if now[n] <= before[n]]
        if not stalled:
            return now
        if time.monotonic() > deadline:
            raise TestFailure("flows stalled for %.0f s: %s (counts %s, before %s)" % (
                timeout, stalled, now, before))
        time.sleep(0.1)


# ------------------------------------------------------------------------------- 1. live changes


def _probe(agents, n, to=(SERVER, 5001)):
    """A new UDP flow from each subscriber (a fresh source port 20000+n, outside every range,
    so the allocator must choose); returns {sub index: external endpoint the server saw}."""
    seen = {}
    for i, agent in agents.items():
        sock = "p%d" % n
        agent.open(sock, port=20000 + n)
        src, text = udp_exchange(agent, sock, to, "probe %d" % n)
        check(src == to, "probe %d: the echo came from %s" % (n, src))
        seen[i] = parse_echo(text)[0]
    return seen


class Probes:
    def __init__(self, agents):
        self.agents = agents
        self.n = 0
        self.socks = []  # (sub index, socket name, external endpoint)

    def check_new_flows(self, lo, hi, active, what):
        """New flows get ports in [lo, hi] outside the reserved range, on an active address."""
        self.n += 1
        seen = _probe(self.agents, self.n)
        for i, ep in seen.items():
            self.socks.append((i, "p%d" % self.n, ep))
            check(lo <= ep[1] <= hi and not (RESERVED[0] <= ep[1] <= RESERVED[1]),
                  "%s: a new flow from sub%d got external port %d, outside %d-%d (or in the "
                  "reserved %d-%d)" % (what, i, ep[1], lo, hi, *RESERVED))
            check(ep[0] in active, "%s: a new flow from sub%d got address %s, the active pool "
                  "is %s" % (what, i, ep[0], sorted(active)))
        log("    new flows: %s" % ", ".join("sub%d %s" % (i, ep_text(ep))
                                           for i, ep in sorted(seen.items())))
        return seen


def _pool_state(ctl):
    """(addresses the config holds, per-address draining flags from show ports)."""
    cfg = ctl.config()
    ports = ctl.ports()
    active = {a for a, p in ports.items() if p["draining"] == 0}
    check(len(active) == cfg["pool_addresses"],
          "show ports has %d active addresses %s, show config says %d" % (
              len(active), sorted(active), cfg["pool_addresses"]))
    check(cfg["pool_first"] in active and cfg["pool_last"] in active,
          "show config's pool_first %s / pool_last %s not among the active addresses %s" % (
              cfg["pool_first"], cfg["pool_last"], sorted(active)))
    return active, ports


def _check_usable(ctl, port_range):
    """The workers' allocators (not only the control thread's config) took up the range."""
    want = (port_range[1] - port_range[0] + 1) - (RESERVED[1] - RESERVED[0] + 1)
    usable = {a: (p["udp_usable"], p["tcp_usable"]) for a, p in ctl.ports().items()}
    check(all(u == (want, want) for u in usable.values()),
          "show ports: usable UDP/TCP ports per address %s after the range became %d-%d; "
          "expected %d (the range minus the reserved ports)" % (usable, *port_range, want))


def _check_refused(ctl, args, why, key):
    """`args` is refused (exit 1) naming `key`, and neither the config nor the pool moved."""
    before_cfg, before_ports = ctl.config(), ctl.ports()
    reason = ctl.refused(*args)
    check(key in reason, "refused %s (%s) without naming %s: %s" % (" ".join(args), why, key,
                                                                    reason))
    after_cfg, after_ports = ctl.config(), ctl.ports()
    check(after_cfg == before_cfg, "refused %s (%s) changed the config:\n  before %s\n  after  %s"
          % (" ".join(args), why, before_cfg, after_cfg))
    check({a: p["draining"] for a, p in after_ports.items()} ==
          {a: p["draining"] for a, p in before_ports.items()} and
          all(after_ports[a]["udp_usable"] == before_ports[a]["udp_usable"]
              for a in before_ports),
          "refused %s changed the pool or ranges: %s -> %s" % (" ".join(args), before_ports,
                                                               after_ports))
    log("    refused as expected: %s -> %s" % (" ".join(args), reason))


def test_live_reconfiguration_keeps_flows(binary, ctl_binary):
    rounds = 3
    with lab_session(2) as lab, \
            ephemera_session(binary, lab, WORKERS, live_config()) as eph:
        ctl = Ctl(ctl_binary, eph.prefix, eph)
        original = ctl.config()
        check(original["port_range"] == "iana (%d-%d)" % IANA and
              original["timeout_udp"] == 300 and original["timeout_tcp_established"] == 7440
              and original["filtering"] == "endpoint-independent" and
              original["pool_addresses"] == 2,
              "unexpected starting config: %s" % original)

        srv = lab.agent(lab.ns("srv"))
        srv.open("probe", SERVER, 5001)
        srv.serve_echo("probe")
        srv.open("other", SERVER2, 5002)  # unsolicited senders for the filtering check
        agents = {1: lab.agent(lab.sub(1)), 2: lab.agent(lab.sub(2))}
        probes = Probes(agents)

        streams = []
        try:
            udp_srv = Stream(lab, lab.ns("srv"), ["udp-echo-counter", "--bind", SERVER,
                                                  "--port", "5000"], "UDP echo server")
            streams.append(udp_srv)
            tcp_srv = Stream(lab, lab.ns("srv"), ["tcp-stream-server", "--bind", SERVER,
                                                  "--port", "7000", "--rate", str(TCP_RATE),
                                                  "--timeout", "60"], "TCP stream server")
            streams.append(tcp_srv)
            tcp_cli = Stream(lab, lab.sub(1), ["tcp-stream-client", "--to", SERVER, "--port",
                                               "7000", "--bind-port", "60001", "--upload-rate",
                                               str(TCP_UPLOAD_RATE), "--timeout", "30"],
                             "TCP stream client (sub1)")
            streams.append(tcp_cli)
            udp_cli = Stream(lab, lab.sub(2), ["udp-stream", "--to", SERVER, "--port", "5000",
                                               "--rate", str(UDP_RATE), "--bind-port", "60002",
                                               "--drain", "5"], "UDP stream (sub2)")
            streams.append(udp_cli)
            timeline = Timeline()
            timeline.mark("streams started")

            flows = {"udp echoed": lambda: udp_cli.status()["echoed"],
                     "udp at server": lambda: udp_srv.status()["received"],
                     "tcp down": lambda: tcp_cli.status()["received"],
                     "tcp up": lambda: tcp_srv.status()["received"]}
            counts = wait_progress(flows, {k: 0 for k in flows}, timeout=10)

            # Where the long flows are anchored; they must stay there through everything.
            tcp_sessions = [parse_session(l) for l in ctl.sessions("--subscriber", sub_addr(1))]
            tcp_sessions = [s for s in tcp_sessions if s["proto"] == "tcp"]
            check(len(tcp_sessions) == 1 and tcp_sessions[0]["tcp_state"] == "established",
                  "sessions --subscriber %s lists %s, expected one established TCP session" % (
                      sub_addr(1), tcp_sessions))
            tcp_ext = tcp_sessions[0]["external"]
            udp_sources = udp_srv.status()["sources"]
            check(len(udp_sources) == 1, "the UDP stream reached the server from %s" %
                  udp_sources)
            udp_ext = ep_tuple(next(iter(udp_sources)))
            log("long flows: TCP %s:60001 as %s, UDP %s:60002 as %s" % (
                sub_addr(1), ep_text(tcp_ext), sub_addr(2), ep_text(udp_ext)))
            before = ctl.stats()
            retrans_before = {n: tcp_retransmits(lab, n) for n in (lab.ns("srv"), lab.sub(1))}
            expected_filtered = 0
            last_stats = [before]
            phase_drops = []  # (change, {counter: rise}) for every change that saw drops

            def settle(what, expect=None):
                """The flows run a while under each config and must move on through it. Drops
                are charged to the change in force, less those the test caused (`expect`)."""
                nonlocal counts
                time.sleep(DWELL)
                counts = wait_progress(flows, counts)
                st = ctl.stats()
                rise = {k: st[k] - last_stats[0][k] - (expect or {}).get(k, 0)
                        for k in st if k.startswith("drop_") and k not in BENIGN_DROPS}
                rise = {k: v for k, v in rise.items() if v}
                if rise:
                    phase_drops.append((timeline.events[-1][1], rise))
                    log("    drops under '%s': %s" % (timeline.events[-1][1], rise))
                last_stats[0] = st

            # Removing an address must cover both long flows' anchors across the rounds.
            removals = [POOL[1], POOL[0], POOL[1]]
            for r in range(1, rounds + 1):
                log("round %d" % r)
                # Port range and back.
                timeline.mark("r%d set pool.port_range %d-%d" % (r, *ALT_RANGE))
                ctl.change("set", "pool.port_range", "%d-%d" % ALT_RANGE)
                cfg = ctl.config()
                check(cfg["port_range"] == "%d-%d (%d-%d)" % (ALT_RANGE * 2),
                      "port_range reads %r after the change" % cfg["port_range"])
                active, _ = _pool_state(ctl)
                _check_usable(ctl, ALT_RANGE)
                probes.check_new_flows(*ALT_RANGE, active, "range %d-%d" % ALT_RANGE)
                settle("range")
                timeline.mark("r%d set pool.port_range iana" % r)
                ctl.change("set", "pool.port_range", "iana")
                check(ctl.config()["port_range"] == "iana (%d-%d)" % IANA,
                      "port_range reads %r after going back" % ctl.config()["port_range"])
                _check_usable(ctl, IANA)
                probes.check_new_flows(*IANA, active, "range iana again")
                settle("range back")

                # Timeouts and back.
                for key, field, value, back in (
                        ("timeouts.udp", "timeout_udp", 600, 300),
                        ("timeouts.tcp_established", "timeout_tcp_established", 8000, 7440)):
                    for v in (value, back):
                        timeline.mark("r%d set %s %d" % (r, key, v))
                        ctl.change("set", key, str(v))
                        check(ctl.config()[field] == v, "%s reads %s after set %s %d" % (
                            field, ctl.config()[field], key, v))
                        settle(key)

                # A third address, added and removed.
                timeline.mark("r%d pool add %s" % (r, EXTRA))
                ctl.change("pool", "add", EXTRA)
                active, ports = _pool_state(ctl)
                check(active == set(POOL) | {EXTRA},
                      "after pool add %s the active pool is %s" % (EXTRA, sorted(active)))
                settle("pool add")
                timeline.mark("r%d pool remove %s" % (r, EXTRA))
                ctl.change("pool", "remove", EXTRA)
                active, ports = _pool_state(ctl)
                check(active == set(POOL) and ports[EXTRA]["draining"] == 1,
                      "after pool remove %s: active %s, ports %s" % (EXTRA, sorted(active),
                                                                      ports))
                settle("pool remove extra")

                # One of the two addresses removed (its flows drain) and added back.
                gone = removals[r - 1]
                left = [a for a in POOL if a != gone]
                timeline.mark("r%d pool remove %s" % (r, gone))
                ctl.change("pool", "remove", gone)
                active, ports = _pool_state(ctl)
                check(active == set(left) and ports[gone]["draining"] == 1,
                      "after pool remove %s: active %s, ports %s" % (gone, sorted(active), ports))
                probes.check_new_flows(*IANA, active, "with %s removed" % gone)
                _check_refused(ctl, ("pool", "remove", left[0]), "the last address",
                               "pool.addresses")
                settle("pool remove")
                timeline.mark("r%d pool add %s" % (r, gone))
                ctl.change("pool", "add", gone)
                active, ports = _pool_state(ctl)
                check(active == set(POOL) and ports[gone]["draining"] == 0,
                      "after pool add %s: active %s, ports %s" % (gone, sorted(active), ports))
                settle("pool add back")

                # Address-dependent filtering and back; checked on the data path too.
                timeline.mark("r%d set filtering.mode address" % r)
                ctl.change("set", "filtering.mode", "address")
                check(ctl.config()["filtering"] == "address",
                      "filtering reads %r" % ctl.config()["filtering"])
                seen = probes.check_new_flows(*IANA, active, "address filtering")
                srv.send("other", seen[1], "unsolicited %d" % probes.n)
                got = agents[1].drain("p%d" % probes.n, window=1.0)
                check(got == [], "address-dependent filtering let %s through to %s" % (
                    got, ep_text(seen[1])))
                expected_filtered += 1
                settle("filtering address", {"drop_filtered": 1})
                timeline.mark("r%d set filtering.mode endpoint-independent" % r)
                ctl.change("set", "filtering.mode", "endpoint-independent")
                check(ctl.config()["filtering"] == "endpoint-independent",
                      "filtering reads %r" % ctl.config()["filtering"])
                seen = probes.check_new_flows(*IANA, active, "endpoint-independent again")
                srv.send("other", seen[1], "unsolicited %d" % probes.n)
                got = agents[1].drain("p%d" % probes.n, window=1.0)
                check([d for _, d in got] == ["unsolicited %d" % probes.n],
                      "endpoint-independent filtering delivered %s, expected the datagram from "
                      "%s:5002" % (got, SERVER2))
                settle("filtering back")

                # Changes that must be refused, leaving everything as it was.
                if r == 1:
                    timeline.mark("r1 changes that must be refused")
                    for args, why, key in (
                            (("set", "timeouts.udp", "30"), "below RFC 4787's 120 s",
                             "timeouts.udp"),
                            (("set", "timeouts.tcp_established", "7000"), "below 7440 s",
                             "timeouts.tcp_established"),
                            (("set", "pool.port_range", "50000-40000"), "reversed range",
                             "pool.port_range"),
                            (("set", "pool.port_range", "50000-60000"),
                             "the reserved ports would lie outside it", "pool.reserved"),
                            (("set", "inside.port", "x"), "needs a restart", "inside.port"),
                            (("set", "limits.max_sessions", "100000"), "needs a restart",
                             "limits.max_sessions"),
                            (("set", "limits.max_sessions", "1000"), "below its minimum",
                             "limits.max_sessions"),
                            (("set", "filtering.mode", "bogus"), "no such mode",
                             "filtering.mode"),
                            (("set", "nosuch.key", "1"), "no such key", "nosuch.key"),
                            (("pool", "add", POOL[0]), "already in the pool", "pool.addresses"),
                            (("pool", "remove", "198.18.0.250"), "not in the pool",
                             "pool.addresses")):
                        _check_refused(ctl, args, why, key)
                    settle("refusals")

            final_cfg = ctl.config()
            for key in ("port_range", "timeout_udp", "timeout_tcp_established", "filtering",
                        "pool_addresses"):
                check(final_cfg[key] == original[key], "%s ends as %r, started as %r" % (
                    key, final_cfg[key], original[key]))
            timeline.mark("changes done")

            # The long flows kept their external endpoints.
            tcp_now = [parse_session(l) for l in ctl.sessions("--subscriber", sub_addr(1))]
            tcp_now = [s for s in tcp_now if s["proto"] == "tcp"]
            check(len(tcp_now) == 1 and tcp_now[0]["external"] == tcp_ext and
                  tcp_now[0]["tcp_state"] == "established",
                  "the TCP flow's session is now %s, it was on %s" % (tcp_now, ep_text(tcp_ext)))

            # Stop everything and account for every byte and datagram.
            udp_cli.stop()
            udp_c = udp_cli.final(timeout=30)
            # The last datagrams may still be on their way: wait until the server has them all
            # (or a while; the accounting below reports any that never came).
            wait_until(lambda: udp_srv.status().get("unique", 0) >= udp_c["sent"], 5, 0.1)
            udp_srv.stop()
            udp_s = udp_srv.final()
            tcp_srv.stop()
            tcp_c = tcp_cli.final(timeout=60)
            tcp_s = tcp_srv.final(timeout=60)
            timeline.mark("streams stopped")
            retrans = {n: tcp_retransmits(lab, n) - v for n, v in retrans_before.items()}
        finally:
            for s in streams:
                s.kill()

        log("UDP client: sent %d, echoed %d, duplicates %d, foreign %d, send errors %d, "
            "max rtt %.1f ms, max send slip %.1f ms, externals %s" % (
                udp_c["sent"], udp_c["echoed"], udp_c["duplicates"], udp_c["foreign"],
                udp_c["send_errors"], udp_c["max_rtt_ms"], udp_c["max_late_ms"],
                udp_c["externals"]))
        log("UDP server: received %d (unique %d, duplicates %d), echoed %d, echo errors %d, "
            "sources %s" % (udp_s["received"], udp_s["unique"], udp_s["duplicates"],
                            udp_s["echoed"], udp_s["echo_errors"], udp_s["sources"]))
        log("TCP: server sent %d B, client received %d B in %.1f s (longest wait %.3f s); "
            "client sent %d B, server received %d B; server saw %s" % (
                tcp_s.get("sent", -1), tcp_c.get("received", -1), tcp_c.get("seconds", -1),
                tcp_c.get("max_gap_s", -1), tcp_c.get("sent", -1), tcp_s.get("received", -1),
                tcp_s.get("peer")))
        log("TCP segments retransmitted: server %d, client %d" % (retrans[lab.ns("srv")],
                                                                  retrans[lab.sub(1)]))
        after = eph.stats()

        failures = []
        if udp_c["missing_count"] or udp_s["unique"] != udp_c["sent"]:
            where = []
            for seq, t in udp_c["missing"][:20]:
                last = timeline.before(t)
                where.append("seq %d sent %.3f s after '%s'" % (seq, last[1], last[0])
                             if last else "seq %d" % seq)
            failures.append(
                "UDP loss: sent %d, server received %d unique, server echoed %d, client got %d "
                "back; %d missing: %s" % (udp_c["sent"], udp_s["unique"], udp_s["echoed"],
                                          udp_c["echoed"], udp_c["missing_count"],
                                          "; ".join(where)))
        if udp_s["received"] != udp_s["unique"] or udp_c["duplicates"] or udp_s["echo_errors"] \
                or udp_c["foreign"] or udp_c["send_errors"] or \
                udp_s["echoed"] != udp_s["received"]:
            failures.append("UDP stream irregular: client %s, server %s" % (
                {k: udp_c[k] for k in ("duplicates", "foreign", "send_errors")},
                {k: udp_s[k] for k in ("received", "unique", "echoed", "echo_errors")}))
        if list(udp_s["sources"]) != [ep_text(udp_ext)]:
            failures.append("the UDP stream reached the server from %s, it started as %s" % (
                udp_s["sources"], ep_text(udp_ext)))
        if "error" in tcp_c or "error" in tcp_s:
            failures.append("TCP stream failed: client %s, server %s" % (
                tcp_c.get("error"), tcp_s.get("error")))
        else:
            if (tcp_c["received"], tcp_c["received_sha256"]) != (tcp_s["sent"],
                                                                 tcp_s["sent_sha256"]):
                failures.append("TCP download: server sent %d B sha256 %s, client got %d B "
                                "sha256 %s" % (tcp_s["sent"], tcp_s["sent_sha256"],
                                               tcp_c["received"], tcp_c["received_sha256"]))
            if (tcp_s["received"], tcp_s["received_sha256"]) != (tcp_c["sent"],
                                                                 tcp_c["sent_sha256"]):
                failures.append("TCP upload: client sent %d B sha256 %s, server got %d B "
                                "sha256 %s" % (tcp_c["sent"], tcp_c["sent_sha256"],
                                               tcp_s["received"], tcp_s["received_sha256"]))
            if tuple(tcp_s["peer"]) != tcp_ext:
                failures.append("the TCP server saw %s, the session was on %s" % (
                    tcp_s["peer"], ep_text(tcp_ext)))
        drops = {k: after[k] - before[k] for k in after
                 if k.startswith("drop_") and after[k] != before[k]}
        log("drops during the changes: %s (the test caused drop_filtered +%d)" % (
            drops or "none", expected_filtered))
        unexpected = {k: v for k, v in drops.items() if k not in BENIGN_DROPS and
                      not (k == "drop_filtered" and v == expected_filtered)}
        if drops.get("drop_filtered", 0) != expected_filtered:
            unexpected["drop_filtered"] = drops.get("drop_filtered", 0)
        if unexpected:
            failures.append("unexpected drops while reconfiguring: %s (drop_filtered expected "
                            "+%d from the test's unsolicited datagrams); by change: %s" % (
                                unexpected, expected_filtered,
                                "; ".join("%s under '%s'" % (d, what)
                                          for what, d in phase_drops) or "-"))
        check(not failures, "\n  ".join([""] + failures))
        check(tcp_c["received"] >= 50 << 20, "the TCP download moved only %d B; the changes "
              "were not made under load" % tcp_c["received"])
        log("every byte and datagram accounted for: TCP %d B down, %d B up, UDP %d datagrams "
            "each way, over %.1f s of changes" % (
                tcp_c["received"], tcp_c["sent"], udp_c["sent"],
                timeline.events[-1][0] - timeline.events[0][0]))


# ------------------------------------------------------------------- 2. sessions and flush


def test_ephemeractl_sessions_and_flush(binary, ctl_binary):
    with lab_session(2) as lab, \
            ephemera_session(binary, lab, WORKERS, live_config()) as eph:
        ctl = Ctl(ctl_binary, eph.prefix, eph)
        check(ctl.sessions() == [], "sessions before any traffic: %s" % ctl.sessions())
        cp = ctl.run("sessions")
        check(cp.returncode == 0 and cp.stdout.strip() == "no matching sessions",
              "ephemeractl sessions with none: exit %d, %r" % (cp.returncode, cp.stdout))

        srv = lab.agent(lab.ns("srv"))
        remotes = {"S1:p": (SERVER, 5000), "S1:q": (SERVER, 5001), "S2:p": (SERVER2, 5000)}
        for name, (a, p) in remotes.items():
            srv.open(name, a, p)
            srv.serve_echo(name)
        subs = {1: lab.agent(lab.sub(1)), 2: lab.agent(lab.sub(2))}
        # sub1: socket a talks to two remotes (one mapping, two sessions), socket b to one.
        # sub2: socket c from the same source port as sub1's a; socket d.
        plan = [(1, "a", 40001, ["S1:p", "S1:q"]), (1, "b", 40002, ["S2:p"]),
                (2, "c", 40001, ["S1:p"]), (2, "d", 40003, ["S1:q"])]
        external = {}
        expected = {1: set(), 2: set()}  # (inside, external, remote)
        for i, sock, port, targets in plan:
            subs[i].open(sock, port=port)
            for t in targets:
                src, text = udp_exchange(subs[i], sock, remotes[t], "%s to %s" % (sock, t))
                check(src == remotes[t], "echo for %s came from %s" % (sock, src))
                ep = parse_echo(text)[0]
                check(external.setdefault(sock, ep) == ep,
                      "socket %s seen as %s and %s" % (sock, external[sock], ep))
                expected[i].add(((sub_addr(i), port), ep, remotes[t]))
            log("sub%d %s:%d -> %s" % (i, sub_addr(i), port, ep_text(external[sock])))

        def listed(*filters):
            return {(s["inside"], s["external"], s["remote"])
                    for s in map(parse_session, ctl.sessions(*filters))}

        for i in (1, 2):
            got = listed("--subscriber", sub_addr(i))
            check(got == expected[i], "sessions --subscriber %s lists %s, expected %s" % (
                sub_addr(i), sorted(got), sorted(expected[i])))
        check(listed() == expected[1] | expected[2], "sessions lists %s" % sorted(listed()))
        for sock, want in (("b", 1), ("a", 2)):
            got = listed("--external", ep_text(external[sock]))
            mine = {e for e in expected[1] if e[1] == external[sock]}
            check(got == mine and len(got) == want, "sessions --external %s lists %s, "
                  "expected %s" % (ep_text(external[sock]), sorted(got), sorted(mine)))
        # whois answers from the live table: socket a's mapping, its two sessions the proof.
        cp = ctl.run("whois", ep_text(external["a"]), "--proto", "udp")
        check(cp.returncode == 0 and "  %s:40001 (udp mapping), from the live table\n" %
              sub_addr(1) in cp.stdout and cp.stdout.count("/ephemera/sessions:") == 2,
              "whois %s: exit %d, %s%s" % (ep_text(external["a"]), cp.returncode, cp.stdout,
                                           cp.stderr))
        log("whois: " + cp.stdout.rstrip())
        # The human form carries the same lines.
        text = ctl.ok("sessions", "--subscriber", sub_addr(2)).splitlines()
        check(sorted(text) == sorted(ctl.sessions("--subscriber", sub_addr(2))),
              "table and --json disagree: %s" % text)
        check(ctl.sessions("--subscriber", "100.64.0.99") == [],
              "sessions of a subscriber that sent nothing: %s" %
              ctl.sessions("--subscriber", "100.64.0.99"))

        # Ports in use agree with the mappings.
        maps = [parse_mapping(m) for m in ctl.mappings()]
        check(sorted((m["inside"], m["external"]) for m in maps) ==
              sorted(((sub_addr(i), port), external[sock]) for i, sock, port, _ in plan),
              "mappings %s do not match the flows %s" % (maps, external))
        ports = ctl.ports()
        for addr in POOL:
            on_addr = sum(1 for m in maps if m["external"][0] == addr)
            used = ports[addr]["udp_usable"] - ports[addr]["udp_free"]
            check(used == on_addr, "show ports: %s has %d UDP ports in use, %d mappings are "
                  "on it" % (addr, used, on_addr))
            check(ports[addr]["tcp_usable"] == ports[addr]["tcp_free"] and
                  ports[addr]["draining"] == 0, "show ports %s: %s" % (addr, ports[addr]))
        usable = (IANA[1] - IANA[0] + 1) - (RESERVED[1] - RESERVED[0] + 1)
        check(all(p["udp_usable"] == usable for p in ports.values()),
              "usable ports per address %s, the range minus reserved is %d" % (
                  {a: p["udp_usable"] for a, p in ports.items()}, usable))
        table = ctl.ok("show", "ports")
        log(table.rstrip())
        check("total" in table and all(a in table for a in POOL), "show ports table:\n" + table)

        # Flush sub1: its sessions and mappings go, sub2's stay.
        before = ctl.stats()
        reply = ctl.json("flush", "--subscriber", sub_addr(1))
        check(reply.get("result") == "ok" and reply.get("flushed") == len(expected[1]),
              "flush --subscriber %s: %s, expected %d sessions flushed" % (
                  sub_addr(1), reply, len(expected[1])))
        check(ctl.sessions("--subscriber", sub_addr(1)) == [],
              "after the flush sub1 still has %s" % ctl.sessions("--subscriber", sub_addr(1)))
        check(listed("--subscriber", sub_addr(2)) == expected[2],
              "after flushing sub1, sub2 has %s" % sorted(listed("--subscriber", sub_addr(2))))
        maps = [parse_mapping(m) for m in ctl.mappings()]
        check(sorted(m["inside"] for m in maps) == [(sub_addr(2), 40001), (sub_addr(2), 40003)],
              "mappings after the flush: %s" % maps)
        after = ctl.stats()
        check(after["live_sessions"] == 2 and after["live_mappings"] == 2,
              "after the flush: live_sessions %d, live_mappings %d" % (after["live_sessions"],
                                                                      after["live_mappings"]))
        ports = ctl.ports()
        held = sum(p["held"] for p in ports.values())
        used = sum(p["udp_usable"] - p["udp_free"] for p in ports.values())
        check(held == 2 and used == 4, "after the flush: %d ports held, %d in use; expected "
              "sub1's two ports in hold-down besides sub2's two mappings" % (held, used))

        # Nothing reaches sub1 through its old endpoints; sub2 works as before.
        srv.send("S1:p", external["a"], "to the flushed mapping")
        check(subs[1].drain("a", window=1.0) == [], "a datagram to the flushed mapping %s "
              "reached sub1" % ep_text(external["a"]))
        src, text = udp_exchange(subs[2], "c", remotes["S1:p"], "c again")
        check(parse_echo(text)[0] == external["c"], "sub2's mapping moved to %s" % text)

        # A new datagram from sub1 makes a new mapping, not on the held port.
        src, text = udp_exchange(subs[1], "a", remotes["S1:p"], "a after the flush")
        fresh = parse_echo(text)[0]
        check(fresh != external["a"], "sub1 got its flushed endpoint %s back at once, while "
              "the port is in hold-down" % ep_text(fresh))
        got = [parse_session(l) for l in ctl.sessions("--subscriber", sub_addr(1))]
        check(len(got) == 1 and got[0]["external"] == fresh and
              got[0]["inside"] == (sub_addr(1), 40001) and got[0]["remote"] == remotes["S1:p"],
              "after the new datagram sub1 has %s, expected one session as %s" % (
                  got, ep_text(fresh)))
        stats = ctl.stats()
        check(stats["mappings_created"] - after["mappings_created"] == 1,
              "mappings_created rose by %d for sub1's new datagram" % (
                  stats["mappings_created"] - after["mappings_created"]))
        log("%s; sub1 %s:40001 was %s, now %s" % (
            reply.get("message"), sub_addr(1), ep_text(external["a"]), ep_text(fresh)))

        # flush --external takes one mapping's sessions only.
        reply = ctl.json("flush", "--external", ep_text(external["d"]))
        check(reply.get("result") == "ok" and reply.get("flushed") == 1,
              "flush --external %s: %s" % (ep_text(external["d"]), reply))
        check(listed("--subscriber", sub_addr(2)) ==
              {e for e in expected[2] if e[1] == external["c"]},
              "after flushing %s sub2 has %s" % (ep_text(external["d"]),
                                                  sorted(listed("--subscriber", sub_addr(2)))))

        # The command line's own refusals and errors.
        cp = ctl.run("flush")
        check(cp.returncode == 64, "flush without a filter exited %d" % cp.returncode)
        cp = ctl.run("sessions", "--subscriber", "not-an-address")
        check(cp.returncode == 64, "sessions --subscriber not-an-address exited %d" %
              cp.returncode)
        cp = subprocess.run([ctl_binary, "--prefix", eph.prefix + "-none", "show", "config"],
                            capture_output=True, text=True, timeout=20)
        check(cp.returncode == 2, "ephemeractl with no server exited %d: %s" % (cp.returncode,
                                                                               cp.stderr))
        drops = {k: v for k, v in ctl.stats().items() if k.startswith("drop_") and v and
                 k not in BENIGN_DROPS}
        check(drops == {"drop_no_mapping": 1}, "drops: %s; expected only the datagram to the "
              "flushed mapping (drop_no_mapping 1)" % drops)


# ------------------------------------------------------------------------ 3. SIGHUP reload


def test_sighup_reload_in_lab(binary, ctl_binary):
    with lab_session(1) as lab, \
            ephemera_session(binary, lab, WORKERS, live_config()) as eph:
        ctl = Ctl(ctl_binary, eph.prefix, eph)
        srv = lab.agent(lab.ns("srv"))
        srv.open("s", SERVER, 5000)
        srv.serve_echo("s")
        cli = lab.agent(lab.sub(1))
        cli.open("c", port=40000)
        _, text = udp_exchange(cli, "c", (SERVER, 5000), "before")
        ext = parse_echo(text)[0]

        def reload_with(text, what):
            with open(eph.config_path, "w") as f:
                f.write(text)
            mark = len(eph.read_log())
            os.kill(eph.proc.pid, signal.SIGHUP)
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline:
                tail = eph.read_log()[mark:]
                if "SIGHUP" in tail:
                    log("    %s: %s" % (what, tail.strip()))
                    return tail
                time.sleep(0.1)
            raise TestFailure("%s: no SIGHUP line in ephemera's log" % what)

        # A good edit: timeouts and the port range.
        good = live_config(port_range="%d-%d" % ALT_RANGE).replace("udp = 300", "udp = 900")
        tail = reload_with(good, "udp 900, range 40000-50000")
        check("refused" not in tail, "the reload was refused: %s" % tail)
        cfg = ctl.config()
        check(cfg["timeout_udp"] == 900 and cfg["port_range"] == "%d-%d (%d-%d)" % (
            ALT_RANGE * 2), "after SIGHUP: timeout_udp %s, port_range %s" % (
                cfg["timeout_udp"], cfg["port_range"]))
        cli.open("n", port=20001)
        _, text = udp_exchange(cli, "n", (SERVER, 5000), "after reload")
        new = parse_echo(text)[0]
        check(ALT_RANGE[0] <= new[1] <= ALT_RANGE[1], "a new flow after the reload got port %d"
              % new[1])
        _, text = udp_exchange(cli, "c", (SERVER, 5000), "old flow")
        check(parse_echo(text)[0] == ext, "the old flow moved from %s to %s" % (ep_text(ext),
                                                                               text))

        # A runtime set is not in the file: the next reload takes the file's value.
        ctl.change("set", "timeouts.icmp", "120")
        check(ctl.config()["timeout_icmp"] == 120, "set timeouts.icmp did not apply")
        reload_with(good, "the same file again")
        check(ctl.config()["timeout_icmp"] == 60, "after a reload timeout_icmp is %s; the "
              "file says 60" % ctl.config()["timeout_icmp"])

        # Bad files are refused whole, naming the key; the running config stays.
        running = ctl.config()
        # Each bad file also carries a good change (udp 1200), which must not apply either.
        base = good.replace("udp = 900", "udp = 1200")
        for text, key in (
                (base.replace("udp = 1200", "udp = 30"), "timeouts.udp"),
                (base.replace('port = "net_af_packet0"', 'port = "net_af_packet9"'),
                 "inside.port"),
                (base.replace("max_sessions = 65536", "max_sessions = 1024"),
                 "limits.max_sessions"),
                (base.replace("[timeouts]", "[timeouts"), None)):
            check(text != base, "the bad edit for %s did not apply to the file" % key)
            tail = reload_with(text, "bad file (%s)" % (key or "TOML syntax"))
            check("refused" in tail and (key is None or key in tail),
                  "a bad file (%s) was not refused by name: %s" % (key, tail))
            check(ctl.config() == running, "a refused reload changed the config: %s -> %s" % (
                running, ctl.config()))
        check(eph.proc.poll() is None, "ephemera exited after the refused reloads")

        # ephemeractl reload does what SIGHUP does.
        with open(eph.config_path, "w") as f:
            f.write(live_config())
        msg = ctl.change("reload")
        cfg = ctl.config()
        check(cfg["timeout_udp"] == 300 and cfg["port_range"] == "iana (%d-%d)" % IANA,
              "after ephemeractl reload (%s): %s" % (msg, cfg))
        _, text = udp_exchange(cli, "c", (SERVER, 5000), "after all reloads")
        check(parse_echo(text)[0] == ext, "the old flow moved to %s" % text)


# ------------------------------------- 4. switching to address-dependent filtering (by hand)

# A switch to address-dependent filtering takes effect once every existing session's
# permission is counted, so inbound packets of existing peers are never refused in between.

_FANOUT = r"""
import socket, sys, time
fill, flows = int(sys.argv[1]), int(sys.argv[2])
f = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
f.bind(("0.0.0.0", 30000))
for p in range(fill):  # one mapping, `fill` sessions: a long permission rebuild
    f.sendto(b"fill", ("%(server2)s", 10000 + p))
    if p %% 200 == 0:
        time.sleep(0.02)
socks = []
for i in range(flows):  # `flows` mappings, one session each, to the server
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind(("0.0.0.0", 31000 + i))
    s.sendto(b"hello", ("%(server)s", 5000))
    socks.append(s)
    time.sleep(0.002)
print("ready", flush=True)
sys.stdin.read()
""" % {"server": SERVER, "server2": SERVER2}

_BLAST = r"""
import socket, sys, threading, time
eps = [(a, int(p)) for a, p in (e.rsplit(":", 1) for e in sys.argv[1].split(","))]
rate = float(sys.argv[2])
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind(("%(server)s", 6000))
stop = threading.Event()
threading.Thread(target=lambda: (sys.stdin.read(), stop.set()), daemon=True).start()
print("ready", flush=True)
n, start = 0, time.monotonic()
while not stop.is_set():
    wait = start + n / rate - time.monotonic()
    if wait > 0:
        time.sleep(wait)
    s.sendto(b"in", eps[n %% len(eps)])
    n += 1
print(n, flush=True)
""" % {"server": SERVER}


def test_address_filtering_switch_keeps_inbound(binary, ctl_binary, fill=20000, flows=200,
                                                switches=5):
    """RFC 4787 REQ-8 address-dependent filtering admits a remote address while the mapping
    has a session to it. Switched on at run time, it must keep admitting the traffic of
    sessions that already exist: the permissions are rebuilt by a walk over the sessions, and
    the new mode takes effect only when the walk is done."""
    cfg = make_config(max_sessions=262144) + "subscriber_sessions = 65536\n"
    with lab_session(1) as lab, ephemera_session(binary, lab, WORKERS, cfg) as eph:
        ctl = Ctl(ctl_binary, eph.prefix, eph)
        srv = lab.agent(lab.ns("srv"))
        srv.open("s", SERVER, 5000)
        srv.serve_echo("s")
        procs = []
        try:
            sub = lab.popen(lab.sub(1), [nslab.PYTHON, "-c", _FANOUT, str(fill), str(flows)],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
            procs.append(sub)
            check(sub.stdout.readline().strip() == "ready", "the subscriber's flows did not start")
            wait_until(lambda: len({src for src, _ in srv.seen("s")}) >= flows, 10)
            eps = sorted({ep_text(src) for src, _ in srv.seen("s")})
            check(len(eps) == flows, "the server saw %d flows of %d" % (len(eps), flows))
            st = ctl.stats()
            blast = lab.popen(lab.ns("srv"), [nslab.PYTHON, "-c", _BLAST, ",".join(eps),
                                              "10000"],
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
            procs.append(blast)
            check(blast.stdout.readline().strip() == "ready", "the server's sender did not start")
            time.sleep(1)
            per_switch = []
            for _ in range(switches):
                before = ctl.stats()["drop_filtered"]
                ctl.change("set", "filtering.mode", "address")
                time.sleep(0.5)
                per_switch.append(ctl.stats()["drop_filtered"] - before)
                ctl.change("set", "filtering.mode", "endpoint-independent")
                time.sleep(0.3)
            blast.stdin.close()
            sent = blast.stdout.readline().strip()
        finally:
            for p in procs:
                if p.poll() is None:
                    p.kill()
                    p.wait()
        log("%d sessions (%d flows from %s to %s, each sent to from %s:6000, %s datagrams in "
            "all); drop_filtered per switch to address-dependent filtering: %s" % (
                st["live_sessions"], flows, sub_addr(1), SERVER, SERVER, sent, per_switch))
        check(not any(per_switch), "switching to address-dependent filtering refused inbound "
              "datagrams of existing sessions from %s, whose address they had sent to: "
              "drop_filtered rose by %s at the %d switches" % (SERVER, per_switch, switches))


def parse_block(line):
    """'198.18.0.100 49216-49471 ports=64 in_use=12 subscriber=100.64.0.11 age=3s [closed]
    worker=1' -> dict."""
    m = re.match(r"([\d.]+) (\d+)-(\d+) ports=(\d+) in_use=(\d+) subscriber=([\d.]+) "
                 r"age=(\d+)s( closed)? worker=(\d+)$", line)
    if not m:
        raise TestFailure("unparsable block line %r" % line)
    return {"address": m.group(1), "span": (int(m.group(2)), int(m.group(3))),
            "ports": int(m.group(4)), "in_use": int(m.group(5)), "subscriber": m.group(6),
            "closed": m.group(8) is not None, "worker": int(m.group(9))}


def test_blocks_operator_view(binary, ctl_binary, heavy=70, light=5):
    """Blocks mode (RFC 6888 section 4 port sets): `show blocks` lists each subscriber's blocks
    with their span and fill, every port a server saw lies in its subscriber's blocks, `show
    ports` counts blocks per pool address, and `sessions --external` answers as in dynamic
    mode."""
    config = live_config(sections={"pool": {"mode": "blocks"},
                                   "pool.blocks": {"block_size": 64, "max_blocks": 4}})
    with lab_session(2) as lab, ephemera_session(binary, lab, WORKERS, config) as eph:
        ctl = Ctl(ctl_binary, eph.prefix, eph)
        cp = ctl.run("show", "blocks")
        check(cp.returncode == 0 and cp.stdout.strip() == "no blocks in use",
              "show blocks before any traffic: exit %d, %r" % (cp.returncode, cp.stdout))
        srv = lab.agent(lab.ns("srv"))
        srv.open("s", SERVER, 5000)
        srv.serve_echo("s")
        seen = {1: set(), 2: set()}
        for i, flows in ((1, heavy), (2, light)):
            cli = lab.agent(lab.sub(i))
            for k in range(flows):
                cli.open("c%d" % k, port=41000 + k)
                _, text = udp_exchange(cli, "c%d" % k, (SERVER, 5000), "flow %d" % k)
                seen[i].add(parse_echo(text)[0])
            check(len(seen[i]) == flows, "sub%d: %d flows seen as %d endpoints" % (
                i, flows, len(seen[i])))
        blocks = [parse_block(b) for b in ctl.json("show", "blocks")]
        log("blocks: %s" % blocks)
        by_sub = {i: [b for b in blocks if b["subscriber"] == sub_addr(i)] for i in (1, 2)}
        want = {1: (heavy + 63) // 64, 2: 1}
        for i in (1, 2):
            check(len(by_sub[i]) == want[i], "sub%d holds %d blocks, expected %d" % (
                i, len(by_sub[i]), want[i]))
            check(sum(b["in_use"] for b in by_sub[i]) == len(seen[i]),
                  "sub%d's blocks hold %d mappings, it has %d" % (
                      i, sum(b["in_use"] for b in by_sub[i]), len(seen[i])))
            for addr, port in seen[i]:
                check(any(b["address"] == addr and b["span"][0] <= port <= b["span"][1]
                          for b in by_sub[i]),
                      "sub%d's %s:%d lies in none of its blocks %s" % (i, addr, port, by_sub[i]))
            check(all(b["ports"] == 64 and not b["closed"] for b in by_sub[i]),
                  "sub%d blocks: %s" % (i, by_sub[i]))
            check(len({b["worker"] for b in by_sub[i]}) == 1,
                  "sub%d's blocks are on several workers: %s" % (i, by_sub[i]))
        only = [parse_block(b) for b in ctl.json("show", "blocks", "--subscriber", sub_addr(2))]
        check(only == by_sub[2], "show blocks --subscriber %s: %s" % (sub_addr(2), only))
        ports = ctl.ports()
        in_use = sum(p["blocks_in_use"] for p in ports.values())
        check(in_use == want[1] + want[2], "show ports counts %d blocks in use: %s" % (
            in_use, ports))
        check(all(p["blocks_free"] > 0 for p in ports.values()), "no free block: %s" % ports)
        stats = ctl.stats()
        check(stats["blocks_opened"] == want[1] + want[2], "blocks_opened %d" %
              stats["blocks_opened"])
        addr, port = sorted(seen[1])[0]
        listed = [parse_session(x) for x in ctl.sessions("--external", "%s:%d" % (addr, port))]
        check(len(listed) == 1 and listed[0]["inside"][0] == sub_addr(1),
              "sessions --external %s:%d: %s" % (addr, port, listed))


# Deterministic NAT (RFC 7422) in the lab: the prefix 100.64.0.8/29 holds the lab's first
# subscribers (100.64.0.11 up) and not 100.64.0.20, its four subscribers per pool address put
# 100.64.0.11 on the first pool address and 100.64.0.12-13 on the second, 16128 ports each.
DET_PREFIX = "100.64.0.8/29"
DET_RANGE = (1024, 65535)
DET_OUTSIDER = "100.64.0.20"  # in the lab's /24, outside DET_PREFIX


def _det_range(reply):
    lo, hi = (int(x) for x in reply["ports"].split("-"))
    return reply["pool_address"], lo, hi


def test_rfc7422_deterministic_forward_reverse(binary, ctl_binary, subs=3, flows=6):
    """Deterministic mode with two workers: every external endpoint the server sees, UDP and
    TCP, lies in the pool address and port run that `ephemeractl det forward` names for its
    subscriber (asked of the running ephemera and of the config file alone, which agree), and
    `det reverse` of each names the subscriber. Nothing is dropped; a source outside the
    prefix is refused, counted as drop_not_deterministic and answered with ICMP 3/1."""
    config = make_config(port_range="%d-%d" % DET_RANGE, reserved=(), sections={
        "pool": {"mode": "deterministic"},
        "pool.deterministic": {"subscribers": DET_PREFIX}})
    with lab_session(subs) as lab, ephemera_session(binary, lab, WORKERS, config) as eph:
        ctl = Ctl(ctl_binary, eph.prefix, eph)
        check(ctl.config().get("pool_mode") == "deterministic",
              "show config: pool_mode %r" % ctl.config().get("pool_mode"))
        runs = {}
        for i in range(1, subs + 1):
            online = ctl.json("det", "forward", sub_addr(i))
            offline = ctl.json("det", "forward", sub_addr(i), "--config", eph.config_path)
            check(online == offline, "det forward %s: online %s, from the config file %s" % (
                sub_addr(i), online, offline))
            runs[i] = _det_range(online)
        log("runs: %s" % runs)
        check(len({r[0] for r in runs.values()}) == 2, "the subscribers share one pool address:"
              " %s" % runs)
        srv = lab.agent(lab.ns("srv"))
        srv.open("s", SERVER, 5000)
        srv.serve_echo("s")
        tcp_server = lab.popen(lab.ns("srv"), [
            nslab.PYTHON, nslab.PEER, "tcp-server", "--bind", SERVER, "--port", "7000",
            "--connections", str(subs), "--send-bytes", "100000", "--timeout", "60"],
            stdout=subprocess.PIPE, text=True)
        seen = {i: set() for i in range(1, subs + 1)}
        try:
            check("listening" in tcp_server.stdout.readline(), "TCP server did not start")
            for i in range(1, subs + 1):
                cli = lab.agent(lab.sub(i))
                for k in range(flows):
                    # One source port inside the subscriber's run: kept as it is.
                    port = cli.open("u%d" % k, port=runs[i][1] + 2 * i if k == 0 else 0)
                    _, text = udp_exchange(cli, "u%d" % k, (SERVER, 5000), "sub%d %d" % (i, k))
                    ep = parse_echo(text)[0]
                    check(k != 0 or ep == (runs[i][0], port),
                          "sub%d's port %d, in its run, left as %s" % (i, port, ep))
                    seen[i].add(("udp",) + ep)
                cp = lab.run(lab.sub(i), [nslab.PYTHON, nslab.PEER, "tcp-client", "--to",
                                          SERVER, "--port", "7000", "--send-bytes", "100000",
                                          "--timeout", "30"], timeout=40)
                got = json.loads(cp.stdout.strip().splitlines()[-1])
                check("error" not in got and got.get("received") == 100000,
                      "sub%d's TCP connection: %s" % (i, got))
            for _ in range(subs):
                rec = json.loads(tcp_server.stdout.readline())
                check("error" not in rec and rec["received"] == 100000,
                      "TCP server: %s" % rec)
                addr, port = rec["peer"]
                owner = [i for i, r in runs.items() if r[0] == addr and r[1] <= port <= r[2]]
                check(len(owner) == 1, "TCP peer %s:%d lies in no subscriber's run %s" % (
                    addr, port, runs))
                seen[owner[0]].add(("tcp", addr, port))
        finally:
            if tcp_server.poll() is None:
                tcp_server.kill()
            tcp_server.wait()
        for i in range(1, subs + 1):
            addr, lo, hi = runs[i]
            check(len([e for e in seen[i] if e[0] == "udp"]) == flows and
                  any(e[0] == "tcp" for e in seen[i]),
                  "sub%d: the server saw %s" % (i, sorted(seen[i])))
            for proto, a, port in sorted(seen[i]):
                check(a == addr and lo <= port <= hi, "sub%d's %s %s:%d lies outside its run "
                      "%s %d-%d" % (i, proto, a, port, addr, lo, hi))
                for args in ((), ("--config", eph.config_path)):
                    back = ctl.json("det", "reverse", "%s:%d" % (a, port), *args)
                    check(back.get("subscriber") == sub_addr(i) and
                          back.get("ports") == "%d-%d" % (lo, hi),
                          "det reverse %s:%d %s: %s, expected %s" % (
                              a, port, " ".join(args), back, sub_addr(i)))
            workers = {parse_session(x)["worker"] for x in ctl.sessions("--subscriber",
                                                                         sub_addr(i))}
            check(len(workers) == 1, "sub%d's sessions are on workers %s" % (i, workers))
        log("external endpoints: %s" % {sub_addr(i): sorted(e) for i, e in seen.items()})
        drops = {k: v for k, v in ctl.stats().items() if k.startswith("drop_") and v and
                 k not in BENIGN_DROPS}
        check(not drops, "drops: %s" % drops)

        # A source outside the prefix: no mapping, counted; det forward says why.
        cp = ctl.run("det", "forward", DET_OUTSIDER)
        check(cp.returncode == 1 and "not a subscriber" in cp.stderr,
              "det forward %s: exit %d, %r" % (DET_OUTSIDER, cp.returncode, cp.stderr))
        lab.run(lab.sub(1), ["ip", "addr", "add", DET_OUTSIDER + "/24", "dev", "eth0"],
                check_rc=True)
        cli = lab.agent(lab.sub(1))
        cli.open("x", addr=DET_OUTSIDER)
        st = ctl.stats()
        before, icmp_before = st["drop_not_deterministic"], st["icmp_unreachable_sent"]
        for k in range(3):
            cli.send("x", (SERVER, 5000), "outsider %d" % k)
        got = cli.drain("x", window=1.0)
        st = ctl.stats()
        after, icmp_after = st["drop_not_deterministic"], st["icmp_unreachable_sent"]
        strays = [d for _, d in srv.seen("s") if d.startswith("outsider")]
        check(not got and not strays, "%s got through: echoes %s, server saw %s" % (
            DET_OUTSIDER, got, strays))
        check(after - before == 3, "drop_not_deterministic rose by %d for 3 datagrams from %s"
              % (after - before, DET_OUTSIDER))
        check(icmp_after > icmp_before, "no ICMP 3/1 for the refused %s (RFC 6888 REQ-11)" %
              DET_OUTSIDER)
        log("%s refused: drop_not_deterministic +%d, icmp_unreachable_sent +%d" % (
            DET_OUTSIDER, after - before, icmp_after - icmp_before))
        listed = ctl.sessions("--subscriber", DET_OUTSIDER)
        check(not listed, "sessions of %s: %s" % (DET_OUTSIDER, listed))


# Static mappings: a port forward on the first pool address to sub1's web server, one to
# sub1's port 2222 added at run time, and 1:1 of STATIC_ONE_TO_ONE (in the server's /24, not in
# the pool) to sub3.
STATIC_ONE_TO_ONE = "198.18.0.150"
# python3 -m http.server without its reverse lookup of the bound name (getfqdn), which waits
# for a DNS server the lab does not have. Logs each request's client address on stderr.
WEB_SERVER = """
import http.server, os, socketserver, sys
class Server(http.server.ThreadingHTTPServer):
    def server_bind(self):
        socketserver.TCPServer.server_bind(self)
        self.server_name, self.server_port = "lab", self.server_address[1]
os.chdir(sys.argv[3])
Server((sys.argv[1], int(sys.argv[2])), http.server.SimpleHTTPRequestHandler).serve_forever()
"""


def _http_clients(log_text):
    """The client address of each GET /blob in python3 -m http.server's log."""
    return re.findall(r'^(\S+) - - \[[^]]*\] "GET /blob', log_text, re.M)


def _nc_through(lab, listen_ns, listen_addr, port, send_ns, to_addr, text):
    """`nc -l` in listen_ns, `nc` from send_ns to to_addr:port with `text`; what the listener
    got."""
    listener = lab.popen(listen_ns, ["nc", "-l", "-s", listen_addr, "-p", str(port), "-w", "15"],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        check(wait_until(lambda: ":%d " % port in lab.run(listen_ns, ["ss", "-ltnH"]).stdout,
                         5.0), "nc is not listening on %d" % port)
        cp = lab.run(send_ns, ["bash", "-c", "printf '%%s\\n' '%s' | nc -N -w 15 %s %d" % (
            text, to_addr, port)], timeout=30)
        check(cp.returncode == 0, "nc to %s:%d exited %d: %s" % (to_addr, port, cp.returncode,
                                                                  cp.stderr))
        out, _ = listener.communicate(timeout=20)
        return out
    finally:
        if listener.poll() is None:
            listener.kill()
            listener.wait()


def test_static_forward_and_one_to_one(binary, ctl_binary):
    """Static mappings with two workers and real Linux stacks: curl from outside reaches sub1's
    web server through a port forward with no earlier outbound packet, and sees every byte; the
    server logs the remote's own address (the forward admits every remote). sub2 reaches the
    same forward by hairpin (RFC 4787 REQ-9), logged as its external address. A forward added
    with `ephemeractl static add` carries nc's text at once; 1:1 gives sub3 every port of its
    address both ways (ping, nc, and UDP leaving with its own port); `show static` lists them,
    and a removed forward refuses new connections."""
    config = live_config() + (
        '\n[[static]]\nprotocol = "tcp"\nexternal = "%s:8080"\ninside = "%s:8000"\n'
        '\n[[static]]\nexternal = "%s"\ninside = "%s"\n' % (
            POOL[0], sub_addr(1), STATIC_ONE_TO_ONE, sub_addr(3)))
    with lab_session(3) as lab, ephemera_session(binary, lab, WORKERS, config) as eph:
        ctl = Ctl(ctl_binary, eph.prefix, eph)
        shown = ctl.json("show", "static")
        check(sorted(shown.get("kind", [])) == ["1:1", "forward"],
              "show static: %s" % shown)
        web = os.path.join(eph.tmp, "web")
        os.makedirs(web, exist_ok=True)
        blob = os.urandom(300000)
        with open(os.path.join(web, "blob"), "wb") as f:
            f.write(blob)
        http = lab.popen(lab.sub(1), [nslab.PYTHON, "-c", WEB_SERVER, sub_addr(1), "8000", web],
                         stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        try:
            check(wait_until(lambda: ":8000 " in lab.run(lab.sub(1), ["ss", "-ltnH"]).stdout,
                             10.0), "the web server is not listening")
            url = "http://%s:8080/blob" % POOL[0]
            for who, node in (("the server", lab.ns("srv")), ("sub2", lab.sub(2))):
                out = os.path.join(eph.tmp, "got")
                cp = lab.run(node, ["curl", "-sS", "--max-time", "30", "-o", out, url],
                             timeout=40)
                check(cp.returncode == 0, "curl %s from %s exited %d: %s" % (
                    url, who, cp.returncode, cp.stderr))
                with open(out, "rb") as f:
                    got = f.read()
                check(got == blob, "curl %s from %s: %d bytes, %s" % (
                    url, who, len(got), "equal" if got == blob else "different"))
            listed = [parse_session(x) for x in ctl.sessions("--external", "%s:8080" % POOL[0])]
            check(listed and all(x["inside"] == (sub_addr(1), 8000) for x in listed),
                  "sessions --external %s:8080: %s" % (POOL[0], listed))
        finally:
            http.terminate()
            _, http_log = http.communicate(timeout=10)
        clients = _http_clients(http_log)
        log("web server's clients: %s" % clients)
        check(len(clients) == 2 and clients[0] == SERVER and clients[1] in POOL,
              "the web server saw %s, expected %s then a pool address" % (clients, SERVER))

        # A forward added at run time, on the other pool address.
        ctl.ok("static", "add", "tcp", "%s:2222" % POOL[1], "%s:2222" % sub_addr(1))
        got = _nc_through(lab, lab.sub(1), sub_addr(1), 2222, lab.ns("srv"), POOL[1],
                          "hello through a forward")
        check("hello through a forward" in got, "nc through %s:2222 got %r" % (POOL[1], got))

        # 1:1: every port of the address is sub3's, both ways.
        sent, received, out = lab.ping(lab.ns("srv"), STATIC_ONE_TO_ONE)
        check(received > 0, "ping %s (1:1 to sub3): %s" % (STATIC_ONE_TO_ONE, out))
        got = _nc_through(lab, lab.sub(3), sub_addr(3), 7777, lab.ns("srv"), STATIC_ONE_TO_ONE,
                          "hello one to one")
        check("hello one to one" in got, "nc to %s:7777 got %r" % (STATIC_ONE_TO_ONE, got))
        srv = lab.agent(lab.ns("srv"))
        srv.open("s", SERVER, 5000)
        srv.serve_echo("s")
        cli = lab.agent(lab.sub(3))
        port = cli.open("u", port=41234)
        _, text = udp_exchange(cli, "u", (SERVER, 5000), "from sub3")
        check(parse_echo(text)[0] == (STATIC_ONE_TO_ONE, port),
              "sub3's UDP left as %s, expected %s:%d" % (parse_echo(text)[0],
                                                        STATIC_ONE_TO_ONE, port))

        stats = ctl.stats()
        check(stats["static_mappings_created"] >= 4, "static_mappings_created %d" %
              stats["static_mappings_created"])
        log("static counters: %s" % {k: v for k, v in stats.items() if "static" in k})

        # Removed: the forward's port refuses new connections, counted.
        ctl.ok("static", "remove", "tcp", "%s:8080" % POOL[0])
        before = ctl.stats()["drop_no_mapping"]
        cp = lab.run(lab.ns("srv"), ["curl", "-sS", "--max-time", "3", "-o", "/dev/null",
                                     url], timeout=20)
        check(cp.returncode != 0, "curl %s after the forward was removed exited 0" % url)
        check(ctl.stats()["drop_no_mapping"] > before, "the refused SYNs were not counted")
        shown = ctl.json("show", "static")
        check(shown.get("total") == 2, "show static after add and remove: %s" % shown)


TESTS = {name[len("test_"):]: fn for name, fn in globals().items()
         if name.startswith("test_") and callable(fn)}

if __name__ == "__main__":
    sys.exit(main(TESTS, tools=("ephemeractl",)))
