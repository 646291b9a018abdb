"""One-command load run of ephemera over memif, after RFC 9693 (benchmarking stateful NAT44).

For each session count (64 K, 1 M, 4 M, 16 M; --quick: 64 K and 1 M) it runs, on the same memif
topology and interleaved A B A B:
  A  the floor: dpdk-testpmd --forward-mode=io in ephemera's place (ephemera-loadgen with
     --expect-untranslated, so replies are built from what arrives)
  B  ephemera, one worker, limits.max_sessions = the session count
and reports, per size: established-flow Mpps each way (RFC 9693 throughput with pseudorandom
ports), new sessions per second (connection establishment rate, from the populate phase), each
as a ratio to the floor measured in the same run, latency at half the measured rate, the NAT's
memory (VmRSS, VmHWM and the EAL -m it was given), and a 2-worker run at 1 M (multi-worker
scaling; on 2 CPUs the second worker shares CPU 0 with the generator). --teardown adds the
tear-down rate: 1 M UDP sessions at the 120 s timeout, watched expiring through telemetry.

--live-changes runs instead, at one size (--sizes, default 1M) and 1 then 2 workers
(--live-workers): while established traffic flows, rounds of `ephemeractl reset pauses`, then
one change (`pool add`, `pool remove`, `set pool.port_range`, or none: the baseline), then
`ephemeractl show pauses`; it reports per kind of change the longest iteration any worker saw,
the longest that took up the change (target: under 50 us, LIVE_TARGET_US), and the packets the
NAT translated while each change was under way (see live_changes()).

--logging-cost runs instead, at each of --sizes (default 64K,1M), --reps pairs of ephemera runs
interleaved: NAT event logging off, then on (the mode's default events into the archive, in a
temporary directory, and IPFIX over UDP to a socket this script holds), and reports the
session-create rate of each, their ratio (target: on within 10 % of off, issue 13 point 4), and
the records handed over and dropped at the workers' rings (target: 0 at the default ring size).
The logging thread shares CPU 0 with the generator, as the control lcore does; its CPU time per
record (schedstat of the thread named eph-logging) is reported. --logging-idle adds a third run
per pair with that thread at SCHED_IDLE and a ring holding the whole populate phase, as if it
had a core of its own: the rate then shows the workers' own cost of logging.

Each run reports how much of its CPU each polling thread had while measuring (schedstat); a
pair counts as clean when all had at least --min-cpu-share, and ratios come from clean pairs
(see summarise()). A host shared with other work makes unclean pairs; up to --extra-pairs more
are run per size then. docs/performance.md has the method and the figures.

CPU layout (2 CPUs): the generator on CPU 0 (EAL lcore 0); ephemera's worker on CPU 1 and its
main (control) lcore on CPU 0, where it sleeps 10 ms per loop; testpmd likewise (forwarding
lcore on CPU 1, main lcore on CPU 0 printing stats once a second).

Memory: 2 MB hugepages when they can be had (bench/hugepages.py: nr_hugepages raised only as far
as the largest pair of processes needs, a private hugetlbfs mount given to every DPDK process as
--huge-dir, everything given back at the end, also on failure or Ctrl-C); otherwise, or with
--no-huge, 4 KiB pages as before (--no-huge -m N), with a one-line note saying why. The header
line, the end of the table and the JSON ("memory") say which. Memory on hugepages is not in
VmRSS, so the NAT's memory is reported as VmRSS + HugetlbPages.

Run as root through bench/load-run.sh. Debian's /usr/bin/python3, standard library only.
"""

import argparse
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time

from memif_lab import (CpuShare, Telemetry, describe_revision, ephemera_command,
                       loadgen_command, log, named_thread_cpu_ns, proc_status, read,
                       remove_run_files, start, stop, wait_for_sockets, ROOT, SOCKET_DIR)
import memif_lab
import hugepages

POOL = "198.19.0.0/24"         # 254 addresses: 16 M sessions use about half their ports
PORT_RANGE = "1024-65535"
FLOWS_PER_SUBSCRIBER = 64       # CSIT-like: hosts x ports

SIZES = {"64K": 1 << 16, "1M": 1 << 20, "4M": 1 << 22, "16M": 1 << 24}

# The longest a worker may go unpolled because of a config change (the project's issue, point 3).
LIVE_TARGET_US = 50
# Pool addresses --live-changes adds and removes: outside POOL, so the generator's checks (which
# know only POOL) never see them; established flows make no new mappings on them anyway.
LIVE_EXTRA_ADDRESS = "198.19.1.%d"
# The range --live-changes narrows to and back: inside PORT_RANGE, so every port the generator
# sees stays one it accepts; the narrowing leaves ports 60001-65535 in use outside the range.
LIVE_NARROW_RANGE = "1024-60000"

LOADGEN_MEM_MIB = 512   # mbufs (64 K x 2.2 KiB) and rings; the flow records live on the C++ heap
TESTPMD_MEM_MIB = 512


def dut_mem_mib(sessions, workers):
    """(max_sessions, EAL MiB) of ephemera for a run of `sessions` with `workers`."""
    max_sessions = sessions if workers == 1 else sessions + sessions // 16
    return max_sessions, memif_lab.ephemera_mem_mib(max_sessions, workers)


# --logging-idle: a ring that holds every record of the largest populate phase while the
# logging thread waits for a CPU (a power of two above 1M sessions and their few extra records).
LOGGING_IDLE_RING = 1 << 21


def logging_ring_mib(ring, workers):
    """EAL memory of `workers` NAT event rings of `ring` 56-byte records, with room to spare."""
    return (ring * 56 * workers >> 20) + 16


def memory_budget_mib(sizes, scaling, teardown_run):
    """The most EAL memory two processes of one run (generator and NAT or floor) take: what the
    hugepage reservation has to hold."""
    dut = TESTPMD_MEM_MIB
    for label, sessions in sizes:
        dut = max(dut, dut_mem_mib(sessions, 1)[1])
        if label == "1M" and scaling:
            dut = max(dut, dut_mem_mib(sessions, 2)[1])
    if teardown_run:
        dut = max(dut, dut_mem_mib(SIZES["1M"], 1)[1])
    return LOADGEN_MEM_MIB + dut


def ephemera_config(max_sessions, udp_timeout=None, logging=None):
    text = memif_lab.ephemera_config(
        [POOL], PORT_RANGE, max_sessions,
        timeouts=None if udp_timeout is None else {"udp": udp_timeout},
        comment="written by bench/load_run.py")
    if logging is not None:
        archive, ipfix_port, ring = logging[:3]
        if ring:
            text += "\n".join(["", "[logging]", "ring_size = %d" % ring])
        text += "\n".join(["", "[[logging.ipfix]]",
                           'collector = "127.0.0.1:%d"' % ipfix_port,
                           "[logging.archive]", 'path = "%s"' % archive, ""])
    return text


