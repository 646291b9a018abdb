#!/usr/bin/python3
"""NAT event logging with real collectors: subscribers' flows through ephemera in the namespace
lab, and what rsyslogd, pmacct's nfacctd and tshark received about them, compared with what the
server saw; the archive verified and asked who held an address:port (RFC 6888 REQ-12, RFC 8158,
RFC 5424).

    /usr/bin/python3 logging_tests.py TEST_NAME EPHEMERA_BINARY EPHEMERACTL_BINARY

The collectors run in a namespace of their own (<lab>-log), joined to the NAT's namespace by a
veth: ephemera's logging thread sends from the control side's kernel sockets, never from the
dataplane ports. Every namespace, process and file is removed on every exit path.
"""

import contextlib
import os
import shutil
import subprocess
import sys
import tempfile
import time

from collectors import IpfixCollector, Rsyslog, TsharkCapture
from nslab import (POOL, SERVER, TestFailure, check, ephemera_session, lab_session, log, main,
                   make_config, parse_echo, sub_addr, udp_exchange, wait_until)

WORKERS = 2
NAT_SIDE = "198.18.250.1"   # the NAT namespace's end of the logging link
COLLECTOR = "198.18.250.2"  # the collectors' namespace
SYSLOG_UDP, SYSLOG_TCP = 514, 601
IPFIX_UDP, IPFIX_TCP = 4739, 4740
# The two syslog transports reach one rsyslogd; their facilities tell them apart (PRI).
FACILITY_UDP, FACILITY_TCP = ("local0", 16), ("local1", 17)
SEVERITY_INFO = 6
NAT44_BIB_CREATE, NAT44_BIB_DELETE = 8, 9          # RFC 8158 natEvent (IANA)
PORT_BLOCK_ALLOC, PORT_BLOCK_DEALLOC = 16, 17


@contextlib.contextmanager
def collector_namespace(lab):
    """<lab>-log, with a veth to the NAT's namespace; deleted on the way out."""
    ns, link = lab.name + "-log", lab.name + "lg"

    def sh(*argv):
        cp = subprocess.run(list(argv), capture_output=True, text=True, timeout=30)
        check(cp.returncode == 0, "%s: %s" % (" ".join(argv), cp.stderr))

    try:
        sh("ip", "netns", "add", ns)
        sh("ip", "link", "add", link + "a", "netns", lab.ns("nat"), "type", "veth", "peer",
           "name", link + "b", "netns", ns)
        for where, dev, addr in ((lab.ns("nat"), link + "a", NAT_SIDE), (ns, link + "b",
                                                                         COLLECTOR)):
            sh("ip", "-n", where, "addr", "add", addr + "/30", "dev", dev)
            sh("ip", "-n", where, "link", "set", dev, "up")
            sh("ip", "-n", where, "link", "set", "lo", "up")
        yield ns, link + "b"
    finally:
        subprocess.run(["ip", "netns", "del", ns], capture_output=True, timeout=30)


def logging_sections(archive, mode_sections=None, events=None):
    """[logging] with both syslog transports, both IPFIX transports and the archive."""
    sections = dict(mode_sections or {})
    logging = {"destination": True}
    if events:
        logging["events"] = events
    sections["logging"] = logging
    extra = "\n".join([
        "[[logging.syslog]]",
        'collector = "%s:%d"' % (COLLECTOR, SYSLOG_UDP),
        'facility = "%s"' % FACILITY_UDP[0],
        "[[logging.syslog]]",
        'collector = "%s:%d"' % (COLLECTOR, SYSLOG_TCP),
        'transport = "tcp"',
        'facility = "%s"' % FACILITY_TCP[0],
        "[[logging.ipfix]]",
        'collector = "%s:%d"' % (COLLECTOR, IPFIX_UDP),
        "observation_domain = 1",
        "[[logging.ipfix]]",
        'collector = "%s:%d"' % (COLLECTOR, IPFIX_TCP),
        'transport = "tcp"',
        "observation_domain = 2",
        "[logging.archive]",
        'path = "%s"' % archive,
        "",
    ])
    return sections, extra


