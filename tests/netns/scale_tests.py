#!/usr/bin/python3
"""Scale-out across boxes (docs/ha.md, "Scale-out across boxes (design)"): two ephemera boxes,
each with its own pool, behind an inside router that spreads subscribers by ECMP hashed on the
source address only, and an outside router that learns each box's pool prefix by BGP from a
BIRD 2 speaking for the box (scripts/lab.sh up LAB N scale).

    /usr/bin/python3 scale_tests.py TEST_NAME EPHEMERA_BINARY EPHEMERACTL_BINARY

Each test builds its own lab (namespaces n<pid>-*, BIRD state in /tmp/ephemera-lab.n<pid>) and
removes it on every exit path. Without BIRD (Debian package bird2) the tests skip.
"""

import contextlib
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time

from nslab import (PEER, PYTHON, SKIP, Ephemera, TestFailure, check, cleanup_together, lab_session,
                   log, main, parse_echo, sub_addr, udp_exchange, wait_until)
from live_tests import Ctl, Stream, Timeline, check_tcp_stream, live_config, parse_session

WORKERS = 2
SUBSCRIBERS = 8
BOX = {"nat": "A", "nat2": "B"}
# scripts/lab.sh, scale-out mode (LAB_SCALE_*)
GATEWAY = {"nat": "100.64.255.1", "nat2": "100.64.255.2"}
POOL = {"nat": ["198.18.0.100", "198.18.0.101"], "nat2": ["198.18.0.102", "198.18.0.103"]}
PREFIX = {"nat": "198.18.0.100/31", "nat2": "198.18.0.102/31"}
# Each box's ha.handover: on its ctl0 (scripts/lab.sh LAB_SCALE_CTL_*), which reaches the other's
HANDOVER = {"nat": "198.19.1.1:5890", "nat2": "198.19.2.1:5890"}
ROUTER_PROTOCOL = {"nat": "box_a", "nat2": "box_b"}  # the router's BGP session with each box
BOX_PROTOCOL = "uplink"                               # each box's session with the router
NEXT_HOP = "198.18.0.1"  # the outside router's wan0
LAB_SH = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__)))), "scripts", "lab.sh")
SERVER = "198.18.2.2"    # behind the outside router

UDP_PORT = 5000
TCP_SHORT_PORT = 7000
TCP_STREAM_PORT = 6000   # + subscriber index
TCP_DOWN_RATE = 64 << 10  # bytes per second, server -> subscriber
TCP_UP_RATE = 32 << 10    # bytes per second, subscriber -> server
BGP_TIMEOUT = 30.0
ROUTE_TIMEOUT = 15.0
STALL_WINDOW = 4.0       # seconds the drained box's former streams are watched


def bird_dir(lab):
    return "/tmp/ephemera-lab.%s" % lab.name  # scripts/lab.sh lab_bird_dir


def birdc(lab, node, *args):
    """birdc against NODE's BIRD (its own control socket; the package's service is untouched)."""
    cp = subprocess.run(["birdc", "-s", "%s/bird-%s.ctl" % (bird_dir(lab), node)] + list(args),
                        capture_output=True, text=True, timeout=20)
    check(cp.returncode == 0, "birdc %s on %s exited %d: %s%s" % (
        " ".join(args), node, cp.returncode, cp.stdout, cp.stderr))
    return cp.stdout


def bgp_states(lab, node):
    """{protocol: info (Established, Active, ...), else state} of NODE's BGP protocols, from
    `birdc show protocols` (Name Proto Table State Since Info)."""
    states = {}
    for line in birdc(lab, node, "show", "protocols").splitlines():
        f = line.split()
        if len(f) >= 4 and f[1] == "BGP":
            states[f[0]] = " ".join(f[5:]) or f[3]
    return states


def kernel_route(lab, prefix):
    """The outside router's kernel route for prefix ('' if none)."""
    return lab.run(lab.ns("rout"), ["ip", "-4", "route", "show", prefix],
                   check_rc=True).stdout.strip()


def ecmp_choice(lab, i):
    """The box the inside router's FIB picks for subscriber i's packets to the server."""
    out = lab.run(lab.ns("rin"), ["ip", "-4", "route", "get", SERVER, "from", sub_addr(i),
                                  "iif", "lan0"], check_rc=True).stdout
    m = re.search(r"via ([\d.]+)", out)
    return {v: k for k, v in GATEWAY.items()}.get(m.group(1) if m else None)


def box_of_address(addr):
    return next((node for node, pool in POOL.items() if addr in pool), None)


class Box:
    """One scale-out box: its ephemera (own pool and inside gateway, no [ha]) and ephemeractl."""

    def __init__(self, binary, ctl_binary, lab, node, handover=False, migrate_hook=None):
        self.node = node
        self.name = "box %s (%s)" % (BOX[node], lab.ns(node))
        sections = {"inside": {"gateway": GATEWAY[node]}}
        if handover:
            sections["ha"] = {"handover": HANDOVER[node]}
            if migrate_hook:
                sections["ha"]["migrate_hook"] = migrate_hook
                # Its `ip` commands wait for the kernel's locks, which a host busy closing an
                # earlier test's sockets and namespaces has held for seconds: the test is of
                # the move, not of that.
                sections["ha"]["migrate_hook_timeout"] = MIGRATE_HOOK_TIMEOUT_S
        config = live_config(pool=POOL[node], next_hop=NEXT_HOP, sections=sections)
        self.eph = Ephemera(binary, lab, WORKERS, config, node=node)
        self.ctl = Ctl(ctl_binary, self.eph.prefix, self.eph)

    def start(self):
        self.eph.start()
        log("%s started: pool %s, inside gateway %s" % (self.name, POOL[self.node],
                                                        GATEWAY[self.node]))

    def sessions(self, subscriber):
        return [parse_session(l) for l in self.ctl.sessions("--subscriber", subscriber,
                                                            "--limit", "512")]