class Runner:
    def __init__(self, args):
        self.args = args
        self.build = args.build
        self.loadgen = os.path.join(self.build, "bench", "loadgen", "ephemera-loadgen")
        self.ephemera = os.path.join(self.build, "control", "ephemera")
        self.ephemeractl = os.path.join(self.build, "tools", "ephemeractl", "ephemeractl")
        self.tmp = tempfile.mkdtemp(prefix="ephemera-load-")
        self.count = 0
        self.children = []
        self.memory = None  # the hugepages.Reservation, set by main()
        self.current = None  # the name of the run under way, for cleanup()

    # ---- one measurement ------------------------------------------------------------------

    def run_one(self, kind, sessions, workers=1, udp_timeout=None, keep_running=False,
                live=False, logging=None):
        """kind: 'floor' or 'ephemera'. Returns a result dict. With keep_running the NAT is
        left running after the generator is done (result "_dut", "_telemetry"): the
        tear-down measurement watches it expire its sessions. With live (ephemera only) the
        measure phase lasts --live-duration s, without a latency phase, and live_changes()
        runs once it has started (result "live_changes")."""
        self.count += 1
        name = "lr%d-%d" % (os.getpid(), self.count)
        self.current = name
        subs = sessions // FLOWS_PER_SUBSCRIBER
        out_json = os.path.join(self.tmp, name + ".json")
        lg_log = os.path.join(self.tmp, name + "-loadgen.log")
        pid_file = os.path.join(self.tmp, name + ".pid")
        dut_log = os.path.join(self.tmp, name + "-%s.log" % kind)
        jsonl = os.path.join(self.tmp, name + "-loadgen.jsonl")
        duration = 1 if keep_running else self.args.live_duration if live else \
            self.args.duration
        lg_cmd = loadgen_command(self.loadgen, name, [
            "-S", str(subs), "-F", str(FLOWS_PER_SUBSCRIBER),
            "--proto", "udp" if keep_running else self.args.proto,
            "--frame-size", str(self.args.frame_size),
            "--duration", str(duration), "--warmup", "1",
            "--latency-load", "0" if keep_running or live else "0.5",
            "--stats-jsonl", jsonl,
            "--latency-duration", str(self.args.latency_duration),
            "--queues", str(workers), "--steering", "rss",
            "--pool", POOL, "--port-range", PORT_RANGE,
            "--ready-timeout", "300", "--json", out_json, "--peer-pid-file", pid_file,
        ], eal_mem_mib=LOADGEN_MEM_MIB, memory=self.memory)
        if kind == "floor":
            lg_cmd.append("--expect-untranslated")
        lg = start(lg_cmd, lg_log)
        self.children.append(lg)
        wait_for_sockets(lg, name, lg_log)

        result = {"kind": kind, "sessions": sessions, "workers": workers, "name": name}
        prefix = "dut-" + name
        if kind == "floor":
            mem = TESTPMD_MEM_MIB
            dut_cmd = ["dpdk-testpmd", "-l", "0,1"] + memif_lab.eal_memory_args(
                mem, self.memory) + ["--no-pci", "--file-prefix", prefix] + \
                memif_lab.memif_vdevs(name) + [
                "--", "--forward-mode=io", "--stats-period", "1", "--nb-cores=1",
                "--total-num-mbufs=32768", "--no-mlockall", "--rxq=1", "--txq=1"]
        else:
            cfg_path = os.path.join(self.tmp, name + ".toml")
            max_sessions, mem = dut_mem_mib(sessions, workers)
            if logging is not None and logging[2]:
                mem += logging_ring_mib(logging[2], workers)
            with open(cfg_path, "w") as f:
                f.write(ephemera_config(max_sessions, udp_timeout, logging))
            dut_cmd = ephemera_command(self.ephemera, name, cfg_path, workers, mem,
                                       memory=self.memory)
            result["max_sessions"] = max_sessions
        result["eal_mem_mib"] = mem
        result["eal_memory"] = self.memory.label if self.memory else "4 KiB pages (--no-huge)"
        result["dut_command"] = " ".join(dut_cmd)
        dut = start(dut_cmd, dut_log)
        self.children.append(dut)
        with open(pid_file, "w") as f:
            f.write("%d\n" % dut.pid)

        peak = {}
        huge_peak = 0
        telemetry = Telemetry(prefix)
        share = CpuShare()
        changes_done = not live
        # --logging-idle: the logging thread runs only on a CPU nothing else wants (SCHED_IDLE),
        # as if it had a core of its own: the NAT's rate then shows only the workers' cost.
        idle_logging = logging is not None and len(logging) > 3 and logging[3]
        while lg.poll() is None:
            if idle_logging and not result.get("logging_thread_idle"):
                result["logging_thread_idle"] = set_thread_idle(dut.pid, "eph-logging")
            if not changes_done and loadgen_phase(jsonl) == "measure":
                changes_done = True
                result["live_changes"] = live_changes(self.ephemeractl, prefix, telemetry,
                                                      jsonl, self.args.live_rounds)
            st = proc_status(dut.pid)
            if st:
                peak = st
                huge_peak = max(huge_peak, st.get("HugetlbPages", 0))
            share.sample("loadgen", lg.pid, True)
            share.sample(kind, dut.pid, False)
            if dut.poll() is not None:
                lg.send_signal(signal.SIGKILL)
                lg.wait()
                raise RuntimeError("%s exited %d during the run:\n%s" % (
                    kind, dut.returncode, read(dut_log)[-4000:]))
            time.sleep(0.5)
        result["cpu"] = share.result()
        if not os.path.exists(out_json):
            raise RuntimeError("loadgen exited %d without a report:\n%s" % (
                lg.returncode, read(lg_log)[-4000:]))
        st = proc_status(dut.pid)
        result["dut_vmrss_kib"] = st.get("VmRSS", peak.get("VmRSS", 0))
        result["dut_vmhwm_kib"] = st.get("VmHWM", peak.get("VmHWM", 0))
        result["dut_hugetlb_kib"] = max(st.get("HugetlbPages", 0), huge_peak)
        if kind == "ephemera":
            try:
                result["ephemera_stats"] = telemetry.query("/ephemera/stats")
            except (OSError, ValueError) as e:
                result["ephemera_stats_error"] = str(e)
            if logging is not None:
                # What the NAT event log cost the control side, on whichever CPU it ran:
                # the logging thread and the archive's compressor.
                result["logging_thread_cpu_ns"] = named_thread_cpu_ns(dut.pid, "eph-logging")
                result["compressor_cpu_ns"] = named_thread_cpu_ns(dut.pid, "eph-compress")
        result["loadgen_rc"] = lg.returncode
        with open(out_json) as f:
            result["loadgen"] = json.load(f)
        if keep_running:
            result["_dut"] = dut
            result["_telemetry"] = telemetry
            return result
        stop(dut)
        remove_run_files(name, self.memory)
        self.children = []
        return result

    def cleanup(self):
        for p in self.children:
            if p.poll() is None:
                p.kill()
                p.wait()
        if self.current is not None:
            # No process of this run is left: its sockets, runtime directories and page files
            # go too (a run cut short by an error or Ctrl-C leaves them).
            remove_run_files(self.current, self.memory)
        if self.memory is not None:
            self.memory.remove_page_files()