def ctl(ctl_binary, prefix, *args, ok=True):
    argv = [ctl_binary] + (["--prefix", prefix] if prefix else []) + list(args)
    cp = subprocess.run(argv, capture_output=True, text=True, timeout=60)
    if ok:
        check(cp.returncode == 0, "%s exited %d: %s%s" % (" ".join(argv), cp.returncode,
                                                           cp.stdout, cp.stderr))
    return cp


def syslog_by_transport(rsyslog, event):
    """{transport: [messages of `event`]}, told apart by their facility."""
    out = {"udp": [], "tcp": []}
    for m in rsyslog.messages():
        if m.get("msgid") != event:
            continue
        facility = m["pri"] >> 3
        out["udp" if facility == FACILITY_UDP[1] else "tcp"].append(m)
    return out


def wait_for_syslog(rsyslog, event, count, timeout=10):
    """Until each transport has brought at least `count` messages of `event`: rsyslogd writes
    each as its listener receives it, so one transport's copy may come after the other's."""
    wait_until(lambda: all(len(got) >= count
                           for got in syslog_by_transport(rsyslog, event).values()), timeout)


@contextlib.contextmanager
def logging_lab(binary, ctl_binary, subscribers, sections_of, workers=WORKERS, config_args=None):
    """The lab, the collectors and ephemera logging to them. Yields a dict of the pieces.
    `config_args`: more keyword arguments of make_config (port_range, reserved, ...)."""
    archive = tempfile.mkdtemp(prefix="ephemera-archive-")
    pcap_dir = tempfile.mkdtemp(prefix="ephemera-ipfix-")
    try:
        with lab_session(subscribers) as lab, collector_namespace(lab) as (ns, dev), \
                Rsyslog(ns, COLLECTOR, SYSLOG_UDP, SYSLOG_TCP) as rsyslog, \
                IpfixCollector(ns, COLLECTOR, IPFIX_UDP, "udp") as ipfix_udp, \
                IpfixCollector(ns, COLLECTOR, IPFIX_TCP, "tcp") as ipfix_tcp, \
                TsharkCapture(ns, dev, "port %d or port %d" % (IPFIX_UDP, IPFIX_TCP),
                              os.path.join(pcap_dir, "ipfix.pcap")) as tshark:
            sections, extra = sections_of(archive)
            config = make_config(sections=sections, **(config_args or {})) + extra
            with ephemera_session(binary, lab, workers, config) as eph:
                yield {"lab": lab, "eph": eph, "rsyslog": rsyslog, "ipfix_udp": ipfix_udp,
                       "ipfix_tcp": ipfix_tcp, "tshark": tshark, "archive": archive,
                       "pcap": os.path.join(pcap_dir, "ipfix.pcap"), "ctl": ctl_binary}
    finally:
        shutil.rmtree(archive, ignore_errors=True)
        shutil.rmtree(pcap_dir, ignore_errors=True)


def udp_flows(lab, subscribers, per_subscriber):
    """Each subscriber's UDP sockets to the server's echo; {(inside ip, port): public (ip,
    port)} as the server saw them."""
    srv = lab.agent(lab.ns("srv"))
    srv.open("echo", SERVER, 7000)
    srv.serve_echo("echo")
    seen = {}
    for i in range(1, subscribers + 1):
        agent = lab.agent(lab.sub(i))
        for k in range(per_subscriber):
            name = "s%d" % k
            port = agent.open(name, port=41000 + k)
            _, text = udp_exchange(agent, name, (SERVER, 7000), "sub%d flow %d" % (i, k))
            seen[(sub_addr(i), port)] = tuple(parse_echo(text)[0])
    log("the server saw %d flows: %s" % (len(seen), sorted(seen.items())[:4]))
    return seen


