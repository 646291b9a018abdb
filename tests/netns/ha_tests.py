#!/usr/bin/python3
"""An active/standby pair of ephemera boxes (docs/ha.md): box A (<lab>-nat) and box B
(<lab>-nat2) share the subscribers' and the server's networks (scripts/lab.sh up LAB N ha) and
keep their sessions in step over the sync link (sync0, 198.19.255.0/30). The standby forwards
nothing and answers no ARP; when the active falls silent for ha.dead_interval ms, the standby
takes over with the same sessions and announces itself by gratuitous ARP, so TCP and UDP
flows continue on the same public address:port.

    /usr/bin/python3 ha_tests.py TEST_NAME EPHEMERA_BINARY EPHEMERACTL_BINARY

Each test builds its own lab (namespaces n<pid>-*) and removes it on every exit path.
"""

import json
import sys
import time

from nslab import (GATEWAY, POOL, PYTHON, SERVER, Ephemera, check, lab_session, log, main,
                   sub_addr, udp_exchange, wait_until)
from live_tests import (Ctl, Stream, Timeline, check_tcp_stream, ep_text, ep_tuple, live_config,
                        parse_session, tcp_retransmits, wait_progress)
from restart_tests import tcp_session_of

WORKERS = 2
SYNC_IF = "sync0"
SYNC_PORT = 5880
SYNC_ADDR = {"nat": "198.19.255.1", "nat2": "198.19.255.2"}  # scripts/lab.sh LAB_SYNC_A/_B
BOX = {"nat": "A", "nat2": "B"}
DEAD_INTERVAL_MS = 500
REFRESH_INTERVAL_S = 5
# What /ephemera/ha answers (and `ephemeractl --json show ha` prints).
HA_FIELDS = ("role", "peer_connected", "in_sync", "records_sent", "records_received",
             "records_applied", "records_dropped", "sync_bytes_sent", "failovers",
             "last_failover_unix_ms")
IN_SYNC_TIMEOUT = 20.0
TAKEOVER_TIMEOUT = 10.0     # from the kill until the standby says it is active
FLOWS_BACK_TIMEOUT = 15.0   # from the kill until every flow moves again

UDP_RATE = 200              # datagrams per second, sub2 -> server
TCP_RATE = 2 << 20          # bytes per second, server -> sub1
TCP3_RATE = 1 << 20         # bytes per second, server -> sub3
TCP_UPLOAD_RATE = 256 << 10


def ha_config(node, role, **kw):
    """The lab's config for box `node` ("nat": A, "nat2": B) in `role`, with its [ha]."""
    other = "nat2" if node == "nat" else "nat"
    ha = {"role": role,
          "listen": "%s:%d" % (SYNC_ADDR[node], SYNC_PORT),
          "peer": "%s:%d" % (SYNC_ADDR[other], SYNC_PORT),
          "dead_interval": DEAD_INTERVAL_MS,
          "refresh_interval": REFRESH_INTERVAL_S}
    sections = dict(kw.pop("sections", {}))
    sections["ha"] = dict(sections.get("ha", {}), **ha)
    return live_config(sections=sections, **kw)


