"""Soak and floods of ephemera over memif (bench/soak.sh; method and figures in
docs/reliability.md).

Soak: ephemera (release build, --workers workers) under ephemera-loadgen for --duration seconds:
S subscribers x F flows at a fixed rate, with churn (flows moving to a new source port, each a
new session; a TCP flow's old connection ended with a FIN) and a set of long-lived flows that
never churn. Meanwhile, every --reconfig-every seconds one live change through ephemeractl, in
a cycle: port range narrowed and back, UDP timeout shortened and back, a pool address added and
removed, the pool address of the long-lived flows removed (they must drain on it) and added
back, filtering address-dependent, address-and-port-dependent and back, and a change that must
be refused. Every --sighup-every seconds the config file is rewritten with the running settings
(tcp_transitory toggled, so each reload changes something; every fourth file is invalid and
must be refused) and ephemera gets SIGHUP. VmRSS (and the EAL heap) is sampled every
--sample-every seconds. Passes when: no mistranslation (the generator checks every packet both
ways), no long-lived flow lost (none silent for --gap-limit at the end or in between, none with
a new external endpoint, their NAT sessions unchanged), VmRSS after --rss-warmup within 1 % of
its value at the end of the warm-up, every change applied or refused as expected, and the
counters consistent at the end (bench/counter_checks.py).

Floods (each against a fresh ephemera, while S x F well-behaved flows run at a fixed rate):
syn (from many subscriber addresses), outside (to random pool ports), malformed (both sides),
each at the generator's full rate for --flood-duration seconds between --flood-before and
--flood-after seconds of steady load. Reports the flows' throughput before, during and after,
whether they kept their sessions, and checks that every flood frame is counted by reason
(bench/loadgen/flood.hpp lists what each kind should be counted as).

CPU layout as in the load run (bench/memif_lab.py): the generator on CPU 0; ephemera's control
lcore on CPU 0 and its workers on CPU 1, CPU 0, ... Run as root through bench/soak.sh.
Debian's /usr/bin/python3, standard library only.
"""

import argparse
import json
import os
import re
import signal
import statistics
import subprocess
import sys
import tempfile
import time

import counter_checks
import memif_lab as lab
from memif_lab import log

POOL = ["198.19.0.%d" % i for i in range(1, 9)]
EXTRA_ADDRESS = "198.19.0.9"
LOADGEN_POOL = "198.19.0.1-198.19.0.9"  # what the generator accepts as a translated source
PORT_RANGE = "1024-65535"
NARROW_RANGE = "20000-40000"
SUBSCRIBER_BASE = (100 << 24) | (64 << 16) | (1 << 8)  # bench/loadgen/flows.hpp


def ipv4(v):
    return "%d.%d.%d.%d" % (v >> 24, (v >> 16) & 255, (v >> 8) & 255, v & 255)