def check_logging_telemetry(env, sinks):
    """No record lost anywhere: the workers' rings and every sink."""
    t = env["eph"].telemetry.query("/ephemera/logging")
    log("telemetry /ephemera/logging: %s" % t)
    check(t["log_records_dropped"] == 0, "records dropped at the rings: %s" % t)
    check(sorted(t["sink"]) == sorted(sinks), "sinks %s, expected %s" % (t["sink"], sinks))
    for i, name in enumerate(t["sink"]):
        check(t["records_dropped"][i] == 0, "%s dropped records: %s" % (name, t))
        check(t["records_sent"][i] > 0, "%s sent nothing: %s" % (name, t))
    return t


def test_nat_event_logging_dynamic(binary, ctl_binary):
    """Every mapping the server saw is in rsyslog (UDP and TCP), in nfacctd (IPFIX over UDP and
    TCP), decoded by tshark and in the archive, with its subscriber; after a flush its deletion
    too; whois answers from the archive for a time inside the mapping's life, also with only
    --prefix (the archive from the running config); show logging lists every sink; and
    logging.events switched off and on at run time takes effect for the next mapping."""
    subscribers, per = 2, 3
    with logging_lab(binary, ctl_binary, subscribers,
                     lambda archive: logging_sections(archive)) as env:
        start_ms = int(time.time() * 1000)
        seen = udp_flows(env["lab"], subscribers, per)
        prefix = env["eph"].prefix
        for i in range(1, subscribers + 1):
            ctl(env["ctl"], prefix, "flush", "--subscriber", sub_addr(i))
        end_ms = int(time.time() * 1000)
        want = {("%s:%d" % inside, "%s:%d" % public) for inside, public in seen.items()}

        # Syslog: one create and one delete per mapping on each transport, and the remote.
        def syslog_pairs(event):
            got = syslog_by_transport(env["rsyslog"], event)
            return {t: {(m["inside"], m["outside"]) for m in ms} for t, ms in got.items()}

        wait_until(lambda: all(v == want for v in syslog_pairs("mapping-delete").values()), 10)
        for event in ("mapping-create", "mapping-delete"):
            got = syslog_pairs(event)
            for transport in ("udp", "tcp"):
                check(got[transport] == want, "syslog %s over %s: %s, the server saw %s" % (
                    event, transport, sorted(got[transport]), sorted(want)))
        for m in syslog_by_transport(env["rsyslog"], "mapping-create")["udp"]:
            check(m["remote"] == "%s:7000" % SERVER, "remote of %s: %s" % (m["outside"], m))
            check(m["pri"] & 7 == SEVERITY_INFO, "severity of %s" % m)
            check(m["app_name"] == "ephemera", "APP-NAME %s" % m)
            check(m["outside"] in m["msg"] and m["inside"] in m["msg"],
                  "MSG does not name both endpoints: %s" % m)
            check(start_ms - 1000 <= parse_ms(m["time"]) <= end_ms + 1000,
                  "timestamp %s outside the test's window" % m["time"])

        # IPFIX: nfacctd stored every BIB create and delete, over UDP and TCP.
        for name, collector, domain in (("udp", env["ipfix_udp"], 1), ("tcp", env["ipfix_tcp"],
                                                                         2)):
            def stored(event, collector=collector):
                return {("%s:%d" % (r["src_addr"], r["src_port"]),
                         "%s:%d" % (r["post_nat_addr"], r["post_nat_port"]))
                        for r in collector.records() if r["nat_event"] == event}

            wait_until(lambda: stored(NAT44_BIB_DELETE) == want, 10)
            for event in (NAT44_BIB_CREATE, NAT44_BIB_DELETE):
                check(stored(event) == want, "nfacctd over %s, natEvent %d: %s, the server "
                      "saw %s" % (name, event, sorted(stored(event)), sorted(want)))
            for r in collector.records():
                check(r["proto"] == 17 and r["domain"] == domain,
                      "IPFIX record over %s: %s" % (name, r))
                check(start_ms - 1000 <= r["time_ms"] <= end_ms + 1000,
                      "observationTimeMilliseconds %d outside the test's window" % r["time_ms"])

        # tshark decodes the same records from the wire, both transports.
        env["tshark"].stop()
        decoded = TsharkCapture.decode(env["pcap"], ["udp.port==%d,cflow" % IPFIX_UDP,
                                                     "tcp.port==%d,cflow" % IPFIX_TCP])
        by_event = {}
        for r in decoded:
            if "cflow.nat_event" not in r:
                continue
            key = ("%s:%s" % (r["cflow.srcaddr"], r["cflow.srcport"]),
                   "%s:%s" % (r["cflow.post_natsource_ipv4_address"],
                              r["cflow.post_naptsource_transport_port"]))
            by_event.setdefault((int(r["cflow.nat_event"]), r["cflow.od_id"]), set()).add(key)
        for domain in ("1", "2"):
            for event in (NAT44_BIB_CREATE, NAT44_BIB_DELETE):
                got = by_event.get((event, domain), set())
                check(got == want, "tshark, domain %s, natEvent %d: %s" % (domain, event,
                                                                          sorted(got)))

        t = check_logging_telemetry(env, [
            "archive " + env["archive"], "syslog udp %s:%d" % (COLLECTOR, SYSLOG_UDP),
            "syslog tcp %s:%d" % (COLLECTOR, SYSLOG_TCP),
            "ipfix udp %s:%d" % (COLLECTOR, IPFIX_UDP), "ipfix tcp %s:%d" % (COLLECTOR,
                                                                            IPFIX_TCP)])
        check(t["log_records"] == 2 * len(want), "records handed over: %d for %d mappings" % (
            t["log_records"], len(want)))

        # The archive: its chain intact (a block is sealed within a second; a tail not yet
        # sealed is reported as such, not as tampering), and whois answers from it.
        archive = env["archive"]
        out = ctl(env["ctl"], None, "log", "verify", archive).stdout
        check("chain intact" in out, "log verify: %s" % out)
        (inside, public), = list(seen.items())[:1]
        created = [m for m in syslog_by_transport(env["rsyslog"], "mapping-create")["udp"]
                   if m["outside"] == "%s:%d" % public][0]
        reply = ctl(env["ctl"], None, "whois", "%s:%d" % public, "--at", created["time"],
                    "--proto", "udp", "--archive", archive).stdout
        check("%s:%d" % inside in reply, "whois %s:%d at %s: %s" % (public + (created["time"],
                                                                               reply)))
        log("whois: %s" % reply.strip())

        # On the NAT box, with no --archive: the live table is asked first (nobody holds the
        # port since the flush), then the archive the running config names.
        cp = ctl(env["ctl"], prefix, "whois", "%s:%d" % public, "--at", created["time"],
                 "--proto", "udp")
        check("  %s:%d (udp mapping), from the archive" % inside in cp.stdout and
              "live table: nobody holds %s:%d now" % public in cp.stderr and
              "the running config's logging.archive.path" in cp.stderr,
              "whois --prefix: %s%s" % (cp.stdout, cp.stderr))

        # show logging: every sink, and what it sent.
        out = ctl(env["ctl"], prefix, "show", "logging").stdout
        log("show logging:\n" + out.rstrip())
        check(all(name in out for name in t["sink"]) and "records handed over by the workers"
              in out, "show logging: %s" % out)

        # logging.events changes at run time: with none, a new mapping leaves no record; with
        # mapping again, the next one does.
        agent = env["lab"].agent(env["lab"].sub(1))
        for k, (events, more) in enumerate((("none", 0), ("mapping", 1))):
            cp = ctl(env["ctl"], prefix, "set", "logging.events", events)
            check(cp.stdout == "applied logging.events = %s\n" % events, cp.stdout + cp.stderr)
            before = env["eph"].telemetry.query("/ephemera/logging")["log_records"]
            agent.open("late%d" % k, port=42000 + k)
            udp_exchange(agent, "late%d" % k, (SERVER, 7000), "late flow %d" % k)
            wait_until(lambda: env["eph"].telemetry.query("/ephemera/logging")["log_records"]
                       >= before + more, 5)
            time.sleep(0.3)  # a record would reach the counter by now
            after = env["eph"].telemetry.query("/ephemera/logging")["log_records"]
            check(after == before + more, "logging.events %s: %d records for a new mapping" % (
                events, after - before))


