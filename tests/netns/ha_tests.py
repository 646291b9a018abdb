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
import os
import re
import signal
import subprocess
import sys
import time

from nslab import (GATEWAY, POOL, PYTHON, SERVER, Ephemera, check, cleanup_together, lab_session,
                   log, main, sub_addr, udp_exchange, wait_until)
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
# The flows' rates and how long they run around each failover. The test command keeps them
# short; scripts/ha-failover.sh runs the same tests with transfers of a few hundred MB
# (EPHEMERA_HA_TCP_MBPS, EPHEMERA_HA_RUN_S).
TCP_RATE = int(float(os.environ.get("EPHEMERA_HA_TCP_MBPS", "2")) * (1 << 20))  # server -> sub1
TCP3_RATE = TCP_RATE // 2                                                        # server -> sub3
RUN_S = float(os.environ.get("EPHEMERA_HA_RUN_S", "3"))  # flows run before and after each failover
STREAM_TIMEOUT_S = str(int(90 + 4 * RUN_S))
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
        self.ctl = Ctl(ctl_binary, self.eph.prefix, self.eph)
        self.frozen = None

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

    def pid(self):
        """The ephemera process itself (`ip netns exec` execs it: the Popen pid, unless that
        is not the process with this box's file prefix)."""
        check(self.eph.proc is not None, "%s is not running" % self.name)
        pid = self.eph.proc.pid
        try:
            with open("/proc/%d/cmdline" % pid, "rb") as f:
                argv = f.read().decode(errors="replace").split("\0")
        except OSError:
            argv = []
        if "--file-prefix" in argv and argv[argv.index("--file-prefix") + 1] == self.eph.prefix:
            return pid
        cp = subprocess.run(["pgrep", "-f", "--", "--file-prefix %s --" % self.eph.prefix],
                            capture_output=True, text=True)
        pids = [int(p) for p in cp.stdout.split()]
        check(len(pids) == 1, "%s: pgrep finds %s for file prefix %s" % (
            self.name, pids, self.eph.prefix))
        return pids[0]

    def freeze(self):
        """SIGSTOP: the process stops where it is, its sockets open, its rings filling."""
        self.frozen = self.pid()
        os.kill(self.frozen, signal.SIGSTOP)
        log("%s frozen (SIGSTOP to pid %d)" % (self.name, self.frozen))

    def thaw(self):
        os.kill(self.frozen, signal.SIGCONT)
        log("%s thawed (SIGCONT to pid %d)" % (self.name, self.frozen))
        self.frozen = None

    def restart(self):
        """Starts ephemera again, with the same config, after it was killed; its earlier log
        is kept beside the new one."""
        check(self.eph.proc is None, "%s is still running" % self.name)
        os.replace(self.eph.log_path, self.eph.log_path + ".1")
        # It may come back as the standby, which resolves no next hop: the caller reads the
        # role it took.
        self.eph.start(next_hop=False)
        log("%s restarted with role %s configured" % (self.name, self.role))
        return self

    def stop(self):
        if self.eph.proc is not None:
            self.eph.stop(expect_clean=False)

    def thaw_if_frozen(self):
        if self.frozen:
            try:
                self.thaw()
            except OSError:
                pass


def session_key(s):
    """What both boxes must agree on for one session (idle time and worker may differ)."""
    return (s["proto"], s["inside"], s["external"], s["remote"])


def pair(binary, ctl_binary, lab, boxes, a_kw=None, b_kw=None):
    """Box A active and box B standby, started in that order; each appended to `boxes`, the
    caller's list for cleanup, before it starts (a start that fails leaves nothing behind)."""
    a = Box(binary, ctl_binary, lab, "nat", "active", **(a_kw or {}))
    boxes.append(a)
    a.start()
    b = Box(binary, ctl_binary, lab, "nat2", "standby", **(b_kw or {}))
    boxes.append(b)
    b.start()
    return a, b


def cleanup_boxes(boxes):
    for box in boxes:
        box.thaw_if_frozen()
    cleanup_together([box.eph for box in boxes])


def wait_synced_sessions(active, standby, subscribers, timeout):
    """Waits until `standby` lists every session `active` lists for `subscribers`; returns
    the active's."""
    want = {s: active.sessions(s) for s in subscribers}
    last = {}

    def synced():
        last.update({s: standby.sessions(s) for s in subscribers})
        return all(want[s] <= last[s] for s in subscribers)

    check(wait_until(synced, timeout, 0.2),
          "%s does not list the sessions of %s within %.0f s; missing: %s" % (
              standby.name, active.name, timeout,
              {s: sorted(want[s] - last.get(s, set())) for s in subscribers}))
    return want


