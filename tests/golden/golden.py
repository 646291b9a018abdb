#!/usr/bin/python3
"""Golden packet tests: run ephemera on net_pcap and compare its output with scapy's.

For one scenario and a worker count N: write the input pcaps (one per rx queue: each port has
N) and the TOML into a temporary directory, run ephemera with N workers on two net_pcap ports,
wait until it has received every input frame, stop it with SIGINT, then compare each port's
output (one pcap per tx queue) with the expected frames byte for byte: the same frames, each
queue's in the expected order, and the counters (--stats-json) exactly. Every counter a
scenario does not name must be 0; handoff_tx and handoff_rx are computed from the owners of
the input frames. See scenarios/__init__.py for the timing model.

    golden.py --ephemera PATH [--workers N] --scenario NAME [--keep]
    golden.py --list
    golden.py --ephemera PATH --self-test     (the port model's checks; runs no dataplane)

Run with Debian's /usr/bin/python3: scapy is installed there only. Needs root (DPDK).
"""

import argparse
import collections
import json
import os
import shutil
import signal
import struct
import subprocess
import sys
import tempfile
import time
import traceback

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "scripts"))

import dpdk_telemetry  # noqa: E402  (scripts/dpdk_telemetry.py)
import natmodel  # noqa: E402

START_TIMEOUT = 30.0    # s until ephemera says "running"
RECEIVE_TIMEOUT = 20.0  # s until every input frame has been received
EXIT_TIMEOUT = 20.0     # s from SIGINT to exit
WORKER_COUNTS = (1, 2, 4)  # what meson runs; any count from 1 to 64 works


# ---- pcap files ------------------------------------------------------------------------------

PCAP_MAGIC_US = 0xA1B2C3D4
PCAP_MAGIC_NS = 0xA1B23C4D
LINKTYPE_ETHERNET = 1


def write_pcap(path, frames):
    with open(path, "wb") as f:
        f.write(struct.pack("<IHHiIII", PCAP_MAGIC_US, 2, 4, 0, 0, 65535, LINKTYPE_ETHERNET))
        for i, frame in enumerate(frames):
            f.write(struct.pack("<IIII", 1, i, len(frame), len(frame)))
            f.write(frame)


def read_pcap(path):
    with open(path, "rb") as f:
        data = f.read()
    if len(data) < 24:
        raise RuntimeError("%s: no pcap header (%d bytes)" % (path, len(data)))
    magic = struct.unpack("<I", data[:4])[0]
    endian = "<" if magic in (PCAP_MAGIC_US, PCAP_MAGIC_NS) else ">"
    if struct.unpack(endian + "I", data[:4])[0] not in (PCAP_MAGIC_US, PCAP_MAGIC_NS):
        raise RuntimeError("%s: not a pcap file" % path)
    frames = []
    off = 24
    while off < len(data):
        _, _, caplen, wirelen = struct.unpack(endian + "IIII", data[off:off + 16])
        off += 16
        if caplen != wirelen:
            raise RuntimeError("%s: frame %d captured %d of %d bytes"
                               % (path, len(frames), caplen, wirelen))
        frames.append(data[off:off + caplen])
        off += caplen
    return frames


# ---- running ephemera ------------------------------------------------------------------------

def telemetry_stats(prefix):
    """ephemera's /ephemera/stats over the DPDK telemetry socket, or None if not reachable."""
    try:
        return dpdk_telemetry.query(prefix, "/ephemera/stats", timeout=2.0)
    except (OSError, ValueError, KeyError):
        return None


def wait_for(predicate, timeout, proc, what):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        if proc.poll() is not None:
            raise RuntimeError("ephemera exited (%d) while waiting for %s"
                               % (proc.returncode, what))
        time.sleep(0.05)
    raise RuntimeError("timed out after %.0f s waiting for %s" % (timeout, what))


def read_text(path):
    with open(path) as f:
        return f.read()


def wait_received(proc, prefix, want):
    """Waits until ephemera has received `want` = (inside, outside) frames, per telemetry.
    Without telemetry, waits a fixed time instead and says so."""
    got = [None]

    def received():
        stats = telemetry_stats(prefix)
        got[0] = stats and (stats["in2out_rx"], stats["out2in_rx"])
        return bool(got[0]) and got[0][0] >= want[0] and got[0][1] >= want[1]

    try:
        wait_for(received, RECEIVE_TIMEOUT, proc, "all input frames to be received")
    except RuntimeError as e:
        if got[0] is not None:
            raise RuntimeError("%s (received inside, outside: %s of %s)" % (e, got[0], want))
        print("warning: telemetry not reachable; waited %.0f s instead" % RECEIVE_TIMEOUT)