# ---- summary ---------------------------------------------------------------------------------


def metrics(r):
    lg = r["loadgen"]
    m = lg.get("measure", {})
    lat = lg.get("latency", {})
    pop = lg.get("populate", {})
    tot = lg.get("totals", {})
    sent = tot.get("sent", 0) or 1
    return {
        "out_mpps": m.get("out_mpps", 0.0),
        "back_mpps": m.get("back_mpps", 0.0),
        "sessions_per_s": pop.get("sessions_per_s", 0.0),
        "established": pop.get("established", 0),
        "loss": (tot.get("lost_out", 0) + tot.get("lost_back", 0)) / sent,
        "mistranslations": lg["checks"]["mistranslations"],
        "loadgen_busy": m.get("loadgen_busy", 0.0),
        "rtt50_us": lat.get("latency_rtt_us", {}).get("p50", 0.0),
        "rtt99_us": lat.get("latency_rtt_us", {}).get("p99", 0.0),
        "rtt999_us": lat.get("latency_rtt_us", {}).get("p99.9", 0.0),
        "rtt_max_us": lat.get("latency_rtt_us", {}).get("max", 0.0),
        "latency_rate_mpps": lat.get("rate_limit_pps", 0.0) / 1e6,
        # CPU share of the polling threads over the measure window (from the loadgen, which
        # reads both sides' schedstat), and CPU time per round trip: an upper bound of each
        # side's cost, exact for the side that sets the pace.
        "cpu_loadgen": m.get("cpu", {}).get("loadgen_share", 0.0),
        "cpu_dut": m.get("cpu", {}).get("peer_share", 0.0),
        "ns_rt_loadgen": m.get("cpu", {}).get("loadgen_ns_per_round_trip", 0.0),
        "ns_rt_dut": m.get("cpu", {}).get("peer_ns_per_round_trip", 0.0),
    }


def set_thread_idle(pid, name):
    """SCHED_IDLE for the threads of `pid` called `name`; whether one was found."""
    found = False
    try:
        for tid in os.listdir("/proc/%d/task" % pid):
            with open("/proc/%d/task/%s/comm" % (pid, tid)) as f:
                if f.read().strip() == name:
                    os.sched_setscheduler(int(tid), os.SCHED_IDLE, os.sched_param(0))
                    found = True
    except OSError:
        pass
    return found


def median(xs):
    xs = [x for x in xs if x is not None]
    return statistics.median(xs) if xs else 0.0


def clean(r, min_share):
    """Did both polling threads (generator and one-worker peer) have their CPU for most of the
    measure window? On a shared host other processes take turns on the same CPUs."""
    m = metrics(r)
    return m["cpu_loadgen"] >= min_share and m["cpu_dut"] >= min_share


def summarise(results, sizes, min_share):
    """For each size and worker count, figures from the best basis there is ("basis"):
      paired    A B pairs in which both runs had their CPUs (>= min_share of the window): the
                ratio per pair, then the median over pairs
      unpaired  no clean pair, but clean floor runs and clean ephemera runs: medians of each,
                ratio of the medians (drift between runs is not cancelled)
      unclean   neither: medians of every run, ratio of medians; on a host where other work
                takes the CPUs these say little
    A 2-worker run shares CPU 0 with the generator by design, so only its floor is judged."""
    rows = []
    for label, sessions in sizes:
        for workers in (1, 2):
            pairs = []
            for r in results:
                if r["sessions"] != sessions or r["kind"] != "ephemera" or \
                        r["workers"] != workers:
                    continue
                floor = [f for f in results if f["sessions"] == sessions and
                         f["kind"] == "floor" and f["pair"] == r["pair"]]
                if floor:
                    pairs.append((floor[0], r))
            if not pairs:
                continue
            good = [(f, e) for f, e in pairs
                    if clean(f, min_share) and (workers > 1 or clean(e, min_share))]
            floors = list({id(f): f for f, _ in pairs}.values())
            clean_floors = [f for f in floors if clean(f, min_share)]
            clean_ephs = [e for _, e in pairs if workers > 1 or clean(e, min_share)]
            if good:
                basis = "paired"
                fm = [metrics(f) for f, _ in good]
                em = [metrics(e) for _, e in good]
            elif clean_floors and clean_ephs:
                basis = "unpaired"
                fm = [metrics(f) for f in clean_floors]
                em = [metrics(e) for e in clean_ephs]
            else:
                basis = "unclean"
                fm = [metrics(f) for f in floors]
                em = [metrics(e) for _, e in pairs]

            def ratio(key):
                if basis == "paired":
                    return median([e[key] / f[key] if f[key] else None
                                   for f, e in zip(fm, em)])
                f = median([m[key] for m in fm])
                return median([m[key] for m in em]) / f if f else 0.0

            last = pairs[-1][1]
            row = {
                "size": label, "sessions": sessions, "workers": workers,
                "pairs": len(pairs), "clean_pairs": len(good), "basis": basis,
                "runs_used": [len(fm), len(em)],
                "floor_out_mpps": median([m["out_mpps"] for m in fm]),
                "floor_back_mpps": median([m["back_mpps"] for m in fm]),
                "out_mpps": median([m["out_mpps"] for m in em]),
                "back_mpps": median([m["back_mpps"] for m in em]),
                "out_ratio": ratio("out_mpps"),
                "back_ratio": ratio("back_mpps"),
                "floor_new_per_s": median([m["sessions_per_s"] for m in fm]),
                "new_sessions_per_s": median([m["sessions_per_s"] for m in em]),
                "new_ratio": ratio("sessions_per_s"),
                "established": min(m["established"] for m in em),
                "loss": max(m["loss"] for m in em),
                "floor_loss": max(m["loss"] for m in fm),
                "mistranslations": sum(metrics(r)["mistranslations"]
                                       for f, e in pairs for r in (f, e)),
                "loadgen_busy_floor": median([m["loadgen_busy"] for m in fm]),
                "loadgen_busy": median([m["loadgen_busy"] for m in em]),
                "cpu_loadgen_floor": median([m["cpu_loadgen"] for m in fm]),
                "cpu_testpmd": median([m["cpu_dut"] for m in fm]),
                "cpu_loadgen": median([m["cpu_loadgen"] for m in em]),
                "cpu_ephemera": median([m["cpu_dut"] for m in em]),
                "ns_per_round_trip_testpmd": median([m["ns_rt_dut"] for m in fm]),
                "ns_per_round_trip_ephemera": median([m["ns_rt_dut"] for m in em]),
                "ns_per_round_trip_loadgen_floor": median([m["ns_rt_loadgen"] for m in fm]),
                "ns_per_round_trip_loadgen": median([m["ns_rt_loadgen"] for m in em]),
                "latency_rate_mpps": median([m["latency_rate_mpps"] for m in em]),
                "rtt50_us": median([m["rtt50_us"] for m in em]),
                "rtt99_us": median([m["rtt99_us"] for m in em]),
                "rtt999_us": median([m["rtt999_us"] for m in em]),
                "floor_rtt50_us": median([m["rtt50_us"] for m in fm]),
                "floor_rtt99_us": median([m["rtt99_us"] for m in fm]),
                "eal_mem_mib": last["eal_mem_mib"],
                "max_sessions": last.get("max_sessions"),
                "vmrss_mib": max(e["dut_vmrss_kib"] for _, e in pairs) / 1024,
                "hugetlb_mib": max(e.get("dut_hugetlb_kib", 0) for _, e in pairs) / 1024,
                "mem_mib": max(e["dut_vmrss_kib"] + e.get("dut_hugetlb_kib", 0)
                               for _, e in pairs) / 1024,
                "vmhwm_mib": max(e["dut_vmhwm_kib"] for _, e in pairs) / 1024,
                "floor_vmrss_mib": max(f["dut_vmrss_kib"] for f, _ in pairs) / 1024,
            }
            stats = last.get("ephemera_stats") or {}
            row["ephemera_drops"] = {k: v for k, v in stats.items()
                                     if k.startswith("drop_") and v}
            row["live_sessions"] = stats.get("live_sessions")
            rows.append(row)
    # Memory per session: the growth of VmRSS (+ HugetlbPages) between the smallest and the
    # largest table.
    one = [r for r in rows if r["workers"] == 1]
    if len(one) >= 2:
        lo, hi = one[0], one[-1]
        if hi["sessions"] > lo["sessions"]:
            per = (hi["mem_mib"] - lo["mem_mib"]) * (1 << 20) / (hi["sessions"] -
                                                                     lo["sessions"])
            for r in rows:
                r["bytes_per_session_incremental"] = per
    return rows