def neigh_mac(lab, ns, addr):
    """The link-layer address namespace `ns` holds for `addr`, or None."""
    out = lab.run(ns, ["ip", "-j", "neigh", "show", addr], check_rc=True).stdout
    entries = [e for e in json.loads(out or "[]") if "lladdr" in e]
    return entries[0]["lladdr"] if entries else None


def sync_connections(lab, node):
    """The TCP connections box `node` holds on the sync link: "state local peer" each."""
    out = lab.run(lab.ns(node), ["ss", "-Htn", "state", "all"], check_rc=True).stdout
    return [" ".join(l.split()[i] for i in (0, 3, 4)) for l in out.splitlines()
            if ":%d" % SYNC_PORT in l]


def link_tx_bytes(lab, ns, dev):
    out = lab.run(ns, ["ip", "-s", "-j", "link", "show", dev], check_rc=True).stdout
    return json.loads(out)[0]["stats64"]["tx"]["bytes"]


# ----------------------------------------------------------------- long flows and failovers


class LongFlows:
    """The long-lived flows the failover tests carry through the pair (a lab of 3 subscribers):
    a UDP stream from sub2 to an echo server on the server, and a TCP stream each from sub1 and
    sub3 (the server sends, the client uploads). Each must keep its public address:port and
    every byte through the failovers; UDP may lose datagrams only while a takeover is under way.
    """

    TCP = ((1, 7000, TCP_RATE), (3, 7001, TCP3_RATE))   # subscriber, server port, download rate
    UDP_SUB = 2
    SUBS = (1, 2, 3)

    def __init__(self, lab):
        self.lab = lab
        self.streams = []
        self.timeline = Timeline()
        self.tcp_srv, self.tcp_cli = {}, {}
        self.tcp_ext, self.udp_ext = {}, None
        self.counts = {}

    def _stream(self, ns, argv, what):
        s = Stream(self.lab, ns, argv, what)
        self.streams.append(s)
        return s

    def start(self):
        """Starts every flow and waits until each has moved for a while."""
        lab = self.lab
        self.udp_srv = self._stream(lab.ns("srv"), ["udp-echo-counter", "--bind", SERVER,
                                                    "--port", "5000"], "UDP echo server")
        for i, port, rate in self.TCP:
            self.tcp_srv[i] = self._stream(lab.ns("srv"), [
                "tcp-stream-server", "--bind", SERVER, "--port", str(port), "--rate", str(rate),
                "--timeout", STREAM_TIMEOUT_S], "TCP stream server :%d" % port)
            self.tcp_cli[i] = self._stream(lab.sub(i), [
                "tcp-stream-client", "--to", SERVER, "--port", str(port), "--bind-port",
                str(60000 + i), "--upload-rate", str(TCP_UPLOAD_RATE), "--timeout",
                STREAM_TIMEOUT_S],
                "TCP stream client (sub%d)" % i)
        self.udp_cli = self._stream(lab.sub(self.UDP_SUB), [
            "udp-stream", "--to", SERVER, "--port", "5000", "--rate", str(UDP_RATE),
            "--bind-port", str(60000 + self.UDP_SUB), "--drain", "5"],
            "UDP stream (sub%d)" % self.UDP_SUB)
        self.mark("streams started")
        self.flows = {"udp echoed": lambda: self.udp_cli.status()["echoed"],
                      "udp at server": lambda: self.udp_srv.status()["received"]}
        for i in self.tcp_cli:
            self.flows["tcp%d down" % i] = lambda i=i: self.tcp_cli[i].status()["received"]
            self.flows["tcp%d up" % i] = lambda i=i: self.tcp_srv[i].status()["received"]
        self.counts = {k: 0 for k in self.flows}
        self.moving(timeout=10)
        time.sleep(RUN_S)
        self.moving()
        self.retrans_before = {n: tcp_retransmits(lab, n) for n in self.retrans_namespaces()}
        return self

    def start_through(self, active, standby):
        """Waits until `standby` is in sync with `active`, starts the flows through `active`,
        records their public endpoints as it lists them and waits until `standby` lists the
        same sessions."""
        standby.wait_in_sync()
        self.start()
        self.record_externals(active)
        t0 = time.monotonic()
        wait_synced_sessions(active, standby, self.subscribers(),
                             timeout=3 * REFRESH_INTERVAL_S)
        log("%s lists the flows' sessions %.2f s later: %s" % (
            standby.name, time.monotonic() - t0, standby.ha()))
        return self

    def retrans_namespaces(self):
        return [self.lab.ns("srv")] + [self.lab.sub(i) for i, _, _ in self.TCP]

    def subscribers(self):
        return [sub_addr(i) for i in self.SUBS]

    def mark(self, what):
        self.timeline.mark(what)

    def snapshot(self):
        """Takes the flows' counts now as the ones to move past."""
        self.counts = {name: count() for name, count in self.flows.items()}

    def moving(self, timeout=5.0):
        """Waits until every flow moved past the counts last taken; takes the new ones."""
        self.counts = wait_progress(self.flows, self.counts, timeout)

    def record_externals(self, box):
        """The flows' public endpoints, as `box` lists them (one established TCP session per
        TCP stream) and as the echo server sees the UDP stream."""
        for i in self.tcp_cli:
            found = tcp_session_of(box.ctl, sub_addr(i))
            check(len(found) == 1 and found[0]["tcp_state"] == "established",
                  "%s lists %s for %s; expected one established TCP session" % (
                      box.name, found, sub_addr(i)))
            self.tcp_ext[i] = found[0]["external"]
        udp_sources = self.udp_srv.status()["sources"]
        check(len(udp_sources) == 1, "the UDP stream reached the server from %s, expected "
              "one endpoint" % udp_sources)
        self.udp_ext = ep_tuple(next(iter(udp_sources)))
        log("long flows on %s: %s, UDP sub%d as %s" % (
            box.name, ", ".join("TCP sub%d as %s" % (i, ep_text(e))
                                for i, e in sorted(self.tcp_ext.items())),
            self.UDP_SUB, ep_text(self.udp_ext)))
        self.check_listed(box)

    def check_listed(self, box):
        """`box` lists every flow's session on the public endpoint recorded for it."""
        for i, ext in self.tcp_ext.items():
            found = [s for s in box.sessions(sub_addr(i)) if s[0] == "tcp"]
            check([s[2] for s in found] == [tuple(ext)],
                  "%s lists TCP sessions %s for %s; expected one on %s" % (
                      box.name, found, sub_addr(i), ep_text(ext)))
        udp = sub_addr(self.UDP_SUB)
        check(any(s[0] == "udp" and s[2] == self.udp_ext for s in box.sessions(udp)),
              "%s lists no UDP session of %s on %s, where the server sees the stream" % (
                  box.name, udp, ep_text(self.udp_ext)))

    def stop(self):
        """Stops every flow and collects the final reports."""
        self.udp_cli.stop()
        self.udp_c = self.udp_cli.final(timeout=30)
        wait_until(lambda: self.udp_srv.status().get("unique", 0) >= self.udp_c["sent"] -
                   self.udp_c["missing_count"], 5, 0.1)
        self.udp_srv.stop()
        self.udp_s = self.udp_srv.final()
        self.tcp_c, self.tcp_s = {}, {}
        for i in self.tcp_cli:
            self.tcp_srv[i].stop()
        for i in self.tcp_cli:
            self.tcp_c[i] = self.tcp_cli[i].final(timeout=60)
            self.tcp_s[i] = self.tcp_srv[i].final(timeout=60)
        self.mark("streams stopped")
        self.retrans = {n: tcp_retransmits(self.lab, n) - v
                        for n, v in self.retrans_before.items()}

    def kill(self):
        for s in self.streams:
            s.kill()

    def lost_in(self, failover):
        """The runs of lost UDP datagrams sent within the failover's window."""
        return [r for r in self.udp_c["missing_runs"] if failover.holds(r)]

    def report(self, failovers):
        """Logs what the flows went through; returns each failover's UDP outage in ms (from
        the first to the last datagram lost in its window)."""
        for i in self.tcp_cli:
            c, s = self.tcp_c[i], self.tcp_s[i]
            log("TCP sub%d: server sent %d B, client received %d B (longest wait %.3f s); "
                "client sent %d B, server received %d B; server saw %s" % (
                    i, s.get("sent", -1), c.get("received", -1), c.get("max_gap_s", -1),
                    c.get("sent", -1), s.get("received", -1), s.get("peer")))
        log("TCP retransmitted segments: %s" % self.retrans)
        u = self.udp_c
        log("UDP sent %d, echoed %d, %d lost in %d run(s), longest round trip %.0f ms; "
            "externals %s" % (u["sent"], u["echoed"], u["missing_count"],
                              len(u["missing_runs"]), u["max_rtt_ms"], u["externals"]))
        outages = []
        for fo in failovers:
            runs = self.lost_in(fo)
            first = runs[0][1] if runs else None
            last = runs[-1][3] if runs else None
            outage = (last - first) * 1000 if runs else 0.0
            outages.append(outage)
            log("outage %.0f ms (%s): %d UDP datagrams lost, sent from %.3f s to %.3f s after "
                "the %s; %s active after %.3f s, flows moving after %.3f s" % (
                    outage, fo.what, sum(r[4] for r in runs),
                    (first - fo.t_stop) if runs else 0, (last - fo.t_stop) if runs else 0,
                    fo.how, fo.new.name, fo.t_active - fo.t_stop, fo.t_back - fo.t_stop))
        return outages

    def check(self, failovers):
        """Every TCP stream intact both ways on its public endpoint; the UDP stream on one
        public endpoint throughout, its losses all inside the failovers' windows."""
        for i in self.tcp_cli:
            check_tcp_stream("the TCP stream of sub%d" % i, self.tcp_c[i], self.tcp_s[i],
                             self.tcp_ext[i])
        u = self.udp_c
        check(list(self.udp_s["sources"]) == [ep_text(self.udp_ext)],
              "the UDP stream reached the server from %s; before the failover only from %s" % (
                  list(self.udp_s["sources"]), ep_text(self.udp_ext)))
        check(list(u["externals"]) == [ep_text(self.udp_ext)],
              "the echo server reported the UDP stream from %s; expected only %s" % (
                  u["externals"], ep_text(self.udp_ext)))
        check(u["foreign"] == 0 and u["duplicates"] == 0,
              "UDP replies irregular: %s" % {k: u[k] for k in ("foreign", "duplicates")})
        runs = u["missing_runs"]
        check(sum(r[4] for r in runs) == u["missing_count"],
              "the UDP stream lost %d datagrams in more runs than it reports: %s" % (
                  u["missing_count"], runs))
        # Only a detection window may lose datagrams: none sent before the stop (less the one
        # in flight) or later than a second after the survivor said it was active.
        outside = [r for r in runs if not any(fo.holds(r) for fo in failovers)]
        check(not outside, "UDP datagrams lost outside the failovers (%s): runs [first seq, "
              "sent, last seq, sent, count] %s" % (
                  "; ".join("%s at %.3f, %s active at %.3f" % (fo.what, fo.t_stop,
                                                               fo.new.name, fo.t_active)
                            for fo in failovers), outside))


