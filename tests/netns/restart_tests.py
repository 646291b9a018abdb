#!/usr/bin/python3
"""ephemera restarted without losing sessions (docs/ha.md, "Restart without loss"): with
ha.state_file set, a stopped ephemera writes its sessions and the next one takes them up, so a
TCP transfer and a UDP stream pass through the restart with the same public address:port.

    /usr/bin/python3 restart_tests.py TEST_NAME EPHEMERA_BINARY EPHEMERACTL_BINARY

Each test builds its own lab (namespaces n<pid>-*) and removes it on every exit path.
"""

import os
import re
import shutil
import sys
import tempfile
import time

from nslab import (SERVER, Ephemera, check, lab_session, log, main, sub_addr, udp_exchange,
                   wait_until)
from live_tests import (Ctl, Stream, Timeline, check_tcp_stream, ep_text, ep_tuple, live_config,
                        parse_session, tcp_retransmits, wait_progress)

WORKERS = 2
UDP_RATE = 200           # datagrams per second, sub2 -> server
TCP_RATE = 2 << 20       # bytes per second, server -> sub1
TCP_UPLOAD_RATE = 256 << 10
# How long after the old process stops a datagram may still be lost: the new one is ready
# (ports up, next hop resolved) by then; the test measures the real outage and reports it.
OUTAGE_LIMIT_S = 10.0


def state_config(state_file, **kw):
    return live_config(**kw) + '\n[ha]\nstate_file = "%s"\n' % state_file


def restarted(binary, lab, config):
    """A second ephemera on the same lab and file prefix, started once the first is gone."""
    eph = Ephemera(binary, lab, WORKERS, config)
    eph.start()
    return eph


def saved_count(output):
    m = re.search(r"saved (\d+) sessions to ", output)
    check(m is not None, "the stopped ephemera did not report saving its sessions:\n%s" % output)
    return int(m.group(1))


def restored_line(eph):
    m = re.search(r"ephemera: (restored (\d+) of (\d+) sessions[^\n]*)", eph.read_log())
    check(m is not None, "the new ephemera did not report restoring sessions:\n%s" %
          eph.read_log())
    return m.group(1), int(m.group(2)), int(m.group(3))


def tcp_session_of(ctl, subscriber):
    sessions = [parse_session(l) for l in ctl.sessions("--subscriber", subscriber)]
    return [s for s in sessions if s["proto"] == "tcp"]


# ------------------------------------------------------------------------ 1. restart under load


