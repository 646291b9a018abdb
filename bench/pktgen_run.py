"""An independent load client for ephemera: Pktgen-DPDK, not bench/loadgen, drives it over memif.

For each flow count it starts one Pktgen (two memif servers: port 0 faces the inside, port 1 the
outside) and connects, one after the other and interleaved A B A B, the device under test as the
memif client:
  A  the floor: dpdk-testpmd --forward-mode=io (port 0 -> port 1 unchanged)
  B  ephemera, one worker, limits.max_sessions = the flow count (bench/memif_lab.py's config,
     outside.next_hop_mac = Pktgen's port 1, so no ARP is needed)
Pktgen sends into port 0 and counts what comes back on port 1; it cannot answer as a server, so
this is inside-to-outside throughput over established sessions. Flow counts: "range" (Pktgen's
range mode, bench/lab/pktgen-range.pkt: 8192 x 3 = 24,576 flows, the most range mode makes) and
pcap mode for anything else ("64K", "1M": S x 64 flows, one frame per flow, written by
bench/gen-lab-pcap.py and replayed through bench/lab/pktgen-pcap.pkt).

Each run: the DUT connects; Pktgen sends at "rate 1" (1 % of the 100G memif claims: memif's
backpressure holds it back, nothing is lost) until every flow has been through once and, for
ephemera, every flow has its session (sessions_created = flows: its first packet made it, and
was translated); then "rate 100" (as fast as the DUT takes), --warmup seconds, and a window of
--duration seconds over which the received rate is Pktgen's port 1 ipackets (read from Pktgen's
own EAL telemetry socket, /ethdev/stats,1) over time. Then a capture: Pktgen's "enable 1
capture" for a moment, every captured frame checked (see check_capture); then "stop 0", the
rings drain, and the counters are checked (see counter_checks): every frame Pktgen sent reached
the DUT and every frame Pktgen received is one the DUT sent, for ephemera a translation.

CPU layout (2 CPUs): Pktgen on CPU 0 (one lcore, rte-worker-1, sends and receives on both
ports; its CLI thread and its display timer thread spin too and are put at SCHED_IDLE); the DUT's
forwarding lcore on CPU 1 and its main lcore on CPU 0, where it sleeps. Everything at nice
--nice. Each run reports the CPU share of both polling threads (schedstat), the host's load
average and how much of the two CPUs other processes took during the window.

Pktgen is not a Debian package: the binary comes from $PKTGEN or the PATH; docs/lab.md
("Pktgen-DPDK") says where to get Pktgen-DPDK 23.03 and the memif MTU change it needs. Without
it the run exits 77 (skipped). --self-check checks the argument parsing, the pcap and the
capture check without Pktgen, root or DPDK (a meson test).

Run as root through bench/pktgen-run.sh. Debian's /usr/bin/python3, standard library only.
"""

import argparse
import importlib.util
import ipaddress
import json
import os
import pty
import re
import shutil
import signal
import statistics
import struct
import subprocess
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import memif_lab  # noqa: E402
from memif_lab import (CpuShare, Telemetry, describe_revision, ephemera_command,  # noqa: E402
                       ephemera_mem_mib, log, read, start, stop, ROOT, SOCKET_DIR,
                       LG_IN_MAC, LG_OUT_MAC, DUT_IN_MAC, DUT_OUT_MAC)
import counter_checks  # noqa: E402


def load_gen():
    """bench/gen-lab-pcap.py as a module (its name has dashes)."""
    spec = importlib.util.spec_from_file_location("gen_lab_pcap",
                                                  os.path.join(HERE, "gen-lab-pcap.py"))
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


GEN = load_gen()

POOL = "198.19.0.0/24"
PORT_RANGE = "1024-65535"
FLOWS_PER_SUBSCRIBER = 64
RANGE_FLOWS = 8192 * 3           # bench/lab/pktgen-range.pkt: 8192 subscribers x 3 ports
RANGE_PROFILE = os.path.join(HERE, "lab", "pktgen-range.pkt")
PCAP_PROFILE = os.path.join(HERE, "lab", "pktgen-pcap.pkt")
SKIP = 77                        # meson's and automake's "skipped"

MISSING_PKTGEN = """\
pktgen-run: Pktgen-DPDK not found{detail}.
  Set PKTGEN=/path/to/pktgen or put pktgen on the PATH.
  Pktgen-DPDK is not a Debian package: docs/lab.md ("Pktgen-DPDK") says where to get
  Pktgen-DPDK 23.03.0 (git tag pktgen-23.03.0), how to build it against Debian's DPDK 22.11
  and the one-line memif MTU change it needs. Skipping (exit status 77)."""


# ---- arguments ---------------------------------------------------------------------------------


