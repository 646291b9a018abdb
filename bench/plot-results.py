#!/usr/bin/python3
"""Turns a load run's JSON and a micro-benchmark run's JSON into the PNGs of docs/performance.md.

  bench/plot-results.py --load build-load/load-run.json \\
                        --bench build-bench/translate_bench.json --out docs/images

Inputs (either may be left out; at least one is needed):
  --load   what bench/load-run.sh writes (bench/load_run.py main(): a header with "command",
           "revision", "host", then "summary", one row per table size and worker count, see
           summarise()); `bench/load-run.sh --summarise` output (no header) is read too.
  --bench  what bench/run-bench.sh writes (Google Benchmark JSON of bench/translate_bench.cpp:
           "context" and "benchmarks", aggregates only, user counters cycles_per_pkt and
           cycles_per_pkt_to75).

Outputs, in --out:
  from --load:  mpps-vs-table-size.png, latency-percentiles.png, session-create-rate.png
  from --bench: cycles-vs-table-size.png
Each image carries a caption line with the run's date, revision and command as its JSON records
them ("not recorded" where it does not).

A JSON missing what a plot needs is refused: the file, the field and what wrote it are named on
stderr, exit status 2, and no image is written from it.

Debian's /usr/bin/python3 with python3-matplotlib (scripts/install-deps.sh); the Agg backend,
no display needed.
"""

import argparse
import datetime
import json
import math
import os
import re
import sys

# The figure's size and resolution: 10 x 5.6 in at 110 dpi = 1100 x 616 pixels.
FIG_SIZE = (10, 5.6)
DPI = 110

# Fields of a load-run summary row each plot reads (bench/load_run.py summarise()).
LOAD_ROW_FIELDS = [
    "size", "sessions", "workers",
    "out_mpps", "back_mpps", "floor_out_mpps", "floor_back_mpps", "out_ratio", "back_ratio",
    "new_sessions_per_s", "floor_new_per_s", "new_ratio",
    "latency_rate_mpps", "rtt50_us", "rtt99_us", "rtt999_us", "floor_rtt50_us", "floor_rtt99_us",
]

# Benchmark paths of bench/translate_bench.cpp plotted against the table size, and their labels.
BENCH_PATHS = [
    ("in2out", "in2out"),
    ("in2out_offload", "in2out (checksum offload)"),
    ("out2in_eif", "out2in EIF"),
    ("out2in_apdf", "out2in APDF"),
    ("session_create", "session create"),
    ("session_create/dynamic", "session create, dynamic"),
    ("session_create/dynamic_logged", "session create, dynamic + logging"),
    ("session_create/blocks", "session create, port blocks"),
    ("session_create/deterministic", "session create, deterministic"),
    ("expire", "expiry per session"),
]
FLOOR_PATH = "floor_bulk_data"    # rte_hash_lookup_bulk_data: the memory-bound floor
SIZE_RE = re.compile(r"^(\d+)([KMG]?)$")


class Refused(Exception):
    """A JSON that does not hold what the plots need."""


def refuse(path, what, writer):
    raise Refused("%s: %s (expected the JSON %s writes)" % (path, what, writer))


def load_json(path, writer):
    try:
        with open(path) as f:
            return json.load(f)
    except OSError as e:
        raise Refused("%s: cannot read: %s" % (path, e.strerror or e))
    except ValueError as e:
        refuse(path, "not JSON: %s" % e, writer)


# ---- the load run ----------------------------------------------------------------------------

LOAD_WRITER = "bench/load-run.sh (bench/load_run.py)"


def read_load(path):
    d = load_json(path, LOAD_WRITER)
    if not isinstance(d, dict):
        refuse(path, "not a JSON object", LOAD_WRITER)
    rows = d.get("summary")
    if not isinstance(rows, list):
        refuse(path, 'no "summary" list', LOAD_WRITER)
    if not rows:
        refuse(path, '"summary" is empty: the run measured nothing', LOAD_WRITER)
    for i, row in enumerate(rows):
        if not isinstance(row, dict):
            refuse(path, "summary[%d] is not an object" % i, LOAD_WRITER)
        missing = [k for k in LOAD_ROW_FIELDS if k not in row]
        if missing:
            refuse(path, "summary[%d] (size %s) lacks %s" % (
                i, row.get("size", "?"), ", ".join('"%s"' % k for k in missing)), LOAD_WRITER)
        for k in LOAD_ROW_FIELDS:
            if k != "size" and not isinstance(row[k], (int, float)):
                refuse(path, 'summary[%d]["%s"] is not a number' % (i, k), LOAD_WRITER)
    if not any(r["workers"] == 1 for r in rows):
        refuse(path, '"summary" has no one-worker row', LOAD_WRITER)
    return d