def print_table(rows, memory=None):
    log("")
    if memory:
        log("memory: %s" % (memory["note"] or memory["memory"]))
    log("%-4s %s | %-17s | %-17s | %-11s | %-19s | %-7s | %-17s | %-13s | %s" % (
        "size", "w", "floor Mpps o/b", "ephemera Mpps o/b", "ratio o/b", "new sess/s (ratio)",
        "loss", "RTT@50% p50/p99", "CPU eph/lg %", "RSS+huge MiB (-m)"))
    for r in rows:
        log("%-4s %d | %7.3f / %-7.3f | %7.3f / %-7.3f | %4.2f / %-4.2f | %9.0f (%5.2f)  | "
            "%-7.1e | %6.1f / %-7.1f us | %5.0f / %-5.0f | %6.0f (%d)%s" % (
                r["size"], r["workers"], r["floor_out_mpps"], r["floor_back_mpps"],
                r["out_mpps"], r["back_mpps"], r["out_ratio"], r["back_ratio"],
                r["new_sessions_per_s"], r["new_ratio"], r["loss"], r["rtt50_us"],
                r["rtt99_us"], 100 * r["cpu_ephemera"], 100 * r["cpu_loadgen"], r["mem_mib"],
                r["eal_mem_mib"],
                {"paired": "", "unpaired": "  (clean runs, unpaired)",
                 "unclean": "  (no clean run: CPU shared)"}[r["basis"]]))
    if rows and "bytes_per_session_incremental" in rows[0]:
        log("memory per session (VmRSS + HugetlbPages growth %s -> %s): %.0f bytes" % (
            [r for r in rows if r["workers"] == 1][0]["size"],
            [r for r in rows if r["workers"] == 1][-1]["size"],
            rows[0]["bytes_per_session_incremental"]))
    log("mistranslations over all runs: %d" % sum(r["mistranslations"] for r in rows))
    for r in rows:
        if r["ephemera_drops"]:
            log("ephemera drops at %s, %d worker(s): %s" % (r["size"], r["workers"],
                                                            r["ephemera_drops"]))


# ---- config changes under load (--live-changes) ----------------------------------------------


def loadgen_phase(jsonl):
    """The generator's phase from the last whole line of its --stats-jsonl file (written once a
    second), or None before the first."""
    try:
        with open(jsonl, "rb") as f:
            f.seek(0, os.SEEK_END)
            f.seek(max(0, f.tell() - 8192))
            lines = f.read().decode(errors="replace").splitlines()
    except OSError:
        return None
    for line in reversed(lines):
        try:
            return json.loads(line)["phase"]
        except (ValueError, KeyError):
            continue
    return None


def ctl(binary, prefix, *argv):
    """Runs `ephemeractl --prefix PREFIX --json ARGV`: (exit status, reply or None, wall ms)."""
    t0 = time.monotonic()
    r = subprocess.run([binary, "--prefix", prefix, "--json"] + list(argv),
                       capture_output=True, text=True, timeout=30)
    ms = (time.monotonic() - t0) * 1e3
    try:
        data = json.loads(r.stdout) if r.stdout.strip() else None
    except ValueError:
        data = None
    if r.returncode != 0:
        log("ephemeractl %s: exit %d: %s" % (" ".join(argv), r.returncode, r.stderr.strip()))
    return r.returncode, data, ms


def translated(telemetry):
    st = telemetry.query("/ephemera/stats", timeout=2.0) or {}
    return st.get("in2out_translated", 0) + st.get("out2in_translated", 0)