def parse_flows(text):
    """"range,64K,1M" -> [("range", "range", 24576, None), ("64K", "pcap", 65536, 1024), ...]:
    (label, mode, flows, subscribers). pcap counts are S x 64 flows."""
    out = []
    for tok in text.split(","):
        tok = tok.strip()
        if not tok:
            continue
        if tok.lower() == "range":
            out.append(("range", "range", RANGE_FLOWS, RANGE_FLOWS // 3))
            continue
        m = re.fullmatch(r"(\d+)([KkMm]?)", tok)
        if not m:
            raise ValueError("flow count %r: a number with K or M (64K, 1M) or 'range'" % tok)
        n = int(m.group(1)) * {"": 1, "k": 1 << 10, "m": 1 << 20}[m.group(2).lower()]
        if n < FLOWS_PER_SUBSCRIBER or n % FLOWS_PER_SUBSCRIBER or n > (1 << 22):
            raise ValueError("flow count %s: a multiple of %d up to 4M" % (
                tok, FLOWS_PER_SUBSCRIBER))
        out.append((tok.upper(), "pcap", n, n // FLOWS_PER_SUBSCRIBER))
    if not out:
        raise ValueError("no flow count")
    return out


def find_pktgen(env=None):
    """(path, None) or (None, why): $PKTGEN, else pktgen on the PATH."""
    env = os.environ if env is None else env
    given = env.get("PKTGEN")
    if given:
        if os.path.isfile(given) and os.access(given, os.X_OK):
            return given, None
        return None, " at PKTGEN=%s (no such executable)" % given
    found = shutil.which("pktgen", path=env.get("PATH"))
    if found:
        return found, None
    return None, " (PKTGEN is not set and there is no pktgen on the PATH)"


def pktgen_mem_mib(mode, flows):
    """EAL -m for Pktgen with --no-huge: about 2.5 GB for two ports whatever the mode (-m 2560
    fails, 3072 works), plus its copy of the pcap, about 316 bytes per 64-byte frame (1 M: 3584
    works, 3072 fails); rounded up to 512 MiB."""
    extra = 0 if mode == "range" else flows * 400 // (1 << 20)
    return 3072 + (-(-extra // 512) * 512 if extra > 256 else 0)


def pcap_path(directory, subscribers):
    return os.path.join(directory, "pktgen-flows-%dx%d.pcap" % (subscribers, FLOWS_PER_SUBSCRIBER))


def ensure_pcap(directory, subscribers):
    """The pcap of S x 64 flows addressed to the DUT's inside MAC from Pktgen's port 0; kept in
    `directory` and reused while its size is right (1 M flows take 10-20 s to write)."""
    path = pcap_path(directory, subscribers)
    n = subscribers * FLOWS_PER_SUBSCRIBER
    if os.path.exists(path) and os.path.getsize(path) == 24 + n * (16 + 60):
        return path
    os.makedirs(directory, exist_ok=True)
    tmp = path + ".tmp"
    GEN.write_pcap(tmp, GEN.frames(subscribers, FLOWS_PER_SUBSCRIBER, dst_mac=DUT_IN_MAC,
                                   src_mac=LG_IN_MAC))
    os.replace(tmp, path)
    return path


# ---- checking what came out --------------------------------------------------------------------


def _csum(data):
    return GEN.csum(bytes(data)) == 0xFFFF


def check_capture(frames, kind, mode, pool=POOL, port_range=PORT_RANGE):
    """Checks frames Pktgen captured on port 1. kind "ephemera": each frame must be a translation
    (MACs ephemera outside -> Pktgen port 1, TTL 63, IPv4 and UDP/TCP checksums right, source
    address in the pool and source port in the range, and in pcap mode the destination, its
    port and the protocol those of the flow named by the flow id at offset 42; across the
    sample one external endpoint per inside endpoint and back, and one pool address per
    subscriber, i.e. paired pooling). kind "floor": each frame must be exactly what Pktgen sent
    (pcap mode: the flow's frame byte for byte; range mode: source in the subscribers). Returns
    {"frames", "flows", "from_pool", "errors": {reason: count}}."""
    net = ipaddress.ip_network(pool)
    pool_lo, pool_hi = int(net.network_address), int(net.broadcast_address)
    port_lo, port_hi = (int(x) for x in port_range.split("-"))
    templates = GEN.templates_for(64, DUT_IN_MAC, LG_IN_MAC)
    errors = {}
    to_ext, to_in, sub_addr = {}, {}, {}
    flows = set()
    n = from_pool = 0

    def err(reason):
        errors[reason] = errors.get(reason, 0) + 1

    for f in frames:
        n += 1
        if len(f) < 54 or f[12:14] != b"\x08\x00" or f[14] != 0x45 or f[23] not in (6, 17):
            err("not IPv4 UDP/TCP without options")
            continue
        proto = f[23]
        src, dst = struct.unpack_from("!II", f, 26)
        sport, dport = struct.unpack_from("!HH", f, 34)
        if pool_lo <= src <= pool_hi:
            from_pool += 1
        if kind == "floor":
            if mode == "pcap":
                flow = struct.unpack_from("!I", f, 42)[0]
                flows.add(flow)
                if f != GEN.frame(flow, FLOWS_PER_SUBSCRIBER, 256, "mix", templates):
                    err("not the frame Pktgen sent")
            elif not (GEN.SUBSCRIBER_BASE <= src < GEN.SUBSCRIBER_BASE + RANGE_FLOWS // 3):
                err("source not a subscriber")
            continue
        if f[0:6] != GEN.mac_bytes(LG_OUT_MAC) or f[6:12] != GEN.mac_bytes(DUT_OUT_MAC):
            err("MACs")
        if f[22] != 63:
            err("TTL not 63")
        if not _csum(f[14:34]):
            err("IPv4 checksum")
        total = struct.unpack_from("!H", f, 16)[0]
        l4 = f[34:14 + total]
        if not (proto == 17 and l4[6:8] == b"\0\0"):
            pseudo = struct.pack("!IIBBH", src, dst, 0, proto, len(l4))
            if not _csum(pseudo + l4):
                err("UDP/TCP checksum")
        if not pool_lo <= src <= pool_hi:
            err("source not in the pool")
        if not port_lo <= sport <= port_hi:
            err("source port not in the range")
        ext = (src, sport)
        if mode == "pcap":
            flow = struct.unpack_from("!I", f, 42)[0]
            flows.add(flow)
            isrc, isport, fdst, fdport, fproto = GEN.tuple_of(flow, FLOWS_PER_SUBSCRIBER, 256,
                                                              "mix")
            if (dst, dport) != (fdst, fdport):
                err("destination changed")
            if proto != fproto:
                err("protocol changed")
            inside = (proto, isrc, isport)
            if to_ext.setdefault(inside, ext) != ext:
                err("inside endpoint seen with two external endpoints")
            if to_in.setdefault((proto,) + ext, inside) != inside:
                err("external endpoint seen for two inside endpoints")
            if sub_addr.setdefault(isrc, src) != src:
                err("subscriber on two pool addresses")
        else:
            flows.add((proto, src, sport, dst, dport))
            if not (GEN.SERVER_BASE <= dst < GEN.SERVER_BASE + 256 and dport == 443):
                err("destination not a server of the range profile")
    return {"frames": n, "flows": len(flows), "from_pool": from_pool, "errors": errors}


def pktgen_counter_checks(kind, pg, dut_ports, eph=None):
    """pg: Pktgen's port counters over the DUT's life (tx0, rx1, rx0, tx1), read once the rings
    had drained; dut_ports: the DUT's own /ethdev/stats,0 and ,1 at that moment; eph: for
    ephemera, /ephemera/stats then. Wire checks (memif loses nothing once a port took a frame):
    what Pktgen's port 0 sent is what the DUT's inside port received, what the DUT's outside
    port sent is what Pktgen's port 1 received. For ephemera also: everything it sent there was
    a translation (or a frame of its own, such as an ARP request, counted), every packet in was
    translated, and its own equations hold (bench/counter_checks.py)."""
    chk = counter_checks.check
    d0, d1 = dut_ports.get(0) or {}, dut_ports.get(1) or {}
    out = [chk("nothing back on port 0", pg["rx0"], 0, ["pktgen port 0 ipackets"], ["0"],
               "no out2in traffic in this run"),
           chk("inside wire", pg["tx0"], d0.get("ipackets"), ["pktgen port 0 opackets"],
               ["DUT port 0 ipackets"], "Pktgen -> DUT, inside ring"),
           chk("outside wire", d1.get("opackets"), pg["rx1"], ["DUT port 1 opackets"],
               ["pktgen port 1 ipackets"], "DUT -> Pktgen, outside ring")]
    if kind == "floor":
        return out
    c = eph
    out += counter_checks.ethdev_checks(c, dut_ports)
    originated = counter_checks._sum(c, counter_checks.ORIGINATED)
    out.append(chk("only translations out", c["in2out_tx"] + c["drop_tx_full"],
                   c["in2out_translated"] + originated,
                   ["in2out_tx", "drop_tx_full"], ["in2out_translated"] +
                   counter_checks.ORIGINATED, "worker.cpp flush_tx; out2in_rx is 0"))
    out.append(chk("every packet translated", c["in2out_translated"], c["in2out_rx"],
                   ["in2out_translated"], ["in2out_rx"], "no packet dropped on the way in"))
    out += counter_checks.ephemera_checks(c)
    return out


# ---- Pktgen under a pseudo-terminal ------------------------------------------------------------


class Pktgen:
    """Pktgen-DPDK with its CLI on a pseudo-terminal (it needs one), its two ports memif servers
    at SOCKET_DIR/NAME-in.sock and NAME-out.sock, its counters read from its EAL's telemetry
    socket (/ethdev/stats,N), so nothing is scraped off its screen."""

    PROMPT = b"Pktgen:/>"

    def __init__(self, binary, name, workdir, mode, pcap, mem_mib, nice):
        self.name = name
        self.prefix = "pg-" + name
        self.workdir = workdir
        self.log_path = os.path.join(workdir, name + "-pktgen.log")
        self.telemetry = Telemetry(self.prefix)
        vdevs = []
        for i, (side, mac) in enumerate((("in", LG_IN_MAC), ("out", LG_OUT_MAC))):
            vdevs += ["--vdev", "net_memif%d,role=server,socket=%s/%s-%s.sock,socket-abstract=no,"
                      "mac=%s" % (i, SOCKET_DIR, name, side, mac)]
        self.cmd = [binary, "--lcores", "0@0,1@0", "--no-huge", "-m", str(mem_mib), "--no-pci",
                    "--file-prefix", self.prefix, "--log-level", "lib.eal:notice"] + vdevs + \
            ["--", "-P", "-m", "1.[0-1]",
             "-f", RANGE_PROFILE if mode == "range" else PCAP_PROFILE] + \
            ([] if mode == "range" else ["-s", "0:" + pcap])
        self.nice = nice
        self.proc = None
        self.master = None
        self.buf = bytearray()
        self.lock = threading.Lock()

    def start(self, timeout=600):
        master, slave = pty.openpty()
        self.master = master
        self.logf = open(self.log_path, "wb")
        nice = self.nice
        self.proc = subprocess.Popen(
            self.cmd, stdin=slave, stdout=slave, stderr=slave, cwd=self.workdir,
            preexec_fn=lambda: (os.setsid(), os.nice(nice) if nice else None))
        os.close(slave)
        threading.Thread(target=self._reader, daemon=True).start()
        deadline = time.monotonic() + timeout
        while self.PROMPT not in self.output():
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("Pktgen did not start (exit %s); its output is in %s:\n%s" % (
                    self.proc.poll(), self.log_path, self.text()[-3000:]))
            time.sleep(0.2)
        self.send("off")  # no screen updates: nothing to draw, nobody reads them
        self.send("disable 1 process")  # next_hop_mac is configured: no ARP to answer
        self.quiet_control_threads()

    def _reader(self):
        while True:
            try:
                data = os.read(self.master, 65536)
            except OSError:
                return
            if not data:
                return
            self.logf.write(data)
            self.logf.flush()
            with self.lock:
                self.buf += data
                if len(self.buf) > (1 << 20):
                    del self.buf[:len(self.buf) - (1 << 19)]

    def output(self):
        with self.lock:
            return bytes(self.buf)

    def text(self):
        return re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", self.output().decode("utf-8", "replace"))

    def send(self, command, pause=0.3):
        os.write(self.master, (command + "\r").encode())
        time.sleep(pause)

    def quiet_control_threads(self):
        """Pktgen's CLI thread and its display timer thread (both named like the process) spin;
        at SCHED_IDLE they only take CPU 0 when the polling lcore does not want it. Returns the
        thread ids changed."""
        pid = self.proc.pid
        changed = []
        comm = read("/proc/%d/comm" % pid).strip()
        for tid in os.listdir("/proc/%d/task" % pid):
            t = int(tid)
            if read("/proc/%d/task/%d/comm" % (pid, t)).strip() != comm:
                continue
            try:
                os.sched_setscheduler(t, os.SCHED_IDLE, os.sched_param(0))
            except OSError:
                os.setpriority(os.PRIO_PROCESS, t, 19)
            changed.append(t)
        return changed

    def stats(self):
        """{"tx0", "rx0", "tx1", "rx1", "t"}: the ports' counters now."""
        t0 = time.monotonic()
        p0 = self.telemetry.query("/ethdev/stats,0")
        p1 = self.telemetry.query("/ethdev/stats,1")
        t1 = time.monotonic()
        if not p0 or not p1:
            raise RuntimeError("Pktgen's telemetry did not answer /ethdev/stats")
        return {"tx0": p0["opackets"], "rx0": p0["ipackets"], "tx1": p1["opackets"],
                "rx1": p1["ipackets"], "t": (t0 + t1) / 2,
                "lost": sum(p.get(k, 0) for p in (p0, p1)
                            for k in ("imissed", "ierrors", "rx_nombuf", "oerrors"))}

    def links_up(self):
        for port in (0, 1):
            st = self.telemetry.query("/ethdev/link_status,%d" % port)
            if not st or st.get("status") != "UP":
                return False
        return True

    def capture(self, seconds=0.5, timeout=120):
        """Port 1's received frames for a moment (Pktgen's capture: a 4 MB buffer, about 58,000
        64-byte frames, written as pktgen-<time>-1.pcap in its working directory when capture
        is disabled). Returns the frames."""
        before = set(os.listdir(self.workdir))
        mark = len(self.output())
        self.send("enable 1 capture", pause=seconds)
        self.send("disable 1 capture", pause=0)
        deadline = time.monotonic() + timeout
        count = None
        while time.monotonic() < deadline:
            m = re.search(rb"Used [\d,]+, count ([\d,]+)", self.output()[mark:])
            if m:
                count = int(m.group(1).replace(b",", b""))
            new = [f for f in set(os.listdir(self.workdir)) - before
                   if re.fullmatch(r"pktgen-.*-1\.pcap", f)]
            if count is not None and new:
                path = os.path.join(self.workdir, new[0])
                got = list(GEN.read_pcap(path))
                if len(got) >= count:
                    os.unlink(path)
                    return got
            time.sleep(0.5)
        raise RuntimeError("Pktgen's capture did not come (count %s)" % count)

    def quit(self):
        if self.proc is None:
            return
        if self.proc.poll() is None:
            try:
                self.send("stop 0")
                self.send("quit", pause=0)
                self.proc.wait(timeout=30)
            except (OSError, subprocess.TimeoutExpired):
                self.proc.kill()
                self.proc.wait()
        try:
            os.close(self.master)
        except OSError:
            pass
        self.logf.close()
        shutil.rmtree("/var/run/dpdk/" + self.prefix, ignore_errors=True)
        for s in memif_lab.socket_paths(self.name):
            if os.path.exists(s):
                os.unlink(s)


# ---- host load ---------------------------------------------------------------------------------


def cpu_times():
    """(busy seconds of all CPUs, the host's), from /proc/stat."""
    with open("/proc/stat") as f:
        fields = [int(x) for x in f.readline().split()[1:]]
    hz = os.sysconf("SC_CLK_TCK")
    idle = fields[3] + fields[4]
    return (sum(fields[:8]) - idle) / hz


def proc_cpu(pid):
    """CPU seconds a process used (all its threads), or 0 once gone."""
    try:
        with open("/proc/%d/stat" % pid) as f:
            rest = f.read().rsplit(")", 1)[1].split()
        return (int(rest[11]) + int(rest[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, IndexError, ValueError):
        return 0.0


# ---- one measurement ---------------------------------------------------------------------------


class Runner:
    def __init__(self, args, workdir):
        self.args = args
        self.workdir = workdir
        self.ephemera = os.path.join(args.build, "control", "ephemera")
        self.count = 0

    def dut_command(self, kind, name, flows):
        prefix = "dut-" + name
        if kind == "floor":
            return ["dpdk-testpmd", "-l", "0,1", "--no-huge", "-m", "512", "--no-pci",
                    "--file-prefix", prefix, "--log-level", "lib.eal:notice"] + \
                memif_lab.memif_vdevs(name) + [
                "--", "--forward-mode=io", "--stats-period", "1", "--nb-cores=1",
                "--total-num-mbufs=32768", "--no-mlockall", "--rxq=1", "--txq=1"], 512
        cfg = os.path.join(self.workdir, name + ".toml")
        with open(cfg, "w") as f:
            f.write(memif_lab.ephemera_config([POOL], PORT_RANGE, flows,
                                              comment="written by bench/pktgen_run.py"))
        mem = ephemera_mem_mib(flows, 1)
        return ephemera_command(self.ephemera, name, cfg, 1, mem), mem

    def run_one(self, pg, kind, label, flows, mode):
        a = self.args
        self.count += 1
        name = pg.name
        dut_log = os.path.join(self.workdir, "%s-%d-%s.log" % (name, self.count, kind))
        cmd, mem = self.dut_command(kind, name, flows)
        dut = start(cmd, dut_log, nice=a.nice)
        result = {"kind": kind, "label": label, "flows": flows, "mode": mode,
                  "dut_command": " ".join(cmd), "eal_mem_mib": mem}
        telemetry = Telemetry("dut-" + name)
        try:
            deadline = time.monotonic() + 300
            while True:
                if dut.poll() is not None:
                    raise RuntimeError("%s exited %d at start:\n%s" % (
                        kind, dut.returncode, read(dut_log)[-3000:]))
                if time.monotonic() > deadline:
                    raise RuntimeError("%s's memif ports did not come up" % kind)
                if pg.links_up() and (kind == "floor" or
                                      self.eph_stats(telemetry) is not None):
                    break
                time.sleep(0.2)
            # Only now: a memif server port reads 0 while it has no client, and its counts
            # carry on from the last client's once the next one is connected.
            base = pg.stats()

            # Populate: every flow once at a rate the DUT takes (memif holds Pktgen back).
            pg.send("set 0 rate %g" % a.populate_rate)
            pg.send("start 0")
            t0 = time.monotonic()
            deadline = t0 + a.populate_timeout
            while True:
                s = pg.stats()
                done = s["rx1"] - base["rx1"] >= flows
                if kind == "ephemera":
                    st = self.eph_stats(telemetry) or {}
                    done = done and st.get("sessions_created", 0) >= flows
                if done:
                    break
                if dut.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError("%s: populate did not finish (%d of %d flows back)" % (
                        kind, s["rx1"] - base["rx1"], flows))
                time.sleep(0.2)
            result["populate_s"] = time.monotonic() - t0
            if kind == "ephemera":
                result["sessions_after_populate"] = st.get("live_sessions")

            # Steady state: as fast as the DUT takes.
            pg.send("set 0 rate 100")
            time.sleep(a.warmup)
            perf = self.start_perf(dut.pid, "%s-%d-%s" % (name, self.count, kind)) \
                if a.perf else None
            share = CpuShare()
            samples = []
            load0 = os.getloadavg()[0]
            host0, ours0 = cpu_times(), proc_cpu(pg.proc.pid) + proc_cpu(dut.pid)
            end = time.monotonic() + a.duration
            while True:
                share.sample("pktgen", pg.proc.pid, False)
                share.sample(kind, dut.pid, False)
                samples.append(pg.stats())
                if time.monotonic() >= end:
                    break
                time.sleep(min(0.5, max(0.0, end - time.monotonic())))
            host1, ours1 = cpu_times(), proc_cpu(pg.proc.pid) + proc_cpu(dut.pid)
            if perf:
                result["perf"] = self.finish_perf(*perf)
            first, last = samples[0], samples[-1]
            dt = last["t"] - first["t"]
            result["window_s"] = dt
            result["rx_mpps"] = (last["rx1"] - first["rx1"]) / dt / 1e6
            result["tx_mpps"] = (last["tx0"] - first["tx0"]) / dt / 1e6
            per = [(b["rx1"] - a_["rx1"]) / (b["t"] - a_["t"]) / 1e6
                   for a_, b in zip(samples, samples[1:]) if b["t"] > a_["t"]]
            result["rx_mpps_min_max"] = [min(per), max(per)] if per else []
            cpu = share.result()
            result["cpu"] = cpu
            result["cpu_pktgen"] = min([v["cpu_share"] for k, v in cpu.items()
                                        if k.startswith("pktgen/")] or [0.0])
            result["cpu_dut"] = min([v["cpu_share"] for k, v in cpu.items()
                                     if k.startswith(kind + "/")] or [0.0])
            result["host"] = {
                "loadavg_1min": [load0, os.getloadavg()[0]],
                # CPU time of everything else on the host, in CPUs (of 2), over the window
                "others_cpus": max(0.0, (host1 - host0) - (ours1 - ours0)) / dt,
            }

            # A sample of what came out, then stop and let the rings drain.
            if a.capture:
                frames = pg.capture()
                result["capture"] = check_capture(frames, kind, mode)
            pg.send("stop 0")
            prev = pg.stats()
            while True:
                time.sleep(0.5)
                now = pg.stats()
                if now["rx1"] == prev["rx1"] and now["tx0"] == prev["tx0"]:
                    break
                prev = now
            counts = {k: now[k] - base[k] for k in ("tx0", "rx0", "tx1", "rx1", "lost")}
            result["pktgen_counts"] = counts
            eph = None
            if kind == "ephemera":
                eph = self.eph_stats(telemetry)
                result["ephemera_stats"] = eph
            dut_ports = {p: telemetry.query("/ethdev/stats,%d" % p) for p in (0, 1)}
            result["dut_ethdev"] = dut_ports
            # what the DUT received but could not send: a full ring towards Pktgen's port 1
            result["dut_dropped"] = dut_ports[0]["ipackets"] - dut_ports[1]["opackets"]
            checks = pktgen_counter_checks(kind, counts, dut_ports, eph)
            result["counter_checks"] = checks
            result["counter_failures"] = [c["name"] for c in checks if not c["holds"]]
        finally:
            stop(dut)
            shutil.rmtree("/var/run/dpdk/dut-" + name, ignore_errors=True)
            # the memif server notices the client gone; wait so the next one finds it free
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline:
                try:
                    if not pg.links_up():
                        break
                except (OSError, ValueError):
                    break
                time.sleep(0.2)
        return result

    def start_perf(self, pid, tag):
        """perf record (software clock: this VM has no hardware counters) of the DUT's
        forwarding thread over the window."""
        tids = memif_lab.busy_threads(pid, False)
        path = os.path.join(self.workdir, tag + ".perf.data")
        proc = subprocess.Popen(["perf", "record", "-e", "cpu-clock", "-F", "1999", "-o", path,
                                 "-t", ",".join(str(t) for t in tids)],
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        return proc, path

    @staticmethod
    def finish_perf(proc, path, top=25):
        """Stops perf; the symbols with their share of the samples, most first."""
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        rep = subprocess.run(["perf", "report", "-i", path, "--stdio", "--no-children",
                              "--sort", "dso,sym", "--percent-limit", "0.5"],
                             capture_output=True, text=True).stdout
        rows = []
        for line in rep.splitlines():
            m = re.match(r"\s*([\d.]+)%\s+(\S+)\s+\[.\]\s+(.*)", line)
            if m:
                rows.append([float(m.group(1)), m.group(2), m.group(3).strip()])
        rep = subprocess.run(["perf", "report", "-i", path, "--stdio", "--no-children",
                              "--sort", "dso"], capture_output=True, text=True).stdout
        dsos = []
        for line in rep.splitlines():
            m = re.match(r"\s*([\d.]+)%\s+(\S+)\s*$", line)
            if m:
                dsos.append([float(m.group(1)), m.group(2)])
        return {"data": path, "top": rows[:top], "dso": dsos}

    @staticmethod
    def eph_stats(telemetry):
        try:
            return telemetry.query("/ephemera/stats", timeout=2.0)
        except (OSError, ValueError):
            return None


# ---- summary -----------------------------------------------------------------------------------


def median(xs):
    xs = [x for x in xs if x is not None]
    return statistics.median(xs) if xs else 0.0


def summarise(results, flow_counts, min_share):
    rows = []
    for label, mode, flows, _ in flow_counts:
        runs = [r for r in results if r["label"] == label]
        pairs = {}
        for r in runs:
            pairs.setdefault(r["pair"], {})[r["kind"]] = r
        full = [(p["floor"], p["ephemera"]) for _, p in sorted(pairs.items())
                if "floor" in p and "ephemera" in p]
        if not full:
            continue
        clean = [(f, e) for f, e in full
                 if min(f["cpu_pktgen"], f["cpu_dut"], e["cpu_pktgen"], e["cpu_dut"]) >= min_share]
        ratios = [e["rx_mpps"] / f["rx_mpps"] for f, e in full if f["rx_mpps"]]
        clean_ratios = [e["rx_mpps"] / f["rx_mpps"] for f, e in clean if f["rx_mpps"]]
        caps = [r["capture"] for r in runs if r["kind"] == "ephemera" and "capture" in r]
        floor_caps = [r["capture"] for r in runs if r["kind"] == "floor" and "capture" in r]
        rows.append({
            "label": label, "mode": mode, "flows": flows, "pairs": len(full),
            "clean_pairs": len(clean),
            "floor_mpps": median([f["rx_mpps"] for f, _ in full]),
            "ephemera_mpps": median([e["rx_mpps"] for _, e in full]),
            "ratio": median(ratios), "ratios": ratios,
            "ratio_clean": median(clean_ratios) if clean_ratios else None,
            "floor_mpps_all": [f["rx_mpps"] for f, _ in full],
            "ephemera_mpps_all": [e["rx_mpps"] for _, e in full],
            "cpu_pktgen": median([r["cpu_pktgen"] for r in runs]),
            "cpu_testpmd": median([f["cpu_dut"] for f, _ in full]),
            "cpu_ephemera": median([e["cpu_dut"] for _, e in full]),
            "loadavg": [min(r["host"]["loadavg_1min"][0] for r in runs),
                        max(r["host"]["loadavg_1min"][1] for r in runs)],
            "others_cpus": median([r["host"]["others_cpus"] for r in runs]),
            "captured_frames": sum(c["frames"] for c in caps),
            "captured_flows": sum(c["flows"] for c in caps),
            "capture_errors": sum(sum(c["errors"].values()) for c in caps),
            "floor_captured_from_pool": sum(c["from_pool"] for c in floor_caps),
            "floor_captured": sum(c["frames"] for c in floor_caps),
            "counter_failures": sorted({n for r in runs for n in r.get("counter_failures", [])}),
            "dropped": [[f.get("dut_dropped") for f, _ in full],
                        [e.get("dut_dropped") for _, e in full]],
        })
    return rows


def print_table(rows, min_share):
    log("")
    log("%-6s %-5s | %-7s | %-15s | %-15s | %-11s | %-17s | %-9s | %s" % (
        "flows", "mode", "pairs", "floor Mpps", "ephemera Mpps", "eph/floor",
        "CPU pg/tp/eph %", "load", "others (CPUs)"))
    for r in rows:
        log("%-6s %-5s | %d (%d)%s | %6.3f          | %6.3f          | %4.2f%s | %3.0f / %3.0f / "
            "%3.0f   | %4.1f-%-4.1f | %.2f" % (
                r["label"], r["mode"], r["pairs"], r["clean_pairs"],
                " " * max(0, 3 - len(str(r["clean_pairs"]))),
                r["floor_mpps"], r["ephemera_mpps"], r["ratio"],
                " (clean %4.2f)" % r["ratio_clean"] if r["ratio_clean"] is not None
                else "            ", 100 * r["cpu_pktgen"], 100 * r["cpu_testpmd"],
                100 * r["cpu_ephemera"], r["loadavg"][0], r["loadavg"][1], r["others_cpus"]))
    log("pairs (clean): A B pairs run, and those in which every polling thread had at least "
        "%.0f%% of its CPU" % (100 * min_share))
    for r in rows:
        log("%s: ratios per pair %s; ephemera captures: %d frames, %d flows, %d errors; floor "
            "captures: %d of %d frames from the pool (must be 0); counter checks %s; "
            "dropped on a full ring to Pktgen (testpmd; ephemera's drop_tx_full) %s; %s" % (
                r["label"], " ".join("%.2f" % x for x in r["ratios"]), r["captured_frames"],
                r["captured_flows"], r["capture_errors"], r["floor_captured_from_pool"],
                r["floor_captured"],
                "hold" if not r["counter_failures"] else "FAILED: " +
                ", ".join(r["counter_failures"]), r["dropped"][0], r["dropped"][1]))


# ---- self-check (no Pktgen, no root, no DPDK) --------------------------------------------------


def translate_for_test(f, ext_addr, ext_port):
    """What a NAT would make of frame f: MACs, source, TTL 63, checksums recomputed."""
    f = bytearray(f)
    f[0:6] = GEN.mac_bytes(LG_OUT_MAC)
    f[6:12] = GEN.mac_bytes(DUT_OUT_MAC)
    struct.pack_into("!I", f, 26, ext_addr)
    struct.pack_into("!H", f, 34, ext_port)
    f[22] = 63
    struct.pack_into("!H", f, 24, 0)
    struct.pack_into("!H", f, 24, 0xFFFF - GEN.csum(bytes(f[14:34])))
    proto = f[23]
    at = 40 if proto == 17 else 50
    struct.pack_into("!H", f, at, 0)
    src, dst = struct.unpack_from("!II", f, 26)
    l4 = bytes(f[34:])
    c = 0xFFFF - GEN.csum(struct.pack("!IIBBH", src, dst, 0, proto, len(l4)) + l4)
    struct.pack_into("!H", f, at, c or 0xFFFF)
    return bytes(f)


def self_check():
    failures = []

    def expect(cond, what):
        log("%s  %s" % ("ok  " if cond else "FAIL", what))
        if not cond:
            failures.append(what)

    fc = parse_flows("range,64K,1M")
    expect([(x[0], x[1], x[2], x[3]) for x in fc] ==
           [("range", "range", 24576, 8192), ("64K", "pcap", 65536, 1024),
            ("1M", "pcap", 1048576, 16384)], "flow counts parse: range,64K,1M")
    for bad in ("", "100", "64Q", "8M", "1K,x"):
        try:
            parse_flows(bad)
            expect(False, "flow count %r refused" % bad)
        except ValueError:
            expect(True, "flow count %r refused" % bad)
    expect(pktgen_mem_mib("range", RANGE_FLOWS) == 3072 and
           pktgen_mem_mib("pcap", 1 << 16) == 3072 and pktgen_mem_mib("pcap", 1 << 20) == 3584,
           "Pktgen memory: 3072 MiB for two ports and 64 K frames, 3584 with 1 M (as in lab.md)")
    path, why = find_pktgen({"PKTGEN": "/nonexistent/pktgen", "PATH": ""})
    expect(path is None and "PKTGEN=/nonexistent/pktgen" in why, "PKTGEN pointing nowhere")
    path, why = find_pktgen({"PATH": "/nonexistent"})
    expect(path is None and "docs/lab.md" in MISSING_PKTGEN, "no pktgen on the PATH")

    with tempfile.TemporaryDirectory() as d:
        p = ensure_pcap(d, 8)
        frames = list(GEN.read_pcap(p))
        expect(len(frames) == 512 and os.path.getsize(p) == 24 + 512 * 76,
               "pcap of 8 x 64 flows: 512 frames of 60 bytes")
        ok = all(_csum(f[14:34]) and _csum(struct.pack("!4s4sBBH", f[26:30], f[30:34], 0, f[23],
                                                        len(f) - 34) + f[34:]) for f in frames)
        expect(ok, "every frame's IPv4 and UDP/TCP checksum right")
        ids = [struct.unpack_from("!I", f, 42)[0] for f in frames]
        expect(sorted(ids) == list(range(512)), "one frame per flow, flow id at offset 42")
        expect(all(f[0:6] == GEN.mac_bytes(DUT_IN_MAC) and f[6:12] == GEN.mac_bytes(LG_IN_MAC)
                   for f in frames), "frames from Pktgen port 0's MAC to the DUT's inside MAC")
        mtime = os.path.getmtime(p)
        expect(ensure_pcap(d, 8) == p and os.path.getmtime(p) == mtime, "pcap reused")

        floor = check_capture(frames, "floor", "pcap")
        expect(floor["errors"] == {} and floor["from_pool"] == 0 and floor["flows"] == 512,
               "floor check passes untouched frames: %s" % floor)
        as_nat = check_capture(frames, "ephemera", "pcap")
        expect(as_nat["errors"].get("source not in the pool") == 512,
               "ephemera check refuses untranslated frames: %s" % as_nat["errors"])
        base = int(ipaddress.ip_address("198.19.0.1"))
        nat = []
        for f in frames:
            flow = struct.unpack_from("!I", f, 42)[0]
            sub, j = divmod(flow, FLOWS_PER_SUBSCRIBER)
            nat.append(translate_for_test(f, base + sub % 254, 1024 + sub * 64 + j))
        good = check_capture(nat, "ephemera", "pcap")
        expect(good["errors"] == {} and good["from_pool"] == 512 and good["flows"] == 512,
               "ephemera check passes translated frames: %s" % good)
        bad = list(nat)
        bad[0] = translate_for_test(frames[0], base, 1024 + 2)       # flow 2 (UDP too) has it
        bad[5] = bad[5][:40] + bytes([bad[5][40] ^ 1]) + bad[5][41:]  # checksum
        bad[7] = translate_for_test(frames[7], base + 200, 5000)      # other pool address
        errs = check_capture(bad, "ephemera", "pcap")["errors"]
        expect(errs.get("external endpoint seen for two inside endpoints", 0) >= 1 and
               errs.get("UDP/TCP checksum", 0) + errs.get("IPv4 checksum", 0) >= 1 and
               errs.get("subscriber on two pool addresses", 0) >= 1,
               "ephemera check finds a shared endpoint, a bad checksum, a split subscriber: %s"
               % errs)
        checks = pktgen_counter_checks("floor", {"tx0": 10, "rx1": 9, "rx0": 0, "tx1": 0},
                                       {0: {"ipackets": 10}, 1: {"opackets": 9}})
        expect(all(c["holds"] for c in checks), "floor counter checks")
        checks = pktgen_counter_checks("floor", {"tx0": 10, "rx1": 10, "rx0": 0, "tx1": 0},
                                       {0: {"ipackets": 10}, 1: {"opackets": 9}})
        expect([c["name"] for c in checks if not c["holds"]] == ["outside wire"],
               "floor counter checks find a frame nobody sent")
    log("self-check: %s" % ("passed" if not failures else "%d FAILED" % len(failures)))
    return 0 if not failures else 1


# ---- main --------------------------------------------------------------------------------------


def main():
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--flows", default="64K,1M",
                    help="comma list: 'range' (24,576 flows, range mode) and/or S x 64 flow "
                         "counts in pcap mode (64K, 1M, ...); default 64K,1M")
    ap.add_argument("--reps", type=int, default=3, help="A B pairs per flow count (default 3)")
    ap.add_argument("--duration", type=float, default=10.0,
                    help="seconds measured per run (default 10)")
    ap.add_argument("--warmup", type=float, default=2.0,
                    help="seconds at full rate before the window (default 2)")
    ap.add_argument("--populate-rate", type=float, default=1.0,
                    help="Pktgen rate (%% of 100G) while the sessions are made (default 1)")
    ap.add_argument("--populate-timeout", type=float, default=600.0)
    ap.add_argument("--nice", type=int, default=10,
                    help="nice of Pktgen and the DUT (default 10: the host is shared)")
    ap.add_argument("--min-cpu-share", type=float, default=0.9,
                    help="a pair is clean when every polling thread had at least this share of "
                         "its CPU (default 0.9)")
    ap.add_argument("--perf", action="store_true",
                    help="profile the DUT's forwarding thread over each window (perf record, "
                         "software clock) and print where its time went")
    ap.add_argument("--no-capture", dest="capture", action="store_false",
                    help="skip the capture of port 1 after each window")
    ap.add_argument("--pcap-dir", default="/var/tmp/ephemera-pktgen",
                    help="where the flow pcaps are written and reused")
    ap.add_argument("--build", default=os.path.join(ROOT, "build-load"))
    ap.add_argument("--no-build", action="store_true")
    ap.add_argument("--json", help="write the results here (default BUILD/pktgen-run.json)")
    ap.add_argument("--self-check", action="store_true",
                    help="check argument parsing, pcap writing and the capture check; no "
                         "Pktgen, root or DPDK needed")
    args = ap.parse_args()
    if args.self_check:
        return self_check()
    try:
        flow_counts = parse_flows(args.flows)
    except ValueError as e:
        ap.error(str(e))
    if args.reps < 1 or args.duration <= 0:
        ap.error("--reps and --duration must be positive")

    binary, why = find_pktgen()
    if binary is None:
        print(MISSING_PKTGEN.format(detail=why), file=sys.stderr)
        return SKIP
    if os.geteuid() != 0:
        sys.exit("pktgen-run: needs root (DPDK, %s)" % SOCKET_DIR)
    if shutil.which("dpdk-testpmd") is None:
        sys.exit("pktgen-run: dpdk-testpmd not found (apt-get install dpdk)")
    if not args.no_build:
        if not os.path.exists(os.path.join(args.build, "build.ninja")):
            subprocess.run(["meson", "setup", args.build, ROOT, "--buildtype=release"],
                           check=True)
        subprocess.run(["ninja", "-C", args.build, "control/ephemera"], check=True)
    if not os.access(os.path.join(args.build, "control", "ephemera"), os.X_OK):
        sys.exit("pktgen-run: no ephemera in %s (build it, or --build DIR)" % args.build)
    os.makedirs(SOCKET_DIR, exist_ok=True)
    json_path = args.json or os.path.join(args.build, "pktgen-run.json")

    workdir = tempfile.mkdtemp(prefix="ephemera-pktgen-")
    runner = Runner(args, workdir)
    command = " ".join([os.path.join("bench", "pktgen-run.sh")] + sys.argv[1:])
    revision = describe_revision()
    started = time.monotonic()
    log("Pktgen run of ephemera %s with %s: flows %s, %d pair(s) each, %.0f s windows, nice %d; "
        "host load %.1f, logs in %s" % (revision, binary, args.flows, args.reps, args.duration,
                                        args.nice, os.getloadavg()[0], workdir))
    results, failures = [], []
    pg = None
    try:
        for label, mode, flows, subs in flow_counts:
            pcap = None
            if mode == "pcap":
                t0 = time.monotonic()
                pcap = ensure_pcap(args.pcap_dir, subs)
                log("%s: pcap %s (%.0f s)" % (label, pcap, time.monotonic() - t0))
            name = "pg%d-%s" % (os.getpid(), label.lower())
            pg = Pktgen(binary, name, workdir, mode, pcap, pktgen_mem_mib(mode, flows),
                        args.nice)
            t0 = time.monotonic()
            pg.start()
            log("%s: Pktgen up in %.0f s (-m %s)" % (label, time.monotonic() - t0,
                                                      pg.cmd[pg.cmd.index("-m") + 1]))
            for pair in range(1, args.reps + 1):
                for kind in ("floor", "ephemera"):
                    t0 = time.monotonic()
                    try:
                        r = runner.run_one(pg, kind, label, flows, mode)
                    except RuntimeError as e:
                        log("%-5s pair %d %-8s: FAILED: %s" % (label, pair, kind,
                                                             str(e).splitlines()[0]))
                        failures.append({"label": label, "pair": pair, "kind": kind,
                                         "error": str(e)[-4000:]})
                        if pg.proc.poll() is not None:
                            raise
                        continue
                    r["pair"] = pair
                    results.append(r)
                    cap = r.get("capture")
                    log("%-5s pair %d %-8s: %.3f Mpps received (sent %.3f; per 0.5 s %.2f-%.2f), "
                        "populate %.1f s, CPU pktgen %.0f%% %s %.0f%%, load %.1f, others %.2f "
                        "CPUs%s%s (%.0f s)" % (
                            label, pair, kind, r["rx_mpps"], r["tx_mpps"],
                            *(r["rx_mpps_min_max"] or [0, 0]), r["populate_s"],
                            100 * r["cpu_pktgen"], kind, 100 * r["cpu_dut"],
                            r["host"]["loadavg_1min"][1], r["host"]["others_cpus"],
                            "; capture %d frames, %d flows, %d from the pool, errors %s" % (
                                cap["frames"], cap["flows"], cap["from_pool"],
                                cap["errors"] or "none") if cap else "",
                            "; counter checks FAILED: %s" % r["counter_failures"]
                            if r["counter_failures"] else "; counters hold",
                            time.monotonic() - t0))
                    if r.get("perf"):
                        log("        by object: " + ", ".join(
                            "%s %.1f%%" % (d, pct) for pct, d in r["perf"]["dso"][:6]))
                    for pct, dso, sym in (r.get("perf") or {}).get("top", [])[:12]:
                        log("        %5.1f%%  %-28s %s" % (pct, dso[:28], sym[:70]))
            pg.quit()
            pg = None
    except KeyboardInterrupt:
        log("interrupted; summarising what ran")
    finally:
        if pg is not None:
            pg.quit()

    rows = summarise(results, flow_counts, args.min_cpu_share)
    print_table(rows, args.min_cpu_share)
    elapsed = time.monotonic() - started
    out = {"command": command, "revision": revision, "pktgen": binary,
           "elapsed_s": elapsed, "host": {"cpus": os.cpu_count(),
                                          "loadavg_at_end": os.getloadavg()},
           "pool": POOL, "port_range": PORT_RANGE, "min_cpu_share": args.min_cpu_share,
           "summary": rows, "failures": failures, "runs": results}
    with open(json_path, "w") as f:
        json.dump(out, f, indent=2)
    log("JSON: %s   (%.0f s, run: %s)" % (json_path, elapsed, command))
    bad = any(r["capture_errors"] or r["counter_failures"] or r["floor_captured_from_pool"]
              for r in rows)
    return 1 if bad or failures else 0


if __name__ == "__main__":
    sys.exit(main())