PAUSE_GAUGES = {"longest_iteration_us", "longest_plan_iteration_us", "longest_take_up_us",
                "pause_window_ms"}


def wait_settled(proc, prefix, quiet):
    """Waits until the counters have not moved for `quiet` seconds and the handoff rings are
    empty (handoff_tx == handoff_rx + drop_handoff_congestion): with workers sharing CPUs, a
    frame may still be on its way to its owner when every input has been received."""
    last = [None, time.monotonic()]

    def settled():
        now = time.monotonic()
        stats = telemetry_stats(prefix)
        if stats is None:  # no telemetry: a plain wait (wait_received said so already)
            return now - last[1] >= quiet
        # The pause gauges move with time alone (the window grows, a preempted iteration is a
        # new longest): they are not traffic.
        stats = {k: v for k, v in stats.items() if k not in PAUSE_GAUGES}
        if stats != last[0]:
            last[:] = [stats, now]
            return False
        return (now - last[1] >= quiet and stats["handoff_tx"]
                == stats["handoff_rx"] + stats["drop_handoff_congestion"])

    wait_for(settled, RECEIVE_TIMEOUT, proc, "the counters to settle")


def eal_memory_mb(workers):
    """-m for the EAL, with room to spare: the packet pool grows by about 21 MB a worker
    (create_packet_pool: 8704 buffers of about 2.4 KB with the default fragment table), while
    the default 1M sessions' tables are shared out, not repeated. (Measured: 1 worker starts
    with 256 MB, 4 with 300 MB.)"""
    return 512 + 32 * (workers - 1)


def lcores(workers):
    """lcore 0 runs control, 1..N are the workers, spread over the CPUs this process may use
    (as tests/netns/nslab.py does): more workers than CPUs still run, time-shared."""
    cpus = sorted(os.sched_getaffinity(0))
    return ",".join("%d@%d" % (i, cpus[i % len(cpus)]) for i in range(workers + 1))


def run_ephemera(exe, workdir, sc, name, workers):
    """Runs ephemera over the scenario's pcaps; returns (stats json, stdout text)."""
    prefix = "golden-w%d-%s-%d" % (workers, name, os.getpid())
    p = lambda f: os.path.join(workdir, f)  # noqa: E731
    vdevs = []
    for port, side, inputs in ((0, "inside", sc.inside_in), (1, "outside", sc.outside_in)):
        queues = [getattr(f, "queue", 0) for f in inputs]
        if any(not 0 <= q < workers for q in queues):
            raise RuntimeError("%s input for rx queue %d: there are %d"
                               % (side, max(queues), workers))
        args = []
        for q in range(workers):
            write_pcap(p("in_%s_q%d.pcap" % (side, q)),
                       [f for f, fq in zip(inputs, queues) if fq == q])
            args.append("rx_pcap=" + p("in_%s_q%d.pcap" % (side, q)))
        args += ["tx_pcap=" + p("out_%s_q%d.pcap" % (side, q)) for q in range(workers)]
        vdevs += ["--vdev", "net_pcap%d,%s" % (port, ",".join(args))]
    with open(p("t.toml"), "w") as f:
        f.write(sc.config)
    cmd = [exe, "--lcores", lcores(workers), "--no-huge", "-m", str(eal_memory_mb(workers)),
           "--no-pci", "--file-prefix", prefix, *vdevs,
           "--", "--config", p("t.toml"), "--stats-json", p("stats.json"),
           "--port-secret", natmodel.SECRET_ARG]
    with open(p("cmd.txt"), "w") as f:
        f.write(" ".join(cmd) + "\n")
    with open(p("stdout.txt"), "w") as out, open(p("stderr.txt"), "w") as err:
        proc = subprocess.Popen(cmd, stdout=out, stderr=err, stdin=subprocess.DEVNULL)
    try:
        wait_for(lambda: "ephemera: running" in read_text(p("stdout.txt")), START_TIMEOUT, proc,
                 "start")
        started = time.monotonic()
        wait_received(proc, prefix, (len(sc.inside_in), len(sc.outside_in)))
        wait_settled(proc, prefix, sc.settle)
        time.sleep(max(0.0, sc.min_runtime - (time.monotonic() - started)))
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout=EXIT_TIMEOUT)
        except subprocess.TimeoutExpired:
            raise RuntimeError("ephemera did not exit within %.0f s of SIGINT" % EXIT_TIMEOUT)
        if proc.returncode != 0:
            raise RuntimeError("ephemera exited with status %d" % proc.returncode)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        shutil.rmtree("/var/run/dpdk/" + prefix, ignore_errors=True)
    with open(p("stats.json")) as f:
        return json.load(f), read_text(p("stdout.txt"))