def load_caption(d, path):
    command = d.get("command") or ("bench/load-run.sh --summarise %s" % " ".join(
        d.get("sources", [])) if d.get("sources") else None)
    date = d.get("date")
    if not date:
        date = datetime.datetime.fromtimestamp(os.path.getmtime(path),
                                               datetime.timezone.utc).strftime(
            "%Y-%m-%d %H:%M UTC (file time)")
    return "%s | revision %s | %s" % (date, d.get("revision") or "not recorded",
                                      command or "command not recorded")


def one_worker_rows(d):
    return sorted((r for r in d["summary"] if r["workers"] == 1), key=lambda r: r["sessions"])


def size_axis(ax, rows):
    ax.set_xscale("log", base=2)
    ax.set_xticks([r["sessions"] for r in rows])
    ax.set_xticklabels(["%s\n(%s)" % (r["size"], "{:,}".format(r["sessions"])) for r in rows])
    ax.minorticks_off()
    ax.set_xlabel("session table size (sessions established; log scale)")


def plot_mpps(plt, d, caption, out):
    rows = one_worker_rows(d)
    x = [r["sessions"] for r in rows]
    fig, ax = plt.subplots(figsize=FIG_SIZE)
    ax.plot(x, [r["out_mpps"] for r in rows], "o-", color="C0", label="ephemera in2out")
    ax.plot(x, [r["back_mpps"] for r in rows], "s-", color="C1", label="ephemera out2in")
    ax.plot(x, [r["floor_out_mpps"] for r in rows], "o--", color="C0", alpha=0.55,
            label="floor (testpmd io) in2out")
    ax.plot(x, [r["floor_back_mpps"] for r in rows], "s--", color="C1", alpha=0.55,
            label="floor (testpmd io) out2in")
    for r in rows:
        ax.annotate("%.2f / %.2f" % (r["out_ratio"], r["back_ratio"]),
                    (r["sessions"], max(r["out_mpps"], r["back_mpps"])),
                    textcoords="offset points", xytext=(0, 8), ha="center", fontsize=8)
    two = sorted((r for r in d["summary"] if r["workers"] == 2), key=lambda r: r["sessions"])
    if two:
        ax.plot([r["sessions"] for r in two], [r["out_mpps"] for r in two], "^", color="C2",
                markersize=9, label="ephemera in2out, 2 workers")
        ax.plot([r["sessions"] for r in two], [r["back_mpps"] for r in two], "v", color="C2",
                markersize=9, label="ephemera out2in, 2 workers")
    size_axis(ax, rows)
    ax.set_ylabel("established-flow throughput (Mpps, 64-byte frames)")
    ax.set_ylim(bottom=0)
    ax.set_title("Throughput against table size, next to the floor measured in the same run\n"
                 "(labels: ratio to the floor, in2out / out2in; one worker)")
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=8, loc="lower left")
    return save(plt, fig, caption, out, "mpps-vs-table-size.png")


def plot_latency(plt, d, caption, out):
    rows = one_worker_rows(d)
    fig, ax = plt.subplots(figsize=FIG_SIZE)
    width = 0.16
    series = [
        ("rtt50_us", "ephemera p50", "C0", 1.0),
        ("rtt99_us", "ephemera p99", "C1", 1.0),
        ("rtt999_us", "ephemera p99.9", "C3", 1.0),
        ("floor_rtt50_us", "floor p50", "C0", 0.45),
        ("floor_rtt99_us", "floor p99", "C1", 0.45),
    ]
    for i, (key, label, color, alpha) in enumerate(series):
        xs = [j + (i - 2) * width for j in range(len(rows))]
        # A bar of 0 has no place on a log axis: a percentile not measured is left out.
        ys = [r[key] if r[key] > 0 else float("nan") for r in rows]
        ax.bar(xs, ys, width, color=color, alpha=alpha, label=label,
               hatch="//" if alpha < 1 else None, edgecolor="black", linewidth=0.4)
    ax.set_xticks(range(len(rows)))
    ax.set_xticklabels(["%s sessions\n(at %.2f Mpps)" % (r["size"], r["latency_rate_mpps"])
                        for r in rows])
    ax.set_xlabel("session table size (and the offered rate: half the measured throughput)")
    ax.set_yscale("log")
    ax.set_ylabel("round-trip time (microseconds, log scale)")
    ax.set_title("Latency percentiles at half the measured rate (one worker)")
    ax.grid(True, axis="y", alpha=0.3, which="both")
    ax.legend(fontsize=8, ncol=2)
    return save(plt, fig, caption, out, "latency-percentiles.png")