def test_nat_event_logging_blocks(binary, ctl_binary):
    """Port blocks (RFC 6888 section 4): one record per block, not per mapping. Each
    subscriber's block names the public address the server saw and a span holding every port
    it saw; interim records repeat it while it is held; the release ends it; nfacctd stores the
    RFC 8158 port range fields; whois finds the subscriber from any port of the block."""
    subscribers, per, interim = 2, 3, 2
    sections = {"pool": {"mode": "blocks"},
                "pool.blocks": {"block_size": 64, "interim": interim}}
    with logging_lab(binary, ctl_binary, subscribers,
                     lambda archive: logging_sections(archive, sections)) as env:
        seen = udp_flows(env["lab"], subscribers, per)
        time.sleep(interim + 1.5)  # at least one interim period
        prefix = env["eph"].prefix
        for i in range(1, subscribers + 1):
            ctl(env["ctl"], prefix, "flush", "--subscriber", sub_addr(i))
        rsyslog = env["rsyslog"]
        wait_for_syslog(rsyslog, "block-release", subscribers)
        check(not syslog_by_transport(rsyslog, "mapping-create")["udp"],
              "blocks mode logs no mapping by default")
        by_event = {e: syslog_by_transport(rsyslog, e)["udp"]
                    for e in ("block-alloc", "block-interim", "block-release")}
        for i in range(1, subscribers + 1):
            inside = sub_addr(i)
            ports = [pub for (addr, _), pub in seen.items() if addr == inside]
            public = {p[0] for p in ports}
            check(len(public) == 1, "%s used one pool address: %s" % (inside, ports))
            allocs = [m for m in by_event["block-alloc"] if m["inside"] == inside]
            check(len(allocs) == 1, "%s: block-alloc messages %s" % (inside, allocs))
            block = allocs[0]
            check(block["outside"] == public.pop(), "block on %s, the server saw %s" % (
                block["outside"], ports))
            lo, hi = (int(x) for x in block["ports"].split("-"))
            workers = int(block.get("workers", "1"))
            check(block["count"] == "64" and workers == WORKERS, "block %s" % block)
            for _, port in ports:
                check(lo <= port <= hi and ((port >> 1) & 63) % workers == int(block["worker"]),
                      "port %d the server saw is not in %s's block %s" % (port, inside, block))
            interims = [m for m in by_event["block-interim"] if m["inside"] == inside]
            check(interims and all(m["ports"] == block["ports"] for m in interims),
                  "%s: interim records %s" % (inside, interims))
            releases = [m for m in by_event["block-release"] if m["inside"] == inside]
            check(len(releases) == 1 and releases[0]["ports"] == block["ports"],
                  "%s: block-release %s" % (inside, releases))
            # nfacctd: allocation (and its interim repeats) and de-allocation, with the range.
            for collector in (env["ipfix_udp"], env["ipfix_tcp"]):
                def stored(event, collector=collector, inside=inside):
                    return [r for r in collector.records()
                            if r["nat_event"] == event and r["src_addr"] == inside]
                wait_until(lambda: stored(PORT_BLOCK_DEALLOC), 10)
                for event in (PORT_BLOCK_ALLOC, PORT_BLOCK_DEALLOC):
                    got = stored(event)
                    check(got and all((r["port_range_start"], r["port_range_end"],
                                       r["port_range_num"], r["post_nat_addr"]) ==
                                      (lo, hi, 64, block["outside"]) for r in got),
                          "IPFIX natEvent %d for %s: %s, syslog said %s" % (event, inside, got,
                                                                            block))
                check(len(stored(PORT_BLOCK_ALLOC)) >= 2,
                      "the interim repeats the allocation record: %s" % stored(PORT_BLOCK_ALLOC))
            # whois: a port of the block the subscriber never used still names it.
            unused = next(p for p in range(lo, hi + 1)
                          if ((p >> 1) & 63) % workers == int(block["worker"]) and
                          (block["outside"], p) not in ports)
            reply = ctl(env["ctl"], None, "whois", "%s:%d" % (block["outside"], unused),
                        "--at", block["time"], "--archive", env["archive"]).stdout
            check(inside in reply, "whois %s:%d: %s" % (block["outside"], unused, reply))
        check_logging_telemetry(env, [
            "archive " + env["archive"], "syslog udp %s:%d" % (COLLECTOR, SYSLOG_UDP),
            "syslog tcp %s:%d" % (COLLECTOR, SYSLOG_TCP),
            "ipfix udp %s:%d" % (COLLECTOR, IPFIX_UDP), "ipfix tcp %s:%d" % (COLLECTOR,
                                                                            IPFIX_TCP)])
        out = ctl(env["ctl"], None, "log", "verify", env["archive"]).stdout
        check("chain intact" in out, "log verify: %s" % out)