# ---- comparing -------------------------------------------------------------------------------

def hexdump_diff(got, want):
    lines = []
    for off in range(0, max(len(got), len(want)), 16):
        g, w = got[off:off + 16], want[off:off + 16]
        mark = "  " if g == w else "!!"
        lines.append("%s %04x  got  %-47s\n%s       want %-47s"
                     % (mark, off, g.hex(" "), mark, w.hex(" ")))
    return "\n".join(lines)


def show(frame):
    from scapy.layers.l2 import Ether
    return Ether(frame).show(dump=True)


def summary(frame):
    from scapy.layers.l2 import Ether
    return Ether(frame).summary()


def resolve(owner, workers, config=None):
    """The worker an owner key (scenarios.Frame.owner) names; `config` is the scenario's
    Scenario.owner_config (ports owned as its mode owns them), or None."""
    kind = owner[0]
    if kind == "worker":
        return owner[1]
    own = natmodel.owners(workers, config)
    return own.subscriber(owner[1]) if kind == "subscriber" else own.port(owner[1], owner[2])


def describe_owner(owner, workers, config=None):
    if owner[0] == "worker":
        return "worker %d" % owner[1]
    return "worker %d (%s)" % (resolve(owner, workers, config), " ".join(str(x) for x in owner))


def first_difference(missing, extra):
    """Text for the first expected frame that did not come out, side by side with the sent
    frame that resembles it most."""
    text = []
    index, w = missing[0]
    if not extra:
        return ["missing: expected frame %d:" % index, show(w)]

    def likeness(g):
        return (len(g) == len(w), sum(a == b for a, b in zip(g, w)))
    queue, g = max(extra, key=lambda qg: likeness(qg[1]))
    text += ["first difference: expected frame %d, and the most similar frame sent instead "
             "(tx queue %d):" % (index, queue),
             hexdump_diff(g, w), "--- got:", show(g), "--- expected:", show(w)]
    return text


def compare_port(port, got_by_queue, want, workers, config=None):
    """Problems with one port's output, as text (empty when it matches). got_by_queue holds
    what each tx queue sent; `want` the expected frames (scenarios.Frame) in 1-worker order.
    - the frames of all queues together must be the expected ones, as a multiset;
    - each queue's frames of one stream must come in the order `want` has them;
    - an expected frame whose owner is named must leave by that worker's queue."""
    got = [(q, g) for q, frames in enumerate(got_by_queue) for g in frames]
    count = collections.Counter(bytes(w) for w in want)
    count.subtract(bytes(g) for _, g in got)
    missing, extra, seen = [], [], collections.Counter()
    for i, w in enumerate(want):
        seen[bytes(w)] += 1
        if seen[bytes(w)] <= count[bytes(w)]:
            missing.append((i, w))
    seen.clear()
    for q, g in got:
        seen[g] += 1
        if seen[g] <= -count[g]:
            extra.append((q, g))
    per_queue = ", ".join("queue %d: %d" % (q, len(f)) for q, f in enumerate(got_by_queue))
    if missing or extra:
        text = ["%s port: sent %d frames (%s), expected %d; %d expected ones missing, %d sent "
                "that were not expected" % (port, len(got), per_queue, len(want), len(missing),
                                            len(extra))]
        for q, g in extra[1:] if missing else extra:
            text.append("not expected, from tx queue %d: %s" % (q, summary(g)))
        for i, w in missing[1:]:
            text.append("missing, expected frame %d: %s" % (i, summary(w)))
        if missing:
            text += first_difference(missing, extra)
        return "\n".join(text)

    text = []
    # Order: each queue's frames of a stream are a subsequence of that stream's expected list.
    streams = collections.defaultdict(list)
    stream_of = {}
    for i, w in enumerate(want):
        stream = getattr(w, "stream", None)
        streams[stream].append((i, bytes(w)))
        stream_of.setdefault(bytes(w), stream)
    for q, frames in enumerate(got_by_queue):
        for stream, expected in streams.items():
            at, before = 0, None  # next place in `expected`; index of the last frame matched
            for g in (g for g in frames if stream_of[g] == stream):
                while at < len(expected) and expected[at][1] != g:
                    at += 1
                if at == len(expected):  # `before` is set: the first frame always matches
                    index = next(i for i, e in expected if e == g)
                    text.append("  tx queue %d: expected frame %d (%s) came out after expected "
                                "frame %d (%s)" % (q, index, summary(g), before,
                                                   summary(want[before])))
                    break
                before = expected[at][0]
                at += 1
    # Owners: a frame the scenario says who sends leaves by that worker's queue.
    queues_of = collections.defaultdict(list)
    for q, g in got:
        queues_of[g].append(q)
    owners_of = collections.defaultdict(list)
    for w in want:
        owners_of[bytes(w)].append(getattr(w, "owner", None))
    for frame, owners in owners_of.items():
        if None in owners:
            continue
        wanted = sorted(resolve(o, workers, config) for o in owners)
        if sorted(queues_of[frame]) != wanted:
            text.append("  %s left by tx queue %s, expected %s"
                        % (summary(frame), " and ".join(map(str, sorted(queues_of[frame]))),
                           " and ".join(describe_owner(o, workers, config) for o in owners)))
    if text:
        text.insert(0, "%s port: the expected frames (%s), but:" % (port, per_queue))
    return "\n".join(text)