def change_window(binary, prefix, telemetry, change, idle_s):
    """One measurement: restart every worker's pause window, make `change` (ephemeractl
    arguments; None: wait idle_s instead, the baseline), wait until every worker has taken the
    plan up, then read the windows. Packets are the NAT's translated count (both ways) from just
    before the change to just after every worker took it up."""
    rc, _, _ = ctl(binary, prefix, "reset", "pauses")
    if rc != 0:
        return {"error": "reset pauses failed (exit %d)" % rc}
    p0, t0 = translated(telemetry), time.monotonic()
    out = {"change": " ".join(change) if change else None}
    if change:
        rc, reply, ms = ctl(binary, prefix, *change)
        out.update(rc=rc, reply=reply, ctl_ms=ms)
    else:
        time.sleep(idle_s)
    deadline = time.monotonic() + 5
    while True:
        _, pauses, _ = ctl(binary, prefix, "show", "pauses")
        if pauses is None:
            out["error"] = "show pauses failed"
            return out
        if not change or min(pauses["plans_taken"]) >= 1 or time.monotonic() > deadline:
            break
        time.sleep(0.01)
    p1, t1 = translated(telemetry), time.monotonic()
    out.update(seconds=t1 - t0, packets=p1 - p0, pauses=pauses,
               longest_iteration_us=max(pauses["longest_iteration_us"]),
               longest_plan_iteration_us=max(pauses["longest_plan_iteration_us"]),
               longest_take_up_us=max(pauses["longest_take_up_us"]),
               plans_taken=pauses["plans_taken"])
    return out


def live_changes(binary, prefix, telemetry, jsonl, rounds):
    """Rounds of changes while the generator is in its measure phase, interleaved with a
    baseline window of no change: the longest iteration of a baseline window is what the host
    alone does to the workers (preemption on a shared CPU counts: the queues see it too), the
    longest plan iteration of a change window is what taking up the change cost. Stops early
    (and says so) when the measure phase ends."""
    windows = []
    idle_s = 0.1
    stopped_early = False
    for i in range(rounds):
        address = LIVE_EXTRA_ADDRESS % (i + 1)
        plan = [("none (baseline)", None),
                ("pool add", ["pool", "add", address]),
                ("set pool.port_range", ["set", "pool.port_range", LIVE_NARROW_RANGE]),
                ("pool remove", ["pool", "remove", address]),
                ("set pool.port_range", ["set", "pool.port_range", PORT_RANGE])]
        for kind, change in plan:
            if loadgen_phase(jsonl) != "measure":
                stopped_early = True
                break
            w = change_window(binary, prefix, telemetry, change, idle_s)
            w["kind"], w["round"] = kind, i + 1
            windows.append(w)
            if change and "seconds" in w:
                idle_s = w["seconds"]  # baseline windows as long as change windows
        if stopped_early:
            log("live changes: the measure phase ended after %d of %d rounds (raise "
                "--live-duration)" % (i, rounds))
            break
    return {"rounds": rounds, "stopped_early": stopped_early, "target_us": LIVE_TARGET_US,
            "windows": windows}


def live_summary(runs):
    """Per worker count and kind of change: the longest iteration and the longest plan
    iteration any worker saw over the rounds (and their medians), the packets translated while
    the changes were under way and at what rate, against the 50 us target."""
    rows = []
    for r in runs:
        windows = r.get("live_changes", {}).get("windows", [])
        kinds = []
        for w in windows:
            if w.get("kind") not in kinds:
                kinds.append(w.get("kind"))
        for kind in kinds:
            ws = [w for w in windows if w.get("kind") == kind and "pauses" in w]
            if not ws:
                continue
            changes = kind != "none (baseline)"
            plan_us = [w["longest_plan_iteration_us"] for w in ws]
            any_us = [w["longest_iteration_us"] for w in ws]
            take_up_us = [w["longest_take_up_us"] for w in ws]
            secs = sum(w["seconds"] for w in ws)
            packets = sum(w["packets"] for w in ws)
            rows.append({
                "workers": r["workers"], "sessions": r["sessions"], "kind": kind,
                "windows": len(ws),
                "refused": sum(1 for w in ws if w.get("rc", 0) != 0),
                "took_up": sum(1 for w in ws if min(w["plans_taken"]) >= 1) if changes else None,
                "longest_plan_iteration_us_max": max(plan_us) if changes else None,
                "longest_plan_iteration_us_median": median(plan_us) if changes else None,
                "longest_take_up_us_max": max(take_up_us) if changes else None,
                "longest_take_up_us_median": median(take_up_us) if changes else None,
                "longest_iteration_us_max": max(any_us),
                "longest_iteration_us_median": median(any_us),
                "per_worker_plan_us_max": [max(w["pauses"]["longest_plan_iteration_us"][k]
                                               for w in ws) for k in range(r["workers"])],
                "per_worker_longest_us_max": [max(w["pauses"]["longest_iteration_us"][k]
                                                  for w in ws) for k in range(r["workers"])],
                "ctl_ms_median": median([w["ctl_ms"] for w in ws]) if changes else None,
                "window_ms_median": median([w["seconds"] * 1e3 for w in ws]),
                "packets": packets,
                "packets_min_per_window": min(w["packets"] for w in ws),
                "mpps": packets / secs / 1e6 if secs else 0.0,
                "under_target": (max(plan_us) < LIVE_TARGET_US) if changes else None,
            })
    return rows


def print_live_table(rows):
    log("")
    log("Pauses during config changes (target: a worker takes up a change in an iteration under "
        "%d us)" % LIVE_TARGET_US)
    log("%-2s %-20s %6s | %-19s | %-15s | %-19s | %-8s | %-9s | %-11s | %s" % (
        "w", "change", "n", "plan iter us max/med", "take-up us max", "any iter us max/med",
        "ctl ms",
        "window ms", "packets min", "Mpps in windows"))
    for r in rows:
        plan = "-" if r["longest_plan_iteration_us_max"] is None else "%6d / %-6.0f %s" % (
            r["longest_plan_iteration_us_max"], r["longest_plan_iteration_us_median"],
            "ok" if r["under_target"] else "!!")
        take_up = "-" if r["longest_take_up_us_max"] is None else "%6d / %-6.0f" % (
            r["longest_take_up_us_max"], r["longest_take_up_us_median"])
        log("%-2d %-20s %6s | %-19s | %-15s | %7d / %-9.0f | %-8s | %-9.0f | %-11d | %.3f" % (
            r["workers"], r["kind"], "%d%s" % (r["windows"], "" if not r["refused"] else
                                                "(%d refused)" % r["refused"]),
            plan, take_up, r["longest_iteration_us_max"], r["longest_iteration_us_median"],
            "-" if r["ctl_ms_median"] is None else "%.0f" % r["ctl_ms_median"],
            r["window_ms_median"], r["packets_min_per_window"], r["mpps"]))
    log("plan iter: the longest loop iteration in which a worker took up the change; take-up: "
        "the longest time a worker spent taking it up (latch and apply, within that iteration); "
        "any iter: "
        "the longest iteration of the window (host preemption included); packets min: the "
        "fewest translated in one window (0 would mean traffic stopped)")