def test_restart_keeps_sessions(binary, ctl_binary):
    state_dir = tempfile.mkdtemp(prefix="ephemera-state-")
    state_file = os.path.join(state_dir, "sessions.state")
    config = state_config(state_file)
    first = second = None
    streams = []
    try:
        with lab_session(2) as lab:
            first = Ephemera(binary, lab, WORKERS, config)
            first.start()
            check("no saved sessions in %s" % state_file in first.read_log(),
                  "a first start should find no saved sessions:\n%s" % first.read_log())
            ctl = Ctl(ctl_binary, first.prefix, first)
            udp_srv = Stream(lab, lab.ns("srv"), ["udp-echo-counter", "--bind", SERVER,
                                                  "--port", "5000"], "UDP echo server")
            streams.append(udp_srv)
            tcp_srv = Stream(lab, lab.ns("srv"), ["tcp-stream-server", "--bind", SERVER,
                                                  "--port", "7000", "--rate", str(TCP_RATE),
                                                  "--timeout", "60"], "TCP stream server")
            streams.append(tcp_srv)
            tcp_cli = Stream(lab, lab.sub(1), ["tcp-stream-client", "--to", SERVER, "--port",
                                               "7000", "--bind-port", "60001", "--upload-rate",
                                               str(TCP_UPLOAD_RATE), "--timeout", "60"],
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
            time.sleep(2)
            counts = wait_progress(flows, counts)

            tcp_before = tcp_session_of(ctl, sub_addr(1))
            check(len(tcp_before) == 1 and tcp_before[0]["tcp_state"] == "established",
                  "sessions --subscriber %s lists %s, expected one established TCP session" % (
                      sub_addr(1), tcp_before))
            tcp_ext = tcp_before[0]["external"]
            udp_sources = udp_srv.status()["sources"]
            check(len(udp_sources) == 1, "the UDP stream reached the server from %s" %
                  udp_sources)
            udp_ext = ep_tuple(next(iter(udp_sources)))
            log("long flows: TCP %s:60001 as %s, UDP %s:60002 as %s" % (
                sub_addr(1), ep_text(tcp_ext), sub_addr(2), ep_text(udp_ext)))
            retrans_before = {n: tcp_retransmits(lab, n) for n in (lab.ns("srv"), lab.sub(1))}

            timeline.mark("ephemera stopping")
            t_down = time.monotonic()
            first.stop()
            saved = saved_count(first.output)
            check(os.path.exists(state_file), "no state file %s after the stop" % state_file)
            log("the stopped ephemera saved %d sessions (%d bytes)" % (
                saved, os.path.getsize(state_file)))
            check(saved >= 2, "saved %d sessions; the TCP and UDP streams are two" % saved)
            first.cleanup()
            first = None

            second = restarted(binary, lab, config)
            t_up = time.monotonic()
            timeline.mark("new ephemera ready")
            line, restored, offered = restored_line(second)
            log(line)
            check(restored == offered == saved,
                  "restored %d of %d sessions; %d were saved" % (restored, offered, saved))
            check(not os.path.exists(state_file) and os.path.exists(state_file + ".restored"),
                  "the state file was not set aside after the restore: %s" %
                  os.listdir(state_dir))
            ctl = Ctl(ctl_binary, second.prefix, second)
            tcp_after = tcp_session_of(ctl, sub_addr(1))
            check(len(tcp_after) == 1 and tcp_after[0]["external"] == tcp_ext and
                  tcp_after[0]["tcp_state"] == "established",
                  "after the restart the TCP session is %s; it was %s" % (tcp_after, tcp_before))

            counts = wait_progress(flows, counts, timeout=30)
            timeline.mark("flows moving again")
            time.sleep(3)
            counts = wait_progress(flows, counts)

            udp_cli.stop()
            udp_c = udp_cli.final(timeout=30)
            wait_until(lambda: udp_srv.status().get("unique", 0) >= udp_c["sent"] -
                       udp_c["missing_count"], 5, 0.1)
            udp_srv.stop()
            udp_s = udp_srv.final()
            tcp_srv.stop()
            tcp_c = tcp_cli.final(timeout=60)
            tcp_s = tcp_srv.final(timeout=60)
            timeline.mark("streams stopped")
            retrans = {n: tcp_retransmits(lab, n) - v for n, v in retrans_before.items()}
            after = ctl.stats()
            second.stop()
            second.cleanup()
            second = None
    finally:
        for s in streams:
            s.kill()
        for eph in (first, second):
            if eph is not None:
                eph.cleanup()
        shutil.rmtree(state_dir, ignore_errors=True)

    log("TCP: server sent %d B, client received %d B (longest wait %.3f s); client sent %d B, "
        "server received %d B; server saw %s; retransmitted segments: server %d, client %d" % (
            tcp_s.get("sent", -1), tcp_c.get("received", -1), tcp_c.get("max_gap_s", -1),
            tcp_c.get("sent", -1), tcp_s.get("received", -1), tcp_s.get("peer"),
            retrans[lab.ns("srv")], retrans[lab.sub(1)]))
    lost = [t for _, t in udp_c["missing"]]
    outage = (max(lost) - min(lost)) * 1000 if lost else 0.0
    log("UDP: sent %d, echoed %d, %d lost over %.0f ms, from %.3f s to %.3f s after the stop "
        "(ready again after %.3f s); externals %s" % (
            udp_c["sent"], udp_c["echoed"], udp_c["missing_count"], outage,
            (min(lost) - t_down) if lost else 0, (max(lost) - t_down) if lost else 0,
            t_up - t_down, udp_c["externals"]))

    check_tcp_stream("the TCP stream", tcp_c, tcp_s, tcp_ext)
    check(list(udp_s["sources"]) == [ep_text(udp_ext)],
          "the UDP stream reached the server from %s; before the restart from %s" % (
              list(udp_s["sources"]), ep_text(udp_ext)))
    check(udp_c["foreign"] == 0 and udp_c["duplicates"] == 0,
          "UDP replies irregular: %s" % {k: udp_c[k] for k in ("foreign", "duplicates")})
    # Only the restart's window may lose datagrams: none sent before the stop (less the one in
    # flight) or after the new process was ready (plus its first housekeeping).
    early = [t for t in lost if t < t_down - 0.1]
    late = [t for t in lost if t > t_up + 1.0]
    check(not early and not late,
          "datagrams lost outside the restart (stop at %.3f, ready at %.3f): %d before, %d after"
          " (%s)" % (t_down, t_up, len(early), len(late), (early + late)[:10]))
    check(t_up - t_down < OUTAGE_LIMIT_S, "the restart took %.1f s" % (t_up - t_down))
    check(after["drop_no_mapping"] == 0,
          "the new ephemera dropped %d outside packets for want of a mapping: a restored "
          "mapping was missing" % after["drop_no_mapping"])
    check(after["sessions_created"] == 0,
          "the new ephemera created %d sessions; the streams' were restored, not new" %
          after["sessions_created"])


# ------------------------------------------------------------- 2. a state file that is not used


def test_restart_refuses_a_damaged_state_file(binary, ctl_binary):
    state_dir = tempfile.mkdtemp(prefix="ephemera-state-")
    state_file = os.path.join(state_dir, "sessions.state")
    config = state_config(state_file)
    eph = None
    try:
        with lab_session(1) as lab:
            eph = Ephemera(binary, lab, WORKERS, config)
            eph.start()
            srv = lab.agent(lab.ns("srv"))
            srv.open("s", SERVER, 5000)
            srv.serve_echo("s")
            cli = lab.agent(lab.sub(1))
            cli.open("u", port=40000)
            _, text = udp_exchange(cli, "u", (SERVER, 5000), "hello")
            check(text.startswith("echo"), "no echo through the first ephemera: %r" % text)
            eph.stop()
            saved = saved_count(eph.output)
            check(saved >= 1, "saved %d sessions" % saved)
            eph.cleanup()
            # Cut the file short, as a full disk or a crash during the write would.
            with open(state_file, "r+b") as f:
                f.truncate(os.path.getsize(state_file) - 5)
            eph = Ephemera(binary, lab, WORKERS, config)
            eph.start()
            text = eph.read_log()
            check(re.search(r"saved sessions in .* not used: truncated", text) is not None,
                  "a truncated state file was not refused by name:\n%s" % text)
            ctl = Ctl(ctl_binary, eph.prefix, eph)
            check(ctl.sessions() == [], "sessions came back from a damaged file: %s" %
                  ctl.sessions())
            check(not os.path.exists(state_file), "the damaged file was left to be read again")
            # New flows go through as on any start.
            _, text = udp_exchange(cli, "u", (SERVER, 5000), "again")
            check(text.startswith("echo"), "no echo through the restarted ephemera: %r" % text)
            eph.stop()
            eph.cleanup()
            eph = None
    finally:
        if eph is not None:
            eph.cleanup()
        shutil.rmtree(state_dir, ignore_errors=True)


TESTS = {name[len("test_"):]: fn for name, fn in globals().items()
         if name.startswith("test_") and callable(fn)}

if __name__ == "__main__":
    sys.exit(main(TESTS, tools=("ephemeractl",)))