class Box:
    """One box of the pair: its ephemera, ephemeractl and HA state."""

    def __init__(self, binary, ctl_binary, lab, node, role, **config_kw):
        self.lab = lab
        self.node = node
        self.name = "box %s (%s)" % (BOX[node], lab.ns(node))
        self.role = role
        self.eph = Ephemera(binary, lab, WORKERS, ha_config(node, role, **config_kw), node=node)
        self.ctl = Ctl(ctl_binary, self.eph.prefix)

    def start(self):
        # A standby sends nothing outside, so it cannot have resolved the next hop.
        self.eph.start(next_hop=self.role == "active")
        log("%s started as %s" % (self.name, self.role))
        return self

    def ha(self):
        """/ephemera/ha, every field the tests read present."""
        reply = self.eph.telemetry.query("/ephemera/ha")
        check(isinstance(reply, dict), "%s: /ephemera/ha answered %r, expected a dict with %s" %
              (self.name, reply, ", ".join(HA_FIELDS)))
        missing = [f for f in HA_FIELDS if f not in reply]
        check(not missing, "%s: /ephemera/ha lacks %s: %s" % (self.name, missing, reply))
        return reply

    def show_ha(self):
        """`ephemeractl --json show ha`, which must agree with the telemetry on the role."""
        shown = self.ctl.json("show", "ha")
        check(isinstance(shown, dict) and shown.get("role") in ("active", "standby"),
              "%s: ephemeractl --json show ha printed %r, expected the /ephemera/ha dict" % (
                  self.name, shown))
        return shown

    def wait_ha(self, what, predicate, timeout):
        """Polls /ephemera/ha until predicate(reply) holds; returns the reply."""
        last = {}

        def probe():
            last["ha"] = self.ha()
            return predicate(last["ha"])

        check(wait_until(probe, timeout, 0.02),
              "%s: %s not seen within %.0f s; /ephemera/ha: %s" % (self.name, what, timeout,
                                                                  last.get("ha")))
        return last["ha"]

    def wait_in_sync(self, timeout=IN_SYNC_TIMEOUT):
        t0 = time.monotonic()
        ha = self.wait_ha("in_sync true", lambda h: h["in_sync"] and h["peer_connected"],
                          timeout)
        log("%s in sync after %.2f s: %s" % (self.name, time.monotonic() - t0, ha))
        return ha

    def sessions(self, subscriber):
        return {session_key(parse_session(l))
                for l in self.ctl.sessions("--subscriber", subscriber, "--limit", "512")}

    def stats(self):
        return self.ctl.stats()

    def stop(self):
        if self.eph.proc is not None:
            self.eph.stop(expect_clean=False)

    def cleanup(self):
        self.eph.cleanup()


def session_key(s):
    """What both boxes must agree on for one session (idle time and worker may differ)."""
    return (s["proto"], s["inside"], s["external"], s["remote"])


def pair(binary, ctl_binary, lab, a_kw=None, b_kw=None):
    """Box A active and box B standby, started in that order; both in `boxes` for cleanup."""
    a = Box(binary, ctl_binary, lab, "nat", "active", **(a_kw or {}))
    boxes = [a]
    a.start()
    b = Box(binary, ctl_binary, lab, "nat2", "standby", **(b_kw or {}))
    boxes.append(b)
    b.start()
    return a, b, boxes


def cleanup_boxes(boxes):
    for box in boxes:
        box.cleanup()


def wait_synced_sessions(a, b, subscribers, timeout):
    """Waits until box B lists every session box A lists for `subscribers`; returns A's."""
    want = {s: a.sessions(s) for s in subscribers}
    last = {}

    def synced():
        last.update({s: b.sessions(s) for s in subscribers})
        return all(want[s] <= last[s] for s in subscribers)

    check(wait_until(synced, timeout, 0.2),
          "%s does not list box A's sessions within %.0f s; missing: %s" % (
              b.name, timeout, {s: sorted(want[s] - last.get(s, set())) for s in subscribers}))
    return want


def neigh_mac(lab, ns, addr):
    """The link-layer address namespace `ns` holds for `addr`, or None."""
    out = lab.run(ns, ["ip", "-j", "neigh", "show", addr], check_rc=True).stdout
    entries = [e for e in json.loads(out or "[]") if "lladdr" in e]
    return entries[0]["lladdr"] if entries else None


def link_tx_bytes(lab, ns, dev):
    out = lab.run(ns, ["ip", "-s", "-j", "link", "show", dev], check_rc=True).stdout
    return json.loads(out)[0]["stats64"]["tx"]["bytes"]


# ------------------------------------------------------------------- 1. failover under traffic