class Failover:
    """One takeover: the active `old` stopped by `how` (SIGKILL or SIGSTOP), the standby `new`
    active in its place."""

    def __init__(self, old, new, how):
        self.old, self.new, self.how = old, new, how
        self.what = "%s %s" % (old.name, "killed" if how == "SIGKILL" else "frozen")

    def holds(self, run):
        """Whether a run of lost datagrams [first seq, sent, last seq, sent, count] was sent
        while datagrams may be lost: from just before the stop (one may be in flight) to a
        second after the survivor said it was active."""
        return run[1] >= self.t_stop - 0.1 and run[3] <= self.t_active + 1.0


def fail_over(flows, old, new, how="SIGKILL"):
    """Stops the active `old` (SIGKILL: as a crash; SIGSTOP: frozen, its sync link open but
    silent), waits until the standby `new` says it is active and every flow moves through it;
    returns the Failover. old_ha is what `old` said just before."""
    fo = Failover(old, new, how)
    fo.old_ha = old.ha()
    flows.mark(fo.what)
    fo.t_stop, fo.wall_stop = time.monotonic(), time.time()
    if how == "SIGKILL":
        # Reaped once the takeover is measured: a killed process may take long to be gone
        # (its sockets and rings released) on a loaded machine, while its traffic stops at once.
        os.kill(old.pid(), signal.SIGKILL)
    else:
        old.freeze()
    fo.ha = new.wait_ha('role "active"', lambda h: h["role"] == "active", TAKEOVER_TIMEOUT)
    fo.t_active = time.monotonic()
    flows.mark("%s active" % new.name)
    fo.detection_ms = fo.ha["last_failover_unix_ms"] - fo.wall_stop * 1000
    log("%s active %.0f ms after the %s (its last_failover_unix_ms: %.0f ms after); %s" % (
        new.name, (fo.t_active - fo.t_stop) * 1000, how, fo.detection_ms, fo.ha))
    check("ha: taking over" in new.eph.read_log(),
          "%s became active without saying 'ha: taking over':\n%s" % (new.name,
                                                                     new.eph.read_log()))
    # What the flows had when the standby took over (the old box's last packets included):
    # from here on, only the new active can move them.
    flows.snapshot()
    flows.moving(timeout=max(0.5, FLOWS_BACK_TIMEOUT - (time.monotonic() - fo.t_stop)))
    fo.t_back = time.monotonic()
    flows.mark("flows moving again")
    if how == "SIGKILL":
        old.eph.kill()
        flows.mark("%s reaped" % old.name)
    time.sleep(RUN_S)
    flows.moving()
    return fo