def routed_via(lab, node, via=None):
    """Whether the outside router's kernel routes NODE's pool prefix via `via` (default: the
    box's first pool address, its BGP next hop)."""
    want = "%s via %s dev wan0" % (PREFIX[node], via or POOL[node][0])
    return lambda: kernel_route(lab, PREFIX[node]).startswith(want)


def start_boxes(lab, binary, ctl_binary, boxes, timeline, handover=False, migrate_hook=None):
    """Starts box A and box B (appended to `boxes` as they start, so that a failure still
    cleans them up) and waits until both BGP sessions are up and both pool prefixes are in
    the outside router's kernel."""
    for node in ("nat", "nat2"):
        box = Box(binary, ctl_binary, lab, node, handover, migrate_hook)
        boxes.append(box)
        box.start()

    def established():
        st = bgp_states(lab, "rout")
        return all(st.get(p, "").startswith("Established")
                   for p in ROUTER_PROTOCOL.values()) and st

    st = wait_until(established, BGP_TIMEOUT, 0.2)
    check(st, "router's BGP sessions not Established within %.0f s: %s\n%s" % (
        BGP_TIMEOUT, bgp_states(lab, "rout"), birdc(lab, "rout", "show", "protocols")))
    for node in ("nat", "nat2"):
        check(bgp_states(lab, node).get(BOX_PROTOCOL, "").startswith("Established"),
              "box %s's BGP session: %s" % (BOX[node], bgp_states(lab, node)))
    timeline.mark("BGP established: router %s" % st)
    for node in ("nat", "nat2"):
        check(wait_until(routed_via(lab, node), ROUTE_TIMEOUT, 0.1),
              "router's kernel lacks %s via %s: %r; BIRD: %s" % (
                  PREFIX[node], POOL[node][0], kernel_route(lab, PREFIX[node]),
                  birdc(lab, "rout", "show", "route", "all")))
    log("router's BIRD:\n%s" % birdc(lab, "rout", "show", "route").rstrip())
    log("router's kernel: %s | %s" % (kernel_route(lab, PREFIX["nat"]),
                                      kernel_route(lab, PREFIX["nat2"])))


def short_tcp(lab, i):
    """A short TCP transfer from subscriber i to the server (1000 + i bytes up, which names the
    subscriber on the server's side)."""
    cp = lab.run(lab.sub(i), [PYTHON, PEER, "tcp-client", "--to", SERVER, "--port",
                              str(TCP_SHORT_PORT), "--send-bytes", str(1000 + i),
                              "--timeout", "15"], timeout=30, check_rc=True)
    rec = json.loads(cp.stdout.strip().splitlines()[-1])
    check("error" not in rec, "sub%d: short TCP transfer failed: %s" % (i, rec))
    return rec


def read_json_lines(proc, n, timeout):
    """n JSON lines from a process's stdout (a peer.py tcp-server)."""
    import select
    out, deadline = [], time.monotonic() + timeout
    while len(out) < n:
        r, _, _ = select.select([proc.stdout], [], [], max(0.0, deadline - time.monotonic()))
        if not r:
            raise TestFailure("tcp-server: %d of %d lines within %.0f s: %s" % (
                len(out), n, timeout, out))
        line = proc.stdout.readline()
        if not line:
            raise TestFailure("tcp-server exited (rc %s) after %s" % (proc.poll(), out))
        out.append(json.loads(line))
    return out


FINALS = {}  # stream -> its final line, once it has ended on its own


def progress(stream):
    """(received, sent, error) of a stream; one that has ended reports its final line (kept in
    FINALS, as it cannot be asked again)."""
    s = FINALS.get(stream)
    if s is None:
        try:
            s = stream.status()
        except OSError:  # it has ended (stdin closed): its final line is still in the pipe
            try:
                s = stream.final(timeout=5)
            except (OSError, TestFailure, ValueError) as e:
                return -1, -1, "stream process gone, no final line: %s" % e
        if s.get("final"):
            FINALS[stream] = s
    return s.get("received", 0), s.get("sent", 0), s.get("error") or (
        "ended" if s.get("final") else None)