def test_ha_failover_sigkill(binary, ctl_binary):
    boxes, streams = [], []
    try:
        with lab_session(3, ha=True) as lab:
            a, b, boxes = pair(binary, ctl_binary, lab)
            b.wait_in_sync()

            udp_srv = Stream(lab, lab.ns("srv"), ["udp-echo-counter", "--bind", SERVER,
                                                  "--port", "5000"], "UDP echo server")
            streams.append(udp_srv)
            tcp_srv = {}
            tcp_cli = {}
            for i, port, rate in ((1, 7000, TCP_RATE), (3, 7001, TCP3_RATE)):
                tcp_srv[i] = Stream(lab, lab.ns("srv"), [
                    "tcp-stream-server", "--bind", SERVER, "--port", str(port), "--rate",
                    str(rate), "--timeout", "90"], "TCP stream server :%d" % port)
                streams.append(tcp_srv[i])
                tcp_cli[i] = Stream(lab, lab.sub(i), [
                    "tcp-stream-client", "--to", SERVER, "--port", str(port), "--bind-port",
                    str(60000 + i), "--upload-rate", str(TCP_UPLOAD_RATE), "--timeout", "90"],
                    "TCP stream client (sub%d)" % i)
                streams.append(tcp_cli[i])
            udp_cli = Stream(lab, lab.sub(2), ["udp-stream", "--to", SERVER, "--port", "5000",
                                               "--rate", str(UDP_RATE), "--bind-port", "60002",
                                               "--drain", "5"], "UDP stream (sub2)")
            streams.append(udp_cli)
            timeline = Timeline()
            timeline.mark("streams started")
            flows = {"udp echoed": lambda: udp_cli.status()["echoed"],
                     "udp at server": lambda: udp_srv.status()["received"]}
            for i in tcp_cli:
                flows["tcp%d down" % i] = lambda i=i: tcp_cli[i].status()["received"]
                flows["tcp%d up" % i] = lambda i=i: tcp_srv[i].status()["received"]
            counts = wait_progress(flows, {k: 0 for k in flows}, timeout=10)
            time.sleep(2)
            counts = wait_progress(flows, counts)

            tcp_ext = {}
            for i in tcp_cli:
                found = tcp_session_of(a.ctl, sub_addr(i))
                check(len(found) == 1 and found[0]["tcp_state"] == "established",
                      "box A lists %s for %s; expected one established TCP session" % (
                          found, sub_addr(i)))
                tcp_ext[i] = found[0]["external"]
            udp_sources = udp_srv.status()["sources"]
            check(len(udp_sources) == 1, "the UDP stream reached the server from %s, expected "
                  "one endpoint" % udp_sources)
            udp_ext = ep_tuple(next(iter(udp_sources)))
            log("long flows on box A: TCP sub1 as %s, TCP sub3 as %s, UDP sub2 as %s" % (
                ep_text(tcp_ext[1]), ep_text(tcp_ext[3]), ep_text(udp_ext)))
            check(any(s[0] == "udp" and s[2] == udp_ext for s in a.sessions(sub_addr(2))),
                  "box A lists no UDP session of %s on %s, where the server sees the stream" % (
                      sub_addr(2), ep_text(udp_ext)))
            t0 = time.monotonic()
            wait_synced_sessions(a, b, [sub_addr(i) for i in (1, 2, 3)],
                                 timeout=3 * REFRESH_INTERVAL_S)
            log("box B lists the flows' sessions %.2f s later; B: %s" % (
                time.monotonic() - t0, b.ha()))
            retrans_before = {n: tcp_retransmits(lab, n)
                              for n in (lab.ns("srv"), lab.sub(1), lab.sub(3))}

            timeline.mark("box A killed")
            t_kill, wall_kill = time.monotonic(), time.time()
            a.eph.kill()
            ha = b.wait_ha('role "active"', lambda h: h["role"] == "active", TAKEOVER_TIMEOUT)
            t_active = time.monotonic()
            timeline.mark("box B active")
            takeover_ms = ha["last_failover_unix_ms"] - wall_kill * 1000
            log("box B active %.0f ms after the kill (its last_failover_unix_ms: %.0f ms after); "
                "%s" % ((t_active - t_kill) * 1000, takeover_ms, ha))
            check("ha: taking over" in b.eph.read_log(),
                  "box B became active without saying 'ha: taking over':\n%s" %
                  b.eph.read_log())

            # What the flows had when box B took over (box A's last packets included): from
            # here on, only box B can move them.
            counts = {name: count() for name, count in flows.items()}
            counts = wait_progress(flows, counts,
                                   timeout=max(0.5, FLOWS_BACK_TIMEOUT - (time.monotonic() -
                                                                          t_kill)))
            t_back = time.monotonic()
            timeline.mark("flows moving again")
            time.sleep(3)
            counts = wait_progress(flows, counts)

            udp_cli.stop()
            udp_c = udp_cli.final(timeout=30)
            wait_until(lambda: udp_srv.status().get("unique", 0) >= udp_c["sent"] -
                       udp_c["missing_count"], 5, 0.1)
            udp_srv.stop()
            udp_s = udp_srv.final()
            tcp_c, tcp_s = {}, {}
            for i in tcp_cli:
                tcp_srv[i].stop()
            for i in tcp_cli:
                tcp_c[i] = tcp_cli[i].final(timeout=60)
                tcp_s[i] = tcp_srv[i].final(timeout=60)
            timeline.mark("streams stopped")
            retrans = {n: tcp_retransmits(lab, n) - v for n, v in retrans_before.items()}
            ha_b = b.ha()
            shown = b.show_ha()
            stats_b = b.stats()
            b.stop()
    finally:
        for s in streams:
            s.kill()
        cleanup_boxes(boxes)

    for i in tcp_cli:
        log("TCP sub%d: server sent %d B, client received %d B (longest wait %.3f s); client "
            "sent %d B, server received %d B; server saw %s" % (
                i, tcp_s[i].get("sent", -1), tcp_c[i].get("received", -1),
                tcp_c[i].get("max_gap_s", -1), tcp_c[i].get("sent", -1),
                tcp_s[i].get("received", -1), tcp_s[i].get("peer")))
    log("TCP retransmitted segments: %s" % retrans)
    first, last = udp_c["missing_first"], udp_c["missing_last"]
    outage = (last - first) * 1000 if udp_c["missing_count"] else 0.0
    log("outage %.0f ms: UDP sent %d, echoed %d, %d lost, sent from %.3f s to %.3f s after the "
        "kill; box B active after %.3f s, flows moving after %.3f s; externals %s" % (
            outage, udp_c["sent"], udp_c["echoed"], udp_c["missing_count"],
            (first - t_kill) if first else 0, (last - t_kill) if last else 0,
            t_active - t_kill, t_back - t_kill, udp_c["externals"]))
    log("box B after the failover: %s; translated in2out %d, out2in %d" % (
        ha_b, stats_b.get("in2out_translated", -1), stats_b.get("out2in_translated", -1)))

    for i in tcp_cli:
        check_tcp_stream("the TCP stream of sub%d" % i, tcp_c[i], tcp_s[i], tcp_ext[i])
    check(list(udp_s["sources"]) == [ep_text(udp_ext)],
          "the UDP stream reached the server from %s; before the failover only from %s" % (
              list(udp_s["sources"]), ep_text(udp_ext)))
    check(udp_c["foreign"] == 0 and udp_c["duplicates"] == 0,
          "UDP replies irregular: %s" % {k: udp_c[k] for k in ("foreign", "duplicates")})
    # Only the detection window may lose datagrams: none sent before the kill (less the one in
    # flight) or later than a second after box B said it was active.
    check(udp_c["missing_count"] == 0 or (first >= t_kill - 0.1 and last <= t_active + 1.0),
          "UDP datagrams lost outside the failover (kill at %.3f, B active at %.3f): %d lost, "
          "sent from %.3f to %.3f" % (t_kill, t_active, udp_c["missing_count"], first, last))
    check(ha_b["failovers"] == 1, "box B counts %d failovers, expected 1: %s" % (
        ha_b["failovers"], ha_b))
    check(shown["role"] == "active" and shown["failovers"] == 1,
          "ephemeractl show ha on box B: %s, expected role active and 1 failover" % shown)