# ------------------------------------------------------------------- 1. failover under traffic


def sigkill_failover(binary, ctl_binary, box_kw=None, look=lambda box: {}):
    """The pair (both boxes configured with `box_kw`) carrying LongFlows through a SIGKILL of
    the active: the flows, the Failover, and what `look` saw of box A before the kill and of
    box B after the takeover, then box B's HA report, `show ha` and counters."""
    boxes, flows = [], None
    try:
        with lab_session(3, ha=True) as lab:
            a, b = pair(binary, ctl_binary, lab, boxes, box_kw, box_kw)
            flows = LongFlows(lab)
            flows.start_through(a, b)
            seen_a = look(a)
            failover = fail_over(flows, a, b, "SIGKILL")
            seen_b = look(b)
            flows.stop()
            after = {"ha": b.ha(), "shown": b.show_ha(), "stats": b.stats()}
            b.stop()
    finally:
        if flows is not None:
            flows.kill()
        cleanup_boxes(boxes)
    flows.report([failover])
    flows.check([failover])
    return failover, seen_a, seen_b, after


def test_ha_failover_sigkill(binary, ctl_binary):
    _, _, _, after = sigkill_failover(binary, ctl_binary)
    ha_b, shown, stats_b = after["ha"], after["shown"], after["stats"]
    log("box B after the failover: %s; translated in2out %d, out2in %d" % (
        ha_b, stats_b.get("in2out_translated", -1), stats_b.get("out2in_translated", -1)))
    check(ha_b["failovers"] == 1, "box B counts %d failovers, expected 1: %s" % (
        ha_b["failovers"], ha_b))
    check(shown["role"] == "active" and shown["failovers"] == 1,
          "ephemeractl show ha on box B: %s, expected role active and 1 failover" % shown)