def test_scale_out_two_boxes_bgp_ecmp(binary, ctl_binary):
    subs = range(1, SUBSCRIBERS + 1)
    boxes, streams, procs = [], [], []
    with lab_session(SUBSCRIBERS, scale=True) as lab:
        try:
            timeline = Timeline()
            timeline.mark("lab up")
            hash_cfg = lab.run(lab.ns("rin"), ["sysctl", "-n", "net.ipv4.fib_multipath_hash_policy",
                                               "net.ipv4.fib_multipath_hash_fields"],
                               check_rc=True).stdout.split()
            check(hash_cfg == ["3", "1"], "inside router: fib_multipath_hash_policy/fields are "
                  "%s, expected 3 and 0x0001 (source address only)" % hash_cfg)
            log("inside router: fib_multipath_hash_policy=%s, fib_multipath_hash_fields=%s" %
                tuple(hash_cfg))

            # 1. Both boxes, both BGP sessions, both pool prefixes in the router's kernel.
            start_boxes(lab, binary, ctl_binary, boxes, timeline)
            a, b = boxes

            # 2. Each subscriber: a UDP flow, a short TCP transfer and a long TCP stream.
            srv = lab.agent(lab.ns("srv"))
            srv.open("echo", SERVER, UDP_PORT)
            srv.serve_echo("echo")
            tcp_short_srv = lab.popen(lab.ns("srv"), [
                PYTHON, PEER, "tcp-server", "--bind", SERVER, "--port", str(TCP_SHORT_PORT),
                "--connections", str(SUBSCRIBERS), "--timeout", "60"],
                stdout=subprocess.PIPE, text=True, bufsize=1)
            procs.append(tcp_short_srv)
            read_json_lines(tcp_short_srv, 1, 15)  # listening
            agents, udp_ep, tcp_ep = {}, {}, {}
            for i in subs:
                agents[i] = lab.agent(lab.sub(i))
                agents[i].open("u")
                _, echo = udp_exchange(agents[i], "u", (SERVER, UDP_PORT), "before sub%d" % i)
                udp_ep[i] = parse_echo(echo)[0]
                short_tcp(lab, i)
            for rec in read_json_lines(tcp_short_srv, SUBSCRIBERS, 30):
                check("error" not in rec, "short TCP transfer, server side: %s" % rec)
                tcp_ep[rec["received"] - 1000] = tuple(rec["peer"])
            tcp_srv, tcp_cli = {}, {}
            for i in subs:
                port = TCP_STREAM_PORT + i
                tcp_srv[i] = Stream(lab, lab.ns("srv"), [
                    "tcp-stream-server", "--bind", SERVER, "--port", str(port), "--rate",
                    str(TCP_DOWN_RATE), "--timeout", "120"], "TCP stream server :%d" % port)
                streams.append(tcp_srv[i])
                tcp_cli[i] = Stream(lab, lab.sub(i), [
                    "tcp-stream-client", "--to", SERVER, "--port", str(port), "--upload-rate",
                    str(TCP_UP_RATE), "--timeout", "120"], "TCP stream client (sub%d)" % i)
                streams.append(tcp_cli[i])
            timeline.mark("flows open")

            # Which box each subscriber landed on: the server's view (one public address per
            # subscriber, from one box's pool), the router's FIB, and both boxes' sessions.
            landed = {}
            for i in subs:
                addr = udp_ep[i][0]
                check(tcp_ep.get(i, ("?",))[0] == addr,
                      "sub%d: the server saw UDP from %s but TCP from %s (paired pooling: one "
                      "address)" % (i, addr, tcp_ep.get(i)))
                node = box_of_address(addr)
                check(node is not None, "sub%d translated to %s, in no box's pool" % (i, addr))
                landed[i] = node
                fib = ecmp_choice(lab, i)
                if fib != node:
                    log("WARNING: sub%d: ip route get on the inside router says box %s, the "
                        "traffic went to box %s" % (i, BOX.get(fib, fib), BOX[node]))
            stream_ep = {}
            for i in subs:
                here = [box for box in boxes if box.node == landed[i]][0]
                other = [box for box in boxes if box.node != landed[i]][0]

                def listed(i=i, here=here):
                    ss = here.sessions(sub_addr(i))
                    tcp = [s for s in ss if s["proto"] == "tcp"
                           and s["remote"] == (SERVER, TCP_STREAM_PORT + i)]
                    udp = [s for s in ss if s["proto"] == "udp"]
                    return (tcp and udp) and ss

                ss = wait_until(listed, 10, 0.2)
                check(ss, "sub%d: %s does not list its UDP and TCP stream sessions: %s" % (
                    i, here.name, here.sessions(sub_addr(i))))
                check({s["external"][0] for s in ss} == {udp_ep[i][0]},
                      "sub%d: %s lists sessions on %s, the server saw %s" % (
                          i, here.name, sorted({s["external"] for s in ss}), udp_ep[i][0]))
                stream_ep[i] = [s["external"] for s in ss if s["proto"] == "tcp" and
                                s["remote"] == (SERVER, TCP_STREAM_PORT + i)][0]
                check(other.sessions(sub_addr(i)) == [],
                      "sub%d: %s lists sessions of a subscriber that is on %s: %s" % (
                          i, other.name, here.name, other.sessions(sub_addr(i))))
            on = {node: [i for i in subs if landed[i] == node] for node in BOX}
            log("landed: box A %s, box B %s" % (
                ", ".join("sub%d (%s)" % (i, udp_ep[i][0]) for i in on["nat"]),
                ", ".join("sub%d (%s)" % (i, udp_ep[i][0]) for i in on["nat2"])))
            check(on["nat"] and on["nat2"], "the source hash put every subscriber on one box: "
                  "%s" % {BOX[n]: v for n, v in on.items()})

            before = {i: (progress(tcp_cli[i]), progress(tcp_srv[i])) for i in subs}

            def moving(i, ref):
                (c_rx, c_tx, _), (s_rx, s_tx, _) = progress(tcp_cli[i]), progress(tcp_srv[i])
                return c_rx > ref[0][0] and s_rx > ref[1][0]

            check(wait_until(lambda: all(moving(i, before[i]) for i in subs), 10, 0.2),
                  "TCP streams not moving both ways before the drain: %s" % {
                      i: (progress(tcp_cli[i]), progress(tcp_srv[i])) for i in subs})

            # 3. Drain box B by routing only: its BGP announcement withdrawn, its inside next hop
            # out of the ECMP route. Its sessions stay on it (no hand-over yet).
            birdc(lab, "nat2", "disable", BOX_PROTOCOL)
            lab.run(lab.ns("rin"), ["ip", "route", "replace", "default", "via", GATEWAY["nat"],
                                    "dev", "tr0"], check_rc=True)
            t_drain = time.monotonic()
            timeline.mark("box B drained: BGP disabled, inside route via box A only")
            check(wait_until(lambda: kernel_route(lab, PREFIX["nat2"]) == "", ROUTE_TIMEOUT,
                             0.05),
                  "router's kernel still routes %s: %r" % (PREFIX["nat2"],
                                                          kernel_route(lab, PREFIX["nat2"])))
            t_withdrawn = time.monotonic()
            bird_routes = birdc(lab, "rout", "show", "route")
            check(PREFIX["nat2"] not in bird_routes and PREFIX["nat"] in bird_routes,
                  "router's BIRD after the drain:\n%s" % bird_routes)
            check(routed_via(lab, "nat")(), "router's kernel lost box A's %s: %r" % (
                PREFIX["nat"], kernel_route(lab, PREFIX["nat"])))
            st = bgp_states(lab, "rout")
            timeline.mark("B's prefix gone from the router's kernel after %.2f s; router's "
                          "sessions %s" % (t_withdrawn - t_drain, st))
            rin_route = lab.run(lab.ns("rin"), ["ip", "route", "show", "default"],
                                check_rc=True).stdout.strip()
            check(rin_route.startswith("default via %s dev tr0" % GATEWAY["nat"]),
                  "inside router's default route: %r" % rin_route)
            for i in subs:
                check(ecmp_choice(lab, i) == "nat", "sub%d still routed to box B" % i)
            # B's pool lies in the router's connected 198.18.0.0/24 (which is how the BGP next
            # hops resolve), so the router still reaches B's addresses by ARP once the /31 is
            # withdrawn: the withdrawal alone does not take inbound traffic off box B.
            sent, got, _ = lab.ping(lab.ns("srv"), POOL["nat2"][0], count=2)
            pool_b_reach = "answers %d of %d pings" % (got, sent)
            log("after the withdrawal, box B's %s, from the server: %s (router: %s)" % (
                POOL["nat2"][0], pool_b_reach, lab.run(lab.ns("rout"), [
                    "ip", "-4", "route", "get", POOL["nat2"][0]]).stdout.strip()))

            # After the drain: every subscriber's old UDP socket and a new one.
            after_old, after_new = {}, {}
            for i in subs:
                _, echo = udp_exchange(agents[i], "u", (SERVER, UDP_PORT), "after sub%d" % i)
                after_old[i] = parse_echo(echo)[0]
                agents[i].open("u2")
                _, echo = udp_exchange(agents[i], "u2", (SERVER, UDP_PORT), "new sub%d" % i)
                after_new[i] = parse_echo(echo)[0]
            for i in on["nat"]:
                check(after_old[i] == udp_ep[i],
                      "sub%d (box A): its UDP flow left as %s before the drain, %s after" % (
                          i, udp_ep[i], after_old[i]))
                check(after_new[i][0] == udp_ep[i][0],
                      "sub%d (box A): a new flow left from %s, its flows before from %s" % (
                          i, after_new[i][0], udp_ep[i][0]))
            for i in on["nat2"]:
                check(box_of_address(after_new[i][0]) == "nat",
                      "sub%d (was on box B): a new flow left from %s, not from box A's pool" % (
                          i, after_new[i][0]))
                check(box_of_address(after_old[i][0]) == "nat",
                      "sub%d (was on box B): its old UDP socket now leaves from %s, not from box "
                      "A's pool" % (i, after_old[i][0]))
                check(after_old[i][0] == after_new[i][0],
                      "sub%d on box A: two flows from two addresses %s and %s" % (
                          i, after_old[i], after_new[i]))

            # TCP streams: box A's keep moving both ways; box B's former are watched.
            mid = {i: (progress(tcp_cli[i]), progress(tcp_srv[i])) for i in subs}
            check(wait_until(lambda: all(moving(i, mid[i]) for i in on["nat"]), 10, 0.2),
                  "box A's TCP streams stalled after the drain: %s" % {
                      i: (mid[i], progress(tcp_cli[i]), progress(tcp_srv[i])) for i in on["nat"]})
            wait_left = STALL_WINDOW - (time.monotonic() - t_drain)
            if wait_left > 0:
                time.sleep(wait_left)  # a fixed window in which B's former streams may move
            mid2 = {i: (progress(tcp_cli[i]), progress(tcp_srv[i])) for i in subs}
            time.sleep(STALL_WINDOW)
            end = {i: (progress(tcp_cli[i]), progress(tcp_srv[i])) for i in subs}
            b_seen = {}
            for i in on["nat2"]:
                (c0, _, _), (s0, _, _) = mid2[i]
                (c1, _, ce), (s1, _, se) = end[i]
                down = "moving" if c1 > c0 else "stalled"
                up = "moving" if s1 > s0 else "stalled"
                if ce or se:
                    b_seen[i] = "broken: client %s (received %d B, sent %d B), server %s " \
                        "(received %d B, sent %d B)" % (
                            ce or "running", c1, end[i][0][1], se or "running", s1, end[i][1][1])
                else:
                    b_seen[i] = "download %s (%d B in %.0f s), upload %s (%d B in %.0f s)" % (
                        down, c1 - c0, STALL_WINDOW, up, s1 - s0, STALL_WINDOW)
            stats_a, stats_b = a.ctl.stats(), b.ctl.stats()
            a_sessions_b = {i: a.sessions(sub_addr(i)) for i in on["nat2"]}
            b_sessions_b = {i: b.sessions(sub_addr(i)) for i in on["nat2"]}

            # Box A's streams finish with every byte, on the endpoint they started with.
            for i in on["nat"]:
                tcp_srv[i].stop()
            for i in on["nat"]:
                check_tcp_stream("sub%d's TCP stream (box A)" % i, tcp_cli[i].final(60),
                                 tcp_srv[i].final(60), stream_ep[i])
            timeline.mark("box A's streams complete")
        except BaseException:
            for box in boxes:
                log("---- %s log ----\n%s" % (box.name, box.eph.read_log()))
            raise
        finally:
            for s in streams:
                s.kill()
            for p in procs:
                if p.poll() is None:
                    p.kill()
                    p.wait()
            cleanup_together([box.eph for box in boxes])

    log("---- what each subscriber saw ----")
    for i in subs:
        if landed[i] == "nat":
            log("sub%d on box A: UDP %s:%d before and %s:%d after the drain (a new flow from "
                "%s), TCP stream on %s:%d complete" % (
                    i, udp_ep[i][0], udp_ep[i][1], after_old[i][0], after_old[i][1],
                    after_new[i][0], stream_ep[i][0], stream_ep[i][1]))
        else:
            log("sub%d on box B: UDP %s:%d before the drain, then %s:%d from box A (new "
                "mapping; the old one is gone from the server's view), a new flow from %s; its "
                "TCP stream on %s:%d after the drain: %s; box A lists %d session(s) of it, "
                "box B still %d" % (
                    i, udp_ep[i][0], udp_ep[i][1], after_old[i][0], after_old[i][1],
                    after_new[i][0], stream_ep[i][0], stream_ep[i][1], b_seen[i],
                    len(a_sessions_b[i]), len(b_sessions_b[i])))
            for box, sessions in (("A", a_sessions_b[i]), ("B", b_sessions_b[i])):
                for x in sessions:
                    log("    box %s: %s %s:%d as %s:%d <-> %s:%d %s" % (
                        box, x["proto"], x["inside"][0], x["inside"][1], x["external"][0],
                        x["external"][1], x["remote"][0], x["remote"][1], x["tcp_state"] or ""))
    log("box B's %s after the withdrawal (the router's connected /24 still reaches it): %s" % (
        POOL["nat2"][0], pool_b_reach))
    log("box B's sessions are lost to their subscribers until sessions are handed over on a "
        "drain (docs/ha.md): the expected limit of a drain by routing only")
    for name, stats in (("A", stats_a), ("B", stats_b)):
        log("box %s: %s" % (name, {k: v for k, v in sorted(stats.items())
                                   if isinstance(v, int) and v and (
                                       k.startswith("drop") or k in (
                                           "sessions", "mappings", "sessions_created"))}))