# ------------------------------------------------------------- 2. what the sync link carries

SESSIONS = 1000
SYNC_SUBSCRIBERS = 8   # SESSIONS / SYNC_SUBSCRIBERS flows each: one telemetry reply (16 KiB) lists them all
FIRST_PORT = 20000

# One datagram from each of N source ports to the echo server, then the echoes: N new UDP
# mappings and sessions. Prints the number of echoes.
_OPEN_FLOWS = r"""
import resource, select, socket, sys, time
n, server, port, first = int(sys.argv[1]), sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, min(hard, n + 64)), hard))
socks = []
for i in range(n):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind(("0.0.0.0", first + i))
    s.setblocking(False)
    s.sendto(b"open %d" % i, (server, port))
    socks.append(s)
    if i % 50 == 49:
        time.sleep(0.01)
echoed, deadline = set(), time.monotonic() + 10
poll = select.poll()
for s in socks:
    poll.register(s, select.POLLIN)
by_fd = {s.fileno(): s for s in socks}
while len(echoed) < n and time.monotonic() < deadline:
    for fd, _ in poll.poll(200):
        by_fd[fd].recv(2048)
        echoed.add(fd)
        poll.unregister(fd)
print(len(echoed), flush=True)
"""


def open_flows(lab, node_ns, n, first_port, to=(SERVER, 5000)):
    cp = lab.run(node_ns, [PYTHON, "-c", _OPEN_FLOWS, str(n), to[0], str(to[1]),
                           str(first_port)], timeout=60, check_rc=True)
    return int(cp.stdout.strip())