def teardown(runner, sessions):
    """Tear-down rate (RFC 9693): UDP sessions at the shortest timeout RFC 4787 allows (120 s)
    are set up and refreshed once more, then left alone; ephemera's expiry is watched through
    telemetry until every session is gone."""
    r = runner.run_one("ephemera", sessions, 1, udp_timeout=120, keep_running=True)
    dut, telemetry = r.pop("_dut"), r.pop("_telemetry")
    traffic_end = time.monotonic()
    series = []
    deadline = traffic_end + 120 + 90
    try:
        while time.monotonic() < deadline:
            try:
                st = telemetry.query("/ephemera/stats", timeout=2.0)
            except (OSError, ValueError):
                st = None
            if st:
                series.append((time.monotonic() - traffic_end, st.get("live_sessions", 0),
                               st.get("expired_udp", 0)))
                if series[-1][1] == 0 and series[-1][2] > 0:
                    break
            time.sleep(0.1)
    finally:
        stop(dut)
        runner.children = []
        remove_run_files(r["name"], runner.memory)
    start = next((t for t, live, exp in series if exp > 0), None)
    end = next((t for t, live, exp in series if live == 0 and exp > 0), None)
    expired = series[-1][2] if series else 0
    peak = 0.0
    for (t0, _, e0), (t1, _, e1) in zip(series, series[1:]):
        if t1 > t0:
            peak = max(peak, (e1 - e0) / (t1 - t0))
    out = {
        "sessions": sessions, "udp_timeout_s": 120,
        "first_expiry_after_s": start, "all_gone_after_s": end, "expired": expired,
        "seconds": (end - start) if start is not None and end is not None else None,
        "rate_per_s": expired / (end - start) if start is not None and end and end > start
        else None,
        "peak_rate_per_s": peak,
        "population": r["loadgen"].get("populate", {}),
        "series": series,
    }
    log("teardown: %d sessions, first expiry %.1f s after the traffic stopped, all gone after "
        "%s s: %s sessions/s (peak over 0.1 s windows %.0f/s)" % (
            expired, start or -1, "%.1f" % end if end else "never",
            "%.0f" % out["rate_per_s"] if out["rate_per_s"] else "n/a", peak))
    return out


def run_header(command, revision, elapsed, memory=None):
    """What every results file starts with: the run, the host, the memory and the traffic's
    shape."""
    out = {
        "command": command,
        "revision": revision,
        "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "elapsed_s": elapsed,
        "host": {"cpus": os.cpu_count(), "loadavg_at_end": os.getloadavg()},
    }
    if memory is not None:
        out["memory"] = memory
    out.update({"flows_per_subscriber": FLOWS_PER_SUBSCRIBER, "pool": POOL,
                "port_range": PORT_RANGE})
    return out


def live_main(runner, args, size, command, revision, json_path, started):
    """--live-changes: one run per worker count, the changes made while it measures."""
    label, sessions = size
    runs, failures = [], []
    try:
        for workers in [int(w) for w in args.live_workers.split(",")]:
            t0 = time.monotonic()
            log("%s w%d: live changes, %d round(s) in a %.0f s measure phase" % (
                label, workers, args.live_rounds, args.live_duration))
            try:
                r = runner.run_one("ephemera", sessions, workers, live=True)
            except RuntimeError as e:
                runner.cleanup()
                runner.children = []
                log("%s w%d: FAILED: %s" % (label, workers, str(e).splitlines()[0]))
                failures.append({"size": label, "workers": workers, "error": str(e)[-4000:]})
                continue
            m = metrics(r)
            log("%s w%d: out %.3f back %.3f Mpps over the measure phase, loss %.1e, "
                "mistranslated %d; CPU share loadgen %.0f%% ephemera %.0f%% (%.0f s)" % (
                    label, workers, m["out_mpps"], m["back_mpps"], m["loss"],
                    m["mistranslations"], 100 * m["cpu_loadgen"], 100 * m["cpu_dut"],
                    time.monotonic() - t0))
            runs.append(r)
    except KeyboardInterrupt:
        log("interrupted; summarising what ran")
    finally:
        runner.cleanup()
    rows = live_summary(runs)
    print_live_table(rows)
    elapsed = time.monotonic() - started
    out = run_header(command, revision, elapsed)
    out.update({
        "live_changes": {
            "target_us": LIVE_TARGET_US, "size": label, "sessions": sessions,
            "rounds": args.live_rounds, "measure_s": args.live_duration,
            "summary": rows,
            "traffic": [dict(metrics(r), workers=r["workers"]) for r in runs],
        },
        "failures": failures,
        "runs": runs,
    })
    with open(json_path, "w") as f:
        json.dump(out, f, indent=2)
    log("JSON: %s   (%.0f s, run: %s)" % (json_path, elapsed, command))
    bad = sum(metrics(r)["mistranslations"] for r in runs) or failures or \
        any(r["under_target"] is False for r in rows)
    return 1 if bad else 0