DRAIN_UDP_RATE = 100     # datagrams per second, each subscriber
DRAIN_RUN_S = 3.0        # seconds the flows run before a hand-over, and again after it
MIGRATE_HOOK_TIMEOUT_S = 60  # ha.migrate_hook_timeout of the boxes in the move test
HANDOVER_TIMEOUT = 15.0


def handover_report(box):
    return {k[len("handover_"):] if k.startswith("handover_") else k: v
            for k, v in box.ctl.json("show", "ha").items()
            if k.startswith("handover") or k in ("migrations_out", "ports_forwarded",
                                                 "moved_subscribers")}


def wait_handover(a, b, sender):
    """Waits until `sender`'s hand-over is done (or failed); both boxes' reports."""
    other = a if sender is b else b
    done = wait_until(lambda: (lambda r: r["state"] in ("done", "failed") and r)(
        handover_report(sender)), HANDOVER_TIMEOUT, 0.05)
    check(done and done["state"] == "done", "%s's hand-over: %s; %s: %s" % (
        sender.name, handover_report(sender), other.name, handover_report(other)))
    got = handover_report(other)
    check(got["state"] == "done" and got["direction"] == "in",
          "%s's side of the hand-over: %s" % (other.name, got))
    check(done["refused"] == 0 and done["applied"] == done["records_sent"] and
          got["records_received"] == done["records_sent"],
          "records: sent %d, received %d, applied %d, refused %d" % (
              done["records_sent"], got["records_received"], got["applied"], got["refused"]))
    return done, got