def expected_handoffs(sc, workers):
    """(handoffs, exact): each input frame goes to its owner's ring when the owner is not the
    worker of its rx queue, plus what the scenario adds; when the scenario cannot say what it
    adds (extra_handoffs None), the input frames' own are a lower bound."""
    own = sum(1 for f in sc.inside_in + sc.outside_in
              if getattr(f, "owner", None) is not None
              and resolve(f.owner, workers, sc.owner_config) != getattr(f, "queue", 0))
    if sc.extra_handoffs is None:
        return own, False
    return own + sc.extra_handoffs, True


def compare_counters(stats, sc, workers):
    totals = stats["totals"]
    want = dict(sc.counters)
    unknown = set(want) - set(totals)
    if unknown:
        return ["scenario names unknown counters: %s" % sorted(unknown)]
    handoffs, exact = expected_handoffs(sc, workers)
    problems = []
    if not exact:  # the rings must balance, and carry at least the frames' own handoffs
        tx, rx = totals["handoff_tx"], totals["handoff_rx"]
        if tx != rx or tx < handoffs:
            problems.append("handoff_tx = %d, handoff_rx = %d: expected equal, at least %d"
                            % (tx, rx, handoffs))
        handoffs = tx
    want["handoff_tx"] = want["handoff_rx"] = handoffs
    bounds = getattr(sc, "counter_bounds", {})
    problems += ["counter %s = %d, expected between %d and %d" % (name, totals[name], lo, hi)
                 for name, (lo, hi) in bounds.items() if not lo <= totals[name] <= hi]
    problems += ["counter %s = %d, expected %d" % (name, value, want.get(name, 0))
                 for name, value in totals.items()
                 if name not in bounds and value != want.get(name, 0)]
    for gauge, value_wanted in sc.gauges.items():
        value = sum(w[gauge] for w in stats["workers"])
        if value != value_wanted:
            problems.append("%s = %d, expected %d" % (gauge, value, value_wanted))
    return problems