class Pair:
    """One ephemera and one ephemera-loadgen over memif, with everything they leave behind
    (sockets, EAL runtime directories) removed by close(), which is safe to call twice."""

    def __init__(self, args, tmp, name, config_text, loadgen_args):
        self.args = args
        self.name = name
        self.prefix = "dut-" + name
        self.path = lambda suffix: os.path.join(tmp, name + suffix)
        self.config_path = self.path(".toml")
        self.report_path = self.path("-loadgen.json")
        self.jsonl_path = self.path("-loadgen.jsonl")
        self.exit_stats_path = self.path("-ephemera-exit.json")
        self.lg_log = self.path("-loadgen.log")
        self.eph_log = self.path("-ephemera.log")
        self.pid_file = self.path(".pid")
        build = args.build
        self.ephemeractl = os.path.join(build, "tools", "ephemeractl", "ephemeractl")
        with open(self.config_path, "w") as f:
            f.write(config_text)
        self.lg_cmd = lab.loadgen_command(
            os.path.join(build, "bench", "loadgen", "ephemera-loadgen"), name, loadgen_args + [
                "--queues", str(args.workers), "--steering", "rss", "--ready-timeout", "300",
                "--json", self.report_path, "--stats-jsonl", self.jsonl_path,
                "--peer-pid-file", self.pid_file])
        self.eph_cmd = lab.ephemera_command(
            os.path.join(build, "control", "ephemera"), name, self.config_path, args.workers,
            args.eal_mem, ["--stats-json", self.exit_stats_path])
        self.telemetry = lab.Telemetry(self.prefix)
        self.lg = None
        self.eph = None
        self.quiet = None

    def start(self):
        self.lg = lab.start(self.lg_cmd, self.lg_log, self.args.nice)
        lab.wait_for_sockets(self.lg, self.name, self.lg_log)
        self.eph = lab.start(self.eph_cmd, self.eph_log, self.args.nice)
        with open(self.pid_file, "w") as f:
            f.write("%d\n" % self.eph.pid)

    def query(self, cmd, timeout=10.0):
        try:
            return self.telemetry.query(cmd, timeout)
        except (OSError, ValueError):
            return None

    def ctl(self, *words):
        """ephemeractl against this ephemera: (exit status, output)."""
        p = subprocess.run([self.ephemeractl, "--prefix", self.prefix] + list(words),
                           capture_output=True, text=True, timeout=60)
        return p.returncode, (p.stdout + p.stderr).strip()

    def last_record(self):
        """The generator's newest line of counters, or None."""
        try:
            with open(self.jsonl_path, "rb") as f:
                f.seek(0, os.SEEK_END)
                f.seek(max(0, f.tell() - 16384))
                lines = f.read().decode(errors="replace").splitlines()
        except OSError:
            return None
        for line in reversed(lines):
            try:
                return json.loads(line)
            except ValueError:
                continue
        return None

    def exit_statuses(self):
        return "generator %s, ephemera %s" % (
            "running" if self.lg.poll() is None else "exited %d" % self.lg.returncode,
            "running" if self.eph.poll() is None else "exited %d" % self.eph.returncode)

    def wait_for_phase(self, phases, timeout):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            rec = self.last_record()
            if rec and rec["phase"] in phases:
                return rec
            if self.lg.poll() is not None or self.eph.poll() is not None:
                return None
            time.sleep(0.5)
        return None

    def capture_when_draining(self):
        """Once the generator is in its drain phase (nothing sent, what was in flight back):
        ephemera's counters and its ports' own (ethdev) counters, read at the same quiet
        moment. The memif PMD forgets its counters when the generator's end goes away, so this
        is the last moment they can be compared."""
        if getattr(self, "quiet", None) is not None:
            return
        rec = self.last_record()
        if not rec or rec["phase"] != "drain":
            return
        time.sleep(1.5)
        self.quiet = {"stats": self.query("/ephemera/stats"), "ethdev": self.ethdev()}

    def used_ports(self, address):
        """Ports in use or in hold-down on one pool address (all protocols, all workers)."""
        p = self.query("/ephemera/ports") or {}
        addresses = p.get("address", [])
        if address not in addresses:
            return None
        i = addresses.index(address)
        return sum(p[proto + "_usable"][i] - p[proto + "_free"][i]
                   for proto in ("udp", "tcp", "icmp"))

    def rss(self):
        st = lab.proc_status(self.eph.pid)
        return st.get("VmRSS"), st.get("VmHWM")

    def ethdev(self):
        out = {}
        for port in (0, 1):
            st = self.query("/ethdev/stats,%d" % port)
            if isinstance(st, dict):
                out[port] = {k: v for k, v in st.items() if not isinstance(v, list)}
        return out

    def sessions(self, subscriber):
        """{(proto, inside port, remote): external endpoint} of a subscriber's sessions."""
        reply = self.query("/ephemera/sessions,subscriber=%s;limit=512" % subscriber, 30.0)
        out = {}
        for line in reply if isinstance(reply, list) else []:
            m = re.match(r"(\w+) [\d.]+:(\d+) as ([\d.]+:\d+) <-> ([\d.]+:\d+)", line)
            if m:
                out[(m.group(1), int(m.group(2)), m.group(4))] = m.group(3)
        return out

    def stop_loadgen(self):
        if self.lg is not None:
            lab.stop(self.lg, signal.SIGINT, timeout=120)

    def stop_ephemera(self):
        """SIGINT; returns ephemera's exit report (--stats-json): counters read after the
        workers stopped, so exact."""
        if self.eph is None:
            return None
        lab.stop(self.eph, signal.SIGINT, timeout=120)
        try:
            with open(self.exit_stats_path) as f:
                return json.load(f)
        except (OSError, ValueError):
            return None

    def close(self):
        for p in (self.lg, self.eph):
            if p is not None and p.poll() is None:
                lab.stop(p, signal.SIGINT, timeout=30)
        lab.remove_run_files(self.name)


def exit_totals(exit_report):
    """Counter totals and the exact live counts from ephemera's exit report."""
    c = dict(exit_report["totals"])
    c["live_sessions"] = sum(w["live_sessions"] for w in exit_report["workers"])
    c["live_mappings"] = sum(w["live_mappings"] for w in exit_report["workers"])
    return c


def gauge_checks(pair, tries=20):
    """The two checks that need the gauges (refreshed by each worker every 64 loop iterations),
    read through telemetry until one reading satisfies them or `tries` have not."""
    last = []
    for _ in range(tries):
        st = pair.query("/ephemera/stats")
        if isinstance(st, dict):
            last = [c for c in counter_checks.ephemera_checks(st)
                    if c["name"] in ("sessions by protocol", "hold-down")]
            if all(c["holds"] for c in last):
                break
        time.sleep(0.2)
    return last


def ethdev_checks(quiet):
    """ephemera's RX and TX counters against its ports' own, read together while quiet."""
    if not quiet or not isinstance(quiet.get("stats"), dict) or not quiet.get("ethdev"):
        return [{"name": "ethdev", "holds": False, "lhs": 0, "rhs": 0,
                 "equation": "not read: the drain phase was missed", "source": ""}]
    return counter_checks.ethdev_checks(quiet["stats"], quiet["ethdev"])