def session_set(box, i):
    return sorted((x["proto"], x["inside"], x["external"], x["remote"])
                  for x in box.sessions(sub_addr(i)))


class LiveFlows:
    """Every subscriber's UDP stream (DRAIN_UDP_RATE datagrams/s to an echo counter) and TCP
    stream (TCP_DOWN_RATE down, TCP_UP_RATE up) through a scale-out lab, and where each one
    landed: its box and its public endpoints."""

    def __init__(self, lab, subs, streams):
        self.lab, self.subs, self.streams = lab, subs, streams
        self.udp_cli, self.tcp_srv, self.tcp_cli = {}, {}, {}
        self.udp_ep, self.tcp_ep, self.landed = {}, {}, {}

    def _stream(self, ns, argv, what):
        s = Stream(self.lab, ns, argv, what)
        self.streams.append(s)
        return s

    def start(self):
        lab = self.lab
        self._stream(lab.ns("srv"), ["udp-echo-counter", "--bind", SERVER, "--port",
                                     str(UDP_PORT)], "UDP echo server")
        for i in self.subs:
            self.udp_cli[i] = self._stream(lab.sub(i), [
                "udp-stream", "--to", SERVER, "--port", str(UDP_PORT), "--rate",
                str(DRAIN_UDP_RATE), "--bind-port", str(60000 + i), "--drain", "3"],
                "UDP stream (sub%d)" % i)
            port = TCP_STREAM_PORT + i
            self.tcp_srv[i] = self._stream(lab.ns("srv"), [
                "tcp-stream-server", "--bind", SERVER, "--port", str(port), "--rate",
                str(TCP_DOWN_RATE), "--timeout", "120"], "TCP stream server :%d" % port)
            self.tcp_cli[i] = self._stream(lab.sub(i), [
                "tcp-stream-client", "--to", SERVER, "--port", str(port), "--upload-rate",
                str(TCP_UP_RATE), "--timeout", "120"], "TCP stream client (sub%d)" % i)
        check(self.all_moving({i: (0, 0, 0) for i in self.subs}, 15),
              "flows not moving both ways: %s" % self.counts())
        time.sleep(DRAIN_RUN_S)

    def counts(self):
        return {i: (self.udp_cli[i].status()["echoed"], progress(self.tcp_cli[i])[0],
                    progress(self.tcp_srv[i])[0]) for i in self.subs}

    def all_moving(self, ref, timeout):
        return wait_until(lambda: all(all(x > y for x, y in zip(now, ref[i]))
                                      for i, now in self.counts().items()), timeout, 0.2)

    def locate(self, boxes):
        """Where each subscriber is: the UDP stream's public endpoint (what the echo server
        saw), the TCP stream's from its box's session list. Returns {node: [subscribers]}."""
        by_node = {box.node: box for box in boxes}
        for i in self.subs:
            ext = list(self.udp_cli[i].status()["externals"])
            check(len(ext) == 1, "sub%d's UDP stream came from %s" % (i, ext))
            self.udp_ep[i] = ext[0]
            self.landed[i] = box_of_address(ext[0].rsplit(":", 1)[0])
            check(self.landed[i] is not None, "sub%d translated to %s, in no pool" % (i, ext))
            box = by_node[self.landed[i]]
            tcp = [x for x in box.sessions(sub_addr(i)) if x["proto"] == "tcp" and
                   x["remote"] == (SERVER, TCP_STREAM_PORT + i)]
            check(len(tcp) == 1, "sub%d: %s lists %s for its TCP stream" % (i, box.name, tcp))
            self.tcp_ep[i] = tcp[0]["external"]
        on = {node: [i for i in self.subs if self.landed[i] == node] for node in BOX}
        check(on["nat"] and on["nat2"], "the source hash put every subscriber on one box: "
              "%s" % on)
        return on

    def finish(self):
        for i in self.subs:
            self.tcp_srv[i].stop()
            self.udp_cli[i].stop()
        self.tcp_final = {i: (self.tcp_cli[i].final(60), self.tcp_srv[i].final(60))
                          for i in self.subs}
        self.udp_final = {i: self.udp_cli[i].final(30) for i in self.subs}

    def check(self, window):
        """Every TCP stream intact both ways on the endpoint it started with; every UDP
        stream on one endpoint, losing datagrams only if sent within `window` (t0, t1)."""
        for i in self.subs:
            check_tcp_stream("sub%d's TCP stream (box %s)" % (i, BOX[self.landed[i]]),
                             *self.tcp_final[i], self.tcp_ep[i])
            u = self.udp_final[i]
            check(list(u["externals"]) == [self.udp_ep[i]],
                  "sub%d's UDP stream: the server saw %s, before the hand-over %s" % (
                      i, list(u["externals"]), self.udp_ep[i]))
            lost = [r for r in u["missing_runs"]
                    if not (window[0] - 0.05 <= r[1] and r[3] <= window[1])]
            check(not lost, "sub%d's UDP stream lost datagrams outside the hand-over "
                  "(%.3f-%.3f): %s" % (i, window[0], window[1], lost))

    def report(self):
        log("---- what each subscriber saw ----")
        for i in self.subs:
            u = self.udp_final[i]
            lost = sum(r[4] for r in u["missing_runs"])
            log("sub%d on box %s: UDP %s throughout, %d of %d datagrams lost (%.0f ms); TCP "
                "stream %s: %d B down, %d B up, intact" % (
                    i, BOX[self.landed[i]], self.udp_ep[i], lost, u["sent"],
                    1000.0 * lost / DRAIN_UDP_RATE, "%s:%d" % tuple(self.tcp_ep[i]),
                    self.tcp_final[i][0]["received"], self.tcp_final[i][1]["received"]))