BLOCKS = {"sections": {"pool": {"mode": "blocks"}, "pool.blocks": {"block_size": 64}}}


def test_ha_failover_sigkill_blocks(binary, ctl_binary):
    """The failover with port blocks (RFC 6888 section 4): each subscriber's block comes to
    the standby with its sessions (the same address, ports, use, subscriber and worker), and
    every flow keeps its public address:port and every byte."""
    _, blocks_a, blocks_b, after = sigkill_failover(
        binary, ctl_binary, BLOCKS, lambda box: box.ctl.json("show", "blocks"))
    log("blocks on box A before: %s" % blocks_a)
    log("blocks on box B after the takeover: %s" % blocks_b)

    def shape(blocks):  # each block without its age, which went on while it moved
        return sorted(re.sub(r" age=\S+", "", x) for x in blocks)

    check(blocks_a and shape(blocks_b) == shape(blocks_a),
          "box B holds other blocks than box A held: %s, then %s" % (blocks_a, blocks_b))
    check(after["stats"].get("ha_records_refused", 0) == 0,
          "box B refused records: %s" % after["stats"])


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
            a, b = pair(binary, ctl_binary, lab, boxes)
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
            a, b = pair(binary, ctl_binary, lab, boxes)
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
            a, b = pair(binary, ctl_binary, lab, boxes, b_kw={"pool": POOL[:1]})
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


# ------------------------------------------------------------ 5. the returning box fails back