def compare_sessions(before, after):
    """Sessions of the watched subscribers that went, or whose external endpoint moved."""
    gone, moved = [], []
    for sub, sessions in before.items():
        now = after.get(sub, {})
        for key, ext in sessions.items():
            if key not in now:
                gone.append("%s %s" % (sub, key))
            elif now[key] != ext:
                moved.append("%s %s: %s -> %s" % (sub, key, ext, now[key]))
    return gone, moved


def print_checks(checks):
    for c in checks:
        log("  %-4s %12d %s %-12d %s" % ("ok" if c["holds"] else "FAIL", c["lhs"],
                                          "==" if c["holds"] else "!=", c["rhs"], c["name"]))


# ---- soak ------------------------------------------------------------------------------------


class Soak:
    def __init__(self, args, tmp):
        self.args = args
        self.tmp = tmp
        self.name = "soak%d" % os.getpid()
        subscribers, flows = args.subscribers, args.flows
        self.long_lived_subs = max(1, args.long_lived_subscribers)
        # Running settings: what the next SIGHUP's file holds.
        self.state = {"pool": list(POOL), "port_range": PORT_RANGE, "udp": 300,
                      "tcp_transitory": 240, "filtering": "endpoint-independent"}
        self.max_sessions = args.max_sessions
        loadgen_args = [
            "-S", str(subscribers), "-F", str(flows), "--proto", "mix",
            "--rate", str(args.rate), "--new-flow-rate", str(args.rate),
            "--churn", str(args.churn),
            "--long-lived", str(self.long_lived_subs * flows), "--gap-limit", str(args.gap_limit),
            "--duration", str(args.duration), "--warmup", "5", "--latency-load", "0",
            "--window", "0", "--catch-up", "0.1",
            "--drain", "5", "--pool", LOADGEN_POOL, "--port-range", PORT_RANGE]
        self.pair = Pair(args, tmp, self.name, self.config_text(), loadgen_args)
        self.watched = sorted({0, 1, self.long_lived_subs // 2, self.long_lived_subs - 1})
        self.changes = []
        self.sighups = []
        self.samples = []
        self.step = 0
        self.hups = 0
        self.anchor = None
        self.used_at_removal = None

    def config_text(self, broken=False):
        s = self.state
        timeouts = {"udp": 30 if broken else s["udp"], "tcp_transitory": s["tcp_transitory"]}
        return lab.ephemera_config(s["pool"], s["port_range"], self.max_sessions, timeouts,
                                   s["filtering"], comment="written by bench/soak.py" +
                                   (" (invalid on purpose: timeouts.udp)" if broken else ""))

    # The live changes, one per --reconfig-every, in this order.
    def steps(self):
        return [
            ("port range narrowed", ["set", "pool.port_range", NARROW_RANGE],
             ("port_range", NARROW_RANGE), True),
            ("port range restored", ["set", "pool.port_range", PORT_RANGE],
             ("port_range", PORT_RANGE), True),
            ("UDP timeout shortened", ["set", "timeouts.udp", "120"], ("udp", 120), True),
            ("UDP timeout restored", ["set", "timeouts.udp", "300"], ("udp", 300), True),
            ("pool address added", ["pool", "add", EXTRA_ADDRESS], ("add", EXTRA_ADDRESS), True),
            ("pool address removed", ["pool", "remove", EXTRA_ADDRESS],
             ("remove", EXTRA_ADDRESS), True),
            ("long-lived flows' address removed (drains)", ["pool", "remove", "ANCHOR"],
             ("remove", "ANCHOR"), True),
            ("long-lived flows' address added back", ["pool", "add", "ANCHOR"],
             ("add", "ANCHOR"), True),
            ("filtering address-dependent", ["set", "filtering.mode", "address"],
             ("filtering", "address"), True),
            ("filtering address-and-port-dependent", ["set", "filtering.mode",
                                                      "address-and-port"],
             ("filtering", "address-and-port"), True),
            ("filtering endpoint-independent", ["set", "filtering.mode",
                                                "endpoint-independent"],
             ("filtering", "endpoint-independent"), True),
            ("invalid change (UDP timeout 60 s)", ["set", "timeouts.udp", "60"], None, False),
        ]

    def find_anchor(self):
        """The pool address the first long-lived subscriber's flows leave from."""
        for ext in self.pair.sessions(ipv4(SUBSCRIBER_BASE)).values():
            return ext.split(":")[0]
        return None

    def config_matches(self):
        c = self.pair.query("/ephemera/config") or {}
        lo, hi = self.state["port_range"].split("-")
        return (c.get("port_range", "").endswith("(%s-%s)" % (lo, hi)) and
                c.get("timeout_udp") == self.state["udp"] and
                c.get("timeout_tcp_transitory") == self.state["tcp_transitory"] and
                c.get("filtering") == self.state["filtering"] and
                c.get("pool_addresses") == len(self.state["pool"])), c

    def reconfigure(self, t):
        steps = self.steps()
        label, words, effect, must_apply = steps[self.step % len(steps)]
        self.step += 1
        if "ANCHOR" in words:
            if self.anchor is None:
                self.anchor = self.find_anchor()
            if self.anchor is None:
                self.changes.append({"t": t, "step": label, "skipped": "no anchor found"})
                return
            words = [self.anchor if w == "ANCHOR" else w for w in words]
            effect = (effect[0], self.anchor)
        drain = None
        if words[:2] == ["pool", "add"] and self.anchor in words and self.used_at_removal:
            # Nothing new went to the address while it was out of the pool: its ports in use
            # (and in hold-down) can only have gone down.
            used = self.pair.used_ports(self.anchor)
            drain = {"address": self.anchor, "used_at_removal": self.used_at_removal,
                     "used_before_readding": used,
                     "holds": used is not None and used <= self.used_at_removal}
        rc, out = self.pair.ctl(*words)
        applied = rc == 0
        if words[:2] == ["pool", "remove"] and self.anchor in words and applied:
            self.used_at_removal = self.pair.used_ports(self.anchor)
        if applied and effect:
            key, value = effect
            if key == "add":
                self.state["pool"].append(value)
            elif key == "remove":
                self.state["pool"].remove(value)
            else:
                self.state[key] = value
        matches, _ = self.config_matches()
        record = {"t": round(t, 1), "step": label, "command": "ephemeractl " + " ".join(words),
                  "exit_status": rc, "applied": applied, "expected": must_apply,
                  "as_expected": applied == must_apply and matches and
                  (drain is None or drain["holds"]), "message": out[-300:]}
        if drain is not None:
            record["drain"] = drain
        self.changes.append(record)
        log("[%7.1f s] %-44s %s%s" % (t, label, "applied" if applied else "refused",
                                      "" if record["as_expected"] else "  UNEXPECTED: " + out))

    def sighup(self, t):
        self.hups += 1
        broken = self.hups % 4 == 0
        if not broken:
            self.state["tcp_transitory"] = 300 if self.state["tcp_transitory"] == 240 else 240
        with open(self.pair.config_path, "w") as f:
            f.write(self.config_text(broken))
        before = lab.read(self.pair.eph_log).count("SIGHUP:")
        self.pair.eph.send_signal(signal.SIGHUP)
        line = ""
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            lines = [ln for ln in lab.read(self.pair.eph_log).splitlines() if "SIGHUP:" in ln]
            if len(lines) > before:
                line = lines[before]
                break
            time.sleep(0.2)
        applied = "SIGHUP: applied" in line
        if broken:
            with open(self.pair.config_path, "w") as f:
                f.write(self.config_text())  # the next SIGHUP reads a valid file again
        matches, _ = self.config_matches()
        record = {"t": round(t, 1), "invalid_file": broken, "applied": applied,
                  "as_expected": applied != broken and matches and line != "", "line": line}
        self.sighups.append(record)
        log("[%7.1f s] SIGHUP %-37s %s%s" % (
            t, "(invalid file)" if broken else "(tcp_transitory %d)" %
            self.state["tcp_transitory"], "applied" if applied else "refused",
            "" if record["as_expected"] else "  UNEXPECTED: " + (line or "no answer")))

    def sample(self, t, traffic=True):
        rss, hwm = self.pair.rss()
        heap = self.pair.query("/eal/heap_info,0") or {}
        st = self.pair.query("/ephemera/stats") or {}
        rec = self.pair.last_record() or {}
        self.samples.append({
            "t": round(t, 1), "traffic": traffic, "vmrss_kib": rss, "vmhwm_kib": hwm,
            "eal_heap_alloc": heap.get("Alloc_size"), "eal_heap_size": heap.get("Heap_size"),
            "live_sessions": st.get("live_sessions"), "live_mappings": st.get("live_mappings"),
            "live_subscribers": st.get("live_subscribers"),
            "sessions_created": st.get("sessions_created"),
            "long_lived_silent": rec.get("long_lived", {}).get("silent"),
            "loadgen_back": rec.get("counters", {}).get("in_ok")})

    def run(self):
        a = self.args
        pair = self.pair
        log("soak %s: ephemera %d worker(s), %d subscribers x %d flows at %.0f packets/s, churn "
            "%.0f flows/s, %d long-lived flows; %.0f s, a change every %.0f s, SIGHUP every "
            "%.0f s" % (self.name, a.workers, a.subscribers, a.flows, a.rate, a.churn,
                        self.long_lived_subs * a.flows, a.duration, a.reconfig_every,
                        a.sighup_every))
        pair.start()
        if pair.wait_for_phase(("measure",), 600) is None:
            raise RuntimeError("the generator never reached its measure phase (%s):\n" %
                               pair.exit_statuses() +
                               lab.read(pair.lg_log)[-3000:] + lab.read(pair.eph_log)[-3000:])
        t0 = time.monotonic()
        subs = [ipv4(SUBSCRIBER_BASE + s) for s in self.watched]
        sessions_before = {s: pair.sessions(s) for s in subs}
        self.anchor = self.find_anchor()
        log("measure phase started; watching the sessions of %s (%d sessions), anchor %s" % (
            ", ".join(subs), sum(len(v) for v in sessions_before.values()), self.anchor))
        next_change = a.reconfig_every
        next_sample = 0.0
        next_hup = a.sighup_every
        end = a.duration - 2 * a.reconfig_every / 3  # no change in the last moments
        while pair.lg.poll() is None:
            if pair.eph.poll() is not None:
                raise RuntimeError("ephemera exited %d during the soak:\n%s" % (
                    pair.eph.returncode, lab.read(pair.eph_log)[-4000:]))
            t = time.monotonic() - t0
            if t >= next_sample:
                self.sample(t)
                next_sample += a.sample_every
            if t >= next_change and t < end:
                self.reconfigure(t)
                next_change += a.reconfig_every
            if t >= next_hup and t < end:
                self.sighup(t)
                next_hup += a.sighup_every
            pair.capture_when_draining()
            time.sleep(0.2)
        return self.finish(t0, subs, sessions_before)

    def finish(self, t0, subs, sessions_before):
        a = self.args
        pair = self.pair
        with open(pair.report_path) as f:
            report = json.load(f)
        time.sleep(1)
        sessions_after = {s: pair.sessions(s) for s in subs}
        gone, moved = compare_sessions(sessions_before, sessions_after)
        gauges = gauge_checks(pair)
        # After the generator left: its memif regions are unmapped, so VmRSS drops; kept for
        # the record, not judged.
        self.sample(time.monotonic() - t0, traffic=False)
        exit_report = pair.stop_ephemera()
        if exit_report is None:
            raise RuntimeError("ephemera left no exit report:\n" + lab.read(pair.eph_log)[-3000:])
        totals = exit_totals(exit_report)
        lg = report["counters"]
        checks = counter_checks.ephemera_checks(totals) + gauges + \
            counter_checks.wire_checks(totals, lg) + ethdev_checks(pair.quiet)
        ethdev = (pair.quiet or {}).get("ethdev")
        rss = rss_summary(self.samples, a.rss_warmup)
        ll = report.get("long_lived", {})
        result = {
            "kind": "soak",
            "command": " ".join(["bench/soak.sh"] + sys.argv[1:]),
            "revision": lab.describe_revision(),
            "host": {"cpus": os.cpu_count(), "loadavg_at_end": os.getloadavg()},
            "workers": a.workers, "ephemera_command": " ".join(pair.eph_cmd),
            "loadgen_command": " ".join(pair.lg_cmd),
            "duration_s": a.duration,
            "mistranslations": report["checks"]["mistranslations"],
            "mistranslations_by_reason": report["checks"]["by_reason"],
            "pairing_violations": report["checks"]["pairing_violations"],
            "long_lived": ll,
            "watched_sessions": {"subscribers": subs,
                                 "sessions": sum(len(v) for v in sessions_before.values()),
                                 "gone": gone, "moved": moved},
            "established_flows_lost": (ll.get("flows", 0) - ll.get("established", 0)) +
            ll.get("silent_at_end", 0) + ll.get("over_gap_limit", 0) + len(gone) + len(moved),
            "rss": rss,
            "changes": self.changes,
            "sighups": self.sighups,
            "checks": checks,
            "ephemera_totals": {k: v for k, v in totals.items() if v},
            "loadgen_totals": report["totals"],
            "loadgen_measure": report.get("measure"),
            "ethdev": ethdev,
            "samples": self.samples,
        }
        result["passed"] = (
            result["mistranslations"] == 0 and result["established_flows_lost"] == 0 and
            rss["growth_pct"] is not None and rss["growth_pct"] < 1.0 and
            all(c["as_expected"] for c in self.changes if "skipped" not in c) and
            all(h["as_expected"] for h in self.sighups) and all(c["holds"] for c in checks))
        print_soak(result)
        return result


def rss_summary(samples, warmup):
    """VmRSS at the end of the warm-up (the last sample in it) against every sample after, while
    the generator runs."""
    series = [(s["t"], s["vmrss_kib"]) for s in samples if s["vmrss_kib"] and s["traffic"]]
    before = [r for t, r in series if t <= warmup]
    after = [(t, r) for t, r in series if t > warmup]
    out = {"warmup_s": warmup, "samples": len(series),
           "start_kib": series[0][1] if series else None,
           "at_warmup_end_kib": before[-1] if before else None,
           "max_after_kib": max(r for _, r in after) if after else None,
           "min_after_kib": min(r for _, r in after) if after else None,
           "end_kib": series[-1][1] if series else None, "growth_pct": None,
           "slope_kib_per_hour": None}
    if before and after:
        out["growth_pct"] = 100.0 * (out["max_after_kib"] - before[-1]) / before[-1]
        if len(after) >= 2:
            ts = [t for t, _ in after]
            rs = [r for _, r in after]
            mt, mr = statistics.mean(ts), statistics.mean(rs)
            var = sum((t - mt) ** 2 for t in ts)
            if var > 0:
                out["slope_kib_per_hour"] = 3600 * sum(
                    (t - mt) * (r - mr) for t, r in zip(ts, rs)) / var
    return out


def print_soak(r):
    log("")
    log("soak: %s" % ("PASSED" if r["passed"] else "FAILED"))
    log("  mistranslations %d %s; pairing: %d subscribers seen on a second pool address" % (
        r["mistranslations"], r["mistranslations_by_reason"] or "", r["pairing_violations"]))
    ll = r["long_lived"]
    w = r["watched_sessions"]
    log("  long-lived flows: %s of %s established, %s silent at the end, %s with a gap over "
        "%s s (longest %.1f s); watched sessions %d, gone %d, moved %d: established flows lost "
        "%d" % (ll.get("established"), ll.get("flows"), ll.get("silent_at_end"),
                ll.get("over_gap_limit"), ll.get("gap_limit_s"), ll.get("max_gap_s", 0),
                w["sessions"], len(w["gone"]), len(w["moved"]), r["established_flows_lost"]))
    s = r["rss"]
    if s["growth_pct"] is not None:
        log("  VmRSS: %.1f MiB at start, %.1f MiB at the end of the %.0f s warm-up, %.1f-%.1f "
            "MiB after, %.1f MiB at the end: growth %.2f %% (slope %+.0f KiB/h)" % (
                s["start_kib"] / 1024, s["at_warmup_end_kib"] / 1024, s["warmup_s"],
                s["min_after_kib"] / 1024, s["max_after_kib"] / 1024, s["end_kib"] / 1024,
                s["growth_pct"], s["slope_kib_per_hour"] or 0))
    applied = sum(1 for c in r["changes"] if c.get("applied"))
    refused = sum(1 for c in r["changes"] if "applied" in c and not c["applied"])
    log("  live changes: %d applied, %d refused, %d not as expected; SIGHUPs: %d applied, %d "
        "refused, %d not as expected" % (
            applied, refused, sum(1 for c in r["changes"] if not c.get("as_expected", True)),
            sum(1 for h in r["sighups"] if h["applied"]),
            sum(1 for h in r["sighups"] if not h["applied"]),
            sum(1 for h in r["sighups"] if not h["as_expected"])))
    t = r["loadgen_totals"]
    log("  generator: sent %d, lost out %d, lost back %d" % (t["sent"], t["lost_out"],
                                                            t["lost_back"]))
    log("  counters at the end:")
    print_checks(r["checks"])


# ---- floods ----------------------------------------------------------------------------------


def flood_run(args, tmp, kind):
    name = "fl%s%d" % (kind[:3], os.getpid())
    subscribers, flows = args.flood_subscribers, args.flood_flows
    duration = args.flood_before + args.flood_duration + args.flood_after
    config = lab.ephemera_config(POOL, PORT_RANGE, args.flood_max_sessions,
                                 comment="written by bench/soak.py (flood %s)" % kind)
    loadgen_args = [
        "-S", str(subscribers), "-F", str(flows), "--proto", "mix",
        "--rate", str(args.flood_wb_rate), "--new-flow-rate", str(args.flood_wb_rate),
        "--long-lived", str(subscribers * flows),
        "--gap-limit", str(args.flood_gap_limit), "--duration", str(duration),
        "--warmup", "2", "--latency-load", "0", "--drain", "3", "--window", "0",
        "--catch-up", "0.1",
        "--pool", "%s-%s" % (POOL[0], POOL[-1]), "--port-range", PORT_RANGE,
        "--flood", kind, "--flood-rate", str(args.flood_rate),
        "--flood-start", str(args.flood_before), "--flood-duration", str(args.flood_duration),
        "--flood-sources", str(args.flood_sources)]
    pair = Pair(args, tmp, name, config, loadgen_args)
    log("flood %s: %d well-behaved subscribers x %d flows at %.0f packets/s; %.0f s steady, "
        "%.0f s flood (rate %s), %.0f s after" % (
            kind, subscribers, flows, args.flood_wb_rate, args.flood_before,
            args.flood_duration, args.flood_rate or "full", args.flood_after))
    try:
        pair.start()
        if pair.wait_for_phase(("measure",), 600) is None:
            raise RuntimeError("the generator never reached its measure phase (%s):\n" %
                               pair.exit_statuses() +
                               lab.read(pair.lg_log)[-3000:] + lab.read(pair.eph_log)[-3000:])
        subs = [ipv4(SUBSCRIBER_BASE + s) for s in (0, subscribers // 2, subscribers - 1)]
        sessions_before = {s: pair.sessions(s) for s in subs}
        while pair.lg.poll() is None:
            if pair.eph.poll() is not None:
                raise RuntimeError("ephemera exited %d during the flood:\n%s" % (
                    pair.eph.returncode, lab.read(pair.eph_log)[-4000:]))
            pair.capture_when_draining()
            time.sleep(0.2)
        with open(pair.report_path) as f:
            report = json.load(f)
        sessions_after = {s: pair.sessions(s) for s in subs}
        gone, moved = compare_sessions(sessions_before, sessions_after)
        gauges = gauge_checks(pair)
        exit_report = pair.stop_ephemera()
        if exit_report is None:
            raise RuntimeError("ephemera left no exit report:\n" + lab.read(pair.eph_log)[-3000:])
    finally:
        pair.close()
    totals = exit_totals(exit_report)
    lg = report["counters"]
    kinds = report["flood"]["kinds"]
    inside = sum(k["sent"] for k in kinds if k["side"] == "inside")
    outside = sum(k["sent"] for k in kinds if k["side"] == "outside")
    checks = counter_checks.ephemera_checks(totals) + gauges + \
        counter_checks.wire_checks(totals, lg, inside, outside) + ethdev_checks(pair.quiet) + \
        counter_checks.flood_checks(totals, lg, kinds)
    ethdev = (pair.quiet or {}).get("ethdev")
    ll = report.get("long_lived", {})
    fl = report["flood"]
    result = {
        "kind": "flood", "flood": kind, "workers": args.workers,
        "ephemera_command": " ".join(pair.eph_cmd), "loadgen_command": " ".join(pair.lg_cmd),
        "sent": fl.get("sent"), "sent_mpps": fl.get("sent_mpps"),
        "offers": fl.get("offers"), "offers_ring_full": fl.get("offers_ring_full"),
        "kinds": kinds,
        "flows_mpps": {w: {"out": fl[w]["out_mpps"], "back": fl[w]["back_mpps"],
                           "sent": fl[w]["sent_mpps"]}
                       for w in ("before", "during", "after") if w in fl},
        "mistranslations": report["checks"]["mistranslations"],
        "long_lived": ll,
        "watched_sessions": {"subscribers": subs,
                             "sessions": sum(len(v) for v in sessions_before.values()),
                             "gone": gone, "moved": moved},
        "established_flows_lost": (ll.get("flows", 0) - ll.get("established", 0)) +
        ll.get("silent_at_end", 0) + ll.get("over_gap_limit", 0) + len(gone) + len(moved),
        "loadgen_totals": report["totals"],
        "drops": {k: v for k, v in totals.items() if k.startswith("drop_") and v},
        "ephemera_totals": {k: v for k, v in totals.items() if v},
        "ethdev": ethdev,
        "checks": checks,
    }
    result["passed"] = (result["mistranslations"] == 0 and result["established_flows_lost"] == 0
                        and all(c["holds"] for c in checks))
    print_flood(result)
    return result


def print_flood(r):
    log("flood %s: %s" % (r["flood"], "PASSED" if r["passed"] else "FAILED"))
    log("  flood frames sent %d (%.3f Mpps); the NAT's RX ring was full at %.1f %% of %d offers" % (
        r["sent"] or 0, r["sent_mpps"] or 0,
        100.0 * (r["offers_ring_full"] or 0) / max(1, r["offers"] or 0), r["offers"] or 0))
    for w, m in r["flows_mpps"].items():
        log("  well-behaved flows %-6s sent %.4f, out %.4f, back %.4f Mpps" % (
            w, m["sent"], m["out"], m["back"]))
    ll = r["long_lived"]
    log("  well-behaved flows: %s of %s established, %s silent at the end, %s with a gap over %s "
        "s (longest %.2f s); established flows lost %d; mistranslations %d; lost out %d back %d" % (
            ll.get("established"), ll.get("flows"), ll.get("silent_at_end"),
            ll.get("over_gap_limit"), ll.get("gap_limit_s"), ll.get("max_gap_s", 0),
            r["established_flows_lost"], r["mistranslations"], r["loadgen_totals"]["lost_out"],
            r["loadgen_totals"]["lost_back"]))
    log("  drops by reason: %s" % json.dumps(r["drops"]))
    print_checks(r["checks"])


# ---- main ------------------------------------------------------------------------------------


def main():
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--duration", type=float, default=3600, help="soak seconds (default 3600)")
    ap.add_argument("--reconfig-every", type=float, default=60,
                    help="seconds between live changes (default 60)")
    ap.add_argument("--sighup-every", type=float, default=150,
                    help="seconds between SIGHUPs (default 150)")
    ap.add_argument("--sample-every", type=float, default=10,
                    help="seconds between VmRSS samples (default 10)")
    ap.add_argument("--rss-warmup", type=float,
                    help="seconds of the soak before VmRSS must stay flat (default: a quarter "
                         "of the duration)")
    ap.add_argument("--quick", action="store_true",
                    help="a few minutes: 300 s soak, a change every 15 s, SIGHUP every 40 s, "
                         "floods of 20 s")
    ap.add_argument("--floods-only", action="store_true", help="no soak, only the floods")
    ap.add_argument("--no-floods", action="store_true", help="only the soak")
    ap.add_argument("--floods", default="syn,outside,malformed",
                    help="which floods, comma separated (default all three)")
    ap.add_argument("--json", help="write the results here (default BUILD/soak.json)")
    ap.add_argument("--build", default=os.path.join(lab.ROOT, "build"),
                    help="a release build of ephemera (default build/, scripts/build.sh)")
    ap.add_argument("--workers", type=int, default=2, help="ephemera workers (default 2)")
    ap.add_argument("--eal-mem", type=int, default=1024, help="ephemera's EAL -m in MiB")
    ap.add_argument("--nice", type=int, default=0, help="run ephemera and the generator at "
                    "this niceness (the driver itself is niced by the caller)")
    soak_opts = ap.add_argument_group("soak load")
    soak_opts.add_argument("--subscribers", type=int, default=1024)
    soak_opts.add_argument("--flows", type=int, default=32, help="per subscriber")
    soak_opts.add_argument("--rate", type=float, default=4000, help="packets/s sent")
    soak_opts.add_argument("--churn", type=float, default=50, help="flows/s given a new port")
    soak_opts.add_argument("--long-lived-subscribers", type=int, default=64,
                           help="the first N subscribers' flows never churn")
    soak_opts.add_argument("--gap-limit", type=float, default=60,
                           help="seconds without a reply that count a long-lived flow as lost")
    soak_opts.add_argument("--max-sessions", type=int, default=65536)
    fl = ap.add_argument_group("floods")
    fl.add_argument("--flood-duration", type=float, default=60)
    fl.add_argument("--flood-before", type=float, default=20)
    fl.add_argument("--flood-after", type=float, default=30)
    fl.add_argument("--flood-rate", type=float, default=0,
                    help="flood frames/s per side; 0 (default): the generator's full rate")
    fl.add_argument("--flood-subscribers", type=int, default=256)
    fl.add_argument("--flood-flows", type=int, default=16)
    fl.add_argument("--flood-wb-rate", type=float, default=20000,
                    help="the well-behaved flows' packets/s")
    fl.add_argument("--flood-gap-limit", type=float, default=5)
    fl.add_argument("--flood-sources", type=int, default=1 << 20,
                    help="syn flood: subscriber addresses it comes from")
    fl.add_argument("--flood-max-sessions", type=int, default=65536)
    args = ap.parse_args()
    if args.quick:
        args.duration = min(args.duration, 300)
        args.reconfig_every = min(args.reconfig_every, 15)
        args.sighup_every = min(args.sighup_every, 40)
        args.sample_every = min(args.sample_every, 5)
        args.flood_duration = min(args.flood_duration, 20)
        args.flood_before = min(args.flood_before, 10)
        args.flood_after = min(args.flood_after, 15)
    if args.rss_warmup is None:
        args.rss_warmup = args.duration / 4
    if os.geteuid() != 0:
        sys.exit("soak: needs root (DPDK, /run/ephemera-load)")
    for tool in (("control", "ephemera"), ("bench", "loadgen", "ephemera-loadgen"),
                 ("tools", "ephemeractl", "ephemeractl")):
        if not os.path.exists(os.path.join(args.build, *tool)):
            sys.exit("soak: %s not built (scripts/build.sh)" % os.path.join(args.build, *tool))
    os.makedirs(lab.SOCKET_DIR, exist_ok=True)
    json_path = args.json or os.path.join(args.build, "soak.json")
    tmp = tempfile.mkdtemp(prefix="ephemera-soak-")
    log("soak: logs and run files in %s" % tmp)

    # A signal to the driver ends the run through the finally clauses (processes stopped,
    # sockets and EAL directories removed), as an exception does.
    def on_signal(sig, _frame):
        raise SystemExit("soak: signal %d" % sig)
    for sig in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, on_signal)

    results = {"started": time.strftime("%Y-%m-%d %H:%M:%S"), "tmp": tmp, "runs": []}
    ok = True
    soak = None
    try:
        if not args.floods_only:
            soak = Soak(args, tmp)
            try:
                results["runs"].append(soak.run())
            finally:
                soak.pair.close()
        if not args.no_floods:
            for kind in args.floods.split(","):
                try:
                    results["runs"].append(flood_run(args, tmp, kind))
                except (RuntimeError, subprocess.SubprocessError, OSError) as e:
                    log("flood %s: %s" % (kind, e))
                    results["runs"].append({"kind": "flood", "flood": kind, "passed": False,
                                            "error": str(e)[-4000:]})
    except (RuntimeError, subprocess.SubprocessError, OSError) as e:
        log("soak: %s" % e)
        results["error"] = str(e)[-4000:]
        ok = False
    finally:
        if soak is not None and soak.changes:
            results.setdefault("partial_changes", soak.changes)
        results["ended"] = time.strftime("%Y-%m-%d %H:%M:%S")
        with open(json_path, "w") as f:
            json.dump(results, f, indent=2)
        log("JSON: %s" % json_path)
    ok = ok and all(r["passed"] for r in results["runs"])
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
