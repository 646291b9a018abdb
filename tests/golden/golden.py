#!/usr/bin/python3
"""Golden packet tests: run ephemera on net_pcap and compare its output with scapy's.

For one scenario: write the input pcaps and the TOML into a temporary directory, run ephemera
with one worker on two net_pcap ports, wait until it has received every input frame, stop it
with SIGINT, then compare each port's output pcap with the expected frames byte for byte and
the final counters (--stats-json) exactly. Every counter a scenario does not name must be 0.

    golden.py --ephemera PATH --scenario NAME [--keep]
    golden.py --list
    golden.py --self-test          (the port model's known-answer checks; needs no ephemera)

Run with Debian's /usr/bin/python3: scapy is installed there only. Needs root (DPDK).
"""

import argparse
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


def run_ephemera(exe, workdir, sc, name):
    """Runs ephemera over the scenario's pcaps; returns (stats json, stdout text)."""
    prefix = "golden-%s-%d" % (name, os.getpid())
    p = lambda f: os.path.join(workdir, f)  # noqa: E731
    write_pcap(p("in_inside.pcap"), sc.inside_in)
    write_pcap(p("in_outside.pcap"), sc.outside_in)
    with open(p("t.toml"), "w") as f:
        f.write(sc.config)
    vdev = "net_pcap%d,rx_pcap=%s,tx_pcap=%s"
    cmd = [exe, "-l", "0,1", "--no-huge", "-m", "512", "--no-pci", "--file-prefix", prefix,
           "--vdev", vdev % (0, p("in_inside.pcap"), p("out_inside.pcap")),
           "--vdev", vdev % (1, p("in_outside.pcap"), p("out_outside.pcap")),
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
        time.sleep(max(sc.settle, sc.min_runtime - (time.monotonic() - started)))
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


def compare_port(port, got, want):
    """Problems with one port's output, as text (empty when it matches)."""
    if got == want:
        return ""
    text = ["%s port: sent %d frames, expected %d" % (port, len(got), len(want))]
    if sorted(got) == sorted(want):
        text.append("the same frames, in another order")
    for i in range(max(len(got), len(want))):
        g = got[i] if i < len(got) else None
        w = want[i] if i < len(want) else None
        if g == w:
            continue
        text.append("first difference at frame %d:" % i)
        if g is None:
            text.append("missing; expected:\n" + show(w))
        elif w is None:
            text.append("unexpected extra frame:\n" + show(g))
        else:
            text += [hexdump_diff(g, w), "--- got:", show(g), "--- expected:", show(w)]
        break
    return "\n".join(text)


def compare_counters(stats, sc):
    totals = stats["totals"]
    unknown = set(sc.counters) - set(totals)
    if unknown:
        return ["scenario names unknown counters: %s" % sorted(unknown)]
    problems = ["counter %s = %d, expected %d" % (name, value, sc.counters.get(name, 0))
                for name, value in totals.items() if value != sc.counters.get(name, 0)]
    for gauge, want in sc.gauges.items():
        value = sum(w[gauge] for w in stats["workers"])
        if value != want:
            problems.append("%s = %d, expected %d" % (gauge, value, want))
    return problems


def run_scenario(exe, name, keep):
    from scenarios import REGISTRY
    workdir = tempfile.mkdtemp(prefix="golden-%s-" % name)
    ok = False
    try:
        t0 = time.monotonic()
        sc = REGISTRY[name]()
        stats, stdout = run_ephemera(exe, workdir, sc, name)
        problems = []
        for port, want in (("inside", sc.inside_out), ("outside", sc.outside_out)):
            got = read_pcap(os.path.join(workdir, "out_%s.pcap" % port))
            diff = compare_port(port, got, want)
            if diff:
                problems.append(diff)
        problems += compare_counters(stats, sc)
        problems += ["stdout lacks %r" % text for text in sc.stdout if text not in stdout]
        if problems:
            print("FAIL %s\n%s" % (name, "\n".join(problems)))
            print("nonzero counters: %s"
                  % {k: v for k, v in stats["totals"].items() if v})
        else:
            ok = True
            print("PASS %s: %d+%d frames in, %d+%d out, %.1f s"
                  % (name, len(sc.inside_in), len(sc.outside_in), len(sc.inside_out),
                     len(sc.outside_out), time.monotonic() - t0))
    except Exception as e:  # report, keep the files
        print("FAIL %s: %s: %s" % (name, type(e).__name__, e))
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


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--ephemera", help="path to the ephemera executable")
    ap.add_argument("--scenario", action="append", default=[], help="scenario name (repeatable)")
    ap.add_argument("--all", action="store_true", help="run every scenario")
    ap.add_argument("--list", action="store_true", help="list the scenarios")
    ap.add_argument("--self-test", action="store_true", help="check the port model only")
    ap.add_argument("--keep", action="store_true", help="keep the work directory")
    ap.add_argument("--check-list", nargs="*", metavar="NAME",
                    help="fail unless these are exactly the registered scenarios")
    args = ap.parse_args()

    if args.self_test:
        natmodel.self_test()
        print("natmodel self-test passed")
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
    results = [run_scenario(args.ephemera, n, args.keep) for n in names]
    return 0 if all(results) else 1


if __name__ == "__main__":
    sys.exit(main())