def plot_session_rate(plt, d, caption, out):
    rows = one_worker_rows(d)
    x = [r["sessions"] for r in rows]
    fig, ax = plt.subplots(figsize=FIG_SIZE)
    ax.plot(x, [r["new_sessions_per_s"] / 1e6 for r in rows], "o-", color="C0",
            label="ephemera: new sessions per second")
    ax.plot(x, [r["floor_new_per_s"] / 1e6 for r in rows], "o--", color="C7",
            label="floor (testpmd io): new flows per second")
    for r in rows:
        ax.annotate("x%.2f" % r["new_ratio"], (r["sessions"], r["new_sessions_per_s"] / 1e6),
                    textcoords="offset points", xytext=(0, -14), ha="center", fontsize=8)
    size_axis(ax, rows)
    ax.set_xlabel("sessions in the table when the populate phase ends (log scale)")
    ax.set_ylabel("session-create rate (millions per second)")
    ax.set_ylim(bottom=0)
    ax.set_title("Session-create rate as the table fills (populate phase, one worker)\n"
                 "(labels: ratio to the floor measured in the same run)")
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=8)
    return save(plt, fig, caption, out, "session-create-rate.png")


# ---- the micro-benchmark ---------------------------------------------------------------------

BENCH_WRITER = "bench/run-bench.sh (Google Benchmark --benchmark_out_format=json)"


def size_value(label):
    m = SIZE_RE.match(label)
    if not m:
        return None
    return int(m.group(1)) << {"": 0, "K": 10, "M": 20, "G": 30}[m.group(2)]


def split_name(b):
    """(path, size label or None) of a benchmark: the run name without Google Benchmark's
    /iterations:N, /manual_time, /real_time, /min_time:, /repeats: parts."""
    parts = [p for p in b.get("run_name", b["name"]).split("/")
             if not re.match(r"^(iterations|min_time|repeats|threads):", p) and
             p not in ("manual_time", "real_time", "process_time")]
    if len(parts) > 1 and size_value(parts[-1]) is not None:
        return "/".join(parts[:-1]), parts[-1]
    return "/".join(parts), None


def read_bench(path):
    d = load_json(path, BENCH_WRITER)
    if not isinstance(d, dict):
        refuse(path, "not a JSON object", BENCH_WRITER)
    if not isinstance(d.get("context"), dict):
        refuse(path, 'no "context" object', BENCH_WRITER)
    if not isinstance(d.get("benchmarks"), list):
        refuse(path, 'no "benchmarks" list', BENCH_WRITER)
    for i, b in enumerate(d["benchmarks"]):
        if not isinstance(b, dict) or "name" not in b:
            refuse(path, 'benchmarks[%d] has no "name"' % i, BENCH_WRITER)
    # The median of the repetitions where there are aggregates, else the single run.
    points = {}
    for b in d["benchmarks"]:
        if b.get("run_type") == "aggregate" and b.get("aggregate_name") != "median":
            continue
        if b.get("error_occurred"):
            continue
        value = b.get("cycles_per_pkt")
        if not isinstance(value, (int, float)) or math.isnan(value):
            continue
        p, size = split_name(b)
        if size is None:
            continue
        points[(p, size)] = b
    if not points:
        refuse(path, 'no benchmark per table size with a "cycles_per_pkt" counter',
               BENCH_WRITER)
    return d, points


def bench_caption(d):
    c = d["context"]
    return "%s | host %s | revision %s | %s | EAL memory: %s" % (
        c.get("date", "date not recorded"), c.get("host_name", "not recorded"),
        c.get("revision", "not recorded"),
        c.get("command", "command not recorded (bench/run-bench.sh)"),
        c.get("eal_memory", "not recorded"))


PER_PACKET_PATHS = {"in2out", "in2out_offload", "out2in_eif", "out2in_apdf"}


