"""What the load run (bench/load_run.py) and the soak (bench/soak.py) share: ephemera and
ephemera-loadgen (or testpmd) connected over two memif ports, each process started, watched and
stopped the same way.

Topology (docs/performance.md, "Load run: the method"): the generator holds both memif servers,
SOCKET_DIR/NAME-in.sock and NAME-out.sock, so it starts first; the NAT (or the floor) holds the
clients. MACs are fixed with memif's mac= devarg; ephemera's next_hop_mac is the generator's
outside MAC, so no ARP is needed on the outside.

Debian's /usr/bin/python3, standard library only.
"""

import os
import shutil
import signal
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, os.path.join(ROOT, "scripts"))
import dpdk_telemetry  # noqa: E402  (scripts/dpdk_telemetry.py)

SOCKET_DIR = "/run/ephemera-load"

LG_IN_MAC = "02:4c:47:00:00:01"
LG_OUT_MAC = "02:4c:47:00:00:02"
DUT_IN_MAC = "02:45:50:00:00:01"
DUT_OUT_MAC = "02:45:50:00:00:02"
NEXT_HOP = "198.18.0.1"
GATEWAY = "100.64.0.1"

# EAL heap per session of capacity (four rte_hash tables sized max_sessions, extendable buckets)
# plus a fixed part (mbufs, rings): measured 2025-11 on this build; the run checks VmRSS anyway.
EAL_BYTES_PER_SESSION = 320
EAL_FIXED_MIB = 384


def log(msg):
    print(msg, flush=True)


def read(path):
    try:
        with open(path) as f:
            return f.read()
    except OSError:
        return ""


class Telemetry:
    """ephemera's telemetry (scripts/dpdk_telemetry.py); None for a reply about another
    command."""

    def __init__(self, prefix):
        self.prefix = prefix

    def query(self, cmd, timeout=5.0):
        try:
            return dpdk_telemetry.query(self.prefix, cmd, timeout)
        except KeyError:
            return None


def proc_status(pid):
    """VmRSS, VmHWM and HugetlbPages of a process in KiB, or {} once it is gone. Memory on
    hugepages is not in VmRSS: a process on hugepages holds VmRSS + HugetlbPages."""
    out = {}
    try:
        with open("/proc/%d/status" % pid) as f:
            for line in f:
                key, _, rest = line.partition(":")
                if key in ("VmRSS", "VmHWM", "HugetlbPages"):
                    out[key] = int(rest.split()[0])
    except OSError:
        pass
    return out


def busy_threads(pid, main_thread):
    """Thread ids of a DPDK process's polling threads: its EAL workers (rte-worker-N), and the
    main thread too when it polls (the generator)."""
    tids = []
    try:
        for tid in os.listdir("/proc/%d/task" % pid):
            with open("/proc/%d/task/%s/comm" % (pid, tid)) as f:
                comm = f.read().strip()
            if comm.startswith("rte-worker") or (main_thread and int(tid) == pid):
                tids.append(int(tid))
    except OSError:
        pass
    return sorted(tids)


def schedstat(pid, tid):
    """(ns on a CPU, ns runnable but waiting for one) of a thread, or None."""
    try:
        with open("/proc/%d/task/%d/schedstat" % (pid, tid)) as f:
            run, wait, _ = f.read().split()
        return int(run), int(wait)
    except (OSError, ValueError):
        return None


def named_thread_cpu_ns(pid, name):
    """Total ns on a CPU of a process's threads called `name` (e.g. "eph-logging"); 0 when it
    has none."""
    total = 0
    try:
        for tid in os.listdir("/proc/%d/task" % pid):
            with open("/proc/%d/task/%s/comm" % (pid, tid)) as f:
                if f.read().strip() != name:
                    continue
            st = schedstat(pid, int(tid))
            total += st[0] if st else 0
    except OSError:
        pass
    return total


class CpuShare:
    """How much of a CPU each polling thread got between two samples: on a shared host a busy
    poller gets less than all of its CPU, and that, not the code, can set the rate."""

    def __init__(self):
        self.first = {}
        self.last = {}

    def sample(self, label, pid, main_thread):
        now = time.monotonic()
        for tid in busy_threads(pid, main_thread):
            st = schedstat(pid, tid)
            if st is None:
                continue
            key = "%s/%d" % (label, tid)
            self.first.setdefault(key, (now, st))
            self.last[key] = (now, st)

    def result(self):
        out = {}
        for key, (t0, (r0, w0)) in self.first.items():
            t1, (r1, w1) = self.last[key]
            if t1 - t0 < 1:
                continue
            wall = (t1 - t0) * 1e9
            out[key] = {"cpu_share": (r1 - r0) / wall, "waiting_share": (w1 - w0) / wall}
        return out


def pow2_ceil(n):
    p = 1
    while p < n:
        p <<= 1
    return p