def test_ha_failback_returning_box(binary, ctl_binary):
    boxes, flows = [], None
    try:
        with lab_session(3, ha=True) as lab:
            a, b = pair(binary, ctl_binary, lab, boxes)
            flows = LongFlows(lab)
            flows.start_through(a, b)

            first = fail_over(flows, a, b, "SIGKILL")

            # Box A comes back with its own config (role "active"), finds box B active and
            # pairs with it as its standby instead of taking the traffic back.
            flows.mark("box A restarting")
            t_restart = time.monotonic()
            a.restart()
            ha_a = a.ha()
            check(ha_a["role"] == "standby",
                  "box A came back as %s, expected B's standby: %s\n%s" % (
                      ha_a["role"], ha_a, a.eph.read_log()))
            check("is active already: starting as its standby" in a.eph.read_log(),
                  "box A did not say it starts as B's standby:\n%s" % a.eph.read_log())
            a.wait_in_sync()
            in_sync_s = time.monotonic() - t_restart
            flows.mark("box A in sync")
            want = wait_synced_sessions(b, a, flows.subscribers(),
                                        timeout=3 * REFRESH_INTERVAL_S)
            flows.check_listed(a)
            log("box A, restarted, in sync as B's standby %.2f s after its start and lists the "
                "flows' sessions as B does (%s)" % (in_sync_s, {s: len(v)
                                                                for s, v in want.items()}))
            flows.moving()
            stats_a_standby = a.stats()
            ha_b_paired = b.ha()

            second = fail_over(flows, b, a, "SIGKILL")

            flows.stop()
            ha_a = a.ha()
            stats_a = a.stats()
            a.stop()
    finally:
        if flows is not None:
            flows.kill()
        cleanup_boxes(boxes)

    outages = flows.report([first, second])
    log("box A in sync %.2f s after its restart; outages %.0f ms and %.0f ms" % (
        in_sync_s, outages[0], outages[1]))
    log("box B with A as its standby: %s" % ha_b_paired)
    log("box A at the end: %s; translated in2out %d, out2in %d (as B's standby: %d, %d)" % (
        ha_a, stats_a.get("in2out_translated", -1), stats_a.get("out2in_translated", -1),
        stats_a_standby.get("in2out_translated", -1),
        stats_a_standby.get("out2in_translated", -1)))
    flows.check([first, second])
    check(stats_a_standby["in2out_translated"] == 0 and
          stats_a_standby["out2in_translated"] == 0,
          "box A forwarded as B's standby: in2out_translated %d, out2in_translated %d" % (
              stats_a_standby["in2out_translated"], stats_a_standby["out2in_translated"]))
    check(ha_a["role"] == "active" and ha_a["failovers"] == 1,
          "box A at the end: role %s, %d failovers; expected active and 1: %s" % (
              ha_a["role"], ha_a["failovers"], ha_a))
    ha_b = second.old_ha
    check(ha_b["role"] == "active" and ha_b["failovers"] == 1,
          "box B before its kill: role %s, %d failovers; expected active and 1: %s" % (
              ha_b["role"], ha_b["failovers"], ha_b))


# ------------------------------------------------- 6. a frozen active comes back and yields


STEP_DOWN_TIMEOUT = 5.0   # from SIGCONT until the thawed box is a standby (it probes each second)