def plot_cycles(plt, d, points, caption, out):
    """Two panels on one x axis: the per-packet translate paths next to the floor, and the
    per-session work (session create by allocation mode, expiry), whose cycles are ten times
    larger, with the floor drawn again for scale."""
    sizes = sorted({s for _, s in points}, key=size_value)
    x = [size_value(s) for s in sizes]
    floor = [(size_value(s), points[(FLOOR_PATH, s)]["cycles_per_pkt"])
             for s in sizes if (FLOOR_PATH, s) in points]
    if not floor and not any(p for p, _ in BENCH_PATHS for s in sizes if (p, s) in points):
        raise Refused("no translate path or floor benchmark among the sized benchmarks")
    fig, axes = plt.subplots(1, 2, figsize=(FIG_SIZE[0] * 1.25, FIG_SIZE[1]), sharex=True)
    markers = "os^vD<>ph*"
    for ax, per_packet in zip(axes, (True, False)):
        shown = 0
        for i, (p, label) in enumerate(BENCH_PATHS):
            if (p in PER_PACKET_PATHS) != per_packet:
                continue
            have = [(size_value(s), points[(p, s)]) for s in sizes if (p, s) in points]
            if not have:
                continue
            shown += 1
            style = markers[i % len(markers)]
            color = "C%d" % (i % 10)
            ax.plot([v for v, _ in have], [b["cycles_per_pkt"] for _, b in have], style + "-",
                    color=color, label=label)
            for v, b in have:
                ax.annotate("%.0f" % b["cycles_per_pkt"], (v, b["cycles_per_pkt"]),
                            textcoords="offset points", xytext=(7, 2), fontsize=8)
            to75 = [(v, b["cycles_per_pkt_to75"]) for v, b in have
                    if isinstance(b.get("cycles_per_pkt_to75"), (int, float))]
            if to75:
                ax.plot([v for v, _ in to75], [c for _, c in to75], style + ":", color=color,
                        alpha=0.5, label=label + ", up to 75 % full")
        if floor:
            ax.plot([v for v, _ in floor], [c for _, c in floor], "k--", linewidth=2,
                    label="floor: rte_hash_lookup_bulk_data (same run)")
            for v, c in floor:
                ax.annotate("%.0f" % c, (v, c), textcoords="offset points", xytext=(7, -10),
                            fontsize=8)
        notes = []
        if not shown:
            notes.append("no %s benchmark in this run" % (
                "translate-path" if per_packet else "session create or expiry"))
        if not floor:
            notes.append("floor (floor_bulk_data) not in this run")
        if notes:
            ax.text(0.5, 0.5, "\n".join(notes) + "\n(a filtered bench/run-bench.sh run)",
                    transform=ax.transAxes, ha="center", va="center", fontsize=9,
                    color="dimgray")
        ax.set_xscale("log", base=2)
        ax.set_xticks(x)
        ax.set_xticklabels(["%s\n(%s)" % (s, "{:,}".format(v)) for s, v in zip(sizes, x)])
        ax.minorticks_off()
        if len(x) == 1:
            ax.set_xlim(x[0] / 2, x[0] * 2)
        ax.set_xlabel("session table size (sessions; log scale)")
        ax.set_ylim(bottom=0, top=max(ax.get_ylim()[1], 1) * 1.3)
        ax.grid(True, alpha=0.3)
        if shown or floor:
            ax.legend(fontsize=7, loc="best")
    axes[0].set_ylabel("TSC cycles per packet")
    axes[0].set_title("Translate paths, per packet (32-packet bursts)", fontsize=10)
    axes[1].set_ylabel("TSC cycles per new session / per expired session")
    axes[1].set_title("Session create and expiry, per session", fontsize=10)
    fig.suptitle("Translation core: cycles against table size, next to the floor "
                 "(bench/translate_bench.cpp, median of the repetitions)", fontsize=11)
    return save(plt, fig, caption, out, "cycles-vs-table-size.png")


# ---- output ----------------------------------------------------------------------------------

def save(plt, fig, caption, out, name):
    fig.text(0.01, 0.01, caption, fontsize=7, color="dimgray", ha="left", va="bottom")
    fig.tight_layout(rect=(0, 0.04, 1, 1))
    path = os.path.join(out, name)
    # No date or software version in the file: the same JSON gives the same bytes.
    fig.savefig(path, dpi=DPI, metadata={"Software": None})
    plt.close(fig)
    return path


def main():
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--load", metavar="JSON", help="load run JSON (build-load/load-run.json)")
    ap.add_argument("--bench", metavar="JSON",
                    help="micro-benchmark JSON (build-bench/translate_bench.json)")
    ap.add_argument("--out", default="docs/images", help="directory for the PNGs")
    args = ap.parse_args()
    if not args.load and not args.bench:
        ap.error("give --load, --bench or both")

    # Read and check every input before drawing anything: a refused file writes no image.
    try:
        load = read_load(args.load) if args.load else None
        bench = read_bench(args.bench) if args.bench else None
    except Refused as e:
        print("plot-results: refused: %s" % e, file=sys.stderr)
        return 2

    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("plot-results: matplotlib is missing: apt-get install python3-matplotlib "
              "(scripts/install-deps.sh)", file=sys.stderr)
        return 2

    os.makedirs(args.out, exist_ok=True)
    written = []
    try:
        if load is not None:
            caption = load_caption(load, args.load)
            written.append(plot_mpps(plt, load, caption, args.out))
            written.append(plot_latency(plt, load, caption, args.out))
            written.append(plot_session_rate(plt, load, caption, args.out))
        if bench is not None:
            d, points = bench
            written.append(plot_cycles(plt, d, points, bench_caption(d), args.out))
    except Refused as e:
        print("plot-results: refused: %s: %s" % (args.bench, e), file=sys.stderr)
        return 2
    for p in written:
        print("plot-results: wrote %s" % p)
    return 0


if __name__ == "__main__":
    sys.exit(main())