def test_ha_sync_traffic_per_1000_sessions(binary, ctl_binary):
    boxes = []
    per_sub = SESSIONS // SYNC_SUBSCRIBERS
    subs = [sub_addr(i) for i in range(1, SYNC_SUBSCRIBERS + 1)]
    try:
        with lab_session(SYNC_SUBSCRIBERS, ha=True) as lab:
            a, b, boxes = pair(binary, ctl_binary, lab)
            b.wait_in_sync()
            srv = lab.agent(lab.ns("srv"))
            srv.open("s", SERVER, 5000)
            srv.serve_echo("s")
            time.sleep(1)  # past any bulk sync or heartbeat burst of the connection
            ha_a0, ha_b0 = a.ha(), b.ha()
            tx0 = link_tx_bytes(lab, lab.ns("nat"), SYNC_IF)
            live_a0 = a.stats()["live_sessions"]
            t0 = time.monotonic()
            for i in range(1, SYNC_SUBSCRIBERS + 1):
                got = open_flows(lab, lab.sub(i), per_sub, FIRST_PORT)
                check(got == per_sub, "sub%d: %d of %d flows echoed through box A" % (
                    i, got, per_sub))
            opened = time.monotonic()
            ha_b1 = b.wait_ha("records_applied grown by %d" % SESSIONS,
                              lambda h: h["records_applied"] - ha_b0["records_applied"] >=
                              SESSIONS, 30)
            applied = time.monotonic()
            ha_a1 = a.ha()
            tx1 = link_tx_bytes(lab, lab.ns("nat"), SYNC_IF)
            live_a1 = a.stats()["live_sessions"]
            live_b1 = b.stats()["live_sessions"]
            sessions_a = {s: a.sessions(s) for s in subs}
            sessions_b = {s: b.sessions(s) for s in subs}
    finally:
        cleanup_boxes(boxes)

    new = live_a1 - live_a0
    sync_bytes = ha_a1["sync_bytes_sent"] - ha_a0["sync_bytes_sent"]
    link_bytes = tx1 - tx0
    log("%d new sessions on box A in %.2f s, applied on box B %.2f s later: records sent %d, "
        "received %d, applied %d, dropped %d" % (
            new, opened - t0, applied - opened,
            ha_a1["records_sent"] - ha_a0["records_sent"],
            ha_b1["records_received"] - ha_b0["records_received"],
            ha_b1["records_applied"] - ha_b0["records_applied"],
            ha_b1["records_dropped"] - ha_b0["records_dropped"]))
    log("sync traffic per 1000 new sessions: %.0f B of sync_bytes_sent, %.0f B on %s "
        "(frames and headers included)" % (sync_bytes * 1000.0 / max(new, 1),
                                            link_bytes * 1000.0 / max(new, 1), SYNC_IF))
    check(new >= SESSIONS, "box A counts %d new live sessions, the subscribers opened %d" % (
        new, SESSIONS))
    check(sync_bytes > 0 and link_bytes >= sync_bytes,
          "sync_bytes_sent grew by %d and %s sent %d B; expected the link to carry at least "
          "what box A counts" % (sync_bytes, SYNC_IF, link_bytes))
    for s in subs:
        check(len(sessions_a[s]) == per_sub and sessions_b[s] == sessions_a[s],
              "%s: box A lists %d sessions, box B %d; %d of A's missing on B, %d on B unknown "
              "to A" % (s, len(sessions_a[s]), len(sessions_b[s]),
                        len(sessions_a[s] - sessions_b[s]), len(sessions_b[s] - sessions_a[s])))
    check(live_b1 == live_a1, "live_sessions: box A %d, box B %d" % (live_a1, live_b1))