def logging_cost_main(runner, args, sizes, command, revision, json_path, started):
    """Session create with NAT event logging off and on, interleaved pairs per size."""
    import shutil
    import socket
    collector = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)  # held, never read: the
    collector.bind(("127.0.0.1", 0))                               # kernel drops what overflows
    ipfix_port = collector.getsockname()[1]
    runs, rows = [], []
    try:
        for label, sessions in sizes:
            modes = ("off", "on", "idle") if args.logging_idle else ("off", "on")
            by_mode = {m: [] for m in modes}
            for pair in range(args.reps):
                for mode in modes:
                    archive = tempfile.mkdtemp(prefix="ephemera-load-archive-")
                    logging = {"off": None, "on": (archive, ipfix_port, 0, False),
                               "idle": (archive, ipfix_port, LOGGING_IDLE_RING, True)}[mode]
                    try:
                        r = runner.run_one("ephemera", sessions, logging=logging)
                    finally:
                        shutil.rmtree(archive, ignore_errors=True)
                    m = metrics(r)
                    st = r.get("ephemera_stats", {})
                    r["logging"] = mode
                    runs.append(r)
                    records = st.get("log_records", 0)
                    thread_ns = r.get("logging_thread_cpu_ns", 0)
                    by_mode[mode].append((m["sessions_per_s"], records,
                                          st.get("log_records_dropped", 0), m["mistranslations"],
                                          thread_ns / records if records else 0.0))
                    log("%s pair %d logging %s: %.0f sessions/s, %d records, %d dropped%s" % (
                        label, pair + 1, mode, m["sessions_per_s"], records,
                        st.get("log_records_dropped", 0),
                        ", logging thread %.0f ns/record" % (thread_ns / records)
                        if records else ""))
            off = median([x[0] for x in by_mode["off"]])
            on = median([x[0] for x in by_mode["on"]])
            rows.append({"size": label, "sessions": sessions, "pairs": args.reps,
                         "create_per_s_off": off, "create_per_s_on": on,
                         "ratio_on_off": on / off if off else 0.0,
                         "records": max(x[1] for x in by_mode["on"]),
                         "dropped": max(x[2] for x in by_mode["on"]),
                         "logging_thread_ns_per_record": median([x[4] for x in by_mode["on"]]),
                         "mistranslations": sum(x[3] for xs in by_mode.values() for x in xs)})
            if "idle" in by_mode:
                idle = median([x[0] for x in by_mode["idle"]])
                rows[-1].update({"create_per_s_idle": idle,
                                 "ratio_idle_off": idle / off if off else 0.0,
                                 "dropped_idle": max(x[2] for x in by_mode["idle"])})
    finally:
        collector.close()
    log("%-5s %14s %14s %8s %10s %8s %12s" % ("size", "create/s off", "create/s on", "on/off",
                                                "records", "dropped", "ns/record"))
    for r in rows:
        log("%-5s %14.0f %14.0f %8.3f %10d %8d %12.0f" % (
            r["size"], r["create_per_s_off"], r["create_per_s_on"], r["ratio_on_off"],
            r["records"], r["dropped"], r["logging_thread_ns_per_record"]))
    for r in rows:
        if "ratio_idle_off" in r:
            log("%-5s logging thread on an idle CPU only (SCHED_IDLE, a %d-record ring): %.0f "
                "sessions/s, %.3f of off, %d dropped" % (
                    r["size"], LOGGING_IDLE_RING, r["create_per_s_idle"], r["ratio_idle_off"],
                    r["dropped_idle"]))
    elapsed = time.monotonic() - started
    out = run_header(command, revision, elapsed, runner.memory.describe() if runner.memory
                     else None)
    out.update({"logging_cost": rows, "runs": [{k: v for k, v in r.items()
                                                  if not k.startswith("_")} for r in runs]})
    with open(json_path, "w") as f:
        json.dump(out, f, indent=2)
    log("JSON: %s   (%.0f s, run: %s)" % (json_path, elapsed, command))
    return 1 if any(r["mistranslations"] for r in rows) else 0