def ephemera_mem_mib(max_sessions, workers):
    share = pow2_ceil((max_sessions + workers - 1) // workers)
    return EAL_FIXED_MIB + (share * workers * EAL_BYTES_PER_SESSION) // (1 << 20)


def ephemera_config(pool, port_range, max_sessions, timeouts=None, filtering="endpoint-independent",
                    extra=None, comment="written by bench/memif_lab.py"):
    """ephemera's TOML for the memif topology. pool: list of addresses or prefixes; timeouts:
    {key: seconds}; extra: {table: {key: value}} added as is (values already TOML)."""
    lines = ["# " + comment]
    if timeouts:
        lines += ["[timeouts]"] + ["%s = %s" % (k, v) for k, v in timeouts.items()] + [""]
    lines += [
        "[pool]",
        "addresses = [%s]" % ", ".join('"%s"' % a for a in pool),
        'port_range = "%s"' % port_range,
        "",
        "[inside]",
        'port = "net_memif0"',
        'gateway = "%s"' % GATEWAY,
        "",
        "[outside]",
        'port = "net_memif1"',
        'next_hop = "%s"' % NEXT_HOP,
        'next_hop_mac = "%s"' % LG_OUT_MAC,
        "",
        "[filtering]",
        'mode = "%s"' % filtering,
        "",
        "[limits]",
        "max_sessions = %d" % max_sessions,
    ]
    extra = extra or {}
    lines += ["%s = %s" % (k, v) for k, v in extra.get("limits", {}).items()]
    for table, keys in extra.items():
        if table != "limits":
            lines += ["", "[%s]" % table] + ["%s = %s" % (k, v) for k, v in keys.items()]
    return "\n".join(lines) + "\n"


def socket_paths(name):
    return ["%s/%s-%s.sock" % (SOCKET_DIR, name, s) for s in ("in", "out")]


def memif_vdev(index, name, side, mac):
    return ("net_memif%d,role=client,socket=%s/%s-%s.sock,socket-abstract=no,mac=%s"
            % (index, SOCKET_DIR, name, side, mac))


def memif_vdevs(name):
    """The NAT's (or the floor's) two memif clients, inside then outside."""
    return ["--vdev", memif_vdev(0, name, "in", DUT_IN_MAC),
            "--vdev", memif_vdev(1, name, "out", DUT_OUT_MAC)]


def eal_memory_args(eal_mem_mib, memory=None):
    """The EAL memory options of one process of at most eal_mem_mib MiB: from `memory` (a
    bench/hugepages.py Reservation: hugepages, or --no-huge when it fell back), else 4 KiB
    pages (--no-huge -m)."""
    if memory is not None:
        return memory.eal_args(eal_mem_mib)
    return ["--no-huge", "-m", str(eal_mem_mib)]


def loadgen_command(binary, name, args, eal_mem_mib=512, memory=None):
    """ephemera-loadgen on lcore 0 (CPU 0) with the topology's MACs, then `args` (its own
    options: flows, rates, pool, ...)."""
    return [binary, "-l", "0"] + eal_memory_args(eal_mem_mib, memory) + ["--no-pci",
            "--file-prefix", "lg-" + name, "--log-level", "lib.eal:notice",
            "--", "--name", name, "--next-hop", NEXT_HOP, "--gateway", GATEWAY,
            "--in-mac", LG_IN_MAC, "--out-mac", LG_OUT_MAC,
            "--dut-in-mac", DUT_IN_MAC, "--dut-out-mac", DUT_OUT_MAC] + args


def ephemera_command(binary, name, config_path, workers, eal_mem_mib, app_args=(),
                     memory=None):
    """ephemera with its control lcore on CPU 0 and workers alternating CPU 1, CPU 0, ... (on
    2 CPUs a second worker shares CPU 0 with the generator)."""
    lcores = ",".join("%d@%d" % (i, i % 2) for i in range(workers + 1))
    return [binary, "--lcores", lcores] + eal_memory_args(eal_mem_mib, memory) + [
            "--no-pci", "--file-prefix", "dut-" + name, "--log-level", "lib.eal:notice"] + \
        memif_vdevs(name) + ["--", "--config", config_path] + list(app_args)


def start(cmd, log_path, nice=0):
    """Starts a process with its output in log_path."""
    with open(log_path, "w") as f:
        return subprocess.Popen(cmd, stdout=f, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                preexec_fn=(lambda: os.nice(nice)) if nice else None)


def wait_for_sockets(loadgen, name, log_path, timeout=120):
    """Until the generator has created both memif listeners (EAL start-up is slow on a starved
    host); raises RuntimeError with its log if it exits or takes too long."""
    deadline = time.monotonic() + timeout
    while not all(os.path.exists(s) for s in socket_paths(name)):
        if loadgen.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError("loadgen did not create its sockets:\n" + read(log_path))
        time.sleep(0.05)


def stop(proc, sig=signal.SIGINT, timeout=60):
    """Asks a process to stop (SIGINT: ephemera and the loadgen end cleanly), then kills it.
    Returns its exit status."""
    if proc.poll() is None:
        proc.send_signal(sig)
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    return proc.returncode


def remove_run_files(name, memory=None):
    """The memif sockets and both EALs' runtime directories of run `name`, and their hugepage
    files when `memory` (a bench/hugepages.py Reservation) gave them hugepages."""
    for path in socket_paths(name):
        if os.path.exists(path):
            os.unlink(path)
    for prefix in ("lg-" + name, "dut-" + name):
        shutil.rmtree("/var/run/dpdk/%s" % prefix, ignore_errors=True)
    if memory is not None:
        memory.remove_page_files(["lg-" + name, "dut-" + name])


def describe_revision():
    """The commit measured, read-only (no index refresh), and whether the tree differs."""
    env = dict(os.environ, GIT_OPTIONAL_LOCKS="0")
    head = subprocess.run(["git", "-C", ROOT, "rev-parse", "--short", "HEAD"], env=env,
                          capture_output=True, text=True).stdout.strip() or "unknown"
    dirty = subprocess.run(["git", "-C", ROOT, "diff", "--quiet", "HEAD", "--"], env=env,
                           capture_output=True).returncode == 1
    return head + ("+local changes" if dirty else "")