# ------------------------------------------------------------------ 3. the standby keeps quiet


def test_ha_standby_is_silent(binary, ctl_binary):
    boxes, streams = [], []
    subs = (1, 2)
    try:
        with lab_session(len(subs), ha=True) as lab:
            a, b, boxes = pair(binary, ctl_binary, lab)
            b.wait_in_sync()
            mac_a = {dev: lab.mac(lab.ns("nat"), dev) for dev in ("in0", "out0")}
            mac_b = {dev: lab.mac(lab.ns("nat2"), dev) for dev in ("in0", "out0")}
            log("box A in0 %s out0 %s; box B in0 %s out0 %s" % (
                mac_a["in0"], mac_a["out0"], mac_b["in0"], mac_b["out0"]))
            # Every neighbour entry is learnt anew while both boxes are up.
            for ns in [lab.sub(i) for i in subs] + [lab.ns("srv")]:
                lab.run(ns, ["ip", "neigh", "flush", "all"], check_rc=True)

            udp_srv = Stream(lab, lab.ns("srv"), ["udp-echo-counter", "--bind", SERVER,
                                                  "--port", "5000"], "UDP echo server")
            streams.append(udp_srv)
            udp_cli = Stream(lab, lab.sub(1), ["udp-stream", "--to", SERVER, "--port", "5000",
                                               "--rate", str(UDP_RATE), "--bind-port", "60001",
                                               "--drain", "3"], "UDP stream (sub1)")
            streams.append(udp_cli)
            echo = lab.agent(lab.ns("srv"))
            echo.open("e", SERVER, 5001)
            echo.serve_echo("e")
            cli = lab.agent(lab.sub(2))
            cli.open("u", port=40000)
            udp_exchange(cli, "u", (SERVER, 5001), "through A")
            # The server asks for both pool addresses (a datagram to each, which no mapping
            # takes): whoever answers ARP for them is in its cache.
            for addr in POOL:
                echo.send("e", (addr, 9), "who has %s" % addr)
            flows = {"udp echoed": lambda: udp_cli.status()["echoed"]}
            counts = wait_progress(flows, {"udp echoed": 0}, timeout=10)
            time.sleep(3)
            wait_progress(flows, counts)
            stats_a, stats_b = a.stats(), b.stats()
            ha_a, ha_b = a.ha(), b.ha()
            gw = {i: neigh_mac(lab, lab.sub(i), GATEWAY) for i in subs}
            pool = {addr: neigh_mac(lab, lab.ns("srv"), addr) for addr in POOL}
            udp_cli.stop()
            udp_c = udp_cli.final()
    finally:
        for s in streams:
            s.kill()
        cleanup_boxes(boxes)

    log("box A translated in2out %d, out2in %d; box B in2out %d, out2in %d" % (
        stats_a["in2out_translated"], stats_a["out2in_translated"],
        stats_b["in2out_translated"], stats_b["out2in_translated"]))
    log("roles: A %s, B %s; subscribers' gateway entries %s; server's pool entries %s" % (
        ha_a["role"], ha_b["role"], gw, pool))
    check(ha_a["role"] == "active" and ha_b["role"] == "standby",
          "roles: box A %s, box B %s; expected active and standby" % (ha_a["role"],
                                                                     ha_b["role"]))
    check(udp_c["echoed"] > 0 and stats_a["in2out_translated"] > 0,
          "no traffic through box A: %d echoes, in2out_translated %d" % (
              udp_c["echoed"], stats_a["in2out_translated"]))
    check(stats_b["in2out_translated"] == 0 and stats_b["out2in_translated"] == 0,
          "the standby forwarded: in2out_translated %d, out2in_translated %d, expected 0" % (
              stats_b["in2out_translated"], stats_b["out2in_translated"]))
    for i, mac in gw.items():
        check(mac == mac_a["in0"], "sub%d holds %s for the gateway %s; box A's in0 is %s "
              "(box B's %s)" % (i, mac, GATEWAY, mac_a["in0"], mac_b["in0"]))
    for addr, mac in pool.items():
        check(mac == mac_a["out0"], "the server holds %s for pool address %s; box A's out0 "
              "is %s (box B's %s)" % (mac, addr, mac_a["out0"], mac_b["out0"]))