@contextlib.contextmanager
def boxes_running(boxes, streams, scratch_dir=None):
    """Runs the body; on a failure the boxes' logs are shown; on every exit the streams are
    killed, the boxes stopped and `scratch_dir` removed."""
    try:
        yield
    except BaseException:
        for box in boxes:
            log("---- %s log ----\n%s" % (box.name, box.eph.read_log()))
        raise
    finally:
        for st in streams:
            st.kill()
        cleanup_together([box.eph for box in boxes])
        if scratch_dir:
            shutil.rmtree(scratch_dir, ignore_errors=True)


def new_flow(lab, i):
    """A new UDP flow of subscriber i: the public endpoint the echo server saw."""
    agent = lab.agent(lab.sub(i))
    agent.open("new")
    _, echo = udp_exchange(agent, "new", (SERVER, UDP_PORT), "new sub%d" % i)
    return parse_echo(echo)[0]


def test_scale_drain_hands_sessions_over(binary, ctl_binary):
    """RFC 4787 REQ-1 and RFC 5382 REQ-1 across boxes: box B is drained into box A with its
    sessions (`ephemeractl drain --to A`), while every subscriber runs a UDP stream and a TCP
    stream. Box A takes B's sessions in, then answers for B's pool addresses and inside
    gateway; the routers' next hops lead to A; BGP moves B's prefix to A; B is stopped. Every
    subscriber keeps its public address:port and every byte, and UDP loses only what was sent
    while B was silent."""
    subs = range(1, SUBSCRIBERS + 1)
    boxes, streams = [], []
    with lab_session(SUBSCRIBERS, scale=True) as lab:
        with boxes_running(boxes, streams):
            timeline = Timeline()
            start_boxes(lab, binary, ctl_binary, boxes, timeline, handover=True)
            a, b = boxes
            flows = LiveFlows(lab, subs, streams)
            flows.start()
            timeline.mark("flows open")
            on = flows.locate(boxes)
            b_sessions = {i: session_set(b, i) for i in on["nat2"]}
            log("landed: box A %s; box B %s (%d sessions)" % (
                on["nat"], on["nat2"], sum(len(v) for v in b_sessions.values())))

            # 2. The drain, asked of box B.
            t_drain = time.monotonic()
            log("box B: ephemeractl drain --to %s: %s" % (
                HANDOVER["nat"], b.ctl.change("drain", "--to", HANDOVER["nat"])))
            b_done, a_done = wait_handover(a, b, b)
            t_done = time.monotonic()
            timeline.mark("hand-over done after %.3f s: B %s; A %s" % (t_done - t_drain, b_done,
                                                                       a_done))
            check(b_done["records_sent"] >= sum(len(v) for v in b_sessions.values()),
                  "B sent %d records for %d sessions" % (
                      b_done["records_sent"], sum(len(v) for v in b_sessions.values())))
            for i in on["nat2"]:
                on_a = session_set(a, i)
                check(set(b_sessions[i]) <= set(on_a),
                      "sub%d: box A lists %s, box B had %s" % (i, on_a, b_sessions[i]))
                check(b.sessions(sub_addr(i)) == [], "sub%d: box B still lists %s" % (
                    i, b.sessions(sub_addr(i))))
            log("box A lists every session box B had, on the same public address:port")

            # 3. Routing follows: A announces B's prefix too, B's BGP session goes down, then B
            # itself. Its next hops already lead to A (gratuitous ARP).
            conf = "%s/bird-nat.conf" % bird_dir(lab)
            with open(conf) as f:
                text = f.read()
            with open(conf, "w") as f:
                f.write(text.replace("  route %s blackhole;" % PREFIX["nat"],
                                     "  route %s blackhole;\n  route %s blackhole;" % (
                                         PREFIX["nat"], PREFIX["nat2"])))
            birdc(lab, "nat", "configure")
            birdc(lab, "nat2", "disable", BOX_PROTOCOL)
            check(wait_until(routed_via(lab, "nat2", POOL["nat"][0]), ROUTE_TIMEOUT, 0.1),
                  "router's kernel: %r, not via box A; BIRD: %s" % (
                      kernel_route(lab, PREFIX["nat2"]), birdc(lab, "rout", "show", "route")))
            timeline.mark("router: %s" % kernel_route(lab, PREFIX["nat2"]))
            b.eph.stop()
            timeline.mark("box B stopped")

            ref = flows.counts()
            check(flows.all_moving(ref, 10), "flows stalled after the drain: before %s, now %s"
                  % (ref, flows.counts()))
            time.sleep(DRAIN_RUN_S)
            # A new flow of a drained subscriber: a mapping of box A's own pool.
            new_ep = new_flow(lab, on["nat2"][0])
            flows.finish()
            a_log = a.eph.read_log()

    flows.check((t_drain, t_done))
    check(box_of_address(new_ep[0]) == "nat",
          "sub%d (was on box B): a new flow left from %s, not from box A's pool" % (
              on["nat2"][0], new_ep[0]))
    check("hand-over from" in a_log, "box A's log does not tell of the hand-over")
    flows.report()
    log("box B was silent for %d ms (from its workers falling silent to box A's word); %d "
        "records; a new flow of sub%d left from %s" % (
            b_done["silent_ms"], b_done["records_sent"], on["nat2"][0], new_ep[0]))