def run_scenario(exe, name, workers, keep):
    from scenarios import REGISTRY
    workdir = tempfile.mkdtemp(prefix="golden-w%d-%s-" % (workers, name))
    label = "%s with %d worker%s" % (name, workers, "s" if workers > 1 else "")
    ok = False
    try:
        t0 = time.monotonic()
        sc = REGISTRY[name](workers)
        stats, stdout = run_ephemera(exe, workdir, sc, name, workers)
        problems = []
        for port, want in (("inside", sc.inside_out), ("outside", sc.outside_out)):
            got = [read_pcap(os.path.join(workdir, "out_%s_q%d.pcap" % (port, q)))
                   for q in range(workers)]
            diff = compare_port(port, got, want, workers, sc.owner_config)
            if diff:
                problems.append(diff)
        problems += compare_counters(stats, sc, workers)
        problems += ["stdout lacks %r" % text for text in sc.stdout if text not in stdout]
        if problems:
            print("FAIL %s\n%s" % (label, "\n".join(problems)))
            print("nonzero counters: %s"
                  % {k: v for k, v in stats["totals"].items() if v})
        else:
            ok = True
            print("PASS %s: %d+%d frames in, %d+%d out, %d handoffs, %.1f s"
                  % (label, len(sc.inside_in), len(sc.outside_in), len(sc.inside_out),
                     len(sc.outside_out), stats["totals"]["handoff_tx"],
                     time.monotonic() - t0))
    except Exception as e:  # report, keep the files
        print("FAIL %s: %s: %s" % (label, type(e).__name__, e))
        if not isinstance(e, RuntimeError):
            traceback.print_exc(file=sys.stdout)
        for f in ("stdout.txt", "stderr.txt"):
            path = os.path.join(workdir, f)
            if os.path.exists(path):
                print("--- %s (last 30 lines)\n%s" % (f, "".join(open(path).readlines()[-30:])))
    if ok and not keep:
        shutil.rmtree(workdir, ignore_errors=True)
    else:
        print("files kept in %s" % workdir)
    return ok


SKIP = 77  # meson's exit status for a skipped test


def missing_prerequisite(needs_root):
    """Why the tests cannot run here (None: they can): scapy writes every frame, and
    ephemera's EAL needs root."""
    try:
        import scapy  # noqa: F401
    except ImportError:
        return ("needs Debian's python3-scapy for /usr/bin/python3 "
                "(scripts/install-deps.sh installs it)")
    if needs_root and os.geteuid() != 0:
        return "needs root: ephemera's EAL and its net_pcap ports"
    return None


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--ephemera", help="path to the ephemera executable")
    ap.add_argument("--workers", type=int, action="append", metavar="N",
                    help="worker count (repeatable; default 1)")
    ap.add_argument("--scenario", action="append", default=[], help="scenario name (repeatable)")
    ap.add_argument("--all", action="store_true", help="run every scenario")
    ap.add_argument("--list", action="store_true", help="list the scenarios")
    ap.add_argument("--self-test", action="store_true", help="check the port model only")
    ap.add_argument("--keep", action="store_true", help="keep the work directory")
    ap.add_argument("--check-list", nargs="*", metavar="NAME",
                    help="fail unless these are exactly the registered scenarios")
    args = ap.parse_args()
    if args.ephemera:
        natmodel.use_ephemera(args.ephemera)
    if not args.self_test:
        reason = missing_prerequisite(needs_root=bool(args.scenario or args.all))
        if reason:
            print("SKIP: " + reason)
            return SKIP

    if args.self_test:
        if not args.ephemera:
            ap.error("--self-test needs --ephemera: the model asks it who owns what")
        natmodel.self_test(WORKER_COUNTS)
        print("natmodel self-test passed (%s workers)" % ", ".join(map(str, WORKER_COUNTS)))
        return 0
    from scenarios import REGISTRY
    if args.list:
        print("\n".join(REGISTRY))
        return 0
    if args.check_list is not None:
        missing = sorted(set(REGISTRY) - set(args.check_list))
        extra = sorted(set(args.check_list) - set(REGISTRY))
        if missing or extra:
            print("meson.build and the scenarios disagree: not registered in meson: %s; "
                  "not a scenario: %s" % (missing, extra))
            return 1
        print("%d scenarios, all registered" % len(REGISTRY))
        return 0
    names = list(REGISTRY) if args.all else args.scenario
    unknown = [n for n in names if n not in REGISTRY]
    if not names or unknown or not args.ephemera:
        ap.error("give --ephemera and --scenario NAME (known: %s)" % ", ".join(REGISTRY))
    workers = args.workers or [1]
    if any(not 1 <= w <= 64 for w in workers):
        ap.error("--workers: 1 to 64")
    results = [run_scenario(args.ephemera, n, w, args.keep) for w in workers for n in names]
    if len(results) > 1:
        print("%d passed, %d failed" % (results.count(True), results.count(False)))
    return 0 if all(results) else 1


if __name__ == "__main__":
    sys.exit(main())