def main():
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true",
                    help="64K and 1M only, 3 s windows: about 2 minutes")
    ap.add_argument("--sizes", help="comma list of 64K,1M,4M,16M (default: all; --quick: 64K,1M)")
    ap.add_argument("--reps", type=int, default=2, help="A B pairs per size (default 2)")
    ap.add_argument("--extra-pairs", type=int,
                    help="more pairs per size, at most, while fewer than --reps pairs are clean "
                         "(default 1; --quick 0)")
    ap.add_argument("--min-cpu-share", type=float, default=0.9,
                    help="a run is clean when both polling threads had at least this share of "
                         "their CPU while measuring (default 0.9)")
    ap.add_argument("--duration", type=float, help="seconds measured per run (default 5; "
                    "--quick 3)")
    ap.add_argument("--latency-duration", type=float, default=2.0)
    ap.add_argument("--no-scaling", action="store_true",
                    help="skip the 2-worker runs at 1M")
    ap.add_argument("--teardown", action="store_true",
                    help="also measure the tear-down rate at 1M UDP sessions (adds ~2.5 min: "
                         "the shortest UDP timeout is 120 s)")
    ap.add_argument("--live-changes", action="store_true",
                    help="instead of the throughput runs: pauses of the workers while config "
                         "changes (pool add/remove, set pool.port_range) are made under load, "
                         "at the first of --sizes (default 1M) with --live-workers")
    ap.add_argument("--live-workers", default="1,2",
                    help="--live-changes: worker counts, comma list (default 1,2)")
    ap.add_argument("--live-rounds", type=int, default=5,
                    help="--live-changes: rounds of (baseline, pool add, narrow port range, "
                         "pool remove, widen port range) per worker count (default 5)")
    ap.add_argument("--live-duration", type=float, default=30.0,
                    help="--live-changes: seconds of the generator's measure phase, which the "
                         "rounds must fit in (default 30)")
    ap.add_argument("--logging-cost", action="store_true",
                    help="instead of the throughput runs: session create with NAT event logging "
                         "off and on, interleaved, at --sizes (default 64K,1M)")
    ap.add_argument("--logging-idle", action="store_true",
                    help="--logging-cost: also a run with the logging thread at SCHED_IDLE and a "
                         "ring that holds the whole populate phase, so that its CPU is not taken "
                         "from the generator: the workers' own cost of logging")
    ap.add_argument("--proto", default="mix", choices=["udp", "tcp", "mix"])
    ap.add_argument("--frame-size", type=int, default=64)
    ap.add_argument("--no-huge", action="store_true",
                    help="4 KiB pages (--no-huge -m N) for every DPDK process, as before; by "
                         "default 2 MB hugepages when they can be had (bench/hugepages.py)")
    ap.add_argument("--huge", action="store_true", help="the default: hugepages when they can "
                    "be had, else --no-huge with a note")
    ap.add_argument("--build", default=os.path.join(ROOT, "build-load"))
    ap.add_argument("--no-build", action="store_true")
    ap.add_argument("--json", help="write the results here (default BUILD/load-run.json)")
    ap.add_argument("--summarise", nargs="+", metavar="JSON",
                    help="run nothing: summarise the runs of earlier load-run JSON files "
                         "together (pairs stay pairs)")
    args = ap.parse_args()
    if args.summarise:
        results, teardowns = [], []
        for i, path in enumerate(args.summarise):
            with open(path) as f:
                d = json.load(f)
            for r in d["runs"]:
                r["pair"] = "%d/%s" % (i, r["pair"])
                results.append(r)
            if isinstance(d.get("teardown"), dict):
                teardowns.append(d["teardown"])
        present = {r["sessions"] for r in results}
        rows = summarise(results, [(n, s) for n, s in SIZES.items() if s in present],
                         args.min_cpu_share)
        print_table(rows)
        for t in teardowns:
            log("teardown: %d sessions gone %.2f s after the first expired: %.0f/s" % (
                t["expired"], t["seconds"] or 0, t["rate_per_s"] or 0))
        if args.json:
            with open(args.json, "w") as f:
                json.dump({"summary": rows, "sources": args.summarise,
                           "teardown": teardowns, "runs": results}, f, indent=2)
        return 0
    if args.duration is None:
        args.duration = 3.0 if args.quick else 5.0
    if args.extra_pairs is None:
        args.extra_pairs = 0 if args.quick else 1
    names = (args.sizes.split(",") if args.sizes
             else ["1M"] if args.live_changes
             else ["64K", "1M"] if args.quick or args.logging_cost else ["64K", "1M", "4M", "16M"])
    for n in names:
        if n not in SIZES:
            ap.error("unknown size %s (have %s)" % (n, ", ".join(SIZES)))
    sizes = [(n, SIZES[n]) for n in names]
    json_path = args.json or os.path.join(args.build, "load-run.json")

    if os.geteuid() != 0:
        sys.exit("load-run: needs root (DPDK, /run/ephemera-load)")
    if not args.no_build:
        if not os.path.exists(os.path.join(args.build, "build.ninja")):
            subprocess.run(["meson", "setup", args.build, ROOT, "--buildtype=release"],
                           check=True)
        subprocess.run(["ninja", "-C", args.build, "control/ephemera",
                        "bench/loadgen/ephemera-loadgen"] +
                       (["tools/ephemeractl/ephemeractl"] if args.live_changes else []),
                       check=True)
    os.makedirs(SOCKET_DIR, exist_ok=True)

    if args.huge and args.no_huge:
        ap.error("--huge and --no-huge exclude each other")

    runner = Runner(args)
    results = []
    started = time.monotonic()
    command = " ".join([os.path.join("bench", "load-run.sh")] + sys.argv[1:])
    revision = describe_revision()
    if args.live_changes:
        log("load run of ephemera %s: live changes at %s, %s worker(s)" % (
            revision, names[0], args.live_workers))
    else:
        log("load run of ephemera %s: sizes %s, %d pair(s) each, %.0f s windows" % (
            revision, ",".join(names), args.reps, args.duration))
    if args.logging_cost:
        budget = memory_budget_mib(sizes, False, False)
        if args.logging_idle:
            budget += logging_ring_mib(LOGGING_IDLE_RING, 1)
        with hugepages.Reservation(budget, tag="load", want_huge=not args.no_huge) as memory:
            runner.memory = memory
            log("memory: %s" % memory.label)
            status = logging_cost_main(runner, args, sizes, command, revision, json_path,
                                       started)
        runner.memory = None
        return status
    if args.live_changes:
        # Hugepages as for the throughput runs: a pause is measured on the memory users run on.
        with hugepages.Reservation(memory_budget_mib(sizes[:1], True, False), tag="load",
                                   want_huge=not args.no_huge) as memory:
            runner.memory = memory
            log("memory: %s" % memory.label)
            status = live_main(runner, args, sizes[0], command, revision, json_path, started)
        runner.memory = None
        return status
    teardown_result = None
    failures = []
    # Hugepages for the largest pair of processes, given back when the with ends (after
    # runner.cleanup(): a mount still mapped cannot be unmounted).
    with hugepages.Reservation(memory_budget_mib(sizes, not args.no_scaling, args.teardown),
                               tag="load", want_huge=not args.no_huge) as memory:
        runner.memory = memory
        memory_info = memory.describe()
        teardown_result = run_all(args, runner, sizes, results, failures)
    runner.memory = None

    rows = summarise(results, sizes, args.min_cpu_share)
    print_table(rows, memory_info)
    elapsed = time.monotonic() - started
    out = run_header(command, revision, elapsed, memory_info)
    out.update({
        "min_cpu_share": args.min_cpu_share,
        "summary": rows,
        "failures": failures,
        "teardown": teardown_result or (
            "not run (bench/load-run.sh --teardown): UDP sessions expire no sooner than "
            "120 s (RFC 4787 REQ-5), TCP ones 240 s after FIN or RST"),
        "runs": results,
    })
    with open(json_path, "w") as f:
        json.dump(out, f, indent=2)
    log("JSON: %s   (%.0f s, run: %s)" % (json_path, elapsed, command))
    return 1 if sum(r["mistranslations"] for r in rows) else 0


def run_all(args, runner, sizes, results, failures):
    """Every pair of every size (and the tear-down run); returns the tear-down result."""
    teardown_result = None
    try:
        for label, sessions in sizes:
            pair = 0
            clean_pairs = 0
            while pair < args.reps or (clean_pairs < args.reps and
                                       pair < args.reps + args.extra_pairs):
                pair += 1
                plan = [("floor", 1), ("ephemera", 1)]
                if label == "1M" and not args.no_scaling:
                    plan.append(("ephemera", 2))
                ran = []
                for kind, workers in plan:
                    t0 = time.monotonic()
                    try:
                        r = runner.run_one(kind, sessions, workers)
                    except RuntimeError as e:
                        # One failed run (a peer that died, a generator that never started)
                        # costs its pair, not the whole run; the reason is kept.
                        runner.cleanup()
                        runner.children = []
                        log("%-4s pair %d %-8s w%d: FAILED: %s" % (
                            label, pair, kind, workers, str(e).splitlines()[0]))
                        failures.append({"size": label, "pair": pair, "kind": kind,
                                         "workers": workers, "error": str(e)[-4000:]})
                        break
                    r["pair"] = pair
                    m = metrics(r)
                    log("%-4s pair %d %-8s w%d: out %.3f back %.3f Mpps, new %.0f/s, loss %.1e, "
                        "mistranslated %d, VmRSS %.0f MiB + hugepages %.0f MiB; CPU share "
                        "loadgen %.0f%% %s %.0f%% (%.0f s)" % (
                            label, pair, kind, workers, m["out_mpps"], m["back_mpps"],
                            m["sessions_per_s"], m["loss"], m["mistranslations"],
                            r["dut_vmrss_kib"] / 1024, r["dut_hugetlb_kib"] / 1024,
                            100 * m["cpu_loadgen"], kind,
                            100 * m["cpu_dut"], time.monotonic() - t0))
                    results.append(r)
                    ran.append(r)
                if len(ran) >= 2 and clean(ran[0], args.min_cpu_share) and \
                        clean(ran[1], args.min_cpu_share):
                    clean_pairs += 1
                else:
                    log("%-4s pair %d: not clean (a polling thread had less than %.0f%% of its "
                        "CPU)" % (label, pair, 100 * args.min_cpu_share))
        if args.teardown:
            teardown_result = teardown(runner, SIZES["1M"])
    except KeyboardInterrupt:
        log("interrupted; summarising what ran")
    finally:
        runner.cleanup()
    return teardown_result


if __name__ == "__main__":
    sys.exit(main())