def test_ha_frozen_active_steps_down(binary, ctl_binary):
    boxes, flows = [], None
    try:
        with lab_session(3, ha=True) as lab:
            a, b = pair(binary, ctl_binary, lab, boxes)
            mac_a = {dev: lab.mac(lab.ns("nat"), dev) for dev in ("in0", "out0")}
            mac_b = {dev: lab.mac(lab.ns("nat2"), dev) for dev in ("in0", "out0")}
            log("box A in0 %s out0 %s; box B in0 %s out0 %s" % (
                mac_a["in0"], mac_a["out0"], mac_b["in0"], mac_b["out0"]))
            flows = LongFlows(lab)
            flows.start_through(a, b)
            stats_a_frozen = a.stats()

            # SIGSTOP: box A's sync link stays open but silent, so box B must go by the
            # heartbeats (ha.dead_interval), not by a closed socket.
            freeze = fail_over(flows, a, b, "SIGSTOP")

            flows.mark("box A thawed")
            t_cont = time.monotonic()
            a.thaw()
            ha_a = a.wait_ha("role standby", lambda h: h["role"] == "standby",
                             STEP_DOWN_TIMEOUT)
            step_down_s = time.monotonic() - t_cont
            flows.mark("box A standby")
            stats_a_down = a.stats()
            a.wait_in_sync()
            in_sync_s = time.monotonic() - t_cont
            flows.mark("box A in sync")
            wait_synced_sessions(b, a, flows.subscribers(), timeout=3 * REFRESH_INTERVAL_S)
            flows.check_listed(a)
            flows.moving()
            time.sleep(3)
            flows.moving()
            ha_b = b.ha()
            gw = {i: neigh_mac(lab, lab.sub(i), GATEWAY) for i in flows.SUBS}
            pool = {addr: neigh_mac(lab, lab.ns("srv"), addr) for addr in POOL}
            sync_sockets = {box.name: sync_connections(lab, box.node) for box in (a, b)}

            flows.stop()
            ha_a = a.ha()
            stats_a = a.stats()
            log_a = a.eph.read_log()
            log_b = b.eph.read_log()
    finally:
        if flows is not None:
            flows.kill()
        cleanup_boxes(boxes)

    ha_b_taken = freeze.ha
    outages = flows.report([freeze])
    log("box B took over %.0f ms after the SIGSTOP (%s); box A standby %.2f s and in sync "
        "%.2f s after the SIGCONT; outage %.0f ms" % (
            freeze.detection_ms, ha_b_taken["last_failover_reason"], step_down_s, in_sync_s,
            outages[0]))
    forwarded = {k: stats_a_down[k] - stats_a_frozen[k]
                 for k in ("in2out_translated", "out2in_translated")}
    log("box A forwarded %s between the SIGSTOP and its step-down (frames its rings held)" %
        forwarded)
    log("subscribers' gateway entries %s; server's pool entries %s" % (gw, pool))
    log("TCP connections on the sync link: %s" % sync_sockets)
    log("box A at the end: %s; box B: %s" % (ha_a, ha_b))
    lines = [l for l in (log_a + log_b).splitlines() if "ha: " in l]
    log("ha log lines (A then B):\n  %s" % "\n  ".join(lines))

    # The last heartbeat may have left up to a heartbeat interval (dead_interval / 5) before
    # the stop, later than that on a loaded host: half the dead interval is still far from the
    # few ms a closed socket takes, and the reason below names the silence.
    check(DEAD_INTERVAL_MS / 2 <= freeze.detection_ms < 2000,
          "box B took over %.0f ms after box A froze; expected about dead_interval (%d ms), as "
          "heartbeat silence and not a closed socket: %s" % (
              freeze.detection_ms, DEAD_INTERVAL_MS, ha_b_taken))
    check("no word from the active" in ha_b_taken["last_failover_reason"],
          "box B's last_failover_reason %r; expected the heartbeat silence" %
          ha_b_taken["last_failover_reason"])
    check("is active too, since later: stepping down to standby" in log_a,
          "box A did not say it steps down:\n%s" % log_a)
    check(ha_a["role"] == "standby" and ha_a["split_brains"] >= 1,
          "box A at the end: role %s, split_brains %d; expected standby and at least 1: %s" % (
              ha_a["role"], ha_a["split_brains"], ha_a))
    check(ha_b["role"] == "active" and ha_b["failovers"] == 1 and ha_b["in_sync"],
          "box B: role %s, %d failovers, in_sync %s; expected active, 1, true: %s" % (
              ha_b["role"], ha_b["failovers"], ha_b["in_sync"], ha_b))
    flows.check([freeze])
    for key in ("in2out_translated", "out2in_translated"):
        check(stats_a[key] == stats_a_down[key],
              "box A forwarded as a standby: %s %d after its step-down, %d at the end" % (
                  key, stats_a_down[key], stats_a[key]))
    for i, mac in gw.items():
        check(mac == mac_b["in0"], "sub%d holds %s for the gateway %s; box B's in0 is %s "
              "(box A's %s)" % (i, mac, GATEWAY, mac_b["in0"], mac_a["in0"]))
    in_use = {flows.udp_ext[0]} | {ext[0] for ext in flows.tcp_ext.values()}
    for addr in sorted(in_use):
        check(pool.get(addr) == mac_b["out0"], "the server holds %s for pool address %s, "
              "which the flows use; box B's out0 is %s (box A's %s)" % (
                  pool.get(addr), addr, mac_b["out0"], mac_a["out0"]))


TESTS = {name[len("test_"):]: fn for name, fn in globals().items()
         if name.startswith("test_") and callable(fn)}

if __name__ == "__main__":
    sys.exit(main(TESTS, tools=("ephemeractl",)))