def counter(box, name):
    return box.ctl.stats().get(name, 0)


def test_scale_migrate_moves_live_subscribers(binary, ctl_binary):
    """`ephemeractl migrate --subscriber P --to A` on box B moves one of B's subscribers, with
    its sessions, to box A while every subscriber runs a UDP and a TCP stream; B keeps its
    other subscribers. Until the inside router is told, B passes the moved subscriber's frames
    to A; the replies keep coming to B (the public address is shared with B's other
    subscribers), which holds the moved ports and passes the replies to A. Then the inside
    router sends the subscriber to A. Every flow keeps its public address:port and every byte
    (RFC 4787 REQ-1, RFC 5382 REQ-1); UDP loses only what the hand-over held."""
    subs = range(1, SUBSCRIBERS + 1)
    boxes, streams = [], []
    with lab_session(SUBSCRIBERS, scale=True) as lab:
        hook_dir = tempfile.mkdtemp(prefix="ephemera-hook-")
        with boxes_running(boxes, streams, hook_dir):
            # The hook tells the inside router (scripts/lab.sh steer), and leaves a trace.
            hook = os.path.join(hook_dir, "migrate-hook")
            with open(hook, "w") as f:
                # A second before the router is told, so that box B passes frames from the
                # inside meanwhile.
                f.write("#!/bin/sh\nenv | grep ^EPHEMERA_ > %s/ran\nsleep 1\nexec %s steer %s "
                        "\"$EPHEMERA_SUBSCRIBERS\" \"$EPHEMERA_PEER_GATEWAY\"\n" % (
                            hook_dir, LAB_SH, lab.name))
            os.chmod(hook, 0o755)
            timeline = Timeline()
            start_boxes(lab, binary, ctl_binary, boxes, timeline, handover=True,
                        migrate_hook=hook)
            a, b = boxes
            flows = LiveFlows(lab, subs, streams)
            flows.start()
            timeline.mark("flows open")
            on = flows.locate(boxes)
            k = on["nat2"][0]
            moved_prefix = "%s/32" % sub_addr(k)
            before = {i: session_set(b, i) for i in on["nat2"]}
            log("landed: box A %s; box B %s; moving sub%d (%s, %d sessions) to box A" % (
                on["nat"], on["nat2"], k, moved_prefix, len(before[k])))

            # 1. The move, asked of box B.
            t_move = time.monotonic()
            log("box B: ephemeractl migrate --subscriber %s --to %s: %s" % (
                moved_prefix, HANDOVER["nat"], b.ctl.change(
                    "migrate", "--subscriber", moved_prefix, "--to", HANDOVER["nat"])))
            b_done, a_done = wait_handover(a, b, b)
            t_done = time.monotonic()
            timeline.mark("hand-over done after %.3f s: B %s; A %s" % (
                t_done - t_move, b_done, a_done))
            check(b_done["records_sent"] == len(before[k]),
                  "B sent %d records; sub%d had %d sessions (only the moved subscriber's go)" % (
                      b_done["records_sent"], k, len(before[k])))
            check(b_done["migrations_out"] == 1 and b_done["subscribers"] == moved_prefix,
                  "box B's report: %s" % b_done)
            check(set(before[k]) <= set(session_set(a, k)),
                  "sub%d: box A lists %s, box B had %s" % (k, session_set(a, k), before[k]))

            def b_let_go():
                return b.sessions(sub_addr(k)) == [] and handover_report(b)["ports_forwarded"]

            check(wait_until(b_let_go, 5, 0.05),
                  "sub%d: box B still lists %s; holds %s ports" % (
                      k, b.sessions(sub_addr(k)), handover_report(b)["ports_forwarded"]))
            held = handover_report(b)["ports_forwarded"]
            check(held == len({x[2] for x in before[k]}),
                  "box B holds %d ports for sub%d's %d mappings" % (
                      held, k, len({x[2] for x in before[k]})))
            for i in on["nat2"]:
                if i != k:
                    check(session_set(b, i) == before[i], "sub%d (not moved): box B lists %s, "
                          "before %s" % (i, session_set(b, i), before[i]))
            log("box A lists sub%d's sessions on box B's addresses; box B holds %d ports for "
                "them and keeps its other subscribers" % (k, held))

            # 2. Box B ran ha.migrate_hook, which told the inside router: the subscriber's
            # packets go to A. What reached B before, B passed on to A (both ways).
            hook_said = wait_until(lambda: handover_report(b)["hook"],
                                   MIGRATE_HOOK_TIMEOUT_S + 5, 0.05)
            check(hook_said == "exit 0", "ha.migrate_hook on box B: %r" % hook_said)
            log("box B: %s" % next((line for line in b.eph.read_log().splitlines()
                                    if "ha.migrate_hook" in line), "(no line of the hook)"))
            with open(os.path.join(hook_dir, "ran")) as f:
                env = dict(l.strip().split("=", 1) for l in f if "=" in l)
            check(env == {"EPHEMERA_SUBSCRIBERS": moved_prefix, "EPHEMERA_PEER": HANDOVER["nat"],
                          "EPHEMERA_PEER_GATEWAY": GATEWAY["nat"]},
                  "ha.migrate_hook's environment: %s" % env)
            check(ecmp_choice(lab, k) == "nat", "the inside router still sends sub%d to box B"
                  % k)
            timeline.mark("inside router (told by the hook): sub%d via box A" % k)
            check(counter(b, "moved_passed_inside") > 0,
                  "box B passed none of sub%d's frames to box A before the router was told" % k)
            time.sleep(0.5)
            inside1 = counter(b, "moved_passed_inside")
            outside1 = counter(b, "moved_passed_outside")
            ref = flows.counts()
            check(flows.all_moving(ref, 10), "flows stalled after the route change")
            time.sleep(DRAIN_RUN_S)
            inside2 = counter(b, "moved_passed_inside")
            outside2 = counter(b, "moved_passed_outside")
            check(inside2 == inside1, "box B still got sub%d's frames from the inside router "
                  "(%d, then %d)" % (k, inside1, inside2))
            check(outside2 > outside1, "the replies to sub%d's ports no longer pass box B (%d, "
                  "then %d): where do they go?" % (k, outside1, outside2))
            new_ep = new_flow(lab, k)
            flows.finish()
            stats_b = b.ctl.stats()

    flows.check((t_move, t_done))
    for i in subs:
        if i != k:
            check(flows.udp_final[i]["missing_runs"] == [],
                  "sub%d (not moved) lost UDP datagrams: %s" % (
                      i, flows.udp_final[i]["missing_runs"]))
    check(box_of_address(new_ep[0]) == "nat",
          "sub%d (moved): a new flow left from %s, not from box A's pool" % (k, new_ep[0]))
    flows.report()
    log("the move of sub%d took %.3f s (%d sessions); box B passed %d frames from the inside "
        "and %d replies to box A, and holds %d ports; a new flow left from %s" % (
            k, t_done - t_move, b_done["records_sent"], stats_b.get("moved_passed_inside", 0),
            stats_b.get("moved_passed_outside", 0), held, new_ep[0]))

TESTS = {"scale_out_two_boxes_bgp_ecmp": test_scale_out_two_boxes_bgp_ecmp,
         "scale_drain_hands_sessions_over": test_scale_drain_hands_sessions_over,
         "scale_migrate_moves_live_subscribers": test_scale_migrate_moves_live_subscribers}

if __name__ == "__main__":
    missing = [t for t in ("bird", "birdc") if shutil.which(t) is None]
    if missing and len(sys.argv) > 1 and sys.argv[1] in TESTS:
        log("SKIP: %s not found: the scale-out lab needs BIRD 2 (Debian package bird2, "
            "scripts/install-deps.sh installs it)" % " and ".join(missing))
        sys.exit(SKIP)
    sys.exit(main(TESTS, tools=("ephemeractl",)))