# ---------------------------------------------------------- 4. peers that cannot be in step


def test_ha_peers_disagree_on_pool(binary, ctl_binary):
    boxes = []
    try:
        with lab_session(1, ha=True) as lab:
            a, b, boxes = pair(binary, ctl_binary, lab, b_kw={"pool": POOL[:1]})
            srv = lab.agent(lab.ns("srv"))
            srv.open("s", SERVER, 5000)
            srv.serve_echo("s")
            cli = lab.agent(lab.sub(1))
            cli.open("u", port=40000)
            ha_b = b.wait_ha("a refusal", lambda h: h.get("refused"), IN_SYNC_TIMEOUT)
            refused = ha_b["refused"]
            log("box B refuses box A: %r; %s" % (refused, ha_b))
            time.sleep(2)  # box B must stay out of step, not come round
            ha_b = b.ha()
            ha_a = a.ha()
            for n in range(5):
                udp_exchange(cli, "u", (SERVER, 5000), "through A %d" % n)
            stats_b = b.stats()
    finally:
        cleanup_boxes(boxes)

    log("box A: %s; box B: %s" % (ha_a, ha_b))
    check(isinstance(refused, str) and "pool" in refused.lower(),
          "box B's refusal %r does not name the pool, which differs (A %s, B %s)" % (
              refused, POOL, POOL[:1]))
    check(not ha_b["in_sync"], "box B says it is in sync with a peer whose pool differs: %s" %
          ha_b)
    check(ha_b["role"] == "standby" and ha_a["role"] == "active",
          "roles: box A %s, box B %s; expected active and standby" % (ha_a["role"],
                                                                     ha_b["role"]))
    check(ha_b["records_applied"] == 0,
          "box B applied %d records from a peer it refused" % ha_b["records_applied"])
    check(stats_b["in2out_translated"] == 0 and stats_b["out2in_translated"] == 0,
          "box B forwarded while refusing its peer: in2out %d, out2in %d" % (
              stats_b["in2out_translated"], stats_b["out2in_translated"]))


TESTS = {name[len("test_"):]: fn for name, fn in globals().items()
         if name.startswith("test_") and callable(fn)}

if __name__ == "__main__":
    sys.exit(main(TESTS, tools=("ephemeractl",)))