def test_pool_alarm(binary, ctl_binary):
    """The pool-wide port use alarm and the exhaustion forecast, live: flows opened at a steady
    pace raise a forecast that the ports run out at about that pace, crossing the high
    watermark raises the alarm once (a log line, telemetry, and RFC 8158 natThresholdEvent 1
    in the archive and syslog), and flushing the subscribers clears it once (event 2)."""
    subscribers, per, pace = 2, 16, 4  # flows each; flows a second while the trend is taken
    port_range, usable_each = "60000-60127", 128
    usable = usable_each * len(POOL)
    high, clear = 10, 5
    sections = {"alarms": {"pool_ports_high": high, "pool_ports_clear": clear,
                           "forecast_window": 10},
                "timeouts": {"port_hold_down": 0}}
    with logging_lab(binary, ctl_binary, subscribers,
                     lambda archive: logging_sections(archive, sections, ["threshold"]),
                     workers=1, config_args={"port_range": port_range,
                                             "reserved": ()}) as env:
        lab, eph, prefix = env["lab"], env["eph"], env["eph"].prefix
        srv = lab.agent(lab.ns("srv"))
        srv.open("echo", SERVER, 7000)
        srv.serve_echo("echo")
        # A steady climb: `pace` new flows a second from each subscriber in turn, so that the
        # forecast has a trend to fit (its window is 10 s; it needs a tenth of it and 5 samples).
        opened = 0
        started = time.monotonic()
        for k in range(per):
            for i in range(1, subscribers + 1):
                agent = lab.agent(lab.sub(i))
                name = "a%d" % k
                agent.open(name, port=42000 + k)
                udp_exchange(agent, name, (SERVER, 7000), "sub%d alarm flow %d" % (i, k))
                opened += 1
                delay = started + opened / pace - time.monotonic()
                if delay > 0:
                    time.sleep(delay)
            if k == per * 3 // 4:  # 6 s in: 6 samples, and the pace has held throughout
                mid = eph.telemetry.query("/ephemera/alarms")
                log("three quarters in: %s" % mid)
        used = subscribers * per
        # Sampled once a second: the last flows show within two.
        wait_until(lambda: eph.telemetry.query("/ephemera/alarms")["udp"].startswith(
            "%d of" % used), 5)
        a = eph.telemetry.query("/ephemera/alarms")
        log("telemetry /ephemera/alarms: %s" % a)
        check(a["udp"].startswith("%d of %d ports in use (%d %%), ALARM raised" % (
            used, usable, used * 100 // usable)), "udp line: %s" % a["udp"])
        check(a["tcp"].startswith("0 of %d ports in use (0 %%), no alarm" % usable),
              "tcp line: %s" % a["tcp"])
        check(a["alarm_changes"] == 1, "one alarm change so far: %s" % a)
        # The forecast three quarters in, while flows were opening at `pace` a second: a rising trend
        # near that pace, and a time to exhaustion of about what was left at that pace.
        import re
        m = re.search(r"\+([0-9.]+) ports/s, exhausted in about ([0-9]+) s", mid["udp"])
        check(m is not None, "a rising trend and a time to exhaustion: %s" % mid)
        rate, eta = float(m.group(1)), int(m.group(2))
        check(pace / 2 <= rate <= pace * 2, "trend %.1f ports/s, opened %d/s" % (rate, pace))
        left = usable - int(mid["udp"].split()[0])
        check(left / (rate * 2) <= eta <= left * 2 / rate,
              "exhaustion in %d s with %d ports left at %.1f/s" % (eta, left, rate))
        for i in range(1, subscribers + 1):
            ctl(env["ctl"], prefix, "flush", "--subscriber", sub_addr(i))
        wait_until(lambda: eph.telemetry.query("/ephemera/alarms")["alarm_changes"] == 2, 10)
        a = eph.telemetry.query("/ephemera/alarms")
        check(a["udp"].startswith("0 of %d ports in use (0 %%), no alarm" % usable),
              "after the flush: %s" % a["udp"])
        out = ctl(env["ctl"], prefix, "show", "alarms").stdout
        check("pool_ports_high" in out and "no alarm" in out, "show alarms: %s" % out)
        # The log line, syslog (both transports) and the archive: raised once, cleared once.
        wait_until(lambda: "pool udp ports cleared" in eph.read_log(), 10)
        text = eph.read_log()
        check(text.count("alarm: pool udp ports HIGH") == 1 and
              text.count("alarm: pool udp ports cleared") == 1,
              "one HIGH and one cleared line:\n%s" % text)
        rsyslog = env["rsyslog"]
        wait_for_syslog(rsyslog, "threshold", 2)
        for transport, got in syslog_by_transport(rsyslog, "threshold").items():
            kinds = [(m.get("threshold"), m.get("proto"), m.get("percent")) for m in got]
            check(kinds == [("pool-high", "udp", str(high)), ("pool-low", "udp", str(clear))],
                  "syslog %s threshold messages: %s" % (transport, got))
        lines = []
        for name in sorted(os.listdir(env["archive"])):
            if name.endswith(".log"):
                with open(os.path.join(env["archive"], name)) as f:
                    lines += [ln for ln in f if "event=threshold" in ln]
        check(len(lines) == 2 and "threshold=pool-high" in lines[0] and
              "threshold=pool-low" in lines[1], "archive threshold lines: %s" % lines)
        out = ctl(env["ctl"], None, "log", "verify", env["archive"]).stdout
        check("chain intact" in out, "log verify: %s" % out)


def parse_ms(text):
    """RFC 3339 with milliseconds, UTC ('2026-12-05T10:00:00.123Z') -> Unix ms."""
    import calendar
    base, _, frac = text.rstrip("Z").partition(".")
    seconds = calendar.timegm(time.strptime(base, "%Y-%m-%dT%H:%M:%S"))
    return seconds * 1000 + int((frac or "0")[:3].ljust(3, "0"))


TESTS = {name[len("test_"):]: fn for name, fn in globals().items()
         if name.startswith("test_") and callable(fn)}

if __name__ == "__main__":
    sys.exit(main(TESTS, tools=("ephemeractl",)))
